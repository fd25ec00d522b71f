//! The session transport (`--transport session`): a host's commands run through a small `sh`
//! loop on one long-lived channel instead of a channel, an sshd session and a login shell
//! each. Under become, the loop itself runs through the become method, once.
//!
//! - The wire format and the loop are in [`super::session_proto`].
//! - [`Pool`]: the sessions of one connection. One request at a time per session; a request
//!   that finds no idle session opens another, up to `max_channels` sessions per connection
//!   (each holds one of the connection's channel permits for its life).
//! - The controller times each command. At its timeout, or when the caller gives it up (the
//!   future is dropped: a cancelled run), the command's process group, which the loop reported
//!   when it started it, is killed from a channel of its own, as under `exec`
//!   ([`Connection::kill_process_group`]); after a timeout the session goes on once the loop
//!   has answered.
//! - A session that ends or sends a malformed reply is dropped (its channel closed); the
//!   command it ran is reported as lost with the connection, and the next command opens a new
//!   session.

use std::sync::Arc;
use std::time::Duration;

use contract::{Exec, ExecOutput, HostError, Stream};
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection::Connection;
use super::error::describe;
use super::session_proto::{
    Malformed, READY, ReplyHeader, command_lines, loop_script, parse_reply_header, parse_started,
    request_header,
};

/// Bound for a new session's loop to say it is ready (become included).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of noise (a shell profile's output) skipped before the ready line, at most.
const MAX_NOISE: usize = 64 * 1024;
/// Bytes kept of what the loop itself writes on stderr, for messages.
const STDERR_TAIL: usize = 4096;
/// How long after killing a timed-out command the controller waits for the loop's reply before
/// giving the session up.
const REPLY_GRACE: Duration = Duration::from_secs(5);

/// The sessions of one connection.
#[derive(Debug)]
pub(crate) struct Pool {
    /// Sessions not running a command.
    idle: std::sync::Mutex<Vec<Session>>,
    /// One permit per request in flight; as many as sessions may exist.
    slots: Arc<Semaphore>,
}

impl Pool {
    /// A pool of at most `max` sessions.
    pub(crate) fn new(max: usize) -> Self {
        Self { idle: std::sync::Mutex::default(), slots: Arc::new(Semaphore::new(max.max(1))) }
    }

    fn take_idle(&self) -> Option<Session> {
        self.idle.lock().ok()?.pop()
    }

    fn put_back(&self, session: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(session);
        }
    }
}

/// Why a request got no reply: the session ended, failed or misbehaved, and the command's
/// outcome is unknown.
#[derive(Debug)]
struct Lost(String);

impl From<Malformed> for Lost {
    fn from(e: Malformed) -> Self {
        Lost(e.to_string())
    }
}

/// One loop running on the host.
struct Session {
    /// `None` only while being dropped.
    tx: Option<ChannelWriteHalf<Msg>>,
    rx: ChannelReadHalf,
    /// Stdout bytes received and not yet consumed.
    buf: Vec<u8>,
    /// The last bytes the loop wrote on its own stderr.
    stderr_tail: Vec<u8>,
    next_id: u64,
    /// The process group of the command running now, once the loop has said it started it.
    running: Option<u32>,
    /// The connection's channel slot this session's channel holds.
    _channel: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("next_id", &self.next_id).finish_non_exhaustive()
    }
}

impl Drop for Session {
    /// Closes the channel: the loop reads EOF and ends, removing its directory.
    fn drop(&mut self) {
        if let (Some(tx), Ok(runtime)) = (self.tx.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
            });
        }
    }
}

impl Session {
    /// Opens a channel, starts the loop (through become when the connection has it) and waits
    /// for its ready line.
    async fn open(connection: &Connection, channel: OwnedSemaphorePermit) -> Result<Self, String> {
        let (rx, tx) = connection.open_channel().await.map_err(|e| e.to_string())?.split();
        let script = loop_script(connection.max_output());
        let command = match connection.become_() {
            Some(become_) => become_.command_line(&script),
            None => format!("exec sh -c {}", contract::shell::quote(&script)),
        };
        tx.exec(true, command.into_bytes())
            .await
            .map_err(|e| format!("starting the session's shell failed: {}", describe(&e)))?;
        let mut session = Self {
            tx: Some(tx),
            rx,
            buf: Vec::new(),
            stderr_tail: Vec::new(),
            next_id: 1,
            running: None,
            _channel: channel,
        };
        match tokio::time::timeout(START_TIMEOUT, session.wait_ready()).await {
            Ok(Ok(())) => Ok(session),
            Ok(Err(Lost(why))) => Err(why),
            Err(_) => {
                Err(format!("the session's shell did not start within {START_TIMEOUT:?}{}", session.said()))
            }
        }
    }

