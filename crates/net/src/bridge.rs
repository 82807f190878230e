//! The bridge driver: a Linux bridge per network with the gateway address, a veth pair per
//! endpoint (host side enslaved to the bridge, `ethN` in the sandbox), masquerading and
//! isolation through the [`Firewall`]. Each operation validates first, applies, and undoes
//! what it applied when a later step fails.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use ipnet::Ipv4Net;

use crate::firewall::{Firewall, FirewallError, GatewayMode, NetworkRules};
use crate::link::{LinkError, Netlink, Reaper};
use crate::sysctl;

/// Driver errors.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A netlink step failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The firewall rejected a change.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// A sysctl could not be set.
    #[error("{0}")]
    Sysctl(std::io::Error),
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
    fn rules(&self) -> NetworkRules {
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

/// Enables IPv6 on the sandbox's `ifname` (a namespace may start with it disabled).
fn sysctl_in_sandbox(sandbox: &Path, ifname: &str) -> Result<(), LinkError> {
    let key = format!("net.ipv6.conf.{ifname}.disable_ipv6");
    crate::netns::run_in(sandbox, move || sysctl::set(&key, "0"))?.map_err(|source| LinkError::Io {
        what: "enable IPv6 in the sandbox".into(),
        source,
    })
}

/// The bridge driver, working in the daemon's network namespace.
pub struct BridgeDriver {
    fw: Arc<dyn Firewall>,
    reaper: Arc<Reaper>,
}

impl BridgeDriver {
    /// A driver programming `fw`, deleting links through `reaper`.
    pub fn new(fw: Arc<dyn Firewall>, reaper: Arc<Reaper>) -> BridgeDriver {
        BridgeDriver { fw, reaper }
    }

    /// Creates (or, after a restart, re-adopts) the bridge and its firewall entries.
    pub async fn create_network(&self, nl: &Netlink, n: &BridgeNetwork) -> Result<(), DriverError> {
        if self.reaper.pending(&n.bridge) {
            // A bridge of that name (a reused `com.docker.network.bridge.name`) is still
            // being deleted: wait rather than adopt it.
            let r = self.reaper.clone();
            let _ = tokio::task::spawn_blocking(move || r.flush()).await;
        }
        let t0 = std::time::Instant::now();
        let (index, existed) = nl
            .ensure_bridge(
                &n.bridge,
                n.mac,
                n.v4.filter(|_| n.mode4 != GatewayMode::Isolated)
                    .map(|(subnet, gw)| (gw, subnet.prefix_len())),
                n.mtu,
            )
            .await?;
        let t_link = t0.elapsed();
        if let (Some((subnet6, gw6)), false) = (n.v6, n.mode6 == GatewayMode::Isolated) {
            let v6 = sysctl::set("net.ipv6.conf.all.forwarding", "1")
                .and_then(|_| sysctl::set(&format!("net.ipv6.conf.{}.disable_ipv6", n.bridge), "0"))
                .map_err(DriverError::Sysctl);
            let v6 = match v6 {
                Ok(()) => nl
                    .add_address(index, std::net::IpAddr::V6(gw6), subnet6.prefix_len())
                    .await
                    .map_err(DriverError::from),
                Err(e) => Err(e),
            };
            if let Err(e) = v6 {
                if !existed {
                    let _ = nl.delete(&n.bridge).await;
                }
                return Err(e);
            }
        }
        let applied = sysctl::set(&format!("net.ipv4.conf.{}.route_localnet", n.bridge), "1")
            .map_err(DriverError::Sysctl)
            .and_then(|_| self.fw.add_network(&n.rules()).map_err(DriverError::from));
        if let Err(e) = applied {
            if !existed {
                let _ = nl.delete(&n.bridge).await;
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
    /// tether made (see [`crate::link::LinkInfo::is_our_bridge`]) is left alone.
    pub async fn delete_network(&self, nl: &Netlink, n: &BridgeNetwork) -> Result<(), DriverError> {
        let fw = self.fw.remove_network(&n.rules());
        if self.ours(nl, n).await? {
            nl.set_down_by_name(&n.bridge).await?;
            self.reaper.delete(&n.bridge, n.bridge.clone());
        }
        fw.map_err(DriverError::from)
    }

    /// Deletes the network's bridge now, if it is the one tether made (daemon shutdown);
    /// the firewall entries go with the table.
    pub async fn remove_bridge(&self, nl: &Netlink, n: &BridgeNetwork) -> Result<(), DriverError> {
        if self.ours(nl, n).await? {
            nl.delete(&n.bridge).await?;
        }
        Ok(())
    }

    /// Whether the link called `n.bridge` is the bridge tether made for `n` (false when
    /// there is none, or it is a host interface of the same name, which is logged).
    async fn ours(&self, nl: &Netlink, n: &BridgeNetwork) -> Result<bool, DriverError> {
        Ok(match nl.link_info(&n.bridge).await? {
            Some(info) if info.is_our_bridge(n.mac) => true,
            Some(info) => {
                tracing::warn!(bridge = %n.bridge, found = %info.describe(), "not tether's bridge: left alone");
                false
            }
            None => false,
        })
    }

    /// Creates an endpoint: veth `host_veth` on the bridge, `ifname` in `sandbox` with `ip`;
    /// `default_route` adds the default route via the gateway (the first network's).
    #[allow(clippy::too_many_arguments)]
    pub async fn join(
        &self,
        nl: &Netlink,
        n: &BridgeNetwork,
        sandbox: &Path,
        sandbox_nl: &Netlink,
        host_veth: &str,
        ifname: &str,
        ip: Option<Ipv4Addr>,
        ip6: Option<std::net::Ipv6Addr>,
        mac: [u8; 6],
        default_route: bool,
    ) -> Result<(), DriverError> {
        let br = nl
            .index_of(&n.bridge)
            .await?
            .ok_or_else(|| LinkError::NotFound(n.bridge.clone()))?;
        nl.create_veth(host_veth, br, sandbox, ifname, mac, n.mtu)
            .await
            .map_err(|e| match e {
                LinkError::BridgeFull { .. } => LinkError::BridgeFull {
                    bridge: n.bridge.clone(),
                },
                e => e,
            })?;
        let mut configured = match (ip, n.v4) {
            (Some(ip), Some((subnet, gw))) => {
                sandbox_nl
                    .configure_endpoint(
                        ifname,
                        ip,
                        subnet.prefix_len(),
                        default_route.then_some(gw),
                    )
                    .await
            }
            _ => sandbox_nl.set_up_by_name(ifname).await,
        };
        if let (Ok(()), Some(ip6), Some((subnet6, gw6))) = (&configured, ip6, n.v6) {
            if let Err(e) = sysctl_in_sandbox(sandbox, ifname) {
                configured = Err(e);
            } else {
                configured = sandbox_nl
                    .configure_endpoint6(
                        ifname,
                        ip6,
                        subnet6.prefix_len(),
                        default_route.then_some(gw6),
                    )
                    .await;
            }
        }
        if let Err(e) = configured {
            let _ = nl.delete(host_veth).await;
            return Err(e.into());
        }
        if !n.icc {
            // the port joins the bridge-family isolation set: no frames between the
            // network's own ports, with or without br_netfilter
            if let Err(e) = self.fw.isolate_port(host_veth, true) {
                let _ = nl.delete(host_veth).await;
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
    pub async fn leave(
        &self,
        nl: &Netlink,
        n: &BridgeNetwork,
        host_veth: &str,
        reap: Option<String>,
    ) -> Result<(), DriverError> {
        let fw = if n.icc {
            Ok(())
        } else {
            self.fw.isolate_port(host_veth, false)
        };
        nl.set_down_by_name(host_veth).await?;
        if let Some(key) = reap {
            self.reaper.delete(host_veth, key);
        }
        fw.map_err(DriverError::from)
    }

    /// Adds the network's firewall entries again (after the table was recreated by a
    /// firewall reload); the bridge is left as it is.
    pub fn restore_firewall(&self, n: &BridgeNetwork) -> Result<(), DriverError> {
        self.fw.add_network(&n.rules()).map_err(DriverError::from)
    }

    /// Whether a deletion tagged `key` (see [`BridgeDriver::leave`]) is still under way.
    pub fn reaping(&self, key: &str) -> bool {
        self.reaper.pending(key)
    }

    /// Blocks until every queued link deletion is done.
    pub fn flush(&self) {
        self.reaper.flush();
    }
}
