//! `unarchive`: a tar or zip archive, on the host or on the controller, extracted into a
//! directory on the host, once.
//!
//! Planning reads the archive's listing (`tar -tv` with C-quoted names, or zipinfo's short
//! format with each symbolic link's target read by `unzip -p`; both parsed as hostile input,
//! [`listing`]), checks every member stays inside the destination once `strip_components` is
//! applied (no `..`, no absolute name, no symbolic link pointing out, no member reached through
//! a symbolic link; [`landing`]), and compares with the manifest the last extraction left
//! (`DEST/.engine-unarchive-<hash of src>.json`: the archive's SHA-256, the options, and each
//! extracted file's SHA-256, checked against the files on disk). Applying ([`extract`])
//! uploads the archive first when it is on the controller, extracts, hashes what it extracted,
//! and writes the manifest.
//!
//! ```text
//!   src on the host:        stat + list on the host ──► extract on the host
//!   src on the controller:  stat + list on the controller ──► upload (0600 temp file in DEST,
//!                           size and SHA-256 checked) + extract on the host, temp file removed
//! ```

mod extract;
mod landing;
mod listing;

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::extract::Extract;
use self::landing::landings;
use self::listing::{Kind, Member};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::local::{CONTROLLER, LocalHost};
use contract::module::{Context, Module, Plan};
use contract::remote::{self, FileKind, run_checked};
use contract::shell::{join, quote};

/// Extracts an archive into `dest` on the host (made when missing), once: a tar archive
/// (`.tar`, `.tar.gz`/`.tgz`, `.tar.xz`/`.txz`, `.tar.bz2`/`.tbz2`, `.tar.zst`) or a zip
/// archive (`.zip`, which needs `unzip` on the host, as Ansible's does). The archive is a
/// file on the host, or with `from_controller: true` a file on the controller (Ansible's
/// `remote_src: false`), which is uploaded to a temporary file (mode 0600) in `dest`, checked
/// against its SHA-256, extracted and removed. The extraction is recorded in
/// `DEST/.engine-unarchive-<hash>.json` (the archive's SHA-256, the options, and the SHA-256 of
/// every extracted file), and nothing is extracted or uploaded again while the archive, the
/// options and those files are unchanged. An archive with a member that would land outside
/// `dest` (a `..` component, an absolute name, a symbolic link pointing outside, a member
/// under a symbolic link) is refused before anything is written. A host that lacks the
/// program an archive needs (`unzip`, `xz`, `bzip2`, `zstd`) is refused naming the package to
/// install. Files are owned by the user the task runs as.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "UnarchiveArgs", bound = "")]
pub struct UnarchiveArgs<S: Stage = Sealed> {
    /// The archive: an absolute path on the host, or with `from_controller` a path on the
    /// controller (relative paths are from engine's working directory). Its format is told by
    /// its name (`.zip`, else tar).
    pub src: S::Of<String>,
    /// Absolute path of the directory to extract into.
    pub dest: S::Of<AbsolutePath>,
    /// `src` is on the controller: upload it, then extract it on the host. Default false.
    #[serde(default)]
    pub from_controller: bool,
    /// Leading path components to drop from every member name, as `tar --strip-components`
    /// (zip archives too). Default 0.
    #[serde(default)]
    pub strip_components: u32,
    /// Only these members (names as the archive lists them; a directory brings what is under
    /// it, whether or not the archive holds an entry for the directory itself).
    pub include: Option<Vec<String>>,
}

contract::resolve_struct!(UnarchiveArgs<S> { src, dest, from_controller, strip_components, include });

/// How an archive is read, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// A tar archive, with the program (and its Debian package) its compression needs beyond
    /// tar and gzip.
    Tar(Option<(&'static str, &'static str)>),
    Zip,
}

impl Format {
    fn of(src: &str) -> Format {
        let name = src.to_ascii_lowercase();
        let ends = |suffixes: &[&str]| suffixes.iter().any(|s| name.ends_with(s));
        if ends(&[".zip"]) {
            Format::Zip
        } else if ends(&[".tar.xz", ".txz"]) {
            Format::Tar(Some(("xz", "xz-utils")))
        } else if ends(&[".tar.bz2", ".tbz2", ".tbz"]) {
            Format::Tar(Some(("bzip2", "bzip2")))
        } else if ends(&[".tar.zst", ".tzst"]) {
            Format::Tar(Some(("zstd", "zstd")))
        } else {
            Format::Tar(None)
        }
    }

    /// The program reading this format needs, and the package that has it.
    fn needs(self) -> Option<(&'static str, &'static str)> {
        match self {
            Format::Tar(needs) => needs,
            Format::Zip => Some(("unzip", "unzip")),
        }
    }
}

