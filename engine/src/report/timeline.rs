//! The run report (`engine report`, `engine run --report`): a run's journal drawn as a
//! timeline, one lane per host and a bar per task, coloured by outcome; the critical path
//! highlighted and listed; waits on other hosts drawn as links; the slowest tasks (as Ansible's
//! `profile_tasks` lists them); failures with their message.
//!
//! It reads the journal (data), never the live run: [`Timeline::from_journal`] builds the
//! model, [`Timeline::html`] and [`Timeline::svg`] draw it. The HTML is one self-contained
//! file: inline CSS, inline SVG and a small inline script, no URL of any kind, so it opens
//! anywhere without a network. Every text in it (hosts, task names, messages: hostile input, a
//! host can print `<script>`) is redacted again with the caller's [`Redactor`] (the journal
//! already was, by the event bus) and escaped.
//!
//! The script sets `data-rendered="ok"` on `<html>` when it is done, and records any script
//! error in `data-script-errors`, so a headless browser's `--dump-dom` shows both (`cargo
//! xtask report-check`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use crate::events::{Counts, Status};
use crate::ids::TaskId;
use crate::journal::Journal;
use crate::redact::Redactor;

/// How many tasks the slowest-tasks table lists.
pub const SLOWEST: usize = 20;

/// One task of the run, as the journal recorded it (texts redacted).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub id: TaskId,
    pub host: String,
    pub task: String,
    pub status: Status,
    /// Milliseconds after the run started; `None` when it never started here.
    pub start_ms: Option<u64>,
    pub elapsed_ms: u64,
    pub message: Option<String>,
    /// The earlier run it was done in (a resumed run does not rerun it).
    pub done_in: Option<String>,
    /// Its row within its host's lane (tasks of one host overlap when `--per-host` > 1).
    row: usize,
}

impl Bar {
    /// When it ended, in milliseconds after the run started, if it ran.
    pub fn end_ms(&self) -> Option<u64> {
        self.start_ms.map(|s| s + self.elapsed_ms)
    }
}

/// A wait on another host: `task` started after `on`, on another host, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub on: TaskId,
    pub task: TaskId,
}

/// A run's journal, ready to draw.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub run_id: String,
    pub playbook: String,
    pub engine: String,
    pub started_at_ms: u64,
    /// The run's wall time (the journal's `finished` line), or, for a run that was killed, the
    /// end of its last task.
    pub elapsed_ms: u64,
    /// How the run ended: `finished`, `interrupted`, `aborted`, or `killed` (no `finished` line).
    pub ending: &'static str,
    /// One lane per host, in name order.
    pub hosts: Vec<String>,
    /// Every task of the journal once, by id.
    pub bars: Vec<Bar>,
    pub critical_path_ms: u64,
    /// The critical path's tasks, first first: the journal's, or for a killed run's journal
    /// (no `finished` line) computed from its dependencies and durations.
    pub critical_path: Vec<TaskId>,
    /// For each task that ran, the task on another host it waited for last, if any.
    pub waits: Vec<Wait>,
    pub counts: Counts,
}

impl Timeline {
    /// The model of `journal`, every text redacted with `redactor`.
    pub fn from_journal(journal: &Journal, redactor: &Redactor) -> Timeline {
        let text = |s: &str| redactor.redact(s).into_owned();
        let mut bars: Vec<Bar> = journal
            .tasks
            .values()
            .map(|t| Bar {
                id: t.id,
                host: text(&t.host),
                task: text(&t.task),
                status: t.status,
                start_ms: t.start_ms.filter(|_| t.done_in.is_none()),
                elapsed_ms: if t.done_in.is_none() { t.elapsed_ms } else { 0 },
                message: t.message.as_deref().map(text),
                done_in: t.done_in.clone(),
                row: 0,
            })
            .collect();
        bars.sort_by_key(|b| b.id);
        let mut hosts: Vec<String> = bars.iter().map(|b| b.host.clone()).collect();
        hosts.sort_by_cached_key(|h| (natural(h), h.clone()));
        hosts.dedup();
        pack_rows(&mut bars);
        let mut counts = Counts::default();
        bars.iter().filter(|b| b.done_in.is_none()).for_each(|b| counts.add(b.status));
        let last_end = bars.iter().filter_map(Bar::end_ms).max().unwrap_or(0);
        let deps = &journal.header.deps;
        let (elapsed_ms, ending, critical_path_ms, critical_path) = match &journal.finished {
            Some(f) => {
                let ending = match (f.aborted, f.interrupted) {
                    (true, _) => "aborted",
                    (false, true) => "interrupted",
                    _ => "finished",
                };
                let path = if f.critical_path.is_empty() && !bars.is_empty() {
                    critical_chain(&bars, deps).1
                } else {
                    f.critical_path.clone()
                };
                (f.elapsed_ms.max(last_end), ending, f.critical_path_ms, path)
            }
            None => {
                let (length, path) = critical_chain(&bars, deps);
                (last_end, "killed", length, path)
            }
        };
        let waits = waits(&bars, deps);
        Timeline {
            run_id: journal.header.id.clone(),
            playbook: text(&journal.header.inputs.playbook.display().to_string()),
            engine: journal.header.engine.clone(),
            started_at_ms: journal.header.started_at_ms,
            elapsed_ms,
            ending,
            hosts,
            bars,
            critical_path_ms,
            critical_path,
            waits,
            counts,
        }
    }

