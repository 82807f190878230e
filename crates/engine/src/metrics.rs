//! The daemon's metrics (`tether daemon --metrics-addr`), in the Prometheus text
//! exposition format, version 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>):
//! `# HELP` and `# TYPE` lines, then one `name{label="value",...} number` line per series;
//! counters end in `_total`, histograms have cumulative `_bucket{le="..."}` series plus
//! `_sum` and `_count`, durations are in seconds.
//!
//! Two kinds of series:
//!
//! * state, computed from the engine's model at each scrape ([`Engine::metrics_text`]):
//!   - `tether_network_containers{network}`: containers attached to the network (running
//!     or not);
//!   - `tether_network_endpoints{network}`: live endpoints on it (interfaces of running
//!     containers);
//!   - `tether_containers{state}`: containers by state (`created`, `running`, `exited`...);
//!   - `tether_ipam_leased_addresses{network,family}` and
//!     `tether_ipam_pool_addresses{network,family}`: addresses leased from the network's
//!     pool and the addresses it can hand out (`family` is `ipv4` or `ipv6`). A pool's use
//!     is checked after each endpoint setup and at each scrape: found at or over 90 % after
//!     being found under, it is logged as a warning (once per crossing, so restarting a
//!     container in a full pool does not warn again).
//! * events, counted where they happen:
//!   - `tether_dns_queries_total`, `tether_dns_answers_total{rcode}` (`NOERROR`,
//!     `NXDOMAIN`, `SERVFAIL`, ...), `tether_dns_forwards_total{result}` (one per attempt
//!     at one upstream: `answered`, `rejected`, `refused`, `timeout`, `unavailable`,
//!     `error`), `tether_dns_servfails_total{reason}` (SERVFAIL made by tether itself:
//!     `no_upstream`, `overloaded`), and `tether_dns_query_duration_seconds{source}`
//!     (arrival to answer; `local` or `forwarded`) — counted by the embedded DNS server
//!     through [`tether_net::metrics::Observer`];
//!   - `tether_endpoint_setup_duration_seconds{result}`: creating one endpoint (address,
//!     veth pair, bridge port, addresses and routes in the sandbox, DNS records);
//!   - `tether_nft_batch_duration_seconds{result}`: applying one nftables batch;
//!   - `tether_firewall_repairs_total{result}`: rebuilds of tether's nftables state, by
//!     the self-repair watch or `tether network reload-firewall`.
//!
//! `result` is `ok` or `error`. The metrics are process-wide ([`global`]): one daemon, one
//! set of series.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tether_net::metrics::{AnswerSource, ForwardResult, Observer, ServfailReason};

use crate::state::Network;
use crate::{Engine, State};

/// The `Content-Type` of [`Engine::metrics_text`]'s output:
/// `text/plain; version=0.0.4; charset=utf-8`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A pool this full (in %) or more is warned about.
pub const POOL_WARN_PERCENT: u64 = 90;

/// Buckets of the DNS latency histogram, in seconds: local answers take microseconds,
/// forwarded ones milliseconds to the upstream timeout (1.5 s).
const DNS_BUCKETS: [f64; 15] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];
/// Buckets of the endpoint setup histogram, in seconds.
const ENDPOINT_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets of the nftables batch histogram, in seconds.
const NFT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NetworkLabels {
    network: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    network: String,
    family: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RcodeLabels {
    rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn dns_histogram() -> Histogram {
    Histogram::new(DNS_BUCKETS)
}
fn endpoint_histogram() -> Histogram {
    Histogram::new(ENDPOINT_BUCKETS)
}
fn nft_histogram() -> Histogram {
    Histogram::new(NFT_BUCKETS)
}

fn result(ok: bool) -> ResultLabels {
    ResultLabels {
        result: if ok { "ok" } else { "error" },
    }
}

/// One pool's use: `family` (`ipv4`/`ipv6`), leased addresses, addresses it can hand out.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolUse {
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// Addresses leased.
    pub leased: u64,
    /// Addresses the pool can hand out (an f64: a /64 has 2^64).
    pub size: f64,
}

impl PoolUse {
    /// Whether the pool is at least [`POOL_WARN_PERCENT`] % used.
    pub fn over_threshold(&self) -> bool {
        self.size > 0.0 && self.leased as f64 * 100.0 >= self.size * POOL_WARN_PERCENT as f64
    }
}

/// The pools of a network and their use.
pub fn pool_use(n: &Network) -> Vec<PoolUse> {
    let mut out = Vec::new();
    if let Some(p) = &n.pool {
        let span = 1u64 << (32 - u32::from(p.range.prefix_len()));
        let reserved = [p.subnet.network(), p.subnet.broadcast(), p.gateway]
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|a| p.range.contains(*a))
            .count() as u64;
        out.push(PoolUse {
            family: "ipv4",
            leased: p.leases.len() as u64,
            size: span.saturating_sub(reserved) as f64,
        });
    }
    if let Some(p) = &n.pool6 {
        // Every address of the subnet but the subnet-router anycast one and the gateway.
        let size = 2f64.powi(128 - i32::from(p.subnet.prefix_len())) - 2.0;
        out.push(PoolUse {
            family: "ipv6",
            leased: p.leases.len() as u64,
            size: size.max(0.0),
        });
    }
    out
}

