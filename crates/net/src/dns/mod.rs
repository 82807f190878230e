//! The embedded DNS server: answers containers' queries at `127.0.0.11:53` inside their
//! network namespaces, as Docker's embedded resolver (and Podman's aardvark-dns) do.
//!
//! * Names of endpoints (container name, short id, hostname, aliases) answer with A / AAAA
//!   records (RFC 1035, RFC 3596), TTL 600, but only to containers that share a network with
//!   the endpoint. Matching is case-insensitive and ignores a trailing dot. A name with
//!   several endpoints gets every address, rotated round-robin between answers. A known name
//!   without a record of the asked type gets NODATA (NOERROR, empty answer), never NXDOMAIN.
//!   `<name>.<network>` also resolves, where `<network>` is the network's id or its name set
//!   with [`Resolver::set_network_name`].
//! * PTR queries (`in-addr.arpa`, `ip6.arpa`) for endpoint addresses on shared networks get
//!   the endpoint's first name as an FQDN.
//! * Everything else is forwarded verbatim to upstream resolvers (see [`Forwarder`]);
//!   if none answers, SERVFAIL. The server is never silent on a query it could parse.
//! * UDP answers are limited to 512 bytes or the client's EDNS(0) size (RFC 6891; at most
//!   4096) and truncated with TC set beyond it (RFC 2181 9); TCP (RFC 1035 4.2.2) gets whole
//!   answers.
//!
//! The daemon binds the sockets inside each container's namespace and hands them to
//! [`Resolver::serve`]; one [`Resolver`] (the registry) serves every container.

mod forward;
mod registry;
mod server;
mod wire;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use tracing::{debug, trace};

pub use forward::{Forwarder, MAX_UPSTREAMS};
pub use registry::HOST_ASKER;
pub use server::{ServeHandle, TCP_IDLE_TIMEOUT};

use crate::metrics::{self, AnswerSource, ServfailReason};
use registry::Registry;

/// TTL of the records the server answers itself, in seconds (Docker's value).
pub const TTL: u32 = 600;

/// Errors of setting up DNS serving.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// [`Resolver::serve`] / [`Forwarder::new`] were called outside a tokio runtime.
    #[error("DNS serving needs a tokio runtime")]
    NoRuntime,
    /// A socket operation failed; `what` names the step.
    #[error("{what}: {source}")]
    Io {
        /// The step that failed.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The namespace to forward from could not be entered.
    #[error("dns forwarding namespace: {0}")]
    Netns(#[from] crate::netns::NetnsError),
}

/// The transport a query came in on, which decides the answer size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagram: answers limited to 512 bytes, or the client's EDNS(0) payload size
    /// (RFC 6891 6.2.5) capped at 4096; larger answers are truncated with TC set.
    Udp,
    /// Stream (RFC 1035 4.2.2): answers up to 65535 bytes.
    Tcp,
}

impl Transport {
    fn limit(self, req: &Message) -> usize {
        match self {
            Transport::Tcp => wire::TCP_MAX,
            Transport::Udp => req.edns.as_ref().map_or(wire::UDP_MIN, |e| {
                usize::from(e.max_payload()).clamp(wire::UDP_MIN, wire::UDP_MAX)
            }),
        }
    }
}

/// A query that must go upstream.
pub(crate) struct ForwardJob {
    raw: Vec<u8>,
    req: Message,
    limit: usize,
    stream: bool,
    /// When the query arrived (for the latency histogram).
    started: Instant,
}

impl ForwardJob {
    /// SERVFAIL for this query (no upstream answered, or too busy to try).
    fn servfail(&self) -> Vec<u8> {
        wire::encode(
            wire::response(&self.req, ResponseCode::ServFail),
            self.limit,
            &self.raw,
        )
    }

    /// SERVFAIL at once because the listener has too many queries in flight; counted.
    pub(crate) fn overloaded(&self) -> Vec<u8> {
        metrics::observe(|o| o.dns_servfail(ServfailReason::Overloaded));
        self.answered(self.servfail())
    }

    /// Reports the answer to the metrics and hands it back.
    fn answered(&self, reply: Vec<u8>) -> Vec<u8> {
        let elapsed = self.started.elapsed();
        let rcode = u16::from(wire::rcode(&reply));
        metrics::observe(|o| o.dns_answer(rcode, AnswerSource::Forwarded, elapsed));
        reply
    }

