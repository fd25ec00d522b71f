//! Live tests against a real sshd, ignored by default: a plain `cargo test` lists them as
//! ignored. `cargo xtask test` runs them (`--include-ignored`) against the first host of the lab,
//! setting the variables below; by hand, with a lab up:
//!
//! ```text
//! ENGINE_SSH_TEST_ADDR=10.77.0.11 \
//! ENGINE_SSH_TEST_KEY=$PWD/target/lab/id_ed25519 \
//! ENGINE_SSH_TEST_KNOWN_HOSTS=$PWD/target/lab/known_hosts \
//!   cargo test -p engine --lib ssh::tests -- --ignored --nocapture
//! ```
//!
//! `ENGINE_SSH_TEST_ADDR` is `address` or `address:port`; `ENGINE_SSH_TEST_USER` defaults to
//! `root`. Give absolute paths: cargo runs the tests from `engine/`. Without
//! `ENGINE_SSH_TEST_ADDR` a test run anyway fails, naming the variable. The tests may run side by
//! side on one host: each kills or looks for its own `sleep` only.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{Exec, Host, HostError};

use super::{HostKeyPolicy, SshConfig, SshHost};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The config from the environment; panics when `ENGINE_SSH_TEST_ADDR` is not set or not valid.
fn live_config() -> SshConfig {
    init_tracing();
    let Ok(target) = std::env::var("ENGINE_SSH_TEST_ADDR") else {
        panic!(
            "ENGINE_SSH_TEST_ADDR is not set: this test needs a live sshd (see the header of ssh/tests.rs)"
        );
    };
    let (address, port) = match target.rsplit_once(':') {
        Some((address, port)) if !address.contains(':') => {
            let port = port.parse().unwrap_or_else(|_| panic!("ENGINE_SSH_TEST_ADDR={target}: bad port"));
            (address.to_owned(), port)
        }
        _ => (target, 22),
    };
    let mut config =
        SshConfig::new(address, std::env::var("ENGINE_SSH_TEST_USER").unwrap_or_else(|_| "root".into()));
    config.port = port;
    config.key_file = std::env::var_os("ENGINE_SSH_TEST_KEY").map(PathBuf::from);
    if let Some(path) = std::env::var_os("ENGINE_SSH_TEST_KNOWN_HOSTS") {
        config.known_hosts = PathBuf::from(path);
    }
    config.command_timeout = Duration::from_secs(60);
    config
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=engine::ssh=debug`).
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

fn live_host() -> SshHost {
    SshHost::new("live".into(), live_config())
}

fn deterministic_bytes(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn echo_round_trip() -> TestResult {
    let host = live_host();
    let out = host.exec(Exec::new("echo hello; printf 'x y'")).await?;
    assert_eq!(out.status, Some(0));
    assert_eq!(out.stdout, b"hello\nx y");
    assert!(out.stderr.is_empty());
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn stdin_and_stdout_of_5_mib() -> TestResult {
    let host = live_host();
    let data = deterministic_bytes(5 * 1024 * 1024);

    let expected = {
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        child.stdin.take().ok_or("no stdin")?.write_all(&data)?;
        String::from_utf8(child.wait_with_output()?.stdout)?
    };
    let out = host.exec(Exec::new("cat | sha256sum").stdin(data.clone())).await?;
    assert_eq!(out.status, Some(0));
    assert_eq!(out.stdout_text(), expected.trim_end());

    // 5 MiB in and 5 MiB out at the same time: reading and writing must not block each other.
    let start = Instant::now();
    let out = host.exec(Exec::new("cat").stdin(data.clone())).await?;
    eprintln!("cat of 5 MiB round trip: {:?}", start.elapsed());
    assert_eq!(out.status, Some(0));
    assert!(out.stdout == data, "cat returned {} bytes, not the 5 MiB sent", out.stdout.len());

    // Large output with no stdin at all.
    let out = host.exec(Exec::new("head -c 8388608 /dev/zero")).await?;
    assert_eq!(out.stdout.len(), 8 * 1024 * 1024);

    // A command that ignores its stdin still finishes.
    let out = host.exec(Exec::new("true").stdin(data)).await?;
    assert_eq!(out.status, Some(0));
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn stderr_and_exit_status() -> TestResult {
    let host = live_host();
    let out = host.exec(Exec::new("echo out; echo oops >&2; exit 3")).await?;
    assert_eq!(out.status, Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"oops\n");

    let out = host.exec(Exec::new("kill -9 $$")).await?;
    assert_eq!(out.status, None, "killed by a signal: no status");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn concurrent_execs_share_one_connection() -> TestResult {
    for max_channels in [6, 10] {
        let mut config = live_config();
        config.max_channels = max_channels;
        let host = Arc::new(SshHost::new("live".into(), config));

        // 20 at once on a fresh host: one connect (same client port everywhere), channels
        // bounded, MaxSessions refusals retried.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..20 {
            let host = Arc::clone(&host);
            set.spawn(async move {
                host.exec(Exec::new(format!(
                    "sleep 0.2; echo {i} ${{SSH_CONNECTION%% *}} ${{SSH_CONNECTION#* }}"
                )))
                .await
            });
        }
        let mut client_ends = std::collections::BTreeSet::new();
        let mut seen = Vec::new();
        while let Some(joined) = set.join_next().await {
            let out = joined??;
            assert_eq!(out.status, Some(0), "stderr: {}", out.stderr_tail(3));
            let text = out.stdout_text();
            let mut words = text.split_whitespace();
            seen.push(words.next().ok_or("no index")?.parse::<u32>()?);
            let client = words.next().ok_or("no SSH_CONNECTION")?.to_owned();
            let port = words.next().ok_or("no client port")?.to_owned();
            client_ends.insert(format!("{client}:{port}"));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert_eq!(client_ends.len(), 1, "all commands on one connection: {client_ends:?}");

        // Churn: many short channels opening and closing at once.
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let host = Arc::clone(&host);
            set.spawn(async move { host.exec(Exec::new("true")).await });
        }
        while let Some(joined) = set.join_next().await {
            assert_eq!(joined??.status, Some(0));
        }
        eprintln!("max_channels {max_channels}: 200 concurrent `true` in {:?}", start.elapsed());
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn timeout_kills_the_remote_command() -> TestResult {
    let host = live_host();
    let start = Instant::now();
    let result = host.exec(Exec::new("sleep 30").timeout(Duration::from_secs(1))).await;
    assert_eq!(result, Err(HostError::Timeout(Duration::from_secs(1))));
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());

    // The bracket keeps pgrep from matching its own shell's command line.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = host.exec(Exec::new("pgrep -af 'sleep 3[0]'")).await?;
    assert_eq!(out.status, Some(1), "sleep 30 still running: {}", out.stdout_text());

    // The same through a pipeline and a subshell: the whole process group dies.
    let result = host.exec(Exec::new("(sleep 30; echo late) | cat").timeout(Duration::from_secs(1))).await;
    assert_eq!(result, Err(HostError::Timeout(Duration::from_secs(1))));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = host.exec(Exec::new("pgrep -af 'sleep 3[0]'")).await?;
    assert_eq!(out.status, Some(1), "sleep 30 still running: {}", out.stdout_text());
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn cancelled_exec_kills_the_remote_command() -> TestResult {
    let host = live_host();
    // `sleep 31`, not the timeout test's `sleep 30`: the two may run side by side on one host.
    let cancelled = tokio::time::timeout(Duration::from_secs(1), host.exec(Exec::new("sleep 31"))).await;
    assert!(cancelled.is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = host.exec(Exec::new("pgrep -af 'sleep 3[1]'")).await?;
    assert_eq!(out.status, Some(1), "sleep 31 still running: {}", out.stdout_text());
    Ok(())
}

/// A command that prints past `max_output` is stopped (its group killed), and fails naming the
/// command, the stream and the limit; nothing of it is kept.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn output_past_the_limit_stops_the_command_and_fails() -> TestResult {
    let mut config = live_config();
    config.max_output = 1024 * 1024;
    let host = SshHost::new("live".into(), config);
    // `exec 3<&-` makes the line unique for pgrep without changing what runs.
    let command = "exec 3<&-; cat /dev/zero";
    let result = host.exec(Exec::new(command)).await;
    assert_eq!(
        result,
        Err(HostError::OutputLimit {
            command: command.into(),
            stream: contract::Stream::Stdout,
            limit: 1024 * 1024
        })
    );
    let out = host.exec(Exec::new("echo too much >&2; head -c 2097152 /dev/zero >&2")).await;
    assert!(matches!(out, Err(HostError::OutputLimit { stream: contract::Stream::Stderr, .. })), "{out:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = host.exec(Exec::new("pgrep -af 'cat /dev/zer[o]'")).await?;
    assert_eq!(out.status, Some(1), "cat still running: {}", out.stdout_text());
    // The connection is fine afterwards.
    assert_eq!(host.exec(Exec::new("echo ok")).await?.stdout_text(), "ok");
    Ok(())
}

/// Under become (a non-root login, sudo to root), a command that times out is killed as root:
/// the root processes sudo started are gone too, not only the login user's shell.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn timeout_under_become_kills_the_root_processes() -> TestResult {
    let root = live_host();
    let mut config = live_config();
    config.user = "deploy".into();
    config.become_user = Some("root".into());
    let host = SshHost::new("live".into(), config);
    assert_eq!(host.exec(Exec::new("id -u")).await?.stdout_text(), "0", "runs as root");

    // `sleep 33`: unique among the tests that may run side by side on the host.
    let result = host.exec(Exec::new("sleep 33; echo late").timeout(Duration::from_secs(2))).await;
    assert_eq!(result, Err(HostError::Timeout(Duration::from_secs(2))));
    let mut left = String::new();
    for _ in 0..20 {
        let out = root.exec(Exec::new("pgrep -af 'sleep 3[3]'")).await?;
        if out.status == Some(1) {
            return Ok(());
        }
        left = out.stdout_text();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("sleep 33 still running as: {left}").into())
}

/// Copies the configured known_hosts into a temp file, with `edit` applied.
fn known_hosts_copy(
    config: &SshConfig,
    edit: impl FnOnce(String) -> String,
) -> Result<tempfile::TempPath, Box<dyn std::error::Error>> {
    let original = std::fs::read_to_string(&config.known_hosts)?;
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(edit(original).as_bytes())?;
    Ok(file.into_temp_path())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn unknown_host_key_is_refused_and_accept_new_learns_it() -> TestResult {
    let mut config = live_config();
    let empty = known_hosts_copy(&config, |_| "# nothing here\n".into())?;
    config.known_hosts = empty.to_path_buf();

    let err = SshHost::new("live".into(), config.clone()).connect().await.err().ok_or("connected")?;
    let HostError::Unreachable(msg) = &err else {
        return Err(format!("{err:?}").into());
    };
    eprintln!("{msg}");
    assert!(msg.contains("is not in") && msg.contains("ssh-keyscan") && msg.contains("accept-new"), "{msg}");

    config.host_key_policy = HostKeyPolicy::AcceptNew;
    SshHost::new("live".into(), config.clone()).connect().await?;
    let learned = std::fs::read_to_string(&config.known_hosts)?;
    assert_eq!(learned.lines().count(), 2, "{learned}");

    config.host_key_policy = HostKeyPolicy::Strict;
    SshHost::new("live".into(), config).connect().await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn changed_host_key_is_refused_with_the_line() -> TestResult {
    let mut config = live_config();
    let name = super::known_hosts::host_pattern(&config.address, config.port);
    // A random ed25519 key from russh's tests, filed under this host at line 3.
    let bogus = format!(
        "# comment\n\n{name} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n"
    );
    let changed = known_hosts_copy(&config, |_| bogus)?;
    config.known_hosts = changed.to_path_buf();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        config.host_key_policy = policy;
        let err = SshHost::new("live".into(), config.clone()).connect().await.err().ok_or("connected")?;
        let HostError::Unreachable(msg) = &err else {
            return Err(format!("{err:?}").into());
        };
        eprintln!("{msg}");
        assert!(msg.contains("CHANGED") && msg.contains("line 3"), "{msg}");
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn failed_connect_is_reported_once_and_sticks() -> TestResult {
    let mut config = live_config();
    config.key_file = Some(PathBuf::from("/nonexistent/id_ed25519"));
    let host = SshHost::new("live".into(), config);
    let first = host.exec(Exec::new("true")).await;
    let Err(HostError::Unreachable(msg)) = &first else {
        return Err(format!("{first:?}").into());
    };
    assert!(msg.contains("live (root@") && msg.contains("/nonexistent/id_ed25519"), "{msg}");
    assert_eq!(host.exec(Exec::new("true")).await, first);
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn latency_of_true() -> TestResult {
    let host = live_host();
    let start = Instant::now();
    host.connect().await?;
    eprintln!("connect + auth: {:?}", start.elapsed());
    let mut times = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        assert_eq!(host.exec(Exec::new("true")).await?.status, Some(0));
        times.push(start.elapsed());
    }
    times.sort_unstable();
    eprintln!(
        "`true` x50 on one connection: min {:?}, median {:?}, p90 {:?}, max {:?}",
        times[0], times[25], times[45], times[49]
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn lost_connection_reconnects_once() -> TestResult {
    let host = live_host();
    // $PPID of the command's shell is the sshd process serving this connection.
    let kill_connection = || host.exec(Exec::new("kill -9 $PPID"));
    // The command that was running when its connection died fails as unreachable (it is not
    // retried: it may not be idempotent), and the next command reconnects.
    let first = kill_connection().await;
    assert!(
        matches!(&first, Err(HostError::Unreachable(msg)) if msg.contains("lost while the command ran")),
        "{first:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(host.exec(Exec::new("echo back")).await?.stdout_text(), "back");

    let _ = kill_connection().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = host.exec(Exec::new("true")).await;
    assert!(matches!(&again, Err(HostError::Unreachable(msg)) if msg.contains("lost again")), "{again:?}");
    Ok(())
}

/// The password of the `become-pw` user the become tests create (sudo asks for it), and root's
/// (which `su` asks for), on the test host. Test-only values on a throwaway lab host.
const BECOME_PW_USER: &str = "becomepw";
const BECOME_PW: &str = "Pw-of-becomepw-4711";
const ROOT_PW: &str = "Root-pw-4711";

/// Creates, once per host boot (idempotent, under a lock on the host), a user whose sudo rule
/// needs a password, with the lab's key, and gives root a password for `su`. When OpenDoas is
/// installed, `deploy` gets a `nopass` rule and `becomepw` a password rule.
async fn become_users(root: &SshHost) -> TestResult {
    let script = format!(
        "flock /tmp/engine-become-setup.lock sh -ec '
id {BECOME_PW_USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {BECOME_PW_USER}
echo {BECOME_PW_USER}:{BECOME_PW} | chpasswd
echo root:{ROOT_PW} | chpasswd
echo \"{BECOME_PW_USER} ALL=(ALL) ALL\" >/etc/sudoers.d/{BECOME_PW_USER}
chmod 0440 /etc/sudoers.d/{BECOME_PW_USER}
install -d -m 0700 -o {BECOME_PW_USER} /home/{BECOME_PW_USER}/.ssh
install -m 0600 -o {BECOME_PW_USER} /root/.ssh/authorized_keys /home/{BECOME_PW_USER}/.ssh/authorized_keys
id postgres >/dev/null 2>&1 || useradd --system --create-home --shell /bin/sh postgres
if command -v doas >/dev/null; then
  printf \"permit nopass deploy as root\\npermit {BECOME_PW_USER} as root\\n\" >/etc/doas.conf
  chmod 0400 /etc/doas.conf
fi'"
    );
    let out = root.exec(Exec::new(script)).await?;
    assert!(out.success(), "setup failed: {}", out.stderr_tail(5));
    Ok(())
}

fn become_config(user: &str, method: crate::elevate::Method, password: Option<&str>) -> SshConfig {
    let mut config = live_config();
    config.user = user.into();
    config.become_user = Some("root".into());
    config.become_method = method;
    config.become_password = password.map(|p| crate::elevate::Password::new(p).unwrap());
    config
}

/// Under sudo with a password, a command's stdin reaches it byte for byte, however it looks: a
/// first line that is the password itself, a bare newline, every byte value. The password is
/// only ever written to sudo, never to the command.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn become_sudo_password_keeps_binary_stdin_exact() -> TestResult {
    let root = live_host();
    become_users(&root).await?;
    let host = SshHost::new(
        "live".into(),
        become_config(BECOME_PW_USER, crate::elevate::Method::Sudo, Some(BECOME_PW)),
    );
    assert_eq!(host.exec(Exec::new("id -u")).await?.stdout_text(), "0", "runs as root");
    let mut bytes = format!("{BECOME_PW}\n\n").into_bytes();
    bytes.extend((0..=255u8).cycle().take(4096));
    bytes.extend(deterministic_bytes(1 << 20));
    let out = host.exec(Exec::new("cat").stdin(bytes.clone())).await?;
    assert!(out.success(), "{}", out.stderr_tail(3));
    assert!(out.stdout == bytes, "stdin arrived changed ({} bytes of {})", out.stdout.len(), bytes.len());
    assert!(
        out.stderr.is_empty(),
        "sudo's prompt is not the command's stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Commands side by side each get their own exchange.
    let host = Arc::new(host);
    let runs: Vec<_> = (0..8)
        .map(|i| {
            let host = Arc::clone(&host);
            tokio::spawn(async move { host.exec(Exec::new("cat").stdin(format!("n{i}").into_bytes())).await })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        assert_eq!(run.await??.stdout_text(), format!("n{i}"));
    }
    Ok(())
}

/// A wrong sudo password fails the host at its first command with one clear reason, and is
/// sent once: sudo logs one failed attempt, and later commands fail at once with the same
/// reason without asking sudo again.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn become_sudo_wrong_password_fails_once_clearly() -> TestResult {
    let root = live_host();
    become_users(&root).await?;
    let host = SshHost::new(
        "live".into(),
        become_config(BECOME_PW_USER, crate::elevate::Method::Sudo, Some("not-it-9")),
    );
    let expected = HostError::Unreachable(format!("sudo on live: incorrect password (as {BECOME_PW_USER})"));
    assert_eq!(host.exec(Exec::new("touch /root/never")).await, Err(expected.clone()));
    assert_eq!(host.exec(Exec::new("touch /root/never")).await, Err(expected));
    let never = root.exec(Exec::new("test -e /root/never")).await?;
    assert_eq!(never.status, Some(1), "nothing ran");
    // Without a password, sudo says what it needs.
    let host = SshHost::new("live".into(), become_config(BECOME_PW_USER, crate::elevate::Method::Sudo, None));
    let error = host.exec(Exec::new("true")).await.unwrap_err().to_string();
    assert!(error.contains("sudo on live: a password is required (as becomepw); give it with -K"), "{error}");
    Ok(())
}

/// A command that times out under password sudo is killed as root (the kill goes through the
/// same sudo, answering its prompt), leaving no process.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn become_sudo_password_timeout_kills_the_root_processes() -> TestResult {
    let root = live_host();
    become_users(&root).await?;
    let host = SshHost::new(
        "live".into(),
        become_config(BECOME_PW_USER, crate::elevate::Method::Sudo, Some(BECOME_PW)),
    );
    let result = host.exec(Exec::new("sleep 34; echo late").timeout(Duration::from_secs(2))).await;
    assert_eq!(result, Err(HostError::Timeout(Duration::from_secs(2))));
    gone(&root, "sleep 3[4]").await
}

/// Waits up to 2 s for no process to match `pattern`.
async fn gone(root: &SshHost, pattern: &str) -> TestResult {
    let mut left = String::new();
    for _ in 0..20 {
        let out = root.exec(Exec::new(format!("pgrep -af '{pattern}'"))).await?;
        if out.status == Some(1) {
            return Ok(());
        }
        left = out.stdout_text();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("still running: {left}").into())
}

/// `su` with root's password: commands run as root with their stdin exact and separate
/// streams; a timed-out one is killed; a wrong password fails once, clearly.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn become_su_with_a_password() -> TestResult {
    let root = live_host();
    become_users(&root).await?;
    let host =
        SshHost::new("live".into(), become_config("deploy", crate::elevate::Method::Su, Some(ROOT_PW)));
    let out = host.exec(Exec::new("id -u; echo err >&2; exit 3")).await?;
    assert_eq!((out.status, out.stdout_text(), out.stderr_tail(1)), (Some(3), "0".into(), "err".into()));
    let mut bytes = format!("{ROOT_PW}\n").into_bytes();
    bytes.extend((0..=255u8).cycle().take(70_000));
    assert!(host.exec(Exec::new("cat").stdin(bytes.clone())).await?.stdout == bytes, "stdin exact");
    let result = host.exec(Exec::new("sleep 35; echo late").timeout(Duration::from_secs(2))).await;
    assert_eq!(result, Err(HostError::Timeout(Duration::from_secs(2))));
    gone(&root, "sleep 3[5]").await?;

    let host =
        SshHost::new("live".into(), become_config("deploy", crate::elevate::Method::Su, Some("wrong-8")));
    let error = host.exec(Exec::new("true")).await.unwrap_err().to_string();
    assert!(error.starts_with("host unreachable: su on live: incorrect password (of root)"), "{error}");
    let host = SshHost::new("live".into(), become_config("deploy", crate::elevate::Method::Su, None));
    let error = host.exec(Exec::new("true")).await.unwrap_err().to_string();
    assert!(error.contains("su on live: root's password is required"), "{error}");
    Ok(())
}

/// `doas -n` with a `nopass` rule runs commands as root, stdin exact, and kills a timed-out
/// one; a rule that wants a password fails naming the `permit nopass` rule to add.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn become_doas_nopass_and_a_password_rule() -> TestResult {
    let root = live_host();
    become_users(&root).await?;
    let doas = root.exec(Exec::new("command -v doas")).await?;
    assert!(doas.success(), "opendoas is in the lab image (xtask/src/image.rs)");
    let host = SshHost::new("live".into(), become_config("deploy", crate::elevate::Method::Doas, None));
    assert_eq!(host.exec(Exec::new("id -u")).await?.stdout_text(), "0");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    assert!(host.exec(Exec::new("cat").stdin(bytes.clone())).await?.stdout == bytes, "stdin exact");
    let result = host.exec(Exec::new("sleep 36; echo late").timeout(Duration::from_secs(2))).await;
    assert_eq!(result, Err(HostError::Timeout(Duration::from_secs(2))));
    gone(&root, "sleep 3[6]").await?;
    let host = SshHost::new("live".into(), become_config(BECOME_PW_USER, crate::elevate::Method::Doas, None));
    let error = host.exec(Exec::new("true")).await.unwrap_err().to_string();
    assert!(error.contains("`permit nopass becomepw as root` in /etc/doas.conf"), "{error}");
    Ok(())
}

/// become_user other than root: sudo to `postgres` (no password: deploy's NOPASSWD rule).
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn become_sudo_to_another_user() -> TestResult {
    let root = live_host();
    become_users(&root).await?;
    let mut config = become_config("deploy", crate::elevate::Method::Sudo, None);
    config.become_user = Some("postgres".into());
    let host = SshHost::new("live".into(), config);
    assert_eq!(host.exec(Exec::new("id -un; cd && pwd")).await?.stdout_text(), "postgres\n/home/postgres");
    Ok(())
}

// ---- The session transport (`--transport session`, ssh/session.rs) ----

fn session_config() -> SshConfig {
    let mut config = live_config();
    config.transport = super::CommandTransport::Session;
    config
}

fn session_host() -> SshHost {
    SshHost::new("live".into(), session_config())
}

/// Prints the pid of the outermost process above the command whose command line carries the
/// session loop's tag: the loop's shell, or under become the method (sudo) that started it.
/// Empty when the command did not run in a session.
const SESSION_PID: &str = "p=$$; top=; while [ \"$p\" -gt 1 ]; do \
     if tr '\\0' ' ' </proc/$p/cmdline | grep -q 'engine-sessio[n]'; then top=$p; fi; \
     p=$(cut -d' ' -f4 /proc/$p/stat); done; echo \"$top\"";

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn session_statuses_streams_and_binary_stdin() -> TestResult {
    let host = session_host();
    let out = host.exec(Exec::new("echo out; echo err >&2; exit 3")).await?;
    assert_eq!(
        (out.status, out.stdout.as_slice(), out.stderr.as_slice()),
        (Some(3), &b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(host.exec(Exec::new("true")).await?.status, Some(0));

    // Every byte value, in and out, exactly.
    let all: Vec<u8> = (0..=255).cycle().take(256 * 4).collect();
    let out = host.exec(Exec::new("cat").stdin(all.clone())).await?;
    assert_eq!(out.stdout, all);
    let out = host.exec(Exec::new("cat >&2").stdin(all.clone())).await?;
    assert_eq!((out.stdout.len(), out.stderr), (0, all.clone()));

    // Output that looks like the framing, with and without a final newline.
    let out = host
        .exec(Exec::new(
            "printf 'engine-reply 1 0 0 0\\nengine-session-ready\\n'; printf 'engine-reply 99 0 5 5' >&2",
        ))
        .await?;
    assert_eq!(out.stdout, b"engine-reply 1 0 0 0\nengine-session-ready\n");
    assert_eq!(out.stderr, b"engine-reply 99 0 5 5");

    // A command that closes its stdout early, then still writes stderr and exits.
    let out = host.exec(Exec::new("echo first; exec >&-; sleep 0.2; echo gone >&2; exit 4")).await?;
    assert_eq!(
        (out.status, out.stdout.as_slice(), out.stderr.as_slice()),
        (Some(4), &b"first\n"[..], &b"gone\n"[..])
    );

    // No stdin: EOF at once; and commands do not see the requests that follow.
    let out = host.exec(Exec::new("cat; echo done")).await?;
    assert_eq!(out.stdout_text(), "done");

    // All of it ran in one session (the loop's pid is the same for every command).
    let first = host.exec(Exec::new(SESSION_PID)).await?.stdout_text();
    assert!(!first.is_empty(), "not run through a session");
    assert_eq!(host.exec(Exec::new(SESSION_PID)).await?.stdout_text(), first);
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn session_100_mib_of_output_and_the_limit() -> TestResult {
    let mut config = session_config();
    config.max_output = 128 * 1024 * 1024;
    let host = SshHost::new("live".into(), config);
    let start = Instant::now();
    let out = host.exec(Exec::new("head -c 104857600 /dev/zero")).await?;
    eprintln!("100 MiB through a session: {:?}", start.elapsed());
    assert_eq!(out.stdout.len(), 100 * 1024 * 1024);
    assert!(out.stdout.iter().all(|&b| b == 0));
    assert_eq!(host.exec(Exec::new("echo ok")).await?.stdout_text(), "ok");

    let mut config = session_config();
    config.max_output = 1024 * 1024;
    let host = SshHost::new("live".into(), config);
    // `tail -c +1`, not the exec test's `cat`: the two may run side by side on one host.
    let command = "tail -c +1 /dev/zero";
    let result = tokio::time::timeout(Duration::from_secs(30), host.exec(Exec::new(command))).await?;
    assert_eq!(
        result,
        Err(HostError::OutputLimit {
            command: command.into(),
            stream: contract::Stream::Stdout,
            limit: 1024 * 1024
        })
    );
    let out = host.exec(Exec::new("head -c 2097152 /dev/zero >&2")).await;
    assert!(matches!(out, Err(HostError::OutputLimit { stream: contract::Stream::Stderr, .. })), "{out:?}");
    gone(&live_host(), "tail -c [+]1 /dev/zero").await?;
    // Past a small limit, the whole output and the end of the command come at once: still
    // refused, never a cut output taken for the result.
    let mut config = session_config();
    config.max_output = 1000;
    let small = SshHost::new("live".into(), config);
    for (command, stream) in [
        ("head -c 5000 /dev/zero", contract::Stream::Stdout),
        ("head -c 5000 /dev/zero >&2", contract::Stream::Stderr),
    ] {
        let out = small.exec(Exec::new(command)).await;
        assert_eq!(out, Err(HostError::OutputLimit { command: command.into(), stream, limit: 1000 }));
    }
    assert_eq!(
        small.exec(Exec::new("head -c 1000 /dev/zero")).await?.stdout.len(),
        1000,
        "the limit itself is fine"
    );
    assert_eq!(host.exec(Exec::new("echo ok")).await?.stdout_text(), "ok");
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn session_timeout_kills_the_process_group() -> TestResult {
    let host = session_host();
    let start = Instant::now();
    // `sleep 35`/`36`: unique among the tests that may run side by side on the host.
    let result = host.exec(Exec::new("(sleep 35; echo late) | cat").timeout(Duration::from_secs(1))).await;
    assert_eq!(result, Err(HostError::Timeout(Duration::from_secs(1))));
    assert!(start.elapsed() < Duration::from_secs(4), "took {:?}", start.elapsed());
    gone(&live_host(), "sleep 3[5]").await?;
    // The session goes on.
    assert_eq!(host.exec(Exec::new("echo ok")).await?.stdout_text(), "ok");
    // A command exiting 137 by itself before its timeout is not a timeout.
    assert_eq!(host.exec(Exec::new("exit 137").timeout(Duration::from_secs(5))).await?.status, Some(137));
    Ok(())
}

/// Under become (login `deploy`, sudo to root) the loop runs through sudo once: several
/// commands share the one sudo process, and a timed-out command's root processes die.
/// The streams are the channel's own: a command that closes its stdout early still ends
/// cleanly, and what a process it left behind writes later belongs to no command.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn session_streams_closed_early_or_written_late() -> TestResult {
    let host = session_host();
    let out = host.exec(Exec::new("exec >&-; echo err >&2; exit 5")).await?;
    assert_eq!(
        (out.status, out.stdout.as_slice(), out.stderr.as_slice()),
        (Some(5), &b""[..], &b"err\n"[..])
    );
    let out = host.exec(Exec::new("(sleep 0.5; echo late; echo late >&2) & echo now")).await?;
    assert_eq!((out.stdout_text(), out.stderr.len()), ("now".to_owned(), 0));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = host.exec(Exec::new("echo ok")).await?;
    assert_eq!((out.stdout_text(), out.stderr.len()), ("ok".to_owned(), 0), "nothing of the late writer");
    Ok(())
}

/// A command given up by its caller (the future dropped: a cancelled run) is killed at once,
/// from a channel of its own, as under `exec`; and the session does not hang on to it.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn session_cancelled_command_is_killed() -> TestResult {
    let host = session_host();
    // `sleep 37`: unique among the tests that may run side by side on the host.
    let cancelled =
        tokio::time::timeout(Duration::from_secs(1), host.exec(Exec::new("sleep 37 | cat"))).await;
    assert!(cancelled.is_err());
    gone(&live_host(), "sleep 3[7]").await?;
    assert_eq!(host.exec(Exec::new("echo ok")).await?.stdout_text(), "ok");
    Ok(())
}

#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn session_under_become_runs_sudo_once() -> TestResult {
    let mut config = session_config();
    config.user = "deploy".into();
    config.become_user = Some("root".into());
    let host = SshHost::new("live".into(), config);
    let mut pids = Vec::new();
    for _ in 0..3 {
        let out = host.exec(Exec::new(format!("id -u; {SESSION_PID}"))).await?;
        let text = out.stdout_text();
        let (uid, pid) = text.split_once('\n').ok_or("two lines")?;
        assert_eq!(uid, "0", "runs as root");
        pids.push(pid.to_owned());
    }
    let root = live_host();
    let comm = root.exec(Exec::new(format!("cat /proc/{}/comm", pids[0]))).await?.stdout_text();
    assert_eq!(comm, "sudo", "the outermost tagged process is sudo");
    assert!(pids.iter().all(|p| p == &pids[0]), "one sudo for every command: {pids:?}");

    let result = host.exec(Exec::new("sleep 36; echo late").timeout(Duration::from_secs(2))).await;
    assert_eq!(result, Err(HostError::Timeout(Duration::from_secs(2))));
    gone(&root, "sleep 3[6]").await?;
    Ok(())
}

/// The session's shell killed while a command runs: that command is reported as lost with
/// the connection, and the next command runs in a new session; killed while idle, the next
/// command runs in a new session too.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn session_killed_mid_request_is_lost_and_the_next_works() -> TestResult {
    let host = session_host();
    let before = host.exec(Exec::new(SESSION_PID)).await?.stdout_text();
    let result = host.exec(Exec::new(format!("kill -s KILL $({SESSION_PID}); sleep 1; echo late"))).await;
    assert!(
        matches!(&result, Err(HostError::Unreachable(why)) if why.contains("session was lost")),
        "{result:?}"
    );
    let after = host.exec(Exec::new(SESSION_PID)).await?.stdout_text();
    assert!(!after.is_empty() && after != before, "a new session: {before} then {after}");
    // Killed while idle (from another connection): the next command finds out before it is
    // sent, and runs in a new session rather than failing.
    live_host().exec(Exec::new(format!("kill -s KILL {after}"))).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let third = host.exec(Exec::new(SESSION_PID)).await?.stdout_text();
    assert!(!third.is_empty() && third != after, "a new session: {after} then {third}");
    Ok(())
}

/// Commands of one host run side by side in several sessions, each answered by its own.
#[tokio::test]
#[ignore = "needs a live sshd: set ENGINE_SSH_TEST_ADDR"]
async fn session_concurrent_commands() -> TestResult {
    let host = Arc::new(session_host());
    let start = Instant::now();
    let runs: Vec<_> = (0..12)
        .map(|i| {
            let host = Arc::clone(&host);
            tokio::spawn(async move { host.exec(Exec::new(format!("sleep 0.5; echo {i}"))).await })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        assert_eq!(run.await??.stdout_text(), i.to_string());
    }
    // 6 sessions (max_channels) at once: two rounds of 0.5 s, not twelve.
    assert!(start.elapsed() < Duration::from_secs(4), "took {:?}", start.elapsed());
    Ok(())
}
