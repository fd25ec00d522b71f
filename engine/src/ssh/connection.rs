//! One authenticated SSH connection and the commands run over it.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Exec, ExecOutput, HostError, Stream};
use russh::client::{self, Handle, Msg};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Preferred, Sig};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::client_handler::ClientHandler;
use super::error::{SshError, describe};
use super::jump::JumpPool;
use super::known_hosts::KnownHosts;
use super::{Jump, SshConfig};
use crate::elevate::Become;

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
/// Bound for killing a command that must stop and waiting for its channel to close, together.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes kept per stream of the kill command itself (it prints a line at most).
const KILL_OUTPUT: u64 = 64 * 1024;

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

/// Host certificate types offered, most preferred first, when `known_hosts` trusts an
/// authority for the host.
const CERTIFICATE_ALGORITHMS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 },
    Algorithm::Ecdsa { curve: EcdsaCurve::NistP384 },
    Algorithm::Ecdsa { curve: EcdsaCurve::NistP521 },
    Algorithm::Rsa { hash: Some(HashAlg::Sha512) },
    Algorithm::Rsa { hash: Some(HashAlg::Sha256) },
];

/// russh's defaults, asking the server for a host certificate (before a plain key) only when
/// an `@cert-authority` line of `known_hosts` matches the host: a certificate can only be
/// trusted through one, and without one a plain key is what `known_hosts` can check.
pub(crate) fn preferred_algorithms(config: &SshConfig) -> Preferred {
    let trusts_an_authority = KnownHosts::load(&config.known_hosts)
        .is_ok_and(|known| known.has_authority_for(&config.address, config.port));
    let certificates = if trusts_an_authority { CERTIFICATE_ALGORITHMS } else { &[] };
    Preferred { host_key_certificates: Cow::Borrowed(certificates), ..Preferred::default() }
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
    channels: Arc<Semaphore>,
    /// Commands, and their kills, run as another user this way ([`SshConfig::become_`]).
    become_: Option<Become>,
    /// The user logged in, and the address, for become's messages.
    login: String,
    address: String,
    /// Bytes kept per output stream of one command ([`SshConfig::max_output`]).
    max_output: u64,
    /// The host sessions of `--transport session` (see [`super::session`]).
    sessions: super::session::Pool,
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
    /// Connects (through `config.jumps`, sharing the hop connections in `jumps`), checks the
    /// host key and authenticates, all within `config.connect_timeout`. `context` prefixes
    /// error messages (`host (user@address:port)`); a hop's failure names the hop.
    pub(crate) async fn open(config: &SshConfig, context: &str, jumps: &JumpPool) -> Result<Self, HostError> {
        let deadline = tokio::time::Instant::now() + config.connect_timeout;
        let handle = match config.jumps.last() {
            None => connect_direct(config, deadline).await,
            Some(last) => match jumps.reach(&config.jumps, deadline).await {
                Ok(via) => match tunnel(&via, last, config, deadline).await {
                    Ok(stream) => handshake(stream, config, deadline).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
        }
        .map_err(|cause| HostError::Unreachable(format!("{context}: {cause}")))?;
        Ok(Self {
            handle,
            channels: Arc::new(Semaphore::new(config.max_channels.max(1))),
            sessions: super::session::Pool::new(config.max_channels),
            become_: config.become_(),
            login: config.user.clone(),
            address: config.address.clone(),
            max_output: config.max_output,
        })
    }

    /// True once the connection is gone (peer closed it, keepalives failed, or I/O error).
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Runs `true` through become once, so that a method that cannot start commands (a wrong
    /// or missing password, a doas rule that wants a password) fails the host once, with a
    /// clear reason, before any of its tasks run, and is not tried again for each command
    /// (a wrong password is sent once: no retries against sudo's or PAM's lockout).
    /// `host` names the host in the reason.
    pub(crate) async fn check_become(
        self: &Arc<Self>,
        host: &str,
        timeout: Duration,
    ) -> Result<(), HostError> {
        let Some(become_) = &self.become_ else { return Ok(()) };
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|_| HostError::Transport("connection is shutting down".to_owned()))?;
        let (mut rx, tx) = self.open_channel().await?.split();
        let mut started = Started::default();
        let mut pid = None;
        let run = drive(
            &tx,
            &mut rx,
            &mut pid,
            wrap("true", Some(become_)),
            None,
            KILL_OUTPUT,
            self.exchange(),
            &mut started,
        );
        let output = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(output)) => output,
            Ok(Err(Drive::Failed(e))) => return Err(e),
            Ok(Err(Drive::TooMuch(stream))) => {
                return Err(HostError::Unreachable(format!(
                    "{} on {host}: printed too much on {stream} while starting a shell",
                    become_.method
                )));
            }
            Err(_) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
                return Err(HostError::Unreachable(format!(
                    "{} on {host}: starting a shell as {} did not finish within {timeout:?}",
                    become_.method, become_.user
                )));
            }
        };
        if started.shell && output.success() {
            tracing::debug!(host, method = %become_.method, user = %become_.user, asked = started.asked, "become works");
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(HostError::Unreachable(become_.failure(host, &self.login, started.asked, output.status, &stderr)))
    }

    /// The password exchange of this connection's commands, when become asks for one.
    fn exchange(&self) -> Option<Exchange> {
        let become_ = self.become_.as_ref()?;
        Some(Exchange { prompt: become_.prompt()?, password: become_.password.as_ref().map(|p| p.line()) })
    }

    /// Says goodbye to the server. Commands still running fail with a transport error.
    pub(crate) async fn disconnect(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }

    /// Runs one command on its own channel. The timeout clock starts once the channel is open.
    /// A command that times out or prints more than `max_output` on a stream is killed (see
    /// [`Running::abort`]) before this returns; when the kill fails the error says so.
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

        let command = wrap(&exec.command, self.become_.as_ref());
        let mut started = Started::default();
        let run = drive(
            &parts.tx,
            &mut parts.rx,
            &mut parts.pid,
            command,
            exec.stdin,
            self.max_output,
            self.exchange(),
            &mut started,
        );
        let cause = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(output)) => {
                running.disarm();
                // Become asked again after the check at connect (the password changed since):
                // the command never ran.
                if let Some(become_) = &self.become_
                    && !started.shell
                    && started.asked > 0
                {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    return Err(HostError::Unreachable(become_.failure(
                        &self.address,
                        &self.login,
                        started.asked,
                        output.status,
                        &stderr,
                    )));
                }
                return Ok(output);
            }
            // The channel failed mid-command; AbortOnDrop still tries to stop the process.
            // A connection that died with it (the host went away) makes the host unreachable.
            Ok(Err(Drive::Failed(e))) if self.is_closed() => {
                return Err(HostError::Unreachable(format!(
                    "the connection was lost while the command ran ({e})"
                )));
            }
            Ok(Err(Drive::Failed(e))) => return Err(e),
            Ok(Err(Drive::TooMuch(stream))) => {
                let command = super::shown::without_env_values(&exec.command).into_owned();
                HostError::OutputLimit { command, stream, limit: self.max_output }
            }
            Err(_elapsed) => HostError::Timeout(timeout),
        };
        let Some(parts) = running.0.take() else {
            return Err(cause);
        };
        tracing::debug!(pid = parts.pid, cause = %cause, "stopping the command");
        match parts.abort().await {
            Ok(()) => Err(cause),
            Err(reason) => Err(HostError::NotStopped { cause: Box::new(cause), reason }),
        }
    }

    /// Kills process group `pgid` from a channel of its own (see [`Running::abort`]), as the
    /// user the command runs as. Takes no channel permit: it runs while the command that must
    /// stop still holds one. `Err`: why the kill failed, for the user.
    pub(super) async fn kill_process_group(&self, pgid: u32) -> Result<(), String> {
        let (mut rx, tx) = self.open_channel().await.map_err(|e| e.to_string())?.split();
        let command = kill_command(pgid, self.become_.as_ref());
        let mut pid = None;
        let mut started = Started::default();
        let output = drive(
            &tx,
            &mut rx,
            &mut pid,
            command.clone().into_bytes(),
            None,
            KILL_OUTPUT,
            self.exchange(),
            &mut started,
        )
        .await
        .map_err(|e| match e {
            Drive::Failed(e) => format!("`{command}` could not run: {e}"),
            Drive::TooMuch(stream) => format!("`{command}` printed too much on {stream}"),
        })?;
        if !output.success() {
            let status = output.status.map_or_else(|| "a signal".to_owned(), |s| format!("status {s}"));
            return Err(format!("`{command}` exited with {status}: {}", output.stderr_tail(3)));
        }
        tracing::debug!(pgid, "killed process group");
        Ok(())
    }

    /// The host sessions of this connection.
    pub(super) fn sessions(&self) -> &super::session::Pool {
        &self.sessions
    }

    /// One of the connection's channel slots, held by a session for its life.
    pub(super) async fn channel_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HostError> {
        Arc::clone(&self.channels)
            .acquire_owned()
            .await
            .map_err(|_| HostError::Transport("connection is shutting down".to_owned()))
    }

    /// Bytes kept per output stream of one command.
    pub(super) fn max_output(&self) -> u64 {
        self.max_output
    }

    /// How commands become another user, when they do.
    pub(super) fn become_(&self) -> Option<&Become> {
        self.become_.as_ref()
    }

    /// True when a host session can run this connection's commands: no become password
    /// exchange is needed (a password, or `su`, which always asks, use the exec path).
    pub(super) fn sessions_possible(&self) -> bool {
        self.exchange().is_none()
    }

    /// Opens a session channel, retrying refusals (sshd `MaxSessions`) with backoff.
    pub(super) async fn open_channel(&self) -> Result<russh::Channel<Msg>, HostError> {
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

/// The message for a phase that ran past the connect timeout.
fn timed_out(config: &SshConfig, phase: &str) -> String {
    format!("{phase} timed out (connect timeout {:?})", config.connect_timeout)
}

/// TCP to `config`'s address, then [`handshake`]. `Err`: the reason, for the user.
pub(crate) async fn connect_direct(
    config: &SshConfig,
    deadline: tokio::time::Instant,
) -> Result<Handle<ClientHandler>, String> {
    let stream = tcp_connect(config, deadline).await.map_err(|e| match e {
        None => timed_out(config, "TCP connect"),
        Some(e) => format!("TCP connect failed: {e}"),
    })?;
    // Without it every small SSH packet waits for delayed ACKs: ~40 ms per command.
    stream.set_nodelay(true).map_err(|e| format!("setting TCP_NODELAY failed: {e}"))?;
    handshake(stream, config, deadline).await
}

/// A `direct-tcpip` channel from jump host `via` (reached as `hop`) to `config`'s address:
/// the byte stream the next SSH connection runs over. The hop connects it (and resolves the
/// name): a refusal names the hop.
pub(crate) async fn tunnel(
    via: &Handle<ClientHandler>,
    hop: &Jump,
    config: &SshConfig,
    deadline: tokio::time::Instant,
) -> Result<russh::ChannelStream<Msg>, String> {
    let open = via.channel_open_direct_tcpip(config.address.clone(), u32::from(config.port), "127.0.0.1", 0);
    match tokio::time::timeout_at(deadline, open).await {
        Err(_) => Err(format!("{}: {}", hop.context(), timed_out(config, "opening the tunnel"))),
        Ok(Err(e)) => Err(format!(
            "{}: the jump host could not connect to {} ({})",
            hop.context(),
            config.endpoint(),
            match e {
                russh::Error::ChannelOpenFailure(reason) => format!("{reason:?}"),
                other => describe(&other),
            }
        )),
        Ok(Ok(channel)) => Ok(channel.into_stream()),
    }
}

/// Key exchange, host-key check and authentication over `stream`, before `deadline`.
pub(crate) async fn handshake<S>(
    stream: S,
    config: &SshConfig,
    deadline: tokio::time::Instant,
) -> Result<Handle<ClientHandler>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let russh_config = Arc::new(client::Config {
        preferred: preferred_algorithms(config),
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
    .map_err(|_| timed_out(config, "SSH handshake"))?
    .map_err(|e: SshError| e.message())?;
    authenticate(&mut handle, config, deadline).await?;
    Ok(handle)
}

/// The first line every command prints: `engine-pid:<process group of its shell>`. Stripped
/// from stdout by [`drive`].
const PID_MARKER: &[u8] = b"engine-pid:";

/// The line that prints the [`PID_MARKER`] line: the process group of the shell that runs the
/// command, read from `/proc/self/stat` (its 5th field; the shell's name there has no spaces),
/// else the shell's pid. Without become, sshd makes that shell a session leader, so both are
/// the same. Under sudo the shell may sit in the login shell's group or, with sudo's
/// `use_pty`, lead a group of its own on a pty: the group read from /proc is right either way.
const REPORT_PGID: &str = "engine_pgid=$$; read -r _ _ _ _ engine_pgid _ 2>/dev/null </proc/self/stat; \
     printf 'engine-pid:%s\\n' \"$engine_pgid\"";

/// `command` preceded by the line that reports its process group, run as `become_user` when
/// there is one. The command itself is untouched and runs in the same shell, so `exit`, `$?`
/// and `set -e` behave as written.
fn wrap(command: &str, become_: Option<&Become>) -> Vec<u8> {
    let script = format!("{REPORT_PGID}\n{command}");
    match become_ {
        Some(become_) => become_.command_line(&script),
        None => script,
    }
    .into_bytes()
}

/// The command that kills process group `pgid` (every process in it, `SIGKILL`), as
/// `become_user` when there is one: the user the command runs as, who may signal its processes.
///
/// A group that is already gone counts as stopped: the command may end on its own between the
/// moment it is judged (too much output, its timeout) and the kill. The shell tells the two
/// failures of `kill` apart (`ESRCH`, nothing left, against `EPERM`, processes it may not
/// signal) by the C locale's message, and answers with its exit status alone: 0 stopped or
/// gone, 1 not stopped, with `kill`'s own words on stderr.
fn kill_command(pgid: u32, become_: Option<&Become>) -> String {
    let kill = format!(
        "said=$(LC_ALL=C; export LC_ALL; kill -s KILL -- -{pgid} 2>&1) || case $said in \
         *'No such process'*) ;; *) printf '%s\\n' \"$said\" >&2; exit 1 ;; esac"
    );
    match become_ {
        Some(become_) => become_.command_line(&kill),
        None => kill,
    }
}

/// A command's become password exchange (see [`crate::elevate`]): when `prompt` appears on
/// stderr before the command's shell has started, `password` is written (once; a second
/// prompt means it was refused, and stdin is closed instead). Without a password, a prompt
/// closes stdin at once.
struct Exchange {
    prompt: &'static [u8],
    password: Option<Vec<u8>>,
}

/// What [`drive`] saw of become: how often the method asked for the password, and whether the
/// command's shell started (its marker line, or any first line, arrived).
#[derive(Debug, Default)]
struct Started {
    asked: u32,
    shell: bool,
}

/// What the writer of [`drive`] is told to send, by its reader.
enum Feed {
    Password,
    Stdin,
    Eof,
}

/// Why [`drive`] stopped before the command ended.
enum Drive {
    /// The channel or the connection failed.
    Failed(HostError),
    /// The command printed more than the limit on this stream; the rest was not read.
    TooMuch(Stream),
}

impl From<HostError> for Drive {
    fn from(error: HostError) -> Self {
        Drive::Failed(error)
    }
}

/// Appends `data` to `buf`, unless that would make it longer than `limit`.
fn keep(buf: &mut Vec<u8>, data: &[u8], limit: u64, stream: Stream) -> Result<(), Drive> {
    if (buf.len() as u64).saturating_add(data.len() as u64) > limit {
        return Err(Drive::TooMuch(stream));
    }
    buf.extend_from_slice(data);
    Ok(())
}

/// Starts `command`, feeds it `stdin` then EOF, and collects its output until the server
/// closes the channel; sets `pid` as soon as the [`PID_MARKER`] line arrives. Keeps at most
/// `limit` bytes of each stream: past that it stops with [`Drive::TooMuch`] and the caller must
/// stop the command. Reading and writing run together: russh delivers incoming data through a
/// bounded queue, and a full queue stalls the whole connection, including the window
/// adjustments our writes wait for.
#[allow(clippy::too_many_arguments)]
async fn drive(
    tx: &ChannelWriteHalf<Msg>,
    rx: &mut ChannelReadHalf,
    pid: &mut Option<u32>,
    command: Vec<u8>,
    stdin: Option<Vec<u8>>,
    limit: u64,
    exchange: Option<Exchange>,
    started: &mut Started,
) -> Result<ExecOutput, Drive> {
    tx.exec(true, command)
        .await
        .map_err(|e| HostError::Transport(format!("sending the command failed: {}", describe(&e))))?;

    // Without an exchange stdin goes at once; with one, the reader says when (see `Feed`).
    // Unbounded: at most three messages are ever sent.
    let (feed, mut fed) = tokio::sync::mpsc::unbounded_channel();
    let password = exchange.as_ref().and_then(|e| e.password.clone());
    if exchange.is_none() {
        let _ = feed.send(Feed::Stdin);
    }
    let write = async {
        let mut stdin = stdin;
        let mut password = password;
        while let Some(next) = fed.recv().await {
            match next {
                Feed::Password => {
                    if let Some(line) = password.take() {
                        tx.data_bytes(line).await?;
                    }
                }
                Feed::Stdin => {
                    if let Some(bytes) = stdin.take().filter(|b| !b.is_empty()) {
                        tx.data_bytes(bytes).await?;
                    }
                    break;
                }
                Feed::Eof => break,
            }
        }
        // Always: commands that read stdin (`cat`) end only on EOF.
        tx.eof().await
    };
    let read = async {
        let mut output = ExecOutput::default();
        // Stdout until the marker line is complete (at most 33 bytes, see `strip_pid_line`);
        // `None` afterwards.
        let mut head = Some(Vec::new());
        let mut signal = None;
        // With an exchange: stderr from before the shell started (the method's prompts and
        // messages), scanned for prompts, and how many of them were already answered.
        let mut before = Vec::new();
        loop {
            match rx.wait().await {
                Some(ChannelMsg::Data { data }) => match head.as_mut() {
                    Some(buf) => {
                        buf.extend_from_slice(&data);
                        if let Some(rest) = strip_pid_line(buf, pid) {
                            keep(&mut output.stdout, rest, limit, Stream::Stdout)?;
                            head = None;
                            started.shell = true;
                            if let Some(exchange) = &exchange {
                                // What the method said up to its last prompt is not the command's.
                                let after = last_prompt_end(&before, exchange.prompt).unwrap_or(0);
                                keep(&mut output.stderr, &before[after..], limit, Stream::Stderr)?;
                                before.clear();
                                let _ = feed.send(Feed::Stdin);
                            }
                        }
                    }
                    None => keep(&mut output.stdout, &data, limit, Stream::Stdout)?,
                },
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => match &exchange {
                    Some(exchange) if head.is_some() => {
                        if (before.len() as u64).saturating_add(data.len() as u64) > limit {
                            return Err(Drive::TooMuch(Stream::Stderr));
                        }
                        before.extend_from_slice(&data);
                        let asked = count(&before, exchange.prompt);
                        if asked > started.asked {
                            started.asked = asked;
                            let next = if asked == 1 && exchange.password.is_some() {
                                Feed::Password
                            } else {
                                // No password to give, or it was refused: one attempt only.
                                Feed::Eof
                            };
                            let _ = feed.send(next);
                        }
                    }
                    _ => keep(&mut output.stderr, &data, limit, Stream::Stderr)?,
                },
                Some(ChannelMsg::ExitStatus { exit_status }) => output.status = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => signal = Some(signal_name),
                Some(ChannelMsg::Failure) => {
                    return Err(
                        HostError::Transport("the server refused to run the command".to_owned()).into()
                    );
                }
                Some(ChannelMsg::Close) => break,
                Some(_) => {}
                None if output.status.is_some() || signal.is_some() => break,
                None => {
                    return Err(HostError::Transport(
                        "the connection closed while the command ran".to_owned(),
                    )
                    .into());
                }
            }
        }
        if let Some(buf) = head {
            // The shell died before printing a whole marker line; keep whatever it printed.
            // (Stdout is still empty then: it only fills after the marker line.)
            keep(&mut output.stdout, &buf, limit, Stream::Stdout)?;
            // And what the become method said (never the password: it is only ever written).
            keep(&mut output.stderr, &before, limit, Stream::Stderr)?;
        } else {
            started.shell = true;
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

/// How many times `prompt` occurs in `text` (not overlapping).
fn count(text: &[u8], prompt: &[u8]) -> u32 {
    let mut n = 0;
    let mut rest = text;
    while let Some(at) = find(rest, prompt) {
        n += 1;
        rest = &rest[at + prompt.len()..];
    }
    n
}

/// Where the last `prompt` in `text` ends, and the line break after it if any.
fn last_prompt_end(text: &[u8], prompt: &[u8]) -> Option<usize> {
    let mut end = None;
    let mut from = 0;
    while let Some(at) = find(&text[from..], prompt) {
        from += at + prompt.len();
        end = Some(from);
    }
    end.map(|e| if text.get(e) == Some(&b'\n') { e + 1 } else { e })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
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
    /// Stops the remote command and closes its channel. `Err`: why the command could not be
    /// stopped, or why it is not known to have been (it may still be running).
    ///
    /// The `signal` channel request would be the protocol's way, but OpenSSH's sshd refuses it
    /// for root logins (no privilege separation after auth: "session signalling requires
    /// privilege separation"), and closing the channel only closes the command's pipes. So
    /// the process group from the marker line is killed with `kill -s KILL -- -PGID` on a
    /// second channel, as the user the command runs as (through the same sudo under become),
    /// and the kill's exit status is checked. Meanwhile whatever the command still prints is
    /// read and dropped: unread, it would fill russh's queue and stall the whole connection,
    /// the kill's channel included. Without a pid (the shell had not started yet) a `signal`
    /// request is all that can be tried, and it is reported as not known to have worked.
    async fn abort(mut self) -> Result<(), String> {
        // One bound for all of it: over a dead link even opening the kill channel never ends.
        let deadline = tokio::time::Instant::now() + KILL_TIMEOUT;
        let Some(pgid) = self.pid else {
            let _ = tokio::time::timeout_at(deadline, self.tx.signal(Sig::KILL)).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.close()).await;
            return Err("its process group was not known yet (its shell had not reported it), so only \
                        a KILL signal request was sent, which sshd may refuse"
                .to_owned());
        };
        let connection = Arc::clone(&self.connection);
        let kill = tokio::time::timeout_at(deadline, connection.kill_process_group(pgid));
        tokio::pin!(kill);
        let mut closed = false;
        let killed = loop {
            tokio::select! {
                result = &mut kill => break result,
                message = self.rx.wait(), if !closed => {
                    closed = matches!(message, Some(ChannelMsg::Close) | None);
                }
            }
        };
        let result = match killed {
            Ok(result) => result,
            Err(_) => Err(format!("killing its process group {pgid} took longer than {KILL_TIMEOUT:?}")),
        };
        // Once the command is dead the server closes the channel itself (and russh answers).
        // Closing it from our side first would race with that close: russh then never hands
        // us the server's close, and sshd keeps a channel whose command still runs open anyway.
        if result.is_ok() && !closed {
            closed = tokio::time::timeout_at(deadline, wait_for_close(&mut self.rx)).await.is_ok();
        }
        if !closed {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.close()).await;
        }
        result
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
        let Some(running) = self.0.take() else { return };
        if running.connection.is_closed() {
            // The host went away with the connection: there is no channel left to kill from.
            tracing::debug!(pid = running.pid, "the connection is gone; the command cannot be stopped");
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Nobody waits for this command any more: its kill's failure can only be logged.
                if let Err(reason) = running.abort().await {
                    tracing::warn!(%reason, "an abandoned command could not be stopped");
                }
            });
        }
    }
}

/// Public-key authentication: the configured key file, else every key in the ssh-agent.
/// Authenticates with public keys, offering them as [`SshConfig::identity_files`] says
/// ([`key_plan`]), one at a time, so sshd's `MaxAuthTries` (6) counts only keys worth trying.
/// A passphrase-protected file the agent does not hold is unlocked by [`SshConfig::keys`]
/// (asked once per run); time spent waiting for the user does not count against `deadline`.
async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    config: &SshConfig,
    deadline: tokio::time::Instant,
) -> Result<(), String> {
    let mut deadline = deadline;
    let user = config.user.as_str();
    let mut agent = AgentClient::connect_env().await.ok();
    let agent_keys: Vec<PublicKey> = match agent.as_mut() {
        Some(agent) => bounded(deadline, config, agent.request_identities())
            .await?
            .map_err(|e| format!("cannot list the ssh-agent's keys: {e}"))?
            .into_iter()
            .filter_map(|identity| match identity {
                AgentIdentity::PublicKey { key, .. } => Some(key),
                AgentIdentity::Certificate { .. } => None,
            })
            .collect(),
        None => Vec::new(),
    };
    let files = key_files(config);
    let plan = key_plan(&files, config.identities_only, &agent_keys, &default_key_files());
    let mut refused = Vec::new();
    let mut problems = Vec::new();
    for offer in plan {
        let (key, described) = match offer {
            Offer::Agent(key) => {
                let described = format!("ssh-agent key {}", fingerprint(&key));
                let Some(agent) = agent.as_mut() else { continue };
                let hash = bounded(deadline, config, rsa_hash(handle, key.algorithm().is_rsa())).await?;
                let signed = handle.authenticate_publickey_with(user, key, hash, agent);
                match bounded(deadline, config, signed).await? {
                    Ok(result) if result.success() => return Ok(()),
                    Ok(_) => refused.push(described),
                    Err(e) => problems.push(format!("the ssh-agent could not sign with {described}: {e}")),
                }
                continue;
            }
            Offer::File(path) => match load_key(&path) {
                Ok(LoadedKey::Plain(key)) => {
                    let described = format!("{} ({})", path.display(), fingerprint(key.public_key()));
                    (Arc::new(*key), described)
                }
                Ok(LoadedKey::Encrypted(public)) => {
                    let held =
                        public.filter(|public| agent_keys.iter().any(|k| k.key_data() == public.key_data()));
                    match (agent.as_mut(), held) {
                        (Some(agent), Some(public)) => {
                            let described = format!("{} (from the ssh-agent)", path.display());
                            let hash =
                                bounded(deadline, config, rsa_hash(handle, public.algorithm().is_rsa()))
                                    .await?;
                            let signed = handle.authenticate_publickey_with(user, public, hash, agent);
                            match bounded(deadline, config, signed).await? {
                                Ok(result) if result.success() => return Ok(()),
                                Ok(_) => refused.push(described),
                                Err(e) => {
                                    problems
                                        .push(format!("the ssh-agent could not sign with {described}: {e}"));
                                }
                            }
                            continue;
                        }
                        _ => {
                            let waiting = tokio::time::Instant::now();
                            let unlocked = config.keys.0.unlock(&path).await;
                            deadline += waiting.elapsed();
                            match unlocked {
                                Ok(key) => {
                                    let described =
                                        format!("{} ({})", path.display(), fingerprint(key.public_key()));
                                    (key, described)
                                }
                                Err(why) => {
                                    problems.push(why);
                                    continue;
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            },
        };
        let hash = bounded(deadline, config, rsa_hash(handle, key.algorithm().is_rsa())).await?;
        let result = bounded(
            deadline,
            config,
            handle.authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash)),
        )
        .await?
        .map_err(|e| format!("authentication failed: {}", describe(&e)))?;
        if result.success() {
            return Ok(());
        }
        refused.push(described);
    }
    let mut parts = Vec::new();
    if !refused.is_empty() {
        parts.push(format!("the server refused public key(s) {} for user {user}", refused.join(", ")));
    }
    parts.extend(problems);
    if parts.is_empty() {
        parts.push(if files.is_empty() {
            "no key to offer: the ssh-agent holds none (or SSH_AUTH_SOCK is unset) and there is no \
             ~/.ssh/id_ed25519, id_ecdsa or id_rsa; set ansible_ssh_private_key_file or IdentityFile"
                .to_owned()
        } else {
            "no key to offer".to_owned()
        });
    }
    Err(parts.join("; "))
}

/// `future`, unless `deadline` passes first: then the authentication timed out.
async fn bounded<T>(
    deadline: tokio::time::Instant,
    config: &SshConfig,
    future: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    tokio::time::timeout_at(deadline, future).await.map_err(|_| timed_out(config, "authentication"))
}

/// The key files configured for the host: `key_file` (the inventory's), then `identity_files`.
fn key_files(config: &SshConfig) -> Vec<std::path::PathBuf> {
    config.key_file.iter().chain(&config.identity_files).fold(Vec::new(), |mut files, path| {
        if !files.contains(path) {
            files.push(path.clone());
        }
        files
    })
}

/// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`: the files ssh tries when none is configured.
fn default_key_files() -> Vec<std::path::PathBuf> {
    let ssh = std::env::home_dir().unwrap_or_default().join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"].iter().map(|name| ssh.join(name)).filter(|p| p.exists()).collect()
}

/// One key to offer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Offer {
    /// A key the agent holds, signed by the agent.
    Agent(PublicKey),
    /// A key file (its agent copy is used when it is passphrase-protected).
    File(std::path::PathBuf),
}

/// Which keys to offer, in order. With key files or `identities_only`: only the files (the
/// defaults when none is configured); an agent key is used only as the copy of one of them.
/// Otherwise: every agent key, then the default files, as ssh does.
fn key_plan(
    files: &[std::path::PathBuf],
    identities_only: bool,
    agent_keys: &[PublicKey],
    defaults: &[std::path::PathBuf],
) -> Vec<Offer> {
    if files.is_empty() && !identities_only {
        agent_keys
            .iter()
            .cloned()
            .map(Offer::Agent)
            .chain(defaults.iter().cloned().map(Offer::File))
            .collect()
    } else if files.is_empty() {
        defaults.iter().cloned().map(Offer::File).collect()
    } else {
        files.iter().cloned().map(Offer::File).collect()
    }
}

enum LoadedKey {
    Plain(Box<russh::keys::PrivateKey>),
    /// Passphrase-protected: its public half (from the file, else `FILE.pub`), if readable.
    Encrypted(Option<PublicKey>),
}

fn load_key(path: &Path) -> Result<LoadedKey, String> {
    match russh::keys::load_secret_key(path, None) {
        Ok(key) => Ok(LoadedKey::Plain(Box::new(key))),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let from_file = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| russh::keys::PrivateKey::from_openssh(text.trim()).ok())
                .map(|key| key.public_key().clone());
            let public = from_file.or_else(|| {
                let mut pub_path = path.as_os_str().to_owned();
                pub_path.push(".pub");
                russh::keys::load_public_key(std::path::PathBuf::from(pub_path)).ok()
            });
            Ok(LoadedKey::Encrypted(public))
        }
        Err(e) => Err(format!("cannot load private key {}: {e}", path.display())),
    }
}

