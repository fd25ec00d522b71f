//! kubeadm's configuration file formats, field for field, so a misspelled or misplaced field is
//! an error when the playbook is sealed (as kubeadm's own strict decoding would reject it).
//!
//! Three versions: `kubeadm.k8s.io/v1alpha1` (`MasterConfiguration`, kubeadm 1.9/1.10, as in the
//! HA guide), `v1beta3` (kubeadm 1.22-1.30) and `v1beta4` (1.31+, where `extraArgs` became a list
//! of `{name, value}`). Each document is rendered back to YAML in the field order below, with
//! unset fields left out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use contract::error::{ArgsError, ArgsErrorKind};

type ArgMap = BTreeMap<String, String>;

/// One `{name, value}` argument (v1beta4 `extraArgs`, `kubeletExtraArgs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    pub name: String,
    pub value: String,
}

/// `api` of a v1alpha1 MasterConfiguration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Api {
    pub advertise_address: Option<String>,
    pub bind_port: Option<u16>,
    pub control_plane_endpoint: Option<String>,
}

/// `etcd` of a v1alpha1 MasterConfiguration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EtcdV1alpha1 {
    pub endpoints: Option<Vec<String>>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub data_dir: Option<String>,
    pub extra_args: Option<ArgMap>,
    pub image: Option<String>,
    #[serde(rename = "serverCertSANs")]
    pub server_cert_sans: Option<Vec<String>>,
    #[serde(rename = "peerCertSANs")]
    pub peer_cert_sans: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Networking {
    pub service_subnet: Option<String>,
    pub pod_subnet: Option<String>,
    pub dns_domain: Option<String>,
}

/// `kubeadm.k8s.io/v1alpha1` `MasterConfiguration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MasterConfiguration {
    pub api_version: String,
    pub kind: String,
    pub api: Option<Api>,
    pub etcd: Option<EtcdV1alpha1>,
    pub networking: Option<Networking>,
    pub kubernetes_version: Option<String>,
    pub cloud_provider: Option<String>,
    pub node_name: Option<String>,
    pub authorization_modes: Option<Vec<String>>,
    pub token: Option<String>,
    #[serde(rename = "tokenTTL")]
    pub token_ttl: Option<String>,
    pub api_server_extra_args: Option<ArgMap>,
    pub controller_manager_extra_args: Option<ArgMap>,
    pub scheduler_extra_args: Option<ArgMap>,
    #[serde(rename = "apiServerCertSANs")]
    pub api_server_cert_sans: Option<Vec<String>>,
    pub certificates_dir: Option<String>,
    pub image_repository: Option<String>,
    pub feature_gates: Option<BTreeMap<String, bool>>,
    pub cri_socket: Option<String>,
    pub no_taint_master: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalEtcd {
    pub endpoints: Vec<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalEtcd<A> {
    pub image_repository: Option<String>,
    pub image_tag: Option<String>,
    pub data_dir: Option<String>,
    pub extra_args: Option<A>,
    #[serde(rename = "serverCertSANs")]
    pub server_cert_sans: Option<Vec<String>>,
    #[serde(rename = "peerCertSANs")]
    pub peer_cert_sans: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Etcd<A> {
    pub local: Option<LocalEtcd<A>>,
    pub external: Option<ExternalEtcd>,
}

/// `apiServer` of a v1beta3 ClusterConfiguration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiServerV1beta3 {
    pub extra_args: Option<ArgMap>,
    pub extra_volumes: Option<Vec<Value>>,
    #[serde(rename = "certSANs")]
    pub cert_sans: Option<Vec<String>>,
    pub timeout_for_control_plane: Option<String>,
}

/// `apiServer` of a v1beta4 ClusterConfiguration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiServerV1beta4 {
    pub extra_args: Option<Vec<Arg>>,
    pub extra_envs: Option<Vec<Value>>,
    pub extra_volumes: Option<Vec<Value>>,
    #[serde(rename = "certSANs")]
    pub cert_sans: Option<Vec<String>>,
}

