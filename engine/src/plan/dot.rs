//! Graphviz DOT export. Deterministic: hosts in inventory order, sections in playbook order,
//! tasks in playbook order, edges sorted, so the output can be pinned by snapshot tests.

use std::fmt::Write as _;

use petgraph::graph::NodeIndex;

use super::{Edge, Plan, reduce};
use crate::ids::NodeId;
use crate::redact::Redactor;

/// Which edges a drawing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DotEdges {
    /// What a reader needs (`engine graph`): an ordering edge that another path implies is
    /// left out (transitive reduction), as are the edges that keep each handler after its
    /// host's other tasks; data, notify and serial edges are always drawn. Every ordering of
    /// the plan without those handler edges can still be read off the drawing.
    #[default]
    Readable,
    /// Every edge of the plan, as the scheduler sees them (`engine graph --all-edges`).
    All,
}

/// What a dry-run predicts for a task; colours the node in `engine graph --check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    WouldChange,
    Unchanged,
    /// Cannot be known before an earlier task really runs (it reads that task's output).
    Unknown,
    /// Planning failed (for example the host is unreachable).
    Failed,
}

impl Prediction {
    fn fill(self) -> &'static str {
        match self {
            Prediction::WouldChange => "#fdd49e",
            Prediction::Unchanged => "#c7e9c0",
            Prediction::Unknown => "#e0e0e0",
            Prediction::Failed => "#fc9272",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Prediction::WouldChange => "would change",
            Prediction::Unchanged => "unchanged",
            Prediction::Unknown => "unknown",
            Prediction::Failed => "failed",
        }
    }
}

