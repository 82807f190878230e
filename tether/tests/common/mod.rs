//! Harness of tether's integration tests.
//!
//! Every test gets its own [`Daemon`]: a `tether daemon` with its own state directory,
//! exec-root and API socket (in a temporary directory), running in a fresh network
//! namespace and a private mount namespace. The namespaces are held by a `sleep infinity`
//! "holder" process started by `unshare`, and the daemon is entered into them with
//! `nsenter`, so it can be stopped and started again in the same namespaces (see
//! [`Daemon::restart`]). Tests therefore run in parallel and leave the host untouched:
//! bridges, veths, nftables rules and mounts live and die with the test's namespaces.
//!
//! Traffic the harness sends goes only to loopback inside the daemon's namespace
//! ([`Daemon::tcp_exchange`]) or is sent by the test's own containers to each other.
//! Name resolution never leaves the namespace: the daemon's only upstream is the test's
//! own DNS server ([`Upstream`]) on 127.0.0.1:5353 inside that namespace, and the namespace
//! has no route anywhere else.
//!
//! The test image `tbox:latest` (Debian's static busybox and the minimal /etc files) is
//! built once per test binary ([`image_tar`]) and imported into every daemon.
//!
//! When a [`Daemon`] is dropped it force-removes every container, stops the daemon and
//! checks that nothing is left behind (the container monitor, mounts, cgroups); a failing
//! test gets the tail of the daemon's log printed.

#![allow(dead_code)]

pub mod multihost;
pub mod outside;
pub mod raw;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::Value;

/// The tether binary under test.
pub const TETHER: &str = env!("CARGO_BIN_EXE_tether");
/// The test image every daemon has.
pub const IMAGE: &str = "tbox:latest";
/// The test's DNS upstream listens on 127.0.0.1 on this port inside the daemon's namespace.
pub const UPSTREAM_PORT: u16 = 5353;
/// The one name the test upstream knows (A record [`UPSTREAM_IP`]); all else is NXDOMAIN.
pub const UPSTREAM_NAME: &str = "upstream.test";
/// The address the test upstream answers for [`UPSTREAM_NAME`] (TEST-NET-2, never routed).
pub const UPSTREAM_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// Bound on one CLI or helper command; far above what any of them needs.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// Where Debian's busybox-static installs its binary.
const BUSYBOX: &str = "/bin/busybox";

// ---------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------

/// The result of a finished command, with its output decoded as (lossy) UTF-8.
#[derive(Clone, Debug)]
pub struct Output {
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// The exit code; -1 if the command was killed by a signal.
    pub code: i32,
}

impl Output {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// stdout with surrounding whitespace removed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// stdout followed by stderr (for messages that may go to either).
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` (stdin closed) and collects its output; panics if it runs longer than
/// `limit` (after killing it) or cannot be started.
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{desc} did not finish within {limit:?}");
            }
        }
    };
    Output {
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        code: status.code().unwrap_or(-1),
    }
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` if it still does not
/// after `limit`. Bounds are generous: this waits for a state, it does not time anything.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sets the calling thread's network namespace to the one at `ns` (`/proc/PID/ns/net`).
fn enter_netns(ns: &Path) -> std::io::Result<()> {
    let f = File::open(ns)?;
    // SAFETY: setns(2) on a valid fd; it changes only the calling thread's namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a fresh thread that has joined the network namespace `ns`, and returns its
/// result. Sockets made inside `f` stay in that namespace.
pub fn in_netns<T: Send + 'static>(ns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_path_buf();
    std::thread::spawn(move || {
        enter_netns(&ns).unwrap_or_else(|e| panic!("setns {}: {e}", ns.display()));
        f()
    })
    .join()
    .expect("netns worker thread panicked")
}

/// Asks the kernel to SIGKILL a spawned child when the spawning thread ends, so that a
/// test binary that dies does not leave namespaces and daemons behind.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Waits up to `limit` for `child` to exit, SIGKILLs it after that. Returns its status
/// and whether it exited by itself.
fn reap(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Some(st), true),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                return (child.wait().ok(), false);
            }
        }
    }
}

