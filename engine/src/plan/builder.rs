//! The plan while a playbook is being evaluated: tasks and edges are only recorded.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use contract::arg::NoReferences;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::refs::{self, Ref};
use super::{Batch, Budget, Edge, Limit, Location, Plan, PlanError, PlanErrors, Serial, Task, When, Window};
use crate::ids::TaskId;
use crate::inventory::Inventory;

/// A plan under construction. Only [`PlanBuilder::seal`] turns it into a runnable [`Plan`],
/// and sealing checks everything at once.
#[derive(Debug)]
pub struct PlanBuilder {
    playbook: PathBuf,
    /// Source text per file name, for error snippets.
    sources: HashMap<Arc<str>, Arc<str>>,
    tasks: Vec<Task>,
    edges: Vec<(usize, usize, Edge)>,
    errors: Vec<PlanError>,
    /// The last task written on each host, for implicit same-host ordering.
    last_on_host: HashMap<String, usize>,
    /// Hosts whose tasks do not run in playbook order (opted in by the playbook).
    concurrent_hosts: HashSet<String>,
    /// One entry per `serial(...)` call, its batches in order. Sealing draws them as
    /// [`Edge::Serial`] edges (see [`serial_edges`]) and hands them to the plan, whose gates
    /// the walker keeps. While building, a task's id is its index in `tasks`.
    serials: Vec<Serial>,
    /// One entry per `budget(...)` call, its windows in order.
    budgets: Vec<Budget>,
    /// The section named by the last `section(...)` call: the tasks written from then on
    /// belong to it.
    section: Option<Arc<str>>,
}

impl PlanBuilder {
    pub fn new(playbook: PathBuf) -> Self {
        Self {
            playbook,
            sources: HashMap::new(),
            tasks: Vec::new(),
            edges: Vec::new(),
            errors: Vec::new(),
            last_on_host: HashMap::new(),
            concurrent_hosts: HashSet::new(),
            serials: Vec::new(),
            budgets: Vec::new(),
            section: None,
        }
    }

    /// Remembers the text of a playbook file, for snippets in error messages.
    pub fn add_source(&mut self, file: Arc<str>, text: Arc<str>) {
        self.sources.insert(file, text);
    }

    /// Records a problem; evaluation goes on so that every problem is reported at once.
    pub fn error(&mut self, message: impl Into<String>, location: Location, help: Option<String>) {
        let source = self.sources.get(&location.file).cloned();
        let mut error = PlanError::new(message, location, source);
        error.help = help;
        self.errors.push(error);
    }

    /// Records a problem with the argument at `path` of the call at `location`, pointing at
    /// that argument where the call writes it (see [`PlanError::at_argument`]).
    pub fn argument_error(
        &mut self,
        message: impl Into<String>,
        location: Location,
        help: Option<String>,
        path: &str,
    ) {
        let source = self.sources.get(&location.file).cloned();
        let mut error = PlanError::at_argument(message, location, source, path);
        error.help = help;
        self.errors.push(error);
    }

    /// Adds a task and returns its number. Unless its host runs concurrently, the task
    /// runs after the previous task written for the same host.
    pub fn add_task(&mut self, mut task: Task) -> TaskId {
        let id = self.tasks.len();
        task.id = TaskId(id);
        task.section = self.section.clone();
        // Handlers stand outside the host's order: they run after the tasks that notify them.
        if !task.handler
            && !self.concurrent_hosts.contains(&task.host)
            && let Some(previous) = self.last_on_host.insert(task.host.clone(), id)
        {
            self.edges.push((previous, id, Edge::Order));
        }
        self.tasks.push(task);
        TaskId(id)
    }

    /// Puts the tasks written from now on in the section `name` (one text shared by them all).
    pub fn set_section(&mut self, name: &str) {
        if self.section.as_deref() != Some(name) {
            self.section = Some(Arc::from(name));
        }
    }

    /// Declares that `task` runs after `dependency`.
    pub fn add_after(&mut self, dependency: TaskId, task: TaskId) {
        self.edges.push((dependency.0, task.0, Edge::After));
    }

    /// Declares that `task` notifies `handler`: the handler runs after it, and only if it (or
    /// another notifying task) changed something.
    pub fn add_notify(&mut self, task: TaskId, handler: TaskId) {
        self.edges.push((task.0, handler.0, Edge::Notify));
    }

    /// Lets the tasks of `host` written from now on run without waiting for each other.
    pub fn set_concurrent(&mut self, host: &str) {
        self.concurrent_hosts.insert(host.to_owned());
        self.last_on_host.remove(host);
    }

