//! The YAML walk (Ansible's YAML inventory: `all:` / `children:` / `hosts:` / `vars:`), into
//! [`Raw`]. Strict: a key that is not `hosts`, `children` or `vars` in a group is an error, and
//! so is a host entry that is not a map. Host keys may be ranges (`web[01:10]`).

use serde_yaml_ng::{Mapping, Value as Yaml};

use super::Vars;
use super::model::Raw;
use super::range;

pub(super) struct ParseError {
    pub(super) line: Option<usize>,
    pub(super) message: String,
}

impl ParseError {
    pub(super) fn msg(message: impl Into<String>) -> Self {
        Self { line: None, message: message.into() }
    }
}

/// Parses YAML inventory text into `raw`, after what earlier sources put there.
pub(super) fn parse(text: &str, raw: &mut Raw) -> Result<(), ParseError> {
    parse_tree(text, raw).map_err(|mut e| {
        e.line = e.line.or_else(|| line_of_named_key(text, &e.message));
        e
    })
}

/// The line of the key an error names (its last `"quoted"` word: the most specific one, as in
/// `group "web" has an unknown key "hosst"`), for errors found after parsing, when the YAML tree
/// no longer knows its positions. The first line with that key wins, so it is a good guess, not
/// a proof.
fn line_of_named_key(text: &str, message: &str) -> Option<usize> {
    let quoted: Vec<&str> = message.split('"').skip(1).step_by(2).collect();
    let name = *quoted.last()?;
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            line.strip_prefix(name).is_some_and(|rest| rest.starts_with(':'))
                || line.strip_prefix(&format!("\"{name}\"")).is_some_and(|rest| rest.starts_with(':'))
        })
        .map(|index| index + 1)
}

fn parse_tree(text: &str, raw: &mut Raw) -> Result<(), ParseError> {
    let root: Yaml = serde_yaml_ng::from_str(text).map_err(|e| ParseError {
        line: e.location().map(|l| l.line()),
        message: format!("not valid YAML: {e}"),
    })?;
    let Yaml::Mapping(root) = root else {
        return Err(ParseError::msg("an inventory is a YAML map whose top key is `all:`"));
    };
    for (name, body) in &root {
        let name = key_name(name)?;
        group(raw, &name, body, &[])?;
    }
    Ok(())
}

/// Walks one group; `lineage` is the chain of enclosing groups (to catch a group inside itself).
fn group(raw: &mut Raw, name: &str, body: &Yaml, lineage: &[String]) -> Result<(), ParseError> {
    if lineage.iter().any(|g| g == name) {
        return Err(ParseError::msg(format!(
            "group {name:?} contains itself ({} -> {name})",
            lineage.join(" -> ")
        )));
    }
    validate_name("group", name)?;
    let body = match body {
        Yaml::Null => Mapping::new(),
        Yaml::Mapping(m) => m.clone(),
        _ => {
            return Err(ParseError::msg(format!("group {name:?} must be a map of hosts/children/vars")));
        }
    };
    raw.group(name);
    for (key, value) in &body {
        match key_name(key)?.as_str() {
            "vars" => {
                let vars = to_vars(value, &format!("vars of group {name:?}"))?;
                raw.group(name).vars.extend(vars);
            }
            "hosts" => {}
            "children" => {}
            other => {
                let near = contract::suggest::did_you_mean(other, ["hosts", "children", "vars"]);
                let hint =
                    if near.is_empty() { "; expected hosts, children or vars".to_owned() } else { near };
                return Err(ParseError::msg(format!("group {name:?} has an unknown key {other:?}{hint}")));
            }
        }
    }
    if let Some(hosts) = body.get("hosts") {
        let hosts = match hosts {
            Yaml::Null => Mapping::new(),
            Yaml::Mapping(m) => m.clone(),
            _ => {
                return Err(ParseError::msg(format!("hosts of group {name:?} must be a map of host names")));
            }
        };
        for (pattern, host_vars) in &hosts {
            let pattern = key_name(pattern)?;
            let names = range::expand(&pattern).map_err(ParseError::msg)?;
            let own = to_vars(host_vars, &format!("vars of host {pattern:?}"))?;
            for host in names {
                validate_name("host", &host)?;
                raw.add_host(name, &host, own.clone());
            }
        }
    }
    if let Some(children) = body.get("children") {
        let children = match children {
            Yaml::Null => Mapping::new(),
            Yaml::Mapping(m) => m.clone(),
            _ => {
                return Err(ParseError::msg(format!("children of group {name:?} must be a map of groups")));
            }
        };
        let mut lineage = lineage.to_vec();
        lineage.push(name.to_owned());
        for (child, child_body) in &children {
            let child = key_name(child)?;
            group(raw, &child, child_body, &lineage)?;
            raw.add_child(name, &child);
        }
    }
    Ok(())
}

