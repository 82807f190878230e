//! The classic builder: `POST /build` (as `DOCKER_BUILDKIT=0 docker build`,
//! docker-compose 1.29 `build:` and the Docker SDKs call it) over the
//! engine's own containers.
//!
//! Each stage starts from its base image (a local image, one pulled from a
//! registry, an earlier stage or `scratch`); each step makes an image whose
//! parent is the previous one: config-only steps (`ENV`, `LABEL`, `CMD`, ...)
//! add a history entry without a layer; `RUN` runs a container of this engine
//! (same runtime, same networking: the default bridge unless `--network`, the
//! embedded DNS on user-defined networks, the build's `--add-host` entries)
//! and commits its overlay upper directory as a layer; `COPY`/`ADD` mount the
//! parent's layers with a fresh upper directory, copy through the layer
//! unpacker and commit. A step whose key (parent image, instruction, the build
//! args it sees, and for `COPY`/`ADD` the content of its sources) was built
//! before reuses that image (`---> Using cache`) unless `nocache`.
//!
//! Progress goes out as the Engine API's JSON messages: `{"stream": "Step 1/4
//! : FROM deb\n"}`, `{"aux": {"ID": "sha256:..."}}`, and an
//! `{"errorDetail": {"message": ...}, "error": ...}` at a failure. Tags are set
//! only when every step succeeded; build containers and mounts never outlive
//! the build (also when the client goes away).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{ContainerCreateBody, HealthConfig, HostConfig};
use serde_json::{json, Value};
use tether_image::build::context::{self, Context, CopyOptions};
use tether_image::build::dockerfile::{
    self, CommandForm, CopyArgs, CopySource, Dockerfile, Stage, StepKind,
};
use tether_image::build::BuildError;
use tether_image::{HistoryEntry, Image, ImageConfig, NewImage};
use tether_runtime::rootfs;
use tokio::sync::mpsc::UnboundedSender;

use crate::{Engine, EngineError};

/// Build args Docker predefines (usable without an `ARG` line; not in the
/// image's history).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The options of `POST /build` (Docker Engine API "ImageBuild" query).
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// `dockerfile`: path of the Dockerfile in the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `t` (repeatable): `name[:tag]` references to tag the result with.
    pub tags: Vec<String>,
    /// `buildargs`: JSON object of build args (a null value = from the client's environment, unset here).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `target`: the stage to build (default the last).
    pub target: Option<String>,
    /// `nocache`.
    pub no_cache: bool,
    /// `pull`: pull base images even when present.
    pub pull: bool,
    /// `rm` (default true): remove intermediate containers after a successful build.
    pub rm: bool,
    /// `forcerm`: remove them always.
    pub force_rm: bool,
    /// `networkmode`: `default`/`bridge`, `host`, `none` or a network name, for `RUN`.
    pub network_mode: String,
    /// `labels`: JSON object set on the final image.
    pub labels: BTreeMap<String, String>,
    /// `q`: only the image ID is printed.
    pub quiet: bool,
    /// `extrahosts`: `name:ip` entries for `RUN` containers' /etc/hosts.
    pub extra_hosts: Vec<String>,
    /// `shmsize` in bytes for `RUN` containers.
    pub shm_size: Option<i64>,
    /// Registry credentials for pulling base images (from `X-Registry-Config`).
    pub auth: tether_image::registry::AuthConfig,
}

impl BuildOptions {
    /// Reads the query of `POST /build`: `t` may repeat (`t` values are given
    /// in order in `tags`), `buildargs` and `labels` are JSON objects, booleans
    /// are `1`/`true`/`0`/`false`, `platform` must be empty or `linux/amd64`.
    ///
    /// # Errors
    /// [`EngineError::InvalidParam`] naming the parameter and its value.
    pub fn from_query(pairs: &[(String, String)]) -> Result<BuildOptions, EngineError> {
        let mut o = BuildOptions {
            rm: true,
            network_mode: "default".into(),
            ..Default::default()
        };
        let bad = |k: &str, v: &str, what: &str| {
            EngineError::InvalidParam(format!("invalid {k} value {v:?}: {what}"))
        };
        let boolean = |k: &str, v: &str| match v {
            "1" | "true" | "True" => Ok(true),
            "" | "0" | "false" | "False" => Ok(false),
            _ => Err(bad(k, v, "use 1/true or 0/false")),
        };
        for (k, v) in pairs {
            match k.as_str() {
                "dockerfile" => o.dockerfile = v.clone(),
                "t" if !v.is_empty() => {
                    tether_image::parse_reference(v).map_err(|e| {
                        EngineError::InvalidParam(format!("invalid tag {v:?}: {e}"))
                    })?;
                    o.tags.push(v.clone())
                }
                "buildargs" if !v.is_empty() => {
                    o.build_args = serde_json::from_str(v).map_err(|e| {
                        bad(k, v, &format!("a JSON object of strings is expected ({e})"))
                    })?
                }
                "labels" if !v.is_empty() => {
                    o.labels = serde_json::from_str(v).map_err(|e| {
                        bad(k, v, &format!("a JSON object of strings is expected ({e})"))
                    })?
                }
                "target" => o.target = Some(v.to_ascii_lowercase()).filter(|t| !t.is_empty()),
                "nocache" => o.no_cache = boolean(k, v)?,
                "pull" => o.pull = !v.is_empty() && boolean(k, v)?,
                "rm" => o.rm = boolean(k, v)?,
                "forcerm" => o.force_rm = boolean(k, v)?,
                "q" => o.quiet = boolean(k, v)?,
                "networkmode" => {
                    o.network_mode = if v.is_empty() {
                        "default".into()
                    } else {
                        v.clone()
                    }
                }
                "extrahosts" => o
                    .extra_hosts
                    .extend(v.split(',').filter(|s| !s.is_empty()).map(String::from)),
                "shmsize" if !v.is_empty() => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| bad(k, v, "a size in bytes is expected"))?;
                    if n <= 0 {
                        return Err(bad(k, v, "the size must be greater than 0"));
                    }
                    o.shm_size = Some(n)
                }
                "platform" if !v.is_empty() && v != "linux/amd64" && v != "linux" => {
                    return Err(bad(
                        k,
                        v,
                        "tether builds for linux/amd64 only (the host's platform)",
                    ));
                }
                "version" if !v.is_empty() && v != "1" => return Err(bad(
                    k,
                    v,
                    "only the classic builder (version 1) is served; BuildKit (version 2) is not",
                )),
                _ => {}
            }
        }
        Ok(o)
    }
}

