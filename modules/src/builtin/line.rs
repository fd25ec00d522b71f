//! `line`: one line of a text file present or absent, found by a regular expression, as
//! Ansible's `lineinfile` does. `replace_line` is the narrower tool for "every line starting
//! with X becomes Y, and one must exist"; `line` also inserts a missing line, removes lines,
//! and may create the file.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::builtin::file::{self, WantedAttrs};
use crate::builtin::text::{self, Anchor, Insert, Lines, Regexp};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::module::{Context, Module, Plan};

/// Ensures one line of a text file, like Ansible's `lineinfile`. With `state: present`, the
/// last line that `regexp` matches (or that reads exactly `line`) becomes `line`; when none
/// does, `line` is inserted after the last line matching `insert_after` (or before the last
/// matching `insert_before`; `EOF` and `BOF` name the ends), at the end of the file when
/// nothing matches. With `state: absent`, every line that `regexp` matches (without `regexp`:
/// that reads exactly `line`) is removed. Lines are compared without their newline; an edited
/// file ends with one. The write is atomic and keeps the file's mode and owner (a created file
/// gets 0644). `regexp` should match `line` itself, or every run inserts it again.
/// Unlike `replace_line`, which rewrites every line starting with a prefix and fails when none
/// does, `line` changes one line and inserts it when missing. Output: `path`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "LineArgs", bound = "")]
pub struct LineArgs<S: Stage = Sealed> {
    /// Absolute path of the file on the host.
    pub path: S::Of<AbsolutePath>,
    /// The whole line, without its newline. Required with `state: present`.
    pub line: Option<String>,
    /// A regular expression (Rust syntax) for the line to replace or remove, e.g. "^PermitRootLogin\\s".
    pub regexp: Option<S::Of<Regexp>>,
    /// Whether the line should be in the file.
    #[serde(default)]
    pub state: LineState,
    /// Where a missing line goes: after the last line this regular expression matches, or "EOF" (the default).
    pub insert_after: Option<S::Of<Anchor>>,
    /// Where a missing line goes: before the last line this regular expression matches, or "BOF".
    pub insert_before: Option<S::Of<Anchor>>,
    /// Create the file (empty, mode 0644) when it does not exist; otherwise a missing file is an error with `state: present`.
    #[serde(default)]
    pub create: bool,
}

/// Whether a line should be in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LineState {
    /// In the file: replaced in place, or inserted
    #[default]
    Present,
    /// Not in the file: every matching line is removed
    Absent,
}

contract::resolve_struct!(LineArgs<S> { path, line, regexp, state, insert_after, insert_before, create });
contract::resolve_as_is!(LineState);

impl<S: Stage> Validate for LineArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if self.line.as_ref().is_some_and(|l| l.contains('\n')) {
            return Err(ArgsError::invalid("line", "line is a single line: it holds no newline"));
        }
        match self.state {
            LineState::Present if self.line.is_none() => {
                return Err(ArgsError::invalid("", "missing line (the text the line should read)"));
            }
            LineState::Absent if self.line.is_none() && self.regexp.is_none() => {
                return Err(ArgsError::invalid(
                    "",
                    "state: absent needs regexp (or line) to find the lines to remove",
                ));
            }
            LineState::Absent if self.insert_after.is_some() || self.insert_before.is_some() => {
                let at = if self.insert_after.is_some() { "insert_after" } else { "insert_before" };
                return Err(ArgsError::invalid(at, format!("{at} makes no sense with state: absent")));
            }
            _ => {}
        }
        if self.insert_after.is_some() && self.insert_before.is_some() {
            return Err(ArgsError::invalid(
                "insert_before",
                "give either insert_after or insert_before, not both",
            ));
        }
        if let (Some(line), Some(re)) = (&self.line, self.regexp.as_ref().and_then(|r| S::known(r)))
            && self.state == LineState::Present
            && !re.is_match(line)
        {
            return Err(ArgsError::invalid(
                "regexp",
                format!(
                    "regexp {:?} does not match line {line:?}: every run would insert the line again",
                    re.as_str()
                ),
            ));
        }
        Ok(self)
    }
}

/// What an edit did, for the plan's first change line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Edit {
    Replaced { at: usize },
    Inserted { at: usize },
    Removed { count: usize },
}

impl Edit {
    fn describe(&self, path: &str) -> String {
        match self {
            Edit::Replaced { at } => format!("replace line {} of {path}", at + 1),
            Edit::Inserted { at } => format!("insert line {} into {path}", at + 1),
            Edit::Removed { count: 1 } => format!("remove 1 line from {path}"),
            Edit::Removed { count } => format!("remove {count} lines from {path}"),
        }
    }
}

impl LineArgs<Resolved> {
    /// The matcher of the lines this task manages.
    fn matches(&self, candidate: &str) -> bool {
        self.regexp.as_ref().is_some_and(|re| re.is_match(candidate))
            || self.line.as_deref().is_some_and(|line| line == candidate)
    }

    /// The edited lines, or `None` when they are already as asked.
    fn edit(&self, lines: &mut Lines) -> Option<Edit> {
        let lines = &mut lines.lines;
        match self.state {
            LineState::Present => {
                let line = self.line.clone().unwrap_or_default();
                match lines.iter().rposition(|l| self.matches(l)) {
                    Some(at) if lines[at] == line => None,
                    Some(at) => {
                        lines[at] = line;
                        Some(Edit::Replaced { at })
                    }
                    None => {
                        let at = Insert::from_args(self.insert_after.as_ref(), self.insert_before.as_ref())
                            .index(lines);
                        lines.insert(at, line);
                        Some(Edit::Inserted { at })
                    }
                }
            }
            LineState::Absent => {
                let before = lines.len();
                lines.retain(|l| !self.matches(l));
                let count = before - lines.len();
                (count > 0).then_some(Edit::Removed { count })
            }
        }
    }
}

