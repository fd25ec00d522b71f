//! Reading existing certificates and keys, and deciding whether one still fits.
//!
//! Nothing here prints key material: messages name files, algorithms and fields only. The
//! certificates come from hosts, which may be hostile: x509-parser reads them without panics,
//! and names they hold are shown printable (`contract::untrusted`).

use std::collections::BTreeSet;
use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use contract::untrusted::printable;

use super::spec::{Eku, KeyKind, San, Subject, Usages, describe_dn, describe_secs};

/// The fields of a certificate that certgen compares, owned.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    pub(crate) der: Vec<u8>,
    /// Subject as sorted (OID, value).
    pub(crate) subject: Vec<(String, String)>,
    pub(crate) key: KeyKind,
    /// The subjectPublicKey bits (what a key pair's public key must equal).
    pub(crate) public_key: Vec<u8>,
    pub(crate) is_ca: bool,
    pub(crate) key_bits: u16,
    pub(crate) extended: BTreeSet<Eku>,
    /// EKUs this reader has no name for, as dotted OIDs.
    pub(crate) extended_other: BTreeSet<String>,
    pub(crate) sans: BTreeSet<San>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) authority_key_id: Option<Vec<u8>>,
}

const KNOWN_EKUS: [Eku; 10] = [
    Eku(&[2, 5, 29, 37, 0]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 1]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 2]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 3]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 4]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 5]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 6]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 7]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 8]),
    Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 9]),
];

fn eku_by_oid(oid: &str) -> Option<Eku> {
    KNOWN_EKUS.into_iter().find(|e| e.oid() == oid)
}

/// The DER of the first CERTIFICATE block of a PEM file.
pub(crate) fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| "not a PEM certificate".to_owned())?;
    if block.label != "CERTIFICATE" {
        return Err(format!("PEM block is {:?}, not CERTIFICATE", block.label));
    }
    Ok(block.contents)
}

/// Parses a PEM certificate.
pub(crate) fn parse_pem(pem: &[u8]) -> Result<CertInfo, String> {
    parse_der(&pem_to_der(pem)?)
}

pub(crate) fn parse_der(der: &[u8]) -> Result<CertInfo, String> {
    let (_, x509) = X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut subject = Vec::new();
    for attr in x509.subject().iter_attributes() {
        let value = attr.as_str().map_err(|_| "subject has a value that is not a string".to_owned())?;
        subject.push((attr.attr_type().to_id_string(), value.to_owned()));
    }
    subject.sort();
    let spki = x509.public_key();
    let key = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => KeyKind::Rsa(rsa.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => KeyKind::Ec(ec.key_size()),
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => KeyKind::Ed25519,
        _ => KeyKind::Other(spki.algorithm.algorithm.to_id_string()),
    };
    let mut info = CertInfo {
        der: der.to_vec(),
        subject,
        key,
        public_key: spki.subject_public_key.data.to_vec(),
        is_ca: false,
        key_bits: 0,
        extended: BTreeSet::new(),
        extended_other: BTreeSet::new(),
        sans: BTreeSet::new(),
        not_before: x509.validity().not_before.timestamp(),
        not_after: x509.validity().not_after.timestamp(),
        subject_key_id: None,
        authority_key_id: None,
    };
    for ext in x509.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => info.is_ca = bc.ca,
            ParsedExtension::KeyUsage(ku) => info.key_bits = ku.flags,
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let flags = [
                    (eku.any, "2.5.29.37.0"),
                    (eku.server_auth, "1.3.6.1.5.5.7.3.1"),
                    (eku.client_auth, "1.3.6.1.5.5.7.3.2"),
                    (eku.code_signing, "1.3.6.1.5.5.7.3.3"),
                    (eku.email_protection, "1.3.6.1.5.5.7.3.4"),
                    (eku.time_stamping, "1.3.6.1.5.5.7.3.8"),
                    (eku.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
                ];
                let oids = flags
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, oid)| (*oid).to_owned())
                    .chain(eku.other.iter().map(|o| o.to_id_string()));
                for oid in oids {
                    match eku_by_oid(&oid) {
                        Some(known) => {
                            info.extended.insert(known);
                        }
                        None => {
                            info.extended_other.insert(oid);
                        }
                    }
                }
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => {
                            info.sans.insert(San::Dns(d.to_ascii_lowercase()));
                        }
                        GeneralName::IPAddress(bytes) => {
                            let ip = match bytes.len() {
                                4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                                16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                                _ => None,
                            };
                            if let Some(ip) = ip {
                                info.sans.insert(San::Ip(ip));
                            }
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::SubjectKeyIdentifier(id) => info.subject_key_id = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                info.authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Whether `cert` carries a valid signature by the key of `ca`.
pub(crate) fn signed_by(cert: &CertInfo, ca: &CertInfo) -> bool {
    let (Ok((_, cert)), Ok((_, ca))) =
        (X509Certificate::from_der(&cert.der), X509Certificate::from_der(&ca.der))
    else {
        return false;
    };
    cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// Parses a PEM private key (PKCS#8, PKCS#1 or SEC1, as cfssl and certgen write them).
/// The error never contains key material.
pub(crate) fn parse_key(pem: &[u8]) -> Result<rcgen::KeyPair, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "the key file is not PEM text".to_owned())?;
    rcgen::KeyPair::from_pem(text).map_err(|_| "the key file cannot be parsed as a private key".to_owned())
}

