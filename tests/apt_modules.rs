//! Lab tests of the modules a real install needs: `apt` (version pins, hold), `apt_key`,
//! `apt_repository` and `get_url`, through the real `engine` binary on worker1. The lab has no
//! internet: downloads come from a one-shot HTTP server (python3, on the lab image) that the
//! host itself serves on its loopback, or from `file://` URLs; the apt repository is the image's
//! local one (`file:/srv/lab-repo`, with `hello`). Each test checks the real state on the host,
//! that `check` changes nothing, that a re-run reports 0 changed, and that a bad input is
//! refused with nothing changed; each restores what it changed.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::path::{Path, PathBuf};

use support::lab::{Lab, scratch};
use support::{Output, Test, changes, engine_json as engine};

const HOST: &str = "worker1";

/// Held by the tests that touch worker1's apt state (dpkg, holds, sources, lists), which the
/// harness would otherwise run at the same time: a source another test writes breaks an
/// `apt-get update`, and two of them install and remove `hello`.
static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn apt_turn() -> std::sync::MutexGuard<'static, ()> {
    APT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The test key (`tests/fixtures/apt/test-key.asc`, made with gpg for these tests).
const KEY: &str = include_str!("fixtures/apt/test-key.asc");
const FINGERPRINT: &str = "BD334585C3453ADE787CFE530F16B03C4C1F01D8";
/// SHA-256 of `gpg --export` of that key: the keyring apt_key must write.
const KEYRING_SHA256: &str = "cec1ea94f12d37de2616f86fa45fac84be787f79a4bde964e89dae7386c37898";

fn error(out: &Output, task: &str) -> String {
    support::task_error(out, HOST, task)
}

fn playbook(t: &Test, lab: &Lab, name: &str, body: &str) -> (PathBuf, PathBuf) {
    let inv = t.file("inv.yml", &lab.inventory_for(&[HOST], &[]));
    let pb = t.file(name, &format!("let h = host(\"{HOST}\");\n{body}"));
    (pb, inv)
}

/// Serves `dir` on worker1's loopback port `port` for at most two minutes (python3's
/// http.server, started in the background); returns once it answers.
fn serve(lab: &Lab, dir: &str, port: u16) {
    lab.ssh(
        HOST,
        &format!(
            "cd {dir} || exit 1; nohup timeout 120 python3 -m http.server {port} --bind 127.0.0.1 \
             </dev/null >/dev/null 2>&1 & echo $! > {dir}.pid; \
             for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:{port}/ && exit 0; sleep 0.1; done; exit 1"
        ),
    );
}

fn stop_serving(lab: &Lab, dir: &str) {
    lab.ssh_status(HOST, &format!("kill $(cat {dir}.pid) 2>/dev/null; rm -f {dir}.pid"));
}

