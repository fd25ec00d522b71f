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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ids::{HostId, NodeId};

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
        };
        // A gate without members (its batch was left out) is open from the start.
        for gate in dag.gates.iter().filter(|g| g.members.is_empty()) {
            for successor in &gate.successors {
                progress.waiting_on[successor.0] -= 1;
            }
        }
        for node in 0..n {
            if progress.waiting_on[node] == 0 {
                progress.state[node] = State::Ready;
                progress.ready[dag.host[node]].push_back(node);
                progress.touched.push(dag.host[node]);
            }
        }
        progress
    }

    /// One of the things `node` waits for is done.
    fn release(&mut self, node: usize) {
        self.waiting_on[node] -= 1;
        if self.waiting_on[node] == 0 && self.state[node] == State::Waiting {
            self.state[node] = State::Ready;
            self.ready[self.dag.host[node]].push_back(node);
            self.touched.push(self.dag.host[node]);
        }
    }

    fn succeeded(&mut self, node: usize, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        for &next in &dag.dependents[node] {
            self.release(next);
        }
        self.settle(node, false, on_event);
    }

    /// Skips the transitive dependents of the failed `node`.
    fn failed(&mut self, node: usize, on_event: &mut impl FnMut(WalkEvent)) {
        let dag = self.dag;
        self.settle(node, true, on_event);
        let mut stack = dag.dependents[node].clone();
        while let Some(next) = stack.pop() {
            if matches!(self.state[next], State::Waiting | State::Ready) {
                self.state[next] = State::Skipped;
                self.ready[dag.host[next]].retain(|r| *r != next);
                on_event(WalkEvent::Skipped { node: NodeId(next), cause: NodeId(node) });
                stack.extend(&dag.dependents[next]);
                self.settle(next, true, on_event);
            }
        }
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
                    self.release(successor.0);
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
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    /// A DAG from plain numbers: `hosts[n]` is node n's host.
    fn dag(hosts: &[usize], edges: &[(usize, usize)]) -> Dag {
        Dag::new(
            hosts.iter().map(|h| HostId(*h)).collect(),
            edges.iter().map(|(a, b)| (NodeId(*a), NodeId(*b))),
        )
    }

    /// Runs `dag` where node `i` sleeps `secs[i]` seconds and fails if listed in `failing`;
    /// returns the events and each node's (start, end) offsets in whole seconds.
    async fn simulate(
        walker: Walker,
        dag: &Dag,
        secs: &[u64],
        failing: &[usize],
    ) -> (Vec<WalkEvent>, HashMap<usize, (u64, u64)>) {
        let start = Instant::now();
        let times = Arc::new(Mutex::new(HashMap::new()));
        let mut events = Vec::new();
        let secs = secs.to_vec();
        let failing = failing.to_vec();
        walker
            .walk(
                dag,
                |node| {
                    let times = times.clone();
                    let d = secs[node.0];
                    let fail = failing.contains(&node.0);
                    async move {
                        let begin = start.elapsed().as_secs();
                        tokio::time::sleep(Duration::from_secs(d)).await;
                        times.lock().unwrap().insert(node.0, (begin, start.elapsed().as_secs()));
                        if fail { NodeOutcome::Failed } else { NodeOutcome::Succeeded }
                    }
                },
                |e| events.push(e),
                CancellationToken::new(),
            )
            .await;
        let times = times.lock().unwrap().clone();
        (events, times)
    }

    const WIDE: Walker = Walker { forks: 100, per_host: 100, fail_fast: false };

    /// ```text
    /// host0: 0 ──▶ 1
    ///         ╲
    /// host1:   ▶ 2 ──▶ 3        host2: 4
    /// ```
    #[tokio::test(start_paused = true)]
    async fn runs_in_dependency_order_and_in_parallel() {
        let dag = dag(&[0, 0, 1, 1, 2], &[(0, 1), (0, 2), (2, 3)]);
        let (_, t) = simulate(WIDE, &dag, &[1, 1, 1, 1, 1], &[]).await;
        assert_eq!(t[&0], (0, 1));
        assert_eq!(t[&1], (1, 2));
        assert_eq!(t[&2], (1, 2), "cross-host dependent starts when its dependency ends");
        assert_eq!(t[&3], (2, 3));
        assert_eq!(t[&4], (0, 1), "independent host runs at once");
    }

    /// ```text
    /// host0: 0 (fails) ──▶ 1 ──▶ 2
    ///                  ╲
    /// host1:            ▶ 3      4 (independent)
    /// ```
    #[tokio::test(start_paused = true)]
    async fn failure_skips_only_transitive_dependents() {
        let dag = dag(&[0, 0, 0, 1, 1], &[(0, 1), (1, 2), (0, 3)]);
        let (events, t) = simulate(WIDE, &dag, &[1, 1, 1, 1, 5], &[0]).await;
        let mut skipped: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                WalkEvent::Skipped { node, cause: NodeId(0) } => Some(node.0),
                _ => None,
            })
            .collect();
        skipped.sort_unstable();
        assert_eq!(skipped, vec![1, 2, 3]);
        assert_eq!(t[&4], (0, 5), "independent work goes on");
        assert!(!t.contains_key(&1));
    }

    #[tokio::test(start_paused = true)]
    async fn bounds_concurrency_globally_and_per_host() {
        // Six independent nodes: three on host 0, three on host 1.
        let dag = dag(&[0, 0, 0, 1, 1, 1], &[]);
        let (_, t) = simulate(Walker { forks: 100, per_host: 1, fail_fast: false }, &dag, &[1; 6], &[]).await;
        assert_eq!(t.values().map(|(_, end)| *end).max(), Some(3), "one at a time per host");
        let (_, t) = simulate(Walker { forks: 2, per_host: 100, fail_fast: false }, &dag, &[1; 6], &[]).await;
        assert_eq!(t.values().map(|(_, end)| *end).max(), Some(3), "two at a time overall");
    }

    #[tokio::test(start_paused = true)]
    async fn fail_fast_stops_new_work() {
        // host0: 0 (fails at 1 s); host1: 1 ──▶ 2 (1 would end at 2 s).
        let dag = dag(&[0, 1, 1], &[(1, 2)]);
        let walker = Walker { forks: 100, per_host: 100, fail_fast: true };
        let (events, t) = simulate(walker, &dag, &[1, 2, 1], &[0]).await;
        assert_eq!(t[&1], (0, 2), "running work finishes");
        assert!(events.contains(&WalkEvent::Cancelled(NodeId(2))), "{events:?}");
    }

    /// ```text
    /// host0: 0 (60 s) ──▶ 1        host1: 2 (60 s)
    /// ```
    #[tokio::test(start_paused = true)]
    async fn abort_drops_running_nodes_and_starts_nothing() {
        let dag = dag(&[0, 0, 1], &[(0, 1)]);
        let abort = CancellationToken::new();
        let a = abort.clone();
        let dropped = Arc::new(Mutex::new(0));
        let d = dropped.clone();
        let mut events = Vec::new();
        let start = Instant::now();
        let walk = WIDE.walk_until(
            &dag,
            move |_| {
                let guard = Dropped(d.clone());
                async move {
                    let _guard = guard;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    NodeOutcome::Succeeded
                }
            },
            |e| events.push(e),
            CancellationToken::new(),
            abort,
        );
        let aborter = async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            a.cancel();
        };
        tokio::join!(walk, aborter);
        assert_eq!(start.elapsed().as_secs(), 1, "no waiting for the running nodes");
        assert_eq!(*dropped.lock().unwrap(), 2, "both running nodes are gone when the walk returns");
        events.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            events,
            vec![
                WalkEvent::Aborted(NodeId(0)),
                WalkEvent::Aborted(NodeId(2)),
                WalkEvent::Cancelled(NodeId(1)),
                WalkEvent::Started(NodeId(0)),
                WalkEvent::Started(NodeId(2))
            ]
        );
    }

    fn gate(members: &[usize], successors: &[usize], max_failed: usize) -> Gate {
        Gate {
            members: members.iter().map(|n| NodeId(*n)).collect(),
            successors: successors.iter().map(|n| NodeId(*n)).collect(),
            max_failed,
        }
    }

    /// Three batches of a rolling change, one node per host, gates between them:
    ///
    /// ```text
    /// batch 1: 0 1 2 (1 fails, slow 2 s)  ──gate 0 (max 1 failed)──▶
    /// batch 2: 3 4 (both fail)            ──gate 1 (max 0 failed)──▶
    /// batch 3: 5 ──▶ 6 (same host)
    /// ```
    #[tokio::test(start_paused = true)]
    async fn a_gate_lets_tolerated_failures_pass_and_halts_the_later_batches_past_it() {
        let mut dag = dag(&[0, 1, 2, 3, 4, 5, 5], &[(5, 6)]);
        dag.add_gate(gate(&[0, 1, 2], &[3, 4], 1));
        dag.add_gate(gate(&[3, 4], &[5], 0));
        let (events, t) = simulate(WIDE, &dag, &[1, 1, 2, 1, 1, 1, 1], &[1, 3, 4]).await;
        assert_eq!(t[&3], (2, 3), "batch 2 waits for the slowest of batch 1, then runs despite 1 failure");
        assert_eq!(t[&4], (2, 3));
        let mut halted: Vec<WalkEvent> =
            events.iter().filter(|e| matches!(e, WalkEvent::Halted { .. })).copied().collect();
        halted.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            halted,
            vec![
                WalkEvent::Halted { node: NodeId(5), gate: 1, failed: 2 },
                WalkEvent::Halted { node: NodeId(6), gate: 1, failed: 2 },
            ]
        );
        assert!(!t.contains_key(&5) && !t.contains_key(&6));
        assert!(!events.iter().any(|e| matches!(e, WalkEvent::Skipped { .. })), "{events:?}");
    }

    /// A closed gate halts every later batch, through the gates after it, naming the first gate.
    ///
    /// ```text
    /// batch 1: 0 (fails) ──gate 0 (max 0)──▶ batch 2: 1 ──gate 1 (max 0)──▶ batch 3: 2
    /// ```
    #[tokio::test(start_paused = true)]
    async fn a_closed_gate_halts_all_later_batches() {
        let mut dag = dag(&[0, 1, 2], &[]);
        dag.add_gate(gate(&[0], &[1], 0));
        dag.add_gate(gate(&[1], &[2], 0));
        let (events, _) = simulate(WIDE, &dag, &[1, 1, 1], &[0]).await;
        assert_eq!(
            events,
            vec![
                WalkEvent::Started(NodeId(0)),
                WalkEvent::Finished(NodeId(0), NodeOutcome::Failed),
                WalkEvent::Halted { node: NodeId(1), gate: 0, failed: 1 },
                WalkEvent::Halted { node: NodeId(2), gate: 0, failed: 1 },
            ]
        );
    }

    /// A member skipped because of a failure counts its host as failed; a member's own
    /// dependents are skipped as usual; a gate without members is open.
    ///
    /// ```text
    /// batch 1: 0 (fails) ──▶ 1 (same host)   2 ──data──▶ 3 (host 3, also batch 1)
    ///          ──gate 0 (max 1)──▶ batch 2: 4      gate 1 (no members) ──▶ 5
    /// ```
    #[tokio::test(start_paused = true)]
    async fn skipped_members_count_and_an_empty_gate_is_open() {
        let mut dag = dag(&[0, 0, 2, 3, 4, 5], &[(0, 1), (2, 3)]);
        dag.add_gate(gate(&[0, 1, 2, 3], &[4], 1));
        dag.add_gate(gate(&[], &[5], 0));
        let (events, t) = simulate(WIDE, &dag, &[1; 6], &[0, 2]).await;
        assert!(events.contains(&WalkEvent::Skipped { node: NodeId(1), cause: NodeId(0) }));
        assert!(events.contains(&WalkEvent::Skipped { node: NodeId(3), cause: NodeId(2) }));
        assert!(
            events.contains(&WalkEvent::Halted { node: NodeId(4), gate: 0, failed: 3 }),
            "hosts 0, 2 and 3 did not succeed: {events:?}"
        );
        assert_eq!(t[&5], (0, 1), "behind an empty gate: runs at once");
    }

    /// Counts its drops.
    struct Dropped(Arc<Mutex<usize>>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            *self.0.lock().unwrap() += 1;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_lets_running_nodes_finish() {
        let dag = dag(&[0, 0], &[(0, 1)]);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let mut events = Vec::new();
        WIDE.walk(
            &dag,
            move |_| {
                let c = c.clone();
                async move {
                    c.cancel();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    NodeOutcome::Succeeded
                }
            },
            |e| events.push(e),
            cancel,
        )
        .await;
        assert_eq!(
            events,
            vec![
                WalkEvent::Started(NodeId(0)),
                WalkEvent::Finished(NodeId(0), NodeOutcome::Succeeded),
                WalkEvent::Cancelled(NodeId(1))
            ]
        );
    }
}
