//! `lab selftest`: proves a lab cycle leaves the machine as it found it. Snapshots links,
//! nspawn processes, mounts and the lab's cgroups; brings up a 2-host lab, checks each host
//! over SSH; takes it down; compares the snapshots.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::paths::{Paths, State};
use crate::topology::Topology;
use crate::{cmd, lab, procs, ssh};

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    links: BTreeSet<String>,
    nspawn: BTreeSet<String>,
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<String>,
}

fn snapshot() -> Result<Snapshot> {
    procs::reap();
    let links = cmd::output(Command::new("ip").args(["-o", "link", "show"]))?
        .lines()
        .map(|l| l.split("\\").next().unwrap_or(l).trim().to_owned())
        .collect();
    let nspawn = fs::read_dir("/proc")
        .context("cannot list /proc")?
        .filter_map(|e| {
            let pid = e.ok()?.file_name().to_str()?.parse::<u32>().ok()?;
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            // Zombies are already dead; this machine's PID 1 reaps them a little later.
            (comm.trim() == "systemd-nspawn" && procs::running(pid)).then(|| format!("{pid} {}", comm.trim()))
        })
        .collect();
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read mountinfo")?
        .lines()
        .map(|l| {
            // Mount point, options and source, without the ids that change on remount.
            let f: Vec<&str> = l.split(' ').collect();
            f.iter().skip(3).copied().collect::<Vec<_>>().join(" ")
        })
        .collect();
    let cgroups = crate::cgroup::list().into_iter().collect();
    Ok(Snapshot { links, nspawn, mounts, cgroups })
}

fn diff(name: &str, before: &BTreeSet<String>, after: &BTreeSet<String>, out: &mut Vec<String>) {
    for gone in before.difference(after) {
        out.push(format!("{name}: - {gone}"));
    }
    for new in after.difference(before) {
        out.push(format!("{name}: + {new}"));
    }
}

pub(crate) fn run(paths: &Paths) -> Result<()> {
    lab::require_root()?;
    crate::tools::ensure()?;
    let _lock = lab::lock()?;
    println!("selftest: taking down any earlier lab for a clean baseline");
    lab::down_locked(paths)?;
    let before = snapshot()?;
    lab::up_locked(paths, Topology::Nodes(2), None)?;
    let checked = check_hosts(paths);
    lab::down_locked(paths)?;
    checked?;
    // Killed processes can linger a moment as zombies until PID 1 reaps them.
    let mut after = snapshot()?;
    for _ in 0..50 {
        if after == before {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = snapshot()?;
    }
    let mut out = Vec::new();
    diff("link", &before.links, &after.links, &mut out);
    diff("nspawn", &before.nspawn, &after.nspawn, &mut out);
    diff("mount", &before.mounts, &after.mounts, &mut out);
    diff("cgroup", &before.cgroups, &after.cgroups, &mut out);
    if !out.is_empty() {
        bail!("selftest: the lab left the machine changed:\n{}", out.join("\n"));
    }
    println!(
        "selftest: ok (up, SSH + hostname on every host, down; links, nspawn processes, mounts and cgroups as before)"
    );
    Ok(())
}

/// Every host answers SSH with strict host-key checking and reports its own name, and
/// reaches the others' SSH port.
fn check_hosts(paths: &Paths) -> Result<()> {
    let state = State::require(paths)?;
    for h in &state.hosts {
        let name = ssh::capture(paths, h.addr, &["hostname"], Duration::from_secs(10))
            .with_context(|| format!("{}: no SSH", h.name))?;
        if name.trim() != h.name {
            bail!("{} reports hostname `{}`", h.name, name.trim());
        }
        for other in state.hosts.iter().filter(|o| o.name != h.name) {
            let probe = format!("</dev/tcp/{}/22", other.addr);
            ssh::capture(paths, h.addr, &["bash", "-c", &probe], Duration::from_secs(10))
                .with_context(|| format!("{} cannot reach {}", h.name, other.name))?;
        }
        println!("selftest: {} ok", h.name);
    }
    Ok(())
}
