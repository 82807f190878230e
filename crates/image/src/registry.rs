//! Registries: `pull`, `push`, `login` and `distribution inspect` over the
//! Docker Registry HTTP API v2 / OCI distribution spec, through the
//! `oci-client` crate (rustls with ring).
//!
//! - References follow Docker's rules ([`crate::parse_reference`]): `postgres`
//!   is `docker.io/library/postgres:latest`, `host:port/x` names a registry,
//!   a digest pins the manifest.
//! - Manifests: Docker image manifest v2 schema 2 and OCI image manifests;
//!   Docker manifest lists and OCI image indexes, from which the entry for
//!   `linux/<host arch>` (or the `--platform` asked for) is taken.
//! - Every blob is verified against its digest (manifests, config, layers);
//!   every layer's uncompressed stream against the config's `rootfs.diff_ids`.
//! - Layers whose diff ID is already in the store are not fetched ("Already
//!   exists"); the others are fetched [`MAX_CONCURRENT_LAYERS`] at a time (the
//!   next starting as soon as any is done) and unpacked as they stream in.
//!   Nothing reaches the store before every layer and the config are verified:
//!   a failed pull leaves no layer or image.
//! - Loopback registries (`localhost`, 127.0.0.0/8, `::1`) and those named by
//!   the daemon's `--insecure-registry` are spoken to over plain HTTP, as
//!   Docker does; all others over HTTPS. `--registry-mirror` replaces
//!   `docker.io` for pulls (falling back to it when the mirror fails).
//! - Progress is reported as the Docker Engine API's JSON messages
//!   (`{"status":"Downloading","progressDetail":{"current":..,"total":..},"id":..}`),
//!   which the docker CLI and docker-compose render.

use crate::blob::{self, BlobRecord};
use crate::fsutil::{io_err, sha256_digest, TempDir};
use crate::unpack::LayerStats;
use crate::{
    host_arch, parse_reference, valid_digest, Image, ImageError, ImageStore, Reference,
    MAX_METADATA_BYTES,
};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{self, Read};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Layers fetched at the same time by one pull (Docker's `max-concurrent-downloads` is 3).
pub const MAX_CONCURRENT_LAYERS: usize = 3;

/// Chunks of a layer's body queued between its download and its unpacker. Each chunk is
/// a slice of hyper's read buffer (up to ~400 KiB) and keeps that buffer allocated until
/// it is unpacked; the unpacker (disk, SHA-256, inflate) is the slower side on loopback,
/// so the queue stays full. With 32, the daemon's RSS peaked at ~76 MiB in a pull of
/// 5 x 30 MiB layers (figure 10 of the benchmarks); with 4, at ~44 MiB, as fast.
const LAYER_CHUNKS_QUEUED: usize = 4;

/// Docker image manifest v2 schema 2.
pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const MT_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config (schema 2).
const MT_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Manifest media types asked for (the registry picks one).
const ACCEPT: &[&str] = &[
    MT_DOCKER_MANIFEST,
    MT_DOCKER_MANIFEST_LIST,
    MT_OCI_MANIFEST,
    MT_OCI_INDEX,
];

/// Daemon-wide registry settings (`tether daemon --insecure-registry`,
/// `--registry-mirror`); set once at start with [`configure`].
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`) spoken to over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Mirrors of `docker.io` (`https://mirror.example`, `http://127.0.0.1:5001`), tried first.
    pub mirrors: Vec<String>,
}

static CONFIG: OnceLock<RegistryConfig> = OnceLock::new();

/// Sets the daemon's registry settings; the first call wins (later ones are ignored).
/// A mirror given as an `http://` URL is spoken to over plain HTTP.
pub fn configure(mut cfg: RegistryConfig) {
    let plain: Vec<String> = cfg
        .mirrors
        .iter()
        .filter(|m| m.starts_with("http://"))
        .map(|m| normalize_server(m))
        .collect();
    cfg.insecure_registries.extend(plain);
    let _ = CONFIG.set(cfg);
}

fn config() -> RegistryConfig {
    CONFIG.get().cloned().unwrap_or_default()
}

/// Whether `registry` (`host[:port]`) is spoken to over plain HTTP: loopback
/// hosts always (as Docker), others when listed with `--insecure-registry`.
pub fn is_insecure(registry: &str) -> bool {
    let host = host_of(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    config()
        .insecure_registries
        .iter()
        .any(|r| r == registry || r == host)
}

/// `host` of `host[:port]` / `[v6]:port`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => registry,
    }
}

/// Errors of registry operations. Each Display is one line naming the
/// reference and the registry. [`RegistryError::status`] gives the HTTP
/// status of the Docker Engine API.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The repository, tag or digest is not in the registry (or not for this
    /// platform); 404.
    #[error("{0}")]
    NotFound(String),
    /// Missing or wrong credentials, or access denied; 401.
    #[error("{0}")]
    Denied(String),
    /// The registry could not be reached or broke the transfer off; 500.
    #[error("{0}")]
    Unreachable(String),
    /// The registry sent something wrong: a digest mismatch, an unsupported
    /// or malformed manifest, a layer not matching the config; 500.
    #[error("{0}")]
    Invalid(String),
    /// A bad reference or request (e.g. pushing a digest); 400.
    #[error("{0}")]
    BadRequest(String),
    /// The local image store failed.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl RegistryError {
    /// HTTP status for the Docker Engine API.
    pub fn status(&self) -> u16 {
        match self {
            RegistryError::NotFound(_) => 404,
            RegistryError::Denied(_) => 401,
            RegistryError::BadRequest(_) => 400,
            RegistryError::Unreachable(_) | RegistryError::Invalid(_) => 500,
            RegistryError::Image(e) => e.status(),
        }
    }
}

/// Credentials as the Docker Engine API carries them (`X-Registry-Auth`
/// header, `POST /auth` body): `{"username","password","serveraddress"}`.
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct AuthConfig {
    /// User name; empty for anonymous access.
    #[serde(default)]
    pub username: String,
    /// Password or access token.
    #[serde(default)]
    pub password: String,
    /// Registry (`127.0.0.1:5000`, `https://index.docker.io/v1/`).
    #[serde(default, alias = "serveraddress", rename = "serveraddress")]
    pub server_address: String,
    /// OAuth identity token (used as a bearer token).
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header: base64url (padded or not; plain
    /// base64 accepted too) of the JSON object. An empty header, `{}` or
    /// anything undecodable is anonymous access.
    pub fn from_header(value: &str) -> AuthConfig {
        use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
        let v = value.trim();
        if v.is_empty() {
            return AuthConfig::default();
        }
        let cfg = general_purpose::GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg);
        let std = GeneralPurpose::new(&base64::alphabet::STANDARD, cfg);
        url.decode(v)
            .or_else(|_| std.decode(v))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn registry_auth(&self) -> RegistryAuth {
        if !self.identity_token.is_empty() {
            RegistryAuth::Bearer(self.identity_token.clone())
        } else if !self.username.is_empty() {
            RegistryAuth::Basic(self.username.clone(), self.password.clone())
        } else {
            RegistryAuth::Anonymous
        }
    }
}

/// Where progress messages go: Docker Engine API JSON messages, one per value.
pub type ProgressTx = mpsc::UnboundedSender<Value>;

fn send(tx: &ProgressTx, v: Value) {
    let _ = tx.send(v);
}

fn status(tx: &ProgressTx, s: impl Into<String>) {
    send(tx, json!({ "status": s.into() }));
}

fn layer_status(tx: &ProgressTx, id: &str, s: &str) {
    send(tx, json!({ "status": s, "progressDetail": {}, "id": id }));
}

fn layer_bar(tx: &ProgressTx, id: &str, s: &str, current: u64, total: Option<u64>) {
    let mut detail = json!({ "current": current });
    if let Some(t) = total {
        detail["total"] = json!(t);
    }
    send(
        tx,
        json!({ "status": s, "progressDetail": detail, "progress": progress_bar(current, total), "id": id }),
    );
}

/// Docker's `JSONProgress.String()`: `[=====>     ]  1.2MB/3.4MB`.
pub fn progress_bar(current: u64, total: Option<u64>) -> String {
    match total {
        Some(t) if t > 0 && current <= t => {
            let width = 50usize;
            let filled = ((current as f64 / t as f64) * width as f64) as usize;
            let bar = if filled >= width {
                "=".repeat(width)
            } else {
                format!("{}>{}", "=".repeat(filled), " ".repeat(width - filled - 1))
            };
            format!("[{bar}] {:>8}/{}", human_size(current), human_size(t))
        }
        _ => format!("{:>8}", human_size(current)),
    }
}

/// go-units `HumanSize`: decimal units, 4 significant digits (`1.234MB`).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{v:.4}");
    let digits_before = s.split('.').next().map(str::len).unwrap_or(0);
    let prec = 4usize.saturating_sub(digits_before);
    let mut t = format!("{v:.prec$}");
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{t}{}", units[i])
}

