//! Safe on a shared host: nothing a client sends makes tether adopt, set down or delete an
//! interface it did not create, take an address block that cannot hold a network or that
//! the host itself uses, or open the host's loopback to its containers or its neighbours.
//!
//! The loopback probes are hand-made frames on packet sockets ([`common::raw`]): a TCP SYN
//! to 127.0.0.1 sent from a container's namespace to its gateway's MAC (what a process with
//! the default `CAP_NET_RAW` can send), and from an "outside" namespace behind a veth to the
//! daemon's side of that veth (a neighbour that routes 127.0.0.1 to this host). Each probe
//! has a control beside it — the same frame to an address that must answer — so a probe
//! that could not have been answered does not pass for a blocked one.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use common::outside::{self, Outside};
use common::raw::{parse_mac, Syn};
use common::{in_netns, wait_until, Daemon, IMAGE};
use serde_json::{json, Value};

/// How long a probe watches for an answer. Answers come within a millisecond here; the
/// controls show the probes work.
const PROBE: Duration = Duration::from_secs(2);

/// `ip -j -d link show dev NAME` in the daemon's namespace (None: no such link).
fn link(d: &Daemon, name: &str) -> Option<Value> {
    let o = d.ns(&["ip", "-j", "-d", "link", "show", "dev", name]);
    if !o.success() {
        return None;
    }
    let v: Value = serde_json::from_str(&o.stdout).expect("ip -j output");
    v.get(0).cloned()
}

fn is_up(l: &Value) -> bool {
    l["flags"]
        .as_array()
        .map(|f| f.iter().any(|x| x == "UP"))
        .unwrap_or(false)
}

fn mac_of(l: &Value) -> [u8; 6] {
    parse_mac(l["address"].as_str().expect("address"))
}

