//! The lab, as tests see it. Every lab test is marked
//! `#[ignore = "needs the lab: cargo xtask test"]` and starts with `let lab = Lab::get();` (or
//! `Lab::fleet()`): a plain `cargo test` lists it as ignored, never as passed. `cargo xtask test`
//! boots the lab, passes its inventories in `ENGINE_LAB_INVENTORY` and
//! `ENGINE_LAB_FLEET_INVENTORY`, and runs the suite with `--include-ignored`. A lab test run
//! without them (`--ignored` by hand, say) fails, naming the variable.
//!
//! Each file under tests/ was once its own test binary, and cargo ran those one after another,
//! so a file's lab tests never met another file's on the hosts (the secrets tests restart every
//! host, the certgen and examples tests both run etcd on etcd0-2). In the one binary they would
//! run side by side, so a [`Lab`] holds its file's turn on the lab: tests of one file run
//! together, as before, and the next file's wait until they are done. Tests without the lab
//! never wait.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use serde_json::Value;

/// The running lab, read from its inventory.
pub struct Lab {
    pub inventory: PathBuf,
    /// The inventory's `ansible_user`: `root` on the pre-baked lab, `debian` (who may sudo) on
    /// a bare one.
    pub login: String,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    /// (name, address, group) in inventory order.
    pub hosts: Vec<(String, String, String)>,
    /// The bastion lab's `ssh_config` (the bastion, and each host by name behind it), through
    /// which [`Lab::ssh`] reaches its hosts; None for the other labs.
    pub ssh_config: Option<PathBuf>,
    /// The bastion lab's sudo password of the login user, which [`Lab::ssh`] gives sudo on its
    /// stdin; None for the other labs (passwordless sudo, or root).
    pub sudo_password: Option<String>,
    _turn: Turn,
}

impl Lab {
    /// The lab; panics, naming the variable, when `cargo xtask test` did not give its inventory.
    /// Waits for the calling file's turn on the lab (see the module's header).
    #[track_caller]
    pub fn get() -> Lab {
        Self::from_env("ENGINE_LAB_INVENTORY")
    }

    /// The lab's `fleet` (h00..h49 beside the `ha` hosts, `cargo xtask lab up --topology ha+50`),
    /// for tests that kill or cut hosts; panics like [`Lab::get`] without it.
    #[track_caller]
    pub fn fleet() -> Lab {
        Self::from_env("ENGINE_LAB_FLEET_INVENTORY")
    }

    /// The bare lab (`cargo xtask lab up --bare`: hosts like a fresh Debian 12 cloud image, and
    /// the package mirror), from `ENGINE_LAB_BARE_INVENTORY`, which `cargo xtask test` sets when
    /// it boots that lab for the bare lab's tests (after the rest); panics like [`Lab::get`]
    /// without it.
    #[track_caller]
    pub fn bare() -> Lab {
        Self::from_env("ENGINE_LAB_BARE_INVENTORY")
    }

    /// The bastion lab (`cargo xtask lab up --topology bastion`: the `ha` hosts of the bare lab on
    /// an internal network, reached only through the jump host `bastion`; sudo asks for a
    /// password), from its directory in `ENGINE_LAB_BASTION_DIR` (the lab's `target/lab`), which
    /// `cargo xtask test` sets for the bastion lab's tests (its third phase); panics like
    /// [`Lab::get`] without it.
    #[track_caller]
    pub fn bastion() -> Lab {
        let var = "ENGINE_LAB_BASTION_DIR";
        let Some(dir) = std::env::var_os(var).map(PathBuf::from) else {
            panic!(
                "{var} is not set: this test needs the bastion lab; run it through `cargo xtask test` \
                 (or `cargo xtask lab up --topology bastion` and set {var} to its target/lab)"
            );
        };
        let turn = Turn::take(std::panic::Location::caller().file());
        let mut lab = Self::read(dir.join("inventory.yml"), turn);
        let password = std::fs::read_to_string(dir.join("sudo_password")).expect("the lab's sudo password");
        lab.sudo_password = Some(password.trim().to_owned());
        lab.ssh_config = Some(dir.join("ssh_config"));
        lab
    }

    #[track_caller]
    fn from_env(var: &str) -> Lab {
        let Some(path) = std::env::var_os(var) else {
            panic!(
                "{var} is not set: this test needs the lab; run it through `cargo xtask test` \
                 (or `cargo xtask lab up` and set {var} to the inventory it wrote)"
            );
        };
        let turn = Turn::take(std::panic::Location::caller().file());
        Self::read(PathBuf::from(path), turn)
    }

