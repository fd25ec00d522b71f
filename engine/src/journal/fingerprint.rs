//! A task's input fingerprint: HMAC-SHA256, keyed with the workspace's journal key (see
//! [`super::key`]), over its host, name, module and canonical arguments (before output
//! references are resolved, so they stay stable), its `when` condition, and the content of the
//! controller-side files it reads (`scp` from the controller, `certgen` with a controller CA). A resume reruns every
//! task whose fingerprint changed since the journal. Keyed, because arguments hold `secret()`
//! and `-e` values: a journal alone must not let anyone test guesses of them offline.

use std::collections::BTreeMap;
use std::path::Path;

use contract::diff::sha256_hex;
use serde_json::Value;

use super::key::JournalKey;
use crate::ids::TaskId;
use crate::plan::{Plan, Task};

/// Upper bound on files hashed under one controller directory.
const MAX_FILES: usize = 10_000;

/// Task id → fingerprint, for every task of `plan`.
pub fn fingerprints(plan: &Plan, key: &JournalKey) -> BTreeMap<TaskId, String> {
    plan.tasks().map(|(_, t)| (t.id, fingerprint(t, key))).collect()
}

/// The fingerprint of one task.
pub fn fingerprint(task: &Task, key: &JournalKey) -> String {
    let args = task.args.value();
    let mut text = String::new();
    for part in [task.host.as_str(), task.name.as_str(), task.module, &canonical(&args)] {
        text.push_str(&part.len().to_string());
        text.push(':');
        text.push_str(part);
        text.push('\n');
    }
    for path in controller_files(task.module, &args) {
        text.push_str(&format!("file {path}: {}\n", content_hash(Path::new(&path))));
    }
    // Only when set, so the fingerprints of tasks without a condition stay as they were.
    if let Some(when) = &task.when {
        text.push_str(&format!("when {}: {}\n", when.task.0, when.expression));
    }
    key.fingerprint(text.as_bytes())
}

/// JSON with object keys sorted at every level, so equal values always hash alike.
pub fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            let items: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        // Markers carry a per-process token: compare them by what they refer to.
        Value::String(text) => Value::String(contract::deferred::canonical(text)).to_string(),
        other => other.to_string(),
    }
}

/// The controller paths a task reads, when its arguments say so (and hold no run-time value).
fn controller_files(module: &str, args: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    match module {
        "scp" if args["from"] == "controller" => match &args["src"] {
            Value::String(s) => paths.push(s.clone()),
            Value::Array(items) => paths.extend(items.iter().filter_map(Value::as_str).map(str::to_owned)),
            _ => {}
        },
        "certgen" => {
            if let Some(dir) = args["ca"]["controller"].as_str() {
                let dir = Path::new(dir);
                let cert = args["ca"]["cert"].as_str().unwrap_or("ca.pem");
                let key = args["ca"]["key"].as_str().unwrap_or("ca-key.pem");
                paths.push(dir.join(cert).display().to_string());
                paths.push(dir.join(key).display().to_string());
            }
        }
        _ => {}
    }
    paths.retain(|p| !crate::plan::refs::holds_reference(p));
    paths
}

/// SHA-256 of a file's content, or of a directory's sorted relative paths and contents;
/// `missing` or `unreadable` when it cannot be read (the next run may find it).
fn content_hash(path: &Path) -> String {
    let mut files = Vec::new();
    collect(path, Path::new(""), &mut files);
    if files.is_empty() {
        return if path.exists() { "empty".to_owned() } else { "missing".to_owned() };
    }
    let mut text = String::new();
    for (rel, hash) in files {
        text.push_str(&format!("{rel} {hash}\n"));
    }
    sha256_hex(text.as_bytes())
}

fn collect(path: &Path, rel: &Path, out: &mut Vec<(String, String)>) {
    if out.len() >= MAX_FILES {
        return;
    }
    let Ok(meta) = std::fs::metadata(path) else { return };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            out.push((rel.display().to_string(), "unreadable".to_owned()));
            return;
        };
        let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            collect(&path.join(&name), &rel.join(&name), out);
        }
    } else {
        let hash = std::fs::read(path).map_or_else(|_| "unreadable".to_owned(), |b| sha256_hex(&b));
        out.push((rel.display().to_string(), hash));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Location;

    fn task(module: &'static str, args: Value) -> Task {
        Task {
            id: TaskId(0),
            name: "t".into(),
            host: "h".into(),
            module,
            args: args.into(),
            tags: Vec::new(),
            location: Location { file: "p.rhai".into(), line: 1, col: 1 },
            section: None,
            handler: false,
            always: false,
            when: None,
            retry: None,
            parsed: None,
            sealed: None,
        }
    }

    fn fingerprint(task: &Task) -> String {
        super::fingerprint(task, &JournalKey::from_bytes([5; 32]))
    }

    /// The same task under two workspace keys: unrelated fingerprints, neither of them the
    /// plain SHA-256 a dictionary attack on a stolen journal would compute.
    #[test]
    fn fingerprints_are_keyed_with_the_workspace_key() {
        let t = task("file", json!({"path": "/x", "content": "hunter2"}));
        let a = super::fingerprint(&t, &JournalKey::from_bytes([5; 32]));
        let b = super::fingerprint(&t, &JournalKey::from_bytes([6; 32]));
        assert_ne!(a, b);
        assert_eq!(a, super::fingerprint(&t, &JournalKey::from_bytes([5; 32])));
        assert_eq!(a.len(), 64);
        let mut text = String::new();
        for part in ["h", "t", "file", &canonical(&t.args.value())] {
            text.push_str(&format!("{}:{part}\n", part.len()));
        }
        assert_ne!(a, sha256_hex(text.as_bytes()), "not the unkeyed hash");
    }

    #[test]
    fn key_order_does_not_matter_but_values_and_files_do() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": {"d": [1, "x"], "c": null}})),
            r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#
        );
        let a = fingerprint(&task("file", json!({"path": "/x", "content": "1"})));
        let b = fingerprint(&task("file", json!({"content": "1", "path": "/x"})));
        let c = fingerprint(&task("file", json!({"content": "2", "path": "/x"})));
        assert_eq!(a, b);
        assert_ne!(a, c);

        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("ca.pem");
        std::fs::write(&src, "one").unwrap();
        let scp =
            || task("scp", json!({"from": "controller", "src": src.display().to_string(), "dest": "/y"}));
        let before = fingerprint(&scp());
        assert_eq!(before, fingerprint(&scp()));
        std::fs::write(&src, "two").unwrap();
        assert_ne!(before, fingerprint(&scp()), "the controller file's content counts");
        let dir_scp = task("scp", json!({"from": "controller", "src": dir.path().display().to_string()}));
        let before = fingerprint(&dir_scp);
        std::fs::write(dir.path().join("new"), "x").unwrap();
        assert_ne!(before, fingerprint(&dir_scp), "a directory's files count");
    }
}
