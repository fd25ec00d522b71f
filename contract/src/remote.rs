//! File and command operations built on [`Host::exec`], shared by every module.
//!
//! Each function is one round trip. Values reach the command line only through
//! [`shell::quote`](crate::shell::quote); content always travels on stdin. What a host
//! answers is checked field by field before use ([`parse_stat`], [`parse_stat_many`]): the
//! host is not trusted, see [`crate::untrusted`].

use crate::error::ModuleError;
use crate::host::{Effect, Exec, ExecOutput, Host};
use crate::shell::quote;
pub use crate::stat::{FileKind, FileStat};
use crate::untrusted::{Malformed, has_invisible, printable_bytes};

/// Runs `command` and fails with its stderr when it exits non-zero.
pub async fn run_checked(host: &dyn Host, exec: Exec) -> Result<ExecOutput, ModuleError> {
    let command = exec.command.clone();
    let output = host.exec(exec).await?;
    if output.success() { Ok(output) } else { Err(command_error(command, &output)) }
}

/// The error for a command that ran and failed.
pub fn command_error(command: String, output: &ExecOutput) -> ModuleError {
    ModuleError::Command {
        command,
        status: output.status.map_or_else(|| "a signal".to_owned(), |s| format!("status {s}")),
        stderr: output.stderr_tail(10),
    }
}

/// Stats `path` (without following a final symlink) and hashes it when it is a regular file.
/// Returns `None` when nothing is there. Answered from [`Host::cached_stat`] when the transport
/// holds a current answer.
pub async fn stat(host: &dyn Host, path: &str) -> Result<Option<FileStat>, ModuleError> {
    if let Some(known) = host.cached_stat(path).await {
        return Ok(known);
    }
    let p = quote(path);
    let script = format!(
        "p={p}; if [ -e \"$p\" ] || [ -L \"$p\" ]; then \
         stat -c '%F|%a|%U|%G' -- \"$p\" && \
         if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then sha256sum <\"$p\"; fi; \
         else echo absent; fi"
    );
    let out = run_checked(host, Exec::new(script).effect(Effect::ReadOnly)).await?;
    parse_stat(&out.stdout_text()).map_err(|m| m.on(host.name(), format!("`stat` of {path}")).into())
}

/// Reads `stat -c '%F|%a|%U|%G'` (and, for a regular file, `sha256sum`'s line). Every field is
/// checked: the host may be hostile (see [`crate::untrusted`]).
pub fn parse_stat(text: &str) -> Result<Option<FileStat>, Malformed> {
    let mut lines = text.lines();
    let first = lines.next().ok_or_else(|| Malformed::whole("no output"))?;
    if first == "absent" {
        return Ok(None);
    }
    let fields: Vec<&str> = first.split('|').collect();
    let [kind, mode, owner, group] = fields[..] else {
        return Err(Malformed::new(first, "not what `stat` prints"));
    };
    let kind = match kind {
        "regular file" | "regular empty file" => FileKind::File,
        "directory" => FileKind::Directory,
        "symbolic link" => FileKind::Symlink,
        _ => FileKind::Other,
    };
    let mode = parse_mode(mode).ok_or_else(|| Malformed::new(first, "a mode that is not one"))?;
    if !is_account_name(owner) || !is_account_name(group) {
        return Err(Malformed::new(first, "an owner or group that is not a name"));
    }
    let sha256 = match lines.next().and_then(|l| l.split_whitespace().next()) {
        Some(sum) if kind == FileKind::File => {
            Some(parse_sha256(sum).ok_or_else(|| Malformed::new(sum, "a checksum that is not a SHA-256"))?)
        }
        _ => None,
    };
    Ok(Some(FileStat { kind, mode, owner: owner.to_owned(), group: group.to_owned(), sha256 }))
}

/// Permission bits as `stat %a` prints them: 1 to 4 octal digits.
pub fn parse_mode(text: &str) -> Option<u32> {
    ((1..=4).contains(&text.len()) && text.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(text, 8).ok())
        .flatten()
}

/// A SHA-256 as `sha256sum` prints it: 64 hex digits (given back in lower case).
pub fn parse_sha256(text: &str) -> Option<String> {
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| text.to_ascii_lowercase())
}

/// A user or group name as `stat` prints one (a number for an id without a name): printable,
/// no longer than any system allows.
pub fn is_account_name(name: &str) -> bool {
    (1..=256).contains(&name.len()) && !has_invisible(name)
}

/// What [`stat_many`] learned about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub path: String,
    /// As [`stat`] would return it.
    pub stat: Option<FileStat>,
    /// No directory above the path is a symbolic link, so the path names one object and
    /// writes through other names cannot reach it.
    pub direct: bool,
}

