//! `systemd`: a unit's file and drop-ins, whether it is enabled, and whether it runs.
//!
//! Planning is one round trip: `systemctl show` (machine-readable `key=value`) plus a SHA-256
//! of every managed file. Applying runs, in this order and only as planned: write the files,
//! `daemon-reload`, enable/disable, then start/stop/restart/reload.
//!
//! The host's answers are not trusted (`contract::untrusted`): every state read from
//! `systemctl show` must be a systemd state word, given once, and every file line a checksum,
//! `absent` or `other`; anything else fails the task naming the host and the line.

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::validate::Validate;
use contract::diff::{sha256_hex, unified_diff};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, Attrs, command_error, run_checked};
use contract::shell::{join, quote};
use contract::untrusted::Malformed;

/// Where unit files and drop-in directories written by this module live.
const UNIT_DIR: &str = "/etc/systemd/system";
/// The `systemctl show` properties planning reads.
const PROPERTIES: &str = "LoadState,ActiveState,SubState,UnitFileState,FragmentPath,NeedDaemonReload";
/// The unit types systemd knows; a name without one of these suffixes gets `.service`.
const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];
/// Journal lines quoted in the error when a unit fails to start.
const JOURNAL_LINES: u32 = 20;

/// Manages a systemd unit: its unit file, drop-ins, enablement and run state.
/// Files go under /etc/systemd/system. `daemon-reload` runs only when a managed file changed, or
/// when systemd says the unit's files changed on disk since it loaded them and the unit is about to
/// be started, restarted or reloaded (a package upgrade rewrote them). When the unit file or a
/// drop-in changed and the unit is running (or `state: started`), the unit is restarted so the change
/// takes effect. A start or restart that fails reports systemctl's error and the unit's last 20
/// journal lines. Outputs: `active_state`, `sub_state` (as `systemctl show` reports them after the task).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemdArgs {
    /// The unit's name, e.g. "etcd" or "etcd.service" (".service" is added when the name has no unit
    /// type suffix). A name, not a path.
    pub name: String,
    /// The unit file's full content, written to /etc/systemd/system/NAME. Without it, the unit must
    /// already exist (installed by a package, say).
    pub unit: Option<String>,
    /// Drop-in files: file name -> content, written to /etc/systemd/system/NAME.d/FILE.conf
    /// (".conf" is added when missing). Only the listed drop-ins are managed; others are left alone.
    #[serde(default)]
    pub dropins: BTreeMap<String, String>,
    /// Whether the unit starts at boot (`systemctl enable` / `disable`). Units without an [Install]
    /// section ("static") count as enabled. Left alone when not given.
    pub enabled: Option<bool>,
    /// Whether the unit should run: "started", "stopped", "restarted" or "reloaded". `restarted` and
    /// `reloaded` act (and report changed) on every run; `reloaded` starts a unit that is not running.
    /// Left alone when not given.
    pub state: Option<UnitState>,
}

/// Whether a unit should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnitState {
    /// Running: started when it is not active.
    Started,
    /// Not running: stopped when it is active.
    Stopped,
    /// Restarted on every run.
    Restarted,
    /// Reloaded on every run (started when not running).
    Reloaded,
}

contract::resolve_struct!(SystemdArgs { name, unit, dropins, enabled, state });
contract::resolve_as_is!(UnitState);

impl Validate for SystemdArgs {
    fn validate(mut self) -> Result<Self, ArgsError> {
        self.name = unit_name(&self.name).map_err(|e| ArgsError::invalid("name", e))?;
        if is_template(&self.name) && (self.state.is_some() || self.enabled.is_some()) {
            return Err(ArgsError::invalid(
                "name",
                format!(
                    "{} is a template; start or enable an instance of it (e.g. {}) instead",
                    self.name,
                    self.name.replacen("@.", "@NAME.", 1)
                ),
            ));
        }
        let mut files = BTreeMap::new();
        for (file, content) in std::mem::take(&mut self.dropins) {
            let file = dropin_name(&file).map_err(|e| ArgsError::invalid("dropins", e))?;
            if files.insert(file.clone(), content).is_some() {
                return Err(ArgsError::invalid("dropins", format!("drop-in {file} is given twice")));
            }
        }
        self.dropins = files;
        Ok(self)
    }
}

