//! `cargo xtask fuzz`: libFuzzer runs of the playbook loader, the inventory parser and the
//! parsers of what hosts print (the crate in `fuzz/`), bounded in time, with a summary per
//! target.
//!
//! The toolchain is stable, and cargo-fuzz needs `-Z` flags: they are unlocked with
//! `RUSTC_BOOTSTRAP=1`, for this build only. cargo-fuzz itself is installed once, at a pinned
//! version, into `target/tools/`. Everything a run makes lives under `target/fuzz/`: the
//! build (its own target directory), the corpora (seeded from the repository's playbooks,
//! inventories and bad-input fixtures, and `fuzz/seeds/`), crash artifacts, one log per target and
//! `summary.txt`. Builds and runs are `nice -n 19`, so that other builds are not starved.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use sha2::{Digest, Sha256};

use crate::cmd;
use crate::paths::Paths;

/// The cargo-fuzz release this project is tested with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The longest one input may run before libFuzzer reports it as a timeout (a finding).
const INPUT_TIMEOUT_SECS: u64 = 10;
/// Memory cap of the fuzzing process; going over it is an out-of-memory finding.
const RSS_LIMIT_MB: u64 = 2048;
/// Extra time allowed past `--secs` (startup, corpus loading, the final merge of stats)
/// before the run is killed and reported as hung.
const GRACE: Duration = Duration::from_secs(120);

/// Which fuzz targets to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Which {
    Playbook,
    Inventory,
    RemoteOutput,
    All,
}

/// The sanitizer the targets are built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Sanitizer {
    Address,
    None,
}

impl Sanitizer {
    fn flag(self) -> &'static str {
        match self {
            Sanitizer::Address => "address",
            Sanitizer::None => "none",
        }
    }
}

/// Options of `cargo xtask fuzz`.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Fuzzing time per target.
    pub(crate) secs: u64,
    pub(crate) which: Which,
    pub(crate) sanitizer: Sanitizer,
}

/// One fuzz target: its binary name, its dictionary and where its seeds come from.
#[derive(Debug)]
struct Target {
    name: &'static str,
    dict: &'static str,
}

const PLAYBOOK: Target = Target { name: "playbook", dict: "fuzz/dict/rhai.dict" };
const INVENTORY: Target = Target { name: "inventory", dict: "fuzz/dict/inventory.dict" };
const REMOTE_OUTPUT: Target = Target { name: "remote_output", dict: "fuzz/dict/remote.dict" };

/// What one target's run found.
#[derive(Debug, Default)]
struct Outcome {
    executions: Option<u64>,
    execs_per_sec: Option<u64>,
    corpus_files: usize,
    new_units: Option<u64>,
    peak_rss_mb: Option<u64>,
    /// Crash, timeout, leak and out-of-memory inputs written during this run.
    findings: Vec<PathBuf>,
    /// libFuzzer's own exit status.
    status: String,
    log: PathBuf,
}

/// `cargo xtask fuzz`: builds the targets, runs each for `secs`, prints and writes the summary.
/// Fails (non-zero exit) when any target found a crashing input, naming the reproducer.
pub(crate) fn run(paths: &Paths, options: &Options) -> Result<ExitCode> {
    let root = paths.workspace_root().to_path_buf();
    let work = root.join("target").join("fuzz");
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let cargo_fuzz = ensure_cargo_fuzz(&root)?;
    let targets: Vec<&Target> = match options.which {
        Which::Playbook => vec![&PLAYBOOK],
        Which::Inventory => vec![&INVENTORY],
        Which::RemoteOutput => vec![&REMOTE_OUTPUT],
        Which::All => vec![&PLAYBOOK, &INVENTORY, &REMOTE_OUTPUT],
    };

    build(&root, &cargo_fuzz, options.sanitizer, &targets)?;

    let mut outcomes = Vec::new();
    for target in &targets {
        let corpus = work.join("corpus").join(target.name);
        let seeded = seed(&root, target, &corpus)?;
        println!("fuzz: {}: {seeded} seed inputs added; fuzzing for {} s", target.name, options.secs);
        let outcome = fuzz(&root, &work, target, &corpus, options)?;
        println!("{}", describe(target, &outcome));
        outcomes.push((target, outcome));
    }

    let mut summary = format!(
        "cargo xtask fuzz --secs {} (sanitizer: {}, cargo-fuzz {CARGO_FUZZ_VERSION})\n",
        options.secs,
        options.sanitizer.flag()
    );
    for (target, outcome) in &outcomes {
        summary.push_str(&describe(target, outcome));
        summary.push('\n');
    }
    let file = work.join("summary.txt");
    fs::write(&file, &summary).with_context(|| format!("cannot write {}", file.display()))?;
    println!("fuzz: summary written to {}", file.display());

    let crashed: Vec<&PathBuf> = outcomes.iter().flat_map(|(_, o)| &o.findings).collect();
    if crashed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for path in &crashed {
            eprintln!(
                "fuzz: reproducer {} (minimize with `cargo fuzz tmin`, see docs/fuzzing.md)",
                path.display()
            );
        }
        Ok(ExitCode::FAILURE)
    }
}

