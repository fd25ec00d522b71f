use serde_json::json;

use async_trait::async_trait;

use super::config::KubeadmConfig;
use super::*;

fn args(value: Value) -> Result<KubeadmArgs<Resolved>, String> {
    crate::validate::resolved::<KubeadmArgs>(value).map_err(|e| e.to_string())
}

/// The arguments as sealed: run-time references allowed.
fn sealed(value: Value) -> Result<KubeadmArgs, String> {
    contract::args::from_value::<KubeadmArgs>(value).and_then(Validate::validate).map_err(|e| e.to_string())
}

fn render(config: Value) -> String {
    KubeadmConfig::parse(&config).unwrap().render()
}

/// The HA guide's master configuration.
fn guide_v1alpha1() -> Value {
    json!({
        "apiVersion": "kubeadm.k8s.io/v1alpha1",
        "kind": "MasterConfiguration",
        "api": {"advertiseAddress": "10.77.0.21"},
        "etcd": {
            "endpoints": ["https://10.77.0.11:2379", "https://10.77.0.12:2379", "https://10.77.0.13:2379"],
            "caFile": "/etc/kubernetes/pki/etcd/ca.pem",
            "certFile": "/etc/kubernetes/pki/etcd/client.pem",
            "keyFile": "/etc/kubernetes/pki/etcd/client-key.pem",
        },
        "networking": {"podSubnet": "10.244.0.0/16"},
        "apiServerCertSANs": ["10.77.0.10"],
        "apiServerExtraArgs": {"apiserver-count": "3"},
    })
}

#[test]
fn renders_the_guides_v1alpha1_master_configuration() {
    insta::assert_snapshot!("v1alpha1", render(guide_v1alpha1()));
    assert_eq!(KubeadmConfig::parse(&guide_v1alpha1()).unwrap().endpoint().unwrap(), "10.77.0.21:6443");
}

