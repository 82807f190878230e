//! Container filesystems as tar streams (Docker Engine API v1.43+ "Container" endpoints
//! `HEAD/GET/PUT /containers/{id}/archive` and `GET /containers/{id}/export`), and the
//! container's changes to its image (`GET /containers/{id}/changes`).
//!
//! All work on a container's files happens in a short-lived helper process,
//! `tether archive-helper JOB` (see [`helper_main`]), never in the daemon: the helper
//! first makes the container's filesystem its root directory, so that the kernel resolves
//! every path and symlink inside it exactly as under `chroot` (moby's `chrootarchive`
//! does the same). Nothing the container controls can then lead a read or a write
//! outside its filesystem. The helper's view is:
//! - a running container: its own mount namespace and root (`setns` on the init's
//!   `/proc/PID/ns/mnt`, root = `/proc/PID/root`), so bind mounts, volumes and
//!   `/etc/hosts` are seen exactly as the container sees them;
//! - a stopped container: a private mount namespace of the helper in which the
//!   container's overlay (image layers, `upper`, `work`) is mounted; the mount dies with
//!   the helper, so nothing is left mounted whatever happens. While such a helper runs,
//!   the container cannot be started (its per-container filesystem lock is held);
//! - `export` of a running container: its overlay root as the daemon has it mounted
//!   (no bind mounts: `docker export` leaves volumes out).
//!
//! The path rules follow moby (`container/archive.go`, `daemon/archive.go`): the
//! directory part of a path is resolved following symlinks inside the container, the
//! last element is not followed (a symlink is reported and archived as a symlink, with
//! `linkTarget` its fully resolved path), a trailing `/` or `/.` is kept.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tether_image::tarx::append_raw;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio::sync::mpsc;

use crate::{Engine, EngineError};

/// Symlinks followed while resolving one path before giving up (as Linux's ELOOP).
const MAX_SYMLINK_HOPS: usize = 40;

/// Go's `os.FileMode` type bits (Docker's `mode` in a path stat is an `os.FileMode`).
mod gomode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// Docker's `ContainerPathStat`, sent base64-encoded (standard alphabet) as JSON in the
/// `X-Docker-Container-Path-Stat` header of `HEAD` and `GET /containers/{id}/archive`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathStat {
    /// The last element of the requested path (`/` for the root, `.` for `dir/.`).
    pub name: String,
    /// `lstat` size in bytes.
    pub size: i64,
    /// Go `os.FileMode` bits: permission bits 0o777 plus type and special bits
    /// (directory 1<<31, symlink 1<<27, setuid 1<<23, ...).
    pub mode: u32,
    /// Modification time, RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink: its target fully resolved inside the container (absolute); else "".
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The header value: base64 (standard alphabet, padded) of the JSON.
    pub fn header_value(&self) -> String {
        use base64::Engine as _;
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// Whether the path is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & gomode::DIR != 0
    }
}

/// Go `os.FileMode` bits of a Unix `st_mode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    if st_mode & libc::S_ISUID != 0 {
        m |= gomode::SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        m |= gomode::SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        m |= gomode::STICKY;
    }
    m | match st_mode & libc::S_IFMT {
        libc::S_IFDIR => gomode::DIR,
        libc::S_IFLNK => gomode::SYMLINK,
        libc::S_IFIFO => gomode::NAMED_PIPE,
        libc::S_IFSOCK => gomode::SOCKET,
        libc::S_IFCHR => gomode::DEVICE | gomode::CHAR_DEVICE,
        libc::S_IFBLK => gomode::DEVICE,
        _ => 0,
    }
}

/// One change of a container's filesystem against its image (`GET .../changes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Absolute path in the container.
    #[serde(rename = "Path")]
    pub path: String,
    /// 0 modified, 1 added, 2 deleted (moby `archive.ChangeType`).
    #[serde(rename = "Kind")]
    pub kind: u8,
}

/// Options of `PUT /containers/{id}/archive`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct PutOptions {
    /// `noOverwriteDirNonDir`: refuse to replace a directory with a non-directory and
    /// vice versa.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: keep the archive's uid/gid; otherwise extracted files belong to
    /// root (0:0), as `docker cp` without `-a`.
    pub copy_uid_gid: bool,
}

// ---------------------------------------------------------------------------------------
// The helper's job description
// ---------------------------------------------------------------------------------------

/// Where the helper finds the container's filesystem.
#[derive(Debug, Serialize, Deserialize)]
enum View {
    /// A running container: enter the mount namespace and root of its init.
    Ns { pid: i32 },
    /// A stopped container: mount its overlay at `target` in a private mount namespace,
    /// then its bind mounts and volumes as its start would.
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
        mounts: Vec<BindMount>,
    },
    /// A running container's root filesystem alone (`export`): its init's root mount,
    /// cloned without the mounts under it (volumes, binds, /proc, the /etc files).
    NsRoot { pid: i32 },
}

/// A bind mount (or volume) of a stopped container, made in the helper's namespace.
#[derive(Debug, Serialize, Deserialize)]
struct BindMount {
    /// Host path (a volume's `_data`, a bind's source, a generated /etc file).
    source: PathBuf,
    /// Absolute path in the container.
    dest: String,
    /// Read-only.
    ro: bool,
}

