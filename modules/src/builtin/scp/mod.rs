//! `scp`: copies files between machines, the controller relaying the bytes, so hosts never
//! need SSH trust between each other.
//!
//! ```text
//!   source side                 controller                  destination side
//!   (a peer host, the           (runs engine)               (the task's host, or the
//!    controller, or the                                      controller for to_controller)
//!    task's host)
//!   list: sha256+mode ──────►  pair up, compare  ◄────────  list: sha256+mode+owner
//!   (one round trip)           decide what to send          (one round trip)
//!   cat one file ───────────►  verify sha256  ────────────► write_atomic (per sent file)
//! ```
//!
//! Planning lists both sides (one command each) and sends nothing; the action sends exactly
//! the files whose checksum differs, re-checking each one's SHA-256 as it relays it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use contract::deferred::is_deferred;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::builtin::file::{ContentChange, WantedAttrs, content_change};
use contract::diff::{sha256_hex, unified_diff};
use contract::error::ModuleError;
use contract::host::{Exec, Host};
use contract::mode::Mode;
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, Attrs, FileKind, FileStat, run_checked};
use contract::shell::{join, quote};

/// The `from` value that names the machine engine runs on.
pub const CONTROLLER: &str = "controller";

/// Copies files between machines; the controller relays the bytes, so hosts need no SSH
/// access to each other. Three directions:
/// host → this host (`from: "etcd0"`), controller → this host (`from: "controller"`), and
/// this host → controller (`to_controller: "/local/dir/"`, no `from`).
/// One `src` that is a file is copied to `dest` (into it when `dest` ends with `/`); one `src`
/// that is a directory is copied to `dest` as a tree (`src/a/b` → `dest/a/b`); several `src`
/// are each copied into the directory `dest` under their own name. Only regular files are
/// copied (symbolic links and empty directories are not); missing directories are created.
/// Checksums are compared first, so unchanged files are not sent. File content never
/// appears in reports: changes name files and sizes, and `--diff` shows only
/// "secret content differs" for files holding a private key. Outputs: `files` (every
/// destination path) and `sent` (how many were sent).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScpArgs {
    /// Where the files come from: another host's inventory name (read over its own
    /// connection), or "controller" for the machine engine runs on (relative paths are from
    /// engine's working directory). Omit it with `to_controller`. A task reading from another
    /// host does not wait for that host's tasks by itself: use `.after(task)`, or take `src`
    /// from the producing task's output.
    pub from: Option<String>,
    /// What to copy: a path, or a list of paths, on the source. Absolute on hosts. An earlier
    /// task's output works too (`src: ca.output("path")`), and makes this task wait for it.
    pub src: Paths,
    /// Absolute destination on this task's host. A directory when `src` is a directory or a
    /// list, or when it ends with `/`.
    pub dest: Option<String>,
    /// Copy from this task's host to this path on the controller instead (relative to engine's
    /// working directory), with the same rules as `dest`. Excludes `from`, `dest`, `owner`, `group`.
    pub to_controller: Option<String>,
    /// Glob patterns of files to leave out, matched against paths relative to the copied
    /// directory: `*` and `?` stay within one path segment, `**` crosses them, `[a-z]` is a
    /// class. A pattern without `/` matches any segment, e.g. "apiserver.key", "*.key", "etcd"
    /// (that whole subdirectory).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Permission bits for every copied file, as an octal string like "0600". Default: each
    /// source file's own mode.
    #[schemars(with = "Option<String>")]
    pub mode: Option<Mode>,
    /// Owning user of the copied files on this task's host.
    pub owner: Option<String>,
    /// Owning group of the copied files on this task's host.
    pub group: Option<String>,
}

/// One path or a list of paths.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "a path or a list of paths")]
pub enum Paths {
    One(String),
    Many(Vec<String>),
}

impl Paths {
    fn list(&self) -> Vec<String> {
        match self {
            Paths::One(p) => vec![p.clone()],
            Paths::Many(ps) => ps.clone(),
        }
    }
}

/// True for a value that holds a run-time reference (another task's output, a host's fact),
/// which the engine fills in just before the task runs; it is checked again then. The engine's
/// `plan::refs` markers are set off by U+2063 (INVISIBLE SEPARATOR).
fn check_absolute(what: &str, path: &str) -> Result<(), String> {
    if path.starts_with('/') || is_deferred(path) {
        Ok(())
    } else {
        Err(format!("{what} must be an absolute path on the host, got {path:?}"))
    }
}

