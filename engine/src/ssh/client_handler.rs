//! The russh client callbacks: host-key checking against `known_hosts`.

use std::path::PathBuf;

use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

use super::error::SshError;
use super::known_hosts::{self, HostKeyStatus, KnownHosts};
use super::{HostKeyPolicy, SshConfig};

/// One per connection attempt; russh owns it for the life of the connection.
#[derive(Debug)]
pub(crate) struct ClientHandler {
    address: String,
    port: u16,
    known_hosts: PathBuf,
    policy: HostKeyPolicy,
}

impl ClientHandler {
    pub(crate) fn new(config: &SshConfig) -> Self {
        Self {
            address: config.address.clone(),
            port: config.port,
            known_hosts: config.known_hosts.clone(),
            policy: config.host_key_policy,
        }
    }

    /// Decides whether `key` is the host's key; an `Err` carries the message for the user.
    fn verify(&self, key: &PublicKey) -> Result<(), SshError> {
        let kh = KnownHosts::load(&self.known_hosts).map_err(|e| {
            SshError::HostKey(format!("cannot read known_hosts file {}: {e}", self.known_hosts.display()))
        })?;
        let endpoint = format!("{}:{}", self.address, self.port);
        let path = kh.path().display();
        let presented = format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256));
        match kh.check(&self.address, self.port, key) {
            HostKeyStatus::Known { line } => {
                tracing::debug!(%endpoint, %path, line, "host key known");
                Ok(())
            }
            HostKeyStatus::Changed { line } => Err(SshError::HostKey(format!(
                "HOST KEY CHANGED for {endpoint}: the server presented {presented}, but {path} line {line} \
                 holds a different {} key. Someone could be intercepting the connection, or the host was \
                 reinstalled. If the change is expected, remove the old key with `ssh-keygen -R {} -f {path}`",
                key.algorithm(),
                shell_word(&known_hosts::host_pattern(&self.address, self.port)),
            ))),
            HostKeyStatus::Revoked { line } => Err(SshError::HostKey(format!(
                "host key for {endpoint} ({presented}) is marked @revoked in {path} line {line}"
            ))),
            HostKeyStatus::Unknown { other_lines } => match self.policy {
                HostKeyPolicy::AcceptNew => {
                    known_hosts::append(&self.known_hosts, &self.address, self.port, key).map_err(|e| {
                        SshError::HostKey(format!("cannot record the host key for {endpoint} in {path}: {e}"))
                    })?;
                    tracing::info!(%endpoint, %path, key = %presented, "learned new host key");
                    Ok(())
                }
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
                        "host key for {endpoint} ({presented}) is not in {path}{missing}{others}; add it with \
                         `ssh-keyscan {port}{} >> {path}` after checking the fingerprint, or run with \
                         --host-key-checking=accept-new",
                        self.address
                    )))
                }
            },
        }
    }
}

impl russh::client::Handler for ClientHandler {
    type Error = SshError;

    async fn check_server_key(&mut self, server_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.verify(key).map(|()| true),
            PublicKeyOrCertificate::Certificate(_) => Err(SshError::HostKey(format!(
                "{}:{} presented a host certificate; only plain host keys are supported",
                self.address, self.port
            ))),
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
