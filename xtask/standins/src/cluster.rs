//! The shared cluster API stand-in: what a real API server would hold about a cluster's nodes,
//! seen alike from every lab host.
//!
//! The lab bind-mounts one directory of the lab machine read-write into every host at
//! [`API_DIR`] (`cargo xtask lab up` empties it, `lab down` removes it). Inside, one folder per
//! cluster, named by the hex digits of the cluster CA's SPKI hash (the `sha256:` of
//! `--discovery-token-ca-cert-hash`), so clusters that lab tests `kubeadm init` side by side stay
//! apart:
//!
//! - `state.json`: the control plane's version (`controlPlaneVersion`, the ClusterConfiguration's
//!   `kubernetesVersion`, then what `kubeadm upgrade apply` set) and the Node objects, as
//!   `kubectl get nodes -o json` prints them.
//! - `events.jsonl`: append-only, one JSON object a line (see [`Event`]).
//! - `lock`: writers hold an exclusive `flock` on it while they read, change and replace
//!   `state.json` and append to `events.jsonl` (hosts write concurrently).
//! - `refuse-eviction/<node>`: the PodDisruptionBudget-like switch. While this file exists,
//!   `kubectl drain <node>` cannot evict the node's budgeted pod (see the kubectl stand-in).
//!
//! A host finds its cluster from `/etc/kubernetes/pki/ca.crt` (control planes), or else from the
//! `caCertHash` its `kubeadm join` accepted; `kubectl` from its kubeconfig's
//! `certificate-authority-data`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{die, host_path};

/// Where hosts see the shared cluster API.
pub const API_DIR: &str = "/var/lib/kube-standin-api";

/// The label kubeadm puts on control-plane nodes.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The annotation holding a control-plane node's component version (its static pods' tag).
pub const COMPONENTS_ANNOTATION: &str = "kube-standins.lab/control-plane-version";
/// The annotation holding the version `kubeadm upgrade node` last moved the node to.
pub const UPGRADED_ANNOTATION: &str = "kube-standins.lab/upgraded-to";

