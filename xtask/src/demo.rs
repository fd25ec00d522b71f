//! `cargo xtask demo`: the main job. Boots the bare `ha` lab if needed (9 hosts like fresh
//! Debian cloud images: login `debian` with sudo, nothing installed; and the package mirror),
//! builds the engine, runs `playbooks/ha.rhai` (the kubeadm HA guide, prerequisites included)
//! against the lab with the live progress display, runs it again to show that nothing changes,
//! prints both wall times, and then checks the cluster on the hosts themselves: etcd's health
//! over TLS, who holds the virtual IP, what the playbook installed and what kubeadm left on
//! each master and worker. It says what each step does and how long it takes the first time,
//! lets cargo's progress through while the engine builds, and ends with where each run's journal
//! and report (`engine run --report`, target/demo/<run>.html) are.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::lab;
use crate::paths::{HostState, Paths, State};
use crate::ssh;
use crate::topology::Topology;

/// The playbook the demo runs, relative to the workspace root.
const PLAYBOOK: &str = "playbooks/ha.rhai";

/// How long the engine's first debug build (every dependency) takes: 4 min 51 s from clean on the
/// two-core CI machine.
const FIRST_BUILD: &str = "about 5 minutes on 2 cores";

/// Whether each run writes its HTML report (`engine run --report target/demo/<run>.html`), and
/// the demo says where it is.
const RUN_REPORTS: bool = true;

/// Builds the engine binary with cargo's progress on the terminal, says how long it took, and
/// returns its path.
fn build_engine(paths: &Paths, who: &str) -> Result<std::path::PathBuf> {
    let root = paths.workspace_root();
    println!(
        "{who}: building the engine (cargo build -p engine; the first build compiles every dependency: \
         {FIRST_BUILD}; later ones take seconds)"
    );
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--package", "engine", "--bin", "engine"])
        .status()
        .context("cannot run cargo build")?;
    if !built.success() {
        bail!("building the engine failed ({built})");
    }
    let engine = root.join("target").join("debug").join("engine");
    println!("{who}: engine built in {:.0} s: {}", started.elapsed().as_secs_f64(), engine.display());
    Ok(engine)
}

/// `cargo xtask graphs`: the dry-run graphs of ha.rhai and the day-two playbooks over the example
/// inventory, as DOT and SVG under docs/ (the SVG needs Graphviz, which `cargo xtask test`
/// installs).
pub(crate) fn graphs(paths: &Paths) -> Result<ExitCode> {
    let engine = build_engine(paths, "graphs")?;
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
    println!(
        "demo: step 1 of 5: the lab: 9 bare Debian 12 hosts and their package mirror (lab up --topology ha \
         --bare). The first time builds the host images and the mirror (about 2 to 4 minutes, once; \
         cached under /var/cache/engine-lab); then the hosts boot in seconds"
    );
    let started = Instant::now();
    lab::up(paths, Topology::Ha, Some(&[crate::bare::DEFAULT_DEBIAN]))?;
    println!("demo: the lab is up ({:.0} s)", started.elapsed().as_secs_f64());
    let root = paths.workspace_root();
    println!("\ndemo: step 2 of 5: the engine");
    let engine = build_engine(paths, "demo")?;
    let inventory = paths.inventory();
    let mut runs = Vec::new();
    // docs/benchmarks.md, W2: about 30 s for the first run on this machine, under 2 s again.
    for (step, label, what) in [
        (
            3,
            "first run",
            "installs containerd, etcd, keepalived and kubeadm on the bare hosts and builds the cluster \
             (about half a minute)",
        ),
        (4, "re-run", "runs the same playbook again: every task finds its work done and changes nothing"),
    ] {
        println!("\ndemo: step {step} of 5: {label}: engine run {PLAYBOOK} -i {}", inventory.display());
        println!("demo: it {what}");
        let report = RUN_REPORTS
            .then(|| root.join("target").join("demo").join(format!("{label}.html").replace(' ', "-")));
        let started = std::time::SystemTime::now();
        let clock = Instant::now();
        let mut command = Command::new(&engine);
        command.current_dir(root).arg("run").arg(PLAYBOOK).arg("-i").arg(&inventory);
        if let Some(report) = &report {
            std::fs::create_dir_all(report.parent().unwrap_or(root))?;
            command.arg("--report").arg(report);
        }
        let status = command.status().context("cannot start the engine")?;
        let elapsed = clock.elapsed();
        let journal = journal_since(root, started);
        if !status.success() {
            eprintln!("demo: {label} failed ({status})");
            if let Some(journal) = &journal {
                eprintln!("demo: its journal: {} (`engine run --resume` finishes it)", journal.display());
            }
            return Ok(ExitCode::FAILURE);
        }
        println!("demo: {label} took {:.1} s", elapsed.as_secs_f64());
        runs.push((label, elapsed, journal, report));
    }
    println!();
    for (label, elapsed, ..) in &runs {
        println!("demo: {label:9} {:>6.2} s wall", elapsed.as_secs_f64());
    }
    println!("\ndemo: step 5 of 5: the cluster, checked on the hosts themselves");
    verify(paths)?;
    println!();
    for (label, _, journal, report) in &runs {
        if let Some(journal) = journal {
            println!("demo: {label:9} journal (every task's outcome, JSON lines): {}", journal.display());
        }
        if let Some(report) = report {
            println!("demo: {label:9} report: {}", report.display());
        }
    }
    println!(
        "demo: the lab stays up; `cargo xtask lab ssh etcd0` to look around, `cargo xtask lab down` to stop it"
    );
    Ok(ExitCode::SUCCESS)
}

/// The run journal an `engine run` started at `since` wrote: the newest `.engine/runs/*.jsonl`
/// under `root` (the runs' working directory) changed since then.
fn journal_since(root: &std::path::Path, since: std::time::SystemTime) -> Option<std::path::PathBuf> {
    let runs = root.join(".engine").join("runs");
    std::fs::read_dir(&runs)
        .ok()?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let changed = std::fs::metadata(&path).ok()?.modified().ok()?;
            (path.extension()? == "jsonl" && changed >= since).then_some((changed, path))
        })
        .max()
        .map(|(_, path)| path.strip_prefix(root).map(std::path::Path::to_path_buf).unwrap_or(path))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_the_newest_written_since_the_run_began() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join(".engine").join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        let old = std::fs::File::create(runs.join("1-old.jsonl")).unwrap();
        old.set_modified(hour_ago).unwrap();
        let since = std::time::SystemTime::now() - Duration::from_secs(60);
        assert_eq!(journal_since(tmp.path(), since), None, "an earlier run's journal is not this run's");
        std::fs::write(runs.join("2-new.jsonl"), "{}").unwrap();
        std::fs::write(runs.join("journal.key"), "k").unwrap();
        assert_eq!(
            journal_since(tmp.path(), since),
            Some(std::path::PathBuf::from(".engine/runs/2-new.jsonl"))
        );
        assert_eq!(journal_since(&tmp.path().join("nowhere"), since), None);
    }
}
