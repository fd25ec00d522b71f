//! Lab tests of reaching hosts through a jump host, as OpenSSH users do: ssh_config
//! `ProxyJump` (`-F`), `-o ProxyJump=` and `-o ProxyCommand="ssh -W %h:%p ..."` in
//! `ansible_ssh_common_args`, errors that name the hop, and the keys offered.
//!
//! Three fleet hosts play the parts: h47 is the jump host ("jumpbox"), h48 and h49 the hosts
//! behind it. That a connection really went through the jump host shows on the target: sshd's
//! `SSH_CONNECTION` names the jump host's address as the client. A host only the jump host can
//! reach is its own loopback (`localhost` behind it), which the controller cannot reach directly.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

use support::lab::Lab;
use support::{Test, changes, engine_json};

const JUMP: &str = "h47";
const TARGETS: [&str; 2] = ["h48", "h49"];

/// Writes down the client address each target's SSH connection came from, at `PROOF`
/// (replaced per test: this file's tests run side by side on the same hosts).
const PLAYBOOK: &str = r#"
for h in hosts() {
    let from = h.command("client address", #{ cmd: "echo ${SSH_CONNECTION%% *}", read_only: true });
    h.file("proof", #{ path: "PROOF", content: `${from.stdout}` });
}
"#;

/// An ssh_config with the jump host as `jumpbox` (its own key and known_hosts) and, when
/// `jump_all`, `ProxyJump jumpbox` for the targets.
fn ssh_config(lab: &Lab, jump_all: bool) -> String {
    let mut text = format!(
        "Host jumpbox\n  HostName {}\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
         UserKnownHostsFile {}\n",
        lab.address(JUMP),
        lab.key.display(),
        lab.known_hosts.display()
    );
    if jump_all {
        let targets: Vec<&str> = TARGETS.iter().map(|h| lab.address(h)).collect();
        text.push_str(&format!("Host {}\n  ProxyJump jumpbox\n", targets.join(" ")));
    }
    text
}

fn proof_is_the_jump_host(lab: &Lab, proof: &str) {
    for host in TARGETS {
        let seen = lab.ssh(host, &format!("cat {proof}"));
        assert_eq!(seen.trim(), lab.address(JUMP), "{host} was reached through {JUMP}");
        lab.ssh(host, &format!("rm -f {proof}"));
    }
}

/// Runs the playbook twice on the targets with `args`: the first run writes the proof, the
/// second changes nothing.
fn run_twice(t: &Test, lab: &Lab, inventory: &Path, args: &[&str], proof: &str) {
    let playbook = t.file("pb.rhai", &PLAYBOOK.replace("PROOF", proof));
    let first = engine_json("run", &playbook, inventory, args, 0);
    assert!(!changes(&first.task("h48", "proof")).is_empty(), "{:?}", first.outcomes());
    let second = engine_json("run", &playbook, inventory, args, 0);
    assert_eq!(second.count("changed"), 0, "{:?}", second.outcomes());
    proof_is_the_jump_host(lab, proof);
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ssh_config_proxy_jump_reaches_the_hosts_behind_the_jump_host_and_reruns_change_nothing() {
    let lab = Lab::fleet();
    let t = Test::new();
    let config = t.file("ssh_config", &ssh_config(&lab, true));
    let inventory = t.file("inv.yml", &lab.inventory_for(&TARGETS, &[]));
    run_twice(&t, &lab, &inventory, &["-F", config.to_str().unwrap()], "/tmp/engine-jump-proof-config");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn proxy_jump_and_proxy_command_in_ansible_ssh_common_args_go_through_the_jump_host() {
    let lab = Lab::fleet();
    let t = Test::new();
    // `-o ProxyJump=jumpbox`, the hop's settings from the -F file (which names no ProxyJump).
    let config = t.file("ssh_config", &ssh_config(&lab, false));
    let quoted = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
    let jump_args = quoted("-o ProxyJump=jumpbox");
    let jump: Vec<(&str, &str, &str)> =
        TARGETS.iter().map(|h| (*h, "ansible_ssh_common_args", jump_args.as_str())).collect();
    let inventory = t.file("inv.yml", &lab.inventory_for(&TARGETS, &jump));
    run_twice(&t, &lab, &inventory, &["-F", config.to_str().unwrap()], "/tmp/engine-jump-proof-args");
    // The Ansible idiom: `ProxyCommand="ssh -W %h:%p ..."`, with no ssh_config at all.
    let command = quoted(&format!(
        "-o ProxyCommand=\"ssh -W %h:%p -q -i {} -o UserKnownHostsFile={} root@{}\"",
        lab.key.display(),
        lab.known_hosts.display(),
        lab.address(JUMP)
    ));
    let extra: Vec<(&str, &str, &str)> =
        TARGETS.iter().map(|h| (*h, "ansible_ssh_common_args", command.as_str())).collect();
    let inventory = t.file("inv2.yml", &lab.inventory_for(&TARGETS, &extra));
    let empty = t.file("empty_config", "");
    run_twice(&t, &lab, &inventory, &["-F", empty.to_str().unwrap()], "/tmp/engine-jump-proof-command");
}

/// The jump host's own loopback: reachable through it, not from the controller.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_host_only_the_jump_host_can_reach_is_reached_through_it_and_not_directly() {
    let lab = Lab::fleet();
    let t = Test::new();
    // The jump host's key, filed under `localhost` too.
    let jump_key = std::fs::read_to_string(&lab.known_hosts)
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{JUMP},")))
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .unwrap();
    let known = t.file(
        "known_hosts",
        &format!("{}\nlocalhost {jump_key}\n", std::fs::read_to_string(&lab.known_hosts).unwrap()),
    );
    let inventory = t.file(
        "inv.yml",
        &format!(
            "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: {}\n    engine_known_hosts: {}\n  \
             hosts:\n    behind:\n      ansible_host: localhost\n",
            lab.key.display(),
            known.display()
        ),
    );
    let playbook =
        t.file("pb.rhai", r#"host("behind").command("name", #{ argv: ["hostname"], read_only: true });"#);
    let config =
        t.file("ssh_config", &format!("{}Host localhost\n  ProxyJump jumpbox\n", ssh_config(&lab, false)));
    let through = engine_json("run", &playbook, &inventory, &["-F", config.to_str().unwrap()], 0);
    assert_eq!(through.task("behind", "name")["status"], "ok", "{:?}", through.outcomes());
    let direct = t.file("direct_config", "");
    let out = engine_json(
        "run",
        &playbook,
        &inventory,
        &["-F", direct.to_str().unwrap(), "--connect-timeout", "3"],
        2,
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("behind (root@localhost:22)"), "a direct connect fails: {text}");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_jump_host_that_is_not_known_or_cannot_reach_the_target_fails_naming_the_hop_and_changes_nothing() {
    let lab = Lab::fleet();
    let t = Test::new();
    // known_hosts without the jump host.
    let without_jump: String = std::fs::read_to_string(&lab.known_hosts)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(&format!("{JUMP},")))
        .map(|l| format!("{l}\n"))
        .collect();
    let known = t.file("known_hosts", &without_jump);
    let config = t.file(
        "ssh_config",
        &format!(
            "Host jumpbox\n  HostName {}\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\nHost {}\n  ProxyJump jumpbox\n",
            lab.address(JUMP),
            lab.key.display(),
            known.display(),
            lab.address("h48")
        ),
    );
    let inventory = t.file("inv.yml", &lab.inventory_for(&["h48"], &[]));
    let playbook = t.file("pb.rhai", &PLAYBOOK.replace("PROOF", "/tmp/engine-jump-proof-unknown"));
    let out = engine_json("run", &playbook, &inventory, &["-F", config.to_str().unwrap()], 2);
    let text = format!("{}{}", out.stdout, out.stderr);
    let hop = format!("via jumpbox (root@{}:22): host key for {}:22", lab.address(JUMP), lab.address(JUMP));
    assert!(text.contains(&hop), "names the hop: {text}");
    assert_eq!(out.count("changed"), 0);
    let (code, _, _) = lab.ssh_status("h48", "test -e /tmp/engine-jump-proof-unknown");
    assert_eq!(code, Some(1), "nothing was written");

    // A target name the jump host cannot resolve: the jump host says so.
    let config = t.file("ssh_config2", &ssh_config(&lab, false));
    let inventory = t.file(
        "inv2.yml",
        &lab.inventory_for(&["h48"], &[("h48", "ansible_ssh_common_args", "\"-J jumpbox\"")]).replace(
            &format!("ansible_host: {}", lab.address("h48")),
            "ansible_host: no-such-host.engine-lab",
        ),
    );
    let out = engine_json("run", &playbook, &inventory, &["-F", config.to_str().unwrap()], 2);
    let text = format!("{}{}", out.stdout, out.stderr);
    let hop = format!(
        "via jumpbox (root@{}:22): the jump host could not connect to no-such-host.engine-lab:22",
        lab.address(JUMP)
    );
    assert!(text.contains(&hop), "names the hop and the target: {text}");
}

/// An ssh-agent of the test's own (killed by pid when dropped), at a socket in `dir`.
struct Agent {
    pid: u32,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let out = Command::new("ssh-agent").arg("-a").arg(&socket).arg("-s").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let pid = text
            .split(';')
            .find_map(|part| part.trim().strip_prefix("SSH_AGENT_PID="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("ssh-agent did not start: {text}"));
        Agent { pid, socket }
    }

    /// `ssh-add FILE`, giving `passphrase` through SSH_ASKPASS when there is one.
    fn add(&self, dir: &Path, key: &Path, passphrase: Option<&str>) {
        let mut c = Command::new("ssh-add");
        c.arg("-q").arg(key).env("SSH_AUTH_SOCK", &self.socket);
        if let Some(passphrase) = passphrase {
            let askpass = dir.join("askpass.sh");
            std::fs::write(&askpass, format!("#!/bin/sh\necho '{passphrase}'\n")).unwrap();
            std::fs::set_permissions(&askpass, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
            c.env("SSH_ASKPASS", &askpass).env("SSH_ASKPASS_REQUIRE", "force").env("DISPLAY", ":0");
        }
        let status = c.status().unwrap();
        assert!(status.success(), "ssh-add {}", key.display());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

fn keygen(path: &Path, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", "engine-test", "-N", passphrase, "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Seven agent keys no host accepts would use up sshd's MaxAuthTries (6) before the right
/// one; with the key file given, only it is offered. And a passphrase-protected key file
/// is used through the agent's copy.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn only_the_configured_key_is_offered_and_a_passphrase_key_signs_through_the_agent() {
    let lab = Lab::fleet();
    let t = Test::new();
    let agent = Agent::start(t.path());
    for n in 0..7 {
        let key = t.path().join(format!("wrong{n}"));
        keygen(&key, "");
        agent.add(t.path(), &key, None);
    }
    let inventory = t.file("inv.yml", &lab.inventory_for(&["h49"], &[]));
    let playbook =
        t.file("pb.rhai", r#"host("h49").command("name", #{ argv: ["hostname"], read_only: true });"#);
    let empty = t.file("empty_config", "");
    let sock = agent.socket.to_str().unwrap();
    Test::new()
        .playbook("run", &playbook, &inventory)
        .arg("-F")
        .arg(&empty)
        .env("SSH_AUTH_SOCK", sock)
        .run()
        .success();

    // A passphrase-protected key, authorized on h49 (sshd also reads authorized_keys2), held
    // by the agent: given as the key file, it signs through the agent.
    let locked = t.path().join("locked");
    keygen(&locked, "correct horse");
    let public = std::fs::read_to_string(locked.with_extension("pub")).unwrap();
    lab.ssh("h49", &format!("printf '%s\\n' '{}' >> /root/.ssh/authorized_keys2", public.trim()));
    let inventory = t.file(
        "inv2.yml",
        &lab.inventory_for(&["h49"], &[]).replace(&lab.key.display().to_string(), locked.to_str().unwrap()),
    );
    let without_agent = Test::new()
        .playbook("run", &playbook, &inventory)
        .arg("-F")
        .arg(&empty)
        .env("SSH_AUTH_SOCK", sock)
        .run()
        .code(2);
    let text = format!("{}{}", without_agent.stdout, without_agent.stderr);
    assert!(text.contains("is passphrase-protected and the ssh-agent does not hold it"), "{text}");
    agent.add(t.path(), &locked, Some("correct horse"));
    Test::new()
        .playbook("run", &playbook, &inventory)
        .arg("-F")
        .arg(&empty)
        .env("SSH_AUTH_SOCK", sock)
        .run()
        .success();
    lab.ssh("h49", "rm -f /root/.ssh/authorized_keys2");
}

/// Without the lab: a bad ssh_config stops the run before anything connects (exit 1), naming the
/// host, the file and the line.
#[test]
fn a_bad_ssh_config_or_proxy_command_is_refused_naming_host_file_and_line() {
    let t = Test::new();
    let inventory = t.file("inv.yml", "all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n");
    let playbook = t.file("pb.rhai", r#"host("web1").command("x", #{ argv: ["true"] });"#);
    let typo = t.file("typo", "Host *\n  User x\n  Prot 22\n");
    let out = Test::new().playbook("run", &playbook, &inventory).arg("-F").arg(&typo).run().failure();
    let want = format!(
        "host web1: {}:3: unknown keyword `Prot` (OpenSSH refuses it too; add `IgnoreUnknown Prot` above it to skip it)",
        typo.display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    let nc = t.file("nc", "Host 127.*\n  ProxyCommand nc %h %p\n");
    let out = Test::new().playbook("run", &playbook, &inventory).arg("-F").arg(&nc).run().failure();
    let want =
        format!("host web1: {}:2: ProxyCommand `nc %h %p` is not supported (`nc` is not ssh)", nc.display());
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    let missing = t.path().join("missing");
    Test::new()
        .playbook("run", &playbook, &inventory)
        .arg("-F")
        .arg(&missing)
        .run()
        .failure()
        .stderr_has("missing: cannot read");
}
