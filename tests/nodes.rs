//! playbooks/add-node.rhai and remove-node.rhai (grow and shrink the cluster ha.rhai built):
//! their graphs and refusals without a lab, and on the bare lab with two extra hosts
//! (`cargo xtask lab up --topology ha+2 --bare`): the cluster ha.rhai built gets a fourth worker
//! (h00) and a fourth etcd member (h01), then loses them, each step changing nothing on a
//! second run.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use crate::support;

use support::Test;
use support::lab::Lab;

/// The example inventory with a fourth worker and a fourth etcd member, and a host in no group
/// of the cluster (`spare`, in `others`).
const INVENTORY: &str = "all:
  vars:
    ansible_user: root
    lab_interface: eth1
    lab_vip: 10.0.0.10
  children:
    etcd:
      hosts:
        etcd0: {ansible_host: 10.0.0.11}
        etcd1: {ansible_host: 10.0.0.12}
        etcd2: {ansible_host: 10.0.0.13}
        etcd3: {ansible_host: 10.0.0.14}
    masters:
      hosts:
        master0: {ansible_host: 10.0.0.21}
        master1: {ansible_host: 10.0.0.22}
        master2: {ansible_host: 10.0.0.23}
    workers:
      hosts:
        worker0: {ansible_host: 10.0.0.31}
        worker1: {ansible_host: 10.0.0.32}
        worker2: {ansible_host: 10.0.0.33}
        worker3: {ansible_host: 10.0.0.34}
    others:
      hosts:
        spare: {ansible_host: 10.0.0.40}
";

fn graph(playbook: &str, nodes: &str) -> Test {
    let t = Test::new();
    let inventory = t.file("inventory.yml", INVENTORY);
    t.args(["graph", playbook, "-i"]).arg(inventory).args(["-e", &format!("nodes={nodes}")])
}

/// Adding: the new worker prepared and joined with a token from master0, both guarded by the
/// read-only "joined already" check; the new etcd member added on etcd0 (before it starts) and
/// started to join the existing cluster, with a health gate for every member (four).
#[test]
fn the_add_node_graph_guards_the_token_and_adds_the_member_before_it_starts() {
    let dot = graph("playbooks/add-node.rhai", "worker3,etcd3").run().success().stdout;
    assert!(dot.contains("joined already"), "{dot}");
    assert!(dot.contains("when: 'joined' not in stdout"), "{dot}");
    assert!(dot.contains("join token for worker3"), "{dot}");
    assert!(dot.contains("when: ca_cert_hash != ''"), "{dot}");
    assert!(dot.contains("etcd member add etcd3"), "{dot}");
    assert!(dot.contains("batches [etcd3]"), "{dot}");
    for member in ["etcd0", "etcd1", "etcd2", "etcd3"] {
        assert!(dot.contains(&format!("etcd on {member} healthy after adding etcd3")), "{member}: {dot}");
    }
    // Only the new hosts, master0 (the token) and etcd0 (CA, member add, health) have tasks.
    for untouched in ["etcd1", "etcd2", "master1", "master2", "worker0", "worker1", "worker2", "spare"] {
        assert!(!dot.contains(&format!("label=\"{untouched}\";")), "{untouched} has a task: {dot}");
    }
}

/// Removing: the drain guarded by the node's presence, reset and kubelet stopped on the node,
/// the node deleted; the etcd member removed on a member that stays (at least 3 must remain),
/// then etcd stopped, its data removed, and the others' health checked.
#[test]
fn the_remove_node_graph_drains_only_present_nodes_and_removes_members_by_id() {
    let dot = graph("playbooks/remove-node.rhai", "worker3,etcd3").run().success().stdout;
    for task in [
        "nodes in the cluster",
        "drain worker3",
        "when: 'worker3' in names",
        "kubeadm reset",
        "kubelet stopped",
        "delete node worker3",
        "etcd member remove etcd3",
        "etcd stopped",
        "etcd data removed",
        "batches [etcd3]",
    ] {
        assert!(dot.contains(task), "{task}: {dot}");
    }
    for member in ["etcd0", "etcd1", "etcd2"] {
        assert!(dot.contains(&format!("etcd on {member} healthy after removing etcd3")), "{member}: {dot}");
    }
    assert!(!dot.contains("etcd on etcd3 healthy"), "{dot}");
    for untouched in ["etcd1", "etcd2", "master1", "master2", "worker0", "worker1", "worker2", "spare"] {
        assert!(!dot.contains(&format!("label=\"{untouched}\";")), "{untouched} has a task: {dot}");
    }
}

