//! `create`, `run` and `start` (docker/cli `container/{create,run,start,opts}.go`).

use std::io::IsTerminal;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, Parser};
use serde_json::{json, Map, Value as Json};
use tracing::debug;

use crate::args::{min_args, parse, split_after_operands};
use crate::client::{path_escape, Client, Query};
use crate::error::{CliError, Result};
use crate::opts::ports::{parse_expose, parse_publish, PortSpecs};
use crate::opts::{
    env_value, filters_json, kv_map, os_env, parse_duration, parse_env_file, parse_label_file,
    parse_ram, parse_restart, validate_extra_host, validate_ip,
};
use crate::reference::{self, Reference};
use crate::stream::{pump, stdin_channel, terminal_size, RawTerminal};
use crate::{errln, outln};

/// Flags shared by `create` and `run` (docker's `containerOptions`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ContainerOpts {
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", action = ArgAction::Append)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", action = ArgAction::Append)]
    pub env_file: Vec<String>,
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net", action = ArgAction::Append)]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", visible_alias = "net-alias", action = ArgAction::Append)]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", action = ArgAction::Append)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, action = ArgAction::Append)]
    pub expose: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, action = ArgAction::Append)]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", visible_alias = "dns-opt", action = ArgAction::Append)]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", action = ArgAction::Append)]
    pub dns_search: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", action = ArgAction::Append)]
    pub add_host: Vec<String>,
    /// Add link to another container
    #[arg(long, action = ArgAction::Append)]
    pub link: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", action = ArgAction::Append)]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, action = ArgAction::Append)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, action = ArgAction::Append)]
    pub tmpfs: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long, action = ArgAction::Append)]
    pub attach: Vec<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", action = ArgAction::Append)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", action = ArgAction::Append)]
    pub label_file: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", action = ArgAction::Append)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", action = ArgAction::Append)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Sysctl options
    #[arg(long, action = ArgAction::Append)]
    pub sysctl: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", action = ArgAction::Append)]
    pub group_add: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt", action = ArgAction::Append)]
    pub security_opt: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", action = ArgAction::Append)]
    pub log_opt: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Pull image before creating ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Print usage
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// `tether create`.
#[derive(Parser, Debug)]
#[command(
    name = "create",
    disable_help_flag = true,
    override_usage = "tether create [OPTIONS] IMAGE [COMMAND] [ARG...]",
    about = "Create a new container"
)]
pub struct CreateArgs {
    #[command(flatten)]
    opts: ContainerOpts,
    /// IMAGE [COMMAND] [ARG...]
    operands: Vec<String>,
}

/// `tether run`.
#[derive(Parser, Debug)]
#[command(
    name = "run",
    disable_help_flag = true,
    override_usage = "tether run [OPTIONS] IMAGE [COMMAND] [ARG...]",
    about = "Create and run a new container from an image"
)]
pub struct RunArgs {
    #[command(flatten)]
    opts: ContainerOpts,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    detach: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    sig_proxy: String,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// IMAGE [COMMAND] [ARG...]
    operands: Vec<String>,
}

/// What `create`/`run` send to `POST /containers/create`.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    /// `?name=`.
    pub name: Option<String>,
    /// The JSON body (Config + HostConfig + NetworkingConfig).
    pub body: Json,
    /// The image reference for pulling (None for IDs/digests).
    pub reference: Option<Reference>,
}

fn is_user_defined(net: &str) -> bool {
    !matches!(net, "default" | "bridge" | "host" | "none") && !net.starts_with("container:")
}

/// One `--network` value: a name, or docker's advanced `name=x,alias=a,ip=...`.
#[derive(Debug, Default, Clone)]
struct NetAttach {
    target: String,
    aliases: Vec<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    links: Vec<String>,
    driver_opts: Map<String, Json>,
    gw_priority: Option<i64>,
}

fn parse_net_attach(raw: &str) -> std::result::Result<NetAttach, String> {
    if !raw.contains('=') {
        return Ok(NetAttach {
            target: raw.to_string(),
            ..Default::default()
        });
    }
    let mut n = NetAttach::default();
    for field in raw.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))?;
        match k.trim().to_lowercase().as_str() {
            "name" => n.target = v.to_string(),
            "alias" => n.aliases.push(v.to_string()),
            "ip" => n.ipv4 = Some(v.to_string()),
            "ip6" => n.ipv6 = Some(v.to_string()),
            "link" => n.links.push(v.to_string()),
            "gw-priority" => {
                n.gw_priority = Some(
                    v.parse()
                        .map_err(|_| format!("invalid gw-priority {v:?}: expected an integer"))?,
                )
            }
            "driver-opt" => {
                let (dk, dv) = v.split_once('=').unwrap_or((v, ""));
                n.driver_opts.insert(dk.to_string(), json!(dv));
            }
            other => return Err(format!("invalid field key {other}")),
        }
    }
    if n.target.is_empty() {
        return Err("network name must be specified".into());
    }
    Ok(n)
}

/// docker's `--mount type=bind,source=/a,target=/b,readonly`.
fn parse_mount(raw: &str) -> std::result::Result<Json, String> {
    let mut m = Map::new();
    let mut ty = "volume".to_string();
    for field in raw.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.to_string())),
            None => (field.trim().to_lowercase(), None),
        };
        match (k.as_str(), v) {
            ("type", Some(v)) => ty = v,
            ("source" | "src", Some(v)) => {
                m.insert("Source".into(), json!(v));
            }
            ("target" | "destination" | "dst", Some(v)) => {
                m.insert("Target".into(), json!(v));
            }
            ("readonly" | "ro", v) => {
                let ro = !matches!(v.as_deref(), Some("false" | "0"));
                m.insert("ReadOnly".into(), json!(ro));
            }
            ("consistency" | "bind-propagation" | "volume-nocopy", _) => {}
            (k, _) => return Err(format!("unexpected key '{k}' in '{field}'")),
        }
    }
    if !m.contains_key("Target") {
        return Err("target is required".into());
    }
    m.insert("Type".into(), json!(ty));
    Ok(Json::Object(m))
}