// ---- apt: hold, pins

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn apt_holds_and_unholds_an_installed_package_and_a_pin_to_its_version_changes_nothing() {
    let lab = Lab::get();
    let _apt = apt_turn();
    let version = lab.ssh(HOST, "dpkg-query -W -f='${Version}' keepalived");
    assert!(!version.is_empty());
    assert_eq!(lab.ssh(HOST, "apt-mark showhold"), "", "nothing is held on the image");
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        "hold.rhai",
        &format!(
            r#"h.apt("keepalived", #{{ name: "keepalived={version}", hold: param("hold", "true") == "true", update_cache: "never" }});"#
        ),
    );

    let check = engine("check", &pb, &inv, &[], 0);
    assert_eq!(changes(&check.task(HOST, "keepalived")), ["hold keepalived"]);
    assert_eq!(lab.ssh(HOST, "apt-mark showhold"), "", "check changed nothing");

    let run = engine("run", &pb, &inv, &[], 0);
    assert_eq!(changes(&run.task(HOST, "keepalived")), ["hold keepalived"]);
    assert_eq!(lab.ssh(HOST, "apt-mark showhold"), "keepalived\n");
    assert_eq!(
        lab.ssh(HOST, "dpkg-query -W -f='${Version}' keepalived"),
        version,
        "the pin installed nothing"
    );
    let rerun = engine("run", &pb, &inv, &[], 0);
    assert_eq!(rerun.count("changed"), 0, "{}", rerun.stdout);

    let unhold = engine("run", &pb, &inv, &["-e", "hold=false"], 0);
    assert_eq!(changes(&unhold.task(HOST, "keepalived")), ["unhold keepalived"]);
    assert_eq!(lab.ssh(HOST, "apt-mark showhold"), "");
    lab.ssh(HOST, "apt-mark unhold keepalived >/dev/null");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn apt_refuses_a_pinned_version_the_repository_lacks_naming_the_versions_it_has() {
    let lab = Lab::get();
    let _apt = apt_turn();
    assert!(
        lab.ssh_status(HOST, "test -s /srv/lab-repo/Packages && test -e /etc/apt/sources.list.d/lab.list").0
            == Some(0),
        "the lab image predates its local apt repository"
    );
    let has =
        lab.ssh(HOST, "awk '/^Package: hello$/{p=1} p&&/^Version:/{print $2; exit}' /srv/lab-repo/Packages");
    let has = has.trim();
    assert!(!has.is_empty());
    // The image ships no package lists: `auto` updates, then finds the version missing.
    lab.ssh(HOST, "rm -f /var/lib/apt/lists/*_Packages /var/lib/apt/periodic/update-success-stamp");
    let t = Test::new();
    let (pb, inv) = playbook(&t, &lab, "pin.rhai", r#"h.apt("hello", #{ name: "hello=0.0-nope" });"#);
    let want = format!(
        "hello has no version 0.0-nope in the repositories (the versions it has: {has}); nothing was installed"
    );
    let first = engine("run", &pb, &inv, &[], 2);
    assert_eq!(error(&first, "hello"), want);
    // Now with fresh lists, refused while planning: check says so too.
    let check = engine("check", &pb, &inv, &[], 2);
    assert_eq!(error(&check, "hello"), want);
    let second = engine("run", &pb, &inv, &[], 2);
    assert_eq!(error(&second, "hello"), want);
    assert_eq!(
        lab.ssh_status(HOST, "dpkg-query -W -f='${Status}' hello 2>/dev/null | grep -q 'ok installed'").0,
        Some(1)
    );
    // The right version installs, and a re-run changes nothing.
    let (pb2, _) = playbook(
        &t,
        &lab,
        "pin2.rhai",
        &format!(r#"h.apt("hello", #{{ name: "hello", version: "{has}" }});"#),
    );
    let ok = engine("run", &pb2, &inv, &[], 0);
    assert_eq!(changes(&ok.task(HOST, "hello")), [format!("install hello={has}")]);
    assert_eq!(engine("run", &pb2, &inv, &[], 0).count("changed"), 0);
    lab.ssh(HOST, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q hello >/dev/null");
    lab.ssh(HOST, "rm -f /var/lib/apt/lists/*_Packages /var/lib/apt/periodic/update-success-stamp");
}

// ---- apt_key

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn apt_key_writes_the_dearmored_keyring_and_a_wrong_fingerprint_writes_nothing() {
    let lab = Lab::get();
    let keyring = "/etc/apt/keyrings/engine-test.gpg";
    lab.ssh(HOST, &format!("rm -f {keyring}"));
    let t = Test::new();
    let key = serde_json::to_string(KEY).unwrap();
    let (pb, inv) = playbook(
        &t,
        &lab,
        "key.rhai",
        &format!(
            r#"h.apt_key("key", #{{ name: "engine-test", key: {key}, fingerprint: param("fpr", "{FINGERPRINT}") }});"#
        ),
    );
    let check = engine("check", &pb, &inv, &[], 0);
    assert_eq!(check.count("changed"), 1, "{}", check.stdout);
    assert!(changes(&check.task(HOST, "key")).contains(&format!("key {FINGERPRINT}")));
    assert_eq!(lab.ssh_status(HOST, &format!("test -e {keyring}")).0, Some(1), "check wrote nothing");

    engine("run", &pb, &inv, &[], 0);
    assert_eq!(
        lab.ssh(HOST, &format!("sha256sum < {keyring}")).split_whitespace().next().unwrap(),
        KEYRING_SHA256
    );
    assert_eq!(lab.ssh(HOST, &format!("stat -c %a {keyring}")).trim(), "644");
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);

    // A wrong fingerprint: refused when the playbook is read, the keyring left as it was.
    lab.ssh(HOST, &format!("rm -f {keyring}"));
    let wrong = "0123456789ABCDEF0123456789ABCDEF01234567";
    let out = Test::new()
        .arg("run")
        .arg(&pb)
        .arg("-i")
        .arg(&inv)
        .args(["-e", &format!("fpr={wrong}")])
        .run()
        .code(1);
    assert!(
        out.stderr.contains(&format!(
            "the key's fingerprint is {FINGERPRINT}, not the expected {wrong}; nothing was written"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(lab.ssh_status(HOST, &format!("test -e {keyring}")).0, Some(1), "nothing written");

    // From a URL the host fetches (its own loopback), armored: the same keyring.
    let dir = scratch("apt-key-serve");
    lab.ssh(HOST, &format!("mkdir -p {dir}"));
    let (pb2, _) = playbook(
        &t,
        &lab,
        "key_url.rhai",
        &format!(
            r#"h.apt_key("key", #{{ name: "engine-test", url: "http://127.0.0.1:18081/key.asc", fingerprint: "{FINGERPRINT}" }});"#
        ),
    );
    lab.ssh(HOST, &format!("cat > {dir}/key.asc <<'EOF'\n{KEY}EOF"));
    serve(&lab, &dir, 18081);
    let fetched = engine("run", &pb2, &inv, &[], 0);
    stop_serving(&lab, &dir);
    assert_eq!(fetched.count("changed"), 1, "{}", fetched.stdout);
    assert_eq!(
        lab.ssh(HOST, &format!("sha256sum < {keyring}")).split_whitespace().next().unwrap(),
        KEYRING_SHA256
    );
    lab.ssh(HOST, &format!("rm -rf {keyring} {dir}"));
}

// ---- apt_repository

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn apt_repository_writes_a_signed_source_check_changes_nothing_and_absent_removes_it() {
    let lab = Lab::get();
    let _apt = apt_turn();
    let path = "/etc/apt/sources.list.d/engine-test.sources";
    lab.ssh(HOST, &format!("rm -f {path}"));
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        "repo.rhai",
        r#"h.apt_repository("repo", #{
    name: "engine-test",
    uris: ["https://pkgs.k8s.io/core:/stable:/v1.30/deb/"],
    suites: ["/"],
    signed_by: "/etc/apt/keyrings/engine-test.gpg",
    update_cache: false,
    state: param("state", "present"),
});"#,
    );
    let check = engine("check", &pb, &inv, &["--diff"], 0);
    assert_eq!(changes(&check.task(HOST, "repo")), [format!("create {path} (167 bytes)")]);
    assert!(
        check.task(HOST, "repo")["diff"]
            .as_str()
            .unwrap()
            .contains("+Signed-By: /etc/apt/keyrings/engine-test.gpg")
    );
    assert_eq!(lab.ssh_status(HOST, &format!("test -e {path}")).0, Some(1), "check wrote nothing");

    engine("run", &pb, &inv, &[], 0);
    assert_eq!(
        lab.ssh(HOST, &format!("cat {path}")),
        "# Managed by engine (apt_repository engine-test).\nTypes: deb\n\
         URIs: https://pkgs.k8s.io/core:/stable:/v1.30/deb/\nSuites: /\n\
         Signed-By: /etc/apt/keyrings/engine-test.gpg\n"
    );
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);
    let gone = engine("run", &pb, &inv, &["-e", "state=absent"], 0);
    assert_eq!(changes(&gone.task(HOST, "repo")), [format!("remove {path}")]);
    assert_eq!(lab.ssh_status(HOST, &format!("test -e {path}")).0, Some(1));
    lab.ssh(HOST, &format!("rm -f {path}"));
}

// ---- get_url

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn get_url_downloads_once_verified_and_a_wrong_checksum_replaces_nothing() {
    let lab = Lab::get();
    let dir = scratch("get-url-serve");
    let dest = format!("{}.bin", scratch("get-url"));
    lab.ssh(HOST, &format!("rm -rf {dir} {dest}; mkdir -p {dir} && printf 'release one\\n' > {dir}/a.bin"));
    let sum = "sha256:".to_owned()
        + lab.ssh(HOST, &format!("sha256sum < {dir}/a.bin")).split_whitespace().next().unwrap();
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        "get.rhai",
        &format!(
            r#"h.get_url("get", #{{ url: param("url", "http://127.0.0.1:18082/a.bin"), dest: "{dest}", checksum: param("sum", "{sum}"), mode: "0750" }});"#
        ),
    );
    serve(&lab, &dir, 18082);
    let check = engine("check", &pb, &inv, &[], 0);
    assert_eq!(
        changes(&check.task(HOST, "get")),
        [format!("download {dest} from http://127.0.0.1:18082/a.bin ({sum})")]
    );
    assert_eq!(lab.ssh_status(HOST, &format!("test -e {dest}")).0, Some(1), "check downloaded nothing");
    engine("run", &pb, &inv, &[], 0);
    stop_serving(&lab, &dir);
    assert_eq!(lab.ssh(HOST, &format!("cat {dest}")), "release one\n");
    assert_eq!(lab.ssh(HOST, &format!("stat -c %a {dest}")).trim(), "750");
    // The server is gone: a re-run that downloaded would fail; the checksum matches, so none.
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);

    // A new release with the old checksum (file:// through curl): refused, dest kept, no temp left.
    lab.ssh(HOST, &format!("printf 'release two\\n' > {dir}/a.bin"));
    let url = format!("file://{dir}/a.bin");
    let wrong = engine(
        "run",
        &pb,
        &inv,
        &["-e", &format!("url={url}"), "-e", &format!("sum={}", "sha256:".to_owned() + &"0".repeat(64))],
        2,
    );
    let got = lab.ssh(HOST, &format!("sha256sum < {dir}/a.bin"));
    let got = got.split_whitespace().next().unwrap();
    assert_eq!(
        error(&wrong, "get"),
        format!(
            "the download of {url} has sha256:{got}, not the expected sha256:{}; {dest} was left as it was and the download removed",
            "0".repeat(64)
        )
    );
    assert_eq!(lab.ssh(HOST, &format!("cat {dest}")), "release one\n", "dest left as it was");
    assert_eq!(
        lab.ssh(HOST, &format!("ls -a {dest}.engine-* 2>/dev/null | wc -l")).trim(),
        "0",
        "no temp file left"
    );
    // The right checksum replaces it atomically, keeping the mode.
    let right =
        engine("run", &pb, &inv, &["-e", &format!("url={url}"), "-e", &format!("sum=sha256:{got}")], 0);
    assert_eq!(changes(&right.task(HOST, "get")), [format!("replace {dest} from {url} (sha256:{got})")]);
    assert_eq!(lab.ssh(HOST, &format!("cat {dest}")), "release two\n");
    assert_eq!(lab.ssh(HOST, &format!("stat -c %a {dest}")).trim(), "750");
    lab.ssh(HOST, &format!("rm -rf {dir} {dest}"));
}

