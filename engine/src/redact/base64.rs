//! Secrets in base64: a private key embedded as base64 (a kubeconfig's `client-key-data`, a
//! Kubernetes Secret's `tls.key`, the output of `base64 key.pem`, wrapped or not), and the
//! base64 spellings of a registered secret, wherever it sits in a longer base64 text.

use contract::diff::{REDACTED_KEY, looks_secret};

/// `-----BEGIN ` in base64 (from a 3-byte boundary): how every base64-encoded PEM block starts.
const PEM_BEGIN: &str = "LS0tLS1CRUdJTi";

/// Shorter runs of base64 characters are never taken for an embedded key.
const MIN_RUN: usize = 16;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

fn value(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|i| i as u32)
}

/// Decodes standard base64, ignoring padding and a trailing partial group. `None` for other
/// characters.
fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for &b in text.iter().take_while(|&&b| b != b'=') {
        bits = (bits << 6) | value(b)?;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Standard base64 with padding.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 spellings of `secret` as it appears inside any longer base64 text: for each of
/// the three offsets it may start at, the characters that depend on its bytes alone. Only
/// spellings of at least `min` characters (shorter ones would match by chance).
pub(super) fn spellings(secret: &[u8], min: usize) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(secret);
        let encoded = encode(&padded);
        // Character j holds bits 6j..6j+6; the secret's are 8*offset..8*(offset + len).
        let first = (8 * offset).div_ceil(6);
        let end = 8 * (offset + secret.len()) / 6;
        if let Some(inner) = encoded.get(first..end)
            && inner.len() >= min
            && !out.iter().any(|o: &String| o == inner)
        {
            out.push(inner.to_owned());
        }
    }
    out
}

/// `text` with every base64 run that decodes to a PEM private key (and the lines of base64
/// that continue it, when it is wrapped) replaced by [`REDACTED_KEY`]; `None` when there is none.
pub(super) fn redact_embedded_keys(text: &str) -> Option<String> {
    if !text.contains(PEM_BEGIN) {
        return None;
    }
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // Inside a wrapped key: every line that is one base64 run belongs to it, until its END.
    let mut in_key = false;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let runs = base64_runs(&bytes[start..start + line.len()]);
        let whole_line = runs.len() == 1 && {
            let (a, b) = runs[0];
            line[..a].trim_start_matches(['+', '-', ' ', '\t']).is_empty() && line[b..].trim().is_empty()
        };
        if in_key && !whole_line {
            in_key = false;
        }
        for (a, b) in runs {
            let run = &line.as_bytes()[a..b];
            let decoded = decode(run).unwrap_or_default();
            let ends = decoded.windows(9).any(|w| w == b"-----END ");
            if in_key {
                spans.push((start + a, start + b));
                in_key = !ends;
            } else if run.len() >= MIN_RUN && looks_secret(&decoded) {
                spans.push((start + a, start + b));
                in_key = whole_line && !ends;
            }
        }
        start += line.len();
    }
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (a, b) in spans {
        out.push_str(&text[copied..a]);
        out.push_str(REDACTED_KEY);
        copied = b;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The maximal runs of base64 characters in `line`, as byte ranges (ASCII, so on char
/// boundaries). A `+` starting the line is a diff's marker, not base64.
fn base64_runs(line: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = usize::from(line.first() == Some(&b'+'));
    while i < line.len() {
        if is_base64(line[i]) {
            let a = i;
            while i < line.len() && is_base64(line[i]) {
                i += 1;
            }
            runs.push((a, i));
        } else {
            i += 1;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBVyDmlT5V0pGSuaVnq0XK4nD6i6XIqRYVTOT7fQ\n-----END EC PRIVATE KEY-----\n";

    #[test]
    fn base64_round_trips() {
        for text in ["", "a", "ab", "abc", "abcd", "hunter2-password"] {
            assert_eq!(decode(encode(text.as_bytes()).as_bytes()).unwrap(), text.as_bytes());
        }
        assert_eq!(encode(b"-----BEGIN ").get(..PEM_BEGIN.len()), Some(PEM_BEGIN));
    }

    #[test]
    fn a_base64_private_key_is_hidden_one_line_or_wrapped() {
        let data = encode(KEY.as_bytes());
        let cert = encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        let text = format!("    client-certificate-data: {cert}\n    client-key-data: {data}\n");
        assert_eq!(
            redact_embedded_keys(&text).unwrap(),
            format!("    client-certificate-data: {cert}\n    client-key-data: {REDACTED_KEY}\n")
        );
        // `base64` wraps at 76 characters; in a diff each line has its marker.
        let wrapped: Vec<String> =
            data.as_bytes().chunks(76).map(|c| format!("+{}\n", std::str::from_utf8(c).unwrap())).collect();
        assert!(wrapped.len() >= 2);
        let text = format!("+tls.key: |\n{}+next: 1\n", wrapped.concat());
        let hidden = redact_embedded_keys(&text).unwrap();
        assert_eq!(
            hidden,
            format!("+tls.key: |\n{}+next: 1\n", format!("+{REDACTED_KEY}\n").repeat(wrapped.len()))
        );
        assert_eq!(redact_embedded_keys(&format!("cert: {cert}\n")), None, "a certificate is not secret");
        assert_eq!(redact_embedded_keys("LS0tLS1CRUdJTi é"), None);
    }

    #[test]
    fn a_secret_is_found_inside_longer_base64_at_any_offset() {
        let secret = b"hunter2-password";
        let found = spellings(secret, 8);
        assert_eq!(found.len(), 3);
        for prefix in ["", "u", "us", "user:"] {
            let whole = encode(format!("{prefix}{}:tail", String::from_utf8_lossy(secret)).as_bytes());
            assert!(
                found.iter().any(|s| whole.contains(s.as_str())),
                "{prefix:?}: {whole} holds none of {found:?}"
            );
        }
        assert!(spellings(b"abc", 8).is_empty(), "too short to look for");
    }
}
