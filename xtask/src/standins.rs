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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;
use crate::paths::Paths;

const BINARIES: [&str; 2] = ["kubeadm", "kubectl"];

/// Where hosts see the staged binaries.
const MOUNT: &str = "/opt/kube-standins/bin";
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
    for name in BINARIES {
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

/// The nspawn arguments that mount the stand-ins into a host.
pub(crate) fn bind_args(paths: &Paths) -> [String; 4] {
    let dir = dir(paths);
    [
        format!("--bind-ro={}:{MOUNT}", dir.join("bin").display()),
        format!("--bind-ro={}:/usr/share/kube-standins", dir.join("share").display()),
        format!("--bind-ro={}:/etc/tmpfiles.d/kube-standins.conf", dir.join("kube-standins.conf").display()),
        format!("--bind-ro={}:/etc/systemd/system/kubelet.service", dir.join("kubelet.service").display()),
    ]
}
