//! `tether compose`: multi-container applications from Compose files, run
//! through the Docker API like Docker Compose v2 does (same object names and
//! labels, so each tool finds the other's projects).
//!
//! The model, interpolation, checks and planning live in `tether-compose`;
//! this module talks to the daemon: networks, volumes and containers are
//! found by the `com.docker.compose.*` labels.

pub mod images;
pub mod logs;
pub mod progress;

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, Parser};
use serde_json::{json, Value as Json};
use tether_compose::model::Condition;
use tether_compose::plan::{
    self, LABEL_CONFIG_HASH, LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE,
};
use tether_compose::{ComposeError, ContainerOptions, LoadOptions, Project};

use crate::args::{min_args, parse, split_after_operands, PROG};
use crate::client::{path_escape, Client, Query};
use crate::error::{CliError, Result};
use crate::format::ellipsis;
use crate::format::humanize::since;
use crate::format::ports::{displayable_ports, PortSummary};
use crate::format::tabwriter::docker_table;
use crate::format::template::value::go_quote;
use crate::{errln, outln};

use self::progress::{Kind, Progress};

/// `tether compose` and its global options.
#[derive(Parser, Debug, Default)]
#[command(
    name = "compose",
    override_usage = "tether compose [OPTIONS] COMMAND",
    about = "Define and run multi-container applications with tether"
)]
pub struct ComposeArgs {
    /// Compose configuration files
    #[arg(short = 'f', long = "file", action = ArgAction::Append)]
    pub file: Vec<String>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    /// Specify an alternate working directory (default: the path of the first Compose file)
    #[arg(long = "project-directory")]
    pub project_directory: Option<String>,
    /// Set type of progress output (auto, tty, plain, quiet)
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// COMMAND [ARGS...]
    pub operands: Vec<String>,
}

/// `tether compose up`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "up",
    override_usage = "tether compose up [OPTIONS] [SERVICE...]",
    about = "Create and start containers"
)]
pub struct UpArgs {
    /// Detached mode: run containers in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Scale SERVICE to NUM instances (overrides `scale`/`deploy.replicas`)
    #[arg(long = "scale", action = ArgAction::Append, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Don't start the services after creating them
    #[arg(long = "no-start")]
    pub no_start: bool,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Recreate containers even if their configuration hasn't changed
    #[arg(long = "force-recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long = "no-recreate")]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Wait for services to be running|healthy (implies detached mode)
    #[arg(long)]
    pub wait: bool,
    /// Shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long = "no-build")]
    pub no_build: bool,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long)]
    pub pull: Option<String>,
    /// SERVICE...
    pub services: Vec<String>,
}

/// `tether compose build`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "build",
    override_usage = "tether compose build [OPTIONS] [SERVICE...]",
    about = "Build or rebuild services"
)]
pub struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set build-time variables for services
    #[arg(long = "build-arg", action = ArgAction::Append)]
    pub build_arg: Vec<String>,
    /// SERVICE...
    pub services: Vec<String>,
}

/// `tether compose down`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "down",
    override_usage = "tether compose down [OPTIONS]",
    about = "Stop and remove containers, networks"
)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section and anonymous volumes
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long = "remove-orphans")]
    pub remove_orphans: bool,
    /// Shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    /// SERVICE... (not supported: down acts on the whole project)
    pub services: Vec<String>,
}

/// `tether compose ps`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "ps",
    override_usage = "tether compose ps [OPTIONS] [SERVICE...]",
    about = "List containers"
)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Format the output: table or json
    #[arg(long)]
    pub format: Option<String>,
    /// SERVICE...
    pub names: Vec<String>,
}

/// `tether compose logs`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "logs",
    override_usage = "tether compose logs [OPTIONS] [SERVICE...]",
    about = "View output from containers"
)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// SERVICE...
    pub services: Vec<String>,
}

/// `tether compose exec`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "exec",
    override_usage = "tether compose exec [OPTIONS] SERVICE COMMAND [ARGS...]",
    about = "Execute a command in a running container"
)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", action = ArgAction::Append)]
    pub env: Vec<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Disable pseudo-TTY allocation
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Give extended privileges to the process
    #[arg(long)]
    pub privileged: bool,
    /// Run the command as this user
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// SERVICE
    pub operands: Vec<String>,
}

/// `tether compose run`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "run",
    override_usage = "tether compose run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
    about = "Run a one-off command on a service"
)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", action = ArgAction::Append)]
    pub env: Vec<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Don't start linked services
    #[arg(long = "no-deps")]
    pub no_deps: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long = "service-ports")]
    pub service_ports: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long, default_value_t = true)]
    pub interactive: bool,
    /// Run as specified username or uid
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Build image before starting container
    #[arg(long)]
    pub build: bool,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long)]
    pub pull: Option<String>,
    /// SERVICE
    pub operands: Vec<String>,
}

/// `tether compose config`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "config",
    override_usage = "tether compose config [OPTIONS] [SERVICE...]",
    about = "Parse, resolve and render compose file in canonical format"
)]
pub struct ConfigArgs {
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// SERVICE...
    pub names: Vec<String>,
}

/// `tether compose stop` / `start` / `restart` / `rm`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "stop",
    override_usage = "tether compose stop|start|restart [SERVICE...]",
    about = "Stop, start or restart services"
)]
pub struct ServicesArgs {
    /// Shutdown timeout in seconds
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    /// Don't ask to confirm removal (rm)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers first (rm)
    #[arg(short = 's', long)]
    pub stop: bool,
    /// SERVICE...
    pub services: Vec<String>,
}

fn compose_err(e: ComposeError) -> CliError {
    CliError::msg(e.to_string())
}

