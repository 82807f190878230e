//! IP address management: subnet pools for networks and address leases for endpoints.
//!
//! Follows Docker's defaults (libnetwork ipamutils): the default `bridge` network takes
//! 172.17.0.0/16; user-defined networks take the next free /16 of 172.18.0.0/16 ..
//! 172.31.0.0/16, then /20s of 192.168.0.0/16. Inside a subnet the gateway is the first host
//! address unless given, and endpoints get addresses sequentially from the `--ip-range`
//! (or the whole subnet), never the network, broadcast or gateway address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// IPAM errors; the messages name the bad value and what would be valid.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IpamError {
    /// A subnet overlaps another network's subnet.
    #[error("invalid pool request: subnet {subnet} overlaps with network {other} ({other_subnet}); pick a subnet outside every existing network's")]
    Overlap {
        subnet: Ipv4Net,
        other: String,
        other_subnet: Ipv4Net,
    },
    /// No default pool is free.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults (172.18.0.0/16..172.31.0.0/16, 192.168.0.0/16 in /20s) to assign to the network; remove unused networks or give --subnet")]
    PoolsExhausted,
    /// The gateway is not a usable host address of the subnet.
    #[error("invalid gateway {gateway}: it must be a host address inside subnet {subnet} (not its network or broadcast address)")]
    BadGateway { gateway: Ipv4Addr, subnet: Ipv4Net },
    /// The ip-range is not inside the subnet.
    #[error("invalid ip-range {range}: it must lie inside subnet {subnet}")]
    BadRange { range: Ipv4Net, subnet: Ipv4Net },
    /// The subnet is too small to hold a gateway and an endpoint.
    #[error(
        "invalid subnet {0}: prefix length must be 30 or shorter to hold a gateway and containers"
    )]
    TooSmall(Ipv4Net),
    /// Every address of the range is leased.
    #[error(
        "no available IPv4 addresses on network {network}: all addresses in {range} are in use"
    )]
    Exhausted { network: String, range: Ipv4Net },
    /// A requested static address is not a host address of the subnet.
    #[error("invalid address {ip}: it is not a host address of the network's subnet {range}")]
    NotInRange { ip: Ipv4Addr, range: Ipv4Net },
    /// A requested static address is taken.
    #[error("address {ip} is already in use on network {network}")]
    InUse { ip: Ipv4Addr, network: String },
    /// The subnet overlaps an address block that can never be a network's (loopback,
    /// "this network", link-local, multicast, reserved).
    #[error("invalid subnet {subnet}: it overlaps {block} ({what}), which cannot hold a container network; use a private range such as 172.30.0.0/16 or fd00:1::/64")]
    Reserved {
        /// The subnet given.
        subnet: String,
        /// The reserved block it overlaps.
        block: &'static str,
        /// What the block is for.
        what: &'static str,
    },
    /// The subnet holds an address of one of the host's own interfaces.
    #[error("invalid subnet {subnet}: it holds the host's own address {addr} (interface {ifname}); pick a subnet that no host interface uses")]
    HostAddress {
        /// The subnet given.
        subnet: String,
        /// The host address inside it.
        addr: std::net::IpAddr,
        /// The interface holding that address.
        ifname: String,
    },
}

/// IPv4 blocks no network may use: RFC 1122 "this network" and loopback, RFC 3927
/// link-local, RFC 5771 multicast, RFC 1112 reserved (with the limited broadcast).
const RESERVED4: [(&str, &str); 5] = [
    ("0.0.0.0/8", "\"this network\", RFC 1122"),
    ("127.0.0.0/8", "loopback, RFC 1122"),
    ("169.254.0.0/16", "link-local, RFC 3927"),
    ("224.0.0.0/4", "multicast, RFC 5771"),
    ("240.0.0.0/4", "reserved and broadcast, RFC 1112"),
];

