//! The modules crate's one error type.

use crate::host::HostError;

/// Why a module could not plan or apply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModuleError {
    /// The host could not run the command at all.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A command on the host exited non-zero.
    #[error("`{command}` exited with {status}{}", stderr_suffix(.stderr))]
    Command {
        /// The command line that ran (never contains file content or secrets: those go on stdin).
        command: String,
        /// Exit status, or "a signal".
        status: String,
        /// The last lines of its stderr.
        stderr: String,
    },
    /// The host's state does not allow the requested change (e.g. a file where a directory is asked).
    #[error("{0}")]
    Refused(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
}

/// Why a module's arguments were rejected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ArgsError {
    /// What is wrong, naming the argument.
    pub message: String,
}

impl ArgsError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}
