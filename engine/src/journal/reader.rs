//! Loading a journal back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::JournalError;
use super::key::JournalKey;
use super::record::{Finished, Header, Record, TaskLine};
use crate::events::Status;
use crate::ids::TaskId;

/// A journal as read back: its header, the last outcome of each task, and how it ended.
#[derive(Debug, Clone)]
pub struct Journal {
    pub path: PathBuf,
    pub header: Header,
    /// Task id → its outcome in this run (or, with `done_in`, in an earlier one).
    pub tasks: HashMap<TaskId, TaskLine>,
    /// `None` when the process ended without closing the journal (killed).
    pub finished: Option<Finished>,
}

impl Journal {
    /// Reads the journal at `path`, verifying every line with the workspace `key` (see
    /// [`super::key`]). A last line cut short (the process was killed while writing it) is
    /// ignored; any other line that does not verify, or is not a record in its place, refuses
    /// the whole journal, naming the line.
    pub fn load(path: &Path, key: &JournalKey) -> Result<Journal, JournalError> {
        let text = std::fs::read_to_string(path).map_err(|e| JournalError::Io {
            what: format!("cannot read journal {}", path.display()),
            source: e,
        })?;
        Self::parse(path, &text, key)
    }

    /// [`load`](Self::load) for text already read; `path` names it in messages.
    pub fn parse(path: &Path, text: &str, key: &JournalKey) -> Result<Journal, JournalError> {
        let bad = |line: usize, why: String| JournalError::BadLine { path: path.to_owned(), line, why };
        let complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        let mut header = None;
        let mut tasks = HashMap::new();
        let mut finished = None;
        let mut prev = String::new();
        for (i, line) in lines.iter().enumerate() {
            let Some((body, mac)) = key.open(&prev, line) else {
                if i + 1 == lines.len() && !complete {
                    break;
                }
                // An older engine's journal (no MACs) says so, rather than looking tampered.
                if let (0, Ok(Record::Header(h))) = (i, Record::parse(line))
                    && h.format < Header::FORMAT
                {
                    let (found, reads) = (h.format, Header::FORMAT);
                    return Err(JournalError::Format { path: path.to_owned(), found, reads });
                }
                return Err(JournalError::Unverified { path: path.to_owned(), line: i + 1 });
            };
            prev = mac;
            let record = Record::parse(&body).map_err(|e| bad(i + 1, format!("not a journal line: {e}")))?;
            match (record, &header) {
                (Record::Header(h), None) if i == 0 => {
                    if h.format != Header::FORMAT {
                        return Err(JournalError::Format {
                            path: path.to_owned(),
                            found: h.format,
                            reads: Header::FORMAT,
                        });
                    }
                    header = Some(h);
                }
                (Record::Task(t), Some(_)) => {
                    tasks.insert(t.id, t);
                }
                (Record::Finished(f), Some(_)) => finished = Some(f),
                _ => return Err(bad(i + 1, "the header must be the first line, and only it".to_owned())),
            }
        }
        let header = header.ok_or_else(|| JournalError::Empty { path: path.to_owned() })?;
        Ok(Journal { path: path.to_owned(), header, tasks, finished })
    }

    /// Whether task `id` finished successfully (in this run or the one it was carried from).
    pub fn succeeded(&self, id: TaskId) -> bool {
        self.tasks.get(&id).is_some_and(|t| matches!(t.status, Status::Ok | Status::Changed))
    }

    /// The run a successful task `id` was done in: this one, or the one it was carried from.
    pub fn done_in(&self, id: TaskId) -> &str {
        self.tasks.get(&id).and_then(|t| t.done_in.as_deref()).unwrap_or(&self.header.id)
    }
}
