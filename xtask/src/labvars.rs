//! The variables a bare lab's inventory gives playbooks: where the package mirror serves
//! what upstream serves elsewhere. playbooks/ha.rhai's defaults are upstream's (pkgs.k8s.io,
//! etcd's GitHub releases); these inventory variables point it at the mirror, so a plain
//! `engine run playbooks/ha.rhai -i target/lab/inventory.yml` installs from the lab.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::bare::MIRROR_ADDR;

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
    Ok(vec![
        ("kubernetes_repo".to_owned(), format!("http://{MIRROR_ADDR}/k8s/core:/stable:")),
        ("etcd_release_url".to_owned(), format!("http://{MIRROR_ADDR}/etcd")),
        ("etcd_version".to_owned(), version.clone()),
    ])
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
        let vars = mirror_vars(&dir)?;
        assert_eq!(
            vars,
            [
                ("kubernetes_repo".to_owned(), "http://10.77.0.2/k8s/core:/stable:".to_owned()),
                ("etcd_release_url".to_owned(), "http://10.77.0.2/etcd".to_owned()),
                ("etcd_version".to_owned(), "v3.4.23".to_owned()),
            ]
        );
        fs::create_dir_all(dir.join("etcd/v3.5.0"))?;
        fs::write(dir.join("etcd/v3.5.0/SHA256SUMS"), "x")?;
        assert!(mirror_vars(&dir).is_err());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
