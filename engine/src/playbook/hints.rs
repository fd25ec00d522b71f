//! Messages for Rhai's "function not found": a misspelled function or method gets the nearest
//! names, and a known function called with the wrong types gets the signatures it has.

use crate::docs::signature::{self, FnSignature};

/// A readable message for Rhai's `Function not found: NAME (TYPE, TYPE)`, given its signature
/// part (`fiel (Host, &str | ImmutableString | String, map)`).
pub(super) fn function_not_found(signature: &str) -> String {
    let (name, args) = signature.split_once(" (").unwrap_or((signature, ")"));
    let name = name.trim();
    let args: Vec<String> = args
        .trim_end_matches(')')
        .split(", ")
        .filter(|a| !a.trim().is_empty())
        .map(|a| signature::display_type(a, &[]))
        .collect();
    let call = format!("{name}({})", args.join(", "));
    let engine = super::reference_engine();
    let api: Vec<FnSignature> = signature::registered(&engine).map(|r| r.functions).unwrap_or_default();
    // Rhai's own functions too (`len`, `push`, ...): "name(p: type, ...) -> type".
    let all = engine.gen_fn_signatures(true);
    let mut same_name: Vec<String> = api.iter().filter(|f| f.name == name).map(|f| f.to_string()).collect();
    if same_name.is_empty() {
        same_name = all.iter().filter(|s| s.split('(').next() == Some(name)).cloned().collect();
    }
    if !same_name.is_empty() {
        let mut listed: Vec<String> = same_name.into_iter().take(6).collect();
        listed.dedup();
        return format!(
            "`{name}` cannot be called with ({}); it takes: {}",
            args.join(", "),
            listed.join("; ")
        );
    }
    let mut names: Vec<&str> = api
        .iter()
        .filter(|f| f.property().is_none())
        .map(|f| f.name.as_str())
        .chain(all.iter().filter_map(|s| s.split('(').next()))
        .filter(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .collect();
    names.sort_unstable();
    names.dedup();
    let suggestion = modules::suggest::did_you_mean(name, names);
    if suggestion.is_empty() {
        format!("unknown function `{call}`; docs/reference/playbook-api.md lists the playbook's functions")
    } else {
        format!("unknown function `{call}`{suggestion}")
    }
}

/// A readable message for Rhai's dot-expression errors: an unknown property of a host or a
/// task gets the nearest property names; anything else is returned as it is.
pub(super) fn dot_error(message: &str) -> String {
    let quoted: Vec<&str> = message.split('\'').skip(1).step_by(2).collect();
    let [property, type_name] = quoted.as_slice() else {
        return message.to_owned();
    };
    if message.contains("a setter is not registered") {
        return format!("`{property}` of a {type_name} cannot be set: hosts and tasks are read-only");
    }
    let api = signature::registered(&super::reference_engine()).map(|r| r.functions).unwrap_or_default();
    let properties: Vec<&str> = api
        .iter()
        .filter(|f| f.params.first().map(String::as_str) == Some(*type_name))
        .filter_map(FnSignature::property)
        .collect();
    if properties.is_empty() {
        return format!("a {type_name} has no property `{property}`");
    }
    let suggestion = modules::suggest::did_you_mean(property, properties.iter().copied());
    if suggestion.is_empty() {
        format!("a {type_name} has no property `{property}`; its properties are: {}", properties.join(", "))
    } else {
        format!("a {type_name} has no property `{property}`{suggestion}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_property_gets_the_nearest_one() {
        let message = "Unknown property 'nmae' - a getter is not registered for type 'Host'";
        assert_eq!(dot_error(message), "a Host has no property `nmae`; did you mean `name`?");
        let message = "Unknown property 'zzzz' - a getter is not registered for type 'Task'";
        assert_eq!(
            dot_error(message),
            "a Task has no property `zzzz`; its properties are: host, id, name, rc, stderr, stdout"
        );
        assert_eq!(dot_error("something else"), "something else");
    }

    #[test]
    fn a_misspelled_method_gets_the_nearest_name() {
        let message = function_not_found("fiel (Host, &str | ImmutableString | String, map)");
        assert_eq!(message, "unknown function `fiel(Host, string, map)`; did you mean `file`?");
        assert_eq!(
            function_not_found("hots ()"),
            "unknown function `hots()`; did you mean `host` or `hosts`?"
        );
    }

    #[test]
    fn a_known_function_with_wrong_types_lists_its_signatures() {
        let message = function_not_found("file (Host, i64, map)");
        assert_eq!(
            message,
            "`file` cannot be called with (Host, int, map); it takes: file(Host, string, map) -> Task"
        );
    }

    #[test]
    fn nothing_near_points_at_the_reference() {
        assert!(function_not_found("zzzzzz ()").contains("playbook-api.md"));
    }
}
