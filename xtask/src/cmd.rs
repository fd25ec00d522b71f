//! Running external tools. Always argument vectors (never `sh -c` with pasted strings),
//! and every error names the full command line and the tail of its stderr.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// `cmd` as a readable command line, for messages.
pub(crate) fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(quote).collect::<Vec<_>>().join(" ")
}

/// Quotes one word for a POSIX shell (used for messages and for the remote
/// command line that `ssh` hands to the remote shell).
pub(crate) fn quote(word: impl AsRef<OsStr>) -> String {
    let word = word.as_ref().to_string_lossy();
    let plain =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain { word.into_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// Runs quietly; returns stdout. Fails with stderr's tail on a non-zero exit.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let out =
        cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            display(cmd),
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 10)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs quietly and discards the output.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    output(cmd).map(drop)
}

/// Runs with the terminal attached (long tools whose progress the user wants to see).
pub(crate) fn run_loud(cmd: &mut Command) -> Result<()> {
    let status =
        cmd.stdin(Stdio::null()).status().with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// True if the command starts and exits with 0; all output discarded.
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The last `lines` lines of `text`, trimmed.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("hostname"), "hostname");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm)"), "'$(rm)'");
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
