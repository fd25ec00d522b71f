//! Become: running a host's commands as another user (root by default), for inventories that
//! log in as an unprivileged user (`ansible_become: true`), with Ansible's become methods
//! `sudo`, `su` and `doas`.
//!
//! The SSH transport wraps each command of a host that has a [`Become`] in
//! [`Become::command_line`], and the kill of such a command too (when it timed out or printed
//! too much): the kill runs as the user the command runs as, so it reaches the processes the
//! method started, which the login user may not signal.
//!
//! # Where the password goes
//! Only on the wrapped command's stdin, and only after the method has asked for it: the
//! transport watches the command's stderr for the method's prompt ([`Become::prompt`]) and
//! writes the password line then; the command's own stdin is held back until the command's
//! shell has started (its first line, the process-group marker, has arrived), so no byte of it
//! can be read as a password, and the password can never reach the command.
//! - `sudo` with a password runs as `sudo -S -p PROMPT`: sudo writes [`SUDO_PROMPT`] on stderr
//!   and reads one line from stdin (its `tgetpass` reads byte by byte up to the newline). A
//!   second prompt means the password was wrong: stdin is closed at once, so sudo counts one
//!   failed attempt and exits (no retries against a lockout).
//! - `su` (util-linux) asks through PAM's `misc_conv`, which without a terminal writes the
//!   prompt (`Password: `, under `LC_ALL=C`) on stderr and also reads one line byte by byte.
//!   A wrong password ends su with "Authentication failure".
//! - `doas` (OpenDoas) reads a password only from a terminal, which engine does not open: it
//!   runs `doas -n`, so only `nopass` rules work; anything else fails naming the rule to add.
//! - Without a password, `sudo -n` fails at once with its own message instead of asking.

use contract::shell::quote;

/// The prompt `sudo -S -p` is given: what the transport waits for on stderr before it writes
/// the password. No `%` in it: sudo expands `%` escapes in prompts.
pub const SUDO_PROMPT: &str = "[engine-become-password]";

/// What util-linux `su` (PAM's `misc_conv`, C locale) writes before it reads the password.
pub const SU_PROMPT: &str = "Password: ";

/// The way commands become another user (`ansible_become_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    #[default]
    Sudo,
    Su,
    Doas,
}

impl Method {
    /// Every method engine has, as `ansible_become_method` names them.
    pub const NAMES: [&str; 3] = ["sudo", "su", "doas"];

    /// The method named `name` (Ansible's become plugin name), if engine has it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sudo" => Some(Self::Sudo),
            "su" => Some(Self::Su),
            "doas" => Some(Self::Doas),
            _ => None,
        }
    }

    /// The method's command name, as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sudo => "sudo",
            Self::Su => "su",
            Self::Doas => "doas",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A become password (`-K` or `ansible_become_password`). Never shown: its `Debug` prints
/// `<hidden>`, and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A password, unless it holds a line break (sudo and PAM read one line: it could not be
    /// sent) or is empty.
    pub fn new(text: impl Into<String>) -> Result<Self, &'static str> {
        let text = text.into();
        if text.is_empty() {
            return Err("it is empty");
        }
        if text.contains(['\n', '\r']) {
            return Err("it holds a line break, which sudo and su would read as its end");
        }
        Ok(Self(text))
    }

    /// The password itself, to register with the redactor.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The line written to the method's stdin.
    pub(crate) fn line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(self.0.len() + 1);
        line.extend_from_slice(self.0.as_bytes());
        line.push(b'\n');
        line
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// How a host's commands become another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    pub method: Method,
    /// The user commands run as (`ansible_become_user`, default `root`).
    pub user: String,
    /// The password the method asks for, if one was given.
    pub password: Option<Password>,
}

impl Become {
    /// `sudo` to `user` without a password.
    pub fn sudo(user: impl Into<String>) -> Self {
        Self { method: Method::Sudo, user: user.into(), password: None }
    }

    /// The command line that runs the shell script `script` as [`Become::user`].
    pub fn command_line(&self, script: &str) -> String {
        let user = quote(&self.user);
        match (self.method, &self.password) {
            (Method::Sudo, None) => format!("sudo -n -H -u {user} -- sh -c {}", quote(script)),
            (Method::Sudo, Some(_)) => {
                format!("sudo -S -H -p {} -u {user} -- sh -c {}", quote(SUDO_PROMPT), quote(script))
            }
            // su's shell inherits LC_ALL=C (set so that PAM's prompt is the one waited for):
            // the script drops it again before anything else runs.
            (Method::Su, _) => {
                format!("LC_ALL=C su -c {} -- {user}", quote(&format!("unset LC_ALL; {script}")))
            }
            (Method::Doas, _) => format!("doas -n -u {user} -- sh -c {}", quote(script)),
        }
    }

