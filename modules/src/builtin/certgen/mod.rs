//! `certgen`: TLS certificates and keys made on the controller and written to the host,
//! the way the kubeadm HA guide makes them with cfssl.
//!
//! - [`spec`]: cfssl's vocabulary (key algorithms, usages, profiles, names, durations).
//! - [`files`]: reading the existing files of one host in one round trip.
//! - [`inspect`]: parsing existing certificates and deciding whether one still fits.
//! - [`issue`]: making certificates with rcgen, cfssl-style.
//!
//! Plan reads (one round trip per host involved: the target, and the CA's host when it is
//! another one) and decides; the action generates keys and certificates in controller memory
//! and writes exactly the planned files. Key material never appears in changes, diffs, errors
//! or `Debug` output.

mod files;
pub(crate) mod inspect;
mod issue;
pub(crate) mod spec;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

pub use spec::{InvalidDuration, KeyAlgo, Name, Profile, San, Usage, parse_duration};

use self::files::{Read, read_files};
use self::issue::{Authority, CertSpec, Issued};
use self::spec::{Subject, Usages};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::facts::Facts;
use contract::host::Host;
use contract::local::LocalHost;
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, Attrs};

/// Makes a TLS certificate and its private key on the controller and writes them to the
/// host, as cfssl and cfssljson do in the kubeadm HA guide: a self-signed CA (`kind: "ca"`,
/// like `cfssl gencert -initca`), or a certificate signed by a CA (`kind: "leaf"`, like
/// `cfssl gencert -ca=... -profile=...`). Files: DIR/NAME.pem (0644) and DIR/NAME-key.pem
/// (0600). Outputs: `cert` and `key`, the two paths.
///
/// A CA is never replaced: when its files exist they are kept, and if they do not match the
/// requested subject or key algorithm the task fails instead. A leaf is left alone while it
/// is signed by the given CA, has the requested subject, SANs, usages and key algorithm, its
/// key matches, and it is not within `renew_before` of expiring; otherwise it is reissued with
/// a new key, and the changes say why.
///
/// The CA can be read from any host of the run (`ca: #{ host, cert, key }`), or from the
/// controller (`ca: #{ controller: DIR }`). Its key is only held in the engine's memory while
/// signing: certgen never writes it anywhere. Make the dependency on the CA task explicit by
/// passing `ca_task.output("cert")` and `ca_task.output("key")` as `ca.cert` and `ca.key`
/// (this also keeps check mode from failing before the CA exists), or with `.after(ca_task)`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "CertgenArgs", bound = "")]
pub struct CertgenArgs<S: Stage = Sealed> {
    /// "ca" for a self-signed CA, "leaf" for a certificate signed by `ca`.
    pub kind: Kind,
    /// Subject common name. Required for a CA; a leaf defaults to the host's hostname (a fact).
    pub cn: Option<String>,
    /// Subject attributes besides CN, like cfssl's CSR `names`:
    /// [#{ C: "US", ST: "CA", L: "San Francisco", O: "...", OU: "..." }].
    /// Each attribute may appear once in all.
    #[serde(default)]
    pub names: Vec<Name>,
    /// Key algorithm: "rsa2048", "rsa4096", "ecdsa-p256", "ecdsa-p384" or "ed25519".
    /// Default "ecdsa-p256" (cfssl's default); the guide's CA uses "rsa2048".
    pub key: Option<KeyAlgo>,
    /// Lifetime from issue, as in ca-config.json: "43800h" (the default, 5 years), or days: "365d".
    pub expiry: Option<String>,
    /// Absolute directory on the host for the files; created (0755) when missing.
    pub dir: S::Of<AbsolutePath>,
    /// File base name: NAME.pem and NAME-key.pem (`cfssljson -bare NAME`).
    /// Default "ca" for a CA, the profile's name ("server", "client", "peer") for a leaf.
    pub name: Option<String>,
    /// Leaf: the guide's ca-config.json profile. "server" and "peer": signing, key
    /// encipherment, server auth, client auth; "client": signing, key encipherment, client auth.
    pub profile: Option<Profile>,
    /// Leaf: cfssl usage names, replacing the profile's ("signing", "key encipherment",
    /// "server auth", "client auth", "digital signature", "cert sign", ...).
    pub usages: Option<Vec<Usage>>,
    /// Leaf: subject alternative names; IP addresses and DNS names (cfssl's `hosts`).
    /// Default, for certificates with server auth ("server", "peer"): the host's hostname and
    /// all its non-loopback IPv4 addresses (facts). Others (a "client") get none, like the
    /// guide's client.json.
    pub hosts: Option<Vec<S::Of<San>>>,
    /// Leaf: the signing CA. Either on a host of the run:
    /// #{ host: "etcd0", cert: "/etc/kubernetes/pki/etcd/ca.pem", key: "/etc/kubernetes/pki/etcd/ca-key.pem" }
    /// (`host` defaults to this task's host: the guide's way, with the CA key copied to each
    /// host), or on the controller: #{ controller: "pki/etcd" } (ca.pem and ca-key.pem in that
    /// directory, relative to the engine's working directory; `cert`/`key` override the names).
    pub ca: Option<CaSource<S>>,
    /// Leaf: reissue when less than this much validity is left. Default "720h" (30 days).
    pub renew_before: Option<String>,
    /// Leaf: also keep a copy of the signing CA's certificate (never its key) at this absolute
    /// path on the host, e.g. DIR/ca.pem for etcd's --trusted-ca-file: what the controller-signed
    /// mode needs instead of copying the CA around. Written (0644) when missing or different.
    pub write_ca_cert: Option<S::Of<AbsolutePath>>,
}

