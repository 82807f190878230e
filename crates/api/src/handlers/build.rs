//! `POST /build` (Docker Engine API "ImageBuild", the classic builder): the
//! query becomes [`BuildOptions`], the body (a tar of the build context,
//! plain or gzip) is handed to [`Engine::start_build`] as it arrives, and the
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
    // The context is unpacked as it arrives (no spool file): the body's frames go down
    // a channel to the engine's blocking reader. The body is read to its end even when
    // unpacking stops early, so that the client gets the answer.
    let (chunks, chunk_rx) = mpsc::channel::<Bytes>(16);
    let pump = tokio::spawn(async move {
        use http_body_util::BodyExt;
        let mut body = req.into_body();
        let mut open = true;
        while let Some(fr) = body.frame().await {
            let Ok(fr) = fr else { return false };
            if let Ok(d) = fr.into_data() {
                if open && chunks.send(d).await.is_err() {
                    open = false;
                }
            }
        }
        true
    });
    let started = engine
        .start_build(
            opts,
            ChannelReader {
                rx: chunk_rx,
                cur: Bytes::new(),
            },
        )
        .await;
    let complete = pump.await.unwrap_or(false);
    let mut rx = started?;
    if !complete {
        return Err(EngineError::InvalidParam(
            "reading the build context: the client's request body ended early".into(),
        )
        .into());
    }
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

/// A blocking `Read` over the request body's chunks.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
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

/// `POST /build/prune?all=` (Engine API "BuildPrune"): `{"CachesDeleted": [...],
/// "SpaceReclaimed": N}`, see [`Engine::prune_build_cache`].
pub(crate) async fn prune(State(engine): State<Arc<Engine>>, q: super::Q) -> Reply {
    let (deleted, space) = engine.prune_build_cache(q.flag("all"))?;
    Ok(crate::json_response(
        200,
        &serde_json::json!({"CachesDeleted": deleted, "SpaceReclaimed": space}),
    ))
}
