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
    // A JSON `-e` keeps the value's spaces and quotes (a `key=value` one is split on spaces, as
    // Ansible splits it).
    let pw = serde_json::json!({ "pw": value }).to_string();
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

/// `--diff` of a kubeconfig on a real host, in every output: the console (check and run), the
/// `--json` events and the journal show the file, with its client key (base64 PEM, spelled as
/// kubectl writes it) and its token hidden; its certificate data is shown. The host gets it whole.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn kubeconfig_diff_shows_no_client_key_or_token() {
    let lab = Lab::get();
    let _lab = exclusive();
    let dir = scratch("kubeconfig");
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    std::fs::write(cwd.join("inv.yml"), lab.inventory_for(&["etcd2"], &[])).unwrap();
    // An EC key, base64 as in `client-key-data`; the token is 40 hex digits, no known shape.
    let key_data = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUJWeURtbFQ1VjBwR1N1YVZucTBYSzRuRDZpNlhJcVJZVlRPVDdmUQotLS0tLUVORCBFQyBQUklWQVRFIEtFWS0tLS0tCg==";
    let token = format!("{:040x}", u128::from(std::process::id()) * 0x9e37_79b9_7f4a_7c15);
    let cert_data = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENDQVRlZ0F3SUJBZ0lJUQo=";
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {cert_data}\n    \
         server: https://10.77.0.10:6443\n  name: lab\nusers:\n- name: admin\n  user:\n    \
         client-certificate-data: {cert_data}\n    client-key-data: {key_data}\n    token: {token}\n"
    );
    std::fs::write(
        cwd.join("kubeconfig.rhai"),
        format!(
            "host(\"etcd2\").file(\"admin kubeconfig\", #{{ path: \"{dir}-kubeconfig\", content: {kubeconfig:?}, mode: \"0600\" }});\n"
        ),
    )
    .unwrap();
    lab.ssh("etcd2", &format!("rm -f {dir}-kubeconfig; printf 'apiVersion: v1\\n' > {dir}-kubeconfig"));
    let base = ["kubeconfig.rhai", "-i", "inv.yml", "--diff"];
    let mut all = String::new();
    for (command, json, want) in [("check", true, 0), ("check", false, 0), ("run", false, 0)] {
        let args: Vec<&str> = [&[command][..], &base, if json { &["--json"][..] } else { &[][..] }].concat();
        let (code, text) = engine(cwd, &args);
        assert_eq!(code, Some(want), "{text}");
        all.push_str(&text);
    }
    all.push_str(&journals(cwd));
    assert_eq!(lab.ssh("etcd2", &format!("cat {dir}-kubeconfig")), kubeconfig, "the host has it whole");
    assert!(all.contains("+    client-key-data: <secret: private key>"), "{all}");
    assert!(all.contains("+    token: <secret>"), "{all}");
    assert!(
        all.contains(&format!("+    client-certificate-data: {cert_data}")),
        "certificates are shown: {all}"
    );
    assert_absent(
        &all,
        &[
            ("the client key", key_data[..40].to_owned()),
            ("the client key's tail", key_data[key_data.len() - 40..].to_owned()),
            ("the token", token.clone()),
            ("a private key", "PRIVATE KEY-----".to_owned()),
        ],
    );
    lab.ssh("etcd2", &format!("rm -f {dir}-kubeconfig"));
}

