//! The bare lab (`cargo xtask lab up --bare`): hosts that look like a fresh Debian 12 (or, with
//! `--releases`, Debian 13) cloud image, and `mirror` (10.77.0.2), the only place their apt can
//! reach.
//!
//! ```text
//! /var/cache/engine-lab/
//!   images/<bare hash>/          the Debian 12 bare image (bare-tweak.sh)
//!   images/<bare hash>.mirror/   what `mirror` serves (at /var/www/html):
//!     debian/pool/main/*.deb     real Debian 12 packages, downloaded once, when the image is built
//!     debian/dists/bookworm/     Packages, Release, InRelease, Release.gpg (apt-ftparchive, gpg)
//!     etcd/vX.Y.Z/               the guide's etcd release tarball, made from Debian's etcd
//!                                binaries (a stand-in, and it says so), with SHA256SUMS
//!     k8s/core:/stable:/v1.30/deb/   pkgs.k8s.io-shaped flat repositories of the stand-ins,
//!     k8s/core:/stable:/v1.31/deb/   signed by a key of their own (see `k8srepo`)
//!   images/<trixie hash>/        the Debian 13 bare image (bare-tweak.sh, then bare-tweak-13.sh)
//!   images/<trixie hash>.mirror/ Debian 13's packages, overlaid on the Debian 12 mirror:
//!     debian/pool/main/*.deb     (one pool, as Debian's: a file name is one package version)
//!     debian/dists/trixie/       indexed and signed by the same lab key
//!   mirror-key/gnupg/            the lab's signing key (generated once, never leaves the machine)
//!   mirror-key/engine-lab-mirror.gpg   its public half, bind-mounted into every bare host at
//!                                /etc/apt/keyrings/engine-lab-mirror.gpg (the sources' Signed-By)
//! ```
//!
//! `mirror` boots the default image (it has nginx-light) with the mirror directory bound
//! read-only at /var/www/html (with both releases: the two mirror directories as one read-only
//! overlay there); `lab up` starts nginx there once SSH answers. The Kubernetes repositories and
//! the etcd tarball are one set, in the Debian 12 mirror directory, for hosts of both releases.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::image::{IMAGES_DIR, Recipe};
use crate::signkey::SigningKey;
use crate::{cmd, image, k8srepo};

pub(crate) const MIRROR_NAME: &str = "mirror";
pub(crate) const MIRROR_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// Where the bare hosts' sources point (bare-tweak.sh writes it).
pub(crate) const MIRROR_URL: &str = "http://10.77.0.2/debian";
/// The login user of a bare host.
pub(crate) const USER: &str = "debian";
/// The Debian mirror's signing key.
const KEY: SigningKey = SigningKey {
    dir: "/var/cache/engine-lab/mirror-key",
    uid: "engine lab mirror (lab only, never shipped) <mirror@engine-lab.invalid>",
    keyring: "engine-lab-mirror.gpg",
};
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

/// What every bare image runs first.
const SCRIPT: &str = include_str!("bare-tweak.sh");

/// A Debian release the bare lab's hosts can run: its number (the inventory's `lab_debian`)
/// and the recipe of its bare image.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    pub(crate) debian: u8,
    pub(crate) recipe: Recipe,
}

/// Debian 12 (bookworm): the bare lab's default, and its mirror directory holds the Kubernetes
/// repositories and the etcd tarball for hosts of every release.
pub(crate) const RECIPE: Recipe =
    Recipe { suite: "bookworm", packages: PACKAGES, scripts: &[SCRIPT], finish: move_pool_out };

/// The releases a bare lab can boot, the default (the mirror's base) first.
pub(crate) const RELEASES: [Release; 2] = [
    Release { debian: 12, recipe: RECIPE },
    Release {
        debian: 13,
        recipe: Recipe {
            suite: "trixie",
            packages: PACKAGES,
            scripts: &[SCRIPT, include_str!("bare-tweak-13.sh")],
            finish: move_pool_out,
        },
    },
];

/// The bare lab's default release (Debian 12).
pub(crate) const DEFAULT_DEBIAN: u8 = RELEASES[0].debian;

/// The releases of CI's bare `ha` lab (`cargo xtask test`'s second phase): Debian 12 and 13 in
/// turn, so every HA test runs on a mixed fleet.
pub(crate) const MIXED: &[u8] = &[12, 13];

/// The release numbered `debian` (12, 13).
pub(crate) fn release(debian: u8) -> Result<&'static Release> {
    match RELEASES.iter().find(|r| r.debian == debian) {
        Some(r) => Ok(r),
        None => {
            let known: Vec<String> = RELEASES.iter().map(|r| r.debian.to_string()).collect();
            bail!("the bare lab has no Debian {debian} image (it has Debian {})", known.join(", "))
        }
    }
}

/// The release of each of `count` bare hosts, in host order: `releases` in turn (with `12,13`:
/// the first host 12, the second 13, the third 12, ...). Checks each release exists and none is
/// named twice.
pub(crate) fn assign(releases: &[u8], count: usize) -> Result<Vec<u8>> {
    if releases.is_empty() {
        bail!("--releases names no Debian release");
    }
    for (i, d) in releases.iter().enumerate() {
        release(*d)?;
        if releases[..i].contains(d) {
            bail!("--releases names Debian {d} twice");
        }
    }
    Ok((0..count).map(|i| releases[i % releases.len()]).collect())
}

