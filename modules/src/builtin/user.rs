//! `user`: a local user present (uid, primary group, groups, shell, home) or absent, through
//! `useradd`, `usermod` and `userdel`. Planning reads `getent passwd NAME` and the group
//! database, both as hostile input.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::builtin::group::{self, GroupEntry, Presence, Run, is_posix_name, name_error};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec};
use contract::module::{Context, Module, Plan};
use contract::shell::{join, quote};

/// Ensures a local user. Present: created with `useradd` (its home made unless
/// `create_home: false`), or brought to the given `uid`, `group` (primary), `shell` and `home`
/// with `usermod` (a changed home is not moved). `groups` are supplementary groups: with
/// `append: true` (the default) the user joins those it lacks and keeps the others; with
/// `append: false` it is in exactly those. Every group named must exist (see `group`).
/// Absent: removed with `userdel` (its home too with `remove: true`); root is never removed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "UserArgs", bound = "")]
pub struct UserArgs<S: Stage = Sealed> {
    /// The user's name: a lowercase letter or `_`, then lowercase letters, digits, `_` and `-`.
    pub name: String,
    /// Whether the user should exist.
    #[serde(default)]
    pub state: Presence,
    /// Its numeric id.
    pub uid: Option<u32>,
    /// Its primary group, by name. When creating without it, useradd makes a group named after the user.
    pub group: Option<String>,
    /// Supplementary groups, by name.
    pub groups: Option<Vec<String>>,
    /// With `groups`: join the missing ones and keep the others (true), or be in exactly these (false). Default true.
    #[serde(default = "yes")]
    pub append: bool,
    /// Its login shell, e.g. "/bin/bash".
    pub shell: Option<S::Of<AbsolutePath>>,
    /// Its home directory.
    pub home: Option<S::Of<AbsolutePath>>,
    /// Create it as a system user (a uid from the system range); only used when creating it.
    #[serde(default)]
    pub system: bool,
    /// Make the home directory when creating the user. Default true.
    #[serde(default = "yes")]
    pub create_home: bool,
    /// With `state: absent`: remove the home directory and mail spool too.
    #[serde(default)]
    pub remove: bool,
}

fn yes() -> bool {
    true
}

contract::resolve_struct!(UserArgs<S> {
    name, state, uid, group, groups, append, shell, home, system, create_home, remove
});

impl<S: Stage> Validate for UserArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if !is_posix_name(&self.name) {
            return Err(name_error("name", &self.name));
        }
        if let Some(group) = &self.group
            && !is_posix_name(group)
        {
            return Err(name_error("group", group));
        }
        for (i, group) in self.groups.iter().flatten().enumerate() {
            if !is_posix_name(group) {
                return Err(name_error(&format!("groups[{i}]"), group));
            }
        }
        match self.state {
            Presence::Absent => {
                let given = [
                    ("uid", self.uid.is_some()),
                    ("group", self.group.is_some()),
                    ("groups", self.groups.is_some()),
                    ("shell", self.shell.is_some()),
                    ("home", self.home.is_some()),
                    ("system", self.system),
                ];
                if let Some((at, _)) = given.iter().find(|(_, set)| *set) {
                    return Err(ArgsError::invalid(*at, format!("{at} makes no sense with state: absent")));
                }
                if self.name == "root" {
                    return Err(ArgsError::invalid("name", "root is never removed"));
                }
            }
            Presence::Present if self.remove => {
                return Err(ArgsError::invalid("remove", "remove only applies with state: absent"));
            }
            Presence::Present => {}
        }
        Ok(self)
    }
}

/// One user of the passwd database.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    uid: u32,
    gid: u32,
    home: String,
    shell: String,
}

/// The line of `getent passwd NAME` for `name` (seven `:`-separated fields), if any.
fn parse_passwd(text: &str, name: &str) -> Option<PasswdEntry> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let [n, _, uid, gid, _gecos, home, shell] = fields[..] else { return None };
        (n == name).then_some(())?;
        Some(PasswdEntry {
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            home: home.to_owned(),
            shell: shell.to_owned(),
        })
    })
}

