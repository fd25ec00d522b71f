//! Stopping a run on the user's request.
//!
//! ```text
//!  Ctrl-C #1 ─▶ `cancel`: no new task starts; running ones get the grace period
//!  Ctrl-C #2, or the grace period ends ─▶ `abort`: running tasks are abandoned at once
//!  (the runner still closes the journal and the recap is printed)
//!  the run still not over 5 s after that, or Ctrl-C #3 ─▶ the process exits with 130
//! ```
//!
//! Files on hosts stay whole either way: modules write them atomically (temporary file, rename).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventSink};

/// How long an aborted run may take to close its journal before the process just exits.
const ABORT_DEADLINE: Duration = Duration::from_secs(5);

/// The two stop signals a run obeys. Signalled by [`watch_ctrl_c`] (or a test); read by the
/// walker (`cancel`) and the runner (`abort`).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// No new task starts. Its firing makes the run "interrupted" (exit 130).
    pub cancel: CancellationToken,
    /// Running tasks are abandoned and reported failed. Fired only after `cancel`.
    pub abort: CancellationToken,
}

impl Stop {
    /// Fires `abort` (and `cancel`, which must come first).
    pub fn abort_now(&self) {
        self.cancel.cancel();
        self.abort.cancel();
    }
}

/// Turns Ctrl-C presses into `stop` signals: see the module docs. Runs until the caller drops it
/// (when the run is over).
pub async fn watch_ctrl_c(stop: Stop, grace: Duration, events: EventSink) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    events.emit(Event::Interrupted { grace_secs: grace.as_secs() });
    stop.cancel.cancel();
    let grace_expired = tokio::select! {
        pressed = tokio::signal::ctrl_c() => {
            if pressed.is_err() {
                return;
            }
            false
        }
        () = tokio::time::sleep(grace) => true,
    };
    events.emit(Event::Aborted { grace_expired });
    stop.abort.cancel();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = tokio::time::sleep(ABORT_DEADLINE) => {}
    }
    eprintln!("aborted");
    std::process::exit(130);
}
