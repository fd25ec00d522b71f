//! One authenticated SSH connection and the commands run over it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Exec, ExecOutput, HostError};
use russh::client::{self, Handle, Msg};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::SshConfig;
use super::client_handler::ClientHandler;
use super::error::{SshError, describe};

/// Channel opens the server refuses (sshd `MaxSessions`, which counts channels still closing)
/// are retried this many times in all, waiting 20, 40, 80, 160 ms between tries.
const CHANNEL_OPEN_ATTEMPTS: u32 = 5;
const CHANNEL_OPEN_FIRST_BACKOFF: Duration = Duration::from_millis(20);
/// Keepalive probe interval; after 3 unanswered probes russh drops the connection, so a dead
/// peer is noticed within about 15-20 s even when no command is running.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// TCP connect attempts for transient failures, and the wait before the second (doubling).
const CONNECT_ATTEMPTS: u32 = 4;
const CONNECT_FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Bound for killing a timed-out command and waiting for its channel to close, together.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects TCP, retrying refused, reset and unreachable attempts (a host rebooting, sshd
/// restarting) with backoff until `deadline`. `None`: the deadline passed.
async fn tcp_connect(
    config: &SshConfig,
    deadline: tokio::time::Instant,
) -> Result<TcpStream, Option<std::io::Error>> {
    let mut backoff = CONNECT_FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let result =
            tokio::time::timeout_at(deadline, TcpStream::connect((config.address.as_str(), config.port)))
                .await
                .map_err(|_| None)?;
        match result {
            Ok(stream) => return Ok(stream),
            Err(e) if attempt < CONNECT_ATTEMPTS && transient(&e) => {
                if tokio::time::Instant::now() + backoff >= deadline {
                    return Err(Some(e));
                }
                tracing::debug!(address = %config.address, attempt, ?backoff, error = %e, "TCP connect failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(e) => return Err(Some(e)),
        }
    }
}

/// Errors worth another attempt: the host is there but not (yet) listening, or the path to it
/// flapped.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{
        ConnectionAborted, ConnectionRefused, ConnectionReset, HostUnreachable, NetworkUnreachable,
    };
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | HostUnreachable | NetworkUnreachable
    )
}

/// An authenticated connection to one host, shared by all of that host's commands.
pub(crate) struct Connection {
    handle: Handle<ClientHandler>,
    /// Channel slots, `max_channels` permits. [`Connection::exec`] holds one from before it
    /// opens its channel until it returns (the channel then is closed or being closed), so at
    /// most `max_channels` channels of ours are open at once. Never closed.
    channels: Semaphore,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("closed", &self.handle.is_closed())
            .field("free_channels", &self.channels.available_permits())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects, checks the host key and authenticates, all within `config.connect_timeout`.
    /// `context` prefixes error messages (`host (user@address:port)`).
    pub(crate) async fn open(config: &SshConfig, context: &str) -> Result<Self, HostError> {
        let deadline = tokio::time::Instant::now() + config.connect_timeout;
        let timed_out = |phase: &str| {
            HostError::Unreachable(format!(
                "{context}: {phase} timed out (connect timeout {:?})",
                config.connect_timeout
            ))
        };

        let stream = tcp_connect(config, deadline).await.map_err(|e| match e {
            None => timed_out("TCP connect"),
            Some(e) => HostError::Unreachable(format!("{context}: TCP connect failed: {e}")),
        })?;
        // Without it every small SSH packet waits for delayed ACKs: ~40 ms per command.
        stream
            .set_nodelay(true)
            .map_err(|e| HostError::Unreachable(format!("{context}: setting TCP_NODELAY failed: {e}")))?;

        let russh_config = Arc::new(client::Config {
            nodelay: true,
            keepalive_interval: Some(KEEPALIVE_INTERVAL),
            keepalive_max: 3,
            ..client::Config::default()
        });
        let mut handle = tokio::time::timeout_at(
            deadline,
            client::connect_stream(russh_config, stream, ClientHandler::new(config)),
        )
        .await
        .map_err(|_| timed_out("SSH handshake"))?
        .map_err(|e: SshError| e.unreachable(context))?;

        tokio::time::timeout_at(deadline, authenticate(&mut handle, config))
            .await
            .map_err(|_| timed_out("authentication"))?
            .map_err(|cause| HostError::Unreachable(format!("{context}: {cause}")))?;

        Ok(Self { handle, channels: Semaphore::new(config.max_channels.max(1)) })
    }

