//! Making certificates with rcgen, the way cfssl does: random 20-byte serials, a validity
//! that starts five minutes back (rounded to the minute) and lasts exactly `expiry`, SHA-1
//! subject key identifiers over the public key bits, and authority key identifiers taken from
//! the CA's own subject key identifier.

use std::fmt;
use std::time::Duration;

use sha1::{Digest, Sha1};

use super::inspect::{self, CertInfo};
use super::spec::{KeyAlgo, San, Subject, Usages};

/// A PEM private key. Its `Debug` never shows the content.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretPem(pub(crate) String);

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPem(<redacted>)")
    }
}

/// A freshly made certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: SecretPem,
}

/// The signing side of a leaf: the CA's certificate and key.
#[derive(Debug, Clone)]
pub(crate) struct Authority {
    pub(crate) cert: CertInfo,
    /// The certificate file as read.
    pub(crate) cert_pem: Vec<u8>,
    pub(crate) key: SecretPem,
}

impl Authority {
    /// Checks that `key_pem` is the private key of `cert_pem` and that the certificate is a
    /// CA. `origin` names where they came from, for messages.
    pub(crate) fn new(cert_pem: &[u8], key_pem: Vec<u8>, origin: &str) -> Result<Self, String> {
        let cert = inspect::parse_pem(cert_pem).map_err(|e| format!("CA certificate {origin}: {e}"))?;
        if !cert.is_ca {
            return Err(format!("{origin} is not a CA certificate (basic constraints CA:FALSE or absent)"));
        }
        let key = inspect::parse_key(&key_pem).map_err(|e| format!("CA key {origin}: {e}"))?;
        if !inspect::key_matches(&key, &cert) {
            return Err(format!("the CA key does not match the CA certificate ({origin})"));
        }
        if cert.key.signature_algorithm().is_none() {
            return Err(format!("the CA key ({}) cannot sign here ({origin})", cert.key));
        }
        let key = String::from_utf8(key_pem).map_err(|_| format!("CA key {origin} is not PEM text"))?;
        Ok(Self { cert, cert_pem: cert_pem.to_vec(), key: SecretPem(key) })
    }

    /// The CA's key pair, set to sign with the algorithm cfssl would pick for it.
    fn signing_key(&self) -> Result<rcgen::KeyPair, String> {
        let alg = self.cert.key.signature_algorithm().ok_or("unsupported CA key")?;
        rcgen::KeyPair::from_pem_and_sign_algo(&self.key.0, alg)
            .map_err(|_| "the CA key cannot be loaded for signing".to_owned())
    }
}

/// Everything a certificate needs besides its issuer.
#[derive(Debug, Clone)]
pub(crate) struct CertSpec {
    pub(crate) subject: Subject,
    pub(crate) sans: Vec<San>,
    pub(crate) usages: Usages,
    pub(crate) key: KeyAlgo,
    pub(crate) expiry: Duration,
}

/// cfssl's subject key identifier: SHA-1 of the subjectPublicKey bits (RFC 5280 method 1).
fn key_id(public_key: &[u8]) -> Vec<u8> {
    Sha1::digest(public_key).to_vec()
}

/// 20 random bytes, the top bit clear so the serial is positive and fits 20 octets.
fn random_serial() -> Result<rcgen::SerialNumber, String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a serial number: {e}"))?;
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 1;
    }
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

/// The parameters shared by CA and leaf certificates; `now` is a Unix time in seconds.
fn params(spec: &CertSpec, public_key: &[u8], now: i64) -> Result<rcgen::CertificateParams, String> {
    let mut params = rcgen::CertificateParams::default();
    // cfssl: notBefore = now rounded to the minute, minus 5 minutes; notAfter = notBefore + expiry.
    let not_before = (now + 30) / 60 * 60 - 300;
    let expiry = i64::try_from(spec.expiry.as_secs()).map_err(|_| "expiry is too long")?;
    let time = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| "expiry is too long".to_owned())
    };
    params.not_before = time(not_before)?;
    params.not_after = time(not_before.checked_add(expiry).ok_or("expiry is too long")?)?;
    params.serial_number = Some(random_serial()?);
    params.distinguished_name = spec.subject.to_rcgen();
    params.subject_alt_names = spec.sans.iter().map(San::to_rcgen).collect::<Result<_, _>>()?;
    params.key_usages = spec.usages.rcgen_key_usages();
    params.extended_key_usages = spec.usages.rcgen_extended();
    params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(key_id(public_key));
    Ok(params)
}

/// A self-signed CA: key usages cert sign and CRL sign, CA:TRUE without a path length, as
/// `cfssl gencert -initca` makes it.
pub(crate) fn ca(spec: &CertSpec, now: i64) -> Result<Issued, String> {
    let key = spec.key.generate().map_err(|e| format!("cannot generate a {} key: {e}", spec.key))?;
    let mut params = params(spec, key.public_key_raw(), now)?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).map_err(|e| format!("cannot make the CA certificate: {e}"))?;
    Ok(Issued { cert_pem: cert.pem(), key_pem: SecretPem(key.serialize_pem()) })
}

/// A leaf signed by `authority`: CA:FALSE, with subject and authority key identifiers.
pub(crate) fn leaf(spec: &CertSpec, authority: &Authority, now: i64) -> Result<Issued, String> {
    let ca_key = authority.signing_key()?;
    let issuer = rcgen::Issuer::from_ca_cert_der(&authority.cert.der.clone().into(), &ca_key)
        .map_err(|e| format!("cannot use the CA certificate as issuer: {e}"))?;
    let key = spec.key.generate().map_err(|e| format!("cannot generate a {} key: {e}", spec.key))?;
    let mut params = params(spec, key.public_key_raw(), now)?;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).map_err(|e| format!("cannot sign the certificate: {e}"))?;
    Ok(Issued { cert_pem: cert.pem(), key_pem: SecretPem(key.serialize_pem()) })
}
