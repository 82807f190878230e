//! Small compatibility fixes a new user ran into (issue 10, "Also found"): terminals start
//! at the client's size (`ConsoleSize` of exec create/start and of `HostConfig`) and
//! follow resizes; `ps -all`; `Config.Hostname` and the order of `Config.Env` in inspect.

mod common;

use std::time::Duration;

use common::{wait_until, Daemon, IMAGE};
use serde_json::json;

/// Starts exec `id` without upgrading the connection; returns its raw (tty) output.
fn exec_output(d: &Daemon, id: &str, start: serde_json::Value) -> String {
    let r = d.api_raw("POST", &format!("/exec/{id}/start"), Some(&start));
    assert_eq!(r.status, 200, "exec start: {}", r.body);
    r.body
}

fn create_exec(d: &Daemon, container: &str, body: serde_json::Value) -> String {
    let (st, v) = d.api(
        "POST",
        &format!("/containers/{container}/exec"),
        Some(&body),
    );
    assert_eq!(st, 201, "{v}");
    v["Id"].as_str().expect("an exec id").to_string()
}

#[test]
fn terminals_start_at_the_clients_size() {
    let d = Daemon::start();
    // run -it: HostConfig.ConsoleSize [height, width]
    let body = json!({"Image": IMAGE, "Cmd": ["stty", "size"], "Tty": true,
        "HostConfig": {"ConsoleSize": [33, 101]}});
    let (st, v) = d.api("POST", "/containers/create?name=sized", Some(&body));
    assert_eq!(st, 201, "{v}");
    d.ok(&["start", "-a", "sized"]);
    assert_eq!(d.ok(&["logs", "sized"]), "33 101");
    // without one: the usual 24x80
    let body = json!({"Image": IMAGE, "Cmd": ["stty", "size"], "Tty": true});
    d.api("POST", "/containers/create?name=plain", Some(&body));
    d.ok(&["start", "-a", "plain"]);
    assert_eq!(d.ok(&["logs", "plain"]), "24 80");
    let bad = json!({"Image": IMAGE, "Tty": true, "HostConfig": {"ConsoleSize": [33]}});
    let (st, v) = d.api("POST", "/containers/create", Some(&bad));
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("ConsoleSize"),
        "{v}"
    );

    // exec -t: ConsoleSize of the create body, replaced by the start body's
    d.run_d(&["--name", "c", IMAGE, "sleep", "600"]);
    let id = create_exec(
        &d,
        "c",
        json!({"Cmd": ["stty", "size"], "Tty": true, "AttachStdout": true, "ConsoleSize": [40, 132]}),
    );
    assert_eq!(
        exec_output(&d, &id, json!({"Detach": false, "Tty": true})).trim(),
        "40 132"
    );
    let id = create_exec(
        &d,
        "c",
        json!({"Cmd": ["stty", "size"], "Tty": true, "AttachStdout": true, "ConsoleSize": [40, 132]}),
    );
    assert_eq!(
        exec_output(
            &d,
            &id,
            json!({"Detach": false, "Tty": true, "ConsoleSize": [41, 133]})
        )
        .trim(),
        "41 133"
    );
    let (st, v) = d.api(
        "POST",
        "/containers/c/exec",
        Some(&json!({"Cmd": ["true"], "ConsoleSize": [1, 2, 3]})),
    );
    assert_eq!(st, 400, "{v}");
}

#[test]
fn exec_terminals_follow_resizes() {
    let d = Daemon::start();
    d.run_d(&["--name", "c", IMAGE, "sleep", "600"]);
    let script = "i=0; while [ $i -lt 200 ]; do s=$(stty size); \
                  [ \"$s\" = \"50 60\" ] && echo resized && exit 0; \
                  i=$((i+1)); sleep 0.05; done; echo \"still $s\"";
    let id = create_exec(
        &d,
        "c",
        json!({"Cmd": ["sh", "-c", script], "Tty": true, "AttachStdout": true, "ConsoleSize": [10, 20]}),
    );
    let sock = d.socket();
    let id2 = id.clone();
    let out = std::thread::spawn(move || {
        common::http_unix(
            &sock,
            "POST",
            &format!("/exec/{id2}/start"),
            Some(&json!({"Detach": false, "Tty": true})),
        )
    });
    wait_until("the exec runs", Duration::from_secs(20), || {
        d.api("GET", &format!("/exec/{id}/json"), None).1["Running"] == true
    });
    let (st, v) = d.api("POST", &format!("/exec/{id}/resize?h=50&w=60"), None);
    assert_eq!(st, 200, "{v}");
    let r = out.join().expect("the exec start thread");
    assert_eq!(r.body.trim(), "resized");
    assert_eq!(d.api("POST", "/exec/nosuch/resize?h=1&w=1", None).0, 404);
}

