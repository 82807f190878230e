//! tether-engine: the object model (networks, containers, endpoints, exec instances), its
//! persistent state, and the orchestration of one job per request:
//! request -> engine -> driver -> netlink/nft/runc.
//!
//! The engine holds all state behind one async lock; long waits (a container's exit, log
//! streams) happen outside it.

pub mod archive;
pub mod build;
pub mod cluster;
pub mod containers;
pub mod events;
pub mod exec;
pub mod explain;
pub mod files;
mod firewall;
pub mod health;
pub mod hostdns;
pub mod images;
pub mod logs;
pub mod manage;
pub mod metrics;
pub mod networks;
pub mod ports;
pub mod registry;
mod restore;
pub mod sandbox;
pub mod state;
pub mod stats;
pub mod system;
pub mod topology;
pub mod validate;
pub mod views;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tether_image::ImageStore;
use tether_net::bridge::BridgeDriver;
use tether_net::dns::Resolver;
use tether_net::driver::Drivers;
use tether_net::faults::Faults;
use tether_net::firewall::{Firewall, FirewallConfig, Nftables};
use tether_net::host::HostDriver;
use tether_net::link::{Netlink, Reaper};
use tether_net::null::NullDriver;
use tether_runtime::runc::Runc;
use tokio::sync::watch;

use state::{Container, Network};

/// Engine errors, each mapping to a Docker API status code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404: no such object.
    #[error("{0}")]
    NotFound(String),
    /// 409: a name taken, an object in use.
    #[error("{0}")]
    Conflict(String),
    /// 400: bad input.
    #[error("{0}")]
    InvalidParam(String),
    /// 304: nothing to do (already started / stopped).
    #[error("{0}")]
    NotModified(String),
    /// 500: an operation failed on the host.
    #[error("{0}")]
    Internal(String),
    /// 503: the feature needs something this daemon is not (a swarm manager).
    #[error("{0}")]
    Unavailable(String),
}

/// Docker's answer (503) to a Swarm API request on a node that is not a swarm manager
/// (moby `daemon/cluster` `errNoManager`).
pub const NOT_SWARM_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

impl EngineError {
    /// The HTTP status Docker uses for this error.
    pub fn status(&self) -> u16 {
        match self {
            EngineError::NotFound(_) => 404,
            EngineError::Conflict(_) => 409,
            EngineError::InvalidParam(_) => 400,
            EngineError::NotModified(_) => 304,
            EngineError::Internal(_) => 500,
            EngineError::Unavailable(_) => 503,
        }
    }
}

impl From<tether_net::ipamapi::AddressError> for EngineError {
    fn from(e: tether_net::ipamapi::AddressError) -> Self {
        use tether_net::ipamapi::FailureKind;
        match e.kind() {
            FailureKind::Input => EngineError::InvalidParam(e.to_string()),
            FailureKind::Conflict => EngineError::Conflict(e.to_string()),
            FailureKind::Host => EngineError::Internal(e.to_string()),
        }
    }
}

impl From<tether_image::ImageError> for EngineError {
    fn from(e: tether_image::ImageError) -> Self {
        match e.status() {
            404 => EngineError::NotFound(e.to_string()),
            409 => EngineError::Conflict(e.to_string()),
            400 => EngineError::InvalidParam(e.to_string()),
            _ => EngineError::Internal(e.to_string()),
        }
    }
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for EngineError {
            fn from(e: $t) -> Self { EngineError::Internal(e.to_string()) }
        }
    )*};
}
impl From<tether_net::link::LinkError> for EngineError {
    fn from(e: tether_net::link::LinkError) -> Self {
        match e {
            tether_net::link::LinkError::BridgeFull { .. } => EngineError::Conflict(e.to_string()),
            tether_net::link::LinkError::NotOurs { .. } => EngineError::Conflict(e.to_string()),
            e => EngineError::Internal(e.to_string()),
        }
    }
}

impl From<tether_net::driver::DriverError> for EngineError {
    fn from(e: tether_net::driver::DriverError) -> Self {
        match e {
            tether_net::driver::DriverError::Link(l) => l.into(),
            e if e.is_input() => EngineError::InvalidParam(e.to_string()),
            e => EngineError::Internal(e.to_string()),
        }
    }
}

internal_from!(
    tether_net::firewall::FirewallError,
    tether_net::netns::NetnsError,
    tether_runtime::RuntimeError,
    std::io::Error
);

