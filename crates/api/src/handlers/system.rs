//! System routes: `/_ping` (GET and HEAD), `/version`, `/info`, `/system/df`,
//! `/plugins`, and the Swarm routes (`/nodes`, `/swarm`, `/services`, ...).

use std::sync::Arc;

use axum::extract::Request;
use axum::extract::State;
use hyper::{Method, Response};
use serde_json::{json, Value};
use tether_engine::Engine;

use super::{refuse_unread, Reply};
use crate::{full, json_response, Body, API_VERSION, MIN_API_VERSION};

/// `GET /_ping` (`OK`) and `HEAD /_ping` (no body), with the API version headers.
pub(crate) async fn ping(method: Method) -> Response<Body> {
    Response::builder()
        .header("Api-Version", API_VERSION)
        .header("Ostype", "linux")
        .header("Docker-Experimental", "false")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(full(if method == Method::HEAD { "" } else { "OK" }))
        .unwrap_or_else(|_| Response::new(full("OK")))
}

/// `GET /version`.
pub(crate) async fn version() -> Response<Body> {
    json_response(200, &version_body())
}

/// `GET /info`.
pub(crate) async fn info(State(engine): State<Arc<Engine>>) -> Response<Body> {
    json_response(200, &engine.info().await)
}

/// `GET /nodes`: the cluster's hosts (`--cluster-store`); without a cluster, and for
/// any other method, Docker's 503 of a node that is not a swarm manager.
pub(crate) async fn nodes(State(engine): State<Arc<Engine>>, req: Request) -> Reply {
    if req.method() != Method::GET {
        return Ok(no_swarm(req).await);
    }
    Ok(json_response(200, &engine.nodes().await?))
}

/// Any Swarm API request (`/swarm*`, `/services*`, `/nodes/*`, `/tasks*`, `/secrets*`,
/// `/configs*`): 503 `{"message": "This node is not a swarm manager. ..."}`, Docker's
/// answer on a node outside a swarm (Engine API, Swarm section). The body is read
/// first, so that the client gets the answer.
pub(crate) async fn no_swarm(req: Request) -> Response<Body> {
    refuse_unread(req, 503, tether_engine::NOT_SWARM_MANAGER).await
}

/// `GET /plugins`: no managed plugins, `[]` (Engine API "Plugin list").
pub(crate) async fn plugins() -> Response<Body> {
    json_response(200, &json!([]))
}

/// `/plugins/{name}/...` and the other plugin routes: tether manages no plugins, so a
/// named plugin is Docker's 404 `plugin "NAME" not found`, and installing one
/// (`/plugins/pull`, `/plugins/create`, `/plugins/privileges`) is a 501 saying so.
pub(crate) async fn plugin(req: Request) -> Response<Body> {
    let path = req.uri().path().to_string();
    let rest = path.trim_start_matches("/plugins/");
    match rest {
        "pull" | "create" | "privileges" => {
            refuse_unread(
                req,
                501,
                "tether does not manage plugins: its network drivers are built in",
            )
            .await
        }
        _ => {
            let name = rest.rsplit_once('/').map(|(n, _)| n).unwrap_or(rest);
            refuse_unread(req, 404, &format!("plugin \"{name}\" not found")).await
        }
    }
}

/// `GET /system/df`.
pub(crate) async fn df(State(engine): State<Arc<Engine>>) -> Reply {
    Ok(json_response(200, &engine.system_df().await?))
}

/// The `/version` body: the engine's and the API's versions, the kernel's.
fn version_body() -> Value {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    json!({
        "Platform": {"Name": "tether"},
        "Components": [{"Name": "Engine", "Version": env!("CARGO_PKG_VERSION"), "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": "amd64", "KernelVersion": kernel}}],
        "Version": env!("CARGO_PKG_VERSION"), "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": "rust", "Os": "linux", "Arch": "amd64", "KernelVersion": kernel, "BuildTime": "",
    })
}
