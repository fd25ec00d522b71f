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
    /// refused when such an authority signed it but it is not valid (or a key is revoked);
    /// when no authority for the host signed it, its key is checked as a plain host key.
    fn verify_certificate(&self, certificate: &Certificate) -> Result<(), SshError> {
        let kh = self.load()?;
        let endpoint = self.endpoint();
        let path = kh.path().display();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match kh.check_certificate(&self.address, self.port, certificate, now) {
            CertificateStatus::Trusted { line } => {
                tracing::debug!(%endpoint, %path, line, "host certificate signed by a trusted authority");
                Ok(())
            }
            CertificateStatus::Invalid { line, reason } => Err(SshError::HostKey(format!(
                "the host certificate of {endpoint} is signed by the authority at {path} line {line}, \
                 but is not valid: {reason}"
            ))),
            CertificateStatus::Revoked { line } => Err(SshError::HostKey(format!(
                "the host certificate of {endpoint} holds a key marked @revoked in {path} line {line}"
            ))),
            CertificateStatus::NoAuthority => {
                tracing::debug!(%endpoint, %path, "no authority for this host signed its certificate; checking its key");
                self.verify(&PublicKey::new(certificate.public_key().clone(), ""))
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
