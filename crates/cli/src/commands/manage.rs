//! `rename`, `pause`, `unpause`, `top`, `update` and `stats`, as docker's commands of
//! the same names.

use clap::Parser;
use serde_json::{json, Value};

use super::{for_each, show_name, Missing};
use crate::args::{min_args, parse, range_args};
use crate::client::{path_escape, Client, Query};
use crate::error::{CliError, Result};
use crate::format::humanize::bytes_size;
use crate::opts::{parse_ram, parse_restart};
use crate::{out, outln};

/// `tether rename`.
#[derive(Parser, Debug)]
#[command(
    name = "rename",
    override_usage = "tether rename CONTAINER NEW_NAME",
    about = "Rename a container"
)]
pub struct RenameArgs {
    args: Vec<String>,
}

/// `tether rename CONTAINER NEW_NAME`.
pub async fn rename(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: RenameArgs = parse(path, args)?;
    range_args::<RenameArgs>(path, a.args.len(), 2, 2)?;
    let (old, new) = (a.args[0].trim(), a.args[1].trim());
    if old.is_empty() || new.is_empty() {
        return Err(CliError::msg(
            "Error: Neither old nor new names may be empty",
        ));
    }
    let q = Query::new().add("name", new).encode();
    client
        .post(&format!("/containers/{}/rename{q}", path_escape(old)), None)
        .await?;
    Ok(())
}

/// `tether pause` / `tether unpause`.
#[derive(Parser, Debug)]
#[command(
    override_usage = "tether pause|unpause CONTAINER [CONTAINER...]",
    about = "Pause (or unpause) all processes within one or more containers"
)]
pub struct PauseArgs {
    containers: Vec<String>,
}

/// `tether pause CONTAINER...` (`action` "pause") and `tether unpause CONTAINER...`
/// ("unpause"): prints each name done.
pub async fn pause(client: &Client, path: &str, action: &str, args: &[String]) -> Result<()> {
    let a: PauseArgs = parse(path, args)?;
    min_args::<PauseArgs>(path, a.containers.len(), 1)?;
    for_each(
        &a.containers,
        Missing::Fail,
        |n| {
            let path = format!("/containers/{}/{action}", path_escape(n));
            async move { client.post(&path, None).await }
        },
        show_name,
    )
    .await
}

/// `tether top`.
#[derive(Parser, Debug)]
#[command(
    name = "top",
    override_usage = "tether top CONTAINER [ps OPTIONS]",
    about = "Display the running processes of a container",
    trailing_var_arg = true,
    allow_hyphen_values = true
)]
pub struct TopArgs {
    args: Vec<String>,
}

/// `tether top CONTAINER [ps OPTIONS]`: the table of `Titles` and `Processes`,
/// tab-aligned like docker's.
pub async fn top(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: TopArgs = parse(path, args)?;
    min_args::<TopArgs>(path, a.args.len(), 1)?;
    let q = if a.args.len() > 1 {
        Query::new().add("ps_args", a.args[1..].join(" ")).encode()
    } else {
        String::new()
    };
    let v = client
        .get_json(&format!("/containers/{}/top{q}", path_escape(&a.args[0])))
        .await?;
    let mut rows: Vec<Vec<String>> = vec![strings(&v["Titles"])];
    for p in v["Processes"].as_array().into_iter().flatten() {
        rows.push(strings(p));
    }
    print_table(&rows);
    Ok(())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Columns padded to their widest cell plus three spaces (docker's tabwriter).
fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        outln!("{}", line.trim_end());
    }
}

/// `tether update`.
#[derive(Parser, Debug)]
#[command(
    name = "update",
    override_usage = "tether update [OPTIONS] CONTAINER [CONTAINER...]",
    about = "Update configuration of one or more containers"
)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", allow_negative_numbers = true)]
    cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", allow_negative_numbers = true)]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    cpu_quota: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    restart: Option<String>,
    containers: Vec<String>,
}

/// The update body of `a` (docker's `container.UpdateConfig`).
fn update_body(a: &UpdateArgs) -> Result<Value> {
    let mut b = serde_json::Map::new();
    let bytes = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        match v.as_deref() {
            None => Ok(None),
            Some("-1") if flag == "--memory-swap" => Ok(Some(-1)),
            Some(s) => parse_ram(s).map(Some).map_err(|e| {
                CliError::msg(format!("invalid argument {s:?} for \"{flag}\" flag: {e}"))
            }),
        }
    };
    for (key, flag, v) in [
        ("Memory", "--memory", &a.memory),
        ("MemorySwap", "--memory-swap", &a.memory_swap),
        (
            "MemoryReservation",
            "--memory-reservation",
            &a.memory_reservation,
        ),
    ] {
        if let Some(n) = bytes(flag, v)? {
            b.insert(key.into(), json!(n));
        }
    }
    for (key, v) in [
        ("CpuShares", a.cpu_shares),
        ("CpuPeriod", a.cpu_period),
        ("CpuQuota", a.cpu_quota),
        ("PidsLimit", a.pids_limit),
    ] {
        if let Some(n) = v {
            b.insert(key.into(), json!(n));
        }
    }
    if let Some(w) = a.blkio_weight {
        b.insert("BlkioWeight".into(), json!(w));
    }
    if let Some(r) = &a.restart {
        b.insert(
            "RestartPolicy".into(),
            parse_restart(r).map_err(CliError::msg)?,
        );
    }
    if b.is_empty() {
        return Err(CliError::msg(
            "you must provide one or more flags when using this command",
        ));
    }
    Ok(Value::Object(b))
}

