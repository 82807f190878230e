//! The engine's side of the cluster: joining the store at start (`--cluster-store`,
//! `--cluster-advertise`), global (overlay) networks created, listed and removed through
//! the store, endpoints and addresses of this host published in it, and the other hosts'
//! endpoints applied from its watch to the overlay driver (forwarding and neighbour
//! entries) and the embedded DNS (names, aliases, round-robin).
//!
//! The store itself is `tether_cluster::Store`; the kernel side is
//! `tether_net::overlay::OverlayDriver`. When the store is unreachable, local networks,
//! containers and DNS keep working; creating an overlay network or attaching an endpoint
//! to one fails at once naming the store.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::NetworkCreateRequest;
use ipnet::Ipv4Net;
use tether_cluster::{EndpointRecord, Event, Store, StoreError};
use tether_net::driver::NetworkDriver;
use tether_net::driver::Scope;
use tether_net::ipam::{self, IpamError, Pool};
use tether_net::ipamapi::{AddressError, AddressRequest, FailureKind, Ipam, Lease, NetworkPools};
use tether_net::link;
use tether_net::overlay::{self, OverlayDriver, Remote};

use crate::state::{self, Network};
use crate::{Engine, EngineError, State};

pub use tether_cluster::TlsFiles;

/// The local bridge network that gives overlay containers their way out (Docker's
/// `docker_gwbridge`).
pub const GWBRIDGE: &str = "tether_gwbridge";

/// `tether daemon --cluster-store ... --cluster-advertise ...`.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `--cluster-store etcd://HOST:PORT[,HOST:PORT...]`.
    pub store: String,
    /// `--cluster-advertise IP|IFACE`: the address (or the interface whose first IPv4
    /// address is the one) other hosts reach this one on.
    pub advertise: String,
    /// TLS files for etcd (`--cluster-store-opt kv.cacertfile=...,kv.certfile=...,
    /// kv.keyfile=...`).
    pub tls: Option<tether_cluster::TlsFiles>,
    /// The lease TTL (`--cluster-ttl`, default 15 s): how long a dead host's endpoints
    /// stay in the others' tables at most.
    pub ttl: Duration,
}

/// The engine's cluster companions.
pub(crate) struct Cluster {
    /// The store session.
    pub store: Store,
    /// The overlay driver (also registered among the drivers).
    pub overlay: Arc<OverlayDriver>,
    /// Endpoints of other hosts, by (network id, endpoint id).
    pub remotes: std::sync::Mutex<HashMap<(String, String), EndpointRecord>>,
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Taken(_) => EngineError::Conflict(e.to_string()),
            StoreError::InUse(_) => EngineError::Conflict(e.to_string()),
            StoreError::Config { .. } => EngineError::InvalidParam(e.to_string()),
            _ => EngineError::Internal(e.to_string()),
        }
    }
}

/// The error for a global network on a daemon started without a store.
pub(crate) fn no_store(driver: &str) -> EngineError {
    EngineError::InvalidParam(format!(
        "network driver {driver} needs a cluster store: start the daemon with --cluster-store etcd://HOST:PORT and --cluster-advertise IP|IFACE"
    ))
}

/// The DNS registry's key for an endpoint on another host.
fn remote_key(endpoint_id: &str) -> String {
    format!("remote:{endpoint_id}")
}

/// Resolves `--cluster-advertise`: an IPv4 address as is, or an interface's first IPv4
/// address (`addrs`: the host's (interface, address) pairs).
pub(crate) fn resolve_advertise(
    value: &str,
    addrs: &[(String, IpAddr, u8)],
) -> Result<Ipv4Addr, EngineError> {
    let v = value.rsplit_once(':').map(|(h, _)| h).unwrap_or(value);
    if let Ok(ip) = v.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    addrs
        .iter()
        .find_map(|(i, a, _)| match a {
            IpAddr::V4(a) if i == v => Some(*a),
            _ => None,
        })
        .ok_or_else(|| {
            EngineError::InvalidParam(format!(
                "invalid --cluster-advertise {value:?}: expected an IPv4 address or an interface with one"
            ))
        })
}

/// This host's id, kept in `<root>/node-id` (made on first use).
pub(crate) fn node_id(root: &std::path::Path) -> Result<String, EngineError> {
    let p = root.join("node-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        let s = s.trim();
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(s.to_string());
        }
    }
    let id = tether_cluster::new_node_id();
    std::fs::write(&p, format!("{id}\n"))
        .map_err(|e| EngineError::Internal(format!("write {}: {e}", p.display())))?;
    Ok(id)
}

/// The first /24 of 10.0.0.0/8 (Docker's default pool for overlay networks) that
/// overlaps none of `used`.
fn pick_overlay_subnet(used: &[Ipv4Net]) -> Result<Ipv4Net, EngineError> {
    (0u32..65536)
        .filter_map(|i| Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).ok())
        .find(|s| {
            !used
                .iter()
                .any(|u| u.contains(&s.network()) || s.contains(&u.network()))
        })
        .ok_or_else(|| {
            EngineError::Conflict(
                "no free /24 left in 10.0.0.0/8 for an overlay network: give --subnet".into(),
            )
        })
}