/// Daemon configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Persistent state (`--root`, default /var/lib/tether).
    pub root: PathBuf,
    /// Runtime state (`--exec-root`, default /run/tether): sandboxes, bundles, runc state.
    pub exec_root: PathBuf,
    /// The OCI runtime binary (`--runtime`, default runc).
    pub runtime: PathBuf,
    /// Upstream resolvers for the embedded DNS (`--dns`, default: the host's resolv.conf).
    pub dns_upstreams: Vec<SocketAddr>,
    /// The tether binary, started as `tether monitor` (one for all containers).
    pub exe: PathBuf,
    /// dockerd's `--allow-direct-routing`: published container ports are reachable by
    /// routing to container addresses from any interface (default: only from a network's
    /// trusted interfaces, or in gateway mode routed).
    pub allow_direct_routing: bool,
    /// `--cluster-store` / `--cluster-advertise`: join a cluster of hosts sharing overlay
    /// networks (None: a single host, no global networks).
    pub cluster: Option<cluster::ClusterConfig>,
}

/// Non-persistent per-container runtime companions.
pub(crate) struct Live {
    /// Bumped at every exit and at removal (wait endpoints watch it).
    pub events: watch::Sender<(u64, i64, bool)>,
    /// The DNS listener in the container's sandbox.
    pub dns: Option<tether_net::dns::ServeHandle>,
    /// Sockets that hold published host ports.
    pub reservations: Vec<std::os::fd::OwnedFd>,
    /// The monitor task.
    pub monitor: Option<tokio::task::JoinHandle<()>>,
    /// The healthcheck task.
    pub health: Option<tokio::task::JoinHandle<()>>,
}

impl Live {
    fn new() -> Live {
        Live {
            events: watch::channel((0, 0, false)).0,
            dns: None,
            reservations: Vec::new(),
            monitor: None,
            health: None,
        }
    }
}

/// Objects under the engine's lock.
#[derive(Default)]
pub(crate) struct State {
    pub networks: BTreeMap<String, Network>,
    pub containers: BTreeMap<String, Container>,
    pub volumes: BTreeMap<String, volumes::Volume>,
    /// Local networks whose driver is making them, by id: they hold their name, subnets
    /// and bridge name (so a concurrent create cannot take them) while the engine's lock
    /// is released for the kernel's part; not usable, listed or removable until made.
    pub creating: BTreeMap<String, Network>,
    /// Endpoints that a start or a `network connect` is joining while the engine's lock
    /// is released for the driver's kernel steps and an overlay's store record (see
    /// [`sandbox::StagedJoin`]), by host-side interface name. They count as active on
    /// their network (it cannot be removed meanwhile) and towards its bridge's port
    /// limit, and a firewall rebuild keeps their bridge port's isolation.
    pub joining: BTreeMap<String, Joining>,
    /// Networks that `network rm` is removing while the engine's lock is released (a local
    /// one's driver steps, a global one's record in the cluster store), by id: no endpoint
    /// is staged on them, and a firewall rebuild leaves their entries out, meanwhile.
    pub removing: std::collections::BTreeSet<String>,
}

/// An endpoint being joined (see [`State::joining`]).
pub(crate) struct Joining {
    /// The container's id.
    pub container: String,
    /// The network's id.
    pub network: String,
}

impl State {
    /// Every network that holds a name, a subnet or a bridge name: the made ones and
    /// those being made.
    pub(crate) fn known_networks(&self) -> impl Iterator<Item = &Network> {
        self.networks.values().chain(self.creating.values())
    }

    /// The bridge ports (host-side interfaces) of `enable_icc=false` networks: every
    /// container's endpoints there (running ones, and those a start has made while the
    /// runtime creates the container), and those being joined.
    pub(crate) fn isolated_ports(&self) -> Vec<String> {
        let isolated = |net: &str| {
            self.networks
                .get(net)
                .and_then(networks::bridge_of)
                .is_some_and(|b| !b.icc)
        };
        let mut out = Vec::new();
        for c in self.containers.values() {
            for (name, a) in &c.attachments {
                if let (true, Some(ep)) = (isolated(&a.network_id), c.endpoints.get(name)) {
                    out.push(ep.host_veth.clone());
                }
            }
        }
        out.extend(
            self.joining
                .iter()
                .filter(|(_, j)| isolated(&j.network))
                .map(|(port, _)| port.clone()),
        );
        out
    }

    /// Rebuilds every pool's leases from the containers' recorded endpoints: the
    /// containers' state files are the one record of which address is in use, so
    /// starting or stopping a container writes no network file. (The records' pools are
    /// the local IPAM's state and, for a global network, this host's copy; running
    /// endpoints then take their addresses back through their network's IPAM in
    /// `readopt`, which for a global network puts them back in the cluster store.)
    pub(crate) fn rebuild_leases(&mut self) {
        for n in self.networks.values_mut() {
            if let Some(p) = n.pool.as_mut() {
                p.leases.clear();
            }
            if let Some(p) = n.pool6.as_mut() {
                p.leases.clear();
            }
        }
        for c in self.containers.values() {
            for (name, a) in &c.attachments {
                let (Some(ep), Some(n)) =
                    (c.endpoints.get(name), self.networks.get_mut(&a.network_id))
                else {
                    continue;
                };
                if let (Some(p), Some(ip)) = (n.pool.as_mut(), ep.ip) {
                    p.leases.insert(ip);
                }
                if let (Some(p), Some((ip6, _, _))) = (n.pool6.as_mut(), ep.ip6) {
                    p.leases.insert(ip6);
                }
            }
        }
    }
}

