//! What a certificate should be, in cfssl's vocabulary: key algorithms, usages and profiles,
//! subject names, and Go-style durations.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use contract::error::ArgsError;
use schemars::JsonSchema;
use serde::Deserialize;

/// A key algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum KeyAlgo {
    /// RSA, 2048 bits (cfssl `{"algo": "rsa", "size": 2048}`), signs with SHA-256.
    #[serde(rename = "rsa2048")]
    Rsa2048,
    /// RSA, 4096 bits, signs with SHA-512 (as cfssl does).
    #[serde(rename = "rsa4096")]
    Rsa4096,
    /// ECDSA on P-256 (cfssl `{"algo": "ecdsa", "size": 256}`, its default), signs with SHA-256.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on P-384, signs with SHA-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    /// Ed25519 (not in cfssl 1.2; etcd and Go accept it).
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyAlgo {
    /// The kind of key this algorithm makes.
    pub(crate) fn kind(self) -> KeyKind {
        match self {
            KeyAlgo::Rsa2048 => KeyKind::Rsa(2048),
            KeyAlgo::Rsa4096 => KeyKind::Rsa(4096),
            KeyAlgo::EcdsaP256 => KeyKind::Ec(256),
            KeyAlgo::EcdsaP384 => KeyKind::Ec(384),
            KeyAlgo::Ed25519 => KeyKind::Ed25519,
        }
    }

    /// A fresh random key pair.
    pub(crate) fn generate(self) -> Result<rcgen::KeyPair, rcgen::Error> {
        match self {
            KeyAlgo::Rsa2048 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            KeyAlgo::Rsa4096 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA512, rcgen::RsaKeySize::_4096)
            }
            KeyAlgo::EcdsaP256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgo::EcdsaP384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgo::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
        }
    }
}

impl fmt::Display for KeyAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind().fmt(f)
    }
}

/// The kind of an existing key, as read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa(usize),
    Ec(usize),
    Ed25519,
    Other(String),
}

impl KeyKind {
    /// The signature algorithm a CA key of this kind signs with: cfssl's choice by key size
    /// (RSA >= 4096 bits: SHA-512, >= 3072: SHA-384, else SHA-256; P-384: SHA-384).
    pub(crate) fn signature_algorithm(&self) -> Option<&'static rcgen::SignatureAlgorithm> {
        Some(match self {
            KeyKind::Rsa(bits) if *bits >= 4096 => &rcgen::PKCS_RSA_SHA512,
            KeyKind::Rsa(bits) if *bits >= 3072 => &rcgen::PKCS_RSA_SHA384,
            KeyKind::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            KeyKind::Ec(256) => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::Ec(384) => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
            KeyKind::Ec(_) | KeyKind::Other(_) => return None,
        })
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "rsa{bits}"),
            KeyKind::Ec(bits) => write!(f, "ecdsa-p{bits}"),
            KeyKind::Ed25519 => f.write_str("ed25519"),
            KeyKind::Other(what) => f.write_str(what),
        }
    }
}

/// One of cfssl's usage names (`ca-config.json` `usages`). Key usages and extended key usages
/// share one list, as in cfssl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
pub enum Usage {
    /// Key usage digitalSignature (cfssl's name for it).
    #[serde(rename = "signing")]
    Signing,
    #[serde(rename = "digital signature")]
    DigitalSignature,
    #[serde(rename = "content commitment")]
    ContentCommitment,
    #[serde(rename = "key encipherment")]
    KeyEncipherment,
    #[serde(rename = "key agreement")]
    KeyAgreement,
    #[serde(rename = "data encipherment")]
    DataEncipherment,
    #[serde(rename = "cert sign")]
    CertSign,
    #[serde(rename = "crl sign")]
    CrlSign,
    #[serde(rename = "encipher only")]
    EncipherOnly,
    #[serde(rename = "decipher only")]
    DecipherOnly,
    #[serde(rename = "any")]
    Any,
    #[serde(rename = "server auth")]
    ServerAuth,
    #[serde(rename = "client auth")]
    ClientAuth,
    #[serde(rename = "code signing")]
    CodeSigning,
    #[serde(rename = "email protection")]
    EmailProtection,
    #[serde(rename = "s/mime")]
    Smime,
    #[serde(rename = "timestamping")]
    Timestamping,
    #[serde(rename = "ocsp signing")]
    OcspSigning,
    #[serde(rename = "ipsec end system")]
    IpsecEndSystem,
    #[serde(rename = "ipsec tunnel")]
    IpsecTunnel,
    #[serde(rename = "ipsec user")]
    IpsecUser,
}

