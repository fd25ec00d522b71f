//! `--json`: one JSON object per event, one per line, on stdout.

use std::io::Write;

use crate::events::{Event, Subscriber};

/// Writes every event as a JSON line.
#[derive(Debug)]
pub struct JsonLines<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

impl<W: Write + Send> Subscriber for JsonLines<W> {
    fn on_event(&mut self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(self.out, "{line}");
        }
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}
