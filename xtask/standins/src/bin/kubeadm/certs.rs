//! `kubeadm certs check-expiration` and `kubeadm certs renew all|<cert>`, for the certificates
//! the stand-in's `init` issues: `admin.conf`, `apiserver`, `controller-manager.conf`,
//! `scheduler.conf` (and the CAs `ca`, `front-proxy-ca`, which kubeadm never renews).

use std::fs;

use kube_standins::{die, host_path, pki, unsupported};

use super::{flags, write};

const PKI: &str = "/etc/kubernetes/pki";

/// The certificates the stand-in issues, as kubeadm names them, with where they live and what
/// `renew` says about them.
const CERTS: [(&str, &str, &str); 4] = [
    (
        "admin.conf",
        "/etc/kubernetes/admin.conf",
        "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself",
    ),
    ("apiserver", "/etc/kubernetes/pki/apiserver.crt", "certificate for serving the Kubernetes API"),
    (
        "controller-manager.conf",
        "/etc/kubernetes/controller-manager.conf",
        "certificate embedded in the kubeconfig file for the controller manager to use",
    ),
    (
        "scheduler.conf",
        "/etc/kubernetes/scheduler.conf",
        "certificate embedded in the kubeconfig file for the scheduler manager to use",
    ),
];

/// The names kubeadm knows but the stand-in's init does not issue.
const NOT_ISSUED: [&str; 8] = [
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
    "super-admin.conf",
    "kubelet.conf",
];

fn read(path: &str) -> String {
    fs::read_to_string(host_path(path))
        .unwrap_or_else(|e| die(1, &format!("error reading certificate {path}: {e}")))
}

fn b64_decode(text: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or_else(|e| die(1, &format!("invalid base64 in a kubeconfig: {e}")));
    String::from_utf8(bytes).unwrap_or_else(|_| die(1, "a kubeconfig's certificate is not text"))
}

/// The PEM of a certificate file, or of the client certificate a kubeconfig embeds.
fn cert_pem(path: &str) -> String {
    let text = read(path);
    if !path.ends_with(".conf") {
        return text;
    }
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| die(1, &format!("failed to load {path}: {e}")));
    let data = value["users"][0]["user"]["client-certificate-data"]
        .as_str()
        .unwrap_or_else(|| die(1, &format!("{path} embeds no client certificate")));
    b64_decode(data)
}

/// Go's `Jan 02, 2006 15:04 MST`, in UTC.
fn expires(secs: i64) -> String {
    let iso = kube_standins::rfc3339(u64::try_from(secs).unwrap_or_default());
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month: usize = iso[5..7].parse().unwrap_or(1);
    format!("{} {}, {} {} UTC", MONTHS[month - 1], &iso[8..10], &iso[0..4], &iso[11..16])
}

/// kubeadm's residual time (apimachinery's `ShortHumanDuration`).
pub(crate) fn residual(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    let hours = secs / 3600;
    if secs < 60 {
        format!("{secs}s")
    } else if secs / 60 < 60 {
        format!("{}m", secs / 60)
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        format!("{}y{}d", hours / 24 / 365, hours / 24 % 365)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

pub(crate) fn check_expiration(rest: &[&str]) {
    let f = flags(rest, &[], &[], "certs check-expiration");
    if !f.positional.is_empty() {
        unsupported("kubeadm", &format!("certs check-expiration {}", f.positional.join(" ")));
    }
    let now = i64::try_from(kube_standins::now()).unwrap_or_default();
    println!("[check-expiration] Reading configuration from the cluster...");
    println!(
        "[check-expiration] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'\n"
    );
    println!(
        "{:<26} {:<24} {:<15} {:<23} EXTERNALLY MANAGED",
        "CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY"
    );
    for (name, path, _) in CERTS {
        let (end, issuer) = pki::expiry(&cert_pem(path))
            .unwrap_or_else(|| die(1, &format!("failed to parse the certificate in {path}")));
        let authority = if issuer == "kubernetes" { "ca" } else { issuer.as_str() };
        println!("{name:<26} {:<24} {:<15} {authority:<23} no", expires(end), residual(end - now));
    }
    println!(
        "\n{:<26} {:<24} {:<15} EXTERNALLY MANAGED",
        "CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME"
    );
    for name in ["ca", "front-proxy-ca"] {
        let path = format!("{PKI}/{name}.crt");
        let (end, _) = pki::expiry(&read(&path))
            .unwrap_or_else(|| die(1, &format!("failed to parse the certificate in {path}")));
        println!("{name:<26} {:<24} {:<15} no", expires(end), residual(end - now));
    }
}

pub(crate) fn renew(rest: &[&str]) {
    let f = flags(rest, &[], &[], "certs renew");
    let wanted: Vec<&str> = match f.positional[..] {
        ["all"] => CERTS.iter().map(|(n, _, _)| *n).collect(),
        [one] if CERTS.iter().any(|(n, _, _)| *n == one) => vec![one],
        [one] if NOT_ISSUED.contains(&one) => {
            unsupported("kubeadm", &format!("certs renew {one} (the stand-in's init does not issue it)"))
        }
        [one] => die(1, &format!("error: unknown command \"{one}\" for \"kubeadm certs renew\"")),
        _ => die(1, "kubeadm certs renew: give one certificate name, or all"),
    };
    for file in ["ca.crt", "ca.key"] {
        if !host_path(&format!("{PKI}/{file}")).exists() {
            die(
                1,
                &format!(
                    "[renew] FATAL: couldn't load the certificate authority: {PKI}/{file} does not exist"
                ),
            );
        }
    }
    let mut log = Vec::new();
    let ca = pki::ca(PKI, "ca", "kubernetes", &mut log).unwrap_or_else(|e| die(1, &e));
    println!("[renew] Reading configuration from the cluster...");
    println!(
        "[renew] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'\n"
    );
    for (name, path, what) in CERTS.iter().filter(|(n, _, _)| wanted.contains(n)) {
        if *name == "apiserver" {
            pki::renew_apiserver(PKI, &ca).unwrap_or_else(|e| die(1, &e));
        } else {
            let (cert, key) = pki::renew_client(&ca, &cert_pem(path)).unwrap_or_else(|e| die(1, &e));
            let text = read(path);
            let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| die(1, &format!("failed to load {path}: {e}")));
            use base64::Engine;
            let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
            value["users"][0]["user"]["client-certificate-data"] = b64(&cert).into();
            value["users"][0]["user"]["client-key-data"] = b64(&key).into();
            write(path, &serde_yaml_ng::to_string(&value).unwrap_or_default());
            set_mode(path);
        }
        println!("{what} renewed");
    }
    println!(
        "\nDone renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates."
    );
}

/// Kubeconfigs with keys are readable by root alone.
fn set_mode(path: &str) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(host_path(path), fs::Permissions::from_mode(0o600));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_times_read_like_kubeadms() {
        assert_eq!(residual(364 * 86_400 + 23 * 3600), "364d");
        assert_eq!(residual(3649 * 86_400), "9y");
        assert_eq!(residual(3 * 365 * 86_400 + 86_400 * 10), "3y10d");
        assert_eq!(residual(30 * 3600), "30h");
        assert_eq!(residual(-5), "<invalid>");
        assert_eq!(expires(1_795_473_600), "Nov 23, 2026 22:40 UTC");
    }
}