    fn bar(&self, id: TaskId) -> Option<&Bar> {
        self.bars.binary_search_by_key(&id, |b| b.id).ok().map(|i| &self.bars[i])
    }

    /// The tasks that ran in this run, longest first (ties: plan order), at most `n`.
    pub fn slowest(&self, n: usize) -> Vec<&Bar> {
        let mut ran: Vec<&Bar> = self.bars.iter().filter(|b| b.start_ms.is_some()).collect();
        ran.sort_by_key(|b| (std::cmp::Reverse(b.elapsed_ms), b.id));
        ran.truncate(n);
        ran
    }

    /// The whole report: one self-contained HTML page.
    pub fn html(&self) -> String {
        let mut o = String::with_capacity(64 * 1024 + self.bars.len() * 600);
        let title = format!("engine run {}", self.run_id);
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\" data-run=\"{id}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{title}</title>\n<style>{STYLE}{SVG_STYLE}</style>\n\
             <script>{ON_ERROR}</script>\n</head>\n<body>\n",
            id = esc(&self.run_id),
            title = esc(&title),
        );
        self.html_summary(&mut o);
        o.push_str("<h2>Timeline</h2>\n<div class=\"scroll\">\n");
        self.svg_into(&mut o, false);
        o.push_str("</div>\n");
        o.push_str(&legend());
        self.html_critical(&mut o);
        self.html_slowest(&mut o);
        self.html_failures(&mut o);
        self.html_tasks(&mut o);
        let _ = write!(o, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
        o
    }

    /// The timeline alone, as a standalone SVG document.
    pub fn svg(&self) -> String {
        let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.svg_into(&mut o, true);
        o
    }

    fn html_summary(&self, o: &mut String) {
        let c = &self.counts;
        let _ = write!(
            o,
            "<h1>Run {id}</h1>\n<section id=\"summary\">\n<table class=\"kv\">\n\
             <tr><th>playbook</th><td>{playbook}</td></tr>\n\
             <tr><th>run</th><td>{id}</td></tr>\n\
             <tr><th>started</th><td>{started}</td></tr>\n\
             <tr><th>elapsed</th><td data-ms=\"{elapsed}\">{elapsed_s}</td></tr>\n\
             <tr><th>ended</th><td id=\"ending\">{ending}</td></tr>\n\
             <tr><th>critical path</th><td data-ms=\"{cp}\">{cp_s}{ratio}</td></tr>\n\
             <tr><th>engine</th><td>{engine}</td></tr>\n</table>\n\
             <p id=\"counts\" data-ok=\"{ok}\" data-changed=\"{changed}\" data-failed=\"{failed}\" \
             data-unreachable=\"{unreachable}\" data-skipped=\"{skipped}\" data-unknown=\"{unknown}\">\
             {total} tasks on {hosts} hosts: <b class=\"t-ok\">{ok} ok</b>, \
             <b class=\"t-changed\">{changed} changed</b>, <b class=\"t-failed\">{failed} failed</b>, \
             <b class=\"t-unreachable\">{unreachable} unreachable</b>, \
             <b class=\"t-skipped\">{skipped} skipped</b>{unknown_text}{done}</p>\n</section>\n",
            id = esc(&self.run_id),
            playbook = esc(&self.playbook),
            started = esc(&utc(self.started_at_ms)),
            elapsed = self.elapsed_ms,
            elapsed_s = secs(self.elapsed_ms),
            ending = self.ending,
            cp = self.critical_path_ms,
            cp_s = secs(self.critical_path_ms),
            ratio = if self.critical_path_ms > 0 {
                format!(
                    " (wall / critical path = {:.2})",
                    self.elapsed_ms as f64 / self.critical_path_ms as f64
                )
            } else {
                String::new()
            },
            engine = esc(&self.engine),
            total = c.total(),
            hosts = self.hosts.len(),
            ok = c.ok,
            changed = c.changed,
            failed = c.failed,
            unreachable = c.unreachable,
            skipped = c.skipped,
            unknown = c.unknown,
            unknown_text = if c.unknown > 0 { format!(", {} unknown", c.unknown) } else { String::new() },
            done = match self.bars.iter().filter(|b| b.done_in.is_some()).count() {
                0 => String::new(),
                n => format!("; {n} more done in an earlier run (not rerun)"),
            },
        );
    }

