//! The russh client callbacks: host-key (and host-certificate) checking against `known_hosts`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::Certificate;
use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

use super::error::SshError;
use super::known_hosts::{self, CertificateStatus, HostKeyStatus, KnownHosts, Learned};
use super::{HostKeyPolicy, SshConfig};

/// One per connection attempt; russh owns it for the life of the connection.
#[derive(Debug)]
pub(crate) struct ClientHandler {
    address: String,
    port: u16,
    known_hosts: PathBuf,
    /// Read-only files consulted when `known_hosts` does not list the host (the rest of
    /// `UserKnownHostsFile`, `GlobalKnownHostsFile`).
    more_known_hosts: Vec<PathBuf>,
    policy: HostKeyPolicy,
}

impl ClientHandler {
    pub(crate) fn new(config: &SshConfig) -> Self {
        Self {
            address: config.address.clone(),
            port: config.port,
            known_hosts: config.known_hosts.clone(),
            more_known_hosts: config.more_known_hosts.clone(),
            policy: config.host_key_policy,
        }
    }

    /// Decides whether `key` is the host's key; an `Err` carries the message for the user.
    fn verify(&self, key: &PublicKey) -> Result<(), SshError> {
        let kh = self.load()?;
        let endpoint = self.endpoint();
        let path = kh.path().display();
        match kh.check(&self.address, self.port, key) {
            HostKeyStatus::Known { line } => {
                tracing::debug!(%endpoint, %path, line, "host key known");
                Ok(())
            }
            HostKeyStatus::Unknown { .. } if self.known_elsewhere(key)? => Ok(()),
            HostKeyStatus::Unknown { other_lines } => match self.policy {
                HostKeyPolicy::AcceptNew => self.learn(key),
                HostKeyPolicy::Strict => {
                    let others = if other_lines.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (it lists only keys of other types for this host, at lines {other_lines:?})"
                        )
                    };
                    let port = if self.port == 22 { String::new() } else { format!("-p {} ", self.port) };
                    let missing = if kh.exists() { "" } else { " (the file does not exist)" };
                    Err(SshError::HostKey(format!(
                        "host key for {endpoint} ({}) is not in {path}{missing}{others}; add it with \
                         `ssh-keyscan {port}{} >> {path}` after checking the fingerprint, or run with \
                         --host-key-checking=accept-new",
                        presented(key),
                        self.address
                    )))
                }
            },
            refused => Err(self.refusal(key, &refused)),
        }
    }

    /// Files an unknown `key` (accept-new). The file is read again under its lock first: when
    /// another connection filed a key for this host meanwhile, that one decides.
    fn learn(&self, key: &PublicKey) -> Result<(), SshError> {
        let endpoint = self.endpoint();
        let path = self.known_hosts.display();
        match known_hosts::learn(&self.known_hosts, &self.address, self.port, key) {
            Ok(Learned::Appended) => {
                tracing::info!(%endpoint, %path, key = %presented(key), "learned new host key");
                Ok(())
            }
            Ok(Learned::AlreadyKnown { line }) => {
                tracing::debug!(%endpoint, %path, line, "host key filed meanwhile by another connection");
                Ok(())
            }
            Ok(Learned::Refused(status)) => Err(self.refusal(key, &status)),
            Err(e) => {
                Err(SshError::HostKey(format!("cannot record the host key for {endpoint} in {path}: {e}")))
            }
        }
    }

    /// The error for a key that `known_hosts` refuses (changed or revoked).
    fn refusal(&self, key: &PublicKey, status: &HostKeyStatus) -> SshError {
        let endpoint = self.endpoint();
        let path = self.known_hosts.display();
        let presented = presented(key);
        SshError::HostKey(match status {
            HostKeyStatus::Revoked { line } => {
                format!("host key for {endpoint} ({presented}) is marked @revoked in {path} line {line}")
            }
            HostKeyStatus::Changed { line } => format!(
                "HOST KEY CHANGED for {endpoint}: the server presented {presented}, but {path} line {line} \
                 holds a different {} key. Someone could be intercepting the connection, or the host was \
                 reinstalled. If the change is expected, remove the old key with `ssh-keygen -R {} -f {path}`",
                key.algorithm(),
                shell_word(&known_hosts::host_pattern(&self.address, self.port)),
            ),
            HostKeyStatus::Known { .. } | HostKeyStatus::Unknown { .. } => {
                format!("host key for {endpoint} ({presented}) was refused by {path}")
            }
        })
    }

    /// Decides whether a host certificate proves the host, as OpenSSH's ssh does: trusted
    /// when an `@cert-authority` line for the host signed it and it is valid for the host now;
    /// refused when a key in it is revoked. Otherwise (no authority for the host signed it, or
    /// it is not valid) ssh checks its key as a plain host key ("No matching CA found. Retry
    /// with plain key"): so does this, but an invalid certificate is accepted only when the
    /// plain key is already known (never learned under accept-new), and a refusal says what
    /// was wrong with the certificate.
    fn verify_certificate(&self, certificate: &Certificate) -> Result<(), SshError> {
        let kh = self.load()?;
        let endpoint = self.endpoint();
        let path = kh.path().display();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let plain = PublicKey::new(certificate.public_key().clone(), "");
        match kh.check_certificate(&self.address, self.port, certificate, now) {
            CertificateStatus::Trusted { line } => {
                tracing::debug!(%endpoint, %path, line, "host certificate signed by a trusted authority");
                Ok(())
            }
            CertificateStatus::Invalid { line, reason } => {
                let invalid = format!(
                    "the host certificate of {endpoint} is signed by the authority at {path} line {line}, \
                     but is not valid: {reason}"
                );
                let known = match kh.check(&self.address, self.port, &plain) {
                    HostKeyStatus::Known { .. } => true,
                    HostKeyStatus::Unknown { .. } => self.known_elsewhere(&plain).unwrap_or(false),
                    HostKeyStatus::Changed { .. } | HostKeyStatus::Revoked { .. } => false,
                };
                if known {
                    tracing::warn!(%endpoint, "{invalid}; its key is a known host key, accepted as such");
                    Ok(())
                } else {
                    Err(SshError::HostKey(format!(
                        "{invalid}; its key ({}) is not a known host key either",
                        presented(&plain)
                    )))
                }
            }
            CertificateStatus::Revoked { line } => Err(SshError::HostKey(format!(
                "the host certificate of {endpoint} holds a key marked @revoked in {path} line {line}"
            ))),
            CertificateStatus::NoAuthority => {
                tracing::debug!(%endpoint, %path, "no authority for this host signed its certificate; checking its key");
                self.verify(&plain).map_err(|e| {
                    SshError::HostKey(format!(
                        "the host certificate of {endpoint} is signed by {} {}, which no @cert-authority \
                         line for the host in {path} names; as a plain key: {}",
                        certificate.signature_key().algorithm(),
                        certificate.signature_key().fingerprint(HashAlg::Sha256),
                        e.message()
                    ))
                })
            }
        }
    }

    /// Whether one of the read-only files lists `key` for the host; a file that lists a
    /// different key of that type, or marks it revoked, refuses it.
    fn known_elsewhere(&self, key: &PublicKey) -> Result<bool, SshError> {
        for path in &self.more_known_hosts {
            let kh = KnownHosts::load(path).map_err(|e| {
                SshError::HostKey(format!("cannot read known_hosts file {}: {e}", path.display()))
            })?;
            match kh.check(&self.address, self.port, key) {
                HostKeyStatus::Known { line } => {
                    tracing::debug!(endpoint = %self.endpoint(), path = %path.display(), line, "host key known");
                    return Ok(true);
                }
                HostKeyStatus::Unknown { .. } => {}
                refused => {
                    let handler = Self { known_hosts: path.clone(), ..self.clone_settings() };
                    return Err(handler.refusal(key, &refused));
                }
            }
        }
        Ok(false)
    }

    fn clone_settings(&self) -> Self {
        Self {
            address: self.address.clone(),
            port: self.port,
            known_hosts: self.known_hosts.clone(),
            more_known_hosts: Vec::new(),
            policy: self.policy,
        }
    }

    fn load(&self) -> Result<KnownHosts, SshError> {
        KnownHosts::load(&self.known_hosts).map_err(|e| {
            SshError::HostKey(format!("cannot read known_hosts file {}: {e}", self.known_hosts.display()))
        })
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }
}

