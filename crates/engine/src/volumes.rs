//! Named volumes (Docker API "Volume" endpoints, driver `local`): a directory
//! `<root>/volumes/<name>/_data` bind-mounted into containers, created on demand by
//! `-v NAME:/path`, `Mounts` of type volume, or an image/Config `Volumes` entry (anonymous
//! volumes, removed with the container by `rm -v`).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::state::{self, Container};
use crate::{Engine, EngineError, State};

/// A volume's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Volume {
    /// Unique name.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Driver options (recorded; the local driver uses none).
    pub options: HashMap<String, String>,
    /// Made for a container's `Volumes` entry without a name.
    pub anonymous: bool,
}

/// How a bind spec's source is to be read: a host path or a volume name.
pub fn is_volume_source(src: &str) -> bool {
    !src.is_empty() && !src.starts_with('/') && !src.starts_with('.') && !src.starts_with('~')
}

/// The volumes a container's binds (`NAME:/path[:opts]`) name.
pub fn volumes_of(c: &Container) -> Vec<String> {
    binds_volumes(&c.host_config)
}

/// The volume names a HostConfig's binds refer to.
pub fn binds_volumes(hc: &bollard_stubs::models::HostConfig) -> Vec<String> {
    hc.binds
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|b| {
            b.split(':')
                .next()
                .filter(|s| is_volume_source(s))
                .map(str::to_string)
        })
        .collect()
}

