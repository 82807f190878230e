//! The daemon's description of itself: `GET /info`.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::Engine;

/// The host's cgroup version as `/info` gives it: "2" when `/sys/fs/cgroup` is the
/// unified hierarchy (it has `cgroup.controllers`), else "1" (v1 or hybrid).
pub fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

impl Engine {
    /// GET /info: the counts of containers (running, stopped) and images, and what the
    /// host and the daemon are (kernel, host name, CPUs, root directory, runtime), with
    /// the cluster store and its hosts when the daemon has one (`--cluster-store`).
    pub async fn info(&self) -> Value {
        let list = self
            .list_containers(true, None, &HashMap::new())
            .await
            .unwrap_or_default();
        let running = list.iter().filter(|c| c["State"] == "running").count();
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let cluster = self.cluster_info().await;
        let mut plugins = vec!["bridge", "host", "null"];
        if cluster.is_some() {
            plugins.push("overlay");
        }
        let store_field = |k: &str| {
            cluster
                .as_ref()
                .and_then(|c| c["Store"][k].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let (store, advertise) = (store_field("store"), store_field("advertise"));
        let paused = list.iter().filter(|c| c["State"] == "paused").count();
        // what Docker says of a node outside any swarm
        let swarm = json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null});
        let stopped = list.len().saturating_sub(running + paused);
        let mut info = json!({
            "ClusterStore": store, "ClusterAdvertise": advertise, "Cluster": cluster,
            "ID": "", "Containers": list.len(), "ContainersRunning": running, "ContainersPaused": paused,
            "ContainersStopped": stopped, "Images": self.images.list().len(),
            "Driver": "overlay", "DriverStatus": [], "Plugins": {"Network": plugins, "Volume": [], "Log": ["json-file"]},
            "MemoryLimit": false, "SwapLimit": false, "CpuCfsPeriod": false, "CpuCfsQuota": false, "IPv4Forwarding": true,
            "Debug": false, "NFd": 0, "NGoroutines": 0, "SystemTime": chrono::Utc::now().to_rfc3339(), "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": cgroup_version(), "NEventsListener": 0, "KernelVersion": kernel,
            "OperatingSystem": "tether", "OSType": "linux", "Architecture": "x86_64", "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": 0, "DockerRootDir": self.config().root, "Name": host, "Labels": [], "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"), "Runtimes": {"runc": {"path": self.config().runtime}}, "DefaultRuntime": "runc", "FirewallBackend": {"Driver": "nftables"},
            "SecurityOptions": [], "Warnings": [],
        });
        info["Swarm"] = swarm;
        info
    }

    /// GET /nodes: the cluster's hosts in Docker's Node shape (Swarm API), from the
    /// cluster store (`--cluster-store`).
    ///
    /// Errors: as [`Engine::cluster_nodes`] (503 without a cluster store).
    pub async fn nodes(&self) -> Result<Value, crate::EngineError> {
        let nodes: Vec<Value> = self
            .cluster_nodes()
            .await?
            .into_iter()
            .map(|n| {
                json!({
                    "ID": n.record.id, "CreatedAt": n.record.joined,
                    "Description": {"Hostname": n.record.hostname},
                    "Status": {"State": n.state, "Addr": n.record.addr.to_string()},
                    "Spec": {"Role": "worker", "Availability": "active"},
                    "Self": n.is_self,
                })
            })
            .collect();
        Ok(Value::Array(nodes))
    }
}
