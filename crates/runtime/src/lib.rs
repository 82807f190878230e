//! tether-runtime: running containers with a standard OCI runtime (runc).
//!
//! - [`spec`]: the OCI runtime spec (config.json) of a container, Docker's defaults;
//! - [`runc`]: the runc command-line interface (runtime-spec "runtime.md" operations);
//! - [`monitor`]: the monitor process that holds the containers' stdio, writes their logs
//!   and records their exit codes, so containers outlive the daemon; [`shim`]: its part
//!   for one container;
//! - [`spawn`]: starting runc with a descriptor table of its own, at a cost that does not
//!   grow with the descriptors the daemon and the monitor hold;
//! - [`rootfs`]: overlayfs root filesystems;
//! - [`logs`]: the json-file log format shared by the monitor and the daemon.

pub mod console;
pub mod logs;
pub mod monitor;
pub mod rootfs;
pub mod runc;
pub mod shim;
pub mod spawn;
pub mod spec;

/// Runtime errors; each names the container or path and the step.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An OS call failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// runc failed; `msg` is its own error message.
    #[error("OCI runtime {op} failed: {msg}")]
    Runc { op: String, msg: String },
    /// The spec could not be built from the given values.
    #[error("invalid container spec: {0}")]
    Spec(String),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Io { what, source }
}