    fn read(inventory: PathBuf, turn: Turn) -> Lab {
        let text = std::fs::read_to_string(&inventory).expect("lab inventory");
        let yaml: Value = serde_yaml_ng::from_str(&text).expect("lab inventory YAML");
        let vars = &yaml["all"]["vars"];
        let mut hosts = Vec::new();
        if let Some(groups) = yaml["all"]["children"].as_object() {
            for (group, body) in groups {
                for (name, vars) in body["hosts"].as_object().into_iter().flatten() {
                    hosts.push((
                        name.clone(),
                        vars["ansible_host"].as_str().unwrap().to_owned(),
                        group.clone(),
                    ));
                }
            }
        }
        Lab {
            login: vars["ansible_user"].as_str().unwrap_or("root").to_owned(),
            key: PathBuf::from(vars["ansible_ssh_private_key_file"].as_str().unwrap()),
            known_hosts: PathBuf::from(vars["engine_known_hosts"].as_str().unwrap()),
            inventory,
            hosts,
            ssh_config: None,
            sudo_password: None,
            _turn: turn,
        }
    }

    pub fn address(&self, host: &str) -> &str {
        &self.hosts.iter().find(|h| h.0 == host).unwrap_or_else(|| panic!("no lab host {host}")).1
    }

    /// The Debian release of `host` (12, 13): its `lab_debian` in the inventory, which a bare lab
    /// booted with `--releases` gives each host; 12 (the lab's images') without it.
    pub fn debian(&self, host: &str) -> u64 {
        self.address(host);
        let text = std::fs::read_to_string(&self.inventory).expect("lab inventory");
        let yaml: Value = serde_yaml_ng::from_str(&text).expect("lab inventory YAML");
        let groups = yaml["all"]["children"].as_object().into_iter().flatten();
        groups.filter_map(|(_, g)| g["hosts"][host]["lab_debian"].as_u64()).next().unwrap_or(12)
    }

    /// The Debian suite of `host` (`bookworm`, `trixie`; see [`Lab::debian`]).
    pub fn suite(&self, host: &str) -> &'static str {
        match self.debian(host) {
            12 => "bookworm",
            13 => "trixie",
            other => panic!("{host}: the lab gives it Debian {other}, which it has no image of"),
        }
    }

    /// Runs `command` on `host` with the system's ssh client (independent of the engine)
    /// and returns its stdout; panics when it fails.
    pub fn ssh(&self, host: &str, command: &str) -> String {
        let (code, stdout, stderr) = self.ssh_status(host, command);
        assert_eq!(code, Some(0), "ssh {host} {command:?} failed: {stderr}");
        stdout
    }

    /// Like [`Lab::ssh`], returning the exit code, stdout and stderr. `command` runs as root:
    /// logged in as root on the pre-baked lab, through the login user's `sudo` on a bare one
    /// (given the bastion lab's password on its stdin).
    pub fn ssh_status(&self, host: &str, command: &str) -> (Option<i32>, String, String) {
        if self.login == "root" {
            return self.ssh_status_as("root", host, command);
        }
        let quoted = format!("'{}'", command.replace('\'', "'\\''"));
        match &self.sudo_password {
            Some(password) => self.ssh_run(
                &self.login,
                host,
                &format!("sudo -S -p '' sh -c {quoted}"),
                Some(format!("{password}\n").as_bytes()),
            ),
            None => self.ssh_status_as(&self.login, host, &format!("sudo -n sh -c {quoted}")),
        }
    }

    /// Like [`Lab::ssh`], logged in as `user` (the bare lab's hosts refuse root).
    pub fn ssh_as(&self, user: &str, host: &str, command: &str) -> String {
        let (code, stdout, stderr) = self.ssh_status_as(user, host, command);
        assert_eq!(code, Some(0), "ssh {user}@{host} {command:?} failed: {stderr}");
        stdout
    }

    /// Like [`Lab::ssh_status`], logged in as `user`.
    pub fn ssh_status_as(&self, user: &str, host: &str, command: &str) -> (Option<i32>, String, String) {
        self.ssh_run(user, host, command, None)
    }

    /// Like [`Lab::ssh_as`], with `input` on the command's stdin (a file to copy to the host:
    /// `cat > PATH`).
    pub fn ssh_with_input_as(&self, user: &str, host: &str, command: &str, input: &[u8]) -> String {
        let (code, stdout, stderr) = self.ssh_run(user, host, command, Some(input));
        assert_eq!(code, Some(0), "ssh {user}@{host} {command:?} failed: {stderr}");
        stdout
    }

    /// `ssh` to `host` as `user` running `command`, with `stdin` (else none); on the bastion lab
    /// through its ssh_config, by the host's name.
    fn ssh_run(
        &self,
        user: &str,
        host: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> (Option<i32>, String, String) {
        use std::io::Write;
        let mut ssh = Command::new("ssh");
        match &self.ssh_config {
            Some(config) => {
                ssh.arg("-F").arg(config).args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]);
                ssh.arg(format!("{user}@{host}"));
            }
            None => {
                ssh.args(["-i"])
                    .arg(&self.key)
                    .arg("-o")
                    .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
                    .args([
                        "-o",
                        "StrictHostKeyChecking=yes",
                        "-o",
                        "BatchMode=yes",
                        "-o",
                        "ConnectTimeout=5",
                    ])
                    .arg(format!("{user}@{}", self.address(host)));
            }
        }
        let mut child = ssh
            .arg(command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ssh");
        let mut input = child.stdin.take().expect("ssh's stdin");
        input.write_all(stdin.unwrap_or_default()).expect("ssh's stdin");
        drop(input);
        let out = child.wait_with_output().expect("ssh");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// An inventory with only `hosts` (names from the lab), with extra per-host vars merged in.
    pub fn inventory_for(&self, hosts: &[&str], extra: &[(&str, &str, &str)]) -> String {
        let mut out = format!(
            "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: {}\n    engine_known_hosts: {}\n  hosts:\n",
            self.key.display(),
            self.known_hosts.display()
        );
        for name in hosts {
            out.push_str(&format!("    {name}:\n      ansible_host: {}\n", self.address(name)));
            for (h, k, v) in extra {
                if h == name {
                    out.push_str(&format!("      {k}: {v}\n"));
                }
            }
        }
        out
    }
}

