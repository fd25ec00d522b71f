//! The wire format of a host session (see [`super::session`]): the `sh` loop run on the host,
//! the request the controller writes to it, and the strict parsers of what the loop says.
//!
//! Each session has a marker: `engine-` and 32 random hex digits, drawn by the controller for
//! that session only. A request is a header line `<id> <cmd_lines> <stdin_len> <kind>
//! <cmd_bytes>\n` (see [`request_header`]) followed by the command as exactly `cmd_lines` lines,
//! `cmd_bytes` bytes (the controller ends it with a newline when it has none) and `stdin_len`
//! bytes of stdin. The command's stdout and stderr are the channel's own:
//! - on stdout, `MARKER started <id> <pgid>\n` first (printed by the command's own shell, so
//!   nothing of the command comes before it), then the command's stdout, then
//!   `MARKER end <id> <status>\n`, printed by the loop once the command has exited;
//! - on stderr, the command's stderr, then `MARKER end <id>\n`.
//!
//! The output ends where the marker is: no honest command prints 128 random bits it was never
//! given. A host that does (it read the loop's command line) can only make its own command's
//! result wrong, which it can do anyway; everything else it sends is checked (the request it
//! answers, the numbers, the output limit), and anything wrong is [`Malformed`]: the session is
//! then dropped, as a lost connection would be.

/// The loop run on the host, as one POSIX script: given to the login shell as the channel's
/// command (as `exec` gives it every command), or to `sh -c` under become. It announces itself
/// and frames its replies with `marker`, under `bash` when the host has it (every Debian and
/// Ubuntu does: it is Essential), else under POSIX `sh`; see [`loop_body`] for both. Either runs
/// clean: `bash --norc` with no `BASH_ENV` (Debian's bash reads `~/.bashrc` when sshd starts it,
/// and again when that shell execs another), `sh -c`. Nothing is installed.
pub(crate) fn loop_script(marker: &Marker) -> String {
    format!(
        "# engine-session\n\
if command -v bash >/dev/null 2>&1; then BASH_ENV= exec bash --norc -c {bash} engine-session; fi\n\
exec sh -c {sh} engine-session\n",
        bash = contract::shell::quote(&loop_body(marker, LoopShell::Bash)),
        sh = contract::shell::quote(&loop_body(marker, LoopShell::Sh)),
    )
}

/// Which shell runs the loop (see [`loop_body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoopShell {
    Bash,
    Sh,
}

