//! The lines of a journal.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::inputs::RunInputs;
use crate::events::Status;
use crate::ids::TaskId;
use crate::plan::Plan;

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Task(TaskLine),
    Finished(Finished),
}

impl Record {
    /// Parses one line. (Not a derived `Deserialize`: serde's internally tagged enums cannot
    /// read the integer keys of `fingerprints`, which JSON writes as strings.)
    pub fn parse(line: &str) -> Result<Record, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let kind = value.get("kind").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        match kind.as_str() {
            "header" => serde_json::from_value(value).map(Record::Header),
            "task" => serde_json::from_value(value).map(Record::Task),
            "finished" => serde_json::from_value(value).map(Record::Finished),
            other => Err(serde::de::Error::custom(format!("unknown kind {other:?}"))),
        }
    }
}

/// The first line: what was run, and each task's input fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The journal format; bumped when lines change incompatibly.
    pub format: u32,
    /// This run's id (the journal's file name without `.jsonl`).
    pub id: String,
    /// The engine version that wrote it.
    pub engine: String,
    /// Unix time in milliseconds when the run started.
    pub started_at_ms: u64,
    /// The playbook, inventories, `-e` names, `--limit` and `--tags` (see
    /// [`super::inputs`]), written as fields of the header line itself, in this place.
    #[serde(flatten)]
    pub inputs: RunInputs,
    /// The run this one resumes, if any.
    pub resumes: Option<String>,
    /// Task id → HMAC-SHA256, with the workspace key, of what the task will do (see
    /// [`super::fingerprint`]), for every task of the selected plan, including those a resume
    /// does not rerun.
    pub fingerprints: BTreeMap<TaskId, String>,
    /// Task id → the tasks it waits for (every edge of the plan this run runs: order, `after`,
    /// data, notify, batch), for the run report's waits and critical path. Tasks that wait for
    /// nothing are left out; absent in journals of engines before it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deps: BTreeMap<TaskId, Vec<TaskId>>,
}

impl Header {
    /// The current journal format. 2: lines carry a chained MAC, fingerprints are keyed.
    pub const FORMAT: u32 = 2;

    /// The header of a new run of `inputs`, started now, resuming run `resumes` if any.
    pub fn new(inputs: RunInputs, resumes: Option<String>, fingerprints: BTreeMap<TaskId, String>) -> Self {
        Header {
            format: Header::FORMAT,
            id: super::run_id::new(),
            engine: env!("CARGO_PKG_VERSION").to_owned(),
            started_at_ms: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            inputs,
            resumes,
            fingerprints,
            deps: BTreeMap::new(),
        }
    }

    /// This header, with the dependencies of `plan`'s tasks (see [`Header::deps`]).
    pub fn with_deps_of(mut self, plan: &Plan) -> Self {
        self.deps = plan
            .tasks()
            .filter_map(|(node, task)| {
                let mut waits: Vec<TaskId> = plan.dependencies(node).map(|d| plan.task(d).id).collect();
                waits.sort_unstable();
                waits.dedup();
                (!waits.is_empty()).then_some((task.id, waits))
            })
            .collect();
        self
    }
}

/// A task's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskLine {
    /// The task's stable id (its number in the playbook).
    pub id: TaskId,
    pub host: String,
    pub task: String,
    pub status: Status,
    /// Set when this run did not rerun the task: the id of the run it finished in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_in: Option<String>,
    /// When the task started, in milliseconds after the header's `started_at_ms`; absent when
    /// it never started (skipped, or done in an earlier run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    /// How long it ran, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Why it failed, was unreachable or was skipped, redacted like every event: the
    /// command, exit code and stderr tail, as the console shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The last line, written when the run ended (not when the process was killed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// The user stopped the run (Ctrl-C).
    pub interrupted: bool,
    /// Running tasks were abandoned (second Ctrl-C, or the grace period ran out).
    pub aborted: bool,
    pub elapsed_ms: u64,
    /// The run's critical path (see [`crate::events::Event::RunFinished`]): its length, as the
    /// recap prints it, and its tasks, first first. Absent in journals of engines before it.
    #[serde(default)]
    pub critical_path_ms: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_path: Vec<TaskId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with every field set, as a journal line (before its MAC).
    fn header() -> Header {
        Header {
            format: Header::FORMAT,
            id: "20261207T120000.000Z-abcdef".into(),
            engine: "0.1.0".into(),
            started_at_ms: 1_700_000_000_000,
            inputs: RunInputs {
                playbook: "/p/site.rhai".into(),
                inventory: "/p/inv.yml".into(),
                more_inventories: vec!["/p/more.ini".into()],
                extra_vars: vec!["version".into(), "token".into()],
                limit: Some(vec!["web".into()]),
                tags: Some(vec!["certs".into(), "nginx".into()]),
            },
            resumes: Some("20261207T110000.000Z-012345".into()),
            fingerprints: BTreeMap::from([(TaskId(0), "aa".into()), (TaskId(1), "bb".into())]),
            deps: BTreeMap::from([(TaskId(1), vec![TaskId(0)])]),
        }
    }

    /// The header line as this engine has always written it (byte for byte: journals written
    /// before must still read, and their MACs cover these bytes), and read back.
    #[test]
    fn a_header_is_written_and_read_as_before() {
        let full = r#"{"kind":"header","format":2,"id":"20261207T120000.000Z-abcdef","engine":"0.1.0","started_at_ms":1700000000000,"playbook":"/p/site.rhai","inventory":"/p/inv.yml","more_inventories":["/p/more.ini"],"extra_vars":["version","token"],"limit":["web"],"tags":["certs","nginx"],"resumes":"20261207T110000.000Z-012345","fingerprints":{"0":"aa","1":"bb"},"deps":{"1":[0]}}"#;
        assert_eq!(serde_json::to_string(&Record::Header(header())).unwrap(), full);
        assert_eq!(Record::parse(full).unwrap(), Record::Header(header()));
        // One inventory, no --limit, no deps: those are left out, or null, as before.
        let mut h = header();
        h.inputs.more_inventories.clear();
        h.inputs.limit = None;
        h.resumes = None;
        h.deps.clear();
        let short = r#"{"kind":"header","format":2,"id":"20261207T120000.000Z-abcdef","engine":"0.1.0","started_at_ms":1700000000000,"playbook":"/p/site.rhai","inventory":"/p/inv.yml","extra_vars":["version","token"],"limit":null,"tags":["certs","nginx"],"resumes":null,"fingerprints":{"0":"aa","1":"bb"}}"#;
        assert_eq!(serde_json::to_string(&Record::Header(h.clone())).unwrap(), short);
        assert_eq!(Record::parse(short).unwrap(), Record::Header(h));
    }
}
