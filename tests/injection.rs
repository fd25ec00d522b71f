//! No injection, proven in the lab: hostile text in paths, file contents, inventory variables,
//! command arguments, environment values, run-time outputs and unit names reaches the hosts
//! byte for byte and executes nothing. Non-UTF-8 bytes (which Rhai strings cannot hold) travel
//! in files, through `scp` from the controller, between hosts and back.
//!
//! Every way a shell could run part of the hostile text would create a `pwned-*` file (relative
//! to the shell's directory, since the text holds no `/` so that it can be one path component);
//! [`no_canaries`] looks for one on every lab host and on the controller, before and after.
//! Contents are compared as hex dumps made on the host (`od`), names as NUL-separated listings.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use support::lab::{Lab, scratch};
use support::{Output, Test, fixture, root};

/// Hostile text for one path component (no `/`, no NUL): a leading dash, spaces, both quotes,
/// `$()`, backticks, `;`, `&&`, `|`, a newline, a tab, globs, braces, `~`, a backslash, variables,
/// a template expression and non-ASCII.
const EVIL: &str = "-rf a b'c\"d$(touch pwned-dollar)`touch pwned-tick`\ne;touch pwned-semi&&touch pwned-and|\
                    touch pwned-pipe *?[ab]{x,y} ~ \\ \t$HOME ${IFS} {{ 7*7 }} 'é\"";

/// Unit names that systemd would never accept, each also a way to run a command.
const EVIL_UNITS: &[&str] = &[
    "a$(touch pwned-unit-dollar)",
    "a`touch pwned-unit-tick`",
    "a b",
    "a'b",
    "a\"b",
    "a\nb",
    "-a",
    "a*",
    "a;touch pwned-unit-semi",
];

/// `engine CMD playbook -i inventory --json ARGS...`, expecting `code`.
fn engine(cmd: &str, playbook: &Path, inventory: &Path, args: &[&str], code: i32) -> Output {
    Test::new().arg(cmd).arg(playbook).arg("-i").arg(inventory).arg("--json").args(args).run().code(code)
}

/// An inventory of the lab's `hosts` with [`EVIL`] as the variable `evil` of each.
fn evil_inventory(lab: &Lab, t: &Test, hosts: &[&str]) -> std::path::PathBuf {
    // JSON strings are YAML double-quoted strings: \n, \t, \" and \\ escaped, the rest as is.
    let value = serde_json::to_string(EVIL).unwrap();
    let extra: Vec<(&str, &str, &str)> = hosts.iter().map(|h| (*h, "evil", value.as_str())).collect();
    t.file("inv.yml", &lab.inventory_for(hosts, &extra))
}

