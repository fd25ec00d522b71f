//! Subscribers to run events: the console (progress, task lines, recap), `engine exec`'s
//! per-host output, the JSON-lines stream, and the tracing log. Everything the console prints goes through
//! [`printable`]: remote text never reaches a terminal with its escape sequences live. The
//! JSON stream escapes control characters as JSON does; the log's fields are escaped by
//! `tracing-subscriber` itself (ESC, C1 and other terminal controls).
//!
//! Not a subscriber: [`timeline`], the run report (`engine report`), drawn from a run's journal
//! after the fact, never from the live run; its HTML escapes every text.

mod adhoc;
mod console;
mod json;
mod log;
mod printable;
#[cfg(test)]
mod printed;
mod recap;
pub mod timeline;

pub use adhoc::AdHocOutput;
pub use console::{Console, ProgressPause};
pub use json::JsonLines;
pub use log::Log;
pub use printable::printable;
pub use recap::Recap;
pub use timeline::Timeline;
