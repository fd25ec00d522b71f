//! Host tools the lab needs, installed with apt only when missing.

use std::process::Command;

use anyhow::Result;

use crate::cmd;

/// (Debian package, a program it provides).
const TOOLS: &[(&str, &str)] = &[
    ("debootstrap", "debootstrap"),
    ("systemd-container", "systemd-nspawn"),
    ("openssh-client", "ssh-keygen"),
    ("iproute2", "ip"),
    // The bare lab's package mirror: indexed by apt-ftparchive, signed by the lab key.
    ("apt-utils", "apt-ftparchive"),
    ("gpg", "gpg"),
    // Not for the lab itself: `engine graph --format svg` and the DOT tests render with it.
    ("graphviz", "dot"),
    // Not for the lab itself: the certgen parity test compares against cfssl (tests/certgen.rs).
    ("golang-cfssl", "cfssl"),
    // Not for the lab itself: the run report is checked in a headless browser (`cargo xtask
    // report-check`, the report tests).
    ("chromium", "chromium"),
];

fn installed(package: &str) -> bool {
    cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_ok_and(|s| s.trim() == "install ok installed")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| dir.join(program).is_file())
    })
}

/// Installs whichever of the lab's host tools are missing (`apt-get update` + `install -y`).
pub(crate) fn ensure() -> Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(package, program)| !installed(package) || !on_path(program))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("lab: installing host tools: {}", missing.join(" "));
    cmd::run_loud(Command::new("apt-get").args(["update", "-q"]))?;
    cmd::run_loud(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q"])
            .args(&missing),
    )
}