    fn html_critical(&self, o: &mut String) {
        let _ = write!(
            o,
            "<h2>Critical path</h2>\n<p>The longest chain of task durations through the graph: \
             no scheduler finishes the run faster. {} tasks, {}.</p>\n\
             <table id=\"critical-path\">\n<tr><th>#</th><th>host</th><th>task</th><th>status</th>\
             <th>start</th><th>duration</th></tr>\n",
            self.critical_path.len(),
            secs(self.critical_path_ms)
        );
        for (n, id) in self.critical_path.iter().enumerate() {
            let Some(b) = self.bar(*id) else { continue };
            let _ = writeln!(
                o,
                "<tr data-id=\"{id}\"><td>{n}</td><td>{host}</td><td>{task}</td>\
                 <td class=\"t-{status}\">{status}</td><td>{start}</td><td>{dur}</td></tr>",
                id = b.id.0,
                n = n + 1,
                host = esc(&b.host),
                task = esc(&b.task),
                status = b.status.as_str(),
                start = b.start_ms.map_or_else(|| "-".to_owned(), secs),
                dur = secs(b.elapsed_ms),
            );
        }
        o.push_str("</table>\n");
    }

    fn html_slowest(&self, o: &mut String) {
        let _ = write!(
            o,
            "<h2>Slowest tasks</h2>\n<table id=\"slowest\">\n<tr><th>#</th><th>host</th><th>task</th>\
             <th>status</th><th>duration</th></tr>\n"
        );
        for (n, b) in self.slowest(SLOWEST).into_iter().enumerate() {
            let _ = writeln!(
                o,
                "<tr data-id=\"{id}\"><td>{n}</td><td>{host}</td><td>{task}</td>\
                 <td class=\"t-{status}\">{status}</td><td>{dur}</td></tr>",
                id = b.id.0,
                n = n + 1,
                host = esc(&b.host),
                task = esc(&b.task),
                status = b.status.as_str(),
                dur = secs(b.elapsed_ms),
            );
        }
        o.push_str("</table>\n");
    }

    fn html_failures(&self, o: &mut String) {
        let failed: Vec<&Bar> =
            self.bars.iter().filter(|b| matches!(b.status, Status::Failed | Status::Unreachable)).collect();
        let _ = writeln!(o, "<h2>Failures ({})</h2>\n<section id=\"failures\">", failed.len());
        if failed.is_empty() {
            o.push_str("<p>None.</p>\n");
        }
        for b in failed {
            let _ = writeln!(
                o,
                "<div class=\"failure\" data-id=\"{id}\"><h3><span class=\"t-{status}\">{status}</span> \
                 {host}: {task}</h3><pre>{message}</pre></div>",
                id = b.id.0,
                status = b.status.as_str(),
                host = esc(&b.host),
                task = esc(&b.task),
                message = esc(b.message.as_deref().unwrap_or("(no message)")),
            );
        }
        o.push_str("</section>\n");
    }

    fn html_tasks(&self, o: &mut String) {
        o.push_str(
            "<h2>Every task</h2>\n<table id=\"tasks\">\n<tr><th>id</th><th>host</th><th>task</th>\
             <th>status</th><th>start</th><th>duration</th><th>note</th></tr>\n",
        );
        for b in &self.bars {
            let note = match (&b.done_in, &b.message) {
                (Some(run), _) => format!("done in run {}", esc(run)),
                (None, Some(m)) if b.status == Status::Skipped => esc(m),
                (None, Some(_)) => "see Failures".to_owned(),
                (None, None) => String::new(),
            };
            let _ = writeln!(
                o,
                "<tr id=\"task-{id}\" data-id=\"{id}\" data-host=\"{host}\" data-status=\"{status}\" \
                 data-start-ms=\"{start_ms}\" data-elapsed-ms=\"{elapsed}\"{crit}><td>{id}</td>\
                 <td>{host}</td><td>{task}</td><td class=\"t-{status}\">{status}</td><td>{start}</td>\
                 <td>{dur}</td><td>{note}</td></tr>",
                id = b.id.0,
                host = esc(&b.host),
                task = esc(&b.task),
                status = b.status.as_str(),
                start_ms = b.start_ms.map_or_else(String::new, |s| s.to_string()),
                elapsed = b.elapsed_ms,
                crit = if self.critical_path.contains(&b.id) { " class=\"crit\"" } else { "" },
                start = b.start_ms.map_or_else(|| "-".to_owned(), secs),
                dur = if b.start_ms.is_some() { secs(b.elapsed_ms) } else { "-".to_owned() },
            );
        }
        o.push_str("</table>\n");
    }

