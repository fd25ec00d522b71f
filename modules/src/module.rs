//! The module contract: `plan` reads, `apply` changes exactly what was planned.

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::ModuleError;
use crate::host::Host;

/// Values a task produces for later tasks (for example `stdout` and `rc` of a command).
pub type Outputs = Map<String, Value>;

/// How planning should behave.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Produce a unified diff for file-like changes (costs one extra read when content differs).
    pub diff: bool,
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
    async fn plan(&self, host: &dyn Host, options: PlanOptions) -> Result<Plan, ModuleError>;
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
