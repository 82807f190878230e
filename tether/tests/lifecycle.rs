//! Container lifecycle through the CLI: run (attached, detached, --rm, --name), ps, logs,
//! exec, stop, rm.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{wait_until, Daemon, IMAGE, TETHER};

const LONG: Duration = Duration::from_secs(60);

/// `ps -a` rows (without the header) that mention `name`.
fn ps_rows(d: &Daemon, all: bool, name: &str) -> Vec<String> {
    let args: &[&str] = if all { &["ps", "-a"] } else { &["ps"] };
    d.ok(args)
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().last() == Some(name))
        .map(str::to_string)
        .collect()
}

#[test]
fn run_propagates_exit_code_and_streams_output() {
    let d = Daemon::start();

    // exit code and output of a short run
    let o = d.cli(&[
        "run",
        IMAGE,
        "sh",
        "-c",
        "echo to-stdout; echo to-stderr >&2; exit 3",
    ]);
    assert_eq!(o.code, 3, "{o}");
    assert_eq!(o.stdout, "to-stdout\n", "{o}");
    assert_eq!(o.stderr, "to-stderr\n", "{o}");

    // output arrives while the container still runs: it waits for a file we create
    // only after having read its first line
    let mut child = Command::new(TETHER)
        .args([
            "-H", &d.host, "run", "--name", "streamer", IMAGE, "sh", "-c",
        ])
        .arg("echo ready; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo done; exit 5")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tether run");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = tx.send(first);
        lines.map_while(Result::ok).collect::<Vec<_>>()
    });
    let first = rx.recv_timeout(LONG);
    if first.is_err() {
        let _ = child.kill();
    }
    assert_eq!(
        first.expect("the first line was not streamed while the container runs"),
        Some("ready".to_string())
    );
    assert_eq!(
        d.inspect("streamer")["State"]["Status"],
        "running",
        "the container should still be waiting for /tmp/go"
    );
    d.ok(&["exec", "streamer", "touch", "/tmp/go"]);
    let mut status = None;
    wait_until("the attached run exits", LONG, || {
        status = child.try_wait().expect("wait for tether run");
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(5));
    assert_eq!(reader.join().expect("reader"), vec!["done".to_string()]);
}

