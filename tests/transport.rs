//! Lab tests of what the transport guarantees against a host that prints without end or runs
//! past its timeout: the controller's memory stays bounded, and a stopped command leaves no
//! process behind, also under become.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;

use support::Test;
use support::lab::Lab;

/// The peak resident memory (VmHWM, in KiB) of process `pid`, while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `head -c 1G /dev/zero` as a `command` task: it fails cleanly, naming the command, the stream
/// and the limit, and the engine's peak RSS (polled from /proc while it runs) stays under 200 MB.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_gigabyte_of_output_fails_cleanly_and_the_controller_stays_small() {
    let lab = Lab::get();
    let t = Test::new();
    let inventory = t.file("inv.yml", &lab.inventory_for(&["etcd0"], &[]));
    let playbook = t.file("pb.rhai", r#"host("etcd0").command("flood", #{ cmd: "head -c 1G /dev/zero" });"#);
    let mut child = Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("run")
        .arg(&playbook)
        .arg("-i")
        .arg(&inventory)
        .arg("--json")
        .current_dir(t.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(120), "the run did not end in 120 s");
        peak = peak.max(peak_rss_kib(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "the task fails: {stdout}");
    let flood = stdout.lines().find(|l| l.contains("task_finished")).unwrap();
    let event: serde_json::Value = serde_json::from_str(flood).unwrap();
    assert_eq!(event["status"], "failed");
    let error = event["error"].as_str().unwrap();
    assert!(
        error.ends_with(
            "etcd0: flood: `sh -c 'head -c 1G /dev/zero'` printed more than 64 MiB on stdout; it was \
             stopped (raise the limit with --max-output)"
        ),
        "{error}"
    );
    eprintln!("engine peak RSS: {} MiB", peak / 1024);
    assert!(peak > 0, "the engine's memory was read while it ran");
    assert!(peak < 200 * 1000, "the engine's peak RSS was {peak} KiB");
    // And nothing of the command is left on the host.
    let (code, left, _) = lab.ssh_status("etcd0", "pgrep -af 'head -c 1G /dev/zer[o]'");
    assert_eq!(code, Some(1), "still running: {left}");
}

/// A `sleep 300` with `timeout: 2` under become (login as `deploy`, sudo to root) is killed as
/// root: no `sleep 300` is left on the host (checked for up to 5 s), and the task fails as
/// timed out.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_timed_out_command_under_become_leaves_no_process() {
    let lab = Lab::get();
    let t = Test::new();
    let inventory = t.file(
        "inv.yml",
        &lab.inventory_for(
            &["etcd1"],
            &[("etcd1", "ansible_user", "deploy"), ("etcd1", "ansible_become", "true")],
        ),
    );
    let playbook = t
        .file("pb.rhai", r#"host("etcd1").command("sleepy", #{ cmd: "sleep 300; echo late", timeout: 2 });"#);
    let out = t.arg("run").arg(&playbook).arg("-i").arg(&inventory).arg("--json").run().code(2);
    let error = out.task("etcd1", "sleepy")["error"].as_str().unwrap().to_owned();
    assert!(error.ends_with("etcd1: sleepy: command timed out after 2s"), "{error}");
    let started = Instant::now();
    loop {
        let (code, left, _) = lab.ssh_status("etcd1", "pgrep -af 'sleep 30[0]'");
        if code == Some(1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still running as root: {left}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `-vv` logs every command line, and a `command`'s environment values are never in it, even
/// for names that do not look secret: they travel on stdin (see `command`), which is never
/// logged (only its length).
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn verbose_logs_show_commands_but_never_env_values() {
    let lab = Lab::get();
    let t = Test::new();
    let inventory = t.file("inv.yml", &lab.inventory_for(&["etcd0"], &[]));
    let playbook = t.file(
        "pb.rhai",
        r#"host("etcd0").command("with env", #{ cmd: "test -n \"$REGION\"", env: #{ REGION: "eu-plain-4711" } });"#,
    );
    let out = t.arg("run").arg(&playbook).arg("-i").arg(&inventory).arg("-vv").run().success();
    assert!(
        out.stderr.contains(r#"sh -c 'test -n "$REGION"'"#),
        "the command line is logged: {}",
        out.stderr
    );
    assert!(out.stderr.contains("stdin_len"), "{}", out.stderr);
    assert!(!out.stderr.contains("eu-plain-4711") && !out.stdout.contains("eu-plain-4711"), "{}", out.stderr);
}

/// The session transport (the default; `--transport session`): a playbook (files, a directory,
/// commands) on two hosts, one of them through become (login `deploy`, sudo to root), changes
/// what it must on the first run and nothing on the second. Its first command task fails unless
/// it runs inside a host session (a process above it carries the session loop's tag); the second
/// unless its umask is the login's (022), not the loop's own (077).
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn the_session_transport_runs_a_playbook_and_a_rerun_changes_nothing() {
    let lab = Lab::get();
    let t = Test::new();
    let dir = support::lab::scratch("session-transport");
    let inventory = t.file(
        "inv.yml",
        &lab.inventory_for(
            &["etcd0", "etcd1"],
            &[("etcd1", "ansible_user", "deploy"), ("etcd1", "ansible_become", "true")],
        ),
    );
    let playbook = t.file(
        "pb.rhai",
        r#"
let dir = param("dir", "/tmp/x");
for h in hosts() {
    let d = h.file("directory", #{ path: dir, state: "directory", mode: "0755" });
    h.file("greeting", #{ path: `${dir}/greeting`, content: "hello\n", mode: "0640" }).after(d);
    let u = h.command("umask as at login", #{ cmd: "[ \"$(umask)\" = 0022 ]", read_only: true });
    h.command("in a session", #{
        cmd: "p=$$; while [ \"$p\" -gt 1 ]; do grep -q 'engine-sessio[n]' /proc/$p/cmdline && exit 0; p=$(cut -d' ' -f4 /proc/$p/stat); done; exit 1",
        read_only: true,
    }).after(u);
}
"#,
    );
    let run = |transport: &[&str]| {
        Test::new()
            .arg("run")
            .arg(&playbook)
            .arg("-i")
            .arg(&inventory)
            .args(["-e", &format!("dir={dir}"), "--json"])
            .args(transport)
            .run()
            .success()
    };
    let first = run(&[]);
    assert_eq!(first.count("changed"), 4, "{:?}", first.outcomes());
    assert_eq!(first.count("ok"), 4, "{:?}", first.outcomes());
    for host in ["etcd0", "etcd1"] {
        assert_eq!(lab.ssh(host, &format!("cat {dir}/greeting")), "hello\n");
        assert_eq!(lab.ssh(host, &format!("stat -c %a:%U {dir}/greeting")).trim(), "640:root");
    }
    let second = run(&["--transport", "session"]);
    assert_eq!(second.count("changed"), 0, "{:?}", second.outcomes());
    assert_eq!(second.count("ok"), 8, "{:?}", second.outcomes());
    // The same command task fails on the exec transport: the check above is not vacuous.
    let exec = Test::new()
        .arg("run")
        .arg(&playbook)
        .arg("-i")
        .arg(&inventory)
        .args(["-e", &format!("dir={dir}"), "--transport", "exec", "--json"])
        .run()
        .code(2);
    for host in ["etcd0", "etcd1"] {
        assert_eq!(exec.task(host, "in a session")["status"], "failed");
        assert_eq!(exec.task(host, "umask as at login")["status"], "ok");
    }
    for host in ["etcd0", "etcd1"] {
        lab.ssh(host, &format!("rm -rf {dir}"));
    }
}