/// IPv6 blocks no network may use (RFC 4291): the unspecified and loopback addresses,
/// IPv4-mapped addresses, link-local unicast and multicast.
const RESERVED6: [(&str, &str); 5] = [
    ("::/128", "the unspecified address, RFC 4291"),
    ("::1/128", "loopback, RFC 4291"),
    ("::ffff:0:0/96", "IPv4-mapped addresses, RFC 4291"),
    ("fe80::/10", "link-local, RFC 4291"),
    ("ff00::/8", "multicast, RFC 4291"),
];

/// Refuses a subnet that overlaps a reserved block ([`IpamError::Reserved`]): loopback,
/// 0.0.0.0/8, link-local, multicast, 240.0.0.0/4; for IPv6 ::, ::1, ::ffff:0:0/96,
/// fe80::/10, ff00::/8.
pub fn check_reserved(subnet: ipnet::IpNet) -> Result<(), IpamError> {
    let hit = match subnet {
        ipnet::IpNet::V4(s) => RESERVED4.iter().find(|(b, _)| {
            b.parse::<Ipv4Net>()
                .map(|b| b.contains(&s.network()) || s.contains(&b.network()))
                .unwrap_or(false)
        }),
        ipnet::IpNet::V6(s) => RESERVED6.iter().find(|(b, _)| {
            b.parse::<ipnet::Ipv6Net>()
                .map(|b| b.contains(&s.network()) || s.contains(&b.network()))
                .unwrap_or(false)
        }),
    };
    match hit {
        Some((block, what)) => Err(IpamError::Reserved {
            subnet: subnet.to_string(),
            block,
            what,
        }),
        None => Ok(()),
    }
}

/// Refuses a subnet that holds one of `host` (`(interface, address)` pairs: the host's
/// own addresses, less those of tether's bridges) with [`IpamError::HostAddress`].
pub fn check_host_addresses<'a>(
    subnet: ipnet::IpNet,
    host: impl IntoIterator<Item = (&'a str, std::net::IpAddr)>,
) -> Result<(), IpamError> {
    for (ifname, addr) in host {
        if subnet.contains(&addr) {
            return Err(IpamError::HostAddress {
                subnet: subnet.to_string(),
                addr,
                ifname: ifname.to_string(),
            });
        }
    }
    Ok(())
}

/// The subnet of Docker's default `bridge` network.
pub fn default_bridge_subnet() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(172, 17, 0, 0), 16).unwrap_or_default()
}

/// Docker's default address pools for user-defined networks, in allocation order.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let b16 = (18u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let c20 = (0u8..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok());
    b16.chain(c20)
}

/// Checks `subnet` against the subnets in use (`(network name, subnet)` pairs).
///
/// Errors: [`IpamError::Overlap`] naming the first overlapping network.
pub fn check_overlap<'a>(
    subnet: Ipv4Net,
    in_use: impl IntoIterator<Item = (&'a str, Ipv4Net)>,
) -> Result<(), IpamError> {
    for (name, other) in in_use {
        if other.contains(&subnet.network()) || subnet.contains(&other.network()) {
            return Err(IpamError::Overlap {
                subnet,
                other: name.to_string(),
                other_subnet: other,
            });
        }
    }
    Ok(())
}

/// Picks the first default pool that overlaps none of `in_use` (networks' subnets and the
/// host's own routes).
pub fn pick_subnet(in_use: &[Ipv4Net]) -> Result<Ipv4Net, IpamError> {
    default_pools()
        .find(|p| {
            in_use
                .iter()
                .all(|o| !(o.contains(&p.network()) || p.contains(&o.network())))
        })
        .ok_or(IpamError::PoolsExhausted)
}

/// One network's IPv4 pool and its leases. Serialized as part of the network's state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pool {
    /// The network's subnet, e.g. 172.18.0.0/16.
    pub subnet: Ipv4Net,
    /// The gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// Where endpoint addresses come from (`--ip-range`), the subnet by default.
    pub range: Ipv4Net,
    /// Whether `range` was given by the user (shown in inspect as IPRange).
    pub range_given: bool,
    /// Leased endpoint addresses.
    pub leases: BTreeSet<Ipv4Addr>,
    /// The last address handed out: allocation continues after it (sequential, wrapping).
    pub last: Option<Ipv4Addr>,
}

