//! Become: running a host's commands as another user (root by default) through `sudo`,
//! for inventories that log in as an unprivileged user (`ansible_become: true`).

use std::sync::Arc;

use async_trait::async_trait;
use contract::shell::quote;
use contract::{Exec, ExecOutput, Host, HostError};

use contract::Target;

/// Wraps a target so that every command runs as `user` through `sudo -n` (no password
/// prompt: a sudo that wants one fails at once with its own message).
#[derive(Clone)]
pub struct Sudo {
    inner: Arc<dyn Target>,
    user: String,
}

impl std::fmt::Debug for Sudo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sudo").field("host", &self.inner.name()).field("user", &self.user).finish()
    }
}

impl Sudo {
    pub fn new(inner: Arc<dyn Target>, user: String) -> Self {
        Self { inner, user }
    }

    /// The command line that runs `command` as the become user.
    fn wrap(&self, command: &str) -> String {
        format!("sudo -n -H -u {} -- sh -c {}", quote(&self.user), quote(command))
    }
}

#[async_trait]
impl Host for Sudo {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn exec(&self, mut exec: Exec) -> Result<ExecOutput, HostError> {
        exec.command = self.wrap(&exec.command);
        self.inner.exec(exec).await
    }
}

#[async_trait]
impl Target for Sudo {
    async fn connect(&self) -> Result<(), HostError> {
        self.inner.connect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_commands_in_quoted_sudo() {
        let host = crate::ssh::SshHost::new("h".into(), crate::ssh::SshConfig::new("127.0.0.1", "deploy"));
        let sudo = Sudo::new(Arc::new(host), "root".into());
        assert_eq!(sudo.wrap("echo 'hi'"), r"sudo -n -H -u 'root' -- sh -c 'echo '\''hi'\'''");
    }
}
