//! OpenSSH's client configuration file (`~/.ssh/config`, `-F FILE`), as ssh_config(5) reads it.
//!
//! [`SshConfigFile::load`] parses a file (and what it `Include`s) into settings, each with its
//! file:line and the `Host`/`Match` conditions it sits under; [`SshConfigFile::resolve`] walks
//! them for one destination the way ssh does:
//! - keywords are case-insensitive, written `Key Value`, `Key=Value` or `Key = Value`; values
//!   may be double- or single-quoted; `#` starts a comment at the start of a word;
//! - the **first obtained value wins** (values given on the command line, i.e. the inventory's,
//!   were obtained first); `IdentityFile` accumulates instead;
//! - `Host` patterns (whitespace-separated, `*`, `?`, `!negation`) match the destination as
//!   given (the inventory's `ansible_host`, else its name), case-insensitively;
//! - `Match all`, `Match host LIST` (the name after `HostName`, as far as it is known at that
//!   line), `Match originalhost LIST` (the name as given), each negatable with `!`; any other
//!   criterion is refused, naming file:line;
//! - `Include` (globs in the last path component; relative paths are taken from `~/.ssh`),
//!   conditional when it sits in a `Host`/`Match` block, nested at most 16 deep;
//! - `~` and the tokens `%%`, `%h`, `%n`, `%p`, `%r`, `%u`, `%d` are expanded where OpenSSH
//!   expands them (`HostName` takes `%h` and `%%` only);
//! - a keyword OpenSSH does not know is an error naming file:line, as in OpenSSH (unless an
//!   earlier `IgnoreUnknown` pattern names it); a keyword OpenSSH knows but engine does not
//!   use (`ForwardAgent`, `ControlMaster`, ...) is skipped and listed by
//!   [`SshConfigFile::unused_keywords`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::known_hosts::{glob, pattern_list_matches};
use super::ssh_options::{JumpSpec, Setting, SshOptions};

/// `Include` nesting limit (OpenSSH's `READCONF_MAX_DEPTH`).
const MAX_DEPTH: usize = 16;

/// An error in an ssh_config file, naming the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{}{}: {message}", path.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
#[diagnostic(code(engine::ssh_config))]
pub struct SshConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

/// Where a setting was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub path: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// When a block's settings apply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `Host PATTERN...`: the destination as given matches.
    Host(Vec<String>),
    /// `Match CRITERION...`: every criterion holds.
    Match(Vec<Criterion>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Criterion {
    All,
    /// `host` (false) or `originalhost` (true), a comma-separated pattern list, maybe negated.
    Host {
        original: bool,
        patterns: Vec<String>,
        negated: bool,
    },
}

/// One setting under the conditions (indices into [`SshConfigFile::conditions`]) that must all
/// hold for it to apply: those of the `Include` lines that led to its file, then its block's.
#[derive(Debug, Clone)]
struct Entry {
    conditions: Vec<usize>,
    setting: Setting,
    origin: Origin,
}

/// A parsed ssh_config file with everything it includes.
#[derive(Debug, Clone, Default)]
pub struct SshConfigFile {
    conditions: Vec<Condition>,
    entries: Vec<Entry>,
    /// Keywords OpenSSH knows that engine does not use, as written (lower-cased), once each.
    unused: BTreeSet<String>,
}

/// Where the parser is: the file, and the state `IgnoreUnknown` leaves for the lines after it.
struct Reader<'a> {
    home: &'a Path,
    ignore_unknown: Vec<String>,
}

impl SshConfigFile {
    /// Reads `path` and its includes. A missing file reads as empty (ssh skips a missing
    /// `~/.ssh/config`); `required` makes it an error instead (`-F FILE`, as ssh does).
    pub fn load(path: &Path, required: bool) -> Result<Self, SshConfigError> {
        let home = std::env::home_dir().unwrap_or_default();
        let mut file = Self::default();
        if !path.exists() && !required {
            return Ok(file);
        }
        let mut reader = Reader { home: &home, ignore_unknown: Vec::new() };
        file.read(&mut reader, path, &[], 0, None)?;
        Ok(file)
    }

