//! Runs a sealed plan: the walker decides when, this decides what. For each task it takes
//! the module built when the plan was sealed, or, for a task whose arguments read run-time
//! values, fills those values into the arguments sealed with the plan ([`refs::Filler`]) and
//! builds the module from them (never reading the JSON arguments again); then it connects the
//! host (once), plans, and (unless checking) applies, emitting events all the way.
//!
//! It also registers secret outputs (tokens, keys) with the event bus's redactor
//! ([`EventSink::redactor`]) as soon as a task produces them, reports the tasks a resumed run carries over ([`Carried`]), and
//! obeys the user's [`Stop`]: no new tasks after `cancel`, abandon running ones on `abort`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod carried;
mod reviewed;
mod stat_cache;
mod stop;
mod task_error;

pub use carried::{Carried, CarriedTask};
pub use reviewed::{Digest, Expected, Reviewed};
pub use stop::{Forced, Stop, watch_ctrl_c};
pub use task_error::TaskError;

/// What the runner runs on: a [`Host`] it connects before the host's first task.
pub use contract::Target;

use contract::{Host, Module, Outputs, PlanOptions};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::events::{Counts, Event, EventSink, Status, TaskReport};
use crate::ids::{NodeId, TaskId};
use crate::plan::refs::{self, Ref};
use crate::plan::{BatchGate, Edge, Plan, Prediction, Task};
use crate::sched::{Budget, Dag, Gate, NodeOutcome, WalkEvent, Walker};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Plan only: report what would change, change nothing.
    pub check: bool,
    /// Produce diffs of file-like changes.
    pub diff: bool,
    pub walker: Walker,
    /// A resumed run: the tasks it does not rerun, done in an earlier run.
    pub carried: Option<Arc<Carried>>,
    /// Where the run journal is written, for the recap (none in check mode).
    pub journal: Option<String>,
    /// Put each task's exit code, stdout and stderr in its report (`engine exec`).
    pub capture_output: bool,
    /// `engine run --plan`: the plan reviewed before; a task whose plan is not the reviewed one
    /// fails before it changes anything. (Needs `diff`: the digests cover the diffs.)
    pub reviewed: Option<Arc<Reviewed>>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Every task's report, indexed by node.
    pub reports: Vec<TaskReport>,
    pub elapsed: Duration,
    pub interrupted: bool,
}

impl RunSummary {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for r in &self.reports {
            counts.add(r.status);
        }
        counts
    }

    /// True when every task succeeded and the run was not interrupted.
    pub fn success(&self) -> bool {
        !self.interrupted && self.reports.iter().all(|r| r.status.succeeded())
    }

    /// The dry-run prediction per node, for `engine graph --check`.
    pub fn predictions(&self) -> Vec<Prediction> {
        self.reports
            .iter()
            .map(|r| match r.status {
                Status::Changed => Prediction::WouldChange,
                Status::Ok => Prediction::Unchanged,
                Status::Unknown | Status::Skipped => Prediction::Unknown,
                Status::Failed | Status::Unreachable => Prediction::Failed,
            })
            .collect()
    }
}

/// One host's connection, opened by its first task and shared by the rest.
struct Slot {
    target: Arc<stat_cache::CachedTarget>,
    /// Set once by whichever task of the host gets there first; the others wait on it.
    connected: OnceCell<Result<(), String>>,
    /// The host's facts, gathered by the first task (of any host) that needs them.
    facts: OnceCell<Result<contract::facts::Facts, String>>,
}

/// Shared by every task future of one run.
struct Shared {
    plan: Plan,
    options: RunOptions,
    slots: HashMap<String, Slot>,
    events: EventSink,
    /// Each host's tasks, in plan order: a host's first task looks up its own tasks' paths
    /// here, rather than going through the whole plan once per host (quadratic in the fleet).
    nodes_by_host: HashMap<String, Vec<NodeId>>,
    /// Outputs of finished tasks, by task id (not node: ids survive selection); written once
    /// per task, read by its dependents. Only the keys in `read` are kept: a command's
    /// `stdout` that no task reads is dropped as soon as its task has finished, and a task
    /// whose outputs no task reads has no entry.
    outputs: Mutex<HashMap<TaskId, Option<Outputs>>>,
    /// The output keys some task of the plan reads, by the task that produces them.
    read: HashMap<TaskId, HashSet<String>>,
    /// The user's stop (first Ctrl-C): retry delays end early when it fires.
    cancel: CancellationToken,
    /// The report of each finished task, by node; filled as tasks end.
    reports: Mutex<Vec<Option<TaskReport>>>,
}

