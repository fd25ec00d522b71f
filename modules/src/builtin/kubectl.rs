//! `kubectl`: apply, get, delete, patch and wait through the host's real `kubectl`, the node
//! operations of maintenance (cordon, drain, uncordon), plus one typed operation,
//! `kube_proxy_server`, for pointing kube-proxy at a load balancer.
//!
//! Planning asks the API server itself: `apply` and `patch` run with `--dry-run=server` and
//! read kubectl's own `created`/`configured`/`unchanged`/`(no change)` verdicts; `delete` lists
//! what the selector matches; `get` and `wait` only read, so they run while planning.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::validate::Validate;
use contract::arg::{Operand, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::{self, command_error, run_checked};
use contract::shell::join;
use contract::untrusted::Malformed;

const DEFAULT_KUBECONFIG: &str = "/etc/kubernetes/admin.conf";

/// Runs the host's `kubectl` against `kubeconfig` (default /etc/kubernetes/admin.conf).
/// `apply`: `manifest` (inline YAML, sent on stdin) or `path` (a file on the host); changed only when
/// kubectl says `created` or `configured` (checked first with `--dry-run=server`).
/// `get`: `kind` [`name`] [`selector`]; outputs `object` (the parsed JSON) and, without a name,
/// `names`. `delete`: `kind` with `name` or `selector`; changed only when something matches.
/// `patch`: `kind`, `name`, `patch` (a merge patch); changed unless kubectl says "(no change)".
/// `wait`: `kind` [`name`|`selector`] until `condition` (default "Ready") holds, up to `timeout`
/// seconds; never changes anything. `kube_proxy_server`: sets `server:` in the kubeconfig.conf of
/// ConfigMap kube-system/kube-proxy to `server`, applies it, and restarts (deletes) the kube-proxy
/// pods, only when it changed; output `previous` (the old server). `cordon` and `uncordon`: node
/// `name`, changed only when the node's `spec.unschedulable` differs. `drain`: node `name`
/// (`kubectl drain --ignore-daemonsets --delete-emptydir-data --timeout=<timeout>s`, default 300),
/// always planned as a change (the pods to evict are known only to the API server); it fails when
/// an eviction is refused until the timeout (a PodDisruptionBudget), leaving the node cordoned.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "KubectlArgs", bound = "")]
pub struct KubectlArgs<S: Stage = Sealed> {
    /// "apply", "get", "delete", "patch", "wait", "cordon", "drain", "uncordon" or "kube_proxy_server".
    pub action: KubectlAction,
    /// The kubeconfig kubectl uses (default /etc/kubernetes/admin.conf).
    pub kubeconfig: Option<String>,
    /// The namespace (`--namespace`); kubectl's default when not given.
    pub namespace: Option<S::Of<Operand>>,
    /// apply: the objects, as YAML (several documents allowed).
    pub manifest: Option<String>,
    /// apply: a manifest file on the host instead of `manifest`.
    pub path: Option<String>,
    /// get/delete/patch/wait: the resource type, e.g. "configmap", "pod".
    pub kind: Option<S::Of<Operand>>,
    /// get/delete/patch/wait: one object's name; cordon/drain/uncordon: the node's.
    pub name: Option<S::Of<Operand>>,
    /// get/delete/wait: a label selector, e.g. "k8s-app=kube-proxy".
    pub selector: Option<String>,
    /// patch: a JSON merge patch, as a map.
    #[schemars(with = "Option<Value>")]
    pub patch: Option<Value>,
    /// wait: the condition to wait for (default "Ready").
    pub condition: Option<String>,
    /// wait: seconds to wait (default 60); drain: seconds to wait for the evictions (default 300).
    pub timeout: Option<u64>,
    /// kube_proxy_server: the API server URL kube-proxy should use, e.g. "https://10.77.0.10:6443".
    pub server: Option<S::Of<HttpsUrl>>,
}

contract::resolve_struct!(KubectlArgs<S> {
    action, kubeconfig, namespace, manifest, path, kind, name, selector, patch, condition, timeout, server,
});
contract::resolve_as_is!(KubectlAction);

/// An `https://` URL (an API server's): refused otherwise when the arguments are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl(String);

impl HttpsUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HttpsUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};
        let text = String::deserialize(deserializer)?;
        match text.strip_prefix("https://") {
            Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => Ok(Self(text)),
            _ => Err(D::Error::invalid_value(Unexpected::Str(&text), &"an https:// URL")),
        }
    }
}

