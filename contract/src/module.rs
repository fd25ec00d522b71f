//! The module contract: `plan` reads, `apply` changes exactly what was planned.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::arg::Resolver;
use crate::error::{ArgsError, ModuleError};
use crate::facts::Facts;
use crate::host::Host;

/// Values a task produces for later tasks (for example `stdout` and `rc` of a command).
pub type Outputs = Map<String, Value>;

/// How planning should behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Produce a unified diff for file-like changes (costs one extra read when content differs).
    pub diff: bool,
    /// Check mode only: a task this one waits for would have changed the host, and did not
    /// (nothing changes in check mode), so the host is not as the real run would find it.
    /// Modules whose plan waits for a condition (`wait`) give up at once instead of waiting
    /// for something that cannot happen.
    pub pending_changes: bool,
}

/// Other hosts of the run, for modules that move data between machines (`scp`).
pub trait Peers: Send + Sync {
    /// The host named `name` in the inventory, if the run has it.
    fn peer(&self, name: &str) -> Option<Arc<dyn Host>>;
}

/// No other hosts: for runs and tests that need none.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers;

impl Peers for NoPeers {
    fn peer(&self, _name: &str) -> Option<Arc<dyn Host>> {
        None
    }
}

/// Everything a module sees while it plans.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The host the task runs on.
    pub host: &'a dyn Host,
    pub options: PlanOptions,
    /// The host's facts (see [`crate::facts`]); gathered once per host and run, and only
    /// when the module asks for them with [`Module::wants_facts`]. Typed: a fact the host
    /// reported that did not parse fails its reader ([`Facts::lookup`]).
    pub facts: Option<&'a Facts>,
    /// The other hosts of the run.
    pub peers: &'a dyn Peers,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("host", &self.host.name())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    /// A context with no facts and no peers.
    pub fn new(host: &'a dyn Host, options: PlanOptions) -> Self {
        Self { host, options, facts: None, peers: &NoPeers }
    }
}

/// A typed, validated task ready to run against one host.
///
/// `plan` only reads the host. It returns a [`Plan`] that says what would change and holds,
/// in its [`Action`], exactly those changes; nothing else is ever applied.
#[async_trait]
pub trait Module: Send + Sync + Debug {
    /// The module's name, as playbooks call it (`file`, `command`, ...).
    fn name(&self) -> &'static str;

    /// Reads the host and decides what to change. Must not modify the host.
    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError>;

    /// Whether `plan` needs the host's facts in [`Context::facts`]. Gathering costs a round
    /// trip, so only modules that use them say yes.
    fn wants_facts(&self) -> bool {
        false
    }

    /// The paths `plan` will stat, so the runner can stat every path of a host's tasks in
    /// one round trip before they run (see [`crate::remote::stat_many`]). A hint only: the
    /// module still calls [`crate::remote::stat`], which uses the answer while it is current.
    fn probes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A task's arguments as the plan was sealed: read into the module's own argument type and
/// checked, run-time references still in them (as [`crate::arg::Arg::Later`]). The runner
/// builds the module from it once those values are known.
pub trait SealedArgs: Send + Sync + Debug {
    /// The module, with every run-time reference filled in by `resolver`. Fails with the
    /// argument at fault when a filled-in value does not suit it (a fact that is no address).
    fn build(&self, resolver: &mut dyn Resolver) -> Result<Box<dyn Module>, ArgsError>;
}

/// The changes a module would make, with the action that makes them.
#[derive(Debug, Default)]
pub struct Plan {
    /// One human-readable line per change ("create /etc/x", "mode 0644 -> 0600").
    /// Empty when the host is already as asked.
    pub changes: Vec<String>,
    /// A unified diff of file content, when asked for and relevant.
    pub diff: Option<String>,
    /// Outputs known without applying (for example a command skipped by `creates`).
    pub outputs: Outputs,
    /// Exactly the planned changes. `None` when there is nothing to do.
    pub action: Option<Box<dyn Action>>,
}

impl Plan {
    /// A plan that changes nothing.
    pub fn unchanged() -> Self {
        Self::default()
    }

    /// True when applying would change the host.
    pub fn is_change(&self) -> bool {
        self.action.is_some()
    }
}

/// The part of a [`Plan`] that modifies the host.
#[async_trait]
pub trait Action: Send + Sync + Debug {
    /// Applies the planned changes and returns the task's outputs.
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError>;
}
