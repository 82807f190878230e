//! Crash consistency (issue 12): the daemon is killed with SIGKILL while `run -d`,
//! `network connect` and `rm -f` calls are in flight, at several points of their progress,
//! and started again. After each
//! restart the kernel and the runtime agree with the records: one sandbox held, one container monitored, one
//! runc container and one veth per running container and nothing else, every running
//! container's interface holds the address its record lists, and no two containers hold
//! the same address — also for the containers started after the restarts.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{Daemon, IMAGE, TETHER};

/// Running containers as (name, [(network, recorded IPv4)]).
fn running(d: &Daemon) -> Vec<(String, Vec<(String, String)>)> {
    let ids = d.ok(&["ps", "-q", "--no-trunc"]);
    ids.lines()
        .filter(|l| !l.is_empty())
        .map(|id| {
            let v = d.inspect(id);
            let name = v["Name"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let eps = v["NetworkSettings"]["Networks"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(net, e)| {
                            let ip = e["IPAddress"].as_str().unwrap_or_default().to_string();
                            (net.clone(), ip)
                        })
                        .collect()
                })
                .unwrap_or_default();
            (name, eps)
        })
        .collect()
}

fn entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

/// The invariants: records, kernel and runtime agree; no duplicate address.
fn check(d: &Daemon, round: &str) {
    let live = running(d);
    let mut ips = BTreeSet::new();
    let mut endpoints = 0;
    for (name, eps) in &live {
        let o = d.sh(name, "ip -o -4 addr");
        let held = o.stdout.lines().filter(|l| !l.contains(" lo ")).count();
        assert_eq!(
            held,
            eps.len(),
            "{round}: {name}'s sandbox holds other addresses than its record lists {eps:?}: {o}"
        );
        for (net, ip) in eps {
            assert!(!ip.is_empty(), "{round}: {name} has no address on {net}");
            assert!(
                o.stdout.contains(&format!("inet {ip}/")),
                "{round}: {name}'s interfaces do not hold its recorded {ip}: {o}"
            );
            assert!(
                ips.insert(ip.clone()),
                "{round}: {ip} is held twice: {live:?}"
            );
            endpoints += 1;
        }
    }
    let n = live.len();
    assert_eq!(
        d.held_netns().len(),
        n,
        "{round}: sandboxes the daemon holds"
    );
    assert_eq!(
        entries(&d.exec_root().join("netns")),
        0,
        "{round}: bind-mounted sandboxes"
    );
    assert_eq!(
        entries(&d.exec_root().join("runc")),
        n,
        "{round}: runc containers"
    );
    common::wait_until(
        &format!("{round}: the monitor serves each running container"),
        Duration::from_secs(10),
        || d.monitored().len() == n,
    );
    common::wait_until(
        &format!("{round}: one veth per endpoint"),
        Duration::from_secs(10),
        || d.links().iter().filter(|l| l.starts_with("veth")).count() == endpoints,
    );
}

/// Runs `tether ARGS` for each of `batch` at once, kills the daemon after `delay_ms`,
/// waits for the clients, starts the daemon again and checks the invariants.
fn crash_during(d: &mut Daemon, batch: Vec<Vec<String>>, delay_ms: u64, round: &str) {
    let kids: Vec<_> = batch
        .iter()
        .map(|args| {
            Command::new(TETHER)
                .args(["-H", &d.host])
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("run tether")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(delay_ms));
    d.kill_daemon();
    for mut c in kids {
        let _ = c.wait();
    }
    d.start_daemon();
    check(d, &format!("{round} (killed after {delay_ms} ms)"));
}

fn args(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_string).collect()
}

#[test]
fn sigkill_during_run_connect_and_rm_leaves_nothing_half_made_and_no_duplicate_address() {
    let mut d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.78.0.0/24", "crash"]);
    d.ok(&["network", "create", "--subnet", "10.78.1.0/24", "crash2"]);
    let mut k = 0;
    // run -d: kill points from "before the first create" to "some starts finished"
    for delay_ms in [5u64, 60, 150, 300, 600] {
        let batch = (0..4)
            .map(|_| {
                k += 1;
                args(&format!(
                    "run -d --network crash --name c{k} {IMAGE} sleep 600"
                ))
            })
            .collect();
        crash_during(&mut d, batch, delay_ms, "run -d");
    }
    // network connect of the containers that run
    let names: Vec<String> = running(&d).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.len() >= 4,
        "too few containers survived to connect: {names:?}"
    );
    for (i, delay_ms) in [10u64, 40, 120].into_iter().enumerate() {
        let batch = names
            .iter()
            .skip(i)
            .step_by(3)
            .map(|n| args(&format!("network connect crash2 {n}")))
            .collect();
        crash_during(&mut d, batch, delay_ms, "network connect");
    }
    // rm -f
    let names: Vec<String> = running(&d).into_iter().map(|(n, _)| n).collect();
    for (i, delay_ms) in [10u64, 80].into_iter().enumerate() {
        let batch = names
            .iter()
            .skip(i)
            .step_by(3)
            .map(|n| args(&format!("rm -f {n}")))
            .collect();
        crash_during(&mut d, batch, delay_ms, "rm -f");
    }
    // containers started and connected after the crashes get addresses no live
    // interface holds
    for i in 0..4 {
        let name = format!("after{i}");
        d.run_d(&["--network", "crash", "--name", &name, IMAGE, "sleep", "600"]);
        d.ok(&["network", "connect", "crash2", &name]);
    }
    check(&d, "after the restarts");
    assert!(
        d.log_tail(1000).contains("left half-made"),
        "no round killed an operation half-way: the test did not test anything"
    );
}
