//! The commands and the dispatcher that maps docker's command names
//! (`run`, `container run`, `rmi`, `image rm`, ...) onto them.

pub mod build;
pub mod compose;
pub mod container;
pub mod cp;
pub mod exec;
pub mod explain;
pub mod image;
pub mod image_ops;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod manage;
pub mod network;
pub mod node;
pub mod ps;
pub mod registry;
pub mod system;
pub mod tree;
pub mod volume;

use crate::client::{next_chunk, Client, JsonStream};
use crate::error::{CliError, Result};

/// Writes a line to stdout, ignoring a closed pipe.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, $($t)*);
        let _ = o.flush();
    }};
}

/// Writes to stdout without a newline, ignoring a closed pipe.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        let _ = write!(o, $($t)*);
        let _ = o.flush();
    }};
}

/// Writes a line to stderr.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

/// Runs `args` (command name first) against `client`: parsed into the command tree
/// ([`tree::Cmd`]) and run; no command prints the help.
pub async fn dispatch(client: &Client, args: &[String]) -> Result<()> {
    if args.is_empty() {
        print_help();
        return Ok(());
    }
    tree::run(client, tree::parse(args)?).await
}

/// Top-level usage, rendered from the command tree.
pub fn print_help() {
    outln!("{}", tree::help());
}

/// Prints a prune's answer `v` as docker does: under `heading`, the ids listed in
/// `v[key]` (when there are any) and a blank line, then `Total reclaimed space: SIZE`
/// from `SpaceReclaimed`. `item` renders one listed entry (lines ending in `\n`).
pub(crate) fn print_pruned(
    v: &serde_json::Value,
    key: &str,
    heading: &str,
    item: impl Fn(&serde_json::Value) -> String,
) {
    let mut text = String::new();
    if let Some(list) = v[key].as_array().filter(|l| !l.is_empty()) {
        text.push_str(heading);
        text.push('\n');
        for x in list {
            text.push_str(&item(x));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}",
        crate::format::humanize::human_size(v["SpaceReclaimed"].as_u64().unwrap_or(0) as f64)
    ));
    outln!("{text}");
}

/// One listed id of a prune's answer, on a line of its own.
pub(crate) fn pruned_id(x: &serde_json::Value) -> String {
    x.as_str().map(|id| format!("{id}\n")).unwrap_or_default()
}

/// Shows a docker JSON progress stream (pull, import, load) like
/// `jsonmessage.DisplayJSONMessagesStream` on a non-terminal; an `error`
/// message ends it with that error.
pub async fn display_json_stream(
    resp: hyper::Response<hyper::body::Incoming>,
    to_stderr: bool,
) -> Result<()> {
    let is_json = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.contains("json"));
    let mut body = resp.into_body();
    let write = |s: &str| {
        if to_stderr {
            use std::io::Write as _;
            let _ = std::io::stderr().lock().write_all(s.as_bytes());
        } else {
            out!("{s}");
        }
    };
    if !is_json {
        while let Some(chunk) = next_chunk(&mut body).await? {
            write(&String::from_utf8_lossy(&chunk));
        }
        return Ok(());
    }
    let mut js = JsonStream::default();
    while let Some(chunk) = next_chunk(&mut body).await? {
        for m in js.push(&chunk) {
            if let Some(err) = m.get("error").and_then(|e| e.as_str()) {
                let msg = m
                    .get("errorDetail")
                    .and_then(|d| d.get("message"))
                    .and_then(|e| e.as_str())
                    .unwrap_or(err);
                return Err(CliError::msg(msg.to_string()));
            }
            write(&json_message_line(&m));
        }
    }
    let rest = String::from_utf8_lossy(js.rest()).to_string();
    if !rest.trim().is_empty() {
        write(&rest);
    }
    Ok(())
}

/// One progress message as docker prints it without a terminal.
pub fn json_message_line(m: &serde_json::Value) -> String {
    let s = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("");
    if !s("stream").is_empty() {
        return s("stream").to_string();
    }
    let mut line = String::new();
    if !s("id").is_empty() {
        line.push_str(&format!("{}: ", s("id")));
    }
    line.push_str(s("status"));
    if !s("progress").is_empty() {
        line.push(' ');
        line.push_str(s("progress"));
    }
    if line.is_empty() && m.get("aux").is_some() {
        return String::new();
    }
    line.push('\n');
    line
}

/// Which failures a multi-target command forgives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// A target that does not exist is an error like any other.
    Fail,
    /// A target that does not exist is passed over in silence (`-f`).
    Ignore,
}

impl Missing {
    /// [`Missing::Ignore`] when `force` is set, else [`Missing::Fail`].
    pub fn ignored_if(force: bool) -> Self {
        if force {
            Missing::Ignore
        } else {
            Missing::Fail
        }
    }
}

/// The reported outcomes of a multi-target command, gathered in argument
/// order like docker's `parallelOperation` and its sequential cousins.
struct Outcomes {
    missing: Missing,
    errs: Vec<String>,
}

impl Outcomes {
    /// An empty report that forgives what `missing` says.
    fn new(missing: Missing) -> Self {
        Outcomes {
            missing,
            errs: Vec::new(),
        }
    }

