//! Why a journal cannot be read or resumed. A refused journal is left as it is: nothing here
//! removes or rewrites one.

use std::path::PathBuf;

use miette::Diagnostic;

/// A journal that cannot be read back, or a resume that does not match the run it resumes.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum JournalError {
    /// The workspace key cannot be used (see [`super::key`]).
    #[error("journal key {}: {problem}", path.display())]
    #[diagnostic(code(engine::journal::key))]
    Key { path: PathBuf, problem: KeyProblem },

    /// A line is not one this workspace wrote there: changed, moved, dropped before it, copied
    /// from another journal, or written with another key.
    #[error(
        "journal {}:{line}: the line does not verify with this workspace's key: the journal was changed, or \
         written elsewhere; it is neither resumed nor reported (and left as it is)",
        path.display()
    )]
    #[diagnostic(code(engine::journal::unverified))]
    Unverified { path: PathBuf, line: usize },

    /// A line verified but is not a journal record, or not in its place.
    #[error("journal {}:{line}: {why}", path.display())]
    #[diagnostic(code(engine::journal::line))]
    BadLine { path: PathBuf, line: usize, why: String },

    /// Written by an engine whose journals this one does not read.
    #[error("journal {}:1: journal format {found} (this engine reads {reads})", path.display())]
    #[diagnostic(code(engine::journal::format))]
    Format { path: PathBuf, found: u32, reads: u32 },

    #[error("journal {}:1: empty journal (no header)", path.display())]
    #[diagnostic(code(engine::journal::empty))]
    Empty { path: PathBuf },

    /// The header names another run than its file name.
    #[error("journal {}:1: its header is run {found}, not {expected}", path.display())]
    #[diagnostic(code(engine::journal::id))]
    OtherId { path: PathBuf, found: String, expected: String },

    /// A journal file or the runs folder cannot be read or written.
    #[error("{what}: {source}")]
    #[diagnostic(code(engine::io))]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// `--resume` (or `engine report`, `what`) without an id, and no run has a journal here.
    #[error("{what}: no run journal in {}", runs.display())]
    #[diagnostic(code(engine::usage))]
    NoJournal { what: &'static str, runs: PathBuf },

    /// `--resume ID` (or `engine report ID`, `what`) where ID is not the shape of a run id.
    #[error("{what} {id:?}: not a run id (see {})", runs.display())]
    #[diagnostic(code(engine::usage))]
    NotRunId { what: &'static str, id: String, runs: PathBuf },

    /// The command line asks for something else than the run it resumes.
    #[error("cannot resume run {id} ({}): {}", path.display(), why.worded(RecordedIn::Journal))]
    #[diagnostic(code(engine::journal::resume))]
    Refused { id: String, path: PathBuf, why: Refusal },
}

/// What is wrong with the workspace key.
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    #[error("missing: journals of this workspace cannot be verified without it")]
    Missing,
    #[error("not a regular file")]
    NotAFile,
    #[error("mode {0:04o}: others may read or change it; it must be 0600")]
    Open(u32),
    #[error("owned by user {owner}, not by this user ({me})")]
    Owner { owner: u32, me: u32 },
    #[error("not a journal key (64 hex digits)")]
    Malformed,
    #[error("{0}")]
    Io(String),
}

/// Why a command line does not repeat the run whose inputs it is checked against (see
/// [`super::inputs::same_run`]); [`Refusal::worded`] says it for a journal or a reviewed plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    OtherPlaybook {
        recorded: PathBuf,
        given: PathBuf,
    },
    OtherInventory {
        recorded: Vec<PathBuf>,
        given: Vec<PathBuf>,
    },
    /// `had`: every `-e` name recorded; `missing`: those the command line does not give.
    MissingVars {
        had: Vec<String>,
        missing: Vec<String>,
    },
    OtherSelection {
        flag: &'static str,
        had: Option<Vec<String>>,
    },
}

/// What recorded the inputs a command line was refused against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedIn {
    /// A run's journal (`--resume`).
    Journal,
    /// A reviewed plan (`--plan`).
    ReviewedPlan,
}

impl Refusal {
    /// Why, and what to give instead, as said of a run's journal or of a reviewed plan.
    pub fn worded(&self, of: RecordedIn) -> String {
        let (did, did_with, keeper, selection) = match of {
            RecordedIn::Journal => {
                ("it ran", "it ran with", "the journal", "a resume keeps the run's selection")
            }
            RecordedIn::ReviewedPlan => {
                ("it reviewed", "it was reviewed with", "the plan", "a plan keeps its selection")
            }
        };
        match self {
            Refusal::OtherPlaybook { recorded, given } => format!(
                "{did} playbook {}, not {}; give that playbook, or none",
                recorded.display(),
                given.display()
            ),
            Refusal::OtherInventory { recorded, given } => format!(
                "{did_with} inventory {}, not {}; give {}, or none",
                shown(recorded),
                shown(given),
                if recorded.len() == 1 { "that inventory" } else { "those inventories, in that order" }
            ),
            Refusal::MissingVars { had, missing } => format!(
                "{did_with} -e {}; {keeper} does not keep values (they may be secret): pass {} again",
                had.join(", -e "),
                if missing.len() == 1 { "it" } else { "them" }
            ),
            Refusal::OtherSelection { flag, had } => format!(
                "{did_with} {flag} {}; {selection}",
                had.as_ref().map_or_else(|| "(none)".to_owned(), |h| h.join(","))
            ),
        }
    }
}

/// Paths as `-i` lists them: `a, b`.
fn shown(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
