//! Layers made from a container's overlayfs upper directory (what `docker
//! commit` and each step of `docker build` store).
//!
//! The upper directory is written as an uncompressed tar, the OCI image spec
//! "Image Layer Filesystem Changeset" (layer.md), converting overlayfs'
//! representation of deletions as moby's overlay2 driver does:
//! - a whiteout (a 0:0 character device `NAME`) becomes an empty regular file
//!   `.wh.NAME`;
//! - an opaque directory (xattr `trusted.overlay.opaque=y`) gets an extra empty
//!   regular file `DIR/.wh..wh..opq` right after its own entry.
//!
//! Modes (with set-id and sticky bits), uid/gid, mtimes (whole seconds),
//! symlinks, hard links (within the layer), devices, FIFOs and the
//! `security.capability` xattr are kept; sockets are skipped (as moby does).
//! Entries are written depth first, children sorted by name bytes, with no
//! atime/ctime and no user/group names, so the same content gives the same
//! tar and therefore the same diff ID.
//!
//! The tar is hashed while it is written (the diff ID) and becomes the
//! layer's kept blob; it is unpacked by the same code as imported and pulled
//! layers ([`crate::unpack`]) and committed content-addressed, so an existing
//! layer with the same diff ID is reused.

use crate::fsutil::{io_err, HashingWriter, TempDir};
use crate::{blob, ImageError, ImageStore};
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs;
use std::io::{self, BufWriter, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// overlayfs' opaque-directory xattr.
const OVL_OPAQUE: &str = "trusted.overlay.opaque";
/// overlayfs' renamed-directory xattr (`redirect_dir=on`).
const OVL_REDIRECT: &str = "trusted.overlay.redirect";
/// overlayfs' metadata-only copy-up xattr (`metacopy=on`).
const OVL_METACOPY: &str = "trusted.overlay.metacopy";
/// The only xattr carried into layers, as moby's archive package does.
const CAPABILITY_XATTR: &str = "security.capability";

/// Layers pinned against garbage collection: made by
/// [`ImageStore::layer_from_upper`] and not yet (or no longer) part of an
/// image. Diff ID -> number of live [`NewLayer`] values.
pub(crate) type Pins = Arc<Mutex<HashMap<String, usize>>>;

/// A layer in the store made by [`ImageStore::layer_from_upper`], not yet
/// part of an image. While this value lives the layer is kept even though no
/// image references it; pass it to [`ImageStore::create_image`] (in
/// [`crate::NewImage::layer`]), or give it up with
/// [`ImageStore::discard_layer`] (dropping it only unpins the layer, which the
/// next garbage collection then removes).
pub struct NewLayer {
    /// `sha256:<hex>` of the uncompressed layer tar (its diff ID).
    pub diff_id: String,
    /// Bytes of regular-file content in the layer.
    pub size: u64,
    pins: Pins,
}

impl std::fmt::Debug for NewLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLayer")
            .field("diff_id", &self.diff_id)
            .field("size", &self.size)
            .finish()
    }
}

impl NewLayer {
    fn pinned(pins: &Pins, diff_id: String, size: u64) -> NewLayer {
        *pins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(diff_id.clone())
            .or_insert(0) += 1;
        NewLayer {
            diff_id,
            size,
            pins: pins.clone(),
        }
    }
}

impl Drop for NewLayer {
    fn drop(&mut self) {
        let mut p = self.pins.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = p.get_mut(&self.diff_id) {
            *n -= 1;
            if *n == 0 {
                p.remove(&self.diff_id);
            }
        }
    }
}