/// What the helper does there.
#[derive(Debug, Serialize, Deserialize)]
enum Op {
    /// Print the path's stat (one JSON line).
    Stat { path: String },
    /// Print the path's stat (one JSON line), then the tar stream of it.
    Get { path: String },
    /// Extract the tar on stdin into the directory `path`.
    Put { path: String, opts: PutOptions },
    /// Print `{}` (one line), then the tar stream of the whole root.
    Export,
}

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    view: View,
    op: Op,
}

/// How the helper failed (one JSON line on its stderr).
#[derive(Debug, Serialize, Deserialize)]
struct Failure {
    /// "not_found", "invalid" or "internal".
    kind: String,
    message: String,
}

impl Failure {
    fn internal(what: impl std::fmt::Display) -> Failure {
        Failure {
            kind: "internal".into(),
            message: what.to_string(),
        }
    }
    fn invalid(what: impl std::fmt::Display) -> Failure {
        Failure {
            kind: "invalid".into(),
            message: what.to_string(),
        }
    }
    fn io(what: &str, e: io::Error) -> Failure {
        // the tar crate wraps the OS error: name the cause too
        let mut msg = e.to_string();
        let mut cur: Option<&dyn std::error::Error> = e.get_ref().and_then(|i| i.source());
        while let Some(c) = cur {
            msg = format!("{msg}: {c}");
            cur = c.source();
        }
        let kind = match e.kind() {
            io::ErrorKind::NotFound => "not_found",
            io::ErrorKind::ReadOnlyFilesystem => "invalid",
            _ if e.raw_os_error() == Some(libc::ENOTDIR) => "not_found",
            _ if e.raw_os_error() == Some(libc::ELOOP) => "invalid",
            _ if e.raw_os_error() == Some(libc::EROFS) => "invalid",
            _ => "internal",
        };
        Failure {
            kind: kind.into(),
            message: format!("{what}: {msg}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The helper process
// ---------------------------------------------------------------------------------------

/// `tether archive-helper JOB`: enters the container's filesystem as its root and runs
/// one archive job (internal; started by the daemon, before any thread exists: entering
/// a mount namespace needs a single-threaded process). Returns the exit code: 0, or 1
/// after writing a JSON [`Failure`] line to stderr.
pub fn helper_main(argv: &[String]) -> i32 {
    let r = argv
        .get(1)
        .ok_or_else(|| {
            Failure::invalid("tether archive-helper: internal command, started by the daemon")
        })
        .and_then(|j| serde_json::from_str::<Job>(j).map_err(Failure::internal))
        .and_then(|job| {
            enter(&job.view)?;
            run(job.op)
        });
    match r {
        Ok(()) => 0,
        Err(f) => {
            let line = serde_json::to_string(&f).unwrap_or_default();
            let _ = writeln!(io::stderr().lock(), "{line}");
            1
        }
    }
}

fn nix_io(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Makes the container's filesystem the process's root directory (see [`View`]).
fn enter(view: &View) -> Result<(), Failure> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{setns, unshare, CloneFlags};
    let chroot_here = |dir: &Path| -> Result<(), Failure> {
        std::env::set_current_dir(dir).map_err(|e| Failure::io("enter the container root", e))?;
        nix::unistd::chroot(".")
            .map_err(|e| Failure::io("chroot into the container root", nix_io(e)))?;
        std::env::set_current_dir("/").map_err(|e| Failure::io("chdir /", e))
    };
    match view {
        View::Ns { pid } => {
            let root = fs::File::open(format!("/proc/{pid}/root"))
                .map_err(|e| Failure::internal(format!("the container is not running ({e})")))?;
            let ns = fs::File::open(format!("/proc/{pid}/ns/mnt"))
                .map_err(|e| Failure::internal(format!("the container is not running ({e})")))?;
            setns(&ns, CloneFlags::CLONE_NEWNS)
                .map_err(|e| Failure::io("enter the container's mount namespace", nix_io(e)))?;
            nix::unistd::fchdir(root.as_raw_fd())
                .map_err(|e| Failure::io("enter the container root", nix_io(e)))?;
            nix::unistd::chroot(".")
                .map_err(|e| Failure::io("chroot into the container root", nix_io(e)))?;
            std::env::set_current_dir("/").map_err(|e| Failure::io("chdir /", e))
        }
        View::Overlay {
            lower,
            upper,
            work,
            target,
            mounts,
        } => {
            unshare(CloneFlags::CLONE_NEWNS)
                .map_err(|e| Failure::io("create a mount namespace", nix_io(e)))?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| Failure::io("make the mount namespace private", nix_io(e)))?;
            tether_runtime::rootfs::mount_overlay(lower, upper, work, target)
                .map_err(Failure::internal)?;
            // the mount sources are taken before the chroot (they are host paths), and
            // attached after it, so that their mount points resolve inside the container
            let mut trees = Vec::new();
            for m in mounts {
                match open_tree(&m.source) {
                    Ok(fd) => trees.push((m, fd)),
                    // a missing source is made by the container's start: nothing there yet
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Failure::io(&format!("mount {}", m.source.display()), e)),
                }
            }
            chroot_here(target)?;
            trees.sort_by_key(|(m, _)| m.dest.matches('/').count());
            for (m, fd) in trees {
                attach_tree(m, &fd).map_err(|e| {
                    Failure::io(&format!("mount {} on {}", m.source.display(), m.dest), e)
                })?;
            }
            Ok(())
        }
        View::NsRoot { pid } => {
            let ns = fs::File::open(format!("/proc/{pid}/ns/mnt"))
                .map_err(|e| Failure::internal(format!("the container is not running ({e})")))?;
            setns(&ns, CloneFlags::CLONE_NEWNS)
                .map_err(|e| Failure::io("enter the container's mount namespace", nix_io(e)))?;
            // setns(2) put this process at the namespace's root: the container's
            let root = open_tree_at(Path::new("/"), false)
                .map_err(|e| Failure::io("take the container's root mount", e))?;
            nix::unistd::fchdir(root.as_raw_fd())
                .map_err(|e| Failure::io("enter the container root", nix_io(e)))?;
            nix::unistd::chroot(".")
                .map_err(|e| Failure::io("chroot into the container root", nix_io(e)))?;
            std::env::set_current_dir("/").map_err(|e| Failure::io("chdir /", e))
        }
    }
}

/// `open_tree(2)`: a detached copy of the mount tree at `path` (recursive).
fn open_tree(path: &Path) -> io::Result<std::os::fd::OwnedFd> {
    open_tree_at(path, true)
}

/// `open_tree(2)` with `OPEN_TREE_CLONE`: a detached copy of the mount at `path`, with the
/// mounts under it when `recursive`.
fn open_tree_at(path: &Path, recursive: bool) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const OPEN_TREE_CLONE: libc::c_long = 1;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_long;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_long;
    }
    // SAFETY: a valid NUL-terminated path; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the detached tree `fd` at `m.dest` in the current root (creating the mount
/// point as runc would: a directory, or an empty file for a file source), read-only
/// when asked.
fn attach_tree(m: &BindMount, fd: &std::os::fd::OwnedFd) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_long = 4;
    let dest = Path::new(&m.dest);
    let is_dir = fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|md| md.is_dir())
        .unwrap_or(true);
    match fs::metadata(dest) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if is_dir {
                fs::create_dir_all(dest)?;
            } else {
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p)?;
                }
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(dest)?;
            }
        }
        Err(e) => return Err(e),
    }
    let c = std::ffi::CString::new(m.dest.as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid fd and NUL-terminated strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if m.ro {
        use nix::mount::{mount, MsFlags};
        mount(
            None::<&str>,
            dest,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(nix_io)?;
    }
    Ok(())
}

fn run(op: Op) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let line = |out: &mut dyn Write, v: String| -> Result<(), Failure> {
        out.write_all(v.as_bytes())
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush())
            .map_err(|e| Failure::io("write", e))
    };
    let json = |st: &PathStat| serde_json::to_string(st).unwrap_or_default();
    match op {
        Op::Stat { path } => {
            let (st, _) = stat_path(&path)?;
            line(&mut out, json(&st))
        }
        Op::Get { path } => {
            let (st, resolved) = stat_path(&path)?;
            line(&mut out, json(&st))?;
            let mut b = tar::Builder::new(&mut out);
            let mut w = Walker::default();
            w.append(&mut b, &resolved, &st.name)
                .map_err(|e| Failure::io("archive", e))?;
            b.finish().map_err(|e| Failure::io("archive", e))?;
            drop(b);
            out.flush().map_err(|e| Failure::io("write", e))
        }
        Op::Export => {
            line(&mut out, "{}".to_string())?;
            let mut b = tar::Builder::new(&mut out);
            let mut w = Walker::default();
            for name in sorted_names(Path::new("/")).map_err(|e| Failure::io("export", e))? {
                w.append(&mut b, &Path::new("/").join(&name), &name.to_string_lossy())
                    .map_err(|e| Failure::io("export", e))?;
            }
            b.finish().map_err(|e| Failure::io("export", e))?;
            drop(b);
            out.flush().map_err(|e| Failure::io("write", e))
        }
        Op::Put { path, opts } => put(&path, opts),
    }
}

