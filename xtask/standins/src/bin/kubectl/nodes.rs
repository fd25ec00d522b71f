//! kubectl's node commands against the shared cluster API (`kube_standins::cluster`): the
//! cluster is the one whose CA the kubeconfig trusts (`certificate-authority-data`).
//!
//! - `get nodes|node NAME|nodes/NAME [-l SEL] [-o json|yaml|name]`: kubectl's table (NAME STATUS
//!   ROLES AGE VERSION; `Ready,SchedulingDisabled` when cordoned).
//! - `cordon NODE`, `uncordon NODE`: kubectl's messages, idempotent (`node/x already cordoned`).
//! - `drain NODE --ignore-daemonsets [--delete-emptydir-data] [--force] [--timeout=D]`: cordons,
//!   then evicts the node's one workload pod (`default/standin-web-<hash>`, owned by a
//!   ReplicaSet, no emptyDir: `--delete-emptydir-data` and `--force` change nothing); every node
//!   also runs a kube-proxy DaemonSet pod, so without `--ignore-daemonsets` the drain fails as
//!   kubectl's does, after cordoning. While `<cluster>/refuse-eviction/<node>` exists the eviction
//!   is refused as a PodDisruptionBudget refuses it, retried every 5 s, and the drain fails when
//!   `--timeout` passes (exit 1, kubectl's messages); without `--timeout` (or with 0) the stand-in
//!   gives up after [`UNBOUNDED_DRAIN_CAP`] instead of waiting forever, and says so.
//! - `delete node NODE`: removes the Node.
//! - `wait --for=condition=Ready node/NODE|nodes --all|-l SEL`: at once, as the stand-ins' `wait`
//!   does for other objects (a condition not met fails with kubectl's timeout message).
//! - `get ... -o jsonpath={.a.b}` on one node, `{.items[*].a.b}` on a list: plain field paths only.

use std::time::{Duration, Instant};

use kube_standins::cluster::{self, Cluster, Event};
use kube_standins::{die, store, unsupported};
use serde_json::{Value, json};

use super::Cli;

/// How long a drain without `--timeout` tries while evictions are refused.
pub(crate) const UNBOUNDED_DRAIN_CAP: Duration = Duration::from_secs(30);

const BUDGET_REFUSAL: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

pub(crate) fn run(cli: &Cli, verb: &str, kubeconfig: &str) {
    let server = kube_standins::kubeconfig_server(kubeconfig).unwrap_or_default();
    let Some(c) = cluster::hash_of_kubeconfig(kubeconfig).and_then(|h| Cluster::find(&h)) else {
        die(
            1,
            &format!(
                "The connection to the server {} was refused - did you specify the right host or port?",
                server.trim_start_matches("https://")
            ),
        )
    };
    let rest: Vec<&str> = cli.positional[1..].iter().map(String::as_str).collect();
    match verb {
        "get" => get(cli, &c, &rest),
        "delete" => delete(&c, &rest),
        "wait" => wait(cli, &c, &rest),
        "cordon" | "uncordon" => {
            let node = one_node(verb, &rest);
            if cli.output.is_some() || cli.selector.is_some() {
                unsupported("kubectl", &format!("{verb} with -o or -l"));
            }
            cordon(&c, &node, verb == "cordon");
        }
        "drain" => drain(cli, &c, &one_node(verb, &rest)),
        _ => unsupported("kubectl", verb),
    }
}

fn one_node(verb: &str, rest: &[&str]) -> String {
    match rest {
        [one] => one.strip_prefix("node/").unwrap_or(one).to_owned(),
        [] => die(
            1,
            &format!("error: USAGE: {verb} NODE [flags]\nSee 'kubectl {verb} -h' for help and examples"),
        ),
        _ => unsupported("kubectl", &format!("{verb} of several nodes")),
    }
}

fn not_found(node: &str) -> ! {
    die(1, &format!("Error from server (NotFound): nodes \"{node}\" not found"))
}

/// The node names of `get`/`delete`'s arguments: `nodes`, `node NAME`, `nodes/NAME`.
fn names(rest: &[&str]) -> Option<String> {
    match rest {
        [one] => one.split_once('/').map(|(_, n)| n.to_owned()),
        [_, name] => Some((*name).to_owned()),
        _ => unsupported("kubectl", "several node names"),
    }
}

