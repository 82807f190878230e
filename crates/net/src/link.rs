//! Netlink (rtnetlink) operations on links, addresses and routes: bridges, veth pairs,
//! addresses and default routes, in the daemon's namespace or inside a sandbox.
//!
//! Everything here talks rtnetlink (see rtnetlink(7)); no `ip` command is spawned.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::netns;

/// Errors of link handling; each names the link and the step.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A netlink request failed.
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// Opening a netlink socket or a namespace failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Entering a namespace failed.
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    /// A link that must exist does not.
    #[error("no such link: {0}")]
    NotFound(String),
    /// The bridge has no free port: a Linux bridge takes at most [`BRIDGE_MAX_PORTS`]
    /// (the kernel's `BR_MAX_PORTS` less port 0), and refuses more with EXFULL.
    #[error("bridge {bridge} is full: a Linux bridge takes at most {BRIDGE_MAX_PORTS} ports (endpoints); put further containers on another network")]
    BridgeFull {
        /// The bridge.
        bridge: String,
    },
    /// A link of the wanted name exists and is not a bridge tether made: tether never
    /// adopts, sets down or deletes an interface it did not create.
    #[error("interface {name} already exists on the host and was not created by tether ({found}); choose another com.docker.network.bridge.name")]
    NotOurs {
        /// The interface name.
        name: String,
        /// What was found there (its kind).
        found: String,
    },
}

/// What tether reads of an existing link ([`Netlink::link_info`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// `IFLA_INFO_KIND` ("bridge", "veth", ...); None for links without one (`lo`,
    /// physical NICs).
    pub kind: Option<String>,
    /// Hardware address (`IFLA_ADDRESS`), when it is 6 bytes.
    pub mac: Option<[u8; 6]>,
    /// MTU in bytes.
    pub mtu: Option<u32>,
}

impl LinkInfo {
    /// Whether this is the bridge tether made with the pinned MAC `mac`: every tether
    /// bridge gets a random MAC at creation, recorded with its network, so a bridge kind
    /// with that MAC is ours and anything else is the host's.
    pub fn is_our_bridge(&self, mac: [u8; 6]) -> bool {
        self.kind.as_deref() == Some("bridge") && self.mac == Some(mac)
    }

    /// A short description for errors: "a bridge", "a veth", "an interface of no kind".
    pub fn describe(&self) -> String {
        match self.kind.as_deref() {
            Some("bridge") => "a bridge with another MAC address".into(),
            Some(k) => format!("a {k} interface"),
            None => "a device such as loopback or a NIC".into(),
        }
    }
}

/// Smallest and largest MTU tether accepts (`com.docker.network.driver.mtu`): IPv4's
/// minimum (RFC 791: 68 bytes) and the largest the kernel takes (65535).
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

/// Ports a Linux bridge can hold: `BR_MAX_PORTS` (1024, net/bridge/br_private.h) less
/// port number 0, which the kernel never assigns.
pub const BRIDGE_MAX_PORTS: usize = 1023;

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let what = what.into();
    move |source| LinkError::Netlink { what, source }
}

