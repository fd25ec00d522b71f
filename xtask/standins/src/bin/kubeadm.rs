//! `kubeadm`, lab stand-in: `init --config`, `join` (flags, or `--config` with a v1beta3
//! JoinConfiguration), `token create|list`, `reset -f`, `version [-o short]` (the version of the
//! lab package that installed it, see `kube_standins::version`).
//! See the crate docs; anything else exits 1 with "not supported by the lab stand-in".

use std::fs;
use std::net::Ipv4Addr;

use kube_standins::cluster::{self, Cluster, Event};
use kube_standins::config::{Document, JoinConfigurationV1beta3, KubeadmConfig, Networking};
use kube_standins::{
    VERSION_NOTE, die, host_path, kubeconfig, pki, random_chars, skew, store, unsupported, version,
};

#[path = "kubeadm/certs.rs"]
mod certs;
#[path = "kubeadm/upgrade.rs"]
mod upgrade;
use serde_json::json;

const MANIFESTS: &str = "/etc/kubernetes/manifests";
const COMPONENTS: [&str; 3] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["version", rest @ ..] => print_version(rest),
        ["init", rest @ ..] => init(rest),
        ["join", rest @ ..] => join(rest),
        ["token", "create", rest @ ..] => token_create(rest),
        ["token", "list", rest @ ..] => token_list(rest),
        ["reset", rest @ ..] => reset(rest),
        ["upgrade", "plan", rest @ ..] => upgrade::plan(rest),
        ["upgrade", "apply", rest @ ..] => upgrade::apply(rest),
        ["upgrade", "node", rest @ ..] => upgrade::node(rest),
        ["upgrade", other, ..] => unsupported("kubeadm", &format!("upgrade {other}")),
        ["certs", "check-expiration", rest @ ..] => certs::check_expiration(rest),
        ["certs", "renew", rest @ ..] => certs::renew(rest),
        ["certs", other, ..] => unsupported("kubeadm", &format!("certs {other}")),
        [] => die(1, "kubeadm (lab stand-in): give a command"),
        [other, ..] => unsupported("kubeadm", other),
    }
}

/// `kubeadm version`: the long form, or `-o short` (`v1.30.4`, as real kubeadm prints it).
fn print_version(rest: &[&str]) {
    let v = version::of("kubeadm");
    match rest {
        [] => println!("kubeadm version: {v} ({VERSION_NOTE})"),
        ["-o" | "--output", "short"] | ["-o=short" | "--output=short"] => println!("{v}"),
        _ => unsupported("kubeadm", &format!("version {}", rest.join(" "))),
    }
}

/// The value of `--name VALUE` or `--name=VALUE`, and whether a flag was seen that is not known.
fn flags<'a>(rest: &[&'a str], with_value: &[&str], switches: &[&str], command: &str) -> Flags<'a> {
    let mut out = Flags::default();
    let mut i = 0;
    while i < rest.len() {
        let word = rest[i];
        if word == "--" {
            // As cobra: everything after `--` is an operand (`kubeadm upgrade apply --yes -- v1.31.1`).
            out.positional.extend_from_slice(&rest[i + 1..]);
            break;
        }
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n, Some(v)),
            _ => (word, None),
        };
        if with_value.contains(&name) {
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    rest.get(i).copied().unwrap_or_else(|| die(1, &format!("flag needs an argument: {name}")))
                }
            };
            out.values.push((name.trim_start_matches('-').to_owned(), value));
        } else if switches.contains(&name) {
            out.switches.push(name.trim_start_matches('-').to_owned());
        } else if name.starts_with('-') {
            unsupported("kubeadm", &format!("{command} flag {name}"));
        } else {
            out.positional.push(word);
        }
        i += 1;
    }
    out
}

#[derive(Default)]
struct Flags<'a> {
    values: Vec<(String, &'a str)>,
    switches: Vec<String>,
    positional: Vec<&'a str>,
}

impl<'a> Flags<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
    fn has(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

fn exists(path: &str) -> bool {
    host_path(path).exists()
}

fn write(path: &str, text: &str) {
    let p = host_path(path);
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).unwrap_or_else(|e| die(1, &format!("cannot create {}: {e}", dir.display())));
    }
    fs::write(&p, text).unwrap_or_else(|e| die(1, &format!("cannot write {}: {e}", p.display())));
}

