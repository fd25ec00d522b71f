//! The human view of a run: a live progress display (an overall bar and one line per busy
//! host), a line per changed, failed or skipped task (with diffs when asked), and the recap.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Recap;
use crate::events::{Event, Status, Subscriber};
use crate::ids::TaskId;

/// Prints a run for people. Progress bars are drawn only on a terminal.
#[derive(Debug)]
pub struct Console {
    multi: MultiProgress,
    overall: Option<ProgressBar>,
    hosts: HashMap<String, ProgressBar>,
    /// Ids of the tasks started and not yet finished, for the Ctrl-C message.
    running: HashSet<TaskId>,
    recap: Recap,
    verbose: bool,
    diff: bool,
}

impl Console {
    /// `progress`: draw live bars (a terminal on stderr); `verbose`: print ok tasks too.
    pub fn new(progress: bool, verbose: bool, diff: bool) -> Self {
        let target = if progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        Self {
            multi: MultiProgress::with_draw_target(target),
            overall: None,
            hosts: HashMap::new(),
            running: HashSet::new(),
            recap: Recap::default(),
            verbose,
            diff,
        }
    }

    /// Prints a line on stdout, above the progress bars (which live on stderr).
    fn line(&self, text: &str) {
        self.multi.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        });
    }
}

impl Subscriber for Console {
    fn on_event(&mut self, event: &Event) {
        self.recap.record(event);
        match event {
            Event::RunStarted { playbook, tasks, hosts, check, .. } => {
                let mode = if *check { " (check mode: nothing is changed)" } else { "" };
                self.line(&format!("{playbook}: {tasks} tasks on {} hosts{mode}", hosts.len()));
                let bar = self.multi.add(ProgressBar::new(*tasks as u64));
                bar.set_style(
                    ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} tasks  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                self.overall = Some(bar);
            }
            Event::TaskStarted { id, host, task, .. } => {
                self.running.insert(*id);
                let bar = self.hosts.entry(host.clone()).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix:.bold} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(host.clone());
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar
                });
                bar.set_message(task.clone());
            }
            Event::TaskFinished(r) => {
                self.running.remove(&r.id);
                if let Some(bar) = &self.overall {
                    bar.inc(1);
                }
                if let Some(bar) = self.hosts.get(&r.host) {
                    bar.set_message(format!("{} {}", r.status.as_str(), r.task));
                }
                let head = format!("{:>11}: [{}] {}", r.status.as_str(), r.host, r.task);
                match r.status {
                    Status::Changed | Status::Unknown => {
                        let mut text = head;
                        for change in &r.changes {
                            text.push_str(&format!("\n             - {change}"));
                        }
                        if self.diff
                            && let Some(diff) = &r.diff
                        {
                            text.push('\n');
                            text.push_str(diff.trim_end());
                        }
                        self.line(&text);
                    }
                    Status::Failed | Status::Unreachable => {
                        self.line(&format!("{head}\n             {}", r.error.as_deref().unwrap_or("")));
                    }
                    Status::Skipped => {
                        if self.verbose {
                            self.line(&format!("{head} ({})", r.error.as_deref().unwrap_or("")));
                        }
                    }
                    Status::Ok => {
                        if self.verbose {
                            match &r.note {
                                Some(note) => self.line(&format!("{head} ({note})")),
                                None => self.line(&head),
                            }
                        }
                    }
                }
            }
            Event::HostUnreachable { host, error } => self.line(&format!("unreachable: [{host}] {error}")),
            Event::HostConnected { .. } => {}
            Event::TaskDone { host, task, run, .. } => {
                if self.verbose {
                    self.line(&format!("{:>11}: [{host}] {task} (done in run {run})", "done"));
                }
            }
            Event::Interrupted { grace_secs } => {
                let n = self.running.len();
                self.line(&format!(
                    "stopping: waiting up to {grace_secs} s for {n} running task{}; Ctrl-C again to abort",
                    if n == 1 { "" } else { "s" }
                ))
            }
            Event::Aborted { grace_expired } => {
                let why = if *grace_expired { "the grace period is over" } else { "Ctrl-C again" };
                self.line(&format!("aborting ({why}): running tasks are abandoned"))
            }
            Event::RunFinished { .. } => {
                for bar in self.hosts.values() {
                    bar.finish_and_clear();
                }
                if let Some(bar) = &self.overall {
                    bar.finish_and_clear();
                }
            }
        }
    }

    fn finish(&mut self) {
        let _ = self.multi.clear();
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\n{}", self.recap.render());
        let _ = out.flush();
    }
}
