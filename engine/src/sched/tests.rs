use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;

/// A DAG from plain numbers: `hosts[n]` is node n's host.
fn dag(hosts: &[usize], edges: &[(usize, usize)]) -> Dag {
    Dag::new(hosts.iter().map(|h| HostId(*h)).collect(), edges.iter().map(|(a, b)| (NodeId(*a), NodeId(*b))))
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

fn budget(windows: &[&[usize]], max_down: usize) -> Budget {
    Budget { windows: windows.iter().map(|w| w.iter().map(|n| NodeId(*n)).collect()).collect(), max_down }
}

/// Three hosts' windows of two nodes each (`2i` then `2i + 1`, on host i), 1 s per node.
fn three_windows() -> Dag {
    dag(&[0, 0, 1, 1, 2, 2], &[(0, 1), (2, 3), (4, 5)])
}

#[tokio::test(start_paused = true)]
async fn a_budget_bounds_the_windows_open_at_once() {
    let mut one = three_windows();
    one.add_budget(budget(&[&[0, 1], &[2, 3], &[4, 5]], 1));
    let (_, t) = simulate(WIDE, &one, &[1; 6], &[]).await;
    assert_eq!((t[&0], t[&1]), ((0, 1), (1, 2)));
    assert_eq!((t[&2], t[&3]), ((2, 3), (3, 4)), "the second window opens when the first closed");
    assert_eq!((t[&4], t[&5]), ((4, 5), (5, 6)));

    let mut two = three_windows();
    two.add_budget(budget(&[&[0, 1], &[2, 3], &[4, 5]], 2));
    let (_, t) = simulate(WIDE, &two, &[1; 6], &[]).await;
    assert_eq!((t[&0].0, t[&2].0, t[&4].0), (0, 0, 2), "two at once, the third when one closed");
}

/// A window's nodes may run on other hosts (a drain from the first master): the window is
/// the budget's unit, not the host.
///
/// ```text
/// host 9 (master): drain0 (0) ─▶ host 0: upgrade0 (1) ─▶ host 9: uncordon0 (2)
///                  drain1 (3) ─▶ host 1: upgrade1 (4) ─▶ host 9: uncordon1 (5)
/// ```
#[tokio::test(start_paused = true)]
async fn a_window_spans_hosts() {
    let mut dag = dag(&[9, 0, 9, 9, 1, 9], &[(0, 1), (1, 2), (3, 4), (4, 5)]);
    dag.add_budget(budget(&[&[0, 1, 2], &[3, 4, 5]], 1));
    let (_, t) = simulate(WIDE, &dag, &[1; 6], &[]).await;
    assert_eq!(t[&2], (2, 3));
    assert_eq!(t[&3], (3, 4), "the second drain waits for the first uncordon");
}

/// A window with a failure no `always` node repaired leaves its host down: it keeps its room,
/// and the windows still waiting are held, with what waits for them; a host outside the budget
/// goes on.
#[tokio::test(start_paused = true)]
async fn a_window_that_ends_badly_keeps_its_room() {
    let mut dag = dag(&[0, 0, 1, 1, 2, 2, 3], &[(0, 1), (2, 3), (4, 5), (3, 6)]);
    dag.add_budget(budget(&[&[0, 1], &[2, 3], &[4, 5]], 1));
    let (events, t) = simulate(WIDE, &dag, &[1; 7], &[1]).await;
    let mut held: Vec<WalkEvent> =
        events.iter().filter(|e| matches!(e, WalkEvent::Held { .. })).copied().collect();
    held.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        held,
        [2, 3, 4, 5, 6]
            .map(|n| WalkEvent::Held { node: NodeId(n), budget: 0, down: Some(NodeId(1)) })
            .to_vec(),
        "{events:?}"
    );
    assert!(!t.contains_key(&2) && !t.contains_key(&4));
    assert!(!events.iter().any(|e| matches!(e, WalkEvent::Cancelled(_))), "{events:?}");
}

/// The drain fails; the upgrade after it is skipped; the uncordon (`always`) runs anyway and
/// succeeds, so the window closes cleanly and the next host's window opens.
///
/// ```text
/// window 0: drain (0, fails) ─▶ upgrade (1) ─▶ uncordon (2, always; also after 0)
/// window 1: drain (3) ─▶ upgrade (4) ─▶ uncordon (5, always)      6 ─▶ after 2 (not always)
/// ```
#[tokio::test(start_paused = true)]
async fn an_always_node_runs_after_a_failure_and_closes_the_window() {
    let mut dag = dag(&[9, 0, 9, 9, 1, 9, 0], &[(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 6)]);
    dag.set_always(NodeId(2));
    dag.set_always(NodeId(5));
    dag.add_budget(budget(&[&[0, 1, 2], &[3, 4, 5]], 1));
    let (events, t) = simulate(WIDE, &dag, &[1; 7], &[0]).await;
    assert!(events.contains(&WalkEvent::Skipped { node: NodeId(1), cause: NodeId(0) }), "{events:?}");
    assert_eq!(t[&2], (1, 2), "the uncordon runs once the drain and the upgrade have ended");
    assert_eq!(t[&3], (2, 3), "the window closed cleanly: the next one opens");
    assert_eq!(t[&5], (4, 5));
    assert_eq!(t[&6], (2, 3), "the always node's own dependents wait for its outcome only");
}

