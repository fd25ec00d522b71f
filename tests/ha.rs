//! End-to-end tests of playbooks/ha.rhai, the kubeadm HA guide, on the bare lab: 9 hosts like
//! fresh Debian cloud images (login `debian` with sudo, nothing installed) and the package
//! mirror (`cargo xtask lab up --topology ha --bare --releases 12,13`). The playbook installs everything itself:
//! containerd, kubeadm, kubelet and kubectl from the mirror's pkgs.k8s.io-shaped repository,
//! etcd (package or release tarball), keepalived. Each scenario boots the hosts it uses afresh
//! (`cargo xtask lab restart`). `cargo xtask test` runs these on a bare lab of their own, and
//! passes its inventory in `ENGINE_LAB_BARE_INVENTORY`. Commands on the hosts run as root
//! through `debian`'s sudo ([`Lab::ssh`]).
//!
//! That lab is a mixed fleet (`lab up --topology ha --bare --releases 12,13`): the hosts take
//! Debian 12 and 13 in turn (etcd0 12, etcd1 13, etcd2 12, master0 13, ...), so every scenario
//! here runs on both releases; [`ha_the_bare_fleet_mixes_debian_12_and_13`] checks that it is.
#![allow(clippy::unwrap_used)]

use crate::support;

use support::Test;
use support::bare::{ALL, bare_lab, fresh};
use support::lab::Lab;

use support::lab::ETCD_PKI as PKI;
const VIP: &str = "10.77.0.10";

/// These tests share the lab's hosts: one at a time.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Debian releases of `hosts` (see [`Lab::debian`]), each once.
fn releases_of(lab: &Lab, hosts: &[&str]) -> std::collections::BTreeSet<u64> {
    hosts.iter().map(|h| lab.debian(h)).collect()
}

/// The bare `ha` lab is a mixed fleet: each host runs the Debian release its inventory entry
/// names (its /etc/os-release and /etc/debian_version say so, and apt's source names that
/// release's suite), and every group (etcd, masters, workers) has hosts of both Debian 12 and
/// Debian 13, so the other tests here prove the playbook on both.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ha_the_bare_fleet_mixes_debian_12_and_13() {
    let lab = bare_lab();
    let _lab = exclusive();
    for host in ALL {
        let (want, suite) = (lab.debian(host), lab.suite(host));
        let seen = lab.ssh(
            host,
            ". /etc/os-release && echo \"$VERSION_ID $VERSION_CODENAME\"; cut -d. -f1 /etc/debian_version; \
             sed -n 's/^Suites: //p' /etc/apt/sources.list.d/debian.sources",
        );
        assert_eq!(seen, format!("{want} {suite}\n{want}\n{suite}\n"), "{host}");
    }
    for group in [&ALL[..3], &ALL[3..6], &ALL[6..]] {
        assert_eq!(
            releases_of(&lab, group),
            [12, 13].into(),
            "{group:?} must mix Debian 12 and 13: boot the lab with \
             `cargo xtask lab up --topology ha --bare --releases 12,13`"
        );
    }
}

/// The etcd release the mirror serves (`etcd_version` in the bare lab's inventory).
fn etcd_version(lab: &Lab) -> String {
    let text = std::fs::read_to_string(&lab.inventory).unwrap();
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    yaml["all"]["vars"]["etcd_version"].as_str().expect("etcd_version in the bare lab's inventory").to_owned()
}

fn etcdctl(lab: &Lab, args: &str) -> String {
    etcdctl_on(lab, &["etcd0", "etcd1", "etcd2"], args)
}

/// etcdctl over TLS with the client certificate, run on the first of `members`.
fn etcdctl_on(lab: &Lab, members: &[&str], args: &str) -> String {
    lab.etcdctl(members[0], members, args)
}

fn run(lab: &Lab, extra: &[&str]) -> support::Output {
    Test::new().args(["run", "playbooks/ha.rhai", "-i"]).arg(&lab.inventory).arg("--json").args(extra).run()
}

fn check(lab: &Lab, extra: &[&str]) -> support::Output {
    Test::new().args(["check", "playbooks/ha.rhai", "-i"]).arg(&lab.inventory).arg("--json").args(extra).run()
}

