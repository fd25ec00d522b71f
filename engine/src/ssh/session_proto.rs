//! The wire format of a host session (see [`super::session`]): the `sh` loop run on the host,
//! the request the controller writes to it, and the strict parser of its replies.
//!
//! A request is a header line `<id> <cmd_lines> <stdin_len>\n` followed by the command as
//! exactly `cmd_lines` lines (the controller ends it with a newline when it has none) and
//! `stdin_len` bytes of stdin. Once the command has started, the loop says so with
//! `engine-started <id> <pgid>\n`: the process group the controller kills at the command's
//! timeout or when it gives the command up. The reply is a header line
//! `engine-reply <id> <status> <out_len> <err_len>\n` followed by exactly `out_len` bytes of
//! stdout and `err_len` bytes of stderr. The lengths make the framing immune to output that
//! contains a header's text; everything the host sends is checked against the request it
//! answers and the output limit, and anything else is
//! [`Malformed`]: the session is then dropped, as a lost connection would be.

/// The first line the loop prints once its private directory exists.
pub(crate) const READY: &[u8] = b"engine-session-ready\n";
/// What every reply header line starts with.
const REPLY: &[u8] = b"engine-reply ";
/// The longest reply header line accepted, newline included (`engine-reply` and four
/// numbers of at most 20 digits each, with room to spare).
pub(crate) const MAX_HEADER: usize = 128;

/// The POSIX `sh` loop run on the host, as one script (for `sh -c`). `limit` is the output
/// limit: the loop keeps at most `limit + 1` bytes of each stream, so that the controller sees
/// a command that printed more than `limit` without the host sending all of it. It uses `sh`,
/// from coreutils `mktemp`, `mkfifo`, `head`, `stat` and `cat`, and util-linux's `setsid`;
/// nothing is installed.
///
/// What a command costs the host is the point of the session, so the loop starts as few
/// processes as it can: the command's lines are read by the shell's own `read`; two `head`s
/// (one per stream) and the command's `sh` run it; `stat` and `cat` send its output, and only
/// when there is any (`test -s` is built in).
///
/// - Its private directory (`mktemp -d`, mode 0700 under `umask 077`) holds two FIFOs, the
///   command's stdin and its output, and is removed when the loop ends (EOF on its stdin, the
///   channel closed, or a signal).
/// - The command runs as `setsid sh -c COMMAND` with stdin from a file (`/dev/null` when there
///   is none): `setsid` (which does not fork: the loop's child is never a group leader) gives
///   it a process group of its own, whose id the loop reports before it waits. The controller
///   times the command and kills that group, as it does under `exec`.
/// - Its stdout and stderr go through FIFOs to a `head -c LIMIT+1` each, into files: past the
///   limit `head` ends and the command's next write fails (SIGPIPE), so no host fills its disk
///   from one command.
pub(crate) fn loop_script(limit: u64) -> String {
    let keep = limit.saturating_add(1);
    format!(
        "# engine-session\n\
umask 077\n\
d=$(mktemp -d) || exit 1\n\
trap 'rm -rf \"$d\"' EXIT\n\
trap 'exit 1' HUP INT TERM PIPE\n\
mkfifo \"$d/po\" \"$d/pe\" || exit 1\n\
nl='\n'\n\
printf 'engine-session-ready\\n'\n\
while IFS=' ' read -r id cn il; do\n\
  c=\n\
  while [ \"$cn\" -gt 0 ]; do IFS= read -r l || exit 1; c=\"$c$l$nl\"; cn=$((cn - 1)); done\n\
  if [ \"$il\" -gt 0 ]; then head -c \"$il\" >\"$d/i\" || exit 1; i=\"$d/i\"; else i=/dev/null; fi\n\
  head -c {keep} <\"$d/po\" >\"$d/o\" &\n\
  head -c {keep} <\"$d/pe\" >\"$d/e\" &\n\
  setsid sh -c \"$c\" <\"$i\" >\"$d/po\" 2>\"$d/pe\" &\n\
  p=$!\n\
  printf 'engine-started %s %s\\n' \"$id\" \"$p\"\n\
  wait \"$p\"\n\
  s=$?\n\
  wait\n\
  if [ -s \"$d/o\" ] || [ -s \"$d/e\" ]; then\n\
    set -- $(stat -c %s \"$d/o\" \"$d/e\")\n\
    printf 'engine-reply %s %s %s %s\\n' \"$id\" \"$s\" \"$1\" \"$2\"\n\
    cat \"$d/o\" \"$d/e\"\n\
  else\n\
    printf 'engine-reply %s %s 0 0\\n' \"$id\" \"$s\"\n\
  fi\n\
done\n"
    )
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

/// The header of request `id`.
pub(crate) fn request_header(id: u64, command_lines: usize, stdin_len: usize) -> String {
    format!("{id} {command_lines} {stdin_len}\n")
}

/// What every started line starts with.
const STARTED: &[u8] = b"engine-started ";

/// Finds and parses the started line of request `id` at the start of `buf`: the process group
/// of the command. `Ok(None)`: the line is not complete yet. `Ok(Some((pgid, n)))`: `n` bytes
/// of `buf` were the line. A group id of 0 or 1 is refused: `kill -- -1` would signal every
/// process the user may signal.
pub(crate) fn parse_started(buf: &[u8], id: u64) -> Result<Option<(u32, usize)>, Malformed> {
    let Some(line) = header_line(buf, STARTED, "engine-started")? else { return Ok(None) };
    let fields: Vec<&[u8]> = line[STARTED.len()..].split(|&b| b == b' ').collect();
    let [got_id, pgid] = fields.as_slice() else {
        return Err(Malformed(format!("{} fields in the started line, not 2", fields.len())));
    };
    let got_id = number(got_id, "id")?;
    if got_id != id {
        return Err(Malformed(format!("it says request {got_id} started, not {id}")));
    }
    let pgid = number(pgid, "process group")?;
    let pgid = u32::try_from(pgid)
        .ok()
        .filter(|&p| p > 1 && i32::try_from(p).is_ok())
        .ok_or_else(|| Malformed(format!("{pgid} is no process group to run a command in")))?;
    Ok(Some((pgid, line.len() + 1)))
}

/// The line at the start of `buf` (without its newline), which must start with `prefix`
/// (named `what` in messages). `Ok(None)`: not complete yet, and so far a possible one.
fn header_line<'a>(buf: &'a [u8], prefix: &[u8], what: &str) -> Result<Option<&'a [u8]>, Malformed> {
    let Some(newline) = buf.iter().take(MAX_HEADER).position(|&b| b == b'\n') else {
        if buf.len() >= MAX_HEADER {
            return Err(Malformed(format!("no header line within {MAX_HEADER} bytes")));
        }
        // What arrived so far must be the start of the line.
        let start = &buf[..buf.len().min(prefix.len())];
        if !prefix.starts_with(start) {
            return Err(Malformed(format!("the reply does not start with `{what}`")));
        }
        return Ok(None);
    };
    let line = &buf[..newline];
    if !line.starts_with(prefix) {
        return Err(Malformed(format!("the reply does not start with `{what}`")));
    }
    Ok(Some(line))
}