fn string_list(v: &[String]) -> Json {
    json!(v)
}

/// Builds the create request from the flags (docker's `parse` in `opts.go`).
/// `detach` clears the attach flags as `run -d` does. Errors are the
/// messages docker prints after "docker: ", checked in docker's order.
pub fn build_spec(
    o: &ContainerOpts,
    image: &str,
    cmd: &[String],
    detach: bool,
    env_lookup: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> std::result::Result<CreateSpec, String> {
    let reference = reference::parse_any(image)?;
    let (env, labels) = env_and_labels(o, env_lookup, read_file)?;
    let ports = port_specs(o)?;
    let (dns, extra_hosts) = dns_and_hosts(o)?;
    let storage = Storage::of(o)?;
    let sysctls = sysctl_map(o)?;
    let restart = restart_policy(o)?;
    let attach = Attach::of(o, detach)?;
    let health = healthcheck(o)?;
    let mut body = container_config(
        o,
        image,
        cmd,
        env,
        labels,
        &ports,
        storage.volumes,
        &attach,
        health,
    );
    let (network_mode, endpoints) = networking(o)?;
    let host = host_config(
        o,
        HostParts {
            binds: storage.binds,
            mounts: storage.mounts,
            tmpfs: storage.tmpfs,
            sysctls,
            network_mode,
            ports,
            restart,
            dns,
            extra_hosts,
        },
    )?;
    body.insert("HostConfig".into(), Json::Object(host));
    body.insert(
        "NetworkingConfig".into(),
        json!({"EndpointsConfig": Json::Object(endpoints)}),
    );
    Ok(CreateSpec {
        name: o.name.clone(),
        body: Json::Object(body),
        reference,
    })
}

/// The environment (`--env-file` lines first, then `-e`) and the labels (`--label-file`
/// first, then `-l`).
fn env_and_labels(
    o: &ContainerOpts,
    env_lookup: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> std::result::Result<(Vec<String>, Map<String, Json>), String> {
    let mut env = Vec::new();
    for f in &o.env_file {
        let content = read_file(f).map_err(|e| format!("open {f}: {}", io_reason(&e)))?;
        env.extend(parse_env_file(f, &content, env_lookup)?);
    }
    for e in &o.env {
        env.push(env_value(e, env_lookup));
    }

    // Labels: --label-file first, then -l.
    let mut labels_raw = Vec::new();
    for f in &o.label_file {
        let content = read_file(f).map_err(|e| format!("open {f}: {}", io_reason(&e)))?;
        labels_raw.extend(parse_label_file(&String::from_utf8_lossy(&content)));
    }
    labels_raw.extend(o.label.iter().cloned());
    let labels = kv_map(&labels_raw);

    Ok((env, labels))
}

/// `-p` and `--expose`.
fn port_specs(o: &ContainerOpts) -> std::result::Result<PortSpecs, String> {
    let mut ports = PortSpecs::default();
    for p in &o.publish {
        parse_publish(p, &mut ports)?;
    }
    for e in &o.expose {
        parse_expose(e, &mut ports)?;
    }

    Ok(ports)
}

/// Every value of the repeatable flag `flag` through `check`, in order; the first refusal
/// as Docker's CLI words it (`invalid argument "V" for "FLAG" flag: REASON`).
fn each_valid<T>(
    values: &[String],
    flag: &str,
    check: impl Fn(&str) -> std::result::Result<T, String>,
) -> std::result::Result<Vec<T>, String> {
    values
        .iter()
        .map(|v| check(v).map_err(|e| format!("invalid argument \"{v}\" for \"{flag}\" flag: {e}")))
        .collect()
}

/// `--dns` (validated addresses) and `--add-host` (validated `host:ip` entries).
fn dns_and_hosts(o: &ContainerOpts) -> std::result::Result<(Vec<String>, Vec<String>), String> {
    Ok((
        each_valid(&o.dns, "--dns", validate_ip)?,
        each_valid(&o.add_host, "--add-host", validate_extra_host)?,
    ))
}

/// The storage flags: `-v` (binds, or anonymous volumes), `--mount` and `--tmpfs`.
struct Storage {
    binds: Vec<String>,
    volumes: Map<String, Json>,
    mounts: Vec<Json>,
    tmpfs: Map<String, Json>,
}

impl Storage {
    fn of(o: &ContainerOpts) -> std::result::Result<Storage, String> {
        let mut binds = Vec::new();
        let mut volumes = Map::new();
        for v in &o.volume {
            if v.is_empty() {
                return Err("invalid empty volume spec".into());
            }
            if v.contains(':') {
                binds.push(v.clone());
            } else {
                volumes.insert(v.clone(), json!({}));
            }
        }
        let mounts = each_valid(&o.mount, "--mount", parse_mount)?;
        let mut tmpfs = Map::new();
        for t in &o.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            tmpfs.insert(path.to_string(), json!(opts));
        }
        Ok(Storage {
            binds,
            volumes,
            mounts,
            tmpfs,
        })
    }
}

/// `--sysctl KEY=VALUE`.
fn sysctl_map(o: &ContainerOpts) -> std::result::Result<Map<String, Json>, String> {
    let mut sysctls = Map::new();
    for s in &o.sysctl {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            format!("invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not allowed")
        })?;
        sysctls.insert(k.to_string(), json!(v));
    }

    Ok(sysctls)
}

/// `--restart`, refused with `--rm`.
fn restart_policy(o: &ContainerOpts) -> std::result::Result<Json, String> {
    let restart = match &o.restart {
        Some(r) => parse_restart(r)?,
        None => json!({"Name": "no", "MaximumRetryCount": 0}),
    };
    if o.rm && restart["Name"] != "no" {
        return Err("conflicting options: cannot specify both --restart and --rm".into());
    }

    Ok(restart)
}

/// The streams a client attaches to (docker: `-a` selects streams; stdout and stderr by
/// default; `-i` adds stdin; `-d` none).
struct Attach {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    stdin_once: bool,
}

