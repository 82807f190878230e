//! `tether network explain`: for each of the tutorials' classic failures the right
//! verdict, the first failing hop and its fix — different networks, the default bridge
//! (no names), an internal network, `enable_icc=false`, a port exposed but not published,
//! a port published on 127.0.0.1 seen from another host, a server listening on 127.0.0.1
//! only, nothing listening, a name out of scope — and the working paths through a link
//! alias, an `--add-host` entry and the embedded DNS; `--probe` agrees with the model in
//! every case it can probe.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::outside::{self, Outside};
use common::{in_netns, wait_until, Daemon, IMAGE};
use serde_json::Value;

/// GET /tether/v1/explain with probe=1.
fn explain(d: &Daemon, src: &str, dst: &str) -> Value {
    let (st, v) = d.api(
        "GET",
        &format!("/tether/v1/explain?src={src}&dst={dst}&probe=1"),
        None,
    );
    assert_eq!(st, 200, "{v}");
    v
}

/// The first failing hop's step and detail, and the fix.
fn failure(v: &Value) -> (String, String, String) {
    let h = v["Hops"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["Ok"] == false).cloned())
        .unwrap_or_else(|| panic!("no failing hop: {v}"));
    (
        h["Step"].as_str().unwrap_or_default().to_string(),
        h["Detail"].as_str().unwrap_or_default().to_string(),
        v["Fix"].as_str().unwrap_or_default().to_string(),
    )
}

/// Asserts the verdict "unreachable" at `step` with a detail and a fix that contain the
/// given words, and that the probe (when it could run) agrees.
fn refused(v: &Value, step: &str, detail: &[&str], fix: &[&str]) -> bool {
    assert_eq!(v["Reachable"], false, "{v:#}");
    let (s, d, f) = failure(v);
    assert_eq!(s, step, "{v:#}");
    for w in detail {
        assert!(d.contains(w), "detail {d:?} lacks {w:?}");
    }
    for w in fix {
        assert!(f.contains(w), "fix {f:?} lacks {w:?}");
    }
    assert_eq!(v["Probe"]["Agrees"], true, "probe disagrees: {v:#}");
    v["Probe"]["Probed"] == true
}

fn reached(v: &Value) {
    assert_eq!(v["Reachable"], true, "{v:#}");
    assert_eq!(v["Probe"]["Reachable"], true, "probe: {v:#}");
    assert_eq!(v["Probe"]["Agrees"], true, "{v:#}");
}

fn server(d: &Daemon, name: &str, extra: &[&str]) {
    let mut args = vec!["--name", name];
    args.extend_from_slice(extra);
    args.extend([IMAGE, "sh", "-c", "exec nc -ll -p 80 -e echo hello"]);
    d.run_d(&args);
}

