//! The bare lab (`cargo xtask lab up --bare`): hosts that look like a fresh Debian 12 cloud
//! image, and `mirror` (10.77.0.2), the only place their apt can reach.
//!
//! ```text
//! /var/cache/engine-lab/
//!   images/<bare hash>/          the bare image (bare-tweak.sh), booted by every bare host
//!   images/<bare hash>.mirror/   its package mirror, Debian-shaped, served by `mirror`:
//!     pool/main/*.deb            downloaded once, when the bare image is built
//!     dists/bookworm/            Packages, Release, InRelease, Release.gpg (apt-ftparchive, gpg)
//!   mirror-key/gnupg/            the lab's signing key (generated once, never leaves the machine)
//!   mirror-key/engine-lab-mirror.gpg   its public half, bind-mounted into every bare host at
//!                                /etc/apt/keyrings/engine-lab-mirror.gpg (the sources' Signed-By)
//! ```
//!
//! `mirror` boots the default image (it has nginx-light) with the mirror directory bound
//! read-only at /var/www/html/debian; `lab up` starts nginx there once SSH answers.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::image::{IMAGES_DIR, Recipe, SUITE};
use crate::{cmd, image};

pub(crate) const MIRROR_NAME: &str = "mirror";
pub(crate) const MIRROR_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// Where the bare hosts' sources point (bare-tweak.sh writes it).
pub(crate) const MIRROR_URL: &str = "http://10.77.0.2/debian";
/// The login user of a bare host.
pub(crate) const USER: &str = "debian";
const KEY_DIR: &str = "/var/cache/engine-lab/mirror-key";
const KEY_UID: &str = "engine lab mirror (lab only, never shipped) <mirror@engine-lab.invalid>";
/// Written beside `dists/` with the fingerprint that signed it: a new key re-signs.
const SIGNED_BY: &str = ".signed-by";

/// What a fresh Debian 12 cloud image has, on top of `--variant=minbase`. No python, no curl.
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "ca-certificates",
    "sudo",
    "procps",
    // Resolves the host's own name (sudo warns without it), as cloud-init's /etc/hosts does.
    "libnss-myhostname",
];

pub(crate) const RECIPE: Recipe =
    Recipe { packages: PACKAGES, script: include_str!("bare-tweak.sh"), finish: move_pool_out };

/// The package mirror of the bare image with hash `hash`.
pub(crate) fn repo_dir(hash: &str) -> PathBuf {
    Path::new(IMAGES_DIR).join(format!("{hash}.mirror"))
}

/// The public half of the lab key (a binary keyring, as apt's Signed-By wants it).
pub(crate) fn public_key() -> PathBuf {
    Path::new(KEY_DIR).join("engine-lab-mirror.gpg")
}

fn gnupg_home() -> PathBuf {
    Path::new(KEY_DIR).join("gnupg")
}

/// The bare image and its mirror, built if needed, the mirror indexed and signed by the lab key.
/// Returns the image directory and the mirror directory.
pub(crate) fn ensure() -> Result<(PathBuf, PathBuf)> {
    let (image, built) = image::ensure_recipe(&RECIPE)?;
    let hash = RECIPE.hash();
    match built {
        Some(t) => println!("lab: bare image {hash} built in {:.1} s", t.as_secs_f64()),
        None => println!("lab: bare image {hash} cached ({})", image.display()),
    }
    let repo = repo_dir(&hash);
    if !repo.join("pool/main").is_dir() {
        bail!(
            "the bare image {hash} has no package mirror at {}; remove {} to rebuild both",
            repo.display(),
            image.display()
        );
    }
    // gpg starts an agent for the key home (listing a secret key is enough); it is ours, and it
    // goes when we are done, whatever happened.
    let published = ensure_key().and_then(|fingerprint| publish(&repo, &fingerprint));
    stop_agent(&gnupg_home());
    published?;
    Ok((image, repo))
}

/// `Recipe::finish` of the bare image: the packages its script downloaded into
/// `/engine-lab-pool` leave the tree for `<hash>.mirror/pool/main/`.
fn move_pool_out(tree: &Path, hash: &str) -> Result<()> {
    let from = tree.join("engine-lab-pool");
    let tmp = Path::new(IMAGES_DIR).join(format!(".tmp-{hash}-{}.mirror", std::process::id()));
    let pool = tmp.join("pool/main");
    fs::create_dir_all(&pool).with_context(|| format!("cannot create {}", pool.display()))?;
    let mut count = 0;
    for entry in fs::read_dir(&from).with_context(|| format!("cannot list {}", from.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name() else { continue };
        fs::rename(&path, pool.join(name)).with_context(|| format!("cannot move {}", path.display()))?;
        count += 1;
    }
    fs::remove_dir(&from).with_context(|| format!("cannot remove {}", from.display()))?;
    if count == 0 {
        bail!("the bare image's script downloaded no packages for the mirror");
    }
    let dest = repo_dir(hash);
    if dest.exists() {
        fs::remove_dir_all(&dest).with_context(|| format!("cannot remove {}", dest.display()))?;
    }
    fs::rename(&tmp, &dest)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
    println!("lab: package mirror {}: {count} packages", dest.display());
    Ok(())
}

/// The lab key's fingerprint, generating the key the first time.
fn ensure_key() -> Result<String> {
    let home = gnupg_home();
    if let Some(fpr) = fingerprint(&home) {
        if public_key().exists() {
            return Ok(fpr);
        }
    } else {
        fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700))?;
        eprintln!("lab: generating the lab mirror's signing key in {}", home.display());
        cmd::run(gpg(&home).args(["--quick-generate-key", KEY_UID, "ed25519", "sign", "never"]))?;
    }
    let fpr = fingerprint(&home).context("gpg made no key")?;
    let public = public_key();
    let tmp = public.with_extension("gpg.tmp");
    cmd::run(gpg(&home).arg("--output").arg(&tmp).args(["--export", "--", &fpr]))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
    fs::rename(&tmp, &public).with_context(|| format!("cannot write {}", public.display()))?;
    Ok(fpr)
}

