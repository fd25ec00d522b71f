//! The `bastion` topology (`cargo xtask lab up --topology bastion`, always bare): the `ha`
//! hosts on an internal bridge the controller has no address on, so it reaches them only
//! through the jump host `bastion`, as many sites are run.
//!
//! ```text
//! englab0 10.77.0.1/24 (controller)      englab1 (internal: no address for the controller)
//!   .2  mirror  (host0) ---------------- .2  mirror  (host1)
//!   .3  bastion (host0) ---------------- .3  bastion (host1; no IP forwarding: a jump host)
//!                                        .10 keepalived VIP
//!                                        .11-.13 etcd0-2, .21-.23 master0-2, .31-.33 worker0-2
//! ```
//!
//! The dual-homed hosts get their second interface from nspawn's `--network-veth-extra`
//! (controller side `vx-NAME`, put on englab1 here). The bastion and the `ha` hosts boot the bare
//! image; their `debian` user's sudo asks for a password (set once SSH answers: the lab's
//! throwaway value, in `target/lab/sudo_password`, 0600). Besides the usual files, `lab up`
//! writes `target/lab/ssh_config` (the bastion, and each host by name and by address with
//! `ProxyJump bastion`) and `target/lab/inventory.ini` (the hosts by name, as an Ansible user's
//! INI inventory). The `ha` hosts' apt and the playbook variables point at the mirror's internal
//! address.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::paths::{HostKind, Paths};
use crate::topology::{HostSpec, PREFIX_LEN};
use crate::{bare, cmd, net, procs, ssh};

/// The internal bridge.
pub(crate) const BRIDGE: &str = "englab1";
/// The jump host.
pub(crate) const NAME: &str = "bastion";
/// The bastion on the lab bridge (englab0), where the controller reaches it.
pub(crate) const ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
/// The bastion on the internal bridge.
pub(crate) const INTERNAL_ADDR: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 3);
/// The mirror on the internal bridge.
pub(crate) const MIRROR_INTERNAL_ADDR: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
/// The keepalived VIP of the `ha` hosts, on the internal bridge.
pub(crate) const VIP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 10);
/// The topology's name, as `lab up --topology` takes it and the state file records it.
pub(crate) const TOPOLOGY: &str = "bastion";
/// The second interface of a dual-homed host, inside it.
const INTERFACE: &str = "host1";
/// The inventory group of the bastion (no playbook manages it: in no inventory group).
pub(crate) const GROUP: &str = "bastion";

/// An address on the internal bridge (the controller cannot reach it).
pub(crate) fn internal(addr: Ipv4Addr) -> bool {
    addr.octets()[..3] == [10, 78, 0]
}

/// The internal address of a dual-homed host (the bastion, the mirror), else None.
fn second_address(name: &str) -> Option<Ipv4Addr> {
    match name {
        NAME => Some(INTERNAL_ADDR),
        bare::MIRROR_NAME => Some(MIRROR_INTERNAL_ADDR),
        _ => None,
    }
}

/// The controller side of a dual-homed host's second veth.
pub(crate) fn extra_veth(name: &str) -> String {
    format!("vx-{name}")
}

/// The bastion host's spec (on the lab bridge).
pub(crate) fn spec() -> HostSpec {
    HostSpec { name: NAME.to_owned(), addr: ADDR, group: GROUP.to_owned() }
}

/// nspawn's network arguments for host `name` at `addr` of a bastion lab: the internal bridge
/// for the internal hosts; the lab bridge plus a second veth for the dual-homed ones.
pub(crate) fn network_args(name: &str, addr: Ipv4Addr) -> Vec<String> {
    if internal(addr) {
        return vec![format!("--network-bridge={BRIDGE}")];
    }
    let mut args = vec![procs::bridge_arg()];
    if second_address(name).is_some() {
        args.push(format!("--network-veth-extra={}:{INTERFACE}", extra_veth(name)));
    }
    args
}

/// The binds a host of a bastion lab has beside its kind's: the second interface's network
/// file (dual-homed hosts), apt's sources at the mirror's internal address (internal hosts).
pub(crate) fn extra_binds(paths: &Paths, name: &str, addr: Ipv4Addr) -> Vec<String> {
    let bind = |from: &Path, to: &str| format!("--bind-ro={}:{to}", from.display());
    let mut binds = Vec::new();
    if second_address(name).is_some() {
        binds.push(bind(&second_network_file(paths, name), "/etc/systemd/network/11-host1.network"));
    }
    if internal(addr) {
        binds.push(bind(&sources_file(paths), "/etc/apt/sources.list.d/debian.sources"));
    }
    binds
}

