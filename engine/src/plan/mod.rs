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
mod task;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use builder::PlanBuilder;
pub use dot::Prediction;
pub use error::PlanError;
pub use location::Location;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
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

    /// Keeps the selected tasks and everything they depend on, transitively, on any host:
    /// a subset run never starts a task whose inputs were not made.
    pub fn select(&self, selection: &Selection) -> Plan {
        if selection.hosts.is_none() && selection.tags.is_none() {
            return self.clone();
        }
        let wanted = |task: &Task| {
            selection.hosts.as_ref().is_none_or(|hosts| hosts.contains(&task.host))
                && selection.tags.as_ref().is_none_or(|tags| task.tags.iter().any(|t| tags.contains(t)))
        };
        let mut keep: HashSet<NodeIndex> = HashSet::new();
        let mut stack: Vec<NodeIndex> =
            self.graph.node_indices().filter(|n| wanted(&self.graph[*n])).collect();
        while let Some(node) = stack.pop() {
            if keep.insert(node) {
                stack.extend(self.dependencies(node));
            }
        }
        let graph = self
            .graph
            .filter_map(|node, task| keep.contains(&node).then(|| task.clone()), |_, edge| Some(*edge));
        Plan { playbook: self.playbook.clone(), graph, inventory: self.inventory.clone() }
    }

    /// Edges as `(from, to, kind)`, sorted, for tests and reports.
    pub fn edges(&self) -> Vec<(NodeIndex, NodeIndex, Edge)> {
        let mut edges: Vec<_> =
            self.graph.edge_references().map(|e| (e.source(), e.target(), *e.weight())).collect();
        edges.sort();
        edges
    }
}
