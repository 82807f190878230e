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
    /// The `runc exec` child.
    pub child: tokio::process::Child,
}

impl Engine {
    /// POST /containers/{id}/exec. Errors: 404; 409 not running; 400 no command.
    pub async fn create_exec(&self, key: &str, cfg: ExecConfig) -> Result<String, EngineError> {
        let st = self.state.lock().await;
        let c = st.container(key)?;
        if c.state.status != "running" {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
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
        let bundle = self.cfg.exec_root.join("bundles").join(&c.id);
        let spec: serde_json::Value = std::fs::read(bundle.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| EngineError::Internal("container spec missing".into()))?;
        let mut process = spec.get("process").cloned().unwrap_or(json!({}));
        let mut env: Vec<String> = c.config.env.clone().unwrap_or_default();
        for kv in e.config.env.clone().unwrap_or_default() {
            let k = kv.split('=').next().unwrap_or("").to_string();
            env.retain(|x| x.split('=').next() != Some(k.as_str()));
            env.push(kv);
        }
        process["args"] = json!(e.config.cmd.clone().unwrap_or_default());
        process["env"] = json!(env);
        let tty = e.config.tty.unwrap_or(false);
        process["terminal"] = json!(tty);
        if let Some(w) = e.config.working_dir.clone().filter(|w| !w.is_empty()) {
            process["cwd"] = json!(w);
        }
        if let Some(u) = e.config.user.clone().filter(|u| !u.is_empty()) {
            let merged = self.container_dir(&c.id).join("rootfs");
            let (uid, gid) = tether_runtime::spec::resolve_user(&merged, &u)?;
            process["user"] = json!({"uid": uid, "gid": gid});
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
            c.arg(
                self.cfg
                    .exec_root
                    .join("sock")
                    .join(format!("x{}", &id[..12])),
            );
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
        Ok(ExecProcess { child })
    }

    /// Records an exec's exit code.
    pub fn finish_exec(&self, id: &str, code: i64) {
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

    /// POST /exec/{id}/resize: accepted; runc sizes a foreground exec's terminal itself
    /// (resizing it later is not supported yet).
    pub fn resize_exec(&self, id: &str, _rows: u16, _cols: u16) -> Result<(), EngineError> {
        let g = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        g.get(id)
            .map(|_| ())
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
    }

    /// Whether the exec asked for a tty (affects stream framing).
    pub fn exec_tty(&self, id: &str) -> bool {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|e| e.config.tty.unwrap_or(false))
            .unwrap_or(false)
    }
}
