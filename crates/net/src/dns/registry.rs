//! The name registry: which container answers to which names on which network.
//!
//! Names are stored normalised (ASCII-lowercased, trailing dot removed) as byte strings, so a
//! query name is matched by lowercasing its labels and joining them with `.` (RFC 1035 2.3.3,
//! RFC 4343: comparisons are case-insensitive). Visibility is scoped: an asker sees an
//! endpoint only through a network both have an endpoint on.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// The asker id of the host's own queries (the DNS served on the networks' gateway
/// addresses): it sees every network — `NAME.NETWORK` always, a plain `NAME` where only
/// one network has it.
pub const HOST_ASKER: &str = "@host";

/// A link alias: (normalised alias, target container id).
type LinkAlias = (Box<[u8]>, String);

/// All networks with endpoints, and which networks each container is on.
#[derive(Default)]
pub(crate) struct Registry {
    /// network id -> its endpoints and indexes.
    networks: HashMap<String, Network>,
    /// container id -> ids of the networks it has an endpoint on.
    memberships: HashMap<String, Vec<String>>,
    /// container id -> its links as (normalised alias, target container id): names only
    /// that container resolves (Docker's `--link` on user-defined networks).
    links: HashMap<String, Vec<LinkAlias>>,
}

/// One network's endpoints.
#[derive(Default)]
struct Network {
    /// Lowercased network name, for `<name>.<network>` lookups (optional).
    name: Option<Vec<u8>>,
    /// container id -> endpoint.
    endpoints: HashMap<String, Endpoint>,
    /// normalised name -> container ids answering to it (insertion order).
    by_name: HashMap<Box<[u8]>, Vec<String>>,
    /// address -> container id, for PTR.
    by_v4: HashMap<Ipv4Addr, String>,
    by_v6: HashMap<Ipv6Addr, String>,
}

/// A container's endpoint on one network.
struct Endpoint {
    /// Normalised names (deduplicated).
    keys: Vec<Box<[u8]>>,
    /// PTR target: the first name as an FQDN, if it is a valid domain name.
    ptr: Option<Name>,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
}

/// Addresses found for a name; `found` with empty vectors means "known name, no address".
#[derive(Default, Debug)]
pub(crate) struct Addrs {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

/// Normalises a configured name: trims trailing dots, lowercases ASCII. Empty → None.
pub(crate) fn normalise(name: &str) -> Option<Box<[u8]>> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() {
        return None;
    }
    Some(trimmed.to_ascii_lowercase().into_bytes().into_boxed_slice())
}

/// The lookup key of a query name: labels lowercased and joined with `.` (no trailing dot).
pub(crate) fn name_key(name: &Name) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len());
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            key.push(b'.');
        }
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key
}

fn ptr_name(name: &str) -> Option<Name> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() {
        return None;
    }
    Name::from_labels(trimmed.split('.').map(str::as_bytes)).ok()
}

impl Network {
    fn remove(&mut self, container_id: &str) {
        let Some(ep) = self.endpoints.remove(container_id) else {
            return;
        };
        for key in &ep.keys {
            if let Some(ids) = self.by_name.get_mut(key) {
                ids.retain(|c| c != container_id);
                if ids.is_empty() {
                    self.by_name.remove(key);
                }
            }
        }
        if let Some(ip) = ep.ipv4 {
            if self.by_v4.get(&ip).is_some_and(|c| c == container_id) {
                self.by_v4.remove(&ip);
            }
        }
        if let Some(ip) = ep.ipv6 {
            if self.by_v6.get(&ip).is_some_and(|c| c == container_id) {
                self.by_v6.remove(&ip);
            }
        }
    }

    /// Appends the addresses of every endpoint named `key`; true if any endpoint matched.
    fn collect(&self, key: &[u8], out: &mut Addrs) -> bool {
        let Some(ids) = self.by_name.get(key) else {
            return false;
        };
        for id in ids {
            if let Some(ep) = self.endpoints.get(id) {
                out.v4.extend(ep.ipv4);
                out.v6.extend(ep.ipv6);
            }
        }
        true
    }

    fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && self.name.is_none()
    }
}

