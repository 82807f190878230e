//! Published and exposed ports: `-p HOST:CTR`, `-p CTR` (random host port), `--expose`,
//! `ps`/`port`/inspect views, withdrawal on removal, and host-port conflicts that must
//! leave nothing behind.

mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use common::{in_netns, wait_until, Daemon, IMAGE};

const LIMIT: Duration = Duration::from_secs(5);

/// Waits until 127.0.0.1:`port` in the daemon's namespace answers `want`.
fn wait_for_answer(d: &Daemon, port: u16, want: &str) {
    wait_until(
        &format!("127.0.0.1:{port} answers {want:?}"),
        Duration::from_secs(60),
        || {
            d.tcp_exchange(port, "", LIMIT)
                .map(|s| s.trim() == want)
                .unwrap_or(false)
        },
    );
}

#[test]
fn published_ports_reach_the_container_and_go_away_with_it() {
    let d = Daemon::start();
    let links0 = d.links();
    assert!(d.nft_tcp_ports().is_empty());
    d.run_d(&[
        "--name",
        "web",
        "-p",
        "18080:8080",
        "-p",
        "9000",
        "-p",
        "127.0.0.1:18085:7000",
        IMAGE,
        "sh",
        "-c",
        "nc -ll -p 9000 -e echo hello-9000 & nc -ll -p 7000 -e echo hello-7000 & \
         exec nc -ll -p 8080 -e echo hello-8080",
    ]);

    // the fixed port answers on the daemon namespace's loopback
    wait_for_answer(&d, 18080, "hello-8080");

    // ps and port show it
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains("0.0.0.0:18080->8080/tcp"), "{ps}");
    assert_eq!(d.ok(&["port", "web", "8080"]), "0.0.0.0:18080");
    assert_eq!(d.ok(&["port", "web", "8080/tcp"]), "0.0.0.0:18080");
    let port = d.ok(&["port", "web"]);
    let lines: Vec<&str> = port.lines().collect();
    assert_eq!(lines.len(), 3, "{port}");
    assert!(lines.contains(&"8080/tcp -> 0.0.0.0:18080"), "{port}");

    // bound to 127.0.0.1 only: shown with that address, reachable there
    assert!(lines.contains(&"7000/tcp -> 127.0.0.1:18085"), "{port}");
    assert!(ps.contains("127.0.0.1:18085->7000/tcp"), "{ps}");
    wait_for_answer(&d, 18085, "hello-7000");

    // the random host port is in Docker's ephemeral range, shown by port and ps, and works
    let random = lines
        .iter()
        .find_map(|l| l.strip_prefix("9000/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("no 9000/tcp line in {port}"));
    let random: u16 = random.parse().expect("host port number");
    assert!((49153..=60999).contains(&random), "{random}");
    assert_eq!(d.ok(&["port", "web", "9000"]), format!("0.0.0.0:{random}"));
    assert!(ps.contains(&format!("0.0.0.0:{random}->9000/tcp")), "{ps}");
    wait_for_answer(&d, random, "hello-9000");
    let mut want = vec![18080u64, 18085, u64::from(random)];
    want.sort_unstable();
    assert_eq!(d.nft_tcp_ports(), want);

    // the inspect view agrees
    let v = d.inspect("web");
    let ports = &v["NetworkSettings"]["Ports"];
    assert_eq!(ports["8080/tcp"][0]["HostPort"], "18080", "{ports}");
    assert_eq!(
        ports["9000/tcp"][0]["HostPort"],
        random.to_string(),
        "{ports}"
    );

    // removal withdraws everything: refused, no map entries, no extra links
    d.ok(&["rm", "-f", "web"]);
    for p in [18080, 18085, random] {
        let e = d
            .tcp_exchange(p, "", LIMIT)
            .expect_err("the port still answers after rm");
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "port {p}: {e}");
    }
    assert!(d.nft_tcp_ports().is_empty(), "{:?}", d.nft_tcp_ports());
    assert_eq!(d.links_settled(&links0), links0);
}

#[test]
fn expose_publishes_nothing() {
    let d = Daemon::start();
    d.run_d(&["--name", "exp", "--expose", "3000", IMAGE, "sleep", "1000"]);
    let v = d.inspect("exp");
    let ports = v["NetworkSettings"]["Ports"].to_string();
    assert_eq!(ports, r#"{"3000/tcp":null}"#);
    assert!(v["Config"]["ExposedPorts"].get("3000/tcp").is_some(), "{v}");
    assert_eq!(d.ok(&["port", "exp"]), "");
    assert!(d.nft_tcp_ports().is_empty(), "{:?}", d.nft_tcp_ports());
    let ps = d.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps, "3000/tcp");
    let o = d.fails(&["port", "exp", "3000"]);
    assert!(o.stderr.contains("3000"), "{o}");
}

#[test]
fn host_port_conflict_leaves_nothing_behind() {
    let d = Daemon::start();
    d.run_d(&[
        "--name",
        "first",
        "-p",
        "18081:8080",
        IMAGE,
        "sh",
        "-c",
        "exec nc -ll -p 8080 -e echo first",
    ]);
    wait_for_answer(&d, 18081, "first");
    let links = d.links();
    let nft = d.nft_tcp_ports();
    assert_eq!(nft, vec![18081]);

    let o = d.fails(&[
        "run", "-d", "--name", "second", "-p", "18081:80", IMAGE, "sleep", "1000",
    ]);
    assert!(
        o.stderr.contains("18081"),
        "the error does not name the port: {o}"
    );
    assert!(o.stderr.contains("already allocated"), "{o}");

    // no second container running, nothing leaked, the first still served
    let running = d.ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(running, "first");
    let (st, v) = d.api("GET", "/containers/second/json", None);
    if st == 200 {
        assert_ne!(v["State"]["Status"], "running", "{v}");
        assert_eq!(v["State"]["Pid"], 0, "{v}");
        assert_eq!(
            v["NetworkSettings"]["Ports"]["80/tcp"],
            serde_json::Value::Null,
            "{v}"
        );
    } else {
        assert_eq!(st, 404, "{v}");
    }
    assert_eq!(d.links_settled(&links), links, "a veth was left behind");
    assert_eq!(d.nft_tcp_ports(), nft, "an nft element was left behind");
    assert_eq!(d.monitored().len(), 1);
    assert_eq!(
        d.tcp_exchange(18081, "", LIMIT)
            .expect("first still answers")
            .trim(),
        "first"
    );

    // a port held by a process of the host (here: of the daemon's namespace) is refused too
    let holder = in_netns(&d.netns(), || {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, 18089)).expect("bind 18089 in the namespace")
    });
    let o = d.fails(&[
        "run", "-d", "--name", "third", "-p", "18089:80", IMAGE, "sleep", "1000",
    ]);
    assert!(
        o.stderr.contains("18089"),
        "the error does not name the port: {o}"
    );
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "first");
    assert_eq!(d.links_settled(&links), links, "a veth was left behind");
    assert_eq!(d.nft_tcp_ports(), nft, "an nft element was left behind");
    drop(holder);
}