fn short(digest: &str) -> String {
    digest
        .split_once(':')
        .map(|(_, h)| h)
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}

/// The text of an error and its sources, joined by `: `, without repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

/// Maps a client error to ours; `what` names the operation and reference
/// (`pulling 127.0.0.1:5000/tbox:1`), `registry` the registry.
fn classify(e: OciDistributionError, what: &str, registry: &str) -> RegistryError {
    let at = format!("{what} from registry {registry}");
    match &e {
        OciDistributionError::RegistryError { envelope, .. } => {
            let first = envelope.errors.first();
            let msg = first
                .map(|x| x.message.to_string())
                .unwrap_or_default();
            match first.map(|x| &x.code) {
                Some(OciErrorCode::ManifestUnknown) | Some(OciErrorCode::NotFound) => {
                    RegistryError::NotFound(format!("{at}: manifest unknown: {msg}"))
                }
                Some(OciErrorCode::NameUnknown) => RegistryError::NotFound(format!(
                    "{at}: repository does not exist: name unknown: {msg}"
                )),
                Some(OciErrorCode::BlobUnknown) => {
                    RegistryError::NotFound(format!("{at}: blob unknown: {msg}"))
                }
                Some(OciErrorCode::Unauthorized) | Some(OciErrorCode::Denied) => {
                    RegistryError::Denied(format!(
                        "{at}: access denied: {msg} (log in with `tether login {registry}`)"
                    ))
                }
                _ => RegistryError::Invalid(format!("{at}: {}", chain(&e))),
            }
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => RegistryError::Denied(format!(
            "{at}: unauthorized: authentication required (log in with `tether login {registry}`)"
        )),
        OciDistributionError::ImageManifestNotFoundError(_) => {
            RegistryError::NotFound(format!("{at}: manifest unknown"))
        }
        OciDistributionError::ServerError { code: 404, .. } => {
            RegistryError::NotFound(format!("{at}: not found"))
        }
        OciDistributionError::ServerError { code: 401 | 403, .. } => RegistryError::Denied(
            format!("{at}: access denied (log in with `tether login {registry}`)"),
        ),
        OciDistributionError::RequestError(re)
            if matches!(re.status().map(|s| s.as_u16()), Some(401 | 403)) =>
        {
            RegistryError::Denied(format!(
                "{at}: unauthorized: authentication required (log in with `tether login {registry}`)"
            ))
        }
        OciDistributionError::RequestError(re) if re.status().is_some() => {
            RegistryError::Invalid(format!("{at}: {}", chain(&e)))
        }
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => {
            RegistryError::Unreachable(format!(
                "{at}: cannot reach the registry: {}",
                chain(&e)
            ))
        }
        OciDistributionError::DigestError(_) => RegistryError::Invalid(format!(
            "{at}: digest verification failed: {}",
            chain(&e)
        )),
        _ => RegistryError::Invalid(format!("{at}: {}", chain(&e))),
    }
}

fn install_crypto() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client for `registry` (plain HTTP for insecure ones).
fn client_for(registry: &str) -> Result<Client, RegistryError> {
    install_crypto();
    let cfg = ClientConfig {
        protocol: if is_insecure(registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(15)),
        read_timeout: Some(Duration::from_secs(120)),
        user_agent: concat!("tether/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };
    Client::try_from(cfg).map_err(|e| {
        RegistryError::Unreachable(format!(
            "cannot set up a client for registry {registry}: {}",
            chain(&e)
        ))
    })
}

/// `oci_client::Reference` of ours; `mirror` replaces the registry host.
fn oci_ref(r: &Reference, mirror: Option<&str>) -> oci_client::Reference {
    let mut o = match (&r.digest, &r.tag) {
        (Some(d), Some(t)) => oci_client::Reference::with_tag_and_digest(
            r.domain.clone(),
            r.path.clone(),
            t.clone(),
            d.clone(),
        ),
        (Some(d), None) => {
            oci_client::Reference::with_digest(r.domain.clone(), r.path.clone(), d.clone())
        }
        (None, t) => oci_client::Reference::with_tag(
            r.domain.clone(),
            r.path.clone(),
            t.clone().unwrap_or_else(|| crate::DEFAULT_TAG.to_string()),
        ),
    };
    if let Some(m) = mirror {
        o.set_mirror_registry(m.to_string());
    }
    o
}

/// The registry host a reference is fetched from (`index.docker.io` for `docker.io`).
pub fn registry_host(r: &Reference) -> String {
    oci_ref(r, None).resolve_registry().to_string()
}

/// A platform `os/arch[/variant]` (`--platform`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// GOARCH: `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... when given.
    pub variant: Option<String>,
}

impl Platform {
    /// The host's: `linux/<GOARCH>`.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: host_arch().into(),
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]`; empty means the host's.
    ///
    /// # Errors
    /// [`RegistryError::BadRequest`] for more than three parts or empty ones.
    pub fn parse(s: &str) -> Result<Platform, RegistryError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Platform::host());
        }
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(RegistryError::BadRequest(format!(
                "invalid platform {s:?}: expected os[/arch[/variant]]"
            )));
        }
        Ok(Platform {
            os: parts[0].to_lowercase(),
            architecture: parts
                .get(1)
                .map(|a| a.to_lowercase())
                .unwrap_or_else(|| host_arch().to_string()),
            variant: parts.get(2).map(|v| v.to_lowercase()),
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct IndexJson {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    platform: Option<PlatformJson>,
}

#[derive(Deserialize, Clone)]
struct PlatformJson {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct ManifestJson {
    #[serde(rename = "schemaVersion", default)]
    schema_version: i64,
    #[serde(rename = "mediaType", default)]
    media_type: String,
    config: Option<OciDescriptor>,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
}

fn is_index(bytes_mt: &str, v: &Value) -> bool {
    bytes_mt == MT_OCI_INDEX || bytes_mt == MT_DOCKER_MANIFEST_LIST || v.get("manifests").is_some()
}

fn pick_platform<'a>(idx: &'a IndexJson, want: &Platform) -> Option<&'a IndexEntry> {
    let matches = |p: &PlatformJson, strict_variant: bool| {
        p.os == want.os
            && p.architecture == want.architecture
            && match (&want.variant, &p.variant) {
                (Some(w), Some(v)) => w == v,
                (Some(_), None) => !strict_variant,
                (None, _) => true,
            }
    };
    idx.manifests
        .iter()
        .find(|e| e.platform.as_ref().is_some_and(|p| matches(p, true)))
        .or_else(|| {
            idx.manifests
                .iter()
                .find(|e| e.platform.as_ref().is_some_and(|p| matches(p, false)))
        })
}

/// What a pull resolved before any layer is fetched: see [`prepare_pull`].
pub struct PullPlan {
    reference: Reference,
    oref: oci_client::Reference,
    client: Arc<Client>,
    registry: String,
    /// Digest of the manifest (or index) the reference named.
    pub digest: String,
    config_bytes: Vec<u8>,
    diff_ids: Vec<String>,
    layers: Vec<OciDescriptor>,
}

impl PullPlan {
    /// The image ID the pull produces (`sha256:` of the config).
    pub fn image_id(&self) -> String {
        sha256_digest(&self.config_bytes)
    }
}

/// The result of a pull.
#[derive(Clone, Debug)]
pub struct PullOutcome {
    /// Image ID.
    pub id: String,
    /// Digest of the manifest (or index) the reference named.
    pub digest: String,
    /// False when the image was already there under that name ("Image is up to date").
    pub downloaded: bool,
}

async fn fetch_manifest(
    client: &Client,
    oref: &oci_client::Reference,
    auth: &RegistryAuth,
    what: &str,
    registry: &str,
) -> Result<(Bytes, String), RegistryError> {
    // The digest the client reports comes from a header; ours is the content's.
    let (bytes, _header_digest) = client
        .pull_manifest_raw(oref, auth, ACCEPT)
        .await
        .map_err(|e| classify(e, what, registry))?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(RegistryError::Invalid(format!(
            "{what} from registry {registry}: manifest larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    let got = sha256_digest(&bytes);
    if let Some(d) = oref.digest() {
        if got != d {
            return Err(RegistryError::Invalid(format!(
                "{what} from registry {registry}: manifest verification failed for digest {d}: content hashes to {got}"
            )));
        }
    }
    Ok((bytes, got))
}

/// First half of a pull: fetches and verifies the manifest (choosing the
/// platform's entry of an index) and the image config. Nothing is written.
/// Errors here come before any progress, so the API can answer them with a
/// plain status (404 for an unknown repository/tag).
///
/// `reference` without tag or digest means `:latest`.
///
/// # Errors
/// [`RegistryError::NotFound`] (unknown repository, tag, digest, platform),
/// [`RegistryError::Denied`], [`RegistryError::Unreachable`],
/// [`RegistryError::Invalid`] (digest mismatch, schema 1 or unknown manifest,
/// zstd or foreign layers, config and manifest disagreeing).
pub async fn prepare_pull(
    reference: &Reference,
    platform: Option<&str>,
    auth: &AuthConfig,
) -> Result<PullPlan, RegistryError> {
    let r = reference.clone().with_default_tag();
    let want = Platform::parse(platform.unwrap_or(""))?;
    let mirrors: Vec<String> = if r.domain == crate::DEFAULT_DOMAIN {
        config().mirrors
    } else {
        Vec::new()
    };
    let mut last_err = None;
    for mirror in mirrors.iter().map(Some).chain(std::iter::once(None)) {
        let host = mirror.map(|m| {
            m.trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        });
        match prepare_from(&r, &want, auth, host.as_deref()).await {
            Ok(p) => return Ok(p),
            Err(e) if mirror.is_some() => {
                tracing::warn!(error = %e, "registry mirror failed; trying the next source");
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| RegistryError::Invalid("no registry to pull from".into())))
}

async fn prepare_from(
    r: &Reference,
    want: &Platform,
    auth: &AuthConfig,
    mirror: Option<&str>,
) -> Result<PullPlan, RegistryError> {
    let oref = oci_ref(r, mirror);
    let registry = oref.resolve_registry().to_string();
    let what = format!("pulling {}", r.familiar());
    let client = Arc::new(client_for(&registry)?);
    let rauth = auth.registry_auth();
    client.store_auth_if_needed(&registry, &rauth).await;
    let (bytes, top_digest) = fetch_manifest(&client, &oref, &rauth, &what, &registry).await?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        RegistryError::Invalid(format!(
            "{what} from registry {registry}: manifest is not JSON: {e}"
        ))
    })?;
    let mt = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    let manifest_bytes = if is_index(&mt, &v) {
        let idx: IndexJson = serde_json::from_value(v).map_err(|e| {
            RegistryError::Invalid(format!(
                "{what} from registry {registry}: bad image index: {e}"
            ))
        })?;
        let entry = pick_platform(&idx, want).ok_or_else(|| {
            RegistryError::NotFound(format!(
                "{what} from registry {registry}: no matching manifest for {want} in the manifest list entries"
            ))
        })?;
        if !valid_digest(&entry.digest) {
            return Err(RegistryError::Invalid(format!(
                "{what} from registry {registry}: index entry has a malformed digest {:?}",
                entry.digest
            )));
        }
        let sub = oref.clone_with_digest(entry.digest.clone());
        let b = fetch_manifest(&client, &sub, &rauth, &what, &registry)
            .await?
            .0;
        if entry.size > 0 && b.len() as i64 != entry.size {
            return Err(RegistryError::Invalid(format!(
                "{what} from registry {registry}: manifest {} is {} bytes, the index says {}",
                entry.digest,
                b.len(),
                entry.size
            )));
        }
        b
    } else {
        bytes
    };
    let m: ManifestJson = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        RegistryError::Invalid(format!(
            "{what} from registry {registry}: bad manifest: {e}"
        ))
    })?;
    if m.schema_version != 2 {
        return Err(RegistryError::Invalid(format!(
            "{what} from registry {registry}: manifest schema version {} ({}) is not supported; only schema 2 and OCI manifests are",
            m.schema_version, m.media_type
        )));
    }
    let config = m.config.ok_or_else(|| {
        RegistryError::Invalid(format!(
            "{what} from registry {registry}: manifest has no config"
        ))
    })?;
    for d in std::iter::once(&config).chain(m.layers.iter()) {
        if !valid_digest(&d.digest) {
            return Err(RegistryError::Invalid(format!(
                "{what} from registry {registry}: unsupported or malformed digest {:?}",
                d.digest
            )));
        }
    }
    for l in &m.layers {
        if l.media_type.contains("foreign") || l.media_type.contains("nondistributable") {
            return Err(RegistryError::Invalid(format!(
                "{what} from registry {registry}: layer {} is a foreign layer ({}), which tether does not fetch",
                l.digest, l.media_type
            )));
        }
    }
    if config.size < 0 || config.size as u64 > MAX_METADATA_BYTES {
        return Err(RegistryError::Invalid(format!(
            "{what} from registry {registry}: config size {} out of range",
            config.size
        )));
    }
    let mut config_bytes = Vec::new();
    client
        .pull_blob(&oref, &config, &mut config_bytes)
        .await
        .map_err(|e| classify(e, &what, &registry))?;
    let got = sha256_digest(&config_bytes);
    if got != config.digest {
        return Err(RegistryError::Invalid(format!(
            "{what} from registry {registry}: config verification failed: {} hashes to {got}",
            config.digest
        )));
    }
    let parsed = crate::load::parse_config(&config_bytes, &format!("image config {got}"))?;
    if parsed.diff_ids.len() != m.layers.len() {
        return Err(RegistryError::Invalid(format!(
            "{what} from registry {registry}: the manifest lists {} layers but the config has {} diff IDs",
            m.layers.len(),
            parsed.diff_ids.len()
        )));
    }
    Ok(PullPlan {
        reference: r.clone(),
        oref,
        client,
        registry,
        digest: top_digest,
        config_bytes,
        diff_ids: parsed.diff_ids,
        layers: m.layers,
    })
}

/// Reads the bytes a download task sends; an `Err` item breaks the stream.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Fetches one layer and unpacks it into a temp dir as it streams in.
async fn fetch_layer(
    plan: Arc<PullPlanShared>,
    index: usize,
    store: Arc<ImageStore>,
    tx: ProgressTx,
) -> Result<FetchedLayer, RegistryError> {
    let desc = &plan.layers[index];
    let diff_id = plan.diff_ids[index].clone();
    let id = short(&desc.digest);
    let at = format!("{} from registry {}", plan.what, plan.registry);
    let mut stream = plan
        .client
        .pull_blob_stream(&plan.oref, desc)
        .await
        .map_err(|e| classify(e, &plan.what, &plan.registry))?;
    let total = stream
        .content_length
        .or((desc.size > 0).then_some(desc.size as u64));
    let (ctx, crx) = mpsc::channel::<Result<Bytes, String>>(LAYER_CHUNKS_QUEUED);
    let what = format!("layer {}", desc.digest);
    let st = store.clone();
    let unpack = tokio::task::spawn_blocking(move || {
        st.unpack_blob_to_temp(
            ChannelReader {
                rx: crx,
                cur: Bytes::new(),
            },
            &what,
        )
    });
    let mut got = 0u64;
    let mut last = Instant::now() - Duration::from_secs(1);
    let mut transfer_err = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => {
                got += b.len() as u64;
                if last.elapsed() >= Duration::from_millis(100) {
                    last = Instant::now();
                    layer_bar(&tx, &id, "Downloading", got, total);
                }
                if ctx.send(Ok(b)).await.is_err() {
                    break; // the unpacker stopped: its error tells why
                }
            }
            Err(e) => {
                let msg = format!(
                    "{at}: transfer of layer {} interrupted: {}",
                    desc.digest,
                    chain(&e)
                );
                let _ = ctx.send(Err(msg.clone())).await;
                transfer_err = Some(RegistryError::Unreachable(msg));
                break;
            }
        }
    }
    drop(ctx);
    let res = unpack.await.map_err(|e| {
        RegistryError::Invalid(format!("{at}: unpacking layer {}: {e}", desc.digest))
    })?;
    if let Some(e) = transfer_err {
        return Err(e);
    }
    let (tmp, stats, rec) = res.map_err(|e| match e {
        ImageError::Io { .. } => RegistryError::Image(e),
        other => RegistryError::Invalid(format!("{at}: {other}")),
    })?;
    layer_bar(&tx, &id, "Downloading", rec.size, total);
    layer_status(&tx, &id, "Verifying Checksum");
    if rec.digest != desc.digest {
        return Err(RegistryError::Invalid(format!(
            "{at}: filesystem layer verification failed for digest {}: the content hashes to {}",
            desc.digest, rec.digest
        )));
    }
    if stats.diff_id != diff_id {
        return Err(RegistryError::Invalid(format!(
            "{at}: layer {} has diff ID {} but the image config says {diff_id}",
            desc.digest, stats.diff_id
        )));
    }
    layer_status(&tx, &id, "Download complete");
    layer_bar(&tx, &id, "Extracting", rec.size, Some(rec.size));
    Ok((tmp, stats, rec))
}

/// A fetched, verified layer, unpacked in its temp dir, with its kept blob's record.
type FetchedLayer = (TempDir, LayerStats, BlobRecord);

/// The parts of a plan the layer tasks share.
struct PullPlanShared {
    client: Arc<Client>,
    oref: oci_client::Reference,
    registry: String,
    what: String,
    layers: Vec<OciDescriptor>,
    diff_ids: Vec<String>,
}

/// Second half of a pull: fetches the layers not in the store (several at a
/// time, unpacking as they stream in), verifies each, and only then adds
/// layers, image and name to `store` in one step. Progress goes to `tx` as
/// Docker's JSON messages, ending with `Digest: sha256:...` and
/// `Status: Downloaded newer image for NAME` (or `Image is up to date`).
///
/// # Errors
/// As [`prepare_pull`], plus [`RegistryError::Invalid`] for a layer whose
/// digest or diff ID does not match, [`RegistryError::Unreachable`] for a
/// broken transfer and [`RegistryError::Image`]; the store is left as it was.
pub async fn run_pull(
    plan: PullPlan,
    store: Arc<ImageStore>,
    tx: &ProgressTx,
) -> Result<PullOutcome, RegistryError> {
    let r = plan.reference.clone();
    let shown = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_else(|| crate::DEFAULT_TAG.to_string());
    send(
        tx,
        json!({"status": format!("Pulling from {}", r.path), "id": shown}),
    );
    let shared = Arc::new(PullPlanShared {
        client: plan.client.clone(),
        oref: plan.oref.clone(),
        registry: plan.registry.clone(),
        what: format!("pulling {}", r.familiar()),
        layers: plan.layers.clone(),
        diff_ids: plan.diff_ids.clone(),
    });
    let mut todo = Vec::new();
    for (i, (desc, diff_id)) in plan.layers.iter().zip(&plan.diff_ids).enumerate() {
        let id = short(&desc.digest);
        if store.layer_present(diff_id) || plan.diff_ids[..i].contains(diff_id) {
            layer_status(tx, &id, "Already exists");
        } else {
            layer_status(tx, &id, "Pulling fs layer");
            todo.push(i);
        }
    }
    // Layers beyond the first few wait for a download slot, as docker shows.
    for &i in todo.iter().skip(MAX_CONCURRENT_LAYERS) {
        layer_status(tx, &short(&plan.layers[i].digest), "Waiting");
    }
    // Unordered: a layer that is done frees its slot for the next one at once, while an
    // earlier, larger or slower one still streams (ordered buffering would keep the slot
    // until every layer before it is done).
    let mut results: Vec<(usize, Result<FetchedLayer, RegistryError>)> =
        futures::stream::iter(todo.iter().copied().map(|i| {
            let (sh, st, t) = (shared.clone(), store.clone(), tx.clone());
            async move {
                let res = fetch_layer(sh.clone(), i, st, t.clone()).await;
                if res.is_ok() {
                    layer_status(&t, &short(&sh.layers[i].digest), "Pull complete");
                }
                (i, res)
            }
        }))
        .buffer_unordered(MAX_CONCURRENT_LAYERS)
        .collect()
        .await;
    // Manifest order, so that the error reported is the first failed layer's.
    results.sort_by_key(|(i, _)| *i);
    let mut layers = Vec::new();
    for (_, r) in results {
        layers.push(r?);
    }
    let id = plan.image_id();
    let st = store.clone();
    let cfg = plan.config_bytes.clone();
    let tag = r.tag.is_some().then(|| r.clone());
    let repo_digest = format!("{}@{}", r.name(), plan.digest);
    let downloaded = tokio::task::spawn_blocking(move || {
        st.commit_pull(&cfg, layers, tag.as_ref(), &repo_digest)
    })
    .await
    .map_err(|e| RegistryError::Invalid(format!("committing the pulled image: {e}")))??;
    status(tx, format!("Digest: {}", plan.digest));
    status(
        tx,
        if downloaded {
            format!("Status: Downloaded newer image for {}", r.familiar())
        } else {
            format!("Status: Image is up to date for {}", r.familiar())
        },
    );
    tracing::info!(reference = %r.familiar(), %id, digest = %plan.digest, "pulled image");
    Ok(PullOutcome {
        id,
        digest: plan.digest,
        downloaded,
    })
}

/// The tags of `reference`'s repository (`GET /v2/<name>/tags/list`, every
/// page), sorted; for `pull --all-tags`.
///
/// # Errors
/// As [`prepare_pull`].
pub async fn list_tags(
    reference: &Reference,
    auth: &AuthConfig,
) -> Result<Vec<String>, RegistryError> {
    let r = reference.clone().with_default_tag();
    let oref = oci_ref(&r, None);
    let registry = oref.resolve_registry().to_string();
    let what = format!("listing the tags of {}", r.familiar_name());
    let client = client_for(&registry)?;
    let rauth = auth.registry_auth();
    let mut tags: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    // Bounded: 100 pages of 1000 tags.
    for _ in 0..100 {
        let page = client
            .list_tags(&oref, &rauth, Some(1000), last.as_deref())
            .await
            .map_err(|e| classify(e, &what, &registry))?;
        let n = page.tags.len();
        last = page.tags.last().cloned();
        tags.extend(page.tags);
        if n < 1000 {
            break;
        }
    }
    tags.sort();
    tags.dedup();
    if tags.is_empty() {
        return Err(RegistryError::NotFound(format!(
            "{what} from registry {registry}: the repository has no tags"
        )));
    }
    Ok(tags)
}

/// [`prepare_pull`] then [`run_pull`].
///
/// # Errors
/// As those two.
pub async fn pull(
    store: Arc<ImageStore>,
    reference: &Reference,
    platform: Option<&str>,
    auth: &AuthConfig,
    tx: &ProgressTx,
) -> Result<PullOutcome, RegistryError> {
    let plan = prepare_pull(reference, platform, auth).await?;
    run_pull(plan, store, tx).await
}

impl ImageStore {
    /// Adds a pulled image: its verified temp layers, the config, the tag and
    /// the repo digest (`name@sha256:...`), under the write lock. Returns false
    /// when the tag (or, for a digest pull, the digest) already named this image.
    fn commit_pull(
        &self,
        config_bytes: &[u8],
        layers: Vec<(TempDir, LayerStats, BlobRecord)>,
        tag: Option<&Reference>,
        repo_digest: &str,
    ) -> Result<bool, ImageError> {
        let _w = self.lock_write();
        let res = self.commit_pull_locked(config_bytes, layers, tag, repo_digest);
        if res.is_err() {
            self.gc_after_failure();
        }
        res
    }

    fn commit_pull_locked(
        &self,
        config_bytes: &[u8],
        layers: Vec<(TempDir, LayerStats, BlobRecord)>,
        tag: Option<&Reference>,
        repo_digest: &str,
    ) -> Result<bool, ImageError> {
        let id = sha256_digest(config_bytes);
        let parsed = crate::load::parse_config(config_bytes, &format!("image config {id}"))?;
        for (tmp, stats, _) in layers {
            self.commit_layer(tmp, stats.diff_id, stats.size)?;
        }
        let mut size = 0;
        for d in &parsed.diff_ids {
            if !self.layer_present(d) {
                return Err(ImageError::Conflict(format!(
                    "layer {d} was removed while image {id} was being pulled; pull again"
                )));
            }
            size += self.layer_size(d).unwrap_or(0);
        }
        let was = {
            let st = self.lock_state();
            st.images.contains_key(&id)
                && match tag {
                    Some(t) => st.repos.tags.get(&t.full()) == Some(&id),
                    None => st.repos.digests.get(repo_digest) == Some(&id),
                }
        };
        let image = Image {
            id: id.clone(),
            repo_tags: Vec::new(),
            created: parsed.created,
            size,
            config: parsed.config,
            diff_ids: parsed.diff_ids,
            parent: None,
            history: parsed.history,
        };
        let tags: Vec<Reference> = tag.cloned().into_iter().collect();
        self.commit_loaded_image(&id, image, parsed.meta, config_bytes, &tags)?;
        self.add_repo_digest(repo_digest, &id)?;
        Ok(!was)
    }

    /// Repositories (paths, e.g. `a` or `library/x`) of `target`'s registry,
    /// other than `target`'s own, that an image with layer `diff_id` was
    /// pulled from or pushed to (its repo digests), at most three: candidates
    /// for a cross-repository blob mount (as moby's v2 metadata service keeps).
    fn mount_sources(&self, diff_id: &str, target: &Reference) -> Vec<String> {
        let st = self.lock_state();
        let mut out: Vec<String> = Vec::new();
        for (rd, id) in &st.repos.digests {
            let Some((repo, _)) = rd.rsplit_once('@') else {
                continue;
            };
            let Some((domain, path)) = repo.split_once('/') else {
                continue;
            };
            if domain != target.domain || path == target.path || out.iter().any(|o| o == path) {
                continue;
            }
            let has = st
                .images
                .get(id)
                .is_some_and(|rec| rec.image.diff_ids.iter().any(|d| d == diff_id));
            if has {
                out.push(path.to_string());
                if out.len() == 3 {
                    break;
                }
            }
        }
        out
    }

    /// Records `name@sha256:...` (a manifest digest in a registry) as naming image `id`.
    fn add_repo_digest(&self, repo_digest: &str, id: &str) -> Result<(), ImageError> {
        let mut st = self.lock_state();
        if st.repos.digests.get(repo_digest).map(String::as_str) == Some(id) {
            return Ok(());
        }
        let mut repos = st.repos.clone();
        repos
            .digests
            .insert(repo_digest.to_string(), id.to_string());
        self.persist_repos(&repos)?;
        st.repos = repos;
        Ok(())
    }
}

/// The result of a push.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    /// The tag pushed.
    pub tag: String,
    /// Digest of the manifest pushed.
    pub digest: String,
    /// Length of the manifest in bytes.
    pub size: usize,
}

/// Manifest v2 schema 2 descriptor.
#[derive(Serialize, Clone)]
struct Desc {
    #[serde(rename = "mediaType")]
    media_type: String,
    size: u64,
    digest: String,
}

/// A layer blob ready to upload: the kept file, or a gzip made of a plain one.
struct PushBlob {
    path: std::path::PathBuf,
    desc: Desc,
    _tmp: Option<TempDir>,
}

impl ImageStore {
    /// The gzip blob of layer `diff_id` for a push: the kept blob when it is
    /// gzip, else (plain tar, zstd) a gzip of the uncompressed layer written to
    /// a temp dir (deterministic, so a second push sends the same digest; the
    /// diff ID, hence the image config and ID, stay the same).
    fn push_blob_of(&self, diff_id: &str) -> Result<PushBlob, ImageError> {
        let dir = self.layer_dir(diff_id);
        let rec = blob::read_record(&dir).ok_or_else(|| {
            ImageError::NotFound(format!(
                "layer {diff_id} has no stored blob (it entered the store before tether kept layer blobs); import or pull the image again to push it"
            ))
        })?;
        let path = dir.join(blob::BLOB_FILE);
        if rec.is_gzip() {
            return Ok(PushBlob {
                path,
                desc: Desc {
                    media_type: blob::MT_DOCKER_LAYER_GZIP.to_string(),
                    size: rec.size,
                    digest: rec.digest,
                },
                _tmp: None,
            });
        }
        let tmp = TempDir::new_in(&self.tmp_dir())?;
        let out = tmp.path().join("layer.tar.gz");
        let src =
            std::fs::File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
        let f =
            std::fs::File::create(&out).map_err(io_err(format!("creating {}", out.display())))?;
        let hw = crate::fsutil::HashingWriter::new(io::BufWriter::new(f));
        let mut gz = flate2::GzBuilder::new().write(hw, flate2::Compression::fast());
        // Plain or zstd: the uncompressed stream (the diff ID's bytes) gzip'd.
        let mut plain =
            crate::unpack::decompress(io::BufReader::new(src), &format!("layer {diff_id}"))?;
        io::copy(&mut plain, &mut gz).map_err(io_err(format!("compressing {}", path.display())))?;
        let hw = gz
            .finish()
            .map_err(io_err(format!("compressing {}", path.display())))?;
        let (digest, size) = hw
            .finish()
            .map_err(io_err(format!("writing {}", out.display())))?;
        Ok(PushBlob {
            path: out,
            desc: Desc {
                media_type: blob::MT_DOCKER_LAYER_GZIP.to_string(),
                size,
                digest,
            },
            _tmp: Some(tmp),
        })
    }

    /// The stored config bytes of image `id`.
    fn config_bytes(&self, id: &str) -> Result<Vec<u8>, ImageError> {
        let p = self
            .images_dir()
            .join(id.strip_prefix("sha256:").unwrap_or(id))
            .join("config.json");
        crate::fsutil::read_limited(&p, MAX_METADATA_BYTES)
    }
}

/// Reads a file as a stream of chunks for an upload, reporting progress.
fn file_stream(
    path: std::path::PathBuf,
    tx: ProgressTx,
    id: String,
    total: u64,
) -> impl futures::Stream<Item = Result<Bytes, OciDistributionError>> + Send + 'static {
    use tokio::io::AsyncReadExt;
    let state = (None::<tokio::fs::File>, path, 0u64, Instant::now());
    futures::stream::unfold(state, move |(file, path, sent, last)| {
        let tx = tx.clone();
        let id = id.clone();
        async move {
            let mut f = match file {
                Some(f) => f,
                None => match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => return Some((Err(e.into()), (None, path, sent, last))),
                },
            };
            let mut buf = vec![0u8; 4 << 20];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    let sent = sent + n as u64;
                    let mut last = last;
                    if last.elapsed() >= Duration::from_millis(100) || sent == total {
                        last = Instant::now();
                        layer_bar(&tx, &id, "Pushing", sent, Some(total));
                    }
                    Some((Ok(Bytes::from(buf)), (Some(f), path, sent, last)))
                }
                Err(e) => Some((Err(e.into()), (Some(f), path, sent, last))),
            }
        }
    })
}

/// `docker push`: uploads the layers, the config and a Docker v2 schema 2
/// manifest of the local image `reference` (default tag `latest`) to its
/// registry, skipping blobs the registry already has ("Layer already
/// exists"). Progress: `The push refers to repository [NAME]`, per layer
/// (short diff ID) `Preparing`, `Pushing`, `Pushed`, then
/// `TAG: digest: sha256:... size: N` and an `aux` message
/// `{"Tag","Digest","Size"}` (Docker Engine API `POST /images/{name}/push`).
///
/// # Errors
/// [`RegistryError::NotFound`] when no local image has that name,
/// [`RegistryError::BadRequest`] for a digest reference, and the registry
/// errors of [`prepare_pull`].
pub async fn push(
    store: Arc<ImageStore>,
    reference: &Reference,
    auth: &AuthConfig,
    tx: &ProgressTx,
) -> Result<PushOutcome, RegistryError> {
    if reference.digest.is_some() {
        return Err(RegistryError::BadRequest(format!(
            "cannot push a digest reference ({}): push a tag",
            reference.familiar()
        )));
    }
    let r = reference.clone().with_default_tag();
    let tag = r
        .tag
        .clone()
        .unwrap_or_else(|| crate::DEFAULT_TAG.to_string());
    let image = store.get(&r.full()).map_err(|e| match e {
        ImageError::NotFound(_) => RegistryError::NotFound(format!(
            "An image does not exist locally with the tag: {}",
            r.familiar()
        )),
        other => RegistryError::Image(other),
    })?;
    let oref = oci_ref(&r, None);
    let registry = oref.resolve_registry().to_string();
    let what = format!("pushing {}", r.familiar());
    let client = Arc::new(client_for(&registry)?);
    let rauth = auth.registry_auth();
    client.store_auth_if_needed(&registry, &rauth).await;
    status(
        tx,
        format!("The push refers to repository [{}]", r.familiar_name()),
    );
    let ids: Vec<String> = image.diff_ids.iter().map(|d| short(d)).collect();
    for id in ids.iter().rev() {
        layer_status(tx, id, "Preparing");
    }
    let mut blobs = Vec::new();
    for d in &image.diff_ids {
        let st = store.clone();
        let d = d.clone();
        let b = tokio::task::spawn_blocking(move || st.push_blob_of(&d))
            .await
            .map_err(|e| RegistryError::Invalid(format!("{what}: {e}")))??;
        blobs.push(b);
    }
    let jobs: Vec<(std::path::PathBuf, Desc, String, Vec<String>)> = blobs
        .iter()
        .zip(ids.iter())
        .zip(image.diff_ids.iter())
        .map(|((b, id), d)| {
            let sources = store.mount_sources(d, &r);
            (b.path.clone(), b.desc.clone(), id.clone(), sources)
        })
        .collect();
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(path, desc, id, sources)| {
            let (client, oref, tx) = (client.clone(), oref.clone(), tx.clone());
            let (what, registry) = (what.clone(), registry.clone());
            async move {
                let exists = client
                    .blob_exists(&oref, &desc.digest)
                    .await
                    .map_err(|e| classify(e, &what, &registry))?;
                if exists {
                    layer_status(&tx, &id, "Layer already exists");
                    return Ok::<(), RegistryError>(());
                }
                // Cross-repository mount from a repository of the same registry
                // known to hold the blob; any failure (a registry that starts an
                // upload instead, a token without pull access there) falls back
                // to uploading it.
                for from in &sources {
                    let src = oci_client::Reference::with_tag(
                        oref.registry().to_string(),
                        from.clone(),
                        crate::DEFAULT_TAG.to_string(),
                    );
                    match client.mount_blob(&oref, &src, &desc.digest).await {
                        Ok(()) => {
                            layer_status(&tx, &id, &format!("Mounted from {from}"));
                            return Ok(());
                        }
                        Err(e) => tracing::debug!(
                            digest = %desc.digest, %from, error = %e,
                            "cross-repository mount refused; uploading"
                        ),
                    }
                }
                let s = file_stream(path, tx.clone(), id.clone(), desc.size);
                client
                    .push_blob_stream(&oref, s, &desc.digest, Some(desc.size))
                    .await
                    .map_err(|e| classify(e, &what, &registry))?;
                layer_status(&tx, &id, "Pushed");
                Ok(())
            }
        })
        .collect();
    let results: Vec<Result<(), RegistryError>> = futures::stream::iter(tasks)
        .buffer_unordered(MAX_CONCURRENT_LAYERS)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let cfg = store.config_bytes(&image.id)?;
    let cfg_desc = Desc {
        media_type: MT_DOCKER_CONFIG.to_string(),
        size: cfg.len() as u64,
        digest: image.id.clone(),
    };
    let exists = client
        .blob_exists(&oref, &cfg_desc.digest)
        .await
        .map_err(|e| classify(e, &what, &registry))?;
    if !exists {
        client
            .push_blob(&oref, cfg, &cfg_desc.digest)
            .await
            .map_err(|e| classify(e, &what, &registry))?;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MT_DOCKER_MANIFEST,
        "config": cfg_desc,
        "layers": blobs.iter().map(|b| b.desc.clone()).collect::<Vec<_>>(),
    });
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| RegistryError::Invalid(format!("{what}: encoding the manifest: {e}")))?;
    let digest = sha256_digest(&body);
    let size = body.len();
    let ct = reqwest::header::HeaderValue::from_static(MT_DOCKER_MANIFEST);
    client
        .push_manifest_raw(&oref, body, ct)
        .await
        .map_err(|e| classify(e, &what, &registry))?;
    store.add_repo_digest(&format!("{}@{digest}", r.name()), &image.id)?;
    status(tx, format!("{tag}: digest: {digest} size: {size}"));
    send(
        tx,
        json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}}),
    );
    tracing::info!(reference = %r.familiar(), %digest, "pushed image");
    Ok(PushOutcome { tag, digest, size })
}

/// `POST /auth`: checks credentials against `server`'s `/v2/` (HTTP basic,
/// or the bearer token dance of the Docker token spec when the registry
/// answers with a `Bearer` challenge). `server` may be `host[:port]` or a URL;
/// empty means Docker Hub. Returns `Login Succeeded`.
///
/// # Errors
/// [`RegistryError::Denied`] for refused credentials (`login attempt to
/// URL failed with status: 401 Unauthorized`), [`RegistryError::Unreachable`].
pub async fn check_auth(auth: &AuthConfig) -> Result<String, RegistryError> {
    install_crypto();
    let server = normalize_server(&auth.server_address);
    let scheme = if is_insecure(&server) {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{server}/v2/");
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| RegistryError::Unreachable(format!("{url}: {}", chain(&e))))?;
    let unreachable = |e: reqwest::Error| {
        RegistryError::Unreachable(format!(
            "login to {server}: cannot reach {url}: {}",
            chain(&e)
        ))
    };
    let res = http
        .get(&url)
        .basic_auth(&auth.username, Some(&auth.password))
        .send()
        .await
        .map_err(unreachable)?;
    let st = res.status();
    if st.is_success() {
        return Ok("Login Succeeded".into());
    }
    let challenge = res
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if st == reqwest::StatusCode::UNAUTHORIZED && challenge.to_lowercase().starts_with("bearer") {
        let param = |k: &str| {
            challenge
                .split([',', ' '])
                .filter_map(|p| p.split_once('='))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(k))
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        };
        if let Some(realm) = param("realm") {
            let mut q = vec![("account", auth.username.clone())];
            if let Some(s) = param("service") {
                q.push(("service", s));
            }
            let tr = http
                .get(&realm)
                .query(&q)
                .basic_auth(&auth.username, Some(&auth.password))
                .send()
                .await
                .map_err(unreachable)?;
            if tr.status().is_success() {
                return Ok("Login Succeeded".into());
            }
            return Err(RegistryError::Denied(format!(
                "login attempt to {url} failed with status: {}",
                tr.status()
            )));
        }
    }
    Err(RegistryError::Denied(format!(
        "login attempt to {url} failed with status: {st}"
    )))
}

/// `https://index.docker.io/v1/`, `http://h:p/`, `h:p` -> `h:p`
/// (Docker Hub's names -> `index.docker.io`).
pub fn normalize_server(s: &str) -> String {
    let t = s
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = t.split('/').next().unwrap_or("").to_string();
    if host.is_empty() || host == "docker.io" || host == "registry-1.docker.io" {
        "index.docker.io".to_string()
    } else {
        host
    }
}

/// `GET /distribution/{name}/json`: the manifest (or index) descriptor a
/// reference names and the platforms it offers (Docker Engine API
/// `DistributionInspect`): `{"Descriptor":{"mediaType","digest","size"},
/// "Platforms":[{"architecture","os"[,"variant"]}]}`.
///
/// # Errors
/// As [`prepare_pull`].
pub async fn inspect_distribution(
    reference: &Reference,
    auth: &AuthConfig,
) -> Result<Value, RegistryError> {
    let r = reference.clone().with_default_tag();
    let oref = oci_ref(&r, None);
    let registry = oref.resolve_registry().to_string();
    let what = format!("inspecting {}", r.familiar());
    let client = client_for(&registry)?;
    let rauth = auth.registry_auth();
    client.store_auth_if_needed(&registry, &rauth).await;
    let (bytes, digest) = fetch_manifest(&client, &oref, &rauth, &what, &registry).await?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        RegistryError::Invalid(format!(
            "{what} from registry {registry}: manifest is not JSON: {e}"
        ))
    })?;
    let mt = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or(MT_OCI_MANIFEST)
        .to_string();
    let platforms: Vec<Value> = if is_index(&mt, &v) {
        let idx: IndexJson = serde_json::from_value(v).unwrap_or(IndexJson {
            manifests: Vec::new(),
        });
        idx.manifests
            .iter()
            .filter_map(|e| e.platform.clone())
            .map(|p| platform_json(&p.os, &p.architecture, p.variant.as_deref()))
            .collect()
    } else {
        let m: ManifestJson = serde_json::from_value(v).map_err(|e| {
            RegistryError::Invalid(format!(
                "{what} from registry {registry}: bad manifest: {e}"
            ))
        })?;
        let mut out = Vec::new();
        if let Some(c) = m.config {
            let mut buf = Vec::new();
            client
                .pull_blob(&oref, &c, &mut buf)
                .await
                .map_err(|e| classify(e, &what, &registry))?;
            if let Ok(cv) = serde_json::from_slice::<Value>(&buf) {
                let s = |k: &str| cv.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
                out.push(platform_json(
                    &s("os"),
                    &s("architecture"),
                    cv.get("variant").and_then(|x| x.as_str()),
                ));
            }
        }
        out
    };
    Ok(json!({
        "Descriptor": {"mediaType": mt, "digest": digest, "size": bytes.len()},
        "Platforms": platforms,
    }))
}

