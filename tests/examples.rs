//! The examples under `examples/` and the guide that quotes them (docs/writing-playbooks.md).
//!
//! - Without the lab: every code block of the guide is a whole file under `examples/`, byte for
//!   byte; every example has its playbook, inventory and README and loads; the rolling example's
//!   graph shows its batches.
//! - On the lab: each example runs twice through the real binary with its own inventory (the
//!   second run changes nothing), and its result is checked on the hosts over plain `ssh`:
//!   files, a TLS etcd cluster, HTTP through a virtual IP that fails over, a rolling change
//!   that stops at a failed host. Each test puts the hosts back the way it found them.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use support::lab::Lab;
use support::{Output, Test, root};

const EXAMPLES: [&str; 4] = ["hello", "etcd-tls", "haproxy-keepalived", "rolling"];

/// The lab tests share hosts (the workers run nginx for two examples): one at a time.
static LAB: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(PoisonError::into_inner)
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

// ------------------------------------------------------------------ the guide, without a lab

/// The guide's fenced code blocks, each with the file its `<!-- file: PATH -->` marker names.
/// Panics on a block without a marker, naming its line.
fn guide_blocks(guide: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut marker: Option<String> = None;
    let mut lines = guide.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if let Some(path) = line.strip_prefix("<!-- file: ").and_then(|l| l.strip_suffix(" -->")) {
            marker = Some(path.to_owned());
        } else if line.starts_with("```") {
            let path = marker.take().unwrap_or_else(|| {
                panic!(
                    "docs/writing-playbooks.md:{}: a code block without a `<!-- file: examples/... -->` line \
                     right before it; every block must be a file under examples/",
                    n + 1
                )
            });
            let mut text = String::new();
            for (_, body) in lines.by_ref() {
                if body == "```" {
                    break;
                }
                text.push_str(body);
                text.push('\n');
            }
            blocks.push((path, text));
        } else if !line.trim().is_empty() {
            // A marker belongs to the block right after it.
            marker = None;
        }
    }
    blocks
}

#[test]
fn every_code_block_of_the_guide_is_an_example_file() {
    let guide = std::fs::read_to_string(root().join("docs/writing-playbooks.md")).unwrap();
    let blocks = guide_blocks(&guide);
    assert!(blocks.len() >= 4, "the guide quotes the examples: {blocks:?}");
    for (path, text) in &blocks {
        assert!(path.starts_with("examples/"), "{path}: guide blocks come from examples/");
        let file = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            file == *text,
            "docs/writing-playbooks.md quotes {path}, but the file differs; copy the file into the guide.\n\
             --- file\n{file}\n--- guide\n{text}"
        );
    }
    for name in ["hello/inventory.yml", "hello/playbook.rhai", "rolling/playbook.rhai"] {
        assert!(blocks.iter().any(|(p, _)| *p == format!("examples/{name}")), "the guide shows {name}");
    }
}

#[test]
fn the_drift_check_catches_a_changed_block() {
    let guide = "<!-- file: examples/hello/inventory.yml -->\n```yaml\nall: {}\n```\n";
    let blocks = guide_blocks(guide);
    assert_eq!(blocks, [("examples/hello/inventory.yml".to_owned(), "all: {}\n".to_owned())]);
    let file = std::fs::read_to_string(example("hello/inventory.yml")).unwrap();
    assert_ne!(file, blocks[0].1);
    let unmarked = std::panic::catch_unwind(|| guide_blocks("Some text.\n\n```sh\nengine run\n```\n"));
    assert!(unmarked.is_err(), "a block without a file marker is refused");
}

#[test]
fn every_example_has_a_playbook_an_inventory_and_a_readme_and_loads() {
    for name in EXAMPLES {
        let dir = example(name);
        for file in ["playbook.rhai", "inventory.yml", "README.md"] {
            assert!(dir.join(file).is_file(), "examples/{name}/{file} is missing");
        }
        let dot = graph(name).success().stdout;
        assert!(dot.starts_with("digraph plan {"), "{name}: {dot}");
    }
}

