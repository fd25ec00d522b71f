//! playbooks/add-node.rhai and remove-node.rhai (grow and shrink the cluster ha.rhai built):
//! their graphs and refusals without a lab, and on the bare lab with three extra hosts
//! (`cargo xtask lab up --topology ha+3 --bare`): the cluster ha.rhai built gets a fourth worker
//! (h00), a fourth etcd member (h01) and a fourth master (h02), then loses them, each step
//! changing nothing on a second run; and with Option 2 (etcd on the masters), a fourth master
//! that is also the fourth etcd member.
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
        master3: {ansible_host: 10.0.0.24}
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
    for untouched in
        ["etcd1", "etcd2", "master1", "master2", "master3", "worker0", "worker1", "worker2", "spare"]
    {
        assert!(!dot.contains(&format!("label=\"{untouched}\";")), "{untouched} has a task: {dot}");
    }
}

/// The tasks of `host` in a DOT graph, by node id: its cluster's nodes (`subgraph
/// "cluster_<host>"` up to the closing brace), each id with its label's first line.
fn tasks_of(dot: &str, host: &str) -> Vec<(String, String)> {
    let start = dot.find(&format!("label=\"{host}\";")).unwrap_or_else(|| panic!("no {host}: {dot}"));
    let cluster = &dot[start..dot[start..].find("\n  }").map_or(dot.len(), |e| start + e)];
    cluster
        .lines()
        .filter_map(|l| {
            let (id, rest) = l.trim().split_once(" [")?;
            let label = rest.split("label=\"").nth(1)?.split(['\\', '"']).next()?;
            Some((id.to_owned(), label.to_owned()))
        })
        .collect()
}

/// The ids of the nodes with an edge into `to` (`a -> to`).
fn into(dot: &str, to: &str) -> Vec<String> {
    dot.lines()
        .filter_map(|l| {
            let (from, rest) = l.trim().split_once(" -> ")?;
            (rest.split([' ', ';']).next()? == to).then(|| from.to_owned())
        })
        .collect()
}

fn id_of(tasks: &[(String, String)], label: &str) -> String {
    tasks.iter().find(|t| t.1 == label).unwrap_or_else(|| panic!("no {label:?} in {tasks:?}")).0.clone()
}

/// Adding a master (Option 1): prepared like every node, the etcd CA and client certificate
/// relayed from etcd0, a keepalived BACKUP peer, master0's PKI relayed, then `kubeadm init`
/// after all of them; the masters already there get no task (VRRP finds the new peer).
#[test]
fn adding_a_master_relays_the_pki_and_joins_the_load_balancer_before_kubeadm_init() {
    // Every edge: the playbook makes `kubeadm init` wait for each of them directly, and the
    // default drawing leaves out those that the master's own order already implies.
    let dot = graph("playbooks/add-node.rhai", "master3").arg("--all-edges").run().success().stdout;
    let tasks = tasks_of(&dot, "master3");
    let init = id_of(&tasks, "kubeadm init");
    let before = into(&dot, &init);
    for label in
        ["kubelet enabled", "etcd certs from etcd0", "keepalived running", "Kubernetes PKI from master0"]
    {
        assert!(before.contains(&id_of(&tasks, label)), "{label} is not before kubeadm init: {dot}");
    }
    for untouched in
        ["etcd1", "etcd2", "master1", "master2", "worker0", "worker1", "worker2", "worker3", "spare"]
    {
        assert!(!dot.contains(&format!("label=\"{untouched}\";")), "{untouched} has a task: {dot}");
    }
    // master0 only reads: the VRRP password (made only where it is missing) is its one task
    // besides the relay's source.
    let master0: Vec<String> = tasks_of(&dot, "master0").into_iter().map(|t| t.1).collect();
    assert_eq!(master0, ["make VRRP password", "read VRRP password"], "{dot}");
}

/// Option 2 (no `etcd` group): a new master is a new etcd member too, added with `member add`
/// on the first master, and its `kubeadm init` waits for every member's health gate.
#[test]
fn adding_an_option_2_master_adds_its_etcd_member_first() {
    let dot = option_2_graph("playbooks/add-node.rhai", "master3");
    let tasks = tasks_of(&dot, "master3");
    let before = into(&dot, &id_of(&tasks, "kubeadm init"));
    let gates = tasks_of(&dot, "master0");
    for member in ["master0", "master1", "master2", "master3"] {
        let gate = id_of(&gates, &format!("etcd on {member} healthy after adding master3"));
        assert!(before.contains(&gate), "{member}'s gate is not before kubeadm init: {dot}");
    }
    assert!(dot.contains("etcd member add master3"), "{dot}");
    assert!(!dot.contains("etcd certs from"), "Option 2 has no client relay: {dot}");
}

