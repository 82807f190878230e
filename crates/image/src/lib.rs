//! `tether-image`: the local image store of tether.
//!
//! Images enter by [`registry::pull`] (a registry speaking the Docker Registry
//! HTTP API v2 / OCI distribution spec, as `docker pull`), [`ImageStore::import`]
//! (a rootfs tar, as `docker import`) or [`ImageStore::load`] (a `docker save`
//! archive or an OCI image layout tar, as `docker load`), and leave by
//! [`registry::push`]. Layers are unpacked once,
//! content-addressed by diff ID, shared between images, and later mounted by
//! the runtime as overlayfs lowerdirs ([`ImageStore::layer_paths`]).
//!
//! On-disk layout under the store root (`<daemon root>/image`):
//!
//! ```text
//! repositories.json            tags (full reference -> image ID), last tag times,
//!                              layers held for containers of deleted images,
//!                              repo digests (name@sha256:manifest -> image ID)
//! images/<id-hex>/config.json  the image config JSON, byte-exact (ID = its sha256)
//! images/<id-hex>/image.json   the Image record + inspect metadata
//! layers/<diffid-hex>/diff/    the unpacked layer (an overlayfs lowerdir)
//! layers/<diffid-hex>/layer.json  {"diff_id", "size"}
//! layers/<diffid-hex>/blob     the layer as it came (gzip, zstd or plain tar), for push
//! layers/<diffid-hex>/blob.json   {"digest", "size", "media_type"} of that blob
//! tmp/                         staging; emptied at open
//! ```
//!
//! Every state file is written atomically (temp file in the same directory,
//! fsync, rename); images and layers are assembled in `tmp/` and renamed into
//! place, so a failed import/load/pull leaves nothing half-written.

#![warn(missing_docs)]

mod blob;
pub mod build;
mod changes;
mod create;
mod fsutil;
mod layer;
mod load;
mod maintain;
mod reference;
pub mod registry;
mod save;
pub mod tarx;
mod unpack;

pub use changes::{apply_changes, VALID_CHANGES};
pub use create::{NewImage, EMPTY_LAYER_DIFF_ID};
pub use layer::NewLayer;
pub use maintain::{LayerUsage, PruneReport};
pub use reference::{parse_reference, Reference, DEFAULT_DOMAIN, DEFAULT_TAG};
pub use save::SaveSet;

use bollard_stubs::models::{
    DriverData, ImageDeleteResponseItem, ImageInspect, ImageInspectMetadata, ImageInspectRootFs,
    ImageSummary,
};
use fsutil::{io_err, remove_any, sha256_digest, write_atomic, TempDir};
use reference::is_hex64;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Errors of the image store. [`ImageError::status`] gives the HTTP status the
/// Docker Engine API uses for each.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference or ID names no image. Holds the familiar reference
    /// (`tbox:latest`) or the ID as given; Display: `No such image: tbox:latest`.
    #[error("No such image: {0}")]
    NotFound(String),
    /// A reference outside distribution/reference's grammar; Display is the
    /// held text, e.g. `invalid reference format`.
    #[error("{0}")]
    InvalidReference(String),
    /// A bad `--change` instruction; the text names it and the valid ones.
    #[error("{0}")]
    InvalidChange(String),
    /// The operation conflicts with a container or other tags (`docker rmi` without force).
    #[error("{0}")]
    Conflict(String),
    /// The import/load input is not a valid archive (bad tar, missing
    /// manifest, diff ID mismatch, entry escaping the layer, ...).
    #[error("{0}")]
    BadArchive(String),
    /// A filesystem operation of the store failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `writing /var/lib/tether/image/repositories.json`.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    /// HTTP status for the Docker Engine API: NotFound 404, InvalidReference
    /// 400, InvalidChange 400, Conflict 409, BadArchive 400, Io 500.
    pub fn status(&self) -> u16 {
        match self {
            ImageError::NotFound(_) => 404,
            ImageError::InvalidReference(_)
            | ImageError::InvalidChange(_)
            | ImageError::BadArchive(_) => 400,
            ImageError::Conflict(_) => 409,
            ImageError::Io { .. } => 500,
        }
    }
}

/// An image in the store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<64 hex>`: SHA-256 of the image config JSON bytes (Docker's image ID).
    pub id: String,
    /// Tags in familiar form (`tbox:latest`), sorted; current as of the call
    /// that returned this value.
    pub repo_tags: Vec<String>,
    /// Creation time from the image config, RFC 3339 (e.g. `2024-05-01T10:00:00.123456789Z`).
    pub created: String,
    /// Bytes of regular-file content in the image's unpacked layers.
    pub size: u64,
    /// The runtime defaults from the image config's `config` object.
    pub config: ImageConfig,
    /// Layer diff IDs (`sha256:<hex>` of each uncompressed layer tar), bottom-most first
    /// (OCI image config `rootfs.diff_ids` order).
    pub diff_ids: Vec<String>,
    /// The local parent image ID (`sha256:<hex>`), as Docker's classic builder
    /// and `docker commit` record it (`Parent` in inspect); `None` for images
    /// that were pulled, loaded or imported.
    #[serde(default)]
    pub parent: Option<String>,
    /// The image config's `history` array, oldest first (one entry per
    /// Dockerfile step or commit; entries with `empty_layer` add no layer).
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// One entry of the image config's `history` array (OCI image spec
/// config.md "history"; Docker's `image.History`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    /// When the step ran, RFC 3339; `None` when the config has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the step, e.g. `/bin/sh -c #(nop)  CMD ["sh"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Author of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Free-form comment (`docker commit -m`, `Imported from -`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step added no layer (then it has no diff ID).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// A container healthcheck carried by an image (Docker's `HealthConfig`, the
/// image config's `config.Healthcheck`). Durations are nanoseconds; 0 means
/// "inherit / Docker's default" (30 s interval and timeout, 0 start period,
/// 5 s start interval), retries 0 means the default 3.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args...]` exec,
    /// `["CMD-SHELL", "command"]` run with the image's shell.
    pub test: Vec<String>,
    /// Time between checks, ns.
    pub interval: i64,
    /// Time one check may take, ns.
    pub timeout: i64,
    /// Initialization time during which failures do not count, ns.
    pub start_period: i64,
    /// Time between checks during the start period, ns.
    pub start_interval: i64,
    /// Consecutive failures that make the container unhealthy.
    pub retries: i64,
}