impl Attach {
    fn of(o: &ContainerOpts, detach: bool) -> std::result::Result<Attach, String> {
        let mut attach_stdin = o.attach.iter().any(|a| a.eq_ignore_ascii_case("stdin"));
        let mut attach_stdout = o.attach.iter().any(|a| a.eq_ignore_ascii_case("stdout"));
        let mut attach_stderr = o.attach.iter().any(|a| a.eq_ignore_ascii_case("stderr"));
        for a in &o.attach {
            if !["stdin", "stdout", "stderr"].contains(&a.to_lowercase().as_str()) {
                return Err(format!(
                    "invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
                ));
            }
        }
        if o.interactive {
            attach_stdin = true;
        }
        if o.attach.is_empty() {
            attach_stdout = true;
            attach_stderr = true;
        }
        let mut stdin_once = o.interactive && attach_stdin;
        if detach {
            attach_stdin = false;
            attach_stdout = false;
            attach_stderr = false;
            stdin_once = false;
        }
        Ok(Attach {
            stdin: attach_stdin,
            stdout: attach_stdout,
            stderr: attach_stderr,
            stdin_once,
        })
    }
}

/// `--health-*` and `--no-healthcheck` as the config's `Healthcheck` (none when no flag).
fn healthcheck(o: &ContainerOpts) -> std::result::Result<Option<Json>, String> {
    Ok(if o.no_healthcheck {
        Some(json!({"Test": ["NONE"]}))
    } else if o.health_cmd.is_some()
        || o.health_interval.is_some()
        || o.health_timeout.is_some()
        || o.health_start_period.is_some()
        || o.health_retries.is_some()
    {
        let dur = |v: &Option<String>, name: &str| -> std::result::Result<i64, String> {
            match v {
                Some(s) => parse_duration(s)
                    .map_err(|e| format!("invalid argument \"{s}\" for \"--{name}\" flag: {e}")),
                None => Ok(0),
            }
        };
        let mut h = Map::new();
        if let Some(c) = &o.health_cmd {
            h.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        h.insert(
            "Interval".into(),
            json!(dur(&o.health_interval, "health-interval")?),
        );
        h.insert(
            "Timeout".into(),
            json!(dur(&o.health_timeout, "health-timeout")?),
        );
        h.insert(
            "StartPeriod".into(),
            json!(dur(&o.health_start_period, "health-start-period")?),
        );
        h.insert("Retries".into(), json!(o.health_retries.unwrap_or(0)));
        Some(Json::Object(h))
    } else {
        None
    })
}

/// The container's config (the create body without `HostConfig` and `NetworkingConfig`).
#[allow(clippy::too_many_arguments)]
fn container_config(
    o: &ContainerOpts,
    image: &str,
    cmd: &[String],
    env: Vec<String>,
    labels: Map<String, Json>,
    ports: &PortSpecs,
    volumes: Map<String, Json>,
    attach: &Attach,
    health: Option<Json>,
) -> Map<String, Json> {
    let entrypoint = match &o.entrypoint {
        Some(e) if !e.is_empty() => json!([e]),
        Some(_) => json!([""]),
        None => Json::Null,
    };

    let mut config = Map::new();
    config.insert(
        "Hostname".into(),
        json!(o.hostname.clone().unwrap_or_default()),
    );
    config.insert(
        "Domainname".into(),
        json!(o.domainname.clone().unwrap_or_default()),
    );
    config.insert("User".into(), json!(o.user.clone().unwrap_or_default()));
    config.insert("AttachStdin".into(), json!(attach.stdin));
    config.insert("AttachStdout".into(), json!(attach.stdout));
    config.insert("AttachStderr".into(), json!(attach.stderr));
    if !ports.exposed.is_empty() {
        config.insert("ExposedPorts".into(), ports.exposed_json());
    }
    config.insert("Tty".into(), json!(o.tty));
    config.insert("OpenStdin".into(), json!(o.interactive));
    config.insert("StdinOnce".into(), json!(attach.stdin_once));
    config.insert(
        "Env".into(),
        if env.is_empty() {
            Json::Null
        } else {
            string_list(&env)
        },
    );
    config.insert(
        "Cmd".into(),
        if cmd.is_empty() {
            Json::Null
        } else {
            string_list(cmd)
        },
    );
    config.insert("Image".into(), json!(image));
    config.insert(
        "Volumes".into(),
        if volumes.is_empty() {
            Json::Null
        } else {
            Json::Object(volumes)
        },
    );
    config.insert(
        "WorkingDir".into(),
        json!(o.workdir.clone().unwrap_or_default()),
    );
    config.insert("Entrypoint".into(), entrypoint);
    config.insert("Labels".into(), Json::Object(labels));
    if let Some(s) = &o.stop_signal {
        config.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = o.stop_timeout {
        config.insert("StopTimeout".into(), json!(t));
    }
    if let Some(m) = &o.mac_address {
        config.insert("MacAddress".into(), json!(m));
    }
    if let Some(h) = health {
        config.insert("Healthcheck".into(), h);
    }

    config
}

/// `--network` (each `NAME` or `name=NAME,alias=...` form), `--network-alias`, `--link`,
/// `--ip`, `--ip6`: the network mode and the endpoints config.
fn networking(o: &ContainerOpts) -> std::result::Result<(String, Map<String, Json>), String> {
    let mut nets = Vec::new();
    for n in &o.network {
        nets.push(parse_net_attach(n)?);
    }
    // as docker: endpoint options without --network go to the default network's endpoint
    // (where the daemon refuses what the default bridge cannot do)
    if nets.is_empty() && (o.ip.is_some() || o.ip6.is_some() || !o.network_alias.is_empty()) {
        nets.push(parse_net_attach("default")?);
    }
    let network_mode = nets
        .first()
        .map_or_else(|| "default".to_string(), |n| n.target.clone());
    let mut endpoints = Map::new();
    let single = nets.len() == 1;
    let (mut has_user, mut has_other) = (false, false);
    for (i, mut n) in nets.into_iter().enumerate() {
        if is_user_defined(&n.target) {
            has_user = true;
        } else {
            has_other = true;
        }
        if i == 0 {
            if !o.network_alias.is_empty() {
                if !n.aliases.is_empty() {
                    return Err("conflicting options: cannot specify both --network-alias and per-network alias".into());
                }
                n.aliases = o.network_alias.clone();
            }
            if n.target != "default" && !o.link.is_empty() {
                n.links = o.link.clone();
            }
            if let Some(ip) = &o.ip {
                n.ipv4 = Some(ip.clone());
            }
            if let Some(ip) = &o.ip6 {
                n.ipv6 = Some(ip.clone());
            }
        }
        let mut ep = Map::new();
        if !n.aliases.is_empty() {
            ep.insert("Aliases".into(), json!(n.aliases));
        }
        if !n.links.is_empty() {
            ep.insert("Links".into(), json!(n.links));
        }
        if !n.driver_opts.is_empty() {
            ep.insert("DriverOpts".into(), Json::Object(n.driver_opts.clone()));
        }
        if let Some(p) = n.gw_priority {
            ep.insert("GwPriority".into(), json!(p));
        }
        if n.ipv4.is_some() || n.ipv6.is_some() {
            let mut ipam = Map::new();
            if let Some(ip) = &n.ipv4 {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip) = &n.ipv6 {
                ipam.insert("IPv6Address".into(), json!(ip));
            }
            ep.insert("IPAMConfig".into(), Json::Object(ipam));
        }
        if endpoints.contains_key(&n.target) {
            return Err(format!(
                "network {:?} is specified multiple times",
                n.target
            ));
        }
        if i == 0 && single && ep.is_empty() {
            continue;
        }
        endpoints.insert(n.target.clone(), Json::Object(ep));
    }
    if has_user && has_other {
        return Err(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
                .into(),
        );
    }

    Ok((network_mode, endpoints))
}

/// What the host config takes from the parts parsed before it.
struct HostParts {
    binds: Vec<String>,
    mounts: Vec<Json>,
    tmpfs: Map<String, Json>,
    sysctls: Map<String, Json>,
    network_mode: String,
    ports: PortSpecs,
    restart: Json,
    dns: Vec<String>,
    extra_hosts: Vec<String>,
}

/// The create body's `HostConfig`.
fn host_config(
    o: &ContainerOpts,
    parts: HostParts,
) -> std::result::Result<Map<String, Json>, String> {
    let HostParts {
        binds,
        mounts,
        tmpfs,
        sysctls,
        network_mode,
        ports,
        restart,
        dns,
        extra_hosts,
    } = parts;
    let mut host = Map::new();
    host.insert(
        "Binds".into(),
        if binds.is_empty() {
            Json::Null
        } else {
            string_list(&binds)
        },
    );
    if o.tty {
        // the container's terminal starts at the client's size
        if let Some((h, w)) = terminal_size() {
            host.insert("ConsoleSize".into(), json!([h, w]));
        }
    }
    host.insert("NetworkMode".into(), json!(network_mode));
    host.insert("PortBindings".into(), ports.bindings_json());
    host.insert("RestartPolicy".into(), restart);
    host.insert("AutoRemove".into(), json!(o.rm));
    host.insert("CapAdd".into(), string_list(&normalize_caps(&o.cap_add)));
    host.insert("CapDrop".into(), string_list(&normalize_caps(&o.cap_drop)));
    host.insert("Dns".into(), string_list(&dns));
    host.insert("DnsOptions".into(), string_list(&o.dns_option));
    host.insert("DnsSearch".into(), string_list(&o.dns_search));
    host.insert("ExtraHosts".into(), string_list(&extra_hosts));
    host.insert("Links".into(), string_list(&o.link));
    host.insert("Privileged".into(), json!(o.privileged));
    host.insert("PublishAllPorts".into(), json!(o.publish_all));
    host.insert("ReadonlyRootfs".into(), json!(o.read_only));
    if o.init {
        host.insert("Init".into(), json!(true));
    }
    if !mounts.is_empty() {
        host.insert("Mounts".into(), Json::Array(mounts));
    }
    if !tmpfs.is_empty() {
        host.insert("Tmpfs".into(), Json::Object(tmpfs));
    }
    if !sysctls.is_empty() {
        host.insert("Sysctls".into(), Json::Object(sysctls));
    }
    if let Some(m) = &o.memory {
        let bytes = parse_ram(m)
            .map_err(|e| format!("invalid argument \"{m}\" for \"-m, --memory\" flag: {e}"))?;
        host.insert("Memory".into(), json!(bytes));
    }
    if let Some(c) = o.cpus {
        host.insert("NanoCpus".into(), json!((c * 1e9) as i64));
    }
    if let Some(s) = &o.shm_size {
        let bytes = parse_ram(s)
            .map_err(|e| format!("invalid argument \"{s}\" for \"--shm-size\" flag: {e}"))?;
        host.insert("ShmSize".into(), json!(bytes));
    }
    if let Some(p) = &o.pid {
        host.insert("PidMode".into(), json!(p));
    }
    if let Some(p) = &o.ipc {
        host.insert("IpcMode".into(), json!(p));
    }
    if let Some(p) = &o.uts {
        host.insert("UTSMode".into(), json!(p));
    }
    if !o.group_add.is_empty() {
        host.insert("GroupAdd".into(), string_list(&o.group_add));
    }
    if !o.security_opt.is_empty() {
        host.insert("SecurityOpt".into(), string_list(&o.security_opt));
    }
    if o.log_driver.is_some() || !o.log_opt.is_empty() {
        host.insert(
            "LogConfig".into(),
            json!({"Type": o.log_driver.clone().unwrap_or_default(), "Config": kv_map(&o.log_opt)}),
        );
    }

    Ok(host)
}

/// docker's capability normalization: upper case with a `CAP_` prefix (except `ALL`).
fn normalize_caps(caps: &[String]) -> Vec<String> {
    caps.iter()
        .map(|c| {
            let c = c.trim().to_uppercase();
            if c == "ALL" || c.starts_with("CAP_") {
                c
            } else {
                format!("CAP_{c}")
            }
        })
        .collect()
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// docker's `run` error wording: "tether: MSG." with exit 125, or 126/127 when
/// the message says the command could not be executed (`toStatusError`).
pub fn run_error(err: CliError) -> CliError {
    match err {
        CliError::Connect { .. } | CliError::Status { .. } => err,
        other => {
            let msg = other.to_string();
            let code = if msg.contains("executable file not found")
                || msg.contains("no such file or directory")
                || msg.contains("system cannot find the file specified")
            {
                127
            } else if msg.contains("permission denied") || msg.contains("is a directory") {
                126
            } else {
                125
            };
            CliError::status(
                code,
                format!("{}: {}.", crate::args::PROG, msg.trim_end_matches('.')),
            )
        }
    }
}

/// Errors of [`build_spec`]: flag value errors as pflag prints them, the
/// rest in `run`'s "tether: MSG." form; exit 125 either way.
fn spec_error(path: &str, msg: String) -> CliError {
    if msg.starts_with("invalid argument \"") {
        CliError::status(125, format!("{msg}\nSee '{path} --help'."))
    } else {
        run_error(CliError::Message(msg))
    }
}

/// Pulls `r` (`POST /images/create?fromImage=&tag=`), progress on stderr.
pub async fn pull_image(client: &Client, r: &Reference, quiet: bool) -> Result<()> {
    let resp = super::image::start_pull(client, r).await?;
    if quiet {
        let _ = crate::client::collect(resp).await;
        return Ok(());
    }
    super::registry::display_progress(resp, true).await
}

/// Creates the container, pulling the image when the daemon does not have it
/// (docker's `--pull missing`). Prints warnings. Returns the ID.
pub async fn create_container(
    client: &Client,
    spec: &CreateSpec,
    pull: &str,
    quiet: bool,
) -> Result<String> {
    let q = Query::new();
    let q = match &spec.name {
        Some(n) => q.add("name", n.clone()),
        None => q,
    };
    let path = format!("/containers/create{}", q.encode());
    if pull == "always" {
        if let Some(r) = &spec.reference {
            pull_image(client, r, quiet).await?;
        }
    }
    let resp = match client.post_json(&path, Some(&spec.body)).await {
        Ok(v) => v,
        Err(e)
            if e.is_not_found()
                && pull != "never"
                && e.to_string().to_lowercase().contains("image") =>
        {
            let Some(r) = &spec.reference else {
                return Err(e);
            };
            if !quiet {
                errln!("Unable to find image '{}' locally", r.familiar_tagged());
            }
            pull_image(client, r, quiet).await?;
            client.post_json(&path, Some(&spec.body)).await?
        }
        Err(e) => return Err(e),
    };
    if let Some(ws) = resp.get("Warnings").and_then(|w| w.as_array()) {
        for w in ws.iter().filter_map(|w| w.as_str()) {
            errln!("WARNING: {w}");
        }
    }
    resp.get("Id")
        .and_then(|i| i.as_str())
        .map(str::to_string)
        .ok_or_else(|| CliError::BadResponse("container create response has no Id".into()))
}

fn split_image_and_command<T: CommandFactory>(args: &[String]) -> (Vec<String>, Vec<String>) {
    split_after_operands(&T::command(), args, 1)
}

/// `tether create [OPTIONS] IMAGE [COMMAND] [ARG...]`: prints the new container's ID.
pub async fn create(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let (head, cmd) = split_image_and_command::<CreateArgs>(args);
    let a: CreateArgs = parse(path, &head)?;
    min_args::<CreateArgs>(path, a.operands.len(), 1)?;
    let image = &a.operands[0];
    let spec = build_spec(&a.opts, image, &cmd, false, &os_env, &|f| std::fs::read(f))
        .map_err(|m| spec_error(path, m))?;
    let id = create_container(client, &spec, &a.opts.pull, a.opts.quiet).await?;
    write_cidfile(&a.opts, &id)?;
    outln!("{id}");
    Ok(())
}

fn write_cidfile(o: &ContainerOpts, id: &str) -> Result<()> {
    if let Some(f) = &o.cidfile {
        std::fs::write(f, id).map_err(|e| {
            CliError::msg(format!("failed to write the container ID to the file: {e}"))
        })?;
    }
    Ok(())
}

/// `tether run [OPTIONS] IMAGE [COMMAND] [ARG...]` (docker's `runContainer`).
pub async fn run(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let (head, cmd) = split_image_and_command::<RunArgs>(args);
    let a: RunArgs = parse(path, &head)?;
    min_args::<RunArgs>(path, a.operands.len(), 1)?;
    let image = &a.operands[0];
    let o = &a.opts;
    if a.detach && !o.attach.is_empty() {
        return Err(run_error(CliError::msg(
            "conflicting options: cannot specify both --attach and --detach",
        )));
    }
    let spec = build_spec(o, image, &cmd, a.detach, &os_env, &|f| std::fs::read(f))
        .map_err(|m| spec_error(path, m))?;
    let attach_stdin = !a.detach && spec.body["AttachStdin"] == Json::Bool(true);
    if attach_stdin && o.tty && !std::io::stdin().is_terminal() {
        return Err(CliError::msg("the input device is not a TTY"));
    }
    let id = create_container(client, &spec, &o.pull, o.quiet)
        .await
        .map_err(run_error)?;
    write_cidfile(o, &id)?;
    if a.detach {
        client
            .post(&format!("/containers/{id}/start"), None)
            .await
            .map_err(run_error)?;
        outln!("{id}");
        return Ok(());
    }
    let sig_proxy = a.sig_proxy != "false";
    let streams = Streams {
        stdin: attach_stdin,
        stdout: spec.body["AttachStdout"] == Json::Bool(true),
        stderr: spec.body["AttachStderr"] == Json::Bool(true),
    };
    let code = attach_start_wait(client, &id, o.tty, streams, o.rm, sig_proxy).await?;
    if code != 0 {
        return Err(CliError::exit(code));
    }
    Ok(())
}

/// Which streams to attach.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    /// Forward our stdin.
    pub stdin: bool,
    /// Receive stdout.
    pub stdout: bool,
    /// Receive stderr.
    pub stderr: bool,
}

/// Attaches, starts, streams and waits (docker's `run` without `-d` and `start -a`).
/// Returns the container's exit code.
pub async fn attach_start_wait(
    client: &Client,
    id: &str,
    tty: bool,
    streams: Streams,
    auto_remove: bool,
    sig_proxy: bool,
) -> Result<i32> {
    let q = Query::new()
        .add("stream", "1")
        .add_if(streams.stdin, "stdin", "1")
        .add_if(streams.stdout, "stdout", "1")
        .add_if(streams.stderr, "stderr", "1");
    let hijacked = client
        .hijack(&format!("/containers/{id}/attach{}", q.encode()), None)
        .await
        .map_err(run_error)?;

    let condition = if auto_remove { "removed" } else { "next-exit" };
    let (mut wait_task, registered) = spawn_wait(client, id, condition);
    // Make sure the wait is registered before the container can exit (the
    // daemon answers the headers early, as moby does).
    let _ = tokio::time::timeout(Duration::from_millis(200), registered).await;

    if let Err(e) = client.post(&format!("/containers/{id}/start"), None).await {
        if auto_remove {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait_task).await;
        } else {
            wait_task.abort();
        }
        return Err(run_error(e));
    }

    let mut raw = if tty && streams.stdin {
        Some(RawTerminal::enable())
    } else {
        None
    };
    let resize_task = if tty {
        Some(spawn_resizer(
            client.clone(),
            format!("/containers/{id}/resize"),
        ))
    } else {
        None
    };
    let signal_task = if sig_proxy && !tty {
        Some(spawn_signal_proxy(client.clone(), id.to_string()))
    } else {
        None
    };

    let stdin = if streams.stdin {
        Some(stdin_channel())
    } else {
        None
    };
    let pump_fut = pump(hijacked, tty, stdin);
    tokio::pin!(pump_fut);
    let mut early: Option<Result<i32>> = None;
    let mut consumed = false;
    tokio::select! {
        r = &mut pump_fut => {
            if let Err(e) = r {
                debug!(error = %e, "stream error");
            }
        }
        w = &mut wait_task => {
            consumed = true;
            let w = w.unwrap_or_else(|e| Err(CliError::Http(e.to_string())));
            if is_running(client, id).await {
                // The daemon answered the wait early; keep streaming.
                let _ = (&mut pump_fut).await;
            } else {
                // The container is gone: give the output a moment to drain.
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut pump_fut).await;
                early = Some(w);
            }
        }
    }
    if let Some(t) = raw.as_mut() {
        t.restore();
    }
    let status = match early {
        Some(Ok(code)) => code,
        Some(Err(e)) => {
            debug!(error = %e, "conditional wait failed");
            plain_exit_code(client, id).await?
        }
        None if consumed => plain_exit_code(client, id).await?,
        None => finish_wait(client, id, &mut wait_task).await?,
    };
    drop(raw);
    if let Some(t) = resize_task {
        t.abort();
    }
    if let Some(t) = signal_task {
        t.abort();
    }
    Ok(status)
}

