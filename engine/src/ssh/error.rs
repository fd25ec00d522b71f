//! The error russh's client handler reports while connecting.

/// Why a connection attempt failed inside russh. Lives only until [`super::SshHost`] turns it
/// into a `HostError::Unreachable` that names the host.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SshError {
    /// The SSH protocol or the socket under it failed.
    #[error(transparent)]
    Russh(#[from] russh::Error),
    /// The server's host key was refused; the message says why and how to fix it.
    #[error("{0}")]
    HostKey(String),
}

impl SshError {
    /// The message, for the user (russh's terse ones said plainly).
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Russh(e) => describe(e),
            Self::HostKey(msg) => msg.clone(),
        }
    }
}

/// russh's own messages for the failures people actually hit are terse; say it plainly.
pub(crate) fn describe(error: &russh::Error) -> String {
    match error {
        russh::Error::IO(io) => io.to_string(),
        russh::Error::Disconnect => "the server closed the connection".to_owned(),
        russh::Error::NoCommonAlgo { kind, ours, theirs } => {
            format!("no common {kind:?} algorithm (ours: {ours:?}, theirs: {theirs:?})")
        }
        other => other.to_string(),
    }
}