    /// The id the next task will get: a batch of a `serial(...)` call spans the ids from
    /// this value before its tasks were written to this value after.
    pub fn next_id(&self) -> TaskId {
        TaskId(self.tasks.len())
    }

    /// Declares the batches of one `serial(...)` call, each its hosts and the range of task
    /// ids it created: every task of a batch runs before any task of the next (empty batches
    /// are skipped), and the later batches are skipped when more than `max_fail_percentage`
    /// percent of a batch's hosts failed (when all did, without it).
    pub fn add_serial(
        &mut self,
        location: Location,
        batches: Vec<(Vec<String>, Range<TaskId>)>,
        max_fail_percentage: Option<u8>,
    ) {
        let batches = batches
            .into_iter()
            .map(|(hosts, tasks)| Batch { hosts, tasks: (tasks.start.0..tasks.end.0).map(TaskId).collect() })
            .collect();
        self.serials.push(Serial { location, batches, max_fail_percentage });
    }

    /// Declares one `budget(...)` call: at most `limit` of its windows (each a host and the
    /// range of task ids created for it) open at once. A task belongs to one window at most:
    /// budgets do not nest.
    pub fn add_budget(
        &mut self,
        location: Location,
        limit: Limit,
        hosts: Vec<String>,
        windows: Vec<(String, Range<TaskId>)>,
    ) -> Result<(), String> {
        let taken: HashSet<TaskId> =
            self.budgets.iter().flat_map(|b| &b.windows).flat_map(|w| w.tasks.iter().copied()).collect();
        let windows: Vec<Window> = windows
            .into_iter()
            .map(|(host, tasks)| Window { host, tasks: (tasks.start.0..tasks.end.0).map(TaskId).collect() })
            .collect();
        if let Some(task) = windows.iter().flat_map(|w| &w.tasks).find(|id| taken.contains(id)) {
            let label = self.task(*task).map_or_else(|| format!("task {}", task.0), Task::label);
            return Err(format!(
                "{label} is already in the window of another budget(...): budgets do not nest \
                 (give the inner hosts their own budget call instead)"
            ));
        }
        self.budgets.push(Budget { location, limit, hosts, windows });
        Ok(())
    }

    /// Makes task `id` run only if `when` holds; it waits for `when.task` as for data.
    pub fn set_when(&mut self, id: TaskId, when: When) {
        self.edges.push((when.task.0, id.0, Edge::Data));
        if let Some(task) = self.tasks.get_mut(id.0) {
            task.when = Some(when);
        }
    }

