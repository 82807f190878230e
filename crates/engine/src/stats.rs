//! A container's resource usage in Docker's stats shape (Engine API "Get container
//! stats based on resource usage", `GET /containers/{id}/stats`): the cgroup counters
//! from the runtime (`runc events --stats`: cpu, memory, pids, blkio) and the network
//! counters of the container's namespace (`/proc/<init pid>/net/dev`).

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::state::{now, Container, ZERO_TIME};
use crate::{Engine, EngineError};

/// One sample of a running container: its runtime stats, network counters and the host's
/// CPU time, taken at `read`.
struct Sample {
    read: String,
    cpu: Value,
    memory: Value,
    pids: Value,
    blkio: Value,
    networks: Value,
}

/// The host's CPU time in nanoseconds, Docker's `system_cpu_usage`: the first seven
/// fields of the `cpu` line of /proc/stat (user .. softirq), in clock ticks of 1/100 s.
fn system_cpu_usage() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|x| x.parse::<u64>().ok())
                .sum::<u64>()
                .saturating_mul(10_000_000)
        })
        .unwrap_or(0)
}

/// The number of online CPUs (the `cpuN` lines of /proc/stat).
fn online_cpus() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count()
        .max(1) as u64
}

/// The host's memory in bytes (/proc/meminfo `MemTotal`), 0 when unreadable.
fn machine_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Docker's `networks` object from a `/proc/<pid>/net/dev` text: each interface but
/// `lo`, its rx/tx bytes, packets, errors and drops.
pub fn parse_net_dev(text: &str) -> Value {
    let mut nets = Map::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if f.len() < 12 {
            continue;
        }
        nets.insert(
            name.to_string(),
            json!({
                "rx_bytes": f[0], "rx_packets": f[1], "rx_errors": f[2], "rx_dropped": f[3],
                "tx_bytes": f[8], "tx_packets": f[9], "tx_errors": f[10], "tx_dropped": f[11],
            }),
        );
    }
    Value::Object(nets)
}

