//! The plan: a sealed graph of typed tasks across hosts.
//!
//! ```text
//!  playbook.rhai ──eval──▶ PlanBuilder ──seal()──▶ Plan ──▶ run / check / DOT
//!                          (records only)          (checked, immutable)
//! ```
//!
//! An edge `a → b` means `b` starts only after `a` finished successfully.

mod budget;
mod builder;
mod dot;
mod error;
mod location;
mod reduce;
pub mod refs;
mod resume;
mod serial;
mod task;
pub mod until;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use budget::{Budget, Limit, Window};
pub use builder::PlanBuilder;
pub use dot::{DotEdges, Prediction};
pub use error::{PlanError, PlanErrors};
pub use location::Location;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
pub use resume::Resume;
pub use serial::{Batch, BatchGate, Serial};
pub use task::{Args, Edge, Retry, Task, When};

use crate::ids::{HostId, NodeId, TaskId};
use crate::inventory::Inventory;

/// A checked, immutable task graph. Only a sealed plan can be run, checked or drawn.
///
/// Its tasks are numbered by [`NodeId`] (`0..len()`), its hosts by [`HostId`] (the hosts that
/// have tasks, in inventory order). The graph itself stays inside: callers ask for a task's
/// dependencies and dependents.
#[derive(Debug, Clone)]
pub struct Plan {
    playbook: PathBuf,
    /// Shared, as is the inventory: the runner keeps a copy of the plan, which at 10,000 hosts
    /// is a copy of 210,000 tasks otherwise.
    graph: Arc<DiGraph<Task, Edge>>,
    inventory: Arc<Inventory>,
    /// The hosts that have tasks, in inventory order: `hosts[HostId]`.
    hosts: Arc<[String]>,
    /// `host_of[NodeId]`: the host each task runs on.
    host_of: Arc<[HostId]>,
    /// The `serial(...)` rolling changes, their batches holding only this plan's tasks.
    serials: Arc<[Serial]>,
    /// The `budget(...)` disruption budgets, their windows holding only this plan's tasks.
    budgets: Arc<[Budget]>,
}

/// Which tasks of a plan to keep.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keep tasks on these hosts (names already resolved from hosts and groups).
    pub hosts: Option<Vec<String>>,
    /// Keep tasks carrying at least one of these tags.
    pub tags: Option<Vec<String>>,
    /// Drop tasks carrying any of these tags (Ansible's `--skip-tags`), unless a kept task
    /// reads their output.
    pub skip_tags: Vec<String>,
}

impl Plan {
    pub(crate) fn new(
        playbook: PathBuf,
        graph: DiGraph<Task, Edge>,
        inventory: Arc<Inventory>,
        serials: Arc<[Serial]>,
        budgets: Arc<[Budget]>,
    ) -> Self {
        let used: HashSet<&str> = graph.node_weights().map(|t| t.host.as_str()).collect();
        let hosts: Vec<String> = inventory
            .hosts()
            .iter()
            .filter(|h| used.contains(h.name.as_str()))
            .map(|h| h.name.clone())
            .collect();
        let index: HashMap<&str, HostId> =
            hosts.iter().enumerate().map(|(i, h)| (h.as_str(), HostId(i))).collect();
        // Sealing refuses tasks on hosts the inventory lacks, so every task's host is listed.
        let host_of: Arc<[HostId]> =
            graph.node_weights().map(|t| index.get(t.host.as_str()).copied().unwrap_or(HostId(0))).collect();
        Self { playbook, graph: Arc::new(graph), inventory, hosts: hosts.into(), host_of, serials, budgets }
    }

    /// The `budget(...)` disruption budgets, in playbook order.
    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// Each budget's windows as nodes of this plan (windows with no task here left out), for
    /// the walker: `(budget index, windows)`.
    pub fn budget_windows(&self) -> Vec<(usize, Vec<Vec<NodeId>>)> {
        if self.budgets.is_empty() {
            return Vec::new();
        }
        let node: HashMap<TaskId, NodeId> = self.tasks().map(|(node, task)| (task.id, node)).collect();
        self.budgets
            .iter()
            .enumerate()
            .map(|(b, budget)| {
                let windows = budget
                    .windows
                    .iter()
                    .map(|w| w.tasks.iter().filter_map(|id| node.get(id).copied()).collect::<Vec<_>>())
                    .filter(|w| !w.is_empty())
                    .collect();
                (b, windows)
            })
            .collect()
    }

