//! The request handlers, one module per resource. A handler parses its request (path,
//! query, headers, body), calls one [`Engine`](tether_engine::Engine) method and shapes
//! the answer; decisions belong to the engine. The shared request parsing lives here:
//! the query ([`Q`]), the object named in the path ([`Id`]), JSON bodies, and the error
//! answer ([`Error`]: Docker's `{"message": ...}` with the status of the
//! [`EngineError`]).

pub(crate) mod build;
pub(crate) mod containers;
pub(crate) mod events;
pub(crate) mod exec;
pub(crate) mod images;
pub(crate) mod networks;
pub(crate) mod registry;
pub(crate) mod system;
pub(crate) mod volumes;

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;

use axum::extract::{FromRequestParts, Path, Request};
use axum::response::IntoResponse;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde_json::Value;
use tether_engine::EngineError;

use crate::{error_response, full, Body};

/// What a handler answers: a response, or an engine error as Docker's JSON error.
pub(crate) type Reply = Result<Response<Body>, Error>;

/// An error answer: `{"message": ...}` with [`EngineError::status`] (304 without a body).
#[derive(Debug)]
pub(crate) struct Error(pub(crate) EngineError);

impl<E: Into<EngineError>> From<E> for Error {
    fn from(e: E) -> Self {
        Error(e.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        error_response(self.0.status(), &self.0.to_string()).into_response()
    }
}

/// The query string: its parameters (the last value of each) and the raw string, for
/// the parameters given more than once (`changes`, `names`).
pub(crate) struct Q {
    map: HashMap<String, String>,
    raw: Option<String>,
}

impl Q {
    fn parse(raw: Option<&str>) -> Q {
        Q {
            map: raw
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
            raw: raw.map(str::to_string),
        }
    }

    /// Every value of parameter `key` (`names=a&names=b`), in order.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.raw
            .as_deref()
            .map(|qs| {
                url::form_urlencoded::parse(qs.as_bytes())
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether flag `k` is given as 1 or true (an unset or other value is false).
    pub(crate) fn flag(&self, k: &str) -> bool {
        matches!(
            self.get(k).map(|s| s.as_str()),
            Some("1") | Some("true") | Some("True")
        )
    }

    /// Docker's `filters` parameter: `{"label":["a=b"]}` or the old
    /// `{"label":{"a=b":true}}`.
    ///
    /// Errors: 400 when it is not JSON.
    pub(crate) fn filters(&self) -> Result<HashMap<String, Vec<String>>, EngineError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
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

    /// An integer parameter: None when absent or empty.
    ///
    /// Errors: 400 naming the parameter, the value and what is valid (`what`).
    pub(crate) fn int(&self, k: &str, what: &str) -> Result<Option<i64>, EngineError> {
        match self.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                EngineError::InvalidParam(format!(
                    "invalid value for query parameter {k}: {v:?} is not an integer ({what})"
                ))
            }),
        }
    }

