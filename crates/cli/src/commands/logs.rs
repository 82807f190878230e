//! `logs` (docker/cli `container/logs.go`).

use clap::Parser;

use crate::args::{exact_args, parse};
use crate::client::{empty_body, next_chunk, path_escape, Client, Query};
use crate::error::Result;
use crate::stream::OutputSink;

/// `tether logs`.
#[derive(Parser, Debug)]
#[command(
    name = "logs",
    override_usage = "tether logs [OPTIONS] CONTAINER",
    about = "Fetch the logs of a container"
)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Show logs before a timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    until: Option<String>,
    containers: Vec<String>,
}

/// docker's relative/absolute time flags: "42m" becomes a Unix timestamp.
fn time_param(v: &str) -> String {
    if let Ok(ns) = crate::opts::parse_duration(v) {
        let now = chrono::Utc::now().timestamp();
        return (now - ns / 1_000_000_000).to_string();
    }
    if let Some(t) = crate::format::humanize::parse_rfc3339(v) {
        return t.to_string();
    }
    v.to_string()
}

/// The logs query string.
pub fn logs_query(a: &LogsArgs) -> String {
    let q = Query::new()
        .add("stdout", "1")
        .add("stderr", "1")
        .add_if(a.follow, "follow", "1")
        .add_if(a.timestamps, "timestamps", "1")
        .add_if(a.details, "details", "1")
        .add("tail", a.tail.clone());
    let q = match &a.since {
        Some(s) => q.add("since", time_param(s)),
        None => q,
    };
    let q = match &a.until {
        Some(s) => q.add("until", time_param(s)),
        None => q,
    };
    q.encode()
}

/// `tether logs [-f] [--tail N] [-t] CONTAINER`: raw output for TTY
/// containers, demultiplexed stdout/stderr otherwise.
pub async fn logs(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: LogsArgs = parse(path, args)?;
    exact_args::<LogsArgs>(path, a.containers.len(), 1)?;
    let name = &a.containers[0];
    let c = client
        .get_json(&format!("/containers/{}/json", path_escape(name)))
        .await?;
    let tty = c["Config"]["Tty"] == serde_json::Value::Bool(true);
    let resp = client
        .request(
            hyper::Method::GET,
            &format!("/containers/{}/logs{}", path_escape(name), logs_query(&a)),
            empty_body(),
            None,
        )
        .await?;
    let mut body = resp.into_body();
    let mut sink = OutputSink::new(tty);
    while let Some(chunk) = next_chunk(&mut body).await? {
        sink.write(&chunk)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        let a: LogsArgs = parse(
            "tether logs",
            &[
                "-f".into(),
                "--tail".into(),
                "5".into(),
                "-t".into(),
                "web".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            logs_query(&a),
            "?stdout=1&stderr=1&follow=1&timestamps=1&tail=5"
        );
        let a: LogsArgs = parse("tether logs", &["web".into()]).unwrap();
        assert_eq!(logs_query(&a), "?stdout=1&stderr=1&tail=all");
    }
}
