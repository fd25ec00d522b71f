//! The DAG walker. It hands out ready nodes, bounds concurrency globally and per host, and
//! on a failure skips exactly the failed node's transitive dependents. It knows nothing of
//! what a node does: the caller passes a function that runs one node.
//!
//! Concurrency: the walker is the only spawner. It counts tasks in flight (globally and per
//! host) itself instead of using semaphores, so a node is never spawned only to wait. The
//! `cancel` token is signalled by the caller (Ctrl-C, or the walker itself under fail-fast);
//! once it fires no new node starts, and nodes in flight are awaited. The `abort` token of
//! [`Walker::walk_until`] (the second Ctrl-C, or the end of the grace period) also cancels the
//! nodes in flight, and waits until each is gone, so nothing of them outlives the walk.
//!
//! A [`Gate`] stands between two batches of a rolling change: its successors start once every
//! member has ended, unless more than `max_failed` of the members' hosts did not succeed; then
//! the successors, and everything after them, are halted ([`WalkEvent::Halted`]).
//!
//! A [`Budget`] bounds how many of its windows (the nodes that take one host out of service)
//! are open at once (see [`windows`]). An `always` node runs once its dependencies have ended,
//! whatever their outcome, if one of them ran (a cleanup: the uncordon after a failed drain,
//! but not when nothing before it was attempted); its own dependents wait for its outcome.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ids::{HostId, NodeId};

mod windows;

pub use windows::Budget;
use windows::{Admission, Budgets};

/// The shape of the graph as the walker sees it: nodes `0..n`, each on a host, and edges.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    /// `dependents[n]`: the nodes that wait for `n`.
    dependents: Vec<Vec<usize>>,
    /// `dependencies[n]`: how many nodes `n` waits for.
    dependencies: Vec<usize>,
    /// `host[n]`: the host (resource) index of node `n`, for the per-host limit.
    host: Vec<usize>,
    hosts: usize,
    gates: Vec<Gate>,
    /// `member_of[n]`: the gates node `n` is a member of.
    member_of: Vec<Vec<usize>>,
    /// `always[n]`: node `n` runs once its dependencies have ended, if one of them ran.
    always: Vec<bool>,
    budgets: Budgets,
}

/// A gate between two batches: `successors` wait until every member has ended, and start only
/// if at most `max_failed` hosts had a member that failed (or was skipped because of a failure).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gate {
    pub members: Vec<NodeId>,
    pub successors: Vec<NodeId>,
    pub max_failed: usize,
}

impl Dag {
    /// Builds the walker's view: node `n` runs on `host[n]`, and an edge `(from, to)` means
    /// `to` waits for `from`.
    pub fn new(host: Vec<HostId>, edges: impl IntoIterator<Item = (NodeId, NodeId)>) -> Self {
        let host: Vec<usize> = host.into_iter().map(HostId::index).collect();
        let n = host.len();
        let hosts = host.iter().copied().max().map_or(0, |m| m + 1);
        let mut dag = Dag {
            dependents: vec![Vec::new(); n],
            dependencies: vec![0; n],
            host,
            hosts,
            gates: Vec::new(),
            member_of: vec![Vec::new(); n],
            always: vec![false; n],
            budgets: Budgets::default(),
        };
        for (from, to) in edges {
            dag.dependents[from.0].push(to.0);
            dag.dependencies[to.0] += 1;
        }
        dag
    }

    /// Adds a gate; it is known to the walker by its index, in order of adding.
    pub fn add_gate(&mut self, gate: Gate) {
        let index = self.gates.len();
        for member in &gate.members {
            self.member_of[member.0].push(index);
        }
        for successor in &gate.successors {
            self.dependencies[successor.0] += 1;
        }
        self.gates.push(gate);
    }

    /// Lets `node` run once its dependencies have ended, also when one failed or was skipped,
    /// provided one of them ran (a cleanup after something that was attempted).
    pub fn set_always(&mut self, node: NodeId) {
        self.always[node.0] = true;
    }