/// Splits `tether compose [GLOBALS] COMMAND [ARGS]` into the globals and the command with its args.
pub fn parse_compose(args: &[String]) -> Result<(ComposeArgs, Vec<String>)> {
    let path = format!("{PROG} compose");
    let (head, rest) = split_after_operands(&ComposeArgs::command(), args, 1);
    let g: ComposeArgs = parse(&path, &head)?;
    let mut cmd = g.operands.clone();
    cmd.extend(rest);
    Ok((g, cmd))
}

/// `tether compose ...`.
pub async fn compose(client: &Client, args: &[String]) -> Result<()> {
    let (g, cmd) = parse_compose(args)?;
    let Some(sub) = cmd.first() else {
        outln!("\nUsage:  {PROG} compose [OPTIONS] COMMAND\n\nDefine and run multi-container applications with tether\n\nCommands:\n  build       Build or rebuild services\n  config      Parse, resolve and render compose file in canonical format\n  down        Stop and remove containers, networks\n  exec        Execute a command in a running container\n  logs        View output from containers\n  ps          List containers\n  pull        Pull service images\n  push        Push service images\n  restart     Restart service containers\n  run         Run a one-off command on a service\n  start       Start services\n  stop        Stop services\n  up          Create and start containers\n\nOptions:\n  -f, --file stringArray           Compose configuration files\n  -p, --project-name string        Project name\n      --project-directory string   Specify an alternate working directory\n      --progress string            Set type of progress output (auto, tty, plain, quiet)");
        return Ok(());
    };
    let rest = &cmd[1..];
    let path = |n: &str| format!("{PROG} compose {n}");
    let progress = Progress::new(&g.progress);
    match sub.as_str() {
        "up" => {
            let a: UpArgs = parse(&path("up"), rest)?;
            let p = load_project(&g)?;
            up(client, &p, &a, progress).await
        }
        "build" => {
            let a: BuildArgs = parse(&path("build"), rest)?;
            let p = load_project(&g)?;
            for s in &a.services {
                if !p.services.contains_key(s) {
                    return Err(CliError::msg(format!("no such service: {s}")));
                }
            }
            let services: Vec<String> = if a.services.is_empty() {
                p.services.keys().cloned().collect()
            } else {
                a.services.clone()
            };
            build_services(client, &p, &services, &a).await
        }
        "down" => {
            let a: DownArgs = parse(&path("down"), rest)?;
            let p = match load_project(&g) {
                Ok(p) => p,
                // like Compose: a project name is enough to take it down
                Err(e) => match &g.project_name {
                    Some(n) => Project {
                        name: n.clone(),
                        ..Default::default()
                    },
                    None => return Err(e),
                },
            };
            down(client, &p, &a, progress).await
        }
        "ps" => {
            let a: PsArgs = parse(&path("ps"), rest)?;
            let p = project_or_name(&g)?;
            ps(client, &p, &a).await
        }
        "logs" => {
            let a: LogsArgs = parse(&path("logs"), rest)?;
            let p = project_or_name(&g)?;
            logs::logs(client, &p, &a).await
        }
        "exec" => {
            let (head, cmdline) = split_after_operands(&ExecArgs::command(), rest, 1);
            let a: ExecArgs = parse(&path("exec"), &head)?;
            min_args::<ExecArgs>(&path("exec"), a.operands.len() + cmdline.len(), 2)?;
            let p = project_or_name(&g)?;
            exec(client, &p, &a, &cmdline).await
        }
        "run" => {
            let (head, cmdline) = split_after_operands(&RunArgs::command(), rest, 1);
            let a: RunArgs = parse(&path("run"), &head)?;
            min_args::<RunArgs>(&path("run"), a.operands.len(), 1)?;
            let p = load_project(&g)?;
            run(client, &p, &a, &cmdline, progress).await
        }
        "pull" => {
            let a: images::PullArgs = parse(&path("pull"), rest)?;
            images::pull(client, &load_project(&g)?, &a, progress).await
        }
        "push" => {
            let a: images::PushArgs = parse(&path("push"), rest)?;
            images::push(client, &load_project(&g)?, &a, progress).await
        }
        "config" => {
            let a: ConfigArgs = parse(&path("config"), rest)?;
            let p = load_project(&g)?;
            config(&p, &a)
        }
        "stop" | "start" | "restart" | "rm" => {
            let a: ServicesArgs = parse(&path(sub), rest)?;
            let p = project_or_name(&g)?;
            services_cmd(client, &p, sub, &a, progress).await
        }
        other => Err(CliError::msg(format!(
            "{PROG} compose: unknown command \"{other}\"\nSee '{PROG} compose --help'"
        ))),
    }
}

/// Builds the images of `services` that have a `build:` section, tagged with
/// their `image:` (or `<project>-<service>`), through `POST /build`.
async fn build_services(
    client: &Client,
    p: &Project,
    services: &[String],
    a: &BuildArgs,
) -> Result<()> {
    use crate::commands::build::{build_dir, parse_size, BuildRequest};
    for s in services {
        let svc = &p.services[s];
        let Some(b) = &svc.build else {
            if !a.quiet {
                errln!("{s} uses an image, skipping");
            }
            continue;
        };
        let image = svc.image.clone().unwrap_or_default();
        let mut build_args = serde_json::Map::new();
        for (k, v) in &b.args.0 {
            if let Some(v) = v {
                build_args.insert(k.clone(), Json::String(v.clone()));
            }
        }
        for kv in &a.build_arg {
            match kv.split_once('=') {
                Some((k, v)) => build_args.insert(k.to_string(), Json::String(v.to_string())),
                None => match std::env::var(kv) {
                    Ok(v) => build_args.insert(kv.clone(), Json::String(v)),
                    Err(_) => None,
                },
            };
        }
        let labels = b
            .labels
            .0
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect();
        let (dockerfile, outside) = match &b.dockerfile {
            Some(d) if std::path::Path::new(d).is_absolute() => (String::new(), Some(d.clone())),
            Some(d) => (d.clone(), None),
            None => (String::new(), None),
        };
        let req = BuildRequest {
            tags: vec![image.clone()],
            dockerfile,
            build_args,
            target: b.target.clone(),
            no_cache: a.no_cache || b.no_cache,
            pull: a.pull || b.pull,
            rm: true,
            force_rm: false,
            network: b.network.clone().unwrap_or_default(),
            labels,
            add_hosts: b.extra_hosts.0.clone(),
            quiet: a.quiet,
            shm_size: b.shm_size.as_deref().map(parse_size).transpose()?,
            platform: None,
        };
        if !a.quiet {
            errln!("Building {s}");
        }
        build_dir(
            client,
            std::path::Path::new(&b.context),
            outside.as_deref(),
            req,
        )
        .await
        .map_err(|e| CliError::msg(format!("service {s:?} failed to build: {e}")))?;
    }
    Ok(())
}

