//! Layer unpacking: a (decompressed) layer tar stream -> a directory usable as
//! an overlayfs lowerdir, hashing the stream on the way (the diff ID).
//!
//! Follows moby `pkg/archive` (`UnpackLayer`/`createTarFile`) semantics and the
//! OCI image spec "Image Layer Filesystem Changeset" for whiteouts:
//! - `.wh.NAME` becomes a 0:0 character device `NAME` (overlayfs whiteout);
//! - `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory;
//! - other `.wh..wh.*` (AUFS metadata) entries are skipped.
//!
//! Safety: entry names are cleaned lexically and may not climb above the layer
//! root; parent directories are resolved component by component with symlinks
//! interpreted relative to the layer root (as under a chroot), so no write
//! ever lands outside it. The final component is never followed.

use crate::fsutil::{io_err, remove_any, HashingReader};
use crate::ImageError;
use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Whiteout file prefix (OCI image spec, layer.md).
const WH_PREFIX: &str = ".wh.";
/// Prefix of whiteout metadata files.
const WH_META_PREFIX: &str = ".wh..wh.";
/// Opaque-directory marker.
const WH_OPAQUE: &str = ".wh..wh..opq";
/// Symlinks followed while resolving one path before giving up (as Linux ELOOP).
const MAX_SYMLINK_HOPS: usize = 40;

/// What unpacking a layer produced.
#[derive(Debug, Clone)]
pub(crate) struct LayerStats {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    /// Bytes of regular file content in the layer.
    pub size: u64,
}

/// Wraps `r` in a decompressor chosen by its magic bytes: gzip and zstd are
/// supported, anything else is taken as a plain tar; bzip2 and xz are refused.
///
/// # Errors
/// [`ImageError::BadArchive`] for an unsupported compression,
/// [`ImageError::Io`] when reading the first bytes fails.
pub(crate) fn decompress<'a, R: Read + 'a>(
    mut r: R,
    what: &str,
) -> Result<Box<dyn Read + 'a>, ImageError> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(format!("reading {what}"))(e)),
        }
    }
    let h = &head[..n];
    let unsupported = |kind: &str| {
        Err(ImageError::BadArchive(format!(
            "{what} is {kind}-compressed, which is not supported; use an uncompressed or gzip-compressed tar"
        )))
    };
    if h.starts_with(b"BZh") {
        return unsupported("bzip2");
    }
    if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return unsupported("xz");
    }
    let chained = io::Cursor::new(h.to_vec()).chain(r);
    if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Box::new(ZstdFrames::new(Box::new(chained), what)?));
    }
    if h.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(chained)))
    } else {
        Ok(Box::new(chained))
    }
}

/// A zstd stream of one or more frames (RFC 8878), decoded by `ruzstd`.
struct ZstdFrames<'a> {
    dec: Option<
        ruzstd::decoding::StreamingDecoder<Box<dyn Read + 'a>, ruzstd::decoding::FrameDecoder>,
    >,
}

impl<'a> ZstdFrames<'a> {
    fn new(src: Box<dyn Read + 'a>, what: &str) -> Result<ZstdFrames<'a>, ImageError> {
        let dec = ruzstd::decoding::StreamingDecoder::new(src)
            .map_err(|e| ImageError::BadArchive(format!("{what}: bad zstd stream: {e}")))?;
        Ok(ZstdFrames { dec: Some(dec) })
    }
}

impl Read for ZstdFrames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(d) = self.dec.as_mut() else {
                return Ok(0);
            };
            let n = d.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // End of a frame: another one may follow.
            let Some(d) = self.dec.take() else {
                return Ok(0);
            };
            let (mut src, fd) = d.into_parts();
            let mut first = [0u8; 1];
            let got = loop {
                match src.read(&mut first) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if got == 0 {
                return Ok(0);
            }
            let next: Box<dyn Read + '_> = Box::new(io::Cursor::new(first.to_vec()).chain(src));
            self.dec = Some(
                ruzstd::decoding::StreamingDecoder::new_with_decoder(next, fd).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
                })?,
            );
        }
    }
}

