//! The bare lab's Kubernetes package repositories, laid out as pkgs.k8s.io lays them out: one
//! *flat* repository per minor release, served by `mirror` at
//! `http://10.77.0.2/k8s/core:/stable:/v1.30/deb/` (and `v1.31`), for
//! `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] URL /`.
//!
//! ```text
//! <bare hash>.mirror/k8s/
//!   .built-from                       the hash of the packages' recipe and stand-in binaries,
//!                                     and the fingerprint of the key that signed them
//!   core:/stable:/v1.30/deb/
//!     Release InRelease Release.gpg   signed by the lab's Kubernetes key (not the mirror's)
//!     Release.key                     that key's public half, ASCII-armored
//!     Packages Packages.gz            `Filename: amd64/kubeadm_1.30.4-1.1_amd64.deb`
//!     amd64/*.deb                     kubeadm kubelet kubectl cri-tools kubernetes-cni
//!   core:/stable:/v1.31/deb/          the same for 1.31
//! k8s-key/gnupg/                      the Kubernetes repositories' key (generated once, never
//!                                     shipped), beside the mirror's `mirror-key/`
//! ```
//!
//! The packages are built with `dpkg-deb` from the lab's stand-ins (crate `xtask/standins`),
//! once per change of the stand-ins or of this recipe. Each package that holds a stand-in also
//! installs `/usr/share/kube-standins/<tool>.version` (`v1.30.4`), which is what the stand-in
//! reports (`kubeadm version -o short`); see `kube_standins::version`. Every package says in its
//! Description that it is a lab stand-in.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::cmd;
use crate::signkey::SigningKey;

/// Bump when something the hash cannot see changes (the build steps themselves).
const RECIPE_VERSION: u32 = 1;
/// The folder under the mirror's root.
pub(crate) const BASE: &str = "k8s";
const BUILT_FROM: &str = ".built-from";
/// pkgs.k8s.io's package revision (`1.30.4-1.1`).
const REVISION: &str = "1.1";
const ARCH: &str = "amd64";

/// The Kubernetes repositories' own signing key.
pub(crate) const KEY: SigningKey = SigningKey {
    dir: "/var/cache/engine-lab/k8s-key",
    uid: "engine lab Kubernetes packages (lab only, never shipped) <k8s@engine-lab.invalid>",
    keyring: "engine-lab-k8s.gpg",
};

/// One repository: a minor release and the upstream versions it holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    /// `v1.30`
    pub(crate) minor: &'static str,
    /// kubeadm, kubelet and kubectl, oldest first (two in v1.30, so a pin to a version that is
    /// not the newest can be tested).
    pub(crate) kube: &'static [&'static str],
    pub(crate) cri_tools: &'static str,
    pub(crate) cni: &'static str,
}

pub(crate) const RELEASES: [Release; 2] = [
    Release { minor: "v1.30", kube: &["1.30.3", "1.30.4"], cri_tools: "1.30.1", cni: "1.4.0" },
    Release { minor: "v1.31", kube: &["1.31.1"], cri_tools: "1.31.1", cni: "1.5.1" },
];

/// The stand-in binaries the packages hold (built by `cargo build -p kube-standins --bins`).
pub(crate) const STANDINS: [&str; 4] = ["kubeadm", "kubectl", "kubelet", "crictl"];

/// A repository's folder under the mirror's root: `k8s/core:/stable:/v1.30/deb`.
pub(crate) fn repo_path(minor: &str) -> String {
    format!("{BASE}/core:/stable:/{minor}/deb")
}

/// What a host puts in its source: `http://10.77.0.2/k8s/core:/stable:/v1.30/deb/`.
pub(crate) fn url(minor: &str) -> String {
    format!("http://{}/{}/", crate::bare::MIRROR_ADDR, repo_path(minor))
}

/// The package version of an upstream version: `1.30.4` -> `1.30.4-1.1`.
pub(crate) fn package_version(upstream: &str) -> String {
    format!("{upstream}-{REVISION}")
}

/// A file a package installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    Text(String),
    /// A stand-in binary, by name (one of [`STANDINS`]).
    Standin(&'static str),
    /// An empty folder the package owns.
    Dir,
}

