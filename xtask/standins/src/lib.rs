//! Lab stand-ins for `kubeadm` and `kubectl`: no Kubernetes control plane can run in the lab,
//! so these binaries behave like the real tools exactly where the engine's modules depend on
//! them, and refuse everything else with "not supported by the lab stand-in".
//!
//! - [`config`]: kubeadm's configuration formats (v1alpha1, v1beta3, v1beta4), decoded strictly.
//! - [`pki`]: the cluster CA and the certificates `kubeadm init` issues.
//! - [`store`]: the object store `kubectl` reads and writes (one JSON file per host), which
//!   `kubeadm init` seeds with the objects real kubeadm creates.
//! - [`cluster`]: the shared cluster API (nodes, versions, the event log), one folder per cluster
//!   in a directory every lab host mounts.
//! - [`version`]: the version each stand-in reports, read from the file its lab package installs.
//!
//! Binaries: `kubeadm`, `kubectl`, and, for the lab's Kubernetes packages only, `kubelet` (accepts
//! the flags its unit and kubeadm's drop-in pass, then does nothing until stopped) and `crictl`
//! (`--version` only).
//!
//! Everything lives under `$KUBE_STANDIN_ROOT` (default `/`), so unit tests can use a temp dir;
//! `$KUBE_STANDIN_HOSTNAME` stands for the host's name there.
#![allow(clippy::unwrap_used)]

/// The kubeadm configuration types: the same ones the `kubeadm` module parses playbooks with.
pub use modules::builtin::kubeadm::config;
pub mod cluster;
pub mod pki;
pub mod skew;
pub mod store;
pub mod version;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every stand-in says about itself.
pub const VERSION_NOTE: &str = "lab stand-in (not the real tool; engine lab tooling only)";

/// `path` (absolute, as on a real host) under the stand-in's root.
pub fn host_path(path: &str) -> PathBuf {
    let root = std::env::var_os("KUBE_STANDIN_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    root.join(path.trim_start_matches('/'))
}

/// Prints `message` to stderr and exits with `code`.
pub fn die(code: i32, message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(code)
}

/// The refusal for anything the stand-in does not do.
pub fn unsupported(tool: &str, what: &str) -> ! {
    die(1, &format!("error: {tool} {what}: not supported by the lab stand-in"))
}

/// `n` random characters from `[a-z0-9]`.
pub fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// Runs `systemctl ARGS` (its outcome ignored, as kubeadm's kubelet restarts), except under a
/// `$KUBE_STANDIN_ROOT` (unit tests), where there is no host's systemd to ask.
pub fn systemctl(args: &[&str]) {
    if std::env::var_os("KUBE_STANDIN_ROOT").is_none() {
        let _ = std::process::Command::new("systemctl").args(args).status();
    }
}

/// This host's name: `$KUBE_STANDIN_HOSTNAME` (unit tests), else the kernel's.
pub fn hostname() -> String {
    if let Some(name) = std::env::var_os("KUBE_STANDIN_HOSTNAME") {
        return name.to_string_lossy().into_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "node".into())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// `secs` as RFC 3339 UTC (`2026-11-23T22:40:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A kubeconfig for `user` against `server`, trusting `ca_pem`.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &str, client: Option<(&str, &str)>) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let credentials = match client {
        Some((cert, key)) => {
            format!("    client-certificate-data: {}\n    client-key-data: {}\n", b64(cert), b64(key))
        }
        None => "    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    \
                 client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\n"
            .to_owned(),
    };
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  \
         name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: {user}\n  \
         name: {user}@kubernetes\ncurrent-context: {user}@kubernetes\nkind: Config\npreferences: {{}}\n\
         users:\n- name: {user}\n  user:\n{credentials}",
        b64(ca_pem)
    )
}

/// The `server:` of a kubeconfig's first cluster.
pub fn kubeconfig_server(text: &str) -> Option<String> {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    value["clusters"][0]["cluster"]["server"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_473_600), "2026-11-23T22:40:00Z");
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::KubeadmConfig;

    #[test]
    fn decodes_strictly_like_kubeadm() {
        let bad = serde_json::json!({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                                     "etcd": {"external": {"endpoints": [], "caFlie": "x"}}});
        let error = KubeadmConfig::parse(&bad).unwrap_err().to_string();
        assert!(error.ends_with("strict decoding error: unknown field \"etcd.external.caFlie\""), "{error}");
        let kind = serde_json::json!({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "JoinConfigurationX"});
        assert!(
            KubeadmConfig::parse(&kind)
                .unwrap_err()
                .to_string()
                .starts_with("no kind \"JoinConfigurationX\"")
        );
    }
}
