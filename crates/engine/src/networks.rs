//! Network objects: the predefined `bridge`, `host` and `none` networks and user-defined
//! bridge networks (Docker API "Network" endpoints: create, inspect, list, remove, prune,
//! connect, disconnect).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use bollard_stubs::models::NetworkCreateRequest;
use ipnet::Ipv4Net;
use tether_net::bridge::BridgeNetwork;
use tether_net::driver::NetworkSpec;
use tether_net::firewall::GatewayMode;
use tether_net::ipam::{self, Pool};
use tether_net::link;

use crate::state::{self, Network};
use crate::{Engine, EngineError, State};

/// Name of the default bridge interface.
pub const DEFAULT_BRIDGE: &str = "tether0";

pub use tether_net::bridge::{opt, parse_bool, valid_ifname};

/// The driver-neutral view of a network record that drivers take.
pub fn spec_of(n: &Network) -> NetworkSpec {
    NetworkSpec {
        id: n.id.clone(),
        name: n.name.clone(),
        ifname: n.bridge.clone(),
        mac: n.bridge_mac,
        v4: n.pool.as_ref().map(|p| (p.subnet, p.gateway)),
        v6: n.pool6.as_ref().map(|p| (p.subnet, p.gateway)),
        internal: n.internal,
        options: n.options.clone(),
    }
}

/// The bridge driver's typed view of a network, None for other drivers.
pub fn bridge_of(n: &Network) -> Option<BridgeNetwork> {
    if n.driver != "bridge" {
        return None;
    }
    BridgeNetwork::from_spec(&spec_of(n)).ok()
}

/// A network's gateway mode for the option `key` (nat when unset).
pub fn gateway_mode(n: &Network, key: &str) -> GatewayMode {
    tether_net::bridge::gateway_mode(&n.options, key)
}

/// Whether `name` can name a network: Docker takes any non-blank name (spaces too); tether
/// refuses only what would break a URL path or a log line: '/', control characters, and
/// more than 255 bytes.
pub fn valid_network_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| c == '/' || c.is_control())
}

/// Whether `name` is a valid network or container name (Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub fn valid_name(name: &str) -> bool {
    let mut ch = name.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphanumeric())
        && ch.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl State {
    /// Finds a network by full id, name, or unique id prefix.
    pub(crate) fn network(&self, key: &str) -> Result<&Network, EngineError> {
        if let Some(n) = self.networks.get(key) {
            return Ok(n);
        }
        if let Some(n) = self.networks.values().find(|n| n.name == key) {
            return Ok(n);
        }
        let hits: Vec<&Network> = self
            .networks
            .values()
            .filter(|n| !key.is_empty() && n.id.starts_with(key))
            .collect();
        match hits.len() {
            1 => Ok(hits[0]),
            0 => Err(EngineError::NotFound(format!("network {key} not found"))),
            _ => Err(EngineError::InvalidParam(format!(
                "network {key} is ambiguous ({} matches): give more of its id or its name",
                hits.len()
            ))),
        }
    }

    /// Names of containers with an endpoint on network `id`: running ones, ones being
    /// started (their endpoints exist before the runtime runs them) and ones whose
    /// endpoint a `network connect` is joining.
    pub(crate) fn active_on(&self, id: &str) -> Vec<String> {
        let joining: HashSet<&str> = self
            .joining
            .values()
            .filter(|j| j.network == id)
            .map(|j| j.container.as_str())
            .collect();
        self.containers
            .values()
            .filter(|c| {
                joining.contains(c.id.as_str())
                    || c.attachments.iter().any(|(n, a)| {
                        a.network_id == id
                            && (c.state.status == "running" || c.endpoints.contains_key(n))
                    })
            })
            .map(|c| c.name.clone())
            .collect()
    }
}

