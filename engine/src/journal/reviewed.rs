//! Reviewed plans: `engine check --out plan.json` writes the sealed plan with what its dry-run
//! predicted for every task; `engine run --plan plan.json` applies exactly that plan.
//!
//! ```text
//!  {format, engine, made_at_ms, playbook, inventory, more_inventories, extra_vars (names), limit, tags,
//!   hosts, tasks: [{id, host, task, module, fingerprint, predicted, changes, digest}], mac}
//! ```
//!
//! - `fingerprint`: the task's input fingerprint ([`super::fingerprint`]): what it will do. A
//!   run whose playbook, inventory or `-e` values make any task differ is refused before it
//!   starts, as is one whose plan has other tasks or other hosts.
//! - `predicted`: `would_change`, `unchanged`, `unknown` (its arguments wait for an earlier
//!   task's output, or its `when` for an earlier task's run: the dry-run could not know) or
//!   `failed`. A plan with a failed prediction is refused: nothing was reviewed there.
//! - `digest`: HMAC, with the workspace key, of the changes the dry-run planned and their diff
//!   (which holds what is on the host now). `run --plan` plans each task again before applying
//!   it, and a task whose plan no longer has that digest (the host drifted) fails before
//!   changing anything, naming what was reviewed and what it would do now.
//! - `changes`: what the dry-run said it would change, secrets hidden, for the reviewer.
//! - `mac`: HMAC of the whole document with the workspace key: a plan edited after review, or
//!   made in another workspace, is refused.
//!
//! Keyed, because diffs and arguments hold secrets: the file alone must not let anyone test
//! guesses of them offline. It is written 0600.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{RecordedIn, Refusal};
use super::inputs::{Given, RunInputs, same_run};
use super::key::JournalKey;
use crate::events::{Status, TaskReport};
use crate::ids::TaskId;
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::run::Expected;

/// The format this engine writes and reads.
pub const FORMAT: u32 = 1;

/// What the dry-run predicted for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Predicted {
    WouldChange,
    Unchanged,
    /// The dry-run could not know (it depends on an earlier task really running).
    Unknown,
    Failed,
}

impl Predicted {
    fn of(status: Status) -> Predicted {
        match status {
            Status::Changed => Predicted::WouldChange,
            Status::Ok => Predicted::Unchanged,
            Status::Unknown | Status::Skipped => Predicted::Unknown,
            Status::Failed | Status::Unreachable => Predicted::Failed,
        }
    }
}

/// One task of a reviewed plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewedTask {
    pub id: TaskId,
    pub host: String,
    pub task: String,
    pub module: String,
    pub fingerprint: String,
    pub predicted: Predicted,
    /// What it would change, as the dry-run said (secrets hidden).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// The dry-run's failure, for a `failed` prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The keyed digest of the planned changes and diff; absent when `unknown` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A plan as `engine check --out` reviewed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewedPlan {
    pub format: u32,
    /// The engine version that made it.
    pub engine: String,
    /// Unix time in milliseconds of the dry-run.
    pub made_at_ms: u64,
    /// The playbook, inventories, `-e` names (their values are not kept; the fingerprints
    /// tell whether they changed), `--limit` and `--tags` (see [`super::inputs`]), written as
    /// fields of the document itself, in this place (the MAC covers them as written).
    #[serde(flatten)]
    pub inputs: RunInputs,
    /// The plan's hosts, in inventory order.
    pub hosts: Vec<String>,
    pub tasks: Vec<ReviewedTask>,
    /// HMAC of the document without this field; empty while it is being sealed.
    #[serde(default)]
    pub mac: String,
}

/// The keyed digest of what a task's plan would change: its change lines and its diff.
pub fn digest(key: &JournalKey, changes: &[String], diff: Option<&str>) -> String {
    let mut text = String::new();
    for line in changes {
        text.push_str(&format!("change {}:{line}\n", line.len()));
    }
    if let Some(diff) = diff {
        text.push_str(&format!("diff {}:{diff}\n", diff.len()));
    }
    key.fingerprint(format!("reviewed-plan digest\n{text}").as_bytes())
}

impl ReviewedPlan {
    /// The reviewed plan of `plan` (made from `inputs`), from its dry-run's `reports` (indexed
    /// by node) and its tasks' `fingerprints`, sealed with `key`. Change lines and errors are redacted.
    pub fn new(
        plan: &Plan,
        reports: &[TaskReport],
        fingerprints: &BTreeMap<TaskId, String>,
        inputs: RunInputs,
        key: &JournalKey,
        redactor: &Redactor,
    ) -> ReviewedPlan {
        let tasks = plan
            .tasks()
            .map(|(node, task)| {
                let report = reports.get(node.0);
                let predicted = report.map_or(Predicted::Unknown, |r| Predicted::of(r.status));
                let known = matches!(predicted, Predicted::WouldChange | Predicted::Unchanged);
                ReviewedTask {
                    id: task.id,
                    host: task.host.clone(),
                    task: redactor.redact(&task.name).into_owned(),
                    module: task.module.to_owned(),
                    fingerprint: fingerprints.get(&task.id).cloned().unwrap_or_default(),
                    predicted,
                    changes: report
                        .map(|r| r.changes.iter().map(|c| redactor.redact(c).into_owned()).collect())
                        .unwrap_or_default(),
                    error: report.and_then(|r| r.error.as_deref()).map(|e| redactor.redact(e).into_owned()),
                    digest: known.then(|| {
                        report.map_or_else(String::new, |r| digest(key, &r.changes, r.diff.as_deref()))
                    }),
                }
            })
            .collect();
        let mut reviewed = ReviewedPlan {
            format: FORMAT,
            engine: env!("CARGO_PKG_VERSION").to_owned(),
            made_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            inputs,
            hosts: plan.hosts().to_vec(),
            tasks,
            mac: String::new(),
        };
        reviewed.mac = reviewed.compute_mac(key);
        reviewed
    }

