//! A container's part of the monitor ([`crate::monitor`]), in the role of conmon or
//! containerd-shim: `runc create` with pipes (or a terminal) as the container's stdio,
//! then a single-threaded poll(2) loop that copies the container's output into the
//! json-file log, serves the attach and control sockets and waits for the init's exit
//! status (from the monitor's reaper); then the exit record and `runc delete`. The daemon
//! may die and come back at any time: the container and its log go on.
//!
//! Each running container has one thread of the monitor running [`Shim::serve`], with
//! fixed buffers allocated at first use.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::monitor::{self, Reaper, Shared};
use crate::{io_err, logs, RuntimeError};

/// What the monitor is told of a container to create (sent as JSON in a `create`
/// request).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShimConfig {
    /// Container id.
    pub id: String,
    /// The OCI bundle (holds config.json).
    pub bundle: PathBuf,
    /// runc binary.
    pub runc: PathBuf,
    /// runc --root.
    pub runc_root: PathBuf,
    /// json-file log path.
    pub log: PathBuf,
    /// Where the exit record is written.
    pub exit_file: PathBuf,
    /// Give the container a pseudo-terminal (`-t`).
    pub tty: bool,
    /// Keep the container's stdin open for attach (`-i`); bytes sent to
    /// `<bundle>/attach.sock` reach it.
    pub stdin: bool,
    /// Close the container's stdin when the first attached client goes (`StdinOnce`).
    pub stdin_once: bool,
    /// Where the shim's unix sockets go: `<prefix>.attach`, `.control`, `.console`. Kept
    /// short (unix socket paths hold at most 107 bytes), e.g. `<exec-root>/sock/<id12>`.
    pub sock_prefix: PathBuf,
}

/// A socket path `<prefix>.<kind>`.
pub fn socket(prefix: &Path, kind: &str) -> PathBuf {
    let mut p = prefix.as_os_str().to_owned();
    p.push(".");
    p.push(kind);
    PathBuf::from(p)
}

/// The shim's attach socket: bytes sent there reach the container's stdin.
pub fn attach_socket(prefix: &Path) -> PathBuf {
    socket(prefix, "attach")
}

/// The shim's control socket: lines `resize ROWS COLS`.
pub fn control_socket(prefix: &Path) -> PathBuf {
    socket(prefix, "control")
}

/// The exit record the shim writes when the container's init has exited.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    /// Exit status; 128+N when killed by signal N (shell convention, as Docker reports).
    pub exit_code: i64,
    /// RFC 3339 time of exit.
    pub finished_at: String,
}

/// What the daemon learns when the container is created.
#[derive(Debug)]
pub struct Started {
    /// The container's init pid (host pid namespace).
    pub pid: i32,
    /// The monitor's pid (the init's parent).
    pub shim_pid: i32,
    /// The connection that reports the container's exit: EOF once the exit record is
    /// written.
    pub watch: UnixStream,
}

/// Reads a container's exit record, if the shim wrote one.
pub fn read_exit(path: &Path) -> Option<ExitRecord> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Bytes read from the container's output at a time (conmon reads 8 KiB too).
const OUTPUT_CHUNK: usize = 8 * 1024;
/// Bytes of log entries gathered before they are written to the log file.
const LOG_BUF: usize = 8 * 1024;
/// Bytes taken from an attach client at a time on their way to the container's stdin.
const STDIN_CHUNK: usize = 4 * 1024;
/// How long the container's output may stay open after its init exited (processes that
/// escaped the container's pid namespace may hold it).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// The longest control line (`resize ROWS COLS`) kept; longer lines are ignored.
const CONTROL_LINE: usize = 64;

