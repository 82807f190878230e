//! The Docker Engine API on the unix socket: ping, versioned paths, Docker's JSON errors
//! and status codes; and the CLI's report of a malformed `-p`.

mod common;

use serde_json::{json, Value};

use common::{Daemon, IMAGE};

#[test]
fn ping_version_and_errors() {
    let d = Daemon::start();

    // ping: OK with the API version header, versioned or not
    for path in ["/_ping", "/v1.41/_ping"] {
        let r = d.api_raw("GET", path, None);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.body, "OK", "{path}");
        let v = r.header("Api-Version").unwrap_or_default();
        assert!(
            !v.is_empty() && v.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{path}: {r:?}"
        );
    }

    // version on a versioned path
    for path in ["/v1.41/version", "/version"] {
        let (st, v) = d.api("GET", path, None);
        assert_eq!(st, 200, "{path}: {v}");
        assert!(
            v["ApiVersion"].is_string() && v["Version"].is_string(),
            "{path}: {v}"
        );
        assert_eq!(v["Os"], "linux", "{v}");
    }
    // a client older than the minimum is refused with a JSON message
    let (st, v) = d.api("GET", "/v1.12/version", None);
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too old"),
        "{v}"
    );

    // unknown container: 404 and Docker's exact message, for several endpoints
    let (st, v) = d.api("GET", "/containers/x/json", None);
    assert_eq!((st, v), (404, json!({"message": "No such container: x"})));
    let (st, v) = d.api("DELETE", "/v1.41/containers/x?force=1", None);
    assert_eq!((st, v), (404, json!({"message": "No such container: x"})));
    let (st, v) = d.api("POST", "/containers/x/start", None);
    assert_eq!((st, v), (404, json!({"message": "No such container: x"})));

    // create with an invalid image reference: 400 "invalid reference format"
    for bad in ["Upper", "bad//ref", "trailing:", "a b"] {
        let (st, v) = d.api("POST", "/containers/create", Some(&json!({"Image": bad})));
        assert_eq!(st, 400, "{bad}: {v}");
        let m = v["message"].as_str().unwrap_or_default();
        assert!(m.contains("invalid reference format"), "{bad}: {v}");
    }
    // ... and nothing was created
    let (st, v) = d.api("GET", "/containers/json?all=1", None);
    assert_eq!((st, v), (200, json!([])));

    // network create with an overlapping subnet: an error JSON naming the other network
    let body = |name: &str, subnet: &str| json!({"Name": name, "Driver": "bridge", "IPAM": {"Config": [{"Subnet": subnet}]}});
    let (st, v) = d.api(
        "POST",
        "/networks/create",
        Some(&body("o1", "172.30.0.0/16")),
    );
    assert_eq!(st, 201, "{v}");
    assert!(
        v["Id"].as_str().map(|s| s.len() == 64).unwrap_or(false),
        "{v}"
    );
    let (st, v) = d.api(
        "POST",
        "/networks/create",
        Some(&body("o2", "172.30.7.0/24")),
    );
    assert!((400..500).contains(&st), "{st}: {v}");
    let m = v["message"].as_str().unwrap_or_default();
    assert!(m.contains("overlaps") && m.contains("o1"), "{v}");
    assert_eq!(d.api("GET", "/networks/o2", None).0, 404);
}

