//! Exec routes: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (hijacked, or
//! detached), `POST /exec/{id}/resize`, `GET /exec/{id}/json`.

use std::sync::Arc;

use axum::extract::{Request, State};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tether_engine::{Engine, EngineError};
use tokio::sync::mpsc;

use super::{body_json, ok_empty, Id, Reply, Q};
use crate::json_response;
use crate::streams;

/// `POST /containers/{id}/exec` -> 201 `{"Id"}`.
pub(crate) async fn create(State(engine): State<Arc<Engine>>, Id(id): Id, req: Request) -> Reply {
    let cfg: bollard_stubs::models::ExecConfig = body_json(req).await?;
    let eid = engine.create_exec(&id, cfg).await?;
    Ok(json_response(201, &json!({"Id": eid})))
}

/// `POST /exec/{id}/start` with `{"Detach", "Tty", "ConsoleSize"}`: a detached exec runs
/// with its output dropped; otherwise the connection is hijacked.
pub(crate) async fn start(State(engine): State<Arc<Engine>>, Id(id): Id, req: Request) -> Reply {
    let tty = engine.exec_tty(&id);
    let (parts, body) = req.into_parts();
    let b = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let start: Value = serde_json::from_slice(&b).unwrap_or(json!({}));
    if let Some(cs) = start.get("ConsoleSize").filter(|v| !v.is_null()) {
        let size: Vec<usize> = serde_json::from_value(cs.clone()).map_err(|_| {
            EngineError::InvalidParam(format!(
                "invalid ConsoleSize {cs}: expected [height, width]"
            ))
        })?;
        engine.set_exec_console_size(&id, size)?;
    }
    let proc = engine.start_exec(&id).await?;
    if start["Detach"].as_bool().unwrap_or(false) {
        let e2 = engine.clone();
        tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel(64);
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let code = streams::pump_exec(proc, tx, tty, None).await;
            e2.finish_exec(&id, code);
        });
        return Ok(ok_empty());
    }
    let req = hyper::Request::from_parts(parts, ());
    let (tx, rx) = mpsc::channel(64);
    Ok(streams::hijack_exec(
        req,
        engine.clone(),
        id,
        proc,
        tx,
        rx,
        tty,
    ))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub(crate) async fn resize(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let (h, w) = q.size()?;
    engine.resize_exec(&id, h, w).await?;
    Ok(ok_empty())
}

/// `GET /exec/{id}/json`.
pub(crate) async fn inspect(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    Ok(json_response(200, &engine.inspect_exec(&id)?))
}
