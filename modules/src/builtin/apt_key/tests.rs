use serde_json::json;

use super::openpgp::{KeyError, dearmor, fingerprints, normal_fingerprint};
use super::*;
use crate::validate::resolved;

/// An ed25519 key made with `gpg --quick-gen-key` for these tests (no secret part kept).
const KEY: &str = include_str!("../../../../tests/fixtures/apt/test-key.asc");
const FINGERPRINT: &str = "BD334585C3453ADE787CFE530F16B03C4C1F01D8";
/// `gpg --export` of the same key: the binary keyring.
const BINARY_SHA256: &str = "cec1ea94f12d37de2616f86fa45fac84be787f79a4bde964e89dae7386c37898";

#[test]
fn dearmoring_gives_what_gpg_exports_and_its_fingerprint() {
    let binary = dearmor(KEY.as_bytes()).unwrap();
    assert_eq!(contract::diff::sha256_hex(&binary), BINARY_SHA256);
    assert_eq!(fingerprints(&binary).unwrap(), [FINGERPRINT]);
    assert_eq!(dearmor(&binary).unwrap(), binary, "binary data is kept as it is");
}

#[test]
fn a_damaged_armor_is_refused() {
    let crc = KEY.replace("=62bo", "=62bp");
    assert_eq!(dearmor(crc.as_bytes()), Err(KeyError::BadCrc));
    let flipped = KEY.replacen("mDMEaxX9", "mDMEaxX8", 1);
    assert_eq!(dearmor(flipped.as_bytes()), Err(KeyError::BadCrc));
    assert!(matches!(dearmor(b"hello"), Err(KeyError::NotOpenPgp(_))));
    let private = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nabc\n-----END PGP PRIVATE KEY BLOCK-----\n";
    assert_eq!(dearmor(private.as_bytes()), Err(KeyError::SecretKey));
    let unended = KEY.replace("-----END PGP PUBLIC KEY BLOCK-----", "");
    assert!(matches!(dearmor(unended.as_bytes()), Err(KeyError::NotOpenPgp(_))));
}

#[test]
fn hostile_packets_are_errors_not_panics() {
    let binary = dearmor(KEY.as_bytes()).unwrap();
    for cut in 0..binary.len() {
        let _ = fingerprints(&binary[..cut]);
    }
    assert!(matches!(fingerprints(&binary[..10]), Err(KeyError::BadPacket(_))));
    assert!(matches!(fingerprints(&[0x00, 1, 2]), Err(KeyError::BadPacket(_))));
    // New-format headers: 5-octet length past the end, partial lengths.
    assert!(matches!(fingerprints(&[0xc6, 255, 0xff, 0xff, 0xff, 0xff]), Err(KeyError::BadPacket(_))));
    assert!(matches!(fingerprints(&[0xc6, 230, 0]), Err(KeyError::BadPacket(_))));
    // Old-format secret key packet (tag 5), and a user id alone (tag 13).
    assert_eq!(fingerprints(&[0x94, 1, 4]), Err(KeyError::SecretKey));
    assert_eq!(fingerprints(&[0xcd, 1, b'x']), Err(KeyError::NoPublicKey));
    assert!(matches!(fingerprints(&[0xc6, 1, 3]), Err(KeyError::BadPacket(_))), "v3 key");
}

#[test]
fn fingerprints_are_written_any_way_people_do() {
    assert_eq!(
        normal_fingerprint("bd33 4585 c345 3ade 787c  fe53 0f16 b03c 4c1f 01d8").unwrap(),
        FINGERPRINT
    );
    assert!(normal_fingerprint("bd334585").is_none());
    assert!(normal_fingerprint("zz334585C3453ADE787CFE530F16B03C4C1F01D8").is_none());
}

#[test]
fn an_inline_key_with_another_fingerprint_is_refused_when_read() {
    let ok = resolved::<AptKeyArgs>(
        json!({ "name": "test", "key": KEY, "fingerprint": FINGERPRINT.to_lowercase() }),
    )
    .unwrap();
    assert_eq!(ok.path(), "/etc/apt/keyrings/test.gpg");
    let wrong = "0000000000000000000000000000000000000000";
    let error = resolved::<AptKeyArgs>(json!({ "name": "test", "key": KEY, "fingerprint": wrong }));
    assert_eq!(
        error.unwrap_err().to_string(),
        format!("the key's fingerprint is {FINGERPRINT}, not the expected {wrong}; nothing was written")
    );
}

#[test]
fn arguments_are_strict() {
    let err = |v| resolved::<AptKeyArgs>(v).unwrap_err().to_string();
    assert!(err(json!({ "name": "../x", "key": KEY })).contains("bare name"));
    assert!(err(json!({ "name": "k.gpg", "key": KEY })).contains("bare name"));
    assert!(err(json!({ "name": "k" })).contains("missing key"));
    assert!(err(json!({ "name": "k", "key": KEY, "url": "https://x.example/k" })).contains("not both"));
    assert!(err(json!({ "name": "k", "url": "file:///etc/k" })).contains("http:// or https:// only"));
    assert!(err(json!({ "name": "k", "url": "-o/tmp/x" })).contains("not an http(s)"));
    assert!(err(json!({ "name": "k", "key": "mDMEaxX9" })).contains("ASCII armor"));
    assert!(err(json!({ "name": "k", "state": "absent", "key": KEY })).contains("state: absent"));
    assert!(resolved::<AptKeyArgs>(json!({ "name": "k", "state": "absent" })).is_ok());
}

#[test]
fn the_fetch_quotes_the_url_after_double_dash() {
    let script = fetch_script("https://x.example/a'b");
    assert!(script.starts_with("u='https://x.example/a'\\''b';"));
    assert!(script.contains("curl -fsSL --proto =http,https --proto-redir =http,https"));
    assert!(script.contains("-- \"$u\""));
}
