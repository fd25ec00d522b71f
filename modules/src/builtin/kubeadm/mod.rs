//! `kubeadm`: `init` a control-plane node from a typed configuration, `join` a node, create a
//! bootstrap token, `reset` a node, or upgrade the cluster ([`upgrade`]: preflight, `upgrade
//! apply`, `upgrade node`), through the host's real `kubeadm`.
//!
//! ```text
//!   init:  plan reads  [manifests/kube-apiserver.yaml?] + [sha256 of the config file we wrote]
//!          fresh                 -> write config, `kubeadm init --config` , parse join line
//!          same config           -> ok; outputs from ca.crt (openssl) + `kubeadm token list`
//!                                   (no usable token: `kubeadm token create`, reported changed)
//!          other/unknown config  -> refused (reset first)
//!   join:  /etc/kubernetes/kubelet.conf exists -> ok, else `kubeadm join --config FILE`
//!          (FILE: a JoinConfiguration sent on stdin into a mktemp file, 0600, removed after)
//! ```
//!
//! What the node prints is not trusted (`contract::untrusted`): its endpoint, token and CA
//! hash become other hosts' `kubeadm join` arguments, so each must be of its form (host:port,
//! `[a-z0-9]{6}.[a-z0-9]{16}`, `sha256:` and 64 hex digits) or the task fails, naming the host.

pub mod certs;
pub mod config;
pub mod upgrade;
pub mod values;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::diff::sha256_hex;
use contract::error::{ArgsError, ModuleError};
use contract::host::{Exec, ExecOutput, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, Attrs, command_error, run_checked};
use contract::shell::{join, quote};
use contract::untrusted::{Malformed, printable};

use config::{JoinConfigurationV1beta3, KubeadmConfig};
use values::{BootstrapToken, CaCertHash, Endpoint};

/// The static pod manifest whose presence means "this node is initialised" (kubeadm's own preflight check).
const APISERVER_MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
const CA_CERT: &str = "/etc/kubernetes/pki/ca.crt";
const DEFAULT_CONFIG_PATH: &str = "/etc/kubernetes/kubeadm-init.yaml";
/// kubeadm init pulls images and waits for the control plane; give it time.
const KUBEADM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs the host's `kubeadm`. `action: "init"` renders `config` (kubeadm's own format, checked
/// field by field when the playbook is sealed: v1alpha1 `MasterConfiguration`, or v1beta3/v1beta4
/// `InitConfiguration` + `ClusterConfiguration` as a list) to `config_path` and runs
/// `kubeadm init --config`; it is a no-op when the node was initialised from the same file, and
/// refuses when it was initialised otherwise. `action: "join"` runs `kubeadm join --config` with a
/// v1beta3 JoinConfiguration (endpoint, token, CA hash; kubeadm 1.22 or later) in a temporary 0600
/// file, removed afterwards, unless /etc/kubernetes/kubelet.conf exists: the token never appears
/// on a command line. `action: "token_create"`
/// creates a bootstrap token (changed on every run). `action: "reset"` runs `kubeadm reset -f` when
/// the node has a control plane or a kubelet.conf. Outputs of init and token_create: `endpoint`,
/// `token`, `ca_cert_hash`, `join_command` (also on a no-op init: the hash from ca.crt, the first
/// valid default-node token from `kubeadm token list`, or a new one when none is left).
/// Upgrades ("Upgrading kubeadm clusters"), each with the target `version` ("v1.31.1"):
/// `upgrade_preflight` (read-only, on the first control-plane node) refuses an upgrade that
/// skips a minor version, goes down, or breaks the kubelet skew policy, as kubeadm does, before
/// anything changes; its outputs are `control_plane`, `target`, `nodes` (node name to kubelet
/// version) and `pending` (the nodes whose kubelet is not at the target). `upgrade_apply` runs
/// `kubeadm upgrade apply --yes` unless this node's kube-apiserver is at the target;
/// `upgrade_node` runs `kubeadm upgrade node` unless this control-plane node is at the target (a
/// worker always runs it: guard it with `when` on the preflight's `pending`). `certs_renew` runs
/// `kubeadm certs renew NAME` for each certificate kubeadm manages on the node that expires within
/// `renew_before` (default "720h"), read by the engine; outputs `expiring` and `days_left`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "KubeadmArgs", bound = "")]
pub struct KubeadmArgs<S: Stage = Sealed> {
    /// "init", "join", "token_create", "reset", "upgrade_preflight", "upgrade_apply", "upgrade_node"
    /// or "certs_renew".
    pub action: KubeadmAction,
    /// init: the kubeadm configuration, a map (one document, e.g. v1alpha1 MasterConfiguration) or
    /// a list of maps (v1beta3/v1beta4 InitConfiguration and ClusterConfiguration), with kubeadm's
    /// field names. Unknown fields and kinds are errors.
    #[schemars(with = "Option<Value>")]
    pub config: Option<Value>,
    /// init: where the rendered configuration is written (default /etc/kubernetes/kubeadm-init.yaml).
    pub config_path: Option<S::Of<AbsolutePath>>,
    /// join: the API server endpoint, "host:port".
    pub endpoint: Option<S::Of<Endpoint>>,
    /// join: the bootstrap token, "[a-z0-9]{6}.[a-z0-9]{16}".
    pub token: Option<S::Of<BootstrapToken>>,
    /// join: "sha256:<hex>" of the cluster CA's public key.
    pub ca_cert_hash: Option<S::Of<CaCertHash>>,
    /// join: join as a control-plane node (`--control-plane`).
    #[serde(default)]
    pub control_plane: bool,
    /// upgrade_*: the Kubernetes version to upgrade to, "v1.31.1".
    pub version: Option<upgrade::KubeVersion>,
    /// certs_renew: renew what expires within this long, "720h" (the default), "90d".
    pub renew_before: Option<String>,
}

