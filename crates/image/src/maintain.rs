//! Image history, parent/child relations, pruning and disk usage (`docker
//! history`, `docker image prune`, `docker system df`), following moby's
//! `daemon/images/image_history.go` and `image_prune.go`.

use crate::{
    chain_ids, created_secs, familiar_of_key, hex_of, materialize, tags_for, Image, ImageError,
    ImageStore, State,
};
use bollard_stubs::models::{ImageDeleteResponseItem, ImageHistoryResponseItem};
use std::collections::{HashMap, HashSet};

/// What [`ImageStore::prune`] did (the `POST /images/prune` answer).
#[derive(Debug, Default, Clone)]
pub struct PruneReport {
    /// `Untagged: <tag>` and `Deleted: <image ID / layer chain ID>` items, per image.
    pub deleted: Vec<ImageDeleteResponseItem>,
    /// Bytes of layer content removed from disk.
    pub space_reclaimed: u64,
    /// IDs of the images deleted.
    pub images_deleted: Vec<String>,
}

/// Layer usage for `system df`.
#[derive(Debug, Default, Clone)]
pub struct LayerUsage {
    /// Sum of the sizes of all distinct layers of all images, bytes.
    pub layers_size: u64,
    /// Image ID -> bytes of its layers that another image also uses (`SharedSize`).
    pub shared: HashMap<String, u64>,
}

fn children_of(st: &State, id: &str) -> Vec<String> {
    st.images
        .values()
        .filter(|r| r.image.parent.as_deref() == Some(id))
        .map(|r| r.image.id.clone())
        .collect()
}

impl ImageStore {
    /// IDs of the images whose [`Image::parent`] is `id` (made from it by
    /// commit or build), sorted.
    pub fn children(&self, id: &str) -> Vec<String> {
        let st = self.lock_state();
        children_of(&st, id)
    }

