//! Published ports: parsing Docker's `PortBindings` and `ExposedPorts`, choosing host ports
//! (random ones from 49153..60999 as Docker's default range) and holding each host port with a
//! bound socket for as long as it is published, so that neither another container nor a host
//! process can take it meanwhile and a conflict is reported instead of silently shadowed.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use bollard_stubs::models::PortMap;
use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use tether_net::firewall::{PortMapping, Proto};

use crate::EngineError;

/// One requested publication before a host port is chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct PortRequest {
    /// Protocol.
    pub proto: Proto,
    /// Host address; None = all.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port range to pick from (lo == hi for a fixed port); None = random.
    pub host_ports: Option<(u16, u16)>,
    /// Container port.
    pub container_port: u16,
}

/// Parses `"3000/tcp"` (or `"3000"`, or a range `"8000-8001/udp"`) into (ports, proto).
///
/// Errors: bad number or protocol (names the value and the valid forms).
pub fn parse_port_key(key: &str) -> Result<(Vec<u16>, Proto), EngineError> {
    let (p, proto) = match key.split_once('/') {
        Some((p, "tcp")) | Some((p, "")) => (p, Proto::Tcp),
        Some((p, "udp")) => (p, Proto::Udp),
        Some((_, other)) => {
            return Err(EngineError::InvalidParam(format!(
                "invalid proto {other:?} in port {key:?}: use tcp or udp"
            )))
        }
        None => (key, Proto::Tcp),
    };
    let (lo, hi) = parse_range(p).ok_or_else(|| {
        EngineError::InvalidParam(format!(
            "invalid port {key:?}: expected PORT[-PORT][/tcp|/udp] with ports 1-65535"
        ))
    })?;
    Ok(((lo..=hi).collect(), proto))
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
    (a > 0 && b >= a).then_some((a, b))
}

/// Flattens a PortBindings map into requests, in a stable order.
///
/// Errors: a malformed key, host IP or host port (names it).
pub fn parse_bindings(map: &PortMap) -> Result<Vec<PortRequest>, EngineError> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let (cports, proto) = parse_port_key(key)?;
        let bindings = map.get(key).cloned().flatten().unwrap_or_default();
        let bindings = if bindings.is_empty() {
            vec![Default::default()]
        } else {
            bindings
        };
        for b in bindings {
            let b: bollard_stubs::models::PortBinding = b;
            let host_ip = match b.host_ip.as_deref().unwrap_or("") {
                "" | "0.0.0.0" => None,
                ip => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                    EngineError::InvalidParam(format!("invalid host IP {ip:?} in port binding for {key}: expected an IPv4 address such as 127.0.0.1"))
                })?),
            };
            let host = match b.host_port.as_deref().unwrap_or("") {
                "" | "0" => None,
                hp => Some(parse_range(hp).ok_or_else(|| {
                    EngineError::InvalidParam(format!("invalid host port {hp:?} for {key}: expected a port 1-65535 or a range such as 8000-8010"))
                })?),
            };
            for (i, cp) in cports.iter().enumerate() {
                let host_ports = match host {
                    Some((lo, hi)) if cports.len() > 1 => {
                        let want = lo.checked_add(i as u16).filter(|p| *p <= hi).ok_or_else(|| {
                            EngineError::InvalidParam(format!("port range mismatch for {key}: host range {lo}-{hi} is shorter than the container range"))
                        })?;
                        Some((want, want))
                    }
                    other => other,
                };
                out.push(PortRequest {
                    proto,
                    host_ip,
                    host_ports,
                    container_port: *cp,
                });
            }
        }
    }
    Ok(out)
}

/// Binds (without listening) a socket on `host_ip:port/proto`, holding the port.
pub fn reserve(proto: Proto, host_ip: Option<Ipv4Addr>, port: u16) -> std::io::Result<OwnedFd> {
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)?;
    let addr = SockaddrIn::from(SocketAddrV4::new(
        host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        port,
    ));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    Ok(fd)
}

fn show(ip: Option<Ipv4Addr>) -> String {
    ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string()
}