/// Starts `POST /containers/{id}/wait?condition=` in the background; the
/// receiver fires once the daemon has answered the headers.
fn spawn_wait(
    client: &Client,
    id: &str,
    condition: &'static str,
) -> (
    tokio::task::JoinHandle<Result<i32>>,
    tokio::sync::oneshot::Receiver<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let client = client.clone();
    let id = id.to_string();
    let task = tokio::spawn(async move {
        let q = Query::new().add("condition", condition);
        let resp = client
            .request(
                hyper::Method::POST,
                &format!("/containers/{}/wait{}", path_escape(&id), q.encode()),
                crate::client::empty_body(),
                None,
            )
            .await;
        let _ = tx.send(());
        let body = crate::client::collect(resp?).await?;
        Ok(wait_response_code(&crate::client::parse_json(&body)?))
    });
    (task, rx)
}

/// The exit code when the conditional wait is unusable: a plain wait
/// (returns at once for a stopped container); a removed container counts as 0.
async fn plain_exit_code(client: &Client, id: &str) -> Result<i32> {
    match wait_exit(client, id, None).await {
        Ok(c) => Ok(c),
        Err(e) if e.is_not_found() => Ok(0),
        Err(e) => Err(e),
    }
}

/// Waits for the background wait, checking now and then that the container
/// still runs so that a wait registered too late cannot hang the CLI.
async fn finish_wait(
    client: &Client,
    id: &str,
    task: &mut tokio::task::JoinHandle<Result<i32>>,
) -> Result<i32> {
    loop {
        tokio::select! {
            r = &mut *task => {
                return match r {
                    Ok(Ok(code)) => Ok(code),
                    Ok(Err(e)) => {
                        debug!(error = %e, "conditional wait failed; waiting plainly");
                        plain_exit_code(client, id).await
                    }
                    Err(_) => plain_exit_code(client, id).await,
                };
            }
            _ = tokio::time::sleep(Duration::from_secs(2)) => {
                match client.get_json(&format!("/containers/{id}/json")).await {
                    Ok(v) if v["State"]["Running"] != Json::Bool(true) => {
                        if let Ok(Ok(Ok(code))) =
                            tokio::time::timeout(Duration::from_secs(1), &mut *task).await
                        {
                            return Ok(code);
                        }
                        task.abort();
                        return Ok(v["State"]["ExitCode"].as_i64().unwrap_or(0) as i32);
                    }
                    Err(e) if e.is_not_found() => {
                        if let Ok(Ok(Ok(code))) =
                            tokio::time::timeout(Duration::from_secs(2), &mut *task).await
                        {
                            return Ok(code);
                        }
                        task.abort();
                        return Ok(0);
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn is_running(client: &Client, id: &str) -> bool {
    match client.get_json(&format!("/containers/{id}/json")).await {
        Ok(v) => v["State"]["Running"] == Json::Bool(true),
        Err(_) => false,
    }
}

fn wait_response_code(v: &Json) -> i32 {
    if let Some(m) = v
        .get("Error")
        .and_then(|e| e.get("Message"))
        .and_then(|m| m.as_str())
    {
        if !m.is_empty() {
            errln!("{m}");
        }
    }
    v.get("StatusCode").and_then(|c| c.as_i64()).unwrap_or(0) as i32
}

/// `POST /containers/{id}/wait[?condition=]` → the exit code; the response's
/// `Error.Message`, if any, is printed.
pub async fn wait_exit(client: &Client, id: &str, condition: Option<&str>) -> Result<i32> {
    let q = match condition {
        Some(c) => Query::new().add("condition", c),
        None => Query::new(),
    };
    let v = client
        .post_json(
            &format!("/containers/{}/wait{}", path_escape(id), q.encode()),
            None,
        )
        .await?;
    Ok(wait_response_code(&v))
}

/// Sends the terminal size now and on every SIGWINCH.
pub fn spawn_resizer(client: Client, resize_path: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let send = |client: Client, p: String| async move {
            if let Some((h, w)) = terminal_size() {
                let q = Query::new().add("h", h.to_string()).add("w", w.to_string());
                if let Err(e) = client.post(&format!("{p}{}", q.encode()), None).await {
                    debug!(error = %e, "resize failed");
                }
            }
        };
        send(client.clone(), resize_path.clone()).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            send(client.clone(), resize_path.clone()).await;
        }
    })
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the
/// container (docker's `--sig-proxy`).
pub fn spawn_signal_proxy(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(8);
        for (kind, name) in kinds {
            let Ok(mut s) = signal(kind) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let q = Query::new().add("signal", name);
            if let Err(e) = client
                .post(&format!("/containers/{id}/kill{}", q.encode()), None)
                .await
            {
                debug!(error = %e, "forwarding {name} failed");
            }
        }
    })
}

/// `tether start`.
#[derive(Parser, Debug)]
#[command(
    name = "start",
    override_usage = "tether start [OPTIONS] CONTAINER [CONTAINER...]",
    about = "Start one or more stopped containers"
)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    containers: Vec<String>,
}

