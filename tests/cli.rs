//! Integration tests: the real `engine` binary on fixture playbooks, with no hosts contacted.
#![allow(clippy::unwrap_used)]

use crate::support;

use support::{Test, fixture, root};

fn graph(playbook: &std::path::Path) -> Test {
    Test::new().arg("graph").arg(playbook).arg("-i").arg(fixture("inventory.yml"))
}

#[test]
fn hello_graph_is_deterministic_dot() {
    let first = graph(&root().join("playbooks/hello.rhai")).run().success();
    let second = graph(&root().join("playbooks/hello.rhai")).run().success();
    assert_eq!(first.stdout, second.stdout, "DOT output must be deterministic");
    insta::assert_snapshot!("hello_dot", first.stdout);
}

/// `engine graph playbooks/ha.rhai` over the example inventory, with `extra` arguments.
fn ha_graph(extra: &[&str]) -> String {
    Test::new()
        .args(["graph", "playbooks/ha.rhai", "-i", "playbooks/inventory.example.yml"])
        .args(extra)
        .run()
        .success()
        .stdout
}

fn edge_count(dot: &str) -> usize {
    dot.lines().filter(|l| l.contains(" -> ")).count()
}

/// Issue 20's "Done when": by default ha.rhai's graph leaves out implied edges and handler
/// bookkeeping, keeping fewer than half of the plan's edges, groups each host's tasks by the
/// guide's sections, and is the same twice.
#[test]
fn the_ha_graph_is_readable_by_default() {
    let readable = ha_graph(&[]);
    let all = ha_graph(&["--all-edges"]);
    assert!(
        2 * edge_count(&readable) < edge_count(&all),
        "{} of {} edges drawn",
        edge_count(&readable),
        edge_count(&all)
    );
    assert_eq!(readable, ha_graph(&[]), "DOT output must be deterministic");
    assert!(readable.contains("label=\"Run kubeadm init on master0\";"), "{readable}");
    insta::assert_snapshot!("ha_dot", readable);
}

/// `--all-edges` draws every edge of the plan, exactly as `engine graph` did before it left
/// implied ones out (the snapshot was taken from that version; upgrade.rhai has handlers, a
/// budget, `when` conditions and implied edges, and no sections).
#[test]
fn all_edges_draws_every_edge_as_before() {
    let all = Test::new()
        .args(["graph", "playbooks/upgrade.rhai", "-i", "playbooks/inventory.example.yml"])
        .args(["-e", "upgrade_to=v1.31.1", "--all-edges"])
        .run()
        .success()
        .stdout;
    insta::assert_snapshot!("upgrade_all_edges_dot", all);
}

#[test]
fn hello_graph_is_accepted_by_graphviz() {
    let dot = graph(&root().join("playbooks/hello.rhai")).run().success().stdout;
    let Ok(mut child) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("ENGINE_LAB_REQUIRED").is_none(),
            "graphviz must be installed for the full suite"
        );
        eprintln!("skipped: graphviz is not installed");
        return;
    };
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), dot.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

#[test]
fn svg_without_graphviz_says_how_to_get_it() {
    Test::new()
        .args(["graph", "playbooks/hello.rhai", "-i"])
        .arg(fixture("inventory.yml"))
        .args(["--format", "svg"])
        .env("PATH", "/nonexistent")
        .run()
        .failure()
        .stderr_has("Graphviz `dot` is not installed")
        .stderr_has("apt-get install graphviz");
}

