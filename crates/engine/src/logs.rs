//! Container output: `GET /containers/{id}/logs` and the output side of
//! `POST /containers/{id}/attach`, read from the json-file log the container monitor
//! writes (see [`tether_runtime::logs`]) and followed while the container runs; and the
//! input side of attach, the monitor's attach socket for it ([`LogSource::connect_stdin`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use crate::containers::LogSource;
use crate::{Engine, EngineError};

/// The stream a piece of output was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    /// The container's stdout (or its terminal).
    Stdout,
    /// The container's stderr.
    Stderr,
}

/// One log entry: what the container wrote (with its time in front when asked for).
#[derive(Clone, Debug)]
pub struct LogChunk {
    /// Where it was written.
    pub stream: OutputStream,
    /// The text, as written.
    pub data: Bytes,
}

/// What `GET /containers/{id}/logs` asks for.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Entries written to stdout.
    pub stdout: bool,
    /// Entries written to stderr.
    pub stderr: bool,
    /// Go on with new entries while the container runs.
    pub follow: bool,
    /// Only the last N entries (None = all).
    pub tail: Option<usize>,
    /// Each entry's RFC 3339 time in front of it.
    pub timestamps: bool,
    /// Only entries written at or after this time (Unix nanoseconds).
    pub since: Option<i64>,
    /// Only entries written at or before this time (Unix nanoseconds); following ends
    /// there.
    pub until: Option<i64>,
}

/// A container's output being read: the container's log and attach endpoints, and its
/// entries as they come (the channel closes at the end).
pub struct Output {
    /// The container (its id, whether it has a terminal, its attach socket).
    pub source: LogSource,
    /// The entries.
    pub entries: mpsc::Receiver<LogChunk>,
}

impl LogSource {
    /// Connects to the container's stdin (its shim's attach socket), waiting up to 30 s
    /// for the socket: clients attach before they start the container, and the socket
    /// appears at the start. None when it never does.
    pub async fn connect_stdin(&self) -> Option<tokio::net::UnixStream> {
        for _ in 0..1500 {
            match tokio::net::UnixStream::connect(&self.attach_socket).await {
                Ok(s) => return Some(s),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        None
    }
}

/// How [`pump`] reads the log.
#[derive(Clone, Debug)]
struct PumpOptions {
    stdout: bool,
    stderr: bool,
    follow: bool,
    tail: Option<usize>,
    timestamps: bool,
    /// Start at the current end (attach) instead of the beginning.
    from_end: bool,
    /// Stop when the container exits after this event generation (attach).
    until_exit_after: Option<u64>,
    /// Entries from this time on (Unix ns).
    since: Option<i64>,
    /// Entries up to this time (Unix ns); the stream ends past it.
    until: Option<i64>,
}

impl Engine {
    /// GET /containers/{id}/logs: the container's log entries per `opts`; `follow`
    /// goes on only while the container runs.
    ///
    /// Errors: 404 no such container.
    pub async fn container_logs(
        self: &Arc<Self>,
        key: &str,
        opts: LogOptions,
    ) -> Result<Output, EngineError> {
        let source = self.log_source(key).await?;
        let opts = PumpOptions {
            stdout: opts.stdout,
            stderr: opts.stderr,
            follow: opts.follow && source.running,
            tail: opts.tail,
            timestamps: opts.timestamps,
            from_end: false,
            until_exit_after: None,
            since: opts.since,
            until: opts.until,
        };
        Ok(self.spawn_pump(source, opts))
    }

    /// POST /containers/{id}/attach: with `stream`, the container's output from now on
    /// (from its log's start with `logs`), until it exits or is removed; a client
    /// attaching before the start sees the output of that start. Without `stream`, the
    /// log so far when `logs` is set (else nothing), and the output ends at once.
    ///
    /// Errors: 404 no such container.
    pub async fn attach_output(
        self: &Arc<Self>,
        key: &str,
        stdout: bool,
        stderr: bool,
        logs: bool,
        stream: bool,
    ) -> Result<Output, EngineError> {
        let source = self.log_source(key).await?;
        let gen = self.events(&source.id).borrow().0;
        let opts = PumpOptions {
            stdout,
            stderr,
            follow: stream,
            tail: None,
            timestamps: false,
            from_end: !logs,
            until_exit_after: stream.then_some(gen),
            since: None,
            until: None,
        };
        Ok(self.spawn_pump(source, opts))
    }

    fn spawn_pump(self: &Arc<Self>, source: LogSource, opts: PumpOptions) -> Output {
        let (tx, rx) = mpsc::channel(64);
        // "from the end" is the end now, when the client attaches (before its 101), not
        // when the pump task first runs: output written in between would be skipped
        let start = if opts.from_end {
            std::fs::metadata(&source.path)
                .map(|m| m.len())
                .unwrap_or(0)
        } else {
            0
        };
        tokio::spawn(pump(
            self.clone(),
            source.id.clone(),
            source.path.clone(),
            opts,
            start,
            tx,
        ));
        Output {
            source,
            entries: rx,
        }
    }
}

/// Streams the json-file log at `path` to `tx` per `opts`, following while the container
/// runs.
async fn pump(
    engine: Arc<Engine>,
    id: String,
    path: PathBuf,
    opts: PumpOptions,
    start: u64,
    tx: mpsc::Sender<LogChunk>,
) {
    let Ok(mut f) = tokio::fs::File::open(&path).await else {
        return;
    };
    let mut pos: u64 = start;
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
            let stream = if e.stream == "stderr" {
                OutputStream::Stderr
            } else {
                OutputStream::Stdout
            };
            let wanted = match stream {
                OutputStream::Stdout => opts.stdout,
                OutputStream::Stderr => opts.stderr,
            };
            if !wanted {
                continue;
            }
            if opts.since.is_some() || opts.until.is_some() {
                let t = chrono::DateTime::parse_from_rfc3339(&e.time)
                    .ok()
                    .and_then(|t| t.timestamp_nanos_opt())
                    .unwrap_or(0);
                if opts.since.is_some_and(|s| t < s) {
                    continue;
                }
                if opts.until.is_some_and(|u| t > u) {
                    return;
                }
            }
            let text = if opts.timestamps {
                format!("{} {}", e.time, e.log)
            } else {
                e.log
            };
            let chunk = LogChunk {
                stream,
                data: Bytes::from(text.into_bytes()),
            };
            if tx.send(chunk).await.is_err() {
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
            None => {
                !opts.follow
                    || !engine.is_running(&id).await
                    || opts
                        .until
                        .is_some_and(|u| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) > u)
            }
        };
        if done {
            // one last read to drain what the monitor wrote before the exit was recorded
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