/// Runs `plan` against `targets` (one per host of the plan). `stop.cancel` stops new tasks
/// (the first Ctrl-C) and tasks in flight finish; `stop.abort` abandons them too.
pub async fn run(
    plan: &Plan,
    targets: HashMap<String, Arc<dyn Target>>,
    options: RunOptions,
    events: EventSink,
    stop: Stop,
) -> RunSummary {
    let started = Instant::now();
    let cancel = stop.cancel.clone();
    let hosts = plan.hosts();
    events.emit(Event::RunStarted {
        playbook: plan.playbook().display().to_string(),
        tasks: plan.len(),
        hosts: hosts.to_vec(),
        check: options.check,
        journal: options.journal.clone(),
        rolling: plan
            .serials()
            .iter()
            .map(crate::plan::Serial::describe)
            .chain(plan.budgets().iter().map(crate::plan::Budget::describe))
            .collect(),
    });
    for t in options.carried.iter().flat_map(|c| &c.tasks) {
        events.emit(Event::TaskDone {
            id: t.id,
            host: t.host.clone(),
            task: t.task.clone(),
            status: t.status,
            run: t.run.clone(),
        });
    }
    // Secret-named arguments (a password, a token) are known before any task prints anything.
    for (_, task) in plan.tasks() {
        if let Value::Object(args) = task.args.value() {
            events.redactor().add_outputs(&args);
        }
    }
    let gates = plan.gates();
    // In check mode nothing goes down: the budgets would only serialise the planning.
    let (dag, budgets) = dag_of(plan, &gates, !options.check);
    let slots = targets
        .into_iter()
        .map(|(name, target)| {
            let target = Arc::new(stat_cache::CachedTarget::new(target));
            (name, Slot { target, connected: OnceCell::new(), facts: OnceCell::new() })
        })
        .collect();
    let walker = options.walker;
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        options,
        slots,
        nodes_by_host: nodes_by_host(plan),
        events: events.clone(),
        outputs: Mutex::new(HashMap::new()),
        read: outputs_read(plan),
        cancel: cancel.clone(),
        reports: Mutex::new(vec![None; plan.len()]),
    });

    let walk_shared = shared.clone();
    let mut held_why: HashMap<(usize, Option<NodeId>), String> = HashMap::new();
    walker.walk_until(
        &dag,
        |node| {
            let shared = shared.clone();
            async move {
                let report = run_task(&shared, node).await;
                if let Some(slot) = shared.slots.get(&report.host) {
                    slot.target.finished(node);
                }
                let outcome =
                    if report.status.succeeded() { NodeOutcome::Succeeded } else { NodeOutcome::Failed };
                finish(&shared, node, report);
                outcome
            }
        },
        |event| match event {
            WalkEvent::Started(node) => {
                let task = plan.task(node);
                events.emit(Event::TaskStarted {
                    id: task.id,
                    host: task.host.clone(),
                    task: task.name.clone(),
                    module: task.module.to_owned(),
                });
            }
            WalkEvent::Finished(node, NodeOutcome::Failed)
                if lock(&walk_shared.reports).get(node.0).is_some_and(Option::is_none) =>
            {
                // The task's future panicked before it could report: a bug, reported as one.
                let mut r = report(plan.task(node), Status::Failed);
                r.error = Some("the task crashed (a bug in the engine or a module; run with -vv)".to_owned());
                finish(&walk_shared, node, r);
            }
            WalkEvent::Finished(..) => {}
            WalkEvent::Skipped { node, cause } => {
                let cause = plan.task(cause);
                let why = format!(
                    "skipped: depends on {} ({}), which did not succeed",
                    cause.label(),
                    cause.location
                );
                skip(&walk_shared, node, why);
            }
            WalkEvent::Halted { node, gate, failed } => {
                let gate = &gates[gate];
                let why = plan.serials()[gate.serial].halted(gate.batch, failed, gate.hosts);
                skip(&walk_shared, node, why);
            }
            WalkEvent::Held { node, budget, down } => {
                // One message per budget and host left down, however many tasks it holds.
                let why = held_why
                    .entry((budget, down))
                    .or_insert_with(|| {
                        let budget = &plan.budgets()[budgets[budget]];
                        let host = down.map(|n| down_host(plan, budget, n));
                        budget.held(host.as_deref())
                    })
                    .clone();
                skip(&walk_shared, node, why);
            }
            WalkEvent::Cancelled(node) => {
                skip(&walk_shared, node, "not started: the run was stopped".to_owned())
            }
            WalkEvent::Aborted(node) => {
                let task = plan.task(node);
                let mut r = report(task, Status::Failed);
                r.error = Some(format!(
                    "{}: {}: aborted while running: the run was stopped (rerun it, or finish with --resume)",
                    task.location,
                    task.label()
                ));
                finish(&walk_shared, node, r);
            }
        },
        cancel.clone(),
        stop.abort.clone(),
    )
    .await;

    // Taken, not copied: every task has ended (a late `finish` finds no slot and is dropped),
    // and at 10,000 hosts a copy is some 100 MB more at the run's peak.
    let reports: Vec<TaskReport> = std::mem::take(&mut *lock(&shared.reports))
        .into_iter()
        .enumerate()
        .map(|(node, r)| r.unwrap_or_else(|| report(plan.task(NodeId(node)), Status::Skipped)))
        .collect();
    let elapsed = started.elapsed();
    // The walker stops itself under --fail-fast with a child token; only the caller's token
    // means the user interrupted the run.
    let interrupted = cancel.is_cancelled();
    let (critical_path_ms, chain) =
        plan.critical_chain(|node| reports.get(node.0).map_or(0, |r| r.elapsed_ms));
    let critical_path = chain.into_iter().map(|node| plan.task(node).id).collect();
    events.emit(Event::RunFinished {
        elapsed_ms: elapsed.as_millis() as u64,
        interrupted,
        critical_path_ms,
        critical_path,
    });
    RunSummary { reports, elapsed, interrupted }
}

