//! `stop`, `restart`, `kill`, `rm`, `wait`, `port` and `container prune`.

use clap::Parser;

use super::container::{filter_query, wait_exit};
use super::{for_each, for_each_seq, show_name, Missing};
use crate::args::{min_args, parse, range_args};
use crate::client::{path_escape, Client, Query};
use crate::error::{CliError, Result};
use crate::format::ports::{join_host_port, natural_cmp};
use crate::opts::ports::split_proto_port;
use crate::{out, outln};

/// `tether stop`.
#[derive(Parser, Debug)]
#[command(
    name = "stop",
    override_usage = "tether stop [OPTIONS] CONTAINER [CONTAINER...]",
    about = "Stop one or more running containers"
)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_negative_numbers = true
    )]
    time: Option<i64>,
    containers: Vec<String>,
}

/// The `t` and `signal` query of `stop`, `restart` and `kill`.
fn stop_query(time: Option<i64>, signal: Option<&str>) -> Query {
    let q = Query::new();
    let q = match time {
        Some(t) => q.add("t", t.to_string()),
        None => q,
    };
    match signal {
        Some(s) => q.add("signal", s),
        None => q,
    }
}

/// `tether stop [-t N] [-s SIG] CONTAINER...`.
pub async fn stop(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: StopArgs = parse(path, args)?;
    min_args::<StopArgs>(path, a.containers.len(), 1)?;
    let q = stop_query(a.time, a.signal.as_deref()).encode();
    for_each(
        &a.containers,
        Missing::Fail,
        |n| {
            let path = format!("/containers/{}/stop{q}", path_escape(n));
            async move { client.post(&path, None).await }
        },
        show_name,
    )
    .await
}

/// `tether restart`.
#[derive(Parser, Debug)]
#[command(
    name = "restart",
    override_usage = "tether restart [OPTIONS] CONTAINER [CONTAINER...]",
    about = "Restart one or more containers"
)]
pub struct RestartArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_negative_numbers = true
    )]
    time: Option<i64>,
    containers: Vec<String>,
}

/// `tether restart [-t N] CONTAINER...`.
pub async fn restart(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: RestartArgs = parse(path, args)?;
    min_args::<RestartArgs>(path, a.containers.len(), 1)?;
    let q = stop_query(a.time, a.signal.as_deref()).encode();
    // docker restarts sequentially.
    for_each_seq(
        &a.containers,
        Missing::Fail,
        |n| {
            let path = format!("/containers/{}/restart{q}", path_escape(n));
            async move { client.post(&path, None).await }
        },
        show_name,
    )
    .await
}

/// `tether kill`.
#[derive(Parser, Debug)]
#[command(
    name = "kill",
    override_usage = "tether kill [OPTIONS] CONTAINER [CONTAINER...]",
    about = "Kill one or more running containers"
)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    signal: Option<String>,
    containers: Vec<String>,
}

/// `tether kill [-s SIG] CONTAINER...`.
pub async fn kill(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: KillArgs = parse(path, args)?;
    min_args::<KillArgs>(path, a.containers.len(), 1)?;
    let q = stop_query(None, a.signal.as_deref()).encode();
    for_each(
        &a.containers,
        Missing::Fail,
        |n| {
            let path = format!("/containers/{}/kill{q}", path_escape(n));
            async move { client.post(&path, None).await }
        },
        show_name,
    )
    .await
}

/// `tether rm`.
#[derive(Parser, Debug)]
#[command(
    name = "rm",
    override_usage = "tether rm [OPTIONS] CONTAINER [CONTAINER...]",
    about = "Remove one or more containers"
)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    volumes: bool,
    containers: Vec<String>,
}

/// `tether rm [-f] [-v] CONTAINER...`: prints each name removed; with `-f`
/// a missing container is not an error (docker 23+).
pub async fn rm(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: RmArgs = parse(path, args)?;
    min_args::<RmArgs>(path, a.containers.len(), 1)?;
    let q = Query::new()
        .add_if(a.force, "force", "1")
        .add_if(a.volumes, "v", "1")
        .add_if(a.link, "link", "1")
        .encode();
    for_each(
        &a.containers,
        Missing::ignored_if(a.force),
        |n| {
            let q = q.clone();
            async move {
                let name = n.trim_matches('/');
                if name.is_empty() {
                    return Err(CliError::msg("Container name cannot be empty"));
                }
                client
                    .delete(&format!("/containers/{}{q}", path_escape(name)))
                    .await
            }
        },
        show_name,
    )
    .await
}

