//! Image routes: `GET /images/json`, `POST /images/create` (import; a pull goes to
//! [`registry`](super::registry)), `POST /images/load`, `POST /images/prune`,
//! `GET /images/get` (`docker save`), `POST /commit`, and the routes naming an image
//! (`/images/{name}/json|history|get|push|tag`, `DELETE /images/{name}`), whose names
//! hold slashes.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::extract::{Request, State};
use bytes::Bytes;
use hyper::{Method, Response};
use serde_json::{json, Value};
use tether_engine::images::CommitOptions;
use tether_engine::{Engine, EngineError};
use tokio::sync::mpsc;

use super::{body_to_file, Id, Reply, Q};
use crate::{full, json_response};

fn flag_default(q: &HashMap<String, String>, k: &str, default: bool) -> bool {
    match q.get(k).map(|s| s.to_ascii_lowercase()) {
        None => default,
        Some(v) if v.is_empty() => default,
        Some(v) => matches!(v.as_str(), "1" | "true"),
    }
}

/// POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes= -> 201 `{"Id"}`.
pub(crate) async fn commit(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            EngineError::InvalidParam(
                "missing query parameter container: name the container to commit".into(),
            )
        })?;
    let repo = q.get("repo").cloned().unwrap_or_default();
    let tag = q.get("tag").cloned().unwrap_or_default();
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, true) => None,
        (true, false) => {
            return Err(EngineError::InvalidParam(format!(
                "invalid commit: tag {tag:?} given without a repository (repo)"
            ))
            .into())
        }
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    let opts = CommitOptions {
        reference,
        comment: q.get("comment").cloned(),
        author: q.get("author").cloned(),
        pause: flag_default(&q, "pause", true),
        changes: q.all("changes"),
    };
    let id = engine.commit(container, opts).await?;
    Ok(json_response(201, &json!({ "Id": id })))
}

/// GET /images/{name}/history.
fn history(engine: &Engine, name: &str) -> Reply {
    let items = engine.images.history(name)?;
    Ok(json_response(
        200,
        &serde_json::to_value(items).unwrap_or(json!([])),
    ))
}

/// Sends what is written through it to a response body, in 64 KiB chunks.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
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

/// GET /images/get?names=... and GET /images/{name}/get: the `docker save` tar,
/// streamed. Names are checked before the first byte (404/400 as JSON errors); an
/// error later ends the stream early (the client sees a truncated tar).
async fn save(engine: Arc<Engine>, names: Vec<String>) -> Reply {
    let images = engine.images.clone();
    let set = tokio::task::spawn_blocking(move || images.prepare_save(&names))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
    let (tx, rx) = mpsc::channel(8);
    let images = engine.images.clone();
    tokio::task::spawn_blocking(move || {
        let w = ChannelWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        };
        if let Err(e) = images.write_save(&set, w) {
            tracing::warn!(error = %e, "image save ended early");
        }
    });
    Ok(Response::builder()
        .header("Content-Type", "application/x-tar")
        .body(crate::streams::channel_body(rx))
        .unwrap_or_else(|_| Response::new(crate::full(""))))
}

/// GET /images/get?names=...
pub(crate) async fn save_many(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    save(engine, q.all("names")).await
}

/// POST /images/prune?filters=
pub(crate) async fn prune(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    Ok(json_response(
        200,
        &engine.prune_images(&q.filters()?).await?,
    ))
}

/// The image inspect body with `Parent` (the local parent image ID or `""`), which the
/// 1.53 model lacks.
fn inspect(engine: &Engine, name: &str) -> Result<Value, EngineError> {
    let img = engine.images.get(name)?;
    let mut v = serde_json::to_value(engine.images.inspect(&img)).unwrap_or(json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "Parent".into(),
            json!(img.parent.clone().unwrap_or_default()),
        );
    }
    Ok(v)
}

/// Whether a listed image is an intermediate one (untagged with child images), which
/// `GET /images/json` hides unless `all`.
fn intermediate(engine: &Engine, img: &tether_image::Image) -> bool {
    img.repo_tags.is_empty() && !engine.images.children(&img.id).is_empty()
}

/// GET /images/json?all=&filters=
pub(crate) async fn list(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let imgs = engine.images.clone();
    let f = q.filters()?;
    let list: Vec<Value> = imgs
        .list()
        .iter()
        .filter(|i| q.flag("all") || !intermediate(&engine, i))
        .filter(|i| image_matches(i, &f))
        .map(|i| serde_json::to_value(imgs.summary(i)).unwrap_or(json!({})))
        .collect();
    Ok(json_response(200, &Value::Array(list)))
}

