//! `cargo xtask deps`: the import graph between the top-level modules of each library crate,
//! and a failure when it has a circle.
//!
//! The engine's layers point one way (CLI → playbook → plan → run → transport and modules).
//! A circle between two top-level modules (`plan` using `run` while `run` uses `plan`) means
//! neither can be understood, tested or moved without the other; this check keeps them out.
//!
//! What counts as an import: every `crate::NAME` path in code (a `use`, a path in an
//! expression, each name of a `use crate::{a, b::c}` group), outside comments, string literals
//! and `#[cfg(test)]` modules (tests may reach across layers to build their fixtures). A crate's
//! top-level modules are those its `lib.rs` declares with `mod NAME;`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::paths::Paths;

/// The library crates whose module graphs are checked, by their `src` folder.
const CRATES: &[&str] = &["engine/src", "contract/src", "modules/src"];

/// One reference from a module to another: where it is written.
#[derive(Debug, Clone)]
struct Site {
    file: PathBuf,
    line: usize,
}

/// The module graph of one crate: `edges[a][b]` is the first place `a` uses `b`.
#[derive(Debug, Default)]
struct Graph {
    modules: Vec<String>,
    edges: BTreeMap<String, BTreeMap<String, Site>>,
}

pub(crate) fn run(paths: &Paths) -> Result<ExitCode> {
    let root = paths.workspace_root();
    let mut circles = 0;
    for krate in CRATES {
        let src = root.join(krate);
        if !src.join("lib.rs").exists() {
            continue;
        }
        let graph = graph_of(&src)?;
        print!("{}", render(krate, &graph));
        for circle in circles_of(&graph) {
            circles += 1;
            println!("deps: {krate}: import circle: {} -> {}", circle.join(" -> "), circle[0]);
            for (from, to) in circle.iter().zip(circle.iter().cycle().skip(1)) {
                let site = &graph.edges[from][to];
                let file = site.file.strip_prefix(root).unwrap_or(&site.file);
                println!("  {from} uses {to} at {}:{}", file.display(), site.line);
            }
        }
    }
    if circles > 0 {
        println!("deps: {circles} import circle(s); make the lower layer own what both need");
        return Ok(ExitCode::FAILURE);
    }
    println!("deps: no import circle between top-level modules");
    Ok(ExitCode::SUCCESS)
}