/// What an example needs on the command line besides its playbook and inventory.
fn extra_args(name: &str) -> &'static [&'static str] {
    match name {
        // It imports playbooks/lib/etcd.rhai.
        "etcd-tls" => &["--lib", "playbooks/lib"],
        // It imports playbooks/lib/host_secret.rhai for its VRRP password.
        "haproxy-keepalived" => &["--lib", "playbooks/lib"],
        _ => &[],
    }
}

fn graph(name: &str) -> Output {
    let dir = example(name);
    Test::new()
        .arg("graph")
        .arg(dir.join("playbook.rhai"))
        .arg("-i")
        .arg(dir.join("inventory.yml"))
        .args(extra_args(name))
        .run()
}

/// The DOT's nodes (`tN` → host) and edges (`from`, `to`, attributes).
struct Dot {
    hosts: BTreeMap<String, String>,
    names: BTreeMap<String, String>,
    edges: Vec<(String, String, String)>,
}

impl Dot {
    fn parse(dot: &str) -> Dot {
        let (mut hosts, mut names, mut edges) = (BTreeMap::new(), BTreeMap::new(), Vec::new());
        let mut cluster = None;
        for line in dot.lines().map(str::trim) {
            if line.starts_with("subgraph cluster_") {
                cluster = None;
            } else if let Some(label) = line.strip_prefix("label=\"").and_then(|l| l.strip_suffix("\";")) {
                cluster.get_or_insert_with(|| label.to_owned());
            } else if let Some((from, rest)) = line.split_once(" -> ") {
                let (to, attrs) = rest.split_once(' ').unwrap_or((rest.trim_end_matches(';'), ""));
                edges.push((from.to_owned(), to.trim_end_matches(';').to_owned(), attrs.to_owned()));
            } else if let Some((node, rest)) = line.split_once(" [label=\"")
                && let Some(host) = &cluster
            {
                hosts.insert(node.to_owned(), host.clone());
                names.insert(node.to_owned(), rest.split("\\n").next().unwrap().to_owned());
            }
        }
        Dot { hosts, names, edges }
    }

    fn label(&self, node: &str) -> String {
        format!("{}: {}", self.hosts[node], self.names[node])
    }
}

/// `engine graph` shows the batches of `serial(group("workers"), 1, ...)`: serial edges lead
/// from worker0's last tasks to worker1's first, and from worker1's to worker2's, and nowhere else.
#[test]
fn the_rolling_graph_shows_one_batch_per_worker() {
    let dot = graph("rolling").success().stdout;
    let parsed = Dot::parse(&dot);
    let serial: Vec<(String, String)> = parsed
        .edges
        .iter()
        .filter(|(_, _, attrs)| attrs.contains("label=\"serial\""))
        .map(|(from, to, _)| (parsed.label(from), parsed.label(to)))
        .collect();
    let between = |a: &str, b: &str| {
        serial
            .iter()
            .filter(|(f, t)| f.starts_with(&format!("{a}:")) && t.starts_with(&format!("{b}:")))
            .count()
    };
    assert!(between("worker0", "worker1") >= 1, "{serial:?}\n{dot}");
    assert!(between("worker1", "worker2") >= 1, "{serial:?}\n{dot}");
    assert_eq!(between("worker0", "worker1") + between("worker1", "worker2"), serial.len(), "{serial:?}");
    // Into a batch, the edges reach its first task; out of one, they leave from its last ones.
    assert!(serial.iter().all(|(_, to)| to.ends_with(": site config")), "{serial:?}");
    assert!(serial.iter().any(|(from, _)| from == "worker0: back in the pool"), "{serial:?}");
    assert!(dot.contains("#e6550d"), "serial edges have their own colour");
}