impl Pool {
    /// Validates and builds a pool. `gateway` defaults to the subnet's first host address.
    ///
    /// Errors: [`IpamError::TooSmall`], [`IpamError::BadGateway`], [`IpamError::BadRange`].
    pub fn new(
        subnet: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        range: Option<Ipv4Net>,
    ) -> Result<Pool, IpamError> {
        let subnet = subnet.trunc();
        if subnet.prefix_len() > 30 {
            return Err(IpamError::TooSmall(subnet));
        }
        let first = u32::from(subnet.network()) + 1;
        let gateway = gateway.unwrap_or(Ipv4Addr::from(first));
        if !subnet.contains(&gateway)
            || gateway == subnet.network()
            || gateway == subnet.broadcast()
        {
            return Err(IpamError::BadGateway { gateway, subnet });
        }
        let range_given = range.is_some();
        let range = range.map(|r| r.trunc()).unwrap_or(subnet);
        if !subnet.contains(&range) {
            return Err(IpamError::BadRange { range, subnet });
        }
        Ok(Pool {
            subnet,
            gateway,
            range,
            range_given,
            leases: BTreeSet::new(),
            last: None,
        })
    }

    fn usable(&self, ip: Ipv4Addr) -> bool {
        self.range.contains(&ip)
            && ip != self.subnet.network()
            && ip != self.subnet.broadcast()
            && ip != self.gateway
    }

    /// Leases an address: `requested` if given (a static `--ip`), else the next free one
    /// after the last handed out, wrapping around the range.
    ///
    /// Errors: [`IpamError::NotInRange`], [`IpamError::InUse`], [`IpamError::Exhausted`].
    pub fn allocate(
        &mut self,
        network: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        if let Some(ip) = requested {
            // a static address may lie anywhere in the subnet (keeping static ones out of
            // --ip-range is the usual pattern), but not on its network/broadcast address
            if !self.subnet.contains(&ip)
                || ip == self.subnet.network()
                || ip == self.subnet.broadcast()
            {
                return Err(IpamError::NotInRange {
                    ip,
                    range: self.subnet,
                });
            }
            if ip == self.gateway || self.leases.contains(&ip) {
                return Err(IpamError::InUse {
                    ip,
                    network: network.to_string(),
                });
            }
            self.leases.insert(ip);
            return Ok(ip);
        }
        let lo = u32::from(self.range.network());
        let hi = u32::from(self.range.broadcast());
        let size = u64::from(hi - lo) + 1;
        let start = match self.last {
            Some(l) if self.range.contains(&l) => u32::from(l).wrapping_add(1),
            _ => lo,
        };
        let mut cand = if start > hi || start < lo { lo } else { start };
        for _ in 0..size {
            let ip = Ipv4Addr::from(cand);
            if self.usable(ip) && !self.leases.contains(&ip) {
                self.leases.insert(ip);
                self.last = Some(ip);
                return Ok(ip);
            }
            cand = if cand >= hi { lo } else { cand + 1 };
        }
        Err(IpamError::Exhausted {
            network: network.to_string(),
            range: self.range,
        })
    }