/// moby's `PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)`: the path made
/// absolute and cleaned, with a trailing `/.` or `/` of the original kept.
pub fn abs_path(path: &str) -> String {
    let mut comps: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                comps.pop();
            }
            c => comps.push(c),
        }
    }
    let mut s = format!("/{}", comps.join("/"));
    if path.ends_with("/.") || path == "." {
        if s != "/" {
            s.push('/');
        }
        s.push('.');
    } else if path.ends_with('/') && s != "/" {
        s.push('/');
    }
    s
}

/// Go's `filepath.Split`: (everything up to and including the last `/`, the rest).
fn split_last(abs: &str) -> (&str, &str) {
    match abs.rfind('/') {
        Some(i) => (&abs[..=i], &abs[i + 1..]),
        None => ("", abs),
    }
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored; `/` for the root.
pub fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Resolves `path` (absolute) in the current root following every symlink, as the
/// kernel would, but keeping components that do not exist (lexically, `..` popping);
/// never leaves the root (which is the container's, see [`enter`]).
///
/// Errors: ELOOP after [`MAX_SYMLINK_HOPS`] links; I/O errors other than "not found".
fn resolve_all(path: &str) -> io::Result<PathBuf> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut hops = 0;
    let mut missing = false;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if missing {
            resolved.push(c);
            continue;
        }
        let mut cand = PathBuf::from("/");
        cand.extend(&resolved);
        cand.push(&c);
        match fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = fs::read_link(&cand)?;
                if target.has_root() {
                    resolved.clear();
                }
                for part in target.components().rev() {
                    match part {
                        Component::Normal(n) => pending.push_front(n.to_os_string()),
                        Component::ParentDir => pending.push_front("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(_) => resolved.push(c),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                resolved.push(c);
            }
            Err(e) => return Err(e),
        }
    }
    let mut out = PathBuf::from("/");
    out.extend(&resolved);
    Ok(out)
}

