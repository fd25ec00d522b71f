//! `engine ping`: a doctor for the connection to each host. Per host, in order, each step only
//! when the one before passed:
//!
//! ```text
//!  tcp       the address and port answer
//!  host key  the key the server offers (its algorithm), against known_hosts: match / unknown / CHANGED
//!  auth      the SSH login, with the key file or the agent
//!  become    `sudo -n true` (as the become user): sudo works without a password
//! ```
//!
//! Each failed step says the exact fix. A host is a [`Route`] of endpoints: the host itself, and
//! in front of it each hop of its ProxyJump, checked the same way: the first hop directly, each
//! later endpoint through a tunnel from the hop before it (its TCP step is that tunnel). A failed
//! hop names itself and the `ProxyJump` line that names it, and the endpoints after it are not
//! tried.
//!
//! ```text
//!  web1 via jump host bastion (ops@10.77.0.3:22)   tcp, host key, auth
//!  web1 (admin@10.0.0.5:22)                  tcp (tunnel), host key, auth, become
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contract::{Effect, Exec, Host};
use russh::keys::ssh_key::Certificate;
use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};
use serde::Serialize;

use crate::connect::SshDefaults;
use crate::inventory::{Connection, Inventory, Transport};
use crate::ssh::known_hosts::{CertificateStatus, HostKeyStatus, KnownHosts, host_pattern, utc};
use crate::ssh::{HostKeyPolicy, Jump, SshConfig, SshHost};

/// What one step found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Failed,
    /// Not tried, because a step before failed; or not used by this host.
    Skipped,
}

/// One step of the check of one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do about a failure, as commands to run where possible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The endpoints between the controller and a host, the host last.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub endpoints: Vec<EndpointCheck>,
}

/// The checks of one endpoint (a hop, or the host).
#[derive(Debug, Clone, Serialize)]
pub struct EndpointCheck {
    /// `user@address:port`.
    pub endpoint: String,
    /// The jump host's name as the ProxyJump gives it; `None` for the host itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop: Option<String>,
    pub steps: Vec<Step>,
}

/// One host's result.
#[derive(Debug, Clone, Serialize)]
pub struct HostCheck {
    pub host: String,
    pub route: Route,
}

impl HostCheck {
    pub fn ok(&self) -> bool {
        self.route.endpoints.iter().flat_map(|e| &e.steps).all(|s| s.verdict != Verdict::Failed)
    }
}

/// Checks every one of `hosts` (inventory names), at once, on a runtime of its own.
pub fn ping(
    inventory: &Inventory,
    hosts: &[String],
    defaults: &SshDefaults,
) -> std::io::Result<Vec<HostCheck>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let checks = runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, name) in hosts.iter().enumerate() {
            let connection = inventory.host(name).map(|h| h.connection());
            let (name, defaults) = (name.clone(), defaults.clone());
            set.spawn(async move { (i, check_host(name, connection, &defaults).await) });
        }
        let mut checks: Vec<(usize, HostCheck)> = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok(done) = done {
                checks.push(done);
            }
        }
        checks.sort_by_key(|(i, _)| *i);
        checks.into_iter().map(|(_, c)| c).collect()
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(checks)
}

async fn check_host(
    name: String,
    connection: Option<Result<Connection, String>>,
    defaults: &SshDefaults,
) -> HostCheck {
    let single = |endpoint: String, steps| HostCheck {
        host: name.clone(),
        route: Route { endpoints: vec![EndpointCheck { endpoint, hop: None, steps }] },
    };
    let c = match connection {
        Some(Ok(c)) => c,
        Some(Err(e)) => return single(name.clone(), vec![failed("inventory", e, None)]),
        None => return single(name.clone(), vec![failed("inventory", "not in the inventory".into(), None)]),
    };
    if c.transport == Transport::Local {
        let step = Step {
            name: "local",
            verdict: Verdict::Ok,
            detail: "ansible_connection: local: runs on the controller, no SSH".into(),
            fix: None,
        };
        return single("local".into(), vec![step]);
    }
    let config = match crate::connect::ssh_config_of(&c, defaults) {
        Ok(config) => config,
        Err(e) => return single(name.clone(), vec![failed("ssh config", e, None)]),
    };
    let endpoint = format!("{}@{}:{}", config.user, config.address, config.port);
    let pool = Arc::new(crate::ssh::JumpPool::default());
    let mut endpoints = Vec::new();
    for (i, hop) in config.jumps.iter().enumerate() {
        let steps = check_hop(&config.jumps[..=i], &pool).await;
        let hop_failed = steps.iter().any(|s| s.verdict == Verdict::Failed);
        endpoints.push(EndpointCheck {
            endpoint: format!("{}@{}", hop.config.user, hop.config.endpoint()),
            hop: Some(hop.name.clone()),
            steps,
        });
        if hop_failed {
            let not_tried = Step {
                name: "tcp",
                verdict: Verdict::Skipped,
                detail: format!("not tried: jump host {} failed", hop.name),
                fix: None,
            };
            let steps = skip_rest(vec![not_tried], &["host key", "auth", "become"]);
            endpoints.push(EndpointCheck { endpoint, hop: None, steps });
            return HostCheck { host: name, route: Route { endpoints } };
        }
    }
    let steps = check_endpoint(&name, &config, c.become_user.as_deref(), &pool).await;
    endpoints.push(EndpointCheck { endpoint, hop: None, steps });
    HostCheck { host: name, route: Route { endpoints } }
}

