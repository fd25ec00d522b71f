//! `block`: a block of lines between two marker lines in a text file, as Ansible's
//! `blockinfile` does. The markers name the block, so several tasks manage several blocks of
//! one file, and the rest of the file is never touched.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::builtin::file::{self, WantedAttrs};
use crate::builtin::text::{self, Anchor, Insert, Lines};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::module::{Context, Module, Plan};

/// Ensures a marked block of lines in a text file, like Ansible's `blockinfile`. The markers
/// are `# BEGIN ENGINE MANAGED BLOCK {name}` and `# END ENGINE MANAGED BLOCK {name}`
/// (`comment` replaces `#` for files with another comment sign). With
/// `state: present`, the lines between the markers become `block`; when the markers are not
/// there, markers and block are inserted after the last line matching `insert_after` (or
/// before the last matching `insert_before`; `EOF` and `BOF` name the ends), at the end of the
/// file when nothing matches. With `state: absent`, the markers and what is between them are
/// removed. A file with only one of the two markers, or with the block twice, is refused: it
/// was edited by hand. The write is atomic and keeps the file's mode and owner (a created file
/// gets 0644). Output: `path`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "BlockArgs", bound = "")]
pub struct BlockArgs<S: Stage = Sealed> {
    /// Absolute path of the file on the host.
    pub path: S::Of<AbsolutePath>,
    /// The block's name, in its marker lines: one line of letters, digits, spaces and `_-.:/`.
    pub name: String,
    /// The lines of the block (a final newline is ignored). Required with `state: present`.
    pub block: Option<String>,
    /// Whether the block should be in the file.
    #[serde(default)]
    pub state: BlockState,
    /// Where a missing block goes: after the last line this regular expression matches, or "EOF" (the default).
    pub insert_after: Option<S::Of<Anchor>>,
    /// Where a missing block goes: before the last line this regular expression matches, or "BOF".
    pub insert_before: Option<S::Of<Anchor>>,
    /// What starts the marker lines, for files whose comments are not `#` (e.g. ";", "//"). Default "#".
    pub comment: Option<String>,
    /// Create the file (mode 0644) when it does not exist; otherwise a missing file is an error with `state: present`.
    #[serde(default)]
    pub create: bool,
}

/// Whether the block should be in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockState {
    /// In the file, between its markers
    #[default]
    Present,
    /// Not in the file: markers and block are removed
    Absent,
}

contract::resolve_struct!(BlockArgs<S> { path, name, block, state, insert_after, insert_before, comment, create });
contract::resolve_as_is!(BlockState);

fn is_block_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 200
        && name.trim() == name
        && name.chars().all(|c| c.is_ascii_alphanumeric() || " _-.:/".contains(c))
}

impl<S: Stage> Validate for BlockArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if !is_block_name(&self.name) {
            return Err(ArgsError::invalid(
                "name",
                format!(
                    "block name {:?} must be one line of letters, digits, spaces and _-.:/ (it is written in the marker lines)",
                    self.name
                ),
            ));
        }
        if let Some(comment) = &self.comment
            && (comment.trim().is_empty() || comment.contains('\n') || comment.trim() != comment)
        {
            return Err(ArgsError::invalid(
                "comment",
                "comment is the non-empty text that starts a comment line, e.g. \"#\"",
            ));
        }
        match self.state {
            BlockState::Present if self.block.is_none() => {
                return Err(ArgsError::invalid("", "missing block (the lines between the markers)"));
            }
            BlockState::Absent if self.block.is_some() => {
                return Err(ArgsError::invalid("block", "block makes no sense with state: absent"));
            }
            BlockState::Absent if self.insert_after.is_some() || self.insert_before.is_some() => {
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
        let markers = self.markers();
        if let Some(block) = &self.block
            && block.lines().any(|l| l == markers.0 || l == markers.1)
        {
            return Err(ArgsError::invalid("block", "block must not hold its own marker lines"));
        }
        Ok(self)
    }
}

impl<S: Stage> BlockArgs<S> {
    /// The begin and end marker lines.
    fn markers(&self) -> (String, String) {
        let comment = self.comment.as_deref().unwrap_or("#");
        (
            format!("{comment} BEGIN ENGINE MANAGED BLOCK {}", self.name),
            format!("{comment} END ENGINE MANAGED BLOCK {}", self.name),
        )
    }
}

/// Where the block is in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Begin and end marker, at these indexes.
    Both(usize, usize),
    None,
}

fn find(lines: &[String], begin: &str, end: &str, path: &str) -> Result<Found, ModuleError> {
    let begins: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| *l == begin).map(|(i, _)| i).collect();
    let ends: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| *l == end).map(|(i, _)| i).collect();
    match (begins.as_slice(), ends.as_slice()) {
        ([], []) => Ok(Found::None),
        ([b], [e]) if b < e => Ok(Found::Both(*b, *e)),
        _ => Err(ModuleError::Refused(format!(
            "{path} holds {} {begin:?} and {} {end:?} lines, not one block: fix it by hand",
            begins.len(),
            ends.len()
        ))),
    }
}

