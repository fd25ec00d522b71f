//! `wait`: succeeds once a condition holds on the host (a port accepts connections, a command
//! exits 0, a URL answers with the expected status), or fails after a bounded time.
//!
//! It never changes anything, so the whole wait happens in `plan`: the task reports ok, in
//! check mode too.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::validate::Validate;
use contract::error::{ArgsError, ModuleError};
use contract::host::{Exec, ExecOutput, Host, HostError};
use contract::module::{Context, Module, Outputs, Plan};
use contract::shell::quote;

/// The longest one probe may take (or the interval, when that is longer); never past the deadline.
const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// Upper bound for `timeout`, so a typo cannot hang a run for days.
const MAX_TIMEOUT: u64 = 24 * 3600;

/// Waits until a port, a command or a URL on the host is ready; changes nothing.
/// Give exactly one condition: a TCP `port` accepts connections, a `command` exits 0, or a `url`
/// answers with the expected HTTP status. Probes run every `interval` seconds until `timeout`; the
/// task then fails with the last probe's error. Each probe is one command on the host, bounded by
/// 10 s (or the interval, if longer) and never past the deadline. The task reports ok, and it also
/// waits in check mode (it only reads). Ports are probed with bash's /dev/tcp (bash is essential on
/// Debian, so always there), URLs with curl on the host. Outputs: `attempts`, `elapsed_ms`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// A TCP port to connect to, from the host itself.
    pub port: Option<u16>,
    /// With `port`: the address to connect to, as seen from the host. Default "127.0.0.1".
    pub host: Option<String>,
    /// A shell command line (run by `sh -c`); the condition holds when it exits 0.
    pub command: Option<String>,
    /// An http:// or https:// URL, fetched with curl on the host.
    pub url: Option<String>,
    /// With `url`: the HTTP status that counts as ready. Default 200.
    pub status: Option<u16>,
    /// With `url`: a CA certificate file on the host to verify the server with.
    pub ca: Option<String>,
    /// With `url`: a client certificate file on the host.
    pub cert: Option<String>,
    /// With `url` and `cert`: the client certificate's key file on the host.
    pub key: Option<String>,
    /// Seconds to wait before failing. Default 60.
    pub timeout: Option<u64>,
    /// Seconds between probes. Default 1.
    pub interval: Option<u64>,
}

const DEFAULT_TIMEOUT: u64 = 60;
const DEFAULT_INTERVAL: u64 = 1;

contract::resolve_struct!(WaitArgs { port, host, command, url, status, ca, cert, key, timeout, interval });

impl Validate for WaitArgs {
    fn validate(self) -> Result<Self, ArgsError> {
        let given = [self.port.is_some(), self.command.is_some(), self.url.is_some()];
        match given.iter().filter(|g| **g).count() {
            0 => return Err(ArgsError::invalid("", "missing the condition: give port, command or url")),
            1 => {}
            _ => return Err(ArgsError::invalid("", "give only one of port, command and url")),
        }
        if self.port == Some(0) {
            return Err(ArgsError::invalid("port", "port must be 1-65535"));
        }
        if self.host.is_some() && self.port.is_none() {
            return Err(ArgsError::invalid("host", "host only applies with port"));
        }
        if let Some(host) = &self.host
            && (host.is_empty() || host.contains(['/', ' ', '\n']))
        {
            return Err(ArgsError::invalid("host", format!("host must be an address or name, got {host:?}")));
        }
        let url_only = [
            ("status", self.status.is_some()),
            ("ca", self.ca.is_some()),
            ("cert", self.cert.is_some()),
            ("key", self.key.is_some()),
        ];
        if self.url.is_none()
            && let Some((first, _)) = url_only.iter().find(|(_, given)| *given)
        {
            return Err(ArgsError::invalid(*first, "status, ca, cert and key only apply with url"));
        }
        if let Some(url) = &self.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ArgsError::invalid(
                "url",
                format!("url must start with http:// or https://, got {url:?}"),
            ));
        }
        if self.key.is_some() && self.cert.is_none() {
            return Err(ArgsError::invalid("key", "key needs cert"));
        }
        if let Some(status) = self.status
            && !(100..=599).contains(&status)
        {
            return Err(ArgsError::invalid(
                "status",
                format!("status must be an HTTP status (100-599), got {status}"),
            ));
        }
        if self.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(ArgsError::invalid("command", "command must not be empty"));
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let interval = self.interval.unwrap_or(DEFAULT_INTERVAL);
        if timeout == 0 || timeout > MAX_TIMEOUT {
            return Err(ArgsError::invalid(
                "timeout",
                format!("timeout must be 1-{MAX_TIMEOUT} seconds, got {timeout}"),
            ));
        }
        if interval == 0 || interval > timeout {
            return Err(ArgsError::invalid(
                "interval",
                format!("interval must be 1 second or more and at most timeout ({timeout}), got {interval}"),
            ));
        }
        Ok(self)
    }
}

