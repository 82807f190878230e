//! The command tree: docker's top-level commands and management groups as clap subcommand
//! enums (the layout of docker/cli's `cli/command/commands`), and the dispatcher that runs
//! one parsed [`Cmd`].
//!
//! The tree only routes. Each leaf takes its arguments whole ([`Raw`]) and hands them to the
//! command's own clap parser, which owns its flags, its `--help` and its usage errors
//! (exit 125). The top-level help and each group's usage are rendered from these enums'
//! doc comments, so a command added here is listed without a second edit.

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::{
    build, compose, container, cp, exec, explain, image, image_ops, inspect, lifecycle, logs,
    manage, network, node, ps, registry, system, volume,
};
use crate::args::PROG;
use crate::client::Client;
use crate::error::{CliError, Result};
use crate::outln;

/// A leaf's arguments, not parsed here: the command's own parser reads them (flags,
/// operands and `--help` alike).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Raw {
    /// Everything after the command's name.
    pub args: Vec<String>,
}

/// A management group's arguments: one of its subcommands `T`, or nothing (or `--help`)
/// for the group's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<T: Subcommand> {
    /// The group's command.
    pub cmd: Option<T>,
    /// Print the group's usage.
    pub help: bool,
}

// clap's view of `Raw` and `Group`, without a doc comment: the enums below defer each
// branch (`Command::defer`), and a documented `Args` would set its own text as the
// command's `about` when the branch is built, over the command's.
#[derive(Args)]
#[command(disable_help_flag = true)]
struct RawArgs {
    #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
    args: Vec<String>,
}

#[derive(Args)]
#[command(disable_help_flag = true, disable_help_subcommand = true)]
struct GroupArgs<T: Subcommand> {
    #[command(subcommand)]
    cmd: Option<T>,
    #[arg(short = 'h', long = "help")]
    help: bool,
}

impl FromArgMatches for Raw {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        RawArgs::from_arg_matches(m).map(|r| Raw { args: r.args })
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for Raw {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        RawArgs::augment_args(cmd)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        RawArgs::augment_args_for_update(cmd)
    }
}

impl<T: Subcommand> FromArgMatches for Group<T> {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        GroupArgs::<T>::from_arg_matches(m).map(|g| Group {
            cmd: g.cmd,
            help: g.help,
        })
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// Runs `augment` on `cmd` and gives the result `cmd`'s own `about` back: the group's
/// enum sets its doc comment as the `about` of the command it fills, which in a deferred
/// branch comes after the command's.
fn keeping_about(
    cmd: clap::Command,
    augment: impl FnOnce(clap::Command) -> clap::Command,
) -> clap::Command {
    let about = cmd.get_about().cloned();
    let c = augment(cmd);
    match about {
        Some(a) => c.about(a),
        None => c,
    }
}

impl<T: Subcommand> Args for Group<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        keeping_about(cmd, GroupArgs::<T>::augment_args)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        keeping_about(cmd, GroupArgs::<T>::augment_args_for_update)
    }
}

