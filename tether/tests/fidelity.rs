//! Docker API fidelity (issue 13): answers SDKs rely on, through the API as an SDK calls
//! it.

mod common;

use common::{Daemon, IMAGE};
use serde_json::json;

/// `kill` (SIGKILL) returns once the container is dead: inspect right after says so and
/// `rm` needs no force, as dockerd's ContainerKill does.
#[test]
fn kill_returns_once_the_container_is_dead() {
    let d = Daemon::start();
    for i in 0..5 {
        let name = format!("k{i}");
        d.run_d(&["--name", &name, IMAGE, "sleep", "600"]);
        let (st, v) = d.api("POST", &format!("/containers/{name}/kill"), None);
        assert_eq!(st, 204, "{v}");
        let v = d.inspect(&name);
        assert_eq!(v["State"]["Running"], json!(false), "{}", v["State"]);
        assert_eq!(v["State"]["Status"], json!("exited"), "{}", v["State"]);
        let (st, v) = d.api("DELETE", &format!("/containers/{name}"), None);
        assert_eq!(st, 204, "rm right after kill: {v}");
    }
}

/// `HostConfig.LogConfig` (json-file), `Runtime`, `CpuRealtimeRuntime` and
/// `CpuRealtimePeriod` are in every inspect; an unknown log driver is a 400 naming it.
#[test]
fn host_config_carries_the_fields_sdks_read() {
    let d = Daemon::start();
    let (st, v) = d.api(
        "POST",
        "/containers/create?name=plain",
        Some(&json!({"Image": IMAGE, "Cmd": ["true"]})),
    );
    assert_eq!(st, 201, "{v}");
    let hc = &d.inspect("plain")["HostConfig"];
    assert_eq!(
        hc["LogConfig"],
        json!({"Type": "json-file", "Config": {}}),
        "{hc}"
    );
    assert_eq!(hc["Runtime"], json!("runc"));
    assert_eq!(hc["CpuRealtimeRuntime"], json!(0));
    assert_eq!(hc["CpuRealtimePeriod"], json!(0));
    let (st, v) = d.api(
        "POST",
        "/containers/create?name=given",
        Some(&json!({"Image": IMAGE, "Cmd": ["true"],
            "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}}}})),
    );
    assert_eq!(st, 201, "{v}");
    let hc = &d.inspect("given")["HostConfig"];
    assert_eq!(hc["LogConfig"]["Config"]["max-size"], json!("1m"), "{hc}");
    let (st, v) = d.api(
        "POST",
        "/containers/create?name=bad",
        Some(&json!({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"LogConfig": {"Type": "syslogx"}}})),
    );
    assert_eq!(st, 400, "{v}");
    let m = v["message"].as_str().unwrap_or_default();
    assert!(m.contains("syslogx") && m.contains("json-file"), "{m}");
    let (st, _) = d.api("GET", "/containers/bad/json", None);
    assert_eq!(st, 404, "a refused create left a container");
}

/// The endpoint settings SDKs send are honoured or kept: `MacAddress` from create (per
/// network and the container-wide legacy field) and from connect is the interface's MAC;
/// `DriverOpts` and `IPAMConfig.LinkLocalIPs` come back in inspect; `IPAM.Options` is
/// null as in Docker; a network name with a space is taken.
#[test]
fn endpoint_settings_and_network_names_as_docker() {
    let d = Daemon::start();
    let (st, v) = d.api(
        "POST",
        "/networks/create",
        Some(&json!({"Name": "my net", "IPAM": {"Config": [{"Subnet": "10.81.0.0/24"}]}})),
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = d.api("GET", "/networks/my%20net", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["IPAM"]["Options"], json!(null), "{}", v["IPAM"]);
    let (st, v) = d.api(
        "POST",
        "/networks/create",
        Some(&json!({"Name": "other", "IPAM": {"Config": [{"Subnet": "10.81.1.0/24"}]}})),
    );
    assert_eq!(st, 201, "{v}");

    let body = json!({
        "Image": IMAGE, "Cmd": ["sleep", "600"],
        "HostConfig": {"NetworkMode": "my net"},
        "NetworkingConfig": {"EndpointsConfig": {"my net": {
            "MacAddress": "02:42:0A:51:00:99",
            "DriverOpts": {"com.example.opt": "1"},
            "IPAMConfig": {"LinkLocalIPs": ["169.254.1.1"]}
        }}}
    });
    let (st, v) = d.api("POST", "/containers/create?name=m1", Some(&body));
    assert_eq!(st, 201, "{v}");
    let (st, v) = d.api("POST", "/containers/m1/start", None);
    assert_eq!(st, 204, "{v}");
    let ep = &d.inspect("m1")["NetworkSettings"]["Networks"]["my net"];
    assert_eq!(ep["MacAddress"], json!("02:42:0a:51:00:99"), "{ep}");
    assert_eq!(ep["DriverOpts"], json!({"com.example.opt": "1"}), "{ep}");
    assert_eq!(
        ep["IPAMConfig"]["LinkLocalIPs"],
        json!(["169.254.1.1"]),
        "{ep}"
    );
    let link = d.sh("m1", "cat /sys/class/net/eth0/address").stdout;
    assert_eq!(link.trim(), "02:42:0a:51:00:99");

    // the legacy container-wide field, for the first network
    let (st, v) = d.api(
        "POST",
        "/containers/create?name=m2",
        Some(
            &json!({"Image": IMAGE, "Cmd": ["sleep", "600"], "MacAddress": "02:00:00:00:00:42",
            "HostConfig": {"NetworkMode": "other"}}),
        ),
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = d.api("POST", "/containers/m2/start", None);
    assert_eq!(st, 204, "{v}");
    let link = d.sh("m2", "cat /sys/class/net/eth0/address").stdout;
    assert_eq!(link.trim(), "02:00:00:00:00:42");

    // connect with a MAC
    let (st, v) = d.api(
        "POST",
        "/networks/other/connect",
        Some(&json!({"Container": "m1", "EndpointConfig": {"MacAddress": "02:00:00:00:00:43"}})),
    );
    assert_eq!(st, 200, "{v}");
    let link = d.sh("m1", "cat /sys/class/net/eth1/address").stdout;
    assert_eq!(link.trim(), "02:00:00:00:00:43");
    let ep = &d.inspect("m1")["NetworkSettings"]["Networks"]["other"];
    assert_eq!(ep["MacAddress"], json!("02:00:00:00:00:43"), "{ep}");
}

/// A container its policy restarts is `restarting` between two runs, as in dockerd:
/// inspect says Restarting, rm without force is a 409, stop ends the loop.
#[test]
fn restart_always_is_restarting_between_runs() {
    let d = Daemon::start();
    d.run_d(&[
        "--name",
        "loop",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.2; exit 3",
    ]);
    let mut seen = false;
    common::wait_until(
        "a restarting state",
        std::time::Duration::from_secs(15),
        || {
            let s = d.inspect("loop")["State"].clone();
            if s["Status"] == json!("restarting") {
                assert_eq!(s["Restarting"], json!(true), "{s}");
                assert_eq!(s["ExitCode"], json!(3), "{s}");
                let (st, v) = d.api("DELETE", "/containers/loop", None);
                if d.inspect("loop")["State"]["Status"] == json!("restarting") {
                    assert_eq!(st, 409, "rm of a restarting container: {v}");
                    seen = true;
                }
            }
            seen
        },
    );
    d.ok(&["stop", "-t", "1", "loop"]);
    let s = d.inspect("loop")["State"].clone();
    assert_eq!(s["Status"], json!("exited"), "{s}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        d.inspect("loop")["State"]["Status"],
        json!("exited"),
        "restarted after stop"
    );
    let (st, v) = d.api("DELETE", "/containers/loop", None);
    assert_eq!(st, 204, "{v}");
}

/// `--link` as in Docker: on the default bridge the linking container gets the legacy
/// variables (ALIAS_NAME, ALIAS_PORT, ALIAS_PORT_<port>_<PROTO>..., ALIAS_ENV_...); on a
/// user-defined network the alias resolves by the embedded DNS, for the linking container
/// only.
#[test]
fn links_set_legacy_variables_and_resolve_on_user_networks() {
    let d = Daemon::start();
    d.run_d(&[
        "--name",
        "db",
        "--expose",
        "5432",
        "-e",
        "SECRET=s1",
        IMAGE,
        "sleep",
        "600",
    ]);
    let ip = d.ip_of("db", "bridge");
    d.run_d(&["--name", "web", "--link", "db:pg-db", IMAGE, "sleep", "600"]);
    let env = d.sh("web", "env | sort").stdout;
    for want in [
        "PG_DB_NAME=/web/pg-db".to_string(),
        format!("PG_DB_PORT=tcp://{ip}:5432"),
        format!("PG_DB_PORT_5432_TCP=tcp://{ip}:5432"),
        format!("PG_DB_PORT_5432_TCP_ADDR={ip}"),
        "PG_DB_PORT_5432_TCP_PORT=5432".to_string(),
        "PG_DB_PORT_5432_TCP_PROTO=tcp".to_string(),
        "PG_DB_ENV_SECRET=s1".to_string(),
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "{want} missing from:\n{env}"
        );
    }
    assert!(!env.contains("PG_DB_ENV_PATH"), "{env}");

    d.ok(&["network", "create", "--subnet", "10.82.0.0/24", "user"]);
    d.run_d(&["--name", "db2", "--network", "user", IMAGE, "sleep", "600"]);
    let ip2 = d.ip_of("db2", "user");
    d.run_d(&[
        "--name",
        "app",
        "--network",
        "user",
        "--link",
        "db2:database",
        IMAGE,
        "sleep",
        "600",
    ]);
    d.run_d(&[
        "--name",
        "other",
        "--network",
        "user",
        IMAGE,
        "sleep",
        "600",
    ]);
    let got = d.sh("app", "nslookup database 127.0.0.11").stdout;
    assert!(common::nslookup_addrs(&got).contains(&ip2), "{got}");
    let env = d.sh("app", "env").stdout;
    assert!(
        !env.contains("DATABASE_PORT"),
        "no legacy variables on user networks: {env}"
    );
    let got = d.sh("other", "nslookup database 127.0.0.11").stdout;
    assert!(
        !common::nslookup_addrs(&got).contains(&ip2),
        "the alias leaked to another container: {got}"
    );
}

/// Creates an exec of `cmd` in `ctr` with the extra create fields `extra`; returns its id.
fn exec_create(d: &Daemon, ctr: &str, cmd: &[&str], extra: serde_json::Value) -> String {
    let mut body = json!({"Cmd": cmd, "AttachStdout": true, "AttachStderr": true});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let (st, v) = d.api("POST", &format!("/containers/{ctr}/exec"), Some(&body));
    assert_eq!(st, 201, "{v}");
    v["Id"].as_str().unwrap_or_default().to_string()
}

/// Sends `method path` with `body` asking for an upgrade (as the docker CLI and SDKs
/// attach); returns the connection after the 101 head.
fn upgrade(
    d: &Daemon,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> std::os::unix::net::UnixStream {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .ok();
    let b = body.to_string();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: tether\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    )
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).expect("read head"), 1, "head: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// Writes `input` and reads until `needle` has come back, writing `input` again every
/// 0.5 s until then (the output side of an attach may be connected a moment after the
/// 101; what the process printed before that is not sent), for at most 20 s.
fn echo_until(s: &mut std::os::unix::net::UnixStream, input: &[u8], needle: &str) {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    s.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .ok();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    s.write_all(input).expect("write");
    while !String::from_utf8_lossy(&out).contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no echo of {needle:?} in 20 s: {out:?}"
        );
        match s.read(&mut buf) {
            Ok(0) => panic!("closed before {needle:?} came: {out:?}"),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                s.write_all(input).expect("write again");
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .ok();
}

/// Reads until the server closes the connection (or 20 s pass: a failure).
fn read_to_close(s: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("the server should close the connection");
    out
}

/// Exec output is framed by the start request's `Tty`, not create's (moby's exec start
/// router); a missing command is reported in the stream with exit code 127, a file that
/// is not executable with 126, an unknown user with 126 (not a 500), as Docker does.
#[test]
fn exec_framing_and_start_failures_as_docker() {
    let d = Daemon::start();
    d.run_d(&["--name", "ex", IMAGE, "sleep", "600"]);
    // created without a terminal, started with Tty: raw output
    let id = exec_create(&d, "ex", &["echo", "plain"], json!({}));
    let r = d.api_raw(
        "POST",
        &format!("/exec/{id}/start"),
        Some(&json!({"Tty": true})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "plain\n", "raw, not framed");
    // created with a terminal, started without Tty: multiplexed frames
    let id = exec_create(&d, "ex", &["echo", "framed"], json!({"Tty": true}));
    let r = d.api_raw(
        "POST",
        &format!("/exec/{id}/start"),
        Some(&json!({"Tty": false})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.body.as_bytes();
    assert!(b.len() > 8 && b[0] == 1 && b[1..4] == [0, 0, 0], "{b:?}");
    assert!(r.body.contains("framed"), "{}", r.body);

    let cases: [(&[&str], serde_json::Value, i64, &str); 4] = [
        (
            &["nosuchcmd"],
            json!({}),
            127,
            "executable file not found in $PATH",
        ),
        (
            &["/no/such/file"],
            json!({}),
            127,
            "no such file or directory",
        ),
        (&["/etc/passwd"], json!({}), 126, "permission denied"),
        (
            &["true"],
            json!({"User": "ghost"}),
            126,
            "unable to find user ghost",
        ),
    ];
    for (cmd, extra, code, text) in cases {
        let id = exec_create(&d, "ex", cmd, extra);
        let r = d.api_raw("POST", &format!("/exec/{id}/start"), Some(&json!({})));
        assert_eq!(r.status, 200, "{cmd:?}: {}", r.body);
        assert!(r.body.contains(text), "{cmd:?}: {}", r.body);
        assert!(r.body.contains("OCI runtime exec failed"), "{}", r.body);
        let (_, v) = d.api("GET", &format!("/exec/{id}/json"), None);
        assert_eq!(v["ExitCode"], json!(code), "{cmd:?}: {v}");
        assert_eq!(v["Running"], json!(false), "{v}");
    }
    // a command that exists still runs, and its own code is kept
    let id = exec_create(&d, "ex", &["sh", "-c", "exit 3"], json!({}));
    let r = d.api_raw("POST", &format!("/exec/{id}/start"), Some(&json!({})));
    assert_eq!(r.status, 200);
    let (_, v) = d.api("GET", &format!("/exec/{id}/json"), None);
    assert_eq!(v["ExitCode"], json!(3), "{v}");
}

/// The detach keys end the client's connection and leave the process running: the
/// default ctrl-p ctrl-q on an exec with stdin, and `detachKeys=ctrl-x` on an attach; a
/// bad spec is a 400 naming it.
#[test]
fn detach_keys_end_the_connection_not_the_process() {
    use std::io::Write;
    let d = Daemon::start();
    d.run_d(&["--name", "dk", "-i", IMAGE, "cat"]);
    // exec: cat, fed through stdin; ctrl-p ctrl-q detaches
    let id = exec_create(
        &d,
        "dk",
        &["cat"],
        json!({"AttachStdin": true, "Tty": false}),
    );
    let mut s = upgrade(
        &d,
        "POST",
        &format!("/exec/{id}/start"),
        &json!({"Tty": false}),
    );
    // the process got the input before the keys come
    echo_until(&mut s, b"echoed\n", "echoed");
    s.write_all(&[0x10, 0x11]).expect("write keys");
    read_to_close(&mut s);
    // still running a while later: its stdin was not closed by the detach
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (_, v) = d.api("GET", &format!("/exec/{id}/json"), None);
    assert_eq!(
        v["Running"],
        json!(true),
        "the exec runs on after a detach: {v}"
    );
    // attach with custom keys
    let mut s = upgrade(
        &d,
        "POST",
        "/containers/dk/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x",
        &json!({}),
    );
    // delivered to the container's stdin: `cat` wrote it to the container's log (the
    // attach output may be connected a moment after the 101, so the log is what is
    // checked here)
    s.write_all(b"via attach\n").expect("write");
    common::wait_until(
        "the input in the container's log",
        std::time::Duration::from_secs(20),
        || {
            d.api_raw("GET", "/containers/dk/logs?stdout=1", None)
                .body
                .contains("via attach")
        },
    );
    s.write_all(&[0x18]).expect("write key");
    read_to_close(&mut s);
    assert_eq!(d.inspect("dk")["State"]["Running"], json!(true));
    let (st, v) = d.api(
        "POST",
        "/containers/dk/attach?stream=1&stdin=1&detachKeys=ctrl-!!",
        None,
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ctrl-!!"),
        "{v}"
    );
}

/// `HostConfig.GroupAdd` gives the process those supplementary groups (numeric and by
/// name from the image's /etc/group); an unknown group name fails the start naming it.
#[test]
fn group_add_is_applied() {
    let d = Daemon::start();
    let out = d.ok(&[
        "run",
        "--rm",
        "--group-add",
        "4242",
        "--group-add",
        "nogroup",
        IMAGE,
        "id",
        "-G",
    ]);
    let groups: Vec<&str> = out.split_whitespace().collect();
    assert!(groups.contains(&"4242"), "{out}");
    // nogroup is 65534 in the test image's /etc/group
    assert!(groups.contains(&"65534"), "{out}");
    let plain = d.ok(&["run", "--rm", IMAGE, "id", "-G"]);
    assert!(
        !plain
            .split_whitespace()
            .any(|g| g == "4242" || g == "65534"),
        "{plain}"
    );
    let r = d.fails(&["run", "--rm", "--group-add", "nosuchgroup", IMAGE, "true"]);
    let all = r.all();
    assert!(all.contains("nosuchgroup"), "{all}");
}

/// `POST /volumes/prune` takes named volumes too for clients of API ≤ 1.41 (moby keeps
/// the old rule for them) and only anonymous ones from 1.42 on; both prunes report the
/// bytes they freed in `SpaceReclaimed`, as does container prune.
#[test]
fn prunes_follow_the_api_version_and_count_space() {
    let d = Daemon::start();
    for v in ["named-new", "named-old"] {
        d.ok(&["volume", "create", v]);
        d.ok(&[
            "run",
            "--rm",
            "-v",
            &format!("{v}:/data"),
            IMAGE,
            "sh",
            "-c",
            "head -c 10000 /dev/zero > /data/f",
        ]);
    }
    let (st, v) = d.api("POST", "/v1.43/volumes/prune", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["VolumesDeleted"],
        json!([]),
        "1.43 keeps named volumes: {v}"
    );
    let (st, v) = d.api("POST", "/v1.41/volumes/prune", None);
    assert_eq!(st, 200, "{v}");
    let gone: Vec<&str> = v["VolumesDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert!(
        gone.contains(&"named-new") && gone.contains(&"named-old"),
        "{v}"
    );
    assert!(v["SpaceReclaimed"].as_u64().unwrap_or(0) >= 20000, "{v}");
    // the data went: nothing left in the volumes' directory nor moved aside
    for n in ["named-new", "named-old"] {
        assert!(
            !d.root().join("volumes").join(n).exists(),
            "{n}'s directory"
        );
    }
    let aside = std::fs::read_dir(d.root().join("trash"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(aside, 0, "pruned volumes' data left in <root>/trash");
    d.ok(&[
        "run",
        "--name",
        "wrote",
        IMAGE,
        "sh",
        "-c",
        "head -c 50000 /dev/zero > /big",
    ]);
    let id = d.inspect("wrote")["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (st, v) = d.api("POST", "/containers/prune", None);
    assert_eq!(st, 200, "{v}");
    assert!(
        !id.is_empty() && v["ContainersDeleted"].to_string().contains(&id),
        "{v}"
    );
    assert!(v["SpaceReclaimed"].as_u64().unwrap_or(0) >= 50000, "{v}");
}

/// Every answer about a missing image is a 404 whose message the SDKs recognise as
/// "image not found" (docker-py looks for `No such image`): inspect, history, tag,
/// rmi, save and container create.
#[test]
fn missing_images_are_reported_in_dockers_words() {
    let d = Daemon::start();
    let cases = [
        ("GET", "/images/nosuch:1/json".to_string(), None),
        ("GET", "/images/nosuch:1/history".to_string(), None),
        (
            "POST",
            "/images/nosuch:1/tag?repo=other&tag=x".to_string(),
            None,
        ),
        ("DELETE", "/images/nosuch:1".to_string(), None),
        ("GET", "/images/nosuch:1/get".to_string(), None),
        (
            "POST",
            "/containers/create".to_string(),
            Some(json!({"Image": "nosuch:1", "Cmd": ["true"]})),
        ),
    ];
    for (m, p, body) in cases {
        let (st, v) = d.api(m, &p, body.as_ref());
        assert_eq!(st, 404, "{m} {p}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.contains("No such image: nosuch:1"), "{m} {p}: {msg}");
    }
}
