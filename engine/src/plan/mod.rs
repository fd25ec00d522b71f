//! The plan: a sealed graph of typed tasks across hosts.
//!
//! ```text
//!  playbook.rhai ──eval──▶ PlanBuilder ──seal()──▶ Plan ──▶ run / check / DOT
//!                          (records only)          (checked, immutable)
//! ```
//!
//! An edge `a → b` means `b` starts only after `a` finished successfully.

mod builder;
mod dot;
mod error;
mod location;
pub mod refs;
mod resume;
mod task;
pub mod until;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use builder::PlanBuilder;
pub use dot::Prediction;
pub use error::{PlanError, PlanErrors};
pub use location::Location;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
pub use resume::Resume;
pub use task::{Edge, Retry, Task};

use crate::inventory::Inventory;

/// A checked, immutable task graph. Only a sealed plan can be run, checked or drawn.
#[derive(Debug, Clone)]
pub struct Plan {
    playbook: PathBuf,
    graph: DiGraph<Task, Edge>,
    inventory: Inventory,
}

/// Which tasks of a plan to keep.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keep tasks on these hosts (names already resolved from hosts and groups).
    pub hosts: Option<Vec<String>>,
    /// Keep tasks carrying at least one of these tags.
    pub tags: Option<Vec<String>>,
}

impl Plan {
    pub(crate) fn new(playbook: PathBuf, graph: DiGraph<Task, Edge>, inventory: Inventory) -> Self {
        Self { playbook, graph, inventory }
    }

    pub fn playbook(&self) -> &Path {
        &self.playbook
    }

    pub fn graph(&self) -> &DiGraph<Task, Edge> {
        &self.graph
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The hosts that have tasks, in inventory order.
    pub fn hosts(&self) -> Vec<String> {
        let used: HashSet<&str> = self.graph.node_weights().map(|t| t.host.as_str()).collect();
        self.inventory
            .hosts()
            .iter()
            .filter(|h| used.contains(h.name.as_str()))
            .map(|h| h.name.clone())
            .collect()
    }

    /// The tasks a task waits for.
    pub fn dependencies(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(node, Direction::Incoming)
    }

    /// Keeps the selected tasks, what they need (their `after` and data dependencies, on any
    /// host, transitively) and the handlers they notify. Same-host order alone does not pull a
    /// task in: `--tags motd` does not also run every task written before it. Kept tasks keep
    /// every ordering the full plan implied between them.
    ///
    /// ```text
    ///  full:     a ──order──▶ b ──order──▶ c ──notify──▶ h       x ──data──▶ c
    ///  --tags c: a, b dropped; x kept (c reads it); h kept (c notifies it)
    /// ```
    pub fn select(&self, selection: &Selection) -> Plan {
        if selection.hosts.is_none() && selection.tags.is_none() {
            return self.clone();
        }
        let graph = &self.graph;
        let wanted = |task: &Task| {
            selection.hosts.as_ref().is_none_or(|hosts| hosts.contains(&task.host))
                && selection.tags.as_ref().is_none_or(|tags| task.tags.iter().any(|t| tags.contains(t)))
        };
        let mut keep: HashSet<NodeIndex> = HashSet::new();
        let mut stack: Vec<NodeIndex> = graph.node_indices().filter(|n| wanted(&graph[*n])).collect();
        while let Some(node) = stack.pop() {
            if !keep.insert(node) {
                continue;
            }
            for edge in graph.edges_directed(node, Direction::Incoming) {
                if matches!(edge.weight(), Edge::Data | Edge::After) {
                    stack.push(edge.source());
                }
            }
            for edge in graph.edges_directed(node, Direction::Outgoing) {
                if *edge.weight() == Edge::Notify {
                    stack.push(edge.target());
                }
            }
        }
        self.subgraph(&keep)
    }

    /// The plan of the `keep` tasks only. Kept tasks are reconnected through dropped ones, so
    /// no ordering of the full plan is lost; an edge keeps its kind when it was direct.
    fn subgraph(&self, keep: &HashSet<NodeIndex>) -> Plan {
        let graph = &self.graph;
        let mut edges = Vec::new();
        for &from in keep {
            let mut seen = HashSet::new();
            let mut walk: Vec<NodeIndex> = graph.neighbors(from).collect();
            while let Some(next) = walk.pop() {
                if !seen.insert(next) {
                    continue;
                }
                if keep.contains(&next) {
                    let kind = graph.find_edge(from, next).map_or(Edge::Order, |e| graph[e]);
                    edges.push((from, next, kind));
                } else {
                    walk.extend(graph.neighbors(next));
                }
            }
        }
        let mut kept: Vec<NodeIndex> = keep.iter().copied().collect();
        kept.sort();
        let mut selected = DiGraph::with_capacity(kept.len(), edges.len());
        let mut index = HashMap::new();
        for node in kept {
            index.insert(node, selected.add_node(graph[node].clone()));
        }
        edges.sort();
        for (from, to, kind) in edges {
            selected.add_edge(index[&from], index[&to], kind);
        }
        Plan { playbook: self.playbook.clone(), graph: selected, inventory: self.inventory.clone() }
    }

    /// Edges as `(from, to, kind)`, sorted, for tests and reports.
    pub fn edges(&self) -> Vec<(NodeIndex, NodeIndex, Edge)> {
        let mut edges: Vec<_> =
            self.graph.edge_references().map(|e| (e.source(), e.target(), *e.weight())).collect();
        edges.sort();
        edges
    }
}