/// The package mirror of the bare image with hash `hash`.
pub(crate) fn repo_dir(hash: &str) -> PathBuf {
    Path::new(IMAGES_DIR).join(format!("{hash}.mirror"))
}

/// The public half of the lab key (a binary keyring, as apt's Signed-By wants it).
pub(crate) fn public_key() -> PathBuf {
    KEY.public_keyring()
}

/// The bare images of Debian 12 and of the other releases in `releases`, and their mirrors,
/// built if needed, each mirror indexed and signed by the lab key under its suite; the Debian 12
/// mirror also gets the etcd tarball and the Kubernetes repositories built from the stand-ins in
/// `standins` (see [`crate::k8srepo`]). Returns `(release, image hash)`, Debian 12 first: the
/// mirror host serves their mirror directories ([`repo_dir`]) as one.
pub(crate) fn ensure(standins: &Path, releases: &[u8]) -> Result<Vec<(u8, String)>> {
    let mut images = Vec::new();
    for r in RELEASES.iter().filter(|r| r.debian == DEFAULT_DEBIAN || releases.contains(&r.debian)) {
        let (image, built) = image::ensure_recipe(&r.recipe)?;
        let hash = r.recipe.hash();
        let debian = r.debian;
        match built {
            Some(t) => println!("lab: Debian {debian} bare image {hash} built in {:.1} s", t.as_secs_f64()),
            None => println!("lab: Debian {debian} bare image {hash} cached ({})", image.display()),
        }
        let repo = repo_dir(&hash);
        if !repo.join("debian/pool/main").is_dir() {
            bail!(
                "the bare image {hash} has no package mirror at {}; remove {} to rebuild both",
                repo.display(),
                image.display()
            );
        }
        images.push((debian, hash));
    }
    // gpg starts an agent for the key home (listing a secret key is enough); it is ours, and it
    // goes when we are done, whatever happened.
    let published = KEY.ensure().and_then(|fingerprint| {
        images.iter().try_for_each(|(debian, hash)| {
            publish(&repo_dir(hash).join("debian"), release(*debian)?.recipe.suite, &fingerprint)
        })
    });
    KEY.stop_agent();
    published?;
    let base = repo_dir(&images[0].1);
    etcd_release(&base)?;
    k8srepo::ensure(&base, standins)?;
    Ok(images)
}

/// `Recipe::finish` of the bare image: the packages its script downloaded into
/// `/engine-lab-pool` leave the tree for `<hash>.mirror/debian/pool/main/`.
fn move_pool_out(tree: &Path, hash: &str) -> Result<()> {
    let from = tree.join("engine-lab-pool");
    let tmp = Path::new(IMAGES_DIR).join(format!(".tmp-{hash}-{}.mirror", std::process::id()));
    let pool = tmp.join("debian/pool/main");
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

/// Indexes the mirror of `suite` (`apt-ftparchive`) and signs its Release (InRelease,
/// Release.gpg) with the lab key, unless this key already signed it.
fn publish(repo: &Path, suite: &str, fingerprint: &str) -> Result<()> {
    let marker = repo.join(SIGNED_BY);
    if fs::read_to_string(&marker).is_ok_and(|f| f.trim() == fingerprint) {
        return Ok(());
    }
    let dists = repo.join("dists").join(suite);
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
            .arg(format!("APT::FTPArchive::Release::Suite={suite}"))
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Codename={suite}"))
            .args(["-o", "APT::FTPArchive::Release::Architectures=amd64"])
            .args(["-o", "APT::FTPArchive::Release::Components=main"])
            .args(["-o", "APT::FTPArchive::Release::Description=engine lab mirror (Debian packages, signed by the lab key)"])
            .args(["release", "."]),
    )?;
    fs::write(dists.join("Release"), release)?;
    KEY.sign_release(fingerprint, &dists)?;
    fs::write(&marker, format!("{fingerprint}\n"))?;
    println!("lab: package mirror of {suite} indexed and signed by the lab key {fingerprint}");
    Ok(())
}

