//! The stand-ins' shared cluster API, driven through the binaries: each "host" is its own
//! `KUBE_STANDIN_ROOT`, and every root's `/var/lib/kube-standin-api` is the same directory, as
//! the lab's bind mount makes it.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Lab {
    _dir: tempfile::TempDir,
    base: PathBuf,
    api: PathBuf,
}

struct Host<'a> {
    lab: &'a Lab,
    name: &'static str,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    fn fails(self) -> Run {
        assert_eq!(self.code, Some(1), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let api = base.join("api");
        fs::create_dir_all(&api).unwrap();
        Lab { _dir: dir, base, api }
    }

    fn host(&self, name: &'static str, version: &str) -> Host<'_> {
        let root = self.base.join(name);
        fs::create_dir_all(root.join("var/lib")).unwrap();
        std::os::unix::fs::symlink(&self.api, root.join("var/lib/kube-standin-api")).unwrap();
        let h = Host { lab: self, name };
        for tool in ["kubeadm", "kubectl", "kubelet"] {
            h.set_version(tool, version);
        }
        h
    }

    /// The one cluster folder.
    fn cluster(&self) -> PathBuf {
        let mut dirs: Vec<PathBuf> = fs::read_dir(&self.api).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs.pop().unwrap()
    }

    fn events(&self) -> Vec<Value> {
        fs::read_to_string(self.cluster().join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Host<'_> {
    fn root(&self) -> PathBuf {
        self.lab.base.join(self.name)
    }

    fn path(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    fn set_version(&self, tool: &str, version: &str) {
        let dir = self.path("/usr/share/kube-standins");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{tool}.version")), format!("{version}\n")).unwrap();
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let bin = match tool {
            "kubeadm" => env!("CARGO_BIN_EXE_kubeadm"),
            "kubectl" => env!("CARGO_BIN_EXE_kubectl"),
            _ => env!("CARGO_BIN_EXE_kubelet"),
        };
        let mut c = Command::new(bin);
        c.args(args).env("KUBE_STANDIN_ROOT", self.root()).env("KUBE_STANDIN_HOSTNAME", self.name);
        c
    }

    fn run(&self, tool: &str, args: &[&str]) -> Run {
        let Output { status, stdout, stderr } = self.command(tool, args).output().unwrap();
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    fn kubectl(&self, args: &[&str]) -> Run {
        let mut all = vec!["--kubeconfig", "/etc/kubernetes/admin.conf"];
        all.extend_from_slice(args);
        self.run("kubectl", &all)
    }

    fn init(&self, version: &str) -> String {
        let config = self.lab.base.join(format!("{}-init.yaml", self.name));
        fs::write(
            &config,
            format!(
                "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.77.0.21\n\
                 ---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: {version}\n"
            ),
        )
        .unwrap();
        let out = self.run("kubeadm", &["init", "--config", config.to_str().unwrap()]).ok();
        let hash = out.stdout.split_whitespace().find(|w| w.starts_with("sha256:")).unwrap().to_owned();
        let token = out.stdout.split_whitespace().skip_while(|w| *w != "--token").nth(1).unwrap().to_owned();
        format!("{token} {hash}")
    }

    fn join(&self, token_hash: &str, control_plane: bool) -> Run {
        let (token, hash) = token_hash.split_once(' ').unwrap();
        let mut args =
            vec!["join", "10.77.0.21:6443", "--token", token, "--discovery-token-ca-cert-hash", hash];
        if control_plane {
            args.push("--control-plane");
        }
        self.run("kubeadm", &args)
    }
}

fn nodes(h: &Host<'_>) -> Vec<Value> {
    let out = h.kubectl(&["get", "nodes", "-o", "json"]).ok();
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn node<'a>(nodes: &'a [Value], name: &str) -> &'a Value {
    nodes.iter().find(|n| n["metadata"]["name"] == name).unwrap()
}

fn actions(lab: &Lab, action: &str) -> Vec<String> {
    lab.events()
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| e["node"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn nodes_register_cordon_drain_and_go() {
    let lab = Lab::new();
    let master = lab.host("master0", "v1.30.4");
    let w1 = lab.host("worker1", "v1.30.4");
    let w2 = lab.host("worker2", "v1.30.4");
    let join = master.init("v1.30.4");
    w1.join(&join, false).ok();
    w2.join(&join, false).ok();

    let table = master.kubectl(&["get", "nodes"]).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("NAME      STATUS   ROLES           AGE   VERSION"), "{table}");
    assert!(lines[1].starts_with("master0   Ready    control-plane   "), "{table}");
    assert!(
        lines[2].starts_with("worker1   Ready    <none>          ") && lines[2].ends_with("v1.30.4"),
        "{table}"
    );
    let all = nodes(&master);
    assert_eq!(all.len(), 3);
    assert_eq!(node(&all, "worker2")["status"]["nodeInfo"]["kubeletVersion"], "v1.30.4");
    let state: Value =
        serde_json::from_str(&fs::read_to_string(lab.cluster().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["controlPlaneVersion"], "v1.30.4");

    // cordon and uncordon, idempotent with kubectl's words.
    assert_eq!(master.kubectl(&["cordon", "worker1"]).ok().stdout, "node/worker1 cordoned\n");
    assert_eq!(master.kubectl(&["cordon", "worker1"]).ok().stdout, "node/worker1 already cordoned\n");
    let table = master.kubectl(&["get", "nodes"]).ok().stdout;
    assert!(table.contains("worker1   Ready,SchedulingDisabled   <none>"), "{table}");
    assert_eq!(master.kubectl(&["uncordon", "worker1"]).ok().stdout, "node/worker1 uncordoned\n");
    assert_eq!(master.kubectl(&["uncordon", "worker1"]).ok().stdout, "node/worker1 already uncordoned\n");
    assert_eq!(actions(&lab, "cordon"), ["worker1"]);
    assert_eq!(actions(&lab, "uncordon"), ["worker1"]);
    let missing = master.kubectl(&["cordon", "worker9"]).fails();
    assert_eq!(missing.stderr.trim(), "Error from server (NotFound): nodes \"worker9\" not found");

    // A drain needs --ignore-daemonsets (every node runs kube-proxy), and cordons first.
    let no_ds = master.kubectl(&["drain", "worker2"]).fails();
    assert!(no_ds.stdout.contains("node/worker2 cordoned"), "{}", no_ds.stdout);
    assert!(
        no_ds.stderr.contains("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/kube-proxy-"),
        "{}",
        no_ds.stderr
    );
    master.kubectl(&["uncordon", "worker2"]).ok();
    let drained = master
        .kubectl(&["drain", "worker2", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=10s"])
        .ok();
    assert!(
        drained.stdout.starts_with("node/worker2 cordoned\nevicting pod default/standin-web-"),
        "{}",
        drained.stdout
    );
    assert!(drained.stdout.ends_with("evicted\nnode/worker2 drained\n"), "{}", drained.stdout);

    // The budget switch: the eviction is refused until the timeout, then the drain fails.
    let switch = lab.cluster().join("refuse-eviction");
    fs::create_dir_all(&switch).unwrap();
    fs::write(switch.join("worker1"), "").unwrap();
    let started = Instant::now();
    let refused = master.kubectl(&["drain", "worker1", "--ignore-daemonsets", "--timeout=1s"]).fails();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(4), "{took:?}");
    assert!(
        refused.stderr.contains(
            "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
        ),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("-n \"default\": global timeout reached: 1s"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("There are pending nodes to be drained:\n worker1"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        node(&nodes(&master), "worker1")["spec"]["unschedulable"],
        true,
        "the failed drain left it cordoned"
    );
    let ends: Vec<Value> = lab.events().into_iter().filter(|e| e["action"] == "drain-end").collect();
    assert_eq!(ends.last().unwrap()["node"], "worker1");
    assert!(ends.last().unwrap()["detail"].as_str().unwrap().starts_with("failed: "));
    master.kubectl(&["uncordon", "worker1"]).ok();
    fs::remove_file(switch.join("worker1")).unwrap();
    master.kubectl(&["drain", "worker1", "--ignore-daemonsets", "--timeout=1s"]).ok();

    // Every event line has the documented fields.
    for e in lab.events() {
        assert!(e["ms"].as_u64().unwrap() > 1_700_000_000_000, "{e}");
        assert!(e["host"].is_string() && e["action"].is_string() && e["node"].is_string(), "{e}");
        assert_eq!(e["versions"]["controlPlane"], "v1.30.4", "{e}");
    }
    assert_eq!(actions(&lab, "join"), ["worker1", "worker2"]);
    assert_eq!(
        master.kubectl(&["wait", "--for=condition=Ready", "nodes", "--all"]).ok().stdout,
        "node/master0 condition met\nnode/worker1 condition met\nnode/worker2 condition met\n"
    );
    let versions =
        master.kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].status.nodeInfo.kubeletVersion}"]).ok();
    assert_eq!(versions.stdout, "v1.30.4 v1.30.4 v1.30.4");

    // delete node, then reset: the cluster goes with its last control plane.
    assert_eq!(master.kubectl(&["delete", "node", "worker2"]).ok().stdout, "node \"worker2\" deleted\n");
    master.kubectl(&["delete", "node", "worker2"]).fails();
    assert_eq!(nodes(&master).len(), 2);
    w1.run("kubeadm", &["reset", "-f"]).ok();
    let after = nodes(&master);
    assert_eq!(after.len(), 2, "reset leaves the Node object, as kubeadm's does");
    assert_eq!(node(&after, "worker1")["status"]["conditions"][0]["status"], "Unknown");
    master.run("kubeadm", &["reset", "-f"]).ok();
    assert_eq!(
        fs::read_dir(&lab.api).unwrap().count(),
        0,
        "the last control plane's reset removed the cluster"
    );
}

#[test]
fn clusters_with_different_cas_stay_apart_and_unknown_ones_register_nowhere() {
    let lab = Lab::new();
    let a = lab.host("master0", "v1.30.4");
    let b = lab.host("master1", "v1.30.4");
    a.init("v1.30.4");
    b.init("v1.30.4");
    assert_eq!(fs::read_dir(&lab.api).unwrap().count(), 2);
    assert_eq!(nodes(&a).len(), 1);
    assert_eq!(store_name(&nodes(&b)[0]), "master1");
    // kubeadm's KubeletVersion preflight, on init and on join.
    let newer = lab.host("worker1", "v1.30.4");
    newer.set_version("kubelet", "v1.31.1");
    let ca = fs::read_to_string(b.path("/etc/kubernetes/pki/ca.crt")).unwrap();
    let join = format!("abcdef.0123456789abcdef {}", kube_standins::cluster::spki_hash_of_pem(&ca).unwrap());
    let refused = newer.join(&join, false).fails();
    assert!(
        refused.stderr.contains(
            "[ERROR KubeletVersion]: the kubelet version is higher than the control plane version."
        ),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("Kubelet version: \"1.31.1\" Control plane version: \"1.30.4\""),
        "{}",
        refused.stderr
    );
    assert!(!newer.path("/etc/kubernetes/kubelet.conf").exists(), "nothing written");
    let c = lab.host("master2", "v1.30.4");
    c.set_version("kubelet", "v1.31.1");
    let config = lab.base.join("master2-init.yaml");
    fs::write(&config, "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.77.0.23\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.30.4\n").unwrap();
    let init = c.run("kubeadm", &["init", "--config", config.to_str().unwrap()]).fails();
    assert!(init.stderr.contains("[ERROR KubeletVersion]"), "{}", init.stderr);

    let w = lab.host("worker0", "v1.30.4");
    let fake = format!("abcdef.0123456789abcdef sha256:{}", "ab".repeat(32));
    let out = w.join(&fake, false).ok();
    assert!(out.stderr.contains("is registered nowhere"), "{}", out.stderr);
}

fn store_name(n: &Value) -> &str {
    n["metadata"]["name"].as_str().unwrap()
}

/// Waits (bounded) until `lab`'s events hold `action` for `node`.
fn wait_for_event(lab: &Lab, action: &str, node: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if actions(lab, action).iter().any(|n| n == node) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn upgrades_follow_kubeadms_skew_policies() {
    let lab = Lab::new();
    let master = lab.host("master0", "v1.30.4");
    let worker = lab.host("worker1", "v1.30.4");
    let join = master.init("v1.30.4");
    worker.join(&join, false).ok();

    // A kubelet newer than the control plane does not register.
    worker.set_version("kubelet", "v1.31.1");
    let refused = worker.run("kubelet", &["--kubeconfig=/etc/kubernetes/kubelet.conf"]).fails();
    assert!(refused.stderr.contains("newer than the control plane (v1.30.4)"), "{}", refused.stderr);
    assert_eq!(node(&nodes(&master), "worker1")["status"]["nodeInfo"]["kubeletVersion"], "v1.30.4");
    assert_eq!(actions(&lab, "kubelet-refused"), ["worker1"]);

    // Skipping a minor, or a kubeadm older than the target, is refused before anything changes.
    let skip = master.run("kubeadm", &["upgrade", "plan", "v1.32.0"]).fails();
    assert!(
        skip.stderr.contains("Specified version to upgrade to \"v1.32.0\" is too high; kubeadm can upgrade only 1 minor version at a time"),
        "{}",
        skip.stderr
    );
    let old = master.run("kubeadm", &["upgrade", "apply", "v1.31.1", "-y"]).fails();
    assert!(
        old.stderr.contains("is at least one minor release higher than the kubeadm minor release (31 > 30)"),
        "{}",
        old.stderr
    );
    master.set_version("kubeadm", "v1.30.3");
    let patch = master.run("kubeadm", &["upgrade", "apply", "v1.30.4", "-y"]).fails();
    assert!(
        patch.stderr.contains("Specified version to upgrade to \"v1.30.4\" is higher than the kubeadm version \"v1.30.3\". Upgrade kubeadm first"),
        "{}",
        patch.stderr
    );
    master.run("kubeadm", &["upgrade", "apply", "v1.31.1"]).fails(); // no -y: interactive, unsupported
    assert!(actions(&lab, "upgrade-apply").is_empty());

    // With kubeadm v1.31.1: plan, then apply.
    master.set_version("kubeadm", "v1.31.1");
    let plan = master.run("kubeadm", &["upgrade", "plan"]).ok();
    assert!(plan.stdout.contains("[upgrade/versions] Cluster version: v1.30.4"), "{}", plan.stdout);
    assert!(plan.stdout.contains("kubeadm upgrade apply v1.31.1"), "{}", plan.stdout);
    // As the engine's kubeadm module runs it: the version after `--`.
    let apply = master.run("kubeadm", &["upgrade", "apply", "--yes", "--", "v1.31.1"]).ok();
    assert!(
        apply.stdout.contains("SUCCESS! Your cluster was upgraded to \"v1.31.1\". Enjoy!"),
        "{}",
        apply.stdout
    );
    let manifest = fs::read_to_string(master.path("/etc/kubernetes/manifests/kube-apiserver.yaml")).unwrap();
    assert!(manifest.contains("registry.k8s.io/kube-apiserver:v1.31.1"), "{manifest}");
    let cp = node(&nodes(&master), "master0").clone();
    assert_eq!(cp["metadata"]["annotations"]["kube-standins.lab/control-plane-version"], "v1.31.1");
    let applied = lab.events().into_iter().find(|e| e["action"] == "upgrade-apply").unwrap();
    assert_eq!(applied["versions"]["from"], "v1.30.4");
    assert_eq!(applied["versions"]["controlPlane"], "v1.31.1");
    // Applying the same version again is allowed, as kubeadm allows it.
    master.run("kubeadm", &["upgrade", "apply", "v1.31.1", "-y"]).ok();

    // upgrade node wants a kubeadm as new as the cluster.
    let stale = worker.run("kubeadm", &["upgrade", "node"]).fails();
    assert!(stale.stderr.contains("is higher than the kubeadm version \"v1.30.4\""), "{}", stale.stderr);
    worker.set_version("kubeadm", "v1.31.1");
    let moved = worker.run("kubeadm", &["upgrade", "node"]).ok();
    assert!(
        moved.stdout.contains("The configuration for this node was successfully updated!"),
        "{}",
        moved.stdout
    );
    assert_eq!(
        node(&nodes(&master), "worker1")["metadata"]["annotations"]["kube-standins.lab/upgraded-to"],
        "v1.31.1"
    );

    // Now the v1.31.1 kubelet registers its version (it runs until stopped).
    let mut kubelet =
        worker.command("kubelet", &["--kubeconfig=/etc/kubernetes/kubelet.conf"]).spawn().unwrap();
    let started = wait_for_event(&lab, "kubelet-start", "worker1");
    kubelet.kill().unwrap();
    kubelet.wait().unwrap();
    assert!(started, "{:?}", lab.events());
    assert_eq!(node(&nodes(&master), "worker1")["status"]["nodeInfo"]["kubeletVersion"], "v1.31.1");
    assert_eq!(
        master
            .kubectl(&["get", "node", "worker1"])
            .ok()
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .last(),
        Some("v1.31.1")
    );
}

fn not_after(path: &Path) -> String {
    let out = Command::new("openssl").args(["x509", "-noout", "-enddate", "-in"]).arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn certificates_expire_in_a_year_and_renew_from_the_ca() {
    let lab = Lab::new();
    let master = lab.host("master0", "v1.30.4");
    master.init("v1.30.4");
    let table = master.run("kubeadm", &["certs", "check-expiration"]).ok().stdout;
    for name in ["admin.conf", "apiserver", "controller-manager.conf", "scheduler.conf"] {
        let row =
            table.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{table}"));
        assert!(
            (row.contains(" 364d ") || row.contains(" 365d "))
                && row.contains(" ca ")
                && row.ends_with(" no"),
            "{row}"
        );
    }
    let ca_row = table.lines().find(|l| l.starts_with("ca ")).unwrap();
    assert!(ca_row.contains(" 9y ") || ca_row.contains(" 10y "), "{ca_row}");
    assert!(table.contains("CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED"), "{table}");

    let crt = master.path("/etc/kubernetes/pki/apiserver.crt");
    let before = fs::read_to_string(&crt).unwrap();
    let admin_before = fs::read_to_string(master.path("/etc/kubernetes/admin.conf")).unwrap();
    let renewed = master.run("kubeadm", &["certs", "renew", "all"]).ok().stdout;
    assert!(renewed.contains("certificate for serving the Kubernetes API renewed"), "{renewed}");
    assert!(renewed.contains("Done renewing certificates."), "{renewed}");
    assert_ne!(fs::read_to_string(&crt).unwrap(), before);
    assert_ne!(fs::read_to_string(master.path("/etc/kubernetes/admin.conf")).unwrap(), admin_before);
    // Still signed by the same CA, and kubectl still finds its cluster with the renewed admin.conf.
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(master.path("/etc/kubernetes/pki/ca.crt"))
        .arg(&crt)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    assert!(!not_after(&crt).is_empty());
    assert_eq!(nodes(&master).len(), 1);
    master.run("kubeadm", &["certs", "renew", "apiserver"]).ok();
    master.run("kubeadm", &["certs", "renew", "etcd-server"]).fails();
    master.run("kubeadm", &["certs", "renew", "bogus"]).fails();
}