fn second_network_file(paths: &Paths, name: &str) -> PathBuf {
    paths.host_dir(name).join("11-host1.network")
}

fn sources_file(paths: &Paths) -> PathBuf {
    paths.lab.join("debian.sources")
}

/// The lab's ssh_config: the bastion, and every internal host by name and address behind it.
pub(crate) fn ssh_config_path(paths: &Paths) -> PathBuf {
    paths.lab.join("ssh_config")
}

/// The `debian` user's sudo password on the bastion and the `ha` hosts (0600).
pub(crate) fn password_path(paths: &Paths) -> PathBuf {
    paths.lab.join("sudo_password")
}

/// The Ansible INI inventory of the `ha` hosts, by name.
pub(crate) fn inventory_ini_path(paths: &Paths) -> PathBuf {
    paths.lab.join("inventory.ini")
}

/// A network file for the second interface.
fn network_file(addr: Ipv4Addr) -> String {
    format!(
        "[Match]\nName={INTERFACE}\n\n[Network]\nAddress={addr}/{PREFIX_LEN}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )
}

/// The `ha` hosts' apt source: the bare image's, at the mirror's internal address.
fn sources() -> String {
    let url = bare::MIRROR_URL.replace(&bare::MIRROR_ADDR.to_string(), &MIRROR_INTERNAL_ADDR.to_string());
    format!(
        "Types: deb\nURIs: {url}\nSuites: {}\nComponents: main\nSigned-By: /etc/apt/keyrings/engine-lab-mirror.gpg\n",
        crate::image::SUITE
    )
}

/// The mirror's variables (see [`crate::labvars`]) with its internal address.
pub(crate) fn internal_vars(vars: Vec<(String, String)>) -> Vec<(String, String)> {
    let outside = format!("http://{}/", bare::MIRROR_ADDR);
    let inside = format!("http://{MIRROR_INTERNAL_ADDR}/");
    let mut vars: Vec<(String, String)> =
        vars.into_iter().map(|(k, v)| (k, v.replace(&outside, &inside))).collect();
    vars.push(("lab_vip".to_owned(), VIP.to_string()));
    vars
}

/// Text of `target/lab/ssh_config`.
pub(crate) fn ssh_config(internal_hosts: &[(&str, Ipv4Addr)], key: &Path, known_hosts: &Path) -> String {
    let mut out = String::from(
        "# Written by `cargo xtask lab up --topology bastion`; do not edit.\n\
         # The ha hosts are on an internal network: only the bastion reaches them.\n",
    );
    let _ = writeln!(out, "Host {NAME}\n  HostName {ADDR}");
    for (name, addr) in internal_hosts {
        let _ = writeln!(out, "Host {name} {addr}\n  HostName {addr}\n  ProxyJump {NAME}");
    }
    let _ = writeln!(
        out,
        "Host *\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes",
        bare::USER,
        key.display(),
        known_hosts.display()
    );
    out
}

/// Text of `target/lab/inventory.ini`: the groups' hosts by name (ssh_config gives the
/// addresses and the jump), the login, and the playbook variables.
pub(crate) fn inventory_ini(groups: &[&str], hosts: &[HostSpec], vars: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Written by `cargo xtask lab up --topology bastion`; do not edit.\n\
         # Hosts by name: `-F target/lab/ssh_config` (or it as ~/.ssh/config) reaches them.\n",
    );
    for group in groups {
        let _ = writeln!(out, "[{group}]");
        for h in hosts.iter().filter(|h| h.group == *group) {
            let _ = writeln!(out, "{} private_ip={}", h.name, h.addr);
        }
        out.push('\n');
    }
    out.push_str("[all:vars]\n");
    let _ = writeln!(out, "ansible_user={}\nansible_become=true", bare::USER);
    let _ = writeln!(out, "lab_interface={}", crate::topology::INTERFACE);
    for (name, value) in vars {
        let _ = writeln!(out, "{name}={value}");
    }
    out
}

/// A fresh throwaway password: 16 random bytes, hex.
fn new_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes what a bastion lab has beside the usual lab files: the second interfaces' network
/// files, the `ha` hosts' apt source, ssh_config, inventory.ini and the sudo password.
pub(crate) fn write_files(
    paths: &Paths,
    groups: &[&str],
    specs: &[HostSpec],
    vars: &[(String, String)],
) -> Result<()> {
    for spec in specs {
        if let Some(addr) = second_address(&spec.name) {
            fs::write(second_network_file(paths, &spec.name), network_file(addr))?;
        }
    }
    fs::write(sources_file(paths), sources())?;
    let internal_hosts: Vec<(&str, Ipv4Addr)> =
        specs.iter().filter(|s| internal(s.addr)).map(|s| (s.name.as_str(), s.addr)).collect();
    fs::write(ssh_config_path(paths), ssh_config(&internal_hosts, &paths.key(), &paths.known_hosts()))?;
    let hosts: Vec<HostSpec> = specs.iter().filter(|s| internal(s.addr)).cloned().collect();
    fs::write(inventory_ini_path(paths), inventory_ini(groups, &hosts, vars))?;
    let file = password_path(paths);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    f.write_all(new_password()?.as_bytes())?;
    Ok(())
}