/// One line per target for the console and `summary.txt`.
fn describe(target: &Target, o: &Outcome) -> String {
    let num = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    let mut line = format!(
        "{}: {} executions, {} exec/s, corpus {} files ({} new), peak RSS {} MB, {} finding(s), libFuzzer {}",
        target.name,
        num(o.executions),
        num(o.execs_per_sec),
        o.corpus_files,
        num(o.new_units),
        num(o.peak_rss_mb),
        o.findings.len(),
        o.status,
    );
    for finding in &o.findings {
        let _ = write!(line, "\n  finding: {}", finding.display());
    }
    let _ = write!(line, "\n  log: {}", o.log.display());
    line
}

/// The cargo-fuzz binary under `target/tools/bin`, installed (pinned, `--locked`) when it is
/// missing or another version.
fn ensure_cargo_fuzz(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target").join("tools");
    let binary = tools.join("bin").join("cargo-fuzz");
    let version = |binary: &Path| {
        cmd::output(Command::new(binary).arg("--version"))
            .is_ok_and(|v| v.split_whitespace().any(|w| w == CARGO_FUZZ_VERSION))
    };
    if binary.is_file() && version(&binary) {
        return Ok(binary);
    }
    println!("fuzz: installing cargo-fuzz {CARGO_FUZZ_VERSION} into {}", tools.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    cmd::run_loud(
        Command::new("nice")
            .arg("-n19")
            .arg(cargo)
            .args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION, "--root"])
            .arg(&tools),
    )?;
    if !version(&binary) {
        bail!("{} is not cargo-fuzz {CARGO_FUZZ_VERSION} after installing it", binary.display());
    }
    Ok(binary)
}

/// `cargo fuzz` as a command: niced, run from the workspace root, on the stable toolchain
/// with `-Z` flags unlocked, building into `target/fuzz/build`.
fn cargo_fuzz(root: &Path, cargo_fuzz: &Path, verb: &str) -> Command {
    let mut command = Command::new("nice");
    command.arg("-n19").arg(cargo_fuzz).arg(verb).current_dir(root).env("RUSTC_BOOTSTRAP", "1").args([
        "--fuzz-dir",
        "fuzz",
        "--target-dir",
        "target/fuzz/build",
    ]);
    // The xtask runs under `cargo`, whose variables would leak into the nested build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME") || key == "RUSTFLAGS" {
            command.env_remove(&*key);
        }
    }
    command
}

/// Builds the targets (release, as users run the engine, with the given sanitizer).
fn build(root: &Path, binary: &Path, sanitizer: Sanitizer, targets: &[&Target]) -> Result<()> {
    for target in targets {
        println!("fuzz: building {} (sanitizer: {})", target.name, sanitizer.flag());
        let mut command = cargo_fuzz(root, binary, "build");
        command.args(["-O", "-s", sanitizer.flag(), target.name]);
        cmd::run_loud(&mut command)?;
    }
    Ok(())
}