/// Copies `from` (a folder) into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One deliberate mistake per example, as a newcomer would make it: the playbook is refused
/// (exit 1, nothing runs) with the line of the mistake and what to write instead.
#[test]
fn a_mistake_in_each_example_is_located_and_explained() {
    let mistakes: [(&str, &str, &str, &[&str]); 4] = [
        // A misspelled module argument: the nearest valid name.
        (
            "hello",
            "mode: \"0755\"",
            "mdoe: \"0755\"",
            &["playbook.rhai:15:", "unknown argument `mdoe`", "`mode`"],
        ),
        // A wrong group name: the nearest group, and every group.
        (
            "haproxy-keepalived",
            "group(\"lb\")",
            "group(\"lbs\")",
            &["playbook.rhai:13:", "unknown group \"lbs\"", "`lb`", "all, lb, web"],
        ),
        // A batch size of 0.
        (
            "rolling",
            "serial(group(\"workers\"), 1,",
            "serial(group(\"workers\"), 0,",
            &["playbook.rhai:14:", "at least 1, not 0"],
        ),
        // A misspelled library option: the options, and the call that passed it.
        (
            "etcd-tls",
            "    interface: first",
            "    interfce: first",
            &["unknown option \"interfce\"", "\"interface\"", "playbook.rhai:20"],
        ),
    ];
    for (name, right, wrong, expected) in mistakes {
        let t = Test::new();
        let copy = t.path().join(name);
        copy_dir(&example(name), &copy);
        let playbook = copy.join("playbook.rhai");
        let text = std::fs::read_to_string(&playbook).unwrap();
        assert_eq!(text.matches(right).count(), 1, "{name}: {right:?} appears once in the playbook");
        std::fs::write(&playbook, text.replace(right, wrong)).unwrap();
        let out = t
            .arg("check")
            .arg(&playbook)
            .arg("-i")
            .arg(example(name).join("inventory.yml"))
            .args(extra_args(name))
            .run()
            .failure();
        for needle in expected {
            assert!(out.stderr.contains(needle), "{name}: stderr lacks {needle:?}:\n{}", out.stderr);
        }
        out.stderr_snapshot(&format!("mistake_in_{}", name.replace('-', "_")));
    }
}

// ------------------------------------------------------------------ on the lab

/// The example's inventory, as written, when the lab lives where it says (target/lab under the
/// repository root); otherwise a copy pointing at the lab's own key and known_hosts. Every host
/// must be a lab host at the lab's address.
fn inventory(lab: &Lab, name: &str, t: &Test) -> PathBuf {
    let path = example(name).join("inventory.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut addresses = Vec::new();
    let mut collect = |hosts: &serde_json::Value| {
        for host in hosts.as_object().into_iter().flat_map(|m| m.values()) {
            addresses.push(host["ansible_host"].as_str().unwrap().to_owned());
        }
    };
    collect(&yaml["all"]["hosts"]);
    for group in yaml["all"]["children"].as_object().into_iter().flat_map(|m| m.values()) {
        collect(&group["hosts"]);
    }
    assert!(!addresses.is_empty(), "{}: no hosts", path.display());
    for address in &addresses {
        assert!(lab.hosts.iter().any(|h| h.1 == *address), "{}: {address} is not a lab host", path.display());
    }
    let key = root().join("target/lab/id_ed25519");
    if lab.key.canonicalize().ok() == key.canonicalize().ok() {
        return path;
    }
    let text = text
        .replace("target/lab/id_ed25519", &lab.key.display().to_string())
        .replace("target/lab/known_hosts", &lab.known_hosts.display().to_string());
    t.file(&format!("{name}-inventory.yml"), &text)
}

/// `engine <command> examples/NAME/playbook.rhai -i <its inventory> --json ARGS`.
fn engine(lab: &Lab, command: &str, name: &str, args: &[&str]) -> Output {
    let t = Test::new();
    let inventory = inventory(lab, name, &t);
    t.arg(command)
        .arg(Path::new("examples").join(name).join("playbook.rhai"))
        .arg("-i")
        .arg(inventory)
        .arg("--json")
        .args(extra_args(name))
        .args(args)
        .run()
}

/// Runs the example twice: the first run changes the hosts, the second changes nothing.
fn run_twice(lab: &Lab, name: &str, args: &[&str]) -> (Output, Output) {
    let first = engine(lab, "run", name, args).success();
    assert!(first.count("changed") > 0, "{name}: the first run changes the hosts: {:?}", first.outcomes());
    let second = engine(lab, "run", name, args).success();
    assert_eq!(second.count("changed"), 0, "{name}: the second run changes nothing: {:?}", second.outcomes());
    (first, second)
}

/// Polls `probe` every 500 ms until it holds, for at most `limit`.
fn eventually(limit: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if probe() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `undo` on each host when dropped, whatever the test did before.
struct Cleanup<'a> {
    lab: &'a Lab,
    steps: Vec<(&'static str, String)>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for (host, command) in &self.steps {
            let (code, _, err) = self.lab.ssh_status(host, command);
            if code != Some(0) {
                eprintln!("cleanup on {host} failed ({code:?}): {command}: {err}");
            }
        }
    }
}

