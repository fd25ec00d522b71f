//! Running commands on hosts over SSH: [`SshHost`] implements [`contract::Host`] with russh.
//!
//! # Parts
//! - [`SshConfig`] / [`HostKeyPolicy`]: how to reach a host (plain data, filled from inventory).
//! - [`SshHost`]: the host; owns at most one connection at a time.
//! - `connection`: connect, authenticate, and run (and stop) one command on one channel.
//! - `shown`: command lines as logs and errors show them (no environment values).
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
//! - **Connect retries.** A refused, reset or unreachable TCP connect (sshd restarting, a host
//!   rebooting) is tried again, up to 4 times 250, 500 and 1000 ms apart, within
//!   `connect_timeout`. Host-key and authentication failures are final at once.
//! - **Reconnect.** A connection that died (peer closed, I/O error, 3 lost keepalives 5 s
//!   apart) is replaced by the next exec, at most once per host. Commands that were running on
//!   it fail with [`contract::HostError::Unreachable`] and are not retried (they may not be
//!   idempotent).
//!   A failed connect is sticky: later execs return the same
//!   [`contract::HostError::Unreachable`] at once instead of each waiting for the timeout.
//! - **Timeouts.** `connect_timeout` bounds TCP connect + handshake + auth together (not
//!   the time a host waits for a key's passphrase to be typed: see [`KeyUnlocker`]).
//!   The command timeout (per [`contract::Exec::timeout`], else `command_timeout`) starts when
//!   the command has its channel, so commands queued behind the semaphore do not time out.
//!   On expiry the remote command is killed (below) and exec returns
//!   [`contract::HostError::Timeout`].
//! - **Output.** At most `max_output` bytes (default 64 MiB, `--max-output`) of each of a
//!   command's stdout and stderr are kept; past that the command is killed (below) and exec
//!   returns [`contract::HostError::OutputLimit`]. Nothing else a host sends is kept.
//!
//! # Become
//! With [`SshConfig::become_user`] (`ansible_become`) every command runs through the become
//! method ([`SshConfig::become_method`]: `sudo`, `su` or `doas`, see [`crate::elevate`]), and
//! so does the kill of one that must stop: the login user may not signal the processes the
//! method started. Become is tried once per connection, right after authentication
//! (`Connection::check_become`): a method that cannot start a shell (a wrong or missing
//! password, a doas rule that wants one) makes the connect fail with the reason, so a host's
//! tasks fail with it and a wrong password is sent once. With a password, `drive` answers the
//! method's prompt on stderr with the password line and holds the command's stdin back until
//! the marker line shows its shell started; the prompt is not kept as the command's stderr.
//!
//! # Stopping a remote command
//! Commands run without a pty, preceded by one line that reports the process group of the shell
//! that runs them (`engine-pid:PGID`, read from `/proc/self/stat`; under become that shell
//! runs inside sudo); it is stripped from stdout. Without become sshd makes that shell a
//! session leader, so the group is its own; under sudo it is the group sudo put it in. On
//! timeout, past the output limit, and when an exec future is dropped (cancelled) mid-command,
//! a second channel runs `kill -s KILL -- -PGID`, as the become user when there is one, and its
//! exit status is checked: when the kill fails, exec returns
//! [`contract::HostError::NotStopped`], saying why and that the command may still run. The
//! server then closes the command's channel; what the command prints meanwhile is read and
//! dropped (unread, it would stall the whole connection). A kill is needed because closing
//! a channel only closes the command's pipes (a `sleep 30` runs on), and the protocol's
//! `signal` request is refused by OpenSSH for root logins ("session signalling requires
//! privilege separation"). If the marker never arrived (the shell had not started), a
//! `signal KILL` request and a channel close are all that is tried, and that is reported as
//! not known to have stopped it. Processes that leave the group (`setsid`, daemons) survive,
//! as intended for services.
//!
//! # Session transport
//! With [`SshConfig::transport`] = [`CommandTransport::Session`] (`--transport session`, the
//! command line's default) commands run through a small shell loop (bash, else POSIX `sh`) on a
//! long-lived channel (module `session`, wire format and loop in `session_proto`): no channel,
//! sshd session or login shell per command, no exec per command under bash, and become wraps
//! the loop once. The same [`contract::ExecOutput`], timeouts and limits; a session lost mid-command
//! is [`contract::HostError::Unreachable`] for that command and the next one opens a new session.
//!
//! # Logs
//! `-vv` logs each command line without its environment values (`'NAME=<hidden>'`, see
//! `shown`), and never its stdin.
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
mod host_key_policy;
mod jump;
#[cfg(test)]
mod jump_tests;
mod key_unlock;
pub(crate) mod known_hosts;
mod session;
mod session_proto;
mod shown;
mod ssh_config;
mod ssh_host;
mod ssh_options;
#[cfg(test)]
mod tests;

pub use config::{CommandTransport, Jump, SshConfig, default_known_hosts};
pub(crate) use connection::preferred_algorithms;
pub use host_key_policy::HostKeyPolicy;
pub use jump::JumpPool;
pub use key_unlock::{AskPassphrase, KeyUnlocker, Keys, Secret};
pub use ssh_config::{SshConfigError, SshConfigFile, expand_tilde};
pub use ssh_host::SshHost;
pub use ssh_options::{JumpSpec, Resolved, Setting, SshArgs, SshOptions};
