//! `engine report` and `engine run --report` on a real run, without a lab: two hosts with
//! `ansible_connection: local`, a wait across them, a failure whose message holds `<script>`, a
//! task skipped after it. The report is checked against the run's journal (each task once,
//! with its host, status and times), its critical path against the journal's and the recap's,
//! and in headless chromium (skipped when chromium is missing, outside `cargo xtask test`).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::report::{
    attr, critical_path, latest_journal, matches_journal, renders_in_a_browser, rows,
};

const INVENTORY: &str =
    "all:\n  hosts:\n    alpha: {ansible_connection: local}\n    beta: {ansible_connection: local}\n";

const PLAYBOOK: &str = r#"
let a = host("alpha");
let b = host("beta");
let make = a.command("make <it>", #{ argv: ["sleep", "0.3"] });
a.command("then alpha", #{ argv: ["sleep", "0.3"] });
b.command("beta waits for alpha", #{ argv: ["sleep", "0.1"] }).after(make);
b.command("beta fails <script>", #{ argv: ["sh", "-c", "echo '<script>alert(1)</script>' >&2; exit 3"] });
b.command("beta skipped", #{ argv: ["true"] });
"#;

fn engine(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_engine"))
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_report_of_a_run_lists_every_task_once_as_the_journal_has_it_and_renders_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::write(cwd.join("inv.yml"), INVENTORY).unwrap();
    std::fs::write(cwd.join("site.rhai"), PLAYBOOK).unwrap();

    let run = engine(cwd, &["run", "site.rhai", "-i", "inv.yml", "--report", "run.html"]);
    assert_eq!(run.status.code(), Some(2), "a task failed: {}", text(&run));
    let report = engine(cwd, &["report", "-o", "report.html"]);
    assert!(report.status.success(), "{}", text(&report));
    let html = std::fs::read_to_string(cwd.join("report.html")).unwrap();
    assert_eq!(
        std::fs::read_to_string(cwd.join("run.html")).unwrap(),
        html,
        "run --report writes the same report"
    );
    for file in ["run.html", "report.html"] {
        assert_eq!(std::fs::metadata(cwd.join(file)).unwrap().permissions().mode() & 0o777, 0o600, "{file}");
    }

    // Every task of the journal once, with its host, status and times; the critical path the
    // journal's and the recap's.
    let (journal_path, lines) = latest_journal(cwd);
    let recap = String::from_utf8_lossy(&run.stdout);
    matches_journal(&html, &lines, &recap);
    let tasks: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "task").collect();
    assert_eq!(tasks.len(), 5, "{lines:?}");
    let skipped = tasks.iter().find(|t| t["task"] == "beta skipped").unwrap();
    assert!(
        skipped["start_ms"].is_null() && skipped["message"].as_str().unwrap().contains("did not succeed")
    );
    let ran = rows(&html, "tasks").iter().filter(|r| !attr(r, "data-start-ms").is_empty()).count();
    assert_eq!(ran, 4, "{html}");
    let names: Vec<&str> = critical_path(&html)
        .iter()
        .map(|id| {
            let id: u64 = id.parse().unwrap();
            tasks.iter().find(|t| t["id"] == id).unwrap()["task"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, ["make <it>", "then alpha"], "the longest chain");
    // beta's wait for alpha's task, drawn from its end to the waiting task's start.
    let make = tasks.iter().find(|t| t["task"] == "make <it>").unwrap()["id"].to_string();
    let waits = tasks.iter().find(|t| t["task"] == "beta waits for alpha").unwrap()["id"].to_string();
    assert!(html.contains(&format!("data-from=\"{make}\" data-to=\"{waits}\"")), "{html}");

    // Hostile text escaped; the failure's message shown.
    assert!(
        !html.contains("<script>alert") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert_eq!(html.matches("<div class=\"failure\"").count(), 1);
    assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("src="));

    // The timeline alone, as SVG.
    let svg = engine(cwd, &["report", "--format", "svg"]);
    let svg = String::from_utf8(svg.stdout).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert_eq!(svg.matches("<rect class=\"bar ").count(), 4, "a bar per task that ran: {svg}");

    // In a real browser: rendered, no script error.
    renders_in_a_browser(&cwd.join("report.html"));

    // A changed journal is refused, not drawn.
    let text_of = std::fs::read_to_string(&journal_path).unwrap();
    let forged = text_of.replacen("\"status\":\"failed\"", "\"status\":\"ok\"", 1);
    assert_ne!(forged, text_of);
    std::fs::write(&journal_path, forged).unwrap();
    let refused = engine(cwd, &["report", "-o", "forged.html"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("the line does not verify with this workspace's key")
            && stderr.contains("neither resumed nor reported"),
        "{stderr}"
    );
    assert!(!cwd.join("forged.html").exists());
    let bad_id = engine(cwd, &["report", "../x"]);
    let stderr = String::from_utf8_lossy(&bad_id.stderr);
    assert!(stderr.contains("engine report \"../x\": not a run id"), "{stderr}");
    let missing = engine(cwd, &["report", "20990101T000000.000Z-000000"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("cannot read journal"), "{stderr}");
}
