//! The metrics endpoint (`tether daemon --metrics-addr ADDR`, dockerd's flag; off unless
//! given): plain HTTP/1 on a TCP address, `GET /metrics` (or `HEAD`) answered with every
//! metric in the Prometheus text exposition format, version 0.0.4 (see
//! [`tether_engine::metrics`]). Other paths get 404, other methods 405. Any address is
//! accepted, as dockerd does; the endpoint has no authentication, so a loopback address
//! is the usual choice.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::{Method, Request, Response, StatusCode};
use tether_engine::Engine;

use crate::{full, Body};

/// Errors of setting up the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound (in use, not an address of this host, ...).
    #[error("metrics address {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Binds the metrics endpoint's listening socket (done before the engine starts, so a bad
/// address fails the daemon at once).
///
/// Errors: [`MetricsError::Bind`].
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, MetricsError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r
}

async fn handle(engine: &Engine, req: Request<hyper::body::Incoming>) -> Response<Body> {
    if req.uri().path() != "/metrics" {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let body = engine.metrics_text().await;
    Response::builder()
        .header("Content-Type", tether_engine::metrics::CONTENT_TYPE)
        .header("Content-Length", body.len())
        .body(if head { full("") } else { full(body) })
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

/// Serves the metrics endpoint on `listener` until the future is dropped.
pub async fn serve(engine: Arc<Engine>, listener: tokio::net::TcpListener) {
    crate::serve_tcp("metrics", engine, listener, |engine, req| async move {
        handle(&engine, req).await
    })
    .await
}