contract::resolve_struct!(KubeadmArgs<S> {
    action, config, config_path, endpoint, token, ca_cert_hash, control_plane, version, renew_before,
});
contract::resolve_as_is!(KubeadmAction);
contract::resolve_as_is!(upgrade::KubeVersion);

/// What `kubeadm` should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KubeadmAction {
    /// `kubeadm init --config`.
    Init,
    /// `kubeadm join`.
    Join,
    /// `kubeadm token create --print-join-command`.
    TokenCreate,
    /// `kubeadm reset -f`.
    Reset,
    /// Check versions and skew before an upgrade (read-only).
    UpgradePreflight,
    /// `kubeadm upgrade apply --yes VERSION` (the first control-plane node).
    UpgradeApply,
    /// `kubeadm upgrade node` (the other nodes).
    UpgradeNode,
    /// `kubeadm certs renew` for the certificates close to expiry.
    CertsRenew,
}

/// The typed configuration in `config`, or the mistake at its path inside `config`.
fn parse_config(config: &Value) -> Result<KubeadmConfig, ArgsError> {
    KubeadmConfig::parse(config).map_err(|e| {
        let message = format!("config: {e}");
        ArgsError::invalid(e.within("config").path, message)
    })
}

impl<S: Stage> Validate for KubeadmArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        let join_fields = self.endpoint.is_some() || self.token.is_some() || self.ca_cert_hash.is_some();
        let upgrade = matches!(
            self.action,
            KubeadmAction::UpgradePreflight | KubeadmAction::UpgradeApply | KubeadmAction::UpgradeNode
        );
        if upgrade != self.version.is_some() {
            return Err(if upgrade {
                ArgsError::invalid("action", "the upgrade actions need version (\"v1.31.1\")")
            } else {
                ArgsError::invalid("version", "version belongs to the upgrade actions")
            });
        }
        if self.renew_before.is_some() && self.action != KubeadmAction::CertsRenew {
            return Err(ArgsError::invalid("renew_before", "renew_before belongs to action certs_renew"));
        }
        match self.action {
            KubeadmAction::CertsRenew => {
                if self.config.is_some() || self.config_path.is_some() || join_fields || self.control_plane {
                    return Err(ArgsError::invalid("action", "action certs_renew takes only renew_before"));
                }
                crate::builtin::certgen::spec::parse_duration(
                    self.renew_before.as_deref().unwrap_or(certs::DEFAULT_RENEW_BEFORE),
                )
                .map_err(|e| ArgsError::invalid("renew_before", format!("renew_before: {e}")))?;
            }
            KubeadmAction::UpgradePreflight | KubeadmAction::UpgradeApply | KubeadmAction::UpgradeNode => {
                if self.config.is_some() || self.config_path.is_some() || join_fields || self.control_plane {
                    return Err(ArgsError::invalid("action", "the upgrade actions take only version"));
                }
            }
            KubeadmAction::Init => {
                let config =
                    self.config.as_ref().ok_or_else(|| ArgsError::invalid("", "action init needs config"))?;
                if join_fields || self.control_plane {
                    let given = [
                        ("endpoint", self.endpoint.is_some()),
                        ("token", self.token.is_some()),
                        ("ca_cert_hash", self.ca_cert_hash.is_some()),
                        ("control_plane", self.control_plane),
                    ];
                    let first = given.iter().find(|(_, set)| *set).map_or("", |(name, _)| name);
                    return Err(ArgsError::invalid(
                        first,
                        "endpoint, token, ca_cert_hash and control_plane belong to action join",
                    ));
                }
                parse_config(config)?;
            }
            KubeadmAction::Join => {
                if self.config.is_some() || self.config_path.is_some() {
                    let given = if self.config.is_some() { "config" } else { "config_path" };
                    return Err(ArgsError::invalid(given, "config and config_path belong to action init"));
                }
                if self.endpoint.is_none() || self.token.is_none() || self.ca_cert_hash.is_none() {
                    return Err(ArgsError::invalid(
                        "action",
                        "action join needs endpoint, token and ca_cert_hash",
                    ));
                }
            }
            KubeadmAction::TokenCreate | KubeadmAction::Reset => {
                if self.config.is_some() || self.config_path.is_some() || join_fields || self.control_plane {
                    let action = if self.action == KubeadmAction::Reset { "reset" } else { "token_create" };
                    return Err(ArgsError::invalid(
                        "action",
                        format!("action {action} takes no other arguments"),
                    ));
                }
            }
        }
        Ok(self)
    }
}

