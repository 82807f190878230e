//! Who listens where in a network namespace: the kernel's socket tables
//! `/proc/PID/net/{tcp,tcp6,udp,udp6}` (proc(5)), read for the namespace of process PID,
//! and a TCP probe made from inside a namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::firewall::Proto;

/// `st` of a listening TCP socket (TCP_LISTEN) and of an unconnected UDP socket
/// (TCP_CLOSE, which UDP sockets report) in /proc/net/{tcp,udp}.
const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// Parses a local address of /proc/net/tcp (`0100007F:1F90`) or /proc/net/tcp6 (32 hex
/// digits, four 32-bit words in host byte order) into an address and port.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(a, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(&a[i * 8..i * 8 + 8], 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The listening addresses in one socket table's text (the content of
/// /proc/PID/net/tcp or the like): local addresses of sockets in `state`.
pub fn parse_table(text: &str, state: &str) -> Vec<SocketAddr> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 3 && f[3] == state)
                .then(|| parse_addr(f[1]))
                .flatten()
        })
        .collect()
}

/// Addresses on which something listens for `proto` port `port` in the network namespace
/// of process `pid` (0.0.0.0 and :: stand for every address). Tables that cannot be read
/// (the process is gone) count as empty.
pub fn listeners(pid: u32, proto: Proto, port: u16) -> Vec<SocketAddr> {
    let (files, state) = match proto {
        Proto::Tcp => (["tcp", "tcp6"], TCP_LISTEN),
        Proto::Udp => (["udp", "udp6"], UDP_UNCONNECTED),
    };
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
            parse_table(&text, state)
        })
        .filter(|a| a.port() == port)
        .collect()
}

/// Whether every address of `addrs` is a loopback one (127.0.0.0/8, ::1): a server that
/// only listens there is out of reach from any other namespace.
pub fn loopback_only(addrs: &[SocketAddr]) -> bool {
    !addrs.is_empty()
        && addrs.iter().all(|a| match a.ip() {
            IpAddr::V4(v) => v.is_loopback(),
            IpAddr::V6(v) => v.is_loopback() || v.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
        })
}

/// The outcome of a TCP connection attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The handshake completed.
    Connected,
    /// Refused (a RST: nothing listens, or a reject).
    Refused,
    /// No answer within the limit (dropped on the way).
    TimedOut,
    /// Another error (no route, ...), with its text.
    Failed(String),
}

/// Connects to `to` over TCP from inside the network namespace at `netns` (a netns file
/// or /proc/PID/ns/net; None: the calling thread's own), waiting at most `limit`.
pub fn probe_tcp(netns: Option<&Path>, to: SocketAddr, limit: Duration) -> ProbeOutcome {
    let attempt = move || match std::net::TcpStream::connect_timeout(&to, limit) {
        Ok(_) => ProbeOutcome::Connected,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => ProbeOutcome::Refused,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => ProbeOutcome::TimedOut,
        Err(e) => ProbeOutcome::Failed(e.to_string()),
    };
    match netns {
        Some(ns) => crate::netns::run_in(ns, attempt)
            .unwrap_or_else(|e| ProbeOutcome::Failed(format!("entering the namespace: {e}"))),
        None => attempt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n   2: 0100007F:0050 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n";
        let got = parse_table(tcp, TCP_LISTEN);
        assert_eq!(
            got,
            vec![
                "127.0.0.1:8080".parse().unwrap(),
                "0.0.0.0:80".parse().unwrap()
            ]
        );
        let tcp6 = "header\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(
            parse_table(tcp6, TCP_LISTEN),
            vec!["[::1]:8080".parse::<SocketAddr>().unwrap()]
        );
        assert!(loopback_only(&parse_table(tcp6, TCP_LISTEN)));
        assert!(!loopback_only(&got));
        assert!(!loopback_only(&[]));
    }

    #[test]
    fn own_listener_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let found = listeners(std::process::id(), Proto::Tcp, port);
        assert_eq!(found, vec![SocketAddr::from(([127, 0, 0, 1], port))]);
        assert_eq!(
            probe_tcp(
                None,
                SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(2)
            ),
            ProbeOutcome::Connected
        );
    }
}
