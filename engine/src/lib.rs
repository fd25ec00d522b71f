//! The engine: Rhai playbooks become a sealed task graph that runs over SSH, hosts in parallel.
//!
//! The map, in pipeline order. Layers point one way (the binary's CLI → playbook → plan → run
//! → transport and modules); `cargo xtask deps` fails when two top-level modules use each
//! other, directly or around a circle.
//!
//! - [`inventory`]: Ansible's YAML inventory: hosts, groups, vars, connection settings.
//! - [`playbook`]: evaluates a Rhai playbook in a sandbox. It only records tasks.
//! - [`plan`]: the task graph. A `PlanBuilder` is sealed into a [`plan::Plan`], which checks
//!   everything at once; only a sealed plan can run, be checked, or be drawn as DOT. The plan
//!   keeps its graph: callers ask it for a task's dependencies and dependents by [`ids::NodeId`].
//! - [`ids`]: `TaskId` (a task's playbook number), `NodeId` (its place in one plan), `HostId`.
//! - [`sched`]: the DAG walker. It knows nodes, hosts and dependencies, not modules.
//! - [`run`]: connects the walker to hosts and modules: plan, then apply, emitting events. A
//!   task's failure is a [`run::TaskError`]; a run returns its summary, and only the binary
//!   turns it (or a forced stop, [`run::Forced`]) into an exit code.
//! - [`adhoc`]: `engine exec`: one `command` task per selected host, as a sealed plan.
//! - [`session`]: one run over SSH as the binary starts it (targets, runtime, bus, Ctrl-C).
//! - [`graphviz`]: SVG from DOT.
//! - [`ssh`]: the SSH transport (russh), one connection per host, implementing `contract::Host`;
//!   [`connect`] makes one per inventory host; [`elevate`] is become (`sudo`, `su`, `doas`): the
//!   command line the transport runs a host's commands (and the kills of those that must stop)
//!   through, and where the become password goes.
//! - [`events`] and [`report`]: execution emits events; the progress display, the recap,
//!   the JSON stream and the logs are separate subscribers.
//! - [`redact`]: hides secrets. No process-wide state: the binary makes one
//!   [`redact::Redactor`] and hands it to the loader, the event bus and the log writer.
//! - [`journal`]: the run journal, what `--resume` reruns, and reviewed plans (`check --out`,
//!   `run --plan`).
//! - [`clock`]: times as people read them in messages and reports.
//! - [`docs`]: `engine docs`, the generated reference.
//! - [`modules_doc`]: `engine modules`, rendered from the schemas that parse module arguments.
//! - [`error`]: the top error enum. It wraps each layer's own errors (`PlanErrors`,
//!   `InventoryError`) and names what a user needs to act.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod adhoc;
pub mod clock;
pub mod connect;
pub mod docs;
pub mod elevate;
pub mod error;
pub mod events;
pub mod graphviz;
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
pub mod session;
pub mod ssh;

pub use error::Error;
