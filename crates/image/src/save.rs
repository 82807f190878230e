//! `docker save`: images as a tar in the format Docker 25+ writes, which is
//! both an OCI image layout (image-layout.md: `oci-layout`, `index.json`,
//! `blobs/sha256/...`) and the legacy `docker save` format (`manifest.json`
//! whose `Config`/`Layers` point into `blobs/`, plus `repositories`).
//!
//! Layers are written uncompressed (`application/vnd.oci.image.layer.v1.tar`),
//! so a layer blob's digest is its diff ID; the config blob is the stored
//! config JSON byte for byte, so `docker load` / `tether load` give the same
//! image IDs.

use crate::fsutil::{io_err, read_limited, TempDir};
use crate::{blob, hex_of, parse_reference, ImageError, ImageStore, Reference, MAX_METADATA_BYTES};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const ANNOTATION_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF: &str = "org.opencontainers.image.ref.name";

/// The images of one `save`, resolved and checked by
/// [`ImageStore::prepare_save`].
#[derive(Debug, Clone)]
pub struct SaveSet {
    /// (image ID, tags to record), in the order first named.
    images: Vec<(String, Vec<Reference>)>,
}

impl SaveSet {
    /// The image IDs to be saved.
    pub fn ids(&self) -> Vec<String> {
        self.images.iter().map(|(i, _)| i.clone()).collect()
    }
}