impl SystemdArgs {
    fn unit_path(&self) -> String {
        format!("{UNIT_DIR}/{}", self.name)
    }

    fn dropin_dir(&self) -> String {
        format!("{UNIT_DIR}/{}.d", self.name)
    }

    /// Every file this task manages, with its wanted content, in a stable order.
    fn files(&self) -> Vec<(String, &str)> {
        let mut files = Vec::new();
        if let Some(unit) = &self.unit {
            files.push((self.unit_path(), unit.as_str()));
        }
        let dir = self.dropin_dir();
        files.extend(self.dropins.iter().map(|(name, content)| (format!("{dir}/{name}"), content.as_str())));
        files
    }
}

/// The full unit name for `name`, or why it is not one.
fn unit_name(name: &str) -> Result<String, String> {
    if name.contains('/') {
        return Err(format!("name must be a unit name, not a path: {name:?}"));
    }
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c))) {
        return Err(format!("name {name:?} has {bad:?}; a unit name has only letters, digits and :-_.\\@"));
    }
    if name.starts_with(['-', '.']) {
        return Err(format!("name {name:?} must not start with '-' or '.'"));
    }
    let has_suffix = name.rsplit_once('.').is_some_and(|(_, suffix)| UNIT_SUFFIXES.contains(&suffix));
    let full = if has_suffix { name.to_owned() } else { format!("{name}.service") };
    let (stem, _) = full.rsplit_once('.').unwrap_or((&full, ""));
    if stem.is_empty() || stem.ends_with('.') {
        return Err(format!("name {name:?} has no unit name before its suffix"));
    }
    if full.matches('@').count() > 1 || full.starts_with('@') {
        return Err(format!("name {name:?} is not a valid unit name (at most one '@', after a prefix)"));
    }
    if full.len() > 255 {
        return Err(format!("name {name:?} is longer than systemd's 255 characters"));
    }
    Ok(full)
}

fn is_template(unit: &str) -> bool {
    unit.contains("@.")
}

/// The drop-in file name for a `dropins` key.
fn dropin_name(key: &str) -> Result<String, String> {
    if key.is_empty() || key.contains('/') || key.starts_with('.') || key.contains(char::is_whitespace) {
        return Err(format!("drop-in name {key:?} must be a plain file name, e.g. \"10-limits\""));
    }
    Ok(if key.ends_with(".conf") { key.to_owned() } else { format!("{key}.conf") })
}

/// What `systemctl show` says about a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UnitStatus {
    load_state: String,
    active_state: String,
    sub_state: String,
    unit_file_state: String,
    need_daemon_reload: bool,
}

impl UnitStatus {
    fn is_running(&self) -> bool {
        matches!(self.active_state.as_str(), "active" | "reloading" | "activating")
    }

    fn is_enabled(&self) -> bool {
        // What `systemctl is-enabled` counts as enabled.
        matches!(
            self.unit_file_state.as_str(),
            "enabled" | "enabled-runtime" | "static" | "alias" | "indirect" | "generated" | "transient"
        )
    }

    fn is_masked(&self) -> bool {
        self.load_state == "masked" || self.unit_file_state.starts_with("masked")
    }
}

/// Parses `systemctl show --property=...` output (`Key=value` lines, in systemd's order). The
/// host may be hostile: each property read must be a systemd state word (lower-case letters,
/// digits and `-`, as every state systemd has) and appear once; `LoadState` and `ActiveState`
/// must be there.
fn parse_show(text: &str) -> Result<UnitStatus, Malformed> {
    const READ: [&str; 5] = ["LoadState", "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload"];
    let mut props: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=').filter(|(key, _)| READ.contains(key)) else { continue };
        let word = value.len() <= 64
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !word {
            return Err(Malformed::new(line, "a state that is not a systemd state word"));
        }
        if props.insert(key, value).is_some() {
            return Err(Malformed::new(line, "a property given twice"));
        }
    }
    let get = |key: &str| {
        props
            .get(key)
            .map(|v| (*v).to_owned())
            .ok_or_else(|| Malformed::whole(format!("systemctl show printed no {key}")))
    };
    Ok(UnitStatus {
        load_state: get("LoadState")?,
        active_state: get("ActiveState")?,
        sub_state: props.get("SubState").map(|v| (*v).to_owned()).unwrap_or_default(),
        unit_file_state: props.get("UnitFileState").map(|v| (*v).to_owned()).unwrap_or_default(),
        need_daemon_reload: props.get("NeedDaemonReload") == Some(&"yes"),
    })
}

