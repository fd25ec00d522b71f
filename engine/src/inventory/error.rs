//! Why an inventory could not be used.

use std::path::PathBuf;

use miette::Diagnostic;

/// An inventory that cannot be read or is not a valid inventory.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum InventoryError {
    #[error("cannot read inventory {}: {source}", path.display())]
    #[diagnostic(code(engine::io))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("inventory {}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    #[diagnostic(code(engine::inventory))]
    Invalid { path: PathBuf, line: Option<usize>, message: String },
}
