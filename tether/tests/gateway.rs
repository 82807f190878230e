//! Bridge networking as Docker 28 does it: the direct-routing filter (on by default,
//! `--allow-direct-routing`, `trusted_host_interfaces`) and the gateway modes (`nat`,
//! `nat-unprotected`, `routed`, `isolated`), probed from an "outside" namespace behind a
//! veth that routes the bridge subnet to the daemon's namespace (a neighbour doing direct
//! routing), and `FirewallBackend` in `info`.
//!
//! The test container serves two ports: 80 (published as host port 8080) answers with the
//! container's own view of its TCP connections (`netstat -tn`, so the client's source
//! address shows), 81 (never published) answers "p81".

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use common::outside::{self, Outside};
use common::{in_netns, wait_until, Daemon, IMAGE};

const SUBNET: &str = "172.30.0.0/16";

/// Creates network `net` (with `opts` as `-o` options) and the container `web` on it, and
/// routes the subnet from the outside namespace to the daemon's. Returns web's address.
fn setup(d: &Daemon, out: &Outside, net: &str, opts: &[&str]) -> String {
    let mut args = vec!["network", "create", "--subnet", SUBNET];
    for o in opts {
        args.extend(["-o", o]);
    }
    args.push(net);
    d.ok(&args);
    d.run_d(&[
        "--name",
        "web",
        "--network",
        net,
        "-p",
        "8080:80",
        IMAGE,
        "sh",
        "-c",
        "nc -ll -p 81 -e echo p81 & exec nc -ll -p 80 -e sh -c 'echo p80; netstat -tn'",
    ]);
    let ip = d.ip_of("web", net);
    let o = out.sh(&format!("ip route add {SUBNET} via {}", outside::HOST_SIDE));
    assert!(o.success(), "route to the bridge subnet: {o}");
    wait_until("web serves", Duration::from_secs(30), || {
        d.sh("web", "nc -w 2 127.0.0.1 81 </dev/null").out() == "p81"
    });
    ip
}

/// What the outside namespace gets from `addr` `port` (empty: nothing within 3 s).
fn from_outside(out: &Outside, addr: &str, port: u16) -> String {
    out.sh(&format!(
        "echo | timeout 4 busybox nc -w 3 {addr} {port} 2>/dev/null"
    ))
    .stdout
}

/// What the daemon's namespace (the host) gets from `addr` `port`.
fn from_host(d: &Daemon, addr: &str, port: u16) -> String {
    d.ns(&[
        "sh",
        "-c",
        &format!("echo | timeout 4 busybox nc -w 3 {addr} {port} 2>/dev/null"),
    ])
    .stdout
}

#[test]
fn direct_routing_is_filtered_by_default() {
    let d = Daemon::start();
    let out = Outside::start(&d);
    let ip = setup(&d, &out, "n", &[]);
    // the published port answers through the host address, showing the neighbour's own
    // address as the client (no source NAT on the way in)
    let got = from_outside(&out, outside::HOST_SIDE, 8080);
    assert!(
        got.contains("p80") && got.contains(outside::OUTSIDE),
        "published port from outside: {got:?}"
    );
    // the host itself reaches any container port
    assert!(from_host(&d, &ip, 81).contains("p81"));
    // a neighbour routing to the container's address gets nothing, published or not
    assert_eq!(
        from_outside(&out, &ip, 80),
        "",
        "direct routing to a published port"
    );
    assert_eq!(
        from_outside(&out, &ip, 81),
        "",
        "direct routing to an unpublished port"
    );
}

#[test]
fn trusted_interfaces_reach_published_container_ports() {
    let d = Daemon::start();
    let out = Outside::start(&d);
    let ip = setup(
        &d,
        &out,
        "n",
        &["com.docker.network.bridge.trusted_host_interfaces=eth9:vout0"],
    );
    assert!(from_outside(&out, &ip, 80).contains("p80"));
    assert_eq!(from_outside(&out, &ip, 81), "", "unpublished port reached");
    let (st, v) = d.api(
        "POST",
        "/networks/create",
        Some(&serde_json::json!({"Name": "bad", "Options": {"com.docker.network.bridge.trusted_host_interfaces": "ok:far-too-long-ifname"}})),
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("far-too-long-ifname"),
        "{v}"
    );
}

