//! Container routes: `/containers/json`, `create`, `prune`, and `/containers/{id}/...`
//! (inspect, start, stop, restart, kill, wait, delete, resize, archive, export, changes,
//! logs, attach, rename, pause, unpause, top, stats, update).

use std::sync::Arc;

use axum::extract::{Request, State};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use serde_json::{json, Value};
use tether_engine::logs::LogOptions;
use tether_engine::{Engine, EngineError};
use tokio::sync::mpsc;

use super::{
    body_bytes, body_json, json_stream, no_content, ok_empty, parse_json, refuse_unread, to_json,
    Id, Reply, Q,
};
use crate::streams;
use crate::{full, json_response, API_VERSION};

const STOP_TIMEOUT: &str = "seconds to wait before killing the container";

/// The container-wide `Config.MacAddress` of a create body (deprecated in API 1.44, not
/// in bollard's 1.53 model).
#[derive(Default, serde::Deserialize)]
struct LegacyCreateFields {
    #[serde(rename = "MacAddress", default)]
    mac_address: Option<String>,
}

/// `GET /containers/json?all=&limit=&filters=`.
pub(crate) async fn list(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let f = q.filters()?;
    let limit = q
        .int("limit", "the number of containers to list; -1 for all")?
        .filter(|l| *l > 0)
        .and_then(|l| usize::try_from(l).ok());
    let list = engine.list_containers(q.flag("all"), limit, &f).await?;
    Ok(json_response(200, &Value::Array(list)))
}

/// `POST /containers/create?name=` -> 201 `{"Id", "Warnings"}`.
pub(crate) async fn create(State(engine): State<Arc<Engine>>, q: Q, req: Request) -> Reply {
    let name = q.get("name").cloned();
    let raw = body_bytes(req).await?;
    let body: bollard_stubs::models::ContainerCreateBody = parse_json(&raw)?;
    let legacy: LegacyCreateFields = parse_json(&raw)?;
    let (id, warnings) = engine
        .create_container(name, body, legacy.mac_address)
        .await?;
    Ok(json_response(201, &json!({"Id": id, "Warnings": warnings})))
}

/// `POST /containers/prune?filters=`.
pub(crate) async fn prune(State(engine): State<Arc<Engine>>, q: Q) -> Reply {
    let report = engine.prune_containers(&q.filters()?).await?;
    Ok(json_response(200, &to_json(&report)?))
}

/// `GET /containers/{id}/json`.
pub(crate) async fn inspect(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    Ok(json_response(200, &engine.inspect_container(&id).await?))
}

/// `POST /containers/{id}/start`.
pub(crate) async fn start(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    engine.start_container(&id).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/stop?t=&signal=`.
pub(crate) async fn stop(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let t = q.int("t", STOP_TIMEOUT)?;
    engine
        .stop_container(&id, t, q.get("signal").cloned())
        .await?;
    Ok(no_content())
}

/// `POST /containers/{id}/restart?t=`.
pub(crate) async fn restart(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let t = q.int("t", STOP_TIMEOUT)?;
    engine.restart_container(&id, t).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/kill?signal=`.
pub(crate) async fn kill(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    engine
        .kill_container(
            &id,
            q.get("signal").map(|s| s.as_str()).unwrap_or("SIGKILL"),
        )
        .await?;
    Ok(no_content())
}

/// `POST /containers/{id}/wait?condition=`: the headers go out at once, the body when
/// the condition holds (as moby does): clients register the wait before they start the
/// container.
pub(crate) async fn wait(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let cond = q.get("condition").cloned().unwrap_or_default();
    let fut = engine.wait_container(&id, &cond).await?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let code = fut.await;
        let _ = tx
            .send(Bytes::from(format!(
                "{}\n",
                json!({"StatusCode": code, "Error": null})
            )))
            .await;
    });
    Ok(json_stream(rx))
}