/// The `kubeadm` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Kubeadm {
    args: KubeadmArgs<Resolved>,
    /// init: the configuration file's text, and the API endpoint it names.
    rendered: Option<(String, Option<String>)>,
}

impl Kubeadm {
    /// The module; for `init`, with its configuration rendered (or the mistake in it).
    pub fn new(args: KubeadmArgs<Resolved>) -> Result<Self, ArgsError> {
        let rendered = match (&args.action, &args.config) {
            (KubeadmAction::Init, Some(config)) => {
                let config = parse_config(config)?;
                Some((config.render(), config.endpoint()))
            }
            _ => None,
        };
        Ok(Self { args, rendered })
    }
}

#[async_trait]
impl Module for Kubeadm {
    fn name(&self) -> &'static str {
        "kubeadm"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        match self.args.action {
            KubeadmAction::Init => self.plan_init(cx.host).await,
            KubeadmAction::Join => self.plan_join(cx.host).await,
            KubeadmAction::TokenCreate => Ok(Plan {
                changes: vec!["create a bootstrap token (kubeadm token create)".into()],
                action: Some(Box::new(KubeadmAct::TokenCreate)),
                ..Plan::default()
            }),
            KubeadmAction::UpgradePreflight => upgrade::plan_preflight(cx.host, self.target()?).await,
            KubeadmAction::UpgradeApply => upgrade::plan_apply(cx.host, self.target()?).await,
            KubeadmAction::UpgradeNode => upgrade::plan_node(cx.host, self.target()?).await,
            KubeadmAction::CertsRenew => {
                let text = self.args.renew_before.as_deref().unwrap_or(certs::DEFAULT_RENEW_BEFORE);
                let secs = crate::builtin::certgen::spec::parse_duration(text)
                    .map_err(|e| ModuleError::Refused(format!("renew_before: {e}")))?
                    .as_secs();
                certs::plan_renew(cx.host, i64::try_from(secs).unwrap_or(i64::MAX)).await
            }
            KubeadmAction::Reset => {
                let test = format!("[ -e {} ] || [ -e {} ]", quote(APISERVER_MANIFEST), quote(KUBELET_CONF));
                if host_test(cx.host, &test).await? {
                    Ok(Plan {
                        changes: vec!["kubeadm reset -f".into()],
                        action: Some(Box::new(KubeadmAct::Reset)),
                        ..Plan::default()
                    })
                } else {
                    Ok(Plan::unchanged())
                }
            }
        }
    }
}

