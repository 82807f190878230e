//! Forwarding of queries the registry cannot answer to upstream resolvers.
//!
//! Each upstream gets one *connected* UDP socket, created once (at [`Forwarder`] creation)
//! in the namespace the upstream must be reached from. Being connected, the kernel only
//! delivers datagrams from that upstream's address and port, and reports an ICMP port
//! unreachable as `ECONNREFUSED`, which moves on to the next upstream at once.
//!
//! Matching replies: every forwarded query is sent with a fresh random id that is unique
//! among the upstream's outstanding queries and is registered in a pending table together
//! with the question bytes. There is no reader task: every waiting query reads the socket
//! itself, keeps a datagram whose id and question are its own, and hands any other datagram
//! to the waiter registered under that id (through a oneshot channel it also listens on).
//! A reply is thus matched by (source = the connected upstream, id, question). The client's
//! id is put back before the reply is relayed, otherwise verbatim.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::wire;
use super::DnsError;
use crate::metrics::{self, ForwardResult};
use crate::netns;

/// At most this many upstreams are tried per query (as resolv.conf's MAXNS).
pub const MAX_UPSTREAMS: usize = 3;
/// Outstanding forwarded queries per upstream; beyond it a query skips that upstream.
const MAX_PENDING: usize = 1024;
/// Minimum interval between attempts to (re)create an upstream's socket.
const REBUILD_INTERVAL: Duration = Duration::from_secs(1);
/// Receive buffer for upstream datagrams (the largest UDP payload).
const RECV_BUF: usize = 65535;

/// Why one upstream attempt failed.
#[derive(Debug)]
enum AttemptError {
    /// ICMP port unreachable / ECONNREFUSED: nothing listens there.
    Refused,
    /// No reply within the per-attempt timeout.
    Timeout,
    /// No usable socket (creation failed recently, or too many pending queries).
    Unavailable,
    /// Any other socket error.
    Io(io::Error),
}

impl AttemptError {
    /// The metrics' name for this failure.
    fn result(&self) -> ForwardResult {
        match self {
            AttemptError::Refused => ForwardResult::Refused,
            AttemptError::Timeout => ForwardResult::Timeout,
            AttemptError::Unavailable => ForwardResult::Unavailable,
            AttemptError::Io(_) => ForwardResult::Error,
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Refused => f.write_str("refused (port unreachable)"),
            AttemptError::Timeout => f.write_str("timed out"),
            AttemptError::Unavailable => f.write_str("no usable socket"),
            AttemptError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Delivery of a reply read by another waiter; `Err(())` means "upstream refused".
type Delivery = Result<Vec<u8>, ()>;
type Waiter = oneshot::Sender<Delivery>;

/// An outstanding query on an upstream socket.
struct Pending {
    /// Distinguishes registrations that reuse the same id.
    token: u64,
    /// Question bytes the reply must echo (empty = not checked).
    question: Vec<u8>,
    /// Where a reply read by another waiter is delivered; `Err` means "refused".
    tx: Waiter,
}

#[derive(Default)]
struct SockState {
    sock: Option<Arc<UdpSocket>>,
    last_build: Option<Instant>,
}

/// One upstream resolver and its connected socket.
struct Upstream {
    addr: SocketAddr,
    /// Namespace to create sockets in; None = the daemon's own.
    netns: Option<PathBuf>,
    state: Mutex<SockState>,
    pending: Mutex<HashMap<u16, Pending>>,
}

static TOKENS: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionRefused
}

/// Creates a non-blocking UDP socket connected to `addr` in the calling thread's namespace.
fn connect_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = std::net::UdpSocket::bind(local)?;
    sock.connect(addr)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Creates connected std sockets for `addrs` in one namespace (one thread for all of them).
/// Outer error: the namespace could not be entered; inner: a socket could not be
/// created/connected (e.g. no route there yet).
fn build_std(
    addrs: Vec<SocketAddr>,
    ns: Option<&PathBuf>,
) -> Result<Vec<io::Result<std::net::UdpSocket>>, DnsError> {
    let build = move || addrs.into_iter().map(connect_udp).collect::<Vec<_>>();
    match ns {
        None => Ok(build()),
        Some(path) => Ok(netns::run_in(path, build)?),
    }
}

/// Removes the pending registration when the attempt ends (also on cancellation).
struct PendingGuard<'a> {
    up: &'a Upstream,
    id: u16,
    token: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut pending = lock(&self.up.pending);
        if pending.get(&self.id).is_some_and(|p| p.token == self.token) {
            pending.remove(&self.id);
        }
    }
}

