//! The controller itself as a [`Host`]: commands run through the local `sh`. For tests that
//! exercise modules without a network, and for work that belongs on the controller.

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::host::{Exec, ExecOutput, Host, HostError};

/// Runs commands on this machine with `sh -c`.
#[derive(Debug, Clone)]
pub struct LocalHost {
    name: String,
}

impl LocalHost {
    /// A local host that calls itself `name` in messages.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

#[async_trait]
impl Host for LocalHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
        let transport = |e: std::io::Error| HostError::Transport(e.to_string());
        let mut child = tokio::process::Command::new("sh")
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
}