/// The etcd version of the mirror's `etcd-server` package (its upstream part, `3.4.23`).
fn etcd_version(pool: &Path) -> Result<(String, PathBuf, PathBuf)> {
    let mut server = None;
    let mut client = None;
    for entry in fs::read_dir(pool).with_context(|| format!("cannot list {}", pool.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with("etcd-server_") {
            server = Some(path);
        } else if name.starts_with("etcd-client_") {
            client = Some(path);
        }
    }
    let (Some(server), Some(client)) = (server, client) else {
        bail!("the mirror's pool {} has no etcd-server or etcd-client package", pool.display());
    };
    let version = cmd::output(Command::new("dpkg-deb").arg("-f").arg(&server).arg("Version"))?;
    Ok((upstream_version(&version).to_owned(), server, client))
}

/// `3.4.23-4+b4` -> `3.4.23`; `1:2.0-1` -> `2.0`.
fn upstream_version(debian: &str) -> &str {
    let v = debian.trim();
    let v = v.split_once(':').map_or(v, |(_, rest)| rest);
    v.rsplit_once('-').map_or(v, |(upstream, _)| upstream)
}

/// The guide's etcd install route needs `etcd-vX.Y.Z-linux-amd64.tar.gz` and its `SHA256SUMS`,
/// laid out as on etcd's release page (`etcd/vX.Y.Z/`). Made once from Debian's etcd binaries
/// (etcd, etcdctl) in the pool, reproducibly (sorted, owner 0, mtime 0, gzip -n).
fn etcd_release(repo: &Path) -> Result<()> {
    let (version, server, client) = etcd_version(&repo.join("debian/pool/main"))?;
    let dir = repo.join("etcd").join(format!("v{version}"));
    let name = format!("etcd-v{version}-linux-amd64");
    let tarball = format!("{name}.tar.gz");
    if dir.join("SHA256SUMS").exists() {
        return Ok(());
    }
    let work = Path::new(IMAGES_DIR).join(format!(".tmp-etcd-{}", std::process::id()));
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    let top = work.join(&name);
    fs::create_dir_all(&top).with_context(|| format!("cannot create {}", top.display()))?;
    for (deb, program) in [(&server, "etcd"), (&client, "etcdctl")] {
        let unpacked = work.join(format!("deb-{program}"));
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&unpacked))?;
        fs::rename(unpacked.join("usr/bin").join(program), top.join(program))?;
        fs::remove_dir_all(&unpacked)?;
    }
    fs::write(
        top.join("README-engine-lab.md"),
        format!(
            "# etcd v{version} (engine lab stand-in)\n\nA stand-in for etcd's release tarball, made by the engine lab \
             from Debian's etcd-server and etcd-client {version} binaries, for playbooks that follow the \
             guide's install route. Not an etcd release.\n"
        ),
    )?;
    let out = work.join("out");
    fs::create_dir_all(&out)?;
    cmd::run(
        Command::new("tar")
            .current_dir(&work)
            .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0"])
            .args(["-I", "gzip -n", "-cf"])
            .arg(out.join(&tarball))
            .arg("--")
            .arg(&name),
    )?;
    let sum = cmd::output(Command::new("sha256sum").current_dir(&out).arg("--").arg(&tarball))?;
    fs::write(out.join("SHA256SUMS"), sum)?;
    fs::create_dir_all(dir.parent().unwrap_or(repo))?;
    fs::rename(&out, &dir)
        .with_context(|| format!("cannot rename {} to {}", out.display(), dir.display()))?;
    fs::remove_dir_all(&work)?;
    println!("lab: etcd release stand-in {}", dir.join(&tarball).display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_versions() {
        assert_eq!(upstream_version("3.4.23-4+b4\n"), "3.4.23");
        assert_eq!(upstream_version("1:2.0-1"), "2.0");
        assert_eq!(upstream_version("2.0"), "2.0");
        assert_eq!(upstream_version("1.2-3-4"), "1.2-3");
    }

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
        let script = SCRIPT;
        assert_eq!(RECIPE.scripts, [SCRIPT]);
        assert!(script.contains("\nPermitRootLogin no\n"));
        assert!(script.contains("debian ALL=(ALL) NOPASSWD:ALL"));
        assert!(script.contains(&format!("URIs: {MIRROR_URL}\n")));
        assert!(script.contains("Signed-By: /etc/apt/keyrings/engine-lab-mirror.gpg\n"));
        assert!(!script.contains("trusted=yes"));
        assert_eq!(MIRROR_URL, format!("http://{MIRROR_ADDR}/debian"));
    }

    #[test]
    fn the_releases_build_the_same_look_on_their_own_suites() -> Result<()> {
        let [twelve, thirteen] = RELEASES;
        assert_eq!((twelve.debian, twelve.recipe.suite), (12, "bookworm"));
        assert_eq!((thirteen.debian, thirteen.recipe.suite), (13, "trixie"));
        assert_eq!(twelve.recipe.packages, thirteen.recipe.packages);
        assert_eq!(thirteen.recipe.scripts[0], SCRIPT, "Debian 13 runs the same script first");
        assert!(thirteen.recipe.scripts[1].contains("Suites: trixie"));
        assert_ne!(twelve.recipe.hash(), thirteen.recipe.hash());
        assert_eq!(twelve.recipe.hash(), RECIPE.hash());
        assert!(release(11).is_err());
        Ok(())
    }

    #[test]
    fn hosts_take_the_releases_in_turn() -> Result<()> {
        assert_eq!(assign(&[12, 13], 5)?, [12, 13, 12, 13, 12]);
        assert_eq!(assign(&[13], 2)?, [13, 13]);
        assert_eq!(assign(&[13, 12], 3)?, [13, 12, 13]);
        for bad in [&[][..], &[12, 12], &[12, 14]] {
            assert!(assign(bad, 3).is_err(), "{bad:?}");
        }
        Ok(())
    }
}
