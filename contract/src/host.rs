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
    /// The transport picks the shell that runs it: the login shell (`exec`), or a subshell of
    /// the host session's loop (`session`), where `$$` is the loop's pid, as in any subshell. A
    /// command that needs a process of its own (its pid, a signal to itself) runs `sh -c`.
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
    /// The command did not finish within its timeout; its process group was killed (a kill that
    /// failed is [`HostError::NotStopped`] instead).
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
    /// The connection broke or a channel failed while the command ran.
    #[error("transport error: {0}")]
    Transport(String),
    /// The command printed more than the transport keeps of one stream; it was stopped (its
    /// process group killed), and what it printed was dropped. `limit` is in bytes.
    #[error(
        "`{command}` printed more than {} on {stream}; it was stopped (raise the limit with --max-output)",
        mebibytes(*.limit)
    )]
    OutputLimit { command: String, stream: Stream, limit: u64 },
    /// A command had to be stopped (`cause`: it timed out or printed too much), and stopping it
    /// failed: it may still be running on the host.
    #[error("{cause}; stopping it failed, so it may still be running: {reason}")]
    NotStopped { cause: Box<HostError>, reason: String },
}

impl HostError {
    /// The same error, naming the command as `shown` (what the caller sent may differ from
    /// what it shows: the `command` module `exec`s the shell it names).
    pub fn showing(self, shown: &str) -> HostError {
        match self {
            HostError::OutputLimit { stream, limit, .. } => {
                HostError::OutputLimit { command: shown.to_owned(), stream, limit }
            }
            HostError::NotStopped { cause, reason } => {
                HostError::NotStopped { cause: Box::new(cause.showing(shown)), reason }
            }
            other => other,
        }
    }
}

/// One of a command's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

/// `64 MiB`, or the exact byte count when it is not a whole number of MiB.
fn mebibytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_limit_names_the_command_the_stream_and_the_limit() {
        let limit = HostError::OutputLimit {
            command: "head -c 1G /dev/zero".into(),
            stream: Stream::Stdout,
            limit: 64 * 1024 * 1024,
        };
        assert_eq!(
            limit.to_string(),
            "`head -c 1G /dev/zero` printed more than 64 MiB on stdout; it was stopped (raise the limit \
             with --max-output)"
        );
        let odd = HostError::OutputLimit { command: "x".into(), stream: Stream::Stderr, limit: 1000 };
        assert!(odd.to_string().contains("more than 1000 bytes on stderr"));
        let not_stopped = HostError::NotStopped {
            cause: Box::new(HostError::Timeout(Duration::from_secs(2))),
            reason: "`kill` exited with status 1: sudo: a password is required".into(),
        };
        let sent = HostError::NotStopped {
            cause: Box::new(HostError::OutputLimit {
                command: "exec sh -c x".into(),
                stream: Stream::Stdout,
                limit: 1,
            }),
            reason: "r".into(),
        };
        assert!(sent.showing("sh -c x").to_string().starts_with("`sh -c x` printed more than"));
        assert_eq!(
            HostError::Timeout(Duration::from_secs(1)).showing("y"),
            HostError::Timeout(Duration::from_secs(1))
        );
        assert_eq!(
            not_stopped.to_string(),
            "command timed out after 2s; stopping it failed, so it may still be running: `kill` exited \
             with status 1: sudo: a password is required"
        );
    }
}
