//! `kubelet`, lab stand-in (installed by the lab's `kubelet` package only): no node agent can
//! run in the lab, so it takes the flags that `kubelet.service` and kubeadm's drop-in
//! `10-kubeadm.conf` pass (and the `--node-ip` a playbook gives through `KUBELET_EXTRA_ARGS`),
//! then does nothing until systemd stops it. `--version` prints the package's version
//! (`Kubernetes v1.30.4`). Any other flag or argument exits 1 with "not supported by the lab
//! stand-in", as systemd then shows.

use kube_standins::{VERSION_NOTE, die, unsupported, version};

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
    while i < args.len() {
        let word = args[i].as_str();
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (word, None),
        };
        if !WITH_VALUE.contains(&name) {
            unsupported("kubelet", &format!("argument {word}"));
        }
        if inline.is_none() {
            i += 1;
            if i == args.len() {
                die(1, &format!("Error: flag needs an argument: {name}"));
            }
        }
        i += 1;
    }
    // The version file must be there, as for every stand-in.
    let v = version::of("kubelet");
    eprintln!("kubelet {v} ({VERSION_NOTE}): running, and doing nothing until stopped");
    loop {
        std::thread::park();
    }
}