/// Where this host keeps copies of the global network records it knows
/// (`<root>/cluster/networks/<id>.json`): after a daemon restart, the overlay endpoints of
/// running containers are re-adopted from them before (or without) the store answering.
fn cache_dir(root: &std::path::Path) -> std::path::PathBuf {
    root.join("cluster").join("networks")
}

/// The global network records kept by [`Engine::cache_network`].
pub(crate) fn cached_networks(root: &std::path::Path) -> Vec<Network> {
    state::read_all(&cache_dir(root), None)
}

/// The IPAM of global-scope (overlay) networks: leases of both families live in the
/// cluster store (`ipam/<net-id>/<address>`, owned by this host's session), taken by
/// compare-and-swap ([`Store::allocate_ip`]) following the network's pool rules (subnet,
/// gateway, `--ip-range`, a requested `--ip` / `--ip6`), so hosts never hand out one
/// address twice.
///
/// The record's own pools are this host's copy: their leases are not used to allocate
/// (the store's are), and a release drops the address from them too.
pub(crate) struct GlobalIpam {
    store: Store,
}

impl GlobalIpam {
    /// The IPAM over `store`'s session.
    pub(crate) fn new(store: Store) -> GlobalIpam {
        GlobalIpam { store }
    }

    /// How the engine answers a store error met while leasing: a lost address race or a
    /// bad store option is the request's fault, a network with endpoints a conflict, the
    /// rest (unreachable store, bad record) the host's.
    fn backend(e: StoreError) -> AddressError {
        let kind = match e {
            StoreError::Taken(_) | StoreError::Config { .. } => FailureKind::Input,
            StoreError::InUse(_) => FailureKind::Conflict,
            _ => FailureKind::Host,
        };
        AddressError::Backend {
            kind,
            source: Box::new(e),
        }
    }

    /// Releases an address of this host in the store (logged on failure: the key goes
    /// with the lease at worst) and from the record's pool.
    async fn release_ip(&self, pools: &mut NetworkPools<'_>, ip: IpAddr) {
        if let Err(e) = self.store.release_ip(pools.network_id, ip).await {
            tracing::warn!(network = %pools.network, %ip, error = %e, "releasing a global address");
        }
        match ip {
            IpAddr::V4(a) => {
                if let Some(p) = pools.v4.as_deref_mut() {
                    p.release(a);
                }
            }
            IpAddr::V6(a) => {
                if let Some(p) = pools.v6.as_deref_mut() {
                    p.release(a);
                }
            }
        }
    }

    /// Takes an IPv6 address in the store following the record's IPv6 pool rules (a
    /// requested `want`, or the next free one); `None` on a network without IPv6.
    async fn request_v6(
        &self,
        pools: &NetworkPools<'_>,
        endpoint_id: &str,
        want: Option<std::net::Ipv6Addr>,
    ) -> Result<Option<std::net::Ipv6Addr>, AddressError> {
        let Some(rules) = pools.v6.as_deref() else {
            return match want {
                Some(_) => Err(AddressError::NoIpv6 {
                    network: pools.network.to_string(),
                }),
                None => Ok(None),
            };
        };
        match self.allocate(rules, pools, endpoint_id, want).await {
            Ok(ip) => Ok(Some(ip)),
            Err(Refusal::Pool(e)) => Err(AddressError::Pool6(e)),
            Err(Refusal::Store(e)) => Err(Self::backend(e)),
        }
    }

    /// Takes an address in the store following `rules` (the record's pool of that family,
    /// with the store's addresses in use as its leases): a requested `want`, or the next
    /// free one.
    ///
    /// Errors: the pool's refusal, typed ([`Refusal::Pool`]); the store's
    /// ([`Refusal::Store`]).
    async fn allocate<R: StoreRules>(
        &self,
        rules: &R,
        pools: &NetworkPools<'_>,
        endpoint_id: &str,
        want: Option<R::Addr>,
    ) -> Result<R::Addr, Refusal<R::Error>> {
        let name = pools.network.to_string();
        // the pool's refusal, kept typed (the store passes it on as text)
        let mut refused: Option<R::Error> = None;
        let got = self
            .store
            .allocate_ip(pools.network_id, endpoint_id, |used| {
                rules.over(used).allocate(&name, want).map_err(|e| {
                    let m = e.to_string();
                    refused = Some(e);
                    m
                })
            })
            .await;
        match (got, refused) {
            (Ok(ip), _) => Ok(ip),
            (Err(StoreError::Taken(_)), Some(e)) => Err(Refusal::Pool(e)),
            (Err(e), _) => Err(Refusal::Store(e)),
        }
    }
}

/// Why [`GlobalIpam::allocate`] got no address.
enum Refusal<E> {
    /// The pool's rules refused (the requested address is taken or outside, the range is
    /// full).
    Pool(E),
    /// The store failed.
    Store(StoreError),
}

