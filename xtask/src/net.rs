//! The lab bridge and the hosts' controller-side veths (`vb-NAME`, made by nspawn).

use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;
use crate::topology::{BRIDGE, BRIDGE_ADDR, PREFIX_LEN};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) master: Option<String>,
    pub(crate) up: bool,
}

/// The controller-side veth nspawn makes for host `name`.
pub(crate) fn veth(name: &str) -> String {
    format!("vb-{name}")
}

pub(crate) fn links() -> Result<Vec<Link>> {
    let text = cmd::output(Command::new("ip").args(["-o", "link", "show"]))?;
    Ok(text.lines().filter_map(parse_link).collect())
}

/// One line of `ip -o link show`.
fn parse_link(line: &str) -> Option<Link> {
    let mut words = line.split_whitespace();
    words.next()?;
    let name = words.next()?.trim_end_matches(':');
    let name = name.split('@').next()?.to_owned();
    let flags = words.next()?;
    let rest: Vec<&str> = words.collect();
    let master =
        rest.iter().position(|w| *w == "master").and_then(|i| rest.get(i + 1)).map(|m| (*m).to_owned());
    let up = flags.trim_matches(['<', '>']).split(',').any(|f| f == "UP");
    Some(Link { name, master, up })
}

pub(crate) fn exists(name: &str) -> Result<bool> {
    Ok(links()?.iter().any(|l| l.name == name))
}

/// Creates `englab0` with 10.77.0.1/24 and brings it up (idempotent).
pub(crate) fn ensure_bridge() -> Result<()> {
    if !exists(BRIDGE)? {
        cmd::run(Command::new("ip").args(["link", "add", BRIDGE, "type", "bridge"]))?;
    }
    let cidr = format!("{BRIDGE_ADDR}/{PREFIX_LEN}");
    let addrs = cmd::output(Command::new("ip").args(["-o", "-4", "addr", "show", "dev", BRIDGE]))?;
    if !addrs.split_whitespace().any(|w| w == cidr) {
        cmd::run(Command::new("ip").args(["addr", "add", &cidr, "dev", BRIDGE]))?;
    }
    cmd::run(Command::new("ip").args(["link", "set", BRIDGE, "up"]))
}

/// Deletes link `name`. A link that is gone is the goal reached, not an error, also when it
/// goes between the check and the `ip link del`: a host's veth vanishes by itself when the
/// host's network namespace goes away (a killed host's does, a moment after the kill).
pub(crate) fn delete(name: &str) -> Result<()> {
    delete_with(|| exists(name), || cmd::run(Command::new("ip").args(["link", "del", name])))
        .with_context(|| format!("cannot delete link {name}"))
}

/// [`delete`] with its two steps passed in: `del` failed, and the link is still there.
fn delete_with(exists: impl Fn() -> Result<bool>, del: impl FnOnce() -> Result<()>) -> Result<()> {
    if !exists()? {
        return Ok(());
    }
    match del() {
        Err(error) if exists()? => Err(error),
        _ => Ok(()),
    }
}

pub(crate) fn set_up(name: &str, up: bool) -> Result<()> {
    let state = if up { "up" } else { "down" };
    cmd::run(Command::new("ip").args(["link", "set", name, state]))
}

/// Raises the inotify limits: with the default 128 instances only ~18 hosts boot.
pub(crate) fn raise_inotify_limits() -> Result<()> {
    cmd::run(Command::new("sysctl").args([
        "-q",
        "-w",
        "fs.inotify.max_user_instances=1024",
        "fs.inotify.max_user_watches=524288",
    ]))
}

/// The kernel modules a Kubernetes node needs, each with the file that shows it is in the
/// running kernel (loaded, or built in: a built-in module may have no `/sys/module` entry).
const NODE_MODULES: &[(&str, &str)] =
    &[("overlay", "/sys/module/overlay"), ("br_netfilter", "/proc/sys/net/bridge/bridge-nf-call-iptables")];

/// Loads `overlay` and `br_netfilter` on this machine when they are missing: a lab host is a
/// container and cannot load kernel modules, so the playbooks' `modprobe` tasks find them
/// here. Best effort: a kernel without them (or without `modprobe`) gets a note, not a failure.
pub(crate) fn load_node_modules() {
    for (name, evidence) in NODE_MODULES {
        if std::path::Path::new(evidence).exists() {
            continue;
        }
        let loaded = Command::new("modprobe").arg("--").arg(name).status().is_ok_and(|s| s.success());
        if !loaded {
            println!(
                "lab: note: kernel module {name} is not loaded and `modprobe {name}` failed; tasks that need it will fail"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use anyhow::anyhow;

    use super::*;

    #[test]
    fn a_link_gone_before_or_during_its_deletion_is_deleted() {
        let never_called = || -> Result<()> { panic!("nothing to delete") };
        assert!(delete_with(|| Ok(false), never_called).is_ok(), "gone before");
        // There when checked, gone when deleted: `RTNETLINK answers: No such device`.
        let there = Cell::new(true);
        let vanished = || {
            there.set(false);
            Err(anyhow!("RTNETLINK answers: No such device"))
        };
        assert!(delete_with(|| Ok(there.get()), vanished).is_ok(), "gone during");
        assert!(delete_with(|| Ok(true), || Ok(())).is_ok());
        let refused = delete_with(|| Ok(true), || Err(anyhow!("Operation not permitted")));
        assert!(refused.is_err_and(|e| e.to_string().contains("not permitted")), "still there: an error");
    }

    #[test]
    fn parses_ip_link_lines() {
        let line = "7: vb-etcd0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master englab0 state UP mode DEFAULT group default qlen 1000\\    link/ether aa:bb:cc:dd:ee:ff brd ff:ff:ff:ff:ff:ff link-netnsid 0";
        assert_eq!(
            parse_link(line),
            Some(Link { name: "vb-etcd0".into(), master: Some("englab0".into()), up: true })
        );
        let down = "3: englab0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT";
        assert_eq!(parse_link(down), Some(Link { name: "englab0".into(), master: None, up: false }));
    }
}
