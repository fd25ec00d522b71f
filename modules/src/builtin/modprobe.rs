//! `modprobe`: a kernel module loaded now and listed in `/etc/modules-load.d/NAME.conf` for
//! every boot, or (`state: absent`) unloaded and no longer listed there.
//!
//! Whether a module is in the running kernel is read, never assumed (one round trip): its
//! `/sys/module/NAME` directory, `/proc/modules`, the kernel's `modules.builtin` list, and for
//! two modules whose presence the kernel shows elsewhere, that evidence (see
//! [`KERNEL_EVIDENCE`]): a container sees no `/sys/module` of its host, yet it sees the
//! `overlay` filesystem and the `net.bridge` settings.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::builtin::file;
use crate::builtin::sysctl::is_conf_name;
use crate::builtin::text;
use crate::validate::Validate;
use contract::diff::unified_diff;
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, run_checked};
use contract::shell::quote;

/// Modules the kernel shows the presence of beyond `/sys/module`: the name, and a shell test
/// that holds exactly when the module's code runs in the kernel. kubeadm's own preflight reads
/// the same `/proc/sys/net/bridge` file.
const KERNEL_EVIDENCE: &[(&str, &str)] = &[
    ("overlay", "grep -qx 'nodev[[:space:]]*overlay' /proc/filesystems"),
    ("br_netfilter", "[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]"),
];

/// Loads a kernel module and makes it load at every boot: `/etc/modules-load.d/NAME.conf`
/// holds its name. The module counts as loaded when `/sys/module/NAME` exists, `/proc/modules`
/// lists it, the running kernel's `modules.builtin` lists it, or (for `overlay` and
/// `br_netfilter`) the kernel offers what it provides (the `overlay` filesystem, the
/// `net.bridge` settings). Otherwise applying runs `modprobe NAME`; where that cannot work (a
/// container cannot load kernel modules) the task fails naming the module, after the
/// boot-time file was written: load it on the machine that runs the container.
///
/// `state: absent` (as community.general.modprobe's): the module's line leaves
/// `/etc/modules-load.d/NAME.conf` (the file is removed when nothing else is left in it), and a
/// loaded module is unloaded with `modprobe -r`. Refused before anything changes: a module in
/// use (the message names its users), one built into the kernel, and one the host sees only
/// through what it provides (a container shares its machine's kernel and cannot unload it:
/// unload it on that machine).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModprobeArgs {
    /// The kernel module's name: letters, digits, `_` and `-`, e.g. "br_netfilter".
    pub name: String,
    /// Loaded (`present`, the default) or unloaded (`absent`).
    #[serde(default)]
    pub state: ModuleState,
    /// Also keep /etc/modules-load.d/NAME.conf so that it loads at boot (with `absent`: take it
    /// out of that file). Default true.
    #[serde(default = "yes")]
    pub persist: bool,
}

/// Whether a kernel module should be loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModuleState {
    /// Loaded now, and at boot with `persist`.
    #[default]
    Present,
    /// Not loaded, and not loaded at boot by its modules-load.d file.
    Absent,
}

contract::resolve_as_is!(ModuleState);

fn yes() -> bool {
    true
}

contract::resolve_struct!(ModprobeArgs { name, state, persist });