/// `controllerManager` and `scheduler`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Component<A> {
    pub extra_args: Option<A>,
    pub extra_volumes: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DnsV1beta3 {
    pub image_repository: Option<String>,
    pub image_tag: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DnsV1beta4 {
    pub disabled: Option<bool>,
    pub image_repository: Option<String>,
    pub image_tag: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    pub disabled: Option<bool>,
}

/// `kubeadm.k8s.io/v1beta3` `ClusterConfiguration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfigurationV1beta3 {
    pub api_version: String,
    pub kind: String,
    pub etcd: Option<Etcd<ArgMap>>,
    pub networking: Option<Networking>,
    pub kubernetes_version: Option<String>,
    pub control_plane_endpoint: Option<String>,
    pub api_server: Option<ApiServerV1beta3>,
    pub controller_manager: Option<Component<ArgMap>>,
    pub scheduler: Option<Component<ArgMap>>,
    pub dns: Option<DnsV1beta3>,
    pub certificates_dir: Option<String>,
    pub image_repository: Option<String>,
    pub feature_gates: Option<BTreeMap<String, bool>>,
    pub cluster_name: Option<String>,
}

/// `kubeadm.k8s.io/v1beta4` `ClusterConfiguration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfigurationV1beta4 {
    pub api_version: String,
    pub kind: String,
    pub etcd: Option<Etcd<Vec<Arg>>>,
    pub networking: Option<Networking>,
    pub kubernetes_version: Option<String>,
    pub control_plane_endpoint: Option<String>,
    pub api_server: Option<ApiServerV1beta4>,
    pub controller_manager: Option<Component<Vec<Arg>>>,
    pub scheduler: Option<Component<Vec<Arg>>>,
    pub dns: Option<DnsV1beta4>,
    pub proxy: Option<Proxy>,
    pub certificates_dir: Option<String>,
    pub image_repository: Option<String>,
    pub feature_gates: Option<BTreeMap<String, bool>>,
    pub cluster_name: Option<String>,
    pub encryption_algorithm: Option<String>,
    pub certificate_validity_period: Option<String>,
    pub ca_certificate_validity_period: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BootstrapToken {
    pub token: String,
    pub description: Option<String>,
    pub ttl: Option<String>,
    pub expires: Option<String>,
    pub usages: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeRegistration<A> {
    pub name: Option<String>,
    pub cri_socket: Option<String>,
    pub taints: Option<Vec<Value>>,
    pub kubelet_extra_args: Option<A>,
    pub ignore_preflight_errors: Option<Vec<String>>,
    pub image_pull_policy: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiEndpoint {
    pub advertise_address: Option<String>,
    pub bind_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patches {
    pub directory: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Timeouts {
    pub control_plane_component_health_check: Option<String>,
    pub kubelet_health_check: Option<String>,
    #[serde(rename = "kubernetesAPICall")]
    pub kubernetes_api_call: Option<String>,
    #[serde(rename = "etcdAPICall")]
    pub etcd_api_call: Option<String>,
    #[serde(rename = "tlsBootstrap")]
    pub tls_bootstrap: Option<String>,
    pub discovery: Option<String>,
    pub upgrade_manifests: Option<String>,
}

/// `kubeadm.k8s.io/v1beta3` `InitConfiguration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InitConfigurationV1beta3 {
    pub api_version: String,
    pub kind: String,
    pub bootstrap_tokens: Option<Vec<BootstrapToken>>,
    pub node_registration: Option<NodeRegistration<ArgMap>>,
    #[serde(rename = "localAPIEndpoint")]
    pub local_api_endpoint: Option<ApiEndpoint>,
    pub certificate_key: Option<String>,
    pub skip_phases: Option<Vec<String>>,
    pub patches: Option<Patches>,
}

/// `kubeadm.k8s.io/v1beta4` `InitConfiguration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InitConfigurationV1beta4 {
    pub api_version: String,
    pub kind: String,
    pub bootstrap_tokens: Option<Vec<BootstrapToken>>,
    pub dry_run: Option<bool>,
    pub node_registration: Option<NodeRegistration<Vec<Arg>>>,
    #[serde(rename = "localAPIEndpoint")]
    pub local_api_endpoint: Option<ApiEndpoint>,
    pub certificate_key: Option<String>,
    pub skip_phases: Option<Vec<String>>,
    pub patches: Option<Patches>,
    pub timeouts: Option<Timeouts>,
}

/// One document of a kubeadm configuration file.
#[derive(Debug, Clone)]
pub enum Document {
    MasterV1alpha1(MasterConfiguration),
    InitV1beta3(InitConfigurationV1beta3),
    ClusterV1beta3(ClusterConfigurationV1beta3),
    InitV1beta4(InitConfigurationV1beta4),
    ClusterV1beta4(ClusterConfigurationV1beta4),
}

pub const V1ALPHA1: &str = "kubeadm.k8s.io/v1alpha1";
pub const V1BETA3: &str = "kubeadm.k8s.io/v1beta3";
pub const V1BETA4: &str = "kubeadm.k8s.io/v1beta4";

/// Decodes one document strictly into `T`, with kubeadm's wording for an unknown field:
/// `strict decoding error: unknown field "apiServer.certSans"` (the field's whole path). The
/// error keeps that path, so a playbook is shown the field where it is written.
fn strict<T: serde::de::DeserializeOwned>(value: &Value, api: &str, kind: &str) -> Result<T, ArgsError> {
    contract::args::from_value(value.clone()).map_err(|e| {
        let reason = match &e.kind {
            ArgsErrorKind::UnknownField { .. } => {
                format!("strict decoding error: unknown field \"{}\"", e.path)
            }
            _ => e.to_string(),
        };
        ArgsError::invalid(e.path, format!("{api} {kind}: {reason}"))
    })
}

impl Document {
    /// Decodes one document by its `apiVersion` and `kind`.
    pub fn parse(value: &Value) -> Result<Self, ArgsError> {
        let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(api), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err(ArgsError::invalid(
                "",
                "every kubeadm configuration document needs apiVersion and kind",
            ));
        };
        Ok(match (api.as_str(), kind.as_str()) {
            (V1ALPHA1, "MasterConfiguration") => Self::MasterV1alpha1(strict(value, &api, &kind)?),
            (V1BETA3, "InitConfiguration") => Self::InitV1beta3(strict(value, &api, &kind)?),
            (V1BETA3, "ClusterConfiguration") => Self::ClusterV1beta3(strict(value, &api, &kind)?),
            (V1BETA4, "InitConfiguration") => Self::InitV1beta4(strict(value, &api, &kind)?),
            (V1BETA4, "ClusterConfiguration") => Self::ClusterV1beta4(strict(value, &api, &kind)?),
            _ => {
                let message = format!("no kind {kind:?} is registered for version {api:?}");
                return Err(ArgsError::invalid("kind", message));
            }
        })
    }

    fn api_version(&self) -> &str {
        match self {
            Self::MasterV1alpha1(_) => V1ALPHA1,
            Self::InitV1beta3(_) | Self::ClusterV1beta3(_) => V1BETA3,
            Self::InitV1beta4(_) | Self::ClusterV1beta4(_) => V1BETA4,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::MasterV1alpha1(_) => "MasterConfiguration",
            Self::InitV1beta3(_) | Self::InitV1beta4(_) => "InitConfiguration",
            Self::ClusterV1beta3(_) | Self::ClusterV1beta4(_) => "ClusterConfiguration",
        }
    }

    fn to_yaml(&self) -> Result<serde_yaml_ng::Value, serde_yaml_ng::Error> {
        match self {
            Self::MasterV1alpha1(d) => serde_yaml_ng::to_value(d),
            Self::InitV1beta3(d) => serde_yaml_ng::to_value(d),
            Self::ClusterV1beta3(d) => serde_yaml_ng::to_value(d),
            Self::InitV1beta4(d) => serde_yaml_ng::to_value(d),
            Self::ClusterV1beta4(d) => serde_yaml_ng::to_value(d),
        }
    }
}

/// A whole kubeadm configuration: the documents of one `kubeadm init --config` file.
#[derive(Debug, Clone)]
pub struct KubeadmConfig {
    pub documents: Vec<Document>,
}

impl KubeadmConfig {
    /// Decodes a map (one document) or a list of maps, and checks that they fit together. A
    /// mistake's path is inside the configuration: `apiServer.certSans`, `[1].kind`.
    pub fn parse(value: &Value) -> Result<Self, ArgsError> {
        let (values, listed) = match value {
            Value::Array(items) => (items.iter().collect::<Vec<_>>(), true),
            Value::Object(_) => (vec![value], false),
            _ => return Err(ArgsError::invalid("", "config must be a map (one document) or a list of maps")),
        };
        if values.is_empty() {
            return Err(ArgsError::invalid("", "config has no documents"));
        }
        let documents = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                Document::parse(v).map_err(|e| if listed { e.within(&format!("[{i}]")) } else { e })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let first = documents[0].api_version();
        if let Some(other) = documents.iter().find(|d| d.api_version() != first) {
            let message = format!("config mixes {first} with {}; use one version", other.api_version());
            return Err(ArgsError::invalid("", message));
        }
        for (i, d) in documents.iter().enumerate() {
            if documents[..i].iter().any(|e| e.kind() == d.kind()) {
                return Err(ArgsError::invalid("", format!("config has more than one {}", d.kind())));
            }
        }
        Ok(Self { documents })
    }

    /// The file `kubeadm init --config` reads: the documents as YAML, unset fields left out.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, d) in self.documents.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            let mut value = d.to_yaml().unwrap_or(serde_yaml_ng::Value::Null);
            drop_nulls(&mut value);
            out.push_str(&serde_yaml_ng::to_string(&value).unwrap_or_default());
        }
        out
    }

    /// `host:port` that `kubeadm join` uses: controlPlaneEndpoint, else the advertise address.
    pub fn endpoint(&self) -> Option<String> {
        let with_port = |ep: &str, port: Option<u16>| {
            if ep.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
                ep.to_owned()
            } else {
                format!("{ep}:{}", port.unwrap_or(6443))
            }
        };
        let mut control_plane = None;
        let mut advertise = None;
        for d in &self.documents {
            match d {
                Document::MasterV1alpha1(m) => {
                    let api = m.api.as_ref();
                    control_plane = api.and_then(|a| a.control_plane_endpoint.clone());
                    advertise = api.and_then(|a| Some((a.advertise_address.clone()?, a.bind_port)));
                }
                Document::ClusterV1beta3(c) => control_plane = c.control_plane_endpoint.clone(),
                Document::ClusterV1beta4(c) => control_plane = c.control_plane_endpoint.clone(),
                Document::InitV1beta3(i) => {
                    let ep = i.local_api_endpoint.as_ref();
                    advertise = ep.and_then(|a| Some((a.advertise_address.clone()?, a.bind_port)));
                }
                Document::InitV1beta4(i) => {
                    let ep = i.local_api_endpoint.as_ref();
                    advertise = ep.and_then(|a| Some((a.advertise_address.clone()?, a.bind_port)));
                }
            }
        }
        control_plane.map(|c| with_port(&c, None)).or_else(|| advertise.map(|(a, p)| with_port(&a, p)))
    }
}

