//! How to reach a host, from Ansible's connection variables, and which `ansible_*` variables
//! engine reads at all ([`READ_KEYS`]; any other is reported by [`UnusedKey`]).

use std::path::PathBuf;

use serde_json::Value;

use crate::ssh::SshArgs;

use super::Vars;

/// Every `ansible_*` variable engine reads, honoured or refused with a reason (docs/inventory.md
/// lists them): the connection's and become's, and the become password under each of its names.
/// Any other `ansible_*` variable is reported once per load as an [`UnusedKey`].
pub const READ_KEYS: [&str; 19] = concat(CONNECTION_KEYS, PASSWORD_KEYS);

/// The variables of the connection and of become, except the password.
const CONNECTION_KEYS: [&str; 13] = [
    "ansible_connection",
    "ansible_host",
    "ansible_ssh_host",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_ssh_private_key_file",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "ansible_become",
    "ansible_become_user",
    "ansible_become_method",
];

/// The become password's names, under every name Ansible's sudo and su plugins read; first
/// found wins (Ansible's order: the generic names, then the method's own).
const PASSWORD_KEYS: [&str; 6] = [
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
    "ansible_sudo_password",
    "ansible_su_pass",
    "ansible_su_password",
];

/// `a` then `b`; `N` must be their lengths' sum (checked when the constant is evaluated).
const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "N is the sum of the lengths");
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// An `ansible_*` variable engine does not read, set on `hosts` hosts: a warning, given once per
/// name per load (`inventory: KEY is not used by engine (set on N hosts)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedKey {
    pub key: String,
    pub hosts: usize,
}

impl std::fmt::Display for UnusedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.hosts == 1 { "" } else { "s" };
        write!(f, "inventory: {} is not used by engine (set on {} host{plural})", self.key, self.hosts)
    }
}

/// How engine reaches a host (`ansible_connection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// engine's own SSH client (`ssh`, the default; Ansible's `smart` and `paramiko` are SSH too).
    Ssh,
    /// The controller itself: commands run through the local `sh` (`local`).
    Local,
}

impl Transport {
    /// The host's `ansible_connection`; a value engine cannot honour is refused with the host.
    pub(super) fn from_vars(name: &str, vars: &Vars) -> Result<Self, String> {
        match vars.get("ansible_connection") {
            None | Some(Value::Null) => Ok(Self::Ssh),
            Some(Value::String(s)) if matches!(s.as_str(), "ssh" | "smart" | "paramiko") => Ok(Self::Ssh),
            Some(Value::String(s)) if s == "local" => Ok(Self::Local),
            Some(other) => Err(format!(
                "host {name}: ansible_connection {other} is not supported; engine connects with \"ssh\" \
                 (also \"smart\" or \"paramiko\") or \"local\""
            )),
        }
    }
}

/// Connection settings read from a host's variables.
///
/// Reads `ansible_connection`, `ansible_host`, `ansible_port`, `ansible_user` (or their legacy
/// `ansible_ssh_*` names; the new name wins when both are set, as in ansible-core),
/// `ansible_ssh_private_key_file`, `engine_known_hosts`, and the ssh options in
/// `ansible_ssh_common_args` then `ansible_ssh_extra_args` (`-o KEY=VALUE`, `-J`, `-i`, `-p`,
/// `-l`, `-F`). Port and user stay `None` when unset, so the ssh_config file can give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub transport: Transport,
    /// The destination given to ssh: `ansible_host`, else the inventory name. ssh_config
    /// `Host` patterns match this name.
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub key_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// The ssh options of `ansible_ssh_common_args`, then those of `ansible_ssh_extra_args`.
    pub ssh_args: SshArgs,
    /// Run commands as this user (`ansible_become`, `ansible_become_user`).
    pub become_user: Option<String>,
    /// How (`ansible_become_method`: sudo, su or doas).
    pub become_method: crate::elevate::Method,
    /// The password the method asks for (`ansible_become_password` and its other names); `-K`
    /// gives one for the hosts that have none.
    pub become_password: Option<crate::elevate::Password>,
}