impl HealthConfig {
    /// The Engine API / image config JSON object (`Test`, `Interval`, ...),
    /// zero values omitted as Go's `omitempty` does.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if !self.test.is_empty() {
            m.insert("Test".into(), serde_json::json!(self.test));
        }
        for (k, v) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ] {
            if v != 0 {
                m.insert(k.into(), serde_json::json!(v));
            }
        }
        serde_json::Value::Object(m)
    }

    /// Parses the JSON object written by [`HealthConfig::to_json`] (missing
    /// or non-numeric fields read as 0 / empty).
    pub fn from_json(v: &serde_json::Value) -> HealthConfig {
        let n = |k: &str| v.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
        HealthConfig {
            test: v
                .get("Test")
                .and_then(|t| t.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            interval: n("Interval"),
            timeout: n("Timeout"),
            start_period: n("StartPeriod"),
            start_interval: n("StartInterval"),
            retries: n("Retries"),
        }
    }

    /// The Docker Engine API model.
    pub fn to_api(&self) -> bollard_stubs::models::HealthConfig {
        let nz = |v: i64| (v != 0).then_some(v);
        bollard_stubs::models::HealthConfig {
            test: (!self.test.is_empty()).then(|| self.test.clone()),
            interval: nz(self.interval),
            timeout: nz(self.timeout),
            start_period: nz(self.start_period),
            start_interval: nz(self.start_interval),
            retries: nz(self.retries),
        }
    }

    /// From the Docker Engine API model (absent fields read as 0 / empty).
    pub fn from_api(h: &bollard_stubs::models::HealthConfig) -> HealthConfig {
        HealthConfig {
            test: h.test.clone().unwrap_or_default(),
            interval: h.interval.unwrap_or(0),
            timeout: h.timeout.unwrap_or(0),
            start_period: h.start_period.unwrap_or(0),
            start_interval: h.start_interval.unwrap_or(0),
            retries: h.retries.unwrap_or(0),
        }
    }
}

/// Container defaults carried by an image (OCI image config `config` object /
/// Docker Engine API `ImageConfig`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ImageConfig {
    /// Default command (`Cmd`); `None` when unset.
    pub cmd: Option<Vec<String>>,
    /// Entrypoint (`Entrypoint`); `None` when unset.
    pub entrypoint: Option<Vec<String>>,
    /// Environment, `KEY=value` entries (`Env`).
    pub env: Vec<String>,
    /// Working directory (`WorkingDir`), absolute, `""` when unset.
    pub working_dir: String,
    /// Exposed ports as `port/proto`, e.g. `80/tcp` (keys of `ExposedPorts`).
    pub exposed_ports: Vec<String>,
    /// User (`User`): `name`, `uid`, `uid:gid`, ...; `""` when unset.
    pub user: String,
    /// Labels (`Labels`).
    pub labels: BTreeMap<String, String>,
    /// Stop signal (`StopSignal`), e.g. `SIGTERM`.
    pub stop_signal: Option<String>,
    /// Volume mount points, absolute container paths (keys of `Volumes`);
    /// a container gets an anonymous volume at each unless it mounts one there.
    pub volumes: Vec<String>,
    /// Healthcheck (`Healthcheck`); `None` when unset.
    pub healthcheck: Option<HealthConfig>,
    /// Shell for the shell forms of RUN/CMD/ENTRYPOINT (`Shell`, Dockerfile
    /// `SHELL`); `None` means `["/bin/sh", "-c"]`.
    pub shell: Option<Vec<String>>,
    /// Dockerfile `ONBUILD` triggers, each an instruction line (`OnBuild`).
    pub on_build: Vec<String>,
}

/// Image-config fields only needed by inspect.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ImageMeta {
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

/// `images/<hex>/image.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ImageRecord {
    image: Image,
    #[serde(default)]
    meta: ImageMeta,
}

/// `repositories.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Repositories {
    /// Full reference (`docker.io/library/tbox:latest`) -> image ID.
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// Image ID -> RFC 3339 time it was last tagged.
    #[serde(default)]
    last_tag_time: BTreeMap<String, String>,
    /// Deleted (forced) image ID -> its diff IDs, kept while a container uses it.
    #[serde(default)]
    held: BTreeMap<String, Vec<String>>,
    /// Repo digests (`127.0.0.1:5000/tbox@sha256:<manifest>`) -> image ID,
    /// recorded by pull and push.
    #[serde(default)]
    digests: BTreeMap<String, String>,
}

/// `layers/<hex>/layer.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    diff_id: String,
    size: u64,
}

struct State {
    images: BTreeMap<String, ImageRecord>,
    repos: Repositories,
}

/// The chain of `id`'s local parents that have no tag, nearest first, up to the
/// first tagged (or missing) one.
fn untagged_parents(st: &State, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = st.images.get(id).and_then(|r| r.image.parent.clone());
    while let Some(p) = cur {
        if !st.images.contains_key(&p)
            || st.repos.tags.values().any(|v| *v == p)
            || out.len() > 10_000
        {
            break;
        }
        cur = st.images.get(&p).and_then(|r| r.image.parent.clone());
        out.push(p);
    }
    out
}

/// The local image store. Thread-safe: all methods take `&self`.
///
/// Writers (`import`, `load`, `remove`, `prune_layers`) are serialized;
/// readers (`get`, `list`, `inspect`, ...) only wait for short state updates,
/// not for a whole import.
pub struct ImageStore {
    root: PathBuf,
    write: Mutex<()>,
    state: Mutex<State>,
    /// Layers of live [`NewLayer`] values, kept by garbage collection.
    pins: layer::Pins,
}

