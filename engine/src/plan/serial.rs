//! A `serial(...)` rolling change as data of the sealed plan: its batches, and when the
//! failures of one batch stop the batches after it (Ansible's `max_fail_percentage`).
//!
//! ```text
//!   serial(group("web"), #{ size: 2, max_fail_percentage: 30 }, |h| { ... })
//!
//!   batch 1: web0 web1 ──gate──▶ batch 2: web2 web3 ──gate──▶ batch 3: web4
//!   a gate opens when every task of the batch before it has ended and at most 30% of that
//!   batch's hosts failed; otherwise the later batches are skipped
//! ```

use super::Location;
use crate::ids::{NodeId, TaskId};

/// One `serial(...)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serial {
    /// Where the playbook calls `serial`.
    pub location: Location,
    /// The batches, in order.
    pub batches: Vec<Batch>,
    /// Ansible's `max_fail_percentage`: the later batches are skipped when MORE than this
    /// percentage of a batch's hosts failed (0: any failure). `None` is Ansible's default: they
    /// are skipped only when every host of a batch failed (so does any percentage).
    pub max_fail_percentage: Option<u8>,
}

/// One batch of a [`Serial`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The hosts the batch was made of: the percentage counts them. A run that leaves some of
    /// them out (`--limit`) counts only the others; a resumed run counts them all, the hosts
    /// done before as succeeded.
    pub hosts: Vec<String>,
    /// The tasks the batch created (on its hosts or any other), by playbook id.
    pub tasks: Vec<TaskId>,
}

/// A gate of the sealed plan, between batch `batch` of serial `serial` and the next batch that
/// has tasks: what the walker needs ([`crate::sched::Gate`]) and what a report says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchGate {
    /// The tasks of the batch before the gate.
    pub members: Vec<NodeId>,
    /// The tasks of the batch after it: they wait for the gate.
    pub successors: Vec<NodeId>,
    /// Index into [`super::Plan::serials`].
    pub serial: usize,
    /// Index of the batch before the gate.
    pub batch: usize,
    /// How many hosts the batch counts.
    pub hosts: usize,
    /// How many of them may fail with the later batches still running.
    pub max_failed: usize,
}

impl Serial {
    /// How many of a batch's `hosts` may fail with the batches after it still running: the
    /// greatest count that is not more than `max_fail_percentage` percent, and never all.
    pub fn max_failed(&self, hosts: usize) -> usize {
        let all_but_one = hosts.saturating_sub(1);
        match self.max_fail_percentage {
            None => all_but_one,
            Some(p) => (usize::from(p) * hosts / 100).min(all_but_one),
        }
    }

    /// When the later batches stop, in words.
    pub fn threshold(&self) -> String {
        match self.max_fail_percentage {
            None => "when every host of a batch fails (no max_fail_percentage)".to_owned(),
            Some(p) => format!("when more than max_fail_percentage {p}% of a batch's hosts fail"),
        }
    }

    /// The rolling change in one line, for DOT and `engine check`:
    /// `serial at pb.rhai:3:1: batches [w0, w1] [w2]; later batches stop when ...`.
    pub fn describe(&self) -> String {
        let batches: Vec<String> = self.batches.iter().map(|b| format!("[{}]", b.hosts.join(", "))).collect();
        format!(
            "serial at {}: batches {}; later batches stop {}",
            self.location,
            batches.join(" "),
            self.threshold()
        )
    }

    /// Why a task of a later batch was skipped: which batch, how many of its hosts failed, the
    /// threshold.
    pub fn halted(&self, batch: usize, failed: usize, hosts: usize) -> String {
        let why = match self.max_fail_percentage {
            None => "every host failed".to_owned(),
            Some(p) => format!("more than max_fail_percentage {p}%"),
        };
        format!(
            "skipped: serial at {} stopped after batch {} of {}: {failed} of {hosts} hosts failed ({why})",
            self.location,
            batch + 1,
            self.batches.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn serial(max_fail_percentage: Option<u8>) -> Serial {
        Serial {
            location: Location { file: Arc::from("pb.rhai"), line: 3, col: 1 },
            batches: Vec::new(),
            max_fail_percentage,
        }
    }

    /// Ansible: the batch is aborted when MORE than the percentage failed; every host failing
    /// always stops the play.
    #[test]
    fn max_failed_follows_ansible() {
        assert_eq!(serial(Some(40)).max_failed(3), 1, "1 of 3 is 33% (not more than 40%), 2 of 3 is more");
        assert_eq!(serial(Some(40)).max_failed(2), 0, "1 of 2 is 50%");
        assert_eq!(serial(Some(50)).max_failed(4), 2, "exactly 50% does not exceed 50%");
        assert_eq!(serial(Some(49)).max_failed(4), 1);
        assert_eq!(serial(Some(0)).max_failed(10), 0, "0: any failure");
        assert_eq!(serial(Some(100)).max_failed(3), 2, "all failing stops even at 100%");
        assert_eq!(serial(None).max_failed(3), 2, "default: only all failing stops");
        assert_eq!(serial(None).max_failed(1), 0);
        assert_eq!(serial(None).max_failed(0), 0);
    }

    #[test]
    fn the_reason_names_the_batch_the_count_and_the_threshold() {
        let mut s = serial(Some(30));
        s.batches = vec![Batch { hosts: vec!["a".into()], tasks: vec![] }; 3];
        assert_eq!(
            s.halted(1, 2, 2),
            "skipped: serial at pb.rhai:3:1 stopped after batch 2 of 3: 2 of 2 hosts failed \
             (more than max_fail_percentage 30%)"
        );
    }
}
