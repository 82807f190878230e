//! The build context and `COPY`/`ADD`: the context tar unpacked into a
//! directory of the build, `.dockerignore` (moby `patternmatcher` rules: `*`,
//! `?`, `[...]`, `**`, `!` re-includes, the last matching line wins, a match on
//! a directory covers what is under it), sources resolved with wildcards and
//! symlinks followed *inside* their root (as under a chroot), their content
//! hashed for the build cache, and copied into a stage's root filesystem as a
//! tar stream through the layer unpacker (so no write can leave that root).
//!
//! Reference: <https://docs.docker.com/reference/dockerfile/#copy>,
//! <https://docs.docker.com/build/concepts/context/#dockerignore-files>.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{io, BuildError};

/// Parsed `.dockerignore`.
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    rules: Vec<(glob::Pattern, bool)>,
}

impl Ignore {
    /// Parses `.dockerignore` text: one pattern per line, `#` comments, blank
    /// lines skipped, `!pattern` re-includes.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] naming a pattern the glob syntax refuses.
    pub fn parse(text: &str) -> Result<Ignore, BuildError> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (neg, p) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let cleaned = clean(p);
            if cleaned.is_empty() {
                continue;
            }
            let pat = glob::Pattern::new(&cleaned).map_err(|e| {
                BuildError::Invalid(format!("bad .dockerignore pattern {p:?}: {e}"))
            })?;
            rules.push((pat, neg));
        }
        Ok(Ignore { rules })
    }

    /// Whether `rel` (a path relative to the context root, `/`-separated) is
    /// excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let mut excluded = false;
        for (pat, neg) in &self.rules {
            // the path itself or one of its parent directories
            let mut hit = pat.matches_with(&rel, opts);
            if !hit {
                let mut prefix = String::new();
                for comp in rel.split('/') {
                    if !prefix.is_empty() {
                        prefix.push('/');
                    }
                    prefix.push_str(comp);
                    if prefix.len() < rel.len() && pat.matches_with(&prefix, opts) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                excluded = !neg;
            }
        }
        excluded
    }
}

/// Lexically cleans a relative path: no leading `/` or `./`, no `.`
/// components, `..` popped (never above the root).
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// An unpacked build context.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    ignore: Ignore,
}

impl Context {
    /// Unpacks the context tar (plain, gzip or zstd) into the existing empty
    /// directory `dir` and reads its `.dockerignore`.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] for a body that is not a tar archive or an entry
    /// escaping the context; [`BuildError::Io`].
    pub fn unpack<R: Read>(body: R, dir: &Path) -> Result<Context, BuildError> {
        let reader = crate::unpack::decompress(body, "the build context").map_err(|e| {
            BuildError::Invalid(format!("the build context is not a tar archive: {e}"))
        })?;
        crate::unpack::unpack_layer(reader, dir, "build context").map_err(|e| match e {
            crate::ImageError::BadArchive(m) => {
                BuildError::Invalid(format!("the build context is not a valid tar archive: {m}"))
            }
            other => BuildError::Image(other),
        })?;
        let ignore = match fs::read_to_string(dir.join(".dockerignore")) {
            Ok(t) => Ignore::parse(&t)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ignore::default(),
            Err(e) => return Err(io("reading .dockerignore")(e)),
        };
        Ok(Context {
            root: dir.to_path_buf(),
            ignore,
        })
    }

    /// The directory the context was unpacked into.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.dockerignore` rules.
    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// Reads the Dockerfile named `name` (relative to the context root;
    /// default `Dockerfile`, falling back to `dockerfile`).
    ///
    /// # Errors
    /// [`BuildError::NotFound`] `Cannot locate specified Dockerfile: NAME`.
    pub fn dockerfile(&self, name: &str) -> Result<String, BuildError> {
        let name = if name.is_empty() { "Dockerfile" } else { name };
        let mut candidates = vec![name.to_string()];
        if name == "Dockerfile" {
            candidates.push("dockerfile".into());
        }
        for c in &candidates {
            let rel = clean(c);
            if let Ok(Some(p)) = resolve(&self.root, &rel, true) {
                if p.is_file() {
                    let mut text = String::new();
                    fs::File::open(&p)
                        .and_then(|f| f.take(16 << 20).read_to_string(&mut text))
                        .map_err(io(format!("reading {c}")))?;
                    return Ok(text);
                }
            }
        }
        Err(BuildError::NotFound(format!(
            "Cannot locate specified Dockerfile: {name}"
        )))
    }
}

