//! How to reach one host over SSH.

use std::path::PathBuf;
use std::time::Duration;

use super::HostKeyPolicy;

/// Everything [`super::SshHost`] needs to reach one host. Plain data: the inventory layer
/// fills it from `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// Host name or IP address to connect to. Also the name looked up in `known_hosts`.
    pub address: String,
    /// TCP port, usually 22.
    pub port: u16,
    /// Remote user to log in as.
    pub user: String,
    /// Private key file (`ansible_ssh_private_key_file`). Offered before [`SshConfig::identity_files`].
    pub key_file: Option<PathBuf>,
    /// Further key files (ssh_config `IdentityFile`, `-i`). With any key file, or with
    /// [`SshConfig::identities_only`], only those keys are offered (an agent's copy of one of
    /// them included); with neither, the agent's keys, then `~/.ssh/id_ed25519`, `id_ecdsa`,
    /// `id_rsa`, as ssh does.
    pub identity_files: Vec<PathBuf>,
    /// ssh_config `IdentitiesOnly`: offer only the key files, never the agent's other keys.
    pub identities_only: bool,
    /// The `known_hosts` file that host keys are checked against (and appended to under
    /// [`HostKeyPolicy::AcceptNew`]).
    pub known_hosts: PathBuf,
    /// More files checked (read-only) for the host key when [`SshConfig::known_hosts`] does
    /// not list it: the rest of `UserKnownHostsFile`, and `GlobalKnownHostsFile`.
    pub more_known_hosts: Vec<PathBuf>,
    /// Jump hosts (ssh_config `ProxyJump`, `-J`, `ProxyCommand ssh -W %h:%p`), first hop first:
    /// the connection to this host is tunnelled through each in turn.
    pub jumps: Vec<Jump>,
    /// What to do with a host key that `known_hosts` does not list yet.
    pub host_key_policy: HostKeyPolicy,
    /// Bound for TCP connect, key exchange and authentication together.
    pub connect_timeout: Duration,
    /// Bound for one command when [`contract::Exec::timeout`] is `None`. The clock starts when
    /// the command has a channel, not while it waits for one.
    pub command_timeout: Duration,
    /// Channels open at once on the connection; further commands wait. Keep it well under
    /// sshd's `MaxSessions` (default 10), which also counts channels that are still closing.
    pub max_channels: usize,
    /// Run every command (and the kill of one that must be stopped) as this user through
    /// `sudo -n` (`ansible_become`); `None` runs them as [`SshConfig::user`].
    pub become_user: Option<String>,
    /// How commands become [`SshConfig::become_user`] (`ansible_become_method`), and the password
    /// the method asks for, if one was given (`-K`, `ansible_become_password`).
    pub become_method: crate::elevate::Method,
    pub become_password: Option<crate::elevate::Password>,
    /// Bytes kept of one command's stdout, and as many of its stderr. A command that prints
    /// more is stopped and fails with [`contract::HostError::OutputLimit`].
    pub max_output: u64,
    /// The run's passphrase-protected keys, unlocked once for every host (see [`super::KeyUnlocker`]).
    pub keys: super::Keys,
    /// How commands reach the host: a channel each (the default), or through a host session.
    pub transport: CommandTransport,
}

/// How a host's commands are run over its connection (`--transport`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CommandTransport {
    /// Every command on a channel of its own (an sshd session and a login shell each).
    #[default]
    Exec,
    /// Commands through a small `sh` loop on a long-lived channel (see `ssh::session`); with a
    /// become password (or `su`) commands still use [`CommandTransport::Exec`].
    Session,
}

impl CommandTransport {
    /// `exec` or `session`, as `--transport` spells it.
    pub fn name(self) -> &'static str {
        match self {
            CommandTransport::Exec => "exec",
            CommandTransport::Session => "session",
        }
    }
}

impl SshConfig {
    /// Default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default command timeout.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
    /// Default number of channels in flight per connection.
    pub const DEFAULT_MAX_CHANNELS: usize = 6;
    /// Default bytes kept per output stream of one command: 64 MiB.
    pub const DEFAULT_MAX_OUTPUT: u64 = 64 * 1024 * 1024;

    /// A config for `user@address:22` with the defaults: ssh-agent auth, `~/.ssh/known_hosts`,
    /// strict host-key checking, 10 s connect timeout, 600 s command timeout, 6 channels, no
    /// become, 64 MiB of output per stream.
    pub fn new(address: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            port: 22,
            user: user.into(),
            key_file: None,
            identity_files: Vec::new(),
            identities_only: false,
            known_hosts: default_known_hosts(),
            more_known_hosts: Vec::new(),
            jumps: Vec::new(),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            command_timeout: Self::DEFAULT_COMMAND_TIMEOUT,
            max_channels: Self::DEFAULT_MAX_CHANNELS,
            become_user: None,
            become_method: crate::elevate::Method::Sudo,
            become_password: None,
            max_output: Self::DEFAULT_MAX_OUTPUT,
            keys: super::Keys::default(),
            transport: CommandTransport::Exec,
        }
    }

    /// How commands become another user, when they do.
    pub fn become_(&self) -> Option<crate::elevate::Become> {
        let user = self.become_user.clone()?;
        Some(crate::elevate::Become {
            method: self.become_method,
            user,
            password: self.become_password.clone(),
        })
    }

    /// `address:port`, with brackets around IPv6 addresses, for messages.
    pub fn endpoint(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// One jump host: the name it was given as (for messages) and how to reach it (its own
/// `jumps` are empty: a chain is flattened into [`SshConfig::jumps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub name: String,
    pub config: SshConfig,
    /// Where the `ProxyJump` naming it was written (`/home/u/.ssh/config:12`), if in a file.
    pub origin: Option<String>,
}

impl Jump {
    /// `via NAME (user@address:port)`, the prefix of this hop's errors.
    pub fn context(&self) -> String {
        format!("via {} ({}@{})", self.name, self.config.user, self.config.endpoint())
    }
}

/// `$HOME/.ssh/known_hosts`, or `.ssh/known_hosts` relative to the working directory when
/// `HOME` is unset.
pub fn default_known_hosts() -> PathBuf {
    std::env::home_dir().unwrap_or_default().join(".ssh").join("known_hosts")
}
