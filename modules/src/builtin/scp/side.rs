//! The two ends of a copy: the controller, the task's host, or another host of the run.

use std::sync::Arc;

use contract::error::ModuleError;
use contract::host::Host;
use contract::remote;

use super::CONTROLLER;

/// Where files are read or written.
#[derive(Clone)]
pub(super) enum Side {
    /// The machine engine runs on, through the local filesystem.
    Controller,
    /// The host the task runs on (the one `apply` is given).
    TaskHost,
    /// Another host of the run.
    Peer { name: String, host: Arc<dyn Host> },
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Controller => f.write_str("Controller"),
            Side::TaskHost => f.write_str("TaskHost"),
            Side::Peer { name, .. } => write!(f, "Peer({name})"),
        }
    }
}

impl Side {
    pub(super) fn host<'a>(&'a self, task_host: &'a dyn Host) -> Option<&'a dyn Host> {
        match self {
            Side::Controller => None,
            Side::TaskHost => Some(task_host),
            Side::Peer { host, .. } => Some(host.as_ref()),
        }
    }

    pub(super) fn label(&self, task_host: &dyn Host) -> String {
        match self {
            Side::Controller => CONTROLLER.to_owned(),
            Side::TaskHost => task_host.name().to_owned(),
            Side::Peer { name, .. } => name.clone(),
        }
    }

    pub(super) async fn read(&self, task_host: &dyn Host, path: &str) -> Result<Vec<u8>, ModuleError> {
        match self.host(task_host) {
            Some(host) => remote::read(host, path).await,
            None => tokio::fs::read(path)
                .await
                .map_err(|e| ModuleError::Refused(format!("cannot read {path} on the controller: {e}"))),
        }
    }
}
