//! `cargo xtask bench`: the engine against Ansible, pyinfra and a plain-ssh floor on the lab.
//!
//! W1 "fanout": 21 tasks per host (playbooks/bench/w1.rhai, xtask/bench/w1.yml,
//! xtask/bench/deploy.py, and the same commands over OpenSSH ControlMaster connections), on
//! `--topology H` labs, tools alternating within each repetition, first run on clean hosts and a
//! second run that must change nothing but the commands. Every run is checked on the hosts;
//! a run that did not do the work gets no time. W2 "guide": playbooks/ha.rhai on a fresh bare
//! `ha` lab (9 hosts like fresh cloud images, and the package mirror: the playbook installs
//! everything, containerd, kubeadm, etcd and keepalived included), first run and three re-runs, with
//! the engine's critical path. Results go to `target/bench/`
//! (markdown + JSON) and `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde::Serialize;

use crate::paths::{HostState, Paths, State};
use crate::topology::Topology;
use crate::{cmd, lab, ssh};

/// Pinned peer tools, installed from PyPI into `target/bench/venv`.
const ANSIBLE_CORE: &str = "ansible-core==2.19.14";
const PYINFRA: &str = "pyinfra==3.10.0";
/// Mitogen for Ansible (its `mitogen_linear` strategy), what Ansible users pick for speed.
const MITOGEN: &str = "mitogen==0.3.54";
/// One tool run may take at most this long before it is killed and marked failed.
const RUN_LIMIT: Duration = Duration::from_secs(900);
/// Files, commands and directories per host in W1 (plus the top directory: 21 tasks).
const FILES: usize = 10;
const COMMANDS: usize = 5;
const DIRS: usize = 5;
const TASKS_PER_HOST: usize = 1 + FILES + COMMANDS + DIRS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Tool {
    Engine,
    /// The engine with `--transport exec` (a channel, an sshd session and a login shell per
    /// command) instead of its default, one host session per connection.
    EngineExec,
    Ansible,
    /// Ansible with Mitogen's `mitogen_linear` strategy, the same ansible.cfg otherwise.
    AnsibleMitogen,
    Pyinfra,
    Floor,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::Engine => "engine",
            Self::EngineExec => "engine-exec",
            Self::Ansible => "ansible",
            Self::AnsibleMitogen => "ansible-mitogen",
            Self::Pyinfra => "pyinfra",
            Self::Floor => "floor",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) hosts: Vec<u16>,
    pub(crate) tools: Vec<Tool>,
    pub(crate) reps: u32,
    pub(crate) w2: bool,
}

/// One timed run of one tool.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    tool: Tool,
    hosts: u16,
    /// "first" or "second".
    phase: &'static str,
    rep: u32,
    wall_s: f64,
    ok: bool,
    why: String,
    /// Busy CPU seconds of the whole machine during the run (/proc/stat).
    machine_busy_s: f64,
    /// The engine's own user+system CPU seconds and peak RSS (from /usr/bin/time).
    engine_cpu_s: Option<f64>,
    engine_rss_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct W2 {
    phase: &'static str,
    wall_s: f64,
    critical_path_s: Option<f64>,
    ratio: Option<f64>,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    date: String,
    command: String,
    versions: Vec<(String, String)>,
    samples: Vec<Sample>,
    w2: Vec<W2>,
}

struct Env {
    root: PathBuf,
    out: PathBuf,
    engine: PathBuf,
    venv_bin: PathBuf,
}