#[test]
fn unknown_nodes_nodes_in_no_group_and_masters_are_refused() {
    for (playbook, verb) in
        [("playbooks/add-node.rhai", "add-node"), ("playbooks/remove-node.rhai", "remove-node")]
    {
        graph(playbook, "worker3,wroker4")
            .run()
            .failure()
            .stderr_has(&format!("{verb}: \"wroker4\" is not in the inventory"));
        graph(playbook, "spare").run().failure().stderr_has("\"spare\" is in none of the groups");
        graph(playbook, "master1").run().failure().stderr_has("\"master1\" is a master");
        graph(playbook, "etcd0").run().failure().stderr_has("the first etcd host, which holds the CA");
        graph(playbook, ",").run().failure().stderr_has("names no host");
    }
    let t = Test::new();
    let inventory = t.file("inventory.yml", INVENTORY);
    t.args(["graph", "playbooks/add-node.rhai", "-i"]).arg(inventory).run().failure().stderr_has("nodes");
}

/// Four members: removing one leaves three (fine), two leaves two (refused before anything,
/// unless forced), all but the first never (the first holds the CA).
#[test]
fn removing_etcd_members_below_quorum_is_refused_unless_forced() {
    graph("playbooks/remove-node.rhai", "etcd3").run().success();
    graph("playbooks/remove-node.rhai", "etcd2,etcd3")
        .run()
        .failure()
        .stderr_has("would leave 2 etcd members, fewer than 3 (etcd's quorum); -e force=true to allow it");
    let forced =
        graph("playbooks/remove-node.rhai", "etcd2,etcd3").args(["-e", "force=true"]).run().success();
    assert!(forced.stdout.contains("batches [etcd2] [etcd3]"), "{}", forced.stdout);
}

// ------------------------------------------------------------------------------------------
// On the bare lab
// ------------------------------------------------------------------------------------------

const HA: [&str; 9] =
    ["etcd0", "etcd1", "etcd2", "master0", "master1", "master2", "worker0", "worker1", "worker2"];
/// The fleet hosts of `ha+2` that become a worker and an etcd member.
const NEW_WORKER: &str = "h00";
const NEW_ETCD: &str = "h01";

/// The bare `ha+2` lab: the `ha` hosts, and the fleet's h00 and h01 (from fleet.yml beside the
/// inventory) added to the lab's hosts for [`Lab::ssh`]. Also returns the inventory for the
/// grown cluster: the lab's, with h00 in `workers` and h01 in `etcd`.
fn grown_lab(dir: &Path) -> (Lab, PathBuf) {
    let mut lab = Lab::bare();
    assert!(
        HA.iter().all(|h| lab.hosts.iter().any(|(name, ..)| name == h)),
        "these tests need the bare ha+2 lab: `cargo xtask lab up --topology ha+2 --bare`"
    );
    let fleet_path = lab.inventory.with_file_name("fleet.yml");
    let fleet_text = std::fs::read_to_string(&fleet_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: these tests need the bare ha+2 lab: `cargo xtask lab up --topology ha+2 --bare`",
            fleet_path.display()
        )
    });
    let fleet: serde_json::Value = serde_yaml_ng::from_str(&fleet_text).unwrap();
    let mut inventory: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&lab.inventory).unwrap()).unwrap();
    for (host, group) in [(NEW_WORKER, "workers"), (NEW_ETCD, "etcd")] {
        let entry = fleet["all"]["children"]["fleet"]["hosts"][host].clone();
        let address =
            entry["ansible_host"].as_str().unwrap_or_else(|| panic!("{host} in {fleet_text}")).to_owned();
        inventory["all"]["children"][group]["hosts"][host] = entry;
        lab.hosts.push((host.to_owned(), address, group.to_owned()));
    }
    let path = dir.join("grown.yml");
    std::fs::write(&path, serde_yaml_ng::to_string(&inventory).unwrap()).unwrap();
    (lab, path)
}

/// etcdctl over TLS with the client certificate on etcd0, against `members`.
fn etcdctl(lab: &Lab, members: &[&str], args: &str) -> String {
    lab.etcdctl("etcd0", members, args)
}

fn play(playbook: &str, inventory: &Path, extra: &[&str]) -> support::Output {
    Test::new().args(["run", playbook, "-i"]).arg(inventory).arg("--json").args(extra).run()
}

fn dry_run(playbook: &str, inventory: &Path, extra: &[&str]) -> support::Output {
    Test::new().args(["check", playbook, "-i"]).arg(inventory).arg("--json").args(extra).run()
}

fn changed_hosts(out: &support::Output) -> std::collections::BTreeSet<String> {
    out.outcomes().into_iter().filter(|o| o.2 == "changed").map(|o| o.0).collect()
}