pub(crate) fn sys_err(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> RuntimeError {
    move |e| RuntimeError::Io {
        what: what.into(),
        source: e.into(),
    }
}

/// Sets O_NONBLOCK on `fd` (on its open file description: dups share it).
pub(crate) fn set_nonblocking(fd: &impl AsRawFd, what: &'static str) -> Result<(), RuntimeError> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor the caller owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io_err(what)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// What `runc create` left the shim: the container's init pid, its output streams, the
/// writer of its stdin (with `-i`) and the terminal's master (with `-t`).
struct Created {
    pid: i32,
    outputs: Vec<Output>,
    sink: Option<File>,
    pty: Option<File>,
}

/// Runs `runc create` for `cfg`, with pipes or (`cfg.tty`) a terminal as the container's
/// stdio; runc's exit status comes from `reaper`.
fn create(reaper: &Reaper, cfg: &ShimConfig) -> Result<Created, RuntimeError> {
    let pid_file = cfg.bundle.join("init.pid");
    let runc_log = cfg.bundle.join("runc.log");
    let _ = std::fs::remove_file(&runc_log);
    let mut c = crate::spawn::Command::new(&cfg.runc);
    c.arg("--root")
        .arg(&cfg.runc_root)
        .arg("--log")
        .arg(&runc_log)
        .arg("--log-format")
        .arg("json");
    c.arg("create")
        .arg("--bundle")
        .arg(&cfg.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    let null = crate::spawn::null().map_err(io_err("/dev/null"))?;
    let runc_failed = || RuntimeError::Runc {
        op: "create".into(),
        msg: crate::runc::runc_message(&std::fs::read_to_string(&runc_log).unwrap_or_default()),
    };
    let succeeded = |st: Option<i32>| st.and_then(monitor::exit_code) == Some(0);
    let mut outputs = Vec::with_capacity(2);
    let mut sink = None;
    let mut pty = None;
    if cfg.tty {
        let console_path = socket(&cfg.sock_prefix, "console");
        let listener = crate::console::bind(&console_path)?;
        c.arg("--console-socket").arg(&console_path).arg(&cfg.id);
        let (runc_pid, mut rx) = reaper
            .spawn(&c, [null, null, null])
            .map_err(io_err(format!("run {} create", cfg.runc.display())))?;
        let got = receive_terminal(&listener, &mut rx);
        let _ = std::fs::remove_file(&console_path);
        let (master, status) = match got {
            Ok(m) => m,
            Err(e) => {
                reaper.kill(runc_pid, libc::SIGKILL);
                let _ = monitor::wait_status(rx);
                return Err(e);
            }
        };
        let status = match status {
            Some(st) => Some(st),
            None => monitor::wait_status(rx),
        };
        let Some(master) = master else {
            return Err(if succeeded(status) {
                RuntimeError::Runc {
                    op: "console".into(),
                    msg: "runc did not send the terminal".into(),
                }
            } else {
                runc_failed()
            });
        };
        if !succeeded(status) {
            return Err(runc_failed());
        }
        let master = File::from(master);
        // a sane size until the client sends its own, unless runc already gave the
        // terminal the client's (the spec's process.consoleSize)
        if crate::console::size(&master).is_none_or(|(r, c)| r == 0 || c == 0) {
            let _ = crate::console::resize(&master, 24, 80);
        }
        set_nonblocking(&master, "terminal")?;
        outputs.push(Output::new(
            master.try_clone().map_err(io_err("dup terminal"))?,
            "stdout",
        ));
        if cfg.stdin {
            sink = Some(master.try_clone().map_err(io_err("dup terminal"))?);
        }
        pty = Some(master);
    } else {
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys_err("pipe"));
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        c.arg(&cfg.id);
        let stdin_r = if cfg.stdin {
            let (in_r, in_w) = pipe()?;
            set_nonblocking(&in_w, "stdin pipe")?;
            sink = Some(File::from(in_w));
            Some(in_r)
        } else {
            None
        };
        let stdin = stdin_r.as_ref().map_or(null, |r| r.as_fd());
        let (_, rx) = reaper
            .spawn(&c, [stdin, out_w.as_fd(), err_w.as_fd()])
            .map_err(io_err(format!("run {} create", cfg.runc.display())))?;
        // closes our copies of the container's ends
        drop((stdin_r, out_w, err_w));
        if !succeeded(monitor::wait_status(rx)) {
            return Err(runc_failed());
        }
        for (r, name) in [(out_r, "stdout"), (err_r, "stderr")] {
            set_nonblocking(&r, "output pipe")?;
            outputs.push(Output::new(File::from(r), name));
        }
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| RuntimeError::Runc {
            op: "create".into(),
            msg: "runc wrote no pid file".into(),
        })?;
    Ok(Created {
        pid,
        outputs,
        sink,
        pty,
    })
}

/// Waits for runc (`create --console-socket`, its status to come on `rx`) to send the
/// terminal's master on `listener`; gives up after 30 s. Returns the master (None when
/// runc ended without sending it) and runc's status if it came meanwhile.
fn receive_terminal(
    listener: &UnixListener,
    rx: &mut File,
) -> Result<(Option<std::os::fd::OwnedFd>, Option<i32>), RuntimeError> {
    listener
        .set_nonblocking(true)
        .map_err(io_err("console socket"))?;
    set_nonblocking(rx, "status pipe")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match listener.accept() {
            Ok((s, _)) => return Ok((Some(crate::console::receive(&s)?), None)),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("accept on console socket")(e)),
        }
        // runc connects before it exits: once it is gone, the connection is queued or
        // will never come
        if let Some(st) = monitor::read_status(rx) {
            let master = listener
                .accept()
                .ok()
                .and_then(|(s, _)| crate::console::receive(&s).ok());
            return Ok((master, Some(st)));
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::Runc {
                op: "console".into(),
                msg: "runc did not send the terminal".into(),
            });
        }
        let mut p = [
            pollfd(listener.as_raw_fd(), libc::POLLIN),
            pollfd(rx.as_raw_fd(), libc::POLLIN),
        ];
        let _ = poll(&mut p, 1000);
    }
}