/// The seed inputs of a target: the repository's own files of its kind.
fn seeds(root: &Path, target: &Target) -> Result<Vec<PathBuf>> {
    let listed = |dir: &str, ext: &str| -> Result<Vec<PathBuf>> {
        let dir = root.join(dir);
        let mut files = Vec::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_file() && (ext.is_empty() || path.extension().is_some_and(|e| e == ext)) {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    };
    Ok(match target.name {
        "playbook" => {
            let mut files = listed("playbooks", "rhai")?;
            files.extend(listed("tests/fixtures/bad", "rhai")?);
            files.push(root.join("tests/fixtures/touch_all.rhai"));
            files
        }
        // One per parser, its first byte picking it (see `modules::fuzz`).
        "remote_output" => listed("fuzz/seeds/remote_output", "")?,
        _ => {
            let mut files = listed("tests/fixtures/bad", "yml")?;
            files.push(root.join("playbooks/inventory.example.yml"));
            files.push(root.join("tests/fixtures/inventory.yml"));
            files
        }
    })
}

/// Copies the seeds into the corpus under content-addressed names (as libFuzzer names its
/// own finds), so seeding twice adds nothing. Returns how many were new.
fn seed(root: &Path, target: &Target, corpus: &Path) -> Result<usize> {
    fs::create_dir_all(corpus).with_context(|| format!("cannot create {}", corpus.display()))?;
    let mut added = 0;
    for file in seeds(root, target)? {
        let bytes = fs::read(&file).with_context(|| format!("cannot read seed {}", file.display()))?;
        let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("seed-{hex}");
        let dest = corpus.join(name);
        if !dest.exists() {
            fs::write(&dest, &bytes).with_context(|| format!("cannot write {}", dest.display()))?;
            added += 1;
        }
    }
    Ok(added)
}

/// Runs one target for `options.secs` and collects its statistics and findings.
fn fuzz(root: &Path, work: &Path, target: &Target, corpus: &Path, options: &Options) -> Result<Outcome> {
    let artifacts = work.join("artifacts").join(target.name);
    fs::create_dir_all(&artifacts).with_context(|| format!("cannot create {}", artifacts.display()))?;
    let before = artifact_files(&artifacts)?;
    let log = work.join(format!("{}.log", target.name));
    let log_file = fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;

    // The binary `build` made, run directly: `cargo fuzz run` would rebuild first whenever a
    // source changed meanwhile, and that build would eat into the time bound.
    let program = root.join("target/fuzz/build").join(host_triple()?).join("release").join(target.name);
    if !program.is_file() {
        bail!("{} is missing after the build", program.display());
    }
    let mut command = Command::new("nice");
    command
        .arg("-n19")
        .arg(&program)
        .current_dir(root)
        // As cargo-fuzz runs it: the Rust runtime and ASan disagree on a few globals.
        .env("ASAN_OPTIONS", "detect_odr_violation=0")
        .arg(format!("-max_total_time={}", options.secs))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-dict={}", root.join(target.dict).display()))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(corpus)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let mut child = command.spawn().with_context(|| format!("cannot start `{}`", cmd::display(&command)))?;
    let deadline = Instant::now() + Duration::from_secs(options.secs) + GRACE;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.to_string();
        }
        if Instant::now() > deadline {
            // Bounded in time whatever happens: a hung run is killed and said so.
            let _ = child.kill();
            let _ = child.wait();
            break format!("killed after {} s (hung)", (options.secs + GRACE.as_secs()));
        }
        thread::sleep(Duration::from_millis(500));
    };

    let text = fs::read_to_string(&log).with_context(|| format!("cannot read {}", log.display()))?;
    if !text.contains("stat::number_of_executed_units") && pulse(&text, "#").is_none() {
        bail!(
            "fuzz target {} did not run ({status}); the end of {}:\n{}",
            target.name,
            log.display(),
            cmd::tail(&text, 20)
        );
    }
    let after = artifact_files(&artifacts)?;
    let findings = after.into_iter().filter(|f| !before.contains(f)).collect();
    Ok(Outcome {
        // The final statistics, or (a run that was killed) its last status line.
        executions: stat(&text, "number_of_executed_units").or_else(|| pulse(&text, "#")),
        execs_per_sec: stat(&text, "average_exec_per_sec").or_else(|| pulse(&text, "exec/s: ")),
        new_units: stat(&text, "new_units_added"),
        peak_rss_mb: stat(&text, "peak_rss_mb"),
        corpus_files: fs::read_dir(corpus)?.count(),
        findings,
        status,
        log,
    })
}

/// A `stat::NAME: value` line of libFuzzer's final statistics.
fn stat(log: &str, name: &str) -> Option<u64> {
    let key = format!("stat::{name}:");
    log.lines().rev().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.trim().parse().ok())
}

/// A number from libFuzzer's last status line (`#1360275 REDUCE cov: 5061 ... exec/s: 5620 ...`):
/// the one right after `key`.
fn pulse(log: &str, key: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.starts_with('#') && l.contains("exec/s: "))?;
    let start = line.find(key)? + key.len();
    let digits: String = line[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The host's target triple (cargo-fuzz builds for it by default).
fn host_triple() -> Result<String> {
    let info = cmd::output(Command::new("rustc").arg("-vV"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` names no host triple")
}

/// The files in an artifact directory, sorted.
fn artifact_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        files.push(entry?.path());
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_final_stats() {
        let log = "#1024 pulse\nstat::number_of_executed_units: 123456\nstat::average_exec_per_sec:     2057\n\
                   stat::new_units_added:          17\n";
        assert_eq!(stat(log, "number_of_executed_units"), Some(123_456));
        assert_eq!(stat(log, "average_exec_per_sec"), Some(2057));
        assert_eq!(stat(log, "new_units_added"), Some(17));
        assert_eq!(stat(log, "peak_rss_mb"), None);
    }

    #[test]
    fn reads_the_last_status_line() {
        let log = "#1000\tNEW    cov: 1 exec/s: 10 rss: 1Mb\n#1360275\tREDUCE cov: 5061 ft: 20298 corp: 2972/541Kb \
                   exec/s: 5620 rss: 283Mb L: 50/1015 MS: 1 EraseBytes-\n==1== libFuzzer: run interrupted\n";
        assert_eq!(pulse(log, "#"), Some(1_360_275));
        assert_eq!(pulse(log, "exec/s: "), Some(5620));
        assert_eq!(pulse("nothing", "#"), None);
    }
}