    /// The `serial(...)` rolling changes, in playbook order.
    pub fn serials(&self) -> &[Serial] {
        &self.serials
    }

    /// The gates between consecutive batches (that have tasks in this plan) of every rolling
    /// change: the walker holds a batch back until the one before it has ended, and skips it
    /// when too many of that batch's hosts failed.
    pub fn gates(&self) -> Vec<BatchGate> {
        let node: HashMap<TaskId, NodeId> = self.tasks().map(|(node, task)| (task.id, node)).collect();
        let mut gates = Vec::new();
        for (s, serial) in self.serials.iter().enumerate() {
            let batches: Vec<(usize, Vec<NodeId>)> = serial
                .batches
                .iter()
                .enumerate()
                .map(|(b, batch)| (b, batch.tasks.iter().filter_map(|id| node.get(id).copied()).collect()))
                .filter(|(_, nodes): &(usize, Vec<NodeId>)| !nodes.is_empty())
                .collect();
            for pair in batches.windows(2) {
                let ((batch, members), (_, successors)) = (&pair[0], &pair[1]);
                let hosts = serial.batches[*batch].hosts.len();
                gates.push(BatchGate {
                    members: members.clone(),
                    successors: successors.clone(),
                    serial: s,
                    batch: *batch,
                    hosts,
                    max_failed: serial.max_failed(hosts),
                });
            }
        }
        gates
    }

    pub fn playbook(&self) -> &Path {
        &self.playbook
    }

