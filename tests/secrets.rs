//! End-to-end tests that secrets stay secret (see `engine::redact`): values wrapped in
//! `secret(...)`, private keys and bootstrap tokens never appear in anything engine prints or
//! writes (stdout, stderr with `-vv`, `--json` events, `--diff`, errors, DOT, the run journal),
//! while the hosts still get the real values; and key files are 0600 on hosts and on the controller.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::lab::{Lab, scratch};

/// The HA test restarts every host: the tests of this file take turns.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const ALL: [&str; 9] =
    ["etcd0", "etcd1", "etcd2", "master0", "master1", "master2", "worker0", "worker1", "worker2"];

/// Runs the engine in `cwd` and returns (exit code, stdout + stderr).
fn engine(cwd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap();
    // The command line itself (it may hold the secret) is not part of the output searched.
    let text = format!(
        "$ engine {}\n--- stdout\n{}\n--- stderr\n{}\n",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Every journal in `cwd`, as one text.
fn journals(cwd: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(cwd.join(".engine/runs")) {
        for entry in entries {
            text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
    }
    text
}

/// Panics, naming the needle and where it was found, when `haystack` holds any of `needles`.
fn assert_absent(haystack: &str, needles: &[(&str, String)]) {
    for (what, needle) in needles {
        assert!(!needle.is_empty(), "empty needle for {what}");
        if let Some(at) = haystack.find(needle.as_str()) {
            let start = haystack[..at].char_indices().rev().nth(300).map_or(0, |(i, _)| i);
            let end = (at + needle.len() + 100).min(haystack.len());
            let end = (end..=haystack.len()).find(|i| haystack.is_char_boundary(*i)).unwrap();
            panic!("{what} leaked:\n...{}...", &haystack[start..end]);
        }
    }
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn secret_values_reach_hosts_and_nothing_else() {
    let lab = Lab::get();
    let _lab = exclusive();
    let dir = scratch("secrets");
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    let value = format!("S3cr3t-{}-Value \"quoted\"", std::process::id());
    std::fs::write(cwd.join("inv.yml"), lab.inventory_for(&["etcd2"], &[])).unwrap();
    std::fs::write(
        cwd.join("secret.rhai"),
        format!(
            r#"
let h = host("etcd2");
let pw = secret(param("pw"));
h.file(`config with ${{pw}}`, #{{ path: "{dir}-conf", content: `password=${{pw}}` + "\n", mode: "0600" }});
h.command("leaky", #{{ argv: ["sh", "-c", "echo \"refused: $0\" >&2; exit 3", pw] }});
"#
        ),
    )
    .unwrap();
    std::fs::write(
        cwd.join("bad.rhai"),
        "let h = host(\"etcd2\");\nh.file(\"bad\", #{ path: secret(param(\"pw\")), content: \"x\" });\n",
    )
    .unwrap();
    lab.ssh("etcd2", &format!("rm -f {dir}-conf"));
    let pw = format!("pw={value}");
    let base = ["secret.rhai", "-i", "inv.yml", "-e", pw.as_str()];
    let mut all = String::new();
    let mut step = |args: &[&str], want: i32| {
        let (code, text) = engine(cwd, args);
        assert_eq!(code, Some(want), "{text}");
        all.push_str(&text);
    };
    // The run: the file gets the value, the failing command would echo it in its error.
    step(&[&["-vv", "run"][..], &base, &["--json", "--diff"]].concat(), 2);
    assert_eq!(lab.ssh("etcd2", &format!("cat {dir}-conf")), format!("password={value}\n"));
    // A diff against other content, in JSON and on the console; the DOT graph; a plan error.
    lab.ssh("etcd2", &format!("echo old > {dir}-conf"));
    step(&[&["-vv", "check"][..], &base, &["--json", "--diff"]].concat(), 0);
    step(&[&["-vv", "run"][..], &base, &["--diff"]].concat(), 2);
    step(&[&["graph"][..], &base].concat(), 0);
    step(&["graph", "bad.rhai", "-i", "inv.yml", "-e", pw.as_str()], 1);
    all.push_str(&journals(cwd));

    // What the output does say: the redaction marker, where the value was.
    assert!(all.contains("config with <secret>") && all.contains("refused: <secret>"), "{all}");
    assert!(all.contains("+password=<secret>"), "the diff shows the change, not the value: {all}");
    let escaped = serde_json::to_string(&value).unwrap();
    assert_absent(
        &all,
        &[
            ("the secret", value.clone()),
            ("the secret, JSON-escaped", escaped.trim_matches('"').to_owned()),
            ("the secret's first part", format!("S3cr3t-{}", std::process::id())),
        ],
    );
    lab.ssh("etcd2", &format!("rm -f {dir}-conf"));
}

/// The whole HA guide on nine fresh hosts, with every kind of output engine has, then a search
/// of all of it for the keys and tokens the run made (read from the hosts afterwards).
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn full_ha_run_shows_no_key_material() {
    let lab = Lab::get();
    let _lab = exclusive();
    lab.restart(&ALL);
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    let playbook = support::root().join("playbooks/ha.rhai");
    let playbook = playbook.to_str().unwrap();
    let inventory = lab.inventory.to_str().unwrap();
    let mut all = String::new();
    let mut step = |args: &[&str]| {
        let (code, text) = engine(cwd, args);
        assert_eq!(code, Some(0), "{text}");
        all.push_str(&text);
    };
    step(&["-vv", "check", playbook, "-i", inventory, "--json", "--diff"]);
    step(&["-vv", "run", playbook, "-i", inventory, "--json", "--diff"]);
    step(&["-vv", "run", playbook, "-i", inventory, "--diff"]);
    step(&["graph", playbook, "-i", inventory]);
    step(&["-vv", "graph", playbook, "-i", inventory, "--check"]);
    // A key copied to the controller keeps its 0600.
    let local = cwd.join("pulled/");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(
        cwd.join("pull.rhai"),
        format!(
            "host(\"master0\").scp(\"pull the CA key\", #{{ src: \"/etc/kubernetes/pki/ca.key\", to_controller: \"{}/\" }});\n",
            local.display()
        ),
    )
    .unwrap();
    step(&["run", "pull.rhai", "-i", inventory]);
    let mode = std::fs::metadata(local.join("ca.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the CA key on the controller");
    all.push_str(&journals(cwd));

    // Key material as the hosts hold it: every private key file's body, and its mode.
    let mut needles: Vec<(&str, String)> = vec![("a PEM private key", "PRIVATE KEY".to_owned())];
    let mut keys = 0;
    for host in ALL {
        let files = lab.ssh(
            host,
            "find /etc/kubernetes /etc/etcd* -type f \\( -name '*.key' -o -name '*-key.pem' \\) 2>/dev/null | sort",
        );
        for file in files.lines() {
            let mode = lab.ssh(host, &format!("stat -c %a {file}"));
            assert_eq!(mode.trim(), "600", "{host}:{file} is {mode}");
            let body = lab.ssh(host, &format!("sed -n 2p {file}"));
            assert!(body.len() >= 40, "{host}:{file}: not a PEM key? {body:?}");
            needles.push(("a private key's body", body[..40].to_owned()));
            keys += 1;
        }
    }
    assert!(keys >= 20, "expected the etcd and Kubernetes keys, found {keys}");
    // Bootstrap tokens, whole and their secret half.
    let tokens = lab.ssh("master0", "kubeadm token list | awk 'NR > 1 { print $1 }'");
    assert!(!tokens.trim().is_empty(), "master0 has no bootstrap token");
    for token in tokens.lines() {
        needles.push(("a bootstrap token", token.to_owned()));
        needles.push(("a bootstrap token's secret", token.split_once('.').unwrap().1.to_owned()));
    }
    // keepalived's shared secret is an argument named `password`: hidden by its name, in the
    // keepalived.conf diffs (which show the rest of the file).
    assert!(all.contains("auth_pass <secret>"), "no keepalived.conf diff with the password hidden");
    needles.push(("the VRRP password", "4be37dc3".to_owned()));
    assert_absent(&all, &needles);
}

/// Without a lab: `engine graph` draws a task whose name holds a secret() value, and an invalid
/// argument's error quotes it; neither shows it.
#[test]
fn dot_and_plan_errors_hide_secret_values() {
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    let inventory = support::fixture("inventory.yml");
    let inventory = inventory.to_str().unwrap();
    std::fs::write(
        cwd.join("graph.rhai"),
        "let pw = secret(param(\"pw\"));\nhost(\"web0\").file(`set ${pw}`, #{ path: \"/etc/app.conf\", content: pw });\n",
    )
    .unwrap();
    std::fs::write(cwd.join("bad.rhai"), "host(\"web0\").file(\"bad\", #{ path: secret(param(\"pw\")) });\n")
        .unwrap();
    let pw = "pw=dot-\"secret\"-value";
    let (code, dot) = engine(cwd, &["graph", "graph.rhai", "-i", inventory, "-e", pw]);
    assert_eq!(code, Some(0), "{dot}");
    assert!(dot.contains("label=\"set <secret>\\n[file]\""), "{dot}");
    let (code, error) = engine(cwd, &["graph", "bad.rhai", "-i", inventory, "-e", pw]);
    assert_eq!(code, Some(1), "{error}");
    assert!(
        error.contains("argument `path` must be an absolute path, got the string \"<secret>\""),
        "{error}"
    );
    for text in [&dot, &error] {
        assert_absent(
            text,
            &[("the secret", "secret\"-value".to_owned()), ("escaped", "secret\\\"-value".to_owned())],
        );
    }
}
