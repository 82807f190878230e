//! The container monitor: one process per daemon that holds every running container's
//! stdio, writes their logs and records their exits, in the role of conmon or
//! containerd-shim, but shared (conmon and containerd-shim-runc-v2 run one process per
//! container; a process costs at least ~60 KiB of private memory here, a container's
//! thread in the monitor ~8 KiB of stack).
//!
//! The daemon starts `tether monitor SOCKET RUNC_ROOT` (this module's [`main`]) the first
//! time it needs one; the monitor detaches (forks, its parent exits, so it belongs to no
//! daemon), becomes a child subreaper and serves requests on the unix socket `SOCKET`. It
//! lives on while the daemon restarts, and ends once it has had no container and no request
//! for [`LINGER`], or at once when a daemon that stops with no container `release`s it.
//!
//! Threads: the main thread accepts connections and reaps every child from a signalfd for
//! SIGCHLD, handing each exit status to whoever waits for that pid ([`Reaper`]); a thread
//! per request; a thread per container (a small stack) runs that container's event loop
//! ([`crate::shim`]) from `runc create` to its exit record.
//!
//! Protocol: one request line per connection, one reply line.
//! - `create <ShimConfig as JSON>` -> `ok <container pid> <monitor pid>` or `err <message>`
//!   (runc create's own message). After `ok` the connection stays open and gets `exit` and
//!   EOF once the container's exit record is written: the daemon watches it.
//! - `watch <id>` -> `watching` (then as above) or `gone` (the monitor has no such
//!   container: it exited, or never ran here).
//! - `list` -> the ids of the containers served, one per line.
//! - `release` -> `ok`: the daemon is stopping with no container running; the monitor ends
//!   as soon as it serves nothing, without lingering.
//!
//! A connection closed without a reply means the monitor is ending: the client starts a
//! new one and asks again (the request was not acted on).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::shim::{poll, pollfd, set_nonblocking, sys_err, ShimConfig, Started};
use crate::{io_err, RuntimeError};

/// How long a monitor with nothing to serve waits for a request before it ends.
pub const LINGER: Duration = Duration::from_secs(2);
/// The longest request line taken (a create's JSON is well under 4 KiB).
const REQUEST_MAX: usize = 64 * 1024;
/// Stack of a container's thread: its event loop, log writing and the exit's `runc delete`
/// (only the pages it touches are resident, typically 2 or 3).
const CONTAINER_STACK: usize = 128 * 1024;
/// Stack of a request's thread (`runc create` and the container's setup); given back when
/// the request is answered.
const REQUEST_STACK: usize = 512 * 1024;
/// How long an exit status nobody waits for yet is kept (a container's init can be
/// re-parented to the monitor and exit before its thread asks for it).
const STASH_FOR: Duration = Duration::from_secs(5);

/// Daemon side: the client of the monitor of one runc root.
#[derive(Debug)]
pub struct Monitor {
    exe: PathBuf,
    sock: PathBuf,
    runc_root: PathBuf,
    starting: Mutex<()>,
}

impl Monitor {
    /// `exe`: the tether binary (started as `tether monitor`); `sock`: the monitor's unix
    /// socket (at most 107 bytes, e.g. `<exec-root>/monitor.sock`); `runc_root`: runc's
    /// `--root`, the monitor's identity in process listings.
    pub fn new(exe: PathBuf, sock: PathBuf, runc_root: PathBuf) -> Monitor {
        Monitor {
            exe,
            sock,
            runc_root,
            starting: Mutex::new(()),
        }
    }

    /// Creates the container `cfg` describes (`runc create` with the monitor's pipes or a
    /// terminal as its stdio), starting a monitor first when none runs. Returns its init's
    /// pid, the monitor's pid and the connection that reports its exit (EOF, after the
    /// exit record is written). Blocking; call from a blocking thread.
    ///
    /// Errors: the monitor cannot be started or reached, or `runc create` failed (its
    /// message, as [`RuntimeError::Runc`]).
    pub fn create(&self, cfg: &ShimConfig) -> Result<Started, RuntimeError> {
        let json = serde_json::to_string(cfg).map_err(|e| RuntimeError::Spec(e.to_string()))?;
        let (conn, reply) = self
            .request(&format!("create {json}"), true)?
            .ok_or_else(|| RuntimeError::Runc {
                op: "create".into(),
                msg: "the container monitor is not running".into(),
            })?;
        if let Some(rest) = reply.strip_prefix("ok ") {
            let mut it = rest.split(' ').filter_map(|s| s.parse::<i32>().ok());
            if let (Some(pid), Some(shim_pid)) = (it.next(), it.next()) {
                return Ok(Started {
                    pid,
                    shim_pid,
                    watch: conn,
                });
            }
        }
        Err(RuntimeError::Runc {
            op: "create".into(),
            msg: reply.strip_prefix("err ").unwrap_or(&reply).to_string(),
        })
    }

