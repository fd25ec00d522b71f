//! The runner against the controller itself (`sh -c`, no network): stopping and aborting a run,
//! carried-over tasks, and secrets hidden from events.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contract::local::LocalHost;
use contract::{Exec, ExecOutput, Host, HostError};

use super::*;
use crate::events::{EventBus, Subscriber};
use crate::inventory::Inventory;
use crate::playbook::{LoadOptions, load_source};

/// The controller as a run target (also for the stat cache's tests).
#[derive(Debug)]
pub(super) struct Local(pub(super) LocalHost);

#[async_trait]
impl Host for Local {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
        self.0.exec(exec).await
    }
}

#[async_trait]
impl Target for Local {
    async fn connect(&self) -> Result<(), HostError> {
        Ok(())
    }
}

/// Collects every event, as the subscribers get them.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<Event>>>);

impl Subscriber for Collect {
    fn on_event(&mut self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

fn plan(playbook: &str) -> Plan {
    let inventory = Inventory::parse("all:\n  hosts:\n    h0: {}\n", Path::new("inventory.yml")).unwrap();
    load_source(Path::new("test.rhai"), playbook, &inventory, &LoadOptions::default()).unwrap()
}

fn options() -> RunOptions {
    RunOptions {
        check: false,
        diff: false,
        walker: Walker { forks: 4, per_host: 4, fail_fast: false },
        carried: None,
        journal: None,
        capture_output: false,
        reviewed: None,
    }
}

/// Runs `plan` on the controller; `stopper` gets the stop signals once the run started.
async fn run_local(
    plan: &Plan,
    options: RunOptions,
    stopper: impl FnOnce(Stop) -> tokio::task::JoinHandle<()>,
) -> (RunSummary, Vec<Event>) {
    let collect = Collect::default();
    let (sink, bus) = EventBus::start(vec![Box::new(collect.clone())], Arc::default());
    let targets: HashMap<String, Arc<dyn Target>> =
        HashMap::from([("h0".to_owned(), Arc::new(Local(LocalHost::new("h0"))) as Arc<dyn Target>)]);
    let stop = Stop::default();
    let handle = stopper(stop.clone());
    let summary = run(plan, targets, options, sink, stop).await;
    handle.abort();
    bus.finish();
    let events = collect.0.lock().unwrap().clone();
    (summary, events)
}

fn status(summary: &RunSummary, task: &str) -> (Status, String) {
    let r = summary.reports.iter().find(|r| r.task == task).unwrap();
    (r.status, r.error.clone().unwrap_or_default())
}

/// ```text
/// h0: slow (sleep) ──▶ next
/// ```
const SLOW: &str = r#"
    let h = host("h0");
    h.command("slow", #{ cmd: "sleep 0.5" });
    h.command("next", #{ cmd: "true" });
"#;

#[tokio::test]
async fn a_stop_lets_the_running_task_finish_and_starts_nothing_new() {
    let plan = plan(SLOW);
    let (summary, events) = run_local(&plan, options(), |stop| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            stop.cancel.cancel();
        })
    })
    .await;
    assert!(summary.interrupted);
    assert_eq!(status(&summary, "slow").0, Status::Changed, "it finished");
    assert_eq!(status(&summary, "next"), (Status::Skipped, "not started: the run was stopped".to_owned()));
    assert!(matches!(events.last(), Some(Event::RunFinished { interrupted: true, .. })));
}

#[tokio::test]
async fn an_abort_abandons_the_running_task_at_once() {
    let plan = plan(&SLOW.replace("sleep 0.5", "sleep 30"));
    let started = Instant::now();
    let (summary, events) = run_local(&plan, options(), |stop| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            stop.abort_now();
        })
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(summary.interrupted);
    let (slow, why) = status(&summary, "slow");
    assert_eq!(slow, Status::Failed);
    assert!(why.contains("aborted while running"), "{why}");
    assert_eq!(status(&summary, "next").0, Status::Skipped);
    let finished = events.iter().filter(|e| matches!(e, Event::TaskFinished(_))).count();
    assert_eq!(finished, 2, "each task reported once: {events:?}");
}