/// The engine.
pub struct Engine {
    pub(crate) cfg: Config,
    /// The image store.
    pub images: Arc<ImageStore>,
    pub(crate) state: tokio::sync::Mutex<State>,
    pub(crate) live: std::sync::Mutex<HashMap<String, Live>>,
    pub(crate) execs: std::sync::Mutex<HashMap<String, exec::Exec>>,
    pub(crate) runc: Runc,
    /// The container monitor's client (`<exec-root>/monitor.sock`).
    pub(crate) monitor: Arc<tether_runtime::monitor::Monitor>,
    pub(crate) fw: Arc<dyn Firewall>,
    /// The network drivers, keyed by a network's `Driver`.
    pub(crate) drivers: Drivers,
    /// The IPAM drivers, keyed by a network's scope (see [`Engine::ipam_of`]).
    pub(crate) ipams: tether_net::ipamapi::Ipams,
    pub(crate) nl: Netlink,
    pub(crate) dns: Arc<Resolver>,
    pub(crate) events: events::Events,
    /// The host's DNS per network id: the gateway it listens on and its server.
    pub(crate) host_dns:
        std::sync::Mutex<HashMap<String, (std::net::Ipv4Addr, tether_net::dns::ServeHandle)>>,
    /// Per-container locks: a stopped container's overlay is mounted by one user at a
    /// time (an archive helper or a start), see [`archive`].
    pub(crate) fs_locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The sandbox (network namespace) of each container that has one, held open by id;
    /// the container's record names it by the file's `/proc/<pid>/fd/<n>` path.
    pub(crate) sandboxes: std::sync::Mutex<HashMap<String, std::fs::File>>,
    /// How many times the firewall's contents were rebuilt from the records (reload or
    /// resync): a `network create` that ran without the engine's lock compares it before
    /// and after, and rebuilds again when one happened meanwhile.
    pub(crate) fw_rebuilds: std::sync::atomic::AtomicU64,
    /// The cluster store session and the overlay driver, with `--cluster-store`.
    pub(crate) cluster: Option<cluster::Cluster>,
}

impl Engine {
    /// Opens the state under `cfg.root`, (re)creates the firewall table, the predefined
    /// networks and their bridges, and re-adopts containers that kept running while the
    /// daemon was away (their sandboxes, DNS and published ports are restored).
    ///
    /// Test-only seam: failpoints named in `TETHER_FAILPOINTS` (see
    /// [`tether_net::faults`]) make the named firewall or driver methods fail.
    pub async fn start(cfg: Config) -> Result<Arc<Engine>, EngineError> {
        let faults = Faults::from_env();
        if !faults.is_empty() {
            tracing::warn!(
                failpoints = %faults.names(),
                "TETHER_FAILPOINTS is set: these firewall and driver calls fail on purpose (a test-only seam; never set it in production)"
            );
        }
        let fw: Arc<dyn Firewall> = Arc::new(Nftables::new(FirewallConfig {
            allow_direct_routing: cfg.allow_direct_routing,
        }));
        Engine::start_faulty(cfg, faults.firewall(fw), faults).await
    }

    /// [`Engine::start`] with the firewall given: the seam through which another
    /// [`Firewall`] (one that fails on purpose, in tests) is injected. The bridge driver
    /// programs the same firewall.
    pub async fn start_with(
        cfg: Config,
        fw: Arc<dyn Firewall>,
    ) -> Result<Arc<Engine>, EngineError> {
        Engine::start_faulty(cfg, fw, Faults::default()).await
    }

