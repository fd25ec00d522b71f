//! `engine exec`: the real binary, on hosts with `ansible_connection: local` (the controller
//! itself, no lab needed) and an address nothing listens on; the lab tests run it over SSH.
#![allow(clippy::unwrap_used)]

use crate::support;

use support::Test;

/// Two local hosts and one that cannot be reached.
const INVENTORY: &str = "all:\n  hosts:\n    me1: {ansible_connection: local}\n    me2: {ansible_connection: local}\n    \
                         gone: {ansible_host: 127.0.0.1, ansible_port: 1}\n";

fn exec(t: Test, pattern: &str, command: &[&str]) -> support::Output {
    let inv = t.file("inv.yml", INVENTORY);
    t.arg("exec").arg("-i").arg(&inv).arg(pattern).arg("--").args(command).run()
}

#[test]
fn exec_runs_one_command_on_every_selected_host_and_prints_each_output() {
    let out = exec(Test::new(), "me*", &["echo hi from $0; printf '\\033[2Jboo\\n' >&2"]).success();
    for host in ["me1", "me2"] {
        assert!(
            out.stdout
                .contains(&format!("{host} | CHANGED | rc=0 >>\n hi from sh\n stderr:\n \\x1b[2Jboo\n")),
            "{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains('\x1b'), "a host's escape sequences never reach the terminal live");
    assert!(out.stdout.contains("2 tasks on 2 hosts"), "the recap: {}", out.stdout);
}

#[test]
fn several_words_run_without_a_shell() {
    let out = exec(Test::new(), "me1", &["echo", "$HOME;", "x"]).success();
    assert!(out.stdout.contains("me1 | CHANGED | rc=0 >>\n $HOME; x\n"), "{}", out.stdout);
}

#[test]
fn a_failed_or_unreachable_host_makes_the_exit_code_2() {
    let out = exec(Test::new(), "all", &["exit 3"]).code(2);
    assert!(
        out.stdout.contains("me1 | FAILED >>\n me1: exit 3: `sh -c 'exit 3'` exited with status 3"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("gone | UNREACHABLE >>\n gone: exit 3: host unreachable: gone (root@127.0.0.1:1)"),
        "{}",
        out.stdout
    );
}

#[test]
fn json_gives_each_hosts_exit_code_and_output() {
    // `--json` after `--` is part of the command: the flag goes before it.
    let out = exec(Test::new(), "me1", &["--json", "echo", "a"]).code(2);
    assert!(out.stdout.contains("`'--json' 'echo' 'a'` exited with status 127"), "{}", out.stdout);
    let t = Test::new();
    let inv = t.file("inv.yml", INVENTORY);
    let out = t.args(["exec", "--json", "-i"]).arg(&inv).args(["me1", "--", "echo", "a"]).run().success();
    let finished: Vec<serde_json::Value> =
        out.events().into_iter().filter(|e| e["event"] == "task_finished").collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["output"], serde_json::json!({ "rc": 0, "stdout": "a", "stderr": "" }));
}

#[test]
fn a_pattern_that_selects_nothing_is_refused() {
    exec(Test::new(), "nosuch", &["true"]).failure().stderr_has("names no host or group");
}
