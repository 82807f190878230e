//! `tether build`: sends a build context to `POST /build` (the classic
//! builder's API, as `DOCKER_BUILDKIT=0 docker build` does) and prints the
//! stream (`Step 1/5 : FROM ...`, `Successfully built ...`).
//!
//! The context is the directory PATH as a tar, without what its
//! `.dockerignore` excludes (the Dockerfile and `.dockerignore` are always
//! sent, as docker does); `-` reads a tar context, or a lone Dockerfile, from
//! stdin. A `-f` Dockerfile outside the context is added to it under a
//! generated name.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::{ArgAction, Parser};
use tether_image::build::context::Ignore;

use crate::args::{exact_args, parse};
use crate::client::{stream_body, Client, Query};
use crate::error::{CliError, Result};

/// `tether build`.
#[derive(Parser, Debug)]
#[command(
    name = "build",
    override_usage = "tether build [OPTIONS] PATH | -",
    about = "Build an image from a Dockerfile"
)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", action = ArgAction::Append)]
    tag: Vec<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", action = ArgAction::Append)]
    build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    network: String,
    /// Set metadata for an image
    #[arg(long = "label", action = ArgAction::Append)]
    label: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", action = ArgAction::Append)]
    add_host: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Set type of progress output (auto, plain, tty)
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value = "true", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: String,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    force_rm: bool,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    operands: Vec<String>,
}

/// `--build-arg K=V` (or `K`, taken from the environment as docker does).
fn build_args(raw: &[String]) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut m = serde_json::Map::new();
    for a in raw {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                m.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            Some(_) => {
                return Err(CliError::msg(format!(
                "invalid argument {a:?} for \"--build-arg\" flag: a name is required (NAME=VALUE)"
            )))
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    m.insert(a.clone(), serde_json::Value::String(v));
                }
            }
        }
    }
    Ok(m)
}

/// `--shm-size 64m` -> bytes.
fn size_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.trim_end_matches('b').chars().last() {
        Some('k') => (&t[..t.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (t.trim_end_matches('b'), 1),
    };
    num.parse::<f64>()
        .ok()
        .filter(|n| *n > 0.0)
        .map(|n| (n * mult as f64) as i64)
        .ok_or_else(|| {
            CliError::msg(format!(
                "invalid argument {s:?} for \"--shm-size\" flag: a size such as 64m is expected"
            ))
        })
}

/// Writes the context directory `dir` (minus what `.dockerignore` excludes)
/// as a tar into `out`; `extra` entries (name, content) are added.
fn tar_context<W: std::io::Write>(dir: &Path, out: W, extra: &[(String, Vec<u8>)]) -> Result<()> {
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(t) => Ignore::parse(&t).map_err(|e| CliError::msg(e.to_string()))?,
        Err(_) => Ignore::default(),
    };
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    let err = |p: &Path, e: std::io::Error| {
        CliError::msg(format!(
            "error adding {} to the build context: {e}",
            p.display()
        ))
    };
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = dir.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&full)
            .map_err(|e| err(&full, e))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let r = rel.join(e.file_name());
            let rs = r.to_string_lossy().to_string();
            let always = rs == "Dockerfile" || rs == ".dockerignore";
            if !always && ignore.excluded(&rs) {
                continue;
            }
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).map_err(|er| err(&p, er))?;
            if meta.is_dir() {
                b.append_dir(&r, &p).map_err(|er| err(&p, er))?;
                stack.push(r);
            } else if meta.is_file() || meta.file_type().is_symlink() {
                b.append_path_with_name(&p, &r).map_err(|er| err(&p, er))?;
            }
        }
    }
    for (name, content) in extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, name, &content[..])
            .map_err(|e| CliError::msg(format!("adding {name}: {e}")))?;
    }
    let mut w = b
        .into_inner()
        .map_err(|e| CliError::msg(format!("writing the build context: {e}")))?;
    std::io::Write::flush(&mut w)
        .map_err(|e| CliError::msg(format!("writing the build context: {e}")))?;
    Ok(())
}