/// Whether network `n` may be removed now: not a predefined one, no active endpoint (a
/// running container's, or one being joined), not being removed already.
///
/// Errors: 409 naming the reason (and the containers with endpoints).
fn removable(st: &State, n: &Network) -> Result<(), EngineError> {
    if n.builtin {
        return Err(EngineError::Conflict(format!(
            "{} is a pre-defined network and cannot be removed",
            n.name
        )));
    }
    if st.removing.contains(&n.id) {
        return Err(EngineError::Conflict(format!(
            "network {} is being removed",
            n.name
        )));
    }
    let active = st.active_on(&n.id);
    if !active.is_empty() {
        return Err(EngineError::Conflict(format!(
            "error while removing network: network {} id {} has active endpoints ({}); stop or disconnect them first",
            n.name,
            n.id,
            active.join(", ")
        )));
    }
    Ok(())
}

pub(crate) fn parse_net(s: &str, what: &str) -> Result<Ipv4Net, EngineError> {
    s.parse::<Ipv4Net>().map_err(|_| {
        EngineError::InvalidParam(format!(
            "invalid {what} {s:?}: expected an IPv4 CIDR such as 172.30.0.0/16"
        ))
    })
}

pub(crate) fn parse_ip(s: &str, what: &str) -> Result<Ipv4Addr, EngineError> {
    s.parse::<Ipv4Addr>().map_err(|_| {
        EngineError::InvalidParam(format!(
            "invalid {what} {s:?}: expected an IPv4 address such as 172.30.0.1"
        ))
    })
}

fn ipam_err(e: ipam::IpamError) -> EngineError {
    EngineError::InvalidParam(e.to_string())
}

/// The address pools a network create asks for (`IPAM.Config` of Docker's
/// `NetworkCreateRequest`): at most one IPv4 entry (subnet, gateway, ip-range) and
/// one IPv6 entry (subnet, gateway). Entries without a subnet are skipped.
#[derive(Debug, Default)]
pub(crate) struct IpamRequest {
    pub(crate) subnet: Option<Ipv4Net>,
    pub(crate) gateway: Option<Ipv4Addr>,
    pub(crate) range: Option<Ipv4Net>,
    pub(crate) subnet6: Option<(ipnet::Ipv6Net, Option<std::net::Ipv6Addr>)>,
}

impl IpamRequest {
    /// Parses `IPAM.Config`.
    ///
    /// # Errors
    /// [`EngineError::InvalidParam`] naming the bad subnet, gateway or ip-range, a
    /// gateway or range without a subnet, or a second subnet of one family.
    pub(crate) fn parse(
        ipam: Option<&bollard_stubs::models::Ipam>,
    ) -> Result<IpamRequest, EngineError> {
        let mut out = IpamRequest::default();
        for c in ipam.and_then(|i| i.config.clone()).unwrap_or_default() {
            let Some(s) = c.subnet.as_deref().filter(|s| !s.is_empty()) else {
                if c.gateway.is_some() || c.ip_range.is_some() {
                    return Err(EngineError::InvalidParam(
                        "--gateway and --ip-range need a --subnet".into(),
                    ));
                }
                continue;
            };
            if s.contains(':') {
                if out.subnet6.is_some() {
                    return Err(EngineError::InvalidParam(
                        "only one IPv6 --subnet per network is supported".into(),
                    ));
                }
                let net6 = s.parse::<ipnet::Ipv6Net>().map_err(|_| {
                    EngineError::InvalidParam(format!(
                        "invalid subnet {s:?}: expected an IPv6 CIDR such as fd00:1:2:3::/64"
                    ))
                })?;
                let gw6 = c
                    .gateway
                    .as_deref()
                    .filter(|g| !g.is_empty())
                    .map(|g| {
                        g.parse::<std::net::Ipv6Addr>().map_err(|_| {
                            EngineError::InvalidParam(format!("invalid gateway {g:?} for IPv6 subnet {s}: expected an IPv6 address"))
                        })
                    })
                    .transpose()?;
                out.subnet6 = Some((net6, gw6));
                continue;
            }
            if out.subnet.is_some() {
                return Err(EngineError::InvalidParam(
                    "only one IPv4 --subnet per network is supported".into(),
                ));
            }
            out.subnet = Some(parse_net(s, "subnet")?);
            out.gateway = c
                .gateway
                .as_deref()
                .filter(|g| !g.is_empty())
                .map(|g| parse_ip(g, "gateway"))
                .transpose()?;
            out.range = c
                .ip_range
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(|r| parse_net(r, "ip-range"))
                .transpose()?;
        }
        Ok(out)
    }
}

