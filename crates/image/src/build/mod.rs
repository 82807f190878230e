//! What the classic builder (`docker build`, Engine API `POST /build`) needs
//! of the image side: the Dockerfile model ([`dockerfile`]) and the build
//! context ([`context`]: the uploaded tar, `.dockerignore`, `COPY`/`ADD`
//! sources, their content hashes for the build cache, and copying them into a
//! stage's root filesystem). Running the steps is the engine's job.

pub mod context;
pub mod dockerfile;

/// Errors of a build, each naming what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A Dockerfile error: Display `Dockerfile parse error on line 3: ...`
    /// (Docker's wording) with the file named.
    #[error("{file} parse error on line {line}: {message}")]
    Dockerfile {
        /// The Dockerfile's name in the context (`Dockerfile`, `Dockerfile.backend`).
        file: String,
        /// 1-based line of the instruction.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A bad build request or step argument (400): names the value.
    #[error("{0}")]
    Invalid(String),
    /// A `COPY`/`ADD` source that is not in the context (or is excluded by
    /// `.dockerignore`), or a missing `--from` path.
    #[error("{0}")]
    NotFound(String),
    /// A filesystem failure while handling the context (500).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An image store failure while writing into a root filesystem.
    #[error(transparent)]
    Image(#[from] crate::ImageError),
}

impl BuildError {
    /// HTTP status for the Engine API: Dockerfile/Invalid/NotFound 400 (as the
    /// classic builder reports them in the stream), Io 500, Image per its own.
    pub fn status(&self) -> u16 {
        match self {
            BuildError::Dockerfile { .. } | BuildError::Invalid(_) | BuildError::NotFound(_) => 400,
            BuildError::Io { .. } => 500,
            BuildError::Image(e) => e.status(),
        }
    }
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}
