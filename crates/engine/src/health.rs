//! Healthchecks (Config.Healthcheck, Docker API "Health"): while a container runs, its test
//! is run every `Interval` as an exec process; `Status` goes `starting` -> `healthy` on a
//! success, and to `unhealthy` after `Retries` consecutive failures (failures inside
//! `StartPeriod` do not count until the first success).

use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{ExecConfig, HealthConfig};
use serde::{Deserialize, Serialize};

use crate::state;
use crate::Engine;

/// One probe's result.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Probe {
    /// RFC 3339 start.
    pub start: String,
    /// RFC 3339 end.
    pub end: String,
    /// The test's exit code (-1 when it timed out or could not run).
    pub exit_code: i64,
    /// Its output, cut to 4 KiB.
    pub output: String,
}

/// A container's health (State.Health).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Health {
    /// "starting", "healthy" or "unhealthy".
    pub status: String,
    /// Consecutive failures.
    pub failing_streak: i64,
    /// The last five probes.
    pub log: Vec<Probe>,
}

/// The command a healthcheck test runs, or None for no check (`NONE`, empty, disabled).
pub fn test_command(hc: &HealthConfig) -> Option<Vec<String>> {
    let t = hc.test.clone().unwrap_or_default();
    match t.first().map(String::as_str) {
        None | Some("NONE") => None,
        Some("CMD") => Some(t[1..].to_vec()).filter(|v| !v.is_empty()),
        Some("CMD-SHELL") => t
            .get(1)
            .map(|c| vec!["/bin/sh".to_string(), "-c".to_string(), c.clone()]),
        Some(_) => Some(t),
    }
}

fn dur(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

impl Engine {
    /// Starts the healthcheck task of running container `id` when it has a test.
    pub(crate) fn spawn_health(self: &Arc<Self>, id: &str, hc: &HealthConfig) {
        let Some(cmd) = test_command(hc) else { return };
        let interval = dur(hc.interval, Duration::from_secs(30));
        let timeout = dur(hc.timeout, Duration::from_secs(30));
        let start_period = dur(hc.start_period, Duration::ZERO);
        let retries = hc.retries.filter(|r| *r > 0).unwrap_or(3);
        let me = self.clone();
        let cid = id.to_string();
        let started = std::time::Instant::now();
        let task = tokio::spawn(async move {
            let mut ever_healthy = false;
            loop {
                tokio::time::sleep(interval).await;
                let start = state::now();
                let (code, output) = me.probe(&cid, &cmd, timeout).await;
                let probe = Probe {
                    start,
                    end: state::now(),
                    exit_code: code,
                    output,
                };
                let mut st = me.state.lock().await;
                let Some(c) = st.containers.get_mut(&cid) else {
                    return;
                };
                if c.state.status != "running" {
                    return;
                }
                let h = c.state.health.get_or_insert_with(Default::default);
                let before = h.status.clone();
                if code == 0 {
                    h.status = "healthy".into();
                    h.failing_streak = 0;
                    ever_healthy = true;
                } else if ever_healthy || started.elapsed() >= start_period {
                    h.failing_streak += 1;
                    if h.failing_streak >= retries {
                        h.status = "unhealthy".into();
                    }
                }
                h.log.push(probe);
                if h.log.len() > 5 {
                    h.log.remove(0);
                }
                let after = h.status.clone();
                if after != before {
                    let c = c.clone();
                    me.emit_container(&c, format!("health_status: {after}"), &[]);
                }
            }
        });
        self.live_mut(id, |l| {
            if let Some(old) = l.health.replace(task) {
                old.abort();
            }
        });
    }

    /// Runs one probe: (exit code, output); -1 when it could not run or timed out.
    async fn probe(&self, id: &str, cmd: &[String], timeout: Duration) -> (i64, String) {
        let cfg = ExecConfig {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let eid = match self.create_exec(id, cfg).await {
            Ok(e) => e,
            Err(e) => return (-1, e.to_string()),
        };
        let r = match self.start_exec(&eid).await {
            Ok(p) => {
                let Some(mut child) = p.child else {
                    let (m, code) = p.failed.unwrap_or_default();
                    self.finish_exec(&eid, code);
                    return (code, m);
                };
                let read = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        if let Some(mut r) = r {
                            let _ = tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf).await;
                        }
                        buf
                    })
                };
                let out = read(
                    child
                        .stdout
                        .take()
                        .map(|x| Box::new(x) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                );
                let err = read(
                    child
                        .stderr
                        .take()
                        .map(|x| Box::new(x) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                );
                match tokio::time::timeout(timeout, child.wait()).await {
                    Ok(Ok(st)) => {
                        let mut text =
                            String::from_utf8_lossy(&out.await.unwrap_or_default()).into_owned();
                        text.push_str(&String::from_utf8_lossy(&err.await.unwrap_or_default()));
                        text.truncate(4096);
                        (st.code().map(i64::from).unwrap_or(-1), text)
                    }
                    Ok(Err(e)) => (-1, e.to_string()),
                    Err(_) => {
                        // a probe that hangs is killed and reaped, never left behind
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        (
                            -1,
                            format!("Health check exceeded timeout ({}s)", timeout.as_secs()),
                        )
                    }
                }
            }
            Err(e) => (-1, e.to_string()),
        };
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&eid);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn test_commands() {
        let hc = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            test_command(&hc(&["CMD-SHELL", "nc -z x 1"])).unwrap(),
            vec!["/bin/sh", "-c", "nc -z x 1"]
        );
        assert_eq!(test_command(&hc(&["CMD", "true"])).unwrap(), vec!["true"]);
        assert!(test_command(&hc(&["NONE"])).is_none());
        assert!(test_command(&hc(&[])).is_none());
    }
}