impl ScpArgs {
    pub(crate) fn validate(self) -> Result<Self, String> {
        let srcs = self.src.list();
        if srcs.is_empty() {
            return Err("src must name at least one path".into());
        }
        if srcs.iter().any(|s| s.trim().is_empty()) {
            return Err("src paths must not be empty".into());
        }
        if let Some(local) = &self.to_controller {
            if self.from.is_some() || self.dest.is_some() {
                return Err(
                    "to_controller copies from this task's host: give no `from` or `dest` with it".into()
                );
            }
            if self.owner.is_some() || self.group.is_some() {
                return Err("owner and group cannot be set on the controller (to_controller)".into());
            }
            if local.trim().is_empty() {
                return Err("to_controller must not be empty".into());
            }
            srcs.iter().try_for_each(|s| check_absolute("src", s))?;
        } else {
            let Some(from) = &self.from else {
                return Err(format!(
                    "missing `from`: the source host's name, or {CONTROLLER:?} (or use `to_controller` to copy to the controller)"
                ));
            };
            if from.trim().is_empty() {
                return Err("from must name a host or \"controller\"".into());
            }
            let Some(dest) = &self.dest else {
                return Err("missing `dest`: where to put the files on this task's host".into());
            };
            check_absolute("dest", dest)?;
            if from != CONTROLLER {
                srcs.iter().try_for_each(|s| check_absolute("src", s))?;
            }
        }
        if let Some(p) = self.exclude.iter().find(|p| p.trim_matches('/').is_empty()) {
            return Err(format!("exclude pattern {p:?} matches nothing"));
        }
        Ok(self)
    }
}

// ---- exclude globs

/// Matches `text` against a glob: `*` and `?` within one segment, `**` across segments,
/// `[abc]`, `[a-z]`, `[!x]` classes; everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob(&p, &t)
}

fn glob(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') if p.get(1) == Some(&'*') => {
            let rest = &p[2..];
            // `**/` also matches no directory at all.
            (rest.first() == Some(&'/') && glob(&rest[1..], t)) || (0..=t.len()).any(|i| glob(rest, &t[i..]))
        }
        Some('*') => (0..=t.len()).take_while(|&i| i == 0 || t[i - 1] != '/').any(|i| glob(&p[1..], &t[i..])),
        Some('?') => t.first().is_some_and(|&c| c != '/') && glob(&p[1..], &t[1..]),
        Some('[') => match class(&p[1..]) {
            Some((matches, len)) => {
                t.first().is_some_and(|&c| c != '/' && matches(c)) && glob(&p[1 + len..], &t[1..])
            }
            None => t.first() == Some(&'[') && glob(&p[1..], &t[1..]),
        },
        Some(c) => t.first() == Some(c) && glob(&p[1..], &t[1..]),
    }
}

/// Parses a class after its `[`: a predicate and how many pattern chars it used (through `]`).
fn class(p: &[char]) -> Option<(impl Fn(char) -> bool, usize)> {
    let negated = matches!(p.first(), Some('!' | '^'));
    let start = usize::from(negated);
    // A `]` right after `[` or `[!` is a member, not the end.
    let end = start + 1 + p.get(start + 1..)?.iter().position(|&c| c == ']')?;
    let members: Vec<char> = p[start..end].to_vec();
    let matches = move |c: char| {
        let mut i = 0;
        let mut hit = false;
        while i < members.len() {
            if i + 2 < members.len() && members[i + 1] == '-' {
                hit |= (members[i]..=members[i + 2]).contains(&c);
                i += 3;
            } else {
                hit |= members[i] == c;
                i += 1;
            }
        }
        hit != negated
    };
    Some((matches, end + 1))
}

/// Whether the file at `rel` (relative to the copied directory) is excluded by `patterns`.
/// A pattern without `/` matches any segment (the file's name or a directory's); one with
/// `/` matches the relative path of the file or of a directory above it; a trailing `/`
/// matches directories only.
fn excluded(patterns: &[String], rel: &str) -> bool {
    let segments: Vec<&str> = rel.split('/').collect();
    patterns.iter().any(|pattern| {
        let dirs_only = pattern.ends_with('/');
        let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
        let candidates = if dirs_only { segments.len() - 1 } else { segments.len() };
        if pattern.contains('/') {
            (1..=candidates).any(|n| glob_match(pattern, &segments[..n].join("/")))
        } else {
            segments[..candidates].iter().any(|s| glob_match(pattern, s))
        }
    })
}

// ---- listings: what is on each side

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Other,
    Missing,
}

/// One regular file, as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    mode: u32,
    size: u64,
    owner: String,
    group: String,
    sha256: String,
}

/// The answer of one listing round trip.
#[derive(Debug, Default, PartialEq, Eq)]
struct Listing {
    /// What each asked-about root or directory is.
    kinds: BTreeMap<String, Kind>,
    /// Every regular file found, by full path.
    files: BTreeMap<String, Entry>,
}

/// Given file paths as arguments, prints `F\tmode\tsize\towner\tgroup\tpath\0` for each, then
/// `sha256  path\0` for each (GNU stat and sha256sum; `-z` turns off name escaping).
const DESCRIBE: &str = r#"stat --printf "F\t%a\t%s\t%U\t%G\t%n\0" -- "$@" && sha256sum -z -- "$@""#;

/// The source listing: what each root is (`D`/`R`/`O`/`M` records), then every regular file
/// under the roots, described.
fn source_command(roots: &[String]) -> String {
    format!(
        "set -- {roots}; \
         for s do if [ -d \"$s\" ]; then printf 'D\\t%s\\0' \"$s\"; \
         elif [ -f \"$s\" ]; then printf 'R\\t%s\\0' \"$s\"; \
         elif [ -e \"$s\" ] || [ -L \"$s\" ]; then printf 'O\\t%s\\0' \"$s\"; \
         else printf 'M\\t%s\\0' \"$s\"; fi; done; \
         n=$#; for s do if [ -d \"$s\" ] || [ -f \"$s\" ]; then set -- \"$@\" \"$s\"; fi; done; shift $n; \
         [ $# -eq 0 ] || find -H \"$@\" -type f -exec sh -c {describe} sh {{}} +",
        roots = join(roots),
        describe = quote(DESCRIBE),
    )
}

