//! Messages for Rhai's "function not found": a misspelled function or method gets the nearest
//! names, and a known function called with the wrong types gets the signatures it has.

use super::signature::{self, FnSignature};

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
    let suggestion = contract::suggest::did_you_mean(name, names);
    if suggestion.is_empty() {
        // Possibly the script's own function, called with other arguments than it takes.
        format!(
            "no function matches `{call}`: check the name and the arguments (the playbook's functions: \
             docs/reference/playbook-api.md)"
        )
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
    let suggestion = contract::suggest::did_you_mean(property, properties.iter().copied());
    if suggestion.is_empty() {
        format!("a {type_name} has no property `{property}`; its properties are: {}", properties.join(", "))
    } else {
        format!("a {type_name} has no property `{property}`{suggestion}")
    }
}

/// A readable message for a compile error of the playbook `text`: an undefined variable gets
/// the nearest name the script declares; anything else reads as Rhai says it.
pub(super) fn parse_error(error: &rhai::ParseErrorType, text: &str) -> String {
    let rhai::ParseErrorType::VariableUndefined(name) = error else {
        return error.to_string();
    };
    let declared = declared_names(text);
    let suggestion = contract::suggest::did_you_mean(name, declared.iter().map(String::as_str));
    if suggestion.is_empty() {
        format!(
            "undefined variable `{name}`: declare it first (`let {name} = ...;`), or read `-e` values with param(\"{name}\")"
        )
    } else {
        format!("undefined variable `{name}`{suggestion}")
    }
}

/// The names a script declares: after `let`, `const`, `for` and `as`, the parameters of its
/// functions (`fn f(a, b)`) and of its closures (`|h| ...`). A scan, not a parse: good enough
/// for suggestions.
fn declared_names(text: &str) -> Vec<String> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let words: Vec<(usize, &str)> = text
        .match_indices(|c: char| !ident(c))
        .scan(0, |start, (i, sep)| {
            let word = (*start, &text[*start..i]);
            *start = i + sep.len();
            Some(word)
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let mut names: Vec<String> = Vec::new();
    for pair in words.windows(2) {
        let [(_, keyword), (_, word)] = pair else { continue };
        if matches!(*keyword, "let" | "const" | "for" | "as")
            && word.starts_with(|c: char| !c.is_ascii_digit())
        {
            names.push((*word).to_owned());
        }
    }
    // `fn name(a, b)` and `|a, b|`: identifiers between the brackets or bars.
    for (open, close, lead) in [('(', ')', "fn "), ('|', '|', "")] {
        let mut rest = text;
        while let Some(i) = rest.find(if lead.is_empty() { "|" } else { lead }) {
            let after = &rest[i + 1..];
            let Some(start) = after.find(open).map(|s| s + 1).filter(|s| lead.is_empty() || *s < 64) else {
                break;
            };
            let start = if lead.is_empty() { 0 } else { start };
            let inner = &after[start..];
            let Some(end) = inner.find(close) else { break };
            let params = &inner[..end];
            if params.chars().all(|c| ident(c) || c == ',' || c.is_whitespace()) {
                names.extend(params.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned));
            }
            rest = &after[start + end..];
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_names_are_found() {
        let text = "let leader = hosts()[0];\nconst DIR = \"/x\";\nfor h in hosts() {}\nfn greet(who, times) { who }\nserial(hosts(), 1, |host_x| { host_x });\nimport \"lib\" as lib;\n";
        let names = declared_names(text);
        for name in ["leader", "DIR", "h", "who", "times", "host_x", "lib"] {
            assert!(names.contains(&name.to_owned()), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn an_undefined_variable_gets_the_nearest_declared_name() {
        let text = "let leader = hosts()[0];\nlet x = leadr;\n";
        let error = rhai::ParseErrorType::VariableUndefined("leadr".into());
        assert_eq!(parse_error(&error, text), "undefined variable `leadr`; did you mean `leader`?");
        let error = rhai::ParseErrorType::VariableUndefined("version".into());
        assert!(parse_error(&error, text).contains("param(\"version\")"));
    }

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
        let message = function_not_found("zzzzzz (i64)");
        assert!(message.starts_with("no function matches `zzzzzz(int)`"), "{message}");
        assert!(message.contains("playbook-api.md"), "{message}");
    }
}
