//! The contract's error types: why a module failed ([`ModuleError`]), and why its arguments
//! were rejected ([`ArgsError`]: a path and a kind, as data). serde reports argument mistakes
//! to [`ArgsError`] itself (it implements `serde::de::Error`, see [`crate::args`]), so no
//! message is ever parsed back; the words a playbook author reads are rendered from the data.

use std::fmt;

use serde::de::{Expected, Unexpected};

use crate::host::HostError;
use crate::untrusted::{FactError, OutputError};

/// Why a module could not plan or apply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModuleError {
    /// The host could not run the command at all.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A command on the host exited non-zero.
    #[error("`{command}` exited with {status}{}", stderr_suffix(.stderr))]
    Command {
        /// The command line that ran (never contains file content or secrets: those go on stdin).
        command: String,
        /// Exit status, or "a signal".
        status: String,
        /// The last lines of its stderr.
        stderr: String,
    },
    /// The host's state does not allow the requested change (e.g. a file where a directory is asked).
    #[error("{0}")]
    Refused(String),
    /// The host's answer is refused: malformed, or naming something outside what was asked
    /// (hosts are not trusted, see [`crate::untrusted`]).
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A fact the module reads did not parse as what it should be (see [`crate::facts`]).
    #[error(transparent)]
    Fact(#[from] FactError),
}

impl ModuleError {
    /// Why it failed, without the command line: a failed command's stderr (its status when
    /// it printed nothing), or the whole message. For errors that name their place themselves
    /// ("cannot read X on the controller: REASON").
    pub fn reason(&self) -> String {
        match self {
            ModuleError::Command { stderr, .. } if !stderr.is_empty() => stderr.clone(),
            ModuleError::Command { command, status, .. } => format!("`{command}` exited with {status}"),
            other => other.to_string(),
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
}

/// Why a module's arguments were rejected: where ([`ArgsError::path`]) and what
/// ([`ArgsErrorKind`]). The message a playbook author reads is rendered from those two
/// (`Display`), so rewording it can move no caret and change no kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError {
    /// Where in the arguments, as serde_path_to_error spells it: "" for the arguments as a
    /// whole, `mode`, `ca.cert`, `names[2]`. For an unknown key, the path ends with that key.
    pub path: String,
    /// What is wrong there.
    pub kind: ArgsErrorKind,
}

/// What is wrong with an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsErrorKind {
    /// A key the map does not take; `expected` lists the keys it does.
    UnknownField { field: String, expected: Vec<String> },
    /// A required key is not given.
    MissingField { field: String },
    /// The value is of the wrong type: `expected` in playbook words ("a list (an array)").
    InvalidType { expected: String, found: Found },
    /// The value has the right type but not an accepted value (a number out of range).
    InvalidValue { expected: String, found: Found },
    /// A choice that is not one of `expected`.
    UnknownVariant { variant: String, expected: Vec<String> },
    /// A list or tuple of the wrong length.
    InvalidLength { len: usize, expected: String },
    /// The same key given twice.
    DuplicateField { field: String },
    /// A value's own parser rejected it (e.g. `invalid mode "0999"`).
    Custom { message: String },
    /// A module's own rule about its arguments (e.g. "path must be absolute"): the message
    /// stands alone.
    Invalid { message: String },
}

/// The value given where another was expected, as a message names it ("the integer 644").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Boolean(bool),
    /// An integer, written out.
    Integer(String),
    /// A number with a fraction, written out the way serde does (`1.0`, never `1`).
    Number(String),
    String(String),
    List,
    Map,
    /// Rhai's `()`, JSON's null.
    Nothing,
    /// Anything else, in serde's words.
    Other(String),
}