    /// A connection that reports container `id`'s exit (EOF once its exit record is
    /// written), or None when no monitor serves it (it has exited, or no monitor runs).
    /// Blocking.
    pub fn watch(&self, id: &str) -> Result<Option<UnixStream>, RuntimeError> {
        match self.request(&format!("watch {id}"), false)? {
            Some((conn, reply)) if reply == "watching" => Ok(Some(conn)),
            _ => Ok(None),
        }
    }

    /// Tells the monitor (if one runs) that the daemon stops with no container running:
    /// it ends at once when it serves nothing. Blocking; errors are only logged.
    pub fn release(&self) {
        let conn = match self.request("release", false) {
            Ok(Some((conn, _))) => conn,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "releasing the container monitor");
                return;
            }
        };
        // it ends a moment after its answer: wait (up to 2 s) until it has, so that a
        // stopped daemon leaves no process behind
        let Some(pid) = peer_pid(&conn) else {
            return;
        };
        drop(conn);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `line` and reads the reply line, on a connection of its own; starts a
    /// monitor when none answers and `start` is set (else None).
    fn request(
        &self,
        line: &str,
        start: bool,
    ) -> Result<Option<(UnixStream, String)>, RuntimeError> {
        for _ in 0..5 {
            let mut conn = match UnixStream::connect(&self.sock) {
                Ok(c) => c,
                Err(e) if absent(&e) => {
                    if !start {
                        return Ok(None);
                    }
                    self.start()?;
                    continue;
                }
                Err(e) => {
                    return Err(io_err(format!("connect to {}", self.sock.display()))(e));
                }
            };
            conn.write_all(format!("{line}\n").as_bytes())
                .map_err(io_err("send to the container monitor"))?;
            match read_line(&mut conn, REQUEST_MAX) {
                // closed without a word: this monitor is ending
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Ok(Some(reply)) => return Ok(Some((conn, reply))),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(io_err("read from the container monitor")(e)),
            }
        }
        Err(RuntimeError::Runc {
            op: "monitor".into(),
            msg: format!("no container monitor answers on {}", self.sock.display()),
        })
    }

    /// Starts a monitor unless one answers by now (another thread may have started it).
    fn start(&self) -> Result<(), RuntimeError> {
        let _g = self.starting.lock().unwrap_or_else(|p| p.into_inner());
        match UnixStream::connect(&self.sock) {
            Ok(_) => return Ok(()),
            Err(e) if absent(&e) => {}
            Err(e) => return Err(io_err(format!("connect to {}", self.sock.display()))(e)),
        }
        let (rd, wr) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys_err("sync pipe"))?;
        // The sync pipe is the monitor's stdout, and nothing runs between fork and exec, so
        // that the standard library starts it with posix_spawn(3) (a vfork: the daemon's
        // page tables are not copied); the monitor moves the pipe off stdout.
        let mut cmd = Command::new(&self.exe);
        cmd.arg("monitor")
            .arg(&self.sock)
            .arg(&self.runc_root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(wr))
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(io_err(format!("start monitor {}", self.exe.display())))?;
        // the command holds the pipe's write end: drop it, so that a monitor that dies
        // before writing its line ends the read below
        drop(cmd);
        // the first process forks the real monitor and exits at once
        let _ = child.wait();
        let mut f = File::from(rd);
        let line = read_line(&mut f, 4096)
            .map_err(io_err("read the monitor's sync pipe"))?
            .unwrap_or_default();
        if line == "ok" {
            return Ok(());
        }
        Err(RuntimeError::Runc {
            op: "monitor".into(),
            msg: line
                .strip_prefix("err ")
                .unwrap_or("the container monitor exited without a word")
                .to_string(),
        })
    }
}