impl Registry {
    /// Adds (or replaces) `container_id`'s endpoint on `network_id`.
    pub fn add(
        &mut self,
        network_id: &str,
        container_id: &str,
        names: &[String],
        ipv4: Option<Ipv4Addr>,
        ipv6: Option<Ipv6Addr>,
    ) {
        let net = self.networks.entry(network_id.to_owned()).or_default();
        net.remove(container_id);
        let mut keys: Vec<Box<[u8]>> = Vec::with_capacity(names.len());
        for key in names.iter().filter_map(|n| normalise(n)) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in &keys {
            net.by_name
                .entry(key.clone())
                .or_default()
                .push(container_id.to_owned());
        }
        if let Some(ip) = ipv4 {
            net.by_v4.insert(ip, container_id.to_owned());
        }
        if let Some(ip) = ipv6 {
            net.by_v6.insert(ip, container_id.to_owned());
        }
        let ptr = names.iter().find_map(|n| ptr_name(n));
        net.endpoints.insert(
            container_id.to_owned(),
            Endpoint {
                keys,
                ptr,
                ipv4,
                ipv6,
            },
        );
        let nets = self.memberships.entry(container_id.to_owned()).or_default();
        if !nets.iter().any(|n| n == network_id) {
            nets.push(network_id.to_owned());
        }
    }

    /// Removes `container_id`'s endpoint on `network_id` (no-op if absent).
    pub fn remove(&mut self, network_id: &str, container_id: &str) {
        if let Some(net) = self.networks.get_mut(network_id) {
            net.remove(container_id);
            if net.is_empty() {
                self.networks.remove(network_id);
            }
        }
        if let Some(nets) = self.memberships.get_mut(container_id) {
            nets.retain(|n| n != network_id);
            if nets.is_empty() {
                self.memberships.remove(container_id);
            }
        }
    }

    /// Sets the (user-visible) name of a network, enabling `<name>.<network-name>` lookups.
    pub fn set_network_name(&mut self, network_id: &str, name: &str) {
        self.networks.entry(network_id.to_owned()).or_default().name =
            normalise(name).map(Into::into);
    }

    /// Forgets a network and all endpoints on it.
    pub fn remove_network(&mut self, network_id: &str) {
        let Some(net) = self.networks.remove(network_id) else {
            return;
        };
        for cid in net.endpoints.keys() {
            if let Some(nets) = self.memberships.get_mut(cid) {
                nets.retain(|n| n != network_id);
                if nets.is_empty() {
                    self.memberships.remove(cid);
                }
            }
        }
    }

    /// Whether `asker` has link aliases.
    pub fn has_links(&self, asker: &str) -> bool {
        self.links.contains_key(asker)
    }

    /// Sets the link aliases `asker` resolves: `(alias, target container id)`; an empty list
    /// removes them.
    pub fn set_links(&mut self, asker: &str, links: &[(String, String)]) {
        let l: Vec<LinkAlias> = links
            .iter()
            .filter_map(|(a, t)| normalise(a).map(|k| (k, t.clone())))
            .collect();
        if l.is_empty() {
            self.links.remove(asker);
        } else {
            self.links.insert(asker.to_owned(), l);
        }
    }

    /// Addresses of `key` as seen by `asker`; None if no endpoint visible to the asker has
    /// that name. A link alias of the asker's comes first: the target's addresses on the
    /// networks they share. Tries the plain name on every shared network first, then — Docker's
    /// `<name>.<network>` form — each split `prefix.suffix` where `suffix` is the id or name
    /// of one of the asker's networks. Addresses are sorted and deduplicated.
    pub fn lookup(&self, asker: &str, key: &[u8]) -> Option<Addrs> {
        let nets = self.scope(asker)?;
        let nets = nets.as_ref();
        let mut out = Addrs::default();
        let targets = self.links.get(asker).into_iter().flatten();
        for (_, target) in targets.filter(|(k, _)| k.as_ref() == key) {
            for net in nets.iter().filter_map(|nid| self.networks.get(nid)) {
                if let Some(ep) = net.endpoints.get(target) {
                    out.v4.extend(ep.ipv4);
                    out.v6.extend(ep.ipv6);
                }
            }
        }
        let mut found = !out.v4.is_empty() || !out.v6.is_empty();
        let mut matched = 0;
        for nid in nets {
            if let Some(net) = self.networks.get(nid) {
                if net.collect(key, &mut out) {
                    found = true;
                    matched += 1;
                }
            }
        }
        if asker == HOST_ASKER && matched > 1 {
            // the host sees every network: a plain name is answered only where it is
            // unique, NAME.NETWORK always
            found = false;
            out = Addrs::default();
        }
        if !found {
            for (i, _) in key.iter().enumerate().filter(|(_, b)| **b == b'.') {
                let (prefix, suffix) = (&key[..i], &key[i + 1..]);
                for nid in nets {
                    let Some(net) = self.networks.get(nid) else {
                        continue;
                    };
                    let matches = nid.as_bytes().eq_ignore_ascii_case(suffix)
                        || net.name.as_deref() == Some(suffix);
                    if matches {
                        found |= net.collect(prefix, &mut out);
                    }
                }
                if found {
                    break;
                }
            }
        }
        if !found {
            return None;
        }
        out.v4.sort_unstable();
        out.v4.dedup();
        out.v6.sort_unstable();
        out.v6.dedup();
        Some(out)
    }