/// The loop itself, for `shell`.
///
/// What a command costs the host is the point of the session, so the loop starts as few
/// processes as it can: the command is read by the shell's own `read` (under bash in one
/// `read -N` of its bytes; `read` of a line reads a pipe a byte at a time), and the command
/// runs in a process group of its own, whose id is printed first. The controller times the
/// command and kills that group, as under `exec`, and stops it the same way when it prints more
/// than the output limit.
/// - Under `bash`, the loop has job control on (`set -m`, which bash allows without a
///   terminal), so its child subshell is a group leader from the start (job control is off
///   inside it: what the command starts stays in its group): it prints its own pid
///   (`$BASHPID`), unsets the loop's variables and runs the command with `eval`. One fork per
///   command and no exec. So `$$` is the loop's pid there, as in any subshell: a command that
///   needs a process of its own runs `sh -c` (the `command` module does). Job control makes
///   bash report finished jobs on its stderr, so the loop's own stderr is `/dev/null` and
///   commands get the channel's stderr as fd 3, closed for them. With job control, `wait`
///   also returns when a job is stopped by a signal: such a command counts as ended (status
///   128 + the signal). `wait -f` would wait for its end, but bash 5.2's spins forever, at
///   full CPU, once the job's process is gone ("wait_for: No record of process", seen on the
///   lab). The umask the loop started with is read from `/proc/self/status` (no fork), else
///   from `umask`.
/// - Under POSIX `sh` (no job control without a terminal), the command runs as
///   `setsid sh -c` (`setsid` does not fork: the loop's child is never a group leader), so it
///   needs util-linux's `setsid` and costs one exec more.
///
/// Either way the command gets the umask the loop started with (the loop's own is 077), its
/// stdin (`/dev/null` when it has none), and nothing else of the loop: no variables, traps or
/// file descriptors. Under bash, text stdin that ends with a newline (kind `h`: a file the
/// engine writes, an environment script) is read by the shell's own `read -N` and given as a
/// here-string, which bash passes through a pipe (or, when it is larger than a pipe holds, a
/// file it makes and unlinks itself): no file of the loop's and no process. The subshell
/// takes its stdin after its started line (`exec <`), so a stdin it cannot open (no room for
/// bash's file) fails the command, with bash's message on its stderr. Other stdin goes
/// to a file in the loop's private directory, written by `head -c` (under bash, other text by
/// `read -N`). The directory (`mktemp -d`, mode 0700) is made for the first command that needs
/// it, and removed when the loop ends (EOF on its stdin, the channel closed, or a signal).
pub(crate) fn loop_body(marker: &Marker, shell: LoopShell) -> String {
    let m = &marker.0;
    let (umask, needs, quiet, end_err, take_command, take_stdin, run) = match shell {
        LoopShell::Bash => (
            "u=; while IFS=$'\\t' read -r k v; do if [ \"$k\" = Umask: ]; then u=$v; break; fi; done \
             </proc/self/status 2>/dev/null\n[ -n \"$u\" ] || u=$(umask)\n",
            "mktemp head",
            "exec 3>&2 2>/dev/null\nset -m\n",
            ">&3",
            "  c=\n  if [ \"$cb\" -gt 0 ]; then IFS= LC_ALL=C read -r -N \"$cb\" c || exit 1; fi\n",
            "  if [ \"$il\" -gt 0 ] && [ \"$ik\" = h ]; then IFS= LC_ALL=C read -r -N \"$il\" v || exit 1; i=-\n\
  elif [ \"$il\" -gt 0 ]; then\n\
    if [ -z \"$d\" ]; then d=$(mktemp -d) || exit 1; fi\n\
    if [ \"$ik\" = t ]; then IFS= LC_ALL=C read -r -N \"$il\" v || exit 1; \
             printf '%s' \"$v\" >\"$d/i\" || exit 1; v=\n\
    else head -c \"$il\" >\"$d/i\" || exit 1; fi\n\
    i=\"$d/i\"\n\
  else i=/dev/null; fi\n"
                .to_owned(),
            format!(
                "  ( umask \"$u\"; set +m; printf '%s started %s %s\\n' {m} \"$id\" \"$BASHPID\"; \
                 if [ \"$i\" = - ]; then exec <<<\"${{v%?}}\" || exit 1; else exec <\"$i\" || exit 1; fi; \
                 unset u d i id cn cb il ik l s t k v; eval \"unset c nl$nl$c\" ) 2>&3 3>&- &\n  v=\n"
            ),
        ),
        LoopShell::Sh => (
            "u=$(umask)\n",
            "setsid mktemp head",
            "",
            ">&2",
            "  c=\n  while [ \"$cn\" -gt 0 ]; do IFS= read -r l || exit 1; c=\"$c$l$nl\"; cn=$((cn - 1)); done\n",
            "  if [ \"$il\" -gt 0 ]; then\n\
    if [ -z \"$d\" ]; then d=$(mktemp -d) || exit 1; fi\n\
    head -c \"$il\" >\"$d/i\" || exit 1\n\
    i=\"$d/i\"\n\
  else i=/dev/null; fi\n"
                .to_owned(),
            format!(
                "  setsid sh -c \"umask $u; printf '%s started %s %s\\n' {m} $id \\$\\$$nl$c\" <\"$i\" &\n"
            ),
        ),
    };
    format!(
        "{umask}\
umask 077\n\
d=\n\
trap '[ -z \"$d\" ] || rm -rf -- \"$d\"' EXIT\n\
trap 'exit 1' HUP INT TERM PIPE\n\
nl='\n'\n\
for t in {needs}; do command -v \"$t\" >/dev/null || {{ printf 'the session needs %s on the host\\n' \"$t\" >&2; exit 127; }}; done\n\
case $u in [0-7][0-7][0-7]|[0-7][0-7][0-7][0-7]) ;; *) printf 'the umask %s is not octal\\n' \"$u\" >&2; exit 1;; esac\n\
{quiet}\
printf '%s ready\\n' {m}\n\
while IFS=' ' read -r id cn il ik cb; do\n\
{take_command}\
{take_stdin}\
{run}\
  wait $!\n\
  s=$?\n\
  printf '%s end %s %s\\n' {m} \"$id\" \"$s\"\n\
  printf '%s end %s\\n' {m} \"$id\" {end_err}\n\
done\n"
    )
}

