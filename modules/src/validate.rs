//! A module's own rules about its arguments, checked when they are sealed and again once
//! resolved (see [`crate::registry`]), and, for tests, arguments read the way a task's are.

#[cfg(test)]
use contract::arg::{NoReferences, Resolve, Resolving};
use contract::error::ArgsError;
#[cfg(test)]
use serde::de::DeserializeOwned;
#[cfg(test)]
use serde_json::Value;

/// A module's own rules about its arguments (which combinations make sense, which values
/// must agree), checked at both stages: at seal on the values the playbook wrote (through
/// [`contract::arg::Stage::known`]), and on every value once resolved. It may also put the
/// arguments in their normal form (`etcd` -> `etcd.service`): only the resolved stage's is
/// kept, so each value is normalized once, and a mistake is reported as the playbook wrote it.
pub(crate) trait Validate: Sized {
    fn validate(self) -> Result<Self, ArgsError>;
}

/// Arguments that hold no run-time reference, read, checked and resolved as a task's would
/// be: for tests, which build a module from them.
#[cfg(test)]
pub(crate) fn resolved<A>(value: Value) -> Result<A::Resolved, ArgsError>
where
    A: DeserializeOwned + Validate + Resolve,
    A::Resolved: Validate,
{
    let args: A = contract::args::from_value::<A>(value)?.validate()?;
    args.resolve(&mut Resolving::new(&mut NoReferences))?.validate()
}