    /// Reads until the ready line, skipping what a shell profile may print before it.
    async fn wait_ready(&mut self) -> Result<(), Lost> {
        loop {
            if let Some(at) = find_line(&self.buf, READY) {
                self.buf.drain(..at + READY.len());
                return Ok(());
            }
            if self.buf.len() > MAX_NOISE {
                return Err(Lost(format!(
                    "the session's shell printed more than {MAX_NOISE} bytes before it was ready"
                )));
            }
            self.receive().await?;
        }
    }

    /// `: stderr tail`, when the loop said anything on stderr.
    fn said(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr_tail);
        let text = text.trim();
        if text.is_empty() { String::new() } else { format!(": {text}") }
    }

    /// Waits for the next message of the channel: stdout is appended to `buf`, the loop's own
    /// stderr to its tail. The end of the channel is [`Lost`].
    async fn receive(&mut self) -> Result<(), Lost> {
        match self.rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                self.buf.extend_from_slice(&data);
                Ok(())
            }
            Some(ChannelMsg::ExtendedData { data, .. }) => {
                self.stderr_tail.extend_from_slice(&data);
                let excess = self.stderr_tail.len().saturating_sub(STDERR_TAIL);
                self.stderr_tail.drain(..excess);
                Ok(())
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                Err(Lost(format!("the session's shell exited with status {exit_status}{}", self.said())))
            }
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                Err(Lost(format!("the session's shell was killed by signal {signal_name:?}{}", self.said())))
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                Err(Lost(format!("the session's channel closed{}", self.said())))
            }
            Some(ChannelMsg::Failure) => {
                Err(Lost("the server refused to start the session's shell".to_owned()))
            }
            Some(_) => Ok(()),
        }
    }

    /// Sends `exec`; returns the id of its request.
    async fn send(&mut self, exec: &Exec) -> Result<u64, Lost> {
        let id = self.next_id;
        self.next_id += 1;
        let stdin = exec.stdin.as_deref().unwrap_or_default();
        let (command, lines) = command_lines(&exec.command);
        let mut bytes = request_header(id, lines, stdin.len()).into_bytes();
        bytes.reserve(command.len() + stdin.len());
        bytes.extend_from_slice(command.as_bytes());
        bytes.extend_from_slice(stdin);
        let Some(tx) = self.tx.as_ref() else {
            return Err(Lost("the session is closing".to_owned()));
        };
        // The loop prints nothing until it has read the whole request, so writing it all
        // before reading cannot deadlock.
        tx.data_bytes(bytes)
            .await
            .map_err(|e| Lost(format!("sending the command failed: {}", describe(&e))))?;
        Ok(id)
    }

    /// Reads the started line and the reply of request `id`. `limit`: bytes kept per stream.
    /// Safe to cancel and call again: what arrived stays in `buf`, the started command's group
    /// in `running`.
    async fn reply(&mut self, id: u64, limit: u64) -> Result<(ReplyHeader, Vec<u8>, Vec<u8>), Lost> {
        let (header, n) = loop {
            if self.running.is_none() {
                if let Some((pgid, n)) = parse_started(&self.buf, id)? {
                    self.running = Some(pgid);
                    self.buf.drain(..n);
                    continue;
                }
            } else if let Some(parsed) = parse_reply_header(&self.buf, id, limit)? {
                break parsed;
            }
            self.receive().await?;
        };
        let total = n as u64 + header.out_len + header.err_len;
        while (self.buf.len() as u64) < total {
            self.receive().await?;
        }
        let out_end =
            n + usize::try_from(header.out_len).map_err(|_| Lost("length out of range".to_owned()))?;
        let err_end =
            out_end + usize::try_from(header.err_len).map_err(|_| Lost("length out of range".to_owned()))?;
        let stdout = self.buf[n..out_end].to_vec();
        let stderr = self.buf[out_end..err_end].to_vec();
        self.buf.drain(..err_end);
        self.running = None;
        Ok((header, stdout, stderr))
    }
}

/// A session with a request in flight. Dropped before [`InFlight::finish`] (the caller gave
/// the command up, the session was lost), it kills the command's process group if the loop
/// had started it, as [`super::connection`]'s `AbortOnDrop` does under `exec`.
struct InFlight {
    connection: Arc<Connection>,
    session: Option<Session>,
    /// The command's group was killed already (see [`timed_out`]).
    killed: bool,
}

impl InFlight {
    /// The session, for the next step of the request.
    fn session(&mut self) -> Result<&mut Session, Lost> {
        self.session.as_mut().ok_or_else(|| Lost("the session is gone".to_owned()))
    }

    /// The request is over: the session, free for the next one.
    fn finish(mut self) -> Option<Session> {
        self.session.take()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.killed {
            return;
        }
        let Some(pgid) = self.session.as_mut().and_then(|s| s.running.take()) else { return };
        if self.connection.is_closed() {
            tracing::debug!(pgid, "the connection is gone; the command cannot be stopped");
            return;
        }
        let connection = Arc::clone(&self.connection);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Nobody waits for this command any more: its kill's failure can only be logged.
                if let Err(reason) = connection.kill_process_group(pgid).await {
                    tracing::warn!(%reason, "an abandoned command could not be stopped");
                }
            });
        }
    }
}

