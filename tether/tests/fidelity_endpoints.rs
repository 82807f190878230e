//! Docker API fidelity (issue 13), the container endpoints tether lacked: Swarm's 503s,
//! `/plugins`, `/info`'s runtime and swarm fields, rename, pause/unpause, top, stats,
//! update, attach of an exited container's logs, legacy link removal, logs `until`.
//! Through the API as an SDK calls it, and the CLI where Docker has a command.

mod common;

use common::Daemon;
use serde_json::json;

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