impl Kubeadm {
    fn target(&self) -> Result<upgrade::KubeVersion, ModuleError> {
        self.args.version.ok_or_else(|| ModuleError::Refused("the upgrade actions need version".to_owned()))
    }
}

async fn host_test(host: &dyn Host, test: &str) -> Result<bool, ModuleError> {
    let out = host.exec(Exec::new(format!("if {test}; then echo yes; else echo no; fi"))).await?;
    if !out.success() {
        return Err(command_error(test.to_owned(), &out));
    }
    Ok(out.stdout_text() == "yes")
}

impl Kubeadm {
    async fn plan_init(&self, host: &dyn Host) -> Result<Plan, ModuleError> {
        let (rendered, endpoint) = self.rendered.clone().unwrap_or_default();
        let path = self.args.config_path.as_ref().map_or(DEFAULT_CONFIG_PATH, |p| p.as_str()).to_owned();
        let script = format!(
            "if [ -e {m} ]; then echo initialised; else echo fresh; fi; \
             if [ -f {c} ]; then sha256sum < {c}; else echo none; fi",
            m = quote(APISERVER_MANIFEST),
            c = quote(&path)
        );
        let out = run_checked(host, Exec::new(script)).await?.stdout_text();
        let mut lines = out.lines();
        let initialised = lines.next() == Some("initialised");
        let written = lines.next().and_then(|l| l.split_whitespace().next()).filter(|h| *h != "none");
        let wanted = sha256_hex(rendered.as_bytes());
        if !initialised {
            return Ok(Plan {
                changes: vec![
                    format!("write {path} ({} bytes)", rendered.len()),
                    match &endpoint {
                        Some(endpoint) => format!("kubeadm init --config {path} (API endpoint {endpoint})"),
                        None => format!("kubeadm init --config {path}"),
                    },
                ],
                action: Some(Box::new(KubeadmAct::Init { path, rendered })),
                ..Plan::default()
            });
        }
        if written != Some(wanted.as_str()) {
            let why = if written.is_some() {
                format!("{path} differs from this task's config")
            } else {
                format!("{path} is missing, so the node was not initialised by this task")
            };
            return Err(ModuleError::Refused(format!(
                "{} is already initialised by kubeadm with a different configuration ({why}); \
                 run kubeadm with action \"reset\" first to re-initialise it",
                host.name()
            )));
        }
        let (outputs, token_missing) = cluster_outputs(host).await?;
        if token_missing {
            return Ok(Plan {
                changes: vec!["create a bootstrap token (none left that is valid)".into()],
                outputs,
                action: Some(Box::new(KubeadmAct::TokenCreate)),
                ..Plan::default()
            });
        }
        Ok(Plan { outputs, ..Plan::unchanged() })
    }