    /// Lets task `id` run once the tasks it waits for have ended, whatever their outcome.
    pub fn set_always(&mut self, id: TaskId) {
        if let Some(task) = self.tasks.get_mut(id.0) {
            task.always = true;
        }
    }

    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(id.0)
    }

    pub fn task_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        self.tasks.get_mut(id.0)
    }

    /// Checks the whole plan and seals it: unknown hosts, module arguments, duplicate
    /// names, dangling output references and cycles are all reported together.
    pub fn seal(mut self, inventory: &Inventory) -> Result<Plan, PlanErrors> {
        let mut seen_names = HashMap::new();
        let mut problems = Vec::new();
        let mut parsed = Vec::new();
        for (id, task) in self.tasks.iter().enumerate() {
            if inventory.host(&task.host).is_none() {
                // Already reported where the host was looked up; the task just rides along.
                continue;
            }
            let args = task.args.value();
            let references = refs::references(&args);
            if let Some(first) = seen_names.insert((task.host.as_str(), task.name.as_str()), id) {
                problems.push(Problem::new(
                    format!(
                        "duplicate task name {:?} on host {}: it is already used at {}",
                        task.name, task.host, self.tasks[first].location
                    ),
                    task.location.clone(),
                    Some(
                        "task names identify tasks in reports and the run journal; make them unique per host"
                            .to_owned(),
                    ),
                ));
            }
            match modules::registry::find(task.module) {
                None => problems.push(Problem::new(
                    format!("unknown module {:?}", task.module),
                    task.location.clone(),
                    None,
                )),
                // Read into the module's types once, here. Without run-time references the
                // module itself is built now too; otherwise the runner builds it from the
                // sealed arguments once the values they wait for are known.
                Some(spec) => match spec.seal(args).and_then(|sealed| {
                    let plain = references.is_empty();
                    let module = if plain { Some(sealed.build(&mut NoReferences)?) } else { None };
                    Ok((sealed, module))
                }) {
                    // One of the two is kept: a built module needs its sealed arguments no
                    // more (at 10,000 hosts they are some 100 MB of a plan), so they go now.
                    Ok((sealed, module)) => parsed.push((id, module.is_none().then_some(sealed), module)),
                    Err(e) => {
                        let mut problem = Problem::new(
                            format!(
                                "task {:?}: invalid arguments for module {}: {e}",
                                task.name, task.module
                            ),
                            task.location.clone(),
                            Some(format!("`engine modules {}` lists its arguments", task.module)),
                        );
                        problem.argument = e.written_at().map(str::to_owned);
                        problems.push(problem);
                    }
                },
            }
            for reference in references {
                match reference {
                    Ref::Output { task: producer, key } => {
                        if producer.0 >= self.tasks.len() {
                            problems.push(Problem::new(
                                format!("reference to unknown task {producer}"),
                                task.location.clone(),
                                None,
                            ));
                        } else if producer.0 == id {
                            problems.push(Problem::new(
                                format!("task {:?} reads its own output {key:?}", task.name),
                                task.location.clone(),
                                None,
                            ));
                        } else {
                            self.edges.push((producer.0, id, Edge::Data));
                        }
                    }
                    Ref::Fact { host, .. } if inventory.host(&host).is_none() => problems.push(Problem::new(
                        format!("task {:?} reads facts of unknown host {host:?}", task.name),
                        task.location.clone(),
                        None,
                    )),
                    Ref::Fact { .. } => {}
                }
            }
            if let Some(until) = task.retry.as_ref().and_then(|r| r.until.as_deref())
                && let Err(e) = super::until::compile(until)
            {
                problems.push(Problem::new(
                    format!("task {:?}: invalid `until` expression: {e}", task.name),
                    task.location.clone(),
                    None,
                ));
            }
        }
        for (id, sealed, module) in parsed {
            self.tasks[id].sealed = sealed.map(Arc::from);
            self.tasks[id].parsed = module.map(Arc::from);
        }
        for Problem { message, location, help, argument } in problems {
            match argument {
                Some(path) => self.argument_error(message, location, help, &path),
                None => self.error(message, location, help),
            }
        }
        // After the data edges (they count when finding a batch's first and last tasks) and
        // before handlers are ordered last (a handler of batch k must stay inside batch k).
        let serial = serial_edges(&self.serials, &self.edges);
        self.edges.extend(serial);

        let bad_notifies: Vec<(String, Location)> = self
            .edges
            .iter()
            .filter(|(_, to, kind)| *kind == Edge::Notify && !self.tasks[*to].handler)
            .map(|(from, to, _)| {
                let (from, to) = (&self.tasks[*from], &self.tasks[*to]);
                (
                    format!("{} notifies {}, which is not a handler", from.label(), to.label()),
                    from.location.clone(),
                )
            })
            .collect();
        for (message, location) in bad_notifies {
            let help = "create it with host.handler(\"module\", \"name\", #{...})".to_owned();
            self.error(message, location, Some(help));
        }

        let mut graph: DiGraph<Task, Edge> = DiGraph::with_capacity(self.tasks.len(), self.edges.len());
        // Moved, not cloned: a plan of 210,000 tasks held twice at its peak otherwise.
        for task in std::mem::take(&mut self.tasks) {
            graph.add_node(task);
        }
        let mut unique = BTreeSet::new();
        for (from, to, kind) in &self.edges {
            // Keep one edge per pair; the strongest reason wins (Notify, Data, Serial, After, Order).
            if unique.insert((*from, *to)) {
                graph.add_edge(NodeIndex::new(*from), NodeIndex::new(*to), *kind);
            } else if let Some(e) = graph.find_edge(NodeIndex::new(*from), NodeIndex::new(*to))
                && *kind > graph[e]
            {
                graph[e] = *kind;
            }
        }
        order_handlers_last(&mut graph);
        for cycle in find_cycles(&graph) {
            let path: Vec<String> = cycle
                .iter()
                .chain(cycle.first())
                .map(|n| format!("{} ({})", graph[*n].label(), graph[*n].location))
                .collect();
            let first = &graph[cycle[0]];
            self.error(
                format!("dependency cycle: {}", path.join(" → ")),
                first.location.clone(),
                Some(
                    "remove one of the .after(...) dependencies or output references on this path".to_owned(),
                ),
            );
        }

        if !self.errors.is_empty() {
            self.errors.sort_by(|a, b| a.location.cmp(&b.location));
            super::error::dedup(&mut self.errors);
            return Err(PlanErrors { playbook: self.playbook, errors: self.errors });
        }
        Ok(Plan::new(
            self.playbook,
            graph,
            Arc::new(inventory.clone()),
            self.serials.into(),
            self.budgets.into(),
        ))
    }
}

