//! playbooks/upgrade.rhai ("Upgrading kubeadm clusters"): its graph without a lab, and on the
//! bare lab the cluster ha.rhai built, upgraded from v1.30 to v1.31 within its disruption budget.
//! renew-certs.rhai: its graph. `cargo xtask test` runs the lab test with tests/ha.rs, on the bare
//! lab (`upgrade::` is one of its prefixes), passing its inventory in `ENGINE_LAB_BARE_INVENTORY`.
#![allow(clippy::unwrap_used)]

use crate::support;
use support::Test;
use support::bare::{ALL, bare_lab, fresh};
use support::lab::Lab;

const GRAPH: [&str; 6] =
    ["graph", "playbooks/upgrade.rhai", "-i", "playbooks/inventory.example.yml", "-e", "upgrade_to=v1.31.1"];

/// The masters one at a time (a serial), the workers within a budget of one, every uncordon a
/// cleanup that runs after a failed drain, the drains guarded by the preflight's `pending`.
#[test]
fn the_upgrade_graph_has_its_budget_its_serial_and_its_guards() {
    let out = Test::new().args(GRAPH).run().success();
    let dot = out.stdout.clone();
    assert!(dot.contains("at most 1 of [worker0, worker1, worker2] down at once (max_down 1)"), "{dot}");
    assert!(dot.contains("batches [master0] [master1] [master2]"), "{dot}");
    for node in ["master0", "master1", "master2", "worker0", "worker1", "worker2"] {
        assert!(dot.contains(&format!("when: '{node}' in pending")), "{node}: {dot}");
    }
    assert_eq!(dot.matches("(always)").count(), 6, "one uncordon per node");
    assert_eq!(
        dot.matches("\\nbudget 1: ").count(),
        3 * 6,
        "kubeadm upgrade node, drain, packages, restart, uncordon, Ready per worker"
    );
    let percent = Test::new().args(GRAPH).args(["-e", "max_unavailable=67%"]).run().success();
    assert!(percent.stdout.contains("at most 2 of [worker0, worker1, worker2] down at once (max_down 67%)"));
}

#[test]
fn the_upgrade_wants_a_release_to_upgrade_to() {
    Test::new().args(&GRAPH[..4]).run().failure().stderr_has("upgrade_to");
    Test::new()
        .args(&GRAPH[..4])
        .args(["-e", "upgrade_to=1.31"])
        .run()
        .failure()
        .stderr_has("is not a release like \"v1.30.4\"");
}

/// renew-certs.rhai: etcd's members restart one at a time (a handler each, only if its
/// certificates changed), then kubeadm's certificates, one master at a time.
#[test]
fn the_renewal_graph_restarts_one_member_at_a_time() {
    let out = Test::new()
        .args(["graph", "playbooks/renew-certs.rhai", "-i", "playbooks/inventory.example.yml"])
        .run()
        .success();
    let dot = &out.stdout;
    assert!(dot.contains("batches [etcd0] [etcd1] [etcd2]"), "{dot}");
    assert!(dot.contains("batches [master0] [master1] [master2]"), "{dot}");
    assert_eq!(dot.matches("restart etcd\\n[systemd]").count(), 3, "{dot}");
    assert_eq!(dot.matches("kubeadm certs renew\\n[kubeadm]").count(), 3, "{dot}");
}
// ---- on the bare lab ------------------------------------------------------------------------

const WORKERS: [&str; 3] = ["worker0", "worker1", "worker2"];
const NODES: [&str; 6] = ["master0", "master1", "master2", "worker0", "worker1", "worker2"];
use support::lab::ETCD_PKI as PKI;

/// These tests share the lab's hosts: one at a time.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn engine(lab: &Lab, cmd: &str, playbook: &str, extra: &[&str]) -> support::Output {
    Test::new().args([cmd, playbook, "-i"]).arg(&lab.inventory).arg("--json").args(extra).run()
}

fn changed(out: &support::Output) -> Vec<(String, String)> {
    let mut c: Vec<(String, String)> =
        out.outcomes().into_iter().filter(|o| o.2 == "changed").map(|o| (o.0, o.1)).collect();
    c.sort();
    c
}

fn status(out: &support::Output, host: &str, task: &str) -> String {
    out.task(host, task)["status"].as_str().unwrap_or_default().to_owned()
}

/// The stand-ins' folder of the cluster whose CA master0 holds (see docs/lab.md, "The cluster
/// API stand-in"): the hex SHA-256 of the CA's public key.
fn cluster_dir(lab: &Lab) -> String {
    let hex = lab.ssh(
        "master0",
        "openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der \
         | sha256sum | cut -d' ' -f1",
    );
    format!("/var/lib/kube-standin-api/{}", hex.trim())
}

