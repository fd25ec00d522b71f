//! Turning inventory hosts into targets for a run: SSH, or the controller itself for a host
//! with `ansible_connection: local`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::{Host, HostError};

use crate::elevate::{Become, Password};
use crate::error::Error;
use crate::inventory::{Connection, InventoryError, Transport};
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::ssh::{
    CommandTransport, HostKeyPolicy, Jump, JumpPool, JumpSpec, Keys, Resolved, Setting, SshConfig,
    SshConfigFile, SshHost, SshOptions, default_known_hosts,
};
use contract::Target;
use contract::local::LocalHost;

/// Connection settings that come from the command line rather than the inventory.
#[derive(Debug, Clone)]
pub struct SshDefaults {
    /// `--host-key-checking`: beats the inventory and ssh_config. `None`: theirs, else strict.
    pub host_key_policy: Option<HostKeyPolicy>,
    /// Used when the inventory names no known_hosts file for a host (beats ssh_config).
    pub known_hosts: Option<PathBuf>,
    /// `--connect-timeout`: beats ssh_config's `ConnectTimeout`. `None`: that, else 10 s.
    pub connect_timeout: Option<Duration>,
    pub command_timeout: Duration,
    pub max_channels: usize,
    /// Bytes kept per output stream of one command (`--max-output`); more fails the command.
    pub max_output: u64,
    /// The ssh_config file (`-F FILE`, which must exist). `None`: `~/.ssh/config` when it exists.
    pub ssh_config: Option<PathBuf>,
    /// The become password asked for with `-K`, for the become hosts whose inventory gives none.
    pub become_password: Option<Password>,
    /// Unlocks passphrase-protected key files the ssh-agent does not hold, once for every host
    /// (the binary asks on the terminal). Default: no asking, such keys fail with the fix.
    pub keys: Keys,
    /// `--transport`: how commands reach the hosts.
    pub transport: CommandTransport,
}

