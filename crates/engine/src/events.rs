//! The event stream (Docker API GET /events): container, network and volume events as
//! Docker emits them (`create`, `start`, `die`, `destroy`, `health_status: ...`,
//! `connect`, `disconnect`, ...), broadcast to subscribers, with a short history for
//! `since`.

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};

use crate::Engine;

/// Events kept for `since` queries.
pub const HISTORY: usize = 512;

/// One event, as the API serializes it.
#[derive(Clone, Debug)]
pub struct Event {
    /// "container", "network", "volume", "image".
    pub typ: &'static str,
    /// e.g. "start", "die", "health_status: healthy".
    pub action: String,
    /// The object's id (or name, for volumes).
    pub id: String,
    /// Attributes (name, image, exitCode, labels...).
    pub attributes: HashMap<String, String>,
    /// Unix time in nanoseconds.
    pub time_nano: i64,
}

impl Event {
    /// The Docker API JSON of the event (with the legacy status/id/from fields).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.typ, "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local", "time": self.time_nano / 1_000_000_000, "timeNano": self.time_nano,
        });
        if self.typ == "container" {
            v["status"] = json!(self.action);
            v["id"] = json!(self.id);
            v["from"] = json!(self.attributes.get("image").cloned().unwrap_or_default());
        }
        v
    }

    /// Whether the event passes Docker's event filters (type, event, container, network,
    /// volume, label).
    pub fn matches(&self, f: &HashMap<String, Vec<String>>) -> bool {
        f.iter().all(|(k, vals)| match k.as_str() {
            "type" => vals.iter().any(|v| v == self.typ),
            "event" => vals
                .iter()
                .any(|v| *v == self.action || self.action.starts_with(&format!("{v}:"))),
            "container" => {
                self.typ == "container"
                    && vals.iter().any(|v| {
                        self.id.starts_with(v.as_str()) || self.attributes.get("name") == Some(v)
                    })
            }
            "network" => {
                self.typ == "network"
                    && vals.iter().any(|v| {
                        self.id.starts_with(v.as_str()) || self.attributes.get("name") == Some(v)
                    })
            }
            "volume" => self.typ == "volume" && vals.contains(&self.id),
            "label" => vals.iter().all(|spec| match spec.split_once('=') {
                Some((lk, lv)) => self.attributes.get(lk).map(|x| x == lv).unwrap_or(false),
                None => self.attributes.contains_key(spec.as_str()),
            }),
            _ => true,
        })
    }
}

/// The broadcast side of the event stream.
pub struct Events {
    tx: tokio::sync::broadcast::Sender<Event>,
    history: std::sync::Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: tokio::sync::broadcast::channel(1024).0,
            history: std::sync::Mutex::new(VecDeque::new()),
        }
    }
}

impl Engine {
    /// Emits an event.
    pub(crate) fn emit(
        &self,
        typ: &'static str,
        action: impl Into<String>,
        id: &str,
        attributes: HashMap<String, String>,
    ) {
        let time_nano = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let e = Event {
            typ,
            action: action.into(),
            id: id.to_string(),
            attributes,
            time_nano,
        };
        {
            let mut h = self
                .events
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            h.push_back(e.clone());
            if h.len() > HISTORY {
                h.pop_front();
            }
        }
        let _ = self.events.tx.send(e);
    }

    /// Emits an image event (`pull`, `push`) for `name` (`127.0.0.1:5000/tbox:1`),
    /// with Docker's `name` attribute.
    pub fn emit_image(&self, action: &str, name: &str) {
        let mut a = HashMap::new();
        a.insert("name".to_string(), name.to_string());
        self.emit("image", action, name, a);
    }

    /// Emits a container event with Docker's attributes (name, image, and its labels).
    pub(crate) fn emit_container(
        &self,
        c: &crate::state::Container,
        action: impl Into<String>,
        extra: &[(&str, String)],
    ) {
        let mut a: HashMap<String, String> = c.config.labels.clone().unwrap_or_default();
        a.insert("name".into(), c.name.clone());
        a.insert("image".into(), c.image.clone());
        for (k, v) in extra {
            a.insert((*k).to_string(), v.clone());
        }
        self.emit("container", action, &c.id, a);
    }

    /// GET /events: the events `filters` select (see [`Event::matches`]) from
    /// `since_nano` on (those still in the history, then the live ones) until
    /// `until_nano`: past events after it are left out and the stream ends when the
    /// clock reaches it. Without `until_nano` the stream goes on until the receiver is
    /// dropped. Events a slow reader missed (the broadcast lagged) are skipped.
    pub fn event_stream(
        &self,
        filters: HashMap<String, Vec<String>>,
        since_nano: Option<i64>,
        until_nano: Option<i64>,
    ) -> tokio::sync::mpsc::Receiver<Event> {
        let (past, mut live) = self.subscribe_events(since_nano);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let before_until = |e: &Event| until_nano.map(|u| e.time_nano <= u).unwrap_or(true);
            for e in past
                .into_iter()
                .filter(|e| e.matches(&filters) && before_until(e))
            {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            let deadline = until_nano.map(|u| {
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
                            if e.matches(&filters) && tx.send(e).await.is_err() {
                                return;
                            }
                        }
                    },
                    _ = tx.closed() => return,
                }
            }
        });
        rx
    }

    /// Past events at or after `since_nano`, and a receiver of the events to come.
    pub fn subscribe_events(
        &self,
        since_nano: Option<i64>,
    ) -> (Vec<Event>, tokio::sync::broadcast::Receiver<Event>) {
        let rx = self.events.tx.subscribe();
        let past = match since_nano {
            Some(s) => self
                .events
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|e| e.time_nano >= s)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}
