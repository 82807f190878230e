//! `GET /events?since=&until=&filters=`: the engine's event stream
//! ([`Engine::event_stream`]) as JSON lines.

use std::sync::Arc;

use axum::extract::State;
use bytes::Bytes;
use tether_engine::{Engine, EngineError};

use super::{json_stream, Reply, Q};
use crate::streams;

/// `GET /events`.
pub(crate) async fn events(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let f = q.filters()?;
    let ts = |k: &str| -> Result<Option<i64>, EngineError> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => {
                let secs: f64 = v.parse().map_err(|_| {
                    EngineError::InvalidParam(format!(
                        "invalid {k} {v:?}: expected a Unix timestamp"
                    ))
                })?;
                Ok(Some((secs * 1e9) as i64))
            }
        }
    };
    let (since, until) = (ts("since")?, ts("until")?);
    let rx = engine.event_stream(f, since, until);
    Ok(json_stream(streams::map_channel(rx, |e| {
        Bytes::from(format!("{}\n", e.to_json()))
    })))
}
