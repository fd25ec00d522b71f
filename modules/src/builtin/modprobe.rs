//! `modprobe`: a kernel module loaded now and listed in `/etc/modules-load.d/NAME.conf` for
//! every boot.
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
use crate::validate::Validate;
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::run_checked;
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
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModprobeArgs {
    /// The kernel module's name: letters, digits, `_` and `-`, e.g. "br_netfilter".
    pub name: String,
    /// Also list it in /etc/modules-load.d/NAME.conf so that it loads at boot. Default true.
    #[serde(default = "yes")]
    pub persist: bool,
}

fn yes() -> bool {
    true
}

contract::resolve_struct!(ModprobeArgs { name, persist });

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
