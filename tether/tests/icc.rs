//! `com.docker.network.bridge.enable_icc=false` isolates a network's containers from each
//! other in the bridge itself (nftables' bridge family), not only through br_netfilter: the
//! test turns `net.bridge.bridge-nf-call-iptables`/`ip6tables` off in the daemon's network
//! namespace, so bridged frames never reach the inet hooks, and checks that containers of an
//! icc=false network still cannot talk while those of an ordinary network can.

mod common;

use common::{Daemon, IMAGE};

fn listener(d: &Daemon, net: &str, name: &str) {
    d.run_d(&[
        "--network",
        net,
        "--name",
        name,
        IMAGE,
        "sh",
        "-c",
        "exec nc -ll -p 80 -e echo hello",
    ]);
}

fn reach(d: &Daemon, net: &str, target_ip: &str) -> String {
    let o = d.cli(&[
        "run",
        "--rm",
        "--network",
        net,
        IMAGE,
        "sh",
        "-c",
        &format!(
            "nc -w 2 {target_ip} 80 </dev/null; ping -c1 -W1 {target_ip} >/dev/null && echo pinged"
        ),
    ]);
    o.out().to_string()
}

#[test]
fn icc_false_isolates_without_br_netfilter() {
    let d = Daemon::start();
    for s in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        let o = d.ns(&["sh", "-c", &format!("echo 0 > /proc/sys/net/bridge/{s}")]);
        assert!(o.success(), "turning {s} off in the test's namespace: {o}");
    }
    let o = d.ns(&["cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"]);
    assert_eq!(o.out(), "0", "{o}");

    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "noicc",
    ]);
    d.ok(&["network", "create", "open"]);
    listener(&d, "noicc", "a");
    listener(&d, "open", "b");
    let ip_a = d.ip_of("a", "noicc");
    let ip_b = d.ip_of("b", "open");

    // the control: on an ordinary network the neighbour answers (TCP and ICMP)
    common::wait_until("b to listen", std::time::Duration::from_secs(10), || {
        reach(&d, "open", &ip_b).contains("hello")
    });
    assert!(reach(&d, "open", &ip_b).contains("pinged"));

    // icc=false: neither TCP nor ICMP crosses the bridge
    let got = reach(&d, "noicc", &ip_a);
    assert!(
        !got.contains("hello") && !got.contains("pinged"),
        "a container on an icc=false network reached its neighbour with br_netfilter off: {got:?}"
    );
    // the listener itself is up: it answers on its own loopback
    let own = d.sh("a", "nc -w 2 127.0.0.1 80 </dev/null").stdout;
    assert!(own.contains("hello"), "{own}");
}