/// moby's `ResolvePath` + `StatPath`: the stat of `path` (last element not followed)
/// and the path to archive.
fn stat_path(path: &str) -> Result<(PathStat, PathBuf), Failure> {
    let abs = abs_path(path);
    let (dir, base) = split_last(&abs);
    let mut resolved = resolve_all(dir).map_err(|e| Failure::io(path, e))?;
    if !base.is_empty() {
        resolved.push(base);
    }
    let m = fs::symlink_metadata(&resolved).map_err(|e| Failure::io(path, e))?;
    let link_target = if m.file_type().is_symlink() {
        resolve_all(&abs)
            .map_err(|e| Failure::io(path, e))?
            .display()
            .to_string()
    } else {
        String::new()
    };
    let mtime = chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    Ok((
        PathStat {
            name: base_name(&abs),
            size: m.size() as i64,
            mode: go_mode(m.mode()),
            mtime,
            link_target,
        },
        resolved,
    ))
}

fn sorted_names(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut v: Vec<OsString> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// Kernel filesystems whose contents are never archived (a running container's
/// `/proc`, `/sys`, ...): their directory is, empty.
fn is_pseudo_fs(dir: &Path) -> bool {
    use nix::sys::statfs::{statfs, FsType};
    const PSEUDO: &[i64] = &[
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x6367_7270, // cgroup2
        0x0027_e0eb, // cgroup
        0x1cd1,      // devpts
        0x1980_0202, // mqueue
        0x7472_6163, // tracefs
        0x6462_6720, // debugfs
        0x7363_6673, // securityfs
        0xcafe_4a11, // bpf
    ];
    statfs(dir)
        .map(|s| {
            let FsType(t) = s.filesystem_type();
            PSEUDO.contains(&t)
        })
        .unwrap_or(false)
}

/// Writes a tree as tar entries (moby `archive.TarWithOptions` behaviour): symlinks are
/// archived as links, never followed; hard links within the tree become link entries;
/// sockets are skipped; uid, gid, mode and mtime are kept; directory names end in `/`.
#[derive(Default)]
struct Walker {
    /// (dev, inode) of files with several links -> the entry name they were first written as.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl Walker {
    fn append<W: Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        src: &Path,
        name: &str,
    ) -> io::Result<()> {
        let m = fs::symlink_metadata(src)?;
        let ft = m.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        h.set_size(0);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            let dname = if name.ends_with('/') {
                name.to_string()
            } else {
                format!("{name}/")
            };
            append_raw(b, &mut h, dname.as_bytes(), None, io::empty())?;
            if is_pseudo_fs(src) {
                return Ok(());
            }
            for n in sorted_names(src)? {
                let child = format!("{dname}{}", n.to_string_lossy());
                self.append(b, &src.join(&n), &child)?;
            }
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            let target = fs::read_link(src)?;
            append_raw(
                b,
                &mut h,
                name.as_bytes(),
                Some(target.as_os_str().as_bytes()),
                io::empty(),
            )?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = self.links.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    let first = first.clone();
                    return append_raw(b, &mut h, name.as_bytes(), Some(&first), io::empty());
                }
                self.links.insert(key, name.as_bytes().to_vec());
            }
            // the file may have been replaced since the lstat (a running container): never
            // follow a link, never wait on a FIFO, archive only what is still a file
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(src)?;
            if !f.metadata()?.is_file() {
                return Ok(());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(m.size());
            append_raw(
                b,
                &mut h,
                name.as_bytes(),
                None,
                ExactReader::new(f, m.size()),
            )?;
        } else {
            let (ty, dev) = if ft.is_fifo() {
                (tar::EntryType::Fifo, 0)
            } else if ft.is_char_device() {
                (tar::EntryType::Char, m.rdev())
            } else {
                (tar::EntryType::Block, m.rdev())
            };
            h.set_entry_type(ty);
            h.set_device_major(libc::major(dev))?;
            h.set_device_minor(libc::minor(dev))?;
            append_raw(b, &mut h, name.as_bytes(), None, io::empty())?;
        }
        Ok(())
    }
}

