//! `cargo xtask`: project automation. The lab of real Debian hosts (systemd-nspawn
//! containers on a private bridge) and the project's test command.
//!
//! - `cli`: argument parsing and dispatch; `fuzz`: the libFuzzer targets in `fuzz/`
//! - `browser`: `report-check`, the run report in headless chromium
//! - `dist`: the release archive (static binary, playbooks, completions, man pages)
//! - `deps`: the import graph of each library crate's top-level modules, circles refused
//! - `lab`: up/down/status/ssh and fault injection; `selftest`, `testcmd`
//! - `image`: the cached host image (debootstrap + `image-tweak.sh`); `mirror`: apt sources
//! - `host`: one host's files and its nspawn boot; `procs`: finding and stopping hosts
//! - `cgroup`: each host's own cgroup, so that hosts never share their systemd's tree
//! - `standins`: the kubeadm/kubectl lab stand-ins, built and bind-mounted into hosts
//! - `bare`: the bare lab's image and package mirror; `k8srepo`: its pkgs.k8s.io-shaped
//!   repositories of the stand-ins; `signkey`: the lab's repository signing keys
//! - `net`: bridge and veths; `ssh`: the system ssh with the lab key; `tools`: apt installs
//! - `topology`: names and addresses; `inventory`: inventory.yml, known_hosts; `paths`: state
//! - `labvars`: the bare lab's inventory variables that point playbooks at its package mirror

mod bare;
mod bastion;
mod bench;
mod browser;
mod cgroup;
mod cli;
mod cmd;
mod demo;
mod deps;
mod dist;
mod fuzz;
mod host;
mod image;
mod inventory;
mod k8srepo;
mod lab;
mod labvars;
mod mirror;
mod net;
mod paths;
mod procs;
mod selftest;
mod signkey;
mod simbench;
mod ssh;
mod standins;
mod testcmd;
mod tools;
mod topology;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
