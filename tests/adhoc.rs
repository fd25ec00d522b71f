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

/// Without the lab: a local host needs no SSH; one that does not answer fails at TCP, with the
/// fix, and the later steps are not tried.
#[test]
fn ping_reports_a_host_that_does_not_answer_at_the_tcp_step() {
    let t = Test::new();
    let inv = t.file("inv.yml", INVENTORY);
    let out = t.arg("ping").arg("-i").arg(&inv).run().code(2);
    assert_eq!(
        out.stdout,
        "me1 (local)\n  ok     local    ansible_connection: local: runs on the controller, no SSH\n\
         me2 (local)\n  ok     local    ansible_connection: local: runs on the controller, no SSH\n\
         gone (root@127.0.0.1:1)\n  FAILED tcp      cannot connect to 127.0.0.1:1: Connection refused (os error 111)\n\
         \x20        fix: check the address and port (ansible_host, ansible_port), that sshd runs there \
         (`systemctl status ssh`), and that no firewall drops port 1\n\
         \x20 -      host key not tried\n  -      auth     not tried\n  -      become   not tried\n\
         3 hosts: 2 ok, 1 with problems\n"
    );
    let t = Test::new();
    let inv = t.file("inv.yml", INVENTORY);
    t.arg("ping").arg("-i").arg(&inv).arg("me*").run().success();
}

mod lab {
    use super::*;
    use support::lab::Lab;

    /// `engine exec` over SSH: every selected host's output under its name, and become.
    #[test]
    #[ignore = "needs the lab: cargo xtask test"]
    fn exec_runs_over_ssh_on_every_selected_host_and_becomes_root() {
        let lab = Lab::get();
        let t = Test::new();
        let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0", "etcd1", "etcd2"], &[]));
        let out = t.arg("exec").arg("-i").arg(&inv).args(["etcd*:!etcd2", "--", "hostname"]).run().success();
        assert!(out.stdout.contains("etcd0 | CHANGED | rc=0 >>\n etcd0\n"), "{}", out.stdout);
        assert!(out.stdout.contains("etcd1 | CHANGED | rc=0 >>\n etcd1\n"), "{}", out.stdout);
        assert!(!out.stdout.contains("etcd2"), "{}", out.stdout);
        // As `deploy` (passwordless sudo): -b runs the command as root.
        let t = Test::new();
        let inv = t.file("inv.yml", &lab.inventory_for(&["etcd0"], &[("etcd0", "ansible_user", "deploy")]));
        let out = t.arg("exec").arg("-i").arg(&inv).args(["-b", "all", "--", "id", "-un"]).run().success();
        assert!(out.stdout.contains("etcd0 | CHANGED | rc=0 >>\n root\n"), "{}", out.stdout);
    }

