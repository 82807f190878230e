//! `tether <command>`: a docker-compatible command line client.
//!
//! The CLI is a pure client of the Docker Engine REST API served by the
//! tether daemon on a unix socket (`unix:///run/tether/tether.sock` unless
//! `-H/--host` or `DOCKER_HOST` says otherwise). Commands, flags, tables,
//! messages and exit codes follow docker 20.10+ (docker/cli):
//!
//! * containers: `create`, `run`, `start`, `stop`, `restart`, `kill`, `rm`,
//!   `wait`, `port`, `logs`, `exec`, `ps`, `container prune`, and the
//!   `container ...` aliases;
//! * images: `images`, `rmi`, `tag`, `import`, `load`, `pull`, `image ...`;
//! * networks: `network create|ls|inspect|rm|prune|connect|disconnect`;
//! * `compose up|down|ps|logs|exec|run|config|start|stop|restart|rm` (Compose files, see
//!   `tether-compose`);
//! * `inspect`, `version`, `info`, `--version`.
//!
//! `--format` / `-f` use a Go `text/template` implementation with docker's
//! functions ([`format::template`]); tables use Go's tabwriter layout.

#![warn(missing_docs)]

pub mod args;
pub mod client;
pub mod commands;
pub mod error;
pub mod format;
pub mod opts;
pub mod reference;
pub mod stream;

use crate::args::{parse_globals, Invocation, PROG};
use crate::client::{Client, DEFAULT_HOST};
use crate::error::CliError;

/// Runs one CLI invocation. `args` excludes the program name (e.g. ["run","-d","tbox"]). Returns the process exit code.
pub async fn run(args: Vec<String>) -> i32 {
    let inv = match parse_globals(&args) {
        Ok(i) => i,
        Err(e) => return report(e),
    };
    match inv {
        Invocation::Version => {
            outln!("{PROG} version {}", commands::system::VERSION);
            0
        }
        Invocation::Help => {
            commands::print_help();
            0
        }
        Invocation::Command(globals, rest) => {
            let host = globals
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
                .unwrap_or_else(|| DEFAULT_HOST.to_string());
            tracing::debug!(%host, command = ?rest.first(), "tether cli");
            let client = match Client::new(&host) {
                Ok(c) => c,
                Err(e) => return report(e),
            };
            match commands::dispatch(&client, &rest).await {
                Ok(()) => 0,
                Err(e) => report(e),
            }
        }
    }
}

/// Prints an error the way docker's `main` does and returns the exit code.
fn report(e: CliError) -> i32 {
    match e {
        CliError::Status { message, code } => {
            if let Some(m) = message.filter(|m| !m.is_empty()) {
                errln!("{m}");
            }
            code
        }
        other => {
            errln!("{other}");
            other.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[tokio::test]
    async fn no_daemon_gives_docker_message() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let host = format!("unix://{}", sock.display());
        let client = Client::new(&host).unwrap();
        let e = commands::dispatch(&client, &s(&["ps"])).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Cannot connect to the tether daemon at {host}. Is the daemon running?")
        );
        assert_eq!(e.exit_code(), 1);
        let code = run(s(&["-H", &host, "ps"])).await;
        assert_eq!(code, 1);
    }

    #[tokio::test]
    async fn client_side_errors_need_no_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}", dir.path().join("none.sock").display());
        // Malformed -p is reported before contacting the daemon, exit 125.
        assert_eq!(
            run(s(&["-H", &host, "run", "-p", "80:x", "tbox"])).await,
            125
        );
        assert_eq!(run(s(&["-H", &host, "run", "Bad"])).await, 125);
        assert_eq!(run(s(&["-H", &host, "ps", "--bogus"])).await, 125);
        assert_eq!(run(s(&["-H", &host, "rm"])).await, 1);
        assert_eq!(run(s(&["-H", &host, "nosuch"])).await, 1);
        assert_eq!(run(s(&["--version"])).await, 0);
    }
}
