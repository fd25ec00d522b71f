//! The controller alone, at scale: benchmark W1 (`playbooks/bench/w1.rhai`, 21 tasks per host)
//! against H simulated hosts that answer instantly from memory (see `host.rs`). Benchmark
//! tooling, not part of the `engine` CLI: `cargo xtask bench --simulated 1000,10000` runs it in
//! release mode and writes docs/benchmarks.md (see there).
//!
//! Everything but the hosts is the real pipeline, wired as `engine run` wires it: the inventory
//! is loaded, the playbook evaluated and sealed into a plan, the journal key made and every
//! task fingerprinted, and the plan run by the scheduler with the stat cache, the modules' plan
//! and apply, the event bus, the journal writer, the log subscriber and the console (its lines
//! and recap written to a file) or the JSON reporter. Each run is measured in-process: wall
//! time, the process's CPU time (user + system, `/proc/self/stat`), the peak RSS so far
//! (`VmHWM`), and the time spent inside the simulated hosts.
//!
//! ```text
//! simbench --hosts N [--runs 2] [--json] [--dir DIR] [--state FILE] [--forks N]
//! ```
//! prints one JSON line per run on stdout, and exits non-zero when a run was not what W1
//! expects (first run: every task changed; later runs: only the 5 commands per host changed)
//! or a host was sent a command it does not know.

mod host;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use engine::events::{EventBus, Status, Subscriber};
use engine::inventory::Inventory;
use engine::journal;
use engine::playbook::{self, LoadOptions};
use engine::redact::Redactor;
use engine::report::{Console, JsonLines, Log};
use engine::run::{self, RunOptions, Target};
use engine::sched::Walker;
use host::{HostStats, SimHost};

/// W1 as the real benchmark runs it.
fn w1_playbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("playbooks").join("bench").join("w1.rhai")
}

/// Tasks per host in W1, and how many of them are `command`s (changed on every run).
const TASKS_PER_HOST: usize = 21;
const COMMANDS_PER_HOST: usize = 5;

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
struct Figures {
    hosts: usize,
    run: usize,
    host_tasks: usize,
    changed: usize,
    ok: usize,
    failed: usize,
    /// Loading the inventory and the playbook, sealing the plan, fingerprints and journal.
    load_s: f64,
    load_cpu_s: f64,
    /// Peak RSS once the plan is sealed, before the run, MiB.
    load_peak_rss_mib: f64,
    /// The scheduler's run until its summary, then the event bus drained (journal, console).
    run_s: f64,
    run_cpu_s: f64,
    wall_s: f64,
    cpu_s: f64,
    /// Time inside the simulated hosts' `exec` (part of `cpu_s`: they run in this process).
    sim_host_s: f64,
    commands: u64,
    unknown_commands: u64,
    /// Controller CPU per host-task: (`cpu_s` - `sim_host_s`) / `host_tasks`, in µs.
    cpu_us_per_host_task: f64,
    /// Peak RSS of the process so far, MiB.
    peak_rss_mib: f64,
}

/// How the runs report: the console (as `engine run`, into a file) or JSON lines (`--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reporter {
    Console,
    Json,
}

/// User + system CPU seconds of this process so far (`/proc/self/stat` fields 14 and 15, in
/// clock ticks of 1/100 s, as Linux reports them to user space).
fn process_cpu_s() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last `)`.
    let after = stat.rsplit_once(')').map(|(_, a)| a).ok_or("/proc/self/stat: no `)`")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick =
        |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).ok_or("/proc/self/stat: no CPU times");
    // After the `)`: field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    Ok((tick(11)? + tick(12)?) as f64 / 100.0)
}

/// `VmHWM` of /proc/self/status, in MiB.
fn peak_rss_mib() -> Result<f64, String> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or("/proc/self/status: no VmHWM")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or("/proc/self/status: VmHWM is not a number")?;
    Ok(kib / 1024.0)
}

