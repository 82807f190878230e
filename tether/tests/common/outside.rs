//! An "outside" host for tests: a network namespace beyond the daemon's "host", joined to
//! it by a veth pair — `vout0` with 10.99.0.1/24 on the daemon's side, `vin0` with
//! 10.99.0.2/24 in the outside namespace (default route via 10.99.0.1), where busybox `nc`
//! answers "outside" on TCP 7777. Both addresses live only in the test's own namespaces.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{in_netns, run_with_limit, wait_until, Daemon, Output, COMMAND_LIMIT};

/// The daemon-side address of the veth to the outside namespace.
pub const HOST_SIDE: &str = "10.99.0.1";
/// The outside namespace's address.
pub const OUTSIDE: &str = "10.99.0.2";
/// The daemon-side interface.
pub const HOST_IF: &str = "vout0";
/// The outside namespace's interface.
pub const OUTSIDE_IF: &str = "vin0";

/// The outside namespace, its holder process and its `nc` server; all killed on drop.
pub struct Outside {
    holder: Child,
    server: Option<Child>,
}

impl Outside {
    /// Makes the namespace, the veth pair and the server. Panics when a step fails.
    pub fn start(d: &Daemon) -> Outside {
        let holder = Command::new("unshare")
            .args(["--net", "--", "sleep", "infinity"])
            .spawn()
            .expect("unshare");
        let ons = format!("/proc/{}/ns/net", holder.id());
        wait_until("outside namespace", Duration::from_secs(10), || {
            std::fs::read_link(&ons).ok() != std::fs::read_link("/proc/self/ns/net").ok()
        });
        let ons2 = ons.clone();
        let ok = in_netns(&d.netns(), move || {
            let run = |args: &[&str]| {
                Command::new("ip")
                    .args(args)
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            };
            run(&[
                "link", "add", HOST_IF, "type", "veth", "peer", "name", OUTSIDE_IF, "netns", &ons2,
            ]) && run(&["addr", "add", &format!("{HOST_SIDE}/24"), "dev", HOST_IF])
                && run(&["link", "set", HOST_IF, "up"])
        });
        assert!(ok, "veth to the outside namespace");
        let mut me = Outside {
            holder,
            server: None,
        };
        let o = me.sh(&format!(
            "ip link set lo up && ip addr add {OUTSIDE}/24 dev {OUTSIDE_IF} && ip link set {OUTSIDE_IF} up && ip route add default via {HOST_SIDE}"
        ));
        assert!(o.success(), "outside addresses: {o}");
        me.server = Some(
            Command::new("nsenter")
                .args([
                    &format!("--net={ons}"),
                    "--",
                    "busybox",
                    "nc",
                    "-ll",
                    "-p",
                    "7777",
                    "-e",
                    "echo",
                    "outside",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("outside server"),
        );
        me
    }

    /// The outside namespace (`/proc/PID/ns/net` of its holder).
    pub fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.id()))
    }

    /// Runs `sh -c script` inside the outside namespace.
    pub fn sh(&self, script: &str) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.netns().display()))
            .args(["--", "sh", "-c", script]);
        run_with_limit(cmd, COMMAND_LIMIT)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        for c in self.server.iter_mut().chain([&mut self.holder]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