/// A pool of one address family whose rules the store's allocation follows ([`Pool`] for
/// IPv4, [`ipam::Pool6`] for IPv6).
trait StoreRules: Sync {
    /// The family's address.
    type Addr: std::str::FromStr + std::fmt::Display + Ord + Copy + Send;
    /// The pool's refusal.
    type Error: std::fmt::Display + Send;
    /// These rules with `used` as the leases and no allocation cursor.
    fn over(&self, used: &BTreeSet<Self::Addr>) -> Self;
    /// The pool's own allocation (`want`, or the next free address).
    fn allocate(
        &mut self,
        network: &str,
        want: Option<Self::Addr>,
    ) -> Result<Self::Addr, Self::Error>;
}

impl StoreRules for Pool {
    type Addr = Ipv4Addr;
    type Error = IpamError;
    fn over(&self, used: &BTreeSet<Ipv4Addr>) -> Pool {
        let mut p = self.clone();
        p.leases = used.clone();
        p.last = None;
        p
    }
    fn allocate(&mut self, network: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        Pool::allocate(self, network, want)
    }
}

impl StoreRules for ipam::Pool6 {
    type Addr = std::net::Ipv6Addr;
    type Error = ipam::Ipam6Error;
    fn over(&self, used: &BTreeSet<std::net::Ipv6Addr>) -> ipam::Pool6 {
        let mut p = self.clone();
        p.leases = used.clone();
        p.last = None;
        p
    }
    fn allocate(
        &mut self,
        network: &str,
        want: Option<std::net::Ipv6Addr>,
    ) -> Result<std::net::Ipv6Addr, ipam::Ipam6Error> {
        ipam::Pool6::allocate(self, network, want)
    }
}

#[async_trait::async_trait]
impl Ipam for GlobalIpam {
    fn scope(&self) -> Scope {
        Scope::Global
    }

    async fn request_address(
        &self,
        pools: &mut NetworkPools<'_>,
        req: &AddressRequest<'_>,
    ) -> Result<Lease, AddressError> {
        let rules = pools.v4.as_deref().ok_or_else(|| AddressError::NoPool {
            network: pools.network.to_string(),
        })?;
        let ip = match self.allocate(rules, pools, req.endpoint_id, req.ipv4).await {
            Ok(ip) => ip,
            Err(Refusal::Pool(e)) => return Err(AddressError::Pool(e)),
            Err(Refusal::Store(e)) => return Err(Self::backend(e)),
        };
        match self.request_v6(pools, req.endpoint_id, req.ipv6).await {
            Ok(ipv6) => Ok(Lease {
                ipv4: Some(ip),
                ipv6,
            }),
            Err(e) => {
                self.release_ip(pools, IpAddr::V4(ip)).await;
                Err(e)
            }
        }
    }

    async fn release_address(&self, pools: &mut NetworkPools<'_>, lease: &Lease) {
        if let Some(ip) = lease.ipv4 {
            self.release_ip(pools, IpAddr::V4(ip)).await;
        }
        if let Some(ip) = lease.ipv6 {
            self.release_ip(pools, IpAddr::V6(ip)).await;
        }
    }

    async fn restore_address(
        &self,
        pools: &mut NetworkPools<'_>,
        endpoint_id: &str,
        lease: &Lease,
    ) {
        if let Some(ip) = lease.ipv4 {
            self.store
                .adopt_ip(pools.network_id, endpoint_id, IpAddr::V4(ip))
                .await;
        }
        if let Some(ip) = lease.ipv6 {
            self.store
                .adopt_ip(pools.network_id, endpoint_id, IpAddr::V6(ip))
                .await;
        }
    }
}

impl Engine {
    /// The cluster, or the error for a global network without one.
    pub(crate) fn cluster(&self, driver: &str) -> Result<&Cluster, EngineError> {
        self.cluster.as_ref().ok_or_else(|| no_store(driver))
    }

    /// Whether `n` lives in the cluster store (its driver's scope is global).
    pub(crate) fn is_global(&self, n: &Network) -> bool {
        self.drivers
            .get(&n.driver)
            .map(|d| d.scope() == tether_net::driver::Scope::Global)
            .unwrap_or(false)
    }

    /// Keeps a copy of a global network's record under the root (logged on failure: the
    /// store has the record anyway).
    pub(crate) fn cache_network(&self, n: &Network) {
        let p = cache_dir(&self.cfg.root).join(format!("{}.json", n.id));
        if let Err(e) = state::write_json(&p, n) {
            tracing::warn!(network = %n.name, error = %e, "keeping a copy of a global network");
        }
    }

    /// Drops the copy of a global network's record.
    pub(crate) fn uncache_network(&self, id: &str) {
        let _ = std::fs::remove_file(cache_dir(&self.cfg.root).join(format!("{id}.json")));
    }

