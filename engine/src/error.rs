//! The engine's one error enum. Every variant carries the context a user needs to act:
//! the file and line, the host, the task, the command.

use miette::Diagnostic;

use crate::inventory::{ExtraVarsError, InventoryError};
use crate::journal::JournalError;
use crate::plan::PlanErrors;

/// Everything that can stop the engine before or around a run. Task failures during a run
/// are not errors here: they are outcomes, reported through events.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error("{what}: {source}")]
    #[diagnostic(code(engine::io))]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Inventory(#[from] InventoryError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] PlanErrors),

    #[error(transparent)]
    #[diagnostic(transparent)]
    ExtraVars(#[from] ExtraVarsError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Journal(#[from] JournalError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Review(#[from] crate::journal::reviewed::ReviewError),

    #[error("{0}")]
    #[diagnostic(code(engine::usage))]
    Usage(String),

    /// The reference docs cannot be generated: each line says what to add or remove.
    #[error("the reference docs cannot be generated:\n{}", .0.join("\n"))]
    #[diagnostic(code(engine::docs))]
    Docs(Vec<String>),

    #[error("Graphviz `dot` is not installed, so SVG cannot be rendered")]
    #[diagnostic(
        code(engine::graphviz),
        help("install it (`apt-get install graphviz`), or use `--format dot` and render elsewhere")
    )]
    GraphvizMissing,

    #[error("`dot` failed: {0}")]
    #[diagnostic(code(engine::graphviz))]
    Graphviz(String),
}