impl Connection {
    pub(super) fn from_vars(name: &str, vars: &Vars) -> Result<Self, String> {
        let text = |key: &str| -> Result<Option<String>, String> {
            match vars.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(other) => Err(format!("host {name}: {key} must be a string, found {other}")),
            }
        };
        // The new name first, then the legacy one (ansible-core takes the first one set).
        let either = |new: &str, legacy: &str| -> Result<Option<(String, String)>, String> {
            Ok(match text(new)? {
                Some(v) => Some((new.to_owned(), v)),
                None => text(legacy)?.map(|v| (legacy.to_owned(), v)),
            })
        };
        let transport = Transport::from_vars(name, vars)?;
        let port = match either("ansible_port", "ansible_ssh_port")? {
            None => None,
            Some((key, p)) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("host {name}: {key} {p:?} is not a port number (1-65535)"))?,
            ),
        };
        let known_hosts = text("engine_known_hosts")?.map(|path| expand_home(&path));
        let mut ssh_args = SshArgs::default();
        for key in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
            if let Some(args) = text(key)? {
                let parsed = SshArgs::parse(&args).map_err(|e| format!("host {name}: {key}: {e}"))?;
                ssh_args.settings.extend(parsed.settings);
                ssh_args.config_file = ssh_args.config_file.or(parsed.config_file);
            }
        }
        let become_on = match vars.get("ansible_become") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(Value::String(s)) if matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "1") => true,
            Some(Value::String(s)) if matches!(s.to_ascii_lowercase().as_str(), "no" | "false" | "0") => {
                false
            }
            Some(other) => {
                return Err(format!("host {name}: ansible_become must be true or false, found {other}"));
            }
        };
        use crate::elevate::{Method, Password};
        let become_method = match text("ansible_become_method")? {
            None => Method::Sudo,
            Some(method) => Method::from_name(&method).ok_or_else(|| {
                format!(
                    "host {name}: ansible_become_method {method:?} is not supported; engine becomes \
                     with {}{}",
                    Method::NAMES.join(", "),
                    contract::suggest::did_you_mean(&method, Method::NAMES.iter().copied())
                )
            })?,
        };
        let mut become_password = None;
        for key in PASSWORD_KEYS {
            if let Some(value) = text(key)? {
                let password = Password::new(value)
                    .map_err(|why| format!("host {name}: {key} cannot be used: {why}"))?;
                become_password = Some(password);
                break;
            }
        }
        if become_password.is_some() && become_method == Method::Doas {
            return Err(format!(
                "host {name}: ansible_become_method doas takes no password: doas reads it only from a \
                 terminal, which engine does not open; give the login user a `permit nopass` rule in \
                 /etc/doas.conf and drop the become password"
            ));
        }
        let become_user = become_on
            .then(|| text("ansible_become_user"))
            .transpose()?
            .map(|u| u.unwrap_or_else(|| "root".into()));
        if transport == Transport::Local && become_user.is_some() && become_method != Method::Sudo {
            return Err(format!(
                "host {name}: ansible_become_method {become_method} with ansible_connection \"local\" is \
                 not supported; on the controller engine becomes with sudo only"
            ));
        }
        Ok(Self {
            transport,
            become_user,
            become_method,
            become_password,
            address: either("ansible_host", "ansible_ssh_host")?.map_or_else(|| name.to_owned(), |(_, v)| v),
            port,
            user: either("ansible_user", "ansible_ssh_user")?.map(|(_, v)| v),
            key_file: text("ansible_ssh_private_key_file")?.map(|p| expand_home(&p)),
            known_hosts,
            ssh_args,
        })
    }
}

/// `~/x` as `$HOME/x`, as Ansible and ssh read key paths.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::{JumpSpec, Setting};

    #[test]
    fn reads_ssh_options_from_ssh_args() {
        let args = SshArgs::parse(
            "-o UserKnownHostsFile=/a/k -oStrictHostKeyChecking=yes -C -o ForwardAgent=yes -J u@b:2 -p 2200",
        )
        .unwrap();
        assert_eq!(
            args.settings,
            [
                Setting::UserKnownHostsFile(vec!["/a/k".into()]),
                Setting::StrictHostKeyChecking(crate::ssh::HostKeyPolicy::Strict),
                Setting::ProxyJump(vec![JumpSpec {
                    user: Some("u".into()),
                    host: "b".into(),
                    port: Some(2),
                    given: vec![],
                    origin: None
                }]),
                Setting::Port(2200),
            ]
        );
        let quoted = SshArgs::parse("-o ProxyCommand=\"ssh -W %h:%p -q ops@bastion\" -F /etc/cfg").unwrap();
        assert!(matches!(&quoted.settings[..], [Setting::ProxyCommand(Some(hop))] if hop.host == "bastion"));
        assert_eq!(quoted.config_file.as_deref(), Some("/etc/cfg"));
        assert!(SshArgs::parse("-o Port=x").unwrap_err().contains("-o Port=x"));
        let refused = SshArgs::parse("-o 'ProxyCommand=nc %h %p'").unwrap();
        assert!(matches!(&refused.settings[..], [Setting::RefusedProxyCommand(_)]));
    }
}