/// The walker's view of `plan`. The batches of a rolling change wait for each other through
/// `gates` (one walker gate per plan gate, same index), not through the plan's serial edges: a
/// failure in a batch must not skip the next batch by itself, only through its gate. (An order
/// edge between batches appears where `--tags` dropped the tasks a serial edge joined.)
/// Budgets are added in order; the second value maps a walker budget to the plan's.
fn dag_of(plan: &Plan, gates: &[BatchGate], with_budgets: bool) -> (Dag, Vec<usize>) {
    let node_of: HashMap<TaskId, NodeId> = plan.tasks().map(|(node, task)| (task.id, node)).collect();
    let mut batch_of: HashMap<NodeId, (usize, usize)> = HashMap::new();
    for (s, serial) in plan.serials().iter().enumerate() {
        for (b, batch) in serial.batches.iter().enumerate() {
            for node in batch.tasks.iter().filter_map(|id| node_of.get(id).copied()) {
                batch_of.insert(node, (s, b));
            }
        }
    }
    let between_batches = |from: NodeId, to: NodeId| match (batch_of.get(&from), batch_of.get(&to)) {
        (Some((s1, b1)), Some((s2, b2))) => s1 == s2 && b1 != b2,
        _ => false,
    };
    let mut dag = Dag::new(
        plan.tasks().map(|(node, _)| plan.host_of(node)).collect(),
        plan.edges()
            .into_iter()
            .filter(|(from, to, kind)| {
                !(matches!(kind, Edge::Serial | Edge::Order) && between_batches(*from, *to))
            })
            .map(|(from, to, _)| (from, to)),
    );
    for gate in gates {
        dag.add_gate(Gate {
            members: gate.members.clone(),
            successors: gate.successors.clone(),
            max_failed: gate.max_failed,
        });
    }
    for (node, task) in plan.tasks() {
        if task.always {
            dag.set_always(node);
        }
    }
    let mut budgets = Vec::new();
    for (b, windows) in plan.budget_windows().into_iter().filter(|_| with_budgets) {
        dag.add_budget(Budget { windows, max_down: plan.budgets()[b].max_down() });
        budgets.push(b);
    }
    (dag, budgets)
}