    /// Takes one target's result: `show`s a success, fails at once on a
    /// connection error (the remaining targets are not reported), drops a
    /// forgiven not-found error and keeps any other error's text for
    /// [`Outcomes::finish`].
    fn record<T>(&mut self, name: &str, r: Result<T>, show: &impl Fn(&str, T)) -> Result<()> {
        match r {
            Ok(v) => show(name, v),
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) if self.missing == Missing::Ignore && e.is_not_found() => {}
            Err(e) => self.errs.push(e.to_string()),
        }
        Ok(())
    }

    /// Fails with every kept error, one a line (exit 1), or succeeds.
    fn finish(self) -> Result<()> {
        if self.errs.is_empty() {
            Ok(())
        } else {
            Err(CliError::msg(self.errs.join("\n")))
        }
    }
}

/// Prints a target's name: what most multi-target commands show on success.
pub fn show_name<T>(name: &str, _: T) {
    outln!("{name}");
}

/// Runs `f` for each name concurrently and reports in order like docker's
/// `parallelOperation`: `show`s each success (usually [`show_name`]),
/// collects `Error response from daemon: ...` lines and fails with all of
/// them (exit 1); a connection error fails at once.
pub async fn for_each<'a, T, F, Fut>(
    names: &'a [String],
    missing: Missing,
    f: F,
    show: impl Fn(&str, T),
) -> Result<()>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let results = futures::future::join_all(names.iter().map(|n| f(n))).await;
    let mut outcomes = Outcomes::new(missing);
    for (name, r) in names.iter().zip(results) {
        outcomes.record(name, r, &show)?;
    }
    outcomes.finish()
}

/// Like [`for_each`], but runs `f` for one name after another, `show`ing
/// each result as it comes; a connection error stops before the next name.
pub async fn for_each_seq<'a, T, F, Fut>(
    names: &'a [String],
    missing: Missing,
    f: F,
    show: impl Fn(&str, T),
) -> Result<()>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut outcomes = Outcomes::new(missing);
    for name in names {
        outcomes.record(name, f(name).await, &show)?;
    }
    outcomes.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn daemon(status: u16, message: &str) -> CliError {
        CliError::Daemon {
            status,
            message: message.into(),
        }
    }

    /// The outcome for a target: `ok*` succeeds with its length, `gone*` is
    /// a 404, `down*` cannot connect, anything else is a 500.
    async fn outcome(n: &str) -> Result<usize> {
        if n.starts_with("ok") {
            Ok(n.len())
        } else if n.starts_with("gone") {
            Err(daemon(404, &format!("No such container: {n}")))
        } else if n.starts_with("down") {
            Err(CliError::Connect { host: "h".into() })
        } else {
            Err(daemon(500, &format!("cannot touch {n}")))
        }
    }

    #[tokio::test]
    async fn for_each_reports_in_order() {
        for parallel in [true, false] {
            let shown = RefCell::new(Vec::new());
            let show = |n: &str, len: usize| shown.borrow_mut().push(format!("{n}={len}"));
            let list = names(&["ok1", "bad", "gone", "ok22"]);
            let r = if parallel {
                for_each(&list, Missing::Fail, outcome, show).await
            } else {
                for_each_seq(&list, Missing::Fail, outcome, show).await
            };
            assert_eq!(*shown.borrow(), ["ok1=3", "ok22=4"]);
            let e = r.unwrap_err();
            assert!(matches!(e, CliError::Message(_)));
            assert_eq!(
                e.to_string(),
                "Error response from daemon: cannot touch bad\n\
                 Error response from daemon: No such container: gone"
            );
        }
    }

    #[tokio::test]
    async fn for_each_forgives_missing_with_force() {
        let list = names(&["gone", "ok"]);
        let shown = RefCell::new(Vec::new());
        let show = |n: &str, _| shown.borrow_mut().push(n.to_string());
        assert!(for_each(&list, Missing::ignored_if(true), outcome, show)
            .await
            .is_ok());
        assert!(for_each_seq(&list, Missing::Ignore, outcome, show)
            .await
            .is_ok());
        assert_eq!(*shown.borrow(), ["ok", "ok"]);
        assert_eq!(Missing::ignored_if(false), Missing::Fail);
        // A forgiven 404 does not forgive other errors.
        let list = names(&["gone", "bad"]);
        let e = for_each_seq(&list, Missing::Ignore, outcome, show)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error response from daemon: cannot touch bad"
        );
    }

    #[tokio::test]
    async fn for_each_stops_on_connect_error() {
        let list = names(&["ok", "bad", "down", "ok2"]);
        // Sequential: nothing after the connection error is run or shown.
        let ran = RefCell::new(Vec::new());
        let shown = RefCell::new(Vec::new());
        let show = |n: &str, _| shown.borrow_mut().push(n.to_string());
        let e = for_each_seq(
            &list,
            Missing::Fail,
            |n| {
                ran.borrow_mut().push(n.to_string());
                outcome(n)
            },
            show,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, CliError::Connect { .. }));
        assert_eq!(*ran.borrow(), ["ok", "bad", "down"]);
        assert_eq!(*shown.borrow(), ["ok"]);
        // Concurrent: all run, but nothing after it is shown.
        shown.borrow_mut().clear();
        let e = for_each(&list, Missing::Fail, outcome, show)
            .await
            .unwrap_err();
        assert!(matches!(e, CliError::Connect { .. }));
        assert_eq!(*shown.borrow(), ["ok"]);
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            json_message_line(&serde_json::json!({"status": "sha256:abc"})),
            "sha256:abc\n"
        );
        assert_eq!(
            json_message_line(&serde_json::json!({"stream": "Loaded image: tbox:latest\n"})),
            "Loaded image: tbox:latest\n"
        );
        assert_eq!(
            json_message_line(
                &serde_json::json!({"status": "Pulling from library/x", "id": "latest"})
            ),
            "latest: Pulling from library/x\n"
        );
    }
}
