//! `file`: a file with given content, a directory, or nothing at a path; with mode and owner.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::diff::unified_diff;
use crate::error::ModuleError;
use crate::host::Host;
use crate::mode::Mode;
use crate::module::{Action, Context, Module, Outputs, Plan, PlanOptions};
use crate::remote::{self, Attrs, FileKind, FileStat};

/// Manages one path on the host: a file with the given content, a directory, or nothing.
/// Output: `path`. Writes are atomic (temporary file, fsync, rename), and mode and owner are set before the rename.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileArgs {
    /// Absolute path on the host.
    pub path: String,
    /// What should be at `path`.
    #[serde(default)]
    pub state: FileState,
    /// The file's full content. Without it, `state: file` only manages mode and owner of an existing file.
    pub content: Option<String>,
    /// Permission bits as an octal string, e.g. "0644". New files default to "0644", new directories to "0755".
    #[schemars(with = "Option<String>")]
    pub mode: Option<Mode>,
    /// Owning user name.
    pub owner: Option<String>,
    /// Owning group name.
    pub group: Option<String>,
}

/// What should be at a path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// A regular file.
    #[default]
    File,
    /// A directory (parents are created too).
    Directory,
    /// Nothing: the path is removed, recursively for a directory.
    Absent,
}

impl FileArgs {
    pub(crate) fn validate(self) -> Result<Self, String> {
        if !self.path.starts_with('/') {
            return Err(format!("path must be absolute, got {:?}", self.path));
        }
        if self.state != FileState::File && self.content.is_some() {
            return Err("content is only allowed with state: file".into());
        }
        if self.state == FileState::Absent
            && (self.mode.is_some() || self.owner.is_some() || self.group.is_some())
        {
            return Err("mode, owner and group make no sense with state: absent".into());
        }
        Ok(self)
    }

    fn wanted_attrs(&self, current: Option<&FileStat>, default_mode: u32) -> (Attrs, Vec<String>) {
        let mut attrs = Attrs::default();
        let mut changes = Vec::new();
        let mode = self.mode.map(|m| m.0).or(current.is_none().then_some(default_mode));
        if let Some(mode) = mode
            && current.is_none_or(|c| c.mode != mode)
        {
            if let Some(c) = current {
                changes.push(format!("mode {:04o} -> {mode:04o}", c.mode));
            }
            attrs.mode = Some(mode);
        }
        if let Some(owner) = &self.owner
            && current.is_none_or(|c| &c.owner != owner)
        {
            if let Some(c) = current {
                changes.push(format!("owner {} -> {owner}", c.owner));
            }
            attrs.owner = Some(owner.clone());
        }
        if let Some(group) = &self.group
            && current.is_none_or(|c| &c.group != group)
        {
            if let Some(c) = current {
                changes.push(format!("group {} -> {group}", c.group));
            }
            attrs.group = Some(group.clone());
        }
        (attrs, changes)
    }
}

/// The `file` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct File {
    args: FileArgs,
}

impl File {
    pub fn new(args: FileArgs) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let mut plan = self.plan_path(cx.host, cx.options).await?;
        plan.outputs.insert("path".into(), serde_json::Value::String(self.args.path.clone()));
        Ok(plan)
    }
}

