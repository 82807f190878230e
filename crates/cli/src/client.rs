//! A thin Docker Engine API client over the daemon's unix socket.
//!
//! bollard 0.21 was the first choice, but it offers no raw-JSON request
//! helper (its typed models re-serialize, losing key order and `null` vs.
//! missing, while `docker inspect` prints the daemon's raw JSON), and its
//! hijacked-stream decoder guesses the framing from the first byte and
//! line-buffers exec output. So requests go through hyper's HTTP/1.1 client
//! connection directly, one connection per request like docker's CLI.

use std::path::PathBuf;

use bytes::Bytes;
use futures::Stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, HOST, UPGRADE, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::sync::OnceCell;
use tracing::debug;

use crate::error::{CliError, Result};

/// The socket used when neither `-H` nor `DOCKER_HOST` is given.
pub const DEFAULT_HOST: &str = "unix:///run/tether/tether.sock";

/// The newest API version this client speaks.
pub const MAX_API_VERSION: &str = "1.47";

/// A request body: empty, in memory, or streamed.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// An empty body.
pub fn empty_body() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body from bytes in memory.
pub fn full_body(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A streamed body (sent with chunked transfer encoding).
pub fn stream_body<S>(s: S) -> Body
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    use futures::StreamExt;
    StreamBody::new(s.map(|r| r.map(Frame::data))).boxed_unsync()
}

/// A hijacked connection (attach / exec start).
pub enum Hijacked {
    /// The daemon switched protocols (101): a raw bidirectional stream.
    Upgraded(TokioIo<hyper::upgrade::Upgraded>),
    /// The daemon answered 200 and streams the output as the body (no stdin).
    Body(Incoming),
}

