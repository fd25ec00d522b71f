//! Problems found in a playbook, each pointing at its source. A problem with one argument of a
//! call ([`PlanError::at_argument`]) points at that argument's key, found in the call's source
//! by the argument's path (`mode`, `ca.cert`, `names[2]`); the message is never read for it.

use std::path::PathBuf;
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
        Self::pointing(message.into(), location, source, None)
    }

    /// An error about the argument at `path` (e.g. `ca.cert`) of the call at `location`: it
    /// points at the innermost key of the path written in that call, or at the call when none
    /// is (a missing argument, or one built at run time).
    pub fn at_argument(
        message: impl Into<String>,
        location: Location,
        source: Option<Arc<str>>,
        path: &str,
    ) -> Self {
        Self::pointing(message.into(), location, source, Some(path))
    }

    fn pointing(
        message: String,
        location: Location,
        source: Option<Arc<str>>,
        argument: Option<&str>,
    ) -> Self {
        // An argument's mistake points at the argument, not just at the call that holds it.
        let location = source
            .as_deref()
            .zip(argument)
            .and_then(|(text, path)| argument_location(text, &location, path))
            .unwrap_or(location);
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

/// Every problem that kept a playbook from sealing into a plan, in source order.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{} has {} error{}", playbook.display(), errors.len(), if errors.len() == 1 { "" } else { "s" })]
#[diagnostic(code(engine::playbook))]
pub struct PlanErrors {
    pub playbook: PathBuf,
    #[related]
    pub errors: Vec<PlanError>,
}

/// Drops repeats of an error (same place, same message), keeping the first: one mistake in
/// a loop over hosts is one error, not one per host.
pub(crate) fn dedup(errors: &mut Vec<PlanError>) {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert((e.location.clone(), e.message.clone())));
}

/// Where the argument at `path` (`mode`, `ca.cert`, `names[2]`) is written inside the call at
/// `location`: the innermost key of the path found in the call (`cert`, else `ca`), on its own
/// line in a map spread over several. `None` when no key of the path is written in that call.
fn argument_location(text: &str, location: &Location, path: &str) -> Option<Location> {
    let start = offset_of(text, location.line, location.col)?;
    let call = call_extent(text, start)?;
    let keys = path.split('.').map(|segment| segment.split('[').next().unwrap_or_default());
    let written = |key: &str| !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_');
    let keys: Vec<&str> = keys.filter(|key| written(key)).collect();
    let found = keys.iter().rev().find_map(|key| key_in(&text[call.clone()], key))? + call.start;
    let line_start = text[..found].rfind('\n').map_or(0, |i| i + 1);
    Some(Location {
        file: location.file.clone(),
        line: text[..found].matches('\n').count() + 1,
        col: text[line_start..found].chars().count() + 1,
    })
}

/// The byte offset of 1-based `line`:`col` (col in characters).
fn offset_of(text: &str, line: usize, col: usize) -> Option<usize> {
    let line_start: usize = text.split_inclusive('\n').take(line.checked_sub(1)?).map(str::len).sum();
    let line_text = text.get(line_start..)?.lines().next().unwrap_or_default();
    Some(line_start + line_text.chars().take(col.saturating_sub(1)).map(char::len_utf8).sum::<usize>())
}

/// The byte range of the call starting at `from`: from its `(` to the matching `)`, with
/// brackets inside string literals ignored.
fn call_extent(text: &str, from: usize) -> Option<std::ops::Range<usize>> {
    let open = from + text.get(from..)?.find('(')?;
    let (mut depth, mut quote, mut escaped) = (0usize, None, false);
    for (i, c) in text[open..].char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open..open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The offset in `call` of `key` written as a map key (`key:` or `"key":`).
fn key_in(call: &str, key: &str) -> Option<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    call.match_indices(key).map(|(i, _)| i).find(|&i| {
        let before = call[..i].chars().next_back();
        let rest = &call[i + key.len()..];
        let (quoted, rest) = match before {
            Some('"') => (true, rest.strip_prefix('"').unwrap_or("x")),
            _ => (false, rest),
        };
        (quoted || !before.is_some_and(ident))
            && !rest.starts_with(ident)
            && rest.trim_start().starts_with(':')
    })
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
    fn an_argument_error_points_at_the_argument() {
        let text = "let h = host(\"web0\");\nh.file(\"motd\", #{\n    path: \"/etc/motd\",\n    \"contnet\": \"hi\",\n    mode: 644,\n});\nh.file(\"other\", #{ mode: 1 });\n";
        let call = Location { file: "p.rhai".into(), line: 2, col: 3 };
        let at = |path: &str| argument_location(text, &call, path).map(|l| (l.line, l.col));
        assert_eq!(at("contnet"), Some((4, 6)));
        assert_eq!(at("mode"), Some((5, 5)));
        // Not in this call (a missing argument, one in the next call), or the arguments as a
        // whole: the call stays the place.
        assert_eq!(at("owner"), None);
        assert_eq!(at(""), None);
        // A list item points at its list.
        assert_eq!(at("mode[2]"), Some((5, 5)));
        let error = PlanError::at_argument(
            "argument `mode` must be a string",
            call.clone(),
            Some(Arc::from(text)),
            "mode",
        );
        assert_eq!((error.location.line, error.location.col), (5, 5));
        // Without an argument, the message is not read: the call is the place.
        let error = PlanError::new("argument `mode` must be a string", call, Some(Arc::from(text)));
        assert_eq!((error.location.line, error.location.col), (2, 3));
    }

    #[test]
    fn a_nested_argument_points_at_its_innermost_written_key() {
        let text =
            "h.certgen(\"leaf\", #{\n    kind: \"leaf\",\n    ca: #{ crt: \"/a\", key: \"/b\" },\n});\n";
        let call = Location { file: "p.rhai".into(), line: 1, col: 3 };
        let at = |path: &str| argument_location(text, &call, path).map(|l| (l.line, l.col));
        assert_eq!(at("ca.crt"), Some((3, 12)));
        // `ca.cert` is not written: its map `ca` is.
        assert_eq!(at("ca.cert"), Some((3, 5)));
        assert_eq!(at("ca.controller"), Some((3, 5)));
    }

    #[test]
    fn spans_the_word_at_a_position() {
        let text = "let a = 1;\nlet host = host(\"x\");\n";
        let span = span_at(text, 2, 12).unwrap();
        assert_eq!(&text[span.offset()..span.offset() + span.len()], "host");
    }
}
