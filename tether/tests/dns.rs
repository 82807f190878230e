//! Name resolution: the embedded DNS server of user-defined networks (names, hostnames,
//! aliases with round-robin, forwarding to the daemon's upstream, SERVFAIL without one,
//! live updates on connect/disconnect), and no names on the default bridge.

mod common;

use std::collections::BTreeSet;

use common::{nslookup_addrs, Daemon, IMAGE, UPSTREAM_IP, UPSTREAM_NAME};

/// busybox `nslookup NAME` run in `from`, bounded by the container's `timeout`.
fn nslookup(d: &Daemon, from: &str, name: &str) -> String {
    d.sh(from, &format!("timeout 20 nslookup {name} 2>&1"))
        .all()
}

#[test]
fn names_hostnames_aliases_and_forwarding() {
    let mut d = Daemon::start();
    d.ok(&["network", "create", "n1"]);
    d.ok(&["network", "create", "n2"]);
    let net = ["--network", "n1", "--network-alias", "svc"];
    let mut a = vec!["--name", "a"];
    a.extend(net);
    a.extend([IMAGE, "sleep", "1000"]);
    d.run_d(&a);
    let mut b = vec!["--name", "b", "--hostname", "bhost"];
    b.extend(net);
    b.extend([IMAGE, "sleep", "1000"]);
    d.run_d(&b);
    let mut c = vec!["--name", "c"];
    c.extend(net);
    c.extend([IMAGE, "sleep", "1000"]);
    d.run_d(&c);
    let ips: BTreeSet<String> = ["a", "b", "c"].iter().map(|n| d.ip_of(n, "n1")).collect();
    assert_eq!(ips.len(), 3, "{ips:?}");
    let ip_b = d.ip_of("b", "n1");

    // the embedded server is the container's resolver
    let resolv = d.ok(&["exec", "a", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");

    // by container name and by --hostname
    for name in ["b", "bhost"] {
        let out = nslookup(&d, "a", name);
        assert_eq!(nslookup_addrs(&out), vec![ip_b.clone()], "{name}: {out}");
    }

    // an alias shared by three containers: all three addresses, first one rotating
    let out = nslookup(&d, "a", "svc");
    let got: BTreeSet<String> = nslookup_addrs(&out).into_iter().collect();
    assert_eq!(got, ips, "svc: {out}");
    let mut firsts = BTreeSet::new();
    for _ in 0..6 {
        let out = nslookup(&d, "a", "svc");
        let addrs = nslookup_addrs(&out);
        assert_eq!(addrs.len(), 3, "svc: {out}");
        firsts.insert(addrs[0].clone());
    }
    assert!(
        firsts.len() >= 2,
        "the first answer never rotated: {firsts:?}"
    );

    // unknown names go to the daemon's upstream (the test's server)
    let out = nslookup(&d, "a", UPSTREAM_NAME);
    assert_eq!(nslookup_addrs(&out), vec![UPSTREAM_IP.to_string()], "{out}");
    let out = nslookup(&d, "a", "nosuch.test");
    assert!(
        out.contains("can't find nosuch.test") && out.contains("NXDOMAIN"),
        "{out}"
    );
    let seen = d.upstream().seen();
    assert!(seen.contains(&format!("{UPSTREAM_NAME}.")), "{seen:?}");
    assert!(seen.contains(&"nosuch.test.".to_string()), "{seen:?}");
    assert!(
        !seen
            .iter()
            .any(|n| n.starts_with("b.") || n.starts_with("svc.")),
        "{seen:?}"
    );

    // a container on another network does not see n1's names
    d.run_d(&["--name", "x", "--network", "n2", IMAGE, "sleep", "1000"]);
    let o = d.sh("x", "ping -c 1 -W 1 b 2>&1");
    assert!(o.all().contains("bad address 'b'"), "{o}");
    let out = nslookup(&d, "x", "svc");
    assert!(
        out.contains("can't find svc") && nslookup_addrs(&out).is_empty(),
        "{out}"
    );

    // without an answering upstream: SERVFAIL, not a timeout
    d.stop_upstream();
    let out = nslookup(&d, "a", "elsewhere.test");
    assert!(out.contains("SERVFAIL"), "expected SERVFAIL: {out}");
    // local names still resolve
    assert_eq!(nslookup_addrs(&nslookup(&d, "a", "b")), vec![ip_b]);
}

#[test]
fn default_bridge_has_no_names() {
    let d = Daemon::start();
    d.run_d(&[
        "--name",
        "one",
        "--dns",
        "127.0.0.1",
        IMAGE,
        "sleep",
        "1000",
    ]);
    d.run_d(&[
        "--name",
        "two",
        "--hostname",
        "twohost",
        "--dns",
        "127.0.0.1",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let resolv = d.ok(&["exec", "one", "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains("127.0.0.11"), "{resolv}");
    for name in ["two", "twohost"] {
        let o = d.sh("one", &format!("ping -c 1 -W 1 {name} 2>&1"));
        assert!(
            o.all().contains(&format!("bad address '{name}'")),
            "{name}: {o}"
        );
    }
    // the address itself is reachable: it is only the name that is missing
    let ip = d.ip_of("two", "bridge");
    assert!(ip.starts_with("172.17."), "{ip}");
    let o = d.sh("one", &format!("ping -c 1 -W 5 {ip} 2>&1"));
    assert!(
        o.success() && o.stdout.contains("1 packets received"),
        "{o}"
    );
}

#[test]
fn disconnect_and_connect_update_names_at_once() {
    let d = Daemon::start();
    d.ok(&["network", "create", "n1"]);
    d.run_d(&["--name", "asker", "--network", "n1", IMAGE, "sleep", "1000"]);
    d.run_d(&[
        "--name",
        "mover",
        "--network",
        "n1",
        "--network-alias",
        "mv",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let ip = d.ip_of("mover", "n1");
    assert_eq!(
        nslookup_addrs(&nslookup(&d, "asker", "mover")),
        vec![ip.clone()]
    );
    assert_eq!(nslookup_addrs(&nslookup(&d, "asker", "mv")), vec![ip]);

    d.ok(&["network", "disconnect", "n1", "mover"]);
    for name in ["mover", "mv"] {
        let out = nslookup(&d, "asker", name);
        assert!(
            out.contains(&format!("can't find {name}")) && nslookup_addrs(&out).is_empty(),
            "{name} still resolves after disconnect: {out}"
        );
    }

    d.ok(&["network", "connect", "--alias", "back", "n1", "mover"]);
    let ip = d.ip_of("mover", "n1");
    assert!(!ip.is_empty(), "no address after connect");
    for name in ["mover", "back"] {
        assert_eq!(
            nslookup_addrs(&nslookup(&d, "asker", name)),
            vec![ip.clone()],
            "{name}"
        );
    }
    // and the reconnected container resolves the others through its own embedded server
    let asker = d.ip_of("asker", "n1");
    assert_eq!(nslookup_addrs(&nslookup(&d, "mover", "asker")), vec![asker]);
}
