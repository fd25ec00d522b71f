//! A compromised host cannot reach the controller or its peers (issue 15), proven in the lab
//! with a **hostile host**: worker2 gets scripts in `/usr/local/bin` (first on root's `PATH`,
//! and on sudo's `secure_path`) that shadow `find` and `ip` and print crafted output when the
//! engine asks about this file's paths, passing everything else to the real tools.
//!
//! ```text
//!   worker2 (hostile)                       controller / worker1 (its peer)
//!   find SRC  ──► "SRC/../../../../tmp/X"   scp to_controller / from: worker2
//!                                           => refused, naming worker2; nothing outside dest
//!   find SRC  ──► "SRC/tool", mode 4777     => copied 0775: no setuid, not world-writable
//!   ip -j addr ─► "10.0.0.2:2380\nExec..."  a unit rendered from worker2's address, on both
//!                                           => the tasks fail naming worker2 and the fact;
//!                                              the units written from the honest address stay
//! ```
//!
//! The scripts are removed by a drop guard ([`Shadowed`]), so worker2 is itself again even when
//! an assertion fails, before this file gives the lab back (see `support::lab`: one file's
//! lab tests at a time, so no other test meets the lying tools). Nothing here depends on
//! worker1 or worker2 being fresh: every path is this file's own.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::lab::{Lab, scratch};
use support::{Output, Test};

const HOSTILE: &str = "worker2";
const PEER: &str = "worker1";
/// The directory the hostile `find` lies about.
const SRC: &str = "/srv/engine-hostile-src";
/// The stand-in etcd unit the fact test writes on both hosts.
const UNIT: &str = "engine-hostile-etcd.service";

/// Scripts shadowing tools on a lab host, removed (with what the test left) when dropped. The
/// two tests of this file run side by side and shadow different tools, so each removes only
/// its own.
struct Shadowed<'a> {
    lab: &'a Lab,
    host: &'static str,
    /// The scripts installed, as paths.
    installed: RefCell<Vec<String>>,
    /// Extra cleanup, run on `host` and on [`PEER`] when dropped.
    cleanup: String,
}

impl<'a> Shadowed<'a> {
    fn new(lab: &'a Lab, host: &'static str, cleanup: String) -> Self {
        Self { lab, host, installed: RefCell::default(), cleanup }
    }

    /// Installs `script` as `/usr/local/bin/TOOL` and checks that a command run the way the
    /// engine runs them finds it first.
    fn install(&self, tool: &str, script: &str) {
        let path = format!("/usr/local/bin/{tool}");
        self.installed.borrow_mut().push(path.clone());
        self.lab.ssh(
            self.host,
            &format!("cat > {path} <<'ENGINE_HOSTILE_EOF'\n{script}\nENGINE_HOSTILE_EOF\nchmod 755 {path}"),
        );
        assert_eq!(self.lab.ssh(self.host, &format!("command -v {tool}")).trim(), path, "PATH order");
    }
}

impl Drop for Shadowed<'_> {
    fn drop(&mut self) {
        // Best effort and never a panic: this may run while a failed assertion unwinds.
        let restore = format!("rm -f -- {}; {}", self.installed.borrow().join(" "), self.cleanup);
        let (code, _, stderr) = self.lab.ssh_status(self.host, &restore);
        let (peer_code, _, peer_stderr) = self.lab.ssh_status(PEER, &self.cleanup);
        if code != Some(0) || peer_code != Some(0) {
            eprintln!("hostile: cleanup failed on {}: {stderr} / {PEER}: {peer_stderr}", self.host);
        }
    }
}

/// A `find` that answers a listing of [`SRC`] with `records` (the engine's listing records:
/// `F\tRAW\tSIZE\tOWNER\tGROUP\tPATH`, then `SHA  PATH`), each ended by a NUL, and passes
/// anything else on to the real `find`.
fn lying_find(records: &[String]) -> String {
    let quoted: Vec<String> = records.iter().map(|r| format!("'{r}'")).collect();
    format!(
        "#!/bin/sh\n\
         # engine's hostile-host test (tests/hostile.rs): lies about {SRC} only.\n\
         case \" $* \" in *\" {SRC} \"*) printf '%s\\000' {}; exit 0;; esac\n\
         exec /usr/bin/find \"$@\"",
        quoted.join(" ")
    )
}

