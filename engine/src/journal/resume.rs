//! `engine run --resume`: checking that a resume reruns the same thing, and choosing its tasks.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::error::{JournalError, Refusal};
use super::key::JournalKey;
use super::reader::Journal;
use crate::events::Status;
use crate::ids::TaskId;
use crate::plan::Plan;
use crate::run::{Carried, CarriedTask};

/// What the command line says about the run to resume; `None` means "as in the journal".
#[derive(Debug, Clone, Default)]
pub struct Given<'a> {
    pub playbook: Option<&'a Path>,
    /// The `-i` sources, in order; empty: as in the journal.
    pub inventories: &'a [PathBuf],
    /// Names of the `-e` variables given.
    pub extra_vars: Vec<&'a str>,
    pub limit: Option<&'a [String]>,
    pub tags: Option<&'a [String]>,
}

/// The playbook, inventory, `--limit` and `--tags` of the resumed run: the journal's, or the
/// command line's where they agree. Refuses another playbook or inventory, other
/// `--limit`/`--tags`, and missing `-e` variables (their values are not in the journal).
pub fn same_run(journal: &Journal, given: &Given) -> Result<Resolved, JournalError> {
    let h = &journal.header;
    let refuse = |why: Refusal| JournalError::Refused { id: h.id.clone(), path: journal.path.clone(), why };
    let playbook = match given.playbook.map(absolute) {
        Some(p) if p != h.playbook => {
            return Err(refuse(Refusal::OtherPlaybook { ran: h.playbook.clone(), given: p }));
        }
        _ => h.playbook.clone(),
    };
    let given_inventories: Vec<PathBuf> = given.inventories.iter().map(|i| absolute(i)).collect();
    let inventories = match given_inventories {
        given if !given.is_empty() && given != h.inventories() => {
            return Err(refuse(Refusal::OtherInventory { ran: h.inventories(), given }));
        }
        _ => h.inventories(),
    };
    let missing: Vec<String> =
        h.extra_vars.iter().filter(|v| !given.extra_vars.contains(&v.as_str())).cloned().collect();
    if !missing.is_empty() {
        return Err(refuse(Refusal::MissingVars { had: h.extra_vars.clone(), missing }));
    }
    let same = |given: Option<&[String]>, had: &Option<Vec<String>>, flag: &'static str| match given {
        Some(g) if had.as_deref() != Some(g) => {
            Err(refuse(Refusal::OtherSelection { flag, had: had.clone() }))
        }
        _ => Ok(had.clone()),
    };
    Ok(Resolved {
        playbook,
        inventories,
        limit: same(given.limit, &h.limit, "--limit")?,
        tags: same(given.tags, &h.tags, "--tags")?,
    })
}

/// The journal of run `id` in `runs` (the latest when `id` is empty), verified with the
/// workspace `key` and checked against what the command line gives (see [`same_run`]), with
/// the resumed run's inputs completed from it. A journal refused is left as it is.
pub fn open(
    runs: &Path,
    id: &str,
    given: &Given,
    key: &JournalKey,
) -> Result<(Journal, Resolved), JournalError> {
    let journal = super::find(runs, id, key, "--resume")?;
    let resolved = same_run(&journal, given)?;
    Ok((journal, resolved))
}

/// The resumed run's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub playbook: PathBuf,
    pub inventories: Vec<PathBuf>,
    pub limit: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

