//! Exec instances (Docker API "Exec" endpoints): a process run in a running container with
//! `runc exec`, its output streamed to the caller, its exit code kept for inspection.

use std::process::Stdio;

use bollard_stubs::models::ExecConfig;
use serde_json::json;

use crate::{Engine, EngineError};

/// An exec instance.
#[derive(Clone, Debug)]
pub struct Exec {
    /// 64-hex id.
    pub id: String,
    /// The container's id.
    pub container_id: String,
    /// The request.
    pub config: ExecConfig,
    /// Running now.
    pub running: bool,
    /// Exit code once finished.
    pub exit_code: Option<i64>,
    /// Pid while running.
    pub pid: i32,
}

/// A started exec process: the `runc exec` child, its stdio piped (with `-t`, runc puts
/// the process on a terminal and copies between it and these pipes).
pub struct ExecProcess {
    /// The `runc exec` child; None when the process could not be started ([`Self::failed`]).
    pub child: Option<tokio::process::Child>,
    /// The stream is raw, not multiplexed: the start request's `Tty` (Docker frames
    /// the output by the start request, whatever the exec was created with).
    pub tty: bool,
    /// Why the process could not start and its exit code, as Docker reports it in the
    /// stream: 127 for a command that is not found, 126 for one that cannot be run or
    /// an unknown user (the message is runc's, prefixed `OCI runtime exec failed`).
    pub failed: Option<(String, i64)>,
    /// The bytes that detach the client from the exec's stdin (`DetachKeys`, default
    /// ctrl-p ctrl-q); empty when stdin is not attached.
    pub detach_keys: Vec<u8>,
}

/// The body of `POST /exec/{id}/start`.
#[derive(Clone, Debug, Default)]
pub struct ExecStart {
    /// Run it without a client: its output is dropped.
    pub detach: bool,
    /// `ConsoleSize` ([height, width], API 1.42+): the size the exec's terminal starts
    /// at, replacing the one given at create.
    pub console_size: Option<Vec<usize>>,
    /// `Tty`: the output is sent raw (true) or multiplexed (false, the default).
    pub tty: bool,
}

/// The default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Parses a detach-keys spec (`DetachKeys` of exec create, `detachKeys` of attach,
/// Docker's `--detach-keys`): comma-separated keys, each one character or `ctrl-X` with
/// X one of `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`. Empty gives the default, ctrl-p,ctrl-q.
///
/// # Errors
/// [`EngineError::InvalidParam`] naming the bad key and the valid forms.
pub fn detach_keys(spec: &str) -> Result<Vec<u8>, EngineError> {
    if spec.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let mut out = Vec::new();
    for k in spec.split(',') {
        let bad = || {
            EngineError::InvalidParam(format!(
                "Invalid detach keys ({spec}): {k:?} is not a key; use one character or ctrl-X (X: a-z, @, [, \\, ], ^, _), comma-separated"
            ))
        };
        if let Some(x) = k.strip_prefix("ctrl-") {
            let mut cs = x.chars();
            let (Some(c), None) = (cs.next(), cs.next()) else {
                return Err(bad());
            };
            out.push(match c.to_ascii_lowercase() {
                c @ 'a'..='z' => c as u8 - b'a' + 1,
                '@' => 0,
                '[' => 27,
                '\\' => 28,
                ']' => 29,
                '^' => 30,
                '_' => 31,
                _ => return Err(bad()),
            });
        } else {
            let b = k.as_bytes();
            if b.len() != 1 {
                return Err(bad());
            }
            out.push(b[0]);
        }
    }
    Ok(out)
}

