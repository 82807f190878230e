//! The build context and `COPY`/`ADD`: the context tar indexed as it arrives
//! (its files' content spooled, nothing unpacked), `.dockerignore` (moby `patternmatcher` rules: `*`,
//! `?`, `[...]`, `**`, `!` re-includes, the last matching line wins, a match on
//! a directory covers what is under it), sources resolved with wildcards and
//! symlinks followed *inside* their root (as under a chroot), their content
//! hashed for the build cache, and copied into a stage's root filesystem as a
//! tar stream through the layer unpacker (so no write can leave that root).
//!
//! Reference: <https://docs.docker.com/reference/dockerfile/#copy>,
//! <https://docs.docker.com/build/concepts/context/#dockerignore-files>.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

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

/// The kinds of node a `COPY` source tree holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    /// Devices, FIFOs, sockets: hashed, never copied (as Docker copies them only from images).
    Other,
}

impl Kind {
    fn tag(self) -> char {
        match self {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Other => 'o',
        }
    }
}

/// The metadata `COPY` uses of a node: permission bits (`0o7777`), owner,
/// size in bytes (files only) and mtime in seconds since the epoch.
#[derive(Clone, Debug)]
struct Stat {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
}

impl Stat {
    fn of(m: &fs::Metadata) -> Stat {
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        Stat {
            kind,
            mode: m.mode() & 0o7777,
            uid: u64::from(m.uid()),
            gid: u64::from(m.gid()),
            size: if kind == Kind::File { m.len() } else { 0 },
            mtime: u64::try_from(m.mtime()).unwrap_or(0),
        }
    }
}

/// One entry of the context index: a tar entry, or a directory the tar only
/// implies (0755, 0:0).
#[derive(Debug)]
struct Entry {
    stat: Stat,
    /// Symlink target, as stored.
    link: Option<PathBuf>,
    /// Where a file's content starts in the spool.
    offset: u64,
    /// SHA-256 of a file's content.
    digest: [u8; 32],
    children: BTreeMap<OsString, usize>,
}

