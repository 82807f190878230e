//! The overlay driver: global-scope networks that span the hosts of a cluster, over the
//! kernel's VXLAN (RFC 7348; the kernel's Documentation/networking/vxlan.rst).
//!
//! Per network and per host that has endpoints on it: a bridge (`ob-<id12>`, no address:
//! the host does not route into the overlay) and a `vxlan` device (`ov-<id12>`: the
//! network's VNI, UDP port 4789 unless given, source address the host's advertised
//! address, `nolearning`, `proxy`, `udpcsum`, MTU 1450 by default) enslaved to it. Both are
//! made when the first endpoint joins and deleted when the last one leaves.
//!
//! Endpoints on other hosts are programmed statically, as the cluster store reports them
//! ([`OverlayDriver::add_remote`] / [`OverlayDriver::remove_remote`]): a forwarding entry
//! `MAC dst VTEP self permanent` on the vxlan device and a permanent neighbour entry
//! `IP lladdr MAC`, which the device's `proxy` flag uses to answer ARP itself. There is
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
//! The model is Docker's classic overlay driver (libnetwork `drivers/overlay`: a bridge
//! and a vxlan device per network, peers programmed with `peerAdd` from the store), with
//! the devices in the host's namespace instead of a per-network sandbox.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::driver::{DriverError, EndpointSpec, NetworkDriver, NetworkSpec, Scope};
use crate::link::{self, LinkError, Netlink, Reaper};

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
    /// The bridge's name (`ob-<id12>`).
    pub bridge: String,
    /// The vxlan device's name (`ov-<id12>`).
    pub vxlan: String,
    /// The bridge's pinned MAC.
    pub mac: [u8; 6],
    /// The VNI.
    pub vni: u32,
    /// The UDP port.
    pub port: u16,
    /// The MTU of the devices and endpoints, bytes.
    pub mtu: u32,
    /// Subnet and (reserved) gateway.
    pub v4: (Ipv4Net, Ipv4Addr),
}