#[test]
fn renders_v1beta3_init_and_cluster_configuration() {
    let config = json!([
        {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "InitConfiguration",
         "bootstrapTokens": [{"token": "abcdef.0123456789abcdef", "ttl": "24h0m0s"}],
         "localAPIEndpoint": {"advertiseAddress": "10.77.0.21", "bindPort": 6443},
         "nodeRegistration": {"name": "master0", "kubeletExtraArgs": {"node-ip": "10.77.0.21"}}},
        {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
         "kubernetesVersion": "v1.30.0", "controlPlaneEndpoint": "10.77.0.10:6443",
         "etcd": {"external": {"endpoints": ["https://10.77.0.11:2379"], "caFile": "/etc/kubernetes/pki/etcd/ca.pem",
                  "certFile": "/etc/kubernetes/pki/etcd/client.pem", "keyFile": "/etc/kubernetes/pki/etcd/client-key.pem"}},
         "networking": {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"},
         "apiServer": {"certSANs": ["10.77.0.10"], "extraArgs": {"endpoint-reconciler-type": "lease"}}},
    ]);
    insta::assert_snapshot!("v1beta3", render(config.clone()));
    assert_eq!(KubeadmConfig::parse(&config).unwrap().endpoint().unwrap(), "10.77.0.10:6443");
}

#[test]
fn renders_v1beta4_with_argument_lists() {
    let config = json!([
        {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
         "localAPIEndpoint": {"advertiseAddress": "10.77.0.21"},
         "nodeRegistration": {"kubeletExtraArgs": [{"name": "node-ip", "value": "10.77.0.21"}]},
         "timeouts": {"controlPlaneComponentHealthCheck": "4m0s"}},
        {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
         "controlPlaneEndpoint": "10.77.0.10",
         "apiServer": {"certSANs": ["10.77.0.10"], "extraArgs": [{"name": "endpoint-reconciler-type", "value": "lease"}]},
         "encryptionAlgorithm": "RSA-2048"},
    ]);
    insta::assert_snapshot!("v1beta4", render(config.clone()));
    assert_eq!(KubeadmConfig::parse(&config).unwrap().endpoint().unwrap(), "10.77.0.10:6443");
}

#[test]
fn rejects_what_kubeadm_rejects() {
    let err = |v: Value| KubeadmConfig::parse(&v).unwrap_err().to_string();
    let typo = json!({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
                      "apiServer": {"certSans": ["x"]}});
    assert_eq!(
        err(typo),
        "kubeadm.k8s.io/v1beta3 ClusterConfiguration: strict decoding error: unknown field \"apiServer.certSans\""
    );
    let top = json!({"apiVersion": "kubeadm.k8s.io/v1alpha1", "kind": "MasterConfiguration", "apiServerCertSans": []});
    assert!(err(top).contains("unknown field \"apiServerCertSans\""));
    let v3_args_as_list = json!({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
                                 "apiServer": {"extraArgs": [{"name": "a", "value": "b"}]}});
    assert!(err(v3_args_as_list).contains("apiServer.extraArgs"), "v1beta3 extraArgs is a map");
    let v4_args_as_map = json!({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                                "apiServer": {"extraArgs": {"a": "b"}}});
    assert!(KubeadmConfig::parse(&v4_args_as_map).is_err(), "v1beta4 extraArgs is a list");
    let v4_only =
        json!({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration", "proxy": {}});
    assert!(err(v4_only).contains("unknown field \"proxy\""));
    let kind = json!({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "MasterConfiguration"});
    assert_eq!(
        err(kind),
        "no kind \"MasterConfiguration\" is registered for version \"kubeadm.k8s.io/v1beta4\""
    );
    let mixed = json!([{"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "InitConfiguration"},
                       {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration"}]);
    assert!(err(mixed).contains("mixes"));
}

#[test]
fn checks_arguments_per_action() {
    assert!(args(json!({"action": "init"})).unwrap_err().contains("needs config"));
    assert!(args(json!({"action": "init", "config": guide_v1alpha1()})).is_ok());
    assert!(
        args(json!({"action": "join", "endpoint": "10.0.0.1:6443", "token": "abcdef.0123456789abcdef",
                        "ca_cert_hash": format!("sha256:{}", "a".repeat(64))}))
        .is_ok()
    );
    assert!(
        args(json!({"action": "join", "endpoint": "10.0.0.1", "token": "abcdef.0123456789abcdef",
                        "ca_cert_hash": format!("sha256:{}", "a".repeat(64))}))
        .unwrap_err()
        .contains("host:port")
    );
    assert!(
        args(json!({"action": "join", "endpoint": "h:1", "token": "ABCDEF.0123456789abcdef",
                        "ca_cert_hash": format!("sha256:{}", "a".repeat(64))}))
        .unwrap_err()
        .contains("token")
    );
    let marker = format!("{}out|1|token{}", contract::deferred::open(), contract::deferred::CLOSE);
    assert!(
        sealed(json!({"action": "join", "endpoint": marker, "token": marker, "ca_cert_hash": marker}))
            .is_ok()
    );
    assert!(args(json!({"action": "reset", "token": "x"})).is_err());
    assert!(args(json!({"action": "rest"})).unwrap_err().contains("must be one of"));
}

#[test]
fn reads_kubeadms_join_line_and_token_list() {
    let hash = format!("sha256:{}", "0123".repeat(16));
    let stdout = format!(
        "Then you can join ...:\n\nkubeadm join 10.77.0.21:6443 --token abcdef.0123456789abcdef \\\n\
         \t--discovery-token-ca-cert-hash {hash} \n"
    );
    assert_eq!(
        parse_join_line(&stdout).unwrap(),
        ("10.77.0.21:6443".into(), "abcdef.0123456789abcdef".into(), hash.clone())
    );
    let list = r#"{"token": "aaaaaa.bbbbbbbbbbbbbbbb", "usages": ["signing"], "groups": []}
{"token": "cccccc.dddddddddddddddd", "usages": ["authentication", "signing"],
 "groups": ["system:bootstrappers:kubeadm:default-node-token"]}"#;
    assert_eq!(usable_token(list).unwrap(), "cccccc.dddddddddddddddd");
    assert_eq!(usable_token(""), None);
}

/// kubeadm's output names what other hosts pass to `kubeadm join`: a host that prints an
/// option, a second word or a control character as the endpoint, token or hash is refused (and
/// the line, which holds a token, is not shown).
#[test]
fn refuses_join_values_kubeadm_never_prints() {
    let hash = format!("sha256:{}", "ab".repeat(32));
    let line = |endpoint: &str, token: &str, hash: &str| {
        format!("kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash {hash}\n")
    };
    let token = "abcdef.0123456789abcdef";
    for endpoint in ["10.77.0.21:6443", "[fd00::1]:6443", "api.cluster.local:443"] {
        assert!(parse_join_line(&line(endpoint, token, &hash)).is_ok(), "{endpoint}");
    }
    for (endpoint, token, hash) in [
        ("--config=/etc/shadow", token, hash.as_str()),
        ("10.77.0.21:6443:1", token, hash.as_str()),
        ("10.77.0.21", token, hash.as_str()),
        ("10.77.0.21:0", token, hash.as_str()),
        ("*.x:6443", token, hash.as_str()),
        ("10.77.0.21:6443", "--ignore-preflight-errors=all", hash.as_str()),
        ("10.77.0.21:6443", token, "sha256:0123"),
    ] {
        let error = parse_join_line(&line(endpoint, token, hash)).unwrap_err();
        assert!(error.entry.is_empty(), "the line holds a token: not shown");
    }
    assert!(!is_endpoint("10.77.0.21:6443 --x") && !is_endpoint("a\u{1b}:1") && !is_endpoint(":6443"));
    let forged = r#"{"token": "--x", "usages": ["authentication"], "groups": ["system:bootstrappers:kubeadm:default-node-token"]}"#;
    assert_eq!(usable_token(forged), None);
}

/// A host that answers by the first matching command fragment; records what ran.
#[derive(Default)]
struct Scripted {
    answers: Vec<(&'static str, ExecOutput)>,
    ran: std::sync::Mutex<Vec<String>>,
    /// What each command got on stdin, in order.
    stdins: std::sync::Mutex<Vec<Vec<u8>>>,
}

fn ok(stdout: &str) -> ExecOutput {
    ExecOutput { status: Some(0), stdout: stdout.as_bytes().to_vec(), stderr: Vec::new() }
}

#[async_trait]
impl Host for Scripted {
    fn name(&self) -> &str {
        "master0"
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, contract::host::HostError> {
        self.ran.lock().unwrap().push(exec.command.clone());
        self.stdins.lock().unwrap().push(exec.stdin.clone().unwrap_or_default());
        let answer = self.answers.iter().find(|(fragment, _)| exec.command.contains(fragment));
        Ok(answer
            .map(|(_, out)| out.clone())
            .unwrap_or_else(|| panic!("unexpected command {}", exec.command)))
    }
}

async fn plan_init(answers: Vec<(&'static str, ExecOutput)>) -> (Result<Plan, ModuleError>, Vec<String>) {
    let host = Scripted { answers, ..Scripted::default() };
    let module = Kubeadm::new(args(json!({"action": "init", "config": guide_v1alpha1()})).unwrap()).unwrap();
    let plan = module.plan(&Context::new(&host, contract::module::PlanOptions::default())).await;
    (plan, host.ran.into_inner().unwrap())
}

fn written_sha() -> String {
    contract::diff::sha256_hex(KubeadmConfig::parse(&guide_v1alpha1()).unwrap().render().as_bytes())
}

const TOKENS: &str = r#"{"token": "cccccc.dddddddddddddddd", "usages": ["authentication", "signing"],
 "groups": ["system:bootstrappers:kubeadm:default-node-token"]}"#;

#[tokio::test]
async fn init_runs_only_on_a_fresh_node() {
    let (plan, ran) = plan_init(vec![("kube-apiserver.yaml", ok("fresh\nnone\n"))]).await;
    let plan = plan.unwrap();
    assert!(plan.is_change());
    assert_eq!(
        plan.changes[1],
        "kubeadm init --config /etc/kubernetes/kubeadm-init.yaml (API endpoint 10.77.0.21:6443)"
    );
    assert_eq!(ran.len(), 1, "planning only reads");
}

#[tokio::test]
async fn init_from_the_same_config_is_a_no_op_with_outputs() {
    let state = format!("initialised\n{}  -\n", written_sha());
    let hash = "ab".repeat(32);
    let query = format!("{hash}  -\n10.77.0.21:6443\n{TOKENS}\n");
    let (plan, _) = plan_init(vec![("kube-apiserver.yaml", ok(&state)), ("openssl x509", ok(&query))]).await;
    let plan = plan.unwrap();
    assert!(!plan.is_change(), "{:?}", plan.changes);
    assert_eq!(plan.outputs["token"], "cccccc.dddddddddddddddd");
    assert_eq!(plan.outputs["ca_cert_hash"], format!("sha256:{hash}"));
    assert_eq!(plan.outputs["endpoint"], "10.77.0.21:6443");
    assert_eq!(
        plan.outputs["join_command"],
        format!(
            "kubeadm join 10.77.0.21:6443 --token cccccc.dddddddddddddddd --discovery-token-ca-cert-hash sha256:{hash}"
        )
    );
}

#[tokio::test]
async fn init_creates_a_token_when_none_is_left() {
    let state = format!(
        "initialised
{}  -
",
        written_sha()
    );
    let query = format!("{}  -\n10.77.0.21:6443\n", "ab".repeat(32));
    let (plan, _) = plan_init(vec![("kube-apiserver.yaml", ok(&state)), ("openssl x509", ok(&query))]).await;
    let plan = plan.unwrap();
    assert_eq!(plan.changes, ["create a bootstrap token (none left that is valid)"]);
}

#[tokio::test]
async fn init_refuses_a_node_initialised_otherwise() {
    let other = format!("initialised\n{}  -\n", "0".repeat(64));
    let error = plan_init(vec![("kube-apiserver.yaml", ok(&other))]).await.0.unwrap_err();
    assert!(
        error.to_string().contains("already initialised by kubeadm with a different configuration"),
        "{error}"
    );
    let error = plan_init(vec![("kube-apiserver.yaml", ok("initialised\nnone\n"))]).await.0.unwrap_err();
    assert!(error.to_string().contains("not initialised by this task"), "{error}");
}

#[tokio::test]
async fn a_failed_join_shows_kubeadms_preflight_lines_and_hides_the_token() {
    let failed = ExecOutput {
        status: Some(1),
        stdout: Vec::new(),
        stderr: b"error execution phase preflight: [preflight] Some fatal errors occurred:\n\
                  \t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists\n"
            .to_vec(),
    };
    let host = Scripted { answers: vec![("kubeadm", failed)], ..Scripted::default() };
    let exec = Exec::new(JOIN_SCRIPT).stdin(b"token: abcdef.0123456789abcdef".to_vec());
    let error = KubeadmAct::kubeadm(&host, exec, JOIN_SHOWN, Some("abcdef.0123456789abcdef"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("[ERROR FileAvailable--etc-kubernetes-kubelet.conf]"), "{error}");
    assert!(!error.contains("0123456789abcdef"), "{error}");
}

#[test]
fn a_misshapen_field_names_its_whole_path() {
    let typo = json!({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
                      "apiServer": {"certSans": ["x"]}});
    assert_eq!(KubeadmConfig::parse(&typo).unwrap_err().path, "apiServer.certSans");
    let second = json!([{"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "InitConfiguration"},
                        {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "Cluster"}]);
    assert_eq!(KubeadmConfig::parse(&second).unwrap_err().path, "[1].kind");
    let v3_args_as_list = json!({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "ClusterConfiguration",
                                 "apiServer": {"extraArgs": [{"name": "a", "value": "b"}]}});
    assert_eq!(
        KubeadmConfig::parse(&v3_args_as_list).unwrap_err().to_string(),
        "kubeadm.k8s.io/v1beta3 ClusterConfiguration: argument `apiServer.extraArgs` must be a map, got a list"
    );
}

/// A join's token and CA hash reach kubeadm in a JoinConfiguration on stdin, written to a
/// temporary 0600 file that is removed afterwards; the command line holds neither.
#[tokio::test]
async fn join_sends_the_token_on_stdin_never_on_the_command_line() {
    let token = "abcdef.0123456789abcdef";
    let hash = format!("sha256:{}", "0a".repeat(32));
    let args = json!({"action": "join", "endpoint": "10.0.0.1:6443", "token": token, "ca_cert_hash": hash,
                      "control_plane": true});
    let module = Kubeadm::new(args_resolved(args)).unwrap();
    let host = Scripted {
        answers: vec![("kubelet.conf", ok("no\n")), ("kubeadm join", ok(""))],
        ..Scripted::default()
    };
    let plan = module.plan(&Context::new(&host, contract::module::PlanOptions::default())).await.unwrap();
    assert_eq!(plan.changes, ["kubeadm join 10.0.0.1:6443 --control-plane"]);
    assert!(!format!("{:?}", plan.action).contains(token), "Debug hides the token");
    plan.action.unwrap().apply(&host).await.unwrap();
    let ran = host.ran.into_inner().unwrap();
    let join = ran.last().unwrap();
    assert_eq!(join, JOIN_SCRIPT);
    assert!(join.contains("mktemp") && join.contains("trap 'rm -f -- \"$f\"' EXIT"), "{join}");
    assert!(join.contains("-mmin +60 "), "{join}");
    for command in &ran {
        assert!(
            !command.contains(token) && !command.contains(&hash) && !command.contains("0123456789abcdef"),
            "{command}"
        );
    }
    let stdin = String::from_utf8(host.stdins.into_inner().unwrap().pop().unwrap()).unwrap();
    assert_eq!(
        stdin,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    \
             token: {token}\n    apiServerEndpoint: 10.0.0.1:6443\n    caCertHashes:\n    - {hash}\ncontrolPlane: {{}}\n"
        )
    );
    let value: Value = serde_yaml_ng::from_str(&stdin).unwrap();
    assert!(config::JoinConfigurationV1beta3::parse(&value).is_ok(), "kubeadm's strict decoding reads it");
}

#[test]
fn a_join_configuration_is_decoded_strictly() {
    let config =
        config::JoinConfigurationV1beta3::new("h:6443", "abcdef.0123456789abcdef", "sha256:00", false);
    let mut value: Value = serde_yaml_ng::from_str(&config.render()).unwrap();
    assert!(value.get("controlPlane").is_none(), "a worker asks for no control plane");
    value["discovery"]["bootstrapToken"]["tokn"] = json!("x");
    let error = config::JoinConfigurationV1beta3::parse(&value).unwrap_err().to_string();
    assert_eq!(
        error,
        "kubeadm.k8s.io/v1beta3 JoinConfiguration: strict decoding error: unknown field \"discovery.bootstrapToken.tokn\""
    );
    value["kind"] = json!("InitConfiguration");
    assert!(
        config::JoinConfigurationV1beta3::parse(&value)
            .unwrap_err()
            .to_string()
            .starts_with("no kind \"InitConfiguration\"")
    );
}

fn args_resolved(value: Value) -> KubeadmArgs<Resolved> {
    args(value).unwrap()
}

/// The join script itself, run by a real shell against a fake `kubeadm`: the settings reach
/// kubeadm through a 0600 file that is gone afterwards, and a killed join's old file is removed
/// by the next join, while a young one (a join still running), other users' shapes and other
/// names are left alone.
#[test]
fn the_join_script_removes_its_file_and_stale_ones_from_killed_joins() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    // The fake kubeadm copies what it was given and the file's mode beside itself.
    let kubeadm = bin.join("kubeadm");
    std::fs::write(
        &kubeadm,
        "#!/bin/sh\nstat -c %a \"$3\" > \"$(dirname \"$0\")/mode\"; cat \"$3\" > \"$(dirname \"$0\")/got\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&kubeadm, std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["engine-join.OLD", "engine-join.YOUNG", "other.OLD"] {
        std::fs::write(tmp.join(name), "x").unwrap();
    }
    for name in ["engine-join.OLD", "other.OLD"] {
        let status = Command::new("touch").args(["-d", "2 hours ago"]).arg(tmp.join(name)).status().unwrap();
        assert!(status.success());
    }

    let mut child = Command::new("sh")
        .arg("-c")
        .arg(JOIN_SCRIPT)
        .env("TMPDIR", &tmp)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"kind: JoinConfiguration\n").unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());

    assert_eq!(std::fs::read_to_string(bin.join("got")).unwrap(), "kind: JoinConfiguration\n");
    assert_eq!(std::fs::read_to_string(bin.join("mode")).unwrap().trim(), "600");
    let mut left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["engine-join.YOUNG", "other.OLD"], "the stale file and this join's own are gone");
}

#[test]
fn the_upgrade_actions_need_a_version_and_take_nothing_else() {
    assert!(args(json!({"action": "upgrade_apply", "version": "v1.31.1"})).is_ok());
    assert!(args(json!({"action": "upgrade_apply"})).unwrap_err().contains("need version"));
    assert!(args(json!({"action": "upgrade_node", "version": "1.31.1"})).unwrap_err().contains("v1.31.1"));
    assert!(
        args(json!({"action": "reset", "version": "v1.31.1"}))
            .unwrap_err()
            .contains("belongs to the upgrade")
    );
    assert!(
        args(json!({"action": "upgrade_preflight", "version": "v1.31.1", "control_plane": true}))
            .unwrap_err()
            .contains("only version")
    );
}

const APISERVER_1_30: &str = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.30.4\n";

fn nodes(list: &[(&str, &str)]) -> String {
    let items: Vec<Value> = list
        .iter()
        .map(|(n, v)| json!({"metadata": {"name": n}, "status": {"nodeInfo": {"kubeletVersion": v}}}))
        .collect();
    json!({"kind": "List", "items": items}).to_string()
}

async fn plan_upgrade(action: &str, version: &str, nodes: &str) -> (Result<Plan, ModuleError>, Vec<String>) {
    let stat = format!("regular file|600|root|root\n{}  -\n", "ab".repeat(32));
    let answers = vec![("stat -c", ok(&stat)), ("cat -- ", ok(APISERVER_1_30)), ("'nodes'", ok(nodes))];
    let host = Scripted { answers, ..Scripted::default() };
    let module = Kubeadm::new(args(json!({"action": action, "version": version})).unwrap()).unwrap();
    let plan = module.plan(&Context::new(&host, contract::module::PlanOptions::default())).await;
    (plan, host.ran.into_inner().unwrap())
}

#[tokio::test]
async fn the_preflight_reads_the_versions_and_refuses_what_kubeadm_refuses() {
    let list = nodes(&[("master0", "v1.30.4"), ("worker0", "v1.31.1")]);
    let (plan, ran) = plan_upgrade("upgrade_preflight", "v1.31.1", &list).await;
    let plan = plan.unwrap();
    assert!(!plan.is_change());
    assert_eq!(plan.outputs["control_plane"], "v1.30.4");
    assert_eq!(plan.outputs["pending"], json!(["master0"]));
    assert_eq!(plan.outputs["nodes"], json!({"master0": "v1.30.4", "worker0": "v1.31.1"}));
    assert!(ran.iter().all(|c| !c.contains("upgrade")), "only reads: {ran:?}");

    let (skip, _) = plan_upgrade("upgrade_preflight", "v1.32.0", &nodes(&[("master0", "v1.30.4")])).await;
    let skip = skip.unwrap_err().to_string();
    assert!(skip.contains("refused before anything changed") && skip.contains("too high"), "{skip}");

    let hostile = nodes(&[("master0; rm -rf /", "v1.30.4")]);
    let (bad, _) = plan_upgrade("upgrade_preflight", "v1.31.1", &hostile).await;
    assert!(bad.unwrap_err().to_string().contains("not a node name"));
    let (bad, _) = plan_upgrade("upgrade_preflight", "v1.31.1", &nodes(&[("m0", "v1.30.4-dirty")])).await;
    assert!(bad.unwrap_err().to_string().contains("not a Kubernetes version"));
}

#[tokio::test]
async fn upgrade_apply_runs_only_when_the_control_plane_is_not_at_the_target() {
    let (plan, _) = plan_upgrade("upgrade_apply", "v1.30.4", "").await;
    assert!(!plan.unwrap().is_change());
    let (plan, _) = plan_upgrade("upgrade_apply", "v1.31.1", "").await;
    let plan = plan.unwrap();
    assert_eq!(plan.changes, ["kubeadm upgrade apply v1.31.1 (the control plane is at v1.30.4)"]);
    assert!(
        format!("{:?}", plan.action).contains(r#"["kubeadm", "upgrade", "apply", "--yes", "--", "v1.31.1"]"#)
    );
    let (plan, _) = plan_upgrade("upgrade_node", "v1.30.4", "").await;
    assert!(!plan.unwrap().is_change(), "this control plane is at the target");
}

#[test]
fn certs_renew_takes_only_renew_before() {
    assert!(args(json!({"action": "certs_renew"})).is_ok());
    assert!(args(json!({"action": "certs_renew", "renew_before": "90d"})).is_ok());
    assert!(
        args(json!({"action": "certs_renew", "renew_before": "soon"})).unwrap_err().contains("renew_before")
    );
    assert!(
        args(json!({"action": "reset", "renew_before": "90d"}))
            .unwrap_err()
            .contains("belongs to action certs_renew")
    );
}

/// A certificate valid for `days` from now, as PEM.
fn cert_for_days(days: i64) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["kube-apiserver".to_owned()]).unwrap();
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn expiry_reads_a_pem_file_and_a_kubeconfigs_embedded_certificate() {
    use base64::Engine as _;
    let pem = cert_for_days(10);
    let soon = certs::expiry("/etc/kubernetes/pki/apiserver.crt", pem.as_bytes()).unwrap().unwrap();
    let left = soon - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((9 * 86_400..=10 * 86_400 + 60).contains(&left), "{left}");
    let data = base64::engine::general_purpose::STANDARD.encode(&pem);
    let kubeconfig =
        format!("apiVersion: v1\nusers:\n- name: admin\n  user:\n    client-certificate-data: {data}\n");
    assert_eq!(certs::expiry("/etc/kubernetes/admin.conf", kubeconfig.as_bytes()).unwrap(), Some(soon));
    let by_file = "users:\n- name: k\n  user:\n    client-certificate: /var/lib/kubelet/pki/x.pem\n";
    assert_eq!(certs::expiry("/etc/kubernetes/kubelet.conf", by_file.as_bytes()).unwrap(), None);
    assert!(certs::expiry("/etc/kubernetes/pki/apiserver.crt", b"-----BEGIN NONSENSE").is_err());
}
