//! `apt`: Debian packages present or absent, with the package lists updated only when needed.
//!
//! The module is called `apt` in playbooks (`host.apt(...)`): `package` is a reserved word in Rhai,
//! so `host.package(...)` cannot parse.
//!
//! Planning reads dpkg's database first, in one round trip: `dpkg-query` for each package's
//! status, selection (a held package's is `hold`, as `apt-mark hold` sets it) and version, and the
//! age of the package lists. Only when something is to be installed does it ask apt, in a second
//! round trip: `apt-cache policy` for install candidates and `apt-cache madison` for the versions a
//! pinned package has. So a re-run on a host that has everything never loads apt's cache (the
//! costly part of planning, on every host at once). Applying runs
//! at most `apt-get update`, then one `apt-get install` or `apt-get remove` (`purge`) of exactly
//! the packages planned, then `apt-mark hold` or `unhold`. With `autoremove`, planning asks apt
//! which packages the removal leaves unneeded (`apt-get -s remove --autoremove`, a simulation)
//! and the removal names them all. Everything the host prints is read as
//! hostile input: only names and versions that were asked for, in their checked forms, count.
//! The answers are read strictly (the host is not trusted, `contract::untrusted`): a line that
//! `dpkg-query`, `apt-cache policy` or the list check would not print fails the task, naming the host.

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::validate::Validate;
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::run_checked;
use contract::shell::join;
use contract::untrusted::Malformed;

/// Touched after every successful `apt-get update` by this module (and by Debian's own
/// update-notifier); its age is the age of the package lists.
const UPDATE_STAMP: &str = "/var/lib/apt/periodic/update-success-stamp";
const LISTS_DIR: &str = "/var/lib/apt/lists";
/// Seconds `apt-get` waits for another apt or dpkg to release its lock.
const LOCK_TIMEOUT: u32 = 120;

/// Installs or removes Debian packages with apt; idempotent.
/// Only missing packages are installed (installed ones are never upgraded) and only installed ones
/// removed. A package pinned to a version (`name=VERSION`, or `version` with one `name`) is
/// installed at exactly that version (up or down, held or not) unless it already is; a version the
/// repositories do not have is refused, naming the versions they have (after `apt-get update`
/// when the lists are stale). `hold: true` marks the packages held (`apt-mark hold`: no upgrade
/// moves them), `hold: false` unholds them. `update_cache: auto` runs `apt-get update` only when something is to be installed and a
/// wanted package has no install candidate, or the package lists are missing or older than
/// `cache_valid_time`. Installs are non-interactive, without recommended packages, and keep existing
/// configuration files. With `state: absent`, `purge: true` removes the configuration files too
/// (`apt-get purge`, also of packages removed earlier whose configuration files remain), and
/// `autoremove: true` also removes the packages that were installed only as dependencies and are
/// no longer needed (`apt-get autoremove`: apt's own list, asked by a simulation when planning,
/// so the plan names every package that goes), as Ansible's `purge` and `autoremove` do.
/// Call it as `host.apt(...)`: `package` is a reserved word in Rhai.
/// The lab's hosts have no internet: their image carries a small local repository
/// (`deb [trusted=yes] file:/srv/lab-repo ./`, with `hello` and `tree`) and no other apt source.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageArgs {
    /// One package name. Give either `name` or `names`.
    pub name: Option<String>,
    /// Package names, each optionally pinned as `NAME=VERSION` (no architecture qualifiers).
    pub names: Option<Vec<String>>,
    /// The version to install, exactly as the repository lists it (`apt-cache madison`), e.g. "1.30.4-1.1"; with one `name` only.
    pub version: Option<String>,
    /// Mark the packages held (`apt-mark hold`) or not held (`unhold`); default leaves holds alone.
    pub hold: Option<bool>,
    /// Whether the packages should be installed.
    #[serde(default)]
    pub state: PackageState,
    /// When to run `apt-get update` first.
    #[serde(default)]
    pub update_cache: UpdateCache,
    /// With `update_cache: auto`: package lists older than this many seconds are updated before an
    /// install. Default 3600.
    pub cache_valid_time: Option<u64>,
    /// With `state: absent`: remove the configuration files too (`apt-get purge`), also of
    /// packages already removed whose configuration files remain. Default false.
    #[serde(default)]
    pub purge: bool,
    /// With `state: absent`: also remove the packages installed only as dependencies that are no
    /// longer needed, those the removal leaves unneeded included (`apt-get autoremove`). Default false.
    #[serde(default)]
    pub autoremove: bool,
    /// The pinned version of each pinned package, gathered from `NAME=VERSION` and `version`
    /// when the arguments are checked.
    #[serde(skip)]
    #[schemars(skip)]
    pub pins: BTreeMap<String, String>,
}

/// Whether packages should be installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    /// Installed; installed ones are not upgraded
    #[default]
    Present,
    /// Not installed; `apt-get remove` keeps configuration files (unless `purge`)
    Absent,
}

/// When to update the package lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpdateCache {
    /// Before an install that needs it: a package without candidate, or stale lists
    #[default]
    Auto,
    /// On every run, so the task always reports changed
    Always,
    /// Never; a package without an install candidate is an error
    Never,
}

const DEFAULT_CACHE_VALID_TIME: u64 = 3600;

contract::resolve_struct!(PackageArgs {
    name,
    names,
    version,
    hold,
    state,
    update_cache,
    cache_valid_time,
    purge,
    autoremove,
    pins
});
contract::resolve_as_is!(PackageState, UpdateCache);

