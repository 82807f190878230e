//! Images from containers and image housekeeping: `POST /commit`, `POST /images/prune`
//! and `GET /system/df` (Docker Engine API v1.43+; moby `daemon/commit.go`,
//! `daemon/images/image_prune.go`, `daemon/disk_usage.go`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{json, Value};
use tether_image::{HistoryEntry, ImageConfig, NewImage};

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
    /// RefCount}`); `BuildCache` (empty: the build cache is made of images).
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
            json!({
                "LayersSize": usage.layers_size,
                "Images": imgs,
                "Containers": containers,
                "Volumes": volumes,
                "BuildCache": [],
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
