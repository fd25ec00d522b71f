//! Just enough OpenPGP (RFC 4880 / 9580) to store an apt keyring: ASCII armor undone (base64
//! with its CRC-24 checked) and the packet headers walked to find the public keys and their
//! fingerprints. Every byte is hostile input: lengths are checked against what is there, and
//! anything unexpected is an error, never a panic.

use std::fmt;

use base64::Engine;
use sha1::{Digest, Sha1};

/// Why a keyring was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// Not ASCII armor of a public key, nor binary OpenPGP data.
    NotOpenPgp(String),
    /// The armor's checksum line does not match its content.
    BadCrc,
    /// A packet header or length runs past the data, or uses a form keys never use.
    BadPacket(String),
    /// The data holds a secret key: never written world-readable.
    SecretKey,
    /// No public-key packet at all.
    NoPublicKey,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotOpenPgp(why) => write!(f, "not an OpenPGP public key: {why}"),
            KeyError::BadCrc => f.write_str("the armor's CRC-24 line does not match its content"),
            KeyError::BadPacket(why) => write!(f, "malformed OpenPGP packet: {why}"),
            KeyError::SecretKey => {
                f.write_str("the data holds a secret key; only public keys belong in a keyring")
            }
            KeyError::NoPublicKey => f.write_str("the data holds no public key"),
        }
    }
}

const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// The binary keyring: `data` as is when it is binary OpenPGP (its first byte has the packet
/// bit set), else the content of every armored public key block in it, concatenated.
pub(crate) fn dearmor(data: &[u8]) -> Result<Vec<u8>, KeyError> {
    if data.first().is_some_and(|b| b & 0x80 != 0) {
        return Ok(data.to_vec());
    }
    let text = std::str::from_utf8(data)
        .map_err(|_| KeyError::NotOpenPgp("neither ASCII armor nor binary packets".into()))?;
    if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
        return Err(KeyError::SecretKey);
    }
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim_end);
    let mut blocks = 0;
    while lines.by_ref().any(|l| l == BEGIN) {
        blocks += 1;
        // Armor headers (`Key: value`) end at the first blank line; a block without any
        // starts its base64 at once.
        let mut body = String::new();
        let mut crc: Option<&str> = None;
        let mut in_headers = true;
        let mut ended = false;
        for line in lines.by_ref() {
            if line == END {
                ended = true;
                break;
            }
            if in_headers {
                if line.is_empty() {
                    in_headers = false;
                    continue;
                }
                if line.contains(": ") {
                    continue;
                }
                in_headers = false;
            }
            if let Some(sum) = line.strip_prefix('=') {
                crc = Some(sum);
            } else if crc.is_none() {
                body.push_str(line.trim());
            } else if !line.is_empty() {
                return Err(KeyError::NotOpenPgp("text after the CRC-24 line".into()));
            }
        }
        if !ended {
            return Err(KeyError::NotOpenPgp(format!("no {END:?} line")));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| KeyError::NotOpenPgp(format!("bad base64: {e}")))?;
        if let Some(sum) = crc {
            let sum = base64::engine::general_purpose::STANDARD
                .decode(sum.as_bytes())
                .map_err(|_| KeyError::BadCrc)?;
            let want = crc24(&bytes).to_be_bytes();
            if sum[..] != want[1..] {
                return Err(KeyError::BadCrc);
            }
        }
        out.extend(bytes);
    }
    if blocks == 0 {
        return Err(KeyError::NotOpenPgp(format!("no {BEGIN:?} line")));
    }
    Ok(out)
}

/// RFC 4880 6.1.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &byte in data {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

/// One packet: its tag and body.
struct Packet<'a> {
    tag: u8,
    body: &'a [u8],
}

/// Walks the packets of `data`.
fn packets(data: &[u8]) -> Result<Vec<Packet<'_>>, KeyError> {
    let mut out = Vec::new();
    let mut rest = data;
    let short = || KeyError::BadPacket("a length runs past the end of the data".into());
    while let Some((&first, after)) = rest.split_first() {
        if first & 0x80 == 0 {
            return Err(KeyError::BadPacket(format!("byte {first:#04x} is not a packet header")));
        }
        let (tag, len, after) = if first & 0x40 != 0 {
            let tag = first & 0x3f;
            match after {
                [o1 @ 0..=191, r @ ..] => (tag, usize::from(*o1), r),
                [o1 @ 192..=223, o2, r @ ..] => {
                    (tag, (usize::from(*o1 - 192) << 8) + usize::from(*o2) + 192, r)
                }
                [255, a, b, c, d, r @ ..] => (tag, u32::from_be_bytes([*a, *b, *c, *d]) as usize, r),
                [224..=254, ..] => {
                    return Err(KeyError::BadPacket("partial body lengths are not used in keys".into()));
                }
                _ => return Err(short()),
            }
        } else {
            let tag = (first >> 2) & 0x0f;
            match (first & 3, after) {
                (0, [a, r @ ..]) => (tag, usize::from(*a), r),
                (1, [a, b, r @ ..]) => (tag, usize::from(u16::from_be_bytes([*a, *b])), r),
                (2, [a, b, c, d, r @ ..]) => (tag, u32::from_be_bytes([*a, *b, *c, *d]) as usize, r),
                (3, _) => {
                    return Err(KeyError::BadPacket("indeterminate lengths are not used in keys".into()));
                }
                _ => return Err(short()),
            }
        };
        let body = after.get(..len).ok_or_else(short)?;
        out.push(Packet { tag, body });
        rest = &after[len..];
    }
    Ok(out)
}

/// The fingerprint of every primary public key in a binary keyring, uppercase hex: v4 keys
/// SHA-1 over `0x99`, a 2-byte length and the packet body; v6 keys SHA-256 over `0x9B`, a
/// 4-byte length and the body.
pub(crate) fn fingerprints(keyring: &[u8]) -> Result<Vec<String>, KeyError> {
    let packets = packets(keyring)?;
    if packets.iter().any(|p| p.tag == 5 || p.tag == 7) {
        return Err(KeyError::SecretKey);
    }
    let mut out = Vec::new();
    for packet in packets.iter().filter(|p| p.tag == 6) {
        let fingerprint = match packet.body.first() {
            Some(4) => {
                let len = u16::try_from(packet.body.len())
                    .map_err(|_| KeyError::BadPacket("a v4 key longer than 65535 bytes".into()))?;
                let mut hasher = Sha1::new();
                hasher.update([0x99]);
                hasher.update(len.to_be_bytes());
                hasher.update(packet.body);
                hex_upper(&hasher.finalize())
            }
            Some(6) => {
                let len = u32::try_from(packet.body.len())
                    .map_err(|_| KeyError::BadPacket("a key longer than 4 GiB".into()))?;
                let mut bytes = vec![0x9b];
                bytes.extend(len.to_be_bytes());
                bytes.extend(packet.body);
                contract::diff::sha256_hex(&bytes).to_ascii_uppercase()
            }
            Some(v) => return Err(KeyError::BadPacket(format!("public key version {v} (only 4 and 6)"))),
            None => return Err(KeyError::BadPacket("an empty public-key packet".into())),
        };
        out.push(fingerprint);
    }
    if out.is_empty() {
        return Err(KeyError::NoPublicKey);
    }
    Ok(out)
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A fingerprint as people write it (spaces, lowercase) in the normal form: uppercase hex.
pub(crate) fn normal_fingerprint(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    ((hex.len() == 40 || hex.len() == 64) && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}