    /// What the method writes on stderr when it wants the password, for methods that read one
    /// from a pipe; `None` for those that never ask (`sudo -n`, `doas -n`).
    pub fn prompt(&self) -> Option<&'static [u8]> {
        match (self.method, &self.password) {
            (Method::Sudo, Some(_)) => Some(SUDO_PROMPT.as_bytes()),
            (Method::Su, _) => Some(SU_PROMPT.as_bytes()),
            (Method::Sudo | Method::Doas, _) => None,
        }
    }

    /// Why the method did not start the shell, for the user: `login` is the user logged in,
    /// `asked` how many times the method asked for the password, `stderr` what it said.
    pub fn failure(&self, host: &str, login: &str, asked: u32, status: Option<u32>, stderr: &str) -> String {
        let method = self.method;
        let target = &self.user;
        let said = stderr.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("").to_owned();
        let exit = status.map_or_else(|| "a signal".to_owned(), |s| format!("exit {s}"));
        match (method, &self.password) {
            (Method::Sudo, Some(_)) if asked >= 2 => {
                format!("sudo on {host}: incorrect password (as {login})")
            }
            (Method::Su, Some(_)) if asked >= 1 => {
                format!("su on {host}: incorrect password (of {target}): {said}")
            }
            (Method::Su, None) if asked >= 1 => format!(
                "su on {host}: {target}'s password is required; give it with -K (--ask-become-pass) \
                 or ansible_become_password"
            ),
            (Method::Sudo, None) if said.contains("password is required") => format!(
                "sudo on {host}: a password is required (as {login}); give it with -K \
                 (--ask-become-pass) or ansible_become_password"
            ),
            (Method::Doas, _) => format!(
                "doas on {host}: {login} may not run commands as {target} without a password \
                 ({said}); doas reads passwords only from a terminal, so engine needs a rule like \
                 `permit nopass {login} as {target}` in /etc/doas.conf"
            ),
            _ => format!("{method} on {host}: could not run a command as {target} ({exit}): {said}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_commands_in_quoted_sudo() {
        assert_eq!(
            Become::sudo("root").command_line("echo 'hi'"),
            r"sudo -n -H -u 'root' -- sh -c 'echo '\''hi'\'''"
        );
    }

    #[test]
    fn each_method_has_its_line_and_only_pipe_readers_have_a_prompt() {
        let password = Some(Password::new("pw").unwrap());
        let with = |method, password: Option<Password>| Become { method, user: "postgres".into(), password };
        let sudo = with(Method::Sudo, password.clone());
        assert_eq!(
            sudo.command_line("id"),
            "sudo -S -H -p '[engine-become-password]' -u 'postgres' -- sh -c 'id'"
        );
        assert_eq!(sudo.prompt(), Some(SUDO_PROMPT.as_bytes()));
        let su = with(Method::Su, password.clone());
        assert_eq!(su.command_line("id"), "LC_ALL=C su -c 'unset LC_ALL; id' -- 'postgres'");
        assert_eq!(su.prompt(), Some(&b"Password: "[..]));
        let doas = with(Method::Doas, None);
        assert_eq!(doas.command_line("id"), "doas -n -u 'postgres' -- sh -c 'id'");
        assert_eq!(doas.prompt(), None);
        assert_eq!(with(Method::Sudo, None).prompt(), None);
    }

    #[test]
    fn passwords_are_one_line_and_never_shown() {
        assert!(Password::new("a\nb").is_err());
        assert!(Password::new("").is_err());
        let password = Password::new("hunter22").unwrap();
        assert_eq!(format!("{password:?}"), "<hidden>");
        assert_eq!(password.line(), b"hunter22\n");
        let become_ = Become { password: Some(password), ..Become::sudo("root") };
        assert!(!format!("{become_:?}").contains("hunter22"));
    }

    #[test]
    fn failures_name_the_host_the_user_and_the_fix() {
        let sudo = Become { password: Some(Password::new("x").unwrap()), ..Become::sudo("root") };
        assert_eq!(
            sudo.failure(
                "etcd0",
                "deploy",
                2,
                Some(1),
                "Sorry, try again.\nsudo: 1 incorrect password attempt\n"
            ),
            "sudo on etcd0: incorrect password (as deploy)"
        );
        assert_eq!(
            Become::sudo("root").failure("etcd0", "deploy", 0, Some(1), "sudo: a password is required\n"),
            "sudo on etcd0: a password is required (as deploy); give it with -K (--ask-become-pass) or \
             ansible_become_password"
        );
        let doas = Become { method: Method::Doas, ..Become::sudo("root") };
        assert!(
            doas.failure("etcd0", "deploy", 0, Some(1), "doas: Authorization required\n")
                .ends_with("`permit nopass deploy as root` in /etc/doas.conf")
        );
    }
}
