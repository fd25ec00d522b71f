//! `apt`: Debian packages present or absent, with the package lists updated only when needed.
//!
//! The module is called `apt` in playbooks (`host.apt(...)`): `package` is a reserved word in Rhai,
//! so `host.package(...)` cannot parse.
//!
//! Planning is one round trip: `dpkg-query` for what is installed, `apt-cache policy` for install
//! candidates, and the age of the package lists. Applying runs at most `apt-get update`, then one
//! `apt-get install` or `apt-get remove` of exactly the packages planned.

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::validate::Validate;
use contract::error::{ArgsError, ModuleError};
use contract::host::{Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::run_checked;
use contract::shell::join;

/// Touched after every successful `apt-get update` by this module (and by Debian's own
/// update-notifier); its age is the age of the package lists.
const UPDATE_STAMP: &str = "/var/lib/apt/periodic/update-success-stamp";
const LISTS_DIR: &str = "/var/lib/apt/lists";
/// Seconds `apt-get` waits for another apt or dpkg to release its lock.
const LOCK_TIMEOUT: u32 = 120;

/// Installs or removes Debian packages with apt; idempotent.
/// Only missing packages are installed (installed ones are never upgraded) and only installed ones
/// removed. `update_cache: auto` runs `apt-get update` only when something is to be installed and a
/// wanted package has no install candidate, or the package lists are missing or older than
/// `cache_valid_time`. Installs are non-interactive, without recommended packages, and keep existing
/// configuration files. Call it as `host.apt(...)`: `package` is a reserved word in Rhai.
/// The lab's hosts have no internet: their image carries a small local repository
/// (`deb [trusted=yes] file:/srv/lab-repo ./`, with `hello` and `tree`) and no other apt source.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageArgs {
    /// One package name. Give either `name` or `names`.
    pub name: Option<String>,
    /// Package names (plain names: no version pins, no architecture qualifiers).
    pub names: Option<Vec<String>>,
    /// Whether the packages should be installed.
    #[serde(default)]
    pub state: PackageState,
    /// When to run `apt-get update` first.
    #[serde(default)]
    pub update_cache: UpdateCache,
    /// With `update_cache: auto`: package lists older than this many seconds are updated before an
    /// install. Default 3600.
    pub cache_valid_time: Option<u64>,
}

/// Whether packages should be installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    /// Installed; installed ones are not upgraded
    #[default]
    Present,
    /// Not installed; `apt-get remove` keeps configuration files
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

contract::resolve_struct!(PackageArgs { name, names, state, update_cache, cache_valid_time });
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
        for (i, name) in names.into_iter().enumerate() {
            if !is_package_name(&name) {
                let path = if one { "name".to_owned() } else { format!("names[{i}]") };
                return Err(ArgsError::invalid(
                    path,
                    format!(
                        "{name:?} is not a Debian package name (lowercase letters, digits and + - .; \
                     no version pins or architecture qualifiers)"
                    ),
                ));
            }
            if !unique.contains(&name) {
                unique.push(name);
            }
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

/// What the planning round trip found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HostPackages {
    /// dpkg's status word (`installed`, `config-files`, ...) per package it knows.
    status: BTreeMap<String, String>,
    /// The install candidate per package apt knows; `None` for `(none)`.
    candidates: BTreeMap<String, Option<String>>,
    /// Seconds since the lists were last updated; `None` when there are no lists.
    lists_age: Option<u64>,
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

    fn has_candidate(&self, name: &str) -> bool {
        self.candidates.get(name).is_some_and(Option::is_some)
    }
}

/// The one planning command. Each part is best effort (unknown packages make dpkg-query and
/// apt-cache complain on stderr); the markers separate the parts.
fn query_script(names: &[String], with_policy: bool) -> String {
    let names = join(names);
    let mut script =
        format!("dpkg-query -W -f='${{Package}} ${{Status}}\\n' -- {names} 2>/dev/null; echo '#policy'; ");
    if with_policy {
        script.push_str(&format!("LC_ALL=C apt-cache policy -- {names} 2>/dev/null; "));
    }
    script.push_str(&format!(
        "echo \"#lists $(date +%s) $(stat -c %Y {UPDATE_STAMP} 2>/dev/null || echo 0) \
         $(stat -c %Y {LISTS_DIR} 2>/dev/null || echo 0) $(ls {LISTS_DIR} 2>/dev/null | grep -c _Packages)\""
    ));
    script
}

