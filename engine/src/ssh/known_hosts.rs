//! A `known_hosts` reader and writer with OpenSSH's matching rules.
//!
//! russh ships `check_known_hosts_path`, but it counts line numbers without comment lines
//! (so "changed key at line N" points at the wrong line), splits fields on single spaces only,
//! fails the whole lookup on one unparsable key, ignores `@revoked` and `!negated` patterns,
//! and reports a changed key even when another line for the host holds the presented key.
//! This module follows `sshd(8)` "SSH_KNOWN_HOSTS FILE FORMAT" instead.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use russh::keys::PublicKey;
use russh::keys::ssh_key::known_hosts::HostPatterns;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The parsed lines of one `known_hosts` file.
#[derive(Debug)]
pub(crate) struct KnownHosts {
    path: PathBuf,
    /// False when the file does not exist (it then reads as empty).
    exists: bool,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// 1-based line number in the file.
    line: usize,
    revoked: bool,
    hosts: HostPatterns,
    key: PublicKey,
}

/// What `known_hosts` says about a host's presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostKeyStatus {
    /// A line for this host holds exactly this key.
    Known { line: usize },
    /// No line for this host holds a key of this algorithm. `other_lines` are lines for this
    /// host with keys of other algorithms.
    Unknown { other_lines: Vec<usize> },
    /// Lines for this host hold keys of this algorithm, none of them this key: possibly a
    /// man-in-the-middle, or the host was reinstalled. `line` is the first such line.
    Changed { line: usize },
    /// The key is marked `@revoked`.
    Revoked { line: usize },
}

impl KnownHosts {
    /// Reads `path`. A missing file reads as empty.
    pub(crate) fn load(path: &Path) -> io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(path, &text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Ok(Self { exists: false, ..Self::parse(path, "") })
            }
            Err(e) => Err(e),
        }
    }

    /// Parses the text of a `known_hosts` file. Lines that cannot be parsed (unknown key types,
    /// `@cert-authority` lines, garbage) are skipped, as OpenSSH does.
    pub(crate) fn parse(path: &Path, text: &str) -> Self {
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(index, line)| {
                let entry = parse_line(index + 1, line);
                if entry.is_none() && !is_blank_or_comment(line) {
                    tracing::debug!(path = %path.display(), line = index + 1, "skipping known_hosts line");
                }
                entry
            })
            .collect();
        Self { path: path.to_owned(), exists: true, entries }
    }

    /// The file these entries came from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file existed when it was loaded.
    pub(crate) fn exists(&self) -> bool {
        self.exists
    }

    /// Looks up the key that `host` presented on `port`.
    pub(crate) fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
        let name = host_pattern(host, port);
        let matching: Vec<&Entry> = self.entries.iter().filter(|e| matches(&e.hosts, &name)).collect();

        if let Some(e) = matching.iter().find(|e| e.revoked && e.key.key_data() == key.key_data()) {
            return HostKeyStatus::Revoked { line: e.line };
        }
        let trusted = || matching.iter().filter(|e| !e.revoked);
        if let Some(e) = trusted().find(|e| e.key.key_data() == key.key_data()) {
            return HostKeyStatus::Known { line: e.line };
        }
        if let Some(e) = trusted().find(|e| e.key.algorithm() == key.algorithm()) {
            return HostKeyStatus::Changed { line: e.line };
        }
        HostKeyStatus::Unknown { other_lines: trusted().map(|e| e.line).collect() }
    }
}

/// Appends `host`'s `key` to the file at `path` in OpenSSH's form (`host key` or
/// `[host]:port key`), creating the file (mode 0600) and its directory if needed.
pub(crate) fn append(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    let key_text = key.to_openssh().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path)?;
    // An exclusive lock on the file itself (flock: one per open, so it also orders this
    // process's own connections learning keys at once, and other engines sharing the file),
    // held until `file` is dropped: the newline check and the write see no one else's half.
    file.lock()?;

    let mut record = String::new();
    if file.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            record.push('\n');
        }
    }
    record.push_str(&host_pattern(host, port));
    record.push(' ');
    record.push_str(&key_text);
    record.push('\n');
    // One write: O_APPEND keeps it whole even next to another process appending.
    file.write_all(record.as_bytes())?;
    file.sync_data()
}

/// The name a host is filed under: `host` on port 22, `[host]:port` otherwise.
pub(crate) fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 { host.to_owned() } else { format!("[{host}]:{port}") }
}

fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim_start();
    line.is_empty() || line.starts_with('#')
}

