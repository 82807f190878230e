//! The API's router: every route of the Docker Engine API that tether serves (and its
//! own under `/tether/v1/`), an [`axum::Router`] over the handler modules.
//!
//! Routing happens in [`handle`]: the optional `/v{version}` prefix is stripped (a
//! version outside [`MIN_API_VERSION`]..=[`API_VERSION`] is refused with Docker's 400),
//! the path is routed without its leading and trailing slashes, and a request no route
//! takes is a 404 `page not found: METHOD PATH` in Docker's JSON error shape.
//!
//! Two routers, tried in order, keep Docker's precedence: the routes of fixed paths
//! (`/containers/json`, `/images/create`, ...) and then the routes naming an object
//! (`/containers/{id}`, `/images/{*name}`, ...). A fixed path asked with another method
//! falls through to the object routes, so `DELETE /containers/json` removes the container
//! named `json` and `GET /networks/create` inspects the network named `create`, as with
//! Docker's router. GET routes do not answer HEAD (only `/_ping` and the archive stat do).

use std::sync::Arc;

use axum::extract::Request;
use axum::handler::Handler;
use axum::routing::{any, delete, get, post, MethodRouter};
use axum::Router;
use hyper::body::Incoming;
use hyper::Response;
use tether_engine::Engine;
use tower::ServiceExt;

use crate::handlers::{
    build, containers, events, exec, images, networks, not_found, refuse_unread, registry, system,
    volumes, ApiVersion, Error, RoutedPath,
};
use crate::{API_VERSION, MIN_API_VERSION};

type Routes = Router<Arc<Engine>>;

/// The 404 of a path no route takes, or of a method its route does not serve.
async fn fallback(req: Request) -> Error {
    Error(not_found(&req))
}

/// A GET route that does not answer HEAD (axum's `get` would).
fn get_only<H, T>(h: H) -> MethodRouter<Arc<Engine>>
where
    H: Handler<T, Arc<Engine>>,
    T: 'static,
{
    get(h).head(fallback)
}