/// The host of the window of `budget` that holds the failed task `node`.
fn down_host(plan: &Plan, budget: &crate::plan::Budget, node: NodeId) -> String {
    let id = plan.task(node).id;
    budget
        .windows
        .iter()
        .find(|w| w.tasks.binary_search(&id).is_ok())
        .map_or_else(|| plan.task(node).host.clone(), |w| w.host.clone())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records and reports how `node` ended, once (a crash check and a report must not both count).
fn finish(shared: &Shared, node: NodeId, report: TaskReport) {
    let mut reports = lock(&shared.reports);
    if let Some(slot @ None) = reports.get_mut(node.0) {
        // Emitted under the lock, so reports and events agree on which came first.
        shared.events.emit(Event::TaskFinished(report.clone()));
        *slot = Some(report);
    }
}

fn skip(shared: &Shared, node: NodeId, why: String) {
    let task = shared.plan.task(node);
    let mut r = report(task, Status::Skipped);
    r.error = Some(why);
    finish(shared, node, r);
}

fn report(task: &Task, status: Status) -> TaskReport {
    TaskReport {
        id: task.id,
        host: task.host.clone(),
        task: task.name.clone(),
        module: task.module.to_owned(),
        location: task.location.to_string(),
        status,
        changes: Vec::new(),
        diff: None,
        error: None,
        note: None,
        elapsed_ms: 0,
        started_at_ms: 0,
        output: None,
    }
}

/// A command's outputs as a report shows them.
fn captured(outputs: &contract::Outputs) -> crate::events::Captured {
    let text = |key: &str| outputs.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    crate::events::Captured {
        rc: outputs.get("rc").and_then(serde_json::Value::as_i64),
        stdout: text("stdout"),
        stderr: text("stderr"),
    }
}

async fn run_task(shared: &Shared, node: NodeId) -> TaskReport {
    let task = shared.plan.task(node);
    let started = Instant::now();
    let mut r = report(task, Status::Ok);
    r.started_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let (status, error) = match execute(shared, task, node, &mut r).await {
        Ok(status) => (status, None),
        // In check mode nothing was changed, so a task after one that would change may find
        // the world not yet as the run would leave it: that is unknown, not a failure.
        Err(e)
            if e.status() == Status::Failed && shared.options.check && after_pending_change(shared, node) =>
        {
            r.changes = vec![format!("cannot be predicted before earlier changes are made ({e})")];
            (Status::Unknown, None)
        }
        Err(e) => (e.status(), Some(format!("{}: {}: {e}", task.location, task.label()))),
    };
    r.status = status;
    r.error = error;
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    r
}

/// Plans and applies one task, with its retry policy.
async fn execute(
    shared: &Shared,
    task: &Task,
    node: NodeId,
    r: &mut TaskReport,
) -> Result<Status, TaskError> {
    if let Some(when) = &task.when {
        match condition(shared, when)? {
            Condition::Holds => {}
            Condition::False(why) => {
                r.note = Some(why);
                return Ok(Status::Ok);
            }
            Condition::Unknown(why) => {
                r.changes = vec![why];
                return Ok(Status::Unknown);
            }
        }
    }
    if task.handler {
        match notified(shared, node) {
            Notified::No => {
                r.note = Some("not run: no task that notifies this handler changed anything".to_owned());
                return Ok(Status::Ok);
            }
            Notified::Maybe => {
                r.changes = vec!["runs only if a notifying task whose outcome is unknown changes".to_owned()];
                return Ok(Status::Unknown);
            }
            Notified::Yes => {}
        }
    }
    let retry = task.retry.as_ref();
    let attempts = retry.map_or(1, |p| p.retries.saturating_add(1));
    let mut attempt = 1;
    loop {
        let failure = match attempt_once(shared, task, node, r, attempt == 1).await {
            Ok((status, outputs)) => match until_unmet(retry, outputs.as_ref(), attempt)? {
                Some(unmet) => unmet,
                None => {
                    if let Some(outputs) = &outputs {
                        // Before anyone can see them: events, logs and later tasks' errors.
                        shared.events.redactor().add_outputs(outputs);
                        if shared.options.capture_output {
                            r.output = Some(Box::new(captured(outputs)));
                        }
                    }
                    // Only what a later task reads is kept; a task nobody reads from leaves
                    // nothing (not even an empty map: at 10,000 hosts that adds up).
                    if let Some(keys) = shared.read.get(&task.id) {
                        let kept = outputs.map(|mut outputs| {
                            outputs.retain(|key, _| keys.contains(key));
                            outputs
                        });
                        lock(&shared.outputs).insert(task.id, kept);
                    }
                    return Ok(status);
                }
            },
            // A host that cannot be reached will not be reached by trying again here.
            Err(e @ TaskError::Unreachable(_)) => return Err(e),
            Err(e) => e,
        };
        if attempt >= attempts {
            return Err(if attempts > 1 {
                TaskError::Retried { attempts, last: Box::new(failure) }
            } else {
                failure
            });
        }
        let delay = Duration::from_secs(retry.map_or(1, |p| p.delay));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.cancel.cancelled() => return Err(TaskError::Interrupted(Box::new(failure))),
        }
        attempt += 1;
        tracing::info!(host = %task.host, task = %task.name, attempt, "retrying");
    }
}