impl Entry {
    fn dir(mode: u32, uid: u64, gid: u64, mtime: u64) -> Entry {
        Entry {
            stat: Stat {
                kind: Kind::Dir,
                mode,
                uid,
                gid,
                size: 0,
                mtime,
            },
            link: None,
            offset: 0,
            digest: [0; 32],
            children: BTreeMap::new(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    /// `entries[0]` is the context root.
    entries: Vec<Entry>,
    /// The content of every regular file, back to back (unlinked: it goes with the context).
    spool: fs::File,
    ignore: Ignore,
}

/// A build context, read from its tar as it arrives: an index of the entries
/// (type, mode, owner, mtime, link target, SHA-256 of the content) in memory,
/// and the files' content in one spool file. Nothing is unpacked: a `COPY`
/// whose cache key hits never writes a file, and one that misses reads its
/// sources from the spool. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Context {
    inner: Arc<Inner>,
}

const CONTEXT: &str = "the build context";

impl Context {
    /// Reads the context tar (plain, gzip or zstd) from `body`, spooling file
    /// content to an unlinked file in the existing directory `dir`, and reads
    /// its `.dockerignore`.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] for a body that is not a tar archive, an entry
    /// escaping the context or a hard link to a missing file;
    /// [`BuildError::Io`] when the spool cannot be written.
    pub fn receive<R: Read>(body: R, dir: &Path) -> Result<Context, BuildError> {
        let reader = crate::unpack::decompress(body, CONTEXT).map_err(|e| {
            BuildError::Invalid(format!("the build context is not a tar archive: {e}"))
        })?;
        let bad = |e: String| {
            BuildError::Invalid(format!("the build context is not a valid tar archive: {e}"))
        };
        let path = dir.join("content");
        let spool = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(format!("creating {}", path.display())))?;
        fs::remove_file(&path).map_err(io(format!("unlinking {}", path.display())))?;
        let mut entries = vec![Entry::dir(0o755, 0, 0, 0)];
        let mut pos = 0u64;
        {
            let mut w = io::BufWriter::with_capacity(256 << 10, &spool);
            let mut buf = vec![0u8; 64 << 10];
            let mut archive = tar::Archive::new(reader);
            for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
                let mut entry = entry.map_err(|e| bad(e.to_string()))?;
                let h = entry.header();
                let t = h.entry_type();
                let raw = entry.path_bytes().into_owned();
                let name = String::from_utf8_lossy(&raw).into_owned();
                let field =
                    |what: &str, e: io::Error| bad(format!("entry {name:?}: bad {what}: {e}"));
                let stat = |kind| -> Result<Stat, BuildError> {
                    Ok(Stat {
                        kind,
                        mode: h.mode().map_err(|e| field("mode", e))? & 0o7777,
                        uid: h.uid().map_err(|e| field("uid", e))?,
                        gid: h.gid().map_err(|e| field("gid", e))?,
                        size: 0,
                        mtime: h.mtime().unwrap_or(0),
                    })
                };
                let mut new = match t {
                    tar::EntryType::Regular
                    | tar::EntryType::Continuous
                    | tar::EntryType::GNUSparse => Entry {
                        stat: stat(Kind::File)?,
                        link: None,
                        offset: pos,
                        digest: [0; 32],
                        children: BTreeMap::new(),
                    },
                    tar::EntryType::Directory => {
                        let s = stat(Kind::Dir)?;
                        Entry::dir(s.mode, s.uid, s.gid, s.mtime)
                    }
                    tar::EntryType::Symlink => Entry {
                        stat: stat(Kind::Symlink)?,
                        link: entry
                            .link_name_bytes()
                            .map(|l| PathBuf::from(OsStr::from_bytes(&l))),
                        offset: 0,
                        digest: [0; 32],
                        children: BTreeMap::new(),
                    },
                    tar::EntryType::Link => {
                        let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                        let comps = crate::unpack::clean_rel(&target, CONTEXT)
                            .map_err(|e| bad(e.to_string()))?;
                        let found = lookup_exact(&entries, &comps)
                            .filter(|&i| entries[i].stat.kind == Kind::File)
                            .ok_or_else(|| {
                                bad(format!(
                                    "entry {name:?} is a hard link to {:?}, which is not a file earlier in the archive",
                                    String::from_utf8_lossy(&target)
                                ))
                            })?;
                        let e = &entries[found];
                        Entry {
                            stat: e.stat.clone(),
                            link: None,
                            offset: e.offset,
                            digest: e.digest,
                            children: BTreeMap::new(),
                        }
                    }
                    tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => Entry {
                        stat: stat(Kind::Other)?,
                        link: None,
                        offset: 0,
                        digest: [0; 32],
                        children: BTreeMap::new(),
                    },
                    // PAX and GNU long-name records (the tar reader applies them), volume labels
                    _ => continue,
                };
                let comps =
                    crate::unpack::clean_rel(&raw, CONTEXT).map_err(|e| bad(e.to_string()))?;
                if new.stat.kind == Kind::File && t != tar::EntryType::Link {
                    let mut hasher = Sha256::new();
                    loop {
                        let n = entry
                            .read(&mut buf)
                            .map_err(|e| bad(format!("entry {name:?}: {e}")))?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                        w.write_all(&buf[..n])
                            .map_err(io("writing the build context spool"))?;
                        pos += n as u64;
                    }
                    new.stat.size = pos - new.offset;
                    new.digest = hasher.finalize().into();
                }
                insert(&mut entries, &comps, new);
            }
            w.flush().map_err(io("writing the build context spool"))?;
        }
        let mut ctx = Context {
            inner: Arc::new(Inner {
                entries,
                spool,
                ignore: Ignore::default(),
            }),
        };
        let root = Root::Context(ctx.clone());
        let ignore = match root.resolve_node(".dockerignore", true)? {
            Some(n) if root.stat(&n)?.kind == Kind::File => {
                let mut text = String::new();
                root.open(&n)?
                    .take(16 << 20)
                    .read_to_string(&mut text)
                    .map_err(io("reading .dockerignore"))?;
                Ignore::parse(&text)?
            }
            _ => Ignore::default(),
        };
        drop(root);
        match Arc::get_mut(&mut ctx.inner) {
            Some(inner) => inner.ignore = ignore,
            None => return Err(BuildError::Invalid("the build context is shared".into())),
        }
        Ok(ctx)
    }

