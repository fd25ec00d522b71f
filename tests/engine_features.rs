//! Lab tests for engine features that span modules: facts, handlers, retries, become.
#![allow(clippy::unwrap_used)]

use crate::support;

use support::Test;
use support::lab::{Lab, scratch};

/// Runs `playbook` (text) against `inventory` (text) with `--json`.
fn run(inventory: &str, playbook: &str, extra: &[&str]) -> support::Output {
    let t = Test::new();
    let inv = t.file("inv.yml", inventory);
    let pb = t.file("pb.rhai", playbook);
    t.arg("run").arg(&pb).arg("-i").arg(&inv).arg("--json").args(extra).run()
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn facts_give_each_host_its_own_address() {
    let lab = Lab::get();
    let dir = scratch("facts");
    let playbook = format!(
        r#"
let first = hosts()[0];
for h in hosts() {{
    h.file("my address", #{{ path: "{dir}-addr", content: h.fact("interfaces.host0.ipv4.0") }});
    h.file("first's name", #{{ path: "{dir}-first", content: first.fact("hostname") }});
}}
"#
    );
    let out = run(&std::fs::read_to_string(&lab.inventory).unwrap(), &playbook, &[]).success();
    assert_eq!(out.count("changed"), 2 * lab.hosts.len());
    for (host, address, _) in &lab.hosts {
        assert_eq!(lab.ssh(host, &format!("cat {dir}-addr")), *address);
        assert_eq!(lab.ssh(host, &format!("cat {dir}-first")), lab.hosts[0].0);
    }
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_handler_fires_once_when_notifiers_change_and_not_otherwise() {
    let lab = Lab::get();
    let dir = scratch("handler");
    let inventory = lab.inventory_for(&["etcd0"], &[]);
    let playbook = |a: &str, b: &str| {
        format!(
            r#"
let h = host("etcd0");
let restart = h.handler("command", "restart", #{{ cmd: "echo fired >> {dir}-count" }});
h.file("config a", #{{ path: "{dir}-a", content: "{a}" }}).notify(restart);
h.file("config b", #{{ path: "{dir}-b", content: "{b}" }}).notify(restart);
"#
        )
    };
    let count = || lab.ssh_status("etcd0", &format!("cat {dir}-count")).1.lines().count();

    let first = run(&inventory, &playbook("1", "1"), &[]).success();
    assert_eq!(first.task("etcd0", "restart")["status"], "changed");
    assert_eq!(count(), 1, "two notifiers changed, the handler ran once");

    let second = run(&inventory, &playbook("1", "1"), &[]).success();
    assert_eq!(second.task("etcd0", "restart")["status"], "ok");
    assert_eq!(second.count("changed"), 0);
    assert_eq!(count(), 1, "nothing changed, the handler did not run");

    run(&inventory, &playbook("1", "2"), &[]).success();
    assert_eq!(count(), 2, "one notifier changed, the handler ran again");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn retries_until_a_condition_holds() {
    let lab = Lab::get();
    let dir = scratch("retry");
    let inventory = lab.inventory_for(&["etcd0"], &[]);
    let playbook = |retries: u32| {
        format!(
            r#"
let h = host("etcd0");
h.command("flaky", #{{ cmd: "test -e {dir}-flag-{retries} || {{ touch {dir}-flag-{retries}; exit 1; }}" }})
    .retry(#{{ retries: 1, delay: 0 }});
h.command("counter", #{{ cmd: "echo x >> {dir}-count-{retries}; wc -l < {dir}-count-{retries}" }})
    .retry(#{{ retries: {retries}, delay: 0, "until": "stdout | int >= 3" }});
"#
        )
    };
    let out = run(&inventory, &playbook(5), &[]).success();
    assert_eq!(out.task("etcd0", "flaky")["status"], "changed");
    assert_eq!(lab.ssh("etcd0", &format!("wc -l < {dir}-count-5")).trim(), "3", "stopped as soon as it held");

    let out = run(&inventory, &playbook(1), &[]).code(2);
    let error = out.task("etcd0", "counter")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("did not hold after 2 attempt(s)"), "{error}");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn become_runs_as_root_for_an_unprivileged_user() {
    let lab = Lab::get();
    let dir = scratch("become").replace("/tmp/", "/root/");
    let as_deploy = lab.inventory_for(&["etcd0"], &[("etcd0", "ansible_user", "deploy")]);
    let with_become = lab.inventory_for(
        &["etcd0"],
        &[("etcd0", "ansible_user", "deploy"), ("etcd0", "ansible_become", "true")],
    );
    let playbook = format!(r#"host("etcd0").file("in root's home", #{{ path: "{dir}", content: "x" }});"#);

    let out = run(&as_deploy, &playbook, &[]).code(2);
    assert_eq!(out.task("etcd0", "in root's home")["status"], "failed", "deploy cannot write /root");
    run(&with_become, &playbook, &[]).success();
    assert_eq!(lab.ssh("etcd0", &format!("stat -c %U {dir}")).trim(), "root");
    assert_eq!(run(&with_become, &playbook, &[]).success().count("changed"), 0);
}

/// The runner stats a host's paths in one round trip before its tasks plan, and answers their
/// stats from that while it is current. Changes made by earlier tasks of the same run (a write,
/// a shell command, a removal, a write through a symlinked parent) must never be hidden by it.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn prefetched_stats_never_hide_a_change_made_during_the_run() {
    let lab = Lab::get();
    let dir = scratch("prefetch");
    lab.ssh("etcd0", &format!("mkdir -p {dir}/real/gone && ln -s {dir}/real {dir}/link"));
    let inventory = lab.inventory_for(&["etcd0"], &[]);
    let playbook = format!(
        r#"
let h = host("etcd0");
// A shell command rewrites a file that a later task manages.
let a = h.file("a written", #{{ path: "{dir}/a", content: "one\n" }});
let clobber = h.command("a clobbered", #{{ cmd: "echo two > {dir}/a" }}).after(a);
h.file("a restored", #{{ path: "{dir}/a", content: "one\n" }}).after(clobber);
// A removal takes what lies beneath it.
let gone = h.file("gone removed", #{{ path: "{dir}/real/gone", state: "absent" }});
h.file("gone made again", #{{ path: "{dir}/real/gone", state: "directory" }}).after(gone);
// A write through a symlinked parent reaches a path stated under its real name.
let via = h.file("written via link", #{{ path: "{dir}/link/b", content: "same\n" }});
h.file("same file, real name", #{{ path: "{dir}/real/b", content: "same\n" }}).after(via);
"#
    );
    let out = run(&inventory, &playbook, &[]).success();
    let status = |task: &str| out.task("etcd0", task)["status"].as_str().unwrap().to_owned();
    assert_eq!(status("a restored"), "changed", "the command's write was seen");
    assert_eq!(lab.ssh("etcd0", &format!("cat {dir}/a")), "one\n");
    assert_eq!(status("gone made again"), "changed");
    lab.ssh("etcd0", &format!("test -d {dir}/real/gone"));
    assert_eq!(status("same file, real name"), "ok", "the write through the link was seen");

    let again = run(&inventory, &playbook, &[]).success();
    let mut changed: Vec<String> =
        again.outcomes().into_iter().filter(|(_, _, s)| s == "changed").map(|t| t.1).collect();
    changed.sort();
    assert_eq!(
        changed,
        ["a clobbered", "a restored", "gone made again", "gone removed"],
        "only the clobbered file and the removed directory change again"
    );
    lab.ssh("etcd0", &format!("rm -rf {dir}"));
}