/// Docker's copy-up: when a volume is still empty and the image has a directory where it
/// is mounted, the volume takes that directory's owner and mode and a copy of its
/// contents (`cp -a`), so e.g. a database running as its own user can write to it.
/// Paths that are not directories in the image, and volumes with content, are left alone.
///
/// Errors: the copy failing (names both paths).
pub fn copy_up(image_dir: &std::path::Path, volume: &std::path::Path) -> Result<(), EngineError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(image_dir) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    let empty = std::fs::read_dir(volume)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let fail = |e: String| {
        EngineError::Internal(format!(
            "copy {} into volume {}: {e}",
            image_dir.display(),
            volume.display()
        ))
    };
    std::os::unix::fs::chown(volume, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| fail(e.to_string()))?;
    std::fs::set_permissions(
        volume,
        std::os::unix::fs::PermissionsExt::from_mode(meta.mode() & 0o7777),
    )
    .map_err(|e| fail(e.to_string()))?;
    if std::fs::read_dir(image_dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", image_dir.display()))
            .arg(volume)
            .output()
            .map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            return Err(fail(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
    }
    Ok(())
}

impl State {
    /// Names of the containers using volume `name`.
    pub(crate) fn volume_users(&self, name: &str) -> Vec<String> {
        self.containers
            .values()
            .filter(|c| volumes_of(c).iter().any(|v| v == name))
            .map(|c| c.name.clone())
            .collect()
    }
}

impl Engine {
    pub(crate) fn volume_dir(&self, name: &str) -> PathBuf {
        self.cfg.root.join("volumes").join(name)
    }

    /// The host directory of volume `name`.
    pub(crate) fn volume_data(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    fn volume_json(&self, v: &Volume) -> Value {
        json!({
            "Name": v.name, "Driver": "local", "Mountpoint": self.volume_data(&v.name), "CreatedAt": v.created,
            "Labels": v.labels, "Scope": "local", "Options": v.options,
        })
    }

    /// Creates volume `name` under the lock if it does not exist (idempotent, as Docker).
    pub(crate) fn ensure_volume(
        &self,
        st: &mut State,
        name: &str,
        labels: HashMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume, EngineError> {
        if let Some(v) = st.volumes.get(name) {
            return Ok(v.clone());
        }
        crate::validate::volume_name(name)?;
        let v = Volume {
            name: name.to_string(),
            created: state::now(),
            labels,
            options: HashMap::new(),
            anonymous,
        };
        std::fs::create_dir_all(self.volume_data(name))
            .map_err(|e| EngineError::Internal(format!("create volume {name}: {e}")))?;
        state::write_json(&self.volume_dir(name).join("volume.json"), &v)?;
        st.volumes.insert(name.to_string(), v.clone());
        self.emit(
            "volume",
            "create",
            name,
            HashMap::from([("driver".to_string(), "local".to_string())]),
        );
        Ok(v)
    }

    /// POST /volumes/create. A missing name gets a random 64-hex one.
    ///
    /// Errors: 400 a driver other than local, a name over 255 bytes or outside Docker's
    /// `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (nothing is created).
    pub async fn create_volume(
        &self,
        name: Option<String>,
        labels: HashMap<String, String>,
        driver: Option<String>,
    ) -> Result<Value, EngineError> {
        if let Some(d) = driver.filter(|d| !d.is_empty() && d != "local") {
            return Err(EngineError::InvalidParam(format!(
                "volume driver {d:?} is not supported: use local"
            )));
        }
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(state::new_id);
        let mut st = self.state.lock().await;
        let v = self.ensure_volume(&mut st, &name, labels, false)?;
        Ok(self.volume_json(&v))
    }

    /// GET /volumes/{name}.
    pub async fn inspect_volume(&self, name: &str) -> Result<Value, EngineError> {
        let st = self.state.lock().await;
        let v = st
            .volumes
            .get(name)
            .ok_or_else(|| EngineError::NotFound(format!("get {name}: no such volume")))?;
        Ok(self.volume_json(v))
    }

    /// GET /volumes with filters name, label, dangling.
    pub async fn list_volumes(&self, filters: &HashMap<String, Vec<String>>) -> Value {
        let st = self.state.lock().await;
        let list: Vec<Value> = st
            .volumes
            .values()
            .filter(|v| {
                filters.iter().all(|(k, vals)| match k.as_str() {
                    "name" => vals.iter().any(|x| v.name.contains(x.as_str())),
                    "label" | "label!" => crate::networks::label_match(
                        &v.labels,
                        &HashMap::from([(k.clone(), vals.clone())]),
                    ),
                    "dangling" => vals
                        .iter()
                        .any(|x| (x == "true" || x == "1") == st.volume_users(&v.name).is_empty()),
                    "driver" => vals.iter().any(|x| x == "local"),
                    _ => true,
                })
            })
            .map(|v| self.volume_json(v))
            .collect();
        json!({"Volumes": list, "Warnings": []})
    }

    /// DELETE /volumes/{name}. Errors: 404; 409 in use by a container.
    pub async fn remove_volume(&self, name: &str, _force: bool) -> Result<(), EngineError> {
        let mut st = self.state.lock().await;
        if !st.volumes.contains_key(name) {
            return Err(EngineError::NotFound(format!("get {name}: no such volume")));
        }
        self.remove_volume_locked(&mut st, name)
    }

    pub(crate) fn remove_volume_locked(
        &self,
        st: &mut State,
        name: &str,
    ) -> Result<(), EngineError> {
        let users = st.volume_users(name);
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        std::fs::remove_dir_all(self.volume_dir(name)).or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        st.volumes.remove(name);
        self.emit(
            "volume",
            "destroy",
            name,
            HashMap::from([("driver".to_string(), "local".to_string())]),
        );
        Ok(())
    }

    /// POST /volumes/prune: removes unused volumes (anonymous ones only unless `all=true`
    /// is in the filters, as Docker 23+), matching label filters. Returns the removed
    /// names and the bytes their data held (`SpaceReclaimed`).
    pub async fn prune_volumes(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<(Vec<String>, u64), EngineError> {
        let mut st = self.state.lock().await;
        let all = filters
            .get("all")
            .map(|v| v.iter().any(|x| x == "true" || x == "1"))
            .unwrap_or(false);
        let names: Vec<String> = st
            .volumes
            .values()
            .filter(|v| {
                (all || v.anonymous)
                    && st.volume_users(&v.name).is_empty()
                    && crate::networks::label_match(&v.labels, filters)
            })
            .map(|v| v.name.clone())
            .collect();
        // Under the lock each volume's directory is only moved aside (a rename) and its
        // record dropped; sizing and deleting the data happen after, so that a large
        // volume does not hold up every other request.
        let trash = self.cfg.root.join("trash");
        std::fs::create_dir_all(&trash)?;
        let mut moved = Vec::new();
        for n in &names {
            let aside = trash.join(format!("{n}-{}", hex::encode(rand::random::<[u8; 4]>())));
            match std::fs::rename(self.volume_dir(n), &aside) {
                Ok(()) => moved.push(aside),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            self.remove_volume_locked(&mut st, n)?;
        }
        drop(st);
        let space = tokio::task::spawn_blocking(move || {
            let mut space = 0;
            for dir in moved {
                space += crate::images::dir_size(&dir.join("_data"));
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "removing a pruned volume's data");
                }
            }
            space
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok((names, space))
    }

    /// Deletes what a prune moved aside and did not finish deleting (the daemon ended
    /// meanwhile): `<root>/trash`.
    pub(crate) fn empty_trash(&self) {
        let trash = self.cfg.root.join("trash");
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %trash.display(), error = %e, "emptying the trash");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn copy_up_takes_owner_mode_and_contents_once() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("img");
        let vol = d.path().join("vol");
        std::fs::create_dir_all(img.join("sub")).unwrap();
        std::fs::write(img.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(&img, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(&img, Some(1234), Some(5678)).unwrap();
        std::fs::create_dir_all(&vol).unwrap();
        copy_up(&img, &vol).unwrap();
        let m = std::fs::metadata(&vol).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o750));
        assert_eq!(std::fs::read_to_string(vol.join("sub/f")).unwrap(), "x");
        // a volume with content is left alone
        std::fs::write(img.join("g"), "y").unwrap();
        copy_up(&img, &vol).unwrap();
        assert!(!vol.join("g").exists());
        // no such directory in the image: nothing happens
        copy_up(&d.path().join("nope"), &vol).unwrap();
    }

    #[test]
    fn sources() {
        assert!(is_volume_source("data"));
        assert!(is_volume_source("proj_db-data"));
        assert!(!is_volume_source("/srv/data"));
        assert!(!is_volume_source("./rel"));
        assert!(!is_volume_source(""));
    }
}
