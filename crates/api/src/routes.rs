//! Request routing: `/v{version}/...` prefix stripped, then method + path to the engine.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tether_engine::{Engine, EngineError};
use tokio::sync::mpsc;

use crate::streams::{self, LogOpts};
use crate::{error_response, full, json_response, Body, API_VERSION, MIN_API_VERSION};

type Query = HashMap<String, String>;

fn query(req: &Request<Incoming>) -> Query {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn flag(q: &Query, k: &str) -> bool {
    matches!(
        q.get(k).map(|s| s.as_str()),
        Some("1") | Some("true") | Some("True")
    )
}

/// Docker's `filters` parameter: `{"label":["a=b"]}` or the old `{"label":{"a=b":true}}`.
fn filters(q: &Query) -> Result<HashMap<String, Vec<String>>, EngineError> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| EngineError::InvalidParam(format!("invalid filters {raw:?}: {e}")))?;
    let mut out = HashMap::new();
    if let Some(m) = v.as_object() {
        for (k, vals) in m {
            let list: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                Value::String(s) => vec![s.clone()],
                _ => vec![],
            };
            out.insert(k.clone(), list);
        }
    }
    Ok(out)
}

/// An integer query parameter: None when absent or empty.
///
/// Errors: 400 naming the parameter, the value and what is valid.
fn int_param(q: &Query, k: &str, what: &str) -> Result<Option<i64>, EngineError> {
    match q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            EngineError::InvalidParam(format!(
                "invalid value for query parameter {k}: {v:?} is not an integer ({what})"
            ))
        }),
    }
}

/// The archive endpoints' `path` parameter (moby `httputils.ArchiveFormValues`).
///
/// Errors: 400 when absent or empty, or holding a NUL byte.
fn archive_path(q: &Query) -> Result<String, EngineError> {
    match q.get("path").filter(|p| !p.is_empty()) {
        None => Err(EngineError::InvalidParam(
            "bad parameter: path cannot be empty".into(),
        )),
        Some(p) if p.contains('\0') => Err(EngineError::InvalidParam(format!(
            "bad parameter: path {p:?} contains a NUL byte"
        ))),
        Some(p) => Ok(p.clone()),
    }
}

/// A boolean query parameter: absent, "", 0, false, no, none are false; 1, true, yes
/// are true (moby `httputils.BoolValue`, but anything else is refused).
///
/// Errors: 400 naming the parameter and the value.
fn bool_param(q: &Query, k: &str) -> Result<bool, EngineError> {
    match q.get(k).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("0") | Some("false") | Some("no") | Some("none") => Ok(false),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(_) => Err(EngineError::InvalidParam(format!(
            "invalid value for query parameter {k}: {:?}: use true or false (1 or 0)",
            q.get(k).cloned().unwrap_or_default()
        ))),
    }
}

/// The logs `tail` parameter: `all` (or absent, or negative, as Docker) for every line,
/// else a number of lines.
///
/// Errors: 400 naming `tail` and the value.
fn tail_param(q: &Query) -> Result<Option<usize>, EngineError> {
    match q.get("tail").map(|v| v.trim()) {
        None | Some("") | Some("all") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) => Ok(usize::try_from(n).ok()),
            Err(_) => Err(EngineError::InvalidParam(format!(
                "invalid value for query parameter tail: {v:?}: give a number of lines or \"all\""
            ))),
        },
    }
}

/// A numeric API version `MAJOR.MINOR` as a comparable pair.
fn api_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    Some((a.parse().ok()?, b.parse().ok()?))
}

async fn body_bytes(req: Request<Incoming>) -> Result<Bytes, EngineError> {
    Ok(req
        .into_body()
        .collect()
        .await
        .map_err(|e| EngineError::InvalidParam(format!("reading body: {e}")))?
        .to_bytes())
}

/// Decodes a JSON body; a wrong type or a malformed value is a 400 naming its JSON path
/// (`HostConfig.Memory: invalid type: string "x", expected i64`).
fn parse_json<T: serde::de::DeserializeOwned + Default>(b: &[u8]) -> Result<T, EngineError> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(b);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            EngineError::InvalidParam(format!("invalid JSON body: {inner}"))
        } else {
            EngineError::InvalidParam(format!("invalid JSON body: {path}: {inner}"))
        }
    })
}

async fn body_json<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T, EngineError> {
    parse_json(&body_bytes(req).await?)
}

