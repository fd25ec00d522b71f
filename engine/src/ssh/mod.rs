//! Running commands on hosts over SSH: [`SshHost`] implements [`modules::Host`] with russh.
//!
//! # Parts
//! - [`SshConfig`] / [`HostKeyPolicy`]: how to reach a host (plain data, filled from inventory).
//! - [`SshHost`]: the host; owns at most one connection at a time.
//! - `connection`: connect, authenticate, and run one command on one channel.
//! - `client_handler` + `known_hosts`: host-key checking against a `known_hosts` file.
//!
//! # Concurrency
//! - **One connection per host, opened lazily.** [`SshHost`] keeps it behind a
//!   `tokio::sync::Mutex` that is held across the whole connect, so concurrent first calls
//!   share one connect (the others wait, then clone the `Arc<Connection>`). Commands do not
//!   hold that lock while they run.
//! - **Channels.** Every command gets its own session channel on the shared connection. A
//!   per-connection `Semaphore` (`max_channels` permits, default 6) bounds how many are open at
//!   once; a command holds its permit from before the channel opens until the channel is
//!   closed. sshd's `MaxSessions` (default 10) also counts channels that are still closing, so
//!   a refused open is retried up to 5 times (20, 40, 80, 160 ms apart).
//! - **Reconnect.** A connection that died (peer closed, I/O error, 3 lost keepalives) is
//!   replaced by the next exec, at most once per host. Commands that were running on it fail
//!   with [`modules::HostError::Transport`] and are not retried (they may not be idempotent).
//!   A failed connect is sticky: later execs return the same
//!   [`modules::HostError::Unreachable`] at once instead of each waiting for the timeout.
//! - **Timeouts.** `connect_timeout` bounds TCP connect + handshake + auth together.
//!   The command timeout (per [`modules::Exec::timeout`], else `command_timeout`) starts when
//!   the command has its channel. On expiry the channel gets a `signal KILL` request and is
//!   closed, and exec returns [`modules::HostError::Timeout`].
//!
//! # What happens to a timed-out remote command
//! Commands run without a pty, through the login shell, unwrapped. OpenSSH's sshd (7.9 and
//! later) answers the `signal` request with `killpg` on the session's process group, so the
//! command and its children die at once. A server that ignores `signal` only sees the channel
//! close: the command then loses its pipes and runs on until it exits or writes to them
//! (SIGPIPE). A cancelled exec future (dropped by the caller) does the same kill-and-close from
//! a spawned task.
//!
//! # Host keys
//! Checked against [`SshConfig::known_hosts`] under the name `address` (or `[address]:port`
//! off port 22), with OpenSSH's rules: comma-separated patterns, `*`/`?` wildcards,
//! `!negation`, hashed names, `@revoked`. An unknown key is refused (the error gives the
//! `ssh-keyscan` line to add it) unless the policy is [`HostKeyPolicy::AcceptNew`], which
//! appends it. A changed key is refused under every policy, naming the file and line.

mod client_handler;
mod config;
mod connection;
mod error;
mod hmac_sha1;
mod host_key_policy;
mod known_hosts;
mod ssh_host;
#[cfg(test)]
mod tests;

pub use config::{SshConfig, default_known_hosts};
pub use host_key_policy::HostKeyPolicy;
pub use ssh_host::SshHost;
