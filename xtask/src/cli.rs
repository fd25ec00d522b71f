//! Command line: parsing and dispatch only.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::paths::Paths;
use crate::topology::Topology;
use crate::{bench, browser, demo, deps, dist, fuzz, lab, selftest, simbench, testcmd};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Project automation: the lab, the demo and the test command")]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Real Debian hosts as systemd-nspawn containers (needs root).
    #[command(subcommand)]
    Lab(Lab),
    /// The main job: boot the lab and run the best playbook against it, twice, with timings.
    Demo,
    /// Benchmarks: W1 (engine vs Ansible, pyinfra and a plain-ssh floor) and W2 (ha.rhai).
    Bench {
        /// Lab sizes for W1 (numbered topologies).
        #[arg(long, value_delimiter = ',', default_value = "10,30,100")]
        hosts: Vec<u16>,
        /// Tools to run on W1.
        #[arg(long, value_delimiter = ',', default_value = "engine,ansible,pyinfra,floor")]
        tools: Vec<bench::Tool>,
        /// Repetitions per tool and size (tools alternate within each repetition).
        #[arg(long, default_value_t = 3)]
        reps: u32,
        /// Skip W2 (playbooks/ha.rhai on the ha lab).
        #[arg(long)]
        no_w2: bool,
        /// Instead of the lab: W1 against this many simulated in-memory hosts per size (the
        /// controller alone; no lab, no root), e.g. `--simulated 1000,10000`.
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["hosts", "tools", "reps", "no_w2"])]
        simulated: Vec<usize>,
    },
    /// The release archive: a static engine binary with the README, playbooks, examples, docs,
    /// shell completions and man pages, as target/dist/engine-VERSION-x86_64-linux.tar.gz and
    /// SHA256SUMS.
    Dist,
    /// Regenerate the docs' graph of playbooks/ha.rhai (docs/ha.svg and docs/ha.dot).
    Graphs,
    /// The import graph between each library crate's top-level modules; fails on a circle.
    Deps,
    /// libFuzzer runs of the playbook loader, the inventory parser and the parsers of what hosts
    /// print (see docs/fuzzing.md).
    Fuzz {
        /// Fuzzing time per target, in seconds.
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Which target to fuzz.
        #[arg(long, value_enum, default_value = "all")]
        target: fuzz::Which,
        /// Sanitizer to build the targets with.
        #[arg(long, value_enum, default_value = "address")]
        sanitizer: fuzz::Sanitizer,
    },
    /// Opens a run report (`engine report -o FILE`) in headless chromium, without network, and
    /// fails unless its script finished (`data-rendered="ok"`) with no script error.
    ReportCheck {
        file: std::path::PathBuf,
        /// Seconds allowed for the browser.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// The project's test command: lab selftest, the ha lab, `cargo test --workspace`, teardown.
    Test {
        /// Passed on to `cargo test`.
        #[arg(last = true)]
        cargo_args: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum Lab {
    /// Boots the lab (no-op if that topology is up and healthy).
    Up {
        /// ha (etcd0-2, master0-2, worker0-2), etcd (etcd0-2), N hosts h00.., ha+N (ha and a
        /// fleet of N), or bastion (the ha hosts on an internal network behind the jump host
        /// `bastion`; always bare, sudo asks for a password)
        #[arg(long, default_value = "ha")]
        topology: Topology,
        /// Boot bare hosts (a fresh Debian 12 cloud image's look: user `debian` with sudo, no
        /// root login, nothing installed) and the package mirror host `mirror` (10.77.0.2).
        #[arg(long)]
        bare: bool,
        /// The Debian releases of the bare hosts (12, 13), taken in turn in host order: with
        /// `12,13` the first host runs Debian 12, the second 13, the third 12, ... (needs --bare).
        #[arg(long, value_delimiter = ',', default_value = "12", requires = "bare")]
        releases: Vec<u8>,
    },
    /// Builds (or finds cached) the images, and with --bare the bare images (Debian 12 and 13)
    /// and their package mirrors, without booting anything.
    Build {
        #[arg(long)]
        bare: bool,
    },
    /// Stops every lab host and removes the bridge.
    Down,
    /// Each host: name, address, process, link, SSH.
    Status,
    /// Shell on a host, or runs one command there (its exit code is ours).
    Ssh {
        name: String,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Kills a host abruptly (SIGKILL to its process tree).
    Kill { name: String },
    /// Takes the host's link down (controller side): it is cut off from everyone.
    Cut { name: String },
    /// Brings a cut host's link back up.
    Heal { name: String },
    /// Stops the host if it runs and boots it again, fresh from the image.
    Restart { name: String },
    /// Up a 2-host lab, check it, down, and verify nothing was left behind.
    Selftest,
    #[command(name = "__guard", hide = true)]
    Guard,
}

pub(crate) fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    let paths = Paths::new()?;
    match cli.command {
        Top::Test { cargo_args } => return testcmd::run(&paths, &cargo_args),
        Top::Demo => return demo::run(&paths),
        Top::Graphs => return demo::graphs(&paths),
        Top::ReportCheck { file, timeout } => {
            match browser::check(&file, std::time::Duration::from_secs(timeout.max(1))) {
                Ok(browser::Checked::Rendered) => {
                    eprintln!("report-check: {} rendered, no script error", file.display())
                }
                Ok(browser::Checked::NoBrowser) => anyhow::bail!(
                    "report-check: {} is not installed (apt-get install chromium; cargo xtask test installs it)",
                    browser::CHROMIUM
                ),
                Err(why) => anyhow::bail!("report-check: {}: {why}", file.display()),
            }
        }
        Top::Dist => return dist::run(&paths),
        Top::Deps => return deps::run(&paths),
        Top::Fuzz { secs, target, sanitizer } => {
            return fuzz::run(&paths, &fuzz::Options { secs: secs.max(1), which: target, sanitizer });
        }
        Top::Bench { simulated, .. } if !simulated.is_empty() => {
            let line: Vec<String> = std::env::args().skip(1).collect();
            if let Some(bad) = simulated.iter().find(|&&h| !(1..=100_000).contains(&h)) {
                anyhow::bail!("--simulated: {bad} hosts is not 1 to 100000");
            }
            simbench::run(&paths, &simulated, &format!("cargo xtask {}", line.join(" ")))?;
        }
        Top::Bench { hosts, tools, reps, no_w2, .. } => {
            let line: Vec<String> = std::env::args().skip(1).collect();
            let opts = bench::Options { hosts, tools, reps: reps.clamp(1, 50), w2: !no_w2 };
            bench::run(&paths, &opts, &format!("cargo xtask {}", line.join(" ")))?;
        }
        Top::Lab(cmd) => match cmd {
            Lab::Up { topology, bare, releases } => lab::up(&paths, topology, bare.then_some(&releases[..]))?,
            Lab::Build { bare } => lab::build(&paths, bare)?,
            Lab::Down => lab::down(&paths)?,
            Lab::Status => lab::status(&paths)?,
            Lab::Ssh { name, command } => lab::ssh_exec(&paths, &name, &command)?,
            Lab::Kill { name } => lab::kill(&paths, &name)?,
            Lab::Cut { name } => lab::cut(&paths, &name, false)?,
            Lab::Heal { name } => lab::cut(&paths, &name, true)?,
            Lab::Restart { name } => lab::restart(&paths, &name)?,
            Lab::Selftest => selftest::run(&paths)?,
            Lab::Guard => lab::guard(&paths)?,
        },
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(args: &[&str]) -> Result<(bool, Vec<u8>), clap::Error> {
        let line = ["cargo xtask", "lab", "up"].iter().chain(args);
        match Cli::try_parse_from(line)?.command {
            Top::Lab(Lab::Up { bare, releases, .. }) => Ok((bare, releases)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn releases_default_to_debian_12_and_need_bare() -> Result<(), clap::Error> {
        assert_eq!(up(&[])?, (false, vec![12]));
        assert_eq!(up(&["--bare"])?, (true, vec![12]));
        assert_eq!(up(&["--bare", "--releases", "12,13"])?, (true, vec![12, 13]));
        assert!(up(&["--releases", "12,13"]).is_err(), "--releases without --bare");
        assert!(up(&["--bare", "--releases", "twelve"]).is_err());
        Ok(())
    }
}