/// A parsed reply header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplyHeader {
    /// The command's exit status (as its shell reports it: 128+N when a signal N ended it).
    pub status: u32,
    pub out_len: u64,
    pub err_len: u64,
}

/// Why a reply was refused. The session that sent it is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the host's session sent a malformed reply: {0}")]
pub(crate) struct Malformed(pub String);

/// Finds and parses the reply header at the start of `buf`, the reply to request `id`, with
/// output streams of at most `limit + 1` bytes each (what the loop keeps). `Ok(None)`: the
/// header line is not complete yet. `Ok(Some((header, n)))`: `n` bytes of `buf` were the
/// header line.
pub(crate) fn parse_reply_header(
    buf: &[u8],
    id: u64,
    limit: u64,
) -> Result<Option<(ReplyHeader, usize)>, Malformed> {
    let Some(line) = header_line(buf, REPLY, "engine-reply")? else { return Ok(None) };
    let newline = line.len();
    let fields = &line[REPLY.len()..];
    let fields: Vec<&[u8]> = fields.split(|&b| b == b' ').collect();
    let [got_id, status, out_len, err_len] = fields.as_slice() else {
        return Err(Malformed(format!("{} fields in the header, not 4", fields.len())));
    };
    let got_id = number(got_id, "id")?;
    if got_id != id {
        return Err(Malformed(format!("it answers request {got_id}, not {id}")));
    }
    let status = number(status, "status")?;
    if status > 255 {
        return Err(Malformed(format!("exit status {status} is over 255")));
    }
    let keep = limit.saturating_add(1);
    let out_len = number(out_len, "stdout length")?;
    let err_len = number(err_len, "stderr length")?;
    for (len, name) in [(out_len, "stdout"), (err_len, "stderr")] {
        if len > keep {
            return Err(Malformed(format!("{len} bytes of {name}, over the {keep} the session keeps")));
        }
    }
    let status = u32::try_from(status).map_err(|_| Malformed("status out of range".to_owned()))?;
    Ok(Some((ReplyHeader { status, out_len, err_len }, newline + 1)))
}

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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    const LIMIT: u64 = 1000;

    #[test]
    fn a_well_formed_header_is_parsed_and_its_length_returned() {
        let buf = b"engine-reply 7 3 5 0\nhello";
        let (header, n) = parse_reply_header(buf, 7, LIMIT).unwrap().unwrap();
        assert_eq!(header, ReplyHeader { status: 3, out_len: 5, err_len: 0 });
        assert_eq!(&buf[n..], b"hello");
    }

    #[test]
    fn an_incomplete_header_waits_for_more() {
        assert_eq!(parse_reply_header(b"", 1, LIMIT), Ok(None));
        assert_eq!(parse_reply_header(b"engine-re", 1, LIMIT), Ok(None));
        assert_eq!(parse_reply_header(b"engine-reply 1 0 1", 1, LIMIT), Ok(None));
    }

    #[test]
    fn hostile_headers_are_malformed() {
        let refused = [
            &b"engine-reply 2 0 0 0\n"[..], // another request's reply
            b"engine-reply 1 0 1002 0\n",   // more stdout than the loop keeps
            b"engine-reply 1 0 0 99999999999999999999\n",
            b"engine-reply 1 0 0 999999999999999999999\n", // 21 digits
            b"engine-reply 1 256 0 0\n",                   // no such exit status
            b"engine-reply 1 -1 0 0\n",
            b"engine-reply 1 +1 0 0\n",
            b"engine-reply 1 0 0\n",     // a field missing
            b"engine-reply 1 0 0 0 0\n", // one too many
            b"engine-reply 1  0 0 0\n",  // an empty field
            b"engine-reply 1 0 0 0 \n",
            b"engine-reply 1 0x1 0 0\n",
            b"Engine-reply 1 0 0 0\n",
            b"garbage\n",
            b"garbage", // wrong before the line is even complete
            b"\n",
        ];
        for reply in refused {
            assert!(
                parse_reply_header(reply, 1, LIMIT).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(reply)
            );
        }
        // A line that never ends is refused once it is longer than any header.
        let mut endless = b"engine-reply 1 ".to_vec();
        endless.extend(std::iter::repeat_n(b'1', MAX_HEADER));
        assert!(parse_reply_header(&endless, 1, LIMIT).is_err());
        // Exactly the kept bytes (limit + 1) are fine: that is how "too much" is told.
        assert!(parse_reply_header(b"engine-reply 1 0 1001 1001\n", 1, LIMIT).unwrap().is_some());
    }

    #[test]
    fn a_command_is_sent_as_whole_lines() {
        assert_eq!(command_lines("true"), ("true\n".into(), 1));
        assert_eq!(command_lines("a\nb\n"), ("a\nb\n".into(), 2));
        assert_eq!(command_lines(""), ("".into(), 0));
    }

    #[test]
    fn request_headers_give_the_lengths() {
        assert_eq!(request_header(3, 10, 0), "3 10 0\n");
        assert_eq!(request_header(4, 1, 2), "4 1 2\n");
    }

    #[test]
    fn started_lines_name_the_request_and_a_process_group() {
        assert_eq!(parse_started(b"engine-started 4 1234\nengine-reply", 4), Ok(Some((1234, 22))));
        assert_eq!(parse_started(b"engine-sta", 4), Ok(None));
        assert_eq!(parse_started(b"engine-started 4 12", 4), Ok(None));
        let refused = [
            &b"engine-started 5 1234\n"[..], // another request
            b"engine-started 4 1\n",         // kill -- -1 would take every process
            b"engine-started 4 0\n",
            b"engine-started 4 4294967296\n",
            b"engine-started 4 2147483648\n", // no pid is that large
            b"engine-started 4 -7\n",
            b"engine-started 4 12 3\n",
            b"engine-started 4\n",
            b"engine-reply 4 0 0 0\n", // a reply before the start
            b"garbage",
        ];
        for line in refused {
            assert!(parse_started(line, 4).is_err(), "accepted {:?}", String::from_utf8_lossy(line));
        }
    }

    /// Runs the loop locally under `sh` with `input` as its stdin; returns its stdout.
    fn run_loop(input: &[u8], limit: u64) -> Vec<u8> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(loop_script(limit))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap().stdout
    }

    fn request(id: u64, command: &str, stdin: &[u8]) -> Vec<u8> {
        let (command, lines) = command_lines(command);
        let mut bytes = request_header(id, lines, stdin.len()).into_bytes();
        bytes.extend_from_slice(command.as_bytes());
        bytes.extend_from_slice(stdin);
        bytes
    }

    /// Splits `out` into replies to requests 1, 2, ... as the controller does: each one's
    /// status, stdout, stderr and the process group the loop said it started.
    fn replies(mut out: &[u8], limit: u64) -> Vec<(u32, Vec<u8>, Vec<u8>, u32)> {
        out = out.strip_prefix(READY).expect("the ready line first");
        let mut all = Vec::new();
        let mut id = 1;
        while !out.is_empty() {
            let (pgid, n) = parse_started(out, id).unwrap().unwrap();
            out = &out[n..];
            let (header, n) = parse_reply_header(out, id, limit).unwrap().unwrap();
            let (o, e) = (usize::try_from(header.out_len).unwrap(), usize::try_from(header.err_len).unwrap());
            all.push((header.status, out[n..n + o].to_vec(), out[n + o..n + o + e].to_vec(), pgid));
            out = &out[n + o + e..];
            id += 1;
        }
        all
    }

    /// The loop itself, run locally: statuses, separate streams, binary stdin, output that
    /// looks like a header, the limit, the process group it reports.
    #[test]
    fn the_loop_answers_each_request_in_order() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let mut input = Vec::new();
        input.extend(request(1, "echo out; echo err >&2; exit 3", b""));
        input.extend(request(2, "cat", &all_bytes));
        input.extend(request(
            3,
            "printf 'engine-reply 3 0 0 0\\n'; printf 'engine-reply 9 0 5 5\\n' >&2",
            b"",
        ));
        input.extend(request(4, "head -c 5000 /dev/zero", b""));
        // Its own process group, the one the loop reported (`ps` field 5 of /proc's stat).
        input.extend(request(5, "read -r _ _ _ _ g _ </proc/$$/stat; echo \"$g\"", b""));
        input.extend(request(6, "read x; echo \"got $x\"", b""));
        // Lines kept as written: backslashes, blanks at either end, no final newline.
        input.extend(request(
            7,
            "printf '%s|' 'a\\\\b' '  x  '\n  if true; then\n\techo \\\n  two\n  fi",
            b"",
        ));
        input.extend(request(8, "", b""));
        input.extend(request(9, "exit 4\n", b""));
        let got = replies(&run_loop(&input, LIMIT), LIMIT);
        let streams: Vec<(u32, Vec<u8>, Vec<u8>)> =
            got.iter().map(|(s, o, e, _)| (*s, o.clone(), e.clone())).collect();
        assert_eq!(streams.len(), 9);
        assert_eq!(streams[0], (3, b"out\n".to_vec(), b"err\n".to_vec()));
        assert_eq!(streams[1], (0, all_bytes, Vec::new()));
        assert_eq!(streams[2].1, b"engine-reply 3 0 0 0\n");
        assert_eq!(streams[2].2, b"engine-reply 9 0 5 5\n");
        assert_eq!(streams[3].1.len() as u64, LIMIT + 1, "kept one byte past the limit, no more");
        assert_eq!(streams[4], (0, format!("{}\n", got[4].3).into_bytes(), Vec::new()), "its own group");
        assert_ne!(got[4].3, got[5].3, "a group per command");
        assert_eq!(streams[5], (0, b"got \n".to_vec(), Vec::new()), "no stdin: EOF at once");
        assert_eq!(streams[6], (0, b"a\\\\b|  x  |two\n".to_vec(), Vec::new()));
        assert_eq!(streams[7], (0, Vec::new(), Vec::new()), "an empty command");
        assert_eq!(streams[8].0, 4);
    }
}
