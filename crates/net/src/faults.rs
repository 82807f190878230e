//! Fault injection, for tests only: failpoints named in the `TETHER_FAILPOINTS`
//! environment variable make one method of the firewall or of a network driver fail with a
//! real error of its own type, so that the engine's undo paths run unchanged.
//!
//! Names (comma-separated):
//! - `firewall.<method>` for a [`Firewall`] method: `add_network`, `remove_network`,
//!   `add_ports`, `remove_ports`, `isolate_port`, `guard_host_dns`, `sync`;
//!   `firewall.isolate_port.on` / `firewall.isolate_port.off` fail only adding or only
//!   removing a bridge port from the isolation set;
//! - `driver.<driver>.<method>` for a [`NetworkDriver`] method: `create_network`,
//!   `delete_network`, `join`, `leave` (`driver.bridge.join`, ...);
//!   `driver.<driver>.join@<network name>` fails only joins to that network.
//!
//! - `slow.driver.<driver>.<method>` (`create_network`, `delete_network`, `join` or
//!   `leave`): the call waits [`SLOW`] first (then fails if `driver.<driver>.<method>`
//!   says so, else runs), so that a test can act while a network's or an endpoint's
//!   kernel steps are under way.
//!
//! A name may end in `:N` (`driver.bridge.join:1`): the failpoint then fails (or slows)
//! only its first N calls and passes the later ones through.
//!
//! The daemon reads the variable once at start ([`Faults::from_env`]) and warns loudly when
//! any failpoint is set; with none set nothing is wrapped. Failpoints take effect once the
//! daemon has restored its state ([`Faults::arm`]): they fail the operations a test asks
//! for, not the restore.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::driver::{DriverError, EndpointSpec, NetworkDriver, NetworkSpec, Scope};
use crate::firewall::{Contents, Firewall, FirewallError, NetworkRules, PortMapping};
use crate::link::LinkError;

/// The environment variable naming the failpoints.
pub const ENV: &str = "TETHER_FAILPOINTS";

/// How long a `slow.` failpoint holds its call.
pub const SLOW: std::time::Duration = std::time::Duration::from_secs(3);

