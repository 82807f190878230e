//! Volume routes: `/volumes`, `create`, `prune`, `/volumes/{name}` (inspect, delete).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use serde_json::json;
use tether_engine::Engine;

use super::{body_json, no_content, ApiVersion, Id, Reply, Q};
use crate::json_response;

/// `GET /volumes?filters=`.
pub(crate) async fn list(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    Ok(json_response(
        200,
        &engine.list_volumes(&q.filters()?).await,
    ))
}

/// `POST /volumes/create` with `{"Name", "Driver", "Labels"}` -> 201.
pub(crate) async fn create(State(engine): State<Arc<Engine>>, req: Request) -> Reply {
    let body: bollard_stubs::models::VolumeCreateRequest = body_json(req).await?;
    let labels: HashMap<String, String> = body.labels.unwrap_or_default();
    Ok(json_response(
        201,
        &engine.create_volume(body.name, labels, body.driver).await?,
    ))
}

/// `POST /volumes/prune?filters=`. Before API 1.42 a prune takes named volumes too
/// (as if the filters said `all=true`), as moby keeps for old clients.
pub(crate) async fn prune(State(engine): State<Arc<Engine>>, v: ApiVersion, q: Q) -> Reply {
    let mut filters = q.filters()?;
    if v.before(1, 42) {
        filters.insert("all".into(), vec!["true".into()]);
    }
    let (names, space) = engine.prune_volumes(&filters).await?;
    Ok(json_response(
        200,
        &json!({"VolumesDeleted": names, "SpaceReclaimed": space}),
    ))
}

/// `GET /volumes/{name}`.
pub(crate) async fn inspect(State(engine): State<Arc<Engine>>, Id(name): Id) -> Reply {
    Ok(json_response(200, &engine.inspect_volume(&name).await?))
}

/// `DELETE /volumes/{name}?force=`.
pub(crate) async fn remove(State(engine): State<Arc<Engine>>, Id(name): Id, q: Q) -> Reply {
    engine.remove_volume(&name, q.flag("force")).await?;
    Ok(no_content())
}
