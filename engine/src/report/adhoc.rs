//! The human view of `engine exec`: each host's result as it ends, Ansible-style, then the
//! recap.
//!
//! ```text
//!  web1 | CHANGED | rc=0 >>
//!   12:01:02 up 3 days, ...
//!  web2 | UNREACHABLE >>
//!   cannot connect to 10.77.0.12:22: ...
//! ```
//!
//! A host's output is hostile text: it reaches the terminal only through [`printable`].

use std::io::Write;

use super::{Recap, printable};
use crate::events::{Event, Status, Subscriber};

/// Prints each host's command output and, at the end, the recap.
pub struct AdHocOutput {
    recap: Recap,
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for AdHocOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdHocOutput").finish_non_exhaustive()
    }
}

impl AdHocOutput {
    /// Prints to `out` (stdout for the binary).
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { recap: Recap::default(), out }
    }

    fn print(&mut self, text: &str) {
        let _ = writeln!(self.out, "{}", printable(text));
    }
}

/// `text`'s lines, each indented by one space; nothing for empty text.
fn indented(text: &str) -> String {
    text.trim_end_matches('\n').lines().map(|l| format!("\n {l}")).collect()
}

impl Subscriber for AdHocOutput {
    fn on_event(&mut self, event: &Event) {
        self.recap.record(event);
        let Event::TaskFinished(r) = event else { return };
        let status = match r.status {
            Status::Ok => "SUCCESS",
            Status::Changed => "CHANGED",
            Status::Failed => "FAILED",
            Status::Unreachable => "UNREACHABLE",
            Status::Skipped => "SKIPPED",
            Status::Unknown => "UNKNOWN",
        };
        let mut text = match r.output.as_ref().and_then(|o| o.rc) {
            Some(rc) => format!("{} | {status} | rc={rc} >>", r.host),
            None => format!("{} | {status} >>", r.host),
        };
        if let Some(output) = &r.output {
            text.push_str(&indented(&output.stdout));
            if !output.stderr.trim().is_empty() {
                text.push_str("\n stderr:");
                text.push_str(&indented(&output.stderr));
            }
        }
        if let Some(error) = &r.error {
            // Every task here is the one command: its place in a playbook says nothing.
            let error = error.strip_prefix(&format!("{}: ", r.location)).unwrap_or(error);
            text.push_str(&indented(error));
        }
        self.print(&text);
    }

    fn finish(&mut self) {
        let recap = self.recap.render();
        let _ = write!(self.out, "\n{}", printable(&recap));
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Captured, TaskReport};
    use crate::ids::TaskId;
    use crate::report::printed::Printed;

    /// A host's output is shown under its name, escape sequences written out, never run.
    #[test]
    fn each_hosts_output_is_printed_under_its_name_made_printable() {
        let printed = Printed::default();
        let mut out = AdHocOutput::new(Box::new(printed.clone()));
        let report = |host: &str, status, output, error: Option<&str>| {
            Event::TaskFinished(TaskReport {
                id: TaskId(0),
                host: host.into(),
                task: "uptime".into(),
                module: "command".into(),
                location: "engine exec:0:0".into(),
                status,
                changes: Vec::new(),
                diff: None,
                error: error.map(|e| format!("engine exec:0:0: {e}")),
                note: None,
                elapsed_ms: 1,
                started_at_ms: 1,
                output,
            })
        };
        let output =
            Captured { rc: Some(0), stdout: "up 3 days\x1b[2J\nload 0.1\n".into(), stderr: String::new() };
        out.on_event(&report("web1", Status::Changed, Some(Box::new(output)), None));
        out.on_event(&report("web2", Status::Unreachable, None, Some("cannot connect")));
        let text = printed.text();
        assert_eq!(
            text,
            "web1 | CHANGED | rc=0 >>\n up 3 days\\x1b[2J\n load 0.1\nweb2 | UNREACHABLE >>\n cannot connect\n"
        );
    }
}