/// The pid of the process at the other end of `conn` (SO_PEERCRED).
fn peer_pid(conn: &UnixStream) -> Option<i32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt(2) into a ucred struct of the size given.
    let r = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::addr_of_mut!(cred).cast(),
            &mut len,
        )
    };
    (r == 0 && cred.pid > 0).then_some(cred.pid)
}

fn absent(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused)
}

/// Reads one line (without its newline) of at most `max` bytes, a byte at a time so
/// that nothing after it is consumed; None at EOF before any byte.
fn read_line(r: &mut impl Read, max: usize) -> std::io::Result<Option<String>> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match r.read(&mut b) {
            Ok(0) if out.is_empty() => return Ok(None),
            Ok(0) => break,
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) if out.len() >= max => {
                return Err(std::io::Error::new(
                    ErrorKind::InvalidData,
                    "request line too long",
                ))
            }
            Ok(_) => out.push(b[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(String::from_utf8_lossy(&out).into_owned()))
}

/// Hands every child's exit status to the one waiting for it: the main thread reaps all
/// children (the monitor is a subreaper, so containers' inits are re-parented to it),
/// threads wait on a pipe that receives the raw wait(2) status (4 bytes) when theirs is
/// reaped.
#[derive(Default)]
pub(crate) struct Reaper {
    inner: Mutex<ReapInner>,
}

#[derive(Default)]
struct ReapInner {
    waiting: HashMap<i32, File>,
    /// Statuses nobody waited for yet: (pid, status, when reaped).
    stash: VecDeque<(i32, i32, Instant)>,
}