contract::string_schema!(HttpsUrl);

/// What `kubectl` should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KubectlAction {
    Apply,
    Get,
    Delete,
    Patch,
    Wait,
    /// Mark a node unschedulable.
    Cordon,
    /// Cordon a node and evict its pods.
    Drain,
    /// Mark a node schedulable again.
    Uncordon,
    /// Point kube-proxy's kubeconfig at `server` and restart its pods when that changed.
    KubeProxyServer,
}

impl KubectlAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Get => "get",
            Self::Delete => "delete",
            Self::Patch => "patch",
            Self::Wait => "wait",
            Self::Cordon => "cordon",
            Self::Drain => "drain",
            Self::Uncordon => "uncordon",
            Self::KubeProxyServer => "kube_proxy_server",
        }
    }
}

impl<S: Stage> Validate for KubectlArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        use KubectlAction::*;
        let allowed: &[&str] = match self.action {
            Apply => &["manifest", "path"],
            Get => &["kind", "name", "selector"],
            Delete => &["kind", "name", "selector"],
            Patch => &["kind", "name", "patch"],
            Wait => &["kind", "name", "selector", "condition", "timeout"],
            KubeProxyServer => &["server"],
            Cordon | Uncordon => &["name"],
            Drain => &["name", "timeout"],
        };
        let given = [
            ("manifest", self.manifest.is_some()),
            ("path", self.path.is_some()),
            ("kind", self.kind.is_some()),
            ("name", self.name.is_some()),
            ("selector", self.selector.is_some()),
            ("patch", self.patch.is_some()),
            ("condition", self.condition.is_some()),
            ("timeout", self.timeout.is_some()),
            ("server", self.server.is_some()),
        ];
        if let Some((field, _)) = given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
            return Err(ArgsError::invalid(
                *field,
                format!("{field} does not apply to action {}", self.action.as_str()),
            ));
        }
        match self.action {
            Apply if self.manifest.is_some() == self.path.is_some() => {
                return Err(ArgsError::invalid("action", "action apply needs either manifest or path"));
            }
            Get | Delete | Patch | Wait if self.kind.is_none() => {
                return Err(ArgsError::invalid("", "this action needs kind"));
            }
            Delete if self.name.is_none() && self.selector.is_none() => {
                return Err(ArgsError::invalid("action", "action delete needs name or selector"));
            }
            Patch if self.name.is_none() || !self.patch.as_ref().is_some_and(Value::is_object) => {
                return Err(ArgsError::invalid("action", "action patch needs name and patch (a map)"));
            }
            Cordon | Drain | Uncordon if self.name.is_none() => {
                return Err(ArgsError::invalid("action", "this action needs name (the node's)"));
            }
            KubeProxyServer if self.server.is_none() => {
                return Err(ArgsError::invalid("action", "action kube_proxy_server needs server"));
            }
            _ => {}
        }
        Ok(self)
    }
}

impl KubectlArgs<Resolved> {
    /// `kubectl --kubeconfig=K [--namespace=NS] VERB FLAGS... [-- OPERANDS...]`: every value
    /// of an option is joined to its flag, and operands follow `--`, so no value is read as an
    /// option (the types refuse a leading `-` too, at seal).
    fn command(&self, verb: &str, flags: &[String], operands: &[String]) -> Vec<String> {
        let kubeconfig = self.kubeconfig.as_deref().unwrap_or(DEFAULT_KUBECONFIG);
        let mut argv = vec!["kubectl".to_owned(), format!("--kubeconfig={kubeconfig}")];
        if let Some(ns) = &self.namespace {
            argv.push(format!("--namespace={ns}"));
        }
        argv.push(verb.to_owned());
        argv.extend(flags.iter().cloned());
        if !operands.is_empty() {
            argv.push("--".to_owned());
            argv.extend(operands.iter().cloned());
        }
        argv
    }