/// Whether the ELF file at `path` is statically linked (has no PT_INTERP program header).
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false; // only 64-bit little-endian is handled (and expected here)
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap_or_default()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 > b.len() || u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default()) != 3
    })
}

// ---------------------------------------------------------------------------------------
// The test image
// ---------------------------------------------------------------------------------------

/// The `tbox` root filesystem as a tar archive, built once per test binary: Debian's
/// static busybox as /bin/busybox with its applet symlinks (`busybox --install -s` run
/// inside the rootfs), /etc/passwd, /etc/group, `hosts: files dns` in /etc/nsswitch.conf,
/// and empty /etc/hosts, /etc/resolv.conf and /etc/hostname for the engine to mount over.
///
/// Panics when /bin/busybox is missing or not static (`apt-get install busybox-static`).
pub fn image_tar() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(build_image_tar)
}

fn build_image_tar() -> Vec<u8> {
    let bb = Path::new(BUSYBOX);
    assert!(
        is_static_elf(bb),
        "the tests need a static busybox at {BUSYBOX}: apt-get install busybox-static"
    );
    let tmp = tempfile::Builder::new()
        .prefix("tether-tbox-")
        .tempdir()
        .expect("temp dir for the image rootfs");
    let root = tmp.path();
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev", "run",
        "var/tmp", "home",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("rootfs dir");
    }
    use std::os::unix::fs::PermissionsExt;
    for d in ["tmp", "var/tmp"] {
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod 1777");
    }
    std::fs::copy(bb, root.join("bin/busybox")).expect("copy busybox");
    let mut install = Command::new("chroot");
    install.arg(root).args(["/bin/busybox", "--install", "-s"]);
    let o = run_with_limit(install, COMMAND_LIMIT);
    assert!(o.success(), "busybox --install -s in the rootfs: {o}");
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/nsswitch.conf", "hosts: files dns\n"),
        ("etc/hosts", ""),
        ("etc/resolv.conf", ""),
        ("etc/hostname", ""),
    ];
    for (p, text) in files {
        std::fs::write(root.join(p), text).expect("write /etc file");
    }
    let mut tar = Command::new("tar");
    tar.args(["--numeric-owner", "-C"])
        .arg(root)
        .args(["-cf", "-", "."]);
    let mut tar = tar.stdout(Stdio::piped()).spawn().expect("run tar");
    let mut bytes = Vec::new();
    tar.stdout
        .take()
        .expect("tar stdout")
        .read_to_end(&mut bytes)
        .expect("read tar output");
    assert!(tar.wait().expect("wait for tar").success(), "tar failed");
    bytes
}

// ---------------------------------------------------------------------------------------
// The test's DNS upstream
// ---------------------------------------------------------------------------------------

/// A tiny authoritative DNS server (UDP) on 127.0.0.1:[`UPSTREAM_PORT`] inside a network
/// namespace: `upstream.test. A 198.51.100.7` (and an empty NOERROR for its other types),
/// NXDOMAIN for every other name. It records the names it was asked. Stopped (its socket
/// closed) by [`Upstream::stop`] or on drop.
pub struct Upstream {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    /// Starts the server in the network namespace at `netns` (`/proc/PID/ns/net`).
    pub fn start(netns: &Path) -> Upstream {
        Upstream::serve(
            netns,
            SocketAddr::from((Ipv4Addr::LOCALHOST, UPSTREAM_PORT)),
            UPSTREAM_NAME,
            UPSTREAM_IP,
        )
    }

