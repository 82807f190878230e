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