/// An `ip` that reports `address` as host0's IPv4 address to `ip -j addr show`.
fn lying_ip(address: &str) -> String {
    let json = serde_json::json!([{
        "ifindex": 2, "ifname": "host0", "address": "aa:bb:cc:dd:ee:ff",
        "addr_info": [{ "family": "inet", "local": address, "prefixlen": 24 }],
    }]);
    format!(
        "#!/bin/sh\n\
         # engine's hostile-host test (tests/hostile.rs): forges the address.\n\
         if [ \"$*\" = '-j addr show' ]; then cat <<'EOF'\n{json}\nEOF\nexit 0; fi\n\
         for real in /usr/sbin/ip /usr/bin/ip /sbin/ip /bin/ip; do [ -x \"$real\" ] && exec \"$real\" \"$@\"; done\n\
         exit 127"
    )
}

/// `engine run` of `playbook` on worker1 and worker2, with `--json`, expecting `code`.
fn run(lab: &Lab, t: Test, playbook: &str, code: i32) -> Output {
    let inventory = t.file("inv.yml", &lab.inventory_for(&[PEER, HOSTILE], &[]));
    let pb = t.file("pb.rhai", playbook);
    t.arg("run").arg(&pb).arg("-i").arg(&inventory).arg("--json").run().code(code)
}

/// Every regular file under `dir` on `host`, or none when it does not exist.
fn files_on(lab: &Lab, host: &str, dir: &str) -> String {
    lab.ssh(host, &format!("if [ -e {dir} ]; then find {dir} -type f; fi"))
}

/// Every regular file under `dir` on the controller.
fn files_here(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { found.push(path.display().to_string()) }
        }
    }
    found
}

