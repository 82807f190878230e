//! tether-api: the Docker Engine REST API over a unix socket (docs.docker.com/engine/api,
//! v1.41 shapes up to [`API_VERSION`]): the router ([`router`]), one handler module per
//! resource ([`handlers`]), JSON errors `{"message": ...}` with Docker's status codes, and
//! the streams (logs, attach and exec with connection hijacking, import/load progress).

mod handlers;
pub mod metrics;
mod router;
mod streams;
pub mod ui;

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tether_engine::Engine;

/// The API version the models target (bollard-stubs 1.53 / Docker 29).
pub const API_VERSION: &str = "1.53";
/// The oldest API version accepted (as Docker's MinAPIVersion).
pub const MIN_API_VERSION: &str = "1.24";

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Server errors.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The socket could not be set up.
    #[error("listen on {path}: {source}")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub(crate) fn json_response(status: u16, v: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header("Content-Type", "application/json")
        .header("Api-Version", API_VERSION)
        .body(full(format!("{v}\n")))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Docker's JSON error body with `status`.
pub(crate) fn error_response(status: u16, msg: &str) -> Response<Body> {
    if status == 304 {
        let mut r = Response::new(full(""));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    json_response(status, &serde_json::json!({ "message": msg }))
}

/// Requests the API socket has received since the process started (every request counts,
/// a hijacked attach stream once). The daemon's allocator housekeeping reads it to tell a
/// burst of requests from quiet.
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Signalled on every request [`serve`] receives; holds one permit when nobody waits.
static REQUEST_ARRIVED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// How many requests [`serve`] has received so far (a monotonic count).
pub fn requests_received() -> u64 {
    REQUESTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Resolves once a request has been received since the previous call resolved (or since
/// the process started, on the first call): a request received while nobody waited is
/// kept as one permit, so none is missed; several requests before a call count once.
pub async fn request_arrived() {
    REQUEST_ARRIVED.notified().await
}

/// Serves the API on the unix socket `path` until the future is dropped. A stale socket
/// file is replaced; the socket is made 0660.
///
/// Errors: the socket cannot be bound.
pub async fn serve(engine: Arc<Engine>, path: &Path) -> Result<(), ApiError> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(|source| ApiError::Listen {
        path: path.display().to_string(),
        source,
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660));
    }
    tracing::info!(socket = %path.display(), "API listening");
    let app = router::router(engine);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept");
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let app = app.clone();
                REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                REQUEST_ARRIVED.notify_one();
                async move { Ok::<_, Infallible>(router::handle(app, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection");
            }
        });
    }
}

/// Serves plain HTTP/1.1 on the TCP `listener` until the future is dropped, answering
/// each request with `handle(engine, request)`; `what` names the server in the logs (the
/// metrics endpoint, the topology page).
pub(crate) async fn serve_tcp<F, Fut>(
    what: &'static str,
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    handle: F,
) where
    F: Fn(Arc<Engine>, hyper::Request<hyper::body::Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    if let Ok(a) = listener.local_addr() {
        tracing::info!(addr = %a, "{what} listening");
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "{what}: accept");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let engine = engine.clone();
                async move { Ok::<_, Infallible>(handle(engine, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "{what}: connection");
            }
        });
    }
}
