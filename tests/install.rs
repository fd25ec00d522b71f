//! What the release archive ships beside the binary (`cargo xtask dist`): shell completions, man
//! pages, and a `--version` that names the commit.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use crate::support::{Test, root};

/// The commands `engine --help` lists.
const COMMANDS: &[&str] = &[
    "run",
    "check",
    "exec",
    "ping",
    "graph",
    "report",
    "inventory",
    "modules",
    "docs",
    "completions",
    "manpages",
];

fn completions(shell: &str) -> String {
    let out = Test::new().args(["completions", shell]).run().success();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    out.stdout
}

/// `script` then `tail` in a fresh non-interactive bash; its stdout.
fn bash(script: &Path, tail: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source \"$1\" || exit 9\n{tail}"))
        .arg("bash")
        .arg(script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bash: {:?}\n{stderr}", out.status);
    assert!(stderr.is_empty(), "bash printed on stderr: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completions_bash_load_and_complete_commands_and_values() {
    let t = Test::new();
    let script = t.file("engine.bash", &completions("bash"));
    let syntax = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(syntax.status.success(), "bash -n: {}", String::from_utf8_lossy(&syntax.stderr));
    let registered = bash(&script, "complete -p engine");
    assert!(registered.contains("-F _engine") && registered.trim_end().ends_with(" engine"), "{registered}");
    // What bash's completion would offer: `engine ru<TAB>`, `engine completions <TAB>`,
    // `engine run --for<TAB>` (the function gets the command, the word, the word before).
    let offer = |words: &[&str]| {
        let array = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
        let cur = words[words.len() - 1];
        let prev = words[words.len() - 2];
        bash(
            &script,
            &format!(
                "COMP_WORDS=({array}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}\n\
                 _engine engine '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
                words.len() - 1,
                words.join(" ")
            ),
        )
    };
    assert_eq!(offer(&["engine", "ru"]).lines().collect::<Vec<_>>(), ["run"]);
    let shells = offer(&["engine", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.lines().any(|l| l == shell), "{shell} offered: {shells}");
    }
    assert_eq!(offer(&["engine", "run", "--for"]).lines().collect::<Vec<_>>(), ["--forks"]);
}

#[test]
fn completions_zsh_and_fish_name_every_command() {
    let zsh = completions("zsh");
    assert!(zsh.starts_with("#compdef engine\n"), "{}", &zsh[..zsh.len().min(200)]);
    let fish = completions("fish");
    assert!(fish.contains("complete -c engine "), "{}", &fish[..fish.len().min(200)]);
    for command in COMMANDS {
        // zsh: `'run:Run a playbook...'`; fish: `-a "run" -d 'Run a playbook...'`.
        assert!(zsh.contains(&format!("'{command}:")), "zsh names {command}");
        assert!(fish.contains(&format!("-a \"{command}\"")), "fish names {command}");
    }
    // The shells themselves check the syntax where they are installed.
    for (shell, script) in [("zsh", &zsh), ("fish", &fish)] {
        let t = Test::new();
        let file = t.file("completion", script);
        if let Ok(out) = Command::new(shell).arg("-n").arg(&file).output() {
            assert!(out.status.success(), "{shell} -n: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn completions_refuse_other_shells() {
    Test::new()
        .args(["completions", "powershell"])
        .run()
        .failure()
        .stderr_has("possible values: bash, zsh, fish");
}

/// `git` in the workspace, trimmed stdout; None when git cannot run there.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root()).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let line = Test::new().arg("--version").run().success().stdout;
    let package = env!("CARGO_PKG_VERSION");
    let built = line
        .strip_prefix(&format!("engine {package} ("))
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("`engine {package} (COMMIT)`: {line:?}"));
    // The same checks as engine/build.rs: a git checkout names its HEAD; otherwise the builder's
    // ENGINE_COMMIT, else `unknown`.
    let head = root().join(".git").exists().then(|| git(&["rev-parse", "HEAD"])).flatten();
    let Some(head) = head else {
        let expected = std::env::var("ENGINE_COMMIT").unwrap_or_else(|_| "unknown".to_owned());
        assert_eq!(built, expected.trim(), "no git checkout here");
        return;
    };
    let (commit, date) = built.split_once(' ').unwrap_or_else(|| panic!("`HASH DATE`: {built:?}"));
    let dirty =
        git(&["status", "--porcelain", "--", "Cargo.toml", "Cargo.lock", "contract", "engine", "modules"])
            .is_some_and(|s| !s.is_empty());
    let hash = if dirty {
        commit.strip_suffix("-dirty").unwrap_or_else(|| panic!("the sources differ from HEAD: {built:?}"))
    } else {
        assert!(!commit.ends_with("-dirty"), "the sources are HEAD's: {built:?}");
        commit
    };
    assert!(hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{built:?}");
    assert!(head.starts_with(hash), "{hash} is HEAD ({head})");
    assert_eq!(Some(date.to_owned()), git(&["log", "-1", "--format=%cs", "HEAD"]), "the commit's date");
    // Every command says the same.
    Test::new()
        .args(["run", "--version"])
        .run()
        .success()
        .stdout_has(&format!("engine-run {package} ({built})"));
}

#[test]
fn manpages_cover_every_command_and_name_the_version() {
    let t = Test::new();
    let out = t.path().join("man");
    Test::new().arg("manpages").arg("--out").arg(&out).run().success();
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = std::iter::once("engine.1".to_owned())
        .chain(COMMANDS.iter().map(|c| format!("engine-{c}.1")))
        .collect();
    expected.sort();
    assert_eq!(pages, expected);
    let main = std::fs::read_to_string(out.join("engine.1")).unwrap();
    assert!(main.starts_with(".ie \\n(.g .ds Aq \\(aq\n"), "roff: {}", &main[..main.len().min(200)]);
    assert!(main.contains(&format!(".TH engine 1  \"engine {} (", env!("CARGO_PKG_VERSION"))), "{main}");
    assert!(main.contains("engine\\-run(1)"), "the commands' pages are named: {main}");
    let run = std::fs::read_to_string(out.join("engine-run.1")).unwrap();
    assert!(run.contains("\\-\\-forks"), "run's options: {run}");
}

/// The release archive (`cargo xtask dist`, which `cargo xtask test` builds before the bare
/// lab's phase and names in `ENGINE_DIST_ARCHIVE`) on a bare Debian 12 host and a bare Debian 13
/// host, as their login user: it unpacks, the binary starts (`--version` names the commit,
/// `modules` lists the modules), its bash completions load, and host names resolve (a `ping`
/// of `localhost` reaches the TCP step).
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn install_the_release_archive_runs_on_bare_debian_12_and_13_hosts() {
    let lab = crate::support::bare::bare_lab();
    let Some(archive) = std::env::var_os("ENGINE_DIST_ARCHIVE") else {
        panic!(
            "ENGINE_DIST_ARCHIVE is not set: run `cargo xtask dist` and set it to the .tar.gz (cargo xtask test does)"
        );
    };
    let bytes = std::fs::read(&archive).unwrap();
    let mut hosts: Vec<&str> = Vec::new();
    for release in [12, 13] {
        let host = crate::support::bare::ALL
            .into_iter()
            .find(|h| lab.debian(h) == release)
            .unwrap_or_else(|| panic!("the bare lab has no Debian {release} host"));
        hosts.push(host);
    }
    let dir = format!("/tmp/engine-dist-{}", std::process::id());
    for host in hosts {
        let login = lab.login.clone();
        lab.ssh_as(&login, host, &format!("rm -rf {dir} && mkdir -p {dir}"));
        lab.ssh_with_input_as(&login, host, &format!("cat > {dir}/engine.tar.gz"), &bytes);
        let script = format!(
            "set -e; cd {dir}; tar -xzf engine.tar.gz; cd engine-*-x86_64-linux; \
             ./bin/engine --version; ./bin/engine modules | grep -c '^  [a-z_]\\+ ' ; \
             source completions/engine.bash; complete -p engine; \
             printf 'all:\\n  hosts:\\n    me: {{ansible_host: localhost, ansible_port: 1}}\\n' > {dir}/inv.yml; \
             ./bin/engine ping -i {dir}/inv.yml 2>&1 || true"
        );
        let (code, out, stderr) =
            lab.ssh_status_as(&login, host, &format!("bash -c {}", shell_quote(&script)));
        assert_eq!(code, Some(0), "{host}: {out}\n{stderr}");
        let out = format!("{out}\n(stderr: {stderr})");
        let version = out.lines().next().unwrap_or_default();
        assert!(version.starts_with("engine ") && version.contains('('), "{host}: {out}");
        let commit = git(&["rev-parse", "--short=7", "HEAD"]);
        if let Some(commit) = commit {
            assert!(version.contains(&commit), "{host}: the archive's binary names {commit}: {out}");
        }
        let modules: usize = out.lines().nth(1).unwrap_or_default().trim().parse().unwrap_or(0);
        assert!(modules >= 10, "{host}: `engine modules` listed {modules}: {out}");
        assert!(out.contains("-F _engine engine"), "{host}: completions: {out}");
        assert!(out.contains("Connection refused"), "{host}: localhost resolved and refused: {out}");
        lab.ssh_as(&login, host, &format!("rm -rf {dir}"));
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}