/// A key usage bit, numbered as in RFC 5280 (digitalSignature is bit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyUsageBit(pub(crate) u8);

/// An extended key usage, by OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Eku(pub(crate) &'static [u64]);

const EKU_ANY: Eku = Eku(&[2, 5, 29, 37, 0]);
const EKU_SERVER_AUTH: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 1]);
const EKU_CLIENT_AUTH: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 2]);
const EKU_CODE_SIGNING: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 3]);
const EKU_EMAIL: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 4]);
const EKU_IPSEC_END_SYSTEM: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 5]);
const EKU_IPSEC_TUNNEL: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 6]);
const EKU_IPSEC_USER: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 7]);
const EKU_TIMESTAMPING: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 8]);
const EKU_OCSP: Eku = Eku(&[1, 3, 6, 1, 5, 5, 7, 3, 9]);

impl Eku {
    /// The dotted OID.
    pub(crate) fn oid(self) -> String {
        self.0.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
    }

    /// The name cfssl and OpenSSL readers know it by.
    pub(crate) fn label(self) -> String {
        match self {
            EKU_ANY => "any".into(),
            EKU_SERVER_AUTH => "server auth".into(),
            EKU_CLIENT_AUTH => "client auth".into(),
            EKU_CODE_SIGNING => "code signing".into(),
            EKU_EMAIL => "email protection".into(),
            EKU_IPSEC_END_SYSTEM => "ipsec end system".into(),
            EKU_IPSEC_TUNNEL => "ipsec tunnel".into(),
            EKU_IPSEC_USER => "ipsec user".into(),
            EKU_TIMESTAMPING => "timestamping".into(),
            EKU_OCSP => "ocsp signing".into(),
            other => other.oid(),
        }
    }
}

/// Key usage bit names, by bit number.
const KEY_USAGE_NAMES: [&str; 9] = [
    "digital signature",
    "content commitment",
    "key encipherment",
    "data encipherment",
    "key agreement",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
];

/// Either a key usage bit or an extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageKind {
    Key(KeyUsageBit),
    Extended(Eku),
}

impl Usage {
    /// What the name means in the certificate, as cfssl maps it (`signing` is digitalSignature).
    pub(crate) fn kind(self) -> UsageKind {
        use UsageKind::{Extended, Key};
        match self {
            Usage::Signing | Usage::DigitalSignature => Key(KeyUsageBit(0)),
            Usage::ContentCommitment => Key(KeyUsageBit(1)),
            Usage::KeyEncipherment => Key(KeyUsageBit(2)),
            Usage::DataEncipherment => Key(KeyUsageBit(3)),
            Usage::KeyAgreement => Key(KeyUsageBit(4)),
            Usage::CertSign => Key(KeyUsageBit(5)),
            Usage::CrlSign => Key(KeyUsageBit(6)),
            Usage::EncipherOnly => Key(KeyUsageBit(7)),
            Usage::DecipherOnly => Key(KeyUsageBit(8)),
            Usage::Any => Extended(EKU_ANY),
            Usage::ServerAuth => Extended(EKU_SERVER_AUTH),
            Usage::ClientAuth => Extended(EKU_CLIENT_AUTH),
            Usage::CodeSigning => Extended(EKU_CODE_SIGNING),
            Usage::EmailProtection | Usage::Smime => Extended(EKU_EMAIL),
            Usage::Timestamping => Extended(EKU_TIMESTAMPING),
            Usage::OcspSigning => Extended(EKU_OCSP),
            Usage::IpsecEndSystem => Extended(EKU_IPSEC_END_SYSTEM),
            Usage::IpsecTunnel => Extended(EKU_IPSEC_TUNNEL),
            Usage::IpsecUser => Extended(EKU_IPSEC_USER),
        }
    }
}

/// Key usages as the certificate's bit string (bit n is `1 << n`, as x509-parser reads it)
/// and extended key usages in the order given (duplicates dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Usages {
    pub(crate) key_bits: u16,
    pub(crate) extended: Vec<Eku>,
}

impl Usages {
    pub(crate) fn from_names(names: &[Usage]) -> Self {
        let mut usages = Usages::default();
        for name in names {
            match name.kind() {
                UsageKind::Key(KeyUsageBit(bit)) => usages.key_bits |= 1 << bit,
                UsageKind::Extended(eku) => {
                    if !usages.extended.contains(&eku) {
                        usages.extended.push(eku);
                    }
                }
            }
        }
        usages
    }

