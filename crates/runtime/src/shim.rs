//! The per-container monitor ("shim"), in the role of conmon or containerd-shim.
//!
//! The daemon starts `tether shim ...` (this module's [`main`]); the shim detaches (forks,
//! its parent exits, so it belongs to no daemon), becomes a child subreaper, runs
//! `runc create` with pipes as the container's stdout and stderr, tells the daemon the
//! container's pid on a sync pipe (fd 3), then copies the container's output into the
//! json-file log, reaps the container's init, writes the exit file and `runc delete`s.
//! The daemon may die and come back at any time: the container and its log go on.
//!
//! Sync protocol on fd 3, one line: `ok <container pid> <shim pid>` or `err <message>`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{io_err, logs, RuntimeError};

/// What a shim is told on its command line.
#[derive(Clone, Debug)]
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
#[derive(Clone, Copy, Debug)]
pub struct Started {
    /// The container's init pid (host pid namespace).
    pub pid: i32,
    /// The shim's pid.
    pub shim_pid: i32,
}

impl ShimConfig {
    fn to_args(&self) -> Vec<String> {
        vec![
            "shim".into(),
            self.id.clone(),
            self.bundle.display().to_string(),
            self.runc.display().to_string(),
            self.runc_root.display().to_string(),
            self.log.display().to_string(),
            self.exit_file.display().to_string(),
            flag(self.tty),
            flag(self.stdin),
            flag(self.stdin_once),
            self.sock_prefix.display().to_string(),
        ]
    }

    /// Parses `shim ID BUNDLE RUNC RUNC_ROOT LOG EXIT_FILE TTY STDIN STDIN_ONCE SOCK_PREFIX` (argv
    /// after the program name; the flags are 0 or 1).
    pub fn from_args(args: &[String]) -> Option<ShimConfig> {
        match args {
            [s, id, bundle, runc, root, log, exit, tty, stdin, once, sock] if s == "shim" => {
                Some(ShimConfig {
                    id: id.clone(),
                    bundle: bundle.into(),
                    runc: runc.into(),
                    runc_root: root.into(),
                    log: log.into(),
                    exit_file: exit.into(),
                    tty: tty == "1",
                    stdin: stdin == "1",
                    stdin_once: once == "1",
                    sock_prefix: sock.into(),
                })
            }
            _ => None,
        }
    }
}

fn flag(b: bool) -> String {
    if b {
        "1".into()
    } else {
        "0".into()
    }
}

/// Daemon side: starts a shim for `cfg` with the binary `exe` (the tether binary) and waits
/// until the container is created (not started: the caller runs `runc start`).
///
/// Blocking; call from a blocking thread. Errors: the shim cannot start, or `runc create`
/// failed (its message).
pub fn spawn(exe: &Path, cfg: &ShimConfig) -> Result<Started, RuntimeError> {
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Io {
            what: "sync pipe".into(),
            source: e.into(),
        })?;
    let wr_raw = wr.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.args(cfg.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, dup2) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::dup2(wr_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(io_err(format!("start shim {}", exe.display())))?;
    drop(wr);
    // the first process forks the real shim and exits at once
    let _ = child.wait();
    let mut line = String::new();
    BufReader::new(File::from(rd))
        .read_line(&mut line)
        .map_err(io_err("read shim sync pipe"))?;
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("ok ") {
        let mut it = rest.split(' ').filter_map(|s| s.parse::<i32>().ok());
        if let (Some(pid), Some(shim_pid)) = (it.next(), it.next()) {
            return Ok(Started { pid, shim_pid });
        }
    }
    let msg = line.strip_prefix("err ").unwrap_or(if line.is_empty() {
        "the shim exited without a word"
    } else {
        line
    });
    Err(RuntimeError::Runc {
        op: "create".into(),
        msg: msg.to_string(),
    })
}

/// Reads a container's exit record, if the shim wrote one.
pub fn read_exit(path: &Path) -> Option<ExitRecord> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn report(sync: &mut Option<File>, line: &str) {
    if let Some(f) = sync.as_mut() {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
    *sync = None;
}

fn pump(mut src: File, stream: &'static str, log: Arc<Mutex<File>>, done: mpsc::Sender<()>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut out = Vec::with_capacity(n + 128);
                for e in logs::entries(stream, &buf[..n]) {
                    if let Ok(j) = serde_json::to_vec(&e) {
                        out.extend(j);
                        out.push(b'\n');
                    }
                }
                if let Ok(mut f) = log.lock() {
                    let _ = f.write_all(&out);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = done.send(());
}

/// The shim process's body (argv after the program name parsed into `cfg`); returns the
/// process exit code. Must run before any thread is started (it forks).
pub fn main(cfg: &ShimConfig) -> i32 {
    // SAFETY: single-threaded here (called before any runtime or thread starts).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(_) => return 1,
    }
    // SAFETY: fd 3 was set up by `spawn` as the sync pipe's write end; keep it from runc.
    unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: as above.
    let mut sync = Some(unsafe { File::from_raw_fd(3) });
    match run(cfg, &mut sync) {
        Ok(()) => 0,
        Err(e) => {
            let msg = match e {
                RuntimeError::Runc { msg, .. } => msg,
                other => other.to_string(),
            };
            report(&mut sync, &format!("err {msg}"));
            1
        }
    }
}

/// Accepts attach clients on `path` and copies what they send into the container's stdin;
/// with `once`, stdin is closed when the first client finishes (docker's StdinOnce).
fn serve_attach(path: PathBuf, sink: File, once: bool) -> Result<(), RuntimeError> {
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path)
        .map_err(io_err(format!("bind {}", path.display())))?;
    std::thread::spawn(move || {
        let mut sink = Some(sink);
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            if let Some(s) = sink.as_mut() {
                let _ = std::io::copy(&mut conn, s);
            }
            if once {
                drop(sink.take());
                break;
            }
        }
    });
    Ok(())
}

