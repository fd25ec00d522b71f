//! One problem found in a playbook, pointing at its source.

use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

use super::Location;

/// A playbook problem with its location and a snippet of the source around it.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("{location}: {message}")]
#[diagnostic(code(engine::playbook))]
pub struct PlanError {
    pub message: String,
    pub location: Location,
    #[source_code]
    source_code: Option<NamedSource<Arc<str>>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    pub help: Option<String>,
}

impl PlanError {
    /// An error at `location` in `source` (the text of `location.file`, if known).
    pub fn new(message: impl Into<String>, location: Location, source: Option<Arc<str>>) -> Self {
        let message = message.into();
        let (source_code, span) = match source {
            Some(text) => {
                let span = span_at(&text, location.line, location.col);
                (Some(NamedSource::new(&location.file, text)), span)
            }
            None => (None, None),
        };
        Self { label: "here".into(), message, location, source_code, span, help: None }
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
}

/// Drops repeats of an error (same place, same message), keeping the first: one mistake in
/// a loop over hosts is one error, not one per host.
pub(crate) fn dedup(errors: &mut Vec<PlanError>) {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert((e.location.clone(), e.message.clone())));
}

/// The byte span of the word (or single character) at 1-based `line`:`col`.
fn span_at(text: &str, line: usize, col: usize) -> Option<SourceSpan> {
    let line_start: usize = text.split_inclusive('\n').take(line.checked_sub(1)?).map(str::len).sum();
    let line_text = text[line_start..].lines().next().unwrap_or_default();
    let offset: usize = line_text.chars().take(col.saturating_sub(1)).map(char::len_utf8).sum();
    let rest = &line_text[offset.min(line_text.len())..];
    let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len()).max(1);
    Some(SourceSpan::new((line_start + offset).into(), len.min(rest.len().max(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_errors_are_reported_once() {
        let at = |line| Location { file: "p.rhai".into(), line, col: 1 };
        let mut errors = vec![
            PlanError::new("bad mode", at(3), None),
            PlanError::new("bad mode", at(3), None),
            PlanError::new("bad path", at(3), None),
            PlanError::new("bad mode", at(4), None),
        ];
        dedup(&mut errors);
        let kept: Vec<(String, usize)> =
            errors.iter().map(|e| (e.message.clone(), e.location.line)).collect();
        assert_eq!(kept, [("bad mode".into(), 3), ("bad path".into(), 3), ("bad mode".into(), 4)]);
    }

    #[test]
    fn spans_the_word_at_a_position() {
        let text = "let a = 1;\nlet host = host(\"x\");\n";
        let span = span_at(text, 2, 12).unwrap();
        assert_eq!(&text[span.offset()..span.offset() + span.len()], "host");
    }
}
