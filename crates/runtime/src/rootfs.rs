//! overlayfs root filesystems (see the kernel's Documentation/filesystems/overlayfs.rst).

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::{io_err, RuntimeError};

/// Mounts an overlay at `target` with `lower` (top-most first), `upper` and `work`,
/// creating the three writable directories. The mount is made private (no propagation,
/// see the kernel's Documentation/filesystems/sharedsubtree.rst), so that unmounting it
/// here, once a container's own mount namespace holds its copy, leaves that copy alone.
/// Errors name the target and the kernel's errno; a failed step leaves nothing mounted.
pub fn mount_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), RuntimeError> {
    for d in [upper, work, target] {
        std::fs::create_dir_all(d).map_err(io_err(format!("create {}", d.display())))?;
    }
    if lower.is_empty() {
        return Err(RuntimeError::Spec("image has no layers".into()));
    }
    let lowers: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| RuntimeError::Io {
        what: format!("mount overlay on {}", target.display()),
        source: e.into(),
    })?;
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| {
        let _ = umount2(target, MntFlags::MNT_DETACH);
        RuntimeError::Io {
            what: format!("make the overlay on {} private", target.display()),
            source: e.into(),
        }
    })
}

/// Unmounts `target` (lazily, so a straggling process cannot block removal); a target that
/// is not mounted is fine.
pub fn unmount(target: &Path) -> Result<(), RuntimeError> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(RuntimeError::Io {
            what: format!("unmount {}", target.display()),
            source: e.into(),
        }),
    }
}

/// Whether `target` is a mount point (per /proc/self/mountinfo).
pub fn is_mounted(target: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let t = target.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(t.as_str()))
}