fn preflight_failure(errors: &[String]) -> ! {
    let mut text = String::from("error execution phase preflight: [preflight] Some fatal errors occurred:\n");
    for e in errors {
        text.push_str(&format!("\t{e}\n"));
    }
    text.push_str(
        "[preflight] If you know what you are doing, you can make a check non-fatal with \
         `--ignore-preflight-errors=...`\nTo see the stack trace of this error execute with --v=5 or higher",
    );
    die(1, &text)
}

/// What `init` needs from the configuration, whatever its version.
#[derive(Default)]
struct Settings {
    advertise: Option<String>,
    bind_port: Option<u16>,
    control_plane_endpoint: Option<String>,
    cert_sans: Vec<String>,
    service_subnet: Option<String>,
    dns_domain: Option<String>,
    pod_subnet: Option<String>,
    etcd_endpoints: Vec<String>,
    etcd_files: Vec<String>,
    certificates_dir: Option<String>,
    token: Option<String>,
    node_name: Option<String>,
    version: Option<String>,
    apiserver_args: Vec<(String, String)>,
    /// The document kept in the kubeadm-config ConfigMap, and its key there.
    stored: Option<(&'static str, String)>,
}

impl Settings {
    /// External etcd: its endpoints and the client files kubeadm's preflight checks for.
    fn external_etcd(&mut self, endpoints: &[String], files: [&Option<String>; 3]) {
        self.etcd_endpoints = endpoints.to_vec();
        self.etcd_files = files.into_iter().flatten().cloned().collect();
    }

