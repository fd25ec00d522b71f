//! Lab tests for the service modules: `systemd`, `apt` and `wait`.
//! End-to-end: the real `engine` binary against the lab's Debian hosts, over real SSH; host state
//! is checked independently with the system's ssh client. Every test uses its own unit names,
//! ports and paths (derived from the test process id), so tests can share the hosts.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Instant;

use support::lab::{Lab, scratch};
use support::{Output, Test, fixture};

/// Runs `engine CMD playbook -i inventory --json EXTRA...`, both given as text.
fn engine(cmd: &str, inventory: &str, playbook: &str, extra: &[&str]) -> Output {
    let t = Test::new();
    let inv = t.file("inv.yml", inventory);
    let pb = t.file("pb.rhai", playbook);
    t.arg(cmd).arg(&pb).arg("-i").arg(&inv).arg("--json").args(extra).run()
}

/// The `changes` lines of a finished-task event.
fn changes(event: &serde_json::Value) -> Vec<String> {
    event["changes"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap().to_owned()).collect()
}

/// A unit name no other test (or test process) uses.
fn unit(test: &str) -> String {
    format!("engine-test-{test}-{}.service", std::process::id())
}

/// `systemctl show -p PROPERTY --value UNIT` on `host`.
fn show(lab: &Lab, host: &str, unit: &str, property: &str) -> String {
    lab.ssh(host, &format!("systemctl show -p {property} --value {unit}")).trim().to_owned()
}

/// Stops and forgets `unit` on `host`, whatever state it is in.
fn remove_unit(lab: &Lab, host: &str, unit: &str) {
    lab.ssh_status(
        host,
        &format!(
            "systemctl disable --now {unit}; rm -rf /etc/systemd/system/{unit} /etc/systemd/system/{unit}.d; \
             systemctl daemon-reload; systemctl reset-failed {unit}"
        ),
    );
}

const SLEEPER_UNIT: &str = "[Unit]\nDescription=engine test sleeper\n\n[Service]\nExecStart=/bin/sleep infinity\n\n\
                            [Install]\nWantedBy=multi-user.target\n";

fn sleeper_dropin(version: &str) -> String {
    format!("[Service]\nEnvironment=VERSION={version}\n")
}

