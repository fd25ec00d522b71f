//! `apt_key`: an OpenPGP keyring for apt in `/etc/apt/keyrings/NAME.gpg`, for a source's
//! `Signed-By:`.
//!
//! The key is given inline (ASCII armor, undone on the controller when the arguments are read)
//! or fetched from a URL by the host while planning (curl, else wget; read-only). Either way
//! the controller dearmors it ([`openpgp`]), checks the fingerprint when one is given, and
//! plans the binary keyring as `file` plans content (hash compared, atomic write, 0644).

mod openpgp;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};

use crate::builtin::file::{self, WantedAttrs};
use crate::builtin::get_url::DownloadUrl;
use crate::builtin::sysctl::is_conf_name;
use crate::validate::Validate;
use contract::arg::{Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan, PlanOptions};
use contract::remote::{self, Attrs, FileKind};
use contract::shell::quote;

const KEYRINGS: &str = "/etc/apt/keyrings";
/// A keyring larger than this (fetched from a URL) is refused.
const MAX_KEY_BYTES: usize = 1 << 20;
/// Seconds the host may take to fetch a key.
const FETCH_TIMEOUT: u32 = 60;

/// Installs an OpenPGP public key for apt as the binary keyring `/etc/apt/keyrings/NAME.gpg`
/// (mode 0644; the folder is made when missing), for a source's `Signed-By:` (see
/// `apt_repository`). The key is `key` (ASCII armor, inline: dearmored on the controller, so
/// the host needs no gpg) or fetched from `url` by the host (curl, else wget) each time the task
/// plans; armored or binary. With `fingerprint`, a key whose primary key has another
/// fingerprint is refused and nothing is written. `state: absent` removes the keyring.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "AptKeyArgs", bound = "")]
pub struct AptKeyArgs<S: Stage = Sealed> {
    /// The keyring's name: `/etc/apt/keyrings/NAME.gpg`, letters, digits and `_-.`, e.g. "kubernetes".
    pub name: String,
    /// The public key as ASCII armor (`-----BEGIN PGP PUBLIC KEY BLOCK-----` ...). Give `key` or `url`.
    pub key: Option<S::Of<ArmoredKey>>,
    /// Where the host fetches the key: an `http://` or `https://` URL. Give `key` or `url`.
    pub url: Option<S::Of<DownloadUrl>>,
    /// The primary key's fingerprint (40 hex digits for a v4 key; spaces allowed). A key with another is refused.
    pub fingerprint: Option<String>,
    /// Whether the keyring should exist. Default present.
    #[serde(default)]
    pub state: KeyState,
}

/// Whether the keyring should exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// The keyring holds the key
    #[default]
    Present,
    /// No keyring file
    Absent,
}

/// An ASCII-armored public key, dearmored (CRC-24 checked) and its packets read when the
/// arguments are read: the binary keyring and its primary keys' fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmoredKey {
    binary: Vec<u8>,
    fingerprints: Vec<String>,
}

impl<'de> Deserialize<'de> for ArmoredKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !text.trim_start().starts_with("-----BEGIN PGP") {
            return Err(D::Error::custom(
                "the key must be ASCII armor (-----BEGIN PGP PUBLIC KEY BLOCK-----)",
            ));
        }
        read_key(text.as_bytes()).map_err(D::Error::custom)
    }
}

contract::string_schema!(ArmoredKey);
contract::resolve_as_is!(ArmoredKey, KeyState);
contract::resolve_struct!(AptKeyArgs<S> { name, key, url, fingerprint, state });

fn read_key(data: &[u8]) -> Result<ArmoredKey, openpgp::KeyError> {
    let binary = openpgp::dearmor(data)?;
    let fingerprints = openpgp::fingerprints(&binary)?;
    Ok(ArmoredKey { binary, fingerprints })
}

/// `Ok` when `fingerprint` (normal form) is one of the key's primary keys.
fn check_fingerprint(key: &ArmoredKey, fingerprint: &str) -> Result<(), String> {
    if key.fingerprints.iter().any(|f| f == fingerprint) {
        Ok(())
    } else {
        Err(format!(
            "the key's fingerprint is {}, not the expected {fingerprint}; nothing was written",
            key.fingerprints.join(", ")
        ))
    }
}

impl<S: Stage> Validate for AptKeyArgs<S> {
    fn validate(mut self) -> Result<Self, ArgsError> {
        if !is_conf_name(&self.name) || self.name.ends_with(".gpg") || self.name.ends_with(".asc") {
            return Err(ArgsError::invalid(
                "name",
                format!(
                    "name {:?} must be a bare name for /etc/apt/keyrings/NAME.gpg: letters, digits and _-., without .gpg",
                    self.name
                ),
            ));
        }
        if let Some(text) = &self.fingerprint {
            let normal = openpgp::normal_fingerprint(text).ok_or_else(|| {
                ArgsError::invalid(
                    "fingerprint",
                    format!(
                        "{text:?} is not a fingerprint: 40 hex digits (v4 key) or 64 (v6), spaces allowed"
                    ),
                )
            })?;
            self.fingerprint = Some(normal);
        }
        match (self.state, self.key.is_some(), self.url.is_some()) {
            (KeyState::Present, true, true) => {
                return Err(ArgsError::invalid("url", "give either key or url, not both"));
            }
            (KeyState::Present, false, false) => {
                return Err(ArgsError::invalid("", "missing key (ASCII armor) or url"));
            }
            (KeyState::Absent, ..)
                if self.key.is_some() || self.url.is_some() || self.fingerprint.is_some() =>
            {
                return Err(ArgsError::invalid(
                    "state",
                    "key, url and fingerprint make no sense with state: absent",
                ));
            }
            _ => {}
        }
        if let Some(url) = self.url.as_ref().and_then(S::known)
            && !url.as_str().to_ascii_lowercase().starts_with("http")
        {
            return Err(ArgsError::invalid(
                "url",
                format!("{:?}: a key is fetched over http:// or https:// only", url.as_str()),
            ));
        }
        if let (Some(key), Some(fingerprint)) = (self.key.as_ref().and_then(S::known), &self.fingerprint) {
            check_fingerprint(key, fingerprint).map_err(|why| ArgsError::invalid("fingerprint", why))?;
        }
        Ok(self)
    }
}