contract::resolve_struct!(CertgenArgs<S> {
    kind, cn, names, key, expiry, dir, name, profile, usages, hosts, ca, renew_before, write_ca_cert,
});
contract::resolve_struct!(CaSource<S> { host, cert, key, controller });
contract::resolve_as_is!(Kind);

/// What to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A self-signed certificate authority.
    Ca,
    /// A certificate signed by a CA.
    Leaf,
}

/// Where the signing CA's certificate and key are.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "CaSource", bound = "")]
pub struct CaSource<S: Stage = Sealed> {
    /// The inventory host holding the CA files. Default: the task's own host.
    pub host: Option<String>,
    /// Path of the CA certificate (absolute on a host; relative to `controller` there).
    pub cert: Option<S::Of<String>>,
    /// Path of the CA private key (absolute on a host; relative to `controller` there).
    pub key: Option<S::Of<String>>,
    /// A directory on the controller holding the CA (ca.pem and ca-key.pem unless `cert`/`key` say otherwise).
    pub controller: Option<String>,
}

const DEFAULT_EXPIRY: &str = "43800h";
const DEFAULT_RENEW_BEFORE: &str = "720h";

/// `path`, given as argument `what`, is absolute (when it is known: a CA's path on a host is
/// often another task's output).
fn absolute(what: &str, path: Option<&String>) -> Result<(), ArgsError> {
    match path {
        Some(path) if !path.starts_with('/') => {
            Err(ArgsError::invalid(what, format!("{what} must be an absolute path, got {path:?}")))
        }
        _ => Ok(()),
    }
}