/// The crate's module graph, from its `lib.rs` declarations and every file below them.
fn graph_of(src: &Path) -> Result<Graph> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).context("reading lib.rs")?;
    let modules: Vec<String> = code_lines(&lib)
        .into_iter()
        .filter_map(|(_, line)| {
            let line = line.trim();
            let line = line.strip_prefix("pub ").or_else(|| line.strip_prefix("pub(crate) ")).unwrap_or(line);
            line.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect();
    let mut graph = Graph { modules: modules.clone(), edges: BTreeMap::new() };
    for module in &modules {
        let mut files = Vec::new();
        let single = src.join(format!("{module}.rs"));
        if single.exists() {
            files.push(single);
        }
        collect_rs(&src.join(module), &mut files)?;
        let uses = graph.edges.entry(module.clone()).or_default();
        for file in files {
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            for (line, code) in code_lines(&text) {
                for used in crate_paths(&code) {
                    if used != *module && modules.contains(&used) {
                        uses.entry(used).or_insert_with(|| Site { file: file.clone(), line });
                    }
                }
            }
        }
    }
    Ok(graph)
}

fn collect_rs(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_rs(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// The lines of `text` (1-based numbers) with comments and string literals blanked out, up to
/// the first `#[cfg(test)]` module with a body (its end is found by counting braces in code).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut stripped = Vec::new();
    let mut state = Lexer::default();
    let mut skip_depth: Option<i64> = None;
    let mut pending_test_attr = false;
    let mut depth: i64 = 0;
    for (number, line) in text.lines().enumerate() {
        let code = state.code_of(line);
        let trimmed = code.trim();
        let opens = code.matches('{').count() as i64;
        let closes = code.matches('}').count() as i64;
        if let Some(start) = skip_depth {
            depth += opens - closes;
            if depth <= start {
                skip_depth = None;
            }
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            pending_test_attr = true;
            continue;
        }
        if pending_test_attr && !trimmed.is_empty() {
            pending_test_attr = false;
            let is_module = trimmed.starts_with("mod ") || trimmed.starts_with("pub(crate) mod ");
            if is_module && opens > closes {
                skip_depth = Some(depth);
                depth += opens - closes;
                continue;
            }
            if is_module {
                continue;
            }
        }
        depth += opens - closes;
        stripped.push((number + 1, code));
    }
    stripped
}

/// Tracks literals and block comments across lines.
#[derive(Debug, Default)]
struct Lexer {
    /// Inside a block comment, this deep.
    comment: usize,
    /// Inside a string literal: `Some(hashes)` for a raw string `r#..."`, `None` for `"`.
    string: Option<Option<usize>>,
}

impl Lexer {
    /// `line` with comments and the insides of string and char literals replaced by spaces.
    fn code_of(&mut self, line: &str) -> String {
        let chars: Vec<char> = line.chars().collect();
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if self.comment > 0 {
                if c == '*' && next == Some('/') {
                    self.comment -= 1;
                    i += 2;
                } else if c == '/' && next == Some('*') {
                    self.comment += 1;
                    i += 2;
                } else {
                    i += 1;
                }
                out.push(' ');
                continue;
            }
            if let Some(raw) = self.string {
                match raw {
                    None if c == '\\' => i += 2,
                    None if c == '"' => {
                        self.string = None;
                        i += 1;
                    }
                    Some(hashes) if c == '"' && chars[i + 1..].iter().take(hashes).all(|h| *h == '#') => {
                        if chars.len() >= i + 1 + hashes {
                            self.string = None;
                            i += 1 + hashes;
                        } else {
                            i += 1;
                        }
                    }
                    _ => i += 1,
                }
                out.push(' ');
                continue;
            }
            match c {
                '/' if next == Some('/') => break,
                '/' if next == Some('*') => {
                    self.comment = 1;
                    i += 2;
                }
                '"' => {
                    self.string = Some(None);
                    i += 1;
                }
                'r' if matches!(next, Some('"') | Some('#'))
                    && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) =>
                {
                    let hashes = chars[i + 1..].iter().take_while(|h| **h == '#').count();
                    if chars.get(i + 1 + hashes) == Some(&'"') {
                        self.string = Some(Some(hashes));
                        i += 2 + hashes;
                    } else {
                        out.push(c);
                        i += 1;
                    }
                }
                // A char literal ('{', '\'', '"'); a lifetime ('a) has no closing quote.
                '\'' if chars.get(i + 2) == Some(&'\'') => i += 3,
                '\'' if next == Some('\\') => {
                    let end =
                        chars[i + 2..].iter().position(|x| *x == '\'').map_or(chars.len(), |p| i + 3 + p);
                    i = end;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    }
}

/// The top-level module names of every `crate::` path in a line of code.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            // Top-level names of the group: `a, b::{c, d}, e` (nested groups skipped).
            let mut nesting = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => nesting += 1,
                    '}' => nesting -= 1,
                    ',' if nesting == 0 => {
                        let name: String =
                            item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        if !name.is_empty() {
                            names.push(name);
                        }
                        item.clear();
                    }
                    _ if nesting == 0 => item.push(c),
                    _ => {}
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// Every circle of the graph: one per strongly connected component of two or more modules,
/// as a path through it.
fn circles_of(graph: &Graph) -> Vec<Vec<String>> {
    let mut circles = Vec::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for start in &graph.modules {
        if reported.contains(start) {
            continue;
        }
        if let Some(path) = path_back(graph, start) {
            reported.extend(path.iter().cloned());
            circles.push(path);
        }
    }
    circles
}

/// The shortest path from `start` back to itself, if there is one (breadth first).
fn path_back(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.to_owned()]);
    while let Some(node) = queue.pop_front() {
        for next in graph.edges.get(&node).into_iter().flat_map(|e| e.keys()) {
            if next == start {
                let mut path = vec![node.clone()];
                let mut at = node.clone();
                while let Some(p) = previous.get(&at) {
                    path.push(p.clone());
                    at = p.clone();
                }
                path.reverse();
                return Some(path);
            }
            if !previous.contains_key(next) && next != start {
                previous.insert(next.clone(), node.clone());
                queue.push_back(next.clone());
            }
        }
    }
    None
}

/// `crate: module -> a, b, c`, one line per module, for the log.
fn render(krate: &str, graph: &Graph) -> String {
    let mut out = format!("deps: {krate}\n");
    for module in &graph.modules {
        let uses: Vec<&str> =
            graph.edges.get(module).into_iter().flat_map(|e| e.keys()).map(String::as_str).collect();
        let _ = writeln!(
            out,
            "  {module} -> {}",
            if uses.is_empty() { "(nothing)".to_owned() } else { uses.join(", ") }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_paths_and_groups_outside_comments_and_strings() {
        let text = "use crate::plan::{Plan, Task};\nuse crate::{events, run::Stop};\n// crate::docs\nlet s = \"crate::journal\";\nlet r = r#\"crate::report\"#; crate::redact::global();\n";
        let found: Vec<String> = code_lines(text).into_iter().flat_map(|(_, l)| crate_paths(&l)).collect();
        assert_eq!(found, ["plan", "events", "run", "redact"]);
    }

    #[test]
    fn skips_test_modules_and_keeps_what_follows() {
        let text = "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n    fn f() { let x = '{'; }\n}\nuse crate::c;\n";
        let found: Vec<String> = code_lines(text).into_iter().flat_map(|(_, l)| crate_paths(&l)).collect();
        assert_eq!(found, ["a", "c"]);
    }

    #[test]
    fn reports_a_circle_as_a_path() {
        let site = || Site { file: PathBuf::from("x.rs"), line: 1 };
        let mut graph = Graph { modules: vec!["a".into(), "b".into(), "c".into()], edges: BTreeMap::new() };
        graph.edges.entry("a".into()).or_default().insert("b".into(), site());
        graph.edges.entry("b".into()).or_default().insert("c".into(), site());
        graph.edges.entry("c".into()).or_default().insert("a".into(), site());
        assert_eq!(circles_of(&graph), [["a", "b", "c"].map(String::from).to_vec()]);
        graph.edges.remove("c");
        assert!(circles_of(&graph).is_empty());
    }
}
