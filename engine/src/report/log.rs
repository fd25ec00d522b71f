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
            Event::TaskDone { host, task, run, .. } => {
                tracing::debug!(%host, %task, %run, "done in an earlier run")
            }
            Event::Interrupted { grace_secs } => {
                tracing::warn!(grace_secs, "interrupted: no new tasks start")
            }
            Event::Aborted { grace_expired } => tracing::warn!(grace_expired, "aborting running tasks"),
            Event::RunFinished { elapsed_ms, interrupted, critical_path_ms, .. } => {
                tracing::info!(ms = elapsed_ms, interrupted, critical_path_ms, "run finished");
            }
        }
    }
}
