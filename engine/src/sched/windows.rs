//! Disruption budgets: at most `max_down` windows of a budget are open at once.
//!
//! A window is the set of nodes that take one host out of service (drain it, upgrade it,
//! bring it back), wherever they run: a drain run from the first master belongs to the
//! drained worker's window. A window opens when its first node is ready to start; when the
//! budget has no room, its ready nodes are parked until another window of the budget closes.
//! A window closes when every node of it has ended, and gives its room back only when every
//! node of it that failed was repaired: an `always` node of the window that waits for it
//! directly succeeded (the uncordon after a refused drain). A window with a failure left
//! unrepaired (a kubelet that did not come back) leaves its host down, so it keeps its room for
//! the rest of the walk, and the walker reports the nodes still parked as held by the budget.
//! Nodes skipped because of a failure do not count: the failure does.
//!
//! ```text
//!   budget max_down 1, windows w0 [drain0 → upgrade0 → uncordon0], w1 [drain1 → ...]
//!   drain0 ready: w0 opens (1 of 1)      drain1 ready: parked
//!   uncordon0 succeeded: w0 closes, w1 opens, drain1 starts
//! ```

use std::collections::VecDeque;

use crate::ids::NodeId;

/// A disruption budget as the walker sees it: its windows (each the nodes of one host's
/// disruption) and how many may be open at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    pub windows: Vec<Vec<NodeId>>,
    /// At least 1 (0 is taken as 1: a budget that lets nothing start would hold every window).
    pub max_down: usize,
}

/// One window of the walk's budgets, as added.
#[derive(Debug, Clone)]
pub(super) struct Window {
    budget: usize,
    members: usize,
}

/// The windows of every budget, indexed by node: what the [`super::Dag`] keeps of them.
#[derive(Debug, Clone, Default)]
pub(super) struct Budgets {
    /// `max_down` per budget.
    max_down: Vec<usize>,
    windows: Vec<Window>,
    /// `window_of[node]`, for nodes in a window (filled up to the highest such node).
    window_of: Vec<Option<usize>>,
}

impl Budgets {
    /// Adds `budget`. A node already in a window keeps it (the plan never puts a task in two).
    pub(super) fn add(&mut self, budget: Budget) -> usize {
        let index = self.max_down.len();
        self.max_down.push(budget.max_down.max(1));
        for members in budget.windows.into_iter().filter(|w| !w.is_empty()) {
            let window = self.windows.len();
            let mut count = 0;
            for node in &members {
                if self.window_of.len() <= node.0 {
                    self.window_of.resize(node.0 + 1, None);
                }
                if self.window_of[node.0].is_none() {
                    self.window_of[node.0] = Some(window);
                    count += 1;
                }
            }
            self.windows.push(Window { budget: index, members: count });
        }
        index
    }

    pub(super) fn window_of(&self, node: usize) -> Option<usize> {
        self.window_of.get(node).copied().flatten()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// The windows' state during one walk.
#[derive(Debug)]
pub(super) struct Admission {
    /// Open windows, per budget.
    open: Vec<usize>,
    /// Windows with parked nodes, in the order they asked, per budget.
    queue: Vec<VecDeque<usize>>,
    entered: Vec<bool>,
    /// Nodes of each window that have not ended.
    unsettled: Vec<usize>,
    /// The nodes of each window that ran and failed.
    failed: Vec<Vec<usize>>,
    /// Windows that closed with a failure left unrepaired: their hosts are still down.
    down: Vec<usize>,
    /// Each window's nodes that are ready but wait for room.
    parked: Vec<Vec<usize>>,
}

impl Admission {
    pub(super) fn new(budgets: &Budgets) -> Self {
        let windows = budgets.windows.len();
        Self {
            open: vec![0; budgets.max_down.len()],
            queue: vec![VecDeque::new(); budgets.max_down.len()],
            entered: vec![false; windows],
            unsettled: budgets.windows.iter().map(|w| w.members).collect(),
            failed: vec![Vec::new(); windows],
            down: Vec::new(),
            parked: vec![Vec::new(); windows],
        }
    }

    /// `node` is ready by its dependencies: whether it may start now (its window is open, or
    /// opens now). Otherwise it is parked until its window opens.
    pub(super) fn admit(&mut self, budgets: &Budgets, node: usize) -> bool {
        let Some(window) = budgets.window_of(node) else {
            return true;
        };
        if self.entered[window] {
            return true;
        }
        let budget = budgets.windows[window].budget;
        if self.open[budget] < budgets.max_down[budget] && self.queue[budget].is_empty() {
            self.entered[window] = true;
            self.open[budget] += 1;
            return true;
        }
        if self.parked[window].is_empty() {
            self.queue[budget].push_back(window);
        }
        self.parked[window].push(node);
        false
    }

    /// `node` has ended (`failed`: it ran and failed) or will never run. Returns its window
    /// when that window has now closed, with the nodes of it that failed, for the walker to say
    /// whether each was repaired ([`Admission::close`]).
    pub(super) fn settle(
        &mut self,
        budgets: &Budgets,
        node: usize,
        failed: bool,
    ) -> Option<(usize, &[usize])> {
        let window = budgets.window_of(node)?;
        if failed {
            self.failed[window].push(node);
        }
        self.unsettled[window] -= 1;
        if self.unsettled[window] > 0 || !self.entered[window] {
            return None;
        }
        Some((window, &self.failed[window]))
    }

    /// Window `window` has closed: when `clean`, its room goes to the windows waiting (their
    /// parked nodes are returned, to start); otherwise its host stays down.
    pub(super) fn close(&mut self, budgets: &Budgets, window: usize, clean: bool) -> Vec<usize> {
        if !clean {
            self.down.push(window);
            return Vec::new();
        }
        let budget = budgets.windows[window].budget;
        self.open[budget] -= 1;
        let mut released = Vec::new();
        while self.open[budget] < budgets.max_down[budget] {
            let Some(next) = self.queue[budget].pop_front() else {
                break;
            };
            self.entered[next] = true;
            self.open[budget] += 1;
            released.append(&mut self.parked[next]);
        }
        released
    }

    /// The nodes still parked, each with its budget and a failed node of a window of that
    /// budget left down (what holds them).
    pub(super) fn held(&self, budgets: &Budgets) -> Vec<(usize, usize, Option<usize>)> {
        let mut held = Vec::new();
        for (window, nodes) in self.parked.iter().enumerate() {
            let budget = budgets.windows[window].budget;
            let cause = self
                .down
                .iter()
                .find(|w| budgets.windows[**w].budget == budget)
                .and_then(|w| self.failed[*w].first().copied());
            held.extend(nodes.iter().map(|n| (*n, budget, cause)));
        }
        held.sort_unstable();
        held
    }
}
