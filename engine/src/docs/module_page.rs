//! One Markdown page per module, from the registry and the argument schema (the same
//! [`crate::modules_doc::arguments`] that `engine modules NAME` prints).

use std::fmt::Write as _;

use modules::ModuleSpec;

use crate::modules_doc::arguments;

/// The page of one module.
pub fn render(spec: &ModuleSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# `{}`\n", spec.name);
    let _ = writeln!(out, "{}\n", spec.summary());
    let _ = writeln!(
        out,
        "In a playbook: `h.{}(\"task name\", #{{ ... }})`, or as a handler: \
         `h.handler(\"{}\", \"name\", #{{ ... }})`. Unknown arguments are errors.\n",
        spec.name, spec.name
    );
    let _ = writeln!(out, "## Arguments\n");
    let _ = writeln!(out, "| Argument | Type | Required | Description |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for arg in arguments(spec) {
        let required = match (&arg.required, &arg.default) {
            (true, _) => "required".to_owned(),
            (false, Some(default)) => format!("no, default `{default}`"),
            (false, None) => "no".to_owned(),
        };
        let mut description = cell(&arg.description);
        if !arg.choices.is_empty() {
            let choices: Vec<String> = arg
                .choices
                .iter()
                .map(|c| {
                    if c.description.is_empty() {
                        format!("`{}`", c.value)
                    } else {
                        format!("`{}`: {}", c.value, cell(&c.description))
                    }
                })
                .collect();
            description.push_str(&format!("<br>One of:<br>{}", choices.join("<br>")));
        }
        let _ = writeln!(out, "| `{}` | {} | {required} | {description} |", arg.name, arg.kind);
    }
    let _ = writeln!(out, "\n## Outputs\n");
    if spec.outputs.is_empty() {
        let _ = writeln!(out, "None.\n");
    } else {
        let _ = writeln!(
            out,
            "Read by later tasks with `t.output(\"NAME\")`, which makes them wait for this task.\n"
        );
        let _ = writeln!(out, "| Output | Holds |");
        let _ = writeln!(out, "| --- | --- |");
        for (name, what) in spec.outputs {
            let _ = writeln!(out, "| `{name}` | {} |", cell(what));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Example\n");
    let _ = writeln!(out, "`h` is a host, e.g. `let h = host(\"web0\");`, and `peer` another one.\n");
    let _ = writeln!(out, "```rhai\n{}\n```", spec.example.trim_end());
    out
}

/// Text for one Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}
