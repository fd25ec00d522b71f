//! Command-line parsing, the choice of subscribers, and the one place errors are printed.

mod adhoc;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use engine::connect::SshDefaults;
use engine::events::Subscriber;
use engine::inventory::{Inventory, Vars};
use engine::plan::{DotEdges, Plan, PlanErrors, Selection};
use engine::playbook::{self, LoadOptions};
use engine::redact::{RedactingWriter, Redactor};
use engine::report::{Console, JsonLines, Log, ProgressPause, Timeline};
use engine::run::{RunOptions, RunSummary};
use engine::sched::Walker;
use engine::ssh::{AskPassphrase, HostKeyPolicy, KeyUnlocker, Keys, Secret};
use engine::{Error, journal, modules_doc, session};

/// `engine --version`: the package version and the commit it was built from (engine/build.rs):
/// `0.1.0 (abc1234 2026-12-07)`, `abc1234-dirty` when built from changed sources.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ENGINE_BUILD_COMMIT"), ")");

/// Configuration engine: Rhai playbooks become a task graph that runs over SSH, hosts in parallel.
#[derive(Debug, Parser)]
#[command(name = "engine", version = VERSION, about, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a playbook against the inventory's hosts.
    Run(RunArgs),
    /// Dry-run: report what `run` would change, and change nothing (same as `run --check`).
    Check(RunArgs),
    /// Run one command on the hosts a pattern selects, in parallel (Ansible's ad hoc
    /// `ansible PATTERN -a ...`): `engine exec -i INV 'web*' -- uptime`.
    Exec(adhoc::ExecArgs),
    /// Check the connection to each host (a doctor): TCP, the host key against known_hosts,
    /// the login, and sudo without a password, each failure with its fix.
    Ping(adhoc::PingArgs),
    /// Export the plan's task graph (DOT or SVG). Connects to nothing unless --check.
    Graph(GraphArgs),
    /// Show how the inventory was understood, as `ansible-inventory` does: groups, hosts and
    /// every host's merged variables (secrets hidden). `--list` when no view is named.
    Inventory(InventoryArgs),
    /// Document the modules and their arguments.
    Modules {
        /// Show the full reference of one module.
        name: Option<String>,
    },
    /// Draw a run's journal as a timeline (one lane per host, a bar per task), with its
    /// critical path, waits on other hosts, slowest tasks and failures: one self-contained
    /// HTML file (or the timeline alone as SVG).
    Report(ReportArgs),
    /// Write the Markdown reference (modules, playbook API, index), generated from the code.
    Docs {
        /// The folder to write into (created when missing); nothing is written outside it.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print the completion script of bash, zsh or fish on stdout.
    ///
    /// Load it with `source <(engine completions bash)`, or save it where the shell looks: bash
    /// /etc/bash_completion.d/engine (or ~/.local/share/bash-completion/completions/engine), zsh
    /// `_engine` in a folder of $fpath, fish ~/.config/fish/completions/engine.fish.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Write the man pages (engine.1, and engine-run.1 ... for each command) into a folder.
    ///
    /// The release archive ships them (`cargo xtask dist`); read one with `man ./engine.1`.
    Manpages {
        /// The folder to write into (created when missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// The playbook (a .rhai file). With `run --resume`, the journal's when omitted.
    playbook: Option<PathBuf>,
    /// The inventory: an Ansible INI or YAML file, or a folder of them, with `group_vars/` and
    /// `host_vars/` beside it. Repeatable: a later source's value for the same variable wins,
    /// and a run's journal records them all. With `run --resume`, the journal's when omitted.
    #[arg(short, long, value_name = "SOURCE")]
    inventory: Vec<PathBuf>,
    /// Variables for the playbook, read with param("KEY"), as Ansible reads `-e`: `KEY=VALUE`
    /// pairs (strings; several separated by spaces), a JSON or YAML map (`'{"n": 3}'`, typed), or
    /// `@FILE` (a YAML or JSON file, relative to the working directory). Repeatable; a later
    /// value for the same name wins.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    extra_vars: Vec<String>,
    /// Only tasks on the hosts this pattern selects, plus what they depend on. Ansible's
    /// patterns: names, globs (`web*`), `a:b` or `a,b` (either), `a:&b` (both), `a:!b` (not b),
    /// `~regex`, `group[0]`; `@FILE` reads one pattern per line (a retry file). A term that
    /// matches nothing is an error.
    #[arg(short, long, value_delimiter = ',')]
    limit: Option<Vec<String>>,
    /// Only tasks with one of these tags (comma-separated), plus what they depend on.
    #[arg(short, long, value_delimiter = ',')]
    tags: Option<Vec<String>>,
    /// Not the tasks with any of these tags (comma-separated), nor what only they bring in;
    /// a task whose output a kept task reads still runs.
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    skip_tags: Vec<String>,
    /// A folder of Rhai libraries for `import`, searched after the importing file's folder and
    /// `lib/` beside the playbook. Repeatable.
    #[arg(long = "lib", value_name = "DIR")]
    lib_dirs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct InventoryArgs {
    /// The inventory: an Ansible INI or YAML file, or a folder of them. Repeatable.
    #[arg(short, long, value_name = "SOURCE", required = true)]
    inventory: Vec<PathBuf>,
    /// Also read the `group_vars/` and `host_vars/` in this folder (a playbook's).
    #[arg(long, value_name = "DIR")]
    playbook_dir: Option<PathBuf>,
    /// Every group and host, with each host's variables under `_meta.hostvars` (JSON).
    #[arg(long, group = "view")]
    list: bool,
    /// One host's merged variables (JSON).
    #[arg(long, group = "view", value_name = "NAME")]
    host: Option<String>,
    /// The group tree.
    #[arg(long, group = "view")]
    graph: bool,
}

#[derive(Debug, Args)]
struct ConnArgs {
    /// Host-key checking: `strict` refuses hosts missing from known_hosts; `accept-new` learns them.
    /// Beats the inventory's and ssh_config's StrictHostKeyChecking; default: theirs, else strict.
    #[arg(long, value_enum)]
    host_key_checking: Option<KeyPolicy>,
    /// The OpenSSH client config file to read (Host/Match, HostName, User, Port, IdentityFile,
    /// ProxyJump, ...). Default: ~/.ssh/config when it exists. The inventory's values win over it.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// known_hosts file, for hosts whose inventory names none. Default: ~/.ssh/known_hosts.
    #[arg(long, value_name = "FILE")]
    known_hosts: Option<PathBuf>,
    /// Seconds allowed for connecting and authenticating (through every jump host). Default:
    /// ssh_config's ConnectTimeout, else 10.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    connect_timeout: Option<u64>,
    /// Seconds allowed for one remote command, unless a task says otherwise.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    command_timeout: u64,
    /// SSH channels open at once per host (stay under sshd's MaxSessions, 10 by default).
    #[arg(long, default_value_t = 6, value_name = "N")]
    max_channels: usize,
    /// MiB kept of each output stream (stdout, stderr) of one remote command. A command that
    /// prints more is stopped and fails, so no host can fill the controller's memory.
    #[arg(long, default_value_t = 64, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_output: u64,
    /// Ask for the become password (sudo's, or su's target user's) once, on the terminal,
    /// without echo; used for every become host whose inventory gives no ansible_become_password.
    #[arg(short = 'K', long)]
    ask_become_pass: bool,
    /// How commands reach an SSH host: `session` (the default) runs them through one small
    /// shell loop per connection (no channel, sshd session or login shell per command; become
    /// wraps the loop once; hosts with a become password use `exec`); `exec` opens a channel
    /// for each.
    #[arg(long, value_enum, default_value_t = TransportArg::Session)]
    transport: TransportArg,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    conn: ConnArgs,
    /// Report what would change and change nothing.
    #[arg(short = 'C', long)]
    check: bool,
    /// Show a unified diff of every file-like change.
    #[arg(short = 'D', long)]
    diff: bool,
    /// Tasks in flight at once, across all hosts.
    #[arg(short, long, default_value_t = 64, value_name = "N")]
    forks: usize,
    /// Tasks in flight at once on one host (only tasks that do not depend on each other overlap).
    #[arg(long, default_value_t = 4, value_name = "N")]
    per_host: usize,
    /// Stop starting tasks after the first failure.
    #[arg(long)]
    fail_fast: bool,
    /// Print events as JSON lines on stdout instead of the human display.
    #[arg(long)]
    json: bool,
    /// Rerun only what the run with this journal id (default: the latest, in .engine/runs/)
    /// did not finish, every task of a host that was unreachable, what depends on them, what
    /// changed since, and the tasks whose outputs those read. The rest is reported as "done in
    /// run ID", counted apart from this run.
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    resume: Option<String>,
    /// After the first Ctrl-C, seconds to wait for running tasks before abandoning them.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    grace: u64,
    /// `check` only: write the reviewed plan here (JSON, 0600): every task with what the
    /// dry-run predicted, the changes it would make, and keyed fingerprints of its inputs and of
    /// its planned changes, for `engine run --plan FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Apply exactly the plan reviewed with `engine check ... --out FILE`: refused before
    /// anything runs when the playbook, inventory, `-e` values or hosts make another plan; a
    /// task whose host no longer matches what was reviewed fails before changing anything. The
    /// playbook, inventory and selection are the plan's when omitted; give `-e` again.
    #[arg(long = "plan", value_name = "FILE", conflicts_with_all = ["resume", "check", "out"])]
    reviewed: Option<PathBuf>,
    /// At the end of the run (also when it failed or was interrupted), write its report here:
    /// the HTML of `engine report`.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The run (its journal's id, in .engine/runs/). Default: the latest.
    run_id: Option<String>,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// `html`: the whole report, one file that needs no network; `svg`: the timeline alone.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    format: ReportFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    Html,
    Svg,
}

#[derive(Debug, Args)]
struct GraphArgs {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    conn: ConnArgs,
    /// Output format. SVG needs Graphviz's `dot`.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Dry-run the plan first (connects to the hosts) and colour each task by its predicted outcome.
    #[arg(short = 'C', long)]
    check: bool,
    /// Draw every edge the scheduler follows. By default an ordering edge that another path
    /// already implies is left out (a transitive reduction), and so are the edges that keep each
    /// handler after the other tasks of its host; data, notify and serial edges are always drawn.
    #[arg(long)]
    all_edges: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Svg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyPolicy {
    Strict,
    AcceptNew,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum TransportArg {
    /// A channel (an sshd session and a login shell) for every command.
    Exec,
    /// One long-lived shell loop per host connection runs the commands (become wraps it once).
    #[default]
    Session,
}

/// Runs the command line and turns the result into the process's exit code.
pub(crate) fn main() -> ExitCode {
    // Usage errors exit 1 like every other invalid input; exit 2 means tasks failed.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    // The one redactor of this process: the playbook's secret() values, secret task outputs
    // and arguments go in; every log line, event, graph and error message goes through it.
    let redactor = Arc::new(Redactor::default());
    init_tracing(cli.verbose, redactor.clone());
    // Long messages stay on one line, so they can be grepped in CI logs.
    let _ =
        miette::set_hook(Box::new(|_| Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())));
    match dispatch(cli, &redactor) {
        Ok(code) => code,
        Err(error) => {
            // Errors may quote playbook values: secret ones are hidden here too.
            eprintln!("{}", redactor.redact(&render_error(error)));
            ExitCode::from(1)
        }
    }
}

/// An error as the user sees it. A playbook's errors come one by one, each with its place and
/// snippet, then how many there were (rather than nested under a header that repeats them).
fn render_error(error: Error) -> String {
    let summary = error.to_string();
    match error {
        Error::Plan(PlanErrors { errors, .. }) => {
            let mut out = String::new();
            for e in errors {
                out.push_str(&format!("{:?}\n", miette::Report::new(e)));
            }
            out.push_str(&summary);
            out
        }
        other => format!("{:?}", miette::Report::new(other)),
    }
}

fn init_tracing(verbose: u8, redactor: Arc<Redactor>) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || RedactingWriter::new(std::io::stderr(), redactor.clone()))
        .with_target(false)
        .try_init();
}

fn dispatch(cli: Cli, redactor: &Arc<Redactor>) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Run(args) => run_command(args, false, cli.verbose > 0, redactor),
        Command::Check(args) => run_command(args, true, cli.verbose > 0, redactor),
        Command::Graph(args) => graph_command(args, redactor),
        Command::Report(args) => report_command(args, redactor),
        Command::Exec(args) => adhoc::exec_command(args, redactor),
        Command::Ping(args) => adhoc::ping_command(args),
        Command::Modules { name } => {
            let text = match name {
                None => modules_doc::index(),
                Some(name) => modules_doc::module(&name).ok_or_else(|| {
                    let names = modules::registry::all().iter().map(|s| s.name);
                    match contract::suggest::did_you_mean(&name, names) {
                        near if near.is_empty() => {
                            Error::Usage(format!("no module named {name:?}; `engine modules` lists them"))
                        }
                        near => Error::Usage(format!("no module named {name:?}{near}")),
                    }
                })?,
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Inventory(args) => {
            let inventory = Inventory::load_all(&args.inventory, args.playbook_dir.as_deref())?;
            warn_unused_keys(&inventory);
            let text = if args.graph {
                inventory.graph_text()
            } else if let Some(name) = &args.host {
                let vars = inventory.host_json(name).ok_or_else(|| {
                    let hosts = inventory.hosts().iter().map(|h| h.name.as_str());
                    Error::Usage(format!(
                        "no host named {name:?} in the inventory{}",
                        contract::suggest::did_you_mean(name, hosts)
                    ))
                })?;
                json_text(&vars)
            } else {
                json_text(&inventory.list_json())
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Docs { out } => {
            let written = engine::docs::write(&out)?;
            println!("wrote {} pages to {}", written.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "engine", &mut script);
            std::io::stdout()
                .write_all(&script)
                .map_err(|source| Error::Io { what: "cannot write the completion script".into(), source })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpages { out } => {
            let io = |what: String| move |source| Error::Io { what, source };
            std::fs::create_dir_all(&out).map_err(io(format!("cannot create {}", out.display())))?;
            clap_mangen::generate_to(Cli::command(), &out)
                .map_err(io(format!("cannot write the man pages into {}", out.display())))?;
            println!("wrote the man pages to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line per `ansible_*` variable engine does not read, on stderr.
fn warn_unused_keys(inventory: &Inventory) {
    for unused in inventory.unused_keys() {
        eprintln!("warning: {unused}");
    }
}

fn json_text(value: &serde_json::Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default())
}

/// The `-e` variables of the command line, merged (see [`engine::inventory::parse_extra_vars`]).
fn extra_vars(args: &PlanArgs) -> Result<Vars, Error> {
    Ok(engine::inventory::parse_extra_vars(&args.extra_vars, Path::new("."))?)
}

/// Loads the inventory and the playbook, and applies --limit/--tags.
fn load_plan(args: &PlanArgs, extra_vars: Vars, redactor: &Arc<Redactor>) -> Result<Plan, Error> {
    let (Some(playbook), false) = (&args.playbook, args.inventory.is_empty()) else {
        return Err(Error::Usage("give a playbook and an inventory: PLAYBOOK -i INVENTORY".into()));
    };
    let inventory = Inventory::load_all(&args.inventory, playbook.parent())?;
    warn_unused_keys(&inventory);
    let options = LoadOptions {
        extra_vars,
        lib_dirs: args.lib_dirs.clone(),
        redactor: redactor.clone(),
        ..LoadOptions::default()
    };
    let plan = playbook::load(playbook, &inventory, &options)?;
    let hosts = match &args.limit {
        Some(patterns) => {
            let patterns = engine::inventory::limit_terms(patterns, Path::new(".")).map_err(Error::Usage)?;
            Some(inventory.resolve_patterns(&patterns).map_err(Error::Usage)?)
        }
        None => None,
    };
    Ok(plan.select(&Selection { hosts, tags: args.tags.clone(), skip_tags: args.skip_tags.clone() }))
}

/// The connection settings of the command line; key passphrases are asked on `terminal`.
fn ssh_defaults(conn: &ConnArgs, terminal: &Arc<TerminalPassphrase>) -> Result<SshDefaults, Error> {
    let become_password = if conn.ask_become_pass { Some(ask_become_password()?) } else { None };
    Ok(SshDefaults {
        host_key_policy: conn.host_key_checking.map(|policy| match policy {
            KeyPolicy::Strict => HostKeyPolicy::Strict,
            KeyPolicy::AcceptNew => HostKeyPolicy::AcceptNew,
        }),
        known_hosts: conn.known_hosts.clone(),
        connect_timeout: conn.connect_timeout.map(Duration::from_secs),
        ssh_config: conn.ssh_config.clone(),
        command_timeout: Duration::from_secs(conn.command_timeout),
        max_channels: conn.max_channels.max(1),
        max_output: conn.max_output * 1024 * 1024,
        become_password,
        keys: Keys(Arc::new(KeyUnlocker::new(terminal.clone()))),
        transport: match conn.transport {
            TransportArg::Exec => engine::ssh::CommandTransport::Exec,
            TransportArg::Session => engine::ssh::CommandTransport::Session,
        },
    })
}

/// Reads the become password from the controlling terminal (`/dev/tty`, not stdin), with echo
/// off, as `ansible -K` does. No terminal: a usage error saying what to do instead.
fn ask_become_password() -> Result<engine::elevate::Password, Error> {
    let line = read_secret("BECOME password: ", &EchoOff::default()).map_err(|e| {
        Error::Usage(format!(
            "-K (--ask-become-pass) asks on the terminal, and there is none ({e}); set \
             ansible_become_password in the inventory instead"
        ))
    })?;
    engine::elevate::Password::new(line.as_str())
        .map_err(|why| Error::Usage(format!("the become password cannot be used: {why}")))
}

/// Asks for key passphrases on the terminal ([`read_secret`]), the progress display hidden.
/// [`TerminalPassphrase::restore`] puts echo back if the run ended while a prompt waited.
#[derive(Default)]
struct TerminalPassphrase {
    pause: Option<ProgressPause>,
    echo_off: EchoOff,
}

impl TerminalPassphrase {
    fn new(pause: Option<ProgressPause>) -> Arc<Self> {
        Arc::new(Self { pause, echo_off: EchoOff::default() })
    }

    /// Call once the run is over: a prompt still waiting (Ctrl-C while it was shown) is
    /// abandoned, and the terminal gets its echo back.
    fn restore(&self) {
        self.echo_off.restore();
    }
}

impl AskPassphrase for TerminalPassphrase {
    fn ask(&self, prompt: &str) -> Result<Secret, String> {
        let read = || read_secret(prompt, &self.echo_off).map_err(|e| format!("no terminal: {e}"));
        match &self.pause {
            Some(pause) => pause.suspend(read),
            None => read(),
        }
    }
}

/// The terminal's settings from before a prompt turned echo off, while it is off.
#[derive(Default)]
struct EchoOff(std::sync::Mutex<Option<rustix::termios::Termios>>);

impl EchoOff {
    fn set(&self, saved: Option<rustix::termios::Termios>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = saved;
    }

    /// Puts the saved settings back, if echo is still off.
    fn restore(&self) {
        let saved = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(saved) = saved
            && let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty")
        {
            let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &saved);
            let _ = tty.write_all(b"\n");
        }
    }
}

/// Writes `prompt` on the controlling terminal (`/dev/tty`: stdin and stdout may be pipes) and
/// reads one line there with echo off (restored whatever happens; `echo_off` holds the settings
/// to restore meanwhile), as ssh and sudo do. The line comes without its line break, and is
/// wiped from memory when dropped.
fn read_secret(prompt: &str, echo_off: &EchoOff) -> std::io::Result<Secret> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::Read;
    let mut tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let saved = tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Flush, &quiet)?;
    echo_off.set(Some(saved.clone()));
    let mut line = Secret::new(String::new());
    let read = (|| {
        tty.write_all(prompt.as_bytes())?;
        tty.flush()?;
        // Byte by byte, into memory that is wiped: no buffer keeps a copy.
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        let mut byte = [0u8];
        loop {
            match tty.read(&mut byte)? {
                0 => break,
                _ if byte[0] == b'\n' => break,
                _ => bytes.push(byte[0]),
            }
        }
        zeroize::Zeroize::zeroize(&mut byte);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        line.push_str(&String::from_utf8_lossy(&bytes));
        Ok::<_, std::io::Error>(())
    })();
    // Echo comes back whatever happened.
    let restored = tcsetattr(&tty, OptionalActions::Now, &saved);
    echo_off.set(None);
    read?;
    restored?;
    Ok(line)
}

/// The exit code of an interrupted run, and of one the user would not wait for.
const INTERRUPTED: u8 = 130;

/// Runs `plan` over SSH with the given subscribers (see [`session::run_over_ssh`]); `None`
/// when the user would not even wait for an abandoned run to wind down.
fn execute(
    plan: &Plan,
    conn: &ConnArgs,
    options: RunOptions,
    grace: Duration,
    subscribers: Vec<Box<dyn Subscriber>>,
    redactor: &Arc<Redactor>,
    pause: Option<ProgressPause>,
) -> Result<Option<RunSummary>, Error> {
    let terminal = TerminalPassphrase::new(pause);
    let defaults = ssh_defaults(conn, &terminal)?;
    let outcome = session::run_over_ssh(plan, &defaults, options, grace, subscribers, redactor);
    terminal.restore();
    match outcome? {
        session::Outcome::Finished(summary) => Ok(Some(summary)),
        session::Outcome::Forced => {
            eprintln!("aborted");
            Ok(None)
        }
    }
}

fn run_command(
    mut args: RunArgs,
    check: bool,
    verbose: bool,
    redactor: &Arc<Redactor>,
) -> Result<ExitCode, Error> {
    let check = check || args.check;
    if check && args.report.is_some() {
        return Err(Error::Usage(
            "--report draws the run's journal, and a dry-run writes none: run without --check".into(),
        ));
    }
    if args.out.is_some() && !check {
        return Err(Error::Usage(
            "--out writes a reviewed plan: it goes with `engine check` (or `run --check`)".into(),
        ));
    }
    if args.reviewed.is_some() && check {
        return Err(Error::Usage(
            "--plan applies a reviewed plan: it goes with `engine run`, not check".into(),
        ));
    }
    let runs = Path::new(journal::RUNS_DIR);
    let vars = extra_vars(&args.plan)?;
    let reviewed = match &args.reviewed {
        Some(path) => Some(open_reviewed(runs, path, &mut args.plan, &vars)?),
        None => None,
    };
    // The workspace key: journals are sealed with it, and fingerprints keyed. A resume needs
    // the one its journal was written with; a run makes it on first use (once its playbook
    // loaded); a dry-run that resumes nothing needs none.
    let (resumed, key) = match args.resume.as_deref() {
        Some(id) => {
            let key = journal::JournalKey::load(runs)?;
            (Some(open_journal(runs, id, &mut args.plan, &vars, &key)?), Some(key))
        }
        None => (None, None),
    };
    let full = load_plan(&args.plan, vars.clone(), redactor)?;
    // What the journal and a reviewed plan record of this run.
    let inputs = journal::RunInputs::new(&given(&args.plan, &vars));
    let key = match key {
        None if !check || args.out.is_some() => Some(journal::JournalKey::load_or_create(runs)?),
        key => key,
    };
    let mut fingerprints =
        key.as_ref().map(|key| journal::fingerprint::fingerprints(&full, key)).unwrap_or_default();
    let (plan, carried) = match &resumed {
        Some(j) => {
            let (plan, carried) = journal::resume::select(&full, j, &fingerprints);
            (plan, Some(Arc::new(carried)))
        }
        None => (full, None),
    };
    let review = match (&reviewed, &key, &args.reviewed) {
        (Some(r), Some(key), Some(path)) => {
            r.matches(&plan, &fingerprints).map_err(|problems| journal::reviewed::ReviewError::Mismatch {
                path: path.clone(),
                problems,
            })?;
            let key = key.clone();
            let digest: engine::run::Digest =
                Arc::new(move |changes, diff| journal::reviewed::digest(&key, changes, diff));
            Some(Arc::new(engine::run::Reviewed { expected: r.expectations(), digest }))
        }
        _ => None,
    };
    let mut subscribers: Vec<Box<dyn Subscriber>> = vec![Box::new(Log)];
    let mut journal_path = None;
    let mut journal_id = None;
    // A dry-run changes nothing, so there is nothing to resume: no journal.
    if !check && let Some(key) = &key {
        let resumes = resumed.as_ref().map(|j| j.header.id.clone());
        // Not a dry-run, so no reviewed plan is written from them below.
        let header = journal::Header::new(inputs.clone(), resumes, std::mem::take(&mut fingerprints))
            .with_deps_of(&plan);
        let writer = journal::JournalWriter::create(runs, &header, key)?;
        journal_path = Some(writer.path().display().to_string());
        journal_id = Some(header.id);
        subscribers.push(Box::new(writer));
    }
    let mut pause = None;
    if args.json {
        subscribers.push(Box::new(JsonLines::new(std::io::stdout())));
    } else {
        let progress = std::io::stderr().is_terminal();
        let console = Console::new(progress, verbose, args.diff);
        pause = Some(console.pause());
        subscribers.push(Box::new(console));
    }
    // A reviewed plan's digests cover the diffs (what is on the host now): plan them.
    let reviewing = args.out.is_some() || review.is_some();
    let options = RunOptions {
        check,
        diff: args.diff || reviewing,
        walker: Walker { forks: args.forks, per_host: args.per_host, fail_fast: args.fail_fast },
        carried,
        journal: journal_path,
        capture_output: false,
        reviewed: review,
    };
    let summary =
        execute(&plan, &args.conn, options, Duration::from_secs(args.grace), subscribers, redactor, pause)?;
    if let (Some(out), Some(summary), Some(key)) = (&args.out, &summary, &key) {
        let reviewed = journal::reviewed::ReviewedPlan::new(
            &plan,
            &summary.reports,
            &fingerprints,
            inputs,
            key,
            redactor,
        );
        write_private(out, reviewed.to_json().as_bytes())?;
        eprintln!("reviewed plan: {} (apply it with `engine run --plan {}`)", out.display(), out.display());
    }
    // Whatever the outcome: the journal is closed (or, abandoned, holds what was done). A report
    // that cannot be written does not hide how the run went: its exit code stays, unless the
    // run succeeded.
    if let (Some(out), Some(id), Some(key)) = (&args.report, &journal_id, &key) {
        let written = journal::find(runs, id, key, "--report").map_err(Error::from).and_then(|journal| {
            write_private(out, Timeline::from_journal(&journal, redactor).html().as_bytes())
        });
        if let Err(e) = written {
            eprintln!("{}", redactor.redact(&render_error(e)));
            if summary.as_ref().is_some_and(|s| s.success() && !s.interrupted) {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(exit_code(summary.as_ref()))
}

/// `engine report`: the journal of a run (verified: a changed journal is refused) drawn.
fn report_command(args: ReportArgs, redactor: &Arc<Redactor>) -> Result<ExitCode, Error> {
    let runs = Path::new(journal::RUNS_DIR);
    let key = journal::JournalKey::load(runs)?;
    let journal = journal::find(runs, args.run_id.as_deref().unwrap_or_default(), &key, "engine report")?;
    let timeline = Timeline::from_journal(&journal, redactor);
    let text = match args.format {
        ReportFormat::Html => timeline.html(),
        ReportFormat::Svg => timeline.svg(),
    };
    match &args.output {
        Some(path) => write_private(path, text.as_bytes())?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Error::Io { what: "cannot write to stdout".into(), source: e })?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A run's exit code: 130 when interrupted (or never finished), 0 when every task succeeded,
/// 2 when a task failed or a host was unreachable.
fn exit_code(summary: Option<&RunSummary>) -> ExitCode {
    match summary {
        None => ExitCode::from(INTERRUPTED),
        Some(s) if s.interrupted => ExitCode::from(INTERRUPTED),
        Some(s) if s.success() => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(2),
    }
}

/// The journal `id` (the latest when empty) of `runs`, with the playbook, inventory and
/// selection of `plan` completed from it (and checked against it, where given).
fn open_journal(
    runs: &Path,
    id: &str,
    plan: &mut PlanArgs,
    vars: &Vars,
    key: &journal::JournalKey,
) -> Result<journal::Journal, Error> {
    let (journal, inputs) = journal::resume::open(runs, id, &given(plan, vars), key)?;
    take_inputs(plan, inputs);
    Ok(journal)
}

/// The reviewed plan at `path`, verified with the workspace key, with the playbook, inventory
/// and selection of `plan` completed from it (and checked against it, where given).
fn open_reviewed(
    runs: &Path,
    path: &Path,
    plan: &mut PlanArgs,
    vars: &Vars,
) -> Result<journal::reviewed::ReviewedPlan, Error> {
    let key = journal::JournalKey::load(runs)?;
    let (reviewed, inputs) = journal::reviewed::ReviewedPlan::open(path, &given(plan, vars), &key)?;
    take_inputs(plan, inputs);
    Ok(reviewed)
}

/// `plan` runs the recorded `inputs` (already checked against it): the `-e` values stay the
/// command line's.
fn take_inputs(plan: &mut PlanArgs, inputs: journal::RunInputs) {
    plan.inventory = inputs.inventories();
    plan.playbook = Some(inputs.playbook);
    plan.limit = inputs.limit;
    plan.tags = inputs.tags;
}

/// What the command line names of a run, as the journal compares and records it.
fn given<'a>(plan: &'a PlanArgs, vars: &'a Vars) -> journal::Given<'a> {
    journal::Given {
        playbook: plan.playbook.as_deref(),
        inventories: &plan.inventory,
        extra_vars: vars.keys().map(String::as_str).collect(),
        limit: plan.limit.as_deref(),
        tags: plan.tags.as_deref(),
    }
}

fn graph_command(args: GraphArgs, redactor: &Arc<Redactor>) -> Result<ExitCode, Error> {
    let plan = load_plan(&args.plan, extra_vars(&args.plan)?, redactor)?;
    let predictions = if args.check {
        let options = RunOptions {
            check: true,
            diff: false,
            walker: Walker { forks: 64, per_host: 4, fail_fast: false },
            carried: None,
            journal: None,
            capture_output: false,
            reviewed: None,
        };
        let log: Vec<Box<dyn Subscriber>> = vec![Box::new(Log)];
        match execute(&plan, &args.conn, options, Duration::from_secs(30), log, redactor, None)? {
            Some(summary) => Some(summary.predictions()),
            None => return Ok(ExitCode::from(INTERRUPTED)),
        }
    } else {
        None
    };
    let edges = if args.all_edges { DotEdges::All } else { DotEdges::Readable };
    let dot = plan.to_dot(predictions.as_deref(), redactor, edges);
    let bytes = match args.format {
        GraphFormat::Dot => dot.into_bytes(),
        GraphFormat::Svg => engine::graphviz::render_svg(&dot)?,
    };
    match &args.output {
        Some(path) => write_file(path, &bytes)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .map_err(|e| Error::Io { what: "cannot write to stdout".into(), source: e })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a new file at `path` only its owner may read (0600), replacing it.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| Error::Io { what: format!("cannot write {}", path.display()), source: e };
    let _ = std::fs::remove_file(path);
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::Io { what: format!("cannot write {}", path.display()), source: e })
}
