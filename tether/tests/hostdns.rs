//! Container names from the host: the DNS on each network's gateway answers the host's
//! own queries for `NAME.NETWORK` (and `NAME` where only one network has it), for every
//! network; containers cannot use it; `tether network dns-setup` prints the resolver
//! settings.

mod common;

use common::{nslookup_addrs, Daemon, IMAGE};

/// `nslookup NAME SERVER` from the host (the daemon's namespace), its answer addresses.
fn host_lookup(d: &Daemon, name: &str, server: &str) -> Vec<String> {
    let o = d.ns(&["timeout", "10", "busybox", "nslookup", name, server]);
    nslookup_addrs(&o.stdout)
}

#[test]
fn the_host_resolves_container_names_on_the_gateways() {
    let d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "172.30.0.0/16", "app-net"]);
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "172.31.0.0/16",
        "other-net",
    ]);
    d.run_d(&[
        "--name",
        "web",
        "--network",
        "app-net",
        IMAGE,
        "sleep",
        "300",
    ]);
    d.run_d(&[
        "--name",
        "db",
        "--network",
        "other-net",
        IMAGE,
        "sleep",
        "300",
    ]);
    d.run_d(&[
        "--name",
        "twin",
        "--network",
        "app-net",
        IMAGE,
        "sleep",
        "300",
    ]);
    d.run_d(&[
        "--name",
        "other",
        "--network",
        "other-net",
        "--network-alias",
        "twin",
        IMAGE,
        "sleep",
        "300",
    ]);
    let (web, db) = (d.ip_of("web", "app-net"), d.ip_of("db", "other-net"));
    let (twin_a, twin_b) = (d.ip_of("twin", "app-net"), d.ip_of("other", "other-net"));
    let gw = "172.30.0.1";

    assert_eq!(host_lookup(&d, "web.app-net", gw), vec![web.clone()]);
    // every network is in the host's scope, whichever gateway it asks
    assert_eq!(host_lookup(&d, "db.other-net", gw), vec![db.clone()]);
    assert_eq!(host_lookup(&d, "db.other-net", "172.31.0.1"), vec![db]);
    // a plain name where it is unique; NAME.NETWORK where it is not
    assert_eq!(host_lookup(&d, "web", gw), vec![web]);
    assert!(
        host_lookup(&d, "twin", gw).is_empty(),
        "an ambiguous plain name answered"
    );
    assert_eq!(host_lookup(&d, "twin.app-net", gw), vec![twin_a]);
    assert_eq!(host_lookup(&d, "twin.other-net", gw), vec![twin_b]);

    // containers cannot ask it (their own DNS is 127.0.0.11)
    let o = d.sh(
        "web",
        &format!("timeout 5 nslookup db.other-net {gw} 2>&1; echo done"),
    );
    assert!(
        !o.stdout.contains("172.31."),
        "a container resolved another network's name through the host DNS: {o}"
    );

    // the resolver settings
    let out = d.ok(&["network", "dns-setup"]);
    let bridge = d.ok(&["network", "inspect", "-f", "{{.Id}}", "app-net"]);
    let br = format!("tb-{}", &bridge[..12]);
    assert!(
        out.contains(&format!("resolvectl dns {br} {gw}"))
            && out.contains(&format!("resolvectl domain {br} ~app-net")),
        "{out}"
    );

    // a removed network's names are gone
    d.ok(&["rm", "-f", "db", "other"]);
    d.ok(&["network", "rm", "other-net"]);
    assert!(host_lookup(&d, "db.other-net", gw).is_empty());
}