/// What is at a managed file's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileState {
    Absent,
    /// A regular file with this SHA-256.
    File(String),
    /// Something else (a symlink, say: a masked unit is a link to /dev/null).
    Other,
}

fn parse_file_line(line: &str) -> Result<FileState, Malformed> {
    match line.split_whitespace().next() {
        Some("absent") => Ok(FileState::Absent),
        Some("other") => Ok(FileState::Other),
        Some(hash) if hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(FileState::File(hash.to_owned()))
        }
        _ => Err(Malformed::new(line, "not a file state (a checksum, `absent` or `other`)")),
    }
}

/// The one planning command: unit status, a separator, then one line per file in `paths`.
fn status_script(unit: &str, paths: &[String]) -> String {
    let mut script =
        format!("systemctl show --property={PROPERTIES} -- {} || exit; echo '#files'", quote(unit));
    if !paths.is_empty() {
        script.push_str(&format!(
            "; for p in {}; do if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then sha256sum <\"$p\"; \
             elif [ -e \"$p\" ] || [ -L \"$p\" ]; then echo other; else echo absent; fi; done",
            join(paths)
        ));
    }
    script
}

pub(crate) fn parse_status(text: &str, files: usize) -> Result<(UnitStatus, Vec<FileState>), Malformed> {
    let (show, rest) = text
        .split_once("#files\n")
        .or_else(|| text.split_once("#files"))
        .ok_or_else(|| Malformed::whole("no #files marker"))?;
    let status = parse_show(show)?;
    let states = rest.lines().map(parse_file_line).collect::<Result<Vec<_>, _>>()?;
    if states.len() != files {
        return Err(Malformed::whole(format!("{} file states for {files} files", states.len())));
    }
    Ok((status, states))
}

/// The `systemd` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Systemd {
    args: SystemdArgs,
}

impl Systemd {
    pub fn new(args: SystemdArgs) -> Self {
        Self { args }
    }
}

/// What to do to the running unit, at most one per task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Start,
    Stop,
    Restart,
    Reload,
}

impl Operation {
    fn verb(self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Stop => "stop",
            Operation::Restart => "restart",
            Operation::Reload => "reload",
        }
    }

    /// Whether the unit should be running afterwards (and so a failed state is an error).
    fn should_run(self) -> bool {
        !matches!(self, Operation::Stop)
    }
}

/// Decides the operation on the running unit. `files_changed` means the unit file or a drop-in
/// will be rewritten (or systemd has stale copies of them loaded).
fn operation(state: Option<UnitState>, status: &UnitStatus, files_changed: bool) -> Option<Operation> {
    let running = status.is_running();
    match state {
        Some(UnitState::Stopped) => running.then_some(Operation::Stop),
        Some(UnitState::Restarted) => Some(Operation::Restart),
        Some(UnitState::Reloaded) if !running => Some(Operation::Start),
        // A reload does not apply a changed ExecStart: restart instead.
        Some(UnitState::Reloaded) if files_changed => Some(Operation::Restart),
        Some(UnitState::Reloaded) => Some(Operation::Reload),
        Some(UnitState::Started) if !running => Some(Operation::Start),
        Some(UnitState::Started) | None if running && files_changed => Some(Operation::Restart),
        Some(UnitState::Started) | None => None,
    }
}

#[async_trait]
impl Module for Systemd {
    fn name(&self) -> &'static str {
        "systemd"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let unit = args.name.clone();
        let files = args.files();
        let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
        let script = status_script(&unit, &paths);
        let out = run_checked(cx.host, Exec::new(script)).await?;
        let (status, states) = parse_status(&String::from_utf8_lossy(&out.stdout), files.len())
            .map_err(|m| m.on(cx.host.name(), format!("the state of {unit}")))?;

