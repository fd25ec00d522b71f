//! `command`: runs a command, guarded by `creates`/`removes` for idempotence.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ModuleError;
use crate::host::{Exec, Host};
use crate::module::{Action, Context, Module, Outputs, Plan};
use crate::remote::command_error;
use crate::shell::{join, quote};

/// Runs a command on the host. Without a guard it runs (and reports changed) every time;
/// `creates` and `removes` make it idempotent. Outputs: `rc`, `stdout`, `stderr`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandArgs {
    /// A shell command line, run by `sh -c`. Use `argv` instead to pass values that must not be interpreted.
    pub cmd: Option<String>,
    /// The program and its arguments; each is quoted, nothing is interpreted by a shell.
    pub argv: Option<Vec<String>>,
    /// Skip the command when this path exists (it is what the command creates).
    pub creates: Option<String>,
    /// Skip the command when this path does not exist (it is what the command removes).
    pub removes: Option<String>,
    /// Directory to run in.
    pub chdir: Option<String>,
    /// Environment variables for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Bytes for the command's stdin.
    pub stdin: Option<String>,
    /// Seconds before the command is killed.
    pub timeout: Option<u64>,
    /// The command only reads (e.g. `hostname`, `cat`): it runs while planning, in check
    /// mode too, its outputs are always available, and it reports ok instead of changed.
    #[serde(default)]
    pub read_only: bool,
}

impl CommandArgs {
    pub(crate) fn validate(self) -> Result<Self, String> {
        match (&self.cmd, &self.argv) {
            (Some(_), Some(_)) => return Err("give either cmd or argv, not both".into()),
            (None, None) => {
                return Err("missing cmd (a shell line) or argv (a list of words)".into());
            }
            (None, Some(argv)) if argv.is_empty() => return Err("argv must not be empty".into()),
            _ => {}
        }
        if let Some(name) = self.env.keys().find(|k| !is_env_name(k)) {
            return Err(format!("invalid environment variable name {name:?}"));
        }
        Ok(self)
    }

    /// The full command line, with every value quoted.
    fn command_line(&self) -> String {
        let mut line = String::new();
        if let Some(dir) = &self.chdir {
            line.push_str(&format!("cd {} && ", quote(dir)));
        }
        if !self.env.is_empty() {
            line.push_str("env ");
            for (k, v) in &self.env {
                line.push_str(&format!("{} ", quote(&format!("{k}={v}"))));
            }
        }
        match (&self.cmd, &self.argv) {
            (Some(cmd), _) => line.push_str(&format!("sh -c {}", quote(cmd))),
            (None, Some(argv)) => line.push_str(&join(argv)),
            (None, None) => {}
        }
        line
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The `command` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Command {
    args: CommandArgs,
}

impl Command {
    pub fn new(args: CommandArgs) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let host = cx.host;
        let args = &self.args;
        let guard = match (&args.creates, &args.removes) {
            (None, None) => None,
            (creates, removes) => {
                let mut tests = Vec::new();
                if let Some(p) = creates {
                    tests.push(format!("[ ! -e {} ]", quote(p)));
                }
                if let Some(p) = removes {
                    tests.push(format!("[ -e {} ]", quote(p)));
                }
                Some(tests.join(" && "))
            }
        };
        if let Some(test) = guard {
            let out = host.exec(Exec::new(test)).await?;
            if !out.success() {
                let why = match (&args.creates, &args.removes) {
                    (Some(p), _) if out.status == Some(1) => format!("{p} exists"),
                    (_, Some(p)) => format!("{p} is absent"),
                    _ => "guard not met".to_owned(),
                };
                let mut outputs = Outputs::new();
                outputs.insert("skipped".into(), Value::String(why));
                return Ok(Plan { outputs, ..Plan::unchanged() });
            }
        }
        let line = args.command_line();
        if args.read_only {
            let outputs = RunCommand {
                line,
                stdin: args.stdin.clone(),
                timeout: args.timeout.map(Duration::from_secs),
            }
            .run(host)
            .await?;
            return Ok(Plan { outputs, ..Plan::unchanged() });
        }
        Ok(Plan {
            changes: vec![format!(
                "run {}",
                args.cmd.clone().unwrap_or_else(|| join(args.argv.iter().flatten()))
            )],
            action: Some(Box::new(RunCommand {
                line,
                stdin: args.stdin.clone(),
                timeout: args.timeout.map(Duration::from_secs),
            })),
            ..Plan::default()
        })
    }
}

#[derive(Debug)]
struct RunCommand {
    line: String,
    stdin: Option<String>,
    timeout: Option<Duration>,
}

#[async_trait]
impl Action for RunCommand {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        self.run(host).await
    }
}

impl RunCommand {
    async fn run(self, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let mut exec = Exec::new(self.line.clone());
        exec.stdin = self.stdin.map(String::into_bytes);
        exec.timeout = self.timeout;
        let out = host.exec(exec).await?;
        if !out.success() {
            return Err(command_error(self.line, &out));
        }
        let mut outputs = Outputs::new();
        outputs.insert("rc".into(), Value::from(out.status.unwrap_or_default()));
        outputs.insert("stdout".into(), Value::String(out.stdout_text()));
        outputs.insert("stderr".into(), Value::String(String::from_utf8_lossy(&out.stderr).into_owned()));
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: serde_json::Value) -> Result<CommandArgs, String> {
        serde_json::from_value::<CommandArgs>(json).map_err(|e| e.to_string()).and_then(CommandArgs::validate)
    }

    #[test]
    fn builds_quoted_command_lines() {
        let a =
            args(serde_json::json!({"argv": ["echo", "a b", "$(x)"], "chdir": "/t mp", "env": {"K": "v w"}}))
                .unwrap();
        assert_eq!(a.command_line(), "cd '/t mp' && env 'K=v w' 'echo' 'a b' '$(x)'");
        let a = args(serde_json::json!({"cmd": "echo 'hi'"})).unwrap();
        assert_eq!(a.command_line(), r"sh -c 'echo '\''hi'\'''");
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(args(serde_json::json!({})).unwrap_err().contains("missing cmd"));
        assert!(args(serde_json::json!({"cmd": "x", "argv": ["y"]})).is_err());
        assert!(
            args(serde_json::json!({"cmd": "x", "crates": "/y"}))
                .unwrap_err()
                .contains("unknown field `crates`")
        );
        assert!(args(serde_json::json!({"cmd": "x", "env": {"1A": "b"}})).is_err());
    }
}