/// Cap for JSON metadata files read from archives (manifest, index, config).
pub(crate) const MAX_METADATA_BYTES: u64 = 16 << 20;
/// `created` used when an image config has none (Go's zero time, as Docker shows).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The GOARCH name of the host (`amd64`, `arm64`, ...).
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `sha256:<64 hex>`.
pub(crate) fn valid_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(is_hex64)
}

fn hex_of(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// 12 hex chars, as `stringid.TruncateID`.
fn short_id(id: &str) -> String {
    hex_of(id).chars().take(12).collect()
}

/// Layer chain IDs (OCI image spec config.md "ChainID").
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Familiar form of a stored full reference key.
fn familiar_of_key(key: &str) -> String {
    parse_reference(key)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| key.to_string())
}

/// Parses a reference used as a tag target: no digest; `latest` by default.
fn parse_tag_target(s: &str) -> Result<Reference, ImageError> {
    let r = parse_reference(s)?;
    if r.digest.is_some() {
        return Err(ImageError::InvalidReference(format!(
            "refusing to create a tag with a digest reference: \"{s}\""
        )));
    }
    Ok(r.with_default_tag())
}

/// Converts an RFC 3339 string into bollard's date type, whatever bollard's
/// features make that type (String or a date type).
fn bollard_date(s: &str) -> Option<bollard_stubs::models::BollardDate> {
    serde_json::from_value::<ImageInspectMetadata>(serde_json::json!({ "LastTagTime": s }))
        .ok()
        .and_then(|m| m.last_tag_time)
}

/// Docker Engine API `ImageConfig` from ours.
fn api_config(c: &ImageConfig) -> bollard_stubs::models::ImageConfig {
    bollard_stubs::models::ImageConfig {
        user: Some(c.user.clone()),
        exposed_ports: (!c.exposed_ports.is_empty()).then(|| c.exposed_ports.clone()),
        env: (!c.env.is_empty()).then(|| c.env.clone()),
        cmd: c.cmd.clone(),
        working_dir: Some(c.working_dir.clone()),
        entrypoint: c.entrypoint.clone(),
        labels: (!c.labels.is_empty()).then(|| {
            c.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        }),
        stop_signal: c.stop_signal.clone(),
        volumes: (!c.volumes.is_empty()).then(|| c.volumes.clone()),
        healthcheck: c.healthcheck.as_ref().map(HealthConfig::to_api),
        on_build: (!c.on_build.is_empty()).then(|| c.on_build.clone()),
        shell: c.shell.clone(),
        ..Default::default()
    }
}

/// The image config `config` object (Docker/OCI field names), empty fields omitted.
fn config_to_json(c: &ImageConfig) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    if let Some(cmd) = &c.cmd {
        m.insert("Cmd".into(), serde_json::json!(cmd));
    }
    if let Some(ep) = &c.entrypoint {
        m.insert("Entrypoint".into(), serde_json::json!(ep));
    }
    if !c.env.is_empty() {
        m.insert("Env".into(), serde_json::json!(c.env));
    }
    if !c.exposed_ports.is_empty() {
        let ports: serde_json::Map<String, serde_json::Value> = c
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), serde_json::json!({})))
            .collect();
        m.insert("ExposedPorts".into(), serde_json::Value::Object(ports));
    }
    if !c.labels.is_empty() {
        m.insert("Labels".into(), serde_json::json!(c.labels));
    }
    if let Some(s) = &c.stop_signal {
        m.insert("StopSignal".into(), serde_json::json!(s));
    }
    if !c.user.is_empty() {
        m.insert("User".into(), serde_json::json!(c.user));
    }
    if !c.working_dir.is_empty() {
        m.insert("WorkingDir".into(), serde_json::json!(c.working_dir));
    }
    if !c.volumes.is_empty() {
        let vols: serde_json::Map<String, serde_json::Value> = c
            .volumes
            .iter()
            .map(|v| (v.clone(), serde_json::json!({})))
            .collect();
        m.insert("Volumes".into(), serde_json::Value::Object(vols));
    }
    if let Some(h) = &c.healthcheck {
        m.insert("Healthcheck".into(), h.to_json());
    }
    if let Some(sh) = &c.shell {
        m.insert("Shell".into(), serde_json::json!(sh));
    }
    if !c.on_build.is_empty() {
        m.insert("OnBuild".into(), serde_json::json!(c.on_build));
    }
    serde_json::Value::Object(m)
}