/// runc's blkio entries (`{major, minor, op, value}`) as Docker lists them, null when
/// none.
fn blkio_list(v: &Value) -> Value {
    match v.as_array() {
        Some(a) if !a.is_empty() => Value::Array(
            a.iter()
                .map(|e| json!({"major": e["major"], "minor": e["minor"], "op": e["op"], "value": e["value"]}))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Docker's `cpu_stats` of a sample (None: the zeroed one of a stopped container or of
/// the sample before the first).
fn cpu_json(s: Option<&Sample>) -> Value {
    let Some(s) = s else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    let u = &s.cpu["usage"];
    let t = &s.cpu["throttling"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    json!({
        "cpu_usage": {
            "total_usage": n(&u["total"]),
            "percpu_usage": u["percpu"].as_array().cloned().unwrap_or_default(),
            "usage_in_kernelmode": n(&u["kernel"]),
            "usage_in_usermode": n(&u["user"]),
        },
        "system_cpu_usage": system_cpu_usage_of(s),
        "online_cpus": online_cpus(),
        "throttling_data": {"periods": n(&t["periods"]), "throttled_periods": n(&t["throttled_periods"]), "throttled_time": n(&t["throttled_time"])},
    })
}

fn system_cpu_usage_of(s: &Sample) -> u64 {
    s.cpu["system_cpu_usage"].as_u64().unwrap_or(0)
}

/// Docker's stats object from the current sample and the one before (`pre`).
fn stats_json(c: &Container, cur: Option<&Sample>, pre: Option<&Sample>) -> Value {
    let read = cur.map(|s| s.read.as_str()).unwrap_or(ZERO_TIME);
    let preread = pre.map(|s| s.read.as_str()).unwrap_or(ZERO_TIME);
    let mut v = json!({
        "read": read, "preread": preread, "name": format!("/{}", c.name), "id": c.id,
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": cpu_json(cur), "precpu_stats": cpu_json(pre),
    });
    let Some(s) = cur else {
        v["pids_stats"] = json!({});
        v["memory_stats"] = json!({});
        v["blkio_stats"] = json!({
            "io_service_bytes_recursive": null, "io_serviced_recursive": null, "io_queue_recursive": null,
            "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        });
        return v;
    };
    let mut pids = json!({"current": s.pids["current"].as_u64().unwrap_or(0)});
    if let Some(l) = s.pids["limit"].as_u64().filter(|l| *l > 0) {
        pids["limit"] = json!(l);
    }
    v["pids_stats"] = pids;
    let usage = &s.memory["usage"];
    let mut limit = usage["limit"].as_u64().unwrap_or(0);
    let machine = machine_memory();
    if machine > 0 && (limit == 0 || limit > machine) {
        limit = machine;
    }
    v["memory_stats"] = json!({
        "usage": usage["usage"].as_u64().unwrap_or(0),
        "max_usage": usage["max"].as_u64().unwrap_or(0),
        "failcnt": usage["failcnt"].as_u64().unwrap_or(0),
        "limit": limit,
        "stats": s.memory["raw"].as_object().cloned().unwrap_or_default(),
    });
    let b = &s.blkio;
    v["blkio_stats"] = json!({
        "io_service_bytes_recursive": blkio_list(&b["ioServiceBytesRecursive"]),
        "io_serviced_recursive": blkio_list(&b["ioServicedRecursive"]),
        "io_queue_recursive": blkio_list(&b["ioQueueRecursive"]),
        "io_service_time_recursive": blkio_list(&b["ioServiceTimeRecursive"]),
        "io_wait_time_recursive": blkio_list(&b["ioWaitTimeRecursive"]),
        "io_merged_recursive": blkio_list(&b["ioMergedRecursive"]),
        "io_time_recursive": blkio_list(&b["ioTimeRecursive"]),
        "sectors_recursive": blkio_list(&b["sectorsRecursive"]),
    });
    if s.networks.as_object().is_some_and(|m| !m.is_empty()) {
        v["networks"] = s.networks.clone();
    }
    v
}

impl Engine {
    /// One sample of container `c`, None when it is not running (or stopped meanwhile).
    async fn sample(&self, c: &Container) -> Option<Sample> {
        if c.state.status != "running" || c.state.pid <= 0 {
            return None;
        }
        let read = now();
        let data = match self.runc.stats(&c.id).await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(container = %c.id, error = %e, "stats");
                return None;
            }
        };
        let networks = std::fs::read_to_string(format!("/proc/{}/net/dev", c.state.pid))
            .map(|t| parse_net_dev(&t))
            .unwrap_or_else(|_| json!({}));
        let mut cpu = data["cpu"].clone();
        cpu["system_cpu_usage"] = json!(system_cpu_usage());
        Some(Sample {
            read,
            cpu,
            memory: data["memory"].clone(),
            pids: data["pids"].clone(),
            blkio: data["blkio"].clone(),
            networks,
        })
    }

    /// GET /containers/{id}/stats?stream=&one-shot=: Docker's stats objects of the
    /// container, sent on the returned channel. `stream`: one object a second until the
    /// receiver is dropped (the client went), the first with zeroed `precpu_stats`.
    /// Otherwise one object: with `one_shot` at once (zeroed `precpu_stats`), else after
    /// a second sample one second later so that `precpu_stats` is filled (as dockerd).
    /// A container that does not run gives zeroed stats (`read` is 0001-01-01).
    ///
    /// Errors: 404 no such container.
    pub async fn container_stats(
        self: &std::sync::Arc<Self>,
        key: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<mpsc::Receiver<Value>, EngineError> {
        let id = self.state.lock().await.container(key)?.id.clone();
        let (tx, rx) = mpsc::channel(2);
        let engine = self.clone();
        tokio::spawn(async move {
            let current = |e: &std::sync::Arc<Engine>| {
                let e = e.clone();
                let id = id.clone();
                async move { e.state.lock().await.containers.get(&id).cloned() }
            };
            let mut pre: Option<Sample> = None;
            if !stream && !one_shot {
                if let Some(c) = current(&engine).await {
                    pre = engine.sample(&c).await;
                    if pre.is_some() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            loop {
                let Some(c) = current(&engine).await else {
                    return;
                };
                let cur = engine.sample(&c).await;
                let v = stats_json(&c, cur.as_ref(), pre.as_ref());
                if tx.send(v).await.is_err() || !stream {
                    return;
                }
                pre = cur;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_counters() {
        let t = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0:    1500      12    1    2    0     0          0         0      900       7    3    4    0     0       0          0\n";
        let v = parse_net_dev(t);
        assert!(v.get("lo").is_none());
        assert_eq!(
            v["eth0"],
            json!({"rx_bytes": 1500, "rx_packets": 12, "rx_errors": 1, "rx_dropped": 2,
                   "tx_bytes": 900, "tx_packets": 7, "tx_errors": 3, "tx_dropped": 4})
        );
    }
}
