//! `file`: a file with given content, a directory, or nothing at a path; with mode and owner.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::diff::unified_diff;
use contract::error::{ArgsError, ModuleError};
use contract::host::Host;
use contract::mode::Mode;
use contract::module::{Action, Context, Module, Outputs, Plan, PlanOptions};
use contract::remote::{self, Attrs, FileKind, FileStat};

use crate::validate::Validate;

/// Manages one path on the host: a file with the given content, a directory, or nothing.
/// Output: `path`. Writes are atomic (temporary file, fsync, rename), and mode and owner are set before the rename.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "FileArgs", bound = "")]
pub struct FileArgs<S: Stage = Sealed> {
    /// Absolute path on the host.
    pub path: S::Of<AbsolutePath>,
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

contract::resolve_struct!(FileArgs<S> { path, state, content, mode, owner, group });
contract::resolve_as_is!(FileState);

impl<S: Stage> Validate for FileArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if self.state != FileState::File && self.content.is_some() {
            return Err(ArgsError::invalid("content", "content is only allowed with state: file"));
        }
        if self.state == FileState::Absent
            && (self.mode.is_some() || self.owner.is_some() || self.group.is_some())
        {
            let given = [
                ("mode", self.mode.is_some()),
                ("owner", self.owner.is_some()),
                ("group", self.group.is_some()),
            ];
            let first = given.iter().find(|(_, set)| *set).map_or("", |(name, _)| name);
            return Err(ArgsError::invalid(first, "mode, owner and group make no sense with state: absent"));
        }
        Ok(self)
    }
}

impl FileArgs<Resolved> {
    fn wanted(&self) -> WantedAttrs {
        WantedAttrs { mode: self.mode.map(|m| m.0), owner: self.owner.clone(), group: self.group.clone() }
    }
}

/// The mode and owner a managed file should have; `None` leaves that attribute alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WantedAttrs {
    pub(crate) mode: Option<u32>,
    pub(crate) owner: Option<String>,
    pub(crate) group: Option<String>,
}

impl WantedAttrs {
    /// The attributes to set on a path in state `current` (`None`: about to be created, which
    /// gets `default_mode` unless a mode is asked), and one line per change to an existing path.
    pub(crate) fn to_set(&self, current: Option<&FileStat>, default_mode: u32) -> (Attrs, Vec<String>) {
        let mut attrs = Attrs::default();
        let mut changes = Vec::new();
        let mode = self.mode.or(current.is_none().then_some(default_mode));
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

/// What bringing a regular file to a wanted content and attributes takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContentChange {
    /// Content and attributes are as wanted.
    None,
    /// Only mode or owner differ: set them in place.
    SetAttrs(Attrs),
    /// The content differs or the file is missing: write it, then set these attributes.
    /// For an existing file they include its current mode and owner, since the atomic
    /// rewrite replaces the inode.
    Write { attrs: Attrs, create: bool },
}

/// Decides, from the current state alone (no I/O), what it takes for `path` to hold content
/// whose hex SHA-256 is `wanted_sha`, with `wanted` attributes. The returned lines name the
/// attribute changes of an existing file; the caller words the content change itself.
pub(crate) fn content_change(
    path: &str,
    current: Option<&FileStat>,
    wanted_sha: &str,
    wanted: &WantedAttrs,
    default_mode: u32,
) -> Result<(ContentChange, Vec<String>), ModuleError> {
    if let Some(c) = current
        && c.kind != FileKind::File
    {
        return Err(ModuleError::Refused(format!(
            "{path} exists and is not a regular file; remove it first (state: absent)"
        )));
    }
    let (mut attrs, changes) = wanted.to_set(current, default_mode);
    let content_differs = current.is_none_or(|c| c.sha256.as_deref() != Some(wanted_sha));
    let change = match current {
        Some(_) if !content_differs && attrs == Attrs::default() => ContentChange::None,
        Some(_) if !content_differs => ContentChange::SetAttrs(attrs),
        None => ContentChange::Write { attrs, create: true },
        Some(c) => {
            attrs.mode = attrs.mode.or(Some(c.mode));
            attrs.owner = attrs.owner.or(Some(c.owner.clone()));
            attrs.group = attrs.group.or(Some(c.group.clone()));
            ContentChange::Write { attrs, create: false }
        }
    };
    Ok((change, changes))
}

/// Plans `path` (currently `current`) to hold exactly `content` with `wanted` attributes, the
/// way `file` with `content` does: compare SHA-256, atomic write, mode and owner, and a unified
/// diff when asked. `template` renders its text, then calls this.
/// [`plan_content`] for a file the module owns whole (its state read here), with default
/// attributes: what `sysctl` and `modprobe` keep in their configuration files.
pub(crate) async fn plan_owned_file(
    host: &dyn Host,
    path: &str,
    content: &[u8],
    options: PlanOptions,
) -> Result<Plan, ModuleError> {
    let current = remote::stat(host, path).await?;
    plan_content(host, path, current, content, &WantedAttrs::default(), options).await
}

pub(crate) async fn plan_content(
    host: &dyn Host,
    path: &str,
    current: Option<FileStat>,
    content: &[u8],
    wanted: &WantedAttrs,
    options: PlanOptions,
) -> Result<Plan, ModuleError> {
    let wanted_sha = contract::diff::sha256_hex(content);
    let (change, mut changes) = content_change(path, current.as_ref(), &wanted_sha, wanted, 0o644)?;
    let path = path.to_owned();
    match change {
        ContentChange::None => Ok(Plan::unchanged()),
        ContentChange::SetAttrs(attrs) => Ok(Plan {
            changes,
            action: Some(Box::new(FileAction::SetAttrs { path, attrs })),
            ..Plan::default()
        }),
        ContentChange::Write { attrs, create } => {
            let mut diff = None;
            if create {
                changes.insert(0, format!("create {path} ({} bytes)", content.len()));
                if options.diff {
                    diff = Some(unified_diff(&path, None, content));
                }
            } else {
                changes.insert(0, format!("content of {path} ({} bytes)", content.len()));
                if options.diff {
                    let before = remote::read(host, &path).await?;
                    diff = Some(unified_diff(&path, Some(&before), content));
                }
            }
            Ok(Plan {
                changes,
                diff,
                action: Some(Box::new(FileAction::Write { path, content: content.to_vec(), attrs })),
                ..Plan::default()
            })
        }
    }
}

/// The `file` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct File {
    args: FileArgs<Resolved>,
}

