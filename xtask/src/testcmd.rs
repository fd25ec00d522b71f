//! `cargo xtask test`: the project's test command. The layers (`cargo xtask deps`), the lab
//! selftest, the `ha` lab with a fleet of 50 more hosts (`ha+50`, the pre-baked image), then
//! `cargo test --workspace --no-fail-fast -- --include-ignored` against it (all but the bare
//! lab's tests); then the bare `ha` lab (9 hosts like fresh cloud images, Debian 12 and 13 in
//! turn, 3 more in its fleet, and the package mirror: `lab up --topology ha+3 --bare --releases
//! 12,13`) for the bare lab's tests: `bare_lab::`, the HA
//! guide's end-to-end tests `ha::`, the day-two playbooks' `day_two::`, `upgrade::` and `nodes::`
//! (add-node.rhai and remove-node.rhai, with the fleet's 3 hosts) (and
//! `secrets::full_ha_run...`), which install everything themselves; then the `bastion` lab (the bare `ha` hosts behind a jump host, sudo with a
//! password: `lab up --topology bastion`) for `ansible_project::`, an Ansible user's project run
//! through it. A test selection that names only bare (or bastion) tests skips the first lab. The
//! lab always comes down afterwards.
//!
//! Lab tests (and the live-SSH unit tests of `engine::ssh`) are `#[ignore]`d, so that a plain
//! `cargo test` lists them as ignored; here `--include-ignored` runs them, with the lab's
//! inventories and one lab host's address in their environment. Every test binary runs even when
//! one fails, and the end of the output lists every failed test under its binary.
//!
//! Teardown is done by a guard: a copy of this program (`lab __guard`) in its own process
//! group, holding the read end of a pipe. When this process ends in any way (success,
//! failure, panic, Ctrl-C) the pipe closes and the guard runs `lab down`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};

use crate::paths::{Paths, State};
use crate::topology::Topology;
use crate::{lab, selftest};

/// Hosts in the lab's `fleet` beside the `ha` hosts, for the fault tests (`tests/faults.rs`).
const FLEET_SIZE: u16 = 50;

pub(crate) fn run(paths: &Paths, cargo_args: &[OsString]) -> Result<ExitCode> {
    // The layers first: it takes a second and needs no lab.
    if crate::deps::run(paths)? != ExitCode::SUCCESS {
        return Ok(ExitCode::FAILURE);
    }
    lab::require_root()?;
    crate::tools::ensure()?;
    let exe = std::env::current_exe().context("cannot find the xtask binary")?;
    let mut guard = Command::new(exe)
        .args(["lab", "__guard"])
        .stdin(Stdio::piped())
        .process_group(0)
        .spawn()
        .context("cannot start the teardown guard")?;
    let guard_pipe = guard.stdin.take();

    let code = run_tests(paths, cargo_args);

    drop(guard_pipe);
    let torn_down = guard.wait().context("waiting for the teardown guard")?;
    let code = code?;
    if !torn_down.success() {
        eprintln!("test: lab teardown failed ({torn_down})");
        return Ok(ExitCode::FAILURE);
    }
    Ok(code)
}

