//! Turning inventory hosts into targets for a run: SSH, or the controller itself for a host
//! with `ansible_connection: local`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::{Host, HostError};

use crate::elevate::{Become, Password};
use crate::error::Error;
use crate::inventory::{InventoryError, Transport};
use crate::plan::Plan;
use crate::redact::Redactor;
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
    /// The become password asked for with `-K`, for the become hosts whose inventory gives none.
    pub become_password: Option<Password>,
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
            become_password: None,
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
/// local `sh`, as the user running engine, or through `sudo` with `ansible_become` (the
/// inventory refuses other methods for local hosts).
#[derive(Debug)]
struct Local {
    host: LocalHost,
    become_: Option<Become>,
    /// How sudo runs, found by the first command (see [`Local::sudo_mode`]), or why it cannot.
    mode: tokio::sync::OnceCell<Result<LocalSudo, HostError>>,
}

/// How a local host's commands go through sudo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalSudo {
    /// `sudo -n`: no password needed.
    NoPassword,
    /// `sudo -S -k -p ''`: the password is the first line of stdin. `-k` makes sudo read it
    /// every time (a cached credential would leave it for the command); sudo reads it byte by
    /// byte up to the newline, so the rest of stdin is the command's, byte for byte.
    Password,
}

impl Local {
    fn new(host: LocalHost, become_: Option<Become>) -> Self {
        Self { host, become_, mode: tokio::sync::OnceCell::new() }
    }

    /// Tries `sudo -n` once; when it wants a password and one was given, tries that once (a
    /// wrong one is not tried again). Every later command reuses the answer.
    async fn sudo_mode(&self, become_: &Become) -> Result<LocalSudo, HostError> {
        let result = self
            .mode
            .get_or_init(|| async {
                let user = contract::shell::quote(&become_.user);
                let probe = format!("sudo -n -u {user} -- sh -c true");
                let out = self.host.exec(contract::Exec::new(probe)).await?;
                if out.success() {
                    return Ok(LocalSudo::NoPassword);
                }
                let login = std::env::var("USER").unwrap_or_else(|_| "the controller's user".into());
                let Some(password) = &become_.password else {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    return Err(HostError::Unreachable(become_.failure(
                        self.host.name(),
                        &login,
                        0,
                        out.status,
                        &stderr,
                    )));
                };
                let probe = format!("sudo -S -k -p '' -u {user} -- sh -c true");
                let out = self.host.exec(contract::Exec::new(probe).stdin(password.line())).await?;
                if out.success() {
                    Ok(LocalSudo::Password)
                } else {
                    Err(HostError::Unreachable(format!(
                        "sudo on {}: incorrect password (as {login})",
                        self.host.name()
                    )))
                }
            })
            .await;
        result.clone()
    }
}

#[async_trait]
impl contract::Host for Local {
    fn name(&self) -> &str {
        self.host.name()
    }

    async fn exec(&self, mut exec: contract::Exec) -> Result<contract::ExecOutput, HostError> {
        let Some(become_) = &self.become_ else {
            return self.host.exec(exec).await;
        };
        let user = contract::shell::quote(&become_.user);
        let script = contract::shell::quote(&exec.command);
        match self.sudo_mode(become_).await? {
            LocalSudo::NoPassword => exec.command = format!("sudo -n -H -u {user} -- sh -c {script}"),
            LocalSudo::Password => {
                exec.command = format!("sudo -S -k -p '' -H -u {user} -- sh -c {script}");
                let mut stdin = become_.password.as_ref().map(Password::line).unwrap_or_default();
                stdin.extend(exec.stdin.take().unwrap_or_default());
                exec.stdin = Some(stdin);
            }
        }
        self.host.exec(exec).await
    }
}

#[async_trait]
impl Target for Local {
    async fn connect(&self) -> Result<(), HostError> {
        match &self.become_ {
            Some(become_) => self.sudo_mode(become_).await.map(drop),
            None => Ok(()),
        }
    }
}

/// One target per inventory host: SSH, or the controller for `ansible_connection: local`.
/// Nothing connects yet. Every become password in use is added to `redactor`.
pub fn ssh_targets(
    plan: &Plan,
    defaults: &SshDefaults,
    redactor: &Redactor,
) -> Result<HashMap<String, Arc<dyn Target>>, Error> {
    if let Some(password) = &defaults.become_password {
        redactor.add(password.expose());
    }
    let mut targets: HashMap<String, Arc<dyn Target>> = HashMap::new();
    let mut problems = Vec::new();
    let used = plan.hosts();
    // Every inventory host gets a target, not only those with tasks: modules such as `scp`
    // read from other hosts. Targets connect lazily, so unused ones cost nothing.
    for host in plan.inventory().hosts() {
        let name = host.name.clone();
        match host.connection() {
            Ok(mut c) => {
                // The inventory's password for this host wins over -K's, as in Ansible.
                if c.become_password.is_none() && c.become_user.is_some() {
                    c.become_password = defaults.become_password.clone();
                }
                if let Some(password) = &c.become_password {
                    redactor.add(password.expose());
                }
                let target: Arc<dyn Target> = match c.transport {
                    Transport::Local => {
                        let become_ = c.become_user.map(|user| Become {
                            method: c.become_method,
                            user,
                            password: c.become_password,
                        });
                        Arc::new(Local::new(LocalHost::new(name.clone()), become_))
                    }
                    Transport::Ssh => Arc::new(SshHost::new(name.clone(), ssh_config(c, defaults))),
                };
                targets.insert(name, target);
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

/// The SSH settings of one host: its inventory's, and the command line's for the rest.
fn ssh_config(c: crate::inventory::Connection, defaults: &SshDefaults) -> SshConfig {
    let mut config = SshConfig::new(c.address, c.user);
    config.port = c.port;
    config.key_file = c.key_file;
    config.known_hosts =
        c.known_hosts.or_else(|| defaults.known_hosts.clone()).unwrap_or_else(default_known_hosts);
    config.host_key_policy = defaults.host_key_policy;
    config.connect_timeout = defaults.connect_timeout;
    config.command_timeout = defaults.command_timeout;
    config.max_channels = defaults.max_channels;
    config.max_output = defaults.max_output;
    // Become is the transport's: it runs the kill of a command that must stop as the same user
    // as the command, and answers the method's password prompt.
    config.become_user = c.become_user;
    config.become_method = c.become_method;
    config.become_password = c.become_password;
    config
}