fn json_io(what: &str, e: serde_json::Error) -> ImageError {
    ImageError::Io {
        what: what.to_string(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    }
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root` (`<daemon root>/image`).
    ///
    /// Empties `tmp/` (leftovers of an interrupted import/load), drops tags
    /// that point at missing images and removes layer directories no image
    /// (or held container) references.
    ///
    /// # Errors
    /// [`ImageError::Io`] when the directories cannot be created or
    /// `repositories.json` cannot be read or parsed.
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        let store = ImageStore {
            root: root.to_path_buf(),
            write: Mutex::new(()),
            state: Mutex::new(State {
                images: BTreeMap::new(),
                repos: Repositories::default(),
            }),
            pins: Default::default(),
        };
        for d in [
            store.root.clone(),
            store.images_dir(),
            store.layers_dir(),
            store.tmp_dir(),
        ] {
            fs::create_dir_all(&d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        let tmp = store.tmp_dir();
        for e in fs::read_dir(&tmp).map_err(io_err(format!("reading {}", tmp.display())))? {
            let e = e.map_err(io_err(format!("reading {}", tmp.display())))?;
            if let Err(err) = remove_any(&e.path()) {
                tracing::warn!(path = %e.path().display(), error = %err, "removing stale temp entry");
            }
        }

        let repos_path = store.repos_path();
        let mut repos: Repositories = match fs::read(&repos_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| json_io(&format!("parsing {}", repos_path.display()), e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Repositories::default(),
            Err(e) => return Err(io_err(format!("reading {}", repos_path.display()))(e)),
        };

        let mut images = BTreeMap::new();
        let images_dir = store.images_dir();
        for e in fs::read_dir(&images_dir)
            .map_err(io_err(format!("reading {}", images_dir.display())))?
        {
            let e = e.map_err(io_err(format!("reading {}", images_dir.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_hex64(&name) {
                tracing::warn!(entry = %name, "ignoring unexpected entry in images dir");
                continue;
            }
            let path = e.path().join("image.json");
            let rec = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<ImageRecord>(&b).map_err(|e| e.to_string()));
            match rec {
                Ok(mut rec) if rec.image.id == format!("sha256:{name}") => {
                    if rec.image.history.is_empty() {
                        // Records written before history was kept: read it from the config.
                        let cfg = e.path().join("config.json");
                        if let Ok(b) = fsutil::read_limited(&cfg, MAX_METADATA_BYTES) {
                            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) {
                                rec.image.history = load::parse_history(v.get("history"));
                            }
                        }
                    }
                    images.insert(rec.image.id.clone(), rec);
                }
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "image record ID does not match its directory; ignoring")
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "unreadable image record; ignoring")
                }
            }
        }
        let before = repos.tags.len();
        repos.tags.retain(|tag, id| {
            let ok = images.contains_key(id);
            if !ok {
                tracing::warn!(%tag, %id, "dropping tag of a missing image");
            }
            ok
        });
        repos.last_tag_time.retain(|id, _| images.contains_key(id));
        repos.digests.retain(|_, id| images.contains_key(id));
        if repos.tags.len() != before {
            store.persist_repos(&repos)?;
        }
        for rec in images.values() {
            for d in &rec.image.diff_ids {
                if !store.layer_present(d) {
                    tracing::warn!(image = %rec.image.id, diff_id = %d, "image layer is missing on disk");
                }
            }
        }
        {
            let mut st = store.lock_state();
            st.images = images;
            st.repos = repos;
        }
        {
            let _w = store.lock_write();
            let trash = {
                let mut st = store.lock_state();
                store.gc_layers(&mut st, None)?
            };
            store.empty_trash(trash.into_iter().map(|(_, p)| p).collect());
        }
        tracing::info!(root = %store.root.display(), "image store opened");
        Ok(store)
    }

    /// `docker import`: turns a plain rootfs tar (gzip detected by magic bytes)
    /// into a one-layer image.
    ///
    /// - `reference`: `tbox:1.0`, `tbox` (=> `tbox:latest`), `None` or `""` => untagged.
    /// - `changes`: Dockerfile instructions as for `--change`; see [`apply_changes`].
    /// - `message`: history/comment text; default `Imported from -`.
    ///
    /// The config JSON written follows the OCI image config: architecture
    /// (host GOARCH), os `linux`, created, comment, config, rootfs.diff_ids,
    /// history. The reference and changes are validated before the tar is read.
    ///
    /// # Errors
    /// [`ImageError::InvalidReference`], [`ImageError::InvalidChange`],
    /// [`ImageError::BadArchive`] (bad tar, entry escaping the layer, bzip2/xz/zstd),
    /// [`ImageError::Io`].
    pub fn import<R: Read>(
        &self,
        tar: R,
        reference: Option<&str>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<Image, ImageError> {
        let target = reference
            .filter(|r| !r.is_empty())
            .map(parse_tag_target)
            .transpose()?;
        let mut config = ImageConfig::default();
        apply_changes(&mut config, changes)?;
        let _w = self.lock_write();
        let res = self.import_locked(tar, target, config, message);
        if res.is_err() {
            self.gc_after_failure();
        }
        res
    }

    fn import_locked<R: Read>(
        &self,
        tar: R,
        target: Option<Reference>,
        config: ImageConfig,
        message: Option<&str>,
    ) -> Result<Image, ImageError> {
        let (tmp, stats) = self.unpack_to_temp(tar, "import")?;
        let layer = self.commit_layer(tmp, stats.diff_id, stats.size)?;
        let created = now_rfc3339();
        let comment = message
            .filter(|m| !m.is_empty())
            .unwrap_or("Imported from -")
            .to_string();
        let arch = host_arch();
        let cfg = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "created": created,
            "comment": comment,
            "config": config_to_json(&config),
            "rootfs": { "type": "layers", "diff_ids": [layer.diff_id] },
            "history": [ { "created": created, "comment": comment } ],
        });
        let bytes = serde_json::to_vec(&cfg).map_err(|e| json_io("encoding image config", e))?;
        let id = sha256_digest(&bytes);
        let rec = ImageRecord {
            image: Image {
                id: id.clone(),
                repo_tags: Vec::new(),
                created: created.clone(),
                size: layer.size,
                config,
                diff_ids: vec![layer.diff_id],
                parent: None,
                history: vec![HistoryEntry {
                    created: Some(created.clone()),
                    comment: Some(comment.clone()),
                    ..Default::default()
                }],
            },
            meta: ImageMeta {
                comment: Some(comment),
                author: None,
                architecture: arch.to_string(),
                os: "linux".to_string(),
                variant: None,
            },
        };
        self.write_image(&rec, &bytes)?;
        let mut st = self.lock_state();
        st.images.insert(id.clone(), rec);
        if let Some(t) = &target {
            let mut repos = st.repos.clone();
            set_tag(&mut repos, t, &id);
            self.persist_repos(&repos)?;
            st.repos = repos;
        }
        tracing::info!(%id, tag = ?target.as_ref().map(|t| t.familiar()), "imported image");
        let img = materialize(&st, &id);
        img.ok_or(ImageError::NotFound(id))
    }

    /// Looks an image up by reference (`tbox`, `tbox:1.0`,
    /// `docker.io/library/tbox:latest`), full ID (`sha256:<hex>`), bare 64-hex
    /// ID, or unique ID prefix (>= 1 hex char, optionally `sha256:`-prefixed),
    /// in Docker's order: full ID, then tag, then ID prefix.
    ///
    /// # Errors
    /// [`ImageError::InvalidReference`] when the string is not a valid
    /// reference; [`ImageError::NotFound`] (`No such image: tbox:latest`) when
    /// nothing matches or a prefix is ambiguous.
    pub fn get(&self, reference_or_id: &str) -> Result<Image, ImageError> {
        let st = self.lock_state();
        let id = resolve(&st, reference_or_id)?;
        materialize(&st, &id).ok_or_else(|| ImageError::NotFound(reference_or_id.to_string()))
    }

    /// All images, newest first (by `created`, then ID).
    pub fn list(&self) -> Vec<Image> {
        let st = self.lock_state();
        let mut out: Vec<Image> = st
            .images
            .keys()
            .filter_map(|id| materialize(&st, id))
            .collect();
        out.sort_by(|a, b| {
            created_secs(&b.created)
                .cmp(&created_secs(&a.created))
                .then_with(|| b.created.cmp(&a.created))
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    }

    /// `docker tag SOURCE TARGET`: points `target` (default tag `latest`) at
    /// the image `source` resolves to (as [`ImageStore::get`]); moves the tag
    /// if it pointed elsewhere.
    ///
    /// # Errors
    /// [`ImageError::InvalidReference`] (also for a target with a digest),
    /// [`ImageError::NotFound`], [`ImageError::Io`].
    pub fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let t = parse_tag_target(target)?;
        let mut st = self.lock_state();
        let id = resolve(&st, source)?;
        let mut repos = st.repos.clone();
        set_tag(&mut repos, &t, &id);
        self.persist_repos(&repos)?;
        st.repos = repos;
        tracing::info!(%id, tag = %t.familiar(), "tagged image");
        Ok(())
    }

    /// `docker rmi` (Docker's `ImageDelete`): given a reference, untags it and
    /// deletes the image when no tag is left; given an ID (or ID prefix),
    /// untags everything and deletes the image. A string that matches a tag is
    /// taken as that tag even if it is also a prefix of the image's ID.
    ///
    /// `in_use(image_id)` tells whether a container uses the image. Without
    /// `force` that is a [`ImageError::Conflict`] (409) when the reference is
    /// the image's only tag, or when deleting by ID; deleting by ID an image
    /// with several tags also needs `force`. With `force` the image is deleted
    /// anyway, but its layers are kept (held) until a later `remove` or
    /// [`ImageStore::prune_layers`] sees `in_use` return false.
    ///
    /// An image that is the [`Image::parent`] of another stays: removing its
    /// last tag only untags it, removing it by ID is a [`ImageError::Conflict`]
    /// even with `force` (moby's "image has dependent child images").
    ///
    /// `in_use` is called without internal locks held, so it may use the store.
    ///
    /// Returns Docker's `ImageDeleteResponseItem` list: `Untagged: tbox:latest`
    /// per removed tag, then `Deleted: <image id>` and `Deleted: <layer chain
    /// ID>` for each layer directory removed (top-most first).
    ///
    /// # Errors
    /// [`ImageError::NotFound`], [`ImageError::InvalidReference`],
    /// [`ImageError::Conflict`], [`ImageError::Io`].
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, ImageError> {
        let _w = self.lock_write();
        let mut records = Vec::new();
        let untagged = |s: String| ImageDeleteResponseItem {
            untagged: Some(s),
            deleted: None,
        };
        let deleted = |s: String| ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(s),
        };
        // Ask about containers without holding the state lock: the callback
        // may call back into the store. Only `tag` can change what `reference`
        // resolves to meanwhile (we hold the write lock); then ask again.
        let mut usage: HashMap<String, bool> = HashMap::new();
        let mut attempt = 0;
        let mut st = loop {
            let (id, held, parents): (String, Vec<String>, Vec<String>) = {
                let st = self.lock_state();
                let id = resolve(&st, reference)?;
                let parents = untagged_parents(&st, &id);
                (id, st.repos.held.keys().cloned().collect(), parents)
            };
            for x in std::iter::once(&id)
                .chain(held.iter())
                .chain(parents.iter())
            {
                if !usage.contains_key(x) {
                    let u = in_use(x);
                    usage.insert(x.clone(), u);
                }
            }
            let st = self.lock_state();
            if resolve(&st, reference).ok().as_ref() == Some(&id) {
                break st;
            }
            attempt += 1;
            if attempt >= 5 {
                return Err(ImageError::Conflict(format!(
                    "conflict: \"{reference}\" kept changing while being removed; try again"
                )));
            }
        };
        let in_use = |x: &str| usage.get(x).copied().unwrap_or(true);
        let mut trash = Vec::new();
        {
            let (id, by_tag) = resolve_how(&st, reference)?;
            let short = short_id(&id);
            let tag_keys: Vec<String> = st
                .repos
                .tags
                .iter()
                .filter(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
                .collect();
            let mut repos = st.repos.clone();
            // An image other images were made from stays while they do (moby: a
            // hard conflict by ID, a quiet untag-only by tag).
            let has_children = st
                .images
                .values()
                .any(|r| r.image.parent.as_deref() == Some(id.as_str()));
            if has_children && !by_tag {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {short} (cannot be forced) - image has dependent child images"
                )));
            }
            let delete = if by_tag {
                let r = parse_reference(reference)?.with_default_tag();
                let key = r.full();
                if !tag_keys.contains(&key) {
                    return Err(ImageError::NotFound(r.familiar()));
                }
                if !force && tag_keys.len() == 1 && in_use(&id) {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{reference}\" (must force) - container is using its referenced image {short}"
                    )));
                }
                repos.tags.remove(&key);
                records.push(untagged(r.familiar()));
                tag_keys.len() == 1 && !has_children
            } else {
                if !force && tag_keys.len() > 1 {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                    )));
                }
                if !force && in_use(&id) {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being used by a container"
                    )));
                }
                for k in &tag_keys {
                    repos.tags.remove(k);
                    records.push(untagged(familiar_of_key(k)));
                }
                true
            };
            if !delete {
                self.persist_repos(&repos)?;
                st.repos = repos;
                tracing::info!(%id, reference, "untagged image");
                return Ok(records);
            }
            let diff_ids = st
                .images
                .get(&id)
                .map(|r| r.image.diff_ids.clone())
                .unwrap_or_default();
            repos.last_tag_time.remove(&id);
            repos.digests.retain(|_, v| *v != id);
            if in_use(&id) {
                repos.held.insert(id.clone(), diff_ids.clone());
            }
            self.persist_repos(&repos)?;
            st.repos = repos;
            let parents = untagged_parents(&st, &id);
            st.images.remove(&id);
            let img_dir = self.images_dir().join(hex_of(&id));
            let t = self.tmp_dir().join(fsutil::random_name());
            match fs::rename(&img_dir, &t) {
                Ok(()) => trash.push(t),
                Err(e) => {
                    tracing::warn!(dir = %img_dir.display(), error = %e, "moving deleted image record aside")
                }
            }
            records.push(deleted(id.clone()));
            // As Docker: the untagged parents only this image kept (a build's
            // intermediate images) go with it, up to the first one that is tagged,
            // has other children or is used by a container.
            for p in parents {
                let others = st
                    .images
                    .values()
                    .any(|r| r.image.parent.as_deref() == Some(p.as_str()));
                if others || in_use(&p) {
                    break;
                }
                st.images.remove(&p);
                let dir = self.images_dir().join(hex_of(&p));
                let t = self.tmp_dir().join(fsutil::random_name());
                if fs::rename(&dir, &t).is_ok() {
                    trash.push(t);
                }
                records.push(deleted(p));
            }
            let removed = self.gc_layers(&mut st, Some(&in_use))?;
            let chain = chain_ids(&diff_ids);
            for (i, d) in diff_ids.iter().enumerate().rev() {
                if removed.iter().any(|(r, _)| r == d) {
                    records.push(deleted(chain[i].clone()));
                }
            }
            tracing::info!(%id, layers_removed = removed.len(), "deleted image");
            trash.extend(removed.into_iter().map(|(_, p)| p));
        }
        drop(st);
        self.empty_trash(trash);
        Ok(records)
    }

    /// Removes layer directories that no image uses any more, re-checking with
    /// `in_use(image_id)` the layers held for containers of force-deleted
    /// images. Call after removing a container. Returns the removed diff IDs.
    ///
    /// # Errors
    /// [`ImageError::Io`].
    pub fn prune_layers(&self, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<String>, ImageError> {
        let _w = self.lock_write();
        // Callback outside the state lock (it may call back into the store).
        let held: Vec<String> = self.lock_state().repos.held.keys().cloned().collect();
        let usage: HashMap<String, bool> = held.iter().map(|h| (h.clone(), in_use(h))).collect();
        let still_used = |x: &str| usage.get(x).copied().unwrap_or(true);
        let removed = {
            let mut st = self.lock_state();
            self.gc_layers(&mut st, Some(&still_used))?
        };
        let ids = removed.iter().map(|(d, _)| d.clone()).collect();
        self.empty_trash(removed.into_iter().map(|(_, p)| p).collect());
        Ok(ids)
    }

    /// Unpacked layer directories of `image`, top-most first (overlayfs
    /// `lowerdir=` order): `<root>/layers/<diffid-hex>/diff`.
    pub fn layer_paths(&self, image: &Image) -> Vec<PathBuf> {
        image
            .diff_ids
            .iter()
            .rev()
            .map(|d| self.layer_dir(d).join("diff"))
            .collect()
    }

    /// `GET /images/{name}/json` body (Docker Engine API `ImageInspect`): Id,
    /// RepoTags, RepoDigests `[]`, Comment, Created (RFC 3339), Author, Config,
    /// Architecture, Variant, Os, Size, GraphDriver (`overlay2` with
    /// UpperDir/LowerDir), RootFS `{Type: "layers", Layers: diff IDs}`,
    /// Metadata.LastTagTime (when tagged locally).
    pub fn inspect(&self, image: &Image) -> ImageInspect {
        let (meta, tags, last_tag, digests) = {
            let st = self.lock_state();
            match st.images.get(&image.id) {
                Some(rec) => (
                    rec.meta.clone(),
                    tags_for(&st, &image.id),
                    st.repos.last_tag_time.get(&image.id).cloned(),
                    digests_for(&st, &image.id),
                ),
                None => (
                    ImageMeta::default(),
                    image.repo_tags.clone(),
                    None,
                    Vec::new(),
                ),
            }
        };
        let paths = self.layer_paths(image);
        let mut data = HashMap::new();
        if let Some((upper, lower)) = paths.split_first() {
            data.insert("UpperDir".to_string(), upper.display().to_string());
            if !lower.is_empty() {
                let l: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
                data.insert("LowerDir".to_string(), l.join(":"));
            }
        }
        ImageInspect {
            id: Some(image.id.clone()),
            repo_tags: Some(tags),
            repo_digests: Some(digests),
            comment: Some(meta.comment.unwrap_or_default()),
            created: bollard_date(&image.created),
            author: Some(meta.author.unwrap_or_default()),
            config: Some(api_config(&image.config)),
            architecture: Some(if meta.architecture.is_empty() {
                host_arch().to_string()
            } else {
                meta.architecture
            }),
            variant: meta.variant,
            os: Some(if meta.os.is_empty() {
                "linux".to_string()
            } else {
                meta.os
            }),
            size: Some(i64::try_from(image.size).unwrap_or(i64::MAX)),
            graph_driver: Some(DriverData {
                name: "overlay2".to_string(),
                data,
            }),
            root_fs: Some(ImageInspectRootFs {
                typ: "layers".to_string(),
                layers: Some(image.diff_ids.clone()),
            }),
            metadata: Some(ImageInspectMetadata {
                last_tag_time: last_tag.as_deref().and_then(bollard_date),
            }),
            ..Default::default()
        }
    }

    /// `GET /images/json` list item (Docker Engine API `ImageSummary`): Id,
    /// ParentId `""`, RepoTags, RepoDigests `[]`, Created (Unix seconds), Size,
    /// SharedSize -1, Labels, Containers -1.
    pub fn summary(&self, image: &Image) -> ImageSummary {
        let (tags, digests) = {
            let st = self.lock_state();
            if st.images.contains_key(&image.id) {
                (tags_for(&st, &image.id), digests_for(&st, &image.id))
            } else {
                (image.repo_tags.clone(), Vec::new())
            }
        };
        ImageSummary {
            id: image.id.clone(),
            parent_id: image.parent.clone().unwrap_or_default(),
            repo_tags: tags,
            repo_digests: digests,
            created: created_secs(&image.created),
            size: i64::try_from(image.size).unwrap_or(i64::MAX),
            shared_size: -1,
            labels: image
                .config
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            containers: -1,
            ..Default::default()
        }
    }

    // ---- internals ----

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }
    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn repos_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }
    fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.layers_dir().join(hex_of(diff_id))
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn lock_write(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn persist_repos(&self, repos: &Repositories) -> Result<(), ImageError> {
        let bytes =
            serde_json::to_vec_pretty(repos).map_err(|e| json_io("encoding repositories", e))?;
        write_atomic(&self.repos_path(), &bytes)
    }

    /// Unpacks a (possibly gzip'd) layer stream into a fresh temp dir
    /// (`<tmp>/<rand>/diff`), keeping the stream as it came in `<tmp>/<rand>/blob`
    /// (see [`blob`]).
    pub(crate) fn unpack_to_temp<R: Read>(
        &self,
        reader: R,
        what: &str,
    ) -> Result<(TempDir, unpack::LayerStats), ImageError> {
        self.unpack_blob_to_temp(reader, what)
            .map(|(tmp, stats, _)| (tmp, stats))
    }

    /// [`ImageStore::unpack_to_temp`], also returning the kept blob's record
    /// (digest and size of the bytes read from `reader`, all of them).
    pub(crate) fn unpack_blob_to_temp<R: Read>(
        &self,
        reader: R,
        what: &str,
    ) -> Result<(TempDir, unpack::LayerStats, blob::BlobRecord), ImageError> {
        let tmp = TempDir::new_in(&self.tmp_dir())?;
        let blob_path = tmp.path().join(blob::BLOB_FILE);
        let mut tee = blob::TeeReader::create(reader, &blob_path)?;
        let diff = tmp.path().join("diff");
        fs::create_dir(&diff).map_err(io_err(format!("creating {}", diff.display())))?;
        // Independent of the umask; a "./" entry in the tar overrides it.
        fs::set_permissions(&diff, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err(format!("chmod {}", diff.display())))?;
        let stats = {
            let stream = unpack::decompress(&mut tee, what)?;
            unpack::unpack_layer(stream, &diff, what)?
        };
        let rec = tee
            .finish()
            .map_err(|e| ImageError::BadArchive(format!("{what}: reading: {e}")))?;
        blob::write_record(tmp.path(), &rec)?;
        Ok((tmp, stats, rec))
    }

    /// Renames an unpacked temp layer into `layers/<hex>` (or drops it when that
    /// layer already exists).
    pub(crate) fn commit_layer(
        &self,
        tmp: TempDir,
        diff_id: String,
        size: u64,
    ) -> Result<LayerRecord, ImageError> {
        let rec = LayerRecord { diff_id, size };
        let dest = self.layer_dir(&rec.diff_id);
        if dest.exists() {
            tracing::debug!(diff_id = %rec.diff_id, "layer already present; sharing it");
            return Ok(rec);
        }
        let bytes = serde_json::to_vec(&rec).map_err(|e| json_io("encoding layer record", e))?;
        write_atomic(&tmp.path().join("layer.json"), &bytes)?;
        fs::rename(tmp.path(), &dest)
            .map_err(io_err(format!("moving layer into {}", dest.display())))?;
        tmp.keep();
        fsutil::fsync_dir(&self.layers_dir())?;
        Ok(rec)
    }

    /// Size recorded for a present layer.
    pub(crate) fn layer_size(&self, diff_id: &str) -> Option<u64> {
        let path = self.layer_dir(diff_id).join("layer.json");
        let bytes = fs::read(path).ok()?;
        serde_json::from_slice::<LayerRecord>(&bytes)
            .ok()
            .map(|r| r.size)
    }

    pub(crate) fn layer_present(&self, diff_id: &str) -> bool {
        self.layer_dir(diff_id).join("diff").is_dir()
    }

    /// Writes `images/<hex>/{config.json,image.json}` via a temp dir; no-op if present.
    fn write_image(&self, rec: &ImageRecord, config_bytes: &[u8]) -> Result<(), ImageError> {
        let dest = self.images_dir().join(hex_of(&rec.image.id));
        if dest.join("image.json").exists() {
            return Ok(());
        }
        let tmp = TempDir::new_in(&self.tmp_dir())?;
        let mut stored = rec.clone();
        stored.image.repo_tags.clear();
        let bytes =
            serde_json::to_vec_pretty(&stored).map_err(|e| json_io("encoding image record", e))?;
        write_atomic(&tmp.path().join("config.json"), config_bytes)?;
        write_atomic(&tmp.path().join("image.json"), &bytes)?;
        remove_any(&dest).map_err(io_err(format!("removing {}", dest.display())))?;
        fs::rename(tmp.path(), &dest)
            .map_err(io_err(format!("moving image into {}", dest.display())))?;
        tmp.keep();
        fsutil::fsync_dir(&self.images_dir())
    }

    /// Adds an image record and tags (in memory and on disk). Returns the
    /// `The image X already exists, renaming the old one ...` lines for tags
    /// that moved from another image.
    pub(crate) fn commit_loaded_image(
        &self,
        id: &str,
        image: Image,
        meta: ImageMeta,
        config_bytes: &[u8],
        tags: &[Reference],
    ) -> Result<Vec<String>, ImageError> {
        let rec = ImageRecord { image, meta };
        self.write_image(&rec, config_bytes)?;
        let mut st = self.lock_state();
        st.images.entry(id.to_string()).or_insert(rec);
        let mut lines = Vec::new();
        if !tags.is_empty() {
            let mut repos = st.repos.clone();
            for t in tags {
                if let Some(prev) = set_tag(&mut repos, t, id) {
                    lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {prev} to empty string",
                        t.familiar()
                    ));
                }
            }
            self.persist_repos(&repos)?;
            st.repos = repos;
        }
        Ok(lines)
    }

    /// Moves unreferenced layer dirs into `tmp/` (fast, under the lock) and
    /// returns them for deletion by [`ImageStore::empty_trash`]. With
    /// `in_use`, first drops holds whose image no container uses any more.
    /// Callers hold the write lock, so no layer is being added meanwhile.
    fn gc_layers(
        &self,
        st: &mut State,
        in_use: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Vec<(String, PathBuf)>, ImageError> {
        if let Some(in_use) = in_use {
            let mut repos = st.repos.clone();
            repos.held.retain(|id, _| in_use(id));
            if repos.held.len() != st.repos.held.len() {
                self.persist_repos(&repos)?;
                st.repos = repos;
            }
        }
        let pinned: Vec<String> = self
            .pins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        let keep: HashSet<&String> = st
            .images
            .values()
            .flat_map(|r| r.image.diff_ids.iter())
            .chain(st.repos.held.values().flatten())
            .chain(pinned.iter())
            .collect();
        let layers = self.layers_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&layers).map_err(io_err(format!("reading {}", layers.display())))? {
            let e = e.map_err(io_err(format!("reading {}", layers.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_hex64(&name) {
                continue;
            }
            let diff_id = format!("sha256:{name}");
            if keep.contains(&diff_id) {
                continue;
            }
            let t = self.tmp_dir().join(fsutil::random_name());
            fs::rename(e.path(), &t)
                .map_err(io_err(format!("moving {} aside", e.path().display())))?;
            tracing::debug!(%diff_id, "removing unused layer");
            out.push((diff_id, t));
        }
        Ok(out)
    }

    fn empty_trash(&self, trash: Vec<PathBuf>) {
        for t in trash {
            if let Err(e) = remove_any(&t) {
                tracing::warn!(path = %t.display(), error = %e, "removing deleted data");
            }
        }
    }

    /// After a failed import/load (write lock held): drop layers it left.
    fn gc_after_failure(&self) {
        let res = {
            let mut st = self.lock_state();
            self.gc_layers(&mut st, None)
        };
        match res {
            Ok(trash) => self.empty_trash(trash.into_iter().map(|(_, p)| p).collect()),
            Err(e) => tracing::warn!(error = %e, "cleaning up after a failed import/load"),
        }
    }
}

/// Points `t` at `id`; returns the previous image ID when the tag moved.
fn set_tag(repos: &mut Repositories, t: &Reference, id: &str) -> Option<String> {
    let prev = repos.tags.insert(t.full(), id.to_string());
    repos.last_tag_time.insert(id.to_string(), now_rfc3339());
    prev.filter(|p| p != id)
}

/// Repo digests of image `id` in familiar form (`127.0.0.1:5000/tbox@sha256:...`), sorted.
fn digests_for(st: &State, id: &str) -> Vec<String> {
    let mut out: Vec<String> = st
        .repos
        .digests
        .iter()
        .filter(|(_, v)| *v == id)
        .map(|(k, _)| match k.split_once('@') {
            Some((name, d)) => match parse_reference(name) {
                Ok(r) => format!("{}@{d}", r.familiar_name()),
                Err(_) => k.clone(),
            },
            None => k.clone(),
        })
        .collect();
    out.sort();
    out
}

fn tags_for(st: &State, id: &str) -> Vec<String> {
    let mut tags: Vec<String> = st
        .repos
        .tags
        .iter()
        .filter(|(_, v)| *v == id)
        .map(|(k, _)| familiar_of_key(k))
        .collect();
    tags.sort();
    tags
}

fn materialize(st: &State, id: &str) -> Option<Image> {
    let rec = st.images.get(id)?;
    let mut img = rec.image.clone();
    img.repo_tags = tags_for(st, id);
    Some(img)
}

fn created_secs(created: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(created)
        .map(|d| d.timestamp())
        .unwrap_or(0)
}

/// Docker's `GetImage` resolution order.
fn resolve(st: &State, s: &str) -> Result<String, ImageError> {
    resolve_how(st, s).map(|(id, _)| id)
}

/// [`resolve`], also telling whether `s` matched a tag (vs. an ID or ID prefix).
fn resolve_how(st: &State, s: &str) -> Result<(String, bool), ImageError> {
    let full = if is_hex64(s) {
        Some(format!("sha256:{s}"))
    } else if valid_digest(s) {
        Some(s.to_string())
    } else {
        None
    };
    if let Some(id) = full {
        return if st.images.contains_key(&id) {
            Ok((id, false))
        } else {
            Err(ImageError::NotFound(id))
        };
    }
    let r = parse_reference(s)?.with_default_tag();
    if r.digest.is_none() {
        if let Some(id) = st.repos.tags.get(&r.full()) {
            if st.images.contains_key(id) {
                return Ok((id.clone(), true));
            }
        }
    } else if let Some(d) = &r.digest {
        // A repo digest from a pull or push (`127.0.0.1:5000/tbox@sha256:...`).
        if let Some(id) = st.repos.digests.get(&format!("{}@{d}", r.name())) {
            if st.images.contains_key(id) {
                return Ok((id.clone(), false));
            }
        }
    }
    let prefix = s.strip_prefix("sha256:").unwrap_or(s);
    if !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        let mut hits = st.images.keys().filter(|id| hex_of(id).starts_with(prefix));
        if let (Some(id), None) = (hits.next(), hits.next()) {
            return Ok((id.clone(), false));
        }
    }
    Err(ImageError::NotFound(r.familiar()))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_create;
