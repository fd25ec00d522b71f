//! The committed reference (`docs/reference`) is exactly what `engine docs` generates: a change
//! to a module's arguments or to the playbook API without regenerating it fails here.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use support::{Test, root};

const REGENERATE: &str = "cargo run -p engine -- docs --out docs/reference";

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn the_committed_reference_is_what_the_code_generates() {
    let out = tempfile::tempdir().unwrap();
    Test::new().args(["docs", "--out"]).arg(out.path()).run().success().stdout_has("wrote");
    let generated = tree(out.path());
    let committed = tree(&root().join("docs").join("reference"));
    let mut problems = Vec::new();
    for (path, text) in &generated {
        match committed.get(path) {
            None => problems.push(format!("docs/reference/{path} is missing")),
            Some(old) if old != text => {
                let diff = similar::TextDiff::from_lines(old, text);
                let diff = diff.unified_diff().context_radius(2).header("committed", "generated").to_string();
                problems.push(format!("docs/reference/{path} differs:\n{diff}"));
            }
            Some(_) => {}
        }
    }
    for path in committed.keys().filter(|p| !generated.contains_key(*p)) {
        problems.push(format!("docs/reference/{path} is no longer generated: delete it"));
    }
    assert!(
        problems.is_empty(),
        "the committed reference is out of date; regenerate it with\n\n    {REGENERATE}\n\n{}",
        problems.join("\n")
    );
}

#[test]
fn docs_creates_the_output_folder_and_writes_every_page() {
    let t = Test::new();
    let out = t.path().join("a").join("b");
    let out_arg = out.clone();
    let _t = t.args(["docs", "--out"]).arg(&out_arg).run().success();
    let files = tree(&out);
    assert!(files.contains_key("README.md") && files.contains_key("playbook-api.md"), "{:?}", files.keys());
    let modules: Vec<&String> = files.keys().filter(|p| p.starts_with("modules/")).collect();
    assert!(modules.len() >= 11, "{modules:?}");
    assert!(files["modules/file.md"].contains("| `path` | string | required |"));
}

#[test]
fn the_module_pages_agree_with_engine_modules() {
    let out = tempfile::tempdir().unwrap();
    Test::new().args(["docs", "--out"]).arg(out.path()).run().success();
    let page = std::fs::read_to_string(out.path().join("modules").join("systemd.md")).unwrap();
    let text = Test::new().args(["modules", "systemd"]).run().success().stdout;
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter(|l| l.ends_with(", required)") || l.ends_with(", optional)"))
        .collect();
    assert!(headers.len() >= 5, "{text}");
    for line in headers {
        // "  name (string, required)" in the text is "| `name` | string | required |" on the page.
        let (name, rest) = line.trim().split_once(" (").unwrap();
        let (kind, required) = rest.trim_end_matches(')').rsplit_once(", ").unwrap();
        let cell = if required == "required" { "required" } else { "no" };
        assert!(
            page.contains(&format!("| `{name}` | {kind} | {cell}")),
            "{name} ({kind}, {required}) not on the page"
        );
    }
}
