//! Network drivers: the seam between the engine's object model and the kernel.
//!
//! A driver turns a network record ([`NetworkSpec`], built by the engine from its state)
//! into kernel objects and back: it validates the network's driver options as typed data,
//! creates and deletes the network's devices, joins and leaves endpoints (a sandbox's
//! interface on the network) and restores what it made after a daemon restart. The engine
//! picks a driver by the network's `Driver` name from a [`Drivers`] registry and never calls
//! netlink, sysctl or the firewall for a network itself.
//!
//! The model follows Docker's libnetwork driver API (`driverapi.Driver`: `CreateNetwork`,
//! `DeleteNetwork`, `Join`, `Leave`, `Type`, `Capabilities().DataScope`) and netavark's
//! split of validate / setup / teardown. Every operation validates first, applies, and
//! undoes what it applied when a later step fails.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::firewall::FirewallError;
use crate::link::{LinkError, Netlink};

/// Driver errors. Each keeps its source; [`DriverError::is_input`] tells bad input (a
/// client's 400) from a failure on the host (500).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A netlink step failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The firewall rejected a change.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// A sysctl could not be set.
    #[error("{what}: {source}")]
    Sysctl {
        /// The key being set.
        what: String,
        /// The error from /proc/sys.
        #[source]
        source: std::io::Error,
    },
    /// A driver option has a value the driver does not take.
    #[error("{0}")]
    InvalidOption(String),
    /// No driver of that name is registered.
    #[error("network driver {name:?} is not supported: expected one of {valid}")]
    UnknownDriver {
        /// The name asked for.
        name: String,
        /// The registered names, comma-separated.
        valid: String,
    },
    /// The driver's networks take no endpoints of their own (`host`, `null`): a container
    /// uses them as its network mode instead.
    #[error("container cannot be attached to network {network} of driver {driver}")]
    NoEndpoints {
        /// The network's name.
        network: String,
        /// The driver's name.
        driver: &'static str,
    },
    /// The network record lacks what the driver needs (a bridge network without a
    /// device name, MAC or address family): a corrupted or foreign state file.
    #[error("network {network}: {what}")]
    Incomplete {
        /// The network's name.
        network: String,
        /// What is missing.
        what: &'static str,
    },
}

impl DriverError {
    /// Whether the error is the client's (bad option, unknown driver, a network that takes
    /// no endpoints) rather than the host's.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            DriverError::InvalidOption(_)
                | DriverError::UnknownDriver { .. }
                | DriverError::NoEndpoints { .. }
        )
    }
}

/// Where a driver's networks live (Docker's `Scope` of a network: `local` or `global`).
/// It also picks the network's IPAM ([`crate::ipamapi::Ipams`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The network exists on this host only (bridge, host, null).
    Local,
    /// The network is shared by every host of a cluster (its record and IPAM pool live in
    /// a shared store).
    Global,
}

impl Scope {
    /// Docker's spelling: `"local"` or `"global"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

/// A network as a driver sees it, built by the engine from its record.
#[derive(Clone, Debug, Default)]
pub struct NetworkSpec {
    /// The network's id (64 hex digits).
    pub id: String,
    /// The network's name.
    pub name: String,
    /// The device the driver made for the network (a bridge's name, at most 15 bytes).
    pub ifname: Option<String>,
    /// The device's pinned MAC address.
    pub mac: Option<[u8; 6]>,
    /// IPv4 subnet and gateway from the network's IPAM pool; None without IPv4.
    pub v4: Option<(Ipv4Net, Ipv4Addr)>,
    /// IPv6 subnet and gateway from the network's IPAM pool; None without IPv6.
    pub v6: Option<(Ipv6Net, Ipv6Addr)>,
    /// `--internal`: no traffic to or from outside the network.
    pub internal: bool,
    /// The driver options (`-o key=value`, Docker's `Options`), empty values removed.
    pub options: HashMap<String, String>,
}

/// An endpoint to join: the sandbox side and the addresses IPAM gave it.
pub struct EndpointSpec<'a> {
    /// The sandbox: a bind-mounted network-namespace file.
    pub sandbox: &'a Path,
    /// A netlink connection inside the sandbox.
    pub sandbox_nl: &'a Netlink,
    /// The host side's interface name (a veth, at most 15 bytes).
    pub host_ifname: &'a str,
    /// The interface's name in the sandbox (`ethN`).
    pub ifname: &'a str,
    /// The IPv4 address, if the network has IPv4.
    pub ip: Option<Ipv4Addr>,
    /// The IPv6 address, if the network has IPv6.
    pub ip6: Option<Ipv6Addr>,
    /// The interface's MAC address.
    pub mac: [u8; 6],
    /// Whether the sandbox's default route goes through this network's gateway.
    pub default_route: bool,
}