/// `[@marker] hosts keytype base64 [comment]`
fn parse_line(line_no: usize, line: &str) -> Option<Entry> {
    if is_blank_or_comment(line) {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut hosts = fields.next()?;
    let mut revoked = false;
    if let Some(marker) = hosts.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            // Host certificates are not supported; a CA line vouches for no plain key.
            _ => return None,
        }
        hosts = fields.next()?;
    }
    let key_type = fields.next()?;
    let key_base64 = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{key_type} {key_base64}")).ok()?;
    let hosts = HostPatterns::from_str(hosts).ok()?;
    Some(Entry { line: line_no, revoked, hosts, key })
}

/// Whether `name` is the one hashed into a `|1|salt|hash` entry (HMAC-SHA1 keyed by the salt).
fn hashed_name_matches(salt: &[u8], hash: &[u8], name: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else { return false };
    mac.update(name.as_bytes());
    mac.verify_slice(hash).is_ok()
}

/// OpenSSH `match_hostname`: a name matches a comma-separated list when some pattern matches
/// and no negated (`!`) pattern does. Names compare case-insensitively.
fn matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => hashed_name_matches(salt, hash, name),
        HostPatterns::Patterns(list) => {
            let name = name.to_ascii_lowercase();
            let mut matched = false;
            for pattern in list {
                let pattern = pattern.to_ascii_lowercase();
                match pattern.strip_prefix('!') {
                    Some(negated) if glob(negated.as_bytes(), name.as_bytes()) => return false,
                    Some(_) => {}
                    None => matched |= glob(pattern.as_bytes(), name.as_bytes()),
                }
            }
            matched
        }
    }
}

