//! `engine run --resume`: checking that a resume reruns the same thing, and choosing its tasks.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::error::JournalError;
use super::inputs::{Given, RunInputs, same_run};
use super::key::JournalKey;
use super::reader::Journal;
use crate::events::Status;
use crate::ids::TaskId;
use crate::plan::Plan;
use crate::run::{Carried, CarriedTask};

/// The journal of run `id` in `runs` (the latest when `id` is empty), verified with the
/// workspace `key`, and the resumed run's inputs: its header's, checked against what the
/// command line gives (see [`same_run`]). A journal refused is left as it is.
pub fn open(
    runs: &Path,
    id: &str,
    given: &Given<'_>,
    key: &JournalKey,
) -> Result<(Journal, RunInputs), JournalError> {
    let journal = super::find(runs, id, key, "--resume")?;
    let inputs = same_run(&journal.header.inputs, given).map_err(|why| JournalError::Refused {
        id: journal.header.id.clone(),
        path: journal.path.clone(),
        why,
    })?;
    Ok((journal, inputs))
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
            inputs: RunInputs {
                playbook: "/p.rhai".into(),
                inventory: "/inv.yml".into(),
                ..RunInputs::default()
            },
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
}