/// The output keys that some task of `plan` reads (through its arguments), by producing task.
fn outputs_read(plan: &Plan) -> HashMap<TaskId, HashSet<String>> {
    let mut read: HashMap<TaskId, HashSet<String>> = HashMap::new();
    for (_, task) in plan.tasks() {
        if let Some(when) = &task.when {
            read.entry(when.task).or_default().extend(when.reads.iter().cloned());
        }
    }
    for (_, task) in plan.tasks().filter(|(_, t)| t.args.may_hold_references()) {
        for reference in refs::references(&task.args.value()) {
            if let Ref::Output { task, key } = reference {
                read.entry(task).or_default().insert(key);
            }
        }
    }
    read
}

/// The failure of an attempt that succeeded but whose `until` condition does not hold yet;
/// `None` when there is no condition, it holds, or the outputs are not known (check mode).
fn until_unmet(
    retry: Option<&crate::plan::Retry>,
    outputs: Option<&Outputs>,
    attempt: u32,
) -> Result<Option<TaskError>, TaskError> {
    let (Some(until), Some(outputs)) = (retry.and_then(|p| p.until.as_deref()), outputs) else {
        return Ok(None);
    };
    match crate::plan::until::holds(until, outputs) {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some(TaskError::UntilNotMet { expression: until.to_owned(), attempts: attempt })),
        Err(error) => Err(TaskError::UntilInvalid { expression: until.to_owned(), error: error.to_string() }),
    }
}

/// What a task's `when` condition says.
enum Condition {
    Holds,
    /// It does not hold, or the task it reads did not run: why the task does not run.
    False(String),
    /// Check mode: the outputs it reads do not exist before a real run.
    Unknown(String),
}

fn condition(shared: &Shared, when: &crate::plan::When) -> Result<Condition, TaskError> {
    let node = shared.plan.node_of(when.task);
    let source = node.map_or_else(|| format!("task {}", when.task.0), |n| shared.plan.task(n).label());
    // Evaluated under the outputs' lock, which is let go before the reports' is taken.
    let holds = lock(&shared.outputs)
        .get(&when.task)
        .and_then(Option::as_ref)
        .map(|outputs| crate::plan::until::holds(&when.expression, outputs));
    let Some(holds) = holds else {
        // Not run by its own condition (or a handler nobody notified): reported ok, with a note.
        let skipped = node.is_some_and(|n| {
            lock(&shared.reports)
                .get(n.0)
                .and_then(Option::as_ref)
                .is_some_and(|r| r.status == Status::Ok && r.note.is_some())
        });
        return Ok(if shared.options.check && !skipped {
            Condition::Unknown(format!(
                "runs only if `{}` holds for the outputs of {source}, which exist only once it really runs",
                when.expression
            ))
        } else {
            Condition::False(format!(
                "not run: its condition reads the outputs of {source}, which did not run"
            ))
        });
    };
    match holds {
        Ok(true) => Ok(Condition::Holds),
        Ok(false) => Ok(Condition::False(format!("not run: `{}` is false for {source}", when.expression))),
        Err(error) => {
            Err(TaskError::ConditionInvalid { expression: when.expression.clone(), error: error.to_string() })
        }
    }
}

