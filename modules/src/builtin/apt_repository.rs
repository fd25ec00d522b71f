//! `apt_repository`: an apt source in `/etc/apt/sources.list.d`, deb822 (`NAME.sources`) or
//! one-line (`NAME.list`), signed by one keyring, with the package lists updated only when the
//! file changed.
//!
//! Planning renders the file from typed fields and plans it as `file` plans content (hash
//! compared, diff, atomic write). Applying writes (or removes) it, then runs `apt-get update`
//! when asked.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::builtin::file::{self, WantedAttrs};
use crate::builtin::get_url::DownloadUrl;
use crate::builtin::package::update_command;
use crate::builtin::sysctl::is_conf_name;
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, FileKind, run_checked};

const SOURCES_DIR: &str = "/etc/apt/sources.list.d";

/// Writes an apt source `/etc/apt/sources.list.d/NAME.sources` (deb822, the default) or
/// `NAME.list` (`format: "one_line"`) holding exactly the given `uris`, `suites` and
/// `components`, trusted only with the keyring `signed_by` (see `apt_key`). When the file
/// changes (written or removed) and `update_cache` is true (the default), `apt-get update`
/// runs after; an unchanged file runs nothing. A flat repository (such as pkgs.k8s.io) has
/// the suite `/` and no components.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "AptRepositoryArgs", bound = "")]
pub struct AptRepositoryArgs<S: Stage = Sealed> {
    /// The file's name without extension: letters, digits and `_-.`, e.g. "kubernetes".
    pub name: String,
    /// The repository's base URLs, `http://` or `https://` (one-line format: exactly one).
    #[serde(default)]
    pub uris: Vec<S::Of<DownloadUrl>>,
    /// Suites (distribution codenames such as "bookworm", or a path ending in `/` such as "/" for a flat repository).
    #[serde(default)]
    pub suites: Vec<String>,
    /// Components, e.g. ["main"]; none for a flat repository.
    #[serde(default)]
    pub components: Vec<String>,
    /// Absolute path of the keyring that signs the repository, e.g. "/etc/apt/keyrings/kubernetes.gpg".
    pub signed_by: Option<S::Of<AbsolutePath>>,
    /// Architectures to fetch, e.g. ["amd64"]; default all of the host's.
    pub architectures: Option<Vec<String>>,
    /// Source types: "deb" (default) and/or "deb-src".
    pub types: Option<Vec<String>>,
    /// The file's format. Default deb822.
    #[serde(default)]
    pub format: SourceFormat,
    /// Whether the source should exist. Default present.
    #[serde(default)]
    pub state: RepoState,
    /// Run `apt-get update` after the file changed. Default true.
    #[serde(default = "yes")]
    pub update_cache: bool,
}

fn yes() -> bool {
    true
}

/// How the source file is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// `NAME.sources`, `Types:` / `URIs:` / `Suites:` / `Components:` / `Signed-By:` fields
    #[default]
    Deb822,
    /// `NAME.list`, `deb [signed-by=...] URI SUITE COMPONENT...` lines
    OneLine,
}

/// Whether the source should exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RepoState {
    /// The file exists with this content
    #[default]
    Present,
    /// No file
    Absent,
}

contract::resolve_as_is!(SourceFormat, RepoState);
contract::resolve_struct!(AptRepositoryArgs<S> {
    name, uris, suites, components, signed_by, architectures, types, format, state, update_cache
});

/// A word of a source line: letters, digits and `._+~-`, plus `/` in suites; never an option.
fn is_word(word: &str, slash: bool) -> bool {
    (1..=100).contains(&word.len())
        && !word.starts_with('-')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || "._+~-".contains(c) || (slash && c == '/'))
}