/// `gpg` on the lab's key home, never asking anything (the key has no passphrase: it is a lab key).
fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.arg("--homedir").arg(home).args([
        "--batch",
        "--yes",
        "--quiet",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]);
    c
}

/// Stops the agent gpg started for the key home, if it runs.
fn stop_agent(home: &Path) {
    cmd::run(Command::new("gpgconf").arg("--homedir").arg(home).args(["--kill", "gpg-agent"])).ok();
}

fn fingerprint(home: &Path) -> Option<String> {
    if !home.is_dir() {
        return None;
    }
    let out = cmd::output(Command::new("gpg").arg("--homedir").arg(home).args([
        "--batch",
        "--with-colons",
        "--list-secret-keys",
    ]))
    .ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|rest| rest.split(':').find(|f| !f.is_empty()).map(str::to_owned))
}

/// Indexes the mirror (`apt-ftparchive`) and signs its Release (InRelease, Release.gpg) with
/// the lab key, unless this key already signed it.
fn publish(repo: &Path, fingerprint: &str) -> Result<()> {
    let marker = repo.join(SIGNED_BY);
    if fs::read_to_string(&marker).is_ok_and(|f| f.trim() == fingerprint) {
        return Ok(());
    }
    let dists = repo.join("dists").join(SUITE);
    let binary = dists.join("main/binary-amd64");
    fs::create_dir_all(&binary).with_context(|| format!("cannot create {}", binary.display()))?;
    let packages =
        cmd::output(Command::new("apt-ftparchive").current_dir(repo).args(["packages", "pool/main"]))?;
    fs::write(binary.join("Packages"), &packages)?;
    cmd::run(Command::new("gzip").args(["-9", "-k", "-f", "-n"]).arg(binary.join("Packages")))?;
    let release = cmd::output(
        Command::new("apt-ftparchive")
            .current_dir(&dists)
            .args(["-o", "APT::FTPArchive::Release::Origin=engine-lab"])
            .args(["-o", "APT::FTPArchive::Release::Label=engine-lab"])
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Suite={SUITE}"))
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Codename={SUITE}"))
            .args(["-o", "APT::FTPArchive::Release::Architectures=amd64"])
            .args(["-o", "APT::FTPArchive::Release::Components=main"])
            .args(["-o", "APT::FTPArchive::Release::Description=engine lab mirror (Debian packages, signed by the lab key)"])
            .args(["release", "."]),
    )?;
    let release_file = dists.join("Release");
    fs::write(&release_file, release)?;
    let home = gnupg_home();
    cmd::run(
        gpg(&home)
            .args(["--local-user", fingerprint, "--clearsign", "--output"])
            .arg(dists.join("InRelease"))
            .arg(&release_file),
    )?;
    cmd::run(
        gpg(&home)
            .args(["--local-user", fingerprint, "--armor", "--detach-sign", "--output"])
            .arg(dists.join("Release.gpg"))
            .arg(&release_file),
    )?;
    fs::write(&marker, format!("{fingerprint}\n"))?;
    println!("lab: package mirror indexed and signed by the lab key {fingerprint}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_image_has_nothing_the_playbooks_install() {
        for p in ["etcd-server", "etcd-client", "keepalived", "containerd", "curl", "python3", "nginx-light"]
        {
            assert!(!PACKAGES.contains(&p), "{p}");
        }
        for p in ["systemd", "openssh-server", "sudo", "iproute2", "ca-certificates"] {
            assert!(PACKAGES.contains(&p), "{p}");
        }
        assert_ne!(RECIPE.hash(), image::current_hash());
    }

    #[test]
    fn the_bare_script_locks_root_out_and_points_apt_at_the_signed_mirror() {
        let script = RECIPE.script;
        assert!(script.contains("\nPermitRootLogin no\n"));
        assert!(script.contains("debian ALL=(ALL) NOPASSWD:ALL"));
        assert!(script.contains(&format!("URIs: {MIRROR_URL}\n")));
        assert!(script.contains("Signed-By: /etc/apt/keyrings/engine-lab-mirror.gpg\n"));
        assert!(!script.contains("trusted=yes"));
        assert_eq!(MIRROR_URL, format!("http://{MIRROR_ADDR}/debian"));
    }
}
