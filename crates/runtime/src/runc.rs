//! The runc command-line interface: the OCI runtime-spec operations (runtime.md: create,
//! start, kill, delete, state) plus `exec`, as runc(8) implements them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::RuntimeError;

/// A spawned child's pidfd, to be reaped: by [`Reap::wait`], or (when the waiting future
/// is dropped) by a thread, so that no zombie is left.
struct Reap(Option<OwnedFd>);

impl Reap {
    /// Waits for the child's exit without blocking a thread: the pidfd turns readable.
    /// Returns its wait(2) status.
    async fn wait(mut self) -> std::io::Result<i32> {
        let Some(raw) = self.0.as_ref().map(AsRawFd::as_raw_fd) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        // SAFETY: the pidfd belongs to `self`, which outlives `afd` (a local, dropped first
        // also when this future is dropped).
        let afd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(raw, tokio::io::Interest::READABLE)?
        };
        loop {
            let mut ready = afd.readable().await?;
            // SAFETY: as above, the pidfd is open.
            let pidfd = unsafe { BorrowedFd::borrow_raw(raw) };
            match crate::spawn::wait_pidfd(pidfd, true)? {
                Some(st) => {
                    drop(afd);
                    // reaped: nothing is left for Drop
                    self.0 = None;
                    return Ok(st);
                }
                None => ready.clear_ready(),
            }
        }
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            std::thread::spawn(move || crate::spawn::wait_pidfd(fd.as_fd(), false));
        }
    }
}

/// A runc binary and its state directory (`runc --root`).
#[derive(Clone, Debug)]
pub struct Runc {
    /// The runc binary (`runc` on PATH by default).
    pub binary: PathBuf,
    /// runc's state root, e.g. `<exec-root>/runc`.
    pub root: PathBuf,
}

/// Extracts runc's own message from its stderr (`time=".." level=error msg="..."` or JSON
/// log lines), falling back to the whole text.
pub fn runc_message(stderr: &str) -> String {
    for line in stderr.lines().rev() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
                if v.get("level").and_then(|l| l.as_str()) == Some("error") {
                    return m.to_string();
                }
            }
        }
        if let Some(i) = line.find("msg=\"") {
            let rest = &line[i + 5..];
            let end = rest.rfind('"').unwrap_or(rest.len());
            return rest[..end].replace("\\\"", "\"");
        }
    }
    stderr.trim().to_string()
}