/// Removing a master (Option 2): drained, out of the load balancer, its etcd member removed
/// and retired, and only then `kubeadm reset` (which deletes the member's certificates).
#[test]
fn removing_an_option_2_master_removes_its_member_before_kubeadm_reset() {
    let dot = option_2_graph("playbooks/remove-node.rhai", "master3");
    let tasks = tasks_of(&dot, "master3");
    let master0 = tasks_of(&dot, "master0");
    let remove = id_of(&master0, "etcd member remove master3");
    assert!(into(&dot, &remove).contains(&id_of(&tasks, "keepalived config removed")), "{dot}");
    assert!(
        into(&dot, &id_of(&tasks, "keepalived stopped")).contains(&id_of(&master0, "drain master3")),
        "{dot}"
    );
    let reset = into(&dot, &id_of(&tasks, "kubeadm reset"));
    assert!(reset.contains(&id_of(&tasks, "etcd data removed")), "{dot}");
    assert!(
        into(&dot, &id_of(&master0, "delete node master3")).contains(&id_of(&tasks, "kubeadm reset")),
        "{dot}"
    );
    for untouched in ["master1", "master2", "worker0", "worker1", "worker2", "worker3", "spare"] {
        assert!(!dot.contains(&format!("label=\"{untouched}\";")), "{untouched} has a task: {dot}");
    }
}

/// The DOT of `playbook` for `nodes` on the inventory without its `etcd` group (Option 2).
fn option_2_graph(playbook: &str, nodes: &str) -> String {
    let t = Test::new();
    let inventory = t.file("option2.yml", &option_2(INVENTORY));
    t.args(["graph", playbook, "-i"])
        .arg(inventory)
        .args(["-e", &format!("nodes={nodes}")])
        .run()
        .success()
        .stdout
}