impl File {
    async fn plan_path(&self, host: &dyn Host, options: PlanOptions) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let current = remote::stat(host, &args.path).await?;
        let path = args.path.clone();
        match args.state {
            FileState::Absent => Ok(match current {
                None => Plan::unchanged(),
                Some(_) => Plan {
                    changes: vec![format!("remove {path}")],
                    action: Some(Box::new(FileAction::Remove { path })),
                    ..Plan::default()
                },
            }),
            FileState::Directory => {
                if let Some(c) = &current
                    && c.kind != FileKind::Directory
                {
                    return Err(ModuleError::Refused(format!(
                        "{path} exists and is not a directory; remove it first (state: absent)"
                    )));
                }
                let (attrs, mut changes) = args.wanted_attrs(current.as_ref(), 0o755);
                Ok(match current {
                    None => Plan {
                        changes: vec![format!("create directory {path}")],
                        action: Some(Box::new(FileAction::Mkdir { path, attrs })),
                        ..Plan::default()
                    },
                    Some(_) if attrs == Attrs::default() => Plan::unchanged(),
                    Some(_) => {
                        changes.sort();
                        Plan {
                            changes,
                            action: Some(Box::new(FileAction::SetAttrs { path, attrs })),
                            ..Plan::default()
                        }
                    }
                })
            }
            FileState::File => self.plan_file(host, current, options).await,
        }
    }

    async fn plan_file(
        &self,
        host: &dyn Host,
        current: Option<FileStat>,
        options: PlanOptions,
    ) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let path = args.path.clone();
        if let Some(c) = &current
            && c.kind != FileKind::File
        {
            return Err(ModuleError::Refused(format!(
                "{path} exists and is not a regular file; remove it first (state: absent)"
            )));
        }
        let Some(content) = &args.content else {
            let Some(current) = current else {
                return Err(ModuleError::Refused(format!(
                    "{path} does not exist and no content was given to create it"
                )));
            };
            let (attrs, changes) = args.wanted_attrs(Some(&current), 0o644);
            return Ok(if attrs == Attrs::default() {
                Plan::unchanged()
            } else {
                Plan {
                    changes,
                    action: Some(Box::new(FileAction::SetAttrs { path, attrs })),
                    ..Plan::default()
                }
            });
        };
        let wanted_sha = crate::diff::sha256_hex(content.as_bytes());
        let content_changes = current.as_ref().is_none_or(|c| c.sha256.as_deref() != Some(&wanted_sha));
        let (mut attrs, mut changes) = args.wanted_attrs(current.as_ref(), 0o644);
        if !content_changes {
            return Ok(if attrs == Attrs::default() {
                Plan::unchanged()
            } else {
                Plan {
                    changes,
                    action: Some(Box::new(FileAction::SetAttrs { path, attrs })),
                    ..Plan::default()
                }
            });
        }
        let mut diff = None;
        if let Some(c) = &current {
            changes.insert(0, format!("content of {path} ({} bytes)", content.len()));
            // A rewrite replaces the inode: keep the mode and owner that are not asked to change.
            attrs.mode = attrs.mode.or(Some(c.mode));
            attrs.owner = attrs.owner.or(Some(c.owner.clone()));
            attrs.group = attrs.group.or(Some(c.group.clone()));
            if options.diff {
                let before = remote::read(host, &path).await?;
                diff = Some(unified_diff(&path, Some(&before), content.as_bytes()));
            }
        } else {
            changes.insert(0, format!("create {path} ({} bytes)", content.len()));
            if options.diff {
                diff = Some(unified_diff(&path, None, content.as_bytes()));
            }
        }
        Ok(Plan {
            changes,
            diff,
            action: Some(Box::new(FileAction::Write { path, content: content.clone().into_bytes(), attrs })),
            ..Plan::default()
        })
    }
}

/// Exactly one planned change to a path.
#[derive(Debug)]
enum FileAction {
    Write { path: String, content: Vec<u8>, attrs: Attrs },
    SetAttrs { path: String, attrs: Attrs },
    Mkdir { path: String, attrs: Attrs },
    Remove { path: String },
}

#[async_trait]
impl Action for FileAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        match *self {
            FileAction::Write { path, content, attrs } => {
                remote::write_atomic(host, &path, &content, &attrs).await?
            }
            FileAction::SetAttrs { path, attrs } => remote::set_attrs(host, &path, &attrs).await?,
            FileAction::Mkdir { path, attrs } => remote::mkdir(host, &path, &attrs).await?,
            FileAction::Remove { path } => remote::remove(host, &path).await?,
        }
        Ok(Outputs::new())
    }
}
