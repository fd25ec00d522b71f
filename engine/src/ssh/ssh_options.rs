//! The OpenSSH options engine honours, as typed settings ([`Setting`]), gathered for one
//! destination with OpenSSH's first-obtained-value-wins rule ([`SshOptions`]), and finished
//! into concrete values with `~` and `%` tokens expanded ([`Resolved`]).
//!
//! The same settings come from three places, in this order of precedence: the inventory
//! (`ansible_host`/`port`/`user`/`ssh_private_key_file`, which Ansible passes as `-o`
//! options), `-o`/`-J`/`-i`/`-p`/`-l` in `ansible_ssh_common_args` then
//! `ansible_ssh_extra_args` ([`SshArgs::parse`]), then the ssh_config file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::HostKeyPolicy;
use super::ssh_config::{Origin, expand_tilde, parse_jumps, parse_seconds, split_words};

/// One hop of a `ProxyJump` (`[user@]host[:port]` or `ssh://[user@]host[:port]`), with the
/// options a `ProxyCommand ssh -W %h:%p ...` gave its ssh (they win over the config file's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub given: Vec<Setting>,
    /// Where the `ProxyJump` naming this hop was written (`/home/u/.ssh/config:12`); `None`
    /// when it was given on a command line or in the inventory's ssh arguments.
    pub origin: Option<String>,
}

impl JumpSpec {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bare = text.strip_prefix("ssh://").unwrap_or(text);
        let (user, rest) = match bare.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
            Some(_) => return Err(format!("jump host {text:?} has an empty user")),
            None => (None, bare),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) =
                inner.split_once(']').ok_or_else(|| format!("jump host {text:?}: unclosed `[`"))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err(format!("jump host {text:?} has no valid host name"));
        }
        let port = port.map(parse_port).transpose().map_err(|e| format!("jump host {text:?}: {e}"))?;
        Ok(Self { user, host: host.to_owned(), port, given: Vec::new(), origin: None })
    }
}

impl std::fmt::Display for JumpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{text:?} is not a port (1-65535)"))
}

/// One option engine honours, its value parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    IdentitiesOnly(bool),
    /// `ProxyJump` hops; empty for `none`.
    ProxyJump(Vec<JumpSpec>),
    /// A `ProxyCommand` of the `ssh -W %h:%p ... host` shape, as a jump (`None`: `none`).
    ProxyCommand(Option<JumpSpec>),
    /// A `ProxyCommand` engine cannot run: the reason, given when a host needs it.
    RefusedProxyCommand(String),
    UserKnownHostsFile(Vec<String>),
    GlobalKnownHostsFile(Vec<String>),
    StrictHostKeyChecking(HostKeyPolicy),
    ConnectTimeout(Duration),
}

impl Setting {
    /// The setting for `keyword` (lower-cased) with `args`; `None` when engine does not use the
    /// keyword; `Err` when the value is not valid for it.
    pub(crate) fn parse(keyword: &str, args: &[String]) -> Option<Result<Self, String>> {
        let one = || match args {
            [value] => Ok(value.clone()),
            [] => Err("needs a value".to_owned()),
            _ => Err(format!("takes one value, found {}", args.len())),
        };
        let yes_no = |value: String| match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(true),
            "no" | "false" => Ok(false),
            _ => Err(format!("{value:?} is not yes or no")),
        };
        let files = || if args.is_empty() { Err("needs a file".to_owned()) } else { Ok(args.to_vec()) };
        Some(match keyword {
            "hostname" => one().map(Self::HostName),
            "user" => one().map(Self::User),
            "port" => one().and_then(|p| parse_port(&p)).map(Self::Port),
            "identityfile" => one().map(Self::IdentityFile),
            "identitiesonly" => one().and_then(yes_no).map(Self::IdentitiesOnly),
            "proxyjump" => one()
                .and_then(|v| if v.eq_ignore_ascii_case("none") { Ok(Vec::new()) } else { parse_jumps(&v) })
                .map(Self::ProxyJump),
            "proxycommand" => Ok(proxy_command(args)),
            "userknownhostsfile" => files().map(Self::UserKnownHostsFile),
            "globalknownhostsfile" => files().map(Self::GlobalKnownHostsFile),
            "stricthostkeychecking" => one().and_then(|v| match v.to_ascii_lowercase().as_str() {
                "yes" | "ask" => Ok(Self::StrictHostKeyChecking(HostKeyPolicy::Strict)),
                // engine never accepts a changed key: `no` learns unknown keys, as accept-new.
                "accept-new" | "no" | "off" => Ok(Self::StrictHostKeyChecking(HostKeyPolicy::AcceptNew)),
                _ => Err(format!("{v:?} is not yes, accept-new, no or ask")),
            }),
            "connecttimeout" => one().and_then(|v| parse_seconds(&v)).map(Self::ConnectTimeout),
            _ => return None,
        })
    }
}