/// The container-wide `Config.MacAddress` of a create body (deprecated in API 1.44, not
/// in bollard's 1.53 model).
#[derive(Default, serde::Deserialize)]
struct LegacyCreateFields {
    #[serde(rename = "MacAddress", default)]
    mac_address: Option<String>,
}

pub(crate) async fn body_to_file(
    req: Request<Incoming>,
) -> Result<tempfile::NamedTempFile, EngineError> {
    let mut f = tempfile::NamedTempFile::new()
        .map_err(|e| EngineError::Internal(format!("temp file: {e}")))?;
    let mut body = req.into_body();
    while let Some(fr) = body.frame().await {
        let fr = fr.map_err(|e| EngineError::InvalidParam(format!("reading body: {e}")))?;
        if let Ok(d) = fr.into_data() {
            f.write_all(&d)
                .map_err(|e| EngineError::Internal(format!("temp file: {e}")))?;
        }
    }
    Ok(f)
}

fn err(e: EngineError) -> Response<Body> {
    error_response(e.status(), &e.to_string())
}

fn no_content() -> Response<Body> {
    let mut r = Response::new(full(""));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// Answers `status` with `msg` to a request whose body was not read, after reading it
/// (for at most 5 s): a server that closes with unread data makes the kernel reset the
/// connection, and the client then loses the answer.
pub(crate) async fn refuse_unread(
    req: Request<Incoming>,
    status: u16,
    msg: &str,
) -> Response<Body> {
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), req.into_body().collect()).await;
    error_response(status, msg)
}

/// Handles one request.
pub async fn handle(engine: Arc<Engine>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    tracing::debug!(%method, %path, "request");
    let rest = match path.strip_prefix("/v") {
        Some(r) => match r.split_once('/') {
            Some((ver, tail)) if ver.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                let v = api_version(ver);
                if v.is_none() || v < api_version(MIN_API_VERSION) {
                    let msg = format!("client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version");
                    return refuse_unread(req, 400, &msg).await;
                }
                if v > api_version(API_VERSION) {
                    let msg = format!("client version {ver} is too new. Maximum supported API version is {API_VERSION}");
                    return refuse_unread(req, 400, &msg).await;
                }
                format!("/{tail}")
            }
            _ => path.clone(),
        },
        None => path.clone(),
    };
    let started = std::time::Instant::now();
    let resp = match route(engine, req, &method, &rest).await {
        Ok(r) => r,
        Err(e) => err(e),
    };
    // Time to the response head (streams go on after it), for profiling with
    // RUST_LOG=tether_api=debug.
    tracing::debug!(%method, %path, status = resp.status().as_u16(), us = started.elapsed().as_micros() as u64, "handled");
    resp
}