    /// Adds a disruption budget, after every edge (a window's last nodes are those no other
    /// node of the window waits for); it is known to the walker by its index, in order of adding.
    pub fn add_budget(&mut self, budget: Budget) -> usize {
        self.budgets.add(budget)
    }
}

/// How a node ended, as far as the walker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOutcome {
    Succeeded,
    Failed,
}

/// What the walker reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkEvent {
    Started(NodeId),
    Finished(NodeId, NodeOutcome),
    /// Not run because `cause` failed (directly or through other skipped nodes).
    Skipped {
        node: NodeId,
        cause: NodeId,
    },
    /// Not run because gate `gate` closed: `failed` hosts of its members did not succeed, more
    /// than its `max_failed` (directly, or through the nodes and gates after it).
    Halted {
        node: NodeId,
        gate: usize,
        failed: usize,
    },
    /// Not run because budget `budget` had no room: windows of it that closed with a failure
    /// left unrepaired still count as down; `down` is such a failure. Also the nodes that
    /// waited, directly or not, for such a node.
    Held {
        node: NodeId,
        budget: usize,
        down: Option<NodeId>,
    },
    /// Not run because the walk was cancelled.
    Cancelled(NodeId),
    /// Started, then abandoned by an abort before it ended.
    Aborted(NodeId),
}

/// Concurrency limits and failure policy.
#[derive(Debug, Clone, Copy)]
pub struct Walker {
    /// Nodes in flight at once, across all hosts.
    pub forks: usize,
    /// Nodes in flight at once on one host.
    pub per_host: usize,
    /// Stop starting nodes after the first failure.
    pub fail_fast: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Ready,
    Running,
    Done,
    Skipped,
}

impl Walker {
    /// Runs every node of `dag` once its dependencies succeeded. `run` starts one node;
    /// `on_event` is called on the walker's task, in order. Returns when nothing is in flight.
    pub async fn walk<F, Fut>(
        &self,
        dag: &Dag,
        run: F,
        on_event: impl FnMut(WalkEvent),
        cancel: CancellationToken,
    ) where
        F: Fn(NodeId) -> Fut,
        Fut: Future<Output = NodeOutcome> + Send + 'static,
    {
        self.walk_until(dag, run, on_event, cancel, CancellationToken::new()).await;
    }

