//! `kubectl`, lab stand-in: `get`, `apply -f`, `delete -l`, `patch --type merge`, `wait --for=condition`,
//! `version --client`, against the host's object store (see the crate docs); `get nodes`, `cordon`,
//! `uncordon`, `drain`, `delete node` against the shared cluster API (see `nodes.rs`). Anything else
//! exits 1 with "not supported by the lab stand-in".

use std::fs;
use std::io::Read;

use kube_standins::{VERSION_NOTE, die, host_path, store, unsupported, version};
use serde_json::{Value, json};

#[path = "kubectl/nodes.rs"]
mod nodes;

#[derive(Default)]
struct Cli {
    kubeconfig: Option<String>,
    namespace: Option<String>,
    output: Option<String>,
    selector: Option<String>,
    file: Option<String>,
    patch: Option<String>,
    patch_type: Option<String>,
    wait_for: Option<String>,
    timeout: Option<String>,
    dry_run: Option<String>,
    /// `--client` (`kubectl version --client`).
    client: bool,
    /// `drain`'s switches.
    ignore_daemonsets: bool,
    delete_emptydir_data: bool,
    force: bool,
    /// `--all` (`wait --for=condition=Ready nodes --all`).
    all: bool,
    positional: Vec<String>,
}

fn parse(args: &[String]) -> Cli {
    let mut cli = Cli::default();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        if word == "--" {
            // As pflag: everything after `--` is an operand, even what starts with `-`.
            cli.positional.extend(args[i + 1..].iter().cloned());
            break;
        }
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n, Some(v.to_owned())),
            _ => (word.as_str(), None),
        };
        let switch = match name {
            "--client" => Some(&mut cli.client),
            "--ignore-daemonsets" => Some(&mut cli.ignore_daemonsets),
            "--delete-emptydir-data" => Some(&mut cli.delete_emptydir_data),
            "--force" => Some(&mut cli.force),
            "--all" => Some(&mut cli.all),
            _ => None,
        };
        if let Some(switch) = switch {
            *switch = match inline.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => die(1, &format!("error: invalid argument \"{other}\" for \"{name}\" flag")),
            };
            i += 1;
            continue;
        }
        let slot = match name {
            "--kubeconfig" => &mut cli.kubeconfig,
            "-n" | "--namespace" => &mut cli.namespace,
            "-o" | "--output" => &mut cli.output,
            "-l" | "--selector" => &mut cli.selector,
            "-f" | "--filename" => &mut cli.file,
            "-p" | "--patch" => &mut cli.patch,
            "--type" => &mut cli.patch_type,
            "--for" => &mut cli.wait_for,
            "--timeout" => &mut cli.timeout,
            "--dry-run" => &mut cli.dry_run,
            n if n.starts_with('-') && n != "-" => unsupported("kubectl", &format!("flag {n}")),
            _ => {
                cli.positional.push(word.clone());
                i += 1;
                continue;
            }
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .unwrap_or_else(|| die(1, &format!("error: flag needs an argument: {name}")))
            }
        };
        *slot = Some(value);
        i += 1;
    }
    cli
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = parse(&args);
    let Some(verb) = cli.positional.first().cloned() else {
        die(1, "kubectl (lab stand-in): give a command");
    };
    if verb == "version" {
        // Only the client's: the stand-in has no server to ask.
        if !cli.client || cli.positional.len() > 1 || cli.output.is_some() {
            unsupported("kubectl", "version without --client");
        }
        println!("Client Version: {} ({VERSION_NOTE})", version::of("kubectl"));
        return;
    }
    if cli.client {
        unsupported("kubectl", &format!("{verb} --client"));
    }
    let kubeconfig = check_kubeconfig(&cli);
    let node_words = ["node", "nodes", "no"];
    let on_nodes = cli.positional.get(1).is_some_and(|w| {
        node_words.contains(&w.to_ascii_lowercase().as_str())
            || w.split_once('/').is_some_and(|(k, _)| node_words.contains(&k.to_ascii_lowercase().as_str()))
    });
    if matches!(verb.as_str(), "cordon" | "uncordon" | "drain")
        || (on_nodes && matches!(verb.as_str(), "get" | "delete" | "wait"))
    {
        if cli.dry_run.is_some() {
            unsupported("kubectl", &format!("{verb} --dry-run"));
        }
        nodes::run(&cli, &verb, &kubeconfig);
        return;
    }
    if cli.ignore_daemonsets || cli.delete_emptydir_data || cli.force || cli.all {
        unsupported(
            "kubectl",
            &format!("{verb} with --ignore-daemonsets, --delete-emptydir-data, --force or --all"),
        );
    }
    if let Some(mode) = cli.dry_run.as_deref()
        && (mode != "server" || !matches!(verb.as_str(), "apply" | "patch"))
    {
        unsupported("kubectl", &format!("{verb} --dry-run={mode}"));
    }
    match verb.as_str() {
        "get" => get(&cli),
        "apply" => apply(&cli),
        "delete" => delete(&cli),
        "patch" => patch(&cli),
        "wait" => wait(&cli),
        other => unsupported("kubectl", other),
    }
}