impl File {
    pub fn new(args: FileArgs<Resolved>) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.path.to_string()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let mut plan = self.plan_path(cx.host, cx.options).await?;
        plan.outputs.insert("path".into(), serde_json::Value::String(self.args.path.to_string()));
        Ok(plan)
    }
}

impl File {
    async fn plan_path(&self, host: &dyn Host, options: PlanOptions) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let current = remote::stat(host, &args.path).await?;
        let path = args.path.to_string();
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
                let (attrs, mut changes) = args.wanted().to_set(current.as_ref(), 0o755);
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
        let path = args.path.to_string();
        if let Some(content) = &args.content {
            return plan_content(host, &path, current, content.as_bytes(), &args.wanted(), options).await;
        }
        if let Some(c) = &current
            && c.kind != FileKind::File
        {
            return Err(ModuleError::Refused(format!(
                "{path} exists and is not a regular file; remove it first (state: absent)"
            )));
        }
        let Some(current) = current else {
            return Err(ModuleError::Refused(format!(
                "{path} does not exist and no content was given to create it"
            )));
        };
        let (attrs, changes) = args.wanted().to_set(Some(&current), 0o644);
        Ok(if attrs == Attrs::default() {
            Plan::unchanged()
        } else {
            Plan { changes, action: Some(Box::new(FileAction::SetAttrs { path, attrs })), ..Plan::default() }
        })
    }
}

/// Exactly one planned change to a path.
enum FileAction {
    Write { path: String, content: Vec<u8>, attrs: Attrs },
    SetAttrs { path: String, attrs: Attrs },
    Mkdir { path: String, attrs: Attrs },
    Remove { path: String },
}

impl std::fmt::Debug for FileAction {
    /// Never shows content: it may be a private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileAction::Write { path, content, attrs } => {
                write!(f, "Write {{ path: {path:?}, content: <{} bytes>, attrs: {attrs:?} }}", content.len())
            }
            FileAction::SetAttrs { path, attrs } => {
                write!(f, "SetAttrs {{ path: {path:?}, attrs: {attrs:?} }}")
            }
            FileAction::Mkdir { path, attrs } => write!(f, "Mkdir {{ path: {path:?}, attrs: {attrs:?} }}"),
            FileAction::Remove { path } => write!(f, "Remove {{ path: {path:?} }}"),
        }
    }
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