/// Names of the networks the daemon lists.
fn networks(d: &Daemon) -> BTreeSet<String> {
    d.ok(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The elements of tether's `bridges` set and its IPv4 masquerade set, as nft lists them.
fn nft_sets(d: &Daemon) -> String {
    let a = d.ns(&["nft", "list", "set", "inet", "tether", "bridges"]);
    let b = d.ns(&["nft", "list", "set", "inet", "tether", "nat_subnets"]);
    assert!(a.success() && b.success(), "{a}\n{b}");
    let elems = |s: &str| {
        s.lines()
            .filter(|l| l.contains("elements"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!("{}\n{}", elems(&a.stdout), elems(&b.stdout))
}

fn sh_ok(d: &Daemon, script: &str) {
    let o = d.ns(&["sh", "-c", script]);
    assert!(o.success(), "{script}: {o}");
}

/// Deletes links the test made itself (the harness's teardown checks that the daemon's
/// namespace is left with loopback only).
fn delete_links(d: &Daemon, names: &[&str]) {
    for n in names {
        sh_ok(d, &format!("ip link del {n}"));
    }
}

fn create(d: &Daemon, body: Value) -> (u16, String) {
    let (st, v) = d.api("POST", "/networks/create", Some(&body));
    (st, v["message"].as_str().unwrap_or_default().to_string())
}

#[test]
fn bridge_name_option_never_adopts_a_host_interface() {
    let mut d = Daemon::start();
    sh_ok(
        &d,
        "ip link add hostveth0 type veth peer name hostveth1 && ip link set hostveth0 up && \
         ip link add hostbr0 type bridge && ip link set hostbr0 up",
    );
    let before_nets = networks(&d);
    for name in ["lo", "hostveth0", "hostbr0"] {
        let (st, msg) = create(
            &d,
            json!({"Name": format!("adopt-{name}"), "Options": {"com.docker.network.bridge.name": name}}),
        );
        assert_eq!(st, 409, "{name}: {msg}");
        assert!(
            msg.contains(&format!("interface {name} already exists"))
                && msg.contains("not created by tether"),
            "{msg}"
        );
        let l = link(&d, name).unwrap_or_else(|| panic!("{name} was deleted"));
        assert!(is_up(&l), "{name} was set down: {l}");
        assert!(
            !nft_sets(&d).contains(name),
            "{name} went into the firewall"
        );
    }
    let o = d.fails(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=lo",
        "adopt-cli",
    ]);
    assert!(o.stderr.contains("interface lo already exists"), "{o}");
    assert_eq!(networks(&d), before_nets, "a refused create left a network");
    assert!(is_up(&link(&d, "lo").expect("lo")), "lo was set down");

    // a name of tether's own choosing is made, and taken away again
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=tcustom0",
        "custom",
    ]);
    let l = link(&d, "tcustom0").expect("tcustom0 made");
    assert_eq!(l["linkinfo"]["info_kind"], "bridge", "{l}");
    d.ok(&["network", "rm", "custom"]);
    wait_until("tcustom0 deleted", Duration::from_secs(10), || {
        link(&d, "tcustom0").is_none()
    });
    // a name with dots is one interface name, not a sysctl path: its per-interface
    // settings land on it (/proc/sys/net/ipv4/conf/10.9.0.1/...)
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "-o",
        "com.docker.network.bridge.name=10.9.0.1",
        "dotted",
    ]);
    for (family, knob, want) in [
        ("ipv4", "route_localnet", "1"),
        ("ipv6", "disable_ipv6", "0"),
    ] {
        let got = d.ns(&[
            "cat",
            &format!("/proc/sys/net/{family}/conf/10.9.0.1/{knob}"),
        ]);
        assert_eq!(
            got.stdout.trim(),
            want,
            "{family} {knob} on 10.9.0.1: {got}"
        );
    }
    d.ok(&["network", "rm", "dotted"]);
    for name in [".", ".."] {
        let (st, msg) = create(
            &d,
            json!({"Name": "dots", "Options": {"com.docker.network.bridge.name": name}}),
        );
        assert_eq!(st, 400, "{name:?}: {msg}");
        assert!(msg.contains("invalid bridge name"), "{msg}");
    }

    // a network whose bridge was replaced by a host interface while the daemon was down:
    // the daemon neither adopts it at restore nor touches it at `network rm` or shutdown
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=tswap0",
        "swapped",
    ]);
    d.stop_daemon();
    wait_until(
        "tswap0 removed at shutdown",
        Duration::from_secs(10),
        || link(&d, "tswap0").is_none(),
    );
    sh_ok(
        &d,
        "ip link add tswap0 type veth peer name tswap1 && ip link set tswap0 up",
    );
    d.start_daemon();
    d.ok(&["network", "rm", "swapped"]);
    let l = link(&d, "tswap0").expect("host's tswap0 deleted by network rm");
    assert!(is_up(&l), "host's tswap0 set down by network rm: {l}");
    d.stop_daemon();
    let l = link(&d, "tswap0").expect("host's tswap0 deleted at shutdown");
    assert!(is_up(&l), "host's tswap0 set down at shutdown: {l}");
    for name in ["hostveth0", "hostbr0"] {
        assert!(is_up(&link(&d, name).expect(name)), "{name} touched");
    }
    d.start_daemon();
    delete_links(&d, &["hostveth0", "hostbr0", "tswap0"]);
}