/// Unpacks an uncompressed layer tar stream into the existing, empty directory
/// `dest`, and returns its diff ID (hash of the whole stream, including the
/// end-of-archive padding) and content size.
///
/// # Errors
/// [`ImageError::BadArchive`] for malformed tar data, entries escaping the
/// layer, unsupported entry types; [`ImageError::Io`] for filesystem failures.
pub(crate) fn unpack_layer<R: Read>(
    reader: R,
    dest: &Path,
    what: &str,
) -> Result<LayerStats, ImageError> {
    let mut hr = HashingReader::new(reader);
    let mut size = 0u64;
    let mut dirs: Vec<(PathBuf, Times)> = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut hr);
        let entries = archive
            .entries()
            .map_err(|e| ImageError::BadArchive(format!("{what}: reading tar: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| ImageError::BadArchive(format!("{what}: reading tar: {e}")))?;
            size += unpack_entry(&mut entry, dest, &mut dirs, what)?;
        }
    }
    let diff_id = hr
        .finish()
        .map_err(|e| ImageError::BadArchive(format!("{what}: reading tar: {e}")))?;
    // Directory times last: creating children changed them.
    for (dir, mtime) in dirs.iter().rev() {
        // A later entry may have replaced the directory.
        if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            set_times_nofollow(dir, *mtime)?;
        }
    }
    tracing::debug!(%diff_id, size, dest = %dest.display(), "unpacked layer");
    Ok(LayerStats { diff_id, size })
}

/// Cleans an archive path: drops `/`, `.` and empty components; `..` pops and
/// may not climb above the root.
pub(crate) fn clean_rel(raw: &[u8], what: &str) -> Result<Vec<OsString>, ImageError> {
    let mut out: Vec<OsString> = Vec::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(ImageError::BadArchive(format!(
                        "{what}: entry \"{}\" escapes the archive root",
                        String::from_utf8_lossy(raw)
                    )));
                }
            }
            Component::Normal(n) => out.push(n.to_os_string()),
        }
    }
    Ok(out)
}

/// Resolves the directory `comps` inside `root` as if `root` were `/`:
/// symlinks met on the way are followed relative to `root` (`..` stops at
/// `root`). Missing directories are created (0755, root-owned) when `create`.
fn resolve_dir(
    root: &Path,
    comps: &[OsString],
    create: bool,
    what: &str,
) -> Result<PathBuf, ImageError> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = comps.iter().cloned().collect();
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        if c.is_empty() || c == "." {
            continue;
        }
        if c == ".." {
            resolved.pop();
            continue;
        }
        let mut cand = root.to_path_buf();
        cand.extend(&resolved);
        cand.push(&c);
        match fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(ImageError::BadArchive(format!(
                        "{what}: too many levels of symbolic links at {}",
                        cand.display()
                    )));
                }
                let target = fs::read_link(&cand)
                    .map_err(io_err(format!("reading link {}", cand.display())))?;
                if target.has_root() {
                    resolved.clear();
                }
                for part in target.components().rev() {
                    match part {
                        Component::Normal(n) => pending.push_front(n.to_os_string()),
                        Component::ParentDir => pending.push_front(OsString::from("..")),
                        _ => {}
                    }
                }
            }
            Ok(m) if m.is_dir() => resolved.push(c),
            Ok(_) => {
                return Err(ImageError::BadArchive(format!(
                    "{what}: {} is not a directory but the layer has entries below it",
                    cand.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&cand).map_err(io_err(format!("creating {}", cand.display())))?;
                fs::set_permissions(&cand, fs::Permissions::from_mode(0o755))
                    .map_err(io_err(format!("chmod {}", cand.display())))?;
                resolved.push(c);
            }
            Err(e) => {
                return Err(io_err(format!("resolving {}", cand.display()))(e));
            }
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

fn cstr(p: &Path) -> Result<CString, ImageError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| ImageError::BadArchive(format!("path {} contains a NUL byte", p.display())))
}

/// A timestamp: seconds since the epoch (may be negative) and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp {
    secs: i64,
    nanos: u32,
}