    /// A server of the same kind on `addr` inside `netns` that knows `name` -> `ip` (see
    /// [`dns_reply`]).
    pub fn serve(netns: &Path, addr: SocketAddr, name: &'static str, ip: Ipv4Addr) -> Upstream {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let ns = netns.to_path_buf();
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let sock = enter_netns(&ns)
                .and_then(|_| UdpSocket::bind(addr))
                .and_then(|s| {
                    s.set_read_timeout(Some(Duration::from_millis(50)))?;
                    Ok(s)
                });
            let sock = match sock {
                Ok(s) => {
                    let _ = tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let mut buf = [0u8; 4096];
            while !stop2.load(Ordering::SeqCst) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(req) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Some(reply) = dns_reply(&req, &seen2, name, ip) {
                    let _ = sock.send_to(&reply, peer);
                }
            }
        });
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                panic!("test DNS server: cannot listen on {addr}: {e}")
            }
            Err(_) => panic!("test DNS upstream thread died"),
        }
        Upstream {
            stop,
            thread: Some(thread),
            seen,
        }
    }

    /// The names asked so far (lower case, with the trailing dot), in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stops answering and closes the socket (queries then get ICMP port unreachable).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The answer of a test DNS server that knows one name: `name` (no trailing dot) -> `ip`
/// for A queries, NODATA for other types, NXDOMAIN for anything else; every asked name is
/// recorded in `seen` (lower-cased, with its trailing dot).
pub fn dns_reply(
    req: &Message,
    seen: &Mutex<Vec<String>>,
    known: &str,
    ip: Ipv4Addr,
) -> Option<Vec<u8>> {
    let q = req.queries.first()?;
    let name = q.name().to_ascii().to_ascii_lowercase();
    if let Ok(mut s) = seen.lock() {
        s.push(name.clone());
    }
    let mut resp = Message::response(req.id, req.op_code);
    resp.metadata.recursion_desired = req.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.queries = req.queries.clone();
    if name == format!("{known}.") {
        if q.query_type() == RecordType::A {
            resp.answers
                .push(Record::from_rdata(q.name().clone(), 60, RData::A(A(ip))));
        }
    } else {
        resp.metadata.response_code = ResponseCode::NXDomain;
    }
    resp.to_vec().ok()
}

// ---------------------------------------------------------------------------------------
// HTTP over the API socket
// ---------------------------------------------------------------------------------------

/// One response of the Engine API.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// The body, decoded (chunked transfer encoding undone).
    pub body: String,
}

impl ApiResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, `Value::Null` if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

/// Sends one HTTP/1.1 request (Connection: close) to the unix socket `sock`; panics if
/// the exchange fails.
pub fn http_unix(sock: &Path, method: &str, path: &str, body: Option<&Value>) -> ApiResponse {
    try_http_unix(sock, method, path, body).unwrap_or_else(|e| panic!("{e}"))
}

/// [`http_unix`] that reports failures instead of panicking.
pub fn try_http_unix(
    sock: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<ApiResponse, String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    try_http_unix_raw(sock, method, path, body.as_bytes(), COMMAND_LIMIT)
}

/// One HTTP/1.1 request with a raw body (any bytes, JSON or not) and a read timeout of
/// `limit`; an answer that takes longer is an error naming the request.
pub fn try_http_unix_raw(
    sock: &Path,
    method: &str,
    path: &str,
    body: &[u8],
    limit: Duration,
) -> Result<ApiResponse, String> {
    let what = format!("{method} {path} on {}", sock.display());
    let mut s = UnixStream::connect(sock).map_err(|e| format!("{what}: connect: {e}"))?;
    s.set_read_timeout(Some(limit)).ok();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: tether\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // a server may answer (and close) before reading the whole body, e.g. when it refuses
    // the request line: a failed write is an error only if no answer can be read
    let written = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    if raw.is_empty() {
        written.map_err(|e| format!("{what}: write: {e}"))?;
    }
    read.map_err(|e| format!("{what}: read: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{what}: no HTTP header in {raw:?}"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{what}: bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut payload = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        payload = dechunk(&payload);
    }
    Ok(ApiResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&payload).into_owned(),
    })
}

// ---------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------