    /// The timeline: a label column, then one lane per host (a row per overlapping task), a
    /// time axis, the waits on other hosts as lines from the end of the task waited for to the
    /// start of the one that waited, and a bar per task that ran.
    fn svg_into(&self, o: &mut String, standalone: bool) {
        const LABEL: f64 = 170.0;
        const WIDTH: f64 = 1100.0;
        const ROW: f64 = 14.0;
        const AXIS: f64 = 24.0;
        let span = self.elapsed_ms.max(1) as f64;
        let x = |ms: u64| LABEL + ms as f64 / span * WIDTH;
        let mut rows: HashMap<&str, usize> = HashMap::new();
        for b in &self.bars {
            let r = rows.entry(b.host.as_str()).or_insert(1);
            *r = (*r).max(b.row + 1);
        }
        let mut lane_y: HashMap<&str, f64> = HashMap::new();
        let mut y = AXIS;
        for h in &self.hosts {
            lane_y.insert(h.as_str(), y);
            y += rows.get(h.as_str()).copied().unwrap_or(1) as f64 * ROW + 6.0;
        }
        let height = y + 4.0;
        let total_width = LABEL + WIDTH + 20.0;
        let _ = writeln!(
            o,
            "<svg id=\"timeline\"{ns} width=\"{total_width}\" height=\"{height}\" \
             viewBox=\"0 0 {total_width} {height}\" font-family=\"sans-serif\" font-size=\"11\">",
            ns = if standalone { " xmlns=\"http://www.w3.org/2000/svg\"" } else { "" },
        );
        if standalone {
            let _ =
                writeln!(o, "<title>engine run {}</title>\n<style>{SVG_STYLE}</style>", esc(&self.run_id));
        }
        o.push_str(
            "<defs><marker id=\"arrow\" viewBox=\"0 0 6 6\" refX=\"6\" refY=\"3\" markerWidth=\"6\" \
                    markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L6,3 L0,6 z\" class=\"arrowhead\"/>\
                    </marker></defs>\n",
        );
        // Lanes and their labels.
        for (i, h) in self.hosts.iter().enumerate() {
            let top = lane_y[h.as_str()];
            let lane_h = rows.get(h.as_str()).copied().unwrap_or(1) as f64 * ROW + 6.0;
            let _ = writeln!(
                o,
                "<g class=\"lane\" data-host=\"{host}\"><rect class=\"lane-bg{odd}\" x=\"0\" y=\"{top}\" \
                 width=\"{w}\" height=\"{lane_h}\"/><text class=\"host\" x=\"4\" y=\"{ty}\">{host}</text></g>",
                host = esc(h),
                odd = if i % 2 == 1 { " odd" } else { "" },
                w = LABEL + WIDTH + 20.0,
                ty = top + 13.0,
            );
        }
        // The time axis.
        let step = tick_step(self.elapsed_ms);
        let mut t = 0;
        while t <= self.elapsed_ms {
            let _ = writeln!(
                o,
                "<line class=\"tick\" x1=\"{tx:.1}\" y1=\"{y0}\" x2=\"{tx:.1}\" y2=\"{y1}\"/>\
                 <text class=\"tick-label\" x=\"{tx:.1}\" y=\"14\">{label}</text>",
                tx = x(t),
                y0 = AXIS - 4.0,
                y1 = height,
                label = secs(t),
            );
            t += step;
        }
        let bar_y = |b: &Bar| lane_y.get(b.host.as_str()).copied().unwrap_or(AXIS) + 3.0 + b.row as f64 * ROW;
        // The bars.
        let critical: HashSet<TaskId> = self.critical_path.iter().copied().collect();
        for b in self.bars.iter().filter(|b| b.start_ms.is_some()) {
            let start = b.start_ms.unwrap_or(0);
            let _ = writeln!(
                o,
                "<rect class=\"bar s-{status}{crit}\" data-id=\"{id}\" x=\"{bx:.1}\" y=\"{by:.1}\" \
                 width=\"{bw:.1}\" height=\"{bh}\"><title>{host}: {task}\n{status}, {dur} from {from}{msg}</title></rect>",
                status = b.status.as_str(),
                crit = if critical.contains(&b.id) { " crit" } else { "" },
                id = b.id.0,
                bx = x(start),
                by = bar_y(b),
                bw = (b.elapsed_ms as f64 / span * WIDTH).max(1.5),
                bh = ROW - 3.0,
                host = esc(&b.host),
                task = esc(&b.task),
                dur = secs(b.elapsed_ms),
                from = secs(start),
                msg = b
                    .message
                    .as_deref()
                    .map(|m| format!("\n{}", esc(&first_lines(m, 6))))
                    .unwrap_or_default(),
            );
        }
        // The waits on other hosts, over the bars.
        for w in &self.waits {
            let (Some(on), Some(task)) = (self.bar(w.on), self.bar(w.task)) else { continue };
            let (Some(end), Some(start)) = (on.end_ms(), task.start_ms) else { continue };
            let _ = writeln!(
                o,
                "<line class=\"wait{crit}\" data-from=\"{from}\" data-to=\"{to}\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" \
                 x2=\"{x2:.1}\" y2=\"{y2:.1}\" marker-end=\"url(#arrow)\"/>",
                crit = if critical.contains(&w.on) && critical.contains(&w.task) { " crit" } else { "" },
                from = w.on.0,
                to = w.task.0,
                x1 = x(end),
                y1 = bar_y(on) + (ROW - 3.0) / 2.0,
                x2 = x(start),
                y2 = bar_y(task) + (ROW - 3.0) / 2.0,
            );
        }
        o.push_str("</svg>\n");
    }
}