    /// True once the connection is gone (peer closed it, keepalives failed, or I/O error).
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Says goodbye to the server. Commands still running fail with a transport error.
    pub(crate) async fn disconnect(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }

    /// Runs one command on its own channel. The timeout clock starts once the channel is open.
    pub(crate) async fn exec(
        self: &Arc<Self>,
        exec: Exec,
        timeout: Duration,
    ) -> Result<ExecOutput, HostError> {
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|_| HostError::Transport("connection is shutting down".to_owned()))?;
        let (rx, tx) = self.open_channel().await?.split();
        let mut running = AbortOnDrop(Some(Running { connection: Arc::clone(self), tx, rx, pid: None }));
        let Some(parts) = running.0.as_mut() else {
            return Err(HostError::Transport("command state missing".to_owned()));
        };

        let run = drive(&parts.tx, &mut parts.rx, &mut parts.pid, wrap(&exec.command), exec.stdin);
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(output)) => {
                running.disarm();
                Ok(output)
            }
            // The channel failed mid-command; AbortOnDrop still tries to stop the process.
            // A connection that died with it (the host went away) makes the host unreachable.
            Ok(Err(e)) if self.is_closed() => {
                Err(HostError::Unreachable(format!("the connection was lost while the command ran ({e})")))
            }
            Ok(Err(e)) => Err(e),
            Err(_elapsed) => {
                if let Some(parts) = running.0.take() {
                    tracing::debug!(?timeout, pid = parts.pid, "command timed out; killing it");
                    parts.abort().await;
                }
                Err(HostError::Timeout(timeout))
            }
        }
    }

    /// Kills process group `pgid` from a channel of its own (see [`Running::abort`]). Takes no
    /// channel permit: it runs while the timed-out command still holds one.
    async fn kill_process_group(&self, pgid: u32) -> Result<(), HostError> {
        let (mut rx, tx) = self.open_channel().await?.split();
        let command = format!("kill -9 -{pgid}");
        let mut pid = None;
        let output =
            tokio::time::timeout(KILL_TIMEOUT, drive(&tx, &mut rx, &mut pid, command.into_bytes(), None))
                .await
                .map_err(|_| HostError::Timeout(KILL_TIMEOUT))??;
        tracing::debug!(pgid, status = ?output.status, stderr = %output.stderr_tail(1), "killed process group");
        Ok(())
    }

    /// Opens a session channel, retrying refusals (sshd `MaxSessions`) with backoff.
    async fn open_channel(&self) -> Result<russh::Channel<Msg>, HostError> {
        let mut backoff = CHANNEL_OPEN_FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.handle.channel_open_session().await {
                Ok(channel) => return Ok(channel),
                Err(russh::Error::ChannelOpenFailure(reason)) if attempt < CHANNEL_OPEN_ATTEMPTS => {
                    tracing::debug!(?reason, attempt, ?backoff, "server refused a channel; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(russh::Error::ChannelOpenFailure(reason)) => {
                    return Err(HostError::Transport(format!(
                        "the server refused to open a channel {attempt} times ({reason:?}); \
                         is sshd's MaxSessions lower than max_channels?"
                    )));
                }
                Err(e) => {
                    return Err(HostError::Transport(format!("opening a channel failed: {}", describe(&e))));
                }
            }
        }
    }
}

/// The first line every command prints: `engine-pid:<pid of its shell>`. sshd makes that shell
/// a session leader (setsid), and a non-interactive shell keeps its children in its process
/// group, so the pid is also the group to kill. Stripped from stdout by [`drive`].
const PID_MARKER: &[u8] = b"engine-pid:";

/// `command` preceded by the line that reports its process group. The command itself is
/// untouched and runs in the same shell, so `exit`, `$?` and `set -e` behave as written.
fn wrap(command: &str) -> Vec<u8> {
    format!("printf 'engine-pid:%s\\n' \"$$\"\n{command}").into_bytes()
}

