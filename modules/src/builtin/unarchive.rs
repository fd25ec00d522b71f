//! `unarchive`: a tar archive already on the host, extracted into a directory, once.
//!
//! Planning reads the archive's listing (`tar -tv` with C-quoted names, parsed as hostile
//! input), checks every member stays inside the destination once `strip_components` is applied
//! (no `..`, no absolute name, no symbolic link pointing out, no member reached through a
//! symbolic link), and compares with the manifest the last extraction left
//! (`DEST/.engine-unarchive-<hash of src>.json`: the archive's SHA-256, the options, and each
//! extracted file's SHA-256, checked against the files on disk). Applying extracts, hashes
//! what it extracted, and writes the manifest.
//!
//! Only tar archives: the lab's hosts (a Debian cloud image) have no `unzip`, so zip is refused
//! at seal. Compression is tar's own choice by content (gzip always; xz and bzip2 when the host
//! has those programs).

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, Attrs, FileKind, run_checked};
use contract::shell::{join, quote};

/// Extracts a tar archive (`.tar`, `.tar.gz`/`.tgz`, `.tar.xz`, `.tar.bz2`) that is on the
/// host into `dest` (made when missing), once: the extraction is recorded in
/// `DEST/.engine-unarchive-<hash>.json` (the archive's SHA-256, the options, and the SHA-256 of
/// every extracted file), and nothing is extracted again while the archive, the options and
/// those files are unchanged. An archive with a member that would land outside `dest` (a `..`
/// component, an absolute name, a symbolic link pointing outside, a member under a symbolic
/// link) is refused before anything is written. zip archives are refused (the hosts have no
/// `unzip`). Files are owned by the user the task runs as.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "UnarchiveArgs", bound = "")]
pub struct UnarchiveArgs<S: Stage = Sealed> {
    /// Absolute path of the archive on the host.
    pub src: S::Of<AbsolutePath>,
    /// Absolute path of the directory to extract into.
    pub dest: S::Of<AbsolutePath>,
    /// Leading path components to drop from every member name, as `tar --strip-components`. Default 0.
    #[serde(default)]
    pub strip_components: u32,
    /// Only these members (names as the archive lists them; a directory brings what is under it).
    pub include: Option<Vec<String>>,
}

contract::resolve_struct!(UnarchiveArgs<S> { src, dest, strip_components, include });

impl<S: Stage> Validate for UnarchiveArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if let Some(src) = S::known(&self.src)
            && src.to_ascii_lowercase().ends_with(".zip")
        {
            return Err(ArgsError::invalid(
                "src",
                "zip archives are not supported (the hosts have no unzip): use a .tar.gz or .tar.xz",
            ));
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

/// What a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
}

/// One member of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    kind: Kind,
}

/// Reads a C-quoted string (`"a\"b\n"`) at the start of `text`; the string and what follows.
fn c_unquote(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix('"')?;
    let mut out: Vec<u8> = Vec::new();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((String::from_utf8(out).ok()?, &rest[i + 1..])),
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                i += 2;
                out.push(match next {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'a' => 7,
                    b'b' => 8,
                    b'f' => 12,
                    b'v' => 11,
                    b'0'..=b'7' => {
                        let mut value = u32::from(next - b'0');
                        for _ in 0..2 {
                            match bytes.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    value = value * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        u8::try_from(value).ok()?
                    }
                    other => other,
                });
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    None
}

/// `tar -tv --quoting-style=c` lines: `MODE OWNER/GROUP SIZE DATE TIME "NAME"`, then
/// ` -> "TARGET"` (symbolic link) or ` link to "TARGET"` (hard link).
fn parse_listing(text: &str) -> Result<Vec<Member>, String> {
    let mut members = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || format!("unexpected listing line {line:?}");
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..5 {
            rest = rest.trim_start();
            let end = rest.find(' ').ok_or_else(bad)?;
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        let (name, after) = c_unquote(rest.trim_start()).ok_or_else(bad)?;
        let kind = match fields[0].chars().next() {
            Some('-') => Kind::File,
            Some('d') => Kind::Dir,
            Some('l') => {
                Kind::Symlink(c_unquote(after.strip_prefix(" -> ").ok_or_else(bad)?).ok_or_else(bad)?.0)
            }
            Some('h') => {
                Kind::Hardlink(c_unquote(after.strip_prefix(" link to ").ok_or_else(bad)?).ok_or_else(bad)?.0)
            }
            _ => {
                return Err(format!(
                    "member {name:?} is not a file, directory or link (devices and fifos are refused)"
                ));
            }
        };
        members.push(Member { name, kind });
    }
    Ok(members)
}

/// The components of a member name, without empty ones and `.`.
fn components(name: &str) -> Vec<&str> {
    name.split('/').filter(|c| !c.is_empty() && *c != ".").collect()
}

/// A member as it lands under the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Landing {
    /// Relative to the destination.
    path: String,
    kind: Kind,
}

