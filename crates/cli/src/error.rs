//! Errors of the CLI and how they map to docker's messages and exit codes.

use thiserror::Error;

use crate::format::template::TemplateError;

/// Everything that can make a command fail.
#[derive(Debug, Error)]
pub enum CliError {
    /// The daemon answered with an error status; `message` is the JSON body's
    /// `message` (or the raw body). Printed `Error response from daemon: MSG`.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// HTTP status code.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// The daemon socket could not be reached.
    #[error("Cannot connect to the tether daemon at {host}. Is the daemon running?")]
    Connect {
        /// The host as given (`unix:///run/tether/tether.sock`).
        host: String,
    },
    /// The host string is not a unix socket address.
    #[error("unsupported host {0:?}: only unix:// sockets are supported")]
    UnsupportedHost(String),
    /// HTTP-level failure talking to the daemon.
    #[error("error during connect: {0}")]
    Http(String),
    /// The daemon sent something that is not the expected JSON.
    #[error("unable to read daemon response: {0}")]
    BadResponse(String),
    /// Local I/O failed (reading a file, stdin, writing output).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A `--format` template failed; printed as docker does.
    #[error("template parsing error: {0}")]
    Template(#[from] TemplateError),
    /// A message printed as is (already in docker's wording).
    #[error("{0}")]
    Message(String),
    /// Exit with a status and optionally print a message (docker's `cli.StatusError`).
    #[error("{}", .message.as_deref().unwrap_or(""))]
    Status {
        /// What to print on stderr (nothing if `None`).
        message: Option<String>,
        /// The exit code.
        code: i32,
    },
}

impl CliError {
    /// A plain message printed as is, exit 1.
    pub fn msg(m: impl Into<String>) -> Self {
        CliError::Message(m.into())
    }

    /// Exit silently with `code`.
    pub fn exit(code: i32) -> Self {
        CliError::Status {
            message: None,
            code,
        }
    }

    /// Print `message` and exit with `code`.
    pub fn status(code: i32, message: impl Into<String>) -> Self {
        CliError::Status {
            message: Some(message.into()),
            code,
        }
    }

    /// The HTTP status when the daemon returned an error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            CliError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the daemon said "not found".
    pub fn is_not_found(&self) -> bool {
        self.http_status() == Some(404)
    }

    /// The exit code docker uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Status { code, .. } => *code,
            _ => 1,
        }
    }
}

/// Result alias.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
