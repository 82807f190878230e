//! Registry routes of the Docker Engine API: `POST /images/create?fromImage=`
//! (pull, [`Engine::pull_image`]), `POST /images/{name}/push` ([`Engine::push_image`]),
//! and the registry client's own `POST /auth`, `GET /distribution/{name}/json` and
//! `GET /images/search` over [`tether_image::registry`].
//!
//! Pull and push answer with a stream of Docker's JSON progress messages
//! (`application/json`, one object per line). Errors found before any
//! progress (bad reference, unknown repository or tag, refused credentials,
//! unreachable registry) are a plain JSON error with its status; later ones
//! end the stream with `{"errorDetail":{"message":...},"error":...}`.

use std::collections::HashMap;

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use tether_engine::registry::Progress;
use tether_engine::{Engine, EngineError};
use tether_image::registry::{self, AuthConfig, RegistryError};
use tokio::sync::mpsc;

use super::{body_bytes, json_stream, Id, Reply, Q};
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
pub(crate) async fn auth(req: axum::extract::Request) -> Reply {
    let body = body_bytes(req).await?;
    let a: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| EngineError::InvalidParam(format!("invalid auth configuration: {e}")))?;
    match registry::check_auth(&a).await {
        Ok(status) => Ok(json_response(
            200,
            &json!({"Status": status, "IdentityToken": ""}),
        )),
        Err(e) => Ok(reg_err(&e)),
    }
}

/// `GET /distribution/{name}/json` with `X-Registry-Auth` (the name holds slashes, so
/// the route takes every path under `/distribution/`; others are a 404).
pub(crate) async fn distribution(Id(path): Id, req: axum::extract::Request) -> Reply {
    let name = match path.strip_suffix("/json") {
        Some(n) if !n.is_empty() && req.method() == hyper::Method::GET => n,
        _ => return Err(super::not_found(&req).into()),
    };
    let headers = req.headers();
    let r = tether_image::parse_reference(name)
        .map_err(|e| EngineError::InvalidParam(e.to_string()))?;
    match registry::inspect_distribution(&r, &auth_of(headers)).await {
        Ok(v) => Ok(json_response(200, &v)),
        Err(e) => Ok(reg_err(&e)),
    }
}

/// `GET /images/search?term=TERM[&limit=N][&filters=JSON]` with
/// `X-Registry-Auth`: `[{"name","description","star_count","is_official",
/// "is_automated"}]` from the registry's v1 search API
/// ([`registry::search`]). Filters as moby's: `is-official=true|false`,
/// `is-automated=true|false`, `stars=N` (at least N stars).
pub(crate) async fn search(q: Q, headers: HeaderMap) -> Reply {
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
    let mut official = None;
    let mut automated = None;
    let mut stars = 0u64;
    for (k, vals) in filters {
        for v in vals {
            let boolean = || match v.as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(EngineError::InvalidParam(format!(
                    "invalid filter '{k}={v}': expected true or false"
                ))),
            };
            match k.as_str() {
                "is-official" => official = Some(boolean()?),
                "is-automated" => automated = Some(boolean()?),
                "stars" => {
                    stars = v.parse().map_err(|_| {
                        EngineError::InvalidParam(format!(
                            "invalid filter 'stars={v}': expected a number"
                        ))
                    })?
                }
                _ => {
                    return Err(EngineError::InvalidParam(format!(
                    "invalid filter '{k}': valid filters are is-official, is-automated and stars"
                ))
                    .into())
                }
            }
        }
    }
    match registry::search(&term, limit, &auth_of(headers)).await {
        Ok(list) => {
            let list: Vec<Value> = list
                .into_iter()
                .filter(|r| official.is_none_or(|o| r.is_official == o))
                .filter(|r| automated.is_none_or(|a| r.is_automated == a))
                .filter(|r| r.star_count >= stars)
                .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
                .collect();
            Ok(json_response(200, &Value::Array(list)))
        }
        Err(e) => Ok(reg_err(&e)),
    }
}