/// Like kubectl: without a readable kubeconfig that names a server, nothing works. Returns its text.
fn check_kubeconfig(cli: &Cli) -> String {
    let path = cli
        .kubeconfig
        .clone()
        .or_else(|| std::env::var("KUBECONFIG").ok())
        .unwrap_or_else(|| "/root/.kube/config".into());
    let text = fs::read_to_string(host_path(&path))
        .unwrap_or_else(|_| die(1, &format!("error: stat {path}: no such file or directory")));
    if kube_standins::kubeconfig_server(&text).is_none() {
        die(
            1,
            "The connection to the server localhost:8080 was refused - did you specify the right host or port?",
        );
    }
    text
}

fn namespace(cli: &Cli) -> String {
    cli.namespace.clone().unwrap_or_else(|| "default".into())
}

fn kind_word(word: &str) -> &'static str {
    store::kind_of(word).unwrap_or_else(|| {
        die(1, &format!("error: the server doesn't have a resource type \"{word}\" (lab stand-in)"))
    })
}

/// `kind name`, `kind/name` or `kind` alone.
fn target(cli: &Cli) -> (&'static str, Option<String>) {
    match cli.positional.get(1..).unwrap_or_default() {
        [one] => match one.split_once('/') {
            Some((k, n)) => (kind_word(k), Some(n.to_owned())),
            None => (kind_word(one), None),
        },
        [k, n] => (kind_word(k), Some(n.clone())),
        [] => die(1, "error: you must specify the type of resource to get"),
        _ => unsupported("kubectl", "several resource names"),
    }
}

fn select<'a>(objects: &'a [Value], cli: &Cli, kind: &str, name: Option<&str>) -> Vec<&'a Value> {
    let ns = namespace(cli);
    objects
        .iter()
        .filter(|o| store::object_kind(o) == kind && (kind == "namespace" || store::namespace(o) == ns))
        .filter(|o| name.is_none_or(|n| store::name(o) == n))
        .filter(|o| cli.selector.as_deref().is_none_or(|s| store::matches(o, s)))
        .collect()
}

fn not_found(kind: &str, name: &str) -> ! {
    die(1, &format!("Error from server (NotFound): {} \"{name}\" not found", store::plural(kind)))
}

fn print(value: &Value, output: Option<&str>) {
    match output {
        Some("json") => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Some("yaml") => print!("{}", serde_yaml_ng::to_string(value).unwrap_or_default()),
        Some("name") => {
            let items = value["items"].as_array().cloned().unwrap_or_else(|| vec![value.clone()]);
            for o in items {
                println!("{}/{}", store::object_kind(&o), store::name(&o));
            }
        }
        Some(other) => unsupported("kubectl", &format!("-o {other}")),
        None => {
            println!("NAME");
            let items = value["items"].as_array().cloned().unwrap_or_else(|| vec![value.clone()]);
            for o in items {
                println!("{}", store::name(&o));
            }
        }
    }
}

fn get(cli: &Cli) {
    let (kind, name) = target(cli);
    let objects = store::objects();
    let found = select(&objects, cli, kind, name.as_deref());
    match name {
        Some(name) => match found.first() {
            Some(o) => print(o, cli.output.as_deref()),
            None => not_found(kind, &name),
        },
        None => {
            if found.is_empty() && cli.output.is_none() {
                eprintln!("No resources found in {} namespace.", namespace(cli));
                return;
            }
            let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                              "items": found});
            print(&list, cli.output.as_deref());
        }
    }
}

fn read_input(file: &str) -> String {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).unwrap_or_else(|e| die(1, &format!("error: {e}")));
        text
    } else {
        fs::read_to_string(host_path(file))
            .unwrap_or_else(|_| die(1, &format!("error: the path \"{file}\" does not exist")))
    }
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Records what was applied, as kubectl does, for the next apply's three-way merge.
fn remember(object: &mut Value, applied: &Value) {
    let text = serde_json::to_string(&store::content(applied)).unwrap_or_default();
    object["metadata"]["annotations"][LAST_APPLIED] = json!(text);
}