    /// Parses `text` as the file `path` (includes are read from disk, relative to `home/.ssh`).
    pub fn parse(text: &str, path: &Path, home: &Path) -> Result<Self, SshConfigError> {
        let mut file = Self::default();
        let mut reader = Reader { home, ignore_unknown: Vec::new() };
        file.parse_text(&mut reader, text, path, &[], 0)?;
        Ok(file)
    }

    /// The OpenSSH keywords this file sets that engine does not use (lower-cased).
    pub fn unused_keywords(&self) -> impl Iterator<Item = &str> {
        self.unused.iter().map(String::as_str)
    }

    fn read(
        &mut self,
        reader: &mut Reader<'_>,
        path: &Path,
        outer: &[usize],
        depth: usize,
        included_at: Option<&Origin>,
    ) -> Result<(), SshConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| match included_at {
            Some(at) => SshConfigError {
                path: at.path.clone(),
                line: at.line,
                message: format!("cannot read included file {}: {e}", path.display()),
            },
            None => SshConfigError { path: path.to_owned(), line: 0, message: format!("cannot read: {e}") },
        })?;
        self.parse_text(reader, &text, path, outer, depth)
    }

    fn parse_text(
        &mut self,
        reader: &mut Reader<'_>,
        text: &str,
        path: &Path,
        outer: &[usize],
        depth: usize,
    ) -> Result<(), SshConfigError> {
        // The conditions in force: the include's, plus this file's current block.
        let mut current: Vec<usize> = outer.to_vec();
        for (index, raw) in text.lines().enumerate() {
            let origin = Origin { path: path.to_owned(), line: index + 1 };
            let fail =
                |message: String| SshConfigError { path: origin.path.clone(), line: origin.line, message };
            let Some((keyword, args)) = split_line(raw).map_err(fail)? else { continue };
            let lower = keyword.to_ascii_lowercase();
            match lower.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(fail("Host needs at least one pattern".into()));
                    }
                    current = outer.to_vec();
                    current.push(self.add_condition(Condition::Host(args)));
                }
                "match" => {
                    let criteria = parse_match(&args).map_err(fail)?;
                    current = outer.to_vec();
                    current.push(self.add_condition(Condition::Match(criteria)));
                }
                "include" => {
                    if args.is_empty() {
                        return Err(fail("Include needs a file".into()));
                    }
                    if depth + 1 > MAX_DEPTH {
                        return Err(fail(format!("Include nested more than {MAX_DEPTH} deep")));
                    }
                    for arg in &args {
                        for file in include_files(arg, reader.home).map_err(fail)? {
                            self.read(reader, &file, &current, depth + 1, Some(&origin))?;
                        }
                    }
                }
                "ignoreunknown" => reader.ignore_unknown = args.iter().flat_map(|a| split_list(a)).collect(),
                _ => match Setting::parse(&lower, &args) {
                    Some(Ok(setting)) => {
                        self.entries.push(Entry { conditions: current.clone(), setting, origin });
                    }
                    Some(Err(message)) => return Err(fail(format!("{keyword}: {message}"))),
                    None if OPENSSH_KEYWORDS.contains(&lower.as_str()) => {
                        self.unused.insert(lower);
                    }
                    None if pattern_list_matches(&reader.ignore_unknown, &lower) => {}
                    None => {
                        return Err(fail(format!(
                            "unknown keyword `{keyword}` (OpenSSH refuses it too; add `IgnoreUnknown \
                             {keyword}` above it to skip it)"
                        )));
                    }
                },
            }
        }
        Ok(())
    }

    fn add_condition(&mut self, condition: Condition) -> usize {
        self.conditions.push(condition);
        self.conditions.len() - 1
    }

    /// The options for destination `host` (as given: `ansible_host`, else the inventory name):
    /// `given` holds those given on the command line (they win: first obtained value), and
    /// this file's matching settings fill in the rest, in file order.
    pub fn resolve(&self, host: &str, given: &SshOptions) -> SshOptions {
        let mut options = given.clone();
        let mut decided: HashMap<usize, bool> = HashMap::new();
        for entry in &self.entries {
            let applies = entry
                .conditions
                .iter()
                .all(|&index| *decided.entry(index).or_insert_with(|| self.holds(index, host, &options)));
            if applies {
                options.apply(&entry.setting, &entry.origin);
            }
        }
        options
    }

    fn holds(&self, index: usize, original: &str, options: &SshOptions) -> bool {
        match &self.conditions[index] {
            Condition::Host(patterns) => pattern_list_matches(patterns, original),
            Condition::Match(criteria) => criteria.iter().all(|criterion| match criterion {
                Criterion::All => true,
                Criterion::Host { original: use_original, patterns, negated } => {
                    let name = if *use_original {
                        original.to_owned()
                    } else {
                        options.host_name_for_match(original)
                    };
                    pattern_list_matches(patterns, &name) != *negated
                }
            }),
        }
    }
}

