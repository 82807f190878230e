//! Streams: Docker's multiplexed stream framing (stdcopy: 8-byte header [stream, 0, 0, 0,
//! big-endian u32 length] then the payload; stream 1 = stdout, 2 = stderr), response
//! bodies fed by channels, and the hijacked attach and exec connections.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tether_engine::logs::OutputStream;
use tether_engine::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// The container output `rx` as bytes for the client: raw for a container with a
/// terminal, else multiplexed frames (see [`frame`]).
pub fn output_bytes(
    rx: mpsc::Receiver<tether_engine::logs::LogChunk>,
    raw: bool,
) -> mpsc::Receiver<Bytes> {
    map_channel(rx, move |c| {
        if raw {
            c.data
        } else {
            let kind = match c.stream {
                OutputStream::Stdout => 1,
                OutputStream::Stderr => 2,
            };
            frame(kind, &c.data)
        }
    })
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
    let mut gone = false;
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if gone {
            // the client detached or left: keep draining so that the process never
            // blocks on a full pipe
            continue;
        }
        let chunk = if raw {
            Bytes::copy_from_slice(&buf[..n])
        } else {
            frame(kind, &buf[..n])
        };
        gone = tx.send(chunk).await.is_err();
    }
}

/// Copies the client's input `src` to `sink` until `keys` (a detach sequence) has been
/// typed: then stops, notifies `detached` and returns the sink, still open (the caller
/// keeps it while the process runs: closing it would end the process's input), without
/// forwarding the sequence. Bytes of a partial match are forwarded once the match
/// breaks. Empty `keys`: copies everything. When the input ends the sink is shut down
/// and None is returned.
pub async fn copy_detachable<R, W>(
    mut src: R,
    mut sink: W,
    keys: Vec<u8>,
    detached: Arc<tokio::sync::Notify>,
) -> Option<W>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 8 * 1024];
    let mut matched = 0usize;
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut out: Vec<u8> = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    if !out.is_empty() {
                        let _ = sink.write_all(&out).await;
                    }
                    detached.notify_one();
                    return Some(sink);
                }
                continue;
            }
            if matched > 0 {
                out.extend_from_slice(&keys[..matched]);
                matched = 0;
                if !keys.is_empty() && b == keys[0] {
                    matched = 1;
                    continue;
                }
            }
            out.push(b);
        }
        if !out.is_empty() && sink.write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = sink.shutdown().await;
    None
}

/// Runs an exec's process: copies its stdout/stderr as frames (or raw) to `tx`, the
/// client's input to its stdin, and returns its exit code.
pub async fn pump_exec(
    proc: tether_engine::exec::ExecProcess,
    tx: mpsc::Sender<Bytes>,
    raw: bool,
    stdin_src: Option<tokio::io::ReadHalf<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>>,
    detached: Arc<tokio::sync::Notify>,
) -> i64 {
    let Some(mut child) = proc.child else {
        // as Docker: the reason goes down the stream (as stdout), the code to inspect
        let (m, code) = proc.failed.unwrap_or_default();
        let line = format!("{m}\r\n");
        let chunk = if raw {
            Bytes::from(line)
        } else {
            frame(1, line.as_bytes())
        };
        let _ = tx.send(chunk).await;
        return code;
    };
    let out = child.stdout.take();
    let err = child.stderr.take();
    let stdin = child.stdin.take();
    // after a detach the process's stdin stays open until it ends (held by `input`)
    let input = match (stdin, stdin_src) {
        (Some(sink), Some(src)) => Some(tokio::spawn(copy_detachable(
            src,
            sink,
            proc.detach_keys,
            detached,
        ))),
        _ => None,
    };
    let (_, _, st) = tokio::join!(
        copy_stream(out, 1, raw, tx.clone()),
        copy_stream(err, 2, raw, tx.clone()),
        child.wait()
    );
    if let Some(i) = input {
        i.abort();
    }
    tether_engine::exec::exit_code(&st)
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

/// Answers 101 and, once the connection is upgraded, writes the stream to it and the
/// client's input to the container's stdin when `stdin` names the container; without an
/// Upgrade header, streams as the response body (old clients).
pub(crate) fn hijack<T>(
    req: Request<T>,
    rx: mpsc::Receiver<Bytes>,
    stdin: Option<tether_engine::containers::LogSource>,
    raw: bool,
    detach_keys: Vec<u8>,
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
                let detached = Arc::new(tokio::sync::Notify::new());
                let d2 = detached.clone();
                // the client's input goes to the container's stdin through the monitor; when
                // the client half-closes, so do we (the monitor closes stdin for StdinOnce)
                tokio::spawn(async move {
                    match stdin {
                        Some(src) => {
                            if let Some(sock) = src.connect_stdin().await {
                                copy_detachable(rd, sock, detach_keys, d2).await;
                            }
                        }
                        None => {
                            let _ = tokio::io::copy(&mut rd, &mut tokio::io::sink()).await;
                        }
                    }
                });
                // on detach the connection ends (both halves dropped); the container runs on
                tokio::select! {
                    _ = drain_to(wr, rx) => {}
                    _ = detached.notified() => {}
                }
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    upgrade_response(raw)
}

/// Answers an exec start with its output: hijacked (101, the client's input to the
/// process's stdin) when the client asks for an upgrade, else streamed as the body; the
/// exit code is recorded when the process ends.
pub(crate) fn hijack_exec(
    req: Request<()>,
    engine: Arc<Engine>,
    id: String,
    child: tether_engine::exec::ExecProcess,
) -> Response<Body> {
    let tty = child.tty;
    let (tx, rx) = mpsc::channel(64);
    let upgrade = req.headers().contains_key(hyper::header::UPGRADE);
    let detached = Arc::new(tokio::sync::Notify::new());
    // The output ends once every sender is gone: `open` is held until the exit code is
    // recorded, so a client that inspects the exec when its output ends sees the code.
    let open = tx.clone();
    if !upgrade {
        let e2 = engine.clone();
        tokio::spawn(async move {
            let code = pump_exec(child, tx, tty, None, detached).await;
            e2.finish_exec(&id, code);
            drop(open);
        });
        return stream_response(rx);
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => {
                let io = hyper_util::rt::TokioIo::new(up);
                let (rd, wr) = tokio::io::split(io);
                let mut writer = tokio::spawn(drain_to(wr, rx));
                let mut pump = tokio::spawn(pump_exec(child, tx, tty, Some(rd), detached.clone()));
                tokio::select! {
                    code = &mut pump => {
                        engine.finish_exec(&id, code.unwrap_or(126));
                        drop(open);
                        let _ = writer.await;
                    }
                    _ = detached.notified() => {
                        // the client typed the detach keys: its connection ends, the
                        // process runs on (its output drained) and is recorded when it ends
                        writer.abort();
                        let code = pump.await.unwrap_or(126);
                        engine.finish_exec(&id, code);
                    }
                    _ = &mut writer => {
                        let code = pump.await.unwrap_or(126);
                        engine.finish_exec(&id, code);
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                let code = pump_exec(child, tx, tty, None, detached).await;
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
