//! End-to-end tests of the run journal, `--resume` and Ctrl-C, against the lab. Each test runs
//! the real binary in its own working directory, so it has its own `.engine/runs/`.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lab::{Lab, scratch};

/// One finished `engine` process.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn context(&self) -> String {
        format!("--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    fn events(&self) -> Vec<Value> {
        self.stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// (task, status) of every `event` (task_finished or task_done), sorted.
    fn tasks(&self, event: &str) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .events()
            .iter()
            .filter(|e| e["event"] == event)
            .map(|e| (e["task"].as_str().unwrap().to_owned(), e["status"].as_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    }
}

fn engine(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_engine"));
    c.current_dir(cwd).env_remove("RUST_LOG");
    c
}

fn run(cwd: &Path, args: &[&str]) -> Run {
    let out = engine(cwd).args(args).output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The journals in `cwd`, oldest first, as (path, lines).
fn journals(cwd: &Path) -> Vec<(PathBuf, Vec<Value>)> {
    let dir = cwd.join(".engine/runs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let lines = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            (p, lines)
        })
        .collect()
}

/// (task, status, done_in present) of a journal's task lines, sorted.
fn journal_tasks(lines: &[Value]) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = lines
        .iter()
        .filter(|l| l["kind"] == "task")
        .map(|l| {
            (
                l["task"].as_str().unwrap().to_owned(),
                l["status"].as_str().unwrap().to_owned(),
                l.get("done_in").is_some(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = items.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    v.sort();
    v
}

/// Waits (bounded) until `pattern` runs on `host`.
fn wait_for_process(lab: &Lab, host: &str, pattern: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab.ssh_status(host, &format!("pgrep -f '{pattern}'")).0 != Some(0) {
        assert!(Instant::now() < deadline, "{pattern} never started on {host}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigint(child: &std::process::Child) {
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
}

/// ```text
/// etcd0: prep ──▶ gate (fails until the marker exists) ──▶ after gate
///                                                          ▲ data (who.stdout)
/// etcd1: who ──────────────────────────────────────────────┘      other
/// ```
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn resume_reruns_the_failed_task_its_dependents_and_providers_then_nothing_changes() {
    let lab = Lab::get();
    let dir = scratch("resume");
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    std::fs::write(cwd.join("inv.yml"), lab.inventory_for(&["etcd0", "etcd1"], &[])).unwrap();
    let playbook = |other: &str| {
        format!(
            r#"
let a = host("etcd0"); let b = host("etcd1");
a.file("prep", #{{ path: "{dir}-prep", content: "p\n" }});
let who = b.command("who", #{{ argv: ["hostname"], read_only: true }});
a.command("gate", #{{ cmd: "test -e {dir}-marker", read_only: true }});
a.file("after gate", #{{ path: "{dir}-after", content: `after ${{who.stdout}}` }});
b.file("other", #{{ path: "{dir}-other", content: "{other}\n" }});
"#
        )
    };
    std::fs::write(cwd.join("site.rhai"), playbook("o1")).unwrap();
    lab.ssh("etcd0", &format!("rm -f {dir}-marker {dir}-prep {dir}-after"));
    lab.ssh("etcd1", &format!("rm -f {dir}-other"));

    // 1. The gate fails: its dependent is skipped, everything else runs.
    let first = run(cwd, &["run", "site.rhai", "-i", "inv.yml", "--json"]);
    assert_eq!(first.code, Some(2), "{}", first.context());
    assert_eq!(
        first.tasks("task_finished"),
        pairs(&[
            ("prep", "changed"),
            ("who", "ok"),
            ("gate", "failed"),
            ("after gate", "skipped"),
            ("other", "changed")
        ])
    );
    let js = journals(cwd);
    assert_eq!(js.len(), 1);
    let (path, lines) = &js[0];
    assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(cwd.join(".engine/runs")).unwrap().permissions().mode() & 0o777, 0o700);
    let header = &lines[0];
    assert_eq!(header["kind"], "header");
    assert_eq!(header["playbook"], cwd.canonicalize().unwrap().join("site.rhai").display().to_string());
    assert_eq!(header["fingerprints"].as_object().unwrap().len(), 5);
    assert_eq!(header["resumes"], Value::Null);
    assert_eq!(lines.last().unwrap()["kind"], "finished");
    assert_eq!(journal_tasks(lines).iter().filter(|t| t.1 == "failed").count(), 1);
    let first_id = path.file_stem().unwrap().to_string_lossy().into_owned();

    // Another playbook is refused.
    std::fs::write(cwd.join("else.rhai"), playbook("o1")).unwrap();
    let refused = run(cwd, &["run", "else.rhai", "-i", "inv.yml", "--resume"]);
    assert_eq!(refused.code, Some(1), "{}", refused.context());
    assert!(
        refused.stderr.contains("cannot resume run") && refused.stderr.contains("site.rhai"),
        "{}",
        refused.context()
    );

    // 2. With the marker, a resume (playbook and inventory from the journal) reruns the gate,
    // its dependent, and `who`, whose output the dependent reads; the rest is done.
    lab.ssh("etcd0", &format!("touch {dir}-marker"));
    let resumed = run(cwd, &["run", "--resume", "--json"]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.context());
    assert_eq!(
        resumed.tasks("task_finished"),
        pairs(&[("gate", "ok"), ("after gate", "changed"), ("who", "ok")])
    );
    assert_eq!(resumed.tasks("task_done"), pairs(&[("prep", "changed"), ("other", "changed")]));
    assert!(
        resumed.events().iter().filter(|e| e["event"] == "task_done").all(|e| e["run"] == first_id.as_str())
    );
    assert_eq!(lab.ssh("etcd0", &format!("cat {dir}-after")), "after etcd1");
    let js = journals(cwd);
    assert_eq!(js.len(), 2);
    let (_, lines) = &js[1];
    assert_eq!(lines[0]["resumes"], first_id.as_str());
    let t = journal_tasks(lines);
    assert_eq!(t.len(), 5, "a resumed journal holds every task: {t:?}");
    assert_eq!(t.iter().filter(|t| t.2).count(), 2, "two carried over: {t:?}");

    // 3. A normal run changes nothing.
    let normal = run(cwd, &["run", "site.rhai", "-i", "inv.yml"]);
    assert_eq!(normal.code, Some(0), "{}", normal.context());
    assert!(normal.stdout.contains("5 ok, 0 changed, 0 failed"), "{}", normal.context());
    assert!(normal.stdout.contains("run journal: .engine/runs/"), "{}", normal.context());
    assert!(!normal.stdout.contains("--resume"), "nothing to finish: {}", normal.context());

    // 4. A changed input: only that task reruns on resume, and the recap says what was done before.
    std::fs::write(cwd.join("site.rhai"), playbook("o2")).unwrap();
    let changed = run(cwd, &["run", "site.rhai", "-i", "inv.yml", "--resume"]);
    assert_eq!(changed.code, Some(0), "{}", changed.context());
    assert!(
        changed.stdout.contains("1 tasks on 2 hosts") && changed.stdout.contains("0 ok, 1 changed"),
        "{}",
        changed.context()
    );
    assert!(changed.stdout.contains("4 more tasks done in run"), "{}", changed.context());
    assert_eq!(lab.ssh("etcd1", &format!("cat {dir}-other")), "o2\n");

    lab.ssh("etcd0", &format!("rm -f {dir}-marker {dir}-prep {dir}-after"));
    lab.ssh("etcd1", &format!("rm -f {dir}-other"));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn first_ctrl_c_lets_running_tasks_finish_then_resume_completes() {
    let lab = Lab::get();
    let dir = scratch("resume-sigint");
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    std::fs::write(cwd.join("inv.yml"), lab.inventory_for(&["etcd0"], &[])).unwrap();
    std::fs::write(
        cwd.join("slow.rhai"),
        format!(
            r#"
let h = host("etcd0");
h.command("slow", #{{ cmd: "sleep 3 && touch {dir}-slow", creates: "{dir}-slow" }});
h.command("next", #{{ cmd: "touch {dir}-next", creates: "{dir}-next" }});
"#
        ),
    )
    .unwrap();
    lab.ssh("etcd0", &format!("rm -f {dir}-slow {dir}-next"));
    let child = engine(cwd)
        .args(["run", "slow.rhai", "-i", "inv.yml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_process(&lab, "etcd0", &format!("sleep 3 && touch {dir}-slow"));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(
        stdout.contains("stopping: waiting up to 30 s for 1 running task; Ctrl-C again to abort"),
        "{stdout}"
    );
    assert!(stdout.contains("0 ok, 1 changed, 0 failed, 0 unreachable, 1 skipped"), "{stdout}");
    assert!(stdout.contains("; finish the run with `engine run --resume 20"), "{stdout}");
    lab.ssh("etcd0", &format!("test -e {dir}-slow && test ! -e {dir}-next"));
    let js = journals(cwd);
    let (_, lines) = &js[0];
    assert_eq!(
        journal_tasks(lines),
        vec![("next".into(), "skipped".into(), false), ("slow".into(), "changed".into(), false)]
    );
    let end = lines.last().unwrap();
    assert_eq!(
        (end["kind"].as_str(), end["interrupted"].as_bool(), end["aborted"].as_bool()),
        (Some("finished"), Some(true), Some(false))
    );

    let resumed = run(cwd, &["run", "--resume", "--json"]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.context());
    assert_eq!(resumed.tasks("task_finished"), pairs(&[("next", "changed")]));
    assert_eq!(resumed.tasks("task_done"), pairs(&[("slow", "changed")]));
    lab.ssh("etcd0", &format!("test -e {dir}-next && rm -f {dir}-slow {dir}-next"));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn grace_period_and_second_ctrl_c_abandon_running_tasks() {
    let lab = Lab::get();
    let dir = scratch("resume-grace");
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    std::fs::write(cwd.join("inv.yml"), lab.inventory_for(&["etcd1"], &[])).unwrap();
    std::fs::write(
        cwd.join("hang.rhai"),
        format!(
            r#"
let h = host("etcd1");
h.command("hang", #{{ cmd: "sleep 60 # {dir}", creates: "{dir}-never" }});
h.command("later", #{{ cmd: "true" }});
"#
        ),
    )
    .unwrap();
    for second_ctrl_c in [false, true] {
        let started = Instant::now();
        let child = engine(cwd)
            .args([
                "run",
                "hang.rhai",
                "-i",
                "inv.yml",
                "--json",
                "--grace",
                if second_ctrl_c { "60" } else { "1" },
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_process(&lab, "etcd1", &format!("sleep 60 # {dir}"));
        sigint(&child);
        if second_ctrl_c {
            std::thread::sleep(Duration::from_millis(300));
            sigint(&child);
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(130), "{stdout}");
        assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
        assert!(
            stdout.contains(&format!("\"event\":\"aborted\",\"grace_expired\":{}", !second_ctrl_c)),
            "{stdout}"
        );
        assert!(stdout.contains("aborted while running"), "{stdout}");
        let js = journals(cwd);
        let (_, lines) = js.last().unwrap();
        assert_eq!(
            journal_tasks(lines),
            vec![("hang".into(), "failed".into(), false), ("later".into(), "skipped".into(), false)]
        );
        let end = lines.last().unwrap();
        assert_eq!((end["interrupted"].as_bool(), end["aborted"].as_bool()), (Some(true), Some(true)));
        let _ = lab.ssh_status("etcd1", &format!("pkill -f 'sleep 60 # {dir}'"));
    }
}

/// Without a lab (the host is 127.0.0.1 port 1, so every task is unreachable and the journal
/// asks for a resume): `engine run --resume` refuses a journal with one changed byte in a task
/// line, one whose header was edited to name another playbook, and a resume that gives another
/// playbook or inventory than the journal names; each refusal leaves the journal as it is. The
/// journal untouched resumes (the host is still unreachable: exit 2, not 1). The workspace key
/// is `.engine/journal.key`, 0600, and the journal's fingerprints are not plain SHA-256.
#[test]
fn resume_refuses_a_tampered_journal_or_another_playbook_and_keeps_the_journal() {
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    std::fs::write(
        cwd.join("inv.yml"),
        "all:\n  hosts:\n    web0: {ansible_host: 127.0.0.1, ansible_port: 1}\n",
    )
    .unwrap();
    std::fs::write(
        cwd.join("other.yml"),
        "all:\n  hosts:\n    web0: {ansible_host: 127.0.0.1, ansible_port: 1}\n",
    )
    .unwrap();
    let playbook = "let h = host(\"web0\");\nh.file(\"first\", #{ path: \"/tmp/x\", content: \"1\" });\n\
                    h.file(\"second\", #{ path: \"/tmp/y\", content: \"2\" });\n";
    std::fs::write(cwd.join("site.rhai"), playbook).unwrap();
    std::fs::write(cwd.join("other.rhai"), playbook).unwrap();
    let first = run(cwd, &["run", "site.rhai", "-i", "inv.yml", "--connect-timeout", "2"]);
    assert_eq!(first.code, Some(2), "{}", first.context());
    let key = cwd.join(".engine/journal.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let js = journals(cwd);
    let (path, lines) = &js[0];
    let id = path.file_stem().unwrap().to_string_lossy().into_owned();
    let prints = lines[0]["fingerprints"].as_object().unwrap();
    assert!(prints.values().all(|p| p.as_str().unwrap().len() == 64), "{prints:?}");
    let original = std::fs::read_to_string(path).unwrap();
    let canonical = cwd.canonicalize().unwrap();
    let refused = |text: &str, args: &[&str]| {
        std::fs::write(path, text).unwrap();
        let out = run(cwd, args);
        assert_eq!(out.code, Some(1), "{}", out.context());
        assert_eq!(std::fs::read_to_string(path).unwrap(), text, "the journal is left as it is");
        assert_eq!(journals(cwd).len(), 1, "no new run was started");
        out.stderr.replace(&canonical.display().to_string(), "[CWD]").replace(&id, "[ID]")
    };
    let resume = ["run", "--resume", "--connect-timeout", "2"];

    // One changed byte in the second line (a task's name).
    let at = original.find("\"task\":\"first\"").unwrap() + "\"task\":\"firs".len();
    let mut tampered = original.clone().into_bytes();
    tampered[at] = b'T';
    let tampered = String::from_utf8(tampered).unwrap();
    let e = refused(&tampered, &resume);
    assert!(
        e.contains(
            "journal .engine/runs/[ID].jsonl:2: the line does not verify with this workspace's key: the journal \
             was changed, or written elsewhere; it is neither resumed nor reported (and left as it is)"
        ),
        "{e}"
    );

    // The header edited to name another playbook.
    let site = canonical.join("site.rhai").display().to_string();
    let elsewhere = original.replacen(&site, &canonical.join("other.rhai").display().to_string(), 1);
    assert_ne!(elsewhere, original);
    let e = refused(&elsewhere, &resume);
    assert!(e.contains("journal .engine/runs/[ID].jsonl:1: the line does not verify"), "{e}");

    // The journal as written, resumed with another playbook or another inventory.
    let e = refused(&original, &["run", "other.rhai", "--resume"]);
    assert!(
        e.contains(
            "cannot resume run [ID] (.engine/runs/[ID].jsonl): it ran playbook [CWD]/site.rhai, not \
             [CWD]/other.rhai; give that playbook, or none"
        ),
        "{e}"
    );
    let e = refused(&original, &["run", "-i", "other.yml", "--resume"]);
    assert!(
        e.contains(
            "cannot resume run [ID] (.engine/runs/[ID].jsonl): it ran with inventory [CWD]/inv.yml, not \
             [CWD]/other.yml; give that inventory, or none"
        ),
        "{e}"
    );

    // Untouched, it resumes: the host is still unreachable, so the tasks fail again (exit 2).
    std::fs::write(path, &original).unwrap();
    let resumed = run(cwd, &resume);
    assert_eq!(resumed.code, Some(2), "{}", resumed.context());
    assert_eq!(journals(cwd).len(), 2, "the resume has a journal of its own");
}