/// `ProxyCommand ssh -W %h:%p [-q] [-p PORT] [-l USER] [-i KEY] [-o K=V] [-J HOPS] [user@]host`
/// as a jump; `none` as no proxy; anything else refused (engine runs no local command).
fn proxy_command(argv: &[String]) -> Setting {
    if matches!(argv, [one] if one.eq_ignore_ascii_case("none")) {
        return Setting::ProxyCommand(None);
    }
    match jump_from_ssh_w(argv) {
        Ok(jump) => Setting::ProxyCommand(Some(jump)),
        Err(why) => Setting::RefusedProxyCommand(format!(
            "ProxyCommand `{}` is not supported ({why}): engine runs no local command; it takes a \
             ProxyCommand of the form `ssh -W %h:%p [-q] [-p PORT] [-l USER] [-i KEY] [-o KEY=VALUE] \
             [user@]host` as a jump host, or use ProxyJump",
            argv.join(" ")
        )),
    }
}

fn jump_from_ssh_w(argv: &[String]) -> Result<JumpSpec, String> {
    let (program, rest) = argv.split_first().ok_or("it is empty")?;
    if program != "ssh" && !program.ends_with("/ssh") {
        return Err(format!("`{program}` is not ssh"));
    }
    let args = SshArgs::parse_words(rest)?;
    match args.forward.as_deref() {
        Some("%h:%p" | "[%h]:%p") => {}
        Some(other) => return Err(format!("-W {other} is not -W %h:%p")),
        None => return Err("it has no -W %h:%p".into()),
    }
    if args.config_file.is_some() {
        return Err("-F in a ProxyCommand is not supported".into());
    }
    let [destination] = args.destination.as_slice() else {
        return Err("it must name exactly one host".into());
    };
    let mut jump = JumpSpec::parse(destination)?;
    jump.given = args.settings;
    Ok(jump)
}

/// The options of an ssh command line (`ansible_ssh_common_args`, a `ProxyCommand ssh ...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshArgs {
    /// `-o`, `-J`, `-i`, `-p`, `-l`, in order.
    pub settings: Vec<Setting>,
    /// `-F FILE`.
    pub config_file: Option<String>,
    /// `-W host:port`.
    forward: Option<String>,
    /// Words that are not options.
    destination: Vec<String>,
}

/// ssh(1) options that take an argument; the others are flags.
const WITH_ARGUMENT: &str = "BbcDEeFIiJLlmOoPpQRSWw";

