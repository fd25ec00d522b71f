//! `swap`: no swap now (`swapoff -a` when `/proc/swaps` lists any) and none at the next boot
//! (every active swap line of fstab commented out), as kubeadm requires.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::builtin::file::{self, WantedAttrs};
use crate::builtin::text::{self, Lines};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::run_checked;

const FSTAB: &str = "/etc/fstab";

/// Turns swap off and keeps it off: runs `swapoff -a` when `/proc/swaps` lists an active swap
/// area, and comments out (`#` before it) every line of fstab whose type field is `swap`, so
/// that the next boot enables none. Comments and other lines are kept as they are. With
/// `--diff`, shows the fstab change.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "SwapArgs", bound = "")]
pub struct SwapArgs<S: Stage = Sealed> {
    /// The fstab to edit. Default "/etc/fstab".
    pub fstab: Option<S::Of<AbsolutePath>>,
}

contract::resolve_struct!(SwapArgs<S> { fstab });

impl<S: Stage> Validate for SwapArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        Ok(self)
    }
}

/// The swap areas `/proc/swaps` lists (its first line is a header). Hostile input: a line is
/// an area when it has the five fields.
fn active_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.len() >= 5).then(|| fields[0].to_owned())
        })
        .collect()
}

/// Comments out each fstab line whose third field is `swap`; how many it commented out.
fn comment_out_swap(lines: &mut Lines) -> usize {
    let mut count = 0;
    for line in &mut lines.lines {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if trimmed.split_whitespace().nth(2) == Some("swap") {
            *line = format!("#{line}");
            count += 1;
        }
    }
    count
}

/// The `swap` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Swap {
    args: SwapArgs<Resolved>,
}

impl Swap {
    pub fn new(args: SwapArgs<Resolved>) -> Self {
        Self { args }
    }

    fn fstab(&self) -> &str {
        self.args.fstab.as_ref().map_or(FSTAB, |p| p.as_str())
    }
}

#[async_trait]
impl Module for Swap {
    fn name(&self) -> &'static str {
        "swap"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.fstab().to_owned()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let swaps = run_checked(cx.host, Exec::new("cat /proc/swaps").effect(Effect::ReadOnly)).await?;
        let active = active_swaps(&swaps.stdout_text());
        let mut changes = Vec::new();
        let mut diff = None;
        let mut write = None;
        if let Some((stat, text)) = text::read_text(cx.host, self.fstab()).await? {
            let mut lines = Lines::parse(&text);
            let count = comment_out_swap(&mut lines);
            if count > 0 {
                let after = lines.text();
                let plan = file::plan_content(
                    cx.host,
                    self.fstab(),
                    Some(stat),
                    after.as_bytes(),
                    &WantedAttrs::default(),
                    cx.options,
                )
                .await?;
                changes.push(format!("comment out {count} swap line(s) of {}", self.fstab()));
                changes.extend(plan.changes);
                diff = plan.diff;
                write = plan.action;
            }
        }
        if !active.is_empty() {
            changes.insert(0, format!("swapoff -a (active: {})", active.join(", ")));
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        Ok(Plan {
            changes,
            diff,
            action: Some(Box::new(SwapAction { swapoff: !active.is_empty(), write })),
            ..Plan::default()
        })
    }
}

/// `swapoff -a` when swap was active, then the planned fstab write.
#[derive(Debug)]
struct SwapAction {
    swapoff: bool,
    write: Option<Box<dyn Action>>,
}

#[async_trait]
impl Action for SwapAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        if self.swapoff {
            run_checked(host, Exec::new("swapoff -a")).await?;
        }
        if let Some(write) = self.write {
            write.apply(host).await?;
        }
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_swaps_are_read_from_proc_swaps() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile  file  1048572  0  -2\n/dev/sda2 partition 2097148 0 -3\ngarbage\n";
        assert_eq!(active_swaps(text), ["/swapfile", "/dev/sda2"]);
        assert!(active_swaps("Filename Type Size Used Priority\n").is_empty());
        assert!(active_swaps("").is_empty());
    }

    #[test]
    fn only_active_swap_lines_are_commented_out_once() {
        let fstab = "# <file system> <mount point> <type>\nUUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n  UUID=2 none swap sw 0 0\n#/old none swap sw 0 0\n";
        let mut lines = Lines::parse(fstab);
        assert_eq!(comment_out_swap(&mut lines), 2);
        assert_eq!(
            lines.text(),
            "# <file system> <mount point> <type>\nUUID=1 / ext4 defaults 0 1\n#/swapfile none swap sw 0 0\n#  UUID=2 none swap sw 0 0\n#/old none swap sw 0 0\n"
        );
        assert_eq!(comment_out_swap(&mut lines), 0, "a second pass changes nothing");
    }
}