/// The last of `hops`, reached through the ones before it (already checked): TCP (a tunnel
/// from the hop before, or a direct connect for the first), its host key, and the login.
async fn check_hop(hops: &[Jump], pool: &Arc<crate::ssh::JumpPool>) -> Vec<Step> {
    let Some(hop) = hops.last() else { return Vec::new() };
    let config = &hop.config;
    let written = match &hop.origin {
        Some(origin) => format!("the ProxyJump at {origin}"),
        None => {
            "the jump host given by -J or ProxyJump (ansible_ssh_common_args, --ssh-common-args)".to_owned()
        }
    };
    let mut steps = match tcp_and_host_key(config, &hops[..hops.len() - 1], pool).await {
        Ok(steps) => steps,
        Err(mut steps) => {
            if let Some(step) = steps.iter_mut().find(|s| s.verdict == Verdict::Failed) {
                step.detail = format!("jump host {} ({}): {}", hop.name, config.endpoint(), step.detail);
                let fix = step.fix.take().map_or(String::new(), |f| format!("; {f}"));
                step.fix = Some(format!("check {written} (host, port, user){fix}"));
            }
            return skip_rest(steps, &["auth"]);
        }
    };
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    match pool.reach(hops, deadline).await {
        Ok(_) => steps.push(ok("auth", format!("logged in as {} with {}", config.user, key_method(config)))),
        Err(e) => {
            let mut fix = auth_fix(config);
            fix.push_str(&format!("; or fix {written}"));
            steps.push(failed(
                "auth",
                format!("jump host {} ({}): {e}", hop.name, config.endpoint()),
                Some(fix),
            ));
        }
    }
    steps
}

fn failed(name: &'static str, detail: String, fix: Option<String>) -> Step {
    Step { name, verdict: Verdict::Failed, detail, fix }
}

fn ok(name: &'static str, detail: String) -> Step {
    Step { name, verdict: Verdict::Ok, detail, fix: None }
}

async fn check_endpoint(
    name: &str,
    config: &SshConfig,
    become_user: Option<&str>,
    pool: &Arc<crate::ssh::JumpPool>,
) -> Vec<Step> {
    let mut steps = match tcp_and_host_key(config, &config.jumps, pool).await {
        Ok(steps) => steps,
        Err(steps) => return skip_rest(steps, &["auth", "become"]),
    };
    steps.extend(login_and_become(name, config, become_user, pool).await);
    steps
}

