//! Firewall self-repair: when another process deletes or flushes tether's nftables
//! tables (`nft flush ruleset`, `nft delete table inet tether`, a flushed chain or map),
//! the daemon rebuilds everything it owns by itself — published ports answer again and
//! networks are isolated again — and says so in its event stream;
//! `tether network reload-firewall` does the same on demand.

mod common;

use std::time::{Duration, Instant};

use common::{wait_until, Daemon, IMAGE};

fn serve(d: &Daemon, name: &str, net: &str, publish: Option<&str>) {
    let mut args = vec!["--name", name, "--network", net];
    if let Some(p) = publish {
        args.extend(["-p", p]);
    }
    let script = format!("exec nc -ll -p 80 -e echo hello-{name}");
    args.extend([IMAGE, "sh", "-c", &script]);
    d.run_d(&args);
}

fn answers(d: &Daemon) -> bool {
    d.tcp_exchange(8080, "", Duration::from_secs(2))
        .map(|s| s.contains("hello-web"))
        .unwrap_or(false)
}

fn reaches(d: &Daemon, from: &str, ip: &str) -> bool {
    d.sh(from, &format!("echo | timeout 3 nc -w 2 {ip} 80"))
        .stdout
        .contains("hello-")
}

/// How many `daemon firewall-reload` events the daemon emitted so far (a bounded query:
/// until now).
fn repairs(d: &Daemon) -> usize {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let r = d.api_raw("GET", &format!("/events?since=0&until={now}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .filter(|l| l.contains("\"firewall-reload\"") && l.contains("\"daemon\""))
        .count()
}

#[test]
fn the_firewall_repairs_itself_after_foreign_damage() {
    let d = Daemon::start();
    d.ok(&["network", "create", "na"]);
    d.ok(&["network", "create", "nb"]);
    serve(&d, "web", "na", Some("8080:80"));
    serve(&d, "other", "nb", None);
    wait_until("web answers on 8080", Duration::from_secs(30), || {
        answers(&d)
    });
    let other = d.ip_of("other", "nb");
    assert!(
        !reaches(&d, "web", &other),
        "networks not isolated to begin with"
    );
    let ports = d.nft_tcp_ports();

    for (i, damage) in [
        "nft flush ruleset",
        "nft delete table inet tether",
        "nft flush map inet tether pub4",
        "nft flush chain inet tether forward",
    ]
    .into_iter()
    .enumerate()
    {
        let o = d.ns(&["sh", "-c", damage]);
        assert!(o.success(), "{damage}: {o}");
        let t0 = Instant::now();
        // repaired: one more firewall-reload event (a port may answer before that, e.g.
        // when only the forward chain was flushed and its policy accepts)
        wait_until(
            &format!("the repair after `{damage}`"),
            Duration::from_secs(10),
            || repairs(&d) > i,
        );
        eprintln!("`{damage}`: repaired after {:?}", t0.elapsed());
        assert!(answers(&d), "published port dead after `{damage}`");
        assert_eq!(d.nft_tcp_ports(), ports, "after `{damage}`");
        assert!(
            !reaches(&d, "web", &other),
            "networks not isolated again after `{damage}`"
        );
    }
    // every repair is in the event stream
    assert_eq!(repairs(&d), 4);

    // on demand: the same state again, nothing doubled
    let out = d.ok(&["network", "reload-firewall"]);
    assert!(out.contains("firewall reloaded"), "{out}");
    assert_eq!(d.nft_tcp_ports(), ports);
    assert!(answers(&d));
    assert!(!reaches(&d, "web", &other));
}
