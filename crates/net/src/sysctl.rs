//! Writes of per-namespace sysctls under /proc/sys/net (see the kernel's
//! Documentation/networking/ip-sysctl.rst). They act on the namespace of the calling thread.
//!
//! Inside a sandbox, writes go through [`ProcSys::private`], a procfs instance of the
//! calling thread's own. Through the shared /proc they would slow every later start: a
//! sysctl directory that exists only per namespace (`net/ipv6`) gets one dentry per
//! namespace that looked it up, all with the same parent and name, and each lookup compares
//! them one by one (`proc_sys_compare`): 30 us at no other namespace, 300-400 us with 1000
//! containers running (measured).

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The path of `key` below /proc/sys: dots become slashes (`net.ipv4.ip_forward` ->
/// `net/ipv4/ip_forward`).
fn key_path(key: &str) -> PathBuf {
    PathBuf::from(key.replace('.', "/"))
}

/// The path of an interface's knob below /proc/sys: `net/<family>/conf/<ifname>/<knob>`,
/// the interface name one segment even when it holds dots.
fn conf_path(family: &str, ifname: &str, knob: &str) -> PathBuf {
    ["net", family, "conf", ifname, knob].iter().collect()
}

/// An error naming the sysctl (`what`, a key or path) and the value written.
fn named(what: &Path, value: &str) -> impl FnOnce(std::io::Error) -> std::io::Error {
    let what = format!("sysctl {}={value}", what.display());
    move |e| std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Writes `value` to `/proc/sys/<key with dots as slashes>`, e.g.
/// `set("net.ipv4.ip_forward", "1")`. Only for keys without an interface name (a name
/// may hold dots, `10.9.0.1`): per-interface knobs go through [`set_conf`].
///
/// Errors: the file cannot be written (names the key).
pub fn set(key: &str, value: &str) -> Result<(), std::io::Error> {
    let path = Path::new("/proc/sys").join(key_path(key));
    std::fs::write(&path, value).map_err(named(Path::new(key), value))
}

/// Writes `value` to `/proc/sys/net/<family>/conf/<ifname>/<knob>`, e.g.
/// `set_conf("ipv4", "tb-0", "route_localnet", "1")`. The interface name is one path
/// segment, so a name with dots ("br.1", "10.0.0.1") is written as it is, not split the
/// way [`set`] splits its key.
///
/// Errors: the file cannot be written (names the path).
pub fn set_conf(family: &str, ifname: &str, knob: &str, value: &str) -> Result<(), std::io::Error> {
    let path = Path::new("/proc/sys").join(conf_path(family, ifname, knob));
    std::fs::write(&path, value).map_err(named(&path, value))
}

/// The `sys` directory of a procfs instance mounted for the caller alone, a detached
/// mount (fsopen(2), fsconfig(2) `FSCONFIG_CMD_CREATE`, fsmount(2); Linux 5.2) that no
/// mount namespace holds and that goes when this value is dropped, with the dentries its
/// lookups made (see the module doc). Writes act on the calling thread's namespace, as
/// through /proc.
#[derive(Debug)]
pub struct ProcSys {
    dir: OwnedFd,
}

impl ProcSys {
    /// Mounts the private procfs instance; falls back to /proc/sys where the kernel or a
    /// seccomp profile refuses (ENOSYS, EPERM).
    ///
    /// Errors: /proc/sys cannot be opened either.
    pub fn private() -> Result<ProcSys, std::io::Error> {
        match private_mount() {
            Ok(dir) => Ok(ProcSys { dir }),
            Err(e) => {
                tracing::debug!(error = %e, "no private procfs instance; sysctls through /proc");
                let f = File::open("/proc/sys")?;
                Ok(ProcSys { dir: f.into() })
            }
        }
    }

    /// As [`set`], through this instance.
    ///
    /// Errors: the file cannot be written (names the key).
    pub fn set(&self, key: &str, value: &str) -> Result<(), std::io::Error> {
        self.write(&key_path(key), value)
            .map_err(named(Path::new(key), value))
    }

    /// As [`set_conf`], through this instance.
    ///
    /// Errors: the file cannot be written (names the path).
    pub fn set_conf(
        &self,
        family: &str,
        ifname: &str,
        knob: &str,
        value: &str,
    ) -> Result<(), std::io::Error> {
        let rel = conf_path(family, ifname, knob);
        self.write(&rel, value)
            .map_err(named(&Path::new("/proc/sys").join(&rel), value))
    }

    fn write(&self, rel: &Path, value: &str) -> Result<(), std::io::Error> {
        let fd = openat(&self.dir, rel, libc::O_WRONLY)?;
        File::from(fd).write_all(value.as_bytes())
    }
}

/// openat(2) of `rel` below `dir`, close-on-exec.
fn openat(dir: &OwnedFd, rel: &Path, flags: i32) -> Result<OwnedFd, std::io::Error> {
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: openat on a directory we own with a NUL-terminated path.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A detached procfs mount's `sys` directory (see [`ProcSys`]).
fn private_mount() -> Result<OwnedFd, std::io::Error> {
    let own = |r: libc::c_long| -> Result<OwnedFd, std::io::Error> {
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: a new descriptor from the syscall just made, nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
        }
    };
    // linux/mount.h
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: fsopen(2) with a NUL-terminated filesystem name.
    let fs = own(unsafe { libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fsconfig(2) CMD_CREATE takes no key or value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fsmount(2) of the configured context, no mount attributes.
    let mnt = own(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) })?;
    openat(&mnt, Path::new("sys"), libc::O_RDONLY | libc::O_DIRECTORY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a namespace of its own (a thread that unshares), a write through the private
    /// instance is what /proc then reads; a missing interface's knob is an error naming
    /// it.
    #[test]
    fn a_private_instance_writes_the_callers_namespace() {
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            let key = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
            assert_eq!(std::fs::read_to_string(key).expect("read").trim(), "0");
            let ps = ProcSys::private().expect("private procfs");
            ps.set("net.ipv6.conf.default.disable_ipv6", "1")
                .expect("set");
            assert_eq!(std::fs::read_to_string(key).expect("read").trim(), "1");
            ps.set_conf("ipv6", "lo", "disable_ipv6", "1")
                .expect("set_conf");
            let lo = "/proc/sys/net/ipv6/conf/lo/disable_ipv6";
            assert_eq!(std::fs::read_to_string(lo).expect("read").trim(), "1");
            let e = ps
                .set_conf("ipv6", "no-such-if", "disable_ipv6", "1")
                .expect_err("no such interface");
            assert!(e.to_string().contains("no-such-if"), "{e}");
        })
        .join()
        .expect("thread");
    }
}