/// The `line` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Line {
    args: LineArgs<Resolved>,
}

impl Line {
    pub fn new(args: LineArgs<Resolved>) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for Line {
    fn name(&self) -> &'static str {
        "line"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.path.to_string()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let path = args.path.as_str();
        let absent = args.state == LineState::Absent;
        let Some((current, text)) = text::read_for_edit(cx.host, path, absent, args.create).await? else {
            return Ok(with_path(Plan::unchanged(), path));
        };
        let mut lines = Lines::parse(&text);
        let Some(edit) = args.edit(&mut lines) else {
            return Ok(with_path(Plan::unchanged(), path));
        };
        let after = lines.text();
        let mut plan =
            file::plan_content(cx.host, path, current, after.as_bytes(), &WantedAttrs::default(), cx.options)
                .await?;
        if plan.is_change() {
            plan.changes.insert(0, edit.describe(path));
        }
        Ok(with_path(plan, path))
    }
}

fn with_path(mut plan: Plan, path: &str) -> Plan {
    plan.outputs.insert("path".into(), Value::String(path.to_owned()));
    plan
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::resolved;

    fn edit(args: serde_json::Value, text: &str) -> (Option<Edit>, String) {
        let args = resolved::<LineArgs>(args).unwrap();
        let mut lines = Lines::parse(text);
        let edit = args.edit(&mut lines);
        (edit, lines.text())
    }

    const SSHD: &str = "Port 22\n#PermitRootLogin prohibit-password\nPermitRootLogin yes\nUsePAM yes\n";

    #[test]
    fn present_replaces_the_last_match_and_then_changes_nothing() {
        let args = json!({ "path": "/x", "regexp": "^#?PermitRootLogin\\s", "line": "PermitRootLogin no" });
        let (done, text) = edit(args.clone(), SSHD);
        assert_eq!(done, Some(Edit::Replaced { at: 2 }));
        assert_eq!(text, "Port 22\n#PermitRootLogin prohibit-password\nPermitRootLogin no\nUsePAM yes\n");
        assert_eq!(edit(args, &text), (None, text.clone()));
    }

    #[test]
    fn a_missing_line_is_inserted_where_asked_else_at_the_end() {
        let line = |extra: serde_json::Value| {
            let mut args = json!({ "path": "/x", "regexp": "^MaxAuthTries ", "line": "MaxAuthTries 3" });
            args.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            edit(args, SSHD).1
        };
        assert!(line(json!({})).ends_with("UsePAM yes\nMaxAuthTries 3\n"));
        assert!(line(json!({ "insert_before": "BOF" })).starts_with("MaxAuthTries 3\nPort 22\n"));
        assert!(line(json!({ "insert_after": "^Port " })).starts_with("Port 22\nMaxAuthTries 3\n#Permit"));
        assert!(line(json!({ "insert_before": "^UsePAM" })).ends_with("yes\nMaxAuthTries 3\nUsePAM yes\n"));
        assert!(line(json!({ "insert_after": "^Nothing" })).ends_with("UsePAM yes\nMaxAuthTries 3\n"));
        // Without regexp the exact line is what is looked for; a file without a final newline gets one.
        assert_eq!(edit(json!({ "path": "/x", "line": "b" }), "a\nb"), (None, "a\nb\n".into()));
        assert_eq!(edit(json!({ "path": "/x", "line": "c" }), "a\nb").1, "a\nb\nc\n");
    }

    #[test]
    fn absent_removes_every_match() {
        let (done, text) =
            edit(json!({ "path": "/x", "regexp": "PermitRootLogin", "state": "absent" }), SSHD);
        assert_eq!(done, Some(Edit::Removed { count: 2 }));
        assert_eq!(text, "Port 22\nUsePAM yes\n");
        assert_eq!(
            edit(json!({ "path": "/x", "line": "Port 22", "state": "absent" }), SSHD).1.lines().count(),
            3
        );
        assert_eq!(edit(json!({ "path": "/x", "line": "nope", "state": "absent" }), SSHD).0, None);
    }

    #[test]
    fn contradictory_arguments_are_refused() {
        let error = |args: serde_json::Value| resolved::<LineArgs>(args).unwrap_err().to_string();
        assert_eq!(error(json!({ "path": "/x" })), "missing line (the text the line should read)");
        assert_eq!(
            error(json!({ "path": "/x", "line": "a = 1", "regexp": "^b" })),
            "regexp \"^b\" does not match line \"a = 1\": every run would insert the line again"
        );
        assert_eq!(
            error(json!({ "path": "/x", "line": "a", "insert_after": "EOF", "insert_before": "BOF" })),
            "give either insert_after or insert_before, not both"
        );
        assert_eq!(
            error(json!({ "path": "/x", "line": "a\nb" })),
            "line is a single line: it holds no newline"
        );
        assert_eq!(
            error(json!({ "path": "/x", "state": "absent" })),
            "state: absent needs regexp (or line) to find the lines to remove"
        );
    }
}
