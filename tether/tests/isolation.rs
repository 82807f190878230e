//! Network isolation: containers of one network reach each other; containers of different
//! networks, user-defined or the default bridge, do not (in either direction).

mod common;

use std::time::Duration;

use common::{wait_until, Daemon, IMAGE};

/// A container on `net` (None: the default bridge) serving `hello-NAME` on TCP 8080.
fn server(d: &Daemon, name: &str, net: Option<&str>) {
    let mut args = vec!["--name", name];
    if let Some(n) = net {
        args.extend(["--network", n]);
    }
    let script = format!("exec nc -ll -p 8080 -e echo hello-{name}");
    args.extend([IMAGE, "sh", "-c", &script]);
    d.run_d(&args);
    // ready when it answers on its own loopback
    wait_until(
        &format!("{name} listens on 8080"),
        Duration::from_secs(60),
        || d.sh(name, "nc -w 2 127.0.0.1 8080 </dev/null").out() == format!("hello-{name}"),
    );
}

/// What `from` gets from `ip`:8080 (empty if it cannot connect within 3 s).
fn probe(d: &Daemon, from: &str, ip: &str) -> String {
    d.sh(from, &format!("nc -w 3 {ip} 8080 </dev/null 2>/dev/null"))
        .out()
        .to_string()
}

#[test]
fn networks_are_isolated_from_each_other() {
    let d = Daemon::start();
    d.ok(&["network", "create", "na"]);
    d.ok(&["network", "create", "nb"]);
    server(&d, "a1", Some("na"));
    server(&d, "a2", Some("na"));
    server(&d, "b1", Some("nb"));
    server(&d, "def", None);
    let ip = |n: &str, net: &str| d.ip_of(n, net);
    let (a1, a2, b1, def) = (
        ip("a1", "na"),
        ip("a2", "na"),
        ip("b1", "nb"),
        ip("def", "bridge"),
    );

    // same network: both directions work
    assert_eq!(probe(&d, "a2", &a1), "hello-a1");
    assert_eq!(probe(&d, "a1", &a2), "hello-a2");

    // across networks: nothing gets through, in any direction (probed concurrently)
    let blocked = [
        ("a1", b1.clone()),
        ("b1", a1.clone()),
        ("def", a1.clone()),
        ("def", b1.clone()),
        ("a1", def.clone()),
        ("b1", def.clone()),
    ];
    let results: Vec<(String, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = blocked
            .iter()
            .map(|(from, to)| {
                let d = &d;
                s.spawn(move || (from.to_string(), to.clone(), probe(d, from, to)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("probe"))
            .collect()
    });
    for (from, to, got) in results {
        assert!(got.is_empty(), "{from} reached {to}: {got:?}");
    }

    // and the same-network path still works afterwards (the blocks were not a fluke of a
    // dead server)
    assert_eq!(probe(&d, "a2", &a1), "hello-a1");
    assert_eq!(probe(&d, "a1", &a2), "hello-a2");
}