/// A file of a package: its path (absolute, as installed), mode and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) content: Content,
}

/// One `.deb`: its control file and what it holds, including `DEBIAN/` scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deb {
    pub(crate) package: &'static str,
    pub(crate) version: String,
    pub(crate) control: String,
    pub(crate) files: Vec<File>,
    /// `DEBIAN/postinst`, `prerm`, `postrm`, `conffiles`: (name, text).
    pub(crate) meta: Vec<(&'static str, String)>,
}

impl Deb {
    /// Its path in the repository, as `Packages` lists it: `amd64/kubeadm_1.30.4-1.1_amd64.deb`.
    pub(crate) fn filename(&self) -> String {
        format!("{ARCH}/{}_{}_{ARCH}.deb", self.package, self.version)
    }
}

/// Upstream's summary (the Description's first line) and section of each package.
fn summary(package: &str) -> (&'static str, &'static str) {
    match package {
        "kubeadm" => ("Command-line utility for administering a Kubernetes cluster", "admin"),
        "kubelet" => ("Node agent for Kubernetes clusters", "net"),
        "kubectl" => ("Command-line utility for interacting with a Kubernetes cluster", "admin"),
        "cri-tools" => ("Command-line utility for interacting with a container runtime", "admin"),
        _ => ("Binaries required to provision kubernetes container networking", "net"),
    }
}

/// The control file. Dependencies as upstream declares them for 1.30 and 1.31 (kubernetes/release,
/// `cmd/krel/templates`): kubeadm needs cri-tools; kubelet needs kubernetes-cni and the node
/// tools; kubectl, cri-tools and kubernetes-cni need nothing.
pub(crate) fn control(package: &'static str, version: &str, depends: &str) -> String {
    let (summary, section) = summary(package);
    let mut text = format!(
        "Package: {package}\nVersion: {version}\nArchitecture: {ARCH}\n\
         Maintainer: engine lab <lab@engine-lab.invalid>\n"
    );
    if !depends.is_empty() {
        let _ = writeln!(text, "Depends: {depends}");
    }
    let _ = write!(
        text,
        "Section: {section}\nPriority: optional\nHomepage: https://kubernetes.io\n\
         Description: {summary} (engine lab stand-in)\n \
         A lab stand-in, never shipped: built by the engine lab (cargo xtask lab up --bare)\n \
         from its stand-ins; not the real {package}. It does what the engine's tests need and\n \
         refuses everything else.\n"
    );
    text
}

/// `kubelet.service` as the kubelet package installs it: `kubelet` with no flags, restarted
/// until kubeadm's drop-in gives it some.
const KUBELET_UNIT: &str = "\
[Unit]
Description=kubelet: The Kubernetes Node Agent (engine lab stand-in)
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
";

/// kubeadm's drop-in for the kubelet unit (the Debian form: overrides from /etc/default/kubelet).
const KUBEADM_DROP_IN: &str = "\
# kubeadm's kubelet drop-in (engine lab stand-in package): the kubelet's flags come from
# the kubeconfig files and the configuration kubeadm writes, then from
# /var/lib/kubelet/kubeadm-flags.env (written by kubeadm init and join), last from
# KUBELET_EXTRA_ARGS in /etc/default/kubelet.
[Service]
Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"
Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
";

const KUBELET_DEFAULTS: &str = "KUBELET_EXTRA_ARGS=\n";