/// `tether start [-a] [-i] CONTAINER...`.
pub async fn start(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: StartArgs = parse(path, args)?;
    min_args::<StartArgs>(path, a.containers.len(), 1)?;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(CliError::msg(
                "you cannot start and attach multiple containers at once",
            ));
        }
        let name = &a.containers[0];
        let c = client
            .get_json(&format!("/containers/{}/json", path_escape(name)))
            .await?;
        let id = c["Id"].as_str().unwrap_or(name).to_string();
        let tty = c["Config"]["Tty"] == Json::Bool(true);
        let open_stdin = c["Config"]["OpenStdin"] == Json::Bool(true);
        let auto_remove = c["HostConfig"]["AutoRemove"] == Json::Bool(true);
        let streams = Streams {
            stdin: a.interactive && open_stdin,
            stdout: true,
            stderr: true,
        };
        let code = attach_start_wait(client, &id, tty, streams, auto_remove, true)
            .await
            .map_err(|e| match e {
                CliError::Status {
                    message: Some(m),
                    code,
                } => CliError::Status {
                    message: Some(
                        m.trim_start_matches("tether: ")
                            .trim_end_matches('.')
                            .to_string(),
                    ),
                    code: if code == 125 { 1 } else { code },
                },
                other => other,
            })?;
        if code != 0 {
            return Err(CliError::exit(code));
        }
        return Ok(());
    }
    let mut failed = Vec::new();
    for name in &a.containers {
        match client
            .post(&format!("/containers/{}/start", path_escape(name)), None)
            .await
        {
            Ok(_) => outln!("{name}"),
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => {
                errln!("{e}");
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() {
        return Err(CliError::msg(format!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        )));
    }
    Ok(())
}

/// The `filters` query parameter, or an empty query.
pub fn filter_query(filters: &[String]) -> Result<Query> {
    let f = filters_json(filters).map_err(|e| CliError::status(125, e))?;
    Ok(match f {
        Some(f) => Query::new().add("filters", f),
        None => Query::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn no_file(_: &str) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn spec_of(args: &[&str], detach: bool) -> std::result::Result<CreateSpec, String> {
        let args = s(args);
        let (head, cmd) = split_image_and_command::<RunArgs>(&args);
        let a: RunArgs = parse("tether run", &head).map_err(|e| e.to_string())?;
        build_spec(&a.opts, &a.operands[0], &cmd, detach, &no_env, &no_file)
    }

    #[test]
    fn run_body_basic() {
        let sp = spec_of(
            &[
                "-d",
                "--name",
                "web",
                "-p",
                "8080:3000",
                "--net=net-x",
                "--net-alias",
                "w",
                "--ip",
                "10.0.0.5",
                "-e",
                "A=1",
                "tbox",
                "sh",
                "-c",
                "echo hi; sleep 1",
            ],
            true,
        )
        .unwrap();
        let b = &sp.body;
        assert_eq!(sp.name.as_deref(), Some("web"));
        assert_eq!(b["Image"], "tbox");
        assert_eq!(b["Cmd"], json!(["sh", "-c", "echo hi; sleep 1"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["ExposedPorts"], json!({"3000/tcp": {}}));
        assert_eq!(b["AttachStdout"], false);
        assert_eq!(b["HostConfig"]["NetworkMode"], "net-x");
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"3000/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["net-x"],
            json!({"Aliases": ["w"], "IPAMConfig": {"IPv4Address": "10.0.0.5"}})
        );
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
    }

    #[test]
    fn run_body_defaults_and_flags() {
        let sp = spec_of(&["-it", "--sig-proxy", "--rm", "tbox"], false).unwrap();
        let b = &sp.body;
        assert_eq!(b["Cmd"], Json::Null);
        assert_eq!(b["Tty"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["StdinOnce"], true);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
        assert_eq!(b["HostConfig"]["NetworkMode"], "default");
        assert_eq!(b["NetworkingConfig"]["EndpointsConfig"], json!({}));

        let sp = spec_of(
            &[
                "--entrypoint",
                "",
                "-w",
                "/tmp",
                "-u",
                "1000:1000",
                "--cap-add",
                "NET_ADMIN",
                "--cap-drop=ALL",
                "--privileged",
                "--restart",
                "on-failure:2",
                "--stop-signal",
                "SIGINT",
                "--stop-timeout",
                "3",
                "--dns",
                "1.1.1.1",
                "--dns-opt",
                "ndots:1",
                "--dns-search",
                "example.com",
                "--add-host",
                "db:10.0.0.2",
                "--add-host",
                "gw:host-gateway",
                "--link",
                "db:database",
                "-v",
                "/src:/dst:ro",
                "-v",
                "/anon",
                "-l",
                "a=b",
                "--label",
                "c",
                "-P",
                "--expose",
                "9000-9001/udp",
                "-h",
                "box",
                "tbox",
            ],
            false,
        )
        .unwrap();
        let b = &sp.body;
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["WorkingDir"], "/tmp");
        assert_eq!(b["User"], "1000:1000");
        assert_eq!(b["Hostname"], "box");
        assert_eq!(b["StopSignal"], "SIGINT");
        assert_eq!(b["StopTimeout"], 3);
        assert_eq!(b["Labels"], json!({"a": "b", "c": ""}));
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(b["ExposedPorts"], json!({"9000/udp": {}, "9001/udp": {}}));
        let h = &b["HostConfig"];
        assert_eq!(h["CapAdd"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(h["CapDrop"], json!(["ALL"]));
        assert_eq!(h["Privileged"], true);
        assert_eq!(h["PublishAllPorts"], true);
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 2})
        );
        assert_eq!(h["Dns"], json!(["1.1.1.1"]));
        assert_eq!(h["DnsOptions"], json!(["ndots:1"]));
        assert_eq!(h["DnsSearch"], json!(["example.com"]));
        assert_eq!(h["ExtraHosts"], json!(["db:10.0.0.2", "gw:host-gateway"]));
        assert_eq!(h["Links"], json!(["db:database"]));
        assert_eq!(h["Binds"], json!(["/src:/dst:ro"]));
    }

    #[test]
    fn run_body_errors() {
        assert_eq!(
            spec_of(&["-p", "80:abc", "tbox"], false).unwrap_err(),
            "invalid containerPort: abc"
        );
        assert_eq!(
            spec_of(&["Tbox"], false).unwrap_err(),
            "invalid reference format: repository name (library/Tbox) must be lowercase"
        );
        assert_eq!(
            spec_of(&["tbox:"], false).unwrap_err(),
            "invalid reference format"
        );
        assert!(spec_of(&["--rm", "--restart", "always", "tbox"], false).is_err());
        assert_eq!(
            spec_of(&["--dns", "nope", "tbox"], false).unwrap_err(),
            "invalid argument \"nope\" for \"--dns\" flag: IP address is not correctly formatted: nope"
        );
        assert_eq!(
            spec_error(
                "tether run",
                "invalid argument \"x\" for \"--dns\" flag: y".into()
            )
            .to_string(),
            "invalid argument \"x\" for \"--dns\" flag: y\nSee 'tether run --help'."
        );
        assert!(spec_of(&["--env-file", "/nonexistent", "tbox"], false)
            .unwrap_err()
            .starts_with("open /nonexistent: no such file"));
    }

    #[test]
    fn env_file_and_env_order() {
        let args = s(&["--env-file", "f.env", "-e", "B=2", "-e", "HOMEY", "tbox"]);
        let (head, cmd) = split_image_and_command::<RunArgs>(&args);
        let a: RunArgs = parse("tether run", &head).unwrap();
        let lookup = |k: &str| (k == "HOMEY").then(|| "/h".to_string());
        let read = |_: &str| Ok(b"# c\nA=1\n\nHOMEY\n".to_vec());
        let sp = build_spec(&a.opts, &a.operands[0], &cmd, false, &lookup, &read).unwrap();
        assert_eq!(
            sp.body["Env"],
            json!(["A=1", "HOMEY=/h", "B=2", "HOMEY=/h"])
        );
    }

    #[test]
    fn advanced_network_syntax() {
        let sp = spec_of(
            &["--network", "name=n1,alias=a1,ip=10.1.0.9", "tbox"],
            false,
        )
        .unwrap();
        assert_eq!(sp.body["HostConfig"]["NetworkMode"], "n1");
        assert_eq!(
            sp.body["NetworkingConfig"]["EndpointsConfig"]["n1"],
            json!({"Aliases": ["a1"], "IPAMConfig": {"IPv4Address": "10.1.0.9"}})
        );
        assert!(spec_of(&["--network", "bridge", "--network", "n1", "tbox"], false).is_err());
    }

    #[test]
    fn run_errors_map_exit_codes() {
        let e = run_error(CliError::Daemon {
            status: 400,
            message: "failed: exec: \"nope\": executable file not found in $PATH".into(),
        });
        assert_eq!(e.exit_code(), 127);
        let e = run_error(CliError::Daemon {
            status: 500,
            message: "permission denied".into(),
        });
        assert_eq!(e.exit_code(), 126);
        let e = run_error(CliError::msg("invalid reference format"));
        assert_eq!(e.exit_code(), 125);
        assert_eq!(e.to_string(), "tether: invalid reference format.");
        let e = run_error(CliError::Daemon {
            status: 409,
            message: "Conflict. The container name \"/x\" is already in use.".into(),
        });
        assert_eq!(
            e.to_string(),
            "tether: Error response from daemon: Conflict. The container name \"/x\" is already in use."
        );
    }
}
