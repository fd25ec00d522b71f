//! Lab tests of the file-moving modules, `template` and `scp`: the real `engine` binary against
//! the lab's hosts. Each test works under its own scratch path on the shared hosts.
//! Bad arguments are checked with `engine graph` on the fixture inventory, which never connects.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;
use support::lab::{Lab, scratch};
use support::{Output, Test, fixture};

/// `engine CMD playbook -i inventory --json ARGS...`, expecting `code`.
fn engine(cmd: &str, playbook: &Path, inventory: &Path, args: &[&str], code: i32) -> Output {
    Test::new().arg(cmd).arg(playbook).arg("-i").arg(inventory).arg("--json").args(args).run().code(code)
}

fn changes(task: &Value) -> Vec<String> {
    task["changes"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap().to_owned()).collect()
}

// ---- template

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn template_check_run_rerun_and_diff() {
    let lab = Lab::get();
    let path = format!("{}.conf", scratch("template"));
    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0"], &[]));
    std::fs::copy(fixture("files/etcd.conf.j2"), t.path().join("etcd.conf.j2")).unwrap();
    let pb = t.file(
        "template.rhai",
        &format!(
            r#"
host("etcd0").template("etcd.conf", #{{
    path: "{path}",
    template: template_file("etcd.conf.j2"),
    vars: #{{ name: param("name", "one"), peers: ["a", "b"], port: 2379 }},
    mode: "0640",
}});
"#
        ),
    );
    let hostname = lab.ssh("etcd0", "hostname").trim().to_owned();
    let expected = |name: &str| {
        format!("# {hostname}: written by engine\nname={name}\npeer=a\npeer=b\nlisten=0.0.0.0:2379\n")
    };

    // Check on a fresh path predicts the creation and creates nothing.
    let check = engine("check", &pb, &inv, &[], 0);
    let predicted = check.task("etcd0", "etcd.conf");
    assert_eq!(predicted["status"], "changed");
    let bytes = expected("one").len();
    assert_eq!(changes(&predicted), [format!("create {path} ({bytes} bytes)")]);
    lab.ssh("etcd0", &format!("test ! -e {path}"));

    // The run does exactly that, with the facts gathered for `facts.hostname`.
    let first = engine("run", &pb, &inv, &[], 0);
    let done = first.task("etcd0", "etcd.conf");
    assert_eq!(done["status"], "changed");
    assert_eq!(changes(&done), changes(&predicted));
    assert_eq!(lab.ssh("etcd0", &format!("cat {path}")), expected("one"));
    assert_eq!(lab.ssh("etcd0", &format!("stat -c %a {path}")).trim(), "640");

    // Idempotent.
    let again = engine("run", &pb, &inv, &[], 0);
    assert_eq!(again.task("etcd0", "etcd.conf")["status"], "ok");

    // --diff shows a unified diff of the rendered change, and check still changes nothing.
    let diff = engine("check", &pb, &inv, &["--diff", "-e", "name=two"], 0);
    let task = diff.task("etcd0", "etcd.conf");
    assert_eq!(task["status"], "changed");
    let text = task["diff"].as_str().unwrap();
    let headers = [format!("--- before: {path}"), format!("+++ after: {path}")];
    for needle in [headers[0].as_str(), headers[1].as_str(), "-name=one", "+name=two"] {
        assert!(text.contains(needle), "diff lacks {needle:?}:\n{text}");
    }
    assert!(!text.contains("-peer=a"), "only the changed line differs:\n{text}");
    assert_eq!(lab.ssh("etcd0", &format!("cat {path}")), expected("one"));

    engine("run", &pb, &inv, &["-e", "name=two"], 0);
    assert_eq!(lab.ssh("etcd0", &format!("cat {path}")), expected("two"));
    assert_eq!(lab.ssh("etcd0", &format!("stat -c %a {path}")).trim(), "640", "mode kept on rewrite");
    lab.ssh("etcd0", &format!("rm -f {path}"));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn template_with_an_undefined_variable_fails_naming_it_and_its_line() {
    let lab = Lab::get();
    let path = format!("{}.conf", scratch("template-undefined"));
    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0"], &[]));
    let pb = t.file(
        "undefined.rhai",
        &format!(
            r#"
host("etcd0").template("conf", #{{ path: "{path}", template: "name={{{{ name }}}}\nport={{{{ port }}}}\n", vars: #{{ name: "x" }} }});
"#
        ),
    );
    let out = engine("run", &pb, &inv, &[], 2);
    let task = out.task("etcd0", "conf");
    assert_eq!(task["status"], "failed");
    let error = task["error"].as_str().unwrap();
    for needle in ["undefined.rhai:2:", "template line 2", "`port` is undefined", "defined: name"] {
        assert!(error.contains(needle), "error lacks {needle:?}: {error}");
    }
    lab.ssh("etcd0", &format!("test ! -e {path}"));
}

#[test]
fn bad_arguments_are_reported_with_their_location_before_anything_connects() {
    let t = Test::new();
    let pb = t.file(
        "bad.rhai",
        r#"let h = host("etcd0");
h.template("syntax", #{ path: "/tmp/x", template: "a\n{{ x }\n" });
h.template("src", #{ path: "/tmp/y", src: "x.j2" });
h.scp("no from", #{ src: "/a", dest: "/b" });
h.scp("relative", #{ from: "etcd1", src: "rel", dest: "/b" });
h.scp("both ways", #{ from: "etcd1", src: "/a", dest: "/b", to_controller: "out" });
"#,
    );
    let out = Test::new().arg("graph").arg(&pb).arg("-i").arg(fixture("inventory.yml")).run().code(1);
    for needle in [
        "bad.rhai has 5 errors",
        "bad.rhai:2:41: task \"syntax\": invalid arguments for module template: template line 2: syntax error",
        "bad.rhai:3:38: task \"src\": invalid arguments for module template: unknown argument `src`; valid: group, mode, owner, path, template, vars",
        "bad.rhai:4:3: task \"no from\": invalid arguments for module scp: missing `from`",
        "bad.rhai:5:37: task \"relative\": invalid arguments for module scp: src must be an absolute path",
        "bad.rhai:6:61: task \"both ways\": invalid arguments for module scp: to_controller copies from this task's host",
    ] {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
    }
}

// ---- scp

/// `sha256sum` and mode of every file under `dir` on `host`, relative paths, sorted.
fn tree(lab: &Lab, host: &str, dir: &str) -> String {
    lab.ssh(
        host,
        &format!(
            "cd {dir} && find . -type f -printf '%P %m ' -exec sh -c 'sha256sum < \"$1\"' sh {{}} \\; | sort"
        ),
    )
}

/// `inode:mtime` of every file under `dir` on `host`, to prove nothing was rewritten.
fn stamps(lab: &Lab, host: &str, dir: &str) -> String {
    lab.ssh(host, &format!("cd {dir} && find . -type f -exec stat -c '%n %i:%Y' {{}} + | sort"))
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn scp_copies_a_tree_from_host_to_hosts_with_excludes_and_only_what_differs() {
    let lab = Lab::get();
    let dir = scratch("scp-pki");
    let secret = format!("secret-material-{}", std::process::id());
    lab.ssh(
        "etcd0",
        &format!(
            "set -e; mkdir -p {dir}/pki/etcd; cd {dir}/pki; printf 'cert A\\n' > ca.crt; \
             printf -- '-----BEGIN PRIVATE KEY-----\\n{secret}\\n-----END PRIVATE KEY-----\\n' > ca.key; \
             chmod 600 ca.key; echo x > apiserver.crt; echo y > apiserver.key; chmod 600 apiserver.key; \
             printf 'etcd ca\\n' > etcd/ca.crt; chmod 640 etcd/ca.crt"
        ),
    );
    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0", "etcd1", "etcd2"], &[]));
    // etcd0 needs a task of its own to be part of the run (see the report: peers are the run's hosts).
    let pb = t.file(
        "pki.rhai",
        &format!(
            r#"
let ready = host("etcd0").command("source ready", #{{ argv: ["test", "-d", "{dir}/pki"], read_only: true }});
for name in ["etcd1", "etcd2"] {{
    host(name).scp("pki", #{{
        from: "etcd0",
        src: "{dir}/pki",
        dest: "{dir}/pki",
        exclude: ["apiserver.crt", "apiserver.key"],
    }}).after(ready);
}}
"#
        ),
    );

    // Check predicts the directories and the three files, and changes nothing.
    let check = engine("check", &pb, &inv, &[], 0);
    let expected_changes = vec![
        format!("create directory {dir}"),
        format!("create directory {dir}/pki"),
        format!("create directory {dir}/pki/etcd"),
        format!("send etcd0:{dir}/pki/ca.crt -> {dir}/pki/ca.crt (7 bytes, new)"),
        format!("send etcd0:{dir}/pki/ca.key -> {dir}/pki/ca.key ({} bytes, new)", 55 + secret.len()),
        format!("send etcd0:{dir}/pki/etcd/ca.crt -> {dir}/pki/etcd/ca.crt (8 bytes, new)"),
    ];
    for host in ["etcd1", "etcd2"] {
        let task = check.task(host, "pki");
        assert_eq!(task["status"], "changed");
        assert_eq!(changes(&task), expected_changes);
        lab.ssh(host, &format!("test ! -e {dir}"));
    }

    // The run does exactly what was predicted: same content and modes, nothing excluded.
    let first = engine("run", &pb, &inv, &[], 0);
    let source = tree(&lab, "etcd0", &format!("{dir}/pki"));
    let wanted: String =
        source.lines().filter(|l| !l.starts_with("apiserver.")).map(|l| format!("{l}\n")).collect();
    assert_eq!(wanted.lines().count(), 3, "{source}");
    for host in ["etcd1", "etcd2"] {
        assert_eq!(changes(&first.task(host, "pki")), expected_changes);
        assert_eq!(tree(&lab, host, &format!("{dir}/pki")), wanted, "{host} has what etcd0 has");
    }
    assert!(!first.stdout.contains(&secret), "key material in the report");

    // A second run sends nothing: ok, and every file keeps its inode and mtime.
    let before = stamps(&lab, "etcd1", &dir);
    let second = engine("run", &pb, &inv, &[], 0);
    for host in ["etcd1", "etcd2"] {
        assert_eq!(second.task(host, "pki")["status"], "ok");
    }
    assert_eq!(stamps(&lab, "etcd1", &dir), before);

    // Changed sources: the diff shows the certificate, hides the key, and names the mode change.
    lab.ssh(
        "etcd0",
        &format!(
            "set -e; cd {dir}/pki; printf 'cert B\\n' > ca.crt; \
             printf -- '-----BEGIN PRIVATE KEY-----\\n{secret}-2\\n-----END PRIVATE KEY-----\\n' > ca.key; \
             chmod 644 etcd/ca.crt"
        ),
    );
    let diff = engine("check", &pb, &inv, &["--diff"], 0);
    let task = diff.task("etcd1", "pki");
    assert_eq!(
        changes(&task),
        [
            format!("send etcd0:{dir}/pki/ca.crt -> {dir}/pki/ca.crt (7 bytes, content differs)"),
            format!(
                "send etcd0:{dir}/pki/ca.key -> {dir}/pki/ca.key ({} bytes, content differs)",
                57 + secret.len()
            ),
            format!("{dir}/pki/etcd/ca.crt: mode 0640 -> 0644"),
        ]
    );
    let text = task["diff"].as_str().unwrap();
    assert!(text.contains("-cert A\n+cert B\n"), "{text}");
    assert!(text.contains(&format!("secret content of {dir}/pki/ca.key differs")), "{text}");
    assert!(!diff.stdout.contains(&secret), "key material in the diff:\n{}", diff.stdout);

    engine("run", &pb, &inv, &[], 0);
    let source = tree(&lab, "etcd0", &format!("{dir}/pki"));
    let wanted: String =
        source.lines().filter(|l| !l.starts_with("apiserver.")).map(|l| format!("{l}\n")).collect();
    for host in ["etcd1", "etcd2"] {
        assert_eq!(tree(&lab, host, &format!("{dir}/pki")), wanted);
    }
    for host in ["etcd0", "etcd1", "etcd2"] {
        lab.ssh(host, &format!("rm -rf {dir}"));
    }
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn scp_waits_for_the_task_whose_output_it_copies() {
    let lab = Lab::get();
    let dir = scratch("scp-output");
    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0", "etcd1"], &[]));
    let pb = t.file(
        "output.rhai",
        &format!(
            r#"
let stamp = host("etcd0").file("stamp", #{{ path: "{dir}.stamp", content: "v1\n", mode: "0600" }});
host("etcd1").scp("copy stamp", #{{ from: "etcd0", src: stamp.output("path"), dest: "{dir}/" }});
"#
        ),
    );
    let out = engine("run", &pb, &inv, &[], 0);
    assert_eq!(out.task("etcd1", "copy stamp")["status"], "changed");
    let copied =
        format!("{dir}/{}", Path::new(&format!("{dir}.stamp")).file_name().unwrap().to_str().unwrap());
    assert_eq!(lab.ssh("etcd1", &format!("cat {copied}")), "v1\n");
    assert_eq!(lab.ssh("etcd1", &format!("stat -c %a {copied}")).trim(), "600", "source mode kept");
    lab.ssh("etcd0", &format!("rm -f {dir}.stamp"));
    lab.ssh("etcd1", &format!("rm -rf {dir}"));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn scp_between_the_controller_and_a_host() {
    let lab = Lab::get();
    let dir = scratch("scp-controller");
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha\n").unwrap();
    std::fs::set_permissions(src.join("a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(src.join("sub/b.txt"), "beta\n").unwrap();
    std::fs::write(src.join("skip.tmp"), "no\n").unwrap();
    let down = local.path().join("down");

    let t = Test::new();
    let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0"], &[]));
    let pb = t.file(
        "controller.rhai",
        &format!(
            r#"
let h = host("etcd0");
h.scp("up", #{{ from: "controller", src: "{src}", dest: "{dir}", exclude: ["*.tmp"] }});
h.scp("down", #{{ src: "{dir}", to_controller: "{down}" }});
"#,
            src = src.display(),
            down = down.display(),
        ),
    );
    let first = engine("run", &pb, &inv, &[], 0);
    assert_eq!(first.task("etcd0", "up")["status"], "changed");
    assert_eq!(first.task("etcd0", "down")["status"], "changed");
    assert_eq!(lab.ssh("etcd0", &format!("cat {dir}/a.txt {dir}/sub/b.txt")), "alpha\nbeta\n");
    assert_eq!(lab.ssh("etcd0", &format!("stat -c %a {dir}/a.txt")).trim(), "640");
    lab.ssh("etcd0", &format!("test ! -e {dir}/skip.tmp"));
    assert_eq!(std::fs::read_to_string(down.join("a.txt")).unwrap(), "alpha\n");
    assert_eq!(std::fs::read_to_string(down.join("sub/b.txt")).unwrap(), "beta\n");
    assert_eq!(std::fs::metadata(down.join("a.txt")).unwrap().permissions().mode() & 0o7777, 0o640);
    assert!(!down.join("skip.tmp").exists());

    let second = engine("run", &pb, &inv, &[], 0);
    assert_eq!(second.count("ok"), 2, "{:?}", second.outcomes());

    // A changed local file is sent again, and only it.
    std::fs::write(src.join("sub/b.txt"), "beta 2\n").unwrap();
    let third = engine("run", &pb, &inv, &[], 0);
    let up = third.task("etcd0", "up");
    assert_eq!(
        changes(&up),
        [format!(
            "send controller:{}/sub/b.txt -> {dir}/sub/b.txt (7 bytes, content differs)",
            src.display()
        )]
    );
    assert_eq!(std::fs::read_to_string(down.join("sub/b.txt")).unwrap(), "beta 2\n");
    lab.ssh("etcd0", &format!("rm -rf {dir}"));
}