    /// The CA's usages, as `cfssl gencert -initca` sets them.
    pub(crate) fn ca() -> Self {
        Self::from_names(&[Usage::CertSign, Usage::CrlSign])
    }

    pub(crate) fn rcgen_key_usages(&self) -> Vec<rcgen::KeyUsagePurpose> {
        use rcgen::KeyUsagePurpose as K;
        let all = [
            K::DigitalSignature,
            K::ContentCommitment,
            K::KeyEncipherment,
            K::DataEncipherment,
            K::KeyAgreement,
            K::KeyCertSign,
            K::CrlSign,
            K::EncipherOnly,
            K::DecipherOnly,
        ];
        all.into_iter()
            .enumerate()
            .filter(|(bit, _)| self.key_bits & (1 << bit) != 0)
            .map(|(_, k)| k)
            .collect()
    }

    pub(crate) fn rcgen_extended(&self) -> Vec<rcgen::ExtendedKeyUsagePurpose> {
        self.extended.iter().map(|e| rcgen::ExtendedKeyUsagePurpose::Other(e.0.to_vec())).collect()
    }

    pub(crate) fn describe_key_bits(bits: u16) -> String {
        let names: Vec<&str> = KEY_USAGE_NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| bits & (1 << bit) != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() { "none".into() } else { names.join(", ") }
    }

    pub(crate) fn describe_extended(ekus: &BTreeSet<Eku>) -> String {
        if ekus.is_empty() {
            "none".into()
        } else {
            ekus.iter().map(|e| e.label()).collect::<Vec<_>>().join(", ")
        }
    }
}

/// The guide's `ca-config.json` profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// signing, key encipherment, server auth, client auth (the guide's `server` profile
    /// includes client auth).
    Server,
    /// signing, key encipherment, client auth.
    Client,
    /// signing, key encipherment, server auth, client auth.
    Peer,
}

impl Profile {
    pub(crate) fn usages(self) -> &'static [Usage] {
        match self {
            Profile::Server | Profile::Peer => {
                &[Usage::Signing, Usage::KeyEncipherment, Usage::ServerAuth, Usage::ClientAuth]
            }
            Profile::Client => &[Usage::Signing, Usage::KeyEncipherment, Usage::ClientAuth],
        }
    }

    pub(crate) fn file_base(self) -> &'static str {
        match self {
            Profile::Server => "server",
            Profile::Client => "client",
            Profile::Peer => "peer",
        }
    }
}

/// One entry of cfssl's CSR `names`: subject attributes besides the common name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Name {
    /// Country.
    #[serde(rename = "C")]
    pub c: Option<String>,
    /// State or province.
    #[serde(rename = "ST")]
    pub st: Option<String>,
    /// Locality (city).
    #[serde(rename = "L")]
    pub l: Option<String>,
    /// Organization.
    #[serde(rename = "O")]
    pub o: Option<String>,
    /// Organizational unit.
    #[serde(rename = "OU")]
    pub ou: Option<String>,
}

/// A subject attribute type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Attr {
    C,
    St,
    L,
    O,
    Ou,
    Cn,
}

impl Attr {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Attr::C => "C",
            Attr::St => "ST",
            Attr::L => "L",
            Attr::O => "O",
            Attr::Ou => "OU",
            Attr::Cn => "CN",
        }
    }

    pub(crate) fn oid(self) -> &'static str {
        match self {
            Attr::C => "2.5.4.6",
            Attr::St => "2.5.4.8",
            Attr::L => "2.5.4.7",
            Attr::O => "2.5.4.10",
            Attr::Ou => "2.5.4.11",
            Attr::Cn => "2.5.4.3",
        }
    }

    pub(crate) fn from_oid(oid: &str) -> Option<Self> {
        [Attr::C, Attr::St, Attr::L, Attr::O, Attr::Ou, Attr::Cn].into_iter().find(|a| a.oid() == oid)
    }

    fn rcgen(self) -> rcgen::DnType {
        match self {
            Attr::C => rcgen::DnType::CountryName,
            Attr::St => rcgen::DnType::StateOrProvinceName,
            Attr::L => rcgen::DnType::LocalityName,
            Attr::O => rcgen::DnType::OrganizationName,
            Attr::Ou => rcgen::DnType::OrganizationalUnitName,
            Attr::Cn => rcgen::DnType::CommonName,
        }
    }
}