/// A `tether daemon` of one test, in namespaces of its own (see the module docs).
pub struct Daemon {
    dir: tempfile::TempDir,
    holder: Child,
    daemon: Option<Child>,
    upstream: Option<Upstream>,
    /// Extra `tether daemon` flags of this test ([`Daemon::start_with`]).
    extra: Vec<String>,
    /// `unix://` address of the API socket, for `-H`.
    pub host: String,
    /// Interfaces the test put into the namespace itself (an underlay link), which the
    /// teardown check expects to find.
    keep_links: Vec<String>,
    /// The whole host was killed ([`Daemon::kill_host`]): teardown only cleans up.
    killed: bool,
    /// Extra environment of the daemon process ([`Daemon::set_env`]).
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts a daemon in fresh namespaces with the test DNS upstream running and
    /// `tbox:latest` imported. Panics (with the daemon's log) if any step fails.
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// [`Daemon::start`] with extra `tether daemon` flags (kept across restarts).
    pub fn start_with(extra: &[&str]) -> Daemon {
        Daemon::start_on(extra, &[], |_| {})
    }

    /// [`Daemon::start_with`] where `setup` runs with the holder's pid once the
    /// namespaces exist and before the daemon starts (to give the namespace an underlay
    /// link, say); `keep_links` are the interfaces it adds, which teardown leaves alone.
    pub fn start_on(extra: &[&str], keep_links: &[&str], setup: impl FnOnce(u32)) -> Daemon {
        // SAFETY: geteuid(2) has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "tether's integration tests need root (namespaces, runc, nftables)"
        );
        let tar = image_tar();
        let dir = tempfile::Builder::new()
            .prefix("tether-it-")
            .tempdir()
            .expect("temp dir for the daemon");
        let sock = dir.path().join("sock");
        let mut holder = Command::new("unshare");
        holder
            .args(["--net", "--mount", "--propagation", "private", "--"])
            .args([
                "sh",
                "-c",
                "ip link set lo up && echo ready && exec sleep infinity",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        die_with_parent(&mut holder);
        let mut holder = holder.spawn().expect("run unshare (util-linux)");
        let mut line = String::new();
        let out = holder.stdout.take().expect("holder stdout");
        let _ = BufReader::new(out).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let _ = holder.wait();
            panic!("could not create the test's namespaces with unshare (need root, util-linux and iproute2)");
        }
        let mut d = Daemon {
            host: format!("unix://{}", sock.display()),
            dir,
            holder,
            daemon: None,
            upstream: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            keep_links: keep_links.iter().map(|s| s.to_string()).collect(),
            killed: false,
            env: Vec::new(),
        };
        setup(d.holder.id());
        d.upstream = Some(Upstream::start(&d.netns()));
        d.spawn_daemon();
        let tar_path = d.dir.path().join("tbox.tar");
        std::fs::write(&tar_path, tar).expect("write the image tar");
        let tar_arg = tar_path.display().to_string();
        d.ok(&[
            "import",
            "--change",
            "CMD [\"/bin/sh\"]",
            "--change",
            "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            &tar_arg,
            IMAGE,
        ]);
        d
    }