fn run_tests(paths: &Paths, cargo_args: &[OsString]) -> Result<ExitCode> {
    selftest::run(paths)?;
    // `ARGS` of `cargo xtask test -- ARGS` may hold their own `--` and test arguments.
    let (cargo_args, test_args) = match cargo_args.iter().position(|a| a == "--") {
        Some(at) => (&cargo_args[..at], &cargo_args[at + 1..]),
        None => (cargo_args, &[][..]),
    };
    let selection = Selection::of(test_args);
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut status = None;
    if selection.main {
        status = Some(main_phase(paths, cargo_args, test_args, &lines)?);
    }
    // Phase two: the bare lab (hosts like a fresh cloud image, and the package mirror), for
    // the tests of its own the selection asks for (all tests do). A mixed fleet, Debian 12 and
    // 13 in turn, so every HA scenario proves both releases.
    if !selection.bare.is_empty() {
        {
            let _lock = lab::lock()?;
            lab::up_locked(paths, Topology::HaFleet(BARE_FLEET), Some(crate::bare::MIXED))?;
        }
        let mut bare_args: Vec<OsString> = vec!["--include-ignored".into()];
        bare_args.extend(selection.bare.iter().map(OsString::from));
        for bastion in BASTION_TESTS {
            bare_args.extend(["--skip".into(), bastion.into()]);
        }
        bare_args.extend(test_args.iter().filter(|a| a.to_string_lossy().starts_with('-')).cloned());
        let mut env = vec![
            ("ENGINE_LAB_BARE_INVENTORY", paths.inventory().into_os_string()),
            ("ENGINE_LAB_REQUIRED", "1".into()),
        ];
        // tests/install.rs checks the release archive on the bare hosts: build it first.
        if selection
            .bare
            .iter()
            .any(|f| f.starts_with(INSTALL_TESTS) || INSTALL_TESTS.starts_with(f.as_str()))
        {
            env.push(("ENGINE_DIST_ARCHIVE", crate::dist::archive(paths)?.into_os_string()));
        }
        let bare = cargo_test(
            paths,
            &["-p".into(), "engine".into(), "--test".into(), "main".into()],
            cargo_args,
            &bare_args,
            &env,
            &lines,
        )?;
        if status.is_none_or(|s: std::process::ExitStatus| s.success()) {
            status = Some(bare);
        }
    }
    // Phase three: the bastion lab, for its tests the selection asks for.
    if !selection.bastion.is_empty() {
        let bastion = bastion_phase(paths, cargo_args, test_args, &selection.bastion, &lines)?;
        if status.is_none_or(|s: std::process::ExitStatus| s.success()) {
            status = Some(bastion);
        }
    }
    let status = status.context("the test selection selects no phase")?;
    report(status, &lines)
}

/// Phase three: the `bastion` lab (see [`crate::bastion`]), and the tests `filters` there, with
/// the lab's directory in `ENGINE_LAB_BASTION_DIR`.
fn bastion_phase(
    paths: &Paths,
    cargo_args: &[OsString],
    test_args: &[OsString],
    filters: &[String],
    lines: &Arc<Mutex<Vec<String>>>,
) -> Result<std::process::ExitStatus> {
    {
        let _lock = lab::lock()?;
        lab::up_locked(paths, Topology::Bastion, None)?;
    }
    let mut args: Vec<OsString> = vec!["--include-ignored".into()];
    args.extend(filters.iter().map(OsString::from));
    args.extend(test_args.iter().filter(|a| a.to_string_lossy().starts_with('-')).cloned());
    let env = vec![
        ("ENGINE_LAB_BASTION_DIR", paths.lab.clone().into_os_string()),
        ("ENGINE_LAB_REQUIRED", "1".into()),
    ];
    cargo_test(
        paths,
        &["-p".into(), "engine".into(), "--test".into(), "main".into()],
        cargo_args,
        &args,
        &env,
        lines,
    )
}