/// Loads the project named by the global options, printing its warnings.
pub fn load_project(g: &ComposeArgs) -> Result<Project> {
    let opts = LoadOptions {
        files: g.file.iter().map(PathBuf::from).collect(),
        project_name: g.project_name.clone(),
        project_directory: g.project_directory.as_ref().map(PathBuf::from),
        cwd: std::env::current_dir()?,
        env: std::env::vars().collect(),
    };
    let p = tether_compose::load(&opts).map_err(compose_err)?;
    for w in &p.warnings {
        errln!("WARN[0000] {w}");
    }
    Ok(p)
}

/// The project from the files, or, when there are none and `-p` is given, just its name.
fn project_or_name(g: &ComposeArgs) -> Result<Project> {
    match load_project(g) {
        Ok(p) => Ok(p),
        Err(e) => match &g.project_name {
            Some(n) => Ok(Project {
                name: n.clone(),
                ..Default::default()
            }),
            None => Err(e),
        },
    }
}

/// Parses `--scale SVC=N` items.
pub fn parse_scale(items: &[String]) -> Result<BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    for s in items {
        let (svc, n) = s
            .split_once('=')
            .ok_or_else(|| CliError::msg(format!("invalid --scale {s:?}: expected SERVICE=NUM")))?;
        let n: u32 = n
            .parse()
            .map_err(|_| CliError::msg(format!("invalid --scale {s:?}: {n:?} is not a number")))?;
        out.insert(svc.to_string(), n);
    }
    Ok(out)
}

// ---------------------------------------------------------------- daemon helpers

fn label_filter(labels: &[String]) -> String {
    json!({ "label": labels }).to_string()
}

/// The project's containers (all states), optionally of one service and without one-offs.
async fn project_containers(
    client: &Client,
    project: &str,
    service: Option<&str>,
    include_oneoff: bool,
) -> Result<Vec<Json>> {
    let mut labels = vec![format!("{LABEL_PROJECT}={project}")];
    if let Some(s) = service {
        labels.push(format!("{LABEL_SERVICE}={s}"));
    }
    if !include_oneoff {
        labels.push(format!("{LABEL_ONEOFF}=False"));
    }
    let q = Query::new()
        .add("all", "1")
        .add("filters", label_filter(&labels));
    let v = client
        .get_json(&format!("/containers/json{}", q.encode()))
        .await?;
    let mut list: Vec<Json> = v.as_array().cloned().unwrap_or_default();
    list.sort_by_key(|c| (label(c, LABEL_SERVICE), number(c), name_of(c)));
    Ok(list)
}

fn label(c: &Json, key: &str) -> String {
    c["Labels"][key].as_str().unwrap_or("").to_string()
}

fn number(c: &Json) -> u32 {
    label(c, LABEL_NUMBER).parse().unwrap_or(0)
}

