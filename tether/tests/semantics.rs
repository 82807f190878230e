//! Docker's networking semantics of `run` and `network` options: `--link`, `--add-host`,
//! `--dns*`, `--network container:/none/host`, static `--ip`, `network connect`/`disconnect`
//! of stopped containers, `network ls --filter` and the fields of `network inspect`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{nslookup_addrs, wait_until, Daemon, IMAGE, UPSTREAM_IP, UPSTREAM_NAME};
use serde_json::Value;

/// Generous bound for states the tests wait for.
const WAIT: Duration = Duration::from_secs(30);

/// A container command that answers "hi" on TCP `port` and stays up.
fn server(port: u16) -> String {
    format!("nc -ll -p {port} -e echo hi & exec sleep 1000")
}

/// `tether run -d --name NAME EXTRA... tbox CMD` where CMD is `sh -c SCRIPT`.
fn run_sh(d: &Daemon, name: &str, extra: &[&str], script: &str) -> String {
    let mut v = vec!["--name", name];
    v.extend_from_slice(extra);
    v.extend([IMAGE, "sh", "-c", script]);
    d.run_d(&v)
}

/// `tether run -d --name NAME EXTRA... tbox sleep 1000`.
fn run_idle(d: &Daemon, name: &str, extra: &[&str]) -> String {
    run_sh(d, name, extra, "exec sleep 1000")
}

/// Whether `from` gets "hi" from `target:port` over TCP.
fn reaches(d: &Daemon, from: &str, target: &str, port: u16) -> bool {
    d.sh(from, &format!("echo | timeout 5 nc -w 3 {target} {port}"))
        .stdout
        .contains("hi")
}

/// Waits until `from` gets "hi" from `target:port`.
fn wait_reaches(d: &Daemon, from: &str, target: &str, port: u16) {
    wait_until(&format!("{from} reaches {target}:{port}"), WAIT, || {
        reaches(d, from, target, port)
    });
}

/// `ping -c1 NAME` in `from`: the output, asserting one reply came back from `ip`.
fn assert_pings(d: &Daemon, from: &str, name: &str, ip: &str) {
    let o = d.sh(from, &format!("ping -c 1 -W 3 {name} 2>&1"));
    assert!(
        o.success()
            && o.stdout.contains(&format!("({ip})"))
            && o.stdout.contains("1 packets received"),
        "ping {name} from {from} (expected {ip}): {o}"
    );
}

/// The host names of the /etc/hosts line of `ctr` for address `ip` (after its TAB).
fn hosts_entry(d: &Daemon, ctr: &str, ip: &str) -> Vec<String> {
    let hosts = d.ok(&["exec", ctr, "cat", "/etc/hosts"]);
    let lines: Vec<&str> = hosts
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(ip))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line for {ip} in {ctr}'s /etc/hosts:\n{hosts}"
    );
    let (addr, names) = lines[0]
        .split_once('\t')
        .unwrap_or_else(|| panic!("no TAB after the address in {:?}", lines[0]));
    assert_eq!(addr, ip, "{:?}", lines[0]);
    names.split(' ').map(str::to_string).collect()
}

/// busybox `nslookup NAME 127.0.0.11` in `from`, bounded.
fn nslookup(d: &Daemon, from: &str, name: &str) -> String {
    d.sh(from, &format!("timeout 20 nslookup {name} 2>&1"))
        .all()
}

/// Names of all containers (`ps -a`).
fn container_names(d: &Daemon) -> BTreeSet<String> {
    d.ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Names of running containers.
fn running_names(d: &Daemon) -> BTreeSet<String> {
    d.ok(&["ps", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// veth interfaces in the daemon's namespace.
fn veths(d: &Daemon) -> BTreeSet<String> {
    d.links()
        .into_iter()
        .filter(|l| l.starts_with("veth"))
        .collect()
}

/// veth interfaces once they match `want` (veths are deleted off the request path).
fn veths_settled(d: &Daemon, want: &BTreeSet<String>) -> BTreeSet<String> {
    common::settled(want, || veths(d))
}

/// IPv4 addresses (with /len) of `ctr`'s interfaces other than lo, from `ip -o -4 addr`.
fn inet_addrs(d: &Daemon, ctr: &str) -> Vec<String> {
    let o = d.cli(&["exec", ctr, "ip", "-o", "-4", "addr"]);
    assert!(o.success(), "ip addr in {ctr}: {o}");
    o.stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) != Some("lo"))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.position(|t| t == "inet")?;
            w.next().map(str::to_string)
        })
        .collect()
}

