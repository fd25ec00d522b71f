//! End-to-end tests: the real `engine` binary against the lab's Debian hosts, over real SSH.
//! Each test works under its own scratch path, so tests can share the hosts and run in parallel.
#![allow(clippy::unwrap_used)]

use crate::support;

use support::Test;
use support::lab::{Lab, scratch};

fn nanos(text: &str) -> u128 {
    text.trim().parse().unwrap_or_else(|e| panic!("not a timestamp {text:?}: {e}"))
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn hello_check_then_run_then_nothing_changes() {
    let lab = Lab::get();
    let dir = scratch("hello");
    let run = |cmd: &str| {
        Test::new()
            .args([cmd, "playbooks/hello.rhai", "-i"])
            .arg(&lab.inventory)
            .args(["-e", &format!("dir={dir}"), "--json"])
            .run()
            .success()
    };

    // Dry-run on fresh paths: reports changes, changes nothing.
    let check = run("check");
    let predicted: Vec<_> =
        check.outcomes().into_iter().filter(|o| o.2 == "changed").map(|o| (o.0, o.1)).collect();
    assert_eq!(check.count("failed") + check.count("unknown"), 0, "{:?}", check.outcomes());
    assert_eq!(predicted.len(), 2 * lab.hosts.len() + 1, "{predicted:?}");
    for (host, _, _) in &lab.hosts {
        lab.ssh(host, &format!("test ! -e {dir} && test ! -e {dir}.leader"));
    }

    // The real run does exactly what was predicted.
    let first = run("run");
    let changed: Vec<_> =
        first.outcomes().into_iter().filter(|o| o.2 == "changed").map(|o| (o.0, o.1)).collect();
    let (mut a, mut b) = (predicted.clone(), changed.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "check predicted {a:?}, run changed {b:?}");
    let leader = &lab.hosts[0].0;
    for (host, address, _) in &lab.hosts {
        let greeting = lab.ssh(host, &format!("cat {dir}/greeting"));
        assert_eq!(greeting, format!("hello from {host} ({address}), led by {leader}\n"));
        assert_eq!(lab.ssh(host, &format!("stat -c %a {dir}/greeting")).trim(), "644");
    }

    // Idempotent: a second run changes nothing.
    let second = run("run");
    assert_eq!(second.count("changed"), 0, "{:?}", second.outcomes());
    assert_eq!(second.count("ok"), 2 * lab.hosts.len() + 2);
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn cross_host_dependency_starts_after_its_dependency_ends() {
    let lab = Lab::get();
    let dir = scratch("order");
    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0", "etcd1"], &[]));
    let pb = t.file(
        "order.rhai",
        &format!(
            r#"
let a = host("etcd0");
let b = host("etcd1");
a.file("dir", #{{ path: "{dir}", state: "directory" }});
b.file("dir", #{{ path: "{dir}", state: "directory" }});
let slow = a.command("slow producer", #{{ cmd: "sleep 1; date +%s%N > {dir}/a_end" }});
b.command("consumer", #{{ cmd: "date +%s%N > {dir}/b_start" }}).after(slow);
"#
        ),
    );
    t.args(["run"]).arg(&pb).arg("-i").arg(&inv).arg("--json").run().success();
    let a_end = nanos(&lab.ssh("etcd0", &format!("cat {dir}/a_end")));
    let b_start = nanos(&lab.ssh("etcd1", &format!("cat {dir}/b_start")));
    assert!(b_start >= a_end, "etcd1 started at {b_start}, before etcd0 finished at {a_end}");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn hosts_run_in_parallel() {
    let lab = Lab::get();
    let dir = scratch("parallel");
    let t = Test::new();
    let pb = t.file(
        "parallel.rhai",
        &format!(
            r#"
for h in hosts() {{
    h.command("one second", #{{ cmd: "mkdir -p {dir} && date +%s%N > {dir}/start && sleep 1 && date +%s%N > {dir}/end" }});
}}
"#
        ),
    );
    t.arg("run").arg(&pb).arg("-i").arg(&lab.inventory).arg("--json").run().success();
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for (host, _, _) in &lab.hosts {
        starts.push(nanos(&lab.ssh(host, &format!("cat {dir}/start"))));
        ends.push(nanos(&lab.ssh(host, &format!("cat {dir}/end"))));
    }
    let (last_start, first_end) = (starts.iter().max().unwrap(), ends.iter().min().unwrap());
    // Every host's one-second task overlaps every other's: N hosts took about 1 s, not N s.
    assert!(
        last_start < first_end,
        "tasks did not all overlap: last start {last_start}, first end {first_end}"
    );
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn failure_skips_its_dependents_and_nothing_else() {
    let lab = Lab::get();
    let dir = scratch("failure");
    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0", "etcd1", "etcd2"], &[]));
    let pb = t.file(
        "fail.rhai",
        &format!(
            r#"
let a = host("etcd0");
let b = host("etcd1");
let c = host("etcd2");
let broken = a.command("broken", #{{ cmd: "echo oops >&2; exit 3" }});
a.file("after broken", #{{ path: "{dir}-a", content: "x" }});
b.file("independent", #{{ path: "{dir}-b2", content: "x" }});
b.file("needs broken", #{{ path: "{dir}-b1", content: "x" }}).after(broken);
c.file("elsewhere", #{{ path: "{dir}-c", content: "x" }});
"#
        ),
    );
    let out = t.arg("run").arg(&pb).arg("-i").arg(&inv).arg("--json").run().code(2);
    let broken = out.task("etcd0", "broken");
    assert_eq!(broken["status"], "failed");
    let error = broken["error"].as_str().unwrap();
    for needle in ["fail.rhai:5:", "etcd0: broken", "exit 3", "status 3", "oops"] {
        assert!(error.contains(needle), "error lacks {needle:?}: {error}");
    }
    assert_eq!(out.task("etcd0", "after broken")["status"], "skipped");
    assert_eq!(out.task("etcd1", "needs broken")["status"], "skipped");
    assert_eq!(out.task("etcd1", "independent")["status"], "changed");
    assert_eq!(out.task("etcd2", "elsewhere")["status"], "changed");
    lab.ssh("etcd0", &format!("test ! -e {dir}-a"));
    lab.ssh("etcd1", &format!("test ! -e {dir}-b1 && test -e {dir}-b2"));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn unknown_and_changed_host_keys_are_refused() {
    let lab = Lab::get();
    let dir = scratch("hostkeys");
    let known = std::fs::read_to_string(&lab.known_hosts).unwrap();
    let line_of = |host: &str| {
        known.lines().find(|l| l.split(' ').next().unwrap().split(',').any(|p| p == host)).unwrap()
    };
    let etcd1_key = line_of("etcd1").split_once(' ').unwrap().1;
    let t = Test::new();
    // etcd0's address listed with etcd1's key: a changed key, on line 2.
    let forged = t.file("forged_known_hosts", &format!("# forged\n{} {etcd1_key}\n", lab.address("etcd0")));
    let empty = t.file("empty_known_hosts", "");
    let pb =
        t.file("k.rhai", &format!("host(\"etcd0\").file(\"f\", #{{ path: \"{dir}\", content: \"x\" }});"));
    let inventory = |known: &std::path::Path| {
        format!(
            "all:\n  hosts:\n    etcd0:\n      ansible_host: {}\n      ansible_ssh_private_key_file: {}\n      engine_known_hosts: {}\n",
            lab.address("etcd0"),
            lab.key.display(),
            known.display()
        )
    };
    let inv_forged = t.file("forged.yml", &inventory(&forged));
    let inv_empty = t.file("empty.yml", &inventory(&empty));

    let run = |inv: &std::path::Path, extra: &[&str]| {
        Test::new().arg("run").arg(&pb).arg("-i").arg(inv).arg("--json").args(extra).run()
    };
    let out = run(&inv_forged, &[]).code(2);
    let e = out.task("etcd0", "f");
    assert_eq!(e["status"], "unreachable");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains(&format!("{} line 2", forged.display())), "names the known_hosts line: {msg}");
    // accept-new never accepts a changed key.
    assert_eq!(
        run(&inv_forged, &["--host-key-checking", "accept-new"]).code(2).task("etcd0", "f")["status"],
        "unreachable"
    );

    let out = run(&inv_empty, &[]).code(2);
    assert!(out.task("etcd0", "f")["error"].as_str().unwrap().contains("accept-new"), "says how to fix it");
    run(&inv_empty, &["--host-key-checking", "accept-new"]).success();
    assert!(std::fs::read_to_string(&empty).unwrap().contains(lab.address("etcd0")), "the key was learned");
    run(&inv_empty, &[]).success();
    lab.ssh("etcd0", &format!("rm -f {dir}"));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn an_unreachable_host_fails_only_its_own_tasks() {
    let lab = Lab::get();
    let dir = scratch("unreachable");
    let t = Test::new();
    // `ghost` points at a lab host's closed port: the connection is refused at once.
    let inv = t.file(
        "inv.yml",
        &lab.inventory_for(&["etcd0", "etcd1"], &[]).replace(
            "  hosts:\n",
            &format!(
                "  hosts:\n    ghost:\n      ansible_host: {}\n      ansible_port: 1\n",
                lab.address("etcd2")
            ),
        ),
    );
    let pb = t.file(
        "u.rhai",
        &format!(
            r#"
for h in hosts() {{
    h.file("one", #{{ path: "{dir}-1", content: "x" }});
    h.file("two", #{{ path: "{dir}-2", content: "x" }});
}}
"#
        ),
    );
    let out =
        t.arg("run").arg(&pb).arg("-i").arg(&inv).args(["--json", "--connect-timeout", "5"]).run().code(2);
    assert_eq!(out.task("ghost", "one")["status"], "unreachable");
    assert!(matches!(out.task("ghost", "two")["status"].as_str(), Some("unreachable" | "skipped")));
    for host in ["etcd0", "etcd1"] {
        assert_eq!(out.task(host, "one")["status"], "changed");
        assert_eq!(out.task(host, "two")["status"], "changed");
    }
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ctrl_c_stops_new_work_and_lets_running_tasks_finish() {
    let lab = Lab::get();
    let dir = scratch("sigint");
    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0"], &[]));
    let pb = t.file(
        "slow.rhai",
        &format!(
            r#"
let h = host("etcd0");
h.command("first", #{{ cmd: "sleep 2; touch {dir}-first" }});
h.command("second", #{{ cmd: "touch {dir}-second" }});
"#
        ),
    );
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("run")
        .arg(&pb)
        .arg("-i")
        .arg(&inv)
        .arg("--json")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait for the first task to start, then one SIGINT.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lab.ssh_status("etcd0", "pgrep -f 'sleep 2'").0 != Some(0) {
        assert!(std::time::Instant::now() < deadline, "the first task never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"event\":\"interrupted\""), "{stdout}");
    assert!(stdout.contains("\"task\":\"first\",\"module\":\"command\",\"location\""), "{stdout}");
    assert!(stdout.contains("the run was stopped"), "{stdout}");
    lab.ssh("etcd0", &format!("test -e {dir}-first && test ! -e {dir}-second"));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn outputs_reach_the_right_task_when_tags_select_a_subset() {
    let lab = Lab::get();
    let dir = scratch("tags");
    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0"], &[]));
    let pb = t.file(
        "tags.rhai",
        &format!(
            r#"
let h = host("etcd0");
h.command("dropped", #{{ cmd: "true" }});
let a = h.command("a", #{{ argv: ["echo", "AAA"], read_only: true }});
let b = h.command("b", #{{ argv: ["echo", "BBB"], read_only: true }});
h.file("c", #{{ path: "{dir}", content: a.stdout }}).tag("x");
"#
        ),
    );
    let out = t.arg("run").arg(&pb).arg("-i").arg(&inv).args(["--json", "--tags", "x"]).run().success();
    assert!(
        out.outcomes().iter().all(|(_, task, _)| task != "dropped" && task != "b"),
        "{:?}",
        out.outcomes()
    );
    assert_eq!(lab.ssh("etcd0", &format!("cat {dir}")), "AAA");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn graph_check_colours_tasks_by_their_predicted_outcome() {
    let lab = Lab::get();
    let dir = scratch("graphcheck");
    let out = Test::new()
        .args(["graph", "playbooks/hello.rhai", "-i"])
        .arg(&lab.inventory)
        .args(["--check", "-e", &format!("dir={dir}")])
        .run()
        .success();
    let hosts = lab.hosts.len();
    // hostname is read-only (unchanged); every directory and greeting, and the flag, would change.
    assert!(out.stdout.contains(&format!("would change ({})", 2 * hosts + 1)), "{}", out.stdout);
    assert!(out.stdout.contains("unchanged (1)"), "{}", out.stdout);
    assert!(out.stdout.contains("fillcolor=\"#fdd49e\", tooltip=\"would change\""), "{}", out.stdout);
    for (host, _, _) in &lab.hosts {
        lab.ssh(host, &format!("test ! -e {dir}"));
    }
}
