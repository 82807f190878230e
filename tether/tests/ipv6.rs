//! Dual-stack networks (`--ipv6`): IPv6 IPAM with static `--ip6`, AAAA and PTR answers from
//! the embedded DNS, IPv6 default routes, and ports published over IPv6 too.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{in_netns, wait_until, Daemon, IMAGE};

/// Gives the daemon's namespace (the host) the IPv6 address fd99::1 on a veth of the
/// test's own (not ::1: the kernel cannot DNAT IPv6 loopback).
fn host_v6_address(d: &Daemon) {
    let ok = in_netns(&d.netns(), || {
        let run = |a: &[&str]| {
            Command::new("ip")
                .args(a)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        run(&["link", "add", "h6a", "type", "veth", "peer", "name", "h6b"])
            && run(&["addr", "add", "fd99::1/64", "dev", "h6a", "nodad"])
            && run(&["link", "set", "h6a", "up"])
            && run(&["link", "set", "h6b", "up"])
    });
    assert!(ok, "test address");
}

/// Removes what [`host_v6_address`] made.
fn drop_host_v6_address(d: &Daemon) {
    in_netns(&d.netns(), || {
        Command::new("ip")
            .args(["link", "del", "h6a"])
            .status()
            .ok()
    });
}

/// What the host gets from `addr` `port` (TCP, empty when nothing answers in 3 s).
fn talk(d: &Daemon, addr: &'static str, port: u16) -> String {
    in_netns(&d.netns(), move || {
        Command::new("sh")
            .args([
                "-c",
                &format!("echo | timeout 3 busybox nc -w 2 {addr} {port}"),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    })
}

fn field(d: &Daemon, tmpl: &str, obj: &str) -> String {
    d.ok(&["inspect", "-f", tmpl, obj])
}

#[test]
fn dual_stack_addresses_names_and_routes() {
    let mut d = Daemon::start();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "172.30.0.0/16",
        "--subnet",
        "fd00:30::/64",
        "ds",
    ]);
    let cfg = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}},{{.Gateway}} {{end}}",
        "ds",
    ]);
    assert_eq!(
        cfg, "true 172.30.0.0/16,172.30.0.1 fd00:30::/64,fd00:30::1",
        "{cfg}"
    );

    d.run_d(&["--name", "a", "--network", "ds", IMAGE, "sleep", "300"]);
    d.run_d(&[
        "--name",
        "b",
        "--network",
        "ds",
        "--ip6",
        "fd00:30::99",
        IMAGE,
        "sleep",
        "300",
    ]);
    let a6 = field(
        &d,
        "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
        "a",
    );
    assert_eq!(a6, "fd00:30::2");
    assert_eq!(field(&d, "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}}{{end}}", "b"), "fd00:30::99/64 fd00:30::1");
    let members = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}}={{.IPv6Address}} {{end}}",
        "ds",
    ]);
    assert!(
        members.contains("a=fd00:30::2/64") && members.contains("b=fd00:30::99/64"),
        "{members}"
    );

    // inside: the address, the IPv6 default route, AAAA (and A) by name, PTR, ping over IPv6
    let addrs = d.sh("b", "ip -6 addr show eth0; ip -6 route").stdout;
    assert!(
        addrs.contains("fd00:30::99/64") && addrs.contains("default via fd00:30::1"),
        "{addrs}"
    );
    let aaaa = d.sh("b", "nslookup -type=AAAA a 127.0.0.11").stdout;
    assert!(aaaa.contains("fd00:30::2"), "AAAA for a: {aaaa}");
    let a4 = d.sh("b", "nslookup -type=A a 127.0.0.11").stdout;
    assert!(
        a4.contains("172.30.0.2") && !a4.contains("fd00:30::2"),
        "A for a: {a4}"
    );
    let ptr = d.sh("b", "nslookup fd00:30::2 127.0.0.11").stdout;
    assert!(ptr.contains("name = a"), "PTR for fd00:30::2: {ptr}");
    assert!(d
        .sh("b", "ping -6 -c1 -W2 a")
        .stdout
        .contains(" 0% packet loss"));
    let hosts = d.sh("b", "cat /etc/hosts").stdout;
    assert!(hosts.contains("fd00:30::99\t"), "{hosts}");

    // names keep their AAAA answers across a daemon restart (containers are re-adopted)
    d.restart();
    let aaaa = d.sh("b", "nslookup -type=AAAA a 127.0.0.11").stdout;
    assert!(
        aaaa.contains("fd00:30::2"),
        "AAAA for a after a restart: {aaaa}"
    );

    // static addresses are checked: taken, or on a network without IPv6
    let o = d.fails(&[
        "run",
        "--rm",
        "--network",
        "ds",
        "--ip6",
        "fd00:30::99",
        IMAGE,
        "true",
    ]);
    assert!(o.stderr.contains("fd00:30::99"), "{o}");
    let o = d.fails(&["run", "--rm", "--ip6", "fd00:30::98", IMAGE, "true"]);
    assert!(o.stderr.contains("has no IPv6"), "{o}");

    // an IPv6 network without a subnet gets a unique local /64; a v6 subnet needs --ipv6
    d.ok(&["network", "create", "--ipv6", "auto6"]);
    let s6 = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        "auto6",
    ]);
    assert!(
        s6.split_whitespace()
            .any(|s| s.starts_with("fd") && s.ends_with("::/64")),
        "{s6}"
    );
    let o = d.fails(&["network", "create", "--subnet", "fd00:31::/64", "no6"]);
    assert!(o.stderr.contains("--ipv6"), "{o}");
    let o = d.fails(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:30::/80",
        "overlap6",
    ]);
    assert!(
        o.stderr.contains("ds"),
        "names the overlapping network: {o}"
    );
}