/// A subject: attributes in Go's order (C, ST, L, O, OU, then CN), as cfssl writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subject(pub(crate) Vec<(Attr, String)>);

impl Subject {
    /// Builds a subject from a common name and cfssl-style `names`. Each attribute type may
    /// appear once (rcgen keeps one value per type).
    /// A mistake is reported at the argument it is about (`names` or `cn`).
    pub(crate) fn new(cn: &str, names: &[Name]) -> Result<Self, ArgsError> {
        let mut attrs: Vec<(Attr, String)> = Vec::new();
        for name in names {
            for (attr, value) in [
                (Attr::C, &name.c),
                (Attr::St, &name.st),
                (Attr::L, &name.l),
                (Attr::O, &name.o),
                (Attr::Ou, &name.ou),
            ] {
                let Some(value) = value else { continue };
                if attrs.iter().any(|(a, _)| *a == attr) {
                    let message = format!("names: {} is given more than once", attr.label());
                    return Err(ArgsError::invalid("names", message));
                }
                attrs.push((attr, value.clone()));
            }
        }
        if cn.is_empty() {
            return Err(ArgsError::invalid("cn", "cn must not be empty"));
        }
        attrs.push((Attr::Cn, cn.to_owned()));
        attrs.sort_by_key(|(a, _)| *a);
        Ok(Subject(attrs))
    }

    /// The distinguished name, with each value a PrintableString when it can be one and a
    /// UTF8String otherwise (Go's encoding, so names compare equal byte for byte).
    pub(crate) fn to_rcgen(&self) -> rcgen::DistinguishedName {
        let mut dn = rcgen::DistinguishedName::new();
        for (attr, value) in &self.0 {
            let encoded = match rcgen::string::PrintableString::try_from(value.as_str()) {
                Ok(p) => rcgen::DnValue::PrintableString(p),
                Err(_) => rcgen::DnValue::Utf8String(value.clone()),
            };
            dn.push(attr.rcgen(), encoded);
        }
        dn
    }

    /// The attributes as (OID, value), sorted: the form compared with existing certificates.
    pub(crate) fn normalized(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            self.0.iter().map(|(a, s)| (a.oid().to_owned(), s.clone())).collect();
        v.sort();
        v
    }
}

/// Renders (OID, value) pairs like OpenSSL: `C=US, ST=CA, CN=etcd0`.
pub(crate) fn describe_dn(attrs: &[(String, String)]) -> String {
    attrs
        .iter()
        .map(|(oid, v)| match Attr::from_oid(oid) {
            Some(attr) => format!("{}={v}", attr.label()),
            None => format!("{oid}={v}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attrs: Vec<(String, String)> =
            self.0.iter().map(|(a, s)| (a.oid().to_owned(), s.clone())).collect();
        f.write_str(&describe_dn(&attrs))
    }
}

/// A subject alternative name: an IP address, or a DNS name (lower-cased). Read from
/// arguments as a string, and refused there when it is neither.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    /// An IP address when it parses as one, a DNS name otherwise (cfssl's `hosts` rule).
    pub(crate) fn parse(text: &str) -> Result<Self, InvalidHostName> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let valid = !text.is_empty()
            && text.len() <= 253
            && text.is_ascii()
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | '_'));
        if valid { Ok(San::Dns(text.to_ascii_lowercase())) } else { Err(InvalidHostName(text.to_owned())) }
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::SanType, String> {
        Ok(match self {
            San::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            San::Dns(name) => rcgen::SanType::DnsName(
                name.as_str().try_into().map_err(|e| format!("invalid host name {name:?}: {e}"))?,
            ),
        })
    }
}

impl<'de> Deserialize<'de> for San {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};
        let text = String::deserialize(deserializer)?;
        San::parse(&text)
            .map_err(|_| D::Error::invalid_value(Unexpected::Str(&text), &"an IP address or a DNS name"))
    }
}

contract::string_schema!(San);

/// Each attribute is free text: references inside it are filled in.
impl contract::arg::Resolve for Name {
    type Resolved = Name;

    fn resolve(self, cx: &mut contract::arg::Resolving<'_>) -> Result<Name, ArgsError> {
        let Name { c, st, l, o, ou } = self;
        Ok(Name {
            c: cx.field("C", c)?,
            st: cx.field("ST", st)?,
            l: cx.field("L", l)?,
            o: cx.field("O", o)?,
            ou: cx.field("OU", ou)?,
        })
    }
}