fn parse_query(text: &str) -> Result<HostPackages, String> {
    let (dpkg, rest) = text.split_once("#policy").ok_or("no #policy marker")?;
    let (policy, lists) = rest.split_once("#lists").ok_or("no #lists marker")?;
    let mut found = HostPackages { status: parse_dpkg_query(dpkg), ..HostPackages::default() };
    found.candidates = parse_policy(policy);
    let numbers: Vec<u64> = lists
        .split_whitespace()
        .map(|n| n.parse().map_err(|e| format!("list state {lists:?}: {e}")))
        .collect::<Result<_, _>>()?;
    let [now, stamp, dir, count] = numbers[..] else {
        return Err(format!("unexpected list state {lists:?}"));
    };
    found.lists_age = (count > 0).then(|| now.saturating_sub(stamp.max(dir)));
    Ok(found)
}

/// `PACKAGE WANT FLAG STATUS` lines; a package listed twice (multi-arch) counts as installed when
/// any instance is.
fn parse_dpkg_query(text: &str) -> BTreeMap<String, String> {
    let mut status: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, _want, _flag, state] = words[..] else { continue };
        let entry = status.entry(name.to_owned()).or_insert_with(|| state.to_owned());
        if state == "installed" {
            *entry = state.to_owned();
        }
    }
    status
}

/// `apt-cache policy` blocks: `name:` then `  Candidate: VERSION` (or `(none)`).
fn parse_policy(text: &str) -> BTreeMap<String, Option<String>> {
    let mut candidates = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') {
            current = line.strip_suffix(':').map(str::to_owned);
        } else if let (Some(name), Some(version)) = (&current, line.trim().strip_prefix("Candidate:")) {
            let version = version.trim();
            candidates.insert(name.clone(), (version != "(none)").then(|| version.to_owned()));
        }
    }
    candidates
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
        let out = run_checked(cx.host, Exec::new(query_script(names, present))).await?;
        let found = parse_query(&String::from_utf8_lossy(&out.stdout))
            .map_err(|why| ModuleError::Refused(format!("cannot read the package state: {why}")))?;

        let mut changes = Vec::new();
        let (install, remove): (Vec<String>, Vec<String>) = if present {
            (names.iter().filter(|n| !found.is_installed(n)).cloned().collect(), Vec::new())
        } else {
            (Vec::new(), names.iter().filter(|n| found.is_on_disk(n)).cloned().collect())
        };
        let no_candidate: Vec<&str> =
            install.iter().filter(|n| !found.has_candidate(n)).map(String::as_str).collect();
        let valid_for = args.cache_valid_time.unwrap_or(DEFAULT_CACHE_VALID_TIME);
        let update_why = match args.update_cache {
            UpdateCache::Never if !no_candidate.is_empty() => {
                return Err(ModuleError::Refused(format!(
                    "no install candidate for {} and update_cache is never; \
                     is the package name right, and is its repository in the apt sources?",
                    no_candidate.join(", ")
                )));
            }
            UpdateCache::Never => None,
            UpdateCache::Always => Some("update_cache: always".to_owned()),
            UpdateCache::Auto if install.is_empty() => None,
            UpdateCache::Auto if !no_candidate.is_empty() => {
                Some(format!("no install candidate for {}", no_candidate.join(", ")))
            }
            UpdateCache::Auto => match found.lists_age {
                None => Some("no package lists".to_owned()),
                Some(age) if age > valid_for => {
                    Some(format!("package lists are {age} s old, more than {valid_for} s"))
                }
                Some(_) => None,
            },
        };
        if let Some(why) = &update_why {
            changes.push(format!("apt-get update ({why})"));
        }
        if !install.is_empty() {
            changes.push(format!("install {}", install.join(", ")));
        }
        if !remove.is_empty() {
            changes.push(format!("remove {}", remove.join(", ")));
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        Ok(Plan {
            changes,
            action: Some(Box::new(PackageAction { update: update_why.is_some(), install, remove })),
            ..Plan::default()
        })
    }
}