/// One build to send: what `tether build` and `tether compose build` ask of
/// `POST /build`.
#[derive(Debug, Default, Clone)]
pub struct BuildRequest {
    /// `t` values.
    pub tags: Vec<String>,
    /// `dockerfile` (a path inside the context), empty for the default.
    pub dockerfile: String,
    /// `buildargs`.
    pub build_args: serde_json::Map<String, serde_json::Value>,
    /// `target`.
    pub target: Option<String>,
    /// `nocache`.
    pub no_cache: bool,
    /// `pull`.
    pub pull: bool,
    /// `rm`.
    pub rm: bool,
    /// `forcerm`.
    pub force_rm: bool,
    /// `networkmode` (`default` is not sent).
    pub network: String,
    /// `labels`.
    pub labels: serde_json::Map<String, serde_json::Value>,
    /// `extrahosts`.
    pub add_hosts: Vec<String>,
    /// `q`.
    pub quiet: bool,
    /// `shmsize`, bytes.
    pub shm_size: Option<i64>,
    /// `platform`.
    pub platform: Option<String>,
}

impl BuildRequest {
    fn query(&self) -> String {
        let mut q = Query::new();
        for t in &self.tags {
            q = q.add("t", t.clone());
        }
        q.add_if(
            !self.dockerfile.is_empty(),
            "dockerfile",
            self.dockerfile.clone(),
        )
        .add_if(
            !self.build_args.is_empty(),
            "buildargs",
            serde_json::Value::Object(self.build_args.clone()).to_string(),
        )
        .add_if(
            self.target.is_some(),
            "target",
            self.target.clone().unwrap_or_default(),
        )
        .add_if(self.no_cache, "nocache", "1")
        .add_if(self.pull, "pull", "1")
        .add("rm", if self.rm { "1" } else { "0" })
        .add_if(self.force_rm, "forcerm", "1")
        .add_if(
            !self.network.is_empty() && self.network != "default",
            "networkmode",
            self.network.clone(),
        )
        .add_if(
            !self.labels.is_empty(),
            "labels",
            serde_json::Value::Object(self.labels.clone()).to_string(),
        )
        .add_if(
            !self.add_hosts.is_empty(),
            "extrahosts",
            self.add_hosts.join(","),
        )
        .add_if(self.quiet, "q", "1")
        .add_if(
            self.shm_size.is_some(),
            "shmsize",
            self.shm_size.unwrap_or(0).to_string(),
        )
        .add_if(
            self.platform.is_some(),
            "platform",
            self.platform.clone().unwrap_or_default(),
        )
        .encode()
    }
}

/// Sends the context directory `dir` (a `-f` Dockerfile outside it is added
/// under a generated name) and prints the build's stream.
///
/// # Errors
/// A missing directory or Dockerfile, a tar failure, the daemon's error.
pub async fn build_dir(
    client: &Client,
    dir: &Path,
    dockerfile: Option<&str>,
    mut req: BuildRequest,
) -> Result<()> {
    if !dir.is_dir() {
        return Err(CliError::msg(format!(
            "unable to prepare context: path {:?} not found",
            dir.display().to_string()
        )));
    }
    let mut extra = Vec::new();
    if let Some(f) = dockerfile {
        let fp = if f == "-" {
            None
        } else if Path::new(f).is_absolute() {
            Some(PathBuf::from(f))
        } else {
            Some(std::env::current_dir().unwrap_or_default().join(f))
        };
        let (content, inside) = match &fp {
            None => {
                let mut s = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut s)
                    .map_err(|e| CliError::msg(format!("reading stdin: {e}")))?;
                (s, None)
            }
            Some(p) => {
                let c = std::fs::read(p).map_err(|e| {
                    CliError::msg(format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: {e}", p.display()))
                })?;
                let canon_dir = dir.canonicalize().unwrap_or(dir.to_path_buf());
                let inside = p
                    .canonicalize()
                    .ok()
                    .and_then(|c| c.strip_prefix(&canon_dir).ok().map(|r| r.to_path_buf()));
                (c, inside)
            }
        };
        match inside {
            Some(rel) => req.dockerfile = rel.to_string_lossy().to_string(),
            None => {
                let name = format!(".dockerfile.{:012x}", rand_suffix());
                extra.push((name.clone(), content));
                req.dockerfile = name;
            }
        }
    }
    // The tar is made while it is sent: a blocking thread writes it into a channel
    // that is the request body (no temp file of the whole context).
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    let d = dir.to_path_buf();
    let maker = tokio::task::spawn_blocking(move || {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let r = tar_context(&d, w, &extra);
        if let Err(e) = &r {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
        r
    });
    let body = stream_body(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let sent = post_build(client, body, &req).await;
    // a failure to make the tar is the error to show, not the interrupted request's
    maker.await.map_err(|e| CliError::msg(e.to_string()))??;
    sent
}

const CHUNK: usize = 256 << 10;

/// A `Write` that sends full chunks down a channel (from a blocking thread).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn ship(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(bytes::Bytes::from(chunk)))
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the daemon stopped reading the build context",
                )
            })
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.ship()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.ship()
    }
}