    /// Daemon restart: takes over the endpoint `ep` of running container `c` on global
    /// network `n`: the overlay driver adopts its devices (and programs remotes into them
    /// as the store reports them), and the endpoint's record goes back into the store
    /// under this host's (new) lease (its address went back just before, through
    /// [`GlobalIpam`]'s `restore_address`).
    pub(crate) async fn readopt_global_endpoint(
        &self,
        n: &Network,
        c: &crate::state::Container,
        att: &crate::state::Attachment,
        ep: &crate::state::Endpoint,
    ) {
        let Some(cl) = self.cluster.as_ref() else {
            tracing::warn!(container = %c.name, network = %n.name, "an overlay endpoint, but this daemon has no --cluster-store: not reachable from other hosts");
            return;
        };
        let Some(sandbox) = c.sandbox.as_deref() else {
            tracing::warn!(container = %c.name, network = %n.name, "a running container without a sandbox: its overlay endpoint is not adopted");
            return;
        };
        if let Err(e) = cl
            .overlay
            .adopt(
                &crate::networks::spec_of(n),
                &ep.host_veth,
                sandbox,
                &ep.ifname,
            )
            .await
        {
            tracing::error!(container = %c.name, network = %n.name, error = %e, "adopting an overlay endpoint");
        }
        let rec = self.endpoint_record(n, c, att, ep);
        // the address went back through the network's IPAM (`GlobalIpam::restore_address`)
        cl.store.adopt_endpoint(&rec).await;
        tracing::info!(container = %c.name, network = %n.name, "overlay endpoint adopted");
    }

    /// Whether a running container of this host has an endpoint on a global network.
    pub(crate) fn has_global_endpoints(&self, st: &State) -> bool {
        st.containers
            .values()
            .filter(|c| c.state.status == "running")
            .any(|c| {
                c.attachments.iter().any(|(name, a)| {
                    c.endpoints.contains_key(name)
                        && st
                            .networks
                            .get(&a.network_id)
                            .is_some_and(|n| self.is_global(n))
                })
            })
    }