/// An inventory of `hosts` hosts named `sim00000`, ... (never connected to: every target is a
/// [`SimHost`]).
fn write_inventory(dir: &Path, hosts: usize) -> Result<PathBuf, String> {
    let mut text = String::from("all:\n  hosts:\n");
    for i in 0..hosts {
        text.push_str(&format!("    sim{i:05}: {{ansible_host: 192.0.2.1}}\n"));
    }
    let path = dir.join("inventory.yml");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The playbook sandbox's limits, raised for large fleets: by default a plan holds at most
/// 100,000 tasks and an evaluation runs at most 10 million Rhai operations, which `engine run`
/// (it has no option for them) refuses W1 beyond 4,761 hosts with. Scaled with H past 1,000
/// hosts, as the defaults were sized for a thousand hosts.
fn limits(hosts: usize) -> playbook::Limits {
    let default = playbook::Limits::default();
    let scale = hosts.div_ceil(1000).max(1);
    playbook::Limits {
        max_tasks: default.max_tasks.max(TASKS_PER_HOST * hosts),
        max_operations: default.max_operations.saturating_mul(scale as u64),
        max_plan_bytes: default.max_plan_bytes.saturating_mul(scale),
        ..default
    }
}

/// An error with every playbook problem in it, as `engine` prints them.
fn render(error: engine::Error) -> String {
    match error {
        engine::Error::Plan(p) => p
            .errors
            .into_iter()
            .map(|e| format!("{:?}", miette::Report::new(e)))
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!("{:?}", miette::Report::new(other)),
    }
}

/// The simulated fleet: one [`SimHost`] per inventory host, kept across runs.
struct Fleet {
    hosts: HashMap<String, Arc<SimHost>>,
    stats: Arc<HostStats>,
}

/// Each host's filesystem, as saved between processes (`--state`).
type Saved = HashMap<String, std::collections::BTreeMap<String, host::Node>>;

impl Fleet {
    /// Fresh hosts, or those of `saved` (hosts it lacks start fresh).
    fn new(inventory: &Inventory, mut saved: Saved) -> Self {
        let stats = Arc::new(HostStats::default());
        let hosts = inventory
            .hosts()
            .iter()
            .map(|h| {
                let host = match saved.remove(&h.name) {
                    Some(fs) => SimHost::with_fs(h.name.clone(), stats.clone(), fs),
                    None => SimHost::new(h.name.clone(), stats.clone()),
                };
                (h.name.clone(), Arc::new(host))
            })
            .collect();
        Self { hosts, stats }
    }

    fn save(&self, path: &Path) -> Result<(), String> {
        let saved: Saved = self.hosts.iter().map(|(name, h)| (name.clone(), h.snapshot())).collect();
        let text = serde_json::to_vec(&saved).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn targets(&self) -> HashMap<String, Arc<dyn Target>> {
        self.hosts.iter().map(|(name, host)| (name.clone(), host.clone() as Arc<dyn Target>)).collect()
    }
}

/// Runs W1 `runs` times against `hosts` simulated hosts, in `dir` (the inventory, the
/// journals in `dir/.engine/runs`, and the console's output `dir/run-N.out`), the way
/// `engine run w1.rhai -i INVENTORY --forks max(64, 4 H)` runs it. Checks each run's counts.
/// With `state`, the hosts' filesystems are read from that file when it exists (their runs
/// then count from 2: W1 was run before) and written to it at the end, so that each run can
/// be a process of its own, as `engine run` is; neither is measured. `forks`: tasks in flight
/// at once (default: max(64, 4 H), as the lab benchmark gives `engine run`).
fn simulate(
    dir: &Path,
    hosts: usize,
    runs: usize,
    reporter: Reporter,
    state: Option<&Path>,
    forks: Option<usize>,
) -> Result<Vec<Figures>, String> {
    let inventory_path = write_inventory(dir, hosts)?;
    let playbook = w1_playbook();
    let runs_dir = dir.join(journal::RUNS_DIR);
    let mut fleet: Option<Fleet> = None;
    let mut saved: Option<Saved> = None;
    if let Some(path) = state.filter(|p| p.exists()) {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        saved = Some(serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    let first = if saved.is_some() { 2 } else { 1 };
    let mut figures = Vec::new();
    for run in first..first + runs {
        let started = Instant::now();
        let cpu0 = process_cpu_s()?;
        let (host0, nanos0, unknown0) = fleet.as_ref().map_or((0, 0, 0), |f| {
            (
                f.stats.commands.load(Ordering::Relaxed),
                f.stats.nanos.load(Ordering::Relaxed),
                f.stats.unknown.load(Ordering::Relaxed),
            )
        });
        // What `engine run` does before any host is touched.
        let redactor = Arc::new(Redactor::default());
        let inventory = Inventory::load_all(std::slice::from_ref(&inventory_path), playbook.parent())
            .map_err(|e| e.to_string())?;
        let options =
            LoadOptions { redactor: redactor.clone(), limits: limits(hosts), ..LoadOptions::default() };
        let plan = playbook::load(&playbook, &inventory, &options).map_err(render)?;
        let key = journal::JournalKey::load_or_create(&runs_dir).map_err(|e| e.to_string())?;
        let fingerprints = journal::fingerprint::fingerprints(&plan, &key);
        let given = journal::Given {
            playbook: Some(&playbook),
            inventories: std::slice::from_ref(&inventory_path),
            extra_vars: Vec::new(),
            limit: None,
            tags: None,
        };
        let header = journal::Header::new(journal::RunInputs::new(&given), None, fingerprints);
        let writer = journal::JournalWriter::create(&runs_dir, &header, &key).map_err(|e| e.to_string())?;
        let journal_path = writer.path().display().to_string();
        let mut subscribers: Vec<Box<dyn Subscriber>> = vec![Box::new(Log), Box::new(writer)];
        let out_path = dir.join(format!("run-{run}.out"));
        let out = std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let out = std::io::BufWriter::new(out);
        match reporter {
            Reporter::Console => {
                subscribers.push(Box::new(Console::new(false, false, false).with_output(out)))
            }
            Reporter::Json => subscribers.push(Box::new(JsonLines::new(out))),
        }
        let fleet = fleet.get_or_insert_with(|| Fleet::new(&inventory, saved.take().unwrap_or_default()));
        let load_s = started.elapsed().as_secs_f64();
        let load_cpu_s = process_cpu_s()? - cpu0;
        let load_peak_rss_mib = peak_rss_mib()?;

        // What `session::run_over_ssh` does, with simulated targets.
        let run_started = Instant::now();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let (sink, bus) = EventBus::start(subscribers, redactor.clone());
        let run_options = RunOptions {
            check: false,
            diff: false,
            walker: Walker { forks: forks.unwrap_or((4 * hosts).max(64)), per_host: 4, fail_fast: false },
            carried: None,
            journal: Some(journal_path),
            capture_output: false,
            reviewed: None,
        };
        let targets = fleet.targets();
        let summary = runtime.block_on(run::run(&plan, targets, run_options, sink, run::Stop::default()));
        bus.finish();
        runtime.shutdown_timeout(Duration::from_secs(2));
        let run_s = run_started.elapsed().as_secs_f64();
        let wall_s = started.elapsed().as_secs_f64();
        let cpu_s = process_cpu_s()? - cpu0;

        let counts = summary.counts();
        let stats = &fleet.stats;
        let commands = stats.commands.load(Ordering::Relaxed) - host0;
        let sim_host_s = (stats.nanos.load(Ordering::Relaxed) - nanos0) as f64 / 1e9;
        let unknown_commands = stats.unknown.load(Ordering::Relaxed) - unknown0;
        let host_tasks = summary.reports.len();
        let f = Figures {
            hosts,
            run,
            host_tasks,
            changed: counts.changed,
            ok: counts.ok,
            failed: counts.failed + counts.unreachable,
            load_s,
            load_cpu_s,
            load_peak_rss_mib,
            run_s,
            run_cpu_s: cpu_s - load_cpu_s,
            wall_s,
            cpu_s,
            sim_host_s,
            commands,
            unknown_commands,
            cpu_us_per_host_task: (cpu_s - sim_host_s).max(0.0) * 1e6 / host_tasks.max(1) as f64,
            peak_rss_mib: peak_rss_mib()?,
        };
        if unknown_commands > 0 {
            let first = stats.first_unknown.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            return Err(format!(
                "run {run}: {unknown_commands} commands the simulated hosts do not know; the first: {}",
                first.unwrap_or_default()
            ));
        }
        let want_changed = if run == 1 { TASKS_PER_HOST * hosts } else { COMMANDS_PER_HOST * hosts };
        if !summary.success() || host_tasks != TASKS_PER_HOST * hosts || f.changed != want_changed {
            let why = summary
                .reports
                .iter()
                .find(|r| !r.status.succeeded())
                .map(|r| {
                    format!(
                        "; first failure: {} on {}: {}",
                        r.task,
                        r.host,
                        r.error.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            return Err(format!(
                "run {run}: {host_tasks} host-tasks, {} changed, {} failed (W1 on {hosts} hosts wants {} host-tasks, \
                 {want_changed} changed, none failed){why}",
                f.changed,
                f.failed,
                TASKS_PER_HOST * hosts
            ));
        }
        // Later runs change only commands: every file and directory was ok.
        if run > 1
            && let Some(r) =
                summary.reports.iter().find(|r| r.status == Status::Changed && r.module != "command")
        {
            return Err(format!("run {run}: {} on {} changed again: {:?}", r.task, r.host, r.changes));
        }
        figures.push(f);
    }
    if let (Some(path), Some(fleet)) = (state, &fleet) {
        fleet.save(path)?;
    }
    Ok(figures)
}

/// What the command line asks for.
struct Args {
    hosts: usize,
    runs: usize,
    reporter: Reporter,
    dir: Option<PathBuf>,
    state: Option<PathBuf>,
    forks: Option<usize>,
}

/// `--hosts N [--runs R] [--json] [--dir DIR] [--state FILE] [--forks N]`.
fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut hosts = None;
    let mut runs = 2;
    let mut reporter = Reporter::Console;
    let mut dir = None;
    let mut state = None;
    let mut forks = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--hosts" => hosts = Some(value("--hosts")?.parse().map_err(|_| "--hosts: not a number")?),
            "--runs" => runs = value("--runs")?.parse().map_err(|_| "--runs: not a number")?,
            "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
            "--state" => state = Some(PathBuf::from(value("--state")?)),
            "--forks" => {
                forks = Some(
                    value("--forks")?
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("--forks: not a positive number")?,
                )
            }
            "--json" => reporter = Reporter::Json,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let hosts = hosts.filter(|&h| (1..=100_000).contains(&h)).ok_or("--hosts N (1 to 100000) is required")?;
    if !(1..=10).contains(&runs) {
        return Err("--runs is 1 to 10".into());
    }
    Ok(Args { hosts, runs, reporter, dir, state, forks })
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_args(&args).and_then(|Args { hosts, runs, reporter, dir, state, forks }| {
        let dir = match dir {
            Some(dir) => dir,
            None => std::env::temp_dir().join(format!("engine-simbench-{}", std::process::id())),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        simulate(&dir, hosts, runs, reporter, state.as_deref(), forks)
    });
    match result {
        Ok(figures) => {
            for f in figures {
                println!("{}", serde_json::to_string(&f).unwrap_or_default());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("simbench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use contract::{Exec, Host};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("engine-simbench-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The bench's own path at H = 20: the first run changes all 21 tasks of every host, the
    /// second only the 5 commands (every file and directory ok), through the console and the
    /// JSON reporter, with a journal each.
    #[test]
    fn w1_on_twenty_simulated_hosts_changes_then_converges() {
        for reporter in [Reporter::Console, Reporter::Json] {
            let dir = scratch(&format!("{reporter:?}"));
            let figures = simulate(&dir, 20, 2, reporter, None, None).unwrap();
            assert_eq!(figures.len(), 2);
            let (first, second) = (&figures[0], &figures[1]);
            assert_eq!((first.host_tasks, first.changed, first.ok, first.failed), (420, 420, 0, 0));
            assert_eq!((second.host_tasks, second.changed, second.ok, second.failed), (420, 100, 320, 0));
            assert!(first.commands >= 420 && second.commands > 0);
            let journals = std::fs::read_dir(dir.join(journal::RUNS_DIR))
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".jsonl"))
                .count();
            assert_eq!(journals, 2, "one journal per run");
            let out = std::fs::read_to_string(dir.join("run-2.out")).unwrap();
            match reporter {
                Reporter::Console => assert!(out.contains("320 ok, 100 changed"), "{out}"),
                Reporter::Json => assert!(out.lines().count() > 420, "{out}"),
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// `--state`: the second run, in a process of its own, finds what the first one wrote.
    #[test]
    fn the_hosts_state_carries_over_to_a_later_process() {
        let dir = scratch("state");
        let state = dir.join("state.json");
        let first = simulate(&dir, 3, 1, Reporter::Console, Some(&state), None).unwrap();
        assert_eq!((first[0].run, first[0].changed), (1, 63));
        let second = simulate(&dir, 3, 1, Reporter::Console, Some(&state), None).unwrap();
        assert_eq!((second[0].run, second[0].changed, second[0].ok), (2, 15, 48));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A command the simulated host does not know is an error, never a silent success.
    #[tokio::test]
    async fn an_unknown_command_is_an_error() {
        let stats = Arc::new(HostStats::default());
        let host = SimHost::new("sim0", stats.clone());
        for command in [
            "uptime",
            "exec sh -c 'echo 1 >/dev/null; rm -rf /'",
            "echo 1 >/dev/null",
            "cat -- /etc/passwd; id",
            "stat /tmp",
        ] {
            let e = host.exec(Exec::new(command)).await.unwrap_err();
            assert!(e.to_string().contains("unknown command"), "{command}: {e}");
        }
        assert_eq!(stats.unknown.load(Ordering::Relaxed), 5);
        assert!(host.exec(Exec::new("exec sh -c 'echo 3 >/dev/null'")).await.unwrap().success());
    }

    /// The file primitives of `contract::remote` against a simulated host behave as on Debian:
    /// a write then a stat gives the content's hash and the mode; a missing parent fails.
    #[tokio::test]
    async fn the_remote_primitives_work_against_a_simulated_host() {
        use contract::remote::{self, Attrs, FileKind};
        let host = SimHost::new("sim0", Arc::new(HostStats::default()));
        let attrs = Attrs { mode: Some(0o640), ..Attrs::default() };
        remote::mkdir(&host, "/tmp/a/b", &Attrs { mode: Some(0o750), ..Attrs::default() }).await.unwrap();
        remote::write_atomic(&host, "/tmp/a/b/it's", b"hello\n", &attrs).await.unwrap();
        let stat = remote::stat(&host, "/tmp/a/b/it's").await.unwrap().unwrap();
        assert_eq!((stat.kind, stat.mode), (FileKind::File, 0o640));
        assert_eq!(stat.sha256, Some(contract::diff::sha256_hex(b"hello\n")));
        assert_eq!(remote::read(&host, "/tmp/a/b/it's").await.unwrap(), b"hello\n");
        let paths = ["/tmp/a".to_owned(), "/tmp/a/b/it's".to_owned(), "/nope".to_owned()];
        let probes = remote::stat_many(&host, &paths).await.unwrap();
        assert_eq!(probes.len(), 3);
        assert_eq!(probes[0].stat.as_ref().unwrap().mode, 0o755, "a parent made by mkdir -p");
        assert_eq!(probes[1].stat, Some(stat));
        assert_eq!(probes[2].stat, None);
        assert!(remote::write_atomic(&host, "/nope/x", b"x", &attrs).await.is_err());
        remote::set_attrs(&host, "/tmp/a", &Attrs { mode: Some(0o700), ..Attrs::default() }).await.unwrap();
        assert_eq!(remote::stat(&host, "/tmp/a").await.unwrap().unwrap().mode, 0o700);
        remote::remove(&host, "/tmp/a").await.unwrap();
        assert_eq!(remote::stat(&host, "/tmp/a/b/it's").await.unwrap(), None);
    }
}