    /// `docker history` (`GET /images/{name}/history`): one item per entry
    /// of the image config's history, newest first. `Id` is the image's ID
    /// for the newest entry and the IDs of its local parents (as recorded by
    /// commit/build) for the following ones, `<missing>` beyond; `Tags` are
    /// the familiar tags of that ID; `Created` is Unix seconds; `Size` is the
    /// content size of the layer the entry added (0 for `empty_layer`).
    ///
    /// # Errors
    /// [`ImageError::NotFound`], [`ImageError::InvalidReference`] as
    /// [`ImageStore::get`].
    pub fn history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>, ImageError> {
        let img = self.get(name)?;
        let mut out = Vec::with_capacity(img.history.len());
        let mut layer = 0usize;
        for h in &img.history {
            let mut size = 0u64;
            if !h.empty_layer {
                if let Some(d) = img.diff_ids.get(layer) {
                    size = self.layer_size(d).unwrap_or(0);
                }
                layer += 1;
            }
            out.push(ImageHistoryResponseItem {
                id: "<missing>".to_string(),
                created: h.created.as_deref().map(created_secs).unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size: i64::try_from(size).unwrap_or(i64::MAX),
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        out.reverse();
        let st = self.lock_state();
        let mut id = Some(img.id.clone());
        for item in out.iter_mut() {
            let Some(cur) = id.take() else { break };
            let Some(rec) = st.images.get(&cur) else {
                break;
            };
            item.tags = tags_for(&st, &cur);
            item.id = cur;
            id = rec.image.parent.clone();
        }
        Ok(out)
    }

    /// `docker image prune` (`POST /images/prune`). Candidates are images no
    /// container uses (`in_use(id)` false) that `matches` (the request's
    /// `until`/`label` filters) and, unless `all`, have no tag (dangling).
    /// Images that are the parent of a remaining image are kept, so only
    /// leaves go, repeatedly: an untagged chain of intermediate build images
    /// goes with its last child, the parents of images in use stay.
    ///
    /// `in_use` and `matches` are called without internal locks held.
    ///
    /// # Errors
    /// [`ImageError::Io`] when the store cannot be written.
    pub fn prune(
        &self,
        all: bool,
        matches: &dyn Fn(&Image) -> bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<PruneReport, ImageError> {
        let _w = self.lock_write();
        let images: Vec<Image> = {
            let st = self.lock_state();
            st.images
                .keys()
                .filter_map(|id| materialize(&st, id))
                .collect()
        };
        // Callbacks outside the state lock; nothing is added meanwhile (write lock).
        let eligible: HashSet<String> = images
            .iter()
            .filter(|i| !in_use(&i.id) && matches(i))
            .map(|i| i.id.clone())
            .collect();
        let held_use: HashMap<String, bool> = {
            let held: Vec<String> = self.lock_state().repos.held.keys().cloned().collect();
            held.into_iter().map(|h| (h.clone(), in_use(&h))).collect()
        };
        let mut report = PruneReport::default();
        let mut st = self.lock_state();
        let mut repos = st.repos.clone();
        let mut gone: Vec<(String, Vec<String>)> = Vec::new();
        let mut removed: HashSet<String> = HashSet::new();
        loop {
            let parents: HashSet<String> = st
                .images
                .values()
                .filter(|r| !removed.contains(&r.image.id))
                .filter_map(|r| r.image.parent.clone())
                .collect();
            let round: Vec<String> = st
                .images
                .keys()
                .filter(|id| {
                    eligible.contains(*id)
                        && !removed.contains(*id)
                        && !parents.contains(*id)
                        && (all || !repos.tags.values().any(|v| v == *id))
                })
                .cloned()
                .collect();
            if round.is_empty() {
                break;
            }
            for id in round {
                let keys: Vec<String> = repos
                    .tags
                    .iter()
                    .filter(|(_, v)| **v == id)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    repos.tags.remove(&k);
                    report.deleted.push(ImageDeleteResponseItem {
                        untagged: Some(familiar_of_key(&k)),
                        deleted: None,
                    });
                }
                repos.last_tag_time.remove(&id);
                repos.digests.retain(|_, v| *v != id);
                report.deleted.push(ImageDeleteResponseItem {
                    untagged: None,
                    deleted: Some(id.clone()),
                });
                let diff_ids = st
                    .images
                    .get(&id)
                    .map(|r| r.image.diff_ids.clone())
                    .unwrap_or_default();
                gone.push((id.clone(), diff_ids));
                removed.insert(id);
            }
        }
        if !gone.is_empty() {
            self.persist_repos(&repos)?;
            st.repos = repos;
        }
        let mut trash = Vec::new();
        for (id, _) in &gone {
            st.images.remove(id);
            let dir = self.images_dir().join(hex_of(id));
            let t = self.tmp_dir().join(crate::fsutil::random_name());
            match std::fs::rename(&dir, &t) {
                Ok(()) => trash.push(t),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "moving pruned image aside")
                }
            }
        }
        // Also lets go of layers held for containers that are gone.
        let still = |x: &str| held_use.get(x).copied().unwrap_or(true);
        let layers = self.gc_layers(&mut st, Some(&still))?;
        let removed_layers: HashMap<&str, &std::path::PathBuf> =
            layers.iter().map(|(d, p)| (d.as_str(), p)).collect();
        let mut reported: HashSet<String> = HashSet::new();
        for (id, diff_ids) in &gone {
            let chain = chain_ids(diff_ids);
            for (i, d) in diff_ids.iter().enumerate().rev() {
                if let Some(p) = removed_layers.get(d.as_str()) {
                    if reported.insert(d.clone()) {
                        report.space_reclaimed += layer_record_size(p);
                        report.deleted.push(ImageDeleteResponseItem {
                            untagged: None,
                            deleted: Some(chain[i].clone()),
                        });
                    }
                }
            }
            report.images_deleted.push(id.clone());
            tracing::info!(%id, "pruned image");
        }
        drop(st);
        trash.extend(layers.into_iter().map(|(_, p)| p));
        self.empty_trash(trash);
        Ok(report)
    }

    /// Layer sizes for `system df`: the total of distinct layers and, per
    /// image, the bytes of its layers shared with another image.
    pub fn layer_usage(&self) -> LayerUsage {
        let st = self.lock_state();
        let mut users: HashMap<&str, usize> = HashMap::new();
        for r in st.images.values() {
            let distinct: HashSet<&str> = r.image.diff_ids.iter().map(String::as_str).collect();
            for d in distinct {
                *users.entry(d).or_insert(0) += 1;
            }
        }
        let sizes: HashMap<&str, u64> = users
            .keys()
            .map(|d| (*d, self.layer_size(d).unwrap_or(0)))
            .collect();
        let mut u = LayerUsage {
            layers_size: sizes.values().sum(),
            shared: HashMap::new(),
        };
        for r in st.images.values() {
            let distinct: HashSet<&str> = r.image.diff_ids.iter().map(String::as_str).collect();
            let shared = distinct
                .iter()
                .filter(|d| users.get(*d).copied().unwrap_or(0) > 1)
                .map(|d| sizes.get(*d).copied().unwrap_or(0))
                .sum();
            u.shared.insert(r.image.id.clone(), shared);
        }
        u
    }
}

/// The `size` of a layer directory's `layer.json` (moved aside for deletion).
fn layer_record_size(dir: &std::path::Path) -> u64 {
    std::fs::read(dir.join("layer.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::LayerRecord>(&b).ok())
        .map(|r| r.size)
        .unwrap_or(0)
}
