//! The run journal: what each `engine run` did, task by task, as JSON lines in
//! `.engine/runs/<id>.jsonl` under the working directory. `engine run --resume` reads it back
//! to rerun only what did not finish.
//!
//! ```text
//!  {"kind":"header", id, playbook, inventory, more_inventories, extra_vars (names), limit, tags, engine,
//!   resumes, fingerprints, deps, mac}
//!  {"kind":"task", id, host, task, status, start_ms, elapsed_ms, message, mac}   one per task, as tasks end
//!  {"kind":"task", id, host, task, status, done_in, elapsed_ms, mac}    resumed runs: tasks done earlier
//!  {"kind":"finished", interrupted, aborted, elapsed_ms, critical_path_ms, critical_path, mac}
//!                                                                        absent when the process was killed
//! ```
//!
//! `deps` (what each task waits for), `start_ms` (after the header's `started_at_ms`),
//! `elapsed_ms`, `message` (why a task failed or was skipped, redacted) and the critical path
//! are what `engine report` draws (see [`crate::report::timeline`]); journals written before
//! them read with them empty.
//!
//! Every line is written whole with one `write` call, so a killed process leaves a valid prefix.
//! The folder is 0700 and the files 0600: they name hosts and tasks, and no one else needs them.
//!
//! A journal is trusted only as far as it verifies: each line ends with `"mac"`, an HMAC with
//! the workspace key (`.engine/journal.key`, 0600, beside `runs/`) chained to the line before,
//! and fingerprints are keyed with it too. `--resume` refuses (and leaves as it is) a journal
//! with a line that does not verify, or whose header names another playbook or other inventories (every `-i`, in order).
//!
//! - [`record`]: the line types. - [`writer`]: the event subscriber that writes a journal.
//! - [`reader`]: loading a journal. - [`fingerprint`]: each task's input fingerprint.
//! - [`key`]: the workspace key, and sealing lines. - [`error`]: why a journal is refused.
//! - [`inputs`]: a run's inputs, as the header records them and `--resume`/`--plan` check them.
//! - [`resume`]: what `--resume` reruns. - [`reviewed`]: reviewed plans. - [`run_id`]: sortable run ids.

pub mod error;
pub mod fingerprint;
pub mod inputs;
pub mod key;
pub mod reader;
pub mod record;
pub mod resume;
pub mod reviewed;
pub mod run_id;
pub mod writer;

use std::path::{Path, PathBuf};

pub use error::JournalError;
pub use inputs::{Given, RunInputs};
pub use key::JournalKey;
pub use reader::Journal;
pub use record::{Finished, Header, Record, TaskLine};
pub use writer::JournalWriter;

/// Where journals live, relative to the working directory.
pub const RUNS_DIR: &str = ".engine/runs";

/// The journal file of run `id` in `dir`.
pub fn path_of(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.jsonl"))
}

/// The journal of run `id` in `runs` (the latest when `id` is empty), verified with the
/// workspace `key`; `what` names the command line's asking (`--resume`, `engine report`) in
/// messages.
pub fn find(runs: &Path, id: &str, key: &JournalKey, what: &'static str) -> Result<Journal, JournalError> {
    let id = if id.is_empty() {
        latest(runs)
            .map_err(|e| JournalError::Io { what: format!("cannot list {}", runs.display()), source: e })?
            .ok_or_else(|| JournalError::NoJournal { what, runs: runs.to_owned() })?
    } else if run_id::is_valid(id) {
        id.to_owned()
    } else {
        return Err(JournalError::NotRunId { what, id: id.to_owned(), runs: runs.to_owned() });
    };
    let journal = Journal::load(&path_of(runs, &id), key)?;
    if journal.header.id != id {
        let (path, found) = (journal.path.clone(), journal.header.id.clone());
        return Err(JournalError::OtherId { path, found, expected: id });
    }
    Ok(journal)
}

/// The id of the newest journal in `dir` (ids sort by time), if there is one.
pub fn latest(dir: &Path) -> std::io::Result<Option<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut newest: Option<String> = None;
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".jsonl")
            && run_id::is_valid(id)
            && newest.as_deref().is_none_or(|n| id > n)
        {
            newest = Some(id.to_owned());
        }
    }
    Ok(newest)
}