    async fn plan_join(&self, host: &dyn Host) -> Result<Plan, ModuleError> {
        let a = &self.args;
        let endpoint = a.endpoint.as_ref().map(Endpoint::to_string).unwrap_or_default();
        let token = a.token.as_ref().map_or("", BootstrapToken::as_str);
        let hash = a.ca_cert_hash.as_ref().map_or("", CaCertHash::as_str);
        let mut outputs = Outputs::new();
        outputs.insert("endpoint".into(), Value::String(endpoint.clone()));
        if host_test(host, &format!("[ -e {} ]", quote(KUBELET_CONF))).await? {
            return Ok(Plan { outputs, ..Plan::unchanged() });
        }
        Ok(Plan {
            changes: vec![format!(
                "kubeadm join {endpoint}{}",
                if a.control_plane { " --control-plane" } else { "" }
            )],
            outputs,
            action: Some(Box::new(KubeadmAct::Join {
                config: JoinConfigurationV1beta3::new(&endpoint, token, hash, a.control_plane).render(),
                endpoint,
                token: token.to_owned(),
            })),
            ..Plan::default()
        })
    }
}

/// Outputs of an initialised node without changing it: the CA hash (openssl), the endpoint
/// (admin.conf's server), and the first valid default-node token. The flag says no token was found.
async fn cluster_outputs(host: &dyn Host) -> Result<(Outputs, bool), ModuleError> {
    let script = format!(
        "openssl x509 -pubkey -noout -in {ca} | openssl pkey -pubin -outform der | sha256sum && \
         sed -n 's/^ *server: *https:\\/\\///p' {admin} | head -n 1 && \
         kubeadm token list -o json",
        ca = quote(CA_CERT),
        admin = quote(ADMIN_CONF)
    );
    let out = run_checked(host, Exec::new(script.clone())).await?.stdout_text();
    let (hash_line, rest) = out.split_once('\n').unwrap_or((&out, ""));
    let (endpoint, tokens) = rest.split_once('\n').unwrap_or((rest, ""));
    let hex = hash_line.split_whitespace().next().unwrap_or_default();
    let hash = format!("sha256:{hex}");
    if !CaCertHash::is_hash(&hash) {
        return Err(ModuleError::Refused(format!(
            "cannot compute the CA hash from {CA_CERT}: got \"{}\"",
            printable(hash_line)
        )));
    }
    let endpoint = endpoint.trim();
    if !is_endpoint(endpoint) {
        let refused = Malformed::new(endpoint, "an API server endpoint that is not host:port");
        return Err(refused.on(host.name(), format!("the server of {ADMIN_CONF}")).into());
    }
    let token = usable_token(tokens);
    let mut outputs = Outputs::new();
    insert_join_outputs(&mut outputs, endpoint, token.as_deref().unwrap_or_default(), &hash);
    Ok((outputs, token.is_none()))
}

/// An API server endpoint as kubeadm prints and takes one: an IPv4 address, a bracketed IPv6
/// address or an RFC 1123 host name, then `:` and a port. What a host reports goes into other
/// hosts' `kubeadm join` arguments, so nothing else (an option, a space, a second value) passes.
fn is_endpoint(endpoint: &str) -> bool {
    let Some((host, port)) = endpoint.rsplit_once(':') else { return false };
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<std::net::Ipv4Addr>().is_ok() || contract::facts::is_hostname(host),
    };
    port_ok && host_ok
}

/// The first token of `kubeadm token list -o json` (a stream of objects) that nodes can join
/// with. Objects after one that does not parse, and tokens that are not of kubeadm's form,
/// are not used.
pub(crate) fn usable_token(stream: &str) -> Option<String> {
    serde_json::Deserializer::from_str(stream)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .find(|t| {
            let has = |field: &str, want: &str| {
                t[field].as_array().is_some_and(|a| a.iter().any(|v| v.as_str() == Some(want)))
            };
            has("usages", "authentication")
                && has("groups", "system:bootstrappers:kubeadm:default-node-token")
                && t["token"].as_str().is_some_and(BootstrapToken::is_token)
        })
        .and_then(|t| t["token"].as_str().map(str::to_owned))
}

