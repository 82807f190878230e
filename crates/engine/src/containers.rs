//! Containers: create, start, stop, kill, restart, remove, wait, list and inspect (Docker
//! API "Container" endpoints), the exit monitor, and re-adoption of containers that kept
//! running while the daemon was away.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{ContainerCreateBody, EndpointSettings, HostConfig};
use tether_runtime::{rootfs, shim, spec};

use crate::sandbox::{self, Mode};
use crate::state::{self, Attachment, Container, RunState};
use crate::{Engine, EngineError, State};

const ADJ: &[&str] = &[
    "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quirky", "sharp", "tender", "vivid", "wise", "zen",
];
const NOUN: &[&str] = &[
    "babbage", "curie", "darwin", "euler", "fermat", "galois", "hopper", "knuth", "lamport",
    "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing",
];

fn random_name() -> String {
    let a = ADJ[rand::random::<usize>() % ADJ.len()];
    let n = NOUN[rand::random::<usize>() % NOUN.len()];
    format!("{a}_{n}")
}

/// A generated name no container has: `adjective_surname` (Docker's namesgenerator
/// style); after a few taken draws, the draw with the smallest free numeric suffix
/// (`jolly_turing2`). Always terminates, whatever the number of containers.
fn unique_name(taken: impl Fn(&str) -> bool) -> String {
    for _ in 0..8 {
        let n = random_name();
        if !taken(&n) {
            return n;
        }
    }
    let base = random_name();
    (2u64..)
        .map(|k| format!("{base}{k}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

impl State {
    /// Finds a container by full id, name (with or without '/'), or unique id prefix.
    pub(crate) fn container(&self, key: &str) -> Result<&Container, EngineError> {
        let key = key.trim_start_matches('/');
        if let Some(c) = self.containers.get(key) {
            return Ok(c);
        }
        if let Some(c) = self.containers.values().find(|c| c.name == key) {
            return Ok(c);
        }
        let hits: Vec<&Container> = self
            .containers
            .values()
            .filter(|c| !key.is_empty() && c.id.starts_with(key))
            .collect();
        match hits.len() {
            1 => Ok(hits[0]),
            0 => Err(EngineError::NotFound(format!("No such container: {key}"))),
            _ => Err(EngineError::InvalidParam(format!(
                "multiple containers match {key}: give more of the id"
            ))),
        }
    }
}

/// moby's `ReplaceOrAppendEnvValues`: `base` (the image's env) keeps its order, a key
/// `overrides` sets again is replaced in place, new keys are appended in the order given,
/// and an override without `=` (`KEY`) removes `KEY`.
pub(crate) fn merge_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<Option<String>> = base.iter().cloned().map(Some).collect();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, e) in base.iter().enumerate() {
        at.entry(key(e)).or_insert(i);
    }
    for o in overrides {
        if !o.contains('=') {
            if let Some(i) = at.get(o.as_str()) {
                out[*i] = None;
            }
            continue;
        }
        match at.get(&key(o)) {
            Some(i) => out[*i] = Some(o.clone()),
            None => {
                at.insert(key(o), out.len());
                out.push(Some(o.clone()));
            }
        }
    }
    out.into_iter().flatten().collect()
}

/// Reads `conn` (a container monitor's watch connection) until EOF or an error.
async fn wait_for_eof(conn: std::os::unix::net::UnixStream) {
    use tokio::io::AsyncReadExt;
    if conn.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(mut conn) = tokio::net::UnixStream::from_std(conn) else {
        return;
    };
    let mut buf = [0u8; 64];
    while let Ok(n) = conn.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

impl Engine {
    /// Short prefix for a container's unix sockets (paths hold at most 107 bytes).
    pub(crate) fn sock_prefix(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("sock").join(&id[..12])
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("bundles").join(id)
    }

    /// POST /containers/create: validates everything (name, image, hostname, MAC
    /// addresses, resources, healthcheck, mounts and their modes, networks, ports, extra
    /// hosts, DNS, links) and records the container; nothing is set up until start, and
    /// nothing at all (no record, no volume) is created when a value is refused.
    /// `legacy_mac` is the container-wide `Config.MacAddress` (deprecated since API 1.44,
    /// absent from the 1.53 model). Returns (id, warnings).
    ///
    /// Errors: 400 bad reference or value (named, with the value), 404 no such
    /// image/network/linked container, 409 name in use.
    pub async fn create_container(
        &self,
        name: Option<String>,
        mut body: ContainerCreateBody,
        legacy_mac: Option<String>,
    ) -> Result<(String, Vec<String>), EngineError> {
        let image_ref = body
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                EngineError::InvalidParam("no image given: config.Image is required".into())
            })?;
        tether_image::parse_reference(&image_ref).map_err(|e| {
            let m = e.to_string();
            if m.contains(image_ref.as_str()) {
                EngineError::from(e)
            } else {
                EngineError::InvalidParam(format!("{m} (Image {image_ref:?})"))
            }
        })?;
        validate_config(&body, legacy_mac.as_deref())?;
        let images = self.images.clone();
        let r = image_ref.clone();
        let image = tokio::task::spawn_blocking(move || images.get(&r))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        let mut hc: HostConfig = body.host_config.take().unwrap_or_default();
        let nc = body.networking_config.take();
        let ic = &image.config;
        // merge the image's config (moby daemon/create.go mergeAndVerifyConfig)
        let entry_given = body.entrypoint.is_some();
        if body.entrypoint.is_none() {
            body.entrypoint = ic.entrypoint.clone();
        }
        if body.cmd.as_ref().map(|c| c.is_empty()).unwrap_or(true) && !entry_given {
            body.cmd = ic.cmd.clone();
        }
        let entry: Vec<String> = body
            .entrypoint
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let argv: Vec<String> = entry
            .into_iter()
            .chain(body.cmd.clone().unwrap_or_default())
            .collect();
        if argv.is_empty() {
            return Err(EngineError::InvalidParam("No command specified: the image has no Cmd or Entrypoint; give a command after the image".into()));
        }
        let mut env = merge_env(&ic.env, &body.env.clone().unwrap_or_default());
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        body.env = Some(env);
        if body.working_dir.as_deref().unwrap_or("").is_empty() && !ic.working_dir.is_empty() {
            body.working_dir = Some(ic.working_dir.clone());
        }
        if body.user.as_deref().unwrap_or("").is_empty() && !ic.user.is_empty() {
            body.user = Some(ic.user.clone());
        }
        let mut exposed = body.exposed_ports.clone().unwrap_or_default();
        for p in &ic.exposed_ports {
            if !exposed.contains(p) {
                exposed.push(p.clone());
            }
        }
        for k in hc.port_bindings.clone().unwrap_or_default().keys() {
            let k = if k.contains('/') {
                k.clone()
            } else {
                format!("{k}/tcp")
            };
            if !exposed.contains(&k) {
                exposed.push(k);
            }
        }
        for p in &exposed {
            crate::ports::parse_port_key(p)?;
        }
        body.exposed_ports = Some(exposed);
        let mut labels = ic
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>();
        labels.extend(body.labels.clone().unwrap_or_default());
        body.labels = Some(labels);
        if body.stop_signal.is_none() {
            body.stop_signal = ic.stop_signal.clone();
        }
        merge_image_volumes_health(&mut body, ic);
        body.image = Some(image_ref.clone());
        // validate host config values
        crate::ports::parse_bindings(&hc.port_bindings.clone().unwrap_or_default())?;
        for d in hc.dns.clone().unwrap_or_default() {
            d.parse::<std::net::IpAddr>().map_err(|_| {
                EngineError::InvalidParam(format!(
                    "invalid --dns {d:?}: expected an IP address such as 10.0.0.2"
                ))
            })?;
        }
        for h in hc.extra_hosts.clone().unwrap_or_default() {
            let (n, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .ok_or_else(|| {
                    EngineError::InvalidParam(format!(
                        "invalid --add-host {h:?}: expected NAME:IP or NAME:host-gateway"
                    ))
                })?;
            if n.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err()) {
                return Err(EngineError::InvalidParam(format!("invalid IP address in add-host: {ip:?} (in {h:?}; expected an IP or host-gateway)")));
            }
        }
        validate_restart(&hc)?;
        if let Some(size) = &hc.console_size {
            crate::exec::console_size(size)?;
        }
        crate::validate::resources(&hc)?;
        crate::validate::log_config(&hc)?;
        spec::capabilities(
            &hc.cap_add.clone().unwrap_or_default(),
            &hc.cap_drop.clone().unwrap_or_default(),
            hc.privileged.unwrap_or(false),
        )?;
        // Mounts of type bind/volume are kept as binds (one representation downstream)
        let mut binds = hc.binds.clone().unwrap_or_default();
        for m in hc.mounts.take().unwrap_or_default() {
            let (Some(src), Some(dst)) =
                (m.source.clone().filter(|s| !s.is_empty()), m.target.clone())
            else {
                return Err(EngineError::InvalidParam(
                    "invalid mount: Source and Target are required".into(),
                ));
            };
            check_mount(m.typ, &src, &dst)?;
            match m.typ {
                Some(bollard_stubs::models::MountType::BIND)
                | Some(bollard_stubs::models::MountType::VOLUME)
                | None => {
                    binds.push(if m.read_only.unwrap_or(false) {
                        format!("{src}:{dst}:ro")
                    } else {
                        format!("{src}:{dst}")
                    });
                }
                Some(other) => {
                    return Err(EngineError::InvalidParam(format!(
                        "mount type {other:?} is not supported: use bind or volume"
                    )));
                }
            }
        }
        for b in &binds {
            let parts: Vec<&str> = b.split(':').collect();
            let src = parts.first().copied().unwrap_or("");
            if crate::volumes::is_volume_source(src) {
                crate::validate::volume_name(src)?;
            }
            if parts.len() < 2
                || parts.len() > 3
                || !src.starts_with('/') && !crate::volumes::is_volume_source(src)
                || !parts[1].starts_with('/')
            {
                return Err(EngineError::InvalidParam(format!(
                    "invalid volume specification: {b:?} in HostConfig.Binds: expected /HOST/PATH:/CONTAINER/PATH[:MODE] or VOLUME-NAME:/CONTAINER/PATH[:MODE]"
                )));
            }
            if let Some(mode) = parts.get(2) {
                crate::validate::bind_mode(b, mode)?;
            }
        }
        // anonymous volumes for Config.Volumes entries no bind covers
        let mut anon = Vec::new();
        for dst in body.volumes.clone().unwrap_or_default() {
            if !binds
                .iter()
                .any(|b| b.split(':').nth(1) == Some(dst.as_str()))
            {
                let name = state::new_id();
                binds.push(format!("{name}:{dst}"));
                anon.push(name);
            }
        }
        hc.binds = if binds.is_empty() { None } else { Some(binds) };
        let mode_s = hc
            .network_mode
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "default".into());
        hc.network_mode = Some(mode_s.clone());
        let mut st = self.state.lock().await;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.trim_start_matches('/').to_string();
                if !crate::networks::valid_name(&n) {
                    return Err(EngineError::InvalidParam(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n
            }
            None => {
                let names: HashSet<&str> =
                    st.containers.values().map(|c| c.name.as_str()).collect();
                unique_name(|n| names.contains(n))
            }
        };
        if let Some(o) = st.containers.values().find(|c| c.name == name) {
            return Err(EngineError::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                o.id
            )));
        }
        let mut attachments = Vec::new();
        let eps: HashMap<String, EndpointSettings> =
            nc.and_then(|n| n.endpoints_config).unwrap_or_default();
        match sandbox::mode(&mode_s) {
            Mode::Bridge => {
                let primary = if mode_s == "default" {
                    "bridge".to_string()
                } else {
                    mode_s.clone()
                };
                let mut names = vec![primary.clone()];
                let mut extra: Vec<String> = eps
                    .keys()
                    .filter(|k| **k != primary && **k != mode_s)
                    .cloned()
                    .collect();
                extra.sort();
                names.extend(extra);
                for (i, nname) in names.iter().enumerate() {
                    let n = st.network(nname)?.clone();
                    if n.bridge.is_none() {
                        return Err(EngineError::InvalidParam(format!("container cannot be connected to network {} with driver {} together with others", n.name, n.driver)));
                    }
                    let es = if i == 0 {
                        eps.get(nname).or_else(|| eps.get(&mode_s)).cloned()
                    } else {
                        eps.get(nname).cloned()
                    }
                    .unwrap_or_default();
                    let mut att = attachment_from(&n, &es)?;
                    if i == 0 && att.mac.is_none() {
                        // the deprecated container-wide MAC goes to the first network
                        att.mac = legacy_mac
                            .clone()
                            .filter(|m| !m.is_empty())
                            .map(|m| m.to_ascii_lowercase());
                    }
                    attachments.push((n.name.clone(), att));
                }
            }
            Mode::Container(other) => {
                st.container(&other)?;
            }
            _ => {}
        }
        for l in hc.links.clone().unwrap_or_default() {
            let target = l.split(':').next().unwrap_or("");
            st.container(target).map_err(|_| EngineError::NotFound(format!("could not get container for {target}: no such container (--link NAME[:ALIAS] names a container)")))?;
        }
        for v in crate::volumes::binds_volumes(&hc) {
            let anonymous = anon.contains(&v);
            self.ensure_volume(&mut st, &v, HashMap::new(), anonymous)?;
        }
        let id = state::new_id();
        let c = Container {
            id: id.clone(),
            name,
            created: state::now(),
            image: image_ref,
            image_id: image.id.clone(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config: Box::new(body),
            host_config: Box::new(hc),
            attachments,
            state: RunState {
                status: "created".into(),
                started_at: state::ZERO_TIME.into(),
                finished_at: state::ZERO_TIME.into(),
                ..Default::default()
            },
            endpoints: Default::default(),
            ports: Vec::new(),
            sandbox: None,
            restart_count: 0,
            auto_restarts: 0,
            manually_stopped: false,
        };
        let dir = self.container_dir(&id);
        std::fs::create_dir_all(&dir)?;
        for f in ["json.log", "hosts", "resolv.conf", "hostname"] {
            std::fs::write(dir.join(f), "")?;
        }
        if let Err(e) = self.save_container(&c) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.emit_container(&c, "create", &[]);
        st.containers.insert(id.clone(), c);
        drop(st);
        self.live_mut(&id, |_| ());
        Ok((id, Vec::new()))
    }

    /// Takes container `key`'s own lock (see [`Engine::fs_lock`]) and returns it with the
    /// container's record as it is once any start in progress has finished.
    ///
    /// Errors: 404 no such container.
    pub(crate) async fn own(
        &self,
        key: &str,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, Container), EngineError> {
        let id = self.state.lock().await.container(key)?.id.clone();
        let guard = self.fs_lock(&id).lock_owned().await;
        let c = self.state.lock().await.container(&id)?.clone();
        Ok((guard, c))
    }

    /// POST /containers/{id}/start: rootfs, networking, spec, monitor, `runc start`. On
    /// failure everything set up is undone and the runtime's message is returned.
    ///
    /// Errors: 404; 304 already running; 500 with the OCI runtime's message.
    pub async fn start_container(self: &Arc<Self>, key: &str) -> Result<(), EngineError> {
        // an archive helper may have the stopped container's overlay mounted
        let id = self.state.lock().await.container(key)?.id.clone();
        let fs_lock = self.fs_lock(&id);
        let _fs = fs_lock.lock().await;
        let mut c = self.state.lock().await.container(key)?.clone();
        if c.state.status == "running" {
            return Err(EngineError::NotModified("container already started".into()));
        }
        let (mut st, prepared) = self.prepare_start(&mut c).await;
        let mut watch = None;
        let r = match prepared {
            Ok(p) => {
                // The sandbox and its endpoints are in the state (in memory: the record on
                // disk is written once the start succeeded), so that `network rm` sees
                // them and no lease is handed out twice; the engine's lock is released for
                // the runtime's part.
                st.containers.insert(c.id.clone(), c.clone());
                drop(st);
                let launched = self.launch_prepared(&mut c, p).await;
                st = self.state.lock().await;
                match launched {
                    Ok(w) => {
                        watch = Some(w);
                        Ok(())
                    }
                    Err(e) => {
                        self.teardown_networking(&mut st, &mut c, &[]).await;
                        let _ = rootfs::unmount(&self.container_dir(&c.id).join("rootfs"));
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            c.state.error = e.to_string();
            if e.to_string().contains("executable file not found")
                || e.to_string().contains("no such file or directory")
            {
                c.state.exit_code = 127;
            } else {
                c.state.exit_code = 128;
            }
        }
        if c.state.status == "running" {
            self.emit_container(&c, "start", &[]);
        }
        let healthcheck = c
            .config
            .healthcheck
            .clone()
            .filter(|h| crate::health::test_command(h).is_some());
        if c.state.status == "running" && healthcheck.is_some() {
            c.state.health = Some(crate::health::Health {
                status: "starting".into(),
                ..Default::default()
            });
        }
        let _ = self.save_container(&c);
        let id = c.id.clone();
        let running = c.state.status == "running";
        let code = c.state.exit_code;
        st.containers.insert(c.id.clone(), c);
        drop(st);
        if r.is_err() {
            // wake attach and wait streams: this start ended before it began
            self.live_mut(&id, |l| {
                l.events.send_modify(|e| {
                    e.0 += 1;
                    e.1 = code;
                })
            });
        }
        if let Some(w) = watch.filter(|_| running) {
            self.spawn_monitor(&id, w);
            if let Some(hc) = &healthcheck {
                self.spawn_health(&id, hc);
            }
        }
        r
    }

    /// What a start makes before the runtime runs: the rootfs and the sandbox (without the
    /// engine's lock: they are the container's own, and the caller holds its lock), the
    /// endpoints (their leases planned under the lock, so allocation is atomic; the local
    /// ones joined without it, see [`crate::sandbox::StagedJoin`]), the published ports,
    /// DNS, /etc files and hostname. Returns the engine's lock, held, so that the caller
    /// records `c` before any other request sees the state. On error everything done is
    /// undone.
    async fn prepare_start(
        &self,
        c: &mut Container,
    ) -> (
        tokio::sync::MutexGuard<'_, State>,
        Result<Prepared, EngineError>,
    ) {
        let t0 = std::time::Instant::now();
        let dir = self.container_dir(&c.id);
        let merged = dir.join("rootfs");
        let mounted = self
            .images
            .get(&c.image_id)
            .map_err(EngineError::from)
            .and_then(|image| {
                let layers = self.images.layer_paths(&image);
                rootfs::mount_overlay(&layers, &dir.join("upper"), &dir.join("work"), &merged)
                    .map_err(EngineError::from)
            });
        if let Err(e) = mounted {
            return (self.state.lock().await, Err(e));
        }
        let t_rootfs = t0.elapsed();
        let (mut st, net) = self.prepare_networking(c).await;
        if let Err(e) = net {
            self.teardown_networking(&mut st, c, &[]).await;
            let _ = rootfs::unmount(&merged);
            return (st, Err(e));
        }
        // a container joining another's namespace takes its hostname too (as Docker)
        let hostname = match sandbox::mode(c.host_config.network_mode.as_deref().unwrap_or("")) {
            Mode::Host => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            Mode::Container(other) => st
                .container(&other)
                .map(sandbox::hostname_of)
                .unwrap_or_else(|_| sandbox::hostname_of(c)),
            _ => sandbox::hostname_of(c),
        };
        let link_env = legacy_link_env(&st, c);
        let p = Prepared {
            merged,
            hostname,
            link_env,
            t0,
            t_rootfs,
            t_net: t0.elapsed(),
        };
        (st, Ok(p))
    }

    /// A start's networking in its four steps (sandbox, stage, join, finish; see
    /// [`Engine::make_sandbox`]); returns the engine's lock, held. On error the caller
    /// tears down what `c` records.
    async fn prepare_networking(
        &self,
        c: &mut Container,
    ) -> (tokio::sync::MutexGuard<'_, State>, Result<(), EngineError>) {
        let m = sandbox::mode(c.host_config.network_mode.as_deref().unwrap_or("default"));
        let t0 = std::time::Instant::now();
        let snl = match self.make_sandbox(c, &m).await {
            Ok(s) => s,
            Err(e) => return (self.state.lock().await, Err(e)),
        };
        let t_sandbox = t0.elapsed();
        let mut st = self.state.lock().await;
        let t_locked = t0.elapsed();
        let mut staged = match self.stage_networking(&mut st, c, &m).await {
            Ok(s) => s,
            Err(e) => return (st, Err(e)),
        };
        let t_staged = t0.elapsed();
        if let (false, Some(snl)) = (staged.is_empty(), snl.as_ref()) {
            drop(st);
            self.join_staged(&mut staged, c, snl).await;
            st = self.state.lock().await;
        }
        let t_joined = t0.elapsed();
        let r = self.finish_networking(&mut st, c, &m, staged).await;
        // For profiling (RUST_LOG=tether_engine=debug), the steps of a start's networking.
        tracing::debug!(
            container = %c.name,
            sandbox_us = t_sandbox.as_micros() as u64,
            lock_wait_us = (t_locked - t_sandbox).as_micros() as u64,
            stage_us = (t_staged - t_locked).as_micros() as u64,
            join_us = (t_joined - t_staged).as_micros() as u64,
            finish_us = (t0.elapsed() - t_joined).as_micros() as u64,
            "networking prepared"
        );
        (st, r)
    }

    /// Starts a container whose rootfs and sandbox are ready, without the engine's lock
    /// (the monitor's `runc create` and `runc start` take most of a start's time): starts
    /// of other containers proceed meanwhile. The caller holds the container's own lock.
    ///
    /// Returns the connection that reports the container's exit, for its monitor task.
    async fn launch_prepared(
        &self,
        c: &mut Container,
        p: Prepared,
    ) -> Result<std::os::unix::net::UnixStream, EngineError> {
        let (started, create, start) = self.launch(c, &p.merged, p.hostname, &p.link_env).await?;
        // The container's mount namespace holds its own copy of the root now. The daemon's
        // copy goes, so that the mount table every `runc create` copies and detaches does
        // not grow with each running container (figure 7 flat); the daemon reaches the
        // running container's files through /proc/<pid>/root.
        if let Err(e) = rootfs::unmount(&p.merged) {
            tracing::warn!(container = %c.name, error = %e, "unmounting the daemon's copy of the root");
        }
        // For profiling (RUST_LOG=tether_engine=debug): tether's own share of a start is
        // everything but `runc create` (in the monitor) and `runc start`.
        tracing::debug!(
            container = %c.name,
            rootfs_us = p.t_rootfs.as_micros() as u64,
            network_us = (p.t_net - p.t_rootfs).as_micros() as u64,
            monitor_and_runc_create_us = create.as_micros() as u64,
            runc_start_us = start.as_micros() as u64,
            total_us = p.t0.elapsed().as_micros() as u64,
            "started"
        );
        c.state.status = "running".into();
        c.state.paused = false;
        c.state.pid = started.pid;
        c.state.shim_pid = started.shim_pid;
        c.state.error.clear();
        c.state.exit_code = 0;
        c.state.started_at = state::now();
        c.restart_count += 1;
        c.manually_stopped = false;
        Ok(started.watch)
    }

    async fn launch(
        &self,
        c: &Container,
        merged: &std::path::Path,
        hostname: String,
        link_env: &[String],
    ) -> Result<(shim::Started, std::time::Duration, std::time::Duration), EngineError> {
        let dir = self.container_dir(&c.id);
        let hc = &c.host_config;
        let id = spec::resolve_identity(
            merged,
            c.config.user.as_deref().unwrap_or(""),
            &hc.group_add.clone().unwrap_or_default(),
        )?;
        let mut binds = vec![
            spec::Bind {
                source: dir.join("hosts"),
                destination: "/etc/hosts".into(),
                readonly: false,
            },
            spec::Bind {
                source: dir.join("resolv.conf"),
                destination: "/etc/resolv.conf".into(),
                readonly: false,
            },
            spec::Bind {
                source: dir.join("hostname"),
                destination: "/etc/hostname".into(),
                readonly: false,
            },
        ];
        for b in c.host_config.binds.clone().unwrap_or_default() {
            let parts: Vec<&str> = b.split(':').collect();
            let src = if crate::volumes::is_volume_source(parts[0]) {
                let data = self.volume_data(parts[0]);
                let dest = parts.get(1).copied().unwrap_or("/").trim_start_matches('/');
                crate::volumes::copy_up(&merged.join(dest), &data)?;
                data
            } else {
                PathBuf::from(parts[0])
            };
            if !src.exists() {
                std::fs::create_dir_all(&src)?;
            }
            binds.push(spec::Bind {
                source: src,
                destination: parts.get(1).unwrap_or(&"/").to_string(),
                readonly: parts
                    .get(2)
                    .map(|o| o.split(',').any(|x| x == "ro"))
                    .unwrap_or(false),
            });
        }
        let cs = spec::ContainerSpec {
            rootfs: merged.to_path_buf(),
            args: std::iter::once(c.path.clone())
                .chain(c.args.clone())
                .collect(),
            env: merge_env(link_env, &c.config.env.clone().unwrap_or_default()),
            cwd: c.config.working_dir.clone().unwrap_or_default(),
            uid: id.uid,
            gid: id.gid,
            additional_gids: id.additional_gids,
            hostname,
            tty: c.config.tty.unwrap_or(false),
            netns: c.sandbox.clone(),
            binds,
            cap_add: hc.cap_add.clone().unwrap_or_default(),
            cap_drop: hc.cap_drop.clone().unwrap_or_default(),
            privileged: hc.privileged.unwrap_or(false),
            cgroups_path: format!("/tether/{}", c.id),
            resources: spec::Resources {
                memory: hc.memory,
                memory_swap: hc.memory_swap,
                memory_reservation: hc.memory_reservation,
                cpu_shares: hc.cpu_shares,
                cpu_quota: hc.cpu_quota,
                cpu_period: hc.cpu_period,
                pids_limit: hc.pids_limit,
                blkio_weight: hc.blkio_weight,
            },
        };
        let mut s = spec::build(&cs)?;
        if let Some(size) = hc.console_size.as_deref().filter(|_| cs.tty) {
            if let Some((h, w)) = crate::exec::console_size(size)? {
                s = with_console_size(s, h, w)?;
            }
        }
        let bundle = self.bundle(&c.id);
        let _ = std::fs::remove_dir_all(&bundle);
        spec::save(&s, &bundle)?;
        let cfg = shim::ShimConfig {
            id: c.id.clone(),
            bundle: bundle.clone(),
            runc: self.runc.binary.clone(),
            runc_root: self.runc.root.clone(),
            log: dir.join("json.log"),
            exit_file: bundle.join("exit.json"),
            tty: c.config.tty.unwrap_or(false),
            stdin: c.config.open_stdin.unwrap_or(false),
            stdin_once: c.config.stdin_once.unwrap_or(false),
            sock_prefix: self.sock_prefix(&c.id),
        };
        let monitor = self.monitor.clone();
        let t = std::time::Instant::now();
        let started = tokio::task::spawn_blocking(move || monitor.create(&cfg))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        let create = t.elapsed();
        if let Err(e) = self.runc.start(&c.id).await {
            let _ = self.runc.delete(&c.id, true).await;
            return Err(e.into());
        }
        Ok((started, create, t.elapsed() - create))
    }

    /// Starts container `id`'s monitor task: it waits for the container monitor to report
    /// the exit on `watch` (the connection of the start, or of a `watch` after a daemon
    /// restart: EOF on it), then runs [`Engine::on_exit`]. A monitor that died reports
    /// every container's exit that way.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, id: &str, watch: std::os::unix::net::UnixStream) {
        let me = self.clone();
        let cid = id.to_string();
        let task = tokio::spawn(async move {
            wait_for_eof(watch).await;
            // boxed: the exit's work (runc, the cluster store, the firewall) is a large
            // future, allocated only when the container exits rather than held by every
            // running container's waiting task
            Box::pin(me.on_exit(&cid)).await;
        });
        self.live_mut(id, |l| l.monitor = Some(task));
    }

    /// Records a container's exit: its code, teardown of networking and rootfs, waiters
    /// woken, and removal when it was started with --rm.
    ///
    /// The runtime's part (the rootfs unmounted, `runc delete`, the bundle and the
    /// container's sockets removed) and the cluster store's share of its overlay endpoints
    /// (records and leases) go first, without the engine's lock: the container's processes
    /// are gone (the container monitor reported the exit), and while it is still recorded
    /// as running nothing else starts it or mounts its rootfs. Then, under the lock, the
    /// record says `exited`, its networking goes and the waiters wake.
    async fn on_exit(self: &Arc<Self>, id: &str) {
        let globals = {
            let st = self.state.lock().await;
            match st.container(id) {
                Ok(c) if c.state.status == "running" => self.global_endpoints(&st, id),
                _ => return,
            }
        };
        let rec = shim::read_exit(&self.bundle(id).join("exit.json"));
        let _ = rootfs::unmount(&self.container_dir(id).join("rootfs"));
        let _ = self.runc.delete(id, true).await;
        let _ = std::fs::remove_dir_all(self.bundle(id));
        for kind in ["attach", "control", "console"] {
            let _ = std::fs::remove_file(shim::socket(&self.sock_prefix(id), kind));
        }
        let mut released = Vec::new();
        for (n, ep) in &globals {
            self.release_store_share(n, ep).await;
            released.push(ep.id.clone());
        }
        let mut st = self.state.lock().await;
        let Ok(mut c) = st.container(id).cloned() else {
            return;
        };
        if c.state.status != "running" {
            return;
        }
        c.state.status = "exited".into();
        c.state.paused = false;
        c.state.pid = 0;
        c.state.shim_pid = 0;
        c.state.exit_code = rec.as_ref().map(|r| r.exit_code).unwrap_or(137);
        c.state.finished_at = rec.map(|r| r.finished_at).unwrap_or_else(state::now);
        self.teardown_networking(&mut st, &mut c, &released).await;
        let code = c.state.exit_code;
        let auto = c.host_config.auto_remove.unwrap_or(false);
        // a container its policy restarts is `restarting` until it runs again (as
        // dockerd: listed by ps, refused by rm without force, ended by stop)
        let delay = (!auto).then(|| restart_delay(&c)).flatten();
        if delay.is_some() {
            c.state.status = "restarting".into();
        }
        let _ = self.save_container(&c);
        self.emit_container(&c, "die", &[("exitCode", code.to_string())]);
        st.containers.insert(id.to_string(), c);
        self.live_mut(id, |l| {
            l.monitor = None;
            if let Some(h) = l.health.take() {
                h.abort();
            }
            l.events.send_modify(|e| {
                e.0 += 1;
                e.1 = code;
            });
        });
        if auto {
            self.remove_locked(&mut st, id);
            return;
        }
        if let Some(delay) = delay {
            let me = self.clone();
            let cid = id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                me.auto_restart(&cid).await;
            });
        }
    }

    /// Restarts a container its policy says to restart, unless it was removed, started
    /// or stopped by hand meanwhile.
    async fn auto_restart(self: &Arc<Self>, id: &str) {
        {
            let mut st = self.state.lock().await;
            let Some(c) = st.containers.get_mut(id) else {
                return;
            };
            if c.state.status != "restarting" || c.manually_stopped {
                return;
            }
            c.auto_restarts += 1;
            let c = c.clone();
            let _ = self.save_container(&c);
        }
        if let Err(e) = self.start_container(id).await {
            tracing::warn!(container = %id, error = %e, "restart policy: start failed");
        }
    }

    fn remove_locked(&self, st: &mut State, id: &str) {
        self.fs_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        let _ = rootfs::unmount(&self.container_dir(id).join("rootfs"));
        let _ = std::fs::remove_dir_all(self.container_dir(id));
        if let Some(c) = st.containers.remove(id) {
            self.emit_container(&c, "destroy", &[]);
        }
        let live = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(l) = live {
            l.events.send_modify(|e| e.2 = true);
        }
    }

    /// Sends `signal` to a running container's init (`runc kill`).
    ///
    /// Errors: 404; 409 not running; 400 bad signal.
    pub async fn kill_container(&self, key: &str, signal: &str) -> Result<(), EngineError> {
        // the container's own lock: a start in progress finishes first
        let (own, c) = self.own(key).await?;
        if c.state.status != "running" {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let sig = normalize_signal(signal)?;
        let mut ev = self.events(&c.id);
        let gen0 = ev.borrow().0;
        self.runc.kill(&c.id, &sig, false).await?;
        self.thaw_if_paused(&c.id).await;
        self.emit_container(
            &c,
            "kill",
            &[("signal", sig.trim_start_matches("SIG").to_string())],
        );
        if sig == "SIGKILL" {
            // as dockerd's ContainerKill: a SIGKILL returns once the container is dead and
            // its exit processed (inspect then says so, rm needs no force)
            drop(own);
            let _ =
                tokio::time::timeout(Duration::from_secs(10), ev.wait_for(|e| e.0 > gen0 || e.2))
                    .await;
        }
        Ok(())
    }

    /// POST /containers/{id}/stop: the stop signal, then SIGKILL after `timeout` seconds
    /// (default StopTimeout or 10); returns once the container's exit is fully processed.
    /// Ends the restart loop of a `restarting` container: stopped by hand, `exited`.
    async fn end_restarting(&self, id: &str) {
        let mut st = self.state.lock().await;
        if let Some(c) = st.containers.get_mut(id) {
            if c.state.status == "restarting" {
                c.state.status = "exited".into();
            }
            c.manually_stopped = true;
            let c = c.clone();
            let _ = self.save_container(&c);
        }
    }

    /// Marks a container stopped by hand (its restart policy then leaves it alone).
    async fn mark_manually_stopped(&self, id: &str) {
        let mut st = self.state.lock().await;
        if let Some(c) = st.containers.get_mut(id) {
            c.manually_stopped = true;
            let c = c.clone();
            let _ = self.save_container(&c);
        }
    }

    pub async fn stop_container(
        &self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<(), EngineError> {
        let (own, c) = self.own(key).await?;
        if c.state.status == "restarting" {
            // between two runs: nothing to signal, the restart loop ends here
            self.end_restarting(&c.id).await;
            return Ok(());
        }
        if c.state.status != "running" {
            return Err(EngineError::NotModified("container already stopped".into()));
        }
        let mut ev = self.events(&c.id);
        let gen0 = ev.borrow().0;
        let sig = normalize_signal(
            &signal
                .or_else(|| c.config.stop_signal.clone())
                .unwrap_or_else(|| "SIGTERM".into()),
        )?;
        let t = timeout.or(c.config.stop_timeout).unwrap_or(10).max(0) as u64;
        self.mark_manually_stopped(&c.id).await;
        let _ = self.runc.kill(&c.id, &sig, false).await;
        self.thaw_if_paused(&c.id).await;
        drop(own);
        let exited =
            tokio::time::timeout(Duration::from_secs(t), ev.wait_for(|e| e.0 > gen0 || e.2))
                .await
                .is_ok();
        if !exited {
            let _ = self.runc.kill(&c.id, "SIGKILL", true).await;
            let _ =
                tokio::time::timeout(Duration::from_secs(15), ev.wait_for(|e| e.0 > gen0 || e.2))
                    .await;
        }
        Ok(())
    }

    /// DELETE /containers/{id}: `force` kills a running container first.
    ///
    /// Errors: 404; 409 running without force.
    pub async fn remove_container(
        &self,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let (_own, c) = self.own(key).await?;
        if c.state.status == "restarting" {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
            self.end_restarting(&c.id).await;
        }
        if c.state.status == "running" {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
            let mut ev = self.events(&c.id);
            let gen0 = ev.borrow().0;
            let _ = self.runc.kill(&c.id, "SIGKILL", true).await;
            self.thaw_if_paused(&c.id).await;
            let _ =
                tokio::time::timeout(Duration::from_secs(15), ev.wait_for(|e| e.0 > gen0 || e.2))
                    .await;
        }
        let mut st = self.state.lock().await;
        if st.containers.contains_key(&c.id) {
            if st
                .containers
                .get(&c.id)
                .map(|x| x.state.status == "running")
                .unwrap_or(false)
            {
                return Err(EngineError::Internal(format!(
                    "container {} did not stop",
                    c.name
                )));
            }
            self.remove_locked(&mut st, &c.id);
            if volumes {
                for v in crate::volumes::volumes_of(&c) {
                    if st.volumes.get(&v).map(|x| x.anonymous).unwrap_or(false) {
                        if let Err(e) = self.remove_volume_locked(&mut st, &v) {
                            tracing::warn!(volume = %v, error = %e, "removing anonymous volume");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// POST /containers/{id}/restart: stops the container as [`Engine::stop_container`]
    /// does (its stop signal, then SIGKILL after `timeout` seconds) when it runs, then
    /// starts it.
    ///
    /// Errors: 404; 500 with the OCI runtime's message when the start fails.
    pub async fn restart_container(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        match self.stop_container(key, timeout, None).await {
            Ok(()) | Err(EngineError::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        self.start_container(key).await
    }

    /// POST /containers/prune: removes every container that is not running among those
    /// `filters` select (the filters of [`Engine::list_containers`]; others are
    /// ignored). A container that cannot be removed (it started meanwhile, it is being
    /// removed) is left out of the answer. `SpaceReclaimed` is the bytes of the removed
    /// containers' writable layers (their overlay upper directories), as Docker counts.
    ///
    /// Errors: none beyond those of listing.
    pub async fn prune_containers(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<ContainerPrune, EngineError> {
        let list = self.list_containers(true, None, filters).await?;
        let mut deleted = Vec::new();
        let mut space = 0;
        for c in list {
            if c["State"] != "running" {
                if let Some(id) = c["Id"].as_str() {
                    let size = crate::images::dir_size(&self.container_dir(id).join("upper"));
                    if self.remove_container(id, false, false).await.is_ok() {
                        deleted.push(id.to_string());
                        space += size;
                    }
                }
            }
        }
        Ok(ContainerPrune {
            containers_deleted: deleted,
            space_reclaimed: space,
        })
    }

    /// POST /containers/{id}/wait: registers the wait at once (so a `start` that follows
    /// cannot be missed) and returns a future resolving to the exit code once `condition`
    /// ("not-running" (default), "next-exit", "removed") holds.
    ///
    /// Errors: 404; 400 unknown condition.
    pub async fn wait_container(
        &self,
        key: &str,
        condition: &str,
    ) -> Result<std::pin::Pin<Box<dyn std::future::Future<Output = i64> + Send>>, EngineError> {
        let c = self.state.lock().await.container(key)?.clone();
        let mut ev = self.events(&c.id);
        let (gen0, _, _) = *ev.borrow();
        let last = c.state.exit_code;
        match condition {
            "" | "not-running" if c.state.status != "running" => Ok(Box::pin(async move { last })),
            "" | "not-running" | "next-exit" => Ok(Box::pin(async move {
                let r = ev.wait_for(|e| e.0 > gen0 || e.2).await.map(|e| e.1);
                r.unwrap_or(last)
            })),
            "removed" => Ok(Box::pin(async move {
                let r = ev.wait_for(|e| e.2).await.map(|e| e.1);
                r.unwrap_or(last)
            })),
            other => Err(EngineError::InvalidParam(format!(
                "invalid condition {other:?}: use not-running, next-exit or removed"
            ))),
        }
    }

    /// GET /containers/{id}/json.
    pub async fn inspect_container(&self, key: &str) -> Result<serde_json::Value, EngineError> {
        let st = self.state.lock().await;
        let c = st.container(key)?;
        Ok(crate::views::container(c, &st, &self.container_dir(&c.id)))
    }

    /// GET /containers/json with `all`, `limit` and filters (id, name, label, status,
    /// network, ancestor, exited), newest first.
    pub async fn list_containers(
        &self,
        all: bool,
        limit: Option<usize>,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<serde_json::Value>, EngineError> {
        let st = self.state.lock().await;
        let mut cs: Vec<&Container> = st.containers.values().collect();
        cs.sort_by(|a, b| b.created.cmp(&a.created));
        let mut out = Vec::new();
        for c in cs {
            let all = all || filters.contains_key("status") || filters.contains_key("exited");
            if !all && c.state.status != "running" && c.state.status != "restarting" {
                continue;
            }
            let ok = filters.iter().all(|(k, vals)| match k.as_str() {
                "id" => vals.iter().any(|v| c.id.starts_with(v.as_str())),
                "name" => vals.iter().any(|v| name_match(&c.name, v)),
                "label" | "label!" => crate::networks::label_match(
                    &c.config.labels.clone().unwrap_or_default(),
                    &HashMap::from([(k.clone(), vals.clone())]),
                ),
                "status" => vals.iter().any(|v| v == c.state.shown_status()),
                "exited" => {
                    c.state.status == "exited"
                        && vals
                            .iter()
                            .any(|v| v.parse::<i64>().ok() == Some(c.state.exit_code))
                }
                "network" => vals.iter().any(|v| {
                    c.attachments
                        .iter()
                        .any(|(n, a)| n == v || a.network_id.starts_with(v.as_str()))
                        && c.state.status == "running"
                }),
                "ancestor" => vals
                    .iter()
                    .any(|v| c.image == *v || c.image_id.contains(v.as_str())),
                _ => true,
            });
            if ok {
                out.push(crate::views::container_summary(c, &st));
            }
            if limit.map(|l| out.len() >= l).unwrap_or(false) {
                break;
            }
        }
        Ok(out)
    }

    /// POST /networks/{id}/connect: attaches a container; live when it runs (interface,
    /// DNS records, inspect updated at once), recorded for its next start otherwise.
    ///
    /// Errors: 404; 409 already connected or a mode without own networking; 400 bad alias/IP.
    pub async fn connect(
        &self,
        net: &str,
        key: &str,
        es: EndpointSettings,
    ) -> Result<(), EngineError> {
        // the container's own lock first: a start in progress finishes before this looks
        let id = self.state.lock().await.container(key)?.id.clone();
        let fs_lock = self.fs_lock(&id);
        let _own = fs_lock.lock().await;
        let mut st = self.state.lock().await;
        let n = st.network(net)?.clone();
        let mut c = st.container(key)?.clone();
        if n.bridge.is_none() {
            return Err(EngineError::Conflict(format!(
                "container cannot be disconnected from host network or connected to {} network",
                n.name
            )));
        }
        if sandbox::mode(c.host_config.network_mode.as_deref().unwrap_or("")) != Mode::Bridge {
            return Err(EngineError::Conflict(format!("container sharing network namespace with another container or host cannot be connected to any other network ({})", c.name)));
        }
        if c.attachments.iter().any(|(_, a)| a.network_id == n.id) {
            return Err(EngineError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                c.name, n.name
            )));
        }
        if let Some(mac) = &es.mac_address {
            crate::validate::mac_address(
                &format!("EndpointConfig.MacAddress (network {net})"),
                mac,
            )?;
        }
        let att = attachment_from(&n, &es)?;
        c.attachments.push((n.name.clone(), att.clone()));
        if c.state.status == "running" {
            let sb = c
                .sandbox
                .clone()
                .ok_or_else(|| EngineError::Internal("running container without sandbox".into()))?;
            let snl = tether_net::link::Netlink::open_in(&sb)?;
            // The endpoint is joined with the engine's lock released (see `StagedJoin`)
            // and undoes its own steps; what follows is undone here, so that a failed
            // connect leaves no lease, veth or DNS name the record does not list. This
            // container's own lock keeps every other change of its endpoints out; its
            // record is read again after.
            let mut staged = crate::sandbox::StagedJoin::default();
            self.stage_endpoint(&mut st, &c, &mut staged, &n.name, &att, false)
                .await?;
            drop(st);
            self.join_staged(&mut staged, &c, &snl).await;
            st = self.state.lock().await;
            let now = st
                .containers
                .get(&c.id)
                .filter(|x| x.state.status == "running")
                .cloned();
            let Some(now) = now else {
                self.cancel_staged(&mut st, &c, staged).await;
                return Err(EngineError::Conflict(format!(
                    "container {} stopped while it was being connected to network {}",
                    c.name, n.name
                )));
            };
            c = now;
            c.attachments.push((n.name.clone(), att.clone()));
            self.commit_staged(&mut st, &mut c, staged).await?;
            // an overlay may need the gateway bridge for the way out
            let mut done = self.sync_gateway_bridge(&mut st, &mut c, &snl).await;
            if done.is_ok() {
                done = self.refresh_default_route(&st, &c, &snl).await;
            }
            if done.is_ok() {
                done = self.write_etc_files(&st, &c);
            }
            if done.is_ok() {
                done = self.start_dns(&st, &c);
            }
            if done.is_ok() {
                done = self.save_container(&c);
            }
            if let Err(e) = done {
                if let Err(u) = self
                    .detach_endpoint(&mut st, &mut c, &n.name, false, &[])
                    .await
                {
                    tracing::warn!(container = %c.name, error = %u, "undoing a failed connect");
                }
                c.attachments.retain(|(x, _)| x != &n.name);
                if let Err(u) = self.sync_gateway_bridge(&mut st, &mut c, &snl).await {
                    tracing::warn!(container = %c.name, error = %u, "undoing a failed connect");
                }
                // the container's routes and /etc files as they were before the connect
                for undo in [
                    self.refresh_default_route(&st, &c, &snl).await,
                    self.write_etc_files(&st, &c),
                ] {
                    if let Err(u) = undo {
                        tracing::warn!(container = %c.name, error = %u, "undoing a failed connect");
                    }
                }
                return Err(e);
            }
        } else {
            self.save_container(&c)?;
        }
        st.containers.insert(c.id.clone(), c);
        Ok(())
    }

    /// POST /networks/{id}/disconnect. A network this daemon does not know (a global one
    /// on a daemon started without `--cluster-store`) is disconnected by the name the
    /// container's attachment has: its interface leaves the sandbox.
    ///
    /// Errors: 404; 409 not connected.
    pub async fn disconnect(&self, net: &str, key: &str, _force: bool) -> Result<(), EngineError> {
        let id = self.state.lock().await.container(key)?.id.clone();
        let fs_lock = self.fs_lock(&id);
        let _own = fs_lock.lock().await;
        let mut st = self.state.lock().await;
        let mut c = st.container(key)?.clone();
        let n = match st.network(net) {
            Ok(n) => n.clone(),
            Err(e) => {
                // a network this daemon does not know (a global one on a daemon without
                // --cluster-store): the container's attachment of that name goes, with
                // its interface
                let Some(pos) = c.attachments.iter().position(|(name, _)| name == net) else {
                    return Err(e);
                };
                return self.disconnect_unknown(&mut st, c, pos, net).await;
            }
        };
        let Some(pos) = c.attachments.iter().position(|(_, a)| a.network_id == n.id) else {
            return Err(EngineError::Conflict(format!(
                "container {} is not connected to network {}",
                c.name, n.name
            )));
        };
        if c.state.status != "running" {
            c.attachments.remove(pos);
            self.save_container(&c)?;
            st.containers.insert(c.id.clone(), c);
            return Ok(());
        }
        // an overlay endpoint's record and lease leave the cluster store first, without
        // the engine's lock (this container's own lock keeps its connects and
        // disconnects out meanwhile)
        let mut released = Vec::new();
        if let Some(ep) = c
            .endpoints
            .get(&n.name)
            .filter(|_| self.is_global(&n))
            .cloned()
        {
            drop(st);
            self.release_store_share(&n, &ep).await;
            released.push(ep.id);
            st = self.state.lock().await;
            c = st.container(&id)?.clone();
            let Some(pos) = c.attachments.iter().position(|(_, a)| a.network_id == n.id) else {
                return Ok(());
            };
            if c.state.status != "running" {
                // it exited meanwhile (its endpoints went with it): the attachment goes
                c.attachments.remove(pos);
                self.save_container(&c)?;
                st.containers.insert(c.id.clone(), c);
                return Ok(());
            }
        }
        let pos = c
            .attachments
            .iter()
            .position(|(_, a)| a.network_id == n.id)
            .unwrap_or(pos);
        // Once the endpoint is withdrawn the record must say so: the steps after it keep
        // going when one fails, the record is saved, and every failure is reported.
        let left = self
            .detach_endpoint(&mut st, &mut c, &n.name, false, &released)
            .await;
        c.attachments.remove(pos);
        let mut errors = Vec::new();
        if let Err(e) = &left {
            errors.push(format!("removing the endpoint: {e}"));
        }
        self.after_detach(&mut st, c, &n.name, errors).await
    }

    /// `network disconnect` from a network this daemon does not know (a global one on a
    /// daemon started without `--cluster-store`, so its record is only cached): the
    /// container's attachment at `pos`, named `net`, goes; a running container's
    /// interface leaves its sandbox ([`Engine::detach_endpoint`] without a network
    /// record), and the network's device that tether made here goes once no container
    /// has an endpoint on it.
    ///
    /// Errors: every step that failed, after all were tried.
    async fn disconnect_unknown(
        &self,
        st: &mut State,
        mut c: Container,
        pos: usize,
        net: &str,
    ) -> Result<(), EngineError> {
        let running = c.state.status == "running";
        let left = if running {
            self.detach_endpoint(st, &mut c, net, false, &[]).await
        } else {
            Ok(())
        };
        let (_, att) = c.attachments.remove(pos);
        let mut errors: Vec<String> = left
            .err()
            .map(|e| format!("removing the endpoint: {e}"))
            .into_iter()
            .collect();
        // the last endpoint gone: the network's device that tether made here
        // (named in the cached record of a global network) goes too
        let used = st.containers.values().any(|o| {
            o.id != c.id
                && o.attachments.iter().any(|(name, a)| {
                    a.network_id == att.network_id && o.endpoints.contains_key(name)
                })
        });
        let device = crate::cluster::cached_networks(&self.cfg.root)
            .into_iter()
            .find(|n| n.id == att.network_id)
            .and_then(|n| n.bridge);
        if let (false, Some(dev)) = (used, device) {
            if let Err(e) = self.nl.delete(&dev).await {
                errors.push(format!("removing the network's device {dev}: {e}"));
            }
        }
        if running {
            return self.after_detach(st, c, net, errors).await;
        }
        self.save_container(&c)?;
        st.containers.insert(c.id.clone(), c);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Internal(errors.join("; ")))
        }
    }

    /// The rest of a disconnect of a running container from network `net_name` whose
    /// endpoint and attachment are gone from `c`: the gateway bridge synced, published
    /// ports moved to the next primary endpoint, the default route moved, /etc files
    /// rewritten, the record saved and put in the state; the firewall rebuilt after any
    /// failure. Keeps going past failures and reports them all, with those in `errors`.
    async fn after_detach(
        &self,
        st: &mut State,
        mut c: Container,
        net_name: &str,
        mut errors: Vec<String>,
    ) -> Result<(), EngineError> {
        let failed_before = !errors.is_empty();
        // the gateway bridge comes or goes with the overlays that need it
        if net_name != crate::cluster::GWBRIDGE {
            if let Some(sb) = c.sandbox.clone() {
                let synced = match tether_net::link::Netlink::open_in(&sb) {
                    Ok(snl) => self.sync_gateway_bridge(st, &mut c, &snl).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = synced {
                    errors.push(format!("the gateway bridge: {e}"));
                }
            }
        }
        // published ports pointed at this endpoint: move them to the new primary
        if !c.ports.is_empty()
            && !c.endpoints.values().any(|e| {
                c.ports
                    .iter()
                    .any(|p| p.container_ip == e.ip && p.container_ip6 == e.ip6.map(|(a, _, _)| a))
            })
        {
            let withdrawn = self.fw.remove_ports(&c.id[..12], &c.ports);
            c.ports.clear();
            // the host ports' reservations go with them: the next network's take them
            self.live_mut(&c.id, |l| l.reservations.clear());
            if let Err(e) = withdrawn {
                errors.push(format!("withdrawing the published ports: {e}"));
                // the old elements hold the host ports: rebuild the firewall without
                // them, so that the ports can move to the next network
                st.containers.insert(c.id.clone(), c.clone());
                if let Err(e) = self.resync_firewall(st) {
                    errors.push(format!("rebuilding the firewall: {e}"));
                }
            }
            if let Err(e) = self.publish(st, &mut c) {
                errors.push(format!("publishing the ports on the next network: {e}"));
            }
        }
        if let Some(sb) = c.sandbox.clone() {
            let routed = match tether_net::link::Netlink::open_in(&sb) {
                Ok(snl) => self.refresh_default_route(st, &c, &snl).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = routed {
                errors.push(format!("moving the default route: {e}"));
            }
        }
        if let Err(e) = self.write_etc_files(st, &c) {
            errors.push(format!("rewriting /etc/hosts: {e}"));
        }
        if let Err(e) = self.save_container(&c) {
            errors.push(format!("saving the container: {e}"));
        }
        let name = c.name.clone();
        st.containers.insert(c.id.clone(), c);
        if failed_before || !errors.is_empty() {
            // what a failed step left of the endpoint or of its published ports in the
            // firewall goes now
            if let Err(e) = self.resync_firewall(st) {
                errors.push(format!("rebuilding the firewall: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Internal(format!(
                "container {name} was disconnected from network {net_name}, but: {}",
                errors.join("; ")
            )))
        }
    }

    /// Re-adopts container `id` at daemon start: a running one that the container monitor
    /// still serves gets its DNS, ports and monitor task back; one that exited meanwhile
    /// (or whose monitor is gone) is recorded as exited.
    pub(crate) async fn readopt(self: &Arc<Self>, id: &str) {
        let mut st = self.state.lock().await;
        let Ok(mut c) = st.container(id).cloned() else {
            return;
        };
        self.live_mut(id, |_| ());
        if c.state.status == "restarting" {
            // the daemon went away between two runs: the restart loop goes on
            drop(st);
            let (me, cid) = (self.clone(), id.to_string());
            tokio::spawn(async move { me.auto_restart(&cid).await });
            return;
        }
        if c.state.status != "running" {
            return;
        }
        // the container monitor reports whether it still serves the container (it may
        // have exited meanwhile, or be ending: then the watch ends at once)
        let (m, cid) = (self.monitor.clone(), id.to_string());
        let watch = tokio::task::spawn_blocking(move || m.watch(&cid))
            .await
            .ok()
            .and_then(|r| {
                r.map_err(|e| {
                    tracing::warn!(container = %c.name, error = %e, "asking the container monitor")
                })
                .ok()
            })
            .flatten();
        let Some(watch) = watch else {
            drop(st);
            self.on_exit(id).await;
            return;
        };
        self.rehold_sandbox(&mut c);
        for (name, att) in &c.attachments {
            // the endpoint holds its addresses again through its network's IPAM (the local
            // pools have them from `rebuild_leases`; a global network's go back into the
            // cluster store under this host's new session)
            if let (Some(ep), Some(n)) =
                (c.endpoints.get(name), st.networks.get_mut(&att.network_id))
            {
                match self.ipam_of(n) {
                    Ok(ipam) => {
                        ipam.restore_address(&mut n.pools_mut(), &ep.id, &ep.lease())
                            .await
                    }
                    Err(e) => {
                        tracing::warn!(container = %c.name, network = %n.name, error = %e, "restoring an endpoint's addresses")
                    }
                }
            }
            if let (Some(ep), Some(n)) = (c.endpoints.get(name), st.networks.get(&att.network_id)) {
                if self.is_global(n) {
                    self.readopt_global_endpoint(n, &c, att, ep).await;
                }
                if n.dns {
                    self.dns.add_endpoint(
                        &n.id,
                        &c.id,
                        &sandbox::dns_names(&c, att),
                        ep.ip,
                        ep.ip6.map(|(a, _, _)| a),
                    );
                }
            }
        }
        if !c.ports.is_empty() {
            let fds: Vec<OwnedFd> = c
                .ports
                .iter()
                .filter_map(|p| crate::ports::reserve(p.proto, p.host_ip, p.host_port).ok())
                .collect();
            // the firewall's elements are restored for every container at once, in place,
            // at the end of restore (Engine::sync_firewall)
            self.live_mut(id, |l| l.reservations = fds);
        }
        if let Err(e) = self.start_dns(&st, &c) {
            tracing::error!(container = %c.name, error = %e, "restoring DNS");
        }
        c.state.error.clear();
        st.containers.insert(id.to_string(), c.clone());
        drop(st);
        self.spawn_monitor(id, watch);
        if let Some(hc) = c
            .config
            .healthcheck
            .clone()
            .filter(|h| crate::health::test_command(h).is_some())
        {
            self.spawn_health(id, &hc);
        }
    }

    /// What logs and attach need of a container.
    pub async fn log_source(&self, key: &str) -> Result<LogSource, EngineError> {
        let st = self.state.lock().await;
        let c = st.container(key)?;
        Ok(LogSource {
            id: c.id.clone(),
            path: self.container_dir(&c.id).join("json.log"),
            running: c.state.status == "running",
            tty: c.config.tty.unwrap_or(false),
            stdin: c.config.open_stdin.unwrap_or(false),
            attach_socket: shim::attach_socket(&self.sock_prefix(&c.id)),
        })
    }

    /// POST /containers/{id}/resize: sets a running tty container's terminal size.
    pub async fn resize_container(
        &self,
        key: &str,
        rows: u16,
        cols: u16,
    ) -> Result<(), EngineError> {
        let (id, tty, running) = {
            let st = self.state.lock().await;
            let c = st.container(key)?;
            (
                c.id.clone(),
                c.config.tty.unwrap_or(false),
                c.state.status == "running",
            )
        };
        if !running {
            return Err(EngineError::Conflict(format!(
                "Container {id} is not running"
            )));
        }
        if !tty {
            return Ok(());
        }
        let path = shim::control_socket(&self.sock_prefix(&id));
        let mut s = tokio::net::UnixStream::connect(&path).await?;
        tokio::io::AsyncWriteExt::write_all(&mut s, format!("resize {rows} {cols}\n").as_bytes())
            .await?;
        Ok(())
    }

    /// Whether container `id` is running now.
    pub async fn is_running(&self, id: &str) -> bool {
        self.state
            .lock()
            .await
            .containers
            .get(id)
            .map(|c| c.state.status == "running")
            .unwrap_or(false)
    }

    /// Daemon shutdown: stops the monitor tasks and DNS listeners; containers keep running
    /// (their sandboxes, bridges and rules stay for the next daemon to adopt, the container
    /// monitor goes on). When none runs, the bridges and the nftables table are removed
    /// too and the container monitor ends, so a stopped daemon leaves the host as it found
    /// it.
    pub async fn shutdown(&self) {
        {
            let mut g = self.live.lock().unwrap_or_else(|p| p.into_inner());
            for l in g.values_mut() {
                if let Some(t) = l.monitor.take() {
                    t.abort();
                }
                l.dns = None;
                l.reservations.clear();
            }
        }
        let st = self.state.lock().await;
        if let Some(cl) = self.cluster.as_ref() {
            if self.has_global_endpoints(&st) {
                // overlay containers keep running: their records stay under this host's
                // lease, which the next daemon takes over (or which expires within the
                // TTL if none comes), so other hosts keep reaching them meanwhile
                tracing::info!("overlay containers keep running: the cluster lease is left to expire or be taken over");
            } else {
                // this host's endpoints and addresses leave the other hosts at once
                cl.store.leave().await;
            }
        }
        let drivers = self.drivers.clone();
        let _ = tokio::task::spawn_blocking(move || drivers.all().for_each(|d| d.flush())).await;
        if st.containers.values().any(|c| c.state.status == "running") {
            return;
        }
        let monitor = self.monitor.clone();
        let _ = tokio::task::spawn_blocking(move || monitor.release()).await;
        for n in st.networks.values() {
            let done = match self.driver_of(n) {
                Ok(d) => d
                    .shutdown_network(&crate::networks::spec_of(n))
                    .await
                    .map_err(EngineError::from),
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                tracing::warn!(network = %n.name, error = %e, "removing the network's devices");
            }
        }
        if let Err(e) = self.fw.teardown() {
            tracing::warn!(error = %e, "removing the nftables table");
        }
    }
}

/// The image's `Volumes` and `Healthcheck` merged into a create body as moby's
/// `mergeAndVerifyConfig` does: image volumes are added to the container's (each
/// later gets an anonymous volume unless a bind or volume covers it); no container
/// healthcheck takes the image's, and a container healthcheck without a test or
/// with zero durations/retries takes those from the image's.
pub(crate) fn merge_image_volumes_health(
    body: &mut ContainerCreateBody,
    ic: &tether_image::ImageConfig,
) {
    if !ic.volumes.is_empty() {
        let mut vols = body.volumes.take().unwrap_or_default();
        for v in &ic.volumes {
            if !vols.contains(v) {
                vols.push(v.clone());
            }
        }
        body.volumes = Some(vols);
    }
    if let Some(ih) = &ic.healthcheck {
        let ih = ih.to_api();
        body.healthcheck = Some(match body.healthcheck.take() {
            None => ih,
            Some(mut h) => {
                if h.test.as_ref().is_none_or(|t| t.is_empty()) {
                    h.test = ih.test;
                }
                let zero = |v: Option<i64>| v.unwrap_or(0) == 0;
                if zero(h.interval) {
                    h.interval = ih.interval;
                }
                if zero(h.timeout) {
                    h.timeout = ih.timeout;
                }
                if zero(h.start_period) {
                    h.start_period = ih.start_period;
                }
                if zero(h.start_interval) {
                    h.start_interval = ih.start_interval;
                }
                if zero(h.retries) {
                    h.retries = ih.retries;
                }
                h
            }
        });
    }
}

/// The OCI spec with `process.consoleSize` set: the terminal runc creates starts at
/// `h` rows by `w` columns (Docker's `HostConfig.ConsoleSize`).
fn with_console_size<T: serde::Serialize + serde::de::DeserializeOwned>(
    spec: T,
    h: u16,
    w: u16,
) -> Result<T, EngineError> {
    let mut v = serde_json::to_value(&spec).map_err(|e| EngineError::Internal(e.to_string()))?;
    v["process"]["consoleSize"] = serde_json::json!({"height": h, "width": w});
    serde_json::from_value(v).map_err(|e| EngineError::Internal(format!("console size: {e}")))
}

/// The values of a create body's Config that are checked on their own: Hostname, the
/// MAC addresses (container-wide and per endpoint), the healthcheck.
fn validate_config(
    body: &ContainerCreateBody,
    legacy_mac: Option<&str>,
) -> Result<(), EngineError> {
    crate::validate::hostname(body.hostname.as_deref().unwrap_or(""))?;
    if let Some(mac) = legacy_mac {
        crate::validate::mac_address("Config.MacAddress", mac)?;
    }
    if let Some(eps) = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.as_ref())
    {
        for (net, es) in eps {
            if let Some(mac) = &es.mac_address {
                crate::validate::mac_address(
                    &format!("NetworkingConfig.EndpointsConfig.{net}.MacAddress"),
                    mac,
                )?;
            }
        }
    }
    if let Some(h) = &body.healthcheck {
        crate::validate::healthcheck(h)?;
    }
    Ok(())
}

/// One `HostConfig.Mounts` entry as Docker checks it: absolute target; for type bind an
/// absolute source that exists (a bind mount never creates its source, unlike `-v`);
/// for type volume a volume name.
///
/// Errors: 400 in Docker's wording (`invalid mount config for type "bind": bind source
/// path does not exist: /x`).
fn check_mount(
    typ: Option<bollard_stubs::models::MountType>,
    src: &str,
    dst: &str,
) -> Result<(), EngineError> {
    use bollard_stubs::models::MountType;
    let kind = match typ {
        Some(MountType::BIND) => "bind",
        Some(MountType::VOLUME) | None => "volume",
        Some(_) => return Ok(()),
    };
    let bad = |why: String| {
        EngineError::InvalidParam(format!("invalid mount config for type {kind:?}: {why}"))
    };
    if !dst.starts_with('/') {
        return Err(bad(format!(
            "invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    if kind == "bind" {
        if !src.starts_with('/') {
            return Err(bad(format!(
                "invalid mount path: '{src}' mount path must be absolute"
            )));
        }
        if !std::path::Path::new(src).exists() {
            return Err(bad(format!("bind source path does not exist: {src}")));
        }
    } else if typ.is_some() {
        if !crate::volumes::is_volume_source(src) {
            return Err(bad(format!(
                "invalid volume name {src:?}: a volume mount takes a volume name; use type bind for a host path"
            )));
        }
        crate::validate::volume_name(src)?;
    }
    Ok(())
}

/// Docker's restart policies: "", "no", "always", "unless-stopped", "on-failure" (with
/// MaximumRetryCount); none goes with AutoRemove.
pub(crate) fn validate_restart(hc: &HostConfig) -> Result<(), EngineError> {
    let Some(p) = &hc.restart_policy else {
        return Ok(());
    };
    let name = p.name.map(|n| n.to_string()).unwrap_or_default();
    let name = name.trim_matches('"');
    match name {
        "" | "no" => return Ok(()),
        "always" | "unless-stopped" | "on-failure" => {}
        other => return Err(EngineError::InvalidParam(format!("invalid restart policy {other:?}: use no, always, unless-stopped or on-failure[:max-retries]"))),
    }
    if hc.auto_remove.unwrap_or(false) {
        return Err(EngineError::InvalidParam(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    if name != "on-failure" && p.maximum_retry_count.unwrap_or(0) != 0 {
        return Err(EngineError::InvalidParam(format!("invalid restart policy: maximum retry count can only be used with 'on-failure' (not {name})")));
    }
    Ok(())
}

/// How long to wait before the restart policy restarts `c` (None: it does not). Docker's
/// backoff: 100 ms, doubling per consecutive restart, at most 10 s here.
fn restart_delay(c: &Container) -> Option<std::time::Duration> {
    let p = c.host_config.restart_policy.as_ref()?;
    let name = p.name.map(|n| n.to_string()).unwrap_or_default();
    let restart = match name.trim_matches('"') {
        "always" | "unless-stopped" => !c.manually_stopped,
        "on-failure" => {
            let max = p.maximum_retry_count.unwrap_or(0);
            !c.manually_stopped && c.state.exit_code != 0 && (max == 0 || c.auto_restarts < max)
        }
        _ => false,
    };
    restart.then(|| {
        std::time::Duration::from_millis((100u64 << c.auto_restarts.clamp(0, 7) as u32).min(10_000))
    })
}

/// What `POST /containers/prune` removed (Docker's answer).
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPrune {
    /// The ids of the removed containers.
    pub containers_deleted: Vec<String>,
    /// Bytes freed (always 0, see [`Engine::prune_containers`]).
    pub space_reclaimed: u64,
}

/// A container's log and attach endpoints.
#[derive(Clone, Debug)]
pub struct LogSource {
    /// Container id.
    pub id: String,
    /// The json-file log.
    pub path: PathBuf,
    /// Running now.
    pub running: bool,
    /// Has a terminal: streams are raw, not multiplexed.
    pub tty: bool,
    /// Its stdin is open (`-i`): attach may send input to `attach_socket`.
    pub stdin: bool,
    /// The attach socket the container monitor serves for it.
    pub attach_socket: PathBuf,
}

fn name_match(name: &str, pat: &str) -> bool {
    let pat = pat.trim_start_matches('/');
    if let Some(p) = pat.strip_prefix('^') {
        if let Some(p) = p.strip_suffix('$') {
            return name == p;
        }
        return name.starts_with(p);
    }
    if let Some(p) = pat.strip_suffix('$') {
        return name.ends_with(p);
    }
    name.contains(pat)
}

fn attachment_from(
    n: &crate::state::Network,
    es: &EndpointSettings,
) -> Result<Attachment, EngineError> {
    let aliases: Vec<String> = es
        .aliases
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    if !aliases.is_empty() && !n.dns {
        return Err(EngineError::InvalidParam(format!("network-scoped alias is supported only for containers in user defined networks (not {})", n.name)));
    }
    let ipv4 = match es
        .ipam_config
        .as_ref()
        .and_then(|i| i.ipv4_address.clone())
        .filter(|s| !s.is_empty())
    {
        Some(s) => {
            if !n.dns {
                return Err(EngineError::InvalidParam(format!(
                    "user specified IP address is supported on user defined networks only (not {})",
                    n.name
                )));
            }
            if !n.enable_ipv4 {
                return Err(EngineError::InvalidParam(format!(
                    "--ip {s} given but network {} has no IPv4 (it was created with --ipv4=false)",
                    n.name
                )));
            }
            if !n.subnet_given {
                return Err(EngineError::InvalidParam(format!(
                    "user specified IP address is supported only when connecting to networks with user configured subnets ({} was created without --subnet)",
                    n.name
                )));
            }
            Some(s.parse().map_err(|_| {
                EngineError::InvalidParam(format!("invalid IPv4 address {s:?} for --ip"))
            })?)
        }
        None => None,
    };
    let ipv6 = match es
        .ipam_config
        .as_ref()
        .and_then(|i| i.ipv6_address.clone())
        .filter(|s| !s.is_empty())
    {
        Some(s) => {
            if n.pool6.is_none() {
                return Err(EngineError::InvalidParam(format!(
                    "--ip6 {s} given but network {} has no IPv6 (create it with --ipv6)",
                    n.name
                )));
            }
            Some(s.parse().map_err(|_| {
                EngineError::InvalidParam(format!("invalid IPv6 address {s:?} for --ip6"))
            })?)
        }
        None => None,
    };
    Ok(Attachment {
        network_id: n.id.clone(),
        aliases,
        ipv4,
        ipv6,
        links: es.links.clone().unwrap_or_default(),
        gw_priority: es.gw_priority.unwrap_or(0),
        mac: es
            .mac_address
            .clone()
            .filter(|m| !m.is_empty())
            .map(|m| m.to_ascii_lowercase()),
        driver_opts: es.driver_opts.clone().unwrap_or_default(),
        link_local_ips: es
            .ipam_config
            .as_ref()
            .and_then(|i| i.link_local_ips.clone())
            .unwrap_or_default(),
    })
}

/// Normalizes a signal given as a name ("TERM", "SIGTERM") or a number, for `runc kill`.
///
/// Errors: an unknown signal (names it).
pub fn normalize_signal(s: &str) -> Result<String, EngineError> {
    if s.is_empty() {
        return Ok("SIGKILL".into());
    }
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map(|sig| sig.as_str().to_string())
            .map_err(|_| EngineError::InvalidParam(format!("invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig.as_str().to_string())
        .map_err(|_| {
            EngineError::InvalidParam(format!(
                "invalid signal: {s} (use a name such as TERM, KILL, HUP, or a number)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn image_volumes_and_healthcheck_merge() {
        let ic = tether_image::ImageConfig {
            volumes: vec!["/data".into(), "/logs".into()],
            healthcheck: Some(tether_image::HealthConfig {
                test: vec!["CMD".into(), "check".into()],
                interval: 5,
                retries: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut b = ContainerCreateBody::default();
        merge_image_volumes_health(&mut b, &ic);
        assert_eq!(b.volumes, Some(vec!["/data".into(), "/logs".into()]));
        let h = b.healthcheck.unwrap();
        assert_eq!(h.test, Some(vec!["CMD".into(), "check".into()]));
        assert_eq!((h.interval, h.retries, h.timeout), (Some(5), Some(2), None));

        let mut b = ContainerCreateBody {
            volumes: Some(vec!["/logs".into(), "/x".into()]),
            healthcheck: Some(bollard_stubs::models::HealthConfig {
                interval: Some(9),
                ..Default::default()
            }),
            ..Default::default()
        };
        merge_image_volumes_health(&mut b, &ic);
        assert_eq!(
            b.volumes,
            Some(vec!["/logs".into(), "/x".into(), "/data".into()])
        );
        let h = b.healthcheck.unwrap();
        assert_eq!(h.test, Some(vec!["CMD".into(), "check".into()]));
        assert_eq!((h.interval, h.retries), (Some(9), Some(2)));

        let mut b = ContainerCreateBody::default();
        merge_image_volumes_health(&mut b, &tether_image::ImageConfig::default());
        assert!(b.volumes.is_none() && b.healthcheck.is_none());
    }
    #[test]
    fn signals() {
        assert_eq!(normalize_signal("TERM").unwrap(), "SIGTERM");
        assert_eq!(normalize_signal("sigkill").unwrap(), "SIGKILL");
        assert_eq!(normalize_signal("9").unwrap(), "SIGKILL");
        assert!(normalize_signal("NOPE")
            .unwrap_err()
            .to_string()
            .contains("NOPE"));
    }
    #[test]
    fn env_merge_overrides_by_key() {
        let m = merge_env(
            &["PATH=/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
        );
        assert_eq!(m, vec!["PATH=/bin", "A=2", "B=3"]);
        // replaced in place, new keys in the user's order, KEY alone unsets
        let m = merge_env(
            &["A=1".into(), "PATH=/bin".into(), "C=0".into()],
            &[
                "Z=9".into(),
                "A=2".into(),
                "B=3".into(),
                "C".into(),
                "Z=8".into(),
            ],
        );
        assert_eq!(m, vec!["A=2", "PATH=/bin", "Z=8", "B=3"]);
    }
    #[test]
    fn names() {
        assert!(name_match("backend-x", "backend"));
        assert!(name_match("backend-x", "^backend-x$"));
        assert!(!name_match("backend-x", "^x"));
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    /// More containers than adjective × surname pairs still get unique names (the
    /// generator used to loop forever at 289 with the engine's lock held).
    #[test]
    fn names_stay_unique_past_the_word_lists() {
        let mut names = HashSet::new();
        for _ in 0..(ADJ.len() * NOUN.len() + 200) {
            let n = unique_name(|n| names.contains(n));
            assert!(names.insert(n));
        }
    }
}

/// What [`Engine::prepare_start`] made ready for the runtime.
struct Prepared {
    merged: PathBuf,
    hostname: String,
    /// The legacy link variables (default bridge only), before the container's own env.
    link_env: Vec<String>,
    t0: std::time::Instant,
    t_rootfs: std::time::Duration,
    t_net: std::time::Duration,
}

/// The legacy link variables of a container on the default bridge (moby
/// `daemon/links.Link.ToEnv`), for each running link target on that network:
/// `ALIAS_PORT=tcp://IP:PORT` (the lowest exposed port), per exposed port
/// `ALIAS_PORT_<port>_<PROTO>` with `_ADDR`, `_PORT`, `_PROTO`, `ALIAS_NAME=/self/alias`,
/// and the target's environment as `ALIAS_ENV_<NAME>` (but HOME and PATH). Containers on
/// user-defined networks get none (they resolve the alias by DNS), as in Docker.
fn legacy_link_env(st: &State, c: &Container) -> Vec<String> {
    let on_default = c
        .attachments
        .first()
        .and_then(|(_, a)| st.networks.get(&a.network_id))
        .is_some_and(|n| n.name == "bridge");
    if !on_default {
        return Vec::new();
    }
    let mut env = Vec::new();
    for l in c.host_config.links.clone().unwrap_or_default() {
        let (target, alias) = sandbox::parse_link(&l);
        let Ok(t) = st.container(target) else {
            continue;
        };
        let ip = t
            .attachments
            .iter()
            .find(|(n, _)| n == "bridge")
            .and_then(|(n, _)| t.endpoints.get(n))
            .and_then(|e| e.ip);
        let Some(ip) = ip else { continue };
        let prefix = alias.to_ascii_uppercase().replace('-', "_");
        let mut ports: Vec<(u16, String)> = t
            .config
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|k| {
                let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
                port.parse().ok().map(|p| (p, proto.to_string()))
            })
            .collect();
        ports.sort();
        if let Some((port, proto)) = ports.first() {
            env.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
        }
        for (port, proto) in &ports {
            let p = format!("{prefix}_PORT_{port}_{}", proto.to_ascii_uppercase());
            env.push(format!("{p}={proto}://{ip}:{port}"));
            env.push(format!("{p}_ADDR={ip}"));
            env.push(format!("{p}_PORT={port}"));
            env.push(format!("{p}_PROTO={proto}"));
        }
        env.push(format!("{prefix}_NAME=/{}/{alias}", c.name));
        for v in t.config.env.clone().unwrap_or_default() {
            if let Some((k, val)) = v.split_once('=') {
                if k != "HOME" && k != "PATH" {
                    env.push(format!("{prefix}_ENV_{k}={val}"));
                }
            }
        }
    }
    env
}