impl BlockArgs<Resolved> {
    /// The edited lines and what was done, or `None` when they are already as asked.
    fn edit(&self, lines: &mut Lines, path: &str) -> Result<Option<String>, ModuleError> {
        let (begin, end) = self.markers();
        let lines = &mut lines.lines;
        let found = find(lines, &begin, &end, path)?;
        match (self.state, found) {
            (BlockState::Absent, Found::None) => Ok(None),
            (BlockState::Absent, Found::Both(b, e)) => {
                lines.drain(b..=e);
                Ok(Some(format!("remove block {:?} ({} lines) from {path}", self.name, e - b - 1)))
            }
            (BlockState::Present, found) => {
                let block = self.block.as_deref().unwrap_or_default();
                let mut wanted = vec![begin];
                wanted.extend(block.strip_suffix('\n').unwrap_or(block).split('\n').map(str::to_owned));
                if block.is_empty() {
                    wanted.pop();
                }
                wanted.push(end);
                match found {
                    Found::Both(b, e) if lines[b..=e] == wanted[..] => Ok(None),
                    Found::Both(b, e) => {
                        lines.splice(b..=e, wanted);
                        Ok(Some(format!("replace block {:?} of {path}", self.name)))
                    }
                    Found::None => {
                        let at = Insert::from_args(self.insert_after.as_ref(), self.insert_before.as_ref())
                            .index(lines);
                        let count = wanted.len() - 2;
                        lines.splice(at..at, wanted);
                        Ok(Some(format!(
                            "insert block {:?} ({count} lines) at line {} of {path}",
                            self.name,
                            at + 1
                        )))
                    }
                }
            }
        }
    }
}

/// The `block` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Block {
    args: BlockArgs<Resolved>,
}

impl Block {
    pub fn new(args: BlockArgs<Resolved>) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for Block {
    fn name(&self) -> &'static str {
        "block"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.path.to_string()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let path = args.path.as_str();
        let absent = args.state == BlockState::Absent;
        let Some((current, text)) = text::read_for_edit(cx.host, path, absent, args.create).await? else {
            return Ok(with_path(Plan::unchanged(), path));
        };
        let mut lines = Lines::parse(&text);
        let Some(what) = args.edit(&mut lines, path)? else {
            return Ok(with_path(Plan::unchanged(), path));
        };
        let after = lines.text();
        let mut plan =
            file::plan_content(cx.host, path, current, after.as_bytes(), &WantedAttrs::default(), cx.options)
                .await?;
        if plan.is_change() {
            plan.changes.insert(0, what);
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

    fn edit(args: serde_json::Value, text: &str) -> Result<(Option<String>, String), ModuleError> {
        let args = resolved::<BlockArgs>(args).unwrap();
        let mut lines = Lines::parse(text);
        let what = args.edit(&mut lines, "/f")?;
        Ok((what, lines.text()))
    }

    const HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n";

    #[test]
    fn a_block_is_inserted_then_replaced_then_left_alone() {
        let args = json!({ "path": "/f", "name": "lab", "block": "10.0.0.1 a\n10.0.0.2 b\n" });
        let (what, text) = edit(args.clone(), HOSTS).unwrap();
        assert_eq!(what.unwrap(), "insert block \"lab\" (2 lines) at line 3 of /f");
        assert_eq!(
            text,
            "127.0.0.1 localhost\n::1 localhost\n# BEGIN ENGINE MANAGED BLOCK lab\n10.0.0.1 a\n10.0.0.2 b\n# END ENGINE MANAGED BLOCK lab\n"
        );
        assert_eq!(edit(args, &text).unwrap(), (None, text.clone()));
        let changed = json!({ "path": "/f", "name": "lab", "block": "10.0.0.3 c" });
        let (what, new) = edit(changed, &format!("{text}tail\n")).unwrap();
        assert_eq!(what.unwrap(), "replace block \"lab\" of /f");
        assert!(new.ends_with("lab\n10.0.0.3 c\n# END ENGINE MANAGED BLOCK lab\ntail\n"), "{new}");
    }

    #[test]
    fn position_comment_and_absent() {
        let args =
            json!({ "path": "/f", "name": "x", "block": "k=v", "insert_before": "BOF", "comment": ";" });
        let (_, text) = edit(args, HOSTS).unwrap();
        assert!(text.starts_with("; BEGIN ENGINE MANAGED BLOCK x\nk=v\n; END ENGINE MANAGED BLOCK x\n127"));
        let absent = json!({ "path": "/f", "name": "x", "comment": ";", "state": "absent" });
        let (what, back) = edit(absent.clone(), &text).unwrap();
        assert_eq!(what.unwrap(), "remove block \"x\" (1 lines) from /f");
        assert_eq!(back, HOSTS);
        assert_eq!(edit(absent, HOSTS).unwrap().0, None);
        let after = json!({ "path": "/f", "name": "x", "block": "k", "insert_after": "^127" });
        assert!(edit(after, HOSTS).unwrap().1.starts_with("127.0.0.1 localhost\n# BEGIN"));
    }

    #[test]
    fn a_half_block_is_refused() {
        let broken = "# BEGIN ENGINE MANAGED BLOCK x\nstuff\n";
        let error = edit(json!({ "path": "/f", "name": "x", "block": "k" }), broken).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/f holds 1 \"# BEGIN ENGINE MANAGED BLOCK x\" and 0 \"# END ENGINE MANAGED BLOCK x\" lines, not one block: fix it by hand"
        );
        let bad = |args: serde_json::Value| resolved::<BlockArgs>(args).unwrap_err().to_string();
        assert!(
            bad(json!({ "path": "/f", "name": "a\nb", "block": "" })).starts_with("block name \"a\\nb\"")
        );
        assert_eq!(
            bad(json!({ "path": "/f", "name": "x", "block": "# END ENGINE MANAGED BLOCK x" })),
            "block must not hold its own marker lines"
        );
    }
}