/// Resolves `rel` inside `root` as if `root` were `/`: symlinks on the way are
/// followed relative to `root`, and so is the final one when `follow`.
/// `Ok(None)` when it does not exist.
///
/// # Errors
/// [`BuildError::Io`]; [`BuildError::Invalid`] for a symlink loop.
pub fn resolve(root: &Path, rel: &str, follow: bool) -> Result<Option<PathBuf>, BuildError> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: std::collections::VecDeque<OsString> = clean(rel)
        .split('/')
        .filter(|c| !c.is_empty())
        .map(OsString::from)
        .collect();
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if c == "." || c.is_empty() {
            continue;
        }
        let mut cand = root.to_path_buf();
        cand.extend(&resolved);
        cand.push(&c);
        let last = pending.is_empty();
        match fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() && (!last || follow) => {
                hops += 1;
                if hops > 40 {
                    return Err(BuildError::Invalid(format!(
                        "too many levels of symbolic links at {rel}"
                    )));
                }
                let target =
                    fs::read_link(&cand).map_err(io(format!("reading link {}", cand.display())))?;
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
            Ok(m) if !last && !m.is_dir() => return Ok(None),
            Ok(_) => resolved.push(c),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
            Err(e) => return Err(io(format!("resolving {}", cand.display()))(e)),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(Some(out))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// One resolved `COPY` source: its path on disk and its name (last
/// component as matched, used as the destination's base name).
#[derive(Clone, Debug)]
pub struct Source {
    /// Path on disk (inside the root it was resolved in).
    pub path: PathBuf,
    /// Path relative to the root as written/matched (for `.dockerignore`).
    pub rel: String,
}

/// Resolves a `COPY`/`ADD` source pattern inside `root` (the context, or a
/// stage's / image's root filesystem): wildcards in any component, symlinks
/// followed inside `root`, paths `ignore` excludes left out.
///
/// # Errors
/// [`BuildError::NotFound`] when nothing matches (Docker's `file not found in
/// build context or excluded by .dockerignore: stat SRC: file does not exist`).
pub fn sources(
    root: &Path,
    pattern: &str,
    ignore: Option<&Ignore>,
) -> Result<Vec<Source>, BuildError> {
    let cleaned = clean(pattern);
    let mut cands: Vec<String> = vec![String::new()];
    for comp in cleaned.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if has_wildcard(comp) {
            let pat = glob::Pattern::new(comp)
                .map_err(|e| BuildError::Invalid(format!("bad source pattern {pattern:?}: {e}")))?;
            for c in &cands {
                let Some(dir) = resolve(root, c, true)? else {
                    continue;
                };
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| pat.matches(n))
                    .collect();
                names.sort();
                for n in names {
                    next.push(if c.is_empty() { n } else { format!("{c}/{n}") });
                }
            }
        } else {
            for c in &cands {
                next.push(if c.is_empty() {
                    comp.to_string()
                } else {
                    format!("{c}/{comp}")
                });
            }
        }
        cands = next;
    }
    let mut out = Vec::new();
    for rel in cands {
        if ignore.is_some_and(|i| !rel.is_empty() && i.excluded(&rel)) {
            continue;
        }
        if let Some(path) = resolve(root, &rel, true)? {
            out.push(Source { path, rel });
        }
    }
    if out.is_empty() {
        return Err(BuildError::NotFound(format!(
            "file not found in build context or excluded by .dockerignore: stat {pattern}: file does not exist"
        )));
    }
    Ok(out)
}

/// Walks a source: (path on disk, name relative to the source, metadata),
/// the source itself first with an empty name, children sorted; symlinks are
/// not followed below the source; paths `ignore` excludes (relative to the
/// context root via `rel`) are skipped.
fn walk(
    src: &Source,
    ignore: Option<&Ignore>,
    f: &mut dyn FnMut(&Path, &str, &fs::Metadata) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    let meta = fs::metadata(&src.path).map_err(io(format!("stat {}", src.path.display())))?;
    f(&src.path, "", &meta)?;
    if meta.is_dir() {
        walk_dir(&src.path, "", &src.rel, ignore, f)?;
    }
    Ok(())
}