impl<S: Stage> Validate for AptRepositoryArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if !is_conf_name(&self.name) || self.name.ends_with(".list") || self.name.ends_with(".sources") {
            return Err(ArgsError::invalid(
                "name",
                format!(
                    "name {:?} must be a bare file name: letters, digits and _-., without extension",
                    self.name
                ),
            ));
        }
        if self.state == RepoState::Absent {
            return Ok(self);
        }
        if self.uris.is_empty() {
            return Err(ArgsError::invalid("uris", "uris must not be empty"));
        }
        for (i, uri) in self.uris.iter().enumerate() {
            if let Some(uri) = S::known(uri)
                && !uri.as_str().to_ascii_lowercase().starts_with("http")
            {
                return Err(ArgsError::invalid(
                    format!("uris[{i}]"),
                    format!("{:?}: a repository URI is http:// or https://", uri.as_str()),
                ));
            }
        }
        if self.format == SourceFormat::OneLine && self.uris.len() != 1 {
            return Err(ArgsError::invalid("uris", "the one_line format holds exactly one URI"));
        }
        if self.suites.is_empty() {
            return Err(ArgsError::invalid(
                "suites",
                "suites must not be empty (\"/\" for a flat repository)",
            ));
        }
        let flat = self.suites.iter().any(|s| s.ends_with('/'));
        for (field, words, slash) in [
            ("suites", &self.suites, true),
            ("components", &self.components, false),
            ("architectures", self.architectures.as_ref().unwrap_or(&Vec::new()), false),
        ] {
            if let Some((i, bad)) = words.iter().enumerate().find(|(_, w)| !is_word(w, slash)) {
                return Err(ArgsError::invalid(
                    format!("{field}[{i}]"),
                    format!("{bad:?} is not a {} (letters, digits and ._+~-)", &field[..field.len() - 1]),
                ));
            }
        }
        if flat && !self.components.is_empty() {
            return Err(ArgsError::invalid(
                "components",
                "a suite ending in / (a flat repository) takes no components",
            ));
        }
        if !flat && self.components.is_empty() {
            return Err(ArgsError::invalid(
                "components",
                "components must not be empty (unless the suite ends in /)",
            ));
        }
        if let Some(types) = &self.types
            && (types.is_empty() || types.iter().any(|t| t != "deb" && t != "deb-src"))
        {
            return Err(ArgsError::invalid("types", "types are \"deb\" and/or \"deb-src\""));
        }
        match self.signed_by.as_ref() {
            None => {
                return Err(ArgsError::invalid(
                    "signed_by",
                    "missing signed_by: the keyring that signs this repository (see apt_key)",
                ));
            }
            Some(path) => {
                if let Some(path) = S::known(path)
                    && path.chars().any(|c| c.is_whitespace() || c.is_control() || "[],=".contains(c))
                {
                    return Err(ArgsError::invalid(
                        "signed_by",
                        format!("{:?} is not a plain keyring path", path.as_str()),
                    ));
                }
            }
        }
        Ok(self)
    }
}

impl AptRepositoryArgs<Resolved> {
    fn path(&self) -> String {
        let ext = match self.format {
            SourceFormat::Deb822 => "sources",
            SourceFormat::OneLine => "list",
        };
        format!("{SOURCES_DIR}/{}.{ext}", self.name)
    }

    fn types(&self) -> Vec<String> {
        self.types.clone().unwrap_or_else(|| vec!["deb".to_owned()])
    }

    fn content(&self) -> String {
        let signed_by = self.signed_by.as_ref().map(|p| p.as_str()).unwrap_or_default();
        let uris: Vec<&str> = self.uris.iter().map(DownloadUrl::as_str).collect();
        match self.format {
            SourceFormat::Deb822 => {
                let mut text = format!(
                    "# Managed by engine (apt_repository {}).\nTypes: {}\nURIs: {}\nSuites: {}\n",
                    self.name,
                    self.types().join(" "),
                    uris.join(" "),
                    self.suites.join(" ")
                );
                if !self.components.is_empty() {
                    text.push_str(&format!("Components: {}\n", self.components.join(" ")));
                }
                if let Some(arch) = &self.architectures {
                    text.push_str(&format!("Architectures: {}\n", arch.join(" ")));
                }
                text.push_str(&format!("Signed-By: {signed_by}\n"));
                text
            }
            SourceFormat::OneLine => {
                let mut options = format!("signed-by={signed_by}");
                if let Some(arch) = &self.architectures {
                    options.push_str(&format!(" arch={}", arch.join(",")));
                }
                let mut text = format!("# Managed by engine (apt_repository {}).\n", self.name);
                for kind in self.types() {
                    for suite in &self.suites {
                        let mut line = format!("{kind} [{options}] {} {suite}", uris.join(" "));
                        for component in &self.components {
                            line.push(' ');
                            line.push_str(component);
                        }
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
                text
            }
        }
    }
}

/// The `apt_repository` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct AptRepository {
    args: AptRepositoryArgs<Resolved>,
}

impl AptRepository {
    pub fn new(args: AptRepositoryArgs<Resolved>) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for AptRepository {
    fn name(&self) -> &'static str {
        "apt_repository"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.path()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let path = args.path();
        let current = remote::stat(cx.host, &path).await?;
        if let Some(stat) = &current
            && stat.kind != FileKind::File
        {
            return Err(ModuleError::Refused(format!("{path} exists and is not a regular file")));
        }
        // Only a change of what apt reads (content, or the file's existence) needs an update.
        let (mut changes, diff, write, remove, sources_changed) = match (args.state, current) {
            (RepoState::Absent, None) => return Ok(Plan::unchanged()),
            (RepoState::Absent, Some(_)) => (vec![format!("remove {path}")], None, None, Some(path), true),
            (RepoState::Present, current) => {
                let wanted = WantedAttrs { mode: Some(0o644), owner: None, group: None };
                let content = args.content();
                let sha = contract::diff::sha256_hex(content.as_bytes());
                let content_changed =
                    current.as_ref().and_then(|c| c.sha256.as_deref()) != Some(sha.as_str());
                let plan =
                    file::plan_content(cx.host, &path, current, content.as_bytes(), &wanted, cx.options)
                        .await?;
                let Some(write) = plan.action else { return Ok(Plan::unchanged()) };
                (plan.changes, plan.diff, Some(write), None, content_changed)
            }
        };
        let update = args.update_cache && sources_changed;
        if update {
            changes.push("apt-get update (the source changed)".to_owned());
        }
        Ok(Plan {
            changes,
            diff,
            action: Some(Box::new(AptRepositoryAction { write, remove, update })),
            ..Plan::default()
        })
    }
}

/// Exactly the planned change: the file written or removed, then `apt-get update` when asked.
#[derive(Debug)]
struct AptRepositoryAction {
    write: Option<Box<dyn Action>>,
    remove: Option<String>,
    update: bool,
}

#[async_trait]
impl Action for AptRepositoryAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        if let Some(write) = self.write {
            write.apply(host).await?;
        }
        if let Some(path) = self.remove {
            remote::remove(host, &path).await?;
        }
        if self.update {
            run_checked(host, Exec::new(update_command())).await?;
        }
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::resolved;