/// A netlink connection bound to one network namespace.
///
/// The connection task runs on the current tokio runtime until the `Netlink` is dropped.
pub struct Netlink {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Netlink {
    /// Opens a connection in the daemon's own namespace. Must be called inside a tokio runtime.
    pub fn open() -> Result<Netlink, LinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| LinkError::Io {
            what: "open rtnetlink socket".into(),
            source,
        })?;
        let task = tokio::spawn(conn);
        Ok(Netlink { handle, task })
    }

    /// Opens a connection inside the namespace at `ns` (a bind-mounted nsfs file).
    /// The socket is created on a thread inside that namespace and stays bound to it.
    pub fn open_in(ns: &Path) -> Result<Netlink, LinkError> {
        let rt = tokio::runtime::Handle::current();
        let made = netns::run_in(ns, move || {
            let _guard = rt.enter();
            rtnetlink::new_connection()
        })?;
        let (conn, handle, _) = made.map_err(|source| LinkError::Io {
            what: format!("open rtnetlink socket in {}", ns.display()),
            source,
        })?;
        let task = tokio::spawn(conn);
        Ok(Netlink { handle, task })
    }

    /// Index of the link called `name`, or None when there is none.
    pub async fn index_of(&self, name: &str) -> Result<Option<u32>, LinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            // ENODEV: no such device
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(nl(format!("look up link {name}"))(e)),
        }
    }

    /// Kind, MAC and MTU of the link called `name`, or None when there is none.
    pub async fn link_info(&self, name: &str) -> Result<Option<LinkInfo>, LinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let msg = match links.try_next().await {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(None),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {
                return Ok(None)
            }
            Err(e) => return Err(nl(format!("look up link {name}"))(e)),
        };
        let mut info = LinkInfo {
            index: msg.header.index,
            kind: None,
            mac: None,
            mtu: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::Address(a) => info.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                LinkAttribute::Mtu(m) => info.mtu = Some(m),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let rtnetlink::packet_route::link::LinkInfo::Kind(k) = i {
                            info.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Some(info))
    }

    /// Every address on this namespace's links as `(interface name, address, prefix)`.
    pub async fn addresses(&self) -> Result<Vec<(String, IpAddr, u8)>, LinkError> {
        let mut names = std::collections::HashMap::new();
        let mut links = self.handle.link().get().execute();
        while let Some(msg) = links.try_next().await.map_err(nl("list links"))? {
            for attr in msg.attributes {
                if let LinkAttribute::IfName(n) = attr {
                    names.insert(msg.header.index, n);
                }
            }
        }
        let mut out = Vec::new();
        let mut addrs = self.handle.address().get().execute();
        while let Some(msg) = addrs.try_next().await.map_err(nl("list addresses"))? {
            use rtnetlink::packet_route::address::AddressAttribute;
            let ifname = names
                .get(&msg.header.index)
                .cloned()
                .unwrap_or_else(|| format!("#{}", msg.header.index));
            let addr = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = addr.or_else(|| {
                msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(a) = addr {
                out.push((ifname, a, msg.header.prefix_len));
            }
        }
        Ok(out)
    }

    /// Sets link `index`'s MTU (bytes).
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(nl(format!("set MTU {mtu} on link {index}")))
    }

    /// Renames link `index` to `name` and gives it the MAC `mac` (the link must be down).
    pub async fn rename(&self, index: u32, name: &str, mac: [u8; 6]) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(index)
            .name(name.to_string())
            .address(mac.to_vec())
            .build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(nl(format!("rename link {index} to {name}")))
    }

    /// Removes every address (IPv4 and IPv6) of link `index`.
    pub async fn flush_addresses(&self, index: u32) -> Result<(), LinkError> {
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut found = Vec::new();
        while let Some(msg) = addrs.try_next().await.map_err(nl("list addresses"))? {
            if msg.header.index == index {
                found.push(msg);
            }
        }
        for msg in found {
            match self.handle.address().del(msg).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e))
                    if e.raw_code() == -libc::EADDRNOTAVAIL || e.raw_code() == -libc::ENODEV => {}
                Err(e) => return Err(nl(format!("remove an address of link {index}"))(e)),
            }
        }
        Ok(())
    }

    async fn must_index(&self, name: &str) -> Result<u32, LinkError> {
        self.index_of(name)
            .await?
            .ok_or_else(|| LinkError::NotFound(name.to_string()))
    }

    /// Creates bridge `name` with the fixed MAC `mac` (so that it never takes a port's MAC:
    /// a bridge that does changes its MAC as containers come and go and its neighbours lose
    /// the gateway for seconds), the MTU `mtu` when given, gives it `gateway` (address and
    /// prefix length; None: no address, gateway mode `isolated`) and sets it up. An existing bridge of that name is reused (daemon restart) only when it is
    /// the one tether made: a bridge with the pinned MAC ([`LinkInfo::is_our_bridge`]).
    /// `current` is the link of that name as the caller just found it ([`Self::link_info`];
    /// None: there is none), so that the caller's own look-up is not made twice.
    /// Returns the bridge's index and whether it existed before.
    ///
    /// Errors: [`LinkError::NotOurs`] when a link of that name exists and is not ours;
    /// netlink failures.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        mac: [u8; 6],
        gateway: Option<(Ipv4Addr, u8)>,
        mtu: Option<u32>,
        current: Option<LinkInfo>,
    ) -> Result<(u32, bool), LinkError> {
        let found = match current {
            Some(info) if info.is_our_bridge(mac) => {
                if let Some(m) = mtu.filter(|m| info.mtu != Some(*m)) {
                    self.set_mtu(info.index, m).await?;
                }
                Some(info.index)
            }
            Some(info) => {
                return Err(LinkError::NotOurs {
                    name: name.to_string(),
                    found: info.describe(),
                })
            }
            None => None,
        };
        let index = match found {
            Some(i) => i,
            None => {
                let mut b = LinkBridge::new(name).address(mac.to_vec());
                if let Some(m) = mtu {
                    b = b.mtu(m);
                }
                let msg = b.build();
                self.handle
                    .link()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(nl(format!("create bridge {name}")))?;
                self.must_index(name).await?
            }
        };
        let addressed = match gateway {
            Some((gw, prefix)) => self.add_address(index, IpAddr::V4(gw), prefix).await,
            None => Ok(()),
        };
        let configured = match addressed {
            Ok(()) => self.set_up(index).await,
            Err(e) => Err(e),
        };
        if let Err(e) = configured {
            if found.is_none() {
                // ours: take it away again, leaving nothing behind
                let _ = self.delete(name).await;
            }
            return Err(e);
        }
        Ok((index, found.is_some()))
    }

    /// Adds `addr/prefix` to link `index`; an address already present is fine. IPv6
    /// addresses skip duplicate address detection (IFA_F_NODAD): the subnet is ours and
    /// a tentative address would be unusable for a second or two.
    pub async fn add_address(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), LinkError> {
        let mut req = self.handle.address().add(index, addr, prefix);
        if addr.is_ipv6() {
            req.message_mut().header.flags |=
                rtnetlink::packet_route::address::AddressHeaderFlags::Nodad;
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(nl(format!("add address {addr}/{prefix}"))(e)),
        }
    }

    /// Sets link `index` up.
    pub async fn set_up(&self, index: u32) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(nl(format!("set link {index} up")))
    }

    /// Sets the link called `name` up (e.g. `lo` in a fresh sandbox), in one request: the
    /// kernel finds the link by its name (`IFLA_IFNAME` with index 0, rtnetlink(7)).
    ///
    /// Errors: [`LinkError::NotFound`] when no link has that name; netlink's.
    pub async fn set_up_by_name(&self, name: &str) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_name(name).up().build();
        match self.handle.link().set(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {
                Err(LinkError::NotFound(name.to_string()))
            }
            Err(e) => Err(nl(format!("set link {name} up"))(e)),
        }
    }

    /// Sets the link called `name` down; a missing link is not an error. Cheap (no RCU
    /// grace period, unlike a deletion): a bridge that goes down loses its routes at once,
    /// and a veth whose host side goes down stops carrying traffic at once.
    pub async fn set_down_by_name(&self, name: &str) -> Result<(), LinkError> {
        let Some(index) = self.index_of(name).await? else {
            return Ok(());
        };
        let msg = LinkUnspec::new_with_index(index).down().build();
        match self.handle.link().set(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(()),
            Err(e) => Err(nl(format!("set link {name} down"))(e)),
        }
    }

    /// Deletes the link called `name`; a missing link is not an error (idempotent teardown).
    pub async fn delete(&self, name: &str) -> Result<(), LinkError> {
        let Some(index) = self.index_of(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(()),
            Err(e) => Err(nl(format!("delete link {name}"))(e)),
        }
    }

    /// Creates a veth pair: `host_name` here, enslaved to bridge `bridge_index` and up;
    /// its peer created directly inside the sandbox `sandbox` as `peer_name` with `mac`.
    /// With `mtu`, both ends get that MTU (the network's `com.docker.network.driver.mtu`).
    ///
    /// The host end, a bridge port, carries no addresses of its own: IPv6 is disabled on
    /// it before it goes up (`net.ipv6.conf.<host_name>.disable_ipv6`, ip-sysctl.rst; the
    /// calling thread must be in this handle's namespace, as the daemon's threads are).
    /// Otherwise each port would get a link-local address with duplicate address
    /// detection, router solicitations and MLD reports, and an `fe80::/64` and `ff00::/8`
    /// route, each added to a list as long as the ports already there (fib6) - a start
    /// cost that grows with every container. A kernel without IPv6 has nothing to disable.
    ///
    /// Errors: netlink's ([`LinkError::BridgeFull`] when the bridge has no free port), or
    /// the sysctl's ([`LinkError::Io`]); a pair made before the error is deleted.
    pub async fn create_veth(
        &self,
        host_name: &str,
        bridge_index: u32,
        sandbox: &Path,
        peer_name: &str,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<(), LinkError> {
        let ns = open_sandbox(sandbox)?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::default()
            .name(peer_name.to_string())
            .address(mac.to_vec())
            .setns_by_fd(ns.as_raw_fd());
        let mut host = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_name.to_string());
        if let Some(m) = mtu {
            peer = peer.mtu(m);
            host = host.mtu(m);
        }
        let peer: LinkMessage = peer.build();
        let msg = host
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge_index)
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| match e {
                rtnetlink::Error::NetlinkError(ref m) if m.raw_code() == -libc::EXFULL => {
                    LinkError::BridgeFull {
                        bridge: format!("#{bridge_index}"),
                    }
                }
                e => nl(format!("create veth {host_name} (peer {peer_name})"))(e),
            })?;
        drop(ns);
        let up = match crate::sysctl::set_conf("ipv6", host_name, "disable_ipv6", "1") {
            Err(e) if !ipv6_absent(&e) => Err(LinkError::Io {
                what: format!("disable IPv6 on bridge port {host_name}"),
                source: e,
            }),
            _ => self.set_up_by_name(host_name).await,
        };
        if up.is_err() {
            let _ = self.delete(host_name).await;
        }
        up
    }

    /// Inside a sandbox: gives `ifname` its address and sets it up; with `gateway`, adds the
    /// default route through it.
    pub async fn configure_endpoint(
        &self,
        ifname: &str,
        addr: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), LinkError> {
        let index = self.must_index(ifname).await?;
        self.add_address(index, IpAddr::V4(addr), prefix).await?;
        self.set_up(index).await?;
        match gateway {
            Some(gw) => {
                let route = RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(gw)
                    .output_interface(index)
                    .build();
                self.add_default_route(route, IpAddr::V4(gw)).await
            }
            None => Ok(()),
        }
    }

    /// Inside a sandbox: adds `addr/prefix` (IPv6) to `ifname`, and with `gateway` the
    /// IPv6 default route through it.
    pub async fn configure_endpoint6(
        &self,
        ifname: &str,
        addr: Ipv6Addr,
        prefix: u8,
        gateway: Option<Ipv6Addr>,
    ) -> Result<(), LinkError> {
        let index = self.must_index(ifname).await?;
        self.add_address(index, IpAddr::V6(addr), prefix).await?;
        match gateway {
            Some(gw) => {
                let route = RouteMessageBuilder::<Ipv6Addr>::new()
                    .gateway(gw)
                    .output_interface(index)
                    .build();
                self.add_default_route(route, IpAddr::V6(gw)).await
            }
            None => Ok(()),
        }
    }

    /// Inside a sandbox: makes `ifname` the interface of the default route, via `gw4`
    /// (IPv4) and `gw6` (IPv6) where given, replacing default routes through other
    /// interfaces (`ip route replace default`; rtnetlink NLM_F_REPLACE).
    pub async fn replace_default_route(
        &self,
        ifname: &str,
        gw4: Option<Ipv4Addr>,
        gw6: Option<Ipv6Addr>,
    ) -> Result<(), LinkError> {
        let index = self.must_index(ifname).await?;
        let mut routes = Vec::new();
        if let Some(gw) = gw4 {
            let r = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw);
            routes.push((r.output_interface(index).build(), IpAddr::V4(gw)));
        }
        if let Some(gw) = gw6 {
            let r = RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw);
            routes.push((r.output_interface(index).build(), IpAddr::V6(gw)));
        }
        for (route, gw) in routes {
            self.handle
                .route()
                .add(route)
                .replace()
                .execute()
                .await
                .map_err(nl(format!("replace default route via {gw}")))?;
        }
        Ok(())
    }

    /// Adds a default route message; one already there is fine.
    async fn add_default_route(
        &self,
        route: rtnetlink::packet_route::route::RouteMessage,
        gw: IpAddr,
    ) -> Result<(), LinkError> {
        match self.handle.route().add(route).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(nl(format!("add default route via {gw}"))(e)),
        }
    }

    /// Names of the links enslaved to the bridge with index `bridge` (its ports).
    pub async fn ports_of(&self, bridge: u32) -> Result<Vec<String>, LinkError> {
        let mut out = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(msg) = links.try_next().await.map_err(nl("list links"))? {
            let mut name = None;
            let mut on = false;
            for attr in msg.attributes {
                match attr {
                    LinkAttribute::IfName(n) => name = Some(n),
                    LinkAttribute::Controller(i) => on = i == bridge,
                    _ => {}
                }
            }
            if let (true, Some(n)) = (on, name) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Names of the links in this namespace (for diagnostics and tests).
    pub async fn link_names(&self) -> Result<Vec<String>, LinkError> {
        let mut out = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(msg) = links.try_next().await.map_err(nl("list links"))? {
            for attr in msg.attributes {
                if let LinkAttribute::IfName(n) = attr {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    /// Creates the VXLAN device `name` (kernel `vxlan` link, see the kernel's
    /// Documentation/networking/vxlan.rst and ip-link(8)): VNI `vni`, UDP destination port
    /// `port`, source address `local` (the host's advertised address), `nolearning` and
    /// `proxy` (ARP requests answered from the device's neighbour table, never flooded),
    /// MTU `mtu`, MAC `mac` (pinned by the network's record, so it is the same on every
    /// start) and up; no bridge: the network's endpoints are macvlans on it
    /// ([`Netlink::create_macvlan`]). An existing device of that name is deleted first (a
    /// left-over of a daemon that died).
    ///
    /// The outer UDP checksum is asked for explicitly (`udpcsum`, IFLA_VXLAN_UDP_CSUM)
    /// instead of being left to the kernel's default, so the device is the same on every
    /// kernel. With it on, the kernel fills the outer checksum from the inner one's
    /// partial checksum (local checksum offload, Documentation/networking/
    /// checksum-offloads.rst "LCO") and GSO keeps whole 64 KB TCP segments encapsulated
    /// (SKB_GSO_UDP_TUNNEL_CSUM, Documentation/networking/segmentation-offloads.rst "UDP
    /// and GRE tunnels"), so it costs no segmentation; RFC 7348 section 5 lets receivers
    /// accept either. Measured for issue 14 (docs/benchmarks.md, "Overlay across hosts"):
    /// `noudpcsum` made no difference to TCP throughput over the overlay.
    pub async fn create_vxlan(
        &self,
        name: &str,
        vni: u32,
        local: Ipv4Addr,
        port: u16,
        mtu: u32,
        mac: [u8; 6],
    ) -> Result<u32, LinkError> {
        self.delete(name).await?;
        let msg = rtnetlink::LinkVxlan::new(name, vni)
            .local(local)
            .port(port)
            .learning(false)
            .proxy(true)
            .l2miss(false)
            .l3miss(false)
            .udp_csum(true)
            .mtu(mtu)
            .address(mac.to_vec())
            .up()
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl(format!(
                "create vxlan {name} (VNI {vni}, port {port}, local {local})"
            )))?;
        self.must_index(name).await
    }

    /// Creates a macvlan device in `bridge` mode on the device `lower` (of this namespace)
    /// directly inside the sandbox `sandbox`, as `ifname` with `mac` and `mtu`, down (the
    /// caller configures and sets it up). Frames between macvlans of one lower device are
    /// switched by the macvlan driver; the rest go out through `lower` (the kernel's
    /// drivers/net/macvlan.c; `ip link add link LOWER name IFNAME netns NS type macvlan
    /// mode bridge`).
    ///
    /// Errors: [`LinkError::Io`] when the sandbox cannot be opened; the kernel's refusal
    /// (a name taken in the sandbox, a MAC in use on `lower`).
    pub async fn create_macvlan(
        &self,
        lower: u32,
        sandbox: &Path,
        ifname: &str,
        mac: [u8; 6],
        mtu: u32,
    ) -> Result<(), LinkError> {
        use rtnetlink::packet_route::link::MacVlanMode;
        let ns = open_sandbox(sandbox)?;
        let msg = rtnetlink::LinkMacVlan::new(ifname, lower, MacVlanMode::Bridge)
            .address(mac.to_vec())
            .mtu(mtu)
            .setns_by_fd(ns.as_raw_fd())
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl(format!("create macvlan {ifname} on #{lower}")))?;
        drop(ns);
        Ok(())
    }

    /// Adds (or replaces) the static forwarding entry `mac dst vtep self permanent` on the
    /// VXLAN device `index` (`bridge fdb replace` with NDA_DST): frames for `mac` are
    /// tunnelled to the host `vtep`. No all-zero (flooding) entry is ever added.
    pub async fn fdb_add(&self, index: u32, mac: [u8; 6], vtep: Ipv4Addr) -> Result<(), LinkError> {
        use rtnetlink::packet_route::neighbour::{NeighbourFlags, NeighbourState};
        self.handle
            .neighbours()
            .add_bridge(index, &mac)
            .destination(IpAddr::V4(vtep))
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(nl(format!("add fdb {} dst {vtep}", format_mac(&mac))))
    }

    /// Removes the forwarding entry of `mac` towards `vtep` from the VXLAN device `index`;
    /// an entry already gone is fine.
    pub async fn fdb_del(&self, index: u32, mac: [u8; 6], vtep: Ipv4Addr) -> Result<(), LinkError> {
        use rtnetlink::packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
        };
        use rtnetlink::packet_route::AddressFamily;
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = index;
        m.header.flags = NeighbourFlags::Own;
        m.header.state = NeighbourState::Permanent;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                vtep,
            )));
        gone_ok(
            self.handle.neighbours().del(m).execute().await,
            format!("delete fdb {} dst {vtep}", format_mac(&mac)),
        )
    }

    /// Adds (or replaces) the permanent neighbour entry `ip lladdr mac` on device `index`
    /// (`ip neigh replace`): with the VXLAN device's `proxy` flag, ARP requests for `ip`
    /// are answered from it.
    pub async fn neigh_add(&self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<(), LinkError> {
        self.handle
            .neighbours()
            .add(index, ip)
            .link_layer_address(&mac)
            .replace()
            .execute()
            .await
            .map_err(nl(format!(
                "add neighbour {ip} lladdr {}",
                format_mac(&mac)
            )))
    }

    /// Removes the neighbour entry of `ip` on device `index`; one already gone is fine.
    pub async fn neigh_del(&self, index: u32, ip: IpAddr) -> Result<(), LinkError> {
        use rtnetlink::packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourMessage,
        };
        use rtnetlink::packet_route::AddressFamily;
        let mut m = NeighbourMessage::default();
        m.header.ifindex = index;
        let (family, dst) = match ip {
            IpAddr::V4(a) => (AddressFamily::Inet, NeighbourAddress::Inet(a)),
            IpAddr::V6(a) => (AddressFamily::Inet6, NeighbourAddress::Inet6(a)),
        };
        m.header.family = family;
        m.attributes.push(NeighbourAttribute::Destination(dst));
        gone_ok(
            self.handle.neighbours().del(m).execute().await,
            format!("delete neighbour {ip}"),
        )
    }

    /// The forwarding entries with a remote destination on device `index`: (MAC, VTEP).
    /// For tests and diagnostics.
    pub async fn fdb_remote(&self, index: u32) -> Result<Vec<([u8; 6], IpAddr)>, LinkError> {
        use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
        use rtnetlink::packet_route::AddressFamily;
        let mut req = self.handle.neighbours().get();
        req.message_mut().header.family = AddressFamily::Bridge;
        let msgs: Vec<_> = req
            .execute()
            .try_collect()
            .await
            .map_err(nl("list fdb entries"))?;
        let mut out = Vec::new();
        for m in msgs.into_iter().filter(|m| m.header.ifindex == index) {
            let mut mac = None;
            let mut dst = None;
            for a in &m.attributes {
                match a {
                    NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                        let mut b = [0u8; 6];
                        b.copy_from_slice(l);
                        mac = Some(b);
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                        dst = Some(IpAddr::V4(*a))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                        dst = Some(IpAddr::V6(*a))
                    }
                    _ => {}
                }
            }
            if let (Some(m), Some(d)) = (mac, dst) {
                out.push((m, d));
            }
        }
        Ok(out)
    }
}

