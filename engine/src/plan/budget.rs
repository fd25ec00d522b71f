//! A `budget(...)` disruption budget as data of the sealed plan: one window per host (the
//! tasks that take it out of service and bring it back, wherever they run), and how many
//! windows may be open at once.
//!
//! ```text
//!   budget(group("workers"), #{ max_down: 1 }, |h| { drain h; upgrade h; uncordon h })
//!
//!   window w0: drain w0 (on master0), upgrade (on w0), uncordon w0 (on master0)
//!   window w1: ...                    at most 1 window open at once
//! ```
//!
//! Unlike `serial`, which runs hosts in fixed batches, a budget lets the next host start as
//! soon as any open window closes. The walker enforces it ([`crate::sched::Budget`]).

use super::Location;
use crate::ids::TaskId;

/// One `budget(...)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Where the playbook calls `budget`.
    pub location: Location,
    pub limit: Limit,
    /// The hosts the budget was given, in order: a percentage counts them, whatever
    /// `--limit` or `--resume` leave out (the budget is about the cluster, not the run).
    pub hosts: Vec<String>,
    /// One window per host, in order.
    pub windows: Vec<Window>,
}

/// How many windows may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_down: 2`
    Hosts(usize),
    /// `max_down: "25%"`: that share of the budget's hosts, rounded down, at least 1.
    Percent(u8),
}

/// The tasks one host's disruption is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The host the window takes down.
    pub host: String,
    /// The tasks the closure created for it (on that host or any other), by playbook id.
    pub tasks: Vec<TaskId>,
}

impl Budget {
    /// How many windows may be open at once: at least 1.
    pub fn max_down(&self) -> usize {
        match self.limit {
            Limit::Hosts(n) => n.max(1),
            Limit::Percent(p) => (usize::from(p) * self.hosts.len() / 100).max(1),
        }
    }

    /// The limit as written: `1` or `25%`.
    fn limit_text(&self) -> String {
        match self.limit {
            Limit::Hosts(n) => n.to_string(),
            Limit::Percent(p) => format!("{p}%"),
        }
    }

    /// The budget in one line, for DOT and `engine check`:
    /// `budget at pb.rhai:3:1: at most 1 of [w0, w1, w2] down at once (max_down 1)`.
    pub fn describe(&self) -> String {
        format!(
            "budget at {}: at most {} of [{}] down at once (max_down {})",
            self.location,
            self.max_down(),
            self.hosts.join(", "),
            self.limit_text()
        )
    }

    /// Why a task was not started because the budget had no room; `down` names a host whose
    /// window closed with a failure left unrepaired.
    pub fn held(&self, down: Option<&str>) -> String {
        format!(
            "not started: budget at {} allows {} of {} hosts down at once, and the window of {} ended with \
             a failure no `always` task repaired, so that host still counts as down; fix it, then rerun \
             with --resume",
            self.location,
            self.max_down(),
            self.hosts.len(),
            down.unwrap_or("another host")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn budget(limit: Limit, hosts: usize) -> Budget {
        Budget {
            location: Location { file: Arc::from("pb.rhai"), line: 3, col: 1 },
            limit,
            hosts: (0..hosts).map(|i| format!("w{i}")).collect(),
            windows: Vec::new(),
        }
    }

    #[test]
    fn a_percentage_rounds_down_and_never_to_zero() {
        assert_eq!(budget(Limit::Percent(25), 10).max_down(), 2);
        assert_eq!(budget(Limit::Percent(10), 3).max_down(), 1);
        assert_eq!(budget(Limit::Percent(100), 3).max_down(), 3);
        assert_eq!(budget(Limit::Hosts(2), 3).max_down(), 2);
    }

    #[test]
    fn it_describes_itself() {
        assert_eq!(
            budget(Limit::Percent(50), 2).describe(),
            "budget at pb.rhai:3:1: at most 1 of [w0, w1] down at once (max_down 50%)"
        );
    }
}