/// Creates the internal bridge, without an address (idempotent).
pub(crate) fn ensure_bridge() -> Result<()> {
    if !net::exists(BRIDGE)? {
        cmd::run(Command::new("ip").args(["link", "add", BRIDGE, "type", "bridge"]))?;
    }
    cmd::run(Command::new("ip").args(["link", "set", BRIDGE, "up"]))
}

/// Removes the dual-homed hosts' second veths and the internal bridge.
pub(crate) fn remove_links() -> Result<()> {
    for link in net::links()? {
        if link.name.starts_with("vx-") || link.master.as_deref() == Some(BRIDGE) {
            net::delete(&link.name)?;
            println!("lab: removed leftover link {}", link.name);
        }
    }
    net::delete(BRIDGE)
}

/// Puts host `name`'s second veth (made by its nspawn, which `pid` is) on the internal
/// bridge, once it is there.
pub(crate) fn attach(name: &str, pid: u32) -> Result<()> {
    if second_address(name).is_none() {
        return Ok(());
    }
    let veth = extra_veth(name);
    let there = procs::wait_until(Duration::from_secs(30), || {
        !procs::running(pid) || net::exists(&veth).unwrap_or(false)
    });
    if !there || !net::exists(&veth)? {
        bail!("{name}'s second link {veth} did not appear (is its nspawn running?)");
    }
    cmd::run(Command::new("ip").args(["link", "set", &veth, "master", BRIDGE]))?;
    net::set_up(&veth, true)
}

/// `ssh -F target/lab/ssh_config` to `name` (an internal host, through the bastion), as `user`,
/// running `remote` (each word quoted) or a shell.
pub(crate) fn ssh_command(paths: &Paths, name: &str, connect_timeout: u32, remote: &[String]) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F")
        .arg(ssh_config_path(paths))
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
        .arg("-o")
        .arg(format!("ConnectTimeout={connect_timeout}"))
        .args(["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3"])
        .arg(name);
    if !remote.is_empty() {
        c.arg("--");
        c.arg(remote.iter().map(cmd::quote).collect::<Vec<_>>().join(" "));
    }
    c
}

/// Runs `remote` on `name` through the bastion with `stdin`; stdout, or None on failure or
/// after `limit`.
fn capture(paths: &Paths, name: &str, remote: &[&str], stdin: &[u8], limit: Duration) -> Option<String> {
    let remote: Vec<String> = remote.iter().map(|s| (*s).to_owned()).collect();
    ssh::capture_output(&mut ssh_command(paths, name, 5, &remote), Some(stdin), limit)
}

/// True if the internal host `name` answers SSH through the bastion.
pub(crate) fn reachable(paths: &Paths, name: &str) -> bool {
    capture(paths, name, &["true"], b"", Duration::from_secs(8)).is_some()
}

/// Waits, in parallel and until `limit` after `since`, for each internal host (name, nspawn pid)
/// to answer SSH through the bastion.
pub(crate) fn wait_ready(
    paths: &Paths,
    hosts: &[(&str, u32)],
    since: Instant,
    limit: Duration,
) -> Result<()> {
    let failed: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|&(name, pid)| {
                s.spawn(move || {
                    for _ in 0..1_000 {
                        if since.elapsed() > limit {
                            return Some(format!("{name}: no SSH through the bastion after {limit:?}"));
                        }
                        if !procs::running(pid) {
                            return Some(format!("{name}: its nspawn process exited"));
                        }
                        if reachable(paths, name) {
                            return None;
                        }
                        thread::sleep(Duration::from_millis(300));
                    }
                    Some(format!("{name}: gave up after 1000 tries"))
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap_or_else(|_| Some("probe panicked".to_owned())))
            .collect()
    });
    if !failed.is_empty() {
        bail!("hosts not SSH-ready through the bastion:\n{}", failed.join("\n"));
    }
    Ok(())
}

/// The sudoers rule that replaces the bare image's passwordless one.
const SUDOERS: &str = "debian ALL=(ALL) ALL";