impl WaitArgs {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.unwrap_or(DEFAULT_TIMEOUT))
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.interval.unwrap_or(DEFAULT_INTERVAL))
    }

    /// What is awaited, for messages.
    fn condition(&self) -> String {
        match (&self.port, &self.command, &self.url) {
            (Some(port), ..) => format!("port {}:{port}", self.host.as_deref().unwrap_or("127.0.0.1")),
            (_, Some(command), _) => format!("command {command:?}"),
            (.., Some(url)) => format!("{url} (HTTP {})", self.status.unwrap_or(200)),
            _ => String::new(),
        }
    }

    /// The probe command line, with every value quoted. `limit` bounds curl's own time.
    fn probe(&self, limit: Duration) -> String {
        if let Some(port) = self.port {
            let host = self.host.as_deref().unwrap_or("127.0.0.1");
            // bash opens the connection and exits, closing it.
            return format!("bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' bash {} {}", quote(host), port);
        }
        if let Some(command) = &self.command {
            return format!("sh -c {}", quote(command));
        }
        let mut line =
            format!("curl -sS -o /dev/null -w '%{{http_code}}' --max-time {}", limit.as_secs().max(1));
        if let Some(ca) = &self.ca {
            line.push_str(&format!(" --cacert {}", quote(ca)));
        }
        if let Some(cert) = &self.cert {
            line.push_str(&format!(" --cert {}", quote(cert)));
        }
        if let Some(key) = &self.key {
            line.push_str(&format!(" --key {}", quote(key)));
        }
        line.push_str(&format!(" {}", quote(self.url.as_deref().unwrap_or_default())));
        line
    }

    /// `Ok` when the probe says the condition holds, else why not.
    fn judge(&self, out: &ExecOutput) -> Result<(), String> {
        let tail = |out: &ExecOutput| {
            let stderr = out.stderr_tail(5);
            let stdout = out.stdout_text();
            let stdout =
                stdout.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>();
            match (stderr.is_empty(), stdout.is_empty()) {
                (false, _) => stderr,
                (true, false) => stdout.join("\n"),
                (true, true) => "no output".to_owned(),
            }
        };
        let status = out.status.map_or_else(|| "a signal".to_owned(), |s| format!("status {s}"));
        if self.url.is_some() {
            let wanted = self.status.unwrap_or(200);
            let code = out.stdout_text();
            return match (out.success(), code.trim().parse::<u16>()) {
                (true, Ok(code)) if code == wanted => Ok(()),
                (true, Ok(code)) => Err(format!("HTTP status {code}, expected {wanted}")),
                _ => Err(format!("curl exited with {status}: {}", tail(out))),
            };
        }
        if out.success() { Ok(()) } else { Err(format!("exited with {status}: {}", tail(out))) }
    }
}

/// The `wait` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Wait {
    args: WaitArgs,
}

impl Wait {
    pub fn new(args: WaitArgs) -> Self {
        Self { args }
    }

    /// Probes until the condition holds or the deadline passes. Host errors other than a probe's
    /// own timeout end the wait at once: they are not the condition failing.
    async fn wait(&self, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let args = &self.args;
        let started = Instant::now();
        let deadline = started + args.timeout();
        let per_probe = PROBE_LIMIT.max(args.interval());
        let mut attempts: u64 = 0;
        let last_error = loop {
            attempts += 1;
            let probe_started = Instant::now();
            let limit =
                per_probe.min(deadline.saturating_duration_since(probe_started)).max(Duration::from_secs(1));
            let exec = Exec::new(args.probe(limit)).timeout(limit);
            let why = match host.exec(exec).await {
                Ok(out) => match args.judge(&out) {
                    Ok(()) => {
                        let mut outputs = Outputs::new();
                        outputs.insert("attempts".into(), Value::from(attempts));
                        outputs
                            .insert("elapsed_ms".into(), Value::from(started.elapsed().as_millis() as u64));
                        return Ok(outputs);
                    }
                    Err(why) if args.port.is_some() && out.status == Some(127) => {
                        return Err(ModuleError::Refused(format!(
                            "cannot probe {}: bash is needed on the host for port checks ({why})",
                            args.condition()
                        )));
                    }
                    Err(why) => why,
                },
                Err(HostError::Timeout(after)) => format!("the probe did not finish within {after:?}"),
                Err(other) => return Err(other.into()),
            };
            let next = probe_started + args.interval();
            if next >= deadline {
                break why;
            }
            tokio::time::sleep_until(next).await;
        };
        Err(ModuleError::Refused(format!(
            "{} not ready after {} s ({attempts} probes, timeout {} s); last probe: {last_error}",
            args.condition(),
            started.elapsed().as_secs(),
            args.timeout().as_secs()
        )))
    }
}