// ---- the three together: a signed repository apt trusts only through the written keyring

/// `gpg` on the controller with its own home in `home`.
fn gpg(home: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gpg on the controller");
    child.stdin.take().unwrap().write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "gpg {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The lab's local repository copied, its `Release` clearsigned (InRelease) with a key made
/// now on the controller, and served on worker1's loopback: `apt_key` writes that key,
/// `apt_repository` adds the source with `Signed-By:` and updates the lists, and `apt` installs
/// `hello` from it. The same source signed-by another key (the committed test key) makes the
/// update fail: apt trusted the repository only through the keyring apt_key wrote.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_repository_signed_by_a_key_from_apt_key_updates_and_installs() {
    let lab = Lab::get();
    let _apt = apt_turn();
    let dir = scratch("signed-repo");
    let t = Test::new();
    let home = t.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    gpg(&home, &["--quick-gen-key", "engine lab repo <repo@engine.invalid>", "ed25519", "sign", "1d"], None);
    let public = gpg(&home, &["--armor", "--export", "repo@engine.invalid"], None);
    let colons = gpg(&home, &["--with-colons", "--fingerprint", "repo@engine.invalid"], None);
    let fingerprint =
        colons.lines().find_map(|l| l.strip_prefix("fpr:")).unwrap().trim_matches(':').to_owned();
    lab.ssh(HOST, &format!("rm -rf {dir} && cp -r /srv/lab-repo {dir}"));
    let release = lab.ssh(HOST, &format!("cat {dir}/Release"));
    let signed = gpg(&home, &["--clearsign", "--local-user", &fingerprint], Some(&release));
    let _ =
        std::process::Command::new("gpgconf").env("GNUPGHOME", &home).args(["--kill", "gpg-agent"]).status();
    lab.ssh(HOST, &format!("cat > {dir}/InRelease <<'EOF'\n{signed}EOF"));
    lab.ssh(HOST, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q hello >/dev/null 2>&1 || :");

    let key = serde_json::to_string(&public).unwrap();
    let (pb, inv) = playbook(
        &t,
        &lab,
        "signed.rhai",
        &format!(
            r#"let key = h.apt_key("key", #{{ name: "engine-lab-repo", key: {key}, fingerprint: "{fingerprint}" }});
let repo = h.apt_repository("repo", #{{
    name: "engine-lab-repo",
    uris: ["http://127.0.0.1:18084/"],
    suites: ["./"],
    signed_by: param("keyring", "/etc/apt/keyrings/engine-lab-repo.gpg"),
}}).after([key]);
h.apt("hello", #{{ name: "hello", update_cache: "never" }}).after([repo]);"#
        ),
    );
    serve(&lab, &dir, 18084);
    let run = engine("run", &pb, &inv, &[], 0);
    let repo = changes(&run.task(HOST, "repo"));
    assert_eq!(repo.last().unwrap(), "apt-get update (the source changed)", "{repo:?}");
    assert_eq!(changes(&run.task(HOST, "hello")), ["install hello"]);
    let policy = lab.ssh(HOST, "LC_ALL=C apt-cache policy hello");
    assert!(policy.contains("http://127.0.0.1:18084 ./ Packages"), "{policy}");
    let rerun = engine("run", &pb, &inv, &[], 0);
    assert_eq!(rerun.count("changed"), 0, "the source unchanged: no update\n{}", rerun.stdout);

    // The source signed-by another keyring, as a repository apt has not fetched before (a
    // known one keeps its old lists and only warns): apt refuses the repository's signature.
    lab.ssh(HOST, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q hello >/dev/null");
    lab.ssh(HOST, "rm -f /var/lib/apt/lists/127.0.0.1*");
    let other = "/etc/apt/keyrings/engine-other.gpg";
    let (other_pb, _) = playbook(
        &t,
        &lab,
        "other.rhai",
        &format!(
            r#"h.apt_key("key", #{{ name: "engine-other", key: {} }});"#,
            serde_json::to_string(KEY).unwrap()
        ),
    );
    engine("run", &other_pb, &inv, &[], 0);
    let refused = engine("run", &pb, &inv, &["-e", &format!("keyring={other}")], 2);
    let error = error(&refused, "repo");
    assert!(
        error.contains("NO_PUBKEY") || error.contains("not signed") || error.contains("signature"),
        "{error}"
    );
    stop_serving(&lab, &dir);
    lab.ssh(
        HOST,
        &format!(
            "rm -rf {dir} {other} /etc/apt/keyrings/engine-lab-repo.gpg /etc/apt/sources.list.d/engine-lab-repo.sources; \
             rm -f /var/lib/apt/lists/*_Packages /var/lib/apt/lists/*Release* /var/lib/apt/periodic/update-success-stamp"
        ),
    );
}
