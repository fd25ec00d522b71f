//! What to do with host keys that `known_hosts` does not list.

use std::fmt;
use std::str::FromStr;

/// How [`super::SshHost`] treats a host key that `known_hosts` does not list. A key that differs
/// from a listed one is refused under every policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HostKeyPolicy {
    /// Refuse unknown keys (OpenSSH `StrictHostKeyChecking yes`).
    #[default]
    Strict,
    /// Trust an unknown key on first sight and append it to `known_hosts`
    /// (OpenSSH `StrictHostKeyChecking accept-new`).
    AcceptNew,
}

impl HostKeyPolicy {
    /// The spelling used on the command line: `strict` or `accept-new`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::AcceptNew => "accept-new",
        }
    }
}

impl fmt::Display for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HostKeyPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" | "yes" => Ok(Self::Strict),
            "accept-new" => Ok(Self::AcceptNew),
            other => Err(format!("unknown host key policy `{other}`; expected `strict` or `accept-new`")),
        }
    }
}