/// Where a build's messages go: lines of the Engine API's JSON stream.
pub type BuildTx = UnboundedSender<Value>;

fn say(tx: &BuildTx, quiet: bool, s: impl Into<String>) {
    if !quiet {
        let _ = tx.send(json!({ "stream": s.into() }));
    }
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

fn build_err(e: BuildError) -> EngineError {
    match e.status() {
        500 => EngineError::Internal(e.to_string()),
        _ => EngineError::InvalidParam(e.to_string()),
    }
}

/// The state of the stage being built.
struct StageState {
    /// Current image (None for `scratch` before the first step that makes one).
    image: Option<Image>,
    config: ImageConfig,
    /// ARGs declared in the stage: name -> value in effect.
    args: BTreeMap<String, Option<String>>,
    author: Option<String>,
    /// Whether this stage set CMD (an ENTRYPOINT resets an inherited one).
    cmd_set: bool,
}

impl StageState {
    /// The variables visible to expansion: ENV first, then the stage's ARGs.
    fn lookup(&self, name: &str) -> Option<String> {
        for e in &self.config.env {
            if let Some((k, v)) = e.split_once('=') {
                if k == name {
                    return Some(v.to_string());
                }
            }
        }
        self.args.get(name).cloned().flatten()
    }

    fn expand(&self, s: &str, escape: char) -> Result<String, String> {
        dockerfile::expand_word(s, escape, &|n| self.lookup(n))
    }

    /// Build args passed to RUN as environment (those not overridden by ENV).
    fn run_args(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .filter(|(k, _)| {
                !self
                    .config
                    .env
                    .iter()
                    .any(|e| e.split('=').next() == Some(k.as_str()))
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// Removes build containers and mounts when dropped.
struct Cleanup {
    engine: Arc<Engine>,
    containers: Vec<String>,
    mounts: Vec<PathBuf>,
    dir: PathBuf,
    keep_containers: bool,
}

impl Cleanup {
    async fn finish(mut self, success: bool, rm: bool, force_rm: bool) {
        // A failed build leaves no container behind (the rule, stricter than
        // Docker's, which keeps the failed step's container); `rm=false` keeps the
        // containers of a successful build for inspection.
        let remove = force_rm || rm || !success;
        if remove {
            for id in std::mem::take(&mut self.containers) {
                let _ = self.engine.remove_container(&id, true, true).await;
            }
        } else {
            self.keep_containers = true;
        }
        for m in std::mem::take(&mut self.mounts) {
            let _ = rootfs::unmount(&m);
        }
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for m in &self.mounts {
            let _ = rootfs::unmount(m);
        }
        if !self.keep_containers && !self.containers.is_empty() {
            let engine = self.engine.clone();
            let ids = std::mem::take(&mut self.containers);
            tokio::spawn(async move {
                for id in ids {
                    let _ = engine.remove_container(&id, true, true).await;
                }
            });
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The build cache: key -> image ID, in `<root>/builder/cache.json`.
fn cache_path(engine: &Engine) -> PathBuf {
    engine.cfg.root.join("builder").join("cache.json")
}

fn cache_key(parent: Option<&Image>, what: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(parent.map(|p| p.id.as_str()).unwrap_or("scratch"));
    h.update([0]);
    h.update(what.as_bytes());
    hex::encode(h.finalize())
}

impl Engine {
    fn cache_get(&self, key: &str) -> Option<Image> {
        let text = std::fs::read_to_string(cache_path(self)).ok()?;
        let m: HashMap<String, String> = serde_json::from_str(&text).ok()?;
        self.images.get(m.get(key)?).ok()
    }

    /// POST /build/prune (`docker builder prune`): the classic builder's cache is an
    /// index from step keys to the images they made; a prune forgets entries whose image
    /// is gone, and with `all` every entry (the next build then runs every step). The
    /// images stay: `image prune` removes them. Returns the forgotten keys and the bytes
    /// freed (0: an index entry holds no data).
    ///
    /// # Errors
    /// [`EngineError::Internal`] when the index cannot be written.
    pub fn prune_build_cache(&self, all: bool) -> Result<(Vec<String>, u64), EngineError> {
        let p = cache_path(self);
        let mut m: HashMap<String, String> = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let mut gone: Vec<String> = m
            .iter()
            .filter(|(_, v)| all || self.images.get(v).is_err())
            .map(|(k, _)| k.clone())
            .collect();
        gone.sort();
        if gone.is_empty() {
            return Ok((gone, 0));
        }
        for k in &gone {
            m.remove(k);
        }
        crate::state::write_json(&p, &m)
            .map_err(|e| EngineError::Internal(format!("writing {}: {e}", p.display())))?;
        Ok((gone, 0))
    }

    fn cache_put(&self, key: &str, id: &str) {
        let p = cache_path(self);
        let mut m: HashMap<String, String> = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        m.retain(|_, v| self.images.get(v).is_ok());
        m.insert(key.to_string(), id.to_string());
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let _ = crate::state::write_json(&p, &m);
    }

    /// Checks a build's options before its context is read: the network
    /// exists (for a name), tags are valid (already parsed).
    ///
    /// # Errors
    /// [`EngineError::NotFound`] for an unknown network.
    pub async fn validate_build(&self, opts: &BuildOptions) -> Result<(), EngineError> {
        match opts.network_mode.as_str() {
            "default" | "bridge" | "host" | "none" => Ok(()),
            name => {
                let st = self.state.lock().await;
                st.network(name).map(|_| ()).map_err(|_| {
                    EngineError::NotFound(format!(
                        "network {name} not found: --network takes default, host, none or the name of a network"
                    ))
                })
            }
        }
    }

    /// POST /build: reads the build context `archive` (a tar, plain or gzip, read as it
    /// arrives: a blocking reader, read on a blocking thread) into a [`Context`]: an
    /// index of its entries and one unlinked spool file of their content in a directory
    /// of its own under `ROOT/builder` (nothing is unpacked), then runs the build
    /// ([`Engine::build`]) in a task and returns its messages. Dropping the receiver
    /// cancels the build; the context directory goes when the build ends.
    ///
    /// # Errors
    /// Before the build starts: [`EngineError::InvalidParam`] for a bad archive,
    /// [`EngineError::Internal`] when the directory cannot be made or written.
    pub async fn start_build(
        self: &Arc<Self>,
        opts: BuildOptions,
        archive: impl std::io::Read + Send + 'static,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<Value>, EngineError> {
        let base = self.cfg.root.join("builder");
        std::fs::create_dir_all(&base)
            .map_err(|e| EngineError::Internal(format!("create {}: {e}", base.display())))?;
        let dir = tempfile::Builder::new()
            .prefix("context-")
            .tempdir_in(&base)
            .map_err(|e| EngineError::Internal(format!("context dir: {e}")))?;
        let root = dir.path().to_path_buf();
        let ctx = tokio::task::spawn_blocking(move || {
            Context::receive(std::io::BufReader::with_capacity(256 << 10, archive), &root).map_err(
                |e| match e.status() {
                    500 => EngineError::Internal(e.to_string()),
                    _ => EngineError::InvalidParam(e.to_string()),
                },
            )
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let engine = self.clone();
        tokio::spawn(async move {
            let _ = engine.build(opts, ctx, tx).await;
            let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
        });
        Ok(rx)
    }

    /// Runs a build over the unpacked `ctx`; returns the final image ID. Every
    /// message, the error included, goes to `tx` (the caller adds nothing).
    pub async fn build(
        self: &Arc<Self>,
        opts: BuildOptions,
        ctx: Context,
        tx: BuildTx,
    ) -> Result<String, EngineError> {
        let dir = self
            .cfg
            .root
            .join("builder")
            .join(&crate::state::new_id()[..12]);
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::Internal(format!("create {}: {e}", dir.display())))?;
        let mut cleanup = Cleanup {
            engine: self.clone(),
            containers: Vec::new(),
            mounts: Vec::new(),
            dir: dir.clone(),
            keep_containers: false,
        };
        let res = self.build_inner(&opts, &ctx, &tx, &mut cleanup).await;
        match res {
            Ok(id) => {
                // the client has its answer before the build's directories are removed
                drop(tx);
                cleanup.finish(true, opts.rm, opts.force_rm).await;
                Ok(id)
            }
            Err(e) => {
                // a failed build's containers are gone before the client hears of it
                cleanup.finish(false, opts.rm, opts.force_rm).await;
                let m = e.to_string();
                let _ = tx.send(json!({"errorDetail": {"message": m}, "error": m}));
                Err(e)
            }
        }
    }

    async fn build_inner(
        self: &Arc<Self>,
        opts: &BuildOptions,
        ctx: &Context,
        tx: &BuildTx,
        cleanup: &mut Cleanup,
    ) -> Result<String, EngineError> {
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            opts.dockerfile.clone()
        };
        let text = ctx.dockerfile(&name).map_err(build_err)?;
        let df = dockerfile::parse(&name, &text).map_err(build_err)?;
        let escape = df.escape;

        // global args: defaults overridden by --build-arg
        let mut global: BTreeMap<String, Option<String>> = BTreeMap::new();
        let empty = |_: &str| None;
        for raw in &df.global_args {
            for (k, v) in dockerfile::name_values("ARG", raw, escape, &empty, true)
                .map_err(EngineError::InvalidParam)?
            {
                let given = opts.build_args.get(&k).cloned().flatten();
                global.insert(k, given.or(v));
            }
        }
        let glookup = |n: &str| global.get(n).cloned().flatten();

        // which stages are needed
        let target = match &opts.target {
            Some(t) => df
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| {
                    let names: Vec<&str> =
                        df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
                    EngineError::InvalidParam(format!(
                        "failed to reach build target {t} in Dockerfile: the stages are {names:?}"
                    ))
                })?,
            None => df.stages.len() - 1,
        };
        let needed = needed_stages(&df, target, &glookup, escape)?;
        let total: usize = needed.iter().map(|&i| 1 + df.stages[i].steps.len()).sum();
        let mut n = 0usize;
        let mut built: Vec<Option<Image>> = vec![None; df.stages.len()];
        let mut used_args: std::collections::BTreeSet<String> = Default::default();

        for &si in &needed {
            let stage = &df.stages[si];
            n += 1;
            say(
                tx,
                opts.quiet,
                format!("Step {n}/{total} : {}\n", stage.text),
            );
            let base = dockerfile::expand_word(&stage.base, escape, &glookup)
                .map_err(|m| line_err(&name, stage.line, m))?;
            let base_img = self
                .stage_base(&df, si, &base, &built, opts, tx)
                .await
                .map_err(|e| line_err(&name, stage.line, e.to_string()))?;
            let mut st = StageState {
                config: base_img
                    .as_ref()
                    .map(|i| i.config.clone())
                    .unwrap_or_default(),
                image: base_img,
                args: BTreeMap::new(),
                author: None,
                cmd_set: false,
            };
            if st.config.env.is_empty() && st.image.is_none() {
                st.config.env.push(DEFAULT_PATH.into());
            }
            if let Some(img) = &st.image {
                say(tx, opts.quiet, format!(" ---> {}\n", short(&img.id)));
            }
            // ONBUILD triggers of the base image run first, unnumbered
            let triggers = std::mem::take(&mut st.config.on_build);
            let mut steps: Vec<(bool, dockerfile::Step)> = Vec::new();
            if !triggers.is_empty() {
                let n = triggers.len();
                let s = if n == 1 { "" } else { "s" };
                say(
                    tx,
                    opts.quiet,
                    format!("# Executing {n} build trigger{s}\n"),
                );
            }
            for trig in triggers {
                let tdf = dockerfile::parse(&name, &format!("FROM scratch\n{trig}\n"))
                    .map_err(build_err)?;
                steps.extend(tdf.stages[0].steps.iter().cloned().map(|s| (false, s)));
            }
            steps.extend(stage.steps.iter().cloned().map(|s| (true, s)));
            for (numbered, step) in &steps {
                if *numbered {
                    n += 1;
                    say(
                        tx,
                        opts.quiet,
                        format!("Step {n}/{total} : {}\n", step.text),
                    );
                }
                if tx.is_closed() {
                    return Err(EngineError::Internal(
                        "the build was cancelled: the client went away".into(),
                    ));
                }
                self.run_step(
                    step,
                    &name,
                    escape,
                    &mut st,
                    &df,
                    &built,
                    ctx,
                    opts,
                    tx,
                    cleanup,
                    &mut used_args,
                )
                .await?;
            }
            // a stage that only has FROM still needs an image (scratch has none)
            built[si] = st.image.clone();
            if si == target {
                break;
            }
        }
        let mut final_img = built[target].clone().ok_or_else(|| {
            EngineError::InvalidParam("No image was generated. Is your Dockerfile empty?".into())
        })?;
        if !opts.labels.is_empty() {
            let mut cfg = final_img.config.clone();
            for (k, v) in &opts.labels {
                cfg.labels.insert(k.clone(), v.clone());
            }
            let created_by = format!(
                "/bin/sh -c #(nop)  LABEL {}",
                opts.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            final_img = self
                .commit_step(Some(&final_img), None, cfg, created_by, None)
                .await?;
        }
        // build args given but never declared: a warning, as Docker
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !global.contains_key(*k))
            .filter(|k| !PREDEFINED_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            say(
                tx,
                opts.quiet,
                format!(
                    "[Warning] One or more build-args {:?} were not consumed\n",
                    unused
                ),
            );
        }
        let id = final_img.id.clone();
        let _ = tx.send(json!({"aux": {"ID": id}}));
        say(
            tx,
            opts.quiet,
            format!("Successfully built {}\n", short(&id)),
        );
        for t in &opts.tags {
            self.images.tag(&id, t)?;
            self.emit_image("tag", t);
            say(
                tx,
                opts.quiet,
                format!("Successfully tagged {}\n", familiar_tag(t)),
            );
        }
        if opts.quiet {
            let _ = tx.send(json!({ "stream": format!("{id}\n") }));
        }
        Ok(id)
    }

    /// The base image of stage `si`: an earlier stage, `scratch`, a local image,
    /// or one pulled (when missing, or always with `pull`).
    async fn stage_base(
        &self,
        df: &Dockerfile,
        si: usize,
        base: &str,
        built: &[Option<Image>],
        opts: &BuildOptions,
        tx: &BuildTx,
    ) -> Result<Option<Image>, EngineError> {
        let lower = base.to_ascii_lowercase();
        if let Some(j) = df.stages[..si]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Ok(built[j].clone());
        }
        if lower == "scratch" {
            return Ok(None);
        }
        self.image_for_build(base, opts, tx).await.map(Some)
    }

    async fn image_for_build(
        &self,
        reference: &str,
        opts: &BuildOptions,
        tx: &BuildTx,
    ) -> Result<Image, EngineError> {
        if !opts.pull {
            if let Ok(i) = self.images.get(reference) {
                return Ok(i);
            }
        }
        let r = tether_image::parse_reference(reference).map_err(|e| {
            EngineError::InvalidParam(format!("invalid reference {reference:?}: {e}"))
        })?;
        let r = r.with_default_tag();
        let _ = tx.send(json!({"status": format!("Pulling from {}", r.familiar())}));
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let fwd = tx.clone();
        let pump = tokio::spawn(async move {
            while let Some(v) = prx.recv().await {
                let _ = fwd.send(v);
            }
        });
        let res =
            tether_image::registry::pull(self.images.clone(), &r, None, &opts.auth, &ptx).await;
        drop(ptx);
        let _ = pump.await;
        match res {
            Ok(_) => {
                self.emit_image("pull", &r.familiar());
                Ok(self.images.get(&r.familiar())?)
            }
            Err(e) => {
                if !opts.pull {
                    Err(EngineError::NotFound(format!(
                        "pull access denied or repository does not exist for {reference}: {e}"
                    )))
                } else {
                    // a failed refresh still builds from the local copy
                    self.images
                        .get(reference)
                        .map_err(|_| EngineError::NotFound(format!("pulling {reference}: {e}")))
                }
            }
        }
    }

    /// Makes the image of one step (layer optional) and prints its ID.
    async fn commit_step(
        &self,
        parent: Option<&Image>,
        layer: Option<tether_image::NewLayer>,
        config: ImageConfig,
        created_by: String,
        author: Option<String>,
    ) -> Result<Image, EngineError> {
        let images = self.images.clone();
        let spec = NewImage {
            parent: parent.map(|p| p.id.clone()),
            layer,
            config,
            history: HistoryEntry {
                created_by: Some(created_by),
                ..Default::default()
            },
            author,
            comment: None,
            tag: None,
        };
        Ok(
            tokio::task::spawn_blocking(move || images.create_image(spec))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??,
        )
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        self: &Arc<Self>,
        step: &dockerfile::Step,
        file: &str,
        escape: char,
        st: &mut StageState,
        df: &Dockerfile,
        built: &[Option<Image>],
        ctx: &Context,
        opts: &BuildOptions,
        tx: &BuildTx,
        cleanup: &mut Cleanup,
        used_args: &mut std::collections::BTreeSet<String>,
    ) -> Result<(), EngineError> {
        let lerr = |m: String| line_err(file, step.line, m);
        let exp = |st: &StageState, s: &str| st.expand(s, escape).map_err(lerr);
        let mut cfg = st.config.clone();
        let nop = |s: &str| format!("/bin/sh -c #(nop)  {s}");
        let created_by: String;
        match &step.kind {
            StepKind::Arg(raw) => {
                let pairs = dockerfile::name_values("ARG", raw, escape, &|n| st.lookup(n), true)
                    .map_err(lerr)?;
                for (k, v) in pairs {
                    used_args.insert(k.clone());
                    let value = opts.build_args.get(&k).cloned().flatten().or(v);
                    st.args.insert(k, value);
                }
                if let Some(img) = &st.image {
                    say(tx, opts.quiet, format!(" ---> {}\n", short(&img.id)));
                }
                return Ok(());
            }
            StepKind::Env(raw) => {
                let pairs = dockerfile::name_values("ENV", raw, escape, &|n| st.lookup(n), false)
                    .map_err(lerr)?;
                for (k, v) in &pairs {
                    let v = v.clone().unwrap_or_default();
                    let kv = format!("{k}={v}");
                    if let Some(e) = cfg
                        .env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        *e = kv;
                    } else {
                        cfg.env.push(kv);
                    }
                }
                created_by = nop(&format!(
                    "ENV {}",
                    pairs
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.clone().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            StepKind::Label(raw) => {
                let pairs = dockerfile::name_values("LABEL", raw, escape, &|n| st.lookup(n), false)
                    .map_err(lerr)?;
                for (k, v) in &pairs {
                    cfg.labels.insert(k.clone(), v.clone().unwrap_or_default());
                }
                created_by = nop(&format!("LABEL {}", raw.trim()));
            }
            StepKind::Expose(words) => {
                let mut ports = Vec::new();
                for w in words {
                    ports.extend(
                        dockerfile::expand_words(w, escape, &|n| st.lookup(n)).map_err(lerr)?,
                    );
                }
                let text = format!("EXPOSE {}", ports.join(" "));
                change(&mut cfg, &text).map_err(lerr)?;
                created_by = nop(&text);
            }
            StepKind::Workdir(w) => {
                change(&mut cfg, &format!("WORKDIR {}", exp(st, w)?)).map_err(lerr)?;
                created_by = nop(&format!("WORKDIR {}", cfg.working_dir));
            }
            StepKind::User(u) => {
                cfg.user = exp(st, u)?;
                created_by = nop(&format!("USER {}", cfg.user));
            }
            StepKind::Volume(vs) => {
                let vs = vs
                    .iter()
                    .map(|v| exp(st, v))
                    .collect::<Result<Vec<_>, _>>()?;
                if vs.iter().any(|v| v.is_empty()) {
                    return Err(lerr("VOLUME specified can not be an empty string".into()));
                }
                let text = format!("VOLUME {}", json!(vs));
                change(&mut cfg, &text).map_err(lerr)?;
                created_by = nop(&text);
            }
            StepKind::Cmd(c) => {
                cfg.cmd = Some(command_argv(c, &cfg));
                st.cmd_set = true;
                created_by = nop(&format!("CMD {}", json!(cfg.cmd)));
            }
            StepKind::Entrypoint(c) => {
                cfg.entrypoint = Some(command_argv(c, &cfg));
                // as Docker: a new ENTRYPOINT resets a CMD inherited from the base
                if !st.cmd_set {
                    cfg.cmd = None;
                }
                created_by = nop(&format!("ENTRYPOINT {}", json!(cfg.entrypoint)));
            }
            StepKind::Shell(sh) => {
                if sh.is_empty() {
                    return Err(lerr(
                        "SHELL requires the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]".into(),
                    ));
                }
                cfg.shell = Some(sh.clone());
                created_by = nop(&format!("SHELL {}", json!(sh)));
            }
            StepKind::Healthcheck(_) => {
                // the flags and command are checked and applied as `--change` does
                change(&mut cfg, &step.text).map_err(lerr)?;
                created_by = nop(&step.text);
            }
            StepKind::StopSignal(sig) => {
                let text = format!("STOPSIGNAL {}", exp(st, sig)?);
                change(&mut cfg, &text).map_err(lerr)?;
                created_by = nop(&text);
            }
            StepKind::OnBuild(t) => {
                cfg.on_build.push(t.clone());
                created_by = nop(&format!("ONBUILD {t}"));
            }
            StepKind::Maintainer(m) => {
                st.author = Some(exp(st, m)?);
                created_by = nop(&format!("MAINTAINER {m}"));
            }
            StepKind::Run {
                cmd,
                heredoc,
                network,
            } => {
                return self
                    .run_run(
                        st,
                        cmd,
                        heredoc.as_ref(),
                        network.as_deref(),
                        file,
                        step.line,
                        opts,
                        tx,
                        cleanup,
                        used_args,
                    )
                    .await;
            }
            StepKind::Copy(args) => {
                return self
                    .run_copy(
                        st, args, escape, file, step.line, df, built, ctx, opts, tx, cleanup,
                    )
                    .await;
            }
        }
        // config-only step
        let key = cache_key(
            st.image.as_ref(),
            &format!("{created_by}\n{}", json!(cfg_key(&cfg))),
        );
        if !opts.no_cache {
            if let Some(img) = self.cache_get(&key) {
                say(
                    tx,
                    opts.quiet,
                    format!(" ---> Using cache\n ---> {}\n", short(&img.id)),
                );
                st.config = img.config.clone();
                st.image = Some(img);
                return Ok(());
            }
        }
        let img = self
            .commit_step(st.image.as_ref(), None, cfg, created_by, st.author.clone())
            .await?;
        self.cache_put(&key, &img.id);
        say(tx, opts.quiet, format!(" ---> {}\n", short(&img.id)));
        st.config = img.config.clone();
        st.image = Some(img);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_run(
        self: &Arc<Self>,
        st: &mut StageState,
        cmd: &CommandForm,
        heredoc: Option<&(String, String)>,
        network: Option<&str>,
        file: &str,
        line: usize,
        opts: &BuildOptions,
        tx: &BuildTx,
        cleanup: &mut Cleanup,
        used_args: &mut std::collections::BTreeSet<String>,
    ) -> Result<(), EngineError> {
        let shell = st
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        let argv: Vec<String> = match (cmd, heredoc) {
            (CommandForm::Shell(s), Some((_, body))) if s.trim().is_empty() => {
                shell.iter().cloned().chain([body.clone()]).collect()
            }
            (CommandForm::Shell(s), Some((delim, body))) => {
                let script = format!("{s} <<'{delim}'\n{body}{delim}\n");
                shell.iter().cloned().chain([script]).collect()
            }
            (CommandForm::Shell(s), None) => shell.iter().cloned().chain([s.clone()]).collect(),
            (CommandForm::Exec(v), _) => v.clone(),
        };
        if argv.is_empty() || argv.iter().all(|a| a.trim().is_empty()) {
            return Err(line_err(file, line, "RUN needs a command".into()));
        }
        let args_env = st.run_args();
        for a in &args_env {
            if let Some(k) = a.split('=').next() {
                used_args.insert(k.to_string());
            }
        }
        let mut created_by = argv.join(" ");
        if !args_env.is_empty() {
            created_by = format!("|{} {} {}", args_env.len(), args_env.join(" "), created_by);
        }
        let net = network
            .map(|n| {
                if n == "default" {
                    opts.network_mode.as_str()
                } else {
                    n
                }
            })
            .unwrap_or(opts.network_mode.as_str());
        let key = cache_key(
            st.image.as_ref(),
            &format!("RUN\n{}\n{created_by}", json!(cfg_key(&st.config))),
        );
        if !opts.no_cache {
            if let Some(img) = self.cache_get(&key) {
                say(
                    tx,
                    opts.quiet,
                    format!(" ---> Using cache\n ---> {}\n", short(&img.id)),
                );
                st.image = Some(img);
                return Ok(());
            }
        }
        let Some(parent) = st.image.clone() else {
            return Err(line_err(
                file,
                line,
                "RUN needs a base image with a shell: this stage is FROM scratch and has no files yet".into(),
            ));
        };
        let body = ContainerCreateBody {
            image: Some(parent.id.clone()),
            cmd: Some(argv),
            entrypoint: Some(vec![]),
            env: Some(args_env),
            user: Some(st.config.user.clone()).filter(|u| !u.is_empty()),
            working_dir: Some(st.config.working_dir.clone()).filter(|w| !w.is_empty()),
            healthcheck: Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([(
                "com.docker.build.step".to_string(),
                "run".to_string(),
            )])),
            host_config: Some(HostConfig {
                network_mode: Some(match net {
                    "default" => "bridge".to_string(),
                    other => other.to_string(),
                }),
                extra_hosts: Some(opts.extra_hosts.clone()).filter(|h| !h.is_empty()),
                shm_size: opts.shm_size,
                ..Default::default()
            }),
            ..Default::default()
        };
        let (cid, _) = self.create_container(None, body, None).await?;
        cleanup.containers.push(cid.clone());
        say(tx, opts.quiet, format!(" ---> Running in {}\n", &cid[..12]));
        let wait = self.wait_container(&cid, "next-exit").await?;
        self.start_container(&cid).await.map_err(|e| {
            EngineError::Internal(format!("starting the RUN container failed: {e}"))
        })?;
        let code = self.follow_output(&cid, wait, tx, opts.quiet).await?;
        if code != 0 {
            let cmdtext = created_by.clone();
            return Err(EngineError::Internal(format!(
                "The command '{cmdtext}' returned a non-zero code: {code} ({file} line {line})"
            )));
        }
        // commit the container's upper directory
        let cdir = self.container_dir(&cid);
        let upper = cdir.join("upper");
        // the container goes after this step (rm), and its rootfs is no longer
        // mounted: its upper directory can become the layer itself
        let take = (opts.rm || opts.force_rm) && !is_mount_point(&cdir.join("rootfs"));
        let layer = self.step_layer(upper, take).await?;
        let img = self
            .commit_step(
                Some(&parent),
                Some(layer),
                st.config.clone(),
                created_by,
                st.author.clone(),
            )
            .await?;
        if opts.rm || opts.force_rm {
            say(
                tx,
                opts.quiet,
                format!("Removing intermediate container {}\n", &cid[..12]),
            );
            let _ = self.remove_container(&cid, true, true).await;
            cleanup.containers.retain(|c| c != &cid);
        }
        self.cache_put(&key, &img.id);
        say(tx, opts.quiet, format!(" ---> {}\n", short(&img.id)));
        st.image = Some(img);
        Ok(())
    }

    /// Streams a RUN container's output until it exits; returns the exit code.
    /// When the client goes away the container is killed.
    async fn follow_output(
        &self,
        cid: &str,
        wait: std::pin::Pin<Box<dyn std::future::Future<Output = i64> + Send>>,
        tx: &BuildTx,
        quiet: bool,
    ) -> Result<i64, EngineError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.container_dir(cid).join("json.log");
        let mut offset = 0u64;
        let mut pending: Vec<u8> = Vec::new();
        let mut wait = wait;
        let mut done: Option<i64> = None;
        loop {
            if done.is_none() {
                tokio::select! {
                    c = &mut wait => done = Some(c),
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            if let Ok(mut f) = tokio::fs::File::open(&path).await {
                if f.seek(std::io::SeekFrom::Start(offset)).await.is_ok() {
                    let mut buf = Vec::new();
                    if let Ok(k) = f.read_to_end(&mut buf).await {
                        offset += k as u64;
                        pending.extend_from_slice(&buf);
                    }
                }
            }
            if let Some(pos) = pending.iter().rposition(|b| *b == b'\n') {
                let complete: Vec<u8> = pending.drain(..=pos).collect();
                for e in tether_runtime::logs::parse(&complete) {
                    say(tx, quiet, e.log);
                }
            }
            if let Some(code) = done {
                return Ok(code);
            }
            if tx.is_closed() {
                let _ = self.kill_container(cid, "SIGKILL").await;
                return Err(EngineError::Internal(
                    "the build was cancelled: the client went away".into(),
                ));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_copy(
        self: &Arc<Self>,
        st: &mut StageState,
        args: &CopyArgs,
        escape: char,
        file: &str,
        line: usize,
        df: &Dockerfile,
        built: &[Option<Image>],
        ctx: &Context,
        opts: &BuildOptions,
        tx: &BuildTx,
        cleanup: &mut Cleanup,
    ) -> Result<(), EngineError> {
        let lerr = |m: String| line_err(file, line, m);
        let what = if args.add { "ADD" } else { "COPY" };
        let dest_raw = st.expand(&args.dest, escape).map_err(lerr)?;
        let dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            let wd = if st.config.working_dir.is_empty() {
                "/".to_string()
            } else {
                st.config.working_dir.clone()
            };
            let mut d = format!("{}/{}", wd.trim_end_matches('/'), dest_raw);
            if dest_raw == "." || dest_raw == "./" {
                d = format!("{}/", wd.trim_end_matches('/'));
            }
            d
        };
        // where sources come from
        let from_root: Option<(PathBuf, Option<Image>)> = match &args.from {
            None => None,
            Some(f) => {
                let f = st.expand(f, escape).map_err(lerr)?;
                let lower = f.to_ascii_lowercase();
                let stage_img = if let Some(j) = df
                    .stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                {
                    Some(built.get(j).cloned().flatten())
                } else if let Ok(j) = f.parse::<usize>() {
                    if j >= built.len() {
                        return Err(lerr(format!(
                            "invalid from flag value {f}: there is no stage {j}"
                        )));
                    }
                    Some(built[j].clone())
                } else {
                    None
                };
                let img = match stage_img {
                    Some(i) => i,
                    None => Some(self.image_for_build(&f, opts, tx).await?),
                };
                let mnt = cleanup
                    .dir
                    .join(format!("from-{}", &crate::state::new_id()[..8]));
                self.mount_image(img.as_ref(), &mnt, cleanup)?;
                Some((mnt.join("merged"), img))
            }
        };
        let (src_root, ignore) = match &from_root {
            Some((p, _)) => (context::Root::Dir(p.clone()), None),
            None => (
                context::Root::Context(ctx.clone()),
                Some(ctx.ignore().clone()),
            ),
        };
        // resolve sources and hash their content
        let mut resolved: Vec<context::Source> = Vec::new();
        let mut heredocs: Vec<(String, String)> = Vec::new();
        for s in &args.sources {
            match s {
                CopySource::Path(p) => {
                    let p = st.expand(p, escape).map_err(lerr)?;
                    if p.contains("://") {
                        if args.add {
                            return Err(lerr(format!(
                                "ADD of a URL ({p}) is not supported by tether's builder: download the file into the build context and COPY it"
                            )));
                        }
                        return Err(lerr(format!(
                            "COPY cannot take a URL ({p}); sources are paths in the build context"
                        )));
                    }
                    let found = context::sources(&src_root, &p, ignore.as_ref())
                        .map_err(|e| lerr(format!("{what} failed: {e}")))?;
                    resolved.extend(found);
                }
                CopySource::HereDoc { content, expand } => {
                    let c = if *expand {
                        st.expand(&format!("\"{}\"", content.replace('"', "\\\"")), escape)
                            .unwrap_or_else(|_| content.clone())
                    } else {
                        content.clone()
                    };
                    heredocs.push((dest.rsplit('/').next().unwrap_or("file").to_string(), c));
                }
            }
        }
        let chown = match &args.chown {
            Some(c) => Some(st.expand(c, escape).map_err(lerr)?),
            None => None,
        };
        let chmod = match &args.chmod {
            Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| {
                lerr(format!(
                    "invalid --chmod={m}: an octal mode such as 0755 is expected"
                ))
            })?),
            None => None,
        };
        let srcs_for_hash = resolved.clone();
        let ign2 = ignore.clone();
        let root2 = src_root.clone();
        let hash = tokio::task::spawn_blocking(move || {
            context::hash_sources(&root2, &srcs_for_hash, ign2.as_ref())
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(build_err)?;
        let hd_hash: Vec<&String> = heredocs.iter().map(|(_, c)| c).collect();
        let created_by = format!(
            "/bin/sh -c #(nop) {what} {}{} in {dest} ",
            if from_root.is_some() { "from " } else { "" },
            hash
        );
        let key = cache_key(
            st.image.as_ref(),
            &format!(
                "{what}\n{hash}\n{:?}\n{chown:?}\n{chmod:?}\n{dest}\n{}\n{}",
                hd_hash,
                json!(cfg_key(&st.config)),
                from_root
                    .as_ref()
                    .and_then(|(_, i)| i.as_ref().map(|i| i.id.clone()))
                    .unwrap_or_default()
            ),
        );
        if !opts.no_cache {
            if let Some(img) = self.cache_get(&key) {
                say(
                    tx,
                    opts.quiet,
                    format!(" ---> Using cache\n ---> {}\n", short(&img.id)),
                );
                st.image = Some(img);
                return Ok(());
            }
        }
        // mount the current image with a fresh upper and copy
        let mnt = cleanup
            .dir
            .join(format!("copy-{}", &crate::state::new_id()[..8]));
        let parent = st.image.clone();
        self.mount_image(parent.as_ref(), &mnt, cleanup)?;
        let merged = mnt.join("merged");
        let owner = match &chown {
            Some(c) => Some(resolve_owner(&merged, c).map_err(lerr)?),
            None => None,
        };
        let copt = CopyOptions {
            owner,
            root_owned: from_root.is_none(),
            chmod,
            unpack_archives: args.add,
        };
        let m2 = merged.clone();
        let dest2 = dest.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<(), BuildError> {
            if !resolved.is_empty() {
                context::copy_into(&src_root, &resolved, ignore.as_ref(), &m2, &dest2, &copt)?;
            }
            for (name, content) in heredocs {
                context::write_file(&m2, &dest2, &name, content.as_bytes(), &copt)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        let _ = rootfs::unmount(&merged);
        cleanup.mounts.retain(|m| m != &merged);
        if let Some((p, _)) = &from_root {
            let _ = rootfs::unmount(p);
            cleanup.mounts.retain(|m| m != p);
        }
        res.map_err(|e| lerr(format!("{what} failed: {e}")))?;
        // unmounted above and discarded after: the upper can become the layer
        let upper = mnt.join("upper");
        let layer = self.step_layer(upper, !is_mount_point(&merged)).await?;
        let img = self
            .commit_step(
                parent.as_ref(),
                Some(layer),
                st.config.clone(),
                created_by,
                st.author.clone(),
            )
            .await?;
        let _ = std::fs::remove_dir_all(&mnt);
        self.cache_put(&key, &img.id);
        say(tx, opts.quiet, format!(" ---> {}\n", short(&img.id)));
        st.image = Some(img);
        Ok(())
    }

    /// A step's layer from its overlay upper directory, on a blocking thread: the
    /// directory itself becomes the layer when `take` (the step's container or mount is
    /// gone and nothing else uses it), else it is copied.
    async fn step_layer(
        &self,
        upper: PathBuf,
        take: bool,
    ) -> Result<tether_image::NewLayer, EngineError> {
        let images = self.images.clone();
        Ok(tokio::task::spawn_blocking(move || {
            if take {
                images.layer_from_upper_taken(&upper)
            } else {
                images.layer_from_upper(&upper)
            }
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??)
    }

    /// Mounts `image`'s layers (an empty lower for scratch) with a fresh upper
    /// at `dir/merged`; the mount is recorded in `cleanup`.
    fn mount_image(
        &self,
        image: Option<&Image>,
        dir: &Path,
        cleanup: &mut Cleanup,
    ) -> Result<(), EngineError> {
        let mut lowers = image
            .map(|i| self.images.layer_paths(i))
            .unwrap_or_default();
        if lowers.is_empty() {
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty)
                .map_err(|e| EngineError::Internal(format!("create {}: {e}", empty.display())))?;
            lowers.push(empty);
        }
        let merged = dir.join("merged");
        rootfs::mount_overlay(&lowers, &dir.join("upper"), &dir.join("work"), &merged)?;
        cleanup.mounts.push(merged);
        Ok(())
    }
}

/// The stages `target` needs (its base chain and `COPY --from` stages), in order.
fn needed_stages(
    df: &Dockerfile,
    target: usize,
    glookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<usize>, EngineError> {
    let mut need = vec![false; df.stages.len()];
    let mut stack = vec![target];
    let index_of = |name: &str, before: usize| -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        df.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|&j| j < before))
    };
    while let Some(i) = stack.pop() {
        if need[i] {
            continue;
        }
        need[i] = true;
        let s: &Stage = &df.stages[i];
        let base = dockerfile::expand_word(&s.base, escape, glookup).unwrap_or_default();
        if let Some(j) = df.stages[..i]
            .iter()
            .position(|x| x.name.as_deref() == Some(base.to_ascii_lowercase().as_str()))
        {
            stack.push(j);
        }
        for step in &s.steps {
            if let StepKind::Copy(CopyArgs { from: Some(f), .. }) = &step.kind {
                if let Some(j) = index_of(f, i) {
                    stack.push(j);
                }
            }
        }
    }
    Ok((0..df.stages.len()).filter(|&i| need[i]).collect())
}

/// Whether `path` is a mount point: its device differs from its parent's.
/// A path that cannot be read counts as mounted (the safe answer).
fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = path.parent().unwrap_or(path);
    match (
        std::fs::symlink_metadata(path),
        std::fs::symlink_metadata(parent),
    ) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => false,
        _ => true,
    }
}

fn line_err(file: &str, line: usize, m: String) -> EngineError {
    EngineError::InvalidParam(format!("{file} line {line}: {m}"))
}

fn familiar_tag(t: &str) -> String {
    tether_image::parse_reference(t)
        .map(|r| r.with_default_tag().familiar())
        .unwrap_or_else(|_| t.to_string())
}

/// The part of a config that affects what a RUN or COPY produces (env, user,
/// workdir, shell).
fn cfg_key(c: &ImageConfig) -> Value {
    json!({"env": c.env, "user": c.user, "wd": c.working_dir, "shell": c.shell})
}

/// Applies one instruction to `cfg` as `--change` (and `docker commit -c`) does.
fn change(cfg: &mut ImageConfig, text: &str) -> Result<(), String> {
    tether_image::apply_changes(cfg, &[text.to_string()]).map_err(|e| e.to_string())
}

/// Command argv for CMD/ENTRYPOINT: exec form as is, shell form through SHELL.
fn command_argv(c: &CommandForm, cfg: &ImageConfig) -> Vec<String> {
    match c {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => cfg
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
            .into_iter()
            .chain([s.clone()])
            .collect(),
    }
}

/// `--chown=user[:group]` with names looked up in the stage's /etc/passwd and
/// /etc/group (read inside `root`).
fn resolve_owner(root: &Path, spec: &str) -> Result<(u64, u64), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |name: &str| -> Vec<Vec<String>> {
        context::resolve(root, name, true)
            .ok()
            .flatten()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| {
                t.lines()
                    .map(|l| l.split(':').map(String::from).collect())
                    .collect()
            })
            .unwrap_or_default()
    };
    let passwd = read("etc/passwd");
    let (uid, primary_gid) = match u.parse::<u64>() {
        Ok(n) => (
            n,
            passwd
                .iter()
                .find(|f| f.get(2).map(String::as_str) == Some(u))
                .and_then(|f| f.get(3)?.parse().ok())
                .unwrap_or(n),
        ),
        Err(_) => {
            let f = passwd
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(u))
                .ok_or_else(|| {
                    format!("unable to find user {u}: no matching entries in passwd file")
                })?;
            (
                f.get(2).and_then(|x| x.parse().ok()).unwrap_or(0),
                f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
            )
        }
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read("etc/group");
                groups
                    .iter()
                    .find(|f| f.first().map(String::as_str) == Some(g))
                    .and_then(|f| f.get(2)?.parse().ok())
                    .ok_or_else(|| {
                        format!("unable to find group {g}: no matching entries in group file")
                    })?
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_options() {
        let q = |v: &[(&str, &str)]| {
            BuildOptions::from_query(
                &v.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let o = q(&[
            ("t", "a:1"),
            ("t", "b"),
            ("buildargs", "{\"X\":\"1\"}"),
            ("nocache", "1"),
        ])
        .unwrap();
        assert_eq!(o.tags, vec!["a:1", "b"]);
        assert_eq!(
            o.build_args.get("X").cloned().flatten().as_deref(),
            Some("1")
        );
        assert!(o.no_cache && o.rm);
        let e = q(&[("platform", "linux/arm64")]).unwrap_err().to_string();
        assert!(
            e.contains("linux/arm64") && e.contains("linux/amd64"),
            "{e}"
        );
        assert!(q(&[("t", "Bad Tag")]).is_err());
        assert!(q(&[("nocache", "maybe")])
            .unwrap_err()
            .to_string()
            .contains("maybe"));
    }
}