/// Asserts that no `pwned-*` file exists on any lab host or on the controller.
fn no_canaries(lab: &Lab, when: &str) {
    for (host, _, _) in &lab.hosts {
        let found = lab.ssh(
            host,
            "find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name 'pwned-*' -print",
        );
        assert!(found.trim().is_empty(), "{when}: something ran on {host}:\n{found}");
    }
    for dir in [root(), std::env::temp_dir(), std::env::var_os("HOME").map(Into::into).unwrap_or_default()] {
        let found: Vec<_> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("pwned-"))
            .map(|e| e.path())
            .collect();
        assert!(found.is_empty(), "{when}: something ran on the controller: {found:?}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every regular file under `dir` on `host`: relative name -> (octal mode, hex of its content),
/// read on the host itself with `find -printf` and `od`.
fn files_on(lab: &Lab, host: &str, dir: &str) -> BTreeMap<String, (String, String)> {
    let listing = lab.ssh(
        host,
        &format!(
            "cd {dir} && find . -type f -printf '%P\\0%m\\0' \
             -exec sh -c 'od -An -tx1 -v < \"$1\" | tr -d \" \\n\"' sh {{}} \\; -printf '\\0'"
        ),
    );
    let fields: Vec<&str> = listing.split('\0').collect();
    assert_eq!(fields.len() % 3, 1, "odd listing of {dir} on {host}: {listing:?}");
    fields
        .chunks(3)
        .filter(|c| c.len() == 3)
        .map(|c| (c[0].to_owned(), (c[1].to_owned(), c[2].to_owned())))
        .collect()
}

/// Every directory under `dir` on `host`, relative, NUL-separated listing.
fn dirs_on(lab: &Lab, host: &str, dir: &str) -> Vec<String> {
    let listing = lab.ssh(host, &format!("cd {dir} && find . -mindepth 1 -type d -printf '%P\\0'"));
    let mut dirs: Vec<String> = listing.split('\0').filter(|d| !d.is_empty()).map(str::to_owned).collect();
    dirs.sort();
    dirs
}

/// The error of a failed task.
fn error_of(out: &Output, host: &str, task: &str) -> String {
    let task = out.task(host, task);
    assert_eq!(task["status"], "failed", "{task}");
    task["error"].as_str().unwrap().to_owned()
}

// ---- file, template, command, replace_line: values from the inventory and from outputs

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn hostile_values_from_the_inventory_and_from_outputs_arrive_intact_and_run_nothing() {
    let lab = Lab::get();
    let dir = scratch("injection-values");
    no_canaries(&lab, "before");
    let t = Test::new();
    let inv = evil_inventory(&lab, &t, &["etcd0"]);
    let pb = t.file(
        "values.rhai",
        r#"
let h = host("etcd0");
let evil = h.vars.evil;
let one_line = evil;
one_line.replace("\n", " ");
let dir = param("dir");
let top = h.file("top", #{ path: dir, state: "directory", mode: "0755" });
let sub = h.file("evil dir", #{ path: `${dir}/${evil}`, state: "directory", mode: "0750" }).after(top);
h.file("evil file", #{ path: `${dir}/${evil}/${evil}.txt`, content: evil + "\n", mode: "0600" }).after(sub);
h.template("evil template", #{
    path: `${dir}/${evil}.tpl`,
    template: "[{{ v }}]\nhost={{ h }}\n",
    vars: #{ v: evil, h: h.name },
}).after(top);

// argv: each word reaches the program as it is, nothing is interpreted.
h.command("argv touch", #{ argv: ["touch", "--", `${dir}/${evil}.argv`], creates: `${dir}/${evil}.argv` }).after(top);
h.command("argv printf", #{
    argv: ["sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh", evil, `${dir}/${evil}.printf`],
    creates: `${dir}/${evil}.printf`,
}).after(top);
// cmd: the line is the playbook's own shell code; hostile values come in by environment.
h.command("shell env", #{
    cmd: "printf '%s' \"$EVIL\" > \"$OUT\"",
    env: #{ EVIL: evil, OUT: `${dir}/${evil}.env` },
    chdir: `${dir}/${evil}`,
    creates: `${dir}/${evil}.env`,
    stdin: evil,
}).after(sub);
let lines = h.command("lines", #{
    argv: ["sh", "-c", "printf 'a=1\\nkey=old\\nz=3\\n' > \"$1\"", "sh", `${dir}/${evil}.lines`],
    creates: `${dir}/${evil}.lines`,
}).after(top);
h.replace_line("replace", #{ path: `${dir}/${evil}.lines`, starts_with: "key=", line: `key=${one_line}` }).after(lines);

// A value known only at run time (a command's output) is as hostile as the inventory's.
let echo = h.command("echo", #{ argv: ["printf", "%s", evil], read_only: true });
h.file("from output", #{ path: `${dir}/${echo.stdout}.out`, content: echo.stdout }).after(top);
"#,
    );
    let first = engine("run", &pb, &inv, &["-e", &format!("dir={dir}")], 0);
    let one_line = EVIL.replace('\n', " ");

    let expected: BTreeMap<String, (String, String)> = [
        (format!("{EVIL}/{EVIL}.txt"), "600", format!("{EVIL}\n")),
        (format!("{EVIL}.tpl"), "644", format!("[{EVIL}]\nhost=etcd0")),
        (format!("{EVIL}.argv"), "644", String::new()),
        (format!("{EVIL}.printf"), "644", EVIL.to_owned()),
        (format!("{EVIL}.env"), "644", EVIL.to_owned()),
        (format!("{EVIL}.lines"), "644", format!("a=1\nkey={one_line}\nz=3\n")),
        (format!("{EVIL}.out"), "644", EVIL.to_owned()),
    ]
    .into_iter()
    .map(|(name, mode, content)| (name, (mode.to_owned(), hex(content.as_bytes()))))
    .collect();
    let found = files_on(&lab, "etcd0", &dir);
    // minijinja drops the template's final newline (keep_trailing_newline is off); either way
    // the hostile value must be in it exactly once, as it is.
    let tpl = format!("{EVIL}.tpl");
    let mut found_fixed = found.clone();
    if let Some((mode, content)) = found_fixed.get_mut(&tpl)
        && *content == hex(format!("[{EVIL}]\nhost=etcd0\n").as_bytes())
    {
        *content = hex(format!("[{EVIL}]\nhost=etcd0").as_bytes());
        assert_eq!(mode, "644");
    }
    assert_eq!(found_fixed, expected, "files on etcd0 under {dir}");
    assert_eq!(dirs_on(&lab, "etcd0", &dir), [EVIL]);
    assert_eq!(lab.ssh("etcd0", &format!("stat -c %a {dir}/*rf*/")).trim(), "750");
    assert_eq!(first.count("changed"), 10, "{}", first.stdout);

    // Idempotent, hostile names included (a name with a newline or a backslash must still compare).
    let second = engine("run", &pb, &inv, &["-e", &format!("dir={dir}")], 0);
    assert_eq!(second.count("changed"), 0, "second run:\n{}", second.stdout);
    assert_eq!(files_on(&lab, "etcd0", &dir), found, "the second run rewrote something");

    no_canaries(&lab, "after");
    lab.ssh("etcd0", &format!("rm -rf {dir}"));
}

// ---- clean failures: owners, groups, packages and unit names that cannot be

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn hostile_owners_packages_and_unit_names_fail_cleanly_and_run_nothing() {
    let lab = Lab::get();
    let dir = scratch("injection-refused");
    no_canaries(&lab, "before");
    let t = Test::new();
    let inv = evil_inventory(&lab, &t, &["etcd0"]);

    // Owner and group names that do not exist: the write fails on the host, names the value,
    // and leaves neither the file nor a temporary file behind. One run each, so that one
    // failure does not skip the next case.
    for (task, args, word) in [
        ("bad owner", "path: `${dir}/${evil}.owner`, content: evil, owner: evil", "chown"),
        ("bad group", "path: `${dir}/${evil}.group`, content: evil, group: evil", "chgrp"),
        ("bad dir owner", "path: `${dir}/${evil}.d`, state: \"directory\", owner: evil", "chown"),
    ] {
        let pb = t.file(
            "owners.rhai",
            &format!(
                r#"
let h = host("etcd0");
let evil = h.vars.evil;
let dir = param("dir");
let top = h.file("top", #{{ path: dir, state: "directory" }});
h.file("{task}", #{{ {args} }}).after(top);
"#
            ),
        );
        let out = engine("run", &pb, &inv, &["-e", &format!("dir={dir}")], 2);
        let error = error_of(&out, "etcd0", task);
        assert!(error.contains(word) && error.contains("invalid"), "{task}: {error}");
        assert!(error.contains("-rf a b"), "{task}: the error does not name the value: {error}");
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // No file, no temporary file: only the directory whose owner could not be set.
    let left = lab.ssh("etcd0", &format!("cd {dir} && find . -mindepth 1 -printf '%P\\0'"));
    let left: Vec<&str> = left.split('\0').filter(|n| !n.is_empty()).collect();
    assert!(left.iter().all(|n| *n == format!("{EVIL}.d")), "left behind: {left:?}");

    // A NUL byte (Rhai strings can hold one) fits in no command line: sshd used to drop the
    // connection on it, and the host was reported unreachable. The task fails, says why, and
    // the truncated path is not created.
    let pb = t.file(
        "nul.rhai",
        r#"
let h = host("etcd0");
let dir = param("dir");
let top = h.file("top", #{ path: dir, state: "directory" });
h.file("nul path", #{ path: dir + "/a\x00'; touch pwned-nul; '", content: "x" }).after(top);
"#,
    );
    let out = engine("run", &pb, &inv, &["-e", &format!("dir={dir}")], 2);
    let error = error_of(&out, "etcd0", "nul path");
    assert!(error.contains("a value holds a NUL byte"), "{error}");
    assert_eq!(out.count("unreachable"), 0, "{}", out.stdout);
    let (code, _, _) = lab.ssh_status("etcd0", &format!("test -e {dir}/a"));
    assert_eq!(code, Some(1), "the path was cut at the NUL");

    // Package names: refused before anything connects, naming the value.
    let pb = t.file(
        "apt.rhai",
        r#"
let h = host("etcd0");
h.apt("evil package", #{ name: h.vars.evil });
h.apt("option package", #{ names: ["--allow-unauthenticated", "x;touch pwned-apt", "$(touch pwned-apt2)"] });
"#,
    );
    let out = engine("run", &pb, &inv, &[], 1);
    for needle in
        ["\"-rf a b'c\\\"d$(touch pwned-dollar)", "\"--allow-unauthenticated\" is not a Debian package name"]
    {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
    }

    // Unit names: each refused before anything connects, naming the unit.
    for name in EVIL_UNITS {
        let quoted = serde_json::to_string(name).unwrap();
        let pb = t.file(
            "unit.rhai",
            &format!("host(\"etcd0\").systemd(\"unit\", #{{ name: {quoted}, state: \"started\" }});\n"),
        );
        let out = engine("run", &pb, &inv, &[], 1);
        let shown = format!("{name:?}");
        assert!(out.stderr.contains(&shown), "the error does not name {shown}:\n{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // A unit name known only at run time (here, from a command's output) is refused when the
    // playbook loads: systemd names must be checkable before anything runs.
    let pb = t.file(
        "unit_output.rhai",
        r#"
let h = host("etcd0");
let name = h.command("name", #{ argv: ["printf", "%s", "x$(touch pwned-unit-late)"], read_only: true });
h.systemd("late unit", #{ name: name.stdout, state: "restarted" });
"#,
    );
    let out = engine("run", &pb, &inv, &[], 1);
    for needle in ["unit_output.rhai:4:", "task \"late unit\": invalid arguments for module systemd: name"] {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
    }

    no_canaries(&lab, "after");
    lab.ssh("etcd0", &format!("rm -rf {dir}"));
}

// ---- scp: raw bytes and hostile names, controller -> host -> host -> controller

#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn scp_carries_raw_bytes_and_hostile_names_both_ways_and_runs_nothing() {
    let lab = Lab::get();
    let dir = scratch("injection-scp");
    no_canaries(&lab, "before");
    let t = Test::new();
    let inv = evil_inventory(&lab, &t, &["etcd0", "etcd1"]);

    // The controller's tree: every byte value, invalid UTF-8, and hostile names.
    let src = t.path().join("src");
    let back = t.path().join("back");
    std::fs::create_dir_all(src.join(EVIL)).unwrap();
    std::fs::create_dir_all(&back).unwrap();
    let all_bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let invalid_utf8: &[u8] = b"\xff\xfe\xc3\x28 \xa0\xa1 \xe2\x82 \xf0\x28\x8c\xbc \x00\r\n\x1b[31m";
    let files: Vec<(String, Vec<u8>)> = vec![
        (format!("{EVIL}/{EVIL}.bin"), all_bytes.clone()),
        (format!("{EVIL}.raw"), invalid_utf8.to_vec()),
        ("-leading dash".to_owned(), b"-n -e\n".to_vec()),
        ("new\nline".to_owned(), EVIL.as_bytes().to_vec()),
    ];
    for (name, bytes) in &files {
        std::fs::write(src.join(name), bytes).unwrap();
    }
    let expected: BTreeMap<String, (String, String)> =
        files.iter().map(|(n, b)| (n.clone(), ("644".to_owned(), hex(b)))).collect();
    use std::os::unix::fs::PermissionsExt;
    for (name, _) in &files {
        std::fs::set_permissions(src.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    let pb = t.file(
        "scp.rhai",
        r#"
let dir = param("dir");
let evil = host("etcd0").vars.evil;
let up = host("etcd0").scp("up", #{ from: "controller", src: param("src"), dest: `${dir}/${evil} tree` });
let across = host("etcd1").scp("across", #{ from: "etcd0", src: `${dir}/${evil} tree`, dest: `${dir}/copy` }).after(up);
host("etcd1").scp("down", #{ src: `${dir}/copy`, to_controller: param("back") }).after(across);
"#,
    );
    let args = [
        "-e".to_owned(),
        format!("dir={dir}"),
        "-e".to_owned(),
        format!("src={}", src.display()),
        "-e".to_owned(),
        format!("back={}", back.display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = engine("run", &pb, &inv, &args, 0);
    assert_eq!(first.count("changed"), 3, "{}", first.stdout);

    assert_eq!(files_on(&lab, "etcd0", &format!("{dir}/*rf*tree")), expected, "controller -> etcd0");
    assert_eq!(files_on(&lab, "etcd1", &format!("{dir}/copy")), expected, "etcd0 -> etcd1");
    let copied = &back;
    for (name, bytes) in &files {
        let got = std::fs::read(copied.join(name)).unwrap_or_else(|e| panic!("{name:?} back: {e}"));
        assert_eq!(hex(&got), hex(bytes), "etcd1 -> controller: {name:?}");
    }

    let second = engine("run", &pb, &inv, &args, 0);
    assert_eq!(second.count("changed"), 0, "second run:\n{}", second.stdout);

    no_canaries(&lab, "after");
    for host in ["etcd0", "etcd1"] {
        lab.ssh(host, &format!("rm -rf {dir}"));
    }
}

/// File names that are not UTF-8 cannot travel as text (task arguments, reports, commands):
/// scp refuses them, naming their bytes, instead of reading back a lossy spelling, and writes
/// nothing.
#[test]
#[ignore = "needs the lab: cargo xtask test"]
fn scp_refuses_file_names_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let lab = Lab::get();
    let dir = scratch("injection-names");
    no_canaries(&lab, "before");
    lab.ssh(
        "etcd0",
        &format!(
            "mkdir -p {dir}/src && printf x > {dir}/src/good && printf y > {dir}/src/$(printf 'bad\\377name')"
        ),
    );
    let t = Test::new();
    let inv = evil_inventory(&lab, &t, &["etcd0", "etcd1"]);
    let local = t.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join(std::ffi::OsStr::from_bytes(b"bad\xfename")), b"z").unwrap();
    let pb = t.file(
        "names.rhai",
        r#"
let dir = param("dir");
host("etcd1").scp("from host", #{ from: "etcd0", src: `${dir}/src`, dest: `${dir}/copy` });
host("etcd0").scp("from controller", #{ from: "controller", src: param("local"), dest: `${dir}/local` });
"#,
    );
    let out = engine(
        "run",
        &pb,
        &inv,
        &["-e", &format!("dir={dir}"), "-e", &format!("local={}", local.display())],
        2,
    );
    let error = error_of(&out, "etcd1", "from host");
    assert!(error.contains(&format!("file name {dir}/src/bad\\xffname is not UTF-8")), "{error}");
    let error = error_of(&out, "etcd0", "from controller");
    assert!(error.contains(r"bad\xfename on the controller is not UTF-8"), "{error}");
    let (code, _, _) = lab.ssh_status("etcd1", &format!("test -e {dir}"));
    assert_eq!(code, Some(1), "etcd1 got something");
    let (code, _, _) = lab.ssh_status("etcd0", &format!("test -e {dir}/local"));
    assert_eq!(code, Some(1), "etcd0 got something");
    no_canaries(&lab, "after");
    for host in ["etcd0", "etcd1"] {
        lab.ssh(host, &format!("rm -rf {dir}"));
    }
}

// ---- no lab needed: bytes that cannot be text are refused where text is required

#[test]
fn a_template_file_that_is_not_utf8_is_refused_naming_it() {
    let t = Test::new();
    std::fs::write(t.path().join("bad.j2"), b"name=\xff\xfe\n").unwrap();
    let pb = t.file(
        "tpl.rhai",
        "host(\"etcd0\").template(\"t\", #{ path: \"/tmp/x\", template: template_file(\"bad.j2\") });\n",
    );
    let out = Test::new().arg("graph").arg(&pb).arg("-i").arg(fixture("inventory.yml")).run().failure();
    assert!(out.stderr.contains("bad.j2"), "{}", out.stderr);
    assert!(out.stderr.contains("tpl.rhai:1:"), "{}", out.stderr);
}