#[test]
fn malformed_publish_is_a_one_line_cli_error() {
    let d = Daemon::start();
    for (flag, bad) in [
        ("8080:abc", "abc"),
        ("x:80", "x"),
        ("1.2.3:80:80", "1.2.3"),
        ("80/sctpx", "sctpx"),
    ] {
        let o = d.cli(&["run", "-d", "-p", flag, IMAGE, "true"]);
        assert_eq!(o.code, 125, "-p {flag}: {o}");
        let err = o.stderr.trim();
        assert_eq!(err.lines().count(), 1, "-p {flag}: one line expected: {o}");
        assert!(
            err.contains(bad),
            "-p {flag}: the error does not name {bad:?}: {o}"
        );
        assert!(o.stdout.is_empty(), "-p {flag}: {o}");
    }
    // nothing was created
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn routing_keeps_dockers_precedence() {
    let d = Daemon::start();

    // a fixed path asked with another method names an object, as with Docker's router
    let (st, v) = d.api(
        "POST",
        "/containers/create?name=json",
        Some(&json!({"Image": IMAGE, "Cmd": ["true"]})),
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = d.api("GET", "/containers/json/json", None);
    assert_eq!((st, v["Name"].clone()), (200, json!("/json")), "{v}");
    assert_eq!(
        d.api_raw("DELETE", "/v1.41/containers/json", None).status,
        204
    );
    assert_eq!(d.api("GET", "/containers/json/json", None).0, 404);
    let (st, v) = d.api("POST", "/networks/create", Some(&json!({"Name": "create"})));
    assert_eq!(st, 201, "{v}");
    let (st, v) = d.api("GET", "/networks/create", None);
    assert_eq!((st, v["Name"].clone()), (200, json!("create")), "{v}");
    assert_eq!(d.api_raw("DELETE", "/networks/create", None).status, 204);

    // trailing slashes are ignored; unknown routes and methods are Docker's 404
    let (st, v) = d.api("GET", "/v1.41/containers/json/", None);
    assert_eq!((st, v), (200, json!([])));
    for (method, path) in [
        ("GET", "/nope"),
        ("POST", "/containers/json"),
        ("PUT", "/v1.41/_ping"),
        ("GET", "/images/tbox/bogus"),
        ("POST", "/distribution/tbox/json"),
    ] {
        let (st, v) = d.api(method, path, None);
        let shown = path.strip_prefix("/v1.41").unwrap_or(path);
        assert_eq!(
            (st, v),
            (
                404,
                json!({"message": format!("page not found: {method} {shown}")})
            ),
            "{method} {path}"
        );
    }
    // GET routes do not answer HEAD; /_ping does
    assert_eq!(d.api_raw("HEAD", "/containers/json", None).status, 404);
    assert_eq!(d.api_raw("HEAD", "/_ping", None).status, 200);
    let (st, v) = d.api("GET", "/v99.0/_ping", None);
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too new"),
        "{v}"
    );

    // image names hold slashes
    let (st, v) = d.api(
        "POST",
        "/images/tbox:latest/tag?repo=reg.example/a/b&tag=1",
        None,
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = d.api("GET", "/images/reg.example/a/b:1/json", None);
    assert_eq!(st, 200, "{v}");
    assert!(
        v["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t == "reg.example/a/b:1"),
        "{v}"
    );
    assert_eq!(
        d.api("GET", "/images/reg.example/a/b:1/history", None).0,
        200
    );
    let (st, v) = d.api("DELETE", "/images/reg.example/a/b:1", None);
    assert_eq!((st, v), (200, json!([{"Untagged": "reg.example/a/b:1"}])));
}

#[test]
fn container_prune_and_restart() {
    let d = Daemon::start();
    let create = |name: &str, labels: Value| {
        let (st, v) = d.api(
            "POST",
            &format!("/containers/create?name={name}"),
            Some(&json!({"Image": IMAGE, "Cmd": ["true"], "Labels": labels})),
        );
        assert_eq!(st, 201, "{v}");
        v["Id"].as_str().unwrap_or_default().to_string()
    };
    let p1 = create("p1", json!({"a": "1"}));
    let p2 = create("p2", json!({}));
    let p3 = d.run_d(&["--name", "p3", IMAGE, "sleep", "1000"]);

    // filters select; a running container stays
    let (st, v) = d.api(
        "POST",
        "/containers/prune?filters=%7B%22label%22%3A%5B%22a%3D1%22%5D%7D",
        None,
    );
    assert_eq!(
        (st, v),
        (200, json!({"ContainersDeleted": [p1], "SpaceReclaimed": 0}))
    );
    let (st, v) = d.api("POST", "/containers/prune", None);
    assert_eq!(
        (st, v),
        (200, json!({"ContainersDeleted": [p2], "SpaceReclaimed": 0}))
    );
    let (_, v) = d.api("GET", "/containers/json?all=1", None);
    let ids: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["Id"].as_str())
        .collect();
    assert_eq!(ids, [p3.as_str()]);

    // restart: a running container gets a new process; a stopped one is started
    let started = |id: &str| d.inspect(id)["State"]["StartedAt"].clone();
    let before = started(&p3);
    assert_eq!(
        d.api_raw("POST", &format!("/containers/{p3}/restart?t=0"), None)
            .status,
        204
    );
    let s = d.inspect(&p3)["State"].clone();
    assert_eq!(s["Running"], true, "{s}");
    assert_ne!(s["StartedAt"], before, "{s}");
    d.ok(&["stop", "-t", "0", "p3"]);
    assert_eq!(
        d.api_raw("POST", "/containers/p3/restart", None).status,
        204
    );
    assert_eq!(d.inspect(&p3)["State"]["Running"], true);
    let (st, v) = d.api("POST", "/containers/nosuch/restart?t=x", None);
    assert_eq!(st, 400, "{v}");
}

/// The (stream, payload) frames of a multiplexed stream.
fn frames(body: &str) -> Vec<(u8, String)> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 <= b.len() {
        let n = u32::from_be_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let end = (i + 8 + n).min(b.len());
        out.push((b[i], String::from_utf8_lossy(&b[i + 8..end]).into_owned()));
        i = end;
    }
    out
}

#[test]
fn logs_streams_tail_and_timestamps() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "--name",
        "out",
        IMAGE,
        "sh",
        "-c",
        "echo a; echo b >&2; echo c",
    ]);
    let logs = |query: &str| {
        let r = d.api_raw("GET", &format!("/containers/out/logs?{query}"), None);
        assert_eq!(r.status, 200, "{query}: {r:?}");
        frames(&r.body)
    };
    let of = |f: &[(u8, String)], kind: u8| -> Vec<String> {
        f.iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, p)| p.clone())
            .collect()
    };
    let all = logs("stdout=1&stderr=1");
    assert_eq!(of(&all, 1), ["a\n", "c\n"], "{all:?}");
    assert_eq!(of(&all, 2), ["b\n"], "{all:?}");
    assert_eq!(
        logs("stdout=1"),
        [(1, "a\n".to_string()), (1, "c\n".to_string())]
    );
    assert_eq!(logs("stderr=1"), [(2, "b\n".to_string())]);
    let last = logs("stdout=1&stderr=1&tail=1");
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last, all[2..].to_vec());
    // follow on a stopped container ends at once
    assert_eq!(logs("stdout=1&follow=1&tail=all").len(), 2);
    for (kind, p) in logs("stdout=1&stderr=1&timestamps=1") {
        let (t, text) = p.split_once(' ').unwrap_or_default();
        assert!(
            chrono_like(t) && ["a\n", "b\n", "c\n"].contains(&text),
            "{kind}: {p:?}"
        );
    }

    // a container with a terminal: raw output
    d.ok(&["run", "-t", "--name", "tty", IMAGE, "echo", "raw"]);
    let r = d.api_raw("GET", "/containers/tty/logs?stdout=1", None);
    assert_eq!((r.status, r.body.as_str()), (200, "raw\r\n"), "{r:?}");
}

