//! certgen against the reference it replaces, and in the lab.
//!
//! - `cfssl_parity`: the guide's certificates made by cfssl (from the guide's own JSON, in
//!   tests/fixtures/certgen/) and by certgen (in-process, on a local `sh` "host"), compared
//!   field by field with `openssl x509 -text`. Needs `cfssl` and `cfssljson` (Debian's
//!   golang-cfssl, which `cargo xtask test` installs), not the lab.
//! - The lab tests run the guide's etcd sections (tests/fixtures/certgen/etcd.rhai) on
//!   etcd0-2 through the engine, then ask etcd itself: `etcdctl endpoint health --cluster`
//!   and `member list` with the client certificate. Ports 2379/2380 and the `etcd` unit on
//!   etcd0-2 belong to these tests; they run one at a time and stop etcd when done.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use contract::local::LocalHost;
use contract::{Context, NoPeers, PlanOptions};
use serde_json::{Value, json};
use support::lab::Lab;
use support::{Test, fixture};

// ---------------------------------------------------------------- cfssl parity

/// Plans certgen with `args` on the local host (facts of an etcd0) and applies the plan.
/// Returns whether it changed anything.
async fn certgen(args: Value) -> bool {
    let module = modules::registry::find("certgen").unwrap().parse(args).unwrap();
    let local = LocalHost::new("local");
    let facts = contract::facts::Facts::new(
        "local",
        json!({ "hostname": "etcd0", "interfaces": { "eth1": { "ipv4": ["10.77.0.11"] } } }),
    );
    let cx = Context { host: &local, options: PlanOptions::default(), facts: Some(&facts), peers: &NoPeers };
    let plan = module.plan(&cx).await.unwrap();
    match plan.action {
        Some(action) => {
            action.apply(&local).await.unwrap();
            true
        }
        None => false,
    }
}

fn have(program: &str) -> bool {
    Command::new(program).arg("version").output().is_ok()
}

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn epoch(date: &str) -> i64 {
    sh(Path::new("/"), &format!("date -u -d '{date}' +%s")).trim().parse().unwrap()
}

/// The fields of a certificate that matter, from `openssl x509 -text`: key algorithm and
/// size, signature algorithm, subject and issuer, each extension (with its criticality; key
/// identifiers only as present), SAN kinds and values, validity length, file mode.
fn summary(path: &Path) -> BTreeMap<String, String> {
    let p = path.display();
    let text = sh(Path::new("/"), &format!("openssl x509 -noout -text -in '{p}'"));
    let mut fields = BTreeMap::new();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut order = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).copied().unwrap_or_default().to_owned();
        let mut put = |k: &str, v: String| {
            fields.entry(k.to_owned()).or_insert(v);
        };
        if let Some(v) = line.strip_prefix("Signature Algorithm: ") {
            put("signature algorithm", v.to_owned());
        } else if let Some(v) = line.strip_prefix("Issuer: ") {
            put("issuer", v.to_owned());
        } else if let Some(v) = line.strip_prefix("Subject: ") {
            put("subject", v.to_owned());
        } else if let Some(v) = line.strip_prefix("Public Key Algorithm: ") {
            put("key algorithm", v.to_owned());
        } else if line.contains("Public-Key: (") {
            put("key size", line.split('(').nth(1).unwrap().trim_end_matches(')').to_owned());
        } else if let Some(v) = line.strip_prefix("ASN1 OID: ") {
            put("key curve", v.to_owned());
        } else if *line == "X509v3 extensions:" {
            continue;
        } else if let Some(ext) = line.strip_prefix("X509v3 ") {
            let (name, flags) = ext.split_once(':').unwrap();
            let critical = if flags.contains("critical") { "critical: " } else { "" };
            let value = match name {
                "Subject Key Identifier" | "Authority Key Identifier" => {
                    format!("present ({} bytes)", next.trim_start_matches("keyid:").split(':').count())
                }
                "Subject Alternative Name" => {
                    let kinds: Vec<&str> = next.split(", ").map(|s| s.split(':').next().unwrap()).collect();
                    put("SAN values", next.clone());
                    kinds.join(", ")
                }
                _ => next.clone(),
            };
            put(&format!("ext {name}"), format!("{critical}{value}"));
            order.push(name.to_owned());
        }
    }
    fields.insert("extension order".into(), order.join(", "));
    let dates = sh(Path::new("/"), &format!("openssl x509 -noout -startdate -enddate -serial -in '{p}'"));
    let get = |key: &str| dates.lines().find_map(|l| l.strip_prefix(key)).unwrap().to_owned();
    let (start, end) = (epoch(&get("notBefore=")), epoch(&get("notAfter=")));
    fields.insert("validity".into(), format!("{}h", (end - start) / 3600));
    // cfssl draws 159 random bits: usually 20 bytes, sometimes fewer.
    let serial = get("serial=").len().div_ceil(2);
    fields.insert(
        "serial".into(),
        if serial >= 16 { "random, 16-20 bytes".into() } else { format!("{serial} bytes") },
    );
    let mode = |p: &Path| {
        format!(
            "{:o}",
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777
        )
    };
    let key = PathBuf::from(path.display().to_string().replace(".pem", "-key.pem"));
    fields.insert("file mode".into(), format!("cert {}, key {}", mode(path), mode(&key)));
    let key_head = std::fs::read_to_string(&key).unwrap().lines().next().unwrap().to_owned();
    fields.insert("key file format".into(), key_head);
    fields
}

