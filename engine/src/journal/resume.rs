//! `engine run --resume`: checking that a resume reruns the same thing, and choosing its tasks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::reader::Journal;
use crate::error::Error;
use crate::events::Status;
use crate::plan::Plan;
use crate::run::{Carried, CarriedTask};

/// What the command line says about the run to resume; `None` means "as in the journal".
#[derive(Debug, Clone, Default)]
pub struct Given<'a> {
    pub playbook: Option<&'a Path>,
    pub inventory: Option<&'a Path>,
    /// Names of the `-e` variables given.
    pub extra_vars: Vec<&'a str>,
    pub limit: Option<&'a [String]>,
    pub tags: Option<&'a [String]>,
}

/// The playbook, inventory, `--limit` and `--tags` of the resumed run: the journal's, or the
/// command line's where they agree. Refuses another playbook, other `--limit`/`--tags`, and
/// missing `-e` variables (their values are not in the journal).
pub fn same_run(journal: &Journal, given: &Given) -> Result<Resolved, Error> {
    let h = &journal.header;
    let refuse =
        |why: String| Error::Usage(format!("cannot resume run {} ({}): {why}", h.id, journal.path.display()));
    let playbook = match given.playbook {
        Some(p) => {
            let p = absolute(p);
            if p != h.playbook {
                return Err(refuse(format!(
                    "it ran playbook {}, not {}; give that playbook, or none",
                    h.playbook.display(),
                    p.display()
                )));
            }
            p
        }
        None => h.playbook.clone(),
    };
    let inventory = given.inventory.map_or_else(|| h.inventory.clone(), absolute);
    let missing: Vec<&str> =
        h.extra_vars.iter().map(String::as_str).filter(|v| !given.extra_vars.contains(v)).collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "it ran with -e {}; the journal does not keep values (they may be secret): pass {} again",
            h.extra_vars.join(", -e "),
            if missing.len() == 1 { "it" } else { "them" }
        )));
    }
    let same = |given: Option<&[String]>, had: &Option<Vec<String>>, flag: &str| match given {
        Some(g) if had.as_deref() != Some(g) => Err(refuse(format!(
            "it ran with {flag} {}; a resume keeps the run's selection",
            had.as_ref().map_or_else(|| "(none)".to_owned(), |h| h.join(","))
        ))),
        _ => Ok(had.clone()),
    };
    Ok(Resolved {
        playbook,
        inventory,
        limit: same(given.limit, &h.limit, "--limit")?,
        tags: same(given.tags, &h.tags, "--tags")?,
    })
}

/// The resumed run's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub playbook: PathBuf,
    pub inventory: PathBuf,
    pub limit: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

/// The tasks of `full` (the plan as the resumed run selected it) that must run again, and the
/// ones carried over as done. `fingerprints` are `full`'s, now.
pub fn select(full: &Plan, journal: &Journal, fingerprints: &BTreeMap<usize, String>) -> (Plan, Carried) {
    let before = &journal.header.fingerprints;
    let resume = full
        .select_resume(&|t| !journal.succeeded(t.id) || before.get(&t.id) != fingerprints.get(&t.id), &|t| {
            journal.tasks.get(&t.id).is_some_and(|l| l.status == Status::Changed)
        });
    let tasks = full
        .graph()
        .node_weights()
        .filter(|t| resume.left_out.binary_search(&t.id).is_ok())
        .map(|t| CarriedTask {
            id: t.id,
            host: t.host.clone(),
            task: t.name.clone(),
            status: journal.tasks.get(&t.id).map_or(Status::Ok, |l| l.status),
            run: journal.done_in(t.id).to_owned(),
        })
        .collect();
    (resume.plan, Carried { tasks, notified: resume.notified })
}

/// `path` made absolute (canonical when it exists), so journals name files wherever engine runs.
pub fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_owned()))
}
