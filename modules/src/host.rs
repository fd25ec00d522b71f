//! The narrow interface every module acts through.
//!
//! A [`Host`] can run one shell command line, with optional bytes on its stdin, and say
//! how it ended. Everything else (stat, read, atomic write) is built on top of that in
//! [`crate::remote`], so the transport stays tiny and every file operation is exercised
//! over the same path on real machines.

use std::time::Duration;

use async_trait::async_trait;

/// One command to run on a host.
#[derive(Debug, Clone, Default)]
pub struct Exec {
    /// A POSIX `sh` command line. Every argument in it must come from [`crate::shell::quote`].
    pub command: String,
    /// Bytes written to the command's stdin, then stdin is closed. File content travels here,
    /// never on the command line.
    pub stdin: Option<Vec<u8>>,
    /// Upper bound for the whole command. `None` uses the transport's default.
    pub timeout: Option<Duration>,
}

impl Exec {
    /// A command with no stdin and the default timeout.
    pub fn new(command: impl Into<String>) -> Self {
        Self { command: command.into(), stdin: None, timeout: None }
    }

    /// Sends `bytes` on the command's stdin.
    #[must_use]
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Bounds the command's run time.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// How a command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit status; `None` when the command was killed by a signal or the status was lost.
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Stdout as text, lossily decoded, trailing newline trimmed.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim_end_matches('\n').to_owned()
    }

    /// The last `lines` lines of stderr, lossily decoded, for error messages.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let all: Vec<&str> = text.trim_end().lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Why a command could not be run at all. A command that ran and exited non-zero is not
/// an error here: it is an [`ExecOutput`] with a non-zero status.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    /// The host could not be reached or authenticated; none of its tasks can run.
    #[error("host unreachable: {0}")]
    Unreachable(String),
    /// The command did not finish within its timeout; the remote process was signalled.
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
    /// The connection broke or a channel failed while the command ran.
    #[error("transport error: {0}")]
    Transport(String),
}

/// A machine that modules act on.
#[async_trait]
pub trait Host: Send + Sync {
    /// The host's inventory name, for messages.
    fn name(&self) -> &str;

    /// Runs `exec` and waits for it to end.
    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError>;
}