    /// [`walk`](Self::walk), and when `abort` fires, nodes in flight are cancelled too (reported
    /// as [`WalkEvent::Aborted`]) and awaited until they are dropped; no new node starts.
    pub async fn walk_until<F, Fut>(
        &self,
        dag: &Dag,
        run: F,
        mut on_event: impl FnMut(WalkEvent),
        cancel: CancellationToken,
        abort: CancellationToken,
    ) where
        F: Fn(NodeId) -> Fut,
        Fut: Future<Output = NodeOutcome> + Send + 'static,
    {
        // Cancelled by the caller (Ctrl-C) or by the walker itself (--fail-fast), so the caller
        // can tell the two apart.
        let cancel = cancel.child_token();
        let forks = self.forks.max(1);
        let per_host = self.per_host.max(1);
        let mut progress = Progress::new(dag);
        let mut in_flight = 0usize;
        let mut host_in_flight = vec![0usize; dag.hosts];
        let mut running: JoinSet<NodeOutcome> = JoinSet::new();
        let mut ids: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut next_host = 0usize;
        let mut aborted = false;
        // Every host that has a ready node and room for it is in here (others may be too, and
        // leave when visited): a start looks at these hosts only, never at the whole fleet, so
        // a walk costs no more per node at 10,000 hosts than at 10.
        let mut startable: BTreeSet<usize> = BTreeSet::new();

        loop {
            startable.extend(progress.touched.drain(..));
            if !cancel.is_cancelled() && !aborted {
                // Round-robin over hosts so one host's long queue cannot starve the others:
                // from `next_host` up, then from the first host, each startable host once.
                let mut cursor = next_host;
                let mut visits = startable.len();
                while in_flight < forks && visits > 0 {
                    visits -= 1;
                    let Some(h) =
                        startable.range(cursor..).next().or_else(|| startable.iter().next()).copied()
                    else {
                        break;
                    };
                    while in_flight < forks && host_in_flight[h] < per_host {
                        let Some(node) = progress.ready[h].pop_front() else {
                            break;
                        };
                        progress.state[node] = State::Running;
                        in_flight += 1;
                        host_in_flight[h] += 1;
                        on_event(WalkEvent::Started(NodeId(node)));
                        let handle = running.spawn(run(NodeId(node)));
                        ids.insert(handle.id(), node);
                    }
                    if progress.ready[h].is_empty() || host_in_flight[h] >= per_host {
                        startable.remove(&h);
                    }
                    cursor = h + 1;
                }
                next_host = if dag.hosts == 0 { 0 } else { (next_host + 1) % dag.hosts };
            }
            if running.is_empty() {
                break;
            }
            let joined = tokio::select! {
                joined = running.join_next_with_id() => joined,
                () = cancel.cancelled(), if !cancel.is_cancelled() => continue,
                () = abort.cancelled(), if !aborted => {
                    aborted = true;
                    cancel.cancel();
                    running.abort_all();
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            let (id, outcome) = match joined {
                Ok((id, outcome)) => (id, outcome),
                Err(e) if e.is_cancelled() => {
                    if let Some(node) = ids.remove(&e.id()) {
                        progress.state[node] = State::Done;
                        in_flight -= 1;
                        host_in_flight[dag.host[node]] -= 1;
                        startable.insert(dag.host[node]);
                        on_event(WalkEvent::Aborted(NodeId(node)));
                    }
                    continue;
                }
                // A panicking node counts as failed; it must not take the walk down.
                Err(e) => (e.id(), NodeOutcome::Failed),
            };
            let Some(node) = ids.remove(&id) else {
                continue;
            };
            progress.state[node] = State::Done;
            in_flight -= 1;
            host_in_flight[dag.host[node]] -= 1;
            startable.insert(dag.host[node]);
            on_event(WalkEvent::Finished(NodeId(node), outcome));
            match outcome {
                NodeOutcome::Succeeded => progress.succeeded(node, &mut on_event),
                NodeOutcome::Failed => {
                    progress.failed(node, &mut on_event);
                    if self.fail_fast {
                        cancel.cancel();
                    }
                }
            }
        }
        if !cancel.is_cancelled() {
            progress.hold(&mut on_event);
        }
        for (node, s) in progress.state.iter().enumerate() {
            if matches!(s, State::Waiting | State::Ready) {
                on_event(WalkEvent::Cancelled(NodeId(node)));
            }
        }
    }
}

/// What the walker knows of each node and gate as the walk goes.
struct Progress<'d> {
    dag: &'d Dag,
    state: Vec<State>,
    /// Per node: the dependencies and gates it still waits for.
    waiting_on: Vec<usize>,
    /// Per host: its ready nodes, in the order they became ready.
    ready: Vec<VecDeque<usize>>,
    /// Hosts that got a ready node since the walker last looked.
    touched: Vec<usize>,
    /// Per gate: its members that have not ended yet.
    unsettled: Vec<usize>,
    /// Per gate: the hosts of its members that failed or were skipped because of a failure.
    failed_hosts: Vec<BTreeSet<usize>>,
    /// Per gate: the closed gate (and its count of failed hosts) that halted one of its members.
    halted_by: Vec<Option<(usize, usize)>>,
    /// The budgets' windows.
    admission: Admission,
    /// For each `always` node, the nodes it waits for.
    always_after: HashMap<usize, Vec<usize>>,
    /// Nodes that ran and failed (for the budgets' windows).
    ran_failed: Vec<bool>,
}

impl<'d> Progress<'d> {
    fn new(dag: &'d Dag) -> Self {
        let n = dag.host.len();
        let mut progress = Progress {
            dag,
            state: vec![State::Waiting; n],
            waiting_on: dag.dependencies.clone(),
            ready: vec![VecDeque::new(); dag.hosts],
            touched: Vec::new(),
            unsettled: dag.gates.iter().map(|g| g.members.len()).collect(),
            failed_hosts: vec![BTreeSet::new(); dag.gates.len()],
            halted_by: vec![None; dag.gates.len()],
            admission: Admission::new(&dag.budgets),
            always_after: HashMap::new(),
            ran_failed: if dag.budgets.is_empty() { Vec::new() } else { vec![false; n] },
        };
        if dag.always.contains(&true) {
            for (before, dependents) in dag.dependents.iter().enumerate() {
                for &after in dependents.iter().filter(|a| dag.always[**a]) {
                    progress.always_after.entry(after).or_default().push(before);
                }
            }
        }
        // A gate without members (its batch was left out) is open from the start.
        for gate in dag.gates.iter().filter(|g| g.members.is_empty()) {
            for successor in &gate.successors {
                progress.waiting_on[successor.0] -= 1;
            }
        }
        for node in 0..n {
            if progress.waiting_on[node] == 0 && progress.admission.admit(&dag.budgets, node) {
                progress.ready_now(node);
            }
        }
        progress
    }

