//! Network namespaces ("sandboxes" in libnetwork's terms).
//!
//! A container's sandbox is a network namespace held by an open file descriptor of the
//! daemon ([`create_held`]) and named by that descriptor's `/proc/<pid>/fd/<n>` path
//! ([`fd_path`]), which runc and `setns(2)` open like any nsfs file. No mount is made: every
//! mount in the daemon's mount namespace is copied and then detached by each `runc create`,
//! so bind-mounted sandboxes would make a start slower with every running container. A
//! namespace held only by the daemon goes with it (and its veths with it).
//!
//! [`create`] still makes a namespace kept alive by a bind mount (as `ip netns add` does,
//! see ip-netns(8)), for namespaces that must outlive the daemon. Work inside a namespace is
//! done on a short-lived OS thread that `setns(2)`s into it, so that the daemon's own
//! threads never change namespace.

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
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                NetnsError::Sys {
                    what: format!("setns {}", p.display()),
                    source: e.into(),
                }
            })?;
            Ok(f())
        })
        .map_err(|e| NetnsError::Thread(e.to_string()))?;
    handle
        .join()
        .map_err(|_| NetnsError::Thread("panicked".into()))?
}

/// Creates a new, empty network namespace kept alive by a bind mount on `path` (as
/// `ip netns add` does), on a thread that unshares and returns. The file's directory is
/// created if needed.
///
/// Errors: unshare(2) or mount(2) failing (names the path).
pub fn create(path: &Path) -> Result<(), NetnsError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(sys(format!("create {}", dir.display())))?;
    }
    File::create(path).map_err(sys(format!("create {}", path.display())))?;
    let p = path.to_path_buf();
    let r = std::thread::Builder::new()
        .name("netns-new".into())
        .spawn(move || -> Result<(), NetnsError> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                NetnsError::Sys {
                    what: "unshare network namespace".into(),
                    source: e.into(),
                }
            })?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &p,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| NetnsError::Sys {
                what: format!("bind-mount namespace on {}", p.display()),
                source: e.into(),
            })
        })
        .map_err(|e| NetnsError::Thread(e.to_string()))?
        .join()
        .map_err(|_| NetnsError::Thread("panicked".into()))?;
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Creates a new, empty network namespace and returns an open file of it (nsfs, close-on-
/// exec): the namespace lives as long as this file or a process in it does. Made on a
/// thread that unshares and ends, so no thread of the daemon changes namespace.
///
/// Interfaces that come into the namespace start with IPv6 disabled
/// (`net.ipv6.conf.default.disable_ipv6=1`, see the kernel's ip-sysctl.rst): an endpoint on
/// an IPv6 network enables it on its interface, and one on an IPv4-only network has no
/// link-local address, as Docker does since 26.1 (moby#47769). Without that, each new
/// endpoint's duplicate address detection, MLD reports and router solicitations are
/// flooded to every port of its bridge and handled in every other container's namespace:
/// a start cost that grows with the number of containers on the network.
///
/// Errors: unshare(2) failing, or opening `/proc/thread-self/ns/net`.
pub fn create_held() -> Result<File, NetnsError> {
    std::thread::Builder::new()
        .name("netns-new".into())
        .spawn(|| -> Result<File, NetnsError> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                NetnsError::Sys {
                    what: "unshare network namespace".into(),
                    source: e.into(),
                }
            })?;
            // a kernel without IPv6 has no such file: nothing to disable. Through a procfs
            // instance of this thread's (see crate::sysctl): through /proc, the write would
            // cost every later sandbox a little more.
            let disabled = crate::sysctl::ProcSys::private()
                .and_then(|p| p.set("net.ipv6.conf.default.disable_ipv6", "1"));
            match disabled {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(NetnsError::Sys {
                        what: "disable IPv6 by default in the new namespace".into(),
                        source: e,
                    })
                }
                _ => {}
            }
            File::open("/proc/thread-self/ns/net").map_err(sys("open the new namespace"))
        })
        .map_err(|e| NetnsError::Thread(e.to_string()))?
        .join()
        .map_err(|_| NetnsError::Thread("panicked".into()))?
}

/// The path naming the namespace `file` holds for other processes and for [`run_in`]:
/// `/proc/<this process's pid>/fd/<n>` (proc(5)); valid while `file` is open.
pub fn fd_path(file: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        file.as_raw_fd()
    ))
}

/// Opens the network namespace of process `pid` (`/proc/<pid>/ns/net`) when `pid` is a
/// child of `parent`, the check that a pid read from a record still names the same
/// process (a reused pid has another parent). For a daemon taking back running containers
/// whose init is a child of the container monitor.
///
/// Errors: `pid` gone or another process's child, or the open failing.
pub fn open_of_child(pid: i32, parent: i32) -> Result<File, NetnsError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(sys(format!("read /proc/{pid}/stat")))?;
    // the fields after the command name, which is in parentheses and may hold spaces
    let ppid = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split(' ').nth(1))
        .and_then(|p| p.parse::<i32>().ok());
    if ppid != Some(parent) {
        return Err(NetnsError::Sys {
            what: format!("process {pid} is not a child of {parent}"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    File::open(format!("/proc/{pid}/ns/net")).map_err(sys(format!("open /proc/{pid}/ns/net")))
}

/// Removes a namespace made by [`create`]: unmounts and deletes the file. The namespace
/// itself goes when nothing else holds it. A missing file is fine.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetnsError::Sys {
                what: format!("unmount {}", path.display()),
                source: e.into(),
            })
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetnsError::Sys {
            what: format!("remove {}", path.display()),
            source: e,
        }),
    }
}