/// The whole command line after the global options (`-H`, `-D`, ...).
#[derive(Parser, Debug)]
#[command(
    name = "tether",
    disable_help_flag = true,
    disable_help_subcommand = true,
    disable_version_flag = true
)]
pub struct Tree {
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// tether's commands; management groups carry a subcommand enum of their own.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
#[command(defer = true)]
pub enum Cmd {
    /// Create and run a new container from an image
    Run(Raw),
    /// Execute a command in a running container
    Exec(Raw),
    /// List containers
    Ps(Raw),
    /// Build an image from a Dockerfile
    Build(Raw),
    /// List images
    Images(Raw),
    /// Import the contents from a tarball to create a filesystem image
    Import(Raw),
    /// Load an image from a tar archive or STDIN
    Load(Raw),
    /// Download an image from a registry
    Pull(Raw),
    /// Upload an image to a registry
    Push(Raw),
    /// Authenticate to a registry
    Login(Raw),
    /// Log out from a registry
    Logout(Raw),
    /// Search a registry for images
    Search(Raw),
    /// Show the tether version information
    Version(Raw),
    /// Display system-wide information
    Info(Raw),
    /// Manage builds (prune the build cache)
    Builder(Group<BuilderCmd>),
    /// Define and run multi-container applications
    Compose(Raw),
    /// Manage containers
    Container(Group<ContainerCmd>),
    /// Manage images
    Image(Group<ImageCmd>),
    /// Manage networks
    Network(Group<NetworkCmd>),
    /// List the hosts of the cluster (--cluster-store)
    Node(Group<NodeCmd>),
    /// Manage tether (info, df)
    System(Group<SystemCmd>),
    /// Manage volumes
    Volume(Group<VolumeCmd>),
    /// Create a new image from a container's changes
    Commit(Raw),
    /// Copy files/folders between a container and the local filesystem
    Cp(Raw),
    /// Create a new container
    Create(Raw),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(Raw),
    /// Export a container's filesystem as a tar archive
    Export(Raw),
    /// Show the history of an image
    History(Raw),
    /// Return low-level information on objects
    Inspect(Raw),
    /// Kill one or more running containers
    Kill(Raw),
    /// Fetch the logs of a container
    Logs(Raw),
    /// Pause all processes within one or more containers
    Pause(Raw),
    /// List port mappings or a specific mapping for the container
    Port(Raw),
    /// Rename a container
    Rename(Raw),
    /// Restart one or more containers
    Restart(Raw),
    /// Remove one or more containers
    Rm(Raw),
    /// Remove one or more images
    Rmi(Raw),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(Raw),
    /// Start one or more stopped containers
    Start(Raw),
    /// Display a live stream of container(s) resource usage statistics
    Stats(Raw),
    /// Stop one or more running containers
    Stop(Raw),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(Raw),
    /// Display the running processes of a container
    Top(Raw),
    /// Unpause all processes within one or more containers
    Unpause(Raw),
    /// Update configuration of one or more containers
    Update(Raw),
    /// Block until one or more containers stop, then print their exit codes
    Wait(Raw),
    /// Help about a command
    #[command(hide = true)]
    Help(Raw),
}

/// `tether container COMMAND`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
#[command(defer = true)]
pub enum ContainerCmd {
    /// Create a new image from a container's changes
    Commit(Raw),
    /// Copy files/folders between a container and the local filesystem
    Cp(Raw),
    /// Create a new container
    Create(Raw),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(Raw),
    /// Execute a command in a running container
    Exec(Raw),
    /// Export a container's filesystem as a tar archive
    Export(Raw),
    /// Display detailed information on one or more containers
    Inspect(Raw),
    /// Kill one or more running containers
    Kill(Raw),
    /// Fetch the logs of a container
    Logs(Raw),
    /// List containers
    #[command(visible_alias = "ps", alias = "list")]
    Ls(Raw),
    /// Pause all processes within one or more containers
    Pause(Raw),
    /// List port mappings or a specific mapping for the container
    Port(Raw),
    /// Remove all stopped containers
    Prune(Raw),
    /// Rename a container
    Rename(Raw),
    /// Restart one or more containers
    Restart(Raw),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(Raw),
    /// Create and run a new container from an image
    Run(Raw),
    /// Start one or more stopped containers
    Start(Raw),
    /// Display a live stream of container(s) resource usage statistics
    Stats(Raw),
    /// Stop one or more running containers
    Stop(Raw),
    /// Display the running processes of a container
    Top(Raw),
    /// Unpause all processes within one or more containers
    Unpause(Raw),
    /// Update configuration of one or more containers
    Update(Raw),
    /// Block until one or more containers stop, then print their exit codes
    Wait(Raw),
    /// The group's usage
    #[command(hide = true)]
    Help(Raw),
}

/// `tether image COMMAND`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
#[command(defer = true)]
pub enum ImageCmd {
    /// Build an image from a Dockerfile
    Build(Raw),
    /// Show the history of an image
    History(Raw),
    /// Import the contents from a tarball to create a filesystem image
    Import(Raw),
    /// Display detailed information on one or more images
    Inspect(Raw),
    /// Load an image from a tar archive or STDIN
    Load(Raw),
    /// List images
    #[command(alias = "list")]
    Ls(Raw),
    /// Remove unused images
    Prune(Raw),
    /// Download an image from a registry
    Pull(Raw),
    /// Upload an image to a registry
    Push(Raw),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(Raw),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(Raw),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(Raw),
    /// The group's usage
    #[command(hide = true)]
    Help(Raw),
}

/// `tether network COMMAND`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Connect a container to a network
    Connect(Raw),
    /// Create a network
    Create(Raw),
    /// Disconnect a container from a network
    Disconnect(Raw),
    /// Print (or --apply) the host resolver settings for NAME.NETWORK names
    DnsSetup(Raw),
    /// Explain whether and why one container reaches another (or the host, or an address)
    Explain(Raw),
    /// Draw the networks, their containers, published ports and links (svg, dot, json)
    Graph(Raw),
    /// Display detailed information on one or more networks
    Inspect(Raw),
    /// List networks
    #[command(alias = "list")]
    Ls(Raw),
    /// Remove all unused networks
    Prune(Raw),
    /// Rebuild tether's nftables tables from its networks and containers
    ReloadFirewall(Raw),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(Raw),
    /// The group's usage
    #[command(hide = true)]
    Help(Raw),
}

