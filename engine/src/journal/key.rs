//! The workspace's journal key: 32 random bytes in `.engine/journal.key` (beside the `runs/`
//! folder of journals), mode 0600, made on first use and never printed. Two things are keyed
//! with it (HMAC-SHA256):
//!
//! - each task's input fingerprint ([`super::fingerprint`]), so a stolen journal cannot be
//!   used to guess the arguments it fingerprints (a `secret()` value, an `-e` value) offline;
//! - each journal line, chained to the one before ([`JournalKey::seal`]), so `--resume` trusts
//!   only lines this workspace wrote, whole, in order: a changed, dropped, reordered or
//!   foreign line does not verify. Only the end may be missing (a killed run).
//!
//! Without the key, no journal of the workspace can be resumed (it is refused, and kept).
//! A key file that others may read or write, or that another user owns, is refused rather
//! than trusted.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::error::{JournalError, KeyProblem};

/// The key's file name, in the folder above the journals (`.engine/`).
pub const KEY_FILE: &str = "journal.key";

/// Domain separation for the two uses of one key.
const FINGERPRINT: &[u8] = b"engine fingerprint v1\n";
const LINE: &[u8] = b"engine journal line v1\n";

/// What [`JournalKey::seal`] appends to a line's JSON object: `,"mac":"` + 64 hex digits + `"}`.
const MAC_OPEN: &str = ",\"mac\":\"";
const MAC_LEN: usize = MAC_OPEN.len() + 64 + 2;

/// The key. Its `Debug` does not show it.
#[derive(Clone)]
pub struct JournalKey {
    bytes: [u8; 32],
    path: PathBuf,
}

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalKey").field("path", &self.path).finish_non_exhaustive()
    }
}

impl JournalKey {
    /// The key of the workspace whose journals are in `runs` (`.engine/runs`): the file
    /// [`KEY_FILE`] in its parent folder. Made (0600, in a 0700 folder) when missing.
    pub fn load_or_create(runs: &Path) -> Result<JournalKey, JournalError> {
        let path = Self::path_for(runs);
        match Self::load_path(&path) {
            Err(JournalError::Key { problem: KeyProblem::Missing, .. }) => Self::create(&path),
            other => other,
        }
    }

    /// The key of the workspace whose journals are in `runs`; an error when there is none.
    pub fn load(runs: &Path) -> Result<JournalKey, JournalError> {
        Self::load_path(&Self::path_for(runs))
    }

    /// Where the key of the journals in `runs` is.
    pub fn path_for(runs: &Path) -> PathBuf {
        runs.parent().unwrap_or(Path::new(".")).join(KEY_FILE)
    }

    /// A key from its bytes, for tests.
    pub fn from_bytes(bytes: [u8; 32]) -> JournalKey {
        JournalKey { bytes, path: PathBuf::from("<test key>") }
    }

