//! The IPAM driver API: how the engine asks for an endpoint's addresses, whoever keeps the
//! network's pool.
//!
//! Follows libnetwork's `ipamapi.Ipam` (`RequestAddress(poolID, ip, opts)`,
//! `ReleaseAddress(poolID, ip)`) and Docker's IPAM docs (`docker network create --ipam-driver`,
//! `--subnet`, `--ip-range`, `--gateway`; `docker run --ip/--ip6`), narrowed to what tether
//! needs: a network's pools are created by the engine with the network (`network create`
//! validates subnet, gateway and range through [`Pool::new`]/[`Pool6::new`] and records them
//! in the network), so this API is about the endpoint side only. One call leases both
//! families of an endpoint ([`Ipam::request_address`]) and undoes its own IPv4 lease when
//! the IPv6 one fails.
//!
//! Where the leases live depends on the network's [`Scope`]:
//!
//! * [`Scope::Local`] networks keep their leases in the engine's state (the network's
//!   [`Pool`]/[`Pool6`], rebuilt from the containers' records at daemon start):
//!   [`LocalIpam`].
//! * [`Scope::Global`] networks (overlay) keep their leases, IPv4 and IPv6, in the
//!   cluster store, taken by compare-and-swap so that hosts never hand out one address
//!   twice, following the rules of the network's [`Pool`]/[`Pool6`]. That
//!   implementation lives with the store client (`tether-engine`'s `cluster.rs`), so
//!   this crate does not depend on etcd.
//!
//! The engine picks one implementation per network from an [`Ipams`] registry keyed by
//! scope, as it picks a [`crate::driver::NetworkDriver`] by the network's driver name.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::driver::Scope;
use crate::ipam::{Ipam6Error, IpamError, Pool, Pool6};

/// How the engine should answer a backend's failure (an HTTP status class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The request's fault (400): a value the pool refuses, a bad store option.
    Input,
    /// A conflict with another object (409).
    Conflict,
    /// The host's or the store's fault (500): unreachable store, corrupt record.
    Host,
}

/// IPAM errors of the endpoint side. Messages name the bad value and the network; each
/// keeps its source.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// The IPv4 pool refused the request: a `--ip` outside the subnet
    /// ([`IpamError::NotInRange`]) or taken ([`IpamError::InUse`]), or no address left
    /// ([`IpamError::Exhausted`]).
    #[error(transparent)]
    Pool(#[from] IpamError),
    /// The IPv6 pool refused the request (a `--ip6` that is not a free host address of the
    /// subnet, or no address left).
    #[error(transparent)]
    Pool6(#[from] Ipam6Error),
    /// `--ip` was given for a network without IPv4.
    #[error("--ip given but network {network} has no IPv4 (it was created with --ipv4=false)")]
    NoIpv4 {
        /// The network's name.
        network: String,
    },
    /// `--ip6` was given for a network without IPv6.
    #[error("--ip6 given but network {network} has no IPv6 (create it with --ipv6)")]
    NoIpv6 {
        /// The network's name.
        network: String,
    },
    /// The network's record has no IPv4 pool, which its IPAM needs (a global network's
    /// record is corrupt or foreign).
    #[error("network {network} has no IPv4 pool")]
    NoPool {
        /// The network's name.
        network: String,
    },
    /// The backend keeping the pool failed (the cluster store for global networks). The
    /// message is the source's.
    #[error("{source}")]
    Backend {
        /// How to answer it.
        kind: FailureKind,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AddressError {
    /// How the engine should answer the error: every pool refusal and missing family is
    /// the request's fault; a missing pool is the host's; a backend's error says itself.
    pub fn kind(&self) -> FailureKind {
        match self {
            AddressError::Pool(_)
            | AddressError::Pool6(_)
            | AddressError::NoIpv4 { .. }
            | AddressError::NoIpv6 { .. } => FailureKind::Input,
            AddressError::NoPool { .. } => FailureKind::Host,
            AddressError::Backend { kind, .. } => *kind,
        }
    }
}

/// A network's pools as its IPAM sees them: borrowed from the engine's record of the
/// network for the length of one call (libnetwork's `poolID`). For a global network the
/// IPv4 pool gives the rules (subnet, gateway, range) and its leases are this host's copy.
pub struct NetworkPools<'a> {
    /// The network's id (the cluster store's key).
    pub network_id: &'a str,
    /// The network's name, for messages.
    pub network: &'a str,
    /// The IPv4 pool; None for a network created with `--ipv4=false` (or `host`/`null`).
    pub v4: Option<&'a mut Pool>,
    /// The IPv6 pool of a dual-stack network (`--ipv6`).
    pub v6: Option<&'a mut Pool6>,
}

/// What an endpoint asks for (libnetwork's `RequestAddress` for each family).
#[derive(Clone, Copy, Debug)]
pub struct AddressRequest<'a> {
    /// The endpoint's id (the owner of the lease in the cluster store).
    pub endpoint_id: &'a str,
    /// A specific IPv4 address (`--ip`, `IPAMConfig.IPv4Address`), else the next free one.
    pub ipv4: Option<Ipv4Addr>,
    /// A specific IPv6 address (`--ip6`, `IPAMConfig.IPv6Address`), else the next free one.
    pub ipv6: Option<Ipv6Addr>,
}

/// The addresses an endpoint holds on one network, one per family the network has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// The IPv4 address, if the network has IPv4.
    pub ipv4: Option<Ipv4Addr>,
    /// The IPv6 address, if the network has IPv6.
    pub ipv6: Option<Ipv6Addr>,
}