contract::resolve_as_is!(KeyAlgo, Profile, Usage);

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(name) => f.write_str(name),
            San::Ip(ip) => ip.fmt(f),
        }
    }
}

/// A `hosts` entry (or a host's own name) that is neither an IP address nor a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidHostName(pub(crate) String);

impl fmt::Display for InvalidHostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid host name {:?}", self.0)
    }
}

/// A text that is not a duration (`expiry`, `renew_before`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDuration(pub String);

impl fmt::Display for InvalidDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: use a number with a unit d, h, m or s, e.g. \"43800h\"", self.0)
    }
}

/// Parses a Go-style duration made of whole `d`, `h`, `m` and `s` parts: `43800h`, `365d`,
/// `1h30m`. (Go itself has no `d`; cfssl's `expiry` values all use `h`.)
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let bad = || InvalidDuration(text.to_owned());
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut parts = 0;
    for ch in text.trim().chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit: u64 = match ch {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(bad)?;
        parts += 1;
    }
    if !digits.is_empty() || parts == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A duration in the largest whole unit that fits: "12 days", "5 hours".
pub(crate) fn describe_secs(secs: i64) -> String {
    let secs = secs.unsigned_abs();
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "days")
    } else if secs >= 2 * 3_600 {
        (secs / 3_600, "hours")
    } else if secs >= 120 {
        (secs / 60, "minutes")
    } else {
        (secs, "seconds")
    };
    format!("{n} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_map_to_the_guides_usages() {
        let server = Usages::from_names(Profile::Server.usages());
        assert_eq!(server.key_bits, 0b101, "digitalSignature and keyEncipherment");
        assert_eq!(server.extended, vec![EKU_SERVER_AUTH, EKU_CLIENT_AUTH]);
        let client = Usages::from_names(Profile::Client.usages());
        assert_eq!(client.key_bits, 0b101);
        assert_eq!(client.extended, vec![EKU_CLIENT_AUTH]);
        assert_eq!(Usages::from_names(Profile::Peer.usages()), server);
        assert_eq!(Usages::ca().key_bits, (1 << 5) | (1 << 6));
        assert_eq!(Usages::describe_key_bits(0b101), "digital signature, key encipherment");
        assert_eq!(
            Usages::from_names(&[
                Usage::Signing,
                Usage::DigitalSignature,
                Usage::Smime,
                Usage::EmailProtection
            ]),
            Usages { key_bits: 1, extended: vec![EKU_EMAIL] },
        );
        let usage: Usage = serde_json::from_value(serde_json::json!("key encipherment")).unwrap();
        assert_eq!(usage, Usage::KeyEncipherment);
        assert!(serde_json::from_value::<Usage>(serde_json::json!("key encypherment")).is_err());
    }

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("43800h"), Ok(Duration::from_secs(43_800 * 3_600)));
        assert_eq!(parse_duration("365d"), Ok(Duration::from_secs(365 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("720h"), Ok(Duration::from_secs(30 * 86_400)));
        for bad in ["", "h", "10", "10y", "-5h", "1.5h", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(describe_secs(12 * 86_400 + 5), "12 days");
        assert_eq!(describe_secs(-3 * 3_600), "3 hours");
    }

    #[test]
    fn subjects_follow_gos_order_and_reject_repeats() {
        let names = [
            Name { c: Some("US".into()), l: Some("San Francisco".into()), ..Name::default() },
            Name { st: Some("CA".into()), ..Name::default() },
        ];
        let subject = Subject::new("etcd0", &names).unwrap();
        assert_eq!(subject.to_string(), "C=US, ST=CA, L=San Francisco, CN=etcd0");
        let twice = [
            Name { o: Some("a".into()), ..Name::default() },
            Name { o: Some("b".into()), ..Name::default() },
        ];
        assert!(Subject::new("x", &twice).unwrap_err().to_string().contains("O is given more than once"));
        assert!(Subject::new("", &[]).is_err());
    }

    #[test]
    fn sans_are_ips_or_dns_names() {
        assert_eq!(San::parse("10.77.0.11"), Ok(San::Ip("10.77.0.11".parse().unwrap())));
        assert_eq!(San::parse("Etcd0"), Ok(San::Dns("etcd0".into())));
        assert_eq!(San::parse("::1"), Ok(San::Ip("::1".parse().unwrap())));
        assert!(San::parse("a b").is_err());
    }
}
