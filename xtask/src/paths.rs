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
    /// A bare host's Debian release (12, 13); absent for the other kinds (and in older state
    /// files, whose bare hosts were all Debian 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) debian: Option<u8>,
}

impl HostState {
    /// The Debian release the host runs: its bare release, else the default image's (12).
    pub(crate) fn debian(&self) -> u8 {
        self.debian.unwrap_or(crate::bare::DEFAULT_DEBIAN)
    }
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
    /// A bare lab's bare images, `(release, recipe hash)`, Debian 12 first (its hash is
    /// `bare_image`); absent in older state files (Debian 12 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) bare_images: Vec<(u8, String)>,
    /// The releases given to `lab up --releases`, which its bare hosts take in turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) releases: Vec<u8>,
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

    /// The image `host` boots in this lab: its release's bare image, or the default image.
    pub(crate) fn image_dir(&self, host: &HostState) -> PathBuf {
        let bare = || {
            let release = self.bare_images.iter().find(|(d, _)| Some(*d) == host.debian);
            release.map(|(_, hash)| hash.as_str()).or(self.bare_image.as_deref())
        };
        let hash = match host.kind {
            HostKind::Bare => bare().unwrap_or(&self.image),
            HostKind::Lab | HostKind::Mirror => &self.image,
        };
        Path::new(crate::image::IMAGES_DIR).join(hash)
    }

    /// The package mirror directories the mirror host serves, Debian 12's first.
    pub(crate) fn mirror_dirs(&self) -> Vec<PathBuf> {
        if self.bare_images.is_empty() {
            return self.bare_image.iter().map(|h| crate::bare::repo_dir(h)).collect();
        }
        self.bare_images.iter().map(|(_, h)| crate::bare::repo_dir(h)).collect()
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
        assert_eq!(state.hosts[0].debian(), 12);
        assert_eq!(HostKind::Bare.login(), "debian");
        let bare = HostState { kind: HostKind::Bare, ..state.hosts[0].clone() };
        assert!(state.image_dir(&bare).ends_with("b35121a048056c23"));
        assert!(state.mirror_dirs().is_empty());
        Ok(())
    }

    #[test]
    fn a_mixed_lab_boots_each_bare_host_s_release() -> Result<()> {
        let text = r#"{"topology":"2","image":"aaaa","bare_image":"b12","bare_images":[[12,"b12"],[13,"b13"]],
            "releases":[12,13],"hosts":[
            {"name":"mirror","addr":"10.77.0.2","group":"mirror","pid":1,"kind":"mirror"},
            {"name":"h00","addr":"10.77.0.100","group":"nodes","pid":2,"kind":"bare","debian":12},
            {"name":"h01","addr":"10.77.0.101","group":"nodes","pid":3,"kind":"bare","debian":13}]}"#;
        let state: State = serde_json::from_str(text)?;
        let dirs: Vec<PathBuf> = state.hosts.iter().map(|h| state.image_dir(h)).collect();
        assert!(
            dirs[0].ends_with("aaaa") && dirs[1].ends_with("b12") && dirs[2].ends_with("b13"),
            "{dirs:?}"
        );
        assert_eq!(state.hosts.iter().map(HostState::debian).collect::<Vec<_>>(), [12, 12, 13]);
        let mirrors = state.mirror_dirs();
        assert!(mirrors[0].ends_with("b12.mirror") && mirrors[1].ends_with("b13.mirror"), "{mirrors:?}");
        let again: State = serde_json::from_str(&serde_json::to_string(&state)?)?;
        assert_eq!(again, state);
        Ok(())
    }
}
