//! Images: the list and its filters, inspect, history, tag, remove (refused for an image
//! a container uses), import, load and save over the image store; images from containers
//! and image housekeeping: `POST /commit`, `POST /images/prune` and `GET /system/df`
//! (Docker Engine API v1.43+; moby `daemon/commit.go`, `daemon/images/image_prune.go`,
//! `daemon/disk_usage.go`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bollard_stubs::models::{ImageDeleteResponseItem, ImageHistoryResponseItem, ImageSummary};
use bytes::Bytes;
use serde_json::{json, Value};
use tether_image::{HistoryEntry, Image, ImageConfig, NewImage};
use tokio::sync::mpsc;

use crate::state::Container;
use crate::{Engine, EngineError};

/// The options of `POST /commit` (`docker commit`).
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    /// `repo` and `tag` as one reference (`name[:tag]`), or None for an untagged image.
    pub reference: Option<String>,
    /// `comment` (`-m`).
    pub comment: Option<String>,
    /// `author` (`-a`).
    pub author: Option<String>,
    /// `pause` (default true): freeze a running container while its changes are read.
    pub pause: bool,
    /// `changes` (`-c`): Dockerfile instructions applied to the new image's config
    /// (see [`tether_image::apply_changes`]).
    pub changes: Vec<String>,
}

/// The container's runtime config as an image config (what `docker commit` keeps:
/// moby's `merge` of the container's Config into the new image's).
pub fn image_config_of(c: &Container) -> ImageConfig {
    let cfg = &c.config;
    ImageConfig {
        cmd: cfg.cmd.clone(),
        entrypoint: cfg.entrypoint.clone(),
        env: cfg.env.clone().unwrap_or_default(),
        working_dir: cfg.working_dir.clone().unwrap_or_default(),
        exposed_ports: cfg.exposed_ports.clone().unwrap_or_default(),
        user: cfg.user.clone().unwrap_or_default(),
        labels: cfg.labels.clone().unwrap_or_default().into_iter().collect(),
        stop_signal: cfg.stop_signal.clone(),
        volumes: cfg.volumes.clone().unwrap_or_default(),
        healthcheck: cfg
            .healthcheck
            .as_ref()
            .map(tether_image::HealthConfig::from_api),
        shell: cfg.shell.clone().filter(|s| !s.is_empty()),
        on_build: cfg.on_build.clone().unwrap_or_default(),
    }
}

/// Parses a prune `until` filter value as Docker does: Unix seconds (with an
/// optional fraction), RFC 3339, `YYYY-MM-DD[THH:MM:SS]` (UTC), or a Go duration
/// (`10m`, `1h30m`, `1.5h`) before now. Returns Unix seconds.
///
/// Errors: 400 naming the value and the accepted forms.
pub fn parse_until(v: &str, now: i64) -> Result<i64, EngineError> {
    let bad = || {
        EngineError::InvalidParam(format!(
            "invalid filter 'until={v}': give a Unix timestamp, an RFC 3339 date (2024-01-02T15:04:05Z) or a duration such as 24h or 10m"
        ))
    };
    let t = v.trim();
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite() {
            return Ok(f.floor() as i64);
        }
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(d.and_utc().timestamp());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp())
            .ok_or_else(bad);
    }
    // Go's time.ParseDuration: a sequence of decimal numbers with units.
    let mut total = 0f64;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += num * secs;
        rest = &rest[u..];
    }
    Ok(now - total as i64)
}

/// Docker's image list filters: `dangling=true|false`, `reference=PATTERN` (`*`
/// wildcards, matched against each tag with and without `:tag`), `label=k[=v]` and
/// `label!=...`; other filters are ignored.
pub fn image_matches(i: &Image, f: &HashMap<String, Vec<String>>) -> bool {
    let dangling = f
        .get("dangling")
        .map(|v| v.iter().any(|x| x == "true" || x == "1"));
    if let Some(d) = dangling {
        if d != i.repo_tags.is_empty() {
            return false;
        }
    }
    if let Some(pats) = f.get("reference") {
        let hit = i.repo_tags.iter().any(|t| {
            let repo = t.rsplit_once(':').map(|(r, _)| r).unwrap_or(t);
            pats.iter().any(|p| glob(p, t) || glob(p, repo))
        });
        if !hit {
            return false;
        }
    }
    let labels: HashMap<String, String> = i
        .config
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    crate::networks::label_match(&labels, f)
}