async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    path: &str,
) -> Result<Response<Body>, EngineError> {
    let q = query(&req);
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, seg.as_slice()) {
        (&Method::GET, ["_ping"]) | (&Method::HEAD, ["_ping"]) => Ok(Response::builder()
            .header("Api-Version", API_VERSION)
            .header("Ostype", "linux")
            .header("Docker-Experimental", "false")
            .header("Cache-Control", "no-cache, no-store, must-revalidate")
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(full(if method == Method::HEAD { "" } else { "OK" }))
            .unwrap_or_else(|_| Response::new(full("OK")))),
        (&Method::GET, ["version"]) => Ok(json_response(200, &version())),
        (&Method::GET, ["info"]) => Ok(json_response(200, &info(&engine).await)),
        (&Method::GET, ["nodes"]) => {
            // Docker's Node objects (Swarm API shape), from the cluster store's hosts
            let nodes: Vec<Value> = engine
                .cluster_nodes()
                .await?
                .into_iter()
                .map(|n| {
                    json!({
                        "ID": n.record.id, "CreatedAt": n.record.joined,
                        "Description": {"Hostname": n.record.hostname},
                        "Status": {"State": n.state, "Addr": n.record.addr.to_string()},
                        "Spec": {"Role": "worker", "Availability": "active"},
                        "Self": n.is_self,
                    })
                })
                .collect();
            Ok(json_response(200, &Value::Array(nodes)))
        }
        (&Method::GET, ["events"]) => {
            let f = filters(&q)?;
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
                let line =
                    |e: &tether_engine::events::Event| Bytes::from(format!("{}\n", e.to_json()));
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
            Ok(Response::builder()
                .header("Content-Type", "application/json")
                .header("Api-Version", API_VERSION)
                .body(streams::channel_body(rx))
                .unwrap_or_else(|_| Response::new(full(""))))
        }
        // ---------------------------------------------------------------- containers
        (&Method::GET, ["containers", "json"]) => {
            let f = filters(&q)?;
            let limit = int_param(&q, "limit", "the number of containers to list; -1 for all")?
                .filter(|l| *l > 0)
                .and_then(|l| usize::try_from(l).ok());
            let list = engine.list_containers(flag(&q, "all"), limit, &f).await?;
            Ok(json_response(200, &Value::Array(list)))
        }
        (&Method::POST, ["containers", "create"]) => {
            let name = q.get("name").cloned();
            let raw = body_bytes(req).await?;
            let body: bollard_stubs::models::ContainerCreateBody = parse_json(&raw)?;
            let legacy: LegacyCreateFields = parse_json(&raw)?;
            let (id, warnings) = engine
                .create_container(name, body, legacy.mac_address)
                .await?;
            Ok(json_response(201, &json!({"Id": id, "Warnings": warnings})))
        }
        (&Method::POST, ["containers", "prune"]) => {
            let list = engine.list_containers(true, None, &filters(&q)?).await?;
            let mut deleted = Vec::new();
            for c in list {
                if c["State"] != "running" {
                    if let Some(id) = c["Id"].as_str() {
                        if engine.remove_container(id, false, false).await.is_ok() {
                            deleted.push(id.to_string());
                        }
                    }
                }
            }
            Ok(json_response(
                200,
                &json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
            ))
        }
        (&Method::GET, ["containers", id, "json"]) => {
            Ok(json_response(200, &engine.inspect_container(id).await?))
        }
        (&Method::POST, ["containers", id, "start"]) => {
            engine.start_container(id).await?;
            Ok(no_content())
        }
        (&Method::POST, ["containers", id, "stop"]) => {
            let t = int_param(&q, "t", "seconds to wait before killing the container")?;
            engine
                .stop_container(id, t, q.get("signal").cloned())
                .await?;
            Ok(no_content())
        }
        (&Method::POST, ["containers", id, "restart"]) => {
            let t = int_param(&q, "t", "seconds to wait before killing the container")?;
            match engine.stop_container(id, t, None).await {
                Ok(()) | Err(EngineError::NotModified(_)) => {}
                Err(e) => return Err(e),
            }
            engine.start_container(id).await?;
            Ok(no_content())
        }
        (&Method::POST, ["containers", id, "kill"]) => {
            engine
                .kill_container(id, q.get("signal").map(|s| s.as_str()).unwrap_or("SIGKILL"))
                .await?;
            Ok(no_content())
        }
        (&Method::POST, ["containers", id, "wait"]) => {
            let cond = q.get("condition").cloned().unwrap_or_default();
            // headers go out at once, the body when the condition holds (as moby does):
            // clients register the wait before they start the container
            let fut = engine.wait_container(id, &cond).await?;
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
            Ok(Response::builder()
                .header("Content-Type", "application/json")
                .header("Api-Version", API_VERSION)
                .body(streams::channel_body(rx))
                .unwrap_or_else(|_| Response::new(full(""))))
        }
        (&Method::DELETE, ["containers", id]) => {
            engine
                .remove_container(id, flag(&q, "force"), flag(&q, "v"))
                .await?;
            Ok(no_content())
        }
        (&Method::POST, ["containers", id, "resize"]) => {
            let (h, w) = size(&q)?;
            engine.resize_container(id, h, w).await?;
            Ok(Response::new(full("")))
        }
        (&Method::HEAD, ["containers", id, "archive"]) => {
            let st = engine.stat_archive_path(id, &archive_path(&q)?).await?;
            Response::builder()
                .header("Content-Type", "application/json")
                .header("X-Docker-Container-Path-Stat", st.header_value())
                .body(full(""))
                .map_err(|e| EngineError::Internal(e.to_string()))
        }
        (&Method::GET, ["containers", id, "archive"]) => {
            let (st, rx) = engine.get_archive(id, &archive_path(&q)?).await?;
            Response::builder()
                .header("Content-Type", "application/x-tar")
                .header("X-Docker-Container-Path-Stat", st.header_value())
                .body(streams::channel_body(rx))
                .map_err(|e| EngineError::Internal(e.to_string()))
        }
        (&Method::PUT, ["containers", id, "archive"]) => {
            let id = id.to_string();
            let params = archive_path(&q).and_then(|p| {
                Ok((
                    p,
                    tether_engine::archive::PutOptions {
                        no_overwrite_dir_non_dir: bool_param(&q, "noOverwriteDirNonDir")?,
                        copy_uid_gid: bool_param(&q, "copyUIDGID")?,
                    },
                ))
            });
            let (path, opts) = match params {
                Ok(p) => p,
                Err(e) => return Ok(refuse_unread(req, e.status(), &e.to_string()).await),
            };
            // the tar goes to the container as it arrives
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
            Ok(Response::new(full("")))
        }
        (&Method::GET, ["containers", id, "export"]) => {
            let rx = engine.export_container(id).await?;
            Response::builder()
                .header("Content-Type", "application/x-tar")
                .body(streams::channel_body(rx))
                .map_err(|e| EngineError::Internal(e.to_string()))
        }
        (&Method::GET, ["containers", id, "changes"]) => {
            let changes = engine.container_changes(id).await?;
            Ok(json_response(200, &json!(changes)))
        }
        (&Method::POST, ["exec", id, "resize"]) => {
            let (h, w) = size(&q)?;
            engine.resize_exec(id, h, w).await?;
            Ok(Response::new(full("")))
        }
        (&Method::GET, ["containers", id, "logs"]) => {
            let tail = tail_param(&q)?;
            let src = engine.log_source(id).await?;
            let (cid, path) = (src.id.clone(), src.path.clone());
            let opts = LogOpts {
                stdout: flag(&q, "stdout"),
                stderr: flag(&q, "stderr"),
                follow: flag(&q, "follow") && src.running,
                tail,
                timestamps: flag(&q, "timestamps"),
                from_end: false,
                until_exit_after: None,
                raw: src.tty,
            };
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(streams::pump_log(engine.clone(), cid, path, opts, tx));
            Ok(Response::builder()
                .header("Content-Type", "application/vnd.docker.multiplexed-stream")
                .header("Api-Version", API_VERSION)
                .body(streams::channel_body(rx))
                .unwrap_or_else(|_| Response::new(full(""))))
        }
        (&Method::POST, ["containers", id, "attach"]) => {
            let src = engine.log_source(id).await?;
            let (cid, path) = (src.id.clone(), src.path.clone());
            let gen = *engine.events(&cid).borrow();
            let opts = LogOpts {
                stdout: flag(&q, "stdout"),
                stderr: flag(&q, "stderr"),
                follow: true,
                tail: None,
                timestamps: false,
                from_end: !flag(&q, "logs"),
                until_exit_after: Some(gen.0),
                raw: src.tty,
            };
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(streams::pump_log(engine.clone(), cid, path, opts, tx));
            let stdin = (flag(&q, "stdin") && src.stdin).then(|| src.attach_socket.clone());
            Ok(hijack(req, rx, stdin, src.tty))
        }
        // ---------------------------------------------------------------- exec
        (&Method::POST, ["containers", id, "exec"]) => {
            let cfg: bollard_stubs::models::ExecConfig = body_json(req).await?;
            let eid = engine.create_exec(id, cfg).await?;
            Ok(json_response(201, &json!({"Id": eid})))
        }
        (&Method::POST, ["exec", id, "start"]) => {
            let id = id.to_string();
            let tty = engine.exec_tty(&id);
            let (parts, body) = req.into_parts();
            let b = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let start: Value = serde_json::from_slice(&b).unwrap_or(json!({}));
            if let Some(cs) = start.get("ConsoleSize").filter(|v| !v.is_null()) {
                let size: Vec<usize> = serde_json::from_value(cs.clone()).map_err(|_| {
                    EngineError::InvalidParam(format!(
                        "invalid ConsoleSize {cs}: expected [height, width]"
                    ))
                })?;
                engine.set_exec_console_size(&id, size)?;
            }
            let proc = engine.start_exec(&id).await?;
            if start["Detach"].as_bool().unwrap_or(false) {
                let e2 = engine.clone();
                tokio::spawn(async move {
                    let (tx, mut rx) = mpsc::channel(64);
                    tokio::spawn(async move { while rx.recv().await.is_some() {} });
                    let code = streams::pump_exec(proc, tx, tty, None).await;
                    e2.finish_exec(&id, code);
                });
                return Ok(Response::new(full("")));
            }
            let req = Request::from_parts(parts, ());
            let (tx, rx) = mpsc::channel(64);
            Ok(hijack_exec(req, engine.clone(), id, proc, tx, rx, tty))
        }
        (&Method::GET, ["exec", id, "json"]) => Ok(json_response(200, &engine.inspect_exec(id)?)),
        // ---------------------------------------------------------------- images
        (&Method::POST, ["commit"]) => {
            crate::images::commit(engine.clone(), &q, req.uri().query()).await
        }
        (&Method::POST, ["images", "prune"]) => crate::images::prune(&engine, &filters(&q)?).await,
        (&Method::GET, ["images", "get"]) => {
            let names = crate::images::query_all(req.uri().query(), "names");
            crate::images::save(engine.clone(), names).await
        }
        (&Method::GET, ["images", rest @ .., "get"]) if !rest.is_empty() => {
            crate::images::save(engine.clone(), vec![rest.join("/")]).await
        }
        (&Method::GET, ["images", rest @ .., "history"]) if !rest.is_empty() => {
            crate::images::history(&engine, &rest.join("/"))
        }
        (&Method::GET, ["system", "df"]) => crate::images::df(&engine).await,
        (&Method::GET, ["images", "json"]) => {
            let imgs = engine.images.clone();
            let f = filters(&q)?;
            let list: Vec<Value> = imgs
                .list()
                .iter()
                .filter(|i| flag(&q, "all") || !crate::images::intermediate(&engine, i))
                .filter(|i| image_matches(i, &f))
                .map(|i| serde_json::to_value(imgs.summary(i)).unwrap_or(json!({})))
                .collect();
            Ok(json_response(200, &Value::Array(list)))
        }
        (&Method::POST, ["images", "create"]) => {
            if q.contains_key("fromImage") {
                return crate::registry::pull(engine.clone(), &q, req.headers()).await;
            }
            let src = q.get("fromSrc").cloned().unwrap_or_default();
            if src != "-" {
                return Err(EngineError::InvalidParam(format!("fromSrc {src:?} is not supported: send the tar as the request body with fromSrc=-")));
            }
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().unwrap_or_default();
            let reference = if repo.is_empty() {
                None
            } else if tag.is_empty() {
                Some(repo)
            } else {
                Some(format!("{repo}:{tag}"))
            };
            let changes: Vec<String> = req
                .uri()
                .query()
                .map(|qs| {
                    url::form_urlencoded::parse(qs.as_bytes())
                        .filter(|(k, _)| k == "changes")
                        .map(|(_, v)| v.into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let message = q.get("message").cloned();
            let f = body_to_file(req).await?;
            let imgs = engine.images.clone();
            let img = tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(f.path())?;
                Ok::<_, std::io::Error>(imgs.import(
                    std::io::BufReader::new(file),
                    reference.as_deref(),
                    &changes,
                    message.as_deref(),
                ))
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
            match img {
                Ok(i) => Ok(json_response(200, &json!({"status": i.id}))),
                Err(e) => Ok(json_response(
                    200,
                    &json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}),
                )),
            }
        }
        (&Method::POST, ["build"]) => crate::build::build(engine.clone(), req).await,
        (&Method::POST, ["images", "load"]) => {
            let f = body_to_file(req).await?;
            let imgs = engine.images.clone();
            let r = tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(f.path())?;
                Ok::<_, std::io::Error>(imgs.load(std::io::BufReader::new(file)))
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
            match r {
                Ok(lines) => {
                    let out: String = lines
                        .iter()
                        .map(|l| format!("{}\n", json!({"stream": format!("{l}\n")})))
                        .collect();
                    Ok(Response::builder()
                        .header("Content-Type", "application/json")
                        .body(full(out))
                        .unwrap_or_else(|_| Response::new(full(""))))
                }
                Err(e) => Err(e.into()),
            }
        }
        (&Method::GET, ["images", "search"]) => {
            crate::registry::search(&q, &filters(&q)?, req.headers()).await
        }
        (&Method::GET, ["images", rest @ .., "json"]) if !rest.is_empty() => Ok(json_response(
            200,
            &crate::images::inspect(&engine, &rest.join("/"))?,
        )),
        (&Method::POST, ["images", rest @ .., "push"]) if !rest.is_empty() => {
            crate::registry::push(engine.clone(), &rest.join("/"), &q, req.headers()).await
        }
        (&Method::POST, ["auth"]) => crate::registry::auth(&body_bytes(req).await?).await,
        (&Method::GET, ["distribution", rest @ .., "json"]) if !rest.is_empty() => {
            crate::registry::distribution(&rest.join("/"), req.headers()).await
        }
        (&Method::POST, ["images", rest @ .., "tag"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().unwrap_or_else(|| "latest".into());
            engine.images.tag(&name, &format!("{repo}:{tag}"))?;
            Ok(Response::builder()
                .status(201)
                .body(full(""))
                .unwrap_or_else(|_| Response::new(full(""))))
        }
        (&Method::DELETE, ["images", rest @ ..]) if !rest.is_empty() => {
            let name = rest.join("/");
            let used = engine.list_containers(true, None, &HashMap::new()).await?;
            let used_ids: Vec<String> = used
                .iter()
                .filter_map(|c| c["ImageID"].as_str().map(str::to_string))
                .collect();
            let items = engine
                .images
                .remove(&name, flag(&q, "force"), &|id: &str| {
                    used_ids.iter().any(|u| u == id)
                })?;
            Ok(json_response(
                200,
                &serde_json::to_value(items).unwrap_or(json!([])),
            ))
        }
        // ---------------------------------------------------------------- volumes
        (&Method::GET, ["volumes"]) => Ok(json_response(
            200,
            &engine.list_volumes(&filters(&q)?).await,
        )),
        (&Method::POST, ["volumes", "create"]) => {
            let body: bollard_stubs::models::VolumeCreateRequest = body_json(req).await?;
            let labels: HashMap<String, String> = body.labels.unwrap_or_default();
            Ok(json_response(
                201,
                &engine.create_volume(body.name, labels, body.driver).await?,
            ))
        }
        (&Method::POST, ["volumes", "prune"]) => {
            let names = engine.prune_volumes(&filters(&q)?).await?;
            Ok(json_response(
                200,
                &json!({"VolumesDeleted": names, "SpaceReclaimed": 0}),
            ))
        }
        (&Method::GET, ["volumes", name]) => {
            Ok(json_response(200, &engine.inspect_volume(name).await?))
        }
        (&Method::DELETE, ["volumes", name]) => {
            engine.remove_volume(name, flag(&q, "force")).await?;
            Ok(no_content())
        }
        // ---------------------------------------------------------------- networks
        (&Method::GET, ["networks"]) => Ok(json_response(
            200,
            &Value::Array(engine.list_networks(&filters(&q)?).await?),
        )),
        (&Method::POST, ["networks", "create"]) => {
            let body: bollard_stubs::models::NetworkCreateRequest = body_json(req).await?;
            let (id, warning) = engine.create_network(body).await?;
            Ok(json_response(
                201,
                &json!({"Id": id, "Warning": warning.unwrap_or_default()}),
            ))
        }
        (&Method::GET, ["tether", "v1", "dns-setup"]) => Ok(json_response(
            200,
            &serde_json::to_value(engine.host_dns_setup().await)
                .map_err(|e| EngineError::Internal(e.to_string()))?,
        )),
        (&Method::GET, ["tether", "v1", "graph"]) => {
            let only: Vec<String> = q
                .get("networks")
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let format = q.get("format").map(String::as_str).unwrap_or("svg");
            let (body, ct) = engine.graph(&only, format).await?;
            Response::builder()
                .header("Content-Type", ct)
                .header("Api-Version", API_VERSION)
                .body(full(body))
                .map_err(|e| EngineError::Internal(e.to_string()))
        }
        (&Method::GET, ["tether", "v1", "explain"]) => {
            let arg = |k: &str| {
                q.get(k).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
                    EngineError::InvalidParam(format!(
                        "query parameter {k} is required: /tether/v1/explain?src=SRC&dst=DST[:PORT[/PROTO]][&probe=1]"
                    ))
                })
            };
            let e = engine
                .explain(&arg("src")?, &arg("dst")?, flag(&q, "probe"))
                .await?;
            let v = serde_json::to_value(&e)
                .map_err(|e| EngineError::Internal(format!("encoding the explanation: {e}")))?;
            Ok(json_response(200, &v))
        }
        (&Method::POST, ["tether", "v1", "firewall", "reload"]) => {
            let n = engine.reload_firewall("requested through the API").await?;
            Ok(json_response(200, &json!({"Restored": n})))
        }
        (&Method::POST, ["networks", "prune"]) => {
            let names = engine.prune_networks(&filters(&q)?).await?;
            Ok(json_response(200, &json!({"NetworksDeleted": names})))
        }
        (&Method::GET, ["networks", id]) => {
            Ok(json_response(200, &engine.inspect_network(id).await?))
        }
        (&Method::DELETE, ["networks", id]) => {
            engine.remove_network(id).await?;
            Ok(no_content())
        }
        (&Method::POST, ["networks", id, "connect"]) => {
            let id = id.to_string();
            let body: bollard_stubs::models::NetworkConnectRequest = body_json(req).await?;
            engine
                .connect(
                    &id,
                    &body.container,
                    body.endpoint_config.unwrap_or_default(),
                )
                .await?;
            Ok(Response::new(full("")))
        }
        (&Method::POST, ["networks", id, "disconnect"]) => {
            let id = id.to_string();
            let body: bollard_stubs::models::NetworkDisconnectRequest = body_json(req).await?;
            engine
                .disconnect(&id, &body.container, body.force.unwrap_or(false))
                .await?;
            Ok(Response::new(full("")))
        }
        _ => Err(EngineError::NotFound(format!(
            "page not found: {method} {path}"
        ))),
    }
}