#[tokio::test]
async fn carried_tasks_are_reported_done_and_notify_their_handlers() {
    // A resumed run of only the handler, whose notifier changed in run r0.
    let full = plan(
        r#"
        let h = host("h0");
        let c = h.command("config", #{ cmd: "true" });
        c.notify(h.handler("command", "restart", #{ cmd: "true" }));
    "#,
    );
    let config = full.tasks().map(|(_, t)| t).find(|t| t.name == "config").unwrap().id;
    let restart = full.tasks().map(|(_, t)| t).find(|t| t.name == "restart").unwrap().id;
    let resume = full.select_resume(&|t| t.id == restart, &|t| t.id == config);
    let carried = Carried {
        tasks: vec![CarriedTask {
            id: config,
            host: "h0".into(),
            task: "config".into(),
            status: Status::Changed,
            run: "r0".into(),
        }],
        notified: resume.notified,
    };
    let options = RunOptions { carried: Some(Arc::new(carried)), ..options() };
    let (summary, events) = run_local(&resume.plan, options, |_| tokio::spawn(async {})).await;
    assert_eq!(status(&summary, "restart").0, Status::Changed, "the handler ran: {events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::TaskDone { task, run, .. } if task == "config" && run == "r0"))
    );
}

#[tokio::test]
async fn secrets_in_arguments_and_outputs_never_reach_subscribers() {
    // `DB_PASSWORD` is secret by its name; the PEM key in `key`'s stdout by its content.
    let plan = plan(
        r#"
        let h = host("h0");
        let key = h.command("key", #{
            cmd: "printf -- '-----BEGIN PRIVATE KEY-----\\nQUJDRA==\\n-----END PRIVATE KEY-----\\n'",
        });
        h.command("fails", #{
            argv: ["sh", "-c", "echo \"$DB_PASSWORD $0\" >&2; exit 1", key.stdout],
            env: #{ DB_PASSWORD: "run-test-pw-2231" },
        });
    "#,
    );
    let (summary, events) = run_local(&plan, options(), |_| tokio::spawn(async {})).await;
    assert_eq!(status(&summary, "fails").0, Status::Failed);
    let text = serde_json::to_string(&events).unwrap();
    assert!(text.contains("<secret> <secret: private key>"), "{text}");
    assert!(!text.contains("run-test-pw-2231") && !text.contains("QUJDRA"), "{text}");
}

/// `check --diff` of a kubeconfig (a file task on the controller, a path that does not exist
/// yet): the diff event shows the file, with its client key (base64 PEM) and token hidden.
#[tokio::test]
async fn a_kubeconfig_diff_shows_no_client_key_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let key = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUJWeURtbFQ1VjBwR1N1YVZucTBYSzRuRDZpNlhJcVJZVlRPVDdmUQotLS0tLUVORCBFQyBQUklWQVRFIEtFWS0tLS0tCg==";
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n    client-key-data: {key}\n    token: 7f3a9c2e51b84d06a1e2\n"
    );
    let plan = plan(&format!(
        "host(\"h0\").file(\"kubeconfig\", #{{ path: {:?}, content: {:?}, mode: \"0600\" }});",
        path.display().to_string(),
        kubeconfig
    ));
    let (summary, events) =
        run_local(&plan, RunOptions { check: true, diff: true, ..options() }, |_| tokio::spawn(async {}))
            .await;
    assert_eq!(status(&summary, "kubeconfig").0, Status::Changed);
    let diff = events
        .iter()
        .find_map(|e| match e {
            Event::TaskFinished(r) if r.task == "kubeconfig" => r.diff.clone(),
            _ => None,
        })
        .unwrap();
    assert!(diff.contains("+    client-key-data: <secret: private key>\n"), "{diff}");
    assert!(diff.contains("+    token: <secret>\n"), "{diff}");
    assert!(diff.contains("+    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n"), "{diff}");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&key[..40]) && !text.contains("7f3a9c2e51b84d06a1e2"), "{text}");
    assert!(!path.exists(), "a dry-run writes nothing");
}