impl EndpointSpec<'_> {
    /// Inside the sandbox: gives the endpoint's interface its IPv4 address with `v4`'s
    /// prefix length (and, if given, the default route through its gateway), or just sets
    /// it up without IPv4; then, with `v6`, enables IPv6 on it (a sandbox starts with it
    /// disabled) and adds its IPv6 address (and default route) likewise.
    ///
    /// Errors: netlink's, or [`LinkError::Io`] when the sysctl cannot be written; the caller
    /// removes the interface.
    pub async fn configure(
        &self,
        v4: Option<(u8, Option<Ipv4Addr>)>,
        v6: Option<(u8, Option<Ipv6Addr>)>,
    ) -> Result<(), LinkError> {
        let nl = self.sandbox_nl;
        match (self.ip, v4) {
            (Some(ip), Some((prefix, gw))) => {
                nl.configure_endpoint(self.ifname, ip, prefix, gw).await?
            }
            _ => nl.set_up_by_name(self.ifname).await?,
        }
        if let (Some(ip6), Some((prefix, gw6))) = (self.ip6, v6) {
            let ifname = self.ifname.to_owned();
            crate::netns::run_in(self.sandbox, move || {
                crate::sysctl::ProcSys::private()
                    .and_then(|p| p.set_conf("ipv6", &ifname, "disable_ipv6", "0"))
            })?
            .map_err(|source| LinkError::Io {
                what: "enable IPv6 in the sandbox".into(),
                source,
            })?;
            nl.configure_endpoint6(self.ifname, ip6, prefix, gw6)
                .await?;
        }
        Ok(())
    }
}

/// A network driver (Docker's `driverapi.Driver`). Implementations: the bridge driver
/// ([`crate::bridge::BridgeDriver`]), [`crate::host::HostDriver`] and
/// [`crate::null::NullDriver`] (the smallest: a file and one registry line in the engine).
///
/// Every method is idempotent where the kernel allows, validates before it applies and
/// undoes its own partial work on failure.
#[async_trait::async_trait]
pub trait NetworkDriver: Send + Sync {
    /// The driver's name, as in a network's `Driver` field.
    fn name(&self) -> &'static str;

    /// Where the driver's networks live.
    fn scope(&self) -> Scope {
        Scope::Local
    }

    /// Checks the driver options of a network about to be created (`internal` is the
    /// network's `--internal`). Errors: [`DriverError::InvalidOption`] naming the option,
    /// the value and what is valid.
    fn validate(
        &self,
        options: &HashMap<String, String>,
        internal: bool,
    ) -> Result<(), DriverError>;

    /// Creates the network's kernel objects, or re-adopts the ones it made before a
    /// daemon restart.
    async fn create_network(&self, n: &NetworkSpec) -> Result<(), DriverError>;

    /// Removes the network's kernel objects (`network rm`). Objects of the same name that
    /// the driver did not make are left alone.
    async fn delete_network(&self, n: &NetworkSpec) -> Result<(), DriverError>;

