//! Turning inventory hosts into targets for a run: SSH, or the controller itself for a host
//! with `ansible_connection: local`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::HostError;

use crate::error::Error;
use crate::inventory::{InventoryError, Transport};
use crate::plan::Plan;
use crate::ssh::{HostKeyPolicy, SshConfig, SshHost, default_known_hosts};
use contract::Target;
use contract::local::LocalHost;

/// Connection settings that come from the command line rather than the inventory.
#[derive(Debug, Clone)]
pub struct SshDefaults {
    pub host_key_policy: HostKeyPolicy,
    /// Used when the inventory names no known_hosts file for a host.
    pub known_hosts: Option<std::path::PathBuf>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub max_channels: usize,
    /// Bytes kept per output stream of one command (`--max-output`); more fails the command.
    pub max_output: u64,
}

impl Default for SshDefaults {
    fn default() -> Self {
        Self {
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts: None,
            connect_timeout: SshConfig::DEFAULT_CONNECT_TIMEOUT,
            command_timeout: SshConfig::DEFAULT_COMMAND_TIMEOUT,
            max_channels: SshConfig::DEFAULT_MAX_CHANNELS,
            max_output: SshConfig::DEFAULT_MAX_OUTPUT,
        }
    }
}

#[async_trait]
impl Target for SshHost {
    async fn connect(&self) -> Result<(), HostError> {
        SshHost::connect(self).await
    }
}

/// A host whose inventory settings cannot be used: every command fails with the reason.
#[derive(Debug)]
struct Unusable {
    name: String,
    reason: String,
}

#[async_trait]
impl contract::Host for Unusable {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, _exec: contract::Exec) -> Result<contract::ExecOutput, HostError> {
        Err(HostError::Unreachable(self.reason.clone()))
    }
}

#[async_trait]
impl Target for Unusable {
    async fn connect(&self) -> Result<(), HostError> {
        Err(HostError::Unreachable(self.reason.clone()))
    }
}

/// A host with `ansible_connection: local`: its commands run on the controller, through the
/// local `sh`, as the user running engine (become is refused for it at connection time).
#[derive(Debug)]
struct Local(LocalHost);

#[async_trait]
impl contract::Host for Local {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn exec(&self, exec: contract::Exec) -> Result<contract::ExecOutput, HostError> {
        self.0.exec(exec).await
    }
}

#[async_trait]
impl Target for Local {
    async fn connect(&self) -> Result<(), HostError> {
        Ok(())
    }
}

/// One target per inventory host: SSH, or the controller for `ansible_connection: local`.
/// Nothing connects yet.
pub fn ssh_targets(plan: &Plan, defaults: &SshDefaults) -> Result<HashMap<String, Arc<dyn Target>>, Error> {
    let mut targets: HashMap<String, Arc<dyn Target>> = HashMap::new();
    let mut problems = Vec::new();
    let used = plan.hosts();
    // Every inventory host gets a target, not only those with tasks: modules such as `scp`
    // read from other hosts. Targets connect lazily, so unused ones cost nothing.
    for host in plan.inventory().hosts() {
        let name = host.name.clone();
        match host.connection() {
            Ok(c) if c.transport == Transport::Local => {
                targets.insert(name.clone(), Arc::new(Local(LocalHost::new(name))));
            }
            Ok(c) => {
                let mut config = SshConfig::new(c.address, c.user);
                config.port = c.port;
                config.key_file = c.key_file;
                config.known_hosts = c
                    .known_hosts
                    .or_else(|| defaults.known_hosts.clone())
                    .unwrap_or_else(default_known_hosts);
                config.host_key_policy = defaults.host_key_policy;
                config.connect_timeout = defaults.connect_timeout;
                config.command_timeout = defaults.command_timeout;
                config.max_channels = defaults.max_channels;
                config.max_output = defaults.max_output;
                // Become is the transport's: it runs the kill of a command that must stop as
                // the same user as the command.
                config.become_user = c.become_user;
                targets.insert(name.clone(), Arc::new(SshHost::new(name, config)));
            }
            Err(e) if used.contains(&name) => problems.push(e),
            // A host the plan has no task on may still be read from (scp, facts); if its
            // settings are unusable, that read fails with the reason.
            Err(e) => {
                targets.insert(name.clone(), Arc::new(Unusable { name, reason: e }));
            }
        }
    }
    if problems.is_empty() {
        Ok(targets)
    } else {
        Err(Error::Inventory(InventoryError::Invalid {
            path: plan.inventory().path.clone(),
            line: None,
            message: problems.join("; "),
        }))
    }
}