    /// `engine ping`: a good host passes every step; a host whose known_hosts entry holds
    /// another host's key is CHANGED, with the `ssh-keygen -R` fix; one missing from known_hosts
    /// is unknown, with the `ssh-keyscan` fix; one that does not answer fails at TCP.
    #[test]
    #[ignore = "needs the lab: cargo xtask test"]
    fn ping_names_each_failing_step_and_its_fix() {
        let lab = Lab::get();
        let t = Test::new();
        let known = std::fs::read_to_string(&lab.known_hosts).unwrap();
        let line_of = |host: &str| -> Vec<String> {
            let address = lab.address(host);
            known
                .lines()
                .find(|l| l.split_whitespace().next().is_some_and(|h| h.split(',').any(|n| n == address)))
                .unwrap_or_else(|| panic!("no known_hosts line for {host} ({address}):\n{known}"))
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        // etcd0 as it is; etcd1 with etcd0's key; etcd2 absent.
        let (etcd0, etcd1) = (line_of("etcd0"), line_of("etcd1"));
        let forged = format!("{}\n{} {} {}\n", etcd0.join(" "), etcd1[0], etcd0[1], etcd0[2]);
        let known_hosts = t.file("known_hosts", &forged);
        let mut inventory =
            lab.inventory_for(&["etcd0", "etcd1", "etcd2"], &[("etcd0", "ansible_user", "deploy")]);
        inventory =
            inventory.replace(&lab.known_hosts.display().to_string(), &known_hosts.display().to_string());
        inventory.push_str("    gone: {ansible_host: 127.0.0.1, ansible_port: 1}\n");
        let inv = t.file("inv.yml", &inventory);
        let out = t.arg("ping").arg("-i").arg(&inv).args(["--connect-timeout", "5"]).run().code(2);
        // A host's lines: its name line, then the indented steps.
        let section = |host: &str| -> String {
            let start =
                out.stdout.find(&format!("{host} (")).unwrap_or_else(|| panic!("{host}: {}", out.stdout));
            let lines = out.stdout[start..].lines().enumerate();
            lines
                .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
                .map(|(_, l)| l)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let good = section("etcd0");
        for step in [
            "ok     tcp",
            "ok     host key ssh-ed25519 SHA256:",
            "ok     auth     logged in as deploy with the key",
            "ok     become   `sudo -n -u 'root' -- true` works",
        ] {
            assert!(good.contains(step), "{step:?}:\n{}", out.stdout);
        }
        let changed = section("etcd1");
        assert!(
            changed.contains("FAILED host key CHANGED: the server offers ssh-ed25519 SHA256:"),
            "{}",
            out.stdout
        );
        assert!(
            changed.contains(&format!(
                "fix: only if the change is expected: `ssh-keygen -R '{}'",
                lab.address("etcd1")
            )),
            "{}",
            out.stdout
        );
        assert!(changed.contains("-      auth     not tried"), "{}", out.stdout);
        let unknown = section("etcd2");
        assert!(unknown.contains(&format!("fix: compare the fingerprint with the host's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console), then `ssh-keyscan -t ssh-ed25519 -p 22 {} >> {}`", lab.address("etcd2"), known_hosts.display())), "{}", out.stdout);
        let gone = section("gone");
        assert!(
            gone.contains("FAILED tcp      cannot connect to 127.0.0.1:1: Connection refused"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.ends_with("4 hosts: 1 ok, 3 with problems\n"), "{}", out.stdout);
    }

    /// `engine ping` through a jump host (a lab host, `jumpbox` in an ssh_config as OpenSSH
    /// users write it): the hop gets its own lines (tcp, host key, auth) before the target's,
    /// whose TCP step is the tunnel through the hop. With a wrong port for the jump host, the
    /// hop fails at TCP naming itself and the ProxyJump line, and the target is not tried.
    #[test]
    #[ignore = "needs the lab: cargo xtask test"]
    fn ping_checks_each_jump_host_before_the_target_and_names_the_hop_that_fails() {
        let lab = Lab::get();
        let (jump, target) = (lab.hosts[0].0.as_str(), lab.hosts[1].0.as_str());
        let t = Test::new();
        let config = |port: u16| {
            format!(
                "Host jumpbox\n  HostName {}\n  Port {port}\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {}\nHost {}\n  ProxyJump jumpbox\n",
                lab.address(jump),
                lab.key.display(),
                lab.known_hosts.display(),
                lab.address(target)
            )
        };
        let good = t.file("ssh_config", &config(22));
        let bad = t.file("ssh_config_bad", &config(2));
        let inv = t.file("inv.yml", &lab.inventory_for(&[target], &[]));
        let ping = |config: &std::path::Path, code: i32| {
            Test::new()
                .arg("ping")
                .arg("-i")
                .arg(&inv)
                .arg("-F")
                .arg(config)
                .args(["--connect-timeout", "5"])
                .run()
                .code(code)
        };
        let out = ping(&good, 0);
        let lines: Vec<&str> = out.stdout.lines().collect();
        let hop = format!("{target} via jump host jumpbox (root@{}:22)", lab.address(jump));
        assert_eq!(lines[0], hop, "{}", out.stdout);
        assert!(lines[1].starts_with("  ok     tcp      connected in "), "{}", out.stdout);
        assert!(lines[2].starts_with("  ok     host key ssh-ed25519 SHA256:"), "{}", out.stdout);
        assert_eq!(
            lines[3],
            format!("  ok     auth     logged in as root with the key {}", lab.key.display())
        );
        assert_eq!(lines[4], format!("{target} (root@{}:22)", lab.address(target)), "{}", out.stdout);
        assert!(
            lines[5].starts_with("  ok     tcp      tunnel through jumpbox opened in "),
            "{}",
            out.stdout
        );
        assert!(lines[6].starts_with("  ok     host key ssh-ed25519 SHA256:"), "{}", out.stdout);
        assert!(lines[7].starts_with("  ok     auth     logged in as root"), "{}", out.stdout);
        assert!(lines[8].starts_with("  ok     become "), "{}", out.stdout);
        assert_eq!(lines[9], "1 hosts: 1 ok, 0 with problems", "{}", out.stdout);

        let out = ping(&bad, 2);
        let hop = format!("{target} via jump host jumpbox (root@{}:2)", lab.address(jump));
        assert!(out.stdout.starts_with(&format!("{hop}\n")), "{}", out.stdout);
        let failed = format!(
            "  FAILED tcp      jump host jumpbox ({}:2): cannot connect to {}:2: Connection refused",
            lab.address(jump),
            lab.address(jump)
        );
        assert!(out.stdout.contains(&failed), "{}", out.stdout);
        let fix = format!("fix: check the ProxyJump at {}:9 (host, port, user); ", bad.display());
        assert!(out.stdout.contains(&fix), "{}", out.stdout);
        assert!(
            out.stdout.contains("  -      tcp      not tried: jump host jumpbox failed"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.ends_with("1 hosts: 0 ok, 1 with problems\n"), "{}", out.stdout);
    }
}