/// For each task that ran, the dependency on another host that ended last (the wait that
/// held it), if it ran too.
fn waits(bars: &[Bar], deps: &BTreeMap<TaskId, Vec<TaskId>>) -> Vec<Wait> {
    let by_id: HashMap<TaskId, &Bar> = bars.iter().map(|b| (b.id, b)).collect();
    let mut waits = Vec::new();
    for b in bars.iter().filter(|b| b.start_ms.is_some()) {
        let held = deps
            .get(&b.id)
            .into_iter()
            .flatten()
            .filter_map(|d| by_id.get(d))
            .filter(|d| d.host != b.host)
            .filter_map(|d| d.end_ms().map(|end| (end, std::cmp::Reverse(d.id))))
            .max();
        if let Some((_, std::cmp::Reverse(on))) = held {
            waits.push(Wait { on, task: b.id });
        }
    }
    waits
}

/// The longest chain of durations through `deps` over the tasks in `bars` (those of an
/// earlier run count 0), first first, as the run computes it (ties to the lowest id).
pub fn critical_chain(bars: &[Bar], deps: &BTreeMap<TaskId, Vec<TaskId>>) -> (u64, Vec<TaskId>) {
    let known: HashSet<TaskId> = bars.iter().map(|b| b.id).collect();
    let elapsed: HashMap<TaskId, u64> = bars.iter().map(|b| (b.id, b.elapsed_ms)).collect();
    let waits_for = |id: TaskId| -> Vec<TaskId> {
        deps.get(&id).map(|d| d.iter().copied().filter(|d| known.contains(d)).collect()).unwrap_or_default()
    };
    // Kahn's order over the known tasks.
    let mut pending: HashMap<TaskId, usize> = known.iter().map(|id| (*id, waits_for(*id).len())).collect();
    let mut dependents: HashMap<TaskId, Vec<TaskId>> = HashMap::new();
    for id in &known {
        for d in waits_for(*id) {
            dependents.entry(d).or_default().push(*id);
        }
    }
    let mut ready: Vec<TaskId> = pending.iter().filter(|(_, n)| **n == 0).map(|(id, _)| *id).collect();
    let mut finish: HashMap<TaskId, (u64, Option<TaskId>)> = HashMap::new();
    while let Some(id) = ready.pop() {
        let longest = waits_for(id)
            .into_iter()
            .filter_map(|d| finish.get(&d).map(|(f, _)| (*f, std::cmp::Reverse(d))))
            .max();
        let f = longest.map_or(0, |(f, _)| f) + elapsed.get(&id).copied().unwrap_or(0);
        finish.insert(id, (f, longest.map(|(_, d)| d.0)));
        for next in dependents.get(&id).into_iter().flatten() {
            if let Some(n) = pending.get_mut(next) {
                *n -= 1;
                if *n == 0 {
                    ready.push(*next);
                }
            }
        }
    }
    let Some((length, std::cmp::Reverse(mut last))) =
        finish.iter().map(|(id, (f, _))| (*f, std::cmp::Reverse(*id))).max()
    else {
        return (0, Vec::new());
    };
    let mut chain = vec![last];
    while let Some(Some(before)) = finish.get(&last).map(|(_, b)| *b) {
        chain.push(before);
        last = before;
    }
    chain.reverse();
    (length, chain)
}

/// Gives each task of a host the first row of its lane where it overlaps no other.
fn pack_rows(bars: &mut [Bar]) {
    let mut order: Vec<usize> = (0..bars.len()).filter(|i| bars[*i].start_ms.is_some()).collect();
    order.sort_by_key(|i| (bars[*i].start_ms, bars[*i].id));
    // Host → the end of the last bar in each row.
    let mut ends: HashMap<String, Vec<u64>> = HashMap::new();
    for i in order {
        let (start, end) = (bars[i].start_ms.unwrap_or(0), bars[i].end_ms().unwrap_or(0));
        let rows = ends.entry(bars[i].host.clone()).or_default();
        let row = match rows.iter().position(|e| *e <= start) {
            Some(r) => r,
            None => {
                rows.push(0);
                rows.len() - 1
            }
        };
        // A zero-length task still takes a pixel or so: the next one waits a millisecond.
        rows[row] = end.max(start + 1);
        bars[i].row = row;
    }
}

/// A host name's sort key: digit runs compare as numbers (`h2` before `h10`).
fn natural(s: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut n = u64::from(c as u8 - b'0');
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n = n.saturating_mul(10).saturating_add(u64::from(*d as u8 - b'0'));
                chars.next();
            }
            key.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

/// A tick every 1, 2 or 5 × 10ⁿ ms, about ten over `span`.
fn tick_step(span: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for m in [1, 2, 5] {
            if span / (unit * m) <= 10 {
                return unit * m;
            }
        }
        unit = unit.saturating_mul(10);
    }
}

/// Milliseconds as seconds, for people: `0.042s`, `1.50s`, `2m 03.4s`.
fn secs(ms: u64) -> String {
    match ms {
        0..1000 => format!("{:.3}s", ms as f64 / 1000.0),
        1000..60_000 => format!("{:.2}s", ms as f64 / 1000.0),
        _ => format!("{}m {:04.1}s", ms / 60_000, (ms % 60_000) as f64 / 1000.0),
    }
}

/// Unix milliseconds as a UTC date and time.
fn utc(ms: u64) -> String {
    i64::try_from(ms / 1000).ok().and_then(crate::clock::utc_seconds).unwrap_or_else(|| ms.to_string())
}

