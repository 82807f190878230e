//! Running containers leave the daemon's mount namespace as it was (issue 12, "flat start
//! cost"): a container's overlay root is unmounted from the daemon's namespace once its own
//! namespace holds it, and its sandbox is held by an open descriptor, not a bind mount. So
//! the mount table that every `runc create` copies and detaches does not grow with each
//! running container. The daemon still reaches everything: exec resolves commands and
//! users in the container's root, `cp` and `export` read it, and after a daemon restart
//! the sandboxes are taken back through the containers' processes. Interfaces on IPv4-only
//! networks have no IPv6 (as Docker since 26.1).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{wait_until, Daemon, IMAGE};

/// The daemon's mount points (its mountinfo's fifth field), sorted.
fn mounts(d: &Daemon) -> Vec<String> {
    let pid = d.pid().expect("the daemon runs");
    let mut v: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .expect("read the daemon's mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn running_containers_add_no_mount_to_the_daemons_namespace() {
    let mut d = Daemon::start();
    d.ok(&["network", "create", "n1"]);
    d.ok(&["volume", "create", "v1"]);
    let base = mounts(&d);
    assert!(d.held_netns().is_empty(), "{:?}", d.held_netns());

    d.run_d(&[
        "--name",
        "a",
        "--network",
        "n1",
        "-v",
        "v1:/data",
        IMAGE,
        "sh",
        "-c",
        "echo in-root > /marker; echo in-volume > /data/f; exec sleep 1000",
    ]);
    d.run_d(&["--name", "b", "--network", "n1", IMAGE, "sleep", "1000"]);
    d.run_d(&[
        "--name",
        "c",
        "--network",
        "container:a",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert_eq!(mounts(&d), base, "the daemon's mount table changed");
    let held = d.held_netns();
    assert_eq!(held.len(), 3, "one hold per container: {held:?}");
    assert_eq!(
        held.iter().collect::<BTreeSet<_>>().len(),
        2,
        "c holds a's namespace: {held:?}"
    );
    // one container monitor (started with posix_spawn) serves the three: a session of its
    // own, with stdout on /dev/null (the sync pipe it was started with moved off) and
    // nothing of the daemon's; the containers' inits are its children
    let monitors = d.monitor_pids();
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    assert_eq!(d.monitored().len(), 3);
    for pid in monitors {
        assert_eq!(
            stat_field(pid as i64, 3),
            pid.to_string(),
            "monitor {pid}'s session"
        );
        let out = std::fs::read_link(format!("/proc/{pid}/fd/1"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        assert_eq!(out, "/dev/null", "monitor {pid}'s stdout");
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|p| p.display().to_string())
            .collect();
        assert!(
            !fds.iter().any(|f| f.starts_with("net:[")),
            "monitor {pid} holds a sandbox: {fds:?}"
        );
        for name in ["a", "b", "c"] {
            let init = d.inspect(name)["State"]["Pid"].as_i64().unwrap_or(0);
            assert_eq!(
                stat_field(init, 1),
                pid.to_string(),
                "{name}'s init {init}'s parent"
            );
        }
    }

    // the sandbox path names the namespace the container is in
    let key = d.inspect("b")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pid = d.inspect("b")["State"]["Pid"].as_i64().unwrap_or(0);
    assert_eq!(
        std::fs::read_link(&key)
            .map(|p| p.display().to_string())
            .ok(),
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .map(|p| p.display().to_string())
            .ok(),
        "SandboxKey {key}"
    );

    // on an IPv4-only network the interface has no IPv6 (no link-local address whose
    // solicitations every other container on the bridge would handle); lo keeps ::1
    let v6 = d.sh("b", "ip -o -6 addr");
    assert!(v6.success(), "{v6}");
    assert!(
        !v6.stdout.contains("eth0"),
        "IPv6 on an IPv4-only network: {v6}"
    );
    assert!(v6.stdout.contains("::1/128"), "{v6}");
    // nor do the bridge ports on the daemon's side (no link-local address, no fe80::/64 or
    // ff00::/8 route per port: those lists grow with every container)
    let ports = d.ns(&["ip", "-o", "link", "show", "type", "veth"]);
    assert!(ports.stdout.contains("veth"), "no bridge port: {ports}");
    for args in [
        &["ip", "-6", "-o", "addr", "show"][..],
        &["ip", "-6", "route", "show", "table", "all"][..],
    ] {
        let got = d.ns(args);
        assert!(got.success(), "{got}");
        assert!(
            !got.stdout.contains("veth"),
            "IPv6 on a bridge port ({}): {got}",
            args.join(" ")
        );
    }

    // exec finds the command and the user in the running container's root
    assert_eq!(
        d.ok(&["exec", "-u", "nobody", "a", "id", "-u"]).trim(),
        "65534"
    );
    let missing = d.cli(&["exec", "a", "no-such-command"]);
    assert_eq!(missing.code, 127, "{missing}");
    // names resolve and the bridge carries traffic
    let ping = d.sh("b", "ping -c1 -W2 a");
    assert!(ping.success(), "{ping}");

    // cp sees the root and the volume; export the root alone
    wait_until("a wrote its files", Duration::from_secs(10), || {
        d.cli(&["exec", "a", "cat", "/data/f"]).success()
    });
    let out = d.dir().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    d.ok(&["cp", "a:/marker", &out.join("marker").display().to_string()]);
    d.ok(&["cp", "a:/data/f", &out.join("f").display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(out.join("marker")).unwrap_or_default(),
        "in-root\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("f")).unwrap_or_default(),
        "in-volume\n"
    );
    let tar = out.join("a.tar");
    d.ok(&["export", "-o", &tar.display().to_string(), "a"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .expect("run tar");
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.lines().any(|l| l == "marker"), "export: {list}");
    assert!(list.lines().any(|l| l == "bin/sh"), "export: {list}");
    assert!(
        !list.lines().any(|l| l == "data/f"),
        "export holds the volume's file: {list}"
    );
    assert_eq!(mounts(&d), base, "the daemon's mount table changed");

    // a daemon restart takes the sandboxes back through the containers' processes
    d.restart();
    assert_eq!(d.held_netns(), held, "the sandboxes held after the restart");
    d.ok(&["network", "create", "n2"]);
    d.ok(&["network", "connect", "n2", "b"]);
    let ip = d.ip_of("b", "n2");
    let addrs = d.sh("b", "ip -o -4 addr");
    assert!(
        addrs.stdout.contains(&format!("inet {ip}/")),
        "b's n2 address {ip}: {addrs}"
    );
    let ping = d.sh("b", "ping -c1 -W2 a");
    assert!(ping.success(), "after the restart: {ping}");

    d.ok(&["rm", "-f", "c", "a", "b"]);
    assert!(d.held_netns().is_empty(), "{:?}", d.held_netns());
    assert_eq!(mounts(&d), base, "the daemon's mount table changed");
}

/// Field `n` (0: state, 1: ppid, 3: session) after the command of `/proc/<pid>/stat`;
/// empty when the process is gone.
fn stat_field(pid: i64, n: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .and_then(|(_, r)| r.split(' ').nth(n))
        .unwrap_or_default()
        .to_string()
}