    /// Where the key lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_path(path: &Path) -> Result<JournalKey, JournalError> {
        let problem = |problem: KeyProblem| JournalError::Key { path: path.to_owned(), problem };
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(problem(KeyProblem::Missing)),
            Err(e) => return Err(problem(KeyProblem::Io(e.to_string()))),
        };
        if !meta.file_type().is_file() {
            return Err(problem(KeyProblem::NotAFile));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(problem(KeyProblem::Open(meta.permissions().mode() & 0o777)));
        }
        // The effective user of this process owns /proc/self.
        if let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid())
            && meta.uid() != me
        {
            return Err(problem(KeyProblem::Owner { owner: meta.uid(), me }));
        }
        let text = std::fs::read_to_string(path).map_err(|e| problem(KeyProblem::Io(e.to_string())))?;
        let bytes = decode_hex(text.trim_end_matches('\n')).ok_or_else(|| problem(KeyProblem::Malformed))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| problem(KeyProblem::Malformed))?;
        Ok(JournalKey { bytes, path: path.to_owned() })
    }

    /// Writes a new key to a temporary file and links it into place: a concurrent engine
    /// either links first (and this one reads its key) or finds the key whole; no one ever
    /// reads half a key.
    fn create(path: &Path) -> Result<JournalKey, JournalError> {
        let problem = |problem: KeyProblem| JournalError::Key { path: path.to_owned(), problem };
        let io = |e: std::io::Error| problem(KeyProblem::Io(e.to_string()));
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| problem(KeyProblem::Io(format!("no randomness: {e}"))))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let temp = dir.join(format!(".{KEY_FILE}.{}.{nanos}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut f| {
                f.write_all(format!("{}\n", encode_hex(&bytes)).as_bytes())?;
                f.sync_all()
            })
            .and_then(|()| std::fs::hard_link(&temp, path));
        let _ = std::fs::remove_file(&temp);
        match written {
            Ok(()) => Ok(JournalKey { bytes, path: path.to_owned() }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_path(path),
            Err(e) => Err(io(e)),
        }
    }

    fn mac(&self, domain: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
        // A 32-byte key always fits HMAC-SHA256.
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        mac.update(domain);
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// HMAC-SHA256 of `text`, in hex: a task's fingerprint.
    pub fn fingerprint(&self, text: &[u8]) -> String {
        encode_hex(&self.mac(FINGERPRINT, &[text]).finalize().into_bytes())
    }

    /// `body` (one record's JSON object, `{...}`) as a journal line (without the newline)
    /// carrying its MAC, chained to `prev`, the MAC of the line before (`""` for the first
    /// line); and that MAC, for the next line.
    pub fn seal(&self, prev: &str, body: &str) -> (String, String) {
        let mac = encode_hex(&self.mac(LINE, &[prev.as_bytes(), body.as_bytes()]).finalize().into_bytes());
        let open = body.strip_suffix('}').unwrap_or(body);
        (format!("{open}{MAC_OPEN}{mac}\"}}"), mac)
    }

    /// The record's JSON and the line's MAC when `line` verifies after `prev`; `None` when it
    /// carries no MAC or a wrong one (changed, moved, from another journal, or another key).
    pub fn open(&self, prev: &str, line: &str) -> Option<(String, String)> {
        let at = line.len().checked_sub(MAC_LEN)?;
        let (open, tail) = (line.get(..at)?, line.get(at..)?);
        let hex = tail.strip_prefix(MAC_OPEN)?.strip_suffix("\"}")?;
        let given = decode_hex(hex)?;
        let body = format!("{open}}}");
        self.mac(LINE, &[prev.as_bytes(), body.as_bytes()]).verify_slice(&given).ok()?;
        Some((body, hex.to_owned()))
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_reused() {
        let root = tempfile::tempdir().unwrap();
        let runs = root.path().join(".engine/runs");
        let first = JournalKey::load_or_create(&runs).unwrap();
        let path = root.path().join(".engine/journal.key");
        assert_eq!(first.path(), path);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(root.path().join(".engine")).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let again = JournalKey::load_or_create(&runs).unwrap();
        assert_eq!(first.fingerprint(b"x"), again.fingerprint(b"x"), "the same key the second time");
        assert!(!format!("{first:?}").contains(&encode_hex(&first.bytes)), "Debug hides the key");
        assert_eq!(
            std::fs::read_dir(root.path().join(".engine")).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_key_others_can_read_or_a_bad_one_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let runs = root.path().join(".engine/runs");
        let e = JournalKey::load(&runs).unwrap_err().to_string();
        assert!(e.contains("journal.key") && e.contains("missing"), "{e}");
        let key = JournalKey::load_or_create(&runs).unwrap();
        std::fs::set_permissions(key.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = JournalKey::load(&runs).unwrap_err().to_string();
        assert!(e.contains("mode 0644"), "{e}");
        std::fs::set_permissions(key.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(key.path(), "not hex\n").unwrap();
        let e = JournalKey::load(&runs).unwrap_err().to_string();
        assert!(e.contains("not a journal key"), "{e}");
    }

    #[test]
    fn a_line_verifies_only_unchanged_in_its_place_and_with_its_key() {
        let key = JournalKey::from_bytes([7; 32]);
        let (a, mac_a) = key.seal("", r#"{"kind":"header","id":"r1"}"#);
        let (b, _) = key.seal(&mac_a, r#"{"kind":"task","id":0}"#);
        assert!(a.starts_with(r#"{"kind":"header","id":"r1","mac":""#), "{a}");
        assert_eq!(key.open("", &a).map(|o| o.0).as_deref(), Some(r#"{"kind":"header","id":"r1"}"#));
        assert!(key.open(&mac_a, &b).is_some());
        assert!(key.open("", &b).is_none(), "out of its place in the chain");
        assert!(key.open("", &a.replace("r1", "r2")).is_none(), "one changed byte");
        assert!(JournalKey::from_bytes([8; 32]).open("", &a).is_none(), "another key");
        assert!(key.open("", r#"{"kind":"header","id":"r1"}"#).is_none(), "no MAC");
        assert!(key.open("", "é").is_none() && key.open("", "").is_none());
        assert_ne!(key.fingerprint(b"t"), JournalKey::from_bytes([8; 32]).fingerprint(b"t"));
    }
}
