//! `kubeadm upgrade plan [VERSION]`, `upgrade apply VERSION -y`, `upgrade node`, following
//! "Upgrading kubeadm clusters": the control plane's version and each node's versions live in
//! the shared cluster API (see `kube_standins::cluster`), and kubeadm's skew policies hold.

use std::fs;

use kube_standins::cluster::{self, COMPONENTS_ANNOTATION, Cluster, UPGRADED_ANNOTATION};
use kube_standins::{die, host_path, skew, store, unsupported, version};
use serde_json::{Value, json};

use super::{COMPONENTS, MANIFESTS, admin_server, flags, write};

/// The cluster of this control plane (from its admin.conf and CA), with its state.
fn control_plane_cluster() -> (Cluster, Value) {
    let (_, hash) = admin_server();
    let Some(c) = Cluster::find(&hash) else {
        die(
            1,
            "[upgrade/config] FATAL: unable to fetch the kubeadm-config ConfigMap: the lab stand-in's \
             cluster API holds no cluster for this host's CA (was it made by kubeadm init in this lab?)",
        )
    };
    let state = c.state();
    (c, state)
}

fn cluster_version(state: &Value) -> String {
    state["controlPlaneVersion"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| die(1, "[upgrade/versions] FATAL: Unable to fetch cluster version"))
}

