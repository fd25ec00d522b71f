//! [`SshHost`]: a [`contract::Host`] reached over one shared SSH connection.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use contract::{Exec, ExecOutput, Host, HostError};
use tokio::sync::Mutex;
use tracing::Instrument;

use super::connection::{Connection, millis_since};
use super::shown::without_env_values;
use super::{JumpPool, SshConfig};

/// How many times a connection that died is replaced by a new one over the host's lifetime.
const RECONNECTS: u32 = 1;
/// Bound for the first command through become (PAM delays a refused password by about 2 s).
const BECOME_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A host reached over SSH. Cheap to create: it connects on the first [`Host::exec`] (or
/// [`SshHost::connect`]) and then runs all of the host's commands over that one connection,
/// each on its own channel.
#[derive(Debug)]
pub struct SshHost {
    name: String,
    config: SshConfig,
    /// Connections to jump hosts, shared with the other hosts of the run.
    jumps: Arc<JumpPool>,
    /// The connection, or why there is none. Held across a whole connect attempt, so
    /// concurrent first callers wait for one connect instead of each starting their own;
    /// afterwards held only long enough to clone the `Arc`. Commands run without it.
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    /// Not connected yet.
    Idle,
    /// `reconnects_left` more replacements are allowed if `connection` dies.
    Connected { connection: Arc<Connection>, reconnects_left: u32 },
    /// A connect attempt failed; every later call gets the same error without retrying, so
    /// a dead host costs one connect timeout, not one per task.
    Failed(HostError),
}

impl SshHost {
    /// A host named `name` (its inventory name, used in messages) reached with `config`.
    /// Does not connect.
    pub fn new(name: String, config: SshConfig) -> Self {
        Self::with_jumps(name, config, Arc::default())
    }

    /// A host whose jump hosts ([`SshConfig::jumps`]) are reached through `jumps`, shared with
    /// other hosts: hosts behind one bastion share one connection to it.
    pub fn with_jumps(name: String, config: SshConfig, jumps: Arc<JumpPool>) -> Self {
        Self { name, config, jumps, state: Mutex::new(State::Idle) }
    }

    /// How this host is reached.
    pub fn config(&self) -> &SshConfig {
        &self.config
    }

    /// Connects now, if not connected yet, so the caller can time it or fail early.
    /// Later [`Host::exec`] calls reuse the connection.
    ///
    /// # Errors
    /// [`HostError::Unreachable`] when the TCP connect, the host-key check or authentication
    /// fails or takes longer than `connect_timeout`.
    pub async fn connect(&self) -> Result<(), HostError> {
        self.connection().await.map(drop)
    }

    /// Closes the connection politely, e.g. at the end of a run. Commands still running fail
    /// with [`HostError::Transport`]; a later exec connects again.
    pub async fn disconnect(&self) {
        let mut state = self.state.lock().await;
        if let State::Connected { connection, .. } = &*state {
            connection.disconnect().await;
            *state = State::Idle;
        }
    }

    /// `name (user@address:port)`, the prefix of every connection error.
    fn context(&self) -> String {
        format!("{} ({}@{})", self.name, self.config.user, self.config.endpoint())
    }

    /// The live connection, connecting first if there is none or if it died (once).
    async fn connection(&self) -> Result<Arc<Connection>, HostError> {
        let mut state = self.state.lock().await;
        let reconnects_left = match &*state {
            State::Connected { connection, .. } if !connection.is_closed() => {
                return Ok(Arc::clone(connection));
            }
            State::Failed(error) => return Err(error.clone()),
            State::Idle => RECONNECTS,
            State::Connected { reconnects_left: 0, .. } => {
                let error = HostError::Unreachable(format!(
                    "{}: the connection was lost again after {RECONNECTS} reconnect(s)",
                    self.context()
                ));
                *state = State::Failed(error.clone());
                return Err(error);
            }
            State::Connected { reconnects_left, .. } => {
                tracing::debug!(host = %self.name, "connection lost; reconnecting");
                reconnects_left - 1
            }
        };

        let start = Instant::now();
        let span = tracing::debug_span!("ssh.connect", host = %self.name, endpoint = %self.config.endpoint());
        let opened = async {
            let connection = Arc::new(Connection::open(&self.config, &self.context(), &self.jumps).await?);
            // Become is tried once per connection, before any command (see `check_become`).
            connection
                .check_become(&self.name, BECOME_CHECK_TIMEOUT.max(self.config.connect_timeout))
                .await?;
            Ok::<_, HostError>(connection)
        };
        match opened.instrument(span).await {
            Ok(connection) => {
                tracing::debug!(host = %self.name, ms = millis_since(start), "connected");
                *state = State::Connected { connection: Arc::clone(&connection), reconnects_left };
                Ok(connection)
            }
            Err(error) => {
                tracing::debug!(host = %self.name, ms = millis_since(start), %error, "connect failed");
                *state = State::Failed(error.clone());
                Err(error)
            }
        }
    }
}

#[async_trait]
impl Host for SshHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
        let timeout = exec.timeout.unwrap_or(self.config.command_timeout);
        // Never the stdin bytes themselves (they can be private keys), nor environment values.
        let span = tracing::debug_span!(
            "ssh.exec",
            host = %self.name,
            command = %without_env_values(&exec.command),
            become_user = self.config.become_user.as_deref(),
            become_method = self.config.become_user.as_ref().map(|_| self.config.become_method.name()),
            transport = self.config.transport.name(),
            stdin_len = exec.stdin.as_ref().map_or(0, Vec::len),
            ?timeout,
        );
        async move {
            let connection = self.connection().await?;
            let start = Instant::now();
            let result = if self.config.transport == super::CommandTransport::Session
                && connection.sessions_possible()
            {
                super::session::exec(&connection, exec, timeout).await
            } else {
                connection.exec(exec, timeout).await
            };
            match &result {
                Ok(out) => tracing::debug!(
                    status = ?out.status,
                    stdout_len = out.stdout.len(),
                    stderr_len = out.stderr.len(),
                    ms = millis_since(start),
                    "command finished"
                ),
                Err(error) => tracing::debug!(%error, ms = millis_since(start), "command failed"),
            }
            result
        }
        .instrument(span)
        .await
    }
}
