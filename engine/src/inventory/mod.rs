//! The inventory: hosts, groups and their variables, read as Ansible reads them.
//!
//! Sources (`-i`, repeatable) are files or folders. A file ending in `.yml`, `.yaml` or `.json`
//! is Ansible's YAML format (`parse`); any other is its INI format (`ini`), or YAML when it is
//! not INI but is a YAML map; a file with an execute bit is a script (`script`), run with `--list`. A folder is every file in it, in name order (subfolders too),
//! skipping hidden names, `group_vars/`, `host_vars/` and Ansible's ignored extensions. Host
//! names may be ranges (`range`). All sources fill one [`model::Raw`], then `group_vars/` and
//! `host_vars/` beside each source and beside the playbook (`vars_files`) are layered in
//! Ansible's precedence (see `model`). `--limit` patterns are `pattern`; `show` prints the
//! result as `ansible-inventory` does (`engine inventory`).
//! `extra_vars` reads `-e` and variables files (`-e @vars.yml`, a playbook's `load_vars(..)`).

mod connection;
mod error;
mod extra_vars;
mod ini;
mod model;
mod parse;
mod pattern;
mod range;
mod script;
mod show;
mod vars_files;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use connection::{Connection, READ_KEYS, Transport, UnusedKey};
pub use error::InventoryError;
pub use extra_vars::{ExtraVarsError, parse_extra_vars, read_vars_file};
use serde_json::Value;

/// Variables, as playbooks see them.
pub type Vars = serde_json::Map<String, Value>;

/// One machine from the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryHost {
    pub name: String,
    /// Merged variables, in Ansible's precedence (see `model`).
    pub vars: Vars,
    /// Every group the host belongs to, including `all`.
    pub groups: Vec<String>,
}

impl InventoryHost {
    /// How to reach the host, from its `ansible_*` and `engine_*` variables.
    pub fn connection(&self) -> Result<Connection, String> {
        Connection::from_vars(&self.name, &self.vars)
    }
}

/// The parsed inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The file it came from, for messages.
    pub path: PathBuf,
    /// Hosts in the order they first appear in the file.
    hosts: Vec<InventoryHost>,
    /// Host name -> its place in `hosts`: a plan looks its hosts up once per task.
    index: HashMap<String, usize>,
    /// Group name -> member host names, in file order (children's members included).
    groups: BTreeMap<String, Vec<String>>,
    /// Group name -> (its direct hosts, its child groups), for `engine inventory`.
    tree: model::Tree,
    /// The `ansible_*` variables engine does not read, each once, sorted by name.
    unused_keys: Vec<UnusedKey>,
}

/// Extensions a folder source skips (Ansible's `INVENTORY_IGNORE_EXTS` as of ansible-core 2.19:
/// `.ini` is read).
const IGNORED_EXTENSIONS: [&str; 12] =
    [".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry"];