impl Validate for PackageArgs {
    fn validate(mut self) -> Result<Self, ArgsError> {
        let one = self.name.is_some();
        let names = match (self.name.take(), self.names.take()) {
            (Some(_), Some(_)) => return Err(ArgsError::invalid("", "give either name or names, not both")),
            (None, None) => {
                return Err(ArgsError::invalid("", "missing name (one package) or names (a list)"));
            }
            (Some(name), None) => vec![name],
            (None, Some(names)) if names.is_empty() => {
                return Err(ArgsError::invalid("names", "names must not be empty"));
            }
            (None, Some(names)) => names,
        };
        let mut unique: Vec<String> = Vec::new();
        for (i, operand) in names.into_iter().enumerate() {
            let path = || if one { "name".to_owned() } else { format!("names[{i}]") };
            let (name, pin) = match operand.split_once('=') {
                Some((name, version)) => (name.to_owned(), Some(version.to_owned())),
                None => (operand.clone(), None),
            };
            if !is_package_name(&name) {
                return Err(ArgsError::invalid(
                    path(),
                    format!(
                        "{name:?} is not a Debian package name (lowercase letters, digits and + - .; \
                     pin a version as NAME=VERSION; no architecture qualifiers)"
                    ),
                ));
            }
            let pin = match (pin, one.then(|| self.version.take()).flatten()) {
                (Some(_), Some(_)) => {
                    return Err(ArgsError::invalid(
                        "version",
                        "give the version in name (NAME=VERSION) or in version, not both",
                    ));
                }
                (pin, version) => pin.or(version),
            };
            if let Some(version) = pin {
                if !is_version(&version) {
                    return Err(ArgsError::invalid(
                        path(),
                        format!(
                            "{version:?} is not a Debian version (a digit first, then letters, digits and . + ~ : -)"
                        ),
                    ));
                }
                if self.pins.get(&name).is_some_and(|v| *v != version) {
                    return Err(ArgsError::invalid(path(), format!("{name} is pinned to two versions")));
                }
                self.pins.insert(name.clone(), version);
            }
            if !unique.contains(&name) {
                unique.push(name);
            }
        }
        if self.version.is_some() {
            return Err(ArgsError::invalid(
                "version",
                "version goes with one name, not with names (write NAME=VERSION)",
            ));
        }
        if self.state == PackageState::Absent && !self.pins.is_empty() {
            return Err(ArgsError::invalid("", "a version pin makes no sense with state: absent"));
        }
        if self.state == PackageState::Absent && self.hold == Some(true) {
            return Err(ArgsError::invalid("hold", "hold: true makes no sense with state: absent"));
        }
        if self.state == PackageState::Present && (self.purge || self.autoremove) {
            let given = if self.purge { "purge" } else { "autoremove" };
            return Err(ArgsError::invalid(given, format!("{given} goes with state: absent")));
        }
        if self.cache_valid_time.is_some() && self.update_cache != UpdateCache::Auto {
            return Err(ArgsError::invalid(
                "cache_valid_time",
                "cache_valid_time only applies with update_cache: auto",
            ));
        }
        if self.update_cache == UpdateCache::Always && self.state == PackageState::Absent {
            return Err(ArgsError::invalid(
                "update_cache",
                "update_cache: always makes no sense with state: absent",
            ));
        }
        self.names = Some(unique);
        Ok(self)
    }
}

impl PackageArgs {
    fn names(&self) -> &[String] {
        self.names.as_deref().unwrap_or_default()
    }
}

/// Debian policy 5.6.7: lowercase letters, digits, `+`, `-`, `.`; at least two characters,
/// starting with a letter or digit.
fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// A Debian version as `apt-cache madison` prints it: an optional epoch (`1:`), then a digit
/// first and letters, digits and `. + ~ : -` (policy 5.6.12); never an option.
fn is_version(version: &str) -> bool {
    (1..=100).contains(&version.len())
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version.chars().all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c))
}

/// What planning found: dpkg's side always, apt's (candidates, available versions) for the
/// packages to install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostPackages {
    /// dpkg's status word (`installed`, `config-files`, ...) per package it knows.
    status: BTreeMap<String, String>,
    /// The install candidate per package apt knows; `None` for `(none)`.
    candidates: BTreeMap<String, Option<String>>,
    /// Seconds since the lists were last updated; `None` when there are no lists.
    lists_age: Option<u64>,
    /// The version dpkg has of each package it knows (installed or not).
    versions: BTreeMap<String, String>,
    /// Every version the repositories have, per pinned package (`apt-cache madison`).
    available: BTreeMap<String, Vec<String>>,
    /// The held packages among those asked for (dpkg's selection `hold`, as `apt-mark showhold`
    /// lists them).
    held: Vec<String>,
}

impl HostPackages {
    fn is_installed(&self, name: &str) -> bool {
        // `config-files` and `not-installed` are absent; half-installed states count as present
        // for removal and as missing for install (apt-get install finishes them).
        self.status.get(name).is_some_and(|s| s == "installed")
    }

    fn is_on_disk(&self, name: &str) -> bool {
        self.status.get(name).is_some_and(|s| s != "not-installed" && s != "config-files")
    }

    /// Removed, its configuration files left (what `purge` still removes).
    fn has_config_files(&self, name: &str) -> bool {
        self.status.get(name).is_some_and(|s| s == "config-files")
    }

    fn has_candidate(&self, name: &str) -> bool {
        self.candidates.get(name).is_some_and(Option::is_some)
    }
}

