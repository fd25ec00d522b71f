//! References to other tasks' outputs inside task arguments.
//!
//! A playbook writes `t.stdout` or `t.output("key")`. That yields a marker string, which can be
//! interpolated into other strings. Sealing finds the markers to infer data edges; the runner
//! replaces them with the real values just before the task runs.

use serde_json::Value;

const OPEN: &str = "\u{2063}engine-output:";
const CLOSE: char = '\u{2063}';

/// The marker for output `key` of task number `task`.
pub fn marker(task: usize, key: &str) -> String {
    format!("{OPEN}{task}:{key}{CLOSE}")
}

/// Every `(task, key)` referenced anywhere inside `value`.
pub fn references(value: &Value) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    visit_strings(value, &mut |text| found.extend(parse(text)));
    found
}

fn parse(text: &str) -> Vec<(usize, String)> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else { break };
        if let Some((task, key)) = after[..end].split_once(':')
            && let Ok(task) = task.parse()
        {
            refs.push((task, key.to_owned()));
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

/// Replaces every marker in `value` with `lookup(task, key)`. A string that is exactly one
/// marker takes the output's own JSON type; markers inside longer strings are interpolated as text.
pub fn resolve(value: &Value, lookup: &dyn Fn(usize, &str) -> Option<Value>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) if s.contains(OPEN) => {
            let refs = parse(s);
            if let [(task, key)] = refs.as_slice()
                && *s == marker(*task, key)
            {
                return lookup(*task, key).ok_or_else(|| format!("task #{task} has no output {key:?}"));
            }
            let mut text = s.clone();
            for (task, key) in refs {
                let v = lookup(task, &key).ok_or_else(|| format!("task #{task} has no output {key:?}"))?;
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                text = text.replace(&marker(task, &key), &v);
            }
            Value::String(text)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| resolve(v, lookup)).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), resolve(v, lookup)?))).collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Replaces markers with a readable `<output KEY of #TASK>` for display (DOT, dry-run).
pub fn display(text: &str) -> String {
    let mut out = text.to_owned();
    for (task, key) in parse(text) {
        out = out.replace(&marker(task, &key), &format!("<{key} of #{task}>"));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_and_resolves_markers() {
        let args = json!({"content": format!("token={}\n", marker(3, "stdout")), "n": marker(4, "rc")});
        assert_eq!(references(&args), vec![(3, "stdout".to_owned()), (4, "rc".to_owned())]);
        let resolved = resolve(&args, &|task, key| match (task, key) {
            (3, "stdout") => Some(json!("abc")),
            (4, "rc") => Some(json!(0)),
            _ => None,
        })
        .unwrap();
        assert_eq!(resolved, json!({"content": "token=abc\n", "n": 0}));
        assert!(resolve(&json!(marker(9, "x")), &|_, _| None).is_err());
    }
}