/// Stats many absolute paths in one round trip: one `stat` and one `sha256sum` process for all
/// of them. Paths that vanish or cannot be read while it runs are left out of the answer.
pub async fn stat_many(host: &dyn Host, paths: &[String]) -> Result<Vec<Probe>, ModuleError> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let list = crate::shell::join(paths.iter().map(String::as_str));
    // Line 1: two flags per path (a linked parent, exists). Then NUL-separated `stat` records
    // (name, info), an empty field, and NUL-terminated `sha256sum -z` lines.
    let script = format!(
        "set --; for p in {list}; do a=${{p%/*}}; f=1; \
         while [ -n \"$a\" ]; do if [ -L \"$a\" ]; then f=0; fi; a=${{a%/*}}; done; \
         if [ -e \"$p\" ] || [ -L \"$p\" ]; then set -- \"$@\" \"$p\"; printf '%s1' $f; \
         else printf '%s0' $f; fi; done; echo; \
         if [ $# -gt 0 ]; then stat --printf '%n\\0%F|%a|%U|%G\\0' -- \"$@\" 2>/dev/null; fi; printf '\\0'; \
         n=$#; for p in \"$@\"; do if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then set -- \"$@\" \"$p\"; fi; done; \
         shift $n; if [ $# -gt 0 ]; then sha256sum -z -- \"$@\" 2>/dev/null; fi; exit 0"
    );
    let out = run_checked(host, Exec::new(script).effect(Effect::ReadOnly)).await?;
    parse_stat_many(paths, &out.stdout)
        .map_err(|m| m.on(host.name(), format!("`stat` of {} paths", paths.len())).into())
}

/// Reads [`stat_many`]'s answer for `paths`, checking every field (see [`parse_stat`]).
pub fn parse_stat_many(paths: &[String], out: &[u8]) -> Result<Vec<Probe>, Malformed> {
    let bad = |entry: &[u8], why: &str| Malformed { entry: printable_bytes(entry), why: why.to_owned() };
    let newline = out.iter().position(|&b| b == b'\n').ok_or_else(|| Malformed::whole("no flags line"))?;
    let flags = &out[..newline];
    if flags.len() != paths.len().saturating_mul(2) || flags.iter().any(|f| !matches!(f, b'0' | b'1')) {
        return Err(bad(flags, &format!("not two flags (0 or 1) for each of {} paths", paths.len())));
    }
    let mut fields = out[newline + 1..].split(|&b| b == 0);
    let mut infos = std::collections::HashMap::new();
    loop {
        let name = fields.next().ok_or_else(|| Malformed::whole("stat records end early"))?;
        if name.is_empty() {
            break;
        }
        let info = fields.next().ok_or_else(|| bad(name, "a stat record without its info"))?;
        infos.insert(name.to_vec(), String::from_utf8_lossy(info).into_owned());
    }
    let mut sums = std::collections::HashMap::new();
    for line in fields.filter(|l| !l.is_empty()) {
        let split =
            line.windows(2).position(|w| w == b"  ").ok_or_else(|| bad(line, "not a sha256sum line"))?;
        let sum = std::str::from_utf8(&line[..split]).ok().and_then(parse_sha256);
        let sum = sum.ok_or_else(|| bad(line, "a checksum that is not a SHA-256"))?;
        sums.insert(line[split + 2..].to_vec(), sum);
    }
    let mut probes = Vec::with_capacity(paths.len());
    for (path, flag) in paths.iter().zip(flags.chunks(2)) {
        let direct = flag[0] == b'1';
        let stat = if flag[1] == b'0' {
            None
        } else {
            let Some(info) = infos.get(path.as_bytes()) else { continue };
            let mut stat =
                parse_stat(info)?.ok_or_else(|| Malformed::new(path, "an existing path stated as absent"))?;
            if stat.kind == FileKind::File {
                // A file whose hash could not be taken is left to a task's own stat.
                let Some(sum) = sums.get(path.as_bytes()) else { continue };
                stat.sha256 = Some(sum.clone());
            }
            Some(stat)
        };
        probes.push(Probe { path: path.clone(), stat, direct });
    }
    Ok(probes)
}

/// Reads a whole file.
pub async fn read(host: &dyn Host, path: &str) -> Result<Vec<u8>, ModuleError> {
    let out =
        run_checked(host, Exec::new(format!("cat -- {}", quote(path))).effect(Effect::ReadOnly)).await?;
    Ok(out.stdout)
}

/// Ownership and permissions to set on a written file or directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Attrs {
    /// Shell commands that set these attributes on the path held in shell variable `var`.
    /// Owner first, then mode: `chown` clears the setuid and setgid bits of a regular file
    /// (for root too, on Linux), so a mode of `4755` set before it would be lost, and a task
    /// asking for both would never converge.
    fn commands(&self, var: &str) -> String {
        let mut script = String::new();
        match (&self.owner, &self.group) {
            (Some(o), Some(g)) => {
                script.push_str(&format!("chown -- {}:{} \"${var}\"; ", quote(o), quote(g)))
            }
            (Some(o), None) => script.push_str(&format!("chown -- {} \"${var}\"; ", quote(o))),
            (None, Some(g)) => script.push_str(&format!("chgrp -- {} \"${var}\"; ", quote(g))),
            (None, None) => {}
        }
        if let Some(mode) = self.mode {
            script.push_str(&format!("chmod {mode:04o} -- \"${var}\"; "));
        }
        script
    }
}

/// What [`write_atomic`] appends to a path for its temporary file: a `mktemp` template, whose
/// six `X`s become six letters or digits.
const TEMP_SUFFIX: &str = ".engine-XXXXXX";

/// A temporary file of [`write_atomic`] not modified for this long is stale: the write that
/// made it was killed, and a later write of the same path removes it. A live write keeps its
/// file's mtime fresh while the content arrives, and the engine kills a command after its
/// timeout (`--command-timeout`, 10 minutes by default), so an hour is far beyond any write
/// still running. Should a write ever stall longer than that with its file untouched, losing
/// the file makes that write fail (its `chmod` or `mv` finds nothing) and leaves the target as
/// it was: never a partial file.
pub const STALE_TEMP_MINUTES: u32 = 60;

