//! The `null` network driver (Docker's `none` network): a sandbox with loopback only.
//! The smallest driver: what a new driver needs is a file like this one and one
//! `register` line in `Engine::start_with`.

use std::collections::HashMap;

use crate::driver::{no_options, DriverError, EndpointSpec, NetworkDriver, NetworkSpec};

/// The `null` driver (the `none` network): a sandbox with loopback only. Like
/// [`crate::host::HostDriver`] it is a network mode, with no kernel objects and no endpoints.
pub struct NullDriver;

#[async_trait::async_trait]
impl NetworkDriver for NullDriver {
    fn name(&self) -> &'static str {
        "null"
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
