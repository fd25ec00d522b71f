//! playbooks/upgrade.rhai ("Upgrading kubeadm clusters"): its graph without a lab, and on the
//! bare lab the cluster ha.rhai built, upgraded from v1.30 to v1.31 within its disruption budget.

use crate::support::Test;

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
    assert_eq!(dot.matches("\\nbudget 1: ").count(), 3 * 4, "drain, packages, restart, uncordon per worker");
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