/// The routes naming an object.
fn objects() -> Routes {
    Router::new()
        // containers
        .route("/containers/{id}", delete(containers::remove))
        .route("/containers/{id}/json", get_only(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/resize", post(containers::resize))
        .route(
            "/containers/{id}/archive",
            get(containers::archive_get)
                .head(containers::archive_stat)
                .put(containers::archive_put),
        )
        .route("/containers/{id}/export", get_only(containers::export))
        .route("/containers/{id}/changes", get_only(containers::changes))
        .route("/containers/{id}/logs", get_only(containers::logs))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/top", get_only(containers::top))
        .route("/containers/{id}/stats", get_only(containers::stats))
        .route("/containers/{id}/update", post(containers::update))
        // exec
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get_only(exec::inspect))
        // images: names hold slashes; the handlers read the action off the end
        .route("/images/{*name}", any(images::named))
        .route("/distribution/{*name}", any(registry::distribution))
        // networks
        .route(
            "/networks/{id}",
            get_only(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        // volumes
        .route(
            "/volumes/{name}",
            get_only(volumes::inspect).delete(volumes::remove),
        )
        // a link name `/PARENT/ALIAS` (DELETE ?link=1) holds slashes: no route takes it
        .fallback(containers::remove_link_path)
        .method_not_allowed_fallback(fallback)
}

/// The routes of fixed paths.
fn fixed() -> Routes {
    Router::new()
        // system
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get_only(system::version))
        .route("/info", get_only(system::info))
        // Swarm: tether's cluster hosts on GET /nodes, Docker's 503 for the rest
        .route("/nodes", any(system::nodes))
        .route("/nodes/{*rest}", any(system::no_swarm))
        .route("/swarm", any(system::no_swarm))
        .route("/swarm/{*rest}", any(system::no_swarm))
        .route("/services", any(system::no_swarm))
        .route("/services/{*rest}", any(system::no_swarm))
        .route("/tasks", any(system::no_swarm))
        .route("/tasks/{*rest}", any(system::no_swarm))
        .route("/secrets", any(system::no_swarm))
        .route("/secrets/{*rest}", any(system::no_swarm))
        .route("/configs", any(system::no_swarm))
        .route("/configs/{*rest}", any(system::no_swarm))
        .route("/plugins", get_only(system::plugins))
        .route("/plugins/{*rest}", any(system::plugin))
        .route("/system/df", get_only(system::df))
        .route("/events", get_only(events::events))
        // containers
        .route("/containers/json", get_only(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/prune", post(containers::prune))
        // images
        .route("/commit", post(images::commit))
        .route("/images/json", get_only(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/prune", post(images::prune))
        .route("/images/get", get_only(images::save_many))
        .route("/images/search", get_only(registry::search))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/auth", post(registry::auth))
        // volumes
        .route("/volumes", get_only(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        // networks, and tether's own
        .route("/networks", get_only(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route("/tether/v1/dns-setup", get_only(networks::dns_setup))
        .route("/tether/v1/graph", get_only(networks::graph))
        .route("/tether/v1/explain", get_only(networks::explain))
        .route(
            "/tether/v1/firewall/reload",
            post(networks::reload_firewall),
        )
}

/// The API's router over `engine`.
pub(crate) fn router(engine: Arc<Engine>) -> Router {
    let objects: Router = objects().with_state(engine.clone());
    let to_objects = {
        let objects = objects.clone();
        move |req: Request| async move { objects.oneshot(req).await }
    };
    fixed()
        .method_not_allowed_fallback(to_objects)
        .fallback_service(objects)
        .with_state(engine)
}

/// A numeric API version `MAJOR.MINOR` as a comparable pair.
fn api_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Handles one request: the version prefix, then the router.
pub(crate) async fn handle(app: Router, req: hyper::Request<Incoming>) -> axum::response::Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    tracing::debug!(%method, %path, "request");
    let mut asked = None;
    let rest = match path.strip_prefix("/v") {
        Some(r) => match r.split_once('/') {
            Some((ver, tail)) if ver.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                let v = api_version(ver);
                if v.is_none() || v < api_version(MIN_API_VERSION) {
                    let msg = format!("client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version");
                    return into_axum(refuse_unread(req, 400, &msg).await);
                }
                if v > api_version(API_VERSION) {
                    let msg = format!("client version {ver} is too new. Maximum supported API version is {API_VERSION}");
                    return into_axum(refuse_unread(req, 400, &msg).await);
                }
                asked = v;
                format!("/{tail}")
            }
            _ => path.clone(),
        },
        None => path.clone(),
    };
    let started = std::time::Instant::now();
    let mut req = req.map(axum::body::Body::new);
    let routed = format!("/{}", rest.trim_matches('/'));
    if routed != path {
        let pq = match req.uri().query() {
            Some(q) => format!("{routed}?{q}"),
            None => routed,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = hyper::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req.extensions_mut().insert(RoutedPath(rest));
    req.extensions_mut().insert(ApiVersion(asked));
    let mut resp = match app.oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    // axum names the allowed methods of a 405; tether answers those with a 404
    resp.headers_mut().remove(hyper::header::ALLOW);
    // axum writes `content-length: 0` for every empty body; hyper leaves it out where
    // HTTP says to (HEAD, 101, 204) when left to decide, as it was before the router
    if resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .is_some_and(|v| v == "0")
    {
        resp.headers_mut().remove(hyper::header::CONTENT_LENGTH);
    }
    // Time to the response head (streams go on after it), for profiling with
    // RUST_LOG=tether_api=debug.
    tracing::debug!(%method, %path, status = resp.status().as_u16(), us = started.elapsed().as_micros() as u64, "handled");
    resp
}

fn into_axum(r: Response<crate::Body>) -> axum::response::Response {
    r.map(axum::body::Body::new)
}
