//! The modules that ship with the engine.

pub mod command;
pub mod file;
pub mod package;
pub mod systemd;
pub mod wait;
