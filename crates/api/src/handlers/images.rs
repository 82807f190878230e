//! Image routes: `GET /images/json`, `POST /images/create` (import; a pull goes to
//! [`registry`](super::registry)), `POST /images/load`, `POST /images/prune`,
//! `GET /images/get` (`docker save`), `POST /commit`, and the routes naming an image
//! (`/images/{name}/json|history|get|push|tag`, `DELETE /images/{name}`), whose names
//! hold slashes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use hyper::{Method, Response};
use serde_json::json;
use tether_engine::images::CommitOptions;
use tether_engine::{Engine, EngineError};

use super::{body_to_file, to_json, Id, Reply, Q};
use crate::{full, json_response, streams};

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

/// GET /images/get?names=... and GET /images/{name}/get: the `docker save` tar,
/// streamed. Names are checked before the first byte (404/400 as JSON errors); an
/// error later ends the stream early (the client sees a truncated tar).
async fn save(engine: &Engine, names: Vec<String>) -> Reply {
    let rx = engine.save_images(names).await?;
    Ok(Response::builder()
        .header("Content-Type", "application/x-tar")
        .body(streams::channel_body(rx))
        .unwrap_or_else(|_| Response::new(full(""))))
}

/// GET /images/get?names=...
pub(crate) async fn save_many(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    save(&engine, q.all("names")).await
}

/// POST /images/prune?filters=
pub(crate) async fn prune(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    Ok(json_response(
        200,
        &engine.prune_images(&q.filters()?).await?,
    ))
}

/// GET /images/json?all=&filters=
pub(crate) async fn list(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let list = engine.list_images(q.flag("all"), &q.filters()?);
    Ok(json_response(200, &to_json(&list)?))
}

/// POST /images/create: `fromImage=` pulls (see [`super::registry::pull`]);
/// `fromSrc=-&repo=&tag=&changes=&message=` imports the body, a rootfs tar, and answers
/// `{"status": ID}` or, when the import fails, Docker's progress error line.
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
    let f = body_to_file(req).await?;
    let archive = std::fs::File::open(f.path())?;
    match engine
        .import_image(
            archive,
            reference,
            q.all("changes"),
            q.get("message").cloned(),
        )
        .await
    {
        Ok(id) => Ok(json_response(200, &json!({"status": id}))),
        Err(e) => Ok(json_response(
            200,
            &json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}),
        )),
    }
}

/// POST /images/load: the body is a `docker save` or OCI archive.
pub(crate) async fn load(State(engine): State<Arc<Engine>>, req: Request) -> Reply {
    let f = body_to_file(req).await?;
    let lines = engine.load_images(std::fs::File::open(f.path())?).await?;
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
        let items = engine.remove_image(&path, q.flag("force")).await?;
        return Ok(json_response(200, &to_json(&items)?));
    }
    let (name, action) = match path.rsplit_once('/') {
        Some((n, a)) if !n.is_empty() => (n.to_string(), a),
        _ => return Err(super::not_found(&req).into()),
    };
    match (method, action) {
        (Method::GET, "json") => Ok(json_response(200, &engine.inspect_image(&name)?)),
        (Method::GET, "history") => {
            Ok(json_response(200, &to_json(&engine.image_history(&name)?)?))
        }
        (Method::GET, "get") => save(&engine, vec![name]).await,
        (Method::POST, "push") => {
            super::registry::push(engine.clone(), &name, &q, req.headers()).await
        }
        (Method::POST, "tag") => {
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().unwrap_or_else(|| "latest".into());
            engine.tag_image(&name, &format!("{repo}:{tag}"))?;
            Ok(Response::builder()
                .status(201)
                .body(full(""))
                .unwrap_or_else(|_| Response::new(full(""))))
        }
        _ => Err(super::not_found(&req).into()),
    }
}