/// The engine's state as the metrics show it.
#[derive(Debug, Default)]
struct Snapshot {
    /// (network id, name, containers, endpoints, pools).
    networks: Vec<(String, String, i64, i64, Vec<PoolUse>)>,
    /// Containers by state.
    states: BTreeMap<String, i64>,
}

impl Snapshot {
    fn of(st: &State) -> Snapshot {
        let mut containers: BTreeMap<&str, i64> = BTreeMap::new();
        let mut endpoints: BTreeMap<&str, i64> = BTreeMap::new();
        let mut states = BTreeMap::from([("running".to_string(), 0)]);
        for c in st.containers.values() {
            *states.entry(c.state.status.clone()).or_default() += 1;
            let mut seen = HashSet::new();
            for (name, a) in &c.attachments {
                if seen.insert(a.network_id.as_str()) {
                    *containers.entry(a.network_id.as_str()).or_default() += 1;
                }
                if c.endpoints.contains_key(name) {
                    *endpoints.entry(a.network_id.as_str()).or_default() += 1;
                }
            }
        }
        let networks = st
            .networks
            .values()
            .map(|n| {
                (
                    n.id.clone(),
                    n.name.clone(),
                    containers.get(n.id.as_str()).copied().unwrap_or(0),
                    endpoints.get(n.id.as_str()).copied().unwrap_or(0),
                    pool_use(n),
                )
            })
            .collect();
        Snapshot { networks, states }
    }
}

