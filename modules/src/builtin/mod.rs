//! The modules that ship with the engine.

pub mod apt_key;
pub mod apt_repository;
pub mod block;
pub mod certgen;
pub mod command;
pub mod etcd_member;
pub mod file;
pub mod get_url;
pub mod group;
pub mod kubeadm;
pub mod kubectl;
pub mod line;
pub mod modprobe;
pub mod package;
pub mod replace_line;
pub mod scp;
pub mod swap;
pub mod sysctl;
pub mod systemd;
pub mod template;
pub(crate) mod text;
pub mod unarchive;
pub mod user;
pub mod wait;