impl Plan {
    /// The plan as a DOT digraph: one cluster per host, one node per task (name and module),
    /// cross-host edges bold and blue, data edges dashed, the edges between batches of a
    /// `serial(...)` rolling change bold orange and labelled `serial` (and a note per rolling change
    /// saying its batches and when the later batches stop). The tasks of a `budget(...)` window
    /// have a purple border and say whose window they are (`budget 1: w0`), with a note per
    /// budget; an `always` task has a double border. With `predictions` (indexed by
    /// node), nodes are coloured by the dry-run's outcome. Every label is redacted with
    /// `redactor` (before escaping, while secrets still read as they were given). The tasks of
    /// each `section(...)` of the playbook are a cluster inside their host's; `edges` says which
    /// edges are drawn.
    pub fn to_dot(&self, predictions: Option<&[Prediction]>, redactor: &Redactor, edges: DotEdges) -> String {
        let quote = |text: &str| dot_string(&redactor.redact(text));
        let graph = &self.graph;
        let mut window_of = std::collections::HashMap::new();
        for (b, budget) in self.budgets().iter().enumerate() {
            for window in &budget.windows {
                for id in &window.tasks {
                    window_of.insert(*id, (b, window.host.as_str()));
                }
            }
        }
        let mut out = String::new();
        let title = self.playbook().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(out, "digraph plan {{");
        let _ = writeln!(out, "  label={};", quote(&title));
        let _ = writeln!(out, "  labelloc=t;");
        let _ = writeln!(out, "  rankdir=LR;");
        let _ = writeln!(out, "  compound=true;");
        let _ = writeln!(
            out,
            "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\"];"
        );
        let _ = writeln!(out, "  edge [color=\"#555555\"];");
        // Sections numbered in the order they first appear, for their clusters' names.
        let mut section_ids: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for task in graph.node_weights() {
            if let Some(section) = task.section.as_deref() {
                let next = section_ids.len();
                section_ids.entry(section).or_insert(next);
            }
        }
        for (i, host) in self.hosts().iter().enumerate() {
            let _ = writeln!(out, "  subgraph cluster_{i} {{");
            let _ = writeln!(out, "    label={};", quote(host));
            let _ = writeln!(out, "    style=rounded; color=\"#888888\";");
            let mut nodes: Vec<NodeIndex> =
                graph.node_indices().filter(|n| &graph[*n].host == host).collect();
            nodes.sort();
            // The host's tasks outside any section first, then each section's, in the order
            // the sections first appear on the host.
            let mut sections: Vec<(Option<&str>, Vec<NodeIndex>)> = Vec::new();
            for node in nodes {
                let section = graph[node].section.as_deref();
                match sections.iter_mut().find(|(s, _)| *s == section) {
                    Some((_, members)) => members.push(node),
                    None => sections.push((section, vec![node])),
                }
            }
            sections.sort_by_key(|(s, _)| s.is_some());
            for (section, nodes) in sections {
                let indent = if section.is_some() { "      " } else { "    " };
                if let Some(section) = section {
                    let _ = writeln!(out, "    subgraph cluster_{i}_{} {{", section_ids[section]);
                    let _ = writeln!(out, "      label={};", quote(section));
                    let _ = writeln!(out, "      style=\"rounded,dashed\"; color=\"#bbbbbb\";");
                }
                for node in nodes {
                    let task = &graph[node];
                    let mut label = format!("{}\n[{}]", task.name, task.module);
                    if let Some((b, host)) = window_of.get(&task.id) {
                        let _ = write!(label, "\nbudget {}: {host}", b + 1);
                    }
                    if task.always {
                        label.push_str("\n(always)");
                    }
                    if let Some(when) = &task.when {
                        let _ = write!(label, "\nwhen: {}", when.expression);
                    }
                    let mut attrs = format!("label={}", quote(&label));
                    if window_of.contains_key(&task.id) {
                        attrs.push_str(", color=\"#756bb1\", penwidth=2");
                    }
                    if task.always {
                        attrs.push_str(", peripheries=2");
                    }
                    if let Some(p) = predictions.and_then(|p| p.get(node.index())) {
                        let _ = write!(attrs, ", fillcolor=\"{}\", tooltip={}", p.fill(), quote(p.as_str()));
                    }
                    let _ = writeln!(out, "{indent}t{} [{attrs}];", node.index());
                }
                if section.is_some() {
                    let _ = writeln!(out, "    }}");
                }
            }
            let _ = writeln!(out, "  }}");
        }
        // One note per rolling change: its batches and when the later ones stop.
        for (i, serial) in self.serials().iter().enumerate() {
            let _ = writeln!(
                out,
                "  serial_{i} [shape=note, style=filled, fillcolor=\"#fee6ce\", label={}];",
                quote(&serial.describe())
            );
        }
        // One note per budget: its hosts and how many may be down at once.
        for (i, budget) in self.budgets().iter().enumerate() {
            let _ = writeln!(
                out,
                "  budget_{} [shape=note, style=filled, fillcolor=\"#dadaeb\", label={}];",
                i + 1,
                quote(&format!("budget {}: {}", i + 1, budget.describe()))
            );
        }
        for (from, to, kind) in self.drawn_edges(edges) {
            let cross = self.host_of(from) != self.host_of(to);
            let mut attrs = Vec::new();
            if cross && kind != Edge::Serial {
                attrs.push("color=\"#1f78b4\", penwidth=2");
            }
            match kind {
                Edge::Serial => attrs.push("color=\"#e6550d\", penwidth=2, style=bold, label=\"serial\""),
                Edge::Data => attrs.push("style=dashed, label=\"data\""),
                Edge::Notify => attrs.push("style=dotted, label=\"notify\""),
                Edge::After if !cross => attrs.push("style=bold"),
                _ => {}
            }
            let attrs = if attrs.is_empty() { String::new() } else { format!(" [{}]", attrs.join(", ")) };
            let _ = writeln!(out, "  t{} -> t{}{attrs};", from.index(), to.index());
        }
        if let Some(predictions) = predictions {
            let _ = writeln!(out, "  subgraph cluster_legend {{");
            let _ = writeln!(out, "    label=\"dry-run\"; style=dashed;");
            for p in [Prediction::WouldChange, Prediction::Unchanged, Prediction::Unknown, Prediction::Failed]
            {
                let count = predictions.iter().filter(|q| **q == p).count();
                let _ = writeln!(
                    out,
                    "    legend_{} [label={}, fillcolor=\"{}\"];",
                    p.as_str().replace(' ', "_"),
                    quote(&format!("{} ({count})", p.as_str())),
                    p.fill()
                );
            }
            let _ = writeln!(out, "  }}");
        }
        let _ = writeln!(out, "}}");
        out
    }
}

impl Plan {
    /// The edges `to_dot` draws, sorted (see [`DotEdges`]).
    ///
    /// ```text
    ///   all:      a ──▶ b ──▶ c ──notify──▶ h      a ──▶ c      a ──data──▶ c     a, b ──▶ h (handler last)
    ///   readable: a ──▶ b ──▶ c ──notify──▶ h                   a ──data──▶ c
    /// ```
    pub fn drawn_edges(&self, edges: DotEdges) -> Vec<(NodeId, NodeId, Edge)> {
        let all = self.edges();
        if edges == DotEdges::All {
            return all;
        }
        // `order_handlers_last`'s edges: an order edge into a handler (handlers stand outside
        // their host's order, so no other order edge leads to one).
        let shown: Vec<(NodeId, NodeId, Edge)> = all
            .into_iter()
            .filter(|(_, to, kind)| !(*kind == Edge::Order && self.task(*to).handler))
            .collect();
        let pairs: Vec<(usize, usize)> = shown.iter().map(|(from, to, _)| (from.0, to.0)).collect();
        let implied = reduce::implied(self.len(), &pairs);
        shown
            .into_iter()
            .zip(implied)
            .filter(|((_, _, kind), implied)| {
                // A value flows, a handler is notified, a batch waits for the one before: said
                // even when another path already orders the two tasks.
                !implied || matches!(kind, Edge::Data | Edge::Notify | Edge::Serial)
            })
            .map(|(edge, _)| edge)
            .collect()
    }
}