#[test]
fn limit_and_tags_keep_what_the_subset_depends_on() {
    let t = Test::new();
    let pb = t.file(
        "sel.rhai",
        r#"
let a = host("etcd0").file("ca", #{ path: "/tmp/ca", content: "x" });
let b = host("etcd1").file("cert", #{ path: "/tmp/cert", content: "y" }).after(a).tag("certs");
host("web0").file("page", #{ path: "/tmp/page", content: "z" });
"#,
    );
    let out = t
        .arg("graph")
        .arg(&pb)
        .arg("-i")
        .arg(fixture("inventory.yml"))
        .args(["--limit", "etcd1"])
        .run()
        .success();
    assert!(out.stdout.contains("\"ca\\n[file]\""), "the dependency on etcd0 is kept: {}", out.stdout);
    assert!(out.stdout.contains("cert"));
    assert!(!out.stdout.contains("page"), "{}", out.stdout);
    let out = graph(&pb).args(["--tags", "certs"]).run().success();
    assert!(out.stdout.contains("ca\\n") && out.stdout.contains("cert") && !out.stdout.contains("page"));
    graph(&pb).args(["--limit", "nosuch"]).run().failure().stderr_has("names no host or group");
}

#[test]
fn extra_vars_reach_the_playbook() {
    let t = Test::new();
    let pb = t.file(
        "vars.rhai",
        r#"host("web0").file(`dir ${param("name")}`, #{ path: "/tmp/x", content: "x" });"#,
    );
    graph(&pb).args(["-e", "name=hello"]).run().success().stdout_has("dir hello");
    graph(&pb).run().failure().stderr_has("variable \"name\" is not set").stderr_has("vars.rhai:1:");
}

/// Bad playbooks: each gets a clear error with file:line, and none panics.
#[test]
fn bad_playbooks_get_located_errors() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("syntax", "let x = ;\n", &["syntax.rhai:1:"]),
        (
            "unknown_host",
            "let h = host(\"etcd9\");\nh.file(\"f\", #{ path: \"/x\", content: \"\" });\n",
            &["unknown_host.rhai:1:", "unknown host \"etcd9\"", "groups are: all, etcd, web"],
        ),
        (
            "unknown_group",
            "for h in group(\"nosuch\") {}\n",
            &["unknown_group.rhai:1:", "unknown group \"nosuch\"", "groups are"],
        ),
        (
            "cycle",
            "let a = host(\"web0\").file(\"a\", #{ path: \"/a\", content: \"\" });\nlet b = host(\"web1\").file(\"b\", #{ path: \"/b\", content: \"\" });\na.after(b);\nb.after(a);\n",
            &["dependency cycle", "web0: a (", "web1: b (", "→", "cycle.rhai:1:"],
        ),
        (
            "unknown_arg",
            "\n\nhost(\"web0\").file(\"f\", #{ path: \"/x\", contnet: \"\" });\n",
            &[
                "unknown_arg.rhai:3:",
                "unknown argument `contnet`; did you mean `content`?",
                "engine modules file",
            ],
        ),
        (
            "bad_mode",
            "host(\"web0\").file(\"f\", #{ path: \"/x\", content: \"\", mode: \"0999\" });\n",
            &["bad_mode.rhai:1:", "invalid mode"],
        ),
        ("runaway", "let i = 0;\nloop { i += 1; }\n", &["runaway.rhai:", "operation limit"]),
        ("recursion", "fn f(n) { f(n + 1) }\nf(0);\n", &["recursion.rhai:", "deeply"]),
        (
            "duplicate",
            "let h = host(\"web0\");\nh.file(\"f\", #{ path: \"/x\", content: \"\" });\nh.file(\"f\", #{ path: \"/y\", content: \"\" });\n",
            &["duplicate.rhai:3:", "duplicate task name \"f\"", "duplicate.rhai:2:"],
        ),
        (
            "unknown_module",
            "host(\"web0\").task(\"fiel\", \"f\", #{});\n",
            &["unknown_module.rhai:1:", "unknown module \"fiel\""],
        ),
        (
            "type_error",
            "host(\"web0\").file(\"f\", #{ path: 42 });\n",
            &["type_error.rhai:1:", "argument `path` must be a string, got the integer 42"],
        ),
    ];
    for (name, text, needles) in cases {
        let t = Test::new();
        let pb = t.file(&format!("{name}.rhai"), text);
        let out = t.arg("graph").arg(&pb).arg("-i").arg(fixture("inventory.yml")).run().failure();
        for needle in *needles {
            assert!(out.stderr.contains(needle), "{name}: stderr lacks {needle:?}:\n{}", out.stderr);
        }
        out.stderr_snapshot(&format!("bad_playbook_{name}"));
    }
}

#[test]
fn several_errors_are_reported_at_once() {
    let t = Test::new();
    let pb = t.file(
        "many.rhai",
        "host(\"nope\");\nhost(\"web0\").file(\"f\", #{ path: \"rel\", content: \"\" });\nhost(\"web1\").command(\"c\", #{});\n",
    );
    graph(&pb)
        .run()
        .failure()
        .stderr_snapshot("several_errors")
        .stderr_has("3 errors")
        .stderr_has("many.rhai:1:")
        .stderr_has("many.rhai:2:")
        .stderr_has("argument `path` must be an absolute path, got the string \"rel\"")
        .stderr_has("many.rhai:3:");
}

#[test]
fn bad_inventories_name_file_and_line() {
    let t = Test::new();
    let inv = t.file("inv.yml", "all:\n  hosts:\n    a: {ansible_host: x\n");
    let out = t.args(["graph", "playbooks/hello.rhai", "-i"]).arg(&inv).run().failure();
    assert!(out.stderr.contains("inv.yml:"), "{}", out.stderr);
    out.stderr_snapshot("bad_inventory_yaml");
    let t = Test::new();
    let inv = t.file("inv.yml", "all:\n  hosst:\n    a:\n");
    t.args(["graph", "playbooks/hello.rhai", "-i"])
        .arg(&inv)
        .run()
        .failure()
        .stderr_snapshot("bad_inventory_key")
        .stderr_has("unknown key \"hosst\"");
    let t = Test::new();
    let inv = t.file("inv.yml", "all:\n  hosts:\n    a: {ansible_port: 99999}\n");
    t.args(["run", "playbooks/hello.rhai", "-i"])
        .arg(&inv)
        .run()
        .failure()
        .stderr_snapshot("bad_inventory_port")
        .stderr_has("not a port number");
}

#[test]
fn modules_are_documented_from_their_schema() {
    Test::new().arg("modules").run().success().stdout_has("file").stdout_has("command");
    Test::new()
        .args(["modules", "file"])
        .run()
        .success()
        .stdout_has("path (string, required)")
        .stdout_has("mode (string, optional)")
        .stdout_has("One of: \"file\"");
    Test::new().args(["modules", "nosuch"]).run().failure().stderr_has("no module named");
}

/// ```text
///  web0:  a ──order──▶ b ──order──▶ c ──notify──▶ h        web1: x ──data──▶ c
/// ```
#[test]
fn tags_keep_needs_and_notified_handlers_but_not_mere_predecessors() {
    let t = Test::new();
    let pb = t.file(
        "tags.rhai",
        r#"
let w = host("web0");
let x = host("web1").command("x", #{ argv: ["hostname"], read_only: true });
let h = w.handler("command", "h", #{ cmd: "true" });
w.command("a", #{ cmd: "true" });
w.command("b", #{ cmd: "true" });
w.file("c", #{ path: "/tmp/c", content: x.stdout }).tag("c").notify(h);
"#,
    );
    let out = graph(&pb).args(["--tags", "c"]).run().success();
    for kept in ["\"x\\n[command]\"", "\"c\\n[file]\"", "\"h\\n[command]\""] {
        assert!(out.stdout.contains(kept), "{kept} kept: {}", out.stdout);
    }
    for dropped in ["\"a\\n[command]\"", "\"b\\n[command]\""] {
        assert!(!out.stdout.contains(dropped), "{dropped} dropped: {}", out.stdout);
    }
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    Test::new().args(["run"]).run().failure();
    Test::new().args(["run", "x.rhai", "-i", "y.yml", "--forks", "abc"]).run().failure();
    Test::new().arg("--help").run().success().stdout_has("Usage");
}

#[test]
fn templates_come_only_from_the_playbook_folder() {
    let t = Test::new();
    let pb = t.file(
        "t.rhai",
        r#"host("web0").file("f", #{ path: "/x", content: template_file("../../etc/passwd") });"#,
    );
    graph(&pb).run().failure().stderr_has("outside the playbook's folder");
}

/// The bad-input corpus (`tests/fixtures/bad/`): every playbook (`*.rhai`, checked with
/// `engine graph` over the fixture inventory) and every inventory (`*.yml`, with `engine check`
/// on a playbook touching every host) must be refused with exit 1, no panic, and a message
/// holding each `|`-separated piece of the file's first-line `expect:` comment (file:line
/// included). Inventories point at 127.0.0.1 port 1, so one accepted by mistake cannot reach
/// anything. Files a case needs beside it (libraries it imports) live in subfolders
/// (`bad/imports/`), which are not cases themselves.
#[test]
fn the_bad_input_corpus_is_refused_with_located_errors() {
    let dir = fixture("bad");
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} cases", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let expect = first
            .split_once("expect:")
            .map(|(_, e)| e.trim())
            .unwrap_or_else(|| panic!("{}: the first line must be an `expect:` comment", path.display()));
        let test = if path.extension().is_some_and(|e| e == "rhai") {
            Test::new().arg("graph").arg(path).arg("-i").arg(fixture("inventory.yml"))
        } else {
            Test::new()
                .arg("check")
                .arg(fixture("touch_all.rhai"))
                .arg("-i")
                .arg(path)
                .args(["--connect-timeout", "2"])
        };
        let out = test.run();
        let name = path.file_name().unwrap().to_string_lossy();
        if out.code != Some(1) || out.stderr.contains("panicked") {
            failures.push(format!("{name}: exit {:?}\n{}{}", out.code, out.stdout, out.stderr));
            continue;
        }
        // The snippet around an error on line 2 shows line 1, the `expect:` comment itself,
        // which must not count as the message.
        let stderr = out.stderr.replace(first, "");
        for piece in expect.split('|').map(str::trim) {
            if !stderr.contains(piece) {
                failures.push(format!("{name}: lacks {piece:?}:\n{}", out.stderr));
            }
        }
        // The whole message, as its snapshot `main__cli__bad_STEM`; every case is compared
        // (each mismatch writes its `.snap.new`) before the test fails.
        let stem = path.file_stem().unwrap().to_string_lossy();
        let snapshot = std::panic::AssertUnwindSafe(|| out.stderr_snapshot(&format!("bad_{stem}")));
        if std::panic::catch_unwind(snapshot).is_err() {
            failures
                .push(format!("{name}: the message differs from tests/snapshots/main__cli__bad_{stem}.snap"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

/// Ten thousand tasks, each handed the same 8 MiB string: within every Rhai limit (one string
/// of 8 MiB, a few operations per task), but 80 GiB once copied into the tasks. The sandbox's
/// limit on a plan's size stops the script at the task that crosses 256 MiB (the 32nd), before
/// the copies are made, naming the limit and the line.
#[test]
fn a_plan_of_ten_thousand_8_mib_tasks_is_refused_by_the_plan_size_limit() {
    let t = Test::new();
    let pb = t.file(
        "big_plan.rhai",
        "let big = \"\";\nbig.pad(8 * 1024 * 1024, 'x');\nfor i in 0..10000 {\n    \
         host(\"etcd0\").file(`copy ${i}`, #{ path: `/tmp/copy-${i}`, content: big });\n}\n",
    );
    graph(&pb)
        .run()
        .failure()
        .stderr_has("big_plan.rhai:4:19: the plan's task names and arguments would exceed 256 MiB")
        .stderr_has("the sandbox's limit on a plan's size")
        .stderr_snapshot("plan_too_big");
}