    /// A boolean parameter: absent, "", 0, false, no, none are false; 1, true, yes are
    /// true (moby `httputils.BoolValue`, but anything else is refused).
    ///
    /// Errors: 400 naming the parameter and the value.
    pub(crate) fn boolean(&self, k: &str) -> Result<bool, EngineError> {
        match self
            .get(k)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("0") | Some("false") | Some("no") | Some("none") => Ok(false),
            Some("1") | Some("true") | Some("yes") => Ok(true),
            Some(_) => Err(EngineError::InvalidParam(format!(
                "invalid value for query parameter {k}: {:?}: use true or false (1 or 0)",
                self.get(k).cloned().unwrap_or_default()
            ))),
        }
    }

    /// The archive endpoints' `path` parameter (moby `httputils.ArchiveFormValues`).
    ///
    /// Errors: 400 when absent or empty, or holding a NUL byte.
    pub(crate) fn archive_path(&self) -> Result<String, EngineError> {
        match self.get("path").filter(|p| !p.is_empty()) {
            None => Err(EngineError::InvalidParam(
                "bad parameter: path cannot be empty".into(),
            )),
            Some(p) if p.contains('\0') => Err(EngineError::InvalidParam(format!(
                "bad parameter: path {p:?} contains a NUL byte"
            ))),
            Some(p) => Ok(p.clone()),
        }
    }

    /// The logs `tail` parameter: `all` (or absent, or negative, as Docker) for every
    /// line, else a number of lines.
    ///
    /// Errors: 400 naming `tail` and the value.
    pub(crate) fn tail(&self) -> Result<Option<usize>, EngineError> {
        match self.get("tail").map(|v| v.trim()) {
            None | Some("") | Some("all") => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) => Ok(usize::try_from(n).ok()),
                Err(_) => Err(EngineError::InvalidParam(format!(
                    "invalid value for query parameter tail: {v:?}: give a number of lines or \"all\""
                ))),
            },
        }
    }

    /// A time parameter (`since`, `until` of logs) as Unix nanoseconds: Unix seconds
    /// with an optional fraction (`1700000000.5`, as the docker CLI sends) or an RFC 3339
    /// time (`2024-01-02T15:04:05Z`); None when absent or empty.
    ///
    /// Errors: 400 naming the parameter and the value.
    pub(crate) fn timestamp(&self, k: &str) -> Result<Option<i64>, EngineError> {
        let Some(v) = self.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if let Ok(secs) = v.parse::<f64>() {
            if secs.is_finite() {
                return Ok(Some((secs * 1e9) as i64));
            }
        }
        chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .map(Some)
            .ok_or_else(|| {
                EngineError::InvalidParam(format!(
                    "invalid value for query parameter {k}: {v:?}: give Unix seconds (1700000000.5) or an RFC 3339 time"
                ))
            })
    }

    /// The terminal size parameters `h` and `w` (rows, columns).
    ///
    /// Errors: 400 naming the one missing or not a number.
    pub(crate) fn size(&self) -> Result<(u16, u16), EngineError> {
        let get = |k: &str| {
            self.get(k)
                .and_then(|v| v.parse::<u16>().ok())
                .ok_or_else(|| {
                    EngineError::InvalidParam(format!(
                        "invalid {k} {:?}: expected a number of rows/columns",
                        self.get(k).cloned().unwrap_or_default()
                    ))
                })
        };
        Ok((get("h")?, get("w")?))
    }
}

impl std::ops::Deref for Q {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Q {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Q::parse(parts.uri.query()))
    }
}

/// The object a path names (`/containers/{id}/...`, `/images/{*name}`), percent-decoded.
pub(crate) struct Id(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|e| Error(EngineError::InvalidParam(e.body_text())))
    }
}

/// The API version a request asked for in its `/v{MAJOR.MINOR}` prefix, as a comparable
/// pair; None without a prefix (the daemon's own version applies). Handlers whose
/// answer changed between versions read it (moby's `httputils.VersionFromContext`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ApiVersion(pub(crate) Option<(u32, u32)>);

impl ApiVersion {
    /// Whether the request asked for a version older than `major.minor`.
    pub(crate) fn before(self, major: u32, minor: u32) -> bool {
        self.0.is_some_and(|v| v < (major, minor))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or_default())
    }
}

/// The path a request was routed by: the request's path without its `/v{version}`
/// prefix, as the client sent it (the 404 answer names it).
#[derive(Clone, Debug)]
pub(crate) struct RoutedPath(pub(crate) String);

/// The 404 of a request no route takes: `page not found: METHOD PATH`.
pub(crate) fn not_found<B>(req: &hyper::Request<B>) -> EngineError {
    let path = req
        .extensions()
        .get::<RoutedPath>()
        .map(|p| p.0.clone())
        .unwrap_or_else(|| req.uri().path().to_string());
    EngineError::NotFound(format!("page not found: {} {path}", req.method()))
}

/// The request body, whole.
///
/// Errors: 400 when the client's body cannot be read.
pub(crate) async fn body_bytes(req: Request) -> Result<Bytes, EngineError> {
    Ok(req
        .into_body()
        .collect()
        .await
        .map_err(|e| EngineError::InvalidParam(format!("reading body: {e}")))?
        .to_bytes())
}

/// Decodes a JSON body; an empty body is `T::default()`. A wrong type or a malformed
/// value is a 400 naming its JSON path (`HostConfig.Memory: invalid type: string "x",
/// expected i64`).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned + Default>(
    b: &[u8],
) -> Result<T, EngineError> {
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

/// The request body decoded as JSON (see [`parse_json`]).
pub(crate) async fn body_json<T: serde::de::DeserializeOwned + Default>(
    req: Request,
) -> Result<T, EngineError> {
    parse_json(&body_bytes(req).await?)
}

/// Spools the request body into a temporary file (image archives, build contexts).
///
/// Errors: 400 the body cannot be read; 500 the file cannot be written.
pub(crate) async fn body_to_file(req: Request) -> Result<tempfile::NamedTempFile, EngineError> {
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

/// Answers `status` with `msg` to a request whose body was not read, after reading it
/// (for at most 5 s): a server that closes with unread data makes the kernel reset the
/// connection, and the client then loses the answer.
pub(crate) async fn refuse_unread<B>(
    req: hyper::Request<B>,
    status: u16,
    msg: &str,
) -> Response<Body>
where
    B: hyper::body::Body,
{
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), req.into_body().collect()).await;
    error_response(status, msg)
}

