//! Test support: a writer that keeps what a subscriber printed, shared with the test.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// What was printed; clones share it.
#[derive(Clone, Default)]
pub(super) struct Printed(Arc<Mutex<Vec<u8>>>);

impl Printed {
    /// Everything printed so far, as text.
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            .into_owned()
    }
}

impl Write for Printed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