    /// The objects an action is about: `--selector=S` (a flag), and `kind [name]` (operands).
    fn target(&self) -> (Vec<String>, Vec<String>) {
        let flags = self.selector.iter().map(|s| format!("--selector={s}")).collect();
        let mut operands: Vec<String> = self.kind.iter().map(Operand::to_string).collect();
        operands.extend(self.name.iter().map(Operand::to_string));
        (flags, operands)
    }

    /// `VERB` on the target, with `flags` before the target's own.
    fn on_target(&self, verb: &str, flags: &[&str]) -> Vec<String> {
        let (selector, operands) = self.target();
        let mut all: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
        all.extend(selector);
        self.command(verb, &all, &operands)
    }
}

/// The `kubectl` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Kubectl {
    args: KubectlArgs<Resolved>,
}

impl Kubectl {
    pub fn new(args: KubectlArgs<Resolved>) -> Self {
        Self { args }
    }
}

/// Runs an argument vector, with optional stdin; fails with kubectl's stderr.
async fn kubectl(host: &dyn Host, argv: &[String], stdin: Option<&str>) -> Result<String, ModuleError> {
    let mut exec = Exec::new(join(argv));
    exec.stdin = stdin.map(|s| s.as_bytes().to_vec());
    Ok(run_checked(host, exec).await?.stdout_text())
}

/// `kind/name verdict` lines whose verdict means a change.
fn changed_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l.trim_end_matches(" (server dry run)").trim())
        .filter(|l| !l.is_empty() && !l.ends_with(" unchanged") && !l.ends_with("(no change)"))
        .map(str::to_owned)
        .collect()
}

fn lines_output(stdout: &str) -> Value {
    Value::Array(stdout.lines().map(|l| Value::String(l.to_owned())).collect())
}

#[async_trait]
impl Module for Kubectl {
    fn name(&self) -> &'static str {
        "kubectl"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let kubeconfig = self.args.kubeconfig.as_deref().unwrap_or(DEFAULT_KUBECONFIG);
        if remote::stat(cx.host, kubeconfig).await?.is_none() {
            // No cluster to talk to. In check mode before `kubeadm init` this is expected, and
            // the engine reports the task as unknown rather than failed.
            return Err(ModuleError::Refused(format!(
                "kubectl {}: {kubeconfig} does not exist: there is no cluster to talk to yet",
                self.args.action.as_str()
            )));
        }
        self.plan_now(cx).await
    }
}

