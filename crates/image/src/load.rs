//! `docker load`: `docker save` archives (manifest.json; legacy
//! `<id>/layer.tar` or `blobs/sha256/<hex>` layers) and OCI image layouts
//! (oci-layout + index.json + blobs), optionally gzip'd as a whole.
//!
//! Formats: moby `image/tarexport` (manifest.json) and the OCI image-spec
//! `image-layout.md`, `image-index.md`, `manifest.md`.

use crate::fsutil::{io_err, read_limited, sha256_digest, HashingReader, TempDir};
use crate::unpack::{clean_rel, decompress};
use crate::{
    host_arch, parse_reference, valid_digest, HistoryEntry, Image, ImageConfig, ImageError,
    ImageMeta, ImageStore, Reference, MAX_METADATA_BYTES, ZERO_TIME,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Symlinks followed inside the archive before giving up.
const MAX_LINK_HOPS: usize = 40;
/// Nesting of OCI indexes we follow.
const MAX_INDEX_DEPTH: usize = 4;
/// OCI annotation with the full image name (containerd / docker 25+ `docker save`).
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// OCI annotation with the reference name (OCI image-spec annotations.md).
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The archive unpacked into a staging directory. Only regular files are
/// written; symlinks and hard links are kept as a map and resolved on lookup.
struct Staged {
    dir: TempDir,
    files: HashSet<PathBuf>,
    links: HashMap<PathBuf, PathBuf>,
}

fn rel_path(comps: &[std::ffi::OsString]) -> PathBuf {
    comps.iter().collect()
}

impl Staged {
    fn extract<R: Read>(reader: R, tmp_root: &Path) -> Result<Staged, ImageError> {
        let what = "image archive";
        let bad = |e: io::Error| ImageError::BadArchive(format!("{what}: reading tar: {e}"));
        let dir = TempDir::new_in(tmp_root)?;
        let mut files = HashSet::new();
        let mut links = HashMap::new();
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let kind = entry.header().entry_type();
            let raw = entry.path_bytes().into_owned();
            let comps = clean_rel(&raw, what)?;
            if comps.is_empty() {
                continue;
            }
            let rel = rel_path(&comps);
            if kind.is_file() || kind.is_contiguous() {
                let dst = dir.path().join(&rel);
                if let Some(parent) = dst.parent() {
                    fs::create_dir_all(parent)
                        .map_err(io_err(format!("creating {}", parent.display())))?;
                }
                let mut f = fs::File::create(&dst)
                    .map_err(io_err(format!("creating {}", dst.display())))?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(bad(e)),
                    };
                    f.write_all(&buf[..n])
                        .map_err(io_err(format!("writing {}", dst.display())))?;
                }
                links.remove(&rel);
                files.insert(rel);
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let joined = if kind.is_symlink() && !target.starts_with(b"/") {
                    // Relative symlinks resolve against the link's directory.
                    let mut base = rel
                        .parent()
                        .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                        .unwrap_or_default();
                    if !base.is_empty() {
                        base.push(b'/');
                    }
                    base.extend_from_slice(&target);
                    base
                } else {
                    target
                };
                let t = rel_path(&clean_rel(&joined, what)?);
                files.remove(&rel);
                links.insert(rel, t);
            }
        }
        Ok(Staged { dir, files, links })
    }

    /// Path on disk of archive member `name`, following archive links.
    fn lookup(&self, name: &str) -> Result<PathBuf, ImageError> {
        let mut rel = rel_path(&clean_rel(name.as_bytes(), "image archive")?);
        for _ in 0..=MAX_LINK_HOPS {
            if self.files.contains(&rel) {
                return Ok(self.dir.path().join(&rel));
            }
            match self.links.get(&rel) {
                Some(t) => rel = t.clone(),
                None => break,
            }
        }
        Err(ImageError::BadArchive(format!(
            "image archive has no file \"{name}\""
        )))
    }

    fn has(&self, name: &str) -> bool {
        self.lookup(name).is_ok()
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        read_limited(&self.lookup(name)?, MAX_METADATA_BYTES)
    }

    /// Reads blob `digest` and checks its SHA-256.
    fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let bytes = self.read(&blob_path(digest)?)?;
        let got = sha256_digest(&bytes);
        if got != digest {
            return Err(ImageError::BadArchive(format!(
                "blob {digest} has digest {got}"
            )));
        }
        Ok(bytes)
    }
}