fn get(cli: &Cli, c: &Cluster, rest: &[&str]) {
    let state = c.state();
    let name = names(rest);
    let mut found: Vec<Value> = state["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| name.as_deref().is_none_or(|x| n["metadata"]["name"] == x))
        .filter(|n| cli.selector.as_deref().is_none_or(|s| store::matches(n, s)))
        .cloned()
        .collect();
    found.sort_by(|a, b| store::name(a).cmp(store::name(b)));
    if let Some(n) = &name
        && found.is_empty()
    {
        not_found(n);
    }
    let value = match (&name, found.first()) {
        (Some(_), Some(one)) => one.clone(),
        _ => json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": found}),
    };
    match cli.output.as_deref() {
        Some("json") => println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default()),
        Some("yaml") => print!("{}", serde_yaml_ng::to_string(&value).unwrap_or_default()),
        Some("name") => found.iter().for_each(|n| println!("node/{}", store::name(n))),
        Some(o) if o.starts_with("jsonpath=") => print!("{}", jsonpath(&value, &o["jsonpath=".len()..])),
        Some(other) => unsupported("kubectl", &format!("get nodes -o {other}")),
        None if found.is_empty() => eprintln!("No resources found"),
        None => print!("{}", table(&found, kube_standins::now())),
    }
}