    /// The test's temporary directory (state, exec-root, socket and log live under it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's `--root`.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The daemon's `--exec-root`.
    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The daemon's log (stdout and stderr of every daemon run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// The daemon's (and the test's) network namespace.
    pub fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.id()))
    }

    /// The private mount namespace the daemon runs in.
    pub fn mntns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/mnt", self.holder.id()))
    }

    /// The daemon's pid, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|c| c.id())
    }

    /// Kills the whole host at once, as a power cut would: SIGKILL to the daemon, then
    /// its containers and the container monitor; its namespaces go at drop, without teardown checks.
    pub fn kill_host(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.killed = true;
        self.force_cleanup();
    }

    /// The last `n` lines of the daemon's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn spawn_daemon(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the daemon log");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.netns().display()))
            .arg(format!("--mount={}", self.mntns().display()))
            .arg("--")
            .arg(TETHER)
            .arg("daemon")
            .arg("--root")
            .arg(self.root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .args(["-H", &self.host])
            .args(["--dns", &format!("127.0.0.1:{UPSTREAM_PORT}")])
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log fd"))
            .stderr(log);
        die_with_parent(&mut cmd);
        self.daemon = Some(cmd.spawn().expect("run nsenter (util-linux)"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(st))) = self.daemon.as_mut().map(|c| c.try_wait()) {
                self.daemon = None;
                panic!("the daemon exited at start ({st}):\n{}", self.log_tail(40));
            }
            if self.socket().exists() && UnixStream::connect(self.socket()).is_ok() {
                let r = http_unix(&self.socket(), "GET", "/_ping", None);
                if r.status == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("the daemon did not answer /_ping within 60 s");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the daemon with SIGTERM and waits for it (SIGKILL after 30 s); returns its
    /// exit status. Containers keep running.
    pub fn stop_daemon(&mut self) -> Option<ExitStatus> {
        self.stop_daemon_quietly().unwrap_or_else(|e| panic!("{e}"))
    }

    fn stop_daemon_quietly(&mut self) -> Result<Option<ExitStatus>, String> {
        let Some(mut child) = self.daemon.take() else {
            return Ok(None);
        };
        signal(child.id(), libc::SIGTERM);
        match reap(&mut child, Duration::from_secs(30)) {
            (st, true) => Ok(st),
            (_, false) => Err("the daemon ignored SIGTERM for 30 s (killed)".into()),
        }
    }

    /// Kills the daemon with SIGKILL, as a crash or the OOM killer would, and reaps it.
    /// Containers and the container monitor keep running; whatever the daemon was doing stops half-way.
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            signal(child.id(), libc::SIGKILL);
            let _ = reap(&mut child, Duration::from_secs(30));
        }
    }

    /// Starts the daemon again after [`Daemon::stop_daemon`] (same root, exec-root, socket
    /// and namespaces) and waits until it answers.
    pub fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "the daemon is already running");
        self.spawn_daemon();
    }

    /// Restarts the daemon: SIGTERM, wait, start again with the same root, exec-root and
    /// socket in the same namespaces. Asserts the first run exited 0.
    pub fn restart(&mut self) {
        let st = self.stop_daemon();
        assert!(
            st.map(|s| s.success()).unwrap_or(false),
            "the daemon's exit after SIGTERM: {st:?}\n{}",
            self.log_tail(40)
        );
        self.spawn_daemon();
    }

    /// Replaces the extra `tether daemon` flags from the daemon's next start on.
    pub fn set_extra(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
    }

    /// Sets (or, with an empty value, removes) a variable of the daemon's environment from
    /// its next start on (`TETHER_FAILPOINTS`, say).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        if !value.is_empty() {
            self.env.push((key.to_string(), value.to_string()));
        }
    }

    /// The test DNS upstream (running unless stopped).
    pub fn upstream(&self) -> &Upstream {
        self.upstream.as_ref().expect("the upstream is gone")
    }

    /// Stops the test DNS upstream: its port then refuses queries.
    pub fn stop_upstream(&mut self) {
        if let Some(u) = self.upstream.as_mut() {
            u.stop();
        }
    }

    /// Runs `tether -H <socket> ARGS...` and returns its output (bounded by [`COMMAND_LIMIT`]).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(TETHER);
        cmd.args(["-H", &self.host]).args(args).env("NO_COLOR", "1");
        run_with_limit(cmd, COMMAND_LIMIT)
    }

    /// [`Daemon::cli`] that must succeed; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(o.success(), "tether {} failed: {o}", args.join(" "));
        o.out().to_string()
    }

    /// [`Daemon::cli`] that must fail; returns the output.
    pub fn fails(&self, args: &[&str]) -> Output {
        let o = self.cli(args);
        assert!(
            !o.success(),
            "tether {} succeeded, expected a failure: {o}",
            args.join(" ")
        );
        o
    }

    /// `tether run -d ARGS...`: returns the new container's id.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut v = vec!["run", "-d"];
        v.extend_from_slice(args);
        let id = self.ok(&v);
        assert!(
            id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "run -d printed {id:?}, expected a 64-hex id"
        );
        id
    }

    /// `tether exec CONTAINER sh -c SCRIPT`.
    pub fn sh(&self, container: &str, script: &str) -> Output {
        self.cli(&["exec", container, "sh", "-c", script])
    }

    /// One Engine API request; returns status and JSON body (`Null` if the body is not JSON).
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let r = self.api_raw(method, path, body);
        (r.status, r.json())
    }

    /// One Engine API request with headers and raw body.
    pub fn api_raw(&self, method: &str, path: &str, body: Option<&Value>) -> ApiResponse {
        http_unix(&self.socket(), method, path, body)
    }

    /// `GET /containers/{id}/json`, asserting it exists.
    pub fn inspect(&self, container: &str) -> Value {
        let (st, v) = self.api("GET", &format!("/containers/{container}/json"), None);
        assert_eq!(st, 200, "inspect {container}: {v}");
        v
    }

    /// The container's address on network `net` (empty if it has none there).
    pub fn ip_of(&self, container: &str, net: &str) -> String {
        self.inspect(container)["NetworkSettings"]["Networks"][net]["IPAddress"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Runs `CMD ARGS...` on the host inside the daemon's network namespace
    /// (`nsenter --net`), e.g. `ip -o link` or `nft list table inet tether`.
    pub fn ns(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.netns().display()))
            .arg("--")
            .args(args);
        run_with_limit(cmd, COMMAND_LIMIT)
    }

    /// Names of the network interfaces in the daemon's namespace (`ip -o link`).
    pub fn links(&self) -> BTreeSet<String> {
        let o = self.ns(&["ip", "-o", "link"]);
        assert!(o.success(), "ip -o link: {o}");
        parse_links(&o.stdout)
    }

    /// The daemon namespace's links once they match `want` (see [`settled`]): links are
    /// deleted off the request path (the daemon's reaper, or the kernel destroying a
    /// removed sandbox), so "nothing left behind" holds a moment after the reply.
    pub fn links_settled(&self, want: &BTreeSet<String>) -> BTreeSet<String> {
        settled(want, || self.links())
    }

    /// Published TCP host ports in tether's IPv4 port maps `pub4` and `pub4_addr`
    /// (`nft -j list map inet tether ...`), one entry per element, sorted.
    pub fn nft_tcp_ports(&self) -> Vec<u64> {
        let mut ports = Vec::new();
        for map in ["pub4", "pub4_addr"] {
            let o = self.ns(&["nft", "-j", "list", "map", "inet", "tether", map]);
            assert!(o.success(), "nft list map {map}: {o}");
            let v: Value = serde_json::from_str(&o.stdout).expect("nft -j output is JSON");
            for item in v["nftables"].as_array().into_iter().flatten() {
                for e in item["map"]["elem"].as_array().into_iter().flatten() {
                    // key: {"concat": [[addr,] proto, port]}
                    let key = e[0]["concat"].as_array().cloned().unwrap_or_default();
                    let n = key.len();
                    if n >= 2 && key[n - 2] == "tcp" {
                        if let Some(p) = key[n - 1].as_u64() {
                            ports.push(p);
                        }
                    }
                }
            }
        }
        ports.sort_unstable();
        ports
    }

    /// Connects to 127.0.0.1:`port` inside the daemon's namespace, sends `send`, closes
    /// its sending side and returns everything received (read timeout `limit`).
    pub fn tcp_exchange(&self, port: u16, send: &str, limit: Duration) -> std::io::Result<String> {
        let send = send.to_string();
        in_netns(&self.netns(), move || {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let mut s = TcpStream::connect_timeout(&addr, limit)?;
            s.set_read_timeout(Some(limit))?;
            s.write_all(send.as_bytes())?;
            s.shutdown(std::net::Shutdown::Write)?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })
    }

    fn container_ids(&self) -> Result<Vec<String>, String> {
        let r = try_http_unix(&self.socket(), "GET", "/containers/json?all=1", None)?;
        if r.status != 200 {
            return Err(format!("list containers: {} {}", r.status, r.body.trim()));
        }
        Ok(r.json()
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect())
    }

    /// Containers the daemon's state dir knows (also when the daemon is not running).
    fn recorded_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.root().join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Pids of `tether monitor` processes of this daemon (their command lines name its
    /// exec-root): one while it has containers, none after a clean stop.
    pub fn monitor_pids(&self) -> Vec<u32> {
        let marker = self.exec_root().display().to_string();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.get(1).is_some_and(|a| a == "monitor")
                && args.iter().any(|a| a.contains(&marker))
            {
                out.push(pid);
            }
        }
        out
    }

    /// Ids of the containers this daemon's container monitor serves (its `list` request);
    /// empty when no monitor runs.
    pub fn monitored(&self) -> Vec<String> {
        use std::io::{Read, Write};
        let sock = self.exec_root().join("monitor.sock");
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) else {
            return Vec::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut out = String::new();
        if s.write_all(b"list\n").is_err() || s.read_to_string(&mut out).is_err() {
            return Vec::new();
        }
        out.lines().map(str::to_string).collect()
    }

    /// The network namespaces the daemon holds open (its sandboxes): one entry per open
    /// nsfs descriptor of a network namespace, as the namespace's inode (`net:[N]`).
    pub fn held_netns(&self) -> Vec<String> {
        let Some(pid) = self.pid() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(l) = std::fs::read_link(e.path()) {
                let l = l.display().to_string();
                if l.starts_with("net:[") {
                    out.push(l);
                }
            }
        }
        out.sort();
        out
    }

    /// Mount points under the test's directory, in the daemon's mount namespace and ours.
    pub fn mounts(&self) -> Vec<String> {
        let marker = self.dir.path().display().to_string();
        let mut out = Vec::new();
        for f in [
            format!("/proc/{}/mountinfo", self.holder.id()),
            "/proc/self/mountinfo".to_string(),
        ] {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for l in text.lines() {
                if let Some(mp) = l.split(' ').nth(4).filter(|mp| mp.starts_with(&marker)) {
                    out.push(format!("{mp} ({f})"));
                }
            }
        }
        out
    }

    /// Cgroups left for container `id` (runc's cgroupsPath is /tether/<id>).
    fn cgroups_of(id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let v2 = PathBuf::from("/sys/fs/cgroup/tether").join(id);
        if v2.exists() {
            out.push(v2.display().to_string());
        }
        for e in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = e.path().join("tether").join(id);
            if p.exists() {
                out.push(p.display().to_string());
            }
        }
        out
    }

    /// Last-resort cleanup when the daemon cannot remove containers: `runc delete -f`
    /// every container of this exec-root, then kill what is left in the mount namespace.
    fn force_cleanup(&self) {
        let runc_root = self.exec_root().join("runc");
        for id in self.recorded_ids() {
            let mut cmd = Command::new("runc");
            cmd.arg("--root")
                .arg(&runc_root)
                .args(["delete", "-f", &id]);
            let _ = run_with_limit(cmd, Duration::from_secs(30));
        }
        for pid in self.monitor_pids() {
            signal(pid, libc::SIGKILL);
        }
    }

    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.killed {
            let _ = self.holder.kill();
            let _ = self.holder.wait();
            return problems;
        }
        let ids = self.recorded_ids();
        if let Some(Ok(Some(st))) = self.daemon.as_mut().map(|c| c.try_wait()) {
            problems.push(format!("the daemon died: {st}"));
            self.daemon = None;
        }
        if self.daemon.is_some() {
            match self.container_ids() {
                Ok(ids) => {
                    for id in ids {
                        let path = format!("/containers/{id}?force=1");
                        match try_http_unix(&self.socket(), "DELETE", &path, None) {
                            Ok(r) if r.status == 204 || r.status == 404 => {}
                            Ok(r) => {
                                problems.push(format!("rm -f {id}: {} {}", r.status, r.body.trim()))
                            }
                            Err(e) => problems.push(e),
                        }
                    }
                }
                Err(e) => problems.push(e),
            }
            match self.stop_daemon_quietly() {
                Ok(Some(st)) if st.success() => {}
                Ok(other) => problems.push(format!("daemon exit after SIGTERM: {other:?}")),
                Err(e) => problems.push(e),
            }
        } else {
            problems.push("the daemon was not running at teardown".into());
        }
        if let Some(mut u) = self.upstream.take() {
            u.stop();
        }
        // with no container left, a stopped daemon leaves the namespace's networking as it
        // found it: no table of its own, no interface but loopback
        let tables = self.ns(&["nft", "list", "tables"]);
        if tables.stdout.contains("tether") {
            problems.push(format!("nftables table left: {}", tables.stdout.trim()));
        }
        // a moment after: the kernel deletes a removed sandbox's veth pairs with the
        // namespace, off the request path (a `run --rm` that just exited)
        let links: Vec<String> = settled(&Vec::new(), || {
            parse_links(&self.ns(&["ip", "-o", "link"]).stdout)
                .into_iter()
                .filter(|l| l != "lo" && !self.keep_links.contains(l))
                .collect()
        });
        if !links.is_empty() {
            problems.push(format!("interfaces left: {links:?}"));
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.monitor_pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let monitors = self.monitor_pids();
        if !monitors.is_empty() {
            problems.push(format!("tether monitor processes left: {monitors:?}"));
        }
        let mounts = self.mounts();
        if !mounts.is_empty() {
            problems.push(format!("mounts left: {mounts:?}"));
        }
        let cgroups: Vec<String> = ids.iter().flat_map(|id| Self::cgroups_of(id)).collect();
        if !cgroups.is_empty() {
            problems.push(format!("cgroups left: {cgroups:?}"));
        }
        if !problems.is_empty() {
            self.force_cleanup();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        problems
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let problems = self.teardown();
        if std::thread::panicking() {
            eprintln!(
                "----- tether daemon log (last 60 lines) -----\n{}\n----- end of daemon log -----",
                self.log_tail(60)
            );
            if !problems.is_empty() {
                eprintln!("teardown problems: {problems:#?}");
            }
        } else if !problems.is_empty() {
            panic!(
                "teardown left things behind: {problems:#?}\n----- daemon log -----\n{}",
                self.log_tail(60)
            );
        }
    }
}