fn insert_join_outputs(outputs: &mut Outputs, endpoint: &str, token: &str, hash: &str) {
    outputs.insert("endpoint".into(), Value::String(endpoint.to_owned()));
    outputs.insert("token".into(), Value::String(token.to_owned()));
    outputs.insert("ca_cert_hash".into(), Value::String(hash.to_owned()));
    outputs.insert(
        "join_command".into(),
        Value::String(format!(
            "kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash {hash}"
        )),
    );
}

/// Reads `kubeadm join <endpoint> --token <t> [\] --discovery-token-ca-cert-hash <h>` from
/// kubeadm's output. The values go into other hosts' `kubeadm join`, so each must be of its
/// kind ([`is_endpoint`], [`is_token`], [`is_hash`]); the line is refused otherwise.
pub(crate) fn parse_join_line(stdout: &str) -> Result<(String, String, String), Malformed> {
    let flat = stdout.replace("\\\n", " ");
    let line = flat
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("kubeadm join "))
        .ok_or_else(|| Malformed::whole("no `kubeadm join` line"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |flag: &str| words.iter().position(|w| *w == flag).and_then(|i| words.get(i + 1)).copied();
    match (words.get(2).copied(), after("--token"), after("--discovery-token-ca-cert-hash")) {
        (Some(endpoint), Some(token), Some(hash))
            if is_endpoint(endpoint) && BootstrapToken::is_token(token) && CaCertHash::is_hash(hash) =>
        {
            Ok((endpoint.to_owned(), token.to_owned(), hash.to_owned()))
        }
        // The line holds the token: it is described, not shown.
        _ => Err(Malformed::whole(
            "a `kubeadm join` line without an endpoint (host:port), a token and a CA hash of their forms",
        )),
    }
}

/// kubeadm's `[ERROR ...]` preflight lines, if the failure was a preflight failure.
fn preflight_errors(output: &ExecOutput) -> Option<String> {
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("[ERROR")).collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// `kubeadm join` with its settings in a file: `mktemp` makes it (`engine-join.*` in `$TMPDIR`
/// or /tmp, mode 0600, so only the user the task runs as can read it), the JoinConfiguration
/// arrives on stdin, and the file is removed when the command ends. The token and the CA hash
/// never appear on a command line, where every local user (`ps`, `/proc/*/cmdline`) and sudo's
/// log would see them. A join killed by SIGKILL (its timeout) cannot remove its file: the next
/// join on that host first removes this user's `engine-join.*` files older than 60 minutes
/// (longer than any join runs; `-mmin +60`).
const JOIN_SCRIPT: &str = "d=${TMPDIR:-/tmp}; \
    find \"$d\" -maxdepth 1 -type f -name 'engine-join.*' -user \"$(id -u)\" -mmin +60 -exec rm -f -- {} + 2>/dev/null; \
    f=$(mktemp \"$d/engine-join.XXXXXXXXXX\") || exit 1; trap 'rm -f -- \"$f\"' EXIT; \
    cat > \"$f\" && kubeadm join --config \"$f\"";

/// How errors show [`JOIN_SCRIPT`].
const JOIN_SHOWN: &str = "kubeadm join --config <a temporary 0600 file>";

enum KubeadmAct {
    Init {
        path: String,
        rendered: String,
    },
    /// `config` is the rendered JoinConfiguration; it holds `token`.
    Join {
        endpoint: String,
        config: String,
        token: String,
    },
    TokenCreate,
    Reset,
    /// `kubeadm upgrade ...` (no secret in it).
    Upgrade {
        argv: Vec<String>,
    },
    /// `kubeadm certs renew NAME`, for each.
    Renew {
        names: Vec<String>,
    },
}

impl std::fmt::Debug for KubeadmAct {
    /// Never shows the token or the join configuration that holds it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Init { path, rendered } => {
                write!(f, "Init {{ path: {path:?}, rendered: <{} bytes> }}", rendered.len())
            }
            Self::Join { endpoint, config, .. } => {
                write!(f, "Join {{ endpoint: {endpoint:?}, config: <{} bytes> }}", config.len())
            }
            Self::TokenCreate => f.write_str("TokenCreate"),
            Self::Reset => f.write_str("Reset"),
            Self::Upgrade { argv } => write!(f, "Upgrade {argv:?}"),
            Self::Renew { names } => write!(f, "Renew {names:?}"),
        }
    }
}