/// The first planning command: dpkg's state of `names` and the age of the lists. Unknown
/// packages make dpkg-query complain on stderr and exit non-zero; the marker line still comes.
fn installed_script(names: &[String]) -> String {
    format!(
        "dpkg-query -W -f='${{Package}} ${{Status}} ${{Version}}\\n' -- {} 2>/dev/null; \
         echo \"#lists $(date +%s) $(stat -c %Y {UPDATE_STAMP} 2>/dev/null || echo 0) \
         $(stat -c %Y {LISTS_DIR} 2>/dev/null || echo 0) $(ls {LISTS_DIR} 2>/dev/null | grep -c _Packages)\"",
        join(names)
    )
}

/// The second planning command, only when something is to be installed: the install candidates
/// of `install` (`apt-cache policy`) and every version the repositories have of `pinned`
/// (`apt-cache madison`). Best effort: apt complains on stderr about unknown names.
fn candidates_script(install: &[String], pinned: &[String]) -> String {
    let mut script = format!("LC_ALL=C apt-cache policy -- {} 2>/dev/null; echo '#madison'", join(install));
    if !pinned.is_empty() {
        script.push_str(&format!("; LC_ALL=C apt-cache madison -- {} 2>/dev/null", join(pinned)));
    }
    script.push_str("; :");
    script
}

/// The planning command of `autoremove`: apt's simulation of removing `remove` (or of a plain
/// autoremove when nothing named is to go) with the dependencies that leaves unneeded. A
/// simulation changes nothing; held packages among `remove` are released before the real one.
fn autoremove_script(remove: &[String], purge: bool) -> String {
    let purge = if purge { " --purge" } else { "" };
    if remove.is_empty() {
        format!("LC_ALL=C apt-get -s -q{purge} autoremove")
    } else {
        format!(
            "LC_ALL=C apt-get -s -q --allow-change-held-packages{purge} remove --autoremove -- {}",
            join(remove)
        )
    }
}

/// The packages apt's simulation removes: its `Remv NAME [VERSION]` or `Purg NAME [VERSION]`
/// lines (`NAME:ARCH` for a foreign architecture), in its order. Every other line is apt's prose
/// and ignored; a `Remv`/`Purg` line that is not a package name and a bracketed version is
/// refused.
pub(crate) fn parse_simulation(text: &str) -> Result<Vec<String>, Malformed> {
    let mut gone = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("Remv ").or_else(|| line.strip_prefix("Purg ")) else {
            continue;
        };
        let mut words = rest.split(' ');
        let name = words.next().unwrap_or_default();
        let (package, arch) = match name.split_once(':') {
            Some((package, arch)) => (package, Some(arch)),
            None => (name, None),
        };
        let arch_ok = arch.is_none_or(|a| {
            (1..=32).contains(&a.len())
                && a.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        let version_ok = |w: Option<&str>| {
            w.and_then(|w| w.strip_prefix('[')).and_then(|w| w.strip_suffix(']')).is_some_and(is_version)
        };
        // apt may add the version that replaces it, `[NAME:ARCH VERSION]`-like; only the first
        // bracket is read, and it must be a version.
        if !is_package_name(package) || !arch_ok || !version_ok(words.next()) {
            return Err(Malformed::new(line, "not a package apt's simulation removes (Remv NAME [VERSION])"));
        }
        if !gone.iter().any(|g| g == name) {
            gone.push(name.to_owned());
        }
    }
    Ok(gone)
}

/// Reads the first planning command's answer. The host may be hostile: every line must be what
/// `dpkg-query` and the list check print, anything else is refused.
pub(crate) fn parse_query(text: &str) -> Result<HostPackages, Malformed> {
    let (dpkg, lists) = text.split_once("#lists").ok_or_else(|| Malformed::whole("no #lists marker"))?;
    let mut found = parse_dpkg_query(dpkg)?;
    let numbers: Vec<u64> = lists
        .split_whitespace()
        .map(|n| n.parse().ok().filter(|_| n.bytes().all(|b| b.is_ascii_digit())))
        .collect::<Option<_>>()
        .ok_or_else(|| Malformed::new(lists.trim(), "not the package lists' state (four numbers)"))?;
    let [now, stamp, dir, count] = numbers[..] else {
        return Err(Malformed::new(lists.trim(), "not the package lists' state (four numbers)"));
    };
    found.lists_age = (count > 0).then(|| now.saturating_sub(stamp.max(dir)));
    Ok(found)
}

/// Reads the second planning command's answer into `found`: candidates strictly (a candidate
/// that is not a Debian version is refused), `madison` rows only in their checked forms.
pub(crate) fn parse_candidates(text: &str, found: &mut HostPackages) -> Result<(), Malformed> {
    let (policy, madison) =
        text.split_once("#madison").ok_or_else(|| Malformed::whole("no #madison marker"))?;
    found.candidates = parse_policy(policy)?;
    found.available = parse_madison(madison);
    Ok(())
}

/// `PACKAGE WANT FLAG STATUS [VERSION]` lines; a package listed twice (multi-arch) counts as
/// installed when any instance is, with that instance's version, and as held when any is.
fn parse_dpkg_query(text: &str) -> Result<HostPackages, Malformed> {
    let word =
        |w: &str| (1..=32).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    let mut found = HostPackages::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, want, flag, state, version) = match words[..] {
            [name, want, flag, state] => (name, want, flag, state, None),
            [name, want, flag, state, version] if is_version(version) => {
                (name, want, flag, state, Some(version))
            }
            _ => {
                return Err(Malformed::new(
                    line,
                    "not a dpkg-query line (package, want, flag, status, version)",
                ));
            }
        };
        if !is_package_name(name) || ![want, flag, state].into_iter().all(word) {
            return Err(Malformed::new(line, "not a dpkg-query line (package, want, flag, status, version)"));
        }
        let installed = state == "installed";
        let entry = found.status.entry(name.to_owned()).or_insert_with(|| state.to_owned());
        if installed {
            *entry = state.to_owned();
        }
        if let Some(version) = version
            && (installed || !found.versions.contains_key(name))
        {
            found.versions.insert(name.to_owned(), version.to_owned());
        }
        if want == "hold" && !found.held.iter().any(|h| h == name) {
            found.held.push(name.to_owned());
        }
    }
    Ok(found)
}