    /// Returns an address to the pool; releasing a free address is a no-op.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.leases.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn default_pools_follow_docker_order() {
        let v: Vec<_> = default_pools().collect();
        assert_eq!(v[0], net("172.18.0.0/16"));
        assert_eq!(v[13], net("172.31.0.0/16"));
        assert_eq!(v[14], net("192.168.0.0/20"));
        assert_eq!(v[15], net("192.168.16.0/20"));
        assert_eq!(v.len(), 30);
    }

    #[test]
    fn pick_skips_used_and_overlapping() {
        let used = vec![
            net("172.17.0.0/16"),
            net("172.18.0.0/16"),
            net("172.19.5.0/24"),
        ];
        assert_eq!(pick_subnet(&used).unwrap(), net("172.20.0.0/16"));
        let all: Vec<_> = default_pools().collect();
        assert_eq!(pick_subnet(&all), Err(IpamError::PoolsExhausted));
    }

    #[test]
    fn overlap_names_the_other_network() {
        let e = check_overlap(net("10.1.0.0/24"), [("a", net("10.0.0.0/8"))]).unwrap_err();
        assert!(
            e.to_string()
                .contains("overlaps with network a (10.0.0.0/8)"),
            "{e}"
        );
        assert!(check_overlap(net("10.1.0.0/24"), [("a", net("10.2.0.0/16"))]).is_ok());
        assert!(check_overlap(net("10.0.0.0/8"), [("b", net("10.2.0.0/16"))]).is_err());
    }

    #[test]
    fn sequential_allocation_skips_gateway_and_wraps() {
        let mut p = Pool::new(net("10.9.0.0/29"), None, None).unwrap();
        assert_eq!(p.gateway, Ipv4Addr::new(10, 9, 0, 1));
        let got: Vec<_> = (0..5).map(|_| p.allocate("n", None).unwrap()).collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 9, 0, 6));
        assert!(matches!(
            p.allocate("n", None),
            Err(IpamError::Exhausted { .. })
        ));
        p.release(Ipv4Addr::new(10, 9, 0, 3));
        assert_eq!(p.allocate("n", None).unwrap(), Ipv4Addr::new(10, 9, 0, 3));
    }

    #[test]
    fn released_address_is_not_reused_at_once() {
        let mut p = Pool::new(net("10.9.0.0/24"), None, None).unwrap();
        let a = p.allocate("n", None).unwrap();
        p.release(a);
        let b = p.allocate("n", None).unwrap();
        assert_ne!(a, b, "sequential allocation moves on, as Docker's does");
    }

    #[test]
    fn ip_range_and_gateway_validation() {
        let mut p = Pool::new(
            net("10.9.0.0/16"),
            Some(Ipv4Addr::new(10, 9, 0, 254)),
            Some(net("10.9.3.0/24")),
        )
        .unwrap();
        assert_eq!(p.allocate("n", None).unwrap(), Ipv4Addr::new(10, 9, 3, 0));
        assert!(matches!(
            Pool::new(net("10.9.0.0/16"), Some(Ipv4Addr::new(10, 8, 0, 1)), None),
            Err(IpamError::BadGateway { .. })
        ));
        assert!(matches!(
            Pool::new(net("10.9.0.0/16"), None, Some(net("10.10.0.0/24"))),
            Err(IpamError::BadRange { .. })
        ));
        assert!(matches!(
            Pool::new(net("10.9.0.0/31"), None, None),
            Err(IpamError::TooSmall(_))
        ));
    }

    #[test]
    fn reserved_blocks_are_refused() {
        for bad in [
            "127.0.0.0/8",
            "127.5.0.0/16",
            "0.0.0.0/8",
            "169.254.0.0/16",
            "224.1.0.0/16",
            "255.255.255.0/24",
            "96.0.0.0/3",
            "::1/128",
            "fe80::/64",
            "ff02::/16",
            "::ffff:10.0.0.0/104",
        ] {
            let e = check_reserved(bad.parse().unwrap()).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        for good in [
            "172.30.0.0/16",
            "10.0.0.0/8",
            "fd00:1::/64",
            "2001:db8::/64",
        ] {
            assert_eq!(check_reserved(good.parse().unwrap()), Ok(()), "{good}");
        }
    }

    #[test]
    fn host_addresses_are_refused() {
        let host = [("eth0", "10.0.2.15".parse().unwrap())];
        let e = check_host_addresses("10.0.0.0/16".parse().unwrap(), host).unwrap_err();
        assert!(e.to_string().contains("10.0.2.15 (interface eth0)"), "{e}");
        assert!(check_host_addresses("10.1.0.0/16".parse().unwrap(), host).is_ok());
    }

    #[test]
    fn static_addresses() {
        let mut p = Pool::new(net("10.9.0.0/24"), None, None).unwrap();
        assert_eq!(
            p.allocate("n", Some(Ipv4Addr::new(10, 9, 0, 50))).unwrap(),
            Ipv4Addr::new(10, 9, 0, 50)
        );
        assert!(matches!(
            p.allocate("n", Some(Ipv4Addr::new(10, 9, 0, 50))),
            Err(IpamError::InUse { .. })
        ));
        assert!(matches!(
            p.allocate("n", Some(Ipv4Addr::new(10, 9, 0, 1))),
            Err(IpamError::InUse { .. })
        ));
        assert!(matches!(
            p.allocate("n", Some(Ipv4Addr::new(10, 10, 0, 5))),
            Err(IpamError::NotInRange { .. })
        ));
    }
}

