//! Lab tests of the modules that prepare a bare machine: `line`, `block`, `sysctl`,
//! `modprobe`, `swap`, `user`, `group` and `unarchive`, through the real `engine` binary on
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
    engine("run", &pb, &inv, &["-e", "block=Match User ci"], 0);
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