/// Phase one: the pre-baked `ha` lab and its fleet, and every test but the bare lab's.
fn main_phase(
    paths: &Paths,
    cargo_args: &[OsString],
    test_args: &[OsString],
    lines: &Arc<Mutex<Vec<String>>>,
) -> Result<std::process::ExitStatus> {
    {
        let _lock = lab::lock()?;
        lab::up_locked(paths, Topology::HaFleet(FLEET_SIZE), None)?;
    }
    // Ansible's own `ansible-inventory` is the reference `engine inventory` is compared with.
    let venv = crate::bench::ensure_venv(&paths.workspace_root().join("target").join("bench"))?;
    // The live-SSH unit tests (engine/src/ssh/tests.rs) talk to the lab's first host.
    let state = State::require(paths)?;
    let ssh_host = state.hosts.first().context("the lab has no host")?;
    // The bare lab's tests run in a second phase, on a lab of their own.
    let mut main_args: Vec<OsString> = vec!["--include-ignored".into()];
    for other in BARE_TESTS.iter().chain(&BASTION_TESTS) {
        main_args.extend(["--skip".into(), (*other).into()]);
    }
    main_args.extend(test_args.iter().cloned());
    let env = vec![
        ("ENGINE_LAB_INVENTORY", paths.inventory().into_os_string()),
        ("ENGINE_LAB_FLEET_INVENTORY", paths.fleet_inventory().into_os_string()),
        ("ENGINE_LAB_REQUIRED", "1".into()),
        ("ENGINE_ANSIBLE_INVENTORY", venv.join("ansible-inventory").into_os_string()),
        ("ENGINE_SSH_TEST_ADDR", ssh_host.addr.to_string().into()),
        ("ENGINE_SSH_TEST_USER", "root".into()),
        ("ENGINE_SSH_TEST_KEY", paths.key().into_os_string()),
        ("ENGINE_SSH_TEST_KNOWN_HOSTS", paths.known_hosts().into_os_string()),
    ];
    cargo_test(paths, &["--workspace".into(), "--no-fail-fast".into()], cargo_args, &main_args, &env, lines)
}

/// Prints what failed (from the output kept in `lines`) and turns `status` into the exit code.
fn report(status: std::process::ExitStatus, lines: &Arc<Mutex<Vec<String>>>) -> Result<ExitCode> {
    println!("test: cargo test finished: {status}");
    let lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
    let failed = Failures::read(&lines);
    let count: usize = failed.tests.iter().map(|(_, tests)| tests.len()).sum();
    if count > 0 {
        println!("test: {count} failed test(s):");
        for (binary, tests) in &failed.tests {
            println!("  in {binary}:");
            for test in tests {
                println!("    {test}");
            }
        }
    }
    if !failed.targets.is_empty() {
        println!("test: failed test binaries (to rerun one: cargo test ARGS):");
        for target in &failed.targets {
            println!("  {target}");
        }
    }
    Ok(match status.code() {
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// The bare lab's tests (tests/bare_lab.rs, and the HA guide's on bare hosts: tests/ha.rs, the
/// day-two playbooks' tests/day_two.rs, tests/upgrade.rs and tests/nodes.rs (add-node.rhai and
/// remove-node.rhai), and the secrets search of a whole ha.rhai run), run on the bare `ha` lab
/// after the rest.
const BARE_TESTS: [&str; 7] = [
    "bare_lab::",
    "ha::",
    "day_two::",
    "upgrade::",
    "nodes::",
    "secrets::full_ha_run",
    "install::install_the_release_archive",
];

/// The bare lab's test of the release archive (tests/install.rs), which needs `cargo xtask
/// dist` built first.
const INSTALL_TESTS: &str = "install::install_the_release_archive";

/// The bare lab's extra hosts beside the `ha` hosts (`ha+3`, in the fleet inventory): the
/// fourth worker, etcd member and master of tests/nodes.rs.
const BARE_FLEET: u16 = 3;

/// The bastion lab's tests (tests/ansible_project.rs), run on the `bastion` lab last.
const BASTION_TESTS: [&str; 1] = ["ansible_project::"];

/// Which phases a test selection (the test binary's arguments) needs.
#[derive(Debug, PartialEq)]
struct Selection {
    /// Phase one: the pre-baked lab, for every test but the bare lab's.
    main: bool,
    /// Phase two: the filters to run on the bare lab (none: no bare lab).
    bare: Vec<String>,
    /// Phase three: the filters to run on the bastion lab (none: no bastion lab).
    bastion: Vec<String>,
}

impl Selection {
    /// No filter selects everything. A filter inside a bare prefix (`ha::ha_full`) runs on the
    /// bare lab only; any other filter needs phase one, and the bare prefixes it takes in
    /// (`ha` takes in `ha::`) run on the bare lab.
    fn of(test_args: &[OsString]) -> Selection {
        let filters: Vec<String> = test_args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|a| !a.starts_with('-'))
            .collect();
        let all = |prefixes: &[&str]| prefixes.iter().map(|b| (*b).to_owned()).collect();
        if filters.is_empty() {
            return Selection { main: true, bare: all(&BARE_TESTS), bastion: all(&BASTION_TESTS) };
        }
        let mut main = false;
        let mut bare = Vec::new();
        let mut bastion = Vec::new();
        for filter in filters {
            if BARE_TESTS.iter().any(|b| filter.starts_with(b)) {
                bare.push(filter);
            } else if BASTION_TESTS.iter().any(|b| filter.starts_with(b)) {
                bastion.push(filter);
            } else {
                main = true;
                // Only the bare (bastion) prefixes it takes in: the filter itself would match
                // tests of phase one, which cannot run on the bare (bastion) lab.
                for (prefixes, phase) in [(&BARE_TESTS[..], &mut bare), (&BASTION_TESTS[..], &mut bastion)] {
                    for b in prefixes.iter().filter(|b| b.contains(filter.as_str())) {
                        if !phase.iter().any(|x| x == b) {
                            phase.push((*b).to_owned());
                        }
                    }
                }
            }
        }
        Selection { main, bare, bastion }
    }
}

/// Runs `cargo test SELECT CARGO_ARGS -- TEST_ARGS` in the workspace with `env`, its output
/// going on to the terminal as it comes and into `lines`.
fn cargo_test(
    paths: &Paths,
    select: &[OsString],
    cargo_args: &[OsString],
    test_args: &[OsString],
    env: &[(&str, OsString)],
    lines: &Arc<Mutex<Vec<String>>>,
) -> Result<std::process::ExitStatus> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(paths.workspace_root())
        .arg("test")
        .args(select)
        .args(cargo_args)
        .arg("--")
        .args(test_args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    let stdout = child.stdout.take().map(|out| tee(out, std::io::stdout(), Arc::clone(lines)));
    let stderr = child.stderr.take().map(|err| tee(err, std::io::stderr(), Arc::clone(lines)));
    let status = child.wait().context("cannot run cargo test")?;
    for thread in stdout.into_iter().chain(stderr) {
        let _ = thread.join();
    }
    Ok(status)
}

/// Copies `from` to `to` line by line, keeping each line (lossily decoded) in `lines`.
fn tee(
    from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut line = Vec::new();
        while from.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let _ = to.write_all(&line);
            let _ = to.flush();
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            lines.lock().unwrap_or_else(PoisonError::into_inner).push(text);
            line.clear();
        }
    })
}