/// The MAC Docker derives from an IPv4 address: 02:42 followed by its four bytes.
fn mac_of(ip: &str) -> String {
    let ip: Ipv4Addr = ip.parse().expect("IPv4 address");
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

fn sset(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A second DNS server the test runs in the daemon's namespace on 0.0.0.0:53, for a
/// container's own `--dns`: `custom.test. A 192.0.2.55`, NXDOMAIN for every other name.
const CUSTOM_NAME: &str = "custom.test";
const CUSTOM_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 55);

// ---------------------------------------------------------------------------------------
// 1. --link
// ---------------------------------------------------------------------------------------

#[test]
fn links_on_the_default_bridge() {
    let d = Daemon::start();
    let db = run_sh(&d, "db", &[], &server(5432));
    let dotted = run_sh(&d, "dokku.postgres.db", &[], &server(5433));
    let (db_ip, dotted_ip) = (
        d.ip_of("db", "bridge"),
        d.ip_of("dokku.postgres.db", "bridge"),
    );
    assert!(db_ip.starts_with("172.17.") && dotted_ip.starts_with("172.17."));

    run_idle(
        &d,
        "app",
        &["--link", "db:pg", "--link", "dokku.postgres.db:postgres"],
    );
    // IP<TAB>alias ID12 name
    assert_eq!(hosts_entry(&d, "app", &db_ip), vec!["pg", &db[..12], "db"]);
    assert_eq!(
        hosts_entry(&d, "app", &dotted_ip),
        vec!["postgres", &dotted[..12], "dokku.postgres.db"]
    );
    assert_pings(&d, "app", "pg", &db_ip);
    assert_pings(&d, "app", "postgres", &dotted_ip);
    wait_reaches(&d, "app", "pg", 5432);
    wait_reaches(&d, "app", "postgres", 5433);
    // names without a link do not resolve on the default bridge (the control: links do it)
    run_idle(&d, "nolink", &[]);
    let o = d.sh("nolink", "ping -c 1 -W 1 pg 2>&1");
    assert!(o.all().contains("bad address 'pg'"), "{o}");

    // alias == name: the name is listed once (Docker adds the target's hostname after it)
    run_idle(&d, "app2", &["--link", "dokku.postgres.db"]);
    let names = hosts_entry(&d, "app2", &dotted_ip);
    assert_eq!(names[0], "dokku.postgres.db", "{names:?}");
    assert!(
        names[1..].iter().all(|n| n == &dotted[..12]),
        "alias == name lists only the name (and the hostname): {names:?}"
    );
    assert_pings(&d, "app2", "dokku.postgres.db", &dotted_ip);
    wait_reaches(&d, "app2", "dokku.postgres.db", 5433);

    // a link to a missing container fails at create, naming it, and creates nothing
    let before = container_names(&d);
    let o = d.fails(&["create", "--name", "broken", "--link", "nosuch:foo", IMAGE]);
    assert!(o.all().contains("nosuch"), "{o}");
    let o = d.fails(&["run", "-d", "--name", "broken2", "--link", "ghost", IMAGE]);
    assert!(o.all().contains("ghost"), "{o}");
    assert_eq!(
        container_names(&d),
        before,
        "a failed --link created a container"
    );
}

#[test]
fn links_on_a_user_network() {
    let d = Daemon::start();
    d.ok(&["network", "create", "un"]);
    run_sh(&d, "udb", &["--network", "un"], &server(5432));
    let ip = d.ip_of("udb", "un");
    run_idle(&d, "app", &["--network", "un", "--link", "udb:ualias"]);
    run_idle(&d, "other", &["--network", "un"]);
    assert_pings(&d, "app", "ualias", &ip);
    wait_reaches(&d, "app", "ualias", 5432);
    // the alias is the linking container's own: another container on the network has
    // only the target's name (the control)
    assert_pings(&d, "other", "udb", &ip);
    let o = d.sh("other", "ping -c 1 -W 1 ualias 2>&1");
    assert!(o.all().contains("bad address 'ualias'"), "{o}");
}

/// Docker's hosts entry for a link is `IP<TAB>alias HOSTNAME [name]`: the target's
/// hostname (its short id unless `--hostname` was given) always follows the alias.
#[test]

fn link_hosts_entry_names_the_targets_hostname() {
    let d = Daemon::start();
    let plain = run_idle(&d, "plain", &[]);
    run_idle(&d, "named", &["--hostname", "dbhost"]);
    let (plain_ip, named_ip) = (d.ip_of("plain", "bridge"), d.ip_of("named", "bridge"));
    run_idle(
        &d,
        "app",
        &["--link", "plain", "--link", "named:x", "--link", "named"],
    );
    let hosts = d.ok(&["exec", "app", "cat", "/etc/hosts"]);
    let want_plain = format!("{plain_ip}\tplain {}", &plain[..12]);
    assert!(
        hosts.lines().any(|l| l == want_plain),
        "want {want_plain:?}:\n{hosts}"
    );
    for want in [
        format!("{named_ip}\tx dbhost named"),
        format!("{named_ip}\tnamed dbhost"),
    ] {
        assert!(hosts.lines().any(|l| l == want), "want {want:?}:\n{hosts}");
    }
}

// ---------------------------------------------------------------------------------------
// 2. --add-host
// ---------------------------------------------------------------------------------------

#[test]
fn add_host_entries_and_host_gateway() {
    let d = Daemon::start();
    run_idle(
        &d,
        "a",
        &[
            "--add-host",
            "name:1.2.3.4",
            "--add-host",
            "database:host-gateway",
        ],
    );
    let gw = d.inspect("a")["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(gw, "172.17.0.1");
    assert_eq!(hosts_entry(&d, "a", "1.2.3.4"), vec!["name"]);
    assert_eq!(hosts_entry(&d, "a", &gw), vec!["database"]);
    assert_pings(&d, "a", "database", &gw);
    // the control: a name no option added does not resolve
    let o = d.sh("a", "ping -c 1 -W 1 database2 2>&1");
    assert!(o.all().contains("bad address 'database2'"), "{o}");

    // on a user network host-gateway is a gateway address of the host too
    d.ok(&["network", "create", "--subnet", "10.77.0.0/24", "un"]);
    run_idle(
        &d,
        "b",
        &["--network", "un", "--add-host", "database:host-gateway"],
    );
    let hosts = d.ok(&["exec", "b", "cat", "/etc/hosts"]);
    let line = hosts
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("database"))
        .unwrap_or_else(|| panic!("no database line:\n{hosts}"));
    let addr = line.split('\t').next().unwrap_or_default();
    // Docker: the daemon's host-gateway-ip (the default bridge's 172.17.0.1); tether may
    // use the network's own gateway
    assert!(
        addr == "10.77.0.1" || addr == "172.17.0.1",
        "host-gateway on un: {line:?}"
    );
    assert_pings(&d, "b", "database", addr);

    // malformed values are refused, naming the value, and create nothing
    let before = container_names(&d);
    for bad in ["nohost", "x:notanip"] {
        let o = d.fails(&["run", "-d", "--add-host", bad, IMAGE, "true"]);
        assert!(o.all().contains(bad), "--add-host {bad}: {o}");
        let o = d.fails(&["create", "--add-host", bad, IMAGE, "true"]);
        assert!(o.all().contains(bad), "create --add-host {bad}: {o}");
    }
    assert_eq!(container_names(&d), before);
}

// ---------------------------------------------------------------------------------------
// 3. --dns, --dns-search, --dns-option
// ---------------------------------------------------------------------------------------

/// The lines of /etc/resolv.conf of `ctr`, without comments and blank lines.
fn resolv_lines(d: &Daemon, ctr: &str) -> Vec<String> {
    d.ok(&["exec", ctr, "cat", "/etc/resolv.conf"])
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The words after `key` on the lines of `lines` that start with it.
fn resolv_values(lines: &[String], key: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(key).filter(|r| r.starts_with(' ')))
        .flat_map(|r| r.split_whitespace().map(str::to_string))
        .collect()
}

#[test]
fn dns_options_on_the_default_bridge_are_written_as_given() {
    let d = Daemon::start();
    run_idle(
        &d,
        "a",
        &[
            "--dns",
            "192.0.2.10",
            "--dns",
            "127.0.0.1",
            "--dns-search",
            "a.example",
            "--dns-search",
            "b.example",
            "--dns-option",
            "ndots:3",
            "--dns-option",
            "timeout:1",
        ],
    );
    let lines = resolv_lines(&d, "a");
    assert_eq!(
        resolv_values(&lines, "nameserver"),
        vec!["192.0.2.10", "127.0.0.1"],
        "{lines:?}"
    );
    assert_eq!(
        resolv_values(&lines, "search"),
        vec!["a.example", "b.example"],
        "{lines:?}"
    );
    assert_eq!(
        resolv_values(&lines, "options"),
        vec!["ndots:3", "timeout:1"],
        "{lines:?}"
    );
}

#[test]
fn dns_options_on_a_user_network_go_to_the_embedded_server() {
    let d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.78.0.0/24", "un"]);
    run_idle(
        &d,
        "a",
        &[
            "--network",
            "un",
            "--dns",
            "10.78.0.1",
            "--dns-search",
            "a.example",
            "--dns-search",
            "b.example",
            "--dns-option",
            "timeout:1",
            "--dns-option",
            "attempts:2",
        ],
    );
    let lines = resolv_lines(&d, "a");
    assert_eq!(
        resolv_values(&lines, "nameserver"),
        vec!["127.0.0.11"],
        "{lines:?}"
    );
    assert_eq!(
        resolv_values(&lines, "search"),
        vec!["a.example", "b.example"],
        "{lines:?}"
    );
    let opts: BTreeSet<String> = resolv_values(&lines, "options").into_iter().collect();
    assert_eq!(
        opts,
        sset(&["ndots:0", "timeout:1", "attempts:2"]),
        "{lines:?}"
    );

    // a user's ndots replaces the embedded server's ndots:0
    run_idle(&d, "b", &["--network", "un", "--dns-option", "ndots:2"]);
    let lines = resolv_lines(&d, "b");
    assert_eq!(
        resolv_values(&lines, "options"),
        vec!["ndots:2"],
        "{lines:?}"
    );
    assert_eq!(
        resolv_values(&lines, "nameserver"),
        vec!["127.0.0.11"],
        "{lines:?}"
    );
}

#[test]
fn dns_server_of_a_container_is_its_embedded_upstream() {
    let d = Daemon::start();
    // a second DNS server in the daemon's namespace: it knows custom.test; the daemon's
    // default upstream (the harness's) does not
    let responder = common::Upstream::serve(
        &d.netns(),
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 53)),
        CUSTOM_NAME,
        CUSTOM_IP,
    );
    d.ok(&["network", "create", "--subnet", "10.79.0.0/24", "un"]);
    run_idle(&d, "own", &["--network", "un", "--dns", "10.79.0.1"]);
    run_idle(&d, "loop", &["--network", "un", "--dns", "127.0.0.1"]);
    run_idle(&d, "plain", &["--network", "un"]);
    let ip_plain = d.ip_of("plain", "un");

    // --dns 10.79.0.1 (the gateway, where the responder listens): its answer
    let out = nslookup(&d, "own", CUSTOM_NAME);
    assert_eq!(nslookup_addrs(&out), vec![CUSTOM_IP.to_string()], "{out}");
    assert!(
        responder.seen().contains(&format!("{CUSTOM_NAME}.")),
        "{:?}",
        responder.seen()
    );
    assert!(
        !d.upstream().seen().contains(&format!("{CUSTOM_NAME}.")),
        "the daemon's upstream was asked for a container with its own --dns: {:?}",
        d.upstream().seen()
    );
    // the container's names still come from the embedded server
    assert_eq!(
        nslookup_addrs(&nslookup(&d, "own", "plain")),
        vec![ip_plain.clone()]
    );

    // no --dns: the daemon's upstream answers (it does not know custom.test)
    let out = nslookup(&d, "plain", UPSTREAM_NAME);
    assert_eq!(nslookup_addrs(&out), vec![UPSTREAM_IP.to_string()], "{out}");
    let out = nslookup(&d, "plain", CUSTOM_NAME);
    assert!(
        out.contains("NXDOMAIN") && nslookup_addrs(&out).is_empty(),
        "{out}"
    );

    // --dns 127.0.0.1 is the container's own loopback, where nothing listens (the
    // responder on the daemon's 0.0.0.0:53 must not answer it): SERVFAIL, and neither
    // the daemon's upstream nor the responder is asked
    let asked = responder.seen().len();
    let out = nslookup(&d, "loop", "loop-only.test");
    assert!(out.contains("SERVFAIL"), "expected SERVFAIL: {out}");
    assert!(
        !d.upstream().seen().contains(&"loop-only.test.".to_string()),
        "{:?}",
        d.upstream().seen()
    );
    assert_eq!(responder.seen().len(), asked, "{:?}", responder.seen());
    let out = nslookup(&d, "loop", CUSTOM_NAME);
    assert!(out.contains("SERVFAIL"), "expected SERVFAIL: {out}");
    assert_eq!(
        nslookup_addrs(&nslookup(&d, "loop", "plain")),
        vec![ip_plain]
    );
}

