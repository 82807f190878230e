//! Container I/O: demultiplexing docker's stdout/stderr framing, copying a
//! hijacked connection to the terminal, forwarding stdin, raw terminal mode
//! and terminal size.

use std::io::{IsTerminal, Read, Write};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::debug;

use crate::client::{next_chunk, Hijacked};
use crate::error::Result;

/// Where a demultiplexed frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Frames of type 0 (stdin echo) and 1.
    Stdout,
    /// Frames of type 2.
    Stderr,
}

/// Incremental parser of docker's multiplexed stream (`stdcopy`): an 8-byte
/// header `[type, 0, 0, 0, size(u32 big endian)]` before each frame.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: Vec<u8>,
}

impl Demuxer {
    /// Feeds bytes; returns the complete frames.
    pub fn push(&mut self, data: &[u8]) -> Vec<(StreamKind, Vec<u8>)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut pos = 0;
        while self.buf.len() - pos >= 8 {
            let h = &self.buf[pos..pos + 8];
            let size = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            let kind = if h[0] == 2 {
                StreamKind::Stderr
            } else {
                StreamKind::Stdout
            };
            if self.buf.len() - pos - 8 < size {
                break;
            }
            out.push((kind, self.buf[pos + 8..pos + 8 + size].to_vec()));
            pos += 8 + size;
        }
        self.buf.drain(..pos);
        out
    }
}

/// Writes output chunks to the process's stdout/stderr, demultiplexing unless `tty`.
pub struct OutputSink {
    tty: bool,
    demux: Demuxer,
}

impl OutputSink {
    /// A sink for a container with (`tty`) or without a terminal.
    pub fn new(tty: bool) -> Self {
        OutputSink {
            tty,
            demux: Demuxer::default(),
        }
    }

    /// Writes one received chunk.
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if self.tty {
            let mut out = std::io::stdout().lock();
            out.write_all(chunk)?;
            return out.flush();
        }
        for (kind, data) in self.demux.push(chunk) {
            match kind {
                StreamKind::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&data)?;
                    out.flush()?;
                }
                StreamKind::Stderr => {
                    let mut err = std::io::stderr().lock();
                    err.write_all(&data)?;
                    err.flush()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads the process's stdin on a plain thread (so a blocked read never keeps
/// the runtime from shutting down) and hands chunks over a channel; the
/// channel closes at end of input.
pub fn stdin_channel() -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let spawned = std::thread::Builder::new()
        .name("tether-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        debug!(error = %e, "stdin read failed");
                        break;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        debug!(error = %e, "cannot spawn stdin thread");
    }
    rx
}

/// Restores the terminal settings when dropped.
pub struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    /// Puts stdin's terminal into raw mode if stdin is a terminal (moby/term `MakeRaw`).
    pub fn enable() -> RawTerminal {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawTerminal { saved: None };
        }
        RawTerminal { saved: Some(saved) }
    }

    /// Restores the saved settings now (idempotent).
    pub fn restore(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        if let Some(saved) = self.saved.take() {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &saved);
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        self.restore();
    }
}

/// The size of the terminal on stdout as (height, width), if it is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointer we pass, which
    // points to a live, properly aligned local.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if rc != 0 || ws.ws_row == 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Copies the hijacked output to stdout/stderr until the daemon closes it,
/// while forwarding `stdin` (if any) to the connection; at end of stdin the
/// write side is shut down (docker's `CloseWrite`). Returns when the output ends.
pub async fn pump(
    hijacked: Hijacked,
    tty: bool,
    stdin: Option<mpsc::Receiver<Bytes>>,
) -> Result<()> {
    let mut sink = OutputSink::new(tty);
    match hijacked {
        Hijacked::Body(mut body) => {
            while let Some(chunk) = next_chunk(&mut body).await? {
                sink.write(&chunk)?;
            }
            Ok(())
        }
        Hijacked::Upgraded(io) => {
            let (mut rd, wr) = tokio::io::split(io);
            let input = stdin.map(|rx| tokio::spawn(forward_input(rx, wr)));
            let r = copy_output(&mut rd, &mut sink).await;
            if let Some(h) = input {
                h.abort();
            }
            r
        }
    }
}

async fn copy_output<R: AsyncRead + Unpin>(rd: &mut R, sink: &mut OutputSink) -> Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "output stream ended with error");
                return Ok(());
            }
        };
        sink.write(&buf[..n])?;
    }
}

async fn forward_input<W: AsyncWrite + Unpin>(mut rx: mpsc::Receiver<Bytes>, mut wr: W) {
    while let Some(chunk) = rx.recv().await {
        if wr.write_all(&chunk).await.is_err() {
            return;
        }
        let _ = wr.flush().await;
    }
    debug!("stdin closed; closing write side");
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn demux_frames_across_chunks() {
        let mut d = Demuxer::default();
        let mut all = frame(1, b"hello\n");
        all.extend(frame(2, b"oops\n"));
        all.extend(frame(1, b""));
        let (a, b) = all.split_at(10);
        let first = d.push(a);
        assert!(first.is_empty());
        let rest = d.push(b);
        assert_eq!(
            rest,
            vec![
                (StreamKind::Stdout, b"hello\n".to_vec()),
                (StreamKind::Stderr, b"oops\n".to_vec()),
                (StreamKind::Stdout, vec![]),
            ]
        );
        let more = d.push(&frame(0, b"in")[..9]);
        assert!(more.is_empty());
        assert_eq!(d.push(b"n"), vec![(StreamKind::Stdout, b"in".to_vec())]);
    }
}
