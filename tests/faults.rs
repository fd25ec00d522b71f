//! Faults, proven on real machines: the lab's `fleet` (h00..h49, beside the `ha` hosts, so the
//! other lab tests never notice) gets hosts killed and cut in the middle of runs, a Ctrl-C, and a
//! command that hangs. Each test owns a slice of the fleet, puts it back as it found it, and
//! runs alone (`FLEET`), since killing hosts takes real time and CPU.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use contract::remote::STALE_TEMP_MINUTES;
use serde_json::Value;
use support::lab::Lab;

fn alone() -> MutexGuard<'static, ()> {
    support::lab::fleet_alone()
}

/// The fleet hosts `h{from}`..`h{to}` (inclusive).
fn names(from: usize, to: usize) -> Vec<String> {
    (from..=to).map(|i| format!("h{i:02}")).collect()
}

/// A folder with a playbook and an inventory; `engine` runs in it, so its run journals
/// (`.engine/runs/`) are this test's own.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new(lab: &Lab, hosts: &[String], playbook: &str) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        std::fs::write(dir.path().join("inventory.yml"), lab.inventory_for(&names, &[])).unwrap();
        std::fs::write(dir.path().join("playbook.rhai"), playbook).unwrap();
        Scene { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `engine run playbook.rhai -i inventory.yml --json EXTRA...`.
    fn start(&self, extra: &[&str]) -> Running {
        self.start_with(&[&["--json"], extra].concat())
    }

    /// Starts `engine run playbook.rhai -i inventory.yml ARGS...`.
    fn start_with(&self, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_engine"))
            .args(["run", "playbook.rhai", "-i", "inventory.yml"])
            .args(args)
            .current_dir(self.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = channel();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let text = Arc::new(Mutex::new(String::new()));
        let shown = text.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                shown.lock().unwrap().push_str(&format!("{line}\n"));
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    seen.lock().unwrap().push(event.clone());
                    let _ = tx.send(event);
                }
            }
        });
        Running { child, rx, events, text }
    }

    /// Runs to the end (at most `limit`).
    fn run(&self, extra: &[&str], limit: Duration) -> Finished {
        self.start(extra).wait(limit)
    }

    /// The run journals written in this folder.
    fn journals(&self) -> Vec<PathBuf> {
        let runs = self.path().join(".engine/runs");
        let mut all: Vec<PathBuf> =
            std::fs::read_dir(runs).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        all.sort();
        all
    }
}

/// An engine run in progress, its JSON events arriving.
struct Running {
    child: Child,
    rx: Receiver<Value>,
    events: Arc<Mutex<Vec<Value>>>,
    /// Everything printed on stdout.
    text: Arc<Mutex<String>>,
}

impl Running {
    /// Waits (at most `limit`) until `count` events have matched `want`. Counts what arrives
    /// on the channel, which sees every event once, from the start of the run.
    fn wait_for(&mut self, count: usize, limit: Duration, want: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + limit;
        let mut matched = 0;
        while matched < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(event) if want(&event) => matched += 1,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("waited {limit:?} for {count} matching events, saw {matched}");
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the run ended after {matched} of {count} events")
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end (killing it after `limit`).
    fn wait(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the run did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut stderr).unwrap();
        // Let the reader thread take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let events = self.events.lock().unwrap().clone();
        let stdout = self.text.lock().unwrap().clone();
        Finished { code: status.code(), events, stdout, stderr }
    }
}

struct Finished {
    code: Option<i32>,
    events: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn finished(&self) -> impl Iterator<Item = &Value> {
        self.events.iter().filter(|e| e["event"] == "task_finished")
    }

    /// The status of each finished task, by (host, task).
    fn statuses(&self) -> BTreeMap<(String, String), String> {
        self.finished().map(|e| ((s(&e["host"]), s(&e["task"])), s(&e["status"]))).collect()
    }

    fn status(&self, host: &str, task: &str) -> String {
        self.statuses()
            .get(&(host.to_owned(), task.to_owned()))
            .cloned()
            .unwrap_or_else(|| panic!("no outcome for {host}: {task}\n{}", self.dump()))
    }