impl Default for SshDefaults {
    fn default() -> Self {
        Self {
            host_key_policy: None,
            known_hosts: None,
            connect_timeout: None,
            command_timeout: SshConfig::DEFAULT_COMMAND_TIMEOUT,
            max_channels: SshConfig::DEFAULT_MAX_CHANNELS,
            max_output: SshConfig::DEFAULT_MAX_OUTPUT,
            ssh_config: None,
            become_password: None,
            keys: Keys::default(),
            transport: CommandTransport::Exec,
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
/// Nothing connects yet. Every SSH target shares one [`JumpPool`], so hosts behind the same
/// jump host share one connection to it. Every become password in use is added to `redactor`.
pub fn ssh_targets(
    plan: &Plan,
    defaults: &SshDefaults,
    redactor: &Redactor,
) -> Result<HashMap<String, Arc<dyn Target>>, Error> {
    if let Some(password) = &defaults.become_password {
        redactor.add(password.expose());
    }
    let mut targets: HashMap<String, Arc<dyn Target>> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    let used = plan.hosts();
    let mut files = ConfigFiles::default();
    let jumps = Arc::new(JumpPool::default());
    // Every inventory host gets a target, not only those with tasks: modules such as `scp`
    // read from other hosts. Targets connect lazily, so unused ones cost nothing.
    for host in plan.inventory().hosts() {
        let name = host.name.clone();
        let target = host.connection().and_then(|mut c| {
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
                Transport::Ssh => {
                    let config =
                        ssh_config(&c, defaults, &mut files).map_err(|e| format!("host {name}: {e}"))?;
                    Arc::new(SshHost::with_jumps(name.clone(), config, Arc::clone(&jumps)))
                }
            };
            Ok(target)
        });
        match target {
            Ok(target) => {
                targets.insert(name, target);
            }
            Err(e) if used.contains(&name) => {
                if !problems.contains(&e) {
                    problems.push(e);
                }
            }
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

/// The SSH settings of one host exactly as a run resolves them (command line, inventory, its
/// ssh arguments, ssh_config); `engine ping` checks the same settings a run uses.
pub fn ssh_config_of(c: &Connection, defaults: &SshDefaults) -> Result<SshConfig, String> {
    ssh_config(c, defaults, &mut ConfigFiles::default())
}

/// ssh_config files read so far, by path.
#[derive(Default)]
struct ConfigFiles(HashMap<PathBuf, Arc<SshConfigFile>>);

impl ConfigFiles {
    fn get(&mut self, path: &Path, required: bool) -> Result<Arc<SshConfigFile>, String> {
        if let Some(file) = self.0.get(path) {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(SshConfigFile::load(path, required).map_err(|e| e.to_string())?);
        for keyword in file.unused_keywords() {
            tracing::debug!(path = %path.display(), keyword, "ssh_config keyword not used by engine");
        }
        self.0.insert(path.to_owned(), Arc::clone(&file));
        Ok(file)
    }
}

/// Jump chains longer than this are refused (a `ProxyJump` loop in ssh_config ends here).
const MAX_HOPS: usize = 8;

/// How to reach the host of `c`: the command line (`defaults` that were given), the
/// inventory, its ssh arguments, then the ssh_config file, first value winning (OpenSSH's rule;
/// Ansible passes the inventory's values as `-o` options, which ssh reads before the file).
fn ssh_config(c: &Connection, defaults: &SshDefaults, files: &mut ConfigFiles) -> Result<SshConfig, String> {
    let home = std::env::home_dir().unwrap_or_default();
    let file = match (&c.ssh_args.config_file, &defaults.ssh_config) {
        (Some(path), _) => files.get(&crate::ssh::expand_tilde(path, &home), true)?,
        (None, Some(path)) => files.get(path, true)?,
        (None, None) => files.get(&home.join(".ssh").join("config"), false)?,
    };
    let mut given = SshOptions::default();
    if let Some(policy) = defaults.host_key_policy {
        given.apply_all(&[Setting::StrictHostKeyChecking(policy)]);
    }
    if let Some(timeout) = defaults.connect_timeout {
        given.apply_all(&[Setting::ConnectTimeout(timeout)]);
    }
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let inventory = [
        c.user.clone().map(Setting::User),
        c.port.map(Setting::Port),
        c.key_file.as_deref().map(|p| Setting::IdentityFile(text(p))),
        c.known_hosts.as_deref().map(|p| Setting::UserKnownHostsFile(vec![text(p)])),
    ];
    given.apply_all(&inventory.into_iter().flatten().collect::<Vec<_>>());
    given.apply_all(&c.ssh_args.settings);
    if let Some(path) = &defaults.known_hosts {
        given.apply_all(&[Setting::UserKnownHostsFile(vec![text(path)])]);
    }
    let resolved = file.resolve(&c.address, &given).finish(&c.address, "root", &home)?;
    let mut config = config_from(&resolved, defaults, None);
    // Become is the transport's: it runs the kill of a command that must stop as the same
    // user as the command, and answers the method's password prompt.
    config.become_user = c.become_user.clone();
    config.become_method = c.become_method;
    config.become_password = c.become_password.clone();
    config.jumps = chain(&resolved.jumps, &file, defaults, &config.known_hosts, &home, 0)?;
    Ok(config)
}

/// The hops of `specs`, each resolved as ssh resolves a `-J` hop: its own ssh_config entry
/// (`Host bastion`), with the user and port written in the hop winning. The first hop's own
/// `ProxyJump` is followed too (the others' are not: ssh passes them `-J`).
fn chain(
    specs: &[JumpSpec],
    file: &SshConfigFile,
    defaults: &SshDefaults,
    target_known_hosts: &Path,
    home: &Path,
    depth: usize,
) -> Result<Vec<Jump>, String> {
    let mut hops = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        if depth + hops.len() >= MAX_HOPS {
            return Err(format!("more than {MAX_HOPS} jump hosts (a ProxyJump loop?) at {spec}"));
        }
        let mut given = SshOptions::default();
        if let Some(policy) = defaults.host_key_policy {
            given.apply_all(&[Setting::StrictHostKeyChecking(policy)]);
        }
        if let Some(timeout) = defaults.connect_timeout {
            given.apply_all(&[Setting::ConnectTimeout(timeout)]);
        }
        given.apply_all(
            &[spec.user.clone().map(Setting::User), spec.port.map(Setting::Port)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        );
        given.apply_all(&spec.given);
        if index > 0 {
            given.apply_all(&[Setting::ProxyJump(Vec::new())]);
        }
        let resolved = file
            .resolve(&spec.host, &given)
            .finish(&spec.host, "root", home)
            .map_err(|e| format!("jump host {spec}: {e}"))?;
        if index == 0 && !resolved.jumps.is_empty() {
            hops.extend(chain(&resolved.jumps, file, defaults, target_known_hosts, home, depth + 1)?);
        }
        hops.push(Jump {
            name: spec.host.clone(),
            origin: spec.origin.clone(),
            config: config_from(&resolved, defaults, Some(target_known_hosts)),
        });
    }
    Ok(hops)
}

/// An [`SshConfig`] from resolved options. Unset known_hosts: a hop's fall back to its
/// target's file (`fallback`), a target's to `~/.ssh/known_hosts`.
fn config_from(resolved: &Resolved, defaults: &SshDefaults, fallback: Option<&Path>) -> SshConfig {
    let mut config = SshConfig::new(resolved.address.clone(), resolved.user.clone());
    config.port = resolved.port;
    config.identity_files = resolved.identity_files.clone();
    config.identities_only = resolved.identities_only;
    let mut known = resolved.user_known_hosts.clone().unwrap_or_default().into_iter();
    config.known_hosts =
        known.next().or_else(|| fallback.map(Path::to_path_buf)).unwrap_or_else(default_known_hosts);
    config.more_known_hosts = known.chain(resolved.global_known_hosts.clone().unwrap_or_default()).collect();
    config.host_key_policy = resolved.host_key_policy.unwrap_or_default();
    config.connect_timeout = resolved.connect_timeout.unwrap_or(SshConfig::DEFAULT_CONNECT_TIMEOUT);
    config.command_timeout = defaults.command_timeout;
    config.max_channels = defaults.max_channels;
    config.max_output = defaults.max_output;
    config.keys = defaults.keys.clone();
    config.transport = defaults.transport;
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::SshArgs;

    fn connection(address: &str) -> Connection {
        Connection {
            transport: Transport::Ssh,
            address: address.to_owned(),
            port: None,
            user: None,
            key_file: None,
            known_hosts: None,
            ssh_args: SshArgs::default(),
            become_user: None,
            become_method: crate::elevate::Method::default(),
            become_password: None,
        }
    }

    /// `text` as the `-F` file, and the config for `c`.
    fn resolve(text: &str, c: &Connection, defaults: SshDefaults) -> Result<SshConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        let defaults = SshDefaults { ssh_config: Some(path), ..defaults };
        ssh_config(c, &defaults, &mut ConfigFiles::default())
    }

    const LAB: &str = "Host bastion\n  HostName 10.77.0.2\n  User jump\n  IdentityFile /k/bastion\n  \
                       UserKnownHostsFile /kh/bastion\nHost 10.77.1.*\n  User deploy\n  Port 2222\n  \
                       ProxyJump bastion\n  IdentitiesOnly yes\n  ConnectTimeout 7\n";

    #[test]
    fn the_inventory_beats_ssh_config_which_beats_the_defaults() {
        let mut c = connection("10.77.1.21");
        c.user = Some("root".into());
        c.known_hosts = Some("/kh/lab".into());
        let config = resolve(LAB, &c, SshDefaults::default()).unwrap();
        assert_eq!((config.user.as_str(), config.port), ("root", 2222));
        assert!(config.identities_only);
        assert_eq!(config.connect_timeout, Duration::from_secs(7));
        assert_eq!(config.known_hosts, PathBuf::from("/kh/lab"));
        let [hop] = config.jumps.as_slice() else { panic!("one hop: {:?}", config.jumps) };
        assert_eq!(hop.context(), "via bastion (jump@10.77.0.2:22)");
        assert_eq!(hop.config.identity_files, [PathBuf::from("/k/bastion")]);
        assert_eq!(hop.config.known_hosts, PathBuf::from("/kh/bastion"));
        let other = resolve(LAB, &connection("elsewhere"), SshDefaults::default()).unwrap();
        assert!(other.jumps.is_empty());
        assert_eq!((other.user.as_str(), other.port), ("root", 22));
    }

    #[test]
    fn ssh_args_beat_ssh_config_and_the_command_line_beats_both_for_host_keys() {
        let mut c = connection("10.77.1.21");
        c.ssh_args = SshArgs::parse(
            "-o ProxyJump=ops@10.77.0.2:2200 -o StrictHostKeyChecking=yes -o 'UserKnownHostsFile /kh/x'",
        )
        .unwrap();
        let defaults =
            SshDefaults { host_key_policy: Some(HostKeyPolicy::AcceptNew), ..SshDefaults::default() };
        let config = resolve(LAB, &c, defaults).unwrap();
        assert_eq!(config.host_key_policy, HostKeyPolicy::AcceptNew);
        let [hop] = config.jumps.as_slice() else { panic!("one hop") };
        assert_eq!(hop.context(), "via 10.77.0.2 (ops@10.77.0.2:2200)");
        assert_eq!(
            hop.config.known_hosts,
            PathBuf::from("/kh/x"),
            "a hop without its own uses the target's file"
        );
        assert_eq!(hop.config.host_key_policy, HostKeyPolicy::AcceptNew);
    }

    #[test]
    fn proxy_command_ssh_w_is_a_jump_and_others_are_refused_naming_the_line() {
        let mut c = connection("db");
        c.ssh_args =
            SshArgs::parse("-o ProxyCommand=\"ssh -W %h:%p -q -i /k/j -o UserKnownHostsFile=/kh/j root@gw\"")
                .unwrap();
        let config = resolve("", &c, SshDefaults::default()).unwrap();
        let [hop] = config.jumps.as_slice() else { panic!("one hop") };
        assert_eq!(hop.context(), "via gw (root@gw:22)");
        assert_eq!(
            (hop.config.identity_files.as_slice(), hop.config.known_hosts.as_path()),
            ([PathBuf::from("/k/j")].as_slice(), Path::new("/kh/j"))
        );
        let err = resolve("Host db\n  ProxyCommand nc %h %p\n", &connection("db"), SshDefaults::default())
            .unwrap_err();
        assert!(err.contains("config:2: ProxyCommand `nc %h %p` is not supported"), "{err}");
    }

    #[test]
    fn the_first_hops_own_proxy_jump_is_followed_and_loops_end() {
        let text = "Host a\n  ProxyJump b\nHost b\n  ProxyJump outer\nHost t\n  ProxyJump a,c\n";
        let config = resolve(text, &connection("t"), SshDefaults::default()).unwrap();
        let names: Vec<&str> = config.jumps.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["outer", "b", "a", "c"]);
        let looping = "Host a\n  ProxyJump a\n";
        let err = resolve(looping, &connection("x"), SshDefaults::default());
        assert!(err.is_ok(), "x has no jump");
        let err = resolve("Host *\n  ProxyJump a\n", &connection("x"), SshDefaults::default()).unwrap_err();
        assert!(err.contains("more than 8 jump hosts"), "{err}");
    }

    #[test]
    fn a_missing_dash_f_file_is_an_error_and_a_bad_line_names_it() {
        let defaults = SshDefaults { ssh_config: Some("/nonexistent/cfg".into()), ..SshDefaults::default() };
        let err = ssh_config(&connection("h"), &defaults, &mut ConfigFiles::default()).unwrap_err();
        assert!(err.starts_with("/nonexistent/cfg: cannot read"), "{err}");
        let err = resolve("Host h\n  Prot 22\n", &connection("h"), SshDefaults::default()).unwrap_err();
        assert!(err.contains("config:2: unknown keyword `Prot`"), "{err}");
    }
}
