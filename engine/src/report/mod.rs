//! Subscribers to run events: the console (progress, task lines, recap), the JSON-lines
//! stream, and the tracing log.

mod console;
mod json;
mod log;
mod recap;

pub use console::Console;
pub use json::JsonLines;
pub use log::Log;
pub use recap::Recap;