/// A problem found while sealing, before it becomes a [`PlanError`].
struct Problem {
    message: String,
    location: Location,
    help: Option<String>,
    /// The argument of the task's call it is about, when that one is to be pointed at.
    argument: Option<String>,
}

impl Problem {
    fn new(message: String, location: Location, help: Option<String>) -> Self {
        Self { message, location, help, argument: None }
    }
}

/// The edges that make each batch of a `serial(...)` call wait for the batch before it.
///
/// "Every task of batch k before every task of batch k+1" needs only the edges from the last
/// tasks of batch k (those with no successor inside it) to the first tasks of batch k+1 (no
/// predecessor inside it): every task of a batch reaches one of its last tasks and is reached
/// from one of its first, so the rest follows. The graph stays readable.
///
/// ```text
///   serial([w0, w1, w2], 1, |h| { drain; config ──notify──▶ restart; check })
///
///   w0: drain ─▶ config ─▶ check          w1: drain ─▶ ...        w2: drain ─▶ ...
///                  └─notify─▶ restart
///   serial: w0 check ─▶ w1 drain, w0 restart ─▶ w1 drain, w1 check ─▶ w2 drain, ...
/// ```
fn serial_edges(serials: &[Serial], edges: &[(usize, usize, Edge)]) -> Vec<(usize, usize, Edge)> {
    let mut added = Vec::new();
    for serial in serials {
        // A batch's tasks are the ids its closure created, one after the other.
        let batches: Vec<Range<usize>> =
            serial.batches.iter().filter_map(|b| Some(b.tasks.first()?.0..b.tasks.last()?.0 + 1)).collect();
        let batches: Vec<&Range<usize>> = batches.iter().collect();
        for pair in batches.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            let inside =
                |range: &Range<usize>, from: usize, to: usize| range.contains(&from) && range.contains(&to);
            let last: Vec<usize> = before
                .clone()
                .filter(|t| !edges.iter().any(|(from, to, _)| from == t && inside(before, *from, *to)))
                .collect();
            let first: Vec<usize> = after
                .clone()
                .filter(|t| !edges.iter().any(|(from, to, _)| to == t && inside(after, *from, *to)))
                .collect();
            for from in &last {
                for to in &first {
                    added.push((*from, *to, Edge::Serial));
                }
            }
        }
    }
    added
}

/// Handlers run at the end of their host's work, as in Ansible: each handler waits for every
/// other non-handler task of its host, except the tasks that themselves wait for the handler
/// (`t.after(handler)` is how a playbook says "restart now, before going on").
///
/// ```text
///   host0:  config ──notify──▶ restart ◀── service      (restart also waits for service)
///                                 │
///                                 └──▶ health check      (declared .after(restart): untouched)
/// ```
fn order_handlers_last(graph: &mut DiGraph<Task, Edge>) {
    // Each host's other tasks, once: a handler looks only at its own host's tasks (one pass
    // over the graph, not one per handler: a handler per host at 10,000 hosts).
    let mut handlers = Vec::new();
    let mut tasks: HashMap<String, Vec<NodeIndex>> = HashMap::new();
    for n in graph.node_indices() {
        let task = &graph[n];
        if task.handler {
            handlers.push(n);
        } else {
            tasks.entry(task.host.clone()).or_default().push(n);
        }
    }
    for handler in handlers {
        let Some(same_host) = tasks.get(&graph[handler].host) else {
            continue;
        };
        let mut after_handler = HashSet::new();
        let mut dfs = petgraph::visit::Dfs::new(&*graph, handler);
        while let Some(n) = dfs.next(&*graph) {
            after_handler.insert(n);
        }
        for &task in same_host.iter().filter(|t| !after_handler.contains(*t)) {
            graph.update_edge(
                task,
                handler,
                graph.find_edge(task, handler).map_or(Edge::Order, |e| graph[e]),
            );
        }
    }
}

