//! The host image: a debootstrapped Debian tree, built once and cached outside the repo
//! under `/var/cache/engine-lab/images/<recipe hash>/`. Hosts boot it read-only with
//! `--volatile=overlay`, so it is shared and never changes after the build.
//!
//! A build goes into `.tmp-<hash>-<pid>` next to the final directory and is renamed into
//! place only when complete, so an interrupted build is never booted.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::{cmd, mirror};

/// Bump to force a rebuild when something outside the package list and script changes.
pub(crate) const RECIPE_VERSION: u32 = 1;
/// The suite of the default image and of the controller's own apt sources (the lab's Debian 12).
pub(crate) const SUITE: &str = "bookworm";
pub(crate) const IMAGES_DIR: &str = "/var/cache/engine-lab/images";

/// Installed on top of `--variant=minbase`. python3 is there only for the Ansible
/// peer benchmark; the engine must never need it.
pub(crate) const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "etcd-server",
    "etcd-client",
    "keepalived",
    // examples/haproxy-keepalived and examples/rolling: a load balancer and web backends.
    "haproxy",
    "nginx-light",
    "curl",
    "ca-certificates",
    "python3",
    "sudo",
    // become_method doas (tests/become.rs).
    "opendoas",
    "procps",
    // The unarchive module's zip archives (as Ansible's, it extracts them with unzip).
    "unzip",
    // Resolves the host's own name (sudo warns without it; /etc/hosts stays the image's).
    "libnss-myhostname",
];

/// Runs in a chroot of the fresh tree, once per build.
pub(crate) const TWEAK_SCRIPT: &str = include_str!("image-tweak.sh");

/// The image directory name: the first 16 hex digits of a SHA-256 over the recipe.
/// Package order does not matter; the scripts are hashed one after the other (so a recipe of one
/// script hashes as it did before recipes could have more).
pub(crate) fn recipe_hash(version: u32, suite: &str, packages: &[&str], scripts: &[&str]) -> String {
    let mut sorted = packages.to_vec();
    sorted.sort_unstable();
    let mut h = Sha256::new();
    h.update(format!("engine-lab recipe v{version}\nsuite={suite}\nvariant=minbase\n"));
    h.update(format!("packages={}\n---\n", sorted.join(",")));
    for script in scripts {
        h.update(script);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn current_hash() -> String {
    DEFAULT.hash()
}

/// What an image is built from: a Debian suite, packages on top of `--variant=minbase`, and
/// scripts run once, in order, in a chroot of the fresh tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recipe {
    /// `bookworm` (Debian 12) or `trixie` (Debian 13); fetched from the controller's own Debian
    /// mirror (the one its apt sources name for [`SUITE`]), which serves every suite.
    pub(crate) suite: &'static str,
    pub(crate) packages: &'static [&'static str],
    pub(crate) scripts: &'static [&'static str],
    /// Called on the finished tree before it is renamed into place (the bare image moves the
    /// packages its script downloaded out of the tree, into the lab mirror's pool).
    pub(crate) finish: fn(tree: &Path, hash: &str) -> Result<()>,
}

/// The image of the default lab: everything the playbooks use is pre-installed.
pub(crate) const DEFAULT: Recipe =
    Recipe { suite: SUITE, packages: PACKAGES, scripts: &[TWEAK_SCRIPT], finish: |_, _| Ok(()) };

impl Recipe {
    pub(crate) fn hash(&self) -> String {
        recipe_hash(RECIPE_VERSION, self.suite, self.packages, self.scripts)
    }
}

/// The cached image of the default recipe, building it first if needed.
/// Returns the image directory and the build time if it was built now.
pub(crate) fn ensure() -> Result<(PathBuf, Option<Duration>)> {
    ensure_recipe(&DEFAULT)
}

/// The cached image of `recipe`, building it first if needed.
pub(crate) fn ensure_recipe(recipe: &Recipe) -> Result<(PathBuf, Option<Duration>)> {
    let hash = recipe.hash();
    let dir = Path::new(IMAGES_DIR).join(&hash);
    if dir.join("usr/lib/systemd/systemd").exists() {
        return Ok((dir, None));
    }
    fs::create_dir_all(IMAGES_DIR).with_context(|| format!("cannot create {IMAGES_DIR}"))?;
    remove_stale_builds()?;
    let tmp = Path::new(IMAGES_DIR).join(format!(".tmp-{hash}-{}", std::process::id()));
    let mirror = mirror::find(SUITE)?;
    eprintln!("lab: building image {hash} ({}) from {mirror} (debootstrap, about a minute)", recipe.suite);
    let started = Instant::now();
    build_into(&tmp, &mirror, recipe).with_context(|| format!("building image in {}", tmp.display()))?;
    fs::rename(&tmp, &dir)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), dir.display()))?;
    let took = started.elapsed();
    eprintln!("lab: image built in {:.1} s: {}", took.as_secs_f64(), dir.display());
    Ok((dir, Some(took)))
}