/// Characters unzip reads as a pattern in the archive's own name.
const ZIP_WILDCARDS: &[char] = &['*', '?', '[', ']', '\\'];

impl<S: Stage> Validate for UnarchiveArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if let Some(src) = S::known(&self.src) {
            if src.is_empty() || src.contains(['\n', '\0']) {
                return Err(ArgsError::invalid("src", "src must be one path"));
            }
            if !self.from_controller && !src.starts_with('/') {
                return Err(ArgsError::invalid(
                    "src",
                    format!(
                        "{src:?} is not an absolute path on the host (a file on the controller takes from_controller: true)"
                    ),
                ));
            }
            if Format::of(src) == Format::Zip && src.contains(ZIP_WILDCARDS) {
                return Err(ArgsError::invalid(
                    "src",
                    "a zip archive's path must not hold * ? [ ] or \\ (unzip reads them as a pattern)",
                ));
            }
        }
        if let Some(include) = &self.include {
            if include.is_empty() {
                return Err(ArgsError::invalid("include", "include must not be empty"));
            }
            for (i, name) in include.iter().enumerate() {
                if name.is_empty() || name.starts_with('-') || name.contains('\n') {
                    return Err(ArgsError::invalid(
                        format!("include[{i}]"),
                        format!("{name:?} is not a member name"),
                    ));
                }
            }
        }
        if self.strip_components > 64 {
            return Err(ArgsError::invalid("strip_components", "strip_components is at most 64"));
        }
        Ok(self)
    }
}

/// What the last extraction recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    archive_sha256: String,
    strip_components: u32,
    include: Option<Vec<String>>,
    /// Each extracted regular file, relative to the destination, and its SHA-256.
    files: BTreeMap<String, String>,
}

impl UnarchiveArgs<Resolved> {
    fn manifest_path(&self) -> String {
        let key = if self.from_controller { format!("{CONTROLLER}:{}", self.src) } else { self.src.clone() };
        let hash = contract::diff::sha256_hex(key.as_bytes());
        format!("{}/.engine-unarchive-{}.json", self.dest.trim_end_matches('/'), &hash[..16])
    }

    fn under_dest(&self, relative: &str) -> String {
        format!("{}/{relative}", self.dest.trim_end_matches('/'))
    }

    /// `src` as a command's operand: a relative controller path as `./PATH`, so that it
    /// never reads as an option.
    fn src_operand(&self) -> String {
        if self.src.starts_with('/') { self.src.clone() } else { format!("./{}", self.src) }
    }

    /// How messages name the archive.
    fn src_label(&self) -> String {
        if self.from_controller { format!("{CONTROLLER}:{}", self.src) } else { self.src.clone() }
    }
}

/// The `unarchive` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Unarchive {
    args: UnarchiveArgs<Resolved>,
    /// Where a `from_controller` archive is read.
    controller: LocalHost,
}

impl Unarchive {
    pub fn new(args: UnarchiveArgs<Resolved>) -> Self {
        Self { args, controller: LocalHost::controller() }
    }

    /// Reads `from_controller` archives through `controller` (for tests: one in a scratch folder).
    #[cfg(test)]
    fn with_controller(mut self, controller: LocalHost) -> Self {
        self.controller = controller;
        self
    }

