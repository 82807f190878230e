//! Named and anonymous volumes (Docker API /volumes, `-v NAME:/path`, Config.Volumes) and
//! healthchecks (Config.Healthcheck -> State.Health).

mod common;

use std::time::Duration;

use common::{wait_until, Daemon, IMAGE};
use serde_json::json;

fn volume_names(d: &Daemon) -> Vec<String> {
    let (st, v) = d.api("GET", "/volumes", None);
    assert_eq!(st, 200, "{v}");
    let mut n: Vec<String> = v["Volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|x| x["Name"].as_str().map(str::to_string))
        .collect();
    n.sort();
    n
}

#[test]
fn named_volumes_persist_and_are_protected_while_used() {
    let d = Daemon::start();
    let (st, v) = d.api(
        "POST",
        "/volumes/create",
        Some(&json!({"Name": "data1", "Labels": {"k": "v"}})),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["Driver"], "local");
    // written by one container, read by the next; :ro is read-only
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "data1:/data",
        IMAGE,
        "sh",
        "-c",
        "echo persisted > /data/f",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "-v",
            "data1:/data:ro",
            IMAGE,
            "cat",
            "/data/f"
        ]),
        "persisted"
    );
    let o = d.cli(&[
        "run",
        "--rm",
        "-v",
        "data1:/data:ro",
        IMAGE,
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert_ne!(o.code, 0, "a :ro volume was writable: {o}");
    // -v NAME:/path creates the volume on first use
    d.ok(&["run", "--rm", "-v", "auto2:/d", IMAGE, "true"]);
    assert_eq!(volume_names(&d), vec!["auto2", "data1"]);
    let (_, f) = d.api(
        "GET",
        "/volumes?filters=%7B%22label%22%3A%5B%22k%3Dv%22%5D%7D",
        None,
    );
    assert_eq!(
        f["Volumes"].as_array().map(|a| a.len()),
        Some(1),
        "label filter: {f}"
    );
    // in use: refused with 409 naming the container; free: removed
    d.run_d(&["--name", "user", "-v", "data1:/data", IMAGE, "sleep", "300"]);
    let mounts = d.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}",
        "user",
    ]);
    assert_eq!(mounts, "volume data1 /data");
    let (st, v) = d.api("DELETE", "/volumes/data1", None);
    assert_eq!(st, 409, "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("user"), "{v}");
    d.ok(&["rm", "-f", "user"]);
    assert_eq!(d.api("DELETE", "/volumes/data1", None).0, 204);
    assert_eq!(d.api("GET", "/volumes/data1", None).0, 404);
    // bad names and sources are rejected naming the value
    let o = d.fails(&["run", "--rm", "-v", "bad name:/x", IMAGE, "true"]);
    assert!(o.stderr.contains("bad name"), "{o}");
}

#[test]
fn anonymous_volumes_go_with_rm_v() {
    let d = Daemon::start();
    let body = json!({"Image": IMAGE, "Cmd": ["true"], "Volumes": {"/anon": {}}});
    let (st, v) = d.api("POST", "/containers/create?name=an", Some(&body));
    assert_eq!(st, 201, "{v}");
    assert_eq!(volume_names(&d).len(), 1, "an anonymous volume was created");
    let (_, pruned) = d.api("POST", "/volumes/prune", None);
    assert_eq!(
        pruned["VolumesDeleted"].as_array().map(|a| a.len()),
        Some(0),
        "in use: not pruned"
    );
    assert_eq!(d.api("DELETE", "/containers/an?v=1", None).0, 204);
    assert!(
        volume_names(&d).is_empty(),
        "rm -v removed the anonymous volume"
    );
}

#[test]
fn healthchecks_report_starting_healthy_and_unhealthy() {
    let d = Daemon::start();
    // healthy once /tmp/ok exists (after ~2 s); failures before that count
    d.run_d(&[
        "--name",
        "h",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        IMAGE,
        "sh",
        "-c",
        "sleep 2; touch /tmp/ok; sleep 300",
    ]);
    let status = |c: &str| d.ok(&["inspect", "-f", "{{.State.Health.Status}}", c]);
    wait_until("h is healthy", Duration::from_secs(30), || {
        status("h") == "healthy"
    });
    let ps = d.ok(&["ps", "--filter", "name=h", "--format", "{{.Status}}"]);
    assert!(ps.ends_with("(healthy)"), "{ps}");
    let log = d.ok(&[
        "inspect",
        "-f",
        "{{range .State.Health.Log}}{{.ExitCode}} {{end}}",
        "h",
    ]);
    assert!(
        log.split_whitespace().any(|c| c != "0") && log.ends_with('0'),
        "probe log: {log}"
    );
    // a check that never passes ends unhealthy
    d.run_d(&[
        "--name",
        "u",
        "--health-cmd",
        "exit 1",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        IMAGE,
        "sleep",
        "300",
    ]);
    wait_until("u is unhealthy", Duration::from_secs(30), || {
        status("u") == "unhealthy"
    });
    // a probe that hangs past its timeout counts as a failure, and is not left running
    d.run_d(&[
        "--name",
        "t",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "1s",
        "--health-timeout",
        "1s",
        "--health-retries",
        "1",
        IMAGE,
        "sleep",
        "300",
    ]);
    wait_until("t is unhealthy", Duration::from_secs(30), || {
        status("t") == "unhealthy"
    });
    let out = d.ok(&[
        "inspect",
        "-f",
        "{{range .State.Health.Log}}{{.Output}}{{end}}",
        "t",
    ]);
    assert!(out.contains("exceeded timeout"), "{out}");
    // no healthcheck: no Health at all
    d.run_d(&["--name", "n", IMAGE, "sleep", "300"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .State.Health}}", "n"]),
        "null"
    );
}
