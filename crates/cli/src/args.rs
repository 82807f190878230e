//! Argument handling shared by all commands: docker's global options, clap
//! parsing with docker's error messages and exit codes, and the
//! "stop at the first operand" rule of `run`, `create` and `exec`
//! (pflag's `SetInterspersed(false)`).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;

use crate::error::{CliError, Result};

/// The program name used in messages.
pub const PROG: &str = "tether";

/// Options that come before the command (`tether -H unix:///x.sock ps`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Globals {
    /// `-H` / `--host`.
    pub host: Option<String>,
    /// `-D` / `--debug`.
    pub debug: bool,
    /// `-l` / `--log-level`.
    pub log_level: Option<String>,
}

/// What the global options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run a command: the globals and the remaining arguments (command first).
    Command(Globals, Vec<String>),
    /// `--version` / `-v`.
    Version,
    /// `--help`, `-h` or no command.
    Help,
}

/// Parses docker's global options up to the command name.
pub fn parse_globals(args: &[String]) -> Result<Invocation> {
    let mut g = Globals::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let value_of = |i: &mut usize, name: &str| -> Result<String> {
            *i += 1;
            args.get(*i).cloned().ok_or_else(|| {
                CliError::status(
                    125,
                    format!("flag needs an argument: {name}\nSee '{PROG} --help'."),
                )
            })
        };
        match a {
            "--" => {
                i += 1;
                break;
            }
            "-v" | "--version" => return Ok(Invocation::Version),
            "-h" | "--help" => return Ok(Invocation::Help),
            "-D" | "--debug" => g.debug = true,
            "-H" | "--host" => g.host = Some(value_of(&mut i, a)?),
            "-l" | "--log-level" => g.log_level = Some(value_of(&mut i, a)?),
            "-c" | "--context" | "--config" | "--tlscacert" | "--tlscert" | "--tlskey" => {
                value_of(&mut i, a)?;
            }
            "--tls" | "--tlsverify" => {}
            _ if a.starts_with("--host=") => g.host = Some(a["--host=".len()..].to_string()),
            _ if a.starts_with("-H") && a.len() > 2 => {
                g.host = Some(a[2..].trim_start_matches('=').to_string())
            }
            _ if a.starts_with("--log-level=") => {
                g.log_level = Some(a["--log-level=".len()..].to_string())
            }
            _ if a.starts_with("--") && a.contains('=') => {}
            _ if a.starts_with('-') && a.len() > 1 => {
                let msg = if a.starts_with("--") {
                    format!("unknown flag: {a}")
                } else {
                    let c = a.chars().nth(1).unwrap_or('-');
                    format!("unknown shorthand flag: '{c}' in {a}")
                };
                return Err(CliError::status(
                    125,
                    format!("{msg}\nSee '{PROG} --help'."),
                ));
            }
            _ => break,
        }
        i += 1;
    }
    if i >= args.len() {
        return Ok(Invocation::Help);
    }
    Ok(Invocation::Command(g, args[i..].to_vec()))
}

/// How a flag of a clap command consumes arguments.
fn flag_takes_value(cmd: &clap::Command, long: Option<&str>, short: Option<char>) -> Option<bool> {
    for a in cmd.get_arguments() {
        if a.is_positional() {
            continue;
        }
        let hit = match (long, short) {
            (Some(l), _) => {
                a.get_long_and_visible_aliases()
                    .is_some_and(|v| v.contains(&l))
                    || a.get_all_aliases().is_some_and(|v| v.contains(&l))
            }
            (_, Some(s)) => {
                a.get_short_and_visible_aliases()
                    .is_some_and(|v| v.contains(&s))
                    || a.get_all_short_aliases().is_some_and(|v| v.contains(&s))
            }
            _ => false,
        };
        if hit {
            // `--flag=value`-only flags (optional values) never eat the next argument.
            return Some(a.get_action().takes_values() && !a.is_require_equals_set());
        }
    }
    if long == Some("help") || short == Some('h') {
        return Some(false);
    }
    None
}

