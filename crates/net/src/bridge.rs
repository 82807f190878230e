//! The bridge driver: a Linux bridge per network with the gateway address, a veth pair per
//! endpoint (host side enslaved to the bridge, `ethN` in the sandbox), masquerading and
//! isolation through the [`Firewall`]. Each operation validates first, applies, and undoes
//! what it applied when a later step fails.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

pub use crate::driver::DriverError;
use crate::driver::{EndpointSpec, NetworkDriver, NetworkSpec};
use crate::firewall::{Firewall, GatewayMode, NetworkRules};
use crate::link::{self, LinkError, LinkInfo, Netlink, Reaper};
use crate::sysctl;

/// The bridge driver's options (Docker's `com.docker.network.*` names) that tether reads.
pub mod opt {
    /// MTU of the bridge and of every endpoint's veth, in bytes.
    pub const MTU: &str = "com.docker.network.driver.mtu";
    /// Inter-container communication inside the network (boolean, default true).
    pub const ICC: &str = "com.docker.network.bridge.enable_icc";
    /// Masquerade traffic leaving the host (boolean, default true).
    pub const MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
    /// The bridge interface's name (at most 15 bytes; must not exist on the host).
    pub const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
    /// IPv4 gateway mode: nat (default), nat-unprotected, routed, isolated.
    pub const GATEWAY_MODE4: &str = "com.docker.network.bridge.gateway_mode_ipv4";
    /// IPv6 gateway mode, likewise.
    pub const GATEWAY_MODE6: &str = "com.docker.network.bridge.gateway_mode_ipv6";
    /// Host interfaces (':'-separated) from which published container ports may be
    /// reached by routing.
    pub const TRUSTED: &str = "com.docker.network.bridge.trusted_host_interfaces";
}

/// Whether `name` can be a Linux interface name: 1 to 15 bytes, no '/', ':', whitespace
/// or NUL, not "." or ".." (the kernel's `dev_valid_name`).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
}

/// Go's `strconv.ParseBool`, which Docker uses for boolean driver options: 1, t, T, TRUE,
/// true, True, 0, f, F, FALSE, false, False; anything else is None.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A gateway mode option's value (nat when unset or not one of [`GatewayMode::VALUES`]).
pub fn gateway_mode(options: &HashMap<String, String>, key: &str) -> GatewayMode {
    options
        .get(key)
        .and_then(|v| GatewayMode::parse(v))
        .unwrap_or_default()
}

