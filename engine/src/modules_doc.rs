//! `engine modules`: module references rendered from the same schemas that parse arguments.
//!
//! [`arguments`] reads a module's schema into [`ArgumentDoc`]s; both this text reference and
//! the Markdown pages of `engine docs` render from it, so the two cannot disagree.

use std::fmt::Write as _;

use modules::ModuleSpec;
use serde_json::Value;

/// One argument of a module, as its schema describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentDoc {
    pub name: String,
    /// The type in playbook words: "string", "integer", "list of string", "map", "choice", ...
    pub kind: String,
    pub required: bool,
    /// The schema's default value (JSON), when it has one.
    pub default: Option<String>,
    /// The argument's doc comment (or its type's).
    pub description: String,
    /// For a choice: each allowed value (JSON) and what it means.
    pub choices: Vec<Choice>,
}

/// One allowed value of a choice argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The value as JSON, e.g. `"directory"`.
    pub value: String,
    /// Its doc comment; may be empty.
    pub description: String,
}

/// Every argument of `spec`, sorted by name.
pub fn arguments(spec: &ModuleSpec) -> Vec<ArgumentDoc> {
    let schema = spec.schema();
    let schema = schema.as_value();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out: Vec<ArgumentDoc> = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, prop)| {
            let target = resolve(prop, schema);
            ArgumentDoc {
                name: name.clone(),
                kind: type_of(prop, schema),
                required: required.contains(&name.as_str()),
                default: prop.get("default").map(Value::to_string),
                description: prop
                    .get("description")
                    .or_else(|| target.get("description"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                choices: enum_choices(target),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One line per module: its name and the first sentence of its description.
pub fn index() -> String {
    let mut out = String::from("Modules (`engine modules NAME` for the full reference):\n\n");
    for spec in modules::registry::all() {
        let summary = spec.summary();
        let first = one_line(first_sentence(&summary), 88);
        let stop = if first.ends_with('…') { "" } else { "." };
        let _ = writeln!(out, "  {:<10} {first}{stop}", spec.name);
        let _ = writeln!(out, "  {:<10} arguments: {}", "", spec.argument_names().join(", "));
    }
    out
}

/// The text up to the first full stop that ends a sentence.
pub fn first_sentence(text: &str) -> &str {
    // A full stop followed by a space, and not the end of an ellipsis ("-ca=... -profile").
    let end = text.char_indices().find(|(i, c)| {
        *c == '.' && text[i + 1..].starts_with(char::is_whitespace) && !text[..*i].ends_with('.')
    });
    end.map_or(text.trim_end_matches('.'), |(i, _)| &text[..i])
}

/// `text` on one line, cut at a word boundary to at most `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= width {
        return flat;
    }
    let cut: String = flat.chars().take(width).collect();
    format!("{}…", cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head))
}

/// The full reference of one module, or `None` when there is no such module.
pub fn module(name: &str) -> Option<String> {
    let spec = modules::registry::find(name)?;
    let mut out = String::new();
    let _ = writeln!(out, "{}\n\n{}\n", spec.name, spec.summary());
    let _ = writeln!(out, "Arguments:");
    for arg in arguments(spec) {
        let req = if arg.required { "required" } else { "optional" };
        let _ = writeln!(out, "  {} ({}, {req})", arg.name, arg.kind);
        let mut text = arg.description.clone();
        if !arg.choices.is_empty() {
            let choices: Vec<String> = arg
                .choices
                .iter()
                .map(|c| {
                    if c.description.is_empty() {
                        c.value.clone()
                    } else {
                        format!("{} ({})", c.value, c.description)
                    }
                })
                .collect();
            text.push_str(&format!("\nOne of: {}", choices.join(", ")));
        }
        if let Some(default) = &arg.default {
            text.push_str(&format!("\nDefault: {default}"));
        }
        for line in text.lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
    if !spec.outputs.is_empty() {
        let _ = writeln!(out, "\nOutputs (read with task.output(\"NAME\")):");
        for (output, what) in spec.outputs {
            let _ = writeln!(out, "  {output}: {what}");
        }
    }
    let _ = writeln!(out, "\nExample:");
    for line in spec.example.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(
        out,
        "\nUnknown arguments are errors. In a playbook: host.{}(\"task name\", #{{ ... }})",
        spec.name
    );
    Some(out)
}

/// Follows a `$ref`, also inside `anyOf: [{$ref}, {type: null}]` (an optional field).
fn resolve<'a>(prop: &'a Value, root: &'a Value) -> &'a Value {
    let reference = prop
        .get("$ref")
        .or_else(|| prop.get("anyOf")?.as_array()?.iter().find_map(|alternative| alternative.get("$ref")));
    match reference.and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => root.get("$defs").and_then(|d| d.get(name)).unwrap_or(prop),
        None => prop,
    }
}

/// The allowed values of an enum schema: plain `enum` lists, and `oneOf`/`anyOf` variants
/// (each a `const`, or an `enum` of one or more values sharing one doc comment).
fn enum_choices(schema: &Value) -> Vec<Choice> {
    let plain = |v: &Value| Choice { value: v.to_string(), description: String::new() };
    let mut choices: Vec<Choice> =
        schema.get("enum").and_then(Value::as_array).into_iter().flatten().map(plain).collect();
    let variants = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array);
    for variant in variants.into_iter().flatten() {
        let description = variant.get("description").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&Value> = match (variant.get("const"), variant.get("enum").and_then(Value::as_array))
        {
            (Some(value), _) => vec![value],
            (None, Some(values)) => values.iter().collect(),
            (None, None) => Vec::new(),
        };
        for value in values {
            choices.push(Choice { value: value.to_string(), description: description.to_owned() });
        }
    }
    choices
}

fn type_of(prop: &Value, root: &Value) -> String {
    let target = resolve(prop, root);
    if !enum_choices(target).is_empty() {
        return "choice".into();
    }
    let named = |t: &str| match t {
        "array" => {
            format!("list of {}", target.get("items").map_or("any".into(), |i| type_of(i, root)))
        }
        "object" => "map".into(),
        other => other.into(),
    };
    match target.get("type") {
        Some(Value::String(t)) => named(t),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(named)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => target
            .get("anyOf")
            .and_then(Value::as_array)
            .map(|alts| {
                alts.iter().map(|a| type_of(a, root)).filter(|t| t != "null").collect::<Vec<_>>().join(" or ")
            })
            .unwrap_or_else(|| "any".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argument(module: &str, name: &str) -> ArgumentDoc {
        let spec = modules::registry::find(module).unwrap();
        arguments(spec).into_iter().find(|a| a.name == name).unwrap()
    }

    #[test]
    fn arguments_come_from_the_schema() {
        let path = argument("file", "path");
        assert_eq!((path.kind.as_str(), path.required), ("string", true));
        let state = argument("file", "state");
        assert_eq!(state.kind, "choice");
        let values: Vec<&str> = state.choices.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(values, ["\"file\"", "\"directory\"", "\"absent\""]);
        assert_eq!(argument("apt", "names").kind, "list of string");
        assert_eq!(argument("command", "env").default.as_deref(), Some("{}"));
    }

    /// Variants that share no doc comment come as one `enum` inside `oneOf`: all of them count.
    #[test]
    fn every_choice_is_listed() {
        let values: Vec<String> =
            argument("kubectl", "action").choices.into_iter().map(|c| c.value).collect();
        for action in ["apply", "get", "delete", "patch", "wait", "kube_proxy_server"] {
            assert!(values.contains(&format!("\"{action}\"")), "{action} missing from {values:?}");
        }
    }
}