/// The whole HA guide on nine bare hosts (it installs everything, so it runs on the bare lab:
/// `cargo xtask test` runs it there, with tests/ha.rs), with every kind of output engine has,
/// then a search of all of it for the keys and tokens the run made (read from the hosts
/// afterwards).
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn full_ha_run_shows_no_key_material() {
    let lab = Lab::bare();
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
    // keepalived's shared secret, made on master0 by the first run, reaches the template as an
    // argument named `password`: hidden by its name, in the keepalived.conf diffs (which show
    // the rest of the file).
    assert!(all.contains("auth_pass <secret>"), "no keepalived.conf diff with the password hidden");
    let vrrp = lab.ssh("master0", "cat /var/lib/engine/secrets/vrrp-password");
    assert_eq!(vrrp.len(), 8, "{vrrp:?}");
    needles.push(("the VRRP password", vrrp));
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

/// While a `kubeadm join` and a `command` with `env` run on a lab host (as `deploy`, through
/// sudo), `ps -eo args` run there as another, unprivileged user (`nobody`) shows neither the
/// join token nor the environment value, though it does see both commands running; sudo's log
/// (the host's journal) and the engine's `-vv` log hold neither either (the variable's name
/// does not look secret, so only keeping it off command lines hides it). The join still got
/// its token (the stand-in records it), from a 0600 file that is gone afterwards.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn join_tokens_and_env_values_never_reach_a_command_line() {
    let lab = Lab::get();
    let _lab = exclusive();
    let host = "worker2";
    let pid = std::process::id() % 1_000_000;
    let token = format!("{pid:06}.{pid:06}watchme123");
    let hash = format!("sha256:{}", "ab".repeat(32));
    let value = format!("plain-greeting-{pid}-xyzzy");
    // A fresh node, and a slow kubeadm in front of the stand-in (earlier in sudo's PATH), so
    // the join can be watched while it runs.
    lab.ssh(
        host,
        "kubeadm reset -f >/dev/null && printf '#!/bin/sh\\nsleep 5\\nexec /usr/local/bin/kubeadm \"$@\"\\n' \
         > /usr/local/sbin/kubeadm && chmod 755 /usr/local/sbin/kubeadm",
    );
    let since = lab.ssh(host, "date +%s").trim().to_owned();
    let t = support::Test::new();
    let inventory = t.file(
        "inv.yml",
        &lab.inventory_for(&[host], &[(host, "ansible_user", "deploy"), (host, "ansible_become", "true")]),
    );
    let playbook = t.file(
        "watched.rhai",
        &format!(
            r#"let h = host("{host}");
h.concurrent();
h.kubeadm("join", #{{ action: "join", endpoint: "10.77.0.21:6443", token: "{token}", ca_cert_hash: "{hash}" }});
h.command("greet", #{{ cmd: "sleep 5; test -n \"$GREETING\"", env: #{{ GREETING: "{value}" }} }});
"#
        ),
    );
    let run =
        std::thread::spawn(move || t.arg("-vv").arg("run").arg(&playbook).arg("-i").arg(&inventory).run());

    // Watch as `nobody` until both commands were seen running (bounded: 20 s).
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (mut saw_join, mut saw_greet) = (false, false);
    let mut config_mode = String::new();
    while !(saw_join && saw_greet) && std::time::Instant::now() < deadline && !run.is_finished() {
        let ps = lab.ssh(host, "runuser -u nobody -- ps -eo args");
        if let Some(file) = config_file(&ps).filter(|_| config_mode.is_empty()) {
            // The join may end between the two looks: then the next one tries again.
            let (_, mode, _) = lab.ssh_status(host, &format!("stat -c '%a %U' {file}"));
            config_mode = mode.trim().to_owned();
        }
        saw_join |= ps.contains("kubeadm join");
        saw_greet |= ps.contains("sleep 5; test -n");
        seen.push_str(&ps);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = run.join().unwrap();
    let journal = lab.ssh(host, &format!("journalctl --no-pager -o cat --since @{since}"));
    let (_, recorded, _) = lab.ssh_status(host, "cat /var/lib/kube-standin/join.json");
    lab.ssh(host, "rm -f /usr/local/sbin/kubeadm; kubeadm reset -f >/dev/null");
    let out = out.success();
    assert!(
        saw_join && saw_greet,
        "the watch missed the commands (join {saw_join}, greet {saw_greet}):\n{seen}"
    );
    let needles = [("the join token", token.clone()), ("the env value", value.clone())];
    assert_absent(&seen, &needles);
    assert_absent(&journal, &needles);
    assert_absent(&format!("{}{}", out.stdout, out.stderr), &needles);
    assert!(out.stderr.contains("ssh.exec"), "-vv logged the commands: {}", out.stderr);
    assert!(recorded.contains(&token), "the join got its token: {recorded}");
    assert_eq!(config_mode, "600 root", "the join's settings file is readable by root alone");
    let config_file = config_file(&seen).unwrap();
    let (code, _, _) = lab.ssh_status(host, &format!("test ! -e {config_file}"));
    assert_eq!(code, Some(0), "{config_file} was removed after the join");
}

/// The file `kubeadm join --config FILE` reads, as `ps` shows the running kubeadm (the shell
/// line that starts it shows `"$f"` instead).
fn config_file(ps: &str) -> Option<String> {
    ps.lines()
        .filter_map(|l| l.split("kubeadm join --config ").nth(1)?.split_whitespace().next())
        .find(|file| file.starts_with('/'))
        .map(str::to_owned)
}