/// A query string builder with URL encoding.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// An empty query.
    pub fn new() -> Self {
        Query(Vec::new())
    }
    /// Adds `key=value`.
    pub fn add(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.push((key.to_string(), value.into()));
        self
    }
    /// Adds `key=value` when `cond` holds.
    pub fn add_if(self, cond: bool, key: &str, value: impl Into<String>) -> Self {
        if cond {
            self.add(key, value)
        } else {
            self
        }
    }
    /// `?a=b&c=d`, or "" when empty.
    pub fn encode(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes one path segment (a container or image name).
pub fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b'@'
            | b'/' => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Client for one daemon.
#[derive(Clone)]
pub struct Client {
    host: String,
    socket: PathBuf,
    prefix: OnceCell<String>,
}

/// Turns `unix:///path`, `unix://path` or `/path` into a socket path.
pub fn socket_path(host: &str) -> Result<PathBuf> {
    if let Some(rest) = host.strip_prefix("unix://") {
        if rest.is_empty() {
            return Err(CliError::UnsupportedHost(host.to_string()));
        }
        return Ok(PathBuf::from(rest));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    Err(CliError::UnsupportedHost(host.to_string()))
}

fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

impl Client {
    /// A client for `host` (see [`socket_path`]). No I/O happens until the first request.
    pub fn new(host: &str) -> Result<Client> {
        let socket = socket_path(host)?;
        let host = if host.starts_with('/') {
            format!("unix://{host}")
        } else {
            host.to_string()
        };
        Ok(Client {
            host,
            socket,
            prefix: OnceCell::new(),
        })
    }

    /// The daemon address as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            debug!(error = %e, socket = %self.socket.display(), "connect failed");
            CliError::Connect {
                host: self.host.clone(),
            }
        })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CliError::Http(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(error = %e, "connection closed with error");
            }
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| CliError::Http(e.to_string()))
    }

    fn build(
        &self,
        method: Method,
        uri: &str,
        body: Body,
        ctype: Option<&str>,
    ) -> Result<Request<Body>> {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, "api.moby.localhost")
            .header(
                USER_AGENT,
                concat!("tether-cli/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = ctype {
            b = b.header(CONTENT_TYPE, ct);
        }
        b.body(body).map_err(|e| CliError::Http(e.to_string()))
    }

    /// The `/vX.Y` prefix, negotiated once with `GET /_ping` (docker's
    /// negotiation: the lower of ours and the daemon's `API-Version`).
    async fn prefix(&self) -> Result<&str> {
        self.prefix
            .get_or_try_init(|| async {
                if let Ok(v) = std::env::var("DOCKER_API_VERSION") {
                    if !v.is_empty() {
                        return Ok(format!("/v{}", v.trim_start_matches('v')));
                    }
                }
                let req = self.build(Method::GET, "/_ping", empty_body(), None)?;
                let resp = self.send(req).await?;
                let server = resp
                    .headers()
                    .get("api-version")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let _ = resp.into_body().collect().await;
                Ok(match server {
                    Some(v) if version_cmp(&v, MAX_API_VERSION).is_lt() => format!("/v{v}"),
                    Some(_) => format!("/v{MAX_API_VERSION}"),
                    None => String::new(),
                })
            })
            .await
            .map(String::as_str)
    }

    /// The negotiated API version ("1.47"), or "" when unversioned.
    pub async fn api_version(&self) -> Result<String> {
        Ok(self.prefix().await?.trim_start_matches("/v").to_string())
    }

    /// Sends a request to `path` (which may include a query string) and
    /// returns the response if its status is a success; otherwise the
    /// daemon's error message as [`CliError::Daemon`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Body,
        ctype: Option<&str>,
    ) -> Result<Response<Incoming>> {
        let uri = format!("{}{}", self.prefix().await?, path);
        debug!(%method, %uri, "request");
        let req = self.build(method, &uri, body, ctype)?;
        let resp = self.send(req).await?;
        check(resp).await
    }

    /// [`Client::request`] with extra headers (`X-Registry-Auth`, ...).
    pub async fn request_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Body,
        ctype: Option<&str>,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>> {
        let uri = format!("{}{}", self.prefix().await?, path);
        debug!(%method, %uri, "request");
        let mut req = self.build(method, &uri, body, ctype)?;
        for (k, v) in headers {
            let v =
                HeaderValue::from_str(v).map_err(|e| CliError::Http(format!("header {k}: {e}")))?;
            req.headers_mut().insert(*k, v);
        }
        let resp = self.send(req).await?;
        check(resp).await
    }

    /// A request whose body is in memory (`json`). Once the version is negotiated, or
    /// with `DOCKER_API_VERSION` set, it is [`Client::request`]. Before that, it goes out at
    /// once at `/v{MAX_API_VERSION}`, without the `/_ping` round trip; a daemon that
    /// answers Docker's 400 `client version X is too new. Maximum supported API version
    /// is Y` gets it again at `/vY`, which is then kept for the process.
    async fn request_mem(
        &self,
        method: Method,
        path: &str,
        json: Option<String>,
    ) -> Result<Response<Incoming>> {
        let ct = json.as_ref().map(|_| "application/json");
        let body = |j: &Option<String>| match j {
            Some(t) => full_body(t.clone()),
            None => empty_body(),
        };
        let env_set = std::env::var("DOCKER_API_VERSION").is_ok_and(|v| !v.is_empty());
        if self.prefix.initialized() || env_set {
            return self.request(method, path, body(&json), ct).await;
        }
        let uri = format!("/v{MAX_API_VERSION}{path}");
        debug!(%method, %uri, "request (version not negotiated yet)");
        let req = self.build(method.clone(), &uri, body(&json), ct)?;
        let resp = self.send(req).await?;
        if resp.status() == StatusCode::BAD_REQUEST {
            let bytes = collect(resp).await.unwrap_or_default();
            let message = error_message(&bytes);
            let max = message
                .split_once("Maximum supported API version is ")
                .map(|(_, v)| v.trim().trim_end_matches('.').to_string())
                .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'));
            return match max {
                Some(v) => {
                    let _ = self.prefix.set(format!("/v{v}"));
                    self.request(method, path, body(&json), ct).await
                }
                None => Err(CliError::Daemon {
                    status: 400,
                    message,
                }),
            };
        }
        let _ = self.prefix.set(format!("/v{MAX_API_VERSION}"));
        check(resp).await
    }

    /// GET returning the raw body.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        let resp = self.request_mem(Method::GET, path, None).await?;
        collect(resp).await
    }

    /// GET returning parsed JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let b = self.get(path).await?;
        parse_json(&b)
    }

    /// POST with an optional JSON body, returning the raw response body.
    pub async fn post(&self, path: &str, body: Option<&serde_json::Value>) -> Result<Bytes> {
        let resp = self
            .request_mem(Method::POST, path, body.map(|v| v.to_string()))
            .await?;
        collect(resp).await
    }

    /// POST with a JSON body, returning parsed JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let b = self.post(path, body).await?;
        parse_json(&b)
    }

    /// DELETE returning the raw body.
    pub async fn delete(&self, path: &str) -> Result<Bytes> {
        let resp = self.request_mem(Method::DELETE, path, None).await?;
        collect(resp).await
    }

    /// POST that hijacks the connection (`Connection: Upgrade`, `Upgrade: tcp`),
    /// as docker's attach and exec start do.
    pub async fn hijack(&self, path: &str, body: Option<&serde_json::Value>) -> Result<Hijacked> {
        let uri = format!("{}{}", self.prefix().await?, path);
        debug!(%uri, "hijack");
        let (b, ct) = match body {
            Some(v) => (full_body(v.to_string()), Some("application/json")),
            None => (empty_body(), None),
        };
        let mut req = self.build(Method::POST, &uri, b, ct)?;
        req.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        req.headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("tcp"));
        let resp = self.send(req).await?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let up = hyper::upgrade::on(resp)
                .await
                .map_err(|e| CliError::Http(e.to_string()))?;
            return Ok(Hijacked::Upgraded(TokioIo::new(up)));
        }
        let resp = check(resp).await?;
        Ok(Hijacked::Body(resp.into_body()))
    }
}

async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    let body = collect(resp).await.unwrap_or_default();
    Err(CliError::Daemon {
        status: status.as_u16(),
        message: error_message(&body),
    })
}