    /// The `.dockerignore` rules.
    pub fn ignore(&self) -> &Ignore {
        &self.inner.ignore
    }

    /// Reads the Dockerfile named `name` (relative to the context root;
    /// default `Dockerfile`, falling back to `dockerfile`), at most 16 MiB.
    ///
    /// # Errors
    /// [`BuildError::NotFound`] `Cannot locate specified Dockerfile: NAME`.
    pub fn dockerfile(&self, name: &str) -> Result<String, BuildError> {
        let name = if name.is_empty() { "Dockerfile" } else { name };
        let mut candidates = vec![name.to_string()];
        if name == "Dockerfile" {
            candidates.push("dockerfile".into());
        }
        let root = Root::Context(self.clone());
        for c in &candidates {
            if let Some(n) = root.resolve_node(c, true)? {
                if root.stat(&n)?.kind == Kind::File {
                    let mut text = String::new();
                    root.open(&n)?
                        .take(16 << 20)
                        .read_to_string(&mut text)
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

/// The entry at `comps` from the index root, without following symlinks.
fn lookup_exact(entries: &[Entry], comps: &[OsString]) -> Option<usize> {
    let mut cur = 0;
    for c in comps {
        cur = *entries[cur].children.get(c)?;
    }
    Some(cur)
}

/// Puts `new` at `comps`: missing parents become implied directories, a
/// parent that is not a directory is replaced by one, an entry already there
/// is replaced (a directory over a directory keeps its children), as
/// extracting the tar in order would leave it.
fn insert(entries: &mut Vec<Entry>, comps: &[OsString], mut new: Entry) {
    let Some((last, parents)) = comps.split_last() else {
        if new.stat.kind == Kind::Dir {
            entries[0].stat = new.stat;
        }
        return;
    };
    let mut cur = 0;
    for c in parents {
        cur = match entries[cur].children.get(c) {
            Some(&i) if entries[i].stat.kind == Kind::Dir => i,
            _ => {
                entries.push(Entry::dir(0o755, 0, 0, 0));
                let i = entries.len() - 1;
                entries[cur].children.insert(c.clone(), i);
                i
            }
        };
    }
    if let Some(&i) = entries[cur].children.get(last) {
        if entries[i].stat.kind == Kind::Dir && new.stat.kind == Kind::Dir {
            entries[i].stat = new.stat;
            return;
        }
    }
    if new.stat.kind == Kind::Dir {
        new.children = BTreeMap::new();
    }
    entries.push(new);
    let i = entries.len() - 1;
    entries[cur].children.insert(last.clone(), i);
}

/// Reads `len` bytes of the spool from `offset` (`pread`, so readers share the file).
struct SpoolReader<'a> {
    file: &'a fs::File,
    offset: u64,
    left: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        self.offset += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Where `COPY`/`ADD` sources are read from: the build context's index, or a
/// directory on disk (a stage's or an image's root filesystem, for
/// `COPY --from`). Paths resolve inside it as if it were `/`.
#[derive(Clone, Debug)]
pub enum Root {
    /// The build context.
    Context(Context),
    /// A root filesystem on disk.
    Dir(PathBuf),
}

/// A node of a [`Root`]: an index entry or a path on disk.
#[derive(Clone, Debug)]
enum Node {
    Entry(usize),
    Path(PathBuf),
}

impl Root {
    fn top(&self) -> Node {
        match self {
            Root::Context(_) => Node::Entry(0),
            Root::Dir(p) => Node::Path(p.clone()),
        }
    }

    fn entry(&self, i: usize) -> Result<&Entry, BuildError> {
        match self {
            Root::Context(c) => c
                .inner
                .entries
                .get(i)
                .ok_or_else(|| BuildError::Invalid(format!("no context entry {i}"))),
            Root::Dir(_) => Err(BuildError::Invalid(
                "a directory root has no entries".into(),
            )),
        }
    }

    /// The child `name` of the directory `dir`, symlinks not followed.
    fn lookup(&self, dir: &Node, name: &OsStr) -> Result<Option<Node>, BuildError> {
        match dir {
            Node::Entry(i) => Ok(self.entry(*i)?.children.get(name).map(|&c| Node::Entry(c))),
            Node::Path(p) => {
                let cand = p.join(name);
                match fs::symlink_metadata(&cand) {
                    Ok(_) => Ok(Some(Node::Path(cand))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
                    Err(e) => Err(io(format!("resolving {}", cand.display()))(e)),
                }
            }
        }
    }

    fn stat(&self, n: &Node) -> Result<Stat, BuildError> {
        match n {
            Node::Entry(i) => Ok(self.entry(*i)?.stat.clone()),
            Node::Path(p) => fs::symlink_metadata(p)
                .map(|m| Stat::of(&m))
                .map_err(io(format!("stat {}", p.display()))),
        }
    }

    fn read_link(&self, n: &Node) -> Result<PathBuf, BuildError> {
        match n {
            Node::Entry(i) => Ok(self.entry(*i)?.link.clone().unwrap_or_default()),
            Node::Path(p) => fs::read_link(p).map_err(io(format!("reading link {}", p.display()))),
        }
    }

    /// A directory's children, sorted by name.
    fn list(&self, n: &Node) -> Result<Vec<(OsString, Node)>, BuildError> {
        match n {
            Node::Entry(i) => Ok(self
                .entry(*i)?
                .children
                .iter()
                .map(|(k, &v)| (k.clone(), Node::Entry(v)))
                .collect()),
            Node::Path(p) => {
                let mut v: Vec<(OsString, Node)> = fs::read_dir(p)
                    .map_err(io(format!("reading {}", p.display())))?
                    .flatten()
                    .map(|e| (e.file_name(), Node::Path(e.path())))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(v)
            }
        }
    }

    /// A file's content.
    fn open(&self, n: &Node) -> Result<Box<dyn Read + Send + '_>, BuildError> {
        match (self, n) {
            (Root::Context(c), Node::Entry(i)) => {
                let e = self.entry(*i)?;
                Ok(Box::new(SpoolReader {
                    file: &c.inner.spool,
                    offset: e.offset,
                    left: e.stat.size,
                }))
            }
            (_, Node::Path(p)) => Ok(Box::new(
                fs::File::open(p).map_err(io(format!("opening {}", p.display())))?,
            )),
            (Root::Dir(_), Node::Entry(_)) => Err(BuildError::Invalid(
                "a directory root has no entries".into(),
            )),
        }
    }

    /// SHA-256 of a file's content (the index keeps it; a file on disk is read).
    fn digest(&self, n: &Node) -> Result<[u8; 32], BuildError> {
        match n {
            Node::Entry(i) => Ok(self.entry(*i)?.digest),
            Node::Path(p) => {
                let mut f = fs::File::open(p).map_err(io(format!("opening {}", p.display())))?;
                let mut h = Sha256::new();
                io::copy(&mut f, &mut h).map_err(io(format!("reading {}", p.display())))?;
                Ok(h.finalize().into())
            }
        }
    }

    /// Resolves `rel` as if the root were `/`: symlinks on the way are
    /// followed inside the root, and so is the final one when `follow`.
    /// `Ok(None)` when it does not exist.
    fn resolve_node(&self, rel: &str, follow: bool) -> Result<Option<Node>, BuildError> {
        let mut stack: Vec<Node> = vec![self.top()];
        let mut pending: std::collections::VecDeque<OsString> = clean(rel)
            .split('/')
            .filter(|c| !c.is_empty())
            .map(OsString::from)
            .collect();
        let mut hops = 0;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            if c == "." || c.is_empty() {
                continue;
            }
            let Some(cur) = stack.last() else {
                return Ok(None);
            };
            let Some(child) = self.lookup(cur, &c)? else {
                return Ok(None);
            };
            let st = self.stat(&child)?;
            let last = pending.is_empty();
            if st.kind == Kind::Symlink && (!last || follow) {
                hops += 1;
                if hops > 40 {
                    return Err(BuildError::Invalid(format!(
                        "too many levels of symbolic links at {rel}"
                    )));
                }
                let target = self.read_link(&child)?;
                if target.has_root() {
                    stack.truncate(1);
                }
                for part in target.components().rev() {
                    match part {
                        Component::Normal(n) => pending.push_front(n.to_os_string()),
                        Component::ParentDir => pending.push_front(OsString::from("..")),
                        _ => {}
                    }
                }
            } else if !last && st.kind != Kind::Dir {
                return Ok(None);
            } else {
                stack.push(child);
            }
        }
        Ok(stack.pop())
    }
}

/// Resolves `rel` inside the directory `root` as if `root` were `/`: symlinks
/// on the way are followed relative to `root`, and so is the final one when
/// `follow`. `Ok(None)` when it does not exist.
///
/// # Errors
/// [`BuildError::Io`]; [`BuildError::Invalid`] for a symlink loop.
pub fn resolve(root: &Path, rel: &str, follow: bool) -> Result<Option<PathBuf>, BuildError> {
    Ok(
        match Root::Dir(root.to_path_buf()).resolve_node(rel, follow)? {
            Some(Node::Path(p)) => Some(p),
            _ => None,
        },
    )
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// One resolved `COPY` source of a [`Root`].
#[derive(Clone, Debug)]
pub struct Source {
    node: Node,
    /// Path relative to the root as written/matched (for `.dockerignore`; its
    /// last component names a copied file).
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
    root: &Root,
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
                let Some(dir) = root.resolve_node(c, true)? else {
                    continue;
                };
                if root.stat(&dir)?.kind != Kind::Dir {
                    continue;
                }
                for (n, _) in root.list(&dir)? {
                    let n = n.to_string_lossy();
                    if pat.matches(&n) {
                        next.push(if c.is_empty() {
                            n.into_owned()
                        } else {
                            format!("{c}/{n}")
                        });
                    }
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
        if let Some(node) = root.resolve_node(&rel, true)? {
            out.push(Source { node, rel });
        }
    }
    if out.is_empty() {
        return Err(BuildError::NotFound(format!(
            "file not found in build context or excluded by .dockerignore: stat {pattern}: file does not exist"
        )));
    }
    Ok(out)
}

/// Walks a source: (node, name relative to the source, metadata), the source
/// itself first with an empty name, children sorted; symlinks are not
/// followed below the source; paths `ignore` excludes (relative to the
/// context root via `rel`) are skipped.
fn walk(
    root: &Root,
    src: &Source,
    ignore: Option<&Ignore>,
    f: &mut dyn FnMut(&Node, &str, &Stat) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    let st = root.stat(&src.node)?;
    f(&src.node, "", &st)?;
    if st.kind == Kind::Dir {
        walk_dir(root, &src.node, "", &src.rel, ignore, f)?;
    }
    Ok(())
}

fn walk_dir(
    root: &Root,
    dir: &Node,
    prefix: &str,
    ctx_rel: &str,
    ignore: Option<&Ignore>,
    f: &mut dyn FnMut(&Node, &str, &Stat) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    for (name, node) in root.list(dir)? {
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
        let st = root.stat(&node)?;
        f(&node, &rel, &st)?;
        if st.kind == Kind::Dir {
            walk_dir(root, &node, &rel, ctx_rel, ignore, f)?;
        }
    }
    Ok(())
}

/// SHA-256 over the sources' names, types, modes, owners, sizes, link
/// targets and content digests: the build cache key part of a `COPY`/`ADD`.
/// For the context, the digests were taken as the tar arrived, so nothing
/// is read again.
///
/// # Errors
/// [`BuildError::Io`].
pub fn hash_sources(
    root: &Root,
    sources: &[Source],
    ignore: Option<&Ignore>,
) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    for s in sources {
        h.update(s.rel.as_bytes());
        h.update([0]);
        walk(root, s, ignore, &mut |node, rel, st| {
            h.update(rel.as_bytes());
            h.update(
                format!(
                    "\0{}{:o}\0{}\0{}\0{}\0",
                    st.kind.tag(),
                    st.mode,
                    st.uid,
                    st.gid,
                    st.size
                )
                .as_bytes(),
            );
            match st.kind {
                Kind::Symlink => h.update(root.read_link(node)?.as_os_str().as_bytes()),
                Kind::File => h.update(root.digest(node)?),
                Kind::Dir | Kind::Other => {}
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

fn is_tar_archive(root: &Root, node: &Node) -> bool {
    let Ok(f) = root.open(node) else {
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

/// Copies `sources` of `root` into the root filesystem `dest_root` at `dest`
/// (absolute, `WORKDIR` already applied) with Docker's rules: a directory's
/// contents go into `dest`; a file goes to `dest` itself unless `dest` ends
/// with `/` or is an existing directory (then `dest/NAME`); several sources
/// need a `dest` ending with `/`. With `unpack_archives`, a local tar archive
/// source is unpacked into `dest` instead.
///
/// Everything is written through the layer unpacker, which resolves every
/// path inside `dest_root`.
///
/// # Errors
/// [`BuildError::Invalid`] for several sources and a `dest` not ending in `/`;
/// [`BuildError::Io`], [`BuildError::Image`].
pub fn copy_into(
    root: &Root,
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
    // entries: (target rel path, source node, metadata)
    let mut plan: Vec<(String, Node, Stat)> = Vec::new();
    let mut archives: Vec<Node> = Vec::new();
    for s in sources {
        let st = root.stat(&s.node)?;
        if st.kind == Kind::Dir {
            if !dest_exists_dir && !dest_rel.is_empty() {
                plan.push((dest_rel.clone(), s.node.clone(), st.clone()));
            }
            walk(root, s, ignore, &mut |node, rel, m| {
                if !rel.is_empty() {
                    plan.push((join(&dest_rel, rel), node.clone(), m.clone()));
                }
                Ok(())
            })?;
        } else if opts.unpack_archives && is_tar_archive(root, &s.node) {
            archives.push(s.node.clone());
        } else {
            let base = s.rel.rsplit('/').next().unwrap_or_default().to_string();
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
            plan.push((target, s.node.clone(), st));
        }
    }
    if !plan.is_empty() {
        write_plan(root, &plan, dest_root, opts)?;
    }
    for a in archives {
        let dir = ensure_dir(dest_root, &dest_rel)?;
        let r = crate::unpack::decompress(root.open(&a)?, "ADD archive")?;
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
    root: &Root,
    plan: &[(String, Node, Stat)],
    dest_root: &Path,
    opts: &CopyOptions,
) -> Result<(), BuildError> {
    let (reader, writer) = std::io::pipe().map_err(io("creating a pipe"))?;
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> Result<(), BuildError> {
            let mut b = tar::Builder::new(io::BufWriter::with_capacity(256 << 10, writer));
            b.follow_symlinks(false);
            for (target, node, m) in plan {
                let mut h = tar::Header::new_gnu();
                h.set_mtime(m.mtime);
                h.set_mode(match opts.chmod {
                    Some(c) if m.kind != Kind::Symlink => c,
                    _ => m.mode,
                });
                let (u, g) = match (opts.owner, opts.root_owned) {
                    (Some(o), _) => o,
                    (None, true) => (0, 0),
                    (None, false) => (m.uid, m.gid),
                };
                h.set_uid(u);
                h.set_gid(g);
                let res = match m.kind {
                    Kind::Symlink => {
                        let t = root.read_link(node)?;
                        h.set_entry_type(tar::EntryType::Symlink);
                        h.set_size(0);
                        b.append_link(&mut h, target, &t)
                    }
                    Kind::Dir => {
                        h.set_entry_type(tar::EntryType::Directory);
                        h.set_size(0);
                        b.append_data(&mut h, format!("{target}/"), io::empty())
                    }
                    Kind::File => {
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_size(m.size);
                        b.append_data(&mut h, target, root.open(node)?)
                    }
                    // devices, fifos, sockets: skipped, as Docker copies them only from images
                    Kind::Other => continue,
                };
                res.map_err(io(format!("copying {target}")))?;
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
    use std::os::unix::fs::PermissionsExt;

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
        let r = Root::Dir(root.to_path_buf());
        fs::create_dir_all(root.join("d/sub")).unwrap();
        fs::write(root.join("d/a.txt"), "a").unwrap();
        fs::write(root.join("d/b.txt"), "b").unwrap();
        fs::write(root.join("d/sub/c.txt"), "c").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        let s = sources(&r, "d/*.txt", None).unwrap();
        assert_eq!(s.len(), 2);
        // an absolute symlink resolves inside the root, where there is no etc/passwd
        assert!(sources(&r, "escape/passwd", None).is_err());
        let ign = Ignore::parse("d/b.txt").unwrap();
        assert_eq!(sources(&r, "d/*.txt", Some(&ign)).unwrap().len(), 1);
        let h1 = hash_sources(&r, &sources(&r, "d", None).unwrap(), None).unwrap();
        fs::write(root.join("d/sub/c.txt"), "changed").unwrap();
        let h2 = hash_sources(&r, &sources(&r, "d", None).unwrap(), None).unwrap();
        assert_ne!(h1, h2);
        assert_eq!(
            h2,
            hash_sources(&r, &sources(&r, "d", None).unwrap(), None).unwrap()
        );
    }

    #[test]
    fn copy_rules() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        let dst = t.path().join("root");
        fs::create_dir_all(ctx.join("dir/in")).unwrap();
        fs::create_dir_all(&dst).unwrap();
        let cr = Root::Dir(ctx.clone());
        fs::write(ctx.join("f"), "file").unwrap();
        fs::write(ctx.join("dir/in/x"), "x").unwrap();
        let o = CopyOptions {
            root_owned: true,
            chmod: Some(0o600),
            ..Default::default()
        };
        copy_into(
            &cr,
            &sources(&cr, "f", None).unwrap(),
            None,
            &dst,
            "/app/",
            &o,
        )
        .unwrap();
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
            &cr,
            &sources(&cr, "f", None).unwrap(),
            None,
            &dst,
            "/renamed",
            &o,
        )
        .unwrap();
        assert!(dst.join("renamed").is_file());
        copy_into(
            &cr,
            &sources(&cr, "dir", None).unwrap(),
            None,
            &dst,
            "/d",
            &CopyOptions::default(),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(dst.join("d/in/x")).unwrap(), "x");
        let two = sources(&cr, "*", None).unwrap();
        assert!(copy_into(&cr, &two, None, &dst, "/nodir", &o).is_err());
        // a symlink in the destination root pointing outside stays inside
        std::os::unix::fs::symlink("/tmp", dst.join("out")).unwrap();
        copy_into(
            &cr,
            &sources(&cr, "f", None).unwrap(),
            None,
            &dst,
            "/out/",
            &o,
        )
        .unwrap();
        assert!(dst.join("tmp/f").is_file());
        write_file(&dst, "/h", "h", b"here\n", &o).unwrap();
        assert_eq!(fs::read_to_string(dst.join("h")).unwrap(), "here\n");
    }

    /// A context tar with implied directories, a symlink, a hard link and a
    /// `.dockerignore`: indexed without unpacking, resolved, hashed and copied
    /// as the same tree on disk would be.
    #[test]
    fn indexed_context() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o640
            });
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_mtime(1_700_000_000);
            h.set_size(data.len() as u64);
            match link {
                Some(l) => b.append_link(&mut h, path, l).unwrap(),
                None => b.append_data(&mut h, path, data).unwrap(),
            }
        };
        add(
            "Dockerfile",
            tar::EntryType::Regular,
            b"FROM scratch\n",
            None,
        );
        add(
            ".dockerignore",
            tar::EntryType::Regular,
            b"app/*.log\n",
            None,
        );
        add(
            "app/src/main.c",
            tar::EntryType::Regular,
            b"int main;",
            None,
        );
        add("app/debug.log", tar::EntryType::Regular, b"noise", None);
        add("app/link", tar::EntryType::Symlink, b"", Some("src/main.c"));
        add(
            "app/hard",
            tar::EntryType::Link,
            b"",
            Some("app/src/main.c"),
        );
        add("abs", tar::EntryType::Symlink, b"", Some("/app/src"));
        let body = b.into_inner().unwrap();
        let t = tempfile::tempdir().unwrap();
        let ctx = Context::receive(&body[..], t.path()).unwrap();
        // the spool is unlinked: nothing lies in the directory
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
        assert_eq!(ctx.dockerfile("").unwrap(), "FROM scratch\n");
        assert!(ctx.dockerfile("Nope").is_err());
        assert!(ctx.ignore().excluded("app/debug.log"));
        let r = Root::Context(ctx.clone());
        // an absolute symlink resolves inside the context
        let s = sources(&r, "abs/main.c", None).unwrap();
        assert_eq!(s.len(), 1);
        assert!(sources(&r, "app/*.log", Some(ctx.ignore())).is_err());
        let h1 = hash_sources(&r, &sources(&r, "app", None).unwrap(), Some(ctx.ignore())).unwrap();
        let dst = t.path().join("root");
        fs::create_dir(&dst).unwrap();
        copy_into(
            &r,
            &sources(&r, "app", None).unwrap(),
            Some(ctx.ignore()),
            &dst,
            "/out",
            &CopyOptions::default(),
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(dst.join("out/hard")).unwrap(),
            "int main;"
        );
        assert_eq!(
            fs::read_to_string(dst.join("out/src/main.c")).unwrap(),
            "int main;"
        );
        assert_eq!(
            fs::read_link(dst.join("out/link")).unwrap(),
            Path::new("src/main.c")
        );
        assert!(!dst.join("out/debug.log").exists());
        let m = fs::metadata(dst.join("out/src/main.c")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o640));
        assert_eq!(m.mtime(), 1_700_000_000);
        // a changed file changes the hash
        let mut b2 = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o640);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_size(9);
        b2.append_data(&mut h, "app/src/main.c", &b"int mian;"[..])
            .unwrap();
        let body2 = b2.into_inner().unwrap();
        let t2 = tempfile::tempdir().unwrap();
        let ctx2 = Context::receive(&body2[..], t2.path()).unwrap();
        let r2 = Root::Context(ctx2);
        let h3 = hash_sources(&r2, &sources(&r2, "app", None).unwrap(), None).unwrap();
        assert_ne!(h1, h3);
        // entries escaping the context are refused
        let mut b3 = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        {
            let name = b"../evil";
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
        }
        h.set_cksum();
        b3.append(&h, &b"x"[..]).unwrap();
        let body3 = b3.into_inner().unwrap();
        let t3 = tempfile::tempdir().unwrap();
        let e = Context::receive(&body3[..], t3.path()).unwrap_err();
        assert!(e.to_string().contains("escapes"), "{e}");
    }
}