/// `apt-cache madison` rows, `NAME | VERSION | SOURCE`: each version once, in the order apt
/// lists them (newest first); rows that are not a name and a version are ignored.
fn parse_madison(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut available: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split('|').map(str::trim);
        let (Some(name), Some(version)) = (fields.next(), fields.next()) else { continue };
        if !is_package_name(name) || !is_version(version) {
            continue;
        }
        let versions = available.entry(name.to_owned()).or_default();
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_owned());
        }
    }
    available
}

/// The error for a pinned version the repositories do not have.
fn missing_version(name: &str, version: &str, available: Option<&Vec<String>>) -> ModuleError {
    let has = match available {
        Some(versions) if !versions.is_empty() => format!("the versions it has: {}", versions.join(", ")),
        _ => "apt knows no version of it".to_owned(),
    };
    ModuleError::Refused(format!(
        "{name} has no version {version} in the repositories ({has}); nothing was installed"
    ))
}

/// `apt-cache policy` blocks: `name:` then `  Candidate: VERSION` (or `(none)`). A candidate
/// must be a Debian version (letters, digits, `.+~:-`).
fn parse_policy(text: &str) -> Result<BTreeMap<String, Option<String>>, Malformed> {
    let mut candidates = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') {
            current = line.strip_suffix(':').map(str::to_owned);
        } else if let (Some(name), Some(version)) = (&current, line.trim().strip_prefix("Candidate:")) {
            let version = version.trim();
            let is_version = (1..=256).contains(&version.len())
                && version.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b));
            if version != "(none)" && !is_version {
                return Err(Malformed::new(line, "a candidate that is not a Debian version"));
            }
            candidates.insert(name.clone(), (version != "(none)").then(|| version.to_owned()));
        }
    }
    Ok(candidates)
}

/// The `apt` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Package {
    args: PackageArgs,
}

