//! A run's inputs as the command line names them: the playbook, the inventories, the names of
//! the `-e` variables, `--limit` and `--tags`. A journal's header records them (so that
//! `--resume` reruns the same thing) and so does a reviewed plan (so that `--plan` applies the
//! plan that was reviewed); [`same_run`] checks a command line against either.
//!
//! In both files they are fields of the document itself (`#[serde(flatten)]`), in this order:
//!
//! ```text
//!  playbook, inventory, more_inventories (absent when one), extra_vars (names), limit, tags
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::Refusal;

/// What the command line says about a run. Checked against recorded inputs, `None` (and no
/// `-i`) means "as recorded".
#[derive(Debug, Clone, Default)]
pub struct Given<'a> {
    pub playbook: Option<&'a Path>,
    /// The `-i` sources, in order.
    pub inventories: &'a [PathBuf],
    /// Names of the `-e` variables given.
    pub extra_vars: Vec<&'a str>,
    pub limit: Option<&'a [String]>,
    pub tags: Option<&'a [String]>,
}

/// A run's inputs, as a journal header and a reviewed plan record them. The field names and
/// their order are part of both formats (a reviewed plan's MAC covers its bytes).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunInputs {
    /// The playbook, as an absolute path.
    pub playbook: PathBuf,
    /// The (first) inventory, as an absolute path.
    pub inventory: PathBuf,
    /// The inventories after the first (`-i` repeated), as absolute paths; absent when one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_inventories: Vec<PathBuf>,
    /// The names of the `-e` variables. Their values are not kept (they may be secret): a
    /// resume or a reviewed plan is given them again, and the task fingerprints tell whether
    /// they changed.
    pub extra_vars: Vec<String>,
    /// `--limit`, as given.
    pub limit: Option<Vec<String>>,
    /// `--tags`, as given.
    pub tags: Option<Vec<String>>,
}

impl RunInputs {
    /// The inputs `given` names, paths made absolute, the `-e` names only.
    pub fn new(given: &Given<'_>) -> RunInputs {
        RunInputs {
            playbook: given.playbook.map(absolute).unwrap_or_default(),
            inventory: given.inventories.first().map(|i| absolute(i)).unwrap_or_default(),
            more_inventories: given.inventories.iter().skip(1).map(|i| absolute(i)).collect(),
            extra_vars: given.extra_vars.iter().map(|v| (*v).to_owned()).collect(),
            limit: given.limit.map(<[String]>::to_vec),
            tags: given.tags.map(<[String]>::to_vec),
        }
    }

    /// Every inventory, in `-i` order.
    pub fn inventories(&self) -> Vec<PathBuf> {
        std::iter::once(self.inventory.clone()).chain(self.more_inventories.iter().cloned()).collect()
    }
}

/// The inputs of a run that repeats the `recorded` one (`--resume`, `--plan`), as the command
/// line gives them: the recorded ones, where it gives none or the same. Refuses another
/// playbook or other inventories (every `-i`, in order), other `--limit`/`--tags`, and missing
/// `-e` variables (their values are not recorded).
pub fn same_run(recorded: &RunInputs, given: &Given<'_>) -> Result<RunInputs, Refusal> {
    if let Some(playbook) = given.playbook.map(absolute)
        && playbook != recorded.playbook
    {
        return Err(Refusal::OtherPlaybook { recorded: recorded.playbook.clone(), given: playbook });
    }
    let inventories: Vec<PathBuf> = given.inventories.iter().map(|i| absolute(i)).collect();
    if !inventories.is_empty() && inventories != recorded.inventories() {
        return Err(Refusal::OtherInventory { recorded: recorded.inventories(), given: inventories });
    }
    let missing: Vec<String> =
        recorded.extra_vars.iter().filter(|v| !given.extra_vars.contains(&v.as_str())).cloned().collect();
    if !missing.is_empty() {
        return Err(Refusal::MissingVars { had: recorded.extra_vars.clone(), missing });
    }
    for (given, had, flag) in
        [(given.limit, &recorded.limit, "--limit"), (given.tags, &recorded.tags, "--tags")]
    {
        if let Some(given) = given
            && had.as_deref() != Some(given)
        {
            return Err(Refusal::OtherSelection { flag, had: had.clone() });
        }
    }
    Ok(recorded.clone())
}

