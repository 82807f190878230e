//! Docker API fidelity (issue 13), the container endpoints tether lacked: Swarm's 503s,
//! `/plugins`, `/info`'s runtime and swarm fields, rename, pause/unpause, top, stats,
//! update, attach of an exited container's logs, legacy link removal, logs `until`.
//! Through the API as an SDK calls it, and the CLI where Docker has a command.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{nslookup_addrs, wait_until, Daemon, IMAGE};
use serde_json::{json, Value};

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// Every Swarm route answers Docker's 503 for any method, with and without the version
/// prefix; `/plugins` is `[]`; `/info` names the runtime, the cgroup version of the host
/// and an inactive swarm.
#[test]
fn swarm_plugins_and_info() {
    let d = Daemon::start();
    for (method, path) in [
        ("GET", "/swarm"),
        ("POST", "/swarm/init"),
        ("POST", "/swarm/leave?force=1"),
        ("GET", "/swarm/unlockkey"),
        ("GET", "/services"),
        ("POST", "/services/create"),
        ("GET", "/services/web"),
        ("DELETE", "/services/web"),
        ("GET", "/services/web/logs"),
        ("GET", "/nodes"),
        ("GET", "/nodes/abc"),
        ("DELETE", "/nodes/abc"),
        ("GET", "/tasks"),
        ("GET", "/tasks/t1"),
        ("GET", "/secrets"),
        ("POST", "/secrets/create"),
        ("GET", "/configs"),
        ("DELETE", "/configs/c1"),
    ] {
        for prefix in ["", "/v1.41", "/v1.47"] {
            let p = format!("{prefix}{path}");
            let body = (method == "POST").then(|| json!({}));
            let (st, v) = d.api(method, &p, body.as_ref());
            assert_eq!(st, 503, "{method} {p}: {v}");
            assert_eq!(v["message"], json!(NOT_MANAGER), "{method} {p}");
        }
    }
    let (st, v) = d.api("GET", "/v1.41/plugins", None);
    assert_eq!((st, v), (200, json!([])));
    let (st, info) = d.api("GET", "/info", None);
    assert_eq!(st, 200);
    assert_eq!(info["Runtimes"]["runc"]["path"], json!("runc"), "{info}");
    assert_eq!(info["DefaultRuntime"], json!("runc"));
    assert_eq!(info["CgroupDriver"], json!("cgroupfs"));
    let host = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    assert_eq!(info["CgroupVersion"], json!(host));
    assert_eq!(info["Swarm"]["LocalNodeState"], json!("inactive"));
    assert_eq!(info["Swarm"]["ControlAvailable"], json!(false));
    assert_eq!(info["Swarm"]["NodeID"], json!(""));
}

/// busybox `nslookup NAME` run in `from`, bounded by the container's `timeout`.
fn nslookup(d: &Daemon, from: &str, name: &str) -> String {
    d.sh(from, &format!("timeout 20 nslookup {name} 2>&1"))
        .all()
}