/// The daemon's metrics: a registry of every series above.
pub struct Metrics {
    registry: Registry,
    network_containers: Family<NetworkLabels, Gauge>,
    network_endpoints: Family<NetworkLabels, Gauge>,
    containers: Family<StateLabels, Gauge>,
    ipam_leased: Family<PoolLabels, Gauge>,
    ipam_size: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    dns_queries: Counter,
    dns_answers: Family<RcodeLabels, Counter>,
    dns_forwards: Family<ResultLabels, Counter>,
    dns_servfails: Family<ReasonLabels, Counter>,
    dns_duration: Histograms<SourceLabels>,
    endpoint_setup: Histograms<ResultLabels>,
    nft_batch: Histograms<ResultLabels>,
    firewall_repairs: Family<ResultLabels, Counter>,
    /// (network id, family) of the pools now over the warning threshold.
    pools_over: Mutex<HashSet<(String, &'static str)>>,
    /// Serialises scrapes (the state families are cleared and refilled).
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every series registered (event series that have a usual label
    /// value start at 0 with it, so they exist before the first event).
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("tether"),
            network_containers: Family::default(),
            network_endpoints: Family::default(),
            containers: Family::default(),
            ipam_leased: Family::default(),
            ipam_size: Family::default(),
            dns_queries: Counter::default(),
            dns_answers: Family::default(),
            dns_forwards: Family::default(),
            dns_servfails: Family::default(),
            dns_duration: Family::new_with_constructor(dns_histogram),
            endpoint_setup: Family::new_with_constructor(endpoint_histogram),
            nft_batch: Family::new_with_constructor(nft_histogram),
            firewall_repairs: Family::default(),
            pools_over: Mutex::new(HashSet::new()),
            scrape: Mutex::new(()),
        };
        for rcode in ["NOERROR", "NXDOMAIN", "SERVFAIL"] {
            let _ = m.dns_answers.get_or_create(&RcodeLabels { rcode });
        }
        let _ = m
            .dns_forwards
            .get_or_create(&ResultLabels { result: "answered" });
        for reason in [ServfailReason::NoUpstream, ServfailReason::Overloaded] {
            let _ = m.dns_servfails.get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            });
        }
        for source in [AnswerSource::Local, AnswerSource::Forwarded] {
            let _ = m.dns_duration.get_or_create(&SourceLabels {
                source: source.as_str(),
            });
        }
        for ok in [true, false] {
            let _ = m.firewall_repairs.get_or_create(&result(ok));
        }
        let _ = m.endpoint_setup.get_or_create(&result(true));
        let _ = m.nft_batch.get_or_create(&result(true));
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "network_containers",
            "Containers attached to the network, running or not",
            self.network_containers.clone(),
        );
        r.register(
            "network_endpoints",
            "Live endpoints on the network (interfaces of running containers)",
            self.network_endpoints.clone(),
        );
        r.register("containers", "Containers by state", self.containers.clone());
        r.register(
            "ipam_leased_addresses",
            "Addresses leased from the network's pool",
            self.ipam_leased.clone(),
        );
        r.register(
            "ipam_pool_addresses",
            "Addresses the network's pool can hand out",
            self.ipam_size.clone(),
        );
        r.register(
            "dns_queries",
            "DNS queries received by the embedded DNS server",
            self.dns_queries.clone(),
        );
        r.register(
            "dns_answers",
            "DNS answers sent by the embedded DNS server, by response code",
            self.dns_answers.clone(),
        );
        r.register(
            "dns_forwards",
            "Attempts at upstream resolvers for queries the registry cannot answer, by result",
            self.dns_forwards.clone(),
        );
        r.register(
            "dns_servfails",
            "SERVFAIL answers made by the embedded DNS server itself, by reason",
            self.dns_servfails.clone(),
        );
        r.register_with_unit(
            "dns_query_duration",
            "Time from a DNS query's arrival to its answer, by how it was answered",
            Unit::Seconds,
            self.dns_duration.clone(),
        );
        r.register_with_unit(
            "endpoint_setup_duration",
            "Time to create one container endpoint on a network",
            Unit::Seconds,
            self.endpoint_setup.clone(),
        );
        r.register_with_unit(
            "nft_batch_duration",
            "Time to apply one nftables batch",
            Unit::Seconds,
            self.nft_batch.clone(),
        );
        r.register(
            "firewall_repairs",
            "Rebuilds of tether's nftables state (self-repair or reload-firewall)",
            self.firewall_repairs.clone(),
        );
        self
    }

    /// Records one endpoint setup.
    pub fn endpoint_setup(&self, elapsed: Duration, ok: bool) {
        self.endpoint_setup
            .get_or_create(&result(ok))
            .observe(elapsed.as_secs_f64());
    }

    /// Records one firewall rebuild.
    pub fn firewall_repair(&self, ok: bool) {
        self.firewall_repairs.get_or_create(&result(ok)).inc();
    }

    /// Notes a pool's use: logs a warning when it passes [`POOL_WARN_PERCENT`] % (once,
    /// until it goes back under). Returns whether it warned.
    pub fn check_pool(&self, network_id: &str, network: &str, pool: &PoolUse) -> bool {
        let key = (network_id.to_string(), pool.family);
        let mut over = self.pools_over.lock().unwrap_or_else(|e| e.into_inner());
        if !pool.over_threshold() {
            over.remove(&key);
            return false;
        }
        if !over.insert(key) {
            return false;
        }
        tracing::warn!(
            network,
            family = pool.family,
            leased = pool.leased,
            size = pool.size,
            "IPAM pool of network {network} is {:.0}% used ({} of {} addresses)",
            pool.leased as f64 * 100.0 / pool.size,
            pool.leased,
            pool.size
        );
        true
    }

    /// Refreshes the state series from `snap` and encodes everything.
    fn render(&self, snap: &Snapshot) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        for f in [&self.network_containers, &self.network_endpoints] {
            f.clear();
        }
        self.containers.clear();
        self.ipam_leased.clear();
        self.ipam_size.clear();
        self.pools_over
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| snap.networks.iter().any(|n| &n.0 == id));
        for (id, name, containers, endpoints, pools) in &snap.networks {
            let l = NetworkLabels {
                network: name.clone(),
            };
            self.network_containers.get_or_create(&l).set(*containers);
            self.network_endpoints.get_or_create(&l).set(*endpoints);
            for p in pools {
                let l = PoolLabels {
                    network: name.clone(),
                    family: p.family,
                };
                self.ipam_leased
                    .get_or_create(&l)
                    .set(i64::try_from(p.leased).unwrap_or(i64::MAX));
                self.ipam_size.get_or_create(&l).set(p.size);
                self.check_pool(id, name, p);
            }
        }
        for (state, n) in &snap.states {
            self.containers
                .get_or_create(&StateLabels {
                    state: state.clone(),
                })
                .set(*n);
        }
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