/// Checks that `cmd` can be run in the root filesystem `rootfs` as runc would run it:
/// a name without `/` is looked up in `PATH` (from `env`, else Docker's default), a path
/// is taken from `cwd`. Paths under one of `mounts` (the spec's mount destinations) are
/// not visible from here and are left to runc. Errors are Docker's stream message and
/// exit code: 127 not found, 126 not executable.
fn check_command(
    rootfs: &std::path::Path,
    cmd: &str,
    env: &[String],
    cwd: &str,
    mounts: &[String],
) -> Result<(), (String, i64)> {
    let under_mount = |p: &str| {
        mounts.iter().any(|m| {
            let m = m.trim_end_matches('/');
            !m.is_empty() && (p == m || p.starts_with(&format!("{m}/")))
        })
    };
    let fail = |what: String, code: i64| {
        Err((
            format!("OCI runtime exec failed: exec failed: unable to start container process: {what}: unknown"),
            code,
        ))
    };
    let runnable = |abs: &str| -> Option<bool> {
        let p = tether_image::build::context::resolve(rootfs, abs, true).ok()??;
        let m = std::fs::metadata(&p).ok()?;
        Some(m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
    };
    if cmd.contains('/') {
        let abs = if cmd.starts_with('/') {
            cmd.to_string()
        } else {
            format!("{}/{cmd}", cwd.trim_end_matches('/'))
        };
        if under_mount(&abs) {
            return Ok(());
        }
        return match runnable(&abs) {
            Some(true) => Ok(()),
            Some(false) => fail(format!("exec: \"{cmd}\": permission denied"), 126),
            None => fail(
                format!("exec: \"{cmd}\": stat {cmd}: no such file or directory"),
                127,
            ),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = false;
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let abs = format!("{}/{cmd}", dir.trim_end_matches('/'));
        if under_mount(&abs) {
            return Ok(());
        }
        match runnable(&abs) {
            Some(true) => return Ok(()),
            Some(false) => denied = true,
            None => {}
        }
    }
    if denied {
        return fail(format!("exec: \"{cmd}\": permission denied"), 126);
    }
    fail(
        format!("exec: \"{cmd}\": executable file not found in $PATH"),
        127,
    )
}

/// An exec's exit code from its wait: the process's code, 128 + the signal that ended
/// it, or 126 when it could not be waited for.
pub fn exit_code(st: &std::io::Result<std::process::ExitStatus>) -> i64 {
    match st {
        Ok(s) => s.code().map(i64::from).unwrap_or_else(|| {
            128 + i64::from(std::os::unix::process::ExitStatusExt::signal(s).unwrap_or(9))
        }),
        Err(_) => 126,
    }
}

impl Engine {
    /// POST /containers/{id}/exec. Errors: 404; 409 not running or paused; 400 no command.
    pub async fn create_exec(&self, key: &str, cfg: ExecConfig) -> Result<String, EngineError> {
        let st = self.state.lock().await;
        let c = st.container(key)?;
        if c.state.status != "running" {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        if let Some(cs) = &cfg.console_size {
            console_size(cs)?;
        }
        if cfg.cmd.as_ref().map(|v| v.is_empty()).unwrap_or(true) {
            return Err(EngineError::InvalidParam(
                "No exec command specified".into(),
            ));
        }
        let id = crate::state::new_id();
        let e = Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config: cfg,
            running: false,
            exit_code: None,
            pid: 0,
        };
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), e);
        Ok(id)
    }

    /// POST /exec/{id}/start: spawns `runc exec` with piped stdio; the caller streams and
    /// then calls [`Engine::finish_exec`]. Errors: 404; 409 already started or container stopped.
    pub async fn start_exec(&self, id: &str) -> Result<ExecProcess, EngineError> {
        let e = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))?;
        if e.running || e.exit_code.is_some() {
            return Err(EngineError::Conflict(format!(
                "Exec {id} has already been started"
            )));
        }
        let st = self.state.lock().await;
        let c = st.containers.get(&e.container_id).ok_or_else(|| {
            EngineError::NotFound(format!("No such container: {}", e.container_id))
        })?;
        if c.state.status != "running" {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        let bundle = self.cfg.exec_root.join("bundles").join(&c.id);
        let spec: serde_json::Value = std::fs::read(bundle.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| EngineError::Internal("container spec missing".into()))?;
        let mut process = spec.get("process").cloned().unwrap_or(json!({}));
        // the container's environment as its process got it (with the legacy link
        // variables), then the exec's own
        let base: Vec<String> = process
            .get("env")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_else(|| c.config.env.clone().unwrap_or_default());
        let env = crate::containers::merge_env(&base, &e.config.env.clone().unwrap_or_default());
        process["args"] = json!(e.config.cmd.clone().unwrap_or_default());
        process["env"] = json!(env);
        let tty = e.config.tty.unwrap_or(false);
        process["terminal"] = json!(tty);
        // the terminal starts at the client's size (runc sizes it before the exec)
        match e.config.console_size.as_deref().map(console_size) {
            Some(Ok(Some((h, w)))) if tty => {
                process["consoleSize"] = json!({"height": h, "width": w});
            }
            _ => {
                if let Some(p) = process.as_object_mut() {
                    p.remove("consoleSize");
                }
            }
        }
        if let Some(w) = e.config.working_dir.clone().filter(|w| !w.is_empty()) {
            process["cwd"] = json!(w);
        }
        let detach_keys = if e.config.attach_stdin.unwrap_or(false) {
            detach_keys(e.config.detach_keys.as_deref().unwrap_or(""))?
        } else {
            Vec::new()
        };
        // the running container's root as its processes see it (the daemon holds no
        // mount of it once the container started)
        let merged = std::path::PathBuf::from(format!("/proc/{}/root", c.state.pid));
        let refuse = |me: &Self, failed: (String, i64)| {
            if let Some(x) = me
                .execs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(id)
            {
                x.running = true;
            }
            Ok(ExecProcess {
                child: None,
                tty,
                failed: Some(failed),
                detach_keys: Vec::new(),
            })
        };
        if let Some(u) = e.config.user.clone().filter(|u| !u.is_empty()) {
            let resolved = tether_runtime::spec::resolve_identity(
                &merged,
                &u,
                &c.host_config.group_add.clone().unwrap_or_default(),
            );
            match resolved {
                Ok(id) => {
                    process["user"] =
                        json!({"uid": id.uid, "gid": id.gid, "additionalGids": id.additional_gids});
                }
                Err(err) => {
                    return refuse(
                        self,
                        (
                            format!("OCI runtime exec failed: exec failed: unable to start container process: {err}: unknown"),
                            126,
                        ),
                    )
                }
            }
        }
        let mounts: Vec<String> = spec
            .get("mounts")
            .and_then(|m| m.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|m| {
                        m.get("destination")
                            .and_then(|d| d.as_str())
                            .map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let cwd = process
            .get("cwd")
            .and_then(|v| v.as_str())
            .unwrap_or("/")
            .to_string();
        let argv0 = e
            .config
            .cmd
            .as_ref()
            .and_then(|c| c.first())
            .cloned()
            .unwrap_or_default();
        if let Err(failed) = check_command(&merged, &argv0, &env, &cwd, &mounts) {
            return refuse(self, failed);
        }
        let pfile = bundle.join(format!("exec-{id}.json"));
        let c_id = c.id.clone();
        std::fs::write(&pfile, serde_json::to_vec(&process).unwrap_or_default())?;
        // with a terminal: `tether shim-exec` (runc takes a console socket only when it
        // detaches, so a small subreaper relays the terminal and reports the exit code)
        let mut cmd = if tty {
            let mut c = tokio::process::Command::new(&self.cfg.exe);
            c.arg("shim-exec")
                .arg(&c_id)
                .arg(&pfile)
                .arg(&self.runc.binary)
                .arg(&self.runc.root);
            c.arg(self.exec_console_socket(id));
            c
        } else {
            self.runc.exec(&c_id, &pfile, false, false)
        };
        drop(st);
        let stdin = if e.config.attach_stdin.unwrap_or(false) {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        let child = cmd
            .spawn()
            .map_err(|err| EngineError::Internal(format!("cannot run runc exec: {err}")))?;
        if let Some(x) = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            x.running = true;
            x.pid = child.id().map(|p| p as i32).unwrap_or(0);
        }
        Ok(ExecProcess {
            child: Some(child),
            tty,
            failed: None,
            detach_keys,
        })
    }

    /// POST /exec/{id}/start: sets the console size when `opts` gives one, then starts the
    /// process ([`Engine::start_exec`]). Detached, the engine runs it to its end (its
    /// output dropped, its stdin closed, its exit code recorded) and returns None;
    /// otherwise the caller streams the returned process and then calls
    /// [`Engine::finish_exec`].
    ///
    /// Errors: 404 no such exec (or its container is gone); 400 a bad console size;
    /// 409 already started or the container is not running.
    pub async fn run_exec(
        self: &std::sync::Arc<Self>,
        id: &str,
        opts: ExecStart,
    ) -> Result<Option<ExecProcess>, EngineError> {
        if let Some(size) = opts.console_size {
            self.set_exec_console_size(id, size)?;
        }
        let mut proc = self.start_exec(id).await?;
        if let Some((m, code)) = proc.failed.clone() {
            if opts.detach {
                self.finish_exec(id, code);
                return Err(EngineError::Internal(m));
            }
        }
        if !opts.detach {
            proc.tty = opts.tty;
            return Ok(Some(proc));
        }
        let engine = self.clone();
        let id = id.to_string();
        let Some(mut child) = proc.child else {
            return Ok(None);
        };
        tokio::spawn(async move {
            drop(child.stdin.take());
            let drain = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| async move {
                if let Some(mut r) = r {
                    let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
                }
            };
            let out = drain(
                child
                    .stdout
                    .take()
                    .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            );
            let err = drain(
                child
                    .stderr
                    .take()
                    .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            );
            let (_, _, st) = tokio::join!(out, err, child.wait());
            engine.finish_exec(&id, exit_code(&st));
        });
        Ok(None)
    }

    /// Records an exec's exit code.
    pub fn finish_exec(&self, id: &str, code: i64) {
        if id.len() >= 12 {
            let _ = std::fs::remove_file(self.exec_console_socket(id).with_extension("ctl"));
        }
        if let Some(x) = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            x.running = false;
            x.exit_code = Some(code);
            x.pid = 0;
        }
    }

    /// GET /exec/{id}/json.
    pub fn inspect_exec(&self, id: &str) -> Result<serde_json::Value, EngineError> {
        let g = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        let e = g
            .get(id)
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))?;
        let cmd = e.config.cmd.clone().unwrap_or_default();
        Ok(json!({
            "ID": e.id, "Running": e.running, "ExitCode": e.exit_code, "ContainerID": e.container_id,
            "OpenStdin": e.config.attach_stdin.unwrap_or(false), "OpenStdout": true, "OpenStderr": true,
            "CanRemove": false, "DetachKeys": "", "Pid": e.pid,
            "ProcessConfig": {"tty": e.config.tty.unwrap_or(false), "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.iter().skip(1).collect::<Vec<_>>(), "privileged": e.config.privileged.unwrap_or(false), "user": e.config.user.clone().unwrap_or_default()}
        }))
    }

    /// The exec start body's `ConsoleSize` ([height, width], API 1.42+): the size the
    /// exec's terminal starts at, replacing the one given at create.
    ///
    /// Errors: 404 no such exec; 400 not two sizes of at most 65535.
    pub fn set_exec_console_size(&self, id: &str, size: Vec<usize>) -> Result<(), EngineError> {
        console_size(&size)?;
        let mut g = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        let e = g
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))?;
        e.config.console_size = Some(size);
        Ok(())
    }

    /// POST /exec/{id}/resize: sets the terminal size of a running exec with a terminal
    /// (through the control socket of its `tether shim-exec`, which owns the terminal;
    /// waits up to 2 s for a just-started exec's socket). An exec without a terminal, or
    /// one that has ended, is left alone.
    ///
    /// Errors: 404 no such exec.
    pub async fn resize_exec(&self, id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        let running_tty = |me: &Self| -> Result<bool, EngineError> {
            let g = me.execs.lock().unwrap_or_else(|p| p.into_inner());
            let e = g
                .get(id)
                .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))?;
            Ok(e.exit_code.is_none() && e.config.tty.unwrap_or(false))
        };
        if !running_tty(self)? || id.len() < 12 {
            return Ok(());
        }
        let path = self.exec_console_socket(id).with_extension("ctl");
        for _ in 0..100 {
            if let Ok(mut s) = tokio::net::UnixStream::connect(&path).await {
                tokio::io::AsyncWriteExt::write_all(
                    &mut s,
                    format!("resize {rows} {cols}\n").as_bytes(),
                )
                .await?;
                return Ok(());
            }
            if !running_tty(self)? {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The socket `tether shim-exec` receives the terminal on; it takes resize requests
    /// on the same path with `.ctl` appended.
    fn exec_console_socket(&self, id: &str) -> std::path::PathBuf {
        self.cfg
            .exec_root
            .join("sock")
            .join(format!("x{}", &id[..12.min(id.len())]))
    }
}

/// A `ConsoleSize` value ([height, width]): None for [0, 0] (no size given).
///
/// Errors: 400 when it is not two numbers of at most 65535.
pub(crate) fn console_size(v: &[usize]) -> Result<Option<(u16, u16)>, EngineError> {
    let bad = || {
        EngineError::InvalidParam(format!(
            "invalid ConsoleSize {v:?}: expected [height, width], each at most 65535"
        ))
    };
    let [h, w] = v else {
        return Err(bad());
    };
    let (h, w) = (
        u16::try_from(*h).map_err(|_| bad())?,
        u16::try_from(*w).map_err(|_| bad())?,
    );
    Ok((h > 0 && w > 0).then_some((h, w)))
}
