//! System routes: `/_ping` (GET and HEAD), `/version`, `/info`, `/system/df`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use hyper::{Method, Response};
use serde_json::{json, Value};
use tether_engine::Engine;

use super::Reply;
use crate::{full, json_response, Body, API_VERSION, MIN_API_VERSION};

/// `GET /_ping` (`OK`) and `HEAD /_ping` (no body), with the API version headers.
pub(crate) async fn ping(method: Method) -> Response<Body> {
    Response::builder()
        .header("Api-Version", API_VERSION)
        .header("Ostype", "linux")
        .header("Docker-Experimental", "false")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(full(if method == Method::HEAD { "" } else { "OK" }))
        .unwrap_or_else(|_| Response::new(full("OK")))
}

/// `GET /version`.
pub(crate) async fn version_route() -> Response<Body> {
    json_response(200, &version())
}

/// `GET /info`.
pub(crate) async fn info_route(State(engine): State<Arc<Engine>>) -> Response<Body> {
    json_response(200, &info(&engine).await)
}

/// `GET /system/df`.
pub(crate) async fn df(State(engine): State<Arc<Engine>>) -> Reply {
    Ok(json_response(200, &engine.system_df().await?))
}

fn version() -> Value {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    json!({
        "Platform": {"Name": "tether"},
        "Components": [{"Name": "Engine", "Version": env!("CARGO_PKG_VERSION"), "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": "amd64", "KernelVersion": kernel}}],
        "Version": env!("CARGO_PKG_VERSION"), "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": "rust", "Os": "linux", "Arch": "amd64", "KernelVersion": kernel, "BuildTime": "",
    })
}

async fn info(engine: &Engine) -> Value {
    let list = engine
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
        "ContainersStopped": list.len() - running, "Images": engine.images.list().len(),
        "Driver": "overlay", "DriverStatus": [], "Plugins": {"Network": ["bridge", "host", "null"], "Volume": [], "Log": ["json-file"]},
        "MemoryLimit": false, "SwapLimit": false, "CpuCfsPeriod": false, "CpuCfsQuota": false, "IPv4Forwarding": true,
        "Debug": false, "NFd": 0, "NGoroutines": 0, "SystemTime": chrono::Utc::now().to_rfc3339(), "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "NEventsListener": 0, "KernelVersion": kernel,
        "OperatingSystem": "tether", "OSType": "linux", "Architecture": "x86_64", "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": 0, "DockerRootDir": engine.config().root, "Name": host, "Labels": [], "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"), "Runtimes": {"runc": {"path": engine.config().runtime}}, "DefaultRuntime": "runc", "FirewallBackend": {"Driver": "nftables"},
        "SecurityOptions": [], "Warnings": [],
    })
}