/// Differences that are deliberate; docs/certgen.md explains each.
const INTENTIONAL: &[&str] = &["key file format", "extension order"];

#[tokio::test]
async fn cfssl_parity() {
    if !have("cfssl") || !have("cfssljson") {
        assert!(
            std::env::var_os("ENGINE_LAB_REQUIRED").is_none(),
            "cfssl is missing (apt-get install golang-cfssl; cargo xtask test installs it)"
        );
        eprintln!("skipped: cfssl/cfssljson not installed (apt-get install golang-cfssl)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (cf, cg) = (tmp.path().join("cfssl"), tmp.path().join("certgen"));
    std::fs::create_dir_all(&cf).unwrap();
    for f in ["ca-config.json", "ca-csr.json", "client.json", "config.json"] {
        std::fs::copy(fixture(&format!("certgen/{f}")), cf.join(f)).unwrap();
    }
    // The guide's commands, verbatim.
    sh(
        &cf,
        "cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca - && \
         cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=client client.json 2>/dev/null | cfssljson -bare client && \
         cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=server config.json 2>/dev/null | cfssljson -bare server && \
         cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=peer config.json 2>/dev/null | cfssljson -bare peer",
    );

    // The same with certgen, from the same values.
    let dir = cg.display().to_string();
    let ca_at =
        json!({ "host": "local", "cert": format!("{dir}/ca.pem"), "key": format!("{dir}/ca-key.pem") });
    let names = json!([{ "C": "US", "ST": "CA", "L": "San Francisco" }]);
    let hosts = json!(["etcd0", "10.77.0.11"]);
    let client = json!({ "kind": "leaf", "profile": "client", "cn": "client", "key": "ecdsa-p256", "dir": dir, "ca": ca_at });
    let leaf = |profile: &str| json!({ "kind": "leaf", "profile": profile, "cn": "etcd0", "names": names, "hosts": hosts, "key": "ecdsa-p256", "dir": dir, "ca": ca_at });
    assert!(
        certgen(json!({ "kind": "ca", "cn": "etcd", "key": "rsa2048", "expiry": "43800h", "dir": dir }))
            .await
    );
    assert!(certgen(client.clone()).await);
    assert!(certgen(leaf("server")).await);
    assert!(certgen(leaf("peer")).await);

    let mut unexplained = Vec::new();
    for name in ["ca", "client", "server", "peer"] {
        let (a, b) = (summary(&cf.join(format!("{name}.pem"))), summary(&cg.join(format!("{name}.pem"))));
        eprintln!("== {name}.pem");
        for key in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
            let (x, y) = (
                a.get(key).map_or("(absent)", String::as_str),
                b.get(key).map_or("(absent)", String::as_str),
            );
            if x == y {
                eprintln!("   same  {key}: {x}");
            } else {
                let tag = if INTENTIONAL.contains(&key.as_str()) { "INTENT" } else { "DIFF" };
                eprintln!("   {tag} {key}: cfssl {x} | certgen {y}");
                if tag == "DIFF" {
                    unexplained.push(format!("{name}.pem {key}: cfssl {x:?}, certgen {y:?}"));
                }
            }
        }
        if name != "ca" {
            sh(&cg, &format!("openssl verify -CAfile ca.pem {name}.pem"));
        }
    }
    assert!(unexplained.is_empty(), "unexplained differences from cfssl:\n{}", unexplained.join("\n"));

    // Every certgen leaf verifies for its purpose; certgen signs with cfssl's CA (PKCS#1 key)
    // too, and takes cfssl's own certificates as fitting (nothing to reissue).
    sh(
        &cg,
        "openssl verify -CAfile ca.pem -purpose sslserver server.pem && openssl verify -CAfile ca.pem -purpose sslclient client.pem",
    );
    let on_cfssl = |profile: &str| {
        let mut args = leaf(profile);
        args["dir"] = json!(cf.display().to_string());
        args["ca"] = json!({ "controller": cf.display().to_string() });
        args
    };
    assert!(!certgen(on_cfssl("server")).await, "cfssl's server.pem fits certgen's own idea of it");
    assert!(!certgen(on_cfssl("peer")).await);
    let mut adopted = client;
    adopted["dir"] = json!(cf.display().to_string());
    adopted["ca"] = json!({ "controller": cf.display().to_string() });
    assert!(!certgen(adopted).await);
    let mut fresh = on_cfssl("server");
    fresh["name"] = json!("server2");
    assert!(certgen(fresh).await);
    sh(&cf, "openssl verify -CAfile ca.pem server2.pem");
}

// ---------------------------------------------------------------- lab

/// The etcd tests share the `etcd` unit and ports 2379/2380 on etcd0-2: one at a time.
static ETCD: Mutex<()> = Mutex::new(());

const ETCD_HOSTS: [&str; 3] = ["etcd0", "etcd1", "etcd2"];

/// Paths and names unique to one test run, passed to the playbook with -e.
struct Run {
    tag: String,
    dir: String,
    data_dir: String,
}

impl Run {
    fn new(test: &str) -> Self {
        let tag = format!("{test}-{}", std::process::id());
        Run {
            dir: format!("/tmp/engine-certgen-{tag}/pki"),
            data_dir: format!("/tmp/engine-certgen-{tag}/data"),
            tag,
        }
    }

    fn params(&self, mode: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            format!("dir={}", self.dir),
            format!("data_dir={}", self.data_dir),
            format!("token=certgen-{}", self.tag),
            format!("mode={mode}"),
        ]
        .into_iter()
        .chain(extra.iter().map(|s| (*s).to_owned()))
        // The guide waits for etcd forever (TimeoutStartSec=0); a test must not.
        .chain(extra.iter().all(|s| !s.starts_with("start_timeout=")).then(|| "start_timeout=60s".to_owned()))
        .flat_map(|kv| ["-e".to_owned(), kv])
        .collect();
        args.push("--json".into());
        args
    }
}

