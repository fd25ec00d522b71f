//! The two stages of a module's arguments: [`Sealed`] (a field that may hold a run-time
//! reference is an [`Arg<T>`]) and [`Resolved`] (it is the `T` itself).

use std::fmt::Debug;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use super::Arg;

/// What an argument value must be at every stage: readable from arguments, documented,
/// shared between threads.
pub trait ArgValue: Debug + Clone + Send + Sync + DeserializeOwned + JsonSchema + 'static {}

impl<T: Debug + Clone + Send + Sync + DeserializeOwned + JsonSchema + 'static> ArgValue for T {}

/// A stage of a module's arguments: what a field that may hold a run-time reference is.
pub trait Stage: Debug + Clone + Copy + Send + Sync + 'static {
    /// A field of type `T` that may hold a reference, at this stage.
    type Of<T: ArgValue>: ArgValue;

    /// The value, when it is known at this stage: always once resolved, and at seal when the
    /// playbook wrote it. Rules across fields check what is known, so they hold at seal for
    /// what the playbook wrote and again at run for everything.
    fn known<T: ArgValue>(value: &Self::Of<T>) -> Option<&T>;
}

/// Arguments as the plan is sealed: run-time references are still [`Arg::Later`].
#[derive(Debug, Clone, Copy)]
pub enum Sealed {}

/// Arguments as a module runs with them: every value known.
#[derive(Debug, Clone, Copy)]
pub enum Resolved {}

impl Stage for Sealed {
    type Of<T: ArgValue> = Arg<T>;

    fn known<T: ArgValue>(value: &Arg<T>) -> Option<&T> {
        match value {
            Arg::Known(value) => Some(value),
            Arg::Later(_) => None,
        }
    }
}

impl Stage for Resolved {
    type Of<T: ArgValue> = T;

    fn known<T: ArgValue>(value: &T) -> Option<&T> {
        Some(value)
    }
}