/// kubectl apply's merge: fields in `new` are set, fields in the last applied configuration
/// but no longer in `new` are removed, and fields set by others (patch, controllers) stay.
fn three_way(live: &Value, last: &Value, new: &Value) -> Value {
    match (live, new) {
        (Value::Object(l), Value::Object(n)) => {
            let mut out = l.clone();
            if let Some(last) = last.as_object() {
                for key in last.keys().filter(|k| !n.contains_key(*k)) {
                    out.remove(key);
                }
            }
            for (k, v) in n {
                let merged =
                    three_way(l.get(k).unwrap_or(&Value::Null), last.get(k).unwrap_or(&Value::Null), v);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

fn dry_suffix(cli: &Cli) -> &'static str {
    if cli.dry_run.is_some() { " (server dry run)" } else { "" }
}

fn apply(cli: &Cli) {
    if cli.positional.len() > 1 {
        unsupported("kubectl", "apply with resource arguments");
    }
    let Some(file) = &cli.file else {
        die(1, "error: must specify one of -f and -k");
    };
    let text = read_input(file);
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = <Value as serde::Deserialize>::deserialize(doc)
            .unwrap_or_else(|e| die(1, &format!("error: error parsing {file}: {e}")));
        if value.is_null() {
            continue;
        }
        if value["kind"].as_str() == Some("List") {
            docs.extend(value["items"].as_array().cloned().unwrap_or_default());
        } else {
            docs.push(value);
        }
    }
    let mut objects = store::objects();
    for doc in docs {
        let (Some(_), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str()) else {
            die(1, &format!("error: error validating \"{file}\": apiVersion and kind must be set"));
        };
        let kind = store::kind_of(kind).unwrap_or_else(|| {
            die(1, &format!("error: resource mapping not found for kind \"{kind}\" (lab stand-in)"))
        });
        let name = store::name(&doc).to_owned();
        if name.is_empty() {
            die(1, "error: error when retrieving current configuration: resource name may not be empty");
        }
        let ns = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => {
                if cli.namespace.as_deref().is_some_and(|n| n != ns) {
                    die(
                        1,
                        &format!(
                            "error: the namespace from the provided object \"{ns}\" does not match the namespace \"{}\". You must pass '--namespace={ns}' to perform this operation.",
                            namespace(cli)
                        ),
                    );
                }
                ns.to_owned()
            }
            None if kind == "namespace" => String::new(),
            None => namespace(cli),
        };
        let position = objects.iter().position(|o| {
            store::object_kind(o) == kind && store::name(o) == name && store::namespace(o) == ns
        });
        let verdict = match position {
            None => {
                let mut object = store::stamp(store::content(&doc), &ns);
                remember(&mut object, &doc);
                objects.push(object);
                "created"
            }
            Some(i) => {
                let mut wanted = doc.clone();
                if !ns.is_empty() {
                    wanted["metadata"]["namespace"] = json!(ns);
                }
                let live = &objects[i];
                let last = live["metadata"]["annotations"][LAST_APPLIED].as_str();
                if last.is_none() {
                    eprintln!(
                        "Warning: resource {}/{name} is missing the {LAST_APPLIED} annotation which is \
                         required by kubectl apply. kubectl apply should only be used on resources created \
                         declaratively by either kubectl create --save-config or kubectl apply. The missing \
                         annotation will be patched automatically.",
                        store::plural(kind)
                    );
                }
                let last: Value = last.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
                let mut next = three_way(live, &last, &store::content(&wanted));
                if store::content(&next) == store::content(live) {
                    "unchanged"
                } else {
                    next["metadata"]["resourceVersion"] = json!(kube_standins::now().to_string());
                    remember(&mut next, &wanted);
                    objects[i] = next;
                    "configured"
                }
            }
        };
        println!("{kind}/{name} {verdict}{}", dry_suffix(cli));
    }
    if cli.dry_run.is_none() {
        store::save_objects(&objects);
    }
}

fn delete(cli: &Cli) {
    let (kind, name) = target(cli);
    if name.is_none() && cli.selector.is_none() {
        die(1, "error: resource(s) were provided, but no name was specified");
    }
    let mut objects = store::objects();
    let doomed: Vec<Value> = select(&objects, cli, kind, name.as_deref()).into_iter().cloned().collect();
    if doomed.is_empty() {
        match name {
            Some(n) => not_found(kind, &n),
            None => {
                eprintln!("No resources found");
                return;
            }
        }
    }
    objects.retain(|o| !doomed.contains(o));
    for o in &doomed {
        println!("{kind} \"{}\" deleted", store::name(o));
        // A DaemonSet's pod comes back, under a new name.
        let owned_by_ds = o["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "DaemonSet"));
        if kind == "pod" && owned_by_ds {
            objects.push(store::kube_proxy_pod(o["spec"]["nodeName"].as_str().unwrap_or("node")));
        }
    }
    store::save_objects(&objects);
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn patch(cli: &Cli) {
    let (kind, Some(name)) = target(cli) else {
        die(1, "error: resource(s) were provided, but no name was specified");
    };
    match cli.patch_type.as_deref() {
        None | Some("merge" | "strategic") => {}
        Some(other) => unsupported("kubectl", &format!("patch --type {other}")),
    }
    let Some(text) = &cli.patch else {
        die(1, "error: must specify --patch or --patch-file containing the contents of the patch");
    };
    let patch: Value = serde_json::from_str(text)
        .or_else(|_| serde_yaml_ng::from_str(text))
        .unwrap_or_else(|e| die(1, &format!("error: unable to parse \"{text}\": {e}")));
    let mut objects = store::objects();
    let ns = namespace(cli);
    let Some(i) = objects
        .iter()
        .position(|o| store::object_kind(o) == kind && store::name(o) == name && store::namespace(o) == ns)
    else {
        not_found(kind, &name)
    };
    let before = objects[i].clone();
    merge(&mut objects[i], &patch);
    if store::content(&objects[i]) == store::content(&before) {
        println!("{kind}/{name} patched (no change){}", dry_suffix(cli));
        return;
    }
    objects[i]["metadata"]["resourceVersion"] = json!(kube_standins::now().to_string());
    if cli.dry_run.is_none() {
        store::save_objects(&objects);
    }
    println!("{kind}/{name} patched{}", dry_suffix(cli));
}

fn wait(cli: &Cli) {
    let (kind, name) = target(cli);
    let Some(condition) = cli.wait_for.as_deref().and_then(|f| f.strip_prefix("condition=")) else {
        unsupported("kubectl", "wait without --for=condition=NAME");
    };
    let (condition, wanted) = condition.split_once('=').unwrap_or((condition, "True"));
    let objects = store::objects();
    let found = select(&objects, cli, kind, name.as_deref());
    if found.is_empty() {
        match name {
            Some(n) => not_found(kind, &n),
            None => die(1, "error: no matching resources found"),
        }
    }
    let mut failed = false;
    for o in found {
        let met = o["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(condition)) && c["status"] == wanted
            })
        });
        if met {
            println!("{kind}/{} condition met", store::name(o));
        } else {
            eprintln!(
                "error: timed out waiting for the condition on {}/{}",
                store::plural(kind),
                store::name(o)
            );
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_merges_like_kubectl() {
        let live = json!({"metadata": {"name": "a", "uid": "u", "labels": {"patched": "yes"}}, "data": {"x": "1", "old": "2"}});
        let last = json!({"metadata": {"name": "a"}, "data": {"x": "1", "old": "2"}});
        let new = json!({"metadata": {"name": "a"}, "data": {"x": "3"}});
        let merged = three_way(&live, &last, &new);
        assert_eq!(merged["metadata"]["labels"]["patched"], "yes", "fields set by others stay");
        assert_eq!(merged["metadata"]["uid"], "u");
        assert_eq!(merged["data"], json!({"x": "3"}), "fields dropped from the manifest go");
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<String> {
        line.iter().map(|w| (*w).to_owned()).collect()
    }

    /// As kubectl's flag parser: values joined with `=`, and operands after `--`, even ones
    /// that look like flags.
    #[test]
    fn operands_follow_the_double_dash() {
        let cli = parse(&words(&[
            "--kubeconfig=/k",
            "--namespace=kube-system",
            "get",
            "--output=json",
            "--selector=a=b",
            "--",
            "pod",
            "-odd",
        ]));
        assert_eq!(cli.kubeconfig.as_deref(), Some("/k"));
        assert_eq!(cli.namespace.as_deref(), Some("kube-system"));
        assert_eq!(cli.output.as_deref(), Some("json"));
        assert_eq!(cli.selector.as_deref(), Some("a=b"));
        assert_eq!(cli.positional, ["get", "pod", "-odd"]);
    }
}
