//! `get_url`: a file downloaded on the host, verified against a required SHA-256 before it
//! replaces `dest`.
//!
//! Planning is one `stat` of `dest` (its SHA-256 included): when it already has the expected
//! checksum nothing is downloaded (only mode and owner may change). Applying runs
//! [`contract::remote::download_atomic`]: curl (or wget) into a temporary file beside `dest`,
//! the hash checked, then one rename; a wrong checksum leaves `dest` as it was. With
//! `via: controller` the controller downloads instead (its own `curl`, through
//! [`LocalHost`]), checks the hash, and sends the bytes to the host's atomic write: for hosts
//! with no route to the URL.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};

use crate::builtin::file::WantedAttrs;
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::local::LocalHost;
use contract::mode::Mode;
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, Attrs, FileKind};
use contract::shell::quote;

/// Seconds a download may take before curl or wget gives up.
const DEFAULT_TIMEOUT: u32 = 300;

/// Downloads `url` on the host into `dest`, verified against the required `checksum` before
/// it replaces anything: the download lands in a temporary file beside `dest`, is hashed, and
/// is renamed over `dest` (with its mode and owner) only when the SHA-256 matches; otherwise the
/// task fails, `dest` is left as it was and the temporary file is removed. Nothing is downloaded
/// when `dest` already has that checksum. The host downloads with `curl` when it has it
/// (`http`, `https` and `file` URLs), else `wget` (`http` and `https`); neither is an error.
/// With `via: controller` (for hosts with no route to the URL) the controller downloads with
/// its own `curl`, checks the checksum, and writes the file on the host atomically (temporary
/// file, fsync, rename) with its mode and owner; a wrong checksum sends nothing.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "GetUrlArgs", bound = "")]
pub struct GetUrlArgs<S: Stage = Sealed> {
    /// What to download: an `http://`, `https://` or `file:///` URL.
    pub url: S::Of<DownloadUrl>,
    /// Absolute path of the file on the host (not a directory).
    pub dest: S::Of<AbsolutePath>,
    /// The content's expected digest, `sha256:` and 64 hex digits. Required.
    pub checksum: S::Of<Checksum>,
    /// Permission bits as an octal string, e.g. "0755". New files default to "0644".
    #[schemars(with = "Option<String>")]
    pub mode: Option<Mode>,
    /// Owning user name.
    pub owner: Option<String>,
    /// Owning group name.
    pub group: Option<String>,
    /// Seconds the download may take. Default 300.
    pub timeout: Option<u32>,
    /// Who downloads: `host` (the default) or `controller`, which then sends the verified
    /// file to the host (for hosts with no route to the URL).
    #[serde(default)]
    pub via: Via,
}

/// Which machine fetches the URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The task's host, with its own curl or wget.
    #[default]
    Host,
    /// The controller, with its curl; the host receives the checked bytes.
    Controller,
}

contract::resolve_as_is!(Via);
contract::resolve_struct!(GetUrlArgs<S> { url, dest, checksum, mode, owner, group, timeout, via });

/// A URL the host may download: `http://` or `https://` with a host part, or `file:///`; one
/// line with no spaces and no control characters (so it is never an option or two words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadUrl(String);

impl DownloadUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.to_ascii_lowercase();
        let rest = ["http://", "https://"].iter().find_map(|s| lower.strip_prefix(s));
        let ok_scheme = match rest {
            Some(rest) => !rest.is_empty() && !rest.starts_with(['/', '?', '#', '@']),
            None => lower.starts_with("file:///"),
        };
        if !ok_scheme {
            return Err(format!("{text:?} is not an http(s):// URL with a host, or a file:/// URL"));
        }
        if text.len() > 2048 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{text:?} is not one URL (no spaces or control characters, at most 2048 bytes)"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DownloadUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

contract::string_schema!(DownloadUrl);

/// An expected digest: `sha256:` and 64 hex digits, kept in lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum(String);

impl Checksum {
    /// The lowercase hex digest.
    pub fn hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.split_once(':') {
            Some((algo, hex))
                if algo.eq_ignore_ascii_case("sha256")
                    && hex.len() == 64
                    && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Self(hex.to_ascii_lowercase()))
            }
            _ => {
                Err(D::Error::custom(format!("{text:?} is not a checksum: write sha256: and 64 hex digits")))
            }
        }
    }
}

contract::string_schema!(Checksum);
contract::resolve_as_is!(DownloadUrl, Checksum);

