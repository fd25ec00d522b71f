//! One lab host: its files on the controller (network file, SSH host key) and booting it
//! as a systemd-nspawn container of the shared, read-only image.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::paths::{HostKind, Paths};
use crate::procs;
use crate::topology::{HostSpec, INTERFACE, PREFIX_LEN};

/// The host's systemd-networkd file. Named `10-host0.network` so it wins over the image's
/// own `80-container-host0.network` (which would give only a link-local address).
/// No default gateway: lab hosts talk only to each other and to the controller.
pub(crate) fn network_file(addr: std::net::Ipv4Addr) -> String {
    format!(
        "[Match]\nName={INTERFACE}\n\n[Network]\nAddress={addr}/{PREFIX_LEN}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )
}

/// Generates an ed25519 key pair at `path` (and `path.pub`), replacing any old one.
pub(crate) fn keygen(path: &Path, comment: &str) -> Result<()> {
    for p in [path.to_path_buf(), path.with_extension("pub")] {
        if p.exists() {
            fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    cmd::run(
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"]).arg(path),
    )?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

/// Writes the host's network file and a fresh SSH host key. Returns the public key line.
pub(crate) fn prepare(paths: &Paths, spec: &HostSpec) -> Result<String> {
    let dir = paths.host_dir(&spec.name);
    fs::create_dir_all(dir.join("ssh")).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::write(dir.join("10-host0.network"), network_file(spec.addr))?;
    let key = dir.join("ssh/ssh_host_ed25519_key");
    keygen(&key, &spec.name)?;
    let public = key.with_extension("pub");
    fs::read_to_string(&public).with_context(|| format!("cannot read {}", public.display()))
}

/// Where the mirror host's nginx serves from.
const WEB_ROOT: &str = "/var/www/html";

/// Starts the host; returns the nspawn pid. nspawn runs in its own session (`setsid`
/// execs in place, so the pid is nspawn's), so a Ctrl-C in the terminal does not reach it,
/// and in the host's own cgroup (see [`crate::cgroup`]).
/// `bash -c` script, run as `bash -c SCRIPT bash CGROUP_PROCS... -- COMMAND...`: move into
/// each cgroup (its pid into each `cgroup.procs`), close inherited descriptors 3 and up,
/// then `exec COMMAND...`.
const ENTER_CGROUPS_CLOSE_FDS_THEN_EXEC: &str = "while [ \"$1\" != -- ]; do echo $$ >\"$1\" || exit 1; shift; done; shift; for f in /proc/$$/fd/*; do n=${f##*/}; if [ \"$n\" -gt 2 ]; then eval \"exec $n>&-\"; fi; done; exec \"$@\"";

/// The binds that make a host of `kind` what it is, beside its network file and host key: who
/// may log in, and the stand-ins (default image), the lab key for apt (bare) or the package
/// mirror's files (mirror; `mirror_repos` are its directories, Debian 12's first: one is bound
/// read-only at the web root, several are stacked there as one read-only overlay).
pub(crate) fn kind_binds(paths: &Paths, kind: HostKind, mirror_repos: &[PathBuf]) -> Result<Vec<String>> {
    let bind = |from: &Path, to: &str| format!("--bind-ro={}:{to}", from.display());
    Ok(match kind {
        HostKind::Lab => [
            bind(&paths.authorized_keys_root(), "/root/.ssh/authorized_keys"),
            bind(&paths.authorized_keys_deploy(), "/home/deploy/.ssh/authorized_keys"),
        ]
        .into_iter()
        .chain(crate::standins::bind_args(paths))
        .collect(),
        HostKind::Bare => vec![
            bind(&paths.authorized_keys_deploy(), "/home/debian/.ssh/authorized_keys"),
            bind(&crate::bare::public_key(), "/etc/apt/keyrings/engine-lab-mirror.gpg"),
            crate::standins::api_bind(paths),
        ],
        HostKind::Mirror => {
            let serve = match mirror_repos {
                [] => bail!("the mirror host needs the package mirror's directory"),
                [one] => bind(one, WEB_ROOT),
                several => {
                    let mut dirs: Vec<String> = several.iter().map(|d| d.display().to_string()).collect();
                    if dirs.iter().any(|d| d.contains([':', '\\'])) {
                        bail!(
                            "mirror directories must not contain ':' or '\\' (nspawn --overlay-ro syntax): {dirs:?}"
                        );
                    }
                    dirs.push(WEB_ROOT.to_owned());
                    format!("--overlay-ro={}", dirs.join(":"))
                }
            };
            vec![bind(&paths.authorized_keys_root(), "/root/.ssh/authorized_keys"), serve]
        }
    })
}

/// Boots host `name` from `image` with its network file, its host key and `binds`
/// (from [`kind_binds`]).
pub(crate) fn boot(paths: &Paths, image: &Path, name: &str, binds: &[String]) -> Result<u32> {
    boot_on(paths, image, name, &[procs::bridge_arg()], binds)
}

/// [`boot`] with nspawn's network arguments `network` instead of the lab bridge's (see
/// [`crate::bastion::network_args`]).
pub(crate) fn boot_on(
    paths: &Paths,
    image: &Path,
    name: &str,
    network: &[String],
    binds: &[String],
) -> Result<u32> {
    let dir = paths.host_dir(name);
    let log = File::create(dir.join("console.log")).context("cannot create console.log")?;
    let cgroups = crate::cgroup::prepare(name)?;
    let bind = |from: &Path, to: &str| format!("--bind-ro={}:{to}", from.display());
    // The host must not keep descriptors its starter inherited: a `flock` around `lab up`
    // would stay locked as long as the host runs. bash (dash knows only descriptors 0-9)
    // enters the host's cgroups, closes every descriptor above 2, then becomes
    // `setsid systemd-nspawn` (same pid).
    let mut c = Command::new("bash");
    c.args(["-c", ENTER_CGROUPS_CLOSE_FDS_THEN_EXEC, "bash"])
        .args(&cgroups)
        .args(["--", "setsid", "systemd-nspawn"])
        .arg("-D")
        .arg(image)
        .args(["--volatile=overlay", "--boot", "--register=no", "--keep-unit", "--console=passive"])
        .arg(format!("--machine={name}"))
        .arg(format!("--hostname={name}"))
        .args(network)
        .arg(bind(&dir.join("10-host0.network"), "/etc/systemd/network/10-host0.network"))
        .arg(bind(&dir.join("ssh/ssh_host_ed25519_key"), "/etc/ssh/ssh_host_ed25519_key"))
        .arg(bind(&dir.join("ssh/ssh_host_ed25519_key.pub"), "/etc/ssh/ssh_host_ed25519_key.pub"))
        .args(binds)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let child = c.spawn().with_context(|| format!("cannot start `{}`", cmd::display(&c)))?;
    let pid = child.id();
    procs::adopt(child);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_names_host0() {
        let text = network_file(std::net::Ipv4Addr::new(10, 77, 0, 11));
        assert!(text.starts_with("[Match]\nName=host0\n"));
        assert!(text.contains("Address=10.77.0.11/24\n"));
        assert!(!text.contains("Gateway"), "lab hosts must not route elsewhere");
    }

    #[test]
    fn the_mirror_serves_one_directory_or_an_overlay_of_several() -> Result<()> {
        let paths = Paths { lab: PathBuf::from("/r/target/lab") };
        let one = kind_binds(&paths, HostKind::Mirror, &[PathBuf::from("/m/a.mirror")])?;
        assert_eq!(one[1], "--bind-ro=/m/a.mirror:/var/www/html");
        let two = [PathBuf::from("/m/a.mirror"), PathBuf::from("/m/b.mirror")];
        let both = kind_binds(&paths, HostKind::Mirror, &two)?;
        assert_eq!(both[1], "--overlay-ro=/m/a.mirror:/m/b.mirror:/var/www/html");
        assert!(kind_binds(&paths, HostKind::Mirror, &[]).is_err());
        assert!(kind_binds(&paths, HostKind::Mirror, &[PathBuf::from("/a:b"), PathBuf::from("/c")]).is_err());
        Ok(())
    }

    #[test]
    fn lab_and_bare_hosts_share_the_stand_ins_cluster_api_read_write() -> Result<()> {
        let paths = Paths { lab: PathBuf::from("/r/target/lab") };
        let shared = "--bind=/r/target/lab-standins/api:/var/lib/kube-standin-api".to_owned();
        for kind in [HostKind::Lab, HostKind::Bare] {
            assert!(kind_binds(&paths, kind, &[])?.contains(&shared), "{kind:?}");
        }
        let mirror = kind_binds(&paths, HostKind::Mirror, &[PathBuf::from("/m/a.mirror")])?;
        assert!(!mirror.iter().any(|b| b.contains("kube-standin-api")));
        Ok(())
    }
}
