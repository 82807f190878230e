//! Exec routes: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (hijacked, or
//! detached), `POST /exec/{id}/resize`, `GET /exec/{id}/json`.

use std::sync::Arc;

use axum::extract::{Request, State};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tether_engine::exec::ExecStart;
use tether_engine::{Engine, EngineError};

use super::{body_json, ok_empty, Id, Reply, Q};
use crate::json_response;
use crate::streams;

/// `POST /containers/{id}/exec` -> 201 `{"Id"}`.
pub(crate) async fn create(State(engine): State<Arc<Engine>>, Id(id): Id, req: Request) -> Reply {
    let cfg: bollard_stubs::models::ExecConfig = body_json(req).await?;
    let eid = engine.create_exec(&id, cfg).await?;
    Ok(json_response(201, &json!({"Id": eid})))
}

/// `POST /exec/{id}/start` with `{"Detach", "Tty", "ConsoleSize"}`: a detached exec is
/// answered at once; otherwise the connection is hijacked.
pub(crate) async fn start(State(engine): State<Arc<Engine>>, Id(id): Id, req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let b = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let start: Value = serde_json::from_slice(&b).unwrap_or(json!({}));
    let console_size = match start.get("ConsoleSize").filter(|v| !v.is_null()) {
        Some(cs) => Some(serde_json::from_value(cs.clone()).map_err(|_| {
            EngineError::InvalidParam(format!(
                "invalid ConsoleSize {cs}: expected [height, width]"
            ))
        })?),
        None => None,
    };
    let opts = ExecStart {
        detach: start["Detach"].as_bool().unwrap_or(false),
        console_size,
        tty: start["Tty"].as_bool().unwrap_or(false),
    };
    match engine.run_exec(&id, opts).await? {
        None => Ok(ok_empty()),
        Some(proc) => {
            let req = hyper::Request::from_parts(parts, ());
            Ok(streams::hijack_exec(req, engine.clone(), id, proc))
        }
    }
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
