//! The functions registered on the playbook engine, as Rhai's metadata reports them, with
//! Rust type names turned into the names a playbook author sees (`Task`, `string`, `array`).

use std::fmt;

use rhai::Engine;
use serde::Deserialize;

/// One registered native function: its Rhai name (`get$name` for a property getter) and the
/// playbook-level types of its parameters and result.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FnSignature {
    pub name: String,
    pub params: Vec<String>,
    /// `None` when the function returns nothing.
    pub returns: Option<String>,
}

impl FnSignature {
    /// The key the doc table uses: `name(Type, Type)`, e.g. `after(Task, array)`.
    pub fn key(&self) -> String {
        format!("{}({})", self.name, self.params.join(", "))
    }

    /// The property name, for a getter (`get$name` → `name`).
    pub fn property(&self) -> Option<&str> {
        self.name.strip_prefix("get$")
    }
}

impl fmt::Display for FnSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key())?;
        if let Some(returns) = &self.returns {
            write!(f, " -> {returns}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    custom_types: Vec<CustomType>,
    #[serde(default)]
    functions: Vec<Function>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomType {
    type_name: String,
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Function {
    name: String,
    #[serde(default)]
    params: Vec<Param>,
    return_type: Option<String>,
}

#[derive(Deserialize)]
struct Param {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// What the playbook engine registers: custom types (display names) and native functions,
/// both sorted. Rhai's own packages are left out.
#[derive(Debug, Clone, Default)]
pub struct Registered {
    pub types: Vec<String>,
    pub functions: Vec<FnSignature>,
}

/// Reads the functions and types registered on `engine` (not Rhai's standard packages).
pub(crate) fn registered(engine: &Engine) -> Result<Registered, String> {
    let json = engine.gen_fn_metadata_to_json(false).map_err(|e| format!("Rhai metadata: {e}"))?;
    let metadata: Metadata = serde_json::from_str(&json).map_err(|e| format!("Rhai metadata: {e}"))?;
    let custom: Vec<(String, String)> =
        metadata.custom_types.iter().map(|t| (t.type_name.clone(), t.display_name.clone())).collect();
    let mut functions: Vec<FnSignature> = metadata
        .functions
        .iter()
        .map(|f| FnSignature {
            name: f.name.clone(),
            params: f
                .params
                .iter()
                .map(|p| display_type(p.kind.as_deref().unwrap_or("?"), &custom))
                .collect(),
            returns: f.return_type.as_deref().map(|t| display_type(t, &custom)).filter(|t| t != "()"),
        })
        .collect();
    functions.sort();
    functions.dedup();
    let mut types: Vec<String> = custom.into_iter().map(|(_, display)| display).collect();
    types.sort();
    Ok(Registered { types, functions })
}

/// A Rust or Rhai type name as a playbook author knows it: `&mut Host` → `Host`,
/// `Result<TaskHandle, Box<EvalAltResult>>` → `Task`, `alloc::string::String` → `string`.
/// `custom` maps registered Rust type names to their Rhai names.
pub(crate) fn display_type(raw: &str, custom: &[(String, String)]) -> String {
    let raw = raw.trim();
    let raw = raw.strip_prefix("&mut ").or_else(|| raw.strip_prefix('&')).unwrap_or(raw).trim();
    if let Some(inner) = generic_argument(raw, "Result") {
        return display_type(&inner, custom);
    }
    if generic_argument(raw, "Vec").is_some() {
        return "array".to_owned();
    }
    if let Some((_, display)) = custom.iter().find(|(rust, display)| rust == raw || display == raw) {
        return display.clone();
    }
    // Rhai's signatures of a failed call list alternatives: `&str | ImmutableString | String`.
    let first = raw.split(" | ").next().unwrap_or(raw);
    let last = first.rsplit("::").next().unwrap_or(first);
    match last {
        "str" | "String" | "ImmutableString" | "string" => "string",
        "Dynamic" => "any",
        "i64" | "INT" | "int" => "int",
        "f64" | "FLOAT" | "float" => "float",
        "bool" => "bool",
        "Array" | "array" => "array",
        "Map" | "map" => "map",
        "FnPtr" | "Fn" => "Fn",
        "()" | "" => "()",
        other => {
            return custom
                .iter()
                .find(|(rust, _)| rust.rsplit("::").next() == Some(other))
                .map_or_else(|| other.to_owned(), |(_, display)| display.clone());
        }
    }
    .to_owned()
}

/// The first type argument of `Name<...>` (any path prefix), up to its top-level comma.
fn generic_argument(raw: &str, name: &str) -> Option<String> {
    let open = raw.find('<')?;
    let head = &raw[..open];
    if head.rsplit("::").next() != Some(name) || !raw.ends_with('>') {
        return None;
    }
    let inner = &raw[open + 1..raw.len() - 1];
    let mut depth = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return Some(inner[..i].to_owned()),
            _ => {}
        }
    }
    Some(inner.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom() -> Vec<(String, String)> {
        vec![("engine::playbook::handles::TaskHandle".into(), "Task".into())]
    }

    #[test]
    fn rust_types_become_playbook_types() {
        let c = custom();
        let result = "core::result::Result<engine::playbook::handles::TaskHandle,alloc::boxed::Box<rhai::types::error::EvalAltResult>>";
        assert_eq!(display_type(result, &c), "Task");
        assert_eq!(display_type("&mut Task", &c), "Task");
        assert_eq!(display_type("alloc::vec::Vec<rhai::types::dynamic::Dynamic>", &c), "array");
        assert_eq!(display_type("types::dynamic::Dynamic", &c), "any");
        assert_eq!(display_type("core::result::Result<alloc::string::String,Box<E>>", &c), "string");
        assert_eq!(display_type("&str | ImmutableString | String", &c), "string");
        assert_eq!(display_type("i64", &c), "int");
    }

    #[test]
    fn the_playbook_engine_lists_its_functions() {
        let registered = registered(&crate::playbook::reference_engine()).unwrap();
        assert_eq!(registered.types, ["Host", "Task", "Vars"]);
        let keys: Vec<String> = registered.functions.iter().map(FnSignature::key).collect();
        for key in [
            "host(string)",
            "after(Task, Task)",
            "after(Task, array)",
            "get$name(Host)",
            "file(Host, string, map)",
            "index$get$(Vars, string)",
        ] {
            assert!(keys.contains(&key.to_owned()), "{key} missing from {keys:?}");
        }
        for f in &registered.functions {
            assert!(!f.to_string().contains("::"), "unmapped Rust type in {f}");
        }
    }
}