impl<S: Stage> Validate for CertgenArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if let Some(name) = &self.name
            && (name.is_empty() || name.contains('/'))
        {
            return Err(ArgsError::invalid(
                "name",
                format!("name must be a file base name without '/', got {name:?}"),
            ));
        }
        parse_duration(self.expiry.as_deref().unwrap_or(DEFAULT_EXPIRY))
            .map_err(|e| ArgsError::invalid("expiry", format!("expiry: {e}")))?;
        Subject::new(self.cn.as_deref().unwrap_or("-"), &self.names)?;
        match self.kind {
            Kind::Ca => {
                if self.cn.is_none() {
                    return Err(ArgsError::invalid("", "a CA needs a cn"));
                }
                let leaf_only = [
                    ("profile", self.profile.is_some()),
                    ("usages", self.usages.is_some()),
                    ("hosts", self.hosts.is_some()),
                    ("ca", self.ca.is_some()),
                    ("renew_before", self.renew_before.is_some()),
                    ("write_ca_cert", self.write_ca_cert.is_some()),
                ];
                if let Some((arg, _)) = leaf_only.iter().find(|(_, given)| *given) {
                    return Err(ArgsError::invalid(*arg, format!("{arg} is only for kind: \"leaf\"")));
                }
            }
            Kind::Leaf => {
                if self.profile.is_none() && self.usages.as_ref().is_none_or(Vec::is_empty) {
                    return Err(ArgsError::invalid(
                        "",
                        "a leaf needs a profile (\"server\", \"client\", \"peer\") or usages",
                    ));
                }
                if self.profile.is_none() && self.name.is_none() {
                    return Err(ArgsError::invalid("", "without a profile, give the file base name in name"));
                }
                let ca = self.ca.as_ref().ok_or_else(|| {
                    ArgsError::invalid(
                        "",
                        "a leaf needs ca: #{ host, cert, key } (a CA on a host) or #{ controller: DIR }",
                    )
                })?;
                match (&ca.controller, &ca.host) {
                    (Some(_), Some(_)) => {
                        return Err(ArgsError::invalid("ca", "ca: give either host or controller, not both"));
                    }
                    (Some(dir), None) if dir.is_empty() => {
                        return Err(ArgsError::invalid("ca.controller", "ca.controller must not be empty"));
                    }
                    (Some(_), None) => {}
                    (None, _) => {
                        let (Some(cert), Some(key)) = (&ca.cert, &ca.key) else {
                            return Err(ArgsError::invalid(
                                "ca",
                                "ca needs cert and key paths (or controller: DIR)",
                            ));
                        };
                        absolute("ca.cert", S::known(cert))?;
                        absolute("ca.key", S::known(key))?;
                    }
                }
                parse_duration(self.renew_before.as_deref().unwrap_or(DEFAULT_RENEW_BEFORE))
                    .map_err(|e| ArgsError::invalid("renew_before", format!("renew_before: {e}")))?;
            }
        }
        Ok(self)
    }
}

impl CertgenArgs<Resolved> {
    fn file_base(&self) -> &str {
        match (&self.name, self.kind, self.profile) {
            (Some(name), _, _) => name,
            (None, Kind::Ca, _) => "ca",
            (None, Kind::Leaf, Some(profile)) => profile.file_base(),
            (None, Kind::Leaf, None) => "cert",
        }
    }

    fn paths(&self) -> (String, String) {
        let dir = self.dir.trim_end_matches('/');
        let base = self.file_base();
        (format!("{dir}/{base}.pem"), format!("{dir}/{base}-key.pem"))
    }

    fn key_algo(&self) -> KeyAlgo {
        self.key.unwrap_or(KeyAlgo::EcdsaP256)
    }

    fn expiry(&self) -> Result<Duration, ModuleError> {
        parse_duration(self.expiry.as_deref().unwrap_or(DEFAULT_EXPIRY))
            .map_err(|e| ModuleError::Refused(e.to_string()))
    }

    /// Whether the certificate is for a TLS server (has server auth), and so names a host.
    fn serves(&self) -> bool {
        self.usages().extended.iter().any(|e| e.oid() == "1.3.6.1.5.5.7.3.1")
    }

    fn usages(&self) -> Usages {
        match (&self.usages, self.profile) {
            (Some(names), _) => Usages::from_names(names),
            (None, Some(profile)) => Usages::from_names(profile.usages()),
            (None, None) => Usages::default(),
        }
    }
}

/// The `certgen` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Certgen {
    args: CertgenArgs<Resolved>,
}

