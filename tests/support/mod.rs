//! Test harness: runs the real `engine` binary, in the spirit of just's `Test::new()...`.
//!
//! ```ignore
//! let t = Test::new();
//! let pb = t.file("bad.rhai", "host(\"nope\");");
//! t.arg("graph").arg(&pb).arg("-i").arg(fixture("inventory.yml")).run().failure().stderr_snapshot("unknown_host");
//! ```
//!
//! Error messages are checked whole, against insta snapshots under tests/snapshots
//! ([`Output::stderr_snapshot`]); `stderr_has` checks beside them say what a message must hold,
//! so that a snapshot accepted carelessly cannot drop it. Lab tests: see [`lab`].
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod bare;
/// The run report's headless-browser check: the very file `cargo xtask report-check` uses.
#[path = "../../xtask/src/browser.rs"]
pub mod browser;
pub mod lab;
pub mod report;

/// The workspace root (tests run with the engine crate's directory as cwd).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A fixture file under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests").join("fixtures").join(name)
}

/// One invocation of the engine binary, with its own temporary folder.
pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), args: Vec::new(), env: Vec::new() }
    }

    /// The temporary folder, where `playbook()` and `file()` write.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to a file in the temporary folder (`name` may hold folders, which are
    /// made) and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// `engine CMD PLAYBOOK -i INVENTORY` (`run`, `check`, `graph`), to add arguments to.
    pub fn playbook(self, cmd: &str, playbook: &Path, inventory: &Path) -> Self {
        self.arg(cmd).arg(playbook).arg("-i").arg(inventory)
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn run(self) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_engine"))
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .current_dir(root())
            .output()
            .unwrap();
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            args: self.args,
            dir: self.dir,
        }
    }
}

/// What the binary did.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl Output {
    fn context(&self) -> String {
        format!(
            "engine {}\n--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "{}", self.context());
        self
    }

    pub fn success(self) -> Self {
        self.code(0)
    }

    /// Refused invalid input cleanly (exit 1: nothing ran), never a panic (101) or a signal.
    pub fn failure(self) -> Self {
        assert_eq!(self.code, Some(1), "expected exit 1 for invalid input; {}", self.context());
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.context());
        self
    }

    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}; {}", self.context());
        self
    }

    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}; {}", self.context());
        self
    }

    /// Checks the whole stderr, normalized (see [`Output::normalize`]), against the snapshot
    /// `tests/snapshots/main__FILE__NAME.snap`, FILE being the calling test file. A new or
    /// changed message is written beside it as `.snap.new` and fails the test until accepted
    /// (`cargo insta review`, or rename the file) and committed.
    #[track_caller]
    pub fn stderr_snapshot(self, name: &str) -> Self {
        let caller = Path::new(std::panic::Location::caller().file());
        let file = caller.file_stem().unwrap().to_string_lossy();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(self.normalize(&format!("engine {}", self.args.join(" "))));
        let stderr = self.normalize(&self.stderr);
        settings.bind(|| insta::assert_snapshot!(format!("main__{file}__{name}"), stderr));
        self
    }

    /// `text` without what changes from run to run and machine to machine: a test's temporary
    /// folder (`$TMPDIR/.tmpXXXXXX`, made by tempfile; this test's or another's) becomes `[TEMP]`
    /// and the repository's root `[ROOT]`.
    pub fn normalize(&self, text: &str) -> String {
        let prefix = std::env::temp_dir().join(".tmp").display().to_string();
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(&prefix) {
            out.push_str(&rest[..at]);
            out.push_str("[TEMP]");
            let after = &rest[at + prefix.len()..];
            let random = after.char_indices().take_while(|(_, c)| c.is_ascii_alphanumeric()).count();
            rest = &after[random..];
        }
        out.push_str(rest);
        out.replace(&root().display().to_string(), "[ROOT]")
    }

    /// The JSON-lines events of a `--json` run.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// Finished-task events, as (host, task, status).
    pub fn outcomes(&self) -> Vec<(String, String, String)> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "task_finished")
            .map(|e| (s(&e["host"]), s(&e["task"]), s(&e["status"])))
            .collect()
    }

    /// How many tasks finished with `status`.
    pub fn count(&self, status: &str) -> usize {
        self.outcomes().iter().filter(|(_, _, s)| s == status).count()
    }

    /// The finished-task event of `task` on `host`.
    pub fn task(&self, host: &str, task: &str) -> serde_json::Value {
        self.events()
            .into_iter()
            .find(|e| e["event"] == "task_finished" && e["host"] == host && e["task"] == task)
            .unwrap_or_else(|| panic!("no task {host}: {task}; {}", self.context()))
    }
}

