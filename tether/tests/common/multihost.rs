//! Several tether hosts on one machine, for the overlay tests.
//!
//! An **underlay** network namespace holds a bridge `ul0` (192.168.77.254/24) and a real
//! etcd (Debian's `etcd-server`, `/usr/bin/etcd`) listening on 192.168.77.254:2379 with a
//! temporary data directory. Each **host** is a [`Daemon`] in namespaces of its own whose
//! `eth0` is a veth to `ul0` with 192.168.77.N/24, started with
//! `--cluster-store etcd://192.168.77.254:2379 --cluster-advertise eth0`.
//! Nothing touches the machine's own namespaces; dropping a [`Cluster`] stops the daemons
//! (with their usual checks), etcd, and the underlay.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{die_with_parent, run_with_limit, wait_until, Daemon, COMMAND_LIMIT};

/// The underlay's own address, where etcd listens.
pub const STORE_IP: &str = "192.168.77.254";
/// The store flag the hosts get.
pub const STORE: &str = "etcd://192.168.77.254:2379";
/// Where Debian's etcd-server installs etcd.
pub const ETCD: &str = "/usr/bin/etcd";

/// The underlay namespace with its bridge and etcd.
pub struct Underlay {
    holder: Child,
    etcd: Option<Child>,
    data: tempfile::TempDir,
}

impl Underlay {
    /// Makes the underlay namespace and its bridge, and starts etcd in it.
    pub fn start() -> Underlay {
        assert!(
            std::path::Path::new(ETCD).exists(),
            "the overlay tests need etcd: apt-get install etcd-server"
        );
        let mut holder = Command::new("unshare");
        holder
            .args(["--net", "--"])
            .args([
                "sh",
                "-c",
                &format!("ip link set lo up && ip link add ul0 type bridge && ip addr add {STORE_IP}/24 dev ul0 && ip link set ul0 up && echo ready && exec sleep infinity"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        die_with_parent(&mut holder);
        let mut holder = holder.spawn().expect("run unshare");
        let mut line = String::new();
        let out = holder.stdout.take().expect("holder stdout");
        let _ = BufReader::new(out).read_line(&mut line);
        assert_eq!(
            line.trim(),
            "ready",
            "could not make the underlay namespace"
        );
        let data = tempfile::Builder::new()
            .prefix("tether-etcd-")
            .tempdir()
            .expect("etcd data dir");
        let mut u = Underlay {
            holder,
            etcd: None,
            data,
        };
        u.start_etcd();
        u
    }

    /// The underlay's network namespace.
    pub fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.id()))
    }

    /// Runs a command inside the underlay namespace.
    pub fn ns(&self, args: &[&str]) -> super::Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.netns().display()))
            .arg("--")
            .args(args);
        run_with_limit(cmd, COMMAND_LIMIT)
    }

    /// Starts etcd (again, on the same data) and waits until it answers.
    pub fn start_etcd(&mut self) {
        assert!(self.etcd.is_none(), "etcd already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.path().join("etcd.log"))
            .expect("etcd log");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.netns().display()))
            .args(["--", ETCD, "--name", "t", "--data-dir"])
            .arg(self.data.path().join("data"))
            .args([
                "--listen-client-urls",
                &format!("http://{STORE_IP}:2379"),
                "--advertise-client-urls",
                &format!("http://{STORE_IP}:2379"),
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-cluster",
                "t=http://127.0.0.1:2380",
            ])
            .env("ETCD_UNSUPPORTED_ARCH", "amd64")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        die_with_parent(&mut cmd);
        self.etcd = Some(cmd.spawn().expect("run etcd"));
        let ns = self.netns();
        wait_until("etcd answers", Duration::from_secs(30), || {
            let ns = ns.clone();
            super::in_netns(&ns, || {
                std::net::TcpStream::connect_timeout(
                    &format!("{STORE_IP}:2379").parse().expect("addr"),
                    Duration::from_millis(200),
                )
                .is_ok()
            })
        });
    }

    /// Stops etcd (SIGTERM, then waits).
    pub fn stop_etcd(&mut self) {
        if let Some(mut c) = self.etcd.take() {
            // SAFETY: kill(2) on our own child.
            // (SIGCONT: a paused etcd handles its SIGTERM only once thawed)
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
                libc::kill(c.id() as i32, libc::SIGCONT);
            }
            let _ = c.wait();
        }
    }

    /// Freezes etcd (SIGSTOP): its connections stay open and nothing answers, as with a
    /// store that hangs; [`Underlay::resume_etcd`] thaws it, and so does stopping it (a
    /// failed test's clean-up).
    pub fn pause_etcd(&self) {
        self.signal_etcd(libc::SIGSTOP);
    }

    /// Thaws etcd after [`Underlay::pause_etcd`] (SIGCONT).
    pub fn resume_etcd(&self) {
        self.signal_etcd(libc::SIGCONT);
    }

    fn signal_etcd(&self, sig: i32) {
        let c = self.etcd.as_ref().expect("etcd runs");
        // SAFETY: kill(2) on our own child.
        let r = unsafe { libc::kill(c.id() as i32, sig) };
        assert_eq!(r, 0, "signal {sig} to etcd");
    }

    /// Adds host number `n` (1..253): a veth `hN` on `ul0`, its peer `eth0` with
    /// 192.168.77.N/24 in the namespace of process `pid`.
    pub fn plug(&self, n: u8, pid: u32) {
        let host_if = format!("h{n}");
        for args in [
            vec![
                "ip",
                "link",
                "add",
                &host_if,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &pid.to_string(),
            ],
            vec!["ip", "link", "set", &host_if, "master", "ul0", "up"],
        ] {
            let o = self.ns(&args.iter().map(|s| &**s).collect::<Vec<&str>>());
            assert!(o.success(), "underlay: {args:?}: {o}");
        }
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/proc/{pid}/ns/net")).args([
            "--",
            "sh",
            "-c",
            &format!("ip addr add 192.168.77.{n}/24 dev eth0 && ip link set eth0 up"),
        ]);
        let o = run_with_limit(cmd, COMMAND_LIMIT);
        assert!(o.success(), "host {n}: address eth0: {o}");
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        self.stop_etcd();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// An underlay with etcd and `n` hosts on it. Hosts are dropped before the underlay.
pub struct Cluster {
    /// The hosts, host 1 first (192.168.77.1, ...).
    pub hosts: Vec<Daemon>,
    /// The underlay and etcd.
    pub underlay: Underlay,
}

impl Cluster {
    /// Starts etcd and `n` hosts with the lease TTL `ttl` seconds, and waits until every
    /// host has joined.
    pub fn start(n: u8, ttl: u64) -> Cluster {
        let underlay = Underlay::start();
        let mut hosts = Vec::new();
        for i in 1..=n {
            let ttl = ttl.to_string();
            let extra = [
                "--cluster-store",
                STORE,
                "--cluster-advertise",
                "eth0",
                "--cluster-ttl",
                &ttl,
            ];
            let d = Daemon::start_on(&extra, &["eth0"], |pid| underlay.plug(i, pid));
            hosts.push(d);
        }
        let c = Cluster { hosts, underlay };
        for h in &c.hosts {
            wait_until(
                "every host joined the cluster",
                Duration::from_secs(30),
                || {
                    let out = h.cli(&["node", "ls"]).stdout;
                    out.matches("Ready").count() == n as usize
                },
            );
        }
        c
    }

    /// Host `i` (1-based).
    pub fn host(&self, i: usize) -> &Daemon {
        &self.hosts[i - 1]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // the daemons leave while etcd still runs; then the underlay goes
        self.hosts.clear();
    }
}
