//! `cargo xtask test`: the project's test command. Lab selftest, the `ha` lab with a fleet of
//! 50 more hosts (`ha+50`), then `cargo test --workspace` against it; the lab always comes
//! down afterwards.
//!
//! Teardown is done by a guard: a copy of this program (`lab __guard`) in its own process
//! group, holding the read end of a pipe. When this process ends in any way (success,
//! failure, panic, Ctrl-C) the pipe closes and the guard runs `lab down`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::paths::Paths;
use crate::topology::Topology;
use crate::{lab, selftest};

/// Hosts in the lab's `fleet` beside the `ha` hosts, for the fault tests (`tests/faults.rs`).
const FLEET_SIZE: u16 = 50;

pub(crate) fn run(paths: &Paths, cargo_args: &[OsString]) -> Result<ExitCode> {
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
    {
        let _lock = lab::lock()?;
        lab::up_locked(paths, Topology::HaFleet(FLEET_SIZE))?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(paths.workspace_root())
        .args(["test", "--workspace"])
        .args(cargo_args)
        .env("ENGINE_LAB_INVENTORY", paths.inventory())
        .env("ENGINE_LAB_FLEET_INVENTORY", paths.fleet_inventory())
        .env("ENGINE_LAB_REQUIRED", "1")
        .status()
        .context("cannot run cargo test")?;
    println!("test: cargo test finished: {status}");
    Ok(match status.code() {
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
