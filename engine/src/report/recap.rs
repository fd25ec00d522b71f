//! Per-host totals, built from events.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::events::Counts;
use crate::events::Event;

/// Counts and time per host, in the order hosts first appear.
#[derive(Debug, Default, Clone)]
pub struct Recap {
    hosts: Vec<String>,
    counts: BTreeMap<String, Counts>,
    busy_ms: BTreeMap<String, u64>,
    elapsed_ms: u64,
    critical_path_ms: u64,
    check: bool,
    /// A resumed run: tasks not rerun, per host, counted apart from this run's outcomes.
    done: BTreeMap<String, usize>,
    /// The runs those tasks were done in.
    done_in: Vec<String>,
    /// This run's journal.
    journal: Option<String>,
    interrupted: bool,
}

impl Recap {
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::RunStarted { hosts, check, journal, .. } => {
                self.hosts.clone_from(hosts);
                self.check = *check;
                self.journal.clone_from(journal);
            }
            Event::TaskDone { host, run, .. } => {
                if !self.hosts.contains(host) {
                    self.hosts.push(host.clone());
                }
                *self.done.entry(host.clone()).or_default() += 1;
                if !self.done_in.contains(run) {
                    self.done_in.push(run.clone());
                }
            }
            Event::TaskFinished(r) => {
                self.counts.entry(r.host.clone()).or_default().add(r.status);
                *self.busy_ms.entry(r.host.clone()).or_default() += r.elapsed_ms;
            }
            Event::RunFinished { elapsed_ms, critical_path_ms, interrupted, .. } => {
                self.interrupted = *interrupted;
                self.elapsed_ms = *elapsed_ms;
                self.critical_path_ms = *critical_path_ms;
            }
            _ => {}
        }
    }

    /// The recap table and a one-line total.
    pub fn render(&self) -> String {
        let width = self.hosts.iter().map(String::len).max().unwrap_or(4).max(4);
        let mut out = String::new();
        let changed = if self.check { "would change" } else { "changed" };
        let _ = writeln!(
            out,
            "{:width$}  {:>5} {:>w2$} {:>6} {:>11} {:>7} {:>7}  {:>8}",
            "HOST",
            "ok",
            changed,
            "failed",
            "unreachable",
            "skipped",
            "unknown",
            "time",
            w2 = changed.len()
        );
        let mut total = Counts::default();
        for host in &self.hosts {
            let c = self.counts.get(host).cloned().unwrap_or_default();
            let busy = self.busy_ms.get(host).copied().unwrap_or_default();
            let _ = writeln!(
                out,
                "{host:width$}  {:>5} {:>w2$} {:>6} {:>11} {:>7} {:>7}  {:>7.2}s",
                c.ok,
                c.changed,
                c.failed,
                c.unreachable,
                c.skipped,
                c.unknown,
                busy as f64 / 1000.0,
                w2 = changed.len()
            );
            total.merge(&c);
        }
        let tasks = total.total();
        let _ = writeln!(
            out,
            "{tasks} tasks on {} hosts in {:.2}s: {} ok, {} {changed}, {} failed, {} unreachable, {} skipped{}",
            self.hosts.len(),
            self.elapsed_ms as f64 / 1000.0,
            total.ok,
            total.changed,
            total.failed,
            total.unreachable,
            total.skipped,
            if total.unknown > 0 { format!(", {} unknown", total.unknown) } else { String::new() },
        );
        let done: usize = self.done.values().sum();
        if done > 0 {
            let per_host: Vec<String> = self.done.iter().map(|(h, n)| format!("{h} {n}")).collect();
            let _ = writeln!(
                out,
                "{done} more tasks done in run {} (not rerun; not counted above): {}",
                self.done_in.join(", "),
                per_host.join(", ")
            );
        }
        if let Some(journal) = &self.journal {
            let unfinished = total.failed + total.unreachable + total.skipped > 0 || self.interrupted;
            let id = std::path::Path::new(journal).file_stem().map(|s| s.to_string_lossy().into_owned());
            let hint = match id {
                Some(id) if unfinished => format!("; finish the run with `engine run --resume {id}`"),
                _ => String::new(),
            };
            let _ = writeln!(out, "run journal: {journal}{hint}");
        }
        if self.critical_path_ms > 0 {
            let _ = writeln!(
                out,
                "critical path {:.2}s (the longest chain of task durations; wall / critical path = {:.2})",
                self.critical_path_ms as f64 / 1000.0,
                self.elapsed_ms as f64 / self.critical_path_ms as f64
            );
        }
        out
    }
}