/// The sleeper unit on worker0; Rust's `{:?}` of a plain ASCII string is a valid Rhai string literal.
fn sleeper_playbook(unit: &str, version: &str, state: &str, enabled: bool) -> String {
    format!(
        r#"
let h = host("worker0");
h.systemd("sleeper", #{{
    name: "{unit}",
    unit: {SLEEPER_UNIT:?},
    dropins: #{{ "10-env": {:?} }},
    enabled: {enabled},
    state: "{state}",
}});
"#,
        sleeper_dropin(version)
    )
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn systemd_unit_is_written_started_restarted_on_change_and_left_alone_otherwise() {
    let lab = Lab::get();
    let unit = unit("sleeper");
    let inventory = lab.inventory_for(&["worker0"], &[]);
    let unit_file = format!("/etc/systemd/system/{unit}");
    let dropin = format!("/etc/systemd/system/{unit}.d/10-env.conf");

    // Check on a fresh host: predicts everything, changes nothing.
    let check = engine("check", &inventory, &sleeper_playbook(&unit, "1", "started", true), &[]).success();
    let predicted = check.task("worker0", "sleeper");
    assert_eq!(predicted["status"], "changed");
    let predicted = changes(&predicted);
    assert_eq!(
        predicted,
        [
            format!("create {unit_file} ({} bytes)", SLEEPER_UNIT.len()),
            format!("create {dropin} ({} bytes)", sleeper_dropin("1").len()),
            "daemon-reload".to_owned(),
            format!("enable {unit}"),
            format!("start {unit}"),
        ]
    );
    lab.ssh("worker0", &format!("test ! -e {unit_file} && test ! -e {dropin}"));
    assert_eq!(show(&lab, "worker0", &unit, "LoadState"), "not-found");

    // The first run does exactly that.
    let first = engine("run", &inventory, &sleeper_playbook(&unit, "1", "started", true), &[]).success();
    let done = first.task("worker0", "sleeper");
    assert_eq!(done["status"], "changed");
    assert_eq!(changes(&done), predicted);
    assert_eq!(lab.ssh("worker0", &format!("systemctl is-active {unit}")).trim(), "active");
    assert_eq!(lab.ssh("worker0", &format!("systemctl is-enabled {unit}")).trim(), "enabled");
    assert_eq!(show(&lab, "worker0", &unit, "Environment"), "VERSION=1");
    let pid = show(&lab, "worker0", &unit, "MainPID");
    let since = show(&lab, "worker0", &unit, "ActiveEnterTimestampMonotonic");
    assert_ne!(pid, "0");

    // Unchanged: no reload, no restart.
    let second = engine("run", &inventory, &sleeper_playbook(&unit, "1", "started", true), &[]).success();
    assert_eq!(second.task("worker0", "sleeper")["status"], "ok");
    assert_eq!(show(&lab, "worker0", &unit, "MainPID"), pid, "an unchanged run restarted the unit");
    assert_eq!(show(&lab, "worker0", &unit, "ActiveEnterTimestampMonotonic"), since);

    // A changed drop-in: daemon-reload and a restart, with a readable diff.
    let third =
        engine("run", &inventory, &sleeper_playbook(&unit, "2", "started", true), &["--diff"]).success();
    let changed = third.task("worker0", "sleeper");
    assert_eq!(
        changes(&changed),
        [
            format!("content of {dropin} ({} bytes)", sleeper_dropin("2").len()),
            "daemon-reload".to_owned(),
            format!("restart {unit} (its unit files changed)"),
        ]
    );
    let diff = changed["diff"].as_str().unwrap();
    assert!(diff.contains(&format!("--- before: {dropin}\n+++ after: {dropin}\n")), "{diff}");
    assert!(diff.contains("-Environment=VERSION=1\n+Environment=VERSION=2\n"), "{diff}");
    assert_eq!(show(&lab, "worker0", &unit, "Environment"), "VERSION=2", "daemon-reload ran");
    assert_eq!(show(&lab, "worker0", &unit, "NeedDaemonReload"), "no");
    assert_ne!(show(&lab, "worker0", &unit, "MainPID"), pid, "the change did not restart the unit");
    assert_ne!(show(&lab, "worker0", &unit, "ActiveEnterTimestampMonotonic"), since);

    // Stopped and disabled, then idempotent again.
    let stop = engine("run", &inventory, &sleeper_playbook(&unit, "2", "stopped", false), &[]).success();
    assert_eq!(
        changes(&stop.task("worker0", "sleeper")),
        [format!("disable {unit}"), format!("stop {unit}")]
    );
    assert_eq!(lab.ssh_status("worker0", &format!("systemctl is-active {unit}")).1.trim(), "inactive");
    assert_eq!(lab.ssh_status("worker0", &format!("systemctl is-enabled {unit}")).1.trim(), "disabled");
    let again = engine("run", &inventory, &sleeper_playbook(&unit, "2", "stopped", false), &[]).success();
    assert_eq!(again.task("worker0", "sleeper")["status"], "ok");

    remove_unit(&lab, "worker0", &unit);
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn systemd_restarted_always_acts_and_reloaded_starts_a_stopped_unit() {
    let lab = Lab::get();
    let unit = unit("restarted");
    let inventory = lab.inventory_for(&["worker0"], &[]);
    let playbook = |state: &str| {
        format!(
            r#"host("worker0").systemd("svc", #{{ name: "{unit}", state: "{state}",
                unit: "[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/true\n" }});"#
        )
    };
    let first = engine("run", &inventory, &playbook("reloaded"), &[]).success();
    assert!(
        changes(&first.task("worker0", "svc")).contains(&format!("start {unit} (not running, so no reload)"))
    );
    let pid = show(&lab, "worker0", &unit, "MainPID");
    let reload = engine("run", &inventory, &playbook("reloaded"), &[]).success();
    assert_eq!(changes(&reload.task("worker0", "svc")), [format!("reload {unit}")]);
    assert_eq!(show(&lab, "worker0", &unit, "MainPID"), pid, "a reload keeps the process");
    let restart = engine("run", &inventory, &playbook("restarted"), &[]).success();
    assert_eq!(changes(&restart.task("worker0", "svc")), [format!("restart {unit}")]);
    assert_ne!(show(&lab, "worker0", &unit, "MainPID"), pid);
    remove_unit(&lab, "worker0", &unit);
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_failing_unit_reports_systemctl_and_its_journal() {
    let lab = Lab::get();
    let unit = unit("failing");
    let marker = format!("boom-{}", std::process::id());
    let inventory = lab.inventory_for(&["worker0"], &[]);
    let playbook = format!(
        r#"host("worker0").systemd("broken", #{{ name: "{unit}", state: "started",
            unit: "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo {marker} >&2; exit 3'\n" }});"#
    );
    let out = engine("run", &inventory, &playbook, &[]).code(2);
    let failed = out.task("worker0", "broken");
    assert_eq!(failed["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    for needle in [
        "pb.rhai:1:",
        &format!("`systemctl start -- '{unit}'` exited with status 1"),
        &format!("Job for {unit} failed"),
        &format!("last 20 journal lines of {unit}:"),
        &marker,
        "status=3",
    ] {
        assert!(error.contains(needle), "error lacks {needle:?}:\n{error}");
    }
    remove_unit(&lab, "worker0", &unit);
}

