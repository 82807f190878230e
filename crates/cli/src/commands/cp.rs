//! `cp`, `export` and `diff` (docker/cli `container/cp.go`, `export.go`, `diff.go`; the
//! copy rules of moby `pkg/archive/copy.go`).
//!
//! `tether cp` both ways:
//! - `CONTAINER:SRC DEST`: `GET /containers/{id}/archive?path=SRC` and the tar
//!   extracted locally (`DEST` `-`: the tar itself on stdout);
//! - `SRC CONTAINER:DEST`: the local source as a tar (`SRC` `-`: a tar read from
//!   stdin) put with `PUT /containers/{id}/archive?path=DIR&noOverwriteDirNonDir=true`.
//!
//! The rules (docs.docker.com/reference/cli/docker/container/cp): a directory is copied
//! recursively; `SRC/.` copies the directory's contents; a directory copied to a
//! destination that exists as a directory lands inside it, to one that does not exist
//! takes its name; a file to an existing directory lands inside it, to a missing path
//! takes that name, unless the path ends in `/` (an error: that directory does not
//! exist); a directory cannot replace a file. Without `-a` files copied into the
//! container belong to root, with `-a` they keep their uid/gid (locally, `-a` keeps the
//! container's uid/gid when run as root). `-L` follows a symlink given as SRC.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tether_image::tarx::append_raw;

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;

use crate::args::{exact_args, parse};
use crate::client::{empty_body, next_chunk, path_escape, stream_body, Client, Query};
use crate::error::{CliError, Result};
use crate::stream::stdin_channel;

/// `tether cp`.
#[derive(Parser, Debug)]
#[command(
    name = "cp",
    override_usage = "tether cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\ttether cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    about = "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout."
)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically
    /// suppressed if no terminal is attached
    #[arg(short = 'q', long)]
    quiet: bool,
    operands: Vec<String>,
}

/// docker's `splitCpArg`: `CONTAINER:PATH`, or a local path (absolute, `./x:y`, no `:`).
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

/// What is known of one side of a copy (moby `archive.CopyInfo`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CopyInfo {
    /// The path (resolved as the rules say).
    pub path: String,
    /// It exists.
    pub exists: bool,
    /// It is a directory.
    pub is_dir: bool,
    /// The name entries must take instead of the path's last element ("" for none).
    pub rebase_name: String,
}

fn specifies_current_dir(p: &str) -> bool {
    p == "." || p.ends_with("/.")
}

fn has_trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut v: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if v.last().is_some_and(|l| *l != "..") {
                    v.pop();
                } else if !abs {
                    v.push("..");
                }
            }
            c => v.push(c),
        }
    }
    let s = v.join("/");
    match (abs, s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    }
}

/// moby `SplitPathDirEntry`: (parent, last element), `dir/.` giving (dir, ".").
pub fn split_dir_entry(p: &str) -> (String, String) {
    let mut c = clean(p);
    if specifies_current_dir(p) {
        c.push_str("/.");
    }
    match c.rfind('/') {
        Some(0) => ("/".into(), c[1..].to_string()),
        Some(i) => (c[..i].to_string(), c[i + 1..].to_string()),
        None => (".".into(), c),
    }
}

fn base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { ".".into() } else { "/".into() };
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// moby `GetRebaseName`: the resolved path with the original's trailing `/.` or `/`,
/// and the name to rebase to when the last element changed.
pub fn rebase_name(path: &str, resolved: &str) -> (String, String) {
    let mut r = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&r) {
        r.push_str("/.");
    }
    if has_trailing_sep(path) && !has_trailing_sep(&r) {
        r.push('/');
    }
    let name = if base(path) != base(&r) {
        base(path)
    } else {
        String::new()
    };
    (r, name)
}

/// Why a copy cannot be done (moby's `ErrCannotCopyDir`, `ErrDirNotExists`).
#[derive(Debug, PartialEq)]
pub enum PrepareError {
    /// A directory onto an existing non-directory.
    CannotCopyDir,
    /// A file to a path ending in `/` that does not exist.
    DirNotExists,
}

