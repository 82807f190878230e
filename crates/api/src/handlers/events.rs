//! `GET /events?since=&until=&filters=`: past events from `since` on, then live ones
//! until `until` (or until the client goes away), as JSON lines.

use std::sync::Arc;

use axum::extract::State;
use bytes::Bytes;
use tether_engine::{Engine, EngineError};
use tokio::sync::mpsc;

use super::{json_stream, Reply, Q};

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
    let (past, mut live) = engine.subscribe_events(since);
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let line = |e: &tether_engine::events::Event| Bytes::from(format!("{}\n", e.to_json()));
        for e in past
            .iter()
            .filter(|e| e.matches(&f) && until.map(|u| e.time_nano <= u).unwrap_or(true))
        {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            tokio::time::Instant::now()
                + std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            tokio::select! {
                got = next => match got {
                    None | Some(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
                    Some(Err(_)) => continue,
                    Some(Ok(e)) => {
                        if e.matches(&f) && tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(json_stream(rx))
}