/// `ALGORITHM SHA256:...`, how a key is named in messages.
fn fingerprint(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256))
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
mod stop_tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    /// What the marker line says when `script` runs in a shell started by a shell that leads
    /// its own process group (as sudo's child does without `use_pty`).
    fn marker_of_nested_shell() -> (u32, String) {
        let inner = String::from_utf8(wrap("true", None)).unwrap();
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("echo $$; sh -c {}", contract::shell::quote(&inner)))
            .process_group(0)
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let (leader, marker) = text.split_once('\n').unwrap();
        (leader.parse().unwrap(), marker.trim_end().to_owned())
    }

    /// Under become the shell that prints the marker is not the session leader: the marker
    /// must name the group it runs in (the one to kill), not its own pid.
    #[test]
    fn the_marker_names_the_process_group_not_the_shell() {
        let (leader, marker) = marker_of_nested_shell();
        assert_eq!(marker, format!("engine-pid:{leader}"));
    }

    #[test]
    fn under_become_the_marker_is_printed_inside_sudo() {
        let root = Become::sudo("root");
        let line = String::from_utf8(wrap("sleep 300", Some(&root))).unwrap();
        let script = format!("{REPORT_PGID}\nsleep 300");
        assert_eq!(line, root.command_line(&script));
        assert!(line.starts_with("sudo -n -H -u 'root' -- sh -c 'engine_pgid=$$;"), "{line}");
        assert_eq!(String::from_utf8(wrap("true", None)).unwrap(), format!("{REPORT_PGID}\ntrue"));
    }

    #[test]
    fn the_kill_runs_as_the_become_user_and_takes_the_whole_group() {
        let kill = kill_command(42, None);
        assert!(kill.contains("kill -s KILL -- -42 2>&1"), "{kill}");
        assert_eq!(kill_command(42, Some(&Become::sudo("root"))), Become::sudo("root").command_line(&kill));
        // The shell's own `kill` takes that form and kills every process of the group.
        let mut group = std::process::Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let status = std::process::Command::new("sh").arg("-c").arg(kill_command(group.id(), None)).status();
        assert!(status.unwrap().success());
        assert!(group.wait().unwrap().code().is_none(), "killed by a signal");
        // A group that is gone already (the command ended before the kill) counts as stopped.
        let status = std::process::Command::new("sh").arg("-c").arg(kill_command(group.id(), None)).status();
        assert!(status.unwrap().success());
        // A kill the shell cannot make fails with kill's own words: here, no group id at all.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(kill_command(0, None).replace("-- -0", "-- -x"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(!out.stderr.is_empty());
    }

    #[test]
    fn prompts_are_counted_and_what_follows_the_last_is_the_commands() {
        let prompt = crate::elevate::SUDO_PROMPT.as_bytes();
        let said = b"lecture\n[engine-become-password]Sorry, try again.\n[engine-become-password]";
        assert_eq!(count(said, prompt), 2);
        assert_eq!(count(b"nothing", prompt), 0);
        assert_eq!(last_prompt_end(said, prompt), Some(said.len()));
        let text = b"[engine-become-password]\nwarning: x\n";
        assert_eq!(&text[last_prompt_end(text, prompt).unwrap()..], b"warning: x\n");
    }

    #[test]
    fn output_is_kept_up_to_the_limit_and_not_a_byte_more() {
        let mut buf = Vec::new();
        assert!(keep(&mut buf, &[1; 6], 10, Stream::Stdout).is_ok());
        assert!(keep(&mut buf, &[2; 4], 10, Stream::Stdout).is_ok());
        assert!(matches!(keep(&mut buf, &[3], 10, Stream::Stderr), Err(Drive::TooMuch(Stream::Stderr))));
        assert_eq!(buf.len(), 10, "the refused chunk was not kept");
    }
}