fn split_list(arg: &str) -> Vec<String> {
    arg.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

fn parse_match(args: &[String]) -> Result<Vec<Criterion>, String> {
    if args.is_empty() {
        return Err("Match needs a criterion (engine supports all, host, originalhost)".into());
    }
    let mut criteria = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let lower = word.to_ascii_lowercase();
        let (negated, name) = match lower.strip_prefix('!') {
            Some(name) => (true, name),
            None => (false, lower.as_str()),
        };
        match name {
            "all" if !negated => criteria.push(Criterion::All),
            "host" | "originalhost" => {
                let list = words.next().ok_or_else(|| format!("Match {name} needs a pattern list"))?;
                criteria.push(Criterion::Host {
                    original: name == "originalhost",
                    patterns: split_list(list),
                    negated,
                });
            }
            other => {
                return Err(format!(
                    "Match criterion `{other}` is not supported by engine (it supports all, host, \
                     originalhost)"
                ));
            }
        }
    }
    if criteria.contains(&Criterion::All) && criteria.len() > 1 {
        return Err("Match all cannot be combined with other criteria".into());
    }
    Ok(criteria)
}

/// The files one `Include` argument names: `~` expanded, relative to `~/.ssh`, a glob in the
/// last component expanded (sorted, as glob(3) does). Names that match nothing are skipped,
/// as ssh skips them.
fn include_files(arg: &str, home: &Path) -> Result<Vec<PathBuf>, String> {
    let path = expand_tilde(arg, home);
    let path = if path.is_absolute() { path } else { home.join(".ssh").join(path) };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(if path.exists() { vec![path] } else { Vec::new() });
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(format!("Include {arg}: engine expands wildcards in the last path component only"));
    }
    let Ok(listing) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut files: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && glob(name.as_bytes(), n.as_bytes()))
        .map(|n| dir.join(n))
        .collect();
    files.sort();
    Ok(files)
}

/// `~` or `~/x` under `home`; other paths as written.
pub fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    if path == "~" {
        home.to_owned()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(path)
    }
}

/// One line as `(keyword, arguments)`; `None` for blank and comment lines.
fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let keyword = line[..end].to_owned();
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    Ok(Some((keyword, split_words(rest)?)))
}

/// Whitespace-separated words, `"..."` or `'...'` quoting, `#` at a word's start ending the line.
pub(crate) fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(words),
            _ => {}
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' || c == '\'' {
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(other) => word.push(other),
                        None => return Err(format!("unterminated {c}quoted{c} value")),
                    }
                }
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// Every keyword of ssh_config(5) (OpenSSH 9.x, lower-cased), with the old names OpenSSH still
/// accepts. One that engine does not use is skipped, not refused.
const OPENSSH_KEYWORDS: &[&str] = &[
    "addkeystoagent",
    "addressfamily",
    "batchmode",
    "bindaddress",
    "bindinterface",
    "canonicaldomains",
    "canonicalizefallbacklocal",
    "canonicalizehostname",
    "canonicalizemaxdots",
    "canonicalizepermittedcnames",
    "casignaturealgorithms",
    "certificatefile",
    "channeltimeout",
    "checkhostip",
    "ciphers",
    "cipher",
    "clearallforwardings",
    "compression",
    "compressionlevel",
    "connectionattempts",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "dynamicforward",
    "enableescapecommandline",
    "enablesshkeysign",
    "escapechar",
    "exitonforwardfailure",
    "fingerprinthash",
    "forkafterauthentication",
    "forwardagent",
    "forwardx11",
    "forwardx11timeout",
    "forwardx11trusted",
    "gatewayports",
    "gssapiauthentication",
    "gssapidelegatecredentials",
    "gssapikeyexchange",
    "gssapiclientidentity",
    "gssapiserveridentity",
    "gssapirenewalforcesrekey",
    "gssapitrustdns",
    "gssapikexalgorithms",
    "hashknownhosts",
    "hostbasedacceptedalgorithms",
    "hostbasedauthentication",
    "hostbasedkeytypes",
    "hostkeyalgorithms",
    "hostkeyalias",
    "identityagent",
    "ipqos",
    "kbdinteractiveauthentication",
    "kbdinteractivedevices",
    "challengeresponseauthentication",
    "kexalgorithms",
    "knownhostscommand",
    "localcommand",
    "localforward",
    "loglevel",
    "logverbose",
    "macs",
    "nohostauthenticationforlocalhost",
    "numberofpasswordprompts",
    "obscurekeystroketiming",
    "passwordauthentication",
    "permitlocalcommand",
    "permitremoteopen",
    "pkcs11provider",
    "preferredauthentications",
    "protocol",
    "proxyusefdpass",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "pubkeyauthentication",
    "rekeylimit",
    "remotecommand",
    "remoteforward",
    "requesttty",
    "requiredrsasize",
    "revokedhostkeys",
    "securitykeyprovider",
    "sendenv",
    "serveralivecountmax",
    "serveraliveinterval",
    "sessiontype",
    "setenv",
    "stdinnull",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "syslogfacility",
    "tag",
    "tcpkeepalive",
    "tunnel",
    "tunneldevice",
    "updatehostkeys",
    "usekeychain",
    "useprivilegedport",
    "userknownhostsfile2",
    "useroaming",
    "rsaauthentication",
    "rhostsrsaauthentication",
    "verifyhostkeydns",
    "visualhostkey",
    "xauthlocation",
    "pubkeyauthoptions",
    "warnweakcrypto",
];