#[test]
fn detached_ps_logs_exec_stop_rm() {
    let d = Daemon::start();

    // run -d prints the full id; ps lists it as Up
    let id = d.run_d(&[
        "--name",
        "web",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 7' TERM; echo started; sleep 1000 & wait",
    ]);
    let rows = ps_rows(&d, false, "web");
    assert_eq!(rows.len(), 1, "ps: {rows:?}");
    assert!(rows[0].starts_with(&id[..12]), "{rows:?}");
    assert!(rows[0].contains(" Up "), "{rows:?}");
    assert_eq!(d.inspect("web")["State"]["Status"], "running");
    // what the harness's teardown checks for is visible while a container runs
    assert_eq!(
        d.monitored(),
        vec![id.clone()],
        "the monitor serves the running container"
    );
    assert_eq!(d.monitor_pids().len(), 1, "one container monitor");
    assert_eq!(
        d.held_netns().len(),
        1,
        "the running container's sandbox is held"
    );
    // its root is mounted in its own namespace only (tests/sandboxes.rs)
    assert!(d.mounts().is_empty(), "{:?}", d.mounts());

    // a container that fails: only in ps -a, as Exited (1)
    let bad = d.run_d(&[
        "--name",
        "bad",
        IMAGE,
        "sh",
        "-c",
        "echo out-line; echo err-line >&2; exit 1",
    ]);
    wait_until("bad exits", LONG, || {
        d.inspect(&bad)["State"]["Status"] == "exited"
    });
    assert!(
        ps_rows(&d, false, "bad").is_empty(),
        "ps without -a lists an exited container"
    );
    let rows = ps_rows(&d, true, "bad");
    assert_eq!(rows.len(), 1, "ps -a: {rows:?}");
    assert!(rows[0].contains("Exited (1)"), "{rows:?}");
    assert_eq!(d.inspect("bad")["State"]["ExitCode"], 1);

    // logs carry both streams
    let logs = d.cli(&["logs", "bad"]);
    assert!(logs.success(), "{logs}");
    assert!(logs.stdout.contains("out-line"), "{logs}");
    assert!(logs.stderr.contains("err-line"), "{logs}");
    wait_until("web logged its start", LONG, || {
        d.ok(&["logs", "web"]) == "started"
    });

    // exec: output and exit code
    let o = d.sh("web", "echo in-exec; echo exec-err >&2; exit 4");
    assert_eq!(o.code, 4, "{o}");
    assert_eq!(o.stdout, "in-exec\n", "{o}");
    assert_eq!(o.stderr, "exec-err\n", "{o}");
    assert_eq!(d.sh("web", "hostname").out(), &id[..12]);

    // rm of a running container is refused (409) and leaves it running
    let (st, v) = d.api("DELETE", "/containers/web", None);
    assert_eq!(st, 409, "{v}");
    let o = d.fails(&["rm", "web"]);
    assert!(
        o.stderr.contains("cannot remove a running container"),
        "{o}"
    );
    assert_eq!(d.inspect("web")["State"]["Status"], "running");

    // stop delivers SIGTERM: the trap exits 7
    assert_eq!(d.ok(&["stop", "web"]), "web");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "exited"
    );
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "web"]), "7");
    let rows = ps_rows(&d, true, "web");
    assert!(
        rows.len() == 1 && rows[0].contains("Exited (7)"),
        "{rows:?}"
    );

    // rm of stopped containers works; they are gone
    assert_eq!(d.ok(&["rm", "web", "bad"]), "web\nbad");
    assert!(ps_rows(&d, true, "web").is_empty());
    let (st, _) = d.api("GET", &format!("/containers/{id}/json"), None);
    assert_eq!(st, 404);

    // rm -f of a running one works
    d.run_d(&["--name", "forced", IMAGE, "sleep", "1000"]);
    assert_eq!(d.ok(&["rm", "-f", "forced"]), "forced");
    assert!(ps_rows(&d, true, "forced").is_empty());

    // a created, never started container: only in ps -a, as Created
    let id = d.ok(&["create", "--name", "fresh", IMAGE, "true"]);
    assert_eq!(id.len(), 64, "{id}");
    assert!(ps_rows(&d, false, "fresh").is_empty());
    let rows = ps_rows(&d, true, "fresh");
    assert!(rows.len() == 1 && rows[0].contains("Created"), "{rows:?}");
    assert_eq!(d.inspect("fresh")["State"]["Status"], "created");
}

#[test]
fn auto_remove_and_name_conflicts() {
    let d = Daemon::start();

    // --rm, attached: gone when run returns, exit code kept
    let o = d.cli(&[
        "run",
        "--rm",
        "--name",
        "once",
        IMAGE,
        "sh",
        "-c",
        "echo bye; exit 2",
    ]);
    assert_eq!(o.code, 2, "{o}");
    assert_eq!(o.out(), "bye");
    assert!(!d.ok(&["ps", "-a"]).contains("once"));

    // --rm, detached: gone after it exits by itself
    let id = d.run_d(&["--rm", "--name", "brief", IMAGE, "sh", "-c", "sleep 0.3"]);
    wait_until("the --rm container vanishes", LONG, || {
        d.api("GET", &format!("/containers/{id}/json"), None).0 == 404
    });
    assert!(!d.ok(&["ps", "-a"]).contains("brief"));

    // --rm, stopped: gone too
    let id = d.run_d(&["--rm", "--name", "stopped", IMAGE, "sleep", "1000"]);
    d.ok(&["stop", "-t", "1", "stopped"]);
    wait_until("the stopped --rm container vanishes", LONG, || {
        d.api("GET", &format!("/containers/{id}/json"), None).0 == 404
    });

    // the same name twice: the second run fails naming the conflict, no second container
    let first = d.run_d(&["--name", "dup", IMAGE, "sleep", "1000"]);
    let o = d.fails(&["run", "-d", "--name", "dup", IMAGE, "sleep", "1000"]);
    assert!(
        o.stderr.contains("Conflict") && o.stderr.contains("\"/dup\"") && o.stderr.contains(&first),
        "{o}"
    );
    let all = d.ok(&["ps", "-a", "-q", "--no-trunc"]);
    assert_eq!(
        all.lines().collect::<Vec<_>>(),
        vec![first.as_str()],
        "ps -a -q: {all}"
    );
}