impl AptKeyArgs<Resolved> {
    fn path(&self) -> String {
        format!("{KEYRINGS}/{}.gpg", self.name)
    }
}

/// Prints the body of `url` on stdout: curl when the host has it, else wget.
fn fetch_script(url: &str) -> String {
    format!(
        "u={u}; if command -v curl >/dev/null 2>&1; then \
         curl -fsSL --proto =http,https --proto-redir =http,https --max-time {FETCH_TIMEOUT} \
         --max-filesize {MAX_KEY_BYTES} -- \"$u\"; \
         elif command -v wget >/dev/null 2>&1; then wget -q -T {FETCH_TIMEOUT} -O - -- \"$u\"; \
         else echo \"engine: neither curl nor wget is installed: cannot fetch $u\" >&2; exit 1; fi",
        u = quote(url)
    )
}

/// The `apt_key` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct AptKey {
    args: AptKeyArgs<Resolved>,
}

impl AptKey {
    pub fn new(args: AptKeyArgs<Resolved>) -> Self {
        Self { args }
    }

    /// The key to install: inline, or fetched by the host and read here.
    async fn key(&self, host: &dyn Host) -> Result<ArmoredKey, ModuleError> {
        let args = &self.args;
        let key = match (&args.key, &args.url) {
            (Some(key), _) => key.clone(),
            (None, Some(url)) => {
                let out =
                    remote::run_checked(host, Exec::new(fetch_script(url.as_str())).effect(Effect::ReadOnly))
                        .await?;
                if out.stdout.len() > MAX_KEY_BYTES {
                    return Err(ModuleError::Refused(format!(
                        "{} sent more than {MAX_KEY_BYTES} bytes: not a key",
                        url.as_str()
                    )));
                }
                read_key(&out.stdout).map_err(|why| {
                    ModuleError::Refused(format!("the key from {} is refused: {why}", url.as_str()))
                })?
            }
            (None, None) => return Err(ModuleError::Refused("no key and no url".into())),
        };
        if let Some(fingerprint) = &args.fingerprint {
            check_fingerprint(&key, fingerprint).map_err(ModuleError::Refused)?;
        }
        Ok(key)
    }
}

#[async_trait]
impl Module for AptKey {
    fn name(&self) -> &'static str {
        "apt_key"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.path()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let path = self.args.path();
        let current = remote::stat(cx.host, &path).await?;
        if self.args.state == KeyState::Absent {
            return Ok(match current {
                None => Plan::unchanged(),
                Some(_) => Plan {
                    changes: vec![format!("remove {path}")],
                    action: Some(Box::new(AptKeyAction { mkdir: false, write: None, remove: Some(path) })),
                    ..Plan::default()
                },
            });
        }
        if let Some(stat) = &current
            && stat.kind != FileKind::File
        {
            return Err(ModuleError::Refused(format!("{path} exists and is not a regular file")));
        }
        let key = self.key(cx.host).await?;
        let mkdir = current.is_none() && remote::stat(cx.host, KEYRINGS).await?.is_none();
        let wanted = WantedAttrs { mode: Some(0o644), owner: None, group: None };
        // A binary keyring has no useful line diff: the change names the fingerprints instead.
        let options = PlanOptions { diff: false, ..cx.options };
        let plan = file::plan_content(cx.host, &path, current, &key.binary, &wanted, options).await?;
        let Some(write) = plan.action else { return Ok(Plan::unchanged()) };
        let mut changes = Vec::new();
        if mkdir {
            changes.push(format!("create {KEYRINGS}"));
        }
        changes.extend(plan.changes);
        changes.push(format!("key {}", key.fingerprints.join(", ")));
        Ok(Plan {
            changes,
            action: Some(Box::new(AptKeyAction { mkdir, write: Some(write), remove: None })),
            ..Plan::default()
        })
    }
}

/// Exactly the planned change: the folder made, then the keyring written; or it removed.
#[derive(Debug)]
struct AptKeyAction {
    mkdir: bool,
    write: Option<Box<dyn Action>>,
    remove: Option<String>,
}

#[async_trait]
impl Action for AptKeyAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        if self.mkdir {
            remote::mkdir(host, KEYRINGS, &Attrs { mode: Some(0o755), ..Attrs::default() }).await?;
        }
        if let Some(write) = self.write {
            write.apply(host).await?;
        }
        if let Some(path) = self.remove {
            remote::remove(host, &path).await?;
        }
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests;
