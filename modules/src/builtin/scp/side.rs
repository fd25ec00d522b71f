//! The two ends of a copy: the controller, the task's host, or another host of the run.
//!
//! Every side is a [`Host`], the controller too (a [`LocalHost`]): each side is listed, read
//! and written by the same commands, so a controller file is replaced atomically (temporary
//! file, fsync, rename) like any host's, and hostile names get the same quoting.

use std::collections::BTreeSet;
use std::sync::Arc;

use contract::error::ModuleError;
use contract::host::{Exec, Host};
use contract::local::{CONTROLLER, LocalHost};
use contract::remote::{self, Attrs, run_checked};
use contract::shell::join;

use contract::untrusted::Malformed;

use super::listing::{
    Listing, ListingError, dest_command, dest_stdin, find_root, listing_of, parse_listing, source_command,
};

/// Where files are read or written.
#[derive(Clone)]
pub(super) enum Side {
    /// The machine engine runs on. Relative paths are from its working directory.
    Controller(LocalHost),
    /// The host the task runs on (the one `apply` is given).
    TaskHost,
    /// Another host of the run.
    Peer { name: String, host: Arc<dyn Host> },
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Controller(_) => f.write_str("Controller"),
            Side::TaskHost => f.write_str("TaskHost"),
            Side::Peer { name, .. } => write!(f, "Peer({name})"),
        }
    }
}

impl Side {
    pub(super) fn host<'a>(&'a self, task_host: &'a dyn Host) -> &'a dyn Host {
        match self {
            Side::Controller(local) => local,
            Side::TaskHost => task_host,
            Side::Peer { host, .. } => host.as_ref(),
        }
    }

    pub(super) fn label(&self, task_host: &dyn Host) -> String {
        match self {
            Side::Controller(_) => CONTROLLER.to_owned(),
            Side::TaskHost => task_host.name().to_owned(),
            Side::Peer { name, .. } => name.clone(),
        }
    }

    /// How `path` on this side is named in changes and errors: `controller:PATH` for the
    /// controller, the bare path on the task's host.
    pub(super) fn name(&self, path: &str) -> String {
        match self {
            Side::Controller(_) => format!("{CONTROLLER}:{path}"),
            _ => path.to_owned(),
        }
    }

    /// Lists `roots` and every regular file under them, in one command. Which listed paths
    /// are confined to the roots is [`super::transfer::pair_up`]'s to check.
    pub(super) async fn list_sources(
        &self,
        task_host: &dyn Host,
        roots: &[String],
    ) -> Result<Listing, ModuleError> {
        let label = self.label(task_host);
        let listed: Vec<String> = roots.iter().map(|r| find_root(r)).collect();
        let out = run_checked(self.host(task_host), Exec::new(source_command(&listed))).await;
        let out = out.map_err(|e| self.context(format!("cannot list {}", roots.join(" ")), e))?;
        let listing = parse_listing(&out.stdout, self.place()).map_err(|e| match e {
            ListingError::Malformed(m) => m.on(&label, listing_of(&roots.join(" "))).into(),
            not_utf8 => ModuleError::Refused(format!("cannot list {label}:{}: {not_utf8}", roots.join(" "))),
        })?;
        Ok(listing.named_as_given())
    }

    /// Lists what the copy would find at its destination: the directories `dirs` and the
    /// files `files`, in one command. `dest` names the destination in errors. A listing that
    /// names anything else is refused.
    pub(super) async fn list_dest(
        &self,
        task_host: &dyn Host,
        dest: &str,
        dirs: &BTreeSet<String>,
        files: &[&str],
    ) -> Result<Listing, ModuleError> {
        let exec = Exec::new(dest_command()).stdin(dest_stdin(dirs, files));
        let out = run_checked(self.host(task_host), exec)
            .await
            .map_err(|e| self.context(format!("cannot list {dest}"), e))?;
        let label = self.label(task_host);
        let what = || listing_of(dest);
        let listing = parse_listing(&out.stdout, self.place()).map_err(|e| match e {
            ListingError::Malformed(m) => m.on(&label, what()).into(),
            not_utf8 => ModuleError::Refused(format!("cannot list {dest} on {label}: {not_utf8}")),
        })?;
        let asked = |path: &String| dirs.contains(path) || files.contains(&path.as_str());
        if let Some(path) = listing.kinds.keys().chain(listing.files.keys()).find(|p| !asked(p)) {
            return Err(Malformed::new(path, "a path that was not asked about").on(&label, what()).into());
        }
        Ok(listing)
    }

    pub(super) async fn read(&self, task_host: &dyn Host, path: &str) -> Result<Vec<u8>, ModuleError> {
        remote::read(self.host(task_host), path)
            .await
            .map_err(|e| self.context(format!("cannot read {path}"), e))
    }

    /// Creates the directories `dirs` (and their missing parents), in one command.
    pub(super) async fn mkdirs(&self, task_host: &dyn Host, dirs: &[String]) -> Result<(), ModuleError> {
        let command = format!("mkdir -p -- {}", join(dirs));
        run_checked(self.host(task_host), Exec::new(command))
            .await
            .map_err(|e| self.context(format!("cannot create {}", dirs.join(" ")), e))?;
        Ok(())
    }

    /// Replaces `path` with `content` atomically, with `attrs`.
    pub(super) async fn write(
        &self,
        task_host: &dyn Host,
        path: &str,
        content: &[u8],
        attrs: &Attrs,
    ) -> Result<(), ModuleError> {
        remote::write_atomic(self.host(task_host), path, content, &self.settable(attrs))
            .await
            .map_err(|e| self.context(format!("cannot write {path}"), e))
    }

    pub(super) async fn set_attrs(
        &self,
        task_host: &dyn Host,
        path: &str,
        attrs: &Attrs,
    ) -> Result<(), ModuleError> {
        remote::set_attrs(self.host(task_host), path, &self.settable(attrs))
            .await
            .map_err(|e| self.context(format!("cannot chmod {path}"), e))
    }

    /// The attributes this side sets. The controller's files keep engine's own user and group:
    /// `to_controller` takes no owner or group, and a replaced file is not given back its old
    /// owner (engine may not be allowed to, and never did); only the mode is set there.
    fn settable(&self, attrs: &Attrs) -> Attrs {
        match self {
            Side::Controller(_) => Attrs { mode: attrs.mode, owner: None, group: None },
            _ => attrs.clone(),
        }
    }

    /// Where a listed name is, for the message refusing it: hosts' names are absolute paths
    /// whose host the task names; the controller's are said to be on the controller.
    fn place(&self) -> &'static str {
        match self {
            Side::Controller(_) => " on the controller",
            _ => "",
        }
    }

    /// A failed command on the controller says so (the task is another host's, and its
    /// errors would seem to be that host's); errors on hosts are left as they are.
    fn context(&self, what: String, error: ModuleError) -> ModuleError {
        match self {
            Side::Controller(_) => {
                ModuleError::Refused(format!("{what} on the controller: {}", error.reason()))
            }
            _ => error,
        }
    }
}