/// `DELETE /containers/{id}?force=&v=&link=`; with `link`, `{id}` is a legacy link name
/// `/PARENT/ALIAS` (slashes in the path or percent-encoded) and only the link goes.
pub(crate) async fn remove(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    if q.flag("link") {
        engine.remove_link(&id).await?;
        return Ok(no_content());
    }
    engine
        .remove_container(&id, q.flag("force"), q.flag("v"))
        .await?;
    Ok(no_content())
}

/// `POST /containers/{id}/resize?h=&w=`.
pub(crate) async fn resize(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let (h, w) = q.size()?;
    engine.resize_container(&id, h, w).await?;
    Ok(ok_empty())
}

/// `HEAD /containers/{id}/archive?path=`: the path's stat in `X-Docker-Container-Path-Stat`.
pub(crate) async fn archive_stat(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let st = engine.stat_archive_path(&id, &q.archive_path()?).await?;
    Ok(Response::builder()
        .header("Content-Type", "application/json")
        .header("X-Docker-Container-Path-Stat", st.header_value())
        .body(full(""))
        .map_err(|e| EngineError::Internal(e.to_string()))?)
}

/// `GET /containers/{id}/archive?path=`: a tar of the path, streamed.
pub(crate) async fn archive_get(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let (st, rx) = engine.get_archive(&id, &q.archive_path()?).await?;
    Ok(Response::builder()
        .header("Content-Type", "application/x-tar")
        .header("X-Docker-Container-Path-Stat", st.header_value())
        .body(streams::channel_body(rx))
        .map_err(|e| EngineError::Internal(e.to_string()))?)
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: the body (a
/// tar) goes to the container as it arrives.
pub(crate) async fn archive_put(
    State(engine): State<Arc<Engine>>,
    Id(id): Id,
    q: Q,
    req: Request,
) -> Reply {
    let params = q.archive_path().and_then(|p| {
        Ok((
            p,
            tether_engine::archive::PutOptions {
                no_overwrite_dir_non_dir: q.boolean("noOverwriteDirNonDir")?,
                copy_uid_gid: q.boolean("copyUIDGID")?,
            },
        ))
    });
    let (path, opts) = match params {
        Ok(p) => p,
        Err(e) => return Ok(refuse_unread(req, e.status(), &e.to_string()).await),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::spawn(async move {
        let mut body = req.into_body();
        while let Some(Ok(fr)) = body.frame().await {
            if let Ok(d) = fr.into_data() {
                if tx.send(d).await.is_err() {
                    return;
                }
            }
        }
    });
    engine.put_archive(&id, &path, opts, rx).await?;
    Ok(ok_empty())
}

/// `GET /containers/{id}/export`: the container's filesystem as a tar, streamed.
pub(crate) async fn export(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    let rx = engine.export_container(&id).await?;
    Ok(Response::builder()
        .header("Content-Type", "application/x-tar")
        .body(streams::channel_body(rx))
        .map_err(|e| EngineError::Internal(e.to_string()))?)
}

/// `GET /containers/{id}/changes`.
pub(crate) async fn changes(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    let changes = engine.container_changes(&id).await?;
    Ok(json_response(200, &to_json(&changes)?))
}

/// `GET /containers/{id}/logs?stdout=&stderr=&follow=&tail=&timestamps=&since=&until=`.
pub(crate) async fn logs(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let opts = LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        follow: q.flag("follow"),
        tail: q.tail()?,
        timestamps: q.flag("timestamps"),
        since: q.timestamp("since")?,
        until: q.timestamp("until")?,
    };
    let out = engine.container_logs(&id, opts).await?;
    let rx = streams::output_bytes(out.entries, out.source.tty);
    Ok(Response::builder()
        .header("Content-Type", "application/vnd.docker.multiplexed-stream")
        .header("Api-Version", API_VERSION)
        .body(streams::channel_body(rx))
        .unwrap_or_else(|_| Response::new(full(""))))
}

/// `POST /containers/{id}/attach?stream=&stdin=&stdout=&stderr=&logs=&detachKeys=`:
/// hijacks the connection (101 with `Upgrade: tcp`, or a plain streamed 200 for clients
/// that do not ask for an upgrade); the client's input goes to the container's stdin when
/// it asks for it and the container keeps stdin open, until it types the detach keys
/// (default ctrl-p ctrl-q): then its connection ends and the container runs on. Without
/// `stream` only the logs asked for (`logs`) are sent, then the stream ends.
pub(crate) async fn attach(
    State(engine): State<Arc<Engine>>,
    Id(id): Id,
    q: Q,
    req: Request,
) -> Reply {
    // `stream` defaults to false as in moby's attach handler
    let out = engine
        .attach_output(
            &id,
            q.flag("stdout"),
            q.flag("stderr"),
            q.flag("logs"),
            q.flag("stream"),
        )
        .await?;
    let tty = out.source.tty;
    let rx = streams::output_bytes(out.entries, tty);
    let stdin = (q.flag("stdin") && out.source.stdin).then_some(out.source);
    let keys =
        tether_engine::exec::detach_keys(q.get("detachKeys").map(String::as_str).unwrap_or(""))?;
    Ok(streams::hijack(req, rx, stdin, tty, keys))
}

/// `POST /containers/{id}/rename?name=NEW` -> 204.
pub(crate) async fn rename(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let name = q.get("name").cloned().unwrap_or_default();
    engine.rename_container(&id, &name).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/pause` -> 204.
pub(crate) async fn pause(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    engine.pause_container(&id).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/unpause` -> 204.
pub(crate) async fn unpause(State(engine): State<Arc<Engine>>, Id(id): Id) -> Reply {
    engine.unpause_container(&id).await?;
    Ok(no_content())
}

/// `GET /containers/{id}/top?ps_args=` -> `{"Titles", "Processes"}`.
pub(crate) async fn top(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let args = q.get("ps_args").cloned().unwrap_or_default();
    Ok(json_response(200, &engine.top_container(&id, &args).await?))
}

/// `POST /containers/{id}/update` (body: Resources and RestartPolicy) ->
/// `{"Warnings": [...]}`.
pub(crate) async fn update(State(engine): State<Arc<Engine>>, Id(id): Id, req: Request) -> Reply {
    let body: bollard_stubs::models::ContainerUpdateBody = body_json(req).await?;
    let warnings = engine.update_container(&id, body).await?;
    Ok(json_response(200, &json!({"Warnings": warnings})))
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: Docker's stats objects, one JSON
/// document per line; `stream` (default true) sends one a second until the client goes.
pub(crate) async fn stats(State(engine): State<Arc<Engine>>, Id(id): Id, q: Q) -> Reply {
    let stream = match q.get("stream") {
        None => true,
        Some(_) => q.boolean("stream")?,
    };
    let one_shot = q.boolean("one-shot")?;
    let mut values = engine.container_stats(&id, stream, one_shot).await?;
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        while let Some(v) = values.recv().await {
            if tx.send(Bytes::from(format!("{v}\n"))).await.is_err() {
                return;
            }
        }
    });
    Ok(json_stream(rx))
}

/// The objects' fallback: `DELETE /containers/PARENT/ALIAS?link=1` (a legacy link name,
/// slashes in the path) removes that link; any other request no route takes is the 404
/// `page not found`.
pub(crate) async fn remove_link_path(
    State(engine): State<Arc<Engine>>,
    q: Q,
    req: Request,
) -> Reply {
    let name = req
        .uri()
        .path()
        .strip_prefix("/containers/")
        .filter(|_| req.method() == hyper::Method::DELETE && q.flag("link"))
        .map(percent_decode);
    match name {
        Some(n) => {
            engine.remove_link(&n).await?;
            Ok(no_content())
        }
        None => Err(super::not_found(&req).into()),
    }
}

/// `%XX` escapes of a path decoded (a bad escape is kept as written).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