impl Reaper {
    fn lock(&self) -> MutexGuard<'_, ReapInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns `cmd` with `stdio` (see [`crate::spawn`]: the child gets none of the
    /// monitor's other descriptors, at a cost that does not grow with them); its exit
    /// status arrives on the returned pipe (see [`wait_status`]). The spawn happens under
    /// the reaper's lock, so the status cannot be reaped before it is waited for. Returns
    /// the child's pid too.
    pub(crate) fn spawn(
        &self,
        cmd: &crate::spawn::Command,
        stdio: [BorrowedFd<'_>; 3],
    ) -> std::io::Result<(i32, File)> {
        let (rx, tx) = status_pipe()?;
        let mut g = self.lock();
        let child = cmd.spawn(stdio)?;
        g.waiting.insert(child.pid, tx);
        Ok((child.pid, rx))
    }

    /// Waits for `pid` (a container's init, re-parented to the monitor), whose status may
    /// have been reaped already.
    pub(crate) fn watch(&self, pid: i32) -> std::io::Result<File> {
        let (rx, mut tx) = status_pipe()?;
        let mut g = self.lock();
        if let Some(i) = g.stash.iter().position(|(p, ..)| *p == pid) {
            if let Some((_, st, _)) = g.stash.remove(i) {
                tx.write_all(&st.to_ne_bytes())?;
            }
        } else {
            g.waiting.insert(pid, tx);
        }
        Ok(rx)
    }

    /// Sends `sig` to child `pid` (spawned by [`Reaper::spawn`]) unless it is reaped
    /// already: under the lock, a pid still waited for is not reaped, so it cannot name
    /// another process.
    pub(crate) fn kill(&self, pid: i32, sig: i32) {
        let g = self.lock();
        if g.waiting.contains_key(&pid) {
            // SAFETY: kill(2) of our own child, not reaped (see above).
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Reaps every exited child (non-blocking) and delivers the statuses. Each waitpid
    /// runs under the lock (see [`Reaper::kill`]).
    fn reap_all(&self) {
        loop {
            let mut g = self.lock();
            let mut st: libc::c_int = 0;
            // SAFETY: non-blocking waitpid on any child.
            let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
            if pid < 0 && std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            if pid <= 0 {
                return;
            }
            match g.waiting.remove(&pid) {
                Some(mut tx) => {
                    let _ = tx.write_all(&st.to_ne_bytes());
                }
                None => {
                    let now = Instant::now();
                    while g
                        .stash
                        .front()
                        .is_some_and(|(.., t)| now.duration_since(*t) > STASH_FOR)
                    {
                        g.stash.pop_front();
                    }
                    g.stash.push_back((pid, st, now));
                }
            }
        }
    }
}

fn status_pipe() -> std::io::Result<(File, File)> {
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(rx), File::from(tx)))
}

/// Reads a raw wait(2) status from a [`Reaper`] pipe: Some once it arrived, None when the
/// pipe is closed without one or (non-blocking pipe) it has not arrived yet.
pub(crate) fn read_status(rx: &mut File) -> Option<i32> {
    let mut b = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match rx.read(&mut b[got..]) {
            Ok(0) => return None,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(i32::from_ne_bytes(b))
}

/// Blocks until the status on `rx` arrives (`rx` may be non-blocking).
pub(crate) fn wait_status(mut rx: File) -> Option<i32> {
    let mut p = [pollfd(rx.as_raw_fd(), libc::POLLIN)];
    loop {
        match poll(&mut p, -1) {
            Ok(n) if n > 0 => return read_status(&mut rx),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// A wait(2) status as an exit code: the code, or 128+N when killed by signal N (the
/// shell's convention, as Docker reports); None for a stop or continue.
pub(crate) fn exit_code(st: i32) -> Option<i64> {
    if libc::WIFEXITED(st) {
        Some(i64::from(libc::WEXITSTATUS(st)))
    } else if libc::WIFSIGNALED(st) {
        Some(128 + i64::from(libc::WTERMSIG(st)))
    } else {
        None
    }
}

/// What the monitor's threads share.
pub(crate) struct Shared {
    pub(crate) reaper: Reaper,
    /// Containers being created or served, and requests being answered: the monitor ends
    /// only when this is 0.
    busy: AtomicUsize,
    /// Containers served, by id: the connections waiting for their exit.
    served: Mutex<HashMap<String, Vec<UnixStream>>>,
    /// Written when `busy` drops to 0, to wake the main thread (non-blocking pipe).
    wake: File,
    /// A `release` came: end without lingering once idle.
    quit: AtomicBool,
}

impl Shared {
    fn served(&self) -> MutexGuard<'_, HashMap<String, Vec<UnixStream>>> {
        self.served.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn done(&self) {
        if self.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// The monitor process's body, `tether monitor SOCKET RUNC_ROOT` (argv after the program
/// name); returns the process exit code. Must run before any thread is started (it
/// forks). Reports `ok` or `err <message>` on its stdout (a pipe from [`Monitor`]).
pub fn main(args: &[String]) -> i32 {
    let [_, sock, _runc_root] = args else {
        eprintln!("tether monitor: internal command, started by the daemon");
        return 2;
    };
    // SAFETY: single-threaded here (called before any runtime or thread starts).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(_) => return 1,
    }
    // a session of its own: no signal to the daemon's process group or terminal reaches it
    // SAFETY: plain setsid(2) in a single-threaded process.
    unsafe { libc::setsid() };
    // the sync pipe (our stdout) becomes fd 3 (close-on-exec), stdout /dev/null
    // SAFETY: dup3 and dup2 on descriptors this process owns; open of a constant path.
    unsafe {
        libc::dup3(1, 3, libc::O_CLOEXEC);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
    close_inherited();
    // SAFETY: fd 3 is the sync pipe's write end, made just above.
    let mut sync = unsafe { File::from_raw_fd(3) };
    let (listener, sigfd) = match setup(Path::new(sock)) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(sync, "err {e}");
            return 1;
        }
    };
    let _ = writeln!(sync, "ok");
    drop(sync);
    serve(Path::new(sock), listener, sigfd);
    0
}

/// Becomes a subreaper with SIGCHLD on a signalfd, one malloc arena, and binds `sock`.
fn setup(sock: &Path) -> Result<(UnixListener, SignalFd), RuntimeError> {
    // runc's stdio slots, while the lowest descriptor numbers are free
    crate::spawn::reserve().map_err(io_err("/dev/null"))?;
    // one arena: the threads allocate little, and an arena per thread would keep pages
    // SAFETY: plain mallopt and prctl.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    // about five descriptors per container (its output, exit pipe, log, watch and
    // sockets): the soft limit (often 1024) goes up to the hard one. Containers are not
    // affected: their spec sets their own RLIMIT_NOFILE.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    // Exits are learnt from SIGCHLD, blocked (in every thread: they inherit the mask) and
    // read from a signalfd. Children do not inherit the mask: std's spawn resets it.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(sys_err("block SIGCHLD"))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(sys_err("signalfd"))?;
    // the daemon starts a monitor only when none answers: a socket left here is a dead
    // monitor's
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock).map_err(io_err(format!("bind {}", sock.display())))?;
    // only root may ask for containers
    std::fs::set_permissions(sock, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io_err(format!("chmod {}", sock.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("monitor socket"))?;
    Ok((listener, sigfd))
}

/// Closes every descriptor but stdio and the sync pipe (fd 3): those the daemon let slip
/// through without close-on-exec are no business of the monitor.
fn close_inherited() {
    // SAFETY: close_range(2) on descriptors this process does not use.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // kernels before 5.9
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 3)
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        // SAFETY: as above (the directory's own descriptor is closed already: EBADF).
        unsafe { libc::close(fd) };
    }
}

/// The main thread's loop: accepts requests, reaps children, and ends after [`LINGER`]
/// with nothing to do.
fn serve(sock: &Path, listener: UnixListener, sigfd: SignalFd) {
    let Ok((mut wake_rx, wake)) = status_pipe() else {
        return;
    };
    if set_nonblocking(&wake_rx, "wake pipe")
        .and(set_nonblocking(&wake, "wake pipe"))
        .is_err()
    {
        return;
    }
    let shared = Arc::new(Shared {
        reaper: Reaper::default(),
        busy: AtomicUsize::new(0),
        served: Mutex::new(HashMap::new()),
        wake,
        quit: AtomicBool::new(false),
    });
    let mut idle_since = Instant::now();
    loop {
        let busy = shared.busy.load(Ordering::SeqCst) > 0;
        if busy {
            idle_since = Instant::now();
        } else if shared.quit.load(Ordering::SeqCst) || idle_since.elapsed() >= LINGER {
            // new clients find no socket and start another monitor; those already queued
            // are closed unanswered and ask again
            let _ = std::fs::remove_file(sock);
            drop(listener);
            return;
        }
        let timeout = if busy {
            -1
        } else {
            let left = LINGER.saturating_sub(idle_since.elapsed());
            i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1)
        };
        let mut fds = [listener.as_raw_fd(), sigfd.as_raw_fd(), wake_rx.as_raw_fd()]
            .map(|fd| pollfd(fd, libc::POLLIN));
        let _ = poll(&mut fds, timeout);
        if fds[2].revents != 0 {
            let mut b = [0u8; 64];
            while matches!(wake_rx.read(&mut b), Ok(n) if n > 0) {}
        }
        if fds[1].revents != 0 {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            shared.reaper.reap_all();
        }
        if fds[0].revents != 0 {
            accept_all(&listener, &shared);
        }
    }
}

fn accept_all(listener: &UnixListener, shared: &Arc<Shared>) {
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                // counted before the thread exists, so that the idle check cannot miss it
                shared.busy.fetch_add(1, Ordering::SeqCst);
                let s = shared.clone();
                let spawned = std::thread::Builder::new()
                    .stack_size(REQUEST_STACK)
                    .spawn(move || handle(&s, conn));
                if spawned.is_err() {
                    shared.done();
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                // out of descriptors, say: the connection stays queued; a pause so that
                // the main loop does not spin on it
                tracing::warn!(error = %e, "accepting a request");
                std::thread::sleep(Duration::from_millis(50));
                return;
            }
        }
    }
}

/// Answers one request (see the module's protocol).
fn handle(shared: &Arc<Shared>, mut conn: UnixStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    // read in chunks (a create's JSON is ~2 KB): the client sends nothing after its line
    let mut line = String::new();
    let read = BufReader::new(&conn)
        .take(REQUEST_MAX as u64)
        .read_line(&mut line);
    if !matches!(read, Ok(n) if n > 0) {
        return shared.done();
    }
    let _ = conn.set_read_timeout(None);
    let line = line.trim_end_matches('\n');
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "create" => match serde_json::from_str::<ShimConfig>(arg) {
            // the container's thread ends the request (and its `busy` count)
            Ok(cfg) => return crate::shim::create_and_serve(shared, cfg, conn),
            Err(e) => {
                let _ = writeln!(conn, "err invalid create request: {e}");
            }
        },
        "watch" => {
            let mut served = shared.served();
            match served.get_mut(arg) {
                Some(watchers) => {
                    // those of a daemon that has gone since are closed: dropped here
                    watchers.retain(peer_open);
                    if writeln!(conn, "watching").is_ok() {
                        watchers.push(conn);
                    }
                }
                None => {
                    let _ = writeln!(conn, "gone");
                }
            }
        }
        "release" => {
            shared.quit.store(true, Ordering::SeqCst);
            let _ = writeln!(conn, "ok");
        }
        "list" => {
            let ids: Vec<String> = shared.served().keys().cloned().collect();
            let mut out = String::new();
            for id in ids {
                out.push_str(&id);
                out.push('\n');
            }
            let _ = conn.write_all(out.as_bytes());
        }
        other => {
            let _ = writeln!(
                conn,
                "err unknown request {other:?}: expected create, watch, list or release"
            );
        }
    }
    shared.done()
}

