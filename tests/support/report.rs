//! Checks of a run report (`engine report`, `engine run --report`) against the run's journal,
//! for the report's tests with or without a lab.
//!
//! ```ignore
//! let (path, journal) = support::report::latest_journal(cwd);
//! let html = std::fs::read_to_string(cwd.join("run.html")).unwrap();
//! support::report::matches_journal(&html, &journal, &recap_stdout);
//! support::report::renders_in_a_browser(&cwd.join("run.html"));
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::browser;

/// The newest journal in `cwd`'s `.engine/runs/` (ids sort by time) and its lines, as JSON (not
/// verified: `engine report` does that).
pub fn latest_journal(cwd: &Path) -> (PathBuf, Vec<Value>) {
    let runs = cwd.join(".engine/runs");
    let path = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .max()
        .unwrap_or_else(|| panic!("no journal in {}", runs.display()));
    let lines =
        std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (path, lines)
}

/// An attribute's value in `tag` (an opening tag's text, after the element name).
pub fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let at =
        tag.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in {tag}")) + name.len() + 3;
    &tag[at..at + tag[at..].find('"').unwrap()]
}

/// The opening tags of the rows of the report's table `id` (`tasks`, `critical-path`,
/// `slowest`), after `<tr`.
pub fn rows(html: &str, id: &str) -> Vec<String> {
    let start = html.find(&format!("<table id=\"{id}\">")).unwrap_or_else(|| panic!("no table {id}"));
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    table.split("<tr ").skip(1).map(|r| format!(" {}", &r[..r.find('>').unwrap()])).collect()
}

/// The report `html` shows the run of `journal` (its lines) as it is: every task of the
/// journal once in the task table, with its host, status, start and duration; the journal's
/// critical path listed in its order, with the journal's length, which the run's `recap` (its
/// console output) printed too. Panics saying what differs.
pub fn matches_journal(html: &str, journal: &[Value], recap: &str) {
    let tasks: Vec<&Value> = journal.iter().filter(|l| l["kind"] == "task").collect();
    let mut ids: Vec<u64> = tasks.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), tasks.len(), "the journal has one line per task");
    let rows = rows(html, "tasks");
    assert_eq!(rows.len(), tasks.len(), "a row per task of the journal");
    for t in &tasks {
        let id = t["id"].to_string();
        let row: Vec<&String> = rows.iter().filter(|r| attr(r, "data-id") == id).collect();
        assert_eq!(row.len(), 1, "task {id} once: {t}");
        let row = row[0];
        assert_eq!(attr(row, "data-host"), escaped(t["host"].as_str().unwrap()), "task {id}'s host");
        assert_eq!(attr(row, "data-status"), t["status"].as_str().unwrap(), "task {id}'s status");
        let elapsed = if t["done_in"].is_string() { 0 } else { t["elapsed_ms"].as_u64().unwrap_or(0) };
        assert_eq!(attr(row, "data-elapsed-ms"), elapsed.to_string(), "task {id}'s duration");
        let start = t["start_ms"].as_u64().filter(|_| !t["done_in"].is_string());
        assert_eq!(
            attr(row, "data-start-ms"),
            start.map_or(String::new(), |s| s.to_string()),
            "task {id}'s start"
        );
    }
    let finished = journal.iter().find(|l| l["kind"] == "finished").expect("the journal's finished line");
    let path: Vec<String> =
        finished["critical_path"].as_array().unwrap().iter().map(Value::to_string).collect();
    let listed: Vec<String> = critical_path(html);
    assert_eq!(listed, path, "the report's critical path is the journal's");
    let cp_ms = finished["critical_path_ms"].as_u64().unwrap();
    assert!(
        html.contains(&format!("<td data-ms=\"{cp_ms}\">")),
        "the report's critical path length, {cp_ms} ms"
    );
    if cp_ms > 0 {
        let line = format!("critical path {:.2}s", cp_ms as f64 / 1000.0);
        assert!(recap.contains(&line), "the recap's critical path is the journal's: {line:?} in\n{recap}");
    }
}

/// The task ids of the report's critical-path table, in order.
pub fn critical_path(html: &str) -> Vec<String> {
    rows(html, "critical-path").iter().map(|r| attr(r, "data-id").to_owned()).collect()
}

/// `file` renders in headless chromium with no script error (`cargo xtask report-check`'s
/// check). Skipped when chromium is missing, unless `ENGINE_LAB_REQUIRED` is set (`cargo xtask
/// test`, which installs it): then it fails.
pub fn renders_in_a_browser(file: &Path) {
    match browser::check(file, Duration::from_secs(60)) {
        Ok(browser::Checked::Rendered) => {}
        Ok(browser::Checked::NoBrowser) => {
            assert!(
                std::env::var_os("ENGINE_LAB_REQUIRED").is_none(),
                "chromium is missing (apt-get install chromium; cargo xtask test installs it)"
            );
            eprintln!("skipped: the browser check (chromium is not installed)");
        }
        Err(why) => panic!("{}: {why}", file.display()),
    }
}

/// `text` as the report escapes it in an attribute.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
