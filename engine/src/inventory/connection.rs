//! How to reach a host, from Ansible's connection variables.

use std::path::PathBuf;

use serde_json::Value;

use super::Vars;

/// Connection settings read from a host's variables.
///
/// Reads `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
/// `engine_known_hosts`, and, for inventories written for Ansible, `-o UserKnownHostsFile=`
/// inside `ansible_ssh_common_args`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub key_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// Run commands as this user through sudo (`ansible_become`, `ansible_become_user`).
    pub become_user: Option<String>,
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
        let port =
            match text("ansible_port")? {
                None => 22,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                    format!("host {name}: ansible_port {p:?} is not a port number (1-65535)")
                })?,
            };
        let known_hosts = match text("engine_known_hosts")? {
            Some(path) => Some(expand_home(&path)),
            None => text("ansible_ssh_common_args")?.as_deref().and_then(known_hosts_from_ssh_args),
        };
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
        if let Some(method) = text("ansible_become_method")?
            && method != "sudo"
        {
            return Err(format!(
                "host {name}: ansible_become_method {method:?} is not supported; only sudo is"
            ));
        }
        let become_user = become_on
            .then(|| text("ansible_become_user"))
            .transpose()?
            .map(|u| u.unwrap_or_else(|| "root".into()));
        Ok(Self {
            become_user,
            address: text("ansible_host")?.unwrap_or_else(|| name.to_owned()),
            port,
            user: text("ansible_user")?.unwrap_or_else(|| "root".to_owned()),
            key_file: text("ansible_ssh_private_key_file")?.map(|p| expand_home(&p)),
            known_hosts,
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

/// Finds `-o UserKnownHostsFile=PATH` (or `-oUserKnownHostsFile PATH`) in an ssh argument string.
fn known_hosts_from_ssh_args(args: &str) -> Option<PathBuf> {
    let words = shlex::split(args)?;
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        let option = if word == "-o" { iter.next().map(String::as_str) } else { word.strip_prefix("-o") };
        if let Some(option) = option {
            let (key, value) = option.split_once(['=', ' ']).unwrap_or((option, ""));
            if key.eq_ignore_ascii_case("UserKnownHostsFile") && !value.is_empty() {
                return Some(PathBuf::from(value.trim()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_hosts_from_ssh_args() {
        assert_eq!(
            known_hosts_from_ssh_args("-o UserKnownHostsFile=/a/k -o StrictHostKeyChecking=yes"),
            Some(PathBuf::from("/a/k"))
        );
        assert_eq!(known_hosts_from_ssh_args("-oUserKnownHostsFile='/b c'"), Some(PathBuf::from("/b c")));
        assert_eq!(known_hosts_from_ssh_args("-o ForwardAgent=yes"), None);
    }
}