impl Upstream {
    /// Wraps a socket built by [`build_std`]; needs the runtime context.
    fn new(
        addr: SocketAddr,
        netns: Option<PathBuf>,
        built: io::Result<std::net::UdpSocket>,
    ) -> Self {
        let sock = match built.and_then(UdpSocket::from_std) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                warn!(upstream = %addr, error = %e, "dns: cannot create forwarding socket yet");
                None
            }
        };
        Upstream {
            addr,
            netns,
            state: Mutex::new(SockState {
                sock,
                last_build: Some(Instant::now()),
            }),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The current socket, re-creating it (at most once per [`REBUILD_INTERVAL`]) if a
    /// previous creation or send failed.
    async fn socket(&self) -> Result<Arc<UdpSocket>, AttemptError> {
        {
            let mut st = lock(&self.state);
            if let Some(s) = &st.sock {
                return Ok(s.clone());
            }
            if st
                .last_build
                .is_some_and(|t| t.elapsed() < REBUILD_INTERVAL)
            {
                return Err(AttemptError::Unavailable);
            }
            st.last_build = Some(Instant::now());
        }
        let addr = self.addr;
        let built = match self.netns.clone() {
            None => connect_udp(addr),
            // Entering a namespace needs a fresh thread; this is the rare recovery path.
            Some(path) => tokio::task::spawn_blocking(move || build_std(vec![addr], Some(&path)))
                .await
                .map_err(|e| AttemptError::Io(io::Error::other(e.to_string())))?
                .map_err(|e| AttemptError::Io(io::Error::other(e.to_string())))?
                .pop()
                .unwrap_or_else(|| Err(io::Error::other("no socket built"))),
        };
        let sock = Arc::new(
            built
                .and_then(UdpSocket::from_std)
                .map_err(AttemptError::Io)?,
        );
        lock(&self.state).sock = Some(sock.clone());
        Ok(sock)
    }

    /// Drops a socket whose sends fail (e.g. its source address vanished), so the next
    /// query re-creates it.
    fn invalidate(&self, sock: &Arc<UdpSocket>) {
        let mut st = lock(&self.state);
        if st.sock.as_ref().is_some_and(|s| Arc::ptr_eq(s, sock)) {
            st.sock = None;
        }
    }

    /// Registers a new outstanding query under a fresh id; returns the guard (holding the
    /// id, removing the registration when dropped) and the delivery channel.
    fn register(
        &self,
        question: &[u8],
        sock: &UdpSocket,
    ) -> Option<(PendingGuard<'_>, oneshot::Receiver<Delivery>)> {
        let mut pending = lock(&self.pending);
        if pending.len() >= MAX_PENDING {
            return None;
        }
        if pending.is_empty() {
            // Nobody is waiting, so a pending socket error (an ICMP error for a query that
            // already timed out) is stale: clear it so it does not fail this query.
            let _ = sock.take_error();
        }
        let id = loop {
            let id: u16 = rand::random();
            if !pending.contains_key(&id) {
                break id;
            }
        };
        let token = TOKENS.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        pending.insert(
            id,
            Pending {
                token,
                question: question.to_vec(),
                tx,
            },
        );
        Some((
            PendingGuard {
                up: self,
                id,
                token,
            },
            rx,
        ))
    }

    /// Hands a datagram that is not ours to the waiter registered under its id.
    fn dispatch(&self, datagram: &[u8]) {
        if !wire::is_response(datagram) {
            return;
        }
        let id = u16::from_be_bytes([datagram[0], datagram[1]]);
        let mut pending = lock(&self.pending);
        let matches = pending
            .get(&id)
            .is_some_and(|p| wire::answers_question(datagram, &p.question));
        if matches {
            if let Some(p) = pending.remove(&id) {
                let _ = p.tx.send(Ok(datagram.to_vec()));
            }
        }
    }

    /// The upstream refused (port unreachable): fail every outstanding query on it.
    fn fail_all(&self) {
        let mut pending = lock(&self.pending);
        for (_, p) in pending.drain() {
            let _ = p.tx.send(Err(()));
        }
    }

    /// One UDP exchange: send `query` under a fresh id, wait up to `timeout` for the reply.
    /// The returned reply still carries the upstream id.
    async fn exchange_udp(
        &self,
        query: &[u8],
        question: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, AttemptError> {
        let sock = self.socket().await?;
        let (guard, mut rx) = self
            .register(question, &sock)
            .ok_or(AttemptError::Unavailable)?;
        let id = guard.id;
        let mut out = query.to_vec();
        wire::set_id(&mut out, id.to_be_bytes());
        if let Err(e) = sock.send(&out).await {
            if refused(&e) {
                self.fail_all();
                return Err(AttemptError::Refused);
            }
            self.invalidate(&sock);
            return Err(AttemptError::Io(e));
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            tokio::select! {
                delivered = &mut rx => {
                    return match delivered {
                        Ok(Ok(reply)) => Ok(reply),
                        Ok(Err(())) => Err(AttemptError::Refused),
                        // Sender dropped without a value: cannot happen while registered,
                        // treat as a failed attempt.
                        Err(_) => Err(AttemptError::Unavailable),
                    };
                }
                got = sock.recv(&mut buf) => match got {
                    Ok(n) => {
                        let d = &buf[..n];
                        if wire::is_response(d)
                            && u16::from_be_bytes([d[0], d[1]]) == id
                            && wire::answers_question(d, question)
                        {
                            return Ok(d.to_vec());
                        }
                        self.dispatch(d);
                    }
                    Err(e) if refused(&e) => {
                        self.fail_all();
                        return Err(AttemptError::Refused);
                    }
                    Err(e) => return Err(AttemptError::Io(e)),
                },
                _ = &mut deadline => return Err(AttemptError::Timeout),
            }
        }
    }

    /// One TCP exchange (RFC 1035 4.2.2 / RFC 7766), used when a UDP reply to a TCP client
    /// came back truncated. The connection is made in the upstream's namespace; for a
    /// namespace that needs a short-lived thread, which is acceptable on this rare path.
    async fn exchange_tcp(&self, query: &[u8], timeout: Duration) -> Result<Vec<u8>, AttemptError> {
        let addr = self.addr;
        let work = async {
            let mut stream = match self.netns.clone() {
                None => TcpStream::connect(addr).await.map_err(io_attempt)?,
                Some(path) => {
                    let std_stream = tokio::task::spawn_blocking(move || {
                        netns::run_in(&path, move || {
                            let s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
                            s.set_nonblocking(true)?;
                            Ok::<_, io::Error>(s)
                        })
                    })
                    .await
                    .map_err(|e| AttemptError::Io(io::Error::other(e.to_string())))?
                    .map_err(|e| AttemptError::Io(io::Error::other(e.to_string())))?
                    .map_err(io_attempt)?;
                    TcpStream::from_std(std_stream).map_err(io_attempt)?
                }
            };
            let len = u16::try_from(query.len())
                .map_err(|_| AttemptError::Io(io::Error::other("query too long")))?;
            let mut framed = Vec::with_capacity(query.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(query);
            stream.write_all(&framed).await.map_err(io_attempt)?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.map_err(io_attempt)?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply).await.map_err(io_attempt)?;
            Ok(reply)
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| AttemptError::Timeout)?
    }
}

fn io_attempt(e: io::Error) -> AttemptError {
    if refused(&e) {
        AttemptError::Refused
    } else {
        AttemptError::Io(e)
    }
}

/// Forwards queries to an ordered list of upstream resolvers (at most [`MAX_UPSTREAMS`]).
///
/// Shape: one connected UDP socket per upstream, created once, in the network namespace the
/// upstream is reached from. Queries are tried on the upstreams in order, each attempt
/// bounded by the per-attempt timeout; a refused attempt (ICMP port unreachable) moves to
/// the next upstream at once, and so does a SERVFAIL or REFUSED reply (kept as a last
/// resort). Cheap to share: use it behind an `Arc`, all methods take `&self`.
pub struct Forwarder {
    upstreams: Vec<Upstream>,
    timeout: Duration,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field(
                "upstreams",
                &self.upstreams.iter().map(|u| u.addr).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Forwarder {
    /// Creates a forwarder for `upstreams` (only the first [`MAX_UPSTREAMS`] are used), all
    /// reached from the namespace at `netns` (a netns file such as `/run/netns/x` or
    /// `/proc/PID/ns/net`), or from the daemon's namespace if None. `timeout` bounds each
    /// attempt (one upstream, one try).
    ///
    /// Must be called within a tokio runtime. An upstream whose socket cannot be created yet
    /// (say, no route in that namespace) is not an error: it is retried, at most once a
    /// second, when a query needs it.
    ///
    /// Errors: [`DnsError::NoRuntime`] outside a runtime; [`DnsError::Netns`] if the
    /// namespace cannot be entered.
    pub fn new(
        upstreams: &[SocketAddr],
        timeout: Duration,
        netns: Option<&std::path::Path>,
    ) -> Result<Forwarder, DnsError> {
        let targets = upstreams
            .iter()
            .map(|a| (*a, netns.map(|p| p.to_path_buf())))
            .collect();
        Self::with_targets(targets, timeout)
    }

    /// Like [`Forwarder::new`], with a namespace per upstream.
    pub fn with_targets(
        targets: Vec<(SocketAddr, Option<PathBuf>)>,
        timeout: Duration,
    ) -> Result<Forwarder, DnsError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| DnsError::NoRuntime)?;
        let _enter = handle.enter();
        let targets: Vec<_> = targets.into_iter().take(MAX_UPSTREAMS).collect();
        // One namespace entry (thread) per distinct namespace, not per upstream.
        let mut built: Vec<Option<io::Result<std::net::UdpSocket>>> =
            targets.iter().map(|_| None).collect();
        let mut namespaces: Vec<Option<&PathBuf>> = Vec::new();
        for (_, ns) in &targets {
            if !namespaces.contains(&ns.as_ref()) {
                namespaces.push(ns.as_ref());
            }
        }
        for ns in namespaces {
            let idx: Vec<usize> = (0..targets.len())
                .filter(|&i| targets[i].1.as_ref() == ns)
                .collect();
            let addrs = idx.iter().map(|&i| targets[i].0).collect();
            for (i, sock) in idx.into_iter().zip(build_std(addrs, ns)?) {
                built[i] = Some(sock);
            }
        }
        let upstreams = targets
            .into_iter()
            .zip(built)
            .map(|((addr, ns), sock)| {
                let sock = sock.unwrap_or_else(|| Err(io::Error::other("no socket built")));
                Upstream::new(addr, ns, sock)
            })
            .collect();
        Ok(Forwarder { upstreams, timeout })
    }

    /// The upstream addresses in the order they are tried.
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        self.upstreams.iter().map(|u| u.addr).collect()
    }

    /// Forwards one query (wire bytes, the client's own id) and returns the upstream's reply
    /// with the client's id, or None if no upstream answered (the caller answers SERVFAIL).
    /// With `stream` (the client asked over TCP), a truncated UDP reply is retried over TCP.
    pub(crate) async fn forward(&self, query: &[u8], stream: bool) -> Option<Vec<u8>> {
        if query.len() < wire::HEADER_LEN {
            return None;
        }
        let client_id = [query[0], query[1]];
        let question = wire::question(query).unwrap_or(&[]);
        let mut last_resort: Option<Vec<u8>> = None;
        for up in &self.upstreams {
            let mut reply = match up.exchange_udp(query, question, self.timeout).await {
                Ok(r) => r,
                Err(e) => {
                    debug!(upstream = %up.addr, error = %e, "dns: upstream attempt failed");
                    metrics::observe(|o| o.dns_forward(e.result()));
                    continue;
                }
            };
            wire::set_id(&mut reply, client_id);
            if stream && wire::is_truncated(&reply) {
                match up.exchange_tcp(query, self.timeout).await {
                    Ok(full) if full.len() >= wire::HEADER_LEN => reply = full,
                    Ok(_) => {}
                    Err(e) => {
                        debug!(upstream = %up.addr, error = %e, "dns: TCP retry failed")
                    }
                }
                wire::set_id(&mut reply, client_id);
            }
            // SERVFAIL (2) / REFUSED (5): another upstream may do better.
            if matches!(wire::rcode(&reply), 2 | 5) {
                metrics::observe(|o| o.dns_forward(ForwardResult::Rejected));
                last_resort = Some(reply);
                continue;
            }
            metrics::observe(|o| o.dns_forward(ForwardResult::Answered));
            return Some(reply);
        }
        last_resort
    }
}