/// `fgetxattr(2)`: `Ok(None)` when the file has no such xattr or the
/// filesystem does not support xattrs.
fn get_xattr(fd: RawFd, name: &str) -> io::Result<Option<Vec<u8>>> {
    let n = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is open; valid C string; the buffer pointer/len describe a live Vec.
    read_xattr(|buf| unsafe { libc::fgetxattr(fd, n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// One xattr value read by `get` (`fgetxattr`/`lgetxattr` into the buffer it is given),
/// growing the buffer on ERANGE up to 64 KiB (the VFS's limit); `None` when the file has
/// no such xattr or the filesystem has none.
fn read_xattr(get: impl Fn(&mut Vec<u8>) -> isize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        let rc = get(&mut buf);
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < (1 << 16) => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat(2)` of `name` in directory `dir`, never following a symlink in
/// `name` (it is one component, so nothing else can be followed either).
fn open_at(dir: RawFd, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = c_name(name)?;
    // SAFETY: `dir` is an open directory fd and `c` a valid C string.
    let fd = unsafe {
        libc::openat(
            dir,
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(2)` with `AT_SYMLINK_NOFOLLOW` (or `fstat` of `dir` itself when `name` is None).
fn stat_at(dir: RawFd, name: Option<&OsStr>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = match name {
        Some(n) => {
            let c = c_name(n)?;
            // SAFETY: open fd, valid C string, `st` is writable.
            unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) }
        }
        // SAFETY: open fd, `st` is writable.
        None => unsafe { libc::fstat(dir, &mut st) },
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// `readlinkat(2)`.
fn readlink_at(dir: RawFd, name: &OsStr) -> io::Result<OsString> {
    let c = c_name(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: open fd, valid C string, the buffer pointer/len describe a live Vec.
    let n = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

/// The names in directory `dir` (not `.`/`..`), sorted by bytes.
fn list_dir(dir: RawFd) -> io::Result<Vec<OsString>> {
    // fdopendir takes ownership of the fd it is given: give it a duplicate.
    // SAFETY: `dir` is open.
    let dup = unsafe { libc::fcntl(dir, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is an open directory fd we own; on success the stream owns it.
    let dp = unsafe { libc::fdopendir(dup) };
    if dp.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `dup` is still ours to close.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    // SAFETY: `dp` is a fresh directory stream positioned at its start.
    unsafe { libc::rewinddir(dp) };
    let mut names = Vec::new();
    let res = loop {
        // SAFETY: errno is thread-local; reset it to tell end-of-stream from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dp` is a valid open stream.
        let ent = unsafe { libc::readdir(dp) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            break if e.raw_os_error().unwrap_or(0) == 0 {
                Ok(())
            } else {
                Err(e)
            };
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b != b"." && b != b".." {
            names.push(OsString::from_vec(b.to_vec()));
        }
    };
    // SAFETY: `dp` is valid and closed once (closing `dup` with it).
    unsafe { libc::closedir(dp) };
    res?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn kind_of(st: &libc::stat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}

/// Writes the tar of an upper directory. Every file is reached through the
/// directory fds walked so far (`openat`/`fstatat` of one name, symlinks never
/// followed), so a directory swapped for a symlink while the walk runs cannot
/// lead it outside the upper directory.
struct UpperTar<W: io::Write> {
    b: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files -> archive name of their first entry.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Directories on the current path (dev, ino), against loops.
    seen_dirs: HashSet<(u64, u64)>,
}

fn tar_err(what: String) -> impl FnOnce(io::Error) -> ImageError {
    io_err(what)
}

/// A reader of exactly `n` bytes: `r`'s, padded with zeros if the file
/// shrank while it was read (a tar entry must have the size its header says).
fn exact<R: Read>(r: R, n: u64) -> impl Read {
    r.take(n).chain(io::repeat(0).take(n)).take(n)
}

fn unsupported(what: String) -> ImageError {
    ImageError::Io {
        what,
        source: io::Error::from(io::ErrorKind::Unsupported),
    }
}

impl<W: io::Write> UpperTar<W> {
    fn header(st: &libc::stat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// Appends the children of the open directory `dir` (archive name `rel`,
    /// empty for the upper root; `path` for messages), recursively, sorted by name.
    fn walk(&mut self, dir: RawFd, path: &Path, rel: &[u8]) -> Result<(), ImageError> {
        let names = list_dir(dir).map_err(io_err(format!("reading {}", path.display())))?;
        for name in names {
            let mut arch = rel.to_vec();
            if !arch.is_empty() {
                arch.push(b'/');
            }
            arch.extend_from_slice(name.as_bytes());
            self.entry(dir, &name, &path.join(&name), &arch)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        dir: RawFd,
        base: &OsStr,
        path: &Path,
        arch: &[u8],
    ) -> Result<(), ImageError> {
        let st = match stat_at(dir, Some(base)) {
            Ok(st) => st,
            // Removed while the walk ran (a container not paused): not part of the layer.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(format!("stat {}", path.display()))(e)),
        };
        let kind = kind_of(&st);
        let name = OsStr::from_bytes(arch);
        let what = || format!("adding {} to the layer", path.display());
        let xattr_err = || format!("reading xattrs of {}", path.display());

        if kind == libc::S_IFCHR && st.st_rdev == 0 {
            // overlayfs whiteout -> `.wh.NAME` (may be a hard link to the
            // kernel's shared whiteout: never recorded as a link).
            let (parent, file) = match arch.iter().rposition(|&c| c == b'/') {
                Some(i) => (&arch[..=i], &arch[i + 1..]),
                None => (&arch[..0], arch),
            };
            let mut wh = parent.to_vec();
            wh.extend_from_slice(b".wh.");
            wh.extend_from_slice(file);
            let mut h = Self::header(&st, tar::EntryType::Regular);
            h.set_mode(0o600);
            self.b
                .append_data(&mut h, OsStr::from_bytes(&wh), io::empty())
                .map_err(tar_err(what()))?;
            return Ok(());
        }
        if kind == libc::S_IFSOCK {
            tracing::debug!(path = %path.display(), "skipping socket in layer");
            return Ok(());
        }
        if kind == libc::S_IFDIR {
            let fd = open_at(dir, base, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(io_err(format!("opening {}", path.display())))?;
            let st = stat_at(fd.as_raw_fd(), None)
                .map_err(io_err(format!("stat {}", path.display())))?;
            if get_xattr(fd.as_raw_fd(), OVL_REDIRECT)
                .map_err(io_err(xattr_err()))?
                .is_some()
            {
                return Err(unsupported(format!(
                    "{} is a renamed directory (overlayfs redirect_dir=on), which a layer cannot express",
                    path.display()
                )));
            }
            let key = (st.st_dev, st.st_ino);
            if !self.seen_dirs.insert(key) {
                return Err(ImageError::Io {
                    what: format!("directory loop at {}", path.display()),
                    source: io::Error::from(io::ErrorKind::InvalidData),
                });
            }
            let mut h = Self::header(&st, tar::EntryType::Directory);
            let mut dname = arch.to_vec();
            dname.push(b'/');
            self.append_caps(fd.as_raw_fd(), path)?;
            self.b
                .append_data(&mut h, OsStr::from_bytes(&dname), io::empty())
                .map_err(tar_err(what()))?;
            let opaque = get_xattr(fd.as_raw_fd(), OVL_OPAQUE).map_err(io_err(xattr_err()))?;
            if opaque.as_deref() == Some(b"y") {
                let mut o = Self::header(&st, tar::EntryType::Regular);
                o.set_mode(st.st_mode & 0o777);
                let mut oname = arch.to_vec();
                oname.extend_from_slice(b"/.wh..wh..opq");
                self.b
                    .append_data(&mut o, OsStr::from_bytes(&oname), io::empty())
                    .map_err(tar_err(what()))?;
            }
            self.walk(fd.as_raw_fd(), path, arch)?;
            self.seen_dirs.remove(&key);
            return Ok(());
        }
        // Hard links within the layer: later names link to the first one.
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let mut h = Self::header(&st, tar::EntryType::Link);
                self.b
                    .append_link(&mut h, name, OsStr::from_bytes(first))
                    .map_err(tar_err(what()))?;
                return Ok(());
            }
            self.links.insert(key, arch.to_vec());
        }
        match kind {
            libc::S_IFREG => {
                // O_NONBLOCK: were it swapped for a FIFO meanwhile, do not hang on it.
                let fd = open_at(dir, base, libc::O_RDONLY | libc::O_NONBLOCK)
                    .map_err(io_err(format!("opening {}", path.display())))?;
                let st = stat_at(fd.as_raw_fd(), None)
                    .map_err(io_err(format!("stat {}", path.display())))?;
                if kind_of(&st) != libc::S_IFREG {
                    return Err(ImageError::Io {
                        what: format!("{} changed while the layer was written", path.display()),
                        source: io::Error::from(io::ErrorKind::InvalidData),
                    });
                }
                if get_xattr(fd.as_raw_fd(), OVL_METACOPY)
                    .map_err(io_err(xattr_err()))?
                    .is_some()
                {
                    return Err(unsupported(format!(
                        "{} is a metadata-only copy-up (overlayfs metacopy=on), which a layer cannot express",
                        path.display()
                    )));
                }
                let size = u64::try_from(st.st_size).unwrap_or(0);
                let mut h = Self::header(&st, tar::EntryType::Regular);
                h.set_size(size);
                self.append_caps(fd.as_raw_fd(), path)?;
                let f = fs::File::from(fd);
                self.b
                    .append_data(&mut h, name, exact(io::BufReader::new(f), size))
                    .map_err(tar_err(what()))?;
            }
            libc::S_IFLNK => {
                let target = readlink_at(dir, base)
                    .map_err(io_err(format!("reading link {}", path.display())))?;
                let mut h = Self::header(&st, tar::EntryType::Symlink);
                h.set_mode(0o777);
                self.b
                    .append_link(&mut h, name, Path::new(&target))
                    .map_err(tar_err(what()))?;
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let t = match kind {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = Self::header(&st, t);
                if kind != libc::S_IFIFO {
                    h.set_device_major(libc::major(st.st_rdev))
                        .and_then(|()| h.set_device_minor(libc::minor(st.st_rdev)))
                        .map_err(tar_err(what()))?;
                }
                self.b
                    .append_data(&mut h, name, io::empty())
                    .map_err(tar_err(what()))?;
            }
            _ => tracing::debug!(path = %path.display(), "skipping unsupported file type in layer"),
        }
        Ok(())
    }

    /// A PAX `SCHILY.xattr.security.capability` record for the next entry,
    /// when the open file or directory `fd` has file capabilities.
    fn append_caps(&mut self, fd: RawFd, path: &Path) -> Result<(), ImageError> {
        if let Some(v) = get_xattr(fd, CAPABILITY_XATTR)
            .map_err(io_err(format!("reading xattrs of {}", path.display())))?
        {
            let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
            self.b
                .append_pax_extensions([(key.as_str(), &v[..])])
                .map_err(tar_err(format!("adding {} to the layer", path.display())))?;
        }
        Ok(())
    }
}

/// Writes the layer tar of `upper` to `out`; returns `(diff ID, tar bytes)`.
fn write_upper_tar(upper: &Path, out: &Path) -> Result<(String, u64), ImageError> {
    let root = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(upper)
        .map_err(io_err(format!(
            "opening upper directory {}",
            upper.display()
        )))?;
    let f = fs::File::create(out).map_err(io_err(format!("creating {}", out.display())))?;
    let hw = HashingWriter::new(BufWriter::with_capacity(256 * 1024, f));
    let mut t = UpperTar {
        b: tar::Builder::new(hw),
        links: HashMap::new(),
        seen_dirs: HashSet::new(),
    };
    t.walk(root.as_raw_fd(), upper, b"")?;
    let hw =
        t.b.into_inner()
            .map_err(io_err(format!("writing {}", out.display())))?;
    hw.finish()
        .map_err(io_err(format!("writing {}", out.display())))
}

/// `llistxattr(2)`: the names of `path`'s xattrs (empty when unsupported).
fn list_xattrs(path: &CStr) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: valid C string; the buffer pointer/len describe a live Vec.
        let rc = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(buf
                .split(|&b| b == 0)
                .filter(|n| !n.is_empty())
                .map(<[u8]>::to_vec)
                .collect());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

/// `lgetxattr(2)` of one xattr; `None` when absent.
fn lget_xattr(path: &CStr, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    // SAFETY: valid C strings; the buffer pointer/len describe a live Vec.
    read_xattr(|buf| unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })
}

/// Normalises a build step's upper directory into what unpacking its layer
/// tar (see the module docs) would leave: sockets removed; xattrs other than
/// `trusted.overlay.opaque=y` (directories) and `security.capability` removed
/// (overlayfs' `origin`, `impure`, `nlink` and anything a RUN set); atime and
/// mtime set to the mtime's whole seconds, directories after their children;
/// the root 0755 0:0. Returns the bytes of regular file content (each inode
/// once), as unpacking counts them.
fn normalise_upper(upper: &Path) -> Result<u64, ImageError> {
    fn walk(
        path: &Path,
        is_root: bool,
        seen: &mut HashSet<(u64, u64)>,
        size: &mut u64,
    ) -> Result<(), ImageError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = fs::symlink_metadata(path).map_err(io_err(format!("stat {}", path.display())))?;
        let ft = m.file_type();
        if ft.is_socket() {
            return fs::remove_file(path).map_err(io_err(format!("removing {}", path.display())));
        }
        if ft.is_dir() {
            let mut names: Vec<OsString> = fs::read_dir(path)
                .map_err(io_err(format!("reading {}", path.display())))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(io_err(format!("reading {}", path.display())))?;
            names.sort();
            for n in names {
                walk(&path.join(n), false, seen, size)?;
            }
        } else if ft.is_file() && seen.insert((m.dev(), m.ino())) {
            *size += m.len();
        }
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            io_err(format!("path {}", path.display()))(io::Error::from(io::ErrorKind::InvalidInput))
        })?;
        for name in
            list_xattrs(&c).map_err(io_err(format!("listing xattrs of {}", path.display())))?
        {
            let keep = match name.as_slice() {
                b"security.capability" => true,
                b"trusted.overlay.opaque" => {
                    let n = CString::new(name.clone()).map_err(|_| {
                        io_err(format!("xattr of {}", path.display()))(io::Error::from(
                            io::ErrorKind::InvalidInput,
                        ))
                    })?;
                    ft.is_dir()
                        && lget_xattr(&c, &n)
                            .map_err(io_err(format!("reading xattrs of {}", path.display())))?
                            .as_deref()
                            == Some(b"y")
                }
                _ => false,
            };
            if keep {
                continue;
            }
            let n = CString::new(name).map_err(|_| {
                io_err(format!("xattr of {}", path.display()))(io::Error::from(
                    io::ErrorKind::InvalidInput,
                ))
            })?;
            // SAFETY: valid C strings.
            if unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) } != 0 {
                return Err(io_err(format!("removing an xattr of {}", path.display()))(
                    io::Error::last_os_error(),
                ));
            }
        }
        if is_root {
            std::os::unix::fs::lchown(path, Some(0), Some(0))
                .map_err(io_err(format!("chown {}", path.display())))?;
            fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io_err(format!("chmod {}", path.display())))?;
        }
        crate::unpack::set_whole_second_times(path, m.mtime())
    }
    let mut size = 0;
    walk(upper, true, &mut HashSet::new(), &mut size)?;
    Ok(size)
}

impl ImageStore {
    /// Turns the overlayfs upper directory `upper` of a container (or build
    /// step) into a layer of the store, as `docker commit` and each step of
    /// the classic builder do. See the module docs of `layer.rs` for the tar
    /// format (whiteouts, opaque dirs, what metadata is kept).
    ///
    /// The tar goes to the store's `tmp/` while it is hashed; when a layer
    /// with that diff ID exists it is reused and nothing else is written,
    /// else the tar is unpacked into a new `layers/<hex>/diff` (by the same
    /// code as imported and pulled layers) and kept as the layer's blob for
    /// push. The returned [`NewLayer`] keeps the layer from garbage
    /// collection until it is used by [`ImageStore::create_image`] or dropped.
    ///
    /// The caller keeps `upper` still while this runs (a paused or stopped
    /// container); it is only read.
    ///
    /// # Errors
    /// [`ImageError::Io`] when `upper` is not a readable directory, a file
    /// cannot be read, the upper dir uses overlayfs features a layer cannot
    /// express (`redirect_dir`, `metacopy`), or the store cannot be written;
    /// [`ImageError::BadArchive`] if unpacking the written tar fails. Nothing
    /// is left in the store on error.
    pub fn layer_from_upper(&self, upper: &Path) -> Result<NewLayer, ImageError> {
        self.store_upper(upper, false)
    }

    /// As [`ImageStore::layer_from_upper`], but for an upper directory the
    /// caller gives up (a finished build step's, no longer mounted): after its
    /// tar is written and hashed, the directory itself becomes the layer's
    /// `diff`, normalised as unpacking that tar would leave it (times in whole
    /// seconds with atime = mtime, no xattrs but `trusted.overlay.opaque=y` and
    /// `security.capability`, no sockets, the root 0755 0:0), instead of
    /// unpacking a second copy. When the store is on another filesystem, or
    /// the layer exists already, it is unpacked or shared as before and
    /// `upper` is left to the caller.
    ///
    /// # Errors
    /// As [`ImageStore::layer_from_upper`]; `upper` may have been normalised
    /// or moved when an error comes after the tar was written.
    pub fn layer_from_upper_taken(&self, upper: &Path) -> Result<NewLayer, ImageError> {
        self.store_upper(upper, true)
    }

    fn store_upper(&self, upper: &Path, take: bool) -> Result<NewLayer, ImageError> {
        let m = fs::symlink_metadata(upper).map_err(io_err(format!(
            "reading upper directory {}",
            upper.display()
        )))?;
        if !m.is_dir() {
            return Err(ImageError::Io {
                what: format!("upper directory {} is not a directory", upper.display()),
                source: io::Error::from(io::ErrorKind::NotADirectory),
            });
        }
        let tmp = TempDir::new_in(&self.tmp_dir())?;
        let blob_path = tmp.path().join(blob::BLOB_FILE);
        let (diff_id, tar_size) = write_upper_tar(upper, &blob_path)?;
        {
            let _w = self.lock_write();
            if self.layer_present(&diff_id) {
                let size = self.layer_size(&diff_id).unwrap_or(0);
                tracing::debug!(%diff_id, "layer from upper dir already present; sharing it");
                return Ok(NewLayer::pinned(&self.pins, diff_id, size));
            }
        }
        // Unpack outside the write lock: the temp dir is ours alone.
        let diff = tmp.path().join("diff");
        let moved = if take {
            let size = normalise_upper(upper)?;
            match fs::rename(upper, &diff) {
                Ok(()) => Some(size),
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => None,
                Err(e) => {
                    return Err(io_err(format!(
                        "moving {} into the layer store",
                        upper.display()
                    ))(e))
                }
            }
        } else {
            None
        };
        let record = blob::BlobRecord {
            digest: diff_id.clone(),
            size: tar_size,
            media_type: blob::MT_OCI_LAYER_TAR.to_string(),
        };
        if let Some(size) = moved {
            blob::write_record(tmp.path(), &record)?;
            let _w = self.lock_write();
            let layer = self.commit_layer(tmp, diff_id, size)?;
            tracing::info!(diff_id = %layer.diff_id, size = layer.size, "stored layer from a taken upper dir");
            return Ok(NewLayer::pinned(&self.pins, layer.diff_id, layer.size));
        }
        fs::create_dir(&diff).map_err(io_err(format!("creating {}", diff.display())))?;
        fs::set_permissions(&diff, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err(format!("chmod {}", diff.display())))?;
        let what = format!("layer from {}", upper.display());
        let f = fs::File::open(&blob_path)
            .map_err(io_err(format!("opening {}", blob_path.display())))?;
        let stats = crate::unpack::unpack_layer(io::BufReader::new(f), &diff, &what)?;
        if stats.diff_id != diff_id {
            return Err(ImageError::Io {
                what: format!(
                    "{what}: the tar hashed to {diff_id} when written but {} when read back",
                    stats.diff_id
                ),
                source: io::Error::from(io::ErrorKind::InvalidData),
            });
        }
        blob::write_record(tmp.path(), &record)?;
        let _w = self.lock_write();
        let layer = self.commit_layer(tmp, stats.diff_id, stats.size)?;
        tracing::info!(diff_id = %layer.diff_id, size = layer.size, "stored layer from upper dir");
        Ok(NewLayer::pinned(&self.pins, layer.diff_id, layer.size))
    }

    /// Gives up a layer made by [`ImageStore::layer_from_upper`] that will not
    /// become part of an image (a failed or cancelled build step): unpins it
    /// and removes it unless an image or another [`NewLayer`] uses it.
    ///
    /// # Errors
    /// [`ImageError::Io`] when the store cannot be cleaned.
    pub fn discard_layer(&self, layer: NewLayer) -> Result<(), ImageError> {
        drop(layer);
        let _w = self.lock_write();
        let trash = {
            let mut st = self.lock_state();
            self.gc_layers(&mut st, None)?
        };
        self.empty_trash(trash.into_iter().map(|(_, p)| p).collect());
        Ok(())
    }
}