fn key_name(key: &Yaml) -> Result<String, ParseError> {
    match key {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        other => Err(ParseError::msg(format!("expected a name, found {other:?}"))),
    }
}

pub(super) fn validate_name(kind: &str, name: &str) -> Result<(), ParseError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ParseError::msg(format!(
            "invalid {kind} name {name:?}: use letters, digits, '-', '_', '.' or ':'"
        )))
    }
}

pub(super) fn to_vars(value: &Yaml, what: &str) -> Result<Vars, ParseError> {
    match value {
        Yaml::Null => Ok(Vars::new()),
        Yaml::Mapping(_) => match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(map)) => {
                for (key, value) in &map {
                    if holds_marker_char(key) || holds_marker_char(&value.to_string()) {
                        return Err(ParseError::msg(format!(
                            "{what}: variable \"{key}\" holds U+2063 (INVISIBLE SEPARATOR), which engine \
                             reserves for run-time references (another task's output would be read in its place)"
                        )));
                    }
                }
                Ok(map)
            }
            Ok(_) => Err(ParseError::msg(format!("{what} must be a map"))),
            Err(e) => Err(ParseError::msg(format!("{what}: {e}"))),
        },
        _ => Err(ParseError::msg(format!("{what} must be a map, found {}", kind_of(value)))),
    }
}

/// Whether `text` holds the character that sets off run-time reference markers (see
/// `contract::deferred`). JSON text keeps it as is (serde_json escapes only control characters).
pub(super) fn holds_marker_char(text: &str) -> bool {
    text.contains(contract::deferred::CLOSE)
}

fn kind_of(value: &Yaml) -> &'static str {
    match value {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a map",
        Yaml::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that looks like a run-time reference marker would make a task read another
    /// task's output (a key, say) in its place: refused, with its line.
    #[test]
    fn values_holding_the_reference_marker_are_refused() {
        let marker = format!("{}output|0|stdout{}", contract::deferred::open(), contract::deferred::CLOSE);
        for text in [
            format!("all:\n  hosts:\n    a:\n      evil: \"{marker}\"\n"),
            format!("all:\n  vars:\n    evil: [\"x\", \"{marker}\"]\n  hosts:\n    a:\n"),
        ] {
            let Err(e) = parse(&text, &mut Raw::default()) else { panic!("accepted a marker in {text:?}") };
            assert!(e.message.contains("variable \"evil\" holds U+2063"), "{}", e.message);
            assert_eq!(e.line, Some(if text.contains("  vars:") { 3 } else { 4 }), "{}", e.message);
        }
    }

    #[test]
    fn errors_found_after_parsing_point_at_their_line() {
        let text = "all:\n  children:\n    web:\n      hosst:\n        a:\n";
        let Err(e) = parse(text, &mut Raw::default()) else { panic!("accepted a misspelled key") };
        assert_eq!(e.line, Some(4), "{}", e.message);
        let text = "all:\n  hosts:\n    a:\n      - 1\n";
        let Err(e) = parse(text, &mut Raw::default()) else { panic!("accepted a list of vars") };
        assert_eq!(e.line, Some(3), "{}", e.message);
    }
}