impl<S: Stage> Validate for GetUrlArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if let Some(dest) = S::known(&self.dest)
            && dest.ends_with('/')
        {
            return Err(ArgsError::invalid(
                "dest",
                "dest is the file's path, not a directory (it ends with /)",
            ));
        }
        if self.timeout == Some(0) {
            return Err(ArgsError::invalid("timeout", "timeout must be at least 1 second"));
        }
        Ok(self)
    }
}

/// The `get_url` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct GetUrl {
    args: GetUrlArgs<Resolved>,
    /// Where `via: controller` downloads.
    controller: LocalHost,
}

impl GetUrl {
    pub fn new(args: GetUrlArgs<Resolved>) -> Self {
        Self { args, controller: LocalHost::controller() }
    }

    fn wanted(&self) -> WantedAttrs {
        WantedAttrs {
            mode: self.args.mode.map(|m| m.0),
            owner: self.args.owner.clone(),
            group: self.args.group.clone(),
        }
    }
}

#[async_trait]
impl Module for GetUrl {
    fn name(&self) -> &'static str {
        "get_url"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.dest.to_string()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let dest = args.dest.as_str();
        let current = remote::stat(cx.host, dest).await?;
        if let Some(stat) = &current
            && stat.kind != FileKind::File
        {
            return Err(ModuleError::Refused(format!(
                "{dest} exists and is not a regular file: get_url replaces files only"
            )));
        }
        let matches = current.as_ref().is_some_and(|c| c.sha256.as_deref() == Some(args.checksum.hex()));
        if matches {
            let (attrs, changes) = self.wanted().to_set(current.as_ref(), 0o644);
            if changes.is_empty() {
                return Ok(Plan::unchanged());
            }
            return Ok(Plan {
                changes,
                action: Some(Box::new(GetUrlAction::SetAttrs { path: dest.to_owned(), attrs })),
                ..Plan::default()
            });
        }
        // The download replaces the file: every wanted attribute is set on it, and an existing
        // file's mode and owner are kept unless asked otherwise.
        let (mut attrs, _) = self.wanted().to_set(None, 0o644);
        if let Some(c) = &current {
            attrs.mode = Some(args.mode.map_or(c.mode, |m| m.0));
        }
        let verb = if current.is_some() { "replace" } else { "download" };
        let through = if args.via == Via::Controller { " through the controller" } else { "" };
        Ok(Plan {
            changes: vec![format!("{verb} {dest} from {}{through} ({})", args.url.as_str(), args.checksum)],
            action: Some(Box::new(GetUrlAction::Download {
                url: args.url.as_str().to_owned(),
                dest: dest.to_owned(),
                sha256: args.checksum.hex().to_owned(),
                attrs,
                timeout: args.timeout.unwrap_or(DEFAULT_TIMEOUT),
                controller: (args.via == Via::Controller).then(|| self.controller.clone()),
            })),
            ..Plan::default()
        })
    }
}

/// Exactly the planned change.
#[derive(Debug)]
enum GetUrlAction {
    /// Downloaded on the host, or on `controller` and sent.
    Download {
        url: String,
        dest: String,
        sha256: String,
        attrs: Attrs,
        timeout: u32,
        controller: Option<LocalHost>,
    },
    SetAttrs {
        path: String,
        attrs: Attrs,
    },
}

/// Downloads `url` on the controller (its curl, into memory), checks its SHA-256, and writes
/// it to `dest` on `host` atomically with `attrs`; a failed download or a wrong checksum sends
/// nothing and leaves `dest` as it was.
async fn download_through(
    controller: &LocalHost,
    host: &dyn Host,
    url: &str,
    dest: &str,
    sha256: &str,
    attrs: &Attrs,
    timeout: u32,
) -> Result<(), ModuleError> {
    let command = format!(
        "curl -fsSL --proto =http,https,file --proto-redir =http,https --max-time {timeout} -- {}",
        quote(url)
    );
    let exec =
        Exec::new(command).effect(Effect::ReadOnly).timeout(Duration::from_secs(u64::from(timeout) + 30));
    let out = controller.exec(exec).await?;
    if !out.success() {
        return Err(ModuleError::Refused(format!(
            "cannot download {url} on the controller: {}; {dest} was left as it was",
            out.stderr_tail(3).trim()
        )));
    }
    let got = contract::diff::sha256_hex(&out.stdout);
    if got != sha256 {
        return Err(ModuleError::Refused(format!(
            "the download of {url} on the controller has sha256:{got}, not the expected sha256:{sha256}; \
             nothing was sent and {dest} was left as it was"
        )));
    }
    remote::write_atomic(host, dest, &out.stdout, attrs).await
}

