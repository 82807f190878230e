//! Planning: object names, Compose's labels, start order, and the Docker API
//! bodies that create networks, volumes and containers.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::error::{ComposeError, Result};
use crate::load::{parse_duration, parse_restart, Project};
use crate::model::{Condition, Service};

/// `com.docker.compose.project`.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
/// `com.docker.compose.service`.
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
/// `com.docker.compose.container-number`.
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
/// `com.docker.compose.oneoff` (`"True"` / `"False"`).
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
/// `com.docker.compose.project.working_dir`.
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// `com.docker.compose.project.config_files`.
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// `com.docker.compose.version`.
pub const LABEL_VERSION: &str = "com.docker.compose.version";
/// `com.docker.compose.config-hash`: changes when the service's configuration does.
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// `com.docker.compose.depends_on`.
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// `com.docker.compose.image`.
pub const LABEL_IMAGE: &str = "com.docker.compose.image";
/// `com.docker.compose.network` (the network's key in the file).
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
/// `com.docker.compose.volume` (the volume's key in the file).
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
/// `com.docker.compose.slug` (one-off containers).
pub const LABEL_SLUG: &str = "com.docker.compose.slug";

/// The version written into `com.docker.compose.version` (tether's own).
pub const COMPOSE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How many containers a service runs (`deploy.replicas`, `scale`, default 1).
pub fn replicas(svc: &Service) -> u32 {
    svc.deploy
        .as_ref()
        .and_then(|d| d.replicas)
        .or(svc.scale)
        .unwrap_or(1)
}

/// The services `svc` must start after: `depends_on`, `links` and `network_mode: service:X`.
pub fn dependencies(svc: &Service) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = svc.depends_on.0.keys().cloned().collect();
    for l in &svc.links {
        out.insert(l.split(':').next().unwrap_or("").to_string());
    }
    if let Some(t) = svc
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
    {
        out.insert(t.to_string());
    }
    out
}