        let wants_it = args.unit.is_some()
            || !args.dropins.is_empty()
            || args.enabled == Some(true)
            || args.state.is_some_and(|s| s != UnitState::Stopped);
        if status.is_masked() && wants_it {
            return Err(ModuleError::Refused(format!(
                "{unit} is masked; unmask it first (systemctl unmask {unit})"
            )));
        }
        let needs_unit = args.enabled == Some(true) || args.state.is_some_and(|s| s != UnitState::Stopped);
        if status.load_state == "not-found" && args.unit.is_none() && needs_unit {
            return Err(ModuleError::Refused(format!(
                "unit {unit} does not exist on the host: give its content in `unit`, or install it first"
            )));
        }

        let mut changes = Vec::new();
        let mut writes = Vec::new();
        let mut diffs = String::new();
        for ((path, content), state) in files.iter().zip(&states) {
            let before = match state {
                FileState::Other => {
                    return Err(ModuleError::Refused(format!(
                        "{path} exists and is not a regular file (a symlink?); remove it first"
                    )));
                }
                FileState::File(hash) if *hash == sha256_hex(content.as_bytes()) => continue,
                FileState::File(_) => {
                    changes.push(format!("content of {path} ({} bytes)", content.len()));
                    true
                }
                FileState::Absent => {
                    changes.push(format!("create {path} ({} bytes)", content.len()));
                    false
                }
            };
            if cx.options.diff {
                let old = if before { Some(remote::read(cx.host, path).await?) } else { None };
                diffs.push_str(&unified_diff(path, old.as_deref(), content.as_bytes()));
            }
            writes.push((path.clone(), content.to_string()));
        }
        let stale = status.need_daemon_reload && !files.is_empty();
        let files_changed = !writes.is_empty() || stale;
        let op = operation(args.state, &status, files_changed);
        // A unit about to start, restart or reload whose files changed on disk since systemd
        // loaded them (a package upgrade rewrote its unit or drop-ins: kubeadm's "Upgrade
        // kubelet and kubectl" runs `systemctl daemon-reload` before restarting the kubelet)
        // is loaded afresh first, so the new files take effect.
        let daemon_reload =
            files_changed || (status.need_daemon_reload && op.is_some_and(Operation::should_run));
        if daemon_reload {
            changes.push(if writes.is_empty() {
                "daemon-reload (systemd has older copies of the unit's files loaded)".to_owned()
            } else {
                "daemon-reload".to_owned()
            });
        }
        let enable = match args.enabled {
            Some(true) if !status.is_enabled() => Some(true),
            Some(false) if matches!(status.unit_file_state.as_str(), "enabled" | "enabled-runtime") => {
                Some(false)
            }
            _ => None,
        };
        match enable {
            Some(true) => changes.push(format!("enable {unit}")),
            Some(false) => changes.push(format!("disable {unit}")),
            None => {}
        }
        if let Some(op) = op {
            let why = match (op, args.state) {
                (Operation::Restart, Some(UnitState::Restarted)) => "",
                (Operation::Restart, _) => " (its unit files changed)",
                (Operation::Start, Some(UnitState::Reloaded)) => " (not running, so no reload)",
                _ => "",
            };
            changes.push(format!("{} {unit}{why}", op.verb()));
        }

        let mut outputs = Outputs::new();
        outputs.insert("active_state".into(), Value::String(status.active_state.clone()));
        outputs.insert("sub_state".into(), Value::String(status.sub_state.clone()));
        if changes.is_empty() {
            return Ok(Plan { outputs, ..Plan::unchanged() });
        }
        let dropin_dir = (!args.dropins.is_empty()).then(|| args.dropin_dir());
        Ok(Plan {
            changes,
            diff: (!diffs.is_empty()).then_some(diffs),
            outputs,
            action: Some(Box::new(SystemdAction { unit, writes, dropin_dir, daemon_reload, enable, op })),
        })
    }
}

/// Exactly the planned changes to one unit.
#[derive(Debug)]
struct SystemdAction {
    unit: String,
    /// (path, content) of each file to write.
    writes: Vec<(String, String)>,
    /// Created first when a drop-in is written.
    dropin_dir: Option<String>,
    daemon_reload: bool,
    enable: Option<bool>,
    op: Option<Operation>,
}

