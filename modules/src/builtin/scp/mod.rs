//! `scp`: copies files between machines, the controller relaying the bytes, so hosts never
//! need SSH trust between each other.
//!
//! ```text
//!   source side                 controller                  destination side
//!   (a peer host, the           (runs engine)               (the task's host, or the
//!    controller, or the                                      controller for to_controller)
//!    task's host)
//!   list: sha256+mode ──────►  pair up, compare  ◄────────  list: sha256+mode+owner
//!   (one round trip)           decide what to send          (one round trip)
//!   cat one file ───────────►  verify sha256  ────────────► write_atomic (per sent file)
//! ```
//!
//! Planning lists both sides (one command each) and sends nothing; the action sends exactly
//! the files whose checksum differs, re-checking each one's SHA-256 as it relays it.
//!
//! **The source host is not trusted** (it may be compromised; see `contract::untrusted`): its
//! listing decides which files are written where, on the controller (`to_controller`) or on a
//! peer (`from: <host>`). So every record of a listing is checked ([`listing`]): its shape,
//! its mode (the raw mode's type bits must say "regular file"), size, owner and checksum; and
//! every listed path must be a root that was asked for, or a plain relative path under one
//! (no `..`, `.` or empty component, [`transfer`]), so a copy never writes outside its
//! destination. A listing that breaks any rule fails the task with an
//! [`OutputError`](contract::untrusted::OutputError) naming the host and the offending entry,
//! made printable. Modes: without `mode`, a copy keeps its source's permission bits except
//! setuid, setgid, sticky and write-for-others ([`CARRIED_MODE_BITS`]); a `mode` given by the
//! task is used as given.
//!
//! The parts:
//!
//! - [`args`]: [`ScpArgs`], as playbooks write them, checked before anything runs.
//! - [`side`]: where files are read or written: the controller, the task's host, a peer;
//!   every side is a [`Host`](contract::Host) (the controller a [`LocalHost`]), so every side's
//!   files go through the same `remote` helpers.
//! - [`listing`]: the one listing command per side, and parsing (checking) its answer.
//! - [`glob`]: the `exclude` patterns.
//! - [`transfer`]: confining the listed paths to the sources, and pairing every source file
//!   with its destination.
//! - this file: [`Scp`], the module, whose `plan` lists both sides and decides what to send.
//! - [`action`]: the planned copy, applied.
//! - `tests.rs`: the module planned and applied on this machine, the controller's side
//!   included (local hosts in scratch folders), and against a host whose listing is hostile.

mod action;
mod args;
mod glob;
mod listing;
mod side;
mod transfer;

use async_trait::async_trait;
use contract::arg::Resolved;
use contract::diff::unified_diff;
use contract::error::ModuleError;
use contract::local::LocalHost;
use contract::module::{Context, Module, Outputs, Plan};
use contract::remote::{FileKind, FileStat};
use serde_json::Value;

use self::action::{ScpAction, Write};
pub use self::args::{Paths, ScpArgs};
use self::listing::Kind;
use self::side::Side;
use self::transfer::{needed_dirs, normalize, pair_up};
use crate::builtin::file::{ContentChange, WantedAttrs, content_change};

/// The `from` value that names the machine engine runs on.
pub use contract::local::CONTROLLER;

/// The permission bits a copy carries over from its source when the task gives no `mode`:
/// setuid, setgid and sticky (0o7000) and write-for-others (0o002) are left out, so a source
/// host cannot plant a setuid or world-writable file on the controller or a peer. A task
/// that wants them says so with `mode`.
pub const CARRIED_MODE_BITS: u32 = 0o775;

/// The `scp` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Scp {
    args: ScpArgs<Resolved>,
    /// The controller's side of a copy (`from: "controller"`, `to_controller`).
    controller: LocalHost,
}

impl Scp {
    pub fn new(args: ScpArgs<Resolved>) -> Self {
        Self { args, controller: LocalHost::controller() }
    }

    /// Reads and writes the controller's files through `controller` (for tests: one working
    /// in a scratch folder).
    #[cfg(test)]
    fn with_controller(mut self, controller: LocalHost) -> Self {
        self.controller = controller;
        self
    }

    /// The source and destination sides, and the destination root.
    fn sides(&self, cx: &Context<'_>) -> Result<(Side, Side, String), ModuleError> {
        let args = &self.args;
        let controller = || Side::Controller(self.controller.clone());
        if let Some(local) = &args.to_controller {
            return Ok((Side::TaskHost, controller(), local.clone()));
        }
        let dest = args.dest.as_ref().map(|d| d.to_string()).unwrap_or_default();
        match args.from.as_deref() {
            Some(CONTROLLER) | None => Ok((controller(), Side::TaskHost, dest)),
            Some(name) => {
                let host = cx.peers.peer(name).ok_or_else(|| {
                    ModuleError::Refused(format!(
                        "cannot copy from {name:?}: no such host in this run (check the inventory and --limit)"
                    ))
                })?;
                Ok((Side::Peer { name: name.to_owned(), host }, Side::TaskHost, dest))
            }
        }
    }
}

#[async_trait]
impl Module for Scp {
    fn name(&self) -> &'static str {
        "scp"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let (source, dest_side, dest) = self.sides(cx)?;
        let source_label = source.label(cx.host);
        let roots: Vec<String> = args.src.list().iter().map(|s| normalize(s)).collect();

