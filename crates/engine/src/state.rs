//! The engine's persistent objects and their atomic storage under `--root`.
//!
//! Layout: `<root>/networks/<id>.json` and `<root>/containers/<id>/state.json`. Every write
//! goes to a temporary file in the same directory, is fsynced and renamed over the old one,
//! so a crash leaves either the old or the new state, never a torn file.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tether_net::firewall::PortMapping;
use tether_net::ipam::Pool;

use crate::EngineError;

/// A network (Docker API "Network" object).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    /// 64-hex id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// "bridge", "host", "null" or "overlay".
    pub driver: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// `--internal`.
    pub internal: bool,
    /// `--ipv6`: the network has an IPv6 subnet.
    pub enable_ipv6: bool,
    /// `--ipv4` (default true; `--ipv4=false --ipv6` makes an IPv6-only network, whose
    /// `pool` is None).
    #[serde(default = "yes")]
    pub enable_ipv4: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Driver options (`--opt`).
    pub options: HashMap<String, String>,
    /// The bridge interface (bridge driver).
    pub bridge: Option<String>,
    /// The bridge's pinned MAC (aa:bb:..).
    pub bridge_mac: Option<[u8; 6]>,
    /// IPv4 pool and leases (bridge driver; None for host, null and IPv6-only networks).
    pub pool: Option<Pool>,
    /// IPv6 pool and leases of a dual-stack network (`--ipv6`).
    #[serde(default)]
    pub pool6: Option<tether_net::ipam::Pool6>,
    /// Whether the IPv4 subnet was given by the user (`--subnet`): only then may
    /// containers ask for static addresses, as in Docker.
    #[serde(default)]
    pub subnet_given: bool,
    /// Whether the embedded DNS serves this network (user-defined bridges only).
    pub dns: bool,
    /// One of the predefined networks (bridge, host, none): cannot be removed.
    pub builtin: bool,
}

impl Network {
    /// Docker's `Scope`: `"global"` for networks kept in the cluster store (driver
    /// overlay), `"local"` for the rest.
    pub fn scope(&self) -> &'static str {
        if self.driver == "overlay" {
            "global"
        } else {
            "local"
        }
    }

    /// The network's pools as its IPAM takes them ([`tether_net::ipamapi::Ipam`]).
    pub(crate) fn pools_mut(&mut self) -> tether_net::ipamapi::NetworkPools<'_> {
        tether_net::ipamapi::NetworkPools {
            network_id: &self.id,
            network: &self.name,
            v4: self.pool.as_mut(),
            v6: self.pool6.as_mut(),
        }
    }
}

fn yes() -> bool {
    true
}

/// A requested attachment of a container to a network (kept while the container is stopped).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Attachment {
    /// Network id.
    pub network_id: String,
    /// `--network-alias` / `--alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6`.
    #[serde(default)]
    pub ipv6: Option<std::net::Ipv6Addr>,
    /// Links given on connect (`--link`).
    pub links: Vec<String>,
    /// `--gw-priority` (EndpointSettings.GwPriority, API 1.48): the endpoint with the
    /// highest priority gives the container its default routes.
    #[serde(default)]
    pub gw_priority: i64,
    /// `--mac-address` (EndpointSettings.MacAddress, or the container-wide
    /// Config.MacAddress for the first network): the interface's MAC instead of the one
    /// derived from its IPv4 address.
    #[serde(default)]
    pub mac: Option<String>,
    /// EndpointSettings.DriverOpts, kept and shown as given.
    #[serde(default)]
    pub driver_opts: std::collections::HashMap<String, String>,
    /// EndpointSettings.IPAMConfig.LinkLocalIPs, kept and shown as given.
    #[serde(default)]
    pub link_local_ips: Vec<String>,
}

/// A live endpoint of a running container on a network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoint {
    /// 64-hex endpoint id.
    pub id: String,
    /// IPv4 address; None on an IPv6-only network.
    pub ip: Option<Ipv4Addr>,
    /// Prefix length of the IPv4 subnet (0 without one).
    pub prefix: u8,
    /// IPv6 address on a dual-stack network, with its prefix length and gateway.
    #[serde(default)]
    pub ip6: Option<(std::net::Ipv6Addr, u8, std::net::Ipv6Addr)>,
    /// IPv4 gateway; None on an IPv6-only network.
    pub gateway: Option<Ipv4Addr>,
    /// MAC.
    pub mac: [u8; 6],
    /// Interface in the sandbox (eth0, eth1, ...).
    pub ifname: String,
    /// Host side of the veth pair.
    pub host_veth: String,
}

impl Endpoint {
    /// The addresses the endpoint holds, as its network's IPAM leased them.
    pub(crate) fn lease(&self) -> tether_net::ipamapi::Lease {
        tether_net::ipamapi::Lease {
            ipv4: self.ip,
            ipv6: self.ip6.map(|(a, _, _)| a),
        }
    }
}

