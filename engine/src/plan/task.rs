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
    pub args: Args,
    /// Tags for `--tags` selection.
    pub tags: Vec<String>,
    /// Where the playbook created it.
    pub location: Location,
    /// The `section("...")` of the playbook it was written in, if any: drawn as a cluster.
    /// Assigned by the builder, from the last `section(...)` call before the task.
    pub section: Option<Arc<str>>,
    /// A handler runs only when a task that notifies it changed something (see [`Edge::Notify`]).
    pub handler: bool,
    /// Runs once the tasks it waits for have ended, also when one failed or was skipped (a
    /// cleanup: the uncordon after a failed drain). Its own dependents wait for its outcome.
    pub always: bool,
    /// Runs only if a condition on another task's outputs holds (`t.when(source, "expr")`).
    pub when: Option<When>,
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

/// `t.when(source, "rc == 0 and stdout != 'v1.31.1'")`: the task runs only if the Jinja
/// expression holds over `source`'s outputs; otherwise it reports `ok`, saying why it did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    /// The task whose outputs the expression reads (the task waits for it, as for data).
    pub task: TaskId,
    pub expression: String,
    /// The outputs the expression reads (its top-level names), kept for it.
    pub reads: Vec<String>,
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

/// A task's arguments as the playbook wrote them (run-time references as markers), held as
/// JSON text. The plan keeps one per task for as long as it lives, and as a [`Value`] tree
/// (a map node per object) W1's arguments take about ten times their text: some 200 MB at
/// 10,000 hosts. Read back with [`Args::value`] by the few that need the tree: sealing,
/// fingerprints, the runner's scan for secret-named arguments, and tasks whose arguments wait
/// for run-time values.
#[derive(Clone, PartialEq)]
pub struct Args(Repr);

#[derive(Clone, PartialEq)]
enum Repr {
    Text(Box<str>),
    /// Nested deeper than JSON text is read back (serde_json stops at 128 levels): the tree.
    Tree(Box<Value>),
}

impl Args {
    /// Values nested deeper than this stay a tree (JSON text is read back to 128 levels).
    const MAX_TEXT_DEPTH: usize = 100;

    pub fn new(value: Value) -> Self {
        if depth(&value) > Self::MAX_TEXT_DEPTH {
            Self(Repr::Tree(Box::new(value)))
        } else {
            Self(Repr::Text(value.to_string().into_boxed_str()))
        }
    }

    /// The arguments as a tree, read back from the text.
    pub fn value(&self) -> Value {
        match &self.0 {
            // Written by `Value`'s own `Display` from a tree no deeper than serde_json reads.
            Repr::Text(text) => serde_json::from_str(text).expect("a task's argument text reads back"),
            Repr::Tree(value) => (**value).clone(),
        }
    }

    /// Whether a string in the arguments may hold a run-time reference: `false` means none
    /// does, without reading the text back (markers are never escaped in JSON text).
    pub fn may_hold_references(&self) -> bool {
        match &self.0 {
            Repr::Text(text) => text.contains(contract::deferred::open()),
            Repr::Tree(_) => true,
        }
    }
}

impl From<Value> for Args {
    fn from(value: Value) -> Self {
        Self::new(value)
    }
}

impl PartialEq<Value> for Args {
    fn eq(&self, other: &Value) -> bool {
        self.value() == *other
    }
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Text(text) => f.write_str(text),
            Repr::Tree(value) => write!(f, "{value}"),
        }
    }
}

/// How deeply arrays and objects nest in `value` (a scalar is 0).
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arguments_read_back_as_written() {
        let value = json!({"path": "/tmp/x", "vars": {"i": 3, "f": 0.1, "big": u64::MAX, "neg": -7, "list": [null, true, "é\n\""]}});
        let args = Args::new(value.clone());
        assert!(matches!(args.0, Repr::Text(_)));
        assert_eq!(args.value(), value);
        assert!(!args.may_hold_references());
        let marker = crate::plan::refs::marker(crate::ids::TaskId(4), "stdout");
        assert!(Args::new(json!({"content": format!("x {marker} y")})).may_hold_references());
    }

    #[test]
    fn arguments_nested_past_what_json_text_reads_back_stay_a_tree() {
        let mut deep = json!("leaf");
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let args = Args::new(json!({ "content": deep }));
        assert!(matches!(args.0, Repr::Tree(_)));
        assert_eq!(args.value(), json!({ "content": deep }));
        assert!(args.may_hold_references());
    }
}
