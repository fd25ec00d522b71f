//! The index page of the reference: links to every other page.

use std::fmt::Write as _;

/// The index, linking the playbook API page and every module page.
pub fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Reference\n");
    let _ = writeln!(
        out,
        "Generated from the code by `engine docs --out docs/reference`; a test fails when these pages \
         differ from what the code generates. Do not edit by hand.\n"
    );
    let _ = writeln!(out, "- [Playbook API](playbook-api.md): the functions and types a playbook can use.\n");
    let _ = writeln!(out, "## Modules\n");
    let _ = writeln!(out, "| Module | Summary |");
    let _ = writeln!(out, "| --- | --- |");
    for spec in modules::registry::all() {
        let summary = crate::modules_doc::first_sentence(&spec.summary()).replace('\n', " ");
        let _ = writeln!(out, "| [`{}`](modules/{}.md) | {summary}. |", spec.name, spec.name);
    }
    out
}
