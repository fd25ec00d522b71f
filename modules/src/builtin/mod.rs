//! The modules that ship with the engine.

pub mod command;
pub mod file;