/// The events of the daemon so far (`until` now), as JSON objects.
fn events(d: &Daemon, filters: &str) -> Vec<Value> {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs() + 1)
        .unwrap_or(0);
    let r = d.api_raw(
        "GET",
        &format!("/events?since=0&until={until}&filters={filters}"),
        None,
    );
    assert_eq!(r.status, 200);
    r.body
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A cgroup v1 controller file of container `id` (`/sys/fs/cgroup/<ctl>/tether/<id>/<file>`),
/// trimmed; empty when absent.
fn cgroup_file(ctl: &str, id: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/tether/{id}/{file}"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `rename` of a running container on two user networks: the embedded DNS answers the
/// new name and no longer the old one on both; inspect and the event say so; a stopped
/// container renames too (CLI); taken, invalid, empty names and unknown containers are
/// refused with Docker's statuses.
#[test]
fn rename_moves_the_dns_name_on_every_network() {
    let d = Daemon::start();
    d.ok(&["network", "create", "rn1"]);
    d.ok(&["network", "create", "rn2"]);
    let id = d.run_d(&["--name", "old", "--network", "rn1", IMAGE, "sleep", "600"]);
    d.ok(&["network", "connect", "rn2", "old"]);
    d.run_d(&["--name", "peer1", "--network", "rn1", IMAGE, "sleep", "600"]);
    d.run_d(&["--name", "peer2", "--network", "rn2", IMAGE, "sleep", "600"]);
    let ip1 = d.ip_of("old", "rn1");
    let ip2 = d.ip_of("old", "rn2");
    assert_eq!(
        nslookup_addrs(&nslookup(&d, "peer1", "old")),
        vec![ip1.clone()]
    );

    let (st, v) = d.api("POST", "/v1.41/containers/old/rename?name=new", None);
    assert_eq!(st, 204, "{v}");
    let v = d.inspect("new");
    assert_eq!(v["Name"], json!("/new"));
    assert_eq!(v["Id"], json!(id));
    let (st, _) = d.api("GET", "/containers/old/json", None);
    assert_eq!(st, 404);
    for (peer, ip) in [("peer1", &ip1), ("peer2", &ip2)] {
        let out = nslookup(&d, peer, "new");
        assert_eq!(nslookup_addrs(&out), vec![ip.clone()], "{peer}: {out}");
        let out = nslookup(&d, peer, "old");
        assert!(
            out.contains("can't find old") && nslookup_addrs(&out).is_empty(),
            "{peer} still resolves the old name: {out}"
        );
    }
    let ev = events(&d, "%7B%22event%22%3A%5B%22rename%22%5D%7D");
    assert!(
        ev.iter().any(|e| e["Actor"]["ID"] == json!(id)
            && e["Actor"]["Attributes"]["name"] == json!("new")
            && e["Actor"]["Attributes"]["oldName"] == json!("/old")),
        "{ev:?}"
    );

    // refusals
    let (st, v) = d.api("POST", "/containers/new/rename?name=peer1", None);
    assert_eq!(st, 409, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("/peer1"),
        "{v}"
    );
    let (st, v) = d.api("POST", "/containers/new/rename?name=bad%20name!", None);
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("bad name!"),
        "{v}"
    );
    let (st, v) = d.api("POST", "/containers/new/rename?name=", None);
    assert_eq!(st, 400, "{v}");
    let (st, v) = d.api("POST", "/containers/nosuch/rename?name=x", None);
    assert_eq!(st, 404, "{v}");
    assert_eq!(d.inspect("new")["Name"], json!("/new"));

    // a legacy link to the renamed container follows it (default bridge, /etc/hosts)
    d.run_d(&["--name", "target", IMAGE, "sleep", "600"]);
    d.run_d(&[
        "--name",
        "linker",
        "--link",
        "target:tgt",
        IMAGE,
        "sleep",
        "600",
    ]);
    let (st, v) = d.api("POST", "/containers/target/rename?name=target2", None);
    assert_eq!(st, 204, "{v}");
    d.ok(&["restart", "-t", "0", "linker"]);
    let hosts = d.ok(&["exec", "linker", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains("tgt") && hosts.contains("target2"),
        "{hosts}"
    );

    // a stopped container, through the CLI
    d.ok(&["create", "--name", "idle", IMAGE, "true"]);
    d.ok(&["rename", "idle", "idle2"]);
    assert_eq!(d.inspect("idle2")["Name"], json!("/idle2"));
    let o = d.fails(&["rename", "idle2", "peer2"]);
    assert!(o.all().contains("already in use"), "{o}");
}

/// `pause`/`unpause` freeze and thaw the container's cgroup through runc; inspect, the
/// list, `/info` and the CLI say "paused"; Docker's 409s; stop, kill and `rm -f` of a
/// paused container work.
#[test]
fn pause_unpause_and_stopping_a_paused_container() {
    let mut d = Daemon::start();
    let id = d.run_d(&["--name", "p", IMAGE, "sleep", "600"]);
    let freezer = || cgroup_file("freezer", &id, "freezer.state");
    let v1 = std::path::Path::new("/sys/fs/cgroup/freezer").exists();
    let (st, v) = d.api("POST", "/v1.41/containers/p/pause", None);
    assert_eq!(st, 204, "{v}");
    let s = &d.inspect("p")["State"];
    assert_eq!(s["Status"], json!("paused"), "{s}");
    assert_eq!(s["Paused"], json!(true));
    assert_eq!(s["Running"], json!(true));
    if v1 {
        assert_eq!(freezer(), "FROZEN");
    }
    let (_, list) = d.api("GET", "/containers/json", None);
    let row = list
        .as_array()
        .and_then(|l| l.iter().find(|c| c["Id"] == json!(id)))
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["State"], json!("paused"), "{row}");
    assert!(
        row["Status"].as_str().unwrap_or("").ends_with("(Paused)"),
        "{row}"
    );
    let (_, f) = d.api(
        "GET",
        "/containers/json?filters=%7B%22status%22%3A%5B%22paused%22%5D%7D",
        None,
    );
    assert_eq!(f.as_array().map(Vec::len), Some(1), "{f}");
    let (_, info) = d.api("GET", "/info", None);
    assert_eq!(info["ContainersPaused"], json!(1), "{info}");
    assert_eq!(info["ContainersRunning"], json!(0), "{info}");
    let (st, v) = d.api("POST", "/containers/p/pause", None);
    assert_eq!(st, 409, "{v}");
    let (st, v) = d.api(
        "POST",
        "/containers/p/exec",
        Some(&json!({"Cmd": ["true"], "AttachStdout": true})),
    );
    assert_eq!(st, 409, "exec into a paused container: {v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("paused"),
        "{v}"
    );

    let ev = events(&d, "%7B%22container%22%3A%5B%22p%22%5D%7D");
    let actions: Vec<&str> = ev.iter().filter_map(|e| e["Action"].as_str()).collect();
    assert!(actions.contains(&"pause"), "{actions:?}");

    // the pause survives a daemon restart
    d.restart();
    let s = &d.inspect("p")["State"];
    assert_eq!(s["Status"], json!("paused"), "after a daemon restart: {s}");
    if v1 {
        assert_eq!(freezer(), "FROZEN");
    }

    let (st, v) = d.api("POST", "/containers/p/unpause", None);
    assert_eq!(st, 204, "{v}");
    let s = &d.inspect("p")["State"];
    assert_eq!(s["Status"], json!("running"), "{s}");
    assert_eq!(s["Paused"], json!(false));
    if v1 {
        assert_eq!(freezer(), "THAWED");
    }
    let (st, v) = d.api("POST", "/containers/p/unpause", None);
    assert_eq!(st, 409, "{v}");
    d.ok(&["create", "--name", "c", IMAGE, "true"]);
    let (st, v) = d.api("POST", "/containers/c/pause", None);
    assert_eq!(st, 409, "{v}");
    let (st, v) = d.api("POST", "/containers/nosuch/pause", None);
    assert_eq!(st, 404, "{v}");
    let ev = events(&d, "%7B%22container%22%3A%5B%22p%22%5D%7D");
    let actions: Vec<&str> = ev.iter().filter_map(|e| e["Action"].as_str()).collect();
    assert!(actions.contains(&"unpause"), "{actions:?}");

    // stop of a paused container (CLI pause)
    assert_eq!(d.ok(&["pause", "p"]), "p");
    let t = Instant::now();
    d.ok(&["stop", "-t", "1", "p"]);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    let s = &d.inspect("p")["State"];
    assert_eq!(s["Status"], json!("exited"), "{s}");
    assert_eq!(s["Paused"], json!(false));

    // kill and rm -f of paused containers
    d.run_d(&["--name", "k", IMAGE, "sleep", "600"]);
    d.ok(&["pause", "k"]);
    let (st, v) = d.api("POST", "/containers/k/kill", None);
    assert_eq!(st, 204, "{v}");
    wait_until("k exits", Duration::from_secs(10), || {
        d.inspect("k")["State"]["Status"] == json!("exited")
    });
    d.run_d(&["--name", "r", IMAGE, "sleep", "600"]);
    d.ok(&["pause", "r"]);
    let (st, v) = d.api("DELETE", "/containers/r?force=1", None);
    assert_eq!(st, 204, "{v}");
    let (st, _) = d.api("GET", "/containers/r/json", None);
    assert_eq!(st, 404);
    let o = d.fails(&["unpause", "c"]);
    assert!(o.all().contains("is not paused"), "{o}");
}

