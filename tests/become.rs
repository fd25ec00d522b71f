//! Become as users need it (issue 17): sudo with a password from the inventory or typed at
//! `-K`'s prompt on a terminal, a wrong password, su, doas, and where the password never goes
//! (command lines seen by `ps`, the host's journal, engine's `-vv` log, its run journal). The
//! transport-level guarantees (binary stdin exact, timed-out commands killed, under each
//! method) are the `become_*` live tests of `engine/src/ssh/tests.rs`.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;

use support::lab::{Lab, scratch};
use support::{Test, root};

const HOST: &str = "etcd2";
/// A user whose sudo rule needs its password; root's password (for su). Throwaway lab values.
const PW_USER: &str = "becomepw";
const PW: &str = "Pw-of-becomepw-4711";
const ROOT_PW: &str = "Root-pw-4711";

/// The users and rules the tests need on [`HOST`], made idempotently under a lock on the host.
fn setup(lab: &Lab) {
    lab.ssh(
        HOST,
        &format!(
            "flock /tmp/engine-become-setup.lock sh -ec '
id {PW_USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {PW_USER}
echo {PW_USER}:{PW} | chpasswd
echo root:{ROOT_PW} | chpasswd
echo \"{PW_USER} ALL=(ALL) ALL\" >/etc/sudoers.d/{PW_USER}
chmod 0440 /etc/sudoers.d/{PW_USER}
install -d -m 0700 -o {PW_USER} /home/{PW_USER}/.ssh
install -m 0600 -o {PW_USER} /root/.ssh/authorized_keys /home/{PW_USER}/.ssh/authorized_keys
if command -v doas >/dev/null; then
  printf \"permit nopass deploy as root\\npermit {PW_USER} as root\\n\" >/etc/doas.conf
  chmod 0400 /etc/doas.conf
fi'"
        ),
    );
}

/// Every run journal engine wrote (they sit under the repository root, where tests run it).
fn journals() -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(root().join(".engine/runs")) {
        for entry in entries.flatten() {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text
}

fn playbook(t: &Test, dir: &str) -> std::path::PathBuf {
    t.file(
        "pb.rhai",
        &format!(
            r#"let h = host("{HOST}");
h.file("in root's home", #{{ path: "{dir}", content: "x\n" }});
h.command("slow", #{{ cmd: "sleep 3; test \"$(id -u)\" = 0", read_only: true }});
"#
        ),
    )
}

/// `ansible_become_password` from the inventory: tasks run as root, the re-run changes
/// nothing, and the password is in no command line `ps` shows (watched as `nobody` while a
/// task runs), not in the host's journal (sudo logs every command), not in `-vv` logs, the
/// events or the run journal.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn become_sudo_password_from_the_inventory_is_used_and_never_shown() {
    let lab = Lab::get();
    setup(&lab);
    let dir = scratch("become-inv").replace("/tmp/", "/root/");
    let since = lab.ssh(HOST, "date +%s").trim().to_owned();
    let t = Test::new();
    let inventory = t.file(
        "inv.yml",
        &lab.inventory_for(
            &[HOST],
            &[
                (HOST, "ansible_user", PW_USER),
                (HOST, "ansible_become", "true"),
                (HOST, "ansible_become_password", PW),
            ],
        ),
    );
    let pb = playbook(&t, &dir);
    let (inv2, pb2) = (inventory.clone(), pb.clone());
    let run =
        std::thread::spawn(move || Test::new().arg("-vv").playbook("run", &pb2, &inv2).arg("--json").run());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !run.is_finished() && Instant::now() < deadline {
        seen.push_str(&lab.ssh(HOST, "runuser -u nobody -- ps -eo args"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = run.join().unwrap().success();
    assert!(seen.contains("sleep 3; test"), "the watch saw the command run:\n{seen}");
    assert_eq!(out.task(HOST, "slow")["status"], "ok", "ran as root");
    assert_eq!(lab.ssh(HOST, &format!("stat -c %U {dir}")).trim(), "root");
    let journal = lab.ssh(HOST, &format!("journalctl --no-pager -o cat --since @{since}"));
    assert!(journal.contains(PW_USER), "sudo logged the commands: {journal}");
    for (place, text) in
        [("ps", &seen), ("the host's journal", &journal), ("stdout", &out.stdout), ("stderr", &out.stderr)]
    {
        assert!(!text.contains(PW), "the password is in {place}:\n{text}");
    }
    assert!(out.stderr.contains("ssh.exec"), "-vv logged the commands");
    assert!(!journals().contains(PW), "the password is in a run journal");
    let again = Test::new().playbook("run", &pb, &inventory).arg("--json").run().success();
    assert_eq!(again.count("changed"), 0);
}

/// `-K`: engine asks on its controlling terminal (a pseudo-terminal `script` opens here), the
/// password is typed once the prompt shows, without echo, and is used for the host.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn become_ask_become_pass_reads_the_terminal() {
    let lab = Lab::get();
    setup(&lab);
    let dir = scratch("become-k").replace("/tmp/", "/root/");
    let t = Test::new();
    let inventory = t.file(
        "inv.yml",
        &lab.inventory_for(&[HOST], &[(HOST, "ansible_user", PW_USER), (HOST, "ansible_become", "true")]),
    );
    let pb = playbook(&t, &dir);
    let args = ["run".as_ref(), pb.as_os_str(), "-i".as_ref(), inventory.as_os_str(), "-K".as_ref()];
    let screen = support::on_terminal(&args, false, "BECOME password: ", &[PW], Duration::from_secs(60));
    assert_eq!(screen.code, Some(0), "{}", screen.text);
    assert_eq!(screen.typed, 1, "{}", screen.text);
    assert!(!screen.text.contains(PW), "the password was echoed or printed:\n{}", screen.text);
    assert_eq!(lab.ssh(HOST, &format!("stat -c %U {dir}")).trim(), "root");
}

/// A wrong password: one clear error for the host, nothing changed, and sudo saw one attempt
/// only (its log counts them).
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn become_wrong_sudo_password_fails_the_host_once_and_changes_nothing() {
    let lab = Lab::get();
    setup(&lab);
    let dir = scratch("become-wrong").replace("/tmp/", "/root/");
    let since = lab.ssh(HOST, "date +%s").trim().to_owned();
    let t = Test::new();
    let inventory = t.file(
        "inv.yml",
        &lab.inventory_for(
            &[HOST],
            &[
                (HOST, "ansible_user", PW_USER),
                (HOST, "ansible_become", "true"),
                (HOST, "ansible_become_password", "not-the-password"),
            ],
        ),
    );
    let pb = playbook(&t, &dir);
    let out = Test::new().playbook("run", &pb, &inventory).arg("--json").run().code(2);
    let error = out.task(HOST, "in root's home")["error"].as_str().unwrap().to_owned();
    assert!(error.contains(&format!("sudo on {HOST}: incorrect password (as {PW_USER})")), "{error}");
    let (code, _, _) = lab.ssh_status(HOST, &format!("test -e {dir}"));
    assert_eq!(code, Some(1), "nothing was changed");
    let journal = lab.ssh(HOST, &format!("journalctl --no-pager -o cat --since @{since}"));
    let attempts = journal.lines().filter(|l| l.contains("incorrect password attempt")).count();
    assert_eq!(attempts, 1, "one attempt only:\n{journal}");
}

/// `su` with root's password (`ansible_become_method: su`), and `doas` with a `nopass` rule.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn become_su_and_doas_run_tasks_as_root() {
    let lab = Lab::get();
    setup(&lab);
    for (method, password) in [("su", Some(ROOT_PW)), ("doas", None)] {
        let dir = scratch(&format!("become-{method}")).replace("/tmp/", "/root/");
        let t = Test::new();
        let mut vars = vec![
            (HOST, "ansible_user", "deploy"),
            (HOST, "ansible_become", "true"),
            (HOST, "ansible_become_method", method),
        ];
        if let Some(password) = password {
            vars.push((HOST, "ansible_become_password", password));
        }
        let inventory = t.file("inv.yml", &lab.inventory_for(&[HOST], &vars));
        let pb = playbook(&t, &dir);
        let out = Test::new().playbook("run", &pb, &inventory).arg("--json").run().success();
        assert_eq!(out.task(HOST, "slow")["status"], "ok", "{method} ran as root");
        assert_eq!(lab.ssh(HOST, &format!("stat -c %U {dir}")).trim(), "root", "{method}");
        let again = Test::new().playbook("run", &pb, &inventory).arg("--json").run().success();
        assert_eq!(again.count("changed"), 0, "{method}");
    }
}

/// `-K` without a terminal (`setsid`: no controlling terminal) is refused before anything
/// connects, saying what to do instead.
#[test]
fn become_ask_pass_without_a_terminal_is_refused_clearly() {
    let t = Test::new();
    let inventory = t.file(
        "inv.yml",
        "all:\n  hosts:\n    a: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_become: true}\n",
    );
    let out = Command::new("setsid")
        .args(["-w", env!("CARGO_BIN_EXE_engine"), "check"])
        .arg(support::fixture("touch_all.rhai"))
        .arg("-i")
        .arg(&inventory)
        .arg("-K")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("-K (--ask-become-pass) asks on the terminal, and there is none")
            && stderr.contains("set ansible_become_password in the inventory instead"),
        "{stderr}"
    );
}

/// A local host with become runs its commands through the controller's `sudo`: a stand-in
/// `sudo` first on PATH records its arguments and runs the command, so the test needs no
/// sudo on the controller.
#[test]
fn become_on_a_local_host_goes_through_sudo() {
    let t = Test::new();
    let bin = t.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = t.path().join("sudo.log");
    let sudo = bin.join("sudo");
    std::fs::write(
        &sudo,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&sudo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let inventory =
        t.file("inv.yml", "all:\n  hosts:\n    me: {ansible_connection: local, ansible_become: true}\n");
    let out_file = t.path().join("made");
    let pb = t.file(
        "pb.rhai",
        &format!(r#"host("me").command("made", #{{ cmd: "echo hi > {}" }});"#, out_file.display()),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    Test::new().playbook("run", &pb, &inventory).env("PATH", &path).run().success();
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "hi\n");
    let calls = std::fs::read_to_string(&log).unwrap();
    let first = calls.lines().next().unwrap();
    assert_eq!(first, "-n -u root -- sh -c true", "sudo -n is tried first:\n{calls}");
    let ran = calls.lines().nth(1).unwrap();
    assert!(ran.starts_with("-n -H -u root -- sh -c "), "{calls}");
    assert!(ran.ends_with(&format!("echo hi > {}'", out_file.display())), "{calls}");
}

/// `engine ping` checks a host's configured become as a run would: sudo with the inventory's
/// password, and su with root's; a wrong sudo password fails the become step, saying so.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ping_checks_password_sudo_and_su() {
    let lab = Lab::get();
    setup(&lab);
    let cases = [
        ("sudo", PW_USER, PW, "ok     become   sudo to root works"),
        ("su", "deploy", ROOT_PW, "ok     become   su to root works"),
        ("sudo", PW_USER, "not-the-password", "FAILED become   "),
    ];
    for (method, user, password, want) in cases {
        let t = Test::new();
        let vars = [
            (HOST, "ansible_user", user),
            (HOST, "ansible_become", "true"),
            (HOST, "ansible_become_method", method),
            (HOST, "ansible_become_password", password),
        ];
        let inventory = t.file("inv.yml", &lab.inventory_for(&[HOST], &vars));
        let code = if want.starts_with("ok") { 0 } else { 2 };
        let out = Test::new().arg("ping").arg("-i").arg(&inventory).run().code(code);
        assert!(out.stdout.contains(&format!("  ok     auth     logged in as {user} ")), "{}", out.stdout);
        assert!(out.stdout.contains(&format!("  {want}")), "{method} as {user}: {}", out.stdout);
        assert!(!out.stdout.contains(password), "the password is not shown: {}", out.stdout);
    }
}
