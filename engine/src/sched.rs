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

use std::collections::{HashMap, VecDeque};
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
}

impl Dag {
    /// Builds the walker's view: node `n` runs on `host[n]`, and an edge `(from, to)` means
    /// `to` waits for `from`.
    pub fn new(host: Vec<HostId>, edges: impl IntoIterator<Item = (NodeId, NodeId)>) -> Self {
        let host: Vec<usize> = host.into_iter().map(HostId::index).collect();
        let n = host.len();
        let hosts = host.iter().copied().max().map_or(0, |m| m + 1);
        let mut dag = Dag { dependents: vec![Vec::new(); n], dependencies: vec![0; n], host, hosts };
        for (from, to) in edges {
            dag.dependents[from.0].push(to.0);
            dag.dependencies[to.0] += 1;
        }
        dag
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
        let n = dag.host.len();
        let forks = self.forks.max(1);
        let per_host = self.per_host.max(1);
        let mut state = vec![State::Waiting; n];
        let mut waiting_on = dag.dependencies.clone();
        let mut ready: Vec<VecDeque<usize>> = vec![VecDeque::new(); dag.hosts];
        for node in 0..n {
            if waiting_on[node] == 0 {
                state[node] = State::Ready;
                ready[dag.host[node]].push_back(node);
            }
        }
        let mut in_flight = 0usize;
        let mut host_in_flight = vec![0usize; dag.hosts];
        let mut running: JoinSet<NodeOutcome> = JoinSet::new();
        let mut ids: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut next_host = 0usize;
        let mut aborted = false;

        loop {
            if !cancel.is_cancelled() && !aborted {
                // Round-robin over hosts so one host's long queue cannot starve the others.
                for offset in 0..dag.hosts {
                    let h = (next_host + offset) % dag.hosts;
                    while in_flight < forks && host_in_flight[h] < per_host {
                        let Some(node) = ready[h].pop_front() else {
                            break;
                        };
                        state[node] = State::Running;
                        in_flight += 1;
                        host_in_flight[h] += 1;
                        on_event(WalkEvent::Started(NodeId(node)));
                        let handle = running.spawn(run(NodeId(node)));
                        ids.insert(handle.id(), node);
                    }
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
                        state[node] = State::Done;
                        in_flight -= 1;
                        host_in_flight[dag.host[node]] -= 1;
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
            state[node] = State::Done;
            in_flight -= 1;
            host_in_flight[dag.host[node]] -= 1;
            on_event(WalkEvent::Finished(NodeId(node), outcome));
            match outcome {
                NodeOutcome::Succeeded => {
                    for &next in &dag.dependents[node] {
                        waiting_on[next] -= 1;
                        if waiting_on[next] == 0 && state[next] == State::Waiting {
                            state[next] = State::Ready;
                            ready[dag.host[next]].push_back(next);
                        }
                    }
                }
                NodeOutcome::Failed => {
                    let mut stack = dag.dependents[node].clone();
                    while let Some(next) = stack.pop() {
                        if matches!(state[next], State::Waiting | State::Ready) {
                            state[next] = State::Skipped;
                            ready[dag.host[next]].retain(|r| *r != next);
                            on_event(WalkEvent::Skipped { node: NodeId(next), cause: NodeId(node) });
                            stack.extend(&dag.dependents[next]);
                        }
                    }
                    if self.fail_fast {
                        cancel.cancel();
                    }
                }
            }
        }
        for (node, s) in state.iter().enumerate() {
            if matches!(s, State::Waiting | State::Ready) {
                on_event(WalkEvent::Cancelled(NodeId(node)));
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