/// Whether a task this one waits for would change something (or cannot be predicted).
fn after_pending_change(shared: &Shared, node: NodeId) -> bool {
    let reports = lock(&shared.reports);
    shared.plan.dependencies(node).any(|dep| {
        reports
            .get(dep.0)
            .and_then(Option::as_ref)
            .is_some_and(|r| matches!(r.status, Status::Changed | Status::Unknown))
    })
}

/// Whether a handler was notified: a notifying task changed something (`Yes`), or in check
/// mode none would but one cannot be predicted (`Maybe`).
enum Notified {
    Yes,
    Maybe,
    No,
}

fn notified(shared: &Shared, node: NodeId) -> Notified {
    let id = shared.plan.task(node).id;
    if shared.options.carried.as_ref().is_some_and(|c| c.notified.contains(&id)) {
        return Notified::Yes;
    }
    let reports = lock(&shared.reports);
    let statuses: Vec<Status> = shared
        .plan
        .dependencies_with_kind(node)
        .filter(|(_, kind)| *kind == Edge::Notify)
        .filter_map(|(notifier, _)| reports.get(notifier.0)?.as_ref().map(|r| r.status))
        .collect();
    if statuses.contains(&Status::Changed) {
        Notified::Yes
    } else if statuses.contains(&Status::Unknown) {
        Notified::Maybe
    } else {
        Notified::No
    }
}

/// One attempt: the module (resolving run-time references), connect, plan, and apply unless
/// checking. Returns the
/// status and the task's outputs (`None` when they cannot be known, in check mode).
async fn attempt_once(
    shared: &Shared,
    task: &Task,
    node: NodeId,
    r: &mut TaskReport,
    first: bool,
) -> Result<(Status, Option<Outputs>), TaskError> {
    // Built when the plan was sealed, unless the arguments wait for run-time values.
    let module = match &task.parsed {
        Some(module) => module.clone(),
        None => match resolved_module(shared, task).await? {
            Some(module) => module,
            // In check mode an earlier task's outputs may not exist yet.
            None => {
                r.changes = vec!["depends on the output of a task that has not run yet".to_owned()];
                return Ok((Status::Unknown, None));
            }
        },
    };

    let slot = shared.slot(&task.host)?;
    connect(shared, &task.host, slot).await?;
    let host: &dyn Host = slot.target.as_ref();
    let own_facts = if module.wants_facts() { Some(facts_of(shared, &task.host).await?) } else { None };

    let cx = contract::Context {
        host,
        options: PlanOptions {
            diff: shared.options.diff,
            pending_changes: shared.options.check && after_pending_change(shared, node),
        },
        facts: own_facts.as_ref(),
        peers: shared,
    };
    let plan = module.plan(&cx).await?;
    r.changes.clone_from(&plan.changes);
    r.diff.clone_from(&plan.diff);
    // A reviewed plan: the first attempt must plan what was reviewed (a retry follows what the
    // first attempt changed).
    if first
        && !shared.options.check
        && let Some(reviewed) = &shared.options.reviewed
        && let Err(was) = reviewed.verify(task.id, &plan.changes, plan.diff.as_deref())
    {
        return Err(TaskError::Drift { reviewed: was, now: plan.changes });
    }
    let Some(action) = plan.action else {
        return Ok((Status::Ok, Some(plan.outputs)));
    };
    if shared.options.check {
        return Ok((Status::Changed, None));
    }
    // Outputs known at plan time (a file's path, say) stay; apply adds or refreshes the rest.
    let mut outputs = plan.outputs;
    outputs.extend(action.apply(host).await?);
    Ok((Status::Changed, Some(outputs)))
}