/// A streamed (not hijacked) answer, for clients that did not ask for an upgrade.
fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    Response::builder()
        .header("Content-Type", "application/vnd.docker.multiplexed-stream")
        .body(streams::channel_body(rx))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Docker's image list filters: `dangling=true|false`, `reference=PATTERN` (`*` wildcards,
/// matched against each tag with and without `:tag`), `label=k[=v]`.
fn image_matches(i: &tether_image::Image, f: &HashMap<String, Vec<String>>) -> bool {
    let dangling = f
        .get("dangling")
        .map(|v| v.iter().any(|x| x == "true" || x == "1"));
    if let Some(d) = dangling {
        if d != i.repo_tags.is_empty() {
            return false;
        }
    }
    if let Some(pats) = f.get("reference") {
        let hit = i.repo_tags.iter().any(|t| {
            let repo = t.rsplit_once(':').map(|(r, _)| r).unwrap_or(t);
            pats.iter().any(|p| glob(p, t) || glob(p, repo))
        });
        if !hit {
            return false;
        }
    }
    let labels: HashMap<String, String> = i
        .config
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tether_engine::networks::label_match(&labels, f)
}

/// `*`-only glob (what Docker's reference filter needs).
fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((pre, rest)) => {
            s.starts_with(pre)
                && (0..=s.len() - pre.len())
                    .any(|k| s.is_char_boundary(pre.len() + k) && glob(rest, &s[pre.len() + k..]))
        }
    }
}