#[test]
fn ps_all_hostname_and_env_order() {
    let d = Daemon::start();
    // `ps -all` is `-a -l -l` to docker's pflag: the latest container, stopped or not
    d.ok(&["create", "--name", "older", IMAGE, "true"]);
    std::thread::sleep(Duration::from_millis(20));
    d.ok(&["create", "--name", "newest", IMAGE, "true"]);
    let out = d.ok(&["ps", "-all", "--format", "{{.Names}}"]);
    assert_eq!(out, "newest");

    // Config.Hostname: the short id unless given; the host's with --network host
    let id = d.run_d(&["--name", "h1", IMAGE, "sleep", "600"]);
    assert_eq!(d.inspect("h1")["Config"]["Hostname"], id[..12]);
    assert_eq!(d.sh("h1", "hostname").out(), &id[..12]);
    d.run_d(&["--name", "h2", "--hostname", "web1", IMAGE, "sleep", "600"]);
    assert_eq!(d.inspect("h2")["Config"]["Hostname"], "web1");
    d.ok(&["create", "--name", "h3", "--network", "host", IMAGE, "true"]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(d.inspect("h3")["Config"]["Hostname"], host.trim());

    // Config.Env: the image's first (a key the user sets again replaced in place), then
    // the user's new keys in the user's order
    d.ok(&[
        "create",
        "--name",
        "env",
        "-e",
        "Z=1",
        "-e",
        "PATH=/x:/bin",
        "-e",
        "A=2",
        IMAGE,
        "true",
    ]);
    assert_eq!(
        d.inspect("env")["Config"]["Env"],
        json!(["PATH=/x:/bin", "Z=1", "A=2"])
    );
    // exec env merges the same way
    assert_eq!(
        d.sh("h1", "true").code,
        0,
        "exec works in the container used below"
    );
    let o = d.ok(&["exec", "-e", "B=3", "-e", "PATH=/usr/bin:/bin", "h1", "env"]);
    let keys: Vec<&str> = o
        .lines()
        .filter_map(|l| l.split('=').next())
        .filter(|k| ["PATH", "B"].contains(k))
        .collect();
    assert_eq!(keys, vec!["PATH", "B"], "{o}");
}

/// `tether exec -it` and `tether run -it` on a real terminal (util-linux `script` gives
/// the CLI a pseudo-terminal of a known size): the process starts at that size.
#[test]
fn cli_sends_its_terminal_size() {
    let d = Daemon::start();
    d.run_d(&["--name", "c", IMAGE, "sleep", "600"]);
    let on_tty = |cmd: &str| {
        let line = format!(
            "stty rows 37 cols 111; {} -H {} {cmd}",
            common::TETHER,
            d.host
        );
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        common::run_with_limit(c, common::COMMAND_LIMIT)
    };
    let o = on_tty("exec -it c stty size");
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("37 111"), "{o}");
    let o = on_tty(&format!("run --rm -it {IMAGE} stty size"));
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("37 111"), "{o}");
}

/// The real docker CLI on a terminal: `docker exec -it` and `docker run -it` send their
/// size in `ConsoleSize`, and the process starts at it.
#[test]
fn docker_cli_terminal_size() {
    let Some(docker) = ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("no docker CLI: skipped");
        return;
    };
    let d = Daemon::start();
    d.run_d(&["--name", "c", IMAGE, "sleep", "600"]);
    let on_tty = |cmd: &str| {
        let line = format!("stty rows 29 cols 97; {docker} {cmd}");
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &line, "/dev/null"])
            .env("DOCKER_HOST", &d.host);
        common::run_with_limit(c, common::COMMAND_LIMIT)
    };
    let o = on_tty("exec -it c stty size");
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("29 97"), "{o}");
    let o = on_tty(&format!("run --rm -it {IMAGE} stty size"));
    assert!(o.success(), "{o}");
    assert!(o.stdout.contains("29 97"), "{o}");
}