#[test]
fn reserved_and_host_subnets_and_bad_options_are_refused_leaving_nothing() {
    let d = Daemon::start();
    sh_ok(
        &d,
        "ip link add hostnet0 type veth peer name hostnet1 && ip addr add 10.123.0.5/24 dev hostnet0 && ip link set hostnet0 up",
    );
    let (nets, links, sets) = (networks(&d), d.links(), nft_sets(&d));
    let v4 = |s: &str| json!({"Name": "bad", "IPAM": {"Config": [{"Subnet": s}]}});
    let v6 = |s: &str| json!({"Name": "bad", "EnableIPv6": true, "IPAM": {"Config": [{"Subnet": "172.30.0.0/16"}, {"Subnet": s}]}});
    let opt = |k: &str, v: &str| json!({"Name": "bad", "Options": {k: v}});
    let mtu = "com.docker.network.driver.mtu";
    let icc = "com.docker.network.bridge.enable_icc";
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (v4("127.0.0.0/8"), vec!["127.0.0.0/8", "loopback"]),
        (v4("127.99.0.0/16"), vec!["127.99.0.0/16", "loopback"]),
        (v4("0.0.0.0/8"), vec!["0.0.0.0/8", "this network"]),
        (v4("224.0.0.0/4"), vec!["224.0.0.0/4", "multicast"]),
        (v4("239.1.0.0/16"), vec!["239.1.0.0/16", "multicast"]),
        (v4("169.254.0.0/16"), vec!["169.254.0.0/16", "link-local"]),
        (v4("240.0.0.0/8"), vec!["240.0.0.0/8", "reserved"]),
        (
            v4("10.123.0.0/16"),
            vec!["10.123.0.0/16", "10.123.0.5", "hostnet0"],
        ),
        (v6("::1/128"), vec!["::1/128", "loopback"]),
        (v6("fe80::/64"), vec!["fe80::/64", "link-local"]),
        (v6("ff00::/8"), vec!["ff00::/8", "multicast"]),
        (opt(mtu, "67"), vec!["\"67\"", mtu, "68 to 65535"]),
        (opt(mtu, "65536"), vec!["\"65536\"", "68 to 65535"]),
        (opt(mtu, "abc"), vec!["\"abc\"", "68 to 65535"]),
        (opt(icc, "maybe"), vec!["\"maybe\"", icc, "true or false"]),
    ];
    for (body, want) in cases {
        let (st, msg) = create(&d, body.clone());
        assert_eq!(st, 400, "{body}: {msg}");
        for w in want {
            assert!(msg.contains(w), "{body}: {msg:?} should name {w:?}");
        }
    }
    let o = d.fails(&["network", "create", "--subnet", "127.0.0.0/8", "bad"]);
    assert!(o.stderr.contains("127.0.0.0/8"), "{o}");
    assert_eq!(networks(&d), nets, "a refused create left a network");
    assert_eq!(d.links(), links, "a refused create left a link");
    assert_eq!(
        nft_sets(&d),
        sets,
        "a refused create left firewall elements"
    );

    // a picked subnet avoids the host's addresses too (172.18.0.0/16 is the first default)
    sh_ok(&d, "ip addr add 172.18.0.5/16 dev hostnet0");
    d.ok(&["network", "create", "auto"]);
    let subnet = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "auto",
    ]);
    assert_eq!(subnet, "172.19.0.0/16");
    delete_links(&d, &["hostnet0"]);
}

#[test]
fn mtu_is_applied_to_the_bridge_and_every_veth() {
    let d = Daemon::start();
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        "com.docker.network.bridge.name=tmtu0",
        "small",
    ]);
    d.ok(&["network", "create", "plain"]);
    d.run_d(&["--name", "m1", "--network", "small", IMAGE, "sleep", "300"]);
    d.ok(&["network", "connect", "plain", "m1"]);
    assert_eq!(link(&d, "tmtu0").expect("bridge")["mtu"], 1400);
    assert_eq!(d.sh("m1", "cat /sys/class/net/eth0/mtu").out(), "1400");
    assert_eq!(d.sh("m1", "cat /sys/class/net/eth1/mtu").out(), "1500");
    let o = d.ns(&["ip", "-j", "link", "show", "master", "tmtu0"]);
    let ports: Value = serde_json::from_str(&o.stdout).expect("ip -j");
    let ports = ports.as_array().cloned().unwrap_or_default();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(
        ports[0]["mtu"], 1400,
        "host side of the veth: {:?}",
        ports[0]
    );
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{index .Options \"com.docker.network.driver.mtu\"}}",
            "small"
        ]),
        "1400"
    );
}

/// Listens on `addr` inside the daemon's namespace (the "host"); the kernel answers SYNs
/// for the listener without an accept.
fn host_listener(d: &Daemon, addr: &str) -> TcpListener {
    let addr = addr.to_string();
    in_netns(&d.netns(), move || {
        TcpListener::bind(&addr).unwrap_or_else(|e| panic!("listen on {addr}: {e}"))
    })
}