/// The tasks of `full` (the plan as the resumed run selected it) that must run again, and the
/// ones carried over as done. `fingerprints` are `full`'s, now.
///
/// Besides what [`Plan::select_resume`] reruns, every task of a host that was unreachable in
/// the journal runs again: the host may have been rebooted or replaced since, so what was done
/// there before is not known to hold (idempotence makes the repeat cheap where it does).
pub fn select(full: &Plan, journal: &Journal, fingerprints: &BTreeMap<TaskId, String>) -> (Plan, Carried) {
    let before = &journal.header.fingerprints;
    let lost: HashSet<&str> =
        journal.tasks.values().filter(|t| t.status == Status::Unreachable).map(|t| t.host.as_str()).collect();
    let must_rerun = |t: &crate::plan::Task| {
        !journal.succeeded(t.id)
            || before.get(&t.id) != fingerprints.get(&t.id)
            || lost.contains(t.host.as_str())
    };
    let changed_before =
        |t: &crate::plan::Task| journal.tasks.get(&t.id).is_some_and(|l| l.status == Status::Changed);
    let resume = full.select_resume(&must_rerun, &changed_before);
    let tasks = full
        .tasks()
        .map(|(_, t)| t)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::journal::fingerprint::fingerprints;
    use crate::journal::{Header, Record, TaskLine};
    use crate::playbook::{LoadOptions, load_source};

    /// ```text
    /// h0: a ──▶ b          h1: c ──▶ d          h2: e
    /// ```
    fn plan() -> Plan {
        let inventory =
            Inventory::parse("all:\n  hosts:\n    h0: {}\n    h1: {}\n    h2: {}\n", Path::new("inv.yml"))
                .unwrap();
        let playbook = r#"
            for pair in [[host("h0"), ["a", "b"]], [host("h1"), ["c", "d"]], [host("h2"), ["e"]]] {
                for n in pair[1] { pair[0].command(n, #{ argv: ["true"] }); }
            }
        "#;
        load_source(Path::new("p.rhai"), playbook, &inventory, &LoadOptions::default()).unwrap()
    }

    /// A journal of `plan` (run `r0`) where each task ended ok, except those in `outcomes`
    /// (`None`: it never ended).
    fn journal(
        plan: &Plan,
        outcomes: &[(&str, Option<Status>)],
        fingerprints: &BTreeMap<TaskId, String>,
    ) -> Journal {
        let header = Header {
            format: Header::FORMAT,
            id: "r0".into(),
            engine: "0".into(),
            started_at_ms: 0,
            playbook: "/p.rhai".into(),
            inventory: "/inv.yml".into(),
            more_inventories: Vec::new(),
            extra_vars: Vec::new(),
            limit: None,
            tags: None,
            resumes: None,
            fingerprints: fingerprints.clone(),
            deps: BTreeMap::new(),
        };
        let mut records = vec![Record::Header(header)];
        for t in plan.tasks().map(|(_, t)| t) {
            let status = outcomes.iter().find(|o| o.0 == t.name).map_or(Some(Status::Ok), |o| o.1);
            if let Some(status) = status {
                let line = TaskLine {
                    id: t.id,
                    host: t.host.clone(),
                    task: t.name.clone(),
                    status,
                    done_in: None,
                    start_ms: Some(0),
                    elapsed_ms: 1,
                    message: None,
                };
                records.push(Record::Task(line));
            }
        }
        let (mut text, mut prev) = (String::new(), String::new());
        for record in records {
            let (line, mac) = key().seal(&prev, &serde_json::to_string(&record).unwrap());
            text += &(line + "\n");
            prev = mac;
        }
        Journal::parse(Path::new("r0.jsonl"), &text, &key()).unwrap()
    }

    fn key() -> JournalKey {
        JournalKey::from_bytes([3; 32])
    }

    fn names(plan: &Plan) -> Vec<String> {
        let mut v: Vec<String> = plan.tasks().map(|(_, t)| t).map(|t| t.name.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn unfinished_tasks_changed_ones_and_lost_hosts_run_again() {
        let full = plan();
        let prints = fingerprints(&full, &key());
        // b never ended (a killed run): b. Everything else is carried over, as done in r0.
        let (rerun, carried) = select(&full, &journal(&full, &[("b", None)], &prints), &prints);
        assert_eq!(names(&rerun), ["b"]);
        assert_eq!(carried.tasks.len(), 4);
        assert!(carried.tasks.iter().all(|t| t.run == "r0" && t.status == Status::Ok));
        // d was unreachable: all of h1 again (c was done there, but the host may be new).
        let (rerun, _) =
            select(&full, &journal(&full, &[("d", Some(Status::Unreachable))], &prints), &prints);
        assert_eq!(names(&rerun), ["c", "d"]);
        // e's input changed since: e.
        let mut before = prints.clone();
        let e = full.tasks().map(|(_, t)| t).find(|t| t.name == "e").unwrap().id;
        before.insert(e, "older".into());
        let (rerun, _) = select(&full, &journal(&full, &[], &before), &prints);
        assert_eq!(names(&rerun), ["e"]);
    }

    #[test]
    fn a_resume_of_another_playbook_or_inventory_or_without_its_vars_is_refused() {
        let full = plan();
        let prints = fingerprints(&full, &key());
        let mut j = journal(&full, &[], &prints);
        j.header.extra_vars = vec!["version".into()];
        let other = Path::new("/elsewhere/site.rhai");
        let e = same_run(&j, &Given { playbook: Some(other), ..Given::default() }).unwrap_err().to_string();
        assert!(e.contains("it ran playbook /p.rhai, not /elsewhere/site.rhai"), "{e}");
        let e = same_run(&j, &Given::default()).unwrap_err().to_string();
        assert!(e.contains("-e version") && e.contains("pass it again"), "{e}");
        let ok = same_run(&j, &Given { extra_vars: vec!["version"], ..Given::default() }).unwrap();
        assert_eq!(
            (ok.playbook.as_path(), ok.inventories.as_slice()),
            (Path::new("/p.rhai"), [PathBuf::from("/inv.yml")].as_slice())
        );
        let tags = ["x".to_owned()];
        let e = same_run(&j, &Given { extra_vars: vec!["version"], tags: Some(&tags), ..Given::default() });
        assert!(e.unwrap_err().to_string().contains("keeps the run's selection"));
        let inventories = [PathBuf::from("/elsewhere/inv.yml")];
        let e = same_run(
            &j,
            &Given { inventories: &inventories, extra_vars: vec!["version"], ..Given::default() },
        );
        let e = e.unwrap_err().to_string();
        assert!(e.contains("it ran with inventory /inv.yml, not /elsewhere/inv.yml"), "{e}");
        // Several -i: all of them, in order, are the run's.
        j.header.more_inventories = vec!["/more.ini".into()];
        let given = [PathBuf::from("/inv.yml"), PathBuf::from("/more.ini")];
        let ok =
            same_run(&j, &Given { inventories: &given, extra_vars: vec!["version"], ..Given::default() });
        assert_eq!(ok.unwrap().inventories, given);
        let e = same_run(
            &j,
            &Given { inventories: &given[..1], extra_vars: vec!["version"], ..Given::default() },
        );
        assert!(e.unwrap_err().to_string().contains(
            "it ran with inventory /inv.yml, /more.ini, not /inv.yml; give those inventories, in that order"
        ));
    }
}