/// The plain field paths of kubectl's JSONPath: `{.a.b}` and `{.items[*].a.b}` (values joined by
/// spaces, strings bare, others as JSON); anything else is not supported.
pub(crate) fn jsonpath(value: &Value, template: &str) -> String {
    let template = template.trim_matches('\'');
    let Some(path) = template.strip_prefix("{.").and_then(|p| p.strip_suffix('}')) else {
        unsupported("kubectl", &format!("-o jsonpath={template}"));
    };
    let simple = |p: &str| {
        !p.is_empty()
            && p.split('.').all(|k| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
    };
    let field = |v: &Value, p: &str| -> String {
        match p.split('.').fold(v, |v, k| &v[k]) {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    if let Some(rest) = path.strip_prefix("items[*].")
        && simple(rest)
    {
        let all: Vec<String> =
            value["items"].as_array().into_iter().flatten().map(|i| field(i, rest)).collect();
        return all.join(" ");
    }
    if !simple(path) {
        unsupported("kubectl", &format!("-o jsonpath={template}"));
    }
    field(value, path)
}

fn wait(cli: &Cli, c: &Cluster, rest: &[&str]) {
    let Some(condition) = cli.wait_for.as_deref().and_then(|f| f.strip_prefix("condition=")) else {
        unsupported("kubectl", "wait without --for=condition=NAME");
    };
    let (condition, wanted) = condition.split_once('=').unwrap_or((condition, "True"));
    let state = c.state();
    let name = names(rest);
    if name.is_none() && cli.selector.is_none() && !cli.all {
        die(1, "error: resource(s) were provided, but no name was specified");
    }
    let found: Vec<&Value> = state["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| name.as_deref().is_none_or(|x| n["metadata"]["name"] == x))
        .filter(|n| cli.selector.as_deref().is_none_or(|s| store::matches(n, s)))
        .collect();
    if found.is_empty() {
        match name {
            Some(n) => not_found(&n),
            None => die(1, "error: no matching resources found"),
        }
    }
    let mut failed = false;
    for n in found {
        let met = n["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|x| {
                x["type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(condition)) && x["status"] == wanted
            })
        });
        if met {
            println!("node/{} condition met", store::name(n));
        } else {
            eprintln!("error: timed out waiting for the condition on nodes/{}", store::name(n));
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// kubectl's node table.
pub(crate) fn table(nodes: &[Value], now: u64) -> String {
    let mut rows = vec![["NAME", "STATUS", "ROLES", "AGE", "VERSION"].map(str::to_owned)];
    for n in nodes {
        let mut status = if cluster::is_ready(n) { "Ready" } else { "NotReady" }.to_owned();
        if n["spec"]["unschedulable"] == true {
            status.push_str(",SchedulingDisabled");
        }
        let mut roles: Vec<&str> = n["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
            .collect();
        roles.sort_unstable();
        let roles = if roles.is_empty() { "<none>".to_owned() } else { roles.join(",") };
        let created = n["metadata"]["creationTimestamp"].as_str().and_then(parse_rfc3339).unwrap_or(now);
        rows.push([
            store::name(n).to_owned(),
            status,
            roles,
            human_duration(now.saturating_sub(created)),
            n["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap_or_default().to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| if i < 4 { format!("{c:<w$}", w = widths[i] + 3) } else { c.clone() })
            .collect();
        out.push_str(line.concat().trim_end());
        out.push('\n');
    }
    out
}

/// `2026-11-23T22:40:00Z` as seconds since the epoch.
fn parse_rfc3339(text: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// apimachinery's `HumanDuration`, as kubectl's AGE column shows it.
pub(crate) fn human_duration(secs: u64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs.is_multiple_of(60) { format!("{m}m") } else { format!("{m}m{}s", secs % 60) }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m.is_multiple_of(60) { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h.is_multiple_of(24) { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn delete(c: &Cluster, rest: &[&str]) {
    let Some(node) = names(rest) else {
        die(1, "error: resource(s) were provided, but no name was specified");
    };
    let gone = c.update(|state, events| {
        let nodes = state["nodes"].as_array_mut()?;
        let before = nodes.len();
        nodes.retain(|n| n["metadata"]["name"] != node.as_str());
        (nodes.len() < before).then(|| events.push(Event::new("delete", &node)))
    });
    if gone.is_none() {
        not_found(&node);
    }
    println!("node \"{node}\" deleted");
}

/// Cordons or uncordons `node`; whether it changed.
fn set_unschedulable(c: &Cluster, node: &str, cordon: bool) -> bool {
    let changed = c.update(|state, events| {
        let n = cluster::node_mut(state, node)?;
        let was = n["spec"]["unschedulable"] == true;
        if was == cordon {
            return Some(false);
        }
        if cordon {
            n["spec"]["unschedulable"] = json!(true);
        } else if let Some(spec) = n["spec"].as_object_mut() {
            spec.remove("unschedulable");
        }
        events.push(Event::new(if cordon { "cordon" } else { "uncordon" }, node));
        Some(true)
    });
    changed.unwrap_or_else(|| not_found(node))
}

fn cordon(c: &Cluster, node: &str, on: bool) {
    let word = if on { "cordoned" } else { "uncordoned" };
    if set_unschedulable(c, node, on) {
        println!("node/{node} {word}");
    } else {
        println!("node/{node} already {word}");
    }
}

/// Five characters that stay the same for a node (its pods' name suffix).
fn suffix(node: &str, salt: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{salt}/{node}").as_bytes());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest.iter().take(5).map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// A Go duration (`30s`, `1m30s`, `500ms`, `2h`) in milliseconds.
pub(crate) fn parse_duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut total = 0u64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) =
            [("ms", 2), ("h", 1), ("m", 1), ("s", 1)].into_iter().find(|(u, _)| rest.starts_with(u))?;
        total += n * match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            _ => 3_600_000,
        };
        rest = &rest[len..];
    }
    Some(total)
}

/// Go's `Duration.String()` for whole milliseconds (`30s`, `1m0s`, `500ms`).
pub(crate) fn go_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let frac = ms % 1000;
    let s = if frac == 0 {
        format!("{}s", secs % 60)
    } else {
        format!("{}.{}s", secs % 60, format!("{frac:03}").trim_end_matches('0'))
    };
    match (secs / 3600, secs / 60 % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

fn drain(cli: &Cli, c: &Cluster, node: &str) {
    if cli.output.is_some() || cli.selector.is_some() {
        unsupported("kubectl", "drain with -o or -l");
    }
    let timeout = match cli.timeout.as_deref() {
        None => 0,
        Some(t) => parse_duration(t).unwrap_or_else(|| {
            die(
                1,
                &format!(
                    "error: invalid argument \"{t}\" for \"--timeout\" flag: time: invalid duration \"{t}\""
                ),
            )
        }),
    };
    if cluster::node_in(&c.state(), node).is_none() {
        not_found(node);
    }
    c.event(Event::new("drain-start", node));
    cordon(c, node, true);
    let proxy = format!("kube-system/kube-proxy-{}", suffix(node, "kube-proxy"));
    let fail = |reason: String| -> ! {
        c.event(Event::new("drain-end", node).detail(format!("failed: {reason}")));
        eprintln!("error: unable to drain node \"{node}\" due to error: {reason}, continuing command...");
        eprintln!("There are pending nodes to be drained:\n {node}");
        die(1, &format!("error: {reason}"))
    };
    if !cli.ignore_daemonsets {
        fail(format!("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {proxy}"));
    }
    eprintln!("Warning: ignoring DaemonSet-managed Pods: {proxy}");
    let pod = format!("standin-web-{}", suffix(node, "web"));
    println!("evicting pod default/{pod}");
    let started = Instant::now();
    let (limit, capped) = match timeout {
        0 => (UNBOUNDED_DRAIN_CAP, true),
        ms => (Duration::from_millis(ms), false),
    };
    while c.refuses_eviction(node) {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            let shown = if capped {
                format!(
                    "{} (lab stand-in: a drain without --timeout gives up then while evictions are refused)",
                    go_duration(UNBOUNDED_DRAIN_CAP.as_millis() as u64)
                )
            } else {
                go_duration(timeout)
            };
            let reason =
                format!("error when evicting pods/\"{pod}\" -n \"default\": global timeout reached: {shown}");
            eprintln!("There are pending pods in node \"{node}\" when an error occurred: {reason}");
            fail(reason);
        }
        eprintln!(
            "error when evicting pods/\"{pod}\" -n \"default\" (will retry after 5s): {BUDGET_REFUSAL}"
        );
        std::thread::sleep(left.min(Duration::from_secs(5)));
    }
    println!("pod/{pod} evicted");
    c.event(Event::new("drain-end", node).detail("drained"));
    println!("node/{node} drained");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_jsonpaths() {
        let node = json!({"metadata": {"name": "w1"}, "status": {"nodeInfo": {"kubeletVersion": "v1.30.4"}}, "spec": {"unschedulable": true}});
        assert_eq!(jsonpath(&node, "{.status.nodeInfo.kubeletVersion}"), "v1.30.4");
        assert_eq!(jsonpath(&node, "'{.spec.unschedulable}'"), "true");
        assert_eq!(jsonpath(&node, "{.spec.taints}"), "");
        let list = json!({"items": [node, {"metadata": {"name": "w2"}}]});
        assert_eq!(jsonpath(&list, "{.items[*].metadata.name}"), "w1 w2");
    }

    #[test]
    fn durations_read_and_print_like_go() {
        assert_eq!(parse_duration("30s"), Some(30_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("500ms"), Some(500));
        assert_eq!(parse_duration("2h"), Some(7_200_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(go_duration(30_000), "30s");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(90_000), "1m30s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
    }

    #[test]
    fn ages_and_the_table_read_like_kubectls() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(3 * 86_400), "3d");
        assert_eq!(parse_rfc3339("2026-11-23T22:40:00Z"), Some(1_795_473_600));
        let mut cp = json!({"metadata": {"name": "master0", "labels": {"node-role.kubernetes.io/control-plane": ""},
                                         "creationTimestamp": "2026-11-23T22:40:00Z"},
                            "spec": {}, "status": {"nodeInfo": {"kubeletVersion": "v1.30.4"}}});
        cluster::set_ready(&mut cp, true);
        let mut w = json!({"metadata": {"name": "worker1", "labels": {}, "creationTimestamp": "2026-11-23T22:41:00Z"},
                           "spec": {"unschedulable": true}, "status": {"nodeInfo": {"kubeletVersion": "v1.30.4"}}});
        cluster::set_ready(&mut w, true);
        let text = table(&[cp, w], 1_795_473_600 + 300);
        assert_eq!(
            text,
            "NAME      STATUS                     ROLES           AGE   VERSION\n\
             master0   Ready                      control-plane   5m    v1.30.4\n\
             worker1   Ready,SchedulingDisabled   <none>          4m    v1.30.4\n"
        );
    }
}