/// Where `line` starts in `buf` at the start of a line.
fn find_line(buf: &[u8], line: &[u8]) -> Option<usize> {
    let mut from = 0;
    while from + line.len() <= buf.len() {
        if buf[from..].starts_with(line) {
            return Some(from);
        }
        from += buf[from..].iter().position(|&b| b == b'\n')? + 1;
    }
    None
}

/// Runs `exec` through one of `connection`'s sessions (see the module docs). The same results
/// as [`Connection::exec`]: a non-zero exit is an output, a timeout is
/// [`HostError::Timeout`], more than the output limit on a stream is
/// [`HostError::OutputLimit`], and a session lost mid-command is [`HostError::Unreachable`]
/// (the command's outcome is unknown).
pub(crate) async fn exec(
    connection: &Arc<Connection>,
    exec: Exec,
    timeout: Duration,
) -> Result<ExecOutput, HostError> {
    let pool = connection.sessions();
    let _slot = Arc::clone(&pool.slots)
        .acquire_owned()
        .await
        .map_err(|_| HostError::Transport("connection is shutting down".to_owned()))?;
    let mut session = match pool.take_idle() {
        Some(session) => session,
        None => {
            let channel = connection.channel_slot().await?;
            Session::open(connection, channel).await.map_err(|why| {
                if connection.is_closed() {
                    HostError::Unreachable(format!(
                        "the connection was lost while starting a session ({why})"
                    ))
                } else {
                    HostError::Transport(format!("starting a session failed: {why}"))
                }
            })?
        }
    };
    let limit = connection.max_output();
    let lost =
        |why: String| HostError::Unreachable(format!("the session was lost while the command ran ({why})"));
    let id = session.send(&exec).await.map_err(|Lost(why)| lost(why))?;
    let mut flight = InFlight { connection: Arc::clone(connection), session: Some(session), killed: false };
    let replied = match flight.session() {
        Ok(session) => tokio::time::timeout(timeout, session.reply(id, limit)).await,
        Err(Lost(why)) => return Err(lost(why)),
    };
    let (header, stdout, stderr) = match replied {
        Ok(Ok(reply)) => reply,
        // Dropping `flight` kills the command if it started (the loop died, not the command).
        Ok(Err(Lost(why))) => return Err(lost(why)),
        Err(_elapsed) => {
            let (error, session) = timed_out(flight, id, limit, timeout).await;
            if let Some(session) = session {
                pool.put_back(session);
            }
            return Err(error);
        }
    };
    if let Some(session) = flight.finish() {
        pool.put_back(session);
    }
    let command = || super::shown::without_env_values(&exec.command).into_owned();
    if stdout.len() as u64 > limit {
        return Err(HostError::OutputLimit { command: command(), stream: Stream::Stdout, limit });
    }
    if stderr.len() as u64 > limit {
        return Err(HostError::OutputLimit { command: command(), stream: Stream::Stderr, limit });
    }
    Ok(ExecOutput { status: Some(header.status), stdout, stderr })
}

/// `exec`'s command ran past `timeout`: its process group is killed, and the session given
/// back when the loop then answers within [`REPLY_GRACE`]. The error to return: the timeout,
/// or [`HostError::NotStopped`] when the kill failed.
async fn timed_out(
    mut flight: InFlight,
    id: u64,
    limit: u64,
    timeout: Duration,
) -> (HostError, Option<Session>) {
    let cause = HostError::Timeout(timeout);
    let Some(pgid) = flight.session.as_ref().and_then(|s| s.running) else {
        // The loop never said it started the command: dropping the session is all there is.
        return (cause, None);
    };
    tracing::debug!(pgid, "stopping the command");
    // Killed once, here: the group's id may be another's after it is gone.
    flight.killed = true;
    if let Err(reason) = flight.connection.kill_process_group(pgid).await {
        return (HostError::NotStopped { cause: Box::new(cause), reason }, None);
    }
    let answered = match flight.session() {
        Ok(session) => matches!(tokio::time::timeout(REPLY_GRACE, session.reply(id, limit)).await, Ok(Ok(_))),
        Err(_) => false,
    };
    (cause, if answered { flight.finish() } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_is_found_at_a_line_start_only() {
        assert_eq!(find_line(b"engine-session-ready\n", READY), Some(0));
        assert_eq!(find_line(b"motd\nengine-session-ready\nx", READY), Some(5));
        assert_eq!(find_line(b"xengine-session-ready\n", READY), None);
        assert_eq!(find_line(b"engine-session-rea", READY), None);
    }
}
