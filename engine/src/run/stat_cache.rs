//! Stats taken ahead of time, one round trip per host, and kept only while they are current.
//!
//! Before a host's first task, the runner asks every task of that host which paths its plan
//! will stat ([`contract::Module::probes`]) and stats them all in one command
//! ([`contract::remote::stat_many`]). A task's own `remote::stat` is then answered from here,
//! which turns a no-change run's one round trip per file task into one per host. When a
//! change has dropped the answers, the next task that needs one stats again every path that
//! tasks still to come will need, again in one command.
//!
//! An answer is used only while nothing can have changed it. Every command the host runs
//! passes through [`CachedTarget::exec`] and says what it may change ([`Effect`]):
//! - reads change nothing;
//! - a write, `mkdir` or attribute change of a path drops that path and its parents, and a
//!   removal drops the path, its parents and everything beneath it, if the path was itself
//!   stated here and found to have no symbolic link above it (so no other name reaches the
//!   same object); otherwise everything is dropped;
//! - any other command (a shell command, a restart, a package) drops everything.
//!
//! A prefetch that overlaps a change is thrown away whole, and an answer older than a few
//! seconds is not used (other writers on the host are not seen). Hard links are not followed:
//! a mode change through one name leaves the other name's answer as it was.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contract::remote::{self, FileStat};
use contract::{Effect, Exec, ExecOutput, Host, HostError};

use super::Target;
use crate::ids::NodeId;

/// Most bytes of paths stated in one prefetch (they travel on one command line, and sshd
/// drops a connection whose request exceeds its packet limit); more are left to the tasks.
const MAX_PREFETCH_BYTES: usize = 64 * 1024;

/// How long an answer is trusted. The engine drops what its own commands change; this bounds
/// what other writers on the host (a daemon, kubelet) can change unseen, to about what any
/// plan-then-apply already allows.
const MAX_AGE: Duration = Duration::from_secs(5);

/// A host's connection with a cache of current stats in front of it.
pub(crate) struct CachedTarget {
    inner: Arc<dyn Target>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every command that may change something; a prefetch that started under an
    /// older generation is discarded.
    generation: u64,
    /// Current answers, by path, with when they were taken.
    stats: HashMap<String, (Option<FileStat>, Instant)>,
    /// Paths found with no symbolic link above them, since the last unknown change.
    direct: HashSet<String>,
    /// The paths each task (by node) will stat, until it finishes.
    by_node: HashMap<NodeId, Vec<String>>,
    /// For each path, how many unfinished tasks will stat it.
    wanted: HashMap<String, usize>,
}