/// The `tcp` and `host key` steps of the endpoint `config`: a direct connect, or a tunnel from
/// the last of `via`. `Err`: one of them failed (the host key step is then skipped or failed).
async fn tcp_and_host_key(
    config: &SshConfig,
    via: &[Jump],
    pool: &Arc<crate::ssh::JumpPool>,
) -> Result<Vec<Step>, Vec<Step>> {
    let started = Instant::now();
    let mut steps = Vec::new();
    let (tcp, key_step) = if let Some(last) = via.last() {
        let deadline = tokio::time::Instant::now() + config.connect_timeout;
        match pool.open_through(via, config, deadline).await {
            Ok(stream) => {
                let through =
                    format!("tunnel through {} opened in {} ms", last.name, started.elapsed().as_millis());
                (ok("tcp", through), host_key(stream, config).await)
            }
            Err(e) => {
                let fix = format!(
                    "check the address and port (ansible_host, ansible_port) as {} resolves them, that sshd \
                     runs there, and that {} may reach port {} (AllowTcpForwarding on {})",
                    last.name, last.name, config.port, last.name
                );
                steps.push(failed("tcp", e, Some(fix)));
                return Err(skip_rest(steps, &["host key"]));
            }
        }
    } else {
        let address = (config.address.as_str(), config.port);
        match tokio::time::timeout(config.connect_timeout, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(stream)) => (
                ok("tcp", format!("connected in {} ms", started.elapsed().as_millis())),
                host_key(stream, config).await,
            ),
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {:?}", config.connect_timeout),
                };
                steps.push(failed(
                    "tcp",
                    format!("cannot connect to {}:{}: {why}", config.address, config.port),
                    Some(format!(
                        "check the address and port (ansible_host, ansible_port), that sshd runs there \
                     (`systemctl status ssh`), and that no firewall drops port {}",
                        config.port
                    )),
                ));
                return Err(skip_rest(steps, &["host key"]));
            }
        }
    };
    steps.push(tcp);
    let (key_step, go_on) = key_step;
    steps.push(key_step);
    if go_on { Ok(steps) } else { Err(steps) }
}

/// How the login authenticates, in words.
fn key_method(config: &SshConfig) -> String {
    match config.key_file.iter().chain(&config.identity_files).next() {
        Some(path) => format!("the key {}", path.display()),
        None => "the ssh-agent's keys".to_owned(),
    }
}

/// The fix of a refused login. A passphrase-protected key that could not be used (no terminal
/// to ask on, a wrong passphrase) comes first: `ssh-add` it, or run on a terminal.
fn auth_fix(config: &SshConfig) -> String {
    let configured: Vec<_> = config.key_file.iter().chain(&config.identity_files).collect();
    let locked: Vec<_> = config
        .keys
        .0
        .failed()
        .into_iter()
        .filter(|(path, _)| configured.is_empty() || configured.contains(&path))
        .map(|(path, _)| path.display().to_string())
        .collect();
    if !locked.is_empty() {
        return format!(
            "the passphrase-protected key(s) {keys} could not be used: add them to the ssh-agent \
             (`ssh-add {keys}`), or run engine on a terminal and give the passphrase when asked",
            keys = locked.join(" ")
        );
    }
    let key_file = configured.first();
    let key = key_file.map_or("~/.ssh/id_ed25519".into(), |p| p.display().to_string());
    format!(
        "authorize the key for {user}: `ssh-copy-id -i {key}.pub -p {port} {user}@{address}`; \
         or name the right user and key (ansible_user, ansible_ssh_private_key_file)",
        user = config.user,
        port = config.port,
        address = config.address,
    )
}

/// The login (as the configured user, through the jump hosts if any) and then become.
async fn login_and_become(
    name: &str,
    config: &SshConfig,
    become_user: Option<&str>,
    pool: &Arc<crate::ssh::JumpPool>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut plain = config.clone();
    plain.become_user = None;
    let host = SshHost::with_jumps(name.to_owned(), plain, Arc::clone(pool));
    match host.connect().await {
        Ok(()) => steps.push(ok("auth", format!("logged in as {} with {}", config.user, key_method(config)))),
        Err(e) => {
            steps.push(failed("auth", e.to_string(), Some(auth_fix(config))));
            return skip_rest(steps, &["become"]);
        }
    }
    if config.become_user.is_some() && !is_plain_sudo(config) {
        steps.push(configured_become_step(name, config, pool).await);
    } else {
        steps.push(become_step(&host, &config.user, become_user).await);
    }
    steps
}