/// An `always` node whose dependency fails while another is still running waits for that one.
#[tokio::test(start_paused = true)]
async fn an_always_node_waits_for_all_its_dependencies() {
    let mut dag = dag(&[0, 1, 2], &[(0, 2), (1, 2)]);
    dag.set_always(NodeId(2));
    let (_, t) = simulate(WIDE, &dag, &[1, 3, 1], &[0]).await;
    assert_eq!(t[&2], (3, 4));
}

/// An `always` node none of whose dependencies ran (all skipped after an earlier failure) is
/// skipped too: there is nothing to clean up after.
///
/// ```text
/// 0 (fails) ─▶ 1 (drain) ─▶ 2 (uncordon, always) ─▶ 3
/// ```
#[tokio::test(start_paused = true)]
async fn an_always_node_is_skipped_when_nothing_before_it_ran() {
    let mut dag = dag(&[0, 0, 0, 0], &[(0, 1), (1, 2), (2, 3)]);
    dag.set_always(NodeId(2));
    let (events, t) = simulate(WIDE, &dag, &[1; 4], &[0]).await;
    assert!(!t.contains_key(&2), "{events:?}");
    assert!(events.contains(&WalkEvent::Skipped { node: NodeId(2), cause: NodeId(0) }), "{events:?}");
    assert!(events.contains(&WalkEvent::Skipped { node: NodeId(3), cause: NodeId(0) }), "{events:?}");
}

/// The same when a gate lets the `always` node go last: its task dependencies were all
/// skipped before the gate opened, so nothing was attempted and it is skipped too.
///
/// ```text
/// 0 (fails) ─▶ 1 (drain) ─▶ 2 (uncordon, always) ─▶ 3
/// gate: 4 (5 s, another host) ─▶ 2
/// ```
#[tokio::test(start_paused = true)]
async fn an_always_node_let_go_by_a_gate_is_skipped_when_nothing_before_it_ran() {
    let mut skipped = dag(&[0, 0, 0, 0, 1], &[(0, 1), (1, 2), (2, 3)]);
    skipped.set_always(NodeId(2));
    skipped.add_gate(gate(&[4], &[2], 0));
    let (events, t) = simulate(WIDE, &skipped, &[1, 1, 1, 1, 5], &[0]).await;
    assert_eq!(t[&4], (0, 5));
    assert!(!t.contains_key(&2), "{events:?}");
    assert!(events.contains(&WalkEvent::Skipped { node: NodeId(2), cause: NodeId(1) }), "{events:?}");
    assert!(events.contains(&WalkEvent::Skipped { node: NodeId(3), cause: NodeId(1) }), "{events:?}");
    // When the drain ran, the gate lets the uncordon run.
    let mut ran = dag(&[0, 0, 0, 0, 1], &[(0, 1), (1, 2), (2, 3)]);
    ran.set_always(NodeId(2));
    ran.add_gate(gate(&[4], &[2], 0));
    let (events, t) = simulate(WIDE, &ran, &[1, 1, 1, 1, 5], &[1]).await;
    assert_eq!(t[&2], (5, 6), "{events:?}");
}

/// An `always` node repairs the failures of what it waits for directly: the uncordon (waiting
/// for the drain and the restart) repairs a refused drain, not a kubelet upgrade that failed
/// before the restart. The uncordon still runs (the drain ran), but the window keeps its room.
///
/// ```text
/// window 0: drain (0) ─▶ kubelet (1, fails) ─▶ restart (6) ─▶ uncordon (2, always; also after 0)
/// window 1: drain (3) ─▶ kubelet (4) ─▶ uncordon (5, always)       held
/// ```
#[tokio::test(start_paused = true)]
async fn an_always_node_repairs_only_what_it_waits_for_directly() {
    let mut dag = dag(&[9, 0, 9, 9, 1, 9, 0], &[(0, 1), (1, 6), (6, 2), (0, 2), (3, 4), (4, 5), (3, 5)]);
    dag.set_always(NodeId(2));
    dag.set_always(NodeId(5));
    dag.add_budget(budget(&[&[0, 1, 2, 6], &[3, 4, 5]], 1));
    let (events, t) = simulate(WIDE, &dag, &[1; 7], &[1]).await;
    assert!(t.contains_key(&2), "the uncordon ran: {events:?}");
    assert!(!t.contains_key(&3), "the next window never opened: {events:?}");
    assert!(
        events.contains(&WalkEvent::Held { node: NodeId(3), budget: 0, down: Some(NodeId(1)) }),
        "{events:?}"
    );
}
