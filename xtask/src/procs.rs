//! Lab host processes: finding the nspawn processes that belong to the lab, checking
//! whether one is alive, and signalling whole process trees. Pure /proc reads plus `kill`.

use std::collections::HashMap;
use std::fs;
use std::process::{Child, Command};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cmd;
use crate::topology::BRIDGE;

/// The argument that marks an nspawn process as one of this lab's hosts.
pub(crate) fn bridge_arg() -> String {
    format!("--network-bridge={BRIDGE}")
}

/// Hosts booted by this very process. Only `boot` adds and only `reap` removes; kept so a
/// long-running xtask (`cargo xtask test`) can reap its dead hosts instead of leaving zombies.
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

pub(crate) fn adopt(child: Child) {
    CHILDREN.lock().unwrap_or_else(PoisonError::into_inner).push(child);
}

/// Reaps any of our own children that have exited.
pub(crate) fn reap() {
    let mut children = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
    children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// (state, parent pid) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let mut words = after.split_whitespace();
    let state = words.next()?.chars().next()?;
    let ppid = words.next()?.parse().ok()?;
    Some((state, ppid))
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// True while `pid` exists and is not a zombie. For a process this program just started
/// (its command line may not show nspawn's arguments yet).
pub(crate) fn running(pid: u32) -> bool {
    reap();
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

/// The machine name of a lab nspawn process, if `pid` is one (and not a zombie).
pub(crate) fn lab_machine(pid: u32) -> Option<String> {
    reap();
    if stat(pid)?.0 == 'Z' {
        return None;
    }
    let args = cmdline(pid)?;
    // The `bastion` topology's internal hosts are on its internal bridge only.
    let internal = format!("--network-bridge={}", crate::bastion::BRIDGE);
    if !args.iter().any(|a| *a == bridge_arg() || *a == internal) {
        return None;
    }
    args.iter().find_map(|a| a.strip_prefix("--machine=")).map(str::to_owned)
}

/// True if `pid` is the live nspawn process of host `name`.
pub(crate) fn is_host(pid: u32, name: &str) -> bool {
    lab_machine(pid).is_some_and(|m| m == name)
}

/// Every live lab nspawn process on this machine: pid -> machine name. Finds hosts of an
/// earlier lab whose state file is gone. nspawn's short-lived setup children share its
/// command line, so only the topmost process of each machine is kept.
pub(crate) fn lab_processes() -> HashMap<u32, String> {
    let found: HashMap<u32, String> =
        all_pids().into_iter().filter_map(|p| Some((p, lab_machine(p)?))).collect();
    found
        .iter()
        .filter(|(pid, _)| stat(**pid).is_none_or(|(_, ppid)| !found.contains_key(&ppid)))
        .map(|(p, m)| (*p, m.clone()))
        .collect()
}

fn is_nspawn_container_init(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == b"container=systemd-nspawn"))
}

/// Container inits of lab hosts whose nspawn process is gone (someone `kill -9`ed nspawn
/// alone): their root is an overlay over a lab image and their parent is not nspawn.
/// Nothing else would ever stop them.
pub(crate) fn orphan_containers() -> Vec<u32> {
    let marker = format!("lowerdir={}/", crate::image::IMAGES_DIR);
    all_pids()
        .into_iter()
        .filter(|&pid| {
            let Some((state, ppid)) = stat(pid) else {
                return false;
            };
            let parent_comm = fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
            state != 'Z'
                && parent_comm.trim() != "systemd-nspawn"
                && is_nspawn_container_init(pid)
                && !is_nspawn_container_init(ppid)
                && fs::read_to_string(format!("/proc/{pid}/mountinfo"))
                    .is_ok_and(|m| m.lines().any(|l| l.contains(" / / ") && l.contains(&marker)))
        })
        .collect()
}

/// `pid` and all its descendants.
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids().into_iter().filter_map(|p| Some((p, stat(p)?.1))).collect();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < 100_000 {
        let cur = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}

pub(crate) fn signal(pids: &[u32], sig: &str) -> Result<()> {
    if pids.is_empty() {
        return Ok(());
    }
    // Some may exit between listing and signalling; `kill` then fails for those only.
    let mut kill = Command::new("kill");
    kill.arg(format!("-{sig}")).args(pids.iter().map(u32::to_string));
    cmd::succeeds(&mut kill);
    Ok(())
}

/// Stops lab hosts: SIGTERM (nspawn halts the machine cleanly), then after `grace`
/// SIGKILL to the whole tree of any that hang. Returns the ones still alive (should be none).
pub(crate) fn stop(hosts: &[(u32, String)], grace: Duration) -> Result<Vec<String>> {
    let pids: Vec<u32> = hosts.iter().map(|(p, _)| *p).collect();
    signal(&pids, "TERM")?;
    let alive = || -> Vec<&(u32, String)> { hosts.iter().filter(|(p, n)| is_host(*p, n)).collect() };
    wait_until(grace, || alive().is_empty());
    let hung = alive();
    if !hung.is_empty() {
        let names: Vec<&str> = hung.iter().map(|(_, n)| n.as_str()).collect();
        eprintln!("lab: {} did not halt in {:?}; killing", names.join(" "), grace);
        for (pid, _) in &hung {
            signal(&tree(*pid), "KILL")?;
        }
        wait_until(Duration::from_secs(5), || alive().is_empty());
    }
    Ok(alive().into_iter().map(|(_, n)| n.clone()).collect())
}

/// Abruptly kills one host: SIGKILL to nspawn and everything under it.
pub(crate) fn kill_tree(pid: u32, name: &str) -> Result<bool> {
    signal(&tree(pid), "KILL")?;
    Ok(wait_until(Duration::from_secs(5), || !is_host(pid, name)))
}

/// Polls `done` every 50 ms until it holds or `limit` passes. Returns whether it held.
pub(crate) fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    for _ in 0..100_000 {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