    /// The `networking` section, the same in every API version.
    fn networking(&mut self, n: &Networking) {
        self.service_subnet.clone_from(&n.service_subnet);
        self.dns_domain.clone_from(&n.dns_domain);
        self.pod_subnet.clone_from(&n.pod_subnet);
    }
}

fn settings(config: &KubeadmConfig) -> Settings {
    let mut s = Settings::default();
    let yaml = |d: &Document| {
        let one = KubeadmConfig { documents: vec![d.clone()] };
        one.render()
    };
    for d in &config.documents {
        match d {
            Document::MasterV1alpha1(m) => {
                if let Some(api) = &m.api {
                    s.advertise.clone_from(&api.advertise_address);
                    s.bind_port = api.bind_port;
                    s.control_plane_endpoint.clone_from(&api.control_plane_endpoint);
                }
                if let Some(etcd) = &m.etcd {
                    let endpoints = etcd.endpoints.clone().unwrap_or_default();
                    s.external_etcd(&endpoints, [&etcd.ca_file, &etcd.cert_file, &etcd.key_file]);
                }
                if let Some(n) = &m.networking {
                    s.networking(n);
                }
                s.cert_sans = m.api_server_cert_sans.clone().unwrap_or_default();
                s.certificates_dir.clone_from(&m.certificates_dir);
                s.token.clone_from(&m.token);
                s.node_name.clone_from(&m.node_name);
                s.version.clone_from(&m.kubernetes_version);
                s.apiserver_args = m.api_server_extra_args.clone().unwrap_or_default().into_iter().collect();
                s.stored = Some(("MasterConfiguration", yaml(d)));
            }
            Document::ClusterV1beta3(c) => {
                s.control_plane_endpoint.clone_from(&c.control_plane_endpoint);
                if let Some(ext) = c.etcd.as_ref().and_then(|e| e.external.as_ref()) {
                    s.external_etcd(&ext.endpoints, [&ext.ca_file, &ext.cert_file, &ext.key_file]);
                }
                if let Some(n) = &c.networking {
                    s.networking(n);
                }
                if let Some(a) = &c.api_server {
                    s.cert_sans = a.cert_sans.clone().unwrap_or_default();
                    s.apiserver_args = a.extra_args.clone().unwrap_or_default().into_iter().collect();
                }
                s.certificates_dir.clone_from(&c.certificates_dir);
                s.version.clone_from(&c.kubernetes_version);
                s.stored = Some(("ClusterConfiguration", yaml(d)));
            }
            Document::ClusterV1beta4(c) => {
                s.control_plane_endpoint.clone_from(&c.control_plane_endpoint);
                if let Some(ext) = c.etcd.as_ref().and_then(|e| e.external.as_ref()) {
                    s.external_etcd(&ext.endpoints, [&ext.ca_file, &ext.cert_file, &ext.key_file]);
                }
                if let Some(n) = &c.networking {
                    s.networking(n);
                }
                if let Some(a) = &c.api_server {
                    s.cert_sans = a.cert_sans.clone().unwrap_or_default();
                    s.apiserver_args =
                        a.extra_args.iter().flatten().map(|a| (a.name.clone(), a.value.clone())).collect();
                }
                s.certificates_dir.clone_from(&c.certificates_dir);
                s.version.clone_from(&c.kubernetes_version);
                s.stored = Some(("ClusterConfiguration", yaml(d)));
            }
            Document::InitV1beta3(i) => {
                if let Some(ep) = &i.local_api_endpoint {
                    s.advertise.clone_from(&ep.advertise_address);
                    s.bind_port = ep.bind_port;
                }
                s.token = i.bootstrap_tokens.as_ref().and_then(|t| t.first()).map(|t| t.token.clone());
                s.node_name = i.node_registration.as_ref().and_then(|n| n.name.clone());
            }
            Document::InitV1beta4(i) => {
                if let Some(ep) = &i.local_api_endpoint {
                    s.advertise.clone_from(&ep.advertise_address);
                    s.bind_port = ep.bind_port;
                }
                s.token = i.bootstrap_tokens.as_ref().and_then(|t| t.first()).map(|t| t.token.clone());
                s.node_name = i.node_registration.as_ref().and_then(|n| n.name.clone());
            }
        }
    }
    s
}

fn is_token(t: &str) -> bool {
    let ok =
        |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    t.split_once('.').is_some_and(|(id, secret)| ok(id, 6) && ok(secret, 16))
}

/// The first address of the service subnet (10.96.0.0/12 -> 10.96.0.1).
fn service_ip(subnet: &str) -> String {
    let base = subnet.split('/').next().and_then(|a| a.parse::<Ipv4Addr>().ok());
    base.map_or_else(|| "10.96.0.1".to_owned(), |ip| Ipv4Addr::from(u32::from(ip) + 1).to_string())
}

fn init(rest: &[&str]) {
    let f = flags(rest, &["--config"], &[], "init");
    if !f.positional.is_empty() {
        unsupported("kubeadm", &format!("init {}", f.positional.join(" ")));
    }
    let Some(file) = f.get("config") else {
        unsupported("kubeadm", "init without --config");
    };
    let text = fs::read_to_string(file)
        .unwrap_or_else(|e| die(1, &format!("unable to read config from \"{file}\" : {e}")));
    let mut values = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = <serde_json::Value as serde::Deserialize>::deserialize(doc)
            .unwrap_or_else(|e| die(1, &format!("error converting YAML to JSON: {e}")));
        if !value.is_null() {
            values.push(value);
        }
    }
    let config = KubeadmConfig::parse(&serde_json::Value::Array(values)).unwrap_or_else(|e| {
        die(1, &format!("error unmarshaling configuration from \"{file}\": {e}"));
    });
    let s = settings(&config);
    let version = s.version.clone().unwrap_or_else(|| version::of("kubeadm"));
    println!("[init] Using Kubernetes version: {version}");
    println!("[preflight] Running pre-flight checks");
    let mut errors = Vec::new();
    for c in COMPONENTS {
        let path = format!("{MANIFESTS}/{c}.yaml");
        if exists(&path) {
            let check = path.trim_start_matches('/').replace('/', "-");
            errors.push(format!("[ERROR FileAvailable--{check}]: {path} already exists"));
        }
    }
    for file in &s.etcd_files {
        if !exists(file) {
            errors.push(format!("[ERROR ExternalEtcdClientCertificates]: {file} doesn't exist"));
        }
    }
    errors.extend(skew::kubelet_preflight(&version::of("kubelet"), &version));
    if !errors.is_empty() {
        preflight_failure(&errors);
    }
    let Some(advertise) = s.advertise.clone() else {
        unsupported("kubeadm", "init without an advertise address (set it in the config)");
    };
    let port = s.bind_port.unwrap_or(6443);
    let endpoint = config.endpoint().unwrap_or_else(|| format!("{advertise}:{port}"));
    let server = format!("https://{endpoint}");
    let node = s.node_name.clone().unwrap_or_else(kube_standins::hostname);
    let dir = s.certificates_dir.clone().unwrap_or_else(|| "/etc/kubernetes/pki".into());
    fs::create_dir_all(host_path(&dir)).unwrap_or_else(|e| die(1, &format!("cannot create {dir}: {e}")));
    let mut log = Vec::new();
    let fail = |e: String| -> ! { die(1, &e) };
    let ca = pki::ca(&dir, "ca", "kubernetes", &mut log).unwrap_or_else(|e| fail(e));
    let service_subnet = s.service_subnet.clone().unwrap_or_else(|| "10.96.0.0/12".into());
    let domain = s.dns_domain.clone().unwrap_or_else(|| "cluster.local".into());
    let mut sans: Vec<String> = vec![
        node.clone(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{domain}"),
        service_ip(&service_subnet),
        advertise.clone(),
    ];
    let endpoint_host = endpoint.rsplit_once(':').map_or(endpoint.as_str(), |(h, _)| h).to_owned();
    for extra in s.cert_sans.iter().chain(std::iter::once(&endpoint_host)) {
        if !sans.contains(extra) {
            sans.push(extra.clone());
        }
    }
    pki::apiserver(&dir, &ca, &sans, &mut log).unwrap_or_else(|e| fail(e));
    pki::ca(&dir, "front-proxy-ca", "front-proxy-ca", &mut log).unwrap_or_else(|e| fail(e));
    pki::service_account(&dir, &mut log).unwrap_or_else(|e| fail(e));
    for line in &log {
        println!("{line}");
    }
    let (admin_cert, admin_key) =
        pki::client(&ca, "kubernetes-admin", "kubeadm:cluster-admins").unwrap_or_else(|e| fail(e));
    let (node_cert, node_key) =
        pki::client(&ca, &format!("system:node:{node}"), "system:nodes").unwrap_or_else(|e| fail(e));
    for (file, user, client) in [
        ("admin.conf", "kubernetes-admin", (admin_cert.as_str(), admin_key.as_str())),
        ("kubelet.conf", &format!("system:node:{node}"), (node_cert.as_str(), node_key.as_str())),
        (
            "controller-manager.conf",
            "system:kube-controller-manager",
            (admin_cert.as_str(), admin_key.as_str()),
        ),
        ("scheduler.conf", "system:kube-scheduler", (admin_cert.as_str(), admin_key.as_str())),
    ] {
        println!("[kubeconfig] Writing \"{file}\" kubeconfig file");
        write(&format!("/etc/kubernetes/{file}"), &kubeconfig(&server, &ca.cert_pem, user, Some(client)));
    }
    let mut apiserver_flags = vec![
        format!("--advertise-address={advertise}"),
        format!("--secure-port={port}"),
        format!("--service-cluster-ip-range={service_subnet}"),
        format!("--client-ca-file={dir}/ca.crt"),
        format!("--tls-cert-file={dir}/apiserver.crt"),
        format!("--tls-private-key-file={dir}/apiserver.key"),
        format!("--service-account-key-file={dir}/sa.pub"),
    ];
    if !s.etcd_endpoints.is_empty() {
        apiserver_flags.push(format!("--etcd-servers={}", s.etcd_endpoints.join(",")));
    }
    apiserver_flags.extend(s.apiserver_args.iter().map(|(k, v)| format!("--{k}={v}")));
    for c in COMPONENTS {
        let mut command = vec![c.to_owned()];
        if c == "kube-apiserver" {
            command.extend(apiserver_flags.iter().cloned());
        } else if c == "kube-controller-manager" {
            command.push(format!("--cluster-signing-cert-file={dir}/ca.crt"));
            if let Some(pods) = &s.pod_subnet {
                command.push("--allocate-node-cidrs=true".into());
                command.push(format!("--cluster-cidr={pods}"));
            }
        }
        let manifest = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": c, "namespace": "kube-system", "labels": {"component": c, "tier": "control-plane"}},
            "spec": {"hostNetwork": true, "containers": [{"name": c, "image": format!("registry.k8s.io/{c}:{version}"), "command": command}]},
        });
        println!("[control-plane] Creating static Pod manifest for \"{c}\"");
        write(&format!("{MANIFESTS}/{c}.yaml"), &serde_yaml_ng::to_string(&manifest).unwrap_or_default());
    }
    let token = s.token.clone().unwrap_or_else(|| format!("{}.{}", random_chars(6), random_chars(16)));
    if !is_token(&token) {
        die(
            1,
            &format!("the bootstrap token \"{token}\" was not of the form \"[a-z0-9]{{6}}.[a-z0-9]{{16}}\""),
        );
    }
    if !store::tokens().iter().any(|t| t["token"] == token.as_str()) {
        store::add_token(&token, Some("The default bootstrap token generated by 'kubeadm init'."));
    }
    println!("[bootstrap-token] Using token: {token}");
    seed_store(&s, &server, &node);
    register_init(&ca.spki_hash(), &node, &version);
    println!("[addons] Applied essential addon: CoreDNS\n[addons] Applied essential addon: kube-proxy\n");
    println!("Your Kubernetes control-plane has initialized successfully!\n");
    println!("To start using your cluster, you need to run the following as a regular user:\n");
    println!("  mkdir -p $HOME/.kube\n  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config");
    println!("  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n");
    println!(
        "Alternatively, if you are the root user, you can run:\n\n  export KUBECONFIG=/etc/kubernetes/admin.conf\n"
    );
    println!("You should now deploy a pod network to the cluster.");
    println!("Run \"kubectl apply -f [podnetwork].yaml\" with one of the options listed at:");
    println!("  https://kubernetes.io/docs/concepts/cluster-administration/addons/\n");
    println!("Then you can join any number of worker nodes by running the following on each as root:\n");
    println!(
        "kubeadm join {endpoint} --token {token} \\\n\t--discovery-token-ca-cert-hash {} ",
        ca.spki_hash()
    );
}