#[test]
fn containers_cannot_reach_services_on_the_hosts_loopback() {
    let d = Daemon::start();
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=tsafe0",
        "safe",
    ]);
    d.run_d(&["--name", "c1", "--network", "safe", IMAGE, "sleep", "300"]);
    let _lo = host_listener(&d, "127.0.0.1:7001");
    let _any = host_listener(&d, "0.0.0.0:7002");
    let c = d.inspect("c1");
    let ep = &c["NetworkSettings"]["Networks"]["safe"];
    let ip = |k: &str| ep[k].as_str().expect(k).parse::<Ipv4Addr>().expect(k);
    let ns = PathBuf::from(format!("/proc/{}/ns/net", c["State"]["Pid"]));
    let syn = |dst_ip: Ipv4Addr, dport: u16| Syn {
        ifname: "eth0".into(),
        src_mac: parse_mac(ep["MacAddress"].as_str().expect("MacAddress")),
        dst_mac: mac_of(&link(&d, "tsafe0").expect("bridge")),
        src_ip: ip("IPAddress"),
        dst_ip,
        dport,
    };
    // control: the same frame to the gateway's address reaches the host's listener
    assert!(
        syn(ip("Gateway"), 7002).answered(&ns, PROBE),
        "control probe to the gateway got no SYN-ACK: the probe does not work"
    );
    for port in [7001, 7002] {
        assert!(
            !syn(Ipv4Addr::LOCALHOST, port).answered(&ns, PROBE),
            "a container reached the host's 127.0.0.1:{port}"
        );
    }
    // the sandbox goes with the container; the kernel deletes its veth asynchronously
    d.ok(&["rm", "-f", "c1"]);
    let want: BTreeSet<String> = ["lo", "tether0", "tsafe0"].map(String::from).into();
    assert_eq!(d.links_settled(&want), want);
}

#[test]
fn ports_published_on_loopback_are_reachable_from_the_host_only() {
    let d = Daemon::start();
    let out = Outside::start(&d);
    d.ok(&["network", "create", "pub"]);
    d.run_d(&[
        "--name",
        "web",
        "--network",
        "pub",
        "-p",
        "127.0.0.1:8080:80",
        "-p",
        "8081:80",
        IMAGE,
        "sh",
        "-c",
        "exec nc -ll -p 80 -e echo hello-web",
    ]);
    // the host itself reaches the port published on 127.0.0.1
    wait_until(
        "web answers on 127.0.0.1:8080",
        Duration::from_secs(30),
        || {
            d.tcp_exchange(8080, "", Duration::from_secs(2))
                .map(|s| s.contains("hello-web"))
                .unwrap_or(false)
        },
    );
    let o = out.sh("ip -j link show dev vin0");
    let vin: Value = serde_json::from_str(&o.stdout).expect("ip -j");
    let syn = |dst_ip: Ipv4Addr, dport: u16| Syn {
        ifname: outside::OUTSIDE_IF.into(),
        src_mac: mac_of(&vin[0]),
        dst_mac: mac_of(&link(&d, outside::HOST_IF).expect("vout0")),
        src_ip: outside::OUTSIDE.parse().expect("ip"),
        dst_ip,
        dport,
    };
    // control: the port published on every address answers the neighbour
    assert!(
        syn(outside::HOST_SIDE.parse().expect("ip"), 8081).answered(&out.netns(), PROBE),
        "control probe to the port published on all addresses got no SYN-ACK"
    );
    assert!(
        !syn(Ipv4Addr::LOCALHOST, 8080).answered(&out.netns(), PROBE),
        "a neighbour reached the port published on 127.0.0.1"
    );
    assert!(
        !syn(Ipv4Addr::LOCALHOST, 8081).answered(&out.netns(), PROBE),
        "a neighbour reached 127.0.0.1:8081 on the host"
    );
}