fn name_of(c: &Json) -> String {
    c["Names"]
        .as_array()
        .and_then(|n| n.first())
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

fn id_of(c: &Json) -> String {
    c["Id"].as_str().unwrap_or("").to_string()
}

fn is_running(c: &Json) -> bool {
    c["State"] == "running"
}

async fn stop_container(client: &Client, id: &str, timeout: Option<i64>) -> Result<()> {
    let q = Query::new().add_if(timeout.is_some(), "t", timeout.unwrap_or(0).to_string());
    match client
        .post(
            &format!("/containers/{}/stop{}", path_escape(id), q.encode()),
            None,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(CliError::Daemon { status: 304, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn remove_container(client: &Client, id: &str, volumes: bool) -> Result<()> {
    let q = Query::new().add("force", "1").add_if(volumes, "v", "1");
    match client
        .delete(&format!("/containers/{}{}", path_escape(id), q.encode()))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

async fn stop_and_remove(
    client: &Client,
    c: &Json,
    volumes: bool,
    timeout: Option<i64>,
    progress: Progress,
) -> Result<()> {
    let name = name_of(c);
    let id = id_of(c);
    if is_running(c) {
        progress.begin(Kind::Container, &name, "Stopping");
        stop_container(client, &id, timeout).await?;
        progress.done(Kind::Container, &name, "Stopped");
    }
    progress.begin(Kind::Container, &name, "Removing");
    if let Err(e) = remove_container(client, &id, volumes).await {
        progress.failed(Kind::Container, &name, "Error");
        return Err(e);
    }
    progress.done(Kind::Container, &name, "Removed");
    Ok(())
}

/// Creates a network or volume by posting `body` to `path`, shown on the
/// progress display as `kind` `name`.
async fn create_object(
    client: &Client,
    progress: Progress,
    kind: Kind,
    name: &str,
    path: &str,
    body: &Json,
) -> Result<()> {
    progress.begin(kind, name, "Creating");
    match client.post(path, Some(body)).await {
        Ok(_) => {
            progress.done(kind, name, "Created");
            Ok(())
        }
        Err(e) => {
            progress.failed(kind, name, "Error");
            let what = kind.word().to_lowercase();
            Err(CliError::msg(format!(
                "failed to create {what} {name}: {e}"
            )))
        }
    }
}

async fn ensure_network(client: &Client, p: &Project, key: &str, progress: Progress) -> Result<()> {
    let name = p.network_name(key);
    let def = p.networks.get(key).cloned().unwrap_or_default();
    match client
        .get_json(&format!("/networks/{}", path_escape(&name)))
        .await
    {
        Ok(existing) => {
            if !def.external.external {
                let owner = existing["Labels"][LABEL_PROJECT].as_str().unwrap_or("");
                if owner != p.name {
                    errln!(
                        "WARN[0000] a network with name {name} exists but was not created for project \"{}\".\nSet `external: true` to use an existing network",
                        p.name
                    );
                }
            }
            Ok(())
        }
        Err(e) if e.is_not_found() => {
            if def.external.external {
                return Err(CliError::msg(format!(
                    "network {name} declared as external, but could not be found"
                )));
            }
            let body = p.network_create_body(key);
            create_object(
                client,
                progress,
                Kind::Network,
                &name,
                "/networks/create",
                &body,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

async fn ensure_volume(client: &Client, p: &Project, key: &str, progress: Progress) -> Result<()> {
    let name = p.volume_name(key);
    let def = p.volumes.get(key).cloned().unwrap_or_default();
    match client
        .get_json(&format!("/volumes/{}", path_escape(&name)))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => {
            if def.external.external {
                return Err(CliError::msg(format!(
                    "external volume \"{name}\" not found"
                )));
            }
            let body = p.volume_create_body(key);
            create_object(
                client,
                progress,
                Kind::Volume,
                &name,
                "/volumes/create",
                &body,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

async fn create_container(client: &Client, name: &str, body: &Json) -> Result<String> {
    let q = Query::new().add("name", name);
    let v = client
        .post_json(&format!("/containers/create{}", q.encode()), Some(body))
        .await?;
    v["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::BadResponse("container create response has no Id".into()))
}

/// Waits until `dep`'s containers satisfy `cond` (Compose's `depends_on` conditions).
async fn wait_condition(
    client: &Client,
    p: &Project,
    dep: &str,
    cond: Condition,
    progress: Progress,
) -> Result<()> {
    if cond == Condition::ServiceStarted {
        return Ok(());
    }
    let containers = project_containers(client, &p.name, Some(dep), false).await?;
    for c in containers {
        let name = name_of(&c);
        let id = id_of(&c);
        progress.begin(Kind::Container, &name, "Waiting");
        loop {
            let v = client
                .get_json(&format!("/containers/{}/json", path_escape(&id)))
                .await?;
            let state = &v["State"];
            let status = state["Status"].as_str().unwrap_or("");
            let exited = matches!(status, "exited" | "dead");
            let code = state["ExitCode"].as_i64().unwrap_or(0);
            match cond {
                Condition::ServiceHealthy => {
                    let health = state["Health"]["Status"].as_str();
                    match health {
                        Some("healthy") => {
                            progress.done(Kind::Container, &name, "Healthy");
                            break;
                        }
                        Some("unhealthy") => {
                            progress.failed(Kind::Container, &name, "Error");
                            return Err(CliError::msg(format!(
                                "dependency failed to start: container {name} is unhealthy"
                            )));
                        }
                        None if v["Config"]["Healthcheck"].is_null()
                            || v["Config"]["Healthcheck"]["Test"] == json!(["NONE"]) =>
                        {
                            progress.failed(Kind::Container, &name, "Error");
                            return Err(CliError::msg(format!(
                                "dependency failed to start: container {name} has no healthcheck configured"
                            )));
                        }
                        _ if exited => {
                            progress.failed(Kind::Container, &name, "Error");
                            return Err(CliError::msg(format!(
                                "dependency failed to start: container {name} exited ({code})"
                            )));
                        }
                        _ => {}
                    }
                }
                Condition::ServiceCompletedSuccessfully => {
                    if exited {
                        if code == 0 {
                            progress.done(Kind::Container, &name, "Exited");
                            break;
                        }
                        progress.failed(Kind::Container, &name, "Error");
                        return Err(CliError::msg(format!(
                            "service \"{dep}\" didn't complete successfully: exit {code}"
                        )));
                    }
                }
                Condition::ServiceStarted => break,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- up

/// What `converge` did for one container.
#[derive(Debug, Clone)]
struct Planned {
    id: String,
    name: String,
    service: String,
    running: bool,
    tty: bool,
}

/// Options of [`converge`].
#[derive(Debug, Clone, Default)]
struct ConvergeOpts {
    scale: BTreeMap<String, u32>,
    force_recreate: bool,
    no_recreate: bool,
    timeout: Option<i64>,
}

/// Creates, keeps or recreates each service's containers (and removes extra
/// replicas), in dependency order. Returns every container of the services.
async fn converge(
    client: &Client,
    p: &Project,
    services: &[String],
    o: &ConvergeOpts,
    progress: Progress,
) -> Result<Vec<Planned>> {
    let mut out = Vec::new();
    for svc_name in services {
        let Some(svc) = p.services.get(svc_name) else {
            continue;
        };
        let want = o
            .scale
            .get(svc_name)
            .copied()
            .unwrap_or_else(|| plan::replicas(svc));
        let hash = p.config_hash(svc_name);
        let existing = project_containers(client, &p.name, Some(svc_name), false).await?;
        let mut by_number: BTreeMap<u32, Json> = BTreeMap::new();
        for c in existing {
            let n = number(&c);
            if n == 0 || n > want || by_number.contains_key(&n) {
                stop_and_remove(client, &c, false, o.timeout, progress).await?;
            } else {
                by_number.insert(n, c);
            }
        }
        for n in 1..=want {
            let name = p.container_name(svc_name, n);
            let opts = ContainerOptions::default();
            let done = if let Some(c) = by_number.get(&n) {
                let same = label(c, LABEL_CONFIG_HASH) == hash;
                if (same && !o.force_recreate) || o.no_recreate {
                    out.push(Planned {
                        id: id_of(c),
                        name: name_of(c),
                        service: svc_name.clone(),
                        running: is_running(c),
                        tty: svc.tty,
                    });
                    continue;
                }
                let old = name_of(c);
                progress.begin(Kind::Container, &old, "Recreate");
                if is_running(c) {
                    stop_container(client, &id_of(c), o.timeout).await?;
                }
                remove_container(client, &id_of(c), false).await?;
                "Recreated"
            } else {
                progress.begin(Kind::Container, &name, "Creating");
                "Created"
            };
            let body = p
                .container_create_body(svc_name, n, &opts)
                .map_err(compose_err)?;
            let id = create_container(client, &name, &body)
                .await
                .inspect_err(|_| {
                    progress.failed(Kind::Container, &name, "Error");
                })?;
            progress.done(Kind::Container, &name, done);
            out.push(Planned {
                id,
                name,
                service: svc_name.clone(),
                running: false,
                tty: svc.tty,
            });
        }
    }
    Ok(out)
}

/// Starts the containers service by service, waiting for each service's
/// `depends_on` conditions first.
async fn start_in_order(
    client: &Client,
    p: &Project,
    services: &[String],
    planned: &mut [Planned],
    progress: Progress,
) -> Result<()> {
    for svc_name in services {
        let Some(svc) = p.services.get(svc_name) else {
            continue;
        };
        for (dep, d) in &svc.depends_on.0 {
            if services.contains(dep) || d.condition != Condition::ServiceStarted {
                wait_condition(client, p, dep, d.condition, progress).await?;
            }
        }
        for c in planned.iter_mut().filter(|c| &c.service == svc_name) {
            if c.running {
                progress.done(Kind::Container, &c.name, "Running");
                continue;
            }
            progress.begin(Kind::Container, &c.name, "Starting");
            match client
                .post(&format!("/containers/{}/start", path_escape(&c.id)), None)
                .await
            {
                Ok(_) | Err(CliError::Daemon { status: 304, .. }) => {
                    c.running = true;
                    progress.done(Kind::Container, &c.name, "Started");
                }
                Err(e) => {
                    progress.failed(Kind::Container, &c.name, "Error");
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

async fn orphans(client: &Client, p: &Project, remove: bool, progress: Progress) -> Result<()> {
    let all = project_containers(client, &p.name, None, false).await?;
    let orphans: Vec<&Json> = all
        .iter()
        .filter(|c| !p.services.contains_key(&label(c, LABEL_SERVICE)))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if remove {
        for c in orphans {
            stop_and_remove(client, c, false, None, progress).await?;
        }
    } else {
        let names: Vec<String> = orphans.iter().map(|c| name_of(c)).collect();
        errln!(
            "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        );
    }
    Ok(())
}

/// `compose up`.
pub async fn up(client: &Client, p: &Project, a: &UpArgs, progress: Progress) -> Result<()> {
    let scale = parse_scale(&a.scale)?;
    for s in scale.keys() {
        if !p.services.contains_key(s) {
            return Err(CliError::msg(format!("no such service: {s}")));
        }
    }
    let services = if a.no_deps {
        for s in &a.services {
            if !p.services.contains_key(s) {
                return Err(CliError::msg(format!("no such service: {s}")));
            }
        }
        if a.services.is_empty() {
            p.services.keys().cloned().collect()
        } else {
            plan::start_order(p, &[])
                .map_err(compose_err)?
                .into_iter()
                .filter(|s| a.services.contains(s))
                .collect()
        }
    } else {
        plan::start_order(p, &a.services).map_err(compose_err)?
    };
    let io = images::ImageOpts {
        build: a.build,
        no_build: a.no_build,
        pull: a.pull.clone(),
    };
    images::ensure_images(client, p, &services, &io, progress).await?;
    orphans(client, p, a.remove_orphans, progress).await?;
    for key in p.used_networks(&services) {
        ensure_network(client, p, &key, progress).await?;
    }
    for key in p.used_volumes(&services) {
        ensure_volume(client, p, &key, progress).await?;
    }
    let o = ConvergeOpts {
        scale,
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        timeout: a.timeout,
    };
    let mut planned = converge(client, p, &services, &o, progress).await?;
    if a.no_start {
        return Ok(());
    }
    let was_running: BTreeSet<String> = planned
        .iter()
        .filter(|c| c.running)
        .map(|c| c.id.clone())
        .collect();
    start_in_order(client, p, &services, &mut planned, progress).await?;
    if a.wait {
        for s in &services {
            let healthcheck = p.services[s]
                .healthcheck
                .as_ref()
                .is_some_and(|h| !h.disable);
            let cond = if healthcheck {
                Condition::ServiceHealthy
            } else {
                Condition::ServiceStarted
            };
            wait_condition(client, p, s, cond, progress).await?;
        }
        return Ok(());
    }
    if a.detach {
        return Ok(());
    }
    // attached: follow the selected services' output until they all exit or Ctrl-C
    let shown: Vec<&Planned> = planned
        .iter()
        .filter(|c| a.services.is_empty() || a.services.contains(&c.service))
        .collect();
    let targets: Vec<logs::Target> = shown
        .iter()
        .map(|c| logs::Target {
            id: c.id.clone(),
            prefix: logs::short_name(&p.name, &c.name),
            tty: c.tty,
            tail: if was_running.contains(&c.id) {
                "0".into()
            } else {
                "all".into()
            },
        })
        .collect();
    errln!("Attaching to {}", {
        let v: Vec<String> = targets.iter().map(|t| t.prefix.clone()).collect();
        v.join(", ")
    });
    let follow = logs::follow_all(client, targets, true, false, !a.no_log_prefix, true);
    tokio::select! {
        _ = follow => Ok(()),
        _ = tokio::signal::ctrl_c() => {
            errln!("Gracefully stopping... (press Ctrl+C again to force)");
            let stop_all = async {
                for c in planned.iter().rev() {
                    progress.begin(Kind::Container, &c.name, "Stopping");
                    stop_container(client, &c.id, a.timeout).await?;
                    progress.done(Kind::Container, &c.name, "Stopped");
                }
                Ok::<(), CliError>(())
            };
            tokio::select! {
                r = stop_all => r,
                _ = tokio::signal::ctrl_c() => {
                    for c in &planned {
                        let _ = client.post(&format!("/containers/{}/kill", path_escape(&c.id)), None).await;
                    }
                    Err(CliError::exit(130))
                }
            }
        }
    }
}

// ---------------------------------------------------------------- down

/// Removes a network or volume with a DELETE of `path` (one already gone
/// counts as removed), shown on the progress display as `kind` `name`; a
/// failure is added to `errors`.
async fn remove_object(
    client: &Client,
    progress: Progress,
    kind: Kind,
    name: &str,
    path: &str,
    errors: &mut Vec<String>,
) {
    progress.begin(kind, name, "Removing");
    match client.delete(path).await {
        Ok(_) => progress.done(kind, name, "Removed"),
        Err(e) if e.is_not_found() => progress.done(kind, name, "Removed"),
        Err(e) => {
            progress.failed(kind, name, "Error");
            errors.push(e.to_string());
        }
    }
}

/// `compose down`.
pub async fn down(client: &Client, p: &Project, a: &DownArgs, progress: Progress) -> Result<()> {
    let all = project_containers(client, &p.name, None, true).await?;
    let known =
        |c: &Json| p.services.is_empty() || p.services.contains_key(&label(c, LABEL_SERVICE));
    let mut kept_orphans = Vec::new();
    // dependents first: reverse start order, then one-offs and orphans
    let order = plan::start_order(p, &[]).unwrap_or_default();
    let rank = |c: &Json| {
        order
            .iter()
            .position(|s| *s == label(c, LABEL_SERVICE))
            .map_or(0, |i| i + 1)
    };
    let mut list: Vec<&Json> = all.iter().collect();
    list.sort_by_key(|c| std::cmp::Reverse(rank(c)));
    let mut errors = Vec::new();
    for c in list {
        let oneoff = label(c, LABEL_ONEOFF) == "True";
        if !known(c) && !oneoff && !a.remove_orphans {
            kept_orphans.push(name_of(c));
            continue;
        }
        if let Err(e) = stop_and_remove(client, c, a.volumes, a.timeout, progress).await {
            errors.push(e.to_string());
        }
    }
    if !kept_orphans.is_empty() {
        errln!(
            "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            kept_orphans.join(" ")
        );
    }
    // networks created for the project (found by label; external ones carry none)
    let q = Query::new().add(
        "filters",
        label_filter(&[format!("{LABEL_PROJECT}={}", p.name)]),
    );
    let nets = client.get_json(&format!("/networks{}", q.encode())).await?;
    let mut nets: Vec<Json> = nets.as_array().cloned().unwrap_or_default();
    nets.sort_by_key(|n| n["Name"].as_str().unwrap_or("").to_string());
    for n in nets {
        let name = n["Name"].as_str().unwrap_or("").to_string();
        let key = n["Labels"][plan::LABEL_NETWORK].as_str().unwrap_or("");
        if p.networks.get(key).is_some_and(|d| d.external.external) {
            continue;
        }
        let path = format!(
            "/networks/{}",
            path_escape(n["Id"].as_str().unwrap_or(&name))
        );
        remove_object(client, progress, Kind::Network, &name, &path, &mut errors).await;
    }
    if a.volumes {
        let vols = client.get_json(&format!("/volumes{}", q.encode())).await;
        let vols = match vols {
            Ok(v) => v["Volumes"].as_array().cloned().unwrap_or_default(),
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e),
        };
        for v in vols {
            let name = v["Name"].as_str().unwrap_or("").to_string();
            let key = v["Labels"][plan::LABEL_VOLUME].as_str().unwrap_or("");
            if p.volumes.get(key).is_some_and(|d| d.external.external) {
                continue;
            }
            let path = format!("/volumes/{}", path_escape(&name));
            remove_object(client, progress, Kind::Volume, &name, &path, &mut errors).await;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::msg(errors.join("\n")))
    }
}

// ---------------------------------------------------------------- ps

/// One row of `compose ps` as tab-separated cells.
pub fn ps_line(c: &Json) -> String {
    let ports: Vec<PortSummary> = c["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(PortSummary::from_json)
        .collect();
    let created = c["Created"].as_i64().unwrap_or(0);
    [
        name_of(c),
        c["Image"].as_str().unwrap_or("").to_string(),
        go_quote(&ellipsis(c["Command"].as_str().unwrap_or(""), 20)),
        label(c, LABEL_SERVICE),
        since(created),
        c["Status"].as_str().unwrap_or("").to_string(),
        displayable_ports(&ports),
    ]
    .join("\t")
}

/// `compose ps`.
pub async fn ps(client: &Client, p: &Project, a: &PsArgs) -> Result<()> {
    if a.services {
        let names: Vec<&String> = p.services.keys().collect();
        for n in names {
            outln!("{n}");
        }
        return Ok(());
    }
    let all = project_containers(client, &p.name, None, true).await?;
    let mut rows: Vec<&Json> = all
        .iter()
        .filter(|c| a.all || is_running(c))
        .filter(|c| a.names.is_empty() || a.names.contains(&label(c, LABEL_SERVICE)))
        .collect();
    rows.sort_by_key(|c| name_of(c));
    if a.quiet {
        for c in rows {
            outln!("{}", id_of(c));
        }
        return Ok(());
    }
    if a.format.as_deref() == Some("json") {
        for c in rows {
            let v = json!({
                "ID": id_of(c), "Name": name_of(c), "Image": c["Image"], "Command": c["Command"],
                "Project": p.name, "Service": label(c, LABEL_SERVICE), "State": c["State"],
                "Status": c["Status"], "Labels": c["Labels"], "Created": c["Created"],
            });
            outln!("{v}");
        }
        return Ok(());
    }
    let mut text = String::from("NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS\n");
    for c in rows {
        text.push_str(&ps_line(c));
        text.push('\n');
    }
    crate::out!("{}", docker_table(&text));
    Ok(())
}

// ---------------------------------------------------------------- exec / run

/// The container of `service` numbered `index` that runs.
async fn service_container(
    client: &Client,
    p: &Project,
    service: &str,
    index: u32,
) -> Result<Json> {
    if !p.services.is_empty() && !p.services.contains_key(service) {
        return Err(CliError::msg(format!(
            "service \"{service}\" is not running"
        )));
    }
    let list = project_containers(client, &p.name, Some(service), false).await?;
    list.into_iter()
        .find(|c| number(c) == index && is_running(c))
        .ok_or_else(|| CliError::msg(format!("service \"{service}\" is not running")))
}

/// `compose exec`: runs `tether exec` on the service's container.
pub async fn exec(client: &Client, p: &Project, a: &ExecArgs, cmdline: &[String]) -> Result<()> {
    let service = &a.operands[0];
    let c = service_container(client, p, service, a.index).await?;
    let mut args: Vec<String> = Vec::new();
    if a.detach {
        args.push("-d".into());
    } else {
        args.push("-i".into());
        if !a.no_tty && std::io::stdin().is_terminal() {
            args.push("-t".into());
        }
    }
    for e in &a.env {
        args.extend(["-e".into(), e.clone()]);
    }
    if let Some(u) = &a.user {
        args.extend(["-u".into(), u.clone()]);
    }
    if let Some(w) = &a.workdir {
        args.extend(["-w".into(), w.clone()]);
    }
    if a.privileged {
        args.push("--privileged".into());
    }
    args.push(id_of(&c));
    args.extend(a.operands[1..].iter().cloned());
    args.extend(cmdline.iter().cloned());
    super::exec::exec(client, &format!("{PROG} compose exec"), &args).await
}

fn random_slug() -> String {
    use std::io::Read;
    let mut buf = [0u8; 32];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        buf[..16].copy_from_slice(&t.to_le_bytes());
        buf[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `compose run`: starts the service's dependencies, then a one-off container.
pub async fn run(
    client: &Client,
    p: &Project,
    a: &RunArgs,
    cmdline: &[String],
    progress: Progress,
) -> Result<()> {
    let service = a.operands[0].clone();
    if !p.services.contains_key(&service) {
        return Err(CliError::msg(format!("no such service: {service}")));
    }
    let mut command: Vec<String> = a.operands[1..].to_vec();
    command.extend(cmdline.iter().cloned());
    let deps: Vec<String> = if a.no_deps {
        Vec::new()
    } else {
        plan::start_order(p, std::slice::from_ref(&service))
            .map_err(compose_err)?
            .into_iter()
            .filter(|s| *s != service)
            .collect()
    };
    let mut scope = deps.clone();
    scope.push(service.clone());
    let io = images::ImageOpts {
        build: a.build,
        no_build: false,
        pull: a.pull.clone(),
    };
    images::ensure_images(client, p, &scope, &io, progress).await?;
    for key in p.used_networks(&scope) {
        ensure_network(client, p, &key, progress).await?;
    }
    for key in p.used_volumes(&scope) {
        ensure_volume(client, p, &key, progress).await?;
    }
    if !deps.is_empty() {
        let mut planned = converge(client, p, &deps, &ConvergeOpts::default(), progress).await?;
        start_in_order(client, p, &deps, &mut planned, progress).await?;
    }
    if let Some(svc) = p.services.get(&service) {
        for (dep, d) in &svc.depends_on.0 {
            if deps.contains(dep) {
                wait_condition(client, p, dep, d.condition, progress).await?;
            }
        }
    }
    let slug = random_slug();
    let tty = !a.no_tty && !a.detach && std::io::stdin().is_terminal();
    let interactive = a.interactive && !a.detach;
    let entrypoint = match &a.entrypoint {
        Some(e) => Some(
            tether_compose::model::shell_split(e)
                .map_err(|e| CliError::msg(format!("invalid --entrypoint: {e}")))?,
        ),
        None => None,
    };
    let env: Vec<String> = a
        .env
        .iter()
        .map(|e| crate::opts::env_value(e, &crate::opts::os_env))
        .collect();
    let opts = ContainerOptions {
        oneoff: true,
        slug: Some(slug.clone()),
        command: if command.is_empty() {
            None
        } else {
            Some(command)
        },
        entrypoint,
        env,
        service_ports: a.service_ports,
        tty: Some(tty),
        interactive,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        auto_remove: a.rm,
    };
    let mut body = p
        .container_create_body(&service, 1, &opts)
        .map_err(compose_err)?;
    if a.detach {
        body["AttachStdout"] = json!(false);
        body["AttachStderr"] = json!(false);
    }
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| p.oneoff_name(&service, &slug));
    let id = create_container(client, &name, &body).await?;
    if a.detach {
        client
            .post(&format!("/containers/{}/start", path_escape(&id)), None)
            .await?;
        outln!("{name}");
        return Ok(());
    }
    let streams = super::container::Streams {
        stdin: interactive,
        stdout: true,
        stderr: true,
    };
    let code = super::container::attach_start_wait(client, &id, tty, streams, a.rm, true).await?;
    if code != 0 {
        return Err(CliError::exit(code));
    }
    Ok(())
}

// ---------------------------------------------------------------- config

/// `compose config`.
pub fn config(p: &Project, a: &ConfigArgs) -> Result<()> {
    if a.quiet {
        return Ok(());
    }
    if a.services {
        for s in p.services.keys() {
            outln!("{s}");
        }
        return Ok(());
    }
    if a.volumes {
        for v in p.volumes.keys() {
            outln!("{v}");
        }
        return Ok(());
    }
    let mut shown = p.clone();
    if !a.names.is_empty() {
        let keep = plan::start_order(p, &a.names).map_err(compose_err)?;
        shown.services.retain(|k, _| keep.contains(k));
    }
    crate::out!("{}", shown.to_yaml().map_err(compose_err)?);
    Ok(())
}

// ---------------------------------------------------------------- stop / start / restart / rm

async fn services_cmd(
    client: &Client,
    p: &Project,
    sub: &str,
    a: &ServicesArgs,
    progress: Progress,
) -> Result<()> {
    let all = project_containers(client, &p.name, None, false).await?;
    let selected: Vec<&Json> = all
        .iter()
        .filter(|c| a.services.is_empty() || a.services.contains(&label(c, LABEL_SERVICE)))
        .collect();
    for c in selected {
        let name = name_of(c);
        let id = id_of(c);
        match sub {
            "stop" => {
                if is_running(c) {
                    progress.begin(Kind::Container, &name, "Stopping");
                    stop_container(client, &id, a.timeout).await?;
                    progress.done(Kind::Container, &name, "Stopped");
                }
            }
            "start" => {
                if !is_running(c) {
                    progress.begin(Kind::Container, &name, "Starting");
                    client
                        .post(&format!("/containers/{}/start", path_escape(&id)), None)
                        .await?;
                    progress.done(Kind::Container, &name, "Started");
                }
            }
            "restart" => {
                progress.begin(Kind::Container, &name, "Restarting");
                let q = Query::new().add_if(
                    a.timeout.is_some(),
                    "t",
                    a.timeout.unwrap_or(0).to_string(),
                );
                client
                    .post(
                        &format!("/containers/{}/restart{}", path_escape(&id), q.encode()),
                        None,
                    )
                    .await?;
                progress.done(Kind::Container, &name, "Started");
            }
            _ => {
                if is_running(c) && !a.stop {
                    continue;
                }
                stop_and_remove(client, c, false, a.timeout, progress).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn globals_then_command() {
        let (g, cmd) = parse_compose(&s(&[
            "-f", "a.yaml", "--file", "b.yaml", "-p", "proj", "up", "-d", "--scale", "web=3", "web",
        ]))
        .unwrap();
        assert_eq!(g.file, ["a.yaml", "b.yaml"]);
        assert_eq!(g.project_name.as_deref(), Some("proj"));
        assert_eq!(cmd, s(&["up", "-d", "--scale", "web=3", "web"]));
        let a: UpArgs = parse("tether compose up", &cmd[1..]).unwrap();
        assert!(a.detach);
        assert_eq!(a.services, ["web"]);
        assert_eq!(parse_scale(&a.scale).unwrap()["web"], 3);
        assert!(parse_scale(&s(&["web"])).is_err());
        assert!(parse_scale(&s(&["web=x"])).is_err());

        let (g, cmd) = parse_compose(&s(&["--project-directory", "/x", "down", "-v"])).unwrap();
        assert_eq!(g.project_directory.as_deref(), Some("/x"));
        let a: DownArgs = parse("tether compose down", &cmd[1..]).unwrap();
        assert!(a.volumes);
        assert!(parse_compose(&s(&["--bogus", "up"])).is_err());
    }

    #[test]
    fn exec_and_run_stop_at_the_command() {
        let rest = s(&["-T", "-e", "A=1", "web", "sh", "-c", "echo -T"]);
        let (head, cmd) = split_after_operands(&ExecArgs::command(), &rest, 1);
        let a: ExecArgs = parse("tether compose exec", &head).unwrap();
        assert!(a.no_tty);
        assert_eq!(a.env, ["A=1"]);
        assert_eq!(a.operands, ["web"]);
        assert_eq!(cmd, s(&["sh", "-c", "echo -T"]));

        let rest = s(&["--rm", "-e", "X=1", "--no-deps", "web", "ls", "-l"]);
        let (head, cmd) = split_after_operands(&RunArgs::command(), &rest, 1);
        let a: RunArgs = parse("tether compose run", &head).unwrap();
        assert!(a.rm && a.no_deps && a.interactive);
        assert_eq!(a.operands, ["web"]);
        assert_eq!(cmd, s(&["ls", "-l"]));
    }

    #[test]
    fn ps_and_logs_flags() {
        let a: PsArgs = parse("tether compose ps", &s(&["-a", "-q", "web"])).unwrap();
        assert!(a.all && a.quiet);
        assert_eq!(a.names, ["web"]);
        let a: LogsArgs = parse("tether compose logs", &s(&["-f", "--tail", "5", "db"])).unwrap();
        assert!(a.follow);
        assert_eq!(a.tail, "5");
        assert_eq!(a.services, ["db"]);
    }

    #[test]
    fn ps_row_cells() {
        let c = json!({
            "Id": "abc", "Names": ["/p-web-1"], "Image": "busybox", "Command": "nc -ll -p 5432 -e echo pong",
            "Labels": {"com.docker.compose.service": "web"}, "Created": 0, "State": "running",
            "Status": "Up 2 seconds",
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
        });
        let line = ps_line(&c);
        let cells: Vec<&str> = line.split('\t').collect();
        assert_eq!(cells[0], "p-web-1");
        assert_eq!(cells[2], "\"nc -ll -p 5432 -e e…\"");
        assert_eq!(cells[3], "web");
        assert_eq!(cells[5], "Up 2 seconds");
        assert_eq!(cells[6], "0.0.0.0:8080->80/tcp");
    }
}