/// A deletion that found nothing to delete (ENOENT, ENODEV) is a success.
fn gone_ok(r: Result<(), rtnetlink::Error>, what: String) -> Result<(), LinkError> {
    match r {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e))
            if e.raw_code() == -libc::ENOENT || e.raw_code() == -libc::ENODEV =>
        {
            Ok(())
        }
        Err(e) => Err(nl(what)(e)),
    }
}

/// A locally administered unicast MAC derived from an IPv4 address, as Docker does
/// (02:42:a.b.c.d), so an endpoint's MAC is stable for its IP.
pub fn mac_for_ip(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A random locally administered unicast MAC (for bridges: pinned at creation).
pub fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// One job of the [`Reaper`].
enum ReapJob {
    /// Delete link `link`; `key` is dropped from the pending set when done.
    Delete { link: String, key: String },
    /// Reply once every job queued before this one is done.
    Flush(mpsc::Sender<()>),
}

/// Deletes links off the request path, on a thread of its own.
///
/// Deleting a link is slow in the kernel (`unregister_netdevice` waits for RCU grace
/// periods: ~10-20 ms for a veth, ~40 ms for a bridge on this machine kind) and the
/// netlink `sendmsg` blocks for all of it. Callers first set the link down
/// ([`Netlink::set_down_by_name`], cheap), which stops its traffic and removes its routes,
/// then hand it here and answer their client. Each link is tagged with a caller-chosen
/// key (e.g. the sandbox and interface name) that [`Reaper::pending`] reports until the
/// deletion is done, so the name is not reused meanwhile.
pub struct Reaper {
    tx: mpsc::Sender<ReapJob>,
    pending: Arc<Mutex<HashSet<String>>>,
}

impl Reaper {
    /// Starts the reaper thread, with a netlink socket in the calling thread's network
    /// namespace (call it from the daemon's). Errors: the thread or socket cannot start.
    pub fn start() -> Result<Reaper, LinkError> {
        let (tx, rx) = mpsc::channel::<ReapJob>();
        let pending: Arc<Mutex<HashSet<String>>> = Arc::default();
        let done = pending.clone();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), LinkError>>();
        let io = |what: &str| {
            let what = what.to_string();
            move |source| LinkError::Io { what, source }
        };
        std::thread::Builder::new()
            .name("link-reaper".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(LinkError::Io {
                            what: "start the link reaper".into(),
                            source: e,
                        }));
                        return;
                    }
                };
                rt.block_on(async move {
                    let nl = match Netlink::open() {
                        Ok(nl) => nl,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    // The blocking receive parks this thread between jobs; the runtime
                    // has nothing else to run meanwhile.
                    while let Ok(job) = rx.recv() {
                        match job {
                            ReapJob::Delete { link, key } => {
                                if let Err(e) = nl.delete(&link).await {
                                    tracing::warn!(%link, error = %e, "deleting link");
                                }
                                done.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                            }
                            ReapJob::Flush(reply) => {
                                let _ = reply.send(());
                            }
                        }
                    }
                });
            })
            .map_err(io("start the link reaper thread"))?;
        ready_rx.recv().map_err(|_| LinkError::Io {
            what: "start the link reaper".into(),
            source: std::io::Error::other("reaper thread exited"),
        })??;
        Ok(Reaper { tx, pending })
    }

    /// Queues the deletion of `link` (in the daemon's namespace), tagged `key`. Deleting
    /// a veth's host side deletes its peer in the sandbox too.
    pub fn delete(&self, link: &str, key: String) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        let job = ReapJob::Delete {
            link: link.to_string(),
            key: key.clone(),
        };
        if self.tx.send(job).is_err() {
            tracing::warn!(%link, "link reaper gone; link left behind");
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
    }

    /// Whether a deletion tagged `key` is still queued or running.
    pub fn pending(&self, key: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// Blocks until every deletion queued so far is done (daemon shutdown, tests).
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(ReapJob::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

/// Opens a sandbox's network-namespace file, to hand its descriptor to the kernel
/// (IFLA_NET_NS_FD).
///
/// Errors: [`LinkError::Io`] naming the sandbox.
fn open_sandbox(sandbox: &Path) -> Result<std::fs::File, LinkError> {
    std::fs::File::open(sandbox).map_err(|source| LinkError::Io {
        what: format!("open sandbox {}", sandbox.display()),
        source,
    })
}

/// Whether a sysctl write failed only because the kernel has no IPv6 (no
/// /proc/sys/net/ipv6 at all), not because the interface is missing.
fn ipv6_absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound && !std::path::Path::new("/proc/sys/net/ipv6").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_from_ip_is_docker_style() {
        assert_eq!(
            format_mac(&mac_for_ip(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
    }

    #[test]
    fn random_mac_is_local_unicast() {
        for _ in 0..100 {
            let m = random_mac();
            assert_eq!(m[0] & 0x01, 0, "unicast");
            assert_eq!(m[0] & 0x02, 0x02, "locally administered");
        }
    }
}