/// Body of a monitor's `create` request (see [`crate::monitor`]): creates the container,
/// answers on `conn`, and serves the container in a thread of its own until its exit
/// record is written.
pub(crate) fn create_and_serve(shared: &std::sync::Arc<Shared>, cfg: ShimConfig, conn: UnixStream) {
    let mut conn = conn;
    let shim = match start(&shared.reaper, &cfg) {
        Ok(s) => s,
        Err(e) => {
            let msg = match e {
                RuntimeError::Runc { msg, .. } => msg,
                other => other.to_string(),
            };
            let _ = writeln!(conn, "err {msg}");
            return monitor::failed(shared);
        }
    };
    monitor::serving(shared, &cfg.id);
    if writeln!(conn, "ok {} {}", shim.pid, std::process::id()).is_err() {
        // the daemon is gone and will not know of this container: it goes (its init's
        // exit ends the loop below as any exit does)
        delete(&shared.reaper, &cfg);
    }
    monitor::add_watcher(shared, &cfg.id, conn);
    let s = shared.clone();
    let id = cfg.id.clone();
    monitor::container_thread(&id, move || {
        let mut shim = shim;
        let (code, finished_at) = shim.serve();
        drop(shim);
        finish(&s.reaper, &cfg, code, finished_at);
        monitor::ended(&s, &cfg.id);
    });
}

/// Creates the container and binds its sockets.
fn start(reaper: &Reaper, cfg: &ShimConfig) -> Result<Shim, RuntimeError> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log)
        .map_err(io_err(format!("open log {}", cfg.log.display())))?;
    let created = create(reaper, cfg)?;
    // from here on, the init's exit (a failed setup below kills it) is reaped for us
    let exit_rx = reaper
        .watch(created.pid)
        .map_err(io_err("watch the container's init"))?;
    let fail = |e: RuntimeError| {
        delete(reaper, cfg);
        e
    };
    set_nonblocking(&exit_rx, "status pipe").map_err(fail)?;
    let attach = match created.sink {
        Some(sink) => Some(
            Attach::bind(&attach_socket(&cfg.sock_prefix), sink, cfg.stdin_once).map_err(fail)?,
        ),
        None => None,
    };
    let control = match created.pty {
        Some(pty) => Some(Control::bind(&control_socket(&cfg.sock_prefix), pty).map_err(fail)?),
        None => None,
    };
    Ok(Shim {
        pid: created.pid,
        exit_rx: Some(exit_rx),
        exit: None,
        outputs: created.outputs.into_iter().map(Some).collect(),
        log: LogFile {
            file: log,
            buf: Vec::new(),
        },
        buf: Vec::new(),
        attach,
        control,
    })
}