#[test]
fn explain_names_the_first_failing_hop_and_its_fix() {
    let d = Daemon::start();
    let _out = Outside::start(&d);
    d.ok(&["network", "create", "front"]);
    d.ok(&["network", "create", "back"]);
    d.ok(&["network", "create", "--internal", "closed"]);
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "quiet",
    ]);
    server(&d, "web", &["--network", "front"]);
    server(&d, "api", &["--network", "front"]);
    server(&d, "db", &["--network", "back"]);
    server(&d, "q1", &["--network", "quiet"]);
    server(&d, "q2", &["--network", "quiet"]);
    server(&d, "i1", &["--network", "closed"]);
    server(&d, "plain1", &[]);
    server(&d, "plain2", &[]);
    server(&d, "exposed", &["--network", "front", "--expose", "80"]);
    server(
        &d,
        "local",
        &["--network", "front", "-p", "127.0.0.1:8080:80"],
    );
    server(&d, "public", &["--network", "front", "-p", "8081:80"]);
    d.run_d(&[
        "--name",
        "loonly",
        "--network",
        "front",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "127.0.0.1:80",
        "-h",
        "/etc",
    ]);
    let plain2 = d.ip_of("plain2", "bridge");
    d.run_d(&[
        "--name",
        "linked",
        "--link",
        "plain2:dbalias",
        IMAGE,
        "sleep",
        "300",
    ]);
    d.run_d(&[
        "--name",
        "added",
        "--add-host",
        &format!("mydb:{plain2}"),
        IMAGE,
        "sleep",
        "300",
    ]);
    wait_until("servers listen", Duration::from_secs(30), || {
        d.sh("db", "nc -w 2 127.0.0.1 80 </dev/null").out() == "hello"
            && d.sh(
                "loonly",
                "wget -q -O /dev/null http://127.0.0.1/hostname && echo ok",
            )
            .out()
                == "ok"
    });

    // the working paths: embedded DNS, a link alias, an --add-host entry
    reached(&explain(&d, "web", "api:80"));
    let v = explain(&d, "linked", "dbalias:80");
    reached(&v);
    assert!(
        v["Hops"][1]["Detail"]
            .as_str()
            .unwrap_or("")
            .contains("--link"),
        "{v:#}"
    );
    let v = explain(&d, "added", "mydb:80");
    reached(&v);
    assert!(
        v["Hops"][1]["Detail"]
            .as_str()
            .unwrap_or("")
            .contains("--add-host"),
        "{v:#}"
    );
    // a published port from outside the host (not probed: another host)
    let v = explain(&d, outside::OUTSIDE, "public:80");
    assert_eq!(v["Reachable"], true, "{v:#}");

    // different networks: by name out of scope, by address no network in common
    refused(
        &explain(&d, "web", "db:80"),
        "name",
        &["out of", "back"],
        &["tether network connect back web"],
    );
    let db_ip = d.ip_of("db", "back");
    assert!(
        refused(
            &explain(&d, "web", &format!("{db_ip}:80")),
            "network",
            &["share no network"],
            &["tether network connect back web"],
        ),
        "the probe did not run"
    );
    // the default bridge: no names
    refused(
        &explain(&d, "plain1", "plain2:80"),
        "name",
        &["default bridge"],
        &["tether network create", "plain1", "plain2"],
    );
    // an internal network has no way out
    assert!(
        refused(
            &explain(&d, "i1", &format!("{}:7777", outside::OUTSIDE)),
            "route",
            &["--internal"],
            &["tether network connect"],
        ),
        "the probe did not run"
    );
    // enable_icc=false
    assert!(
        refused(
            &explain(&d, "q1", "q2:80"),
            "network",
            &["enable_icc=false"],
            &["tether network create"],
        ),
        "the probe did not run"
    );
    // exposed but not published, and published on 127.0.0.1, seen from another host
    refused(
        &explain(&d, outside::OUTSIDE, "exposed:80"),
        "publish",
        &["exposed but not published"],
        &["-p 80:80"],
    );
    refused(
        &explain(&d, outside::OUTSIDE, "local:80"),
        "publish",
        &["127.0.0.1:8080 only"],
        &["-p 8080:80"],
    );
    // the server listens on 127.0.0.1 only; nothing listens
    assert!(
        refused(
            &explain(&d, "web", "loonly:80"),
            "listen",
            &["127.0.0.1:80 only"],
            &["0.0.0.0:80"],
        ),
        "the probe did not run"
    );
    assert!(
        refused(
            &explain(&d, "web", "api:81"),
            "listen",
            &["nothing listens on 81/tcp"],
            &["0.0.0.0:81"],
        ),
        "the probe did not run"
    );
    // the host: a service on its 127.0.0.1 only, seen from a container
    let _lo = in_netns(&d.netns(), || {
        TcpListener::bind("127.0.0.1:7070").expect("bind")
    });
    assert!(
        refused(
            &explain(&d, "web", "host:7070"),
            "listen",
            &["the host listens on 127.0.0.1:7070 only"],
            &["0.0.0.0:7070"],
        ),
        "the probe did not run"
    );
    // a name nobody knows
    refused(
        &explain(&d, "web", "nosuch:80"),
        "name",
        &["no container"],
        &[],
    );

    // the CLI's text form and exit status
    let o = d.cli(&["network", "explain", "web", "db:80"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.stdout.contains("✗ web cannot reach db:80/tcp")
            && o.stdout.contains("fix: tether network connect back web"),
        "{o}"
    );
    let o = d.cli(&["network", "explain", "--probe", "q1", "q2:80"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.stdout.contains("the model agrees"), "{o}");
    let o = d.cli(&["network", "explain", "--format", "json", "web", "api:80"]);
    assert!(o.success(), "{o}");
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["Reachable"], true);
    let o = d.fails(&["network", "explain", "web", "api:99999"]);
    assert!(o.stderr.contains("99999"), "{o}");
}