fn walk_dir(
    dir: &Path,
    prefix: &str,
    ctx_rel: &str,
    ignore: Option<&Ignore>,
    f: &mut dyn FnMut(&Path, &str, &fs::Metadata) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    let mut entries: Vec<(OsString, PathBuf)> = fs::read_dir(dir)
        .map_err(io(format!("reading {}", dir.display())))?
        .flatten()
        .map(|e| (e.file_name(), e.path()))
        .collect();
    entries.sort();
    for (name, path) in entries {
        let n = name.to_string_lossy();
        let rel = if prefix.is_empty() {
            n.to_string()
        } else {
            format!("{prefix}/{n}")
        };
        let full_rel = if ctx_rel.is_empty() {
            rel.clone()
        } else {
            format!("{ctx_rel}/{rel}")
        };
        if ignore.is_some_and(|i| i.excluded(&full_rel)) {
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(io(format!("stat {}", path.display())))?;
        f(&path, &rel, &meta)?;
        if meta.is_dir() {
            walk_dir(&path, &rel, ctx_rel, ignore, f)?;
        }
    }
    Ok(())
}

/// SHA-256 over the sources' names, types, modes, owners, link targets and
/// contents: the build cache key part of a `COPY`/`ADD`.
///
/// # Errors
/// [`BuildError::Io`].
pub fn hash_sources(sources: &[Source], ignore: Option<&Ignore>) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    for s in sources {
        h.update(s.rel.as_bytes());
        h.update([0]);
        walk(s, ignore, &mut |path, rel, m| {
            h.update(rel.as_bytes());
            h.update(
                format!("\0{:o}\0{}\0{}\0{}\0", m.mode(), m.uid(), m.gid(), m.len()).as_bytes(),
            );
            if m.file_type().is_symlink() {
                let t =
                    fs::read_link(path).map_err(io(format!("reading link {}", path.display())))?;
                h.update(t.as_os_str().as_bytes());
            } else if m.is_file() {
                let mut file =
                    fs::File::open(path).map_err(io(format!("opening {}", path.display())))?;
                loop {
                    let n = file
                        .read(&mut buf)
                        .map_err(io(format!("reading {}", path.display())))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            Ok(())
        })?;
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// How `COPY`/`ADD` write what they copy.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// Owner to set (`--chown`, resolved); `None` keeps the source's owner
    /// (`COPY --from`) or, with `root_owned`, sets 0:0.
    pub owner: Option<(u64, u64)>,
    /// Files and directories become 0:0 when no `owner` (context sources).
    pub root_owned: bool,
    /// `--chmod` bits.
    pub chmod: Option<u32>,
    /// `ADD`: a local tar archive (plain, gzip, zstd) is unpacked into the destination.
    pub unpack_archives: bool,
}

/// Whether `rel` exists inside `root` as a directory (symlinks followed inside `root`).
///
/// # Errors
/// [`BuildError::Io`].
pub fn is_dir_in(root: &Path, rel: &str) -> Result<bool, BuildError> {
    Ok(resolve(root, rel, true)?.is_some_and(|p| p.is_dir()))
}

fn is_tar_archive(path: &Path) -> bool {
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    let Ok(mut r) = crate::unpack::decompress(f, "archive") else {
        return false;
    };
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    n == 512 && &head[257..262] == b"ustar"
}

/// Copies `sources` into the root filesystem `dest_root` at `dest` (absolute,
/// `WORKDIR` already applied) with Docker's rules: a directory's contents go
/// into `dest`; a file goes to `dest` itself unless `dest` ends with `/` or is
/// an existing directory (then `dest/NAME`); several sources need a `dest`
/// ending with `/`. With `unpack_archives`, a local tar archive source is
/// unpacked into `dest` instead.
///
/// Everything is written through the layer unpacker, which resolves every
/// path inside `dest_root`.
///
/// # Errors
/// [`BuildError::Invalid`] for several sources and a `dest` not ending in `/`;
/// [`BuildError::Io`], [`BuildError::Image`].
pub fn copy_into(
    sources: &[Source],
    ignore: Option<&Ignore>,
    dest_root: &Path,
    dest: &str,
    opts: &CopyOptions,
) -> Result<(), BuildError> {
    let dest_is_dir_syntax = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
    let dest_rel = clean(dest);
    let several = sources.len() > 1;
    if several && !dest_is_dir_syntax {
        return Err(BuildError::Invalid(format!(
            "When using COPY with more than one source file, the destination must be a directory and end with a / (got {dest:?})"
        )));
    }
    let dest_exists_dir = is_dir_in(dest_root, &dest_rel)?;
    // entries: (target rel path, source path, metadata)
    let mut plan: Vec<(String, PathBuf, fs::Metadata)> = Vec::new();
    let mut archives: Vec<PathBuf> = Vec::new();
    for s in sources {
        let meta = fs::metadata(&s.path).map_err(io(format!("stat {}", s.path.display())))?;
        if meta.is_dir() {
            if !dest_exists_dir && !dest_rel.is_empty() {
                plan.push((dest_rel.clone(), s.path.clone(), meta.clone()));
            }
            walk(s, ignore, &mut |path, rel, m| {
                if !rel.is_empty() {
                    let t = join(&dest_rel, rel);
                    plan.push((t, path.to_path_buf(), m.clone()));
                }
                Ok(())
            })?;
        } else if opts.unpack_archives && is_tar_archive(&s.path) {
            archives.push(s.path.clone());
        } else {
            let base = s
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = if dest_is_dir_syntax || dest_exists_dir {
                join(&dest_rel, &base)
            } else {
                dest_rel.clone()
            };
            if target.is_empty() {
                return Err(BuildError::Invalid(format!(
                    "cannot copy a file onto the root directory (destination {dest:?})"
                )));
            }
            plan.push((target, s.path.clone(), meta));
        }
    }
    if !plan.is_empty() {
        write_plan(&plan, dest_root, opts)?;
    }
    for a in archives {
        let dir = ensure_dir(dest_root, &dest_rel)?;
        let f = fs::File::open(&a).map_err(io(format!("opening {}", a.display())))?;
        let r = crate::unpack::decompress(f, "ADD archive")?;
        crate::unpack::unpack_layer(r, &dir, "ADD archive")?;
    }
    Ok(())
}

/// Writes one file (a `COPY <<EOF` here-document) into `dest_root` at `dest`.
///
/// # Errors
/// As [`copy_into`].
pub fn write_file(
    dest_root: &Path,
    dest: &str,
    name: &str,
    content: &[u8],
    opts: &CopyOptions,
) -> Result<(), BuildError> {
    let dest_rel = clean(dest);
    let target = if dest.ends_with('/') || is_dir_in(dest_root, &dest_rel)? {
        join(&dest_rel, name)
    } else {
        dest_rel
    };
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(content.len() as u64);
    h.set_mode(opts.chmod.unwrap_or(0o644));
    let (u, g) = opts.owner.unwrap_or((0, 0));
    h.set_uid(u);
    h.set_gid(g);
    h.set_mtime(now_secs());
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, &target, content)
        .map_err(io(format!("writing {target}")))?;
    let data = b.into_inner().map_err(io("finishing tar"))?;
    crate::unpack::unpack_layer(&data[..], dest_root, "COPY")?;
    Ok(())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Makes sure `rel` is a directory inside `root` (created 0755 root-owned) and
/// returns its resolved path.
fn ensure_dir(root: &Path, rel: &str) -> Result<PathBuf, BuildError> {
    if let Some(p) = resolve(root, rel, true)? {
        if p.is_dir() {
            return Ok(p);
        }
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(0);
    h.set_mtime(now_secs());
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, format!("{rel}/"), io::empty())
        .map_err(io(format!("creating {rel}")))?;
    let data = b.into_inner().map_err(io("finishing tar"))?;
    crate::unpack::unpack_layer(&data[..], root, "ADD")?;
    resolve(root, rel, true)?
        .ok_or_else(|| BuildError::Invalid(format!("cannot create directory {rel}")))
}

/// Streams the plan as a tar through a pipe into the layer unpacker.
fn write_plan(
    plan: &[(String, PathBuf, fs::Metadata)],
    dest_root: &Path,
    opts: &CopyOptions,
) -> Result<(), BuildError> {
    let (reader, writer) = std::io::pipe().map_err(io("creating a pipe"))?;
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> Result<(), BuildError> {
            let mut b = tar::Builder::new(io::BufWriter::with_capacity(256 << 10, writer));
            b.follow_symlinks(false);
            for (target, path, m) in plan {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
                let mode = match opts.chmod {
                    Some(c) if !m.file_type().is_symlink() => c,
                    _ => m.permissions().mode() & 0o7777,
                };
                h.set_mode(mode);
                let (u, g) = match (opts.owner, opts.root_owned) {
                    (Some(o), _) => o,
                    (None, true) => (0, 0),
                    (None, false) => (m.uid() as u64, m.gid() as u64),
                };
                h.set_uid(u);
                h.set_gid(g);
                let _ = h.set_username("");
                let _ = h.set_groupname("");
                let ft = m.file_type();
                let res = if ft.is_symlink() {
                    let t = fs::read_link(path)
                        .map_err(io(format!("reading link {}", path.display())))?;
                    h.set_size(0);
                    b.append_link(&mut h, target, &t)
                } else if ft.is_dir() {
                    h.set_size(0);
                    b.append_data(&mut h, format!("{target}/"), io::empty())
                } else if ft.is_file() {
                    let f =
                        fs::File::open(path).map_err(io(format!("opening {}", path.display())))?;
                    h.set_size(m.len());
                    b.append_data(&mut h, target, f)
                } else {
                    // devices, fifos, sockets: skipped, as Docker copies them only from images
                    continue;
                };
                res.map_err(io(format!("copying {}", path.display())))?;
            }
            let mut w = b.into_inner().map_err(io("finishing the copy stream"))?;
            w.flush().map_err(io("finishing the copy stream"))?;
            Ok(())
        });
        let unpacked = crate::unpack::unpack_layer(reader, dest_root, "COPY");
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(BuildError::Invalid("the copy thread panicked".into())));
        produced?;
        unpacked?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_rules() {
        let i = Ignore::parse("# c\n*.log\n!keep.log\nnode_modules\n**/*.tmp\n/build/\n").unwrap();
        assert!(i.excluded("a.log"));
        assert!(!i.excluded("keep.log"));
        assert!(i.excluded("node_modules/x/y.js"));
        assert!(i.excluded("deep/dir/f.tmp"));
        assert!(i.excluded("build/out"));
        assert!(!i.excluded("src/a.log"));
        assert!(!i.excluded("main.go"));
    }

    #[test]
    fn sources_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("d/sub")).unwrap();
        fs::write(root.join("d/a.txt"), "a").unwrap();
        fs::write(root.join("d/b.txt"), "b").unwrap();
        fs::write(root.join("d/sub/c.txt"), "c").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        let s = sources(root, "d/*.txt", None).unwrap();
        assert_eq!(s.len(), 2);
        // an absolute symlink resolves inside the root, where there is no etc/passwd
        assert!(sources(root, "escape/passwd", None).is_err());
        let ign = Ignore::parse("d/b.txt").unwrap();
        assert_eq!(sources(root, "d/*.txt", Some(&ign)).unwrap().len(), 1);
        let h1 = hash_sources(&sources(root, "d", None).unwrap(), None).unwrap();
        fs::write(root.join("d/sub/c.txt"), "changed").unwrap();
        let h2 = hash_sources(&sources(root, "d", None).unwrap(), None).unwrap();
        assert_ne!(h1, h2);
        assert_eq!(
            h2,
            hash_sources(&sources(root, "d", None).unwrap(), None).unwrap()
        );
    }

    #[test]
    fn copy_rules() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        let dst = t.path().join("root");
        fs::create_dir_all(ctx.join("dir/in")).unwrap();
        fs::create_dir_all(&dst).unwrap();
        fs::write(ctx.join("f"), "file").unwrap();
        fs::write(ctx.join("dir/in/x"), "x").unwrap();
        let o = CopyOptions {
            root_owned: true,
            chmod: Some(0o600),
            ..Default::default()
        };
        copy_into(&sources(&ctx, "f", None).unwrap(), None, &dst, "/app/", &o).unwrap();
        assert_eq!(fs::read_to_string(dst.join("app/f")).unwrap(), "file");
        assert_eq!(
            fs::metadata(dst.join("app/f"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        copy_into(
            &sources(&ctx, "f", None).unwrap(),
            None,
            &dst,
            "/renamed",
            &o,
        )
        .unwrap();
        assert!(dst.join("renamed").is_file());
        copy_into(
            &sources(&ctx, "dir", None).unwrap(),
            None,
            &dst,
            "/d",
            &CopyOptions::default(),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(dst.join("d/in/x")).unwrap(), "x");
        let two = sources(&ctx, "*", None).unwrap();
        assert!(copy_into(&two, None, &dst, "/nodir", &o).is_err());
        // a symlink in the destination root pointing outside stays inside
        std::os::unix::fs::symlink("/tmp", dst.join("out")).unwrap();
        copy_into(&sources(&ctx, "f", None).unwrap(), None, &dst, "/out/", &o).unwrap();
        assert!(dst.join("tmp/f").is_file());
        write_file(&dst, "/h", "h", b"here\n", &o).unwrap();
        assert_eq!(fs::read_to_string(dst.join("h")).unwrap(), "here\n");
    }
}