/// The services to start, dependencies first (topological, ties by name). With
/// `only` non-empty: those services and everything they depend on. A cycle is an error
/// naming it.
pub fn start_order(p: &Project, only: &[String]) -> Result<Vec<String>> {
    for s in only {
        if !p.services.contains_key(s) {
            return Err(ComposeError::project(format!("no such service: {s}")));
        }
    }
    let roots: Vec<String> = if only.is_empty() {
        p.services.keys().cloned().collect()
    } else {
        only.to_vec()
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        p: &Project,
        s: &str,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        match marks.get(s) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let from = stack.iter().position(|x| x == s).unwrap_or(0);
                let mut cycle: Vec<String> = stack[from..].to_vec();
                cycle.push(s.to_string());
                return Err(ComposeError::project(format!(
                    "dependency cycle detected: {}",
                    cycle.join(" -> ")
                )));
            }
            None => {}
        }
        marks.insert(s.to_string(), Mark::Visiting);
        stack.push(s.to_string());
        if let Some(svc) = p.services.get(s) {
            for d in dependencies(svc) {
                if !p.services.contains_key(&d) {
                    return Err(ComposeError::project(format!(
                        "service {s:?} depends on undefined service {d:?}: invalid compose project"
                    )));
                }
                visit(p, &d, marks, stack, out)?;
            }
        }
        stack.pop();
        marks.insert(s.to_string(), Mark::Done);
        out.push(s.to_string());
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut out = Vec::new();
    for r in roots {
        visit(p, &r, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// What kind of container to plan.
#[derive(Debug, Clone, Default)]
pub struct ContainerOptions {
    /// A one-off container of `compose run` (`oneoff` label "True", no aliases,
    /// no published ports unless `service_ports`).
    pub oneoff: bool,
    /// The one-off container's slug (the random part of its name).
    pub slug: Option<String>,
    /// Replaces the service's `command`.
    pub command: Option<Vec<String>>,
    /// Replaces the service's `entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// More `KEY=VALUE` variables (after the service's).
    pub env: Vec<String>,
    /// Publish the service's ports even for a one-off container.
    pub service_ports: bool,
    /// Allocate a terminal and keep stdin open (one-off containers).
    pub tty: Option<bool>,
    /// Keep stdin open and attach it (one-off containers).
    pub interactive: bool,
    /// Replaces `user`.
    pub user: Option<String>,
    /// Replaces `working_dir`.
    pub workdir: Option<String>,
    /// Remove the container when it exits.
    pub auto_remove: bool,
}

impl Project {
    /// The daemon-side name of a network key.
    pub fn network_name(&self, key: &str) -> String {
        self.networks
            .get(key)
            .and_then(|n| n.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// The daemon-side name of a volume key.
    pub fn volume_name(&self, key: &str) -> String {
        self.volumes
            .get(key)
            .and_then(|v| v.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// The name of container `n` (from 1) of a service: `container_name`, or `<project>-<service>-<n>`.
    pub fn container_name(&self, service: &str, n: u32) -> String {
        match self
            .services
            .get(service)
            .and_then(|s| s.container_name.clone())
        {
            Some(c) => c,
            None => format!("{}-{service}-{n}", self.name),
        }
    }

    /// The name of a one-off container: `<project>-<service>-run-<slug[..12]>`.
    pub fn oneoff_name(&self, service: &str, slug: &str) -> String {
        let short: String = slug.chars().take(12).collect();
        format!("{}-{service}-run-{short}", self.name)
    }

    /// The network keys a service joins, primary first (highest `priority`, then by
    /// key); empty with `network_mode`.
    pub fn service_networks(&self, service: &str) -> Vec<String> {
        let Some(svc) = self.services.get(service) else {
            return Vec::new();
        };
        if svc.network_mode.is_some() {
            return Vec::new();
        }
        if svc.networks.0.is_empty() {
            return vec!["default".into()];
        }
        let mut v: Vec<(i64, String)> = svc
            .networks
            .0
            .iter()
            .map(|(k, n)| (n.priority.unwrap_or(0), k.clone()))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.into_iter().map(|(_, k)| k).collect()
    }

    /// The network keys used by the given services (all when empty), sorted.
    pub fn used_networks(&self, services: &[String]) -> Vec<String> {
        let mut set = BTreeSet::new();
        for s in self.services.keys() {
            if services.is_empty() || services.contains(s) {
                set.extend(self.service_networks(s));
            }
        }
        set.into_iter().collect()
    }

    /// The volume keys mounted by the given services (all when empty), sorted.
    pub fn used_volumes(&self, services: &[String]) -> Vec<String> {
        let mut set = BTreeSet::new();
        for (s, svc) in &self.services {
            if services.is_empty() || services.contains(s) {
                for m in &svc.volumes.0 {
                    if m.kind == "volume" {
                        if let Some(src) = &m.source {
                            set.insert(src.clone());
                        }
                    }
                }
            }
        }
        set.into_iter().collect()
    }

    fn config_files_label(&self) -> String {
        self.config_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The labels of a network Compose creates.
    pub fn network_labels(&self, key: &str) -> BTreeMap<String, String> {
        let mut l = self
            .networks
            .get(key)
            .map(|n| n.labels.0.clone())
            .unwrap_or_default();
        l.insert(LABEL_PROJECT.into(), self.name.clone());
        l.insert(LABEL_NETWORK.into(), key.into());
        l.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
        l
    }

    /// The labels of a volume Compose creates.
    pub fn volume_labels(&self, key: &str) -> BTreeMap<String, String> {
        let mut l = self
            .volumes
            .get(key)
            .map(|v| v.labels.0.clone())
            .unwrap_or_default();
        l.insert(LABEL_PROJECT.into(), self.name.clone());
        l.insert(LABEL_VOLUME.into(), key.into());
        l.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
        l
    }

    /// `POST /networks/create` for a network key.
    pub fn network_create_body(&self, key: &str) -> Json {
        let n = self.networks.get(key).cloned().unwrap_or_default();
        let mut b = Map::new();
        b.insert("Name".into(), json!(self.network_name(key)));
        b.insert("CheckDuplicate".into(), json!(true));
        b.insert(
            "Driver".into(),
            json!(n.driver.clone().unwrap_or_else(|| "bridge".into())),
        );
        b.insert("Internal".into(), json!(n.internal));
        b.insert("Attachable".into(), json!(n.attachable));
        if let Some(v6) = n.enable_ipv6 {
            b.insert("EnableIPv6".into(), json!(v6));
        }
        b.insert("Options".into(), json!(n.driver_opts.0));
        b.insert("Labels".into(), json!(self.network_labels(key)));
        if let Some(ipam) = &n.ipam {
            let config: Vec<Json> = ipam
                .config
                .iter()
                .map(|c| {
                    let mut m = Map::new();
                    if let Some(s) = &c.subnet {
                        m.insert("Subnet".into(), json!(s));
                    }
                    if let Some(s) = &c.gateway {
                        m.insert("Gateway".into(), json!(s));
                    }
                    if let Some(s) = &c.ip_range {
                        m.insert("IPRange".into(), json!(s));
                    }
                    if !c.aux_addresses.0.is_empty() {
                        m.insert("AuxiliaryAddresses".into(), json!(c.aux_addresses.0));
                    }
                    Json::Object(m)
                })
                .collect();
            b.insert(
                "IPAM".into(),
                json!({
                    "Driver": ipam.driver.clone().unwrap_or_else(|| "default".into()),
                    "Config": config,
                    "Options": ipam.options.0,
                }),
            );
        }
        Json::Object(b)
    }

    /// `POST /volumes/create` for a volume key.
    pub fn volume_create_body(&self, key: &str) -> Json {
        let v = self.volumes.get(key).cloned().unwrap_or_default();
        json!({
            "Name": self.volume_name(key),
            "Driver": v.driver.clone().unwrap_or_else(|| "local".into()),
            "DriverOpts": v.driver_opts.0,
            "Labels": self.volume_labels(key),
        })
    }

    /// A digest of the service's configuration (`com.docker.compose.config-hash`):
    /// a container whose label differs is recreated by `up`.
    pub fn config_hash(&self, service: &str) -> String {
        let svc = self.services.get(service).cloned().unwrap_or_default();
        // the hash covers the service and the names its objects resolve to
        let doc = json!({
            "service": serde_json::to_value(&svc).unwrap_or(Json::Null),
            "networks": self.service_networks(service).iter().map(|k| self.network_name(k)).collect::<Vec<_>>(),
        });
        hex::encode(Sha256::digest(doc.to_string().as_bytes()))
    }

    /// The labels of a container of `service` numbered `n`.
    pub fn container_labels(
        &self,
        service: &str,
        n: u32,
        opts: &ContainerOptions,
    ) -> BTreeMap<String, String> {
        let svc = self.services.get(service).cloned().unwrap_or_default();
        let mut l = svc.labels.0.clone();
        l.insert(LABEL_PROJECT.into(), self.name.clone());
        l.insert(LABEL_SERVICE.into(), service.into());
        l.insert(LABEL_NUMBER.into(), n.to_string());
        l.insert(
            LABEL_ONEOFF.into(),
            if opts.oneoff { "True" } else { "False" }.into(),
        );
        l.insert(
            LABEL_WORKING_DIR.into(),
            self.working_dir.display().to_string(),
        );
        l.insert(LABEL_CONFIG_FILES.into(), self.config_files_label());
        l.insert(LABEL_VERSION.into(), COMPOSE_VERSION.into());
        l.insert(LABEL_CONFIG_HASH.into(), self.config_hash(service));
        l.insert(LABEL_IMAGE.into(), svc.image.clone().unwrap_or_default());
        let deps: Vec<String> = svc
            .depends_on
            .0
            .iter()
            .map(|(k, d)| {
                let c = match d.condition {
                    Condition::ServiceStarted => "service_started",
                    Condition::ServiceHealthy => "service_healthy",
                    Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
                };
                format!("{k}:{c}:{}", d.restart)
            })
            .collect();
        l.insert(LABEL_DEPENDS_ON.into(), deps.join(","));
        if let Some(slug) = &opts.slug {
            l.insert(LABEL_SLUG.into(), slug.clone());
        }
        l
    }

    /// `POST /containers/create` for container `n` of `service` (the name goes in the query).
    pub fn container_create_body(
        &self,
        service: &str,
        n: u32,
        opts: &ContainerOptions,
    ) -> Result<Json> {
        let svc = self
            .services
            .get(service)
            .ok_or_else(|| ComposeError::project(format!("no such service: {service}")))?;
        let ctx = |m: String| ComposeError::project(format!("service {service:?}: {m}"));
        let mut c = Map::new();
        if let Some(h) = &svc.hostname {
            c.insert("Hostname".into(), json!(h));
        }
        if let Some(d) = &svc.domainname {
            c.insert("Domainname".into(), json!(d));
        }
        let user = opts.user.clone().or_else(|| svc.user.clone());
        if let Some(u) = user {
            c.insert("User".into(), json!(u));
        }
        let tty = opts.tty.unwrap_or(svc.tty);
        let stdin = opts.interactive || svc.stdin_open;
        c.insert("AttachStdin".into(), json!(opts.interactive));
        c.insert("AttachStdout".into(), json!(opts.oneoff));
        c.insert("AttachStderr".into(), json!(opts.oneoff));
        c.insert("Tty".into(), json!(tty));
        c.insert("OpenStdin".into(), json!(stdin));
        c.insert("StdinOnce".into(), json!(opts.interactive));
        let mut env: Vec<String> = svc
            .environment
            .0
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        env.extend(opts.env.iter().cloned());
        c.insert("Env".into(), json!(env));
        if let Some(cmd) = opts
            .command
            .clone()
            .or_else(|| svc.command.as_ref().map(|c| c.0.clone()))
        {
            c.insert("Cmd".into(), json!(cmd));
        }
        if let Some(e) = opts
            .entrypoint
            .clone()
            .or_else(|| svc.entrypoint.as_ref().map(|c| c.0.clone()))
        {
            c.insert("Entrypoint".into(), json!(e));
        }
        c.insert("Image".into(), json!(svc.image.clone().unwrap_or_default()));
        let wd = opts.workdir.clone().or_else(|| svc.working_dir.clone());
        if let Some(w) = wd {
            c.insert("WorkingDir".into(), json!(w));
        }
        c.insert(
            "Labels".into(),
            json!(self.container_labels(service, n, opts)),
        );
        if let Some(s) = &svc.stop_signal {
            c.insert("StopSignal".into(), json!(s));
        }
        if let Some(g) = &svc.stop_grace_period {
            let ns = parse_duration(g).map_err(ctx)?;
            c.insert("StopTimeout".into(), json!(ns / 1_000_000_000));
        }
        if let Some(h) = &svc.healthcheck {
            let hc = if h.disable {
                json!({"Test": ["NONE"]})
            } else {
                let mut m = Map::new();
                if let Some(t) = &h.test {
                    m.insert("Test".into(), json!(t));
                }
                for (key, v) in [
                    ("Interval", &h.interval),
                    ("Timeout", &h.timeout),
                    ("StartPeriod", &h.start_period),
                    ("StartInterval", &h.start_interval),
                ] {
                    if let Some(v) = v {
                        m.insert(key.into(), json!(parse_duration(v).map_err(ctx)?));
                    }
                }
                if let Some(r) = h.retries {
                    m.insert("Retries".into(), json!(r));
                }
                Json::Object(m)
            };
            c.insert("Healthcheck".into(), hc);
        }

        // ports
        let mut exposed = Map::new();
        let mut bindings: Map<String, Json> = Map::new();
        for e in &svc.expose.0 {
            let (ports, proto) = match e.split_once('/') {
                Some((p, pr)) => (p, pr),
                None => (e.as_str(), "tcp"),
            };
            let (a, b) = match ports.split_once('-') {
                Some((a, b)) => (a, b),
                None => (ports, ports),
            };
            let (a, b) = (
                a.parse::<u16>()
                    .map_err(|_| ctx(format!("invalid expose {e:?}")))?,
                b.parse::<u16>()
                    .map_err(|_| ctx(format!("invalid expose {e:?}")))?,
            );
            for port in a..=b {
                exposed.insert(format!("{port}/{proto}"), json!({}));
            }
        }
        for port in &svc.ports.0 {
            let key = format!(
                "{}/{}",
                port.target,
                port.protocol.clone().unwrap_or_else(|| "tcp".into())
            );
            exposed.insert(key.clone(), json!({}));
            if opts.oneoff && !opts.service_ports {
                continue;
            }
            let entry = json!({
                "HostIp": port.host_ip.clone().unwrap_or_default(),
                "HostPort": port.published.clone().unwrap_or_default(),
            });
            match bindings.get_mut(&key) {
                Some(Json::Array(a)) => a.push(entry),
                _ => {
                    bindings.insert(key, json!([entry]));
                }
            }
        }
        if !exposed.is_empty() {
            c.insert("ExposedPorts".into(), Json::Object(exposed));
        }

        // host config
        let mut h = Map::new();
        let mut binds = Vec::new();
        let mut tmpfs = Map::new();
        for m in &svc.volumes.0 {
            let mut opts_list: Vec<String> = Vec::new();
            if m.read_only {
                opts_list.push("ro".into());
            }
            match m.kind.as_str() {
                "bind" => {
                    if let Some(b) = &m.bind {
                        if let Some(s) = &b.selinux {
                            opts_list.push(s.clone());
                        }
                        if let Some(pr) = &b.propagation {
                            opts_list.push(pr.clone());
                        }
                    }
                    let src = m.source.clone().unwrap_or_default();
                    binds.push(bind_string(&src, &m.target, &opts_list));
                }
                "volume" => {
                    if m.volume.as_ref().is_some_and(|v| v.nocopy) {
                        opts_list.push("nocopy".into());
                    }
                    match &m.source {
                        Some(key) => {
                            binds.push(bind_string(&self.volume_name(key), &m.target, &opts_list))
                        }
                        None => {
                            // an anonymous volume: declared in Config.Volumes
                            let vols = c
                                .entry("Volumes")
                                .or_insert_with(|| Json::Object(Map::new()));
                            if let Json::Object(v) = vols {
                                v.insert(m.target.clone(), json!({}));
                            }
                        }
                    }
                }
                "tmpfs" => {
                    let mut o = Vec::new();
                    if let Some(t) = &m.tmpfs {
                        if let Some(sz) = &t.size {
                            let s = match sz {
                                serde_norway::Value::Number(n) => n.to_string(),
                                serde_norway::Value::String(s) => s.clone(),
                                _ => String::new(),
                            };
                            if !s.is_empty() {
                                o.push(format!("size={s}"));
                            }
                        }
                        if let Some(mode) = t.mode {
                            o.push(format!("mode={mode:o}"));
                        }
                    }
                    if m.read_only {
                        o.push("ro".into());
                    }
                    tmpfs.insert(m.target.clone(), json!(o.join(",")));
                }
                _ => {}
            }
        }
        if !binds.is_empty() {
            h.insert("Binds".into(), json!(binds));
        }
        if !tmpfs.is_empty() {
            h.insert("Tmpfs".into(), Json::Object(tmpfs));
        }
        h.insert("PortBindings".into(), Json::Object(bindings));
        let (rname, rcount) = match &svc.restart {
            Some(r) if !opts.oneoff => parse_restart(r).map_err(ctx)?,
            _ => ("no".to_string(), 0),
        };
        h.insert(
            "RestartPolicy".into(),
            json!({"Name": rname, "MaximumRetryCount": rcount}),
        );
        h.insert("AutoRemove".into(), json!(opts.auto_remove));
        if !svc.cap_add.is_empty() {
            h.insert("CapAdd".into(), json!(svc.cap_add));
        }
        if !svc.cap_drop.is_empty() {
            h.insert("CapDrop".into(), json!(svc.cap_drop));
        }
        if svc.privileged {
            h.insert("Privileged".into(), json!(true));
        }
        if !svc.dns.0.is_empty() {
            h.insert("Dns".into(), json!(svc.dns.0));
        }
        if !svc.dns_search.0.is_empty() {
            h.insert("DnsSearch".into(), json!(svc.dns_search.0));
        }
        if !svc.dns_opt.is_empty() {
            h.insert("DnsOptions".into(), json!(svc.dns_opt));
        }
        if !svc.extra_hosts.0.is_empty() {
            h.insert("ExtraHosts".into(), json!(svc.extra_hosts.0));
        }
        let mut links = Vec::new();
        for l in &svc.links {
            let (target, alias) = match l.split_once(':') {
                Some((t, a)) => (t, a),
                None => (l.as_str(), l.as_str()),
            };
            links.push(format!("{}:{alias}", self.container_name(target, 1)));
        }
        if !links.is_empty() {
            h.insert("Links".into(), json!(links));
        }

        // networks
        let mut endpoints = Map::new();
        let network_mode = match svc.network_mode.as_deref() {
            Some(m) => match m.strip_prefix("service:") {
                Some(t) => format!("container:{}", self.container_name(t, 1)),
                None => m.to_string(),
            },
            None => {
                let nets = self.service_networks(service);
                for key in &nets {
                    let settings = svc.networks.0.get(key).cloned().unwrap_or_default();
                    let mut ep = Map::new();
                    if !opts.oneoff {
                        let mut aliases = vec![service.to_string()];
                        for a in &settings.aliases {
                            if !aliases.contains(a) {
                                aliases.push(a.clone());
                            }
                        }
                        ep.insert("Aliases".into(), json!(aliases));
                    }
                    if settings.ipv4_address.is_some() || settings.ipv6_address.is_some() {
                        let mut ipam = Map::new();
                        if let Some(ip) = &settings.ipv4_address {
                            ipam.insert("IPv4Address".into(), json!(ip));
                        }
                        if let Some(ip) = &settings.ipv6_address {
                            ipam.insert("IPv6Address".into(), json!(ip));
                        }
                        ep.insert("IPAMConfig".into(), Json::Object(ipam));
                    }
                    if let Some(p) = settings.gw_priority {
                        ep.insert("GwPriority".into(), json!(p));
                    }
                    endpoints.insert(self.network_name(key), Json::Object(ep));
                }
                nets.first()
                    .map(|k| self.network_name(k))
                    .unwrap_or_else(|| "default".into())
            }
        };
        h.insert("NetworkMode".into(), json!(network_mode));
        c.insert("HostConfig".into(), Json::Object(h));
        c.insert(
            "NetworkingConfig".into(),
            json!({"EndpointsConfig": Json::Object(endpoints)}),
        );
        Ok(Json::Object(c))
    }

    /// The resolved model as YAML (`tether compose config`).
    pub fn to_yaml(&self) -> Result<String> {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            name: &'a str,
            services: &'a BTreeMap<String, Service>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            networks: &'a BTreeMap<String, crate::model::NetworkDef>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            volumes: &'a BTreeMap<String, crate::model::VolumeDef>,
        }
        serde_norway::to_string(&Out {
            name: &self.name,
            services: &self.services,
            networks: &self.networks,
            volumes: &self.volumes,
        })
        .map_err(|e| ComposeError::project(format!("cannot print the model: {e}")))
    }
}

fn bind_string(src: &str, target: &str, opts: &[String]) -> String {
    if opts.is_empty() {
        format!("{src}:{target}")
    } else {
        format!("{src}:{target}:{}", opts.join(","))
    }
}
