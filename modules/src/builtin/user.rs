//! `user`: a local user present (uid, primary group, groups, shell, home, password hash) or
//! absent, through `useradd`, `usermod`, `chpasswd -e` and `userdel`. Planning reads
//! `getent passwd NAME`, the group database and (for a password) `getent shadow NAME`, all as
//! hostile input. The password hash travels on `chpasswd`'s stdin, never on a command line,
//! and no change line, diff or `Debug` shows it; the engine's redactor hides the `password`
//! argument's value everywhere else (it is secret by its name).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::builtin::group::{self, GroupEntry, Presence, is_posix_name, name_error};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::run_checked;
use contract::shell::{join, quote};

/// Ensures a local user. Present: created with `useradd` (its home made unless
/// `create_home: false`), or brought to the given `uid`, `group` (primary), `shell` and `home`
/// with `usermod` (a changed home is not moved). `groups` are supplementary groups: with
/// `append: true` (the default) the user joins those it lacks and keeps the others; with
/// `append: false` it is in exactly those. Every group named must exist (see `group`).
/// `password` is the crypt(3) hash of the password (as Ansible's `password`: `$y$...`,
/// `$6$...`; make one with `mkpasswd -m yescrypt` or `openssl passwd -6`), or `!` / `*` for
/// no password login. Anything else is refused when the playbook is sealed, so a plaintext
/// password is never set by mistake. It is set with `chpasswd -e` (the hash on its stdin) when
/// the user is created, and afterwards when the shadow entry holds another hash
/// (`update_password: always`, the default) or never (`on_create`).
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
    /// The password as a crypt(3) hash (`$y$...`, `$6$...`), or `!` or `*` for none. Secret:
    /// never shown. A plaintext password is refused.
    #[schemars(with = "Option<String>")]
    pub password: Option<CryptHash>,
    /// When `password` is set: `always` (the default: whenever the shadow entry differs) or
    /// `on_create` (only for a new user).
    #[serde(default)]
    pub update_password: UpdatePassword,
}

/// When a user's password is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdatePassword {
    /// Whenever the shadow entry holds another hash.
    #[default]
    Always,
    /// Only when the user is created.
    OnCreate,
}

/// A password hash as crypt(3) writes it (`$ID$[PARAMS$]SALT$HASH`, with a known scheme and
/// only the characters crypt uses), or `!` / `*` / `!*` (no password login), optionally
/// locked with a leading `!`. Never shown: its `Debug` hides it, and no message holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptHash(String);

/// The crypt(3) schemes glibc and libxcrypt know: MD5, bcrypt, SHA-256, SHA-512, yescrypt,
/// gost-yescrypt, scrypt, and the older SHA-1 and NT forms.
const CRYPT_SCHEMES: &[&str] = &["1", "2a", "2b", "2x", "2y", "5", "6", "7", "y", "gy", "sha1", "md5"];

impl CryptHash {
    pub fn parse(text: &str) -> Option<CryptHash> {
        if matches!(text, "!" | "*" | "!*") {
            return Some(CryptHash(text.to_owned()));
        }
        let hash = text.strip_prefix('!').unwrap_or(text);
        let fields: Vec<&str> = hash.strip_prefix('$')?.split('$').collect();
        let ok = fields.len() >= 3
            && CRYPT_SCHEMES.contains(&fields[0])
            && fields.iter().skip(1).all(|f| !f.is_empty())
            && fields[fields.len() - 1].len() >= 16
            && hash.len() <= 512
            && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b"./$=,".contains(&b));
        ok.then(|| CryptHash(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CryptHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CryptHash(<secret>)")
    }
}

impl<'de> Deserialize<'de> for CryptHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CryptHash::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(
                "the value is not a crypt(3) password hash like $y$... or $6$...: a plaintext password is \
                 refused (hash it first, e.g. with `mkpasswd -m yescrypt` or `openssl passwd -6`)",
            )
        })
    }
}

contract::resolve_as_is!(CryptHash, UpdatePassword);

fn yes() -> bool {
    true
}

contract::resolve_struct!(UserArgs<S> {
    name, state, uid, group, groups, append, shell, home, system, create_home, remove, password,
    update_password
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
                    ("password", self.password.is_some()),
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

/// The password field of `getent shadow NAME`'s line for `name` (nine `:`-separated fields),
/// if there is one; a line of another shape is refused (it is not trusted to mean anything).
fn parse_shadow(text: &str, name: &str) -> Result<Option<String>, String> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(':').collect();
        let [n, hash, ..] = fields[..] else { return Err("a shadow line without fields".into()) };
        if fields.len() != 9 || n != name {
            return Err(format!("a shadow line of another shape ({} fields)", fields.len()));
        }
        if hash.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) || found.is_some() {
            return Err("a shadow line that is not one password field".into());
        }
        found = Some(hash.to_owned());
    }
    Ok(found)
}