/// Shell commands that remove the stale temporary files of the path held in shell variable
/// `var`: the siblings named as [`TEMP_SUFFIX`] names them (the path itself, quoted so that
/// nothing in it is a pattern, then `.engine-` and six letters or digits), that are regular
/// files and were last modified more than [`STALE_TEMP_MINUTES`] ago. Best effort: a temporary
/// file that cannot be removed never stops the write. Ends with `; ` and leaves `$@` empty.
///
/// `find` has no `--` before its start points (one beginning with `-` is read as a test), so a
/// relative name is given as `./NAME`.
fn sweep_stale_temps(var: &str) -> String {
    let pattern = TEMP_SUFFIX.replace('X', "[[:alnum:]]");
    format!(
        "set --; for s in \"${var}\"{pattern}; do \
         if [ -f \"$s\" ] && [ ! -L \"$s\" ]; then case $s in /*) ;; *) s=./$s;; esac; \
         set -- \"$@\" \"$s\"; fi; done; \
         if [ $# -gt 0 ]; then find \"$@\" -maxdepth 0 -type f -mmin +{STALE_TEMP_MINUTES} \
         -delete 2>/dev/null || :; set --; fi; "
    )
}

/// Writes `content` to `path` atomically: a temporary file in the same directory gets the
/// content, mode and owner, is fsynced, and is renamed over `path`. A reader (or a crash)
/// sees either the old file or the new one, never a partial one. The temporary file is
/// renamed only when it holds every byte: stdin is the content and then the line
/// [`END_OF_CONTENT`]; `dd` copies exactly the content's length, and the shell then reads that
/// line. If the controller dies or the connection drops mid-transfer, the copy sees its input
/// end early and the line is missing, which stops the rename.
///
/// Processes are what a write costs the host, so it starts two and forks for one: `dd`
/// creates the temporary file, copies and fsyncs (`conv=excl,fsync`), and the program that
/// renames it, which the script's shell becomes (`exec`). The temporary file's name is the path,
/// `.engine-` and six letters or digits the controller draws (as `mktemp` would); `excl`
/// creates it with `O_CREAT|O_EXCL`, so nothing already there (a file, or a link planted to
/// redirect the write) is ever opened; a name already taken fails the write before `dd`
/// runs, and nothing is removed. A mode within `0666` is made by the umask at creation; a
/// mode with execute or special bits (and an owner or group) is set on the temporary file
/// afterwards, by `chown`/`chmod`, before the rename. No mode: `0600`.
///
/// A write that fails before the rename removes its temporary file (`trap`), a directory
/// found at `path` included. One that is killed (`kill -9` of its process group when a run
/// is aborted or a command times out, a host that dies), or whose `mv` itself fails (the
/// target is immutable, or is another user's file in a sticky directory), leaves it behind.
/// So each write first removes the stale temporary files of the same path: see
/// [`STALE_TEMP_MINUTES`]. When there are none (the usual case) that costs no process at all:
/// the shell's own glob finds them, and only a match runs `find`.
///
/// The rename is one `rename(2)` of the temporary file onto `path` itself, by util-linux's
/// `rename.ul` where the host has it (Debian 12 and 13), else by `mv -T` (GNU coreutils; BusyBox's
/// `mv` lacks it): see [`rename_commands`]. A directory that appeared at
/// `path` fails the write (plain `mv` would move the file into it), and a symbolic link that
/// appeared there is replaced, never followed (plain `mv` follows one to a directory).
pub async fn write_atomic(
    host: &dyn Host,
    path: &str,
    content: &[u8],
    attrs: &Attrs,
) -> Result<(), ModuleError> {
    let script = write_script(path, content.len(), attrs)?;
    let stdin = with_end_of_content(content.to_vec());
    run_checked(host, Exec::new(script).stdin(stdin).effect(Effect::Write(path.to_owned()))).await?;
    Ok(())
}

/// The line that follows the content on the stdin of a command that receives bytes
/// ([`write_atomic`], an archive's upload): read only when every byte of the content came
/// before it.
pub const END_OF_CONTENT: &str = "engine-end-of-content";

/// `content` as [`receive_commands`] reads it on stdin: then the line [`END_OF_CONTENT`].
pub fn with_end_of_content(mut content: Vec<u8>) -> Vec<u8> {
    content.reserve(END_OF_CONTENT.len() + 1);
    content.extend_from_slice(END_OF_CONTENT.as_bytes());
    content.push(b'\n');
    content
}

/// Shell commands that copy exactly `len` bytes of stdin (as [`with_end_of_content`] made it)
/// into the file named by shell variable `var`, with `dd`'s extra `conv` flags (`excl,fsync`,
/// say), and then read the line [`END_OF_CONTENT`], which an input cut short (the controller
/// died, the link dropped) lacks: then they print `engine: ` and `cut_short` (shell text inside
/// double quotes) on stderr and exit 1. `dd` stops at `len` bytes, so nothing parses its count.
pub fn receive_commands(var: &str, len: usize, conv: Option<&str>, cut_short: &str) -> String {
    let conv = conv.map(|c| format!(" conv={c}")).unwrap_or_default();
    format!(
        "LC_ALL=C dd of=\"${var}\" bs=65536 count={len} iflag=count_bytes,fullblock{conv} status=none; \
         IFS= read -r k || k=; \
         [ \"$k\" = {END_OF_CONTENT} ] || {{ echo \"engine: {cut_short}\" >&2; exit 1; }}; "
    )
}