/// Stops etcd and removes the run's files on etcd0-2, whatever happened.
struct Cleanup<'a> {
    lab: &'a Lab,
    run: &'a Run,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for host in ETCD_HOSTS {
            let root = Path::new(&self.run.dir).parent().unwrap().display().to_string();
            self.lab.ssh_status(host, &format!("systemctl stop etcd; rm -rf {root}"));
        }
    }
}

fn stop_etcd(lab: &Lab) {
    for host in ETCD_HOSTS {
        lab.ssh_status(host, "systemctl stop etcd; systemctl reset-failed etcd 2>/dev/null; true");
    }
}

fn engine(lab: &Lab, cmd: &str, args: &[String]) -> support::Output {
    Test::new().arg(cmd).arg(fixture("certgen/etcd.rhai")).arg("-i").arg(&lab.inventory).args(args).run()
}

fn etcdctl(lab: &Lab, dir: &str, client: &str, command: &str) -> (Option<i32>, String) {
    let endpoints: Vec<String> =
        ETCD_HOSTS.iter().map(|h| format!("https://{}:2379", lab.address(h))).collect();
    let (code, out, err) = lab.ssh_status(
        "etcd0",
        &format!(
            "ETCDCTL_API=3 timeout 10 etcdctl --dial-timeout=3s --command-timeout=5s --cacert {dir}/ca.pem \
             --cert {dir}/{client}.pem --key {dir}/{client}-key.pem --endpoints {} {command}",
            endpoints.join(",")
        ),
    );
    (code, format!("{out}{err}"))
}