impl Inventory {
    /// Reads and parses one inventory source (file or folder) with the vars files beside it.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        Self::load_all(&[path.to_owned()], None)
    }

    /// Reads every source in order (a later one's value for the same variable wins), then the
    /// `group_vars/` and `host_vars/` beside each source and beside the playbook (`playbook_dir`).
    pub fn load_all(sources: &[PathBuf], playbook_dir: Option<&Path>) -> Result<Self, InventoryError> {
        let mut raw = model::Raw::default();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for source in sources {
            if source.is_dir() {
                let mut files = Vec::new();
                source_files(source, &mut files)?;
                for file in files {
                    read_source(&file, &mut raw)?;
                }
                dirs.push(source.clone());
            } else {
                read_source(source, &mut raw)?;
                dirs.push(source.parent().map(Path::to_owned).unwrap_or_default());
            }
        }
        let mut beside_inventory = model::SideVars::default();
        let mut beside_playbook = model::SideVars::default();
        let mut groups: Vec<String> = raw.groups.keys().cloned().collect();
        groups.extend(["all".to_owned(), "ungrouped".to_owned()]);
        let hosts = raw.order.clone();
        let same =
            |a: &Path, b: &Path| a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok() == Some(a));
        for (i, dir) in dirs.iter().enumerate() {
            if !dirs[..i].iter().any(|d| same(d, dir)) {
                vars_files::load(dir, &groups, &hosts, &mut beside_inventory)?;
            }
        }
        if let Some(dir) = playbook_dir.filter(|p| !dirs.iter().any(|d| same(d, p))) {
            vars_files::load(dir, &groups, &hosts, &mut beside_playbook)?;
        }
        let path = sources.first().cloned().unwrap_or_default();
        Self::finish(raw, &beside_inventory, &beside_playbook, path)
    }

    /// Parses inventory text (INI, or YAML for a `.yml`/`.yaml`/`.json` path); `path` is used
    /// for messages and the format only.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InventoryError> {
        let mut raw = model::Raw::default();
        parse_source(text, path, &mut raw)?;
        let none = model::SideVars::default();
        Self::finish(raw, &none, &none, path.to_owned())
    }

    /// Merges the variables, refuses an `ansible_connection` engine cannot honour (every host
    /// at once), and notes the `ansible_*` variables it does not read.
    fn finish(
        raw: model::Raw,
        beside_inventory: &model::SideVars,
        beside_playbook: &model::SideVars,
        path: PathBuf,
    ) -> Result<Self, InventoryError> {
        let invalid = |message| InventoryError::Invalid { path: path.clone(), line: None, message };
        let (hosts, groups, tree) = raw.resolve(beside_inventory, beside_playbook).map_err(invalid)?;
        let refused: Vec<String> =
            hosts.iter().filter_map(|h| Transport::from_vars(&h.name, &h.vars).err()).collect();
        if !refused.is_empty() {
            return Err(invalid(refused.join("; ")));
        }
        let mut unused: BTreeMap<&str, usize> = BTreeMap::new();
        for host in &hosts {
            for key in host.vars.keys().filter(|k| k.starts_with("ansible_")) {
                if !READ_KEYS.contains(&key.as_str()) {
                    *unused.entry(key).or_default() += 1;
                }
            }
        }
        let unused_keys =
            unused.into_iter().map(|(key, hosts)| UnusedKey { key: key.to_owned(), hosts }).collect();
        let mut index = HashMap::with_capacity(hosts.len());
        for (i, h) in hosts.iter().enumerate() {
            index.entry(h.name.clone()).or_insert(i);
        }
        Ok(Self { path, hosts, index, groups, tree, unused_keys })
    }

    /// The `ansible_*` variables engine does not read, each once with the number of hosts that
    /// have it, sorted by name: warnings for the binary to show.
    pub fn unused_keys(&self) -> &[UnusedKey] {
        &self.unused_keys
    }

    /// All hosts, in file order.
    pub fn hosts(&self) -> &[InventoryHost] {
        &self.hosts
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> Option<&InventoryHost> {
        self.index.get(name).map(|&i| &self.hosts[i])
    }

    /// The members of a group, in file order.
    pub fn group(&self, name: &str) -> Option<&[String]> {
        self.groups.get(name).map(Vec::as_slice)
    }

    /// Every group name, sorted.
    pub fn group_names(&self) -> Vec<&str> {
        self.groups.keys().map(String::as_str).collect()
    }

    /// Every group with its members, in file order (children's members included).
    pub fn groups(&self) -> &BTreeMap<String, Vec<String>> {
        &self.groups
    }

    /// A copy where each of `hosts` gets the `vars` it does not set itself: the lowest
    /// precedence, as Ansible gives command-line connection options (`engine exec -b`).
    pub fn with_default_vars(&self, hosts: &[String], vars: &Vars) -> Self {
        let mut copy = self.clone();
        for host in copy.hosts.iter_mut().filter(|h| hosts.contains(&h.name)) {
            for (key, value) in vars {
                host.vars.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        copy
    }

    /// The hosts a `--limit` pattern list selects (Ansible's patterns: `web*`, `a:b`, `a,b`,
    /// `g1:&g2`, `all:!h`, `~regex`, `g[0]`), in the order its terms find them.
    pub fn resolve_patterns(&self, patterns: &[String]) -> Result<Vec<String>, String> {
        pattern::resolve(self, patterns)
    }
}

/// A YAML value as a map of variables (`what` names it in messages): `(line, message)` when it
/// is not a map, or holds the character engine reserves for run-time references. Shared with
/// the playbook's `-e @file` and `load_vars(..)`, which read variables files as group_vars does.
pub(crate) fn yaml_to_vars(
    value: &serde_yaml_ng::Value,
    what: &str,
) -> Result<Vars, (Option<usize>, String)> {
    parse::to_vars(value, what).map_err(|e| (e.line, e.message))
}

/// `--limit` values with each `@FILE` replaced by the patterns it holds, one per line (Ansible's
/// retry-file form; blank lines skipped), the file relative to `cwd`.
pub fn limit_terms(patterns: &[String], cwd: &Path) -> Result<Vec<String>, String> {
    let mut terms = Vec::new();
    for pattern in patterns {
        let Some(file) = pattern.strip_prefix('@') else {
            terms.push(pattern.clone());
            continue;
        };
        let path = cwd.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("--limit @{file}: cannot read {}: {e}", path.display()))?;
        let before = terms.len();
        terms.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
        if terms.len() == before {
            return Err(format!("--limit @{file}: {} names no host or pattern", path.display()));
        }
    }
    Ok(terms)
}

fn read_source(path: &Path, raw: &mut model::Raw) -> Result<(), InventoryError> {
    if script::is_script(path) {
        let invalid = |message| InventoryError::Invalid { path: path.to_owned(), line: None, message };
        let text = script::inventory_text(path).map_err(invalid)?;
        return parse::parse(&text, raw)
            .map_err(|e| invalid(format!("{} --list: {}", path.display(), e.message)));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| InventoryError::Read { path: path.to_owned(), source })?;
    parse_source(&text, path, raw)
}

fn is_yaml_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yml" || e == "yaml" || e == "json")
}

fn parse_source(text: &str, path: &Path, raw: &mut model::Raw) -> Result<(), InventoryError> {
    let invalid = |e: parse::ParseError| InventoryError::Invalid {
        path: path.to_owned(),
        line: e.line,
        message: e.message,
    };
    if is_yaml_path(path) {
        return parse::parse(text, raw).map_err(invalid);
    }
    let before = raw.clone();
    let Err(ini_error) = ini::parse(text, raw) else { return Ok(()) };
    // Not INI: YAML without a YAML extension, as Ansible's plugin chain would accept.
    *raw = before;
    if matches!(serde_yaml_ng::from_str(text), Ok(serde_yaml_ng::Value::Mapping(_))) {
        return parse::parse(text, raw).map_err(invalid);
    }
    Err(invalid(ini_error))
}

/// The files of a folder source, in name order, subfolders included.
fn source_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InventoryError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| InventoryError::Read { path: dir.to_owned(), source })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ignored = name.starts_with('.')
            || name == "group_vars"
            || name == "host_vars"
            || name == "vars_plugins"
            || IGNORED_EXTENSIONS.iter().any(|e| name.ends_with(e));
        if ignored {
            continue;
        }
        if path.is_dir() {
            source_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