/// The IPv6 pool of a new `--ipv6` network: the given `--subnet` (with its `--gateway`)
/// or a random ULA /64 (RFC 4193) that overlaps none of `in_use6` (network name, subnet),
/// checked against the host's own addresses `host` and the other networks.
///
/// Errors: [`EngineError::InvalidParam`] naming the subnet that overlaps, or the bad
/// gateway or prefix length.
pub(crate) fn pick_pool6(
    subnet6: Option<(ipnet::Ipv6Net, Option<std::net::Ipv6Addr>)>,
    in_use6: &[(String, ipnet::Ipv6Net)],
    host: &[(String, std::net::IpAddr)],
) -> Result<ipam::Pool6, EngineError> {
    let (s6, gw6) = match subnet6 {
        Some(x) => x,
        None => loop {
            let s6 = ipam::random_ula64();
            if ipam::check_overlap6(s6, in_use6.iter().map(|(n, s)| (n.as_str(), *s))).is_ok() {
                break (s6, None);
            }
        },
    };
    check_subnet(ipnet::IpNet::V6(s6.trunc()), host)?;
    ipam::check_overlap6(s6.trunc(), in_use6.iter().map(|(n, s)| (n.as_str(), *s)))
        .map_err(|e| EngineError::InvalidParam(e.to_string()))?;
    ipam::Pool6::new(s6, gw6).map_err(|e| EngineError::InvalidParam(e.to_string()))
}

/// Refuses a subnet in a reserved block or holding one of the host's own addresses
/// (`host`: interface and address pairs, tether's bridges left out).
pub(crate) fn check_subnet(
    subnet: ipnet::IpNet,
    host: &[(String, std::net::IpAddr)],
) -> Result<(), EngineError> {
    ipam::check_reserved(subnet).map_err(ipam_err)?;
    ipam::check_host_addresses(subnet, host.iter().map(|(i, a)| (i.as_str(), *a))).map_err(ipam_err)
}

impl Engine {
    /// The driver of network `n`. Errors: 400 naming the driver when none is registered
    /// under that name (a record written by another engine).
    pub(crate) fn driver_of(
        &self,
        n: &Network,
    ) -> Result<std::sync::Arc<dyn tether_net::driver::NetworkDriver>, EngineError> {
        Ok(self.drivers.get(&n.driver)?.clone())
    }

    /// The IPAM of network `n`, chosen by its scope (its driver's: global for networks kept
    /// in the cluster store, local otherwise). Errors: 400 naming the missing cluster store
    /// for a global network on a daemon without one.
    pub(crate) fn ipam_of(
        &self,
        n: &Network,
    ) -> Result<std::sync::Arc<dyn tether_net::ipamapi::Ipam>, EngineError> {
        let scope = if self.is_global(n) {
            tether_net::driver::Scope::Global
        } else {
            tether_net::driver::Scope::Local
        };
        self.ipams
            .get(scope)
            .cloned()
            .ok_or_else(|| crate::cluster::no_store(&n.driver))
    }

