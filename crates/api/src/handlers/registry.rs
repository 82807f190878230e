//! Registry routes of the Docker Engine API: `POST /images/create?fromImage=`
//! (pull, [`Engine::pull_image`]), `POST /images/{name}/push` ([`Engine::push_image`]),
//! `POST /auth` ([`Engine::registry_login`]), `GET /distribution/{name}/json`
//! ([`Engine::inspect_distribution`]) and `GET /images/search` ([`Engine::search_images`]).
//!
//! Pull and push answer with a stream of Docker's JSON progress messages
//! (`application/json`, one object per line). Errors found before any
//! progress (bad reference, unknown repository or tag, refused credentials,
//! unreachable registry) are a plain JSON error with its status; later ones
//! end the stream with `{"errorDetail":{"message":...},"error":...}`.

use std::collections::HashMap;

use axum::extract::{Request, State};
use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::Response;
use serde_json::json;
use std::sync::Arc;
use tether_engine::registry::Progress;
use tether_engine::{Engine, EngineError};
use tether_image::registry::{self, AuthConfig, RegistryError};
use tokio::sync::mpsc;

use super::{body_bytes, json_stream, to_json, Id, Reply, Q};
use crate::{error_response, json_response, Body};

/// Credentials from the `X-Registry-Auth` header (anonymous when absent).
fn auth_of(headers: &HeaderMap) -> AuthConfig {
    headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .map(AuthConfig::from_header)
        .unwrap_or_default()
}

fn reg_err(e: &RegistryError) -> Response<Body> {
    error_response(e.status(), &e.to_string())
}

/// The progress messages of a pull or push as JSON lines of the response.
fn progress_stream(mut progress: Progress) -> Response<Body> {
    let (out, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(v) = progress.recv().await {
            if out.send(Bytes::from(format!("{v}\n"))).await.is_err() {
                // The client went away; keep draining so the pull or push goes on.
                while progress.recv().await.is_some() {}
                return;
            }
        }
    });
    json_stream(rx)
}

/// `POST /images/create?fromImage=NAME&tag=TAG[&platform=P]` with `X-Registry-Auth`; an
/// empty `tag` pulls every tag of the repository.
pub(crate) async fn pull(
    engine: Arc<Engine>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Reply {
    let image = q.get("fromImage").cloned().unwrap_or_default();
    let tag = q.get("tag").cloned().unwrap_or_default();
    let r = registry::reference_from_parts(&image, &tag)
        .map_err(|e| EngineError::InvalidParam(e.to_string()))?;
    let platform = q.get("platform").cloned().filter(|p| !p.is_empty());
    // The API's "all tags" pull (`docker pull --all-tags`).
    let all_tags = tag.is_empty() && r.tag.is_none() && r.digest.is_none();
    match engine
        .pull_image(r, all_tags, platform, auth_of(headers))
        .await
    {
        Ok(progress) => Ok(progress_stream(progress)),
        Err(e) => Ok(reg_err(&e)),
    }
}

/// `POST /images/{name}/push?tag=TAG` with `X-Registry-Auth`.
pub(crate) async fn push(
    engine: Arc<Engine>,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Reply {
    let tag = q.get("tag").cloned().unwrap_or_default();
    let r = registry::reference_from_parts(name, &tag)
        .map_err(|e| EngineError::InvalidParam(e.to_string()))?;
    Ok(progress_stream(engine.push_image(&r, auth_of(headers))?))
}

/// `POST /auth` with `{"username","password","serveraddress"}`.
pub(crate) async fn auth(State(engine): State<Arc<Engine>>, req: Request) -> Reply {
    let body = body_bytes(req).await?;
    let a: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| EngineError::InvalidParam(format!("invalid auth configuration: {e}")))?;
    match engine.registry_login(&a).await {
        Ok(status) => Ok(json_response(
            200,
            &json!({"Status": status, "IdentityToken": ""}),
        )),
        Err(e) => Ok(reg_err(&e)),
    }
}

/// `GET /distribution/{name}/json` with `X-Registry-Auth` (the name holds slashes, so
/// the route takes every path under `/distribution/`; others are a 404).
pub(crate) async fn distribution(
    State(engine): State<Arc<Engine>>,
    Id(path): Id,
    req: Request,
) -> Reply {
    let name = match path.strip_suffix("/json") {
        Some(n) if !n.is_empty() && req.method() == hyper::Method::GET => n,
        _ => return Err(super::not_found(&req).into()),
    };
    let headers = req.headers();
    let r = tether_image::parse_reference(name)
        .map_err(|e| EngineError::InvalidParam(e.to_string()))?;
    match engine.inspect_distribution(&r, &auth_of(headers)).await {
        Ok(v) => Ok(json_response(200, &v)),
        Err(e) => Ok(reg_err(&e)),
    }
}

/// `GET /images/search?term=TERM[&limit=N][&filters=JSON]` with
/// `X-Registry-Auth`: `[{"name","description","star_count","is_official",
/// "is_automated"}]` ([`Engine::search_images`]).
pub(crate) async fn search(State(engine): State<Arc<Engine>>, q: Q, headers: HeaderMap) -> Reply {
    let filters = &q.filters()?;
    let headers = &headers;
    let term = q.get("term").cloned().unwrap_or_default();
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => Some(l.parse::<u32>().map_err(|_| {
            EngineError::InvalidParam(format!(
                "invalid limit {l:?}: the search limit must be a number between 1 and 100"
            ))
        })?),
    };
    match engine
        .search_images(&term, limit, filters, &auth_of(headers))
        .await
    {
        Ok(list) => Ok(json_response(200, &to_json(&list)?)),
        Err(e) => Ok(reg_err(&e)),
    }
}
