//! `kubeadm certs renew`, only for the certificates kubeadm manages that expire within
//! `renew_before` ("Certificate Management with kubeadm", "Manual certificate renewal").
//!
//! ```text
//!   plan:  each certificate kubeadm renews that is on this node (a PEM file, or the client
//!          certificate a kubeconfig embeds): its expiry, read here; those within renew_before
//!   apply: `kubeadm certs renew NAME` for each of those
//! ```
//!
//! Certificates are read with the engine's own X.509 parser, never with the host's tools, and a
//! file that is not what it should be fails the task, naming it. The CAs are not renewed (kubeadm
//! never renews them), nor the kubelet's client certificate (the kubelet rotates it itself).

use base64::Engine as _;
use serde_json::Value;

use contract::error::ModuleError;
use contract::host::Host;
use contract::module::{Outputs, Plan};
use contract::remote;
use contract::untrusted::Malformed;

use super::KubeadmAct;
use crate::builtin::certgen::inspect;

/// Default `renew_before`: kubeadm's own warning threshold is 30 days.
pub const DEFAULT_RENEW_BEFORE: &str = "720h";

/// What `kubeadm certs renew` names, and where each certificate is.
pub const RENEWABLE: [(&str, &str); 8] = [
    ("admin.conf", "/etc/kubernetes/admin.conf"),
    ("apiserver", "/etc/kubernetes/pki/apiserver.crt"),
    ("apiserver-etcd-client", "/etc/kubernetes/pki/apiserver-etcd-client.crt"),
    ("apiserver-kubelet-client", "/etc/kubernetes/pki/apiserver-kubelet-client.crt"),
    ("controller-manager.conf", "/etc/kubernetes/controller-manager.conf"),
    ("front-proxy-client", "/etc/kubernetes/pki/front-proxy-client.crt"),
    ("scheduler.conf", "/etc/kubernetes/scheduler.conf"),
    ("super-admin.conf", "/etc/kubernetes/super-admin.conf"),
];

/// The expiry (unix seconds) of the certificate in `text`: a PEM file, or a kubeconfig's
/// embedded `client-certificate-data`; `None` for a kubeconfig whose certificate is a file.
pub fn expiry(path: &str, text: &[u8]) -> Result<Option<i64>, String> {
    let pem = if path.ends_with(".conf") {
        let config: Value = serde_yaml_ng::from_slice(text).map_err(|e| format!("not a kubeconfig: {e}"))?;
        let Some(data) = config["users"][0]["user"]["client-certificate-data"].as_str() else {
            return Ok(None);
        };
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| format!("client-certificate-data is not base64: {e}"))?
    } else {
        text.to_vec()
    };
    inspect::parse_pem(&pem).map(|cert| Some(cert.not_after))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The certificates to renew: those on the node within `renew_before_secs` of expiring. Outputs
/// `expiring` (their names) and `days_left` (name to whole days left, for every one found).
pub(super) async fn plan_renew(host: &dyn Host, renew_before_secs: i64) -> Result<Plan, ModuleError> {
    let now = now();
    let mut changes = Vec::new();
    let mut names = Vec::new();
    let mut days_left = serde_json::Map::new();
    for (name, path) in RENEWABLE {
        if remote::stat(host, path).await?.is_none() {
            continue;
        }
        let text = remote::read(host, path).await?;
        let Some(not_after) =
            expiry(path, &text).map_err(|why| Malformed::whole(why).on(host.name(), path))?
        else {
            continue;
        };
        let left = not_after - now;
        days_left.insert(name.to_owned(), Value::from(left.div_euclid(86_400)));
        if left < renew_before_secs {
            let when =
                if left < 0 { "expired".to_owned() } else { format!("expires in {} days", left / 86_400) };
            changes.push(format!("kubeadm certs renew {name} ({path}: {when})"));
            names.push(name.to_owned());
        }
    }
    let mut outputs = Outputs::new();
    outputs.insert("expiring".into(), Value::from(names.clone()));
    outputs.insert("days_left".into(), Value::Object(days_left));
    if names.is_empty() {
        return Ok(Plan { outputs, ..Plan::unchanged() });
    }
    Ok(Plan { changes, outputs, action: Some(Box::new(KubeadmAct::Renew { names })), ..Plan::default() })
}
