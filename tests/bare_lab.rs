//! Lab tests of the bare lab (`cargo xtask lab up --bare`, see docs/lab.md): hosts that look like
//! a fresh Debian 12 (or 13: `--releases`) cloud image, whose apt reaches only the lab's signed package mirror.
//!
//! `cargo xtask test` runs them last, on a bare lab of two hosts it boots for them, and passes
//! its inventory in `ENGINE_LAB_BARE_INVENTORY`; like every lab test they are ignored by a plain
//! `cargo test`, and fail, naming the variable, when run without it. By hand:
//!
//! ```text
//! flock /tmp/engine-lab.lock bash -c 'cargo xtask lab up --topology 2 --bare &&
//!     ENGINE_LAB_BARE_INVENTORY=$PWD/target/lab/inventory.yml \
//!     cargo test --test main -- --include-ignored bare_lab::; cargo xtask lab down'
//! ```

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::support;

use support::lab::Lab;
use support::{Test, engine_json, task_error};

/// The tests that install packages restart the last host first and take turns on it.
static LAST_HOST: Mutex<()> = Mutex::new(());

fn last_host_turn() -> MutexGuard<'static, ()> {
    LAST_HOST.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The bare lab. It needs two hosts: the apt test restarts the last one while the others use
/// the first.
#[track_caller]
fn bare_lab() -> Lab {
    let lab = Lab::bare();
    assert!(
        lab.hosts.len() >= 2,
        "the bare lab tests need two hosts: `cargo xtask lab up --topology 2 --bare`"
    );
    lab
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn a_bare_host_looks_like_a_fresh_cloud_image() {
    let lab = bare_lab();
    let host = lab.hosts[0].0.clone();

    let (code, _, stderr) = lab.ssh_status_as("root", &host, "true");
    assert_eq!(code, Some(255), "root must not log in: {stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(lab.ssh_as("debian", &host, "sudo -n id -u").trim(), "0", "debian has passwordless sudo");
    let sshd = lab.ssh_as("debian", &host, "sudo -n sshd -T | grep -i '^permitrootlogin '");
    assert_eq!(sshd.trim(), "permitrootlogin no");

    let present = lab.ssh_as(
        "debian",
        &host,
        "for p in etcd etcdctl keepalived containerd runc curl kubeadm kubelet kubectl python3; do \
         command -v \"$p\" || true; done",
    );
    assert_eq!(present, "", "a bare host has none of what the playbooks install");
    for tool in ["systemctl", "sshd", "sudo", "ip", "update-ca-certificates"] {
        lab.ssh_as("debian", &host, &format!("PATH=$PATH:/usr/sbin command -v {tool}"));
    }

    let sources = lab.ssh_as(
        "debian",
        &host,
        "test ! -e /etc/apt/sources.list && cd /etc/apt/sources.list.d && for f in *; do echo \"# $f\"; cat \"$f\"; done",
    );
    let want = format!(
        "\
# debian.sources
Types: deb
URIs: http://10.77.0.2/debian
Suites: {}
Components: main
Signed-By: /etc/apt/keyrings/engine-lab-mirror.gpg
",
        lab.suite(&host)
    );
    assert_eq!(sources, want, "apt reaches only the lab mirror, signed by the lab key");
    lab.ssh_as("debian", &host, "test -s /etc/apt/keyrings/engine-lab-mirror.gpg");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn apt_installs_curl_from_the_signed_lab_mirror_and_a_rerun_changes_nothing() {
    let lab = bare_lab();
    let _turn = last_host_turn();
    let host = lab.hosts.last().expect("a bare lab has hosts").0.clone();
    // Fresh from the image, also when this test ran before on the same lab.
    lab.restart(&[&host]);
    let (code, ..) = lab.ssh_status_as("debian", &host, "command -v curl");
    assert_eq!(code, Some(1), "curl is not there before the run");

    let run = || {
        let t = Test::new();
        let playbook = t.file("pb.rhai", &format!(r#"host("{host}").apt("curl", #{{ name: "curl" }});"#));
        t.arg("run").arg(&playbook).arg("-i").arg(&lab.inventory).arg("--json").run()
    };
    let first = run().success();
    assert_eq!(first.task(&host, "curl")["status"], "changed");
    let version = lab.ssh_as("debian", &host, "curl --version");
    assert!(version.starts_with("curl "), "{version}");
    let policy = lab.ssh_as("debian", &host, "apt-cache policy curl");
    let index = format!("http://10.77.0.2/debian {}/main amd64 Packages", lab.suite(&host));
    assert!(policy.contains(&index), "{policy}");

    assert_eq!(run().success().count("changed"), 0, "a re-run changes nothing");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn the_mirror_is_trusted_only_through_the_lab_key() {
    let lab = bare_lab();
    // On the first host of each Debian release in the lab: apt 2 (Debian 12) checks signatures
    // with gpgv, apt 3 (Debian 13) with sqv, and each says in its own words that the key is
    // missing.
    let mut seen = Vec::new();
    for (host, ..) in &lab.hosts {
        let debian = lab.debian(host);
        if seen.contains(&debian) {
            continue;
        }
        seen.push(debian);
        let suite = lab.suite(host);
        // The same mirror, once with the lab key and once with Debian's own archive keyring,
        // each into lists of its own (the host's real lists stay untouched).
        let update = |name: &str, keyring: &str| {
            let dir = format!("/tmp/engine-test-bare-{name}-{}", std::process::id());
            let script = format!(
                "mkdir -p {dir}/lists/partial && \
                 echo 'deb [signed-by={keyring}] http://10.77.0.2/debian {suite} main' >{dir}/one.list && \
                 sudo -n apt-get update -q -o Dir::Etc::SourceList={dir}/one.list -o Dir::Etc::SourceParts=/nonexistent \
                 -o Dir::State::Lists={dir}/lists; code=$?; sudo -n rm -rf {dir}; exit $code"
            );
            lab.ssh_status_as("debian", host, &script)
        };
        let (code, _, stderr) = update("lab-key", "/etc/apt/keyrings/engine-lab-mirror.gpg");
        assert_eq!(code, Some(0), "{host}: {stderr}");
        let (code, _, stderr) = update("debian-key", "/usr/share/keyrings/debian-archive-keyring.gpg");
        assert_eq!(code, Some(100), "{host}: a Release not signed by the given key is refused: {stderr}");
        let missing = if debian >= 13 { "Missing key " } else { "NO_PUBKEY " };
        assert!(stderr.contains(missing) && stderr.contains("is not signed"), "{host}: {stderr}");
    }
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn the_mirror_serves_an_etcd_release_tarball_that_matches_its_sha256sums() {
    let lab = bare_lab();
    let host = lab.hosts[0].0.clone();
    let dir = format!("/tmp/engine-test-bare-etcd-{}", std::process::id());
    // The mirror's etcd-server version says which release it serves (read into lists of the
    // test's own, so no other test's apt meets this one); apt's own HTTP client fetches (a bare
    // host has no curl).
    let script = format!(
        "set -e; mkdir -p {dir}/lists/partial && cd {dir}; lists=-oDir::State::Lists={dir}/lists; \
         sudo -n apt-get update -q $lists >/dev/null; \
         v=$(apt-cache $lists show --no-all-versions etcd-server | sed -n 's/^Version: //p'); v=${{v%-*}}; \
         base=http://10.77.0.2/etcd/v$v; \
         /usr/lib/apt/apt-helper download-file $base/SHA256SUMS SHA256SUMS >/dev/null; \
         /usr/lib/apt/apt-helper download-file $base/etcd-v$v-linux-amd64.tar.gz etcd-v$v-linux-amd64.tar.gz >/dev/null; \
         sha256sum -c SHA256SUMS; tar -tzf etcd-v$v-linux-amd64.tar.gz; \
         tar -xzf etcd-v$v-linux-amd64.tar.gz; ./etcd-v$v-linux-amd64/etcd --version | head -1; \
         cd / && sudo -n rm -rf {dir}; echo v=$v"
    );
    let out = lab.ssh_as("debian", &host, &script);
    let version = out.lines().last().and_then(|l| l.strip_prefix("v=")).expect("the version line").to_owned();
    let name = format!("etcd-v{version}-linux-amd64");
    let want = format!(
        "{name}.tar.gz: OK\n{name}/\n{name}/README-engine-lab.md\n{name}/etcd\n{name}/etcdctl\netcd Version: {version}\nv={version}\n"
    );
    assert_eq!(out, want);

    let (code, _, stderr) = lab.ssh_status_as(
        "debian",
        &host,
        &format!("/usr/lib/apt/apt-helper download-file http://10.77.0.2/etcd/v0.0.0/etcd-v0.0.0-linux-amd64.tar.gz {dir}-none"),
    );
    assert_ne!(code, Some(0), "a release the mirror does not have is not found: {stderr}");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn kubeadm_installs_pinned_from_the_lab_s_kubernetes_repository_and_a_version_it_lacks_is_refused() {
    let lab = bare_lab();
    let _turn = last_host_turn();
    let host = lab.hosts.last().expect("a bare lab has hosts").0.clone();
    lab.restart(&[&host]);
    // As the install-kubeadm page: curl, the repository's Release.key into a keyring, a flat
    // source signed by it, then kubeadm pinned (to the older of v1.30's two versions).
    let url = "http://10.77.0.2/k8s/core:/stable:/v1.30/deb/";
    let t = Test::new();
    let playbook = |name: &str, version: &str| {
        t.file(
            name,
            &format!(
                r#"let h = host("{host}");
h.apt("curl", #{{ name: "curl" }});
h.apt_key("kubernetes key", #{{ name: "kubernetes-apt-keyring", url: "{url}Release.key" }});
h.apt_repository("kubernetes repository", #{{
    name: "kubernetes", uris: ["{url}"], suites: ["/"],
    signed_by: "/etc/apt/keyrings/kubernetes-apt-keyring.gpg",
}});
h.apt("kubeadm", #{{ name: "kubeadm", version: "{version}" }});
"#
            ),
        )
    };
    let pinned = playbook("pinned.rhai", "1.30.3-1.1");
    let first = engine_json("run", &pinned, &lab.inventory, &[], 0);
    for task in ["curl", "kubernetes key", "kubernetes repository", "kubeadm"] {
        assert_eq!(first.task(&host, task)["status"], "changed", "{task}: {}", first.stdout);
    }
    assert_eq!(lab.ssh_as("debian", &host, "kubeadm version -o short"), "v1.30.3\n");
    // Its dependency came from the same repository; kubelet and kubectl are not kubeadm's.
    assert_eq!(lab.ssh_as("debian", &host, "crictl --version"), "crictl version v1.30.1\n");
    let (code, ..) = lab.ssh_status_as("debian", &host, "command -v kubectl || command -v kubelet");
    assert_eq!(code, Some(1));
    let policy = lab.ssh_as("debian", &host, "apt-cache policy kubeadm");
    // apt names a flat repository by its URI without the final slash, then two spaces.
    assert!(policy.contains(&format!("500 {}  Packages", url.trim_end_matches('/'))), "{policy}");
    assert!(policy.contains("1.30.4-1.1 500") && policy.contains("*** 1.30.3-1.1 500"), "{policy}");
    let source = lab.ssh_as("debian", &host, "cat /etc/apt/sources.list.d/kubernetes.sources");
    assert!(source.contains("Signed-By: /etc/apt/keyrings/kubernetes-apt-keyring.gpg\n"), "{source}");
    assert_eq!(
        engine_json("run", &pinned, &lab.inventory, &[], 0).count("changed"),
        0,
        "a re-run changes nothing"
    );

    // A version the repository lacks: refused, naming the versions it has, nothing changed.
    let missing = playbook("missing.rhai", "1.30.9-1.1");
    let out = engine_json("run", &missing, &lab.inventory, &[], 2);
    assert_eq!(
        task_error(&out, &host, "kubeadm"),
        "kubeadm has no version 1.30.9-1.1 in the repositories (the versions it has: 1.30.4-1.1, \
         1.30.3-1.1); nothing was installed"
    );
    assert_eq!(lab.ssh_as("debian", &host, "kubeadm version -o short"), "v1.30.3\n");
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn the_kubernetes_repositories_publish_an_armored_key_and_the_mirror_s_key_does_not_verify_them() {
    let lab = bare_lab();
    let host = lab.hosts[0].0.clone();
    // (The apt_key test above proves each is trusted through its Release.key.) Each minor
    // release's flat repository, into lists of the test's own, with the Debian mirror's key.
    for minor in ["v1.30", "v1.31"] {
        let dir = format!("/tmp/engine-test-bare-k8s-{minor}-{}", std::process::id());
        let url = format!("http://10.77.0.2/k8s/core:/stable:/{minor}/deb/");
        let script = format!(
            "mkdir -p {dir}/lists/partial && cd {dir} && \
             /usr/lib/apt/apt-helper download-file {url}Release.key Release.key >/dev/null && \
             head -1 Release.key && \
             echo 'deb [signed-by=/etc/apt/keyrings/engine-lab-mirror.gpg] {url} /' >one.list && \
             sudo -n apt-get update -q -o Dir::Etc::SourceList={dir}/one.list -o Dir::Etc::SourceParts=/nonexistent \
             -o Dir::State::Lists={dir}/lists; code=$?; cd / && sudo -n rm -rf {dir}; exit $code"
        );
        let (code, stdout, stderr) = lab.ssh_status_as("debian", &host, &script);
        assert_eq!(code, Some(100), "{stdout}{stderr}");
        assert!(stdout.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"), "{stdout}");
        assert!(stderr.contains("NO_PUBKEY"), "{stderr}");
    }
}
