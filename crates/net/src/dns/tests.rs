//! Tests with real sockets on 127.0.0.1 only: the server under test and a fake upstream
//! both listen on random loopback ports; nothing else is ever contacted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::*;

const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

/// Aborts a background task when dropped.
struct Task(JoinHandle<()>);
impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fake upstream resolver on 127.0.0.1 (UDP, and TCP on the same port when available):
/// example.test → 192.0.2.7; big.test → TC over UDP, 100 A records over TCP;
/// refused.test → REFUSED; anything else NXDOMAIN. Records the names it was asked.
struct FakeUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    _tasks: Vec<Task>,
}

fn fake_reply(req: &Message, udp: bool) -> Vec<u8> {
    let mut resp = Message::response(req.id, req.op_code);
    resp.metadata.recursion_desired = req.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.queries = req.queries.clone();
    let q = &req.queries[0];
    let name = q.name().to_ascii().to_ascii_lowercase();
    match name.as_str() {
        "example.test." if q.query_type() == RecordType::A => {
            resp.answers.push(Record::from_rdata(
                q.name().clone(),
                60,
                RData::A(A(UPSTREAM_IP)),
            ));
        }
        "example.test." => {}
        "big.test." if udp => resp.metadata.truncation = true,
        "big.test." => {
            for i in 0..100u8 {
                let ip = Ipv4Addr::new(198, 51, 100, i);
                resp.answers
                    .push(Record::from_rdata(q.name().clone(), 60, RData::A(A(ip))));
            }
        }
        "refused.test." => resp.metadata.response_code = ResponseCode::Refused,
        _ => resp.metadata.response_code = ResponseCode::NXDomain,
    }
    resp.to_vec().unwrap()
}

async fn fake_upstream() -> FakeUpstream {
    // Find a port free for both UDP and TCP.
    let (udp, tcp) = loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = std::net::TcpListener::bind(udp.local_addr().unwrap()) {
            break (udp, tcp);
        }
    };
    fake_upstream_on(udp, tcp)
}

/// The fake upstream on given (loopback) sockets, e.g. made inside another namespace.
fn fake_upstream_on(udp: std::net::UdpSocket, tcp: std::net::TcpListener) -> FakeUpstream {
    udp.set_nonblocking(true).unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = UdpSocket::from_std(udp).unwrap();
    let tcp = TcpListener::from_std(tcp).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = udp.local_addr().unwrap();
    let seen_udp = seen.clone();
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                continue;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            seen_udp
                .lock()
                .unwrap()
                .push(req.queries[0].name().to_ascii().to_ascii_lowercase());
            let _ = udp.send_to(&fake_reply(&req, true), peer).await;
        }
    });
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                while s.read_exact(&mut len).await.is_ok() {
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    let Ok(req) = Message::from_vec(&q) else {
                        return;
                    };
                    let r = fake_reply(&req, false);
                    let mut out = (r.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&r);
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    FakeUpstream {
        addr,
        seen,
        _tasks: vec![Task(udp_task), Task(tcp_task)],
    }
}

/// A loopback port with nothing listening (ICMP port unreachable on use).
fn closed_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// The server under test, listening on random loopback ports.
struct Server {
    udp: SocketAddr,
    tcp: SocketAddr,
    handle: ServeHandle,
}

fn serve(res: &Arc<Resolver>, asker: &str, upstreams: Vec<SocketAddr>) -> Server {
    serve_ns(res, asker, upstreams, None)
}

fn serve_ns(
    res: &Arc<Resolver>,
    asker: &str,
    upstreams: Vec<SocketAddr>,
    ns: Option<std::path::PathBuf>,
) -> Server {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (ua, ta) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
    let handle = res.serve(asker.into(), udp, tcp, upstreams, ns).unwrap();
    Server {
        udp: ua,
        tcp: ta,
        handle,
    }
}

fn query(id: u16, name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    m
}

fn qbytes(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    query(id, name, qtype).to_vec().unwrap()
}