/// Run state of a container (Docker API "ContainerState").
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunState {
    /// "created", "running", "exited".
    pub status: String,
    /// Init pid while running.
    pub pid: i32,
    /// The container monitor's pid (the init's parent) while running.
    pub shim_pid: i32,
    /// Last exit code.
    pub exit_code: i64,
    /// Last error (e.g. the OCI runtime's message when start failed).
    pub error: String,
    /// RFC 3339; "0001-01-01T00:00:00Z" when never.
    pub started_at: String,
    /// RFC 3339; "0001-01-01T00:00:00Z" when never.
    pub finished_at: String,
    /// Healthcheck state, for containers with a healthcheck.
    #[serde(default)]
    pub health: Option<crate::health::Health>,
    /// Frozen by `pause` (cgroup freezer, `runc pause`); only meaningful while
    /// `status` is "running" (Docker shows the container as "paused" then).
    #[serde(default)]
    pub paused: bool,
}

impl RunState {
    /// Docker's `State.Status`: "paused" for a paused running container, else `status`.
    pub fn shown_status(&self) -> &str {
        if self.paused && self.status == "running" {
            "paused"
        } else {
            &self.status
        }
    }
}

/// A container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Container {
    /// 64-hex id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's id (sha256:..).
    pub image_id: String,
    /// argv[0] as resolved (entrypoint/cmd).
    pub path: String,
    /// The rest of argv.
    pub args: Vec<String>,
    /// The create request's Config (Docker API ContainerConfig), image defaults merged in.
    /// Boxed, as `host_config` is: the two generated types are ~3.5 KB inline, mostly
    /// `None`s, and a container record held inline in the state's B-tree would size each
    /// of its nodes (11 slots) by them; stored JSON is the same.
    pub config: Box<bollard_stubs::models::ContainerCreateBody>,
    /// The create request's HostConfig.
    pub host_config: Box<bollard_stubs::models::HostConfig>,
    /// Network name -> requested attachment, in the order attached.
    pub attachments: Vec<(String, Attachment)>,
    /// Run state.
    pub state: RunState,
    /// Network name -> live endpoint while running.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Published ports while running.
    pub ports: Vec<PortMapping>,
    /// The sandbox (netns file) while running.
    pub sandbox: Option<PathBuf>,
    /// How many times the container was started.
    pub restart_count: i64,
    /// Restarts made by the restart policy (Docker's RestartCount).
    #[serde(default)]
    pub auto_restarts: i64,
    /// Stopped with `stop`: the restart policy leaves it stopped (until started again).
    #[serde(default)]
    pub manually_stopped: bool,
}

/// Never-set timestamps, as Docker shows them.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Now, RFC 3339 with nanoseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A new random 64-hex id.
pub fn new_id() -> String {
    let b: [u8; 32] = rand::random();
    hex::encode(b)
}

/// Writes `value` as JSON to `path` atomically (temp file, rename): a reader sees the old
/// or the new content, never a mix. The fsync that makes it durable (~2 ms here) runs on
/// a thread of its own after the rename, off the request path; a crash in that window can
/// lose the last change of this one object, and [`read_all`] skips a file it cannot parse.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), EngineError> {
    let dir = path
        .parent()
        .ok_or_else(|| EngineError::Internal(format!("no parent dir for {}", path.display())))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::Internal(format!("create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".{}.tmp", rand::random::<u32>()));
    let data = serde_json::to_vec(value)
        .map_err(|e| EngineError::Internal(format!("encode {}: {e}", path.display())))?;
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        std::fs::rename(&tmp, path)?;
        sync_later(f);
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::Internal(format!(
            "write {}: {e}",
            path.display()
        )));
    }
    Ok(())
}

/// Hands `f` to the one thread that fsyncs state files in the order they were written
/// (started on first use); if it cannot start, syncs here.
fn sync_later(f: std::fs::File) {
    use std::sync::{mpsc, Mutex, OnceLock};
    static SYNCER: OnceLock<Option<Mutex<mpsc::Sender<std::fs::File>>>> = OnceLock::new();
    let tx = SYNCER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<std::fs::File>();
        std::thread::Builder::new()
            .name("state-fsync".into())
            .spawn(move || {
                for f in rx {
                    if let Err(e) = f.sync_all() {
                        tracing::warn!(error = %e, "fsync of a state file");
                    }
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    let unsent = match tx {
        Some(tx) => tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(f)
            .err()
            .map(|e| e.0),
        None => Some(f),
    };
    if let Some(f) = unsent {
        if let Err(e) = f.sync_all() {
            tracing::warn!(error = %e, "fsync of a state file");
        }
    }
}

/// Reads every `*.json` below `dir` (one level, or `<dir>/<x>/state.json`).
pub fn read_all<T: for<'de> Deserialize<'de>>(dir: &Path, nested: Option<&str>) -> Vec<T> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = match nested {
            Some(f) => e.path().join(f),
            None => e.path(),
        };
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&p).map(|b| serde_json::from_slice::<T>(&b)) {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(err)) => tracing::warn!(path = %p.display(), %err, "skipping unreadable state"),
            Err(_) => {}
        }
    }
    out
}
