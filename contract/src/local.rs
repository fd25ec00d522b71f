//! The controller itself as a [`Host`]: commands run through the local `sh`. For work that
//! belongs on the controller (its files go through the same [`crate::remote`] helpers as any
//! host's: the same atomic writes, modes and quoting), and for tests that exercise modules
//! without a network.

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::host::{Exec, ExecOutput, Host, HostError};

/// The name the controller, the machine engine runs on, goes by in playbooks (`scp`'s
/// `from: "controller"`) and messages.
pub const CONTROLLER: &str = "controller";

/// Runs commands on this machine with `sh -c`.
#[derive(Debug, Clone)]
pub struct LocalHost {
    name: String,
    /// Where commands run (relative paths are from there); `None`: engine's working directory.
    dir: Option<PathBuf>,
}

impl LocalHost {
    /// A local host that calls itself `name` in messages.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), dir: None }
    }

    /// The controller, named [`CONTROLLER`]; relative paths are from engine's working directory.
    pub fn controller() -> Self {
        Self::new(CONTROLLER)
    }

    /// Runs commands in `dir` instead, so relative paths are from there.
    #[must_use]
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
}

#[async_trait]
impl Host for LocalHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
        let transport = |e: std::io::Error| HostError::Transport(e.to_string());
        let mut command = tokio::process::Command::new("sh");
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let mut child = command
            .arg("-c")
            .arg(&exec.command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(transport)?;
        // Feed stdin while output is read, so a command that writes a lot before reading
        // everything cannot deadlock against us.
        let mut stdin = child.stdin.take().ok_or_else(|| HostError::Transport("no stdin pipe".into()))?;
        let bytes = exec.stdin.unwrap_or_default();
        let feed = async move {
            // A command that exits without reading its stdin is not an error.
            let _ = stdin.write_all(&bytes).await;
        };
        let run = async {
            let (_, out) = tokio::join!(feed, child.wait_with_output());
            out.map_err(transport)
        };
        let out = match exec.timeout {
            Some(limit) => {
                tokio::time::timeout(limit, run).await.map_err(|_| HostError::Timeout(limit))??
            }
            None => run.await?,
        };
        Ok(ExecOutput {
            status: out.status.code().and_then(|c| u32::try_from(c).ok()),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_commands_with_stdin() {
        let host = LocalHost::new("local");
        let out = host.exec(Exec::new("cat; echo err >&2; exit 3").stdin(b"hi".to_vec())).await.unwrap();
        assert_eq!((out.status, out.stdout_text(), out.stderr_tail(1)), (Some(3), "hi".into(), "err".into()));
    }

    #[tokio::test]
    async fn runs_in_its_folder() {
        let dir = std::env::temp_dir();
        let host = LocalHost::controller().in_dir(&dir);
        let out = host.exec(Exec::new("pwd -P")).await.unwrap();
        assert_eq!(out.stdout_text(), dir.canonicalize().unwrap().to_str().unwrap());
        assert_eq!(host.name(), "controller");
    }
}
