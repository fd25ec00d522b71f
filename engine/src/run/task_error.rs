//! Why a task did not succeed: the runner's failures as data, turned into a report's status
//! and message only when the task is reported.

use contract::facts::FactError;
use contract::{ArgsError, HostError, ModuleError};

use crate::events::Status;
use crate::plan::refs::Ref;

/// Why one task (or one attempt of it) did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TaskError {
    /// The host could not be reached: none of its tasks can run.
    #[error("{0}")]
    Unreachable(String),
    /// The module failed to plan or apply.
    #[error(transparent)]
    Module(ModuleError),
    /// A run-time value the arguments refer to is not there (another task's output, a fact).
    #[error("{} is not available", .0.describe())]
    Missing(Ref),
    /// The arguments, once their run-time values are filled in, do not suit the module: the
    /// argument at fault and why (a fact that is no `host:port`, say).
    #[error("invalid arguments: {0}")]
    Arguments(ArgsError),
    /// The module is not known to this engine (a plan from another version).
    #[error("unknown module {0}")]
    UnknownModule(&'static str),
    /// The run has no connection for the task's host (a bug: every host of the plan gets one).
    #[error("no connection for host {0}")]
    NoConnection(String),
    /// Gathering a host's facts failed.
    #[error("{0}")]
    Facts(String),
    /// A fact the arguments read did not parse as what it should be (the host reported a
    /// forged or broken value).
    #[error(transparent)]
    Fact(#[from] FactError),
    /// The retry condition never held.
    #[error("`until: {expression}` did not hold after {attempts} attempt(s)")]
    UntilNotMet { expression: String, attempts: u32 },
    /// The retry condition could not be evaluated on the task's outputs.
    #[error("`until: {expression}`: {error}")]
    UntilInvalid { expression: String, error: String },
    /// The `when` condition could not be evaluated on its task's outputs.
    #[error("`when: {expression}`: {error}")]
    ConditionInvalid { expression: String, error: String },
    /// Every attempt of a retried task failed; the last failure.
    #[error("{last} (after {attempts} attempts)")]
    Retried { attempts: u32, last: Box<TaskError> },
    /// `run --plan`: the task's plan is not the one reviewed (the host changed since the
    /// dry-run); nothing was changed.
    #[error(
        "the host no longer matches the reviewed plan, so nothing was changed: reviewed: {}; now: {}; \
         check again and review the new plan",
        changes_text(reviewed),
        changes_text(now)
    )]
    Drift { reviewed: Vec<String>, now: Vec<String> },
    /// A retried task's retries were cut short by the user's stop; the last failure.
    #[error("{0} (retries stopped: the run was interrupted)")]
    Interrupted(Box<TaskError>),
}

/// A plan's change lines as one phrase.
fn changes_text(changes: &[String]) -> String {
    if changes.is_empty() { "no change".to_owned() } else { changes.join("; ") }
}

impl TaskError {
    /// The status a task that failed this way is reported with.
    pub fn status(&self) -> Status {
        match self {
            TaskError::Unreachable(_) => Status::Unreachable,
            TaskError::Retried { last, .. } | TaskError::Interrupted(last) => last.status(),
            _ => Status::Failed,
        }
    }
}

impl From<ModuleError> for TaskError {
    fn from(error: ModuleError) -> Self {
        match error {
            ModuleError::Host(HostError::Unreachable(message)) => TaskError::Unreachable(message),
            other => TaskError::Module(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TaskId;

    #[test]
    fn statuses_and_messages() {
        let lost = TaskError::from(ModuleError::Host(HostError::Unreachable("no route".into())));
        assert_eq!((lost.status(), lost.to_string()), (Status::Unreachable, "no route".to_owned()));
        let missing = TaskError::Missing(Ref::Output { task: TaskId(9), key: "x".into() });
        assert_eq!(missing.to_string(), "output \"x\" of task #9 is not available");
        let retried = TaskError::Retried {
            attempts: 3,
            last: Box::new(TaskError::UntilNotMet { expression: "rc == 0".into(), attempts: 3 }),
        };
        assert_eq!(retried.status(), Status::Failed);
        assert_eq!(
            retried.to_string(),
            "`until: rc == 0` did not hold after 3 attempt(s) (after 3 attempts)"
        );
    }
}
