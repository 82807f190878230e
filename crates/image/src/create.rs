//! Images made locally from a parent image and a new layer: `docker commit`
//! and the steps of `docker build` (the classic builder), following the OCI
//! image spec config.md and moby's `image.NewChildImage`.

use crate::fsutil::sha256_digest;
use crate::layer::NewLayer;
use crate::{
    host_arch, json_io, materialize, now_rfc3339, parse_tag_target, resolve, set_tag, HistoryEntry,
    Image, ImageConfig, ImageError, ImageMeta, ImageRecord, ImageStore,
};

/// Diff ID of a layer with no entries (a tar of just the 1024-byte end marker),
/// which moby's `layer.EmptyLayer` names.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// What [`ImageStore::create_image`] makes.
#[derive(Debug, Default)]
pub struct NewImage {
    /// The parent image (ID, ID prefix or reference, resolved as
    /// [`ImageStore::get`]); its layers and history come first. `None` for
    /// an image `FROM scratch`.
    pub parent: Option<String>,
    /// The new top layer, from [`ImageStore::layer_from_upper`]; `None` for a
    /// step that changes only the config (its history entry gets `empty_layer`).
    /// A layer without entries ([`EMPTY_LAYER_DIFF_ID`]) counts as `None`, as
    /// moby's commit does.
    pub layer: Option<NewLayer>,
    /// The complete runtime config of the new image (not merged with the parent's).
    pub config: ImageConfig,
    /// The new history entry: `created_by` (e.g. `/bin/sh -c apt-get update`
    /// or `/bin/sh -c #(nop)  CMD ["sh"]`) and `comment` are used as given;
    /// `created` defaults to the image's creation time, `author` to
    /// [`NewImage::author`]; `empty_layer` is set from [`NewImage::layer`].
    pub history: HistoryEntry,
    /// The image's `author` (`docker commit -a`, Dockerfile `MAINTAINER`).
    pub author: Option<String>,
    /// The image's `comment` (`docker commit -m`).
    pub comment: Option<String>,
    /// A tag for the new image (`name[:tag]`, default tag `latest`); a tag
    /// pointing at another image moves.
    pub tag: Option<String>,
}

impl ImageStore {
    /// Creates an image from `spec` (see [`NewImage`]): diff IDs and history
    /// of the parent plus the new layer and history entry, the parent's
    /// architecture/os/variant (else the host's, `linux`), and writes its
    /// config JSON as the OCI image config (`architecture`, `os`, `created`,
    /// `author`, `comment`, `config`, `rootfs`, `history`; Docker's key
    /// names), atomically like [`ImageStore::import`]. The image ID is the
    /// SHA-256 of those bytes; [`Image::parent`] records the parent's ID.
    ///
    /// # Errors
    /// [`ImageError::InvalidReference`] for a bad tag (checked first),
    /// [`ImageError::NotFound`] when the parent is not in the store,
    /// [`ImageError::Io`]. On error nothing is written and the new layer is
    /// removed unless something else uses it.
    pub fn create_image(&self, spec: NewImage) -> Result<Image, ImageError> {
        let target = spec
            .tag
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(parse_tag_target)
            .transpose();
        let _w = self.lock_write();
        let res = match target {
            Ok(target) => self.create_image_locked(spec, target),
            Err(e) => {
                drop(spec);
                Err(e)
            }
        };
        if res.is_err() {
            // The NewLayer was dropped (unpinned) by now.
            self.gc_after_failure();
        }
        res
    }