/// The control plane's Node in the shared cluster API, and the cluster's version (the
/// ClusterConfiguration's kubernetesVersion; the first init sets it, later inits of the same
/// cluster keep it).
fn register_init(hash: &str, node: &str, version: &str) {
    let kubelet = version::of("kubelet");
    Cluster::create(hash).update(|state, events| {
        if state["controlPlaneVersion"].is_null() {
            state["controlPlaneVersion"] = json!(version);
        }
        cluster::register(state, node, true, &kubelet);
        events.push(Event::new("init", node));
    });
}

/// The objects real `kubeadm init` creates that the modules read.
fn seed_store(s: &Settings, server: &str, node: &str) {
    let mut objects: Vec<serde_json::Value> = store::objects()
        .into_iter()
        .filter(|o| {
            let n = store::name(o);
            !(store::namespace(o) == "kube-system"
                && (n == "kubeadm-config" || n == "kube-proxy" || n.starts_with("kube-proxy-")))
        })
        .collect();
    let (key, document) = s.stored.clone().unwrap_or(("ClusterConfiguration", String::new()));
    objects.push(store::stamp(
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
               "data": {key: document}}),
        "kube-system",
    ));
    let proxy_kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: \
         /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n    server: {server}\n  name: default\n\
         contexts:\n- context:\n    cluster: default\n    namespace: default\n    user: default\n  \
         name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n    \
         tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n"
    );
    let proxy_config = format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclientConnection:\n  \
         kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\nclusterCIDR: {}\nmode: \"\"\n",
        s.pod_subnet.clone().unwrap_or_default()
    );
    objects.push(store::stamp(
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
               "data": {"config.conf": proxy_config, "kubeconfig.conf": proxy_kubeconfig}}),
        "kube-system",
    ));
    objects.push(store::kube_proxy_pod(node));
    store::save_objects(&objects);
}

