//! Lab tests of the modules that prepare a bare machine: `line`, `block`, `sysctl`,
//! `modprobe`, `swap`, `user`, `group`, `unarchive` (tar and zip, on the host and on the
//! controller) and `get_url` through the controller, through the real `engine` binary on
//! worker2 (which the other lab files barely use). Each test checks the real state on the host,
//! that `check` changes nothing, that a re-run reports 0 changed, and that a bad input is
//! refused with nothing changed; each restores what it changed.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::path::PathBuf;

use support::lab::{Lab, scratch};
use support::{Output, Test, changes, engine_json as engine};

const HOST: &str = "worker2";

fn error(out: &Output, task: &str) -> String {
    support::task_error(out, HOST, task)
}

/// A playbook `body` for worker2 (as `h`), with its inventory.
fn playbook(t: &Test, lab: &Lab, body: &str) -> (PathBuf, PathBuf) {
    let inv = t.file("inv.yml", &lab.inventory_for(&[HOST], &[]));
    let pb = t.file("pb.rhai", &format!("let h = host(\"{HOST}\");\n{body}"));
    (pb, inv)
}

// ---- line and block

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn line_and_block_edit_a_file_check_changes_nothing_and_a_rerun_changes_nothing() {
    let lab = Lab::get();
    let path = format!("{}.conf", scratch("line"));
    let before =
        "Port 22\n#PermitRootLogin prohibit-password\nPermitRootLogin yes\nUsePAM yes\nX11Forwarding yes\n";
    lab.ssh(HOST, &format!("printf '%s' '{before}' > {path} && chmod 0640 {path}"));
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        &format!(
            r#"
h.line("root login", #{{ path: "{path}", regexp: "^#?PermitRootLogin\\s", line: "PermitRootLogin no" }});
h.line("auth tries", #{{ path: "{path}", regexp: "^MaxAuthTries ", line: "MaxAuthTries 3", insert_after: "^Port " }});
h.line("no x11", #{{ path: "{path}", regexp: "^X11Forwarding", state: "absent" }});
h.block("match", #{{ path: "{path}", name: "lab", block: param("block", "Match User deploy\n    PasswordAuthentication no\n") }});
"#
        ),
    );
    let after = "Port 22\nMaxAuthTries 3\n#PermitRootLogin prohibit-password\nPermitRootLogin no\nUsePAM yes\n\
                 # BEGIN ENGINE MANAGED BLOCK lab\nMatch User deploy\n    PasswordAuthentication no\n\
                 # END ENGINE MANAGED BLOCK lab\n";

    let check = engine("check", &pb, &inv, &["--diff"], 0);
    assert_eq!(check.count("changed"), 4, "{}", check.stdout);
    assert_eq!(changes(&check.task(HOST, "root login"))[0], format!("replace line 3 of {path}"));
    let diff = check.task(HOST, "root login")["diff"].as_str().unwrap().to_owned();
    assert!(diff.contains("-PermitRootLogin yes\n+PermitRootLogin no"), "{diff}");
    assert_eq!(lab.ssh(HOST, &format!("cat {path}")), before, "check changed nothing");

    let run = engine("run", &pb, &inv, &[], 0);
    assert_eq!(run.count("changed"), 4, "{}", run.stdout);
    assert_eq!(lab.ssh(HOST, &format!("cat {path}")), after);
    assert_eq!(lab.ssh(HOST, &format!("stat -c %a {path}")).trim(), "640", "mode kept");

    let again = engine("run", &pb, &inv, &[], 0);
    assert_eq!(again.count("changed"), 0, "{}", again.stdout);

    // A changed block is replaced in place, the rest untouched.
    engine("run", &pb, &inv, &["-e", "block='Match User ci'"], 0);
    let text = lab.ssh(HOST, &format!("cat {path}"));
    assert!(
        text.ends_with(
            "UsePAM yes\n# BEGIN ENGINE MANAGED BLOCK lab\nMatch User ci\n# END ENGINE MANAGED BLOCK lab\n"
        ),
        "{text}"
    );

    // Bad input: a file holding half a block is refused, and left as it was.
    let half = "a\n# BEGIN ENGINE MANAGED BLOCK lab\nb\n";
    lab.ssh(HOST, &format!("printf '%s' '{half}' > {path}"));
    let t2 = Test::new();
    let (pb2, inv2) =
        playbook(&t2, &lab, &format!(r#"h.block("match", #{{ path: "{path}", name: "lab", block: "x" }});"#));
    let failed = engine("run", &pb2, &inv2, &[], 2);
    assert_eq!(failed.task(HOST, "match")["status"], "failed");
    let error = error(&failed, "match");
    assert!(error.ends_with("holds 1 \"# BEGIN ENGINE MANAGED BLOCK lab\" and 0 \"# END ENGINE MANAGED BLOCK lab\" lines, not one block: fix it by hand"), "{error}");
    assert_eq!(lab.ssh(HOST, &format!("cat {path}")), half, "nothing changed");
    lab.ssh(HOST, &format!("rm -f {path}"));
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn line_creates_a_missing_file_only_when_asked() {
    let lab = Lab::get();
    let path = format!("{}.list", scratch("line-create"));
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        &format!(
            r#"h.line("l", #{{ path: "{path}", line: "br_netfilter", create: param("create", "no") == "yes" }});"#
        ),
    );
    let refused = engine("run", &pb, &inv, &[], 2);
    assert_eq!(error(&refused, "l"), format!("{path} does not exist (create: true creates it)"));
    lab.ssh(HOST, &format!("test ! -e {path}"));
    engine("run", &pb, &inv, &["-e", "create=yes"], 0);
    assert_eq!(lab.ssh(HOST, &format!("cat {path}; stat -c %a {path}")), "br_netfilter\n644\n");
    assert_eq!(engine("run", &pb, &inv, &["-e", "create=yes"], 0).count("changed"), 0);
    lab.ssh(HOST, &format!("rm -f {path}"));
}

// ---- sysctl

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn sysctl_persists_and_sets_the_live_value_and_a_refused_key_fails_clearly() {
    let lab = Lab::get();
    let name = format!("engine-test-{}", std::process::id());
    let conf = format!("/etc/sysctl.d/{name}.conf");
    let live = || lab.ssh(HOST, "cat /proc/sys/net/ipv4/ip_forward").trim().to_owned();
    let original = live();
    let wanted = if original == "1" { "0" } else { "1" };
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        &format!(
            r#"h.sysctl("forward", #{{ file: "{name}", settings: #{{ "net.ipv4.ip_forward": {wanted} }} }});"#
        ),
    );

    let check = engine("check", &pb, &inv, &[], 0);
    assert_eq!(
        changes(&check.task(HOST, "forward")),
        [
            format!("create {conf} (24 bytes)"),
            format!("net.ipv4.ip_forward: {original} -> {wanted} (running kernel)")
        ]
    );
    assert_eq!(live(), original, "check changed nothing");
    lab.ssh(HOST, &format!("test ! -e {conf}"));

    engine("run", &pb, &inv, &[], 0);
    assert_eq!(live(), wanted);
    assert_eq!(lab.ssh(HOST, &format!("cat {conf}")), format!("net.ipv4.ip_forward = {wanted}\n"));
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);

    // The live value drifts: only it is set again.
    lab.ssh(HOST, &format!("sysctl -q -w net.ipv4.ip_forward={original}"));
    let drift = engine("run", &pb, &inv, &[], 0);
    assert_eq!(
        changes(&drift.task(HOST, "forward")),
        [format!("net.ipv4.ip_forward: {original} -> {wanted} (running kernel)")]
    );

    // A key the kernel lacks is refused before anything is written.
    let t2 = Test::new();
    let missing = format!("{name}-missing");
    let (pb2, inv2) = playbook(
        &t2,
        &lab,
        &format!(
            r#"h.sysctl("nope", #{{ file: "{missing}", settings: #{{ "net.ipv4.engine_no_such_key": 1 }} }});"#
        ),
    );
    let out = engine("run", &pb2, &inv2, &[], 2);
    assert_eq!(
        error(&out, "nope"),
        "the running kernel has no parameter net.ipv4.engine_no_such_key (/proc/sys/net/ipv4/engine_no_such_key is absent)"
    );
    lab.ssh(HOST, &format!("test ! -e /etc/sysctl.d/{missing}.conf"));

    // A key outside the container's network namespace is read-only here: the task fails,
    // naming it, and the live value is untouched (the file holds it for the next boot).
    let swappiness = lab.ssh(HOST, "cat /proc/sys/vm/swappiness").trim().to_owned();
    let other = if swappiness == "10" { "11" } else { "10" };
    let t3 = Test::new();
    let (pb3, inv3) = playbook(
        &t3,
        &lab,
        &format!(
            r#"h.sysctl("swappiness", #{{ file: "{missing}", settings: #{{ "vm.swappiness": {other} }} }});"#
        ),
    );
    let out = engine("run", &pb3, &inv3, &[], 2);
    let error = error(&out, "swappiness");
    assert!(error.starts_with(&format!("the running kernel refused vm.swappiness = {other}: ")), "{error}");
    assert!(error.ends_with(&format!("/etc/sysctl.d/{missing}.conf holds it for the next boot")), "{error}");
    assert_eq!(lab.ssh(HOST, "cat /proc/sys/vm/swappiness").trim(), swappiness);

    lab.ssh(
        HOST,
        &format!("rm -f {conf} /etc/sysctl.d/{missing}.conf; sysctl -q -w net.ipv4.ip_forward={original}"),
    );
}

// ---- modprobe

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn modprobe_sees_the_kernels_modules_and_persists_them() {
    let lab = Lab::get();
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        r#"
h.modprobe("overlay", #{ name: "overlay" });
h.modprobe("br_netfilter", #{ name: "br_netfilter" });
"#,
    );
    let existed = lab.ssh(HOST, "ls /etc/modules-load.d");
    assert!(!existed.contains("overlay.conf") && !existed.contains("br_netfilter.conf"), "{existed}");
    let check = engine("check", &pb, &inv, &[], 0);
    // The lab's machine has both in its kernel: only the boot-time files are missing.
    assert_eq!(changes(&check.task(HOST, "overlay")), ["create /etc/modules-load.d/overlay.conf (8 bytes)"]);
    assert_eq!(
        changes(&check.task(HOST, "br_netfilter")),
        ["create /etc/modules-load.d/br_netfilter.conf (13 bytes)"]
    );
    lab.ssh(HOST, "test ! -e /etc/modules-load.d/overlay.conf");
    engine("run", &pb, &inv, &[], 0);
    assert_eq!(
        lab.ssh(HOST, "cat /etc/modules-load.d/overlay.conf /etc/modules-load.d/br_netfilter.conf"),
        "overlay\nbr_netfilter\n"
    );
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);

    // A module the kernel lacks cannot be loaded in a container: the task says so.
    let t2 = Test::new();
    let (pb2, inv2) =
        playbook(&t2, &lab, r#"h.modprobe("none", #{ name: "engine_no_such_module", persist: false });"#);
    let out = engine("run", &pb2, &inv2, &[], 2);
    let error = error(&out, "none");
    assert!(error.starts_with("cannot load kernel module engine_no_such_module: "), "{error}");
    assert!(
        error.ends_with("(a container cannot load kernel modules: load it on the machine that runs it)"),
        "{error}"
    );
    lab.ssh(HOST, "rm -f /etc/modules-load.d/overlay.conf /etc/modules-load.d/br_netfilter.conf");
}

// ---- swap

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn swap_comments_out_every_active_swap_line_once() {
    let lab = Lab::get();
    let fstab = format!("{}.fstab", scratch("swap"));
    let before = "UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n# /old none swap sw 0 0\n";
    lab.ssh(HOST, &format!("printf '%s' '{before}' > {fstab}"));
    let t = Test::new();
    let (pb, inv) = playbook(&t, &lab, &format!(r#"h.swap("swap off", #{{ fstab: "{fstab}" }});"#));
    // The lab's hosts have no active swap (/proc/swaps lists none): only fstab changes.
    assert_eq!(lab.ssh(HOST, "tail -n +2 /proc/swaps"), "");
    let check = engine("check", &pb, &inv, &["--diff"], 0);
    let task = check.task(HOST, "swap off");
    assert_eq!(changes(&task)[0], format!("comment out 1 swap line(s) of {fstab}"));
    assert!(
        task["diff"].as_str().unwrap().contains("-/swapfile none swap sw 0 0\n+#/swapfile none swap sw 0 0")
    );
    assert_eq!(lab.ssh(HOST, &format!("cat {fstab}")), before);
    engine("run", &pb, &inv, &[], 0);
    assert_eq!(
        lab.ssh(HOST, &format!("cat {fstab}")),
        "UUID=1 / ext4 defaults 0 1\n#/swapfile none swap sw 0 0\n# /old none swap sw 0 0\n"
    );
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);
    lab.ssh(HOST, &format!("rm -f {fstab}"));
}

// ---- user and group

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn user_and_group_are_created_changed_and_removed_through_the_shadow_tools() {
    let lab = Lab::get();
    let (user, group) = ("engineci", "engineops");
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        &format!(
            r#"
let g = h.group("group", #{{ name: "{group}", gid: 4321 }});
h.user("user", #{{ name: "{user}", uid: 4321, groups: ["{group}"], shell: param("shell", "/bin/bash") }}).after(g);
"#
        ),
    );
    lab.ssh(HOST, &format!("! getent passwd {user} && ! getent group {group}"));
    let check = engine("check", &pb, &inv, &[], 0);
    assert_eq!(check.count("changed"), 2, "{}", check.stdout);
    assert_eq!(changes(&check.task(HOST, "user")), [format!("create user {user}")]);
    lab.ssh(HOST, &format!("! getent passwd {user} && ! getent group {group}"));

    engine("run", &pb, &inv, &[], 0);
    assert_eq!(lab.ssh(HOST, &format!("getent group {group}")), format!("{group}:x:4321:{user}\n"));
    let passwd = lab.ssh(HOST, &format!("getent passwd {user}"));
    assert!(
        passwd.starts_with(&format!("{user}:x:4321:")) && passwd.ends_with(":/home/engineci:/bin/bash\n"),
        "{passwd}"
    );
    lab.ssh(HOST, "test -d /home/engineci");
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);

    let changed = engine("run", &pb, &inv, &["-e", "shell=/bin/sh"], 0);
    assert_eq!(changes(&changed.task(HOST, "user")), ["shell /bin/bash -> /bin/sh"]);
    assert!(lab.ssh(HOST, &format!("getent passwd {user}")).ends_with(":/bin/sh\n"));

    // Bad input: a group that does not exist is refused before anything changes.
    let t2 = Test::new();
    let (pb2, inv2) = playbook(
        &t2,
        &lab,
        &format!(r#"h.user("user", #{{ name: "{user}", groups: ["engine-no-such-group"] }});"#),
    );
    let out = engine("run", &pb2, &inv2, &[], 2);
    assert_eq!(
        error(&out, "user"),
        format!(
            "group engine-no-such-group does not exist on {HOST} (create it with the group module first)"
        )
    );

    let t3 = Test::new();
    let (pb3, inv3) = playbook(
        &t3,
        &lab,
        &format!(
            r#"
let u = h.user("user", #{{ name: "{user}", state: "absent", remove: true }});
h.group("group", #{{ name: "{group}", state: "absent" }}).after(u);
"#
        ),
    );
    assert_eq!(engine("run", &pb3, &inv3, &[], 0).count("changed"), 2);
    lab.ssh(HOST, &format!("! getent passwd {user} && ! getent group {group} && test ! -e /home/engineci"));
    assert_eq!(engine("run", &pb3, &inv3, &[], 0).count("changed"), 0);
}

// ---- unarchive

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn unarchive_extracts_once_re_extracts_a_changed_file_and_refuses_escaping_members() {
    let lab = Lab::get();
    let d = scratch("unarchive");
    lab.ssh(
        HOST,
        &format!(
            "mkdir -p {d}/src/pkg-1/bin && printf tool > {d}/src/pkg-1/bin/tool && printf readme > {d}/src/pkg-1/README \
             && tar -czf {d}/pkg.tar.gz -C {d}/src pkg-1 && printf evil > {d}/evil \
             && (cd {d}/src && tar -czPf {d}/dotdot.tar.gz pkg-1/README ../evil 2>/dev/null) \
             && ln -s /etc {d}/src/etc-link && tar -czf {d}/link.tar.gz -C {d}/src etc-link"
        ),
    );
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        &format!(
            r#"h.unarchive("pkg", #{{ src: "{d}/" + param("archive", "pkg.tar.gz"), dest: "{d}/out", strip_components: 1 }});"#
        ),
    );
    let check = engine("check", &pb, &inv, &[], 0);
    assert_eq!(
        changes(&check.task(HOST, "pkg")),
        [format!("extract {d}/pkg.tar.gz into {d}/out (3 members)")]
    );
    lab.ssh(HOST, &format!("test ! -e {d}/out"));

    engine("run", &pb, &inv, &[], 0);
    assert_eq!(lab.ssh(HOST, &format!("cat {d}/out/bin/tool {d}/out/README")), "toolreadme");
    let manifest = lab.ssh(HOST, &format!("cat {d}/out/.engine-unarchive-*.json"));
    assert!(manifest.contains("\"bin/tool\"") && manifest.contains("\"README\""), "{manifest}");
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);

    // A file changed since is extracted again.
    lab.ssh(HOST, &format!("printf changed > {d}/out/README"));
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 1);
    assert_eq!(lab.ssh(HOST, &format!("cat {d}/out/README")), "readme");

    // Escaping archives are refused with nothing extracted.
    for (archive, why) in [
        ("dotdot.tar.gz", "member \"../evil\" climbs out with .."),
        ("link.tar.gz", "symbolic link \"etc-link\" points to the absolute path \"/etc\""),
    ] {
        let t = Test::new();
        let (pb, inv) = playbook(
            &t,
            &lab,
            &format!(r#"h.unarchive("bad", #{{ src: "{d}/{archive}", dest: "{d}/bad" }});"#),
        );
        let out = engine("run", &pb, &inv, &[], 2);
        assert_eq!(error(&out, "bad"), format!("{d}/{archive} is refused, nothing was extracted: {why}"));
        lab.ssh(HOST, &format!("test ! -e {d}/bad"));
    }
    lab.ssh(HOST, &format!("rm -rf {d}"));
}

// ---- unarchive: zip, and archives on the controller

/// A Python one-liner (python3 is on the lab image and the controller, for test fixtures only)
/// writing a zip at `path` of `(name, content)` files, and symbolic links when content starts
/// with `->`.
fn make_zip(path: &str, members: &[(&str, &str)]) -> String {
    let mut code = format!("import zipfile; z = zipfile.ZipFile({path:?}, 'w'); ");
    for (name, content) in members {
        if let Some(target) = content.strip_prefix("->") {
            code.push_str(&format!(
                "i = zipfile.ZipInfo({name:?}); i.create_system = 3; i.external_attr = 0o120777 << 16; z.writestr(i, {target:?}); "
            ));
        } else {
            code.push_str(&format!("z.writestr({name:?}, {content:?}); "));
        }
    }
    code.push_str("z.close()");
    format!("python3 -c {}", shell_quote(&code))
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn unarchive_zip_and_controller_archives_extract_once_and_escaping_members_are_refused() {
    let lab = Lab::get();
    let d = scratch("unzip");
    let pkg = [("pkg-1/bin/tool", "tool"), ("pkg-1/README", "readme"), ("pkg-1/bin/t", "->tool")];
    lab.ssh(
        HOST,
        &format!(
            "rm -rf {d} && mkdir -p {d} && {} && {}",
            make_zip(&format!("{d}/pkg.zip"), &pkg),
            make_zip(&format!("{d}/escape.zip"), &[("ok", "ok"), ("../escape", "evil")]),
        ),
    );
    assert_eq!(lab.ssh(HOST, "command -v unzip").trim(), "/usr/bin/unzip", "the lab image has unzip");
    let t = Test::new();
    let local = t.path().join("files");
    std::fs::create_dir_all(&local).unwrap();
    let local_zip = local.join("site.zip");
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(make_zip(
            local_zip.to_str().unwrap(),
            &[("site/index.html", "hello"), ("site/css/a.css", "a{}")],
        ))
        .status()
        .unwrap();
    assert!(made.success());
    let (pb, inv) = playbook(
        &t,
        &lab,
        &format!(
            r#"
h.unarchive("zip", #{{ src: "{d}/pkg.zip", dest: "{d}/out", strip_components: 1, include: ["pkg-1/bin"] }});
h.unarchive("site", #{{ src: "{}", from_controller: true, dest: "{d}/www", strip_components: 1 }});
"#,
            local_zip.display()
        ),
    );
    let check = engine("check", &pb, &inv, &[], 0);
    // Python's zipfile writes no entries for directories: `pkg-1/bin` is included through its files.
    assert_eq!(changes(&check.task(HOST, "zip")), [format!("extract {d}/pkg.zip into {d}/out (2 members)")]);
    assert_eq!(
        changes(&check.task(HOST, "site")),
        [format!("upload controller:{} and extract it into {d}/www (2 members)", local_zip.display())]
    );
    lab.ssh(HOST, &format!("test ! -e {d}/out && test ! -e {d}/www"));

    let run = engine("run", &pb, &inv, &[], 0);
    assert_eq!(run.count("changed"), 2, "{}", run.stdout);
    assert_eq!(lab.ssh(HOST, &format!("cat {d}/out/bin/tool; readlink {d}/out/bin/t")), "tooltool\n");
    assert_eq!(
        lab.ssh(HOST, &format!("test ! -e {d}/out/README && cat {d}/www/index.html {d}/www/css/a.css")),
        "helloa{}"
    );
    assert_eq!(
        lab.ssh(
            HOST,
            &format!("ls -a {d}/out {d}/www | grep -c -e '.engine-upload-' -e '.engine-unzip-' || true")
        )
        .trim(),
        "0",
        "no upload or unzip temporary left"
    );
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0, "nothing extracted or uploaded again");

    // Bad input: a zip with a member climbing out is refused, with nothing written.
    let t2 = Test::new();
    let (pb2, inv2) = playbook(
        &t2,
        &lab,
        &format!(r#"h.unarchive("bad", #{{ src: "{d}/escape.zip", dest: "{d}/bad" }});"#),
    );
    let out = engine("run", &pb2, &inv2, &[], 2);
    assert_eq!(
        error(&out, "bad"),
        format!("{d}/escape.zip is refused, nothing was extracted: member \"../escape\" climbs out with ..")
    );
    lab.ssh(HOST, &format!("test ! -e {d}/bad && test ! -e {d}/escape"));
    lab.ssh(HOST, &format!("rm -rf {d}"));
}

// ---- get_url through the controller

/// An HTTP server on the controller's loopback (which the lab's hosts cannot reach) serving
/// `body` to every request, for at most 60 s; counts what it served. Stops on drop.
struct LoopbackServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackServer {
    fn start(body: &'static [u8]) -> LoopbackServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, n) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !s.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => request.extend_from_slice(&buf[..k]),
                    }
                }
                let head =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
                n.fetch_add(1, Ordering::SeqCst);
            }
        });
        LoopbackServer { port, stop, served, thread: Some(thread) }
    }

    fn served(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn get_url_through_the_controller_reaches_what_only_the_controller_can_and_checks_it() {
    let lab = Lab::get();
    const BODY: &[u8] = b"only the controller sees this\n";
    let server = LoopbackServer::start(BODY);
    let url = format!("http://127.0.0.1:{}/tool", server.port);
    let sum = format!("sha256:{}", sha256_of(BODY));
    let dest = format!("{}.bin", scratch("get-url-via"));
    lab.ssh(HOST, &format!("rm -f {dest}"));
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        &format!(
            r#"h.get_url("get", #{{ url: "{url}", dest: "{dest}", checksum: param("sum", "{sum}"), mode: "0750", via: param("via", "controller") }});"#
        ),
    );
    let check = engine("check", &pb, &inv, &[], 0);
    assert_eq!(
        changes(&check.task(HOST, "get")),
        [format!("download {dest} from {url} through the controller ({sum})")]
    );
    assert_eq!(server.served(), 0, "check fetched nothing");
    engine("run", &pb, &inv, &[], 0);
    assert_eq!(server.served(), 1);
    assert_eq!(
        lab.ssh(HOST, &format!("cat {dest}; stat -c %a {dest}")),
        "only the controller sees this\n750\n"
    );
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);
    assert_eq!(server.served(), 1, "the host's file matches: no transfer");

    // The host itself cannot reach the controller's loopback: the same task downloading on
    // the host fails, its file untouched.
    lab.ssh(HOST, &format!("rm -f {dest}"));
    let direct = engine("run", &pb, &inv, &["-e", "via=host"], 2);
    assert!(error(&direct, "get").contains("curl"), "{}", error(&direct, "get"));
    lab.ssh(HOST, &format!("test ! -e {dest}"));

    // Bad input: a wrong checksum sends nothing.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = engine("run", &pb, &inv, &["-e", &format!("sum={wrong}")], 2);
    assert_eq!(
        error(&out, "get"),
        format!(
            "the download of {url} on the controller has sha256:{}, not the expected {wrong}; nothing was sent and {dest} was left as it was",
            sha256_of(BODY)
        )
    );
    lab.ssh(HOST, &format!("test ! -e {dest}"));
    assert_eq!(
        lab.ssh(HOST, &format!("ls -a {dest}.engine-* 2>/dev/null | wc -l")).trim(),
        "0",
        "no temporary file left"
    );
}

fn sha256_of(bytes: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

// ---- modprobe state: absent

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn modprobe_absent_unlists_the_module_and_refuses_what_a_container_cannot_unload() {
    let lab = Lab::get();
    let name = "engine_test_mod";
    let conf = format!("/etc/modules-load.d/{name}.conf");
    lab.ssh(HOST, &format!("printf '{name}\\n' > {conf}"));
    let t = Test::new();
    let (pb, inv) =
        playbook(&t, &lab, &format!(r#"h.modprobe("gone", #{{ name: "{name}", state: "absent" }});"#));
    let check = engine("check", &pb, &inv, &["--diff"], 0);
    assert_eq!(changes(&check.task(HOST, "gone")), [format!("remove {conf}")]);
    lab.ssh(HOST, &format!("test -e {conf}"));
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 1);
    lab.ssh(HOST, &format!("test ! -e {conf}"));
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0);

    // overlay is in the machine's kernel, which the container shares and cannot unload: the
    // task says so, and its boot-time file is left as it was.
    lab.ssh(HOST, "printf 'overlay\\n' > /etc/modules-load.d/overlay.conf");
    let t2 = Test::new();
    let (pb2, inv2) = playbook(&t2, &lab, r#"h.modprobe("overlay", #{ name: "overlay", state: "absent" });"#);
    let out = engine("run", &pb2, &inv2, &[], 2);
    assert_eq!(
        error(&out, "overlay"),
        format!(
            "kernel module overlay is in the running kernel, but {HOST} cannot unload it: it sees no /sys/module/overlay \
             (a container shares the kernel of the machine that runs it: unload it there); nothing was changed"
        )
    );
    assert_eq!(lab.ssh(HOST, "cat /etc/modules-load.d/overlay.conf"), "overlay\n");
    lab.ssh(HOST, "rm -f /etc/modules-load.d/overlay.conf");
}

// ---- user passwords

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn user_password_hashes_are_set_through_stdin_compared_with_shadow_and_never_shown() {
    let lab = Lab::get();
    let user = "enginepw";
    let one =
        "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";
    let two = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7";
    lab.ssh(HOST, &format!("! getent passwd {user}"));
    let t = Test::new();
    let (pb, inv) = playbook(
        &t,
        &lab,
        &format!(
            r#"h.user("user", #{{ name: "{user}", password: param("hash", "{one}"), update_password: param("update", "always") }});"#
        ),
    );
    let check = engine("check", &pb, &inv, &[], 0);
    assert_eq!(
        changes(&check.task(HOST, "user")),
        [format!("create user {user}"), format!("password of {user} (hash not shown)")]
    );
    let run = engine("run", &pb, &inv, &[], 0);
    let shadow = || lab.ssh(HOST, &format!("getent shadow {user} | cut -d: -f2")).trim().to_owned();
    assert_eq!(shadow(), one);
    assert_eq!(engine("run", &pb, &inv, &[], 0).count("changed"), 0, "the shadow entry matches");

    let changed = engine("run", &pb, &inv, &["-e", &format!("hash={two}")], 0);
    assert_eq!(changes(&changed.task(HOST, "user")), [format!("password of {user} (hash not shown)")]);
    assert_eq!(shadow(), two);
    let kept = engine("run", &pb, &inv, &["-e", &format!("hash={one}"), "-e", "update=on_create"], 0);
    assert_eq!(kept.count("changed"), 0, "on_create leaves an existing user's password");
    assert_eq!(shadow(), two);
    for out in [&check, &run, &changed, &kept] {
        assert!(!out.stdout.contains("saltsalt") && !out.stdout.contains("F5Jx5fEx"), "{}", out.stdout);
        assert!(!out.stderr.contains("saltsalt") && !out.stderr.contains("F5Jx5fEx"), "{}", out.stderr);
    }

    // Bad input: a plaintext password is refused at seal, naming the playbook line; nothing ran.
    let t2 = Test::new();
    let (pb2, inv2) = playbook(
        &t2,
        &lab,
        &format!(r#"h.user("user", #{{ name: "{user}x", password: "hunter2hunter2" }});"#),
    );
    let out = Test::new().arg("run").arg(&pb2).arg("-i").arg(&inv2).run().failure();
    assert!(out.stderr.contains("pb.rhai:2:"), "{}", out.stderr);
    assert!(out.stderr.contains("is not a crypt(3) password hash"), "{}", out.stderr);
    lab.ssh(HOST, &format!("! getent passwd {user}x"));

    lab.ssh(HOST, &format!("userdel -r {user} 2>/dev/null; ! getent passwd {user}"));
}
