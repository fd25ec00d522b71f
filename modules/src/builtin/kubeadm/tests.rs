use serde_json::json;

use super::config::KubeadmConfig;
use super::*;

fn args(value: Value) -> Result<KubeadmArgs, String> {
    serde_json::from_value::<KubeadmArgs>(value).map_err(|e| e.to_string()).and_then(KubeadmArgs::validate)
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
    let err = |v: Value| KubeadmConfig::parse(&v).unwrap_err();
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
    let marker = format!("{}out|1|token{}", crate::deferred::OPEN, crate::deferred::CLOSE);
    assert!(
        args(json!({"action": "join", "endpoint": marker, "token": marker, "ca_cert_hash": marker})).is_ok()
    );
    assert!(args(json!({"action": "reset", "token": "x"})).is_err());
    assert!(args(json!({"action": "rest"})).unwrap_err().contains("unknown variant"));
}

#[test]
fn reads_kubeadms_join_line_and_token_list() {
    let stdout = "Then you can join ...:\n\nkubeadm join 10.77.0.21:6443 --token abcdef.0123456789abcdef \\\n\
                  \t--discovery-token-ca-cert-hash sha256:0123 \n";
    assert_eq!(
        parse_join_line(stdout).unwrap(),
        ("10.77.0.21:6443".into(), "abcdef.0123456789abcdef".into(), "sha256:0123".into())
    );
    let list = r#"{"token": "aaaaaa.bbbbbbbbbbbbbbbb", "usages": ["signing"], "groups": []}
{"token": "cccccc.dddddddddddddddd", "usages": ["authentication", "signing"],
 "groups": ["system:bootstrappers:kubeadm:default-node-token"]}"#;
    assert_eq!(usable_token(list).unwrap(), "cccccc.dddddddddddddddd");
    assert_eq!(usable_token(""), None);
}