impl ArgsError {
    /// A module's own rule broken at `path` ("" for a rule about the arguments together).
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), kind: ArgsErrorKind::Invalid { message: message.into() } }
    }

    /// The same error, found `inside` an argument: `inside` is prefixed to the path.
    #[must_use]
    pub fn within(mut self, inside: &str) -> Self {
        self.path = match (inside.is_empty(), self.path.is_empty(), self.path.starts_with('[')) {
            (true, _, _) => self.path,
            (false, true, _) => inside.to_owned(),
            (false, false, true) => format!("{inside}{}", self.path),
            (false, false, false) => format!("{inside}.{}", self.path),
        };
        self
    }

    /// The argument a playbook should be shown, when it is written in the call: `None` for
    /// the arguments as a whole and for a missing key (nothing to point at but the call).
    pub fn written_at(&self) -> Option<&str> {
        match self.kind {
            ArgsErrorKind::MissingField { .. } => None,
            _ if self.path.is_empty() => None,
            _ => Some(&self.path),
        }
    }

    fn from_kind(kind: ArgsErrorKind) -> Self {
        Self { path: String::new(), kind }
    }
}

impl std::error::Error for ArgsError {}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.as_str();
        let at = || if path.is_empty() { "the arguments".to_owned() } else { format!("argument `{path}`") };
        match &self.kind {
            ArgsErrorKind::UnknownField { field, expected } => {
                let mut valid: Vec<&str> = expected.iter().map(String::as_str).collect();
                valid.sort_unstable();
                let suggestion = crate::suggest::did_you_mean(field, valid.iter().copied());
                // The path ends with the unknown key itself.
                let parent = path.rsplit_once('.').map(|(parent, _)| parent).unwrap_or_default();
                if parent.is_empty() {
                    write!(f, "unknown argument `{field}`")?;
                } else {
                    write!(f, "unknown key `{field}` in argument `{parent}`")?;
                }
                if !suggestion.is_empty() {
                    f.write_str(&suggestion)
                } else if valid.is_empty() {
                    f.write_str(": it takes no keys")
                } else {
                    write!(f, "; valid: {}", valid.join(", "))
                }
            }
            ArgsErrorKind::UnknownVariant { variant, expected } => {
                let suggestion = crate::suggest::did_you_mean(variant, expected.iter().map(String::as_str));
                let choices: Vec<String> = expected.iter().map(|v| format!("\"{v}\"")).collect();
                write!(f, "{} must be one of {}, got \"{variant}\"{suggestion}", at(), choices.join(", "))
            }
            ArgsErrorKind::MissingField { field } if path.is_empty() => {
                write!(f, "missing required argument `{field}`")
            }
            ArgsErrorKind::MissingField { field } => {
                write!(f, "argument `{path}` lacks its required key `{field}`")
            }
            ArgsErrorKind::InvalidType { expected, found }
            | ArgsErrorKind::InvalidValue { expected, found } => {
                write!(f, "{} must be {expected}, got {found}", at())
            }
            ArgsErrorKind::InvalidLength { len, expected } => {
                with_path(f, path, format_args!("invalid length {len}, expected {expected}"))
            }
            ArgsErrorKind::DuplicateField { field } => {
                with_path(f, path, format_args!("duplicate field `{field}`"))
            }
            ArgsErrorKind::Custom { message } => with_path(f, path, format_args!("{message}")),
            ArgsErrorKind::Invalid { message } => f.write_str(message),
        }
    }
}

/// `argument `path`: what`, or just `what` about the arguments as a whole.
fn with_path(f: &mut fmt::Formatter<'_>, path: &str, what: fmt::Arguments<'_>) -> fmt::Result {
    if path.is_empty() { f.write_fmt(what) } else { write!(f, "argument `{path}`: {what}") }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Boolean(b) => write!(f, "the boolean {b}"),
            Found::Integer(n) => write!(f, "the integer {n}"),
            Found::Number(n) => write!(f, "the number {n}"),
            Found::String(s) => write!(f, "the string {s:?}"),
            Found::List => f.write_str("a list"),
            Found::Map => f.write_str("a map"),
            Found::Nothing => f.write_str("nothing (`()`)"),
            Found::Other(other) => f.write_str(other),
        }
    }
}