async fn udp_raw(server: SocketAddr, q: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(q, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, c.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

async fn udp_ask(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let id = rand::random();
    let raw = udp_raw(server, &qbytes(id, name, qtype), Duration::from_secs(5))
        .await
        .expect("no reply");
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.id, id);
    assert_eq!(m.message_type, MessageType::Response);
    m
}

fn v4s(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn resolver(upstreams: Vec<SocketAddr>, timeout_ms: u64) -> Arc<Resolver> {
    Resolver::new(upstreams, Duration::from_millis(timeout_ms))
}

const WEB_ID: &str = "aaaaaaaaaaaa1111";

fn with_web(res: &Resolver) {
    res.add_endpoint(
        "net1",
        WEB_ID,
        &names(&["web", "aaaaaaaaaaaa", "webhost", "frontend"]),
        Some(Ipv4Addr::new(172, 20, 0, 2)),
        None,
    );
    res.add_endpoint(
        "net1",
        "client",
        &names(&["client"]),
        Some(Ipv4Addr::new(172, 20, 0, 3)),
        Some("fd00::3".parse().unwrap()),
    );
}

#[tokio::test]
async fn dns_a_by_container_name() {
    let res = resolver(vec![], 500);
    with_web(&res);
    let s = serve(&res, "client", vec![]);
    for name in [
        "web",
        "WEB.",
        "aaaaaaaaaaaa",
        "webhost",
        "FrontEnd",
        "web.net1",
    ] {
        let m = udp_ask(s.udp, name, RecordType::A).await;
        assert_eq!(m.response_code, ResponseCode::NoError, "{name}");
        assert_eq!(v4s(&m), vec![Ipv4Addr::new(172, 20, 0, 2)], "{name}");
        assert_eq!(m.answers[0].ttl, TTL);
        assert!(m.recursion_available && m.recursion_desired);
        assert_eq!(m.queries.len(), 1);
    }
    res.set_network_name("net1", "frontnet");
    let m = udp_ask(s.udp, "web.frontnet", RecordType::A).await;
    assert_eq!(v4s(&m), vec![Ipv4Addr::new(172, 20, 0, 2)]);
    // AAAA for a dual-stack container.
    let m = udp_ask(s.udp, "client", RecordType::AAAA).await;
    assert!(
        matches!(&m.answers[0].data, RData::AAAA(a) if a.0 == "fd00::3".parse::<Ipv6Addr>().unwrap())
    );
    assert_eq!(
        res.lookup("client", "web"),
        Some(vec![IpAddr::V4(Ipv4Addr::new(172, 20, 0, 2))])
    );
}

#[tokio::test]
async fn dns_scoping_other_network_is_forwarded() {
    let up = fake_upstream().await;
    let res = resolver(vec![up.addr], 1000);
    with_web(&res);
    res.add_endpoint(
        "net2",
        "dbid",
        &names(&["db"]),
        Some(Ipv4Addr::new(172, 30, 0, 2)),
        None,
    );
    let s = serve(&res, "client", vec![]);
    let m = udp_ask(s.udp, "db", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    assert_eq!(up.seen.lock().unwrap().as_slice(), ["db."]);
    // A container on no network at all: everything is forwarded.
    let lonely = serve(&res, "nobody", vec![]);
    let m = udp_ask(lonely.udp, "web", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::NXDomain);
    assert_eq!(up.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn dns_alias_round_robin() {
    let res = resolver(vec![], 500);
    with_web(&res);
    let ips: Vec<Ipv4Addr> = (10..13).map(|i| Ipv4Addr::new(172, 20, 0, i)).collect();
    for (i, ip) in ips.iter().enumerate() {
        res.add_endpoint(
            "net1",
            &format!("replica{i}"),
            &names(&[&format!("checker-{i}"), "db-checker"]),
            Some(*ip),
            None,
        );
    }
    let s = serve(&res, "client", vec![]);
    let mut firsts = Vec::new();
    for _ in 0..10 {
        let m = udp_ask(s.udp, "db-checker", RecordType::A).await;
        let mut got = v4s(&m);
        firsts.push(got[0]);
        got.sort();
        assert_eq!(got, ips);
    }
    for w in firsts.windows(2) {
        assert_ne!(w[0], w[1], "first address must rotate: {firsts:?}");
    }
    for ip in &ips {
        assert!(firsts.contains(ip), "{ip} never first: {firsts:?}");
    }
}

#[tokio::test]
async fn dns_nodata_for_missing_type() {
    let up = fake_upstream().await;
    let res = resolver(vec![up.addr], 500);
    with_web(&res);
    let s = serve(&res, "client", vec![]);
    for qtype in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
        let m = udp_ask(s.udp, "web", qtype).await;
        assert_eq!(m.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }
    assert!(
        up.seen.lock().unwrap().is_empty(),
        "known names are never forwarded"
    );
}

#[tokio::test]
async fn dns_ptr() {
    let up = fake_upstream().await;
    let res = resolver(vec![up.addr], 500);
    with_web(&res);
    res.add_endpoint(
        "net2",
        "other",
        &names(&["other"]),
        Some(Ipv4Addr::new(172, 30, 0, 9)),
        None,
    );
    let s = serve(&res, "client", vec![]);
    let m = udp_ask(s.udp, "2.0.20.172.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(m.response_code, ResponseCode::NoError);
    assert!(matches!(&m.answers[0].data, RData::PTR(PTR(n)) if n.to_ascii() == "web."));
    // IPv6 PTR of the client itself.
    let v6: Ipv6Addr = "fd00::3".parse().unwrap();
    let mut labels: Vec<String> = format!("{:032x}", u128::from(v6))
        .chars()
        .rev()
        .map(String::from)
        .collect();
    labels.extend(["ip6".into(), "arpa".into()]);
    let m = udp_ask(s.udp, &labels.join("."), RecordType::PTR).await;
    assert!(matches!(&m.answers[0].data, RData::PTR(PTR(n)) if n.to_ascii() == "client."));
    // Not on a shared network, and unknown addresses: forwarded.
    let m = udp_ask(s.udp, "9.0.30.172.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(m.response_code, ResponseCode::NXDomain);
    let m = udp_ask(s.udp, "7.2.0.192.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(m.response_code, ResponseCode::NXDomain);
    assert_eq!(up.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn dns_forwarding_to_fake_upstream() {
    let up = fake_upstream().await;
    let res = resolver(vec![closed_port()], 500);
    with_web(&res);
    // The container's own --dns overrides the defaults.
    let s = serve(&res, "client", vec![up.addr]);
    for _ in 0..3 {
        let m = udp_ask(s.udp, "Example.Test", RecordType::A).await;
        assert_eq!(m.response_code, ResponseCode::NoError);
        assert_eq!(v4s(&m), vec![UPSTREAM_IP]);
    }
    // Concurrent forwarded queries over one upstream socket are matched by id.
    let mut joins = Vec::new();
    for _ in 0..20 {
        let addr = s.udp;
        joins.push(tokio::spawn(async move {
            udp_ask(addr, "example.test", RecordType::A).await
        }));
    }
    for j in joins {
        assert_eq!(v4s(&j.await.unwrap()), vec![UPSTREAM_IP]);
    }
    // The forwarding sockets may also be made inside a namespace (here: our own).
    let s2 = serve_ns(
        &res,
        "client",
        vec![up.addr],
        Some("/proc/self/ns/net".into()),
    );
    let m = udp_ask(s2.udp, "example.test", RecordType::A).await;
    assert_eq!(v4s(&m), vec![UPSTREAM_IP]);
}

#[tokio::test]
async fn dns_refused_or_closed_upstream_moves_to_next() {
    let up = fake_upstream().await;
    // First upstream: closed port (ECONNREFUSED); the timeout is long, so a fast answer
    // proves the move to the next upstream was immediate.
    let res = resolver(vec![closed_port(), up.addr], 3000);
    let s = serve(&res, "client", vec![]);
    let t = Instant::now();
    let m = udp_ask(s.udp, "example.test", RecordType::A).await;
    assert_eq!(v4s(&m), vec![UPSTREAM_IP]);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // A REFUSED reply is relayed only when no other upstream does better.
    let m = udp_ask(s.udp, "refused.test", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn dns_servfail_when_upstream_closed_or_absent() {
    let res = resolver(vec![closed_port()], 2000);
    let s = serve(&res, "client", vec![]);
    let t = Instant::now();
    let m = udp_ask(s.udp, "example.test", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::ServFail);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // Twice: no stale socket error, still fast.
    let t = Instant::now();
    let m = udp_ask(s.udp, "example.test", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::ServFail);
    assert!(t.elapsed() < Duration::from_millis(1500));

    let empty = resolver(vec![], 2000);
    let s = serve(&empty, "client", vec![]);
    let t = Instant::now();
    let m = udp_ask(s.udp, "example.test", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::ServFail);
    assert!(t.elapsed() < Duration::from_millis(1000));
}

#[tokio::test]
async fn dns_servfail_after_timeout_on_black_hole() {
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let res = resolver(vec![hole.local_addr().unwrap()], 300);
    let s = serve(&res, "client", vec![]);
    let t = Instant::now();
    let m = udp_ask(s.udp, "example.test", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::ServFail);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(290) && e < Duration::from_millis(1500),
        "{e:?}"
    );
}

#[tokio::test]
async fn dns_container_names_fast_with_black_hole_upstream() {
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let res = resolver(vec![hole.local_addr().unwrap()], 3000);
    with_web(&res);
    let s = serve(&res, "client", vec![]);
    // Several queries stuck on the black hole...
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..5 {
        c.send_to(&qbytes(100 + i, "example.test", RecordType::A), s.udp)
            .await
            .unwrap();
    }
    // ...do not delay container names, on UDP or TCP.
    let t = Instant::now();
    for _ in 0..5 {
        let m = udp_ask(s.udp, "web", RecordType::A).await;
        assert_eq!(v4s(&m), vec![Ipv4Addr::new(172, 20, 0, 2)]);
    }
    let m = tcp_ask(s.tcp, &[qbytes(1, "web", RecordType::A)]).await;
    assert_eq!(v4s(&m[0]), vec![Ipv4Addr::new(172, 20, 0, 2)]);
    // The upstream timeout is 3 s: well under it means nothing waited on the black hole.
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
}

async fn tcp_ask(server: SocketAddr, queries: &[Vec<u8>]) -> Vec<Message> {
    let mut s = TcpStream::connect(server).await.unwrap();
    let mut out = Vec::new();
    for q in queries {
        out.extend_from_slice(&(q.len() as u16).to_be_bytes());
        out.extend_from_slice(q);
    }
    s.write_all(&out).await.unwrap();
    let mut replies = Vec::new();
    for _ in queries {
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len))
            .await
            .unwrap()
            .unwrap();
        let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut r).await.unwrap();
        replies.push(Message::from_vec(&r).unwrap());
    }
    replies
}

#[tokio::test]
async fn dns_tcp_queries() {
    let up = fake_upstream().await;
    let res = resolver(vec![up.addr], 1000);
    with_web(&res);
    let s = serve(&res, "client", vec![]);
    let replies = tcp_ask(
        s.tcp,
        &[
            qbytes(1, "web", RecordType::A),
            qbytes(2, "example.test", RecordType::A),
            qbytes(3, "client", RecordType::AAAA),
            // Forwarded, truncated over UDP by the upstream: retried over TCP upstream.
            qbytes(4, "big.test", RecordType::A),
        ],
    )
    .await;
    assert_eq!(replies[0].id, 1);
    assert_eq!(v4s(&replies[0]), vec![Ipv4Addr::new(172, 20, 0, 2)]);
    assert_eq!(replies[1].id, 2);
    assert_eq!(v4s(&replies[1]), vec![UPSTREAM_IP]);
    assert_eq!(replies[2].answers.len(), 1);
    assert_eq!(replies[3].id, 4);
    assert!(!replies[3].truncation);
    assert_eq!(v4s(&replies[3]).len(), 100);
    // Over UDP the client gets the upstream's truncated reply, to retry over TCP.
    let m = udp_ask(s.udp, "big.test", RecordType::A).await;
    assert!(m.truncation);
}

#[tokio::test]
async fn dns_remove_endpoint_takes_effect_at_once() {
    let up = fake_upstream().await;
    let res = resolver(vec![up.addr], 500);
    with_web(&res);
    let s = serve(&res, "client", vec![]);
    assert_eq!(v4s(&udp_ask(s.udp, "web", RecordType::A).await).len(), 1);
    res.remove_endpoint("net1", WEB_ID);
    let m = udp_ask(s.udp, "web", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::NXDomain, "forwarded now");
    assert_eq!(up.seen.lock().unwrap().as_slice(), ["web."]);
    // The asker leaving the network loses visibility too.
    with_web(&res);
    res.remove_endpoint("net1", "client");
    let m = udp_ask(s.udp, "web", RecordType::A).await;
    assert_eq!(m.response_code, ResponseCode::NXDomain);
}

/// A UDP query longer than the listener's buffer (`wire::UDP_MAX`) is still answered, with
/// its id: never silence.
#[tokio::test]
async fn dns_udp_query_longer_than_the_buffer_is_answered() {
    let res = resolver(vec![], 200);
    with_web(&res);
    let s = serve(&res, "client", vec![]);
    for extra in [0usize, 4096, 9000] {
        let mut q = qbytes(0x4242, "web", RecordType::A);
        q.extend(std::iter::repeat_n(0u8, extra));
        let raw = udp_raw(s.udp, &q, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no answer to a {}-byte query", q.len()));
        let m = Message::from_vec(&raw).unwrap();
        assert_eq!(m.id, 0x4242, "{} bytes", q.len());
    }
}

#[tokio::test]
async fn dns_malformed_input() {
    let res = resolver(vec![], 200);
    with_web(&res);
    let fwd = res.forwarder(vec![], None).unwrap();
    // No header: nothing.
    assert!(res.answer("client", &[], &fwd).await.is_none());
    assert!(res.answer("client", &[1, 2, 3], &fwd).await.is_none());
    // A response is never answered.
    let mut resp = qbytes(9, "web", RecordType::A);
    resp[2] |= 0x80;
    assert!(res.answer("client", &resp, &fwd).await.is_none());
    // Header + garbage: FORMERR with the id.
    let mut bad = qbytes(0x1234, "web", RecordType::A);
    bad.truncate(15);
    let r = Message::from_vec(&res.answer("client", &bad, &fwd).await.unwrap()).unwrap();
    assert_eq!((r.id, r.response_code), (0x1234, ResponseCode::FormErr));
    // No question / absurd counts: FORMERR.
    let mut noq = qbytes(7, "web", RecordType::A);
    noq.truncate(12);
    noq[5] = 0;
    let r = Message::from_vec(&res.answer("client", &noq, &fwd).await.unwrap()).unwrap();
    assert_eq!(r.response_code, ResponseCode::FormErr);
    let mut huge = qbytes(8, "web", RecordType::A);
    huge[6..12].fill(0xff);
    let r = Message::from_vec(&res.answer("client", &huge, &fwd).await.unwrap()).unwrap();
    assert_eq!(r.response_code, ResponseCode::FormErr);
    // Other opcodes: NOTIMP.
    let mut st = query(5, "web", RecordType::A);
    st.metadata.op_code = OpCode::Status;
    let r = Message::from_vec(
        &res.answer("client", &st.to_vec().unwrap(), &fwd)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.response_code, ResponseCode::NotImp);
    // EDNS: OPT echoed; version 1 → BADVERS.
    let mut e = query(6, "web", RecordType::A);
    e.edns = Some(Edns::new());
    let r = Message::from_vec(
        &res.answer("client", &e.to_vec().unwrap(), &fwd)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(r.edns.is_some());
    assert_eq!(v4s(&r).len(), 1);
    let mut v1 = Edns::new();
    v1.set_version(1);
    e.edns = Some(v1);
    let r = Message::from_vec(
        &res.answer("client", &e.to_vec().unwrap(), &fwd)
            .await
            .unwrap(),
    )
    .unwrap();
    // Code 16 is BADVERS in responses with OPT (RFC 6891); hickory names it BADSIG.
    assert_eq!(u16::from(r.response_code), 16);
    // Over the UDP socket too.
    let s = serve(&res, "client", vec![]);
    let raw = udp_raw(s.udp, &bad, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        Message::from_vec(&raw).unwrap().response_code,
        ResponseCode::FormErr
    );
    assert!(udp_raw(s.udp, &[0, 1, 2], Duration::from_millis(200))
        .await
        .is_none());
    // And the server still works.
    assert_eq!(v4s(&udp_ask(s.udp, "web", RecordType::A).await).len(), 1);
}

#[tokio::test]
async fn dns_fuzz_random_bytes_never_panic() {
    let res = resolver(vec![], 100);
    with_web(&res);
    let fwd = res.forwarder(vec![], None).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7e7e);
    let seeds: Vec<Vec<u8>> = vec![
        qbytes(1, "web", RecordType::A),
        qbytes(2, "2.0.20.172.in-addr.arpa", RecordType::PTR),
        {
            let mut m = query(3, "frontend", RecordType::AAAA);
            m.edns = Some(Edns::new());
            m.to_vec().unwrap()
        },
    ];
    for i in 0..20_000u32 {
        let buf: Vec<u8> = if i % 2 == 0 {
            let len = rng.gen_range(0..300);
            (0..len).map(|_| rng.gen()).collect()
        } else {
            let mut b = seeds[(i as usize / 2) % seeds.len()].clone();
            for _ in 0..rng.gen_range(1..6) {
                let at = rng.gen_range(0..b.len());
                b[at] = rng.gen();
            }
            if rng.gen_bool(0.2) {
                let cut = rng.gen_range(0..b.len());
                b.truncate(cut);
            }
            b
        };
        for t in [Transport::Udp, Transport::Tcp] {
            let r = res.answer_with("client", &buf, &fwd, t).await;
            let parsable_query = buf.len() >= 12 && buf[2] & 0x80 == 0;
            assert_eq!(r.is_some(), parsable_query, "input {buf:?}");
            if let Some(r) = r {
                assert!(r.len() >= 12);
                assert_eq!(r[..2], buf[..2], "id echoed");
                if t == Transport::Udp {
                    assert!(r.len() <= 65535);
                }
            }
        }
    }
}

#[tokio::test]
async fn dns_udp_truncation() {
    let res = resolver(vec![], 500);
    with_web(&res);
    for i in 0..60u8 {
        res.add_endpoint(
            "net1",
            &format!("r{i}"),
            &names(&["many"]),
            Some(Ipv4Addr::new(10, 9, 0, i)),
            None,
        );
    }
    let s = serve(&res, "client", vec![]);
    let raw = udp_raw(
        s.udp,
        &qbytes(1, "many", RecordType::A),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(raw.len() <= 512, "{}", raw.len());
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.truncation);
    assert!(!m.answers.is_empty() && m.answers.len() < 60);
    // EDNS(0) with a 4096-byte buffer: everything fits, OPT echoed.
    let mut q = query(2, "many", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    q.edns = Some(edns);
    let raw = udp_raw(s.udp, &q.to_vec().unwrap(), Duration::from_secs(5))
        .await
        .unwrap();
    let m = Message::from_vec(&raw).unwrap();
    assert!(!m.truncation);
    assert_eq!(m.answers.len(), 60);
    assert!(m.edns.is_some());
    // EDNS with a 512-byte buffer: truncated but the OPT record is kept.
    let mut small = Edns::new();
    small.set_max_payload(512);
    q.edns = Some(small);
    let raw = udp_raw(s.udp, &q.to_vec().unwrap(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(raw.len() <= 512);
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.truncation && m.edns.is_some());
    // TCP: the whole answer.
    let m = tcp_ask(s.tcp, &[qbytes(3, "many", RecordType::A)]).await;
    assert!(!m[0].truncation);
    assert_eq!(m[0].answers.len(), 60);
    // A client claiming 65535 bytes still gets at most 4096 over UDP.
    for i in 0..300u16 {
        let ip = Ipv4Addr::new(10, 8, (i >> 8) as u8, i as u8);
        res.add_endpoint("net1", &format!("h{i}"), &names(&["huge"]), Some(ip), None);
    }
    let mut q = query(4, "huge", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(65535);
    q.edns = Some(edns);
    let raw = udp_raw(s.udp, &q.to_vec().unwrap(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(raw.len() <= 4096, "{}", raw.len());
    let m = Message::from_vec(&raw).unwrap();
    assert!(m.truncation && m.edns.is_some() && m.answers.len() > 200);
    let m = tcp_ask(s.tcp, &[qbytes(5, "huge", RecordType::A)]).await;
    assert_eq!(m[0].answers.len(), 300);
}

#[tokio::test]
async fn dns_serve_handle_stops() {
    let res = resolver(vec![], 500);
    with_web(&res);
    let s = serve(&res, "client", vec![]);
    assert!(s.handle.is_running());
    assert_eq!(v4s(&udp_ask(s.udp, "web", RecordType::A).await).len(), 1);
    // A TCP connection left open is closed by the shutdown too.
    let mut open_conn = TcpStream::connect(s.tcp).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.handle.shutdown().await;
    // Both sockets are closed: the same addresses can be bound again at once.
    let udp = std::net::UdpSocket::bind(s.udp).unwrap();
    let tcp = std::net::TcpListener::bind(s.tcp).unwrap();
    let mut b = [0u8; 1];
    let eof = tokio::time::timeout(Duration::from_secs(2), open_conn.read(&mut b)).await;
    assert!(matches!(eof, Ok(Ok(0)) | Ok(Err(_))), "{eof:?}");
    // Serving again on them works; stop() (or drop) stops it.
    let handle = res.serve("client".into(), udp, tcp, vec![], None).unwrap();
    assert_eq!(v4s(&udp_ask(s.udp, "web", RecordType::A).await).len(), 1);
    handle.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(udp_raw(
        s.udp,
        &qbytes(1, "web", RecordType::A),
        Duration::from_millis(300)
    )
    .await
    .is_none());
}

#[test]
fn dns_serve_outside_runtime_is_an_error() {
    let res = resolver(vec![], 500);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(matches!(
        res.serve("x".into(), udp, tcp, vec![], None),
        Err(DnsError::NoRuntime)
    ));
}

/// A thread holding a fresh network namespace with `lo` up; None if this environment does
/// not allow creating one (the test is then skipped).
struct TempNetns {
    path: std::path::PathBuf,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TempNetns {
    fn new() -> Option<TempNetns> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                let _ = tx.send(None);
                return;
            }
            // A child forked from this thread starts in its namespace.
            let up = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .is_ok_and(|s| s.success());
            if !up {
                let _ = tx.send(None);
                return;
            }
            let path = format!(
                "/proc/{}/task/{}/ns/net",
                std::process::id(),
                nix::unistd::gettid()
            );
            let _ = tx.send(Some(std::path::PathBuf::from(path)));
            let _ = stop_rx.recv();
        });
        let path = rx.recv().ok().flatten()?;
        Some(TempNetns {
            path,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for TempNetns {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test]
async fn dns_forwarding_from_container_namespace() {
    let Some(ns) = TempNetns::new() else {
        eprintln!("skipping: cannot create a network namespace here");
        return;
    };
    // Inside the "container": the DNS sockets, a client, and a fake upstream on ITS
    // loopback (the daemon's 127.0.0.1 has nothing on that port).
    let (udp, tcp, up_udp, up_tcp, client) = crate::netns::run_in(&ns.path, || {
        let up_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let up_tcp = std::net::TcpListener::bind(up_udp.local_addr().unwrap()).unwrap();
        (
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            up_udp,
            up_tcp,
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        )
    })
    .unwrap();
    let inner = fake_upstream_on(up_udp, up_tcp);
    let server = udp.local_addr().unwrap();
    client.set_nonblocking(true).unwrap();
    let client = UdpSocket::from_std(client).unwrap();
    let ask = |server: SocketAddr, id: u16, name: &'static str| {
        let client = &client;
        async move {
            client
                .send_to(&qbytes(id, name, RecordType::A), server)
                .await
                .unwrap();
            let mut buf = vec![0u8; 4096];
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            Message::from_vec(&buf[..n]).unwrap()
        }
    };

    // The daemon's default upstream is on the daemon's loopback: reached from the daemon's
    // namespace even though forwarding otherwise happens in the container's.
    let outer = fake_upstream().await;
    let res = resolver(vec![outer.addr], 1000);
    let handle = res
        .serve("c".into(), udp, tcp, vec![], Some(ns.path.clone()))
        .unwrap();
    let m = ask(server, 1, "example.test").await;
    assert_eq!(v4s(&m), vec![UPSTREAM_IP]);
    assert_eq!(outer.seen.lock().unwrap().len(), 1);
    drop(handle);

    // The container's own --dns 127.0.0.1:P is its own loopback.
    let (udp, tcp) = crate::netns::run_in(&ns.path, move || {
        (
            std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        )
    })
    .unwrap();
    let server = udp.local_addr().unwrap();
    let _handle = res
        .serve(
            "c".into(),
            udp,
            tcp,
            vec![inner.addr],
            Some(ns.path.clone()),
        )
        .unwrap();
    let m = ask(server, 2, "example.test").await;
    assert_eq!(v4s(&m), vec![UPSTREAM_IP]);
    assert_eq!(inner.seen.lock().unwrap().as_slice(), ["example.test."]);
}

#[test]
fn dns_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Resolver>();
    check::<Forwarder>();
    check::<ServeHandle>();
    check::<DnsError>();
}