    pub(crate) async fn ensure_predefined(&self) -> Result<(), EngineError> {
        let mut st = self.state.lock().await;
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if st.networks.values().any(|n| n.name == name) {
                continue;
            }
            let (bridge, mac, pool) = if driver == "bridge" {
                let pool =
                    Pool::new(ipam::default_bridge_subnet(), None, None).map_err(ipam_err)?;
                (
                    Some(DEFAULT_BRIDGE.to_string()),
                    Some(link::random_mac()),
                    Some(pool),
                )
            } else {
                (None, None, None)
            };
            let mut options = HashMap::new();
            if driver == "bridge" {
                options.insert(
                    "com.docker.network.bridge.default_bridge".into(),
                    "true".into(),
                );
                options.insert(
                    "com.docker.network.bridge.name".into(),
                    DEFAULT_BRIDGE.into(),
                );
                options.insert("com.docker.network.bridge.enable_icc".into(), "true".into());
                options.insert(
                    "com.docker.network.bridge.enable_ip_masquerade".into(),
                    "true".into(),
                );
            }
            let n = Network {
                id: state::new_id(),
                name: name.into(),
                driver: driver.into(),
                created: state::now(),
                internal: false,
                enable_ipv6: false,
                enable_ipv4: true,
                attachable: false,
                labels: HashMap::new(),
                options,
                bridge,
                bridge_mac: mac,
                pool,
                pool6: None,
                subnet_given: true,
                dns: false,
                builtin: true,
            };
            self.save_network(&n)?;
            st.networks.insert(n.id.clone(), n);
        }
        Ok(())
    }

    /// POST /networks/create. Validates name, driver and IPAM config, picks a free subnet
    /// when none is given, creates the bridge and firewall entries; on failure nothing is
    /// left behind. Returns the new network's id.
    ///
    /// Errors: 409 name taken; 400 bad name, driver, subnet, gateway, ip-range, overlap.
    pub async fn create_network(
        &self,
        req: NetworkCreateRequest,
    ) -> Result<(String, Option<String>), EngineError> {
        let name = req.name.clone();
        if !valid_network_name(&name) {
            return Err(EngineError::InvalidParam(format!(
                "invalid network name {name:?}: give 1 to 255 printable characters without '/' (spaces are fine, as in Docker)"
            )));
        }
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        if matches!(driver.as_str(), "host" | "null") {
            return Err(EngineError::InvalidParam(format!(
                "only one instance of {driver:?} network is allowed: use the predefined network {}",
                if driver == "host" { "host" } else { "none" }
            )));
        }
        let drv = self.drivers.get(&driver)?.clone();
        drv.validate(
            &req.options.clone().unwrap_or_default(),
            req.internal.unwrap_or(false),
        )?;
        if drv.scope() == tether_net::driver::Scope::Global {
            return self.create_global_network(&req, name, driver).await;
        }
        let mut st = self.state.lock().await;
        if st.known_networks().any(|n| n.name == name) {
            return Err(EngineError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        // the host's own addresses, less those on tether's bridges
        let ours: std::collections::HashSet<&str> = st
            .known_networks()
            .filter_map(|n| n.bridge.as_deref())
            .collect();
        let host: Vec<(String, std::net::IpAddr)> = self
            .nl
            .addresses()
            .await?
            .into_iter()
            .filter(|(i, _, _)| !ours.contains(i.as_str()))
            .map(|(i, a, _)| (i, a))
            .collect();
        let IpamRequest {
            subnet,
            gateway,
            range,
            subnet6,
        } = IpamRequest::parse(req.ipam.as_ref())?;
        let subnet_given = subnet.is_some();
        let enable_ipv4 = req.enable_ipv4.unwrap_or(true);
        if !enable_ipv4 {
            if !req.enable_ipv6.unwrap_or(false) {
                return Err(EngineError::InvalidParam(format!(
                    "network {name} would have no address family: --ipv4=false needs --ipv6"
                )));
            }
            if let Some(s) = subnet {
                return Err(EngineError::InvalidParam(format!(
                    "IPv4 subnet {s} given for network {name} created with --ipv4=false"
                )));
            }
        }
        let in_use: Vec<(String, Ipv4Net)> = st
            .known_networks()
            .filter_map(|n| n.pool.as_ref().map(|p| (n.name.clone(), p.subnet)))
            .collect();
        let subnet = match subnet {
            _ if !enable_ipv4 => None,
            Some(s) => {
                let s = s.trunc();
                check_subnet(ipnet::IpNet::V4(s), &host)?;
                ipam::check_overlap(s, in_use.iter().map(|(n, s)| (n.as_str(), *s)))
                    .map_err(ipam_err)?;
                Some(s)
            }
            None => {
                // neither another network's subnet nor one holding a host address
                let used: Vec<Ipv4Net> = in_use
                    .iter()
                    .map(|(_, s)| *s)
                    .chain(host.iter().filter_map(|(_, a)| match a {
                        std::net::IpAddr::V4(a) => Ipv4Net::new(*a, 32).ok(),
                        _ => None,
                    }))
                    .collect();
                Some(ipam::pick_subnet(&used).map_err(ipam_err)?)
            }
        };
        let pool = subnet
            .map(|s| Pool::new(s, gateway, range))
            .transpose()
            .map_err(ipam_err)?;
        let enable_ipv6 = req.enable_ipv6.unwrap_or(false);
        if subnet6.is_some() && !enable_ipv6 {
            return Err(EngineError::InvalidParam("an IPv6 --subnet was given without --ipv6: add --ipv6 to make the network dual-stack".into()));
        }
        let pool6 = if enable_ipv6 {
            let in_use6: Vec<(String, ipnet::Ipv6Net)> = st
                .known_networks()
                .filter_map(|n| n.pool6.as_ref().map(|p| (n.name.clone(), p.subnet)))
                .collect();
            Some(pick_pool6(subnet6, &in_use6, &host)?)
        } else {
            None
        };
        let id = state::new_id();
        let mut options = req.options.clone().unwrap_or_default();
        let bridge = match options.get(opt::BRIDGE_NAME) {
            Some(b) if !b.is_empty() => {
                if b.len() > 15
                    || b == "."
                    || b == ".."
                    || !b
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err(EngineError::InvalidParam(format!(
                        "invalid bridge name {b:?}: at most 15 characters of [a-zA-Z0-9_.-], not \".\" or \"..\""
                    )));
                }
                if st
                    .known_networks()
                    .any(|n| n.bridge.as_deref() == Some(b.as_str()))
                {
                    return Err(EngineError::Conflict(format!(
                        "bridge name {b} is used by another network"
                    )));
                }
                b.clone()
            }
            _ => format!("tb-{}", &id[..12]),
        };
        options.retain(|_, v| !v.is_empty());
        let n = Network {
            id: id.clone(),
            name,
            driver,
            created: state::now(),
            internal: req.internal.unwrap_or(false),
            enable_ipv6,
            enable_ipv4,
            attachable: req.attachable.unwrap_or(false),
            labels: req.labels.clone().unwrap_or_default(),
            options,
            bridge: Some(bridge),
            bridge_mac: Some(link::random_mac()),
            pool,
            pool6,
            subnet_given,
            dns: true,
            builtin: false,
        };
        // the kernel's part (bridge, firewall) and the record without the engine's lock:
        // the network holds its name, subnets and bridge name meanwhile
        st.creating.insert(id.clone(), n.clone());
        let rebuilds = self.fw_rebuilds.load(std::sync::atomic::Ordering::SeqCst);
        drop(st);
        let spec = spec_of(&n);
        let made = match drv.create_network(&spec).await {
            Ok(()) => match self.save_network(&n) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = drv.delete_network(&spec).await;
                    Err(e)
                }
            },
            Err(e) => Err(EngineError::from(e)),
        };
        let mut st = self.state.lock().await;
        st.creating.remove(&id);
        // A firewall rebuild meanwhile took the records as they were then: it may have
        // added this network's entries before a failure (they would be left) or missed
        // them before the driver added them (they would be gone). Rebuild again from the
        // records as they are now.
        let rebuilt = self.fw_rebuilds.load(std::sync::atomic::Ordering::SeqCst) != rebuilds;
        if made.is_ok() {
            st.networks.insert(id.clone(), n.clone());
        }
        if rebuilt {
            if let Err(e) = self.resync_firewall(&st) {
                tracing::warn!(network = %n.name, error = %e, "rebuilding the firewall after a create that ran beside a rebuild");
            }
        }
        made?;
        self.emit(
            "network",
            "create",
            &id,
            HashMap::from([
                ("name".to_string(), n.name.clone()),
                ("type".to_string(), n.driver.clone()),
            ]),
        );
        self.serve_host_dns(&n);
        Ok((id, None))
    }

    /// DELETE /networks/{id}. Errors: 404; 403-like 409 for predefined networks, active
    /// endpoints or a removal already under way; 500 when the driver failed and the
    /// network's device is still there (the network is kept).
    ///
    /// The driver's steps (a local network's firewall entries and bridge, a global one's
    /// record in the cluster store) run without the engine's lock: the network is listed
    /// in [`State::removing`] meanwhile, so that no endpoint is staged on it and a
    /// firewall rebuild leaves its entries out; then it is forgotten here under the lock.
    pub async fn remove_network(&self, key: &str) -> Result<(), EngineError> {
        let mut st = self.state.lock().await;
        let n = st.network(key)?.clone();
        removable(&st, &n)?;
        st.removing.insert(n.id.clone());
        let rebuilds = self.fw_rebuilds.load(std::sync::atomic::Ordering::SeqCst);
        drop(st);
        let deleted = if self.is_global(&n) {
            self.delete_global_record(&n).await.map(|()| None)
        } else {
            self.delete_local_network(&n).await
        };
        let mut st = self.state.lock().await;
        st.removing.remove(&n.id);
        match deleted {
            Ok(leftover) => self.forget_network(&mut st, &n, leftover).await,
            Err(e) => {
                // kept: a firewall rebuild meanwhile left its entries out
                if self.fw_rebuilds.load(std::sync::atomic::Ordering::SeqCst) != rebuilds {
                    if let Err(u) = self.resync_firewall(&st) {
                        tracing::warn!(network = %n.name, error = %u, "rebuilding the firewall after a failed network rm");
                    }
                }
                Err(e)
            }
        }
    }

    /// The driver's part of removing local network `n` (its firewall entries, its bridge).
    /// A driver that failed before removing the network's device (the bridge is still
    /// there) keeps the record, so that the state agrees with the kernel and a retried rm
    /// finishes; one that failed after it (no endpoint uses the network any more, as
    /// libnetwork does) does not keep the record alive: its error is returned as
    /// `Ok(Some(..))`, and the firewall's contents are then rebuilt from the records that
    /// remain.
    ///
    /// Errors: 500 when the driver failed and the device is still there.
    async fn delete_local_network(&self, n: &Network) -> Result<Option<EngineError>, EngineError> {
        let deleted = match self.driver_of(n) {
            Ok(d) => d
                .delete_network(&spec_of(n))
                .await
                .map_err(EngineError::from),
            Err(e) => Err(e),
        };
        let Err(e) = deleted else {
            return Ok(None);
        };
        let device = match &n.bridge {
            Some(b) => self.nl.index_of(b).await.ok().flatten().is_some(),
            None => false,
        };
        if device {
            return Err(EngineError::Internal(format!(
                "error while removing network {}: {e}; the network is kept, retry the removal",
                n.name
            )));
        }
        tracing::warn!(network = %n.name, error = %e, "driver error deleting the network");
        Ok(Some(e))
    }

    /// Forgets network `n`, whose driver's part is done (`leftover`: the error of a driver
    /// that failed after the network's device went): a global one's cached record and
    /// devices ([`Engine::forget_global_network`]); a local one's record file, host DNS
    /// guard and state entry, with a `destroy` event.
    ///
    /// Errors: 500 when the firewall could not be rebuilt after a `leftover` (the network
    /// is forgotten all the same).
    async fn forget_network(
        &self,
        st: &mut State,
        n: &Network,
        leftover: Option<EngineError>,
    ) -> Result<(), EngineError> {
        if self.is_global(n) {
            self.forget_global_network(st, n).await;
            return Ok(());
        }
        let _ = std::fs::remove_file(
            self.cfg
                .root
                .join("networks")
                .join(format!("{}.json", n.id)),
        );
        self.stop_host_dns(&n.id);
        st.networks.remove(&n.id);
        self.emit(
            "network",
            "destroy",
            &n.id,
            HashMap::from([
                ("name".to_string(), n.name.clone()),
                ("type".to_string(), n.driver.clone()),
            ]),
        );
        if let Some(e) = leftover {
            // what the driver left of the network in the firewall goes now
            if let Err(u) = self.resync_firewall(st) {
                return Err(EngineError::Internal(format!(
                    "network {} was removed, but: {e}; rebuilding the firewall: {u}",
                    n.name
                )));
            }
        }
        Ok(())
    }

    /// POST /networks/prune: removes user networks without active endpoints that match
    /// `filters` (label=k, label=k=v, label!=.., until is ignored). Returns removed names.
    pub async fn prune_networks(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<String>, EngineError> {
        let st = self.state.lock().await;
        let cands: Vec<Network> = st
            .networks
            .values()
            .filter(|n| {
                !n.builtin && st.active_on(&n.id).is_empty() && label_match(&n.labels, filters)
            })
            .cloned()
            .collect();
        drop(st);
        // each as `network rm` removes it; one that got an endpoint or began to be
        // removed meanwhile (409) is left alone, as Docker's prune skips networks in use
        let mut out = Vec::new();
        for n in cands {
            match self.remove_network(&n.id).await {
                Ok(()) => out.push(n.name),
                Err(EngineError::Conflict(_) | EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// GET /networks/{id}: the Docker API JSON of one network.
    pub async fn inspect_network(&self, key: &str) -> Result<serde_json::Value, EngineError> {
        let st = self.state.lock().await;
        let n = st.network(key)?;
        Ok(crate::views::network(n, &st))
    }

    /// GET /networks with filters (name, id, driver, label, type, dangling).
    pub async fn list_networks(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<serde_json::Value>, EngineError> {
        let st = self.state.lock().await;
        let mut out = Vec::new();
        for n in st.networks.values() {
            let ok = filters.iter().all(|(k, vals)| match k.as_str() {
                "name" => vals.iter().any(|v| n.name.contains(v.as_str())),
                "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
                "driver" => vals.contains(&n.driver),
                "label" => label_match(&n.labels, &HashMap::from([(k.clone(), vals.clone())])),
                "type" => vals.iter().any(|v| (v == "custom") != n.builtin),
                "dangling" => vals.iter().any(|v| {
                    (v == "true" || v == "1") == (!n.builtin && st.active_on(&n.id).is_empty())
                }),
                "scope" => vals.iter().any(|v| v == n.scope()),
                _ => true,
            });
            if ok {
                out.push(crate::views::network(n, &st));
            }
        }
        Ok(out)
    }
}

/// Docker's label filter: every `label=k` / `label=k=v` must match, every `label!=..` must not.
pub fn label_match(
    labels: &HashMap<String, String>,
    filters: &HashMap<String, Vec<String>>,
) -> bool {
    let one = |spec: &str| match spec.split_once('=') {
        Some((k, v)) => labels.get(k).map(|x| x == v).unwrap_or(false),
        None => labels.contains_key(spec),
    };
    filters
        .get("label")
        .map(|v| v.iter().all(|s| one(s)))
        .unwrap_or(true)
        && filters
            .get("label!")
            .map(|v| v.iter().all(|s| !one(s)))
            .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names() {
        assert!(valid_name("bank-network"));
        assert!(valid_name("dokku.postgres.db"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
    }
    #[test]
    fn labels() {
        let l = HashMap::from([("a".to_string(), "1".to_string())]);
        let f = |k: &str, v: &str| HashMap::from([(k.to_string(), vec![v.to_string()])]);
        assert!(label_match(&l, &f("label", "a")));
        assert!(label_match(&l, &f("label", "a=1")));
        assert!(!label_match(&l, &f("label", "a=2")));
        assert!(!label_match(&l, &f("label", "b")));
        assert!(!label_match(&l, &f("label!", "a")));
    }
}
