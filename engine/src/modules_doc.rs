//! `engine modules`: module references rendered from the same schemas that parse arguments.

use std::fmt::Write as _;

use serde_json::Value;

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
fn first_sentence(text: &str) -> &str {
    let end = text.char_indices().find(|(i, c)| *c == '.' && text[i + 1..].starts_with(char::is_whitespace));
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
    let schema = spec.schema();
    let schema = schema.as_value();
    let mut out = String::new();
    let _ = writeln!(out, "{}\n\n{}\n", spec.name, spec.summary());
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(out, "Arguments:");
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (arg, prop) in props {
            let kind = type_of(prop, schema);
            let req = if required.contains(&arg.as_str()) { "required" } else { "optional" };
            let _ = writeln!(out, "  {arg} ({kind}, {req})");
            if let Some(desc) = description(prop, schema) {
                for line in desc.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
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

fn description(prop: &Value, root: &Value) -> Option<String> {
    let own = prop.get("description").and_then(Value::as_str);
    let target = resolve(prop, root);
    let mut text = own.or_else(|| target.get("description").and_then(Value::as_str))?.to_owned();
    let choices = enum_choices(target);
    if !choices.is_empty() {
        text.push_str(&format!("\nOne of: {}", choices.join(", ")));
    }
    if let Some(default) = prop.get("default") {
        text.push_str(&format!("\nDefault: {default}"));
    }
    Some(text)
}

fn enum_choices(schema: &Value) -> Vec<String> {
    let variants = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array);
    let mut choices = Vec::new();
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        choices.extend(values.iter().map(|v| v.to_string()));
    }
    for v in variants.into_iter().flatten() {
        let desc = v.get("description").and_then(Value::as_str).unwrap_or_default();
        if let Some(c) = v.get("const").or_else(|| v.get("enum").and_then(|e| e.get(0))) {
            choices.push(if desc.is_empty() { c.to_string() } else { format!("{c} ({desc})") });
        }
    }
    choices
}

fn type_of(prop: &Value, root: &Value) -> String {
    let target = resolve(prop, root);
    if !enum_choices(target).is_empty() {
        return "choice".into();
    }
    match target.get("type") {
        Some(Value::String(t)) => match t.as_str() {
            "array" => {
                format!("list of {}", target.get("items").map_or("values".into(), |i| type_of(i, root)))
            }
            "object" => "map".into(),
            other => other.into(),
        },
        Some(Value::Array(types)) => {
            types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" or ")
        }
        _ => target
            .get("anyOf")
            .and_then(Value::as_array)
            .map(|alts| {
                alts.iter().map(|a| type_of(a, root)).filter(|t| t != "null").collect::<Vec<_>>().join(" or ")
            })
            .unwrap_or_else(|| "value".into()),
    }
}
