//! The UDP and TCP serving loops of one listener (one container).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, trace};

use super::forward::Forwarder;
use super::{Prepared, Resolver, Transport};

/// Forwarded UDP queries in flight per listener; beyond it, new ones get SERVFAIL at once.
const MAX_UDP_INFLIGHT: usize = 256;
/// Open TCP connections per listener; beyond it, new connections are closed.
const MAX_TCP_CONNS: usize = 64;
/// A TCP connection with no new query for this long is closed (RFC 7766 6.2.3).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on reading one message body or writing one reply on TCP.
const TCP_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after an unexpected socket error, so a broken socket cannot spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Stops a listener's tasks (UDP loop, TCP accept loop and everything they spawned) when
/// dropped, on [`ServeHandle::stop`], or on [`ServeHandle::shutdown`]. Dropping/stopping
/// only signals: the tasks end (and the sockets close) as soon as the runtime polls them.
/// Await [`ServeHandle::shutdown`] to know the sockets are closed, e.g. before binding
/// `127.0.0.11:53` again in the same namespace.
#[derive(Debug)]
pub struct ServeHandle {
    stop: Option<watch::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServeHandle {
    pub(crate) fn new(stop: watch::Sender<()>, tasks: Vec<JoinHandle<()>>) -> Self {
        ServeHandle {
            stop: Some(stop),
            tasks,
        }
    }

    /// Stops serving (same as dropping the handle).
    pub fn stop(self) {}

    /// Stops serving and waits until every task has ended and the sockets are closed.
    pub async fn shutdown(mut self) {
        self.stop.take();
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }

    /// True while the serving tasks are running.
    pub fn is_running(&self) -> bool {
        self.tasks.iter().any(|t| !t.is_finished())
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        // Dropping the sender wakes the loops' `changed()` with an error: they stop their
        // children (JoinSet::shutdown) and return, closing the sockets.
        self.stop.take();
    }
}

async fn send_udp(sock: &UdpSocket, reply: &[u8], peer: SocketAddr) {
    if let Err(e) = sock.send_to(reply, peer).await {
        debug!(%peer, error = %e, "dns: cannot send UDP reply");
    }
}

/// Reads one datagram from `sock`, if one is waiting, and prepares its answer. The buffer
/// is this call's stack, not the serving task's future: a listener (one per running
/// container) holds no receive buffer while it waits. A datagram longer than
/// [`super::wire::UDP_MAX`] (the largest UDP message served; queries are far smaller) is
/// cut to it and answered FORMERR, as any malformed query is.
///
/// Errors: `WouldBlock` when nothing is waiting (the readiness is cleared), or the
/// socket's receive error.
fn receive(
    res: &Resolver,
    asker: &str,
    sock: &UdpSocket,
) -> std::io::Result<(Prepared, SocketAddr)> {
    let mut buf = [0u8; super::wire::UDP_MAX];
    let (n, peer) = sock.try_recv_from(&mut buf)?;
    Ok((res.prepare(asker, &buf[..n], Transport::Udp), peer))
}

/// Serves datagrams: local answers are sent inline (they never wait on upstreams); queries
/// to forward run as tasks, bounded by [`MAX_UDP_INFLIGHT`].
pub(crate) async fn udp_loop(
    res: Arc<Resolver>,
    asker: Arc<str>,
    sock: Arc<UdpSocket>,
    fwd: Arc<Forwarder>,
    mut stop: watch::Receiver<()>,
) {
    let mut inflight = JoinSet::new();
    loop {
        let ready = tokio::select! {
            biased;
            _ = stop.changed() => break,
            ready = sock.readable() => ready,
        };
        let got = ready.and_then(|()| receive(&res, &asker, &sock));
        let (prepared, peer) = match got {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                debug!(error = %e, "dns: UDP receive failed");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        while inflight.try_join_next().is_some() {}
        match prepared {
            Prepared::Reply(reply) => send_udp(&sock, &reply, peer).await,
            Prepared::Drop => trace!(%peer, "dns: dropped datagram without a query header"),
            Prepared::Forward(job) => {
                if inflight.len() >= MAX_UDP_INFLIGHT {
                    debug!(%peer, "dns: too many forwarded queries in flight, SERVFAIL");
                    send_udp(&sock, &job.overloaded(), peer).await;
                    continue;
                }
                let sock = sock.clone();
                let fwd = fwd.clone();
                inflight.spawn(async move {
                    let reply = job.run(&fwd).await;
                    send_udp(&sock, &reply, peer).await;
                });
            }
        }
    }
    inflight.shutdown().await;
}

/// Accepts TCP connections, each served by its own task (bounded by [`MAX_TCP_CONNS`]).
pub(crate) async fn tcp_loop(
    res: Arc<Resolver>,
    asker: Arc<str>,
    listener: TcpListener,
    fwd: Arc<Forwarder>,
    mut stop: watch::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        let got = tokio::select! {
            biased;
            _ = stop.changed() => break,
            got = listener.accept() => got,
        };
        let (stream, peer) = match got {
            Ok(v) => v,
            Err(e) => {
                debug!(error = %e, "dns: TCP accept failed");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        if conns.len() >= MAX_TCP_CONNS {
            debug!(%peer, "dns: too many TCP connections, closing");
            continue;
        }
        let (res, asker, fwd) = (res.clone(), asker.clone(), fwd.clone());
        conns.spawn(async move {
            if let Err(e) = tcp_conn(&res, &asker, stream, &fwd).await {
                trace!(%peer, error = %e, "dns: TCP connection ended");
            }
        });
    }
    conns.shutdown().await;
}

/// One TCP connection: length-prefixed messages (RFC 1035 4.2.2), several per connection,
/// answered in order; closed after [`TCP_IDLE_TIMEOUT`] without a query, on EOF, or on a
/// message without a readable header.
async fn tcp_conn(
    res: &Resolver,
    asker: &str,
    mut stream: TcpStream,
    fwd: &Forwarder,
) -> std::io::Result<()> {
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let len = usize::from(u16::from_be_bytes(len));
        let mut msg = vec![0u8; len];
        tokio::time::timeout(TCP_IO_TIMEOUT, stream.read_exact(&mut msg))
            .await
            .map_err(|_| timed_out())??;
        let Some(reply) = res.answer_with(asker, &msg, fwd, Transport::Tcp).await else {
            return Ok(());
        };
        let Ok(rlen) = u16::try_from(reply.len()) else {
            return Ok(());
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&rlen.to_be_bytes());
        framed.extend_from_slice(&reply);
        tokio::time::timeout(TCP_IO_TIMEOUT, stream.write_all(&framed))
            .await
            .map_err(|_| timed_out())??;
    }
}