/// `kubeadm.k8s.io/v1beta3` `JoinConfiguration`: what `kubeadm join --config` reads (kubeadm
/// 1.22 and later), so that the bootstrap token and the CA hash never appear on a command
/// line. Decoded strictly, like kubeadm: the lab's stand-in reads it with [`Self::parse`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JoinConfigurationV1beta3 {
    pub api_version: String,
    pub kind: String,
    pub discovery: Discovery,
    pub node_registration: Option<NodeRegistration<ArgMap>>,
    pub ca_cert_path: Option<String>,
    pub control_plane: Option<JoinControlPlane>,
    pub skip_phases: Option<Vec<String>>,
    pub patches: Option<Patches>,
}

/// `discovery` of a JoinConfiguration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Discovery {
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    pub file: Option<Value>,
    pub tls_bootstrap_token: Option<String>,
    pub timeout: Option<String>,
}

/// `discovery.bootstrapToken`: where the API server is, the token, and the CA's hash.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BootstrapTokenDiscovery {
    pub token: String,
    pub api_server_endpoint: Option<String>,
    pub ca_cert_hashes: Option<Vec<String>>,
    pub unsafe_skip_ca_verification: Option<bool>,
}

/// `controlPlane` of a JoinConfiguration: present when the node joins as a control-plane node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JoinControlPlane {
    #[serde(rename = "localAPIEndpoint")]
    pub local_api_endpoint: Option<ApiEndpoint>,
    pub certificate_key: Option<String>,
}

