//! A `known_hosts` reader and writer with OpenSSH's matching rules.
//!
//! russh ships `check_known_hosts_path`, but it counts line numbers without comment lines
//! (so "changed key at line N" points at the wrong line), splits fields on single spaces only,
//! fails the whole lookup on one unparsable key, ignores `@revoked` and `!negated` patterns,
//! and reports a changed key even when another line for the host holds the presented key.
//! This module follows `sshd(8)` "SSH_KNOWN_HOSTS FILE FORMAT" instead:
//! - a line is `[@marker] patterns keytype base64 [comment]`; `#` lines and blank ones are
//!   comments; lines that cannot be parsed are skipped (with a debug log), as OpenSSH does;
//! - patterns are comma-separated, with `*`/`?` wildcards and `!negation` (a negated match
//!   rules the line out), `[host]:port` off port 22, and names compare case-insensitively;
//!   a hashed name (`|1|salt|hash`) is the HMAC-SHA1 of the lower-cased name;
//! - a host's key is accepted when any matching line holds it; `@revoked` keys are never
//!   accepted, neither as host keys nor as authorities;
//! - `@cert-authority` lines hold the keys of authorities trusted to sign host certificates
//!   for the hosts they match ([`KnownHosts::check_certificate`]); they vouch for no plain key.
//!
//! Learning a key ([`learn`]) re-reads the file under an exclusive lock and decides again
//! there, so two connections (or engines) that both met a host as unknown cannot file two
//! different keys for it: the second finds the first's line.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::known_hosts::HostPatterns;
use russh::keys::ssh_key::{Certificate, Fingerprint};
use russh::keys::{HashAlg, PublicKey};

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
    marker: Marker,
    hosts: HostPatterns,
    key: PublicKey,
}

/// A line's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// None: the host's own key.
    Key,
    /// `@revoked`: never accepted, as a host key or as an authority.
    Revoked,
    /// `@cert-authority`: the key of an authority that signs the hosts' certificates.
    CertAuthority,
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

/// What `known_hosts` says about a host certificate the server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertificateStatus {
    /// Signed by the authority at `line`, and valid now for this host.
    Trusted { line: usize },
    /// No `@cert-authority` line for this host holds the key that signed it (OpenSSH then
    /// checks the certificate's key as a plain key).
    NoAuthority,
    /// The authority at `line` signed it, but it is not valid for this host now: `reason`.
    Invalid { line: usize, reason: String },
    /// The certificate's key, or the key of the authority that signed it, is `@revoked`.
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

        if let Some(line) = revoked_line(&matching, key.key_data()) {
            return HostKeyStatus::Revoked { line };
        }
        let trusted = || matching.iter().filter(|e| e.marker == Marker::Key);
        if let Some(e) = trusted().find(|e| e.key.key_data() == key.key_data()) {
            return HostKeyStatus::Known { line: e.line };
        }
        if let Some(e) = trusted().find(|e| e.key.algorithm() == key.algorithm()) {
            return HostKeyStatus::Changed { line: e.line };
        }
        HostKeyStatus::Unknown { other_lines: trusted().map(|e| e.line).collect() }
    }

    /// Whether an `@cert-authority` line matches `host` on `port`: only then is the server
    /// asked for a host certificate.
    pub(crate) fn has_authority_for(&self, host: &str, port: u16) -> bool {
        let name = host_pattern(host, port);
        self.entries.iter().any(|e| e.marker == Marker::CertAuthority && matches(&e.hosts, &name))
    }

    /// Checks the host certificate that `host` presented on `port`, at Unix time `now`, as
    /// OpenSSH's ssh does: an unrevoked `@cert-authority` line matching the host holds the key
    /// that signed it, the signature verifies, it is a host certificate, `now` lies within its
    /// validity, its principals (when it lists any) include the host's name, and it has no
    /// critical options.
    pub(crate) fn check_certificate(
        &self,
        host: &str,
        port: u16,
        certificate: &Certificate,
        now: u64,
    ) -> CertificateStatus {
        let name = host_pattern(host, port);
        let matching: Vec<&Entry> = self.entries.iter().filter(|e| matches(&e.hosts, &name)).collect();
        let signer = certificate.signature_key();
        for key in [certificate.public_key(), signer] {
            if let Some(line) = revoked_line(&matching, key) {
                return CertificateStatus::Revoked { line };
            }
        }
        let Some(authority) =
            matching.iter().find(|e| e.marker == Marker::CertAuthority && e.key.key_data() == signer)
        else {
            return CertificateStatus::NoAuthority;
        };
        let invalid = |reason: String| CertificateStatus::Invalid { line: authority.line, reason };
        let fingerprint: Fingerprint = authority.key.fingerprint(HashAlg::Sha256);
        if now < certificate.valid_after() {
            return invalid(format!(
                "it is not valid before {} (now {})",
                utc(certificate.valid_after()),
                utc(now)
            ));
        }
        if now >= certificate.valid_before() {
            return invalid(format!("it expired at {} (now {})", utc(certificate.valid_before()), utc(now)));
        }
        if certificate.validate_at(now, [&fingerprint]).is_err() {
            return invalid("its signature does not verify".to_owned());
        }
        if certificate.cert_type() != CertType::Host {
            return invalid("it is a user certificate, not a host certificate".to_owned());
        }
        let host = host.to_ascii_lowercase();
        let principals = certificate.valid_principals();
        if !principals.is_empty() && !principals.contains(&host) {
            return invalid(format!("it is for {principals:?}, not for {host}"));
        }
        if !certificate.critical_options().is_empty() {
            let options: Vec<&String> = certificate.critical_options().keys().collect();
            return invalid(format!(
                "it has critical options, which host certificates cannot have: {options:?}"
            ));
        }
        CertificateStatus::Trusted { line: authority.line }
    }
}