fn kubelet_versions(state: &Value) -> Vec<(String, String)> {
    state["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let name = n["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            (name, n["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

fn check_target(cluster: &str, kubeadm: &str, target: &str, state: &Value) {
    if cluster::parse_version(target).is_none() {
        die(
            1,
            &format!(
                "[upgrade/version] FATAL: unable to parse version \"{target}\" (lab stand-in: vMAJOR.MINOR.PATCH)"
            ),
        );
    }
    println!("[upgrade/version] You have chosen to change the cluster version to \"{target}\"");
    println!("[upgrade/versions] Cluster version: {cluster}");
    println!("[upgrade/versions] kubeadm version: {kubeadm}");
    let kubelets: Vec<String> = kubelet_versions(state).into_iter().map(|(_, v)| v).collect();
    let verdict = skew::policies(cluster, kubeadm, target, &kubelets);
    if !verdict.ok() {
        die(1, &verdict.text());
    }
}

pub(crate) fn plan(rest: &[&str]) {
    let f = flags(rest, &[], &[], "upgrade plan");
    let target = match f.positional[..] {
        [] => None,
        [v] => Some(v.to_owned()),
        _ => unsupported("kubeadm", "upgrade plan with several versions"),
    };
    println!("[preflight] Running pre-flight checks.");
    let (_, state) = control_plane_cluster();
    let current = cluster_version(&state);
    let kubeadm = version::of("kubeadm");
    println!(
        "[upgrade/config] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"..."
    );
    println!("[upgrade] Running cluster health checks");
    println!("[upgrade] Fetching available versions to upgrade to");
    // Offline, as in the lab, kubeadm falls back to its own version.
    let target = target.unwrap_or_else(|| kubeadm.clone());
    check_target(&current, &kubeadm, &target, &state);
    println!("[upgrade/versions] Target version: {target}");
    let (major, minor, _) = cluster::parse_version(&current).unwrap_or_default();
    println!("[upgrade/versions] Latest version in the v{major}.{minor} series: {target}\n");
    println!(
        "Components that must be upgraded manually after you have upgraded the control plane with 'kubeadm upgrade apply':"
    );
    println!("COMPONENT   NODE        CURRENT   TARGET");
    for (node, kubelet) in kubelet_versions(&state) {
        println!("kubelet     {node:<11} {kubelet:<9} {target}");
    }
    println!("\nUpgrade to the latest stable version:\n");
    println!("COMPONENT                 NODE        CURRENT   TARGET");
    for n in state["nodes"].as_array().into_iter().flatten().filter(|n| cluster::is_control_plane(n)) {
        let node = n["metadata"]["name"].as_str().unwrap_or_default();
        let have = n["metadata"]["annotations"][COMPONENTS_ANNOTATION].as_str().unwrap_or(&current);
        for c in COMPONENTS {
            println!("{c:<25} {node:<11} {have:<9} {target}");
        }
    }
    println!("\nYou can now apply the upgrade by executing the following command:\n");
    println!("\tkubeadm upgrade apply {target}\n");
    println!("_____________________________________________________________________");
}

pub(crate) fn apply(rest: &[&str]) {
    let f = flags(rest, &[], &["-y", "--yes"], "upgrade apply");
    let [target] = f.positional[..] else {
        die(1, "[upgrade/version] FATAL: missing version argument (kubeadm upgrade apply VERSION)");
    };
    if !f.has("y") && !f.has("yes") {
        unsupported("kubeadm", "upgrade apply without -y (interactive confirmation)");
    }
    println!("[preflight] Running pre-flight checks.");
    let (c, state) = control_plane_cluster();
    let node = kube_standins::hostname();
    if !cluster::node_in(&state, &node).is_some_and(cluster::is_control_plane) {
        die(
            1,
            &format!(
                "[upgrade] FATAL: node {node} is not a control-plane node of this cluster (lab stand-in)"
            ),
        );
    }
    let current = cluster_version(&state);
    let kubeadm = version::of("kubeadm");
    println!(
        "[upgrade/config] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"..."
    );
    check_target(&current, &kubeadm, target, &state);
    println!(
        "[upgrade/apply] Upgrading your Static Pod-hosted control plane to version \"{target}\" (timeout: 5m0s)..."
    );
    retag_manifests(target);
    set_stored_version(target);
    c.update(|state, events| {
        state["controlPlaneVersion"] = json!(target);
        if let Some(n) = cluster::node_mut(state, &node) {
            n["metadata"]["annotations"][COMPONENTS_ANNOTATION] = json!(target);
            n["metadata"]["annotations"][UPGRADED_ANNOTATION] = json!(target);
        }
        events.push(
            cluster::Event::new("upgrade-apply", &node).extra(json!({"from": current, "components": target})),
        );
    });
    println!("[upgrade/successful] SUCCESS! Your cluster was upgraded to \"{target}\". Enjoy!\n");
    println!(
        "[upgrade/kubelet] Now that your control plane is upgraded, please proceed with upgrading your kubelets if you haven't already done so."
    );
}

pub(crate) fn node(rest: &[&str]) {
    let f = flags(rest, &[], &[], "upgrade node");
    if !f.positional.is_empty() {
        unsupported("kubeadm", &format!("upgrade node {}", f.positional.join(" ")));
    }
    let Some(c) = cluster::of_this_host().and_then(|h| Cluster::find(&h)) else {
        die(
            1,
            "[upgrade] FATAL: this node belongs to no cluster in the lab stand-in's cluster API (run kubeadm init or join first)",
        );
    };
    let state = c.state();
    let node = kube_standins::hostname();
    let Some(entry) = cluster::node_in(&state, &node) else {
        die(1, &format!("[upgrade] FATAL: nodes \"{node}\" not found"));
    };
    let control_plane = cluster::is_control_plane(entry);
    let target = cluster_version(&state);
    let kubeadm = version::of("kubeadm");
    println!(
        "[upgrade] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"..."
    );
    if cluster::parse_version(&kubeadm) < cluster::parse_version(&target) {
        die(
            1,
            &format!(
                "[upgrade/version] FATAL: Specified version to upgrade to \"{target}\" is higher than the kubeadm version \"{kubeadm}\". Upgrade kubeadm first using the tool you used to install kubeadm"
            ),
        );
    }
    println!("[preflight] Running pre-flight checks");
    let manifests = host_path(&format!("{MANIFESTS}/kube-apiserver.yaml")).exists();
    if control_plane && manifests {
        println!(
            "[upgrade] Upgrading your Static Pod-hosted control plane instance to version \"{target}\"..."
        );
        retag_manifests(&target);
    } else {
        println!("[preflight] Skipping prepull. Not a control plane node.");
        println!("[upgrade] Skipping phase. Not a control plane node.");
    }
    c.update(|state, events| {
        let mut extra = json!({});
        if let Some(n) = cluster::node_mut(state, &node) {
            n["metadata"]["annotations"][UPGRADED_ANNOTATION] = json!(target);
            if control_plane && manifests {
                n["metadata"]["annotations"][COMPONENTS_ANNOTATION] = json!(target);
                extra["components"] = json!(target);
            }
        }
        events.push(cluster::Event::new("upgrade-node", &node).extra(extra));
    });
    if control_plane && manifests {
        println!("[upgrade] The control plane instance for this node was successfully updated!");
    } else {
        println!("[upgrade] The configuration for this node was successfully updated!");
    }
    println!("[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager.");
}

/// The static pod manifests' images moved to `version` (`registry.k8s.io/kube-apiserver:v1.31.1`).
fn retag_manifests(version: &str) {
    for c in COMPONENTS {
        let path = format!("{MANIFESTS}/{c}.yaml");
        let Ok(text) = fs::read_to_string(host_path(&path)) else {
            continue;
        };
        let mut manifest: Value = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| die(1, &format!("cannot read the static pod manifest {path}: {e}")));
        manifest["spec"]["containers"][0]["image"] = json!(format!("registry.k8s.io/{c}:{version}"));
        println!("[upgrade/staticpods] Moved new manifest to \"{path}\"");
        write(&path, &serde_yaml_ng::to_string(&manifest).unwrap_or_default());
    }
}

/// The kubeadm-config ConfigMap (this host's object store) names the new version.
fn set_stored_version(version: &str) {
    let mut objects = store::objects();
    for o in &mut objects {
        if store::name(o) == "kubeadm-config" && store::namespace(o) == "kube-system" {
            for key in ["ClusterConfiguration", "MasterConfiguration"] {
                if let Some(text) = o["data"][key].as_str() {
                    let next: String = text
                        .lines()
                        .map(|l| {
                            if l.starts_with("kubernetesVersion:") {
                                format!("kubernetesVersion: {version}\n")
                            } else {
                                format!("{l}\n")
                            }
                        })
                        .collect();
                    o["data"][key] = json!(next);
                }
            }
        }
    }
    store::save_objects(&objects);
}
