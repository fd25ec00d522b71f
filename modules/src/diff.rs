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

/// A unified diff between the old and new content of `path`. Binary content is summarised,
/// and content that holds a private key is never shown.
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
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