/// Whether `t` looks like an RFC 3339 time (`2024-01-02T03:04:05.123456789Z`).
fn chrono_like(t: &str) -> bool {
    t.len() >= 20 && t.as_bytes()[4] == b'-' && t.as_bytes()[10] == b'T' && t.ends_with('Z')
}

#[test]
fn detached_exec_records_its_exit() {
    let d = Daemon::start();
    d.run_d(&["--name", "box", IMAGE, "sleep", "1000"]);
    for (script, code) in [("echo out; echo err >&2; exit 3", 3), ("kill -9 $$", 137)] {
        let (st, v) = d.api(
            "POST",
            "/containers/box/exec",
            Some(&json!({"Cmd": ["sh", "-c", script], "AttachStdout": true})),
        );
        assert_eq!(st, 201, "{v}");
        let id = v["Id"].as_str().unwrap_or_default().to_string();
        let r = d.api_raw(
            "POST",
            &format!("/exec/{id}/start"),
            Some(&json!({"Detach": true})),
        );
        assert_eq!((r.status, r.body.as_str()), (200, ""), "{r:?}");
        let mut last = Value::Null;
        common::wait_until("the exec ends", std::time::Duration::from_secs(10), || {
            last = d.api("GET", &format!("/exec/{id}/json"), None).1;
            last["Running"] == false && !last["ExitCode"].is_null()
        });
        assert_eq!(last["ExitCode"], code, "{script}: {last}");
        // started once only
        let (st, _) = d.api(
            "POST",
            &format!("/exec/{id}/start"),
            Some(&json!({"Detach": true})),
        );
        assert_eq!(st, 409);
    }
    let (st, v) = d.api(
        "POST",
        "/exec/nosuch/start",
        Some(&json!({"ConsoleSize": "x"})),
    );
    assert_eq!(st, 400, "{v}");
}
