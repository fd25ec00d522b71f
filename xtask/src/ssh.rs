//! SSH to lab hosts with the system `ssh`: the lab key, the lab's known_hosts and strict
//! host-key checking, never a password prompt.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cmd;
use crate::paths::Paths;
use crate::procs;

/// `ssh` with the lab's options, to `user@addr`, running `remote` (each word quoted for
/// the remote shell, so arguments arrive as given) or an interactive shell when empty.
pub(crate) fn command(
    paths: &Paths,
    user: &str,
    addr: Ipv4Addr,
    connect_timeout: u32,
    remote: &[String],
) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-i")
        .arg(paths.key())
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", paths.known_hosts().display()))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR"])
        .arg("-o")
        .arg(format!("ConnectTimeout={connect_timeout}"))
        .args(["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3"])
        .arg(format!("{user}@{addr}"));
    if !remote.is_empty() {
        c.arg("--");
        c.arg(remote.iter().map(cmd::quote).collect::<Vec<_>>().join(" "));
    }
    c
}

pub(crate) fn port_open(addr: Ipv4Addr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((addr, 22)), timeout).is_ok()
}

/// Runs `remote` as root on `addr`; stdout, or None on failure or after `limit`.
pub(crate) fn capture(paths: &Paths, addr: Ipv4Addr, remote: &[&str], limit: Duration) -> Option<String> {
    capture_as(paths, "root", addr, remote, limit)
}

/// Runs `remote` as `user` on `addr`; stdout, or None on failure or after `limit`.
pub(crate) fn capture_as(
    paths: &Paths,
    user: &str,
    addr: Ipv4Addr,
    remote: &[&str],
    limit: Duration,
) -> Option<String> {
    capture_with_stdin(paths, user, addr, remote, b"", limit)
}

/// Like [`capture_as`], writing `stdin` to the remote command's standard input.
pub(crate) fn capture_with_stdin(
    paths: &Paths,
    user: &str,
    addr: Ipv4Addr,
    remote: &[&str],
    stdin: &[u8],
    limit: Duration,
) -> Option<String> {
    let remote: Vec<String> = remote.iter().map(|s| (*s).to_owned()).collect();
    // A loaded machine (2 cores shared with every host) can take seconds to accept.
    let connect_timeout = u32::try_from(limit.as_secs().clamp(2, 10)).unwrap_or(10);
    let mut ssh = command(paths, user, addr, connect_timeout, &remote);
    capture_output(&mut ssh, (!stdin.is_empty()).then_some(stdin), limit)
}

/// Runs `command` with `stdin` written to it (`None`: no standard input), for at most `limit`
/// (then killed): its standard output if it exited 0.
pub(crate) fn capture_output(command: &mut Command, stdin: Option<&[u8]>, limit: Duration) -> Option<String> {
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    if let (Some(mut input), Some(bytes)) = (child.stdin.take(), stdin) {
        std::io::Write::write_all(&mut input, bytes).ok()?;
    }
    let done = procs::wait_until(limit, || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        child.kill().ok();
        child.wait().ok();
        return None;
    }
    let out = child.wait_with_output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True if `addr` accepts the lab key for `user` with the known host key.
pub(crate) fn reachable(paths: &Paths, user: &str, addr: Ipv4Addr) -> bool {
    port_open(addr, Duration::from_millis(500))
        && capture_as(paths, user, addr, &["true"], Duration::from_secs(5)).is_some()
}

/// A host being waited for: name, address, nspawn pid, login user.
pub(crate) type Waiting<'a> = (&'a str, Ipv4Addr, u32, &'a str);

/// Waits, in parallel and for at most `limit`, until every host answers SSH. Fails early
/// when a host's nspawn process dies. Returns each host's time to ready, from `since`.
pub(crate) fn wait_ready(
    paths: &Paths,
    hosts: &[Waiting<'_>],
    since: Instant,
    limit: Duration,
) -> Result<Vec<(String, Duration)>> {
    let results: Vec<(String, Result<Duration, String>)> = thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|&(_, addr, pid, user)| {
                s.spawn(move || {
                    for _ in 0..10_000 {
                        if since.elapsed() > limit {
                            return Err(format!("no SSH after {limit:?}"));
                        }
                        if !procs::running(pid) {
                            return Err("its nspawn process exited".to_owned());
                        }
                        if port_open(addr, Duration::from_millis(200)) {
                            if capture_as(paths, user, addr, &["true"], Duration::from_secs(5)).is_some() {
                                return Ok(since.elapsed());
                            }
                        } else {
                            thread::sleep(Duration::from_millis(100));
                        }
                    }
                    Err("gave up after 10000 tries".to_owned())
                })
            })
            .collect();
        hosts
            .iter()
            .zip(handles)
            .map(|((name, _, _, _), h)| {
                let r = h.join().unwrap_or_else(|_| Err("probe thread panicked".to_owned()));
                ((*name).to_owned(), r)
            })
            .collect()
    });
    let mut ready = Vec::new();
    let mut failed = Vec::new();
    for (name, r) in results {
        match r {
            Ok(t) => ready.push((name, t)),
            Err(why) => {
                let log = paths.host_dir(&name).join("console.log");
                let tail = std::fs::read_to_string(&log).map(|t| cmd::tail(&t, 8)).unwrap_or_default();
                failed.push(format!("{name}: {why}; {}:\n{tail}", log.display()));
            }
        }
    }
    if !failed.is_empty() {
        bail!("hosts not SSH-ready:\n{}", failed.join("\n"));
    }
    Ok(ready)
}
