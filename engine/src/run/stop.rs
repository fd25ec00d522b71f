//! Stopping a run on the user's request.
//!
//! ```text
//!  Ctrl-C #1 ─▶ `cancel`: no new task starts; running ones get the grace period
//!  Ctrl-C #2, or the grace period ends ─▶ `abort`: running tasks are abandoned at once
//!  (the runner still closes the journal and the recap is printed)
//!  the run still not over 5 s after that, or Ctrl-C #3 ─▶ [`watch_ctrl_c`] returns
//!  [`Forced`]: the caller gives up on the run (the binary exits with 130)
//! ```
//!
//! Files on hosts stay whole either way: modules write them atomically (temporary file, rename).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventSink};

/// How long an aborted run may take to close its journal before the caller gives up on it.
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

/// The user would not wait any longer for an aborted run to wind down: a third Ctrl-C, or the
/// run still going 5 s after the abort. The caller stops waiting for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forced;

/// Turns Ctrl-C presses into `stop` signals: see the module docs. Runs until the caller drops it
/// (when the run is over), or returns [`Forced`] when the user would not wait any longer.
/// Without a way to listen for Ctrl-C it never returns.
pub async fn watch_ctrl_c(stop: Stop, grace: Duration, events: EventSink) -> Forced {
    if tokio::signal::ctrl_c().await.is_err() {
        return std::future::pending().await;
    }
    events.emit(Event::Interrupted { grace_secs: grace.as_secs() });
    stop.cancel.cancel();
    let grace_expired = tokio::select! {
        pressed = tokio::signal::ctrl_c() => {
            if pressed.is_err() {
                return std::future::pending().await;
            }
            false
        }
        () = tokio::time::sleep(grace) => true,
    };
    events.emit(Event::Aborted { grace_expired });
    stop.abort.cancel();
    drop(events);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = tokio::time::sleep(ABORT_DEADLINE) => {}
    }
    Forced
}