fn platform_json(os: &str, arch: &str, variant: Option<&str>) -> Value {
    let mut p = json!({"architecture": arch, "os": os});
    if let Some(v) = variant {
        p["variant"] = json!(v);
    }
    p
}

/// One result of a registry search (Docker Engine API `GET /images/search`,
/// the v1 search API's `results[]`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct SearchResult {
    /// Repository name (`library/postgres`, `me/app`).
    #[serde(default)]
    pub name: String,
    /// The repository's description.
    #[serde(default)]
    pub description: String,
    /// Stars.
    #[serde(default)]
    pub star_count: u64,
    /// An official image.
    #[serde(default)]
    pub is_official: bool,
    /// An automated build (deprecated by Docker Hub; kept in the API).
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    results: Vec<SearchResult>,
}

/// Splits a search term into (registry, query) as moby's
/// `splitReposSearchTerm` does: a first component with a `.` or `:`, or
/// `localhost`, names the registry; otherwise the registry is Docker Hub's
/// index (`index.docker.io`) and the term is the query.
pub fn split_search_term(term: &str) -> (String, String) {
    match term.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            (normalize_server(host), rest.to_string())
        }
        _ => ("index.docker.io".to_string(), term.to_string()),
    }
}

/// `GET /images/search?term=`: searches the registry named in `term` (Docker
/// Hub's index by default, see [`split_search_term`]) through the v1 search
/// API, `GET /v1/search?q=QUERY&n=LIMIT`, the only search API registries
/// offer (Docker Distribution 2.8 has none). `limit` is 1..=100 (default 25).
///
/// # Errors
/// [`RegistryError::BadRequest`] for an empty term or a limit out of range;
/// [`RegistryError::NotFound`] when the registry offers no search endpoint
/// (it answers 404/405/501 or something that is not a v1 search answer),
/// naming the registry; [`RegistryError::Denied`], [`RegistryError::Unreachable`].
pub async fn search(
    term: &str,
    limit: Option<u32>,
    auth: &AuthConfig,
) -> Result<Vec<SearchResult>, RegistryError> {
    install_crypto();
    let term = term.trim();
    if term.is_empty() {
        return Err(RegistryError::BadRequest(
            "search needs a term: tether search TERM (e.g. postgres, or HOST:PORT/NAME)".into(),
        ));
    }
    let limit = limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(RegistryError::BadRequest(format!(
            "invalid limit {limit}: the search limit must be between 1 and 100"
        )));
    }
    let (index, query) = split_search_term(term);
    let scheme = if is_insecure(&index) { "http" } else { "https" };
    let url = format!("{scheme}://{index}/v1/search");
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RegistryError::Unreachable(format!("{url}: {}", chain(&e))))?;
    let mut req = http
        .get(&url)
        .query(&[("q", query.as_str()), ("n", &limit.to_string())]);
    if !auth.username.is_empty() {
        req = req.basic_auth(&auth.username, Some(&auth.password));
    }
    let res = req.send().await.map_err(|e| {
        RegistryError::Unreachable(format!(
            "searching registry {index} for {query:?}: cannot reach {url}: {}",
            chain(&e)
        ))
    })?;
    let st = res.status();
    let no_search = |why: String| {
        RegistryError::NotFound(format!(
            "registry {index} offers no search endpoint ({why}): only registries with the v1 search API (GET /v1/search, as Docker Hub's index) can be searched"
        ))
    };
    match st.as_u16() {
        401 | 403 => {
            return Err(RegistryError::Denied(format!(
                "searching registry {index} for {query:?}: access denied ({st}) (log in with `tether login {index}`)"
            )))
        }
        404 | 405 | 501 => return Err(no_search(format!("GET {url} answered {st}"))),
        _ if !st.is_success() => {
            return Err(RegistryError::Invalid(format!(
                "searching registry {index} for {query:?}: GET {url} answered {st}"
            )))
        }
        _ => {}
    }
    let body = res.bytes().await.map_err(|e| {
        RegistryError::Unreachable(format!(
            "searching registry {index} for {query:?}: reading the answer of {url}: {}",
            chain(&e)
        ))
    })?;
    let parsed: SearchResponse = serde_json::from_slice(&body)
        .map_err(|e| no_search(format!("GET {url} did not answer with search results: {e}")))?;
    let mut out = parsed.results;
    out.truncate(limit as usize);
    Ok(out)
}

