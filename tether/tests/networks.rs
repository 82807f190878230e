//! User-defined networks through the CLI: create, ls, inspect, rm, prune, and the errors of
//! bad or conflicting IPAM settings.

mod common;

use std::net::Ipv4Addr;

use common::{Daemon, IMAGE};

/// Parses "a.b.c.d/len" into (network, prefix length).
fn cidr(s: &str) -> (Ipv4Addr, u32) {
    let (ip, len) = s
        .split_once('/')
        .unwrap_or_else(|| panic!("not a CIDR: {s:?}"));
    (
        ip.parse().expect("CIDR address"),
        len.parse().expect("CIDR length"),
    )
}

fn contains(net: (Ipv4Addr, u32), ip: Ipv4Addr) -> bool {
    let mask = if net.1 == 0 {
        0
    } else {
        u32::MAX << (32 - net.1)
    };
    u32::from(net.0) & mask == u32::from(ip) & mask
}

#[test]
fn create_ls_inspect_rm() {
    let d = Daemon::start();
    let id = d.ok(&["network", "create", "n1"]);
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id:?}"
    );

    // ls: the predefined networks and ours, driver bridge, scope local
    let ls = d.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    let rows: Vec<&str> = ls.lines().collect();
    for want in [
        "bridge bridge local",
        "host host local",
        "none null local",
        "n1 bridge local",
    ] {
        assert!(rows.contains(&want), "network ls lacks {want:?}: {ls}");
    }
    let table = d.ok(&["network", "ls"]);
    let row = table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("n1"))
        .unwrap_or_else(|| panic!("no n1 row in {table}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        vec![&id[..12], "n1", "bridge", "local"]
    );

    // inspect: the first free default pool on a fresh daemon, the gateway inside it
    let (st, v) = d.api("GET", "/networks/n1", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["Driver"], "bridge");
    assert_eq!(v["Scope"], "local");
    let cfg = &v["IPAM"]["Config"][0];
    let subnet = cfg["Subnet"].as_str().unwrap_or_default();
    assert_eq!(subnet, "172.18.0.0/16", "{v}");
    let gw: Ipv4Addr = cfg["Gateway"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("gateway");
    assert!(contains(cidr(subnet), gw), "gateway {gw} outside {subnet}");
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "n1"
        ]),
        "172.18.0.0/16"
    );
    // its bridge exists in the daemon's namespace
    let bridge = format!("tb-{}", &id[..12]);
    assert!(d.links().contains(&bridge), "{:?}", d.links());

    // the next network takes the next pool
    d.ok(&["network", "create", "n2"]);
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "n2"
        ]),
        "172.19.0.0/16"
    );

    // rm: gone from ls and inspect, and its bridge is gone
    assert_eq!(d.ok(&["network", "rm", "n1"]), "n1");
    assert!(!d
        .ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .any(|l| l == "n1"));
    let (st, _) = d.api("GET", "/networks/n1", None);
    assert_eq!(st, 404);
    let o = d.fails(&["network", "inspect", "n1"]);
    assert!(o.stderr.contains("n1"), "{o}");
    let mut without = d.links();
    without.remove(&bridge);
    let left = d.links_settled(&without);
    assert!(!left.contains(&bridge), "bridge {bridge} left: {left:?}");

    // predefined networks cannot be removed
    let o = d.fails(&["network", "rm", "bridge"]);
    assert!(o.stderr.contains("pre-defined"), "{o}");
}

#[test]
fn invalid_and_conflicting_settings_are_rejected() {
    let d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "172.30.0.0/16", "first"]);
    let before = d.ok(&["network", "ls", "-q"]);

    // duplicate name
    let o = d.fails(&["network", "create", "first"]);
    assert!(
        o.stderr.contains("first") && o.stderr.contains("already exists"),
        "{o}"
    );

    // overlapping subnet, both ways: the message names the other network
    for s in ["172.30.5.0/24", "172.30.0.0/15"] {
        let o = d.fails(&["network", "create", "--subnet", s, "second"]);
        assert!(
            o.stderr.contains("overlaps") && o.stderr.contains("first"),
            "{s}: {o}"
        );
    }

    // malformed values are named in the error
    for (args, bad) in [
        (vec!["--subnet", "300.1.0.0/16"], "300.1.0.0/16"),
        (vec!["--subnet", "172.31.0.0/33"], "172.31.0.0/33"),
        (vec!["--subnet", "nonsense"], "nonsense"),
        (
            vec!["--subnet", "172.31.0.0/16", "--gateway", "not-an-ip"],
            "not-an-ip",
        ),
        (
            vec!["--subnet", "172.31.0.0/16", "--gateway", "172.29.0.1"],
            "172.29.0.1",
        ),
    ] {
        let mut v = vec!["network", "create"];
        v.extend(args.iter().copied());
        v.push("bad");
        let o = d.fails(&v);
        assert!(
            o.stderr.contains(bad),
            "{v:?}: the error does not name {bad:?}: {o}"
        );
        assert_eq!(
            o.stderr.trim().lines().count(),
            1,
            "{v:?}: one-line error expected: {o}"
        );
    }

    // nothing was created by the failed attempts
    assert_eq!(d.ok(&["network", "ls", "-q"]), before);
}