/// `blobs/<alg>/<hex>` for a descriptor digest (only sha256 is accepted).
fn blob_path(digest: &str) -> Result<String, ImageError> {
    if !valid_digest(digest) {
        return Err(ImageError::BadArchive(format!(
            "unsupported or malformed digest \"{digest}\": expected sha256:<64 lowercase hex>"
        )));
    }
    Ok(format!("blobs/sha256/{}", &digest[7..]))
}

/// One image to load.
struct LoadItem {
    config_bytes: Vec<u8>,
    /// (archive path of the layer file, expected blob digest for OCI)
    layers: Vec<(String, Option<String>)>,
    tags: Vec<Reference>,
}

/// A manifest.json entry (moby `image/tarexport.manifestItem`).
#[derive(Deserialize)]
struct DockerManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// OCI content descriptor (descriptor.md), the fields we use.
#[derive(Deserialize, Clone)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Clone)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// OCI image index (image-index.md).
#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// OCI / Docker v2 image manifest (manifest.md).
#[derive(Deserialize)]
struct OciManifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, ImageError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ImageError::BadArchive(format!("{what} is not valid: {e}")))
}

fn parse_tags(names: &[String], what: &str) -> Result<Vec<Reference>, ImageError> {
    names
        .iter()
        .map(|n| {
            let r = parse_reference(n).map_err(|e| {
                ImageError::BadArchive(format!("{what}: invalid image name \"{n}\": {e}"))
            })?;
            if r.digest.is_some() {
                return Err(ImageError::BadArchive(format!(
                    "{what}: image name \"{n}\" has a digest; only tags can be loaded"
                )));
            }
            Ok(r.with_default_tag())
        })
        .collect()
}

fn docker_items(staged: &Staged) -> Result<Vec<LoadItem>, ImageError> {
    let manifest = staged.read("manifest.json")?;
    let entries: Vec<DockerManifestItem> = parse_json(&manifest, "manifest.json")?;
    let mut items = Vec::new();
    for e in entries {
        items.push(LoadItem {
            config_bytes: staged.read(&e.config)?,
            layers: e.layers.into_iter().map(|l| (l, None)).collect(),
            tags: parse_tags(&e.repo_tags.unwrap_or_default(), "manifest.json")?,
        });
    }
    Ok(items)
}

fn is_index_media_type(mt: &str) -> bool {
    mt == "application/vnd.oci.image.index.v1+json"
        || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

fn oci_items(staged: &Staged) -> Result<Vec<LoadItem>, ImageError> {
    let index_bytes = staged.read("index.json")?;
    let index: OciIndex = parse_json(&index_bytes, "index.json")?;
    let mut items = Vec::new();
    for desc in &index.manifests {
        let ann = desc.annotations.clone().unwrap_or_default();
        let name = ann.get(ANNOTATION_CONTAINERD_NAME).cloned().or_else(|| {
            // A bare tag ("latest") names no repository: leave untagged.
            ann.get(ANNOTATION_REF_NAME)
                .filter(|n| n.contains([':', '/']))
                .cloned()
        });
        let tags = parse_tags(&name.into_iter().collect::<Vec<_>>(), "index.json")?;
        let manifest = resolve_manifest(staged, desc, 0)?;
        let config_bytes = staged.read_blob(&manifest.config.digest)?;
        let mut layers = Vec::new();
        for l in &manifest.layers {
            layers.push((blob_path(&l.digest)?, Some(l.digest.clone())));
        }
        items.push(LoadItem {
            config_bytes,
            layers,
            tags,
        });
    }
    Ok(items)
}

/// Follows indexes down to an image manifest for this platform (linux/host arch).
fn resolve_manifest(
    staged: &Staged,
    desc: &Descriptor,
    depth: usize,
) -> Result<OciManifest, ImageError> {
    if depth > MAX_INDEX_DEPTH {
        return Err(ImageError::BadArchive(format!(
            "image indexes nested deeper than {MAX_INDEX_DEPTH} at {}",
            desc.digest
        )));
    }
    let bytes = staged.read_blob(&desc.digest)?;
    let what = format!("manifest {}", desc.digest);
    let v: serde_json::Value = parse_json(&bytes, &what)?;
    let mt = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or(&desc.media_type)
        .to_string();
    if is_index_media_type(&mt)
        || is_index_media_type(&desc.media_type)
        || v.get("manifests").is_some()
    {
        let idx: OciIndex = parse_json(&bytes, &what)?;
        let arch = host_arch();
        let pick = idx
            .manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .or_else(|| idx.manifests.iter().find(|d| d.platform.is_none()))
            .or(if idx.manifests.len() == 1 {
                idx.manifests.first()
            } else {
                None
            })
            .ok_or_else(|| {
                ImageError::BadArchive(format!(
                    "index {} has no manifest for linux/{arch}",
                    desc.digest
                ))
            })?;
        return resolve_manifest(staged, pick, depth + 1);
    }
    parse_json(&bytes, &what)
}

/// What we need from an image config (OCI image-spec config.md / Docker image JSON).
pub(crate) struct ParsedConfig {
    pub(crate) config: ImageConfig,
    pub(crate) created: String,
    pub(crate) diff_ids: Vec<String>,
    pub(crate) meta: ImageMeta,
    pub(crate) history: Vec<HistoryEntry>,
}

fn str_list(v: Option<&serde_json::Value>) -> Option<Vec<String>> {
    v.and_then(|x| x.as_array()).map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    })
}

