//! Executable inventories, as Ansible's `script` plugin runs them: a source file with an execute
//! bit is run with `--list`; its JSON names groups (`{"hosts": [..], "vars": {..}, "children":
//! [..]}`, or just a list of hosts) and, under `_meta.hostvars`, every host's variables. Without
//! `_meta` the script is run again with `--host NAME` for each host. Each run is bounded in time
//! ([`TIMEOUT`]) and output ([`MAX_OUTPUT`]); a non-zero exit, a timeout or bad JSON is an error
//! naming the script, with the tail of its stderr.
//!
//! The result is rewritten as a YAML inventory tree (groups at the top, hosts with their
//! variables under each group that lists them) and read by the same walk as a YAML file.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// How long one run of the script may take.
pub(super) const TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of stdout kept from one run; more is an error.
pub(super) const MAX_OUTPUT: usize = 64 << 20;

/// Whether `path` is a file an execute bit makes a script.
pub(super) fn is_script(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs the script and returns its inventory as YAML-inventory JSON text.
pub(super) fn inventory_text(path: &Path) -> Result<String, String> {
    let list = run(path, &["--list"])?;
    let Value::Object(mut list) = list else {
        return Err(format!("{} --list printed JSON that is not a map of groups", path.display()));
    };
    let meta = list.remove("_meta");
    let mut hostvars: Map<String, Value> = match meta.as_ref().map(|m| &m["hostvars"]) {
        Some(Value::Object(vars)) => vars.clone(),
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(format!("{} --list: _meta.hostvars must be a map of hosts", path.display())),
    };
    let mut tree = Map::new();
    let mut listed: Vec<String> = Vec::new();
    for (group, body) in &list {
        let (hosts, vars, children) = match body {
            Value::Array(hosts) => (hosts.clone(), Value::Null, Vec::new()),
            Value::Object(body) => (
                body.get("hosts").and_then(Value::as_array).cloned().unwrap_or_default(),
                body.get("vars").cloned().unwrap_or(Value::Null),
                body.get("children").and_then(Value::as_array).cloned().unwrap_or_default(),
            ),
            _ => {
                return Err(format!(
                    "{} --list: group {group:?} must be a map or a list of hosts",
                    path.display()
                ));
            }
        };
        let mut entry = Map::new();
        let names: Vec<String> = hosts.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect();
        if names.len() != hosts.len() {
            return Err(format!(
                "{} --list: group {group:?} lists a host that is not a string",
                path.display()
            ));
        }
        listed.extend(names.iter().cloned());
        if !names.is_empty() {
            entry.insert(
                "hosts".into(),
                Value::Object(names.iter().map(|h| (h.clone(), Value::Null)).collect()),
            );
        }
        if !vars.is_null() {
            entry.insert("vars".into(), vars);
        }
        let children: Vec<String> = children.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect();
        if !children.is_empty() {
            entry.insert(
                "children".into(),
                Value::Object(children.into_iter().map(|c| (c, json!({}))).collect()),
            );
        }
        tree.insert(group.clone(), Value::Object(entry));
    }
    listed.sort();
    listed.dedup();
    if meta.is_none() {
        for host in &listed {
            match run(path, &["--host", host])? {
                vars @ Value::Object(_) => {
                    hostvars.insert(host.clone(), vars);
                }
                _ => return Err(format!("{} --host {host} printed JSON that is not a map", path.display())),
            }
        }
    }
    // Every host's variables on each of its entries; a host only under _meta is ungrouped.
    for host in hostvars.keys().filter(|h| listed.binary_search(h).is_err()) {
        let ungrouped = tree.entry("ungrouped").or_insert_with(|| json!({}));
        ungrouped["hosts"][host.as_str()] = Value::Null;
    }
    for group in tree.values_mut() {
        if let Some(Value::Object(hosts)) = group.get_mut("hosts") {
            for (host, vars) in hosts.iter_mut() {
                *vars = hostvars.get(host).cloned().unwrap_or_else(|| json!({}));
            }
        }
    }
    serde_json::to_string(&Value::Object(tree)).map_err(|e| e.to_string())
}

/// Runs `path args`, bounded in time and output, and parses its stdout as JSON.
fn run(path: &Path, args: &[&str]) -> Result<Value, String> {
    let shown = format!("{} {}", path.display(), args.join(" "));
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run inventory script {shown}: {e}"))?;
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let read = stdout.as_mut().map(|s| s.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut bytes));
        (bytes, read)
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.as_mut().map(|s| s.take(1 << 20).read_to_end(&mut bytes));
        bytes
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "inventory script {shown} did not finish within {} s",
                    TIMEOUT.as_secs()
                ));
            }
        }
    };
    let (bytes, _) = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let tail = {
        let text = String::from_utf8_lossy(&stderr);
        let lines: Vec<&str> = text.trim_end().lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    if !status.success() {
        return Err(format!("inventory script {shown} failed ({status}): {tail}"));
    }
    if bytes.len() > MAX_OUTPUT {
        return Err(format!("inventory script {shown} printed more than {} MiB", MAX_OUTPUT >> 20));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let tail = if tail.is_empty() { String::new() } else { format!("; its stderr: {tail}") };
        format!("inventory script {shown} printed invalid JSON: {e}{tail}")
    })
}