/// A certificate's time (Unix seconds) as `2026-12-07 06:50:48 UTC`; `forever` for the
/// largest (ssh-keygen's "valid forever").
pub(crate) fn utc(secs: u64) -> String {
    match i64::try_from(secs).ok().and_then(crate::clock::utc_seconds) {
        Some(text) if secs != u64::MAX => text,
        _ => "forever".to_owned(),
    }
}

/// The line of an `@revoked` entry among `matching` that holds `key`.
fn revoked_line(matching: &[&Entry], key: &russh::keys::ssh_key::public::KeyData) -> Option<usize> {
    matching.iter().find(|e| e.marker == Marker::Revoked && e.key.key_data() == key).map(|e| e.line)
}

/// What [`learn`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Learned {
    /// The key was appended.
    Appended,
    /// Meanwhile another connection filed this very key, at `line`: nothing was written.
    AlreadyKnown { line: usize },
    /// Meanwhile a line appeared that refuses the key (another key of its type for the host,
    /// or its revocation): nothing was written.
    Refused(HostKeyStatus),
}

/// Files `host`'s `key` in the file at `path` in OpenSSH's form (`host key` or
/// `[host]:port key`), creating the file (mode 0600) and its directory if needed, unless the
/// file, read again under its lock, now knows the host: a key filed meanwhile (by another
/// connection or engine that also found the host unknown) is never followed by a different one.
pub(crate) fn learn(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<Learned> {
    let key_text = key.to_openssh().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path)?;
    // An exclusive lock on the file itself (flock: one per open, so it also orders this
    // process's own connections learning keys at once, and other engines sharing the file),
    // held until `file` is dropped: the check, the newline check and the write see no one
    // else's half.
    file.lock()?;

    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    match KnownHosts::parse(path, &text).check(host, port, key) {
        HostKeyStatus::Unknown { .. } => {}
        HostKeyStatus::Known { line } => return Ok(Learned::AlreadyKnown { line }),
        refused => return Ok(Learned::Refused(refused)),
    }

    let mut record = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        record.push('\n');
    }
    record.push_str(&host_pattern(host, port));
    record.push(' ');
    record.push_str(&key_text);
    record.push('\n');
    // One write: O_APPEND keeps it whole even next to another process appending.
    file.write_all(record.as_bytes())?;
    file.sync_data()?;
    Ok(Learned::Appended)
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
    let mut marker = Marker::Key;
    if let Some(name) = hosts.strip_prefix('@') {
        marker = match name {
            "revoked" => Marker::Revoked,
            "cert-authority" => Marker::CertAuthority,
            // An unknown marker: OpenSSH skips the line too.
            _ => return None,
        };
        hosts = fields.next()?;
    }
    let key_type = fields.next()?;
    let key_base64 = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{key_type} {key_base64}")).ok()?;
    let hosts = HostPatterns::from_str(hosts).ok()?;
    Some(Entry { line: line_no, marker, hosts, key })
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
        // OpenSSH hashes the lower-cased name (ssh lower-cases a host name before any lookup).
        HostPatterns::HashedName { salt, hash } => {
            hashed_name_matches(salt, hash, &name.to_ascii_lowercase())
        }
        HostPatterns::Patterns(list) => pattern_list_matches(list, name),
    }
}

