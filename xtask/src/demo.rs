//! `cargo xtask demo`: the main job. Boots the `ha` lab if needed, builds the engine, runs the
//! best playbook the engine has against the lab with the live progress display, runs it again
//! to show that nothing changes, and prints both wall times.

use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::lab;
use crate::paths::Paths;
use crate::topology::Topology;

/// The playbook the demo runs, relative to the workspace root.
const PLAYBOOK: &str = "playbooks/hello.rhai";

pub(crate) fn run(paths: &Paths) -> Result<ExitCode> {
    lab::up(paths, Topology::Ha)?;
    let root = paths.workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--quiet", "--package", "engine", "--bin", "engine"])
        .status()
        .context("cannot run cargo build")?;
    if !built.success() {
        bail!("building the engine failed ({built})");
    }
    let engine = root.join("target").join("debug").join("engine");
    let inventory = paths.inventory();
    let mut times = Vec::new();
    for label in ["first run", "re-run"] {
        println!("\ndemo: {label}: engine run {PLAYBOOK} -i {}", inventory.display());
        let started = Instant::now();
        let status = Command::new(&engine)
            .current_dir(root)
            .arg("run")
            .arg(PLAYBOOK)
            .arg("-i")
            .arg(&inventory)
            .status()
            .context("cannot start the engine")?;
        let elapsed = started.elapsed();
        if !status.success() {
            eprintln!("demo: {label} failed ({status})");
            return Ok(ExitCode::FAILURE);
        }
        times.push((label, elapsed));
    }
    println!();
    for (label, elapsed) in times {
        println!("demo: {label:9} {:>6.2} s wall", elapsed.as_secs_f64());
    }
    println!(
        "demo: the lab stays up; `cargo xtask lab ssh etcd0` to look around, `cargo xtask lab down` to stop it"
    );
    Ok(ExitCode::SUCCESS)
}