#[async_trait]
impl Action for SystemdAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let unit = quote(&self.unit);
        if let Some(dir) = &self.dropin_dir
            && !self.writes.is_empty()
        {
            remote::mkdir(host, dir, &Attrs::default()).await?;
        }
        let attrs = Attrs { mode: Some(0o644), ..Attrs::default() };
        for (path, content) in &self.writes {
            remote::write_atomic(host, path, content.as_bytes(), &attrs).await?;
        }
        if self.daemon_reload {
            run_checked(host, Exec::new("systemctl daemon-reload")).await?;
        }
        match self.enable {
            Some(true) => run_checked(host, Exec::new(format!("systemctl enable -- {unit}"))).await?,
            Some(false) => run_checked(host, Exec::new(format!("systemctl disable -- {unit}"))).await?,
            None => Default::default(),
        };
        if let Some(op) = self.op {
            let command = format!("systemctl {} -- {unit}", op.verb());
            let out = host.exec(Exec::new(command.clone())).await?;
            if !out.success() {
                return Err(with_journal(host, &self.unit, command_error(command, &out)).await);
            }
        }
        let out =
            run_checked(host, Exec::new(format!("systemctl show --property={PROPERTIES} -- {unit}"))).await?;
        let status = parse_show(&out.stdout_text())
            .map_err(|m| m.on(host.name(), format!("the state of {}", self.unit)))?;
        if self.op.is_some_and(Operation::should_run) && status.active_state == "failed" {
            let error = ModuleError::Refused(format!(
                "{} is {} ({}) right after `systemctl {}`",
                self.unit,
                status.active_state,
                status.sub_state,
                self.op.map_or("", Operation::verb)
            ));
            return Err(with_journal(host, &self.unit, error).await);
        }
        let mut outputs = Outputs::new();
        outputs.insert("active_state".into(), Value::String(status.active_state));
        outputs.insert("sub_state".into(), Value::String(status.sub_state));
        Ok(outputs)
    }
}