/// `path` made absolute (canonical when it exists), so journals and reviewed plans name files
/// wherever engine runs.
pub fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalError;
    use crate::journal::error::RecordedIn;
    use crate::journal::reviewed::ReviewError;

    fn recorded() -> RunInputs {
        RunInputs {
            playbook: "/p.rhai".into(),
            inventory: "/inv.yml".into(),
            extra_vars: vec!["version".into()],
            ..RunInputs::default()
        }
    }

    fn refused(recorded: &RunInputs, given: &Given<'_>) -> (String, String) {
        let why = same_run(recorded, given).unwrap_err();
        (why.worded(RecordedIn::Journal), why.worded(RecordedIn::ReviewedPlan))
    }

    #[test]
    fn the_command_line_gives_the_recorded_inputs_or_nothing() {
        let mut r = recorded();
        let version = || vec!["version"];
        // Nothing given but the -e: the recorded inputs.
        assert_eq!(same_run(&r, &Given { extra_vars: version(), ..Given::default() }), Ok(r.clone()));
        // The same, given: the same.
        let (inventories, web) = ([PathBuf::from("/inv.yml")], ["web".to_owned()]);
        r.limit = Some(web.to_vec());
        let same = Given {
            playbook: Some(Path::new("/p.rhai")),
            inventories: &inventories,
            extra_vars: vec!["version", "more"],
            limit: Some(&web),
            tags: None,
        };
        assert_eq!(same_run(&r, &same), Ok(r.clone()));
        // Several -i: all of them, in order, are the run's.
        r.more_inventories = vec!["/more.ini".into()];
        let given = [PathBuf::from("/inv.yml"), PathBuf::from("/more.ini")];
        let ok = same_run(&r, &Given { inventories: &given, extra_vars: version(), ..Given::default() });
        assert_eq!(ok.unwrap().inventories(), given);
    }

    #[test]
    fn another_playbook_inventory_or_selection_or_missing_vars_are_refused_as_the_record_says() {
        let r = recorded();
        let version = || vec!["version"];
        let other = Path::new("/elsewhere/site.rhai");
        let (journal, plan) = refused(&r, &Given { playbook: Some(other), ..Given::default() });
        assert_eq!(journal, "it ran playbook /p.rhai, not /elsewhere/site.rhai; give that playbook, or none");
        assert_eq!(
            plan,
            "it reviewed playbook /p.rhai, not /elsewhere/site.rhai; give that playbook, or none"
        );

        let (journal, plan) = refused(&r, &Given::default());
        assert_eq!(
            journal,
            "it ran with -e version; the journal does not keep values (they may be secret): pass it again"
        );
        assert_eq!(
            plan,
            "it was reviewed with -e version; the plan does not keep values (they may be secret): pass it again"
        );

        let tags = ["x".to_owned()];
        let (journal, plan) =
            refused(&r, &Given { extra_vars: version(), tags: Some(&tags), ..Given::default() });
        assert_eq!(journal, "it ran with --tags (none); a resume keeps the run's selection");
        assert_eq!(plan, "it was reviewed with --tags (none); a plan keeps its selection");

        let inventories = [PathBuf::from("/elsewhere/inv.yml")];
        let given = Given { inventories: &inventories, extra_vars: version(), ..Given::default() };
        let (journal, plan) = refused(&r, &given);
        assert_eq!(
            journal,
            "it ran with inventory /inv.yml, not /elsewhere/inv.yml; give that inventory, or none"
        );
        assert_eq!(
            plan,
            "it was reviewed with inventory /inv.yml, not /elsewhere/inv.yml; give that inventory, or none"
        );

        let mut r = r;
        r.more_inventories = vec!["/more.ini".into()];
        r.extra_vars.push("token".into());
        let given = [PathBuf::from("/inv.yml")];
        let (journal, _) =
            refused(&r, &Given { inventories: &given, extra_vars: version(), ..Given::default() });
        assert_eq!(
            journal,
            "it ran with inventory /inv.yml, /more.ini, not /inv.yml; give those inventories, in that order, or none"
        );
        let (_, plan) = refused(&r, &Given { limit: Some(&[]), ..Given::default() });
        assert_eq!(
            plan,
            "it was reviewed with -e version, -e token; the plan does not keep values (they may be secret): \
             pass them again"
        );
    }

    #[test]
    fn a_refusal_names_the_journal_or_the_reviewed_plan() {
        let why = Refusal::OtherSelection { flag: "--limit", had: None };
        let e = JournalError::Refused { id: "r0".into(), path: "r0.jsonl".into(), why: why.clone() };
        assert_eq!(
            e.to_string(),
            "cannot resume run r0 (r0.jsonl): it ran with --limit (none); a resume keeps the run's selection"
        );
        let e = ReviewError::Refused { path: "plan.json".into(), why };
        assert_eq!(
            e.to_string(),
            "cannot apply reviewed plan plan.json: it was reviewed with --limit (none); a plan keeps its selection"
        );
    }
}