/// A session's marker (see the module docs): `engine-` and 32 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Marker(String);

impl std::fmt::Debug for Marker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Marker(..)")
    }
}

impl Marker {
    /// A new marker from the system's randomness.
    pub(crate) fn new() -> Result<Self, String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the session's marker: {e}"))?;
        Ok(Self::from_bytes(bytes))
    }

    fn from_bytes(bytes: [u8; 16]) -> Self {
        use std::fmt::Write as _;
        let mut text = String::from("engine-");
        for b in bytes {
            let _ = write!(text, "{b:02x}");
        }
        Self(text)
    }

    /// The loop's first line.
    pub(crate) fn ready(&self) -> Vec<u8> {
        format!("{} ready\n", self.0).into_bytes()
    }

    /// What ends request `id`'s stdout (its exit status follows).
    pub(crate) fn end_of_stdout(&self, id: u64) -> Vec<u8> {
        format!("{} end {id} ", self.0).into_bytes()
    }

    /// What ends request `id`'s stderr.
    pub(crate) fn end_of_stderr(&self, id: u64) -> Vec<u8> {
        format!("{} end {id}\n", self.0).into_bytes()
    }

    /// Drops what comes before request `id`'s started line in `buf` (what a process an earlier
    /// command left behind wrote): all of it but the line's beginning when only that is there.
    pub(crate) fn skip_to_started(&self, buf: &mut Vec<u8>, id: u64) {
        let prefix = format!("{} started {id} ", self.0);
        let prefix = prefix.as_bytes();
        let drop = find(buf, prefix).unwrap_or_else(|| {
            let partial = (1..prefix.len()).rev().find(|&k| buf.ends_with(&prefix[..k])).unwrap_or(0);
            buf.len() - partial
        });
        buf.drain(..drop);
    }

    /// Parses request `id`'s started line at the start of `buf`: the command's process group.
    /// `Ok(None)`: not complete yet. `Ok(Some((pgid, n)))`: `n` bytes of `buf` were the line. A
    /// group id of 0 or 1 is refused: `kill -- -1` would signal every process the user may.
    pub(crate) fn parse_started(&self, buf: &[u8], id: u64) -> Result<Option<(u32, usize)>, Malformed> {
        let prefix = format!("{} started {id} ", self.0);
        let Some(rest) = line_after(buf, prefix.as_bytes(), "the command's started line")? else {
            return Ok(None);
        };
        let pgid = number(rest, "process group")?;
        let pgid = u32::try_from(pgid)
            .ok()
            .filter(|&p| p > 1 && i32::try_from(p).is_ok())
            .ok_or_else(|| Malformed(format!("{pgid} is no process group to run a command in")))?;
        Ok(Some((pgid, prefix.len() + rest.len() + 1)))
    }

    /// Parses the exit status that follows [`Marker::end_of_stdout`] at the start of `buf`.
    /// `Ok(None)`: not complete yet. `Ok(Some((status, n)))`: `n` bytes of `buf` were the rest
    /// of the line.
    pub(crate) fn parse_status(buf: &[u8]) -> Result<Option<(u32, usize)>, Malformed> {
        let Some(rest) = line_after(buf, b"", "the command's end line")? else { return Ok(None) };
        let status = number(rest, "exit status")?;
        let status = u32::try_from(status)
            .ok()
            .filter(|&s| s <= 255)
            .ok_or_else(|| Malformed(format!("exit status {status} is over 255")))?;
        Ok(Some((status, rest.len() + 1)))
    }
}

/// The longest line of the protocol accepted, newline included.
pub(crate) const MAX_LINE: usize = 160;