/// `error`, with the unit's last journal lines appended (best effort: a journal that cannot be
/// read is said so, and the original error stays).
async fn with_journal(host: &dyn Host, unit: &str, error: ModuleError) -> ModuleError {
    let command = format!("journalctl --no-pager -n {JOURNAL_LINES} --unit={}", quote(unit));
    let journal = match host.exec(Exec::new(command)).await {
        Ok(out) if out.success() => out.stdout_text(),
        Ok(out) => format!("(journalctl failed: {})", out.stderr_tail(3)),
        Err(e) => format!("(journalctl failed: {e})"),
    };
    let journal = format!("last {JOURNAL_LINES} journal lines of {unit}:\n{journal}");
    match error {
        ModuleError::Command { command, status, stderr } => ModuleError::Command {
            command,
            status,
            stderr: if stderr.is_empty() { journal } else { format!("{stderr}\n{journal}") },
        },
        other => ModuleError::Refused(format!("{other}\n{journal}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: serde_json::Value) -> Result<SystemdArgs, String> {
        contract::args::from_value::<SystemdArgs>(json)
            .and_then(SystemdArgs::validate)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn unit_names_get_a_suffix_and_bad_ones_are_refused() {
        assert_eq!(unit_name("etcd").unwrap(), "etcd.service");
        assert_eq!(unit_name("etcd.service").unwrap(), "etcd.service");
        assert_eq!(unit_name("sys-fs.mount").unwrap(), "sys-fs.mount");
        assert_eq!(unit_name("foo.bar").unwrap(), "foo.bar.service");
        assert_eq!(unit_name("getty@tty1").unwrap(), "getty@tty1.service");
        assert_eq!(unit_name("getty@.service").unwrap(), "getty@.service");
        assert!(unit_name("/etc/systemd/system/x.service").unwrap_err().contains("not a path"));
        assert!(unit_name("").is_err());
        assert!(unit_name("a b").unwrap_err().contains("' '"));
        assert!(unit_name("x;rm").is_err());
        assert!(unit_name("-x").is_err());
        assert!(unit_name(".service").is_err());
        assert!(unit_name("a@b@c").is_err());
        assert!(unit_name(&"a".repeat(260)).is_err());
    }

    #[test]
    fn arguments_are_checked() {
        let a =
            args(serde_json::json!({"name": "web", "dropins": {"10-env": "x", "20-b.conf": "y"}})).unwrap();
        assert_eq!(a.name, "web.service");
        assert_eq!(
            a.files().iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["/etc/systemd/system/web.service.d/10-env.conf", "/etc/systemd/system/web.service.d/20-b.conf"]
        );
        assert!(args(serde_json::json!({"name": "web", "dropins": {"../x": "y"}})).is_err());
        assert!(args(serde_json::json!({"name": "web", "dropins": {"a": "1", "a.conf": "2"}})).is_err());
        assert!(
            args(serde_json::json!({"name": "web", "state": "running"}))
                .unwrap_err()
                .contains("must be one of")
        );
        assert!(
            args(serde_json::json!({"name": "web", "enable": true}))
                .unwrap_err()
                .contains("unknown argument `enable`")
        );
        assert!(
            args(serde_json::json!({"name": "t@", "state": "started"})).unwrap_err().contains("template")
        );
        assert!(args(serde_json::json!({"name": "t@.service", "unit": "[Unit]\n"})).is_ok());
    }

    #[test]
    fn parses_systemctl_show_in_any_order() {
        let text = "LoadState=loaded\nActiveState=active\nSubState=running\nFragmentPath=/lib/x\n\
                    UnitFileState=enabled\nNeedDaemonReload=no\n";
        let s = parse_show(text).unwrap();
        assert_eq!(s.active_state, "active");
        assert_eq!(s.sub_state, "running");
        assert!(s.is_running() && s.is_enabled() && !s.need_daemon_reload && !s.is_masked());
        let s =
            parse_show("NeedDaemonReload=yes\nUnitFileState=\nActiveState=inactive\nLoadState=not-found\n")
                .unwrap();
        assert!(!s.is_running() && !s.is_enabled() && s.need_daemon_reload);
        assert!(parse_show("garbage").is_err());
    }

    /// What a hostile host may print for `systemctl show`: a state that is no state word
    /// (it would reach later tasks as the `active_state` output) or a property given twice is
    /// refused, shown printable.
    #[test]
    fn refuses_systemctl_show_output_systemd_never_prints() {
        let refused = |text: &str| parse_show(text).unwrap_err().to_string();
        assert_eq!(
            refused("LoadState=loaded\nActiveState=active\u{1b}[2J\n"),
            r#"a state that is not a systemd state word: "ActiveState=active\u{1b}[2J""#
        );
        assert_eq!(
            refused("LoadState=loaded\nActiveState=failed\nActiveState=active\n"),
            r#"a property given twice: "ActiveState=active""#
        );
        assert_eq!(refused("LoadState=loaded\n"), "systemctl show printed no ActiveState");
        assert!(parse_show(&format!("LoadState=loaded\nActiveState={}\n", "a".repeat(65))).is_err());
        let s = parse_show("LoadState=loaded\nActiveState=active\nFragmentPath=/etc/x y=z\n").unwrap();
        assert_eq!(s.active_state, "active", "properties not read are not checked");
        let error = parse_status("LoadState=loaded\nActiveState=active\n#files\nrm -rf /\n", 1).unwrap_err();
        assert_eq!(error.to_string(), r#"not a file state (a checksum, `absent` or `other`): "rm -rf /""#);
    }

    #[test]
    fn parses_the_planning_output() {
        let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let text = format!("LoadState=loaded\nActiveState=failed\n#files\n{hash}  -\nabsent\nother\n");
        let (status, files) = parse_status(&text, 3).unwrap();
        assert_eq!(status.active_state, "failed");
        assert_eq!(files, [FileState::File(hash.into()), FileState::Absent, FileState::Other]);
        assert!(parse_status(&text, 2).is_err());
        assert!(parse_status("LoadState=loaded\nActiveState=active\n#files\n", 0).is_ok());
    }

    #[test]
    fn the_planning_command_quotes_every_path() {
        let script = status_script("a.service", &["/etc/x y".into()]);
        assert!(script.starts_with("systemctl show --property=LoadState,"));
        assert!(script.contains("-- 'a.service' || exit"));
        assert!(script.contains("for p in '/etc/x y'; do"));
    }

    /// A host that answers every command with `stdout`.
    struct Canned(&'static str);

    #[async_trait]
    impl Host for Canned {
        fn name(&self) -> &str {
            "canned"
        }

        async fn exec(&self, _exec: Exec) -> Result<contract::host::ExecOutput, contract::host::HostError> {
            Ok(contract::host::ExecOutput { status: Some(0), stdout: self.0.into(), stderr: Vec::new() })
        }
    }

    async fn plan(json: serde_json::Value, host: &Canned) -> Result<Plan, ModuleError> {
        let cx = Context::new(host, contract::module::PlanOptions::default());
        Systemd::new(args(json).unwrap()).plan(&cx).await
    }

    #[tokio::test]
    async fn a_missing_unit_is_refused_only_when_it_is_needed() {
        let missing =
            Canned("LoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n#files\n");
        let error =
            plan(serde_json::json!({"name": "ghost", "state": "started"}), &missing).await.unwrap_err();
        assert!(error.to_string().contains("unit ghost.service does not exist"), "{error}");
        for nothing_to_do in [
            serde_json::json!({"name": "ghost", "state": "stopped"}),
            serde_json::json!({"name": "ghost", "enabled": false}),
        ] {
            let plan = plan(nothing_to_do, &missing).await.unwrap();
            assert!(!plan.is_change(), "{:?}", plan.changes);
        }
        let masked = Canned("LoadState=masked\nActiveState=inactive\nUnitFileState=masked\n#files\n");
        let error = plan(serde_json::json!({"name": "m", "state": "started"}), &masked).await.unwrap_err();
        assert!(error.to_string().contains("masked; unmask it first"), "{error}");
    }

    #[tokio::test]
    async fn an_unchanged_running_unit_plans_nothing_and_reports_its_state() {
        let running = Canned(
            "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n\
             NeedDaemonReload=no\n#files\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n",
        );
        let json = serde_json::json!({"name": "web", "unit": "", "enabled": true, "state": "started"});
        let plan = plan(json, &running).await.unwrap();
        assert!(!plan.is_change(), "{:?}", plan.changes);
        assert_eq!(plan.outputs["active_state"], "active");
        assert_eq!(plan.outputs["sub_state"], "running");
    }

    /// A package upgrade rewrote the kubelet's unit files: a restart reloads systemd first; a
    /// unit left running as it is does not.
    #[tokio::test]
    async fn stale_unit_files_are_reloaded_before_a_restart_only() {
        let stale = Canned(
            "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n\
             NeedDaemonReload=yes\n#files\n",
        );
        let restart =
            plan(serde_json::json!({"name": "kubelet", "state": "restarted"}), &stale).await.unwrap();
        assert_eq!(
            restart.changes,
            [
                "daemon-reload (systemd has older copies of the unit's files loaded)",
                "restart kubelet.service"
            ]
        );
        for untouched in [
            serde_json::json!({"name": "kubelet", "state": "started"}),
            serde_json::json!({"name": "kubelet", "enabled": true}),
        ] {
            let plan = plan(untouched, &stale).await.unwrap();
            assert!(!plan.is_change(), "{:?}", plan.changes);
        }
        let stopped = plan(serde_json::json!({"name": "kubelet", "state": "stopped"}), &stale).await.unwrap();
        assert_eq!(stopped.changes, ["stop kubelet.service"]);
    }

    #[test]
    fn decides_the_operation() {
        let running = UnitStatus { active_state: "active".into(), ..UnitStatus::default() };
        let stopped = UnitStatus { active_state: "inactive".into(), ..UnitStatus::default() };
        use Operation::*;
        use UnitState::*;
        assert_eq!(operation(Some(Started), &running, false), None);
        assert_eq!(operation(Some(Started), &running, true), Some(Restart));
        assert_eq!(operation(Some(Started), &stopped, true), Some(Start));
        assert_eq!(operation(None, &running, true), Some(Restart));
        assert_eq!(operation(None, &stopped, true), None);
        assert_eq!(operation(Some(Stopped), &running, true), Some(Stop));
        assert_eq!(operation(Some(Stopped), &stopped, false), None);
        assert_eq!(operation(Some(Restarted), &stopped, false), Some(Restart));
        assert_eq!(operation(Some(Reloaded), &running, false), Some(Reload));
        assert_eq!(operation(Some(Reloaded), &running, true), Some(Restart));
        assert_eq!(operation(Some(Reloaded), &stopped, false), Some(Start));
    }
}
