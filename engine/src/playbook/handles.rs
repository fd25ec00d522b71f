//! The values a playbook holds: hosts and tasks.

use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Array, Map};

use crate::ids::TaskId;
use crate::plan::PlanBuilder;

/// A host from the inventory, as a playbook sees it (`host("etcd0")`, `group("etcd")`).
#[derive(Debug, Clone)]
pub struct HostHandle {
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) vars: HostVars,
    pub(crate) groups: Array,
}

/// A host's merged variables (`h.vars`): reading one the host does not have (`h.vars.greting`)
/// stops the playbook with an error naming the host and the variable, not an empty value; `h.vars.get("x")`
/// is `()` for a missing one, for `h.vars.get("x") ?? default`.
#[derive(Debug, Clone)]
pub(crate) struct HostVars {
    pub(crate) host: String,
    pub(crate) map: Map,
    /// False for the stand-in of an unknown host, already reported: no second error.
    pub(crate) known: bool,
}

/// A task in the plan, returned by every module call (`h.file(...)`), so the playbook can
/// order it (`after`), tag it, and read its outputs (`t.stdout`).
#[derive(Debug, Clone)]
pub struct TaskHandle {
    pub(crate) id: TaskId,
    pub(crate) name: String,
    pub(crate) host: String,
    /// Shared with every handle and with the loader; single-threaded (Rhai runs on one thread).
    pub(crate) plan: Rc<RefCell<PlanBuilder>>,
}