/// `*`-only glob (what Docker's reference filter needs).
pub fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((pre, rest)) => {
            s.starts_with(pre)
                && (0..=s.len() - pre.len())
                    .any(|k| s.is_char_boundary(pre.len() + k) && glob(rest, &s[pre.len() + k..]))
        }
    }
}

/// Sends what is written through it to a channel, in 64 KiB chunks (a blocking task's
/// writer feeding an async reader).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(chunk)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        }
        Ok(())
    }
}

/// Total bytes of regular files under `p` (not following symlinks, not crossing into
/// other filesystems); 0 when it does not exist.
pub fn dir_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    let dev = root.dev();
    let mut total = 0u64;
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                if m.dev() == dev {
                    stack.push(e.path());
                }
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    total
}

impl Engine {
    /// GET /images/json: the images `filters` select (see [`image_matches`]), without
    /// the intermediate ones (untagged, with child images: a build's steps) unless `all`.
    pub fn list_images(
        &self,
        all: bool,
        filters: &HashMap<String, Vec<String>>,
    ) -> Vec<ImageSummary> {
        self.images
            .list()
            .iter()
            .filter(|i| all || !self.is_intermediate(i))
            .filter(|i| image_matches(i, filters))
            .map(|i| self.images.summary(i))
            .collect()
    }

    /// Whether `img` is an intermediate image: untagged, with child images.
    fn is_intermediate(&self, img: &Image) -> bool {
        img.repo_tags.is_empty() && !self.images.children(&img.id).is_empty()
    }

