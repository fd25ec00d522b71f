//! Each lab host's own cgroup: `engine-lab/NAME` in every hierarchy that the host's systemd
//! manages (the cgroup2 one, and cgroup v1's `name=systemd` where it is mounted).
//!
//! nspawn with `--keep-unit` does not make a cgroup for its container: it splits the cgroup
//! it was started in into `supervisor` (itself) and `payload` (the container, whose systemd
//! owns everything below it). Hosts all started from one cgroup therefore shared one tree:
//! every host's `ssh.service` was the same `/payload/system.slice/ssh.service`. When the hosts
//! halted together, one host's systemd removed a unit cgroup that another had just created for
//! its own unit; seen in a teardown of 59 hosts, `systemd-halt.service: Failed to attach to
//! cgroup /system.slice/systemd-halt.service: No such device`, so `halt.target` failed, that
//! host's systemd stayed `stopping` with no job left, and only SIGKILL ended it. Starting each
//! nspawn in a cgroup of its own gives each host's systemd a tree nobody else touches.
//!
//! The boot wrapper (see `host::boot`) moves itself into the host's cgroup before it becomes
//! nspawn. `lab down` removes the trees once every host is gone; a host's tree left by a
//! `kill` is removed when that host boots again.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The folder of the lab's cgroups, at the top of each hierarchy.
const LAB: &str = "engine-lab";

/// The mount points of the hierarchies a host's systemd manages: cgroup2, and cgroup v1
/// with `name=systemd`. Other v1 hierarchies (memory, cpu...) are left as they are.
pub(crate) fn hierarchies() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo").map(|text| parse_hierarchies(&text)).unwrap_or_default()
}

/// From `/proc/self/mountinfo`: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - TYPE SOURCE SUPEROPTIONS`.
fn parse_hierarchies(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let point = mount.split(' ').nth(4)?;
            let mut fs = fs.split(' ');
            let kind = fs.next()?;
            let options = fs.nth(1).unwrap_or_default();
            let managed =
                kind == "cgroup2" || (kind == "cgroup" && options.split(',').any(|o| o == "name=systemd"));
            managed.then(|| PathBuf::from(point))
        })
        .collect()
}

/// A fresh cgroup for host `name` in each hierarchy (an old one, left by a killed host, is
/// removed first). Returns the `cgroup.procs` files that the boot wrapper writes its pid to.
pub(crate) fn prepare(name: &str) -> Result<Vec<PathBuf>> {
    let mut procs = Vec::new();
    for root in hierarchies() {
        let dir = root.join(LAB).join(name);
        remove_tree(&dir)?;
        fs::create_dir_all(&dir).with_context(|| format!("cannot create cgroup {}", dir.display()))?;
        procs.push(dir.join("cgroup.procs"));
    }
    Ok(procs)
}

/// Removes every lab cgroup (after every host is gone). A cgroup that still holds a process
/// cannot be removed: that is an error, since a lab host must then still be running.
pub(crate) fn remove_all() -> Result<()> {
    for root in hierarchies() {
        remove_tree(&root.join(LAB))?;
    }
    Ok(())
}

/// Every lab cgroup, as `HIERARCHY/engine-lab/...` paths (for the selftest's snapshots).
pub(crate) fn list() -> Vec<String> {
    let mut out = Vec::new();
    for root in hierarchies() {
        let mut stack = vec![root.join(LAB)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            out.push(dir.display().to_string());
            stack.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    out.sort();
    out
}

/// Removes the cgroup `dir` and the cgroups below it, deepest first. A cgroup is removed with
/// `rmdir` alone (its control files are not files to unlink); one that is gone already is fine.
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list cgroup {}", dir.display())),
    };
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list cgroup {}", dir.display()))?.path();
        if path.is_dir() {
            remove_tree(&path)?;
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e).with_context(|| {
            format!("cannot remove cgroup {} (does a process still run in it?)", dir.display())
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_and_name_systemd_hierarchies() {
        let mountinfo = "\
30 24 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:35 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
22 1 0:21 / /proc rw,nosuid - proc proc rw";
        assert_eq!(
            parse_hierarchies(mountinfo),
            [PathBuf::from("/sys/fs/cgroup/systemd"), PathBuf::from("/sys/fs/cgroup/unified")]
        );
        let unified = "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(parse_hierarchies(unified), [PathBuf::from("/sys/fs/cgroup")]);
    }

    /// On a plain folder tree (a cgroup tree is removed the same way, deepest first).
    #[test]
    fn removes_a_tree_deepest_first_and_a_missing_one_is_fine() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-cgroup-{}", std::process::id()));
        fs::create_dir_all(dir.join("payload/system.slice/ssh.service"))?;
        fs::create_dir_all(dir.join("supervisor"))?;
        remove_tree(&dir)?;
        assert!(!dir.exists());
        remove_tree(&dir)
    }
}