/// `engine CMD playbook -i inventory --json ARGS...`, expecting exit `code`.
pub fn engine_json(
    cmd: &str,
    playbook: &std::path::Path,
    inventory: &std::path::Path,
    args: &[&str],
    code: i32,
) -> Output {
    Test::new().playbook(cmd, playbook, inventory).arg("--json").args(args).run().code(code)
}

/// The `changes` of a finished-task event.
pub fn changes(task: &serde_json::Value) -> Vec<String> {
    task["changes"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap().to_owned()).collect()
}

/// The error of `task` on `host`, without the place the engine puts before it
/// (`pb.rhai:2:3: HOST: TASK: `).
pub fn task_error(out: &Output, host: &str, task: &str) -> String {
    let whole = out.task(host, task)["error"].as_str().unwrap().to_owned();
    let prefix = format!(": {host}: {task}: ");
    let at = whole.find(&prefix).unwrap_or_else(|| panic!("no {prefix:?} in {whole:?}"));
    whole[at + prefix.len()..].to_owned()
}

fn s(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// What the engine showed on a pseudo-terminal ([`on_terminal`]).
pub struct Screen {
    pub code: Option<i32>,
    /// Everything written to the terminal (the prompts included; typed text only if echoed).
    pub text: String,
    /// How many answers were typed.
    pub typed: usize,
}

/// Runs the engine binary with `args` (from the workspace root) on a pseudo-terminal that
/// `script -q -e -c` opens, so that it has a controlling terminal, without `SSH_AUTH_SOCK`
/// when `no_agent`. Each time `prompt` shows once more, the next of `answers` is typed (the
/// prompts beyond them are left unanswered: the terminal's input is then closed). Panics
/// (after killing it) when the run takes longer than `limit`.
pub fn on_terminal(
    args: &[&std::ffi::OsStr],
    no_agent: bool,
    prompt: &str,
    answers: &[&str],
    limit: std::time::Duration,
) -> Screen {
    on_terminal_with(args, &[], no_agent, prompt, answers, limit)
}

/// [`on_terminal`], with `env` set for the engine (e.g. `HOME`, for its `~/.ssh/config`).
pub fn on_terminal_with(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
    no_agent: bool,
    prompt: &str,
    answers: &[&str],
    limit: std::time::Duration,
) -> Screen {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let engine = std::iter::once(std::ffi::OsStr::new(env!("CARGO_BIN_EXE_engine")))
        .chain(args.iter().copied())
        .map(|a| {
            let a = a.to_str().unwrap();
            assert!(!a.contains('\''), "an argument with a quote: {a}");
            format!("'{a}'")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new("script");
    command
        .args(["-q", "-e", "-c", &engine, "/dev/null"])
        .current_dir(root())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if no_agent {
        command.env_remove("SSH_AUTH_SOCK");
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (prompt, answers) = (prompt.to_owned(), answers.iter().map(|a| format!("{a}\n")).collect::<Vec<_>>());
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut typed = 0;
        let mut stdin = Some(stdin);
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let shown = String::from_utf8_lossy(&all).matches(prompt.as_str()).count();
            while typed < shown {
                match (answers.get(typed), stdin.as_mut()) {
                    (Some(answer), Some(input)) => {
                        input.write_all(answer.as_bytes()).unwrap();
                        typed += 1;
                    }
                    _ => {
                        // Nothing more to type: end of input, as a user pressing Ctrl-D.
                        stdin = None;
                        break;
                    }
                }
            }
        }
        drop(stdin);
        (String::from_utf8_lossy(&all).into_owned(), typed)
    });
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("engine {engine} did not end in {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = child.wait().unwrap();
    let (text, typed) = reader.join().unwrap();
    Screen { code: status.code(), text, typed }
}