/// `v` as JSON.
///
/// Errors: 500 when it cannot be encoded (a map with keys that are not strings).
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, EngineError> {
    serde_json::to_value(v).map_err(|e| EngineError::Internal(format!("encoding the answer: {e}")))
}

/// 204 without a body.
pub(crate) fn no_content() -> Response<Body> {
    let mut r = Response::new(full(""));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// 200 with an empty body.
pub(crate) fn ok_empty() -> Response<Body> {
    Response::new(full(""))
}

/// A streamed body of JSON lines (`application/json`, with the `Api-Version` header).
pub(crate) fn json_stream(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response<Body> {
    Response::builder()
        .header("Content-Type", "application/json")
        .header("Api-Version", crate::API_VERSION)
        .body(crate::streams::channel_body(rx))
        .unwrap_or_else(|_| Response::new(full("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> Q {
        Q::parse(Some(raw))
    }

    #[test]
    fn filters_in_every_shape() {
        let f = q(r#"filters={"label":["a=b","c"],"dangling":{"true":true},"name":"x"}"#)
            .filters()
            .unwrap_or_default();
        assert_eq!(f["label"], ["a=b", "c"]);
        assert_eq!(f["dangling"], ["true"]);
        assert_eq!(f["name"], ["x"]);
        assert!(q("filters=").filters().is_ok_and(|f| f.is_empty()));
        assert!(q("").filters().is_ok_and(|f| f.is_empty()));
        let e = q("filters={bad").filters().err().map(|e| e.status());
        assert_eq!(e, Some(400));
    }

    #[test]
    fn flags_booleans_and_numbers() {
        let p = q("all=1&force=true&v=0&x=True&b=yes&n=no&bad=maybe&t=5&t2=x&tail=all&tail2=3");
        assert!(p.flag("all") && p.flag("force") && p.flag("x"));
        assert!(!p.flag("v") && !p.flag("b") && !p.flag("missing"));
        assert!(p.boolean("b").is_ok_and(|b| b));
        assert!(p.boolean("n").is_ok_and(|b| !b));
        assert!(p.boolean("missing").is_ok_and(|b| !b));
        assert_eq!(p.boolean("bad").err().map(|e| e.status()), Some(400));
        assert!(p.int("t", "").is_ok_and(|t| t == Some(5)));
        assert!(p.int("missing", "").is_ok_and(|t| t.is_none()));
        assert_eq!(p.int("t2", "").err().map(|e| e.status()), Some(400));
        assert!(p.tail().is_ok_and(|t| t.is_none()));
        assert!(q("tail=3").tail().is_ok_and(|t| t == Some(3)));
        assert!(q("tail=-1").tail().is_ok_and(|t| t.is_none()));
        assert_eq!(q("tail=x").tail().err().map(|e| e.status()), Some(400));
    }

    #[test]
    fn repeated_parameters_and_paths() {
        let p = q("changes=CMD%20a&changes=ENV%20b%3Dc&path=%2Fetc");
        assert_eq!(p.all("changes"), ["CMD a", "ENV b=c"]);
        assert!(p.archive_path().is_ok_and(|a| a == "/etc"));
        assert_eq!(
            q("path=").archive_path().err().map(|e| e.status()),
            Some(400)
        );
        assert_eq!(
            q("path=a%00b").archive_path().err().map(|e| e.status()),
            Some(400)
        );
        assert!(q("h=24&w=80").size().is_ok_and(|s| s == (24, 80)));
        assert_eq!(q("h=24").size().err().map(|e| e.status()), Some(400));
    }

    #[test]
    fn json_bodies_name_the_bad_field() {
        #[derive(Default, serde::Deserialize)]
        struct B {
            #[serde(rename = "Memory", default)]
            _memory: i64,
        }
        assert!(parse_json::<B>(b"  ").is_ok());
        let e = parse_json::<B>(br#"{"Memory": "x"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("invalid JSON body: Memory: "), "{e}");
    }
}