/// An IPAM driver (libnetwork's `ipamapi.Ipam`, endpoint side): leases and releases
/// endpoints' addresses on the networks of one [`Scope`].
///
/// Implementations: [`LocalIpam`] (pools in the engine's state) and the cluster store's
/// (`tether-engine`'s `cluster::GlobalIpam`). The engine holds its state's lock across a
/// call, so a local lease is atomic; a global one is atomic through the store.
#[async_trait::async_trait]
pub trait Ipam: Send + Sync {
    /// The scope of the networks whose addresses this IPAM keeps.
    fn scope(&self) -> Scope;

    /// Leases the endpoint's addresses: for each family the network has, the requested
    /// address if given, else the next free one (see [`Pool::allocate`]). All or nothing:
    /// when the IPv6 lease fails the IPv4 one is released before returning.
    ///
    /// Errors: [`AddressError::Pool`]/[`AddressError::Pool6`] naming the refused address
    /// (outside the subnet, taken) or the exhausted range; [`AddressError::NoIpv4`] /
    /// [`AddressError::NoIpv6`] for an address asked of a family the network lacks;
    /// [`AddressError::Backend`] when the pool's store fails.
    async fn request_address(
        &self,
        pools: &mut NetworkPools<'_>,
        req: &AddressRequest<'_>,
    ) -> Result<Lease, AddressError>;

