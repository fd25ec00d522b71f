//! Graphviz DOT export. Deterministic: hosts in inventory order, tasks in playbook order,
//! edges sorted, so the output can be pinned by snapshot tests.

use std::fmt::Write as _;

use petgraph::graph::NodeIndex;

use super::{Edge, Plan};
use crate::redact::Redactor;

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
    /// `redactor` (before escaping, while secrets still read as they were given).
    pub fn to_dot(&self, predictions: Option<&[Prediction]>, redactor: &Redactor) -> String {
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
        for (i, host) in self.hosts().iter().enumerate() {
            let _ = writeln!(out, "  subgraph cluster_{i} {{");
            let _ = writeln!(out, "    label={};", quote(host));
            let _ = writeln!(out, "    style=rounded; color=\"#888888\";");
            let mut nodes: Vec<NodeIndex> =
                graph.node_indices().filter(|n| &graph[*n].host == host).collect();
            nodes.sort();
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
                let _ = writeln!(out, "    t{} [{attrs}];", node.index());
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
        for (from, to, kind) in self.edges() {
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
