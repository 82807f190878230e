//! The topology view: `tether network graph` as JSON, DOT and SVG shows every container of
//! a three-network topology with its addresses, aliases, published ports and links, and
//! the daemon's live page (`--ui`) shows the same picture in a real headless browser
//! (Debian's chromium, run inside the test's namespace) and streams changes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{in_netns, run_with_limit, Daemon, IMAGE};
use serde_json::Value;

const UI: &str = "127.0.0.1:8808";

/// Loads the page in headless chromium inside the daemon's namespace and returns the DOM
/// after its scripts ran; also writes a screenshot to `shot`.
fn browser(d: &Daemon, shot: &std::path::Path) -> String {
    let profile = d.dir().join("chromium-profile");
    let common = |cmd: &mut Command| {
        cmd.arg(format!("--net={}", d.netns().display()))
            .args([
                "--",
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--timeout=5000",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()));
    };
    let mut shoot = Command::new("nsenter");
    common(&mut shoot);
    shoot
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("http://{UI}/"));
    let o = run_with_limit(shoot, Duration::from_secs(120));
    assert!(o.success(), "chromium --screenshot: {o}");
    let mut dump = Command::new("nsenter");
    common(&mut dump);
    dump.arg("--dump-dom").arg(format!("http://{UI}/"));
    let o = run_with_limit(dump, Duration::from_secs(120));
    assert!(o.success(), "chromium --dump-dom: {o}");
    o.stdout
}

#[test]
fn the_graph_and_the_live_page_show_the_whole_topology() {
    assert!(
        Command::new("chromium").arg("--version").output().is_ok(),
        "chromium is missing: bash scripts/install-deps.sh installs it"
    );
    let d = Daemon::start_with(&["--ui", UI]);
    for n in ["front", "back", "ops"] {
        d.ok(&["network", "create", n]);
    }
    d.run_d(&[
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "-p",
        "8080:80",
        IMAGE,
        "sleep",
        "300",
    ]);
    d.ok(&["network", "connect", "back", "web"]);
    d.run_d(&["--name", "db", "--network", "back", IMAGE, "sleep", "300"]);
    d.run_d(&["--name", "mon", "--network", "ops", IMAGE, "sleep", "300"]);
    d.run_d(&["--name", "old1", IMAGE, "sleep", "300"]);
    d.run_d(&[
        "--name",
        "old2",
        "--link",
        "old1:legacy",
        IMAGE,
        "sleep",
        "300",
    ]);
    let names = ["web", "db", "mon", "old1", "old2"];

    // JSON: every container with its addresses on each of its networks
    let v: Value =
        serde_json::from_str(&d.ok(&["network", "graph", "--format", "json"])).expect("json");
    for n in names {
        let c = v["Containers"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["Name"] == n).cloned())
            .unwrap_or_else(|| panic!("{n} missing: {v:#}"));
        assert!(
            !c["Networks"][0]["Addresses"][0]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "{c}"
        );
    }
    let web_back = d.ip_of("web", "back");
    // DOT and SVG: names, addresses, alias, port, link
    let dot = d.ok(&["network", "graph", "--format", "dot"]);
    for part in [
        "alias www",
        "0.0.0.0:8080->80/tcp",
        "link legacy",
        web_back.as_str(),
        "network ops",
    ] {
        assert!(dot.contains(part), "{part} missing from {dot}");
    }
    let svg = d.ok(&["network", "graph"]);
    assert!(svg.contains("<svg"), "{svg}");
    for n in names {
        assert!(svg.contains(n), "{n} missing from the SVG");
    }
    // one network only
    let one = d.ok(&["network", "graph", "--format", "dot", "ops"]);
    assert!(one.contains("mon") && !one.contains("\"ctr:db\""), "{one}");
    let o = d.fails(&["network", "graph", "--format", "png"]);
    assert!(o.stderr.contains("png"), "{o}");

    // the live page, in a real browser
    let shot = d.dir().join("topology.png");
    let dom = browser(&d, &shot);
    assert!(dom.contains("<svg"), "no picture in the page: {dom}");
    for n in names {
        assert!(dom.contains(n), "{n} missing from the page");
    }
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "screenshot of {size} bytes");
    if let Ok(dir) = std::env::var("TETHER_SCREENSHOT_DIR") {
        let _ = std::fs::copy(&shot, std::path::Path::new(&dir).join("topology.png"));
    }

    // the page's change stream: a new container is announced
    let mut s = in_netns(&d.netns(), || {
        TcpStream::connect(UI).expect("connect to the page")
    });
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: ui\r\n\r\n")
        .expect("request");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // headers
    while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
        line.clear();
    }
    d.run_d(&["--name", "late", "--network", "ops", IMAGE, "sleep", "300"]);
    let mut seen = String::new();
    for _ in 0..40 {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if seen.contains("data: container start") {
            break;
        }
    }
    assert!(seen.contains("data: container start"), "{seen:?}");
}
