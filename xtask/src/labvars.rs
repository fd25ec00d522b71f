//! The variables a bare lab's inventory gives playbooks: where the package mirror serves
//! what upstream serves elsewhere. playbooks/ha.rhai's defaults are upstream's (pkgs.k8s.io,
//! etcd's GitHub releases); these inventory variables point it at the mirror, so a plain
//! `engine run playbooks/ha.rhai -i target/lab/inventory.yml` installs from the lab.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::bare::MIRROR_ADDR;
use crate::k8srepo;

/// `(name, value)` pairs for the inventory's `all:vars`, read from the mirror's directory
/// `repo` (`etcd/vX.Y.Z/` names the etcd release it serves).
pub(crate) fn mirror_vars(repo: &Path) -> Result<Vec<(String, String)>> {
    let etcd = repo.join("etcd");
    let mut releases = Vec::new();
    for entry in fs::read_dir(&etcd).with_context(|| format!("cannot list {}", etcd.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('v') && entry.path().join("SHA256SUMS").is_file() {
            releases.push(name);
        }
    }
    let [version] = releases.as_slice() else {
        bail!(
            "the mirror's {} holds {} etcd releases, not one: {releases:?}",
            etcd.display(),
            releases.len()
        );
    };
    let mut vars = vec![
        ("kubernetes_repo".to_owned(), format!("http://{MIRROR_ADDR}/{}/core:/stable:", k8srepo::BASE)),
        ("etcd_release_url".to_owned(), format!("http://{MIRROR_ADDR}/etcd")),
        ("etcd_version".to_owned(), version.clone()),
    ];
    // The lab's Kubernetes repositories are signed by a key of their own: the playbook checks
    // the Release.key it fetches against this fingerprint (pkgs.k8s.io's by default).
    let key = repo.join(k8srepo::repo_path(k8srepo::RELEASES[0].minor)).join("Release.key");
    vars.push(("kubernetes_key_fingerprint".to_owned(), fingerprint(&key)?));
    Ok(vars)
}

/// The fingerprint of the one primary key in the armored public key `file`.
fn fingerprint(file: &Path) -> Result<String> {
    if !file.is_file() {
        bail!("the mirror has no {}", file.display());
    }
    let out = crate::cmd::output(
        std::process::Command::new("gpg").args(["--batch", "--with-colons", "--show-keys", "--"]).arg(file),
    )?;
    primary_fingerprint(&out).with_context(|| format!("{} holds no single primary key", file.display()))
}

/// The `fpr` line that follows the one `pub` line of `gpg --with-colons` output.
fn primary_fingerprint(colons: &str) -> Option<String> {
    let mut lines = colons.lines();
    let mut found = None;
    while let Some(line) = lines.next() {
        if line.starts_with("pub:") {
            if found.is_some() {
                return None;
            }
            let fpr = lines.next()?.strip_prefix("fpr:")?;
            found = fpr.split(':').find(|f| !f.is_empty()).map(str::to_owned);
        }
    }
    found.filter(|f| f.len() == 40 && f.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_names_its_one_etcd_release() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("labvars-{}", std::process::id()));
        fs::create_dir_all(dir.join("etcd/v3.4.23"))?;
        fs::write(dir.join("etcd/v3.4.23/SHA256SUMS"), "x")?;
        fs::create_dir_all(dir.join("etcd/.tmp"))?;
        // Without the Kubernetes repositories' Release.key: refused, naming it.
        let Err(error) = mirror_vars(&dir) else { bail!("a mirror without Release.key was accepted") };
        let error = format!("{error:#}");
        assert!(error.contains("k8s/core:/stable:/v1.30/deb/Release.key"), "{error}");
        assert_eq!(k8srepo::url(k8srepo::RELEASES[0].minor), "http://10.77.0.2/k8s/core:/stable:/v1.30/deb/");
        fs::create_dir_all(dir.join("etcd/v3.5.0"))?;
        fs::write(dir.join("etcd/v3.5.0/SHA256SUMS"), "x")?;
        assert!(mirror_vars(&dir).is_err());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn the_primary_key_s_fingerprint_is_read_from_gpg_s_colons() {
        let one = "pub:-:255:22:2346:1:::-:::scSC::::::23::0:\nfpr:::::::::DE15B14486CD377B9E876E1A234654DA9A296436:\n\
                   uid:-::::1::X::isv:kubernetes OBS Project::::::::::0:\nsub:-:255:18:AB:1::::::e::::::23:\n\
                   fpr:::::::::0123456789ABCDEF0123456789ABCDEF01234567:\n";
        assert_eq!(primary_fingerprint(one).as_deref(), Some("DE15B14486CD377B9E876E1A234654DA9A296436"));
        assert_eq!(primary_fingerprint(&format!("{one}{one}")), None, "two keys");
        assert_eq!(primary_fingerprint("uid:x\n"), None);
    }
}