/// Checks the bridge driver options tether interprets: the MTU (a number in
/// [`link::MTU_RANGE`]), the gateway modes (isolated only with `internal`), the trusted
/// interfaces and the booleans ([`parse_bool`]).
///
/// Errors: [`DriverError::InvalidOption`] naming the option, the value and what is valid.
pub fn validate_options(
    options: &HashMap<String, String>,
    internal: bool,
) -> Result<(), DriverError> {
    let bad = |m: String| Err(DriverError::InvalidOption(m));
    if let Some(v) = options.get(opt::MTU).filter(|v| !v.is_empty()) {
        let ok = v
            .parse::<u32>()
            .ok()
            .filter(|m| link::MTU_RANGE.contains(m));
        if ok.is_none() {
            return bad(format!(
                "invalid MTU {v:?} in option {}: expected a number from {} to {}",
                opt::MTU,
                link::MTU_RANGE.start(),
                link::MTU_RANGE.end()
            ));
        }
    }
    for key in [opt::GATEWAY_MODE4, opt::GATEWAY_MODE6] {
        if let Some(v) = options.get(key).filter(|v| !v.is_empty()) {
            match GatewayMode::parse(v) {
                None => {
                    return bad(format!(
                        "invalid gateway mode {v:?} in option {key}: expected one of {}",
                        GatewayMode::VALUES.join(", ")
                    ))
                }
                Some(GatewayMode::Isolated) if !internal => {
                    return bad(format!(
                        "gateway mode isolated ({key}) can only be used with --internal"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    if let Some(v) = options.get(opt::TRUSTED).filter(|v| !v.is_empty()) {
        if let Some(i) = v.split(':').find(|i| !valid_ifname(i)) {
            return bad(format!(
                "invalid interface name {i:?} in option {}: expected ':'-separated interface names of 1 to 15 characters",
                opt::TRUSTED
            ));
        }
    }
    for key in [opt::ICC, opt::MASQUERADE] {
        if let Some(v) = options.get(key).filter(|v| !v.is_empty()) {
            if parse_bool(v).is_none() {
                return bad(format!(
                    "invalid value {v:?} for option {key}: expected true or false (or 1, 0, t, f)"
                ));
            }
        }
    }
    Ok(())
}

/// A bridge network as the driver sees it.
#[derive(Clone, Debug)]
pub struct BridgeNetwork {
    /// Bridge interface name (at most 15 bytes).
    pub bridge: String,
    /// Pinned bridge MAC.
    pub mac: [u8; 6],
    /// IPv4 subnet and gateway (the bridge's address); None for an IPv6-only network
    /// (`--ipv4=false --ipv6`).
    pub v4: Option<(Ipv4Net, Ipv4Addr)>,
    /// `--internal`: no masquerade.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc` (default true).
    pub icc: bool,
    /// IPv6 subnet and gateway of a dual-stack network (`--ipv6`).
    pub v6: Option<(ipnet::Ipv6Net, std::net::Ipv6Addr)>,
    /// `com.docker.network.driver.mtu` in bytes (within [`crate::link::MTU_RANGE`]), set
    /// on the bridge and on both ends of every veth; None keeps the kernel's 1500.
    pub mtu: Option<u32>,
    /// `com.docker.network.bridge.enable_ip_masquerade` (default true): masquerade traffic
    /// that leaves the host. Never for `--internal` networks.
    pub masquerade: bool,
    /// `com.docker.network.bridge.gateway_mode_ipv4`.
    pub mode4: GatewayMode,
    /// `com.docker.network.bridge.gateway_mode_ipv6`.
    pub mode6: GatewayMode,
    /// `com.docker.network.bridge.trusted_host_interfaces`, split at ':'.
    pub trusted: Vec<String>,
}

impl BridgeNetwork {
    /// The typed view of a bridge network record: device, pinned MAC, address families
    /// and the options of [`opt`] (unset or unparsable options take Docker's defaults;
    /// [`validate_options`] refused bad ones at create).
    ///
    /// Errors: [`DriverError::Incomplete`] when the record has no bridge name, no MAC or
    /// no address family.
    pub fn from_spec(n: &NetworkSpec) -> Result<BridgeNetwork, DriverError> {
        let missing = |what| DriverError::Incomplete {
            network: n.name.clone(),
            what,
        };
        if n.v4.is_none() && n.v6.is_none() {
            return Err(missing("a bridge network needs an IPv4 or IPv6 pool"));
        }
        let o = &n.options;
        let flag = |k: &str| o.get(k).and_then(|v| parse_bool(v)).unwrap_or(true);
        Ok(BridgeNetwork {
            bridge: n.ifname.clone().ok_or_else(|| missing("no bridge name"))?,
            mac: n.mac.ok_or_else(|| missing("no bridge MAC address"))?,
            v4: n.v4,
            internal: n.internal,
            v6: n.v6,
            icc: flag(opt::ICC),
            masquerade: flag(opt::MASQUERADE),
            mtu: o.get(opt::MTU).and_then(|v| v.parse().ok()),
            mode4: gateway_mode(o, opt::GATEWAY_MODE4),
            mode6: gateway_mode(o, opt::GATEWAY_MODE6),
            trusted: o
                .get(opt::TRUSTED)
                .map(|v| {
                    v.split(':')
                        .filter(|i| !i.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The firewall's view of the network (see [`Firewall::add_network`]).
    pub fn rules(&self) -> NetworkRules {
        NetworkRules {
            bridge: self.bridge.clone(),
            subnet: self.v4.map(|(s, _)| s),
            masquerade: self.masquerade && !self.internal,
            internal: self.internal,
            subnet6: self.v6.map(|(s, _)| s),
            icc: self.icc,
            mode4: self.mode4,
            mode6: self.mode6,
            trusted: self.trusted.clone(),
        }
    }
}

/// The first four bytes of a parked bridge's MAC (locally administered, then "tbp"): how
/// a restarted daemon tells the parked bridges it made from other links.
pub const PARKED_MAC_PREFIX: [u8; 4] = [0x02, 0x74, 0x62, 0x70];

/// The name prefix of a parked bridge (`tbp-` and 8 hex digits).
pub const PARKED_PREFIX: &str = "tbp-";

/// How long a removed network's bridge stays parked for reuse before it is deleted.
pub const PARK_TTL: std::time::Duration = std::time::Duration::from_secs(3);

/// The bridge driver, working in the daemon's network namespace.
///
/// `network rm` parks the bridge instead of deleting it (down, no addresses, renamed
/// `tbp-…` with a marker MAC), and the next `network create` renames a parked bridge
/// rather than creating one: deleting a bridge holds the kernel's rtnl lock for tens of
/// milliseconds (RCU grace periods), and a create behind it waited for all of it. A bridge
/// parked for [`PARK_TTL`] is deleted off the request path.
pub struct BridgeDriver {
    fw: Arc<dyn Firewall>,
    reaper: Arc<Reaper>,
    nl: Netlink,
    parked: Arc<std::sync::Mutex<Vec<String>>>,
}

/// Takes `name` off the parked list (any parked bridge when `name` is None); returns it
/// when it was there.
fn unpark(parked: &std::sync::Mutex<Vec<String>>, name: Option<&str>) -> Option<String> {
    let mut p = parked.lock().unwrap_or_else(|e| e.into_inner());
    let pos = match name {
        Some(n) => p.iter().position(|x| x == n)?,
        None => p.len().checked_sub(1)?,
    };
    Some(p.remove(pos))
}

impl BridgeDriver {
    /// A driver programming `fw`, deleting links through `reaper`, with its own netlink
    /// connection in the daemon's namespace. Must be called inside a tokio runtime.
    ///
    /// Errors: [`DriverError::Link`] when the netlink socket cannot be opened.
    pub fn new(fw: Arc<dyn Firewall>, reaper: Arc<Reaper>) -> Result<BridgeDriver, DriverError> {
        Ok(BridgeDriver {
            fw,
            reaper,
            nl: Netlink::open()?,
            parked: Arc::default(),
        })
    }

    /// Parks the (down) bridge of `n`: its addresses removed, renamed `tbp-…` with a
    /// marker MAC, deleted after [`PARK_TTL`] unless a create takes it first.
    async fn park(&self, n: &BridgeNetwork) -> Result<(), DriverError> {
        let index = self
            .nl
            .index_of(&n.bridge)
            .await?
            .ok_or_else(|| LinkError::NotFound(n.bridge.clone()))?;
        self.nl.flush_addresses(index).await?;
        let r: u32 = rand::random();
        let name = format!("{PARKED_PREFIX}{r:08x}");
        let [a, b, c, d] = PARKED_MAC_PREFIX;
        let mac = [a, b, c, d, (r >> 8) as u8, r as u8];
        self.nl.rename(index, &name, mac).await?;
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.clone());
        let (parked, reaper) = (self.parked.clone(), self.reaper.clone());
        tokio::spawn(async move {
            tokio::time::sleep(PARK_TTL).await;
            if let Some(name) = unpark(&parked, Some(&name)) {
                reaper.delete(&name, name.clone());
            }
        });
        Ok(())
    }

    /// Renames a parked bridge to `n.bridge` with `n`'s MAC and resets its MTU; returns
    /// the link it now is, or None when none was taken. A parked bridge that cannot be
    /// taken is deleted.
    async fn take_parked(&self, n: &BridgeNetwork) -> Option<LinkInfo> {
        let p = unpark(&self.parked, None)?;
        let taken = match self.nl.link_info(&p).await {
            Ok(Some(info)) if info.kind.as_deref() == Some("bridge") => {
                let renamed = self.nl.rename(info.index, &n.bridge, n.mac).await;
                let mtu = n.mtu.unwrap_or(1500);
                let sized = match renamed {
                    Ok(()) if info.mtu != Some(mtu) => {
                        self.nl.set_mtu(info.index, mtu).await.is_ok()
                    }
                    Ok(()) => true,
                    Err(_) => false,
                };
                // what the link is now: the network's name, MAC and MTU
                sized.then_some(LinkInfo {
                    mac: Some(n.mac),
                    mtu: Some(mtu),
                    ..info
                })
            }
            _ => None,
        };
        if taken.is_none() {
            let name = if self.nl.index_of(&p).await.ok().flatten().is_some() {
                p
            } else {
                n.bridge.clone()
            };
            self.reaper.delete(&name, name.clone());
        }
        taken
    }

    /// Creates (or, after a restart, re-adopts) the bridge and its firewall entries.
    async fn create_bridge(&self, n: &BridgeNetwork) -> Result<(), DriverError> {
        if self.reaper.pending(&n.bridge) {
            // A bridge of that name (a reused `com.docker.network.bridge.name`) is still
            // being deleted: wait rather than adopt it.
            let r = self.reaper.clone();
            let _ = tokio::task::spawn_blocking(move || r.flush()).await;
        }
        let t0 = std::time::Instant::now();
        let (current, reused) = match self.nl.link_info(&n.bridge).await? {
            None => match self.take_parked(n).await {
                Some(info) => (Some(info), true),
                None => (None, false),
            },
            found => (found, false),
        };
        let (index, existed) = self
            .nl
            .ensure_bridge(
                &n.bridge,
                n.mac,
                n.v4.filter(|_| n.mode4 != GatewayMode::Isolated)
                    .map(|(subnet, gw)| (gw, subnet.prefix_len())),
                n.mtu,
                current,
            )
            .await?;
        let t_link = t0.elapsed();
        if let (Some((subnet6, gw6)), false) = (n.v6, n.mode6 == GatewayMode::Isolated) {
            let v6 = sysctl::set("net.ipv6.conf.all.forwarding", "1")
                .and_then(|_| sysctl::set_conf("ipv6", &n.bridge, "disable_ipv6", "0"))
                .map_err(|source| DriverError::Sysctl {
                    what: format!("enable IPv6 forwarding and IPv6 on {}", n.bridge),
                    source,
                });
            let v6 = match v6 {
                Ok(()) => self
                    .nl
                    .add_address(index, std::net::IpAddr::V6(gw6), subnet6.prefix_len())
                    .await
                    .map_err(DriverError::from),
                Err(e) => Err(e),
            };
            if let Err(e) = v6 {
                if !existed || reused {
                    let _ = self.nl.delete(&n.bridge).await;
                }
                return Err(e);
            }
        }
        let applied = sysctl::set_conf("ipv4", &n.bridge, "route_localnet", "1")
            .map_err(|source| DriverError::Sysctl {
                what: format!("net.ipv4.conf.{}.route_localnet", n.bridge),
                source,
            })
            .and_then(|_| self.fw.add_network(&n.rules()).map_err(DriverError::from));
        if let Err(e) = applied {
            if !existed || reused {
                let _ = self.nl.delete(&n.bridge).await;
            }
            return Err(e);
        }
        tracing::debug!(
            bridge = %n.bridge,
            link_us = t_link.as_micros() as u64,
            total_us = t0.elapsed().as_micros() as u64,
            "bridge network set up"
        );
        Ok(())
    }

    /// Removes the network's firewall entries and sets its bridge down (which drops its
    /// routes at once), then hands the bridge to the reaper to delete off the request path
    /// (tolerates parts already gone). A link of the bridge's name that is not the bridge
    /// tether made (see [`crate::link::LinkInfo::is_our_bridge`]) is left alone. When the
    /// firewall refuses, the bridge is left as it is: the network stays whole and a
    /// retried delete finishes it.
    async fn delete_bridge(&self, n: &BridgeNetwork) -> Result<(), DriverError> {
        self.fw.remove_network(&n.rules())?;
        if self.ours(n).await? {
            self.nl.set_down_by_name(&n.bridge).await?;
            if let Err(e) = self.park(n).await {
                tracing::debug!(bridge = %n.bridge, error = %e, "not parked: deleting");
                self.reaper.delete(&n.bridge, n.bridge.clone());
            }
        }
        Ok(())
    }

    /// Deletes the network's bridge now, if it is the one tether made (daemon shutdown);
    /// the firewall entries go with the table.
    async fn remove_bridge(&self, n: &BridgeNetwork) -> Result<(), DriverError> {
        if self.ours(n).await? {
            self.nl.delete(&n.bridge).await?;
        }
        Ok(())
    }

    /// Whether the link called `n.bridge` is the bridge tether made for `n` (false when
    /// there is none, or it is a host interface of the same name, which is logged).
    async fn ours(&self, n: &BridgeNetwork) -> Result<bool, DriverError> {
        Ok(match self.nl.link_info(&n.bridge).await? {
            Some(info) if info.is_our_bridge(n.mac) => true,
            Some(info) => {
                tracing::warn!(bridge = %n.bridge, found = %info.describe(), "not tether's bridge: left alone");
                false
            }
            None => false,
        })
    }

    /// Creates an endpoint: veth `ep.host_ifname` on the bridge, `ep.ifname` in the sandbox
    /// with its addresses; `ep.default_route` adds the default route via the gateway.
    async fn join_bridge(
        &self,
        n: &BridgeNetwork,
        ep: &EndpointSpec<'_>,
    ) -> Result<(), DriverError> {
        let EndpointSpec {
            sandbox,
            host_ifname: host_veth,
            ifname,
            mac,
            default_route,
            ..
        } = *ep;
        let br = self
            .nl
            .index_of(&n.bridge)
            .await?
            .ok_or_else(|| LinkError::NotFound(n.bridge.clone()))?;
        self.nl
            .create_veth(host_veth, br, sandbox, ifname, mac, n.mtu)
            .await
            .map_err(|e| match e {
                LinkError::BridgeFull { .. } => LinkError::BridgeFull {
                    bridge: n.bridge.clone(),
                },
                e => e,
            })?;
        let configured = ep
            .configure(
                n.v4.map(|(s, gw)| (s.prefix_len(), default_route.then_some(gw))),
                n.v6.map(|(s, gw6)| (s.prefix_len(), default_route.then_some(gw6))),
            )
            .await;
        if let Err(e) = configured {
            let _ = self.nl.delete(host_veth).await;
            return Err(e.into());
        }
        if !n.icc {
            // the port joins the bridge-family isolation set: no frames between the
            // network's own ports, with or without br_netfilter
            if let Err(e) = self.fw.isolate_port(host_veth, true) {
                let _ = self.nl.delete(host_veth).await;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Removes an endpoint: its port isolation on an `enable_icc=false` network, and its
    /// veth pair. The host side is set down at once (the endpoint carries no more traffic);
    /// with `reap = Some(key)` the pair is then deleted by the reaper, tagged `key` (see
    /// [`Reaper::pending`]); with `None` the caller is about to remove the sandbox, and the
    /// kernel deletes the pair with the namespace, asynchronously.
    async fn leave_bridge(
        &self,
        n: &BridgeNetwork,
        host_veth: &str,
        reap: Option<String>,
    ) -> Result<(), DriverError> {
        let fw = if n.icc {
            Ok(())
        } else {
            self.fw.isolate_port(host_veth, false)
        };
        self.nl.set_down_by_name(host_veth).await?;
        if let Some(key) = reap {
            self.reaper.delete(host_veth, key);
        }
        fw.map_err(DriverError::from)
    }

    /// Adds the network's firewall entries again (after the table was recreated by a
    /// firewall reload); the bridge is left as it is.
    fn restore_bridge_firewall(&self, n: &BridgeNetwork) -> Result<(), DriverError> {
        self.fw.add_network(&n.rules()).map_err(DriverError::from)
    }
}

#[async_trait::async_trait]
impl NetworkDriver for BridgeDriver {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn validate(
        &self,
        options: &HashMap<String, String>,
        internal: bool,
    ) -> Result<(), DriverError> {
        validate_options(options, internal)
    }

    /// Creates (or, after a restart, re-adopts) the bridge and its firewall entries.
    async fn create_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.create_bridge(&BridgeNetwork::from_spec(n)?).await
    }

    /// Removes the network's firewall entries and sets its bridge down (which drops its
    /// routes at once), then hands the bridge to the reaper to delete off the request path.
    async fn delete_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.delete_bridge(&BridgeNetwork::from_spec(n)?).await
    }

    async fn shutdown_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.remove_bridge(&BridgeNetwork::from_spec(n)?).await
    }

    fn restore_firewall(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.restore_bridge_firewall(&BridgeNetwork::from_spec(n)?)
    }

    async fn join(&self, n: &NetworkSpec, ep: &EndpointSpec<'_>) -> Result<(), DriverError> {
        self.join_bridge(&BridgeNetwork::from_spec(n)?, ep).await
    }

    async fn leave(
        &self,
        n: &NetworkSpec,
        host_ifname: &str,
        reap: Option<String>,
    ) -> Result<(), DriverError> {
        self.leave_bridge(&BridgeNetwork::from_spec(n)?, host_ifname, reap)
            .await
    }

    fn reaping(&self, key: &str) -> bool {
        self.reaper.pending(key)
    }

    fn flush(&self) {
        while let Some(p) = unpark(&self.parked, None) {
            self.reaper.delete(&p, p.clone());
        }
        self.reaper.flush();
    }

    /// Deletes parked bridges a daemon that died left behind: links named
    /// [`PARKED_PREFIX`]… that are bridges with the [`PARKED_MAC_PREFIX`] MAC.
    async fn sweep(&self) {
        let Ok(names) = self.nl.link_names().await else {
            return;
        };
        for name in names.into_iter().filter(|n| n.starts_with(PARKED_PREFIX)) {
            if let Ok(Some(info)) = self.nl.link_info(&name).await {
                let marked = info.mac.is_some_and(|m| m[..4] == PARKED_MAC_PREFIX);
                if info.kind.as_deref() == Some("bridge") && marked {
                    self.reaper.delete(&name, name.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_with_their_valid_values() {
        let o = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        assert!(validate_options(&o(opt::MTU, "1400"), false).is_ok());
        for bad in ["67", "65536", "abc", "-1"] {
            let e = validate_options(&o(opt::MTU, bad), false)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(bad) && e.contains("68 to 65535"), "{e}");
        }
        assert!(validate_options(&o(opt::ICC, "False"), false).is_ok());
        let e = validate_options(&o(opt::ICC, "maybe"), false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("maybe") && e.contains(opt::ICC), "{e}");
        let iso = o(opt::GATEWAY_MODE4, "isolated");
        assert!(validate_options(&iso, true).is_ok());
        assert!(validate_options(&iso, false).is_err_and(|e| e.is_input()));
    }

    #[test]
    fn typed_view_needs_a_device_a_mac_and_a_family() {
        let mut n = NetworkSpec {
            name: "n1".into(),
            ifname: Some("tb-x".into()),
            mac: Some([2, 0, 0, 0, 0, 1]),
            v4: Some((
                "10.9.0.0/24".parse().unwrap_or_default(),
                Ipv4Addr::new(10, 9, 0, 1),
            )),
            options: HashMap::from([(opt::ICC.to_string(), "false".to_string())]),
            ..Default::default()
        };
        let b = BridgeNetwork::from_spec(&n).ok();
        assert_eq!(
            b.as_ref().map(|b| (b.icc, b.masquerade)),
            Some((false, true))
        );
        n.v4 = None;
        let e = BridgeNetwork::from_spec(&n).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("network n1: a bridge network needs an IPv4 or IPv6 pool")
        );
    }
}