/// `sha256:<hex>` of a certificate's SubjectPublicKeyInfo, from its PEM.
pub fn spki_hash_of_pem(pem: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let digest = Sha256::digest(cert.tbs_certificate.subject_pki.raw);
    Some(format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// The hash of the CA a kubeconfig trusts (`certificate-authority-data`).
pub fn hash_of_kubeconfig(text: &str) -> Option<String> {
    use base64::Engine;
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    let data = value["clusters"][0]["cluster"]["certificate-authority-data"].as_str()?;
    let pem = base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()?;
    spki_hash_of_pem(std::str::from_utf8(&pem).ok()?)
}

/// The cluster this host belongs to: its CA's (control planes), or the one its join accepted.
pub fn of_this_host() -> Option<String> {
    if let Ok(pem) = fs::read_to_string(host_path("/etc/kubernetes/pki/ca.crt"))
        && let Some(hash) = spki_hash_of_pem(&pem)
    {
        return Some(hash);
    }
    let joined = fs::read_to_string(host_path(&format!("{}/join.json", crate::store::DIR))).ok()?;
    let joined: Value = serde_json::from_str(&joined).ok()?;
    joined["caCertHash"].as_str().map(str::to_owned)
}

/// The cluster folder of `hash` (`sha256:<hex>`), whether it exists or not.
pub fn dir_of(hash: &str) -> PathBuf {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    host_path(API_DIR).join(hex)
}

/// One cluster's folder.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub dir: PathBuf,
}

/// One line of `events.jsonl`.
///
/// `{"ms": 1796666400123, "host": "master0", "action": "cordon", "node": "worker1",
///   "versions": {"controlPlane": "v1.30.4", "kubelet": "v1.30.4"}, "detail": "..."}`
///
/// - `ms`: unix time in milliseconds; `host`: the host the command ran on;
/// - `action`: `init`, `join`, `cordon`, `uncordon`, `drain-start`, `drain-end`, `drain-failed`,
///   `delete`, `upgrade-apply`, `upgrade-node`, `kubelet-start`, `kubelet-refused`, `reset`;
/// - `node`: the node acted on; `versions`: the control plane's version and that node's kubelet
///   version after the action (`upgrade-apply` adds `from`, `upgrade-node` adds `components`
///   on control planes); `detail`: optional text (a refusal's reason).
#[derive(Debug)]
pub struct Event {
    pub action: &'static str,
    pub node: String,
    pub detail: Option<String>,
    pub extra: Value,
}

/// The state of a cluster with no nodes yet.
fn empty_state() -> Value {
    json!({"controlPlaneVersion": null, "nodes": []})
}

impl Event {
    pub fn new(action: &'static str, node: &str) -> Event {
        Event { action, node: node.to_owned(), detail: None, extra: Value::Null }
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = Some(detail.into());
        self
    }
    pub fn extra(mut self, extra: Value) -> Event {
        self.extra = extra;
        self
    }
}

impl Cluster {
    /// The existing cluster of `hash`, if some `kubeadm init` in this lab made it.
    pub fn find(hash: &str) -> Option<Cluster> {
        let dir = dir_of(hash);
        dir.join("state.json").exists().then_some(Cluster { dir })
    }

    /// The cluster of `hash`, created if needed (by `kubeadm init`).
    pub fn create(hash: &str) -> Cluster {
        let dir = dir_of(hash);
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| die(1, &format!("cannot create the cluster folder {}: {e}", dir.display())));
        Cluster { dir }
    }

    /// The state as it is now (`state.json` is replaced by rename, so this never sees half of it).
    pub fn state(&self) -> Value {
        read_state(&self.dir)
    }

    /// Runs `change` on the state under the cluster's lock, then saves the state it leaves.
    pub fn update<R>(&self, change: impl FnOnce(&mut Value, &mut Vec<Event>) -> R) -> R {
        let _lock = lock(&self.dir);
        let mut state = read_state(&self.dir);
        let mut events = Vec::new();
        let out = change(&mut state, &mut events);
        write_state(&self.dir, &state);
        for e in events {
            self.append(&state, e);
        }
        out
    }

    fn append(&self, state: &Value, e: Event) {
        let mut versions = json!({"controlPlane": state["controlPlaneVersion"]});
        if let Some(node) = node_in(state, &e.node) {
            versions["kubelet"] = node["status"]["nodeInfo"]["kubeletVersion"].clone();
        }
        if let (Some(v), Some(extra)) = (versions.as_object_mut(), e.extra.as_object()) {
            v.extend(extra.clone());
        }
        let mut line = json!({"ms": now_ms(), "host": crate::hostname(), "action": e.action,
                              "node": e.node, "versions": versions});
        if let Some(d) = e.detail {
            line["detail"] = json!(d);
        }
        let path = self.dir.join("events.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| die(1, &format!("cannot open {}: {e}", path.display())));
        // One write per line: appends of whole lines do not interleave.
        let text = format!("{line}\n");
        file.write_all(text.as_bytes())
            .unwrap_or_else(|e| die(1, &format!("cannot append to {}: {e}", path.display())));
    }

    /// Records one event without changing the state.
    pub fn event(&self, e: Event) {
        self.update(|_, events| events.push(e));
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Whether the refusal switch is on for `node`.
    pub fn refuses_eviction(&self, node: &str) -> bool {
        self.dir.join("refuse-eviction").join(node).exists()
    }

    /// Removes the cluster's folder (its last control plane was reset).
    pub fn remove(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn read_state(dir: &Path) -> Value {
    fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(empty_state)
}

fn write_state(dir: &Path, state: &Value) {
    let tmp = dir.join(format!("state.json.{}", std::process::id()));
    let text = serde_json::to_string_pretty(state).unwrap_or_default();
    fs::write(&tmp, text).unwrap_or_else(|e| die(1, &format!("cannot write {}: {e}", tmp.display())));
    fs::rename(&tmp, dir.join("state.json"))
        .unwrap_or_else(|e| die(1, &format!("cannot replace {}/state.json: {e}", dir.display())));
}

fn lock(dir: &Path) -> File {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| die(1, &format!("cannot open {}: {e}", path.display())));
    file.lock().unwrap_or_else(|e| die(1, &format!("cannot lock {}: {e}", path.display())));
    file
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// The Node `name` in `state`.
pub fn node_in<'a>(state: &'a Value, name: &str) -> Option<&'a Value> {
    state["nodes"].as_array()?.iter().find(|n| n["metadata"]["name"] == name)
}

/// The Node `name` in `state`, to change.
pub fn node_mut<'a>(state: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    state["nodes"].as_array_mut()?.iter_mut().find(|n| n["metadata"]["name"] == name)
}

/// Whether `node` carries the control-plane role.
pub fn is_control_plane(node: &Value) -> bool {
    !node["metadata"]["labels"][CONTROL_PLANE_LABEL].is_null()
}

/// Whether `node` is Ready.
pub fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Sets the node's Ready condition (`True`, or `Unknown` once its kubelet is gone).
pub fn set_ready(node: &mut Value, ready: bool) {
    let (status, reason) = if ready { ("True", "KubeletReady") } else { ("Unknown", "NodeStatusUnknown") };
    node["status"]["conditions"] = json!([{"type": "Ready", "status": status, "reason": reason}]);
}

/// Adds the Node `name` to `state`, or renews it (a node that joins again after a reset).
pub fn register(state: &mut Value, name: &str, control_plane: bool, kubelet: &str) {
    let mut labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    });
    if control_plane {
        labels[CONTROL_PLANE_LABEL] = json!("");
    }
    let mut node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {},
            "creationTimestamp": crate::rfc3339(crate::now()),
            "uid": format!("{}-{}", crate::random_chars(8), crate::random_chars(12)),
        },
        "spec": {},
        "status": {"nodeInfo": {"kubeletVersion": kubelet}},
    });
    if control_plane {
        node["spec"]["taints"] = json!([{"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}]);
        node["metadata"]["annotations"][COMPONENTS_ANNOTATION] = state["controlPlaneVersion"].clone();
    }
    set_ready(&mut node, true);
    if !state["nodes"].is_array() {
        state["nodes"] = json!([]);
    }
    let nodes = state["nodes"].as_array_mut().expect("nodes");
    nodes.retain(|n| n["metadata"]["name"] != name);
    nodes.push(node);
}

/// `vMAJOR.MINOR.PATCH` as numbers.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.strip_prefix('v')?.split('.');
    let out = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_of_a_pem_is_the_hash_kubeadm_prints() {
        let mut log = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        fs::create_dir_all(&pki).unwrap();
        let ca = crate::pki::ca(pki.to_str().unwrap(), "ca", "kubernetes", &mut log).unwrap();
        assert_eq!(spki_hash_of_pem(&ca.cert_pem), Some(ca.spki_hash()));
        let config = crate::kubeconfig("https://10.0.0.1:6443", &ca.cert_pem, "admin", None);
        assert_eq!(hash_of_kubeconfig(&config), Some(ca.spki_hash()));
    }

    #[test]
    fn versions_are_three_numbers() {
        assert_eq!(parse_version("v1.30.4"), Some((1, 30, 4)));
        assert_eq!(parse_version("1.30.4"), None);
        assert_eq!(parse_version("v1.30"), None);
        assert_eq!(parse_version("v1.30.4.1"), None);
    }
}