    fn compute_mac(&self, key: &JournalKey) -> String {
        let mut unsealed = self.clone();
        unsealed.mac = String::new();
        let text = serde_json::to_string(&unsealed).unwrap_or_default();
        key.fingerprint(format!("reviewed-plan\n{text}").as_bytes())
    }

    /// The document, pretty-printed, for the file.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads and verifies the reviewed plan at `path` with the workspace `key`.
    pub fn load(path: &Path, key: &JournalKey) -> Result<ReviewedPlan, ReviewError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReviewError::Read { path: path.to_owned(), why: e.to_string() })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ReviewError::Read { path: path.to_owned(), why: format!("not JSON: {e}") })?;
        let format = value.get("format").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if format != u64::from(FORMAT) {
            return Err(ReviewError::Read {
                path: path.to_owned(),
                why: format!("reviewed plan format {format} (this engine reads {FORMAT})"),
            });
        }
        let plan: ReviewedPlan = serde_json::from_value(value)
            .map_err(|e| ReviewError::Read { path: path.to_owned(), why: e.to_string() })?;
        if plan.mac.is_empty() || plan.compute_mac(key) != plan.mac {
            return Err(ReviewError::Unverified { path: path.to_owned() });
        }
        Ok(plan)
    }

    /// The reviewed plan at `path`, verified with the workspace `key`, and the inputs of the run
    /// that applies it: the plan's, checked against what the command line gives (see
    /// [`same_run`]).
    pub fn open(
        path: &Path,
        given: &Given<'_>,
        key: &JournalKey,
    ) -> Result<(ReviewedPlan, RunInputs), ReviewError> {
        let reviewed = ReviewedPlan::load(path, key)?;
        let inputs = same_run(&reviewed.inputs, given)
            .map_err(|why| ReviewError::Refused { path: path.to_owned(), why })?;
        Ok((reviewed, inputs))
    }

    /// Checks that `plan` (made from what the command line gives now, with the tasks'
    /// `fingerprints`) is the plan that was reviewed: the same hosts, the same tasks, each
    /// doing the same, and no failed prediction. Returns every difference found.
    pub fn matches(&self, plan: &Plan, fingerprints: &BTreeMap<TaskId, String>) -> Result<(), Vec<Mismatch>> {
        let mut problems = Vec::new();
        if plan.hosts() != self.hosts.as_slice() {
            problems.push(Mismatch::Hosts { reviewed: self.hosts.clone(), now: plan.hosts().to_vec() });
        }
        let reviewed: HashMap<TaskId, &ReviewedTask> = self.tasks.iter().map(|t| (t.id, t)).collect();
        let mut seen = BTreeSet::new();
        for (_, task) in plan.tasks() {
            seen.insert(task.id);
            match reviewed.get(&task.id) {
                None => problems.push(Mismatch::NewTask { host: task.host.clone(), task: task.name.clone() }),
                Some(r) if fingerprints.get(&task.id) != Some(&r.fingerprint) || r.host != task.host => {
                    problems.push(Mismatch::Changed { host: task.host.clone(), task: task.name.clone() });
                }
                Some(_) => {}
            }
        }
        for r in self.tasks.iter().filter(|r| !seen.contains(&r.id)) {
            problems.push(Mismatch::Gone { host: r.host.clone(), task: r.task.clone() });
        }
        for r in self.tasks.iter().filter(|r| r.predicted == Predicted::Failed) {
            problems.push(Mismatch::FailedReview {
                host: r.host.clone(),
                task: r.task.clone(),
                error: r.error.clone().unwrap_or_default(),
            });
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// What the runner checks each task against: the reviewed digests, by task.
    pub fn expectations(&self) -> HashMap<TaskId, Expected> {
        self.tasks
            .iter()
            .map(|t| {
                let expected = match &t.digest {
                    Some(digest) => Expected::Planned { digest: digest.clone(), changes: t.changes.clone() },
                    None => Expected::NotKnown,
                };
                (t.id, expected)
            })
            .collect()
    }
}

/// One way the plan of `run --plan` differs from the reviewed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("made for hosts {}, not {}", .reviewed.join(", "), .now.join(", "))]
    Hosts { reviewed: Vec<String>, now: Vec<String> },
    #[error("{host}: {task}: not in the reviewed plan")]
    NewTask { host: String, task: String },
    #[error("{host}: {task}: no longer in the plan")]
    Gone { host: String, task: String },
    #[error("{host}: {task}: changed since the review (playbook, inventory, -e values or a file it reads)")]
    Changed { host: String, task: String },
    #[error("{host}: {task}: its dry-run failed, so nothing was reviewed there: {error}")]
    FailedReview { host: String, task: String, error: String },
}