/// Whether the peer of a watch connection still has it open (it sends nothing, so
/// readable means EOF).
fn peer_open(conn: &UnixStream) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: recv(2) into a 1-byte buffer we own; MSG_PEEK consumes nothing.
    let r = unsafe {
        libc::recv(
            conn.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    r != 0
}

/// Registers container `id` as served, with `conn` waiting for its exit.
pub(crate) fn serving(shared: &Shared, id: &str) {
    shared.served().insert(id.to_string(), Vec::new());
}

/// Adds `conn` to the connections waiting for `id`'s exit.
pub(crate) fn add_watcher(shared: &Shared, id: &str, conn: UnixStream) {
    if let Some(w) = shared.served().get_mut(id) {
        w.push(conn);
    }
}

/// Container `id`'s exit record is written: its watchers get `exit` and EOF, and its
/// share of `busy` ends.
pub(crate) fn ended(shared: &Shared, id: &str) {
    let watchers = shared.served().remove(id).unwrap_or_default();
    for mut w in watchers {
        let _ = w.write_all(b"exit\n");
    }
    shared.done();
}

/// Ends a request whose container was not created.
pub(crate) fn failed(shared: &Shared) {
    shared.done();
}

/// Spawns container `id`'s thread running `body`, with a small stack; runs it here when
/// no thread can be made.
pub(crate) fn container_thread<F: FnOnce() + Send + 'static>(id: &str, body: F) {
    // the body goes to the thread once it exists, so that it is still here if it does not;
    // boxed, so that the channel's frames in the thread stay small (one page of stack less
    // per running container)
    let (tx, rx) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(1);
    let spawned = std::thread::Builder::new()
        .name(format!("c-{}", id.get(..12).unwrap_or(id)))
        .stack_size(CONTAINER_STACK)
        .spawn(move || {
            if let Ok(f) = rx.recv() {
                f()
            }
        });
    match spawned {
        Ok(_) => {
            if let Err(back) = tx.send(Box::new(body)) {
                (back.0)()
            }
        }
        Err(_) => body(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        // status words as wait(2) builds them: exit code << 8, or the signal number
        assert_eq!(exit_code(3 << 8), Some(3));
        assert_eq!(exit_code(9), Some(137));
        assert_eq!(exit_code(15), Some(143));
        // stopped by SIGSTOP (0x7f marker)
        assert_eq!(exit_code((19 << 8) | 0x7f), None);
    }

    #[test]
    fn lines_are_read_without_consuming_what_follows() {
        let mut r: &[u8] = b"ok 1 2\nexit\n";
        assert_eq!(
            read_line(&mut r, 100).ok().flatten().as_deref(),
            Some("ok 1 2")
        );
        assert_eq!(r, b"exit\n");
        let mut empty: &[u8] = b"";
        assert!(matches!(read_line(&mut empty, 100), Ok(None)));
        let mut long: &[u8] = b"abcdef\n";
        assert!(read_line(&mut long, 3).is_err());
    }

    #[test]
    fn a_stashed_status_reaches_a_late_watcher() {
        let r = Reaper::default();
        r.lock().stash.push_back((4242, 7 << 8, Instant::now()));
        let rx = r.watch(4242).expect("watch");
        assert_eq!(wait_status(rx).and_then(exit_code), Some(7));
        assert!(r.lock().stash.is_empty());
    }
}
