//! `POST /build` (Docker Engine API "ImageBuild", the classic builder): the
//! query becomes [`BuildOptions`], the body (a tar of the build context,
//! plain or gzip) is spooled and handed to [`Engine::start_build`], and the
//! engine's progress messages go out as `application/json` lines
//! (`{"stream": ...}`, `{"aux": {"ID": ...}}`, `{"errorDetail": ..., "error": ...}`).
//! Errors found before the context is read (bad query, unknown network) are
//! plain JSON errors with their status. When the client goes away the build
//! is cancelled.

use std::sync::Arc;

use axum::extract::{Request, State};
use bytes::Bytes;
use serde_json::Value;
use tether_engine::build::BuildOptions;
use tether_engine::{Engine, EngineError};
use tokio::sync::mpsc;

use super::Reply;

/// Handles `POST /build`.
pub(crate) async fn build(State(engine): State<Arc<Engine>>, req: Request) -> Reply {
    let pairs: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut opts = match BuildOptions::from_query(&pairs) {
        Ok(o) => o,
        Err(e) => return Ok(super::refuse_unread(req, e.status(), &e.to_string()).await),
    };
    if let Err(e) = engine.validate_build(&opts).await {
        return Ok(super::refuse_unread(req, e.status(), &e.to_string()).await);
    }
    if let Some(a) = req
        .headers()
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
    {
        opts.auth = registry_config_auth(a);
    }
    let spool = super::body_to_file(req).await?;
    let archive = std::fs::File::open(spool.path())
        .map_err(|e| EngineError::Internal(format!("reading the context: {e}")))?;
    let mut rx = engine.start_build(opts, archive).await?;
    let (out, body_rx) = mpsc::channel::<Bytes>(64);
    // Lines out until the client goes away; then the receiver is dropped, which
    // the engine sees (tx closed) and cancels the build.
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(v) => {
                        if out.send(Bytes::from(format!("{v}\n"))).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                // the client went away while the build was quiet
                _ = out.closed() => return,
            }
        }
    });
    Ok(super::json_stream(body_rx))
}

/// `X-Registry-Config`: base64url JSON `{"registry": {"username": .., "password": ..}}`;
/// the first entry's credentials are used for base-image pulls.
fn registry_config_auth(header: &str) -> tether_image::registry::AuthConfig {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(header.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(header.trim()))
        .unwrap_or_default();
    let v: serde_json::Map<String, Value> = serde_json::from_slice(&raw).unwrap_or_default();
    v.into_iter()
        .next()
        .and_then(|(_, a)| serde_json::from_value(a).ok())
        .unwrap_or_default()
}