#[test]
fn rm_refused_while_in_use_and_prune_by_label() {
    let d = Daemon::start();
    d.ok(&["network", "create", "busy"]);
    d.run_d(&[
        "--name",
        "user",
        "--network",
        "busy",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let o = d.fails(&["network", "rm", "busy"]);
    assert!(
        o.stderr.contains("active endpoints") && o.stderr.contains("user"),
        "{o}"
    );
    assert_eq!(d.api("GET", "/networks/busy", None).0, 200);
    d.ok(&["rm", "-f", "user"]);
    assert_eq!(d.ok(&["network", "rm", "busy"]), "busy");

    // prune removes only the unused networks that match the label filter
    d.ok(&["network", "create", "--label", "env=test", "t1"]);
    d.ok(&["network", "create", "--label", "env=test", "t2"]);
    d.ok(&["network", "create", "--label", "env=prod", "p1"]);
    d.ok(&["network", "create", "plain"]);
    d.run_d(&[
        "--name",
        "holder",
        "--network",
        "t2",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let out = d.ok(&["network", "prune", "-f", "--filter", "label=env=test"]);
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    let names: Vec<&str> = ls.lines().collect();
    assert!(
        out.contains("t1") && !out.contains("t2") && !out.contains("p1"),
        "{out}"
    );
    assert!(!names.contains(&"t1"), "{names:?}");
    for kept in ["t2", "p1", "plain", "bridge", "host", "none"] {
        assert!(names.contains(&kept), "{kept} pruned: {names:?}");
    }
}

/// `network rm` parks the bridge (down, no address, renamed `tbp-…`) and the next create
/// takes it: the same subnet can be created again at once (the removed network's gateway
/// address went with it), a parked bridge is deleted after a few seconds, and a restarted
/// daemon deletes the parked bridges a killed one left — never a host link of a similar
/// name.
#[test]
fn removed_bridges_are_parked_reused_and_swept() {
    let mut d = Daemon::start();
    d.ns(&["ip", "link", "add", "tbp-00000001", "type", "bridge"]);
    let base = d.links();
    for _ in 0..5 {
        d.ok(&["network", "create", "--subnet", "10.79.0.0/24", "again"]);
        let (st, v) = d.api("GET", "/networks/again", None);
        assert_eq!(st, 200, "{v}");
        let id = v["Id"].as_str().unwrap_or_default().to_string();
        let bridge = format!("tb-{}", &id[..12]);
        let o = d.ns(&["ip", "-o", "-4", "addr", "show", "dev", &bridge]);
        assert!(o.stdout.contains("10.79.0.1/24"), "{bridge}: {o}");
        d.ok(&["network", "rm", "again"]);
        let parked: Vec<String> = d.links().difference(&base).cloned().collect();
        assert!(
            parked.len() <= 1 && parked.iter().all(|l| l.starts_with("tbp-")),
            "after rm: {parked:?}"
        );
        for l in &parked {
            let o = d.ns(&["ip", "-o", "addr", "show", "dev", l]);
            assert!(
                !o.stdout.contains("inet "),
                "a parked bridge kept an address: {o}"
            );
        }
    }
    assert_eq!(
        d.links_settled(&base),
        base,
        "a parked bridge outlived its time"
    );

    // a daemon killed while a bridge is parked: the next one deletes it, and leaves the
    // host's own tbp-00000001 alone
    d.ok(&["network", "create", "--subnet", "10.79.0.0/24", "again"]);
    d.ok(&["network", "rm", "again"]);
    assert_ne!(d.links(), base);
    d.kill_daemon();
    d.start_daemon();
    assert_eq!(d.links_settled(&base), base);
    assert!(d.links().contains("tbp-00000001"));
    d.ns(&["ip", "link", "del", "tbp-00000001"]);
}