impl Observer for Metrics {
    fn dns_query(&self) {
        self.dns_queries.inc();
    }
    fn dns_answer(&self, rcode: u16, source: AnswerSource, elapsed: Duration) {
        self.dns_answers
            .get_or_create(&RcodeLabels {
                rcode: tether_net::metrics::rcode_name(rcode),
            })
            .inc();
        self.dns_duration
            .get_or_create(&SourceLabels {
                source: source.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }
    fn dns_forward(&self, result: ForwardResult) {
        self.dns_forwards
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }
    fn dns_servfail(&self, reason: ServfailReason) {
        self.dns_servfails
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }
    fn nft_batch(&self, elapsed: Duration, ok: bool) {
        self.nft_batch
            .get_or_create(&result(ok))
            .observe(elapsed.as_secs_f64());
    }
}

/// The process's metrics, created and installed as tether-net's observer on first use.
pub fn global() -> &'static Arc<Metrics> {
    static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let m = Arc::new(Metrics::new());
        tether_net::metrics::install(m.clone());
        m
    })
}

impl Engine {
    /// Every metric in the Prometheus text format (see the module docs), the state series
    /// computed from the engine's model now. Serve it with [`CONTENT_TYPE`].
    pub async fn metrics_text(&self) -> String {
        let snap = Snapshot::of(&*self.state.lock().await);
        global().render(&snap)
    }

    /// Checks the pools of `net` against the warning threshold (after a lease changed).
    pub(crate) fn check_pool_use(&self, net: &Network) {
        for p in pool_use(net) {
            global().check_pool(&net.id, &net.name, &p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(leased: u64, size: f64) -> PoolUse {
        PoolUse {
            family: "ipv4",
            leased,
            size,
        }
    }

    #[test]
    fn metrics_pool_warns_once_per_crossing() {
        let m = Metrics::new();
        assert!(!m.check_pool("n1", "net", &pool(8, 10.0)));
        assert!(m.check_pool("n1", "net", &pool(9, 10.0)));
        assert!(!m.check_pool("n1", "net", &pool(10, 10.0)), "warned twice");
        assert!(!m.check_pool("n1", "net", &pool(5, 10.0)));
        assert!(m.check_pool("n1", "net", &pool(9, 10.0)), "not re-armed");
        assert!(!m.check_pool("n2", "other", &pool(0, 0.0)));
    }

    #[test]
    fn metrics_pool_sizes() {
        let mut n: Network = serde_json::from_value(serde_json::json!({
            "id": "x", "name": "n", "driver": "bridge", "created": "", "internal": false,
            "enable_ipv6": false, "attachable": false, "labels": {}, "options": {},
            "bridge": null, "bridge_mac": null, "pool": null, "dns": true, "builtin": false
        }))
        .expect("network json");
        n.pool = Some(
            tether_net::ipam::Pool::new("172.30.0.0/24".parse().expect("net"), None, None)
                .expect("pool"),
        );
        // 256 addresses less network, broadcast and gateway.
        assert_eq!(pool_use(&n)[0].size, 253.0);
        n.pool = Some(
            tether_net::ipam::Pool::new(
                "172.30.0.0/24".parse().expect("net"),
                None,
                Some("172.30.0.128/25".parse().expect("range")),
            )
            .expect("pool"),
        );
        // 128 addresses less the broadcast one.
        assert_eq!(pool_use(&n)[0].size, 127.0);
    }

    #[test]
    fn metrics_encode_as_prometheus_text() {
        let m = Metrics::new();
        m.dns_query();
        m.dns_answer(3, AnswerSource::Local, Duration::from_micros(30));
        m.endpoint_setup(Duration::from_millis(12), true);
        let snap = Snapshot {
            networks: vec![("id".into(), "app-net".into(), 2, 1, vec![pool(1, 253.0)])],
            states: BTreeMap::from([("running".into(), 1)]),
        };
        let text = m.render(&snap);
        for line in [
            "# TYPE tether_dns_queries_total counter",
            "tether_dns_queries_total 1",
            "tether_dns_answers_total{rcode=\"NXDOMAIN\"} 1",
            "# TYPE tether_dns_query_duration_seconds histogram",
            "tether_dns_query_duration_seconds_count{source=\"local\"} 1",
            "tether_dns_query_duration_seconds_bucket{source=\"local\",le=\"5e-05\"} 1",
            "tether_endpoint_setup_duration_seconds_count{result=\"ok\"} 1",
            "tether_network_containers{network=\"app-net\"} 2",
            "tether_network_endpoints{network=\"app-net\"} 1",
            "tether_ipam_leased_addresses{network=\"app-net\",family=\"ipv4\"} 1",
            "tether_ipam_pool_addresses{network=\"app-net\",family=\"ipv4\"} 253.0",
            "tether_containers{state=\"running\"} 1",
            "tether_firewall_repairs_total{result=\"ok\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        // A network gone is gone from the next scrape.
        let text = m.render(&Snapshot::default());
        assert!(!text.contains("app-net"), "{text}");
    }
}