/// Polls `endpoint health --cluster` until all three members are healthy (up to 30 s).
fn wait_healthy(lab: &Lab, dir: &str) -> Result<(Duration, String), String> {
    let started = Instant::now();
    loop {
        let (code, out) = etcdctl(lab, dir, "client", "endpoint health --cluster");
        if code == Some(0) && out.matches("is healthy").count() == 3 {
            return Ok((started.elapsed(), out));
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(out);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn certgen_tasks(out: &support::Output) -> Vec<(String, String, String)> {
    out.outcomes().into_iter().filter(|(_, task, _)| task.ends_with(" cert") || task == "etcd CA").collect()
}

/// The whole guide, controller-signed or the guide's way, then etcd's own verdict.
fn cluster_forms(mode: &str) {
    let lab = Lab::get();
    let _one_at_a_time = ETCD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Run::new(mode);
    stop_etcd(&lab);
    let _cleanup = Cleanup { lab: &lab, run: &run };

    let started = Instant::now();
    let out = engine(&lab, "run", &run.params(mode, &[])).success();
    eprintln!("{mode}: playbook ran in {:?}, {} tasks changed", started.elapsed(), out.count("changed"));
    let (took, health) =
        wait_healthy(&lab, &run.dir).unwrap_or_else(|out| panic!("cluster not healthy in 30 s:\n{out}"));
    eprintln!("{mode}: healthy {took:?} after the run:\n{health}");
    let (code, members) = etcdctl(&lab, &run.dir, "client", "member list");
    assert_eq!(code, Some(0), "{members}");
    let lines: Vec<&str> = members.lines().filter(|l| l.contains("started")).collect();
    assert_eq!(lines.len(), 3, "{members}");
    for host in ETCD_HOSTS {
        let peer_url = format!("https://{}:2380", lab.address(host));
        assert!(
            lines.iter().any(|l| l.contains(host) && l.contains(&peer_url)),
            "{host} {peer_url}: {members}"
        );
    }
    if mode == "controller" {
        for host in &ETCD_HOSTS[1..] {
            let (code, ..) = lab.ssh_status(host, &format!("test -e {}/ca-key.pem", run.dir));
            assert_eq!(code, Some(1), "the CA key stays on etcd0 in controller mode");
        }
    } else {
        lab.ssh("etcd1", &format!("test -e {}/ca-key.pem", run.dir));
    }

    // Again: every certificate fits, nothing is reissued, and etcd keeps running.
    let again = engine(&lab, "run", &run.params(mode, &[])).success();
    let certs = certgen_tasks(&again);
    assert_eq!(certs.len(), 2 + 2 * ETCD_HOSTS.len(), "{certs:?}");
    assert!(certs.iter().all(|(_, _, status)| status == "ok"), "{certs:?}");
    assert_eq!(again.count("changed"), 0, "{:?}", again.outcomes());

    // A client certificate from another CA is refused by etcd.
    let rogue = format!("{}/rogue", run.dir);
    let playbook = format!(
        r#"let h = host("etcd0");
let ca = h.certgen("rogue CA", #{{ kind: "ca", cn: "etcd", key: "rsa2048", dir: "{rogue}" }});
h.certgen("rogue client", #{{ kind: "leaf", profile: "client", cn: "client", dir: "{rogue}",
    ca: #{{ cert: ca.output("cert"), key: ca.output("key") }} }});
"#
    );
    let t = Test::new();
    let pb = t.file("rogue.rhai", &playbook);
    t.arg("run").arg(pb).arg("-i").arg(&lab.inventory).run().success();
    lab.ssh(
        "etcd0",
        &format!(
            "cp {rogue}/client.pem {0}/rogue.pem && cp {rogue}/client-key.pem {0}/rogue-key.pem",
            run.dir
        ),
    );
    let since = lab.ssh("etcd0", "date +%s").trim().to_owned();
    let (code, out) = etcdctl(&lab, &run.dir, "rogue", "endpoint health");
    assert_ne!(code, Some(0), "a client of another CA must be refused: {out}");
    let journal = lab.ssh("etcd0", &format!("journalctl -u etcd --no-pager --since @{since}"));
    let refusal =
        journal.lines().find(|l| l.contains("rejected connection") && l.contains("unknown authority"));
    assert!(refusal.is_some(), "etcd logs why it refused the client: {journal}");
    eprintln!("{mode}: client cert of another CA refused; etcd0 logged: {}", refusal.unwrap());
    assert!(wait_healthy(&lab, &run.dir).is_ok(), "the cluster is still fine for the real client");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn etcd_cluster_with_controller_signed_certs() {
    cluster_forms("controller");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn etcd_cluster_the_guides_way_with_the_ca_key_copied() {
    if modules::registry::find("scp").is_none() {
        eprintln!("skipped: no scp module in the registry");
        return;
    }
    cluster_forms("guide");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn peer_certs_without_the_ip_san_keep_the_cluster_from_forming() {
    let lab = Lab::get();
    let _one_at_a_time = ETCD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = Run::new("nosan");
    stop_etcd(&lab);
    let _cleanup = Cleanup { lab: &lab, run: &run };

    // systemctl start waits for etcd's readiness, which needs a quorum: bound it.
    let since = lab.ssh("etcd0", "date +%s").trim().to_owned();
    let broken = run.params("controller", &["peer_sans=name", "start_timeout=12s"]);
    let out = engine(&lab, "run", &broken);
    assert_eq!(out.code, Some(2), "starting etcd must fail: {:?}", out.outcomes());
    let (code, health) = etcdctl(&lab, &run.dir, "client", "endpoint health --cluster");
    assert_ne!(code, Some(0), "no cluster without peer IP SANs: {health}");
    let journal = lab.ssh("etcd0", &format!("journalctl -u etcd --no-pager --since @{since}"));
    let why =
        journal.lines().find(|l| l.contains("certificate is valid for") || l.contains("bad certificate"));
    assert!(why.is_some(), "etcd names the certificate problem: {journal}");
    eprintln!("no peer IP SAN: etcd0 logged: {}", why.unwrap());

    // certgen itself does not call such a peer cert fine when the default SANs are asked for.
    let check = engine(&lab, "check", &run.params("controller", &[]));
    for host in ETCD_HOSTS {
        let task = check.task(host, "etcd peer cert");
        assert_eq!(task["status"], "changed", "{task}");
        let changes = task["changes"].to_string();
        let missing = format!("SAN {} missing", lab.address(host));
        assert!(changes.contains(&missing), "{changes}");
        assert_eq!(check.task(host, "etcd server cert")["status"], "ok");
    }
    stop_etcd(&lab);
}