/// The destination listing. Reads `d:PATH` (a directory that must exist) and `f:PATH` (a file
/// to compare), NUL-separated, on stdin: paths never touch the command line, however many.
fn dest_command() -> String {
    let script = r#"n=$#
for a do
  p=${a#??}
  case $a in
    d:*) if [ -d "$p" ]; then printf "D\t%s\0" "$p"; elif [ -e "$p" ] || [ -L "$p" ]; then printf "O\t%s\0" "$p"; fi ;;
    *) if [ -f "$p" ] && [ ! -L "$p" ]; then set -- "$@" "$p"; elif [ -e "$p" ] || [ -L "$p" ]; then printf "O\t%s\0" "$p"; fi ;;
  esac
done
shift $n
[ $# -eq 0 ] || { "#
        .to_owned()
        + DESCRIBE
        + "; }";
    format!("xargs -0 -r sh -c {} sh", quote(&script))
}

fn dest_stdin(dirs: &BTreeSet<String>, files: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in dirs {
        out.extend_from_slice(format!("d:{d}\0").as_bytes());
    }
    for f in files {
        out.extend_from_slice(format!("f:{f}\0").as_bytes());
    }
    out
}

fn parse_listing(bytes: &[u8]) -> Result<Listing, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| not_utf8(bytes, e.valid_up_to()))?;
    let mut listing = Listing::default();
    let mut described: BTreeMap<String, (u32, u64, String, String)> = BTreeMap::new();
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    for record in text.split('\0').filter(|r| !r.is_empty()) {
        let kind = match record.get(..2) {
            Some("D\t") => Some(Kind::Dir),
            Some("R\t") => Some(Kind::File),
            Some("O\t") => Some(Kind::Other),
            Some("M\t") => Some(Kind::Missing),
            _ => None,
        };
        if let Some(kind) = kind {
            listing.kinds.insert(record[2..].to_owned(), kind);
        } else if let Some(rest) = record.strip_prefix("F\t") {
            let fields: Vec<&str> = rest.splitn(5, '\t').collect();
            let [mode, size, owner, group, path] = fields[..] else {
                return Err(format!("unexpected stat record {record:?}"));
            };
            let mode = u32::from_str_radix(mode, 8).map_err(|e| format!("mode {mode:?}: {e}"))?;
            let size = size.parse().map_err(|e| format!("size {size:?}: {e}"))?;
            described.insert(path.to_owned(), (mode, size, owner.to_owned(), group.to_owned()));
        } else if record.len() > 66 && record.as_bytes()[..64].iter().all(u8::is_ascii_hexdigit) {
            hashes.insert(record[66..].to_owned(), record[..64].to_owned());
        } else {
            return Err(format!("unexpected record {record:?}"));
        }
    }
    for (path, (mode, size, owner, group)) in described {
        let sha256 = hashes
            .remove(&path)
            .ok_or_else(|| format!("no checksum for {path} (did it change while it was listed?)"))?;
        listing.files.insert(path, Entry { mode, size, owner, group, sha256 });
    }
    Ok(listing)
}

/// The error for a listing whose record around byte `bad` is not UTF-8: a file name that could
/// only be copied mangled (read back under a lossy name, it is not there), so it is refused,
/// named with its bytes escaped.
fn not_utf8(bytes: &[u8], bad: usize) -> String {
    let start = bytes[..bad].iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
    let end = bytes[bad..].iter().position(|&b| b == 0).map_or(bytes.len(), |i| bad + i);
    let record = &bytes[start..end];
    // `F\tmode\tsize\towner\tgroup\tpath`, or `K\tpath` for the other kinds.
    let fields = if record.starts_with(b"F\t") { 6 } else { 2 };
    let name = record.splitn(fields, |&b| b == b'\t').last().unwrap_or(record);
    format!("file name {} is not UTF-8; engine copies only UTF-8 names", name.escape_ascii())
}

/// Lists `roots` on the controller, like [`source_command`] does on a host.
fn list_local_sources(roots: &[String]) -> Result<Listing, String> {
    let mut listing = Listing::default();
    for root in roots {
        let kind = match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(m) if m.is_file() => Kind::File,
            Ok(_) => Kind::Other,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Kind::Missing,
            Err(e) => return Err(format!("cannot read {root} on the controller: {e}")),
        };
        listing.kinds.insert(root.clone(), kind);
        match kind {
            Kind::File => {
                listing.files.insert(root.clone(), local_entry(Path::new(root))?);
            }
            Kind::Dir => walk_local(Path::new(root), &mut listing.files)?,
            Kind::Other | Kind::Missing => {}
        }
    }
    Ok(listing)
}