impl SshArgs {
    /// Parses an argument string as the shell would split it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words = shlex::split(text).ok_or_else(|| format!("cannot split {text:?} into words"))?;
        Self::parse_words(&words)
    }

    fn parse_words(words: &[String]) -> Result<Self, String> {
        let mut out = Self::default();
        let mut iter = words.iter();
        while let Some(word) = iter.next() {
            let Some(flags) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
                out.destination.push(word.clone());
                continue;
            };
            for (at, flag) in flags.char_indices() {
                if !WITH_ARGUMENT.contains(flag) {
                    continue;
                }
                let attached = &flags[at + flag.len_utf8()..];
                let value = if attached.is_empty() {
                    iter.next().cloned().ok_or_else(|| format!("-{flag} needs a value"))?
                } else {
                    attached.to_owned()
                };
                out.option(flag, &value)?;
                break;
            }
        }
        Ok(out)
    }

    fn option(&mut self, flag: char, value: &str) -> Result<(), String> {
        let setting = match flag {
            'o' => {
                let end = value.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(value.len());
                let keyword = value[..end].to_ascii_lowercase();
                let rest = value[end..].trim_start();
                let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
                let args = if keyword == "proxycommand" { split_words(rest)? } else { vec![rest.to_owned()] };
                match Setting::parse(&keyword, &args) {
                    Some(setting) => setting.map_err(|e| format!("-o {value}: {e}"))?,
                    // Options engine does not use (ControlMaster, ForwardAgent, ...): ssh's to act on.
                    None => return Ok(()),
                }
            }
            'J' => Setting::ProxyJump(if value.eq_ignore_ascii_case("none") {
                Vec::new()
            } else {
                parse_jumps(value).map_err(|e| format!("-J {value}: {e}"))?
            }),
            'i' => Setting::IdentityFile(value.to_owned()),
            'p' => Setting::Port(parse_port(value).map_err(|e| format!("-p: {e}"))?),
            'l' => Setting::User(value.to_owned()),
            'F' => {
                self.config_file = Some(value.to_owned());
                return Ok(());
            }
            'W' => {
                self.forward = Some(value.to_owned());
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.settings.push(setting);
        Ok(())
    }
}

/// Where the connection goes after the first hops: nowhere special, through jump hosts, or
/// through a `ProxyCommand` engine refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proxy {
    Direct,
    Jumps(Vec<JumpSpec>),
    Refused(String),
}

/// The options obtained so far for one destination; each is set once (first value wins),
/// except `identity_files`, which accumulates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshOptions {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<String>,
    pub identities_only: Option<bool>,
    pub proxy: Option<Proxy>,
    pub user_known_hosts: Option<Vec<String>>,
    pub global_known_hosts: Option<Vec<String>>,
    pub strict: Option<HostKeyPolicy>,
    pub connect_timeout: Option<Duration>,
}

/// `hops`, each knowing where the setting that names them was written (when in a file).
fn written_at(hops: &[JumpSpec], origin: &Origin) -> Vec<JumpSpec> {
    let origin = (origin.line > 0).then(|| origin.to_string());
    hops.iter()
        .cloned()
        .map(|hop| JumpSpec { origin: hop.origin.or_else(|| origin.clone()), ..hop })
        .collect()
}

impl SshOptions {
    /// Applies one setting, unless the option already has a value. `origin`, when known,
    /// goes into the reason of a refused `ProxyCommand`.
    pub fn apply(&mut self, setting: &Setting, origin: &Origin) {
        fn first<T: Clone>(slot: &mut Option<T>, value: &T) {
            if slot.is_none() {
                *slot = Some(value.clone());
            }
        }
        match setting {
            Setting::HostName(v) => first(&mut self.host_name, v),
            Setting::User(v) => first(&mut self.user, v),
            Setting::Port(v) => first(&mut self.port, v),
            Setting::IdentityFile(v) => self.identity_files.push(v.clone()),
            Setting::IdentitiesOnly(v) => first(&mut self.identities_only, v),
            Setting::ProxyJump(hops) if hops.is_empty() => first(&mut self.proxy, &Proxy::Direct),
            Setting::ProxyJump(hops) => first(&mut self.proxy, &Proxy::Jumps(written_at(hops, origin))),
            Setting::ProxyCommand(None) => first(&mut self.proxy, &Proxy::Direct),
            Setting::ProxyCommand(Some(hop)) => {
                first(&mut self.proxy, &Proxy::Jumps(written_at(std::slice::from_ref(hop), origin)))
            }
            Setting::RefusedProxyCommand(why) => {
                let why = if origin.line == 0 { why.clone() } else { format!("{origin}: {why}") };
                first(&mut self.proxy, &Proxy::Refused(why));
            }
            Setting::UserKnownHostsFile(v) => first(&mut self.user_known_hosts, v),
            Setting::GlobalKnownHostsFile(v) => first(&mut self.global_known_hosts, v),
            Setting::StrictHostKeyChecking(v) => first(&mut self.strict, v),
            Setting::ConnectTimeout(v) => first(&mut self.connect_timeout, v),
        }
    }

