//! `--internal` networks (no traffic beyond their bridge, names still resolve) and
//! `com.docker.network.bridge.enable_icc=false` (no traffic between the network's own
//! containers), checked against an "outside" server in a namespace the test makes itself.

mod common;

use std::process::Command;
use std::time::Duration;

use common::outside::Outside;
use common::{in_netns, wait_until, Daemon, IMAGE};

fn reaches(d: &Daemon, ctr: &str, addr: &str) -> bool {
    d.sh(ctr, &format!("echo | timeout 3 nc -w 2 {addr} 7777"))
        .stdout
        .contains("outside")
}

#[test]
fn internal_networks_have_no_way_out_but_names_resolve() {
    let d = Daemon::start();
    let _outside = Outside::start(&d);
    d.ok(&["network", "create", "open"]);
    d.ok(&["network", "create", "--internal", "closed"]);
    assert_eq!(
        d.ok(&["network", "inspect", "-f", "{{.Internal}}", "closed"]),
        "true"
    );

    d.run_d(&["--name", "o1", "--network", "open", IMAGE, "sleep", "300"]);
    d.run_d(&["--name", "c1", "--network", "closed", IMAGE, "sleep", "300"]);
    d.run_d(&["--name", "c2", "--network", "closed", IMAGE, "sleep", "300"]);

    // a normal network reaches the outside (forwarded, masqueraded): the probe works
    wait_until(
        "open container reaches outside",
        Duration::from_secs(20),
        || reaches(&d, "o1", "10.99.0.2"),
    );
    // the internal one has no default route, and even with one its traffic is dropped
    let routes = d.sh("c1", "ip route").stdout;
    assert!(
        !routes.contains("default"),
        "internal network gave a default route: {routes}"
    );
    assert!(
        !reaches(&d, "c1", "10.99.0.2"),
        "internal container reached the outside"
    );
    let gw = d.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
        "c1",
    ]);
    let o = d.cli(&[
        "exec",
        "--privileged",
        "c1",
        "ip",
        "route",
        "add",
        "default",
        "via",
        &gw,
    ]);
    if o.code == 0 {
        assert!(
            !reaches(&d, "c1", "10.99.0.2"),
            "internal container reached the outside through a route it added"
        );
    }
    // inside the network, names resolve and containers talk
    let c2 = d.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        "c2",
    ]);
    let ns = d.sh("c1", "nslookup c2 127.0.0.11").stdout;
    assert!(
        ns.contains(&c2),
        "c2 ({c2}) resolves on the internal network: {ns}"
    );
    assert!(d
        .sh("c1", "ping -c1 -W2 c2")
        .stdout
        .contains(" 0% packet loss"));
}

#[test]
fn icc_false_blocks_traffic_between_the_networks_containers() {
    let d = Daemon::start();
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "quiet",
    ]);
    d.ok(&["network", "create", "chatty"]);
    for (n, net) in [
        ("q1", "quiet"),
        ("q2", "quiet"),
        ("k1", "chatty"),
        ("k2", "chatty"),
    ] {
        d.run_d(&[
            "--name",
            n,
            "--network",
            net,
            IMAGE,
            "sh",
            "-c",
            "nc -ll -p 7777 -e echo hello & sleep 300",
        ]);
    }
    let ip = |c: &str| {
        d.ok(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            c,
        ])
    };
    let talk = |from: &str, to: &str| {
        d.sh(from, &format!("echo | timeout 3 nc -w 2 {to} 7777"))
            .stdout
            .contains("hello")
    };
    wait_until("chatty containers talk", Duration::from_secs(20), || {
        talk("k1", &ip("k2"))
    });
    assert!(
        !talk("q1", &ip("q2")),
        "containers of an enable_icc=false network reached each other"
    );
    // their names still resolve, and each still reaches the gateway (the host)
    let ns = d.sh("q1", "nslookup q2 127.0.0.11").stdout;
    assert!(ns.contains(&ip("q2")), "{ns}");
    let gw = d.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}",
        "q1",
    ]);
    assert!(d
        .sh("q1", &format!("ping -c1 -W2 {gw}"))
        .stdout
        .contains(" 0% packet loss"));
    // after the containers leave, their ports leave the isolation set
    d.ok(&["rm", "-f", "q1", "q2"]);
    let left = in_netns(&d.netns(), || {
        Command::new("nft")
            .args(["list", "set", "bridge", "tether", "no_icc_ports"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    });
    assert!(!left.contains("veth"), "isolated ports left behind: {left}");
}
