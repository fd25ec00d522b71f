//! `command`: runs a command, guarded by `creates`/`removes` for idempotence.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::validate::Validate;
use contract::arg::{Operand, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::command_error;
use contract::shell::{join, quote};

/// Runs a command on the host. Without a guard it runs (and reports changed) every time;
/// `creates` and `removes` make it idempotent. Outputs: `rc`, `stdout`, `stderr`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "CommandArgs", bound = "")]
pub struct CommandArgs<S: Stage = Sealed> {
    /// A shell command line, run by `sh -c`. Use `argv` instead to pass values that must not be interpreted.
    pub cmd: Option<String>,
    /// The program and its arguments; each is quoted, nothing is interpreted by a shell.
    pub argv: Option<Vec<String>>,
    /// Skip the command when this path exists (it is what the command creates).
    pub creates: Option<String>,
    /// Skip the command when this path does not exist (it is what the command removes).
    pub removes: Option<String>,
    /// Directory to run in (a relative one is from the login directory).
    pub chdir: Option<S::Of<Operand>>,
    /// Environment variables for the command. Their values reach the host on the command's
    /// stdin, never on its command line (where other users of the host could read them).
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

contract::resolve_struct!(CommandArgs<S> { cmd, argv, creates, removes, chdir, env, stdin, timeout, read_only });

impl<S: Stage> Validate for CommandArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        match (&self.cmd, &self.argv) {
            (Some(_), Some(_)) => return Err(ArgsError::invalid("", "give either cmd or argv, not both")),
            (None, None) => {
                return Err(ArgsError::invalid("", "missing cmd (a shell line) or argv (a list of words)"));
            }
            (None, Some(argv)) if argv.is_empty() => {
                return Err(ArgsError::invalid("argv", "argv must not be empty"));
            }
            _ => {}
        }
        if let Some(name) = self.env.keys().find(|k| !is_env_name(k)) {
            return Err(ArgsError::invalid("env", format!("invalid environment variable name {name:?}")));
        }
        Ok(self)
    }
}

impl CommandArgs<Resolved> {
    /// `cd -- DIR && `, or nothing: guards and the command see the same working directory.
    fn cd_prefix(&self) -> String {
        self.chdir.as_ref().map(|dir| format!("cd -- {} && ", quote(dir))).unwrap_or_default()
    }

    /// The environment as the shell lines that set it, `export NAME='value'` (names are
    /// checked, values quoted): sent on stdin ahead of the command's own input, never on the
    /// command line, where every local user (`ps`, `/proc/*/cmdline`), sudo's log and `-vv`
    /// would see them.
    fn env_script(&self) -> String {
        self.env.iter().map(|(name, value)| format!("export {name}={}\n", quote(value))).collect()
    }

    /// The full command line, with every value quoted and no environment value in it: with
    /// an environment, it first reads exactly the bytes of [`Self::env_script`] from stdin
    /// (`dd bs=1` reads one byte at a time, so the command's own input stays unread) and
    /// evaluates them; then the command runs with the rest of stdin.
    fn command_line(&self) -> String {
        self.line(false)
    }

    /// What is sent to the host: [`Self::command_line`], except that a `cmd`'s shell is
    /// `exec`ed (the shell the host runs the line in becomes `sh`: one fork fewer).
    fn sent_line(&self) -> String {
        self.line(true)
    }

    fn line(&self, exec: bool) -> String {
        let mut line = self.cd_prefix();
        let env = self.env_script();
        if !env.is_empty() {
            line.push_str(&format!("eval \"$(dd bs=1 count={} 2>/dev/null)\" && ", env.len()));
        }
        match (&self.cmd, &self.argv) {
            (Some(cmd), _) => {
                line.push_str(&format!("{}sh -c {}", if exec { "exec " } else { "" }, quote(cmd)))
            }
            (None, Some(argv)) => line.push_str(&join(argv)),
            (None, None) => {}
        }
        line
    }

    /// What the command line reads on stdin: the environment script, then `stdin`.
    fn stdin_bytes(&self) -> Option<Vec<u8>> {
        let env = self.env_script();
        match &self.stdin {
            None if env.is_empty() => None,
            stdin => Some([env.as_bytes(), stdin.as_deref().unwrap_or_default().as_bytes()].concat()),
        }
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
    args: CommandArgs<Resolved>,
}

impl Command {
    pub fn new(args: CommandArgs<Resolved>) -> Self {
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
        if args.creates.is_some() || args.removes.is_some() {
            // One round trip; prints which guard stops the command, or nothing.
            let mut script = args.cd_prefix();
            let mut branches = Vec::new();
            if let Some(p) = &args.creates {
                branches.push(format!("[ -e {} ]; then echo creates", quote(p)));
            }
            if let Some(p) = &args.removes {
                branches.push(format!("[ ! -e {} ]; then echo removes", quote(p)));
            }
            script.push_str(&format!("if {}; fi", branches.join("; elif ")));
            let out = contract::remote::run_checked(host, Exec::new(script).effect(Effect::ReadOnly)).await?;
            let why = match (out.stdout_text().as_str(), &args.creates, &args.removes) {
                ("creates", Some(p), _) => Some(format!("{p} exists")),
                ("removes", _, Some(p)) => Some(format!("{p} is absent")),
                _ => None,
            };
            if let Some(why) = why {
                let mut outputs = Outputs::new();
                outputs.insert("skipped".into(), Value::String(why));
                return Ok(Plan { outputs, ..Plan::unchanged() });
            }
        }
        let line = args.command_line();
        if args.read_only {
            let outputs = RunCommand {
                line,
                sent: args.sent_line(),
                stdin: args.stdin_bytes(),
                timeout: args.timeout.map(Duration::from_secs),
                effect: Effect::ReadOnly,
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
                sent: args.sent_line(),
                stdin: args.stdin_bytes(),
                timeout: args.timeout.map(Duration::from_secs),
                effect: Effect::Unknown,
            })),
            ..Plan::default()
        })
    }
}