/// POST /images/create: `fromImage=` pulls (see [`super::registry::pull`]);
/// `fromSrc=-&repo=&tag=&changes=&message=` imports the body, a rootfs tar.
pub(crate) async fn create(State(engine): State<Arc<Engine>>, q: Q, req: Request) -> Reply {
    if q.contains_key("fromImage") {
        return super::registry::pull(engine.clone(), &q, req.headers()).await;
    }
    let src = q.get("fromSrc").cloned().unwrap_or_default();
    if src != "-" {
        return Err(EngineError::InvalidParam(format!(
            "fromSrc {src:?} is not supported: send the tar as the request body with fromSrc=-"
        ))
        .into());
    }
    let repo = q.get("repo").cloned().unwrap_or_default();
    let tag = q.get("tag").cloned().unwrap_or_default();
    let reference = if repo.is_empty() {
        None
    } else if tag.is_empty() {
        Some(repo)
    } else {
        Some(format!("{repo}:{tag}"))
    };
    let changes = q.all("changes");
    let message = q.get("message").cloned();
    let f = body_to_file(req).await?;
    let imgs = engine.images.clone();
    let img = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(f.path())?;
        Ok::<_, std::io::Error>(imgs.import(
            std::io::BufReader::new(file),
            reference.as_deref(),
            &changes,
            message.as_deref(),
        ))
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))??;
    match img {
        Ok(i) => Ok(json_response(200, &json!({"status": i.id}))),
        Err(e) => Ok(json_response(
            200,
            &json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}),
        )),
    }
}

/// POST /images/load: the body is a `docker save` or OCI archive.
pub(crate) async fn load(State(engine): State<Arc<Engine>>, req: Request) -> Reply {
    let f = body_to_file(req).await?;
    let imgs = engine.images.clone();
    let r = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(f.path())?;
        Ok::<_, std::io::Error>(imgs.load(std::io::BufReader::new(file)))
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))??;
    let lines = r?;
    let out: String = lines
        .iter()
        .map(|l| format!("{}\n", json!({"stream": format!("{l}\n")})))
        .collect();
    Ok(Response::builder()
        .header("Content-Type", "application/json")
        .body(full(out))
        .unwrap_or_else(|_| Response::new(full(""))))
}

/// The routes naming an image, `/images/{name}/ACTION` and `DELETE /images/{name}`: an
/// image name holds slashes (`127.0.0.1:5000/tools/busybox:1`), so the last segment
/// is the action: `GET json|history|get`, `POST push|tag`. Anything else is a 404.
pub(crate) async fn named(
    State(engine): State<Arc<Engine>>,
    Id(path): Id,
    q: Q,
    req: Request,
) -> Reply {
    let method = req.method().clone();
    if method == Method::DELETE {
        return remove(&engine, &path, &q).await;
    }
    let (name, action) = match path.rsplit_once('/') {
        Some((n, a)) if !n.is_empty() => (n.to_string(), a),
        _ => return Err(super::not_found(&req).into()),
    };
    match (method, action) {
        (Method::GET, "json") => Ok(json_response(200, &inspect(&engine, &name)?)),
        (Method::GET, "history") => history(&engine, &name),
        (Method::GET, "get") => save(engine.clone(), vec![name]).await,
        (Method::POST, "push") => {
            super::registry::push(engine.clone(), &name, &q, req.headers()).await
        }
        (Method::POST, "tag") => {
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().unwrap_or_else(|| "latest".into());
            engine.images.tag(&name, &format!("{repo}:{tag}"))?;
            Ok(Response::builder()
                .status(201)
                .body(full(""))
                .unwrap_or_else(|_| Response::new(full(""))))
        }
        _ => Err(super::not_found(&req).into()),
    }
}

/// DELETE /images/{name}?force=
async fn remove(engine: &Engine, name: &str, q: &Q) -> Reply {
    let used = engine.list_containers(true, None, &HashMap::new()).await?;
    let used_ids: Vec<String> = used
        .iter()
        .filter_map(|c| c["ImageID"].as_str().map(str::to_string))
        .collect();
    let items = engine.images.remove(name, q.flag("force"), &|id: &str| {
        used_ids.iter().any(|u| u == id)
    })?;
    Ok(json_response(
        200,
        &serde_json::to_value(items).unwrap_or(json!([])),
    ))
}

/// Docker's image list filters: `dangling=true|false`, `reference=PATTERN` (`*` wildcards,
/// matched against each tag with and without `:tag`), `label=k[=v]`.
fn image_matches(i: &tether_image::Image, f: &HashMap<String, Vec<String>>) -> bool {
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
    tether_engine::networks::label_match(&labels, f)
}

/// `*`-only glob (what Docker's reference filter needs).
fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((pre, rest)) => {
            s.starts_with(pre)
                && (0..=s.len() - pre.len())
                    .any(|k| s.is_char_boundary(pre.len() + k) && glob(rest, &s[pre.len() + k..]))
        }
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
        let mut i = tether_image::Image {
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
}