/// The command of [`write_atomic`] for `len` bytes on its stdin.
fn write_script(path: &str, len: usize, attrs: &Attrs) -> Result<String, ModuleError> {
    let (umask, attrs) = match attrs.mode {
        Some(mode) if mode & !0o666 == 0 => (0o777 & !mode, Attrs { mode: None, ..attrs.clone() }),
        Some(_) | None => (0o077, attrs.clone()),
    };
    let tag = temp_tag()?;
    Ok(format!(
        "set -e; p={p}; {sweep}t=\"$p\"{quoted_tag}; umask {umask:04o}; \
         if [ -e \"$t\" ] || [ -L \"$t\" ]; then echo \"engine: $t is in the way; $p left as it was\" >&2; exit 1; fi; \
         trap 'rm -f -- \"$t\"' EXIT; \
         {receive}if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then echo \"engine: cannot overwrite directory $p with a file; left as it was\" >&2; exit 1; fi; \
         {attrs}trap - EXIT; {rename}",
        p = quote(path),
        sweep = sweep_stale_temps("p"),
        quoted_tag = quote(&tag),
        receive = receive_commands(
            "t",
            len,
            Some("excl,fsync"),
            &format!("$p left as it was: not all {len} bytes arrived")
        ),
        attrs = attrs.commands("t"),
        rename = rename_commands(&tag),
    ))
}

/// The end of [`write_atomic`]'s script: the shell becomes the program that renames `$t`,
/// whose name is `$p` and `tag`, onto `$p`. That is util-linux's `rename` where the host has
/// it as `rename.ul` (the Essential util-linux of Debian 12 and 13 ships it; Debian 11's does
/// not), else `mv -f -T`. A plain `rename` is never used: on Debian and Ubuntu it may be
/// Perl's, which reads its first argument as code. Both make one `rename(2)`. `rename.ul` links
/// nothing but libc, where coreutils' `mv` also loads the SELinux, ACL, xattr and PCRE
/// libraries: on a lab host a rename by `rename.ul` costs 0.85 ms of CPU, fork included, and
/// by `mv` 1.15-1.25 ms (see docs/benchmarks.md). `rename.ul` replaces the first `tag` in the
/// name, so it is used only when the path holds `tag` once (always, but for a path that names
/// a drawn tag itself).
fn rename_commands(tag: &str) -> String {
    let tag = quote(tag);
    format!(
        "case $t in *{tag}*{tag}*) ;; *) if command -v rename.ul >/dev/null 2>&1; then \
         exec rename.ul -- {tag} '' \"$t\"; fi;; esac; exec mv -f -T -- \"$t\" \"$p\""
    )
}

/// `.engine-` and six letters or digits from the system's randomness: the end of a temporary
/// file's name, as [`TEMP_SUFFIX`] describes it for `mktemp` (and for the sweep).
fn temp_tag() -> Result<String, ModuleError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| {
        ModuleError::Refused(format!("the controller has no randomness for a temporary file's name: {e}"))
    })?;
    let tag: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect();
    Ok(format!("{}{tag}", TEMP_SUFFIX.trim_end_matches('X')))
}

/// How [`download_atomic`] reports a download whose SHA-256 is not the one expected: it exits
/// with this status after printing `#got HEX` (the temporary file already removed).
const CHECKSUM_MISMATCH_STATUS: u32 = 97;

/// Downloads `url` on the host into `path` atomically, and only when its content has the
/// SHA-256 `sha256` (lowercase hex): the download goes to a temporary file beside `path`
/// (named as [`write_atomic`] names its own, so a killed download is swept the same way), is
/// hashed, gets the attributes, is fsynced and renamed over `path` only when the hash matches.
/// A mismatch, a failed transfer or a host with neither `curl` nor `wget` leaves `path` as it
/// was and removes the temporary file. `curl` is used when the host has it (`http`, `https` and
/// `file` URLs; redirects only to `http` or `https`), otherwise `wget` (`http` and `https`).
/// `url` is checked by the caller; it reaches the command line quoted, after `--`.
pub async fn download_atomic(
    host: &dyn Host,
    url: &str,
    path: &str,
    sha256: &str,
    attrs: &Attrs,
    timeout_secs: u32,
) -> Result<(), ModuleError> {
    let script = format!(
        "set -e; p={p}; u={u}; {sweep}t=$(mktemp -- \"$p{TEMP_SUFFIX}\"); trap 'rm -f -- \"$t\"' EXIT; \
         if command -v curl >/dev/null 2>&1; then \
         curl -fsSL --proto =http,https,file --proto-redir =http,https --max-time {timeout_secs} -o \"$t\" -- \"$u\"; \
         elif command -v wget >/dev/null 2>&1; then \
         case \"$u\" in http://*|https://*) ;; *) echo \"engine: wget cannot fetch $u (curl is not installed)\" >&2; exit 1;; esac; \
         wget -q -T {timeout_secs} -O \"$t\" -- \"$u\"; \
         else echo \"engine: neither curl nor wget is installed: cannot download $u\" >&2; exit 1; fi; \
         got=$(sha256sum <\"$t\"); got=${{got%% *}}; \
         if [ \"$got\" != {want} ]; then echo \"#got $got\"; exit {CHECKSUM_MISMATCH_STATUS}; fi; \
         {attrs}sync -- \"$t\"; mv -f -T -- \"$t\" \"$p\"; trap - EXIT",
        p = quote(path),
        u = quote(url),
        want = quote(sha256),
        sweep = sweep_stale_temps("p"),
        attrs = attrs.commands("t"),
    );
    let command = script.clone();
    let out = host.exec(Exec::new(script).effect(Effect::Write(path.to_owned()))).await?;
    if out.status == Some(CHECKSUM_MISMATCH_STATUS) {
        let got = out
            .stdout_text()
            .lines()
            .find_map(|l| l.strip_prefix("#got ").map(str::to_owned))
            .filter(|g| g.len() == 64 && g.bytes().all(|b| b.is_ascii_hexdigit()))
            .unwrap_or_else(|| "unknown".to_owned());
        return Err(ModuleError::Refused(format!(
            "the download of {url} has sha256:{got}, not the expected sha256:{sha256}; \
             {path} was left as it was and the download removed"
        )));
    }
    if !out.success() {
        return Err(command_error(command, &out));
    }
    Ok(())
}

