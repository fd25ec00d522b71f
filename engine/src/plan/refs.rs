//! Values known only at run time, referenced from task arguments: other tasks' outputs and
//! hosts' facts.
//!
//! A playbook writes `t.stdout`, `t.output("key")` or `h.fact("default_ipv4.address")`. Each
//! yields a marker string, which can be interpolated into other strings. Sealing finds output
//! markers to infer data edges; the runner replaces every marker with the real value just
//! before the task runs (gathering the facts it needs first): [`Filler`] is the
//! [`contract::arg::Resolver`] that fills them into a task's sealed, typed arguments.

use contract::arg::Resolver;
use contract::deferred::{CLOSE, open};
use serde_json::Value;

use crate::ids::TaskId;

/// One run-time value a task argument refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ref {
    /// Output `key` of task `task`.
    Output { task: TaskId, key: String },
    /// The fact at dotted `path` of inventory host `host`.
    Fact { host: String, path: String },
}

impl Ref {
    /// The marker string that stands for this value inside arguments.
    pub fn marker(&self) -> String {
        match self {
            Ref::Output { task, key } => format!("{}output|{}|{key}{CLOSE}", open(), task.0),
            Ref::Fact { host, path } => format!("{}fact|{host}|{path}{CLOSE}", open()),
        }
    }

    /// How the value is shown where it cannot be resolved (DOT, messages).
    pub fn describe(&self) -> String {
        match self {
            Ref::Output { task, key } => format!("output {key:?} of task {task}"),
            Ref::Fact { host, path } => format!("fact {path:?} of {host}"),
        }
    }
}

/// The marker for output `key` of task `task`.
pub fn marker(task: TaskId, key: &str) -> String {
    Ref::Output { task, key: key.to_owned() }.marker()
}

/// Every reference inside `value`, in order of appearance.
pub fn references(value: &Value) -> Vec<Ref> {
    let mut found = Vec::new();
    visit_strings(value, &mut |text| found.extend(parse(text)));
    found
}

/// Whether `text` holds a reference.
pub fn holds_reference(text: &str) -> bool {
    !parse(text).is_empty()
}

fn parse(text: &str) -> Vec<Ref> {
    let mut refs = Vec::new();
    let mut rest = text;
    let open = open();
    while let Some(start) = rest.find(open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(CLOSE) else { break };
        let mut parts = after[..end].splitn(3, '|');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("output"), Some(task), Some(key)) => {
                if let Ok(task) = task.parse() {
                    refs.push(Ref::Output { task: TaskId(task), key: key.to_owned() });
                }
            }
            (Some("fact"), Some(host), Some(path)) => {
                refs.push(Ref::Fact { host: host.to_owned(), path: path.to_owned() });
            }
            _ => {}
        }
        rest = &after[end + CLOSE.len_utf8()..];
    }
    refs
}

fn visit_strings(value: &Value, f: &mut dyn FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

/// Replaces every marker in `value` with `lookup(ref)`. A string that is exactly one marker
/// takes the value's own JSON type; markers inside longer strings are interpolated as text.
/// Fails with the first reference `lookup` has no value for.
pub fn resolve(value: &Value, lookup: &dyn Fn(&Ref) -> Option<Value>) -> Result<Value, Ref> {
    let find = |r: &Ref| lookup(r).ok_or_else(|| r.clone());
    Ok(match value {
        Value::String(s) if s.contains(open()) => {
            let refs = parse(s);
            if let [only] = refs.as_slice()
                && *s == only.marker()
            {
                return find(only);
            }
            // One left-to-right pass: a resolved value is never searched for markers again.
            let mut text = String::with_capacity(s.len());
            let mut rest = s.as_str();
            for r in refs {
                let marker = r.marker();
                let Some(at) = rest.find(&marker) else { continue };
                text.push_str(&rest[..at]);
                match find(&r)? {
                    Value::String(v) => text.push_str(&v),
                    other => text.push_str(&other.to_string()),
                }
                rest = &rest[at + marker.len()..];
            }
            text.push_str(rest);
            Value::String(text)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| resolve(v, lookup)).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), resolve(v, lookup)?))).collect::<Result<_, Ref>>()?,
        ),
        other => other.clone(),
    })
}