/// The first `n` lines of `text`, and how many more there were.
fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= n {
        return text.to_owned();
    }
    format!("{}\n… {} more lines", lines[..n].join("\n"), lines.len() - n)
}

/// `text` escaped for HTML and XML text and attribute values. Control characters (which XML
/// forbids, and a terminal would act on) become `\u{..}`; tabs and line breaks stay.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn legend() -> String {
    let mut o = String::from("<p class=\"legend\">");
    for s in ["ok", "changed", "failed", "unreachable", "skipped", "unknown"] {
        let _ = write!(o, "<span class=\"swatch s-{s}\"></span>{s} ");
    }
    o.push_str(
        "<span class=\"swatch crit-swatch\"></span>critical path \
         <span class=\"wait-swatch\">&#8594;</span> wait on another host</p>\n",
    );
    o
}

/// The bars' colours, shared by the page and the standalone SVG.
const SVG_STYLE: &str = "\
.s-ok{fill:#5cb85c}.s-changed{fill:#f0ad4e}.s-failed{fill:#d9534f}.s-unreachable{fill:#8e44ad}\
.s-skipped{fill:#bbb}.s-unknown{fill:#5bc0de}\
.bar{stroke:#fff;stroke-width:.6}.bar.crit{stroke:#000;stroke-width:2}\
.lane-bg{fill:#fff}.lane-bg.odd{fill:#f4f6f8}\
.tick{stroke:#ddd;stroke-width:1}.tick-label{fill:#666;text-anchor:middle}\
.host{fill:#222}\
.wait{stroke:#3465a4;stroke-width:1;stroke-dasharray:3 2;opacity:.7}.wait.crit{stroke:#000;opacity:1}\
.arrowhead{fill:#3465a4}";

/// The page's own style (the bars' is [`SVG_STYLE`]).
const STYLE: &str = "\
body{font-family:sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em;margin:.4em 0}\
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;\
vertical-align:top}th{background:#f4f6f8}table.kv th{width:9em}\
tr.crit td:first-child{border-left:3px solid #000}tr.flash td{background:#fff3b0}\
.scroll{overflow-x:auto;border:1px solid #ddd}\
pre{background:#fbf2f2;border-left:3px solid #d9534f;padding:.5em;white-space:pre-wrap;\
word-break:break-word;max-height:20em;overflow:auto}\
.t-ok{color:#2d7a2d}.t-changed{color:#a8680a}.t-failed{color:#c9302c}.t-unreachable{color:#8e44ad}\
.t-skipped{color:#777}.t-unknown{color:#31708f}\
.swatch{display:inline-block;width:1em;height:.8em;margin:0 .3em 0 .8em;vertical-align:middle}\
.swatch.s-ok{background:#5cb85c}.swatch.s-changed{background:#f0ad4e}.swatch.s-failed{background:#d9534f}\
.swatch.s-unreachable{background:#8e44ad}.swatch.s-skipped{background:#bbb}.swatch.s-unknown{background:#5bc0de}\
.crit-swatch{border:2px solid #000}.wait-swatch{color:#3465a4;margin-left:.8em}\
.bar{cursor:pointer}";

/// Registered first: any later script error is recorded on `<html>`, where `--dump-dom` shows it.
const ON_ERROR: &str = "window.onerror=function(m,s,l,c){var d=document.documentElement;\
d.setAttribute('data-script-errors',(d.getAttribute('data-script-errors')||'')+m+' (line '+l+':'+c+'); ');};";

