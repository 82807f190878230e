//! Streams: Docker's multiplexed stream framing (stdcopy: 8-byte header [stream, 0, 0, 0,
//! big-endian u32 length] then the payload; stream 1 = stdout, 2 = stderr), log following,
//! and the hijacked attach and exec connections.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tether_engine::Engine;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc;

use hyper::{Request, Response, StatusCode};

use crate::{full, Body};

/// Frames `payload` for stream `kind` (1 stdout, 2 stderr).
pub fn frame(kind: u8, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.extend_from_slice(&[kind, 0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// A response body fed by a channel.
pub fn channel_body(rx: mpsc::Receiver<Bytes>) -> Body {
    let s = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    StreamBody::new(s).boxed()
}

/// A receiver of `T`s as a receiver of bytes, each `T` turned into bytes by `f` (a
/// task forwards them; it ends when either side does).
pub fn map_channel<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
    f: impl Fn(T) -> Bytes + Send + 'static,
) -> mpsc::Receiver<Bytes> {
    let (tx, out) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => {
                        if tx.send(f(m)).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    out
}

/// What to send of a container log.
#[derive(Clone, Debug)]
pub struct LogOpts {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// Only the last N entries (None = all).
    pub tail: Option<usize>,
    pub timestamps: bool,
    /// Start at the current end (attach) instead of the beginning.
    pub from_end: bool,
    /// Stop when the container exits after this event generation (attach).
    pub until_exit_after: Option<u64>,
    /// Raw output (tty) instead of multiplexed frames.
    pub raw: bool,
}

/// Streams the json-file log at `path` to `tx` per `opts`, following while the container runs.
pub async fn pump_log(
    engine: Arc<Engine>,
    id: String,
    path: PathBuf,
    opts: LogOpts,
    tx: mpsc::Sender<Bytes>,
) {
    let Ok(mut f) = tokio::fs::File::open(&path).await else {
        return;
    };
    let mut pos: u64 = if opts.from_end {
        f.metadata().await.map(|m| m.len()).unwrap_or(0)
    } else {
        0
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut first = true;
    let mut events = engine.events(&id);
    loop {
        let _ = f.seek(std::io::SeekFrom::Start(pos)).await;
        let mut buf = Vec::new();
        let n = f.read_to_end(&mut buf).await.unwrap_or(0);
        pos += n as u64;
        pending.extend_from_slice(&buf);
        let cut = pending
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        let complete: Vec<u8> = pending.drain(..cut).collect();
        let mut entries = tether_runtime::logs::parse(&complete);
        if first {
            if let Some(t) = opts.tail {
                let skip = entries.len().saturating_sub(t);
                entries.drain(..skip);
            }
            first = false;
        }
        for e in entries {
            let kind = if e.stream == "stderr" { 2 } else { 1 };
            if (kind == 1 && !opts.stdout) || (kind == 2 && !opts.stderr) {
                continue;
            }
            let text = if opts.timestamps {
                format!("{} {}", e.time, e.log)
            } else {
                e.log
            };
            let b = if opts.raw {
                Bytes::from(text.into_bytes())
            } else {
                frame(kind, text.as_bytes())
            };
            if tx.send(b).await.is_err() {
                return;
            }
        }
        if n > 0 {
            continue;
        }
        let done = match opts.until_exit_after {
            Some(g) => {
                let e = *events.borrow();
                e.0 > g || e.2
            }
            None => !opts.follow || !engine.is_running(&id).await,
        };
        if done {
            // one last read to drain what the shim wrote before the exit was recorded
            let _ = f.seek(std::io::SeekFrom::Start(pos)).await;
            let mut rest = Vec::new();
            if f.read_to_end(&mut rest).await.unwrap_or(0) > 0 {
                pos += rest.len() as u64;
                pending.extend_from_slice(&rest);
                continue;
            }
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = events.changed() => {}
        }
    }
}

/// Writes everything from `rx` to the hijacked connection `io`, then shuts it down.
pub async fn drain_to<W: tokio::io::AsyncWrite + Unpin>(mut io: W, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(b) = rx.recv().await {
        if io.write_all(&b).await.is_err() {
            return;
        }
        let _ = io.flush().await;
    }
    let _ = io.shutdown().await;
}

/// Copies `r` to `tx`, framed as stream `kind` (1 stdout, 2 stderr) or raw.
async fn copy_stream<R: tokio::io::AsyncRead + Unpin>(
    r: Option<R>,
    kind: u8,
    raw: bool,
    tx: mpsc::Sender<Bytes>,
) {
    let Some(mut r) = r else { return };
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        let chunk = if raw {
            Bytes::copy_from_slice(&buf[..n])
        } else {
            frame(kind, &buf[..n])
        };
        if n == 0 || tx.send(chunk).await.is_err() {
            break;
        }
    }
}

/// Runs an exec's process: copies its stdout/stderr as frames (or raw) to `tx`, the
/// client's input to its stdin, and returns its exit code.
pub async fn pump_exec(
    proc: tether_engine::exec::ExecProcess,
    tx: mpsc::Sender<Bytes>,
    raw: bool,
    stdin_src: Option<tokio::io::ReadHalf<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>>,
) -> i64 {
    let mut child = proc.child;
    let out = child.stdout.take();
    let err = child.stderr.take();
    let stdin = child.stdin.take();
    if let (Some(mut sink), Some(mut src)) = (stdin, stdin_src) {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut src, &mut sink).await;
            let _ = sink.shutdown().await;
        });
    }
    let (_, _, st) = tokio::join!(
        copy_stream(out, 1, raw, tx.clone()),
        copy_stream(err, 2, raw, tx.clone()),
        child.wait()
    );
    match st {
        Ok(s) => s.code().map(i64::from).unwrap_or_else(|| {
            128 + i64::from(std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(9))
        }),
        Err(_) => 126,
    }
}

// ---------------------------------------------------------------- hijacked streams

/// A streamed (not hijacked) answer, for clients that did not ask for an upgrade.
pub(crate) fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    Response::builder()
        .header("Content-Type", "application/vnd.docker.multiplexed-stream")
        .body(channel_body(rx))
        .unwrap_or_else(|_| Response::new(full("")))
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
pub(crate) fn hijack<T>(
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
                drain_to(wr, rx).await;
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    upgrade_response(raw)
}

pub(crate) fn hijack_exec(
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
            let code = pump_exec(child, tx, tty, None).await;
            e2.finish_exec(&id, code);
        });
        return stream_response(rx);
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => {
                let io = hyper_util::rt::TokioIo::new(up);
                let (rd, wr) = tokio::io::split(io);
                let writer = tokio::spawn(drain_to(wr, rx));
                let code = pump_exec(child, tx, tty, Some(rd)).await;
                engine.finish_exec(&id, code);
                let _ = writer.await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                let code = pump_exec(child, tx, tty, None).await;
                engine.finish_exec(&id, code);
            }
        }
    });
    upgrade_response(tty)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn stdcopy_header() {
        let f = frame(2, b"hi");
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }
}