/// The module of a task whose arguments refer to run-time values: the values are looked up
/// (gathering the facts it reads) and filled into the arguments sealed with the plan, which
/// the module is then built from. `None` in check mode when an earlier task's output does
/// not exist yet.
async fn resolved_module(shared: &Shared, task: &Task) -> Result<Option<Arc<dyn Module>>, TaskError> {
    let references = refs::references(&task.args.value());
    let mut facts = HashMap::new();
    for reference in &references {
        if let Ref::Fact { host, path } = reference {
            if !facts.contains_key(host) {
                facts.insert(host.clone(), facts_of(shared, host).await?);
            }
            // A fact the host reported that did not parse fails the task, naming both.
            facts.get(host).map(|f| f.lookup(path)).transpose()?;
        }
    }
    let sealed = task.sealed.as_ref().ok_or(TaskError::UnknownModule(task.module))?;
    let outputs = lock(&shared.outputs);
    let lookup = |reference: &Ref| -> Option<Value> {
        match reference {
            Ref::Output { task, key } => outputs.get(task)?.as_ref()?.get(key).cloned(),
            Ref::Fact { host, path } => facts.get(host)?.lookup(path).ok()?.cloned(),
        }
    };
    if let Some(missing) = references.iter().find(|r| lookup(r).is_none()) {
        if shared.options.check && references.iter().any(|x| matches!(x, Ref::Output { .. })) {
            return Ok(None);
        }
        return Err(TaskError::Missing(missing.clone()));
    }
    let mut filler = refs::Filler::new(&lookup);
    let module = sealed.build(&mut filler).map_err(TaskError::Arguments)?;
    for (path, value) in filler.filled {
        // Secret-named arguments (a kubeadm config's tokens and certificate key, say).
        let named = serde_json::Map::from_iter([(refs::argument_name(&path).to_owned(), value)]);
        shared.events.redactor().add_outputs(&named);
    }
    Ok(Some(module.into()))
}

/// The facts of `host`, gathered once per run on first use. A host that cannot be reached
/// fails the task that reads its facts, not as unreachable: the task's own host may be fine.
async fn facts_of(shared: &Shared, host: &str) -> Result<contract::facts::Facts, TaskError> {
    let slot = shared.slot(host)?;
    connect(shared, host, slot).await.map_err(|e| TaskError::Facts(e.to_string()))?;
    slot.facts
        .get_or_init(|| async {
            contract::facts::gather(slot.target.as_ref()).await.map_err(|e| e.to_string())
        })
        .await
        .clone()
        .map_err(TaskError::Facts)
}

impl Shared {
    fn slot(&self, host: &str) -> Result<&Slot, TaskError> {
        self.slots.get(host).ok_or_else(|| TaskError::NoConnection(host.to_owned()))
    }
}

impl contract::Peers for Shared {
    fn peer(&self, name: &str) -> Option<Arc<dyn Host>> {
        self.slots.get(name).map(|slot| -> Arc<dyn Host> { slot.target.clone() })
    }
}

async fn connect(shared: &Shared, host: &str, slot: &Slot) -> Result<(), TaskError> {
    slot.connected
        .get_or_init(|| async {
            let started = Instant::now();
            match slot.target.connect().await {
                Ok(()) => {
                    shared.events.emit(Event::HostConnected {
                        host: host.to_owned(),
                        elapsed_ms: started.elapsed().as_millis() as u64,
                    });
                    slot.target.prefetch(probes(shared, host)).await;
                    Ok(())
                }
                Err(e) => {
                    shared
                        .events
                        .emit(Event::HostUnreachable { host: host.to_owned(), error: e.to_string() });
                    Err(e.to_string())
                }
            }
        })
        .await
        .clone()
        .map_err(TaskError::Unreachable)
}

/// The paths each task of `host` (by node) will stat while planning, for the stat cache.
/// Tasks whose arguments wait on other tasks' outputs or facts are left out: their paths are
/// not known yet.
fn probes(shared: &Shared, host: &str) -> HashMap<NodeId, Vec<String>> {
    let nodes = shared.nodes_by_host.get(host).map_or(&[][..], Vec::as_slice);
    nodes
        .iter()
        .filter_map(|&node| {
            let module = shared.plan.task(node).parsed.as_ref()?;
            Some((node, module.probes())).filter(|(_, paths)| !paths.is_empty())
        })
        .collect()
}

/// The nodes of each host's tasks, in plan order.
fn nodes_by_host(plan: &Plan) -> HashMap<String, Vec<NodeId>> {
    let mut by_host: HashMap<String, Vec<NodeId>> = HashMap::new();
    for (node, task) in plan.tasks() {
        by_host.entry(task.host.clone()).or_default().push(node);
    }
    by_host
}

#[cfg(test)]
mod tests;