#[async_trait]
impl Module for Wait {
    fn name(&self) -> &'static str {
        "wait"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        if cx.options.pending_changes {
            return Err(ModuleError::Refused(
                "not waited for in check mode: the changes it waits for were not made".to_owned(),
            ));
        }
        let outputs = self.wait(cx.host).await?;
        Ok(Plan { outputs, ..Plan::unchanged() })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn args(json: serde_json::Value) -> Result<WaitArgs, String> {
        contract::args::from_value::<WaitArgs>(json).and_then(WaitArgs::validate).map_err(|e| e.to_string())
    }

    #[test]
    fn checks_arguments() {
        assert!(args(serde_json::json!({})).unwrap_err().contains("give port, command or url"));
        assert!(args(serde_json::json!({"port": 80, "command": "true"})).unwrap_err().contains("only one"));
        assert!(args(serde_json::json!({"port": 0})).is_err());
        assert!(args(serde_json::json!({"port": 70000})).is_err());
        assert!(args(serde_json::json!({"command": "true", "host": "x"})).unwrap_err().contains("with port"));
        assert!(args(serde_json::json!({"port": 1, "status": 200})).unwrap_err().contains("with url"));
        assert!(args(serde_json::json!({"url": "ftp://x"})).unwrap_err().contains("http"));
        assert!(args(serde_json::json!({"url": "https://x", "key": "/k"})).unwrap_err().contains("cert"));
        assert!(args(serde_json::json!({"port": 1, "timeout": 0})).is_err());
        assert!(args(serde_json::json!({"port": 1, "timeout": 5, "interval": 6})).is_err());
        assert!(
            args(serde_json::json!({"port": 1, "tiemout": 5}))
                .unwrap_err()
                .contains("unknown argument `tiemout`")
        );
        assert!(
            args(serde_json::json!({"url": "https://x:2379/health", "ca": "/c", "cert": "/a", "key": "/b"}))
                .is_ok()
        );
    }

    #[test]
    fn probes_are_quoted() {
        let a = args(serde_json::json!({"port": 2379, "host": "10.0.0.1"})).unwrap();
        assert_eq!(a.probe(PROBE_LIMIT), "bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' bash '10.0.0.1' 2379");
        let a = args(serde_json::json!({"command": "test -e '/x'"})).unwrap();
        assert_eq!(a.probe(PROBE_LIMIT), r"sh -c 'test -e '\''/x'\'''");
        let a = args(serde_json::json!({"url": "https://h/$(x)", "ca": "/c a"})).unwrap();
        assert_eq!(
            a.probe(Duration::from_secs(3)),
            "curl -sS -o /dev/null -w '%{http_code}' --max-time 3 --cacert '/c a' 'https://h/$(x)'"
        );
    }

    #[test]
    fn judges_http_statuses() {
        let a = args(serde_json::json!({"url": "http://h", "status": 204})).unwrap();
        let out = |status, stdout: &str| ExecOutput { status, stdout: stdout.into(), stderr: Vec::new() };
        assert!(a.judge(&out(Some(0), "204")).is_ok());
        assert_eq!(a.judge(&out(Some(0), "503")).unwrap_err(), "HTTP status 503, expected 204");
        let refused =
            ExecOutput { status: Some(7), stdout: b"000".to_vec(), stderr: b"curl: (7) refused\n".to_vec() };
        assert!(a.judge(&refused).unwrap_err().contains("curl: (7) refused"));
    }

    /// A host whose probes fail `failures` times, then succeed; it records when each ran.
    struct Flaky {
        failures: usize,
        calls: Mutex<Vec<Instant>>,
    }

    #[async_trait]
    impl Host for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }

        async fn exec(&self, _exec: Exec) -> Result<ExecOutput, HostError> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(Instant::now());
            let status = if calls.len() > self.failures { 0 } else { 1 };
            Ok(ExecOutput {
                status: Some(status),
                stdout: Vec::new(),
                stderr: b"Connection refused\n".to_vec(),
            })
        }
    }

    // Real time (about 3 s in all): the modules crate's tokio has no `test-util` for a paused clock.
    #[tokio::test]
    async fn succeeds_once_the_condition_holds() {
        let host = Flaky { failures: 1, calls: Mutex::new(Vec::new()) };
        let wait = Wait::new(args(serde_json::json!({"port": 80})).unwrap());
        let started = Instant::now();
        let outputs = wait.wait(&host).await.unwrap();
        assert_eq!(outputs["attempts"], 2);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
    }

    #[tokio::test]
    async fn fails_after_the_timeout_with_the_last_error() {
        let host = Flaky { failures: usize::MAX, calls: Mutex::new(Vec::new()) };
        let wait = Wait::new(args(serde_json::json!({"port": 8080, "timeout": 2})).unwrap());
        let started = Instant::now();
        let error = wait.wait(&host).await.unwrap_err().to_string();
        assert!(started.elapsed() <= Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(host.calls.lock().unwrap().len(), 2);
        assert!(error.contains("port 127.0.0.1:8080 not ready after 1 s (2 probes, timeout 2 s)"), "{error}");
        assert!(error.contains("Connection refused"), "{error}");
    }
}