    /// Applies settings given on a command line (no file:line to name).
    pub fn apply_all(&mut self, settings: &[Setting]) {
        let nowhere = Origin { path: PathBuf::new(), line: 0 };
        for setting in settings {
            self.apply(setting, &nowhere);
        }
    }

    /// The name `Match host` compares: `HostName` as obtained so far (its `%h` expanded),
    /// else the name as given.
    pub(crate) fn host_name_for_match(&self, original: &str) -> String {
        match &self.host_name {
            Some(name) => name.replace("%h", original).replace("%%", "%"),
            None => original.to_owned(),
        }
    }

    /// Concrete values for destination `original`: unset ones from `default_user` and port 22,
    /// `~` and tokens expanded. `Err`: an unknown token, or a refused ProxyCommand.
    pub fn finish(self, original: &str, default_user: &str, home: &Path) -> Result<Resolved, String> {
        let host_name = match &self.host_name {
            Some(name) => expand(name, &Tokens { original, host: original, port: 0, user: "", home }, "h%")
                .map_err(|e| format!("HostName {name:?}: {e}"))?,
            None => original.to_owned(),
        };
        let port = self.port.unwrap_or(22);
        let user = self.user.clone().unwrap_or_else(|| default_user.to_owned());
        let tokens = Tokens { original, host: &host_name, port, user: &user, home };
        let path = |raw: &String| -> Result<PathBuf, String> {
            let expanded = expand(raw, &tokens, "%hnprud").map_err(|e| format!("{raw:?}: {e}"))?;
            Ok(expand_tilde(&expanded, home))
        };
        let paths = |list: &Option<Vec<String>>| -> Result<Option<Vec<PathBuf>>, String> {
            list.as_ref().map(|l| l.iter().map(path).collect()).transpose()
        };
        let jumps = match self.proxy {
            None | Some(Proxy::Direct) => Vec::new(),
            Some(Proxy::Jumps(hops)) => hops
                .into_iter()
                .map(|mut hop| {
                    hop.host = expand(&hop.host, &tokens, "%hnpr")?;
                    Ok(hop)
                })
                .collect::<Result<_, String>>()
                .map_err(|e| format!("ProxyJump: {e}"))?,
            Some(Proxy::Refused(why)) => return Err(why),
        };
        Ok(Resolved {
            address: host_name.clone(),
            port,
            user: user.clone(),
            identity_files: self.identity_files.iter().map(path).collect::<Result<_, _>>()?,
            identities_only: self.identities_only.unwrap_or(false),
            jumps,
            user_known_hosts: paths(&self.user_known_hosts)?,
            global_known_hosts: paths(&self.global_known_hosts)?,
            host_key_policy: self.strict,
            connect_timeout: self.connect_timeout,
        })
    }
}

/// The options for one destination, final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub identities_only: bool,
    pub jumps: Vec<JumpSpec>,
    pub user_known_hosts: Option<Vec<PathBuf>>,
    pub global_known_hosts: Option<Vec<PathBuf>>,
    pub host_key_policy: Option<HostKeyPolicy>,
    pub connect_timeout: Option<Duration>,
}

struct Tokens<'a> {
    original: &'a str,
    host: &'a str,
    port: u16,
    user: &'a str,
    home: &'a Path,
}

/// Expands `%x` tokens among `allowed` (`%%` always); any other token is an error.
fn expand(text: &str, tokens: &Tokens<'_>, allowed: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let token = chars.next().ok_or("a lone % at the end")?;
        if token != '%' && !allowed.contains(token) {
            return Err(format!("the token %{token} is not supported here"));
        }
        match token {
            '%' => out.push('%'),
            'h' => out.push_str(tokens.host),
            'n' => out.push_str(tokens.original),
            'p' => out.push_str(&tokens.port.to_string()),
            'r' => out.push_str(tokens.user),
            'u' => out.push_str(&local_user()),
            'd' => out.push_str(&tokens.home.to_string_lossy()),
            other => return Err(format!("the token %{other} is not supported")),
        }
    }
    Ok(out)
}

fn local_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default()
}