/// Whether the key pair is the one whose public key the certificate carries.
pub(crate) fn key_matches(key: &rcgen::KeyPair, cert: &CertInfo) -> bool {
    key.public_key_raw() == cert.public_key.as_slice()
}

/// What an issued leaf certificate should be.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub(crate) subject: Subject,
    pub(crate) sans: BTreeSet<San>,
    pub(crate) usages: Usages,
    pub(crate) key: KeyKind,
    /// Reissue when fewer than this many seconds of validity remain.
    pub(crate) renew_before_secs: i64,
}

/// Why an existing leaf certificate (and its key) must be reissued; empty when it fits.
/// `now` is a Unix time in seconds.
pub(crate) fn reissue_reasons(
    wanted: &Wanted,
    cert_pem: &[u8],
    key_pem: Option<&[u8]>,
    ca: &CertInfo,
    now: i64,
) -> Vec<String> {
    let cert = match parse_pem(cert_pem) {
        Ok(cert) => cert,
        Err(e) => return vec![format!("the existing certificate cannot be read ({e})")],
    };
    let mut reasons = Vec::new();
    if !signed_by(&cert, ca) {
        reasons.push("signed by a different CA".to_owned());
    }
    let subject = wanted.subject.normalized();
    if cert.subject != subject {
        // The certificate was read from the host: its names are shown printable.
        let found = printable(&describe_dn(&cert.subject));
        reasons.push(format!("subject is {found}, wanted {}", describe_dn(&subject)));
    }
    for missing in wanted.sans.difference(&cert.sans) {
        reasons.push(format!("SAN {missing} missing"));
    }
    for extra in cert.sans.difference(&wanted.sans) {
        reasons.push(format!("SAN {} not wanted", printable(&extra.to_string())));
    }
    if cert.key_bits != wanted.usages.key_bits {
        reasons.push(format!(
            "key usages are {}, wanted {}",
            Usages::describe_key_bits(cert.key_bits),
            Usages::describe_key_bits(wanted.usages.key_bits)
        ));
    }
    let wanted_ekus: BTreeSet<Eku> = wanted.usages.extended.iter().copied().collect();
    if cert.extended != wanted_ekus || !cert.extended_other.is_empty() {
        let mut have = Usages::describe_extended(&cert.extended);
        for other in &cert.extended_other {
            have.push_str(&format!(", {other}"));
        }
        reasons.push(format!(
            "extended key usages are {have}, wanted {}",
            Usages::describe_extended(&wanted_ekus)
        ));
    }
    if cert.is_ca {
        reasons.push("it is a CA certificate".to_owned());
    }
    if cert.key != wanted.key {
        reasons.push(format!("key algorithm differs ({}, wanted {})", cert.key, wanted.key));
    }
    match key_pem {
        None => reasons.push("the key file is missing".to_owned()),
        Some(pem) => match parse_key(pem) {
            Err(e) => reasons.push(e),
            Ok(key) if !key_matches(&key, &cert) => {
                reasons.push("the key file does not match the certificate".to_owned());
            }
            Ok(_) => {}
        },
    }
    let left = cert.not_after - now;
    if left <= 0 {
        reasons.push(format!("expired {} ago", describe_secs(left)));
    } else if left < wanted.renew_before_secs {
        reasons.push(format!("expires in {}", describe_secs(left)));
    }
    if cert.not_before > now + 300 {
        reasons.push(format!("not valid for another {}", describe_secs(cert.not_before - now)));
    }
    reasons
}
