//! Values known only at run time (another task's output, a host's fact). The engine writes
//! them into task arguments as marker strings and resolves them just before the task runs.
//! Arguments never test for markers themselves: [`crate::arg::Arg`]'s deserializer is the
//! one reader of [`is_deferred`], and the engine's `plan::refs` the one writer and resolver.
//!
//! A marker carries a random token drawn once per process, so text that did not come from
//! the engine itself (a `-e` value, a template file, a string in the playbook) cannot forge
//! a reference and read another task's output (a key, a token) in its place.

use std::sync::OnceLock;

/// Ends a marker.
pub const CLOSE: char = '\u{2063}';

/// The start of a marker with this process's token in place: what [`canonical`] writes.
const CANONICAL_OPEN: &str = "\u{2063}engine:";

/// Starts a marker: `open()` + `kind|a|b` + [`CLOSE`]. The same for the whole process.
pub fn open() -> &'static str {
    static OPEN: OnceLock<String> = OnceLock::new();
    OPEN.get_or_init(|| format!("\u{2063}engine-{:016x}:", token()))
}

/// 64 unpredictable bits: std's per-process random hash keys, mixed with the time and pid.
fn token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Whether `text` holds a value that will only be known at run time.
pub fn is_deferred(text: &str) -> bool {
    text.contains(open())
}

/// `text` with this process's marker token replaced by a fixed one, for what must compare
/// equal across runs (a run journal's input fingerprints).
pub fn canonical(text: &str) -> String {
    text.replace(open(), CANONICAL_OPEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_without_this_process_token_is_plain_text() {
        let forged = format!("{CANONICAL_OPEN}output|0|stdout{CLOSE}");
        assert!(!is_deferred(&forged));
        let real = format!("{}output|0|stdout{CLOSE}", open());
        assert!(is_deferred(&real));
        assert_eq!(canonical(&real), forged);
        assert_eq!(open(), open(), "one token per process");
    }
}