#[test]
fn allow_direct_routing_opens_published_container_ports() {
    let d = Daemon::start_with(&["--allow-direct-routing"]);
    let out = Outside::start(&d);
    let ip = setup(&d, &out, "n", &[]);
    assert!(from_outside(&out, &ip, 80).contains("p80"));
    assert_eq!(from_outside(&out, &ip, 81), "", "unpublished port reached");
}

#[test]
fn nat_unprotected_leaves_every_port_open_to_routing() {
    let d = Daemon::start();
    let out = Outside::start(&d);
    let ip = setup(
        &d,
        &out,
        "n",
        &["com.docker.network.bridge.gateway_mode_ipv4=nat-unprotected"],
    );
    assert!(from_outside(&out, &ip, 81).contains("p81"));
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{index .Options \"com.docker.network.bridge.gateway_mode_ipv4\"}}",
            "n"
        ]),
        "nat-unprotected"
    );
}

#[test]
fn routed_mode_has_no_nat_and_opens_only_published_container_ports() {
    let d = Daemon::start();
    let out = Outside::start(&d);
    let ip = setup(
        &d,
        &out,
        "n",
        &["com.docker.network.bridge.gateway_mode_ipv4=routed"],
    );
    // the published container port, on the container's own address; the container sees
    // the neighbour's own address
    let got = from_outside(&out, &ip, 80);
    assert!(
        got.contains("p80") && got.contains(outside::OUTSIDE),
        "routed published port: {got:?}"
    );
    assert_eq!(from_outside(&out, &ip, 81), "", "unpublished port reached");
    // the host port is not used in routed mode
    assert!(d.nft_tcp_ports().is_empty(), "{:?}", d.nft_tcp_ports());
    assert_eq!(from_outside(&out, outside::HOST_SIDE, 8080), "");
    // outgoing traffic keeps the container's address (no masquerade): the outside
    // server sees it
    let listener = in_netns(&out.netns(), || {
        TcpListener::bind("0.0.0.0:7010").expect("outside listener")
    });
    let seen = std::thread::spawn(move || {
        listener
            .accept()
            .map(|(mut s, peer)| {
                let mut b = [0u8; 8];
                let _ = s.read(&mut b);
                peer.ip().to_string()
            })
            .unwrap_or_default()
    });
    d.sh(
        "web",
        &format!("echo hi | nc -w 3 {} 7010", outside::OUTSIDE),
    );
    assert_eq!(
        seen.join().expect("accept"),
        ip,
        "source address seen outside"
    );
}