/// `tether update [OPTIONS] CONTAINER...`: prints each name updated.
pub async fn update(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: UpdateArgs = parse(path, args)?;
    min_args::<UpdateArgs>(path, a.containers.len(), 1)?;
    let body = update_body(&a)?;
    for_each(
        &a.containers,
        Missing::Fail,
        |n| {
            let path = format!("/containers/{}/update", path_escape(n));
            let body = body.clone();
            async move { client.post(&path, Some(&body)).await }
        },
        show_name,
    )
    .await
}

/// `tether stats`.
#[derive(Parser, Debug)]
#[command(
    name = "stats",
    override_usage = "tether stats [OPTIONS] [CONTAINER...]",
    about = "Display a live stream of container(s) resource usage statistics"
)]
pub struct StatsArgs {
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    containers: Vec<String>,
}

/// One row of `docker stats`: CPU %, memory usage / limit, memory %, network and
/// block I/O, pids, from two samples of the stats endpoint (docker's
/// `calculateCPUPercentUnix`).
fn stats_row(v: &Value, no_trunc: bool) -> Vec<String> {
    let f = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let cpu_delta =
        f("/cpu_stats/cpu_usage/total_usage") - f("/precpu_stats/cpu_usage/total_usage");
    let sys_delta = f("/cpu_stats/system_cpu_usage") - f("/precpu_stats/system_cpu_usage");
    let online = f("/cpu_stats/online_cpus").max(1.0);
    let cpu = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let cache = f("/memory_stats/stats/total_inactive_file");
    let mem = (f("/memory_stats/usage") - cache).max(0.0);
    let limit = f("/memory_stats/limit");
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in v["networks"].as_object().into_iter().flatten() {
        rx += n.1["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += n.1["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in v
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => br += e["value"].as_f64().unwrap_or(0.0),
            Some("write") => bw += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let id = v["id"].as_str().unwrap_or_default();
    let id = if no_trunc {
        id
    } else {
        &id[..id.len().min(12)]
    };
    vec![
        id.to_string(),
        v["name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        format!("{cpu:.2}%"),
        format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        format!("{mem_pct:.2}%"),
        format!("{} / {}", bytes_size(rx), bytes_size(tx)),
        format!("{} / {}", bytes_size(br), bytes_size(bw)),
        format!("{}", f("/pids_stats/current") as u64),
    ]
}

/// `tether stats [--no-stream] [-a] [CONTAINER...]`: one table of every container named
/// (default: the running ones), refreshed every second unless `--no-stream`.
pub async fn stats(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: StatsArgs = parse(path, args)?;
    let names: Vec<String> = if a.containers.is_empty() {
        let q = Query::new().add_if(a.all, "all", "1").encode();
        let list = client.get_json(&format!("/containers/json{q}")).await?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.containers.clone()
    };
    let title: Vec<String> = [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    loop {
        let mut rows = vec![title.clone()];
        let mut errors = Vec::new();
        for n in &names {
            let p = format!("/containers/{}/stats?stream=false", path_escape(n));
            match client.get_json(&p).await {
                Ok(v) => rows.push(stats_row(&v, a.no_trunc)),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return Err(CliError::msg(errors.join("\n")));
        }
        if !a.no_stream {
            // docker clears the screen between tables on a terminal
            out!("\x1b[2J\x1b[H");
        }
        print_table(&rows);
        if a.no_stream {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_row_computes_docker_percentages() {
        let v = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000u64}, "system_cpu_usage": 10_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000u64}, "system_cpu_usage": 8_000_000u64},
            "memory_stats": {"usage": 1048576, "limit": 4194304, "stats": {}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
            "pids_stats": {"current": 3},
        });
        let r = stats_row(&v, false);
        assert_eq!(r[0], "0123456789ab");
        assert_eq!(r[1], "web");
        assert_eq!(r[2], "100.00%");
        assert_eq!(r[4], "25.00%");
        assert_eq!(r[7], "3");
    }

    #[test]
    fn update_needs_a_flag_and_reads_sizes() {
        let a = UpdateArgs::parse_from(["update", "-m", "64m", "--restart", "always", "c"]);
        let b = update_body(&a).unwrap_or_default();
        assert_eq!(b["Memory"], json!(64 * 1024 * 1024));
        assert_eq!(b["RestartPolicy"]["Name"], json!("always"));
        let a = UpdateArgs::parse_from(["update", "c"]);
        assert!(update_body(&a).is_err());
    }
}
