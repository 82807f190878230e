//! Image routes made of containers and for housekeeping: `POST /commit`,
//! `GET /images/{name}/history`, `GET /images/get` and `GET /images/{name}/get`
//! (`docker save`), `POST /images/prune`, `GET /system/df`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use hyper::Response;
use serde_json::{json, Value};
use tether_engine::images::CommitOptions;
use tether_engine::{Engine, EngineError};
use tokio::sync::mpsc;

use crate::{json_response, Body};

/// All values of query parameter `key` (`names=a&names=b`), in order.
pub(crate) fn query_all(raw: Option<&str>, key: &str) -> Vec<String> {
    raw.map(|qs| {
        url::form_urlencoded::parse(qs.as_bytes())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .collect()
    })
    .unwrap_or_default()
}

fn flag_default(q: &HashMap<String, String>, k: &str, default: bool) -> bool {
    match q.get(k).map(|s| s.to_ascii_lowercase()) {
        None => default,
        Some(v) if v.is_empty() => default,
        Some(v) => matches!(v.as_str(), "1" | "true"),
    }
}

/// POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes= -> 201 `{"Id"}`.
pub(crate) async fn commit(
    engine: Arc<Engine>,
    q: &HashMap<String, String>,
    raw_query: Option<&str>,
) -> Result<Response<Body>, EngineError> {
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
            )))
        }
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    let opts = CommitOptions {
        reference,
        comment: q.get("comment").cloned(),
        author: q.get("author").cloned(),
        pause: flag_default(q, "pause", true),
        changes: query_all(raw_query, "changes"),
    };
    let id = engine.commit(container, opts).await?;
    Ok(json_response(201, &json!({ "Id": id })))
}

/// GET /images/{name}/history.
pub(crate) fn history(engine: &Engine, name: &str) -> Result<Response<Body>, EngineError> {
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
pub(crate) async fn save(
    engine: Arc<Engine>,
    names: Vec<String>,
) -> Result<Response<Body>, EngineError> {
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

/// POST /images/prune.
pub(crate) async fn prune(
    engine: &Engine,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Response<Body>, EngineError> {
    Ok(json_response(200, &engine.prune_images(filters).await?))
}

/// GET /system/df.
pub(crate) async fn df(engine: &Engine) -> Result<Response<Body>, EngineError> {
    Ok(json_response(200, &engine.system_df().await?))
}

/// The image inspect body with `Parent` (the local parent image ID or `""`), which the
/// 1.53 model lacks.
pub(crate) fn inspect(engine: &Engine, name: &str) -> Result<Value, EngineError> {
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
pub(crate) fn intermediate(engine: &Engine, img: &tether_image::Image) -> bool {
    img.repo_tags.is_empty() && !engine.images.children(&img.id).is_empty()
}