/// Interface names from `ip -o link` output.
fn parse_links(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Helpers for what tests look at inside containers
// ---------------------------------------------------------------------------------------

/// The addresses busybox `nslookup` printed for the answer (the lines after `Name:`), in order.
pub fn nslookup_addrs(out: &str) -> Vec<String> {
    let mut in_answer = false;
    let mut v = Vec::new();
    for l in out.lines() {
        let l = l.trim();
        if l.starts_with("Server:") {
            in_answer = false;
        } else if l.starts_with("Name:") {
            in_answer = true;
        } else if in_answer {
            if let Some(a) = l.strip_prefix("Address:") {
                let a = a.trim();
                let a = a.strip_suffix(":53").unwrap_or(a);
                v.push(a.to_string());
            }
        }
    }
    v
}

/// `get()` once it equals `want`, polled every 50 ms for up to 10 s; returns the last value
/// seen, for the caller's assertion (which fails if it never settled).
pub fn settled<T: PartialEq>(want: &T, mut get: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = get();
        if &now == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// While an operation of container `who` on network `net` is held in a driver step (a
/// `slow.` failpoint): waits until `network rm net` is refused naming `who` (the
/// operation has reached its step), then checks that the daemon answers meanwhile: a
/// network on `spare_subnet` is created and removed, and `ps` lists.
pub fn answers_while_held(d: &Daemon, net: &str, who: &str, spare_subnet: &str) {
    let refused = settled(&true, || {
        let (st, v) = d.api("DELETE", &format!("/networks/{net}"), None);
        st == 409 && v["message"].as_str().unwrap_or_default().contains(who)
    });
    assert!(
        refused,
        "network rm {net} was not refused while {who} was in its driver step"
    );
    d.ok(&["network", "create", "--subnet", spare_subnet, "meanwhile"]);
    d.ok(&["network", "rm", "meanwhile"]);
    d.ok(&["ps", "-q"]);
}
