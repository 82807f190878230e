//! Errors of loading, validating and planning a Compose project.

use thiserror::Error;

/// Everything that can make a Compose file unusable.
#[derive(Debug, Error)]
pub enum ComposeError {
    /// No compose file was given and none of the default names exists.
    #[error("no configuration file provided: not found (looked for {looked} in {dir})")]
    NoFile {
        /// The directory searched.
        dir: String,
        /// The names tried.
        looked: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid YAML.
    #[error("{file}: yaml: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key, value or type in the file is wrong; `at` names the file and line when known.
    #[error("{at}{path}: {message}")]
    Invalid {
        /// `"compose.yaml:4: "`, or "" when the position is unknown.
        at: String,
        /// The dotted path of the offending key (`services.web.ports[0]`).
        path: String,
        /// What is wrong and what is valid.
        message: String,
    },
    /// `${VAR:?message}` with VAR unset, or a malformed `${...}`.
    #[error("{0}")]
    Interpolation(String),
    /// A reference to something not declared, a cycle, or a bad value found after parsing.
    #[error("{0}")]
    Project(String),
}

/// Result alias.
pub type Result<T, E = ComposeError> = std::result::Result<T, E>;

impl ComposeError {
    /// A project-level error with this message.
    pub fn project(m: impl Into<String>) -> Self {
        ComposeError::Project(m.into())
    }
}
