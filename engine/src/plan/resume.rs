//! Selecting what a resumed run must do, on the sealed plan (like `--limit` and `--tags`).
//!
//! A task is rerun when it did not finish successfully before (failed, unreachable, skipped,
//! not started, unknown), when its input fingerprint changed, when it depends on a rerun task
//! (transitively, through any edge), or when a rerun task reads its outputs (so the data flows
//! again; modules are idempotent, so such a task reports ok). Everything else is left out.
//!
//! ```text
//!  a ──▶ b ──▶ c        x ──data──▶ c       y (done)
//!  b failed: rerun b, c (dependent), x (c reads it); a and y are left out
//! ```

use std::collections::HashSet;

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use super::{Edge, Plan, Task};

use crate::ids::TaskId;

/// A resumed run's plan, and what it leaves out.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The tasks to run again.
    pub plan: Plan,
    /// Ids of the tasks left out (done before, and nothing rerun needs them).
    pub left_out: Vec<TaskId>,
    /// Ids of rerun handlers that a left-out task notified and changed before: they count as
    /// notified, as they would have in the run that was stopped.
    pub notified: HashSet<TaskId>,
}

impl Plan {
    /// The resume of this plan. `must_rerun(task)`: the task did not finish successfully, or its
    /// fingerprint changed. `changed_before(task)`: it finished as `changed` before.
    pub fn select_resume(
        &self,
        must_rerun: &dyn Fn(&Task) -> bool,
        changed_before: &dyn Fn(&Task) -> bool,
    ) -> Resume {
        let graph = &self.graph;
        let mut rerun: HashSet<NodeIndex> = HashSet::new();
        // Seeds and everything downstream of them.
        let mut stack: Vec<NodeIndex> = graph.node_indices().filter(|n| must_rerun(&graph[*n])).collect();
        while let Some(node) = stack.pop() {
            if rerun.insert(node) {
                stack.extend(graph.neighbors_directed(node, Direction::Outgoing));
            }
        }
        // Providers of data to rerun tasks, transitively through data edges only.
        let mut stack: Vec<NodeIndex> = rerun.iter().copied().collect();
        while let Some(node) = stack.pop() {
            for edge in graph.edges_directed(node, Direction::Incoming) {
                if *edge.weight() == Edge::Data && rerun.insert(edge.source()) {
                    stack.push(edge.source());
                }
            }
        }
        let mut left_out: Vec<TaskId> =
            graph.node_indices().filter(|n| !rerun.contains(n)).map(|n| graph[n].id).collect();
        left_out.sort_unstable();
        let notified = rerun
            .iter()
            .filter(|n| graph[**n].handler)
            .filter(|n| {
                graph.edges_directed(**n, Direction::Incoming).any(|e| {
                    *e.weight() == Edge::Notify
                        && !rerun.contains(&e.source())
                        && changed_before(&graph[e.source()])
                })
            })
            .map(|n| graph[*n].id)
            .collect();
        Resume { plan: self.subgraph(&rerun), left_out, notified }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::inventory::Inventory;
    use crate::playbook::{LoadOptions, load_source};

    const INVENTORY: &str = "all:\n  hosts:\n    h0: {}\n    h1: {}\n";

    /// ```text
    /// h0: a(0) ──▶ b(1) ──▶ c(2) ──notify──▶ r(6, handler)
    ///                        ▲
    /// h1: x(3) ──────data────┘     y(4) ──▶ z(5)
    /// ```
    const PLAYBOOK: &str = r#"
        let h0 = host("h0"); let h1 = host("h1");
        let a = h0.command("a", #{ argv: ["true"] });
        let b = h0.command("b", #{ argv: ["true"] });
        let x = h1.command("x", #{ argv: ["hostname"] });
        let c = h0.file("c", #{ path: "/tmp/c", content: x.stdout });
        h1.concurrent();
        let y = h1.command("y", #{ argv: ["true"] });
        let z = h1.command("z", #{ argv: ["true"] }).after(y);
        let r = h0.handler("command", "r", #{ argv: ["true"] });
        c.notify(r);
    "#;

    fn plan() -> Plan {
        let inventory = Inventory::parse(INVENTORY, Path::new("inventory.yml")).unwrap();
        load_source(Path::new("resume.rhai"), PLAYBOOK, &inventory, &LoadOptions::default()).unwrap()
    }

    fn ids(plan: &Plan) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = plan.graph.node_weights().map(|t| t.id).collect();
        ids.sort_unstable();
        ids
    }

    fn id(plan: &Plan, name: &str) -> TaskId {
        plan.graph.node_weights().find(|t| t.name == name).unwrap().id
    }

    #[test]
    fn failed_task_its_dependents_and_its_data_providers() {
        let full = plan();
        let b = id(&full, "b");
        let resume = full.select_resume(&|t| t.id == b, &|_| false);
        let mut want = vec![b, id(&full, "c"), id(&full, "x"), id(&full, "r")];
        want.sort_unstable();
        assert_eq!(ids(&resume.plan), want, "b, then c after it, r it notifies, and x whose stdout c reads");
        let mut left = vec![id(&full, "a"), id(&full, "y"), id(&full, "z")];
        left.sort_unstable();
        assert_eq!(resume.left_out, left);
        assert!(resume.notified.is_empty());
        // Kept tasks keep their orderings and the data edge x -> c.
        let edges: Vec<(String, String, Edge)> = resume
            .plan
            .edges()
            .into_iter()
            .map(|(f, t, k)| (resume.plan.task(f).name.clone(), resume.plan.task(t).name.clone(), k))
            .collect();
        assert!(edges.contains(&("x".into(), "c".into(), Edge::Data)), "{edges:?}");
        assert!(edges.contains(&("b".into(), "c".into(), Edge::Order)), "{edges:?}");
    }

    #[test]
    fn changed_fingerprint_alone_and_nothing_to_do() {
        let full = plan();
        let y = id(&full, "y");
        let resume = full.select_resume(&|t| t.id == y, &|_| false);
        assert_eq!(ids(&resume.plan), vec![y, id(&full, "z")], "y and its dependent z, nothing else");
        let none = full.select_resume(&|_| false, &|_| true);
        assert!(none.plan.is_empty());
        assert_eq!(none.left_out.len(), full.len());
    }

    #[test]
    fn handler_notified_by_a_task_that_changed_before_stays_notified() {
        let full = plan();
        let r = id(&full, "r");
        let c = id(&full, "c");
        // c changed in the stopped run; its handler r never ran.
        let resume = full.select_resume(&|t| t.id == r, &|t| t.id == c);
        assert_eq!(ids(&resume.plan), vec![r]);
        assert_eq!(resume.notified, HashSet::from([r]));
    }
}