/// What a join is given: on the command line (`kubeadm join HOST:PORT --token T
/// --discovery-token-ca-cert-hash H [--control-plane]`) or in a v1beta3 JoinConfiguration
/// (`kubeadm join --config FILE`, decoded strictly; like kubeadm, not mixed with those flags).
struct JoinSettings {
    node_name: Option<String>,
    endpoint: String,
    token: Option<String>,
    hash: Option<String>,
    control_plane: bool,
}

fn join_settings(rest: &[&str]) -> JoinSettings {
    let f = flags(
        rest,
        &["--config", "--token", "--discovery-token-ca-cert-hash", "--certificate-key", "--node-name"],
        &["--control-plane"],
        "join",
    );
    if let Some(file) = f.get("config") {
        let mixed: Vec<&str> = ["token", "discovery-token-ca-cert-hash", "certificate-key", "node-name"]
            .into_iter()
            .filter(|name| f.get(name).is_some())
            .chain(f.has("control-plane").then_some("control-plane"))
            .collect();
        if !mixed.is_empty() || !f.positional.is_empty() {
            die(1, &format!("can not mix '--config' with arguments {mixed:?} {:?}", f.positional));
        }
        let text = fs::read_to_string(file)
            .unwrap_or_else(|e| die(1, &format!("unable to read config from \"{file}\" : {e}")));
        let value: serde_json::Value = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| die(1, &format!("error converting YAML to JSON: {e}")));
        let config = JoinConfigurationV1beta3::parse(&value).unwrap_or_else(|e| {
            die(1, &format!("error unmarshaling configuration from \"{file}\": {e}"));
        });
        let discovery = config.discovery.bootstrap_token.unwrap_or_else(|| {
            unsupported("kubeadm", "join without discovery.bootstrapToken");
        });
        let endpoint = discovery.api_server_endpoint.unwrap_or_else(|| {
            die(1, "discovery.bootstrapToken.apiServerEndpoint: Required value: the API server endpoint")
        });
        if discovery.unsafe_skip_ca_verification == Some(true) {
            unsupported("kubeadm", "join with unsafeSkipCAVerification");
        }
        return JoinSettings {
            node_name: config.node_registration.as_ref().and_then(|n| n.name.clone()),
            endpoint,
            token: Some(discovery.token),
            hash: discovery.ca_cert_hashes.and_then(|h| h.into_iter().next()),
            control_plane: config.control_plane.is_some(),
        };
    }
    let [endpoint] = f.positional[..] else {
        die(1, "kubeadm join: give exactly one API server endpoint (host:port)");
    };
    JoinSettings {
        node_name: f.get("node-name").map(str::to_owned),
        endpoint: endpoint.to_owned(),
        token: f.get("token").map(str::to_owned),
        hash: f.get("discovery-token-ca-cert-hash").map(str::to_owned),
        control_plane: f.has("control-plane"),
    }
}