#[async_trait]
impl Action for GetUrlAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        match *self {
            GetUrlAction::Download { url, dest, sha256, attrs, timeout, controller: None } => {
                remote::download_atomic(host, &url, &dest, &sha256, &attrs, timeout).await?;
            }
            GetUrlAction::Download { url, dest, sha256, attrs, timeout, controller: Some(controller) } => {
                download_through(&controller, host, &url, &dest, &sha256, &attrs, timeout).await?;
            }
            GetUrlAction::SetAttrs { path, attrs } => remote::set_attrs(host, &path, &attrs).await?,
        }
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::resolved;

    const SUM: &str = "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";

    #[test]
    fn urls_are_http_https_or_file_and_one_word() {
        for good in ["https://dl.k8s.io/v1.30/kubeadm", "http://10.0.0.1:8080/x", "file:///srv/x.tar.gz"] {
            assert!(DownloadUrl::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "ftp://x/y",
            "-o/etc/passwd",
            "https://",
            "https:///etc/passwd",
            "file://host/x",
            "https://a b",
            "https://a\nb",
            "/srv/x",
        ] {
            assert!(DownloadUrl::parse(bad).is_err(), "{bad}");
        }
    }

    /// `via: controller` with `file://` URLs on this machine (the controller and the host both
    /// local): the controller's download is checked, then written on the host; a wrong
    /// checksum sends nothing, and a matching destination fetches nothing.
    #[tokio::test]
    async fn through_the_controller_the_checked_bytes_are_written_atomically() {
        use contract::module::PlanOptions;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("release");
        std::fs::write(&source, b"two\n").unwrap();
        let dest = dir.path().join("dest").to_str().unwrap().to_owned();
        let url = format!("file://{}", source.display());
        let right = format!("sha256:{}", contract::diff::sha256_hex(b"two\n"));
        let module = |sum: &str| {
            GetUrl::new(
                resolved::<GetUrlArgs>(
                    json!({ "url": url, "dest": dest, "checksum": sum, "mode": "0640", "via": "controller" }),
                )
                .unwrap(),
            )
        };
        let host = LocalHost::new("worker1");
        let cx = Context::new(&host, PlanOptions::default());
        let wrong = module(&format!("sha256:{}", "0".repeat(64))).plan(&cx).await.unwrap();
        assert_eq!(
            wrong.changes,
            [format!("download {dest} from {url} through the controller (sha256:{})", "0".repeat(64))]
        );
        let error = wrong.action.unwrap().apply(&host).await.unwrap_err().to_string();
        assert!(
            error.contains("on the controller has sha256:") && error.contains("nothing was sent"),
            "{error}"
        );
        assert!(!std::path::Path::new(&dest).exists());
        module(&right).plan(&cx).await.unwrap().action.unwrap().apply(&host).await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two\n");
        assert_eq!(remote::stat(&host, &dest).await.unwrap().unwrap().mode, 0o640);
        std::fs::remove_file(&source).unwrap();
        assert!(module(&right).plan(&cx).await.unwrap().action.is_none(), "nothing to fetch");
    }

    #[test]
    fn the_checksum_is_required_and_must_be_sha256_hex() {
        let args = resolved::<GetUrlArgs>(
            json!({ "url": "https://x.example/a", "dest": "/tmp/a", "checksum": SUM }),
        )
        .unwrap();
        assert_eq!(args.checksum.hex(), SUM[7..].to_ascii_lowercase());
        let missing = resolved::<GetUrlArgs>(json!({ "url": "https://x.example/a", "dest": "/tmp/a" }));
        assert!(missing.unwrap_err().to_string().contains("checksum"));
        for bad in
            ["md5:abc", "sha256:xyz", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]
        {
            let error = resolved::<GetUrlArgs>(
                json!({ "url": "https://x.example/a", "dest": "/tmp/a", "checksum": bad }),
            );
            assert!(error.unwrap_err().to_string().contains("is not a checksum"), "{bad}");
        }
        let dir =
            resolved::<GetUrlArgs>(json!({ "url": "https://x.example/a", "dest": "/tmp/", "checksum": SUM }));
        assert!(dir.unwrap_err().to_string().contains("not a directory"));
    }
}