impl OverlayNetwork {
    /// The typed view of an overlay network record.
    ///
    /// Errors: [`DriverError::Incomplete`] without an IPv4 pool, a MAC or a VNI.
    pub fn from_spec(n: &NetworkSpec) -> Result<OverlayNetwork, DriverError> {
        let missing = |what| DriverError::Incomplete {
            network: n.name.clone(),
            what,
        };
        let short = n.id.get(..12).ok_or_else(|| missing("no network id"))?;
        let o = &n.options;
        Ok(OverlayNetwork {
            bridge: format!("ob-{short}"),
            vxlan: format!("ov-{short}"),
            mac: n.mac.ok_or_else(|| missing("no bridge MAC address"))?,
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
    /// Its host's VTEP address.
    pub vtep: Ipv4Addr,
}

#[derive(Default)]
struct NetState {
    /// The network, once one endpoint joined here.
    net: Option<OverlayNetwork>,
    /// The vxlan device's index while the devices exist.
    vxlan: Option<u32>,
    /// Host-side interfaces of this host's endpoints.
    local: std::collections::HashSet<String>,
    /// Endpoints on other hosts, by endpoint id.
    remotes: HashMap<String, Remote>,
}

/// The overlay driver, working in the daemon's network namespace.
pub struct OverlayDriver {
    nl: Netlink,
    reaper: std::sync::Arc<Reaper>,
    local: Ipv4Addr,
    nets: tokio::sync::Mutex<HashMap<String, NetState>>,
}

impl OverlayDriver {
    /// A driver whose tunnels start at `local` (the host's advertised address, which must
    /// be one of its own), deleting veths through `reaper`. Must be called inside a tokio
    /// runtime.
    ///
    /// Errors: [`DriverError::Link`] when the netlink socket cannot be opened.
    pub fn new(
        local: Ipv4Addr,
        reaper: std::sync::Arc<Reaper>,
    ) -> Result<OverlayDriver, DriverError> {
        Ok(OverlayDriver {
            nl: Netlink::open()?,
            reaper,
            local,
            nets: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The host's tunnel source address.
    pub fn local(&self) -> Ipv4Addr {
        self.local
    }

    /// Makes the bridge and the vxlan device of `n` and programs every known remote
    /// endpoint; undoes its work on failure.
    async fn up(&self, n: &OverlayNetwork, st: &mut NetState) -> Result<(), DriverError> {
        let (br, _) = self
            .nl
            .ensure_bridge(&n.bridge, n.mac, None, Some(n.mtu))
            .await?;
        let vx = match self
            .nl
            .create_vxlan(&n.vxlan, n.vni, self.local, n.port, n.mtu, br)
            .await
        {
            Ok(i) => i,
            Err(e) => {
                let _ = self.nl.delete(&n.bridge).await;
                return Err(e.into());
            }
        };
        for r in st.remotes.values() {
            if let Err(e) = self.program(vx, r).await {
                let _ = self.nl.delete(&n.vxlan).await;
                let _ = self.nl.delete(&n.bridge).await;
                return Err(e.into());
            }
        }
        st.vxlan = Some(vx);
        tracing::debug!(bridge = %n.bridge, vxlan = %n.vxlan, vni = n.vni, remotes = st.remotes.len(), "overlay network up on this host");
        Ok(())
    }

    async fn down(&self, n: &OverlayNetwork, st: &mut NetState) -> Result<(), DriverError> {
        st.vxlan = None;
        self.nl.delete(&n.vxlan).await?;
        if let Some(info) = self.nl.link_info(&n.bridge).await? {
            if info.is_our_bridge(n.mac) {
                self.nl.delete(&n.bridge).await?;
            }
        }
        Ok(())
    }

    async fn program(&self, vx: u32, r: &Remote) -> Result<(), LinkError> {
        self.nl.fdb_add(vx, r.mac, r.vtep).await?;
        if let Some(ip) = r.ip {
            if let Err(e) = self.nl.neigh_add(vx, ip, r.mac).await {
                let _ = self.nl.fdb_del(vx, r.mac, r.vtep).await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn unprogram(&self, vx: u32, r: &Remote) -> Result<(), LinkError> {
        let a = match r.ip {
            Some(ip) => self.nl.neigh_del(vx, ip).await,
            None => Ok(()),
        };
        self.nl.fdb_del(vx, r.mac, r.vtep).await?;
        a
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
    /// restart): the network's devices are adopted as they are (made again only if they
    /// are missing), and `host_ifname` counts as a local endpoint, so the devices stay
    /// while it lives and remotes learnt from the store are programmed at once.
    ///
    /// Errors: [`DriverError::Incomplete`] for an unusable record; netlink errors when the
    /// devices had to be made again and could not be.
    pub async fn adopt(&self, n: &NetworkSpec, host_ifname: &str) -> Result<(), DriverError> {
        let o = OverlayNetwork::from_spec(n)?;
        let mut g = self.nets.lock().await;
        let st = g.entry(n.id.clone()).or_default();
        st.net = Some(o.clone());
        if st.vxlan.is_none() {
            let vx = self.nl.index_of(&o.vxlan).await?;
            let br = self.nl.index_of(&o.bridge).await?;
            match (vx, br) {
                (Some(vx), Some(_)) => st.vxlan = Some(vx),
                _ => self.up(&o, st).await?,
            }
        }
        st.local.insert(host_ifname.to_string());
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
        let undo = |st: &mut NetState| st.local.is_empty() && made;
        let br = match self.nl.index_of(&o.bridge).await {
            Ok(Some(i)) => i,
            Ok(None) | Err(_) => {
                if undo(st) {
                    let _ = self.down(&o, st).await;
                }
                return Err(LinkError::NotFound(o.bridge.clone()).into());
            }
        };
        let joined = async {
            self.nl
                .create_veth(
                    ep.host_ifname,
                    br,
                    ep.sandbox,
                    ep.ifname,
                    ep.mac,
                    Some(o.mtu),
                )
                .await?;
            let configured = match ep.ip {
                // no default route: the gateway is on no host; egress goes another way
                Some(ip) => {
                    ep.sandbox_nl
                        .configure_endpoint(ep.ifname, ip, o.v4.0.prefix_len(), None)
                        .await
                }
                None => ep.sandbox_nl.set_up_by_name(ep.ifname).await,
            };
            if let Err(e) = configured {
                let _ = self.nl.delete(ep.host_ifname).await;
                return Err(e);
            }
            Ok(())
        }
        .await;
        match joined {
            Ok(()) => {
                st.local.insert(ep.host_ifname.to_string());
                Ok(())
            }
            Err(e) => {
                if undo(st) {
                    let _ = self.down(&o, st).await;
                }
                Err(e.into())
            }
        }
    }

    async fn leave(
        &self,
        n: &NetworkSpec,
        host_ifname: &str,
        reap: Option<String>,
    ) -> Result<(), DriverError> {
        let o = OverlayNetwork::from_spec(n)?;
        self.nl.set_down_by_name(host_ifname).await?;
        if let Some(key) = reap {
            self.reaper.delete(host_ifname, key);
        }
        let mut g = self.nets.lock().await;
        let Some(st) = g.get_mut(&n.id) else {
            return Ok(());
        };
        st.local.remove(host_ifname);
        if st.local.is_empty() && st.vxlan.is_some() {
            self.down(&o, st).await?;
        }
        Ok(())
    }

    fn reaping(&self, key: &str) -> bool {
        self.reaper.pending(key)
    }

    fn flush(&self) {
        self.reaper.flush();
    }

    /// Deletes overlay devices (`ov-*` vxlan devices, `ob-*` bridges) of networks with no
    /// adopted endpoint on this host: a daemon's containers on them died while it was
    /// away, or it died between making the devices and the first endpoint.
    async fn sweep(&self) {
        let keep: std::collections::HashSet<String> = self
            .nets
            .lock()
            .await
            .values()
            .filter(|s| !s.local.is_empty())
            .filter_map(|s| s.net.as_ref())
            .flat_map(|n| [n.vxlan.clone(), n.bridge.clone()])
            .collect();
        let Ok(names) = self.nl.link_names().await else {
            return;
        };
        // vxlan devices first, so no bridge is deleted with a port still on it
        let mut doomed: Vec<String> = names
            .into_iter()
            .filter(|n| (n.starts_with("ov-") || n.starts_with("ob-")) && !keep.contains(n))
            .collect();
        doomed.sort_by_key(|n| !n.starts_with("ov-"));
        for name in doomed {
            let kind_ok = match self.nl.link_info(&name).await {
                Ok(Some(i)) => {
                    i.kind.as_deref()
                        == Some(if name.starts_with("ov-") {
                            "vxlan"
                        } else {
                            "bridge"
                        })
                }
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
            o.as_ref()
                .map(|o| (o.bridge.as_str(), o.vxlan.as_str(), o.port, o.mtu, o.vni)),
            Some(("ob-0123456789ab", "ov-0123456789ab", 4789, 1450, 4100))
        );
    }
}