/// moby `PrepareArchiveCopy`: the directory to extract to and, when entries must be
/// renamed, (old base, new base).
pub fn prepare_copy(
    src: &CopyInfo,
    dst: &CopyInfo,
) -> std::result::Result<(String, Option<(String, String)>), PrepareError> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, mut src_base) = split_dir_entry(&src.path);
    if !src.rebase_name.is_empty() {
        src_base = src.rebase_name.clone();
    }
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err(PrepareError::CannotCopyDir);
    }
    if !dst.exists
        && !src.is_dir
        && (has_trailing_sep(&dst.path) || specifies_current_dir(&dst.path))
    {
        return Err(PrepareError::DirNotExists);
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// moby `RebaseArchiveEntries` for one name.
fn rebase(name: &str, r: &Option<(String, String)>) -> String {
    let Some((old, new)) = r else {
        return name.to_string();
    };
    let n = name.trim_start_matches("./");
    let (old_t, name_t) = if old == "." {
        (".", name)
    } else {
        (old.as_str(), n)
    };
    if name_t == old_t || name_t == format!("{old_t}/") {
        return new.clone();
    }
    if let Some(rest) = name_t.strip_prefix(&format!("{old_t}/")) {
        return format!("{new}/{rest}");
    }
    name.to_string()
}

/// The stat a container sends for a path (the `X-Docker-Container-Path-Stat` header).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct PathStat {
    /// Last element.
    #[serde(default)]
    pub name: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: i64,
    /// Go `os.FileMode`.
    #[serde(default)]
    pub mode: u32,
    /// For a symlink: its resolved target.
    #[serde(default, rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }
    fn is_symlink(&self) -> bool {
        self.mode & (1 << 27) != 0
    }
    /// Regular file or directory: what a copy destination may be.
    fn is_file_or_dir(&self) -> bool {
        // type bits: dir, append, exclusive, temporary, symlink, device, pipe, socket,
        // setuid/setgid do not matter, char device, irregular
        let types =
            (1u32 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);
        self.is_dir() || self.mode & types == 0
    }
}

