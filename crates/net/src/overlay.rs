//! The overlay driver: global-scope networks that span the hosts of a cluster, over the
//! kernel's VXLAN (RFC 7348; the kernel's Documentation/networking/vxlan.rst).
//!
//! Per network and per host that has endpoints on it: a `vxlan` device (`ov-<id12>`: the
//! network's VNI, UDP port 4789 unless given, source address the host's advertised
//! address, `nolearning`, `proxy`, `udpcsum`, MTU 1450 by default, the MAC pinned in the
//! network's record; no address: the host does not route into the overlay), made when the
//! first endpoint joins and deleted when the last one leaves.
//!
//! An endpoint is a macvlan device in `bridge` mode on the vxlan device, made directly in
//! the container's sandbox (`ethN`, the endpoint's MAC). There is no bridge and no veth:
//! frames between two endpoints of one host are switched by the macvlan driver, and a
//! frame for another host goes straight from the endpoint into the vxlan device, with no
//! second namespace crossing (a veth) and no bridge hop on either side; that is the
//! difference in TCP throughput across the overlay measured in docs/benchmarks.md (issue
//! 14). The endpoint's host-side name in the engine's records (`host_ifname`) names no
//! device here: the driver keys its endpoints by it.
//!
//! Endpoints on other hosts are programmed statically, as the cluster store reports them
//! ([`OverlayDriver::add_remote`] / [`OverlayDriver::remove_remote`]): a forwarding entry
//! `MAC dst VTEP self permanent` on the vxlan device and a permanent neighbour entry
//! per address (IPv4 and, on `--ipv6` overlays, IPv6) `IP lladdr MAC`, which the device's
//! `proxy` flag uses to answer ARP and IPv6 neighbour solicitations itself. There is
//! no all-zero (default) forwarding entry: nothing is flooded or multicast, and frames for
//! unknown MACs are dropped by the vxlan device.
//!
//! `--attachable` is stored with the network and shown by `network inspect` on every host,
//! but not enforced. In Docker it only means something in Swarm mode, where it lets
//! standalone containers (not service tasks) join an overlay, and a non-attachable overlay
//! refuses `docker run --network`. tether has no services: every container is standalone,
//! as in Docker's classic overlay with an external key-value store, which had no such
//! check. Enforcing it would make the flag mandatory for any use of an overlay.
//!
//! The model is Docker's classic overlay driver (libnetwork `drivers/overlay`: a vxlan
//! device per network, peers programmed with `peerAdd` from the store), with the vxlan
//! device in the host's namespace instead of a per-network sandbox, and macvlan endpoints
//! instead of a bridge with veths.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::driver::{DriverError, EndpointSpec, NetworkDriver, NetworkSpec, Scope};
use crate::link::{self, LinkError, Netlink};

/// The overlay driver's options.
pub mod opt {
    /// The network's VXLAN id (VNI), 1 to 16777215 (Docker's option name; one id).
    pub const VNI: &str = "com.docker.network.driver.overlay.vxlanid_list";
    /// The UDP port of the network's VXLAN traffic (default [`super::DEFAULT_PORT`]).
    pub const PORT: &str = "com.docker.network.driver.overlay.vxlan_port";
    /// MTU of the network's devices and endpoints, in bytes (default
    /// [`super::DEFAULT_MTU`]).
    pub const MTU: &str = crate::bridge::opt::MTU;
}

/// The IANA VXLAN port (RFC 7348 5).
pub const DEFAULT_PORT: u16 = 4789;
/// Default MTU of overlay networks: 1500 less VXLAN's 50 bytes of encapsulation.
pub const DEFAULT_MTU: u32 = 1450;
/// The largest VNI (24 bits, RFC 7348 5).
pub const MAX_VNI: u32 = (1 << 24) - 1;
/// The first VNI tether hands out by itself (Docker's overlay starts at 4096 too).
pub const FIRST_VNI: u32 = 4096;