async fn post_build(client: &Client, body: crate::client::Body, req: &BuildRequest) -> Result<()> {
    let resp = client
        .request(
            hyper::Method::POST,
            &format!("/build{}", req.query()),
            body,
            Some("application/x-tar"),
        )
        .await?;
    super::display_json_stream(resp, false).await
}

async fn send(client: &Client, mut spool: std::fs::File, req: &BuildRequest) -> Result<()> {
    std::io::Seek::seek(&mut spool, std::io::SeekFrom::Start(0))
        .map_err(|e| CliError::msg(format!("reading the build context: {e}")))?;
    let file = tokio::fs::File::from_std(spool);
    post_build(client, stream_body(read_all(file)), req).await
}

/// `tether build [OPTIONS] PATH | -`.
pub async fn build(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: BuildArgs = parse(path, args)?;
    exact_args::<BuildArgs>(path, a.operands.len(), 1)?;
    if !matches!(a.progress.as_str(), "auto" | "plain" | "tty") {
        return Err(CliError::msg(format!(
            "invalid argument {:?} for \"--progress\" flag: use auto, plain or tty",
            a.progress
        )));
    }
    let rm = match a.rm.as_str() {
        "true" | "1" => true,
        "false" | "0" => false,
        other => {
            return Err(CliError::msg(format!(
                "invalid argument {other:?} for \"--rm\" flag: use true or false"
            )))
        }
    };
    let mut labels = serde_json::Map::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    let mut req = BuildRequest {
        tags: a.tag.clone(),
        dockerfile: String::new(),
        build_args: build_args(&a.build_arg)?,
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        rm,
        force_rm: a.force_rm,
        network: a.network.clone(),
        labels,
        add_hosts: a.add_host.clone(),
        quiet: a.quiet,
        shm_size: a.shm_size.as_deref().map(size_bytes).transpose()?,
        platform: a.platform.clone(),
    };
    let operand = a.operands[0].clone();
    if operand != "-" {
        return build_dir(client, Path::new(&operand), a.file.as_deref(), req).await;
    }
    // a tar context, or a lone Dockerfile, on stdin
    if std::io::stdin().is_terminal() {
        return Err(CliError::msg(
            "requested build context from stdin, but stdin is a terminal",
        ));
    }
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| CliError::msg(format!("reading stdin: {e}")))?;
    let is_tar =
        data.len() >= 262 && &data[257..262] == b"ustar" || data.starts_with(&[0x1f, 0x8b]);
    let spool = tempfile::tempfile().map_err(|e| CliError::msg(format!("temp file: {e}")))?;
    let mut f = spool
        .try_clone()
        .map_err(|e| CliError::msg(e.to_string()))?;
    if is_tar {
        std::io::Write::write_all(&mut f, &data).map_err(|e| CliError::msg(e.to_string()))?;
        req.dockerfile = a.file.clone().unwrap_or_default();
    } else {
        let mut b = tar::Builder::new(f);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "Dockerfile", &data[..])
            .map_err(|e| CliError::msg(e.to_string()))?;
        b.finish().map_err(|e| CliError::msg(e.to_string()))?;
        req.dockerfile = "Dockerfile".into();
    }
    send(client, spool, &req).await
}

/// `--shm-size`-style sizes (`64m`, `1g`, bytes) -> bytes.
///
/// # Errors
/// A message naming the value.
pub fn parse_size(s: &str) -> Result<i64> {
    size_bytes(s)
}

fn rand_suffix() -> u64 {
    let mut b = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    u64::from_le_bytes(b) & 0xffff_ffff_ffff
}

fn read_all(
    f: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures::stream::unfold(f, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 << 10];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}