impl UserArgs<Resolved> {
    /// The `useradd` words for a new user (without the name).
    fn useradd(&self) -> Vec<String> {
        let mut words = vec!["useradd".to_owned()];
        let mut flag = |f: &str, v: String| words.extend([f.to_owned(), v]);
        if let Some(uid) = self.uid {
            flag("-u", uid.to_string());
        }
        if let Some(group) = &self.group {
            flag("-g", group.clone());
        }
        if let Some(groups) = self.groups.as_ref().filter(|g| !g.is_empty()) {
            flag("-G", groups.join(","));
        }
        if let Some(shell) = &self.shell {
            flag("-s", shell.to_string());
        }
        if let Some(home) = &self.home {
            flag("-d", home.to_string());
        }
        words.push(if self.create_home { "-m" } else { "-M" }.to_owned());
        if self.system {
            words.push("-r".to_owned());
        }
        words
    }

    /// What differs for an existing user: the change lines and the `usermod` words.
    fn usermod(&self, user: &PasswdEntry, groups: &[GroupEntry]) -> (Vec<String>, Vec<String>) {
        let mut changes = Vec::new();
        let mut words = vec!["usermod".to_owned()];
        if let Some(uid) = self.uid.filter(|u| *u != user.uid) {
            changes.push(format!("uid {} -> {uid}", user.uid));
            words.extend(["-u".to_owned(), uid.to_string()]);
        }
        if let Some(group) = &self.group {
            let current = groups
                .iter()
                .find(|g| g.gid == user.gid)
                .map_or_else(|| user.gid.to_string(), |g| g.name.clone());
            if &current != group {
                changes.push(format!("primary group {current} -> {group}"));
                words.extend(["-g".to_owned(), group.clone()]);
            }
        }
        if let Some(shell) = self.shell.as_ref().filter(|s| s.as_str() != user.shell) {
            changes.push(format!("shell {} -> {shell}", user.shell));
            words.extend(["-s".to_owned(), shell.to_string()]);
        }
        if let Some(home) = self.home.as_ref().filter(|h| h.as_str() != user.home) {
            changes.push(format!("home {} -> {home}", user.home));
            words.extend(["-d".to_owned(), home.to_string()]);
        }
        if let Some(wanted) = &self.groups {
            let mut member: Vec<&str> =
                groups.iter().filter(|g| g.members.contains(&self.name)).map(|g| g.name.as_str()).collect();
            member.sort_unstable();
            let missing: Vec<&str> =
                wanted.iter().map(String::as_str).filter(|g| !member.contains(g)).collect();
            if self.append {
                if !missing.is_empty() {
                    changes.push(format!("join groups {}", missing.join(",")));
                    words.extend(["-a".to_owned(), "-G".to_owned(), missing.join(",")]);
                }
            } else {
                let extra: Vec<&str> =
                    member.iter().copied().filter(|g| !wanted.iter().any(|w| w == g)).collect();
                if !missing.is_empty() || !extra.is_empty() {
                    changes.push(format!("groups {} -> {}", member.join(","), wanted.join(",")));
                    words.extend(["-G".to_owned(), wanted.join(",")]);
                }
            }
        }
        (changes, words)
    }
}

/// The `user` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct User {
    args: UserArgs<Resolved>,
}