/// `inventory` without its `etcd` group (Option 2).
fn option_2(inventory: &str) -> String {
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(inventory).unwrap();
    yaml["all"]["children"].as_mapping_mut().unwrap().remove("etcd").unwrap();
    serde_yaml_ng::to_string(&yaml).unwrap()
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
fn unknown_nodes_nodes_in_no_group_and_the_first_master_are_refused() {
    for (playbook, verb) in
        [("playbooks/add-node.rhai", "add-node"), ("playbooks/remove-node.rhai", "remove-node")]
    {
        graph(playbook, "worker3,wroker4")
            .run()
            .failure()
            .stderr_has(&format!("{verb}: \"wroker4\" is not in the inventory"));
        graph(playbook, "spare").run().failure().stderr_has("\"spare\" is in none of the groups");
        graph(playbook, "master0")
            .run()
            .failure()
            .stderr_has("\"master0\" is the first master, which holds the cluster's PKI");
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
/// The fleet hosts of `ha+3` that become a worker, an etcd member and a master.
const NEW_WORKER: &str = "h00";
const NEW_ETCD: &str = "h01";
const NEW_MASTER: &str = "h02";

/// Says which lab these tests need.
const NEEDS: &str = "these tests need the bare ha+3 lab: `cargo xtask lab up --topology ha+3 --bare`";

/// The bare `ha+3` lab: the `ha` hosts, and the fleet's h00, h01 and h02 (from fleet.yml beside
/// the inventory) added to the lab's hosts for [`Lab::ssh`]. Also returns the lab's inventory
/// (`base`, or the lab's own) with each fleet host of `roles` in the group named with it,
/// written as `dir/name`.
fn grown_lab(dir: &Path, base: Option<&Path>, roles: &[(&str, &str)], name: &str) -> (Lab, PathBuf) {
    let mut lab = Lab::bare();
    assert!(HA.iter().all(|h| lab.hosts.iter().any(|(name, ..)| name == h)), "{NEEDS}");
    let fleet_path = lab.inventory.with_file_name("fleet.yml");
    let fleet_text = std::fs::read_to_string(&fleet_path)
        .unwrap_or_else(|e| panic!("{}: {e}: {NEEDS}", fleet_path.display()));
    let fleet: serde_json::Value = serde_yaml_ng::from_str(&fleet_text).unwrap();
    let base = base.unwrap_or(&lab.inventory);
    // YAML's own value keeps the hosts' order (the first master stays first).
    let mut inventory: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(base).unwrap()).unwrap();
    for &(host, group) in roles {
        let entry: serde_yaml_ng::Value =
            serde_yaml_ng::to_value(&fleet["all"]["children"]["fleet"]["hosts"][host]).unwrap();
        let address = entry["ansible_host"]
            .as_str()
            .unwrap_or_else(|| panic!("{host} in {fleet_text}: {NEEDS}"))
            .to_owned();
        inventory["all"]["children"][group]["hosts"][host] = entry;
        lab.hosts.push((host.to_owned(), address, group.to_owned()));
    }
    let path = dir.join(name);
    std::fs::write(&path, serde_yaml_ng::to_string(&inventory).unwrap()).unwrap();
    (lab, path)
}

/// The nodes of the cluster, as `kubectl get nodes` on master0 lists them: name and whether it
/// is a control plane.
fn cluster_nodes(lab: &Lab) -> Vec<(String, bool)> {
    let text = lab.ssh("master0", "kubectl --kubeconfig=/etc/kubernetes/admin.conf get nodes -o json");
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<(String, bool)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let labels = &n["metadata"]["labels"];
            (
                n["metadata"]["name"].as_str().unwrap().to_owned(),
                labels.get("node-role.kubernetes.io/control-plane").is_some(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A master made by add-node.rhai: its own API server (its address advertised, every etcd
/// member of `members` its etcd servers), master0's CA, a keepalived BACKUP peer with priority
/// `priority`, and a control plane node of the cluster.
fn assert_master(lab: &Lab, master: &str, members: &[&str], priority: u32) {
    let manifest = lab.ssh(master, "cat /etc/kubernetes/manifests/kube-apiserver.yaml");
    assert!(manifest.contains(&format!("--advertise-address={}", lab.address(master))), "{manifest}");
    let servers: Vec<String> = members.iter().map(|m| format!("https://{}:2379", lab.address(m))).collect();
    assert!(manifest.contains(&format!("--etcd-servers={}", servers.join(","))), "{manifest}");
    let ca = |h: &str| lab.ssh(h, "sha256sum /etc/kubernetes/pki/ca.crt | cut -d' ' -f1");
    assert_eq!(ca(master), ca("master0"), "{master} has not master0's CA");
    assert_eq!(lab.ssh(master, "systemctl is-active keepalived").trim(), "active");
    let conf = lab.ssh(master, "cat /etc/keepalived/keepalived.conf");
    assert!(conf.contains("state BACKUP") && conf.contains(&format!("priority {priority}")), "{conf}");
    assert!(cluster_nodes(lab).contains(&(master.to_owned(), true)), "{:?}", cluster_nodes(lab));
}

/// A master removed by remove-node.rhai: no control plane left on it, keepalived gone, and no
/// longer a node of the cluster.
fn assert_master_gone(lab: &Lab, master: &str) {
    lab.ssh(
        master,
        "test ! -e /etc/kubernetes/manifests/kube-apiserver.yaml && test ! -e /etc/kubernetes/pki/ca.crt",
    );
    lab.ssh(master, "test ! -e /etc/keepalived && ! command -v keepalived");
    assert_eq!(lab.ssh_status(master, "systemctl is-active kubelet").1.trim(), "inactive");
    assert!(cluster_nodes(lab).iter().all(|n| n.0 != master), "{:?}", cluster_nodes(lab));
}

/// The two lab tests of this file boot the same masters: one at a time.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
/// changes nothing) adds h00 as a worker (joined: its kubelet.conf), h01 as an etcd member (4
/// started, healthy members) and h02 as a master (its own API server over the 4 members,
/// master0's CA, a keepalived peer, a control plane node), changing only those and master0
/// (the token) and etcd0 (member add); again, nothing changes. remove-node.rhai (again after a
/// dry-run) then removes them (3 members, healthy; h00 reset, its kubelet stopped; h01's etcd
/// stopped and disabled, its data gone; h02 reset, keepalived purged, not a node); again,
/// nothing changes.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn nodes_a_worker_an_etcd_member_and_a_master_join_and_leave_the_cluster() {
    let scratch = tempfile::tempdir().unwrap();
    let roles = [(NEW_WORKER, "workers"), (NEW_ETCD, "etcd"), (NEW_MASTER, "masters")];
    let (lab, grown) = grown_lab(scratch.path(), None, &roles, "grown.yml");
    let _lab = exclusive();
    let mut all: Vec<&str> = HA.to_vec();
    all.extend([NEW_WORKER, NEW_ETCD, NEW_MASTER]);
    lab.restart(&all);

    play("playbooks/ha.rhai", &lab.inventory, &[]).success();
    let three = ["etcd0", "etcd1", "etcd2"];
    let four = ["etcd0", "etcd1", "etcd2", NEW_ETCD];

    // Grow: a dry-run first changes nothing.
    let nodes = format!("nodes={NEW_WORKER},{NEW_ETCD},{NEW_MASTER}");
    dry_run("playbooks/add-node.rhai", &grown, &["-e", &nodes]).success();
    lab.ssh(NEW_WORKER, "test ! -e /etc/kubernetes/kubelet.conf");
    lab.ssh(NEW_ETCD, "test ! -e /etc/etcd.env");
    lab.ssh(NEW_MASTER, "test ! -e /etc/kubernetes && test ! -e /etc/keepalived");
    assert_eq!(etcdctl(&lab, &three, "member list").lines().count(), 3);
    let added = play("playbooks/add-node.rhai", &grown, &["-e", &nodes]).success();
    let touched = changed_hosts(&added);
    let allowed = [NEW_WORKER, NEW_ETCD, NEW_MASTER, "master0", "etcd0"];
    assert!(touched.iter().all(|h| allowed.contains(&h.as_str())), "changed {touched:?}");
    for new in [NEW_WORKER, NEW_ETCD, NEW_MASTER] {
        assert!(touched.contains(new), "{new} did not change: changed {touched:?}");
    }
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
    // The fourth master: priority 98, after master0-2's 101, 100 and 99.
    assert_master(&lab, NEW_MASTER, &four, 98);
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
    assert_master_gone(&lab, NEW_MASTER);
    let nodes_left: Vec<String> = cluster_nodes(&lab).into_iter().map(|n| n.0).collect();
    assert!(!nodes_left.contains(&NEW_WORKER.to_owned()), "{nodes_left:?}");
    nothing_changed(&play("playbooks/remove-node.rhai", &grown, &["-e", &nodes]).success());
}

/// Option 2 (etcd on the masters): ha.rhai builds the six-host cluster; add-node.rhai makes h02
/// a fourth master and so a fourth etcd member (`member add` on master0 first, then started
/// with `initial-cluster-state=existing`; 4 healthy members), changing only h02 and master0; a
/// second run changes nothing. remove-node.rhai then removes it: its member is removed before
/// its `kubeadm reset` (3 members, healthy), and a second run changes nothing.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn nodes_an_option_2_master_joins_and_leaves_with_its_etcd_member() {
    let t = Test::new();
    let six = support::bare::OPTION_2;
    let probe = Lab::bare();
    let option_2 = support::bare::option_2_inventory(&probe, &t);
    drop(probe);
    let (lab, grown) = grown_lab(t.path(), Some(&option_2), &[(NEW_MASTER, "masters")], "option2-grown.yml");
    let _lab = exclusive();
    let mut all: Vec<&str> = six.to_vec();
    all.push(NEW_MASTER);
    lab.restart(&all);

    play("playbooks/ha.rhai", &option_2, &[]).success();
    let three = ["master0", "master1", "master2"];
    let four = ["master0", "master1", "master2", NEW_MASTER];
    let via_master0 = |members: &[&str], args: &str| lab.etcdctl("master0", members, args);

    let nodes = format!("nodes={NEW_MASTER}");
    let added = play("playbooks/add-node.rhai", &grown, &["-e", &nodes]).success();
    let touched = changed_hosts(&added);
    assert!(touched.iter().all(|h| [NEW_MASTER, "master0"].contains(&h.as_str())), "changed {touched:?}");
    let list = via_master0(&four, "member list");
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(list.lines().all(|l| l.contains(", started, ")), "{list}");
    let health = via_master0(&four, "endpoint health");
    assert_eq!(health.matches("is healthy").count(), 4, "{health}");
    let unit = lab.ssh(NEW_MASTER, "cat /etc/systemd/system/etcd.service");
    assert!(unit.contains("--initial-cluster-state=existing"), "{unit}");
    assert_master(&lab, NEW_MASTER, &four, 98);
    nothing_changed(&play("playbooks/add-node.rhai", &grown, &["-e", &nodes]).success());

    let removed = play("playbooks/remove-node.rhai", &grown, &["-e", &nodes]).success();
    let touched = changed_hosts(&removed);
    assert!(touched.iter().all(|h| [NEW_MASTER, "master0"].contains(&h.as_str())), "changed {touched:?}");
    let list = via_master0(&three, "member list");
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(!list.contains(NEW_MASTER), "{list}");
    let health = via_master0(&three, "endpoint health");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    assert_eq!(lab.ssh_status(NEW_MASTER, "systemctl is-active etcd").1.trim(), "inactive");
    lab.ssh(NEW_MASTER, "test ! -e /var/lib/etcd");
    assert_master_gone(&lab, NEW_MASTER);
    nothing_changed(&play("playbooks/remove-node.rhai", &grown, &["-e", &nodes]).success());
}