/// `tether wait`.
#[derive(Parser, Debug)]
#[command(
    name = "wait",
    override_usage = "tether wait CONTAINER [CONTAINER...]",
    about = "Block until one or more containers stop, then print their exit codes"
)]
pub struct WaitArgs {
    containers: Vec<String>,
}

/// `tether wait CONTAINER...`: prints each exit code.
pub async fn wait(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: WaitArgs = parse(path, args)?;
    min_args::<WaitArgs>(path, a.containers.len(), 1)?;
    for_each_seq(
        &a.containers,
        Missing::Fail,
        |n| wait_exit(client, n, None),
        |_, code| outln!("{code}"),
    )
    .await
}

/// `tether port`.
#[derive(Parser, Debug)]
#[command(
    name = "port",
    override_usage = "tether port CONTAINER [PRIVATE_PORT[/PROTO]]",
    about = "List port mappings or a specific mapping for the container"
)]
pub struct PortArgs {
    operands: Vec<String>,
}

/// The lines `docker port` prints for an inspect document.
pub fn port_lines(
    inspect: &serde_json::Value,
    container: &str,
    port: Option<&str>,
) -> Result<Vec<String>> {
    let ports = inspect["NetworkSettings"]["Ports"].as_object();
    let binding = |b: &serde_json::Value| {
        join_host_port(
            b["HostIp"].as_str().unwrap_or(""),
            b["HostPort"].as_str().unwrap_or(""),
        )
    };
    let mut out = Vec::new();
    match port {
        Some(p) => {
            let (proto, num) = split_proto_port(p);
            let key = format!("{num}/{proto}");
            let list = ports
                .and_then(|m| m.get(&key))
                .and_then(|v| v.as_array())
                .filter(|l| !l.is_empty());
            let Some(list) = list else {
                return Err(CliError::msg(format!(
                    "Error: No public port '{key}' published for {container}"
                )));
            };
            out.extend(list.iter().map(binding));
        }
        None => {
            if let Some(m) = ports {
                for (k, v) in m {
                    for b in v.as_array().into_iter().flatten() {
                        out.push(format!("{k} -> {}", binding(b)));
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

/// `tether port CONTAINER [PORT[/PROTO]]`.
pub async fn port(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: PortArgs = parse(path, args)?;
    range_args::<PortArgs>(path, a.operands.len(), 1, 2)?;
    let name = &a.operands[0];
    let c = client
        .get_json(&format!("/containers/{}/json", path_escape(name)))
        .await?;
    let lines = port_lines(&c, name, a.operands.get(1).map(String::as_str))?;
    if !lines.is_empty() {
        outln!("{}", lines.join("\n"));
    }
    Ok(())
}

/// `tether container prune`.
#[derive(Parser, Debug)]
#[command(
    name = "prune",
    override_usage = "tether container prune [OPTIONS]",
    about = "Remove all stopped containers"
)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", action = clap::ArgAction::Append)]
    filter: Vec<String>,
}

/// Asks docker's `[y/N]` question on stdout; reads one line from stdin.
pub fn confirm(message: &str) -> bool {
    out!("{message} [y/N] ");
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// `tether container prune [-f]`.
pub async fn prune(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: PruneArgs = parse(path, args)?;
    if !a.force
        && !confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )
    {
        return Ok(());
    }
    let q = filter_query(&a.filter)?.encode();
    let v = client
        .post_json(&format!("/containers/prune{q}"), None)
        .await?;
    super::print_pruned(
        &v,
        "ContainersDeleted",
        "Deleted Containers:",
        super::pruned_id,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stop_restart_kill_query() {
        assert_eq!(stop_query(None, None).encode(), "");
        assert_eq!(
            stop_query(Some(-1), Some("SIGINT")).encode(),
            Query::new().add("t", "-1").add("signal", "SIGINT").encode()
        );
        assert_eq!(
            stop_query(None, Some("9")).encode(),
            Query::new().add("signal", "9").encode()
        );
    }

    #[test]
    fn port_output() {
        let c = json!({"NetworkSettings": {"Ports": {
            "3000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "53/udp": null,
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"}]
        }}});
        assert_eq!(
            port_lines(&c, "web", None).unwrap(),
            [
                "80/tcp -> 0.0.0.0:80",
                "3000/tcp -> 0.0.0.0:8080",
                "3000/tcp -> [::]:8080"
            ]
        );
        assert_eq!(
            port_lines(&c, "web", Some("3000")).unwrap(),
            ["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines(&c, "web", Some("53/udp"))
                .unwrap_err()
                .to_string(),
            "Error: No public port '53/udp' published for web"
        );
    }
}
