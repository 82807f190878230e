//! The daemon's live topology page (`tether daemon --ui 127.0.0.1:PORT`): a small HTML
//! page showing the SVG of [`tether_engine::topology`], redrawn whenever the engine emits
//! an event (server-sent events, the `text/event-stream` format of the HTML standard).
//!
//! Routes: `GET /` the page, `GET /graph.svg` the picture, `GET /events` the change
//! stream (`data: TYPE ACTION` per engine event).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use tether_engine::Engine;

use crate::{full, Body};

/// UI server errors.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address cannot be bound.
    #[error("--ui address {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Binds the page's TCP listener (before the engine starts, so a bad address fails the
/// daemon at once).
///
/// Errors: [`UiError::Bind`].
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, UiError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| UiError::Bind { addr, source })
}

const PAGE_HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tether — networks</title>
<style>
body { font-family: sans-serif; margin: 1em; background: #fafafa; }
h1 { font-size: 1.2em; } #status { color: #666; font-size: 0.9em; }
#graph svg { max-width: 100%; height: auto; background: white; border: 1px solid #ddd; }
</style></head>
<body><h1>tether: networks, containers, published ports</h1>
<div id="status">live: redrawn at every change</div><div id="graph">"#;

const PAGE_TAIL: &str = r#"</div>
<script>
async function draw(why) {
  const r = await fetch('/graph.svg', {cache: 'no-store'});
  document.getElementById('graph').innerHTML = await r.text();
  document.getElementById('status').textContent =
    'updated ' + new Date().toLocaleTimeString() + ' after ' + why;
}
const es = new EventSource('/events');
es.onmessage = (e) => draw(e.data);
</script></body></html>
"#;

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r
}

async fn handle(engine: Arc<Engine>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let with_type = |ct: &str, b: Body| {
        Response::builder()
            .header("Content-Type", ct)
            .header("Cache-Control", "no-store")
            .body(b)
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""))
    };
    match req.uri().path() {
        "/" => match engine.graph(&[], "svg").await {
            // the picture comes inline, so the page shows it at once; the script then
            // redraws it at every change
            Ok((svg, _)) => with_type(
                "text/html; charset=utf-8",
                full(format!("{PAGE_HEAD}{svg}{PAGE_TAIL}")),
            ),
            Err(e) => {
                let mut r = Response::new(full(e.to_string()));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }
        },
        "/graph.svg" => match engine.graph(&[], "svg").await {
            Ok((svg, ct)) => with_type(ct, full(svg)),
            Err(e) => {
                let mut r = Response::new(full(e.to_string()));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }
        },
        "/events" => {
            let (_, rx) = engine.subscribe_events(None);
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                let line = match rx.recv().await {
                    Ok(e) => {
                        let v = e.to_json();
                        format!(
                            "data: {} {}\n\n",
                            v["Type"].as_str().unwrap_or_default(),
                            v["Action"].as_str().unwrap_or_default()
                        )
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        "data: lagged\n\n".to_string()
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                };
                Some((Ok::<_, Infallible>(Frame::data(Bytes::from(line))), rx))
            });
            with_type("text/event-stream", StreamBody::new(stream).boxed())
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// Serves the page on `listener` until the future is dropped.
pub async fn serve(engine: Arc<Engine>, listener: tokio::net::TcpListener) {
    crate::serve_tcp("topology page", engine, listener, handle).await
}