/// What a node has after "Installing prerequisites": kubeadm, kubelet and kubectl at the
/// playbook's version and held, their source signed-by the keyring apt_key wrote, containerd
/// installed and running with the systemd cgroup driver, the kernel modules and sysctls
/// persisted, no active swap line in fstab, the kubelet enabled.
fn assert_node_prepared(lab: &Lab, host: &str) {
    assert_eq!(lab.ssh(host, "apt-mark showhold"), "kubeadm\nkubectl\nkubelet\n", "{host}");
    let versions = lab.ssh(
        host,
        "for p in kubeadm kubelet kubectl; do dpkg-query -W -f='${Package}=${Version}\\n' $p; done",
    );
    assert_eq!(versions, "kubeadm=1.30.4-1.1\nkubelet=1.30.4-1.1\nkubectl=1.30.4-1.1\n", "{host}");
    let source = lab.ssh(host, "grep -v '^#' /etc/apt/sources.list.d/kubernetes.list");
    assert!(
        source.starts_with("deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] http://10.77.0.2/k8s/core:/stable:/v1.30/deb/ /"),
        "{host}: {source}"
    );
    lab.ssh(host, "test -s /etc/apt/keyrings/kubernetes-apt-keyring.gpg");
    let containerd = lab.ssh(host, "dpkg -s containerd | grep '^Status:'");
    assert_eq!(containerd, "Status: install ok installed\n", "{host}");
    assert_eq!(lab.ssh(host, "systemctl is-active containerd").trim(), "active", "{host}");
    lab.ssh(host, "grep -qx '        SystemdCgroup = true' /etc/containerd/config.toml");
    assert_eq!(
        lab.ssh(host, "cat /etc/modules-load.d/overlay.conf /etc/modules-load.d/br_netfilter.conf"),
        "overlay\nbr_netfilter\n"
    );
    assert_eq!(
        lab.ssh(host, "cat /etc/sysctl.d/k8s.conf"),
        "net.bridge.bridge-nf-call-ip6tables = 1\nnet.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.ip_forward = 1\n"
    );
    assert_eq!(lab.ssh(host, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1", "{host}");
    let (code, active_swap, _) =
        lab.ssh_status(host, "grep -Ev '^[[:space:]]*(#|$)' /etc/fstab | awk '$3 == \"swap\"'");
    assert_eq!((code, active_swap.as_str()), (Some(0), ""), "{host}: an active swap line in fstab");
    assert_eq!(lab.ssh(host, "systemctl is-enabled kubelet").trim(), "enabled", "{host}");
}

/// The guide's etcd sections on bare etcd hosts (Option 1, systemd, controller-signed
/// certificates), by the guide's own install route: the release tarball, checked against its
/// SHA256SUMS, extracted into /usr/local/bin, and the unit runs that binary. A healthy
/// three-member cluster over TLS; a dry-run first predicts the changes and makes none; a
/// second run changes nothing.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ha_etcd_cluster_from_the_release_tarball_is_healthy_and_idempotent() {
    let lab = bare_lab();
    let _lab = exclusive();
    let etcd = ["etcd0", "etcd1", "etcd2"];
    fresh(&lab, &etcd);
    let tarball = ["--limit", "etcd", "-e", "etcd_install=tarball"];

    let check = check(&lab, &tarball).success();
    for host in etcd {
        lab.ssh(
            host,
            &format!("test ! -e {PKI} && test ! -e /etc/etcd.env && test ! -e /usr/local/bin/etcd"),
        );
    }

    let first = run(&lab, &tarball).success();
    // Check mode cannot predict the certificates signed by a CA that does not exist yet
    // (unknown), but everything it calls a change is one.
    let predicted = changed(&check);
    let made = changed(&first);
    assert!(predicted.iter().all(|p| made.contains(p)), "predicted {predicted:?}, made {made:?}");
    assert!(predicted.iter().any(|(_, t)| t == "etcd CA"), "{predicted:?}");
    assert!(predicted.iter().any(|(_, t)| t == "base packages"), "{predicted:?}");

    let version = etcd_version(&lab);
    for host in etcd {
        // The tarball's binaries, and no distribution etcd.
        let out = lab.ssh(
            host,
            "/usr/local/bin/etcd --version | head -1; dpkg -s etcd-server >/dev/null 2>&1 || echo no-package",
        );
        assert_eq!(out, format!("etcd Version: {}\nno-package\n", version.trim_start_matches('v')), "{host}");
        let unit = lab.ssh(host, "systemctl show -p ExecStart --value etcd");
        assert!(unit.contains("path=/usr/local/bin/etcd "), "{host}: {unit}");
    }

    let health = etcdctl(&lab, "endpoint health");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    let members = etcdctl(&lab, "member list");
    assert_eq!(members.lines().count(), 3, "{members}");
    for host in etcd {
        assert!(members.contains(&format!("{host}, https://{}:2380", lab.address(host))), "{members}");
    }
    // Controller-signed: the CA key exists only on etcd0.
    lab.ssh("etcd0", &format!("test -e {PKI}/ca-key.pem && stat -c %a {PKI}/ca-key.pem | grep -qx 600"));
    lab.ssh("etcd1", &format!("test ! -e {PKI}/ca-key.pem"));

    let second = run(&lab, &tarball).success();
    assert_eq!(second.count("changed"), 0, "{:?}", second.outcomes());

    // A checksum the tarball does not have: refused, and the binaries are left as they are.
    lab.ssh("etcd1", &format!("rm -f /usr/local/src/etcd-{version}-linux-amd64.tar.gz"));
    let wrong = format!("etcd_checksum=sha256:{}", "0".repeat(64));
    let refused = run(&lab, &["--limit", "etcd", "-e", "etcd_install=tarball", "-e", &wrong]).code(2);
    let error = support::task_error(&refused, "etcd1", "etcd release");
    assert!(error.contains(&format!("not the expected sha256:{}", "0".repeat(64))), "{error}");
    lab.ssh(
        "etcd1",
        &format!("test ! -e /usr/local/src/etcd-{version}-linux-amd64.tar.gz && test -x /usr/local/bin/etcd"),
    );
}

/// The static-pod variant writes a valid Pod manifest (the guide's YAML is malformed).
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ha_static_pod_manifest_is_a_valid_pod() {
    let lab = bare_lab();
    let _lab = exclusive();
    // The token is given: one made on etcd0 may not exist yet, and a dry-run could not show it.
    let out = Test::new()
        .args(["check", "playbooks/ha.rhai", "-i"])
        .arg(&lab.inventory)
        .args(["--json", "--diff", "--limit", "etcd1", "-e", "etcd_mode=static_pods"])
        .args(["-e", "etcd_token=static-pod-test"])
        .run();
    let task = out.task("etcd1", "etcd static pod");
    let diff = task["diff"].as_str().unwrap();
    let yaml: String = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| format!("{}\n", &l[1..]))
        .collect();
    let pod: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["namespace"], "kube-system");
    assert_eq!(pod["spec"]["hostNetwork"], true);
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["name"], "etcd");
    let command: Vec<&str> =
        container["command"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(command[0], "etcd");
    assert!(
        command.iter().all(|arg| !arg.contains(' ') && !arg.ends_with('\\')),
        "one flag per item: {command:?}"
    );
    assert!(command.contains(&"--name=etcd1"));
    // The token is etcd's own, not a secret; but it is named like one, so diffs hide it.
    assert!(command.contains(&"--initial-cluster-token=<secret>"), "{command:?}");
    let mounts: Vec<&str> =
        container["volumeMounts"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    let volumes: Vec<&str> =
        pod["spec"]["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert!(mounts.iter().all(|m| volumes.contains(m)), "every mount has a volume");
}

/// ha.rhai ships no secret: without `-e`, the first run makes keepalived's VRRP password on
/// master0 and etcd's cluster token on etcd0 (random, in 0600 files under a 0700 folder), every
/// master's keepalived.conf (0600) and every member's etcd unit use them, and a second run
/// reads the same values back and changes nothing. A password given with `-e` is used instead.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ha_secrets_are_made_once_on_the_hosts_and_stay_the_same() {
    let lab = bare_lab();
    let _lab = exclusive();
    let etcd = ["etcd0", "etcd1", "etcd2"];
    let masters = ["master0", "master1", "master2"];
    fresh(&lab, &[&etcd[..], &masters[..]].concat());
    let secret = |host: &str, name: &str| {
        let path = format!("/var/lib/engine/secrets/{name}");
        assert_eq!(lab.ssh(host, &format!("stat -c %a {path} /var/lib/engine/secrets")), "600\n700\n");
        lab.ssh(host, &format!("cat {path}"))
    };
    let auth_pass = |host: &str| {
        assert_eq!(lab.ssh(host, "stat -c %a /etc/keepalived/keepalived.conf").trim(), "600", "{host}");
        lab.ssh(host, "awk '$1 == \"auth_pass\" { print $2 }' /etc/keepalived/keepalived.conf")
            .trim()
            .to_owned()
    };
    let unit_token = |host: &str| {
        let unit = lab.ssh(host, "cat /etc/systemd/system/etcd.service");
        let at = unit.find("--initial-cluster-token=").unwrap() + "--initial-cluster-token=".len();
        unit[at..].split_whitespace().next().unwrap().to_owned()
    };

    let first = run(&lab, &["--tags", "lb"]).success();
    assert_eq!(first.task("master0", "make VRRP password")["status"], "changed");
    run(&lab, &["--limit", "etcd"]).success();
    let vrrp = secret("master0", "vrrp-password");
    let token = secret("etcd0", "etcd-cluster-token");
    assert!(vrrp.len() == 8 && vrrp != "4be37dc3", "{vrrp:?}");
    assert!(token.len() == 16 && token != "my-etcd-token", "{token:?}");
    for m in masters {
        assert_eq!(auth_pass(m), vrrp, "{m}");
    }
    for e in etcd {
        assert_eq!(unit_token(e), token, "{e}");
    }
    assert_eq!(etcdctl(&lab, "endpoint health").matches("is healthy").count(), 3);

    let again = run(&lab, &["--tags", "lb"]).success();
    assert_eq!(again.count("changed"), 0, "{:?}", again.outcomes());
    assert_eq!(again.task("master0", "make VRRP password")["status"], "ok");
    let again = run(&lab, &["--limit", "etcd"]).success();
    assert_eq!(again.count("changed"), 0, "{:?}", again.outcomes());
    assert_eq!((secret("master0", "vrrp-password"), secret("etcd0", "etcd-cluster-token")), (vrrp, token));

    // One given with -e is used (and the file made earlier is left alone).
    run(&lab, &["--tags", "lb", "-e", "vrrp_password=given-pw"]).success();
    assert_eq!(auth_pass("master1"), "given-pw");
}

/// Whether `host` holds the virtual IP on its lab interface.
fn holds_vip(lab: &Lab, host: &str, vip: &str) -> bool {
    lab.ssh_status(host, &format!("ip -o -4 addr show host0 | grep -qw {vip}")).0 == Some(0)
}

/// The guide's on-site load balancer: keepalived on the masters, MASTER on master0 with the
/// highest priority; stopping keepalived there moves the virtual IP to another master.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ha_keepalived_vip_fails_over() {
    let lab = bare_lab();
    let _lab = exclusive();
    fresh(&lab, &["master0", "master1", "master2"]);
    let vip = VIP;
    run(&lab, &["--tags", "lb"]).success();
    for (i, host) in ["master0", "master1", "master2"].iter().enumerate() {
        let conf = lab.ssh(host, "cat /etc/keepalived/keepalived.conf");
        let state = if i == 0 { "MASTER" } else { "BACKUP" };
        assert!(conf.contains(&format!("state {state}")), "{host}: {conf}");
        assert!(conf.contains(&format!("priority {}", 101 - i)), "{host}: {conf}");
        assert!(conf.contains(vip), "{host}: {conf}");
        assert_eq!(lab.ssh(host, "systemctl is-active keepalived").trim(), "active");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !holds_vip(&lab, "master0", vip) {
        assert!(std::time::Instant::now() < deadline, "the VIP never came up on master0");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(!holds_vip(&lab, "master1", vip) && !holds_vip(&lab, "master2", vip));

    lab.ssh("master0", "systemctl stop keepalived");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !(holds_vip(&lab, "master1", vip) || holds_vip(&lab, "master2", vip)) {
        assert!(std::time::Instant::now() < deadline, "the VIP did not move within 15 s");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(!holds_vip(&lab, "master0", vip));
    assert!(holds_vip(&lab, "master1", vip), "master1 has the next priority");

    // The playbook brings keepalived back, and the VIP returns to the highest priority.
    let again = run(&lab, &["--tags", "lb"]).success();
    assert_eq!(again.task("master0", "keepalived running")["status"], "changed");
    assert_eq!(again.count("changed"), 1, "{:?}", again.outcomes());
}

fn changed(out: &support::Output) -> Vec<(String, String)> {
    let mut c: Vec<(String, String)> =
        out.outcomes().into_iter().filter(|o| o.2 == "changed").map(|o| (o.0, o.1)).collect();
    c.sort();
    c
}

/// The whole guide on 9 bare hosts (Option 1, keepalived, etcd from Debian's packages):
/// (d) a dry-run changes nothing and predicts what the run then changes;
/// (a) the run succeeds: every master and worker prepared (see [`assert_node_prepared`]),
///     etcd healthy with 3 members, the VIP on master0 and moving when keepalived stops
///     there, one CA on all masters, workers through the VIP;
/// (b) a second run changes nothing.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ha_full_guide_on_nine_bare_hosts() {
    let lab = bare_lab();
    let _lab = exclusive();
    fresh(&lab, &ALL);

    // (d) check on bare hosts: nothing changes (`fresh` checks it again).
    let check = check(&lab, &[]).success();
    for host in ALL {
        lab.ssh(host, "test ! -e /etc/kubernetes/pki && test ! -e /etc/etcd.env && test ! -e /etc/keepalived/keepalived.conf \
             && test ! -e /etc/containerd && test ! -e /etc/sysctl.d/k8s.conf && test ! -e /etc/apt/keyrings/kubernetes-apt-keyring.gpg");
    }

    // (a) the real run, with its report.
    let scratch = tempfile::tempdir().unwrap();
    let report = scratch.path().join("run.html");
    let started = std::time::Instant::now();
    let first = run(&lab, &["--report", report.to_str().unwrap()]).success();
    eprintln!(
        "ha.rhai first run on bare hosts: {:.2} s, {} tasks",
        started.elapsed().as_secs_f64(),
        first.outcomes().len()
    );
    let made = changed(&first);
    let predicted = changed(&check);
    let unknown: Vec<(String, String)> =
        check.outcomes().into_iter().filter(|o| o.2 == "unknown").map(|o| (o.0, o.1)).collect();
    assert!(predicted.iter().all(|p| made.contains(p)), "predicted but not made: {predicted:?} vs {made:?}");
    assert!(
        made.iter().all(|m| predicted.contains(m) || unknown.contains(m)),
        "made but neither predicted nor unknown: {made:?}"
    );
    // What a bare host needs first is predicted, not merely unknown.
    for host in ["master0", "worker2"] {
        for task in ["base packages", "kubernetes sysctls", "containerd package"] {
            assert!(predicted.contains(&(host.to_owned(), task.to_owned())), "{host} {task}: {predicted:?}");
        }
    }

    let nodes = ["master0", "master1", "master2", "worker0", "worker1", "worker2"];
    for host in nodes {
        assert_node_prepared(&lab, host);
    }
    for host in ["etcd0", "etcd1", "etcd2"] {
        lab.ssh(host, "dpkg -s etcd-server | grep -qx 'Status: install ok installed'");
    }
    // On a mixed fleet, the checks above and below cover hosts of every release in it.
    let fleet = releases_of(&lab, &ALL);
    assert_eq!(releases_of(&lab, &nodes), fleet, "prepared nodes of every release");
    assert_eq!(releases_of(&lab, &["etcd0", "etcd1", "etcd2"]), fleet, "etcd members of every release");
    assert_eq!(releases_of(&lab, &["master0", "master1", "master2"]), fleet, "masters of every release");

    let health = etcdctl(&lab, "endpoint health");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    assert_eq!(etcdctl(&lab, "member list").lines().count(), 3);

    let ca = lab.ssh("master0", "sha256sum < /etc/kubernetes/pki/ca.crt");
    for m in ["master1", "master2"] {
        assert_eq!(lab.ssh(m, "sha256sum < /etc/kubernetes/pki/ca.crt"), ca, "{m} shares master0's CA");
        let sans =
            lab.ssh(m, "openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/apiserver.crt");
        assert!(sans.contains(&format!("IP Address:{VIP}")) && sans.contains(lab.address(m)), "{m}: {sans}");
    }
    for w in ["worker0", "worker1", "worker2"] {
        let server = lab.ssh(w, "grep 'server:' /etc/kubernetes/kubelet.conf");
        assert_eq!(server.trim(), format!("server: https://{VIP}:6443"), "{w}");
    }

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !holds_vip(&lab, "master0", VIP) {
        assert!(std::time::Instant::now() < deadline, "the VIP never came up on master0");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    lab.ssh("master0", "systemctl stop keepalived");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !(holds_vip(&lab, "master1", VIP) || holds_vip(&lab, "master2", VIP)) {
        assert!(std::time::Instant::now() < deadline, "the VIP did not move within 15 s");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    lab.ssh("master0", "systemctl start keepalived");

    // The run's report: every task of the journal once, with its host, outcome and times; the
    // critical path the journal's and the run's (what the recap prints); it renders in chromium.
    assert_report_is_the_journals(&first, &report);

    // (b) the second run changes nothing.
    let started = std::time::Instant::now();
    let second = run(&lab, &[]).success();
    eprintln!("ha.rhai re-run: {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(second.count("changed"), 0, "{:?}", changed(&second));
}

/// The report `html` of the run whose `--json` output is `out` shows its journal as it is
/// (see [`support::report::matches_journal`]), and the run's own critical path (its
/// `run_finished` event, which the console's recap prints) is the journal's.
fn assert_report_is_the_journals(out: &support::Output, html: &std::path::Path) {
    let events = out.events();
    let started = events.iter().find(|e| e["event"] == "run_started").expect("run_started");
    let finished = events.iter().find(|e| e["event"] == "run_finished").expect("run_finished");
    let journal_path = support::root().join(started["journal"].as_str().expect("the run's journal"));
    let journal: Vec<serde_json::Value> = std::fs::read_to_string(&journal_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done = journal.iter().find(|l| l["kind"] == "finished").expect("the journal's finished line");
    assert_eq!(done["critical_path"], finished["critical_path"], "the journal's critical path is the run's");
    assert_eq!(done["critical_path_ms"], finished["critical_path_ms"]);
    let cp_ms = finished["critical_path_ms"].as_u64().unwrap();
    let recap = format!("critical path {:.2}s", cp_ms as f64 / 1000.0);
    let text = std::fs::read_to_string(html).unwrap();
    support::report::matches_journal(&text, &journal, &recap);
    support::report::renders_in_a_browser(html);
}

/// (c) Option 2 on 6 bare hosts: no `etcd` group, so etcd runs on the three masters, here by
/// the guide's tarball route; a second run changes nothing. Both runs go over
/// `--transport exec` (a channel, an sshd session and sudo per command), so that the whole
/// guide is proven over each transport: the other HA tests use the default, `session`.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn ha_option_2_etcd_on_the_masters_from_the_tarball() {
    let lab = bare_lab();
    let _lab = exclusive();
    let six = support::bare::OPTION_2;
    fresh(&lab, &six);
    let t = Test::new();
    let inv = support::bare::option_2_inventory(&lab, &t);
    let ha = |inv: &std::path::Path| {
        Test::new()
            .args(["run", "playbooks/ha.rhai", "-i"])
            .arg(inv)
            .args(["--json", "-e", "etcd_install=tarball", "--transport", "exec"])
            .run()
            .success()
    };
    let first = ha(&inv);
    assert_eq!(first.task("master1", "etcd binaries")["status"], "changed");
    let health = etcdctl_on(&lab, &six[..3], "endpoint health");
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    for m in &six[..3] {
        let unit = lab.ssh(m, "systemctl show -p ExecStart --value etcd");
        assert!(unit.contains("path=/usr/local/bin/etcd "), "{m}: {unit}");
    }
    assert_node_prepared(&lab, "master2");
    assert_node_prepared(&lab, "worker1");
    let server = lab.ssh("worker0", "grep 'server:' /etc/kubernetes/kubelet.conf");
    assert_eq!(server.trim(), format!("server: https://{VIP}:6443"));
    let again = ha(&inv);
    assert_eq!(again.count("changed"), 0, "{:?}", changed(&again));
}
