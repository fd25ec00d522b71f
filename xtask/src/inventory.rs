//! The lab's `inventory.yml` (read by the engine and by `ansible-playbook -i`) and its
//! `known_hosts`. Rendered by hand so the file has exactly the documented shape.

use std::fmt::Write as _;
use std::path::Path;

use crate::topology::{INTERFACE, VIP};

/// One host: name, address, group, and a bare host's Debian release (its `lab_debian` var).
pub(crate) type Entry<'a> = (&'a str, std::net::Ipv4Addr, &'a str, Option<u8>);

/// A YAML scalar: plain when that is unambiguous, otherwise a double-quoted string.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !s.starts_with(['-', '.']);
    if plain { s.to_owned() } else { serde_json::Value::String(s.to_owned()).to_string() }
}

/// How the engine logs in: as root, or as a user who becomes root through sudo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login<'a> {
    Root,
    Become(&'a str),
}

pub(crate) fn render(
    groups: &[&str],
    hosts: &[Entry<'_>],
    key: &Path,
    known_hosts: &Path,
    login: Login<'_>,
    vars: &[(String, String)],
) -> String {
    let key = key.to_string_lossy();
    let kh = known_hosts.to_string_lossy();
    let common = format!("-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes");
    let mut out = String::new();
    out.push_str("# Written by `cargo xtask lab up` for this lab; do not edit.\n");
    out.push_str("all:\n  vars:\n");
    match login {
        Login::Root => out.push_str("    ansible_user: root\n"),
        Login::Become(user) => {
            let _ = writeln!(out, "    ansible_user: {}\n    ansible_become: true", scalar(user));
        }
    }
    out.push_str("    ansible_port: 22\n");
    let _ = writeln!(out, "    ansible_ssh_private_key_file: {}", scalar(&key));
    let _ = writeln!(out, "    ansible_ssh_common_args: {}", scalar(&common));
    let _ = writeln!(out, "    engine_known_hosts: {}", scalar(&kh));
    // A lab whose VIP is elsewhere (the `bastion` topology's) names it in `vars`.
    let vip = vars.iter().find(|(n, _)| n == "lab_vip").map_or_else(|| VIP.to_string(), |(_, v)| v.clone());
    let _ = writeln!(out, "    lab_vip: {vip}\n    lab_interface: {INTERFACE}");
    for (name, value) in vars.iter().filter(|(n, _)| n != "lab_vip") {
        let _ = writeln!(out, "    {name}: {}", scalar(value));
    }
    out.push_str("  children:\n");
    for group in groups {
        let _ = writeln!(out, "    {group}:\n      hosts:");
        for (name, addr, _, debian) in hosts.iter().filter(|(_, _, g, _)| g == group) {
            let release = debian.map(|d| format!(", lab_debian: {d}")).unwrap_or_default();
            let _ = writeln!(out, "        {name}: {{ansible_host: {addr}, private_ip: {addr}{release}}}");
        }
    }
    out
}

/// `known_hosts`: one line per host, `name,address keytype key`.
pub(crate) fn known_hosts(hosts: &[(&str, std::net::Ipv4Addr, &str)]) -> String {
    hosts
        .iter()
        .map(|(name, addr, pubkey)| {
            let key: Vec<&str> = pubkey.split_whitespace().take(2).collect();
            format!("{name},{addr} {}\n", key.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;
    use serde_yaml_ng::Value;

    fn render_topology(t: Topology) -> String {
        let hosts = t.hosts();
        let entries: Vec<Entry<'_>> =
            hosts.iter().map(|h| (h.name.as_str(), h.addr, h.group.as_str(), None)).collect();
        render(
            t.groups(),
            &entries,
            Path::new("/r/target/lab/id_ed25519"),
            Path::new("/r/target/lab/known_hosts"),
            Login::Root,
            &[],
        )
    }

    #[test]
    fn ha_inventory_text() {
        let text = render_topology(Topology::Ha);
        let want = "\
# Written by `cargo xtask lab up` for this lab; do not edit.
all:
  vars:
    ansible_user: root
    ansible_port: 22
    ansible_ssh_private_key_file: /r/target/lab/id_ed25519
    ansible_ssh_common_args: \"-o UserKnownHostsFile=/r/target/lab/known_hosts -o StrictHostKeyChecking=yes\"
    engine_known_hosts: /r/target/lab/known_hosts
    lab_vip: 10.77.0.10
    lab_interface: host0
  children:
    etcd:
      hosts:
        etcd0: {ansible_host: 10.77.0.11, private_ip: 10.77.0.11}
        etcd1: {ansible_host: 10.77.0.12, private_ip: 10.77.0.12}
        etcd2: {ansible_host: 10.77.0.13, private_ip: 10.77.0.13}
    masters:
      hosts:
        master0: {ansible_host: 10.77.0.21, private_ip: 10.77.0.21}
        master1: {ansible_host: 10.77.0.22, private_ip: 10.77.0.22}
        master2: {ansible_host: 10.77.0.23, private_ip: 10.77.0.23}
    workers:
      hosts:
        worker0: {ansible_host: 10.77.0.31, private_ip: 10.77.0.31}
        worker1: {ansible_host: 10.77.0.32, private_ip: 10.77.0.32}
        worker2: {ansible_host: 10.77.0.33, private_ip: 10.77.0.33}
";
        assert_eq!(text, want);
    }

    #[test]
    fn inventory_parses_as_yaml() -> anyhow::Result<()> {
        let v: Value = serde_yaml_ng::from_str(&render_topology(Topology::Nodes(3)))?;
        let vars = &v["all"]["vars"];
        assert_eq!(vars["ansible_port"], Value::from(22));
        assert_eq!(vars["lab_vip"], Value::from("10.77.0.10"));
        let h02 = &v["all"]["children"]["nodes"]["hosts"]["h02"];
        assert_eq!(h02["ansible_host"], Value::from("10.77.0.102"));
        assert_eq!(h02["private_ip"], Value::from("10.77.0.102"));
        let etcd: Value = serde_yaml_ng::from_str(&render_topology(Topology::Etcd))?;
        let children = etcd["all"]["children"].as_mapping().map(|m| m.len());
        assert_eq!(children, Some(1));
        Ok(())
    }

    #[test]
    fn odd_paths_are_quoted() -> anyhow::Result<()> {
        let text = render(&["g"], &[], Path::new("/a b/k#1"), Path::new("/kh"), Login::Root, &[]);
        let v: Value = serde_yaml_ng::from_str(&text)?;
        assert_eq!(v["all"]["vars"]["ansible_ssh_private_key_file"], Value::from("/a b/k#1"));
        Ok(())
    }

    #[test]
    fn a_bare_lab_logs_in_as_debian_and_becomes_root() -> anyhow::Result<()> {
        let hosts = Topology::Ha.hosts();
        let releases = crate::bare::assign(&[12, 13], hosts.len())?;
        let entries: Vec<Entry<'_>> = hosts
            .iter()
            .zip(&releases)
            .map(|(h, d)| (h.name.as_str(), h.addr, h.group.as_str(), Some(*d)))
            .collect();
        let text = render(
            Topology::Ha.groups(),
            &entries,
            Path::new("/k"),
            Path::new("/kh"),
            Login::Become("debian"),
            &[("kubernetes_repo".to_owned(), "http://10.77.0.2/k8s/core:/stable:".to_owned())],
        );
        assert!(
            text.contains("\n    ansible_user: debian\n    ansible_become: true\n    ansible_port: 22\n"),
            "{text}"
        );
        let v: Value = serde_yaml_ng::from_str(&text)?;
        assert_eq!(v["all"]["vars"]["ansible_become"], Value::from(true));
        assert_eq!(v["all"]["vars"]["ansible_user"], Value::from("debian"));
        assert_eq!(v["all"]["vars"]["kubernetes_repo"], Value::from("http://10.77.0.2/k8s/core:/stable:"));
        let children = &v["all"]["children"];
        let debian = |group: &str, host: &str| children[group]["hosts"][host]["lab_debian"].clone();
        assert_eq!(debian("etcd", "etcd0"), Value::from(12));
        assert_eq!(debian("etcd", "etcd1"), Value::from(13));
        assert_eq!(debian("masters", "master0"), Value::from(13));
        assert_eq!(debian("workers", "worker2"), Value::from(12));
        Ok(())
    }

    #[test]
    fn known_hosts_lines() {
        let lines =
            known_hosts(&[("etcd0", std::net::Ipv4Addr::new(10, 77, 0, 11), "ssh-ed25519 AAAAC3Nz etcd0\n")]);
        assert_eq!(lines, "etcd0,10.77.0.11 ssh-ed25519 AAAAC3Nz\n");
    }
}