/// Chooses host ports for `reqs` towards `container_ip`, holding each with [`reserve`].
/// `taken` lists (proto, port) pairs other containers publish. All or nothing: on error
/// every socket taken so far is released (dropped).
///
/// Errors: 409-style conflict "Bind for 0.0.0.0:8080 failed: port is already allocated".
pub fn allocate(
    reqs: &[PortRequest],
    container_ip: Option<Ipv4Addr>,
    container_ip6: Option<std::net::Ipv6Addr>,
    taken: &HashSet<(Proto, u16)>,
) -> Result<(Vec<PortMapping>, Vec<OwnedFd>), EngineError> {
    let mut maps = Vec::new();
    let mut fds = Vec::new();
    let mut mine: HashSet<(Proto, Option<Ipv4Addr>, u16)> = HashSet::new();
    for r in reqs {
        let chosen = match r.host_ports {
            Some((lo, hi)) => {
                let mut got = None;
                let mut last_err = String::new();
                for p in lo..=hi {
                    if taken.contains(&(r.proto, p)) || mine.contains(&(r.proto, r.host_ip, p)) {
                        last_err = "port is already allocated".into();
                        continue;
                    }
                    match reserve(r.proto, r.host_ip, p) {
                        Ok(fd) => {
                            got = Some((p, fd));
                            break;
                        }
                        Err(e) => {
                            last_err = format!("address already in use by a host process ({e})")
                        }
                    }
                }
                got.ok_or_else(|| {
                    let ports = if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    };
                    EngineError::Conflict(format!(
                        "Bind for {}:{ports} failed: {last_err}",
                        show(r.host_ip)
                    ))
                })?
            }
            None => {
                let start: u16 = 49153 + rand::random::<u16>() % (60999 - 49153);
                let mut got = None;
                for i in 0..(60999 - 49153) {
                    let p = 49153 + (start - 49153 + i) % (60999 - 49153);
                    if taken.contains(&(r.proto, p))
                        || mine.iter().any(|(pr, _, q)| *pr == r.proto && *q == p)
                    {
                        continue;
                    }
                    if let Ok(fd) = reserve(r.proto, r.host_ip, p) {
                        got = Some((p, fd));
                        break;
                    }
                }
                got.ok_or_else(|| {
                    EngineError::Conflict("no free host port left in 49153-60999".into())
                })?
            }
        };
        mine.insert((r.proto, r.host_ip, chosen.0));
        fds.push(chosen.1);
        maps.push(PortMapping {
            container_ip6,
            proto: r.proto,
            host_ip: r.host_ip,
            host_port: chosen.0,
            container_ip,
            container_port: r.container_port,
            routed4: false,
            routed6: false,
        });
    }
    Ok((maps, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::PortBinding;
    use std::collections::HashMap;

    fn pb(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        }
    }

    #[test]
    fn keys() {
        assert_eq!(
            parse_port_key("3000/tcp").unwrap(),
            (vec![3000], Proto::Tcp)
        );
        assert_eq!(parse_port_key("53/udp").unwrap(), (vec![53], Proto::Udp));
        assert_eq!(parse_port_key("80-81").unwrap(), (vec![80, 81], Proto::Tcp));
        assert!(parse_port_key("80/sctpx")
            .unwrap_err()
            .to_string()
            .contains("sctpx"));
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("x/tcp")
            .unwrap_err()
            .to_string()
            .contains("\"x/tcp\""));
    }

    #[test]
    fn bindings() {
        let m: PortMap = HashMap::from([
            ("3000/tcp".to_string(), Some(vec![pb("", "8080")])),
            ("9000/udp".to_string(), Some(vec![pb("127.0.0.1", "")])),
            ("80-81/tcp".to_string(), Some(vec![pb("", "8000-8001")])),
        ]);
        let r = parse_bindings(&m).unwrap();
        assert_eq!(r.len(), 4);
        assert!(r.contains(&PortRequest {
            proto: Proto::Tcp,
            host_ip: None,
            host_ports: Some((8080, 8080)),
            container_port: 3000
        }));
        assert!(r.contains(&PortRequest {
            proto: Proto::Tcp,
            host_ip: None,
            host_ports: Some((8001, 8001)),
            container_port: 81
        }));
        assert!(r.contains(&PortRequest {
            proto: Proto::Udp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: None,
            container_port: 9000
        }));
        let bad: PortMap = HashMap::from([("3000/tcp".to_string(), Some(vec![pb("nope", "1")]))]);
        assert!(parse_bindings(&bad)
            .unwrap_err()
            .to_string()
            .contains("\"nope\""));
    }

    #[test]
    fn allocation_holds_ports_and_reports_conflicts() {
        let ip = Ipv4Addr::new(172, 18, 0, 2);
        let reqs = vec![PortRequest {
            proto: Proto::Tcp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: None,
            container_port: 80,
        }];
        let (maps, fds) = allocate(&reqs, Some(ip), None, &HashSet::new()).unwrap();
        assert_eq!(fds.len(), 1);
        let p = maps[0].host_port;
        assert!((49153..=60999).contains(&p));
        // the port is held: asking for it again fails, naming it
        let again = vec![PortRequest {
            proto: Proto::Tcp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: Some((p, p)),
            container_port: 80,
        }];
        let e = allocate(&again, Some(ip), None, &HashSet::new()).unwrap_err();
        assert!(e.to_string().contains(&format!("127.0.0.1:{p}")), "{e}");
        let e = allocate(&again, Some(ip), None, &HashSet::from([(Proto::Tcp, p)])).unwrap_err();
        assert!(e.to_string().contains("already allocated"), "{e}");
        drop(fds);
        assert!(allocate(&again, Some(ip), None, &HashSet::new()).is_ok());
    }
}