/// Each node's kubelet version and whether it is cordoned, as `kubectl get nodes` says.
fn nodes(lab: &Lab) -> Vec<(String, String, bool)> {
    let text = lab.ssh("master0", "kubectl --kubeconfig=/etc/kubernetes/admin.conf get nodes -o json");
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<(String, String, bool)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["metadata"]["name"].as_str().unwrap().to_owned(),
                n["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap().to_owned(),
                n["spec"]["unschedulable"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    out
}

/// The most workers cordoned at once, from the cluster API's event log.
fn most_workers_cordoned(lab: &Lab, dir: &str) -> usize {
    let log = lab.ssh("master0", &format!("cat {dir}/events.jsonl"));
    let (mut down, mut most) = (std::collections::BTreeSet::new(), 0);
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let node = event["node"].as_str().unwrap_or_default().to_owned();
        if !WORKERS.contains(&node.as_str()) {
            continue;
        }
        match event["action"].as_str() {
            Some("cordon") => {
                down.insert(node);
            }
            Some("uncordon") => {
                down.remove(&node);
            }
            _ => {}
        }
        most = most.max(down.len());
    }
    most
}

/// Samples `etcdctl endpoint health` over the three members every 200 ms until stopped (at most
/// 10 minutes): how many samples, and the fewest healthy members in one.
struct Watcher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, usize)>,
}

impl Watcher {
    fn start(lab: &Lab) -> Watcher {
        let command =
            lab.etcdctl_command(&["etcd0", "etcd1", "etcd2"], "--command-timeout=2s endpoint health");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // This file's turn on the lab is already held (by the test that starts the watcher).
            let lab = Lab::bare();
            let (mut samples, mut fewest) = (0, usize::MAX);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
                let (_, out, _) = lab.ssh_status("etcd0", &command);
                fewest = fewest.min(out.matches("is healthy").count());
                samples += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            (samples, fewest)
        });
        Watcher { stop, thread }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Issue 19's upgrade, on the cluster ha.rhai built on the bare lab (v1.30.4):
/// - a target that skips a minor version (v1.32.0) is refused before anything changes;
/// - with worker1's evictions refused (the stand-ins' PodDisruptionBudget switch), the upgrade
///   to v1.31.1 (etcd restarted member by member) stops worker1's branch, uncordons worker1, and
///   finishes everything else; never more than one worker cordoned (the budget), etcd keeps its
///   quorum throughout (a watcher samples `endpoint health`);
/// - the switch off, `--resume` finishes worker1 and changes nothing elsewhere;
/// - every node then runs v1.31.1, and a second run changes nothing.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn upgrade_one_minor_within_the_budget_and_resume_after_a_refused_drain() {
    let lab = bare_lab();
    let _lab = exclusive();
    fresh(&lab, &ALL);
    engine(&lab, "run", "playbooks/ha.rhai", &[]).success();
    assert!(nodes(&lab).iter().all(|(_, v, _)| v == "v1.30.4"), "{:?}", nodes(&lab));

    // A skipped minor version: refused by the preflight, nothing changed.
    let skip = engine(&lab, "run", "playbooks/upgrade.rhai", &["-e", "upgrade_to=v1.32.0"]).code(2);
    let why = support::task_error(&skip, "master0", "upgrade preflight");
    assert!(why.contains("refused before anything changed") && why.contains("too high"), "{why}");
    assert_eq!(changed(&skip), [], "nothing changes");
    let source = lab.ssh("worker0", "cat /etc/apt/sources.list.d/kubernetes.list");
    assert!(source.contains("/v1.30/deb/"), "{source}");

    // worker1's drain refused: its branch stops, the others finish.
    let dir = cluster_dir(&lab);
    lab.ssh("master0", &format!("mkdir -p {dir}/refuse-eviction && touch {dir}/refuse-eviction/worker1"));
    let watcher = Watcher::start(&lab);
    let args = ["-e", "upgrade_to=v1.31.1", "-e", "etcd_restart=true", "-e", "drain_timeout=5"];
    let first = engine(&lab, "run", "playbooks/upgrade.rhai", &args).code(2);
    assert_eq!(status(&first, "master0", "drain worker1"), "failed");
    let refused = support::task_error(&first, "master0", "drain worker1");
    assert!(refused.contains("disruption budget"), "{refused}");
    assert_eq!(status(&first, "worker1", "upgrade kubelet and kubectl"), "skipped");
    assert_eq!(status(&first, "master0", "uncordon worker1"), "changed", "the cleanup ran");
    for w in ["worker0", "worker2"] {
        assert_eq!(status(&first, w, "upgrade kubelet and kubectl"), "changed", "{w}");
    }
    for e in ["etcd0", "etcd1", "etcd2"] {
        assert_eq!(status(&first, e, "restart etcd"), "changed", "{e}");
    }
    let after_first = nodes(&lab);
    assert!(after_first.iter().all(|(_, _, cordoned)| !cordoned), "no node left cordoned: {after_first:?}");
    let worker1 = after_first.iter().find(|n| n.0 == "worker1").unwrap();
    assert_eq!(worker1.1, "v1.30.4", "worker1 was not upgraded");

    // The switch off: --resume finishes worker1 only.
    lab.ssh("master0", &format!("rm -f {dir}/refuse-eviction/worker1"));
    let resumed =
        engine(&lab, "run", "playbooks/upgrade.rhai", &[&args[..], &["--resume"]].concat()).success();
    let touched = changed(&resumed);
    assert!(!touched.is_empty());
    for (host, task) in &touched {
        assert!(
            host == "worker1" || task.ends_with(" worker1"),
            "resume changed {host}: {task} ({touched:?})"
        );
    }
    let (samples, fewest) = watcher.finish();
    assert!(samples >= 5, "the watcher sampled etcd {samples} times");
    assert!(fewest >= 2, "etcd lost its quorum: {fewest} of 3 members healthy in one sample");
    assert_eq!(most_workers_cordoned(&lab, &dir), 1, "max_unavailable 1 (the default)");

    // Every node at the target; a second run changes nothing.
    let all = nodes(&lab);
    assert_eq!(all.len(), NODES.len());
    assert!(all.iter().all(|(_, v, cordoned)| v == "v1.31.1" && !cordoned), "{all:?}");
    for node in NODES {
        assert_eq!(lab.ssh(node, "kubeadm version -o short").trim(), "v1.31.1", "{node}");
        assert_eq!(lab.ssh(node, "apt-mark showhold"), "kubeadm\nkubectl\nkubelet\n", "{node}");
    }
    for m in ["master0", "master1", "master2"] {
        let image = lab.ssh(m, "grep 'image:' /etc/kubernetes/manifests/kube-apiserver.yaml");
        assert!(image.trim().ends_with(":v1.31.1"), "{m}: {image}");
    }
    let again = engine(&lab, "run", "playbooks/upgrade.rhai", &["-e", "upgrade_to=v1.31.1"]).success();
    assert_eq!(changed(&again), [], "a second run changes nothing");
}