/// `runc delete --force` of the container: kills it if it runs.
fn delete(reaper: &Reaper, cfg: &ShimConfig) {
    let Ok(null) = crate::spawn::null() else {
        return;
    };
    let mut c = crate::spawn::Command::new(&cfg.runc);
    c.arg("--root")
        .arg(&cfg.runc_root)
        .args(["delete", "--force", &cfg.id]);
    if let Ok((_, rx)) = reaper.spawn(&c, [null, null, null]) {
        let _ = monitor::wait_status(rx);
    }
}

/// After the container's exit: writes the exit record and deletes the container from
/// runc.
fn finish(reaper: &Reaper, cfg: &ShimConfig, code: i64, finished_at: String) {
    let rec = ExitRecord {
        exit_code: code,
        finished_at,
    };
    let tmp = cfg.exit_file.with_extension("tmp");
    if let Ok(b) = serde_json::to_vec(&rec) {
        if std::fs::write(&tmp, b).is_ok() {
            let _ = std::fs::rename(&tmp, &cfg.exit_file);
        }
    }
    delete(reaper, cfg);
}

/// The container log file with a write buffer allocated at the first entry.
struct LogFile {
    file: File,
    buf: Vec<u8>,
}

impl Write for LogFile {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > LOG_BUF {
            self.flush()?;
        }
        if b.len() >= LOG_BUF {
            return self.file.write(b);
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(LOG_BUF);
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    /// Writes the gathered entries; on error they are dropped.
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.buf);
        self.buf.clear();
        r
    }
}

pub(crate) fn pollfd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// poll(2) on `fds`, `timeout` in milliseconds (-1: none). Returns how many are ready.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: i32) -> std::io::Result<usize> {
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// Whether an I/O error only means "not now".
fn transient(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted)
}

/// One of the container's output streams (non-blocking), logged as `stream`.
struct Output {
    file: File,
    stream: &'static str,
    /// The start of a UTF-8 character cut by the end of the last read.
    carry: [u8; 3],
    carry_len: usize,
}

impl Output {
    fn new(file: File, stream: &'static str) -> Output {
        Output {
            file,
            stream,
            carry: [0; 3],
            carry_len: 0,
        }
    }
}

/// How many bytes at the end of `b` are the start of a UTF-8 character whose remaining
/// bytes have not been read yet (0 to 3).
fn incomplete_tail(b: &[u8]) -> usize {
    for i in (b.len().saturating_sub(3)..b.len()).rev() {
        if b[i] & 0xc0 != 0x80 {
            return match std::str::from_utf8(&b[i..]) {
                Err(e) if e.error_len().is_none() && e.valid_up_to() == 0 => b.len() - i,
                _ => 0,
            };
        }
    }
    0
}

/// Appends `bytes` read from `stream` to the log as json-file entries (invalid UTF-8
/// becomes U+FFFD, as Docker does).
fn write_log(log: &mut LogFile, stream: &str, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    if let Err(e) = logs::write_entries(log, stream, &text, &time).and_then(|_| log.flush()) {
        tracing::debug!(error = %e, "write container log");
    }
}