fn upgrade_response(raw: bool) -> Response<Body> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(
            "Content-Type",
            if raw {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            },
        )
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .body(full(""))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Answers 101 and, once the connection is upgraded, writes the stream to it; without an
/// Upgrade header, streams as the response body (old clients).
fn hijack<T>(
    req: Request<T>,
    rx: mpsc::Receiver<Bytes>,
    stdin: Option<std::path::PathBuf>,
    raw: bool,
) -> Response<Body>
where
    T: Send + 'static,
{
    if !req.headers().contains_key(hyper::header::UPGRADE) {
        return stream_response(rx);
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => {
                let io = hyper_util::rt::TokioIo::new(up);
                let (mut rd, wr) = tokio::io::split(io);
                // the client's input goes to the container's stdin through the shim; when
                // the client half-closes, so do we (the shim closes stdin for StdinOnce)
                tokio::spawn(async move {
                    match stdin {
                        Some(path) => {
                            // clients attach before they start the container: the shim's
                            // socket appears at start
                            let mut sock = None;
                            for _ in 0..1500 {
                                match tokio::net::UnixStream::connect(&path).await {
                                    Ok(s) => {
                                        sock = Some(s);
                                        break;
                                    }
                                    Err(_) => {
                                        tokio::time::sleep(std::time::Duration::from_millis(20))
                                            .await
                                    }
                                }
                            }
                            if let Some(mut sock) = sock {
                                let _ = tokio::io::copy(&mut rd, &mut sock).await;
                                let _ = tokio::io::AsyncWriteExt::shutdown(&mut sock).await;
                            }
                        }
                        None => {
                            let _ = tokio::io::copy(&mut rd, &mut tokio::io::sink()).await;
                        }
                    }
                });
                streams::drain_to(wr, rx).await;
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    upgrade_response(raw)
}

fn size(q: &Query) -> Result<(u16, u16), EngineError> {
    let get = |k: &str| {
        q.get(k).and_then(|v| v.parse::<u16>().ok()).ok_or_else(|| {
            EngineError::InvalidParam(format!(
                "invalid {k} {:?}: expected a number of rows/columns",
                q.get(k).cloned().unwrap_or_default()
            ))
        })
    };
    Ok((get("h")?, get("w")?))
}

fn hijack_exec(
    req: Request<()>,
    engine: Arc<Engine>,
    id: String,
    child: tether_engine::exec::ExecProcess,
    tx: mpsc::Sender<Bytes>,
    rx: mpsc::Receiver<Bytes>,
    tty: bool,
) -> Response<Body> {
    let upgrade = req.headers().contains_key(hyper::header::UPGRADE);
    if !upgrade {
        let e2 = engine.clone();
        tokio::spawn(async move {
            let code = streams::pump_exec(child, tx, tty, None).await;
            e2.finish_exec(&id, code);
        });
        return stream_response(rx);
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => {
                let io = hyper_util::rt::TokioIo::new(up);
                let (rd, wr) = tokio::io::split(io);
                let writer = tokio::spawn(streams::drain_to(wr, rx));
                let code = streams::pump_exec(child, tx, tty, Some(rd)).await;
                engine.finish_exec(&id, code);
                let _ = writer.await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                let code = streams::pump_exec(child, tx, tty, None).await;
                engine.finish_exec(&id, code);
            }
        }
    });
    upgrade_response(tty)
}

