//! `group_vars/` and `host_vars/` beside an inventory source or a playbook, as Ansible's
//! `host_group_vars` plugin finds them: for a group or host NAME, the files `NAME`, `NAME.yml`,
//! `NAME.yaml` and `NAME.json`, and every file of a folder `NAME/` (subfolders included) in
//! lexical order, skipping hidden files, names ending in `~` and other extensions. A later
//! file's value for the same variable wins. Each file is a YAML (or JSON) map of variables.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value as Yaml;

use super::model::SideVars;
use super::parse::to_vars;
use super::{InventoryError, Vars};

const EXTENSIONS: [&str; 3] = ["yml", "yaml", "json"];

/// Adds the vars files under `dir` for these groups and hosts to `side`.
pub(super) fn load(
    dir: &Path,
    groups: &[String],
    hosts: &[String],
    side: &mut SideVars,
) -> Result<(), InventoryError> {
    for (kind, names, into) in
        [("group_vars", groups, &mut side.groups), ("host_vars", hosts, &mut side.hosts)]
    {
        let base = dir.join(kind);
        if !base.is_dir() {
            continue;
        }
        for name in names {
            if name == "." || name == ".." {
                continue;
            }
            for file in files_for(&base, name)? {
                let vars = read(&file)?;
                into.entry(name.clone()).or_default().extend(vars);
            }
        }
    }
    Ok(())
}

fn files_for(base: &Path, name: &str) -> Result<Vec<PathBuf>, InventoryError> {
    let path = base.join(name);
    if path.is_dir() {
        let mut found = Vec::new();
        walk(&path, &mut found)?;
        return Ok(found);
    }
    let candidates = std::iter::once(path).chain(EXTENSIONS.iter().map(|e| base.join(format!("{name}.{e}"))));
    Ok(candidates.filter(|p| p.is_file()).collect())
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), InventoryError> {
    let read_dir = |source| InventoryError::Read { path: dir.to_owned(), source };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(read_dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if path.is_dir() {
            walk(&path, found)?;
        } else if path.is_file() {
            let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
            if ext.as_deref().is_none_or(|e| EXTENSIONS.contains(&e)) {
                found.push(path);
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vars, InventoryError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| InventoryError::Read { path: path.to_owned(), source })?;
    let invalid = |line, message| InventoryError::Invalid { path: path.to_owned(), line, message };
    let value: Yaml = serde_yaml_ng::from_str(&text)
        .map_err(|e| invalid(e.location().map(|l| l.line()), format!("not valid YAML: {e}")))?;
    match value {
        Yaml::Null | Yaml::Mapping(_) => {
            to_vars(&value, "this vars file").map_err(|e| invalid(e.line, e.message))
        }
        _ => {
            Err(invalid(None, "a group_vars or host_vars file holds a map of variables (name: value)".into()))
        }
    }
}