fn decode_stat(h: Option<&hyper::header::HeaderValue>) -> Result<PathStat> {
    let raw = h
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| CliError::BadResponse("no X-Docker-Container-Path-Stat header".into()))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|e| CliError::BadResponse(format!("bad path stat header: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| CliError::BadResponse(format!("bad path stat: {e}")))
}

async fn stat_path(client: &Client, container: &str, path: &str) -> Result<PathStat> {
    let q = Query::new().add("path", path).encode();
    let resp = client
        .request(
            hyper::Method::HEAD,
            &format!("/containers/{}/archive{q}", path_escape(container)),
            empty_body(),
            None,
        )
        .await
        .map_err(|e| match e {
            // a HEAD answer has no body to carry the daemon's message
            CliError::Daemon { status, message } if message.is_empty() => CliError::Daemon {
                status,
                message: format!("cannot stat {container}:{path} (HTTP status {status})"),
            },
            e => e,
        })?;
    decode_stat(resp.headers().get("x-docker-container-path-stat"))
}

/// `tether cp [-a] [-L] [-q] SRC DEST`.
pub async fn cp(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: CpArgs = parse(path, args)?;
    exact_args::<CpArgs>(path, a.operands.len(), 2)?;
    let (src_c, src_p) = split_cp_arg(&a.operands[0]);
    let (dst_c, dst_p) = split_cp_arg(&a.operands[1]);
    if src_p.is_empty() {
        return Err(CliError::msg("source can not be empty"));
    }
    if dst_p.is_empty() {
        return Err(CliError::msg("destination can not be empty"));
    }
    let progress = !a.quiet && std::io::stderr().is_terminal();
    match (src_c, dst_c) {
        (Some(c), None) => from_container(client, &a, c, src_p, dst_p, progress).await,
        (None, Some(c)) => to_container(client, &a, src_p, c, dst_p, progress).await,
        (Some(_), Some(_)) => Err(CliError::msg("copying between containers is not supported")),
        (None, None) => Err(CliError::msg("must specify at least one container source")),
    }
}

fn done(progress: bool, n: u64, dst: &str) {
    if progress {
        crate::errln!(
            "Successfully copied {} to {dst}",
            crate::format::humanize::human_size_precision(n as f64, 3)
        );
    }
}

async fn from_container(
    client: &Client,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
    progress: bool,
) -> Result<()> {
    let mut src = src.to_string();
    let mut rebase_to = String::new();
    if a.follow_link {
        if let Ok(st) = stat_path(client, container, &src).await {
            if st.is_symlink() {
                let mut target = st.link_target.clone();
                if !target.starts_with('/') {
                    target = format!("{}/{}", split_dir_entry(&src).0, target);
                }
                let (t, r) = rebase_name(&src, &target);
                src = t;
                rebase_to = r;
            }
        }
    }
    let q = Query::new().add("path", src.clone()).encode();
    let resp = client
        .request(
            hyper::Method::GET,
            &format!("/containers/{}/archive{q}", path_escape(container)),
            empty_body(),
            None,
        )
        .await?;
    let st = decode_stat(resp.headers().get("x-docker-container-path-stat"))?;
    let mut body = resp.into_body();
    // the tar arrives on a channel; extraction runs on a blocking thread
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(16);
    let sink: tokio::task::JoinHandle<Result<u64>> = if dst == "-" {
        tokio::task::spawn_blocking(move || {
            let mut out = std::io::stdout().lock();
            let mut n = 0u64;
            for b in rx {
                n += b.len() as u64;
                out.write_all(&b)?;
            }
            out.flush()?;
            Ok(n)
        })
    } else {
        let src_info = CopyInfo {
            path: src.clone(),
            exists: true,
            is_dir: st.is_dir(),
            rebase_name: rebase_to,
        };
        let dst_info = local_dest_info(dst)?;
        let (dir, ren) = prepare_copy(&src_info, &dst_info).map_err(|e| prepare_msg(e, dst))?;
        // entries named after the source's last element, or its rebase name
        let ren = match (&ren, src_info.rebase_name.is_empty()) {
            (Some((_, new)), false) => Some((split_dir_entry(&src_info.path).1, new.clone())),
            (None, false) => Some((
                split_dir_entry(&src_info.path).1,
                src_info.rebase_name.clone(),
            )),
            _ => ren,
        };
        let keep_owner = a.archive;
        tokio::task::spawn_blocking(move || {
            let mut r = ChanReader {
                rx,
                cur: Bytes::new(),
                n: 0,
            };
            untar_local(&mut r, Path::new(&dir), &ren, keep_owner)?;
            std::io::copy(&mut r, &mut std::io::sink())?;
            Ok(r.n)
        })
    };
    let mut failed = None;
    loop {
        match next_chunk(&mut body).await {
            Ok(Some(b)) => {
                if tx.send(b).is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let n = sink
        .await
        .map_err(|e| CliError::msg(format!("copy: {e}")))??;
    if let Some(e) = failed {
        return Err(e);
    }
    if dst != "-" {
        done(progress, n, dst);
    }
    Ok(())
}

fn prepare_msg(e: PrepareError, dst: &str) -> CliError {
    match e {
        PrepareError::CannotCopyDir => CliError::msg(format!(
            "cannot copy directory: destination {dst:?} exists and is not a directory"
        )),
        PrepareError::DirNotExists => CliError::msg(format!(
            "no such directory: {dst:?} does not exist (a file is copied into an existing directory, or to a new path without a trailing '/')"
        )),
    }
}

/// A blocking reader over the chunks of a channel.
struct ChanReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
    n: u64,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.cur = b,
                Err(_) => return Ok(0),
            }
        }
        let k = buf.len().min(self.cur.len());
        buf[..k].copy_from_slice(&self.cur[..k]);
        self.cur = self.cur.slice(k..);
        self.n += k as u64;
        Ok(k)
    }
}

