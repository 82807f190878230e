//! Compose files for tether: the model of `compose.yaml` ([`model`]), `.env` and
//! `${VAR}` interpolation ([`interpolate`]), loading, merging and checking files into a
//! [`Project`] ([`load`]), and planning what to create through the Docker API, with
//! the names and labels Docker Compose v2 uses ([`plan`]).
//!
//! The crate does no I/O beyond reading the files; `tether compose` (crates/cli)
//! talks to the daemon.

#![warn(missing_docs)]

pub mod error;
pub mod interpolate;
pub mod load;
pub mod model;
pub mod plan;

pub use error::{ComposeError, Result};
pub use load::{load, LoadOptions, Project};
pub use plan::ContainerOptions;

#[cfg(test)]
mod tests;
