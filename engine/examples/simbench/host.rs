//! The simulated host: an in-memory filesystem that answers, instantly, exactly the commands
//! the `file`, `template` and `command` modules send for W1 (see `contract::remote`), as a
//! Debian host's `sh`, `stat`, `sha256sum`, `mkdir`, `chmod` and `mv` would. Anything else is
//! an error (an unknown command fails its task, and is counted), so a benchmark run cannot
//! silently measure nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use contract::{Exec, ExecOutput, Host, HostError, Target};
use sha2::{Digest, Sha256};

/// What every simulated host of a run adds up: commands answered, time spent answering them
/// (the host side of the benchmark, inside the controller's process), commands refused.
#[derive(Debug, Default)]
pub(crate) struct HostStats {
    pub(crate) commands: AtomicU64,
    pub(crate) nanos: AtomicU64,
    pub(crate) unknown: AtomicU64,
    /// The first command refused, for the report.
    pub(crate) first_unknown: Mutex<Option<String>>,
}

/// One object of a simulated filesystem. Owners are names, as `stat -c %U` prints them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum Node {
    Dir { mode: u32, owner: String, group: String },
    File { mode: u32, owner: String, group: String, content: Vec<u8> },
}

impl Node {
    fn attrs_mut(&mut self) -> (&mut u32, &mut String, &mut String) {
        match self {
            Node::Dir { mode, owner, group } | Node::File { mode, owner, group, .. } => (mode, owner, group),
        }
    }

    /// `stat -c '%F|%a|%U|%G'`.
    fn stat_line(&self) -> String {
        match self {
            Node::Dir { mode, owner, group } => format!("directory|{mode:o}|{owner}|{group}"),
            Node::File { mode, owner, group, content } => {
                let kind = if content.is_empty() { "regular empty file" } else { "regular file" };
                format!("{kind}|{mode:o}|{owner}|{group}")
            }
        }
    }
}

/// A host that answers from memory. Its filesystem lives as long as the value, so a second
/// run against the same hosts finds what the first one wrote.
#[derive(Debug)]
pub(crate) struct SimHost {
    name: String,
    fs: Mutex<BTreeMap<String, Node>>,
    stats: std::sync::Arc<HostStats>,
}

fn dir(mode: u32) -> Node {
    Node::Dir { mode, owner: "root".into(), group: "root".into() }
}

impl SimHost {
    /// A fresh Debian-like host: `/` and `/tmp`, nothing else.
    pub(crate) fn new(name: impl Into<String>, stats: std::sync::Arc<HostStats>) -> Self {
        let fs = BTreeMap::from([("/".to_owned(), dir(0o755)), ("/tmp".to_owned(), dir(0o1777))]);
        Self::with_fs(name, stats, fs)
    }

    /// A host whose filesystem is `fs` (as [`SimHost::snapshot`] gave it).
    pub(crate) fn with_fs(
        name: impl Into<String>,
        stats: std::sync::Arc<HostStats>,
        fs: BTreeMap<String, Node>,
    ) -> Self {
        Self { name: name.into(), fs: Mutex::new(fs), stats }
    }