impl CachedTarget {
    pub(crate) fn new(inner: Arc<dyn Target>) -> Self {
        Self { inner, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records which paths each task of this host (by node) will stat, and stats them all in
    /// one round trip.
    pub(crate) async fn prefetch(&self, by_node: HashMap<NodeId, Vec<String>>) {
        {
            let mut state = self.state();
            for (node, paths) in by_node {
                let paths: Vec<String> = paths.into_iter().filter(|p| is_plain(p)).collect();
                for path in &paths {
                    *state.wanted.entry(path.clone()).or_default() += 1;
                }
                state.by_node.insert(node, paths);
            }
        }
        self.fetch_wanted().await;
    }

    /// Task `node` has finished: the paths it wanted are no longer worth fetching for it.
    /// Once no task that was prefetched for is left, the answers and their tables (kept at
    /// their largest size by `clear`) are let go: a host that is done holds no cache, which
    /// at 10,000 hosts is some 60 MB. A later task of the host (one whose paths were not
    /// known in advance) stats for itself, as it would have anyway.
    pub(crate) fn finished(&self, node: NodeId) {
        let mut state = self.state();
        for path in state.by_node.remove(&node).unwrap_or_default() {
            if let Some(count) = state.wanted.get_mut(&path) {
                *count -= 1;
                if *count == 0 {
                    state.wanted.remove(&path);
                }
            }
        }
        if state.by_node.is_empty() && state.wanted.is_empty() {
            state.stats = HashMap::new();
            state.direct = HashSet::new();
            state.by_node = HashMap::new();
            state.wanted = HashMap::new();
        }
    }

    /// Stats, in one round trip, every path that unfinished tasks want and that has no current
    /// answer, and keeps the answers unless a change overlapped. Returns what it learned. Never
    /// fails a task: on any error the tasks simply stat for themselves.
    async fn fetch_wanted(&self) -> HashMap<String, Option<FileStat>> {
        let (generation, mut paths) = {
            let state = self.state();
            let paths: Vec<String> =
                state.wanted.keys().filter(|p| fresh(&state, p).is_none()).cloned().collect();
            (state.generation, paths)
        };
        paths.sort();
        let mut bytes = 0;
        paths.retain(|p| {
            bytes += p.len() + 3;
            bytes <= MAX_PREFETCH_BYTES
        });
        let taken = Instant::now();
        // One path costs the same either way; only several are worth a round trip up front.
        if paths.len() < 2 {
            return HashMap::new();
        }
        match remote::stat_many(self.inner.as_ref(), &paths).await {
            Ok(probes) => {
                let mut state = self.state();
                let current = state.generation == generation;
                let mut learned = HashMap::new();
                for probe in probes {
                    if !probe.direct {
                        // Reached through a symlink: never cached, so never fetched again.
                        state.wanted.remove(&probe.path);
                        continue;
                    }
                    if current {
                        state.direct.insert(probe.path.clone());
                        state.stats.insert(probe.path.clone(), (probe.stat.clone(), taken));
                    }
                    learned.insert(probe.path, probe.stat);
                }
                tracing::debug!(
                    host = self.inner.name(),
                    paths = paths.len(),
                    kept = current,
                    "stats prefetched"
                );
                learned
            }
            Err(e) => {
                tracing::debug!(host = self.inner.name(), error = %e, "prefetching stats failed");
                HashMap::new()
            }
        }
    }

    /// Drops whatever `effect` may have made stale.
    fn invalidate(&self, effect: &Effect) {
        let mut state = self.state();
        match effect {
            Effect::ReadOnly => return,
            Effect::Write(path) if state.direct.contains(path) => {
                state.stats.retain(|cached, _| !(cached == path || under(path, cached)));
            }
            Effect::Remove(path) if state.direct.contains(path) => {
                state
                    .stats
                    .retain(|cached, _| !(cached == path || under(path, cached) || under(cached, path)));
            }
            Effect::Write(_) | Effect::Remove(_) | Effect::Unknown => {
                state.stats.clear();
                state.direct.clear();
            }
        }
        state.generation += 1;
    }
}

/// The answer for `path`, if one is held and young enough.
fn fresh(state: &State, path: &str) -> Option<Option<FileStat>> {
    state.stats.get(path).filter(|(_, taken)| taken.elapsed() < MAX_AGE).map(|(stat, _)| stat.clone())
}

/// An absolute path with no empty, `.` or `..` component and no trailing slash, so that
/// lexical parent and child relations are the real ones.
fn is_plain(path: &str) -> bool {
    path.len() > 1
        && path.starts_with('/')
        && path[1..].split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Whether `path` lies beneath `dir`.
fn under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

#[async_trait]
impl Host for CachedTarget {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
        self.invalidate(&exec.effect);
        let effect = exec.effect.clone();
        let result = self.inner.exec(exec).await;
        // Whatever the command did happened while it ran: a stat cached meanwhile is suspect.
        self.invalidate(&effect);
        result
    }

    async fn cached_stat(&self, path: &str) -> Option<Option<FileStat>> {
        let wanted = {
            let state = self.state();
            if let Some(known) = fresh(&state, path) {
                return Some(known);
            }
            state.wanted.contains_key(path)
        };
        // A change dropped the answer: learn it again with every other path still to come.
        // The answer is as fresh as a stat of this path alone would be.
        if wanted { self.fetch_wanted().await.remove(path) } else { None }
    }
}

#[async_trait]
impl Target for CachedTarget {
    async fn connect(&self) -> Result<(), HostError> {
        self.inner.connect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::tests::Local;

    #[test]
    fn plain_paths_only() {
        assert!(is_plain("/tmp/w1/f0.txt"));
        for p in ["/", "tmp/x", "/tmp//x", "/tmp/./x", "/tmp/../x", "/tmp/x/", ""] {
            assert!(!is_plain(p), "{p}");
        }
    }

    /// Answers serve the tasks they were fetched for; once the last of them has ended, the host
    /// keeps none (nor the room they took), and a later stat asks the host itself.
    #[tokio::test]
    async fn a_host_done_with_its_prefetched_tasks_keeps_no_answers() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b] = ["a", "b"].map(|f| {
            let path = dir.path().join(f);
            std::fs::write(&path, f).unwrap();
            path.display().to_string()
        });
        let cached = CachedTarget::new(Arc::new(Local(contract::local::LocalHost::new("h0"))));
        cached.prefetch(HashMap::from([(NodeId(0), vec![a.clone()]), (NodeId(1), vec![b.clone()])])).await;
        assert_eq!(cached.state().stats.len(), 2, "both stated in one round trip");
        assert!(cached.cached_stat(&a).await.unwrap().is_some());
        cached.finished(NodeId(0));
        assert_eq!(cached.state().stats.len(), 2, "b's task is still to come");
        cached.finished(NodeId(1));
        {
            let state = cached.state();
            assert_eq!(state.stats.capacity() + state.direct.capacity(), 0);
            assert_eq!(state.by_node.capacity() + state.wanted.capacity(), 0);
        }
        assert_eq!(cached.cached_stat(&b).await, None, "not cached: the task stats for itself");
        assert!(remote::stat(&cached, &b).await.unwrap().is_some());
    }

    #[test]
    fn beneath() {
        assert!(under("/tmp/w1", "/tmp"));
        assert!(under("/tmp/w1/f0", "/tmp/w1"));
        assert!(!under("/tmp/w10", "/tmp/w1"));
        assert!(!under("/tmp/w1", "/tmp/w1"));
    }
}