/// What failed, read from cargo test's output.
#[derive(Debug, Default, PartialEq)]
struct Failures {
    /// Each `test NAME ... FAILED`, under the binary that ran it (from cargo's `Running` line
    /// before it), in the order run.
    tests: Vec<(String, Vec<String>)>,
    /// The binaries that failed, as cargo names them (`-p engine --test main`): also those that
    /// failed without a failed test (they crashed, or did not build).
    targets: Vec<String>,
}

impl Failures {
    fn read(lines: &[String]) -> Failures {
        let mut failed = Failures::default();
        let mut binary = String::from("(unknown binary)");
        let mut in_target_list = false;
        for line in lines {
            let line = line.trim();
            let was_in_target_list = std::mem::take(&mut in_target_list);
            if let Some(running) = line.strip_prefix("Running ").or_else(|| line.strip_prefix("Doc-tests ")) {
                binary = running.to_owned();
            } else if let Some(test) = line.strip_prefix("test ").and_then(|t| t.strip_suffix(" ... FAILED"))
            {
                match failed.tests.iter_mut().find(|(b, _)| *b == binary) {
                    Some((_, tests)) => tests.push(test.to_owned()),
                    None => failed.tests.push((binary.clone(), vec![test.to_owned()])),
                }
            } else if let Some((_, target)) = line.split_once("to rerun pass ") {
                failed.target(target);
            } else if line.ends_with("targets failed:") {
                in_target_list = true;
            } else if was_in_target_list && line.starts_with('`') {
                failed.target(line);
                in_target_list = true;
            }
        }
        failed
    }