/// Clicking a bar brings its row of the task table into view; then the page says it is done.
const SCRIPT: &str = "(function(){\
var bars=document.querySelectorAll('#timeline .bar');\
for(var i=0;i<bars.length;i++){bars[i].addEventListener('click',function(e){\
var row=document.getElementById('task-'+e.currentTarget.getAttribute('data-id'));\
if(!row){return;}row.scrollIntoView({block:'center'});row.classList.add('flash');\
setTimeout(function(){row.classList.remove('flash');},1500);});}\
document.documentElement.setAttribute('data-bars',String(bars.length));\
document.documentElement.dataset.rendered='ok';})();";

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::journal::inputs::RunInputs;
    use crate::journal::{Finished, Header, Journal, Record, TaskLine};

    /// (id, host, task, status, start, elapsed, message).
    type Row<'a> = (usize, &'a str, &'a str, Status, Option<u64>, u64, Option<&'a str>);

    /// A journal of three hosts: db's `init` (0..300) then `seed` (300..400); web0 and web1 each
    /// `install` (0..100) then `connect` waiting for `seed` (410..450, 405..470); web1's
    /// `migrate <script>` fails, its `restart` is skipped.
    fn rows() -> Vec<Row<'static>> {
        vec![
            (0, "db", "init", Status::Changed, Some(0), 300, None),
            (1, "db", "seed", Status::Changed, Some(300), 100, None),
            (2, "web0", "install", Status::Ok, Some(0), 100, None),
            (3, "web0", "connect", Status::Changed, Some(410), 40, None),
            (4, "web1", "install", Status::Ok, Some(2), 100, None),
            (5, "web1", "connect", Status::Changed, Some(405), 65, None),
            (
                6,
                "web1",
                "migrate <script>alert(1)</script>",
                Status::Failed,
                Some(470),
                20,
                Some("`migrate` exited with status 1: <script>alert('host')</script> token=hunter2-secret"),
            ),
            (7, "web1", "restart", Status::Skipped, None, 0, Some("skipped: depends on web1: migrate")),
        ]
    }

    fn deps() -> BTreeMap<TaskId, Vec<TaskId>> {
        BTreeMap::from([
            (TaskId(1), vec![TaskId(0)]),
            (TaskId(3), vec![TaskId(1), TaskId(2)]),
            (TaskId(5), vec![TaskId(1), TaskId(4)]),
            (TaskId(6), vec![TaskId(5)]),
            (TaskId(7), vec![TaskId(6)]),
        ])
    }

    fn journal(finished: bool) -> Journal {
        let header = Header {
            format: Header::FORMAT,
            id: "20261207T120000.000Z-abcdef".into(),
            engine: "0.1.0".into(),
            started_at_ms: 1_700_000_000_000,
            inputs: RunInputs {
                playbook: "/p/site.rhai".into(),
                inventory: "/p/inv.yml".into(),
                ..RunInputs::default()
            },
            resumes: None,
            fingerprints: BTreeMap::new(),
            deps: deps(),
        };
        let tasks = rows()
            .into_iter()
            .map(|(id, host, task, status, start_ms, elapsed_ms, message)| {
                let line = TaskLine {
                    id: TaskId(id),
                    host: host.into(),
                    task: task.into(),
                    status,
                    done_in: None,
                    start_ms,
                    elapsed_ms,
                    message: message.map(str::to_owned),
                };
                (TaskId(id), line)
            })
            .collect();
        let finished = finished.then(|| Finished {
            interrupted: false,
            aborted: false,
            elapsed_ms: 495,
            critical_path_ms: 485,
            critical_path: vec![TaskId(0), TaskId(1), TaskId(5), TaskId(6)],
        });
        Journal { path: PathBuf::from("/p/.engine/runs/x.jsonl"), header, tasks, finished }
    }

    fn redactor() -> Redactor {
        let r = Redactor::default();
        r.add("hunter2-secret");
        r
    }

    /// The `data-id`s of the rows of the table with `id`, in order.
    fn table_ids(html: &str, id: &str) -> Vec<usize> {
        let start = html.find(&format!("<table id=\"{id}\">")).unwrap_or_else(|| panic!("no table {id}"));
        let table = &html[start..start + html[start..].find("</table>").unwrap()];
        table
            .split("<tr ")
            .skip(1)
            .map(|row| {
                let at = row.find("data-id=\"").unwrap() + 9;
                row[at..at + row[at..].find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn every_task_once_a_lane_per_host_the_critical_path_listed_and_waits_drawn() {
        let t = Timeline::from_journal(&journal(true), &redactor());
        let html = t.html();
        assert_eq!(table_ids(&html, "tasks"), (0..8).collect::<Vec<_>>(), "every task once, by id");
        for (id, host, _, status, start, elapsed, _) in rows() {
            let row = format!(
                "<tr id=\"task-{id}\" data-id=\"{id}\" data-host=\"{host}\" data-status=\"{}\" \
                 data-start-ms=\"{}\" data-elapsed-ms=\"{elapsed}\"",
                status.as_str(),
                start.map_or_else(String::new, |s| s.to_string())
            );
            assert_eq!(html.matches(&row).count(), 1, "{row}");
        }
        // A bar per task that ran, none for the one that never started.
        assert_eq!(html.matches("<rect class=\"bar ").count(), 7);
        assert!(!html.contains("<rect class=\"bar s-skipped"), "{html}");
        assert_eq!(t.hosts, ["db", "web0", "web1"]);
        assert_eq!(html.matches("<g class=\"lane\"").count(), 3);
        // The critical path: the journal's, listed in order, its bars highlighted.
        assert_eq!(table_ids(&html, "critical-path"), [0, 1, 5, 6]);
        assert_eq!(html.matches(" crit\" data-id=").count(), 4, "{html}");
        assert_eq!(critical_chain(&t.bars, &deps()), (485, vec![TaskId(0), TaskId(1), TaskId(5), TaskId(6)]));
        assert!(html.contains("<td data-ms=\"485\">0.485s (wall / critical path = 1.02)</td>"), "{html}");
        // Waits on another host: both connects waited for db's seed; same-host order is no wait.
        assert_eq!(
            t.waits,
            [Wait { on: TaskId(1), task: TaskId(3) }, Wait { on: TaskId(1), task: TaskId(5) }]
        );
        assert_eq!(html.matches("<line class=\"wait").count(), 2);
        assert!(html.contains("<line class=\"wait crit\" data-from=\"1\" data-to=\"5\""), "{html}");
        // Slowest first, like profile_tasks.
        assert_eq!(table_ids(&html, "slowest"), [0, 1, 2, 4, 5, 3, 6]);
        assert!(html.contains("data-ok=\"2\" data-changed=\"4\" data-failed=\"1\""), "{html}");
        assert!(html.contains("<td id=\"ending\">finished</td>"));
        // Tasks of one host that overlap get rows of their own.
        assert!(t.bars.iter().all(|b| b.row == 0));
    }

    #[test]
    fn hostile_names_and_messages_are_escaped_and_secrets_hidden() {
        let t = Timeline::from_journal(&journal(true), &redactor());
        for doc in [t.html(), t.svg()] {
            assert!(!doc.contains("<script>alert"), "{doc}");
            assert!(!doc.contains("hunter2-secret"), "{doc}");
        }
        let html = t.html();
        // Only the page's own two scripts.
        assert_eq!(html.matches("<script").count(), 2, "{html}");
        assert!(html.contains("migrate &lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(
            html.contains("<pre>`migrate` exited with status 1: &lt;script&gt;alert(&#39;host&#39;)"),
            "{html}"
        );
        assert_eq!(html.matches("<div class=\"failure\"").count(), 1, "{html}");
        assert!(html.contains("<div class=\"failure\" data-id=\"6\">"), "{html}");
        assert_eq!(esc("a\u{1b}[31m\"'&\n"), "a\\u{1b}[31m&quot;&#39;&amp;\n");
    }

    #[test]
    fn the_page_needs_no_network_and_reports_when_rendered() {
        let t = Timeline::from_journal(&journal(true), &redactor());
        let html = t.html();
        for url in ["http:", "https:", "src=", "href=", "@import", "//"] {
            assert!(!html.contains(url), "{url} in the page");
        }
        assert!(html.contains("dataset.rendered='ok'") && html.contains("window.onerror"));
        assert!(
            html.find("window.onerror").unwrap() < html.find("<svg").unwrap(),
            "the error hook comes first"
        );
        let svg = t.svg();
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("http").count(), 1, "only the SVG namespace: {svg}");
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn a_killed_runs_journal_is_drawn_with_the_critical_path_from_its_dependencies() {
        let t = Timeline::from_journal(&journal(false), &redactor());
        assert_eq!(t.ending, "killed");
        assert_eq!(t.elapsed_ms, 490, "the end of the last task");
        assert_eq!(
            (t.critical_path_ms, t.critical_path.clone()),
            (485, vec![TaskId(0), TaskId(1), TaskId(5), TaskId(6)])
        );
    }

    #[test]
    fn overlapping_tasks_of_a_host_get_rows_of_their_own() {
        let mut j = journal(true);
        for (id, start) in [(2, 0), (4, 50)] {
            let t = j.tasks.get_mut(&TaskId(id)).unwrap();
            (t.host, t.start_ms) = ("web0".into(), Some(start));
        }
        let t = Timeline::from_journal(&j, &redactor());
        let row = |id| t.bars.iter().find(|b| b.id == TaskId(id)).unwrap().row;
        assert_eq!((row(2), row(4), row(3)), (0, 1, 0));
    }

    /// A resumed run's journal: a task done in an earlier run has no bar and is not counted
    /// with this run's outcomes, and says where it was done.
    #[test]
    fn tasks_done_in_an_earlier_run_are_listed_apart() {
        let mut j = journal(true);
        let t = j.tasks.get_mut(&TaskId(2)).unwrap();
        (t.done_in, t.start_ms, t.elapsed_ms) = (Some("20261206T000000.000Z-aaaaaa".into()), None, 0);
        let t = Timeline::from_journal(&j, &redactor());
        let html = t.html();
        assert_eq!(html.matches("<rect class=\"bar ").count(), 6);
        assert!(html.contains("<td>done in run 20261206T000000.000Z-aaaaaa</td>"), "{html}");
        assert!(html.contains("data-ok=\"1\"") && html.contains("; 1 more done in an earlier run"), "{html}");
        assert_eq!(t.counts.total(), 7);
    }

    /// A journal line from before the report (no start, duration, message, deps or critical
    /// path) still reads, with them empty.
    #[test]
    fn lines_from_before_the_report_read_with_its_fields_empty() {
        let task = Record::parse(r#"{"kind":"task","id":3,"host":"h","task":"t","status":"ok"}"#).unwrap();
        let Record::Task(task) = task else { panic!("{task:?}") };
        assert_eq!((task.start_ms, task.elapsed_ms, task.message), (None, 0, None));
        let fin = Record::parse(r#"{"kind":"finished","interrupted":false,"aborted":false,"elapsed_ms":5}"#)
            .unwrap();
        let Record::Finished(fin) = fin else { panic!("{fin:?}") };
        assert_eq!((fin.critical_path_ms, fin.critical_path), (0, Vec::new()));
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(
            (secs(42), secs(1500), secs(123_400)),
            ("0.042s".into(), "1.50s".into(), "2m 03.4s".into())
        );
        assert_eq!((tick_step(495), tick_step(10), tick_step(0)), (50, 1, 1));
        let mut hosts = vec!["h10", "h2", "etcd1", "h1"];
        hosts.sort_by_key(|h| natural(h));
        assert_eq!(hosts, ["etcd1", "h1", "h2", "h10"]);
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }
}
