//! Typed, idempotent modules and the narrow host interface they act through.
//!
//! This crate knows nothing of graphs, playbooks or SSH. Its map:
//!
//! - [`host`]: the [`Host`] trait, one method: run a command line with optional stdin.
//!   The engine implements it over SSH; tests can implement it any way they like.
//! - [`shell`]: the one quoting helper every command line is built with.
//! - [`remote`]: stat, read, atomic write, mkdir, remove, each one round trip over [`Host`].
//! - [`module`]: the [`Module`] contract. `plan` reads the host and returns a [`Plan`] whose
//!   [`Action`] holds exactly the planned changes; applying it changes nothing else.
//! - [`registry`]: every module by name, with the schema that parses and documents its arguments.
//! - [`builtin`]: the modules themselves.
//! - [`suggest`]: the nearest valid names to a misspelled one, for "did you mean" messages.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod builtin;
pub mod deferred;
pub mod diff;
pub mod error;
pub mod facts;
pub mod host;
pub mod local;
pub mod mode;
pub mod module;
pub mod registry;
pub mod remote;
pub mod shell;
pub mod suggest;

pub use error::{ArgsError, ModuleError};
pub use host::{Effect, Exec, ExecOutput, Host, HostError};
pub use module::{Action, Context, Module, NoPeers, Outputs, Peers, Plan, PlanOptions};
pub use registry::ModuleSpec;
