//! tether-cluster: the cluster store of tether's overlay networks, in etcd (v3 API,
//! through the `etcd-client` crate).
//!
//! Several `tether daemon`s started with the same `--cluster-store etcd://HOST:PORT` form a
//! cluster without Swarm, as dockerd's pre-Swarm `--cluster-store` did. Each host:
//!
//! * registers itself under a **lease** (etcd `LeaseGrant`, TTL [`StoreConfig::ttl`]) that
//!   it keeps alive ([`Store`]'s session task); the keys of everything it owns in the store
//!   (its node record, its endpoints, its address leases) are put with that lease, so when
//!   the host dies they vanish by themselves within the TTL and every other host sees them
//!   go through its watch;
//! * re-registers on its own when etcd comes back (a new lease, every owned key put again):
//!   a host that was away, or an etcd that restarted, resyncs without anyone's help;
//! * watches the store ([`Event`]s: a [`Event::Snapshot`] after every (re)connection, then
//!   puts and deletes) to learn the global networks and the other hosts' endpoints.
//!
//! Key layout, all under [`PREFIX`] (`/tether/v1/`):
//!
//! | key | value | lease |
//! |---|---|---|
//! | `nodes/<node-id>` | [`NodeRecord`] (live) | the node's |
//! | `members/<node-id>` | [`NodeRecord`] (ever seen) | none |
//! | `networks/<net-id>` | the network record (JSON, the engine's) | none |
//! | `netnames/<name>` | net-id | none |
//! | `vnis/<vni>` | net-id | none |
//! | `endpoints/<net-id>/<ep-id>` | [`EndpointRecord`] | the owner's |
//! | `ipam/<net-id>/<address>` (IPv4 or IPv6) | `<node-id>/<ep-id>` | the owner's |
//!
//! Address allocation is a compare-and-swap transaction (`create_revision(key) == 0`, then
//! put), so hosts allocating concurrently never hand out one address twice.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions,
    Txn, TxnOp, WatchOptions,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The root of every key tether writes.
pub const PREFIX: &str = "/tether/v1/";

/// Bound on one store request: beyond it the store counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors of the cluster store. Each names the store (`etcd://HOST:PORT,...`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's address or TLS files are unusable (a daemon flag's fault).
    #[error("cluster store {store}: {reason}")]
    Config {
        /// The store as given.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// The store does not answer (down, partitioned, or the session is being
    /// re-established).
    #[error("cluster store {store} is unreachable: {reason}")]
    Unreachable {
        /// The store as given.
        store: String,
        /// The last error seen.
        reason: String,
    },
    /// A name, VNI or address is already taken in the store.
    #[error("{0}")]
    Taken(String),
    /// Objects on other hosts still use what is to be removed.
    #[error("{0}")]
    InUse(String),
    /// A value in the store could not be decoded.
    #[error("cluster store {store}: bad record at {key}: {reason}")]
    Corrupt {
        /// The store as given.
        store: String,
        /// The key.
        key: String,
        /// The decoding error.
        reason: String,
    },
}

/// TLS files for the connection to etcd (etcd's own client flags: `--cacert`, `--cert`,
/// `--key`; dockerd's `--cluster-store-opt kv.cacertfile/kv.certfile/kv.keyfile`). PEM.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// CA certificate(s) that signed etcd's server certificate.
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate, for etcd's `--client-cert-auth`.
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's key.
    pub key: Option<std::path::PathBuf>,
}

/// How a host joins the cluster.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `--cluster-store` as given (`etcd://HOST:PORT[,HOST:PORT...]`), for messages.
    pub url: String,
    /// The etcd endpoints (`http://HOST:PORT`, or `https://` with TLS).
    pub endpoints: Vec<String>,
    /// TLS to etcd, when given.
    pub tls: Option<TlsFiles>,
    /// The address other hosts reach this one on (`--cluster-advertise`): the VXLAN
    /// tunnel endpoint (VTEP).
    pub advertise: IpAddr,
    /// This host's id (stable across restarts: kept under the daemon's root).
    pub node_id: String,
    /// This host's name, for `node ls`.
    pub hostname: String,
    /// The lease TTL: a host that stops renewing disappears from the others within it.
    pub ttl: Duration,
}