/// Reads exactly `size` bytes: a file that shrank while being read is padded with
/// zeros, one that grew is cut, so the tar stream stays well formed.
struct ExactReader<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> ExactReader<R> {
    fn new(r: R, size: u64) -> Self {
        ExactReader {
            inner: r.take(size),
            left: size,
        }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = match self.inner.read(buf)? {
            0 => {
                let n = buf.len().min(self.left as usize);
                buf[..n].fill(0);
                n
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// The plain or gzip-compressed tar on stdin (the Engine API's PUT accepts both).
fn tar_input() -> io::Result<Box<dyn Read>> {
    let mut r = io::BufReader::new(io::stdin());
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(r)))
    } else {
        Ok(Box::new(r))
    }
}

/// moby `extractToDir`: `path` (fully resolved) must be a directory; entries are
/// extracted below it (no entry can climb out: `..` entries are skipped, and the root is
/// the container's).
fn put(path: &str, opts: PutOptions) -> Result<(), Failure> {
    let abs = abs_path(path);
    let dir = resolve_all(&abs).map_err(|e| Failure::io(path, e))?;
    let m = fs::symlink_metadata(&dir).map_err(|e| Failure::io(path, e))?;
    if !m.is_dir() {
        return Err(Failure::invalid(format!(
            "extraction point is not a directory: {path}"
        )));
    }
    let input = tar_input().map_err(|e| Failure::io("read the archive", e))?;
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(opts.copy_uid_gid);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    let entries = ar
        .entries()
        .map_err(|e| Failure::invalid(format!("invalid tar archive: {e}")))?;
    for entry in entries {
        let mut e = entry.map_err(|e| Failure::invalid(format!("invalid tar archive: {e}")))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let rel: Vec<&str> = name
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if rel.contains(&"..") {
            return Err(Failure::invalid(format!(
                "invalid tar archive: entry {name:?} climbs out of the extraction directory"
            )));
        }
        let dest = rel.iter().fold(dir.clone(), |p, c| p.join(c));
        let is_dir = e.header().entry_type().is_dir();
        if opts.no_overwrite_dir_non_dir && !rel.is_empty() {
            if let Ok(old) = fs::symlink_metadata(&dest) {
                let shown = format!("{}/{}", abs.trim_end_matches(['/', '.']), rel.join("/"));
                if old.is_dir() && !is_dir {
                    return Err(Failure::invalid(format!(
                        "cannot overwrite directory {shown:?} with non-directory {name:?}"
                    )));
                }
                if !old.is_dir() && is_dir {
                    return Err(Failure::invalid(format!(
                        "cannot overwrite non-directory {shown:?} with directory {name:?}"
                    )));
                }
            }
        }
        if !opts.copy_uid_gid && !is_dir && !rel.is_empty() {
            // a new inode, owned by us (root), instead of an existing file's owner
            if let Ok(old) = fs::symlink_metadata(&dest) {
                if !old.is_dir() {
                    let _ = fs::remove_file(&dest);
                }
            }
        }
        e.unpack_in(&dir)
            .map_err(|err| Failure::io(&format!("extract {name}"), err))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Changes (docker diff), from the overlay's upper directory
// ---------------------------------------------------------------------------------------

/// What an overlay lower layer has at one name.
enum Lower {
    Absent,
    Whiteout,
    Dir(PathBuf, bool),
    Other(fs::Metadata),
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut v = [0u8; 4];
    // SAFETY: valid NUL-terminated strings; the buffer pointer/length describe `v`.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

fn lower_at(dir: &Path, name: &OsString) -> Lower {
    let p = dir.join(name);
    match fs::symlink_metadata(&p) {
        Err(_) => Lower::Absent,
        Ok(m) if is_whiteout(&m) => Lower::Whiteout,
        Ok(m) if m.is_dir() => {
            let opaque = is_opaque(&p);
            Lower::Dir(p, opaque)
        }
        Ok(m) => Lower::Other(m),
    }
}

/// The lower entry a merged directory shows at `name` (top-most layer first), if any.
fn lower_entry(lowers: &[PathBuf], name: &OsString) -> Option<fs::Metadata> {
    for d in lowers {
        match lower_at(d, name) {
            Lower::Absent => continue,
            Lower::Whiteout => return None,
            Lower::Dir(p, _) => return fs::symlink_metadata(p).ok(),
            Lower::Other(m) => return Some(m),
        }
    }
    None
}

/// The lower directories merged at `name` below `lowers`.
fn lower_dirs(lowers: &[PathBuf], name: &OsString) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in lowers {
        match lower_at(d, name) {
            Lower::Absent => continue,
            Lower::Dir(p, opaque) => {
                out.push(p);
                if opaque {
                    break;
                }
            }
            _ => break,
        }
    }
    out
}

/// Names the merged lower directories show (whiteouts and shadowed entries removed).
fn lower_names(lowers: &[PathBuf]) -> Vec<OsString> {
    let mut seen: BTreeMap<OsString, bool> = BTreeMap::new();
    for d in lowers {
        for n in sorted_names(d).unwrap_or_default() {
            if seen.contains_key(&n) {
                continue;
            }
            let wh = fs::symlink_metadata(d.join(&n))
                .map(|m| is_whiteout(&m))
                .unwrap_or(false);
            seen.insert(n, !wh);
        }
    }
    seen.into_iter()
        .filter(|(_, v)| *v)
        .map(|(n, _)| n)
        .collect()
}

/// The changes recorded in an overlay `upper` directory over `lowers` (image layer
/// directories, top-most first), sorted by path; moby's `archive.OverlayChanges` rules:
/// a whiteout (0:0 character device) is a deletion; an entry the image has is a
/// modification (a directory only when its mode or mtime changed, or an entry in it was
/// added or deleted), any other an addition. An opaque directory deletes every entry the
/// image had in it.
///
/// The upper directory is read through file descriptors opened with `O_NOFOLLOW`, so a
/// running container that swaps a directory for a symlink cannot make the walk leave it.
pub fn overlay_changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Change>> {
    let mut out: BTreeMap<String, u8> = BTreeMap::new();
    let dir = open_dir_nofollow(upper)?;
    walk_upper(&dir, "", lowers, &mut out)?;
    Ok(out
        .into_iter()
        .map(|(path, kind)| Change { path, kind })
        .collect())
}

fn open_dir_nofollow(p: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(p)
}

/// `/proc/self/fd/N`: the already opened directory, whatever its path became since.
fn fd_path(f: &fs::File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

fn fd_is_opaque(f: &fs::File) -> bool {
    let mut v = [0u8; 4];
    // SAFETY: a valid fd and NUL-terminated name; the buffer pointer/length describe `v`.
    let n = unsafe {
        libc::fgetxattr(
            f.as_raw_fd(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

/// Mount points the runtime creates when an image lacks them; like the paths of
/// Docker's init layer they are not reported as added.
const RUNTIME_MADE: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
];

fn walk_upper(
    dir: &fs::File,
    prefix: &str,
    lowers: &[PathBuf],
    out: &mut BTreeMap<String, u8>,
) -> io::Result<()> {
    let base = fd_path(dir);
    let names = sorted_names(&base)?;
    let mut parent_changed = false;
    let mut lowers = lowers;
    if fd_is_opaque(dir) && !prefix.is_empty() {
        for n in lower_names(lowers) {
            out.insert(format!("{prefix}/{}", n.to_string_lossy()), 2);
            parent_changed = true;
        }
        lowers = &[];
    }
    for n in names {
        let p = base.join(&n);
        let m = fs::symlink_metadata(&p)?;
        let path = format!("{prefix}/{}", n.to_string_lossy());
        if is_whiteout(&m) {
            out.insert(path, 2);
            parent_changed = true;
            continue;
        }
        let old = lower_entry(lowers, &n);
        if old.is_none() && RUNTIME_MADE.contains(&path.as_str()) {
            // a mount point the runtime made for the image (Docker's init layer has
            // them): not a change of the container's
            continue;
        }
        match &old {
            None => {
                out.insert(path.clone(), 1);
                parent_changed = true;
            }
            Some(o) if o.is_dir() && m.is_dir() => {
                if o.mode() != m.mode()
                    || o.mtime() != m.mtime()
                    || o.mtime_nsec() != m.mtime_nsec()
                {
                    out.insert(path.clone(), 0);
                }
            }
            Some(_) => {
                out.insert(path.clone(), 0);
            }
        }
        if m.is_dir() {
            // below a directory that replaced a non-directory, the image has nothing
            let sub = if old.as_ref().is_some_and(|o| o.is_dir()) {
                lower_dirs(lowers, &n)
            } else {
                Vec::new()
            };
            match open_dir_nofollow(&p) {
                Ok(d) => walk_upper(&d, &path, &sub, out)?,
                // replaced by a non-directory meanwhile: nothing below it
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if parent_changed && !prefix.is_empty() {
        out.entry(prefix.to_string()).or_insert(0);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The engine side
// ---------------------------------------------------------------------------------------

/// A tar stream being produced by a helper: chunks arrive on the receiver; dropping it
/// stops the helper.
pub type TarStream = mpsc::Receiver<Bytes>;

impl Engine {
    /// The container's own lock: held by start (across the runtime's part, while the
    /// engine's lock is released), connect, disconnect, rm and the archive helpers (a
    /// stopped container's overlay is mounted by one user at a time). Taken before the
    /// engine's lock, never after it.
    pub(crate) fn fs_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut g = self.fs_locks.lock().unwrap_or_else(|p| p.into_inner());
        g.entry(id.to_string()).or_default().clone()
    }

    /// The helper's view of container `key`, and the lock guard to hold while it runs
    /// (for a stopped container). `rootfs_only` asks for the overlay root without the
    /// container's mounts (export).
    async fn view(
        &self,
        key: &str,
        rootfs_only: bool,
    ) -> Result<(View, Option<tokio::sync::OwnedMutexGuard<()>>), EngineError> {
        let id = self.state.lock().await.container(key)?.id.clone();
        let guard = self.fs_lock(&id).lock_owned().await;
        let st = self.state.lock().await;
        let c = st
            .containers
            .get(&id)
            .ok_or_else(|| EngineError::NotFound(format!("No such container: {key}")))?;
        let dir = self.container_dir(&id);
        if c.state.status == "running" {
            drop(guard);
            return Ok((
                if rootfs_only {
                    View::NsRoot { pid: c.state.pid }
                } else {
                    View::Ns { pid: c.state.pid }
                },
                None,
            ));
        }
        let image = self.images.get(&c.image_id)?;
        let mut mounts: Vec<BindMount> = ["hosts", "resolv.conf", "hostname"]
            .into_iter()
            .map(|f| BindMount {
                source: dir.join(f),
                dest: format!("/etc/{f}"),
                ro: false,
            })
            .collect();
        if !rootfs_only {
            for b in c.host_config.binds.clone().unwrap_or_default() {
                let parts: Vec<&str> = b.split(':').collect();
                let (Some(src), Some(dest)) = (parts.first(), parts.get(1)) else {
                    continue;
                };
                mounts.push(BindMount {
                    source: if crate::volumes::is_volume_source(src) {
                        self.volume_data(src)
                    } else {
                        PathBuf::from(src)
                    },
                    dest: dest.to_string(),
                    ro: parts
                        .get(2)
                        .is_some_and(|o| o.split(',').any(|x| x == "ro")),
                });
            }
        } else {
            mounts.clear();
        }
        Ok((
            View::Overlay {
                lower: self.images.layer_paths(&image),
                upper: dir.join("upper"),
                work: dir.join("work"),
                target: dir.join("rootfs"),
                mounts,
            },
            Some(guard),
        ))
    }

    fn helper(&self, job: &Job) -> Result<tokio::process::Command, EngineError> {
        let spec = serde_json::to_string(job).map_err(|e| EngineError::Internal(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(&self.cfg.exe);
        cmd.arg("archive-helper")
            .arg(spec)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// Docker's error for a helper's failure on `path` of container `key`.
    fn helper_error(key: &str, path: &str, stderr: &[u8]) -> EngineError {
        let text = String::from_utf8_lossy(stderr);
        let f: Failure = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                Failure::internal(format!("archive helper failed: {}", text.trim()))
            });
        match f.kind.as_str() {
            "not_found" => {
                EngineError::NotFound(format!("Could not find the file {path} in container {key}"))
            }
            "invalid" => EngineError::InvalidParam(f.message),
            _ => EngineError::Internal(f.message),
        }
    }

    /// Starts a streaming job: waits for its first line (the stat, or `{}`), then
    /// streams the rest. The fs guard lives as long as the stream.
    async fn stream_job(
        &self,
        key: &str,
        path: &str,
        op: Op,
        rootfs_only: bool,
    ) -> Result<(String, TarStream), EngineError> {
        let (view, guard) = self.view(key, rootfs_only).await?;
        let mut child = self
            .helper(&Job { view, op })?
            .spawn()
            .map_err(|e| EngineError::Internal(format!("cannot run the archive helper: {e}")))?;
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(EngineError::Internal("archive helper without pipes".into()));
        };
        let mut rd = tokio::io::BufReader::with_capacity(256 * 1024, stdout);
        let mut first = String::new();
        let n = rd.read_line(&mut first).await?;
        if n == 0 {
            let mut err = Vec::new();
            let _ = stderr.read_to_end(&mut err).await;
            let _ = child.wait().await;
            return Err(Self::helper_error(key, path, &err));
        }
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            let _guard = guard;
            let mut buf = vec![0u8; 128 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            // the client went away
                            let _ = child.kill().await;
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the archive helper");
                        let _ = child.kill().await;
                        break;
                    }
                }
            }
            let mut err = Vec::new();
            let _ = stderr.read_to_end(&mut err).await;
            match child.wait().await {
                Ok(s) if s.success() => {}
                other => {
                    tracing::warn!(status = ?other, stderr = %String::from_utf8_lossy(&err).trim(), "archive stream ended with an error")
                }
            }
        });
        Ok((first, rx))
    }

    /// HEAD /containers/{id}/archive: the stat of `path` in the container.
    ///
    /// Errors: 404 no such container, or "Could not find the file PATH in container ID";
    /// 400 a symlink loop; 500 the helper failed.
    pub async fn stat_archive_path(&self, key: &str, path: &str) -> Result<PathStat, EngineError> {
        let (view, guard) = self.view(key, false).await?;
        let out = self
            .helper(&Job {
                view,
                op: Op::Stat {
                    path: path.to_string(),
                },
            })?
            .output()
            .await
            .map_err(|e| EngineError::Internal(format!("cannot run the archive helper: {e}")))?;
        drop(guard);
        if !out.status.success() {
            return Err(Self::helper_error(key, path, &out.stderr));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| EngineError::Internal(format!("archive helper: bad stat: {e}")))
    }

    /// GET /containers/{id}/archive: the stat of `path` and a tar stream of it (a
    /// directory with everything below it, entries named after the path's last element).
    ///
    /// Errors: as [`Engine::stat_archive_path`].
    pub async fn get_archive(
        &self,
        key: &str,
        path: &str,
    ) -> Result<(PathStat, TarStream), EngineError> {
        let op = Op::Get {
            path: path.to_string(),
        };
        let (first, rx) = self.stream_job(key, path, op, false).await?;
        let st = serde_json::from_str(first.trim())
            .map_err(|e| EngineError::Internal(format!("archive helper: bad stat: {e}")))?;
        Ok((st, rx))
    }

    /// PUT /containers/{id}/archive: extracts the tar (plain or gzip) arriving on `body`
    /// into the directory `path` of the container, streamed to the helper as it comes.
    /// Whatever happens, `body` is read to its end (the caller's request body then is).
    ///
    /// Errors: 404 no such container or path; 400 the path is not a directory, is on a
    /// read-only mount, the archive is malformed, or (with `no_overwrite_dir_non_dir`)
    /// it would replace a directory with a non-directory or the reverse; 500 extraction
    /// failed.
    pub async fn put_archive(
        &self,
        key: &str,
        path: &str,
        opts: PutOptions,
        mut body: mpsc::Receiver<Bytes>,
    ) -> Result<(), EngineError> {
        let drain =
            |mut body: mpsc::Receiver<Bytes>| async move { while body.recv().await.is_some() {} };
        let (view, guard) = match self.view(key, false).await {
            Ok(v) => v,
            Err(e) => {
                drain(body).await;
                return Err(e);
            }
        };
        let spawned = self
            .helper(&Job {
                view,
                op: Op::Put {
                    path: path.to_string(),
                    opts,
                },
            })
            .and_then(|mut c| {
                c.stdin(Stdio::piped()).spawn().map_err(|e| {
                    EngineError::Internal(format!("cannot run the archive helper: {e}"))
                })
            });
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                drain(body).await;
                return Err(e);
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            while let Some(chunk) = body.recv().await {
                if tokio::io::AsyncWriteExt::write_all(&mut stdin, &chunk)
                    .await
                    .is_err()
                {
                    // the helper stopped reading (it failed): its error says why
                    break;
                }
            }
        }
        drain(body).await;
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| EngineError::Internal(format!("archive helper: {e}")))?;
        drop(guard);
        if !out.status.success() {
            return Err(Self::helper_error(key, path, &out.stderr));
        }
        Ok(())
    }

    /// GET /containers/{id}/export: the container's root filesystem (image and changes,
    /// without its volumes and bind mounts) as a tar stream.
    ///
    /// Errors: 404 no such container; 500 the helper failed.
    pub async fn export_container(&self, key: &str) -> Result<TarStream, EngineError> {
        let (_, rx) = self.stream_job(key, "/", Op::Export, true).await?;
        Ok(rx)
    }

    /// GET /containers/{id}/changes: see [`overlay_changes`].
    ///
    /// Errors: 404 no such container; 500 the upper directory cannot be read.
    pub async fn container_changes(&self, key: &str) -> Result<Vec<Change>, EngineError> {
        let (id, image_id) = {
            let st = self.state.lock().await;
            let c = st.container(key)?;
            (c.id.clone(), c.image_id.clone())
        };
        let image = self.images.get(&image_id)?;
        let lowers = self.images.layer_paths(&image);
        let upper = self.container_dir(&id).join("upper");
        tokio::task::spawn_blocking(move || {
            if !upper.exists() {
                return Ok(Vec::new());
            }
            overlay_changes(&upper, &lowers)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(|e| EngineError::Internal(format!("reading the container's changes: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_paths_keep_trailing_dot_and_slash() {
        assert_eq!(abs_path("etc/hosts"), "/etc/hosts");
        assert_eq!(abs_path("/etc/"), "/etc/");
        assert_eq!(abs_path("/etc/."), "/etc/.");
        assert_eq!(abs_path("/"), "/");
        assert_eq!(abs_path("."), "/.");
        assert_eq!(abs_path("/a/../../b"), "/b");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), "/");
        assert_eq!(split_last("/etc/hosts"), ("/etc/", "hosts"));
        assert_eq!(split_last("/etc/"), ("/etc/", ""));
    }

    #[test]
    fn go_file_modes() {
        assert_eq!(go_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_mode(libc::S_IFREG | 0o4755), (1 << 23) | 0o755);
        assert_eq!(go_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(
            go_mode(libc::S_IFCHR | 0o666),
            (1 << 26) | (1 << 21) | 0o666
        );
        assert_eq!(
            go_mode(libc::S_IFDIR | 0o1777),
            (1 << 31) | (1 << 20) | 0o777
        );
    }

    #[test]
    fn stat_header_is_base64_json() {
        use base64::Engine as _;
        let st = PathStat {
            name: "hosts".into(),
            size: 3,
            mode: 0o644,
            mtime: "2024-01-01T00:00:00Z".into(),
            link_target: String::new(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(st.header_value())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "hosts", "size": 3, "mode": 420, "mtime": "2024-01-01T00:00:00Z", "linkTarget": ""})
        );
    }

    #[test]
    fn exact_reader_pads_and_cuts() {
        let mut v = Vec::new();
        ExactReader::new(&b"abc"[..], 5)
            .read_to_end(&mut v)
            .unwrap();
        assert_eq!(v, b"abc\0\0");
        let mut v = Vec::new();
        ExactReader::new(&b"abcdef"[..], 2)
            .read_to_end(&mut v)
            .unwrap();
        assert_eq!(v, b"ab");
    }

    #[test]
    fn changes_from_an_upper_dir() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        for d in ["etc", "var/lib", "opt/x"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::write(lower.join("etc/group"), "root").unwrap();
        fs::write(lower.join("opt/x/old"), "o").unwrap();
        // upper: /etc/passwd modified, /etc/new added, /etc/group deleted, /tmp added
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/passwd"), "root2").unwrap();
        fs::write(upper.join("etc/new"), "n").unwrap();
        let c = std::ffi::CString::new(upper.join("etc/group").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid path; a 0:0 character device is an overlay whiteout.
        let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) };
        if rc != 0 {
            // not allowed here (unprivileged): nothing more to check
            return;
        }
        fs::create_dir_all(upper.join("tmp/sub")).unwrap();
        // mount points runc made for the image are not changes
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::write(upper.join("etc/resolv.conf"), "").unwrap();
        let changes = overlay_changes(&upper, &[lower]).unwrap();
        let got: Vec<(String, u8)> = changes.into_iter().map(|c| (c.path, c.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("/etc".to_string(), 0),
                ("/etc/group".to_string(), 2),
                ("/etc/new".to_string(), 1),
                ("/etc/passwd".to_string(), 0),
                ("/tmp".to_string(), 1),
                ("/tmp/sub".to_string(), 1),
            ]
        );
    }
}
