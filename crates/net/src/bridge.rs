//! The bridge driver: a Linux bridge per network with the gateway address, a veth pair per
//! endpoint (host side enslaved to the bridge, `ethN` in the sandbox), masquerading and
//! isolation through the [`Firewall`]. Each operation validates first, applies, and undoes
//! what it applied when a later step fails.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use ipnet::Ipv4Net;

use crate::firewall::{Firewall, FirewallError, NetworkRules};
use crate::link::{LinkError, Netlink};
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
    /// Subnet.
    pub subnet: Ipv4Net,
    /// Gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// `--internal`: no masquerade.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc` (default true).
    pub icc: bool,
}

impl BridgeNetwork {
    fn rules(&self) -> NetworkRules {
        NetworkRules {
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            masquerade: !self.internal,
            internal: self.internal,
            icc: self.icc,
        }
    }
}

/// The bridge driver, working in the daemon's network namespace.
pub struct BridgeDriver {
    fw: Arc<dyn Firewall>,
}

impl BridgeDriver {
    /// A driver programming `fw`.
    pub fn new(fw: Arc<dyn Firewall>) -> BridgeDriver {
        BridgeDriver { fw }
    }

    /// Creates (or, after a restart, re-adopts) the bridge and its firewall entries.
    pub async fn create_network(&self, nl: &Netlink, n: &BridgeNetwork) -> Result<(), DriverError> {
        let existed = nl.index_of(&n.bridge).await?.is_some();
        nl.ensure_bridge(&n.bridge, n.mac, n.gateway, n.subnet.prefix_len())
            .await?;
        let applied = sysctl::set(&format!("net.ipv4.conf.{}.route_localnet", n.bridge), "1")
            .map_err(DriverError::Sysctl)
            .and_then(|_| self.fw.add_network(&n.rules()).map_err(DriverError::from));
        if let Err(e) = applied {
            if !existed {
                let _ = nl.delete(&n.bridge).await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Deletes the bridge and its firewall entries (tolerates parts already gone).
    pub async fn delete_network(&self, nl: &Netlink, n: &BridgeNetwork) -> Result<(), DriverError> {
        let fw = self.fw.remove_network(&n.rules());
        nl.delete(&n.bridge).await?;
        fw.map_err(DriverError::from)
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
        ip: Ipv4Addr,
        mac: [u8; 6],
        default_route: bool,
    ) -> Result<(), DriverError> {
        let br = nl
            .index_of(&n.bridge)
            .await?
            .ok_or_else(|| LinkError::NotFound(n.bridge.clone()))?;
        nl.create_veth(host_veth, br, sandbox, ifname, mac).await?;
        let gw = default_route.then_some(n.gateway);
        if let Err(e) = sandbox_nl
            .configure_endpoint(ifname, ip, n.subnet.prefix_len(), gw)
            .await
        {
            let _ = nl.delete(host_veth).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Removes an endpoint's veth pair (deleting the host side deletes both) and, on an
    /// `enable_icc=false` network, its port isolation.
    pub async fn leave(
        &self,
        nl: &Netlink,
        n: &BridgeNetwork,
        host_veth: &str,
    ) -> Result<(), DriverError> {
        let fw = if n.icc {
            Ok(())
        } else {
            self.fw.isolate_port(host_veth, false)
        };
        nl.delete(host_veth).await?;
        fw.map_err(DriverError::from)
    }
}
