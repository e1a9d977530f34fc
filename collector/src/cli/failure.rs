//! How a command failed, for `main` to map to an exit code.

/// How a command failed: the caller maps it to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad configuration or arguments: exit 64.
    #[error("{0}")]
    Usage(String),
    /// Anything else: exit 1.
    #[error("{0:#}")]
    Runtime(#[from] anyhow::Error),
}
