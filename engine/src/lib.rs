//! The engine: Rhai playbooks become a sealed task graph that runs over SSH, hosts in parallel.
//!
//! The map, in pipeline order:
//!
//! - [`inventory`]: Ansible's YAML inventory: hosts, groups, vars, connection settings.
//! - [`playbook`]: evaluates a Rhai playbook in a sandbox. It only records tasks.
//! - [`plan`]: the task graph. A `PlanBuilder` is sealed into a [`plan::Plan`], which checks
//!   everything at once; only a sealed plan can run, be checked, or be drawn as DOT.
//! - [`sched`]: the DAG walker. It knows nodes, hosts and dependencies, not modules.
//! - [`run`]: connects the walker to hosts and modules: plan, then apply, emitting events.
//! - [`ssh`]: the SSH transport (russh), one connection per host, implementing `contract::Host`;
//!   [`connect`] makes one per inventory host, and [`sudo`] wraps it for `ansible_become`.
//! - [`events`] and [`report`]: execution emits events; the progress display, the recap,
//!   the JSON stream and the logs are separate subscribers.
//! - [`modules_doc`]: `engine modules`, rendered from the schemas that parse module arguments.
//! - [`error`]: the crate's one error enum; every variant names what a user needs to act.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod connect;
pub mod docs;
pub mod error;
pub mod events;
pub mod ids;
pub mod inventory;
pub mod journal;
pub mod modules_doc;
pub mod plan;
pub mod playbook;
pub mod redact;
pub mod report;
pub mod run;
pub mod sched;
pub mod ssh;
pub mod sudo;

pub use error::Error;
