//! Transitive reduction for drawing: which edges of a DAG are implied by the others.
//!
//! petgraph's `tred::dag_transitive_reduction_closure` builds the transitive closure alongside
//! the reduction, and a closure is quadratic in the tasks when a rolling change orders every
//! host after the ones before it (10,000 hosts: some 10^9 pairs). This walk keeps only a mark
//! per node: for each node, its successors in topological order, each searched from only as far
//! as the last of them (nothing further on in topological order can lead back to one).
//! O(V·E) at worst, close to O(V + E) on a plan, whose edges are mostly short (a host's next
//! task, the next batch).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// For each of `edges` (`from`, `to` over nodes `0..nodes`, acyclic, at most one edge per pair),
/// whether another path leads from `from` to `to`: whether the edge is implied by the others.
/// Removing every implied edge leaves the transitive reduction, which has the same reachability.
///
/// ```text
///   a ──▶ b ──▶ c        a ──▶ c is implied (through b); a ──▶ b and b ──▶ c are not
///   └──────────▲
/// ```
pub(super) fn implied(nodes: usize, edges: &[(usize, usize)]) -> Vec<bool> {
    // Successors per node, as edge indices.
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let mut incoming = vec![0usize; nodes];
    for (e, &(from, to)) in edges.iter().enumerate() {
        out[from].push(e);
        incoming[to] += 1;
    }
    // A topological order close to node order (Kahn's, smallest ready node first): plans are
    // written mostly in order, so a node's successors sit close behind it and the searches stay
    // short.
    let mut position = vec![usize::MAX; nodes];
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..nodes).filter(|n| incoming[*n] == 0).map(Reverse).collect();
    let mut next = 0;
    while let Some(Reverse(node)) = ready.pop() {
        position[node] = next;
        next += 1;
        for &e in &out[node] {
            let to = edges[e].1;
            incoming[to] -= 1;
            if incoming[to] == 0 {
                ready.push(Reverse(to));
            }
        }
    }
    debug_assert_eq!(next, nodes, "the graph has a cycle");
    for successors in &mut out {
        successors.sort_by_key(|e| position[edges[*e].1]);
    }
    let mut implied = vec![false; edges.len()];
    // `mark[n] == stamp` when `n` was reached from an earlier successor of the node at hand,
    // `successor[n] == stamp` when `n` is one of its successors (one stamp per node, so
    // neither is ever cleared).
    let (mut mark, mut successor) = (vec![0usize; nodes], vec![0usize; nodes]);
    let mut stack = Vec::new();
    for (node, successors) in out.iter().enumerate() {
        let Some(&last) = successors.last() else {
            continue;
        };
        let stamp = node + 1;
        let horizon = position[edges[last].1];
        for &e in successors {
            successor[edges[e].1] = stamp;
        }
        // The successors neither searched from nor reached yet: once none is left, the
        // search stops (a task every other one waits for, such as a final report, is found
        // at the first step, not after a walk through everything before it).
        let mut open = successors.len();
        for &e in successors {
            let to = edges[e].1;
            if mark[to] == stamp {
                implied[e] = true;
                continue;
            }
            open -= 1;
            // Everything `to` leads to (up to the horizon) is reached through another path
            // than a direct edge from `node`. What it reaches lies after it in topological
            // order, so only successors not yet searched from are found.
            stack.clear();
            stack.push(to);
            while open > 0
                && let Some(n) = stack.pop()
            {
                for &f in &out[n] {
                    let m = edges[f].1;
                    if mark[m] != stamp && position[m] <= horizon {
                        mark[m] = stamp;
                        if successor[m] == stamp {
                            open -= 1;
                        }
                        stack.push(m);
                    }
                }
            }
        }
    }
    implied
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edges left once the implied ones are gone.
    fn reduced(nodes: usize, edges: &[(usize, usize)]) -> Vec<(usize, usize)> {
        let implied = implied(nodes, edges);
        edges.iter().zip(implied).filter(|(_, i)| !i).map(|(e, _)| *e).collect()
    }

    /// ```text
    ///   0 ──▶ 1 ──▶ 3
    ///   └──▶ 2 ──▲        and 0 ──▶ 3: implied twice over
    /// ```
    #[test]
    fn a_diamond_loses_only_its_shortcut() {
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3), (0, 3)];
        assert_eq!(reduced(4, &edges), [(0, 1), (0, 2), (1, 3), (2, 3)]);
    }

    /// ```text
    ///   0 ──▶ 1 ──▶ 2 ──▶ 3 ──▶ 4     with shortcuts 0 ──▶ 2, 0 ──▶ 4, 1 ──▶ 4
    /// ```
    #[test]
    fn a_chain_loses_every_shortcut() {
        let edges = [(0, 4), (1, 4), (0, 2), (0, 1), (1, 2), (2, 3), (3, 4)];
        assert_eq!(reduced(5, &edges), [(0, 1), (1, 2), (2, 3), (3, 4)]);
    }

    /// Nodes written out of topological order (a task made to wait for a later one): the walk
    /// follows the edges, not the numbering.
    ///
    /// ```text
    ///   3 ──▶ 0 ──▶ 2 ──▶ 1     with shortcuts 3 ──▶ 2, 3 ──▶ 1
    /// ```
    #[test]
    fn the_order_is_the_edges_not_the_numbers() {
        let edges = [(3, 0), (0, 2), (2, 1), (3, 2), (3, 1)];
        assert_eq!(reduced(4, &edges), [(3, 0), (0, 2), (2, 1)]);
    }

    /// Independent chains, and a path that leaves and comes back (across hosts) implies the edge
    /// it goes around; without it nothing goes.
    ///
    /// ```text
    ///   host a: 0 ──▶ 1 ──▶ 2        0 ──▶ 3 ──▶ 4 ──▶ 2  (through host b): 1 ──▶ 2 stays,
    ///   host b: 3 ──▶ 4 ──▶ 5        0 ──▶ 2 would go
    /// ```
    #[test]
    fn only_edges_with_another_path_go() {
        let edges = [(0, 1), (1, 2), (3, 4), (4, 5), (0, 3), (4, 2), (0, 2)];
        assert_eq!(reduced(6, &edges), [(0, 1), (1, 2), (3, 4), (4, 5), (0, 3), (4, 2)]);
        assert_eq!(reduced(6, &edges[..6]), edges[..6]);
    }

    /// On pseudo-random DAGs, the edges left have the same reachability as all of them, and
    /// none of them is implied by the others (checked the slow way, by searching without it).
    #[test]
    fn the_reduction_keeps_reachability_and_is_minimal() {
        let reach = |nodes: usize, edges: &[(usize, usize)], from: usize, skip: Option<usize>| {
            let mut seen = vec![false; nodes];
            let mut stack = vec![from];
            while let Some(n) = stack.pop() {
                for (i, &(a, b)) in edges.iter().enumerate() {
                    if a == n && Some(i) != skip && !seen[b] {
                        seen[b] = true;
                        stack.push(b);
                    }
                }
            }
            seen
        };
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut random = |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below) as usize
        };
        for round in 0..200 {
            let nodes = 2 + random(12);
            // Edges go from a lower to a higher rank of a shuffled order: acyclic, numbered
            // out of order.
            let mut rank: Vec<usize> = (0..nodes).collect();
            for i in (1..nodes).rev() {
                rank.swap(i, random(i as u64 + 1));
            }
            let mut edges = Vec::new();
            for a in 0..nodes {
                for b in a + 1..nodes {
                    if random(3) == 0 {
                        edges.push((rank[a], rank[b]));
                    }
                }
            }
            let kept = reduced(nodes, &edges);
            for from in 0..nodes {
                assert_eq!(
                    reach(nodes, &edges, from, None),
                    reach(nodes, &kept, from, None),
                    "round {round}"
                );
            }
            for (i, &(a, b)) in kept.iter().enumerate() {
                assert!(!reach(nodes, &kept, a, Some(i))[b], "round {round}: {a} -> {b} is implied");
            }
        }
    }

    /// 10,000 hosts of four tasks one after the other, each host after the one before (a
    /// rolling change), a first task every host waits for and a report that waits for every
    /// task: a closure would be quadratic, and so would a search through everything between a
    /// task and the report.
    #[test]
    fn a_long_rolling_chain_stays_fast() {
        let hosts = 10_000;
        let report = 1 + hosts * 4;
        let mut edges = Vec::new();
        for h in 0..hosts {
            let first = 1 + h * 4;
            edges.extend([(first, first + 1), (first + 1, first + 2), (first + 2, first + 3)]);
            edges.push(if h == 0 { (0, first) } else { (first - 1, first) });
            edges.push((0, first + 3));
            edges.extend((first..first + 4).map(|t| (t, report)));
        }
        let started = std::time::Instant::now();
        let implied = implied(report + 1, &edges);
        let kept: Vec<(usize, usize)> =
            edges.iter().zip(&implied).filter(|(_, i)| !**i).map(|(e, _)| *e).collect();
        // What is left is the one chain through every task.
        assert_eq!(kept.len(), report);
        assert!(kept.contains(&(report - 1, report)) && kept.contains(&(0, 1)));
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }
}