/// Whether `--long` is a plain switch (takes no value at all; not an optional-value flag
/// such as `--ipv4[=BOOL]`, which keeps its `=false`).
fn is_switch(cmd: &clap::Command, long: &str) -> bool {
    cmd.get_arguments().any(|a| {
        !a.is_positional()
            && !a.get_action().takes_values()
            && a.get_long_and_visible_aliases()
                .is_some_and(|v| v.contains(&long))
    })
}

/// Rewrites `--bool-flag=true` to `--bool-flag` and drops `--bool-flag=false`,
/// which pflag accepts and clap does not.
pub fn normalize_bools(cmd: &clap::Command, args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut after_dd = false;
    for a in args {
        if !after_dd {
            if a == "--" {
                after_dd = true;
            } else if let Some(body) = a.strip_prefix("--") {
                if let Some((name, val)) = body.split_once('=') {
                    if is_switch(cmd, name) {
                        match val {
                            "true" | "1" | "t" | "T" | "TRUE" | "True" => {
                                out.push(format!("--{name}"));
                                continue;
                            }
                            "false" | "0" | "f" | "F" | "FALSE" | "False" => continue,
                            _ => {}
                        }
                    }
                }
            }
        }
        out.push(a.clone());
    }
    out
}

/// Finds where the operands start, honoring flags that take a value, and
/// splits the arguments after the `n`-th operand: `(flags and first n operands, rest)`.
/// A `--` ends flag parsing. Unknown flags are left for clap to report.
pub fn split_after_operands(
    cmd: &clap::Command,
    args: &[String],
    n: usize,
) -> (Vec<String>, Vec<String>) {
    let mut head = Vec::new();
    let mut seen = 0;
    let mut i = 0;
    let mut flags_done = false;
    while i < args.len() {
        if seen == n {
            break;
        }
        let a = &args[i];
        if flags_done || a == "-" || !a.starts_with('-') {
            head.push(a.clone());
            seen += 1;
            i += 1;
            continue;
        }
        if a == "--" {
            flags_done = true;
            head.push(a.clone());
            i += 1;
            continue;
        }
        head.push(a.clone());
        if let Some(body) = a.strip_prefix("--") {
            if !body.contains('=') && flag_takes_value(cmd, Some(body), None) == Some(true) {
                if let Some(v) = args.get(i + 1) {
                    head.push(v.clone());
                    i += 1;
                }
            }
        } else {
            // A cluster of short flags: the first one taking a value eats the rest
            // of the cluster, or the next argument.
            let chars: Vec<char> = a[1..].chars().collect();
            for (k, c) in chars.iter().enumerate() {
                match flag_takes_value(cmd, None, Some(*c)) {
                    Some(true) => {
                        if k + 1 == chars.len() {
                            if let Some(v) = args.get(i + 1) {
                                head.push(v.clone());
                                i += 1;
                            }
                        }
                        break;
                    }
                    Some(false) => {}
                    None => break,
                }
            }
        }
        i += 1;
    }
    (head, args[i..].to_vec())
}

fn usage_of(cmd: &mut clap::Command) -> String {
    let u = cmd.render_usage().to_string();
    u.trim_start_matches("Usage:").trim().to_string()
}

/// Parses a command's arguments with clap, mapping errors to docker's
/// messages: unknown flags and bad values exit 125, help prints to stdout.
pub fn parse<T: clap::Parser>(path: &str, args: &[String]) -> Result<T> {
    let mut cmd = T::command()
        .name(path.to_string())
        .bin_name(path.to_string())
        .help_template("\nUsage:  {usage}\n\n{about}\n\nOptions:\n{options}\n")
        // pflag takes a flag given again (`ps -all` is `-a -l -l`): the last one wins
        .args_override_self(true);
    let args = normalize_bools(&cmd, args);
    let argv = std::iter::once(path.to_string()).chain(args.iter().cloned());
    let matches = cmd
        .try_get_matches_from_mut(argv)
        .map_err(|e| clap_error(path, &mut cmd, e))?;
    T::from_arg_matches(&matches).map_err(|e| clap_error(path, &mut cmd, e))
}