impl StoreConfig {
    /// Parses `--cluster-store etcd://HOST:PORT[,HOST:PORT...]` into endpoints
    /// (`http://` or, with `tls`, `https://`).
    ///
    /// Errors: [`StoreError::Config`] for another scheme, an empty list or a host without
    /// a port.
    pub fn parse_url(url: &str, tls: bool) -> Result<Vec<String>, StoreError> {
        let bad = |reason: String| StoreError::Config {
            store: url.to_string(),
            reason,
        };
        let rest = url.strip_prefix("etcd://").ok_or_else(|| {
            bad(
                "expected etcd://HOST:PORT[,HOST:PORT...] (etcd is the one store tether speaks)"
                    .into(),
            )
        })?;
        let scheme = if tls { "https" } else { "http" };
        let mut out = Vec::new();
        for hp in rest.trim_end_matches('/').split(',') {
            let ok = hp
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(bad(format!("invalid member {hp:?}: expected HOST:PORT")));
            }
            out.push(format!("{scheme}://{hp}"));
        }
        Ok(out)
    }
}

/// A host of the cluster (`nodes/<id>` while alive, `members/<id>` forever).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    /// The host's id.
    pub id: String,
    /// Its hostname.
    pub hostname: String,
    /// Its advertised address (VTEP).
    pub addr: IpAddr,
    /// When it (last) joined, RFC 3339.
    pub joined: String,
}

/// A host as `node ls` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeView {
    /// The record.
    #[serde(flatten)]
    pub record: NodeRecord,
    /// "ready" while its lease lives, "down" after.
    pub state: &'static str,
    /// Whether it is this host.
    pub is_self: bool,
}

/// An endpoint of a global network, as every host sees it (`endpoints/<net>/<ep>`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EndpointRecord {
    /// The network's id.
    pub network_id: String,
    /// The endpoint's id.
    pub endpoint_id: String,
    /// The host that runs it.
    pub node_id: String,
    /// That host's VTEP address.
    pub vtep: IpAddr,
    /// The container's id.
    pub container_id: String,
    /// The names it answers to on the network (name first, short id, hostname, aliases).
    pub names: Vec<String>,
    /// Its IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address, on a network with `--ipv6` (absent in records of older hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// Its MAC address.
    pub mac: [u8; 6],
}

/// What the watch reports.
#[derive(Clone, Debug)]
pub enum Event {
    /// The whole current state, after every (re)connection: the receiver replaces what it
    /// knew.
    Snapshot {
        /// Every global network: (id, record bytes).
        networks: Vec<(String, Vec<u8>)>,
        /// Every endpoint of every host (this one's included).
        endpoints: Vec<EndpointRecord>,
    },
    /// A global network was created (or its record changed).
    NetworkPut(String, Vec<u8>),
    /// A global network was removed.
    NetworkDeleted(String),
    /// An endpoint appeared (or changed).
    EndpointPut(EndpointRecord),
    /// An endpoint went (removed, or its host's lease expired).
    EndpointDeleted {
        /// The network's id.
        network_id: String,
        /// The endpoint's id.
        endpoint_id: String,
    },
}

/// The store's state as `info` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct StoreStatus {
    /// `--cluster-store`.
    pub store: String,
    /// `--cluster-advertise`, resolved.
    pub advertise: IpAddr,
    /// This host's id.
    pub node_id: String,
    /// Whether the session (lease) is up.
    pub connected: bool,
    /// The last error, empty when none.
    pub last_error: String,
    /// The lease TTL, seconds.
    pub ttl_seconds: u64,
}

struct Inner {
    cfg: StoreConfig,
    client: Client,
    /// The current lease (0: none).
    lease: AtomicI64,
    up: AtomicBool,
    last_error: Mutex<String>,
    /// Leased keys this host owns, re-put on every new lease.
    owned: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Wakes the session task to drop the lease and register again.
    kick: tokio::sync::Notify,
}

/// A host's handle on the cluster store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn key(parts: &[&str]) -> String {
    let mut k = PREFIX.to_string();
    k.push_str(&parts.join("/"));
    k
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
    }
}