/// Retries on the controller: a failing command is tried `retries + 1` times and fails naming
/// them; an `until` that never holds names its expression; one that holds on the third try
/// succeeds (a counter file tells the attempts apart).
#[tokio::test]
async fn retries_try_again_and_say_how_often() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("n");
    let playbook = format!(
        r#"
    let h = host("h0");
    h.concurrent();
    h.command("fails", #{{ cmd: "exit 3" }}).retry(#{{ retries: 2, delay: 0 }});
    h.command("never", #{{ cmd: "echo no" }}).retry(#{{ retries: 1, delay: 0, "until": "'yes' in stdout" }});
    h.command("third", #{{ cmd: "echo x >> {p}; [ $(wc -l < {p}) -ge 3 ] && echo yes || echo no" }})
        .retry(#{{ retries: 5, delay: 0, "until": "'yes' in stdout" }});
"#,
        p = counter.display()
    );
    let plan = plan(&playbook);
    let (summary, _) = run_local(&plan, options(), |_| tokio::spawn(async {})).await;
    let (fails, why) = status(&summary, "fails");
    assert_eq!(fails, Status::Failed);
    assert!(why.ends_with("(after 3 attempts)"), "{why}");
    let (never, why) = status(&summary, "never");
    assert_eq!(never, Status::Failed);
    assert!(
        why.ends_with("`until: 'yes' in stdout` did not hold after 2 attempt(s) (after 2 attempts)"),
        "{why}"
    );
    assert_eq!(status(&summary, "third").0, Status::Changed);
    assert_eq!(std::fs::read_to_string(&counter).unwrap().lines().count(), 3, "stopped once it held");
}

/// Outputs are kept for the tasks that read them: `a`'s stdout (read by `b`), nothing of `b`'s
/// or `c`'s, so a command's output no task reads is dropped once its task has finished.
#[tokio::test]
async fn only_outputs_that_some_task_reads_are_kept() {
    let plan = plan(
        r#"
        let h = host("h0");
        let a = h.command("a", #{ cmd: "echo from-a" });
        h.command("b", #{ argv: ["test", a.stdout, "=", "from-a"] });
        h.command("c", #{ cmd: "echo unread" });
    "#,
    );
    let id = |name: &str| plan.tasks().map(|(_, t)| t).find(|t| t.name == name).unwrap().id;
    let read = outputs_read(&plan);
    assert_eq!(read, HashMap::from([(id("a"), std::collections::HashSet::from(["stdout".to_owned()]))]));
    let (summary, _) = run_local(&plan, options(), |_| tokio::spawn(async {})).await;
    assert_eq!(status(&summary, "b").0, Status::Changed, "b still reads a's stdout");
}

/// The controller, except that its facts are made up: hostname `hostname`.
#[derive(Debug)]
struct MadeUpFacts {
    host: LocalHost,
    hostname: &'static str,
}

#[async_trait]
impl Host for MadeUpFacts {
    fn name(&self) -> &str {
        self.host.name()
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
        if exec.command.starts_with("echo '@@hostname'") {
            let stdout = format!("@@hostname\n{}\n@@addr\n[]\n@@route\n[]\n", self.hostname).into_bytes();
            return Ok(ExecOutput { status: Some(0), stdout, stderr: Vec::new() });
        }
        self.host.exec(exec).await
    }
}

#[async_trait]
impl Target for MadeUpFacts {
    async fn connect(&self) -> Result<(), HostError> {
        Ok(())
    }
}

async fn run_with_facts(plan: &Plan, hostname: &'static str) -> RunSummary {
    let (sink, bus) = EventBus::start(Vec::new(), Arc::default());
    let target = MadeUpFacts { host: LocalHost::new("h0"), hostname };
    let targets = HashMap::from([("h0".to_owned(), Arc::new(target) as Arc<dyn Target>)]);
    let summary = run(plan, targets, options(), sink, Stop::default()).await;
    bus.finish();
    summary
}

/// ```text
/// h0: where (prints a path) ──data──▶ write (path and content from its stdout, and a fact)
/// ```
#[tokio::test]
async fn outputs_and_facts_are_filled_into_the_arguments_sealed_with_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.txt");
    let plan = plan(&format!(
        r#"
        let h = host("h0");
        let where = h.command("where", #{{ cmd: "printf %s {p}", read_only: true }});
        h.file("write", #{{ path: where.stdout, content: `at ${{where.stdout}} on ${{h.fact("hostname")}}` }});
    "#,
        p = target.display()
    ));
    let write = plan.tasks().map(|(_, t)| t).find(|t| t.name == "write").unwrap();
    assert!(write.parsed.is_none() && write.sealed.is_some(), "sealed now, built when it runs");
    let summary = run_with_facts(&plan, "web-7").await;
    assert_eq!(status(&summary, "write"), (Status::Changed, String::new()));
    let written = std::fs::read_to_string(&target).unwrap();
    assert_eq!(written, format!("at {} on web-7", target.display()));
}

/// A fact that is a sound host name but no `host:port`, used as a kubeadm endpoint: the task
/// fails before anything runs, naming the argument and the value, with the task's place.
#[tokio::test]
async fn a_filled_in_value_that_does_not_suit_its_argument_fails_the_task_naming_it() {
    let plan = plan(
        r#"
        let h = host("h0");
        h.kubeadm("join", #{
            action: "join",
            endpoint: h.fact("hostname"),
            token: "abcdef.0123456789abcdef",
            ca_cert_hash: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        });
    "#,
    );
    let summary = run_with_facts(&plan, "web-7").await;
    assert_eq!(
        status(&summary, "join"),
        (
            Status::Failed,
            "test.rhai:3:11: h0: join: invalid arguments: argument `endpoint` must be host:port, \
             got the string \"web-7\""
                .to_owned()
        )
    );
}

/// The same, one layer down: the sealed arguments built with the engine's filler give the
/// structured error (a path and a kind), which the runner wraps as [`TaskError::Arguments`].
#[test]
fn building_sealed_arguments_reports_the_argument_and_kind() {
    use contract::error::{ArgsErrorKind, Found};
    let fact = Ref::Fact { host: "h0".into(), path: "hostname".into() };
    let args = serde_json::json!({
        "action": "join",
        "endpoint": fact.marker(),
        "token": "abcdef.0123456789abcdef",
        "ca_cert_hash": format!("sha256:{}", "0".repeat(64)),
    });
    let sealed = modules::registry::find("kubeadm").unwrap().seal(args).unwrap();
    let lookup = |_: &Ref| Some(serde_json::json!("not-an-ip:xx"));
    let error = sealed.build(&mut refs::Filler::new(&lookup)).unwrap_err();
    assert_eq!(error.path, "endpoint");
    assert_eq!(
        error.kind,
        ArgsErrorKind::InvalidValue {
            expected: "host:port".into(),
            found: Found::String("not-an-ip:xx".into())
        }
    );
    let lookup = |_: &Ref| Some(serde_json::json!("10.0.0.1:6443"));
    assert!(sealed.build(&mut refs::Filler::new(&lookup)).is_ok());
}

/// The controller as a run target that forges its facts: its address is `forged`.
#[derive(Debug)]
struct ForgedFacts {
    local: LocalHost,
    forged: &'static str,
}

#[async_trait]
impl Host for ForgedFacts {
    fn name(&self) -> &str {
        self.local.name()
    }

    async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
        if !exec.command.contains("@@hostname") {
            return self.local.exec(exec).await;
        }
        let address = serde_json::to_string(self.forged).unwrap();
        let stdout = format!(
            "@@hostname\nh0\n@@addr\n[{{\"ifname\":\"host0\",\"addr_info\":[{{\"family\":\"inet\",\"local\":{address}}}]}}]\n"
        );
        Ok(ExecOutput { status: Some(0), stdout: stdout.into_bytes(), stderr: Vec::new() })
    }
}

#[async_trait]
impl Target for ForgedFacts {
    async fn connect(&self) -> Result<(), HostError> {
        Ok(())
    }
}

/// Issue 15's injection: a host reports its address as `10.0.0.2:2380` and a systemd directive
/// after a newline. The task that puts the address into a unit fails, naming the host and the
/// fact, and writes nothing; a task reading a sound fact of the same host runs.
#[tokio::test]
async fn a_forged_address_fact_fails_the_task_that_reads_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("etcd.service");
    let name = dir.path().join("name");
    let plan = plan(&format!(
        r#"
    let h = host("h0");
    let ip = h.fact("interfaces.host0.ipv4.0");
    h.file("name", #{{ path: "{name}", content: h.fact("hostname") }});
    h.file("etcd unit", #{{ path: "{unit}", content: `ExecStart=etcd --initial-cluster=h0=https://${{ip}}:2380\n` }});
"#,
        unit = unit.display(),
        name = name.display(),
    ));
    let forged = "10.0.0.2:2380\nExecStartPost=/bin/sh -c 'touch /tmp/pwned'";
    let target = ForgedFacts { local: LocalHost::new("h0"), forged };
    let targets: HashMap<String, Arc<dyn Target>> = HashMap::from([("h0".to_owned(), Arc::new(target) as _)]);
    let (sink, bus) = EventBus::start(Vec::new(), Arc::default());
    let summary = run(&plan, targets, options(), sink, Stop::default()).await;
    bus.finish();
    let (status_of_unit, why) = status(&summary, "etcd unit");
    assert_eq!(status_of_unit, Status::Failed);
    assert!(
        why.ends_with(
            r#"h0: etcd unit: fact "interfaces.host0.ipv4.0" of h0 is not an IPv4 address: the host reported "10.0.0.2:2380\nExecStartPost=/bin/sh -c 'touch /tmp/pwned'""#
        ),
        "{why}"
    );
    assert!(!unit.exists(), "nothing was written");
    assert_eq!(status(&summary, "name").0, Status::Changed);
    assert_eq!(std::fs::read_to_string(&name).unwrap(), "h0");
}

/// Six local hosts, h0..h5, in a rolling change of batches of 3, 2 and 1 at
/// `max_fail_percentage: 40`; the hosts in `failing` fail their `step`.
fn rolling_plan(failing: &[&str]) -> Plan {
    let names: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
    let inventory =
        format!("all:\n  hosts:\n{}", names.iter().map(|n| format!("    {n}: {{}}\n")).collect::<String>());
    let inventory = Inventory::parse(&inventory, Path::new("inventory.yml")).unwrap();
    let playbook = format!(
        r#"
serial(hosts(), #{{ size: [3, 2, 1], max_fail_percentage: 40 }}, |h| {{
    let fail = {failing:?}.contains(h.name);
    h.command("step", #{{ cmd: if fail {{ "exit 3" }} else {{ "true" }} }});
    h.command("after step", #{{ cmd: "true" }});
}});
"#
    );
    load_source(Path::new("test.rhai"), &playbook, &inventory, &LoadOptions::default()).unwrap()
}

/// Runs `plan` with each of its hosts a local target.
async fn run_rolling(plan: &Plan, options: RunOptions) -> (RunSummary, Vec<Event>) {
    let collect = Collect::default();
    let (sink, bus) = EventBus::start(vec![Box::new(collect.clone())], Arc::default());
    let targets: HashMap<String, Arc<dyn Target>> = (0..6)
        .map(|i| format!("h{i}"))
        .map(|n| (n.clone(), Arc::new(Local(LocalHost::new(&n))) as Arc<dyn Target>))
        .collect();
    let summary = run(plan, targets, options, sink, Stop::default()).await;
    bus.finish();
    let events = collect.0.lock().unwrap().clone();
    (summary, events)
}

fn of(summary: &RunSummary, host: &str, task: &str) -> (Status, String) {
    let r = summary.reports.iter().find(|r| r.host == host && r.task == task).unwrap();
    (r.status, r.error.clone().unwrap_or_default())
}

/// ```text
///   batch 1: h0 h1(fails) h2   1 of 3 failed (33%): batch 2 runs
///   batch 2: h3(fails) h4(fails)   2 of 2 failed: batch 3 (h5) is skipped, saying so
/// ```
#[tokio::test]
async fn a_batch_over_max_fail_percentage_skips_the_later_batches_and_says_why() {
    let plan = rolling_plan(&["h1", "h3", "h4"]);
    let (summary, events) = run_rolling(&plan, options()).await;
    assert_eq!(of(&summary, "h0", "after step").0, Status::Changed);
    assert_eq!(of(&summary, "h1", "step").0, Status::Failed);
    let h1 = of(&summary, "h1", "after step");
    assert!(h1.1.starts_with("skipped: depends on h1: step"), "{h1:?}");
    assert_eq!(of(&summary, "h3", "step").0, Status::Failed, "batch 2 ran: 1 of 3 is not more than 40%");
    assert_eq!(of(&summary, "h4", "step").0, Status::Failed);
    let why = "skipped: serial at test.rhai:2:1 stopped after batch 2 of 3: 2 of 2 hosts failed \
               (more than max_fail_percentage 40%)";
    assert_eq!(of(&summary, "h5", "step"), (Status::Skipped, why.to_owned()));
    assert_eq!(of(&summary, "h5", "after step"), (Status::Skipped, why.to_owned()));
    let Some(Event::RunStarted { rolling, .. }) = events.first() else { panic!("{events:?}") };
    assert_eq!(
        rolling,
        &["serial at test.rhai:2:1: batches [h0, h1, h2] [h3, h4] [h5]; later batches stop when more than \
           max_fail_percentage 40% of a batch's hosts fail"]
    );
}

/// A resumed run of a batch counts the batch's hosts done before as succeeded: h1 failing again
/// is 1 of 3 hosts (not 1 of 1), so the later batches run.
#[tokio::test]
async fn a_resumed_batch_counts_its_hosts_done_before() {
    let full = rolling_plan(&["h1"]);
    let resume = full.select_resume(&|t| t.host == "h1", &|_| false);
    let batch = &resume.plan.serials()[0].batches[0];
    assert_eq!(batch.tasks.len(), 2, "only h1's tasks of batch 1 run again");
    let (summary, _) = run_rolling(&resume.plan, options()).await;
    assert_eq!(of(&summary, "h1", "step").0, Status::Failed);
    for host in ["h3", "h4", "h5"] {
        assert_eq!(of(&summary, host, "after step").0, Status::Changed, "{host}");
    }
}

/// A disruption budget over h0..h3, each window a drain run from h5 (concurrent), an upgrade on
/// the host, and an uncordon from h5; drains and uncordons append `down HOST` / `up HOST` to
/// `log`. The hosts in `failing` fail their drain (after logging it).
fn budget_plan(log: &Path, max_down: &str, failing: &[&str], always: bool) -> Plan {
    let names: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
    let inventory =
        format!("all:\n  hosts:\n{}", names.iter().map(|n| format!("    {n}: {{}}\n")).collect::<String>());
    let inventory = Inventory::parse(&inventory, Path::new("inventory.yml")).unwrap();
    let log = log.display();
    let playbook = format!(
        r#"
let m = host("h5");
m.concurrent();
budget([host("h0"), host("h1"), host("h2"), host("h3")], #{{ max_down: {max_down} }}, |h| {{
    let fail = if {failing:?}.contains(h.name) {{ "; exit 3" }} else {{ "" }};
    let drain = m.command(`drain ${{h.name}}`, #{{ cmd: `echo down ${{h.name}} >>{log}${{fail}}` }});
    let upgrade = h.command("upgrade", #{{ cmd: "sleep 0.3" }}).after(drain);
    let uncordon = m.command(`uncordon ${{h.name}}`, #{{ cmd: `echo up ${{h.name}} >>{log}` }}).after(upgrade).after(drain);
    if {always} {{ uncordon.always(); }}
}});
"#
    );
    load_source(Path::new("test.rhai"), &playbook, &inventory, &LoadOptions::default()).unwrap()
}

/// The most hosts down at once in a drain/uncordon log, and the hosts that went down.
fn most_down(log: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut down, mut most, mut hosts) = (std::collections::BTreeSet::new(), 0, Vec::new());
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("down", h)) => {
                down.insert(h.to_owned());
                hosts.push(h.to_owned());
            }
            Some(("up", h)) => {
                down.remove(h);
            }
            _ => panic!("{line}"),
        }
        most = most.max(down.len());
    }
    (most, hosts)
}

#[tokio::test]
async fn a_budget_keeps_at_most_max_down_hosts_down() {
    let dir = tempfile::tempdir().unwrap();
    for (max_down, expected) in [("1", 1), ("\"50%\"", 2)] {
        let log = dir.path().join(format!("log{expected}"));
        let plan = budget_plan(&log, max_down, &[], false);
        let (summary, events) = run_rolling(&plan, options()).await;
        assert!(summary.reports.iter().all(|r| r.status == Status::Changed), "{:?}", summary.reports);
        let (most, hosts) = most_down(&log);
        assert_eq!(most, expected, "max_down {max_down}");
        assert_eq!(hosts.len(), 4);
        let Some(Event::RunStarted { rolling, .. }) = events.first() else { panic!("{events:?}") };
        assert_eq!(
            rolling,
            &[format!(
                "budget at test.rhai:4:1: at most {expected} of [h0, h1, h2, h3] down at once (max_down {})",
                max_down.trim_matches('"')
            )]
        );
    }
}

/// h1's drain fails: its upgrade is skipped, its uncordon (always) runs, its window closes
/// cleanly and h2 and h3 go on, one at a time.
#[tokio::test]
async fn a_failed_drain_is_undone_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let plan = budget_plan(&log, "1", &["h1"], true);
    let (summary, _) = run_rolling(&plan, options()).await;
    assert_eq!(of(&summary, "h5", "drain h1").0, Status::Failed);
    assert!(of(&summary, "h1", "upgrade").1.starts_with("skipped: depends on h5: drain h1"));
    assert_eq!(of(&summary, "h5", "uncordon h1").0, Status::Changed, "the cleanup ran");
    for host in ["h2", "h3"] {
        assert_eq!(of(&summary, host, "upgrade").0, Status::Changed, "{host}");
    }
    assert_eq!(most_down(&log), (1, ["h0", "h1", "h2", "h3"].map(String::from).to_vec()));
}

/// Without the cleanup, h1 stays down: it keeps the budget's only place, h2 and h3 are not
/// started and say why; a resumed run (the drain fixed) does the rest within the budget.
#[tokio::test]
async fn a_host_left_down_holds_the_budget_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let plan = budget_plan(&log, "1", &["h1"], false);
    let (summary, _) = run_rolling(&plan, options()).await;
    assert_eq!(of(&summary, "h0", "upgrade").0, Status::Changed);
    let (status, why) = of(&summary, "h5", "drain h2");
    assert_eq!(status, Status::Skipped);
    assert_eq!(
        why,
        "not started: budget at test.rhai:4:1 allows 1 of 4 hosts down at once, and the window of h1 ended \
         with a failure no `always` task repaired, so that host still counts as down; fix it, then rerun \
         with --resume"
    );
    assert_eq!(of(&summary, "h3", "upgrade").0, Status::Skipped);
    assert_eq!(most_down(&log).1, ["h0", "h1"].map(String::from).to_vec());

    let fixed = budget_plan(&log, "1", &[], false);
    let done: Vec<(String, String)> = summary
        .reports
        .iter()
        .filter(|r| r.status.succeeded())
        .map(|r| (r.host.clone(), r.task.clone()))
        .collect();
    let resume = fixed.select_resume(&|t| !done.contains(&(t.host.clone(), t.name.clone())), &|_| false);
    assert_eq!(resume.plan.budget_windows()[0].1.len(), 3, "h1, h2 and h3 are left");
    assert_eq!(resume.plan.budgets()[0].max_down(), 1);
    let (summary, _) = run_rolling(&resume.plan, options()).await;
    assert!(summary.reports.iter().all(|r| r.status == Status::Changed), "{:?}", summary.reports);
    let (most, hosts) = most_down(&log);
    assert_eq!(most, 1, "the failed drain left h1 marked down; its resumed window brings it up");
    assert_eq!(hosts, ["h0", "h1", "h1", "h2", "h3"].map(String::from).to_vec());
}

/// `when`: a task whose condition is false reports ok and says why, and what comes after it
/// runs; one whose condition holds runs; a condition on a task that did not run is false; an
/// undefined name fails the task. In check mode a read-only source runs and the condition is
/// known; otherwise the task is unknown.
#[tokio::test]
async fn when_runs_a_task_only_if_its_condition_holds() {
    let inventory = Inventory::parse("all:\n  hosts:\n    h0: {}\n", Path::new("inventory.yml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("mark");
    let playbook = format!(
        r#"
let h = host("h0");
let version = h.command("version", #{{ cmd: "echo v1.30.4", read_only: true }});
let upgrade = h.command("upgrade", #{{ cmd: "touch {mark}" }}).when(version, "stdout != 'v1.30.4'");
h.command("after upgrade", #{{ cmd: "true" }}).after(upgrade);
h.command("current", #{{ cmd: "true" }}).when(version, "stdout == 'v1.30.4' and rc == 0");
h.command("chained", #{{ cmd: "true" }}).when(upgrade, "rc == 0");
let changing = h.command("changing", #{{ cmd: "echo x" }});
h.command("on changing", #{{ cmd: "true" }}).when(changing, "stdout == 'x'");
h.command("typo", #{{ cmd: "true" }}).when(version, "stdot == ''");
"#,
        mark = mark.display()
    );
    let plan = load_source(Path::new("test.rhai"), &playbook, &inventory, &LoadOptions::default()).unwrap();
    let (summary, _) = run_local(&plan, options(), |_| tokio::spawn(async {})).await;
    let upgrade = of(&summary, "h0", "upgrade");
    assert_eq!(upgrade.0, Status::Ok);
    let note = summary.reports.iter().find(|r| r.task == "upgrade").unwrap().note.clone().unwrap();
    assert_eq!(note, "not run: `stdout != 'v1.30.4'` is false for h0: version");
    assert!(!mark.exists(), "the upgrade did not run");
    assert_eq!(of(&summary, "h0", "after upgrade").0, Status::Changed, "what comes after it runs");
    assert_eq!(of(&summary, "h0", "current").0, Status::Changed);
    let chained = summary.reports.iter().find(|r| r.task == "chained").unwrap();
    assert_eq!(chained.status, Status::Ok);
    assert_eq!(
        chained.note.as_deref(),
        Some("not run: its condition reads the outputs of h0: upgrade, which did not run")
    );
    let typo = of(&summary, "h0", "typo");
    assert_eq!(typo.0, Status::Failed);
    assert!(typo.1.contains("`when: stdot == ''`") && typo.1.contains("undefined"), "{typo:?}");
    assert_eq!(of(&summary, "h0", "on changing").0, Status::Changed);

    let check = RunOptions { check: true, ..options() };
    let (summary, _) = run_local(&plan, check, |_| tokio::spawn(async {})).await;
    assert_eq!(of(&summary, "h0", "upgrade").0, Status::Ok, "the read-only source ran in check mode");
    assert_eq!(of(&summary, "h0", "current").0, Status::Changed);
    let unknown = summary.reports.iter().find(|r| r.task == "on changing").unwrap();
    assert_eq!(unknown.status, Status::Unknown);
    assert!(
        unknown.changes[0].starts_with("runs only if `stdout == 'x'` holds for the outputs of h0: changing")
    );
}

/// ```text
/// h0 (concurrent): a(30) ──▶ c(5) ──▶ d(1)
///                  b(20) ──▶ c
///                  e(33)
/// ```
/// The critical path is the chain a, c, d (36), not e alone (33) nor through b; the run's
/// `RunFinished` carries it, by task id.
#[tokio::test]
async fn the_critical_chain_is_the_longest_path_and_the_run_reports_it() {
    let plan = plan(
        r#"
        let h = host("h0");
        h.concurrent();
        let a = h.command("a", #{ cmd: "true" });
        let b = h.command("b", #{ cmd: "true" });
        let c = h.command("c", #{ cmd: "true" }).after([a, b]);
        h.command("d", #{ cmd: "true" }).after(c);
        h.command("e", #{ cmd: "true" });
    "#,
    );
    let node = |name: &str| plan.tasks().find(|(_, t)| t.name == name).unwrap().0;
    let ms =
        HashMap::from([(node("a"), 30), (node("b"), 20), (node("c"), 5), (node("d"), 1), (node("e"), 33)]);
    let (length, chain) = plan.critical_chain(|n| ms[&n]);
    assert_eq!((length, chain), (36, vec![node("a"), node("c"), node("d")]));
    assert_eq!(plan.critical_path(|n| ms[&n]), 36);
    // Every task takes no time: ties go to the first task.
    assert_eq!(plan.critical_chain(|_| 0), (0, vec![node("a")]));

    let (_, events) = run_local(&plan, options(), |_| tokio::spawn(async {})).await;
    let Some(Event::RunFinished { critical_path_ms, critical_path, .. }) = events.last() else {
        panic!("{events:?}")
    };
    assert!(!critical_path.is_empty());
    let ids: Vec<_> = critical_path.iter().map(|id| plan.node_of(*id).unwrap()).collect();
    let summed: u64 = ids.iter().map(|n| events_elapsed(&events, plan.task(*n).id)).sum();
    assert_eq!(summed, *critical_path_ms, "the chain's durations add up to its length");
}

fn events_elapsed(events: &[Event], id: crate::ids::TaskId) -> u64 {
    events
        .iter()
        .find_map(|e| match e {
            Event::TaskFinished(r) if r.id == id => Some(r.elapsed_ms),
            _ => None,
        })
        .unwrap_or_default()
}
