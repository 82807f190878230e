//! Network routes: `/networks`, `create`, `prune`, `/networks/{id}` (inspect, delete,
//! connect, disconnect), and tether's own under `/tether/v1/`: `dns-setup`, `graph`,
//! `explain` and `firewall/reload`.

use std::sync::Arc;

use axum::extract::{Request, State};
use hyper::Response;
use serde_json::{json, Value};
use tether_engine::{Engine, EngineError};

use super::{body_json, no_content, ok_empty, Id, Reply, Q};
use crate::{full, json_response, API_VERSION};

/// `GET /networks?filters=`.
pub(crate) async fn list(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    Ok(json_response(
        200,
        &Value::Array(engine.list_networks(&q.filters()?).await?),
    ))
}

/// `POST /networks/create` -> 201 `{"Id", "Warning"}`.
pub(crate) async fn create(State(engine): State<Arc<Engine>>, req: Request) -> Reply {
    let body: bollard_stubs::models::NetworkCreateRequest = body_json(req).await?;
    let (id, warning) = engine.create_network(body).await?;
    Ok(json_response(
        201,
        &json!({"Id": id, "Warning": warning.unwrap_or_default()}),
    ))
}

/// `POST /networks/prune?filters=`.
pub(crate) async fn prune(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let names = engine.prune_networks(&q.filters()?).await?;
    Ok(json_response(200, &json!({"NetworksDeleted": names})))
}

/// `GET /networks/{id}`.
pub(crate) async fn inspect(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    Ok(json_response(200, &engine.inspect_network(&id).await?))
}

/// `DELETE /networks/{id}`.
pub(crate) async fn remove(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    engine.remove_network(&id).await?;
    Ok(no_content())
}

/// `POST /networks/{id}/connect` with `{"Container", "EndpointConfig"}`.
pub(crate) async fn connect(State(engine): State<Arc<Engine>>, Id(id): Id, req: Request) -> Reply {
    let body: bollard_stubs::models::NetworkConnectRequest = body_json(req).await?;
    engine
        .connect(
            &id,
            &body.container,
            body.endpoint_config.unwrap_or_default(),
        )
        .await?;
    Ok(ok_empty())
}

/// `POST /networks/{id}/disconnect` with `{"Container", "Force"}`.
pub(crate) async fn disconnect(
    State(engine): State<Arc<Engine>>,
    Id(id): Id,
    req: Request,
) -> Reply {
    let body: bollard_stubs::models::NetworkDisconnectRequest = body_json(req).await?;
    engine
        .disconnect(&id, &body.container, body.force.unwrap_or(false))
        .await?;
    Ok(ok_empty())
}

/// `GET /tether/v1/dns-setup`: how the host resolves container names, per network.
pub(crate) async fn dns_setup(State(engine): State<Arc<Engine>>) -> Reply {
    Ok(json_response(
        200,
        &serde_json::to_value(engine.host_dns_setup().await)
            .map_err(|e| EngineError::Internal(e.to_string()))?,
    ))
}

/// `GET /tether/v1/graph?networks=a,b&format=svg|dot|...`: the topology picture.
pub(crate) async fn graph(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let only: Vec<String> = q
        .get("networks")
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let format = q.get("format").map(String::as_str).unwrap_or("svg");
    let (body, ct) = engine.graph(&only, format).await?;
    Ok(Response::builder()
        .header("Content-Type", ct)
        .header("Api-Version", API_VERSION)
        .body(full(body))
        .map_err(|e| EngineError::Internal(e.to_string()))?)
}

/// `GET /tether/v1/explain?src=SRC&dst=DST[:PORT[/PROTO]][&probe=1]`.
pub(crate) async fn explain(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let arg = |k: &str| {
        q.get(k).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
            EngineError::InvalidParam(format!(
                "query parameter {k} is required: /tether/v1/explain?src=SRC&dst=DST[:PORT[/PROTO]][&probe=1]"
            ))
        })
    };
    let e = engine
        .explain(&arg("src")?, &arg("dst")?, q.flag("probe"))
        .await?;
    let v = serde_json::to_value(&e)
        .map_err(|e| EngineError::Internal(format!("encoding the explanation: {e}")))?;
    Ok(json_response(200, &v))
}

/// `POST /tether/v1/firewall/reload` -> `{"Restored": N}`.
pub(crate) async fn reload_firewall(State(engine): State<Arc<Engine>>) -> Reply {
    let n = engine.reload_firewall("requested through the API").await?;
    Ok(json_response(200, &json!({"Restored": n})))
}