struct RunCommand {
    /// What errors show: it holds no environment value.
    line: String,
    /// What runs (see [`CommandArgs::sent_line`]).
    sent: String,
    /// The environment script and the command's own input (see [`CommandArgs::stdin_bytes`]).
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    /// `read_only` commands say they change nothing; others may change anything.
    effect: Effect,
}

impl std::fmt::Debug for RunCommand {
    /// Shows neither environment values nor stdin: either may be a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCommand")
            .field("line", &self.line)
            .field("stdin", &self.stdin.as_ref().map(|s| format!("<{} bytes>", s.len())))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[async_trait]
impl Action for RunCommand {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        self.run(host).await
    }
}

impl RunCommand {
    async fn run(self, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let mut exec = Exec::new(self.sent);
        exec.stdin = self.stdin;
        exec.timeout = self.timeout;
        exec.effect = self.effect;
        let out = host.exec(exec).await.map_err(|e| e.showing(&self.line))?;
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

    fn args(json: serde_json::Value) -> Result<CommandArgs<Resolved>, String> {
        crate::validate::resolved::<CommandArgs>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn builds_quoted_command_lines() {
        let a =
            args(serde_json::json!({"argv": ["echo", "a b", "$(x)"], "chdir": "/t mp", "env": {"K": "v w"}}))
                .unwrap();
        assert_eq!(
            a.command_line(),
            "cd -- '/t mp' && eval \"$(dd bs=1 count=15 2>/dev/null)\" && 'echo' 'a b' '$(x)'"
        );
        assert_eq!(a.stdin_bytes().unwrap(), b"export K='v w'\n");
        let a = args(serde_json::json!({"cmd": "echo 'hi'"})).unwrap();
        assert_eq!(a.command_line(), r"sh -c 'echo '\''hi'\'''");
        assert_eq!(a.sent_line(), r"exec sh -c 'echo '\''hi'\'''");
        assert_eq!(a.stdin_bytes(), None);
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(args(serde_json::json!({})).unwrap_err().contains("missing cmd"));
        assert!(args(serde_json::json!({"cmd": "x", "argv": ["y"]})).is_err());
        assert!(
            args(serde_json::json!({"cmd": "x", "crates": "/y"}))
                .unwrap_err()
                .contains("unknown argument `crates`")
        );
        assert!(args(serde_json::json!({"cmd": "x", "env": {"1A": "b"}})).is_err());
    }

    /// `cd -P` would run in the login directory, silently: refused at seal instead.
    #[test]
    fn a_chdir_that_reads_as_an_option_is_refused() {
        assert_eq!(
            args(serde_json::json!({"cmd": "pwd", "chdir": "-P"})).unwrap_err(),
            "argument `chdir` must be a value that does not start with '-' (a command would read it as an \
             option), got the string \"-P\""
        );
        assert!(
            args(serde_json::json!({"cmd": "pwd", "chdir": "work"})).is_ok(),
            "relative: from the login directory"
        );
    }

    /// The environment reaches the command through stdin, exactly, and the command still gets
    /// its own input after it; the command line holds no value. Run by `sh` on this machine.
    #[tokio::test]
    async fn environment_values_travel_on_stdin_not_on_the_command_line() {
        let host = contract::local::LocalHost::new("here");
        let tricky = "it's a\nb \"q\" $(touch /nonexistent) `id`";
        let args = args(serde_json::json!({
            "cmd": "printf '%s|%s|' \"$K\" \"$EMPTY\"; cat",
            "env": {"K": tricky, "EMPTY": ""},
            "stdin": "rest of\nthe input\n",
            "read_only": true,
        }))
        .unwrap();
        let line = args.command_line();
        assert!(!line.contains("it's") && !line.contains("touch"), "{line}");
        let plan =
            Command::new(args).plan(&Context::new(&host, contract::module::PlanOptions::default())).await;
        let outputs = plan.unwrap().outputs;
        assert_eq!(outputs["stdout"], format!("{tricky}||rest of\nthe input"));
        assert_eq!(outputs["rc"], 0);
    }
}