    /// How many tasks finished with each status.
    fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for e in self.finished() {
            *counts.entry(s(&e["status"])).or_default() += 1;
        }
        counts
    }

    fn task(&self, host: &str, task: &str) -> &Value {
        self.finished().find(|e| e["host"] == host && e["task"] == task).unwrap()
    }

    fn dump(&self) -> String {
        let events: Vec<String> = self.events.iter().map(Value::to_string).collect();
        format!("exit {:?}\n{}\n{}\n--- stderr\n{}", self.code, events.join("\n"), self.stdout, self.stderr)
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Every host of the slice answers and is clean: killed hosts (and any host that does not
/// answer, left so by an earlier test that failed) are rebooted fresh.
fn restore(lab: &Lab, killed: &[&str], hosts: &[String], dir: &str) {
    for host in killed {
        lab.xtask(&["lab", "restart", host]);
    }
    for host in hosts {
        if lab.ssh_status(host, &format!("rm -rf {dir}")).0 != Some(0) {
            lab.xtask(&["lab", "restart", host]);
        }
    }
}

const LONG: Duration = Duration::from_secs(120);

/// Each host first runs a slow gate (the only task that can be in flight when its host dies,
/// so a rebooted host has lost nothing that the journal says is done), then three files.
fn gated_playbook(dir: &str, gate_secs: u32) -> String {
    format!(
        r#"
for h in hosts() {{
    h.command("gate", #{{ cmd: "sleep {gate_secs} && mkdir -p {dir} && touch {dir}/gate", creates: "{dir}/gate" }});
    for i in 0..3 {{
        h.file(`file ${{i}}`, #{{ path: `{dir}/f${{i}}`, content: `${{h.name}} ${{i}}` + "\n" }});
    }}
}}
"#
    )
}

/// Waits until `host` is connected and well into its gate (its first task).
fn in_gate(run: &mut Running, host: &str) {
    run.wait_for(1, LONG, |e| e["event"] == "host_connected" && e["host"] == host);
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_killed_host_is_unreachable_its_tasks_skipped_and_resume_finishes_the_run() {
    let lab = Lab::fleet();
    let _alone = alone();
    let hosts = names(0, 4);
    let dir = "/tmp/engine-fault-kill";
    restore(&lab, &[], &hosts, dir);
    let scene = Scene::new(&lab, &hosts, &gated_playbook(dir, 4));

    let mut run = scene.start(&[]);
    in_gate(&mut run, "h01");
    lab.xtask(&["lab", "kill", "h01"]);
    let first = run.wait(LONG);
    assert_eq!(first.code, Some(2), "{}", first.dump());
    assert_eq!(first.status("h01", "gate"), "unreachable", "{}", first.dump());
    for i in 0..3 {
        assert_eq!(first.status("h01", &format!("file {i}")), "skipped");
    }
    assert_eq!(
        first.counts(),
        counts(&[("changed", 16), ("unreachable", 1), ("skipped", 3)]),
        "{}",
        first.dump()
    );
    for host in ["h00", "h02", "h03", "h04"] {
        assert_eq!(lab.ssh(host, &format!("cat {dir}/f2")), format!("{host} 2\n"));
    }
    assert_eq!(scene.journals().len(), 1, "the run wrote its journal");

    lab.xtask(&["lab", "restart", "h01"]);
    let resumed = scene.run(&["--resume"], LONG);
    assert_eq!(resumed.code, Some(0), "{}", resumed.dump());
    assert_eq!(resumed.counts(), counts(&[("changed", 4)]), "only h01's tasks ran again: {}", resumed.dump());
    assert!(resumed.finished().all(|e| e["host"] == "h01"));
    let carried = resumed.events.iter().filter(|e| e["event"] == "task_done").count();
    assert_eq!(carried, 16, "the other hosts' tasks are reported done in the first run");
    assert_eq!(lab.ssh("h01", &format!("cat {dir}/f2")), "h01 2\n");

    let again = scene.run(&[], LONG);
    assert_eq!(again.code, Some(0), "{}", again.dump());
    assert_eq!(again.counts(), counts(&[("ok", 20)]), "a normal run afterwards changes nothing");
    restore(&lab, &[], &hosts, dir);
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_cut_host_times_out_at_its_timeout_and_the_others_are_unaffected() {
    let lab = Lab::fleet();
    let _alone = alone();
    let hosts = names(5, 9);
    let dir = "/tmp/engine-fault-cut";
    restore(&lab, &[], &hosts, dir);
    let scene = Scene::new(&lab, &hosts, &gated_playbook(dir, 3));

    let timeout = 6;
    let mut run = scene.start(&["--command-timeout", &timeout.to_string()]);
    in_gate(&mut run, "h06");
    lab.xtask(&["lab", "cut", "h06"]);
    let out = run.wait(LONG);
    lab.xtask(&["lab", "heal", "h06"]);

    assert_eq!(out.code, Some(2), "{}", out.dump());
    let gate = out.task("h06", "gate");
    assert_eq!(gate["status"], "failed", "{}", out.dump());
    assert!(s(&gate["error"]).contains(&format!("timed out after {timeout}s")), "{gate}");
    // The timeout, plus at most the 5 s spent trying to kill the command over the dead link.
    let took = gate["elapsed_ms"].as_u64().unwrap();
    assert!((timeout * 1000..(timeout + 5 + 3) * 1000).contains(&took), "h06's gate took {took} ms");
    assert_eq!(out.counts(), counts(&[("changed", 16), ("failed", 1), ("skipped", 3)]), "{}", out.dump());
    restore(&lab, &[], &hosts, dir);
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ctrl_c_twice_leaves_every_file_old_or_new_and_resume_finishes() {
    let lab = Lab::fleet();
    let _alone = alone();
    let hosts = names(10, 14);
    let dir = "/tmp/engine-fault-int";
    restore(&lab, &[], &hosts, dir);
    // Ten 2 MiB files per host, each replacing an old one. Beside the last, the temporary file
    // of a write killed long ago: the write of that path removes it.
    let files = 10;
    let stale = STALE_TEMP_MINUTES + 1;
    for host in &hosts {
        lab.ssh(
            host,
            &format!(
                "mkdir -p {dir} && for i in $(seq 0 {last}); do echo old > {dir}/f$i; done && \
                 echo part > {dir}/f{last}.engine-Killed && \
                 touch -m -d '{stale} minutes ago' {dir}/f{last}.engine-Killed",
                last = files - 1
            ),
        );
    }
    let playbook = format!(
        r#"
let block = "0123456789abcdef";
while block.len < 2 * 1024 * 1024 {{ block += block; }}
for h in hosts() {{
    for i in 0..{files} {{
        h.file(`file ${{i}}`, #{{ path: `{dir}/f${{i}}`, content: `${{h.name}} ${{i}}` + "\n" + block }});
    }}
}}
"#
    );
    let scene = Scene::new(&lab, &hosts, &playbook);
    let mut run = scene.start(&["--per-host", "1"]);
    // Some files are written, many are not yet, and one per host is being written: stop there,
    // and abort at once (the second Ctrl-C), abandoning the writes in flight.
    run.wait_for(3, LONG, |e| e["event"] == "task_finished" && e["status"] == "changed");
    let pid = run.pid().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(150));
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = run.wait(LONG);
    assert_eq!(out.code, Some(130), "{}", out.dump());
    let reported: Vec<(String, usize)> = out
        .finished()
        .filter(|e| e["status"] == "changed")
        .map(|e| (s(&e["host"]), s(&e["task"]).trim_start_matches("file ").parse().unwrap()))
        .collect();
    let written = reported.len();
    assert!(written < hosts.len() * files, "the stop came before the end: {}", out.dump());

    // Each file is whole: either the old one or the new one, never a part. (A write killed
    // mid-way leaves its temporary file, `fN.engine-XXXXXX`, beside it: `f?` is the files only.)
    let new = |host: &str, i: usize| {
        let mut block = "0123456789abcdef".to_owned();
        while block.len() < 2 * 1024 * 1024 {
            block = block.repeat(2);
        }
        sha256(format!("{host} {i}\n{block}").as_bytes())
    };
    let old = sha256(b"old\n");
    let mut seen_new = 0;
    for host in &hosts {
        let sums = lab.ssh(host, &format!("cd {dir} && sha256sum f?"));
        let lines: Vec<&str> = sums.lines().collect();
        assert_eq!(lines.len(), files, "{host}: {sums}");
        for line in lines {
            let (sum, name) = line.split_once("  ").unwrap();
            let i: usize = name.trim_start_matches('f').parse().unwrap();
            assert!(sum == old || sum == new(host, i), "{host} f{i} is neither old nor new");
            if reported.contains(&(host.clone(), i)) {
                assert_eq!(sum, new(host, i), "{host} f{i} was reported written");
            }
            seen_new += usize::from(sum == new(host, i));
        }
    }
    // An abandoned write may have completed on the host after the engine stopped listening.
    assert!(seen_new >= written, "every file reported written is new");
    assert_eq!(scene.journals().len(), 1, "the stopped run wrote its journal");

    // A write removes the temporary files that killed writes left beside its path once they
    // are stale (older than any write still running could leave them): age those left now.
    let mut temps = 0;
    for host in &hosts {
        let left = lab.ssh(
            host,
            &format!(
                "cd {dir} && find . -name 'f*.engine-*' -print -exec touch -m -d '{stale} minutes ago' {{}} +"
            ),
        );
        temps += left.lines().count();
    }
    eprintln!("{temps} temporary files before the resume");

    let resumed = scene.run(&["--resume"], LONG);
    assert_eq!(resumed.code, Some(0), "{}", resumed.dump());
    assert_eq!(
        resumed.finished().count(),
        hosts.len() * files - written,
        "only what was not reported written"
    );
    assert!(
        resumed.finished().all(|e| e["status"] == "changed" || e["status"] == "ok"),
        "{}",
        resumed.dump()
    );
    let want: Vec<String> = (0..files).map(|i| format!("f{i}")).collect();
    for host in &hosts {
        let left = lab.ssh(host, &format!("ls -A {dir}"));
        assert_eq!(
            left.lines().collect::<Vec<_>>(),
            want,
            "{host}: only the files, no temporary file is left"
        );
        let sums = lab.ssh(host, &format!("cd {dir} && sha256sum f?"));
        assert_eq!(sums.lines().count(), files, "{host}: {sums}");
        for line in sums.lines() {
            let (sum, name) = line.split_once("  ").unwrap();
            let i: usize = name.trim_start_matches('f').parse().unwrap();
            assert_eq!(sum, new(host, i), "{host} f{i} after --resume");
        }
    }
    restore(&lab, &[], &hosts, dir);
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_hanging_command_is_killed_at_its_timeout_with_its_processes() {
    let lab = Lab::fleet();
    let _alone = alone();
    let hosts = names(15, 15);
    let dir = "/tmp/engine-fault-hang";
    // A pipeline and a child in the background: the whole process group must go.
    let playbook = r#"
let h = host("h15");
h.command("hang", #{ cmd: "sleep 1001 | cat & sleep 1002", timeout: 3 });
h.file("after", #{ path: "/tmp/engine-fault-hang", content: "x" });
"#;
    let scene = Scene::new(&lab, &hosts, playbook);
    let out = scene.run(&[], LONG);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    let hang = out.task("h15", "hang");
    assert_eq!(hang["status"], "failed");
    assert!(s(&hang["error"]).contains("timed out after 3s"), "{hang}");
    assert_eq!(out.status("h15", "after"), "skipped");
    let (code, left, _) = lab.ssh_status("h15", "pgrep -a -f 'sleep 100[12]'");
    assert_eq!(code, Some(1), "no process of the command is left: {left}");
    restore(&lab, &[], &hosts, dir);
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn fifty_hosts_with_five_killed_the_other_forty_five_finish_and_the_recap_is_exact() {
    let lab = Lab::fleet();
    let _alone = alone();
    let hosts = names(0, 49);
    assert_eq!(lab.hosts.len(), 50, "the fleet has 50 hosts");
    let dir = "/tmp/engine-fault-fifty";
    restore(&lab, &[], &hosts, dir);
    let killed = ["h03", "h17", "h26", "h38", "h49"];
    let scene = Scene::new(&lab, &hosts, &gated_playbook(dir, 8));

    // The human display this time: its recap is what is checked. The five hosts are killed
    // while their gate runs (seen on the hosts themselves).
    let run = scene.start_with(&[]);
    for host in killed {
        let deadline = Instant::now() + LONG;
        while lab.ssh_status(host, "pgrep -f 'sleep 8 && mkdir'").0 != Some(0) {
            assert!(Instant::now() < deadline, "{host}'s gate never started");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for host in killed {
        lab.xtask(&["lab", "kill", host]);
    }
    let out = run.wait(LONG);
    assert_eq!(out.code, Some(2), "{}", out.dump());
    let total =
        out.stdout.lines().find(|l| l.starts_with("200 tasks on 50 hosts in ")).unwrap_or_else(|| {
            panic!("no recap total line: {}", out.dump());
        });
    assert!(
        total.ends_with(": 0 ok, 180 changed, 0 failed, 5 unreachable, 15 skipped"),
        "the recap's total: {total}"
    );
    for host in &hosts {
        let row: Vec<&str> = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(host.as_str()))
            .unwrap_or_else(|| panic!("no recap row for {host}: {}", out.dump()))
            .split_whitespace()
            .collect();
        // HOST ok changed failed unreachable skipped unknown time
        let want = if killed.contains(&host.as_str()) {
            ["0", "0", "0", "1", "3", "0"]
        } else {
            ["0", "4", "0", "0", "0", "0"]
        };
        assert_eq!(row[1..7], want, "the recap's row for {host}");
    }
    let survivors: Vec<&String> = hosts.iter().filter(|h| !killed.contains(&h.as_str())).collect();
    for host in survivors {
        assert_eq!(lab.ssh(host, &format!("cat {dir}/f1")), format!("{host} 1\n"));
    }
    restore(&lab, &killed, &hosts, dir);
}

fn sha256(bytes: &[u8]) -> String {
    contract::diff::sha256_hex(bytes)
}
