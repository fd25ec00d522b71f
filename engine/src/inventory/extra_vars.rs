//! `-e` / `--extra-vars`, read as Ansible reads them (`load_extra_vars` in ansible-core):
//!
//! ```text
//!  -e @vars.yml            a YAML or JSON file of variables (relative to the working directory)
//!  -e '{"n": 3, "on": true}'   YAML/JSON text starting with `{` (or `[`, which is refused: not a map)
//!  -e 'a=1 b="two words"'  key=value pairs, split as a shell would; values stay strings
//!  -e 'n: 3'               (engine only) YAML map text without `=`: Ansible would not read it
//! ```
//!
//! Several `-e` merge in order, a later one's value for the same (top-level) name winning
//! (Ansible's default `hash_behaviour = replace`). A path without `@` is refused with the fix,
//! as Ansible does. Variables files are also what `load_vars(..)` reads from a playbook.

use std::path::{Path, PathBuf};

use miette::Diagnostic;
use serde_yaml_ng::Value as Yaml;

use super::{Vars, yaml_to_vars};

/// Why a `-e` value, or a variables file, cannot be used.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ExtraVarsError {
    #[error("cannot read variables file {}", path.display())]
    #[diagnostic(code(engine::extra_vars))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("variables file {}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    #[diagnostic(code(engine::extra_vars))]
    File { path: PathBuf, line: Option<usize>, message: String },

    #[error("-e {given:?}: {message}")]
    #[diagnostic(code(engine::extra_vars))]
    Arg { given: String, message: String },
}

/// Every `-e` value in order, merged (a later value for the same name wins). Files named with
/// `@` are relative to `cwd`.
pub fn parse_extra_vars(args: &[String], cwd: &Path) -> Result<Vars, ExtraVarsError> {
    let mut vars = Vars::new();
    for given in args {
        vars.extend(parse_one(given, cwd)?);
    }
    Ok(vars)
}

fn parse_one(given: &str, cwd: &Path) -> Result<Vars, ExtraVarsError> {
    let arg = |message: String| ExtraVarsError::Arg { given: given.to_owned(), message };
    let text = given.trim();
    if text.is_empty() {
        return Ok(Vars::new());
    }
    if let Some(file) = text.strip_prefix('@') {
        return read_vars_file(&cwd.join(file));
    }
    if text.starts_with('/') || text.starts_with('.') {
        return Err(arg(format!("a file of variables is named with @: -e @{text}")));
    }
    if text.starts_with('{') || text.starts_with('[') || !text.contains('=') {
        let value: Yaml =
            serde_yaml_ng::from_str(text).map_err(|e| arg(format!("not valid YAML or JSON: {e}")))?;
        if !matches!(value, Yaml::Mapping(_)) {
            return Err(arg(if text.contains(['{', '[', ':']) {
                "the variables must be a map (name: value)".to_owned()
            } else {
                "expected KEY=VALUE, a {JSON or YAML} map, or @FILE".to_owned()
            }));
        }
        return yaml_to_vars(&value, "the variables").map_err(|(_, message)| arg(message));
    }
    key_values(text).map_err(arg)
}

/// `a=1 b="x y"`: words split as a shell would, each `KEY=VALUE`; values stay strings.
fn key_values(text: &str) -> Result<Vars, String> {
    let words = shlex::split(text).ok_or("unbalanced quotes")?;
    let mut pairs = serde_yaml_ng::Mapping::new();
    for word in words {
        let (key, value) = word.split_once('=').ok_or_else(|| {
            format!("expected KEY=VALUE, got {word:?} (several pairs are separated by spaces)")
        })?;
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name {key:?}: use letters, digits and '_'"));
        }
        pairs.insert(Yaml::String(key.to_owned()), Yaml::String(value.to_owned()));
    }
    yaml_to_vars(&Yaml::Mapping(pairs), "the variables").map_err(|(_, message)| message)
}

/// A YAML or JSON file holding a map of variables (an empty file holds none).
pub fn read_vars_file(path: &Path) -> Result<Vars, ExtraVarsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ExtraVarsError::Read { path: path.to_owned(), source })?;
    let invalid = |line, message| ExtraVarsError::File { path: path.to_owned(), line, message };
    let value: Yaml = serde_yaml_ng::from_str(&text)
        .map_err(|e| invalid(e.location().map(|l| l.line()), format!("not valid YAML or JSON: {e}")))?;
    yaml_to_vars(&value, "this variables file").map_err(|(line, message)| invalid(line, message))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(args: &[&str]) -> Result<Vars, ExtraVarsError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        parse_extra_vars(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(), dir)
    }

    #[test]
    fn key_value_pairs_stay_strings_and_split_like_a_shell() {
        let vars = parse(&["n=3 on=true", r#"msg="two words""#]).unwrap();
        assert_eq!(serde_json::Value::Object(vars), json!({ "n": "3", "on": "true", "msg": "two words" }));
    }

    #[test]
    fn json_and_yaml_maps_are_typed() {
        let vars = parse(&[r#"{"n": 3, "list": [1, "a"], "m": {"k": false}}"#, "ratio: 0.5"]).unwrap();
        assert_eq!(
            serde_json::Value::Object(vars),
            json!({ "n": 3, "list": [1, "a"], "m": { "k": false }, "ratio": 0.5 })
        );
    }

    #[test]
    fn a_later_value_wins_per_name() {
        let vars = parse(&["a=1 b=1", r#"{"b": 2, "c": {"x": 1}}"#, r#"{"c": {"y": 2}}"#]).unwrap();
        assert_eq!(serde_json::Value::Object(vars), json!({ "a": "1", "b": 2, "c": { "y": 2 } }));
    }

    #[test]
    fn bad_values_are_refused_with_the_fix() {
        let message = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(
            message(&["./vars.yml"]),
            r#"-e "./vars.yml": a file of variables is named with @: -e @./vars.yml"#
        );
        assert_eq!(message(&["[1, 2]"]), r#"-e "[1, 2]": the variables must be a map (name: value)"#);
        assert_eq!(
            message(&["version"]),
            r#"-e "version": expected KEY=VALUE, a {JSON or YAML} map, or @FILE"#
        );
        assert_eq!(
            message(&["a-b=1"]),
            r#"-e "a-b=1": invalid variable name "a-b": use letters, digits and '_'"#
        );
        assert!(message(&[r#"{"a": 1"#]).starts_with(r#"-e "{\"a\": 1": not valid YAML or JSON: "#));
    }

    #[test]
    fn files_name_the_line_that_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.yml"), "a: 1\nb: [1,\n").unwrap();
        std::fs::write(dir.path().join("list.yml"), "- a\n- b\n").unwrap();
        std::fs::write(dir.path().join("ok.json"), r#"{"a": [1, 2], "b": null}"#).unwrap();
        let at = |name: &str| parse_extra_vars(&[format!("@{name}")], dir.path());
        let bad = at("bad.yml").unwrap_err();
        assert!(matches!(bad, ExtraVarsError::File { line: Some(3), .. }), "{bad:?}");
        assert_eq!(
            at("list.yml").unwrap_err().to_string(),
            format!(
                "variables file {}: this variables file must be a map, found a list",
                dir.path().join("list.yml").display()
            )
        );
        assert_eq!(serde_json::Value::Object(at("ok.json").unwrap()), json!({ "a": [1, 2], "b": null }));
        assert!(matches!(at("missing.yml").unwrap_err(), ExtraVarsError::Read { .. }));
    }
}