/// `ALGORITHM SHA256:...`, how a key is named in messages.
fn presented(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256))
}

impl russh::client::Handler for ClientHandler {
    type Error = SshError;

    async fn check_server_key(&mut self, server_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.verify(key).map(|()| true),
            PublicKeyOrCertificate::Certificate(certificate) => {
                self.verify_certificate(certificate).map(|()| true)
            }
        }
    }
}

/// Quotes `[host]:port` for a copy-pasted shell command; plain names need no quotes.
fn shell_word(word: &str) -> String {
    if word.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b)) {
        word.to_owned()
    } else {
        format!("'{word}'")
    }
}

#[cfg(test)]
mod tests {
    use russh::keys::ssh_key::certificate::CertType;

    use super::super::known_hosts::tests::{CA_PRIVATE, CA_PUBLIC, KEY_A, OTHER_CA_PRIVATE, certificate};
    use super::*;

    /// A handler for host `h` with `known_hosts` as its file (strict), and the file's folder.
    fn handler(known_hosts: &str) -> (ClientHandler, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SshConfig::new("h", "root");
        config.known_hosts = dir.path().join("known_hosts");
        std::fs::write(&config.known_hosts, known_hosts).unwrap();
        (ClientHandler::new(&config), dir)
    }

    fn refusal(handler: &ClientHandler, certificate: &Certificate) -> String {
        handler.verify_certificate(certificate).unwrap_err().message()
    }