impl Certgen {
    pub fn new(args: CertgenArgs<Resolved>) -> Self {
        Self { args }
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[async_trait]
impl Module for Certgen {
    fn name(&self) -> &'static str {
        "certgen"
    }

    fn wants_facts(&self) -> bool {
        self.args.kind == Kind::Leaf
            && (self.args.cn.is_none() || (self.args.hosts.is_none() && self.args.serves()))
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let mut plan = match self.args.kind {
            Kind::Ca => self.plan_ca(cx).await?,
            Kind::Leaf => self.plan_leaf(cx).await?,
        };
        let (cert, key) = self.args.paths();
        plan.outputs.insert("cert".into(), Value::String(cert));
        plan.outputs.insert("key".into(), Value::String(key));
        Ok(plan)
    }
}

impl Certgen {
    async fn plan_ca(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let (cert_path, key_path) = args.paths();
        let subject = Subject::new(args.cn.as_deref().unwrap_or_default(), &args.names)
            .map_err(|e| ModuleError::Refused(e.to_string()))?;
        let found = read_files(cx.host, &[&cert_path, &key_path], &args.dir).await?;
        let (cert, key) = (&found.files[0], &found.files[1]);
        let host = cx.host.name();
        match (cert, key) {
            (None, None) => {
                let expiry = args.expiry()?;
                let spec = CertSpec {
                    subject,
                    sans: Vec::new(),
                    usages: Usages::ca(),
                    key: args.key_algo(),
                    expiry,
                };
                let mut changes = Vec::new();
                if !found.dir_exists {
                    changes.push(format!("create directory {}", args.dir));
                }
                changes.push(format!(
                    "create CA {cert_path} and {key_path}: {}, {}, valid {}",
                    spec.subject,
                    spec.key,
                    args.expiry.as_deref().unwrap_or(DEFAULT_EXPIRY)
                ));
                Ok(Plan {
                    changes,
                    action: Some(Box::new(IssueAction {
                        signer: Signer::SelfSigned,
                        spec,
                        dir: (!found.dir_exists).then(|| args.dir.to_string()),
                        cert_path,
                        key_path,
                        ca_copy: None,
                    })),
                    ..Plan::default()
                })
            }
            (Some(_), None) | (None, Some(_)) => {
                let (present, absent) =
                    if cert.is_some() { (&cert_path, &key_path) } else { (&key_path, &cert_path) };
                Err(ModuleError::Refused(format!(
                    "{present} exists on {host} but {absent} does not; certgen never replaces a CA. \
                     Restore the missing file, or remove both to make a new CA"
                )))
            }
            (Some(cert), Some(key)) => {
                let origin = format!("{cert_path} on {host}");
                let ca = Authority::new(&cert.content, key.content.clone(), &origin).map_err(|e| {
                    ModuleError::Refused(format!(
                        "{e}; certgen never replaces a CA: fix or remove both files"
                    ))
                })?;
                let mut mismatches = Vec::new();
                if ca.cert.subject != subject.normalized() {
                    mismatches.push(format!(
                        "its subject is {}, this task asks for {subject}",
                        spec::describe_dn(&ca.cert.subject)
                    ));
                }
                if ca.cert.key != args.key_algo().kind() {
                    mismatches.push(format!(
                        "its key is {}, this task asks for {}",
                        ca.cert.key,
                        args.key_algo()
                    ));
                }
                if !mismatches.is_empty() {
                    return Err(ModuleError::Refused(format!(
                        "CA {origin} exists but {}. certgen never replaces a CA: change the task to match, \
                         or remove {cert_path} and {key_path} to make a new one",
                        mismatches.join(" and ")
                    )));
                }
                Ok(key_mode_plan(&key_path, key))
            }
        }
    }

