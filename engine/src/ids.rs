//! The three kinds of number the engine hands around, as types, so that one cannot be passed
//! where another is meant.
//!
//! ```text
//!  TaskId  a task's number in its playbook, in order of creation. Stable across --limit,
//!          --tags and --resume (which keep only some tasks): output references, events and
//!          the run journal use it.
//!  NodeId  a task's place in one plan's graph (a selected plan numbers its nodes anew):
//!          the walker, the runner and the reports of one run use it.
//!  HostId  a host's place among the hosts of one plan: the walker's per-host limit uses it.
//! ```

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub usize);

        impl $name {
            pub const fn new(index: usize) -> Self {
                Self(index)
            }

            /// The number itself, for indexing the vectors it was handed out for.
            pub const fn index(self) -> usize {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id!(
    /// A task's number in its playbook (see the module docs).
    TaskId,
    "#"
);
id!(
    /// A task's place in one plan's graph (see the module docs).
    NodeId,
    "node "
);
id!(
    /// A host's place among the hosts of one plan (see the module docs).
    HostId,
    "host "
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_plain_numbers_and_display_with_their_kind() {
        assert_eq!(serde_json::to_string(&TaskId::new(7)).unwrap(), "7");
        assert_eq!(serde_json::from_str::<TaskId>("7").unwrap(), TaskId::new(7));
        assert_eq!(TaskId::new(7).to_string(), "#7");
        assert_eq!(NodeId::new(3).index(), 3);
    }
}