/// `top`: the container's processes with ps's titles, with default and given ps
/// arguments; 409 for a container that does not run; the CLI prints the table.
#[test]
fn top_lists_the_container_processes() {
    let d = Daemon::start();
    d.run_d(&["--name", "t", IMAGE, "sh", "-c", "sleep 601 & sleep 602"]);
    let (st, v) = d.api("GET", "/v1.41/containers/t/top", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["Titles"],
        json!(["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"])
    );
    let cmds: Vec<String> = v["Processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p[7].as_str().unwrap_or("").to_string())
        .collect();
    assert!(cmds.iter().any(|c| c == "sleep 601"), "{cmds:?}");
    assert!(cmds.iter().any(|c| c == "sleep 602"), "{cmds:?}");
    assert_eq!(
        cmds.len(),
        2,
        "the two sleeps (sh execs the last): {cmds:?}"
    );
    let pid = d.inspect("t")["State"]["Pid"].to_string();
    assert!(
        v["Processes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p[1].as_str() == Some(pid.as_str())),
        "init pid {pid} missing: {v}"
    );
    let (st, v) = d.api("GET", "/containers/t/top?ps_args=aux", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["Titles"][0], json!("USER"), "{v}");
    assert_eq!(v["Processes"].as_array().map(Vec::len), Some(2), "{v}");
    let out = d.ok(&["top", "t"]);
    assert!(out.starts_with("UID") && out.contains("sleep 601"), "{out}");
    d.ok(&["create", "--name", "idle", IMAGE, "true"]);
    let (st, v) = d.api("GET", "/containers/idle/top", None);
    assert_eq!(st, 409, "{v}");
    let (st, _) = d.api("GET", "/containers/nosuch/top", None);
    assert_eq!(st, 404);
}

/// Reads a streamed answer of `path` until `n` JSON lines came, then hangs up.
fn stream_lines(d: &Daemon, path: &str, n: usize, limit: Duration) -> Vec<Value> {
    let mut s = UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(limit)).ok();
    let req = format!("GET {path} HTTP/1.1\r\nHost: tether\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let deadline = Instant::now() + limit;
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let vals: Vec<Value> = text
            .split(['\n', '\r'])
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.is_object())
            .collect();
        if vals.len() >= n || Instant::now() > deadline {
            return vals;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return vals,
            Ok(k) => raw.extend_from_slice(&buf[..k]),
        }
    }
}

