//! Container names from the host: the embedded DNS also listens on each user-defined
//! network's gateway address (port 53, UDP and TCP, in the host's namespace) and answers
//! the host's own queries for `NAME.NETWORK` (and `NAME` where only one network has it),
//! with every network in scope; other names are forwarded to the daemon's upstreams.
//! Containers may not use it: the firewall drops what reaches it from a bridge.
//! `tether network dns-setup` tells the host's resolver (systemd-resolved) to send each
//! network's names there.

use std::net::{Ipv4Addr, SocketAddr};

use crate::state::Network;
use crate::Engine;

impl Engine {
    /// Starts the host's DNS on `n`'s gateway (user-defined networks with an IPv4
    /// gateway and a bridge address, i.e. not gateway mode isolated) and registers the
    /// network's name for `NAME.NETWORK` lookups. A port that cannot be bound (another
    /// DNS server holds it) is logged and skipped: container DNS is not affected.
    pub(crate) fn serve_host_dns(&self, n: &Network) {
        if !n.dns {
            return;
        }
        self.dns.set_network_name(&n.id, &n.name);
        let Some(gw) = n.pool.as_ref().map(|p| p.gateway) else {
            return;
        };
        if crate::networks::gateway_mode(n, crate::networks::opt::GATEWAY_MODE4)
            == tether_net::firewall::GatewayMode::Isolated
        {
            return;
        }
        if self.host_dns_lock().contains_key(&n.id) {
            return;
        }
        let addr = SocketAddr::from((gw, 53));
        let bound = std::net::UdpSocket::bind(addr)
            .and_then(|u| std::net::TcpListener::bind(addr).map(|t| (u, t)));
        let (udp, tcp) = match bound {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(network = %n.name, %addr, error = %e, "no DNS for the host on this network");
                return;
            }
        };
        let handle = match self.dns.serve(
            tether_net::dns::HOST_ASKER.to_string(),
            udp,
            tcp,
            Vec::new(),
            None,
        ) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(network = %n.name, error = %e, "no DNS for the host on this network");
                return;
            }
        };
        if let Err(e) = self.fw.guard_host_dns(gw, true) {
            tracing::warn!(network = %n.name, error = %e, "host DNS not guarded from containers: not served");
            return;
        }
        self.host_dns_lock().insert(n.id.clone(), (gw, handle));
    }

    /// Stops the host's DNS of network `id` and forgets the network's names.
    pub(crate) fn stop_host_dns(&self, id: &str) {
        if let Some((gw, h)) = self.host_dns_lock().remove(id) {
            h.stop();
            if let Err(e) = self.fw.guard_host_dns(gw, false) {
                tracing::warn!(%gw, error = %e, "removing the host DNS guard");
            }
        }
        self.dns.remove_network(id);
    }

    /// The gateway addresses where the host's DNS listens (for a firewall reload).
    pub(crate) fn host_dns_addresses(&self) -> Vec<Ipv4Addr> {
        self.host_dns_lock().values().map(|(gw, _)| *gw).collect()
    }

    fn host_dns_lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, (Ipv4Addr, tether_net::dns::ServeHandle)>,
    > {
        self.host_dns.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where the host's DNS answers for one network (GET /tether/v1/dns-setup).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostDns {
    /// The network's name: the domain its containers answer under (`NAME.NETWORK`).
    pub network: String,
    /// Its bridge interface (the link systemd-resolved's setting applies to).
    pub bridge: String,
    /// The gateway address the DNS listens on.
    pub gateway: Ipv4Addr,
}

impl Engine {
    /// The networks whose names the host can resolve, with where to ask.
    pub async fn host_dns_setup(&self) -> Vec<HostDns> {
        let st = self.state.lock().await;
        let serving = self.host_dns_lock();
        let mut v: Vec<HostDns> = st
            .networks
            .values()
            .filter_map(|n| {
                let (gw, _) = serving.get(&n.id)?;
                Some(HostDns {
                    network: n.name.clone(),
                    bridge: n.bridge.clone()?,
                    gateway: *gw,
                })
            })
            .collect();
        v.sort_by(|a, b| a.network.cmp(&b.network));
        v
    }
}