    fn ready_now(&mut self, node: usize) {
        self.state[node] = State::Ready;
        self.ready[self.dag.host[node]].push_back(node);
        self.touched.push(self.dag.host[node]);
    }

    /// One of the things `node` waits for is done.
    fn release(&mut self, node: usize, on_event: &mut impl FnMut(WalkEvent)) {
        self.waiting_on[node] -= 1;
        if self.waiting_on[node] != 0 || self.state[node] != State::Waiting {
            return;
        }
        // An `always` node let go last by a gate, after every task it waits for was skipped:
        // nothing was attempted, so it is skipped too (as when a skip lets it go last).
        if let Some(cause) = self.nothing_ran(node) {
            self.skip_from(node, cause, on_event);
            return;
        }
        if self.admission.admit(&self.dag.budgets, node) {
            self.ready_now(node);
        }
    }

    /// For an `always` node that waits for tasks none of which ran: the first of them (the
    /// cause to report).
    fn nothing_ran(&self, node: usize) -> Option<usize> {
        if !self.dag.always[node] || self.any_ran(node) {
            return None;
        }
        self.always_after.get(&node).and_then(|before| before.first().copied())
    }

    /// Skips `node`, which will never run because of `cause`, and its transitive dependents.
    fn skip_from(&mut self, node: usize, cause: usize, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        self.state[node] = State::Skipped;
        self.ready[dag.host[node]].retain(|r| *r != node);
        on_event(WalkEvent::Skipped { node: NodeId(node), cause: NodeId(cause) });
        self.settle(node, true, on_event);
        self.leave_window(node, false);
        self.skip_dependents(cause, dag.dependents[node].clone(), on_event);
    }

    /// `node` has ended (`failed`: it ran and failed), or will never run: its window may close,
    /// and, when every failure of it was repaired, let parked nodes start.
    fn leave_window(&mut self, node: usize, failed: bool) {
        let dag = self.dag;
        if dag.budgets.is_empty() {
            return;
        }
        if failed {
            self.ran_failed[node] = true;
        }
        let Some((window, failures)) = self.admission.settle(&dag.budgets, node, failed) else {
            return;
        };
        // Repaired: an `always` node of the same window that waits for it directly succeeded.
        let clean = failures.iter().all(|f| {
            dag.dependents[*f].iter().any(|a| {
                dag.always[*a]
                    && dag.budgets.window_of(*a) == Some(window)
                    && self.state[*a] == State::Done
                    && !self.ran_failed[*a]
            })
        });
        for parked in self.admission.close(&dag.budgets, window, clean) {
            if self.state[parked] == State::Waiting {
                self.ready_now(parked);
            }
        }
    }

    /// At the end of a walk that was not cancelled: the nodes still parked, and what waits for
    /// them, are held by their budgets.
    fn hold(&mut self, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        for (node, budget, down) in self.admission.held(&dag.budgets) {
            let down = down.map(NodeId);
            let mut stack = vec![node];
            while let Some(next) = stack.pop() {
                if self.state[next] == State::Waiting {
                    self.state[next] = State::Skipped;
                    on_event(WalkEvent::Held { node: NodeId(next), budget, down });
                    stack.extend(&dag.dependents[next]);
                }
            }
        }
    }