/// `stats`: Docker's shape with real numbers (cpu, memory, pids, eth0 counters after
/// a ping) for a running container, `precpu_stats` filled unless one-shot, one object a
/// second when streaming, zeroed stats for a stopped container, and `stats --no-stream`.
#[test]
fn stats_have_docker_shape_and_real_numbers() {
    let d = Daemon::start();
    d.ok(&["network", "create", "sn"]);
    let id = d.run_d(&["--name", "s", "--network", "sn", IMAGE, "sleep", "600"]);
    d.run_d(&["--name", "peer", "--network", "sn", IMAGE, "sleep", "600"]);
    let o = d.sh("s", "ping -c 3 -W 2 peer");
    assert!(o.success(), "{o}");
    let (st, v) = d.api("GET", "/v1.41/containers/s/stats?stream=false", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["name"], json!("/s"));
    assert_eq!(v["id"], json!(id));
    assert_ne!(v["read"], json!("0001-01-01T00:00:00Z"));
    assert_ne!(v["preread"], json!("0001-01-01T00:00:00Z"), "{v}");
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    assert!(n("/cpu_stats/cpu_usage/total_usage") > 0, "{v}");
    assert!(n("/cpu_stats/system_cpu_usage") > 0, "{v}");
    assert!(n("/cpu_stats/online_cpus") >= 1, "{v}");
    assert!(n("/precpu_stats/system_cpu_usage") > 0, "{v}");
    assert!(
        n("/cpu_stats/system_cpu_usage") > n("/precpu_stats/system_cpu_usage"),
        "{v}"
    );
    assert!(
        v["cpu_stats"]["cpu_usage"]["percpu_usage"].is_array(),
        "{v}"
    );
    assert!(v["cpu_stats"]["throttling_data"]["periods"].is_u64(), "{v}");
    assert!(n("/memory_stats/usage") > 0, "{v}");
    assert!(n("/memory_stats/limit") > 0, "{v}");
    assert!(v["memory_stats"]["stats"].is_object(), "{v}");
    assert!(n("/pids_stats/current") >= 1, "{v}");
    assert!(v["blkio_stats"].is_object(), "{v}");
    for k in ["rx_bytes", "rx_packets", "tx_bytes", "tx_packets"] {
        assert!(n(&format!("/networks/eth0/{k}")) > 0, "{k}: {v}");
    }
    for k in ["rx_errors", "rx_dropped", "tx_errors", "tx_dropped"] {
        assert!(v["networks"]["eth0"][k].is_u64(), "{k}: {v}");
    }
    assert!(v["networks"].get("lo").is_none(), "{v}");

    let (st, v) = d.api("GET", "/containers/s/stats?stream=0&one-shot=1", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["preread"], json!("0001-01-01T00:00:00Z"), "{v}");
    assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], json!(0));
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64() > Some(0));

    // streaming: one object a second until the client goes
    let t = Instant::now();
    let vals = stream_lines(&d, "/containers/s/stats", 3, Duration::from_secs(15));
    assert_eq!(vals.len(), 3, "{vals:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(1800),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(vals[1]["preread"], vals[0]["read"]);

    let out = d.ok(&["stats", "--no-stream", "s"]);
    assert!(
        out.starts_with("CONTAINER ID") && out.contains(&id[..12]),
        "{out}"
    );
    assert!(out.contains(" s "), "{out}");

    // a stopped container: zeroed
    d.ok(&["stop", "-t", "0", "s"]);
    let (st, v) = d.api("GET", "/containers/s/stats?stream=false", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["read"], json!("0001-01-01T00:00:00Z"), "{v}");
    assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], json!(0));
    assert_eq!(v["name"], json!("/s"));
    let (st, _) = d.api("GET", "/containers/nosuch/stats?stream=false", None);
    assert_eq!(st, 404);
}