/// Checks the overlay options: the VNI (1 to [`MAX_VNI`]), the port (1 to 65535) and the
/// MTU ([`link::MTU_RANGE`]).
///
/// Errors: [`DriverError::InvalidOption`] naming the option, the value and what is valid.
pub fn validate_options(options: &HashMap<String, String>) -> Result<(), DriverError> {
    let bad = |m: String| Err(DriverError::InvalidOption(m));
    if let Some(v) = options.get(opt::VNI).filter(|v| !v.is_empty()) {
        if !v.parse::<u32>().is_ok_and(|n| (1..=MAX_VNI).contains(&n)) {
            return bad(format!(
                "invalid VXLAN id {v:?} in option {}: expected one number from 1 to {MAX_VNI}",
                opt::VNI
            ));
        }
    }
    if let Some(v) = options.get(opt::PORT).filter(|v| !v.is_empty()) {
        if !v.parse::<u16>().is_ok_and(|p| p > 0) {
            return bad(format!(
                "invalid VXLAN port {v:?} in option {}: expected a UDP port from 1 to 65535",
                opt::PORT
            ));
        }
    }
    if let Some(v) = options.get(opt::MTU).filter(|v| !v.is_empty()) {
        if !v.parse::<u32>().is_ok_and(|m| link::MTU_RANGE.contains(&m)) {
            return bad(format!(
                "invalid MTU {v:?} in option {}: expected a number from {} to {}",
                opt::MTU,
                link::MTU_RANGE.start(),
                link::MTU_RANGE.end()
            ));
        }
    }
    Ok(())
}

/// An overlay network as the driver sees it.
#[derive(Clone, Debug)]
pub struct OverlayNetwork {
    /// The vxlan device's name (`ov-<id12>`).
    pub vxlan: String,
    /// The vxlan device's pinned MAC (the record's `bridge_mac`).
    pub mac: [u8; 6],
    /// The VNI.
    pub vni: u32,
    /// The UDP port.
    pub port: u16,
    /// The MTU of the devices and endpoints, bytes.
    pub mtu: u32,
    /// Subnet and (reserved) gateway.
    pub v4: (Ipv4Net, Ipv4Addr),
    /// IPv6 subnet and (reserved) gateway, with `--ipv6`.
    pub v6: Option<(Ipv6Net, Ipv6Addr)>,
}

impl OverlayNetwork {
    /// The typed view of an overlay network record.
    ///
    /// Errors: [`DriverError::Incomplete`] without an IPv4 pool, a device MAC or a VNI.
    pub fn from_spec(n: &NetworkSpec) -> Result<OverlayNetwork, DriverError> {
        let missing = |what| DriverError::Incomplete {
            network: n.name.clone(),
            what,
        };
        let short = n.id.get(..12).ok_or_else(|| missing("no network id"))?;
        let o = &n.options;
        Ok(OverlayNetwork {
            vxlan: format!("ov-{short}"),
            mac: n.mac.ok_or_else(|| missing("no device MAC address"))?,
            vni: o
                .get(opt::VNI)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| missing("no VXLAN id"))?,
            port: o
                .get(opt::PORT)
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_PORT),
            mtu: o
                .get(opt::MTU)
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_MTU),
            v4: n
                .v4
                .ok_or_else(|| missing("an overlay network needs an IPv4 pool"))?,
            v6: n.v6,
        })
    }
}

/// An endpoint on another host, as the store reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its IPv4 address.
    pub ip: Option<Ipv4Addr>,
    /// Its IPv6 address.
    pub ip6: Option<Ipv6Addr>,
    /// Its host's VTEP address.
    pub vtep: Ipv4Addr,
}

/// An endpoint of this host: where its macvlan is.
#[derive(Clone, Debug)]
struct Local {
    /// The sandbox (a network-namespace file).
    sandbox: PathBuf,
    /// The macvlan's name in it.
    ifname: String,
}

#[derive(Default)]
struct NetState {
    /// The network, once one endpoint joined here.
    net: Option<OverlayNetwork>,
    /// The vxlan device's index while it exists.
    vxlan: Option<u32>,
    /// This host's endpoints, by their host-side name in the engine's records.
    local: HashMap<String, Local>,
    /// Endpoints on other hosts, by endpoint id.
    remotes: HashMap<String, Remote>,
}

/// The overlay driver, working in the daemon's network namespace.
pub struct OverlayDriver {
    nl: Netlink,
    local: Ipv4Addr,
    nets: tokio::sync::Mutex<HashMap<String, NetState>>,
}