/// Which members are extracted, where, and whether each stays inside the destination.
fn landings(members: &[Member], strip: usize, include: Option<&[String]>) -> Result<Vec<Landing>, String> {
    if let Some(include) = include {
        for wanted in include {
            let w = components(wanted);
            if !members.iter().any(|m| components(&m.name) == w) {
                return Err(format!("the archive has no member {wanted:?}"));
            }
        }
    }
    let included = |name: &str| {
        include.is_none_or(|inc| {
            let parts = components(name);
            inc.iter().any(|w| {
                let w = components(w);
                parts.len() >= w.len() && parts[..w.len()] == w[..]
            })
        })
    };
    let mut out: Vec<Landing> = Vec::new();
    for member in members.iter().filter(|m| included(&m.name)) {
        if member.name.starts_with('/') {
            return Err(format!("member {:?} has an absolute name", member.name));
        }
        let parts = components(&member.name);
        if parts.contains(&"..") {
            return Err(format!("member {:?} climbs out with ..", member.name));
        }
        if parts.len() <= strip {
            continue;
        }
        let parts = &parts[strip..];
        let path = parts.join("/");
        if let Some(link) = out
            .iter()
            .find(|l| matches!(l.kind, Kind::Symlink(_)) && path.starts_with(&format!("{}/", l.path)))
        {
            return Err(format!("member {:?} lies under the symbolic link {:?}", member.name, link.path));
        }
        let kind = match &member.kind {
            Kind::Symlink(target) => {
                if target.starts_with('/') {
                    return Err(format!(
                        "symbolic link {:?} points to the absolute path {target:?}",
                        member.name
                    ));
                }
                let mut depth = parts.len() as i64 - 1;
                for c in components(target) {
                    depth += if c == ".." { -1 } else { 1 };
                    if depth < 0 {
                        return Err(format!(
                            "symbolic link {:?} points outside the destination ({target:?})",
                            member.name
                        ));
                    }
                }
                member.kind.clone()
            }
            Kind::Hardlink(target) => {
                let t = components(target);
                if target.starts_with('/') || t.contains(&"..") || t.len() <= strip {
                    return Err(format!(
                        "hard link {:?} points outside the destination ({target:?})",
                        member.name
                    ));
                }
                Kind::Hardlink(t[strip..].join("/"))
            }
            other => other.clone(),
        };
        out.push(Landing { path, kind });
    }
    Ok(out)
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
        let hash = contract::diff::sha256_hex(self.src.as_bytes());
        format!("{}/.engine-unarchive-{}.json", self.dest.trim_end_matches('/'), &hash[..16])
    }

    fn under_dest(&self, relative: &str) -> String {
        format!("{}/{relative}", self.dest.trim_end_matches('/'))
    }
}

/// The `unarchive` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Unarchive {
    args: UnarchiveArgs<Resolved>,
}

impl Unarchive {
    pub fn new(args: UnarchiveArgs<Resolved>) -> Self {
        Self { args }
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
}

#[async_trait]
impl Module for Unarchive {
    fn name(&self) -> &'static str {
        "unarchive"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.src.to_string(), self.args.manifest_path()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let src = args.src.as_str();
        let archive = match remote::stat(cx.host, src).await? {
            Some(stat) if stat.kind == FileKind::File => stat,
            Some(_) => return Err(ModuleError::Refused(format!("{src} is not a regular file"))),
            None => return Err(ModuleError::Refused(format!("{src} does not exist on {}", cx.host.name()))),
        };
        let archive_sha = archive.sha256.unwrap_or_default();
        let list =
            format!("LC_ALL=C tar --list --verbose --numeric-owner --quoting-style=c -f {}", quote(src));
        let out = run_checked(cx.host, Exec::new(list).effect(Effect::ReadOnly)).await?;
        let members = parse_listing(&String::from_utf8_lossy(&out.stdout))
            .map_err(|why| ModuleError::Refused(format!("cannot read the listing of {src}: {why}")))?;
        let landings = landings(&members, args.strip_components as usize, args.include.as_deref())
            .map_err(|why| ModuleError::Refused(format!("{src} is refused, nothing was extracted: {why}")))?;
        if self.up_to_date(cx.host, &archive_sha).await? {
            return Ok(Plan::unchanged());
        }
        let files: Vec<String> = landings
            .iter()
            .filter(|l| l.kind == Kind::File || matches!(l.kind, Kind::Hardlink(_)))
            .map(|l| l.path.clone())
            .collect();
        Ok(Plan {
            changes: vec![format!("extract {src} into {} ({} members)", args.dest, landings.len())],
            action: Some(Box::new(Extract { args: args.clone(), archive_sha, files })),
            ..Plan::default()
        })
    }
}

/// Extracts the archive as planned, then records what it extracted.
#[derive(Debug)]
struct Extract {
    args: UnarchiveArgs<Resolved>,
    archive_sha: String,
    /// The regular files the extraction makes, relative to the destination.
    files: Vec<String>,
}