#[test]
fn isolated_mode_needs_internal_and_cannot_reach_the_host() {
    let d = Daemon::start();
    let iso = "com.docker.network.bridge.gateway_mode_ipv4=isolated";
    let o = d.fails(&["network", "create", "-o", iso, "x"]);
    assert!(o.stderr.contains("--internal"), "{o}");
    d.ok(&[
        "network",
        "create",
        "--internal",
        "-o",
        iso,
        "-o",
        "com.docker.network.bridge.name=tiso0",
        "iso",
    ]);
    d.ok(&[
        "network",
        "create",
        "--internal",
        "-o",
        "com.docker.network.bridge.name=tint0",
        "int",
    ]);
    let addrs = |br: &str| d.ns(&["ip", "-4", "-o", "addr", "show", "dev", br]).stdout;
    assert_eq!(addrs("tiso0"), "", "the isolated bridge has an address");
    assert!(addrs("tint0").contains("inet "), "{}", addrs("tint0"));
    // a host service on every address: answers "host" to each connection, for 60 s
    let host = in_netns(&d.netns(), || {
        TcpListener::bind("0.0.0.0:7005").expect("host listener")
    });
    host.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < end {
            match host.accept() {
                Ok((mut s, _)) => {
                    let _ = std::io::Write::write_all(&mut s, b"host\n");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    for (name, net) in [("i1", "iso"), ("i2", "iso"), ("n1", "int")] {
        d.run_d(&["--name", name, "--network", net, IMAGE, "sleep", "300"]);
    }
    let reaches = |from: &str, to: &str| {
        d.sh(from, &format!("timeout 4 nc -w 2 {to} 7005 </dev/null"))
            .out()
            == "host"
    };
    // control: on a plain internal network the host answers on the bridge address
    let gw = d.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
        "n1",
    ]);
    assert!(
        reaches("n1", &gw),
        "internal network cannot reach its gateway"
    );
    // isolated: no host address is reachable; the network's own containers still talk
    let i2 = d.ip_of("i2", "iso");
    let iso_gw = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        "iso",
    ]);
    assert!(
        !reaches("i1", &iso_gw),
        "isolated container reached the host"
    );
    assert!(
        !reaches("i1", &gw),
        "isolated container reached another bridge"
    );
    assert!(d
        .sh("i1", &format!("ping -c1 -W2 {i2}"))
        .stdout
        .contains(" 0% packet loss"));
}

#[test]
fn info_reports_the_nftables_backend() {
    let d = Daemon::start();
    let (st, v) = d.api("GET", "/info", None);
    assert_eq!(st, 200);
    assert_eq!(v["FirewallBackend"]["Driver"], "nftables", "{v}");
    let o = common::run_with_limit(
        {
            let mut c = std::process::Command::new(common::TETHER);
            c.args(["daemon", "--firewall-backend", "iptables"]);
            c
        },
        common::COMMAND_LIMIT,
    );
    assert!(!o.success() && o.stderr.contains("iptables"), "{o}");
}

/// The interface of the container's IPv4 default route (`ip route`), "" when none.
fn default_dev(d: &Daemon, c: &str) -> String {
    let r = d.sh(c, "ip route show default").stdout;
    r.split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

#[test]
fn gw_priority_picks_the_default_route_and_follows_connects() {
    let d = Daemon::start();
    for n in ["a", "b", "c"] {
        d.ok(&["network", "create", n]);
    }
    d.ok(&["network", "create", "--internal", "inner"]);
    // highest priority wins at start, whatever the order of the networks
    d.run_d(&[
        "--name",
        "g",
        "--network",
        "a",
        "--network",
        "name=b,gw-priority=10",
        IMAGE,
        "sleep",
        "300",
    ]);
    let dev_of = |net: &str| {
        d.ok(&[
            "inspect",
            "-f",
            &format!("{{{{index .NetworkSettings.Networks \"{net}\" | json}}}}"),
            "g",
        ])
    };
    let ifname = |net: &str| {
        let ip = d.ip_of("g", net);
        d.sh(
            "g",
            &format!("ip -o -4 addr show | grep ' {ip}/' | awk '{{print $2}}'"),
        )
        .out()
        .to_string()
    };
    assert!(dev_of("b").contains("\"GwPriority\":10"), "{}", dev_of("b"));
    assert_eq!(default_dev(&d, "g"), ifname("b"));
    // a connect with a higher priority takes the default route; a lower one does not
    d.ok(&["network", "connect", "--gw-priority", "20", "c", "g"]);
    assert_eq!(default_dev(&d, "g"), ifname("c"));
    d.ok(&["network", "connect", "--gw-priority", "99", "inner", "g"]);
    assert_eq!(
        default_dev(&d, "g"),
        ifname("c"),
        "an internal network took the route"
    );
    // disconnecting the gateway's network hands the route to the next best
    d.ok(&["network", "disconnect", "c", "g"]);
    assert_eq!(default_dev(&d, "g"), ifname("b"));
    d.ok(&["network", "disconnect", "b", "g"]);
    assert_eq!(default_dev(&d, "g"), ifname("a"));
}