/// Every regular file under `dir` (symbolic links are not followed, as `find` does).
fn walk_local(dir: &Path, files: &mut BTreeMap<String, Entry>) -> Result<(), String> {
    let read = |e: std::io::Error| format!("cannot read {} on the controller: {e}", dir.display());
    for item in std::fs::read_dir(dir).map_err(read)? {
        let item = item.map_err(read)?;
        let path = item.path();
        let file_type = item.file_type().map_err(read)?;
        if file_type.is_dir() {
            walk_local(&path, files)?;
        } else if file_type.is_file() {
            let name = path.to_str().ok_or_else(|| {
                format!(
                    "file name {} on the controller is not UTF-8; engine copies only UTF-8 names",
                    path.as_os_str().as_encoded_bytes().escape_ascii()
                )
            })?;
            files.insert(name.to_owned(), local_entry(&path)?);
        }
    }
    Ok(())
}

fn local_entry(path: &Path) -> Result<Entry, String> {
    use std::os::unix::fs::PermissionsExt;
    let read = |e: std::io::Error| format!("cannot read {} on the controller: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(read)?;
    let content = std::fs::read(path).map_err(read)?;
    Ok(Entry {
        mode: meta.permissions().mode() & 0o7777,
        size: content.len() as u64,
        owner: String::new(),
        group: String::new(),
        sha256: sha256_hex(&content),
    })
}

/// Lists destination `dirs` and `files` on the controller, like [`dest_command`] on a host.
fn list_local_dest(dirs: &BTreeSet<String>, files: &[String]) -> Result<Listing, String> {
    let mut listing = Listing::default();
    for dir in dirs {
        match std::fs::symlink_metadata(dir) {
            Ok(_) if Path::new(dir).is_dir() => listing.kinds.insert(dir.clone(), Kind::Dir),
            Ok(_) => listing.kinds.insert(dir.clone(), Kind::Other),
            Err(_) => None,
        };
    }
    for file in files {
        match std::fs::symlink_metadata(file) {
            Ok(m) if m.is_file() => {
                listing.files.insert(file.clone(), local_entry(Path::new(file))?);
            }
            Ok(_) => {
                listing.kinds.insert(file.clone(), Kind::Other);
            }
            Err(_) => {}
        }
    }
    Ok(listing)
}

// ---- pairing sources with destinations

/// One file to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transfer {
    src: String,
    dest: String,
    entry: Entry,
}

fn join_path(dir: &str, rel: &str) -> String {
    format!("{}/{rel}", dir.trim_end_matches('/'))
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A path without trailing slashes (except `/` itself), as `find` prints its roots.
fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() && path.starts_with('/') { "/".to_owned() } else { trimmed.to_owned() }
}

/// Pairs every source file with its destination, leaving out excluded ones. `source` names
/// the source side in messages.
fn pair_up(
    roots: &[String],
    dest: &str,
    listing: &Listing,
    exclude: &[String],
    source: &str,
) -> Result<Vec<Transfer>, String> {
    let many = roots.len() > 1;
    let mut copies: Vec<Transfer> = Vec::new();
    for root in roots {
        match listing.kinds.get(root).copied().unwrap_or(Kind::Missing) {
            Kind::Missing => return Err(format!("{source}:{root} does not exist")),
            Kind::Other => return Err(format!("{source}:{root} is neither a regular file nor a directory")),
            Kind::File => {
                let entry = listing
                    .files
                    .get(root)
                    .ok_or_else(|| format!("{source}:{root} vanished while it was listed"))?;
                if excluded(exclude, base_name(root)) {
                    continue;
                }
                let to = if many || dest.ends_with('/') {
                    join_path(dest, base_name(root))
                } else {
                    dest.to_owned()
                };
                copies.push(Transfer { src: root.clone(), dest: to, entry: entry.clone() });
            }
            Kind::Dir => {
                let prefix = if root == "/" { "/".to_owned() } else { format!("{root}/") };
                let base = if many { join_path(dest, base_name(root)) } else { dest.to_owned() };
                for (path, entry) in listing.files.range(prefix.clone()..) {
                    let Some(rel) = path.strip_prefix(&prefix) else { break };
                    if excluded(exclude, rel) {
                        continue;
                    }
                    copies.push(Transfer {
                        src: path.clone(),
                        dest: join_path(&base, rel),
                        entry: entry.clone(),
                    });
                }
            }
        }
    }
    copies.sort_by(|a, b| a.dest.cmp(&b.dest));
    if let Some(pair) = copies.windows(2).find(|w| w[0].dest == w[1].dest) {
        return Err(format!("both {} and {} would be copied to {}", pair[0].src, pair[1].src, pair[0].dest));
    }
    Ok(copies)
}

/// Every directory above the copies' destinations (not `/`), which must exist or be created.
fn needed_dirs(copies: &[Transfer]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for copy in copies {
        for dir in Path::new(&copy.dest).ancestors().skip(1) {
            let dir = dir.to_string_lossy();
            if dir.is_empty() || dir == "/" || dir == "." {
                break;
            }
            dirs.insert(dir.into_owned());
        }
    }
    dirs
}

// ---- the two sides

/// Where files are read or written.
#[derive(Clone)]
enum Side {
    /// The machine engine runs on, through the local filesystem.
    Controller,
    /// The host the task runs on (the one `apply` is given).
    TaskHost,
    /// Another host of the run.
    Peer { name: String, host: Arc<dyn Host> },
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Controller => f.write_str("Controller"),
            Side::TaskHost => f.write_str("TaskHost"),
            Side::Peer { name, .. } => write!(f, "Peer({name})"),
        }
    }
}