/// Docker writes no `search` line for `--dns-search .` (it means "no search domains").
#[test]

fn dns_search_dot_means_no_search_domains() {
    let d = Daemon::start();
    run_idle(&d, "a", &["--dns", "127.0.0.1", "--dns-search", "."]);
    let lines = resolv_lines(&d, "a");
    assert!(!lines.iter().any(|l| l.starts_with("search")), "{lines:?}");
    assert_eq!(resolv_values(&lines, "nameserver"), vec!["127.0.0.1"]);
}

// ---------------------------------------------------------------------------------------
// 4. --network container:NAME, none, host
// ---------------------------------------------------------------------------------------

#[test]
fn network_modes_container_none_and_host() {
    let d = Daemon::start();
    d.ok(&["network", "create", "un"]);
    run_sh(&d, "srv", &["--network", "un"], &server(7000));
    run_idle(&d, "joiner", &["--network", "container:srv"]);
    let srv_addrs = inet_addrs(&d, "srv");
    assert_eq!(srv_addrs.len(), 1, "{srv_addrs:?}");
    assert_eq!(
        srv_addrs[0],
        format!("{}/16", d.ip_of("srv", "un")),
        "{srv_addrs:?}"
    );
    assert_eq!(inet_addrs(&d, "joiner"), srv_addrs);
    let mac = |c: &str| d.ok(&["exec", c, "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac("joiner"), mac("srv"));
    let ns = |c: &str| d.ok(&["exec", c, "readlink", "/proc/self/ns/net"]);
    assert_eq!(ns("joiner"), ns("srv"));
    wait_reaches(&d, "joiner", "127.0.0.1", 7000);
    // the control: a container of its own does not find srv's server on its loopback
    run_idle(&d, "alone", &["--network", "un"]);
    assert_ne!(ns("alone"), ns("srv"));
    assert!(!reaches(&d, "alone", "127.0.0.1", 7000));

    // joining a container that does not run, or does not exist, fails
    d.ok(&["create", "--name", "idle", IMAGE, "sleep", "1000"]);
    let o = d.fails(&["run", "-d", "--network", "container:idle", IMAGE, "true"]);
    assert!(o.all().contains("idle"), "{o}");
    let o = d.fails(&["run", "-d", "--network", "container:nosuch", IMAGE, "true"]);
    assert!(o.all().contains("nosuch"), "{o}");
    assert!(!running_names(&d)
        .iter()
        .any(|n| n != "srv" && n != "joiner" && n != "alone"));

    // none: loopback only
    run_idle(&d, "isolated", &["--network", "none"]);
    let links = d.ok(&["exec", "isolated", "ip", "-o", "link"]);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(names, vec!["lo"], "{links}");
    assert!(inet_addrs(&d, "isolated").is_empty());

    // host: the daemon's own namespace
    run_idle(&d, "onhost", &["--network", "host"]);
    let daemon_ns = std::fs::read_link(d.netns())
        .expect("daemon netns")
        .display()
        .to_string();
    assert_eq!(ns("onhost"), daemon_ns);
    assert_ne!(ns("srv"), daemon_ns);
}

/// Docker gives a `container:NAME` joiner NAME's hostname (and hosts file).
#[test]

fn container_mode_takes_the_targets_hostname() {
    let d = Daemon::start();
    run_idle(&d, "srv", &["--hostname", "srvhost"]);
    run_idle(&d, "joiner", &["--network", "container:srv"]);
    assert_eq!(d.ok(&["exec", "joiner", "hostname"]), "srvhost");
}

// ---------------------------------------------------------------------------------------
// 5. --ip
// ---------------------------------------------------------------------------------------

#[test]
fn static_ip_on_a_user_network() {
    let d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.50.0.0/24", "sn"]);
    run_idle(&d, "s1", &["--network", "sn", "--ip", "10.50.0.50"]);
    let ep = &d.inspect("s1")["NetworkSettings"]["Networks"]["sn"];
    assert_eq!(ep["IPAddress"], "10.50.0.50", "{ep}");
    assert_eq!(ep["IPPrefixLen"], 24, "{ep}");
    assert_eq!(ep["IPAMConfig"]["IPv4Address"], "10.50.0.50", "{ep}");
    assert_eq!(ep["MacAddress"], mac_of("10.50.0.50").as_str(), "{ep}");
    assert_eq!(inet_addrs(&d, "s1"), vec!["10.50.0.50/24"]);
    // a dynamic one does not take it
    run_idle(&d, "s0", &["--network", "sn"]);
    assert_ne!(d.ip_of("s0", "sn"), "10.50.0.50");

    // the same address again: refused naming it; nothing more runs, no veth is left
    let (running, links) = (running_names(&d), veths(&d));
    let o = d.fails(&[
        "run",
        "-d",
        "--name",
        "s2",
        "--network",
        "sn",
        "--ip",
        "10.50.0.50",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(o.all().contains("10.50.0.50"), "{o}");
    assert_eq!(running_names(&d), running);
    assert_eq!(veths_settled(&d, &links), links);
    // s1 still has it and answers on it
    assert_eq!(d.ip_of("s1", "sn"), "10.50.0.50");
    assert_pings(&d, "s0", "10.50.0.50", "10.50.0.50");

    // outside the subnet: refused naming it
    let o = d.fails(&[
        "run",
        "-d",
        "--network",
        "sn",
        "--ip",
        "10.60.0.5",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(o.all().contains("10.60.0.5"), "{o}");
    assert_eq!(running_names(&d), running);
    assert_eq!(veths_settled(&d, &links), links);

    // on the default bridge (named): refused
    let o = d.fails(&[
        "run",
        "-d",
        "--network",
        "bridge",
        "--ip",
        "172.17.0.99",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(o.all().contains("user defined networks"), "{o}");
    assert_eq!(running_names(&d), running);
    assert_eq!(veths_settled(&d, &links), links);
}

/// `run --ip` without `--network` asks for the address on the default bridge, which
/// Docker refuses like `--network bridge --ip` ("supported on user defined networks only").
#[test]

fn static_ip_without_network_is_refused_on_the_default_bridge() {
    let d = Daemon::start();
    let o = d.cli(&[
        "run",
        "-d",
        "--name",
        "s4",
        "--ip",
        "172.17.0.99",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(
        !o.success() && o.all().contains("user defined networks"),
        "run --ip without --network: {o}"
    );
    assert!(running_names(&d).is_empty());
}

/// Docker checks a static address against the subnet, not the `--ip-range`: addresses
/// outside the range are how static and dynamic ones are kept apart.
#[test]

fn static_ip_may_lie_outside_the_ip_range() {
    let d = Daemon::start();
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "10.52.0.0/16",
        "--ip-range",
        "10.52.5.0/24",
        "rng",
    ]);
    run_idle(&d, "fixed", &["--network", "rng", "--ip", "10.52.9.9"]);
    assert_eq!(d.ip_of("fixed", "rng"), "10.52.9.9");
    assert_eq!(inet_addrs(&d, "fixed"), vec!["10.52.9.9/16"]);
    d.ok(&["create", "--name", "later", IMAGE, "sleep", "300"]);
    d.ok(&["network", "connect", "--ip", "10.52.9.10", "rng", "later"]);
    d.ok(&["start", "later"]);
    assert_eq!(d.ip_of("later", "rng"), "10.52.9.10");
}

/// Docker refuses `--ip` on a network whose subnet was not configured by the user
/// ("user specified IP address is supported only when connecting to networks with user
/// configured subnets").
#[test]

fn static_ip_needs_a_user_configured_subnet() {
    let d = Daemon::start();
    d.ok(&["network", "create", "auto"]);
    // the control: a dynamic container shows the pool the network got
    run_idle(&d, "dyn", &["--network", "auto"]);
    let ip: Ipv4Addr = d.ip_of("dyn", "auto").parse().expect("an address");
    let o = ip.octets();
    let wanted = format!("{}.{}.0.200", o[0], o[1]);
    let out = d.cli(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "auto",
        "--ip",
        &wanted,
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(
        !out.success() && out.all().contains("user configured subnets"),
        "--ip {wanted} on a network without --subnet: {out}"
    );
}

// ---------------------------------------------------------------------------------------
// 6. network connect / disconnect of a stopped container
// ---------------------------------------------------------------------------------------

#[test]
fn connect_and_disconnect_a_stopped_container() {
    let d = Daemon::start();
    d.ok(&["network", "create", "first"]);
    d.ok(&["network", "create", "--subnet", "10.51.0.0/24", "second"]);
    run_idle(&d, "asker", &["--network", "second"]);
    d.ok(&[
        "create",
        "--name",
        "st",
        "--network",
        "first",
        IMAGE,
        "sleep",
        "1000",
    ]);
    d.ok(&[
        "network",
        "connect",
        "--ip",
        "10.51.0.77",
        "--alias",
        "stal",
        "second",
        "st",
    ]);

    // recorded before it starts
    let ep = d.inspect("st")["NetworkSettings"]["Networks"]["second"].clone();
    assert!(ep.is_object(), "{}", d.inspect("st")["NetworkSettings"]);
    assert_eq!(ep["IPAMConfig"]["IPv4Address"], "10.51.0.77", "{ep}");
    let aliases: Vec<&str> = ep["Aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(aliases.contains(&"stal"), "{ep}");

    // applied when it starts
    d.ok(&["start", "st"]);
    assert_eq!(d.ip_of("st", "second"), "10.51.0.77");
    let addrs = inet_addrs(&d, "st");
    assert!(addrs.contains(&"10.51.0.77/24".to_string()), "{addrs:?}");
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_eq!(
        nslookup_addrs(&nslookup(&d, "asker", "stal")),
        vec!["10.51.0.77"]
    );
    assert_eq!(
        nslookup_addrs(&nslookup(&d, "asker", "st")),
        vec!["10.51.0.77"]
    );

    // disconnected while stopped: the attachment is gone, also after the next start
    d.ok(&["stop", "-t", "0", "st"]);
    d.ok(&["network", "disconnect", "second", "st"]);
    let nets = d.inspect("st")["NetworkSettings"]["Networks"].clone();
    assert!(nets["second"].is_null(), "{nets}");
    assert!(nets["first"].is_object(), "{nets}");
    d.ok(&["start", "st"]);
    let addrs = inet_addrs(&d, "st");
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert!(!addrs[0].starts_with("10.51."), "{addrs:?}");
    let (_, net) = d.api("GET", "/networks/second", None);
    let members: Vec<&str> = net["Containers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, c)| c["Name"].as_str())
        .collect();
    assert_eq!(members, vec!["asker"], "{net}");
    for name in ["stal", "st"] {
        let out = nslookup(&d, "asker", name);
        assert!(
            out.contains(&format!("can't find {name}")) && nslookup_addrs(&out).is_empty(),
            "{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 7. network ls --filter, -q
// ---------------------------------------------------------------------------------------

#[test]
fn network_ls_filters_and_quiet() {
    let d = Daemon::start();
    let lab1 = d.ok(&[
        "network", "create", "--label", "env=prod", "--label", "team", "lab1",
    ]);
    d.ok(&["network", "create", "--label", "env=dev", "lab2"]);
    d.ok(&["network", "create", "busy"]);
    run_idle(&d, "c", &["--network", "busy"]);

    let ls = |filters: &[&str]| -> BTreeSet<String> {
        let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        d.ok(&args).lines().map(str::to_string).collect()
    };
    let all = ls(&[]);
    assert_eq!(
        all,
        sset(&["bridge", "host", "none", "lab1", "lab2", "busy"])
    );
    let id_prefix = format!("id={}", &lab1[..8]);
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["name=lab"], vec!["lab1", "lab2"]),
        (vec!["name=lab2"], vec!["lab2"]),
        (vec![&id_prefix], vec!["lab1"]),
        (
            vec!["driver=bridge"],
            vec!["bridge", "lab1", "lab2", "busy"],
        ),
        (vec!["driver=host"], vec!["host"]),
        (vec!["driver=null"], vec!["none"]),
        (vec!["driver=host", "driver=null"], vec!["host", "none"]),
        (vec!["label=env"], vec!["lab1", "lab2"]),
        (vec!["label=env=prod"], vec!["lab1"]),
        (vec!["label=team"], vec!["lab1"]),
        (vec!["label=env", "name=lab2"], vec!["lab2"]),
        (vec!["dangling=true"], vec!["lab1", "lab2"]),
        (
            vec!["dangling=false"],
            vec!["bridge", "host", "none", "busy"],
        ),
        (vec!["type=custom"], vec!["lab1", "lab2", "busy"]),
        (vec!["type=builtin"], vec!["bridge", "host", "none"]),
    ];
    for (filters, want) in cases {
        assert_eq!(ls(&filters), sset(&want), "--filter {filters:?}");
    }

    // -q: short ids only, one per network
    let ids: BTreeMap<String, String> = all
        .iter()
        .map(|n| {
            let id = d.ok(&["network", "inspect", "-f", "{{.Id}}", n]);
            (id[..12].to_string(), n.clone())
        })
        .collect();
    let q = d.ok(&["network", "ls", "-q"]);
    let got: BTreeSet<String> = q.lines().map(str::to_string).collect();
    assert_eq!(got.len(), q.lines().count(), "{q}");
    assert_eq!(got, ids.keys().cloned().collect::<BTreeSet<_>>(), "{q}");
    assert_eq!(
        d.ok(&["network", "ls", "-q", "--filter", "name=lab1"]),
        lab1[..12]
    );
    assert_eq!(
        d.ok(&[
            "network",
            "ls",
            "-q",
            "--no-trunc",
            "--filter",
            "label=env=prod"
        ]),
        lab1
    );
}

// ---------------------------------------------------------------------------------------
// 8. network inspect
// ---------------------------------------------------------------------------------------

#[test]
fn network_inspect_shows_containers_ipam_options_and_labels() {
    let d = Daemon::start();
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "10.70.0.0/16",
        "--ip-range",
        "10.70.5.0/24",
        "--gateway",
        "10.70.0.254",
        "-o",
        "foo=bar",
        "--label",
        "k=v",
        "--label",
        "tier=back",
        "rng",
    ]);
    let r1 = run_idle(&d, "r1", &["--network", "rng"]);
    let r2 = run_idle(&d, "r2", &["--network", "rng"]);
    d.ok(&["create", "--name", "r3", "--network", "rng", IMAGE, "true"]);

    let (st, v) = d.api("GET", "/networks/rng", None);
    assert_eq!(st, 200, "{v}");
    let cfg = v["IPAM"]["Config"].as_array().cloned().unwrap_or_default();
    assert_eq!(cfg.len(), 1, "{v}");
    assert_eq!(cfg[0]["Subnet"], "10.70.0.0/16", "{v}");
    assert_eq!(cfg[0]["Gateway"], "10.70.0.254", "{v}");
    assert_eq!(cfg[0]["IPRange"], "10.70.5.0/24", "{v}");
    assert_eq!(v["Options"]["foo"], "bar", "{v}");
    assert_eq!(
        v["Labels"],
        serde_json::json!({"k": "v", "tier": "back"}),
        "{v}"
    );

    // one entry per running container, keyed by id; r3 (created, never started) has none
    let ctrs = v["Containers"].as_object().cloned().unwrap_or_default();
    let keys: BTreeSet<String> = ctrs.keys().cloned().collect();
    assert_eq!(keys, [r1.clone(), r2.clone()].into_iter().collect(), "{v}");
    for (id, name) in [(&r1, "r1"), (&r2, "r2")] {
        let e = &ctrs[id.as_str()];
        let ep = &d.inspect(name)["NetworkSettings"]["Networks"]["rng"];
        let ip = ep["IPAddress"].as_str().unwrap_or_default().to_string();
        assert_eq!(e["Name"], name, "{e}");
        let eid = e["EndpointID"].as_str().unwrap_or_default();
        assert!(
            eid.len() == 64 && eid.chars().all(|c| c.is_ascii_hexdigit()),
            "{e}"
        );
        assert_eq!(e["EndpointID"], ep["EndpointID"], "{e} vs {ep}");
        assert_eq!(e["IPv4Address"], format!("{ip}/16").as_str(), "{e}");
        assert_eq!(e["MacAddress"], mac_of(&ip).as_str(), "{e}");
        assert_eq!(
            d.ok(&["exec", name, "cat", "/sys/class/net/eth0/address"]),
            mac_of(&ip)
        );
    }
    // dynamic addresses come from the --ip-range
    for name in ["r1", "r2"] {
        let ip: Ipv4Addr = d.ip_of(name, "rng").parse().expect("an address");
        assert_eq!(&ip.octets()[..3], &[10, 70, 5], "{name}: {ip}");
    }

    // the default bridge: its real subnet and gateway
    let (st, b) = d.api("GET", "/networks/bridge", None);
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["IPAM"]["Config"][0]["Subnet"], "172.17.0.0/16", "{b}");
    assert_eq!(b["IPAM"]["Config"][0]["Gateway"], "172.17.0.1", "{b}");
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
            "bridge"
        ]),
        "172.17.0.1"
    );
}