impl User {
    pub fn new(args: UserArgs<Resolved>) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for User {
    fn name(&self) -> &'static str {
        "user"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let name = quote(&args.name);
        // `getent passwd` exits 2 for an unknown user: no line is the answer.
        let out =
            cx.host.exec(Exec::new(format!("getent passwd -- {name}")).effect(Effect::ReadOnly)).await?;
        let user = parse_passwd(&String::from_utf8_lossy(&out.stdout), &args.name);
        let groups = group::groups(cx.host).await?;
        if args.state == Presence::Present && !cx.options.pending_changes {
            let named = args.group.iter().chain(args.groups.iter().flatten());
            if let Some(missing) = named.into_iter().find(|n| !groups.iter().any(|g| &g.name == *n)) {
                return Err(ModuleError::Refused(format!(
                    "group {missing} does not exist on {} (create it with the group module first)",
                    cx.host.name()
                )));
            }
        }
        let (changes, words) = match (args.state, &user) {
            (Presence::Absent, None) => return Ok(Plan::unchanged()),
            (Presence::Absent, Some(_)) => {
                let mut words = vec!["userdel".to_owned()];
                if args.remove {
                    words.push("-r".to_owned());
                }
                (vec![format!("remove user {}", args.name)], words)
            }
            (Presence::Present, None) => (vec![format!("create user {}", args.name)], args.useradd()),
            (Presence::Present, Some(user)) => {
                let (changes, words) = args.usermod(user, &groups);
                if changes.is_empty() {
                    return Ok(Plan::unchanged());
                }
                (changes, words)
            }
        };
        let command = format!("{} -- {name}", join(&words));
        Ok(Plan { changes, action: Some(Box::new(Run { command })), ..Plan::default() })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::builtin::group::parse_groups;
    use crate::validate::resolved;

    fn args(value: serde_json::Value) -> UserArgs<Resolved> {
        resolved::<UserArgs>(value).unwrap()
    }

    #[test]
    fn passwd_lines_are_read_as_hostile_input() {
        let text = "junk\nci:x:abc:1::/home/ci:/bin/sh\nci:x:1001:1001:CI,,,:/home/ci:/bin/bash\n";
        assert_eq!(
            parse_passwd(text, "ci"),
            Some(PasswdEntry { uid: 1001, gid: 1001, home: "/home/ci".into(), shell: "/bin/bash".into() })
        );
        assert_eq!(parse_passwd(text, "other"), None);
        assert_eq!(parse_passwd("ci:x:1:1:/home/ci:/bin/sh\n", "ci"), None, "six fields");
    }

    #[test]
    fn a_new_user_gets_every_option_quoted_after_the_tool() {
        let a = args(
            json!({ "name": "ci", "uid": 1500, "groups": ["sudo", "adm"], "shell": "/bin/bash", "system": true }),
        );
        assert_eq!(join(a.useradd()), "'useradd' '-u' '1500' '-G' 'sudo,adm' '-s' '/bin/bash' '-m' '-r'");
    }

    #[test]
    fn an_existing_user_changes_only_what_differs() {
        let groups = parse_groups("ci:x:1001:\nsudo:x:27:ci\nadm:x:4:\ndocker:x:999:ci\n");
        let user = PasswdEntry { uid: 1001, gid: 1001, home: "/home/ci".into(), shell: "/bin/sh".into() };
        let a = args(json!({ "name": "ci", "groups": ["sudo", "adm"], "shell": "/bin/bash" }));
        let (changes, words) = a.usermod(&user, &groups);
        assert_eq!(changes, ["shell /bin/sh -> /bin/bash", "join groups adm"]);
        assert_eq!(join(words), "'usermod' '-s' '/bin/bash' '-a' '-G' 'adm'");
        let exact = args(json!({ "name": "ci", "groups": ["sudo"], "append": false }));
        assert_eq!(exact.usermod(&user, &groups).0, ["groups docker,sudo -> sudo"]);
        let same =
            args(json!({ "name": "ci", "uid": 1001, "group": "ci", "groups": ["sudo"], "shell": "/bin/sh" }));
        assert!(same.usermod(&user, &groups).0.is_empty());
    }

    #[test]
    fn option_like_and_contradictory_arguments_are_refused() {
        let error = |v: serde_json::Value| resolved::<UserArgs>(v).unwrap_err().to_string();
        assert!(error(json!({ "name": "-o" })).starts_with("\"-o\" is not a user or group name"));
        assert!(
            error(json!({ "name": "ci", "groups": ["sudo", "--help"] })).starts_with("\"--help\" is not")
        );
        assert_eq!(error(json!({ "name": "root", "state": "absent" })), "root is never removed");
        assert_eq!(
            error(json!({ "name": "ci", "state": "absent", "uid": 5 })),
            "uid makes no sense with state: absent"
        );
    }
}