#[async_trait]
impl Action for Extract {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let args = &self.args;
        let mut words = vec![
            "tar".to_owned(),
            "--extract".to_owned(),
            "--no-same-owner".to_owned(),
            "--no-overwrite-dir".to_owned(),
            format!("--strip-components={}", args.strip_components),
            "-f".to_owned(),
            args.src.to_string(),
            "-C".to_owned(),
            args.dest.to_string(),
            "--".to_owned(),
        ];
        words.extend(args.include.iter().flatten().cloned());
        let command = format!("mkdir -p -- {} && {}", quote(&args.dest), join(&words));
        run_checked(host, Exec::new(command)).await?;
        let paths: Vec<String> = self.files.iter().map(|f| args.under_dest(f)).collect();
        let probes = remote::stat_many(host, &paths).await?;
        let mut files = BTreeMap::new();
        for (relative, path) in self.files.iter().zip(&paths) {
            let sha = probes
                .iter()
                .find(|p| &p.path == path)
                .and_then(|p| p.stat.as_ref())
                .and_then(|s| s.sha256.clone())
                .ok_or_else(|| {
                    ModuleError::Refused(format!("{path} is missing after extracting {}", args.src))
                })?;
            files.insert(relative.clone(), sha);
        }
        let manifest = Manifest {
            archive_sha256: self.archive_sha,
            strip_components: args.strip_components,
            include: args.include.clone(),
            files,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ModuleError::Refused(format!("cannot write the manifest: {e}")))?;
        remote::write_atomic(
            host,
            &args.manifest_path(),
            &text,
            &Attrs { mode: Some(0o644), ..Attrs::default() },
        )
        .await?;
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, kind: Kind) -> Member {
        Member { name: name.into(), kind }
    }

    #[test]
    fn c_quoted_names_are_read_exactly() {
        assert_eq!(c_unquote(r#""a b\"c\\d\n\303\251" -> x"#), Some(("a b\"c\\d\né".into(), " -> x")));
        assert_eq!(c_unquote(r#""unterminated"#), None);
        assert_eq!(c_unquote("plain"), None);
    }

    #[test]
    fn the_listing_is_parsed_as_hostile_input() {
        let text = "drwxr-xr-x 0/0               0 2024-05-01 10:00 \"etcd-v3/\"\n\
                    -rwxr-xr-x 0/0        22000000 2024-05-01 10:00 \"etcd-v3/etcd\"\n\
                    lrwxrwxrwx 0/0               0 2024-05-01 10:00 \"etcd-v3/a -> b\" -> \"etcd\"\n\
                    hrwxr-xr-x 0/0               0 2024-05-01 10:00 \"etcd-v3/e2\" link to \"etcd-v3/etcd\"\n";
        assert_eq!(
            parse_listing(text).unwrap(),
            [
                member("etcd-v3/", Kind::Dir),
                member("etcd-v3/etcd", Kind::File),
                member("etcd-v3/a -> b", Kind::Symlink("etcd".into())),
                member("etcd-v3/e2", Kind::Hardlink("etcd-v3/etcd".into())),
            ]
        );
        assert!(parse_listing("crw-r--r-- 0/0 1,3 2024-05-01 10:00 \"dev/null\"\n").is_err());
        assert!(parse_listing("garbage\n").is_err());
    }

    #[test]
    fn members_escaping_the_destination_are_refused() {
        let refused = |m: Member| landings(&[m], 0, None).unwrap_err();
        assert_eq!(refused(member("../evil", Kind::File)), "member \"../evil\" climbs out with ..");
        assert_eq!(refused(member("a/../../evil", Kind::File)), "member \"a/../../evil\" climbs out with ..");
        assert_eq!(refused(member("/etc/passwd", Kind::File)), "member \"/etc/passwd\" has an absolute name");
        assert_eq!(
            refused(member("a/link", Kind::Symlink("../../etc".into()))),
            "symbolic link \"a/link\" points outside the destination (\"../../etc\")"
        );
        assert!(refused(member("link", Kind::Symlink("/etc".into()))).contains("absolute path"));
        let through = landings(&[member("l", Kind::Symlink("d".into())), member("l/x", Kind::File)], 0, None);
        assert_eq!(through.unwrap_err(), "member \"l/x\" lies under the symbolic link \"l\"");
        assert!(landings(&[member("a/b/link", Kind::Symlink("../c".into()))], 0, None).is_ok());
    }

    #[test]
    fn strip_and_include_pick_and_place_members() {
        let members = [
            member("pkg-1/", Kind::Dir),
            member("pkg-1/bin/", Kind::Dir),
            member("pkg-1/bin/tool", Kind::File),
            member("pkg-1/README", Kind::File),
        ];
        let placed = landings(&members, 1, None).unwrap();
        assert_eq!(placed.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["bin", "bin/tool", "README"]);
        let include = ["pkg-1/bin".to_owned()];
        let placed = landings(&members, 1, Some(&include)).unwrap();
        assert_eq!(placed.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["bin", "bin/tool"]);
        let missing = ["pkg-1/nope".to_owned()];
        assert_eq!(
            landings(&members, 0, Some(&missing)).unwrap_err(),
            "the archive has no member \"pkg-1/nope\""
        );
    }
}