/// Accepts control clients on `path`: lines `resize ROWS COLS` resize the terminal.
fn serve_control(path: PathBuf, pty: File) -> Result<(), RuntimeError> {
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path)
        .map_err(io_err(format!("bind {}", path.display())))?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            for line in BufReader::new(conn).lines().map_while(Result::ok) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let ["resize", r, c] = f.as_slice() {
                    if let (Ok(r), Ok(c)) = (r.parse(), c.parse()) {
                        let _ = crate::console::resize(&pty, r, c);
                    }
                }
            }
        }
    });
    Ok(())
}

fn run(cfg: &ShimConfig, sync: &mut Option<File>) -> Result<(), RuntimeError> {
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log)
        .map_err(io_err(format!("open log {}", cfg.log.display())))?;
    let log = Arc::new(Mutex::new(log));
    let pid_file = cfg.bundle.join("init.pid");
    let runc_log = cfg.bundle.join("runc.log");
    let _ = std::fs::remove_file(&runc_log);
    let mut c = Command::new(&cfg.runc);
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
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Io {
            what: "pipe".into(),
            source: e.into(),
        })
    };
    // (reader, stream name) of the container's output; its stdin sink; the pty for resizes
    let mut outputs: Vec<(File, &'static str)> = Vec::new();
    let mut sink: Option<File> = None;
    let mut pty: Option<File> = None;
    let runc_failed = |text: String| RuntimeError::Runc {
        op: "create".into(),
        msg: crate::runc::runc_message(&text),
    };
    if cfg.tty {
        let console_path = socket(&cfg.sock_prefix, "console");
        let listener = crate::console::bind(&console_path)?;
        c.arg("--console-socket").arg(&console_path).arg(&cfg.id);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c
            .spawn()
            .map_err(io_err(format!("run {} create", cfg.runc.display())))?;
        let got = std::thread::spawn(move || {
            crate::console::receive_master(&listener, Duration::from_secs(30))
        });
        let status = child.wait().map_err(io_err("wait for runc create"))?;
        if !status.success() {
            return Err(runc_failed(
                std::fs::read_to_string(&runc_log).unwrap_or_default(),
            ));
        }
        let master = got
            .join()
            .map_err(|_| RuntimeError::Spec("console thread panicked".into()))??;
        let master = File::from(master);
        // a sane size until the client sends its own (docker resizes right after start)
        let _ = crate::console::resize(&master, 24, 80);
        outputs.push((
            master.try_clone().map_err(io_err("dup terminal"))?,
            "stdout",
        ));
        if cfg.stdin {
            sink = Some(master.try_clone().map_err(io_err("dup terminal"))?);
        }
        pty = Some(master);
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        c.arg(&cfg.id);
        if cfg.stdin {
            let (in_r, in_w) = pipe()?;
            c.stdin(Stdio::from(in_r));
            sink = Some(File::from(in_w));
        } else {
            c.stdin(Stdio::null());
        }
        c.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        let status = c
            .status()
            .map_err(io_err(format!("run {} create", cfg.runc.display())))?;
        drop(c);
        if !status.success() {
            return Err(runc_failed(
                std::fs::read_to_string(&runc_log).unwrap_or_default(),
            ));
        }
        outputs.push((File::from(out_r), "stdout"));
        outputs.push((File::from(err_r), "stderr"));
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| RuntimeError::Runc {
            op: "create".into(),
            msg: "runc wrote no pid file".into(),
        })?;
    let (tx, rx) = mpsc::channel();
    let n_outputs = outputs.len();
    for (f, name) in outputs {
        let (l, t) = (log.clone(), tx.clone());
        std::thread::spawn(move || pump(f, name, l, t));
    }
    drop(tx);
    if let Some(sink) = sink {
        serve_attach(attach_socket(&cfg.sock_prefix), sink, cfg.stdin_once)?;
    }
    if let Some(pty) = pty {
        serve_control(control_socket(&cfg.sock_prefix), pty)?;
    }
    report(sync, &format!("ok {pid} {}", std::process::id()));

    let code = loop {
        let mut st: libc::c_int = 0;
        // SAFETY: plain waitpid on any child (we are a subreaper).
        let r = unsafe { libc::waitpid(-1, &mut st, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break -1;
        }
        if r == pid {
            if libc::WIFEXITED(st) {
                break i64::from(libc::WEXITSTATUS(st));
            }
            if libc::WIFSIGNALED(st) {
                break 128 + i64::from(libc::WTERMSIG(st));
            }
        }
    };
    // the pipes close when the last process holding them (the whole pid namespace) is gone
    for _ in 0..n_outputs {
        let _ = rx.recv_timeout(Duration::from_secs(2));
    }
    let rec = ExitRecord {
        exit_code: code,
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    };
    let tmp = cfg.exit_file.with_extension("tmp");
    if let Ok(b) = serde_json::to_vec(&rec) {
        if std::fs::write(&tmp, b).is_ok() {
            let _ = std::fs::rename(&tmp, &cfg.exit_file);
        }
    }
    let _ = Command::new(&cfg.runc)
        .arg("--root")
        .arg(&cfg.runc_root)
        .arg("delete")
        .arg("--force")
        .arg(&cfg.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // reap whatever else was left to us
    // SAFETY: non-blocking waitpid.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    Ok(())
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
    Ok(code)
}