/// The planned change: a `useradd`, `usermod` or `userdel` command line, then the password
/// hash for `chpasswd -e` (on its stdin).
struct UserAction {
    command: Option<String>,
    password: Option<(String, CryptHash)>,
}

impl std::fmt::Debug for UserAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAction")
            .field("command", &self.command)
            .field("password", &self.password.as_ref().map(|(name, _)| name))
            .finish()
    }
}

#[async_trait]
impl Action for UserAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        if let Some(command) = self.command {
            run_checked(host, Exec::new(command)).await?;
        }
        if let Some((name, hash)) = self.password {
            let line = format!("{name}:{}\n", hash.as_str());
            run_checked(host, Exec::new("chpasswd -e").stdin(line.into_bytes())).await?;
        }
        Ok(Outputs::new())
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
        // The password: set on create, and (`always`) when the shadow entry holds another.
        let mut password_change = None;
        if let Some(hash) = &args.password {
            let set = match (&user, args.update_password) {
                (None, _) => true,
                (Some(_), UpdatePassword::OnCreate) => false,
                (Some(_), UpdatePassword::Always) => {
                    let out = cx
                        .host
                        .exec(Exec::new(format!("getent shadow -- {name}")).effect(Effect::ReadOnly))
                        .await?;
                    let current = parse_shadow(&String::from_utf8_lossy(&out.stdout), &args.name)
                        .map_err(|why| {
                            ModuleError::Refused(format!(
                                "cannot read the shadow entry of {} on {}: {why}",
                                args.name,
                                cx.host.name()
                            ))
                        })?
                        .ok_or_else(|| {
                            ModuleError::Refused(format!(
                                "cannot read the shadow entry of {} on {} (reading /etc/shadow needs root: become)",
                                args.name,
                                cx.host.name()
                            ))
                        })?;
                    current != hash.as_str()
                }
            };
            if set {
                password_change = Some((args.name.clone(), hash.clone()));
            }
        }
        let password_line = || format!("password of {} (hash not shown)", args.name);
        let (mut changes, words) = match (args.state, &user) {
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
                if changes.is_empty() && password_change.is_none() {
                    return Ok(Plan::unchanged());
                }
                (changes, words)
            }
        };
        let command = (!changes.is_empty()).then(|| format!("{} -- {name}", join(&words)));
        if password_change.is_some() {
            changes.push(password_line());
        }
        Ok(Plan {
            changes,
            action: Some(Box::new(UserAction { command, password: password_change })),
            ..Plan::default()
        })
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

    const YESCRYPT: &str = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7";

    #[test]
    fn a_password_must_be_a_crypt_hash_and_is_never_shown() {
        for good in [
            YESCRYPT,
            "$6$rounds=5000$saltsalt$Yz4PHlEfP7L5eQm0S4hNfnVW5vBz7xXkOEr6Vv0o0dq5Zu9pKp0pZ1bTQFqg0X9F4T9lO3R3J8oB6E4e3eYp1/",
            "$1$salt$qJH7.N4xYta3aEG/dfqo/0",
            "!$6$salt$Yz4PHlEfP7L5eQm0S4hNfnVW",
            "!",
            "*",
        ] {
            assert!(CryptHash::parse(good).is_some(), "{good}");
        }
        for bad in [
            "hunter2",
            "$6$",
            "$6$salt$",
            "$9$salt$abcdefghijklmnopq",
            "$6$salt$abc def ghijklmnopq",
            "",
            "!!",
        ] {
            assert!(CryptHash::parse(bad).is_none(), "{bad}");
        }
        let error =
            resolved::<UserArgs>(json!({ "name": "ci", "password": "hunter2" })).unwrap_err().to_string();
        assert!(error.contains("is not a crypt(3) password hash"), "{error}");
        assert!(!error.contains("hunter2"), "the refused value is not repeated: {error}");
        let a = args(json!({ "name": "ci", "password": YESCRYPT }));
        assert!(!format!("{a:?}").contains("$y$"), "Debug hides the hash");
        let action = UserAction { command: None, password: Some(("ci".into(), a.password.clone().unwrap())) };
        assert!(!format!("{action:?}").contains("$y$"));
        assert_eq!(
            resolved::<UserArgs>(json!({ "name": "ci", "state": "absent", "password": "*" }))
                .unwrap_err()
                .to_string(),
            "password makes no sense with state: absent"
        );
    }

    #[test]
    fn the_shadow_entry_is_read_as_hostile_input() {
        let line = format!("ci:{YESCRYPT}:19700:0:99999:7:::\n");
        assert_eq!(parse_shadow(&line, "ci"), Ok(Some(YESCRYPT.to_owned())));
        assert_eq!(parse_shadow("", "ci"), Ok(None));
        assert!(parse_shadow("ci:x:1\n", "ci").is_err());
        assert!(parse_shadow("root:x:1:0:99999:7:::\n", "ci").is_err());
        assert!(parse_shadow(&format!("{line}{line}"), "ci").is_err());
        assert!(parse_shadow("ci:a b:1:0:99999:7:::\n", "ci").is_err());
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
