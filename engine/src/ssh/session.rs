//! The session transport (`--transport session`): a host's commands run through a small `sh`
//! loop on one long-lived channel instead of a channel, an sshd session and a login shell
//! each. Under become, the loop itself runs through the become method, once.
//!
//! - The wire format and the loop are in [`super::session_proto`].
//! - [`Pool`]: the sessions of one connection. One request at a time per session; a request
//!   that finds no idle session opens another, up to `max_channels` sessions per connection
//!   (each holds one of the connection's channel permits for its life).
//! - The controller times each command. At its timeout, when it prints past the output limit,
//!   or when the caller gives it up (the future is dropped: a cancelled run), the command's
//!   process group, which its shell reported first, is killed from a channel of its own, as
//!   under `exec` ([`Connection::kill_process_group`]), while the session's channel is read on
//!   (an unread channel would stall the whole connection); the session goes on once the loop
//!   has ended the command's streams.
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
use super::session_proto::{Malformed, Marker, Stream as Output, command_lines, loop_script, request_header};

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
    /// This session's marker (see [`super::session_proto`]).
    marker: Marker,
    /// The loop said it is ready: from then on, what arrives belongs to a request.
    ready: bool,
    /// Stdout bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Stderr bytes received and not yet consumed (once ready).
    ebuf: Vec<u8>,
    /// The last bytes the loop wrote on stderr before it was ready, for messages.
    stderr_tail: Vec<u8>,
    next_id: u64,
    /// The request in flight, as far as it has come.
    partial: Option<Partial>,
    /// The process group of the command running now, once its shell has said it started.
    running: Option<u32>,
    /// The connection's channel slot this session's channel holds.
    _channel: OwnedSemaphorePermit,
}

/// A request in flight: what has come of its reply so far.
struct Partial {
    id: u64,
    stdout: Output,
    stderr: Output,
    status: Option<u32>,
    /// [`Reply::Over`] was returned once already.
    over_told: bool,
}