impl Package {
    pub fn new(args: PackageArgs) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for Package {
    fn name(&self) -> &'static str {
        "apt"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let names = args.names();
        let present = args.state == PackageState::Present;
        let out = run_checked(cx.host, Exec::new(installed_script(names)).effect(Effect::ReadOnly)).await?;
        let mut found = parse_query(&String::from_utf8_lossy(&out.stdout))
            .map_err(|m| m.on(cx.host.name(), "the package state"))?;

        let mut changes = Vec::new();
        // What to install: a missing package, or a pinned one at another version (as `NAME=VERSION`).
        let (install, remove): (Vec<&String>, Vec<String>) = if present {
            let install = names
                .iter()
                .filter(|n| match args.pins.get(*n) {
                    Some(version) => !found.is_installed(n) || found.versions.get(*n) != Some(version),
                    None => !found.is_installed(n),
                })
                .collect();
            (install, Vec::new())
        } else {
            let goes = |n: &&String| found.is_on_disk(n) || (args.purge && found.has_config_files(n));
            (Vec::new(), names.iter().filter(goes).cloned().collect())
        };
        // With autoremove, apt says what goes with them (and what was unneeded already).
        let (remove, unneeded) = if args.autoremove {
            let out = run_checked(
                cx.host,
                Exec::new(autoremove_script(&remove, args.purge)).effect(Effect::ReadOnly),
            )
            .await?;
            let gone = parse_simulation(&String::from_utf8_lossy(&out.stdout))
                .map_err(|m| m.on(cx.host.name(), "apt's simulation of the removal"))?;
            let unneeded: Vec<String> = gone.iter().filter(|g| !remove.contains(g)).cloned().collect();
            (remove, unneeded)
        } else {
            (remove, Vec::new())
        };
        // apt is asked only about what is to be installed.
        if !install.is_empty() {
            let asked: Vec<String> = install.iter().map(|n| (*n).clone()).collect();
            let pinned: Vec<String> = asked.iter().filter(|n| args.pins.contains_key(*n)).cloned().collect();
            let out =
                run_checked(cx.host, Exec::new(candidates_script(&asked, &pinned)).effect(Effect::ReadOnly))
                    .await?;
            parse_candidates(&String::from_utf8_lossy(&out.stdout), &mut found)
                .map_err(|m| m.on(cx.host.name(), "the install candidates"))?;
        }
        let no_candidate: Vec<&str> =
            install.iter().filter(|n| !found.has_candidate(n)).map(|n| n.as_str()).collect();
        // Pinned versions the lists lack (of packages apt knows at all).
        let missing: Vec<(&String, &String)> = install
            .iter()
            .filter(|n| found.has_candidate(n))
            .filter_map(|n| args.pins.get(*n).map(|v| (*n, v)))
            .filter(|(n, v)| !found.available.get(*n).is_some_and(|a| a.contains(v)))
            .collect();
        let valid_for = args.cache_valid_time.unwrap_or(DEFAULT_CACHE_VALID_TIME);
        let stale = match found.lists_age {
            None => Some("no package lists".to_owned()),
            Some(age) if age > valid_for => {
                Some(format!("package lists are {age} s old, more than {valid_for} s"))
            }
            Some(_) => None,
        };
        let refuse_missing = || {
            let (name, version) = missing[0];
            Err(missing_version(name, version, found.available.get(name)))
        };
        let update_why = match args.update_cache {
            UpdateCache::Never if !no_candidate.is_empty() => {
                return Err(ModuleError::Refused(format!(
                    "no install candidate for {} and update_cache is never; \
                     is the package name right, and is its repository in the apt sources?",
                    no_candidate.join(", ")
                )));
            }
            UpdateCache::Never if !missing.is_empty() => return refuse_missing(),
            UpdateCache::Never => None,
            UpdateCache::Always => Some("update_cache: always".to_owned()),
            UpdateCache::Auto if install.is_empty() => None,
            UpdateCache::Auto if !no_candidate.is_empty() => {
                Some(format!("no install candidate for {}", no_candidate.join(", ")))
            }
            // Fresh lists that lack the version: an update would not bring it.
            UpdateCache::Auto if !missing.is_empty() && stale.is_none() => return refuse_missing(),
            UpdateCache::Auto => stale,
        };
        if let Some(why) = &update_why {
            changes.push(format!("apt-get update ({why})"));
        }
        let operands: Vec<String> = install
            .iter()
            .map(|n| match args.pins.get(*n) {
                Some(version) => format!("{n}={version}"),
                None => (*n).clone(),
            })
            .collect();
        if !operands.is_empty() {
            changes.push(format!("install {}", operands.join(", ")));
        }
        let verb = if args.purge { "purge" } else { "remove" };
        if !remove.is_empty() {
            changes.push(format!("{verb} {}", remove.join(", ")));
        }
        if !unneeded.is_empty() {
            changes.push(format!("{verb} {} (no longer needed: autoremove)", unneeded.join(", ")));
        }
        let (hold, unhold): (Vec<String>, Vec<String>) = match args.hold {
            Some(true) => (to_hold(names, &found.held, &install), Vec::new()),
            Some(false) => (Vec::new(), names.iter().filter(|n| found.held.contains(n)).cloned().collect()),
            None => (Vec::new(), Vec::new()),
        };
        if !hold.is_empty() {
            changes.push(format!("hold {}", hold.join(", ")));
        }
        if !unhold.is_empty() {
            changes.push(format!("unhold {}", unhold.join(", ")));
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        // A pinned version is checked again after an update, before anything is installed.
        let verify = if update_why.is_some() {
            install.iter().filter_map(|n| args.pins.get(*n).map(|v| ((*n).clone(), v.clone()))).collect()
        } else {
            Vec::new()
        };
        Ok(Plan {
            changes,
            action: Some(Box::new(PackageAction {
                update: update_why.is_some(),
                verify,
                pinned: install.iter().any(|n| args.pins.contains_key(*n)),
                install: operands,
                remove: remove.into_iter().chain(unneeded).collect(),
                purge: args.purge,
                hold,
                unhold,
            })),
            ..Plan::default()
        })
    }
}

/// What `hold: true` holds after the install: the names not held yet, and the held ones being
/// installed (apt's install of a held package, allowed with `--allow-change-held-packages`,
/// lifts its hold).
fn to_hold(names: &[String], held: &[String], install: &[&String]) -> Vec<String> {
    names.iter().filter(|n| !held.contains(n) || install.contains(n)).cloned().collect()
}

/// Exactly the planned apt operations.
#[derive(Debug)]
struct PackageAction {
    update: bool,
    /// Pinned versions to find in the updated lists before installing.
    verify: Vec<(String, String)>,
    /// The install sets versions: downgrades and held packages are allowed to move.
    pinned: bool,
    install: Vec<String>,
    /// The packages named and, with autoremove, those apt found unneeded: exactly these go.
    remove: Vec<String>,
    /// Their configuration files go too.
    purge: bool,
    hold: Vec<String>,
    unhold: Vec<String>,
}

/// `apt-get update`, then the stamp whose age is the lists' age.
pub(crate) fn update_command() -> String {
    format!("apt-get update -q -o DPkg::Lock::Timeout={LOCK_TIMEOUT} && touch {UPDATE_STAMP}")
}

impl PackageAction {
    fn install_command(names: &[String]) -> String {
        Self::install_with(names, "")
    }

    fn install_with(names: &[String], flags: &str) -> String {
        format!(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
             -o DPkg::Lock::Timeout={LOCK_TIMEOUT} -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold {flags}-- {}",
            join(names)
        )
    }

    /// Installs exact versions: a pin may be older than what is installed, or held.
    fn install_pinned_command(operands: &[String]) -> String {
        Self::install_with(operands, "--allow-downgrades --allow-change-held-packages ")
    }

    fn mark_command(verb: &str, names: &[String]) -> String {
        format!("apt-mark {verb} -- {}", join(names))
    }