/// One cycle path per strongly connected component that has one.
fn find_cycles(graph: &DiGraph<Task, Edge>) -> Vec<Vec<NodeIndex>> {
    let mut cycles = Vec::new();
    for scc in tarjan_scc(graph) {
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let start = *scc.iter().min().unwrap_or(&scc[0]);
        if scc.len() == 1 && graph.find_edge(start, start).is_none() {
            continue;
        }
        // Walk inside the component from `start` until we return to it (BFS for the shortest loop).
        let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        while let Some(node) = queue.pop_front() {
            for next in graph.neighbors(node) {
                if next == start {
                    closing = Some(node);
                    break;
                }
                if members.contains(&next) && !previous.contains_key(&next) {
                    previous.insert(next, node);
                    queue.push_back(next);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let mut path = Vec::new();
        let mut node = closing.unwrap_or(start);
        while node != start {
            path.push(node);
            node = previous[&node];
        }
        path.push(start);
        path.reverse();
        cycles.push(path);
    }
    cycles
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use petgraph::algo::has_path_connecting;

    use super::*;
    use crate::error::Error;
    use crate::plan::{DotEdges, Selection};
    use crate::playbook::{LoadOptions, load_source};

    const INVENTORY: &str = "all:\n  children:\n    workers:\n      hosts:\n        w0: {}\n        w1: {}\n        w2: {}\n    lb:\n      hosts:\n        lb0: {}\n";

    fn load(playbook: &str) -> Result<Plan, Error> {
        let inventory = Inventory::parse(INVENTORY, Path::new("inventory.yml")).unwrap();
        load_source(Path::new("rolling.rhai"), playbook, &inventory, &LoadOptions::default())
    }

    /// Every error of a refused playbook, one `file:line:col: message` per line.
    fn errors(playbook: &str) -> String {
        match load(playbook) {
            Err(Error::Plan(PlanErrors { errors, .. })) => errors.iter().map(|e| format!("{e}\n")).collect(),
            other => panic!("expected plan errors, got {other:?}"),
        }
    }

    fn node(plan: &Plan, host: &str, name: &str) -> NodeIndex {
        plan.graph
            .node_indices()
            .find(|n| plan.graph[*n].host == host && plan.graph[*n].name == name)
            .unwrap_or_else(|| panic!("no task {host}: {name}"))
    }

    fn before(plan: &Plan, a: NodeIndex, b: NodeIndex) -> bool {
        has_path_connecting(&*plan.graph, a, b, None)
    }

    fn serial_edges_of(plan: &Plan) -> Vec<(String, String)> {
        plan.edges()
            .into_iter()
            .filter(|(_, _, kind)| *kind == Edge::Serial)
            .map(|(from, to, _)| (plan.task(from).label(), plan.task(to).label()))
            .collect()
    }

    /// One host at a time, each with a handler:
    ///
    /// ```text
    ///   w0: out ─▶ config ─▶ in        w1: out ─▶ ...      w2: out ─▶ ...
    ///              └notify▶ restart
    ///   serial: w0 in ─▶ w1 out, w0 restart ─▶ w1 out, w1 in ─▶ w2 out, w1 restart ─▶ w2 out
    /// ```
    const ROLLING: &str = r#"
let rolled = serial(group("workers"), 1, |h| {
    h.command("out", #{ cmd: "true" });
    let restart = h.handler("command", "restart", #{ cmd: "true" });
    h.file("config", #{ path: "/tmp/c", content: "x" }).notify(restart);
    h.command("in", #{ cmd: "true" });
});
host("lb0").command("report", #{ cmd: "true" }).after(rolled);
"#;

    #[test]
    fn every_task_of_a_batch_waits_for_every_task_of_the_batch_before() {
        let plan = load(ROLLING).unwrap();
        let tasks = ["out", "config", "in", "restart"];
        let hosts = ["w0", "w1", "w2"];
        for (k, earlier) in hosts.iter().enumerate() {
            for later in &hosts[k + 1..] {
                for a in tasks {
                    for b in tasks {
                        let (a, b) = (node(&plan, earlier, a), node(&plan, later, b));
                        assert!(
                            before(&plan, a, b),
                            "{} must come before {}",
                            plan.graph[a].label(),
                            plan.graph[b].label()
                        );
                        assert!(!before(&plan, b, a));
                    }
                }
            }
        }
        // Only the last tasks of a batch lead to the first of the next: the graph stays small.
        assert_eq!(
            serial_edges_of(&plan),
            [
                ("w0: restart", "w1: out"),
                ("w0: in", "w1: out"),
                ("w1: restart", "w2: out"),
                ("w1: in", "w2: out"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        // serial(...) returns what it created: `report` waits for all of it.
        let report = node(&plan, "lb0", "report");
        for h in hosts {
            assert!(before(&plan, node(&plan, h, "restart"), report));
        }
    }

    #[test]
    fn batches_of_two_run_together_and_the_next_waits_for_both() {
        let plan =
            load(r#"serial(group("workers"), 2, |h| { h.command("step", #{ cmd: "true" }); });"#).unwrap();
        let [w0, w1, w2] = ["w0", "w1", "w2"].map(|h| node(&plan, h, "step"));
        assert!(!before(&plan, w0, w1) && !before(&plan, w1, w0), "one batch: w0 and w1 together");
        assert!(before(&plan, w0, w2) && before(&plan, w1, w2));
        assert_eq!(serial_edges_of(&plan).len(), 2);
    }

    #[test]
    fn a_batch_may_add_tasks_on_other_hosts() {
        // The load balancer's "drain" for each worker belongs to that worker's batch.
        let plan = load(
            r#"let lb = host("lb0");
serial(group("workers"), 1, |h| {
    lb.command(`drain ${h.name}`, #{ cmd: "true" });
    h.command("upgrade", #{ cmd: "true" });
});"#,
        )
        .unwrap();
        assert!(before(&plan, node(&plan, "w0", "upgrade"), node(&plan, "lb0", "drain w1")));
        assert!(before(&plan, node(&plan, "w1", "upgrade"), node(&plan, "lb0", "drain w2")));
        assert!(!before(&plan, node(&plan, "lb0", "drain w1"), node(&plan, "w0", "upgrade")));
    }

    #[test]
    fn serial_edges_are_drawn_apart_in_dot() {
        let plan =
            load(r#"serial(group("workers"), 1, |h| { h.command("step", #{ cmd: "true" }); });"#).unwrap();
        let dot = plan.to_dot(None, &crate::redact::Redactor::default(), DotEdges::Readable);
        let serial: Vec<&str> = dot.lines().filter(|l| l.contains("label=\"serial\"")).collect();
        assert_eq!(serial.len(), 2, "{dot}");
        assert!(serial.iter().all(|l| l.contains("#e6550d")), "{dot}");
    }

    #[test]
    fn serial_refuses_a_batch_size_below_one_and_non_hosts_with_the_line() {
        let zero = errors(
            "let x = 1;\nserial(group(\"workers\"), 0, |h| { h.command(\"s\", #{ cmd: \"true\" }); });",
        );
        assert!(zero.contains("rolling.rhai:2:"), "{zero}");
        assert!(zero.contains("at least 1, not 0"), "{zero}");
        let names = errors("\n\nserial([\"w0\", \"w1\"], 1, |h| {});");
        assert!(names.contains("rolling.rhai:3:"), "{names}");
        assert!(names.contains("takes hosts") && names.contains("item 0 is string"), "{names}");
    }

    /// `max_fail_percentage` is data of the sealed plan: each gate knows its batch, the batch's
    /// host count and how many may fail; DOT shows it in a note.
    ///
    /// ```text
    ///   serial([w0, w1, w2, lb0], #{ size: [1, 2], max_fail_percentage: 50 })
    ///   batch 1: w0 ──gate (0 of 1 may fail)──▶ batch 2: w1 w2 ──gate (1 of 2)──▶ batch 3: lb0
    /// ```
    #[test]
    fn max_fail_percentage_is_plan_data_and_drawn() {
        let plan = load(
            r#"let hosts = group("workers") + [host("lb0")];
serial(hosts, #{ size: [1, 2], max_fail_percentage: 50 }, |h| { h.command("step", #{ cmd: "true" }); });"#,
        )
        .unwrap();
        let [serial] = plan.serials() else { panic!("{:?}", plan.serials()) };
        assert_eq!(serial.max_fail_percentage, Some(50));
        let hosts: Vec<Vec<String>> = serial.batches.iter().map(|b| b.hosts.clone()).collect();
        assert_eq!(hosts, [vec!["w0"], vec!["w1", "w2"], vec!["lb0"]]);
        let gates: Vec<(usize, usize, usize, usize)> =
            plan.gates().iter().map(|g| (g.batch, g.members.len(), g.hosts, g.max_failed)).collect();
        assert_eq!(gates, [(0, 1, 1, 0), (1, 2, 2, 1)]);
        insta::assert_snapshot!(plan.to_dot(None, &crate::redact::Redactor::default(), DotEdges::Readable));
    }

    #[test]
    fn serial_options_are_checked_with_the_line() {
        let bad = |options: &str| {
            errors(&format!(
                "\nserial(group(\"workers\"), {options}, |h| {{ h.command(\"s\", #{{ cmd: \"true\" }}); }});"
            ))
        };
        let over = bad("#{ size: 1, max_fail_percentage: 101 }");
        assert!(over.contains("rolling.rhai:2:") && over.contains("0 to 100, not 101"), "{over}");
        let typo = bad("#{ size: 1, max_fail_percent: 10 }");
        assert!(typo.contains("rolling.rhai:2:") && typo.contains("max_fail_percent"), "{typo}");
        let empty = bad("#{ size: [] }");
        assert!(empty.contains("empty"), "{empty}");
        let zero = bad("#{ size: [1, 0] }");
        assert!(zero.contains("at least 1, not 0"), "{zero}");
        // Without max_fail_percentage: Ansible's default, only a batch whose hosts all failed stops.
        let plan =
            load(r#"serial(group("workers"), #{ size: 2 }, |h| { h.command("s", #{ cmd: "true" }); });"#)
                .unwrap();
        assert_eq!(plan.serials()[0].max_fail_percentage, None);
        assert_eq!(plan.gates()[0].max_failed, 1, "1 of 2 may fail");
    }

    /// A budget's windows are the tasks its closure created for each host, wherever they run;
    /// `--limit` keeps the windows' tasks it selects and the budget still counts all its hosts;
    /// DOT shows whose window a task is in, the always task, and the budget's note.
    #[test]
    fn a_budget_is_plan_data_and_drawn() {
        let plan = load(
            r#"let lb = host("lb0");
budget(group("workers"), #{ max_down: "34%" }, |h| {
    let d = lb.command(`drain ${h.name}`, #{ cmd: "true" });
    h.command("upgrade", #{ cmd: "true" }).after(d);
    lb.command(`uncordon ${h.name}`, #{ cmd: "true" }).always();
});"#,
        )
        .unwrap();
        let [budget] = plan.budgets() else { panic!("{:?}", plan.budgets()) };
        assert_eq!(budget.limit, Limit::Percent(34));
        assert_eq!(budget.max_down(), 1, "34% of 3 hosts, rounded down");
        let windows: Vec<(String, usize)> =
            budget.windows.iter().map(|w| (w.host.clone(), w.tasks.len())).collect();
        assert_eq!(windows, [("w0".into(), 3), ("w1".into(), 3), ("w2".into(), 3)]);
        assert!(plan.graph[node(&plan, "lb0", "uncordon w1")].always);
        let dot = plan.to_dot(None, &crate::redact::Redactor::default(), DotEdges::Readable);
        assert!(dot.contains("budget_1 [shape=note"), "{dot}");
        assert!(dot.contains("label=\"drain w1\\n[command]\\nbudget 1: w1\", color=\"#756bb1\""), "{dot}");
        assert!(
            dot.contains("budget 1: w2\\n(always)\", color=\"#756bb1\", penwidth=2, peripheries=2"),
            "{dot}"
        );
        let limited =
            plan.select(&Selection { hosts: Some(vec!["w1".into(), "lb0".into()]), ..Selection::default() });
        assert_eq!(limited.budgets()[0].hosts, ["w0", "w1", "w2"]);
        let kept: Vec<usize> = limited.budget_windows()[0].1.iter().map(Vec::len).collect();
        assert_eq!(kept, [2, 3, 2], "lb0's drains and uncordons stay in their windows");
    }

    /// `--limit w1` keeps w1's drain on lb0 (w1's upgrade waits for it) and so the drain's
    /// cleanup: a limited run never leaves a node cordoned.
    #[test]
    fn a_limit_keeps_the_cleanup_of_what_it_keeps() {
        let plan = load(
            r#"let lb = host("lb0");
lb.concurrent();
for h in group("workers") {
    let d = lb.command(`drain ${h.name}`, #{ cmd: "true" });
    let u = h.command("upgrade", #{ cmd: "true" }).after(d);
    lb.command(`uncordon ${h.name}`, #{ cmd: "true" }).after(d).after(u).always();
}"#,
        )
        .unwrap();
        let limited = plan.select(&Selection { hosts: Some(vec!["w1".into()]), ..Selection::default() });
        let mut kept: Vec<String> = limited.tasks().map(|(_, t)| format!("{}: {}", t.host, t.name)).collect();
        kept.sort();
        assert_eq!(kept, ["lb0: drain w1", "lb0: uncordon w1", "w1: upgrade"]);
    }

    #[test]
    fn budget_options_are_checked_with_the_line_and_budgets_do_not_nest() {
        let bad = |options: &str| {
            errors(&format!(
                "\nbudget(group(\"workers\"), {options}, |h| {{ h.command(\"s\", #{{ cmd: \"true\" }}); }});"
            ))
        };
        let zero = bad("#{ max_down: 0 }");
        assert!(zero.contains("rolling.rhai:2:") && zero.contains("at least 1, not 0"), "{zero}");
        let over = bad("#{ max_down: \"150%\" }");
        assert!(over.contains("\"150%\" is not a percentage"), "{over}");
        let words = bad("#{ max_down: \"one\" }");
        assert!(words.contains("\"one\" is not a percentage"), "{words}");
        let typo = bad("#{ max_dwon: 1 }");
        assert!(typo.contains("max_dwon"), "{typo}");
        let nested = errors(
            "budget(group(\"workers\"), #{ max_down: 1 }, |h| {\n  budget([h], #{ max_down: 1 }, |i| { i.command(\"s\", #{ cmd: \"true\" }); });\n});",
        );
        assert!(nested.contains("budgets do not nest"), "{nested}");
    }

    #[test]
    fn limit_counts_the_kept_hosts_of_a_batch_and_resume_all_of_them() {
        let plan =
            load(r#"serial(group("workers"), #{ size: 3, max_fail_percentage: 40 }, |h| { h.command("s", #{ cmd: "true" }); h.command("t", #{ cmd: "true" }); });"#)
                .unwrap();
        assert_eq!(plan.serials()[0].batches[0].hosts, ["w0", "w1", "w2"]);
        let limited =
            plan.select(&Selection { hosts: Some(vec!["w0".into(), "w1".into()]), ..Selection::default() });
        assert_eq!(limited.serials()[0].batches[0].hosts, ["w0", "w1"]);
        assert_eq!(limited.serials()[0].batches[0].tasks.len(), 4);
        // A resume of w1's `t`: the batch still counts its three hosts.
        let resumed = plan.select_resume(&|t: &Task| t.host == "w1" && t.name == "t", &|_| false).plan;
        assert_eq!(resumed.serials()[0].batches[0].hosts, ["w0", "w1", "w2"]);
        assert_eq!(resumed.serials()[0].batches[0].tasks.len(), 1);
    }

    #[test]
    fn limit_keeps_only_the_selected_hosts_of_a_rolling_change() {
        // Serial edges order batches; they are not needs: `--limit w1` does not pull in w0.
        let plan = load(ROLLING).unwrap();
        let one = plan.select(&Selection { hosts: Some(vec!["w1".to_owned()]), ..Selection::default() });
        let hosts: HashSet<&str> = one.graph.node_weights().map(|t| t.host.as_str()).collect();
        assert_eq!(hosts, HashSet::from(["w1"]));
        // `--limit w0,w2` keeps w0's batch before w2's, through the dropped w1.
        let two =
            plan.select(&Selection { hosts: Some(vec!["w0".into(), "w2".into()]), ..Selection::default() });
        assert!(before(&two, node(&two, "w0", "restart"), node(&two, "w2", "out")));
        assert!(!before(&two, node(&two, "w2", "out"), node(&two, "w0", "in")));
    }

    #[test]
    fn modules_are_built_once_when_sealing_unless_they_wait_for_run_time_values() {
        let plan = load(
            r#"let a = host("w0").command("a", #{ cmd: "true" });
host("w1").file("b", #{ path: "/tmp/b", content: a.stdout });
host("w2").file("c", #{ path: "/tmp/c", content: `ip ${host("w2").fact("default_ipv4.address")}` });"#,
        )
        .unwrap();
        assert!(plan.graph[node(&plan, "w0", "a")].parsed.is_some(), "plain arguments: built once");
        assert!(plan.graph[node(&plan, "w1", "b")].parsed.is_none(), "reads an output: built when it runs");
        assert!(plan.graph[node(&plan, "w2", "c")].parsed.is_none(), "reads a fact: built when it runs");
        for task in plan.graph.node_weights() {
            // Every task's arguments are read when sealing; a built module keeps no sealed copy.
            assert!(task.sealed.is_some() != task.parsed.is_some(), "{}: sealed or built, once", task.name);
        }
    }

    #[test]
    fn a_known_value_is_checked_by_its_type_when_sealing_and_a_reference_waits() {
        let err = errors(
            r#"let a = host("w0").command("a", #{ cmd: "true" });
host("w1").file("b", #{ path: a.stdout, content: "" });
host("w1").file("c", #{ path: "tmp/c", content: "" });"#,
        );
        assert!(err.contains("argument `path` must be an absolute path, got the string \"tmp/c\""), "{err}");
        assert_eq!(err.matches("invalid arguments").count(), 1, "only the written value is refused: {err}");
    }

    #[test]
    fn a_cycle_through_serial_edges_is_reported() {
        // The first batch waiting for the second contradicts the rolling order.
        let err = errors(
            r#"let tasks = serial(group("workers"), 1, |h| { h.command("step", #{ cmd: "true" }); });
tasks[0].after(tasks[2]);"#,
        );
        assert!(err.contains("dependency cycle"), "{err}");
    }
}