/// Fills references into a task's arguments from `lookup` (see [`resolve`]), and remembers
/// each argument it filled in, with its path and value, so the runner can hide the secret ones.
pub struct Filler<'a> {
    lookup: &'a dyn Fn(&Ref) -> Option<Value>,
    /// `(path, value)` of each argument that held a reference, in the order filled in.
    pub filled: Vec<(String, Value)>,
}

impl std::fmt::Debug for Filler<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filler").field("filled", &self.filled.len()).finish_non_exhaustive()
    }
}

impl<'a> Filler<'a> {
    pub fn new(lookup: &'a dyn Fn(&Ref) -> Option<Value>) -> Self {
        Self { lookup, filled: Vec::new() }
    }
}

impl Resolver for Filler<'_> {
    fn resolve(&mut self, path: &str, text: &str) -> Option<Value> {
        if !holds_reference(text) {
            return Some(Value::String(text.to_owned()));
        }
        let value = resolve(&Value::String(text.to_owned()), self.lookup).ok()?;
        self.filled.push((path.to_owned(), value.clone()));
        Some(value)
    }
}

/// The name of the argument at `path`, as a secret's name is judged: `config.token` and
/// `tokens[2]` are a `token`.
pub fn argument_name(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_and_resolves_markers() {
        let fact = Ref::Fact { host: "etcd0".into(), path: "default_ipv4.address".into() };
        let args = json!({
            "content": format!("token={}\nip={}\n", marker(TaskId(3), "stdout"), fact.marker()),
            "n": marker(TaskId(4), "rc"),
        });
        assert_eq!(
            references(&args),
            vec![
                Ref::Output { task: TaskId(3), key: "stdout".into() },
                fact.clone(),
                Ref::Output { task: TaskId(4), key: "rc".into() }
            ]
        );
        let resolved = resolve(&args, &|r| match r {
            Ref::Output { task: TaskId(3), .. } => Some(json!("abc")),
            Ref::Output { task: TaskId(4), .. } => Some(json!(0)),
            Ref::Fact { .. } => Some(json!("10.0.0.1")),
            Ref::Output { .. } => None,
        })
        .unwrap();
        assert_eq!(resolved, json!({"content": "token=abc\nip=10.0.0.1\n", "n": 0}));
        // A value that happens to contain another marker is not resolved again.
        let tricky = json!(format!("{}{}", marker(TaskId(1), "a"), marker(TaskId(2), "b")));
        let resolved = resolve(&tricky, &|r| match r {
            Ref::Output { task: TaskId(1), .. } => Some(json!(marker(TaskId(2), "b"))),
            _ => Some(json!("B")),
        })
        .unwrap();
        assert_eq!(resolved, json!(format!("{}B", marker(TaskId(2), "b"))));
        let err = resolve(&json!(marker(TaskId(9), "x")), &|_| None).unwrap_err();
        assert_eq!(err.describe(), "output \"x\" of task #9");
    }

    #[test]
    fn the_filler_fills_in_typed_values_and_remembers_them() {
        let lookup = |r: &Ref| match r {
            Ref::Output { task: TaskId(1), .. } => Some(json!(6443)),
            _ => None,
        };
        let mut filler = Filler::new(&lookup);
        let one = marker(TaskId(1), "port");
        assert_eq!(filler.resolve("port", &one), Some(json!(6443)));
        assert_eq!(filler.resolve("text", &format!("at {one}")), Some(json!("at 6443")));
        assert_eq!(filler.resolve("plain", "no reference"), Some(json!("no reference")));
        assert_eq!(filler.resolve("gone", &marker(TaskId(2), "x")), None);
        assert_eq!(filler.filled, [("port".to_owned(), json!(6443)), ("text".to_owned(), json!("at 6443"))]);
        assert!(holds_reference(&one) && !holds_reference("plain"));
        assert_eq!(
            [
                argument_name("token"),
                argument_name("config.bootstrapTokens[0].token"),
                argument_name("names[2]")
            ],
            ["token", "token", "names"]
        );
    }
}