/// moby `CopyInfoDestinationPath`: a local destination, symlinks at its end followed;
/// a missing one needs an existing parent directory.
fn local_dest_info(path: &str) -> Result<CopyInfo> {
    let mut p = path.to_string();
    for _ in 0..=10 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p)?.display().to_string();
                p = if t.starts_with('/') {
                    t
                } else {
                    format!("{}/{}", split_dir_entry(&p).0, t)
                };
            }
            Ok(m) => {
                return Ok(CopyInfo {
                    path: p,
                    exists: true,
                    is_dir: m.is_dir(),
                    rebase_name: String::new(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = split_dir_entry(&p).0;
                let pm = std::fs::metadata(&parent).map_err(|e| {
                    CliError::msg(format!("destination directory {parent:?} of {path:?}: {e}"))
                })?;
                if !pm.is_dir() {
                    return Err(CliError::msg(format!(
                        "not a directory: the parent {parent:?} of {path:?} is not a directory"
                    )));
                }
                return Ok(CopyInfo {
                    path: p,
                    ..Default::default()
                });
            }
            Err(e) => return Err(CliError::msg(format!("{path}: {e}"))),
        }
    }
    Err(CliError::msg(format!("too many symlinks in {path}")))
}

/// Extracts a tar locally into `dir` (moby `Untar` with `NoOverwriteDirNonDir`; no
/// chown unless `keep_owner`), renaming entries as `ren` says.
fn untar_local(
    r: &mut dyn Read,
    dir: &Path,
    ren: &Option<(String, String)>,
    keep_owner: bool,
) -> Result<()> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(keep_owner);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    // symlinks this archive made: no later entry is written through one of them
    let mut planted: Vec<PathBuf> = Vec::new();
    let canon_dir = std::fs::canonicalize(dir)?;
    for e in ar
        .entries()
        .map_err(|e| CliError::msg(format!("reading the archive: {e}")))?
    {
        let mut e = e.map_err(|e| CliError::msg(format!("reading the archive: {e}")))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let new = rebase(&name, ren);
        if new.split('/').any(|c| c == "..") {
            return Err(CliError::msg(format!(
                "invalid archive entry {name:?}: it climbs out of the destination"
            )));
        }
        let rel: PathBuf = new
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let dest = dir.join(&rel);
        if planted.iter().any(|p| dest.starts_with(p) && dest != *p) {
            return Err(CliError::msg(format!(
                "invalid archive entry {name:?}: it would be written through a symbolic link of the archive"
            )));
        }
        let is_dir = e.header().entry_type().is_dir();
        let is_link = e.header().entry_type().is_symlink();
        if let Ok(old) = std::fs::symlink_metadata(&dest) {
            if dest != dir && old.is_dir() != is_dir {
                return Err(CliError::msg(if old.is_dir() {
                    format!(
                        "cannot overwrite directory {:?} with non-directory {name:?}",
                        dest.display().to_string()
                    )
                } else {
                    format!(
                        "cannot overwrite non-directory {:?} with directory {name:?}",
                        dest.display().to_string()
                    )
                }));
            }
        }
        if rel.as_os_str().is_empty() {
            // the destination directory itself (a `./` entry): nothing to create
            continue;
        }
        if new != name {
            // under the new name: tar's unpack_in takes the name from the header, so
            // unpack to the computed path once its directory is known to be inside
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
                let canon = std::fs::canonicalize(parent)?;
                if !canon.starts_with(&canon_dir) {
                    return Err(CliError::msg(format!(
                        "invalid archive entry {name:?}: it would be written outside {}",
                        dir.display()
                    )));
                }
            }
            e.unpack(&dest)
                .map_err(|err| CliError::msg(format!("extract {}: {err}", dest.display())))?;
        } else {
            e.unpack_in(dir)
                .map_err(|err| CliError::msg(format!("extract {name}: {err}")))?;
        }
        if is_link {
            planted.push(dest);
        }
    }
    Ok(())
}