fn version() -> Value {
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

async fn info(engine: &Engine) -> Value {
    let list = engine
        .list_containers(true, None, &HashMap::new())
        .await
        .unwrap_or_default();
    let running = list.iter().filter(|c| c["State"] == "running").count();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let cluster = engine.cluster_info().await;
    let mut plugins = vec!["bridge", "host", "null"];
    if cluster.is_some() {
        plugins.push("overlay");
    }
    let store = cluster
        .as_ref()
        .and_then(|c| c["Store"]["store"].as_str().map(str::to_string))
        .unwrap_or_default();
    let advertise = cluster
        .as_ref()
        .and_then(|c| c["Store"]["advertise"].as_str().map(str::to_string))
        .unwrap_or_default();
    json!({
        "ClusterStore": store, "ClusterAdvertise": advertise, "Cluster": cluster,
        "ID": "", "Containers": list.len(), "ContainersRunning": running, "ContainersPaused": 0,
        "ContainersStopped": list.len() - running, "Images": engine.images.list().len(),
        "Driver": "overlay", "DriverStatus": [], "Plugins": {"Network": plugins, "Volume": [], "Log": ["json-file"]},
        "MemoryLimit": false, "SwapLimit": false, "CpuCfsPeriod": false, "CpuCfsQuota": false, "IPv4Forwarding": true,
        "Debug": false, "NFd": 0, "NGoroutines": 0, "SystemTime": chrono::Utc::now().to_rfc3339(), "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "NEventsListener": 0, "KernelVersion": kernel,
        "OperatingSystem": "tether", "OSType": "linux", "Architecture": "x86_64", "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": 0, "DockerRootDir": engine.config().root, "Name": host, "Labels": [], "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"), "Runtimes": {"runc": {"path": engine.config().runtime}}, "DefaultRuntime": "runc", "FirewallBackend": {"Driver": "nftables"},
        "SecurityOptions": [], "Warnings": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("tbox", "tbox"));
        assert!(glob("tb*", "tbox:latest"));
        assert!(glob("*:latest", "tbox:latest"));
        assert!(glob("t*x", "tbox"));
        assert!(!glob("t*y", "tbox"));
        assert!(!glob("box", "tbox"));
    }

    #[test]
    fn image_filters() {
        let mut i = tether_image::Image {
            id: "sha256:00".into(),
            repo_tags: vec!["tbox:latest".into()],
            created: String::new(),
            size: 0,
            ..Default::default()
        };
        let f = |k: &str, v: &str| HashMap::from([(k.to_string(), vec![v.to_string()])]);
        assert!(image_matches(&i, &f("dangling", "false")));
        assert!(!image_matches(&i, &f("dangling", "true")));
        assert!(image_matches(&i, &f("reference", "tbox")));
        assert!(image_matches(&i, &f("reference", "tb*:latest")));
        assert!(!image_matches(&i, &f("reference", "other")));
        i.repo_tags.clear();
        assert!(image_matches(&i, &f("dangling", "true")));
    }
}