/// `tether volume COMMAND`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
#[command(defer = true)]
pub enum VolumeCmd {
    /// Create a volume
    Create(Raw),
    /// Display detailed information on one or more volumes
    Inspect(Raw),
    /// List volumes
    #[command(alias = "list")]
    Ls(Raw),
    /// Remove unused local volumes
    Prune(Raw),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(Raw),
    /// The group's usage
    #[command(hide = true)]
    Help(Raw),
}

/// `tether node COMMAND` (the hosts of the cluster store).
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
#[command(defer = true)]
pub enum NodeCmd {
    /// List the hosts of the cluster
    #[command(alias = "list")]
    Ls(Raw),
    /// The group's usage
    #[command(hide = true)]
    Help(Raw),
}

/// `tether builder COMMAND`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
#[command(defer = true)]
pub enum BuilderCmd {
    /// Remove build cache
    Prune(Raw),
    /// The group's usage
    #[command(hide = true)]
    Help(Raw),
}

/// `tether system COMMAND`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
#[command(defer = true)]
pub enum SystemCmd {
    /// Show tether disk usage
    Df(Raw),
    /// Display system-wide information
    Info(Raw),
    /// The group's usage
    #[command(hide = true)]
    Help(Raw),
}

/// Parses `args` (command name first) into the tree. Errors as docker words them: an
/// unknown command, or an unknown command of a group.
pub fn parse(args: &[String]) -> Result<Cmd> {
    let argv = std::iter::once(PROG.to_string()).chain(args.iter().cloned());
    match Tree::try_parse_from(argv) {
        Ok(t) => Ok(t.cmd),
        Err(_) => {
            let first = args.first().map(String::as_str).unwrap_or_default();
            let tree = built_tree();
            match tree.find_subcommand(first) {
                Some(g) if g.has_subcommands() => {
                    let sub = args.get(1).map(String::as_str).unwrap_or_default();
                    Err(CliError::msg(format!(
                        "{PROG} {first}: '{sub}' is not a {PROG} {first} command.\nSee '{PROG} {first} --help'"
                    )))
                }
                _ => Err(CliError::msg(format!(
                    "{PROG}: '{first}' is not a {PROG} command.\nSee '{PROG} --help'"
                ))),
            }
        }
    }
}

/// The whole tree with every branch built. The enums defer their branches (clap's
/// `Command::defer`): a call builds only the command it runs, not the ~150 commands and
/// their arguments of the whole tree; listings build it all.
fn built_tree() -> clap::Command {
    let mut tree = Tree::command();
    tree.build();
    tree
}