    fn create_image_locked(
        &self,
        spec: NewImage,
        target: Option<crate::Reference>,
    ) -> Result<Image, ImageError> {
        let NewImage {
            parent,
            mut layer,
            config,
            mut history,
            author,
            comment,
            tag: _,
        } = spec;
        let (parent_id, mut diff_ids, mut hist, meta) = match &parent {
            Some(p) => {
                let st = self.lock_state();
                let id = resolve(&st, p)?;
                let rec = st
                    .images
                    .get(&id)
                    .ok_or_else(|| ImageError::NotFound(p.clone()))?;
                (
                    Some(id.clone()),
                    rec.image.diff_ids.clone(),
                    rec.image.history.clone(),
                    rec.meta.clone(),
                )
            }
            None => (None, Vec::new(), Vec::new(), ImageMeta::default()),
        };
        if layer
            .as_ref()
            .is_some_and(|l| l.diff_id == EMPTY_LAYER_DIFF_ID)
        {
            // Unpinned here; removed by the next garbage collection.
            layer = None;
        }
        if let Some(l) = &layer {
            if !self.layer_present(&l.diff_id) {
                return Err(ImageError::NotFound(format!("layer {}", l.diff_id)));
            }
            diff_ids.push(l.diff_id.clone());
        }
        let created = now_rfc3339();
        if history.created.is_none() {
            history.created = Some(created.clone());
        }
        if history.author.is_none() {
            history.author = author.clone().filter(|a| !a.is_empty());
        }
        history.empty_layer = layer.is_none();
        hist.push(history);

        let arch = if meta.architecture.is_empty() {
            host_arch().to_string()
        } else {
            meta.architecture.clone()
        };
        let os = if meta.os.is_empty() {
            "linux".to_string()
        } else {
            meta.os.clone()
        };
        let mut cfg = serde_json::Map::new();
        cfg.insert("architecture".into(), serde_json::json!(arch));
        if let Some(a) = author.as_deref().filter(|a| !a.is_empty()) {
            cfg.insert("author".into(), serde_json::json!(a));
        }
        if let Some(c) = comment.as_deref().filter(|c| !c.is_empty()) {
            cfg.insert("comment".into(), serde_json::json!(c));
        }
        cfg.insert("config".into(), crate::config_to_json(&config));
        cfg.insert("created".into(), serde_json::json!(created));
        cfg.insert(
            "history".into(),
            serde_json::to_value(&hist).map_err(|e| json_io("encoding image history", e))?,
        );
        cfg.insert("os".into(), serde_json::json!(os));
        cfg.insert(
            "rootfs".into(),
            serde_json::json!({ "type": "layers", "diff_ids": diff_ids }),
        );
        if let Some(v) = &meta.variant {
            cfg.insert("variant".into(), serde_json::json!(v));
        }
        let bytes = serde_json::to_vec(&serde_json::Value::Object(cfg))
            .map_err(|e| json_io("encoding image config", e))?;
        let id = sha256_digest(&bytes);
        let mut size = 0u64;
        for d in &diff_ids {
            size += self.layer_size(d).unwrap_or(0);
        }
        let rec = ImageRecord {
            image: Image {
                id: id.clone(),
                repo_tags: Vec::new(),
                created,
                size,
                config,
                diff_ids,
                parent: parent_id,
                history: hist,
            },
            meta: ImageMeta {
                comment: comment.filter(|c| !c.is_empty()),
                author: author.filter(|a| !a.is_empty()),
                architecture: arch,
                os,
                variant: meta.variant,
            },
        };
        let existed = self.lock_state().images.contains_key(&id);
        self.write_image(&rec, &bytes)?;
        let mut st = self.lock_state();
        st.images.entry(id.clone()).or_insert(rec);
        if let Some(t) = &target {
            let mut repos = st.repos.clone();
            set_tag(&mut repos, t, &id);
            if let Err(e) = self.persist_repos(&repos) {
                if !existed {
                    // Leave nothing: the untagged image goes too.
                    st.images.remove(&id);
                    let dir = self.images_dir().join(crate::hex_of(&id));
                    if let Err(re) = crate::fsutil::remove_any(&dir) {
                        tracing::warn!(dir = %dir.display(), error = %re, "removing a half-created image");
                    }
                }
                return Err(e);
            }
            st.repos = repos;
        }
        // The image now references the layer: it no longer needs the pin.
        drop(layer);
        tracing::info!(%id, tag = ?target.as_ref().map(|t| t.familiar()), "created image");
        materialize(&st, &id).ok_or(ImageError::NotFound(id))
    }
}
