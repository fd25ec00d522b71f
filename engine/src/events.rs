//! What execution emits. Nothing in the run path prints: the progress display, the recap,
//! the JSON stream and the logs each subscribe to these events.
//!
//! Concurrency: every [`EventSink`] clone feeds one channel. A single dispatcher thread owns
//! the subscribers and hands each event to all of them in order; the channel closes when the
//! last sink is dropped, and [`EventBus::finish`] then joins the thread.
//!
//! Secrets: the dispatcher redacts every event with the bus's [`Redactor`] before any
//! subscriber sees it, so no subscriber can leak one. Every sink carries that redactor, so the
//! runner registers a secret output with the same one before it emits anything that holds it.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use serde::Serialize;

use crate::ids::TaskId;
use crate::redact::Redactor;

/// The outcome of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing needed to change.
    Ok,
    /// The host was changed (or, in check mode, would be).
    Changed,
    /// The task ran and failed.
    Failed,
    /// The task's host could not be reached.
    Unreachable,
    /// Not run: a dependency failed, or the run was stopped.
    Skipped,
    /// Check mode only: cannot be predicted before an earlier task really runs.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
            Status::Skipped => "skipped",
            Status::Unknown => "unknown",
        }
    }

    /// Whether dependents may run after this outcome.
    pub fn succeeded(self) -> bool {
        matches!(self, Status::Ok | Status::Changed | Status::Unknown)
    }
}

/// Counts per status, for one host or the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub unreachable: usize,
    pub skipped: usize,
    pub unknown: usize,
}

impl Counts {
    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: &Counts) {
        self.ok += other.ok;
        self.changed += other.changed;
        self.failed += other.failed;
        self.unreachable += other.unreachable;
        self.skipped += other.skipped;
        self.unknown += other.unknown;
    }

    /// Every task counted.
    pub fn total(&self) -> usize {
        self.ok + self.changed + self.failed + self.unreachable + self.skipped + self.unknown
    }

    pub fn add(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Changed => self.changed += 1,
            Status::Failed => self.failed += 1,
            Status::Unreachable => self.unreachable += 1,
            Status::Skipped => self.skipped += 1,
            Status::Unknown => self.unknown += 1,
        }
    }
}

/// The full report of one finished (or skipped) task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    /// The task's number in the playbook (stable across --limit and --tags).
    pub id: TaskId,
    pub host: String,
    pub task: String,
    pub module: String,
    /// `file:line:col` of the task in the playbook.
    pub location: String,
    pub status: Status,
    /// One line per change made (or, in check mode, that would be made).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// For failed, unreachable and skipped tasks: why, with the command, exit code and stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why an `ok` task did nothing worth noting (a handler nobody notified, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub elapsed_ms: u64,
    /// Unix time in milliseconds when the task started (0 if it never started).
    pub started_at_ms: u64,
    /// The command's exit code and output, for runs that ask for them (`engine exec`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Box<Captured>>,
}

/// What a command printed, kept for the run's report (`RunOptions::capture_output`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Captured {
    pub rc: Option<i64>,
    pub stdout: String,
    pub stderr: String,
}

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        playbook: String,
        tasks: usize,
        hosts: Vec<String>,
        check: bool,
        /// The run journal this run writes (`.engine/runs/<id>.jsonl`); none in check mode.
        #[serde(skip_serializing_if = "Option::is_none")]
        journal: Option<String>,
        /// The plan's `serial(...)` rolling changes, one line each: batches and threshold.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        rolling: Vec<String>,
    },
    HostConnected {
        host: String,
        elapsed_ms: u64,
    },
    HostUnreachable {
        host: String,
        error: String,
    },
    TaskStarted {
        id: TaskId,
        host: String,
        task: String,
        module: String,
    },
    TaskFinished(TaskReport),
    /// A resumed run does not rerun this task: it finished successfully in run `run`.
    TaskDone {
        id: TaskId,
        host: String,
        task: String,
        /// Its status in that run (`ok` or `changed`).
        status: Status,
        /// The id of the run (journal) it finished in.
        run: String,
    },
    /// The first Ctrl-C: no new task starts; running ones get `grace_secs` to finish.
    Interrupted {
        grace_secs: u64,
    },
    /// Tasks still running were abandoned: a second Ctrl-C, or the grace period ran out.
    Aborted {
        /// True when the grace period ran out (not a second Ctrl-C).
        grace_expired: bool,
    },
    RunFinished {
        elapsed_ms: u64,
        interrupted: bool,
        /// The longest chain of task durations through the graph: no scheduler can finish
        /// the run faster (with unlimited forks).
        critical_path_ms: u64,
        /// That chain's tasks, first first (empty for an empty plan).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        critical_path: Vec<TaskId>,
    },
}

impl Event {
    /// Hides every secret in the event's text (messages, diffs, changes, names).
    pub fn redact(&mut self, redactor: &Redactor) {
        let r = |text: &mut String| redactor.redact_in_place(text);
        match self {
            Event::RunStarted { playbook, hosts, journal, .. } => {
                r(playbook);
                journal.iter_mut().for_each(r);
                hosts.iter_mut().for_each(r);
            }
            Event::HostConnected { host, .. } => r(host),
            Event::HostUnreachable { host, error } => {
                r(host);
                r(error);
            }
            Event::TaskStarted { host, task, .. } | Event::TaskDone { host, task, .. } => {
                r(host);
                r(task);
            }
            Event::TaskFinished(report) => {
                r(&mut report.host);
                r(&mut report.task);
                r(&mut report.location);
                report.changes.iter_mut().for_each(r);
                report.diff.iter_mut().for_each(r);
                report.error.iter_mut().for_each(r);
                report.note.iter_mut().for_each(r);
                if let Some(output) = &mut report.output {
                    r(&mut output.stdout);
                    r(&mut output.stderr);
                }
            }
            Event::Interrupted { .. } | Event::Aborted { .. } | Event::RunFinished { .. } => {}
        }
    }
}

/// Receives every event, in order, on the dispatcher thread.
pub trait Subscriber: Send {
    fn on_event(&mut self, event: &Event);
    /// Called once after the last event.
    fn finish(&mut self) {}
}

/// Where execution sends events. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Event>,
    redactor: Arc<Redactor>,
}

impl EventSink {
    /// The redactor every event is redacted with: a secret added to it (a task's token
    /// output, say) is hidden in every event emitted after.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn emit(&self, event: Event) {
        // The dispatcher only goes away after every sink is dropped; a send cannot fail earlier.
        let _ = self.tx.send(event);
    }
}

/// The dispatcher thread and its subscribers.
#[derive(Debug)]
pub struct EventBus {
    thread: JoinHandle<()>,
}

impl EventBus {
    /// Starts the dispatcher. Drop every returned sink (and its clones), then call [`finish`](Self::finish).
    /// Every event is redacted with `redactor` first.
    pub fn start(
        mut subscribers: Vec<Box<dyn Subscriber>>,
        redactor: Arc<Redactor>,
    ) -> (EventSink, EventBus) {
        let (tx, rx) = mpsc::channel::<Event>();
        let dispatcher_redactor = redactor.clone();
        let thread = std::thread::spawn(move || {
            for mut event in rx {
                event.redact(&dispatcher_redactor);
                for s in &mut subscribers {
                    s.on_event(&event);
                }
            }
            for s in &mut subscribers {
                s.finish();
            }
        });
        (EventSink { tx, redactor }, EventBus { thread })
    }

    /// Waits until every event was delivered and every subscriber finished.
    pub fn finish(self) {
        let _ = self.thread.join();
    }
}