    /// Every task with its node, in node order (the playbook's order).
    pub fn tasks(&self) -> impl Iterator<Item = (NodeId, &Task)> + '_ {
        self.graph.node_indices().map(|n| (NodeId(n.index()), &self.graph[n]))
    }

    /// The task at `node`. Panics on a node of another plan.
    pub fn task(&self, node: NodeId) -> &Task {
        &self.graph[NodeIndex::new(node.0)]
    }

    /// The node of the task with playbook number `id`, if this plan kept it.
    pub fn node_of(&self, id: TaskId) -> Option<NodeId> {
        // Nodes keep their tasks' playbook order (sealing adds them in order, selections keep
        // it), so the ids are sorted.
        let n = self.graph.node_count();
        let (mut low, mut high) = (0, n);
        while low < high {
            let mid = (low + high) / 2;
            if self.graph[NodeIndex::new(mid)].id < id {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        (low < n && self.graph[NodeIndex::new(low)].id == id).then_some(NodeId(low))
    }

    /// The host a task runs on.
    pub fn host_of(&self, node: NodeId) -> HostId {
        self.host_of[node.0]
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

    /// The hosts that have tasks, in inventory order: the [`HostId`]s index it.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The tasks a task waits for.
    pub fn dependencies(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.graph.neighbors_directed(NodeIndex::new(node.0), Direction::Incoming).map(|n| NodeId(n.index()))
    }

    /// The tasks that wait for a task.
    pub fn dependents(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.graph.neighbors_directed(NodeIndex::new(node.0), Direction::Outgoing).map(|n| NodeId(n.index()))
    }

    /// The tasks a task waits for, each with why.
    pub fn dependencies_with_kind(&self, node: NodeId) -> impl Iterator<Item = (NodeId, Edge)> + '_ {
        self.graph
            .edges_directed(NodeIndex::new(node.0), Direction::Incoming)
            .map(|e| (NodeId(e.source().index()), *e.weight()))
    }

    /// The length of the longest chain of tasks through the graph, each task counting
    /// `duration(node)`: the run's critical path. 0 for an empty plan.
    pub fn critical_path(&self, duration: impl Fn(NodeId) -> u64) -> u64 {
        self.critical_chain(duration).0
    }

    /// [`critical_path`](Self::critical_path) with the chain itself, first task first. Ties go
    /// to the dependency (and the last task) earliest in the plan, so the chain is stable.
    pub fn critical_chain(&self, duration: impl Fn(NodeId) -> u64) -> (u64, Vec<NodeId>) {
        let Ok(order) = petgraph::algo::toposort(&*self.graph, None) else { return (0, Vec::new()) };
        let mut finish = vec![0u64; self.graph.node_count()];
        let mut before: Vec<Option<usize>> = vec![None; self.graph.node_count()];
        for node in order {
            let longest = self
                .graph
                .neighbors_directed(node, Direction::Incoming)
                .map(|p| (finish[p.index()], std::cmp::Reverse(p.index())))
                .max();
            before[node.index()] = longest.map(|(_, p)| p.0);
            finish[node.index()] = longest.map_or(0, |(f, _)| f) + duration(NodeId(node.index()));
        }
        let Some((length, std::cmp::Reverse(mut last))) =
            finish.iter().enumerate().map(|(n, f)| (*f, std::cmp::Reverse(n))).max()
        else {
            return (0, Vec::new());
        };
        let mut chain = vec![NodeId(last)];
        while let Some(p) = before[last] {
            chain.push(NodeId(p));
            last = p;
        }
        chain.reverse();
        (length, chain)
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
    ///
    /// `skip_tags` drops the tasks carrying them, before and after the dependencies are
    /// followed: a kept task's `after` on a skipped one is dropped (the order through it stays),
    /// its notified handler is not run; only a task whose output a kept task reads comes back.
    /// An `always` task that waits for a kept task (by `after` or data) is kept too, with what
    /// it needs: a cleanup never stays behind.
    pub fn select(&self, selection: &Selection) -> Plan {
        if selection.hosts.is_none() && selection.tags.is_none() && selection.skip_tags.is_empty() {
            return self.clone();
        }
        let graph = &*self.graph;
        let skipped = |task: &Task| task.tags.iter().any(|t| selection.skip_tags.contains(t));
        let wanted = |task: &Task| {
            selection.hosts.as_ref().is_none_or(|hosts| hosts.contains(&task.host))
                && selection.tags.as_ref().is_none_or(|tags| task.tags.iter().any(|t| tags.contains(t)))
                && !skipped(task)
        };
        let mut keep: HashSet<NodeIndex> = HashSet::new();
        let mut stack: Vec<NodeIndex> = graph.node_indices().filter(|n| wanted(&graph[*n])).collect();
        while let Some(node) = stack.pop() {
            if !keep.insert(node) {
                continue;
            }
            for edge in graph.edges_directed(node, Direction::Incoming) {
                let needed = match edge.weight() {
                    Edge::Data => true,
                    Edge::After => !skipped(&graph[edge.source()]),
                    _ => false,
                };
                if needed {
                    stack.push(edge.source());
                }
            }
            for edge in graph.edges_directed(node, Direction::Outgoing) {
                let target = &graph[edge.target()];
                // A cleanup of a kept task comes with it (the uncordon of a kept drain), or
                // the selection would leave undone what the cleanup undoes.
                let cleanup = target.always && matches!(edge.weight(), Edge::After | Edge::Data);
                if (*edge.weight() == Edge::Notify || cleanup) && !skipped(target) {
                    stack.push(edge.target());
                }
            }
        }
        let mut selected = self.subgraph(&keep);
        if let Some(hosts) = &selection.hosts {
            // A batch's percentage counts the hosts the run kept (Ansible batches after --limit).
            let serials: Vec<Serial> = selected
                .serials
                .iter()
                .cloned()
                .map(|mut serial| {
                    for batch in &mut serial.batches {
                        batch.hosts.retain(|h| hosts.contains(h));
                    }
                    serial
                })
                .collect();
            selected.serials = serials.into();
        }
        selected
    }

    /// The plan of the `keep` tasks only. Kept tasks are reconnected through dropped ones, so
    /// no ordering of the full plan is lost; an edge keeps its kind when it was direct.
    fn subgraph(&self, keep: &HashSet<NodeIndex>) -> Plan {
        let graph = &*self.graph;
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
        let kept: HashSet<TaskId> = keep.iter().map(|n| graph[*n].id).collect();
        let serials: Vec<Serial> = self
            .serials
            .iter()
            .cloned()
            .map(|mut serial| {
                for batch in &mut serial.batches {
                    batch.tasks.retain(|id| kept.contains(id));
                }
                serial
            })
            .collect();
        let budgets: Vec<Budget> = self
            .budgets
            .iter()
            .cloned()
            .map(|mut budget| {
                for window in &mut budget.windows {
                    window.tasks.retain(|id| kept.contains(id));
                }
                budget
            })
            .collect();
        Plan::new(self.playbook.clone(), selected, self.inventory.clone(), serials.into(), budgets.into())
    }

    /// Edges as `(from, to, kind)`, sorted, for tests and reports.
    pub fn edges(&self) -> Vec<(NodeId, NodeId, Edge)> {
        let mut edges: Vec<_> = self
            .graph
            .edge_references()
            .map(|e| (NodeId(e.source().index()), NodeId(e.target().index()), *e.weight()))
            .collect();
        edges.sort();
        edges
    }
}