impl OverlayDriver {
    /// A driver whose tunnels start at `local` (the host's advertised address, which must
    /// be one of its own). Must be called inside a tokio runtime.
    ///
    /// Errors: [`DriverError::Link`] when the netlink socket cannot be opened.
    pub fn new(local: Ipv4Addr) -> Result<OverlayDriver, DriverError> {
        Ok(OverlayDriver {
            nl: Netlink::open()?,
            local,
            nets: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The host's tunnel source address.
    pub fn local(&self) -> Ipv4Addr {
        self.local
    }

    /// Makes the vxlan device of `n` and programs every known remote endpoint; undoes its
    /// work on failure.
    async fn up(&self, n: &OverlayNetwork, st: &mut NetState) -> Result<(), DriverError> {
        let vx = self
            .nl
            .create_vxlan(&n.vxlan, n.vni, self.local, n.port, n.mtu, n.mac)
            .await?;
        for r in st.remotes.values() {
            if let Err(e) = self.program(vx, r).await {
                let _ = self.nl.delete(&n.vxlan).await;
                return Err(e.into());
            }
        }
        st.vxlan = Some(vx);
        tracing::debug!(vxlan = %n.vxlan, vni = n.vni, remotes = st.remotes.len(), "overlay network up on this host");
        Ok(())
    }

    /// Deletes the vxlan device of `n` (the kernel deletes the macvlans on it with it).
    async fn down(&self, n: &OverlayNetwork, st: &mut NetState) -> Result<(), DriverError> {
        st.vxlan = None;
        self.nl.delete(&n.vxlan).await?;
        Ok(())
    }

    /// The remote endpoint's addresses, both families.
    fn ips(r: &Remote) -> impl Iterator<Item = IpAddr> {
        r.ip.map(IpAddr::V4)
            .into_iter()
            .chain(r.ip6.map(IpAddr::V6))
    }

    /// Adds the forwarding entry of `r` and a neighbour entry per address (ARP and IPv6
    /// neighbour solicitations for them are answered by the vxlan device, `proxy`); undoes
    /// what it added on failure.
    async fn program(&self, vx: u32, r: &Remote) -> Result<(), LinkError> {
        self.nl.fdb_add(vx, r.mac, r.vtep).await?;
        for ip in Self::ips(r) {
            if let Err(e) = self.nl.neigh_add(vx, ip, r.mac).await {
                let _ = self.unprogram(vx, r).await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Removes what [`Self::program`] added (entries already gone are fine); the first
    /// error, after trying every entry.
    async fn unprogram(&self, vx: u32, r: &Remote) -> Result<(), LinkError> {
        let mut first = Ok(());
        for ip in Self::ips(r) {
            if let Err(e) = self.nl.neigh_del(vx, ip).await {
                first = first.and(Err(e));
            }
        }
        if let Err(e) = self.nl.fdb_del(vx, r.mac, r.vtep).await {
            first = first.and(Err(e));
        }
        first
    }

    /// Learns an endpoint of network `network_id` on another host and, when the network's
    /// devices exist here, programs its forwarding and neighbour entries. A change of an
    /// endpoint already known replaces its entries.
    pub async fn add_remote(
        &self,
        network_id: &str,
        endpoint_id: &str,
        r: Remote,
    ) -> Result<(), DriverError> {
        let mut g = self.nets.lock().await;
        let st = g.entry(network_id.to_string()).or_default();
        let old = st.remotes.insert(endpoint_id.to_string(), r);
        if let Some(vx) = st.vxlan {
            if let Some(o) = old.filter(|o| *o != r) {
                self.unprogram(vx, &o).await?;
            }
            self.program(vx, &r).await?;
        }
        Ok(())
    }

    /// Forgets an endpoint on another host and removes its entries.
    pub async fn remove_remote(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<(), DriverError> {
        let mut g = self.nets.lock().await;
        let Some(st) = g.get_mut(network_id) else {
            return Ok(());
        };
        if let (Some(r), Some(vx)) = (st.remotes.remove(endpoint_id), st.vxlan) {
            self.unprogram(vx, &r).await?;
        }
        Ok(())
    }

    /// The remote endpoints known for a network (endpoint id -> entry).
    pub async fn remotes(&self, network_id: &str) -> HashMap<String, Remote> {
        self.nets
            .lock()
            .await
            .get(network_id)
            .map(|s| s.remotes.clone())
            .unwrap_or_default()
    }

    /// Takes over an endpoint that a previous daemon made and that still runs (daemon
    /// restart): the network's vxlan device is adopted as it is (made again only if it is
    /// missing), and the endpoint (`host_ifname`, its macvlan `ifname` in `sandbox`)
    /// counts as a local one, so the device stays while it lives and remotes learnt from
    /// the store are programmed at once.
    ///
    /// Errors: [`DriverError::Incomplete`] for an unusable record; netlink errors when the
    /// device had to be made again and could not be.
    pub async fn adopt(
        &self,
        n: &NetworkSpec,
        host_ifname: &str,
        sandbox: &Path,
        ifname: &str,
    ) -> Result<(), DriverError> {
        let o = OverlayNetwork::from_spec(n)?;
        let mut g = self.nets.lock().await;
        let st = g.entry(n.id.clone()).or_default();
        st.net = Some(o.clone());
        if st.vxlan.is_none() {
            match self.nl.index_of(&o.vxlan).await? {
                Some(vx) => st.vxlan = Some(vx),
                None => self.up(&o, st).await?,
            }
        }
        st.local.insert(
            host_ifname.to_string(),
            Local {
                sandbox: sandbox.to_path_buf(),
                ifname: ifname.to_string(),
            },
        );
        Ok(())
    }

    /// Removes forwarding entries towards other hosts that no known remote endpoint
    /// explains, on every network whose devices exist here: after the store's snapshot,
    /// entries a previous daemon programmed for endpoints that left while it was away go.
    /// Returns how many were removed.
    pub async fn prune_stale(&self) -> usize {
        let g = self.nets.lock().await;
        let mut removed = 0;
        for st in g.values() {
            let Some(vx) = st.vxlan else { continue };
            let Ok(entries) = self.nl.fdb_remote(vx).await else {
                continue;
            };
            for (mac, dst) in entries {
                let std::net::IpAddr::V4(vtep) = dst else {
                    continue;
                };
                let known = st.remotes.values().any(|r| r.mac == mac && r.vtep == vtep);
                if !known && self.nl.fdb_del(vx, mac, vtep).await.is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// The forwarding entries with a remote destination on the network's vxlan device
    /// (MAC, VTEP); empty when the devices do not exist here.
    pub async fn fdb(
        &self,
        n: &NetworkSpec,
    ) -> Result<Vec<([u8; 6], std::net::IpAddr)>, DriverError> {
        let o = OverlayNetwork::from_spec(n)?;
        match self.nl.index_of(&o.vxlan).await? {
            Some(i) => Ok(self.nl.fdb_remote(i).await?),
            None => Ok(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl NetworkDriver for OverlayDriver {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn scope(&self) -> Scope {
        Scope::Global
    }

    fn validate(
        &self,
        options: &HashMap<String, String>,
        _internal: bool,
    ) -> Result<(), DriverError> {
        validate_options(options)
    }

    /// Nothing to make yet: the devices come with the first endpoint on this host.
    async fn create_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        OverlayNetwork::from_spec(n).map(|_| ())
    }

    async fn delete_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        let o = OverlayNetwork::from_spec(n)?;
        let mut g = self.nets.lock().await;
        let mut st = g.remove(&n.id).unwrap_or_default();
        self.down(&o, &mut st).await
    }

    async fn shutdown_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.delete_network(n).await
    }

    async fn join(&self, n: &NetworkSpec, ep: &EndpointSpec<'_>) -> Result<(), DriverError> {
        let o = OverlayNetwork::from_spec(n)?;
        let mut g = self.nets.lock().await;
        let st = g.entry(n.id.clone()).or_default();
        st.net = Some(o.clone());
        let made = st.vxlan.is_none();
        if made {
            self.up(&o, st).await?;
        }
        let joined = async {
            let vx = st
                .vxlan
                .ok_or_else(|| LinkError::NotFound(o.vxlan.clone()))?;
            self.nl
                .create_macvlan(vx, ep.sandbox, ep.ifname, ep.mac, o.mtu)
                .await?;
            // no default routes: the gateways are on no host; egress goes another way
            let configured = ep
                .configure(
                    Some((o.v4.0.prefix_len(), None)),
                    o.v6.map(|(s, _)| (s.prefix_len(), None)),
                )
                .await;
            if let Err(e) = configured {
                let _ = ep.sandbox_nl.delete(ep.ifname).await;
                return Err(e);
            }
            Ok(())
        }
        .await;
        match joined {
            Ok(()) => {
                st.local.insert(
                    ep.host_ifname.to_string(),
                    Local {
                        sandbox: ep.sandbox.to_path_buf(),
                        ifname: ep.ifname.to_string(),
                    },
                );
                Ok(())
            }
            Err(e) => {
                if st.local.is_empty() && made {
                    let _ = self.down(&o, st).await;
                }
                Err(e.into())
            }
        }
    }

    /// Removes the endpoint's macvlan from its sandbox at once (deleting a macvlan does not
    /// wait for a peer the way a veth pair does, so nothing is left for
    /// [`NetworkDriver::reaping`]), also when the sandbox goes next (`reap` None): the
    /// kernel frees a released namespace's devices only later, or never while another
    /// process holds the namespace, and until then its MAC stays taken on the VXLAN
    /// device, so the next container given the same address (and so the same MAC) could
    /// not bring its macvlan up (EADDRINUSE). When the sandbox goes, a sandbox that cannot
    /// be entered any more is not an error (its devices went with it). The vxlan device
    /// goes with the last endpoint.
    async fn leave(
        &self,
        n: &NetworkSpec,
        host_ifname: &str,
        reap: Option<String>,
    ) -> Result<(), DriverError> {
        let o = OverlayNetwork::from_spec(n)?;
        let mut g = self.nets.lock().await;
        let Some(st) = g.get_mut(&n.id) else {
            return Ok(());
        };
        let gone = match st.local.remove(host_ifname) {
            Some(l) => match Netlink::open_in(&l.sandbox) {
                Ok(snl) => snl.delete(&l.ifname).await,
                Err(e) => Err(e),
            },
            None => Ok(()),
        };
        let gone = match (gone, reap) {
            (Err(e), None) => {
                tracing::debug!(endpoint = host_ifname, error = %e, "the macvlan of a sandbox that goes");
                Ok(())
            }
            (r, _) => r,
        };
        if st.local.is_empty() && st.vxlan.is_some() {
            self.down(&o, st).await?;
        }
        Ok(gone?)
    }

    /// Deletes overlay devices (`ov-*` vxlan devices) of networks with no adopted endpoint
    /// on this host: a daemon's containers on them died while it was away, or it died
    /// between making the device and the first endpoint.
    async fn sweep(&self) {
        let keep: std::collections::HashSet<String> = self
            .nets
            .lock()
            .await
            .values()
            .filter(|s| !s.local.is_empty())
            .filter_map(|s| s.net.as_ref())
            .map(|n| n.vxlan.clone())
            .collect();
        let Ok(names) = self.nl.link_names().await else {
            return;
        };
        let doomed = names
            .into_iter()
            .filter(|n| n.starts_with("ov-") && !keep.contains(n));
        for name in doomed {
            let kind_ok = match self.nl.link_info(&name).await {
                Ok(Some(i)) => i.kind.as_deref() == Some("vxlan"),
                _ => false,
            };
            if !kind_ok {
                continue;
            }
            match self.nl.delete(&name).await {
                Ok(()) => tracing::warn!(device = %name, "removed a leftover overlay device"),
                Err(e) => {
                    tracing::warn!(device = %name, error = %e, "removing a leftover overlay device")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let o = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        assert!(validate_options(&o(opt::VNI, "4097")).is_ok());
        for bad in ["0", "16777216", "x", "1,2"] {
            let e = validate_options(&o(opt::VNI, bad))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(bad) && e.contains("16777215"), "{e}");
        }
        assert!(validate_options(&o(opt::PORT, "0")).is_err_and(|e| e.is_input()));
        assert!(validate_options(&o(opt::MTU, "1400")).is_ok());
    }

    #[test]
    fn device_names_and_defaults() {
        let n = NetworkSpec {
            id: "0123456789abcdef".into(),
            name: "ov".into(),
            mac: Some([2, 0, 0, 0, 0, 1]),
            v4: "10.0.9.0/24"
                .parse()
                .ok()
                .map(|s| (s, Ipv4Addr::new(10, 0, 9, 1))),
            options: HashMap::from([(opt::VNI.to_string(), "4100".to_string())]),
            ..Default::default()
        };
        let o = OverlayNetwork::from_spec(&n).ok();
        assert_eq!(
            o.as_ref().map(|o| (o.vxlan.as_str(), o.port, o.mtu, o.vni)),
            Some(("ov-0123456789ab", 4789, 1450, 4100))
        );
    }
}
