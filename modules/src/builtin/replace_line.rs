//! `replace_line`: sets the lines of a file that start with a given prefix, keeping the rest.
//! The guide's `sed -i 's#server:.*#server: https://LB:6443#g' kubelet.conf`, made idempotent.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::builtin::file::{self, WantedAttrs};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::module::{Context, Module, Plan};
use contract::remote;

/// Replaces every line of an existing file whose text, after its indentation, starts with
/// `starts_with`, by `line` (indented like the line it replaces). Nothing else in the file
/// changes; when every such line already reads `line`, nothing is written. The write is atomic
/// and keeps the file's mode and owner. Fails when no line matches, so a typo in the prefix
/// is an error, not a silent no-op. Output: `path`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "ReplaceLineArgs", bound = "")]
pub struct ReplaceLineArgs<S: Stage = Sealed> {
    /// Absolute path of the file on the host; it must exist.
    pub path: S::Of<AbsolutePath>,
    /// The start of the lines to replace, after their leading whitespace, e.g. "server:".
    pub starts_with: String,
    /// The new text of those lines, without indentation, e.g. "server: https://10.0.0.10:6443".
    pub line: String,
}

contract::resolve_struct!(ReplaceLineArgs<S> { path, starts_with, line });

impl<S: Stage> Validate for ReplaceLineArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if self.starts_with.trim().is_empty() {
            return Err(ArgsError::invalid("starts_with", "starts_with must not be empty"));
        }
        if self.line.contains('\n') || self.starts_with.contains('\n') {
            return Err(ArgsError::invalid("line", "line and starts_with are single lines"));
        }
        Ok(self)
    }
}

/// The new content, or `None` when no line matches.
fn replaced(text: &str, starts_with: &str, line: &str) -> Option<String> {
    let mut matched = false;
    let mut out = String::with_capacity(text.len());
    for original in text.split_inclusive('\n') {
        let body = original.trim_start_matches([' ', '\t']);
        if body.starts_with(starts_with) {
            matched = true;
            let indent = &original[..original.len() - body.len()];
            let newline = if original.ends_with('\n') { "\n" } else { "" };
            out.push_str(&format!("{indent}{line}{newline}"));
        } else {
            out.push_str(original);
        }
    }
    matched.then_some(out)
}

/// The `replace_line` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct ReplaceLine {
    args: ReplaceLineArgs<Resolved>,
}

impl ReplaceLine {
    pub fn new(args: ReplaceLineArgs<Resolved>) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for ReplaceLine {
    fn name(&self) -> &'static str {
        "replace_line"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let Some(current) = remote::stat(cx.host, &args.path).await? else {
            return Err(ModuleError::Refused(format!("{} does not exist", args.path)));
        };
        let before = remote::read(cx.host, &args.path).await?;
        let text = String::from_utf8(before)
            .map_err(|_| ModuleError::Refused(format!("{} is not a text file", args.path)))?;
        let after = replaced(&text, &args.starts_with, &args.line).ok_or_else(|| {
            ModuleError::Refused(format!("no line of {} starts with {:?}", args.path, args.starts_with))
        })?;
        let mut plan = file::plan_content(
            cx.host,
            &args.path,
            Some(current),
            after.as_bytes(),
            &WantedAttrs::default(),
            cx.options,
        )
        .await?;
        plan.outputs.insert("path".into(), Value::String(args.path.to_string()));
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_matching_lines_keeping_indentation() {
        let text = "clusters:\n- cluster:\n    server: https://10.77.0.21:6443\n  name: k\n";
        let new = replaced(text, "server:", "server: https://10.77.0.10:6443").unwrap();
        assert_eq!(new, "clusters:\n- cluster:\n    server: https://10.77.0.10:6443\n  name: k\n");
        assert_eq!(replaced(&new, "server:", "server: https://10.77.0.10:6443").unwrap(), new);
        assert_eq!(replaced(text, "nope:", "x"), None);
        assert_eq!(replaced("server: a", "server:", "server: b").unwrap(), "server: b");
    }
}