/// One network's IPv6 pool and its leases (dual-stack networks, `--ipv6`).
///
/// Addresses are handed out sequentially from the subnet's first host address after the
/// gateway (`subnet::1` by default), as Docker does; a /64 never runs out in practice.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pool6 {
    /// The network's IPv6 subnet, e.g. fd12:3456:789a:1::/64.
    pub subnet: ipnet::Ipv6Net,
    /// The gateway (the bridge's IPv6 address).
    pub gateway: std::net::Ipv6Addr,
    /// Leased endpoint addresses.
    pub leases: BTreeSet<std::net::Ipv6Addr>,
    /// The last address handed out.
    pub last: Option<std::net::Ipv6Addr>,
}

/// IPv6 IPAM errors.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Ipam6Error {
    /// The subnet is unusable.
    #[error("invalid IPv6 subnet {0}: prefix length must be between 48 and 120 (a /64 is usual)")]
    BadSubnet(ipnet::Ipv6Net),
    /// The gateway is not in the subnet.
    #[error("invalid IPv6 gateway {gateway}: it must be a host address inside subnet {subnet}")]
    BadGateway {
        gateway: std::net::Ipv6Addr,
        subnet: ipnet::Ipv6Net,
    },
    /// A subnet overlaps another network's.
    #[error("invalid pool request: IPv6 subnet {subnet} overlaps with network {other} ({other_subnet}); pick another subnet")]
    Overlap {
        subnet: ipnet::Ipv6Net,
        other: String,
        other_subnet: ipnet::Ipv6Net,
    },
    /// A requested static address is unusable.
    #[error("invalid IPv6 address {ip}: not a free host address of {subnet} on network {network}")]
    Unusable {
        ip: std::net::Ipv6Addr,
        subnet: ipnet::Ipv6Net,
        network: String,
    },
    /// No address left.
    #[error("no available IPv6 addresses on network {0}")]
    Exhausted(String),
}

/// A random unique local /64 (RFC 4193: fd00::/8 + 40-bit random global id + subnet 0).
pub fn random_ula64() -> ipnet::Ipv6Net {
    let r: [u8; 5] = rand::random();
    let addr = std::net::Ipv6Addr::new(
        0xfd00 | u16::from(r[0]),
        u16::from_be_bytes([r[1], r[2]]),
        u16::from_be_bytes([r[3], r[4]]),
        0,
        0,
        0,
        0,
        0,
    );
    ipnet::Ipv6Net::new(addr, 64).unwrap_or_default()
}

/// Checks an IPv6 subnet against those in use (`(network name, subnet)` pairs).
pub fn check_overlap6<'a>(
    subnet: ipnet::Ipv6Net,
    in_use: impl IntoIterator<Item = (&'a str, ipnet::Ipv6Net)>,
) -> Result<(), Ipam6Error> {
    for (name, other) in in_use {
        if other.contains(&subnet.network()) || subnet.contains(&other.network()) {
            return Err(Ipam6Error::Overlap {
                subnet,
                other: name.to_string(),
                other_subnet: other,
            });
        }
    }
    Ok(())
}