/// The attach socket: one client at a time sends bytes for the container's stdin.
struct Attach {
    listener: Option<UnixListener>,
    conn: Option<UnixStream>,
    /// The client has closed its side; what it sent is still being delivered.
    conn_eof: bool,
    /// The container's stdin (non-blocking); gone after a `StdinOnce` client.
    sink: Option<File>,
    once: bool,
    /// Bytes from the client not yet taken by the container: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Attach {
    fn bind(path: &Path, sink: File, once: bool) -> Result<Attach, RuntimeError> {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).map_err(io_err(format!("bind {}", path.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("attach socket"))?;
        Ok(Attach {
            listener: Some(listener),
            conn: None,
            conn_eof: false,
            sink: Some(sink),
            once,
            buf: Vec::new(),
            start: 0,
            end: 0,
        })
    }

    /// The descriptor and events to wait for now, if any.
    fn interest(&self) -> Option<(i32, libc::c_short, Slot)> {
        let sink = self.sink.as_ref()?;
        match &self.conn {
            None => Some((
                self.listener.as_ref()?.as_raw_fd(),
                libc::POLLIN,
                Slot::AttachListener,
            )),
            Some(_) if self.start < self.end => {
                Some((sink.as_raw_fd(), libc::POLLOUT, Slot::AttachSink))
            }
            Some(c) => Some((c.as_raw_fd(), libc::POLLIN, Slot::AttachConn)),
        }
    }

    fn accept(&mut self) {
        let Some(l) = self.listener.as_ref() else {
            return;
        };
        match l.accept() {
            Ok((c, _)) => {
                if c.set_nonblocking(true).is_err() {
                    return;
                }
                if self.buf.len() < STDIN_CHUNK {
                    self.buf = vec![0; STDIN_CHUNK];
                }
                self.conn = Some(c);
                self.conn_eof = false;
                self.start = 0;
                self.end = 0;
            }
            Err(e) if transient(&e) => {}
            Err(e) => tracing::debug!(error = %e, "accept attach client"),
        }
    }

    fn read(&mut self) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        match c.read(&mut self.buf) {
            Ok(0) => self.conn_eof = true,
            Ok(n) => {
                self.start = 0;
                self.end = n;
            }
            Err(e) if transient(&e) => return,
            Err(_) => return self.client_done(),
        }
        self.deliver();
    }

    /// Writes the pending bytes to the container's stdin as far as it takes them.
    fn deliver(&mut self) {
        while self.start < self.end {
            let Some(sink) = self.sink.as_mut() else {
                return self.client_done();
            };
            match sink.write(&self.buf[self.start..self.end]) {
                Ok(n) => self.start += n,
                Err(e) if transient(&e) => return,
                // the container closed its stdin or is gone: this client is done
                Err(_) => return self.client_done(),
            }
        }
        if self.conn_eof {
            self.client_done();
        }
    }

    fn client_done(&mut self) {
        self.conn = None;
        self.conn_eof = false;
        self.start = 0;
        self.end = 0;
        if self.once {
            self.sink = None;
            self.listener = None;
            self.buf = Vec::new();
        }
    }
}

/// The control socket: one client at a time sends lines `resize ROWS COLS`.
struct Control {
    listener: UnixListener,
    conn: Option<UnixStream>,
    line: [u8; CONTROL_LINE],
    len: usize,
    /// The current line is longer than `line` holds: ignored up to its end.
    overlong: bool,
    pty: File,
}

impl Control {
    fn bind(path: &Path, pty: File) -> Result<Control, RuntimeError> {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).map_err(io_err(format!("bind {}", path.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("control socket"))?;
        Ok(Control {
            listener,
            conn: None,
            line: [0; CONTROL_LINE],
            len: 0,
            overlong: false,
            pty,
        })
    }

    fn interest(&self) -> (i32, libc::c_short, Slot) {
        match &self.conn {
            None => (
                self.listener.as_raw_fd(),
                libc::POLLIN,
                Slot::ControlListener,
            ),
            Some(c) => (c.as_raw_fd(), libc::POLLIN, Slot::ControlConn),
        }
    }

    fn accept(&mut self) {
        match self.listener.accept() {
            Ok((c, _)) => {
                if c.set_nonblocking(true).is_ok() {
                    self.conn = Some(c);
                    self.len = 0;
                    self.overlong = false;
                }
            }
            Err(e) if transient(&e) => {}
            Err(e) => tracing::debug!(error = %e, "accept control client"),
        }
    }

    fn read(&mut self) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        let mut buf = [0u8; 256];
        let n = match c.read(&mut buf) {
            Ok(n) => n,
            Err(e) if transient(&e) => return,
            Err(_) => 0,
        };
        if n == 0 {
            // a last line without its newline counts too
            self.line_done();
            self.conn = None;
            return;
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line_done();
            } else if self.len < self.line.len() {
                self.line[self.len] = b;
                self.len += 1;
            } else {
                self.overlong = true;
            }
        }
    }

    fn line_done(&mut self) {
        let line = &self.line[..self.len];
        if !self.overlong {
            if let Some((rows, cols)) = parse_resize(line) {
                if let Err(e) = crate::console::resize(&self.pty, rows, cols) {
                    tracing::debug!(error = %e, "resize");
                }
            }
        }
        self.len = 0;
        self.overlong = false;
    }
}

