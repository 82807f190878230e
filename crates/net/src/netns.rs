//! Network namespaces ("sandboxes" in libnetwork's terms).
//!
//! A sandbox is a network namespace kept alive by a bind mount of its nsfs inode on a file
//! under `<exec-root>/netns/`, as `ip netns add` does (see ip-netns(8)). Work inside a
//! namespace is done on a short-lived OS thread that `setns(2)`s into it, so that the
//! daemon's own threads never change namespace.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Errors of namespace handling.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A syscall failed; `what` names the step and the path.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The worker thread panicked or could not be spawned.
    #[error("namespace worker thread failed: {0}")]
    Thread(String),
}

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetnsError {
    let what = what.into();
    move |source| NetnsError::Sys { what, source }
}

/// Runs `f` on a fresh OS thread that has joined the network namespace at `path`
/// (a bind-mounted nsfs file or `/proc/PID/ns/net`), and returns its result.
///
/// Sockets created inside `f` stay bound to that namespace after the thread ends, which is
/// how the daemon listens and forwards inside containers' namespaces.
///
/// Errors: opening `path` or `setns(2)` failing, or the thread panicking.
pub fn run_in<T, F>(path: &Path, f: F) -> Result<T, NetnsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file = File::open(path).map_err(sys(format!("open namespace {}", path.display())))?;
    let p: PathBuf = path.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> Result<T, NetnsError> {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetnsError::Sys {
                    what: format!("setns {}", p.display()),
                    source: e.into(),
                })?;
            Ok(f())
        })
        .map_err(|e| NetnsError::Thread(e.to_string()))?;
    handle
        .join()
        .map_err(|_| NetnsError::Thread("panicked".into()))?
}