/// The kubelet package enables and starts its unit (the kubelet then waits for kubeadm; the
/// stand-in does nothing), and stops it when removed.
const KUBELET_POSTINST: &str = "\
#!/bin/sh
set -e
if [ \"$1\" = configure ]; then
    systemctl enable kubelet.service
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl restart kubelet.service
    fi
fi
";
const KUBELET_PRERM: &str = "\
#!/bin/sh
set -e
if [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then
    systemctl disable --now kubelet.service
fi
";
/// kubeadm's drop-in changes the kubelet unit: systemd rereads it.
const RELOAD_SYSTEMD: &str = "\
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
";

/// A CNI plugin stand-in: answers `CNI_COMMAND=VERSION`, refuses the rest.
fn cni_plugin(name: &str, version: &str) -> String {
    format!(
        "#!/bin/sh\n# CNI plugin {name}: engine lab stand-in (kubernetes-cni {version}), never shipped.\n\
         if [ \"${{CNI_COMMAND-}}\" = VERSION ]; then\n    \
         echo '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\"]}}'\n    \
         exit 0\nfi\n\
         echo \"{name}: CNI_COMMAND=${{CNI_COMMAND-}} not supported by the lab stand-in\" >&2\nexit 1\n"
    )
}

fn file(path: &str, mode: u32, content: Content) -> File {
    File { path: path.to_owned(), mode, content }
}

/// The version file a stand-in reads (see `kube_standins::version`).
fn version_file(tool: &str, upstream: &str) -> File {
    file(&format!("/usr/share/kube-standins/{tool}.version"), 0o644, Content::Text(format!("v{upstream}\n")))
}

/// Every package of one repository, in a fixed order.
pub(crate) fn debs(release: &Release) -> Vec<Deb> {
    let mut out = Vec::new();
    for upstream in release.kube {
        let version = package_version(upstream);
        out.push(Deb {
            package: "kubeadm",
            control: control("kubeadm", &version, "cri-tools (>= 1.30.0)"),
            version: version.clone(),
            files: vec![
                file("/usr/bin/kubeadm", 0o755, Content::Standin("kubeadm")),
                file(
                    "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
                    0o644,
                    Content::Text(KUBEADM_DROP_IN.to_owned()),
                ),
                version_file("kubeadm", upstream),
            ],
            meta: vec![("postinst", RELOAD_SYSTEMD.to_owned()), ("postrm", RELOAD_SYSTEMD.to_owned())],
        });
        out.push(Deb {
            package: "kubelet",
            control: control(
                "kubelet",
                &version,
                "iptables (>= 1.4.21), kubernetes-cni (>= 1.2.0), iproute2, mount, socat, util-linux, \
                 ethtool, ebtables, conntrack",
            ),
            version: version.clone(),
            files: vec![
                file("/usr/bin/kubelet", 0o755, Content::Standin("kubelet")),
                file(
                    "/usr/lib/systemd/system/kubelet.service",
                    0o644,
                    Content::Text(KUBELET_UNIT.to_owned()),
                ),
                file("/etc/default/kubelet", 0o644, Content::Text(KUBELET_DEFAULTS.to_owned())),
                file("/etc/kubernetes/manifests", 0o755, Content::Dir),
                file("/var/lib/kubelet", 0o755, Content::Dir),
                version_file("kubelet", upstream),
            ],
            meta: vec![
                ("conffiles", "/etc/default/kubelet\n".to_owned()),
                ("postinst", KUBELET_POSTINST.to_owned()),
                ("prerm", KUBELET_PRERM.to_owned()),
                ("postrm", RELOAD_SYSTEMD.to_owned()),
            ],
        });
        out.push(Deb {
            package: "kubectl",
            control: control("kubectl", &version, ""),
            version,
            files: vec![
                file("/usr/bin/kubectl", 0o755, Content::Standin("kubectl")),
                version_file("kubectl", upstream),
            ],
            meta: Vec::new(),
        });
    }
    let version = package_version(release.cri_tools);
    out.push(Deb {
        package: "cri-tools",
        control: control("cri-tools", &version, ""),
        version,
        files: vec![
            file("/usr/bin/crictl", 0o755, Content::Standin("crictl")),
            version_file("crictl", release.cri_tools),
        ],
        meta: Vec::new(),
    });
    let version = package_version(release.cni);
    out.push(Deb {
        package: "kubernetes-cni",
        control: control("kubernetes-cni", &version, ""),
        files: ["bridge", "host-local", "loopback", "portmap"]
            .iter()
            .map(|p| file(&format!("/opt/cni/bin/{p}"), 0o755, Content::Text(cni_plugin(p, release.cni))))
            .collect(),
        version,
        meta: Vec::new(),
    });
    out
}

/// What the repositories are built from: this recipe and the stand-in binaries (so their
/// sources and all they link). A change of either rebuilds them.
fn recipe_hash(standins: &Path) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("engine-lab k8s repositories v{RECIPE_VERSION}\n"));
    for release in &RELEASES {
        h.update(format!("{release:?}\n{:?}\n", debs(release)));
    }
    for name in STANDINS {
        let path = standins.join(name);
        let bytes =
            fs::read(&path).with_context(|| format!("cannot read the stand-in {}", path.display()))?;
        h.update(format!("{name} {}\n", bytes.len()));
        h.update(&bytes);
    }
    Ok(h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The repositories under `mirror/k8s`, built and signed unless the same stand-ins and recipe
/// built them and the same key signed them. `standins`: the folder of the built binaries.
pub(crate) fn ensure(mirror: &Path, standins: &Path) -> Result<()> {
    ensure_with(&KEY, mirror, standins)
}

fn ensure_with(key: &SigningKey, mirror: &Path, standins: &Path) -> Result<()> {
    let hash = recipe_hash(standins)?;
    let signed = key.ensure().and_then(|fingerprint| build(key, mirror, standins, &hash, &fingerprint));
    key.stop_agent();
    signed
}

fn build(key: &SigningKey, mirror: &Path, standins: &Path, hash: &str, fingerprint: &str) -> Result<()> {
    let dest = mirror.join(BASE);
    let stamp = format!("{hash} {fingerprint}\n");
    if fs::read_to_string(dest.join(BUILT_FROM)).is_ok_and(|s| s == stamp) {
        println!("lab: Kubernetes repositories {hash} cached ({})", dest.display());
        return Ok(());
    }
    let started = Instant::now();
    let tmp = mirror.join(format!(".tmp-k8s-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    let armored = key.armored(fingerprint)?;
    let work = tmp.join(".work");
    let mut count = 0;
    for release in &RELEASES {
        let repo = tmp.join(repo_path(release.minor).trim_start_matches(&format!("{BASE}/")));
        fs::create_dir_all(repo.join(ARCH)).with_context(|| format!("cannot create {}", repo.display()))?;
        for deb in debs(release) {
            build_deb(&deb, standins, &work, &repo.join(deb.filename()))?;
            count += 1;
        }
        index(&repo, release)?;
        key.sign_release(fingerprint, &repo)?;
        fs::write(repo.join("Release.key"), &armored)?;
    }
    fs::remove_dir_all(&work)?;
    fs::write(tmp.join(BUILT_FROM), &stamp)?;
    if dest.exists() {
        fs::remove_dir_all(&dest).with_context(|| format!("cannot remove {}", dest.display()))?;
    }
    fs::rename(&tmp, &dest)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
    println!(
        "lab: Kubernetes repositories {hash}: {count} packages built and signed by {fingerprint} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Stages `deb` under `work` and packs it into `out` (owner root, mtimes clamped, so the same
/// inputs give the same file).
fn build_deb(deb: &Deb, standins: &Path, work: &Path, out: &Path) -> Result<()> {
    let root = work.join(format!("{}_{}", deb.package, deb.version));
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    let debian = root.join("DEBIAN");
    fs::create_dir_all(&debian)?;
    fs::write(debian.join("control"), &deb.control)?;
    for (name, text) in &deb.meta {
        let path = debian.join(name);
        fs::write(&path, text)?;
        let mode = if *name == "conffiles" { 0o644 } else { 0o755 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    }
    for f in &deb.files {
        let path = root.join(f.path.trim_start_matches('/'));
        if f.content == Content::Dir {
            fs::create_dir_all(&path)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(f.mode))?;
            continue;
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        match &f.content {
            Content::Text(text) => fs::write(&path, text)?,
            Content::Standin(name) => {
                // Debug info is most of a debug build's size; a package needs none of it.
                cmd::run(
                    Command::new("strip").arg("--strip-debug").arg("-o").arg(&path).arg(standins.join(name)),
                )?
            }
            Content::Dir => unreachable!("handled above"),
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(f.mode))?;
    }
    cmd::run(
        Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", "0")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&root)
            .arg(out),
    )?;
    fs::remove_dir_all(&root)?;
    Ok(())
}

/// `Packages` (and `.gz`) and `Release` of one flat repository.
fn index(repo: &Path, release: &Release) -> Result<()> {
    let packages = cmd::output(Command::new("apt-ftparchive").current_dir(repo).args(["packages", ARCH]))?;
    if packages.matches("\nPackage: ").count() + usize::from(packages.starts_with("Package: ")) == 0 {
        bail!("apt-ftparchive indexed no packages in {}", repo.display());
    }
    fs::write(repo.join("Packages"), &packages)?;
    cmd::run(Command::new("gzip").args(["-9", "-k", "-f", "-n"]).arg(repo.join("Packages")))?;
    let label = format!("isv:kubernetes:core:stable:{}", release.minor);
    let out = cmd::output(
        Command::new("apt-ftparchive")
            .current_dir(repo)
            .args(["-o", "APT::FTPArchive::Release::Origin=engine-lab"])
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Label={label}"))
            .arg("-o")
            .arg(format!("APT::FTPArchive::Release::Architectures={ARCH}"))
            .arg("-o")
            .arg(format!(
                "APT::FTPArchive::Release::Description=engine lab stand-in of pkgs.k8s.io {label} (never shipped)"
            ))
            .args(["release", "."]),
    )?;
    fs::write(repo.join("Release"), out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_pkgs_k8s_io_s() {
        assert_eq!(repo_path("v1.30"), "k8s/core:/stable:/v1.30/deb");
        assert_eq!(url("v1.31"), "http://10.77.0.2/k8s/core:/stable:/v1.31/deb/");
        let debs = debs(&RELEASES[0]);
        let names: Vec<String> = debs.iter().map(Deb::filename).collect();
        assert_eq!(
            names,
            [
                "amd64/kubeadm_1.30.3-1.1_amd64.deb",
                "amd64/kubelet_1.30.3-1.1_amd64.deb",
                "amd64/kubectl_1.30.3-1.1_amd64.deb",
                "amd64/kubeadm_1.30.4-1.1_amd64.deb",
                "amd64/kubelet_1.30.4-1.1_amd64.deb",
                "amd64/kubectl_1.30.4-1.1_amd64.deb",
                "amd64/cri-tools_1.30.1-1.1_amd64.deb",
                "amd64/kubernetes-cni_1.4.0-1.1_amd64.deb",
            ]
        );
        assert!(RELEASES.iter().all(|r| r.kube.iter().all(|v| v.starts_with(&r.minor[1..]))));
        assert!(RELEASES[0].kube.len() >= 2, "a pin to a version that is not the newest is testable");
    }

    #[test]
    fn kubeadm_control_text() {
        let want = "\
Package: kubeadm
Version: 1.30.4-1.1
Architecture: amd64
Maintainer: engine lab <lab@engine-lab.invalid>
Depends: cri-tools (>= 1.30.0)
Section: admin
Priority: optional
Homepage: https://kubernetes.io
Description: Command-line utility for administering a Kubernetes cluster (engine lab stand-in)
 A lab stand-in, never shipped: built by the engine lab (cargo xtask lab up --bare)
 from its stand-ins; not the real kubeadm. It does what the engine's tests need and
 refuses everything else.
";
        let deb =
            debs(&RELEASES[0]).into_iter().find(|d| d.package == "kubeadm" && d.version == "1.30.4-1.1");
        assert_eq!(deb.map(|d| d.control).as_deref(), Some(want));
        assert!(!control("kubectl", "1.31.1-1.1", "").contains("Depends"));
    }

    #[test]
    fn every_package_is_a_stand_in_with_upstream_s_files_and_dependencies() {
        for release in &RELEASES {
            for deb in debs(release) {
                assert!(deb.control.contains("(engine lab stand-in)\n"), "{}", deb.control);
                assert!(deb.control.contains("never shipped"), "{}", deb.control);
                assert!(deb.control.ends_with(".\n"));
                assert!(deb.files.iter().all(|f| f.path.starts_with('/')));
                let paths: Vec<&str> = deb.files.iter().map(|f| f.path.as_str()).collect();
                match deb.package {
                    "kubelet" => {
                        assert!(deb.control.contains(
                            "Depends: iptables (>= 1.4.21), kubernetes-cni (>= 1.2.0), iproute2, mount, socat, \
                             util-linux, ethtool, ebtables, conntrack\n"
                        ));
                        assert!(paths.contains(&"/usr/lib/systemd/system/kubelet.service"));
                        assert!(paths.contains(&"/usr/bin/kubelet"));
                        assert!(
                            deb.meta.iter().any(|(n, t)| *n == "conffiles" && t == "/etc/default/kubelet\n")
                        );
                    }
                    "kubeadm" => {
                        assert!(paths.contains(&"/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"));
                        assert!(paths.contains(&"/usr/bin/kubeadm"));
                    }
                    "kubernetes-cni" => assert!(paths.iter().all(|p| p.starts_with("/opt/cni/bin/"))),
                    "kubectl" | "cri-tools" => assert!(paths.iter().any(|p| p.starts_with("/usr/bin/"))),
                    other => panic!("unexpected package {other}"),
                }
                // A package with a stand-in installs the version that stand-in reports.
                for f in &deb.files {
                    if let Content::Standin(tool) = f.content {
                        let upstream = deb.version.strip_suffix("-1.1").unwrap_or_default();
                        let want = version_file(tool, upstream);
                        assert!(deb.files.contains(&want), "{}: {want:?}", deb.package);
                    }
                }
            }
        }
    }

    /// Builds the repositories into a scratch folder with a scratch key and reads them back
    /// with the Debian tools.
    #[test]
    #[ignore = "needs dpkg-deb, apt-ftparchive, gpg and the built stand-ins (cargo build -p kube-standins --bins)"]
    fn built_repositories_hold_signed_packages_apt_can_read() -> Result<()> {
        let scratch = std::env::temp_dir().join(format!("engine-k8srepo-test-{}", std::process::id()));
        fs::create_dir_all(&scratch)?;
        let dir: &'static str =
            Box::leak(scratch.join("key").to_string_lossy().into_owned().into_boxed_str());
        let key =
            SigningKey { dir, uid: "engine k8srepo test <test@engine-lab.invalid>", keyring: "test.gpg" };
        let standins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug");
        let mirror = scratch.join("mirror");
        fs::create_dir_all(&mirror)?;
        ensure_with(&key, &mirror, &standins)?;
        let stamp = fs::read_to_string(mirror.join("k8s").join(BUILT_FROM))?;
        ensure_with(&key, &mirror, &standins)?;
        assert_eq!(fs::read_to_string(mirror.join("k8s").join(BUILT_FROM))?, stamp, "cached");
        for release in &RELEASES {
            let repo = mirror.join(repo_path(release.minor));
            let packages = fs::read_to_string(repo.join("Packages"))?;
            for deb in debs(release) {
                assert!(packages.contains(&format!("\nFilename: {}\n", deb.filename())), "{packages}");
                let path = repo.join(deb.filename());
                let control = cmd::output(Command::new("dpkg-deb").arg("-f").arg(&path))?;
                assert_eq!(control, deb.control);
                let listing = cmd::output(Command::new("dpkg-deb").arg("-c").arg(&path))?;
                for f in &deb.files {
                    assert!(listing.contains(&format!(" .{}", f.path)), "{}: {listing}", f.path);
                    assert!(listing.lines().all(|l| l.contains(" root/root ")), "{listing}");
                }
            }
            for name in ["InRelease", "Release.gpg", "Release.key", "Packages.gz"] {
                assert!(repo.join(name).exists(), "{name}");
            }
            let armored = fs::read_to_string(repo.join("Release.key"))?;
            assert!(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"));
            cmd::run(
                Command::new("gpgv")
                    .arg("--keyring")
                    .arg(key.public_keyring())
                    .arg(repo.join("Release.gpg"))
                    .arg(repo.join("Release")),
            )?;
        }
        fs::remove_dir_all(&scratch)?;
        Ok(())
    }

    #[test]
    fn the_drop_in_runs_the_packaged_kubelet_with_kubeadm_s_flags() {
        assert!(
            KUBEADM_DROP_IN.contains("\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS")
        );
        assert!(KUBEADM_DROP_IN.contains("EnvironmentFile=-/etc/default/kubelet\n"));
        assert!(KUBELET_UNIT.contains("\nExecStart=/usr/bin/kubelet\n"));
        let plugin = cni_plugin("bridge", "1.4.0");
        assert!(plugin.starts_with("#!/bin/sh\n") && plugin.ends_with("exit 1\n"), "{plugin}");
    }
}