/// `scp` from the hostile host, to the controller and to a peer: a listed path that climbs out
/// of the source writes nothing anywhere (checked on the controller, the peer and the hostile
/// host itself), and each task fails with a message naming worker2 and the entry. A file the
/// host claims is setuid and world-writable arrives 0775.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn scp_from_a_hostile_host_writes_nothing_outside_the_destination() {
    let lab = Lab::get();
    let escaped = format!("{}-escaped", scratch("hostile"));
    let dest = format!("{}-dest", scratch("hostile"));
    let shadowed = Shadowed::new(&lab, HOSTILE, format!("rm -rf -- {SRC} {escaped} {dest}"));
    lab.ssh(HOSTILE, &format!("mkdir -p {SRC} && printf 'x\\n' > {SRC}/tool"));

    // A path that leaves the source: `SRC/../../../../tmp/...-escaped`.
    let path = format!("{SRC}/../../../..{escaped}");
    let sha = "a".repeat(64);
    shadowed
        .install("find", &lying_find(&[format!("F\t81a4\t6\troot\troot\t{path}"), format!("{sha}  {path}")]));
    let t = Test::new();
    let pulled = t.path().join("pulled");
    let playbook = format!(
        r#"
host("{HOSTILE}").scp("pull", #{{ src: "{SRC}", to_controller: "{pulled}/" }});
host("{PEER}").scp("from the peer", #{{ from: "{HOSTILE}", src: "{SRC}", dest: "{dest}" }});
"#,
        pulled = pulled.display()
    );
    let out = run(&lab, t, &playbook, 2);
    let refused = format!(
        "the listing of {SRC} from {HOSTILE} is refused: a path that leaves {SRC} (an empty, `.` or `..` \
         component): \"{path}\""
    );
    for (host, task) in [(HOSTILE, "pull"), (PEER, "from the peer")] {
        let report = out.task(host, task);
        assert_eq!(report["status"], "failed", "{report}");
        let error = report["error"].as_str().unwrap();
        assert!(error.ends_with(&refused), "{error}");
    }
    assert!(!Path::new(&escaped).exists(), "written outside the destination on the controller");
    assert_eq!(files_here(&pulled), Vec::<String>::new());
    for host in [PEER, HOSTILE] {
        assert_eq!(files_on(&lab, host, &escaped), "", "written outside the destination on {host}");
    }
    assert_eq!(files_on(&lab, PEER, &dest), "");

    // A real file the host says is setuid and world-writable (raw mode 89ff: 4777).
    let tool = format!("{SRC}/tool");
    let sha = lab.ssh(HOSTILE, &format!("sha256sum < {tool}")).split_whitespace().next().unwrap().to_owned();
    shadowed
        .install("find", &lying_find(&[format!("F\t89ff\t2\troot\troot\t{tool}"), format!("{sha}  {tool}")]));
    let t = Test::new();
    let pulled = t.path().join("pulled");
    let playbook = format!(
        r#"
host("{HOSTILE}").scp("pull", #{{ src: "{SRC}", to_controller: "{pulled}/" }});
host("{PEER}").scp("from the peer", #{{ from: "{HOSTILE}", src: "{SRC}", dest: "{dest}" }});
"#,
        pulled = pulled.display()
    );
    // The run's output holds its temporary folder, where `pulled` is.
    let _out = run(&lab, t, &playbook, 0);
    let mode = std::fs::metadata(pulled.join("tool")).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o775, "no setuid, not world-writable on the controller");
    assert_eq!(lab.ssh(PEER, &format!("stat -c %a {dest}/tool")).trim(), "775", "nor on the peer");
    drop(shadowed);
    assert_eq!(lab.ssh(HOSTILE, "command -v find").trim(), "/usr/bin/find", "restored");
}

/// A unit rendered from worker2's address on both hosts (as `playbooks/lib/etcd.rhai` renders
/// `--initial-cluster`): written from the honest address; then worker2 reports its address as
/// `10.0.0.2:2380` and a systemd directive after a newline. The tasks that read the address
/// fail, naming worker2 and the fact; neither unit changes, and nothing ran.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_forged_address_fact_fails_the_tasks_that_read_it_and_no_unit_changes() {
    let lab = Lab::get();
    let canary = format!("{}-pwned", scratch("hostile"));
    let unit = format!("/etc/systemd/system/{UNIT}");
    let shadowed = Shadowed::new(&lab, HOSTILE, format!("rm -f -- {unit} {canary}; systemctl daemon-reload"));
    let playbook = format!(
        r#"
let hostile = host("{HOSTILE}");
let address = hostile.fact("interfaces.host0.ipv4.0");
for h in [host("{PEER}"), hostile] {{
    h.systemd("etcd unit", #{{
        name: "{UNIT}",
        unit: `[Unit]
Description=engine hostile-host test: a stand-in etcd unit

[Service]
ExecStart=/bin/true --initial-cluster={HOSTILE}=https://${{address}}:2380
`,
    }});
}}
"#
    );
    run(&lab, Test::new(), &playbook, 0);
    let sums = || [PEER, HOSTILE].map(|h| lab.ssh(h, &format!("sha256sum {unit}")));
    let before = sums();
    let honest = lab.address(HOSTILE).to_owned();
    assert!(lab.ssh(PEER, &format!("cat {unit}")).contains(&format!("https://{honest}:2380")));

    let forged = format!("10.0.0.2:2380\nExecStartPost=/bin/sh -c touch${{IFS}}{canary}");
    shadowed.install("ip", &lying_ip(&forged));
    let out = run(&lab, Test::new(), &playbook, 2);
    let message = format!(
        "fact \"interfaces.host0.ipv4.0\" of {HOSTILE} is not an IPv4 address: the host reported \
         \"10.0.0.2:2380\\nExecStartPost=/bin/sh -c touch${{IFS}}{canary}\""
    );
    for host in [PEER, HOSTILE] {
        let report = out.task(host, "etcd unit");
        assert_eq!(report["status"], "failed", "{report}");
        let error = report["error"].as_str().unwrap();
        assert!(error.ends_with(&message), "{error}");
    }
    assert_eq!(sums(), before, "no unit changed");
    for host in [PEER, HOSTILE] {
        assert_eq!(lab.ssh_status(host, &format!("grep -c ExecStartPost {unit}")).1.trim(), "0");
        assert_eq!(lab.ssh_status(host, &format!("test -e {canary}")).0, Some(1), "something ran on {host}");
    }
    drop(shadowed);
    assert!(lab.ssh(HOSTILE, "command -v ip").trim() != "/usr/local/bin/ip", "restored");
}