    /// The ids of the networks `asker` sees: its own, or every one for [`HOST_ASKER`].
    fn scope(&self, asker: &str) -> Option<std::borrow::Cow<'_, [String]>> {
        if asker == HOST_ASKER {
            Some(std::borrow::Cow::Owned(
                self.networks.keys().cloned().collect(),
            ))
        } else {
            self.memberships
                .get(asker)
                .map(|v| std::borrow::Cow::Borrowed(v.as_slice()))
        }
    }

    /// PTR target for `ip` as seen by `asker`: the first name of the endpoint holding that
    /// address on a network shared with the asker.
    pub fn ptr(&self, asker: &str, ip: IpAddr) -> Option<Name> {
        let nets = self.scope(asker)?;
        let nets = nets.as_ref();
        nets.iter().find_map(|nid| {
            let net = self.networks.get(nid)?;
            let cid = match ip {
                IpAddr::V4(v4) => net.by_v4.get(&v4)?,
                IpAddr::V6(v6) => net.by_v6.get(&v6)?,
            };
            net.endpoints.get(cid)?.ptr.clone()
        })
    }
}

/// Parses a full reverse-lookup name (RFC 1035 3.5 `d.c.b.a.in-addr.arpa`, RFC 3596 2.5
/// 32 nibbles `.ip6.arpa`) into the address; partial (zone) names give None.
pub(crate) fn parse_reverse(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let n = labels.len();
    if n < 2 || !labels[n - 1].eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    if n == 6 && labels[4].eq_ignore_ascii_case(b"in-addr") {
        let mut octets = [0u8; 4];
        for (i, label) in labels[..4].iter().enumerate() {
            if label.is_empty() || label.len() > 3 || !label.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = label
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
            octets[3 - i] = u8::try_from(v).ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if n == 34 && labels[32].eq_ignore_ascii_case(b"ip6") {
        let mut bits: u128 = 0;
        for (i, label) in labels[..32].iter().enumerate() {
            let [c] = label else { return None };
            let nibble = char::from(*c).to_digit(16)?;
            bits |= u128::from(nibble) << (4 * i);
        }
        return Some(IpAddr::V6(Ipv6Addr::from(bits)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn dns_reverse_names() {
        let n = Name::from_str("4.3.2.10.in-addr.arpa.").unwrap();
        assert_eq!(parse_reverse(&n), Some("10.2.3.4".parse().unwrap()));
        let n = Name::from_str("4.3.2.10.IN-ADDR.ARPA").unwrap();
        assert_eq!(parse_reverse(&n), Some("10.2.3.4".parse().unwrap()));
        let n = Name::from_str("300.3.2.10.in-addr.arpa.").unwrap();
        assert_eq!(parse_reverse(&n), None);
        let n = Name::from_str("3.2.10.in-addr.arpa.").unwrap();
        assert_eq!(parse_reverse(&n), None);
        let v6: Ipv6Addr = "fd00::1:2".parse().unwrap();
        let mut labels: Vec<String> = format!("{:032x}", u128::from(v6))
            .chars()
            .rev()
            .map(|c| c.to_string())
            .collect();
        labels.push("ip6".into());
        labels.push("arpa".into());
        let n = Name::from_str(&(labels.join(".") + ".")).unwrap();
        assert_eq!(parse_reverse(&n), Some(IpAddr::V6(v6)));
    }

    #[test]
    fn dns_registry_scoping_and_removal() {
        let mut r = Registry::default();
        r.add(
            "n1",
            "a",
            &["web".into(), "Alias.".into()],
            Some(Ipv4Addr::new(10, 0, 0, 2)),
            None,
        );
        r.add(
            "n2",
            "b",
            &["db".into()],
            Some(Ipv4Addr::new(10, 1, 0, 2)),
            None,
        );
        r.add(
            "n1",
            "c",
            &["alias".into()],
            Some(Ipv4Addr::new(10, 0, 0, 3)),
            None,
        );
        assert_eq!(r.lookup("a", b"web").unwrap().v4.len(), 1);
        assert_eq!(r.lookup("a", b"alias").unwrap().v4.len(), 2);
        assert!(r.lookup("a", b"db").is_none());
        r.set_network_name("n1", "Front");
        assert_eq!(r.lookup("c", b"web.front").unwrap().v4.len(), 1);
        assert_eq!(r.lookup("c", b"web.n1").unwrap().v4.len(), 1);
        r.remove("n1", "c");
        assert_eq!(r.lookup("a", b"alias").unwrap().v4.len(), 1);
        assert!(r.lookup("c", b"web").is_none());
        r.remove_network("n1");
        assert!(r.lookup("a", b"web").is_none());
    }
}
