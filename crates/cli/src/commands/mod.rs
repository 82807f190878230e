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
pub mod volume;

use crate::args::PROG;
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

/// Runs `args` (command name first) against `client`.
pub async fn dispatch(client: &Client, args: &[String]) -> Result<()> {
    let Some(cmd) = args.first() else {
        print_help();
        return Ok(());
    };
    let rest = &args[1..];
    let p = |name: &str| format!("{PROG} {name}");
    match cmd.as_str() {
        "run" => container::run(client, &p("run"), rest).await,
        "create" => container::create(client, &p("create"), rest).await,
        "start" => container::start(client, &p("start"), rest).await,
        "stop" => lifecycle::stop(client, &p("stop"), rest).await,
        "restart" => lifecycle::restart(client, &p("restart"), rest).await,
        "kill" => lifecycle::kill(client, &p("kill"), rest).await,
        "rm" => lifecycle::rm(client, &p("rm"), rest).await,
        "wait" => lifecycle::wait(client, &p("wait"), rest).await,
        "port" => lifecycle::port(client, &p("port"), rest).await,
        "logs" => logs::logs(client, &p("logs"), rest).await,
        "rename" => manage::rename(client, &p("rename"), rest).await,
        "pause" => manage::pause(client, &p("pause"), "pause", rest).await,
        "unpause" => manage::pause(client, &p("unpause"), "unpause", rest).await,
        "top" => manage::top(client, &p("top"), rest).await,
        "update" => manage::update(client, &p("update"), rest).await,
        "stats" => manage::stats(client, &p("stats"), rest).await,
        "exec" => exec::exec(client, &p("exec"), rest).await,
        "cp" => cp::cp(client, &p("cp"), rest).await,
        "export" => cp::export(client, &p("export"), rest).await,
        "diff" => cp::diff(client, &p("diff"), rest).await,
        "ps" => ps::ps(client, &p("ps"), rest).await,
        "inspect" => inspect::inspect(client, &p("inspect"), rest).await,
        "images" => image::images(client, &p("images"), rest).await,
        "rmi" => image::rmi(client, &p("rmi"), rest).await,
        "tag" => image::tag(client, &p("tag"), rest).await,
        "import" => image::import(client, &p("import"), rest).await,
        "load" => image::load(client, &p("load"), rest).await,
        "build" => build::build(client, &p("build"), rest).await,
        "pull" => image::pull(client, &p("pull"), rest).await,
        "push" => registry::push(client, &p("push"), rest).await,
        "commit" => image_ops::commit(client, &p("commit"), rest).await,
        "history" => image_ops::history(client, &p("history"), rest).await,
        "save" => image_ops::save(client, &p("save"), rest).await,
        "login" => registry::login(client, &p("login"), rest).await,
        "logout" => registry::logout(client, &p("logout"), rest).await,
        "search" => registry::search(client, &p("search"), rest).await,
        "version" => system::version(client, &p("version"), rest).await,
        "info" => system::info(client, &p("info"), rest).await,
        "container" => container_cmd(client, rest).await,
        "image" => image_cmd(client, rest).await,
        "network" => network::dispatch(client, rest).await,
        "node" => node::dispatch(client, rest).await,
        "volume" => volume::dispatch(client, rest).await,
        "compose" => compose::compose(client, rest).await,
        "builder" => match rest.first().map(String::as_str) {
            Some("prune") => {
                image_ops::builder_prune(client, &p("builder prune"), &rest[1..]).await
            }
            _ => unknown_sub("builder", rest),
        },
        "system" => match rest.first().map(String::as_str) {
            Some("info") => system::info(client, &p("system info"), &rest[1..]).await,
            Some("df") => image_ops::df(client, &p("system df"), &rest[1..]).await,
            _ => unknown_sub("system", rest),
        },
        "help" => {
            if rest.is_empty() {
                print_help();
                Ok(())
            } else {
                let mut v = rest.to_vec();
                v.push("--help".into());
                Box::pin(dispatch(client, &v)).await
            }
        }
        other => Err(CliError::msg(format!(
            "{PROG}: '{other}' is not a {PROG} command.\nSee '{PROG} --help'"
        ))),
    }
}

fn unknown_sub(group: &str, rest: &[String]) -> Result<()> {
    match rest.first() {
        None => {
            outln!("\nUsage:  {PROG} {group} COMMAND\n\nRun '{PROG} {group} COMMAND --help' for more information on a command.");
            Ok(())
        }
        Some(s) if s == "--help" || s == "-h" => {
            outln!("\nUsage:  {PROG} {group} COMMAND\n\nRun '{PROG} {group} COMMAND --help' for more information on a command.");
            Ok(())
        }
        Some(s) => Err(CliError::msg(format!(
            "{PROG} {group}: '{s}' is not a {PROG} {group} command.\nSee '{PROG} {group} --help'"
        ))),
    }
}

