//! The bare `ha` lab as the HA guide's tests and the day-two tests use it (tests/ha.rs,
//! tests/day_two.rs): nine hosts like fresh Debian cloud images, and the checks that a host is
//! one (nothing of what playbooks/ha.rhai installs or writes is there).

use super::lab::Lab;

/// The bare `ha` lab's hosts, in inventory order.
pub const ALL: [&str; 9] =
    ["etcd0", "etcd1", "etcd2", "master0", "master1", "master2", "worker0", "worker1", "worker2"];

/// The bare lab (`cargo xtask lab up --topology ha --bare --releases 12,13`), from
/// `ENGINE_LAB_BARE_INVENTORY`; panics unless it has the nine `ha` hosts. Takes the calling
/// test file's turn on the lab (see [`Lab`]).
#[track_caller]
pub fn bare_lab() -> Lab {
    let lab = Lab::bare();
    assert!(
        ALL.iter().all(|h| lab.hosts.iter().any(|(name, ..)| name == h)),
        "the HA tests need the bare ha lab: `cargo xtask lab up --topology ha --bare`"
    );
    lab
}

/// Boots `hosts` afresh from the bare image, and checks that they are bare ([`assert_bare`]).
pub fn fresh(lab: &Lab, hosts: &[&str]) {
    lab.restart(hosts);
    assert_bare(lab, hosts);
}

/// Checks that `hosts` are bare: none of the programs ha.rhai installs, no /etc/kubernetes, no
/// etcd environment, no Kubernetes apt source or key, no held package.
pub fn assert_bare(lab: &Lab, hosts: &[&str]) {
    for host in hosts {
        lab.ssh(
            host,
            "for p in etcd etcdctl keepalived containerd kubeadm kubelet kubectl curl; do \
             ! command -v $p >/dev/null || { echo \"$p is there\" >&2; exit 1; }; done; \
             test ! -e /etc/kubernetes && test ! -e /etc/etcd.env && test ! -e /etc/apt/keyrings/kubernetes-apt-keyring.gpg \
             && test ! -e /etc/apt/sources.list.d/kubernetes.list && test -z \"$(apt-mark showhold)\"",
        );
    }
}

/// The Option 2 hosts of the bare `ha` lab (etcd on the masters).
pub const OPTION_2: [&str; 6] = ["master0", "master1", "master2", "worker0", "worker1", "worker2"];

/// The lab's inventory without its `etcd` group (Option 2: etcd on the masters), written under
/// `t`'s folder; its variables (login, mirror) stay.
pub fn option_2_inventory(lab: &Lab, t: &super::Test) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&lab.inventory).expect("the lab's inventory");
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("the lab's inventory is YAML");
    let children = yaml["all"]["children"].as_mapping_mut().expect("the lab's inventory has groups");
    assert!(children.remove("etcd").is_some(), "the bare ha lab has an etcd group");
    t.file("option2.yml", &serde_yaml_ng::to_string(&yaml).expect("YAML"))
}