/// Why a reviewed plan cannot be applied.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReviewError {
    #[error("reviewed plan {}: {why}", path.display())]
    #[diagnostic(code(engine::plan_file))]
    Read { path: PathBuf, why: String },
    #[error(
        "reviewed plan {}: it does not verify with this workspace's key: it was changed after \
         `engine check --out`, or made in another workspace",
        path.display()
    )]
    #[diagnostic(code(engine::plan_file::unverified))]
    Unverified { path: PathBuf },
    /// The command line asks for another run than the one reviewed.
    #[error("cannot apply reviewed plan {}: {}", path.display(), why.worded(RecordedIn::ReviewedPlan))]
    #[diagnostic(code(engine::plan_file::refused))]
    Refused { path: PathBuf, why: Refusal },
    #[error(
        "reviewed plan {}: this is not the plan that was reviewed; nothing was changed:\n{}",
        path.display(),
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    #[diagnostic(
        code(engine::plan_file::mismatch),
        help("run `engine check ... --out FILE` again and review the new plan")
    )]
    Mismatch { path: PathBuf, problems: Vec<Mismatch> },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviewed() -> ReviewedPlan {
        ReviewedPlan {
            format: FORMAT,
            engine: "0.1.0".into(),
            made_at_ms: 1_700_000_000_000,
            inputs: RunInputs {
                playbook: "/p/site.rhai".into(),
                inventory: "/p/inv.yml".into(),
                more_inventories: vec!["/p/more.ini".into()],
                extra_vars: vec!["version".into(), "token".into()],
                limit: Some(vec!["web".into()]),
                tags: None,
            },
            hosts: vec!["web1".into()],
            tasks: vec![ReviewedTask {
                id: TaskId(0),
                host: "web1".into(),
                task: "motd".into(),
                module: "copy".into(),
                fingerprint: "aa".into(),
                predicted: Predicted::WouldChange,
                changes: vec!["content of /etc/motd".into()],
                error: None,
                digest: Some("dd".into()),
            }],
            mac: String::new(),
        }
    }

    /// A reviewed plan as this engine has always written it (byte for byte: its MAC covers
    /// them, so plans reviewed before still verify), read back, and still strict.
    #[test]
    fn a_reviewed_plan_is_written_and_read_as_before() {
        let key = JournalKey::from_bytes([7; 32]);
        let full = r#"{
  "format": 1,
  "engine": "0.1.0",
  "made_at_ms": 1700000000000,
  "playbook": "/p/site.rhai",
  "inventory": "/p/inv.yml",
  "more_inventories": [
    "/p/more.ini"
  ],
  "extra_vars": [
    "version",
    "token"
  ],
  "limit": [
    "web"
  ],
  "tags": null,
  "hosts": [
    "web1"
  ],
  "tasks": [
    {
      "id": 0,
      "host": "web1",
      "task": "motd",
      "module": "copy",
      "fingerprint": "aa",
      "predicted": "would_change",
      "changes": [
        "content of /etc/motd"
      ],
      "digest": "dd"
    }
  ],
  "mac": "643a7a28227b2773ac357066b02f25a7a098a7490c01a5dddac3d20845740070"
}
"#;
        let mut r = reviewed();
        r.mac = r.compute_mac(&key);
        assert_eq!(r.to_json(), full);
        let read: ReviewedPlan = serde_json::from_str(full).unwrap();
        assert_eq!(read, r);
        assert_eq!(read.compute_mac(&key), read.mac);
        // One inventory: left out, as before.
        let mut r = reviewed();
        r.inputs.more_inventories.clear();
        r.mac = r.compute_mac(&key);
        let short = r#"{"format":1,"engine":"0.1.0","made_at_ms":1700000000000,"playbook":"/p/site.rhai","inventory":"/p/inv.yml","extra_vars":["version","token"],"limit":["web"],"tags":null,"hosts":["web1"],"tasks":[{"id":0,"host":"web1","task":"motd","module":"copy","fingerprint":"aa","predicted":"would_change","changes":["content of /etc/motd"],"digest":"dd"}],"mac":"625b99021fee9fadb0548199428d82eb2647d8dfa159e5a9554b8ddb9d196994"}"#;
        assert_eq!(serde_json::to_string(&r).unwrap(), short);
        assert_eq!(serde_json::from_str::<ReviewedPlan>(short).unwrap(), r);
        // A field no engine writes is refused, not ignored.
        let extra = short.replacen(r#""tags":null"#, r#""tags":null,"become":true"#, 1);
        let e = serde_json::from_str::<ReviewedPlan>(&extra).unwrap_err().to_string();
        assert!(e.contains("unknown field `become`"), "{e}");
    }
}