impl Side {
    fn host<'a>(&'a self, task_host: &'a dyn Host) -> Option<&'a dyn Host> {
        match self {
            Side::Controller => None,
            Side::TaskHost => Some(task_host),
            Side::Peer { host, .. } => Some(host.as_ref()),
        }
    }

    fn label(&self, task_host: &dyn Host) -> String {
        match self {
            Side::Controller => CONTROLLER.to_owned(),
            Side::TaskHost => task_host.name().to_owned(),
            Side::Peer { name, .. } => name.clone(),
        }
    }

    async fn read(&self, task_host: &dyn Host, path: &str) -> Result<Vec<u8>, ModuleError> {
        match self.host(task_host) {
            Some(host) => remote::read(host, path).await,
            None => tokio::fs::read(path)
                .await
                .map_err(|e| ModuleError::Refused(format!("cannot read {path} on the controller: {e}"))),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ModuleError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ModuleError::Refused(format!("controller file access failed: {e}")))?
        .map_err(ModuleError::Refused)
}

/// Writes `content` to a controller path atomically: a temporary file in the same directory,
/// mode set, fsynced, renamed over `path`.
fn write_local_atomic(path: &str, content: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let target = Path::new(path);
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.engine-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(content)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode.unwrap_or(0o644)))?;
        file.sync_all()?;
        std::fs::rename(&temp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

// ---- the module

/// The `scp` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Scp {
    args: ScpArgs,
}

impl Scp {
    pub fn new(args: ScpArgs) -> Self {
        Self { args }
    }

    /// The source and destination sides, and the destination root.
    fn sides(&self, cx: &Context<'_>) -> Result<(Side, Side, String), ModuleError> {
        let args = &self.args;
        if let Some(local) = &args.to_controller {
            return Ok((Side::TaskHost, Side::Controller, local.clone()));
        }
        let dest = args.dest.clone().unwrap_or_default();
        match args.from.as_deref() {
            Some(CONTROLLER) | None => Ok((Side::Controller, Side::TaskHost, dest)),
            Some(name) => {
                let host = cx.peers.peer(name).ok_or_else(|| {
                    ModuleError::Refused(format!(
                        "cannot copy from {name:?}: no such host in this run (check the inventory and --limit)"
                    ))
                })?;
                Ok((Side::Peer { name: name.to_owned(), host }, Side::TaskHost, dest))
            }
        }
    }
}

#[async_trait]
impl Module for Scp {
    fn name(&self) -> &'static str {
        "scp"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let (source, dest_side, dest) = self.sides(cx)?;
        let source_label = source.label(cx.host);
        let roots: Vec<String> = args.src.list().iter().map(|s| normalize(s)).collect();

        // One round trip to the source: what the roots are, every file's checksum and mode.
        let sources = match source.host(cx.host) {
            Some(host) => {
                let out = run_checked(host, Exec::new(source_command(&roots))).await?;
                parse_listing(&out.stdout).map_err(|e| {
                    ModuleError::Refused(format!("cannot list {source_label}:{}: {e}", roots.join(" ")))
                })?
            }
            None => {
                let roots = roots.clone();
                blocking(move || list_local_sources(&roots)).await?
            }
        };
        let copies =
            pair_up(&roots, &dest, &sources, &args.exclude, &source_label).map_err(ModuleError::Refused)?;