/// `*` matches any run of bytes, `?` any one byte.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real public keys: three ed25519 ones from russh's tests, one ECDSA from ssh-keygen.
    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";
    const KEY_C: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPoc/MWWN4wX46hrrTh1VQsnyHMgIAONDBsP/LbVH4xyBFxskNiv1cnN+O2XBIx2fQxrKHuWYm1BTq6C6WqEVp8=";

    fn ed25519(base64: &str) -> PublicKey {
        PublicKey::from_openssh(&format!("ssh-ed25519 {base64}")).expect("test key parses")
    }

    fn known(text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new("/test/known_hosts"), text)
    }

    #[test]
    fn comma_separated_patterns_match_each_name() {
        let kh = known(&format!("etcd0,10.77.0.11 ssh-ed25519 {KEY_A}\n"));
        assert_eq!(kh.check("10.77.0.11", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 1 });
        assert_eq!(kh.check("etcd0", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 1 });
        assert_eq!(kh.check("ETCD0", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 1 });
        assert_eq!(
            kh.check("10.77.0.12", 22, &ed25519(KEY_A)),
            HostKeyStatus::Unknown { other_lines: vec![] }
        );
    }

    #[test]
    fn non_default_port_uses_brackets() {
        let kh = known(&format!("[127.0.0.1]:2222 ssh-ed25519 {KEY_A}\n127.0.0.1 ssh-ed25519 {KEY_B}\n"));
        assert_eq!(kh.check("127.0.0.1", 2222, &ed25519(KEY_A)), HostKeyStatus::Known { line: 1 });
        assert_eq!(kh.check("127.0.0.1", 22, &ed25519(KEY_B)), HostKeyStatus::Known { line: 2 });
        // The port-22 line says nothing about port 2222, and the other way round.
        assert_eq!(kh.check("127.0.0.1", 2222, &ed25519(KEY_B)), HostKeyStatus::Changed { line: 1 });
        assert_eq!(
            kh.check("127.0.0.1", 2223, &ed25519(KEY_A)),
            HostKeyStatus::Unknown { other_lines: vec![] }
        );
    }

    #[test]
    fn changed_key_reports_the_real_line_number() {
        let text = format!(
            "# managed by engine\n\n   \nother ssh-ed25519 {KEY_C}\n# comment\netcd0,10.77.0.11  ssh-ed25519\t{KEY_A} root@etcd0\n"
        );
        let kh = known(&text);
        assert_eq!(kh.check("10.77.0.11", 22, &ed25519(KEY_B)), HostKeyStatus::Changed { line: 6 });
        assert_eq!(kh.check("10.77.0.11", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 6 });
    }

    #[test]
    fn any_line_with_the_key_wins_over_a_stale_one() {
        let kh = known(&format!("h ssh-ed25519 {KEY_B}\nh ssh-ed25519 {KEY_A}\n"));
        assert_eq!(kh.check("h", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 2 });
    }

    #[test]
    fn other_algorithms_are_unknown_not_changed() {
        let kh = known(&format!("h ecdsa-sha2-nistp256 {ECDSA}\n"));
        assert_eq!(kh.check("h", 22, &ed25519(KEY_A)), HostKeyStatus::Unknown { other_lines: vec![1] });
    }

    #[test]
    fn wildcards_and_negation() {
        let kh = known(&format!("10.77.0.*,!10.77.0.13 ssh-ed25519 {KEY_A}\n"));
        assert_eq!(kh.check("10.77.0.12", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 1 });
        assert_eq!(
            kh.check("10.77.0.13", 22, &ed25519(KEY_A)),
            HostKeyStatus::Unknown { other_lines: vec![] }
        );
        assert!(glob(b"web-?", b"web-1"));
        assert!(!glob(b"web-?", b"web-12"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn hashed_names_match() {
        // From russh's own tests: this hash is of "example.com".
        let kh = known(&format!(
            "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 {KEY_C}\n"
        ));
        assert_eq!(kh.check("example.com", 22, &ed25519(KEY_C)), HostKeyStatus::Known { line: 1 });
        assert_eq!(kh.check("example.com", 22, &ed25519(KEY_A)), HostKeyStatus::Changed { line: 1 });
        assert_eq!(
            kh.check("example.org", 22, &ed25519(KEY_C)),
            HostKeyStatus::Unknown { other_lines: vec![] }
        );
    }

    #[test]
    fn revoked_keys_are_refused_even_when_listed() {
        let kh = known(&format!("@revoked * ssh-ed25519 {KEY_A}\nh ssh-ed25519 {KEY_A}\n"));
        assert_eq!(kh.check("h", 22, &ed25519(KEY_A)), HostKeyStatus::Revoked { line: 1 });
    }

    #[test]
    fn bad_lines_are_skipped_not_fatal() {
        let text = format!(
            "h ssh-ed25519 not-base64\n@cert-authority * ssh-ed25519 {KEY_B}\nh ssh-unknown AAAA\nonlyonefield\nh ssh-ed25519 {KEY_A}\n"
        );
        let kh = known(&text);
        assert_eq!(kh.check("h", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 5 });
        // The CA line is not a plain key for h.
        assert_eq!(kh.check("h", 22, &ed25519(KEY_B)), HostKeyStatus::Changed { line: 5 });
    }

    #[test]
    fn append_learns_a_key_and_check_finds_it() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub").join("known_hosts");
        assert_eq!(
            KnownHosts::load(&path)?.check("10.77.0.11", 22, &ed25519(KEY_A)),
            HostKeyStatus::Unknown { other_lines: vec![] }
        );

        append(&path, "10.77.0.11", 22, &ed25519(KEY_A))?;
        append(&path, "127.0.0.1", 2222, &ed25519(KEY_B))?;
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(text, format!("10.77.0.11 ssh-ed25519 {KEY_A}\n[127.0.0.1]:2222 ssh-ed25519 {KEY_B}\n"));

        let kh = KnownHosts::load(&path)?;
        assert_eq!(kh.check("10.77.0.11", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 1 });
        assert_eq!(kh.check("127.0.0.1", 2222, &ed25519(KEY_B)), HostKeyStatus::Known { line: 2 });
        assert_eq!(kh.check("10.77.0.11", 22, &ed25519(KEY_C)), HostKeyStatus::Changed { line: 1 });
        Ok(())
    }

    #[test]
    fn append_adds_a_missing_final_newline() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("a ssh-ed25519 {KEY_A}"))?;
        append(&path, "b", 22, &ed25519(KEY_B))?;
        assert_eq!(
            std::fs::read_to_string(&path)?,
            format!("a ssh-ed25519 {KEY_A}\nb ssh-ed25519 {KEY_B}\n")
        );
        Ok(())
    }

    /// Connections learning keys at once (each opens the file itself) never split or merge a
    /// line, even when the file did not end with a newline: each checks and writes under the
    /// file's lock.
    #[test]
    fn appends_at_once_stay_whole_lines() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("a ssh-ed25519 {KEY_A}"))?;
        let hosts: Vec<String> = (0..16).map(|i| format!("10.77.0.{}", 100 + i)).collect();
        std::thread::scope(|scope| {
            for host in &hosts {
                let path = &path;
                scope.spawn(move || append(path, host, 22, &ed25519(KEY_B)).unwrap());
            }
        });
        let text = std::fs::read_to_string(&path)?;
        let mut lines: Vec<&str> = text.lines().collect();
        assert!(text.ends_with('\n'), "{text:?}");
        assert_eq!(lines.remove(0), format!("a ssh-ed25519 {KEY_A}"));
        lines.sort_unstable();
        let mut want: Vec<String> = hosts.iter().map(|h| format!("{h} ssh-ed25519 {KEY_B}")).collect();
        want.sort_unstable();
        assert_eq!(lines, want);
        Ok(())
    }
}
