//! Events as tracing records (`-v`, `RUST_LOG`).

use crate::events::{Event, Subscriber};

/// Logs every event through `tracing`.
#[derive(Debug, Default)]
pub struct Log;

impl Subscriber for Log {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::TaskStarted { host, task, module, .. } => {
                tracing::debug!(%host, %task, %module, "task started")
            }
            Event::TaskFinished(r) => {
                tracing::info!(host = %r.host, task = %r.task, status = r.status.as_str(), ms = r.elapsed_ms, "task finished");
            }
            Event::HostConnected { host, elapsed_ms } => {
                tracing::info!(%host, ms = elapsed_ms, "connected")
            }
            Event::HostUnreachable { host, error } => tracing::warn!(%host, %error, "unreachable"),
            Event::RunStarted { tasks, hosts, check, .. } => {
                tracing::info!(tasks, hosts = hosts.len(), check, "run started");
            }
            Event::Interrupted => tracing::warn!("interrupted: no new tasks start"),
            Event::RunFinished { elapsed_ms, interrupted, critical_path_ms } => {
                tracing::info!(ms = elapsed_ms, interrupted, critical_path_ms, "run finished");
            }
        }
    }
}
