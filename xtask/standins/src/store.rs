//! The object store behind `kubectl`: every object of this host's "cluster" in one JSON file,
//! `/var/lib/kube-standin/objects.json`, plus the bootstrap tokens in `tokens.json`.

use std::fs;

use serde_json::{Value, json};

use crate::host_path;

pub const DIR: &str = "/var/lib/kube-standin";

fn path(name: &str) -> std::path::PathBuf {
    host_path(&format!("{DIR}/{name}"))
}

fn load(name: &str) -> Vec<Value> {
    fs::read_to_string(path(name)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn save(name: &str, items: &[Value]) {
    fs::create_dir_all(host_path(DIR)).expect("store directory");
    let tmp = path(&format!("{name}.tmp"));
    fs::write(&tmp, serde_json::to_string_pretty(items).expect("JSON")).expect("store write");
    fs::rename(&tmp, path(name)).expect("store rename");
}

/// Every object.
pub fn objects() -> Vec<Value> {
    load("objects.json")
}

pub fn save_objects(objects: &[Value]) {
    save("objects.json", objects);
}

/// Bootstrap tokens, as `kubeadm token list -o json` prints them.
pub fn tokens() -> Vec<Value> {
    load("tokens.json")
}

/// Adds a bootstrap token valid for 24 h.
pub fn add_token(token: &str, description: Option<&str>) {
    let mut all = tokens();
    let mut entry = json!({
        "kind": "BootstrapToken",
        "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
        "creationTimestamp": null,
        "token": token,
        "ttl": "24h0m0s",
        "expires": crate::rfc3339(crate::now() + 86_400),
        "usages": ["authentication", "signing"],
        "groups": ["system:bootstrappers:kubeadm:default-node-token"],
    });
    if let Some(d) = description {
        entry["description"] = json!(d);
    }
    all.push(entry);
    save("tokens.json", &all);
}

/// The lowercase singular kind for a `kubectl` resource word (`cm`, `configmaps`, `Pod`...).
pub fn kind_of(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "cm" | "configmap" | "configmaps" => "configmap",
        "po" | "pod" | "pods" => "pod",
        "ds" | "daemonset" | "daemonsets" => "daemonset",
        "deploy" | "deployment" | "deployments" => "deployment",
        "svc" | "service" | "services" => "service",
        "sa" | "serviceaccount" | "serviceaccounts" => "serviceaccount",
        "secret" | "secrets" => "secret",
        "ns" | "namespace" | "namespaces" => "namespace",
        _ => return None,
    })
}

/// The plural resource name, for messages (`configmaps "x" not found`).
pub fn plural(kind: &str) -> String {
    format!("{kind}s")
}

pub fn object_kind(object: &Value) -> String {
    object["kind"].as_str().unwrap_or_default().to_ascii_lowercase()
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// Whether `object` has every `k=v` of `selector` (comma-separated) among its labels.
pub fn matches(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| match term.split_once('=') {
        Some((k, v)) => object["metadata"]["labels"][k].as_str() == Some(v.trim_start_matches('=')),
        None => !object["metadata"]["labels"][term].is_null(),
    })
}

/// A new object as the API server would store it: uid, resourceVersion, creationTimestamp.
pub fn stamp(mut object: Value, namespace: &str) -> Value {
    let meta = &mut object["metadata"];
    if meta["namespace"].is_null() && !namespace.is_empty() {
        meta["namespace"] = json!(namespace);
    }
    meta["uid"] = json!(format!("{}-{}", crate::random_chars(8), crate::random_chars(12)));
    meta["resourceVersion"] = json!(crate::now().to_string());
    meta["creationTimestamp"] = json!(crate::rfc3339(crate::now()));
    object
}

/// `object` without what the server manages, for comparing content.
pub fn content(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object["metadata"].as_object_mut() {
        for key in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"] {
            meta.remove(key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    object
}

/// A running kube-proxy pod of the kube-proxy DaemonSet, on `node`.
pub fn kube_proxy_pod(node: &str) -> Value {
    stamp(
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("kube-proxy-{}", crate::random_chars(5)),
                "namespace": "kube-system",
                "labels": {"k8s-app": "kube-proxy"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kube-proxy"}],
            },
            "spec": {"nodeName": node, "containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }),
        "kube-system",
    )
}
