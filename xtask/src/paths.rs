//! Where lab state lives: the repo's gitignored `target/lab/`, plus `state.json`,
//! the small record that lets `down`, `status` and the fault commands find the hosts.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// `<workspace>/target/lab`
    pub(crate) lab: PathBuf,
}

impl Paths {
    pub(crate) fn new() -> Result<Self> {
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest.parent().context("xtask's manifest directory has no parent")?;
        let lab = root.join("target").join("lab");
        if lab.to_string_lossy().contains([':', ',', ' ']) {
            bail!(
                "lab directory {} must not contain ':', ',' or spaces (nspawn --bind-ro syntax)",
                lab.display()
            );
        }
        Ok(Self { lab })
    }

    pub(crate) fn workspace_root(&self) -> &Path {
        self.lab.parent().and_then(Path::parent).unwrap_or(Path::new("."))
    }

    pub(crate) fn key(&self) -> PathBuf {
        self.lab.join("id_ed25519")
    }
    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.lab.join("known_hosts")
    }
    pub(crate) fn inventory(&self) -> PathBuf {
        self.lab.join("inventory.yml")
    }
    /// The inventory of the `fleet` hosts of an `ha+N` lab (absent otherwise).
    pub(crate) fn fleet_inventory(&self) -> PathBuf {
        self.lab.join("fleet.yml")
    }
    pub(crate) fn state(&self) -> PathBuf {
        self.lab.join("state.json")
    }
    /// root's authorized_keys: mode 0600, owned by root.
    pub(crate) fn authorized_keys_root(&self) -> PathBuf {
        self.lab.join("authorized_keys.root")
    }
    /// deploy's authorized_keys: 0644 root-owned, because sshd reads it as deploy.
    pub(crate) fn authorized_keys_deploy(&self) -> PathBuf {
        self.lab.join("authorized_keys.deploy")
    }
    pub(crate) fn host_dir(&self, name: &str) -> PathBuf {
        self.lab.join("hosts").join(name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostState {
    pub(crate) name: String,
    pub(crate) addr: Ipv4Addr,
    pub(crate) group: String,
    /// The nspawn process; None before boot.
    pub(crate) pid: Option<u32>,
    /// Which image it boots and how it is logged into (absent in older state files: `lab`).
    #[serde(default)]
    pub(crate) kind: HostKind,
}

/// What a host is: a host of the default image, a bare host, or the bare lab's package mirror.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HostKind {
    /// The default image, everything pre-installed; root logs in.
    #[default]
    Lab,
    /// The bare image (a fresh cloud image's look); `debian` logs in, root cannot.
    Bare,
    /// The default image serving the bare image's package mirror; root logs in.
    Mirror,
}

impl HostKind {
    /// The user the lab's own SSH probes log in as.
    pub(crate) fn login(self) -> &'static str {
        match self {
            Self::Bare => crate::bare::USER,
            Self::Lab | Self::Mirror => "root",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) topology: String,
    /// The image's recipe hash.
    pub(crate) image: String,
    /// The bare image's recipe hash, in a bare lab (`lab up --bare`).
    #[serde(default)]
    pub(crate) bare_image: Option<String>,
    pub(crate) hosts: Vec<HostState>,
}

impl State {
    pub(crate) fn load(paths: &Paths) -> Result<Option<Self>> {
        let file = paths.state();
        match fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("cannot parse {}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
        }
    }

    /// Loads the state, failing with a hint when no lab is up.
    pub(crate) fn require(paths: &Paths) -> Result<Self> {
        Self::load(paths)?.context("no lab is up (run `cargo xtask lab up`)")
    }

    pub(crate) fn save(&self, paths: &Paths) -> Result<()> {
        let file = paths.state();
        let tmp = file.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))
    }

    /// The image a host of `kind` boots in this lab.
    pub(crate) fn image_dir(&self, kind: HostKind) -> PathBuf {
        let hash = match kind {
            HostKind::Bare => self.bare_image.as_deref().unwrap_or(&self.image),
            HostKind::Lab | HostKind::Mirror => &self.image,
        };
        Path::new(crate::image::IMAGES_DIR).join(hash)
    }

    pub(crate) fn host(&self, name: &str) -> Result<&HostState> {
        self.hosts.iter().find(|h| h.name == name).with_context(|| {
            let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
            format!("no host `{name}` in the {} lab (hosts: {})", self.topology, names.join(" "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_of_an_older_xtask_is_a_default_lab() -> Result<()> {
        let old = r#"{"topology":"ha","image":"b35121a048056c23","hosts":[{"name":"etcd0","addr":"10.77.0.11","group":"etcd","pid":7}]}"#;
        let state: State = serde_json::from_str(old)?;
        assert_eq!(state.bare_image, None);
        assert_eq!(state.hosts[0].kind, HostKind::Lab);
        assert_eq!(state.hosts[0].kind.login(), "root");
        assert_eq!(HostKind::Bare.login(), "debian");
        assert!(state.image_dir(HostKind::Bare).ends_with("b35121a048056c23"));
        Ok(())
    }
}
