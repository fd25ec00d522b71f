//! One authenticated SSH connection and the commands run over it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modules::{Exec, ExecOutput, HostError};
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
/// peer is noticed within about a minute even when no command is running.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

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

        let stream = tokio::time::timeout_at(
            deadline,
            TcpStream::connect((config.address.as_str(), config.port)),
        )
        .await
        .map_err(|_| timed_out("TCP connect"))?
        .map_err(|e| HostError::Unreachable(format!("{context}: TCP connect failed: {e}")))?;
        // Without it every small SSH packet waits for delayed ACKs: ~40 ms per command.
        stream.set_nodelay(true).map_err(|e| {
            HostError::Unreachable(format!("{context}: setting TCP_NODELAY failed: {e}"))
        })?;

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

        Ok(Self {
            handle,
            channels: Semaphore::new(config.max_channels.max(1)),
        })
    }

    /// True once the connection is gone (peer closed it, keepalives failed, or I/O error).
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Says goodbye to the server. Commands still running fail with a transport error.
    pub(crate) async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// Runs one command on its own channel. The timeout clock starts once the channel is open.
    pub(crate) async fn exec(
        &self,
        exec: Exec,
        timeout: Duration,
    ) -> Result<ExecOutput, HostError> {
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|_| HostError::Transport("connection is shutting down".to_owned()))?;
        let channel = self.open_channel().await?;
        let (mut reader, writer) = channel.split();
        let mut writer = KillOnDrop(Some(writer));
        let Some(tx) = writer.0.as_ref() else {
            return Err(HostError::Transport("channel writer missing".to_owned()));
        };

        let run = drive(tx, &mut reader, exec.command.into_bytes(), exec.stdin);
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(output)) => {
                writer.disarm();
                Ok(output)
            }
            // The channel failed mid-command; KillOnDrop still tries to stop the process.
            Ok(Err(e)) => Err(e),
            Err(_elapsed) => {
                tracing::debug!(
                    ?timeout,
                    "command timed out; sending KILL and closing the channel"
                );
                writer.kill_and_close().await;
                Err(HostError::Timeout(timeout))
            }
        }
    }

    /// Opens a session channel, retrying refusals (sshd `MaxSessions`) with backoff.
    async fn open_channel(&self) -> Result<russh::Channel<Msg>, HostError> {
        let mut backoff = CHANNEL_OPEN_FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.handle.channel_open_session().await {
                Ok(channel) => return Ok(channel),
                Err(russh::Error::ChannelOpenFailure(reason))
                    if attempt < CHANNEL_OPEN_ATTEMPTS =>
                {
                    tracing::debug!(
                        ?reason,
                        attempt,
                        ?backoff,
                        "server refused a channel; retrying"
                    );
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
                    return Err(HostError::Transport(format!(
                        "opening a channel failed: {}",
                        describe(&e)
                    )));
                }
            }
        }
    }
}

/// Starts `command`, feeds it `stdin` then EOF, and collects its output until the server
/// closes the channel. Reading and writing run together: russh delivers incoming data through
/// a bounded queue, and a full queue stalls the whole connection, including the window
/// adjustments our own writes wait for.
async fn drive(
    tx: &ChannelWriteHalf<Msg>,
    rx: &mut ChannelReadHalf,
    command: Vec<u8>,
    stdin: Option<Vec<u8>>,
) -> Result<ExecOutput, HostError> {
    tx.exec(true, command).await.map_err(|e| {
        HostError::Transport(format!("sending the command failed: {}", describe(&e)))
    })?;

    let write = async {
        if let Some(bytes) = stdin.filter(|b| !b.is_empty()) {
            tx.data_bytes(bytes).await?;
        }
        // Always: commands that read stdin (`cat`) end only on EOF.
        tx.eof().await
    };
    let read = async {
        let mut output = ExecOutput::default();
        let mut signal = None;
        loop {
            match rx.wait().await {
                Some(ChannelMsg::Data { data }) => output.stdout.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    output.stderr.extend_from_slice(&data)
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => output.status = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => signal = Some(signal_name),
                Some(ChannelMsg::Failure) => {
                    return Err(HostError::Transport(
                        "the server refused to run the command".to_owned(),
                    ));
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

/// The write half of a running command's channel. Dropped while armed (the exec future was
/// cancelled, or the channel failed), it KILLs the remote command and closes the channel from
/// a spawned task, so an abandoned command neither keeps running nor keeps its channel open.
struct KillOnDrop(Option<ChannelWriteHalf<Msg>>);

impl KillOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }

    async fn kill_and_close(&mut self) {
        if let Some(tx) = self.0.take() {
            kill_and_close(&tx).await;
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let (Some(tx), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move { kill_and_close(&tx).await });
        }
    }
}

/// OpenSSH's sshd (7.9+) delivers a `signal` request with `killpg` on the command's process
/// group, which takes children like `sh -c 'sleep 30'` with it. Servers that do not support
/// it ignore the request; closing the channel then only closes the command's pipes.
async fn kill_and_close(tx: &ChannelWriteHalf<Msg>) {
    let _ = tx.signal(Sig::KILL).await;
    let _ = tx.close().await;
}

/// Public-key authentication: the configured key file, else every key in the ssh-agent.
async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    config: &SshConfig,
) -> Result<(), String> {
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
    let described = format!(
        "{} {}",
        key.algorithm(),
        key.public_key().fingerprint(HashAlg::Sha256)
    );
    let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
    let result = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await
        .map_err(|e| format!("authentication failed: {}", describe(&e)))?;
    if result.success() {
        Ok(())
    } else {
        Err(format!(
            "the server refused public key {} ({described}) for user {user}",
            path.display()
        ))
    }
}

async fn authenticate_with_agent(
    handle: &mut Handle<ClientHandler>,
    user: &str,
) -> Result<(), String> {
    let mut agent = AgentClient::connect_env().await.map_err(|e| {
        format!(
            "no key file is set and the ssh-agent cannot be reached ({e}); set \
             ansible_ssh_private_key_file or start ssh-agent and export SSH_AUTH_SOCK"
        )
    })?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| format!("cannot list the ssh-agent's keys: {e}"))?;
    let mut tried = 0;
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        tried += 1;
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(result) if result.success() => return Ok(()),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "ssh-agent could not sign"),
        }
    }
    Err(format!(
        "the server refused all {tried} ssh-agent key(s) for user {user}"
    ))
}

/// For RSA keys, the strongest signature hash the server accepts (rsa-sha2-512/256), so
/// servers that disable SHA-1 `ssh-rsa` still take the key. Other keys need none.
async fn rsa_hash(handle: &Handle<ClientHandler>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}

/// Time since `start` in milliseconds, for logs.
pub(crate) fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}