/// Sets mode and owner on an existing path. A symbolic link there is refused: `chmod` and
/// `chown` would change what it points to (a link swapped in since the plan could point anywhere).
pub async fn set_attrs(host: &dyn Host, path: &str, attrs: &Attrs) -> Result<(), ModuleError> {
    let script = format!(
        "set -e; p={}; if [ -L \"$p\" ]; then \
         echo \"engine: $p is a symbolic link: its target's attributes are not changed\" >&2; exit 1; fi; {}",
        quote(path),
        attrs.commands("p")
    );
    run_checked(host, Exec::new(script).effect(Effect::Write(path.to_owned()))).await?;
    Ok(())
}

/// Creates a directory (and missing parents) with the given attributes.
/// The usual case (a mode and no owner; the parent exists, the directory does not) is one
/// `mkdir -m` that the script's shell becomes (`exec`: no fork); otherwise `mkdir -p` and
/// then the attributes.
pub async fn mkdir(host: &dyn Host, path: &str, attrs: &Attrs) -> Result<(), ModuleError> {
    let p = quote(path);
    let script = match attrs.mode {
        Some(mode) if attrs.owner.is_none() && attrs.group.is_none() => format!(
            "set -e; p={p}; a=${{p%/*}}; \
             if [ -d \"${{a:-/}}\" ] && [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then exec mkdir -m {mode:04o} -- \"$p\"; fi; \
             mkdir -p -- \"$p\"; chmod {mode:04o} -- \"$p\""
        ),
        Some(mode) => {
            let owner = Attrs { mode: None, ..attrs.clone() }.commands("p");
            format!(
                "set -e; p={p}; if ! mkdir -m {mode:04o} -- \"$p\" 2>/dev/null; then \
                 mkdir -p -- \"$p\"; chmod {mode:04o} -- \"$p\"; fi; {owner}"
            )
        }
        None => format!("set -e; p={p}; mkdir -p -- \"$p\"; {}", attrs.commands("p")),
    };
    run_checked(host, Exec::new(script).effect(Effect::Write(path.to_owned()))).await?;
    Ok(())
}

