//! A lab signing key: an OpenPGP key in a gnupg home of its own under /var/cache/engine-lab,
//! generated once, never shipped, that signs a repository's `Release` (`InRelease`,
//! `Release.gpg`). The bare lab has two: the Debian mirror's and the Kubernetes repositories'
//! (as pkgs.k8s.io signs with a key other than Debian's).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;

#[derive(Debug, Clone, Copy)]
pub(crate) struct SigningKey {
    /// Holds `gnupg/` (the secret key) and the public keyring.
    pub(crate) dir: &'static str,
    /// The key's user id; says it is a lab key.
    pub(crate) uid: &'static str,
    /// The file name of the public half, a binary keyring (as apt's Signed-By wants it).
    pub(crate) keyring: &'static str,
}

impl SigningKey {
    /// The public half, a binary keyring.
    pub(crate) fn public_keyring(&self) -> PathBuf {
        Path::new(self.dir).join(self.keyring)
    }

    fn home(&self) -> PathBuf {
        Path::new(self.dir).join("gnupg")
    }

    /// The key's fingerprint, generating the key the first time. gpg starts an agent for the key
    /// home: call [`SigningKey::stop_agent`] when done, whatever happened.
    pub(crate) fn ensure(&self) -> Result<String> {
        let home = self.home();
        if let Some(fpr) = fingerprint(&home) {
            if self.public_keyring().exists() {
                return Ok(fpr);
            }
        } else {
            fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
            fs::set_permissions(&home, fs::Permissions::from_mode(0o700))?;
            eprintln!("lab: generating the signing key `{}` in {}", self.uid, home.display());
            cmd::run(gpg(&home).args(["--quick-generate-key", self.uid, "ed25519", "sign", "never"]))?;
        }
        let fpr = fingerprint(&home).context("gpg made no key")?;
        let public = self.public_keyring();
        let tmp = public.with_extension("gpg.tmp");
        cmd::run(gpg(&home).arg("--output").arg(&tmp).args(["--export", "--", &fpr]))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
        fs::rename(&tmp, &public).with_context(|| format!("cannot write {}", public.display()))?;
        Ok(fpr)
    }

    /// The public key as ASCII armor (what pkgs.k8s.io publishes as `Release.key`).
    pub(crate) fn armored(&self, fingerprint: &str) -> Result<String> {
        cmd::output(gpg(&self.home()).args(["--armor", "--export", "--", fingerprint]))
    }

    /// Signs `dir/Release` into `dir/InRelease` (clear-signed) and `dir/Release.gpg` (detached).
    pub(crate) fn sign_release(&self, fingerprint: &str, dir: &Path) -> Result<()> {
        let release = dir.join("Release");
        let home = self.home();
        cmd::run(
            gpg(&home)
                .args(["--local-user", fingerprint, "--clearsign", "--output"])
                .arg(dir.join("InRelease"))
                .arg(&release),
        )?;
        cmd::run(
            gpg(&home)
                .args(["--local-user", fingerprint, "--armor", "--detach-sign", "--output"])
                .arg(dir.join("Release.gpg"))
                .arg(&release),
        )
    }

    /// Stops the agent gpg started for the key home, if it runs.
    pub(crate) fn stop_agent(&self) {
        cmd::run(Command::new("gpgconf").arg("--homedir").arg(self.home()).args(["--kill", "gpg-agent"]))
            .ok();
    }
}

/// `gpg` on a lab key home, never asking anything (the key has no passphrase: it is a lab key).
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