fn clap_error(path: &str, cmd: &mut clap::Command, e: clap::Error) -> CliError {
    let see = format!("See '{path} --help'.");
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            crate::out!("{}", cmd.render_help());
            CliError::exit(0)
        }
        ErrorKind::UnknownArgument => {
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            let msg = if arg.starts_with("--") || !arg.starts_with('-') {
                format!("unknown flag: {}", arg.split('=').next().unwrap_or(&arg))
            } else {
                let c = arg.chars().nth(1).unwrap_or('-');
                format!("unknown shorthand flag: '{c}' in {arg}")
            };
            CliError::status(125, format!("{msg}\n{see}"))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::NoEquals => {
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(v) => flag_display(cmd, &v.to_string()),
                None => String::new(),
            };
            let val = match e.get(ContextKind::InvalidValue) {
                Some(v) => v.to_string(),
                None => String::new(),
            };
            if val.is_empty() {
                let long = arg.rsplit(", ").next().unwrap_or(&arg);
                return CliError::status(125, format!("flag needs an argument: {long}\n{see}"));
            }
            let why = e
                .source()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "invalid value".into());
            CliError::status(
                125,
                format!("invalid argument \"{val}\" for \"{arg}\" flag: {why}\n{see}"),
            )
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            CliError::status(125, format!("{first}\n{see}"))
        }
    }
}

use std::error::Error as _;

/// "--time <TIME>" → "-t, --time" as pflag names flags in messages.
fn flag_display(cmd: &clap::Command, raw: &str) -> String {
    let name = raw.split([' ', '=']).next().unwrap_or(raw);
    if let Some(long) = name.strip_prefix("--") {
        if let Some(a) = cmd.get_arguments().find(|a| a.get_long() == Some(long)) {
            if let Some(s) = a.get_short() {
                return format!("-{s}, --{long}");
            }
        }
    }
    name.to_string()
}

/// The "requires at least N arguments" family of errors (exit 1).
fn arity_error<T: CommandFactory>(path: &str, what: &str) -> CliError {
    let mut cmd = T::command();
    let usage = usage_of(&mut cmd);
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    CliError::msg(format!(
        "\"{path}\" {what}.\nSee '{path} --help'.\n\nUsage:  {usage}\n\n{about}"
    ))
}

/// Checks a minimum number of operands.
pub fn min_args<T: CommandFactory>(path: &str, got: usize, min: usize) -> Result<()> {
    if got < min {
        let plural = if min == 1 { "argument" } else { "arguments" };
        return Err(arity_error::<T>(
            path,
            &format!("requires at least {min} {plural}"),
        ));
    }
    Ok(())
}

/// Checks an exact number of operands.
pub fn exact_args<T: CommandFactory>(path: &str, got: usize, n: usize) -> Result<()> {
    if got != n {
        let plural = if n == 1 { "argument" } else { "arguments" };
        return Err(arity_error::<T>(
            path,
            &format!("requires exactly {n} {plural}"),
        ));
    }
    Ok(())
}

/// Checks a range of operands.
pub fn range_args<T: CommandFactory>(path: &str, got: usize, min: usize, max: usize) -> Result<()> {
    if got < min || got > max {
        return Err(arity_error::<T>(
            path,
            &format!("requires at least {min} and at most {max} arguments"),
        ));
    }
    Ok(())
}

