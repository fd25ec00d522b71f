//! `cargo xtask demo`: the main job. Boots the bare `ha` lab if needed (9 hosts like fresh
//! Debian cloud images: login `debian` with sudo, nothing installed; and the package mirror),
//! builds the engine, runs `playbooks/ha.rhai` (the kubeadm HA guide, prerequisites included)
//! against the lab with the live progress display, runs it again to show that nothing changes,
//! prints both wall times, and then checks the cluster on the hosts themselves: etcd's health
//! over TLS, who holds the virtual IP, what the playbook installed and what kubeadm left on
//! each master and worker.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::lab;
use crate::paths::{HostState, Paths, State};
use crate::ssh;
use crate::topology::Topology;

/// The playbook the demo runs, relative to the workspace root.
const PLAYBOOK: &str = "playbooks/ha.rhai";

/// Builds the engine binary and returns its path.
fn build_engine(paths: &Paths) -> Result<std::path::PathBuf> {
    let root = paths.workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--quiet", "--package", "engine", "--bin", "engine"])
        .status()
        .context("cannot run cargo build")?;
    if !built.success() {
        bail!("building the engine failed ({built})");
    }
    Ok(root.join("target").join("debug").join("engine"))
}

/// `cargo xtask graphs`: the dry-run graphs of ha.rhai and the day-two playbooks over the example
/// inventory, as DOT and SVG under docs/ (the SVG needs Graphviz, which `cargo xtask test`
/// installs).
pub(crate) fn graphs(paths: &Paths) -> Result<ExitCode> {
    let engine = build_engine(paths)?;
    let root = paths.workspace_root();
    // ha.rhai's graph (docs/ha.md), and the day-two playbooks' (docs/day-two.md): add-node.rhai's
    // and remove-node.rhai's for worker2, master2 and etcd2 as if they were the new ones (the example has
    // three etcd members: removing one needs `force`).
    let graphs: [(&str, &str, &[&str]); 6] = [
        (PLAYBOOK, "docs/ha", &[]),
        ("playbooks/reset.rhai", "docs/reset", &["-e", "confirm=kubernetes"]),
        ("playbooks/upgrade.rhai", "docs/upgrade", &["-e", "upgrade_to=v1.31.1"]),
        ("playbooks/renew-certs.rhai", "docs/renew-certs", &[]),
        ("playbooks/add-node.rhai", "docs/add-node", &["-e", "nodes=worker2,master2,etcd2"]),
        (
            "playbooks/remove-node.rhai",
            "docs/remove-node",
            &["-e", "nodes=worker2,master2,etcd2", "-e", "force=true"],
        ),
    ];
    for (playbook, base, extra) in graphs {
        for format in ["dot", "svg"] {
            let out = format!("{base}.{format}");
            let status = Command::new(&engine)
                .current_dir(root)
                .args([
                    "graph",
                    playbook,
                    "-i",
                    "playbooks/inventory.example.yml",
                    "--format",
                    format,
                    "-o",
                    &out,
                ])
                .args(extra)
                .status()
                .context("cannot start the engine")?;
            if !status.success() {
                bail!("engine graph {playbook} --format {format} failed ({status})");
            }
            println!("graphs: wrote {out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(paths: &Paths) -> Result<ExitCode> {
    lab::up(paths, Topology::Ha, Some(&[crate::bare::DEFAULT_DEBIAN]))?;
    let root = paths.workspace_root();
    let engine = build_engine(paths)?;
    let inventory = paths.inventory();
    let mut times = Vec::new();
    for label in ["first run", "re-run"] {
        println!("\ndemo: {label}: engine run {PLAYBOOK} -i {}", inventory.display());
        let started = Instant::now();
        let status = Command::new(&engine)
            .current_dir(root)
            .arg("run")
            .arg(PLAYBOOK)
            .arg("-i")
            .arg(&inventory)
            .status()
            .context("cannot start the engine")?;
        let elapsed = started.elapsed();
        if !status.success() {
            eprintln!("demo: {label} failed ({status})");
            return Ok(ExitCode::FAILURE);
        }
        times.push((label, elapsed));
    }
    println!();
    for (label, elapsed) in times {
        println!("demo: {label:9} {:>6.2} s wall", elapsed.as_secs_f64());
    }
    verify(paths)?;
    println!(
        "demo: the lab stays up; `cargo xtask lab ssh etcd0` to look around, `cargo xtask lab down` to stop it"
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks the cluster from the hosts and prints what it finds.
fn verify(paths: &Paths) -> Result<()> {
    let state = State::load(paths)?.context("the lab is not up")?;
    // As root, through the login user's sudo (a bare host lets no root in).
    let run = |name: &str, script: &str| -> String {
        let host = state.hosts.iter().find(|h| h.name == name);
        host.and_then(|h| {
            let argv = ["sudo", "-n", "sh", "-c", script];
            ssh::capture_as(paths, h.kind.login(), h.addr, &argv, Duration::from_secs(20))
        })
        .map_or_else(|| "(no answer)".to_owned(), |out| out.trim().to_owned())
    };
    let etcd: Vec<&HostState> = state.hosts.iter().filter(|h| h.name.starts_with("etcd")).collect();
    let endpoints: Vec<String> = etcd.iter().map(|h| format!("https://{}:2379", h.addr)).collect();
    let pki = "/etc/kubernetes/pki/etcd";
    // etcdctl (Debian's etcd-client) is on the etcd hosts: the masters only hold the client
    // certificate that kube-apiserver uses.
    println!("\ndemo: etcd, from etcd0 with the client certificate:");
    let health = run(
        "etcd0",
        &format!(
            "ETCDCTL_API=3 etcdctl --cacert {pki}/ca.pem --cert {pki}/client.pem --key {pki}/client-key.pem \
             --endpoints {} endpoint health 2>&1",
            endpoints.join(",")
        ),
    );
    for line in health.lines() {
        println!("  {line}");
    }
    // keepalived may have just been restarted: give VRRP a few advertisements to settle.
    let holder = |m: &str| run(m, "ip -o -4 addr show | grep -qw 10.77.0.10 && echo yes || echo no") == "yes";
    let masters = ["master0", "master1", "master2"];
    let started = Instant::now();
    while !masters.iter().any(|m| holder(m)) && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("demo: virtual IP 10.77.0.10:");
    for m in masters {
        println!("  {m:8} holds it: {}", if holder(m) { "yes" } else { "no" });
    }
    println!("demo: what the playbook installed on each node (the hosts began bare):");
    for n in ["master0", "master1", "master2", "worker0", "worker1", "worker2"] {
        let held = run(n, "apt-mark showhold | tr '\\n' ' '");
        let versions = run(
            n,
            "dpkg-query -W -f='${Version}' kubeadm; echo -n ', containerd '; dpkg-query -W -f='${Version}' containerd; echo -n ' '; systemctl is-active containerd",
        );
        println!("  {n:8} held: {held}; kubeadm {versions}");
    }
    println!("demo: kubeadm on each node:");
    for m in ["master0", "master1", "master2"] {
        let sans = run(
            m,
            "openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/apiserver.crt 2>/dev/null \
             | tail -n1 | tr -d ' '",
        );
        let ca = run(m, "sha256sum < /etc/kubernetes/pki/ca.crt | cut -c1-16");
        println!("  {m:8} control plane; CA sha256 {ca}…; apiserver SANs {sans}");
    }
    for w in ["worker0", "worker1", "worker2"] {
        let server = run(w, "grep -m1 'server:' /etc/kubernetes/kubelet.conf | tr -d ' '");
        let kubelet = run(w, "systemctl is-active kubelet");
        println!("  {w:8} joined; kubelet {kubelet}, {server}");
    }
    println!(
        "demo: kubeadm and kubectl on these hosts are the lab's stand-ins (no real control plane runs here)"
    );
    Ok(())
}