    fn succeeded(&mut self, node: usize, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        for &next in &dag.dependents[node] {
            self.release(next, on_event);
        }
        self.settle(node, false, on_event);
        self.leave_window(node, false);
    }

    /// Skips the transitive dependents of the failed `node`.
    fn failed(&mut self, node: usize, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        self.settle(node, true, on_event);
        self.leave_window(node, true);
        self.skip_dependents(node, dag.dependents[node].clone(), on_event);
    }

    /// Skips the nodes of `stack` and their transitive dependents, because `cause` failed or
    /// was skipped; an `always` node among them runs once all its dependencies have ended if
    /// one of them ran.
    fn skip_dependents(&mut self, cause: usize, mut stack: Vec<usize>, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        while let Some(next) = stack.pop() {
            if dag.always[next] && self.state[next] == State::Waiting {
                // One of its dependencies ended badly. Once all have ended, it runs if one of
                // them ran (failed or not); if none did (all skipped), it is skipped too.
                self.waiting_on[next] -= 1;
                if self.waiting_on[next] > 0 {
                    continue;
                }
                if self.any_ran(next) {
                    if self.admission.admit(&dag.budgets, next) {
                        self.ready_now(next);
                    }
                    continue;
                }
            }
            if matches!(self.state[next], State::Waiting | State::Ready) {
                self.state[next] = State::Skipped;
                self.ready[dag.host[next]].retain(|r| *r != next);
                on_event(WalkEvent::Skipped { node: NodeId(next), cause: NodeId(cause) });
                stack.extend(&dag.dependents[next]);
                self.settle(next, true, on_event);
                self.leave_window(next, false);
            }
        }
    }

    /// Whether a task `node` (an `always` node) waits for has run, whatever its outcome.
    fn any_ran(&self, node: usize) -> bool {
        self.always_after
            .get(&node)
            .is_some_and(|before| before.iter().any(|b| self.state[*b] == State::Done))
    }

    /// `node` has ended (or will never run): each gate it belongs to opens or closes once
    /// all its members have.
    fn settle(&mut self, node: usize, failed: bool, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        for &gate in &dag.member_of[node] {
            if failed {
                self.failed_hosts[gate].insert(dag.host[node]);
            }
            self.unsettled[gate] -= 1;
            if self.unsettled[gate] == 0 {
                self.resolve(gate, on_event);
            }
        }
    }

    fn resolve(&mut self, gate: usize, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        let failed = self.failed_hosts[gate].len();
        let closed_by = match self.halted_by[gate] {
            Some(cause) => Some(cause),
            None if failed > dag.gates[gate].max_failed => Some((gate, failed)),
            None => None,
        };
        match closed_by {
            None => {
                for successor in &dag.gates[gate].successors {
                    self.release(successor.0, on_event);
                }
            }
            Some((cause, failed)) => self.halt(gate, cause, failed, on_event),
        }
    }

    /// Halts the successors of the closed `gate` and everything after them, gates included.
    fn halt(&mut self, gate: usize, cause: usize, failed: usize, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        let mut stack: Vec<usize> = dag.gates[gate].successors.iter().map(|n| n.0).collect();
        while let Some(next) = stack.pop() {
            if !matches!(self.state[next], State::Waiting | State::Ready) {
                continue;
            }
            self.state[next] = State::Skipped;
            self.ready[dag.host[next]].retain(|r| *r != next);
            on_event(WalkEvent::Halted { node: NodeId(next), gate: cause, failed });
            self.leave_window(next, false);
            stack.extend(&dag.dependents[next]);
            for &later in &dag.member_of[next] {
                self.halted_by[later].get_or_insert((cause, failed));
                self.unsettled[later] -= 1;
                if self.unsettled[later] == 0 {
                    self.resolve(later, on_event);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