/// A unit's state as `systemctl is-active; is-enabled` says, and the command that restores it.
fn restore_unit(lab: &Lab, host: &str, unit: &str) -> String {
    let active = lab.ssh_status(host, &format!("systemctl is-active {unit}")).1.trim() == "active";
    let enabled = lab.ssh_status(host, &format!("systemctl is-enabled {unit}")).1.trim() == "enabled";
    format!(
        "systemctl {} {unit}; systemctl {} {unit}; systemctl reset-failed {unit} 2>/dev/null; true",
        if enabled { "enable" } else { "disable" },
        if active { "restart" } else { "stop" },
    )
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn hello_runs_twice_and_the_reply_quotes_the_message() {
    let lab = Lab::get();
    let _lab = exclusive();
    let hosts = ["worker0", "worker1"];
    let undo = "rm -rf /tmp/engine-hello";
    for host in hosts {
        lab.ssh(host, undo);
    }
    let _cleanup = Cleanup { lab: &lab, steps: hosts.iter().map(|h| (*h, undo.to_owned())).collect() };

    let (first, _) = run_twice(&lab, "hello", &[]);
    assert_eq!(first.task("worker1", "write the reply")["status"], "changed");
    assert_eq!(lab.ssh("worker0", "cat /tmp/engine-hello/message"), "hello from worker0\n");
    assert_eq!(lab.ssh("worker1", "cat /tmp/engine-hello/from-worker0"), "hello from worker0\n");
    assert_eq!(lab.ssh("worker1", "cat /tmp/engine-hello/reply"), "worker1 read: hello from worker0\n");
    // The cross-host edges held: the copy and the reply started after the message was written.
    let events = first.events();
    let at = |event: &str, host: &str, task: &str| {
        events
            .iter()
            .position(|e| e["event"] == event && e["host"] == host && e["task"] == task)
            .unwrap_or_else(|| panic!("no {event} of {host}: {task}"))
    };
    assert!(
        at("task_finished", "worker0", "write the message")
            < at("task_started", "worker1", "fetch the message")
    );
    assert!(
        at("task_finished", "worker0", "read the message") < at("task_started", "worker1", "write the reply")
    );
}

const ETCD_HOSTS: [&str; 3] = ["etcd0", "etcd1", "etcd2"];
/// Everything examples/etcd-tls leaves on a member (and what other etcd tests may have left).
const ETCD_UNDO: &str = "systemctl stop etcd 2>/dev/null; systemctl disable etcd 2>/dev/null; \
    rm -rf /etc/etcd /etc/etcd.env /var/lib/etcd /etc/systemd/system/etcd.service; \
    systemctl daemon-reload; systemctl reset-failed etcd 2>/dev/null; true";

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn etcd_tls_cluster_is_healthy_and_refuses_clients_without_a_cert() {
    let lab = Lab::get();
    let _lab = exclusive();
    for host in ETCD_HOSTS {
        lab.ssh(host, ETCD_UNDO);
    }
    let _cleanup =
        Cleanup { lab: &lab, steps: ETCD_HOSTS.iter().map(|h| (*h, ETCD_UNDO.to_owned())).collect() };

    let (first, second) = run_twice(&lab, "etcd-tls", &[]);
    for host in ETCD_HOSTS {
        assert_eq!(first.task("etcd0", &format!("etcd on {host} healthy"))["status"], "ok");
    }
    assert_eq!(first.task("etcd0", "etcdctl environment")["status"], "changed");
    assert_eq!(second.task("etcd0", "etcd CA")["status"], "ok", "the CA is never replaced");

    // etcd's own view, with the client certificate, through the environment file the example writes.
    let members = lab.ssh("etcd0", "set -a; . /etc/etcd/etcdctl.env; set +a; etcdctl member list");
    for host in ETCD_HOSTS {
        let peer = format!("{host}, https://{}:2380", lab.address(host));
        assert!(members.lines().any(|l| l.contains("started") && l.contains(&peer)), "{peer}: {members}");
    }
    let health =
        lab.ssh("etcd0", "set -a; . /etc/etcd/etcdctl.env; set +a; etcdctl endpoint health --cluster 2>&1");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    // The CA key stays on etcd0; the others have the CA certificate only.
    lab.ssh("etcd0", "test -s /etc/etcd/pki/ca-key.pem");
    for host in &ETCD_HOSTS[1..] {
        lab.ssh(host, "test -s /etc/etcd/pki/ca.pem && test ! -e /etc/etcd/pki/ca-key.pem");
    }
    // TLS both ways: with the client certificate etcd answers; without one it refuses.
    let url = format!("https://{}:2379/health", lab.address("etcd1"));
    let pki = "/etc/etcd/pki";
    let with = lab.ssh(
        "etcd0",
        &format!("curl -sS --max-time 5 --cacert {pki}/ca.pem --cert {pki}/client.pem --key {pki}/client-key.pem {url}"),
    );
    assert!(with.contains("\"health\":\"true\""), "{with}");
    let (code, out, err) =
        lab.ssh_status("etcd0", &format!("curl -sS --max-time 5 --cacert {pki}/ca.pem {url}"));
    assert_ne!(code, Some(0), "a client without a certificate must be refused: {out}{err}");
}

const VIP: &str = "10.77.0.9";
const LBS: [&str; 2] = ["etcd0", "etcd1"]; // lb0, lb1 in the example's inventory
const WEBS: [&str; 2] = ["worker0", "worker1"]; // web0, web1

fn holds_vip(lab: &Lab, host: &str) -> bool {
    lab.ssh_status(host, &format!("ip -o -4 addr show | grep -qw {VIP}")).0 == Some(0)
}

/// What `http://VIP:8080/` answers, asked from worker2 (a lab host outside the example).
fn through_vip(lab: &Lab) -> Option<String> {
    let (code, out, _) = lab.ssh_status("worker2", &format!("curl -fsS --max-time 3 http://{VIP}:8080/"));
    (code == Some(0)).then_some(out)
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn haproxy_keepalived_vip_fails_over() {
    let lab = Lab::get();
    let _lab = exclusive();
    // Put back what the example changes: units as they were, configs removed or restored.
    let mut steps = Vec::new();
    for lb in LBS {
        lab.ssh(lb, "test -e /root/haproxy.cfg.before-example || cp -p /etc/haproxy/haproxy.cfg /root/haproxy.cfg.before-example");
        steps.push((
            lb,
            "systemctl stop keepalived; rm -f /etc/keepalived/keepalived.conf /var/lib/engine/secrets/example-vrrp"
                .to_owned(),
        ));
        steps.push((lb, "mv /root/haproxy.cfg.before-example /etc/haproxy/haproxy.cfg".to_owned()));
        steps.push((lb, restore_unit(&lab, lb, "keepalived")));
        steps.push((lb, restore_unit(&lab, lb, "haproxy")));
    }
    for web in WEBS {
        steps.push((web, "rm -f /etc/nginx/conf.d/haproxy-keepalived-example.conf".to_owned()));
        steps.push((web, restore_unit(&lab, web, "nginx")));
    }
    let cleanup = Cleanup { lab: &lab, steps };
    assert!(!LBS.iter().any(|h| holds_vip(&lab, h)), "{VIP} is already taken before the example runs");

    let (_, second) = run_twice(&lab, "haproxy-keepalived", &[]);
    assert_eq!(second.task("lb0", "a backend answers through haproxy")["status"], "ok");

    // lb0 has the highest priority: it takes the VIP.
    assert!(eventually(Duration::from_secs(15), || holds_vip(&lab, "etcd0")), "lb0 (etcd0) never took {VIP}");
    assert!(!holds_vip(&lab, "etcd1"));
    // Round robin over both backends, through the VIP.
    let mut answers = std::collections::BTreeSet::new();
    for _ in 0..6 {
        answers.insert(through_vip(&lab).expect("HTTP through the VIP"));
    }
    let expected: std::collections::BTreeSet<String> =
        ["hello from web0\n", "hello from web1\n"].map(String::from).into();
    assert_eq!(answers, expected);

    // lb0's keepalived stops: the VIP moves to lb1, and HTTP through it still answers.
    lab.ssh("etcd0", "systemctl stop keepalived");
    assert!(
        eventually(Duration::from_secs(15), || holds_vip(&lab, "etcd1")),
        "{VIP} never moved to lb1 (etcd1)"
    );
    assert!(!holds_vip(&lab, "etcd0"));
    let answer = through_vip(&lab).expect("HTTP through the VIP after the failover");
    assert!(answer.starts_with("hello from web"), "{answer}");

    // The playbook brings keepalived back on lb0, which takes the VIP back (higher priority).
    let again = engine(&lab, "run", "haproxy-keepalived", &[]).success();
    assert_eq!(again.task("lb0", "keepalived running")["status"], "changed");
    assert_eq!(again.count("changed"), 1, "{:?}", again.outcomes());
    assert!(eventually(Duration::from_secs(15), || holds_vip(&lab, "etcd0")), "{VIP} never came back to lb0");
    assert!(through_vip(&lab).is_some());

    drop(cleanup);
    assert!(!LBS.iter().any(|h| holds_vip(&lab, h)), "cleanup releases {VIP}");
}

const WORKERS: [&str; 3] = ["worker0", "worker1", "worker2"];

fn served(lab: &Lab, host: &str, path: &str) -> String {
    lab.ssh_status(host, &format!("curl -sS --max-time 3 http://127.0.0.1:8090{path}")).1
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn rolling_changes_one_worker_at_a_time() {
    let lab = Lab::get();
    let _lab = exclusive();
    let mut steps = Vec::new();
    for w in WORKERS {
        lab.ssh(w, "rm -f /etc/nginx/conf.d/rolling-example.conf /etc/nginx/conf.d/zz-broken.conf /run/rolling-example.drained");
        steps.push((w, "rm -f /etc/nginx/conf.d/rolling-example.conf /etc/nginx/conf.d/zz-broken.conf /run/rolling-example.drained".to_owned()));
        steps.push((w, restore_unit(&lab, w, "nginx")));
    }
    let _cleanup = Cleanup { lab: &lab, steps };

    run_twice(&lab, "rolling", &[]);
    for w in WORKERS {
        assert_eq!(served(&lab, w, "/"), format!("version 1 on {w}\n"));
        assert_eq!(served(&lab, w, "/health"), "ok\n");
    }

    // Version 2: each worker is drained, restarted, checked and back in the pool before the next starts.
    let rolled = engine(&lab, "run", "rolling", &["-e", "version=2"]).success();
    let events = rolled.events();
    let at = |event: &str, host: &str, task: &str| {
        events
            .iter()
            .position(|e| e["event"] == event && e["host"] == host && e["task"] == task)
            .unwrap_or_else(|| panic!("no {event} of {host}: {task}"))
    };
    for pair in WORKERS.windows(2) {
        assert!(
            at("task_finished", pair[0], "back in the pool") < at("task_started", pair[1], "site config"),
            "{} must be done before {} starts",
            pair[0],
            pair[1]
        );
    }
    for w in WORKERS {
        assert_eq!(rolled.task(w, "restart nginx")["status"], "changed");
        assert_eq!(served(&lab, w, "/"), format!("version 2 on {w}\n"));
        assert_eq!(served(&lab, w, "/health"), "ok\n", "{w} is back in the pool");
    }

    // Version 3, with nginx's config broken on worker1: worker0 changes, worker1's restart
    // fails and it stays drained, worker2 is never touched and keeps serving version 2.
    lab.ssh("worker1", "echo 'this is not nginx config;' >/etc/nginx/conf.d/zz-broken.conf");
    let failed = engine(&lab, "run", "rolling", &["-e", "version=3"]).code(2);
    assert_eq!(failed.task("worker0", "back in the pool")["status"], "changed");
    assert_eq!(failed.task("worker1", "restart nginx")["status"], "failed");
    for (_, task, status) in failed.outcomes().iter().filter(|(h, ..)| h == "worker2") {
        assert_eq!(status, "skipped", "worker2: {task}");
    }
    assert_eq!(served(&lab, "worker0", "/"), "version 3 on worker0\n");
    assert_eq!(served(&lab, "worker2", "/"), "version 2 on worker2\n");
    lab.ssh("worker1", "test -e /run/rolling-example.drained");
}