    async fn run(self, fwd: &Forwarder) -> Vec<u8> {
        let reply = match fwd.forward(&self.raw, self.stream).await {
            Some(reply) => wire::truncate_reply(reply, self.limit),
            None => {
                debug!(query = ?self.req.queries.first(), "dns: no upstream answered, SERVFAIL");
                metrics::observe(|o| o.dns_servfail(ServfailReason::NoUpstream));
                self.servfail()
            }
        };
        self.answered(reply)
    }
}

/// A locally made reply with its response code, reported to the metrics.
fn local_reply(reply: Vec<u8>, rcode: ResponseCode, started: Instant) -> Prepared {
    let elapsed = started.elapsed();
    metrics::observe(|o| o.dns_answer(u16::from(rcode), AnswerSource::Local, elapsed));
    Prepared::Reply(reply)
}

/// What to do with an incoming message.
pub(crate) enum Prepared {
    /// Send this reply.
    Reply(Vec<u8>),
    /// Not a query with a readable header (or it is a response): say nothing.
    Drop,
    /// Forward upstream.
    Forward(ForwardJob),
}

/// The registry of container names, shared by every listener; `Send + Sync`.
///
/// Updates ([`Resolver::add_endpoint`], [`Resolver::remove_endpoint`]) take effect for the
/// very next query.
pub struct Resolver {
    registry: RwLock<Registry>,
    /// Round-robin counter for names with several addresses.
    rotation: AtomicUsize,
    default_upstreams: Vec<SocketAddr>,
    timeout: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("default_upstreams", &self.default_upstreams)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Creates an empty registry.
    ///
    /// `default_upstreams`: the daemon's upstream resolvers (from the host's
    /// `/etc/resolv.conf` or a daemon flag), used for containers without their own `--dns`;
    /// at most [`MAX_UPSTREAMS`] are tried. `timeout`: bound on each upstream attempt.
    pub fn new(default_upstreams: Vec<SocketAddr>, timeout: Duration) -> Arc<Resolver> {
        Arc::new(Resolver {
            registry: RwLock::new(Registry::default()),
            rotation: AtomicUsize::new(0),
            default_upstreams,
            timeout,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (or replaces) a container's endpoint on a network.
    ///
    /// `names`: container name (first: it is also the PTR target), 12-hex short id,
    /// hostname, aliases; any may be shared with other containers (all their addresses are
    /// then returned). Names are matched case-insensitively, trailing dots ignored.
    pub fn add_endpoint(
        &self,
        network_id: &str,
        container_id: &str,
        names: &[String],
        ipv4: Option<Ipv4Addr>,
        ipv6: Option<Ipv6Addr>,
    ) {
        trace!(
            network_id,
            container_id,
            ?names,
            ?ipv4,
            ?ipv6,
            "dns: add endpoint"
        );
        self.write()
            .add(network_id, container_id, names, ipv4, ipv6);
    }

    /// Removes a container's endpoint on a network (no-op if absent). Its names stop
    /// resolving through that network immediately.
    pub fn remove_endpoint(&self, network_id: &str, container_id: &str) {
        trace!(network_id, container_id, "dns: remove endpoint");
        self.write().remove(network_id, container_id);
    }

    /// Sets the link aliases container `asker` resolves (Docker's `--link TARGET:ALIAS` on
    /// user-defined networks): `(alias, target container id)`, answered with the target's
    /// addresses on the networks both share, for that container only. An empty list
    /// removes them.
    pub fn set_links(&self, asker: &str, links: &[(String, String)]) {
        // most containers have no links: no write lock (queries wait on it) for them
        if links.is_empty() && !self.read().has_links(asker) {
            return;
        }
        self.write().set_links(asker, links);
    }

    /// Gives a network a name, so that `<container>.<network-name>` resolves as in Docker
    /// (`<container>.<network-id>` always does). Optional.
    pub fn set_network_name(&self, network_id: &str, name: &str) {
        self.write().set_network_name(network_id, name);
    }

    /// Forgets a network: its name and all endpoints on it.
    pub fn remove_network(&self, network_id: &str) {
        self.write().remove_network(network_id);
    }

    /// Addresses `name` resolves to for `asker` (IPv4 then IPv6, unrotated), or None if the
    /// asker sees no endpoint with that name (it would be forwarded). For inspection/tests.
    pub fn lookup(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>> {
        let key = registry::normalise(name)?;
        let addrs = self.read().lookup(asker, &key)?;
        Some(
            addrs
                .v4
                .into_iter()
                .map(IpAddr::V4)
                .chain(addrs.v6.into_iter().map(IpAddr::V6))
                .collect(),
        )
    }

    /// Builds the forwarder a listener uses.
    ///
    /// `upstreams`: the container's own `--dns` servers, reached from `forward_netns` (the
    /// container's namespace: `127.0.0.1` is then the container's own loopback, as in
    /// Docker). Empty => the daemon's default upstreams; of those, loopback ones (such as
    /// systemd-resolved's `127.0.0.53`) are only reachable from the daemon's namespace and
    /// are reached from there, the others from `forward_netns`. `forward_netns` None =>
    /// everything from the daemon's namespace.
    ///
    /// Errors: see [`Forwarder::with_targets`].
    pub fn forwarder(
        &self,
        upstreams: Vec<SocketAddr>,
        forward_netns: Option<PathBuf>,
    ) -> Result<Forwarder, DnsError> {
        let targets = if upstreams.is_empty() {
            self.default_upstreams
                .iter()
                .map(|a| {
                    let ns = if a.ip().is_loopback() {
                        None
                    } else {
                        forward_netns.clone()
                    };
                    (*a, ns)
                })
                .collect()
        } else {
            upstreams
                .into_iter()
                .map(|a| (a, forward_netns.clone()))
                .collect()
        };
        Forwarder::with_targets(targets, self.timeout)
    }

    /// Answers one DNS message (wire bytes) from `asker` (a container id) with stream
    /// semantics (no 512-byte limit); see [`Resolver::answer_with`].
    pub async fn answer(&self, asker: &str, query: &[u8], fwd: &Forwarder) -> Option<Vec<u8>> {
        self.answer_with(asker, query, fwd, Transport::Tcp).await
    }

    /// Answers one DNS message (wire bytes) from `asker` arriving over `transport`.
    ///
    /// Returns None only for messages without a readable 12-byte header and for messages
    /// that are responses (QR set; answering those could loop). Malformed queries get
    /// FORMERR, non-QUERY opcodes NOTIMP, EDNS versions above 0 BADVERS (RFC 6891 6.1.3),
    /// forwarding failures SERVFAIL.
    pub async fn answer_with(
        &self,
        asker: &str,
        query: &[u8],
        fwd: &Forwarder,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        match self.prepare(asker, query, transport) {
            Prepared::Reply(r) => Some(r),
            Prepared::Drop => None,
            Prepared::Forward(job) => Some(job.run(fwd).await),
        }
    }

    /// Decides locally: a reply, nothing, or a job for upstream. Never blocks, never waits.
    /// Every message that will be answered is counted as a query, and every local reply as
    /// an answer (forwarded ones when their job ends), see [`crate::metrics::Observer`].
    pub(crate) fn prepare(&self, asker: &str, query: &[u8], transport: Transport) -> Prepared {
        if query.len() < wire::HEADER_LEN || wire::is_response(query) {
            return Prepared::Drop;
        }
        let started = Instant::now();
        metrics::observe(|o| o.dns_query());
        let formerr = || ResponseCode::FormErr;
        if !wire::plausible_counts(query) {
            let r = wire::raw_error(query, formerr());
            return local_reply(r, formerr(), started);
        }
        let req = match Message::from_vec(query) {
            Ok(m) => m,
            Err(e) => {
                trace!(error = %e, "dns: malformed query, FORMERR");
                let r = wire::raw_error(query, formerr());
                return local_reply(r, formerr(), started);
            }
        };
        let limit = transport.limit(&req);
        let reply = |rcode| {
            let r = wire::encode(wire::response(&req, rcode), limit, query);
            local_reply(r, rcode, started)
        };
        if req.op_code != OpCode::Query {
            return reply(ResponseCode::NotImp);
        }
        if req.queries.len() != 1 {
            return reply(ResponseCode::FormErr);
        }
        if req.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return reply(ResponseCode::BADVERS);
        }
        if let Some(msg) = self.answer_local(asker, &req) {
            let rcode = msg.metadata.response_code;
            return local_reply(wire::encode(msg, limit, query), rcode, started);
        }
        Prepared::Forward(ForwardJob {
            raw: query.to_vec(),
            req,
            limit,
            stream: transport == Transport::Tcp,
            started,
        })
    }

    /// The authoritative answer from the registry, or None to forward.
    fn answer_local(&self, asker: &str, req: &Message) -> Option<Message> {
        let q = req.queries.first()?;
        if q.query_class() != DNSClass::IN {
            return None;
        }
        let name = q.name();
        let qtype = q.query_type();
        if qtype == RecordType::PTR {
            let ip = registry::parse_reverse(name)?;
            let target = self.read().ptr(asker, ip)?;
            let mut msg = wire::response(req, ResponseCode::NoError);
            msg.metadata.authoritative = true;
            msg.answers.push(Record::from_rdata(
                name.clone(),
                TTL,
                RData::PTR(PTR(target)),
            ));
            return Some(msg);
        }
        let key = registry::name_key(name);
        if key.is_empty() {
            return None;
        }
        let mut addrs = self.read().lookup(asker, &key)?;
        let mut msg = wire::response(req, ResponseCode::NoError);
        msg.metadata.authoritative = true;
        let (want4, want6) = match qtype {
            RecordType::A => (true, false),
            RecordType::AAAA => (false, true),
            RecordType::ANY => (true, true),
            // Known name, other type: NODATA.
            _ => (false, false),
        };
        if want4 {
            self.rotate(&mut addrs.v4);
            msg.answers.extend(
                addrs
                    .v4
                    .iter()
                    .map(|ip| Record::from_rdata(name.clone(), TTL, RData::A(A(*ip)))),
            );
        }
        if want6 {
            self.rotate(&mut addrs.v6);
            msg.answers.extend(
                addrs
                    .v6
                    .iter()
                    .map(|ip| Record::from_rdata(name.clone(), TTL, RData::AAAA(AAAA(*ip)))),
            );
        }
        Some(msg)
    }

    /// Rotates a sorted address list by a global counter (round-robin, like Docker's
    /// shuffling of multi-endpoint answers), so first-record clients spread over replicas.
    fn rotate<T>(&self, v: &mut [T]) {
        if v.len() > 1 {
            let k = self.rotation.fetch_add(1, Ordering::Relaxed) % v.len();
            v.rotate_left(k);
        }
    }

    /// Serves DNS on sockets already bound inside `asker`'s namespace (normally
    /// `127.0.0.11:53`, UDP and TCP): UDP with size limits and truncation, TCP with
    /// length-prefixed messages (RFC 1035 4.2.2), several per connection, closed after
    /// [`TCP_IDLE_TIMEOUT`] idle.
    ///
    /// `upstreams`/`forward_netns`: see [`Resolver::forwarder`]; the forwarding sockets are
    /// created here, once. Must be called within a tokio runtime; the tasks run on it until
    /// the returned handle is dropped or stopped.
    ///
    /// Errors: [`DnsError::NoRuntime`], [`DnsError::Io`] if the sockets cannot be made
    /// non-blocking / registered, [`DnsError::Netns`] if `forward_netns` cannot be entered.
    pub fn serve(
        self: &Arc<Self>,
        asker: String,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        upstreams: Vec<SocketAddr>,
        forward_netns: Option<PathBuf>,
    ) -> Result<ServeHandle, DnsError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| DnsError::NoRuntime)?;
        let _enter = handle.enter();
        let io = |what| move |source| DnsError::Io { what, source };
        udp.set_nonblocking(true)
            .map_err(io("set UDP socket non-blocking"))?;
        tcp.set_nonblocking(true)
            .map_err(io("set TCP listener non-blocking"))?;
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(io("register UDP socket"))?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(io("register TCP listener"))?;
        let fwd = Arc::new(self.forwarder(upstreams, forward_netns)?);
        debug!(%asker, upstreams = ?fwd.upstreams(), "dns: serving");
        let asker: Arc<str> = asker.into();
        let (stop, stopped) = tokio::sync::watch::channel(());
        let udp_task = handle.spawn(server::udp_loop(
            self.clone(),
            asker.clone(),
            Arc::new(udp),
            fwd.clone(),
            stopped.clone(),
        ));
        let tcp_task = handle.spawn(server::tcp_loop(self.clone(), asker, tcp, fwd, stopped));
        Ok(ServeHandle::new(stop, vec![udp_task, tcp_task]))
    }
}