fn tar_header(size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl ImageStore {
    /// Resolves the names of a `docker save` (references, IDs, ID prefixes,
    /// as [`ImageStore::get`]) and checks that every layer has a stored blob.
    /// A name without tag or digest that names a repository (`tbox`) selects
    /// every tag of it, as `docker save` does; a tag records that tag; an ID
    /// records no tag. Several names of one image are merged.
    ///
    /// # Errors
    /// [`ImageError::InvalidReference`], [`ImageError::NotFound`] (naming
    /// the first unknown name, or a layer without a stored blob), before
    /// anything is written.
    pub fn prepare_save(&self, names: &[String]) -> Result<SaveSet, ImageError> {
        if names.is_empty() {
            return Err(ImageError::InvalidReference(
                "no image names given: name at least one image to save".to_string(),
            ));
        }
        let mut out: Vec<(String, Vec<Reference>)> = Vec::new();
        let add = |out: &mut Vec<(String, Vec<Reference>)>, id: String, tag: Option<Reference>| {
            let pos = match out.iter().position(|(i, _)| *i == id) {
                Some(p) => p,
                None => {
                    out.push((id, Vec::new()));
                    out.len() - 1
                }
            };
            if let Some(t) = tag {
                if !out[pos].1.iter().any(|x| x.full() == t.full()) {
                    out[pos].1.push(t);
                }
            }
        };
        {
            let st = self.lock_state();
            for n in names {
                // A bare repository name: all of its tags.
                if let Ok(r) = parse_reference(n) {
                    if r.tag.is_none() && r.digest.is_none() {
                        let prefix = format!("{}:", r.name());
                        let tagged: Vec<(String, String)> = st
                            .repos
                            .tags
                            .iter()
                            .filter(|(k, v)| k.starts_with(&prefix) && st.images.contains_key(*v))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        if !tagged.is_empty() {
                            for (k, id) in tagged {
                                add(&mut out, id, parse_reference(&k).ok());
                            }
                            continue;
                        }
                    }
                }
                let (id, by_tag) = crate::resolve_how(&st, n)?;
                let tag = if by_tag {
                    parse_reference(n).ok().map(|r| r.with_default_tag())
                } else {
                    None
                };
                add(&mut out, id, tag);
            }
        }
        for (id, _) in &out {
            let img = self.get(id)?;
            for d in &img.diff_ids {
                if blob::read_record(&self.layer_dir(d)).is_none() {
                    return Err(ImageError::NotFound(format!(
                        "layer {d} of image {id} has no stored blob (it entered the store before tether kept layer blobs); import or pull the image again to save it"
                    )));
                }
            }
        }
        Ok(SaveSet { images: out })
    }

    /// Writes the `docker save` tar of `set` to `out` (see the module docs).
    /// Compressed layer blobs are decompressed through a temp file in the
    /// store's `tmp/` (removed afterwards).
    ///
    /// # Errors
    /// [`ImageError::NotFound`] when an image or layer was removed since
    /// [`ImageStore::prepare_save`]; [`ImageError::Io`] for read/write
    /// failures (including `out` closing early).
    pub fn write_save<W: Write>(&self, set: &SaveSet, out: W) -> Result<(), ImageError> {
        let mut b = tar::Builder::new(out);
        let werr = |e: io::Error| ImageError::Io {
            what: "writing the image archive".to_string(),
            source: e,
        };
        b.append_data(&mut tar_header(0, true), "blobs", io::empty())
            .map_err(werr)?;
        b.append_data(&mut tar_header(0, true), "blobs/sha256", io::empty())
            .map_err(werr)?;
        let mut written: HashSet<String> = HashSet::new();
        let mut layer_sizes: HashMap<String, u64> = HashMap::new();
        let mut index = Vec::new();
        let mut manifest_json = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (id, tags) in &set.images {
            let img = self.get(id)?;
            let config = read_limited(
                &self.images_dir().join(hex_of(id)).join("config.json"),
                MAX_METADATA_BYTES,
            )?;
            let mut layer_descs = Vec::new();
            let mut layer_paths = Vec::new();
            for d in &img.diff_ids {
                let size = match layer_sizes.get(d) {
                    Some(s) => *s,
                    None => {
                        let s = self.save_layer(&mut b, d)?;
                        layer_sizes.insert(d.clone(), s);
                        s
                    }
                };
                layer_descs.push(json!({
                    "mediaType": blob::MT_OCI_LAYER_TAR,
                    "digest": d,
                    "size": size,
                }));
                layer_paths.push(format!("blobs/sha256/{}", hex_of(d)));
            }
            if written.insert(id.clone()) {
                b.append_data(
                    &mut tar_header(config.len() as u64, false),
                    format!("blobs/sha256/{}", hex_of(id)),
                    &config[..],
                )
                .map_err(werr)?;
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MT_MANIFEST,
                "config": {"mediaType": MT_CONFIG, "digest": id, "size": config.len()},
                "layers": layer_descs,
            });
            let mbytes = serde_json::to_vec(&manifest)
                .map_err(|e| crate::json_io("encoding manifest", e))?;
            let mdigest = crate::fsutil::sha256_digest(&mbytes);
            if written.insert(mdigest.clone()) {
                b.append_data(
                    &mut tar_header(mbytes.len() as u64, false),
                    format!("blobs/sha256/{}", hex_of(&mdigest)),
                    &mbytes[..],
                )
                .map_err(werr)?;
            }
            let desc = |ann: Option<serde_json::Value>| {
                let mut d = json!({
                    "mediaType": MT_MANIFEST,
                    "digest": mdigest,
                    "size": mbytes.len(),
                });
                if let Some(a) = ann {
                    d["annotations"] = a;
                }
                d
            };
            if tags.is_empty() {
                index.push(desc(None));
            }
            for t in tags {
                let tag = t
                    .tag
                    .clone()
                    .unwrap_or_else(|| crate::DEFAULT_TAG.to_string());
                index.push(desc(Some(json!({
                    ANNOTATION_NAME: t.full(),
                    ANNOTATION_REF: tag,
                }))));
                repositories
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(tag, hex_of(id).to_string());
            }
            let repo_tags: Option<Vec<String>> =
                (!tags.is_empty()).then(|| tags.iter().map(|t| t.familiar()).collect());
            manifest_json.push(json!({
                "Config": format!("blobs/sha256/{}", hex_of(id)),
                "RepoTags": repo_tags,
                "Layers": layer_paths,
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": index,
        });
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            (
                "index.json",
                serde_json::to_vec(&index).map_err(|e| crate::json_io("encoding index", e))?,
            ),
            (
                "manifest.json",
                serde_json::to_vec(&manifest_json)
                    .map_err(|e| crate::json_io("encoding manifest.json", e))?,
            ),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ];
        if !repositories.is_empty() {
            files.push((
                "repositories",
                serde_json::to_vec(&repositories)
                    .map_err(|e| crate::json_io("encoding repositories", e))?,
            ));
        }
        for (name, data) in files {
            b.append_data(&mut tar_header(data.len() as u64, false), name, &data[..])
                .map_err(werr)?;
        }
        b.into_inner().map_err(werr)?.flush().map_err(werr)?;
        Ok(())
    }

    /// Appends layer `diff_id` as `blobs/sha256/<hex>` (uncompressed);
    /// returns its size in bytes.
    fn save_layer<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        diff_id: &str,
    ) -> Result<u64, ImageError> {
        let dir = self.layer_dir(diff_id);
        let rec = blob::read_record(&dir)
            .ok_or_else(|| ImageError::NotFound(format!("layer {diff_id} has no stored blob")))?;
        let blob_path = dir.join(blob::BLOB_FILE);
        let what = format!("layer {diff_id}");
        // A plain tar is its own uncompressed stream; others go through a temp file.
        let (path, _tmp): (PathBuf, Option<TempDir>) = if rec.media_type == blob::MT_OCI_LAYER_TAR {
            (blob_path, None)
        } else {
            let tmp = TempDir::new_in(&self.tmp_dir())?;
            let p = tmp.path().join("layer.tar");
            let src = fs::File::open(&blob_path)
                .map_err(io_err(format!("opening {}", blob_path.display())))?;
            let mut plain = crate::unpack::decompress(io::BufReader::new(src), &what)?;
            let mut f = io::BufWriter::new(
                fs::File::create(&p).map_err(io_err(format!("creating {}", p.display())))?,
            );
            io::copy(&mut plain, &mut f).map_err(io_err(format!("decompressing {what}")))?;
            f.flush()
                .map_err(io_err(format!("writing {}", p.display())))?;
            (p, Some(tmp))
        };
        let size = fs::metadata(&path)
            .map_err(io_err(format!("stat {}", path.display())))?
            .len();
        let f = fs::File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
        b.append_data(
            &mut tar_header(size, false),
            format!("blobs/sha256/{}", hex_of(diff_id)),
            io::BufReader::new(f).take(size),
        )
        .map_err(io_err("writing the image archive".to_string()))?;
        Ok(size)
    }
}