async fn to_container(
    client: &Client,
    a: &CpArgs,
    src: &str,
    container: &str,
    dst: &str,
    progress: bool,
) -> Result<()> {
    // the destination as the container has it; a symlink there is followed
    let mut dst_info = CopyInfo {
        path: dst.to_string(),
        ..Default::default()
    };
    let mut st = stat_path(client, container, dst).await;
    if let Ok(s) = &st {
        if s.is_symlink() {
            let mut t = s.link_target.clone();
            if !t.starts_with('/') {
                t = format!("{}/{}", split_dir_entry(dst).0, t);
            }
            dst_info.path = t.clone();
            st = stat_path(client, container, &t).await;
        }
    }
    match &st {
        Ok(s) => {
            if !s.is_file_or_dir() {
                return Err(CliError::msg(format!(
                    "destination \"{container}:{dst}\" must be a directory or a regular file"
                )));
            }
            dst_info.exists = true;
            dst_info.is_dir = s.is_dir();
        }
        // a missing destination (or container: the PUT then says so) is fine: its
        // parent is where the copy goes
        Err(e) if e.is_not_found() => {}
        Err(e @ CliError::Daemon { .. }) => return Err(CliError::msg(e.to_string())),
        Err(_) => {}
    }
    let (dir, body, counter) = if src == "-" {
        if !dst_info.is_dir {
            return Err(CliError::msg(format!(
                "destination \"{container}:{dst}\" must be a directory"
            )));
        }
        let rx = stdin_channel();
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c2 = counter.clone();
        let body = stream_body(futures::stream::unfold(rx, move |mut rx| {
            let c2 = c2.clone();
            async move {
                rx.recv().await.map(|b| {
                    c2.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    (Ok(b), rx)
                })
            }
        }));
        (dst_info.path.clone(), body, counter)
    } else {
        let src_info = local_source_info(src, a.follow_link)?;
        let (dir, ren) = prepare_copy(&src_info, &dst_info)
            .map_err(|e| prepare_msg(e, &format!("{container}:{dst}")))?;
        let (src_dir, src_base) = split_dir_entry(&src_info.path);
        let mut name = if src_info.rebase_name.is_empty() {
            src_base.clone()
        } else {
            src_info.rebase_name.clone()
        };
        if let Some((_, new)) = &ren {
            name = new.clone();
        }
        let root = Path::new(&src_dir).join(&src_base);
        let (body, counter) = tar_body(root, name, a.archive);
        (dir, body, counter)
    };
    let q = Query::new()
        .add("path", dir)
        .add("noOverwriteDirNonDir", "true")
        .add_if(a.archive, "copyUIDGID", "true")
        .encode();
    let resp = client
        .request(
            hyper::Method::PUT,
            &format!("/containers/{}/archive{q}", path_escape(container)),
            body,
            Some("application/x-tar"),
        )
        .await?;
    let _ = crate::client::collect(resp).await;
    done(
        progress,
        counter.load(std::sync::atomic::Ordering::Relaxed),
        &format!("{container}:{dst}"),
    );
    Ok(())
}

/// moby `CopyInfoSourcePath`: the local source, its last element followed only with
/// `-L` (or when the path ends in `/`).
fn local_source_info(path: &str, follow: bool) -> Result<CopyInfo> {
    let not_found = |e: std::io::Error| CliError::msg(format!("lstat {path}: {}", io_reason(&e)));
    let (resolved, rebase_to) = if follow {
        let r = std::fs::canonicalize(path).map_err(not_found)?;
        rebase_name(path, &r.display().to_string())
    } else {
        let (dir, b) = match path.rfind('/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => ("", path),
        };
        let dir = if dir.is_empty() { "." } else { dir };
        let rdir = std::fs::canonicalize(dir).map_err(not_found)?;
        let r = format!("{}/{b}", rdir.display());
        let name = if has_trailing_sep(path) && base(path) != base(&r) {
            base(path)
        } else {
            String::new()
        };
        (r, name)
    };
    let m = std::fs::symlink_metadata(&resolved).map_err(not_found)?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: m.is_dir(),
        rebase_name: rebase_to,
    })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

/// A streamed request body: the tar of `root` (entries under `name`), written by a
/// thread. Returns the body and a counter of the bytes sent.
fn tar_body(
    root: PathBuf,
    name: String,
    keep_owner: bool,
) -> (
    crate::client::Body,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c2 = counter.clone();
    std::thread::spawn(move || {
        let w = ChanWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(64 * 1024),
            n: c2,
        };
        let mut b = tar::Builder::new(w);
        let mut links = HashMap::new();
        let r = append_local(&mut b, &root, &name, keep_owner, &mut links)
            .and_then(|_| b.finish())
            .and_then(|_| b.get_mut().flush());
        if let Err(e) = r {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let body = stream_body(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (b, rx))
    }));
    (body, counter)
}

struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::take(&mut self.buf));
        self.n
            .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.tx
            .blocking_send(Ok(b))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload closed"))
    }
}

/// Appends a local tree (moby `TarWithOptions`): links archived as links, sockets
/// skipped, directory names ending in `/`; uid/gid kept with `keep_owner`, else 0.
fn append_local<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    name: &str,
    keep_owner: bool,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let m = std::fs::symlink_metadata(src)?;
    let ft = m.file_type();
    if ft.is_socket() {
        return Ok(());
    }
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
    if !keep_owner {
        h.set_uid(0);
        h.set_gid(0);
    }
    h.set_size(0);
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        let dname = if name.ends_with('/') {
            name.to_string()
        } else {
            format!("{name}/")
        };
        append_raw(b, &mut h, dname.as_bytes(), None, std::io::empty())?;
        let mut names: Vec<_> = std::fs::read_dir(src)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for n in names {
            let child = format!("{dname}{}", n.to_string_lossy());
            append_local(b, &src.join(&n), &child, keep_owner, links)?;
        }
    } else if ft.is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        let t = std::fs::read_link(src)?;
        append_raw(
            b,
            &mut h,
            name.as_bytes(),
            Some(t.as_os_str().as_bytes()),
            std::io::empty(),
        )?;
    } else if ft.is_file() {
        if m.nlink() > 1 {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                return append_raw(b, &mut h, name.as_bytes(), Some(&first), std::io::empty());
            }
            links.insert((m.dev(), m.ino()), name.as_bytes().to_vec());
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(src)?;
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(m.size());
        // a file that shrank meanwhile is padded, one that grew is cut
        let data = f.take(m.size()).chain(std::io::repeat(0)).take(m.size());
        append_raw(b, &mut h, name.as_bytes(), None, data)?;
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
        append_raw(b, &mut h, name.as_bytes(), None, std::io::empty())?;
    }
    Ok(())
}

/// `tether export`.
#[derive(Parser, Debug)]
#[command(
    name = "export",
    override_usage = "tether export [OPTIONS] CONTAINER",
    about = "Export a container's filesystem as a tar archive"
)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    output: Option<String>,
    operands: Vec<String>,
}

/// `tether export [-o FILE] CONTAINER`: the tar on stdout (refused on a terminal) or
/// written to FILE (through a temporary file renamed at the end, as docker).
pub async fn export(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: ExportArgs = parse(path, args)?;
    exact_args::<ExportArgs>(path, a.operands.len(), 1)?;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let resp = client
        .request(
            hyper::Method::GET,
            &format!("/containers/{}/export", path_escape(&a.operands[0])),
            empty_body(),
            None,
        )
        .await?;
    let mut body = resp.into_body();
    match &a.output {
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(b) = next_chunk(&mut body).await? {
                out.write_all(&b)?;
            }
            out.flush()?;
        }
        Some(file) => {
            let dir = match Path::new(file).parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let tmp = dir.join(format!(
                ".{}.tmp-{}",
                Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let r = async {
                let mut f = std::fs::File::create(&tmp).map_err(|e| {
                    CliError::msg(format!("failed to export container: open {file}: {e}"))
                })?;
                while let Some(b) = next_chunk(&mut body).await? {
                    f.write_all(&b)?;
                }
                f.sync_all()?;
                std::fs::rename(&tmp, file)?;
                Ok::<_, CliError>(())
            }
            .await;
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r?;
        }
    }
    Ok(())
}

/// `tether diff`.
#[derive(Parser, Debug)]
#[command(
    name = "diff",
    override_usage = "tether diff CONTAINER",
    about = "Inspect changes to files or directories on a container's filesystem"
)]
pub struct DiffArgs {
    operands: Vec<String>,
}