    /// Notes a failed binary (cargo names it twice: in its rerun hint, then in the list).
    fn target(&mut self, quoted: &str) {
        let target = quoted.trim_matches('`');
        if !self.targets.iter().any(|t| t == target) {
            self.targets.push(target.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Failures, Selection};

    #[test]
    fn selections_pick_the_phases_they_need() {
        let of =
            |args: &[&str]| Selection::of(&args.iter().map(std::ffi::OsString::from).collect::<Vec<_>>());
        let every = Selection {
            main: true,
            bare: vec![
                "bare_lab::".into(),
                "ha::".into(),
                "day_two::".into(),
                "upgrade::".into(),
                "nodes::".into(),
                "secrets::full_ha_run".into(),
                "install::install_the_release_archive".into(),
            ],
            bastion: vec!["ansible_project::".into()],
        };
        assert_eq!(of(&[]), every);
        assert_eq!(of(&["--nocapture"]), every);
        let bare = |f: &[&str]| Selection {
            main: false,
            bare: f.iter().map(|s| (*s).to_owned()).collect(),
            bastion: vec![],
        };
        assert_eq!(of(&["ha::ha_full"]), bare(&["ha::ha_full"]));
        assert_eq!(of(&["bare_lab::", "--nocapture"]), bare(&["bare_lab::"]));
        assert_eq!(of(&["host_prep::"]), Selection { main: true, bare: vec![], bastion: vec![] });
        assert_eq!(of(&["day_two::reset"]), bare(&["day_two::reset"]));
        assert_eq!(
            of(&["reset"]),
            Selection { main: true, bare: vec![], bastion: vec![] },
            "a word of a test's name, not of a prefix"
        );
        assert_eq!(of(&["day"]), Selection { main: true, bare: vec!["day_two::".into()], bastion: vec![] });
        assert_eq!(of(&["nodes::nodes_a_worker"]), bare(&["nodes::nodes_a_worker"]));
        assert_eq!(
            of(&["ha"]),
            Selection {
                main: true,
                bare: vec!["ha::".into(), "secrets::full_ha_run".into()],
                bastion: vec![]
            }
        );
        assert_eq!(
            of(&["ansible_project::an_ansible"]),
            Selection { main: false, bare: vec![], bastion: vec!["ansible_project::an_ansible".into()] }
        );
        assert_eq!(
            of(&["project"]),
            Selection { main: true, bare: vec![], bastion: vec!["ansible_project::".into()] }
        );
    }

    #[test]
    fn failures_are_listed_under_their_binary() {
        let output = "\
     Running unittests src/lib.rs (target/debug/deps/engine-1)
test ssh::tests::echo_round_trip ... ok
test ssh::tests::latency_of_true ... FAILED
error: test failed, to rerun pass `-p engine --lib`
     Running ../tests/main.rs (target/debug/deps/main-2)
test cli::hello ... ok
test faults::kill ... FAILED
test lab::copy ... FAILED
error: test failed, to rerun pass `-p engine --test main`
error: 2 targets failed:
    `-p engine --lib`
    `-p engine --test main`
";
        let lines: Vec<String> = output.lines().map(str::to_owned).collect();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Failures::read(&lines),
            Failures {
                tests: vec![
                    (
                        "unittests src/lib.rs (target/debug/deps/engine-1)".into(),
                        strings(&["ssh::tests::latency_of_true"])
                    ),
                    (
                        "../tests/main.rs (target/debug/deps/main-2)".into(),
                        strings(&["faults::kill", "lab::copy"])
                    ),
                ],
                targets: strings(&["-p engine --lib", "-p engine --test main"]),
            }
        );
    }

    #[test]
    fn one_failed_binary_is_named_by_the_rerun_hint() {
        let output = "\
     Running ../tests/main.rs (target/debug/deps/main-2)
error: test failed, to rerun pass `-p engine --test main`
";
        let lines: Vec<String> = output.lines().map(str::to_owned).collect();
        let failed = Failures::read(&lines);
        assert!(failed.tests.is_empty());
        assert_eq!(failed.targets, ["-p engine --test main"]);
    }
}