/// Removes a path, recursively for directories.
pub async fn remove(host: &dyn Host, path: &str) -> Result<(), ModuleError> {
    run_checked(
        host,
        Exec::new(format!("rm -rf -- {}", quote(path))).effect(Effect::Remove(path.to_owned())),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_output() {
        let sha = "ab12".repeat(16);
        let stat = parse_stat(&format!("regular file|644|root|root\n{sha}  -\n")).unwrap().unwrap();
        assert_eq!(stat.kind, FileKind::File);
        assert_eq!(stat.mode, 0o644);
        assert_eq!(stat.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(parse_stat("absent\n"), Ok(None));
        assert!(parse_stat("garbage").is_err());
    }

    /// What a hostile host may print for `stat`: refused with the offending line shown
    /// printable, never a panic and never a mode beyond 07777.
    #[test]
    fn refuses_stat_output_that_stat_never_prints() {
        let why = |text: &str| parse_stat(text).unwrap_err().to_string();
        assert_eq!(
            why("regular file|17777777|root|root"),
            r#"a mode that is not one: "regular file|17777777|root|root""#
        );
        assert_eq!(why("directory|+755|root|root"), r#"a mode that is not one: "directory|+755|root|root""#);
        assert_eq!(
            why("directory|755|ro\u{1b}[2Jot|root"),
            r#"an owner or group that is not a name: "directory|755|ro\u{1b}[2Jot|root""#
        );
        assert_eq!(
            why("regular file|644|root|root\nabc123  -"),
            r#"a checksum that is not a SHA-256: "abc123""#
        );
        assert_eq!(why("directory|755|root"), r#"not what `stat` prints: "directory|755|root""#);
        let error = parse_stat("").unwrap_err().on("etcd0", "`stat` of /x");
        assert_eq!(error.to_string(), "`stat` of /x from etcd0 is refused: no output");
        let paths = ["/a".to_owned()];
        for bad in [&b"1x\n"[..], b"11\n/a\0regular file|644|r|r\0\0zz  /a\0", b"11\n/a", b"\xff\n"] {
            assert!(parse_stat_many(&paths, bad).is_err(), "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn parses_stat_many_output() {
        let paths: Vec<String> = ["/a b", "/l/x", "/d", "/gone"].iter().map(|s| (*s).to_owned()).collect();
        let out = format!(
            "11001111\n/a b\0regular file|644|root|root\0/d\0directory|750|u|g\0\0{}  /a b\0",
            "abc0".repeat(16)
        );
        let out = out.as_bytes();
        let probes = parse_stat_many(&paths, out).unwrap();
        assert_eq!(probes.len(), 3, "/gone exists per its flag but stat lost it: left out");
        assert_eq!(probes[0].stat.as_ref().unwrap().sha256, Some("abc0".repeat(16)));
        assert!(probes[0].direct);
        assert_eq!(probes[1].path, "/l/x");
        assert_eq!(probes[1].stat, None);
        assert!(!probes[1].direct, "a parent is a symlink");
        assert_eq!(probes[2].stat.as_ref().unwrap().kind, FileKind::Directory);
        assert!(parse_stat_many(&paths, b"11\n").is_err());
    }

    /// GNU `sha256sum FILE` escapes a name holding a newline or a backslash and then starts its
    /// line with `\`: a hash read that way never matched, so such files were rewritten on
    /// every run. The hash is read from stdin instead.
    #[tokio::test]
    async fn stat_hashes_files_with_hostile_names() {
        let dir = std::env::temp_dir().join(format!("engine-remote-stat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a\nb\\c $(x) 'd'");
        std::fs::write(&path, b"content").unwrap();
        let got = stat(&crate::local::LocalHost::new("local"), path.to_str().unwrap()).await;
        std::fs::remove_dir_all(&dir).unwrap();
        let got = got.unwrap().unwrap();
        assert_eq!(got.sha256, Some(crate::diff::sha256_hex(b"content")));
    }

    /// A fresh folder under the system's temporary folder, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("engine-remote-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// Creates a file (or a directory) named `name` last modified `minutes` ago.
        fn put(&self, name: &str, minutes: u64, dir: bool) {
            let path = self.0.join(name);
            if dir {
                std::fs::create_dir(&path).unwrap();
            } else {
                std::fs::write(&path, b"partial").unwrap();
            }
            let then = std::time::SystemTime::now() - std::time::Duration::from_secs(minutes * 60);
            std::fs::File::open(&path).unwrap().set_modified(then).unwrap();
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A killed write leaves `PATH.engine-XXXXXX`; the next write of PATH removes it once it is
    /// stale, and nothing else: not a young one (a write may still be filling it), not one of
    /// another path (even one that `*` in this path would match as a pattern), not a name of
    /// another shape, a directory or a symbolic link.
    #[tokio::test]
    async fn a_write_removes_only_its_own_stale_temporary_files() {
        let scratch = Scratch::new("sweep");
        let old = u64::from(STALE_TEMP_MINUTES) + 5;
        let young = u64::from(STALE_TEMP_MINUTES) - 5;
        let stale = ["f*.engine-Ab12Cd", "f*.engine-zzzzzz"];
        let kept = [
            "f*.engine-Young1",
            "fa.engine-Ab12Cd",
            "f*.engine-Ab12Cd7",
            "f*.engine-Ab.2Cd",
            "f*.engine-",
            "f*.engine-Ab12Cd.x",
            "f.engine-Ab12Cd",
        ];
        for name in stale.iter().chain(&kept[1..]) {
            scratch.put(name, old, false);
        }
        scratch.put(kept[0], young, false);
        scratch.put("f*.engine-Dir123", old, true);
        scratch.put("link-target", old, false);
        std::os::unix::fs::symlink(scratch.0.join("link-target"), scratch.0.join("f*.engine-Lnk123"))
            .unwrap();

        let host = crate::local::LocalHost::new("local");
        let target = scratch.0.join("f*");
        write_atomic(&host, target.to_str().unwrap(), b"new\n", &Attrs::default()).await.unwrap();

        assert_eq!(std::fs::read(&target).unwrap(), b"new\n");
        let mut want: Vec<String> = kept.iter().map(|n| (*n).to_owned()).collect();
        want.extend(["f*", "f*.engine-Dir123", "f*.engine-Lnk123", "link-target"].map(str::to_owned));
        want.sort();
        assert_eq!(scratch.names(), want);
    }

    /// Modes within 0666 come from the umask at creation, others from `chmod`; no mode gives
    /// 0600; nothing but the file is left, whatever the caller's umask.
    #[tokio::test]
    async fn a_write_gets_its_mode_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let scratch = Scratch::new("modes");
        let host = crate::local::LocalHost::new("local");
        for (name, mode, want) in [
            ("a", Some(0o644), 0o644),
            ("b", Some(0o600), 0o600),
            ("c", Some(0o755), 0o755),
            ("d", None, 0o600),
        ] {
            let target = scratch.0.join(name);
            let attrs = Attrs { mode, ..Attrs::default() };
            write_atomic(&host, target.to_str().unwrap(), b"x\n", &attrs).await.unwrap();
            let meta = std::fs::metadata(&target).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, want, "{name}");
            // Replacing an existing file with another mode.
            let attrs = Attrs { mode: Some(0o640), ..Attrs::default() };
            write_atomic(&host, target.to_str().unwrap(), b"yy\n", &attrs).await.unwrap();
            assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777, 0o640, "{name}");
            assert_eq!(std::fs::read(&target).unwrap(), b"yy\n");
        }
        assert_eq!(scratch.names(), ["a", "b", "c", "d"]);
        let script = write_script("/x", 3, &Attrs { mode: Some(0o644), ..Attrs::default() }).unwrap();
        assert!(script.contains("umask 0133") && !script.contains("chmod"), "{script}");
        let script = write_script("/x", 3, &Attrs { mode: Some(0o4755), ..Attrs::default() }).unwrap();
        assert!(script.contains("umask 0077") && script.contains("chmod 4755"), "{script}");
    }

    /// A write whose stdin ends early (the connection dropped mid-transfer), inside the
    /// content or just before the end-of-content line, leaves the file as it was and no
    /// temporary file; the whole stdin, given in odd pieces through a pipe, is written.
    #[tokio::test]
    async fn a_write_whose_input_ends_early_changes_nothing() {
        let scratch = Scratch::new("short");
        let target = scratch.0.join("conf");
        std::fs::write(&target, b"old\n").unwrap();
        let host = crate::local::LocalHost::new("local");
        let path = target.to_str().unwrap();
        let script = write_script(path, 8, &Attrs { mode: Some(0o644), ..Attrs::default() }).unwrap();
        let end = format!("{END_OF_CONTENT}\n");
        for stdin in
            [b"new\n".to_vec(), b"new\nnew\n".to_vec(), format!("new\nnew\n{}", &end[..5]).into_bytes()]
        {
            let e = run_checked(&host, Exec::new(script.clone()).stdin(stdin)).await.unwrap_err();
            assert!(e.to_string().contains("not all 8 bytes arrived"), "{e}");
            assert_eq!(std::fs::read(&target).unwrap(), b"old\n");
            assert_eq!(scratch.names(), ["conf"], "no temporary file is left");
        }
        let whole = format!("new\nnew\n{end}");
        let piped = format!(
            "(printf %s {}; sleep 0.1; printf %s {}) | {{ {script}; }}",
            quote(&whole[..5]),
            quote(&whole[5..])
        );
        run_checked(&host, Exec::new(piped)).await.unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new\nnew\n");
        assert_eq!(scratch.names(), ["conf"]);
    }

    /// The rename at a write's end: by `rename.ul` where it is found, by `mv -T` where it is not
    /// (a `PATH` without it) or where the path names the tag itself; a directory at the path
    /// fails either way and is left empty, the temporary file kept for the sweep.
    #[tokio::test]
    async fn the_rename_is_one_rename_by_either_program() {
        let scratch = Scratch::new("rename");
        let bin = scratch.0.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let mv = std::process::Command::new("sh").args(["-c", "command -v mv"]).output().unwrap();
        std::os::unix::fs::symlink(String::from_utf8(mv.stdout).unwrap().trim(), bin.join("mv")).unwrap();
        let has_rename_ul = std::process::Command::new("sh")
            .args(["-c", "command -v rename.ul"])
            .output()
            .unwrap()
            .status
            .success();
        let host = crate::local::LocalHost::new("local");
        let tag = ".engine-Ab12Cd";
        let dir = scratch.0.to_str().unwrap();
        // (file name, PATH, the start of the error of the program that must rename it)
        let cases = [
            ("plain", None, if has_rename_ul { "rename.ul: " } else { "mv: " }),
            ("no-rename-ul", Some(bin.to_str().unwrap()), "mv: "),
            ("twice.engine-Ab12Cd", None, "mv: "),
        ];
        for (name, path_var, want) in cases {
            let p = format!("{dir}/{name}");
            let temporary = format!("{p}{tag}");
            let script = format!(
                "set -e; {}p={}; t=\"$p\"{}; {}",
                path_var.map(|v| format!("PATH={}; ", quote(v))).unwrap_or_default(),
                quote(&p),
                quote(tag),
                rename_commands(tag)
            );
            std::fs::write(&temporary, b"new\n").unwrap();
            let out = host.exec(Exec::new(script.clone())).await.unwrap();
            assert_eq!(out.status, Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(std::fs::read(&p).unwrap(), b"new\n", "{name}");
            assert!(!std::path::Path::new(&temporary).exists(), "{name}: the temporary file was renamed");
            // Onto a directory: fails (its error names the program), moves nothing into it,
            // and leaves the temporary file for the sweep.
            std::fs::remove_file(&p).unwrap();
            std::fs::create_dir(&p).unwrap();
            std::fs::write(&temporary, b"new\n").unwrap();
            let out = host.exec(Exec::new(script)).await.unwrap();
            assert_ne!(out.status, Some(0), "{name}");
            assert!(
                String::from_utf8_lossy(&out.stderr).starts_with(want),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0, "{name}: nothing moved into the directory");
            assert!(std::path::Path::new(&temporary).exists(), "{name}: the temporary file is left");
        }
    }

    /// `find` would read a start point beginning with `-` as a test: a relative path's
    /// temporary files are given to it as `./NAME`.
    #[tokio::test]
    async fn the_sweep_takes_relative_names_that_start_with_a_dash() {
        let scratch = Scratch::new("sweep-dash");
        scratch.put("-f.engine-Ab12Cd", u64::from(STALE_TEMP_MINUTES) + 1, false);
        scratch.put("-f.engine-Ab12Ce", 0, false);
        let script = format!(
            "set -e; cd -- {}; p=-f; {}echo \"done $#\"",
            quote(scratch.0.to_str().unwrap()),
            sweep_stale_temps("p")
        );
        let out = run_checked(&crate::local::LocalHost::new("local"), Exec::new(script)).await.unwrap();
        assert_eq!(out.stdout_text(), "done 0", "the sweep leaves $@ empty");
        assert_eq!(scratch.names(), ["-f.engine-Ab12Ce"]);
    }

    /// A directory that appeared where a file is written (between the plan and the write) makes
    /// the write fail, and nothing lands inside it: plain `mv` would have moved the file in.
    #[tokio::test]
    async fn a_directory_that_appeared_at_the_destination_fails_the_write_and_stays_empty() {
        let scratch = Scratch::new("dir-appeared");
        let target = scratch.0.join("conf");
        std::fs::create_dir(&target).unwrap();
        let host = crate::local::LocalHost::new("local");
        let e = write_atomic(&host, target.to_str().unwrap(), b"new\n", &Attrs::default()).await.unwrap_err();
        assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
        assert!(target.is_dir());
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "nothing was written into it");
        assert_eq!(scratch.names(), ["conf"], "no temporary file is left");
    }

    /// A symbolic link to a directory that appeared where a file is written is replaced by the
    /// file; the directory it points to is left alone.
    #[tokio::test]
    async fn a_symlink_to_a_directory_at_the_destination_is_replaced_not_followed() {
        let scratch = Scratch::new("link-appeared");
        let elsewhere = scratch.0.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let target = scratch.0.join("conf");
        std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
        let host = crate::local::LocalHost::new("local");
        write_atomic(&host, target.to_str().unwrap(), b"new\n", &Attrs::default()).await.unwrap();
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file(), "the link itself was replaced by the file");
        assert_eq!(std::fs::read(&target).unwrap(), b"new\n");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing was written through the link");
    }

    /// A download on the controller (curl, `file://`): a wrong SHA-256 leaves the destination
    /// as it was and no temporary file; the right one replaces it with the asked mode. Needs
    /// curl on the controller (as on the lab's hosts).
    #[tokio::test]
    async fn a_download_replaces_the_destination_only_with_the_expected_checksum() {
        let host = crate::local::LocalHost::new("local");
        let scratch = Scratch::new("download");
        let source = scratch.0.join("release");
        std::fs::write(&source, b"two\n").unwrap();
        let target = scratch.0.join("dest");
        std::fs::write(&target, b"one\n").unwrap();
        let url = format!("file://{}", source.display());
        let path = target.to_str().unwrap();
        let right = crate::diff::sha256_hex(b"two\n");
        let wrong = "0".repeat(64);
        let attrs = Attrs { mode: Some(0o750), ..Attrs::default() };
        let e = download_atomic(&host, &url, path, &wrong, &attrs, 30).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the download of {url} has sha256:{right}, not the expected sha256:{wrong}; \
                 {path} was left as it was and the download removed"
            )
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"one\n");
        assert_eq!(scratch.names(), ["dest", "release"], "no temporary file is left");
        let missing = format!("file://{}", scratch.0.join("nothing").display());
        assert!(download_atomic(&host, &missing, path, &right, &attrs, 30).await.is_err());
        assert_eq!(scratch.names(), ["dest", "release"], "a failed transfer leaves no temporary file");
        download_atomic(&host, &url, path, &right, &attrs, 30).await.unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two\n");
        assert_eq!(stat(&host, path).await.unwrap().unwrap().mode, 0o750);
    }

    /// `mode: "4755"` with an owner: `chown` clears setuid, so it must come before `chmod`,
    /// or the mode never sticks and every run "changes" it again. Written, then set again on
    /// the existing file, the setuid bit stays; the stat a plan compares with says 4755.
    #[tokio::test]
    async fn setuid_mode_with_an_owner_is_kept_so_the_file_converges() {
        let scratch = Scratch::new("setuid");
        let host = crate::local::LocalHost::new("local");
        let me = run_checked(&host, Exec::new("id -un")).await.unwrap().stdout_text();
        let group = run_checked(&host, Exec::new("id -gn")).await.unwrap().stdout_text();
        let target = scratch.0.join("tool");
        let path = target.to_str().unwrap();
        let attrs = Attrs {
            mode: Some(0o4755),
            owner: Some(me.trim().to_owned()),
            group: Some(group.trim().to_owned()),
        };
        write_atomic(&host, path, b"#!/bin/sh\n", &attrs).await.unwrap();
        assert_eq!(stat(&host, path).await.unwrap().unwrap().mode, 0o4755, "after the write");
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        set_attrs(&host, path, &attrs).await.unwrap();
        assert_eq!(stat(&host, path).await.unwrap().unwrap().mode, 0o4755, "after setting attributes");
    }

    /// Setting attributes on a path that became a symbolic link is refused: chmod and chown
    /// would change the link's target.
    #[tokio::test]
    async fn set_attrs_refuses_a_symlink_and_leaves_its_target_alone() {
        let scratch = Scratch::new("attrs-link");
        let victim = scratch.0.join("victim");
        std::fs::write(&victim, b"x").unwrap();
        std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let link = scratch.0.join("conf");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let host = crate::local::LocalHost::new("local");
        let attrs = Attrs { mode: Some(0o777), ..Attrs::default() };
        let e = set_attrs(&host, link.to_str().unwrap(), &attrs).await.unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&victim).unwrap().permissions());
        assert_eq!(mode & 0o7777, 0o600);
    }

    #[test]
    fn attrs_are_quoted() {
        let attrs = Attrs { mode: Some(0o600), owner: Some("a b".into()), group: Some("c".into()) };
        assert_eq!(attrs.commands("t"), "chown -- 'a b':'c' \"$t\"; chmod 0600 -- \"$t\"; ");
    }
}