/// The rest of the line at the start of `buf` after `prefix` (which it must start with; `what`
/// names the line in messages), without its newline. `Ok(None)`: not complete yet, and so far
/// a possible one.
fn line_after<'a>(buf: &'a [u8], prefix: &[u8], what: &str) -> Result<Option<&'a [u8]>, Malformed> {
    let Some(newline) = buf.iter().take(MAX_LINE).position(|&b| b == b'\n') else {
        if buf.len() >= MAX_LINE {
            return Err(Malformed(format!("{what} does not end within {MAX_LINE} bytes")));
        }
        let start = &buf[..buf.len().min(prefix.len())];
        if !prefix.starts_with(start) {
            return Err(Malformed(format!("{what} is not where it should be")));
        }
        return Ok(None);
    };
    buf[..newline]
        .strip_prefix(prefix)
        .map(Some)
        .ok_or_else(|| Malformed(format!("{what} is not where it should be")))
}

/// The command as the loop reads it: its lines, the last one ended with a newline when it
/// was not, and how many there are.
pub(crate) fn command_lines(command: &str) -> (std::borrow::Cow<'_, str>, usize) {
    let command: std::borrow::Cow<'_, str> = if command.is_empty() || command.ends_with('\n') {
        command.into()
    } else {
        format!("{command}\n").into()
    };
    let lines = command.bytes().filter(|&b| b == b'\n').count();
    (command, lines)
}

/// Stdin up to this size with no NUL byte is sent as text (see [`request_header`]).
pub(crate) const MAX_TEXT_STDIN: usize = 64 * 1024;

/// The header of request `id` for `command` (as [`command_lines`] made it) and `stdin`: its
/// id, the command's line count, the stdin's length, how the loop may read the stdin, and the
/// command's length in bytes (bash reads the command in one `read -N`; `sh`, which has no
/// `-N`, by lines). The stdin's kind:
/// - `h`: text the shell can hold (at most [`MAX_TEXT_STDIN`] bytes, no NUL) that ends with a
///   newline: bash reads it itself (`read -N`) and gives it to the command as a here-string
///   (which adds that newline back), through a pipe: no file, no process;
/// - `t`: other such text: bash reads it itself into the loop's stdin file;
/// - `b`: anything else, copied to that file by `head -c`.
///
/// The `sh` loop copies every stdin with `head -c`.
pub(crate) fn request_header(id: u64, command: &str, command_lines: usize, stdin: &[u8]) -> String {
    let text = stdin.len() <= MAX_TEXT_STDIN && !stdin.contains(&0);
    let kind = match stdin.last() {
        Some(b'\n') if text => 'h',
        _ if text => 't',
        _ => 'b',
    };
    format!("{id} {command_lines} {} {kind} {}\n", stdin.len(), command.len())
}

/// Why what the loop said was refused. The session that sent it is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the host's session sent a malformed reply: {0}")]
pub(crate) struct Malformed(pub String);

/// A decimal number of at most 20 ASCII digits, nothing else (no sign, no space).
fn number(field: &[u8], what: &str) -> Result<u64, Malformed> {
    if field.is_empty() || field.len() > 20 || !field.iter().all(u8::is_ascii_digit) {
        return Err(Malformed(format!("the {what} field is not a decimal number")));
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Malformed(format!("the {what} field is out of range")))
}

/// One stream of a command (its stdout or its stderr) as it arrives: its bytes up to the
/// output limit, until the end marker.
#[derive(Debug)]
pub(crate) struct Stream {
    end: Vec<u8>,
    limit: u64,
    /// What the command printed, at most `limit` bytes.
    pub kept: Vec<u8>,
    /// More than `limit` bytes came: the rest was dropped.
    pub over: bool,
    /// The end marker was found.
    pub done: bool,
}

impl Stream {
    pub(crate) fn new(end: Vec<u8>, limit: u64) -> Self {
        Self { end, limit, kept: Vec::new(), over: false, done: false }
    }

    /// Takes what it can from the front of `buf`: the command's bytes up to the end marker
    /// (the marker itself too, when found). Bytes that could be the start of the marker stay in
    /// `buf` until more arrive.
    pub(crate) fn take(&mut self, buf: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let (take, found) = match find(buf, &self.end) {
            Some(at) => (at, true),
            None => (buf.len().saturating_sub(self.end.len() - 1), false),
        };
        let room = usize::try_from(self.limit).unwrap_or(usize::MAX).saturating_sub(self.kept.len());
        if take > room {
            self.over = true;
        }
        self.kept.extend_from_slice(&buf[..take.min(room)]);
        buf.drain(..if found { take + self.end.len() } else { take });
        self.done = found;
    }
}

