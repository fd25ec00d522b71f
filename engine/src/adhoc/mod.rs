//! Ad hoc commands (`engine exec`, Ansible's `ansible PATTERN -a ...`): one `command` task per
//! host the pattern selects, sealed into a [`Plan`] like a playbook's, and run by the same
//! runner over the same transport. The graph is data here too: nothing runs while it is built.
//!
//! ```text
//!  engine exec -i inv 'web*:!web3' -- uptime
//!    web1: command "uptime"      web2: command "uptime"      (no edges: all hosts at once)
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::Error;
use crate::ids::TaskId;
use crate::inventory::Inventory;
use crate::plan::{Location, Plan, PlanBuilder, Task};

pub mod ping;

/// What to run, and as whom.
#[derive(Debug, Clone, Default)]
pub struct AdHoc {
    /// One word: a shell command line (`sh -c`, Ansible's `-m shell`); several: a program and
    /// its arguments, each quoted, nothing interpreted by a shell (Ansible's `-m command`).
    pub command: Vec<String>,
    /// Run it through become (`-b`): sets `ansible_become` on hosts whose inventory does not
    /// (inventory connection variables win over the command line, as in Ansible).
    pub become_: bool,
    /// The become user (`--become-user`), likewise unless the host sets `ansible_become_user`.
    pub become_user: Option<String>,
    /// Seconds before the command is killed on a host.
    pub timeout: Option<u64>,
}

/// The name the plan and its report give the ad hoc "playbook".
pub const PLAYBOOK: &str = "engine exec";

impl AdHoc {
    /// The sealed plan of `self` on the hosts `patterns` select in `inventory` (Ansible's
    /// patterns, as `--limit` reads them), with the inventory it runs against.
    pub fn plan(&self, inventory: &Inventory, patterns: &[String]) -> Result<Plan, Error> {
        if self.command.is_empty() || self.command.iter().all(|w| w.trim().is_empty()) {
            return Err(Error::Usage(
                "give the command after `--`: engine exec -i INV PATTERN -- COMMAND...".into(),
            ));
        }
        let hosts = inventory.resolve_patterns(patterns).map_err(Error::Usage)?;
        let inventory = self.with_become(inventory, &hosts);
        let mut builder = PlanBuilder::new(PathBuf::from(PLAYBOOK));
        let mut args = match self.command.as_slice() {
            [line] => json!({ "cmd": line }),
            words => json!({ "argv": words }),
        };
        if let Some(timeout) = self.timeout {
            args["timeout"] = Value::from(timeout);
        }
        let name = self.command.join(" ");
        let args = crate::plan::Args::new(args);
        for host in hosts {
            builder.add_task(Task {
                id: TaskId(0),
                name: name.clone(),
                host,
                module: "command",
                args: args.clone(),
                tags: Vec::new(),
                location: Location { file: Arc::from(PLAYBOOK), line: 0, col: 0 },
                section: None,
                handler: false,
                always: false,
                when: None,
                retry: None,
                parsed: None,
                sealed: None,
            });
        }
        Ok(builder.seal(&inventory)?)
    }

    fn with_become(&self, inventory: &Inventory, hosts: &[String]) -> Inventory {
        let mut vars = crate::inventory::Vars::new();
        if self.become_ {
            vars.insert("ansible_become".into(), Value::Bool(true));
        }
        if let Some(user) = &self.become_user {
            vars.insert("ansible_become_user".into(), Value::String(user.clone()));
        }
        if vars.is_empty() { inventory.clone() } else { inventory.with_default_vars(hosts, &vars) }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn inventory() -> Inventory {
        let text = "all:\n  hosts:\n    web1: {}\n    web2: {ansible_become: false}\n    db1: {}\n";
        Inventory::parse(text, Path::new("inv.yml")).unwrap()
    }

    /// One task per selected host, no edges: every host runs at once.
    #[test]
    fn one_command_task_per_selected_host_and_no_edges() {
        let adhoc = AdHoc { command: vec!["uptime".into()], ..AdHoc::default() };
        let plan = adhoc.plan(&inventory(), &["web*".into()]).unwrap();
        let tasks: Vec<(&str, &str, Value)> =
            plan.tasks().map(|(_, t)| (t.host.as_str(), t.module, t.args.value())).collect();
        let args = json!({ "cmd": "uptime" });
        assert_eq!(tasks, [("web1", "command", args.clone()), ("web2", "command", args)]);
        assert!(plan.edges().is_empty());
        let argv = AdHoc { command: vec!["ls".into(), "-l; rm x".into()], ..AdHoc::default() };
        let plan = argv.plan(&inventory(), &["db1".into()]).unwrap();
        assert_eq!(plan.task(crate::ids::NodeId(0)).args, json!({ "argv": ["ls", "-l; rm x"] }));
    }

    /// `-b` becomes on hosts whose inventory says nothing; the inventory's own setting wins.
    #[test]
    fn become_from_the_command_line_yields_to_the_inventory() {
        let adhoc = AdHoc { command: vec!["id".into()], become_: true, ..AdHoc::default() };
        let plan = adhoc.plan(&inventory(), &["web*".into()]).unwrap();
        let become_user = |name: &str| plan.inventory().host(name).unwrap().connection().unwrap().become_user;
        assert_eq!(become_user("web1").as_deref(), Some("root"));
        assert_eq!(become_user("web2"), None);
    }

    #[test]
    fn no_command_or_no_host_is_refused() {
        let none = AdHoc::default().plan(&inventory(), &["all".into()]).unwrap_err().to_string();
        assert!(none.contains("give the command after `--`"), "{none}");
        let adhoc = AdHoc { command: vec!["id".into()], ..AdHoc::default() };
        let e = adhoc.plan(&inventory(), &["nosuch".into()]).unwrap_err().to_string();
        assert!(e.contains("names no host or group"), "{e}");
    }
}