/// Starts `command`, feeds it `stdin` then EOF, and collects its output until the server
/// closes the channel; sets `pid` as soon as the [`PID_MARKER`] line arrives. Reading and
/// writing run together: russh delivers incoming data through a bounded queue, and a full
/// queue stalls the whole connection, including the window adjustments our writes wait for.
async fn drive(
    tx: &ChannelWriteHalf<Msg>,
    rx: &mut ChannelReadHalf,
    pid: &mut Option<u32>,
    command: Vec<u8>,
    stdin: Option<Vec<u8>>,
) -> Result<ExecOutput, HostError> {
    tx.exec(true, command)
        .await
        .map_err(|e| HostError::Transport(format!("sending the command failed: {}", describe(&e))))?;

    let write = async {
        if let Some(bytes) = stdin.filter(|b| !b.is_empty()) {
            tx.data_bytes(bytes).await?;
        }
        // Always: commands that read stdin (`cat`) end only on EOF.
        tx.eof().await
    };
    let read = async {
        let mut output = ExecOutput::default();
        // Stdout until the marker line is complete; `None` afterwards.
        let mut head = Some(Vec::new());
        let mut signal = None;
        loop {
            match rx.wait().await {
                Some(ChannelMsg::Data { data }) => match head.as_mut() {
                    Some(buf) => {
                        buf.extend_from_slice(&data);
                        if let Some(rest) = strip_pid_line(buf, pid) {
                            output.stdout.extend_from_slice(rest);
                            head = None;
                        }
                    }
                    None => output.stdout.extend_from_slice(&data),
                },
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => output.stderr.extend_from_slice(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => output.status = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => signal = Some(signal_name),
                Some(ChannelMsg::Failure) => {
                    return Err(HostError::Transport("the server refused to run the command".to_owned()));
                }
                Some(ChannelMsg::Close) => break,
                Some(_) => {}
                None if output.status.is_some() || signal.is_some() => break,
                None => {
                    return Err(HostError::Transport(
                        "the connection closed while the command ran".to_owned(),
                    ));
                }
            }
        }
        if let Some(buf) = head {
            // The shell died before printing a whole marker line; keep whatever it printed.
            output.stdout.splice(0..0, buf);
        }
        if let Some(signal) = signal {
            tracing::debug!(?signal, "command killed by signal");
            output.status = None;
        }
        Ok(output)
    };

    tokio::pin!(write, read);
    let mut writing = true;
    loop {
        tokio::select! {
            written = &mut write, if writing => {
                writing = false;
                // A command may exit without reading all its stdin; its exit status decides.
                if let Err(e) = written {
                    tracing::debug!(error = %e, "writing stdin stopped early");
                }
            }
            output = &mut read => return output,
        }
    }
}

/// Once `head` holds a whole first line: parses it as the [`PID_MARKER`] line into `pid` and
/// returns the stdout that follows it. A first line that is not the marker (say, a noisy
/// shell profile) is returned as stdout, and `pid` stays unknown.
fn strip_pid_line<'a>(head: &'a [u8], pid: &mut Option<u32>) -> Option<&'a [u8]> {
    let Some(newline) = head.iter().position(|&b| b == b'\n') else {
        // Longer than any marker line: not ours.
        return (head.len() > 32).then_some(head);
    };
    let (line, rest) = head.split_at(newline);
    match line.strip_prefix(PID_MARKER).and_then(|n| std::str::from_utf8(n).ok()?.parse().ok()) {
        Some(n) => {
            *pid = Some(n);
            rest.get(1..)
        }
        None => Some(head),
    }
}

/// A command whose channel is open, and what is needed to stop it.
struct Running {
    connection: Arc<Connection>,
    tx: ChannelWriteHalf<Msg>,
    rx: ChannelReadHalf,
    /// Its process group, once the marker line has arrived.
    pid: Option<u32>,
}

impl Running {
    /// Stops the remote command and closes its channel.
    ///
    /// The `signal` channel request would be the protocol's way, but OpenSSH's sshd refuses it
    /// for root logins (no privilege separation after auth: "session signalling requires
    /// privilege separation"), and closing the channel only closes the command's pipes. So
    /// the process group from the marker line is killed with `kill -9 -PGID` on a second
    /// channel. Without a pid (the shell had not started yet) the signal request is the only
    /// thing left to try.
    async fn abort(mut self) {
        // One bound for all of it: over a dead link even opening the kill channel never ends.
        let deadline = tokio::time::Instant::now() + KILL_TIMEOUT;
        let killed = match self.pid {
            Some(pgid) => {
                match tokio::time::timeout_at(deadline, self.connection.kill_process_group(pgid)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(error)) => {
                        tracing::debug!(pgid, %error, "could not kill the timed-out command");
                        false
                    }
                    Err(_) => {
                        tracing::debug!(pgid, "killing the timed-out command timed out");
                        false
                    }
                }
            }
            None => {
                let _ = tokio::time::timeout_at(deadline, self.tx.signal(Sig::KILL)).await;
                false
            }
        };
        // Once the command is dead the server closes the channel itself (and russh answers).
        // Closing it from our side first would race with that close: russh then never hands
        // us the server's close, and sshd keeps a channel whose command still runs open anyway.
        if killed && tokio::time::timeout_at(deadline, wait_for_close(&mut self.rx)).await.is_ok() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.close()).await;
    }
}

