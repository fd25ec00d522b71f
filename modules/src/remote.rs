//! File and command operations built on [`Host::exec`], shared by every module.
//!
//! Each function is one round trip. Values reach the command line only through
//! [`shell::quote`]; content always travels on stdin.

use crate::error::ModuleError;
use crate::host::{Exec, ExecOutput, Host};
use crate::shell::quote;

/// Runs `command` and fails with its stderr when it exits non-zero.
pub async fn run_checked(host: &dyn Host, exec: Exec) -> Result<ExecOutput, ModuleError> {
    let command = exec.command.clone();
    let output = host.exec(exec).await?;
    if output.success() { Ok(output) } else { Err(command_error(command, &output)) }
}

/// The error for a command that ran and failed.
pub fn command_error(command: String, output: &ExecOutput) -> ModuleError {
    ModuleError::Command {
        command,
        status: output.status.map_or_else(|| "a signal".to_owned(), |s| format!("status {s}")),
        stderr: output.stderr_tail(10),
    }
}

/// What kind of filesystem object a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// The state of a path on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub kind: FileKind,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// Hex SHA-256 of the content, for regular files.
    pub sha256: Option<String>,
}

/// Stats `path` (without following a final symlink) and hashes it when it is a regular file.
/// Returns `None` when nothing is there.
pub async fn stat(host: &dyn Host, path: &str) -> Result<Option<FileStat>, ModuleError> {
    let p = quote(path);
    let script = format!(
        "p={p}; if [ -e \"$p\" ] || [ -L \"$p\" ]; then \
         stat -c '%F|%a|%U|%G' -- \"$p\" && \
         if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then sha256sum -- \"$p\"; fi; \
         else echo absent; fi"
    );
    let out = run_checked(host, Exec::new(script)).await?;
    parse_stat(&out.stdout_text()).map_err(|why| ModuleError::Refused(format!("cannot stat {path}: {why}")))
}

fn parse_stat(text: &str) -> Result<Option<FileStat>, String> {
    let mut lines = text.lines();
    let first = lines.next().ok_or("no output")?;
    if first == "absent" {
        return Ok(None);
    }
    let fields: Vec<&str> = first.split('|').collect();
    let [kind, mode, owner, group] = fields[..] else {
        return Err(format!("unexpected stat output {first:?}"));
    };
    let kind = match kind {
        "regular file" | "regular empty file" => FileKind::File,
        "directory" => FileKind::Directory,
        "symbolic link" => FileKind::Symlink,
        _ => FileKind::Other,
    };
    let mode = u32::from_str_radix(mode, 8).map_err(|e| format!("mode {mode:?}: {e}"))?;
    let sha256 = lines.next().and_then(|l| l.split_whitespace().next()).map(str::to_owned);
    Ok(Some(FileStat { kind, mode, owner: owner.to_owned(), group: group.to_owned(), sha256 }))
}

/// Reads a whole file.
pub async fn read(host: &dyn Host, path: &str) -> Result<Vec<u8>, ModuleError> {
    let out = run_checked(host, Exec::new(format!("cat -- {}", quote(path)))).await?;
    Ok(out.stdout)
}

/// Ownership and permissions to set on a written file or directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Attrs {
    /// Shell commands that set these attributes on the path held in shell variable `var`.
    fn commands(&self, var: &str) -> String {
        let mut script = String::new();
        if let Some(mode) = self.mode {
            script.push_str(&format!("chmod {mode:04o} -- \"${var}\"; "));
        }
        match (&self.owner, &self.group) {
            (Some(o), Some(g)) => {
                script.push_str(&format!("chown -- {}:{} \"${var}\"; ", quote(o), quote(g)))
            }
            (Some(o), None) => script.push_str(&format!("chown -- {} \"${var}\"; ", quote(o))),
            (None, Some(g)) => script.push_str(&format!("chgrp -- {} \"${var}\"; ", quote(g))),
            (None, None) => {}
        }
        script
    }
}

/// Writes `content` to `path` atomically: a temporary file in the same directory gets the
/// content, mode and owner, is fsynced, and is renamed over `path`. A reader (or a crash)
/// sees either the old file or the new one, never a partial one.
pub async fn write_atomic(
    host: &dyn Host,
    path: &str,
    content: &[u8],
    attrs: &Attrs,
) -> Result<(), ModuleError> {
    let script = format!(
        "set -e; p={p}; t=$(mktemp -- \"$p.engine-XXXXXX\"); trap 'rm -f -- \"$t\"' EXIT; \
         cat >\"$t\"; {attrs}sync -- \"$t\"; mv -f -- \"$t\" \"$p\"; trap - EXIT",
        p = quote(path),
        attrs = attrs.commands("t"),
    );
    run_checked(host, Exec::new(script).stdin(content.to_vec())).await?;
    Ok(())
}

/// Sets mode and owner on an existing path.
pub async fn set_attrs(host: &dyn Host, path: &str, attrs: &Attrs) -> Result<(), ModuleError> {
    let script = format!("set -e; p={}; {}", quote(path), attrs.commands("p"));
    run_checked(host, Exec::new(script)).await?;
    Ok(())
}

/// Creates a directory (and missing parents) with the given attributes.
pub async fn mkdir(host: &dyn Host, path: &str, attrs: &Attrs) -> Result<(), ModuleError> {
    let script = format!("set -e; p={}; mkdir -p -- \"$p\"; {}", quote(path), attrs.commands("p"));
    run_checked(host, Exec::new(script)).await?;
    Ok(())
}

/// Removes a path, recursively for directories.
pub async fn remove(host: &dyn Host, path: &str) -> Result<(), ModuleError> {
    run_checked(host, Exec::new(format!("rm -rf -- {}", quote(path)))).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_output() {
        let stat = parse_stat("regular file|644|root|root\nabc123  /tmp/x\n").unwrap().unwrap();
        assert_eq!(stat.kind, FileKind::File);
        assert_eq!(stat.mode, 0o644);
        assert_eq!(stat.sha256.as_deref(), Some("abc123"));
        assert_eq!(parse_stat("absent\n"), Ok(None));
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn attrs_are_quoted() {
        let attrs = Attrs { mode: Some(0o600), owner: Some("a b".into()), group: Some("c".into()) };
        assert_eq!(attrs.commands("t"), "chmod 0600 -- \"$t\"; chown -- 'a b':'c' \"$t\"; ");
    }
}