/// OpenSSH's pattern-list rule (`match_hostname`), for known_hosts lines and ssh_config's
/// `Host` and `Match host`: some pattern matches and no `!pattern` does, case-insensitively.
pub(crate) fn pattern_list_matches(patterns: &[String], name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let mut matched = false;
    for pattern in patterns {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated.as_bytes(), name.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(pattern.as_bytes(), name.as_bytes()),
        }
    }
    matched
}

/// `*` matches any run of bytes, `?` any one byte.
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    // Real public keys: three ed25519 ones from russh's tests, one ECDSA from ssh-keygen.
    pub(crate) const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
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
        // The CA line vouches for certificates, never for a plain key of h.
        assert_eq!(kh.check("h", 22, &ed25519(KEY_B)), HostKeyStatus::Changed { line: 5 });
    }

    #[test]
    fn learn_files_a_key_and_check_finds_it() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub").join("known_hosts");
        assert_eq!(
            KnownHosts::load(&path)?.check("10.77.0.11", 22, &ed25519(KEY_A)),
            HostKeyStatus::Unknown { other_lines: vec![] }
        );

        assert_eq!(learn(&path, "10.77.0.11", 22, &ed25519(KEY_A))?, Learned::Appended);
        assert_eq!(learn(&path, "127.0.0.1", 2222, &ed25519(KEY_B))?, Learned::Appended);
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(text, format!("10.77.0.11 ssh-ed25519 {KEY_A}\n[127.0.0.1]:2222 ssh-ed25519 {KEY_B}\n"));

        let kh = KnownHosts::load(&path)?;
        assert_eq!(kh.check("10.77.0.11", 22, &ed25519(KEY_A)), HostKeyStatus::Known { line: 1 });
        assert_eq!(kh.check("127.0.0.1", 2222, &ed25519(KEY_B)), HostKeyStatus::Known { line: 2 });
        assert_eq!(kh.check("10.77.0.11", 22, &ed25519(KEY_C)), HostKeyStatus::Changed { line: 1 });
        Ok(())
    }

    #[test]
    fn learn_adds_a_missing_final_newline() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("a ssh-ed25519 {KEY_A}"))?;
        learn(&path, "b", 22, &ed25519(KEY_B))?;
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
    fn keys_learned_at_once_stay_whole_lines() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("a ssh-ed25519 {KEY_A}"))?;
        let hosts: Vec<String> = (0..16).map(|i| format!("10.77.0.{}", 100 + i)).collect();
        std::thread::scope(|scope| {
            for host in &hosts {
                let path = &path;
                scope.spawn(move || learn(path, host, 22, &ed25519(KEY_B)).unwrap());
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

    #[test]
    fn hashed_names_match_whatever_the_case() {
        // The hash is of "example.com"; ssh lower-cases the name before it hashes it.
        let kh = known(&format!(
            "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 {KEY_C}\n"
        ));
        assert_eq!(kh.check("Example.COM", 22, &ed25519(KEY_C)), HostKeyStatus::Known { line: 1 });
    }

    /// Two connections both found the host unknown; the first files its key. The second, whose
    /// key differs (one of them is an impostor), finds the first's line under the lock and is
    /// refused as a changed key instead of filing a second key for the address.
    #[test]
    fn a_key_filed_meanwhile_is_never_followed_by_a_different_one() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("known_hosts");
        assert_eq!(learn(&path, "10.77.0.11", 22, &ed25519(KEY_A))?, Learned::Appended);
        assert_eq!(
            learn(&path, "10.77.0.11", 22, &ed25519(KEY_B))?,
            Learned::Refused(HostKeyStatus::Changed { line: 1 })
        );
        assert_eq!(learn(&path, "10.77.0.11", 22, &ed25519(KEY_A))?, Learned::AlreadyKnown { line: 1 });
        assert_eq!(std::fs::read_to_string(&path)?, format!("10.77.0.11 ssh-ed25519 {KEY_A}\n"));

        // The same race from 16 threads, each with its own key for one new address: one wins.
        let other = dir.path().join("raced");
        let keys = [KEY_A, KEY_B, KEY_C];
        let results: Vec<Learned> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..16)
                .map(|i| {
                    let other = &other;
                    scope.spawn(move || learn(other, "10.77.0.12", 22, &ed25519(keys[i % 3])).unwrap())
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| **r == Learned::Appended).count(), 1, "{results:?}");
        assert_eq!(std::fs::read_to_string(&other)?.lines().count(), 1);
        Ok(())
    }

    // Test keys made with `ssh-keygen -t ed25519 -N ''` for these tests only.
    pub(crate) const CA_PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCc1dROzqgn9eQoGwgcpGFC4PczlAx5iyC+myBm4Q3DGgAAAIjxTvii8U74
ogAAAAtzc2gtZWQyNTUxOQAAACCc1dROzqgn9eQoGwgcpGFC4PczlAx5iyC+myBm4Q3DGg
AAAECiqnCTI0FuHTh5xy0zDvQ/3A5AQ8O3Y5nEgz+h3666F5zV1E7OqCf15CgbCBykYULg
9zOUDHmLIL6bIGbhDcMaAAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----
";
    pub(crate) const CA_PUBLIC: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJzV1E7OqCf15CgbCBykYULg9zOUDHmLIL6bIGbhDcMa";
    pub(crate) const OTHER_CA_PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDG+/uLCCpKAIZaIf2LnK5xWsYjYZCNUQ3F9+QkA+yzDgAAAIh9lwQPfZcE
DwAAAAtzc2gtZWQyNTUxOQAAACDG+/uLCCpKAIZaIf2LnK5xWsYjYZCNUQ3F9+QkA+yzDg
AAAECKHqvq8+Lhd1sEHo9xc4Ma6q+6jQ9jARQnKjc6r30/bcb7+4sIKkoAhloh/YucrnFa
xiNhkI1RDcX35CQD7LMOAAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----
";
    const NOW: u64 = 1_700_000_000;

    /// A certificate for KEY_A signed by `ca`, for `principals` (none: any host), of `kind`,
    /// valid from `from` to `to`, with a critical option when `critical`.
    pub(crate) fn certificate(
        ca: &str,
        kind: CertType,
        principals: &[&str],
        (from, to): (u64, u64),
        critical: bool,
    ) -> Certificate {
        use russh::keys::ssh_key::PrivateKey;
        use russh::keys::ssh_key::certificate::Builder;
        let ca = PrivateKey::from_openssh(ca).unwrap();
        let mut builder = Builder::new([7u8; 16], ed25519(KEY_A).key_data().clone(), from, to).unwrap();
        builder.cert_type(kind).unwrap();
        if principals.is_empty() {
            builder.all_principals_valid().unwrap();
        }
        for principal in principals {
            builder.valid_principal(*principal).unwrap();
        }
        if critical {
            builder.critical_option("force-command", "/bin/true").unwrap();
        }
        builder.sign(&ca).unwrap()
    }

    fn host_certificate(principals: &[&str]) -> Certificate {
        certificate(CA_PRIVATE, CertType::Host, principals, (NOW - 60, NOW + 60), false)
    }

    /// `@cert-authority` lines are honoured as sshd(8) describes: a certificate signed by an
    /// authority listed for the host, valid now and for this host, proves the host.
    #[test]
    fn a_host_certificate_from_a_listed_authority_is_trusted() {
        let kh = known(&format!("# CA\n@cert-authority *.lab,10.77.0.* ssh-ed25519 {CA_PUBLIC}\n"));
        assert!(kh.has_authority_for("etcd0.lab", 22));
        assert!(kh.has_authority_for("10.77.0.11", 22));
        assert!(!kh.has_authority_for("example.org", 22));
        for (host, principals) in
            [("etcd0.lab", &["etcd0.lab"][..]), ("ETCD0.lab", &["etcd0.lab"]), ("10.77.0.11", &[])]
        {
            assert_eq!(
                kh.check_certificate(host, 22, &host_certificate(principals), NOW),
                CertificateStatus::Trusted { line: 2 },
                "{host}"
            );
        }
        // The authority's line vouches for no plain key, not even its own.
        assert_eq!(
            kh.check("etcd0.lab", 22, &ed25519(CA_PUBLIC)),
            HostKeyStatus::Unknown { other_lines: vec![] }
        );
    }

    #[test]
    fn a_certificate_the_authority_did_not_mean_for_this_host_now_is_refused() {
        let kh = known(&format!("@cert-authority *.lab ssh-ed25519 {CA_PUBLIC}\n"));
        let check = |certificate: &Certificate| kh.check_certificate("etcd0.lab", 22, certificate, NOW);
        let reason = |status: CertificateStatus| match status {
            CertificateStatus::Invalid { line: 1, reason } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(check(&host_certificate(&["etcd1.lab"]))),
            "it is for [\"etcd1.lab\"], not for etcd0.lab"
        );
        let expired = certificate(CA_PRIVATE, CertType::Host, &[], (NOW - 60, NOW - 1), false);
        assert_eq!(
            reason(check(&expired)),
            "it expired at 2023-11-14 22:13:19 UTC (now 2023-11-14 22:13:20 UTC)"
        );
        let early = certificate(CA_PRIVATE, CertType::Host, &[], (NOW + 1, NOW + 60), false);
        assert_eq!(
            reason(check(&early)),
            "it is not valid before 2023-11-14 22:13:21 UTC (now 2023-11-14 22:13:20 UTC)"
        );
        assert_eq!(utc(u64::MAX), "forever");
        let user = certificate(CA_PRIVATE, CertType::User, &[], (NOW - 60, NOW + 60), false);
        assert_eq!(reason(check(&user)), "it is a user certificate, not a host certificate");
        let critical = certificate(CA_PRIVATE, CertType::Host, &[], (NOW - 60, NOW + 60), true);
        assert!(reason(check(&critical)).contains("critical options"));
    }

    #[test]
    fn a_certificate_from_an_unlisted_or_revoked_authority_is_not_trusted() {
        let other = certificate(OTHER_CA_PRIVATE, CertType::Host, &[], (NOW - 60, NOW + 60), false);
        let kh = known(&format!("@cert-authority *.lab ssh-ed25519 {CA_PUBLIC}\n"));
        assert_eq!(kh.check_certificate("etcd0.lab", 22, &other, NOW), CertificateStatus::NoAuthority);
        // Listed for other hosts only.
        assert_eq!(
            kh.check_certificate("db.example", 22, &host_certificate(&[]), NOW),
            CertificateStatus::NoAuthority
        );
        // A revoked authority, or a revoked key inside the certificate, is never trusted.
        let kh = known(&format!(
            "@cert-authority *.lab ssh-ed25519 {CA_PUBLIC}\n@revoked * ssh-ed25519 {CA_PUBLIC}\n"
        ));
        assert_eq!(
            kh.check_certificate("etcd0.lab", 22, &host_certificate(&[]), NOW),
            CertificateStatus::Revoked { line: 2 }
        );
        let kh = known(&format!(
            "@cert-authority *.lab ssh-ed25519 {CA_PUBLIC}\n@revoked * ssh-ed25519 {KEY_A}\n"
        ));
        assert_eq!(
            kh.check_certificate("etcd0.lab", 22, &host_certificate(&[]), NOW),
            CertificateStatus::Revoked { line: 2 }
        );
    }
}
