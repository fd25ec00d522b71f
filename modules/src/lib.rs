//! The built-in modules, and the registry that finds them by name.
//!
//! What a module is (the [`Module`] contract, the [`Host`] it acts through, the file helpers
//! every module shares) lives in the `contract` crate (`engine-contract`); this crate holds
//! the modules themselves, with the heavy libraries they need (rcgen and x509-parser for
//! certificates, minijinja for templates). Its map:
//!
//! - [`registry`]: every module by name, with the schema that parses and documents its arguments.
//! - [`builtin`]: the modules themselves.
//! - `validate`: the rules a module checks on its arguments across fields, at both stages.
//! - [`fuzz`]: every parser of what a host prints, on arbitrary bytes, for the fuzz target.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod builtin;
pub mod fuzz;
pub mod registry;
pub(crate) mod validate;

pub use registry::ModuleSpec;
