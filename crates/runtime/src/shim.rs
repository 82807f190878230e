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
        ]
    }

    /// Parses `shim ID BUNDLE RUNC RUNC_ROOT LOG EXIT_FILE` (argv after the program name).
    pub fn from_args(args: &[String]) -> Option<ShimConfig> {
        match args {
            [s, id, bundle, runc, root, log, exit] if s == "shim" => Some(ShimConfig {
                id: id.clone(),
                bundle: bundle.into(),
                runc: runc.into(),
                runc_root: root.into(),
                log: log.into(),
                exit_file: exit.into(),
            }),
            _ => None,
        }
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
    // SAFETY: fd 3 was set up by `spawn` as the sync pipe's write end.
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

fn run(cfg: &ShimConfig, sync: &mut Option<File>) -> Result<(), RuntimeError> {
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log)
        .map_err(io_err(format!("open log {}", cfg.log.display())))?;
    let log = Arc::new(Mutex::new(log));
    let (out_r, out_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Io {
            what: "stdout pipe".into(),
            source: e.into(),
        })?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RuntimeError::Io {
            what: "stderr pipe".into(),
            source: e.into(),
        })?;
    let pid_file = cfg.bundle.join("init.pid");
    let runc_log = cfg.bundle.join("runc.log");
    let _ = std::fs::remove_file(&runc_log);
    let status = {
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
            .arg(&pid_file)
            .arg(&cfg.id);
        c.stdin(Stdio::null())
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err_w));
        c.status()
            .map_err(io_err(format!("run {} create", cfg.runc.display())))?
    };
    if !status.success() {
        let text = std::fs::read_to_string(&runc_log).unwrap_or_default();
        return Err(RuntimeError::Runc {
            op: "create".into(),
            msg: crate::runc::runc_message(&text),
        });
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| RuntimeError::Runc {
            op: "create".into(),
            msg: "runc wrote no pid file".into(),
        })?;
    let (tx, rx) = mpsc::channel();
    {
        let (l1, l2, t1, t2) = (log.clone(), log.clone(), tx.clone(), tx);
        let (o, e) = (File::from(out_r), File::from(err_r));
        std::thread::spawn(move || pump(o, "stdout", l1, t1));
        std::thread::spawn(move || pump(e, "stderr", l2, t2));
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
    for _ in 0..2 {
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
