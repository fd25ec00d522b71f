//! Become: running a host's commands as another user (root by default) through `sudo`,
//! for inventories that log in as an unprivileged user (`ansible_become: true`).
//!
//! The SSH transport wraps each command of a host that has a become user
//! ([`crate::ssh::SshConfig::become_user`]) in [`command_line`], and the kill of such a
//! command too (when it timed out or printed too much): the kill runs as the user the command
//! runs as, so it reaches the processes sudo started, which the login user may not signal.

use contract::shell::quote;

/// The command line that runs `command` as `user` through `sudo -n` (no password prompt: a
/// sudo that wants one fails at once with its own message).
pub fn command_line(user: &str, command: &str) -> String {
    format!("sudo -n -H -u {} -- sh -c {}", quote(user), quote(command))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_commands_in_quoted_sudo() {
        assert_eq!(command_line("root", "echo 'hi'"), r"sudo -n -H -u 'root' -- sh -c 'echo '\''hi'\'''");
    }
}
