//! The human view of a run: a live progress display (an overall bar and one line per busy
//! host), a line per changed, failed or skipped task (with diffs when asked), and the recap.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Recap, printable};
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
    /// Bars are drawn (a terminal). Without, none is made: a host's spinner ticks on its own
    /// thread, one per host, which at thousands of hosts cost more than the run itself.
    progress: bool,
    /// Where lines and the recap go: stdout, unless a test gives its own.
    out: Output,
}

/// The console's output stream.
struct Output(Box<dyn Write + Send>);

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output")
    }
}

/// Hides the progress display while something else has the terminal (a passphrase prompt).
#[derive(Debug, Clone)]
pub struct ProgressPause(MultiProgress);

impl ProgressPause {
    /// Runs `f` with the bars cleared; they are drawn again after. Lines the run prints
    /// meanwhile wait for `f` to end.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }
}

impl Console {
    /// A handle that hides this console's progress display for a while.
    pub fn pause(&self) -> ProgressPause {
        ProgressPause(self.multi.clone())
    }

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
            progress,
            out: Output(Box::new(std::io::stdout())),
        }
    }

    /// Prints to `out` instead of stdout (tests read what a run prints).
    #[must_use]
    pub fn with_output(mut self, out: impl Write + Send + 'static) -> Self {
        self.out = Output(Box::new(out));
        self
    }

    /// Prints a line on stdout, above the progress bars (which live on stderr). The one way
    /// text reaches the terminal (with [`Console::finish`]'s recap): it is made [`printable`]
    /// here, since much of it (errors with a command's stderr, diffs, changes) comes from hosts.
    fn line(&mut self, text: &str) {
        let Self { multi, out, .. } = self;
        multi.suspend(|| {
            let _ = writeln!(out.0, "{}", printable(text));
        });
    }
}

impl Subscriber for Console {
    fn on_event(&mut self, event: &Event) {
        self.recap.record(event);
        match event {
            Event::RunStarted { playbook, tasks, hosts, check, rolling, .. } => {
                let mode = if *check { " (check mode: nothing is changed)" } else { "" };
                self.line(&format!("{playbook}: {tasks} tasks on {} hosts{mode}", hosts.len()));
                for serial in rolling {
                    self.line(&format!("  {serial}"));
                }
                if !self.progress {
                    return;
                }
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
                if !self.progress {
                    return;
                }
                let bar = self.hosts.entry(host.clone()).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix:.bold} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(printable(host).into_owned());
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar
                });
                bar.set_message(printable(task).into_owned());
            }
            Event::TaskFinished(r) => {
                self.running.remove(&r.id);
                if let Some(bar) = &self.overall {
                    bar.inc(1);
                }
                if let Some(bar) = self.hosts.get(&r.host) {
                    bar.set_message(format!("{} {}", r.status.as_str(), printable(&r.task)));
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
        let recap = self.recap.render();
        let _ = write!(self.out.0, "\n{}", printable(&recap));
        let _ = self.out.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TaskReport;
    use crate::report::printed::Printed;

    fn report(status: Status) -> TaskReport {
        TaskReport {
            id: TaskId(0),
            host: "web1".into(),
            task: "hostile".into(),
            module: "command".into(),
            location: "pb.rhai:1:1".into(),
            status,
            changes: Vec::new(),
            diff: None,
            error: None,
            note: None,
            elapsed_ms: 0,
            started_at_ms: 0,
            output: None,
        }
    }

    /// A host's stderr (in a failed task's error) and a diff of a file it holds carry escape
    /// sequences that would clear the screen and fake a line; the console prints them as
    /// visible text, with not one ESC, CR or C1 byte reaching the terminal.
    #[test]
    fn ansi_escapes_from_a_host_print_as_visible_text() {
        let printed = Printed::default();
        let mut console = Console::new(false, false, true).with_output(printed.clone());
        let mut failed = report(Status::Failed);
        failed.error =
            Some("pb.rhai:1:1: web1: hostile: `x` exited with status 1: \x1b[2J\x1b[Hall good\r".into());
        let mut changed = report(Status::Changed);
        changed.diff = Some("+port=80\x1b]0;owned\x07\u{9b}1A\n".into());
        console.on_event(&Event::TaskFinished(failed));
        console.on_event(&Event::TaskFinished(changed));
        console.finish();
        let text = printed.text();
        assert!(
            text.starts_with(
                "     failed: [web1] hostile\n             pb.rhai:1:1: web1: hostile: `x` exited with status 1: \
                 \\x1b[2J\\x1b[Hall good\\r\n    changed: [web1] hostile\n+port=80\\x1b]0;owned\\x07\\u{9b}1A\n"
            ),
            "{text}"
        );
        assert!(!text.contains(['\x1b', '\r', '\x07', '\u{9b}']), "{text:?}");
    }
}