#[test]
fn bad_arguments_are_refused_at_plan_time_with_their_location() {
    // `engine graph` on the fixture inventory never connects: this needs no lab.
    let t = Test::new();
    let pb = t.file(
        "bad.rhai",
        r#"let h = host("web0");
h.systemd("path as name", #{ name: "/etc/systemd/system/x.service" });
h.systemd("typo", #{ name: "x", enable: true });
h.systemd("bad state", #{ name: "x", state: "running" });
h.apt("pinned", #{ name: "hello=-2.10" });
h.apt("nothing", #{ state: "present" });
h.wait("two conditions", #{ port: 22, command: "true" });
h.wait("long interval", #{ command: "true", timeout: 5, interval: 10 });
"#,
    );
    let out = t.arg("graph").arg(&pb).arg("-i").arg(fixture("inventory.yml")).run().failure();
    for needle in [
        "bad.rhai has 7 errors",
        "bad.rhai:2:30: task \"path as name\": invalid arguments for module systemd: name must be a unit name, not a path",
        "bad.rhai:3:33: task \"typo\": invalid arguments for module systemd: unknown argument `enable`; did you mean `enabled`?",
        "bad.rhai:4:38: task \"bad state\": invalid arguments for module systemd: argument `state` must be one of \"started\", \"stopped\", \"restarted\", \"reloaded\", got \"running\"",
        "bad.rhai:5:20: task \"pinned\": invalid arguments for module apt: \"-2.10\" is not a Debian version",
        "bad.rhai:6:3: task \"nothing\": invalid arguments for module apt: missing name",
        "bad.rhai:7:3: task \"two conditions\": invalid arguments for module wait: give only one of port, command and url",
        "bad.rhai:8:57: task \"long interval\": invalid arguments for module wait: interval must be",
    ] {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
    }
}

/// A port for this test process (so parallel runs of the suite do not collide).
fn port(offset: u32) -> u32 {
    20_000 + (std::process::id() % 10_000) * 2 + offset
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn wait_for_a_port_that_opens_after_a_delay_in_check_mode_and_run() {
    let lab = Lab::get();
    let inventory = lab.inventory_for(&["worker1"], &[]);
    let listener = unit("listener");
    let port = port(0);
    // python3 is in the lab image for tests like this one; the engine itself never needs it.
    let start_listener = || {
        lab.ssh(
            "worker1",
            &format!(
                "systemd-run --unit {listener} --collect sh -c \
                 'sleep 2; exec python3 -m http.server {port} --bind 127.0.0.1'"
            ),
        )
    };
    let playbook = format!(
        r#"let h = host("worker1");
h.wait("port open", #{{ port: {port}, timeout: 20 }});
h.wait("page served", #{{ url: "http://127.0.0.1:{port}/", timeout: 5 }});
h.wait("missing page", #{{ url: "http://127.0.0.1:{port}/nope", status: 404, timeout: 5 }});
"#
    );
    for cmd in ["check", "run"] {
        start_listener();
        let started = Instant::now();
        let out = engine(cmd, &inventory, &playbook, &[]).success();
        let took = started.elapsed().as_secs_f64();
        for task in ["port open", "page served", "missing page"] {
            assert_eq!(out.task("worker1", task)["status"], "ok", "{cmd}: {task}");
        }
        let waited = out.task("worker1", "port open")["elapsed_ms"].as_u64().unwrap();
        assert!(waited >= 1500, "{cmd}: the port cannot be open before the listener starts ({waited} ms)");
        assert!(took < 15.0, "{cmd} took {took:.1} s");
        lab.ssh("worker1", &format!("systemctl stop {listener}"));
    }
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn wait_for_a_closed_port_fails_within_its_timeout() {
    let lab = Lab::get();
    let inventory = lab.inventory_for(&["worker1"], &[]);
    let port = port(1);
    let playbook = format!(
        r#"let h = host("worker1");
h.wait("never opens", #{{ port: {port}, timeout: 3 }});
h.file("after the wait", #{{ path: "{}", content: "x" }});
"#,
        scratch("closed-port")
    );
    let started = Instant::now();
    let out = engine("run", &inventory, &playbook, &[]).code(2);
    let took = started.elapsed().as_secs_f64();
    let failed = out.task("worker1", "never opens");
    assert_eq!(failed["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    for needle in [
        "pb.rhai:2:",
        &format!("port 127.0.0.1:{port} not ready after 2 s (3 probes, timeout 3 s)"),
        "last probe: exited with status 1",
        "Connection refused",
    ] {
        assert!(error.contains(needle), "error lacks {needle:?}: {error}");
    }
    assert_eq!(out.task("worker1", "after the wait")["status"], "skipped");
    assert!(took < 6.0, "a 3 s wait took {took:.1} s in all");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn wait_for_a_command_reports_its_output() {
    let lab = Lab::get();
    let inventory = lab.inventory_for(&["worker1"], &[]);
    let flag = scratch("wait-flag");
    let playbook = format!(
        r#"let h = host("worker1");
h.command("flag later", #{{ cmd: "rm -f {flag}; (sleep 1; touch {flag}) >/dev/null 2>&1 &" }});
h.wait("flag", #{{ command: "test -e {flag}", timeout: 10 }});
h.wait("never", #{{ command: "echo not yet; exit 1", timeout: 2 }});
"#
    );
    let out = engine("run", &inventory, &playbook, &[]).code(2);
    assert_eq!(out.task("worker1", "flag")["status"], "ok");
    let error = out.task("worker1", "never")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("last probe: exited with status 1: not yet"), "{error}");
    lab.ssh("worker1", &format!("rm -f {flag}"));
}

/// The lab image's local apt repository (see `xtask/src/image-tweak.sh`).
fn has_lab_repo(lab: &Lab, host: &str) -> bool {
    lab.ssh_status(host, "test -s /srv/lab-repo/Packages && test -e /etc/apt/sources.list.d/lab.list").0
        == Some(0)
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn apt_installs_and_removes_packages_from_the_lab_repository() {
    let lab = Lab::get();
    let host = "worker2";
    assert!(
        has_lab_repo(&lab, host),
        "the lab image predates its local apt repository: run `cargo xtask lab up` to rebuild it"
    );
    let inventory = lab.inventory_for(&[host], &[]);
    let playbook = |state: &str| {
        format!(r#"host("{host}").apt("tools", #{{ names: ["hello", "tree"], state: "{state}" }});"#)
    };
    let installed = || {
        lab.ssh_status(host, "dpkg-query -W -f='${Package}=${Status}\\n' hello tree 2>/dev/null")
            .1
            .lines()
            .filter(|l| l.ends_with(" installed"))
            .count()
    };
    // Another run of this test may have left them installed.
    lab.ssh_status(host, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q hello tree");
    assert_eq!(installed(), 0);

    let check = engine("check", &inventory, &playbook("present"), &[]).success();
    let predicted = changes(&check.task(host, "tools"));
    assert_eq!(predicted.last().unwrap(), "install hello, tree", "{predicted:?}");
    assert_eq!(installed(), 0, "check installed something");

    let first = engine("run", &inventory, &playbook("present"), &[]).success();
    assert_eq!(changes(&first.task(host, "tools")), predicted, "the run did not do what check predicted");
    assert_eq!(installed(), 2);
    assert_eq!(lab.ssh(host, "hello").trim(), "Hello, world!");

    let second = engine("run", &inventory, &playbook("present"), &[]).success();
    assert_eq!(second.task(host, "tools")["status"], "ok");

    let remove = engine("run", &inventory, &playbook("absent"), &[]).success();
    assert_eq!(changes(&remove.task(host, "tools")), ["remove hello, tree"]);
    assert_eq!(installed(), 0);
    let again = engine("run", &inventory, &playbook("absent"), &[]).success();
    assert_eq!(again.task(host, "tools")["status"], "ok");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn apt_auto_updates_missing_lists_and_never_refuses_unknown_packages() {
    let lab = Lab::get();
    // Not worker2: the other apt test installs the same packages there at the same time.
    let host = "master2";
    assert!(has_lab_repo(&lab, host), "the lab image predates its local apt repository");
    let inventory = lab.inventory_for(&[host], &[]);
    let unknown = format!(
        r#"host("{host}").apt("ghost", #{{ name: "engine-no-such-package", update_cache: "never" }});"#
    );
    let out = engine("run", &inventory, &unknown, &[]).code(2);
    let error = out.task(host, "ghost")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("no install candidate for engine-no-such-package and update_cache is never"),
        "{error}"
    );

    // With no lists at all, `auto` updates before installing (the lab image ships none).
    lab.ssh_status(host, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q hello");
    lab.ssh(host, "rm -f /var/lib/apt/lists/*_Packages /var/lib/apt/periodic/update-success-stamp");
    let playbook = format!(r#"host("{host}").apt("hello", #{{ name: "hello", cache_valid_time: 600 }});"#);
    let first = engine("run", &inventory, &playbook, &[]).success();
    let done = changes(&first.task(host, "hello"));
    assert_eq!(done, ["apt-get update (no install candidate for hello)", "install hello"]);
    lab.ssh(host, "test -e /var/lib/apt/periodic/update-success-stamp");
    lab.ssh(host, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q hello");
    // Fresh lists and a candidate: no update this time.
    let second = engine("run", &inventory, &playbook, &[]).success();
    assert_eq!(changes(&second.task(host, "hello")), ["install hello"]);
    lab.ssh(host, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q hello");
}

#[test]
fn the_module_reference_documents_the_lab_repository_and_the_reserved_word() {
    let out = Test::new().args(["modules", "apt"]).run().success();
    assert!(out.stdout.contains("file:/srv/lab-repo"), "{}", out.stdout);
    assert!(out.stdout.contains("`package` is a reserved word in Rhai"), "{}", out.stdout);
    let out = Test::new().args(["modules", "wait"]).run().success();
    assert!(out.stdout.contains("check mode"), "{}", out.stdout);
}