/// Parses a control line `resize ROWS COLS`.
fn parse_resize(line: &[u8]) -> Option<(u16, u16)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut f = line.split_whitespace();
    match (f.next(), f.next(), f.next(), f.next()) {
        (Some("resize"), Some(r), Some(c), None) => Some((r.parse().ok()?, c.parse().ok()?)),
        _ => None,
    }
}

/// What a ready descriptor in the event loop belongs to.
#[derive(Clone, Copy)]
enum Slot {
    Exit,
    Output(usize),
    AttachListener,
    AttachConn,
    AttachSink,
    ControlListener,
    ControlConn,
}

/// A served container: everything its thread's event loop serves.
struct Shim {
    /// The container's init.
    pid: i32,
    /// Where the init's wait status arrives (non-blocking); None once it did.
    exit_rx: Option<File>,
    /// The init's exit status and time, once reaped.
    exit: Option<(i64, String)>,
    /// The container's output streams, None once closed.
    outputs: Vec<Option<Output>>,
    log: LogFile,
    /// The read buffer for outputs, allocated at the first output.
    buf: Vec<u8>,
    attach: Option<Attach>,
    control: Option<Control>,
}

impl Shim {
    /// Serves the container until its init has exited and its output is closed (or
    /// [`OUTPUT_GRACE`] has passed since the exit); returns the exit code (128+N for signal
    /// N, -1 when it could not be learnt) and the RFC 3339 time of the exit.
    fn serve(&mut self) -> (i64, String) {
        self.take_exit();
        let mut deadline: Option<Instant> = None;
        loop {
            if self.exit.is_some() {
                let d = *deadline.get_or_insert_with(|| Instant::now() + OUTPUT_GRACE);
                if self.outputs.iter().all(Option::is_none) || Instant::now() >= d {
                    break;
                }
            }
            let mut fds = [pollfd(-1, 0); 8];
            let mut slots = [Slot::Exit; 8];
            let mut n = 0;
            let mut add = |fd: i32, ev: libc::c_short, slot: Slot| {
                fds[n] = pollfd(fd, ev);
                slots[n] = slot;
                n += 1;
            };
            if let Some(rx) = self.exit_rx.as_ref() {
                add(rx.as_raw_fd(), libc::POLLIN, Slot::Exit);
            }
            for (i, o) in self.outputs.iter().enumerate() {
                if let Some(o) = o {
                    add(o.file.as_raw_fd(), libc::POLLIN, Slot::Output(i));
                }
            }
            if let Some((fd, ev, slot)) = self.attach.as_ref().and_then(Attach::interest) {
                add(fd, ev, slot);
            }
            if let Some((fd, ev, slot)) = self.control.as_ref().map(Control::interest) {
                add(fd, ev, slot);
            }
            let timeout = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1)
                }
                None => -1,
            };
            match poll(&mut fds[..n], timeout) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "poll");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
            for (p, slot) in fds[..n].iter().zip(slots) {
                if p.revents == 0 {
                    continue;
                }
                match (slot, self.attach.as_mut(), self.control.as_mut()) {
                    (Slot::Exit, ..) => self.take_exit(),
                    (Slot::Output(i), ..) => {
                        self.pump(i);
                    }
                    (Slot::AttachListener, Some(a), _) => a.accept(),
                    (Slot::AttachConn, Some(a), _) => a.read(),
                    (Slot::AttachSink, Some(a), _) => a.deliver(),
                    (Slot::ControlListener, _, Some(c)) => c.accept(),
                    (Slot::ControlConn, _, Some(c)) => c.read(),
                    _ => {}
                }
            }
        }
        // what is still readable without waiting goes to the log too
        for i in 0..self.outputs.len() {
            for _ in 0..64 {
                if !self.pump(i) {
                    break;
                }
            }
        }
        for i in 0..self.outputs.len() {
            self.close_output(i);
        }
        self.exit.take().unwrap_or_else(|| (-1, now_rfc3339()))
    }

    /// Takes the init's exit status if it has arrived.
    fn take_exit(&mut self) {
        let Some(rx) = self.exit_rx.as_mut() else {
            return;
        };
        let mut p = [pollfd(rx.as_raw_fd(), libc::POLLIN)];
        if !matches!(poll(&mut p, 0), Ok(1)) {
            return;
        }
        // the reaper writes the 4 bytes at once, and never drops the pipe without them:
        // a readable pipe without a status is a lost one
        let code = monitor::read_status(rx)
            .and_then(monitor::exit_code)
            .unwrap_or(-1);
        self.exit = Some((code, now_rfc3339()));
        self.exit_rx = None;
    }

    /// Reads what output `i` has into the log; returns whether it had something (false:
    /// nothing now, closed or gone).
    fn pump(&mut self, i: usize) -> bool {
        let Some(o) = self.outputs.get_mut(i).and_then(Option::as_mut) else {
            return false;
        };
        if self.buf.len() < OUTPUT_CHUNK {
            self.buf = vec![0; OUTPUT_CHUNK];
        }
        let k = o.carry_len;
        self.buf[..k].copy_from_slice(&o.carry[..k]);
        match o.file.read(&mut self.buf[k..]) {
            Ok(0) => {}
            Ok(n) => {
                let end = k + n;
                let tail = incomplete_tail(&self.buf[..end]);
                o.carry[..tail].copy_from_slice(&self.buf[end - tail..end]);
                o.carry_len = tail;
                write_log(&mut self.log, o.stream, &self.buf[..end - tail]);
                return true;
            }
            Err(e) if transient(&e) => return false,
            // EIO from a terminal whose other side is closed
            Err(_) => {}
        }
        self.close_output(i);
        false
    }

    /// Closes output `i`, logging the incomplete character it ended with.
    fn close_output(&mut self, i: usize) {
        if let Some(o) = self.outputs.get_mut(i).and_then(Option::take) {
            write_log(&mut self.log, o.stream, &o.carry[..o.carry_len]);
        }
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `tether shim-exec ID PROCESS_JSON RUNC RUNC_ROOT CONSOLE_SOCKET`: runs an exec process
/// on a terminal. runc accepts a console socket only when it detaches, so this helper
/// becomes a child subreaper (the detached process is re-parented to it), runs
/// `runc exec --detach --tty --console-socket`, receives the terminal's master, copies its
/// own stdin to the terminal and the terminal to its stdout, and exits with the process's
/// exit status. Returns the exit code.
pub fn exec_main(args: &[String]) -> i32 {
    let [_, id, process, runc, root, sock] = args else {
        eprintln!("tether shim-exec: internal command, started by the daemon");
        return 2;
    };
    match exec_run(
        id,
        Path::new(process),
        Path::new(runc),
        Path::new(root),
        Path::new(sock),
    ) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "OCI runtime exec failed: {}",
                match e {
                    RuntimeError::Runc { msg, .. } => msg,
                    other => other.to_string(),
                }
            );
            126
        }
    }
}