fn build_into(tmp: &Path, mirror: &str, recipe: &Recipe) -> Result<()> {
    cmd::run_loud(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", recipe.packages.join(",")))
            .arg(recipe.suite)
            .arg(tmp)
            .arg(mirror),
    )?;
    let script = tmp.join("root/engine-lab-tweak.sh");
    for text in recipe.scripts {
        fs::write(&script, text).with_context(|| format!("cannot write {}", script.display()))?;
        let result =
            cmd::run_loud(Command::new("chroot").arg(tmp).args(["/bin/sh", "/root/engine-lab-tweak.sh"]));
        fs::remove_file(&script).ok();
        result?;
    }
    let marker = format!("recipe {} v{RECIPE_VERSION}\n", recipe.hash());
    fs::write(tmp.join("etc/engine-lab-image"), marker).context("cannot write image marker")?;
    let left = mounts_under(tmp)?;
    if !left.is_empty() {
        bail!("mounts left inside the new image: {left:?}");
    }
    (recipe.finish)(tmp, &recipe.hash())
}

/// Set (to anything) to keep the images of other recipes: several checkouts of the project on
/// one machine (git worktrees) whose recipes differ would otherwise remove each other's images.
pub(crate) const KEEP_IMAGES_ENV: &str = "ENGINE_LAB_KEEP_IMAGES";

/// Removes cached images (and package mirrors) of recipes other than `keep`, unless
/// [`KEEP_IMAGES_ENV`] is set. Call only when no lab host runs.
pub(crate) fn prune_except(keep: &[String]) -> Result<()> {
    if std::env::var_os(KEEP_IMAGES_ENV).is_some() {
        return Ok(());
    }
    let Ok(dir) = fs::read_dir(IMAGES_DIR) else {
        return Ok(());
    };
    for entry in dir {
        let path = entry?.path();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        // An image is named by its hash; the bare image's package mirror by `<hash>.mirror`.
        let hash = name.strip_suffix(".mirror").unwrap_or(&name);
        let old_image = !keep.iter().any(|k| k == hash)
            && hash.len() == 16
            && hash.chars().all(|c| c.is_ascii_hexdigit());
        if !old_image || !path.is_dir() || !mounts_under(&path)?.is_empty() {
            continue;
        }
        cmd::run(Command::new("rm").args(["-rf", "--one-file-system"]).arg(&path))?;
        println!("lab: removed the image of an older recipe, {name}");
    }
    Ok(())
}

/// Removes half-built trees from interrupted builds (unmounting anything debootstrap left): a
/// `.tmp-<hash>-<pid>[.mirror]` whose process is gone. A build another process is making
/// right now is left alone.
fn remove_stale_builds() -> Result<()> {
    for entry in fs::read_dir(IMAGES_DIR).with_context(|| format!("cannot list {IMAGES_DIR}"))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.starts_with(".tmp-") || builder_pid(&name).is_some_and(process_alive) {
            continue;
        }
        eprintln!("lab: removing interrupted image build {}", path.display());
        let mut mounts = mounts_under(&path)?;
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            cmd::run(Command::new("umount").args(["-l", &m]))?;
        }
        cmd::run(Command::new("rm").args(["-rf", "--one-file-system"]).arg(&path))?;
    }
    Ok(())
}

/// The process that makes the build `.tmp-<hash>-<pid>[.mirror]`.
fn builder_pid(name: &str) -> Option<u32> {
    let name = name.strip_suffix(".mirror").unwrap_or(name);
    name.rsplit_once('-')?.1.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

/// Mount points at or below `dir`, from /proc/self/mountinfo.
pub(crate) fn mounts_under(dir: &Path) -> Result<Vec<String>> {
    let info = fs::read_to_string("/proc/self/mountinfo").context("cannot read mountinfo")?;
    let dir = dir.to_string_lossy();
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == &*dir || m.starts_with(&format!("{dir}/")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_names_its_process() {
        assert_eq!(builder_pid(".tmp-0123456789abcdef-4242"), Some(4242));
        assert_eq!(builder_pid(".tmp-0123456789abcdef-4242.mirror"), Some(4242));
        assert_eq!(builder_pid(".tmp-garbage"), None);
    }

    #[test]
    fn hash_is_stable_and_short() {
        let a = recipe_hash(1, "bookworm", &["a", "b"], &["echo"]);
        assert_eq!(a, recipe_hash(1, "bookworm", &["a", "b"], &["echo"]));
        assert_eq!(a, recipe_hash(1, "bookworm", &["b", "a"], &["echo"]), "order must not matter");
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        // Pinned: a change here means every cached image is rebuilt.
        assert_eq!(a, "e3c051fb9fac6570");
    }

    #[test]
    fn hash_follows_every_input() {
        let base = recipe_hash(1, "bookworm", &["a"], &["echo"]);
        assert_ne!(base, recipe_hash(2, "bookworm", &["a"], &["echo"]));
        assert_ne!(base, recipe_hash(1, "trixie", &["a"], &["echo"]));
        assert_ne!(base, recipe_hash(1, "bookworm", &["a", "c"], &["echo"]));
        assert_ne!(base, recipe_hash(1, "bookworm", &["a"], &["echo "]));
        assert_ne!(base, recipe_hash(1, "bookworm", &["a"], &["echo", "true"]));
        assert_eq!(current_hash(), current_hash());
    }

    #[test]
    fn recipe_has_what_the_lab_needs() {
        for p in ["openssh-server", "systemd", "etcd-server", "keepalived", "sudo"] {
            assert!(PACKAGES.contains(&p), "{p}");
        }
        assert!(TWEAK_SCRIPT.contains("rm -f /etc/hostname"));
        assert!(TWEAK_SCRIPT.contains("systemctl disable etcd"));
        assert!(TWEAK_SCRIPT.contains("deb [trusted=yes] file:%s ./"), "the local apt repository");
    }
}
