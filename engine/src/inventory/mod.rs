//! Ansible's YAML inventory format: `all:` / `children:` / `hosts:` / `vars:`.
//!
//! Variables merge from the outermost group to the host itself, so a host's own vars win
//! over its groups', and a child group's over its parent's (Ansible's order).

mod connection;
mod error;
mod parse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use connection::Connection;
pub use error::InventoryError;
use serde_json::Value;

/// Variables, as playbooks see them.
pub type Vars = serde_json::Map<String, Value>;

/// One machine from the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryHost {
    pub name: String,
    /// Merged variables: groups' (outermost first), then the host's own.
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
    /// Group name -> member host names, in file order (children's members included).
    groups: BTreeMap<String, Vec<String>>,
}

impl Inventory {
    /// Reads and parses an inventory file.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| InventoryError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Parses inventory text; `path` is used for messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InventoryError> {
        parse::parse(text)
            .map(|(hosts, groups)| Self { path: path.to_owned(), hosts, groups })
            .map_err(|e| InventoryError::Invalid { path: path.to_owned(), line: e.line, message: e.message })
    }

    /// All hosts, in file order.
    pub fn hosts(&self) -> &[InventoryHost] {
        &self.hosts
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> Option<&InventoryHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The members of a group, in file order.
    pub fn group(&self, name: &str) -> Option<&[String]> {
        self.groups.get(name).map(Vec::as_slice)
    }

    /// Every group name, sorted.
    pub fn group_names(&self) -> Vec<&str> {
        self.groups.keys().map(String::as_str).collect()
    }

    /// Resolves a `--limit` pattern list (`web0,etcd`, hosts or groups) to host names.
    pub fn resolve_patterns(&self, patterns: &[String]) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for pattern in patterns {
            let found: Vec<String> = if let Some(members) = self.group(pattern) {
                members.to_vec()
            } else if self.host(pattern).is_some() {
                vec![pattern.clone()]
            } else {
                let names =
                    self.hosts.iter().map(|h| h.name.as_str()).chain(self.groups.keys().map(String::as_str));
                return Err(format!(
                    "--limit {pattern:?} names no host or group of the inventory{} (groups: {})",
                    contract::suggest::did_you_mean(pattern, names),
                    self.group_names().join(", ")
                ));
            };
            for name in found {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }
}