    async fn plan_leaf(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let own = cx.host.name();
        let (cert_path, key_path) = args.paths();
        let facts = cx.facts;
        let fact_error = |what: &str| {
            ModuleError::Refused(format!("cannot default {what}: the facts of {own} have no usable value"))
        };
        // A host's facts may be forged: it must not get a certificate in another host's name.
        let another_host = |name: &str| name != own && cx.peers.peer(name).is_some();
        let cn = match &args.cn {
            Some(cn) => cn.clone(),
            None => {
                let facts = facts.ok_or_else(|| fact_error("cn to the hostname"))?;
                let hostname = reported_hostname(facts, &another_host)?;
                hostname.ok_or_else(|| fact_error("cn to the hostname"))?
            }
        };
        let subject = Subject::new(&cn, &args.names).map_err(|e| ModuleError::Refused(e.to_string()))?;
        let sans = match &args.hosts {
            Some(hosts) => hosts.clone(),
            None if args.serves() => default_sans(facts.ok_or_else(|| fact_error("hosts"))?, &another_host)?,
            None => Vec::new(),
        };
        let mut unique = BTreeSet::new();
        let sans: Vec<San> = sans.into_iter().filter(|s| unique.insert(s.clone())).collect();
        let ca_source = args.ca.clone().ok_or_else(|| ModuleError::Refused("ca is missing".into()))?;
        // The leaf's own files, and the CA copy when one is wanted.
        let mut leaf_paths = vec![cert_path.as_str(), key_path.as_str()];
        leaf_paths.extend(args.write_ca_cert.as_deref());

        // One round trip per host: the CA's files are read with the leaf's when they share a host.
        let (authority, found, ca_where) = match (&ca_source.controller, ca_source.host.as_deref()) {
            (Some(dir), _) => {
                let dir = std::path::Path::new(dir);
                let cert = dir.join(ca_source.cert.as_deref().unwrap_or("ca.pem"));
                let key = dir.join(ca_source.key.as_deref().unwrap_or("ca-key.pem"));
                let origin = format!("{} on the controller", cert.display());
                // The controller's files are read like any host's (relative paths are from
                // engine's working directory).
                let controller = LocalHost::controller();
                let read = |path: std::path::PathBuf| {
                    let controller = &controller;
                    async move {
                        let path = path.to_string_lossy().into_owned();
                        remote::read(controller, &path).await.map_err(|e| {
                            ModuleError::Refused(format!(
                                "cannot read CA file {path} on the controller: {}",
                                e.reason()
                            ))
                        })
                    }
                };
                let (cert_pem, key_pem) = (read(cert).await?, read(key).await?);
                let authority = Authority::new(&cert_pem, key_pem, &origin).map_err(ModuleError::Refused)?;
                let found = read_files(cx.host, &leaf_paths, &args.dir).await?;
                (authority, found, "the controller".to_owned())
            }
            (None, host) => {
                let (ca_cert, ca_key) = (
                    ca_source.cert.as_deref().unwrap_or_default(),
                    ca_source.key.as_deref().unwrap_or_default(),
                );
                let ca_host_name = host.unwrap_or(own).to_owned();
                let (ca_files, found) = if ca_host_name == own {
                    let all: Vec<&str> =
                        [ca_cert, ca_key].into_iter().chain(leaf_paths.iter().copied()).collect();
                    let mut found = read_files(cx.host, &all, &args.dir).await?;
                    let ca_files: Vec<Option<Read>> = found.files.drain(..2).collect();
                    (ca_files, found)
                } else {
                    let peer = cx.peers.peer(&ca_host_name).ok_or_else(|| {
                        ModuleError::Refused(format!(
                            "ca.host {ca_host_name:?} is not a host of this run; the CA must be on a host of the inventory"
                        ))
                    })?;
                    // The two hosts are read at once.
                    let ca_paths = [ca_cert, ca_key];
                    let (ca_found, found) = tokio::join!(
                        read_files(peer.as_ref(), &ca_paths, "/"),
                        read_files(cx.host, &leaf_paths, &args.dir)
                    );
                    (ca_found?.files, found?)
                };
                let missing = |path: &str| {
                    ModuleError::Refused(format!(
                        "CA file {path} not found on {ca_host_name}. Create the CA first (kind: \"ca\") and make this \
                         task depend on it: ca.cert = ca_task.output(\"cert\"), ca.key = ca_task.output(\"key\"), \
                         or .after(ca_task)"
                    ))
                };
                let [Some(cert), Some(key)] = [&ca_files[0], &ca_files[1]] else {
                    return Err(missing(if ca_files[0].is_none() { ca_cert } else { ca_key }));
                };
                let origin = format!("{ca_cert} on {ca_host_name}");
                let authority = Authority::new(&cert.content, key.content.clone(), &origin)
                    .map_err(ModuleError::Refused)?;
                (authority, found, ca_host_name)
            }
        };

        let usages = args.usages();
        let wanted = inspect::Wanted {
            subject: subject.clone(),
            sans: sans.iter().cloned().collect(),
            usages: usages.clone(),
            key: args.key_algo().kind(),
            renew_before_secs: parse_duration(args.renew_before.as_deref().unwrap_or(DEFAULT_RENEW_BEFORE))
                .map_err(|e| ModuleError::Refused(e.to_string()))?
                .as_secs() as i64,
        };
        let (cert, key) = (&found.files[0], &found.files[1]);
        // The CA copy: written when missing or different (it is public; no secret here).
        let ca_copy = args.write_ca_cert.as_ref().and_then(|path| {
            let current = found.files.get(2).and_then(Option::as_ref);
            let same = current.is_some_and(|c| c.content == authority.cert_pem && c.mode == 0o644);
            (!same).then(|| (path.to_string(), authority.cert_pem.clone(), current.is_some()))
        });
        let reasons = match cert {
            None => Vec::new(),
            Some(cert) => {
                let reasons = inspect::reissue_reasons(
                    &wanted,
                    &cert.content,
                    key.as_ref().map(|k| k.content.as_slice()),
                    &authority.cert,
                    now(),
                );
                if reasons.is_empty() {
                    let mut plan = match key {
                        Some(key) => key_mode_plan(&key_path, key),
                        None => Plan::unchanged(),
                    };
                    if let Some((path, pem, exists)) = ca_copy {
                        plan.changes.push(ca_copy_change(&path, exists));
                        let then = plan.action.take();
                        plan.action = Some(Box::new(CaCopyAction { path, pem, then }));
                    }
                    return Ok(plan);
                }
                reasons
            }
        };
        let spec = CertSpec { subject, sans, usages, key: args.key_algo(), expiry: args.expiry()? };
        let mut changes = Vec::new();
        if !found.dir_exists {
            changes.push(format!("create directory {}", args.dir));
        }
        let diff = if reasons.is_empty() {
            let sans = spec.sans.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            changes.push(format!(
                "issue {cert_path} and {key_path}: {}, SANs [{sans}], {}, {}, valid {}, signed by CA {} on {ca_where}",
                spec.subject,
                usages_label(args),
                spec.key,
                args.expiry.as_deref().unwrap_or(DEFAULT_EXPIRY),
                spec::describe_dn(&authority.cert.subject),
            ));
            None
        } else {
            changes
                .push(format!("reissue {cert_path} and {key_path} with a new key: {}", reasons.join("; ")));
            cx.options.diff.then(|| format!("certificate would be reissued: {}\n", reasons.join("; ")))
        };
        if let Some((path, _, exists)) = &ca_copy {
            changes.push(ca_copy_change(path, *exists));
        }
        Ok(Plan {
            changes,
            diff,
            action: Some(Box::new(IssueAction {
                signer: Signer::Ca(Box::new(authority)),
                spec,
                dir: (!found.dir_exists).then(|| args.dir.to_string()),
                cert_path,
                key_path,
                ca_copy: ca_copy.map(|(path, pem, _)| (path, pem)),
            })),
            ..Plan::default()
        })
    }
}

fn ca_copy_change(path: &str, exists: bool) -> String {
    if exists {
        format!("update CA certificate copy {path}")
    } else {
        format!("write CA certificate copy {path}")
    }
}

fn usages_label(args: &CertgenArgs<Resolved>) -> String {
    match (&args.usages, args.profile) {
        (Some(_), _) => {
            let usages = args.usages();
            let ekus: BTreeSet<_> = usages.extended.iter().copied().collect();
            format!(
                "usages {}; {}",
                Usages::describe_key_bits(usages.key_bits),
                Usages::describe_extended(&ekus)
            )
        }
        (None, Some(profile)) => format!("{} profile", profile.file_base()),
        (None, None) => "no usages".into(),
    }
}

/// The hostname the host reports, refused when it did not parse or names another host of the
/// run (`another_host`); `None` when it is empty.
fn reported_hostname(
    facts: &Facts,
    another_host: &dyn Fn(&str) -> bool,
) -> Result<Option<String>, ModuleError> {
    let Some(name) = facts.lookup("hostname")?.and_then(Value::as_str).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    if another_host(name) {
        return Err(ModuleError::Refused(format!(
            "{} reports its hostname as {name:?}, the name of another host of this run: \
             refused as a certificate name (give `cn` and `hosts` to name it yourself)",
            facts.host()
        )));
    }
    Ok(Some(name.to_owned()))
}

/// The host's own names for a leaf's SANs: its hostname, then every non-loopback IPv4 address.
/// Facts that did not parse, and a hostname that names another host, are refused.
fn default_sans(facts: &Facts, another_host: &dyn Fn(&str) -> bool) -> Result<Vec<San>, ModuleError> {
    let mut sans = Vec::new();
    let refused = |e: spec::InvalidHostName| ModuleError::Refused(format!("hosts: {e}"));
    if let Some(hostname) = reported_hostname(facts, another_host)? {
        sans.push(San::parse(&hostname).map_err(refused)?);
    }
    let interfaces = facts.lookup("interfaces")?.and_then(Value::as_object);
    for (name, interface) in interfaces.into_iter().flatten() {
        if name == "lo" {
            continue;
        }
        for address in interface.get("ipv4").and_then(Value::as_array).into_iter().flatten() {
            let Some(address) = address.as_str() else { continue };
            let san = San::parse(address).map_err(refused)?;
            if !matches!(&san, San::Ip(ip) if ip.is_loopback()) {
                sans.push(san);
            }
        }
    }
    if sans.is_empty() {
        return Err(ModuleError::Refused("hosts: the host has no hostname or address in its facts".into()));
    }
    Ok(sans)
}

/// Unchanged, or just tightening the key file's mode to 0600.
fn key_mode_plan(key_path: &str, key: &Read) -> Plan {
    if key.mode == 0o600 {
        return Plan::unchanged();
    }
    Plan {
        changes: vec![format!("mode of {key_path} {:04o} -> 0600", key.mode)],
        action: Some(Box::new(KeyModeAction { path: key_path.to_owned() })),
        ..Plan::default()
    }
}

/// Who signs a new certificate.
#[derive(Debug)]
enum Signer {
    SelfSigned,
    Ca(Box<Authority>),
}

/// Generates the key and certificate (in controller memory) and writes exactly the planned
/// files: the directory when it was missing, the key (0600), then the certificate (0644).
#[derive(Debug)]
struct IssueAction {
    signer: Signer,
    spec: CertSpec,
    /// The directory to create, when the plan found it missing.
    dir: Option<String>,
    cert_path: String,
    key_path: String,
    /// A copy of the CA certificate to write: (path, PEM).
    ca_copy: Option<(String, Vec<u8>)>,
}

#[async_trait]
impl Action for IssueAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let IssueAction { signer, spec, dir, cert_path, key_path, ca_copy } = *self;
        // Key generation is CPU work (RSA 4096 takes a while): keep it off the async workers.
        let issued: Issued = tokio::task::spawn_blocking(move || match &signer {
            Signer::SelfSigned => issue::ca(&spec, now()),
            Signer::Ca(authority) => issue::leaf(&spec, authority, now()),
        })
        .await
        .map_err(|e| ModuleError::Refused(format!("certificate generation stopped: {e}")))?
        .map_err(ModuleError::Refused)?;
        if let Some(dir) = dir {
            remote::mkdir(host, &dir, &Attrs { mode: Some(0o755), ..Attrs::default() }).await?;
        }
        let mode = |m| Attrs { mode: Some(m), ..Attrs::default() };
        remote::write_atomic(host, &key_path, issued.key_pem.0.as_bytes(), &mode(0o600)).await?;
        remote::write_atomic(host, &cert_path, issued.cert_pem.as_bytes(), &mode(0o644)).await?;
        if let Some((path, pem)) = ca_copy {
            remote::write_atomic(host, &path, &pem, &mode(0o644)).await?;
        }
        Ok(Outputs::new())
    }
}

