//! `cargo xtask bench --simulated 1000,10000`: the controller alone at scale. W1 against H
//! simulated hosts (the `simbench` example of the engine crate: in-memory hosts that answer
//! instantly, everything else the real pipeline), first and second run, in release mode. No
//! lab, no root. Writes target/bench/sim-results.{md,json} and its own section of
//! docs/benchmarks.md (between [`DOCS_BEGIN`] and [`DOCS_END`]; the W1/W2 section is left alone).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::bench;
use crate::cmd;
use crate::paths::Paths;

/// The figures one run of the example prints (a JSON line each; see its `Figures`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Run {
    hosts: usize,
    run: usize,
    host_tasks: usize,
    changed: usize,
    ok: usize,
    failed: usize,
    load_s: f64,
    load_cpu_s: f64,
    load_peak_rss_mib: f64,
    run_s: f64,
    run_cpu_s: f64,
    wall_s: f64,
    cpu_s: f64,
    sim_host_s: f64,
    commands: u64,
    unknown_commands: u64,
    cpu_us_per_host_task: f64,
    peak_rss_mib: f64,
}

/// One size: its runs, each a process of its own, as `engine run` is.
#[derive(Debug, Clone, Serialize)]
struct Size {
    hosts: usize,
    runs: Vec<Run>,
    processes: Vec<Process>,
}

/// One run's process from outside.
#[derive(Debug, Clone, Serialize)]
struct Process {
    /// Wall seconds of the process (saving and loading the hosts' state included), and the
    /// machine's busy CPU seconds meanwhile.
    wall_s: f64,
    machine_busy_s: f64,
    /// Peak RSS of the process, from `/usr/bin/time` (MB), when it is installed.
    time_peak_rss_mb: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    date: String,
    command: String,
    sizes: Vec<Size>,
}

/// Targets of issue 18 for the simulated benchmark.
const MAX_US_PER_HOST_TASK: f64 = 100.0;
const MAX_PEAK_RSS_MIB: f64 = 1024.0;
/// Flat: the largest size's CPU per host-task within this factor of the smallest's.
const FLAT_FACTOR: f64 = 1.25;

