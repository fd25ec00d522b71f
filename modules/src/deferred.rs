//! Values known only at run time (another task's output, a host's fact). The engine writes
//! them into task arguments as marker strings and resolves them just before the task runs,
//! so argument checks that run earlier (at seal time) must let markers through.

/// Starts a marker: `OPEN` + `kind|a|b` + [`CLOSE`].
pub const OPEN: &str = "\u{2063}engine:";
/// Ends a marker.
pub const CLOSE: char = '\u{2063}';

/// Whether `text` holds a value that will only be known at run time.
pub fn is_deferred(text: &str) -> bool {
    text.contains(OPEN)
}