/// A set of failpoints: each name with the number of calls it still fails (None: every
/// call), inert until [`Faults::arm`]. Clones share the counts and the arming.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    map: Arc<Mutex<BTreeMap<String, Option<u32>>>>,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl Faults {
    /// Parses a comma-separated list of names, each optionally `:N` (blanks ignored; a
    /// count that is not a number makes the name fail every call).
    pub fn parse(s: &str) -> Faults {
        let map = s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| match n.rsplit_once(':') {
                Some((name, count)) => match count.parse::<u32>() {
                    Ok(c) => (name.to_string(), Some(c)),
                    Err(_) => (n.to_string(), None),
                },
                None => (n.to_string(), None),
            })
            .collect();
        Faults {
            map: Arc::new(Mutex::new(map)),
            armed: Arc::default(),
        }
    }

    /// Makes the failpoints fail from now on.
    pub fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The failpoints of [`ENV`]; empty when it is unset or not UTF-8.
    pub fn from_env() -> Faults {
        std::env::var(ENV)
            .map(|s| Faults::parse(&s))
            .unwrap_or_default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<u32>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether no failpoint is set.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// Whether failpoint `name` fails this call (counting the call when it has a count);
    /// always false before [`Faults::arm`].
    pub fn hit(&self, name: &str) -> bool {
        if !self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        match self.map().get_mut(name) {
            None => false,
            Some(None) => true,
            Some(Some(0)) => false,
            Some(Some(n)) => {
                *n -= 1;
                true
            }
        }
    }

    /// The names, comma-separated, with their counts.
    pub fn names(&self) -> String {
        self.map()
            .iter()
            .map(|(n, c)| match c {
                Some(c) => format!("{n}:{c}"),
                None => n.clone(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `fw` itself without failpoints, else `fw` wrapped in a [`FailingFirewall`].
    pub fn firewall(&self, fw: Arc<dyn Firewall>) -> Arc<dyn Firewall> {
        if self.is_empty() {
            fw
        } else {
            Arc::new(FailingFirewall {
                inner: fw,
                faults: self.clone(),
            })
        }
    }

    /// `d` itself without failpoints, else `d` wrapped in a [`FailingDriver`].
    pub fn driver(&self, d: Arc<dyn NetworkDriver>) -> Arc<dyn NetworkDriver> {
        if self.is_empty() {
            d
        } else {
            Arc::new(FailingDriver {
                inner: d,
                faults: self.clone(),
            })
        }
    }

    /// Waits [`SLOW`] when failpoint `slow.driver.<driver>.<method>` is hit.
    async fn slow(&self, driver: &str, method: &str) {
        if self.hit(&format!("slow.driver.{driver}.{method}")) {
            tokio::time::sleep(SLOW).await;
        }
    }

    fn fw(&self, names: &[&str]) -> Result<(), FirewallError> {
        match names.iter().find(|n| self.hit(n)) {
            Some(n) => Err(FirewallError::Nft(format!(
                "failpoint {n} ({ENV}): injected failure"
            ))),
            None => Ok(()),
        }
    }

    fn drv(&self, driver: &str, method: &str) -> Result<(), DriverError> {
        let name = format!("driver.{driver}.{method}");
        if self.hit(&name) {
            Err(DriverError::Link(LinkError::Io {
                what: format!("failpoint {name} ({ENV})"),
                source: std::io::Error::other("injected failure"),
            }))
        } else {
            Ok(())
        }
    }
}

/// A [`Firewall`] that fails the methods named by its [`Faults`] before calling the
/// wrapped one, and passes every other call through.
pub struct FailingFirewall {
    inner: Arc<dyn Firewall>,
    faults: Faults,
}

impl Firewall for FailingFirewall {
    fn init(&self) -> Result<(), FirewallError> {
        self.faults.fw(&["firewall.init"])?;
        self.inner.init()
    }
    fn add_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        self.faults.fw(&["firewall.add_network"])?;
        self.inner.add_network(net)
    }
    fn remove_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        self.faults.fw(&["firewall.remove_network"])?;
        self.inner.remove_network(net)
    }
    fn add_ports(&self, owner: &str, ports: &[PortMapping]) -> Result<(), FirewallError> {
        self.faults.fw(&["firewall.add_ports"])?;
        self.inner.add_ports(owner, ports)
    }
    fn remove_ports(&self, owner: &str, ports: &[PortMapping]) -> Result<(), FirewallError> {
        self.faults.fw(&["firewall.remove_ports"])?;
        self.inner.remove_ports(owner, ports)
    }
    fn isolate_port(&self, port: &str, isolated: bool) -> Result<(), FirewallError> {
        let half = if isolated {
            "firewall.isolate_port.on"
        } else {
            "firewall.isolate_port.off"
        };
        self.faults.fw(&["firewall.isolate_port", half])?;
        self.inner.isolate_port(port, isolated)
    }
    fn guard_host_dns(&self, gw: Ipv4Addr, on: bool) -> Result<(), FirewallError> {
        self.faults.fw(&["firewall.guard_host_dns"])?;
        self.inner.guard_host_dns(gw, on)
    }
    fn teardown(&self) -> Result<(), FirewallError> {
        self.faults.fw(&["firewall.teardown"])?;
        self.inner.teardown()
    }
    fn adopt(&self) -> Result<bool, FirewallError> {
        self.faults.fw(&["firewall.adopt"])?;
        self.inner.adopt()
    }
    fn sync(&self, c: &Contents) -> Result<(), FirewallError> {
        self.faults.fw(&["firewall.sync"])?;
        self.inner.sync(c)
    }
}

/// A [`NetworkDriver`] that fails the methods named by its [`Faults`]
/// (`driver.<name>.<method>`) before calling the wrapped driver, and passes every other
/// call through.
pub struct FailingDriver {
    inner: Arc<dyn NetworkDriver>,
    faults: Faults,
}

#[async_trait::async_trait]
impl NetworkDriver for FailingDriver {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn scope(&self) -> Scope {
        self.inner.scope()
    }
    fn validate(
        &self,
        options: &HashMap<String, String>,
        internal: bool,
    ) -> Result<(), DriverError> {
        self.inner.validate(options, internal)
    }
    async fn create_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.faults.slow(self.name(), "create_network").await;
        self.faults.drv(self.name(), "create_network")?;
        self.inner.create_network(n).await
    }
    async fn delete_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.faults.slow(self.name(), "delete_network").await;
        self.faults.drv(self.name(), "delete_network")?;
        self.inner.delete_network(n).await
    }
    async fn shutdown_network(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.faults.drv(self.name(), "shutdown_network")?;
        self.inner.shutdown_network(n).await
    }
    fn restore_firewall(&self, n: &NetworkSpec) -> Result<(), DriverError> {
        self.faults.drv(self.name(), "restore_firewall")?;
        self.inner.restore_firewall(n)
    }
    async fn join(&self, n: &NetworkSpec, ep: &EndpointSpec<'_>) -> Result<(), DriverError> {
        self.faults.slow(self.name(), "join").await;
        self.faults.drv(self.name(), "join")?;
        self.faults.drv(self.name(), &format!("join@{}", n.name))?;
        self.inner.join(n, ep).await
    }
    async fn leave(
        &self,
        n: &NetworkSpec,
        host_ifname: &str,
        reap: Option<String>,
    ) -> Result<(), DriverError> {
        self.faults.slow(self.name(), "leave").await;
        self.faults.drv(self.name(), "leave")?;
        self.inner.leave(n, host_ifname, reap).await
    }
    fn reaping(&self, key: &str) -> bool {
        self.inner.reaping(key)
    }
    fn flush(&self) {
        self.inner.flush()
    }
    async fn sweep(&self) {
        self.inner.sweep().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_counts_and_ignores_blanks() {
        let f = Faults::parse(" firewall.add_network,,driver.bridge.join:2 ");
        assert_eq!(f.names(), "driver.bridge.join:2,firewall.add_network");
        assert!(!f.hit("driver.bridge.join"), "inert before arm");
        f.arm();
        assert!(f.hit("firewall.add_network"));
        assert!(f.hit("firewall.add_network"));
        assert!(f.hit("driver.bridge.join"));
        assert!(f.hit("driver.bridge.join"));
        assert!(!f.hit("driver.bridge.join"), "a count of 2 fails two calls");
        assert!(!f.hit("driver.bridge.leave"));
        assert!(Faults::parse(" , ").is_empty());
    }

    #[test]
    fn a_failpoint_is_an_error_of_the_trait_type() {
        let f = Faults::parse("firewall.isolate_port.off,driver.bridge.leave");
        f.arm();
        assert!(f
            .fw(&["firewall.isolate_port", "firewall.isolate_port.on"])
            .is_ok());
        let e = f
            .fw(&["firewall.isolate_port", "firewall.isolate_port.off"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("failpoint firewall.isolate_port.off"), "{e}");
        let e = f.drv("bridge", "leave").err();
        assert!(matches!(e, Some(DriverError::Link(_))), "{e:?}");
        assert!(f.drv("bridge", "join").is_ok());
    }
}