/// A DOT string literal.
fn dot_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::inventory::Inventory;
    use crate::playbook::{LoadOptions, load_source};

    const INVENTORY: &str = "all:\n  hosts:\n    w0: {}\n    w1: {}\n";

    fn load(playbook: &str) -> Plan {
        let inventory = Inventory::parse(INVENTORY, Path::new("inventory.yml")).unwrap();
        load_source(Path::new("drawn.rhai"), playbook, &inventory, &LoadOptions::default()).unwrap()
    }

    /// `host: name` pairs of the edges drawn, with their kinds.
    fn drawn(plan: &Plan, edges: DotEdges) -> Vec<(String, String, Edge)> {
        plan.drawn_edges(edges)
            .into_iter()
            .map(|(from, to, kind)| (plan.task(from).label(), plan.task(to).label(), kind))
            .collect()
    }

    fn edge(from: &str, to: &str, kind: Edge) -> (String, String, Edge) {
        (from.to_owned(), to.to_owned(), kind)
    }

    /// ```text
    ///   w0:  a ──▶ b ──▶ c             a ──data──▶ c (c reads a.stdout; also .after(a))
    ///              └notify▶ restart    a, c ──order──▶ restart (handlers run last on their host)
    ///   w1:  d, after a and c          a ──▶ d is implied by a ──▶ b ──▶ c ──▶ d
    /// ```
    const PLAYBOOK: &str = r#"let w = host("w0");
let restart = w.handler("command", "restart", #{ cmd: "true" });
section("Prepare");
let a = w.command("a", #{ cmd: "true" });
w.command("b", #{ cmd: "true" }).notify(restart);
section("Go");
let c = w.file("c", #{ path: "/tmp/c", content: a.stdout }).after(a);
host("w1").command("d", #{ cmd: "true" }).after(a).after(c);
"#;

    #[test]
    fn the_readable_drawing_drops_implied_order_and_handler_bookkeeping_but_keeps_data() {
        let plan = load(PLAYBOOK);
        assert_eq!(
            drawn(&plan, DotEdges::All),
            [
                edge("w0: a", "w0: restart", Edge::Order),
                edge("w0: a", "w0: b", Edge::Order),
                edge("w0: a", "w0: c", Edge::Data),
                edge("w0: a", "w1: d", Edge::After),
                edge("w0: b", "w0: restart", Edge::Notify),
                edge("w0: b", "w0: c", Edge::Order),
                edge("w0: c", "w0: restart", Edge::Order),
                edge("w0: c", "w1: d", Edge::After),
            ]
        );
        assert_eq!(
            drawn(&plan, DotEdges::Readable),
            [
                edge("w0: a", "w0: b", Edge::Order),
                edge("w0: a", "w0: c", Edge::Data),
                edge("w0: b", "w0: restart", Edge::Notify),
                edge("w0: b", "w0: c", Edge::Order),
                edge("w0: c", "w1: d", Edge::After),
            ]
        );
        assert_eq!(plan.edges().len(), 8, "the plan itself keeps every edge");
    }

    /// Each section is a cluster inside its host's, its tasks in playbook order; tasks written
    /// before the first `section(...)` stay directly in the host's cluster.
    #[test]
    fn sections_are_clusters_inside_each_host() {
        let plan = load(PLAYBOOK);
        insta::assert_snapshot!(plan.to_dot(None, &Redactor::default(), DotEdges::Readable));
    }

    /// A section's name is redacted like every label.
    #[test]
    fn a_section_name_is_redacted() {
        let plan = load("section(\"token s3cret\");\nhost(\"w0\").command(\"a\", #{ cmd: \"true\" });");
        let redactor = Redactor::default();
        redactor.add("s3cret");
        let dot = plan.to_dot(None, &redactor, DotEdges::Readable);
        assert!(!dot.contains("s3cret") && dot.contains("label=\"token "), "{dot}");
    }
}
