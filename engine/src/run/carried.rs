//! Tasks a resumed run does not rerun.

use std::collections::HashSet;

use crate::events::Status;
use crate::ids::TaskId;

/// What a resumed run carries over from the journal it resumes.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    /// Tasks left out: reported as done in an earlier run (see [`crate::events::Event::TaskDone`]).
    pub tasks: Vec<CarriedTask>,
    /// Ids of rerun handlers that a left-out task notified (it changed something before).
    pub notified: HashSet<TaskId>,
}

/// One task done in an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedTask {
    pub id: TaskId,
    pub host: String,
    pub task: String,
    /// Its status there (`ok` or `changed`).
    pub status: Status,
    /// The id of the run it finished in.
    pub run: String,
}
