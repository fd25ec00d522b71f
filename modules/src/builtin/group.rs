//! `group`: a local group present (with a gid) or absent, through `groupadd`, `groupmod` and
//! `groupdel`. Also what `user` shares: the POSIX name rule ([`is_posix_name`]) and the
//! group database as `getent group` prints it ([`parse_groups`]), read as hostile input.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::validate::Validate;
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::run_checked;
use contract::shell::{join, quote};

/// A user or group name as Debian's shadow tools accept it by default (`NAME_REGEX`): a
/// lowercase letter or `_`, then lowercase letters, digits, `_` and `-`, an optional final
/// `$`, at most 32 characters. So nothing option-like (`-o`), no path, no `:`.
pub(crate) fn is_posix_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    (1..=32).contains(&name.len())
        && body.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && body.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

pub(crate) fn name_error(path: &str, name: &str) -> ArgsError {
    ArgsError::invalid(
        path,
        format!(
            "{name:?} is not a user or group name: a lowercase letter or _, then lowercase letters, digits, _ and - (at most 32)"
        ),
    )
}

/// One group of the group database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupEntry {
    pub(crate) name: String,
    pub(crate) gid: u32,
    pub(crate) members: Vec<String>,
}

/// `name:password:gid:member,member` lines; a line that is not one is skipped.
pub(crate) fn parse_groups(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, gid, members] = fields[..] else { return None };
            Some(GroupEntry {
                name: name.to_owned(),
                gid: gid.parse().ok()?,
                members: members.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// Reads the whole group database: `getent group`.
pub(crate) async fn groups(host: &dyn Host) -> Result<Vec<GroupEntry>, ModuleError> {
    let out = run_checked(host, Exec::new("getent group").effect(Effect::ReadOnly)).await?;
    Ok(parse_groups(&String::from_utf8_lossy(&out.stdout)))
}

/// Ensures a local group: present (with `gid` when given) or absent. Uses `groupadd`,
/// `groupmod` and `groupdel`; reads the group database with `getent group`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupArgs {
    /// The group's name: a lowercase letter or `_`, then lowercase letters, digits, `_` and `-`.
    pub name: String,
    /// Whether the group should exist.
    #[serde(default)]
    pub state: Presence,
    /// Its numeric id; changed with `groupmod` when the group has another.
    pub gid: Option<u32>,
    /// Create it as a system group (a gid from the system range); only used when creating it.
    #[serde(default)]
    pub system: bool,
}

/// Whether a user or group should exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// It exists, as described
    #[default]
    Present,
    /// It does not exist
    Absent,
}

contract::resolve_struct!(GroupArgs { name, state, gid, system });
contract::resolve_as_is!(Presence);

impl Validate for GroupArgs {
    fn validate(self) -> Result<Self, ArgsError> {
        if !is_posix_name(&self.name) {
            return Err(name_error("name", &self.name));
        }
        if self.state == Presence::Absent && (self.gid.is_some() || self.system) {
            let at = if self.gid.is_some() { "gid" } else { "system" };
            return Err(ArgsError::invalid(at, format!("{at} makes no sense with state: absent")));
        }
        if self.state == Presence::Absent && self.name == "root" {
            return Err(ArgsError::invalid("name", "the root group is never removed"));
        }
        Ok(self)
    }
}

/// The `group` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Group {
    args: GroupArgs,
}

impl Group {
    pub fn new(args: GroupArgs) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for Group {
    fn name(&self) -> &'static str {
        "group"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let all = groups(cx.host).await?;
        let current = all.iter().find(|g| g.name == args.name);
        let name = quote(&args.name);
        let (change, command) = match (args.state, current) {
            (Presence::Absent, None) => return Ok(Plan::unchanged()),
            (Presence::Absent, Some(_)) => {
                (format!("remove group {}", args.name), format!("groupdel -- {name}"))
            }
            (Presence::Present, None) => {
                let mut words = vec!["groupadd".to_owned()];
                if let Some(gid) = args.gid {
                    words.extend(["-g".to_owned(), gid.to_string()]);
                }
                if args.system {
                    words.push("-r".to_owned());
                }
                let gid = args.gid.map(|g| format!(" (gid {g})")).unwrap_or_default();
                (format!("create group {}{gid}", args.name), format!("{} -- {name}", join(&words)))
            }
            (Presence::Present, Some(group)) => match args.gid {
                Some(gid) if gid != group.gid => (
                    format!("gid of group {} {} -> {gid}", args.name, group.gid),
                    format!("groupmod -g {} -- {name}", quote(&gid.to_string())),
                ),
                _ => return Ok(Plan::unchanged()),
            },
        };
        Ok(Plan { changes: vec![change], action: Some(Box::new(Run { command })), ..Plan::default() })
    }
}

/// One planned command of the shadow tools.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) command: String,
}

#[async_trait]
impl Action for Run {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        run_checked(host, Exec::new(self.command)).await?;
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_names_refuse_anything_option_like() {
        for good in ["deploy", "_apt", "etcd-1", "www_data", "machine$"] {
            assert!(is_posix_name(good), "{good}");
        }
        for bad in ["-o", "Root", "1user", "a:b", "a b", "../x", "", "$", &"a".repeat(33), "a$b"] {
            assert!(!is_posix_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_group_database_is_read_as_hostile_input() {
        let text = "root:x:0:\nsudo:x:27:deploy,ci\nbroken line\nnogid:x:abc:\nextra:x:1:2:3\n";
        assert_eq!(
            parse_groups(text),
            [
                GroupEntry { name: "root".into(), gid: 0, members: vec![] },
                GroupEntry { name: "sudo".into(), gid: 27, members: vec!["deploy".into(), "ci".into()] },
            ]
        );
    }
}
