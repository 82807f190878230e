//! `exec` (docker/cli `container/exec.go`).

use std::io::IsTerminal;

use clap::{ArgAction, CommandFactory, Parser};
use serde_json::json;

use crate::args::{min_args, parse, split_after_operands};
use crate::client::{path_escape, Client};
use crate::error::{CliError, Result};
use crate::opts::{env_value, os_env, parse_env_file};
use crate::stream::{pump, stdin_channel, RawTerminal};

use super::container::spawn_resizer;

/// `tether exec`.
#[derive(Parser, Debug)]
#[command(
    name = "exec",
    override_usage = "tether exec [OPTIONS] CONTAINER COMMAND [ARG...]",
    about = "Execute a command in a running container"
)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", action = ArgAction::Append)]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", action = ArgAction::Append)]
    env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    operands: Vec<String>,
}

/// The `POST /containers/{id}/exec` body.
pub fn exec_body(a: &ExecArgs, cmd: &[String], env: Vec<String>) -> serde_json::Value {
    let mut b = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Detach": a.detach,
        "Env": env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": cmd,
    });
    if let Some(k) = &a.detach_keys {
        b["DetachKeys"] = json!(k);
    }
    if let Some((h, w)) = console_size(a) {
        b["ConsoleSize"] = json!([h, w]);
    }
    b
}

/// The terminal size an exec with `-t` starts at: the client's (docker sends it in
/// the create and start bodies' `ConsoleSize`, API 1.42+).
fn console_size(a: &ExecArgs) -> Option<(u16, u16)> {
    if a.tty && !a.detach {
        crate::stream::terminal_size()
    } else {
        None
    }
}

/// `tether exec [OPTIONS] CONTAINER COMMAND [ARG...]`: exits with the
/// command's exit code (from `GET /exec/{id}/json`).
pub async fn exec(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let (head, cmd) = split_after_operands(&ExecArgs::command(), args, 1);
    let a: ExecArgs = parse(path, &head)?;
    min_args::<ExecArgs>(path, a.operands.len() + cmd.len(), 2)?;
    let container = &a.operands[0];
    let mut env = Vec::new();
    for f in &a.env_file {
        let content = std::fs::read(f).map_err(|e| CliError::msg(format!("open {f}: {e}")))?;
        env.extend(parse_env_file(f, &content, &os_env).map_err(CliError::msg)?);
    }
    env.extend(a.env.iter().map(|e| env_value(e, &os_env)));
    if a.interactive && a.tty && !a.detach && !std::io::stdin().is_terminal() {
        return Err(CliError::msg("the input device is not a TTY"));
    }
    let body = exec_body(&a, &cmd, env);
    let created = client
        .post_json(
            &format!("/containers/{}/exec", path_escape(container)),
            Some(&body),
        )
        .await?;
    let id = created["Id"]
        .as_str()
        .ok_or_else(|| CliError::BadResponse("exec create response has no Id".into()))?
        .to_string();

    let mut start = json!({"Detach": a.detach, "Tty": a.tty});
    if let Some((h, w)) = console_size(&a) {
        start["ConsoleSize"] = json!([h, w]);
    }
    if a.detach {
        client
            .post(&format!("/exec/{id}/start"), Some(&start))
            .await?;
        return Ok(());
    }
    let hijacked = match client
        .hijack(&format!("/exec/{id}/start"), Some(&start))
        .await
    {
        Ok(h) => h,
        Err(e) => {
            // The daemon may still record why the process failed.
            if let Some(code) = exec_exit_code(client, &id).await.filter(|c| *c != 0) {
                crate::errln!("{e}");
                return Err(CliError::exit(code));
            }
            return Err(e);
        }
    };
    let mut raw = if a.tty && a.interactive {
        Some(RawTerminal::enable())
    } else {
        None
    };
    let resizer = if a.tty {
        Some(spawn_resizer(client.clone(), format!("/exec/{id}/resize")))
    } else {
        None
    };
    let stdin = if a.interactive {
        Some(stdin_channel())
    } else {
        None
    };
    let r = pump(hijacked, a.tty, stdin).await;
    if let Some(t) = raw.as_mut() {
        t.restore();
    }
    if let Some(t) = resizer {
        t.abort();
    }
    r?;
    match exec_exit_code(client, &id).await {
        Some(0) | None => Ok(()),
        Some(code) => Err(CliError::exit(code)),
    }
}

async fn exec_exit_code(client: &Client, id: &str) -> Option<i32> {
    // The exit code can lag the end of the stream slightly; poll briefly.
    for _ in 0..50 {
        let v = client.get_json(&format!("/exec/{id}/json")).await.ok()?;
        if v["Running"] != json!(true) {
            return v["ExitCode"].as_i64().map(|c| c as i32);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn exec_split_and_body() {
        let args = s(&[
            "-it", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "web", "sh", "-c", "ls -la",
        ]);
        let (head, cmd) = split_after_operands(&ExecArgs::command(), &args, 1);
        let a: ExecArgs = parse("tether exec", &head).unwrap();
        assert_eq!(a.operands, ["web"]);
        assert_eq!(cmd, s(&["sh", "-c", "ls -la"]));
        let b = exec_body(&a, &cmd, vec!["A=1".into()]);
        assert_eq!(b["Cmd"], json!(["sh", "-c", "ls -la"]));
        assert_eq!(b["Tty"], true);
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["WorkingDir"], "/tmp");
        assert_eq!(b["User"], "nobody");
        assert_eq!(b["Env"], json!(["A=1"]));

        let args = s(&["-d", "web", "touch", "/x"]);
        let (head, cmd) = split_after_operands(&ExecArgs::command(), &args, 1);
        let a: ExecArgs = parse("tether exec", &head).unwrap();
        let b = exec_body(&a, &cmd, vec![]);
        assert_eq!(b["Detach"], true);
        assert_eq!(b["AttachStdout"], false);
    }
}