        // One round trip to the source: what the roots are, every file's checksum and mode.
        let sources = source.list_sources(cx.host, &roots).await?;
        let copies = pair_up(&roots, &dest, &sources, &args.exclude, &source_label)?;

        // One round trip to the destination: the directories above, and every file's state.
        let dirs = needed_dirs(&copies);
        let dest_paths: Vec<&str> = copies.iter().map(|c| c.dest.as_str()).collect();
        let current = dest_side.list_dest(cx.host, &dest, &dirs, &dest_paths).await?;

        let dest_label = |path: &str| dest_side.name(path);
        let mut changes = Vec::new();
        let mut mkdirs = Vec::new();
        for dir in &dirs {
            match current.kinds.get(dir) {
                Some(Kind::Dir) => {}
                Some(_) => {
                    return Err(ModuleError::Refused(format!(
                        "{} exists and is not a directory",
                        dest_label(dir)
                    )));
                }
                None => {
                    changes.push(format!("create directory {}", dest_label(dir)));
                    mkdirs.push(dir.clone());
                }
            }
        }
        let mut writes = Vec::new();
        let mut set_attrs = Vec::new();
        let mut diff = String::new();
        for copy in &copies {
            let stat = match (current.files.get(&copy.dest), current.kinds.get(&copy.dest)) {
                (Some(e), _) => Some(FileStat {
                    kind: FileKind::File,
                    mode: e.mode,
                    owner: e.owner.clone(),
                    group: e.group.clone(),
                    sha256: Some(e.sha256.clone()),
                }),
                (None, Some(_)) => Some(FileStat {
                    kind: FileKind::Other,
                    mode: 0,
                    owner: String::new(),
                    group: String::new(),
                    sha256: None,
                }),
                (None, None) => None,
            };
            let wanted = WantedAttrs {
                mode: Some(args.mode.map_or(copy.entry.mode & CARRIED_MODE_BITS, |m| m.0)),
                owner: args.owner.clone(),
                group: args.group.clone(),
            };
            let (change, attr_lines) =
                content_change(&dest_label(&copy.dest), stat.as_ref(), &copy.entry.sha256, &wanted, 0o644)?;
            let attr_lines = attr_lines.into_iter().map(|l| format!("{}: {l}", dest_label(&copy.dest)));
            match change {
                ContentChange::None => {}
                ContentChange::SetAttrs(attrs) => {
                    changes.extend(attr_lines);
                    set_attrs.push((copy.dest.clone(), attrs));
                }
                ContentChange::Write { attrs, create } => {
                    changes.push(format!(
                        "send {source_label}:{} -> {} ({} bytes, {})",
                        copy.src,
                        dest_label(&copy.dest),
                        copy.entry.size,
                        if create { "new" } else { "content differs" }
                    ));
                    changes.extend(attr_lines);
                    let mut content = None;
                    if cx.options.diff {
                        let after = source.read(cx.host, &copy.src).await?;
                        let before =
                            if create { None } else { Some(dest_side.read(cx.host, &copy.dest).await?) };
                        let shown = dest_label(&copy.dest);
                        // Redacts content holding a private key.
                        diff.push_str(&unified_diff(&shown, before.as_deref(), &after));
                        content = Some(after);
                    }
                    writes.push(Write {
                        src: copy.src.clone(),
                        dest: copy.dest.clone(),
                        sha256: copy.entry.sha256.clone(),
                        attrs,
                        content,
                    });
                }
            }
        }

        let mut outputs = Outputs::new();
        outputs.insert(
            "files".into(),
            Value::Array(copies.iter().map(|c| Value::String(c.dest.clone())).collect()),
        );
        if changes.is_empty() {
            outputs.insert("sent".into(), Value::from(0));
            return Ok(Plan { outputs, ..Plan::unchanged() });
        }
        Ok(Plan {
            changes,
            diff: (cx.options.diff && !diff.is_empty()).then_some(diff),
            outputs,
            action: Some(Box::new(ScpAction { source, dest: dest_side, mkdirs, writes, set_attrs })),
        })
    }
}

/// What planning makes of a source listing of `roots` (`bytes`, as the source host printed
/// it), copied to `dest`: every destination path, or why the listing is refused. For
/// [`crate::fuzz`], which checks that no destination leaves `dest`.
pub(crate) fn destinations(bytes: &[u8], roots: &[String], dest: &str) -> Result<Vec<String>, ModuleError> {
    let listing =
        listing::parse_listing(bytes, "").map_err(|e| ModuleError::Refused(e.to_string()))?.named_as_given();
    let copies = pair_up(roots, dest, &listing, &[], "source")?;
    Ok(copies.into_iter().map(|c| c.dest).collect())
}

/// A destination listing, parsed (for [`crate::fuzz`]).
pub(crate) fn parse_dest_listing(bytes: &[u8]) -> Result<usize, ModuleError> {
    let listing = listing::parse_listing(bytes, "").map_err(|e| ModuleError::Refused(e.to_string()))?;
    Ok(listing.kinds.len() + listing.files.len())
}

#[cfg(test)]
mod tests;