#[test]
fn ports_are_published_over_ipv6_too() {
    let d = Daemon::start();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:40::/64",
        "ds",
    ]);
    d.run_d(&[
        "--name",
        "srv",
        "--network",
        "ds",
        "-p",
        "18090:7777",
        IMAGE,
        "sh",
        "-c",
        "nc -ll -p 7777 -e echo hello6 & sleep 300",
    ]);
    let port = d.ok(&["port", "srv"]);
    assert!(
        port.contains("7777/tcp -> 0.0.0.0:18090") && port.contains("7777/tcp -> [::]:18090"),
        "{port}"
    );
    // a host IPv6 address (not ::1: the kernel cannot DNAT IPv6 loopback) on a veth of the test's
    host_v6_address(&d);
    let talk = |addr: &'static str| talk(&d, addr, 18090);
    wait_until(
        "the port answers on 127.0.0.1",
        Duration::from_secs(20),
        || talk("127.0.0.1").contains("hello6"),
    );
    wait_until(
        "the port answers on [fd99::1]",
        Duration::from_secs(20),
        || talk("fd99::1").contains("hello6"),
    );
    d.ok(&["rm", "-f", "srv"]);
    assert!(
        !talk("fd99::1").contains("hello6"),
        "port still answers after the container is gone"
    );
    drop_host_v6_address(&d);
}

#[test]
fn ipv6_only_networks_have_no_ipv4_anywhere() {
    let d = Daemon::start();
    let o = d.fails(&["network", "create", "--ipv4=false", "nofamily"]);
    assert!(o.stderr.contains("--ipv6"), "{o}");
    let o = d.fails(&[
        "network",
        "create",
        "--ipv4=false",
        "--ipv6",
        "--subnet",
        "172.31.0.0/16",
        "mixed",
    ]);
    assert!(o.stderr.contains("172.31.0.0/16"), "{o}");
    d.ok(&[
        "network",
        "create",
        "--ipv4=false",
        "--ipv6",
        "--subnet",
        "fd00:50::/64",
        "v6only",
    ]);
    let cfg = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv4}} {{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}",
        "v6only",
    ]);
    assert_eq!(cfg, "false true fd00:50::/64", "{cfg}");
    d.run_d(&[
        "--name",
        "s",
        "--network",
        "v6only",
        "-p",
        "18091:7777",
        IMAGE,
        "sh",
        "-c",
        "nc -ll -p 7777 -e echo only6 & sleep 300",
    ]);
    d.run_d(&["--name", "c", "--network", "v6only", IMAGE, "sleep", "300"]);
    let o = d.fails(&[
        "run",
        "--rm",
        "--network",
        "v6only",
        "--ip",
        "172.31.0.9",
        IMAGE,
        "true",
    ]);
    assert!(o.stderr.contains("no IPv4"), "{o}");

    // no IPv4 address or route inside, an IPv6 one with the default route
    let v4 = d.sh("c", "ip -4 addr show eth0; ip -4 route").stdout;
    assert!(!v4.contains("inet ") && !v4.contains("default"), "{v4}");
    let v6 = d.sh("c", "ip -6 addr show eth0; ip -6 route").stdout;
    assert!(
        v6.contains("fd00:50::3/64") && v6.contains("default via fd00:50::1"),
        "{v6}"
    );
    assert_eq!(
        field(
            &d,
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}|{{.GlobalIPv6Address}}{{end}}",
            "s"
        ),
        "|fd00:50::2"
    );
    // names answer AAAA only
    let aaaa = d.sh("c", "nslookup -type=AAAA s 127.0.0.11").stdout;
    assert!(aaaa.contains("fd00:50::2"), "AAAA for s: {aaaa}");
    let a = d.sh("c", "nslookup -type=A s 127.0.0.11").stdout;
    let answers = a
        .lines()
        .filter(|l| l.starts_with("Address") && !l.contains("127.0.0.11"))
        .count();
    assert_eq!(answers, 0, "A for s on an IPv6-only network: {a}");
    assert!(d
        .sh("c", "ping -6 -c1 -W2 s")
        .stdout
        .contains(" 0% packet loss"));

    // the port is published over IPv6 only
    let port = d.ok(&["port", "s"]);
    assert_eq!(port, "7777/tcp -> [::]:18091", "{port}");
    assert!(
        d.nft_tcp_ports().is_empty(),
        "IPv4 DNAT for an IPv6-only container"
    );
    host_v6_address(&d);
    let talk = |addr: &'static str| talk(&d, addr, 18091);
    wait_until(
        "the port answers on [fd99::1]",
        Duration::from_secs(20),
        || talk("fd99::1").contains("only6"),
    );
    assert!(!talk("127.0.0.1").contains("only6"), "answered over IPv4");
    drop_host_v6_address(&d);
}