impl Runc {
    /// A runc command with the global flags set.
    pub fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `runc --root ROOT ARGS...` and returns its stdout. Started with
    /// [`crate::spawn`]: the child gets none of the daemon's descriptors (thousands with
    /// many containers), at a cost that does not grow with them.
    ///
    /// Errors: runc cannot be started (not installed), or it failed (its own message).
    async fn run(&self, op: &str, args: &[&str]) -> Result<String, RuntimeError> {
        let cannot = |e: std::io::Error| RuntimeError::Runc {
            op: op.into(),
            msg: format!(
                "cannot run {}: {e} (is runc installed?)",
                self.binary.display()
            ),
        };
        let mut c = crate::spawn::Command::new(&self.binary);
        c.arg("--root").arg(&self.root).args(args);
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| crate::io_err(format!("pipe for runc {op}"))(e.into()))
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let null = crate::spawn::null().map_err(crate::io_err("/dev/null"))?;
        let child = c
            .spawn([null, out_w.as_fd(), err_w.as_fd()])
            .map_err(cannot)?;
        drop((out_w, err_w));
        let reap = Reap(Some(child.pidfd));
        let read = |fd: OwnedFd| async move {
            let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
            let mut b = Vec::new();
            rx.read_to_end(&mut b).await?;
            Ok::<_, std::io::Error>(b)
        };
        let (out, err) = tokio::join!(read(out_r), read(err_r));
        let status = reap.wait().await.map_err(cannot)?;
        let (out, err) = (out.map_err(cannot)?, err.map_err(cannot)?);
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(String::from_utf8_lossy(&out).into_owned())
        } else {
            Err(RuntimeError::Runc {
                op: op.into(),
                msg: runc_message(&String::from_utf8_lossy(&err)),
            })
        }
    }

    /// `runc start ID`: runs the created container's process.
    ///
    /// runc releases the process by reading the container's `exec.fifo` and removes the
    /// fifo afterwards. A process that exits at once (`run --rm IMAGE true`) makes the
    /// container monitor delete the container's runc state in between, and runc then
    /// fails to remove a fifo that is already gone ("remove .../exec.fifo: no such file or
    /// directory"); the process did start, so that is no error. (Failing to *open* the
    /// fifo is.)
    pub async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        match self.run("start", &["start", id]).await {
            Ok(_) => Ok(()),
            Err(RuntimeError::Runc { msg, .. })
                if msg.contains("remove")
                    && msg.contains("exec.fifo")
                    && msg.contains("no such file or directory") =>
            {
                tracing::debug!(container = %id, "runc start: the process exited before runc removed exec.fifo");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `runc kill [--all] ID SIGNAL` (signal name like "TERM" or "SIGKILL", or a number).
    pub async fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError> {
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.push(id);
        args.push(signal);
        self.run("kill", &args).await.map(|_| ())
    }

    /// `runc pause ID`: freezes every process of the container (cgroup freezer).
    pub async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("pause", &["pause", id]).await.map(|_| ())
    }

    /// `runc resume ID`: thaws a container frozen by [`Runc::pause`].
    pub async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run("resume", &["resume", id]).await.map(|_| ())
    }

    /// `runc ps --format json ID`: the host pids of every process in the container's
    /// cgroup.
    pub async fn pids(&self, id: &str) -> Result<Vec<i32>, RuntimeError> {
        let out = self.run("ps", &["ps", "--format", "json", id]).await?;
        serde_json::from_str::<Option<Vec<i32>>>(out.trim())
            .map(Option::unwrap_or_default)
            .map_err(|e| RuntimeError::Runc {
                op: "ps".into(),
                msg: format!("unreadable pid list {out:?}: {e}"),
            })
    }

    /// `runc events --stats ID`: the container's cgroup statistics once, runc's
    /// `types.Stats` shape (`cpu.usage.{total,percpu,kernel,user}` in ns,
    /// `cpu.throttling`, `memory.usage.{usage,limit,max,failcnt}`, `memory.raw`,
    /// `pids.{current,limit}`, `blkio.*`), the `data` of runc's stats event.
    pub async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let out = self.run("events", &["events", "--stats", id]).await?;
        let v: serde_json::Value =
            serde_json::from_str(out.trim()).map_err(|e| RuntimeError::Runc {
                op: "events".into(),
                msg: format!("unreadable stats: {e}"),
            })?;
        Ok(v.get("data").cloned().unwrap_or(v))
    }

    /// `runc update ID` with the given cgroup limits, each a flag of runc update(8):
    /// `("memory", "67108864")`, `("cpu-share", "512")`, `("pids-limit", "100")`, ...
    pub async fn update(&self, id: &str, flags: &[(&str, String)]) -> Result<(), RuntimeError> {
        let mut args: Vec<String> = vec!["update".into()];
        for (k, v) in flags {
            args.push(format!("--{k}"));
            args.push(v.clone());
        }
        args.push(id.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run("update", &args).await.map(|_| ())
    }

    /// `runc delete [--force] ID`; a container runc does not know is fine.
    pub async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut args = vec!["delete"];
        if force {
            args.push("--force");
        }
        args.push(id);
        match self.run("delete", &args).await {
            Ok(_) => Ok(()),
            Err(RuntimeError::Runc { msg, .. })
                if msg.contains("does not exist") || msg.contains("not exist") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `runc state ID` as JSON (runtime-spec state), None when runc does not know it.
    pub async fn state(&self, id: &str) -> Result<Option<serde_json::Value>, RuntimeError> {
        match self.run("state", &["state", id]).await {
            Ok(s) => Ok(serde_json::from_str(&s).ok()),
            Err(RuntimeError::Runc { msg, .. }) if msg.contains("does not exist") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A `runc exec --process FILE [--detach] [--tty] ID` command, stdio to be set by the
    /// caller; with `tty` (and `"terminal": true` in the process) runc allocates a terminal
    /// and copies between it and its own stdio.
    pub fn exec(
        &self,
        id: &str,
        process: &Path,
        detach: bool,
        tty: bool,
    ) -> tokio::process::Command {
        let mut c = self.command();
        c.arg("exec").arg("--process").arg(process);
        if detach {
            c.arg("--detach");
        }
        if tty {
            c.arg("--tty");
        }
        c.arg(id);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for runc: a script that answers `state` on stdout, fails `kill` with
    /// runc's log line on stderr, and sleeps for `pause`; run through the daemon's spawn
    /// path (pipes, pidfd).
    #[tokio::test]
    async fn output_errors_and_a_dropped_wait_go_through_the_spawn_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("fake-runc");
        std::fs::write(
            &fake,
            "#!/bin/sh\nshift 2\ncase $1 in\n\
             state) echo '{\"id\": \"'$2'\", \"status\": \"running\"}';;\n\
             kill) echo 'time=\"x\" level=error msg=\"container '$2' is not running\"' >&2; exit 1;;\n\
             pause) sleep 0.3;;\n\
             esac\n",
        )
        .expect("write");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let r = Runc {
            binary: fake,
            root: dir.path().join("root"),
        };
        let st = r.state("c1").await.expect("state").expect("known");
        assert_eq!(st["id"], "c1");
        match r.kill("c1", "TERM", false).await {
            Err(RuntimeError::Runc { op, msg }) => {
                assert_eq!(
                    (op.as_str(), msg.as_str()),
                    ("kill", "container c1 is not running")
                )
            }
            other => panic!("kill: {other:?}"),
        }
        // a wait given up half-way (a client gone) leaves no zombie
        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), r.pause("c1")).await;
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let me = std::process::id();
        let zombies = std::fs::read_dir("/proc")
            .expect("proc")
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter(|s| s.contains("(fake-runc)"))
            .filter(|s| {
                let rest = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
                let mut f = rest.split(' ');
                f.next() == Some("Z") && f.next() == Some(me.to_string().as_str())
            })
            .count();
        assert_eq!(zombies, 0, "zombie children left");
        let missing = Runc {
            binary: dir.path().join("no-runc"),
            root: dir.path().join("root"),
        };
        match missing.state("c1").await {
            Err(RuntimeError::Runc { msg, .. }) => {
                assert!(msg.contains("is runc installed?"), "{msg}")
            }
            other => panic!("missing runc: {other:?}"),
        }
    }
    #[test]
    fn extracts_runc_messages() {
        assert_eq!(
            runc_message("time=\"2024\" level=error msg=\"exec: \\\"nope\\\": executable file not found in $PATH\"\n"),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(
            runc_message("{\"level\":\"error\",\"msg\":\"boom\",\"time\":\"x\"}\n"),
            "boom"
        );
        assert_eq!(runc_message("plain\n"), "plain");
    }
}
