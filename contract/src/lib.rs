//! The module contract: what a module is, and the narrow host interface it acts through.
//!
//! This crate knows nothing of graphs, playbooks, SSH or any particular module, and stays
//! small: the engine's transports and anything else that only needs the contract build it
//! without the built-in modules' certificate and template libraries. Its map:
//!
//! - [`host`]: the [`Host`] trait, one method: run a command line with optional stdin.
//!   The engine implements it over SSH; [`local`] implements it on the controller.
//! - [`target`]: [`Target`], a [`Host`] the engine connects before its first task.
//! - [`local`]: [`LocalHost`], the controller as a [`Host`] (`sh -c`), so controller files go
//!   through the same helpers, and the same atomic writes, as any host's.
//! - [`shell`]: the one quoting helper every command line is built with.
//! - [`remote`]: stat, read, atomic write, mkdir, remove, each one round trip over [`Host`];
//!   [`stat`]: what a stat finds ([`stat::FileStat`]), also what a transport may cache.
//! - [`module`]: the [`Module`] contract. `plan` reads the host and returns a [`Plan`] whose
//!   [`Action`] holds exactly the planned changes; applying it changes nothing else.
//! - [`error`]: [`ModuleError`] (why a module could not plan or apply) and [`ArgsError`]
//!   (why arguments were rejected: a path and a kind, as data, worded for a playbook author).
//! - [`args`]: module arguments from JSON, with serde's findings captured as [`ArgsError`]
//!   by a deserializer of its own, never parsed back out of serde's text.
//! - [`arg`]: a run-time reference as a typed value ([`arg::Arg`]: known at seal, or later),
//!   the two stages of a module's arguments ([`arg::Sealed`], [`arg::Resolved`]), resolving
//!   one into the other, and argument types that check themselves ([`arg::AbsolutePath`]).
//! - [`facts`]: a host's facts, gathered in one round trip.
//! - [`deferred`]: run-time references (another task's output) as they appear in arguments.
//! - [`diff`]: content hashes, secret detection and unified diffs.
//! - [`mode`]: permission bits as playbooks write them.
//! - [`suggest`]: the nearest valid names to a misspelled one, for "did you mean" messages.
//! - [`untrusted`]: what hosts print is hostile input: [`untrusted::printable`] for showing
//!   it, [`untrusted::OutputError`] for refusing it, naming the host.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod arg;
pub mod args;
pub mod deferred;
pub mod diff;
pub mod error;
pub mod facts;
pub mod host;
pub mod local;
pub mod mode;
pub mod module;
pub mod remote;
pub mod shell;
pub mod stat;
pub mod suggest;
pub mod target;
pub mod untrusted;

pub use error::{ArgsError, ModuleError};
pub use host::{Effect, Exec, ExecOutput, Host, HostError, Stream};
pub use local::LocalHost;
pub use module::{Action, Context, Module, NoPeers, Outputs, Peers, Plan, PlanOptions, SealedArgs};
pub use target::Target;