fn nothing_changed(out: &support::Output) {
    let changed: Vec<_> = out.outcomes().into_iter().filter(|o| o.2 == "changed").collect();
    assert!(changed.is_empty(), "a second run changed {changed:?}");
}

/// ha.rhai builds the cluster on the 9 bare `ha` hosts; add-node.rhai (after a dry-run that
/// changes nothing) adds h00 as a worker
/// (joined: its kubelet.conf) and h01 as an etcd member (4 started, healthy members), changing
/// only those and master0 (the token) and etcd0 (member add); again, nothing changes.
/// remove-node.rhai (again after a dry-run) then removes them (3 members, healthy; h00 reset, its kubelet stopped; h01's
/// etcd stopped and disabled, its data gone); again, nothing changes.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn nodes_a_worker_and_an_etcd_member_join_and_leave_the_cluster() {
    let scratch = tempfile::tempdir().unwrap();
    let (lab, grown) = grown_lab(scratch.path());
    let mut all: Vec<&str> = HA.to_vec();
    all.extend([NEW_WORKER, NEW_ETCD]);
    lab.restart(&all);

    play("playbooks/ha.rhai", &lab.inventory, &[]).success();
    let three = ["etcd0", "etcd1", "etcd2"];
    let four = ["etcd0", "etcd1", "etcd2", NEW_ETCD];

    // Grow: a dry-run first changes nothing.
    let nodes = format!("nodes={NEW_WORKER},{NEW_ETCD}");
    dry_run("playbooks/add-node.rhai", &grown, &["-e", &nodes]).success();
    lab.ssh(NEW_WORKER, "test ! -e /etc/kubernetes/kubelet.conf");
    lab.ssh(NEW_ETCD, "test ! -e /etc/etcd.env");
    assert_eq!(etcdctl(&lab, &three, "member list").lines().count(), 3);
    let added = play("playbooks/add-node.rhai", &grown, &["-e", &nodes]).success();
    let touched = changed_hosts(&added);
    let allowed = [NEW_WORKER, NEW_ETCD, "master0", "etcd0"];
    assert!(touched.iter().all(|h| allowed.contains(&h.as_str())), "changed {touched:?}");
    assert!(touched.contains(NEW_WORKER) && touched.contains(NEW_ETCD), "changed {touched:?}");
    lab.ssh(NEW_WORKER, "test -s /etc/kubernetes/kubelet.conf");
    let list = etcdctl(&lab, &four, "member list");
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(list.lines().all(|l| l.contains(", started, ")), "{list}");
    assert!(list.contains(&format!(", {NEW_ETCD}, https://{}:2380", lab.address(NEW_ETCD))), "{list}");
    let health = etcdctl(&lab, &four, "endpoint health");
    assert_eq!(health.matches("is healthy").count(), 4, "{health}");
    // It joined the running cluster, listing every member (itself too).
    let unit = lab.ssh(NEW_ETCD, "cat /etc/systemd/system/etcd.service");
    assert!(unit.contains("--initial-cluster-state=existing"), "{unit}");
    for member in four {
        assert!(unit.contains(&format!("{member}=https://{}:2380", lab.address(member))), "{member}: {unit}");
    }
    nothing_changed(&play("playbooks/add-node.rhai", &grown, &["-e", &nodes]).success());

    // Shrink: a dry-run first changes nothing.
    dry_run("playbooks/remove-node.rhai", &grown, &["-e", &nodes]).success();
    lab.ssh(NEW_WORKER, "test -s /etc/kubernetes/kubelet.conf");
    assert_eq!(etcdctl(&lab, &four, "member list").lines().count(), 4);
    let removed = play("playbooks/remove-node.rhai", &grown, &["-e", &nodes]).success();
    let touched = changed_hosts(&removed);
    assert!(touched.iter().all(|h| allowed.contains(&h.as_str())), "changed {touched:?}");
    let list = etcdctl(&lab, &three, "member list");
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(!list.contains(NEW_ETCD), "{list}");
    let health = etcdctl(&lab, &three, "endpoint health");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    lab.ssh(NEW_WORKER, "test ! -e /etc/kubernetes/kubelet.conf");
    assert_eq!(lab.ssh_status(NEW_WORKER, "systemctl is-active kubelet").1.trim(), "inactive");
    assert_eq!(lab.ssh_status(NEW_ETCD, "systemctl is-active etcd").1.trim(), "inactive");
    assert_eq!(lab.ssh_status(NEW_ETCD, "systemctl is-enabled etcd").1.trim(), "disabled");
    lab.ssh(NEW_ETCD, "test ! -e /var/lib/etcd");
    nothing_changed(&play("playbooks/remove-node.rhai", &grown, &["-e", &nodes]).success());
}