/// The `debian` user of each of `hosts` (name, address, kind; the bare ones) gets the lab's
/// sudo password, and sudo starts asking for it. The password goes on ssh's stdin, never on a
/// command line.
pub(crate) fn require_sudo_password(paths: &Paths, hosts: &[(&str, Ipv4Addr, HostKind)]) -> Result<()> {
    let password = fs::read_to_string(password_path(paths)).context("cannot read the lab's sudo password")?;
    let input = format!("{}:{}\n", bare::USER, password.trim());
    let script = format!(
        "chpasswd && printf '%s\\n' {} >/etc/sudoers.d/90-cloud-init-users && chmod 0440 /etc/sudoers.d/90-cloud-init-users",
        cmd::quote(SUDOERS)
    );
    let remote = ["sudo", "-n", "sh", "-c", script.as_str()];
    let failed: Vec<&str> = thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .filter(|(_, _, kind)| *kind == HostKind::Bare)
            .map(|&(name, addr, _)| {
                let input = input.as_bytes();
                s.spawn(move || {
                    let done = if internal(addr) {
                        capture(paths, name, &remote, input, Duration::from_secs(20))
                    } else {
                        ssh::capture_with_stdin(
                            paths,
                            bare::USER,
                            addr,
                            &remote,
                            input,
                            Duration::from_secs(20),
                        )
                    };
                    (name, done.is_some())
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).filter(|(_, ok)| !ok).map(|(n, _)| n).collect()
    });
    if !failed.is_empty() {
        bail!("cannot set the sudo password on {}", failed.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    #[test]
    fn the_ha_hosts_are_internal_and_the_bastion_and_mirror_dual_homed() {
        let hosts = Topology::Bastion.hosts();
        assert_eq!(hosts.len(), 9);
        assert!(hosts.iter().all(|h| internal(h.addr)));
        assert_eq!(hosts[0].addr, Ipv4Addr::new(10, 78, 0, 11));
        assert!(
            hosts.iter().all(|h| h.addr != VIP && h.addr != INTERNAL_ADDR && h.addr != MIRROR_INTERNAL_ADDR)
        );
        assert_eq!(network_args("etcd0", hosts[0].addr), ["--network-bridge=englab1"]);
        assert_eq!(
            network_args(NAME, ADDR),
            ["--network-bridge=englab0", "--network-veth-extra=vx-bastion:host1"]
        );
        assert_eq!(network_args("mirror", bare::MIRROR_ADDR)[1], "--network-veth-extra=vx-mirror:host1");
        assert!(!internal(ADDR) && internal(INTERNAL_ADDR));
        assert!(
            network_file(INTERNAL_ADDR).contains("Name=host1\n")
                && network_file(INTERNAL_ADDR).contains("Address=10.78.0.3/24\n")
        );
    }

    #[test]
    fn ssh_config_jumps_through_the_bastion() {
        let text =
            ssh_config(&[("etcd0", Ipv4Addr::new(10, 78, 0, 11))], Path::new("/l/id"), Path::new("/l/kh"));
        assert!(text.contains("Host bastion\n  HostName 10.77.0.3\n"), "{text}");
        assert!(
            text.contains("Host etcd0 10.78.0.11\n  HostName 10.78.0.11\n  ProxyJump bastion\n"),
            "{text}"
        );
        assert!(text.contains(
            "Host *\n  User debian\n  IdentityFile /l/id\n  IdentitiesOnly yes\n  UserKnownHostsFile /l/kh\n"
        ));
    }

    #[test]
    fn apt_and_the_playbook_variables_use_the_mirror_s_internal_address() {
        assert!(sources().contains("URIs: http://10.78.0.2/debian\n"), "{}", sources());
        let vars = internal_vars(vec![
            ("kubernetes_repo".into(), "http://10.77.0.2/k8s/core:/stable:".into()),
            ("etcd_version".into(), "v3.4.23".into()),
        ]);
        assert_eq!(vars[0].1, "http://10.78.0.2/k8s/core:/stable:");
        assert_eq!(vars[1].1, "v3.4.23");
        assert!(vars.contains(&("lab_vip".into(), "10.78.0.10".into())));
    }

    #[test]
    fn the_ini_inventory_names_the_hosts() {
        let hosts = Topology::Bastion.hosts();
        let text =
            inventory_ini(Topology::Bastion.groups(), &hosts, &[("lab_vip".into(), "10.78.0.10".into())]);
        assert!(text.contains("[etcd]\netcd0 private_ip=10.78.0.11\n"), "{text}");
        assert!(text.contains(
            "[all:vars]\nansible_user=debian\nansible_become=true\nlab_interface=host0\nlab_vip=10.78.0.10\n"
        ));
        assert!(!text.contains("password"));
    }
}