fn str_field(
    obj: Option<&serde_json::Map<String, serde_json::Value>>,
    key: &str,
) -> Option<String> {
    obj.and_then(|o| o.get(key))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

pub(crate) fn parse_config(bytes: &[u8], what: &str) -> Result<ParsedConfig, ImageError> {
    let v: serde_json::Value = parse_json(bytes, what)?;
    let root = v
        .as_object()
        .ok_or_else(|| ImageError::BadArchive(format!("{what} is not a JSON object")))?;
    let diff_ids = root
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| d.as_array())
        .ok_or_else(|| ImageError::BadArchive(format!("{what} has no rootfs.diff_ids array")))?
        .iter()
        .map(|d| match d.as_str() {
            Some(s) if valid_digest(s) => Ok(s.to_string()),
            _ => Err(ImageError::BadArchive(format!(
                "{what}: rootfs.diff_ids entry {d} is not sha256:<64 lowercase hex>"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let c = root.get("config").and_then(|c| c.as_object());
    let config = ImageConfig {
        cmd: str_list(c.and_then(|c| c.get("Cmd"))),
        entrypoint: str_list(c.and_then(|c| c.get("Entrypoint"))),
        env: str_list(c.and_then(|c| c.get("Env"))).unwrap_or_default(),
        working_dir: str_field(c, "WorkingDir").unwrap_or_default(),
        exposed_ports: c
            .and_then(|c| c.get("ExposedPorts"))
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default(),
        user: str_field(c, "User").unwrap_or_default(),
        labels: c
            .and_then(|c| c.get("Labels"))
            .and_then(|l| l.as_object())
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
        stop_signal: str_field(c, "StopSignal").filter(|s| !s.is_empty()),
        volumes: c
            .and_then(|c| c.get("Volumes"))
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default(),
        healthcheck: c
            .and_then(|c| c.get("Healthcheck"))
            .filter(|h| h.is_object())
            .map(crate::HealthConfig::from_json),
        shell: str_list(c.and_then(|c| c.get("Shell"))).filter(|s| !s.is_empty()),
        on_build: str_list(c.and_then(|c| c.get("OnBuild"))).unwrap_or_default(),
    };
    let history = parse_history(root.get("history"));
    let meta = ImageMeta {
        comment: str_field(Some(root), "comment"),
        author: str_field(Some(root), "author"),
        architecture: str_field(Some(root), "architecture")
            .unwrap_or_else(|| host_arch().to_string()),
        os: str_field(Some(root), "os").unwrap_or_else(|| "linux".to_string()),
        variant: str_field(Some(root), "variant"),
    };
    Ok(ParsedConfig {
        config,
        created: str_field(Some(root), "created").unwrap_or_else(|| ZERO_TIME.to_string()),
        diff_ids,
        meta,
        history,
    })
}

/// The image config's `history` array; entries that are not objects are
/// skipped, odd field types read as absent.
pub(crate) fn parse_history(v: Option<&serde_json::Value>) -> Vec<HistoryEntry> {
    let Some(arr) = v.and_then(|h| h.as_array()) else {
        return Vec::new();
    };
    arr.iter()
        .filter_map(|e| e.as_object())
        .map(|o| HistoryEntry {
            created: str_field(Some(o), "created"),
            created_by: str_field(Some(o), "created_by"),
            author: str_field(Some(o), "author"),
            comment: str_field(Some(o), "comment"),
            empty_layer: o
                .get("empty_layer")
                .and_then(|b| b.as_bool())
                .unwrap_or(false),
        })
        .collect()
}

impl ImageStore {
    /// `docker load`: reads a `docker save` archive (manifest.json with
    /// `<id>/layer.tar` or `blobs/sha256/<hex>` layers) or an OCI image layout
    /// (index.json + blobs, layers plain or gzip), the whole archive optionally
    /// gzip'd. Layers already present are not unpacked again.
    ///
    /// The image ID is the SHA-256 of the archive's config JSON; each layer's
    /// diff ID must match the config's `rootfs.diff_ids` (and OCI blobs their
    /// descriptor digests). Names come from manifest.json `RepoTags`, or the
    /// OCI annotations `io.containerd.image.name` /
    /// `org.opencontainers.image.ref.name` (when it is a full name, not a bare tag).
    ///
    /// Returns the lines `docker load` prints: `Loaded image: tbox:latest` per
    /// tag, `Loaded image ID: sha256:<hex>` for an untagged image, preceded by
    /// `The image tbox:latest already exists, renaming the old one with ID
    /// sha256:... to empty string` when a tag moves.
    ///
    /// # Errors
    /// [`ImageError::BadArchive`] for malformed archives, missing files,
    /// digest/diff ID mismatches, unsupported compression; [`ImageError::Io`].
    pub fn load<R: Read>(&self, archive: R) -> Result<Vec<String>, ImageError> {
        let _w = self.lock_write();
        let res = self.load_locked(archive);
        if res.is_err() {
            self.gc_after_failure();
        }
        res
    }

    fn load_locked<R: Read>(&self, archive: R) -> Result<Vec<String>, ImageError> {
        let stream = decompress(archive, "image archive")?;
        let staged = Staged::extract(stream, &self.tmp_dir())?;
        let items = if staged.has("manifest.json") {
            docker_items(&staged)?
        } else if staged.has("index.json") {
            oci_items(&staged)?
        } else {
            return Err(ImageError::BadArchive(
                "image archive has neither manifest.json (docker save format) nor index.json (OCI image layout)".to_string(),
            ));
        };
        if items.is_empty() {
            return Err(ImageError::BadArchive(
                "image archive lists no images".to_string(),
            ));
        }
        let mut lines = Vec::new();
        for item in items {
            let id = sha256_digest(&item.config_bytes);
            let what = format!("image config {id}");
            let parsed = parse_config(&item.config_bytes, &what)?;
            if parsed.diff_ids.len() != item.layers.len() {
                return Err(ImageError::BadArchive(format!(
                    "image {id}: the manifest lists {} layers but the config has {} diff IDs",
                    item.layers.len(),
                    parsed.diff_ids.len()
                )));
            }
            let mut size = 0u64;
            for (i, ((path, blob), diff_id)) in item.layers.iter().zip(&parsed.diff_ids).enumerate()
            {
                if !self.layer_present(diff_id) {
                    self.load_layer(&staged, i, path, blob.as_deref(), diff_id)?;
                }
                size += self.layer_size(diff_id).unwrap_or(0);
            }
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
            lines.extend(self.commit_loaded_image(
                &id,
                image,
                parsed.meta,
                &item.config_bytes,
                &item.tags,
            )?);
            if item.tags.is_empty() {
                lines.push(format!("Loaded image ID: {id}"));
            }
            for t in &item.tags {
                lines.push(format!("Loaded image: {}", t.familiar()));
            }
            tracing::info!(%id, tags = item.tags.len(), "loaded image");
        }
        Ok(lines)
    }

    fn load_layer(
        &self,
        staged: &Staged,
        index: usize,
        path: &str,
        blob: Option<&str>,
        diff_id: &str,
    ) -> Result<(), ImageError> {
        let what = format!("layer {index} ({path})");
        let file_path = staged.lookup(path)?;
        let f = fs::File::open(&file_path)
            .map_err(io_err(format!("opening {}", file_path.display())))?;
        let mut hr = HashingReader::new(io::BufReader::new(f));
        let (tmp, stats) = self.unpack_to_temp(&mut hr, &what)?;
        if let Some(expected) = blob {
            let got = hr
                .finish()
                .map_err(io_err(format!("reading {}", file_path.display())))?;
            if got != expected {
                return Err(ImageError::BadArchive(format!(
                    "{what}: blob digest is {got} but the manifest says {expected}"
                )));
            }
        }
        if stats.diff_id != diff_id {
            return Err(ImageError::BadArchive(format!(
                "{what}: invalid diff ID: the image config says {diff_id} but the layer content hashes to {}",
                stats.diff_id
            )));
        }
        self.commit_layer(tmp, stats.diff_id, stats.size)?;
        Ok(())
    }
}
