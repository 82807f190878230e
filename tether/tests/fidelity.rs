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