    /// [`Engine::start_with`] whose network drivers fail as `faults` say.
    async fn start_faulty(
        cfg: Config,
        fw: Arc<dyn Firewall>,
        faults: Faults,
    ) -> Result<Arc<Engine>, EngineError> {
        for d in [
            cfg.root.join("networks"),
            cfg.root.join("containers"),
            cfg.exec_root.join("netns"),
            cfg.exec_root.join("runc"),
            cfg.exec_root.join("bundles"),
            cfg.exec_root.join("sock"),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| EngineError::Internal(format!("create {}: {e}", d.display())))?;
        }
        let images = Arc::new(ImageStore::open(&cfg.root.join("image"))?);
        // Counting starts before the first nft batch and DNS query.
        metrics::global();
        // a restart keeps the tables (published ports keep answering); restore then
        // rebuilds their contents in place
        let kept = fw.adopt()?;
        tracing::debug!(kept, "nftables tables");
        tether_net::sysctl::set("net.ipv4.ip_forward", "1")?;
        let nl = Netlink::open()?;
        let _ = nl.set_up_by_name("lo").await;
        let dns = Resolver::new(
            cfg.dns_upstreams.clone(),
            std::time::Duration::from_millis(1500),
        );
        let reaper = Arc::new(Reaper::start()?);
        let (cluster, cluster_rx) = match &cfg.cluster {
            None => (None, None),
            Some(cc) => {
                let advertise = cluster::resolve_advertise(&cc.advertise, &nl.addresses().await?)?;
                let scfg = tether_cluster::StoreConfig {
                    url: cc.store.clone(),
                    endpoints: tether_cluster::StoreConfig::parse_url(&cc.store, cc.tls.is_some())?,
                    tls: cc.tls.clone(),
                    advertise: std::net::IpAddr::V4(advertise),
                    node_id: cluster::node_id(&cfg.root)?,
                    hostname: nix::unistd::gethostname()
                        .ok()
                        .and_then(|h| h.into_string().ok())
                        .unwrap_or_default(),
                    ttl: cc.ttl,
                };
                let (store, rx) = tether_cluster::Store::open(scfg).await?;
                let overlay = Arc::new(tether_net::overlay::OverlayDriver::new(advertise)?);
                (
                    Some(cluster::Cluster {
                        store,
                        overlay,
                        remotes: std::sync::Mutex::new(HashMap::new()),
                    }),
                    Some(rx),
                )
            }
        };
        let engine = Arc::new(Engine {
            runc: Runc {
                binary: cfg.runtime.clone(),
                root: cfg.exec_root.join("runc"),
            },
            monitor: Arc::new(tether_runtime::monitor::Monitor::new(
                cfg.exe.clone(),
                cfg.exec_root.join("monitor.sock"),
                cfg.exec_root.join("runc"),
            )),
            drivers: {
                let mut d = Drivers::new();
                d.register(faults.driver(Arc::new(BridgeDriver::new(fw.clone(), reaper)?)));
                d.register(faults.driver(Arc::new(HostDriver)));
                d.register(faults.driver(Arc::new(NullDriver)));
                if let Some(c) = &cluster {
                    d.register(faults.driver(c.overlay.clone()));
                }
                d
            },
            ipams: {
                let mut i = tether_net::ipamapi::Ipams::new();
                i.register(Arc::new(tether_net::ipamapi::LocalIpam));
                if let Some(c) = &cluster {
                    i.register(Arc::new(cluster::GlobalIpam::new(c.store.clone())));
                }
                i
            },
            cfg,
            images,
            state: tokio::sync::Mutex::new(State::default()),
            live: std::sync::Mutex::new(HashMap::new()),
            execs: std::sync::Mutex::new(HashMap::new()),
            fw,
            nl,
            dns,
            events: events::Events::default(),
            host_dns: std::sync::Mutex::new(HashMap::new()),
            fs_locks: std::sync::Mutex::new(HashMap::new()),
            sandboxes: std::sync::Mutex::new(HashMap::new()),
            fw_rebuilds: std::sync::atomic::AtomicU64::new(0),
            cluster,
        });
        engine.restore().await?;
        // failpoints fail the operations asked for from now on, not the restore
        faults.arm();
        if let Some(rx) = cluster_rx {
            tokio::spawn(engine.clone().cluster_events(rx));
        }
        engine.watch_firewall();
        Ok(engine)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("containers").join(id)
    }

    pub(crate) fn save_container(&self, c: &Container) -> Result<(), EngineError> {
        state::write_json(&self.container_dir(&c.id).join("state.json"), c)
    }

    pub(crate) fn save_network(&self, n: &Network) -> Result<(), EngineError> {
        if self.is_global(n) {
            // kept in the cluster store
            return Ok(());
        }
        state::write_json(
            &self
                .cfg
                .root
                .join("networks")
                .join(format!("{}.json", n.id)),
            n,
        )
    }

    pub(crate) fn live_mut<R>(&self, id: &str, f: impl FnOnce(&mut Live) -> R) -> R {
        let mut g = self.live.lock().unwrap_or_else(|p| p.into_inner());
        f(g.entry(id.to_string()).or_insert_with(Live::new))
    }

    /// Subscribes to a container's exit/removal events: (exit generation, exit code, removed).
    pub fn events(&self, id: &str) -> watch::Receiver<(u64, i64, bool)> {
        self.live_mut(id, |l| l.events.subscribe())
    }
}