    /// A certificate that is not valid falls back to the plain key, as ssh does, only when that
    /// key is known; one from an unlisted CA is checked as a plain key and its refusal names the
    /// CA; a revoked CA never falls back.
    #[test]
    fn an_invalid_or_unvouched_certificate_falls_back_to_a_known_plain_key_only() {
        let ca = format!("@cert-authority * ssh-ed25519 {CA_PUBLIC}\n");
        let plain = format!("h ssh-ed25519 {KEY_A}\n");
        let valid = certificate(CA_PRIVATE, CertType::Host, &["h"], (0, u64::MAX - 1), false);
        let expired = certificate(CA_PRIVATE, CertType::Host, &["h"], (0, 1), false);
        let other = certificate(OTHER_CA_PRIVATE, CertType::Host, &["h"], (0, u64::MAX - 1), false);

        let (only_ca, _dir) = handler(&ca);
        only_ca.verify_certificate(&valid).unwrap();
        let why = refusal(&only_ca, &expired);
        assert!(why.contains("is not valid: it expired at 1970-01-01 00:00:01 UTC"), "{why}");
        assert!(why.contains("is not a known host key either"), "{why}");
        let why = refusal(&only_ca, &other);
        assert!(why.contains("which no @cert-authority line for the host"), "{why}");
        assert!(why.contains("is not in"), "{why}");

        let (both, _dir) = handler(&format!("{plain}{ca}"));
        both.verify_certificate(&expired).unwrap();
        both.verify_certificate(&other).unwrap();

        let (revoked, _dir) = handler(&format!("{plain}{ca}@revoked * ssh-ed25519 {CA_PUBLIC}\n"));
        let why = refusal(&revoked, &valid);
        assert!(why.contains("marked @revoked"), "{why}");
        assert!(why.contains("line 3"), "{why}");
    }
}