impl Stamp {
    /// Parses a PAX time record value (`"1700000000.123456789"`, `"-1.5"`).
    fn parse_pax(v: &str) -> Option<Stamp> {
        let (neg, v) = match v.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, v),
        };
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        let secs: i64 = int.parse().ok()?;
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut digits: String = frac.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        let nanos: u32 = digits.parse().ok()?;
        Some(if !neg {
            Stamp { secs, nanos }
        } else if nanos == 0 {
            Stamp {
                secs: -secs,
                nanos: 0,
            }
        } else {
            Stamp {
                secs: -secs - 1,
                nanos: 1_000_000_000 - nanos,
            }
        })
    }

    fn timespec(self) -> libc::timespec {
        libc::timespec {
            tv_sec: self.secs as libc::time_t,
            tv_nsec: self.nanos as _,
        }
    }
}

/// Access and modification time of an entry.
#[derive(Clone, Copy, Debug)]
struct Times {
    atime: Stamp,
    mtime: Stamp,
}

/// Sets both atime and mtime of `path` to `secs` (whole seconds), without following a
/// final symlink: what unpacking leaves on an entry without PAX times.
pub(crate) fn set_whole_second_times(path: &Path, secs: i64) -> Result<(), ImageError> {
    let t = Stamp { secs, nanos: 0 };
    set_times_nofollow(path, Times { atime: t, mtime: t })
}