/// Parses a name for pull/push the way the Docker Engine API gets it
/// (`fromImage` + `tag`, where `tag` may also be a digest).
///
/// # Errors
/// [`ImageError::InvalidReference`].
pub fn reference_from_parts(image: &str, tag: &str) -> Result<Reference, ImageError> {
    let full = if tag.is_empty() {
        image.to_string()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    parse_reference(&full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        assert!(is_insecure("127.0.0.1:5000"));
        assert!(is_insecure("127.1.2.3"));
        assert!(is_insecure("localhost:5000"));
        assert!(is_insecure("[::1]:5000"));
        assert!(!is_insecure("registry.example:5000"));
        assert!(!is_insecure("10.0.0.1:5000"));
        assert!(!is_insecure("index.docker.io"));
    }

    #[test]
    fn auth_header_decoding() {
        let h = base64::engine::general_purpose::URL_SAFE
            .encode(br#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}"#);
        let a = AuthConfig::from_header(&h);
        assert_eq!(a.username, "u");
        assert_eq!(a.password, "p?>");
        assert_eq!(a.server_address, "127.0.0.1:5000");
        assert!(matches!(a.registry_auth(), RegistryAuth::Basic(..)));
        let unpadded = h.trim_end_matches('=');
        assert_eq!(AuthConfig::from_header(unpadded).username, "u");
        assert!(matches!(
            AuthConfig::from_header("").registry_auth(),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            AuthConfig::from_header("!!!").registry_auth(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn platforms_and_sizes() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!(Platform::parse("linux//x").is_err());
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(5_600_000), "5.6MB");
        assert!(progress_bar(50, Some(100)).starts_with("[=========================>"));
        let idx: IndexJson = serde_json::from_value(json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "amd64"}},
        ]}))
        .unwrap();
        let want = Platform::parse("linux/amd64").unwrap();
        assert_eq!(pick_platform(&idx, &want).unwrap().digest, "sha256:b");
        let want = Platform::parse("linux/arm64").unwrap();
        assert_eq!(pick_platform(&idx, &want).unwrap().digest, "sha256:a");
        assert!(pick_platform(&idx, &Platform::parse("linux/s390x").unwrap()).is_none());
    }

    #[test]
    fn search_terms() {
        assert_eq!(
            split_search_term("postgres"),
            ("index.docker.io".into(), "postgres".into())
        );
        assert_eq!(
            split_search_term("me/app"),
            ("index.docker.io".into(), "me/app".into())
        );
        assert_eq!(
            split_search_term("127.0.0.1:5000/tbox"),
            ("127.0.0.1:5000".into(), "tbox".into())
        );
        assert_eq!(
            split_search_term("docker.io/postgres"),
            ("index.docker.io".into(), "postgres".into())
        );
        assert_eq!(
            split_search_term("localhost/x"),
            ("localhost".into(), "x".into())
        );
        let r: SearchResponse = serde_json::from_value(json!({"num_results": 1, "query": "x",
            "results": [{"name": "library/x", "description": "d", "star_count": 3, "is_official": true, "is_trusted": false}]}))
        .unwrap();
        assert_eq!(r.results[0].star_count, 3);
        assert!(r.results[0].is_official && !r.results[0].is_automated);
    }

    #[test]
    fn reference_parts() {
        let r = reference_from_parts("127.0.0.1:5000/tbox", "1").unwrap();
        assert_eq!(r.full(), "127.0.0.1:5000/tbox:1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = reference_from_parts("postgres", &d).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.name(), "docker.io/library/postgres");
        assert_eq!(
            normalize_server("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(normalize_server("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
