//! A host that is connected before it is used.

use async_trait::async_trait;

use crate::host::{Host, HostError};

/// A host the runner can connect to before its first task (the engine's SSH hosts, and the
/// `become` wrapper around one).
#[async_trait]
pub trait Target: Host {
    /// Opens the connection (idempotent). Errors mean every task of the host is unreachable.
    async fn connect(&self) -> Result<(), HostError>;
}
