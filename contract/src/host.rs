//! The narrow interface every module acts through.
//!
//! A [`Host`] can run one shell command line, with optional bytes on its stdin, and say
//! how it ended. Everything else (stat, read, atomic write) is built on top of that in
//! [`crate::remote`], so the transport stays tiny and every file operation is exercised
//! over the same path on real machines.

use std::time::Duration;

use async_trait::async_trait;

use crate::stat::FileStat;

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
    /// What the command may change on the host. Transports that cache what they read (see
    /// [`Host::cached_stat`]) drop what this makes stale; the default assumes anything.
    pub effect: Effect,
}

/// What a command may change on its host, as far as the caller knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Effect {
    /// Anything at all: an arbitrary command, a service restart, a package install.
    #[default]
    Unknown,
    /// Nothing: the command only reads.
    ReadOnly,
    /// Only this path (created, replaced, or with its mode or owner set) and, for `mkdir -p`,
    /// its missing parents. Never used for commands that create symbolic links.
    Write(String),
    /// This path and everything beneath it, removed.
    Remove(String),
}

impl Exec {
    /// A command with no stdin and the default timeout.
    pub fn new(command: impl Into<String>) -> Self {
        Self { command: command.into(), stdin: None, timeout: None, effect: Effect::Unknown }
    }

    /// Says what the command may change (default: [`Effect::Unknown`]).
    #[must_use]
    pub fn effect(mut self, effect: Effect) -> Self {
        self.effect = effect;
        self
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

    /// The state of `path` when the transport already holds it or can learn it together
    /// with other paths (the runner stats every path a host's tasks will plan in one round
    /// trip, and drops an entry as soon as a command may have changed it). `None`: ask the
    /// host directly.
    async fn cached_stat(&self, _path: &str) -> Option<Option<FileStat>> {
        None
    }
}