    fn args(value: serde_json::Value) -> Result<AptRepositoryArgs<Resolved>, String> {
        resolved::<AptRepositoryArgs>(value).map_err(|e| e.to_string())
    }

    #[test]
    fn a_flat_repository_is_written_as_deb822_and_one_line() {
        let base = json!({
            "name": "kubernetes",
            "uris": ["https://pkgs.k8s.io/core:/stable:/v1.30/deb/"],
            "suites": ["/"],
            "signed_by": "/etc/apt/keyrings/kubernetes.gpg",
        });
        let deb822 = args(base.clone()).unwrap();
        assert_eq!(deb822.path(), "/etc/apt/sources.list.d/kubernetes.sources");
        assert_eq!(
            deb822.content(),
            "# Managed by engine (apt_repository kubernetes).\nTypes: deb\n\
             URIs: https://pkgs.k8s.io/core:/stable:/v1.30/deb/\nSuites: /\n\
             Signed-By: /etc/apt/keyrings/kubernetes.gpg\n"
        );
        let mut one = base;
        one["format"] = json!("one_line");
        one["architectures"] = json!(["amd64"]);
        let one = args(one).unwrap();
        assert_eq!(one.path(), "/etc/apt/sources.list.d/kubernetes.list");
        assert_eq!(
            one.content(),
            "# Managed by engine (apt_repository kubernetes).\n\
             deb [signed-by=/etc/apt/keyrings/kubernetes.gpg arch=amd64] https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /\n"
        );
    }

    #[test]
    fn every_field_is_checked() {
        let ok = json!({
            "name": "docker", "uris": ["https://download.docker.com/linux/debian"],
            "suites": ["bookworm"], "components": ["stable"], "signed_by": "/etc/apt/keyrings/docker.gpg",
        });
        assert!(args(ok.clone()).is_ok());
        let with = |key: &str, value: serde_json::Value| {
            let mut v = ok.clone();
            v[key] = value;
            args(v).unwrap_err()
        };
        assert!(with("name", json!("../x")).contains("bare file name"));
        assert!(with("uris", json!(["file:/srv/repo"])).contains("not an http(s)"));
        assert!(with("uris", json!([])).contains("must not be empty"));
        assert!(with("suites", json!(["-o=x"])).contains("is not a suite"));
        assert!(with("suites", json!(["a b"])).contains("is not a suite"));
        assert!(with("components", json!(["main]"])).contains("is not a component"));
        assert!(with("components", json!([])).contains("components must not be empty"));
        assert!(with("suites", json!(["/"])).contains("takes no components"));
        assert!(with("types", json!(["rpm"])).contains("deb-src"));
        assert!(with("signed_by", json!("/etc/k ey.gpg")).contains("plain keyring path"));
        assert!(with("signed_by", json!("keyring.gpg")).contains("absolute path"));
        let mut no_key = ok.clone();
        no_key.as_object_mut().unwrap().remove("signed_by");
        assert!(args(no_key).unwrap_err().contains("missing signed_by"));
        assert!(args(json!({ "name": "docker", "state": "absent" })).is_ok());
    }
}
