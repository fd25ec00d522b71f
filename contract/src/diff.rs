//! Content hashing and human-readable diffs.

use sha2::{Digest, Sha256};

/// Hex SHA-256, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `bytes` look like they hold a private key, which no diff, log or report may show.
pub fn looks_secret(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"PRIVATE KEY")
}

/// What a private key block is replaced with by [`redact_private_keys`].
pub const REDACTED_KEY: &str = "<secret: private key>";

/// `text` with every PEM private key block (`-----BEGIN ... PRIVATE KEY-----` through its
/// `-----END ... PRIVATE KEY-----` line, or the end of the text when that is missing) replaced
/// by [`REDACTED_KEY`]. Works on escaped text too (a key inside a JSON string or a debug log).
pub fn redact_private_keys(text: &str) -> std::borrow::Cow<'_, str> {
    if !looks_secret(text.as_bytes()) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(begin) = find_key_marker(rest, "-----BEGIN ") {
        out.push_str(&rest[..begin]);
        let after = &rest[begin..];
        match find_key_marker(after, "-----END ") {
            Some(end) => {
                let tail = &after[end..];
                // Past "-----END ... PRIVATE KEY-----".
                let close =
                    tail.find("PRIVATE KEY-----").map_or(tail.len(), |i| i + "PRIVATE KEY-----".len());
                rest = &tail[close..];
            }
            None => rest = "",
        }
        out.push_str(REDACTED_KEY);
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// The byte offset of the first `marker` (`-----BEGIN ` or `-----END `) that opens a private
/// key line: "PRIVATE KEY" follows it on the same line, within a few words.
fn find_key_marker(text: &str, marker: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(marker) {
        let at = from + i;
        let line = &text[at..];
        let window = &line[..line.len().min(64)];
        let window = window.split(['\n', '\\']).next().unwrap_or(window);
        if window.contains("PRIVATE KEY") {
            return Some(at);
        }
        from = at + marker.len();
    }
    None
}

/// A unified diff between the old and new content of `path`. Binary content is summarised,
/// and content that holds a private key is never shown. Other secrets in shown text (a
/// kubeconfig's base64 `client-key-data`, `token:` and `password:` fields, registered values)
/// are hidden by the engine's redactor, which every diff passes through before it is shown.
pub fn unified_diff(path: &str, before: Option<&[u8]>, after: &[u8]) -> String {
    if looks_secret(after) || before.is_some_and(looks_secret) {
        return format!("secret content of {path} differs ({} bytes after); not shown\n", after.len());
    }
    let old = match before {
        None => Some(""),
        Some(bytes) => std::str::from_utf8(bytes).ok(),
    };
    match (old, std::str::from_utf8(after)) {
        (Some(old), Ok(new)) => similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(
                &if before.is_some() { format!("before: {path}") } else { "/dev/null".to_owned() },
                &format!("after: {path}"),
            )
            .to_string(),
        _ => format!("binary content of {path} differs ({} bytes after)\n", after.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_text_and_summarises_binary() {
        let d = unified_diff("/x", Some(b"a\nb\n"), b"a\nc\n");
        assert!(d.contains("-b\n+c\n"), "{d}");
        assert!(d.starts_with("--- before: /x\n+++ after: /x\n"), "{d}");
        assert!(unified_diff("/x", Some(&[0xff, 0xfe]), b"x").contains("binary"));
        let key = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
        let d = unified_diff("/k", None, key);
        assert!(d.contains("not shown") && !d.contains("MIIB"), "{d}");
        let text = format!("a {} b\\n-----BEGIN EC PRIVATE KEY-----\\nXYZ", String::from_utf8_lossy(key));
        let red = redact_private_keys(&text);
        assert_eq!(red, format!("a {REDACTED_KEY}\n b\\n{REDACTED_KEY}"));
        assert_eq!(redact_private_keys("-----BEGIN CERTIFICATE-----"), "-----BEGIN CERTIFICATE-----");
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