#[cfg(test)]
mod key_tests {
    use std::path::PathBuf;

    use super::*;

    fn agent_key(n: u8) -> PublicKey {
        let seed = [n; 32];
        russh::keys::PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed))
            .public_key()
            .clone()
    }

    #[test]
    fn with_a_key_file_only_that_file_is_offered_not_the_agents_seven_keys() {
        let agent: Vec<PublicKey> = (1..=7).map(agent_key).collect();
        let defaults = [PathBuf::from("/h/.ssh/id_ed25519")];
        let files = [PathBuf::from("/k/lab")];
        assert_eq!(key_plan(&files, false, &agent, &defaults), [Offer::File("/k/lab".into())]);
        assert_eq!(key_plan(&files, true, &agent, &defaults), [Offer::File("/k/lab".into())]);
    }

    #[test]
    fn identities_only_without_files_offers_the_default_files_only() {
        let agent: Vec<PublicKey> = (1..=2).map(agent_key).collect();
        let defaults = [PathBuf::from("/h/.ssh/id_ed25519"), PathBuf::from("/h/.ssh/id_rsa")];
        assert_eq!(
            key_plan(&[], true, &agent, &defaults),
            [Offer::File(defaults[0].clone()), Offer::File(defaults[1].clone())]
        );
    }

    #[test]
    fn without_either_the_agent_keys_come_first_then_the_default_files() {
        let agent: Vec<PublicKey> = (1..=2).map(agent_key).collect();
        let defaults = [PathBuf::from("/h/.ssh/id_ecdsa")];
        assert_eq!(
            key_plan(&[], false, &agent, &defaults),
            [
                Offer::Agent(agent[0].clone()),
                Offer::Agent(agent[1].clone()),
                Offer::File(defaults[0].clone())
            ]
        );
    }

    #[test]
    fn the_inventory_key_comes_first_and_duplicates_go() {
        let mut config = SshConfig::new("a", "u");
        config.key_file = Some("/k/a".into());
        config.identity_files = vec!["/k/b".into(), "/k/a".into()];
        assert_eq!(key_files(&config), [PathBuf::from("/k/a"), PathBuf::from("/k/b")]);
    }

    #[test]
    fn an_encrypted_key_yields_its_public_half_and_a_missing_one_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enc");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "secret-pass", "-C", "", "-f"])
            .arg(&path)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            panic!("ssh-keygen is needed for this test");
        }
        let public = russh::keys::load_public_key(path.with_extension("pub")).unwrap();
        std::fs::remove_file(path.with_extension("pub")).unwrap();
        match load_key(&path) {
            Ok(LoadedKey::Encrypted(Some(key))) => assert_eq!(key.key_data(), public.key_data()),
            _ => panic!("expected an encrypted key"),
        }
        let missing = load_key(Path::new("/nonexistent/id")).err().unwrap();
        assert!(missing.starts_with("cannot load private key /nonexistent/id"), "{missing}");
    }
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