/// Checks that no operands were given.
pub fn no_args<T: CommandFactory>(path: &str, got: usize) -> Result<()> {
    if got != 0 {
        return Err(arity_error::<T>(path, "accepts no arguments"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{ArgAction, Parser};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[derive(Parser, Debug)]
    #[command(
        disable_help_flag = true,
        override_usage = "tether t [OPTIONS] IMAGE [COMMAND] [ARG...]",
        about = "Test"
    )]
    struct T {
        #[arg(short = 'd', long)]
        detach: bool,
        #[arg(short = 'i', long)]
        interactive: bool,
        #[arg(short = 't', long)]
        tty: bool,
        #[arg(short = 'e', long = "env", action = ArgAction::Append)]
        env: Vec<String>,
        #[arg(long = "network", alias = "net", action = ArgAction::Append)]
        network: Vec<String>,
        #[arg(long)]
        rm: bool,
        #[arg(long = "help", action = ArgAction::Help)]
        help: Option<bool>,
        operands: Vec<String>,
    }

    #[test]
    fn globals() {
        assert_eq!(
            parse_globals(&s(&["-H", "unix:///x.sock", "ps", "-a"])).unwrap(),
            Invocation::Command(
                Globals {
                    host: Some("unix:///x.sock".into()),
                    ..Default::default()
                },
                s(&["ps", "-a"])
            )
        );
        assert_eq!(
            parse_globals(&s(&["--host=unix:///y", "version"])).unwrap(),
            Invocation::Command(
                Globals {
                    host: Some("unix:///y".into()),
                    ..Default::default()
                },
                s(&["version"])
            )
        );
        assert_eq!(
            parse_globals(&s(&["--version"])).unwrap(),
            Invocation::Version
        );
        assert_eq!(parse_globals(&s(&["-v"])).unwrap(), Invocation::Version);
        assert_eq!(parse_globals(&s(&[])).unwrap(), Invocation::Help);
        assert!(parse_globals(&s(&["--bogus", "ps"])).is_err());
    }

    #[test]
    fn split_stops_at_image() {
        let cmd = T::command();
        let (head, rest) = split_after_operands(
            &cmd,
            &s(&[
                "-dit",
                "-e",
                "A=1",
                "--net=x",
                "--network",
                "y",
                "img",
                "sh",
                "-c",
                "echo -d",
            ]),
            1,
        );
        assert_eq!(
            head,
            s(&["-dit", "-e", "A=1", "--net=x", "--network", "y", "img"])
        );
        assert_eq!(rest, s(&["sh", "-c", "echo -d"]));
        // Flags after the image belong to the command.
        let (head, rest) = split_after_operands(&cmd, &s(&["img", "-d", "--rm"]), 1);
        assert_eq!(head, s(&["img"]));
        assert_eq!(rest, s(&["-d", "--rm"]));
        // -eA=1 bundles the value.
        let (head, rest) = split_after_operands(&cmd, &s(&["-eA=1", "img", "x"]), 1);
        assert_eq!(head, s(&["-eA=1", "img"]));
        assert_eq!(rest, s(&["x"]));
        let (head, rest) = split_after_operands(&cmd, &s(&["--", "img", "x"]), 1);
        assert_eq!(head, s(&["--", "img"]));
        assert_eq!(rest, s(&["x"]));
    }

    #[test]
    fn parses_docker_spellings() {
        let t: T = parse(
            "tether t",
            &s(&[
                "-dit",
                "-e",
                "A=1",
                "-eB=2",
                "--env=C=3",
                "--net=x",
                "--network",
                "y",
                "img",
            ]),
        )
        .unwrap();
        assert!(t.detach && t.interactive && t.tty);
        assert_eq!(t.env, s(&["A=1", "B=2", "C=3"]));
        assert_eq!(t.network, s(&["x", "y"]));
        assert_eq!(t.operands, s(&["img"]));
        let t: T = parse("tether t", &s(&["--rm=true", "--detach=false", "img"])).unwrap();
        assert!(t.rm && !t.detach);
        // a switch given twice, as pflag allows (`ps -all` = `-a -l -l`)
        let t: T = parse("tether t", &s(&["-itt", "-d", "--rm", "--rm", "img"])).unwrap();
        assert!(t.tty && t.interactive && t.detach && t.rm);
    }

    #[test]
    fn clap_errors_map_to_docker() {
        let e = parse::<T>("tether t", &s(&["--bogus", "img"])).unwrap_err();
        assert_eq!(e.exit_code(), 125);
        assert_eq!(
            e.to_string(),
            "unknown flag: --bogus\nSee 'tether t --help'."
        );
        let e = parse::<T>("tether t", &s(&["-x", "img"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown shorthand flag: 'x' in -x\nSee 'tether t --help'."
        );
        let e = min_args::<T>("tether t", 0, 1).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e
            .to_string()
            .starts_with("\"tether t\" requires at least 1 argument.\nSee 'tether t --help'.\n\nUsage:  tether t [OPTIONS] IMAGE"));
    }
}