pub(crate) fn run(paths: &Paths, sizes: &[usize], command_line: &str) -> Result<()> {
    let root = paths.workspace_root().to_path_buf();
    let out = root.join("target").join("bench");
    fs::create_dir_all(out.join("logs"))?;
    println!(
        "simbench: building the example in release mode (cargo build --release -p engine --example simbench)"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run_loud(Command::new(cargo).current_dir(&root).args([
        "build",
        "--release",
        "-q",
        "-p",
        "engine",
        "--example",
        "simbench",
    ]))?;
    let exe = root.join("target").join("release").join("examples").join("simbench");
    let time = Path::new("/usr/bin/time");
    let mut done = Vec::new();
    for &h in sizes {
        println!("\nsimbench: W1 on {h} simulated hosts: a first run, then a second (one process each)");
        let dir = out.join(format!("sim-{h}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let mut size = Size { hosts: h, runs: Vec::new(), processes: Vec::new() };
        for phase in ["first", "second"] {
            let mut c = if time.is_file() {
                let mut c = Command::new(time);
                c.args(["-f", "%e %U %S %M"]).arg(&exe);
                c
            } else {
                Command::new(&exe)
            };
            c.arg("--hosts").arg(h.to_string()).arg("--runs").arg("1").arg("--dir").arg(&dir);
            c.arg("--state").arg(dir.join("hosts.json"));
            let log = out.join("logs").join(format!("sim-{h}-{phase}"));
            let t = bench::timed(&mut c, &log)?;
            if !t.success {
                bail!(
                    "simbench at H={h}, {phase} run, failed (logs in {}.err): {}",
                    log.display(),
                    t.stderr.trim()
                );
            }
            let runs: Vec<Run> = t
                .stdout
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .with_context(|| {
                    format!("simbench at H={h}: output not understood ({}.out)", log.display())
                })?;
            let [r] = &runs[..] else { bail!("simbench at H={h}: {} runs reported, 1 expected", runs.len()) };
            println!(
                "  {phase} run: {} host-tasks, {} changed, {:.2} s wall, {:.2} s CPU, {:.1} µs CPU per host-task, \
                 peak RSS {:.0} MiB",
                r.host_tasks, r.changed, r.wall_s, r.cpu_s, r.cpu_us_per_host_task, r.peak_rss_mib
            );
            size.runs.push(r.clone());
            size.processes.push(Process {
                wall_s: t.wall_s,
                machine_busy_s: t.busy_s,
                time_peak_rss_mb: bench::parse_time(&t.stderr).map(|(_, rss)| rss),
            });
        }
        done.push(size);
        // The example's folder holds H hosts' journals and state: not worth keeping.
        let _ = fs::remove_dir_all(&dir);
    }
    let date = cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let report = Report { date, command: command_line.to_owned(), sizes: done };
    fs::write(out.join("sim-results.json"), serde_json::to_string_pretty(&report)? + "\n")?;
    let md = table(&report);
    fs::write(out.join("sim-results.md"), &md)?;
    update_docs(&root.join("docs").join("benchmarks.md"), &md)?;
    println!("\n{md}");
    Ok(())
}

fn table(report: &Report) -> String {
    let mut md = format!("Command: `{}`  \nDate: {}\n\n", report.command, report.date);
    md.push_str(
        "| H | run | host-tasks | changed | wall s | load s | controller CPU s | of which sim. hosts s | \
         CPU µs / host-task | peak RSS MiB (after load) |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in &report.sizes {
        for r in &s.runs {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.0} ({:.0}) |",
                s.hosts,
                if r.run == 1 { "first" } else { "second" },
                r.host_tasks,
                r.changed,
                r.wall_s,
                r.load_s,
                r.cpu_s,
                r.sim_host_s,
                r.cpu_us_per_host_task,
                r.peak_rss_mib,
                r.load_peak_rss_mib,
            );
        }
    }
    md.push('\n');
    for s in &report.sizes {
        for (r, p) in s.runs.iter().zip(&s.processes) {
            let rss = p
                .time_peak_rss_mb
                .map(|m| format!(", {m:.0} MB peak RSS per `/usr/bin/time`"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- H = {}, {} run: its process took {:.2} s wall (the hosts' state loaded and saved included), \
                 the machine {:.2} s of busy CPU meanwhile{rss}.",
                s.hosts,
                if r.run == 1 { "first" } else { "second" },
                p.wall_s,
                p.machine_busy_s
            );
        }
    }
    md.push_str(&verdict(&report.sizes));
    md
}

/// The targets of issue 18, measured: CPU per host-task under 100 µs at the largest H and flat
/// from the smallest, peak RSS under 1 GiB.
fn verdict(sizes: &[Size]) -> String {
    let (Some(small), Some(large)) =
        (sizes.iter().min_by_key(|s| s.hosts), sizes.iter().max_by_key(|s| s.hosts))
    else {
        return String::new();
    };
    let worst = |s: &Size| s.runs.iter().map(|r| r.cpu_us_per_host_task).fold(0.0, f64::max);
    let peak = |s: &Size| s.runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut md = String::new();
    let (us, rss) = (worst(large), peak(large));
    let _ = writeln!(
        md,
        "- H = {}: CPU per host-task under {MAX_US_PER_HOST_TASK} µs (worst run {us:.1} µs): {}",
        large.hosts,
        met(us < MAX_US_PER_HOST_TASK)
    );
    if small.hosts != large.hosts {
        let ratio = us / worst(small).max(f64::MIN_POSITIVE);
        let _ = writeln!(
            md,
            "- flat from H = {} to H = {} (worst run's CPU per host-task within {FLAT_FACTOR}×: {ratio:.2}×): {}",
            small.hosts,
            large.hosts,
            met(ratio <= FLAT_FACTOR)
        );
    }
    let _ = writeln!(
        md,
        "- H = {}: peak RSS under {MAX_PEAK_RSS_MIB:.0} MiB ({rss:.0} MiB): {}",
        large.hosts,
        met(rss < MAX_PEAK_RSS_MIB)
    );
    md
}

const DOCS_BEGIN: &str =
    "<!-- simbench:begin (written by `cargo xtask bench --simulated`; edits inside are lost) -->";
const DOCS_END: &str = "<!-- simbench:end -->";

/// Replaces the simulated benchmark's part of docs/benchmarks.md (between its own markers)
/// with `md`; appends a section when the markers are missing.
fn update_docs(file: &Path, md: &str) -> Result<()> {
    let old = fs::read_to_string(file).unwrap_or_default();
    let new = splice(&old, md);
    fs::write(file, new).with_context(|| format!("cannot write {}", PathBuf::from(file).display()))
}

fn splice(old: &str, md: &str) -> String {
    let generated = format!("{DOCS_BEGIN}\n{md}{DOCS_END}");
    match (old.find(DOCS_BEGIN), old.find(DOCS_END)) {
        (Some(a), Some(b)) if a < b => format!("{}{generated}{}", &old[..a], &old[b + DOCS_END.len()..]),
        _ => format!("{old}\n## Simulated hosts: latest figures\n\n{generated}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(hosts: usize, run: usize, us: f64, rss: f64) -> Run {
        Run {
            hosts,
            run,
            host_tasks: 21 * hosts,
            changed: if run == 1 { 21 * hosts } else { 5 * hosts },
            ok: 0,
            failed: 0,
            load_s: 0.0,
            load_cpu_s: 0.0,
            load_peak_rss_mib: 0.0,
            run_s: 0.0,
            run_cpu_s: 0.0,
            wall_s: 0.0,
            cpu_s: 0.0,
            sim_host_s: 0.0,
            commands: 0,
            unknown_commands: 0,
            cpu_us_per_host_task: us,
            peak_rss_mib: rss,
        }
    }

    fn size(hosts: usize, us: [f64; 2], rss: f64) -> Size {
        Size {
            hosts,
            runs: vec![run(hosts, 1, us[0], rss), run(hosts, 2, us[1], rss)],
            processes: Vec::new(),
        }
    }

    #[test]
    fn the_verdict_compares_the_worst_runs() {
        let v = verdict(&[size(1000, [50.0, 60.0], 200.0), size(10000, [70.0, 65.0], 900.0)]);
        assert!(v.contains("(worst run 70.0 µs): met"), "{v}");
        assert!(v.contains("within 1.25×: 1.17×): met"), "{v}");
        assert!(v.contains("(900 MiB): met"), "{v}");
        let v = verdict(&[size(1000, [50.0, 40.0], 200.0), size(10000, [120.0, 65.0], 1500.0)]);
        assert!(v.contains("(worst run 120.0 µs): **not met**"), "{v}");
        assert!(v.contains("2.40×): **not met**"), "{v}");
        assert!(v.contains("(1500 MiB): **not met**"), "{v}");
    }

    #[test]
    fn the_docs_section_is_replaced_between_its_own_markers_only() {
        let w1 = "<!-- bench:begin (written by `cargo xtask bench`; edits inside are lost) -->\nW1\n<!-- bench:end -->";
        let first = splice(&format!("# Benchmarks\n{w1}\n"), "table 1\n");
        assert!(first.contains(w1) && first.contains("table 1"), "{first}");
        let second = splice(&first, "table 2\n");
        assert!(second.contains(w1) && second.contains("table 2") && !second.contains("table 1"), "{second}");
        assert_eq!(second.matches(DOCS_BEGIN).count(), 1);
    }
}