/// Runs the CLI with `input` on its stdin; returns (exit code, stdout).
fn cli_with_stdin(d: &Daemon, args: &[&str], input: &str) -> (i32, String) {
    use std::io::Write;
    let host = format!("unix://{}", d.socket().display());
    let mut child = Command::new(TETHER)
        .args(["-H", &host])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tether");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(LONG)
        .expect("the CLI finished")
        .expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn interactive_stdin_and_terminals() {
    let d = Daemon::start();

    // -i: the client's stdin reaches the container, whose stdin closes after it (StdinOnce)
    let (code, out) = cli_with_stdin(
        &d,
        &["run", "-i", "--rm", IMAGE, "sh", "-c", "cat; echo done"],
        "line1\nline2\n",
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "line1\nline2\ndone\n");

    // without -i the container's stdin is empty, whatever the client sends
    let (code, out) = cli_with_stdin(
        &d,
        &["run", "--rm", IMAGE, "sh", "-c", "cat; echo done"],
        "ignored\n",
    );
    assert_eq!((code, out.as_str()), (0, "done\n"));

    // -t: the process runs on a terminal; its exit code still comes back
    let o = d.cli(&["run", "--rm", "-t", IMAGE, "sh", "-c", "tty; exit 4"]);
    assert_eq!(o.code, 4, "{o}");
    assert!(o.stdout.contains("/dev/pts/"), "{o}");

    // exec -i and exec -t
    d.run_d(&["--name", "ia", IMAGE, "sleep", "300"]);
    let (code, out) = cli_with_stdin(&d, &["exec", "-i", "ia", "cat"], "piped\n");
    assert_eq!((code, out.as_str()), (0, "piped\n"));
    let o = d.cli(&["exec", "-t", "ia", "sh", "-c", "tty; exit 5"]);
    assert_eq!(o.code, 5, "{o}");
    assert!(o.stdout.contains("/dev/pts/"), "{o}");
    let o = d.cli(&["exec", "ia", "tty"]);
    assert_ne!(o.code, 0, "no terminal without -t: {o}");
}

#[test]
fn restart_policies() {
    let d = Daemon::start();
    let count = |c: &str| {
        d.ok(&["inspect", "-f", "{{.RestartCount}}", c])
            .parse::<i64>()
            .unwrap_or(-1)
    };
    let status = |c: &str| d.ok(&["inspect", "-f", "{{.State.Status}}", c]);

    // on-failure:2 restarts a failing container twice, then leaves it exited
    d.run_d(&[
        "--name",
        "of",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.2; exit 1",
    ]);
    wait_until("two restarts", LONG, || {
        count("of") == 2 && status("of") == "exited"
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        (count("of"), status("of").as_str()),
        (2, "exited"),
        "no third restart"
    );

    // on-failure does not restart a success; no policy does not restart at all
    d.run_d(&["--name", "ok", "--restart", "on-failure", IMAGE, "true"]);
    d.run_d(&["--name", "no", IMAGE, "sh", "-c", "exit 1"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(count("ok"), 0);
    assert_eq!(count("no"), 0);

    // always restarts until stopped by hand; a stopped one stays stopped
    d.run_d(&[
        "--name",
        "al",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.3; exit 0",
    ]);
    wait_until("always restarts", LONG, || count("al") >= 2);
    d.ok(&["stop", "-t", "1", "al"]);
    let after = count("al");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        (count("al"), status("al").as_str()),
        (after, "exited"),
        "restarted after a manual stop"
    );

    // bad combinations are refused naming the problem
    let o = d.fails(&["run", "--rm", "--restart", "always", IMAGE, "true"]);
    assert!(
        o.stderr.contains("--restart") && o.stderr.contains("--rm"),
        "{o}"
    );
}