    /// Whether the manifest matches this archive and options, and every file it lists is on
    /// disk with its recorded content.
    async fn up_to_date(&self, host: &dyn Host, archive_sha: &str) -> Result<bool, ModuleError> {
        let args = &self.args;
        let path = args.manifest_path();
        let Some(stat) = remote::stat(host, &path).await? else { return Ok(false) };
        if stat.kind != FileKind::File {
            return Ok(false);
        }
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&remote::read(host, &path).await?) else {
            return Ok(false);
        };
        if manifest.archive_sha256 != archive_sha
            || manifest.strip_components != args.strip_components
            || manifest.include != args.include
        {
            return Ok(false);
        }
        let paths: Vec<String> = manifest.files.keys().map(|f| args.under_dest(f)).collect();
        let probes = remote::stat_many(host, &paths).await?;
        Ok(manifest.files.iter().zip(&paths).all(|((_, sha), path)| {
            probes.iter().any(|p| {
                &p.path == path
                    && p.direct
                    && p.stat
                        .as_ref()
                        .is_some_and(|s| s.kind == FileKind::File && s.sha256.as_ref() == Some(sha))
            })
        }))
    }

    /// Every member of the archive, read on `source` (where the archive is).
    async fn members(&self, source: &dyn Host, format: Format) -> Result<Vec<Member>, ModuleError> {
        let args = &self.args;
        let label = args.src_label();
        let archive = quote(&args.src_operand());
        let unreadable =
            |why: String| ModuleError::Refused(format!("cannot read the listing of {label}: {why}"));
        match format {
            Format::Tar(_) => {
                let list =
                    format!("LC_ALL=C tar --list --verbose --numeric-owner --quoting-style=c -f {archive}");
                let out = run_checked(source, Exec::new(list).effect(Effect::ReadOnly)).await?;
                listing::parse_tar(&String::from_utf8_lossy(&out.stdout)).map_err(unreadable)
            }
            Format::Zip => {
                let list = format!("LC_ALL=C unzip -Z -s -- {archive}");
                let out = run_checked(source, Exec::new(list).effect(Effect::ReadOnly)).await?;
                let text = String::from_utf8(out.stdout)
                    .map_err(|_| unreadable("the listing is not UTF-8".to_owned()))?;
                let mut members = listing::parse_zip(&text).map_err(unreadable)?;
                let links: Vec<String> = members
                    .iter()
                    .filter(|m| matches!(m.kind, Kind::Symlink(_)))
                    .map(|m| listing::zip_pattern(&m.name))
                    .collect();
                if !links.is_empty() {
                    let read = format!(
                        "for n in {}; do LC_ALL=C unzip -p -- {archive} \"$n\"; printf '\\0'; done",
                        join(&links)
                    );
                    let out = run_checked(source, Exec::new(read).effect(Effect::ReadOnly)).await?;
                    listing::symlink_targets(&mut members, &out.stdout).map_err(unreadable)?;
                }
                Ok(members)
            }
        }
    }
}

/// Refuses a host that lacks `program`, naming the package to install.
async fn need(host: &dyn Host, program: &str, package: &str, what: &str) -> Result<(), ModuleError> {
    let out = host
        .exec(Exec::new(format!("command -v {} >/dev/null", quote(program))).effect(Effect::ReadOnly))
        .await?;
    if out.success() {
        return Ok(());
    }
    Err(ModuleError::Refused(format!(
        "{program} is not installed on {}: install the {package} package (apt-get install {package}) to extract {what}",
        host.name()
    )))
}

#[async_trait]
impl Module for Unarchive {
    fn name(&self) -> &'static str {
        "unarchive"
    }

    fn probes(&self) -> Vec<String> {
        let mut probes = vec![self.args.manifest_path()];
        if !self.args.from_controller {
            probes.push(self.args.src.clone());
        }
        probes
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let source: &dyn Host = if args.from_controller { &self.controller } else { cx.host };
        let label = args.src_label();
        let archive = match remote::stat(source, &args.src).await? {
            Some(stat) if stat.kind == FileKind::File => stat,
            Some(_) => return Err(ModuleError::Refused(format!("{label} is not a regular file"))),
            None if args.from_controller => {
                return Err(ModuleError::Refused(format!("{label} does not exist on the controller")));
            }
            None => {
                return Err(ModuleError::Refused(format!("{label} does not exist on {}", cx.host.name())));
            }
        };
        let archive_sha = archive.sha256.unwrap_or_default();
        let format = Format::of(&args.src);
        if let Some((program, package)) = format.needs() {
            need(source, program, package, &label).await?;
            if args.from_controller {
                need(cx.host, program, package, &label).await?;
            }
        }
        let members = self.members(source, format).await?;
        let refused =
            |why: String| ModuleError::Refused(format!("{label} is refused, nothing was extracted: {why}"));
        if format == Format::Zip {
            // unzip extracts every member (into a temporary directory) before the wanted ones
            // are moved into place: every member must stay inside, whatever is included.
            landings(&members, 0, None).map_err(refused)?;
        }
        let landings =
            landings(&members, args.strip_components as usize, args.include.as_deref()).map_err(refused)?;
        if self.up_to_date(cx.host, &archive_sha).await? {
            return Ok(Plan::unchanged());
        }
        let files: Vec<String> = landings
            .iter()
            .filter(|l| l.kind == Kind::File || matches!(l.kind, Kind::Hardlink(_)))
            .map(|l| l.path.clone())
            .collect();
        let change = if args.from_controller {
            format!("upload {label} and extract it into {} ({} members)", args.dest, landings.len())
        } else {
            format!("extract {label} into {} ({} members)", args.dest, landings.len())
        };
        Ok(Plan {
            changes: vec![change],
            action: Some(Box::new(Extract {
                args: args.clone(),
                format,
                archive_sha,
                landings,
                files,
                upload: args.from_controller.then(|| self.controller.clone()),
            })),
            ..Plan::default()
        })
    }
}

#[cfg(test)]
mod tests;