/// The `(name, about)` of each visible subcommand of `cmd`, in declaration order.
fn listed(cmd: &clap::Command) -> Vec<(String, String)> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| {
            (
                c.get_name().to_string(),
                c.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

/// One line of a command listing, padded as docker's help template does.
fn row(name: &str, about: &str) -> String {
    let pad = if name.len() < 12 { 12 - name.len() } else { 2 };
    format!("  {name}{}{about}", " ".repeat(pad))
}

/// The usage of management group `group` (`tether network` alone, or with `--help`),
/// listing its commands from the enum.
pub fn group_usage(group: &str) -> String {
    let tree = built_tree();
    let Some(g) = tree.find_subcommand(group) else {
        return String::new();
    };
    let mut subs = listed(g);
    subs.sort();
    let about = g.get_about().map(|a| a.to_string()).unwrap_or_default();
    let lines: Vec<String> = subs.iter().map(|(n, a)| row(n, a)).collect();
    format!(
        "\nUsage:  {PROG} {group} COMMAND\n\n{about}\n\nCommands:\n{}\n\nRun '{PROG} {group} COMMAND --help' for more information on a command.",
        lines.join("\n")
    )
}

/// Docker's "Common Commands", in its order.
const COMMON: &[&str] = &[
    "run", "exec", "ps", "build", "images", "import", "load", "pull", "push", "login", "logout",
    "search", "version", "info",
];

/// The top-level help: common commands, management groups and the other commands, each
/// section from the enum, then the global options.
pub fn help() -> String {
    let tree = built_tree();
    let all = listed(&tree);
    let is_group = |n: &str| {
        tree.find_subcommand(n)
            .map(|c| c.has_subcommands())
            .unwrap_or(false)
    };
    let mut common = Vec::new();
    for c in COMMON {
        if let Some((n, a)) = all.iter().find(|(n, _)| n == c) {
            common.push(row(n, a));
        }
    }
    let mut groups: Vec<&(String, String)> = all.iter().filter(|(n, _)| is_group(n)).collect();
    groups.sort();
    let mut others: Vec<&(String, String)> = all
        .iter()
        .filter(|(n, _)| !is_group(n) && !COMMON.contains(&n.as_str()))
        .collect();
    others.sort();
    let groups: Vec<String> = groups.iter().map(|(n, a)| row(n, a)).collect();
    let others: Vec<String> = others.iter().map(|(n, a)| row(n, a)).collect();
    format!(
        "
Usage:  {PROG} [OPTIONS] COMMAND

A docker-compatible container engine

Common Commands:
{}

Management Commands:
{}

Commands:
{}

Global Options:
  -D, --debug              Enable debug mode
  -H, --host string        Daemon socket to connect to (default {})
  -l, --log-level string   Set the logging level (\"debug\", \"info\", \"warn\", \"error\", \"fatal\")
  -v, --version            Print version information and quit

Run '{PROG} COMMAND --help' for more information on a command.",
        common.join("\n"),
        groups.join("\n"),
        others.join("\n"),
        crate::client::DEFAULT_HOST
    )
}

/// Prints a group's usage (no command, `--help`, or `help`).
fn usage(group: &str) -> Result<()> {
    outln!("{}", group_usage(group));
    Ok(())
}

/// Runs `g`'s command with `f`, or prints `name`'s usage when there is none.
async fn in_group<T: Subcommand>(
    name: &str,
    g: Group<T>,
    f: impl AsyncFnOnce(T) -> Result<()>,
) -> Result<()> {
    match g.cmd {
        Some(c) if !g.help => f(c).await,
        _ => usage(name),
    }
}

/// Runs one parsed command against `client`.
pub async fn run(client: &Client, cmd: Cmd) -> Result<()> {
    let p = |name: &str| format!("{PROG} {name}");
    // docker's top-level shorthands for container and image commands (`run`,
    // `images`, ...) run the group's command under the short name
    match cmd {
        Cmd::Run(r) => container_cmd(client, true, ContainerCmd::Run(r)).await,
        Cmd::Create(r) => container_cmd(client, true, ContainerCmd::Create(r)).await,
        Cmd::Start(r) => container_cmd(client, true, ContainerCmd::Start(r)).await,
        Cmd::Stop(r) => container_cmd(client, true, ContainerCmd::Stop(r)).await,
        Cmd::Restart(r) => container_cmd(client, true, ContainerCmd::Restart(r)).await,
        Cmd::Kill(r) => container_cmd(client, true, ContainerCmd::Kill(r)).await,
        Cmd::Rm(r) => container_cmd(client, true, ContainerCmd::Rm(r)).await,
        Cmd::Wait(r) => container_cmd(client, true, ContainerCmd::Wait(r)).await,
        Cmd::Port(r) => container_cmd(client, true, ContainerCmd::Port(r)).await,
        Cmd::Logs(r) => container_cmd(client, true, ContainerCmd::Logs(r)).await,
        Cmd::Rename(r) => container_cmd(client, true, ContainerCmd::Rename(r)).await,
        Cmd::Pause(r) => container_cmd(client, true, ContainerCmd::Pause(r)).await,
        Cmd::Unpause(r) => container_cmd(client, true, ContainerCmd::Unpause(r)).await,
        Cmd::Top(r) => container_cmd(client, true, ContainerCmd::Top(r)).await,
        Cmd::Update(r) => container_cmd(client, true, ContainerCmd::Update(r)).await,
        Cmd::Stats(r) => container_cmd(client, true, ContainerCmd::Stats(r)).await,
        Cmd::Exec(r) => container_cmd(client, true, ContainerCmd::Exec(r)).await,
        Cmd::Cp(r) => container_cmd(client, true, ContainerCmd::Cp(r)).await,
        Cmd::Export(r) => container_cmd(client, true, ContainerCmd::Export(r)).await,
        Cmd::Diff(r) => container_cmd(client, true, ContainerCmd::Diff(r)).await,
        Cmd::Ps(r) => container_cmd(client, true, ContainerCmd::Ls(r)).await,
        Cmd::Commit(r) => container_cmd(client, true, ContainerCmd::Commit(r)).await,
        Cmd::Inspect(r) => inspect::inspect(client, &p("inspect"), &r.args).await,
        Cmd::Images(r) => image_cmd(client, true, ImageCmd::Ls(r)).await,
        Cmd::Rmi(r) => image_cmd(client, true, ImageCmd::Rm(r)).await,
        Cmd::Tag(r) => image_cmd(client, true, ImageCmd::Tag(r)).await,
        Cmd::Import(r) => image_cmd(client, true, ImageCmd::Import(r)).await,
        Cmd::Load(r) => image_cmd(client, true, ImageCmd::Load(r)).await,
        Cmd::Build(r) => image_cmd(client, true, ImageCmd::Build(r)).await,
        Cmd::Pull(r) => image_cmd(client, true, ImageCmd::Pull(r)).await,
        Cmd::Push(r) => image_cmd(client, true, ImageCmd::Push(r)).await,
        Cmd::History(r) => image_cmd(client, true, ImageCmd::History(r)).await,
        Cmd::Save(r) => image_cmd(client, true, ImageCmd::Save(r)).await,
        Cmd::Login(r) => registry::login(client, &p("login"), &r.args).await,
        Cmd::Logout(r) => registry::logout(client, &p("logout"), &r.args).await,
        Cmd::Search(r) => registry::search(client, &p("search"), &r.args).await,
        Cmd::Version(r) => system::version(client, &p("version"), &r.args).await,
        Cmd::Info(r) => system::info(client, &p("info"), &r.args).await,
        Cmd::Compose(r) => compose::compose(client, &r.args).await,
        Cmd::Container(g) => {
            in_group("container", g, async |c| {
                container_cmd(client, false, c).await
            })
            .await
        }
        Cmd::Image(g) => in_group("image", g, async |c| image_cmd(client, false, c).await).await,
        Cmd::Network(g) => in_group("network", g, async |c| network_cmd(client, c).await).await,
        Cmd::Volume(g) => in_group("volume", g, async |c| volume_cmd(client, c).await).await,
        Cmd::Node(g) => {
            in_group("node", g, async |c| match c {
                NodeCmd::Ls(r) => node::ls(client, &p("node ls"), &r.args).await,
                NodeCmd::Help(_) => usage("node"),
            })
            .await
        }
        Cmd::Builder(g) => {
            in_group("builder", g, async |c| match c {
                BuilderCmd::Prune(r) => {
                    image_ops::builder_prune(client, &p("builder prune"), &r.args).await
                }
                BuilderCmd::Help(_) => usage("builder"),
            })
            .await
        }
        Cmd::System(g) => {
            in_group("system", g, async |c| match c {
                SystemCmd::Info(r) => system::info(client, &p("system info"), &r.args).await,
                SystemCmd::Df(r) => image_ops::df(client, &p("system df"), &r.args).await,
                SystemCmd::Help(_) => usage("system"),
            })
            .await
        }
        Cmd::Help(r) => {
            if r.args.is_empty() {
                outln!("{}", help());
                Ok(())
            } else {
                let mut v = r.args;
                v.push("--help".into());
                Box::pin(run(client, parse(&v)?)).await
            }
        }
    }
}

/// Runs a container command; `top` when it came as docker's top-level shorthand (its
/// usage then says `tether NAME`, and `container ls` is `tether ps`).
async fn container_cmd(client: &Client, top: bool, c: ContainerCmd) -> Result<()> {
    let p = |name: &str| match (top, name) {
        (true, "ls") => format!("{PROG} ps"),
        (true, _) => format!("{PROG} {name}"),
        (false, _) => format!("{PROG} container {name}"),
    };
    match c {
        ContainerCmd::Run(r) => container::run(client, &p("run"), &r.args).await,
        ContainerCmd::Create(r) => container::create(client, &p("create"), &r.args).await,
        ContainerCmd::Start(r) => container::start(client, &p("start"), &r.args).await,
        ContainerCmd::Stop(r) => lifecycle::stop(client, &p("stop"), &r.args).await,
        ContainerCmd::Restart(r) => lifecycle::restart(client, &p("restart"), &r.args).await,
        ContainerCmd::Kill(r) => lifecycle::kill(client, &p("kill"), &r.args).await,
        ContainerCmd::Rm(r) => lifecycle::rm(client, &p("rm"), &r.args).await,
        ContainerCmd::Wait(r) => lifecycle::wait(client, &p("wait"), &r.args).await,
        ContainerCmd::Port(r) => lifecycle::port(client, &p("port"), &r.args).await,
        ContainerCmd::Prune(r) => lifecycle::prune(client, &p("prune"), &r.args).await,
        ContainerCmd::Commit(r) => image_ops::commit(client, &p("commit"), &r.args).await,
        ContainerCmd::Logs(r) => logs::logs(client, &p("logs"), &r.args).await,
        ContainerCmd::Rename(r) => manage::rename(client, &p("rename"), &r.args).await,
        ContainerCmd::Pause(r) => manage::pause(client, &p("pause"), "pause", &r.args).await,
        ContainerCmd::Unpause(r) => manage::pause(client, &p("unpause"), "unpause", &r.args).await,
        ContainerCmd::Top(r) => manage::top(client, &p("top"), &r.args).await,
        ContainerCmd::Update(r) => manage::update(client, &p("update"), &r.args).await,
        ContainerCmd::Stats(r) => manage::stats(client, &p("stats"), &r.args).await,
        ContainerCmd::Exec(r) => exec::exec(client, &p("exec"), &r.args).await,
        ContainerCmd::Cp(r) => cp::cp(client, &p("cp"), &r.args).await,
        ContainerCmd::Export(r) => cp::export(client, &p("export"), &r.args).await,
        ContainerCmd::Diff(r) => cp::diff(client, &p("diff"), &r.args).await,
        ContainerCmd::Ls(r) => ps::ps(client, &p("ls"), &r.args).await,
        ContainerCmd::Inspect(r) => {
            inspect::container_inspect(client, &p("inspect"), &r.args).await
        }
        ContainerCmd::Help(_) => usage("container"),
    }
}

/// Runs an image command; `top` as for [`container_cmd`] (`image ls` is `tether images`,
/// `image rm` is `tether rmi`).
async fn image_cmd(client: &Client, top: bool, c: ImageCmd) -> Result<()> {
    let p = |name: &str| match (top, name) {
        (true, "ls") => format!("{PROG} images"),
        (true, "rm") => format!("{PROG} rmi"),
        (true, _) => format!("{PROG} {name}"),
        (false, _) => format!("{PROG} image {name}"),
    };
    match c {
        ImageCmd::Ls(r) => image::images(client, &p("ls"), &r.args).await,
        ImageCmd::Rm(r) => image::rmi(client, &p("rm"), &r.args).await,
        ImageCmd::Tag(r) => image::tag(client, &p("tag"), &r.args).await,
        ImageCmd::Import(r) => image::import(client, &p("import"), &r.args).await,
        ImageCmd::Load(r) => image::load(client, &p("load"), &r.args).await,
        ImageCmd::Build(r) => build::build(client, &p("build"), &r.args).await,
        ImageCmd::Pull(r) => image::pull(client, &p("pull"), &r.args).await,
        ImageCmd::Push(r) => registry::push(client, &p("push"), &r.args).await,
        ImageCmd::Inspect(r) => inspect::image_inspect(client, &p("inspect"), &r.args).await,
        ImageCmd::Prune(r) => image::prune(client, &p("prune"), &r.args).await,
        ImageCmd::History(r) => image_ops::history(client, &p("history"), &r.args).await,
        ImageCmd::Save(r) => image_ops::save(client, &p("save"), &r.args).await,
        ImageCmd::Help(_) => usage("image"),
    }
}

async fn network_cmd(client: &Client, c: NetworkCmd) -> Result<()> {
    let p = |name: &str| format!("{PROG} network {name}");
    match c {
        NetworkCmd::Create(r) => network::create(client, &p("create"), &r.args).await,
        NetworkCmd::Ls(r) => network::ls(client, &p("ls"), &r.args).await,
        NetworkCmd::Inspect(r) => network::inspect(client, &p("inspect"), &r.args).await,
        NetworkCmd::Rm(r) => network::rm(client, &p("rm"), &r.args).await,
        NetworkCmd::Prune(r) => network::prune(client, &p("prune"), &r.args).await,
        NetworkCmd::Connect(r) => network::connect(client, &p("connect"), &r.args).await,
        NetworkCmd::Disconnect(r) => network::disconnect(client, &p("disconnect"), &r.args).await,
        NetworkCmd::ReloadFirewall(r) => {
            network::reload_firewall(client, &p("reload-firewall"), &r.args).await
        }
        NetworkCmd::Explain(r) => explain::explain(client, &p("explain"), &r.args).await,
        NetworkCmd::Graph(r) => explain::graph(client, &p("graph"), &r.args).await,
        NetworkCmd::DnsSetup(r) => explain::dns_setup(client, &p("dns-setup"), &r.args).await,
        NetworkCmd::Help(_) => usage("network"),
    }
}

async fn volume_cmd(client: &Client, c: VolumeCmd) -> Result<()> {
    let p = |name: &str| format!("{PROG} volume {name}");
    match c {
        VolumeCmd::Create(r) => volume::create(client, &p("create"), &r.args).await,
        VolumeCmd::Ls(r) => volume::ls(client, &p("ls"), &r.args).await,
        VolumeCmd::Inspect(r) => volume::inspect(client, &p("inspect"), &r.args).await,
        VolumeCmd::Rm(r) => volume::rm(client, &p("rm"), &r.args).await,
        VolumeCmd::Prune(r) => volume::prune(client, &p("prune"), &r.args).await,
        VolumeCmd::Help(_) => usage("volume"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn leaves_take_their_arguments_whole() {
        assert_eq!(
            parse(&s(&[
                "run",
                "-d",
                "--name",
                "x",
                "tbox",
                "sh",
                "-c",
                "echo --help"
            ]))
            .ok(),
            Some(Cmd::Run(Raw {
                args: s(&["-d", "--name", "x", "tbox", "sh", "-c", "echo --help"])
            }))
        );
        assert_eq!(
            parse(&s(&["ps", "--help"])).ok(),
            Some(Cmd::Ps(Raw {
                args: s(&["--help"])
            }))
        );
        match parse(&s(&["container", "remove", "-f", "a"])) {
            Ok(Cmd::Container(Group {
                cmd: Some(ContainerCmd::Rm(r)),
                help: false,
            })) => assert_eq!(r.args, s(&["-f", "a"])),
            other => panic!("{other:?}"),
        }
        match parse(&s(&["network", "dns-setup", "--apply", "n"])) {
            Ok(Cmd::Network(Group {
                cmd: Some(NetworkCmd::DnsSetup(r)),
                ..
            })) => assert_eq!(r.args, s(&["--apply", "n"])),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&s(&["network"])),
            Ok(Cmd::Network(Group { cmd: None, .. }))
        ));
        assert!(matches!(
            parse(&s(&["volume", "--help"])),
            Ok(Cmd::Volume(Group { help: true, .. }))
        ));
    }

    #[test]
    fn unknown_commands_are_named_as_docker_does() {
        let e = parse(&s(&["nosuch", "x"])).unwrap_err().to_string();
        assert_eq!(
            e,
            "tether: 'nosuch' is not a tether command.\nSee 'tether --help'"
        );
        let e = parse(&s(&["network", "bogus"])).unwrap_err().to_string();
        assert_eq!(
            e,
            "tether network: 'bogus' is not a tether network command.\nSee 'tether network --help'"
        );
    }

    #[test]
    fn help_lists_every_command_from_the_tree() {
        let h = help();
        for c in Tree::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
        {
            assert!(
                h.contains(&format!("  {} ", c.get_name())),
                "{} missing from the help",
                c.get_name()
            );
        }
        assert!(h.contains("Management Commands:\n  builder     Manage builds"));
        let n = group_usage("network");
        assert!(
            n.contains("  reload-firewall  Rebuild tether's nftables tables"),
            "{n}"
        );
        assert!(
            n.contains("  connect     Connect a container to a network"),
            "{n}"
        );
        assert!(!n.contains("\n  help"), "{n}");
    }
}