fn exec_run(
    id: &str,
    process: &Path,
    runc: &Path,
    root: &Path,
    sock: &Path,
) -> Result<i32, RuntimeError> {
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let listener = crate::console::bind(sock)?;
    let pid_file = PathBuf::from(format!("{}.pid", sock.display()));
    let mut c = Command::new(runc);
    c.arg("--root")
        .arg(root)
        .arg("exec")
        .arg("--process")
        .arg(process)
        .arg("--detach")
        .arg("--tty");
    c.arg("--console-socket")
        .arg(sock)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(id);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = c
        .spawn()
        .map_err(io_err(format!("run {} exec", runc.display())))?;
    let got = std::thread::spawn(move || {
        crate::console::receive_master(&listener, Duration::from_secs(30))
    });
    let out = child
        .wait_with_output()
        .map_err(io_err("wait for runc exec"))?;
    let _ = std::fs::remove_file(sock);
    if !out.status.success() {
        let _ = std::fs::remove_file(&pid_file);
        return Err(RuntimeError::Runc {
            op: "exec".into(),
            msg: crate::runc::runc_message(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    let master = File::from(
        got.join()
            .map_err(|_| RuntimeError::Spec("console thread panicked".into()))??,
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| RuntimeError::Runc {
            op: "exec".into(),
            msg: "runc wrote no pid file".into(),
        })?;
    let _ = std::fs::remove_file(&pid_file);
    // `<sock>.ctl` takes resize requests ("resize ROWS COLS\n")
    let ctl = PathBuf::from(format!("{}.ctl", sock.display()));
    if let (Ok(l), Ok(pty)) = (crate::console::bind(&ctl), master.try_clone()) {
        std::thread::spawn(move || serve_exec_resizes(l, pty));
    }
    if let Ok(mut w) = master.try_clone() {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut w);
        });
    }
    let mut r = master;
    let reader = std::thread::spawn(move || {
        let mut out = std::io::stdout();
        let mut buf = vec![0u8; 32 * 1024];
        // EIO once the process (the last holder of the terminal's slave side) is gone
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                break;
            }
        }
    });
    let code = loop {
        let mut st: libc::c_int = 0;
        // SAFETY: waitpid on the re-parented exec process.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break 127;
        }
        if libc::WIFEXITED(st) {
            break libc::WEXITSTATUS(st);
        }
        if libc::WIFSIGNALED(st) {
            break 128 + libc::WTERMSIG(st);
        }
    };
    let _ = reader.join();
    let _ = std::fs::remove_file(&ctl);
    Ok(code)
}