    /// `network create -d overlay`: validated here, then created in the store in one
    /// transaction (name and VNI unique in the cluster), then known locally. No device is
    /// made until an endpoint joins on this host.
    pub(crate) async fn create_global_network(
        &self,
        req: &NetworkCreateRequest,
        name: String,
        driver: String,
    ) -> Result<(String, Option<String>), EngineError> {
        let cl = self.cluster(&driver)?;
        cl.store.check()?;
        if req.enable_ipv4 == Some(false) {
            return Err(EngineError::InvalidParam(format!(
                "network driver {driver} needs IPv4: drop --ipv4=false"
            )));
        }
        let ipam = crate::networks::IpamRequest::parse(req.ipam.as_ref())?;
        let enable_ipv6 = req.enable_ipv6.unwrap_or(false);
        if ipam.subnet6.is_some() && !enable_ipv6 {
            return Err(EngineError::InvalidParam("an IPv6 --subnet was given without --ipv6: add --ipv6 to make the network dual-stack".into()));
        }
        let subnet = ipam.subnet.map(|s| s.trunc());
        let (gateway, range) = (ipam.gateway, ipam.range);
        let subnet_given = subnet.is_some();
        // every network the cluster and this host know, for names, subnets and VNIs
        let stored: Vec<Network> = cl
            .store
            .networks()
            .await?
            .into_iter()
            .filter_map(|(_, b)| serde_json::from_slice::<Network>(&b).ok())
            .collect();
        let st = self.state.lock().await;
        if st
            .known_networks()
            .chain(stored.iter())
            .any(|n| n.name == name)
        {
            return Err(EngineError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let in_use: Vec<(String, Ipv4Net)> = st
            .known_networks()
            .chain(stored.iter())
            .filter_map(|n| n.pool.as_ref().map(|p| (n.name.clone(), p.subnet)))
            .collect();
        let host: Vec<(String, IpAddr)> = self
            .nl
            .addresses()
            .await?
            .into_iter()
            .map(|(i, a, _)| (i, a))
            .collect();
        let subnet = match subnet {
            Some(s) => {
                crate::networks::check_subnet(ipnet::IpNet::V4(s), &host)?;
                ipam::check_overlap(s, in_use.iter().map(|(n, s)| (n.as_str(), *s)))
                    .map_err(|e| EngineError::InvalidParam(e.to_string()))?;
                s
            }
            None => {
                let used: Vec<Ipv4Net> = in_use
                    .iter()
                    .map(|(_, s)| *s)
                    .chain(host.iter().filter_map(|(_, a)| match a {
                        IpAddr::V4(a) => Ipv4Net::new(*a, 32).ok(),
                        _ => None,
                    }))
                    .collect();
                pick_overlay_subnet(&used)?
            }
        };
        let pool = Pool::new(subnet, gateway, range)
            .map_err(|e| EngineError::InvalidParam(e.to_string()))?;
        // IPv6 (`--ipv6`): carried between the overlay's containers; the way out (the
        // gateway bridge) stays IPv4, as Docker's docker_gwbridge
        let pool6 = if enable_ipv6 {
            let in_use6: Vec<(String, ipnet::Ipv6Net)> = st
                .known_networks()
                .chain(stored.iter())
                .filter_map(|n| n.pool6.as_ref().map(|p| (n.name.clone(), p.subnet)))
                .collect();
            Some(crate::networks::pick_pool6(ipam.subnet6, &in_use6, &host)?)
        } else {
            None
        };
        let mut options = req.options.clone().unwrap_or_default();
        options.retain(|_, v| !v.is_empty());
        let vni_given = options.contains_key(overlay::opt::VNI);
        let used_vnis: std::collections::BTreeSet<u32> = st
            .networks
            .values()
            .chain(stored.iter())
            .filter_map(|n| n.options.get(overlay::opt::VNI)?.parse().ok())
            .collect();
        drop(st);
        let id = state::new_id();
        let mut vni = (overlay::FIRST_VNI..=overlay::MAX_VNI)
            .find(|v| !used_vnis.contains(v))
            .unwrap_or(overlay::FIRST_VNI);
        let mut n = Network {
            id: id.clone(),
            name: name.clone(),
            driver,
            created: state::now(),
            internal: req.internal.unwrap_or(false),
            enable_ipv6,
            enable_ipv4: true,
            attachable: req.attachable.unwrap_or(false),
            labels: req.labels.clone().unwrap_or_default(),
            options,
            // the vxlan device the overlay driver makes on hosts with endpoints (their
            // macvlans hang off it), with its pinned MAC
            bridge: Some(format!("ov-{}", &id[..12])),
            bridge_mac: Some(link::random_mac()),
            pool: Some(pool),
            pool6,
            subnet_given,
            dns: true,
            builtin: false,
        };
        for _ in 0..16 {
            if !vni_given {
                n.options
                    .insert(overlay::opt::VNI.to_string(), vni.to_string());
            }
            let v: u32 = n
                .options
                .get(overlay::opt::VNI)
                .and_then(|v| v.parse().ok())
                .unwrap_or(vni);
            let rec = serde_json::to_vec(&n)
                .map_err(|e| EngineError::Internal(format!("encode network {name}: {e}")))?;
            match cl.store.create_network(&id, &name, v, rec).await {
                Ok(()) => break,
                // another host took this VNI meanwhile: the next one
                Err(StoreError::Taken(m)) if !vni_given && m.contains("VXLAN id") => {
                    vni += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.dns.set_network_name(&n.id, &n.name);
        self.cache_network(&n);
        self.emit(
            "network",
            "create",
            &id,
            HashMap::from([
                ("name".to_string(), n.name.clone()),
                ("type".to_string(), n.driver.clone()),
            ]),
        );
        self.state.lock().await.networks.insert(id.clone(), n);
        Ok((id, None))
    }

    /// `network rm` of a global network, its cluster store part: the record is deleted,
    /// refused while any host has an endpoint on it (one store transaction). Changes no
    /// state: needs no engine lock.
    ///
    /// Errors: no cluster store (400); the store's refusal (409 endpoints) or failure.
    pub(crate) async fn delete_global_record(&self, n: &Network) -> Result<(), EngineError> {
        let cl = self.cluster(&n.driver)?;
        let vni = n
            .options
            .get(overlay::opt::VNI)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        cl.store.delete_network(&n.id, &n.name, vni).await?;
        Ok(())
    }

    /// `network rm` of a global network whose record left the store: its devices, names
    /// and records here go (whatever the store's watch removed already), and the
    /// `destroy` event; the other hosts forget it from the watch.
    pub(crate) async fn forget_global_network(&self, st: &mut State, n: &Network) {
        if let Some(cl) = self.cluster.as_ref() {
            if let Err(e) = cl
                .overlay
                .delete_network(&crate::networks::spec_of(n))
                .await
            {
                tracing::warn!(network = %n.name, error = %e, "removing the overlay devices");
            }
        }
        self.dns.remove_network(&n.id);
        st.networks.remove(&n.id);
        self.uncache_network(&n.id);
        self.emit(
            "network",
            "destroy",
            &n.id,
            HashMap::from([
                ("name".to_string(), n.name.clone()),
                ("type".to_string(), n.driver.clone()),
            ]),
        );
    }

    /// Publishes an endpoint of this host on a global network.
    pub(crate) async fn publish_endpoint(&self, rec: &EndpointRecord) -> Result<(), EngineError> {
        let cl = self.cluster("overlay")?;
        cl.store.put_endpoint(rec).await?;
        Ok(())
    }

    /// Withdraws an endpoint of this host from the store (logged on failure).
    pub(crate) async fn withdraw_endpoint(&self, network_id: &str, endpoint_id: &str) {
        if let Some(cl) = self.cluster.as_ref() {
            if let Err(e) = cl.store.delete_endpoint(network_id, endpoint_id).await {
                tracing::warn!(network = network_id, error = %e, "withdrawing an endpoint");
            }
        }
    }

    /// Releases the cluster store's share of endpoint `ep` on global network `n`: its
    /// record is withdrawn and its addresses go back to the store's IPAM (failures are
    /// logged, and the store retries them until it answers). Needs no engine lock (it
    /// changes no state; [`GlobalIpam`] releases only what this host holds, so a second
    /// release is harmless), so that a store that hangs holds no other request up.
    pub(crate) async fn release_store_share(&self, n: &Network, ep: &crate::state::Endpoint) {
        self.withdraw_endpoint(&n.id, &ep.id).await;
        match self.ipam_of(n) {
            Ok(ipam) => {
                let mut copy = n.clone();
                ipam.release_address(&mut copy.pools_mut(), &ep.lease())
                    .await;
            }
            Err(e) => {
                tracing::warn!(network = %n.name, error = %e, "releasing a global endpoint's addresses")
            }
        }
    }

    /// The global endpoints of container `id` (its network's record and the endpoint), as
    /// the state has them now: what [`Engine::release_store_share`] releases before a
    /// teardown.
    pub(crate) fn global_endpoints(
        &self,
        st: &State,
        id: &str,
    ) -> Vec<(Network, crate::state::Endpoint)> {
        let Some(c) = st.containers.get(id) else {
            return Vec::new();
        };
        c.attachments
            .iter()
            .filter_map(|(name, a)| {
                let n = st.networks.get(&a.network_id)?;
                let ep = c.endpoints.get(name)?;
                self.is_global(n).then(|| (n.clone(), ep.clone()))
            })
            .collect()
    }

    /// This host's VTEP address, for endpoint records.
    pub(crate) fn vtep(&self) -> Option<IpAddr> {
        self.cluster.as_ref().map(|c| IpAddr::V4(c.overlay.local()))
    }

    /// The store's record of endpoint `ep` of container `c` on global network `n` (with
    /// attachment `att`): this host's node id and VTEP, the names it answers to, its
    /// addresses and MAC.
    pub(crate) fn endpoint_record(
        &self,
        n: &Network,
        c: &crate::state::Container,
        att: &crate::state::Attachment,
        ep: &crate::state::Endpoint,
    ) -> EndpointRecord {
        EndpointRecord {
            network_id: n.id.clone(),
            endpoint_id: ep.id.clone(),
            node_id: self
                .cluster
                .as_ref()
                .map(|cl| cl.store.node_id().to_string())
                .unwrap_or_default(),
            vtep: self.vtep().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            container_id: c.id.clone(),
            names: crate::sandbox::dns_names(c, att),
            ipv4: ep.ip,
            ipv6: ep.ip6.map(|(a, _, _)| a),
            mac: ep.mac,
        }
    }

    /// Applies the store's events until the store is dropped.
    pub(crate) async fn cluster_events(
        self: Arc<Self>,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    ) {
        while let Some(ev) = rx.recv().await {
            self.apply_event(ev).await;
        }
    }

    async fn apply_event(&self, ev: Event) {
        let Some(cl) = self.cluster.as_ref() else {
            return;
        };
        let me = cl.store.node_id().to_string();
        match ev {
            Event::Snapshot {
                networks,
                endpoints,
            } => {
                let ids: std::collections::HashSet<String> =
                    networks.iter().map(|(id, _)| id.clone()).collect();
                for (id, b) in networks {
                    self.network_put(&id, &b).await;
                }
                let gone: Vec<Network> = {
                    let st = self.state.lock().await;
                    st.networks
                        .values()
                        .filter(|n| self.is_global(n) && !ids.contains(&n.id))
                        .cloned()
                        .collect()
                };
                for n in gone {
                    self.network_deleted(&n.id).await;
                }
                let now: HashMap<(String, String), EndpointRecord> = endpoints
                    .into_iter()
                    .filter(|e| e.node_id != me)
                    .map(|e| ((e.network_id.clone(), e.endpoint_id.clone()), e))
                    .collect();
                let known: Vec<(String, String)> = cl
                    .remotes
                    .lock()
                    .map(|g| g.keys().cloned().collect())
                    .unwrap_or_default();
                for k in known.into_iter().filter(|k| !now.contains_key(k)) {
                    self.remote_deleted(&k.0, &k.1).await;
                }
                for e in now.into_values() {
                    self.remote_put(e).await;
                }
                // entries a previous daemon programmed for endpoints gone meanwhile
                let stale = cl.overlay.prune_stale().await;
                if stale > 0 {
                    tracing::info!(
                        stale,
                        "removed forwarding entries of endpoints gone from the store"
                    );
                }
            }
            Event::NetworkPut(id, b) => self.network_put(&id, &b).await,
            Event::NetworkDeleted(id) => self.network_deleted(&id).await,
            Event::EndpointPut(e) if e.node_id != me => self.remote_put(e).await,
            Event::EndpointPut(_) => {}
            Event::EndpointDeleted {
                network_id,
                endpoint_id,
            } => self.remote_deleted(&network_id, &endpoint_id).await,
        }
    }

    async fn network_put(&self, id: &str, b: &[u8]) {
        let n = match serde_json::from_slice::<Network>(b) {
            Ok(n) if n.id == id && self.is_global(&n) => n,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(network = id, error = %e, "skipping a bad network record");
                return;
            }
        };
        let mut st = self.state.lock().await;
        if st.networks.contains_key(id) {
            return;
        }
        if st.networks.values().any(|o| o.name == n.name) {
            tracing::warn!(network = %n.name, "a local network has the name of a global one: the global one is not usable here");
            return;
        }
        self.dns.set_network_name(&n.id, &n.name);
        tracing::info!(network = %n.name, "global network known");
        self.cache_network(&n);
        st.networks.insert(n.id.clone(), n);
    }

    async fn network_deleted(&self, id: &str) {
        let mut st = self.state.lock().await;
        let Some(n) = st.networks.get(id).cloned() else {
            return;
        };
        if !self.is_global(&n) || !st.active_on(id).is_empty() {
            return;
        }
        if let Some(cl) = self.cluster.as_ref() {
            let _ = cl
                .overlay
                .delete_network(&crate::networks::spec_of(&n))
                .await;
        }
        self.dns.remove_network(id);
        st.networks.remove(id);
        self.uncache_network(id);
    }

    async fn remote_put(&self, e: EndpointRecord) {
        let Some(cl) = self.cluster.as_ref() else {
            return;
        };
        let IpAddr::V4(vtep) = e.vtep else {
            tracing::warn!(endpoint = %e.endpoint_id, vtep = %e.vtep, "IPv6 tunnel endpoints are not supported");
            return;
        };
        let r = Remote {
            mac: e.mac,
            ip: e.ipv4,
            ip6: e.ipv6,
            vtep,
        };
        if let Err(err) = cl
            .overlay
            .add_remote(&e.network_id, &e.endpoint_id, r)
            .await
        {
            tracing::warn!(endpoint = %e.endpoint_id, error = %err, "programming a remote endpoint");
        }
        self.dns.add_endpoint(
            &e.network_id,
            &remote_key(&e.endpoint_id),
            &e.names,
            e.ipv4,
            e.ipv6,
        );
        tracing::debug!(endpoint = %e.endpoint_id, "remote endpoint applied");
        if let Ok(mut g) = cl.remotes.lock() {
            g.insert((e.network_id.clone(), e.endpoint_id.clone()), e);
        }
    }

    async fn remote_deleted(&self, network_id: &str, endpoint_id: &str) {
        let Some(cl) = self.cluster.as_ref() else {
            return;
        };
        let known = cl
            .remotes
            .lock()
            .ok()
            .and_then(|mut g| g.remove(&(network_id.to_string(), endpoint_id.to_string())));
        if known.is_none() {
            return;
        }
        self.dns
            .remove_endpoint(network_id, &remote_key(endpoint_id));
        if let Err(e) = cl.overlay.remove_remote(network_id, endpoint_id).await {
            tracing::warn!(endpoint = endpoint_id, error = %e, "removing a remote endpoint");
        }
    }

    /// Gives a container whose only way out would be an overlay network an attachment to
    /// the local gateway bridge [`GWBRIDGE`] (Docker's `docker_gwbridge`): its default
    /// route, masquerade and published ports go through it. Containers on it do not talk
    /// to each other (`enable_icc=false`) and get no names on it. No-op when another
    /// network gives the default route, or no overlay network is non-internal.
    pub(crate) async fn add_gateway_bridge(
        &self,
        st: &mut State,
        c: &mut crate::state::Container,
    ) -> Result<(), EngineError> {
        let needs = crate::sandbox::gateway_network(st, &c.attachments).is_none()
            && c.attachments.iter().any(|(_, a)| {
                st.networks
                    .get(&a.network_id)
                    .is_some_and(|n| n.scope() == "global" && !n.internal)
            });
        if !needs {
            return Ok(());
        }
        let id = match st.networks.values().find(|n| n.name == GWBRIDGE) {
            Some(n) => n.id.clone(),
            None => {
                let in_use: Vec<Ipv4Net> = st
                    .networks
                    .values()
                    .filter_map(|n| n.pool.as_ref().map(|p| p.subnet))
                    .collect();
                let subnet =
                    ipam::pick_subnet(&in_use).map_err(|e| EngineError::Conflict(e.to_string()))?;
                let pool = Pool::new(subnet, None, None)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                let bo = tether_net::bridge::opt::BRIDGE_NAME;
                let options = HashMap::from([
                    (bo.to_string(), GWBRIDGE.to_string()),
                    (
                        tether_net::bridge::opt::ICC.to_string(),
                        "false".to_string(),
                    ),
                    (
                        tether_net::bridge::opt::MASQUERADE.to_string(),
                        "true".to_string(),
                    ),
                ]);
                let n = Network {
                    id: state::new_id(),
                    name: GWBRIDGE.into(),
                    driver: "bridge".into(),
                    created: state::now(),
                    internal: false,
                    enable_ipv6: false,
                    enable_ipv4: true,
                    attachable: false,
                    labels: HashMap::new(),
                    options,
                    bridge: Some(GWBRIDGE.into()),
                    bridge_mac: Some(link::random_mac()),
                    pool: Some(pool),
                    pool6: None,
                    subnet_given: false,
                    dns: false,
                    builtin: false,
                };
                let id = n.id.clone();
                let spec = crate::networks::spec_of(&n);
                let drv = self.driver_of(&n)?;
                drv.create_network(&spec).await?;
                if let Err(e) = self.save_network(&n) {
                    let _ = drv.delete_network(&spec).await;
                    return Err(e);
                }
                st.networks.insert(id.clone(), n);
                id
            }
        };
        c.attachments.push((
            GWBRIDGE.to_string(),
            crate::state::Attachment {
                network_id: id,
                ..Default::default()
            },
        ));
        Ok(())
    }

    /// After a live `network connect` or `disconnect` of running container `c`: gives it
    /// the gateway-bridge endpoint (see [`Engine::add_gateway_bridge`]) when it now needs
    /// one, or takes it away when another network gives the way out again or no overlay
    /// is left. The caller refreshes the default route and the /etc files.
    pub(crate) async fn sync_gateway_bridge(
        &self,
        st: &mut State,
        c: &mut crate::state::Container,
        snl: &link::Netlink,
    ) -> Result<(), EngineError> {
        let others: Vec<(String, crate::state::Attachment)> = c
            .attachments
            .iter()
            .filter(|(n, _)| n != GWBRIDGE)
            .cloned()
            .collect();
        let needs = crate::sandbox::gateway_network(st, &others).is_none()
            && others.iter().any(|(_, a)| {
                st.networks
                    .get(&a.network_id)
                    .is_some_and(|n| n.scope() == "global" && !n.internal)
            });
        let has = c.attachments.iter().any(|(n, _)| n == GWBRIDGE);
        if needs && !has {
            self.add_gateway_bridge(st, c).await?;
            let Some((name, att)) = c.attachments.last().cloned().filter(|(n, _)| n == GWBRIDGE)
            else {
                return Ok(());
            };
            if let Err(e) = self.attach_endpoint(st, c, snl, &name, &att, true).await {
                c.attachments.retain(|(n, _)| n != GWBRIDGE);
                return Err(e);
            }
        } else if has && !needs {
            let left = self.detach_endpoint(st, c, GWBRIDGE, false, &[]).await;
            c.attachments.retain(|(n, _)| n != GWBRIDGE);
            left?;
        }
        Ok(())
    }

    /// `info`'s cluster part: the store, this host and every host with its state.
    pub async fn cluster_info(&self) -> Option<serde_json::Value> {
        let cl = self.cluster.as_ref()?;
        let status = cl.store.status();
        let nodes = match cl.store.nodes().await {
            Ok(n) => serde_json::to_value(n).unwrap_or_default(),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        Some(serde_json::json!({ "Store": status, "Nodes": nodes }))
    }

    /// `node ls`: every host of the cluster with its state.
    ///
    /// Errors: 503 with Docker's "not a swarm manager" text without a cluster store.
    pub async fn cluster_nodes(&self) -> Result<Vec<tether_cluster::NodeView>, EngineError> {
        let cl = self
            .cluster("overlay")
            .map_err(|_| EngineError::Unavailable(crate::NOT_SWARM_MANAGER.into()))?;
        Ok(cl.store.nodes().await?)
    }

    /// The remote forwarding entries of a global network on this host (MAC, VTEP), for
    /// tests and diagnostics.
    pub async fn overlay_fdb(&self, key: &str) -> Result<Vec<(String, String)>, EngineError> {
        let n = self.state.lock().await.network(key)?.clone();
        let cl = self.cluster(&n.driver)?;
        Ok(cl
            .overlay
            .fdb(&crate::networks::spec_of(&n))
            .await?
            .into_iter()
            .map(|(m, v)| (link::format_mac(&m), v.to_string()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_takes_an_ip_or_an_interface() {
        let addrs = vec![(
            "eth0".to_string(),
            IpAddr::V4(Ipv4Addr::new(192, 168, 77, 2)),
            24,
        )];
        assert_eq!(
            resolve_advertise("10.1.2.3", &addrs).ok(),
            Some(Ipv4Addr::new(10, 1, 2, 3))
        );
        assert_eq!(
            resolve_advertise("eth0:2376", &addrs).ok(),
            Some(Ipv4Addr::new(192, 168, 77, 2))
        );
        assert!(resolve_advertise("eth9", &addrs).is_err());
    }

    #[test]
    fn overlay_subnets_skip_used_ones() {
        let used: Vec<Ipv4Net> = ["10.0.0.0/24", "10.0.1.0/24"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        assert_eq!(
            pick_overlay_subnet(&used).ok().map(|s| s.to_string()),
            Some("10.0.2.0/24".to_string())
        );
    }
}