fn join(rest: &[&str]) {
    let settings = join_settings(rest);
    let endpoint = settings.endpoint.as_str();
    let port_ok = endpoint.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
    if !port_ok {
        die(1, &format!("couldn't parse the API server endpoint \"{endpoint}\": missing port"));
    }
    let Some(token) = settings.token.as_deref() else {
        die(
            1,
            "discovery: Invalid value: \"\": using token-based discovery without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification flag to continue",
        );
    };
    if !is_token(token) {
        die(
            1,
            &format!("the bootstrap token \"{token}\" was not of the form \"[a-z0-9]{{6}}.[a-z0-9]{{16}}\""),
        );
    }
    let hash = settings.hash.as_deref().unwrap_or_else(|| {
        die(1, "discovery.bootstrapToken: Invalid value: \"\": using token-based discovery without caCertHashes can be unsafe")
    });
    let hex = hash
        .strip_prefix("sha256:")
        .unwrap_or_else(|| die(1, &format!("invalid hash \"{hash}\", expected \"sha256:<hex>\"")));
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
        die(1, &format!("invalid hash \"{hash}\": expected 64 lowercase hex digits after \"sha256:\""));
    }
    println!("[preflight] Running pre-flight checks");
    let mut errors = Vec::new();
    for path in ["/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt"] {
        if exists(path) && (path.ends_with("kubelet.conf") || !settings.control_plane) {
            let check = path.trim_start_matches('/').replace('/', "-");
            errors.push(format!("[ERROR FileAvailable--{check}]: {path} already exists"));
        }
    }
    // The cluster to register with, and the kubelet's version, known before anything is written.
    let registration = Cluster::find(hash).map(|c| (c, version::of("kubelet")));
    if let Some((c, kubelet)) = &registration
        && let Some(control_plane) = c.state()["controlPlaneVersion"].as_str()
    {
        errors.extend(skew::kubelet_preflight(kubelet, control_plane));
    }
    if !errors.is_empty() {
        preflight_failure(&errors);
    }
    write(
        "/etc/kubernetes/kubelet.conf",
        &kubeconfig(&format!("https://{endpoint}"), "", "default-auth", None),
    );
    write(
        &format!("{}/join.json", store::DIR),
        &serde_json::to_string_pretty(&json!({"endpoint": endpoint, "token": token, "caCertHash": hash,
            "controlPlane": settings.control_plane}))
        .unwrap_or_default(),
    );
    let node = settings.node_name.clone().unwrap_or_else(kube_standins::hostname);
    match registration {
        Some((c, kubelet)) => {
            c.update(|state, events| {
                cluster::register(state, &node, settings.control_plane, &kubelet);
                events.push(Event::new("join", &node));
            });
        }
        None => eprintln!(
            "kubeadm (lab stand-in): no kubeadm init in this lab made a cluster with CA {hash}: \
             node {node} is registered nowhere"
        ),
    }
    kube_standins::systemctl(&["restart", "kubelet"]);
    println!("[kubelet-start] Starting the kubelet\n\nThis node has joined the cluster:");
    println!("* Certificate signing request was sent to apiserver and a response was received.");
    println!("* The Kubelet was informed of the new secure connection details.\n");
    println!("Run 'kubectl get nodes' on the control-plane to see this node join the cluster.");
}