/// Applies `resize ROWS COLS` lines sent on `listener` to the exec's terminal `pty`.
fn serve_exec_resizes(listener: std::os::unix::net::UnixListener, pty: File) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        for line in std::io::BufRead::split(std::io::BufReader::new(conn), b'\n') {
            let Ok(line) = line else { break };
            if let Some((r, c)) = parse_resize(&line) {
                let _ = crate::console::resize(&pty, r, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_utf8_tails_are_carried() {
        let e = "é".as_bytes(); // 2 bytes
        let smile = "\u{1f600}".as_bytes(); // 4 bytes
        assert_eq!(incomplete_tail(b""), 0);
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail(e), 0);
        assert_eq!(incomplete_tail(&e[..1]), 1);
        assert_eq!(incomplete_tail(smile), 0);
        for cut in 1..4 {
            let mut b = b"x".to_vec();
            b.extend(&smile[..cut]);
            assert_eq!(incomplete_tail(&b), cut);
        }
        // invalid bytes are not waited for: they become U+FFFD
        assert_eq!(incomplete_tail(b"a\xff"), 0);
        assert_eq!(incomplete_tail(b"a\x80\x80"), 0);
        assert_eq!(incomplete_tail(b"\xe2\x28"), 0);
    }

    #[test]
    fn resize_lines() {
        assert_eq!(parse_resize(b"resize 24 80"), Some((24, 80)));
        assert_eq!(parse_resize(b" resize  33 111\r"), Some((33, 111)));
        assert_eq!(parse_resize(b"resize 24"), None);
        assert_eq!(parse_resize(b"resize 24 80 1"), None);
        assert_eq!(parse_resize(b"resize x 80"), None);
        assert_eq!(parse_resize(b"resize 70000 80"), None);
        assert_eq!(parse_resize(b"\xff"), None);
    }

    #[test]
    fn log_buffer_keeps_entries_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut log = LogFile {
            file,
            buf: Vec::new(),
        };
        let big = "y".repeat(3 * LOG_BUF);
        write_log(&mut log, "stdout", b"one\ntwo");
        write_log(&mut log, "stderr", big.as_bytes());
        write_log(&mut log, "stdout", "\u{1}\n".as_bytes());
        let entries = logs::parse(&std::fs::read(&path).unwrap());
        let got: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("stdout", "one\n"),
                ("stdout", "two"),
                ("stderr", big.as_str()),
                ("stdout", "\u{1}\n")
            ]
        );
    }
}