/// `update`: the resources reach the running container's cgroups (runc update) and
/// HostConfig; the restart policy is kept and used by the restart logic; bad values are
/// 400s naming them; `tether update`.
#[test]
fn update_applies_resources_and_restart_policy() {
    let d = Daemon::start();
    let id = d.run_d(&["--name", "u", IMAGE, "sleep", "600"]);
    let body = json!({"Memory": 67108864, "MemorySwap": 134217728, "CpuShares": 512,
        "CpuQuota": 50000, "CpuPeriod": 100000, "PidsLimit": 50});
    let (st, v) = d.api("POST", "/v1.41/containers/u/update", Some(&body));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"Warnings": []}));
    let hc = &d.inspect("u")["HostConfig"];
    assert_eq!(hc["Memory"], json!(67108864), "{hc}");
    assert_eq!(hc["MemorySwap"], json!(134217728), "{hc}");
    assert_eq!(hc["CpuShares"], json!(512), "{hc}");
    assert_eq!(hc["CpuQuota"], json!(50000), "{hc}");
    assert_eq!(hc["CpuPeriod"], json!(100000), "{hc}");
    assert_eq!(hc["PidsLimit"], json!(50), "{hc}");
    if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        assert_eq!(
            cgroup_file("memory", &id, "memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(cgroup_file("cpu", &id, "cpu.shares"), "512");
        assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup_file("pids", &id, "pids.max"), "50");
    }
    let (_, v) = d.api(
        "GET",
        "/containers/u/stats?stream=false&one-shot=true",
        None,
    );
    assert_eq!(v["memory_stats"]["limit"], json!(67108864), "{v}");
    assert_eq!(v["pids_stats"]["limit"], json!(50), "{v}");

    // bad values
    for (body, what) in [
        (json!({"Memory": 1000}), "1000"),
        (json!({"CpuShares": -5}), "-5"),
        (json!({"PidsLimit": -3}), "-3"),
        (json!({"Memory": 67108864, "MemorySwap": 1000}), "1000"),
        (json!({"Memory": "lots"}), "lots"),
    ] {
        let (st, v) = d.api("POST", "/containers/u/update", Some(&body));
        assert_eq!(st, 400, "{body}: {v}");
        let m = v["message"].as_str().unwrap_or_default();
        assert!(m.contains(what), "{body}: {m}");
    }
    assert_eq!(d.inspect("u")["HostConfig"]["CpuShares"], json!(512));
    let (st, _) = d.api(
        "POST",
        "/containers/nosuch/update",
        Some(&json!({"CpuShares": 2})),
    );
    assert_eq!(st, 404);

    // the CLI
    assert_eq!(d.ok(&["update", "--cpu-shares", "256", "u"]), "u");
    assert_eq!(d.inspect("u")["HostConfig"]["CpuShares"], json!(256));

    // the limits are the container's at its next start too, as are those of create
    d.ok(&["restart", "-t", "0", "u"]);
    let (st, v) = d.api(
        "POST",
        "/containers/create?name=m",
        Some(&json!({"Image": IMAGE, "Cmd": ["sleep", "600"],
            "HostConfig": {"Memory": 33554432, "PidsLimit": 20}})),
    );
    assert_eq!(st, 201, "{v}");
    let m = v["Id"].as_str().unwrap_or_default().to_string();
    let (st, v) = d.api("POST", "/containers/m/start", None);
    assert_eq!(st, 204, "{v}");
    if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        assert_eq!(
            cgroup_file("memory", &id, "memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(cgroup_file("cpu", &id, "cpu.shares"), "256");
        assert_eq!(cgroup_file("pids", &id, "pids.max"), "50");
        assert_eq!(
            cgroup_file("memory", &m, "memory.limit_in_bytes"),
            "33554432"
        );
        assert_eq!(cgroup_file("pids", &m, "pids.max"), "20");
    }

    // the restart policy, given after create, is the one the restart logic follows
    d.ok(&[
        "create",
        "--name",
        "f",
        IMAGE,
        "sh",
        "-c",
        "sleep 1; exit 3",
    ]);
    let (st, v) = d.api(
        "POST",
        "/containers/f/update",
        Some(&json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        d.inspect("f")["HostConfig"]["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    d.ok(&["start", "f"]);
    wait_until("f restarted by its policy", Duration::from_secs(30), || {
        d.inspect("f")["RestartCount"].as_i64() >= Some(1)
    });
}

/// `attach` without `stream`: the logs of an exited container, then the end; nothing at
/// once without `logs`.
#[test]
fn attach_without_stream_returns_the_logs_and_ends() {
    let d = Daemon::start();
    let o = d.cli(&[
        "run",
        "--name",
        "e",
        IMAGE,
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    assert!(o.success(), "{o}");
    let t = Instant::now();
    let r = d.api_raw(
        "POST",
        "/v1.41/containers/e/attach?stream=0&logs=1&stdout=1&stderr=1",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("one") && r.body.contains("two"),
        "{:?}",
        r.body
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let r = d.api_raw(
        "POST",
        "/containers/e/attach?stream=0&logs=1&stdout=1&stderr=0",
        None,
    );
    assert!(
        r.body.contains("one") && !r.body.contains("two"),
        "{:?}",
        r.body
    );
    let t = Instant::now();
    let r = d.api_raw(
        "POST",
        "/containers/e/attach?stream=0&logs=0&stdout=1&stderr=1",
        None,
    );
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("one"), "{:?}", r.body);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

/// `logs?until=` (RFC 3339 or Unix seconds) leaves out what came later and ends a
/// follow; `since` the earlier.
#[test]
fn logs_until_and_since() {
    let d = Daemon::start();
    d.run_d(&[
        "--name",
        "l",
        IMAGE,
        "sh",
        "-c",
        "echo early; sleep 2; echo late; sleep 600",
    ]);
    wait_until("the late line", Duration::from_secs(15), || {
        d.api_raw("GET", "/containers/l/logs?stdout=1", None)
            .body
            .contains("late")
    });
    let r = d.api_raw("GET", "/containers/l/logs?stdout=1&timestamps=1", None);
    let stamps: Vec<chrono::DateTime<chrono::FixedOffset>> = r
        .body
        .lines()
        // after each line's 8-byte stdcopy header: "TIME TEXT"
        .filter_map(|l| l.get(8..)?.split_whitespace().next())
        .filter_map(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
        .collect();
    assert_eq!(stamps.len(), 2, "{:?}", r.body);
    let mid = stamps[0] + chrono::Duration::milliseconds(1000);
    let mid_rfc = mid.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mid_unix = format!("{:.3}", mid.timestamp_millis() as f64 / 1000.0);
    for until in [mid_rfc.as_str(), mid_unix.as_str()] {
        let q = url_escape(until);
        let r = d.api_raw(
            "GET",
            &format!("/containers/l/logs?stdout=1&until={q}"),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.body.contains("early") && !r.body.contains("late"),
            "until {until}: {:?}",
            r.body
        );
        let r = d.api_raw(
            "GET",
            &format!("/containers/l/logs?stdout=1&since={q}"),
            None,
        );
        assert!(
            !r.body.contains("early") && r.body.contains("late"),
            "since {until}: {:?}",
            r.body
        );
    }
    // a follow ends at `until` although the container goes on
    let soon = chrono::Utc::now().timestamp() + 1;
    let t = Instant::now();
    let r = d.api_raw(
        "GET",
        &format!("/containers/l/logs?stdout=1&follow=1&until={soon}"),
        None,
    );
    assert!(r.body.contains("late"), "{:?}", r.body);
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    let (st, v) = d.api("GET", "/containers/l/logs?stdout=1&until=yesterday", None);
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("yesterday"),
        "{v}"
    );
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `DELETE /containers/{name}?link=1` removes the legacy link `/PARENT/ALIAS` (slashes
/// in the path or percent-encoded, and `rm --link`): the alias leaves the parent's
/// /etc/hosts and HostConfig.Links; both containers stay.
#[test]
fn delete_with_link_removes_only_the_link() {
    let d = Daemon::start();
    d.run_d(&["--name", "db", IMAGE, "sleep", "600"]);
    d.run_d(&[
        "--name",
        "web",
        "--link",
        "db:lnkone",
        "--link",
        "db:lnktwo",
        "--link",
        "db:lnkthree",
        IMAGE,
        "sleep",
        "600",
    ]);
    let hosts = d.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains("lnkone") && hosts.contains("lnktwo") && hosts.contains("lnkthree"),
        "{hosts}"
    );
    let (st, v) = d.api("DELETE", "/v1.41/containers//web/lnkone?link=1", None);
    assert_eq!(st, 204, "{v}");
    let (st, v) = d.api("DELETE", "/containers/%2Fweb%2Flnktwo?link=true", None);
    assert_eq!(st, 204, "{v}");
    let hosts = d.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(
        !hosts.contains("lnkone") && !hosts.contains("lnktwo") && hosts.contains("lnkthree"),
        "{hosts}"
    );
    let links = d.inspect("web")["HostConfig"]["Links"].to_string();
    assert!(
        !links.contains("lnkone") && !links.contains("lnktwo") && links.contains("lnkthree"),
        "{links}"
    );
    assert_eq!(d.ok(&["rm", "--link", "/web/lnkthree"]), "/web/lnkthree");
    let hosts = d.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("lnkthree"), "{hosts}");
    for c in ["db", "web"] {
        assert_eq!(d.inspect(c)["State"]["Running"], json!(true));
    }
    let (st, v) = d.api("DELETE", "/containers/web?link=1", None);
    assert_eq!(st, 409, "{v}");
    let (st, v) = d.api("DELETE", "/containers//web/nosuch?link=1", None);
    assert_eq!(st, 404, "{v}");
    let (st, v) = d.api("DELETE", "/containers//nosuch/lnkone?link=1", None);
    assert_eq!(st, 404, "{v}");
}