fn serial_of(lab: &Lab, host: &str, path: &str) -> String {
    lab.ssh(host, &format!("openssl x509 -noout -serial -in {path}"))
}

/// renew-certs.rhai on the cluster ha.rhai built: with a `renew_before` longer than every
/// certificate's validity, etcd's member certificates are reissued (each member restarted in
/// turn, a watcher never seeing fewer than two healthy members) and kubeadm's on every master;
/// with the default (30 days) a second run changes nothing.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn renew_certs_reissues_what_expires_one_member_at_a_time() {
    let lab = bare_lab();
    let _lab = exclusive();
    fresh(&lab, &ALL);
    engine(&lab, "run", "playbooks/ha.rhai", &[]).success();
    let etcd1 = serial_of(&lab, "etcd1", &format!("{PKI}/server.pem"));
    let master1 = serial_of(&lab, "master1", "/etc/kubernetes/pki/apiserver.crt");

    let watcher = Watcher::start(&lab);
    let args = ["-e", "renew_before=50000h", "-e", "static_pod_restart_wait=1"];
    let renewed = engine(&lab, "run", "playbooks/renew-certs.rhai", &args).success();
    let (samples, fewest) = watcher.finish();
    for e in ["etcd0", "etcd1", "etcd2"] {
        assert_eq!(status(&renewed, e, "etcd server cert"), "changed", "{e}");
        assert_eq!(status(&renewed, e, "restart etcd"), "changed", "{e}");
    }
    for m in ["master0", "master1", "master2"] {
        assert_eq!(status(&renewed, m, "kubeadm certs renew"), "changed", "{m}");
        assert_eq!(status(&renewed, m, "restart control plane pods"), "changed", "{m}");
    }
    assert_ne!(serial_of(&lab, "etcd1", &format!("{PKI}/server.pem")), etcd1);
    assert_ne!(serial_of(&lab, "master1", "/etc/kubernetes/pki/apiserver.crt"), master1);
    assert!(samples >= 5, "the watcher sampled etcd {samples} times");
    assert!(fewest >= 2, "etcd lost its quorum: {fewest} of 3 members healthy in one sample");

    let again = engine(&lab, "run", "playbooks/renew-certs.rhai", &[]).success();
    assert_eq!(changed(&again), [], "nothing expires within 30 days now");
}