/// What [`Session::reply`] got.
enum Reply {
    /// The command ended: its status and output, and the stream it printed more than the
    /// limit on, if any (that stream's output is cut at the limit).
    Done { status: u32, stdout: Vec<u8>, stderr: Vec<u8>, over: Option<Stream> },
    /// The command printed more than the limit on this stream and still runs: stop it, then
    /// read on to its end.
    Over(Stream),
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
        let marker = Marker::new()?;
        let script = loop_script(&marker);
        let command = match connection.become_() {
            Some(become_) => become_.command_line(&script),
            None => script,
        };
        tx.exec(true, command.into_bytes())
            .await
            .map_err(|e| format!("starting the session's shell failed: {}", describe(&e)))?;
        let mut session = Self {
            tx: Some(tx),
            rx,
            marker,
            ready: false,
            buf: Vec::new(),
            ebuf: Vec::new(),
            stderr_tail: Vec::new(),
            next_id: 1,
            partial: None,
            running: None,
            _channel: channel,
        };
        let started = std::time::Instant::now();
        match tokio::time::timeout(START_TIMEOUT, session.wait_ready()).await {
            Ok(Ok(())) => {
                tracing::debug!(ms = started.elapsed().as_millis(), "session ready");
                Ok(session)
            }
            Ok(Err(Lost(why))) => Err(why),
            Err(_) => {
                Err(format!("the session's shell did not start within {START_TIMEOUT:?}{}", session.said()))
            }
        }
    }

    /// Reads until the ready line, skipping what a shell profile may print before it.
    async fn wait_ready(&mut self) -> Result<(), Lost> {
        let ready = self.marker.ready();
        loop {
            if let Some(at) = find_line(&self.buf, &ready) {
                self.buf.drain(..at + ready.len());
                self.ready = true;
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

    /// Waits for the next message of the channel: stdout is appended to `buf`; stderr to
    /// `ebuf` once the loop is ready, to its tail before. What arrives while no request is in
    /// flight belongs to no command (a process a finished command left behind) and is
    /// dropped. The end of the channel is [`Lost`].
    async fn receive(&mut self) -> Result<(), Lost> {
        let idle = self.ready && self.partial.is_none();
        match self.rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                if !idle {
                    self.buf.extend_from_slice(&data);
                }
                Ok(())
            }
            Some(ChannelMsg::ExtendedData { data, .. }) if self.ready => {
                if !idle {
                    self.ebuf.extend_from_slice(&data);
                }
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

    /// Readies an idle session for its next request: what came since the last reply ended is
    /// no command's, so what is queued is read (without waiting) and dropped. `Err`: the
    /// session ended while it was idle.
    async fn settle(&mut self) -> Result<(), Lost> {
        self.partial = None;
        while let Ok(received) = tokio::time::timeout(Duration::ZERO, self.receive()).await {
            received?;
        }
        self.buf.clear();
        self.ebuf.clear();
        Ok(())
    }

    /// Sends `exec`; returns the id of its request. `limit`: bytes kept per stream.
    async fn send(&mut self, exec: &Exec, limit: u64) -> Result<u64, Lost> {
        let id = self.next_id;
        self.next_id += 1;
        let stdin = exec.stdin.as_deref().unwrap_or_default();
        let (command, lines) = command_lines(&exec.command);
        let mut bytes = request_header(id, &command, lines, stdin).into_bytes();
        bytes.reserve(command.len() + stdin.len());
        bytes.extend_from_slice(command.as_bytes());
        bytes.extend_from_slice(stdin);
        let Some(tx) = self.tx.as_ref() else {
            return Err(Lost("the session is closing".to_owned()));
        };
        self.partial = Some(Partial {
            id,
            stdout: Output::new(self.marker.end_of_stdout(id), limit),
            stderr: Output::new(self.marker.end_of_stderr(id), limit),
            status: None,
            over_told: false,
        });
        // The loop prints nothing until it has read the whole request, so writing it all
        // before reading cannot deadlock.
        tx.data_bytes(bytes)
            .await
            .map_err(|e| Lost(format!("sending the command failed: {}", describe(&e))))?;
        Ok(id)
    }

    /// Reads request `id`'s reply, as far as it goes. Safe to cancel and call again: what
    /// arrived stays in the session.
    async fn reply(&mut self, id: u64) -> Result<Reply, Lost> {
        loop {
            let Self { buf, ebuf, partial, running, marker, .. } = self;
            if let Some(reply) = advance(marker, buf, ebuf, partial, running, id)? {
                return Ok(reply);
            }
            self.receive().await?;
        }
    }
}

/// Takes what it can of request `id`'s reply from what has arrived (`buf`: stdout, `ebuf`:
/// stderr) into `partial`, noting the command's process group in `running`. `Some`: the reply
/// is complete ([`Reply::Done`]: `partial` and `running` are cleared), or the command has just
/// printed past the limit ([`Reply::Over`], told once). `None`: more must arrive.
fn advance(
    marker: &Marker,
    buf: &mut Vec<u8>,
    ebuf: &mut Vec<u8>,
    partial: &mut Option<Partial>,
    running: &mut Option<u32>,
    id: u64,
) -> Result<Option<Reply>, Lost> {
    let Some(p) = partial.as_mut().filter(|p| p.id == id) else {
        return Err(Lost(format!("request {id} is not the one in flight")));
    };
    if running.is_none() {
        marker.skip_to_started(buf, id);
        if let Some((pgid, n)) = marker.parse_started(buf, id)? {
            *running = Some(pgid);
            buf.drain(..n);
        }
    }
    if running.is_some() {
        p.stdout.take(buf);
        if p.stdout.done
            && p.status.is_none()
            && let Some((status, n)) = Marker::parse_status(buf)?
        {
            p.status = Some(status);
            buf.drain(..n);
        }
    }
    p.stderr.take(ebuf);
    let over = if p.stdout.over {
        Some(Stream::Stdout)
    } else if p.stderr.over {
        Some(Stream::Stderr)
    } else {
        None
    };
    if let (Some(status), true) = (p.status, p.stderr.done) {
        let p = partial.take().ok_or_else(|| Lost("the request vanished".to_owned()))?;
        *running = None;
        return Ok(Some(Reply::Done { status, stdout: p.stdout.kept, stderr: p.stderr.kept, over }));
    }
    if let Some(stream) = over
        && !p.over_told
        && p.status.is_none()
    {
        p.over_told = true;
        return Ok(Some(Reply::Over(stream)));
    }
    Ok(None)
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
    // An idle session that ended meanwhile (its shell killed on the host) is dropped, and the
    // next one tried, or a new one opened: the command has not been sent yet.
    let mut session = loop {
        match pool.take_idle() {
            Some(mut session) => match session.settle().await {
                Ok(()) => break session,
                Err(Lost(why)) => tracing::debug!(%why, "an idle session ended; trying another"),
            },
            None => {
                let channel = connection.channel_slot().await?;
                break Session::open(connection, channel).await.map_err(|why| {
                    if connection.is_closed() {
                        HostError::Unreachable(format!(
                            "the connection was lost while starting a session ({why})"
                        ))
                    } else {
                        HostError::Transport(format!("starting a session failed: {why}"))
                    }
                })?;
            }
        }
    };
    let limit = connection.max_output();
    let lost =
        |why: String| HostError::Unreachable(format!("the session was lost while the command ran ({why})"));
    let id = session.send(&exec, limit).await.map_err(|Lost(why)| lost(why))?;
    let mut flight = InFlight { connection: Arc::clone(connection), session: Some(session), killed: false };
    let deadline = tokio::time::Instant::now() + timeout;
    // Set when the command printed past the limit: the stream, and the kill of its group. The
    // kill runs while the reply is read on: a channel left unread would stall the connection
    // (russh hands each channel's data over in order), the kill's channel with it.
    let mut too_much: Option<(Stream, tokio::task::JoinHandle<Result<(), String>>)> = None;
    let mut kill_done = false;
    loop {
        let Ok(session) = flight.session() else {
            return Err(lost("the session is gone".to_owned()));
        };
        let read = tokio::time::timeout_at(deadline, session.reply(id));
        let replied = match too_much.as_mut() {
            Some((stream, kill)) if !kill_done => tokio::select! {
                replied = read => replied,
                killed = kill => {
                    kill_done = true;
                    let reason = match killed {
                        Ok(Ok(())) => continue,
                        Ok(Err(reason)) => reason,
                        Err(e) => format!("the kill did not run: {e}"),
                    };
                    let command = super::shown::without_env_values(&exec.command).into_owned();
                    let cause = HostError::OutputLimit { command, stream: *stream, limit };
                    return Err(HostError::NotStopped { cause: Box::new(cause), reason });
                }
            },
            _ => read.await,
        };
        match replied {
            Ok(Ok(Reply::Done { status, stdout, stderr, over })) => {
                if let Some(session) = flight.finish() {
                    pool.put_back(session);
                }
                let command = || super::shown::without_env_values(&exec.command).into_owned();
                let Some((stream, kill)) = too_much else {
                    // Past the limit, but ended before the controller saw it (all of it came
                    // at once): nothing to stop, and the output is cut, so it is no result.
                    if let Some(stream) = over {
                        return Err(HostError::OutputLimit { command: command(), stream, limit });
                    }
                    return Ok(ExecOutput { status: Some(status), stdout, stderr });
                };
                let cause = HostError::OutputLimit { command: command(), stream, limit };
                // The command ended: the kill has either worked or found nothing left.
                if !kill_done && let Ok(Ok(Err(reason))) = tokio::time::timeout(REPLY_GRACE, kill).await {
                    return Err(HostError::NotStopped { cause: Box::new(cause), reason });
                }
                return Err(cause);
            }
            // Past the limit: the command is stopped as under `exec`, and read to its end
            // (what it prints past the limit is dropped as it comes).
            Ok(Ok(Reply::Over(stream))) => {
                let Some(pgid) = flight.session.as_ref().and_then(|s| s.running) else {
                    return Err(lost("output past the limit before the command started".to_owned()));
                };
                flight.killed = true;
                let connection = Arc::clone(&flight.connection);
                too_much =
                    Some((stream, tokio::spawn(async move { connection.kill_process_group(pgid).await })));
            }
            // Dropping `flight` kills the command if it started (the loop died, not the command).
            Ok(Err(Lost(why))) => return Err(lost(why)),
            Err(_elapsed) => {
                let (error, session) = timed_out(flight, id, timeout).await;
                if let Some(session) = session {
                    pool.put_back(session);
                }
                return Err(error);
            }
        }
    }
}

/// `exec`'s command ran past `timeout`: its process group is killed while the reply is read
/// on, and the session given back when the loop then answers within [`REPLY_GRACE`], which
/// bounds the kill too. The error to return: the timeout, or [`HostError::NotStopped`] when
/// the kill failed or did not end in time.
async fn timed_out(mut flight: InFlight, id: u64, timeout: Duration) -> (HostError, Option<Session>) {
    let cause = HostError::Timeout(timeout);
    let Some(pgid) = flight.session.as_ref().and_then(|s| s.running) else {
        // The command's shell never said it started: dropping the session is all there is.
        return (cause, None);
    };
    let kill = if flight.killed {
        None
    } else {
        tracing::debug!(pgid, "stopping the command");
        // Killed once: the group's id may be another's after it is gone.
        flight.killed = true;
        let connection = Arc::clone(&flight.connection);
        Some(tokio::spawn(async move { connection.kill_process_group(pgid).await }))
    };
    let mut answered = false;
    let grace = tokio::time::Instant::now() + REPLY_GRACE;
    while let Ok(session) = flight.session() {
        match tokio::time::timeout_at(grace, session.reply(id)).await {
            Ok(Ok(Reply::Done { .. })) => {
                answered = true;
                break;
            }
            Ok(Ok(Reply::Over(_))) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    if let Some(kill) = kill {
        // The kill started with the grace: both end by its deadline (over a dead link neither
        // answers, and the task fails as long after its timeout as under `exec`).
        let reason = match tokio::time::timeout_at(grace, kill).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(reason))) => Some(reason),
            Ok(Err(e)) => Some(format!("the kill did not run: {e}")),
            Err(_) => Some(format!("the kill did not end within {REPLY_GRACE:?}")),
        };
        if let Some(reason) = reason {
            return (HostError::NotStopped { cause: Box::new(cause), reason }, None);
        }
    }
    (cause, if answered { flight.finish() } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(marker: &Marker, id: u64, limit: u64) -> Option<Partial> {
        Some(Partial {
            id,
            stdout: Output::new(marker.end_of_stdout(id), limit),
            stderr: Output::new(marker.end_of_stderr(id), limit),
            status: None,
            over_told: false,
        })
    }

    /// A reply that comes whole, in one read: its output past the limit is still reported.
    #[test]
    fn output_past_the_limit_is_reported_even_when_the_end_came_with_it() {
        let marker = Marker::new().unwrap();
        // The marker's text, from its ready line.
        let ready = String::from_utf8(marker.ready()).unwrap();
        let m = ready.trim_end().trim_end_matches(" ready");
        let mut buf = format!("{m} started 3 99\n{}{m} end 3 0\n", "x".repeat(50)).into_bytes();
        let mut ebuf = format!("err{m} end 3\n").into_bytes();
        let (mut p, mut running) = (partial(&marker, 3, 10), None);
        let reply = advance(&marker, &mut buf, &mut ebuf, &mut p, &mut running, 3).ok().flatten();
        let Some(Reply::Done { status, stdout, stderr, over }) = reply else { panic!("not done") };
        assert_eq!((status, stdout.len(), stderr, over), (0, 10, b"err".to_vec(), Some(Stream::Stdout)));
        assert!(p.is_none() && running.is_none() && buf.is_empty() && ebuf.is_empty());
        // Within the limit: no `over`; piece by piece, `None` until the end.
        let mut buf = format!("{m} started 4 99\nok").into_bytes();
        let mut ebuf = Vec::new();
        let (mut p, mut running) = (partial(&marker, 4, 10), None);
        assert!(matches!(advance(&marker, &mut buf, &mut ebuf, &mut p, &mut running, 4), Ok(None)));
        assert_eq!(running, Some(99));
        buf.extend(format!("{m} end 4 7\n").into_bytes());
        ebuf.extend(format!("{m} end 4\n").into_bytes());
        let reply = advance(&marker, &mut buf, &mut ebuf, &mut p, &mut running, 4).ok().flatten();
        let Some(Reply::Done { status, stdout, over, .. }) = reply else { panic!("not done") };
        assert_eq!((status, stdout, over), (7, b"ok".to_vec(), None));
    }

    #[test]
    fn the_ready_line_is_found_at_a_line_start_only() {
        const READY: &[u8] = b"engine-1f ready\n";
        assert_eq!(find_line(b"engine-1f ready\n", READY), Some(0));
        assert_eq!(find_line(b"motd\nengine-1f ready\nx", READY), Some(5));
        assert_eq!(find_line(b"xengine-1f ready\n", READY), None);
        assert_eq!(find_line(b"engine-1f rea", READY), None);
    }
}
