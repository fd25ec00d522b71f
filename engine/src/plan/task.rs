//! A task: one module invocation on one host, as a node of the plan.

use std::sync::Arc;

use contract::{Module, SealedArgs};
use serde_json::Value;

use super::Location;
use crate::ids::TaskId;

/// One node of the plan.
#[derive(Debug, Clone)]
pub struct Task {
    /// The task's number in the playbook, in order of creation. Stable across `--limit` and
    /// `--tags` (which renumber graph nodes): output references and the journal use it.
    pub id: TaskId,
    /// The task's name, unique on its host.
    pub name: String,
    /// The inventory host it runs on.
    pub host: String,
    /// The module that does the work.
    pub module: &'static str,
    /// The module's arguments. Strings may hold output references of other tasks
    /// (see [`super::refs`]), resolved just before the task runs.
    pub args: Value,
    /// Tags for `--tags` selection.
    pub tags: Vec<String>,
    /// Where the playbook created it.
    pub location: Location,
    /// A handler runs only when a task that notifies it changed something (see [`Edge::Notify`]).
    pub handler: bool,
    /// Try again on failure, or until a condition on the outputs holds.
    pub retry: Option<Retry>,
    /// The module, built from `args` when the plan was sealed, for tasks whose arguments hold
    /// no run-time reference: the runner uses it as it is. Tasks whose arguments read another
    /// task's output or a fact are built from [`Task::sealed`] when they run.
    pub parsed: Option<Arc<dyn Module>>,
    /// `args` read into the module's own argument types and checked when the plan was sealed,
    /// run-time references kept as typed values; the runner fills those in and builds the
    /// module from it, without reading `args` again. Kept only for tasks whose module is built
    /// when they run: a task with [`Task::parsed`] has no use for it.
    pub sealed: Option<Arc<dyn SealedArgs>>,
}

/// A task's retry policy: `t.retry(#{ retries: 5, delay: 2, "until": "'healthy' in stdout" })` (in Rhai,
/// `until` is a keyword, so the key is quoted).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts after the first.
    pub retries: u32,
    /// Seconds between attempts.
    #[serde(default = "Retry::default_delay")]
    pub delay: u64,
    /// A Jinja expression over the task's outputs (`rc == 0 and "healthy" in stdout`); the task
    /// is retried until it holds. Without it, only failures are retried.
    pub until: Option<String>,
}

impl Retry {
    /// Upper bound on `retries`: a retry loop must end.
    pub const MAX_RETRIES: u32 = 1000;
    /// Upper bound on `delay`, in seconds.
    pub const MAX_DELAY: u64 = 3600;

    fn default_delay() -> u64 {
        1
    }
}

impl Task {
    /// `host: name`, the way tasks are named in messages.
    pub fn label(&self) -> String {
        format!("{}: {}", self.host, self.name)
    }
}

/// Why one task must wait for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Edge {
    /// Written earlier on the same host (tasks on a host run in playbook order).
    Order,
    /// Declared with `.after(...)`.
    After,
    /// The later task belongs to the next batch of a `serial(hosts, n, ...)` rolling change:
    /// it waits for the whole batch before it.
    Serial,
    /// The later task reads the earlier one's output.
    Data,
    /// The later task is a handler the earlier one notifies.
    Notify,
}

impl Edge {
    /// The edge's kind as a word, for DOT labels and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Edge::Order => "order",
            Edge::After => "after",
            Edge::Serial => "serial",
            Edge::Data => "data",
            Edge::Notify => "notify",
        }
    }
}
