//! The cluster PKI under /etc/kubernetes/pki: reused when present (as after copying it from
//! the first master), created otherwise, like `kubeadm init`'s certs phase.

use std::fs;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, SanType,
};
use sha2::{Digest, Sha256};

use crate::host_path;

/// A CA: its certificate PEM and key.
#[derive(Debug)]
pub struct Authority {
    pub cert_pem: String,
    pub key: KeyPair,
}

impl Authority {
    /// `sha256:<hex>` of the CA's SubjectPublicKeyInfo, as `--discovery-token-ca-cert-hash` wants.
    pub fn spki_hash(&self) -> String {
        spki_hash_of(&self.key)
    }
}

pub fn spki_hash_of(key: &KeyPair) -> String {
    let digest = Sha256::digest(key.subject_public_key_info());
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// What kubeadm gives its certificates: a year (`CertificateValidityPeriod`), ten for CAs,
/// backdated five minutes (`CertificateBackdate`).
pub const CERT_DAYS: i64 = 365;
pub const CA_DAYS: i64 = 3650;

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(days);
}

/// The end of a certificate's validity, in seconds since the epoch, and its issuer's CN.
pub fn expiry(pem: &str) -> Option<(i64, String)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let issuer =
        cert.issuer().iter_common_name().next().and_then(|c| c.as_str().ok()).unwrap_or("").to_owned();
    Some((cert.validity().not_after.timestamp(), issuer))
}

/// The subject's CN and O of a certificate.
fn subject(pem: &str) -> Result<(String, String), String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).unwrap_or("").to_owned()
    };
    Ok((first(&mut cert.subject().iter_common_name()), first(&mut cert.subject().iter_organization())))
}

fn new_key() -> Result<KeyPair, String> {
    KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).map_err(|e| e.to_string())
}

fn write(dir: &str, name: &str, text: &str, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let path = host_path(&format!("{dir}/{name}"));
    fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

fn read(dir: &str, name: &str) -> Option<String> {
    fs::read_to_string(host_path(&format!("{dir}/{name}"))).ok()
}

/// Loads the CA `name` (`ca`, `front-proxy-ca`) from `dir`, or creates it with `cn`.
pub fn ca(dir: &str, name: &str, cn: &str, log: &mut Vec<String>) -> Result<Authority, String> {
    if let (Some(cert_pem), Some(key_pem)) =
        (read(dir, &format!("{name}.crt")), read(dir, &format!("{name}.key")))
    {
        let key = KeyPair::from_pem(&key_pem).map_err(|e| format!("failure loading {name} key: {e}"))?;
        log.push(format!("[certs] Using existing {name} certificate authority"));
        return Ok(Authority { cert_pem, key });
    }
    let key = new_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    validity(&mut params, CA_DAYS);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    write(dir, &format!("{name}.crt"), &cert.pem(), 0o644)?;
    write(dir, &format!("{name}.key"), &key.serialize_pem(), 0o600)?;
    log.push(format!("[certs] Generating \"{name}\" certificate and key"));
    Ok(Authority { cert_pem: cert.pem(), key })
}

/// The service-account key pair: reused when present.
pub fn service_account(dir: &str, log: &mut Vec<String>) -> Result<(), String> {
    if read(dir, "sa.key").is_some() && read(dir, "sa.pub").is_some() {
        log.push("[certs] Using the existing \"sa\" key".into());
        return Ok(());
    }
    let key = new_key()?;
    write(dir, "sa.key", &key.serialize_pem(), 0o600)?;
    write(dir, "sa.pub", &key.public_key_pem(), 0o644)?;
    log.push("[certs] Generating \"sa\" key and public key".into());
    Ok(())
}

fn san(name: &str) -> SanType {
    match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(name.try_into().expect("DNS name")),
    }
}

/// The SANs of an existing certificate, as text.
fn existing_sans(pem: &str) -> Result<Vec<String>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => out.push((*d).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => out.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()),
                    16 => out.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(out)
}

/// `apiserver.crt`/`.key`, signed by `ca`, for `sans`. An existing pair is reused only when it
/// covers every SAN (real kubeadm refuses a certificate that does not).
pub fn apiserver(dir: &str, ca: &Authority, sans: &[String], log: &mut Vec<String>) -> Result<(), String> {
    if let Some(pem) = read(dir, "apiserver.crt") {
        let have = existing_sans(&pem)?;
        if let Some(missing) = sans.iter().find(|s| !have.contains(s)) {
            return Err(format!(
                "error execution phase certs/apiserver: [certs] certificate apiserver is invalid: \
                 x509: certificate is valid for {}, not {missing}",
                have.join(", ")
            ));
        }
        log.push("[certs] Using existing apiserver certificate and key on disk".into());
        return Ok(());
    }
    issue_apiserver(dir, ca, sans)?;
    log.push(format!("[certs] apiserver serving cert is signed for DNS names and IPs [{}]", sans.join(" ")));
    Ok(())
}

/// `apiserver.crt` issued again from `ca` for the SANs it has (`kubeadm certs renew apiserver`).
pub fn renew_apiserver(dir: &str, ca: &Authority) -> Result<(), String> {
    let pem = read(dir, "apiserver.crt").ok_or_else(|| format!("{dir}/apiserver.crt does not exist"))?;
    issue_apiserver(dir, ca, &existing_sans(&pem)?)
}

fn issue_apiserver(dir: &str, ca: &Authority, sans: &[String]) -> Result<(), String> {
    let key = new_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    params.subject_alt_names = sans.iter().map(|s| san(s)).collect();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, CERT_DAYS);
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca.key).map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    write(dir, "apiserver.crt", &cert.pem(), 0o644)?;
    write(dir, "apiserver.key", &key.serialize_pem(), 0o600)
}

/// A client certificate (for admin.conf), signed by `ca`: (cert PEM, key PEM).
pub fn client(ca: &Authority, cn: &str, org: &str) -> Result<(String, String), String> {
    let key = new_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.distinguished_name.push(DnType::OrganizationName, org);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, CERT_DAYS);
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca.key).map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A client certificate issued again from `ca` with the subject of `pem`.
pub fn renew_client(ca: &Authority, pem: &str) -> Result<(String, String), String> {
    let (cn, org) = subject(pem)?;
    client(ca, &cn, &org)
}