    fn remove_command(names: &[String], purge: bool) -> String {
        let verb = if purge { "purge" } else { "remove" };
        format!(
            "DEBIAN_FRONTEND=noninteractive apt-get {verb} -y -q -o DPkg::Lock::Timeout={LOCK_TIMEOUT} -- {}",
            join(names)
        )
    }
}

#[async_trait]
impl Action for PackageAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        if self.update {
            run_checked(host, Exec::new(update_command())).await?;
        }
        if !self.verify.is_empty() {
            let pinned: Vec<String> = self.verify.iter().map(|(n, _)| n.clone()).collect();
            let script = format!("LC_ALL=C apt-cache madison -- {} 2>/dev/null || :", join(&pinned));
            let out = run_checked(host, Exec::new(script)).await?;
            let available = parse_madison(&out.stdout_text());
            if let Some((name, version)) =
                self.verify.iter().find(|(n, v)| !available.get(n).is_some_and(|a| a.contains(v)))
            {
                return Err(missing_version(name, version, available.get(name)));
            }
        }
        // A held package is released before apt-get moves it (remove refuses a held one).
        if !self.unhold.is_empty() {
            run_checked(host, Exec::new(Self::mark_command("unhold", &self.unhold))).await?;
        }
        if !self.install.is_empty() {
            let command = if self.pinned {
                Self::install_pinned_command(&self.install)
            } else {
                Self::install_command(&self.install)
            };
            run_checked(host, Exec::new(command)).await?;
        }
        if !self.remove.is_empty() {
            run_checked(host, Exec::new(Self::remove_command(&self.remove, self.purge))).await?;
        }
        if !self.hold.is_empty() {
            run_checked(host, Exec::new(Self::mark_command("hold", &self.hold))).await?;
        }
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: serde_json::Value) -> Result<PackageArgs, String> {
        contract::args::from_value::<PackageArgs>(json)
            .and_then(PackageArgs::validate)
            .map_err(|e| e.to_string())
    }

    /// An upgrade of a held package holds it again: apt's install lifted the hold.
    #[test]
    fn an_upgraded_held_package_is_held_again() {
        let names = ["kubeadm".to_owned(), "kubelet".to_owned(), "kubectl".to_owned()];
        let held = ["kubeadm".to_owned(), "kubelet".to_owned()];
        let kubeadm = names[0].clone();
        assert_eq!(to_hold(&names, &held, &[&kubeadm]), ["kubeadm", "kubectl"]);
        assert_eq!(to_hold(&names, &held, &[]), ["kubectl"], "nothing installed: only what is not held");
    }

    #[test]
    fn checks_arguments() {
        assert_eq!(args(serde_json::json!({"name": "hello"})).unwrap().names(), ["hello"]);
        assert_eq!(
            args(serde_json::json!({"names": ["hello", "tree", "hello"]})).unwrap().names(),
            ["hello", "tree"]
        );
        assert!(args(serde_json::json!({})).unwrap_err().contains("missing name"));
        assert!(args(serde_json::json!({"name": "a1", "names": ["b2"]})).is_err());
        assert!(args(serde_json::json!({"names": []})).is_err());
        for bad in ["Hello", "libc6:amd64", "-y", "a", "x y", "$(reboot)", "-y=1.0"] {
            assert!(
                args(serde_json::json!({"name": bad})).unwrap_err().contains("Debian package name"),
                "{bad}"
            );
        }
        assert!(args(serde_json::json!({"name": "g++"})).is_ok());
        let pinned = args(serde_json::json!({"names": ["kubelet=1.30.4-1.1", "kubectl"]})).unwrap();
        assert_eq!(pinned.names(), ["kubelet", "kubectl"]);
        assert_eq!(pinned.pins["kubelet"], "1.30.4-1.1");
        let field = args(serde_json::json!({"name": "kubelet", "version": "1:1.30.4-1.1"})).unwrap();
        assert_eq!(field.pins["kubelet"], "1:1.30.4-1.1");
        for (bad, why) in [
            (serde_json::json!({"name": "hello=--force-yes"}), "is not a Debian version"),
            (serde_json::json!({"name": "hello=2.10 x"}), "is not a Debian version"),
            (serde_json::json!({"name": "hello="}), "is not a Debian version"),
            (serde_json::json!({"name": "hello=1", "version": "2"}), "not both"),
            (serde_json::json!({"names": ["hello"], "version": "2"}), "with one name"),
            (serde_json::json!({"names": ["hello=1", "hello=2"]}), "two versions"),
            (serde_json::json!({"name": "hello=1", "state": "absent"}), "state: absent"),
            (serde_json::json!({"name": "hello", "hold": true, "state": "absent"}), "state: absent"),
            (serde_json::json!({"name": "hello", "purge": true}), "purge goes with state: absent"),
            (serde_json::json!({"name": "hello", "autoremove": true}), "autoremove goes with state: absent"),
        ] {
            assert!(args(bad.clone()).unwrap_err().contains(why), "{bad}");
        }
        assert!(
            args(serde_json::json!({"name": "x1", "state": "latest"}))
                .unwrap_err()
                .contains("must be one of")
        );
        assert!(
            args(serde_json::json!({"name": "x1", "upgrade": true}))
                .unwrap_err()
                .contains("unknown argument `upgrade`")
        );
        assert!(
            args(serde_json::json!({"name": "x1", "update_cache": "never", "cache_valid_time": 5})).is_err()
        );
    }

    #[test]
    fn parses_dpkg_query() {
        let found = parse_dpkg_query(
            "hello install ok installed 2.10-3\ntree deinstall ok config-files 2.1.0-1\n\
             libfoo install ok half-installed 1.0\nlibc6 install ok installed 2.36-9\n\
             libc6 purge ok not-installed \nkubelet hold ok installed 1.30.4-1.1\n",
        )
        .unwrap();
        assert!(found.is_installed("hello"));
        assert!(!found.is_installed("tree") && !found.is_on_disk("tree"));
        assert!(!found.is_installed("libfoo") && found.is_on_disk("libfoo"));
        assert!(found.is_installed("libc6"), "one installed architecture is enough");
        assert_eq!(found.versions["libc6"], "2.36-9");
        assert!(!found.is_installed("nope") && !found.is_on_disk("nope"));
        assert_eq!(found.held, ["kubelet"], "dpkg's selection `hold` is apt-mark's hold");
        assert_eq!(found.versions["kubelet"], "1.30.4-1.1");
    }

    #[test]
    fn purge_and_autoremove_go_with_absent() {
        let a = args(serde_json::json!({"names": ["kubelet", "curl"], "state": "absent", "purge": true,
            "autoremove": true, "hold": false}))
        .unwrap();
        assert!(a.purge && a.autoremove);
        let plain = args(serde_json::json!({"name": "hello", "state": "absent"})).unwrap();
        assert!(!plain.purge && !plain.autoremove, "both default to false");
        let found = parse_dpkg_query(
            "tree deinstall ok config-files 2.1.0-1
hello install ok installed 2.10-3
",
        )
        .unwrap();
        assert!(found.has_config_files("tree") && !found.has_config_files("hello"));
    }

    /// apt's simulation as it prints it (Debian 12), with the prose around the lines that count.
    #[test]
    fn reads_what_apts_simulation_removes() {
        let text = "Reading package lists...\nBuilding dependency tree...\nReading state information...\n\
            The following packages will be REMOVED:\n  conntrack* kubelet* socat*\n\
            0 upgraded, 0 newly installed, 3 to remove and 0 not upgraded.\n\
            Purg kubelet [1.30.4-1.1]\nPurg conntrack [1:1.4.7-1+b2]\nRemv socat [1.7.4.4-2]\n\
            Purg libc6:i386 [2.36-9+deb12u4]\nPurg kubelet [1.30.4-1.1]\n";
        assert_eq!(parse_simulation(text).unwrap(), ["kubelet", "conntrack", "socat", "libc6:i386"]);
        assert_eq!(
            parse_simulation("0 upgraded, 0 newly installed, 0 to remove\n").unwrap(),
            Vec::<String>::new()
        );
        for hostile in [
            "Purg -y [1.0]",
            "Purg openssh-server",
            "Purg $(reboot) [1.0]",
            "Remv hello [1.0 $(reboot)]",
            "Remv hello:AMD64 [1.0]",
            "Remv hello [--force-yes]",
            "Purg Hello\u{1b}[2J [1.0]",
        ] {
            let error = parse_simulation(hostile).unwrap_err().to_string();
            assert!(error.starts_with("not a package apt's simulation removes"), "{hostile}: {error}");
        }
    }

    /// A host with kubelet (held) and kubeadm installed, and an old config-files package, whose
    /// apt simulates removing them with the dependencies they leave unneeded; it records what
    /// it is asked to run.
    struct Node(std::sync::Mutex<Vec<String>>);

    #[async_trait]
    impl Host for Node {
        fn name(&self) -> &str {
            "node"
        }

        async fn exec(&self, exec: Exec) -> Result<contract::host::ExecOutput, contract::host::HostError> {
            let stdout = if exec.command.starts_with("dpkg-query") {
                "kubelet hold ok installed 1.30.4-1.1\nkubeadm install ok installed 1.30.4-1.1\n\
                 oldtool deinstall ok config-files 1.0\n#lists 1000 900 900 3\n"
            } else if exec.command.contains("apt-get -s") {
                "Reading package lists...\nPurg kubeadm [1.30.4-1.1]\nPurg cri-tools [1.30.1-1.1]\n\
                 Purg kubelet [1.30.4-1.1]\nPurg conntrack [1:1.4.7-1+b2]\nPurg oldtool [1.0]\n"
            } else {
                ""
            };
            self.0.lock().unwrap().push(exec.command);
            Ok(contract::host::ExecOutput { status: Some(0), stdout: stdout.into(), stderr: Vec::new() })
        }
    }

    #[tokio::test]
    async fn purge_with_autoremove_plans_and_removes_exactly_what_apt_simulated() {
        let host = Node(std::sync::Mutex::new(Vec::new()));
        let cx = Context::new(&host, contract::module::PlanOptions::default());
        let json = serde_json::json!({"names": ["kubeadm", "kubelet", "oldtool", "gone"], "state": "absent",
            "hold": false, "purge": true, "autoremove": true});
        let plan = Package::new(args(json).unwrap()).plan(&cx).await.unwrap();
        assert_eq!(
            plan.changes,
            [
                "purge kubeadm, kubelet, oldtool",
                "purge cri-tools, conntrack (no longer needed: autoremove)",
                "unhold kubelet",
            ]
        );
        let asked = host.0.lock().unwrap().clone();
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(
            asked[1].ends_with(
                "apt-get -s -q --allow-change-held-packages --purge remove --autoremove -- 'kubeadm' 'kubelet' 'oldtool'"
            ),
            "{asked:?}"
        );
        host.0.lock().unwrap().clear();
        plan.action.unwrap().apply(&host).await.unwrap();
        let ran = host.0.lock().unwrap().clone();
        assert_eq!(ran.len(), 2, "{ran:?}");
        assert_eq!(ran[0], "apt-mark unhold -- 'kubelet'", "released before it goes");
        assert!(
            ran[1].starts_with("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q ")
                && ran[1].ends_with(" -- 'kubeadm' 'kubelet' 'oldtool' 'cri-tools' 'conntrack'"),
            "{ran:?}"
        );
        // Without purge, a package that left only its configuration files is gone already.
        let json = serde_json::json!({"names": ["oldtool"], "state": "absent"});
        let plan = Package::new(args(json).unwrap()).plan(&cx).await.unwrap();
        assert!(!plan.is_change(), "{:?}", plan.changes);
    }

    #[test]
    fn parses_the_planning_output() {
        let mut found = parse_query("hello install ok installed 2.10-3\n#lists 1000 400 300 2\n").unwrap();
        assert!(found.is_installed("hello"));
        assert_eq!(found.lists_age, Some(600));
        assert!(!found.has_candidate("hello"), "apt was not asked");
        parse_candidates(
            "hello:\n  Installed: 2.10-3\n  Candidate: 2.10-3\n  Version table:\n *** 2.10-3 500\n        \
             500 file:/srv/lab-repo ./ Packages\ntree:\n  Installed: (none)\n  Candidate: (none)\n  \
             Version table:\n#madison\n",
            &mut found,
        )
        .unwrap();
        assert!(found.has_candidate("hello"));
        assert!(!found.has_candidate("tree"));
        assert!(!found.has_candidate("unknown"));
        let found = parse_query("#lists 1000 0 300 0\n").unwrap();
        assert_eq!(found.lists_age, None);
        assert!(parse_query("nothing").is_err());
        assert!(parse_candidates("hello:\n", &mut HostPackages::default()).is_err(), "no marker");
    }

    /// What a hostile host may print instead: refused, shown printable, never a panic.
    #[test]
    fn refuses_package_state_that_dpkg_and_apt_never_print() {
        let refused = |text: &str| parse_query(text).unwrap_err().to_string();
        assert_eq!(
            refused("hello install ok installed 1.0 extra\n#lists 1 1 1 1\n"),
            r#"not a dpkg-query line (package, want, flag, status, version): "hello install ok installed 1.0 extra""#
        );
        assert_eq!(
            refused("hello install ok installed $(reboot)\n#lists 1 1 1 1\n"),
            r#"not a dpkg-query line (package, want, flag, status, version): "hello install ok installed $(reboot)""#
        );
        assert_eq!(
            refused("Hello\u{1b}[2J install ok installed\n#lists 1 1 1 1\n"),
            r#"not a dpkg-query line (package, want, flag, status, version): "Hello\u{1b}[2J install ok installed""#
        );
        assert_eq!(
            parse_candidates("hello:\n  Candidate: 1.0 $(reboot)\n#madison\n", &mut HostPackages::default())
                .unwrap_err()
                .to_string(),
            r#"a candidate that is not a Debian version: "  Candidate: 1.0 $(reboot)""#
        );
        assert_eq!(
            refused("#lists 1 -2 3 4\n"),
            r#"not the package lists' state (four numbers): "1 -2 3 4""#
        );
        assert_eq!(refused("#lists 1 2\n"), r#"not the package lists' state (four numbers): "1 2""#);
    }

    #[test]
    fn available_versions_are_read_from_hostile_output() {
        let mut found = HostPackages::default();
        parse_candidates(
            "hello:\n  Candidate: 2.10-3\n#madison\n     hello |     2.10-3 | file:/srv/lab-repo ./ Packages\n\
             hello | 2.10-2 | http://deb.debian.org/debian bookworm/main amd64 Packages\n\
             hello | 2.10-3 | again\nhello | --force | x\nnot a row\n",
            &mut found,
        )
        .unwrap();
        assert_eq!(found.available["hello"], ["2.10-3", "2.10-2"]);
        assert_eq!(
            missing_version("hello", "9.9", found.available.get("hello")).to_string(),
            "hello has no version 9.9 in the repositories (the versions it has: 2.10-3, 2.10-2); nothing was installed"
        );
        assert!(missing_version("x1", "1", None).to_string().contains("apt knows no version of it"));
    }

    #[test]
    fn pinned_installs_and_holds_quote_their_operands() {
        let script = candidates_script(&["hello".into(), "tree".into()], &["hello".into()]);
        assert_eq!(
            script,
            "LC_ALL=C apt-cache policy -- 'hello' 'tree' 2>/dev/null; echo '#madison'; \
             LC_ALL=C apt-cache madison -- 'hello' 2>/dev/null; :"
        );
        let install = PackageAction::install_pinned_command(&["hello=2.10-3".into()]);
        assert!(
            install.ends_with(" --allow-downgrades --allow-change-held-packages -- 'hello=2.10-3'"),
            "{install}"
        );
        assert_eq!(PackageAction::mark_command("hold", &["kubelet".into()]), "apt-mark hold -- 'kubelet'");
    }

    #[test]
    fn commands_quote_the_names() {
        let script = installed_script(&["hello".into(), "g++".into()]);
        assert!(
            script.starts_with(
                "dpkg-query -W -f='${Package} ${Status} ${Version}\\n' -- 'hello' 'g++' 2>/dev/null;"
            ),
            "{script}"
        );
        assert!(!script.contains("apt-cache") && !script.contains("apt-mark"), "dpkg's database only");
        let install = PackageAction::install_command(&["hello".into()]);
        assert!(
            install
                .starts_with("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends")
        );
        assert!(install.ends_with(" -- 'hello'"));
        assert!(PackageAction::remove_command(&["hello".into()], false).ends_with(" -- 'hello'"));
        let purge = PackageAction::remove_command(&["hello".into()], true);
        assert!(purge.starts_with("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "), "{purge}");
        assert_eq!(
            autoremove_script(&["kubelet".into(), "g++".into()], true),
            "LC_ALL=C apt-get -s -q --allow-change-held-packages --purge remove --autoremove -- 'kubelet' 'g++'"
        );
        assert_eq!(autoremove_script(&[], false), "LC_ALL=C apt-get -s -q autoremove");
    }
}
