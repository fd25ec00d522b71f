//! `kubelet`, lab stand-in (installed by the lab's `kubelet` package only): no node agent can
//! run in the lab, so it takes the flags that `kubelet.service` and kubeadm's drop-in
//! `10-kubeadm.conf` pass (and the `--node-ip` a playbook gives through `KUBELET_EXTRA_ARGS`),
//! then does nothing until systemd stops it. On a node of a cluster in the shared cluster API
//! (`kube_standins::cluster`: its own CA, or the one its join accepted) it first records its
//! version as the Node's kubeletVersion and the Node Ready (event `kubelet-start`); a kubelet
//! newer than the control plane is refused as the skew policy says (event `kubelet-refused`,
//! the reason on stderr, exit 1: the Node keeps its old version). `--version` prints the package's version
//! (`Kubernetes v1.30.4`). Any other flag or argument exits 1 with "not supported by the lab
//! stand-in", as systemd then shows.

use kube_standins::cluster::{self, Cluster, Event};
use kube_standins::{VERSION_NOTE, die, skew, unsupported, version};

/// The flags that take a value.
const WITH_VALUE: [&str; 8] = [
    "--bootstrap-kubeconfig",
    "--kubeconfig",
    "--config",
    "--container-runtime-endpoint",
    "--pod-infra-container-image",
    "--node-ip",
    "--hostname-override",
    "--node-labels",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["--version"] {
        println!("Kubernetes {} ({VERSION_NOTE})", version::of("kubelet"));
        return;
    }
    let mut i = 0;
    let mut node = None;
    while i < args.len() {
        let word = args[i].as_str();
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (word, None),
        };
        if !WITH_VALUE.contains(&name) {
            unsupported("kubelet", &format!("argument {word}"));
        }
        let value = match inline {
            Some(v) => v.to_owned(),
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .unwrap_or_else(|| die(1, &format!("Error: flag needs an argument: {name}")))
            }
        };
        if name == "--hostname-override" {
            node = Some(value);
        }
        i += 1;
    }
    // The version file must be there, as for every stand-in.
    let v = version::of("kubelet");
    let node = node.unwrap_or_else(kube_standins::hostname);
    if let Some(c) = cluster::of_this_host().and_then(|h| Cluster::find(&h)) {
        let refusal = c.update(|state, events| {
            let control_plane = state["controlPlaneVersion"].as_str().unwrap_or_default().to_owned();
            let n = cluster::node_mut(state, &node)?;
            if let Some(why) = skew::kubelet_refusal(&v, &control_plane) {
                events.push(
                    Event::new("kubelet-refused", &node)
                        .detail(why.clone())
                        .extra(serde_json::json!({"refused": v})),
                );
                return Some(why);
            }
            n["status"]["nodeInfo"]["kubeletVersion"] = serde_json::json!(v);
            cluster::set_ready(n, true);
            events.push(Event::new("kubelet-start", &node));
            None
        });
        if let Some(why) = refusal {
            die(1, &format!("kubelet {v} ({VERSION_NOTE}): node \"{node}\" not registered: {why}"));
        }
    }
    eprintln!("kubelet {v} ({VERSION_NOTE}): running, and doing nothing until stopped");
    loop {
        std::thread::park();
    }
}