async fn container_cmd(client: &Client, rest: &[String]) -> Result<()> {
    let Some(sub) = rest.first() else {
        return unknown_sub("container", rest);
    };
    let args = &rest[1..];
    let p = |name: &str| format!("{PROG} container {name}");
    match sub.as_str() {
        "run" => container::run(client, &p("run"), args).await,
        "create" => container::create(client, &p("create"), args).await,
        "start" => container::start(client, &p("start"), args).await,
        "stop" => lifecycle::stop(client, &p("stop"), args).await,
        "restart" => lifecycle::restart(client, &p("restart"), args).await,
        "kill" => lifecycle::kill(client, &p("kill"), args).await,
        "rm" | "remove" => lifecycle::rm(client, &p("rm"), args).await,
        "wait" => lifecycle::wait(client, &p("wait"), args).await,
        "port" => lifecycle::port(client, &p("port"), args).await,
        "prune" => lifecycle::prune(client, &p("prune"), args).await,
        "commit" => image_ops::commit(client, &p("commit"), args).await,
        "logs" => logs::logs(client, &p("logs"), args).await,
        "rename" => manage::rename(client, &p("rename"), args).await,
        "pause" => manage::pause(client, &p("pause"), "pause", args).await,
        "unpause" => manage::pause(client, &p("unpause"), "unpause", args).await,
        "top" => manage::top(client, &p("top"), args).await,
        "update" => manage::update(client, &p("update"), args).await,
        "stats" => manage::stats(client, &p("stats"), args).await,
        "exec" => exec::exec(client, &p("exec"), args).await,
        "cp" => cp::cp(client, &p("cp"), args).await,
        "export" => cp::export(client, &p("export"), args).await,
        "diff" => cp::diff(client, &p("diff"), args).await,
        "ls" | "ps" | "list" => ps::ps(client, &p("ls"), args).await,
        "inspect" => inspect::container_inspect(client, &p("inspect"), args).await,
        _ => unknown_sub("container", rest),
    }
}

async fn image_cmd(client: &Client, rest: &[String]) -> Result<()> {
    let Some(sub) = rest.first() else {
        return unknown_sub("image", rest);
    };
    let args = &rest[1..];
    let p = |name: &str| format!("{PROG} image {name}");
    match sub.as_str() {
        "ls" | "list" => image::images(client, &p("ls"), args).await,
        "rm" | "remove" => image::rmi(client, &p("rm"), args).await,
        "tag" => image::tag(client, &p("tag"), args).await,
        "import" => image::import(client, &p("import"), args).await,
        "load" => image::load(client, &p("load"), args).await,
        "build" => build::build(client, &p("image build"), args).await,
        "pull" => image::pull(client, &p("pull"), args).await,
        "push" => registry::push(client, &p("push"), args).await,
        "inspect" => inspect::image_inspect(client, &p("inspect"), args).await,
        "prune" => image::prune(client, &p("prune"), args).await,
        "history" => image_ops::history(client, &p("history"), args).await,
        "save" => image_ops::save(client, &p("save"), args).await,
        _ => unknown_sub("image", rest),
    }
}

/// Top-level usage.
pub fn print_help() {
    outln!(
        "
Usage:  {PROG} [OPTIONS] COMMAND

A docker-compatible container engine

Common Commands:
  run         Create and run a new container from an image
  exec        Execute a command in a running container
  ps          List containers
  build       Build an image from a Dockerfile
  images      List images
  import      Import the contents from a tarball to create a filesystem image
  load        Load an image from a tar archive or STDIN
  pull        Download an image from a registry
  push        Upload an image to a registry
  login       Authenticate to a registry
  logout      Log out from a registry
  search      Search a registry for images
  version     Show the tether version information
  info        Display system-wide information

Management Commands:
  builder     Manage builds (prune the build cache)
  compose     Define and run multi-container applications
  container   Manage containers
  image       Manage images
  network     Manage networks
  node        List the hosts of the cluster (--cluster-store)
  system      Manage tether (info, df)
  volume      Manage volumes

Commands:
  commit      Create a new image from a container's changes
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  diff        Inspect changes to files or directories on a container's filesystem
  export      Export a container's filesystem as a tar archive
  history     Show the history of an image
  inspect     Return low-level information on objects
  kill        Kill one or more running containers
  logs        Fetch the logs of a container
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  rmi         Remove one or more images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  wait        Block until one or more containers stop, then print their exit codes

Global Options:
  -D, --debug              Enable debug mode
  -H, --host string        Daemon socket to connect to (default {})
  -l, --log-level string   Set the logging level (\"debug\", \"info\", \"warn\", \"error\", \"fatal\")
  -v, --version            Print version information and quit

Run '{PROG} COMMAND --help' for more information on a command.",
        crate::client::DEFAULT_HOST
    );
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
