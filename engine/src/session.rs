//! One run of a plan over SSH, as the binary starts it: SSH targets for the plan's hosts, an
//! async runtime, the event bus with its subscribers, and Ctrl-C handling.
//!
//! ```text
//!  Ctrl-C #1 ─▶ no new task; running ones get `grace`     Ctrl-C #2 ─▶ running ones abandoned
//!  the run still not over 5 s later, or Ctrl-C #3 ─▶ Outcome::Forced (nothing more is awaited)
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::connect::{SshDefaults, ssh_targets};
use crate::error::Error;
use crate::events::{EventBus, Subscriber};
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::run::{self, RunOptions, RunSummary};

/// How a run over SSH ended.
#[derive(Debug)]
pub enum Outcome {
    /// The run ended (completely, or interrupted and wound down): its summary.
    Finished(RunSummary),
    /// The user would not wait for an aborted run to wind down. Tasks abandoned by the abort
    /// may still be running; nothing more was awaited, not even the subscribers.
    Forced,
}

/// Runs `plan` on its hosts over SSH, each event redacted with `redactor` and handed to
/// `subscribers`. The first Ctrl-C stops new tasks and gives running ones `grace`, the second
/// abandons them (see [`run::watch_ctrl_c`]).
pub fn run_over_ssh(
    plan: &Plan,
    defaults: &SshDefaults,
    options: RunOptions,
    grace: Duration,
    subscribers: Vec<Box<dyn Subscriber>>,
    redactor: &Arc<Redactor>,
) -> Result<Outcome, Error> {
    let targets = ssh_targets(plan, defaults, redactor)?;
    // One thread: the controller's work is small next to the hosts' (what is heavy, key
    // generation and unlocking, runs on the blocking pool), and on a few cores a second
    // worker only adds wake-ups between threads. Measured on W1 at 30 hosts: a quarter less
    // controller CPU (docs/benchmarks.md).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io { what: "cannot start the async runtime".into(), source: e })?;
    let (sink, bus) = EventBus::start(subscribers, redactor.clone());
    let summary = runtime.block_on(async {
        let stop = run::Stop::default();
        // Dropped (with its event sink) as soon as the run is over, so the bus can finish.
        let watcher = run::watch_ctrl_c(stop.clone(), grace, sink.clone());
        tokio::select! {
            summary = run::run(plan, targets, options, sink.clone(), stop) => Some(summary),
            run::Forced = watcher => None,
        }
    });
    drop(sink);
    let Some(summary) = summary else {
        // Tasks abandoned by the abort may still hold event sinks: wait for neither them nor
        // the bus.
        runtime.shutdown_background();
        return Ok(Outcome::Forced);
    };
    bus.finish();
    // Connections close with the runtime; remote commands still running were already awaited.
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(Outcome::Finished(summary))
}
