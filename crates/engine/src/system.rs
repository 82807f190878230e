//! The daemon's description of itself: `GET /info`.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::Engine;

impl Engine {
    /// GET /info: the counts of containers (running, stopped) and images, and what the
    /// host and the daemon are (kernel, host name, CPUs, root directory, runtime).
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
        json!({
            "ID": "", "Containers": list.len(), "ContainersRunning": running, "ContainersPaused": 0,
            "ContainersStopped": list.len() - running, "Images": self.images.list().len(),
            "Driver": "overlay", "DriverStatus": [], "Plugins": {"Network": ["bridge", "host", "null"], "Volume": [], "Log": ["json-file"]},
            "MemoryLimit": false, "SwapLimit": false, "CpuCfsPeriod": false, "CpuCfsQuota": false, "IPv4Forwarding": true,
            "Debug": false, "NFd": 0, "NGoroutines": 0, "SystemTime": chrono::Utc::now().to_rfc3339(), "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "NEventsListener": 0, "KernelVersion": kernel,
            "OperatingSystem": "tether", "OSType": "linux", "Architecture": "x86_64", "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": 0, "DockerRootDir": self.config().root, "Name": host, "Labels": [], "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"), "Runtimes": {"runc": {"path": self.config().runtime}}, "DefaultRuntime": "runc", "FirewallBackend": {"Driver": "nftables"},
            "SecurityOptions": [], "Warnings": [],
        })
    }
}