impl Kubectl {
    async fn plan_now(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let a = &self.args;
        let host = cx.host;
        match a.action {
            KubectlAction::Apply => {
                let source = format!("--filename={}", a.path.as_deref().unwrap_or("-"));
                let dry = kubectl(
                    host,
                    &a.command("apply", &["--dry-run=server".to_owned(), source.clone()], &[]),
                    a.manifest.as_deref(),
                )
                .await?;
                let changes = changed_lines(&dry);
                if changes.is_empty() {
                    let mut outputs = Outputs::new();
                    outputs.insert("results".into(), lines_output(&dry.replace(" (server dry run)", "")));
                    return Ok(Plan { outputs, ..Plan::unchanged() });
                }
                let argv = a.command("apply", &[source], &[]);
                Ok(Plan {
                    changes,
                    action: Some(Box::new(KubectlAct {
                        argv,
                        stdin: a.manifest.clone(),
                        then: None,
                        timeout: None,
                    })),
                    ..Plan::default()
                })
            }
            KubectlAction::Get => {
                let text = kubectl(host, &a.on_target("get", &["--output=json"]), None).await?;
                let object: Value = serde_json::from_str(&text)
                    .map_err(|e| ModuleError::Refused(format!("kubectl get printed no JSON: {e}")))?;
                let mut outputs = Outputs::new();
                if let Some(items) = object["items"].as_array() {
                    let names = items.iter().filter_map(|i| i["metadata"]["name"].as_str()).map(Value::from);
                    outputs.insert("names".into(), Value::Array(names.collect()));
                }
                outputs.insert("object".into(), object);
                Ok(Plan { outputs, ..Plan::unchanged() })
            }
            KubectlAction::Delete => {
                let argv = a.on_target("get", &["--output=name"]);
                let out = host.exec(Exec::new(join(&argv))).await?;
                let stderr = String::from_utf8_lossy(&out.stderr);
                let names = if out.success() {
                    out.stdout_text()
                } else if stderr.contains("(NotFound)") {
                    String::new()
                } else {
                    return Err(command_error(join(&argv), &out));
                };
                let changes: Vec<String> =
                    names.lines().filter(|l| !l.is_empty()).map(|n| format!("delete {n}")).collect();
                if changes.is_empty() {
                    return Ok(Plan::unchanged());
                }
                Ok(Plan {
                    changes,
                    action: Some(Box::new(KubectlAct {
                        argv: a.on_target("delete", &[]),
                        stdin: None,
                        then: None,
                        timeout: None,
                    })),
                    ..Plan::default()
                })
            }
            KubectlAction::Patch => {
                let patch = format!("--patch={}", a.patch.clone().unwrap_or_default());
                let dry = a.on_target("patch", &["--type=merge", &patch, "--dry-run=server"]);
                let changes = changed_lines(&kubectl(host, &dry, None).await?);
                if changes.is_empty() {
                    return Ok(Plan::unchanged());
                }
                let argv = a.on_target("patch", &["--type=merge", &patch]);
                Ok(Plan {
                    changes,
                    action: Some(Box::new(KubectlAct { argv, stdin: None, then: None, timeout: None })),
                    ..Plan::default()
                })
            }
            KubectlAction::Wait => {
                let condition = format!("--for=condition={}", a.condition.as_deref().unwrap_or("Ready"));
                let timeout = format!("--timeout={}s", a.timeout.unwrap_or(60));
                let out = kubectl(host, &a.on_target("wait", &[&condition, &timeout]), None).await?;
                let mut outputs = Outputs::new();
                outputs.insert("results".into(), lines_output(&out));
                Ok(Plan { outputs, ..Plan::unchanged() })
            }
            KubectlAction::KubeProxyServer => self.plan_kube_proxy(host).await,
            KubectlAction::Cordon | KubectlAction::Drain | KubectlAction::Uncordon => {
                self.plan_node(host).await
            }
        }
    }

    /// cordon, drain and uncordon: the node's `spec.unschedulable`, read first.
    async fn plan_node(&self, host: &dyn Host) -> Result<Plan, ModuleError> {
        let a = &self.args;
        let node = a.name.as_ref().map(Operand::to_string).unwrap_or_default();
        let text = kubectl(
            host,
            &a.command("get", &["--output=json".to_owned()], &["node".to_owned(), node.clone()]),
            None,
        )
        .await?;
        let object: Value = serde_json::from_str(&text).map_err(|e| {
            Malformed::whole(format!("not the JSON of a node: {e}"))
                .on(host.name(), format!("the output of `kubectl get node {node}`"))
        })?;
        let unschedulable = match &object["spec"]["unschedulable"] {
            Value::Null => false,
            Value::Bool(b) => *b,
            other => {
                return Err(Malformed::new(&other.to_string(), "spec.unschedulable is not a boolean")
                    .on(host.name(), format!("the output of `kubectl get node {node}`"))
                    .into());
            }
        };
        let (verb, wanted, flags) = match a.action {
            KubectlAction::Cordon => ("cordon", Some(true), Vec::new()),
            KubectlAction::Uncordon => ("uncordon", Some(false), Vec::new()),
            _ => (
                "drain",
                None,
                vec![
                    "--ignore-daemonsets".to_owned(),
                    "--delete-emptydir-data".to_owned(),
                    format!("--timeout={}s", a.timeout.unwrap_or(300)),
                ],
            ),
        };
        if wanted == Some(unschedulable) {
            return Ok(Plan::unchanged());
        }
        let change = match a.action {
            KubectlAction::Drain if unschedulable => {
                format!("drain node/{node} (already cordoned): evict its pods")
            }
            KubectlAction::Drain => format!("drain node/{node}: cordon it, evict its pods"),
            _ => format!("{verb} node/{node}"),
        };
        let argv = a.command(verb, &flags, &[node]);
        // A drain may take its whole --timeout, beyond the transport's default command timeout.
        let timeout = (a.action == KubectlAction::Drain)
            .then(|| std::time::Duration::from_secs(a.timeout.unwrap_or(300).saturating_add(60)));
        Ok(Plan {
            changes: vec![change],
            action: Some(Box::new(KubectlAct { argv, stdin: None, then: None, timeout })),
            ..Plan::default()
        })
    }

