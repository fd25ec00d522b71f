//! `engine run --plan`: each task's plan, checked against the one reviewed before the run.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ids::TaskId;

/// What a task of a reviewed plan must plan when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Exactly the reviewed changes (their digest), shown as `changes`.
    Planned { digest: String, changes: Vec<String> },
    /// The dry-run could not know (it waited for an earlier task's output): the task runs as
    /// planned then.
    NotKnown,
}

/// The keyed digest of a task's planned changes and diff (the reviewed plan's).
pub type Digest = Arc<dyn Fn(&[String], Option<&str>) -> String + Send + Sync>;

/// The reviewed plan a run applies: every task's expected plan, and how to digest a plan.
#[derive(Clone)]
pub struct Reviewed {
    pub expected: HashMap<TaskId, Expected>,
    pub digest: Digest,
}

impl std::fmt::Debug for Reviewed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviewed").field("expected", &self.expected.len()).finish_non_exhaustive()
    }
}

impl Reviewed {
    /// `Err` with the reviewed changes when task `id`'s plan (`changes`, `diff`) is not the
    /// one reviewed: the host drifted since the dry-run.
    pub fn verify(&self, id: TaskId, changes: &[String], diff: Option<&str>) -> Result<(), Vec<String>> {
        match self.expected.get(&id) {
            Some(Expected::Planned { digest, changes: reviewed })
                if *digest != (self.digest)(changes, diff) =>
            {
                Err(reviewed.clone())
            }
            _ => Ok(()),
        }
    }
}