    /// GET /images/{name}/json: the inspect body with `Parent` (the local parent image ID
    /// or `""`), which the 1.53 model lacks.
    ///
    /// Errors: 404 no such image; 400 a bad reference.
    pub fn inspect_image(&self, name: &str) -> Result<Value, EngineError> {
        let img = self.images.get(name)?;
        let mut v = serde_json::to_value(self.images.inspect(&img)).unwrap_or(json!({}));
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "Parent".into(),
                json!(img.parent.clone().unwrap_or_default()),
            );
        }
        Ok(v)
    }

    /// GET /images/{name}/history.
    ///
    /// Errors: 404 no such image; 400 a bad reference.
    pub fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>, EngineError> {
        Ok(self.images.history(name)?)
    }

    /// POST /images/{name}/tag: tags image `source` as `target` (`repo:tag`).
    ///
    /// Errors: 404 no such image; 400 a bad reference.
    pub fn tag_image(&self, source: &str, target: &str) -> Result<(), EngineError> {
        Ok(self.images.tag(source, target)?)
    }

    /// DELETE /images/{name}: untags `name` and removes the image when no tag is left,
    /// with the untagged parents only it kept. An image a container is made from (running
    /// or not) is refused unless `force`.
    ///
    /// Errors: 404 no such image; 409 in use, or tagged more than once (by ID, without
    /// `force`); 500 the store failed.
    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>, EngineError> {
        let used = self.image_ids_in_use().await;
        Ok(self
            .images
            .remove(name, force, &|id: &str| used.contains(id))?)
    }

    /// POST /images/create?fromSrc=-: a one-layer image from the rootfs tar `archive`,
    /// tagged `reference` if given, with `changes` (Dockerfile instructions) applied to
    /// its config and `message` as its history comment. Returns the image ID.
    ///
    /// Errors: 400 a bad reference, change or archive; 500 the store failed.
    pub async fn import_image(
        &self,
        archive: std::fs::File,
        reference: Option<String>,
        changes: Vec<String>,
        message: Option<String>,
    ) -> Result<String, EngineError> {
        let images = self.images.clone();
        let img = tokio::task::spawn_blocking(move || {
            images.import(
                std::io::BufReader::new(archive),
                reference.as_deref(),
                &changes,
                message.as_deref(),
            )
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        Ok(img.id)
    }

    /// POST /images/load: the images of a `docker save` or OCI archive. Returns the
    /// progress lines (`Loaded image: tbox:latest`).
    ///
    /// Errors: 400 a bad archive; 500 the store failed.
    pub async fn load_images(&self, archive: std::fs::File) -> Result<Vec<String>, EngineError> {
        let images = self.images.clone();
        Ok(
            tokio::task::spawn_blocking(move || images.load(std::io::BufReader::new(archive)))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??,
        )
    }

    /// GET /images/get: the `docker save` tar of `names`, streamed. The names are checked
    /// before the stream starts; an error later ends the stream early (a truncated tar).
    ///
    /// Errors: 404 no such image; 400 a bad reference.
    pub async fn save_images(
        &self,
        names: Vec<String>,
    ) -> Result<crate::archive::TarStream, EngineError> {
        let images = self.images.clone();
        let set = tokio::task::spawn_blocking(move || images.prepare_save(&names))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        let (tx, rx) = mpsc::channel(8);
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || {
            let w = ChannelWriter {
                tx,
                buf: Vec::with_capacity(64 * 1024),
            };
            if let Err(e) = images.write_save(&set, w) {
                tracing::warn!(error = %e, "image save ended early");
            }
        });
        Ok(rx)
    }

    /// The image IDs containers (running or not) are made from.
    pub async fn image_ids_in_use(&self) -> HashSet<String> {
        let st = self.state.lock().await;
        st.containers.values().map(|c| c.image_id.clone()).collect()
    }

    /// POST /commit: a new image from a container's changes (its overlay upper directory
    /// as a layer, with whiteouts for deletions) on top of its image, with the container's
    /// config (plus `changes`) as the image config, the container's image as `Parent`, and
    /// a history entry (`created_by` the container's command, the comment and author).
    /// A running container is paused (cgroup freezer) while its changes are read when
    /// `pause` is set. Returns the new image ID (`sha256:<hex>`).
    ///
    /// Errors: 404 no such container (or its image is gone); 400 a bad reference or
    /// change; 409 the container is being removed; 500 reading the changes or writing
    /// the store failed (nothing is left behind).
    pub async fn commit(&self, key: &str, opts: CommitOptions) -> Result<String, EngineError> {
        if let Some(r) = &opts.reference {
            let parsed = tether_image::parse_reference(r)?;
            if parsed.digest.is_some() {
                return Err(EngineError::InvalidParam(format!(
                    "invalid reference {r:?}: a commit can be tagged (name:tag), not given a digest"
                )));
            }
        }
        let c: Container = self.state.lock().await.container(key)?.clone();
        let mut config = image_config_of(&c);
        tether_image::apply_changes(&mut config, &opts.changes)?;
        let running = c.state.status == "running";
        let paused = if running && opts.pause {
            match self.runc.pause(&c.id).await {
                Ok(()) => true,
                Err(e) => {
                    // It may have stopped since: then there is nothing to pause.
                    let still_running = matches!(
                        self.runc.state(&c.id).await,
                        Ok(Some(s)) if s["status"] == "running"
                    );
                    if still_running {
                        return Err(e.into());
                    }
                    false
                }
            }
        } else {
            false
        };
        let upper = self.container_dir(&c.id).join("upper");
        let images = self.images.clone();
        let made = tokio::task::spawn_blocking(move || {
            // Never started: no changes yet (start creates the same directory).
            std::fs::create_dir_all(&upper).map_err(|e| tether_image::ImageError::Io {
                what: format!("creating {}", upper.display()),
                source: e,
            })?;
            images.layer_from_upper(&upper)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()));
        if paused {
            if let Err(e) = self.runc.resume(&c.id).await {
                tracing::error!(container = %c.id, error = %e, "resuming the container after commit");
            }
        }
        let layer = made??;
        let created_by = c.config.cmd.clone().unwrap_or_default().join(" ");
        let spec = NewImage {
            parent: Some(c.image_id.clone()),
            layer: Some(layer),
            config,
            history: HistoryEntry {
                created_by: Some(created_by),
                comment: opts.comment.clone().filter(|s| !s.is_empty()),
                ..Default::default()
            },
            author: opts.author.clone().filter(|s| !s.is_empty()),
            comment: opts.comment.clone().filter(|s| !s.is_empty()),
            tag: opts.reference.clone(),
        };
        let images = self.images.clone();
        let img = tokio::task::spawn_blocking(move || images.create_image(spec))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        self.emit_container(
            &c,
            "commit",
            &[("comment", opts.comment.unwrap_or_default())],
        );
        tracing::info!(container = %c.id, image = %img.id, "committed container");
        Ok(img.id)
    }

    /// POST /images/prune with filters `dangling` (`true` default: untagged images only;
    /// `false`: every image no container uses), `until` (see [`parse_until`]), `label`
    /// and `label!`. Returns Docker's `{ImagesDeleted: [{Untagged}|{Deleted}],
    /// SpaceReclaimed}`.
    ///
    /// Errors: 400 an unknown filter or a bad value (named).
    pub async fn prune_images(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Value, EngineError> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "dangling" | "until" | "label" | "label!") {
                return Err(EngineError::InvalidParam(format!(
                    "invalid filter '{k}': image prune accepts dangling, until, label and label!"
                )));
            }
        }
        let mut all = false;
        for v in filters.get("dangling").into_iter().flatten() {
            match v.to_ascii_lowercase().as_str() {
                "true" | "1" => all = false,
                "false" | "0" => all = true,
                _ => {
                    return Err(EngineError::InvalidParam(format!(
                        "invalid filter 'dangling={v}': use true or false"
                    )))
                }
            }
        }
        let now = chrono::Utc::now().timestamp();
        let until: Option<i64> = match filters.get("until").and_then(|v| v.first()) {
            Some(v) => Some(parse_until(v, now)?),
            None => None,
        };
        let label_filters: HashMap<String, Vec<String>> = filters
            .iter()
            .filter(|(k, _)| k.starts_with("label"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let used = self.image_ids_in_use().await;
        let images = self.images.clone();
        let report = tokio::task::spawn_blocking(move || {
            let matches = |i: &tether_image::Image| {
                if let Some(u) = until {
                    let created = chrono::DateTime::parse_from_rfc3339(&i.created)
                        .map(|d| d.timestamp())
                        .unwrap_or(0);
                    if created >= u {
                        return false;
                    }
                }
                let labels: HashMap<String, String> = i
                    .config
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                label_filters.is_empty() || crate::networks::label_match(&labels, &label_filters)
            };
            images.prune(all, &matches, &|id| used.contains(id))
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        for d in &report.deleted {
            if let Some(u) = &d.untagged {
                self.emit_image("untag", u);
            }
        }
        for id in &report.images_deleted {
            self.emit_image("delete", id);
        }
        self.emit("image", "prune", "", {
            let mut a = HashMap::new();
            a.insert("reclaimed".to_string(), report.space_reclaimed.to_string());
            a
        });
        Ok(json!({
            "ImagesDeleted": serde_json::to_value(&report.deleted).unwrap_or(json!([])),
            "SpaceReclaimed": report.space_reclaimed,
        }))
    }

    /// GET /system/df: `LayersSize`; `Images` (list items with `Containers` = how many
    /// containers use each and `SharedSize` = bytes of its layers other images share);
    /// `Containers` (list items with `SizeRw` = bytes written by the container, and
    /// `SizeRootFs` = that plus its image); `Volumes` (with `UsageData: {Size,
    /// RefCount}`); `BuildCache` (empty: the build cache is made of images); and API
    /// 1.52's summaries `ImageUsage`, `ContainerUsage`, `VolumeUsage`, `BuildCacheUsage`
    /// (`TotalCount`, `ActiveCount`: in use / running, `TotalSize` and `Reclaimable` in
    /// bytes: what is not in use).
    pub async fn system_df(&self) -> Result<Value, EngineError> {
        let (ctrs, vol_refs, vols): (Vec<(Value, String, std::path::PathBuf)>, _, Vec<Value>) = {
            let st = self.state.lock().await;
            let mut cs: Vec<&Container> = st.containers.values().collect();
            cs.sort_by(|a, b| b.created.cmp(&a.created));
            let ctrs = cs
                .iter()
                .map(|c| {
                    (
                        crate::views::container_summary(c, &st),
                        c.image_id.clone(),
                        self.container_dir(&c.id).join("upper"),
                    )
                })
                .collect();
            let mut refs: HashMap<String, i64> = HashMap::new();
            for c in st.containers.values() {
                for v in crate::volumes::volumes_of(c) {
                    *refs.entry(v).or_insert(0) += 1;
                }
            }
            let vols = st
                .volumes
                .values()
                .map(|v| {
                    json!({
                        "Name": v.name, "Driver": "local", "Mountpoint": self.volume_data(&v.name),
                        "CreatedAt": v.created, "Labels": v.labels, "Scope": "local",
                        "Options": v.options,
                    })
                })
                .collect();
            (ctrs, refs, vols)
        };
        let images = self.images.clone();
        let vol_root = self.cfg.root.join("volumes");
        tokio::task::spawn_blocking(move || {
            let usage = images.layer_usage();
            let mut per_image: HashMap<String, i64> = HashMap::new();
            let mut containers = Vec::new();
            for (mut v, image_id, upper) in ctrs {
                *per_image.entry(image_id.clone()).or_insert(0) += 1;
                let rw = dir_size(&upper);
                let img_size = images.get(&image_id).map(|i| i.size).unwrap_or(0);
                v["SizeRw"] = json!(rw);
                v["SizeRootFs"] = json!(rw + img_size);
                containers.push(v);
            }
            let imgs: Vec<Value> = images
                .list()
                .iter()
                .map(|i| {
                    let mut v = serde_json::to_value(images.summary(i)).unwrap_or(json!({}));
                    v["Containers"] = json!(per_image.get(&i.id).copied().unwrap_or(0));
                    v["SharedSize"] = json!(usage.shared.get(&i.id).copied().unwrap_or(0));
                    v
                })
                .collect();
            let volumes: Vec<Value> = vols
                .into_iter()
                .map(|mut v| {
                    let name = v["Name"].as_str().unwrap_or("").to_string();
                    let size = dir_size(&vol_root.join(&name).join("_data"));
                    v["UsageData"] = json!({
                        "Size": size,
                        "RefCount": vol_refs.get(&name).copied().unwrap_or(0),
                    });
                    v
                })
                .collect();
            // API 1.52's summaries, beside the lists older clients read
            let n = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0);
            let summary = |items: &[Value], active: &dyn Fn(&Value) -> bool, size: &dyn Fn(&Value) -> i64| {
                json!({
                    "TotalCount": items.len(),
                    "ActiveCount": items.iter().filter(|v| active(v)).count(),
                    "TotalSize": items.iter().map(size).sum::<i64>(),
                    "Reclaimable": items.iter().filter(|v| !active(v)).map(size).sum::<i64>(),
                })
            };
            let mut image_usage = summary(&imgs, &|v| n(v, "Containers") > 0, &|v| {
                n(v, "Size") - n(v, "SharedSize")
            });
            image_usage["TotalSize"] = json!(usage.layers_size);
            let container_usage = summary(&containers, &|v| v["State"] == "running", &|v| {
                n(v, "SizeRw")
            });
            let volume_usage = summary(&volumes, &|v| n(&v["UsageData"], "RefCount") > 0, &|v| {
                n(&v["UsageData"], "Size")
            });
            json!({
                "LayersSize": usage.layers_size,
                "Images": imgs,
                "Containers": containers,
                "Volumes": volumes,
                "BuildCache": [],
                "ImageUsage": image_usage,
                "ContainerUsage": container_usage,
                "VolumeUsage": volume_usage,
                "BuildCacheUsage": {"TotalCount": 0, "ActiveCount": 0, "TotalSize": 0, "Reclaimable": 0},
            })
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("tbox", "tbox"));
        assert!(glob("tb*", "tbox:latest"));
        assert!(glob("*:latest", "tbox:latest"));
        assert!(glob("t*x", "tbox"));
        assert!(!glob("t*y", "tbox"));
        assert!(!glob("box", "tbox"));
    }

    #[test]
    fn image_filters() {
        let mut i = Image {
            id: "sha256:00".into(),
            repo_tags: vec!["tbox:latest".into()],
            created: String::new(),
            size: 0,
            ..Default::default()
        };
        let f = |k: &str, v: &str| HashMap::from([(k.to_string(), vec![v.to_string()])]);
        assert!(image_matches(&i, &f("dangling", "false")));
        assert!(!image_matches(&i, &f("dangling", "true")));
        assert!(image_matches(&i, &f("reference", "tbox")));
        assert!(image_matches(&i, &f("reference", "tb*:latest")));
        assert!(!image_matches(&i, &f("reference", "other")));
        i.repo_tags.clear();
        assert!(image_matches(&i, &f("dangling", "true")));
    }

    #[test]
    fn until_values() {
        let now = 1_700_000_000;
        assert_eq!(parse_until("1600000000", now).unwrap(), 1_600_000_000);
        assert_eq!(parse_until("1600000000.9", now).unwrap(), 1_600_000_000);
        assert_eq!(
            parse_until("2024-01-02T03:04:05Z", now).unwrap(),
            1_704_164_645
        );
        assert_eq!(parse_until("2024-01-02", now).unwrap(), 1_704_153_600);
        assert_eq!(parse_until("10m", now).unwrap(), now - 600);
        assert_eq!(parse_until("1h30m", now).unwrap(), now - 5400);
        assert_eq!(parse_until("1.5h", now).unwrap(), now - 5400);
        for bad in ["", "soon", "10x", "h"] {
            let e = parse_until(bad, now).unwrap_err().to_string();
            assert!(e.contains("until="), "{e}");
        }
    }

    #[test]
    fn dir_sizes_count_files_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/f"), [0u8; 100]).unwrap();
        std::fs::hard_link(d.path().join("a/f"), d.path().join("g")).unwrap();
        std::fs::write(d.path().join("h"), [0u8; 7]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("l")).unwrap();
        assert_eq!(dir_size(d.path()), 107);
        assert_eq!(dir_size(&d.path().join("missing")), 0);
    }
}