/// `tether diff CONTAINER`: one `C|A|D /path` line per change.
pub async fn diff(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: DiffArgs = parse(path, args)?;
    exact_args::<DiffArgs>(path, a.operands.len(), 1)?;
    let v = client
        .get_json(&format!(
            "/containers/{}/changes",
            path_escape(&a.operands[0])
        ))
        .await?;
    for c in v.as_array().into_iter().flatten() {
        let kind = match c["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        crate::outln!("{kind} {}", c["Path"].as_str().unwrap_or(""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase_name: String::new(),
        }
    }

    #[test]
    fn cp_args_split() {
        assert_eq!(split_cp_arg("web:/etc"), (Some("web"), "/etc"));
        assert_eq!(split_cp_arg("/abs:x"), (None, "/abs:x"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("plain"), (None, "plain"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
    }

    #[test]
    fn path_splits() {
        assert_eq!(split_dir_entry("/a/b"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/"), ("/".into(), "".into()));
        assert_eq!(split_dir_entry("x"), (".".into(), "x".into()));
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(rebase_name("/l/", "/t"), ("/t/".into(), "l".into()));
        assert_eq!(rebase_name("/l", "/x/l"), ("/x/l".into(), String::new()));
    }

    #[test]
    fn docker_copy_rules() {
        // a file into an existing directory
        assert_eq!(
            prepare_copy(&info("/h/f", true, false), &info("/", true, true)),
            Ok(("/".into(), None))
        );
        // a file to a new name
        assert_eq!(
            prepare_copy(&info("/h/f", true, false), &info("/d/g", false, false)),
            Ok(("/d".into(), Some(("f".into(), "g".into()))))
        );
        // a file to a missing path ending in / or /.
        assert_eq!(
            prepare_copy(&info("/h/f", true, false), &info("/d/new/", false, false)),
            Err(PrepareError::DirNotExists)
        );
        // a directory onto a file
        assert_eq!(
            prepare_copy(&info("/h/d", true, true), &info("/f", true, false)),
            Err(PrepareError::CannotCopyDir)
        );
        // a directory to a new name; dir/. to a new name
        assert_eq!(
            prepare_copy(&info("/h/d", true, true), &info("/n", false, false)),
            Ok(("/".into(), Some(("d".into(), "n".into()))))
        );
        assert_eq!(
            prepare_copy(&info("/h/d/.", true, true), &info("/n", false, false)),
            Ok(("/".into(), Some((".".into(), "n".into()))))
        );
        // a file over an existing file takes its name
        assert_eq!(
            prepare_copy(&info("/h/f", true, false), &info("/e/g", true, false)),
            Ok(("/e".into(), Some(("f".into(), "g".into()))))
        );
    }

    /// An archive (from a container) that plants a symlink to a directory outside the
    /// destination and then writes through it is refused, renamed or not.
    #[test]
    fn untar_never_writes_through_planted_links() {
        let outside = tempfile::tempdir().unwrap();
        let mut tarball = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        append_raw(&mut tarball, &mut h, b"d/", None, std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        let target = outside.path().display().to_string();
        append_raw(
            &mut tarball,
            &mut h,
            b"d/link",
            Some(target.as_bytes()),
            std::io::empty(),
        )
        .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(3);
        append_raw(&mut tarball, &mut h, b"d/link/pwned", None, &b"bad"[..]).unwrap();
        let bytes = tarball.into_inner().unwrap();
        for ren in [None, Some(("d".to_string(), "n".to_string()))] {
            let dest = tempfile::tempdir().unwrap();
            let r = untar_local(&mut &bytes[..], dest.path(), &ren, false);
            assert!(r.is_err(), "{ren:?}: extracted through the link");
            assert!(!outside.path().join("pwned").exists(), "{ren:?}");
        }
    }

    #[test]
    fn entry_rebasing() {
        let r = Some(("d".to_string(), "n".to_string()));
        assert_eq!(rebase("d", &r), "n");
        assert_eq!(rebase("d/", &r), "n");
        assert_eq!(rebase("d/x/y", &r), "n/x/y");
        assert_eq!(rebase("dd/x", &r), "dd/x");
        let dot = Some((".".to_string(), "n".to_string()));
        assert_eq!(rebase(".", &dot), "n");
        assert_eq!(rebase("./", &dot), "n");
        assert_eq!(rebase("./x", &dot), "n/x");
        assert_eq!(rebase("x", &None), "x");
    }
}