/// Which test file has the lab, and how many of its tests hold a [`Lab`]. [`Turn::take`] waits
/// on [`TURN_ENDED`] until no other file has it; the last [`Turn`] of a file to drop gives the
/// lab back and wakes the waiters.
static TURN: Mutex<(Option<&'static str>, usize)> = Mutex::new((None, 0));
static TURN_ENDED: Condvar = Condvar::new();

/// One test's share of its file's turn on the lab.
struct Turn;

impl Turn {
    fn take(file: &'static str) -> Turn {
        let mut turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        while turn.0.is_some_and(|holder| holder != file) {
            turn = TURN_ENDED.wait(turn).unwrap_or_else(PoisonError::into_inner);
        }
        *turn = (Some(file), turn.1 + 1);
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        turn.1 -= 1;
        if turn.1 == 0 {
            turn.0 = None;
            TURN_ENDED.notify_all();
        }
    }
}

/// Where the HA guide's etcd certificates are (playbooks/lib/etcd.rhai's `pki`).
pub const ETCD_PKI: &str = "/etc/kubernetes/pki/etcd";

impl Lab {
    /// `etcdctl` over TLS with the guide's client certificate, against `members`' client URLs.
    pub fn etcdctl_command(&self, members: &[&str], args: &str) -> String {
        let endpoints: Vec<String> =
            members.iter().map(|h| format!("https://{}:2379", self.address(h))).collect();
        format!(
            "ETCDCTL_API=3 etcdctl --cacert {ETCD_PKI}/ca.pem --cert {ETCD_PKI}/client.pem \
             --key {ETCD_PKI}/client-key.pem --endpoints {} {args} 2>&1",
            endpoints.join(",")
        )
    }

    /// [`Lab::etcdctl_command`] run on `on`; its output.
    pub fn etcdctl(&self, on: &str, members: &[&str], args: &str) -> String {
        self.ssh(on, &self.etcdctl_command(members, args))
    }
}

/// A unique scratch path for one test on the shared lab hosts.
pub fn scratch(test: &str) -> String {
    format!("/tmp/engine-test-{test}-{}", std::process::id())
}

impl Lab {
    /// Reboots `hosts` fresh from the image (`cargo xtask lab restart`, through the xtask
    /// binary that `cargo xtask test` built), so a test starts from clean machines.
    pub fn restart(&self, hosts: &[&str]) {
        for host in hosts {
            self.xtask(&["lab", "restart", host]);
        }
    }

    /// Runs `cargo xtask ARGS` (`lab kill h01`, say) through the xtask binary that
    /// `cargo xtask test` built; panics when it fails.
    pub fn xtask(&self, args: &[&str]) {
        let xtask = super::root().join("target/debug/xtask");
        assert!(xtask.exists(), "{} is missing: run the suite through `cargo xtask test`", xtask.display());
        let status = Command::new(&xtask).args(args).status().expect("xtask");
        assert!(status.success(), "xtask {} failed", args.join(" "));
    }
}

/// Held by the tests that kill, cut or reconfigure fleet hosts (`tests/faults.rs`, whose
/// fifty-host test touches every one of them, and `tests/host_certs.rs`, which restarts one
/// host's sshd): one such test at a time.
static FLEET_ALONE: Mutex<()> = Mutex::new(());

/// Takes the fleet for a test that disturbs its hosts (see [`FLEET_ALONE`]).
pub fn fleet_alone() -> MutexGuard<'static, ()> {
    FLEET_ALONE.lock().unwrap_or_else(PoisonError::into_inner)
}
