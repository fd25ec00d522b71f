//! The lab stand-ins for kubeadm and kubectl (crate `xtask/standins`): built before the lab boots
//! and bind-mounted read-only into every host, so changing a stand-in needs no image rebuild.
//!
//! The binaries are staged in `target/lab-standins/bin/` (replaced by rename, so running hosts
//! see a rebuilt stand-in at once: the bind is of the directory, not of the files), mounted at
//! `/opt/kube-standins/bin`; a tmpfiles.d entry links them as `/usr/local/bin/kubeadm` and
//! `kubectl` at boot, so `/usr/local/bin` stays writable for playbooks.
//! `target/lab-standins/kubelet.service` is mounted as a do-nothing kubelet unit, so kubelet
//! restarts are real systemd operations. `target/lab-standins/share/` is mounted at
//! `/usr/share/kube-standins`: the version each stand-in reports (`v1.31.0`; in the bare lab
//! the packages install these files, see [`crate::k8srepo`]).
//!
//! The same build also makes the `kubelet` and `crictl` stand-ins, which only the bare lab's
//! Kubernetes packages hold.
//!
//! `target/lab-standins/api/` is the stand-ins' shared cluster API (see
//! `kube_standins::cluster`): bind-mounted READ-WRITE into every host of every lab (pre-baked,
//! bare, bastion) at `/var/lib/kube-standin-api`, emptied when a lab boots and removed by
//! `lab down`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;
use crate::paths::Paths;

const BINARIES: [&str; 2] = ["kubeadm", "kubectl"];

/// Where hosts see the staged binaries.
const MOUNT: &str = "/opt/kube-standins/bin";
/// Where hosts see the shared cluster API (`kube_standins::cluster::API_DIR`).
const API_MOUNT: &str = "/var/lib/kube-standin-api";
/// The version files of the pre-baked lab (its kubelet is a do-nothing unit, but the stand-ins'
/// `kubeadm init` and `join` record the node's kubelet version from `kubelet.version`).
const VERSIONED: [&str; 3] = ["kubeadm", "kubectl", "kubelet"];
/// The version the pre-baked lab's stand-ins report.
const PREBAKED_VERSION: &str = "v1.31.0\n";

const KUBELET_UNIT: &str = "[Unit]\nDescription=kubelet (lab stand-in: does nothing)\n\n\
                            [Service]\nExecStart=/bin/sleep infinity\nRestart=always\n\n\
                            [Install]\nWantedBy=multi-user.target\n";

/// `target/lab-standins`, outside `target/lab` (which `lab up` clears).
pub(crate) fn dir(paths: &Paths) -> PathBuf {
    paths.workspace_root().join("target").join("lab-standins")
}

/// Builds the stand-ins and stages them (and the kubelet unit) for the hosts' bind mounts.
pub(crate) fn stage(paths: &Paths) -> Result<()> {
    let root = paths.workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run(Command::new(cargo).args(["build", "-q", "-p", "kube-standins", "--bins"]).current_dir(root))?;
    let bin = dir(paths).join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    for name in BINARIES {
        replace(&built(paths).join(name), &bin.join(name))?;
    }
    let share = dir(paths).join("share");
    fs::create_dir_all(&share).with_context(|| format!("cannot create {}", share.display()))?;
    for name in VERSIONED {
        write_if_changed(&share.join(format!("{name}.version")), PREBAKED_VERSION)?;
    }
    let links: String =
        BINARIES.iter().map(|b| format!("L+ /usr/local/bin/{b} - - - - {MOUNT}/{b}\n")).collect();
    write_if_changed(&dir(paths).join("kube-standins.conf"), &links)?;
    // Rewritten only when it differs: it is bind-mounted as a file, and systemd notices a new mtime.
    write_if_changed(&dir(paths).join("kubelet.service"), KUBELET_UNIT)
}

/// Where `cargo build` leaves the stand-ins (all four binaries).
pub(crate) fn built(paths: &Paths) -> PathBuf {
    let root = paths.workspace_root();
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("debug")
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Copies `from` over `to` by rename, so a reader sees the old file or the new one.
fn replace(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("new");
    fs::copy(from, &tmp).with_context(|| format!("cannot copy {} to {}", from.display(), tmp.display()))?;
    fs::rename(&tmp, to).with_context(|| format!("cannot rename {} to {}", tmp.display(), to.display()))
}

/// The shared cluster API's directory on the lab machine.
pub(crate) fn api_dir(paths: &Paths) -> PathBuf {
    dir(paths).join("api")
}

/// Removes the shared cluster API's directory (every cluster the lab's hosts made).
pub(crate) fn clear_api(paths: &Paths) -> Result<()> {
    let api = api_dir(paths);
    if api.exists() {
        fs::remove_dir_all(&api).with_context(|| format!("cannot remove {}", api.display()))?;
    }
    Ok(())
}

/// An empty shared cluster API directory, for the hosts about to boot.
pub(crate) fn fresh_api(paths: &Paths) -> Result<()> {
    clear_api(paths)?;
    let api = api_dir(paths);
    fs::create_dir_all(&api).with_context(|| format!("cannot create {}", api.display()))
}

/// The nspawn argument that mounts the shared cluster API into a host (every lab host but the
/// mirror: the bare lab's hosts install the stand-ins from packages, and share it too).
pub(crate) fn api_bind(paths: &Paths) -> String {
    format!("--bind={}:{API_MOUNT}", api_dir(paths).display())
}

/// The nspawn arguments that mount the stand-ins into a host.
pub(crate) fn bind_args(paths: &Paths) -> [String; 5] {
    let dir = dir(paths);
    [
        api_bind(paths),
        format!("--bind-ro={}:{MOUNT}", dir.join("bin").display()),
        format!("--bind-ro={}:/usr/share/kube-standins", dir.join("share").display()),
        format!("--bind-ro={}:/etc/tmpfiles.d/kube-standins.conf", dir.join("kube-standins.conf").display()),
        format!("--bind-ro={}:/etc/systemd/system/kubelet.service", dir.join("kubelet.service").display()),
    ]
}