pub(crate) fn run(paths: &Paths, opts: &Options, command_line: &str) -> Result<()> {
    lab::require_root()?;
    ensure_time()?;
    let root = paths.workspace_root().to_path_buf();
    let out = root.join("target").join("bench");
    fs::create_dir_all(out.join("logs"))?;
    let needs_python =
        opts.tools.iter().any(|t| matches!(t, Tool::Ansible | Tool::AnsibleMitogen | Tool::Pyinfra));
    let venv_bin = if needs_python { ensure_venv(&out)? } else { out.join("venv").join("bin") };
    println!("bench: building the engine in release mode (cargo build --release -p engine)");
    let engine = build_engine(&root)?;
    let env = Env { root, out, engine, venv_bin };
    let versions = versions(&env, opts);
    let mut samples = Vec::new();
    for &h in &opts.hosts {
        println!("\nbench: W1 on {h} hosts");
        lab::up(paths, Topology::Nodes(h), None)?;
        samples.extend(w1(paths, &env, h, opts)?);
        // Intermediate results, in case a later size fails.
        write_outputs(&env, opts, command_line, &versions, &samples, &[])?;
    }
    let mut w2 = Vec::new();
    if opts.w2 {
        println!("\nbench: W2 (playbooks/ha.rhai) on a fresh bare ha lab");
        lab::down(paths)?;
        lab::up(paths, Topology::Ha, Some(&[crate::bare::DEFAULT_DEBIAN]))?;
        w2 = w2_runs(paths, &env, opts)?;
    }
    let table = write_outputs(&env, opts, command_line, &versions, &samples, &w2)?;
    println!("\n{table}");
    Ok(())
}

/// `/usr/bin/time` (Debian package `time`), installed when missing.
fn ensure_time() -> Result<()> {
    if Path::new("/usr/bin/time").is_file() {
        return Ok(());
    }
    eprintln!("bench: installing the `time` package");
    cmd::run_loud(Command::new("apt-get").args(["update", "-q"]))?;
    cmd::run_loud(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "time"]),
    )
}