        // One round trip to the destination: the directories above, and every file's state.
        let dirs = needed_dirs(&copies);
        let dest_paths: Vec<&str> = copies.iter().map(|c| c.dest.as_str()).collect();
        let current = match dest_side.host(cx.host) {
            Some(host) => {
                let exec = Exec::new(dest_command()).stdin(dest_stdin(&dirs, &dest_paths));
                let out = run_checked(host, exec).await?;
                parse_listing(&out.stdout).map_err(|e| {
                    ModuleError::Refused(format!("cannot list {dest} on {}: {e}", dest_side.label(cx.host)))
                })?
            }
            None => {
                let (dirs, files) =
                    (dirs.clone(), dest_paths.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
                blocking(move || list_local_dest(&dirs, &files)).await?
            }
        };

        let dest_label = |path: &str| match dest_side {
            Side::Controller => format!("{CONTROLLER}:{path}"),
            _ => path.to_owned(),
        };
        let mut changes = Vec::new();
        let mut mkdirs = Vec::new();
        for dir in &dirs {
            match current.kinds.get(dir) {
                Some(Kind::Dir) => {}
                Some(_) => {
                    return Err(ModuleError::Refused(format!(
                        "{} exists and is not a directory",
                        dest_label(dir)
                    )));
                }
                None => {
                    changes.push(format!("create directory {}", dest_label(dir)));
                    mkdirs.push(dir.clone());
                }
            }
        }
        let mut writes = Vec::new();
        let mut set_attrs = Vec::new();
        let mut diff = String::new();
        for copy in &copies {
            let stat = match (current.files.get(&copy.dest), current.kinds.get(&copy.dest)) {
                (Some(e), _) => Some(FileStat {
                    kind: FileKind::File,
                    mode: e.mode,
                    owner: e.owner.clone(),
                    group: e.group.clone(),
                    sha256: Some(e.sha256.clone()),
                }),
                (None, Some(_)) => Some(FileStat {
                    kind: FileKind::Other,
                    mode: 0,
                    owner: String::new(),
                    group: String::new(),
                    sha256: None,
                }),
                (None, None) => None,
            };
            let wanted = WantedAttrs {
                mode: Some(args.mode.map_or(copy.entry.mode, |m| m.0)),
                owner: args.owner.clone(),
                group: args.group.clone(),
            };
            let (change, attr_lines) =
                content_change(&dest_label(&copy.dest), stat.as_ref(), &copy.entry.sha256, &wanted, 0o644)?;
            let attr_lines = attr_lines.into_iter().map(|l| format!("{}: {l}", dest_label(&copy.dest)));
            match change {
                ContentChange::None => {}
                ContentChange::SetAttrs(attrs) => {
                    changes.extend(attr_lines);
                    set_attrs.push((copy.dest.clone(), attrs));
                }
                ContentChange::Write { attrs, create } => {
                    changes.push(format!(
                        "send {source_label}:{} -> {} ({} bytes, {})",
                        copy.src,
                        dest_label(&copy.dest),
                        copy.entry.size,
                        if create { "new" } else { "content differs" }
                    ));
                    changes.extend(attr_lines);
                    let mut content = None;
                    if cx.options.diff {
                        let after = source.read(cx.host, &copy.src).await?;
                        let before =
                            if create { None } else { Some(dest_side.read(cx.host, &copy.dest).await?) };
                        let shown = dest_label(&copy.dest);
                        // Redacts content holding a private key.
                        diff.push_str(&unified_diff(&shown, before.as_deref(), &after));
                        content = Some(after);
                    }
                    writes.push(Write {
                        src: copy.src.clone(),
                        dest: copy.dest.clone(),
                        sha256: copy.entry.sha256.clone(),
                        attrs,
                        content,
                    });
                }
            }
        }

        let mut outputs = Outputs::new();
        outputs.insert(
            "files".into(),
            Value::Array(copies.iter().map(|c| Value::String(c.dest.clone())).collect()),
        );
        if changes.is_empty() {
            outputs.insert("sent".into(), Value::from(0));
            return Ok(Plan { outputs, ..Plan::unchanged() });
        }
        Ok(Plan {
            changes,
            diff: (cx.options.diff && !diff.is_empty()).then_some(diff),
            outputs,
            action: Some(Box::new(ScpAction { source, dest: dest_side, mkdirs, writes, set_attrs })),
        })
    }
}

/// One file to send. Its content is kept only when `--diff` already read it, and never shown.
struct Write {
    src: String,
    dest: String,
    /// The SHA-256 planned on; the relayed bytes must still match it.
    sha256: String,
    attrs: Attrs,
    content: Option<Vec<u8>>,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write")
            .field("src", &self.src)
            .field("dest", &self.dest)
            .field("sha256", &self.sha256)
            .field("attrs", &self.attrs)
            .finish_non_exhaustive()
    }
}

/// Exactly the planned copy: these directories, these files, these attribute fixes.
#[derive(Debug)]
struct ScpAction {
    source: Side,
    dest: Side,
    mkdirs: Vec<String>,
    writes: Vec<Write>,
    set_attrs: Vec<(String, Attrs)>,
}

