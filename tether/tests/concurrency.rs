//! Concurrency (issue 12): the engine's lock is not held across the runtime's part of a
//! start, so independent `run -d`s proceed in parallel; IPAM allocation stays atomic and
//! each container's own lock orders start, connect, disconnect and rm of one container.
//! 50 concurrent `run -d` on one network: 50 running containers, 50 distinct addresses,
//! each held by the container's interface, and no error; then 20 clients connect,
//! disconnect and remove the same containers at once and the records agree with the
//! kernel afterwards.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Instant;

use common::{Daemon, IMAGE, TETHER};

fn tether(d: &Daemon, args: &[String]) -> Output {
    Command::new(TETHER)
        .args(["-H", &d.host])
        .args(args)
        .output()
        .expect("run tether")
}

fn args(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_string).collect()
}

/// Runs every command of `batch` at once, from its own thread; returns the outputs.
fn at_once(d: &Daemon, batch: Vec<Vec<String>>) -> Vec<(Vec<String>, Output)> {
    std::thread::scope(|s| {
        let hs: Vec<_> = batch
            .into_iter()
            .map(|a| s.spawn(move || (a.clone(), tether(d, &a))))
            .collect();
        hs.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// Each running container's recorded addresses, checked against its interfaces; returns
/// every address (panics on a duplicate).
fn consistent(d: &Daemon) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for id in d.ok(&["ps", "-q", "--no-trunc"]).lines() {
        let v = d.inspect(id);
        let held = d.sh(id, "ip -o -4 addr").stdout;
        let nets = v["NetworkSettings"]["Networks"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let own = held.lines().filter(|l| !l.contains(" lo ")).count();
        assert_eq!(
            own,
            nets.len(),
            "{id}: interfaces {held} vs record {nets:?}"
        );
        for (n, e) in nets {
            let ip = e["IPAddress"].as_str().unwrap_or_default().to_string();
            assert!(
                held.contains(&format!("inet {ip}/")),
                "{id} on {n}: {ip} not in {held}"
            );
            assert!(all.insert(ip.clone()), "{ip} is held twice");
        }
    }
    all
}

#[test]
fn fifty_concurrent_runs_then_twenty_clients_on_the_same_containers() {
    let d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "10.80.0.0/24", "busy"]);
    d.ok(&["network", "create", "--subnet", "10.80.1.0/24", "side"]);
    let t = Instant::now();
    let outs = at_once(
        &d,
        (0..50)
            .map(|i| {
                args(&format!(
                    "run -d --network busy --name r{i} {IMAGE} sleep 600"
                ))
            })
            .collect(),
    );
    let took = t.elapsed();
    let failed: Vec<String> = outs
        .iter()
        .filter(|(_, o)| !o.status.success())
        .map(|(a, o)| format!("{}: {}", a.join(" "), String::from_utf8_lossy(&o.stderr)))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 50 runs failed: {failed:?}",
        failed.len()
    );
    let ips = consistent(&d);
    assert_eq!(ips.len(), 50, "{ips:?}");
    eprintln!("50 concurrent run -d: {took:?}");

    // 20 clients: connect, disconnect and rm -f of the same containers, interleaved
    let mut batch = Vec::new();
    for i in 0..20 {
        let c = format!("r{}", i % 10);
        batch.push(match i % 4 {
            0 | 1 => args(&format!("network connect side {c}")),
            2 => args(&format!("network disconnect side {c}")),
            _ => args(&format!("rm -f r{}", 10 + i)),
        });
    }
    at_once(&d, batch);
    let ips = consistent(&d);
    let running = d.ok(&["ps", "-q"]).lines().count();
    assert_eq!(running, 45, "five of the containers were removed");
    let veths = d.links().iter().filter(|l| l.starts_with("veth")).count();
    let on_side = ips.iter().filter(|ip| ip.starts_with("10.80.1.")).count();
    assert_eq!(
        common::settled(&(45 + on_side), || d
            .links()
            .iter()
            .filter(|l| l.starts_with("veth"))
            .count()),
        45 + on_side,
        "veths ({veths} at first) vs endpoints"
    );
}