fn is_module_name(name: &str) -> bool {
    (1..=56).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

impl Validate for ModprobeArgs {
    fn validate(self) -> Result<Self, ArgsError> {
        if !is_module_name(&self.name) || !is_conf_name(&self.name) {
            return Err(ArgsError::invalid(
                "name",
                format!(
                    "{:?} is not a kernel module name: letters, digits, _ and -, e.g. br_netfilter",
                    self.name
                ),
            ));
        }
        Ok(self)
    }
}

/// The kernel names a module with `_` where its file may have `-`.
fn kernel_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Prints `loaded BY` (what showed it) or `absent`, and whether `modprobe` exists.
fn probe_script(name: &str) -> String {
    let kname = kernel_name(name);
    let q = quote(&kname);
    let mut script = format!(
        "m={q}; if [ -d \"/sys/module/$m\" ]; then echo 'loaded /sys/module'; \
         elif grep -q \"^$m \" /proc/modules 2>/dev/null; then echo 'loaded /proc/modules'; \
         elif grep -qE \"/$m\\.ko(\\.[a-z]+)?\\$\" \"/lib/modules/$(uname -r)/modules.builtin\" 2>/dev/null; \
         then echo 'loaded modules.builtin'; "
    );
    if let Some((_, test)) = KERNEL_EVIDENCE.iter().find(|(n, _)| *n == kname) {
        script.push_str(&format!("elif {test}; then echo 'loaded kernel'; "));
    }
    script.push_str("else echo absent; fi");
    script
}

/// What unloading a module finds, as [`unload_probe_script`] prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Loaded {
    /// Not in the running kernel.
    No,
    /// A loadable module, with its reference count and the modules using it.
    Loadable { refs: u32, holders: Vec<String> },
    /// Built into the kernel image.
    Builtin,
    /// The kernel offers what it provides, but the host sees no `/sys/module` entry or
    /// `/proc/modules` line for it: a container, which shares its machine's kernel.
    Elsewhere,
}

/// Prints one line: `absent`, `loadable REFS HOLDER,HOLDER,` (from `/sys/module`, or
/// `/proc/modules`' use count and users), `builtin`, or `kernel`.
fn unload_probe_script(name: &str) -> String {
    let q = quote(&kernel_name(name));
    let mut script = format!(
        "m={q}; s=/sys/module/$m; if [ -e \"$s/initstate\" ]; then \
         printf 'loadable %s ' \"$(cat \"$s/refcnt\")\"; ls -- \"$s/holders\" 2>/dev/null | tr '\\n' ,; echo; \
         elif l=$(grep \"^$m \" /proc/modules 2>/dev/null); then \
         echo \"$l\" | awk '{{ u = $4; if (u == \"-\") u = \"\"; print \"loadable\", $3, u }}'; \
         elif [ -d \"$s\" ] || grep -qE \"/$m\\.ko(\\.[a-z]+)?\\$\" \"/lib/modules/$(uname -r)/modules.builtin\" 2>/dev/null; \
         then echo builtin; "
    );
    if let Some((_, test)) = KERNEL_EVIDENCE.iter().find(|(n, _)| *n == kernel_name(name)) {
        script.push_str(&format!("elif {test}; then echo kernel; "));
    }
    script.push_str("else echo absent; fi");
    script
}

/// Reads [`unload_probe_script`]'s line, as hostile input.
fn parse_loaded(text: &str) -> Option<Loaded> {
    let line = text.trim_end_matches('\n');
    if line.contains('\n') {
        return None;
    }
    match line {
        "absent" => Some(Loaded::No),
        "builtin" => Some(Loaded::Builtin),
        "kernel" => Some(Loaded::Elsewhere),
        _ => {
            let rest = line.strip_prefix("loadable ")?;
            let (refs, holders) = rest.split_once(' ').unwrap_or((rest, ""));
            let holders: Vec<String> =
                holders.trim().split(',').filter(|h| !h.is_empty()).map(str::to_owned).collect();
            if !holders.iter().all(|h| is_module_name(h)) {
                return None;
            }
            Some(Loaded::Loadable { refs: refs.parse().ok()?, holders })
        }
    }
}

/// The boot-time file without the module's own lines: `None` when nothing but blank lines
/// and comments is left (the file goes).
fn without_module(text: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = text.lines().filter(|l| kernel_name(l.trim()) != kernel_name(name)).collect();
    if kept.iter().all(|l| l.trim().is_empty() || l.trim_start().starts_with(['#', ';'])) {
        return None;
    }
    Some(kept.iter().map(|l| format!("{l}\n")).collect())
}

/// The `modprobe` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Modprobe {
    args: ModprobeArgs,
}

impl Modprobe {
    pub fn new(args: ModprobeArgs) -> Self {
        Self { args }
    }

    fn conf(&self) -> String {
        format!("/etc/modules-load.d/{}.conf", self.args.name)
    }
}