#[async_trait]
impl Action for ScpAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let ScpAction { source, dest, mkdirs, writes, set_attrs } = *self;
        let dest_host = dest.host(host);
        if !mkdirs.is_empty() {
            match dest_host {
                Some(h) => {
                    let command = format!("mkdir -p -- {}", join(&mkdirs));
                    run_checked(h, Exec::new(command)).await?;
                }
                None => {
                    blocking(move || {
                        mkdirs.iter().try_for_each(|d| {
                            std::fs::create_dir_all(d)
                                .map_err(|e| format!("cannot create {d} on the controller: {e}"))
                        })
                    })
                    .await?
                }
            }
        }
        let sent = writes.len();
        for write in writes {
            let content = match write.content {
                Some(content) => content,
                None => source.read(host, &write.src).await?,
            };
            if sha256_hex(&content) != write.sha256 {
                return Err(ModuleError::Refused(format!(
                    "{}:{} changed since it was planned; run again",
                    source.label(host),
                    write.src
                )));
            }
            match dest_host {
                Some(h) => remote::write_atomic(h, &write.dest, &content, &write.attrs).await?,
                None => {
                    let (path, mode) = (write.dest.clone(), write.attrs.mode);
                    blocking(move || {
                        write_local_atomic(&path, &content, mode)
                            .map_err(|e| format!("cannot write {path} on the controller: {e}"))
                    })
                    .await?
                }
            }
        }
        for (path, attrs) in set_attrs {
            match dest_host {
                Some(h) => remote::set_attrs(h, &path, &attrs).await?,
                None => {
                    if let Some(mode) = attrs.mode {
                        blocking(move || {
                            use std::os::unix::fs::PermissionsExt;
                            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                                .map_err(|e| format!("cannot chmod {path} on the controller: {e}"))
                        })
                        .await?
                    }
                }
            }
        }
        let mut outputs = Outputs::new();
        outputs.insert("sent".into(), Value::from(sent));
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(value: Value) -> Result<ScpArgs, String> {
        serde_json::from_value::<ScpArgs>(value).map_err(|e| e.to_string())?.validate()
    }

    #[test]
    fn arguments_name_what_is_wrong() {
        assert!(args(json!({"from": "etcd0", "src": "/a", "dest": "/b"})).is_ok());
        assert!(args(json!({"from": "controller", "src": "rel/x", "dest": "/b"})).is_ok());
        assert!(args(json!({"src": ["/a", "/b"], "to_controller": "out/"})).is_ok());
        let marker = format!("{}output|3|path{}", contract::deferred::open(), contract::deferred::CLOSE);
        assert!(args(json!({"from": "etcd0", "src": marker, "dest": "/b"})).is_ok());

        let err = |v: Value| args(v).unwrap_err();
        assert!(err(json!({"src": "/a", "dest": "/b"})).contains("missing `from`"));
        assert!(err(json!({"from": "etcd0", "src": "/a"})).contains("missing `dest`"));
        assert!(err(json!({"from": "etcd0", "src": "a", "dest": "/b"})).contains("src must be an absolute"));
        assert!(err(json!({"from": "etcd0", "src": "/a", "dest": "b"})).contains("dest must be an absolute"));
        assert!(err(json!({"from": "etcd0", "src": [], "dest": "/b"})).contains("at least one"));
        assert!(err(json!({"from": "x", "src": "/a", "to_controller": "o"})).contains("no `from` or `dest`"));
        assert!(err(json!({"src": "/a", "to_controller": "o", "owner": "root"})).contains("owner and group"));
        assert!(err(json!({"from": "e", "src": 3, "dest": "/b"})).contains("a path or a list of paths"));
        assert!(
            err(json!({"from": "e", "src": "/a", "dest": "/b", "excludes": []})).contains("unknown field")
        );
        assert!(err(json!({"from": "e", "src": "/a", "dest": "/b", "mode": "999"})).contains("invalid mode"));
    }

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match("*.key", "apiserver.key"));
        assert!(!glob_match("*.key", "etcd/ca.key"));
        assert!(glob_match("**/*.key", "etcd/ca.key"));
        assert!(glob_match("**/*.key", "ca.key"));
        assert!(glob_match("etcd/**", "etcd/a/b"));
        assert!(glob_match("api?erver.crt", "apiserver.crt"));
        assert!(glob_match("[ab]*.crt", "b.crt") && !glob_match("[!ab]*.crt", "b.crt"));
        assert!(glob_match("[a-c].crt", "b.crt") && !glob_match("[a-c].crt", "d.crt"));
        assert!(glob_match("[]x]", "]") && glob_match("[]x", "[]x") && glob_match("a[", "a["));
        assert!(!glob_match("a?b", "a/b"));
    }

    #[test]
    fn excludes_match_names_anywhere_and_paths_from_the_root() {
        let ex = |patterns: &[&str], rel: &str| {
            excluded(&patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>(), rel)
        };
        assert!(ex(&["apiserver.crt", "apiserver.key"], "apiserver.key"));
        assert!(!ex(&["apiserver.crt", "apiserver.key"], "apiserver-kubelet-client.key"));
        assert!(ex(&["*.key"], "etcd/ca.key"));
        assert!(ex(&["etcd"], "etcd/ca.key"), "a directory name leaves out its subtree");
        assert!(ex(&["etcd/"], "etcd/ca.key") && !ex(&["etcd/"], "etcd"), "trailing / is directories only");
        assert!(ex(&["etcd/ca.*"], "etcd/ca.key") && !ex(&["etcd/ca.*"], "ca.key"));
        assert!(ex(&["/ca.key"], "ca.key"));
    }

    fn entry(sha: &str) -> Entry {
        Entry { mode: 0o600, size: 3, owner: "root".into(), group: "root".into(), sha256: sha.into() }
    }

    fn listing(kinds: &[(&str, Kind)], files: &[&str]) -> Listing {
        Listing {
            kinds: kinds.iter().map(|(p, k)| ((*p).to_owned(), *k)).collect(),
            files: files.iter().map(|f| ((*f).to_owned(), entry(f))).collect(),
        }
    }

    #[test]
    fn pairs_files_trees_and_lists_with_their_destinations() {
        let l = listing(
            &[("/pki", Kind::Dir), ("/one.crt", Kind::File), ("/gone", Kind::Missing)],
            &["/pki/ca.crt", "/pki/apiserver.key", "/pki/etcd/ca.key", "/pkix/not-under", "/one.crt"],
        );
        let dests = |roots: &[&str], dest: &str, ex: &[&str]| -> Result<Vec<String>, String> {
            let roots: Vec<String> = roots.iter().map(|r| (*r).to_owned()).collect();
            let ex: Vec<String> = ex.iter().map(|r| (*r).to_owned()).collect();
            Ok(pair_up(&roots, dest, &l, &ex, "etcd0")?.into_iter().map(|c| c.dest).collect())
        };
        assert_eq!(dests(&["/one.crt"], "/d/x.crt", &[]).unwrap(), ["/d/x.crt"]);
        assert_eq!(dests(&["/one.crt"], "/d/", &[]).unwrap(), ["/d/one.crt"]);
        assert_eq!(dests(&["/pki"], "/k", &["apiserver.key"]).unwrap(), ["/k/ca.crt", "/k/etcd/ca.key"]);
        assert_eq!(
            dests(&["/pki", "/one.crt"], "/k", &["etcd"]).unwrap(),
            ["/k/one.crt", "/k/pki/apiserver.key", "/k/pki/ca.crt"]
        );
        assert_eq!(dests(&["/gone"], "/k", &[]).unwrap_err(), "etcd0:/gone does not exist");
        assert!(dests(&["/one.crt", "/one.crt"], "/k", &[]).unwrap_err().contains("both"));
    }

    #[test]
    fn needed_dirs_are_every_ancestor_but_the_root() {
        let copy = |dest: &str| Transfer { src: "/s".into(), dest: dest.into(), entry: entry("x") };
        let dirs = needed_dirs(&[copy("/a/b/c"), copy("/a/d"), copy("rel/x")]);
        assert_eq!(dirs.into_iter().collect::<Vec<_>>(), ["/a", "/a/b", "rel"]);
    }

    #[test]
    fn parses_listings() {
        let sha = "a".repeat(64);
        let raw = format!(
            "D\t/pki\0M\t/gone\0O\t/dev/null\0F\t600\t3\troot\tadm\t/pki/a b\0F\t4755\t0\tx\ty\t/pki/s\0\
             {sha}  /pki/a b\0{sha}  /pki/s\0"
        );
        let l = parse_listing(raw.as_bytes()).unwrap();
        assert_eq!(l.kinds["/pki"], Kind::Dir);
        assert_eq!(l.kinds["/gone"], Kind::Missing);
        assert_eq!(l.kinds["/dev/null"], Kind::Other);
        assert_eq!(
            l.files["/pki/a b"],
            Entry { mode: 0o600, size: 3, owner: "root".into(), group: "adm".into(), sha256: sha.clone() }
        );
        assert_eq!(l.files["/pki/s"].mode, 0o4755);
        assert!(parse_listing(b"F\t600\t3\troot\troot\t/x\0").unwrap_err().contains("no checksum"));
        assert!(parse_listing(b"garbage\0").is_err());
        assert_eq!(parse_listing(b"").unwrap(), Listing::default());
    }

    /// A non-UTF-8 name used to be read back under its lossy spelling (`cat` of a path that is
    /// not there): it is refused, named with its bytes.
    #[test]
    fn refuses_names_that_are_not_utf8() {
        let error = parse_listing(b"D\t/d\0F\t644\t1\troot\troot\t/d/bad\xffname\0").unwrap_err();
        assert_eq!(error, r"file name /d/bad\xffname is not UTF-8; engine copies only UTF-8 names");
        let error = parse_listing(b"M\t/gone\xfe\0").unwrap_err();
        assert!(error.contains(r"/gone\xfe is not UTF-8"), "{error}");
    }

    #[test]
    fn commands_quote_every_path() {
        let cmd = source_command(&["/a b".into(), "/it's".into()]);
        assert!(cmd.starts_with("set -- '/a b' '/it'\\''s'; "), "{cmd}");
        assert!(dest_command().starts_with("xargs -0 -r sh -c '"));
        let stdin = dest_stdin(&["/d".into()].into_iter().collect(), &["/d/f"]);
        assert_eq!(stdin, b"d:/d\0f:/d/f\0");
    }

    #[test]
    fn private_keys_are_secret() {
        assert!(contract::diff::looks_secret(b"-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(contract::diff::looks_secret(b"-----BEGIN PRIVATE KEY-----\n"));
        assert!(!contract::diff::looks_secret(b"-----BEGIN CERTIFICATE-----\n"));
    }

    #[test]
    fn local_listing_and_atomic_write() {
        let dir = std::env::temp_dir().join(format!("engine-scp-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
        let root = dir.join("tree").to_string_lossy().into_owned();
        write_local_atomic(&format!("{root}/a"), b"abc", Some(0o600)).unwrap();
        write_local_atomic(&format!("{root}/sub/b"), b"b", None).unwrap();
        let l = list_local_sources(&[root.clone(), format!("{root}/none")]).unwrap();
        assert_eq!(l.kinds[&root], Kind::Dir);
        assert_eq!(l.kinds[&format!("{root}/none")], Kind::Missing);
        assert_eq!(l.files[&format!("{root}/a")].mode, 0o600);
        assert_eq!(l.files[&format!("{root}/a")].sha256, sha256_hex(b"abc"));
        assert_eq!(l.files[&format!("{root}/sub/b")].mode, 0o644);
        assert_eq!(l.files.len(), 2, "no temporary files left behind: {:?}", l.files.keys());
        let d = list_local_dest(
            &[root.clone()].into_iter().collect(),
            &[format!("{root}/a"), format!("{root}/sub")],
        )
        .unwrap();
        assert_eq!(d.kinds[&root], Kind::Dir);
        assert_eq!(d.kinds[&format!("{root}/sub")], Kind::Other);
        assert!(d.files.contains_key(&format!("{root}/a")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
