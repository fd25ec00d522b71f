//! The modules that ship with the engine.

pub mod certgen;
pub mod command;
pub mod file;
pub mod kubeadm;
pub mod kubectl;
pub mod package;
pub mod replace_line;
pub mod scp;
pub mod systemd;
pub mod template;
pub mod wait;