#[async_trait]
impl Module for Modprobe {
    fn name(&self) -> &'static str {
        "modprobe"
    }

    fn probes(&self) -> Vec<String> {
        if self.args.persist { vec![self.conf()] } else { Vec::new() }
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        if self.args.state == ModuleState::Absent {
            return self.plan_absent(cx).await;
        }
        let name = &self.args.name;
        let out =
            run_checked(cx.host, Exec::new(probe_script(name)).effect(Effect::ReadOnly)).await?.stdout_text();
        let loaded = match out.lines().last() {
            Some(line) if line.starts_with("loaded ") => true,
            Some("absent") => false,
            _ => {
                return Err(ModuleError::Refused(format!(
                    "cannot tell whether kernel module {name} is loaded: unexpected answer {out:?}"
                )));
            }
        };
        let mut changes = Vec::new();
        let mut write = None;
        let mut diff = None;
        if self.args.persist {
            let path = self.conf();
            let content = format!("{name}\n");
            let plan = file::plan_owned_file(cx.host, &path, content.as_bytes(), cx.options).await?;
            changes.extend(plan.changes);
            diff = plan.diff;
            write = plan.action;
        }
        if !loaded {
            changes.push(format!("load kernel module {name}"));
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        Ok(Plan {
            changes,
            diff,
            action: Some(Box::new(ModprobeAction { write, load: (!loaded).then(|| name.clone()) })),
            ..Plan::default()
        })
    }
}

impl Modprobe {
    async fn plan_absent(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let name = &self.args.name;
        let host = cx.host.name();
        let out = run_checked(cx.host, Exec::new(unload_probe_script(name)).effect(Effect::ReadOnly))
            .await?
            .stdout_text();
        let loaded = parse_loaded(&out).ok_or_else(|| {
            ModuleError::Refused(format!(
                "cannot tell whether kernel module {name} is loaded on {host}: unexpected answer {:?}",
                contract::untrusted::printable(&out)
            ))
        })?;
        let unload = match loaded {
            Loaded::No => false,
            Loaded::Loadable { refs: 0, ref holders } if holders.is_empty() => true,
            Loaded::Loadable { refs, holders } => {
                let users = if holders.is_empty() {
                    String::new()
                } else {
                    format!(", used by {}", holders.join(", "))
                };
                return Err(ModuleError::Refused(format!(
                    "kernel module {name} is in use on {host} ({refs} references{users}): unload what uses it first; nothing was changed"
                )));
            }
            Loaded::Builtin => {
                return Err(ModuleError::Refused(format!(
                    "kernel module {name} is built into the kernel of {host}: it cannot be unloaded; nothing was changed"
                )));
            }
            Loaded::Elsewhere => {
                return Err(ModuleError::Refused(format!(
                    "kernel module {name} is in the running kernel, but {host} cannot unload it: it sees no \
                     /sys/module/{} (a container shares the kernel of the machine that runs it: unload it there); \
                     nothing was changed",
                    kernel_name(name)
                )));
            }
        };
        let mut changes = Vec::new();
        let mut diff = None;
        let mut edit = None;
        if self.args.persist {
            let path = self.conf();
            if let Some((_, text)) = text::read_text(cx.host, &path).await? {
                match without_module(&text, name) {
                    None => {
                        changes.push(format!("remove {path}"));
                        if cx.options.diff {
                            diff = Some(unified_diff(&path, Some(text.as_bytes()), b""));
                        }
                        edit = Some(Edit::Remove(path));
                    }
                    Some(kept) if kept != text => {
                        let plan = file::plan_owned_file(cx.host, &path, kept.as_bytes(), cx.options).await?;
                        changes.extend(plan.changes);
                        diff = plan.diff;
                        edit = plan.action.map(Edit::Write);
                    }
                    Some(_) => {}
                }
            }
        }
        if unload {
            changes.push(format!("unload kernel module {name}"));
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        Ok(Plan {
            changes,
            diff,
            action: Some(Box::new(UnloadAction { edit, unload: unload.then(|| name.clone()) })),
            ..Plan::default()
        })
    }
}

/// How the boot-time file changes when a module goes.
#[derive(Debug)]
enum Edit {
    Remove(String),
    Write(Box<dyn Action>),
}

/// The planned edit of the boot-time file (if any), then `modprobe -r` when the module was loaded.
#[derive(Debug)]
struct UnloadAction {
    edit: Option<Edit>,
    unload: Option<String>,
}

#[async_trait]
impl Action for UnloadAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        match self.edit {
            Some(Edit::Remove(path)) => remote::remove(host, &path).await?,
            Some(Edit::Write(write)) => {
                write.apply(host).await?;
            }
            None => {}
        }
        if let Some(name) = self.unload {
            let out = host.exec(Exec::new(format!("modprobe -r -- {}", quote(&name)))).await?;
            if !out.success() {
                return Err(ModuleError::Refused(format!(
                    "cannot unload kernel module {name}: {}",
                    out.stderr_tail(3).trim()
                )));
            }
        }
        Ok(Outputs::new())
    }
}

