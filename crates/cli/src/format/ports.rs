//! The PORTS column of `ps` (docker's `formatter.DisplayablePorts`) and the
//! natural sort `docker port` uses.

use std::cmp::Ordering;
use std::net::IpAddr;

/// One entry of the `Ports` list in `GET /containers/json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSummary {
    /// Host IP ("" when only exposed).
    pub ip: String,
    /// Port inside the container.
    pub private_port: u16,
    /// Port on the host (0 when only exposed).
    pub public_port: u16,
    /// "tcp", "udp" or "sctp".
    pub proto: String,
}

impl PortSummary {
    /// Reads one element of the API's `Ports` array.
    pub fn from_json(v: &serde_json::Value) -> Option<PortSummary> {
        let port = |k: &str| {
            v.get(k)
                .and_then(|p| p.as_u64())
                .and_then(|p| u16::try_from(p).ok())
        };
        Some(PortSummary {
            ip: v
                .get("IP")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_string(),
            private_port: port("PrivatePort")?,
            public_port: port("PublicPort").unwrap_or(0),
            proto: v
                .get("Type")
                .and_then(|s| s.as_str())
                .unwrap_or("tcp")
                .to_string(),
        })
    }
}

/// Go's `net.JoinHostPort`: brackets around hosts containing a colon.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn ip_less(a: &str, b: &str) -> Ordering {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => {
            // netip.Addr.Less: IPv4 sorts before IPv6.
            match (x, y) {
                (IpAddr::V4(_), IpAddr::V6(_)) => Ordering::Less,
                (IpAddr::V6(_), IpAddr::V4(_)) => Ordering::Greater,
                _ => x.cmp(&y),
            }
        }
        _ => a.cmp(b),
    }
}

fn form_group(key: &str, start: u16, last: u16) -> String {
    let (ip, proto) = match key.rsplit_once('/') {
        Some((ip, proto)) => (ip, proto),
        None => ("", key),
    };
    let mut group = start.to_string();
    if start != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join_host_port(ip, &group));
    }
    format!("{group}/{proto}")
}

/// docker's `DisplayablePorts`: exposed-only ports and ports published on the
/// same host port are grouped into consecutive ranges per IP and protocol
/// ("0.0.0.0:8000-8001->8000-8001/tcp", "3000-3001/tcp"); mappings to a
/// different host port are listed one by one after them
/// ("0.0.0.0:8080->3000/tcp"). Entries are joined with ", ".
pub fn displayable_ports(ports: &[PortSummary]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        a.private_port
            .cmp(&b.private_port)
            .then_with(|| ip_less(&a.ip, &b.ip))
            .then_with(|| a.public_port.cmp(&b.public_port))
            .then_with(|| a.proto.cmp(&b.proto))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new(); // key, first, last (in creation order)
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let current = p.private_port;
        let mut key = p.proto.clone();
        if !p.ip.is_empty() {
            if p.public_port != current {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, &p.public_port.to_string()),
                    p.private_port,
                    p.proto
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.proto);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, current, current)),
            Some(g) => {
                if current == g.2.wrapping_add(1) {
                    g.2 = current;
                } else {
                    result.push(form_group(&g.0, g.1, g.2));
                    g.1 = current;
                    g.2 = current;
                }
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(form_group(key, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

/// `sortorder.NaturalLess`: compares runs of digits numerically.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ca, cb) = (a[i], b[j]);
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i] == b'0' {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j] == b'0' {
                j += 1;
            }
            let ni = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let nj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (da, db) = (&a[ni..i], &b[nj..j]);
            let ord = da
                .len()
                .cmp(&db.len())
                .then_with(|| da.cmp(db))
                .then_with(|| (ni - si).cmp(&(nj - sj)));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ip: &str, private: u16, public: u16, proto: &str) -> PortSummary {
        PortSummary {
            ip: ip.into(),
            private_port: private,
            public_port: public,
            proto: proto.into(),
        }
    }

    #[test]
    fn published_and_exposed() {
        assert_eq!(
            displayable_ports(&[p("0.0.0.0", 3000, 8080, "tcp")]),
            "0.0.0.0:8080->3000/tcp"
        );
        assert_eq!(displayable_ports(&[p("", 3000, 0, "tcp")]), "3000/tcp");
        assert_eq!(displayable_ports(&[]), "");
    }

    #[test]
    fn ranges_collapse_when_ports_match() {
        assert_eq!(
            displayable_ports(&[
                p("0.0.0.0", 8001, 8001, "tcp"),
                p("0.0.0.0", 8000, 8000, "tcp"),
            ]),
            "0.0.0.0:8000-8001->8000-8001/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                p("", 80, 0, "tcp"),
                p("", 81, 0, "tcp"),
                p("", 83, 0, "tcp")
            ]),
            "80-81/tcp, 83/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                p("", 53, 0, "udp"),
                p("", 53, 0, "tcp"),
                p("", 54, 0, "tcp")
            ]),
            "53-54/tcp, 53/udp"
        );
    }

    #[test]
    fn differing_host_ports_are_listed_one_by_one() {
        // docker does not collapse 8000-8001:80-81 (host != container port).
        assert_eq!(
            displayable_ports(&[p("0.0.0.0", 81, 8001, "tcp"), p("0.0.0.0", 80, 8000, "tcp")]),
            "0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp"
        );
        assert_eq!(
            displayable_ports(&[
                p("0.0.0.0", 3000, 8080, "tcp"),
                p("::", 3000, 8080, "tcp"),
                p("", 9000, 0, "udp"),
            ]),
            "9000/udp, 0.0.0.0:8080->3000/tcp, [::]:8080->3000/tcp"
        );
        assert_eq!(
            displayable_ports(&[p("::", 80, 80, "tcp")]),
            "[::]:80->80/tcp"
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["net10", "net9", "net1", "a"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "net1", "net9", "net10"]);
        assert_eq!(natural_cmp("80/tcp -> x", "8080/tcp -> y"), Ordering::Less);
    }
}
