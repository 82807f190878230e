//! Failures injected at each step of `network connect`, `network disconnect` and
//! `network rm` (issue 12): a daemon started with `TETHER_FAILPOINTS` (see
//! `tether_net::faults`) fails the named firewall or driver call once, and afterwards the
//! API has answered an error naming it, the records (inspect) and the kernel (links of the
//! daemon's namespace and of the container, nftables elements, DNS, IP leases) agree, and
//! the same operation works again.

mod common;

use std::collections::BTreeSet;

use common::{Daemon, IMAGE};
use serde_json::{json, Value};

const FAILPOINTS: &str = "TETHER_FAILPOINTS";

/// Restarts the daemon with `failpoints` (empty: none).
fn restart_with(d: &mut Daemon, failpoints: &str) {
    d.set_env(FAILPOINTS, failpoints);
    d.restart();
}

/// The networks the container's record lists.
fn networks_of(d: &Daemon, name: &str) -> Vec<String> {
    d.inspect(name)["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The names of the containers network `net`'s inspect lists.
fn members(d: &Daemon, net: &str) -> Vec<String> {
    let (st, v) = d.api("GET", &format!("/networks/{net}"), None);
    assert_eq!(st, 200, "{v}");
    let mut out: Vec<String> = v["Containers"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|c| c["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The interfaces inside container `name`.
fn ifaces_in(d: &Daemon, name: &str) -> String {
    d.sh(name, "ls /sys/class/net").stdout
}

/// The elements of set `set` of table `family tether`, as JSON text, sorted.
fn set_elems(d: &Daemon, family: &str, set: &str) -> Vec<String> {
    elems(d, "set", family, set)
}

/// The networks' entries in the `inet tether` table: the elements of its `bridges` and
/// `nat_subnets` sets, as one text.
fn bridge_entries(d: &Daemon) -> String {
    format!(
        "{} {}",
        set_elems(d, "inet", "bridges").join(" "),
        set_elems(d, "inet", "nat_subnets").join(" ")
    )
}

/// Failpoints that hold the bridge driver's next call of `method` for 3 s (the
/// failpoints' `SLOW`) and then, when `fails`, fail it.
fn held_bridge(method: &str, fails: bool) -> String {
    let slow = format!("slow.driver.bridge.{method}:1");
    if fails {
        format!("{slow},driver.bridge.{method}:1")
    } else {
        slow
    }
}

/// The elements of set or map (`kind`) `name` of table `family tether`, as JSON text,
/// sorted.
fn elems(d: &Daemon, kind: &str, family: &str, name: &str) -> Vec<String> {
    let o = d.ns(&["nft", "-j", "list", kind, family, "tether", name]);
    assert!(o.success(), "nft list {kind} {family} tether {name}: {o}");
    let v: Value = serde_json::from_str(&o.stdout).unwrap_or(Value::Null);
    let mut out: Vec<String> = v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x[kind]["elem"].as_array())
        .flatten()
        .map(|e| e.to_string())
        .collect();
    out.sort();
    out
}

/// POST /networks/{net}/connect for `container` with IPv4 address `ip`.
fn connect(d: &Daemon, net: &str, container: &str, ip: &str) -> (u16, Value) {
    d.api(
        "POST",
        &format!("/networks/{net}/connect"),
        Some(&json!({
            "Container": container,
            "EndpointConfig": {"IPAMConfig": {"IPv4Address": ip}}
        })),
    )
}

/// POST /networks/{net}/disconnect of `container`.
fn disconnect(d: &Daemon, net: &str, container: &str) -> (u16, Value) {
    d.api(
        "POST",
        &format!("/networks/{net}/disconnect"),
        Some(&json!({"Container": container})),
    )
}

/// Asserts an error answer: status `status`, a message naming `failpoint`.
fn assert_failed(r: &(u16, Value), status: u16, failpoint: &str) {
    assert_eq!(r.0, status, "{}", r.1);
    let msg = r.1["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(failpoint),
        "the error does not name {failpoint}: {msg}"
    );
}

/// Whether `peer`'s DNS answers `name` with an address of 10.77.2.0/24.
fn resolves_on_back(d: &Daemon, peer: &str, name: &str) -> bool {
    let out = d
        .sh(peer, &format!("nslookup {name} 127.0.0.11 2>&1"))
        .stdout;
    common::nslookup_addrs(&out)
        .iter()
        .any(|a| a.starts_with("10.77.2."))
}

/// Runs the tether CLI with `args` against `d` on a thread of its own (an operation a
/// `slow.` failpoint holds); its output comes back through the handle.
fn cli_in_thread(d: &Daemon, args: &[&str]) -> std::thread::JoinHandle<std::process::Output> {
    let host = d.host.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    std::thread::spawn(move || {
        std::process::Command::new(common::TETHER)
            .args(["-H", &host])
            .args(&args)
            .output()
            .expect("run tether")
    })
}

/// Reloads the firewall while `op` is still held in its driver step, then waits for `op`.
fn reload_during(
    d: &Daemon,
    op: std::thread::JoinHandle<std::process::Output>,
) -> std::process::Output {
    let (st, v) = d.api("POST", "/tether/v1/firewall/reload", None);
    assert!(st < 300, "reload: {st} {v}");
    assert!(
        !op.is_finished(),
        "the operation finished before the requests made while it was held (lock held?)"
    );
    op.join().expect("CLI thread")
}

/// A daemon with `front` (app) and `back` (peer), `back`'s options `opts`.
fn two_networks(opts: &[&str]) -> Daemon {
    let d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.77.1.0/24", "front"]);
    let mut args = vec!["network", "create", "--subnet", "10.77.2.0/24"];
    args.extend_from_slice(opts);
    args.push("back");
    d.ok(&args);
    d.run_d(&["--network", "front", "--name", "app", IMAGE, "sleep", "300"]);
    d.run_d(&["--network", "back", "--name", "peer", IMAGE, "sleep", "300"]);
    d
}

const NO_ICC: &[&str] = &["-o", "com.docker.network.bridge.enable_icc=false"];

/// `network connect` failing at `failpoint` (once) leaves nothing of the endpoint, and the
/// same connect with the same address works next.
fn connect_fails_at(failpoint: &str, opts: &[&str]) {
    let mut d = two_networks(opts);
    let links = d.links();
    let isolated = set_elems(&d, "bridge", "no_icc_ports");
    restart_with(&mut d, &format!("{failpoint}:1"));
    assert!(
        std::fs::read_to_string(d.log_path())
            .unwrap_or_default()
            .contains("TETHER_FAILPOINTS is set"),
        "no warning about the failpoints in the log"
    );

    let r = connect(&d, "back", "app", "10.77.2.9");
    assert_failed(&r, 500, failpoint);
    assert_eq!(networks_of(&d, "app"), vec!["front".to_string()]);
    assert_eq!(members(&d, "back"), vec!["peer".to_string()]);
    assert_eq!(
        d.links_settled(&links),
        links,
        "a veth of the failed connect is left"
    );
    let ifs = ifaces_in(&d, "app");
    assert!(
        !ifs.contains("eth1"),
        "the sandbox kept the interface: {ifs}"
    );
    assert_eq!(set_elems(&d, "bridge", "no_icc_ports"), isolated);
    assert!(
        !resolves_on_back(&d, "peer", "app"),
        "back's DNS answers for app"
    );

    // the failpoint is spent: the same connect, with the same address, works (its lease
    // was given back)
    let r = connect(&d, "back", "app", "10.77.2.9");
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(d.ip_of("app", "back"), "10.77.2.9");
    assert!(ifaces_in(&d, "app").contains("eth1"));
    assert!(resolves_on_back(&d, "peer", "app"));
    restart_with(&mut d, "");
    assert_eq!(d.ip_of("app", "back"), "10.77.2.9");
}

#[test]
fn connect_fails_at_the_bridge_join() {
    connect_fails_at("driver.bridge.join", &[]);
}

#[test]
fn connect_fails_at_the_port_isolation() {
    connect_fails_at("firewall.isolate_port.on", NO_ICC);
}

/// `network disconnect` failing at `failpoint` (once): the API says so, the endpoint is
/// gone from the record and from the kernel, its lease is free, and connecting again works.
fn disconnect_fails_at(failpoint: &str, opts: &[&str]) {
    let mut d = two_networks(opts);
    let links = d.links();
    let isolated = set_elems(&d, "bridge", "no_icc_ports");
    d.ok(&["network", "connect", "--ip", "10.77.2.9", "back", "app"]);
    restart_with(&mut d, &format!("{failpoint}:1"));

    let r = disconnect(&d, "back", "app");
    assert_failed(&r, 500, failpoint);
    let msg = r.1["message"].as_str().unwrap_or_default();
    assert!(msg.contains("was disconnected from network back"), "{msg}");
    assert_eq!(networks_of(&d, "app"), vec!["front".to_string()]);
    assert_eq!(members(&d, "back"), vec!["peer".to_string()]);
    assert_eq!(
        d.links_settled(&links),
        links,
        "the endpoint's veth is left"
    );
    let ifs = ifaces_in(&d, "app");
    assert!(
        !ifs.contains("eth1"),
        "the sandbox kept the interface: {ifs}"
    );
    assert_eq!(
        set_elems(&d, "bridge", "no_icc_ports"),
        isolated,
        "the endpoint's port is left in the isolation set"
    );
    assert!(
        !resolves_on_back(&d, "peer", "app"),
        "back's DNS answers for app"
    );

    // its address is free: connecting again takes it
    let r = connect(&d, "back", "app", "10.77.2.9");
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(d.ip_of("app", "back"), "10.77.2.9");
    restart_with(&mut d, "");
    d.ok(&["network", "disconnect", "back", "app"]);
    assert_eq!(networks_of(&d, "app"), vec!["front".to_string()]);
}

#[test]
fn disconnect_fails_at_the_bridge_leave() {
    disconnect_fails_at("driver.bridge.leave", &[]);
}

#[test]
fn disconnect_fails_at_the_port_isolation() {
    disconnect_fails_at("firewall.isolate_port.off", NO_ICC);
}

/// The name of network `net`'s bridge, as the daemon's namespace shows it.
fn bridge_of(d: &Daemon, before: &BTreeSet<String>) -> String {
    let now = d.links();
    let new: Vec<&String> = now.difference(before).collect();
    assert_eq!(new.len(), 1, "one new link expected: {new:?}");
    new[0].clone()
}

/// `network rm` failing at `failpoint` (once): the record and the bridge and its firewall
/// elements stay or go together, and `rm` retried removes all of them.
fn network_rm_fails_at(failpoint: &str, answered: u16) {
    let mut d = Daemon::start();
    let before = d.links();
    d.ok(&["network", "create", "--subnet", "10.77.3.0/24", "gone"]);
    let br = bridge_of(&d, &before);
    restart_with(&mut d, &format!("{failpoint}:1"));

    let (st, v) = d.api("DELETE", "/networks/gone", None);
    let (inspected, _) = d.api("GET", "/networks/gone", None);
    let links = if inspected == 200 {
        d.links()
    } else {
        d.links_settled(&before)
    };
    let bridges = set_elems(&d, "inet", "bridges").join(" ");
    let subnets = set_elems(&d, "inet", "nat_subnets").join(" ");
    if answered == 204 {
        assert_eq!(st, 204, "{v}");
    } else {
        assert_failed(&(st, v), answered, failpoint);
    }
    if inspected == 200 {
        // kept: the bridge and its elements are all there
        assert!(
            links.contains(&br),
            "record kept, bridge {br} gone: {links:?}"
        );
        assert!(
            bridges.contains(&br),
            "record kept, {br} not in @bridges: {bridges}"
        );
        assert!(subnets.contains("10.77.3.0"), "{subnets}");
    } else {
        assert_eq!(inspected, 404);
        assert!(
            !links.contains(&br),
            "record gone, bridge {br} left: {links:?}"
        );
        assert!(
            !bridges.contains(&br),
            "record gone, {br} left in @bridges: {bridges}"
        );
        assert!(!subnets.contains("10.77.3.0"), "{subnets}");
    }

    // retried, the rm completes (or finds the network gone)
    let (st, v) = d.api("DELETE", "/networks/gone", None);
    assert!(st == 204 || (inspected == 404 && st == 404), "{st} {v}");
    assert_eq!(d.links_settled(&before), before);
    assert!(!set_elems(&d, "inet", "bridges").join(" ").contains(&br));
    // and the subnet can be used again
    d.ok(&["network", "create", "--subnet", "10.77.3.0/24", "again"]);
    restart_with(&mut d, "");
}

#[test]
fn network_rm_fails_at_the_driver() {
    network_rm_fails_at("driver.bridge.delete_network", 500);
}

#[test]
fn network_rm_fails_at_the_firewall() {
    network_rm_fails_at("firewall.remove_network", 500);
}

/// A start whose network join fails leaves no endpoint, and the next start works.
#[test]
fn start_fails_at_the_bridge_join() {
    let mut d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.77.2.0/24", "back"]);
    let links = d.links();
    create_on_back(&d, "app", &[]);
    restart_with(&mut d, "driver.bridge.join:1");
    let (st, v) = d.api("POST", "/containers/app/start", None);
    assert_failed(&(st, v), 500, "driver.bridge.join");
    assert_eq!(d.inspect("app")["State"]["Running"], json!(false));
    assert_eq!(
        d.links_settled(&links),
        links,
        "a veth of the failed start is left"
    );
    d.ok(&["start", "app"]);
    assert_eq!(d.ip_of("app", "back"), "10.77.2.9");
    restart_with(&mut d, "");
}

/// A start whose port publishing fails leaves no endpoint and no port element, and the
/// next start gets the same address and publishes.
#[test]
fn start_fails_at_publishing() {
    let mut d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.77.2.0/24", "back"]);
    let links = d.links();
    create_on_back(&d, "app", &["-p", "8080:80"]);
    restart_with(&mut d, "firewall.add_ports:1");
    let (st, v) = d.api("POST", "/containers/app/start", None);
    assert_failed(&(st, v), 500, "firewall.add_ports");
    assert_eq!(d.inspect("app")["State"]["Running"], json!(false));
    assert_eq!(
        d.links_settled(&links),
        links,
        "a veth of the failed start is left"
    );
    assert_eq!(elems(&d, "map", "inet", "pub4"), Vec::<String>::new());
    d.ok(&["start", "app"]);
    assert_eq!(d.ip_of("app", "back"), "10.77.2.9");
    assert_eq!(d.nft_tcp_ports(), vec![8080]);
    restart_with(&mut d, "");
}

/// A disconnect of the network the published ports point at, whose withdrawal of the
/// ports fails: the ports end up pointing at the remaining network only.
#[test]
fn disconnect_fails_at_withdrawing_the_ports() {
    let mut d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.77.1.0/24", "front"]);
    d.ok(&["network", "create", "--subnet", "10.77.2.0/24", "back"]);
    d.run_d(&[
        "--network",
        "front",
        "-p",
        "8080:80",
        "--name",
        "app",
        IMAGE,
        "sleep",
        "300",
    ]);
    d.ok(&["network", "connect", "back", "app"]);
    let pub4 = elems(&d, "map", "inet", "pub4").join(" ");
    assert!(pub4.contains("10.77.1."), "{pub4}");
    // without a failure, the ports move with a disconnect of their network
    restart_with(&mut d, "");
    let r = disconnect(&d, "front", "app");
    assert_eq!(r.0, 200, "{}", r.1);
    d.ok(&["network", "connect", "front", "app"]);
    let r = disconnect(&d, "back", "app");
    assert_eq!(r.0, 200, "{}", r.1);
    let pub4 = elems(&d, "map", "inet", "pub4").join(" ");
    assert!(pub4.contains("10.77.1."), "{pub4}");
    d.ok(&["network", "connect", "back", "app"]);
    restart_with(&mut d, "firewall.remove_ports:1");

    let r = disconnect(&d, "front", "app");
    assert_failed(&r, 500, "firewall.remove_ports");
    assert_eq!(networks_of(&d, "app"), vec!["back".to_string()]);
    let pub4 = elems(&d, "map", "inet", "pub4").join(" ");
    assert!(
        !pub4.contains("10.77.1.") && pub4.contains("10.77.2."),
        "the ports do not point at back only: {pub4} (answer: {})",
        r.1
    );
    assert_eq!(d.nft_tcp_ports(), vec![8080]);
    restart_with(&mut d, "");
    d.ok(&["network", "connect", "front", "app"]);
    assert!(d.ip_of("app", "front").starts_with("10.77.1."));
}

/// A `network create` whose firewall step fails (after the bridge was made) leaves no
/// record, bridge or firewall element, and the same create works next.
#[test]
fn network_create_fails_at_the_firewall() {
    let mut d = Daemon::start();
    let links = d.links();
    let bridges = set_elems(&d, "inet", "bridges");
    restart_with(&mut d, "firewall.add_network:1");
    let (st, v) = d.api(
        "POST",
        "/networks/create",
        Some(&json!({"Name": "new", "IPAM": {"Config": [{"Subnet": "10.77.4.0/24"}]}})),
    );
    assert_failed(&(st, v), 500, "firewall.add_network");
    assert_eq!(d.api("GET", "/networks/new", None).0, 404);
    assert_eq!(
        d.links_settled(&links),
        links,
        "the failed create left its bridge"
    );
    assert_eq!(set_elems(&d, "inet", "bridges"), bridges);
    assert!(!set_elems(&d, "inet", "nat_subnets")
        .join(" ")
        .contains("10.77.4.0"));
    d.ok(&["network", "create", "--subnet", "10.77.4.0/24", "new"]);
    d.run_d(&["--network", "new", "--name", "app", IMAGE, "sleep", "300"]);
    assert!(d.ip_of("app", "new").starts_with("10.77.4."));
    restart_with(&mut d, "");
}

/// A `network connect` to a local network joins its endpoint with the engine's lock
/// released: while the driver's join is held (`slow.driver.bridge.join`, 3 s), other
/// requests are answered, `network rm` of the network is refused naming the container
/// being connected, and a firewall reload keeps its bridge port's isolation; the connect
/// then completes with its address, and the records agree with the kernel.
#[test]
fn a_connect_holds_no_engine_lock_while_its_endpoint_is_joined() {
    let mut d = two_networks(NO_ICC);
    restart_with(&mut d, "slow.driver.bridge.join:1");
    let connect = cli_in_thread(
        &d,
        &["network", "connect", "--ip", "10.77.2.9", "back", "app"],
    );
    // the connect is in its driver's join once back's rm is refused for app too (peer
    // holds it all along); meanwhile the engine answers
    common::answers_while_held(&d, "back", "app", "10.77.3.0/24");
    assert_eq!(members(&d, "back"), vec!["peer".to_string()]);
    let out = reload_during(&d, connect);
    assert!(out.status.success(), "connect: {out:?}");
    assert_eq!(d.ip_of("app", "back"), "10.77.2.9");
    assert!(ifaces_in(&d, "app").contains("eth1"));
    assert!(resolves_on_back(&d, "peer", "app"));
    let veth = d.inspect("app")["NetworkSettings"]["Networks"]["back"]["EndpointID"].clone();
    assert!(veth.is_string(), "no endpoint recorded: {veth}");
    assert_eq!(
        set_elems(&d, "bridge", "no_icc_ports").len(),
        2,
        "back's two bridge ports are isolated"
    );
    d.ok(&["network", "disconnect", "back", "app"]);
    let r = d.api("DELETE", "/networks/back", None);
    assert_eq!(r.0, 409, "peer still holds back: {}", r.1);
    restart_with(&mut d, "");
}

/// Creates (does not start) container `name` on network `back` at 10.77.2.9, with the
/// `create` flags `extra` too.
fn create_on_back(d: &Daemon, name: &str, extra: &[&str]) {
    let mut args = vec!["create", "--network", "back", "--ip", "10.77.2.9"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--name", name, IMAGE, "sleep", "300"]);
    d.ok(&args);
}

/// [`two_networks`] (`back` without icc) and a created container `late` on `back`
/// (10.77.2.9) and `front`.
fn with_late() -> Daemon {
    let d = two_networks(NO_ICC);
    create_on_back(&d, "late", &[]);
    d.ok(&["network", "connect", "front", "late"]);
    d
}

/// A start makes its endpoints on local networks without the engine's lock: while its
/// first join is held, the network cannot be removed (naming the container), other
/// requests are answered and a firewall reload keeps the new port's isolation; the start
/// then completes on both networks.
#[test]
fn a_start_holds_no_engine_lock_while_its_endpoints_are_joined() {
    let mut d = with_late();
    restart_with(&mut d, "slow.driver.bridge.join:1");
    let start = cli_in_thread(&d, &["start", "late"]);
    common::answers_while_held(&d, "back", "late", "10.77.3.0/24");
    assert_eq!(members(&d, "back"), vec!["peer".to_string()]);
    let out = reload_during(&d, start);
    assert!(out.status.success(), "start: {out:?}");
    assert_eq!(d.ip_of("late", "back"), "10.77.2.9");
    let ifs = ifaces_in(&d, "late");
    assert!(ifs.contains("eth0") && ifs.contains("eth1"), "{ifs}");
    assert!(resolves_on_back(&d, "peer", "late"));
    assert_eq!(
        set_elems(&d, "bridge", "no_icc_ports").len(),
        2,
        "back's two bridge ports are isolated"
    );
    restart_with(&mut d, "");
}

/// A start whose second endpoint's join fails gives up the first one too: no veth, no
/// isolation element and no lease is left, and the next start gets the same address.
#[test]
fn a_start_whose_second_join_fails_leaves_nothing_of_the_first() {
    let mut d = with_late();
    let links = d.links();
    let isolated = set_elems(&d, "bridge", "no_icc_ports");
    restart_with(&mut d, "driver.bridge.join@front:1");
    let (st, v) = d.api("POST", "/containers/late/start", None);
    assert_failed(&(st, v), 500, "driver.bridge.join@front");
    assert_eq!(d.inspect("late")["State"]["Running"], json!(false));
    assert_eq!(members(&d, "back"), vec!["peer".to_string()]);
    assert_eq!(
        d.links_settled(&links),
        links,
        "a veth of the failed start is left"
    );
    assert_eq!(set_elems(&d, "bridge", "no_icc_ports"), isolated);
    d.ok(&["start", "late"]);
    assert_eq!(d.ip_of("late", "back"), "10.77.2.9");
    assert!(resolves_on_back(&d, "peer", "late"));
    restart_with(&mut d, "");
}

/// A `network rm` of a local network takes its firewall entries and bridge away with the
/// engine's lock released: while the driver's delete is held
/// (`slow.driver.bridge.delete_network`, 3 s), a second rm is refused as under way, no
/// container can be started on the network, other requests are answered, and a firewall
/// reload leaves the network's entries out; the rm then completes and nothing of the
/// network is left (record, bridge, set elements). A failing delete meanwhile keeps the
/// network with its entries, even across a reload.
#[test]
fn a_network_rm_holds_no_engine_lock_while_its_bridge_goes() {
    let mut d = Daemon::start();
    let before = d.links();
    let create = |d: &Daemon| {
        d.ok(&[
            "network",
            "create",
            "--subnet",
            "10.77.8.0/24",
            "-o",
            "com.docker.network.bridge.name=tgone0",
            "gone",
        ])
    };
    create(&d);
    d.ok(&[
        "create",
        "--network",
        "gone",
        "--name",
        "late",
        IMAGE,
        "sleep",
        "300",
    ]);
    for fails in [true, false] {
        restart_with(&mut d, &held_bridge("delete_network", fails));
        let rm = cli_in_thread(&d, &["network", "rm", "gone"]);
        // the rm is in its driver's step (held 3 s) a moment after it was sent
        std::thread::sleep(std::time::Duration::from_millis(800));
        let (st, v) = d.api("DELETE", "/networks/gone", None);
        assert!(
            st == 409 && v.to_string().contains("being removed"),
            "a second rm while the first is held: {st} {v}"
        );
        let (st, v) = d.api("POST", "/containers/late/start", None);
        assert!(
            st == 409 && v.to_string().contains("being removed"),
            "a start on the network while its rm is held: {st} {v}"
        );
        d.ok(&["network", "create", "--subnet", "10.77.3.0/24", "meanwhile"]);
        d.ok(&["ps", "-q"]);
        let out = reload_during(&d, rm);
        d.ok(&["network", "rm", "meanwhile"]);
        let now = bridge_entries(&d);
        if fails {
            assert!(!out.status.success(), "the failpoint did not fail the rm");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("the network is kept"),
                "{out:?}"
            );
            assert!(
                now.contains("tgone0") && now.contains("10.77.8.0"),
                "the kept network's entries are missing: {now}"
            );
            assert!(
                d.links().contains("tgone0"),
                "the kept network's bridge is gone"
            );
            d.ok(&["network", "inspect", "gone"]);
        } else {
            assert!(out.status.success(), "{out:?}");
            assert!(
                !now.contains("tgone0") && !now.contains("10.77.8.0"),
                "the removed network's entries were left: {now}"
            );
            let (st, _) = d.api("GET", "/networks/gone", None);
            assert_eq!(st, 404, "the removed network's record is left");
        }
    }
    d.ok(&["rm", "late"]);
    assert_eq!(
        d.links_settled(&before),
        before,
        "the removed network's bridge is left"
    );
    restart_with(&mut d, "");
    // the same name and subnet are free again
    create(&d);
    d.ok(&["network", "rm", "gone"]);
}

/// A firewall reload while a `network create` makes its bridge (without the engine's lock)
/// leaves nothing of it when the create then fails, and the entries of one that succeeds
/// are all there: the create rebuilds the firewall's contents again when a rebuild
/// happened meanwhile.
#[test]
fn a_firewall_reload_during_a_network_create_leaves_no_entries_of_a_failed_one() {
    let mut d = Daemon::start();
    let before = d.links();
    for fails in [true, false] {
        restart_with(&mut d, &held_bridge("create_network", fails));
        let create = cli_in_thread(
            &d,
            &[
                "network",
                "create",
                "--subnet",
                "10.77.9.0/24",
                "-o",
                "com.docker.network.bridge.name=tslow0",
                "slow",
            ],
        );
        // the create is in its driver's step (held 3 s) a moment after it was sent
        std::thread::sleep(std::time::Duration::from_millis(800));
        let out = reload_during(&d, create);
        if fails {
            assert!(
                !out.status.success(),
                "the failpoint did not fail the create"
            );
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("driver.bridge.create_network"),
                "{out:?}"
            );
            let left = bridge_entries(&d);
            assert!(
                !left.contains("tslow0") && !left.contains("10.77.9.0"),
                "the failed create's entries were left: {left}"
            );
            assert_eq!(d.links_settled(&before), before);
        } else {
            assert!(out.status.success(), "{out:?}");
            let now = bridge_entries(&d);
            assert!(
                now.contains("tslow0") && now.contains("10.77.9.0"),
                "the created network's entries are missing: {now}"
            );
            d.ok(&["network", "rm", "slow"]);
        }
    }
    restart_with(&mut d, "");
}