/// The planned boot-time file (if any), then `modprobe` when the module was not loaded.
#[derive(Debug)]
struct ModprobeAction {
    write: Option<Box<dyn Action>>,
    load: Option<String>,
}

#[async_trait]
impl Action for ModprobeAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        if let Some(write) = self.write {
            write.apply(host).await?;
        }
        if let Some(name) = self.load {
            let out = host.exec(Exec::new(format!("modprobe -- {}", quote(&name)))).await?;
            if !out.success() {
                return Err(ModuleError::Refused(format!(
                    "cannot load kernel module {name}: {} (a container cannot load kernel modules: \
                     load it on the machine that runs it)",
                    out.stderr_tail(3).trim()
                )));
            }
        }
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_plain_words() {
        for good in ["br_netfilter", "overlay", "nf-conntrack", "ip_vs_rr"] {
            assert!(is_module_name(good), "{good}");
        }
        for bad in ["-r", "../x", "a b", "", "a/b", "x.ko"] {
            assert!(!is_module_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_unload_probe_is_read_as_hostile_input() {
        assert_eq!(parse_loaded("absent\n"), Some(Loaded::No));
        assert_eq!(parse_loaded("kernel"), Some(Loaded::Elsewhere));
        assert_eq!(parse_loaded("builtin"), Some(Loaded::Builtin));
        assert_eq!(parse_loaded("loadable 0 \n"), Some(Loaded::Loadable { refs: 0, holders: vec![] }));
        assert_eq!(
            parse_loaded("loadable 2 br_netfilter,nf_nat,\n"),
            Some(Loaded::Loadable { refs: 2, holders: vec!["br_netfilter".into(), "nf_nat".into()] })
        );
        assert_eq!(parse_loaded("loadable 1 x\x1b[2J"), None);
        assert_eq!(parse_loaded("loadable -1 "), None);
        assert_eq!(parse_loaded("absent\nabsent"), None);
        assert_eq!(parse_loaded(""), None);
    }

    #[test]
    fn absent_takes_only_the_modules_own_lines_out_of_its_file() {
        assert_eq!(without_module("br_netfilter\n", "br_netfilter"), None);
        assert_eq!(without_module("# boot\nbr-netfilter\n\n", "br_netfilter"), None);
        assert_eq!(without_module("overlay\nbr_netfilter\n", "br_netfilter"), Some("overlay\n".into()));
        assert_eq!(without_module("overlay\n", "br_netfilter"), Some("overlay\n".into()));
    }

    /// The unload probe runs in a real shell: a module no kernel has is absent.
    #[test]
    fn the_unload_probe_answers_absent_for_a_module_no_kernel_has() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(unload_probe_script("engine-no-such-module"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "absent\n");
    }

    /// The probe runs in a real shell: here it finds what this machine's kernel has, and never
    /// claims a module that does not exist.
    #[test]
    fn the_probe_answers_absent_for_a_module_no_kernel_has() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe_script("engine-no-such-module"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "absent\n");
        assert!(probe_script("br_netfilter").contains("/proc/sys/net/bridge/bridge-nf-call-iptables"));
    }
}
