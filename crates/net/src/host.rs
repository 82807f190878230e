//! The `host` network driver (Docker's `host`): containers use the host's own network
//! namespace.

use std::collections::HashMap;

use crate::driver::{no_options, DriverError, EndpointSpec, NetworkDriver, NetworkSpec};

/// The `host` driver: its one network is the host's own namespace. A container joins it
/// by its network mode (`--network host`), so the driver makes no kernel objects and takes
/// no endpoints.
pub struct HostDriver;

#[async_trait::async_trait]
impl NetworkDriver for HostDriver {
    fn name(&self) -> &'static str {
        "host"
    }
    fn validate(&self, o: &HashMap<String, String>, _internal: bool) -> Result<(), DriverError> {
        no_options(self.name(), o)
    }
    async fn create_network(&self, _n: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }
    async fn delete_network(&self, _n: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }
    async fn join(&self, n: &NetworkSpec, _ep: &EndpointSpec<'_>) -> Result<(), DriverError> {
        Err(DriverError::NoEndpoints {
            network: n.name.clone(),
            driver: self.name(),
        })
    }
    async fn leave(&self, _: &NetworkSpec, _: &str, _: Option<String>) -> Result<(), DriverError> {
        Ok(())
    }
}