impl From<Unexpected<'_>> for Found {
    fn from(unexpected: Unexpected<'_>) -> Self {
        match unexpected {
            Unexpected::Bool(b) => Found::Boolean(b),
            Unexpected::Unsigned(n) => Found::Integer(n.to_string()),
            Unexpected::Signed(n) => Found::Integer(n.to_string()),
            Unexpected::Float(n) => Found::Number(with_decimal_point(n)),
            Unexpected::Str(s) => Found::String(s.to_owned()),
            Unexpected::Seq => Found::List,
            Unexpected::Map => Found::Map,
            Unexpected::Unit => Found::Nothing,
            other => Found::Other(other.to_string()),
        }
    }
}

/// A float as serde writes one: `1.0`, not `1`.
fn with_decimal_point(n: f64) -> String {
    let text = n.to_string();
    if n.is_finite() && !text.contains('.') && !text.contains('e') { format!("{text}.0") } else { text }
}

/// serde's name for an expected type (the `expecting` text of its visitor), in playbook words.
fn expected_phrase(expected: &dyn Expected) -> String {
    let expected = expected.to_string();
    match expected.as_str() {
        "a sequence" => "a list (an array)".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a borrowed string" => "a string".to_owned(),
        other if other.starts_with("struct ") || other.starts_with("map") => "a map #{ ... }".to_owned(),
        _ => expected,
    }
}