impl Pool6 {
    /// Validates and builds a pool; the gateway defaults to `subnet::1`.
    pub fn new(
        subnet: ipnet::Ipv6Net,
        gateway: Option<std::net::Ipv6Addr>,
    ) -> Result<Pool6, Ipam6Error> {
        let subnet = subnet.trunc();
        if !(48..=120).contains(&subnet.prefix_len()) {
            return Err(Ipam6Error::BadSubnet(subnet));
        }
        let gateway = gateway.unwrap_or(std::net::Ipv6Addr::from(u128::from(subnet.network()) + 1));
        if !subnet.contains(&gateway) || gateway == subnet.network() {
            return Err(Ipam6Error::BadGateway { gateway, subnet });
        }
        Ok(Pool6 {
            subnet,
            gateway,
            leases: BTreeSet::new(),
            last: None,
        })
    }

    /// Leases `requested` (a static `--ip6`) or the next free address.
    pub fn allocate(
        &mut self,
        network: &str,
        requested: Option<std::net::Ipv6Addr>,
    ) -> Result<std::net::Ipv6Addr, Ipam6Error> {
        if let Some(ip) = requested {
            if !self.subnet.contains(&ip)
                || ip == self.subnet.network()
                || ip == self.gateway
                || self.leases.contains(&ip)
            {
                return Err(Ipam6Error::Unusable {
                    ip,
                    subnet: self.subnet,
                    network: network.to_string(),
                });
            }
            self.leases.insert(ip);
            return Ok(ip);
        }
        let lo = u128::from(self.subnet.network()) + 1;
        let hi = u128::from(self.subnet.broadcast());
        let mut cand = self
            .last
            .map(|l| u128::from(l) + 1)
            .filter(|c| *c >= lo && *c <= hi)
            .unwrap_or(lo);
        // bounded scan: leases are few compared with the range
        for _ in 0..=(self.leases.len() + 2) {
            let ip = std::net::Ipv6Addr::from(cand);
            if ip != self.gateway && !self.leases.contains(&ip) {
                self.leases.insert(ip);
                self.last = Some(ip);
                return Ok(ip);
            }
            cand = if cand >= hi { lo } else { cand + 1 };
        }
        Err(Ipam6Error::Exhausted(network.to_string()))
    }

    /// Returns an address to the pool.
    pub fn release(&mut self, ip: std::net::Ipv6Addr) {
        self.leases.remove(&ip);
    }
}

#[cfg(test)]
mod tests6 {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn v6_allocation_and_validation() {
        let mut p = Pool6::new("fd00:1:2:3::/64".parse().unwrap(), None).unwrap();
        assert_eq!(p.gateway, "fd00:1:2:3::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            p.allocate("n", None).unwrap(),
            "fd00:1:2:3::2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            p.allocate("n", None).unwrap(),
            "fd00:1:2:3::3".parse::<Ipv6Addr>().unwrap()
        );
        let s: Ipv6Addr = "fd00:1:2:3::50".parse().unwrap();
        assert_eq!(p.allocate("n", Some(s)).unwrap(), s);
        assert!(matches!(
            p.allocate("n", Some(s)),
            Err(Ipam6Error::Unusable { .. })
        ));
        assert!(matches!(
            p.allocate("n", Some("fd00::1".parse().unwrap())),
            Err(Ipam6Error::Unusable { .. })
        ));
        assert!(matches!(
            Pool6::new("fd00::/32".parse().unwrap(), None),
            Err(Ipam6Error::BadSubnet(_))
        ));
        assert!(matches!(
            Pool6::new(
                "fd00:1::/64".parse().unwrap(),
                Some("fd00:2::1".parse().unwrap())
            ),
            Err(Ipam6Error::BadGateway { .. })
        ));
        let e = check_overlap6(
            "fd00:0:0:1::/64".parse().unwrap(),
            [("a", "fd00::/48".parse().unwrap())],
        )
        .unwrap_err();
        assert!(e.to_string().contains("network a"), "{e}");
    }

    #[test]
    fn ula_is_fd_64() {
        let n = random_ula64();
        assert_eq!(n.prefix_len(), 64);
        assert_eq!(n.network().segments()[0] & 0xff00, 0xfd00);
    }
}
