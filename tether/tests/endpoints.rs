//! Endpoint changes are transactions (issue 12): a `network connect` whose later step fails
//! leaves no lease, veth or DNS name behind that the container's record does not list, and
//! a `network disconnect` whose later step fails still records the endpoint as gone. The
//! failure is made for real: the container's resolv.conf in the daemon's state directory
//! is replaced by a directory, so rewriting the container's /etc files fails after the
//! endpoint was made (connect) or withdrawn (disconnect).

mod common;

use std::path::PathBuf;

use common::{Daemon, IMAGE};

/// The container's resolv.conf in the daemon's state directory.
fn resolv_of(d: &Daemon, name: &str) -> PathBuf {
    let id = d.inspect(name)["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!id.is_empty(), "no id for {name}");
    d.root().join("containers").join(id).join("resolv.conf")
}

/// Makes writes of `p` fail (a directory in the file's place) or work again.
fn break_file(p: &PathBuf, broken: bool) {
    if broken {
        std::fs::remove_file(p).unwrap_or_else(|e| panic!("rm {}: {e}", p.display()));
        std::fs::create_dir(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    } else {
        std::fs::remove_dir(p).unwrap_or_else(|e| panic!("rmdir {}: {e}", p.display()));
        std::fs::write(p, "").unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }
}

/// The networks the container's record lists.
fn networks_of(d: &Daemon, name: &str) -> Vec<String> {
    let v = d.inspect(name);
    v["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The interfaces inside container `name`.
fn ifaces_in(d: &Daemon, name: &str) -> String {
    d.sh(name, "ls /sys/class/net").stdout
}

#[test]
fn a_failed_connect_or_disconnect_leaves_record_and_kernel_in_agreement() {
    let d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.77.1.0/24", "front"]);
    d.ok(&["network", "create", "--subnet", "10.77.2.0/29", "back"]);
    d.run_d(&["--network", "front", "--name", "app", IMAGE, "sleep", "300"]);
    d.run_d(&["--network", "back", "--name", "peer", IMAGE, "sleep", "300"]);
    let links = d.links();
    let resolv = resolv_of(&d, "app");

    // connect fails after the endpoint was made: everything of it is undone
    break_file(&resolv, true);
    let out = d.fails(&["network", "connect", "back", "app"]);
    assert!(
        out.all().contains("resolv.conf") || out.all().contains("directory"),
        "{}",
        out.all()
    );
    assert_eq!(networks_of(&d, "app"), vec!["front".to_string()]);
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
    let looked = d.sh("peer", "nslookup app 127.0.0.11 2>&1").stdout;
    assert!(
        !looked.contains("10.77.2."),
        "back's DNS still answers for the failed endpoint: {looked}"
    );

    // once the file is writable the same connect works: the failed ones gave their
    // leases back
    break_file(&resolv, false);
    d.ok(&["network", "connect", "back", "app"]);
    assert!(d.ip_of("app", "back").starts_with("10.77.2."));
    let ifs = ifaces_in(&d, "app");
    assert!(ifs.contains("eth1"), "{ifs}");

    // disconnect fails after the endpoint was withdrawn: the record says it is gone, and
    // the error names what failed
    break_file(&resolv, true);
    let out = d.fails(&["network", "disconnect", "back", "app"]);
    assert!(
        out.all().contains("was disconnected from network back"),
        "{}",
        out.all()
    );
    assert_eq!(networks_of(&d, "app"), vec!["front".to_string()]);
    let ifs = ifaces_in(&d, "app");
    assert!(!ifs.contains("eth1"), "{ifs}");
    let (st, v) = d.api("GET", "/networks/back", None);
    assert_eq!(st, 200, "{v}");
    let members: Vec<String> = v["Containers"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|c| c["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(members, vec!["peer".to_string()]);

    // and a restart agrees with it
    break_file(&resolv, false);
    let mut d = d;
    d.restart();
    assert_eq!(networks_of(&d, "app"), vec!["front".to_string()]);
    d.ok(&["network", "connect", "back", "app"]);
    assert!(d.ip_of("app", "back").starts_with("10.77.2."));
}