/// The `message` of a daemon error body, or the body text itself.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    String::from_utf8_lossy(body).trim().to_string()
}

/// Reads a whole response body.
pub async fn collect(resp: Response<Incoming>) -> Result<Bytes> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| CliError::Http(e.to_string()))
}

/// Parses JSON, mapping errors to [`CliError::BadResponse`].
pub fn parse_json(b: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(b).map_err(|e| CliError::BadResponse(e.to_string()))
}

/// Reads the next data chunk of a streamed body (`None` at the end).
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(CliError::Http(e.to_string())),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    return Ok(Some(d));
                }
            }
        }
    }
}

/// Incrementally splits a stream of concatenated JSON objects (docker's
/// progress streams for pull, import and load).
#[derive(Default)]
pub struct JsonStream {
    buf: Vec<u8>,
}

impl JsonStream {
    /// Adds bytes and returns the complete messages found so far.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<serde_json::Value> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            let mut consumed = 0;
            let mut garbage = false;
            {
                let mut it = serde_json::Deserializer::from_slice(&self.buf)
                    .into_iter::<serde_json::Value>();
                loop {
                    match it.next() {
                        Some(Ok(v)) => {
                            consumed = it.byte_offset();
                            out.push(v);
                        }
                        Some(Err(e)) if e.is_eof() => break,
                        Some(Err(_)) => {
                            garbage = true;
                            break;
                        }
                        None => {
                            consumed = self.buf.len();
                            break;
                        }
                    }
                }
            }
            if garbage {
                // Skip the offending line and keep going.
                if let Some(nl) = self.buf[consumed..].iter().position(|&b| b == b'\n') {
                    self.buf.drain(..consumed + nl + 1);
                    continue;
                }
            }
            self.buf.drain(..consumed);
            return out;
        }
    }

    /// Whatever is left unparsed at the end of the stream (non-JSON bodies).
    pub fn rest(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daemon of API 1.41 (as dockerd 20.10): `/v1.47/...` is refused with Docker's
    /// "too new" answer, `/v1.41/...` answers the path. The first request goes out without
    /// a ping, is refused, and is sent again at 1.41, which the client then keeps.
    #[tokio::test]
    async fn an_older_daemon_gets_the_request_again_at_its_version() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = c.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                seen2.lock().unwrap().push(path.clone());
                let (status, body) = if path.starts_with("/v1.47/") {
                    ("400 Bad Request", r#"{"message":"client version 1.47 is too new. Maximum supported API version is 1.41"}"#.to_string())
                } else {
                    ("200 OK", format!(r#"{{"path":"{path}"}}"#))
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = c.write_all(resp.as_bytes()).await;
            }
        });
        let client = Client::new(&format!("unix://{}", sock.display())).unwrap();
        let v = client.get_json("/info").await.unwrap();
        assert_eq!(v["path"], "/v1.41/info");
        let v = client
            .post_json("/networks/create", Some(&serde_json::json!({})))
            .await
            .unwrap();
        assert_eq!(v["path"], "/v1.41/networks/create");
        assert_eq!(client.api_version().await.unwrap(), "1.41");
        assert_eq!(
            *seen.lock().unwrap(),
            ["/v1.47/info", "/v1.41/info", "/v1.41/networks/create"],
            "no ping, one refused request, then the daemon's version"
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(
            socket_path("unix:///run/tether/tether.sock").unwrap(),
            PathBuf::from("/run/tether/tether.sock")
        );
        assert_eq!(
            socket_path("/tmp/x.sock").unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
        assert!(socket_path("tcp://1.2.3.4:2375").is_err());
    }

    #[test]
    fn query_encoding() {
        let q = Query::new()
            .add("filters", r#"{"name":["web"]}"#)
            .add("changes", "CMD [\"sh\"]");
        assert_eq!(
            q.encode(),
            "?filters=%7B%22name%22%3A%5B%22web%22%5D%7D&changes=CMD%20%5B%22sh%22%5D"
        );
        assert_eq!(Query::new().encode(), "");
        assert_eq!(path_escape("tbox:latest"), "tbox:latest");
        assert_eq!(path_escape("a b#"), "a%20b%23");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"message":"No such container: x"}"#),
            "No such container: x"
        );
        assert_eq!(error_message(b"page not found\n"), "page not found");
    }

    #[test]
    fn json_stream_splits_messages() {
        let mut s = JsonStream::default();
        let a = s.push(b"{\"status\":\"a\"}\r\n{\"stat");
        assert_eq!(a.len(), 1);
        let b = s.push(b"us\":\"b\"}{\"stream\":\"c\"}\n");
        assert_eq!(b.len(), 2);
        assert_eq!(b[1]["stream"], "c");
        assert!(s.rest().iter().all(|c| c.is_ascii_whitespace()));
    }

    #[test]
    fn versions() {
        assert!(version_cmp("1.41", "1.47").is_lt());
        assert!(version_cmp("1.100", "1.47").is_gt());
    }
}