    /// The whole filesystem, to be given to [`SimHost::with_fs`] in another process.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, Node> {
        self.fs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn answer(&self, exec: &Exec) -> Result<ExecOutput, String> {
        let c = exec.command.as_str();
        let mut fs = self.fs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(rest) = c.strip_prefix("set --; for p in ") {
            return stat_many(&fs, rest);
        }
        if let Some(rest) = c.strip_prefix("p=") {
            let (path, rest) = take_quoted(rest)?;
            expect(
                rest.starts_with("; if [ -e \"$p\" ] || [ -L \"$p\" ]; then stat -c '%F|%a|%U|%G' -- \"$p\""),
                c,
            )?;
            return Ok(match fs.get(&path) {
                None => ok("absent\n"),
                Some(node @ Node::Dir { .. }) => ok(&format!("{}\n", node.stat_line())),
                Some(node @ Node::File { content, .. }) => {
                    ok(&format!("{}\n{}  -\n", node.stat_line(), sha256_hex(content)))
                }
            });
        }
        if let Some(rest) = c.strip_prefix("set -e; p=") {
            let (path, rest) = take_quoted(rest)?;
            if rest.contains(" iflag=count_bytes,fullblock conv=excl,fsync status=none; ") {
                return write(&mut fs, &path, rest, exec.stdin.as_deref().unwrap_or_default());
            }
            if let Some(rest) = rest.strip_prefix("; if [ -L \"$p\" ]; then ") {
                let (_, attrs) = rest.split_once("exit 1; fi; ").ok_or_else(|| unknown(c))?;
                let attrs = parse_attrs(attrs, "p")?;
                return Ok(match fs.get_mut(&path) {
                    Some(node) => {
                        attrs.set(node);
                        ok("")
                    }
                    None => failed(&format!("chmod: cannot access '{path}': No such file or directory")),
                });
            }
            if let Some(rest) = rest.strip_prefix("; if ! mkdir -m ") {
                let (mode, rest) = rest
                    .split_once(" -- \"$p\" 2>/dev/null; then mkdir -p -- \"$p\"; chmod ")
                    .ok_or_else(|| unknown(c))?;
                let mode = parse_mode(mode)?;
                let rest =
                    rest.strip_prefix(&format!("{mode:04o} -- \"$p\"; fi; ")).ok_or_else(|| unknown(c))?;
                let mut attrs = parse_attrs(rest, "p")?;
                attrs.mode = Some(mode);
                return Ok(mkdir(&mut fs, &path, &attrs));
            }
            if let Some(rest) = rest.strip_prefix("; a=${p%/*}; if [ -d \"${a:-/}\" ] && [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then exec mkdir -m ") {
                let (mode, rest) = rest.split_once(" -- \"$p\"; fi; mkdir -p -- \"$p\"; chmod ").ok_or_else(|| unknown(c))?;
                let mode = parse_mode(mode)?;
                expect(rest == format!("{mode:04o} -- \"$p\""), c)?;
                return Ok(mkdir(&mut fs, &path, &Attrs { mode: Some(mode), ..Attrs::default() }));
            }
            if let Some(rest) = rest.strip_prefix("; mkdir -p -- \"$p\"; ") {
                let attrs = parse_attrs(rest, "p")?;
                return Ok(mkdir(&mut fs, &path, &attrs));
            }
            return Err(unknown(c));
        }
        if let Some(rest) = c.strip_prefix("cat -- ") {
            let (path, rest) = take_quoted(rest)?;
            expect(rest.is_empty(), c)?;
            return Ok(match fs.get(&path) {
                Some(Node::File { content, .. }) => {
                    ExecOutput { status: Some(0), stdout: content.clone(), stderr: vec![] }
                }
                Some(Node::Dir { .. }) => failed(&format!("cat: {path}: Is a directory")),
                None => failed(&format!("cat: {path}: No such file or directory")),
            });
        }
        if let Some(rest) = c.strip_prefix("rm -rf -- ") {
            let (path, rest) = take_quoted(rest)?;
            expect(rest.is_empty() && path.starts_with('/') && path != "/", c)?;
            let below = format!("{path}/");
            fs.retain(|p, _| *p != path && !p.starts_with(&below));
            return Ok(ok(""));
        }
        // The `command` module's line, as W1 writes it: `sh -c 'echo N >/dev/null'`.
        if let Some(rest) = c.strip_prefix("exec sh -c ") {
            let (line, rest) = take_quoted(rest)?;
            expect(rest.is_empty(), c)?;
            if let Some(n) = line.strip_prefix("echo ").and_then(|r| r.strip_suffix(" >/dev/null"))
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
            {
                return Ok(ok(""));
            }
        }
        Err(unknown(c))
    }
}

#[async_trait]
impl Host for SimHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
        let started = Instant::now();
        let answer = self.answer(&exec);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.nanos.fetch_add(nanos, Ordering::Relaxed);
        self.stats.commands.fetch_add(1, Ordering::Relaxed);
        answer.map_err(|why| {
            let shown: String = exec.command.chars().take(200).collect();
            let why = format!("unknown command {shown:?}: {why}");
            self.stats.unknown.fetch_add(1, Ordering::Relaxed);
            let mut first =
                self.stats.first_unknown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            first.get_or_insert_with(|| why.clone());
            HostError::Transport(format!("simulated host {}: {why}", self.name))
        })
    }
}

#[async_trait]
impl Target for SimHost {
    async fn connect(&self) -> Result<(), HostError> {
        Ok(())
    }
}

