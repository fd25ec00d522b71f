//! `engine exec` (and `engine ping`): ad hoc work on the hosts a pattern selects, over the
//! transport and connection options `run` uses.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use engine::Error;
use engine::adhoc::AdHoc;
use engine::events::Subscriber;
use engine::inventory::Inventory;
use engine::redact::Redactor;
use engine::report::{AdHocOutput, JsonLines, Log};
use engine::run::RunOptions;
use engine::sched::Walker;

use super::{ConnArgs, execute, warn_unused_keys};

#[derive(Debug, Args)]
pub(super) struct ExecArgs {
    /// The inventory (as for `run`). Repeatable.
    #[arg(short, long, value_name = "SOURCE", required = true)]
    inventory: Vec<PathBuf>,
    /// The hosts, as an Ansible pattern (`all`, `web*:!web3`, `@retry-file`).
    pattern: String,
    /// The command, after `--`. One word is a shell command line (`sh -c`, Ansible's `-m
    /// shell`); several are a program and its arguments, run without a shell.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Run it through become (sudo), unless a host's inventory sets `ansible_become`.
    #[arg(short = 'b', long = "become")]
    become_: bool,
    /// The become user (default root), unless a host's inventory sets `ansible_become_user`.
    #[arg(long, value_name = "USER")]
    become_user: Option<String>,
    /// Hosts at work at once.
    #[arg(short, long, default_value_t = 64, value_name = "N")]
    forks: usize,
    /// Seconds before the command is killed on a host (default: --command-timeout).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Print events as JSON lines on stdout (each host's `output`: rc, stdout, stderr).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: ConnArgs,
}

/// Runs the command on every selected host; exit 0 when all succeeded, 2 when one failed or
/// was unreachable.
pub(super) fn exec_command(args: ExecArgs, redactor: &Arc<Redactor>) -> Result<ExitCode, Error> {
    let inventory = Inventory::load_all(&args.inventory, None)?;
    warn_unused_keys(&inventory);
    let patterns =
        engine::inventory::limit_terms(std::slice::from_ref(&args.pattern), std::path::Path::new("."))
            .map_err(Error::Usage)?;
    let adhoc = AdHoc {
        command: args.command,
        become_: args.become_ || args.become_user.is_some(),
        become_user: args.become_user,
        timeout: args.timeout,
    };
    let plan = adhoc.plan(&inventory, &patterns)?;
    let mut subscribers: Vec<Box<dyn Subscriber>> = vec![Box::new(Log)];
    if args.json {
        subscribers.push(Box::new(JsonLines::new(std::io::stdout())));
    } else {
        subscribers.push(Box::new(AdHocOutput::new(Box::new(std::io::stdout()))));
    }
    let options = RunOptions {
        check: false,
        diff: false,
        walker: Walker { forks: args.forks.max(1), per_host: 1, fail_fast: false },
        carried: None,
        journal: None,
        capture_output: true,
        reviewed: None,
    };
    let summary = execute(&plan, &args.conn, options, Duration::from_secs(30), subscribers, redactor, None)?;
    Ok(super::exit_code(summary.as_ref()))
}

#[derive(Debug, Args)]
pub(super) struct PingArgs {
    /// The inventory (as for `run`). Repeatable.
    #[arg(short, long, value_name = "SOURCE", required = true)]
    inventory: Vec<PathBuf>,
    /// The hosts, as an Ansible pattern. Default: all.
    #[arg(default_value = "all")]
    pattern: String,
    /// Print the checks as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: ConnArgs,
}

/// Checks the connection to each selected host, step by step; exit 0 when every step passed,
/// 2 when one failed.
pub(super) fn ping_command(args: PingArgs) -> Result<ExitCode, Error> {
    let inventory = Inventory::load_all(&args.inventory, None)?;
    warn_unused_keys(&inventory);
    let patterns =
        engine::inventory::limit_terms(std::slice::from_ref(&args.pattern), std::path::Path::new("."))
            .map_err(Error::Usage)?;
    let hosts = inventory.resolve_patterns(&patterns).map_err(Error::Usage)?;
    let terminal = super::TerminalPassphrase::new(None);
    let checks = engine::adhoc::ping::ping(&inventory, &hosts, &super::ssh_defaults(&args.conn, &terminal)?);
    terminal.restore();
    let checks =
        checks.map_err(|e| Error::Io { what: "cannot start the async runtime".into(), source: e })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks).unwrap_or_default());
    } else {
        print!("{}", engine::report::printable(&engine::adhoc::ping::render(&checks)));
    }
    Ok(if checks.iter().all(|c| c.ok()) { ExitCode::SUCCESS } else { ExitCode::from(2) })
}