    /// Returns an endpoint's addresses to the pools. Never fails: releasing a free address
    /// is a no-op, and a backend that cannot be reached logs it (its lease expires with
    /// the host's session).
    async fn release_address(&self, pools: &mut NetworkPools<'_>, lease: &Lease);

    /// Daemon restart: an endpoint that kept running holds its addresses again (the local
    /// pools mark them leased; the cluster store gets them back under this host's new
    /// session). Best effort, like [`Ipam::release_address`].
    async fn restore_address(&self, pools: &mut NetworkPools<'_>, endpoint_id: &str, lease: &Lease);
}

/// Leases an IPv6 address from the network's local [`Pool6`], if it has one.
///
/// Errors: [`AddressError::Pool6`], [`AddressError::NoIpv6`] when `want` is given for a
/// network without IPv6.
fn request_v6(
    pools: &mut NetworkPools<'_>,
    want: Option<Ipv6Addr>,
) -> Result<Option<Ipv6Addr>, AddressError> {
    match pools.v6.as_deref_mut() {
        Some(p6) => Ok(Some(p6.allocate(pools.network, want)?)),
        None if want.is_some() => Err(AddressError::NoIpv6 {
            network: pools.network.to_string(),
        }),
        None => Ok(None),
    }
}

/// The IPAM of local-scope networks: leases live in the network's pools in the engine's
/// state (Docker's `default` IPAM driver with local address spaces).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalIpam;

#[async_trait::async_trait]
impl Ipam for LocalIpam {
    fn scope(&self) -> Scope {
        Scope::Local
    }

    async fn request_address(
        &self,
        pools: &mut NetworkPools<'_>,
        req: &AddressRequest<'_>,
    ) -> Result<Lease, AddressError> {
        let ipv4 = match pools.v4.as_deref_mut() {
            Some(p) => Some(p.allocate(pools.network, req.ipv4)?),
            None if req.ipv4.is_some() => {
                return Err(AddressError::NoIpv4 {
                    network: pools.network.to_string(),
                })
            }
            None => None,
        };
        match request_v6(pools, req.ipv6) {
            Ok(ipv6) => Ok(Lease { ipv4, ipv6 }),
            Err(e) => {
                if let (Some(p), Some(ip)) = (pools.v4.as_deref_mut(), ipv4) {
                    p.release(ip);
                }
                Err(e)
            }
        }
    }

    async fn release_address(&self, pools: &mut NetworkPools<'_>, lease: &Lease) {
        if let (Some(p), Some(ip)) = (pools.v4.as_deref_mut(), lease.ipv4) {
            p.release(ip);
        }
        if let (Some(p), Some(ip)) = (pools.v6.as_deref_mut(), lease.ipv6) {
            p.release(ip);
        }
    }

    async fn restore_address(
        &self,
        pools: &mut NetworkPools<'_>,
        _endpoint_id: &str,
        lease: &Lease,
    ) {
        if let (Some(p), Some(ip)) = (pools.v4.as_deref_mut(), lease.ipv4) {
            p.leases.insert(ip);
        }
        if let (Some(p), Some(ip)) = (pools.v6.as_deref_mut(), lease.ipv6) {
            p.leases.insert(ip);
        }
    }
}

/// The IPAM drivers the engine knows, one per [`Scope`].
#[derive(Clone, Default)]
pub struct Ipams {
    map: BTreeMap<Scope, Arc<dyn Ipam>>,
}

impl Ipams {
    /// An empty registry.
    pub fn new() -> Ipams {
        Ipams::default()
    }

    /// Adds (or replaces) the IPAM of its [`Ipam::scope`].
    pub fn register(&mut self, ipam: Arc<dyn Ipam>) {
        self.map.insert(ipam.scope(), ipam);
    }

    /// The IPAM of `scope`; None when none is registered (global networks on a daemon
    /// without a cluster store).
    pub fn get(&self, scope: Scope) -> Option<&Arc<dyn Ipam>> {
        self.map.get(&scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::{Ipv4Net, Ipv6Net};

    fn pool(s: &str) -> Pool {
        let net: Ipv4Net = s.parse().unwrap();
        Pool::new(net, None, None).unwrap()
    }

    fn pool6(s: &str) -> Pool6 {
        let net: Ipv6Net = s.parse().unwrap();
        Pool6::new(net, None).unwrap()
    }

    fn pools<'a>(v4: Option<&'a mut Pool>, v6: Option<&'a mut Pool6>) -> NetworkPools<'a> {
        NetworkPools {
            network_id: "0123",
            network: "n1",
            v4,
            v6,
        }
    }

    fn req(ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> AddressRequest<'static> {
        AddressRequest {
            endpoint_id: "ep",
            ipv4,
            ipv6,
        }
    }

    #[tokio::test]
    async fn local_allocates_sequentially_and_releases() {
        let mut p = pool("10.9.0.0/29");
        let ipam = LocalIpam;
        let a = ipam
            .request_address(&mut pools(Some(&mut p), None), &req(None, None))
            .await
            .unwrap();
        assert_eq!(a.ipv4, Some(Ipv4Addr::new(10, 9, 0, 2)));
        assert_eq!(a.ipv6, None);
        let b = ipam
            .request_address(&mut pools(Some(&mut p), None), &req(None, None))
            .await
            .unwrap();
        assert_eq!(b.ipv4, Some(Ipv4Addr::new(10, 9, 0, 3)));
        ipam.release_address(&mut pools(Some(&mut p), None), &a)
            .await;
        assert!(!p.leases.contains(&Ipv4Addr::new(10, 9, 0, 2)));
        assert!(p.leases.contains(&Ipv4Addr::new(10, 9, 0, 3)));
        // releasing twice is a no-op
        ipam.release_address(&mut pools(Some(&mut p), None), &a)
            .await;
        assert_eq!(p.leases.len(), 1);
    }

    #[tokio::test]
    async fn local_specific_address_and_its_errors() {
        let mut p = pool("10.9.0.0/24");
        let ipam = LocalIpam;
        let want = Ipv4Addr::new(10, 9, 0, 50);
        let got = ipam
            .request_address(&mut pools(Some(&mut p), None), &req(Some(want), None))
            .await
            .unwrap();
        assert_eq!(got.ipv4, Some(want));
        let taken = ipam
            .request_address(&mut pools(Some(&mut p), None), &req(Some(want), None))
            .await
            .unwrap_err();
        assert_eq!(
            taken.to_string(),
            "address 10.9.0.50 is already in use on network n1"
        );
        assert_eq!(taken.kind(), FailureKind::Input);
        let outside = ipam
            .request_address(
                &mut pools(Some(&mut p), None),
                &req(Some(Ipv4Addr::new(10, 10, 0, 5)), None),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(outside, AddressError::Pool(IpamError::NotInRange { .. })),
            "{outside}"
        );
        assert!(outside.to_string().contains("10.10.0.5"), "{outside}");
        // --ip on a network without IPv4
        let mut p6 = pool6("fd00:1::/64");
        let e = ipam
            .request_address(&mut pools(None, Some(&mut p6)), &req(Some(want), None))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--ip given but network n1 has no IPv4 (it was created with --ipv4=false)"
        );
        assert!(p6.leases.is_empty());
    }

    #[tokio::test]
    async fn local_exhaustion_names_the_range() {
        let mut p = pool("10.9.0.0/30");
        let ipam = LocalIpam;
        let one = ipam
            .request_address(&mut pools(Some(&mut p), None), &req(None, None))
            .await
            .unwrap();
        assert_eq!(one.ipv4, Some(Ipv4Addr::new(10, 9, 0, 2)));
        let e = ipam
            .request_address(&mut pools(Some(&mut p), None), &req(None, None))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no available IPv4 addresses on network n1: all addresses in 10.9.0.0/30 are in use"
        );
        ipam.release_address(&mut pools(Some(&mut p), None), &one)
            .await;
        assert!(ipam
            .request_address(&mut pools(Some(&mut p), None), &req(None, None))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn local_dual_stack_is_all_or_nothing() {
        let mut p = pool("10.9.0.0/24");
        let mut p6 = pool6("fd00:1::/64");
        let ipam = LocalIpam;
        let l = ipam
            .request_address(&mut pools(Some(&mut p), Some(&mut p6)), &req(None, None))
            .await
            .unwrap();
        assert_eq!(l.ipv6, Some("fd00:1::2".parse().unwrap()));
        // a refused --ip6 releases the IPv4 address taken for the same request
        let bad6: Ipv6Addr = "fd00:2::5".parse().unwrap();
        let e = ipam
            .request_address(
                &mut pools(Some(&mut p), Some(&mut p6)),
                &req(None, Some(bad6)),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, AddressError::Pool6(_)), "{e}");
        assert_eq!(p.leases.len(), 1);
        // --ip6 on a network without IPv6: same
        let e = ipam
            .request_address(&mut pools(Some(&mut p), None), &req(None, Some(bad6)))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--ip6 given but network n1 has no IPv6 (create it with --ipv6)"
        );
        assert_eq!(p.leases.len(), 1);
        ipam.release_address(&mut pools(Some(&mut p), Some(&mut p6)), &l)
            .await;
        assert!(p.leases.is_empty() && p6.leases.is_empty());
        // restore marks the addresses leased again
        ipam.restore_address(&mut pools(Some(&mut p), Some(&mut p6)), "ep", &l)
            .await;
        assert!(p.leases.contains(&Ipv4Addr::new(10, 9, 0, 2)));
        assert_eq!(p6.leases.len(), 1);
    }

    #[test]
    fn registry_is_keyed_by_scope() {
        let mut r = Ipams::new();
        assert!(r.get(Scope::Local).is_none());
        r.register(Arc::new(LocalIpam));
        assert_eq!(r.get(Scope::Local).map(|i| i.scope()), Some(Scope::Local));
        assert!(r.get(Scope::Global).is_none());
    }
}