fn ok(stdout: &str) -> ExecOutput {
    ExecOutput { status: Some(0), stdout: stdout.as_bytes().to_vec(), stderr: vec![] }
}

fn failed(stderr: &str) -> ExecOutput {
    ExecOutput { status: Some(1), stdout: vec![], stderr: format!("{stderr}\n").into_bytes() }
}

/// Why a command is refused: not one W1 sends (the whole command is named by [`SimHost::exec`]).
fn unknown(command: &str) -> String {
    let shown: String = command.chars().take(80).collect();
    format!("not a command W1 sends (at {shown:?})")
}

fn expect(cond: bool, command: &str) -> Result<(), String> {
    if cond { Ok(()) } else { Err(unknown(command)) }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One word as `contract::shell::quote` writes it (`'...'`, a `'` inside as `'\''`), unquoted,
/// and what follows it.
fn take_quoted(text: &str) -> Result<(String, &str), String> {
    let mut rest = text.strip_prefix('\'').ok_or_else(|| format!("not a quoted word: {text:.80?}"))?;
    let mut word = String::new();
    loop {
        let end = rest.find('\'').ok_or_else(|| format!("an unterminated quoted word: {text:.80?}"))?;
        word.push_str(&rest[..end]);
        rest = &rest[end + 1..];
        match rest.strip_prefix("\\''") {
            Some(more) => {
                word.push('\'');
                rest = more;
            }
            None => return Ok((word, rest)),
        }
    }
}

fn parse_mode(text: &str) -> Result<u32, String> {
    contract::remote::parse_mode(text).ok_or_else(|| format!("not a mode: {text:?}"))
}

/// The attributes `Attrs::commands(var)` writes: `chown`/`chgrp`, then `chmod`, each `; `-ended.
#[derive(Debug, Default)]
struct Attrs {
    mode: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
}

impl Attrs {
    fn set(&self, node: &mut Node) {
        let (mode, owner, group) = node.attrs_mut();
        if let Some(m) = self.mode {
            *mode = m;
        }
        if let Some(o) = &self.owner {
            owner.clone_from(o);
        }
        if let Some(g) = &self.group {
            group.clone_from(g);
        }
    }
}

fn parse_attrs(mut text: &str, var: &str) -> Result<Attrs, String> {
    let target = format!(" \"${var}\"; ");
    let mut attrs = Attrs::default();
    while !text.is_empty() {
        if let Some(rest) = text.strip_prefix("chown -- ") {
            let (owner, rest) = take_quoted(rest)?;
            attrs.owner = Some(owner);
            let rest = match rest.strip_prefix(':') {
                Some(g) => {
                    let (group, rest) = take_quoted(g)?;
                    attrs.group = Some(group);
                    rest
                }
                None => rest,
            };
            text =
                rest.strip_prefix(target.as_str()).ok_or_else(|| format!("not an attribute: {text:.80?}"))?;
        } else if let Some(rest) = text.strip_prefix("chgrp -- ") {
            let (group, rest) = take_quoted(rest)?;
            attrs.group = Some(group);
            text =
                rest.strip_prefix(target.as_str()).ok_or_else(|| format!("not an attribute: {text:.80?}"))?;
        } else if let Some(rest) = text.strip_prefix("chmod ") {
            let (mode, rest) =
                rest.split_once(" --").ok_or_else(|| format!("not an attribute: {text:.80?}"))?;
            attrs.mode = Some(parse_mode(mode)?);
            text =
                rest.strip_prefix(target.as_str()).ok_or_else(|| format!("not an attribute: {text:.80?}"))?;
        } else {
            return Err(format!("not an attribute: {text:.80?}"));
        }
    }
    Ok(attrs)
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// `mkdir -m MODE` or `mkdir -p`, then the attributes (Debian's `mkdir -p` makes missing
/// parents 0755).
fn mkdir(fs: &mut BTreeMap<String, Node>, path: &str, attrs: &Attrs) -> ExecOutput {
    let mut missing = Vec::new();
    let mut at = path;
    while !fs.contains_key(at) {
        missing.push(at.to_owned());
        at = parent(at);
    }
    if !matches!(fs.get(at), Some(Node::Dir { .. })) {
        return failed(&format!("mkdir: cannot create directory '{path}': Not a directory"));
    }
    for p in missing.into_iter().rev() {
        fs.insert(p, dir(0o755));
    }
    if let Some(node) = fs.get_mut(path) {
        if !matches!(node, Node::Dir { .. }) {
            return failed(&format!("mkdir: cannot create directory '{path}': File exists"));
        }
        attrs.set(node);
    }
    ok("")
}

/// `write_atomic`: stdin must be the content of the length the script copies and then the
/// end-of-content line, the parent must be a directory, the target must not be one; the new
/// file is `dd`'s (0666 less the script's umask, root) with the attributes applied, renamed
/// over the path.
fn write(
    fs: &mut BTreeMap<String, Node>,
    path: &str,
    script: &str,
    stdin: &[u8],
) -> Result<ExecOutput, String> {
    let (_, umask) = script.split_once("; umask ").ok_or_else(|| unknown(script))?;
    let umask = parse_mode(umask.get(..4).ok_or_else(|| unknown(script))?)?;
    let (_, after) = script.split_once(" bs=65536 count=").ok_or_else(|| unknown(script))?;
    let (len, _) = after.split_once(" iflag=").ok_or_else(|| unknown(script))?;
    let len: usize = len.parse().map_err(|_| unknown(script))?;
    let (_, tail) = script
        .split_once("with a file; left as it was\" >&2; exit 1; fi; ")
        .ok_or_else(|| unknown(script))?;
    let (attrs, rename) = tail.rsplit_once("trap - EXIT; ").ok_or_else(|| unknown(script))?;
    if !(rename.starts_with("case $t in ") && rename.ends_with("; esac; exec mv -f -T -- \"$t\" \"$p\"")) {
        return Err(unknown(script));
    }
    let attrs = parse_attrs(attrs, "t")?;
    let end = format!("{}\n", contract::remote::END_OF_CONTENT);
    let content = stdin.get(..len).filter(|_| stdin.get(len..) == Some(end.as_bytes()));
    if !matches!(fs.get(parent(path)), Some(Node::Dir { .. })) {
        return Ok(failed(&format!("dd: failed to open '{path}.engine-XXXXXX': No such file or directory")));
    }
    let Some(content) = content else {
        return Ok(failed(&format!("engine: {path} left as it was: not all {len} bytes arrived")));
    };
    if matches!(fs.get(path), Some(Node::Dir { .. })) {
        return Ok(failed(&format!("mv: cannot overwrite directory '{path}' with non-directory")));
    }
    let mut node = Node::File {
        mode: 0o666 & !umask,
        owner: "root".into(),
        group: "root".into(),
        content: content.to_vec(),
    };
    attrs.set(&mut node);
    fs.insert(path.to_owned(), node);
    Ok(ok(""))
}

/// `stat_many`'s script: a flags line, NUL-separated stat records, then `sha256sum -z` lines.
/// No simulated path has a symbolic link above it.
fn stat_many(fs: &BTreeMap<String, Node>, rest: &str) -> Result<ExecOutput, String> {
    let (mut list, tail) = rest.split_once("; do a=${p%/*}; f=1; ").ok_or_else(|| unknown(rest))?;
    expect(
        tail.contains("stat --printf '%n\\0%F|%a|%U|%G\\0' -- \"$@\"")
            && tail.contains("sha256sum -z -- \"$@\""),
        rest,
    )?;
    let mut paths = Vec::new();
    while !list.is_empty() {
        let (word, more) = take_quoted(list)?;
        paths.push(word);
        list = more.strip_prefix(' ').unwrap_or(more);
        expect(more.is_empty() || more.starts_with(' '), rest)?;
    }
    let mut flags = String::new();
    let mut records = Vec::new();
    let mut sums = Vec::new();
    for p in &paths {
        match fs.get(p) {
            None => flags.push_str("10"),
            Some(node) => {
                flags.push_str("11");
                records.extend_from_slice(p.as_bytes());
                records.push(0);
                records.extend_from_slice(node.stat_line().as_bytes());
                records.push(0);
                if let Node::File { content, .. } = node {
                    sums.extend_from_slice(format!("{}  {p}", sha256_hex(content)).as_bytes());
                    sums.push(0);
                }
            }
        }
    }
    let mut stdout = flags.into_bytes();
    stdout.push(b'\n');
    stdout.extend(records);
    stdout.push(0);
    stdout.extend(sums);
    Ok(ExecOutput { status: Some(0), stdout, stderr: vec![] })
}