impl std::fmt::Debug for Discovery {
    /// Never shows a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").field("bootstrap_token", &self.bootstrap_token).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for BootstrapTokenDiscovery {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapTokenDiscovery")
            .field("api_server_endpoint", &self.api_server_endpoint)
            .field("ca_cert_hashes", &self.ca_cert_hashes)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for JoinConfigurationV1beta3 {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoint = self.discovery.bootstrap_token.as_ref().and_then(|b| b.api_server_endpoint.as_deref());
        f.debug_struct("JoinConfigurationV1beta3")
            .field("endpoint", &endpoint)
            .field("control_plane", &self.control_plane.is_some())
            .finish_non_exhaustive()
    }
}

impl JoinConfigurationV1beta3 {
    pub const KIND: &str = "JoinConfiguration";

    /// Token-based discovery of `endpoint`, pinned to the CA with `ca_cert_hash`.
    pub fn new(endpoint: &str, token: &str, ca_cert_hash: &str, control_plane: bool) -> Self {
        Self {
            api_version: V1BETA3.to_owned(),
            kind: Self::KIND.to_owned(),
            discovery: Discovery {
                bootstrap_token: Some(BootstrapTokenDiscovery {
                    token: token.to_owned(),
                    api_server_endpoint: Some(endpoint.to_owned()),
                    ca_cert_hashes: Some(vec![ca_cert_hash.to_owned()]),
                    unsafe_skip_ca_verification: None,
                }),
                file: None,
                tls_bootstrap_token: None,
                timeout: None,
            },
            node_registration: None,
            ca_cert_path: None,
            control_plane: control_plane.then(JoinControlPlane::default),
            skip_phases: None,
            patches: None,
        }
    }

    /// Decodes one document strictly, as kubeadm does.
    pub fn parse(value: &Value) -> Result<Self, ArgsError> {
        let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (api, kind) = (field("apiVersion"), field("kind"));
        if (api.as_str(), kind.as_str()) != (V1BETA3, Self::KIND) {
            let message = format!(
                "no kind {kind:?} is registered for version {api:?} (a join reads {V1BETA3} JoinConfiguration)"
            );
            return Err(ArgsError::invalid("kind", message));
        }
        strict(value, &api, &kind)
    }

    /// The file `kubeadm join --config` reads: YAML, unset fields left out (an empty
    /// `controlPlane: {}` stays: it asks for a control-plane node).
    pub fn render(&self) -> String {
        let mut value = serde_yaml_ng::to_value(self).unwrap_or(serde_yaml_ng::Value::Null);
        drop_nulls(&mut value);
        serde_yaml_ng::to_string(&value).unwrap_or_default()
    }
}

fn drop_nulls(value: &mut serde_yaml_ng::Value) {
    match value {
        serde_yaml_ng::Value::Mapping(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        serde_yaml_ng::Value::Sequence(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