/// The venv with the pinned ansible-core and pyinfra; reused when it already has them. The
/// test command uses its `ansible-inventory` as the reference for `engine inventory`.
pub(crate) fn ensure_venv(out: &Path) -> Result<PathBuf> {
    let venv = out.join("venv");
    let bin = venv.join("bin");
    let pinned = |pkg: &str| {
        let (name, version) = pkg.split_once("==").unwrap_or((pkg, ""));
        cmd::output(Command::new(bin.join("pip")).args(["show", name]))
            .is_ok_and(|s| s.lines().any(|l| l.trim() == format!("Version: {version}")))
    };
    if pinned(ANSIBLE_CORE) && pinned(PYINFRA) && pinned(MITOGEN) {
        return Ok(bin);
    }
    println!("bench: installing {ANSIBLE_CORE}, {PYINFRA} and {MITOGEN} into {}", venv.display());
    cmd::run_loud(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    cmd::run_loud(Command::new(bin.join("pip")).args(["install", "-q", ANSIBLE_CORE, PYINFRA, MITOGEN]))?;
    Ok(bin)
}

fn build_engine(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run_loud(Command::new(cargo).current_dir(root).args(["build", "--release", "-q", "-p", "engine"]))?;
    Ok(root.join("target").join("release").join("engine"))
}

fn versions(env: &Env, opts: &Options) -> Vec<(String, String)> {
    let first_line =
        |c: &mut Command| cmd::output(c).map(|s| s.lines().next().unwrap_or("").trim().to_owned());
    let mut v = vec![(
        "engine".to_owned(),
        first_line(Command::new(&env.engine).arg("--version")).unwrap_or_default() + " (release build)",
    )];
    if opts.tools.contains(&Tool::Ansible) || opts.tools.contains(&Tool::AnsibleMitogen) {
        let s = first_line(Command::new(env.venv_bin.join("ansible-playbook")).arg("--version"));
        v.push(("ansible".to_owned(), s.unwrap_or_default()));
    }
    if opts.tools.contains(&Tool::AnsibleMitogen) {
        let s = cmd::output(Command::new(env.venv_bin.join("pip")).args(["show", "mitogen"])).ok().and_then(
            |s| s.lines().find_map(|l| l.strip_prefix("Version: ").map(|v| format!("mitogen {v}"))),
        );
        v.push(("ansible-mitogen".to_owned(), s.unwrap_or_default()));
    }
    if opts.tools.contains(&Tool::Pyinfra) {
        let s = first_line(Command::new(env.venv_bin.join("pyinfra")).arg("--version"));
        v.push(("pyinfra".to_owned(), s.unwrap_or_default()));
    }
    if let Ok(out) = Command::new("ssh").arg("-V").output() {
        v.push(("floor".to_owned(), String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    let py = first_line(Command::new("python3").arg("--version")).unwrap_or_default();
    v.push(("python".to_owned(), py));
    v
}

/// Busy and total jiffies of the whole machine (first line of /proc/stat).
fn cpu_busy_jiffies() -> u64 {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let nums: Vec<u64> =
        text.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = nums.iter().take(8).sum();
    let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle)
}

/// Waits for `child` (bounded by `limit`, killing it then). True if it exited with 0.
fn wait_bounded(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    for _ in 0..10_000_000u64 {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) => {}
            Err(_) => return false,
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
    false
}

pub(crate) struct Timed {
    pub(crate) wall_s: f64,
    pub(crate) success: bool,
    pub(crate) busy_s: f64,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `c` with stdout and stderr to log files, timing it.
pub(crate) fn timed(c: &mut Command, log: &Path) -> Result<Timed> {
    let out_path = log.with_extension("out");
    let err_path = log.with_extension("err");
    c.stdin(Stdio::null()).stdout(File::create(&out_path)?).stderr(File::create(&err_path)?);
    let busy0 = cpu_busy_jiffies();
    let started = Instant::now();
    let mut child = c.spawn().with_context(|| format!("cannot start `{}`", cmd::display(c)))?;
    let success = wait_bounded(&mut child, RUN_LIMIT);
    let wall_s = started.elapsed().as_secs_f64();
    let busy_s = cpu_busy_jiffies().saturating_sub(busy0) as f64 / 100.0;
    Ok(Timed {
        wall_s,
        success,
        busy_s,
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// Runs `script` with `sh -c` on every host at once over the lab's ssh; the outputs, in order.
fn on_all(paths: &Paths, hosts: &[HostState], script: &str) -> Vec<Option<String>> {
    thread::scope(|s| {
        let handles: Vec<_> = hosts
            .chunks(hosts.len().div_ceil(32).max(1))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|h| ssh::capture(paths, h.addr, &["sh", "-c", script], Duration::from_secs(60)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

fn expected_content(host: &str, i: usize) -> String {
    format!("w1 file {i} on host {host}")
}

/// Checks the W1 result on every host: all files with the right content, dirs 0750, counts.
fn check_w1(paths: &Paths, hosts: &[HostState]) -> Result<(), String> {
    let script = "cd /tmp/w1 && for i in 0 1 2 3 4 5 6 7 8 9; do printf 'f%s:' $i; cat f$i.txt; done; \
                  for i in 0 1 2 3 4; do stat -c 'd%n:%a' d$i; done; \
                  echo files:$(find . -maxdepth 1 -type f | wc -l) dirs:$(find . -mindepth 1 -maxdepth 1 -type d | wc -l)";
    let outs = on_all(paths, hosts, script);
    let mut bad = Vec::new();
    for (h, out) in hosts.iter().zip(outs) {
        let Some(out) = out else {
            bad.push(format!("{}: check failed (no /tmp/w1?)", h.name));
            continue;
        };
        let mut want: Vec<String> =
            (0..FILES).map(|i| format!("f{i}:{}", expected_content(&h.name, i))).collect();
        want.extend((0..DIRS).map(|i| format!("dd{i}:750")));
        want.push(format!("files:{FILES} dirs:{DIRS}"));
        let got: Vec<String> = out.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect();
        if got != want {
            bad.push(format!("{}: got {:?}", h.name, got));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        let n = bad.len();
        bad.truncate(3);
        Err(format!("{n} hosts wrong: {}", bad.join("; ")))
    }
}

fn clean_w1(paths: &Paths, hosts: &[HostState]) -> Result<()> {
    let outs = on_all(paths, hosts, "rm -rf /tmp/w1 && echo gone");
    if outs.iter().any(|o| o.as_deref().map(str::trim) != Some("gone")) {
        bail!("could not remove /tmp/w1 on every host");
    }
    Ok(())
}

/// A ControlMaster socket per host for the floor, under target/bench/cm.
fn control_path(env: &Env, host: &str) -> PathBuf {
    env.out.join("cm").join(host)
}

fn open_masters(paths: &Paths, env: &Env, hosts: &[HostState]) -> Result<()> {
    fs::create_dir_all(env.out.join("cm"))?;
    let results: Vec<bool> = thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| {
                s.spawn(move || {
                    let mut c = ssh::command(paths, "root", h.addr, 10, &[]);
                    c.arg("-o")
                        .arg("ControlMaster=yes")
                        .arg("-o")
                        .arg(format!("ControlPath={}", control_path(env, &h.name).display()))
                        .args(["-o", "ControlPersist=900", "-N", "-f"]);
                    cmd::succeeds(&mut c)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(false)).collect()
    });
    if results.iter().any(|ok| !ok) {
        bail!("could not open every ssh ControlMaster");
    }
    Ok(())
}

fn close_masters(paths: &Paths, env: &Env, hosts: &[HostState]) {
    for h in hosts {
        let mut c = ssh::command(paths, "root", h.addr, 5, &[]);
        c.arg("-o").arg(format!("ControlPath={}", control_path(env, &h.name).display())).args(["-O", "exit"]);
        cmd::succeeds(&mut c);
    }
}

/// The floor: the 21 commands of W1 per host as separate ssh invocations over the open
/// master, hosts in parallel. Returns wall seconds, success, machine busy seconds.
fn floor_run(paths: &Paths, env: &Env, hosts: &[HostState]) -> (f64, bool, f64) {
    let busy0 = cpu_busy_jiffies();
    let started = Instant::now();
    let ok: Vec<bool> = thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| {
                s.spawn(move || {
                    let mut cmds = vec!["mkdir -p -m 0755 /tmp/w1".to_owned()];
                    cmds.extend((0..FILES).map(|i| {
                        format!("printf '%s\\n' '{}' >/tmp/w1/f{i}.txt", expected_content(&h.name, i))
                    }));
                    cmds.extend((0..COMMANDS).map(|i| format!("echo {i} >/dev/null")));
                    cmds.extend((0..DIRS).map(|i| format!("mkdir -p -m 0750 /tmp/w1/d{i}")));
                    cmds.iter().all(|line| {
                        let mut c = ssh::command(paths, "root", h.addr, 10, &[]);
                        c.arg("-o")
                            .arg(format!("ControlPath={}", control_path(env, &h.name).display()))
                            .args(["-o", "ControlMaster=no", "--", line]);
                        cmd::succeeds(&mut c)
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(false)).collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let busy = cpu_busy_jiffies().saturating_sub(busy0) as f64 / 100.0;
    (wall, ok.iter().all(|x| *x), busy)
}

/// `%e %U %S %M` from /usr/bin/time: (cpu seconds, peak RSS MB).
pub(crate) fn parse_time(text: &str) -> Option<(f64, f64)> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let f: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    (f.len() == 4).then(|| (f[1] + f[2], f[3] / 1024.0))
}

/// The recap's `N changed` count from the engine's output.
fn engine_changed(stdout: &str) -> Option<usize> {
    let line = stdout.lines().find(|l| l.contains(" tasks on ") && l.contains(" ok, "))?;
    let after = line.split(": ").nth(1)?;
    after.split(", ").find(|p| p.ends_with(" changed")).and_then(|p| p.split(' ').next()?.parse().ok())
}

/// Sum of `changed=N` over Ansible's PLAY RECAP.
fn ansible_changed(stdout: &str) -> usize {
    stdout
        .lines()
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("changed=")?.parse::<usize>().ok()))
        .sum()
}

fn pyinfra_inventory(env: &Env, paths: &Paths, hosts: &[HostState]) -> Result<PathBuf> {
    let mut text = String::from("# Written by `cargo xtask bench` from the lab; do not edit.\nhosts = [\n");
    for h in hosts {
        let _ = writeln!(
            text,
            "    (\"{}\", {{\"ssh_hostname\": \"{}\", \"ssh_user\": \"root\", \"ssh_key\": \"{}\", \
             \"ssh_known_hosts_file\": \"{}\", \"ssh_strict_host_key_checking\": \"yes\"}}),",
            h.name,
            h.addr,
            paths.key().display(),
            paths.known_hosts().display()
        );
    }
    text.push_str("]\n");
    let file = env.out.join("pyinfra_inventory.py");
    fs::write(&file, text)?;
    Ok(file)
}

/// Where the venv's Mitogen keeps its Ansible strategy plugins (`ansible_mitogen/plugins/strategy`).
fn mitogen_strategies(env: &Env) -> Result<PathBuf> {
    let dir = cmd::output(
        Command::new(env.venv_bin.join("python"))
            .args(["-c", "import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))"]),
    )?;
    let dir = PathBuf::from(dir.trim()).join("plugins").join("strategy");
    if !dir.join("mitogen_linear.py").is_file() {
        bail!("no mitogen_linear strategy in {}", dir.display());
    }
    Ok(dir)
}

fn w1(paths: &Paths, env: &Env, h: u16, opts: &Options) -> Result<Vec<Sample>> {
    let state = State::require(paths)?;
    let hosts = state.hosts.clone();
    let n = hosts.len();
    let inv = paths.inventory();
    let pyinv = pyinfra_inventory(env, paths, &hosts)?;
    if opts.tools.contains(&Tool::Floor) {
        open_masters(paths, env, &hosts)?;
    }
    let mut samples = Vec::new();
    for rep in 1..=opts.reps {
        for &tool in &opts.tools {
            clean_w1(paths, &hosts)?;
            for phase in ["first", "second"] {
                let log = env.out.join("logs").join(format!("w1-{}-{h}-{rep}-{phase}", tool.name()));
                let mut sample = Sample {
                    tool,
                    hosts: h,
                    phase,
                    rep,
                    wall_s: 0.0,
                    ok: false,
                    why: String::new(),
                    machine_busy_s: 0.0,
                    engine_cpu_s: None,
                    engine_rss_mb: None,
                };
                let mut why = Vec::new();
                match tool {
                    Tool::Floor => {
                        let (wall, ok, busy) = floor_run(paths, env, &hosts);
                        sample.wall_s = wall;
                        sample.machine_busy_s = busy;
                        if !ok {
                            why.push("an ssh command failed".to_owned());
                        }
                    }
                    Tool::Engine | Tool::EngineExec => {
                        let tfile = log.with_extension("time");
                        let mut c = Command::new("/usr/bin/time");
                        c.current_dir(&env.root)
                            .args(["-f", "%e %U %S %M", "-o"])
                            .arg(&tfile)
                            .arg(&env.engine)
                            .args(["run", "playbooks/bench/w1.rhai", "-i"])
                            .arg(&inv)
                            .args(["--forks", &(n * 4).max(64).to_string()]);
                        if tool == Tool::EngineExec {
                            c.args(["--transport", "exec"]);
                        }
                        let t = timed(&mut c, &log)?;
                        sample.wall_s = t.wall_s;
                        sample.machine_busy_s = t.busy_s;
                        if let Some((cpu, rss)) = parse_time(&fs::read_to_string(&tfile).unwrap_or_default())
                        {
                            sample.engine_cpu_s = Some(cpu);
                            sample.engine_rss_mb = Some(rss);
                        }
                        if !t.success {
                            why.push(format!("exit failure: {}", cmd::tail(&t.stderr, 3)));
                        }
                        let want = if phase == "first" { n * TASKS_PER_HOST } else { n * COMMANDS };
                        match engine_changed(&t.stdout) {
                            Some(c) if c == want => {}
                            other => why.push(format!("changed {other:?}, expected {want}")),
                        }
                    }
                    Tool::Ansible | Tool::AnsibleMitogen => {
                        let mut c = Command::new(env.venv_bin.join("ansible-playbook"));
                        c.current_dir(env.root.join("xtask").join("bench"))
                            .env("ANSIBLE_CONFIG", env.root.join("xtask/bench/ansible.cfg"))
                            .env("LC_ALL", "C.UTF-8")
                            .arg("-i")
                            .arg(&inv)
                            .args(["-f", &n.to_string(), "w1.yml"]);
                        if tool == Tool::AnsibleMitogen {
                            c.env("ANSIBLE_STRATEGY_PLUGINS", mitogen_strategies(env)?)
                                .env("ANSIBLE_STRATEGY", "mitogen_linear");
                        }
                        let t = timed(&mut c, &log)?;
                        sample.wall_s = t.wall_s;
                        sample.machine_busy_s = t.busy_s;
                        if !t.success {
                            why.push(format!("exit failure: {}", cmd::tail(&t.stdout, 3)));
                        }
                        // A loop task counts once per host: first run 4 changed, second 1 (commands).
                        let want = if phase == "first" { n * 4 } else { n };
                        let got = ansible_changed(&t.stdout);
                        if got != want {
                            why.push(format!("changed={got}, expected {want}"));
                        }
                    }
                    Tool::Pyinfra => {
                        let mut c = Command::new(env.venv_bin.join("pyinfra"));
                        c.current_dir(&env.root)
                            .env("LC_ALL", "C.UTF-8")
                            .arg(&pyinv)
                            .arg("xtask/bench/deploy.py")
                            .args(["--parallel", &n.to_string(), "-y"]);
                        let t = timed(&mut c, &log)?;
                        sample.wall_s = t.wall_s;
                        sample.machine_busy_s = t.busy_s;
                        if !t.success {
                            why.push(format!("exit failure: {}", cmd::tail(&t.stderr, 3)));
                        }
                    }
                }
                if let Err(e) = check_w1(paths, &hosts) {
                    why.push(e);
                }
                sample.ok = why.is_empty();
                sample.why = why.join("; ");
                println!(
                    "bench: W1 H={h} rep {rep} {:8} {phase:6} {:7.2} s{}",
                    tool.name(),
                    sample.wall_s,
                    if sample.ok { String::new() } else { format!("  FAILED: {}", sample.why) }
                );
                samples.push(sample);
            }
        }
    }
    if opts.tools.contains(&Tool::Floor) {
        close_masters(paths, env, &hosts);
    }
    Ok(samples)
}

/// `critical path 1.23s (...; wall / critical path = 1.05)` from the engine's recap.
fn parse_critical(stdout: &str) -> Option<(f64, f64)> {
    let line = stdout.lines().find(|l| l.trim_start().starts_with("critical path "))?;
    let cp = line.trim_start().strip_prefix("critical path ")?.split('s').next()?.parse().ok()?;
    let ratio = line.rsplit("= ").next()?.trim_end_matches(')').trim().parse().ok()?;
    Some((cp, ratio))
}

fn w2_runs(paths: &Paths, env: &Env, opts: &Options) -> Result<Vec<W2>> {
    let inv = paths.inventory();
    let mut out = Vec::new();
    // Three re-runs per transport: one is too few to tell a re-run's time from the machine's noise.
    let mut phases = vec![("first", "session")];
    phases.extend(["re-run 1", "re-run 2", "re-run 3"].map(|p| (p, "session")));
    if opts.tools.contains(&Tool::EngineExec) {
        phases.extend(["re-run 1, exec", "re-run 2, exec", "re-run 3, exec"].map(|p| (p, "exec")));
    }
    for (phase, transport) in phases {
        let log = env.out.join("logs").join(format!("w2-{}", phase.replace(", ", "-").replace(' ', "-")));
        let mut c = Command::new(&env.engine);
        c.current_dir(&env.root).args(["run", "playbooks/ha.rhai", "--transport", transport, "-i"]).arg(&inv);
        let t = timed(&mut c, &log)?;
        let cp = parse_critical(&t.stdout);
        println!(
            "bench: W2 {phase:6} {:7.2} s wall, critical path {}",
            t.wall_s,
            cp.map_or("?".to_owned(), |(c, r)| format!("{c:.2} s (wall / critical = {r:.2})"))
        );
        out.push(W2 {
            phase,
            wall_s: t.wall_s,
            critical_path_s: cp.map(|x| x.0),
            ratio: cp.map(|x| x.1),
            ok: t.success,
        });
    }
    let _ = paths;
    Ok(out)
}

fn stats(xs: &[f64]) -> Option<(f64, f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    Some((median, v[0], v[v.len() - 1]))
}

/// Medians of the successful samples of one cell.
fn cell<'a>(samples: &'a [Sample], tool: Tool, h: u16, phase: &str) -> Vec<&'a Sample> {
    samples.iter().filter(|s| s.tool == tool && s.hosts == h && s.phase == phase).collect()
}

fn median_of(samples: &[&Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = samples.iter().filter(|s| s.ok).filter_map(|s| f(s)).collect();
    stats(&v).map(|x| x.0)
}

fn table(opts: &Options, samples: &[Sample], w2: &[W2]) -> String {
    let mut t = String::new();
    t.push_str("### W1 \"fanout\" (21 tasks per host), wall seconds\n\n");
    t.push_str("| tool | H | run | ok/reps | median | min | max | per host-task ms | machine busy CPU s | engine CPU s | engine CPU ms / host-task | engine peak RSS MB |\n");
    t.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for &h in &opts.hosts {
        for phase in ["first", "second"] {
            for &tool in &opts.tools {
                let c = cell(samples, tool, h, phase);
                if c.is_empty() {
                    continue;
                }
                let ok: Vec<f64> = c.iter().filter(|s| s.ok).map(|s| s.wall_s).collect();
                let ht = f64::from(h) * TASKS_PER_HOST as f64;
                let (med, min, max) = match stats(&ok) {
                    Some((a, b, m)) => (format!("{a:.2}"), format!("{b:.2}"), format!("{m:.2}")),
                    None => ("FAILED".into(), "-".into(), "-".into()),
                };
                let per = stats(&ok).map_or("-".into(), |x| format!("{:.2}", x.0 * 1000.0 / ht));
                let busy =
                    median_of(&c, |s| Some(s.machine_busy_s)).map_or("-".into(), |x| format!("{x:.2}"));
                let cpu = median_of(&c, |s| s.engine_cpu_s);
                let rss = c
                    .iter()
                    .filter_map(|s| s.engine_rss_mb)
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
                let _ = writeln!(
                    t,
                    "| {} | {h} | {phase} | {}/{} | {med} | {min} | {max} | {per} | {busy} | {} | {} | {} |",
                    tool.name(),
                    ok.len(),
                    c.len(),
                    cpu.map_or("-".into(), |x| format!("{x:.2}")),
                    cpu.map_or("-".into(), |x| format!("{:.3}", x * 1000.0 / ht)),
                    rss.map_or("-".into(), |x| format!("{x:.1}")),
                );
            }
        }
    }
    t.push_str("\n### Ratios of medians (engine / peer; below 1 means the engine is faster)\n\n");
    t.push_str("| H | run | engine/ansible | engine/ansible-mitogen | engine/pyinfra | engine/floor | engine-exec/engine |\n|---|---|---|---|---|---|---|\n");
    for &h in &opts.hosts {
        for phase in ["first", "second"] {
            let m = |tool| median_of(&cell(samples, tool, h, phase), |s| Some(s.wall_s));
            let Some(e) = m(Tool::Engine) else { continue };
            let r = |tool| {
                m(tool).map_or("-".into(), |p| {
                    if e <= p {
                        format!("{:.3} ({:.1}x faster)", e / p, p / e)
                    } else {
                        format!("{:.3} ({:.2}x slower)", e / p, e / p)
                    }
                })
            };
            let exec = m(Tool::EngineExec).map_or("-".into(), |x| format!("{:.3}", x / e));
            let _ = writeln!(
                t,
                "| {h} | {phase} | {} | {} | {} | {} | {exec} |",
                r(Tool::Ansible),
                r(Tool::AnsibleMitogen),
                r(Tool::Pyinfra),
                r(Tool::Floor)
            );
        }
    }
    let failed: Vec<&Sample> = samples.iter().filter(|s| !s.ok).collect();
    if !failed.is_empty() {
        t.push_str("\nFailed runs (no time counted):\n\n");
        for s in failed {
            let _ = writeln!(t, "- {} H={} rep {} {}: {}", s.tool.name(), s.hosts, s.rep, s.phase, s.why);
        }
    }
    if !w2.is_empty() {
        t.push_str("\n### W2 \"guide\" (playbooks/ha.rhai, 9 bare hosts: prerequisites installed by the playbook)\n\n");
        t.push_str("| run | ok | wall s | critical path s | wall / critical path |\n|---|---|---|---|---|\n");
        for w in w2 {
            let _ = writeln!(
                t,
                "| {} | {} | {:.2} | {} | {} |",
                w.phase,
                if w.ok { "yes" } else { "FAILED" },
                w.wall_s,
                w.critical_path_s.map_or("-".into(), |x| format!("{x:.2}")),
                w.ratio.map_or("-".into(), |x| format!("{x:.2}"))
            );
        }
    }
    t
}

fn write_outputs(
    env: &Env,
    opts: &Options,
    command_line: &str,
    versions: &[(String, String)],
    samples: &[Sample],
    w2: &[W2],
) -> Result<String> {
    let date = cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let report = Report {
        date,
        command: command_line.to_owned(),
        versions: versions.to_vec(),
        samples: samples.to_vec(),
        w2: w2.to_vec(),
    };
    fs::write(env.out.join("results.json"), serde_json::to_string_pretty(&report)? + "\n")?;
    let mut md = format!("Command: `{command_line}`  \nDate: {}  \nVersions:\n", report.date);
    for (k, v) in versions {
        let _ = writeln!(md, "- {k}: {v}");
    }
    md.push('\n');
    md.push_str(&table(opts, samples, w2));
    fs::write(env.out.join("results.md"), &md)?;
    update_docs(&env.root.join("docs").join("benchmarks.md"), &md)?;
    Ok(md)
}

const DOCS_BEGIN: &str = "<!-- bench:begin (written by `cargo xtask bench`; edits inside are lost) -->";
const DOCS_END: &str = "<!-- bench:end -->";

/// Replaces the generated part of docs/benchmarks.md (between the markers) with `md`.
fn update_docs(file: &Path, md: &str) -> Result<()> {
    let old = fs::read_to_string(file).unwrap_or_default();
    let generated = format!("{DOCS_BEGIN}\n{md}{DOCS_END}");
    let new = match (old.find(DOCS_BEGIN), old.find(DOCS_END)) {
        (Some(a), Some(b)) if a < b => format!("{}{generated}{}", &old[..a], &old[b + DOCS_END.len()..]),
        _ => format!("{old}\n## Latest figures\n\n{generated}\n"),
    };
    fs::write(file, new).with_context(|| format!("cannot write {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recap_and_time() {
        let out = "x\n105 tasks on 5 hosts in 0.50s: 0 ok, 105 changed, 0 failed, 0 unreachable, 0 skipped\n\
                   critical path 0.20s (the longest chain of task durations; wall / critical path = 2.50)\n";
        assert_eq!(engine_changed(out), Some(105));
        assert_eq!(parse_critical(out), Some((0.20, 2.50)));
        assert_eq!(parse_time("0.52 0.10 0.05 20480\n"), Some((0.15000000000000002, 20.0)));
        assert_eq!(ansible_changed("h00 : ok=4 changed=4 unreachable=0\nh01 : ok=4 changed=1\n"), 5);
    }

    #[test]
    fn median_min_max() {
        assert_eq!(stats(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(stats(&[4.0, 1.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(stats(&[]), None);
    }
}