/// serde hands its findings to this error as data: each call records a kind, and
/// serde_path_to_error adds the path afterwards (see [`crate::args`]).
impl serde::de::Error for ArgsError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self::from_kind(ArgsErrorKind::Custom { message: message.to_string() })
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::from_kind(ArgsErrorKind::InvalidType {
            expected: expected_phrase(expected),
            found: unexpected.into(),
        })
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::from_kind(ArgsErrorKind::InvalidValue {
            expected: expected_phrase(expected),
            found: unexpected.into(),
        })
    }

    fn invalid_length(len: usize, expected: &dyn Expected) -> Self {
        Self::from_kind(ArgsErrorKind::InvalidLength { len, expected: expected.to_string() })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::from_kind(ArgsErrorKind::UnknownVariant {
            variant: variant.to_owned(),
            expected: expected.iter().map(|&v| v.to_owned()).collect(),
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::from_kind(ArgsErrorKind::UnknownField {
            field: field.to_owned(),
            expected: expected.iter().map(|&v| v.to_owned()).collect(),
        })
    }

    fn missing_field(field: &'static str) -> Self {
        Self::from_kind(ArgsErrorKind::MissingField { field: field.to_owned() })
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::from_kind(ArgsErrorKind::DuplicateField { field: field.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_leaves_out_the_command_line() {
        let failed = |stderr: &str| ModuleError::Command {
            command: "cat -- 'x'".into(),
            status: "status 1".into(),
            stderr: stderr.into(),
        };
        assert_eq!(failed("cat: x: No such file or directory").reason(), "cat: x: No such file or directory");
        assert_eq!(failed("").reason(), "`cat -- 'x'` exited with status 1");
        assert_eq!(ModuleError::Refused("no".into()).reason(), "no");
    }

    fn error(path: &str, kind: ArgsErrorKind) -> String {
        ArgsError { path: path.into(), kind }.to_string()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn an_unknown_argument_gets_the_nearest_name() {
        let unknown = |field: &str, expected: &[&str]| ArgsErrorKind::UnknownField {
            field: field.into(),
            expected: names(expected),
        };
        assert_eq!(
            error("contnet", unknown("contnet", &["path", "state", "content", "mode"])),
            "unknown argument `contnet`; did you mean `content`?"
        );
        assert_eq!(
            error("zzzz", unknown("zzzz", &["path", "state"])),
            "unknown argument `zzzz`; valid: path, state"
        );
        assert_eq!(
            error("config.apii", unknown("apii", &["api", "etcd"])),
            "unknown key `apii` in argument `config`; did you mean `api`?"
        );
        assert_eq!(error("x", unknown("x", &[])), "unknown argument `x`: it takes no keys");
    }

    #[test]
    fn a_wrong_type_names_the_argument_and_both_types() {
        let kind = ArgsErrorKind::InvalidType {
            expected: "an octal mode string like \"0644\"".into(),
            found: Found::Integer("644".into()),
        };
        assert_eq!(
            error("mode", kind),
            "argument `mode` must be an octal mode string like \"0644\", got the integer 644"
        );
        let kind = ArgsErrorKind::InvalidType {
            expected: "a list (an array)".into(),
            found: Found::String("x".into()),
        };
        assert_eq!(error("names", kind), "argument `names` must be a list (an array), got the string \"x\"");
    }

    #[test]
    fn serde_findings_become_kinds_in_playbook_words() {
        use serde::de::Error as _;
        let kind = |e: ArgsError| e.kind;
        assert_eq!(
            kind(ArgsError::invalid_type(Unexpected::Str("x"), &"a sequence")),
            ArgsErrorKind::InvalidType {
                expected: "a list (an array)".into(),
                found: Found::String("x".into())
            }
        );
        assert_eq!(
            kind(ArgsError::invalid_value(Unexpected::Signed(-1), &"u32")),
            ArgsErrorKind::InvalidValue {
                expected: "a whole number, 0 or more".into(),
                found: Found::Integer("-1".into())
            }
        );
        assert_eq!(
            kind(ArgsError::invalid_type(Unexpected::Float(1.0), &"struct Ca")),
            ArgsErrorKind::InvalidType {
                expected: "a map #{ ... }".into(),
                found: Found::Number("1.0".into())
            }
        );
        assert_eq!(
            kind(ArgsError::invalid_type(Unexpected::Unit, &"i64")),
            ArgsErrorKind::InvalidType { expected: "a whole number".into(), found: Found::Nothing }
        );
        assert_eq!(
            ArgsError::invalid_type(Unexpected::Bool(true), &"f64").to_string(),
            "the arguments must be a number, got the boolean true"
        );
    }

    #[test]
    fn an_unknown_choice_lists_the_choices_and_the_nearest() {
        let kind = ArgsErrorKind::UnknownVariant {
            variant: "dir".into(),
            expected: names(&["file", "directory", "absent"]),
        };
        assert_eq!(
            error("state", kind),
            "argument `state` must be one of \"file\", \"directory\", \"absent\", got \"dir\"; did you mean `directory`?"
        );
    }

    #[test]
    fn missing_and_custom_errors_name_the_argument() {
        let missing = |field: &str| ArgsErrorKind::MissingField { field: field.into() };
        assert_eq!(error("", missing("path")), "missing required argument `path`");
        assert_eq!(error("ca", missing("cert")), "argument `ca` lacks its required key `cert`");
        let custom = ArgsErrorKind::Custom { message: "invalid mode \"0999\"".into() };
        assert_eq!(error("mode", custom), "argument `mode`: invalid mode \"0999\"");
        assert_eq!(ArgsError::invalid("", "either cmd or argv").to_string(), "either cmd or argv");
        assert_eq!(
            ArgsError::invalid("argv", "argv must not be empty").to_string(),
            "argv must not be empty"
        );
    }

    #[test]
    fn only_a_written_argument_is_pointed_at() {
        assert_eq!(ArgsError::invalid("mode", "bad").written_at(), Some("mode"));
        assert_eq!(ArgsError::invalid("", "bad").written_at(), None);
        let missing =
            ArgsError { path: "ca".into(), kind: ArgsErrorKind::MissingField { field: "cert".into() } };
        assert_eq!(missing.written_at(), None);
        assert_eq!(ArgsError::invalid("cert", "bad").within("ca").path, "ca.cert");
        assert_eq!(ArgsError::invalid("[2]", "bad").within("names").path, "names[2]");
        assert_eq!(ArgsError::invalid("", "bad").within("config").path, "config");
    }
}
