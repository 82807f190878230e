//! Registry routes of the Docker Engine API: `POST /images/create?fromImage=`
//! (pull), `POST /images/{name}/push`, `POST /auth` and
//! `GET /distribution/{name}/json`, over [`tether_image::registry`].
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

/// A progress channel whose messages go out as lines of `out`.
fn progress_pipe(out: mpsc::Sender<Bytes>) -> registry::ProgressTx {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            if out.send(Bytes::from(format!("{v}\n"))).await.is_err() {
                // The client went away; keep draining so senders never block.
                while rx.recv().await.is_some() {}
                return;
            }
        }
    });
    tx
}

fn error_line(msg: &str) -> Value {
    json!({"errorDetail": {"message": msg}, "error": msg})
}

/// `POST /images/create?fromImage=NAME&tag=TAG[&platform=P]` with `X-Registry-Auth`.
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
    let auth = auth_of(headers);
    if tag.is_empty() && r.tag.is_none() && r.digest.is_none() {
        // The API's "all tags" pull (`docker pull --all-tags`).
        return pull_all_tags(engine, r, platform, auth).await;
    }
    let plan = match registry::prepare_pull(&r, platform.as_deref(), &auth).await {
        Ok(p) => p,
        Err(e) => return Ok(reg_err(&e)),
    };
    let (out, rx) = mpsc::channel(64);
    let tx = progress_pipe(out);
    let store = engine.images.clone();
    let name = r.clone().with_default_tag().familiar();
    tokio::spawn(async move {
        match registry::run_pull(plan, store, &tx).await {
            Ok(_) => engine.emit_image("pull", &name),
            Err(e) => {
                let _ = tx.send(error_line(&e.to_string()));
            }
        }
    });
    Ok(json_stream(rx))
}

/// `POST /images/create?fromImage=NAME` with an empty `tag`: every tag of the
/// repository, one after the other in one progress stream.
async fn pull_all_tags(
    engine: Arc<Engine>,
    r: tether_image::Reference,
    platform: Option<String>,
    auth: AuthConfig,
) -> Reply {
    let tags = match registry::list_tags(&r, &auth).await {
        Ok(t) => t,
        Err(e) => return Ok(reg_err(&e)),
    };
    let (out, rx) = mpsc::channel(64);
    let tx = progress_pipe(out);
    let store = engine.images.clone();
    tokio::spawn(async move {
        for t in tags {
            let mut one = r.clone();
            one.tag = Some(t);
            let res = match registry::prepare_pull(&one, platform.as_deref(), &auth).await {
                Ok(plan) => registry::run_pull(plan, store.clone(), &tx).await,
                Err(e) => Err(e),
            };
            match res {
                Ok(_) => engine.emit_image("pull", &one.familiar()),
                Err(e) => {
                    let _ = tx.send(error_line(&e.to_string()));
                    return;
                }
            }
        }
    });
    Ok(json_stream(rx))
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
    if r.digest.is_some() {
        return Err(EngineError::InvalidParam(format!(
            "cannot push a digest reference ({}): push a tag",
            r.familiar()
        ))
        .into());
    }
    let full = r.clone().with_default_tag();
    if engine.images.get(&full.full()).is_err() {
        return Err(EngineError::NotFound(format!(
            "An image does not exist locally with the tag: {}",
            r.familiar_name()
        ))
        .into());
    }
    let auth = auth_of(headers);
    let (out, rx) = mpsc::channel(64);
    let tx = progress_pipe(out);
    let store = engine.images.clone();
    tokio::spawn(async move {
        match registry::push(store, &full, &auth, &tx).await {
            Ok(_) => engine.emit_image("push", &full.familiar()),
            Err(e) => {
                let _ = tx.send(error_line(&e.to_string()));
            }
        }
    });
    Ok(json_stream(rx))
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