fn skip_rest(mut steps: Vec<Step>, names: &[&'static str]) -> Vec<Step> {
    for name in names {
        steps.push(Step { name, verdict: Verdict::Skipped, detail: "not tried".into(), fix: None });
    }
    steps
}

/// Reads the key the server offers (the handshake stops there) and looks it up in known_hosts.
/// `(step, whether to go on)`: an unknown key goes on under accept-new (the login learns it).
async fn host_key<S>(stream: S, config: &SshConfig) -> (Step, bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let seen = Arc::new(Mutex::new(None));
    let handler = Probe { seen: seen.clone(), certificate: Arc::new(Mutex::new(None)) };
    let certificate = handler.certificate.clone();
    // Asks for a host certificate exactly when a connection would (an `@cert-authority` line
    // matches the host).
    let preferred = crate::ssh::preferred_algorithms(config);
    let russh_config = Arc::new(russh::client::Config { preferred, ..russh::client::Config::default() });
    let _ = tokio::time::timeout(
        config.connect_timeout,
        russh::client::connect_stream(russh_config, stream, handler),
    )
    .await;
    let offered = seen.lock().map(|mut s| s.take()).unwrap_or(None);
    let Some(key) = offered else {
        return (
            failed("host key", "the server offered no host key (is it an SSH server?)".into(), None),
            false,
        );
    };
    let path = &config.known_hosts;
    let presented = format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256));
    let known = match KnownHosts::load(path) {
        Ok(known) => known,
        Err(e) => return (failed("host key", format!("cannot read {}: {e}", path.display()), None), false),
    };
    let keyscan = format!("ssh-keyscan -t {} -p {} {}", key.algorithm(), config.port, config.address);
    let certificate = certificate.lock().map(|mut c| c.take()).unwrap_or(None);
    if let Some(certificate) = certificate
        && let Some(verdict) = host_certificate(&certificate, &known, config, &presented)
    {
        return verdict;
    }
    match known.check(&config.address, config.port, &key) {
        HostKeyStatus::Known { line } => {
            (ok("host key", format!("{presented} matches {} line {line}", path.display())), true)
        }
        HostKeyStatus::Unknown { .. } if config.host_key_policy == HostKeyPolicy::AcceptNew => (
            ok(
                "host key",
                format!("{presented} is not in {} yet; accept-new files it at login", path.display()),
            ),
            true,
        ),
        HostKeyStatus::Unknown { .. } => (
            failed(
                "host key",
                format!("{presented} is not in {}", path.display()),
                Some(format!(
                    "compare the fingerprint with the host's own (`ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub` \
                     on its console), then `{keyscan} >> {}`; or run with --host-key-checking accept-new",
                    key_file_kind(&key),
                    path.display()
                )),
            ),
            false,
        ),
        HostKeyStatus::Changed { line } => (
            failed(
                "host key",
                format!(
                    "CHANGED: the server offers {presented}, {} line {line} holds another {} key \
                     (someone may be intercepting the connection, or the host was reinstalled)",
                    path.display(),
                    key.algorithm()
                ),
                Some(format!(
                    "only if the change is expected: `ssh-keygen -R '{}' -f {}`, then check and add the new key \
                     (`{keyscan}`)",
                    host_pattern(&config.address, config.port),
                    path.display()
                )),
            ),
            false,
        ),
        HostKeyStatus::Revoked { line } => (
            failed(
                "host key",
                format!("{presented} is marked @revoked in {} line {line}", path.display()),
                None,
            ),
            false,
        ),
    }
}

/// The host key step for a host certificate, checked as a connection checks it
/// (`ClientHandler::verify_certificate`); None when no `@cert-authority` line for the host
/// signed it, and its key is checked as a plain key.
fn host_certificate(
    certificate: &Certificate,
    known: &KnownHosts,
    config: &SshConfig,
    presented: &str,
) -> Option<(Step, bool)> {
    let path = known.path().display();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let signer = certificate.signature_key();
    let signed_by = format!("{} {}", signer.algorithm(), signer.fingerprint(HashAlg::Sha256));
    let plain = PublicKey::new(certificate.public_key().clone(), "");
    match known.check_certificate(&config.address, config.port, certificate, now) {
        CertificateStatus::Trusted { line } => Some((
            ok(
                "host key",
                format!(
                    "certificate {presented} signed by {signed_by} ({path} line {line} trusts it), \
                     valid until {}",
                    utc(certificate.valid_before())
                ),
            ),
            true,
        )),
        CertificateStatus::Invalid { line, reason } => {
            let fallback =
                matches!(known.check(&config.address, config.port, &plain), HostKeyStatus::Known { .. });
            let detail = format!(
                "certificate {presented} signed by {signed_by} ({path} line {line}) is not valid: {reason}"
            );
            Some(if fallback {
                (ok("host key", format!("{detail}; its key is a known host key, accepted as such")), true)
            } else {
                (
                    failed(
                        "host key",
                        detail,
                        Some(
                            "renew the host's certificate (`ssh-keygen -s CA -h ...`) for this name and now"
                                .into(),
                        ),
                    ),
                    false,
                )
            })
        }
        CertificateStatus::Revoked { line } => Some((
            failed(
                "host key",
                format!("certificate {presented} holds a key marked @revoked in {path} line {line}"),
                None,
            ),
            false,
        )),
        CertificateStatus::NoAuthority => None,
    }
}