    /// Removes the network's devices now, at daemon shutdown (the firewall goes with its
    /// table).
    async fn shutdown_network(&self, _n: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    /// Adds the network's firewall entries again after the firewall's table was recreated.
    fn restore_firewall(&self, _n: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    /// Creates an endpoint of `n` in a sandbox. Errors: [`DriverError::NoEndpoints`] for
    /// drivers whose networks are a network mode.
    async fn join(&self, n: &NetworkSpec, ep: &EndpointSpec<'_>) -> Result<(), DriverError>;

    /// Removes an endpoint. Its host side carries no traffic once this returns; with
    /// `reap = Some(key)` the driver deletes the rest off the request path, tagged `key`
    /// (see [`NetworkDriver::reaping`]); with `None` the sandbox is about to go and the
    /// kernel deletes the endpoint's interfaces with it.
    async fn leave(
        &self,
        n: &NetworkSpec,
        host_ifname: &str,
        reap: Option<String>,
    ) -> Result<(), DriverError>;

    /// Whether a deletion tagged `key` (see [`NetworkDriver::leave`]) is still under way.
    fn reaping(&self, _key: &str) -> bool {
        false
    }

    /// Blocks until every deferred deletion is done.
    fn flush(&self) {}

    /// At daemon start, after the networks were restored: removes what the driver made and
    /// a daemon that died left behind outside any network (see the bridge driver's parked
    /// bridges). Only objects the driver can tell are its own.
    async fn sweep(&self) {}
}

/// The drivers the engine knows, keyed by name.
#[derive(Clone, Default)]
pub struct Drivers {
    map: BTreeMap<&'static str, Arc<dyn NetworkDriver>>,
}

impl Drivers {
    /// An empty registry.
    pub fn new() -> Drivers {
        Drivers::default()
    }

    /// Adds (or replaces) a driver under its [`NetworkDriver::name`].
    pub fn register(&mut self, d: Arc<dyn NetworkDriver>) {
        self.map.insert(d.name(), d);
    }

    /// The driver called `name`. Errors: [`DriverError::UnknownDriver`] listing the
    /// registered names.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn NetworkDriver>, DriverError> {
        self.map
            .get(name)
            .ok_or_else(|| DriverError::UnknownDriver {
                name: name.to_string(),
                valid: self.map.keys().copied().collect::<Vec<_>>().join(", "),
            })
    }

    /// Every registered driver.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn NetworkDriver>> {
        self.map.values()
    }
}

/// Refuses every option: the `host` and `null` drivers take none (Docker ignores them;
/// tether names them rather than dropping them silently).
pub(crate) fn no_options(
    driver: &str,
    options: &HashMap<String, String>,
) -> Result<(), DriverError> {
    match options.keys().next() {
        None => Ok(()),
        Some(k) => Err(DriverError::InvalidOption(format!(
            "option {k:?} is not valid for network driver {driver}: it takes no options"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostDriver;
    use crate::null::NullDriver;

    #[test]
    fn registry_names_the_valid_drivers() {
        let mut d = Drivers::new();
        d.register(Arc::new(HostDriver));
        d.register(Arc::new(NullDriver));
        assert_eq!(d.get("host").map(|x| x.name()).ok(), Some("host"));
        let e = d.get("overlay").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("network driver \"overlay\" is not supported: expected one of host, null")
        );
        assert!(d.get("overlay").err().is_some_and(|e| e.is_input()));
    }

    #[test]
    fn host_and_null_take_no_options_and_no_endpoints() {
        let o = HashMap::from([("mtu".to_string(), "1400".to_string())]);
        let e = NullDriver.validate(&o, false).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("option \"mtu\" is not valid for network driver null: it takes no options")
        );
        assert!(HostDriver.validate(&HashMap::new(), false).is_ok());
        assert_eq!(HostDriver.scope().as_str(), "local");
    }
}