/// Discards what is left on the channel until the server closes it.
async fn wait_for_close(rx: &mut ChannelReadHalf) {
    while let Some(msg) = rx.wait().await {
        if matches!(msg, ChannelMsg::Close) {
            return;
        }
    }
}

/// Holds a [`Running`] command until it ends normally. Dropped while still holding it (the exec
/// future was cancelled, or the channel failed), it aborts the command from a spawned task,
/// so an abandoned command neither keeps running nor keeps its channel open.
struct AbortOnDrop(Option<Running>);

impl AbortOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let (Some(running), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(running.abort());
        }
    }
}

/// Public-key authentication: the configured key file, else every key in the ssh-agent.
async fn authenticate(handle: &mut Handle<ClientHandler>, config: &SshConfig) -> Result<(), String> {
    match &config.key_file {
        Some(path) => authenticate_with_file(handle, &config.user, path).await,
        None => authenticate_with_agent(handle, &config.user).await,
    }
}

async fn authenticate_with_file(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    path: &Path,
) -> Result<(), String> {
    let key = russh::keys::load_secret_key(path, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => format!(
            "private key {} is passphrase-protected; load it into ssh-agent and leave \
             ansible_ssh_private_key_file unset",
            path.display()
        ),
        e => format!("cannot load private key {}: {e}", path.display()),
    })?;
    let described = format!("{} {}", key.algorithm(), key.public_key().fingerprint(HashAlg::Sha256));
    let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
    let result = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await
        .map_err(|e| format!("authentication failed: {}", describe(&e)))?;
    if result.success() {
        Ok(())
    } else {
        Err(format!("the server refused public key {} ({described}) for user {user}", path.display()))
    }
}

async fn authenticate_with_agent(handle: &mut Handle<ClientHandler>, user: &str) -> Result<(), String> {
    let mut agent = AgentClient::connect_env().await.map_err(|e| {
        format!(
            "no key file is set and the ssh-agent cannot be reached ({e}); set \
             ansible_ssh_private_key_file or start ssh-agent and export SSH_AUTH_SOCK"
        )
    })?;
    let identities =
        agent.request_identities().await.map_err(|e| format!("cannot list the ssh-agent's keys: {e}"))?;
    let mut tried = 0;
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        tried += 1;
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        match handle.authenticate_publickey_with(user, key, hash, &mut agent).await {
            Ok(result) if result.success() => return Ok(()),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "ssh-agent could not sign"),
        }
    }
    Err(format!("the server refused all {tried} ssh-agent key(s) for user {user}"))
}

/// For RSA keys, the strongest signature hash the server accepts (rsa-sha2-512/256), so
/// servers that disable SHA-1 `ssh-rsa` still take the key. Other keys need none.
async fn rsa_hash(handle: &Handle<ClientHandler>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    handle.best_supported_rsa_hash().await.ok().flatten().flatten()
}

/// Time since `start` in milliseconds, for logs.
pub(crate) fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tcp_tests {
    use super::*;

    /// A port that refuses at first (sshd restarting) is connected once it listens.
    #[tokio::test]
    async fn a_refused_connect_is_retried_until_the_port_listens() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
            listener.accept().await.map(drop)
        });
        let mut config = SshConfig::new("127.0.0.1", "root");
        config.port = port;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        assert!(tcp_connect(&config, deadline).await.is_ok(), "connected on a later attempt");
        listen.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_port_that_never_listens_fails_after_the_attempts() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = SshConfig::new("127.0.0.1", "root");
        config.port = port;
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let error = tcp_connect(&config, deadline).await.unwrap_err().unwrap();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
        // 250 + 500 + 1000 ms of backoff between the 4 attempts, then it gives up.
        assert!(started.elapsed() >= Duration::from_millis(1750));
    }
}