    /// The guide's "point kube-proxy at the load balancer", as one typed, idempotent step.
    async fn plan_kube_proxy(&self, host: &dyn Host) -> Result<Plan, ModuleError> {
        let a = &self.args;
        let wanted = a.server.as_ref().map(HttpsUrl::as_str).unwrap_or_default().to_owned();
        let base = KubectlArgs { namespace: Operand::new("kube-system"), ..a.clone() };
        let operands = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        let get = base.command("get", &operands(&["--output=json"]), &operands(&["configmap", "kube-proxy"]));
        let text = kubectl(host, &get, None).await?;
        let mut cm: Value = serde_json::from_str(&text).map_err(|e| {
            ModuleError::Refused(format!("kubectl get configmap kube-proxy printed no JSON: {e}"))
        })?;
        let Some(kubeconfig) = cm["data"]["kubeconfig.conf"].as_str().map(str::to_owned) else {
            return Err(ModuleError::Refused(
                "configmap kube-system/kube-proxy has no kubeconfig.conf".into(),
            ));
        };
        let (rewritten, previous) = set_server(&kubeconfig, &wanted);
        let mut outputs = Outputs::new();
        outputs.insert("previous".into(), Value::String(previous.clone()));
        if rewritten == kubeconfig {
            return Ok(Plan { outputs, ..Plan::unchanged() });
        }
        cm["data"]["kubeconfig.conf"] = Value::String(rewritten);
        let manifest = serde_json::to_string_pretty(&cm).unwrap_or_default();
        Ok(Plan {
            changes: vec![
                format!("server {previous} -> {wanted} in configmap kube-system/kube-proxy"),
                "restart the kube-proxy pods (delete -l k8s-app=kube-proxy)".into(),
            ],
            outputs,
            action: Some(Box::new(KubectlAct {
                argv: base.command("apply", &operands(&["--filename=-"]), &[]),
                stdin: Some(manifest),
                then: Some(base.command(
                    "delete",
                    &operands(&["--selector=k8s-app=kube-proxy"]),
                    &operands(&["pod"]),
                )),
                timeout: None,
            })),
            ..Plan::default()
        })
    }
}