/// A `ConnectTimeout` value: whole seconds (OpenSSH also takes time formats like `1m30s`).
pub(crate) fn parse_seconds(value: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut number = String::new();
    let mut any = false;
    for c in value.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(format!("{value:?} is not a time (seconds, or like 1m30s)")),
        };
        let n: u64 = number.parse().map_err(|_| format!("{value:?} is not a time"))?;
        total += n * unit;
        number.clear();
        any = true;
    }
    if !number.is_empty() {
        total += number.parse::<u64>().map_err(|_| format!("{value:?} is not a time"))?;
        any = true;
    }
    if !any || total == 0 {
        return Err(format!("{value:?} is not a positive time"));
    }
    Ok(Duration::from_secs(total))
}

/// A `ProxyJump` value: `none`, or comma-separated hops.
pub(crate) fn parse_jumps(value: &str) -> Result<Vec<JumpSpec>, String> {
    value.split(',').map(|hop| JumpSpec::parse(hop.trim())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::HostKeyPolicy;
    use crate::ssh::ssh_options::{Proxy, Resolved};

    fn parse(text: &str) -> SshConfigFile {
        SshConfigFile::parse(text, Path::new("/cfg"), Path::new("/home/u")).unwrap()
    }

    fn error(text: &str) -> String {
        SshConfigFile::parse(text, Path::new("/cfg"), Path::new("/home/u")).unwrap_err().to_string()
    }

    fn resolve(file: &SshConfigFile, host: &str) -> Resolved {
        file.resolve(host, &SshOptions::default()).finish(host, "root", Path::new("/home/u")).unwrap()
    }

    #[test]
    fn the_first_obtained_value_wins_and_identity_files_accumulate() {
        let file = parse(
            "# comment\nHost web1\n  HostName 10.0.0.5\n  User=deploy\n  IdentityFile ~/.ssh/web\n\
             Host web*\n  User other\n  Port = 2222\n  IdentityFile \"/keys/with space\"\n\
             Host *\n  User fallback\n  Port 22\n  IdentitiesOnly yes\n  ConnectTimeout 1m5s\n",
        );
        let r = resolve(&file, "web1");
        assert_eq!((r.address.as_str(), r.user.as_str(), r.port), ("10.0.0.5", "deploy", 2222));
        assert_eq!(r.identity_files, [PathBuf::from("/home/u/.ssh/web"), PathBuf::from("/keys/with space")]);
        assert!(r.identities_only);
        assert_eq!(r.connect_timeout, Some(Duration::from_secs(65)));
        let other = resolve(&file, "db1");
        assert_eq!((other.address.as_str(), other.user.as_str(), other.port), ("db1", "fallback", 22));
    }

    #[test]
    fn given_options_beat_the_file() {
        let file = parse("Host h\n  User fileuser\n  Port 2200\n  HostName real\n");
        let mut given = SshOptions::default();
        given.apply_all(&[Setting::User("inv".into())]);
        let r = file.resolve("h", &given).finish("h", "root", Path::new("/home/u")).unwrap();
        assert_eq!((r.user.as_str(), r.port, r.address.as_str()), ("inv", 2200, "real"));
    }

    #[test]
    fn negation_and_wildcards_in_host_and_match() {
        let file = parse(
            "Host *.corp !bastion.corp\n  ProxyJump ops@bastion.corp:2222,second\n\
             Match host 10.1.*,other !originalhost skip*\n  User matched\n",
        );
        let r = resolve(&file, "db.corp");
        assert_eq!(r.jumps.len(), 2);
        assert_eq!(
            (r.jumps[0].user.as_deref(), r.jumps[0].host.as_str(), r.jumps[0].port),
            (Some("ops"), "bastion.corp", Some(2222))
        );
        assert_eq!(
            (r.jumps[1].user.as_deref(), r.jumps[1].host.as_str(), r.jumps[1].port),
            (None, "second", None)
        );
        assert!(resolve(&file, "bastion.corp").jumps.is_empty(), "negated");
        assert!(resolve(&file, "BASTION.CORP").jumps.is_empty(), "case-insensitive");
        assert_eq!(resolve(&file, "10.1.2.3").user, "matched");
        assert_eq!(resolve(&file, "skip10").user, "root", "!originalhost");
        assert_eq!(resolve(&file, "x").user, "root");
    }

    /// Each hop knows the line of the ProxyJump naming it, for `engine ping`'s fix; a hop given
    /// on a command line knows none.
    #[test]
    fn jump_hosts_know_where_their_proxy_jump_was_written() {
        let file =
            parse("Host bastion\n  Port 2222\nHost *.corp\n  User u\n  ProxyJump ops@bastion,second\n");
        let r = resolve(&file, "db.corp");
        let origins: Vec<Option<&str>> = r.jumps.iter().map(|j| j.origin.as_deref()).collect();
        assert_eq!(origins, [Some("/cfg:5"), Some("/cfg:5")]);
        let mut given = SshOptions::default();
        given.apply_all(&[Setting::ProxyJump(vec![JumpSpec::parse("cli").unwrap()])]);
        let r = file.resolve("db.corp", &given).finish("db.corp", "root", Path::new("/home/u")).unwrap();
        assert_eq!(r.jumps[0].origin, None);
    }

    #[test]
    fn match_host_sees_the_host_name_set_above_it() {
        let file = parse("Host alias\n  HostName %h.example.org\nMatch host *.example.org\n  Port 2022\n");
        let r = resolve(&file, "alias");
        assert_eq!((r.address.as_str(), r.port), ("alias.example.org", 2022));
        let all = parse("Match all\n  User everyone\n");
        assert_eq!(resolve(&all, "anything").user, "everyone");
    }

    #[test]
    fn proxy_jump_none_and_proxy_command_compete_first_wins() {
        let file = parse(
            "Host inner\n  ProxyJump none\nHost *\n  ProxyCommand ssh -W %h:%p -q -p 2200 -i ~/k jump@bastion\n",
        );
        assert!(resolve(&file, "inner").jumps.is_empty());
        let r = resolve(&file, "web");
        assert_eq!(r.jumps.len(), 1);
        let hop = &r.jumps[0];
        assert_eq!((hop.user.as_deref(), hop.host.as_str()), (Some("jump"), "bastion"));
        assert_eq!(hop.given, [Setting::Port(2200), Setting::IdentityFile("~/k".into())]);
    }

    #[test]
    fn other_proxy_commands_are_refused_when_used_naming_the_line() {
        let file = parse("Host a\n  ProxyCommand nc -X 5 %h %p\nHost b\n  User x\n");
        let refused = file.resolve("a", &SshOptions::default());
        assert!(matches!(refused.proxy, Some(Proxy::Refused(_))));
        let why = refused.finish("a", "root", Path::new("/h")).unwrap_err();
        assert!(why.starts_with("/cfg:2: ProxyCommand `nc -X 5 %h %p` is not supported"), "{why}");
        assert_eq!(resolve(&file, "b").user, "x", "another host is not affected");
    }

    #[test]
    fn tokens_and_tilde() {
        let file = parse(
            "Host h\n  HostName %h.lan\n  User ops\n  Port 2\n  IdentityFile ~/.ssh/%r@%h:%p-%n\n  UserKnownHostsFile %d/kh /etc/kh\n",
        );
        let r = resolve(&file, "h");
        assert_eq!(r.identity_files, [PathBuf::from("/home/u/.ssh/ops@h.lan:2-h")]);
        assert_eq!(r.user_known_hosts, Some(vec![PathBuf::from("/home/u/kh"), PathBuf::from("/etc/kh")]));
        let bad = parse("Host h\n  HostName %p.lan\n");
        let err = bad.resolve("h", &SshOptions::default()).finish("h", "root", Path::new("/h")).unwrap_err();
        assert!(err.contains("%p is not supported"), "{err}");
    }

    #[test]
    fn strict_host_key_checking_values() {
        let file = parse(
            "Host a\n  StrictHostKeyChecking accept-new\nHost b\n  StrictHostKeyChecking yes\nHost c\n  StrictHostKeyChecking no\n",
        );
        assert_eq!(resolve(&file, "a").host_key_policy, Some(HostKeyPolicy::AcceptNew));
        assert_eq!(resolve(&file, "b").host_key_policy, Some(HostKeyPolicy::Strict));
        assert_eq!(resolve(&file, "c").host_key_policy, Some(HostKeyPolicy::AcceptNew));
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            error("Host a\n  Bogus yes\n"),
            "/cfg:2: unknown keyword `Bogus` (OpenSSH refuses it too; add `IgnoreUnknown Bogus` above it to skip it)"
        );
        assert_eq!(error("Port 99999\n"), "/cfg:1: Port: \"99999\" is not a port (1-65535)");
        assert_eq!(
            error("\nMatch exec \"true\"\n"),
            "/cfg:2: Match criterion `exec` is not supported by engine (it supports all, host, originalhost)"
        );
        assert_eq!(error("ProxyJump a@\n"), "/cfg:1: ProxyJump: jump host \"a@\" has no valid host name");
        assert!(error("User \"x\n").starts_with("/cfg:1: unterminated"));
    }

    #[test]
    fn known_but_unused_keywords_are_skipped_and_ignore_unknown_works() {
        let file = parse("ForwardAgent yes\nControlMaster auto\nIgnoreUnknown UseKeychain,Foo*\nFooBar 1\n");
        assert_eq!(file.unused_keywords().collect::<Vec<_>>(), ["controlmaster", "forwardagent"]);
    }

    #[test]
    fn include_is_conditional_and_relative_to_dot_ssh() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).unwrap();
        std::fs::write(ssh.join("conf.d/10-a.conf"), "User from-a\nHost other\n  Port 7\n").unwrap();
        std::fs::write(ssh.join("conf.d/20-b.conf"), "User from-b\nPort 8\n").unwrap();
        let text = "Host web\n  Include conf.d/*.conf\nHost *\n  User last\n";
        let file = SshConfigFile::parse(text, &ssh.join("config"), home.path()).unwrap();
        let r = file.resolve("web", &SshOptions::default()).finish("web", "root", home.path()).unwrap();
        assert_eq!((r.user.as_str(), r.port), ("from-a", 8), "first wins across included files");
        let r = file.resolve("x", &SshOptions::default()).finish("x", "root", home.path()).unwrap();
        assert_eq!((r.user.as_str(), r.port), ("last", 22), "included under Host web only");
        let r = file.resolve("other", &SshOptions::default()).finish("other", "root", home.path()).unwrap();
        assert_eq!(r.port, 22, "Host other inside the include is still under Host web");
    }

    #[test]
    fn jump_specs() {
        let hop = JumpSpec::parse("ssh://u@[fe80::1]:2022").unwrap();
        assert_eq!((hop.user.as_deref(), hop.host.as_str(), hop.port), (Some("u"), "fe80::1", Some(2022)));
        assert!(JumpSpec::parse("h:0").is_err());
        assert!(JumpSpec::parse("-oProxyCommand=x").is_err());
        assert_eq!(JumpSpec::parse("a@b:3").unwrap().to_string(), "a@b:3");
    }
}