/// Sets atime and mtime without following a final symlink.
fn set_times_nofollow(path: &Path, t: Times) -> Result<(), ImageError> {
    let c = cstr(path)?;
    let ts = [t.atime.timespec(), t.mtime.timespec()];
    // SAFETY: `c` is a valid NUL-terminated path and `ts` points at two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io_err(format!("setting times on {}", path.display()))(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// `lsetxattr(2)`.
pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let n = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid C strings; value pointer/len describe a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mknod(2)`; `kind` is `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
fn mknod(
    path: &Path,
    kind: libc::mode_t,
    perm: u32,
    major: u32,
    minor: u32,
) -> Result<(), ImageError> {
    let c = cstr(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: valid NUL-terminated path.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | (perm & 0o7777) as libc::mode_t, dev) };
    if rc != 0 {
        return Err(io_err(format!("mknod {}", path.display()))(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Header fields every entry needs.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    times: Times,
}

fn header_meta(h: &tar::Header, name: &str, what: &str) -> Result<Meta, ImageError> {
    let bad = |field: &str, e: String| {
        ImageError::BadArchive(format!("{what}: entry \"{name}\": bad {field}: {e}"))
    };
    let uid = h.uid().map_err(|e| bad("uid", e.to_string()))?;
    let gid = h.gid().map_err(|e| bad("gid", e.to_string()))?;
    Ok(Meta {
        uid: u32::try_from(uid).map_err(|_| bad("uid", format!("{uid} is out of range")))?,
        gid: u32::try_from(gid).map_err(|_| bad("gid", format!("{gid} is out of range")))?,
        mode: h.mode().map_err(|e| bad("mode", e.to_string()))? & 0o7777,
        times: {
            let m = Stamp {
                secs: i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(i64::MAX),
                nanos: 0,
            };
            Times { atime: m, mtime: m }
        },
    })
}

fn chown_chmod(path: &Path, m: &Meta, chmod: bool) -> Result<(), ImageError> {
    lchown(path, Some(m.uid), Some(m.gid)).map_err(io_err(format!("chown {}", path.display())))?;
    if chmod {
        // After chown, which clears set-id bits.
        fs::set_permissions(path, fs::Permissions::from_mode(m.mode))
            .map_err(io_err(format!("chmod {}", path.display())))?;
    }
    Ok(())
}

/// Unpacks one entry; returns the bytes of file content written.
fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    root: &Path,
    dirs: &mut Vec<(PathBuf, Times)>,
    what: &str,
) -> Result<u64, ImageError> {
    let kind = entry.header().entry_type();
    if kind.is_pax_global_extensions()
        || kind.is_pax_local_extensions()
        || kind.is_gnu_longname()
        || kind.is_gnu_longlink()
    {
        return Ok(0);
    }
    let raw = entry.path_bytes().into_owned();
    let name_lossy = String::from_utf8_lossy(&raw).into_owned();
    let comps = clean_rel(&raw, what)?;
    let mut meta = header_meta(entry.header(), &name_lossy, what)?;

    // PAX records: xattrs (`SCHILY.xattr.<name>`) and sub-second times.
    let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut pax_atime = None;
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            if let Some(n) = key.strip_prefix("SCHILY.xattr.") {
                xattrs.push((n.to_string(), ext.value_bytes().to_vec()));
            } else if key == "mtime" {
                if let Some(t) = ext.value().ok().and_then(Stamp::parse_pax) {
                    meta.times.mtime = t;
                }
            } else if key == "atime" {
                pax_atime = ext.value().ok().and_then(Stamp::parse_pax);
            }
        }
    }
    // As moby: atime from PAX, but never before mtime.
    meta.times.atime = pax_atime.map_or(meta.times.mtime, |a| a.max(meta.times.mtime));

    let Some((last, parent_comps)) = comps.split_last() else {
        // "./" — the layer root itself.
        if kind.is_dir() {
            chown_chmod(root, &meta, true)?;
            dirs.push((root.to_path_buf(), meta.times));
        }
        return Ok(0);
    };
    let parent = resolve_dir(root, parent_comps, true, what)?;
    let last_str = last.to_string_lossy();

    // Whiteouts.
    if last_str.starts_with(WH_PREFIX) {
        if last_str == WH_OPAQUE {
            set_xattr(&parent, "trusted.overlay.opaque", b"y").map_err(io_err(format!(
                "setting trusted.overlay.opaque on {}",
                parent.display()
            )))?;
            return Ok(0);
        }
        if last_str.starts_with(WH_META_PREFIX) {
            tracing::debug!(entry = %name_lossy, "skipping whiteout metadata entry");
            return Ok(0);
        }
        let target = &last.as_bytes()[WH_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
            return Err(ImageError::BadArchive(format!(
                "{what}: invalid whiteout entry \"{name_lossy}\""
            )));
        }
        let path = parent.join(OsStr::from_bytes(target));
        remove_any(&path).map_err(io_err(format!("removing {}", path.display())))?;
        mknod(&path, libc::S_IFCHR, 0, 0, 0)?;
        lchown(&path, Some(meta.uid), Some(meta.gid))
            .map_err(io_err(format!("chown {}", path.display())))?;
        return Ok(0);
    }

    let path = parent.join(last);
    // Replace whatever is there, except that dir-on-dir merges (moby semantics).
    if let Ok(existing) = fs::symlink_metadata(&path) {
        if !(existing.is_dir() && kind.is_dir()) {
            remove_any(&path).map_err(io_err(format!("removing {}", path.display())))?;
        }
    }

    let mut written = 0u64;
    let mut apply_xattrs = true;
    if kind.is_dir() {
        if !path.is_dir() {
            fs::create_dir(&path).map_err(io_err(format!("creating {}", path.display())))?;
        }
        chown_chmod(&path, &meta, true)?;
        dirs.push((path.clone(), meta.times));
    } else if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(format!("creating {}", path.display())))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ImageError::BadArchive(format!(
                        "{what}: reading \"{name_lossy}\": {e}"
                    )))
                }
            };
            f.write_all(&buf[..n])
                .map_err(io_err(format!("writing {}", path.display())))?;
            written += n as u64;
        }
        drop(f);
        chown_chmod(&path, &meta, true)?;
        set_times_nofollow(&path, meta.times)?;
    } else if kind.is_symlink() {
        let target = entry
            .link_name_bytes()
            .map(|c| c.into_owned())
            .unwrap_or_default();
        if target.is_empty() {
            return Err(ImageError::BadArchive(format!(
                "{what}: symlink \"{name_lossy}\" has an empty target"
            )));
        }
        std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
            .map_err(io_err(format!("symlink {}", path.display())))?;
        chown_chmod(&path, &meta, false)?;
        set_times_nofollow(&path, meta.times)?;
        // user.* xattrs are not allowed on symlinks; others rarely matter.
        apply_xattrs = false;
    } else if kind.is_hard_link() {
        let target_raw = entry
            .link_name_bytes()
            .map(|c| c.into_owned())
            .unwrap_or_default();
        let tcomps = clean_rel(&target_raw, what)?;
        let Some((tlast, tparent)) = tcomps.split_last() else {
            return Err(ImageError::BadArchive(format!(
                "{what}: hard link \"{name_lossy}\" has an empty target"
            )));
        };
        let target = resolve_dir(root, tparent, false, what)
            .map_err(|_| {
                ImageError::BadArchive(format!(
                    "{what}: hard link \"{name_lossy}\" points at missing \"{}\"",
                    String::from_utf8_lossy(&target_raw)
                ))
            })?
            .join(tlast);
        match fs::symlink_metadata(&target) {
            Ok(m) if !m.is_dir() => {}
            _ => {
                return Err(ImageError::BadArchive(format!(
                    "{what}: hard link \"{name_lossy}\" points at \"{}\", which is not an earlier non-directory entry",
                    String::from_utf8_lossy(&target_raw)
                )))
            }
        }
        fs::hard_link(&target, &path).map_err(io_err(format!(
            "hard link {} -> {}",
            path.display(),
            target.display()
        )))?;
        apply_xattrs = false;
    } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        let (ifmt, major, minor) = if kind.is_fifo() {
            (libc::S_IFIFO, 0, 0)
        } else {
            let major = entry.header().device_major().ok().flatten().unwrap_or(0);
            let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
            let ifmt = if kind.is_character_special() {
                libc::S_IFCHR
            } else {
                libc::S_IFBLK
            };
            (ifmt, major, minor)
        };
        mknod(&path, ifmt, meta.mode, major, minor)?;
        chown_chmod(&path, &meta, true)?;
        set_times_nofollow(&path, meta.times)?;
    } else {
        return Err(ImageError::BadArchive(format!(
            "{what}: entry \"{name_lossy}\" has unsupported tar type {:?}",
            kind.as_byte() as char
        )));
    }

    if apply_xattrs {
        for (name, value) in &xattrs {
            if let Err(e) = set_xattr(&path, name, value) {
                tracing::warn!(path = %path.display(), xattr = %name, error = %e, "could not set xattr");
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_streams_of_several_frames_decode() {
        let a = b"first frame of the layer ".repeat(1000);
        let b = b"second frame".repeat(700);
        let mut z =
            ruzstd::encoding::compress_to_vec(&a[..], ruzstd::encoding::CompressionLevel::Fastest);
        z.extend(ruzstd::encoding::compress_to_vec(
            &b[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
        let mut out = Vec::new();
        decompress(&z[..], "test")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, [a, b].concat());
        let mut bad = z.clone();
        bad.truncate(10);
        let r = decompress(&bad[..], "test").and_then(|mut d| {
            let mut v = Vec::new();
            d.read_to_end(&mut v)
                .map_err(|e| ImageError::BadArchive(e.to_string()))
        });
        assert!(r.is_err());
    }

    #[test]
    fn pax_times_and_clean_paths() {
        let p = |s: &str| Stamp::parse_pax(s).map(|t| (t.secs, t.nanos));
        assert_eq!(p("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(p("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(p("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(p("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(p("x"), None);
        assert_eq!(p("1.x"), None);

        let c = |s: &str| {
            clean_rel(s.as_bytes(), "t").map(|v| {
                v.iter()
                    .map(|x| x.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(c("./a//b/./c/").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(c("/abs/x").unwrap(), vec!["abs", "x"]);
        assert_eq!(c("a/../b").unwrap(), vec!["b"]);
        assert!(c("./").unwrap().is_empty());
        assert!(c("a/../../b").is_err());
        assert!(c("../x").is_err());
    }

    #[test]
    fn compression_sniffing() {
        let mut out = String::new();
        decompress(&b"plain"[..], "t")
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "plain");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"zipped").unwrap();
        let gz = gz.finish().unwrap();
        let mut out = String::new();
        decompress(&gz[..], "t")
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "zipped");
        // short inputs are fine
        let mut out = Vec::new();
        decompress(&b"a"[..], "t")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a");
        for (magic, name) in [
            (&[0xfd, b'7', b'z', b'X', b'Z', 0][..], "xz"),
            (&b"BZh9xx"[..], "bzip2"),
        ] {
            let e = decompress(magic, "t").err().unwrap();
            assert!(e.to_string().contains(name), "{e}");
        }
        // zstd is decoded; a truncated frame fails when read
        let z = &[0x28, 0xb5, 0x2f, 0xfd, 0, 0][..];
        let mut out = Vec::new();
        assert!(decompress(z, "t")
            .and_then(|mut d| d
                .read_to_end(&mut out)
                .map_err(|e| ImageError::BadArchive(e.to_string())))
            .is_err());
    }
}
