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
    pub(crate) vars: Map,
    pub(crate) groups: Array,
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