/// Writes the CA certificate copy, then whatever else was planned (a key mode fix).
#[derive(Debug)]
struct CaCopyAction {
    path: String,
    pem: Vec<u8>,
    then: Option<Box<dyn Action>>,
}

#[async_trait]
impl Action for CaCopyAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let attrs = Attrs { mode: Some(0o644), ..Attrs::default() };
        remote::write_atomic(host, &self.path, &self.pem, &attrs).await?;
        match self.then {
            Some(action) => action.apply(host).await,
            None => Ok(Outputs::new()),
        }
    }
}

#[derive(Debug)]
struct KeyModeAction {
    path: String,
}

#[async_trait]
impl Action for KeyModeAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        remote::set_attrs(host, &self.path, &Attrs { mode: Some(0o600), ..Attrs::default() }).await?;
        Ok(Outputs::new())
    }
}

/// What certgen reads from a host, on arbitrary bytes (for [`crate::fuzz`]): the file-reading
/// script's answer for two files, each file read as a certificate and as a key, and the
/// reasons to reissue a certificate read from it.
pub(crate) fn read_untrusted(bytes: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    if let Ok(found) = files::parse(bytes, 2) {
        seen.extend(found.files.into_iter().flatten().map(|f| f.content));
    }
    seen.push(bytes.to_vec());
    let mut reasons = Vec::new();
    let Ok(subject) = Subject::new("etcd0", &[]) else { return reasons };
    for content in &seen {
        let _ = inspect::parse_key(content);
        if let Ok(cert) = inspect::parse_pem(content) {
            let wanted = inspect::Wanted {
                subject: subject.clone(),
                sans: BTreeSet::new(),
                usages: Usages::from_names(Profile::Server.usages()),
                key: cert.key.clone(),
                renew_before_secs: 720 * 3600,
            };
            reasons.extend(inspect::reissue_reasons(&wanted, content, Some(content), &cert, 1_700_000_000));
        }
    }
    reasons
}

#[cfg(test)]
mod tests;