impl Store {
    /// Connects (lazily: etcd need not be up) and starts the session task (lease and
    /// keep-alive, re-registration) and the watch task. Events go to the returned receiver.
    /// Must be called inside a tokio runtime.
    ///
    /// Errors: [`StoreError::Config`] when the endpoints or TLS files are unusable.
    pub async fn open(
        cfg: StoreConfig,
    ) -> Result<(Store, mpsc::UnboundedReceiver<Event>), StoreError> {
        let conf = |reason: String| StoreError::Config {
            store: cfg.url.clone(),
            reason,
        };
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), REQUEST_TIMEOUT);
        if let Some(t) = &cfg.tls {
            let mut tls = etcd_client::TlsOptions::new();
            if let Some(ca) = &t.ca {
                let pem = std::fs::read(ca).map_err(|e| conf(format!("{}: {e}", ca.display())))?;
                tls = tls.ca_certificate(etcd_client::Certificate::from_pem(pem));
            }
            match (&t.cert, &t.key) {
                (Some(c), Some(k)) => {
                    let cp = std::fs::read(c).map_err(|e| conf(format!("{}: {e}", c.display())))?;
                    let kp = std::fs::read(k).map_err(|e| conf(format!("{}: {e}", k.display())))?;
                    tls = tls.identity(etcd_client::Identity::from_pem(cp, kp));
                }
                (None, None) => {}
                _ => {
                    return Err(conf(
                        "a client certificate needs its key, and a key its certificate".into(),
                    ))
                }
            }
            opts = opts.with_tls(tls);
        }
        let client = Client::connect(&cfg.endpoints, Some(opts))
            .await
            .map_err(|e| conf(e.to_string()))?;
        let inner = Arc::new(Inner {
            cfg,
            client,
            lease: AtomicI64::new(0),
            up: AtomicBool::new(false),
            last_error: Mutex::new("not connected yet".into()),
            owned: Mutex::new(BTreeMap::new()),
            kick: tokio::sync::Notify::new(),
        });
        let store = Store { inner };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(store.clone().session());
        tokio::spawn(store.clone().watch(tx));
        Ok((store, rx))
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.cfg
    }

    /// This host's id.
    pub fn node_id(&self) -> &str {
        &self.inner.cfg.node_id
    }

    fn unreachable(&self, reason: impl Into<String>) -> StoreError {
        let reason = reason.into();
        self.note_error(&reason);
        StoreError::Unreachable {
            store: self.inner.cfg.url.clone(),
            reason,
        }
    }

    fn note_error(&self, reason: &str) {
        if let Ok(mut g) = self.inner.last_error.lock() {
            *g = reason.to_string();
        }
    }

    /// Fails at once when the session is down: callers about to change the store (an
    /// overlay network created, a container connected) get the store's name and the last
    /// error instead of waiting.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.inner.up.load(Ordering::SeqCst) {
            return Ok(());
        }
        let reason = self
            .inner
            .last_error
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        Err(StoreError::Unreachable {
            store: self.inner.cfg.url.clone(),
            reason,
        })
    }

    /// The store's state, for `info`.
    pub fn status(&self) -> StoreStatus {
        StoreStatus {
            store: self.inner.cfg.url.clone(),
            advertise: self.inner.cfg.advertise,
            node_id: self.inner.cfg.node_id.clone(),
            connected: self.inner.up.load(Ordering::SeqCst),
            last_error: self
                .inner
                .last_error
                .lock()
                .map(|g| g.clone())
                .unwrap_or_default(),
            ttl_seconds: self.inner.cfg.ttl.as_secs(),
        }
    }

    fn node_record(&self) -> NodeRecord {
        NodeRecord {
            id: self.inner.cfg.node_id.clone(),
            hostname: self.inner.cfg.hostname.clone(),
            addr: self.inner.cfg.advertise,
            joined: chrono_now(),
        }
    }

    /// The session: grant a lease, put every owned key with it, keep it alive every
    /// TTL/3; on any failure mark the store down, wait and start over with a new lease.
    async fn session(self) {
        let ttl = self.inner.cfg.ttl.as_secs().max(2) as i64;
        loop {
            match self.register(ttl).await {
                Ok(lease) => {
                    self.inner.up.store(true, Ordering::SeqCst);
                    tracing::info!(store = %self.inner.cfg.url, lease, "joined the cluster");
                    let why = self.keep_alive(lease, ttl).await;
                    self.inner.up.store(false, Ordering::SeqCst);
                    tracing::warn!(store = %self.inner.cfg.url, reason = %why, "cluster session lost; registering again");
                    self.note_error(&why);
                }
                Err(e) => {
                    self.inner.up.store(false, Ordering::SeqCst);
                    self.note_error(&e);
                    tracing::debug!(store = %self.inner.cfg.url, error = %e, "cannot join the cluster yet");
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn register(&self, ttl: i64) -> Result<i64, String> {
        let mut c = self.inner.client.clone();
        let lease = timed(c.lease_grant(ttl, None)).await?.id();
        let node = serde_json::to_vec(&self.node_record()).map_err(|e| e.to_string())?;
        let with = || Some(PutOptions::new().with_lease(lease));
        timed(c.put(key(&["nodes", self.node_id()]), node.clone(), with())).await?;
        timed(c.put(key(&["members", self.node_id()]), node, None)).await?;
        self.put_all_owned(lease).await?;
        let old = self.inner.lease.swap(lease, Ordering::SeqCst);
        if old != 0 && old != lease {
            // keys still on the old lease are not ours any more
            let _ = timed(c.lease_revoke(old)).await;
        }
        Ok(lease)
    }

    /// Puts every key this host owns under `lease`.
    async fn put_all_owned(&self, lease: i64) -> Result<(), String> {
        let mut c = self.inner.client.clone();
        let owned: Vec<(String, Vec<u8>)> = self
            .inner
            .owned
            .lock()
            .map(|g| g.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (k, v) in owned {
            Self::put_owned(&mut c, lease, k, v).await?;
        }
        Ok(())
    }

    /// Puts one key this host owns under `lease`. An address key is put only if it is
    /// free or already this host's: one taken by another host while this one was away
    /// stays theirs (logged).
    async fn put_owned(c: &mut Client, lease: i64, k: String, v: Vec<u8>) -> Result<(), String> {
        let with = || Some(PutOptions::new().with_lease(lease));
        if !k.starts_with(&key(&["ipam"])) {
            timed(c.put(k, v, with())).await?;
            return Ok(());
        }
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                k.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(k.clone(), v.clone(), with())])
            .or_else(vec![TxnOp::get(k.clone(), None)]);
        let r = timed(c.txn(txn)).await?;
        if !r.succeeded() {
            let txn = Txn::new()
                .when(vec![Compare::value(k.clone(), CompareOp::Equal, v.clone())])
                .and_then(vec![TxnOp::put(k.clone(), v, with())]);
            if !timed(c.txn(txn)).await?.succeeded() {
                tracing::error!(key = %k, "address taken by another host while this one was away");
            }
        }
        Ok(())
    }

    async fn keep_alive(&self, lease: i64, ttl: i64) -> String {
        let mut c = self.inner.client.clone();
        let (mut keeper, mut stream) = match timed(c.lease_keep_alive(lease)).await {
            Ok(x) => x,
            Err(e) => return e,
        };
        let every = Duration::from_millis((ttl as u64 * 1000 / 3).max(300));
        loop {
            if let Err(e) = timed(keeper.keep_alive()).await {
                return e;
            }
            match timed(stream.message()).await {
                Ok(Some(r)) if r.ttl() > 0 => {}
                Ok(Some(_)) => return "lease expired".into(),
                Ok(None) => return "keep-alive stream closed".into(),
                Err(e) => return e,
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.inner.kick.notified() => {
                    // adopted keys the registration may have missed: put every owned key
                    // again under this lease
                    if let Err(e) = self.put_all_owned(lease).await {
                        return e;
                    }
                }
            }
        }
    }

    /// The watch: a snapshot of networks and endpoints, then every change from the
    /// snapshot's revision on; started over (with a new snapshot) after any error.
    async fn watch(self, tx: mpsc::UnboundedSender<Event>) {
        loop {
            if tx.is_closed() {
                return;
            }
            if let Err(e) = self.watch_once(&tx).await {
                tracing::debug!(store = %self.inner.cfg.url, error = %e, "watch interrupted");
                self.note_error(&e);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn watch_once(&self, tx: &mpsc::UnboundedSender<Event>) -> Result<(), String> {
        let mut c = self.inner.client.clone();
        let r = timed(c.get(PREFIX, Some(GetOptions::new().with_prefix()))).await?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        let mut networks = Vec::new();
        let mut endpoints = Vec::new();
        for kv in r.kvs() {
            match self.decode(kv.key(), kv.value()) {
                Some(Event::NetworkPut(id, b)) => networks.push((id, b)),
                Some(Event::EndpointPut(e)) => endpoints.push(e),
                _ => {}
            }
        }
        let _ = tx.send(Event::Snapshot {
            networks,
            endpoints,
        });
        let mut w = timed(
            c.watch(
                PREFIX,
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(rev + 1),
                ),
            ),
        )
        .await?;
        loop {
            let Some(resp) = w.message().await.map_err(|e| e.to_string())? else {
                return Err("watch stream closed".into());
            };
            if resp.canceled() {
                return Err(format!("watch canceled: {}", resp.cancel_reason()));
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let e = match ev.event_type() {
                    EventType::Put => self.decode(kv.key(), kv.value()),
                    EventType::Delete => deleted(kv.key()),
                };
                if let Some(e) = e {
                    if tx.send(e).is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn decode(&self, k: &[u8], v: &[u8]) -> Option<Event> {
        let k = std::str::from_utf8(k).ok()?.strip_prefix(PREFIX)?;
        let parts: Vec<&str> = k.split('/').collect();
        match parts.as_slice() {
            ["networks", id] => Some(Event::NetworkPut(id.to_string(), v.to_vec())),
            ["endpoints", _, _] => match serde_json::from_slice::<EndpointRecord>(v) {
                Ok(e) => Some(Event::EndpointPut(e)),
                Err(e) => {
                    tracing::warn!(key = k, error = %e, "skipping a bad endpoint record");
                    None
                }
            },
            _ => None,
        }
    }

    fn lease(&self) -> Result<i64, StoreError> {
        self.check()?;
        match self.inner.lease.load(Ordering::SeqCst) {
            0 => Err(self.unreachable("no lease yet")),
            l => Ok(l),
        }
    }

    /// Creates a global network: its record, its name and its VNI, in one transaction
    /// that fails if any of the three exists.
    ///
    /// Errors: [`StoreError::Taken`] naming the name or VNI in use; unreachable store.
    pub async fn create_network(
        &self,
        id: &str,
        name: &str,
        vni: u32,
        record: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut c = self.inner.client.clone();
        let (kn, kname, kvni) = (
            key(&["networks", id]),
            key(&["netnames", name]),
            key(&["vnis", &vni.to_string()]),
        );
        let absent = |k: &String| Compare::create_revision(k.clone(), CompareOp::Equal, 0);
        let txn = Txn::new()
            .when(vec![absent(&kn), absent(&kname), absent(&kvni)])
            .and_then(vec![
                TxnOp::put(kname.clone(), id, None),
                TxnOp::put(kvni.clone(), id, None),
                TxnOp::put(kn, record, None),
            ])
            .or_else(vec![TxnOp::get(kname, None)]);
        let r = timed(c.txn(txn)).await.map_err(|e| self.unreachable(e))?;
        if r.succeeded() {
            return Ok(());
        }
        let name_taken = r.op_responses().into_iter().any(|op| match op {
            etcd_client::TxnOpResponse::Get(g) => !g.kvs().is_empty(),
            _ => false,
        });
        Err(StoreError::Taken(if name_taken {
            format!("network with name {name} already exists in the cluster")
        } else {
            format!("VXLAN id {vni} is used by another network of the cluster")
        }))
    }

    /// Every global network: (id, record bytes).
    pub async fn networks(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut c = self.inner.client.clone();
        let r = timed(c.get(
            key(&["networks", ""]),
            Some(GetOptions::new().with_prefix()),
        ))
        .await
        .map_err(|e| self.unreachable(e))?;
        Ok(r.kvs()
            .iter()
            .filter_map(|kv| match self.decode(kv.key(), kv.value()) {
                Some(Event::NetworkPut(id, b)) => Some((id, b)),
                _ => None,
            })
            .collect())
    }

    /// Whether `name` names a global network, and which.
    pub async fn network_named(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.inner.client.clone();
        let r = timed(c.get(key(&["netnames", name]), None))
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(r.kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    /// Removes a global network, refused while any host has an endpoint on it: one
    /// transaction that deletes the record, name, VNI and address keys only if no
    /// `endpoints/<id>/` key exists.
    ///
    /// Errors: [`StoreError::InUse`] naming the hosts with endpoints; unreachable store.
    pub async fn delete_network(&self, id: &str, name: &str, vni: u32) -> Result<(), StoreError> {
        self.check()?;
        let mut c = self.inner.client.clone();
        let eps = key(&["endpoints", id, ""]);
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                eps.clone(),
                CompareOp::Equal,
                0,
            )
            .with_prefix()])
            .and_then(vec![
                TxnOp::delete(key(&["networks", id]), None),
                TxnOp::delete(key(&["netnames", name]), None),
                TxnOp::delete(key(&["vnis", &vni.to_string()]), None),
                TxnOp::delete(
                    key(&["ipam", id, ""]),
                    Some(DeleteOptions::new().with_prefix()),
                ),
            ])
            .or_else(vec![TxnOp::get(eps, Some(GetOptions::new().with_prefix()))]);
        let r = timed(c.txn(txn)).await.map_err(|e| self.unreachable(e))?;
        if r.succeeded() {
            return Ok(());
        }
        let mut hosts = BTreeSet::new();
        let mut count = 0;
        for op in r.op_responses() {
            if let etcd_client::TxnOpResponse::Get(g) = op {
                for kv in g.kvs() {
                    count += 1;
                    if let Ok(e) = serde_json::from_slice::<EndpointRecord>(kv.value()) {
                        hosts.insert(e.vtep.to_string());
                    }
                }
            }
        }
        Err(StoreError::InUse(format!(
            "error while removing network: network {name} id {id} has active endpoints ({count} on host(s) {}); stop or disconnect them first",
            hosts.into_iter().collect::<Vec<_>>().join(", ")
        )))
    }

    /// Allocates an address of family `A` ([`Ipv4Addr`] or [`Ipv6Addr`]) on global network
    /// `net` for endpoint `ep` of this host: reads the addresses of that family in use
    /// (`ipam/<net-id>/<address>`; the other family's keys do not parse as `A`), lets
    /// `pick` choose one (the network's pool rules), and takes it with a compare-and-swap
    /// (`create_revision == 0`) under this host's lease; on a lost race it reads again and
    /// retries (up to 64 times).
    ///
    /// Errors: whatever `pick` returns (as [`StoreError::Taken`]); unreachable store.
    pub async fn allocate_ip<A>(
        &self,
        net: &str,
        ep: &str,
        mut pick: impl FnMut(&BTreeSet<A>) -> Result<A, String>,
    ) -> Result<A, StoreError>
    where
        A: std::str::FromStr + std::fmt::Display + Ord + Copy,
    {
        let lease = self.lease()?;
        let mut c = self.inner.client.clone();
        let prefix = key(&["ipam", net, ""]);
        let owner = format!("{}/{ep}", self.node_id());
        for _ in 0..64 {
            let r = timed(c.get(
                prefix.clone(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ))
            .await
            .map_err(|e| self.unreachable(e))?;
            let used: BTreeSet<A> = r
                .kvs()
                .iter()
                .filter_map(|kv| {
                    std::str::from_utf8(kv.key())
                        .ok()?
                        .strip_prefix(&prefix)?
                        .parse()
                        .ok()
                })
                .collect();
            let ip = pick(&used).map_err(StoreError::Taken)?;
            let k = format!("{prefix}{ip}");
            let txn = Txn::new()
                .when(vec![Compare::create_revision(
                    k.clone(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then(vec![TxnOp::put(
                    k.clone(),
                    owner.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )]);
            let won = timed(c.txn(txn))
                .await
                .map_err(|e| self.unreachable(e))?
                .succeeded();
            if won {
                if let Ok(mut g) = self.inner.owned.lock() {
                    g.insert(k, owner.into_bytes());
                }
                return Ok(ip);
            }
            tracing::debug!(network = net, %ip, "address taken by another host meanwhile; retrying");
        }
        Err(StoreError::Taken(format!(
            "could not allocate an address on network {net}: too many concurrent allocations"
        )))
    }

    /// Releases an address this host holds on `net` (only if still its own); retried
    /// when the store does not answer, as [`Store::delete_endpoint`].
    pub async fn release_ip(&self, net: &str, ip: IpAddr) -> Result<(), StoreError> {
        let k = key(&["ipam", net, &ip.to_string()]);
        let mine = self.inner.owned.lock().ok().and_then(|mut g| g.remove(&k));
        let Some(v) = mine else { return Ok(()) };
        self.remove_or_retry(k, Some(v)).await
    }

    /// Deletes key `k` (only while it still holds `value`, when given). When the store
    /// does not answer, the key would stay under this host's live lease for good (an
    /// address nobody can take, a record other hosts keep resolving): a task retries the
    /// deletion with a growing pause (0.3 s, up to 5 s) until the store answers, or until
    /// this host owns the key again (put anew meanwhile).
    ///
    /// Errors: [`StoreError::Unreachable`] for the first attempt (the retries go on).
    async fn remove_or_retry(&self, k: String, value: Option<Vec<u8>>) -> Result<(), StoreError> {
        match self.remove_key(&k, value.as_deref()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let me = self.clone();
                let what = k.clone();
                tokio::spawn(async move {
                    let mut pause = Duration::from_millis(300);
                    loop {
                        tokio::time::sleep(pause).await;
                        let owned_again = me
                            .inner
                            .owned
                            .lock()
                            .map(|g| g.contains_key(&k))
                            .unwrap_or(false);
                        if owned_again || me.remove_key(&k, value.as_deref()).await.is_ok() {
                            tracing::info!(key = %k, "removed from the cluster store after a failed attempt");
                            return;
                        }
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                });
                tracing::warn!(key = %what, error = %e, "the cluster store did not remove a key; retrying");
                Err(self.unreachable(e))
            }
        }
    }

    /// One deletion of `k` (a compare-and-delete on `value` when given; no error when the
    /// comparison fails: the key is someone else's now).
    async fn remove_key(&self, k: &str, value: Option<&[u8]>) -> Result<(), String> {
        let mut c = self.inner.client.clone();
        match value {
            Some(v) => {
                let txn = Txn::new()
                    .when(vec![Compare::value(k, CompareOp::Equal, v)])
                    .and_then(vec![TxnOp::delete(k, None)]);
                timed(c.txn(txn)).await.map(|_| ())
            }
            None => timed(c.delete(k, None)).await.map(|_| ()),
        }
    }

    /// Publishes an endpoint of this host (under its lease; re-put after every new lease).
    pub async fn put_endpoint(&self, e: &EndpointRecord) -> Result<(), StoreError> {
        let lease = self.lease()?;
        let k = key(&["endpoints", &e.network_id, &e.endpoint_id]);
        let v = serde_json::to_vec(e).map_err(|err| StoreError::Corrupt {
            store: self.inner.cfg.url.clone(),
            key: k.clone(),
            reason: err.to_string(),
        })?;
        if let Ok(mut g) = self.inner.owned.lock() {
            g.insert(k.clone(), v.clone());
        }
        let mut c = self.inner.client.clone();
        if let Err(err) =
            timed(c.put(k.clone(), v, Some(PutOptions::new().with_lease(lease)))).await
        {
            if let Ok(mut g) = self.inner.owned.lock() {
                g.remove(&k);
            }
            return Err(self.unreachable(err));
        }
        Ok(())
    }

    /// Records an endpoint of this host that already runs (daemon restart): its record is
    /// put now under the current lease when the session is up (a previous daemon's lease,
    /// if still alive, then no longer holds it), else at the next registration, which puts
    /// every owned key. Its addresses come back through [`Store::adopt_ip`].
    pub async fn adopt_endpoint(&self, e: &EndpointRecord) {
        let Ok(v) = serde_json::to_vec(e) else {
            return;
        };
        let k = key(&["endpoints", &e.network_id, &e.endpoint_id]);
        self.adopt_keys(vec![(k, v)]).await;
    }

    /// Records an address this host's endpoint `ep` already holds on `net` (daemon
    /// restart), as [`Store::adopt_endpoint`] does with its record.
    pub async fn adopt_ip(&self, net: &str, ep: &str, ip: IpAddr) {
        self.adopt_keys(vec![self.ipam_key(net, ep, ip)]).await;
    }

    /// The key and value of an address lease (`ipam/<net-id>/<address>`,
    /// `<node-id>/<ep-id>`).
    fn ipam_key(&self, net: &str, ep: &str, ip: IpAddr) -> (String, Vec<u8>) {
        (
            key(&["ipam", net, &ip.to_string()]),
            format!("{}/{ep}", self.node_id()).into_bytes(),
        )
    }

    /// Owns `keys` and puts them under the current lease (now when the session is up, else
    /// at the next registration).
    async fn adopt_keys(&self, keys: Vec<(String, Vec<u8>)>) {
        if let Ok(mut g) = self.inner.owned.lock() {
            g.extend(keys.iter().cloned());
        }
        let lease = self.inner.lease.load(Ordering::SeqCst);
        if lease != 0 && self.inner.up.load(Ordering::SeqCst) {
            let mut c = self.inner.client.clone();
            for (k, v) in keys {
                if let Err(err) = Self::put_owned(&mut c, lease, k, v).await {
                    self.note_error(&err);
                    // the next registration puts it
                    self.inner.kick.notify_one();
                    return;
                }
            }
        } else {
            // a registration under way may have read the owned keys before these: the
            // session puts them all again once it is up
            self.inner.kick.notify_one();
        }
    }

    /// Withdraws an endpoint of this host. The local record is dropped even when the
    /// store is down; the deletion is then retried until the store answers (see
    /// `remove_or_retry`), or the key goes with the lease if the session is lost first.
    pub async fn delete_endpoint(&self, net: &str, ep: &str) -> Result<(), StoreError> {
        let k = key(&["endpoints", net, ep]);
        if let Ok(mut g) = self.inner.owned.lock() {
            g.remove(&k);
        }
        self.remove_or_retry(k, None).await
    }

    /// Every host ever seen, with its state.
    pub async fn nodes(&self) -> Result<Vec<NodeView>, StoreError> {
        let mut c = self.inner.client.clone();
        let opts = || Some(GetOptions::new().with_prefix());
        let members = timed(c.get(key(&["members", ""]), opts()))
            .await
            .map_err(|e| self.unreachable(e))?;
        let live = timed(c.get(key(&["nodes", ""]), opts()))
            .await
            .map_err(|e| self.unreachable(e))?;
        let live: BTreeMap<String, NodeRecord> = live
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice::<NodeRecord>(kv.value()).ok())
            .map(|n| (n.id.clone(), n))
            .collect();
        let mut out: Vec<NodeView> = members
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice::<NodeRecord>(kv.value()).ok())
            .map(|n| NodeView {
                state: if live.contains_key(&n.id) {
                    "ready"
                } else {
                    "down"
                },
                is_self: n.id == self.inner.cfg.node_id,
                record: live.get(&n.id).cloned().unwrap_or(n),
            })
            .collect();
        out.sort_by_key(|n| n.record.addr);
        Ok(out)
    }

    /// Drops this host's session: revokes its lease so that its endpoints and addresses
    /// leave the other hosts at once (clean daemon shutdown).
    pub async fn leave(&self) {
        let lease = self.inner.lease.swap(0, Ordering::SeqCst);
        self.inner.up.store(false, Ordering::SeqCst);
        if lease != 0 {
            let mut c = self.inner.client.clone();
            let _ = timed(c.lease_revoke(lease)).await;
        }
    }
}

fn deleted(k: &[u8]) -> Option<Event> {
    let k = std::str::from_utf8(k).ok()?.strip_prefix(PREFIX)?;
    let parts: Vec<&str> = k.split('/').collect();
    match parts.as_slice() {
        ["networks", id] => Some(Event::NetworkDeleted(id.to_string())),
        ["endpoints", net, ep] => Some(Event::EndpointDeleted {
            network_id: net.to_string(),
            endpoint_id: ep.to_string(),
        }),
        _ => None,
    }
}

/// Now as RFC 3339 (UTC, seconds), without a date crate: from the system clock.
fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86400;
    let rem = secs % 86400;
    // civil from days (Howard Hinnant's algorithm)
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A new random host id (32 hex digits).
pub fn new_node_id() -> String {
    let b: [u8; 16] = rand::random();
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            StoreConfig::parse_url("etcd://10.0.0.1:2379,h2:2379", false).ok(),
            Some(vec![
                "http://10.0.0.1:2379".to_string(),
                "http://h2:2379".to_string()
            ])
        );
        assert_eq!(
            StoreConfig::parse_url("etcd://h:2379", true).ok(),
            Some(vec!["https://h:2379".to_string()])
        );
        for bad in ["consul://h:8500", "etcd://h", "etcd://:2379", "etcd://h:x"] {
            let e = StoreConfig::parse_url(bad, false)
                .err()
                .map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains(bad)),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn keys_decode() {
        assert!(matches!(
            deleted(b"/tether/v1/endpoints/n1/e1"),
            Some(Event::EndpointDeleted { ref network_id, ref endpoint_id }) if network_id == "n1" && endpoint_id == "e1"
        ));
        assert!(
            matches!(deleted(b"/tether/v1/networks/n1"), Some(Event::NetworkDeleted(ref id)) if id == "n1")
        );
        assert!(deleted(b"/tether/v1/ipam/n1/10.0.0.2").is_none());
        assert_eq!(chrono_now().len(), 20);
    }
}