/// Replaces the value of every `server:` line of a kubeconfig with `server` (as the guide's
/// `sed 's#server:.*#server: ...#'`), keeping indentation; returns the text and the first old value.
fn set_server(kubeconfig: &str, server: &str) -> (String, String) {
    let mut previous = String::new();
    let mut out = String::new();
    for line in kubeconfig.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let trimmed = body.trim_start();
        if let Some(old) = trimmed.strip_prefix("server:") {
            if previous.is_empty() {
                old.trim().clone_into(&mut previous);
            }
            let indent = &body[..body.len() - trimmed.len()];
            out.push_str(&format!("{indent}server: {server}"));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    (out, previous)
}

#[derive(Debug)]
struct KubectlAct {
    argv: Vec<String>,
    stdin: Option<String>,
    /// A second command, run after the first succeeded (the kube-proxy restart).
    then: Option<Vec<String>>,
    /// The first command's own timeout, when it may outlast the transport's default.
    timeout: Option<std::time::Duration>,
}

#[async_trait]
impl Action for KubectlAct {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let out = match self.timeout {
            Some(timeout) => {
                run_checked(host, Exec::new(join(&self.argv)).timeout(timeout)).await?.stdout_text()
            }
            None => kubectl(host, &self.argv, self.stdin.as_deref()).await?,
        };
        let mut lines = out.lines().map(str::to_owned).collect::<Vec<_>>();
        if let Some(then) = &self.then {
            lines.extend(kubectl(host, then, None).await?.lines().map(str::to_owned));
        }
        let mut outputs = Outputs::new();
        outputs.insert("results".into(), Value::Array(lines.into_iter().map(Value::String).collect()));
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: Value) -> Result<KubectlArgs<Resolved>, String> {
        crate::validate::resolved::<KubectlArgs>(value).map_err(|e| e.to_string())
    }

    #[test]
    fn rewrites_only_server_lines() {
        let text = "clusters:\n- cluster:\n    server: https://10.77.0.21:6443\n  name: default\n";
        let (out, previous) = set_server(text, "https://10.77.0.10:6443");
        assert_eq!(out, "clusters:\n- cluster:\n    server: https://10.77.0.10:6443\n  name: default\n");
        assert_eq!(previous, "https://10.77.0.21:6443");
        assert_eq!(set_server(&out, "https://10.77.0.10:6443").0, out);
    }

    #[test]
    fn reads_kubectls_verdicts() {
        let out = "configmap/a unchanged (server dry run)\nconfigmap/b configured (server dry run)\n\
                   pod/c created\nconfigmap/d patched (no change)\n";
        assert_eq!(changed_lines(out), ["configmap/b configured", "pod/c created"]);
    }

    #[test]
    fn checks_arguments_per_action() {
        assert!(args(serde_json::json!({"action": "apply", "manifest": "x"})).is_ok());
        assert!(args(serde_json::json!({"action": "apply"})).is_err());
        assert!(args(serde_json::json!({"action": "apply", "manifest": "x", "kind": "pod"})).is_err());
        assert!(
            args(serde_json::json!({"action": "delete", "kind": "pod"})).unwrap_err().contains("selector")
        );
        assert!(args(serde_json::json!({"action": "kube_proxy_server", "server": "10.0.0.1"})).is_err());
        assert!(args(serde_json::json!({"action": "get", "kind": "cm", "nmae": "x"})).is_err());
        let a = args(
            serde_json::json!({"action": "get", "kind": "cm", "name": "x y", "namespace": "kube-system"}),
        )
        .unwrap();
        assert_eq!(
            join(a.on_target("get", &["--output=json"])),
            "'kubectl' '--kubeconfig=/etc/kubernetes/admin.conf' '--namespace=kube-system' 'get' \
             '--output=json' '--' 'cm' 'x y'"
        );
        let a = args(serde_json::json!({"action": "delete", "kind": "pod", "selector": "app=x"})).unwrap();
        assert_eq!(
            join(a.on_target("delete", &[])),
            "'kubectl' '--kubeconfig=/etc/kubernetes/admin.conf' 'delete' '--selector=app=x' '--' 'pod'"
        );
    }

    /// A name, kind or namespace that a command would read as an option is refused at seal, at
    /// its own argument (`--field-selector=...` as a name would delete every match).
    #[test]
    fn option_like_names_kinds_and_namespaces_are_refused() {
        let refused = "must be a value that does not start with '-' (a command would read it as an option)";
        for (field, args_json) in [
            (
                "name",
                serde_json::json!({"action": "delete", "kind": "pod", "name": "--field-selector=metadata.name!=x"}),
            ),
            ("kind", serde_json::json!({"action": "get", "kind": "-A"})),
            (
                "namespace",
                serde_json::json!({"action": "get", "kind": "pod", "namespace": "--all-namespaces"}),
            ),
        ] {
            let error = args(args_json).unwrap_err();
            assert!(
                error.starts_with(&format!("argument `{field}` {refused}, got the string \"-")),
                "{error}"
            );
        }
    }

    #[test]
    fn node_actions_need_the_node_and_only_drain_takes_a_timeout() {
        assert!(args(serde_json::json!({"action": "drain", "name": "worker1", "timeout": 30})).is_ok());
        assert!(args(serde_json::json!({"action": "cordon", "name": "worker1"})).is_ok());
        assert!(args(serde_json::json!({"action": "uncordon"})).unwrap_err().contains("needs name"));
        let timeout = args(serde_json::json!({"action": "uncordon", "name": "w", "timeout": 3})).unwrap_err();
        assert!(timeout.contains("timeout does not apply to action uncordon"), "{timeout}");
        assert!(
            args(serde_json::json!({"action": "drain", "name": "--all"}))
                .unwrap_err()
                .contains("start with '-'")
        );
    }
}