/// Exactly the planned apt operations.
#[derive(Debug)]
struct PackageAction {
    update: bool,
    install: Vec<String>,
    remove: Vec<String>,
}

/// `apt-get update`, then the stamp whose age is the lists' age.
pub(crate) fn update_command() -> String {
    format!("apt-get update -q -o DPkg::Lock::Timeout={LOCK_TIMEOUT} && touch {UPDATE_STAMP}")
}

impl PackageAction {
    fn install_command(names: &[String]) -> String {
        format!(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
             -o DPkg::Lock::Timeout={LOCK_TIMEOUT} -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold -- {}",
            join(names)
        )
    }

    fn remove_command(names: &[String]) -> String {
        format!(
            "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout={LOCK_TIMEOUT} -- {}",
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
        if !self.install.is_empty() {
            run_checked(host, Exec::new(Self::install_command(&self.install))).await?;
        }
        if !self.remove.is_empty() {
            run_checked(host, Exec::new(Self::remove_command(&self.remove))).await?;
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
        for bad in ["Hello", "hello=2.10", "libc6:amd64", "-y", "a", "x y", "$(reboot)"] {
            assert!(
                args(serde_json::json!({"name": bad})).unwrap_err().contains("Debian package name"),
                "{bad}"
            );
        }
        assert!(args(serde_json::json!({"name": "g++"})).is_ok());
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
        let s = parse_dpkg_query(
            "hello install ok installed\ntree deinstall ok config-files\nlibfoo install ok half-installed\n\
             libc6 install ok installed\nlibc6 purge ok not-installed\n",
        );
        let found = HostPackages { status: s, ..HostPackages::default() };
        assert!(found.is_installed("hello"));
        assert!(!found.is_installed("tree") && !found.is_on_disk("tree"));
        assert!(!found.is_installed("libfoo") && found.is_on_disk("libfoo"));
        assert!(found.is_installed("libc6"), "one installed architecture is enough");
        assert!(!found.is_installed("nope") && !found.is_on_disk("nope"));
    }

    #[test]
    fn parses_the_planning_output() {
        let text = "hello install ok installed\n#policy\nhello:\n  Installed: 2.10-3\n  Candidate: 2.10-3\n  \
                    Version table:\n *** 2.10-3 500\n        500 file:/srv/lab-repo ./ Packages\n\
                    tree:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n\
                    #lists 1000 400 300 2\n";
        let found = parse_query(text).unwrap();
        assert!(found.is_installed("hello"));
        assert!(found.has_candidate("hello"));
        assert!(!found.has_candidate("tree"));
        assert!(!found.has_candidate("unknown"));
        assert_eq!(found.lists_age, Some(600));
        let found = parse_query("#policy\n#lists 1000 0 300 0\n").unwrap();
        assert_eq!(found.lists_age, None);
        assert!(parse_query("nothing").is_err());
    }

    #[test]
    fn commands_quote_the_names() {
        let script = query_script(&["hello".into(), "g++".into()], true);
        assert!(
            script.starts_with("dpkg-query -W -f='${Package} ${Status}\\n' -- 'hello' 'g++' 2>/dev/null;")
        );
        assert!(script.contains("apt-cache policy -- 'hello' 'g++'"));
        assert!(!query_script(&["hello".into()], false).contains("apt-cache"));
        let install = PackageAction::install_command(&["hello".into()]);
        assert!(
            install
                .starts_with("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends")
        );
        assert!(install.ends_with(" -- 'hello'"));
        assert!(PackageAction::remove_command(&["hello".into()]).ends_with(" -- 'hello'"));
    }
}
