//! `kubeadm upgrade`, as "Upgrading kubeadm clusters" runs it: a preflight of versions and skew,
//! `kubeadm upgrade apply` on the first control-plane node, `kubeadm upgrade node` on the others.
//!
//! ```text
//!   upgrade_preflight: control plane version (this node's kube-apiserver manifest) and every
//!                      node's kubelet (`kubectl get nodes`) against the target: one minor at a
//!                      time, no downgrade, kubelets never newer than the control plane nor more
//!                      than three minors older; read-only; outputs the versions
//!   upgrade_apply:     manifest already at the target -> ok, else `kubeadm upgrade apply --yes`
//!   upgrade_node:      control plane: manifest at the target -> ok; a worker: always runs
//! ```
//!
//! Every version a host prints is parsed strictly (`vMAJOR.MINOR.PATCH`) before it is compared.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use contract::error::ModuleError;
use contract::host::{Exec, Host};
use contract::module::{Outputs, Plan};
use contract::remote::{self, run_checked};
use contract::shell::join;
use contract::untrusted::Malformed;

use super::{ADMIN_CONF, APISERVER_MANIFEST, KubeadmAct};

/// A Kubernetes release, `v1.31.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl FromStr for KubeVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a Kubernetes version like \"v1.31.1\"");
        let numbers = text.strip_prefix('v').ok_or_else(bad)?;
        let parts: Vec<&str> = numbers.split('.').collect();
        let number = |p: &str| -> Result<u32, String> {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        match parts.as_slice() {
            [major, minor, patch] => {
                Ok(Self { major: number(major)?, minor: number(minor)?, patch: number(patch)? })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl<'de> Deserialize<'de> for KubeVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

contract::string_schema!(KubeVersion);

/// Why an upgrade from `cluster` (with these kubelets) to `target` is refused, as kubeadm and
/// the version skew policy say; `None` when it may go ahead (also when there is nothing to do).
pub fn refusal(
    cluster: KubeVersion,
    kubelets: &BTreeMap<String, KubeVersion>,
    target: KubeVersion,
) -> Option<String> {
    if target.major != cluster.major {
        return Some(format!(
            "Specified version to upgrade to \"{target}\" is a different major version than the cluster \
             version \"{cluster}\""
        ));
    }
    if target < cluster {
        return Some(format!(
            "Specified version to upgrade to \"{target}\" is equal to or lower than the cluster version \
             \"{cluster}\". Downgrades are not supported yet"
        ));
    }
    if target.minor > cluster.minor + 1 {
        return Some(format!(
            "Specified version to upgrade to \"{target}\" is too high; kubeadm can upgrade only 1 minor \
             version at a time (from \"{cluster}\": upgrade to v{}.{}.x first)",
            cluster.major,
            cluster.minor + 1
        ));
    }
    let newer: Vec<String> =
        kubelets.iter().filter(|(_, v)| **v > target).map(|(n, v)| format!("{n} ({v})")).collect();
    if !newer.is_empty() {
        return Some(format!(
            "kubelets newer than the target \"{target}\": {} (a kubelet is never newer than the control plane)",
            newer.join(", ")
        ));
    }
    // Since v1.28 a kubelet may be up to three minor versions older than kube-apiserver.
    let old: Vec<String> = kubelets
        .iter()
        .filter(|(_, v)| v.major != target.major || v.minor + 3 < target.minor)
        .map(|(n, v)| format!("{n} ({v})"))
        .collect();
    if !old.is_empty() {
        return Some(format!(
            "There are kubelets in this cluster that are too old for \"{target}\": {} (at most three minor \
             versions older than the control plane)",
            old.join(", ")
        ));
    }
    None
}

/// The version of this node's kube-apiserver static pod (its image's tag), `None` when the
/// node has no control plane.
pub(super) async fn apiserver_version(host: &dyn Host) -> Result<Option<KubeVersion>, ModuleError> {
    let what = || format!("the image of {APISERVER_MANIFEST}");
    if remote::stat(host, APISERVER_MANIFEST).await?.is_none() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&remote::read(host, APISERVER_MANIFEST).await?).into_owned();
    let manifest: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| Malformed::whole(format!("not YAML: {e}")).on(host.name(), what()))?;
    let containers = manifest["spec"]["containers"].as_array().cloned().unwrap_or_default();
    let image = containers
        .iter()
        .find(|c| c["name"] == "kube-apiserver")
        .and_then(|c| c["image"].as_str())
        .ok_or_else(|| {
        Malformed::whole("no kube-apiserver container with an image").on(host.name(), what())
    })?;
    let tag = image.rsplit_once(':').map_or("", |(_, tag)| tag);
    let version = tag.parse().map_err(|e: String| Malformed::new(image, e).on(host.name(), what()))?;
    Ok(Some(version))
}

/// Every node's kubelet version, from `kubectl get nodes` with the admin kubeconfig.
async fn kubelet_versions(host: &dyn Host) -> Result<BTreeMap<String, KubeVersion>, ModuleError> {
    let argv = ["kubectl", &format!("--kubeconfig={ADMIN_CONF}"), "get", "nodes", "--output=json"];
    let what = "the output of `kubectl get nodes`";
    let text = run_checked(host, Exec::new(join(argv))).await?.stdout_text();
    let list: Value = serde_json::from_str(&text)
        .map_err(|e| Malformed::whole(format!("not JSON: {e}")).on(host.name(), what))?;
    let items = list["items"].as_array().ok_or_else(|| Malformed::whole("no items").on(host.name(), what))?;
    let mut versions = BTreeMap::new();
    for item in items {
        let name = item["metadata"]["name"]
            .as_str()
            .filter(|n| {
                !n.is_empty()
                    && n.len() <= 253
                    && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
            })
            .ok_or_else(|| {
                Malformed::new(&item["metadata"]["name"].to_string(), "not a node name").on(host.name(), what)
            })?;
        let kubelet = item["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or_default();
        let version =
            kubelet.parse().map_err(|e: String| Malformed::new(kubelet, e).on(host.name(), what))?;
        versions.insert(name.to_owned(), version);
    }
    Ok(versions)
}

/// The preflight: refused as kubeadm would refuse, else read-only with the versions as outputs:
/// `control_plane`, `target`, `nodes` (name to kubelet version) and `pending` (the nodes whose
/// kubelet is not at the target yet).
pub(super) async fn plan_preflight(
    host: &dyn Host,
    target: KubeVersion,
    expected: &[String],
) -> Result<Plan, ModuleError> {
    let cluster = apiserver_version(host).await?.ok_or_else(|| {
        ModuleError::Refused(format!(
            "{} has no control plane ({APISERVER_MANIFEST} is missing): run the upgrade preflight on the \
             first control-plane node",
            host.name()
        ))
    })?;
    let kubelets = kubelet_versions(host).await?;
    let missing: Vec<&str> =
        expected.iter().filter(|n| !kubelets.contains_key(*n)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(ModuleError::Refused(format!(
            "upgrade to {target} refused before anything changed: not nodes of this cluster: {} (is the \
             inventory's name the node's name?); the cluster's nodes: {}",
            missing.join(", "),
            kubelets.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(why) = refusal(cluster, &kubelets, target) {
        return Err(ModuleError::Refused(format!(
            "upgrade to {target} refused before anything changed: {why}"
        )));
    }
    let mut outputs = Outputs::new();
    outputs.insert("control_plane".into(), Value::String(cluster.to_string()));
    outputs.insert("target".into(), Value::String(target.to_string()));
    let pending =
        kubelets.iter().filter(|(_, v)| **v != target).map(|(n, _)| Value::String(n.clone())).collect();
    outputs.insert("pending".into(), Value::Array(pending));
    let nodes = kubelets.into_iter().map(|(n, v)| (n, Value::String(v.to_string()))).collect();
    outputs.insert("nodes".into(), Value::Object(nodes));
    Ok(Plan { outputs, ..Plan::unchanged() })
}

/// `kubeadm upgrade apply` on the first control-plane node, unless its control plane is at
/// the target already.
pub(super) async fn plan_apply(host: &dyn Host, target: KubeVersion) -> Result<Plan, ModuleError> {
    let current = apiserver_version(host).await?.ok_or_else(|| {
        ModuleError::Refused(format!(
            "{} has no control plane ({APISERVER_MANIFEST} is missing)",
            host.name()
        ))
    })?;
    if current == target {
        return Ok(Plan::unchanged());
    }
    Ok(Plan {
        changes: vec![format!("kubeadm upgrade apply {target} (the control plane is at {current})")],
        action: Some(Box::new(KubeadmAct::Upgrade { argv: upgrade_argv(&["apply", "--yes"], Some(target)) })),
        ..Plan::default()
    })
}

/// `kubeadm upgrade node`: on a control-plane node, unless its manifests are at the target; on
/// a worker (nothing on it says whether it ran), always.
pub(super) async fn plan_node(host: &dyn Host, target: KubeVersion) -> Result<Plan, ModuleError> {
    let change = match apiserver_version(host).await? {
        Some(current) if current == target => return Ok(Plan::unchanged()),
        Some(current) => {
            format!("kubeadm upgrade node (this control plane is at {current}, the target {target})")
        }
        None => "kubeadm upgrade node (the kubelet's configuration, from the cluster)".to_owned(),
    };
    Ok(Plan {
        changes: vec![change],
        action: Some(Box::new(KubeadmAct::Upgrade { argv: upgrade_argv(&["node"], None) })),
        ..Plan::default()
    })
}

fn upgrade_argv(words: &[&str], version: Option<KubeVersion>) -> Vec<String> {
    let mut argv = vec!["kubeadm".to_owned(), "upgrade".to_owned()];
    argv.extend(words.iter().map(|w| (*w).to_owned()));
    if let Some(version) = version {
        argv.push("--".to_owned());
        argv.push(version.to_string());
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> KubeVersion {
        text.parse().unwrap()
    }

    fn kubelets(list: &[(&str, &str)]) -> BTreeMap<String, KubeVersion> {
        list.iter().map(|(n, ver)| ((*n).to_owned(), v(ver))).collect()
    }

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(v("v1.31.1"), KubeVersion { major: 1, minor: 31, patch: 1 });
        for bad in ["1.31.1", "v1.31", "v1.31.1-rc.0", "v1.31.1\n", "v1..1", "v1.31.+1", ""] {
            assert!(bad.parse::<KubeVersion>().is_err(), "{bad:?}");
        }
        assert!(v("v1.31.0") > v("v1.30.9"));
    }

    #[test]
    fn one_minor_at_a_time_no_downgrade_and_kubelet_skew() {
        let k = kubelets(&[("w0", "v1.30.4"), ("m0", "v1.30.4")]);
        assert_eq!(refusal(v("v1.30.4"), &k, v("v1.31.1")), None);
        assert_eq!(refusal(v("v1.30.4"), &k, v("v1.30.4")), None, "nothing to do is no refusal");
        let skip = refusal(v("v1.30.4"), &k, v("v1.32.0")).unwrap();
        assert!(skip.contains("too high; kubeadm can upgrade only 1 minor version at a time"), "{skip}");
        assert!(skip.contains("upgrade to v1.31.x first"), "{skip}");
        let down = refusal(v("v1.30.4"), &k, v("v1.30.3")).unwrap();
        assert!(down.contains("Downgrades are not supported"), "{down}");
        let newer = refusal(v("v1.30.4"), &kubelets(&[("w0", "v1.31.2")]), v("v1.31.1")).unwrap();
        assert!(newer.contains("w0 (v1.31.2)"), "{newer}");
        let old = refusal(v("v1.30.4"), &kubelets(&[("w0", "v1.27.0")]), v("v1.31.1")).unwrap();
        assert!(old.contains("too old") && old.contains("w0 (v1.27.0)"), "{old}");
        assert_eq!(refusal(v("v1.30.4"), &kubelets(&[("w0", "v1.28.0")]), v("v1.31.1")), None);
        assert!(refusal(v("v1.30.4"), &k, v("v2.0.0")).is_some());
    }
}