#[test]
fn concurrent_network_creates_get_distinct_subnets_and_names_stay_unique() {
    let d = Daemon::start();
    let before = d.links();
    // twelve networks at once with no --subnet, and six creates of one name at once
    let mut batch: Vec<Vec<String>> = (0..12)
        .map(|i| args(&format!("network create par{i}")))
        .collect();
    batch.extend((0..6).map(|_| args("network create same")));
    let out = at_once(&d, batch);
    let failed: Vec<String> = out
        .iter()
        .filter(|(a, o)| !o.status.success() && a[2] != "same")
        .map(|(a, o)| format!("{a:?}: {}", String::from_utf8_lossy(&o.stderr)))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let same: Vec<&Output> = out
        .iter()
        .filter(|(a, _)| a[2] == "same")
        .map(|(_, o)| o)
        .collect();
    assert_eq!(
        same.iter().filter(|o| o.status.success()).count(),
        1,
        "one create of a name wins"
    );
    for o in same.iter().filter(|o| !o.status.success()) {
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("network with name same already exists"), "{e}");
    }
    // thirteen networks: distinct subnets and bridges, each bridge in the kernel with its
    // gateway address
    let mut subnets = BTreeSet::new();
    let mut bridges = BTreeSet::new();
    let names: Vec<String> = (0..12)
        .map(|i| format!("par{i}"))
        .chain(["same".to_string()])
        .collect();
    for n in &names {
        let v: serde_json::Value = serde_json::from_str(&d.ok(&["network", "inspect", n]))
            .expect("network inspect is JSON");
        let subnet = v[0]["IPAM"]["Config"][0]["Subnet"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let gw = v[0]["IPAM"]["Config"][0]["Gateway"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // tether's bridge of a network without a bridge name option: tb-<id12>
        let id = v[0]["Id"].as_str().unwrap_or_default();
        let bridge = format!("tb-{}", id.get(..12).unwrap_or_default());
        assert!(subnets.insert(subnet.clone()), "{subnet} given twice");
        let addr = d.ns(&["ip", "-o", "-4", "addr", "show", "dev", &bridge]);
        assert!(
            addr.stdout.contains(&format!("inet {gw}/")),
            "{n}: bridge {bridge} has no {gw}: {addr}"
        );
        assert!(bridges.insert(bridge.clone()), "{bridge} used twice");
    }
    // and removed at once, nothing is left
    let rm: Vec<Vec<String>> = names
        .iter()
        .map(|n| args(&format!("network rm {n}")))
        .collect();
    for (a, o) in at_once(&d, rm) {
        assert!(o.status.success(), "{a:?}: {o:?}");
    }
    assert_eq!(d.links_settled(&before), before);
}

/// A container's exit is processed without the engine's lock across the runtime's part:
/// while the daemon's `runc delete` of an exited container is held (a runtime wrapper
/// that waits on it), the daemon creates and removes a network and lists containers; the exit is
/// then recorded with its code and nothing of the container is left running.
#[test]
fn an_exit_holds_no_engine_lock_across_runc_delete() {
    let tmp = tempfile::Builder::new()
        .prefix("tether-slowdelete-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().to_str().expect("utf-8 path").to_string();
    let runc = Command::new("sh")
        .args(["-c", "command -v runc"])
        .output()
        .expect("sh");
    let runc = String::from_utf8_lossy(&runc.stdout).trim().to_string();
    assert!(!runc.is_empty(), "runc not found");
    // once armed, the monitor's own `delete` (the first, before it reports the exit) passes;
    // the daemon's (the next) marks its start, waits 3 s, marks its end, then runs
    let wrapper = format!(
        "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = delete ] && [ -e {dir}/armed ]; then\n    \
         if [ -e {dir}/shim-deleted ]; then\n      \
         touch {dir}/delete-begun; sleep 3; touch {dir}/delete-done\n    \
         else\n      touch {dir}/shim-deleted\n    fi\n    break\n  fi\ndone\n\
         exec {runc} \"$@\"\n"
    );
    let path = tmp.path().join("slow-runc");
    std::fs::write(&path, wrapper).expect("write the wrapper");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the wrapper");
    let gate = tmp.path().join("gate");
    std::fs::create_dir(&gate).expect("gate dir");
    let d = Daemon::start_with(&["--runtime", path.to_str().expect("utf-8 path")]);
    let volume = format!("{}:/gate", gate.display());
    d.run_d(&[
        "--name",
        "quick",
        "-v",
        &volume,
        IMAGE,
        "sh",
        "-c",
        "while [ ! -e /gate/go ]; do sleep 0.05; done; exit 7",
    ]);
    std::fs::write(tmp.path().join("armed"), "").expect("arm");
    std::fs::write(gate.join("go"), "").expect("let the container exit");
    common::wait_until(
        "the exit's runc delete begins",
        std::time::Duration::from_secs(20),
        || tmp.path().join("delete-begun").exists(),
    );
    d.ok(&["network", "create", "--subnet", "10.77.9.0/24", "meanwhile"]);
    d.ok(&["network", "rm", "meanwhile"]);
    d.ok(&["ps", "-a"]);
    assert!(
        !tmp.path().join("delete-done").exists(),
        "the requests finished only after the held runc delete (lock held across it?)"
    );
    common::wait_until(
        "quick is recorded as exited",
        std::time::Duration::from_secs(20),
        || d.inspect("quick")["State"]["Status"] == "exited",
    );
    assert_eq!(d.inspect("quick")["State"]["ExitCode"], 7);
    assert!(tmp.path().join("delete-done").exists());
}
