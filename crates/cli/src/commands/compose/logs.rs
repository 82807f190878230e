//! `compose logs` and the output of an attached `compose up`: every
//! container's lines prefixed with `service-N | `, streams interleaved as
//! they come.

use std::io::Write;

use crate::client::{empty_body, next_chunk, path_escape, Client, Query};
use crate::error::Result;
use crate::stream::Demuxer;

use super::{label, name_of, project_containers, LogsArgs};
use tether_compose::plan::LABEL_SERVICE;
use tether_compose::Project;

/// A container whose output to show.
#[derive(Debug, Clone)]
pub struct Target {
    /// Container id.
    pub id: String,
    /// The prefix (`web-1`).
    pub prefix: String,
    /// Whether the container has a terminal (raw output, no stream framing).
    pub tty: bool,
    /// `tail` query value (`all`, or a number of lines).
    pub tail: String,
}

/// The name shown in prefixes: the container name without `<project>-`.
pub fn short_name(project: &str, container: &str) -> String {
    container
        .strip_prefix(&format!("{project}-"))
        .unwrap_or(container)
        .to_string()
}

/// Splits a stream into lines, keeping a partial last line for later.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let s = String::from_utf8_lossy(&line[..line.len() - 1]);
            out.push(s.trim_end_matches('\r').to_string());
        }
        out
    }

    fn rest(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            None
        } else {
            let s = String::from_utf8_lossy(&self.buf).to_string();
            self.buf.clear();
            Some(s)
        }
    }
}

/// `{prefix padded to width} | {line}`.
pub fn prefixed(prefix: &str, width: usize, line: &str) -> String {
    format!("{prefix:<width$} | {line}")
}

fn print_line(prefix: Option<(&str, usize)>, line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = match prefix {
        Some((p, w)) => writeln!(o, "{}", prefixed(p, w, line)),
        None => writeln!(o, "{line}"),
    };
    let _ = o.flush();
}

async fn stream_one(
    client: Client,
    t: Target,
    width: usize,
    follow: bool,
    timestamps: bool,
    with_prefix: bool,
    report_exit: bool,
) -> Result<()> {
    let q = Query::new()
        .add("stdout", "1")
        .add("stderr", "1")
        .add_if(follow, "follow", "1")
        .add_if(timestamps, "timestamps", "1")
        .add("tail", t.tail.clone());
    let resp = client
        .request(
            hyper::Method::GET,
            &format!("/containers/{}/logs{}", path_escape(&t.id), q.encode()),
            empty_body(),
            None,
        )
        .await?;
    let mut body = resp.into_body();
    let mut demux = Demuxer::default();
    let mut lines = Lines::default();
    let prefix = with_prefix.then_some((t.prefix.as_str(), width));
    while let Some(chunk) = next_chunk(&mut body).await? {
        let data: Vec<u8> = if t.tty {
            chunk.to_vec()
        } else {
            demux
                .push(&chunk)
                .into_iter()
                .flat_map(|(_, d)| d)
                .collect()
        };
        for l in lines.push(&data) {
            print_line(prefix, &l);
        }
    }
    if let Some(l) = lines.rest() {
        print_line(prefix, &l);
    }
    if report_exit {
        if let Ok(v) = client
            .get_json(&format!("/containers/{}/json", path_escape(&t.id)))
            .await
        {
            if v["State"]["Running"] != serde_json::Value::Bool(true) {
                let code = v["State"]["ExitCode"].as_i64().unwrap_or(0);
                print_line(None, &format!("{} exited with code {code}", t.prefix));
            }
        }
    }
    Ok(())
}

/// Streams every target's output concurrently until all streams end.
pub async fn follow_all(
    client: &Client,
    targets: Vec<Target>,
    follow: bool,
    timestamps: bool,
    with_prefix: bool,
    report_exit: bool,
) -> Result<()> {
    // Compose pads the names to the longest plus one
    let width = targets.iter().map(|t| t.prefix.len()).max().unwrap_or(0) + 1;
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|t| {
            tokio::spawn(stream_one(
                client.clone(),
                t,
                width,
                follow,
                timestamps,
                with_prefix,
                report_exit,
            ))
        })
        .collect();
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Err(e)) if first_err.is_none() => first_err = Some(e),
            _ => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `compose logs [-f] [--tail N] [-t] [--no-log-prefix] [SERVICE...]`.
pub async fn logs(client: &Client, p: &Project, a: &LogsArgs) -> Result<()> {
    let list = project_containers(client, &p.name, None, false).await?;
    let tty_of = |svc: &str| p.services.get(svc).is_some_and(|s| s.tty);
    let mut targets: Vec<Target> = list
        .iter()
        .filter(|c| a.services.is_empty() || a.services.contains(&label(c, LABEL_SERVICE)))
        .map(|c| Target {
            id: c["Id"].as_str().unwrap_or("").to_string(),
            prefix: short_name(&p.name, &name_of(c)),
            tty: tty_of(&label(c, LABEL_SERVICE)),
            tail: a.tail.clone(),
        })
        .collect();
    targets.sort_by_key(|t| t.prefix.clone());
    follow_all(
        client,
        targets,
        a.follow,
        a.timestamps,
        !a.no_log_prefix,
        false,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_lines() {
        assert_eq!(short_name("p", "p-web-1"), "web-1");
        assert_eq!(short_name("p", "custom"), "custom");
        assert_eq!(prefixed("db-1", 5, "pong"), "db-1  | pong");
        let mut l = Lines::default();
        assert_eq!(l.push(b"a\nb"), ["a"]);
        assert_eq!(l.push(b"c\r\n"), ["bc"]);
        assert_eq!(l.rest(), None);
        l.push(b"tail");
        assert_eq!(l.rest().as_deref(), Some("tail"));
    }
}