impl KubeadmAct {
    /// Runs `exec` (shown as `shown` in errors); a failure names kubeadm's preflight errors
    /// when there are any, and never shows `secret`.
    async fn kubeadm(
        host: &dyn Host,
        exec: Exec,
        shown: &str,
        secret: Option<&str>,
    ) -> Result<ExecOutput, ModuleError> {
        let out = host.exec(exec.timeout(KUBEADM_TIMEOUT)).await?;
        if out.success() {
            return Ok(out);
        }
        let hide = |text: &str| secret.map_or_else(|| text.to_owned(), |s| text.replace(s, "<token>"));
        if let Some(errors) = preflight_errors(&out) {
            return Err(ModuleError::Refused(format!(
                "`{shown}` failed kubeadm's preflight checks:\n{}",
                hide(&errors)
            )));
        }
        let mut error = command_error(hide(shown), &out);
        if let ModuleError::Command { stderr, .. } = &mut error {
            *stderr = hide(stderr);
        }
        Err(error)
    }

    /// Runs `argv`, which holds no secret.
    async fn kubeadm_argv(host: &dyn Host, argv: &[&str]) -> Result<ExecOutput, ModuleError> {
        let line = join(argv);
        Self::kubeadm(host, Exec::new(line.clone()), &line, None).await
    }
}

#[async_trait]
impl Action for KubeadmAct {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let mut outputs = Outputs::new();
        match *self {
            KubeadmAct::Init { path, rendered } => {
                if let Some((dir, _)) = path.rsplit_once('/').filter(|(d, _)| !d.is_empty()) {
                    remote::mkdir(host, dir, &Attrs::default()).await?;
                }
                let attrs = Attrs { mode: Some(0o600), ..Attrs::default() };
                remote::write_atomic(host, &path, rendered.as_bytes(), &attrs).await?;
                let out = Self::kubeadm_argv(host, &["kubeadm", "init", "--config", &path]).await?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                let (ep, token, hash) = parse_join_line(&stdout)
                    .map_err(|m| m.on(host.name(), "the output of `kubeadm init`"))?;
                insert_join_outputs(&mut outputs, &ep, &token, &hash);
            }
            KubeadmAct::Join { endpoint, config, token } => {
                let exec = Exec::new(JOIN_SCRIPT).stdin(config.into_bytes());
                Self::kubeadm(host, exec, JOIN_SHOWN, Some(&token)).await?;
                outputs.insert("endpoint".into(), Value::String(endpoint));
            }
            KubeadmAct::TokenCreate => {
                let out =
                    Self::kubeadm_argv(host, &["kubeadm", "token", "create", "--print-join-command"]).await?;
                let (ep, token, hash) = parse_join_line(&out.stdout_text())
                    .map_err(|m| m.on(host.name(), "the output of `kubeadm token create`"))?;
                insert_join_outputs(&mut outputs, &ep, &token, &hash);
            }
            KubeadmAct::Reset => {
                Self::kubeadm_argv(host, &["kubeadm", "reset", "-f"]).await?;
            }
            KubeadmAct::Upgrade { argv } => {
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                Self::kubeadm_argv(host, &argv).await?;
            }
            KubeadmAct::Renew { names } => {
                for name in &names {
                    Self::kubeadm_argv(host, &["kubeadm", "certs", "renew", name]).await?;
                }
                outputs.insert("renewed".into(), Value::from(names));
            }
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests;