/// `ed25519`, `ecdsa`, `rsa`: the name in `/etc/ssh/ssh_host_NAME_key.pub`.
fn key_file_kind(key: &PublicKey) -> &'static str {
    match key.algorithm().as_str() {
        "ssh-ed25519" => "ed25519",
        "ssh-rsa" => "rsa",
        _ => "ecdsa",
    }
}

/// Records the key the server offers and refuses it, ending the handshake.
struct Probe {
    seen: Arc<Mutex<Option<PublicKey>>>,
    /// The host certificate, when the server presented one (its key is in `seen`).
    certificate: Arc<Mutex<Option<Certificate>>>,
}

impl russh::client::Handler for Probe {
    type Error = russh::Error;

    async fn check_server_key(&mut self, server_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => {
                if let Ok(mut certificate) = self.certificate.lock() {
                    *certificate = Some(c.clone());
                }
                PublicKey::new(c.public_key().clone(), "")
            }
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(key);
        }
        Ok(false)
    }
}

/// `sudo -n true` as `become_user` (root when the host names none).
/// Whether the host becomes with `sudo -n` (sudo without a password), which `become_step`
/// probes with its own command and fix.
fn is_plain_sudo(config: &SshConfig) -> bool {
    config.become_method == crate::elevate::Method::Sudo && config.become_password.is_none()
}

/// Become as the host is configured (su, doas, or sudo with a password): the transport tries it
/// once right after the login, exactly as a run does, and its error names the fix.
async fn configured_become_step(name: &str, config: &SshConfig, pool: &Arc<crate::ssh::JumpPool>) -> Step {
    let host = SshHost::with_jumps(name.to_owned(), config.clone(), Arc::clone(pool));
    let how = format!("{} to {}", config.become_method, config.become_user.as_deref().unwrap_or("root"));
    match host.connect().await {
        Ok(()) => ok("become", format!("{how} works")),
        Err(e) => failed("become", e.to_string(), None),
    }
}

async fn become_step(host: &SshHost, user: &str, become_user: Option<&str>) -> Step {
    let target = become_user.unwrap_or("root");
    if user == "root" && become_user.is_none_or(|u| u == "root") {
        return ok("become", "logged in as root: not needed".into());
    }
    let command = format!("sudo -n -u {} -- true", contract::shell::quote(target));
    let exec = Exec { command: command.clone(), stdin: None, timeout: None, effect: Effect::ReadOnly };
    let used = if become_user.is_some() { "" } else { " (this host does not use become)" };
    match host.exec(exec).await {
        Ok(out) if out.success() => ok("become", format!("`{command}` works{used}")),
        outcome => {
            let why = match outcome {
                Ok(out) => crate::report::printable(String::from_utf8_lossy(&out.stderr).trim()).into_owned(),
                Err(e) => e.to_string(),
            };
            let step = failed(
                "become",
                format!("`{command}` failed: {why}"),
                Some(format!(
                    "let {user} use sudo without a password: as root on the host, \
                     `echo '{user} ALL=({target}) NOPASSWD: ALL' > /etc/sudoers.d/{user} && chmod 0440 /etc/sudoers.d/{user} && visudo -c`"
                )),
            );
            if become_user.is_some() { step } else { Step { verdict: Verdict::Skipped, ..step } }
        }
    }
}

/// The checks as text: per host, each endpoint's steps, and the fix under a failed one.
pub fn render(checks: &[HostCheck]) -> String {
    let mut out = String::new();
    for check in checks {
        for endpoint in &check.route.endpoints {
            let what = match &endpoint.hop {
                Some(hop) => format!("{} via jump host {hop}", check.host),
                None => check.host.clone(),
            };
            out.push_str(&format!("{what} ({})\n", endpoint.endpoint));
            for step in &endpoint.steps {
                let verdict = match step.verdict {
                    Verdict::Ok => "ok",
                    Verdict::Failed => "FAILED",
                    Verdict::Skipped => "-",
                };
                out.push_str(&format!("  {verdict:<6} {:<8} {}\n", step.name, step.detail));
                if let Some(fix) = &step.fix {
                    out.push_str(&format!("         fix: {fix}\n"));
                }
            }
        }
    }
    let failed = checks.iter().filter(|c| !c.ok()).count();
    out.push_str(&format!("{} hosts: {} ok, {failed} with problems\n", checks.len(), checks.len() - failed));
    out
}