fn admin_server() -> (String, String) {
    let text = fs::read_to_string(host_path("/etc/kubernetes/admin.conf")).unwrap_or_else(|e| {
        die(1, &format!("failed to load admin kubeconfig: open /etc/kubernetes/admin.conf: {e}"))
    });
    let server =
        kube_standins::kubeconfig_server(&text).unwrap_or_else(|| die(1, "admin.conf has no server"));
    let ca = fs::read_to_string(host_path("/etc/kubernetes/pki/ca.key"))
        .ok()
        .and_then(|k| rcgen::KeyPair::from_pem(&k).ok())
        .unwrap_or_else(|| die(1, "failed to load the CA key /etc/kubernetes/pki/ca.key"));
    (server, pki::spki_hash_of(&ca))
}

fn token_create(rest: &[&str]) {
    let f = flags(rest, &["--description", "--ttl"], &["--print-join-command"], "token create");
    if !f.positional.is_empty() {
        unsupported("kubeadm", "token create with a given token");
    }
    let (server, hash) = admin_server();
    let token = format!("{}.{}", random_chars(6), random_chars(16));
    store::add_token(&token, f.get("description"));
    if f.has("print-join-command") {
        let endpoint = server.trim_start_matches("https://");
        println!("kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash {hash} ");
    } else {
        println!("{token}");
    }
}

fn token_list(rest: &[&str]) {
    let f = flags(rest, &["-o", "--output"], &[], "token list");
    admin_server();
    match f.get("o").or(f.get("output")) {
        Some("json") => {
            for t in store::tokens() {
                println!("{}", serde_json::to_string_pretty(&t).unwrap_or_default());
            }
        }
        Some(other) => unsupported("kubeadm", &format!("token list -o {other}")),
        None => {
            println!(
                "TOKEN                     TTL         EXPIRES                USAGES                   DESCRIPTION"
            );
            for t in store::tokens() {
                println!(
                    "{}   23h         {}   authentication,signing",
                    t["token"].as_str().unwrap_or(""),
                    t["expires"].as_str().unwrap_or("")
                );
            }
        }
    }
}

fn reset(rest: &[&str]) {
    let f = flags(rest, &[], &["-f", "--force"], "reset");
    if !f.has("f") && !f.has("force") {
        unsupported("kubeadm", "reset without -f (interactive confirmation)");
    }
    // Real reset leaves the Node object (`kubectl delete node` removes it): its kubelet is gone,
    // so it turns NotReady. The stand-in drops a cluster once its last control plane is reset.
    if let Some(c) = cluster::of_this_host().and_then(|h| Cluster::find(&h)) {
        let node = kube_standins::hostname();
        let last = c.update(|state, events| {
            if let Some(n) = cluster::node_mut(state, &node) {
                cluster::set_ready(n, false);
                events.push(Event::new("reset", &node));
            }
            let nodes = state["nodes"].as_array().cloned().unwrap_or_default();
            !nodes.iter().any(|n| cluster::is_control_plane(n) && cluster::is_ready(n))
        });
        if last {
            c.remove();
        }
    }
    kube_standins::systemctl(&["stop", "kubelet"]);
    for path in [
        MANIFESTS,
        "/etc/kubernetes/pki",
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/super-admin.conf",
        "/etc/kubernetes/kubelet.conf",
        "/etc/kubernetes/bootstrap-kubelet.conf",
        "/etc/kubernetes/controller-manager.conf",
        "/etc/kubernetes/scheduler.conf",
        store::DIR,
    ] {
        let p = host_path(path);
        let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
    }
    println!("[reset] Stopping the kubelet service");
    println!("[reset] Deleting contents of directories: [/etc/kubernetes/manifests /etc/kubernetes/pki]");
    println!(
        "[reset] Deleting files: [/etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf]"
    );
}