/// Where `needle` first starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    fn marker() -> Marker {
        Marker::from_bytes([0xab; 16])
    }

    #[test]
    fn markers_are_random_and_hex() {
        let (a, b) = (Marker::new().unwrap(), Marker::new().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.0.len(), "engine-".len() + 32);
        assert!(a.0["engine-".len()..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(format!("{a:?}"), "Marker(..)", "never in logs");
    }

    #[test]
    fn started_lines_name_the_request_and_a_process_group() {
        let m = marker();
        let line = format!("{} started 4 1234\nout", m.0);
        assert_eq!(m.parse_started(line.as_bytes(), 4), Ok(Some((1234, line.len() - 3))));
        assert_eq!(m.parse_started(&line.as_bytes()[..10], 4), Ok(None));
        for bad in ["5 1234", "4 1", "4 0", "4 4294967296", "4 2147483648", "4 -7", "4 12 3", "4 ", "4"] {
            let line = format!("{} started {bad}\n", m.0);
            assert!(m.parse_started(line.as_bytes(), 4).is_err(), "accepted {bad:?}");
        }
        // Output before the started line, another session's marker, garbage.
        for bad in
            [format!("x{} started 4 12\n", m.0), "engine-00 started 4 12\n".to_owned(), "garbage".to_owned()]
        {
            assert!(m.parse_started(bad.as_bytes(), 4).is_err(), "accepted {bad:?}");
        }
        let endless = vec![b'e'; MAX_LINE];
        assert!(m.parse_started(&endless, 4).is_err());
    }

    #[test]
    fn what_comes_before_the_started_line_is_dropped() {
        let m = marker();
        let mut buf = format!("left behind\n{} started 2 77\nout", m.0).into_bytes();
        m.skip_to_started(&mut buf, 2);
        assert_eq!(m.parse_started(&buf, 2), Ok(Some((77, buf.len() - 3))));
        let mut buf = format!("{}{}", "noise".repeat(40), &m.0[..10]).into_bytes();
        m.skip_to_started(&mut buf, 2);
        assert!(
            buf.len() < 100 && buf.ends_with(&m.0.as_bytes()[..10]),
            "what may be the line's start stays"
        );
    }

    #[test]
    fn statuses_are_numbers_up_to_255() {
        assert_eq!(Marker::parse_status(b"3\nnext"), Ok(Some((3, 2))));
        assert_eq!(Marker::parse_status(b"25"), Ok(None));
        for bad in [&b"256\n"[..], b"-1\n", b"x\n", b"\n", b"1 2\n"] {
            assert!(Marker::parse_status(bad).is_err(), "accepted {:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_stream_ends_at_its_marker_even_split_across_reads() {
        let end = b"engine-x end 1\n".to_vec();
        let mut s = Stream::new(end.clone(), 100);
        let mut buf = b"hello engine-x en".to_vec();
        s.take(&mut buf);
        assert_eq!((s.kept.as_slice(), s.done), (&b"hel"[..], false));
        assert_eq!(buf, b"lo engine-x en", "what may be the marker's start stays");
        buf.extend_from_slice(b"d 1\nnext");
        s.take(&mut buf);
        assert_eq!((s.kept.as_slice(), s.done, s.over), (&b"hello "[..], true, false));
        assert_eq!(buf, b"next");
        // Past the limit: kept up to it, the rest dropped, the end still found.
        let mut s = Stream::new(end, 4);
        let mut buf = b"123456789engine-x end 1\n".to_vec();
        s.take(&mut buf);
        assert_eq!((s.kept.as_slice(), s.done, s.over), (&b"1234"[..], true, true));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_command_is_sent_as_whole_lines() {
        assert_eq!(command_lines("true"), ("true\n".into(), 1));
        assert_eq!(command_lines("a\nb\n"), ("a\nb\n".into(), 2));
        assert_eq!(command_lines(""), ("".into(), 0));
        assert_eq!(request_header(4, "x\n", 1, b"ab"), "4 1 2 t 2\n");
        assert_eq!(request_header(4, "x\n", 1, b"a\nb\n"), "4 1 4 h 2\n", "text ending a line");
        assert_eq!(request_header(5, "", 0, b"a\0b\n"), "5 0 4 b 0\n", "a NUL: binary");
        let big = vec![b'\n'; MAX_TEXT_STDIN + 1];
        assert_eq!(
            request_header(6, "a\nb\n", 2, &big),
            format!("6 2 {} b 4\n", big.len()),
            "too big for a variable"
        );
        assert_eq!(request_header(7, "x\n", 1, b""), "7 1 0 t 2\n");
    }

    /// Runs a loop locally with `input` as its stdin: the whole script under `sh` (`None`), or
    /// one body under its own shell. Returns its stdout and stderr.
    fn run_loop(m: &Marker, shell: Option<LoopShell>, input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (program, script) = match shell {
            None => ("sh", loop_script(m)),
            Some(LoopShell::Bash) => ("bash", loop_body(m, LoopShell::Bash)),
            Some(LoopShell::Sh) => ("sh", loop_body(m, LoopShell::Sh)),
        };
        let mut child = Command::new(program)
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.stdout, out.stderr)
    }

    fn request(id: u64, command: &str, stdin: &[u8]) -> Vec<u8> {
        let (command, lines) = command_lines(command);
        let mut bytes = request_header(id, &command, lines, stdin).into_bytes();
        bytes.extend_from_slice(command.as_bytes());
        bytes.extend_from_slice(stdin);
        bytes
    }

    /// Splits the loop's streams into replies to requests 1, 2, ... as the controller does:
    /// each one's status, stdout, stderr and the process group its shell reported.
    fn replies(
        m: &Marker,
        mut out: Vec<u8>,
        mut err: Vec<u8>,
        limit: u64,
    ) -> Vec<(u32, Vec<u8>, Vec<u8>, u32)> {
        let ready = m.ready();
        assert!(out.starts_with(&ready), "the ready line first");
        out.drain(..ready.len());
        let mut all = Vec::new();
        let mut id = 1;
        while !out.is_empty() {
            let (pgid, n) = m.parse_started(&out, id).unwrap().unwrap();
            out.drain(..n);
            let mut stdout = Stream::new(m.end_of_stdout(id), limit);
            stdout.take(&mut out);
            assert!(stdout.done, "request {id}'s stdout ends");
            let (status, n) = Marker::parse_status(&out).unwrap().unwrap();
            out.drain(..n);
            let mut stderr = Stream::new(m.end_of_stderr(id), limit);
            stderr.take(&mut err);
            assert!(stderr.done, "request {id}'s stderr ends");
            all.push((status, stdout.kept, stderr.kept, pgid));
            id += 1;
        }
        assert!(err.is_empty(), "nothing more on stderr: {:?}", String::from_utf8_lossy(&err));
        all
    }

    /// The loop itself, run locally: statuses, separate streams, binary stdin, output that
    /// looks like the protocol, output with no final newline, the process group it reports.
    #[test]
    fn the_loop_answers_each_request_in_order() {
        for shell in [None, Some(LoopShell::Bash), Some(LoopShell::Sh)] {
            each_request_answered_in_order(shell);
        }
    }

    fn each_request_answered_in_order(shell: Option<LoopShell>) {
        let m = marker();
        let all_bytes: Vec<u8> = (0..=255).collect();
        let mut input = Vec::new();
        input.extend(request(1, "echo out; echo err >&2; exit 3", b""));
        input.extend(request(2, "cat", &all_bytes));
        input.extend(request(
            3,
            "printf 'engine-reply 3 0 0 0\\nengine-00 end 3 0\\n'; printf 'x end 3\\n' >&2",
            b"",
        ));
        input.extend(request(4, "printf no-newline; printf e >&2", b""));
        // Its own process group, the one it reported (field 5 of /proc's stat).
        input.extend(request(5, "read -r _ _ _ _ g _ </proc/self/stat; echo \"$g\"", b""));
        input.extend(request(6, "read x; echo \"got $x\"", b""));
        // Lines kept as written: backslashes, blanks at either end, no final newline.
        input.extend(request(
            7,
            "printf '%s|' 'a\\\\b' '  x  '\n  if true; then\n\techo \\\n  two\n  fi",
            b"",
        ));
        input.extend(request(8, "", b""));
        input.extend(request(9, "exit 4\n", b""));
        // The umask the loop started with, not the loop's own; nothing of the loop's variables.
        input.extend(request(
            10,
            "umask; echo \"[$d$c$u$i$id$cn$cb$il$ik$l$s$t$k$v$nl]\"; ls /proc/self/fd",
            b"",
        ));
        // Text stdin (read by bash itself): backslashes, blank lines, no final newline, bytes
        // that are not UTF-8; then a command to show the next request was read where it starts.
        let text = b"a\\b\n\n  x\r\n\xff\xfe tail";
        input.extend(request(11, "cat", text));
        input.extend(request(12, "echo next", b""));
        // Text stdin that ends with a newline (a here-string under bash): kept exactly, the
        // blank line at its end too; then a command whose characters are several bytes each.
        let lines = b"a\\b\n\n  x\r\n\xff\n\n";
        input.extend(request(13, "cat", lines));
        input.extend(request(14, "printf '%s\\n' 'h\u{e9}llo \u{2713}'; wc -c", b"one\n"));
        let (out, err) = run_loop(&m, shell, &input);
        let got = replies(&m, out, err, 1000);
        let streams: Vec<(u32, Vec<u8>, Vec<u8>)> =
            got.iter().map(|(s, o, e, _)| (*s, o.clone(), e.clone())).collect();
        assert_eq!(streams.len(), 14, "{shell:?}");
        assert_eq!(streams[12], (0, lines.to_vec(), Vec::new()), "{shell:?}");
        assert_eq!(streams[13], (0, "h\u{e9}llo \u{2713}\n4\n".as_bytes().to_vec(), Vec::new()), "{shell:?}");
        assert_eq!(streams[10], (0, text.to_vec(), Vec::new()), "{shell:?}");
        assert_eq!(streams[11], (0, b"next\n".to_vec(), Vec::new()), "{shell:?}");
        assert_eq!(streams[0], (3, b"out\n".to_vec(), b"err\n".to_vec()));
        assert_eq!(streams[1], (0, all_bytes, Vec::new()));
        assert_eq!(streams[2].1, b"engine-reply 3 0 0 0\nengine-00 end 3 0\n");
        assert_eq!(streams[2].2, b"x end 3\n");
        assert_eq!(streams[3], (0, b"no-newline".to_vec(), b"e".to_vec()));
        assert_eq!(streams[4], (0, format!("{}\n", got[4].3).into_bytes(), Vec::new()), "its own group");
        assert_ne!(got[4].3, got[5].3, "a group per command");
        assert_eq!(streams[5], (0, b"got \n".to_vec(), Vec::new()), "no stdin: EOF at once");
        assert_eq!(streams[6], (0, b"a\\\\b|  x  |two\n".to_vec(), Vec::new()));
        assert_eq!(streams[7], (0, Vec::new(), Vec::new()), "an empty command");
        assert_eq!(streams[8].0, 4);
        let umask = Command::new("sh").args(["-c", "umask"]).output().unwrap().stdout;
        let text = String::from_utf8_lossy(&streams[9].1).into_owned();
        let mut lines = text.lines();
        assert_eq!(lines.next().map(str::as_bytes), Some(umask.trim_ascii_end()), "{shell:?}");
        assert_eq!(lines.next(), Some("[]"), "{shell:?}");
        // No descriptor but those a command run straight from here has (this process may have
        // inherited some, and the loop closes fd 3, which it uses itself): none of the loop's.
        let plain = Command::new("sh")
            .args(["-c", "ls /proc/self/fd"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
            .stdout;
        let plain = String::from_utf8_lossy(&plain).into_owned();
        let plain: Vec<&str> = plain.lines().collect();
        let fds: Vec<&str> = lines.collect();
        assert!(["0", "1", "2"].iter().all(|fd| fds.contains(fd)), "{shell:?}: {fds:?}");
        assert!(fds.iter().all(|fd| plain.contains(fd)), "{shell:?}: {fds:?} against {plain:?}");
    }
}
