//! Errors a newcomer understands: the real `engine` binary on playbooks with one mistake each.
//! Every message names the mistake, suggests the nearest valid name where there is one, and
//! points at the playbook line with a snippet of it.
#![allow(clippy::unwrap_used)]

use crate::support;

use support::{Output, Test, fixture};

/// `engine graph` of a playbook made of `lines` (one mistake, on the last line), which must be
/// refused with exit 1 and a snippet of the faulty line; the whole message is the snapshot `name`.
fn refused(name: &str, lines: &[&str]) -> Output {
    let t = Test::new();
    let text = lines.join("\n") + "\n";
    let pb = t.file("mistake.rhai", &text);
    let out = t.arg("graph").arg(&pb).arg("-i").arg(fixture("inventory.yml")).run().failure();
    let line = lines.len();
    let snippet = format!("{line} │ {}", lines[line - 1]);
    assert!(out.stderr.contains(&snippet), "no snippet {snippet:?}:\n{}", out.stderr);
    assert!(out.stderr.contains(&format!("mistake.rhai:{line}:")), "no file:line:\n{}", out.stderr);
    out.stderr_snapshot(name)
}

#[test]
fn a_misspelled_argument_suggests_the_right_one() {
    refused("misspelled_argument", &[r#"host("web0").file("motd", #{ path: "/etc/motd", contnet: "hi" });"#])
        .stderr_has("task \"motd\": invalid arguments for module file: unknown argument `contnet`; did you mean `content`?")
        .stderr_has("`engine modules file` lists its arguments");
}

#[test]
fn an_argument_nothing_like_a_valid_one_lists_them_all() {
    refused("argument_nothing_like_a_valid_one", &[r#"host("web0").command("c", #{ cmd: "true", banana: 1 });"#]).stderr_has(
        "unknown argument `banana`; valid: argv, chdir, cmd, creates, env, read_only, removes, stdin, timeout",
    );
}

#[test]
fn a_misspelled_key_inside_an_argument_names_both() {
    refused("misspelled_key_inside_an_argument", &[
        r#"host("web0").certgen("leaf", #{ kind: "leaf", dir: "/p", ca: #{ crt: "/p/ca.pem", key: "/p/ca-key.pem" } });"#,
    ])
    .stderr_has("unknown key `crt` in argument `ca`; did you mean `cert`?");
}

#[test]
fn a_wrong_type_names_the_expected_one() {
    refused(
        "wrong_type_integer_mode",
        &[r#"host("web0").file("f", #{ path: "/x", content: "", mode: 644 });"#],
    )
    .stderr_has("argument `mode` must be an octal mode string like \"0644\", got the integer 644");
    refused("wrong_type_string_for_a_list", &[r#"host("web0").apt("tools", #{ names: "curl" });"#])
        .stderr_has("argument `names` must be a list (an array), got the string \"curl\"");
    refused(
        "wrong_type_string_for_a_boolean",
        &[r#"host("web0").command("c", #{ cmd: "true", read_only: "yes" });"#],
    )
    .stderr_has("argument `read_only` must be a boolean, got the string \"yes\"");
}

#[test]
fn a_misspelled_choice_lists_the_choices_and_the_nearest() {
    refused("misspelled_choice", &[r#"host("web0").file("f", #{ path: "/x", state: "dir" });"#]).stderr_has(
        "argument `state` must be one of \"file\", \"directory\", \"absent\", got \"dir\"; did you mean `directory`?",
    );
}

#[test]
fn a_missing_argument_is_named() {
    refused("missing_argument", &[r#"host("web0").file("f", #{ content: "x" });"#])
        .stderr_has("missing required argument `path`");
}

#[test]
fn a_misspelled_module_suggests_the_right_one() {
    refused("misspelled_module", &[r#"host("web0").task("fiel", "f", #{ path: "/x" });"#])
        .stderr_has("unknown module \"fiel\"; did you mean `file`?");
    refused("unknown_module", &[r#"host("web0").task("nothing", "f", #{ path: "/x" });"#])
        .stderr_has("unknown module \"nothing\"; modules are: apt, apt_key, apt_repository, block, certgen, command, etcd_member, file");
}

#[test]
fn a_misspelled_method_or_function_suggests_the_right_one() {
    refused("misspelled_method", &[r#"host("web0").fiel("f", #{ path: "/x", content: "" });"#])
        .stderr_has("unknown function `fiel(Host, string, map)`; did you mean `file`?");
    refused("misspelled_function", &["for h in hots() {}"])
        .stderr_has("unknown function `hots()`; did you mean `host` or `hosts`?");
    refused("misspelled_method_on_a_task", &[r#"host("web0").file("f", #{ path: "/x" }).afterr([]);"#])
        .stderr_has("unknown function `afterr(Task, array)`; did you mean `after`?");
}

#[test]
fn a_known_function_called_with_wrong_types_shows_its_signature() {
    refused("function_called_with_wrong_types", &[r#"host("web0").file(42, #{ path: "/x" });"#]).stderr_has(
        "`file` cannot be called with (Host, int, map); it takes: file(Host, string, map) -> Task",
    );
}

#[test]
fn a_misspelled_property_suggests_the_right_one() {
    refused(
        "misspelled_property",
        &[r#"let h = host("web0");"#, r#"h.file("f", #{ path: `/tmp/${h.nmae}`, content: "" });"#],
    )
    .stderr_has("a Host has no property `nmae`; did you mean `name`?");
}

#[test]
fn a_task_on_an_unknown_host_lists_the_groups_and_the_nearest_host() {
    refused("unknown_host_near_others", &[r#"host("web2").file("f", #{ path: "/x", content: "" });"#])
        .stderr_has("unknown host \"web2\"; did you mean `web0` or `web1`?")
        .stderr_has("the inventory's groups are: all, etcd, web");
    refused("unknown_host", &[r#"host("db0").file("f", #{ path: "/x", content: "" });"#])
        .stderr_has("unknown host \"db0\"")
        .stderr_has("the inventory's groups are: all, etcd, web");
    refused("unknown_group", &[r#"for h in group("webs") { h.file("f", #{ path: "/x", content: "" }); }"#])
        .stderr_has("unknown group \"webs\"; did you mean `web`?");
}

#[test]
fn a_misspelled_retry_key_suggests_the_right_one() {
    refused(
        "misspelled_retry_key",
        &[r#"host("web0").command("c", #{ cmd: "true" }).retry(#{ retires: 2 });"#],
    )
    .stderr_has("unknown argument `retires`; did you mean `retries`?");
}

/// One mistake at a time in the real hello playbook: each is reported at its own line, and the
/// playbook is otherwise accepted.
#[test]
fn mistakes_in_hello_rhai_are_located() {
    let hello = std::fs::read_to_string(support::root().join("playbooks").join("hello.rhai")).unwrap();
    // (what is there, the mistake, the message, the line reported: the argument's own, also
    // inside a map spread over several lines)
    let cases = [
        (
            "mode: \"0755\"",
            "mode: 755",
            "argument `mode` must be an octal mode string like \"0644\", got the integer 755",
            "mode: 755",
        ),
        (
            "content: `${leader.name} leads`",
            "contnet: `${leader.name} leads`",
            "did you mean `content`?",
            "contnet:",
        ),
        ("state: \"directory\"", "state: \"dirctory\"", "did you mean `directory`?", "state: \"dirctory\""),
        (
            "leader.command(",
            "leader.comand(",
            "unknown function `comand(Host, string, map)`; did you mean `command`?",
            "leader.comand(",
        ),
        (
            "greeting.after(flag)",
            "greeting.aftr(flag)",
            "unknown function `aftr(Task, Task)`; did you mean `after`?",
            "greeting.aftr",
        ),
        (
            "${h.name} (${h.address})",
            "${h.name} (${h.adress})",
            "a Host has no property `adress`; did you mean `address`?",
            "h.adress",
        ),
    ];
    for (i, (good, bad, message, at)) in cases.into_iter().enumerate() {
        assert!(hello.contains(good), "hello.rhai no longer has {good:?}");
        let wrong = hello.replacen(good, bad, 1);
        let line = wrong.lines().position(|l| l.contains(at)).unwrap() + 1;
        let t = Test::new();
        let pb = t.file("hello.rhai", &wrong);
        let out = t.arg("graph").arg(&pb).arg("-i").arg(fixture("inventory.yml")).run().failure();
        assert!(out.stderr.contains(message), "{bad}: lacks {message:?}:\n{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("hello.rhai:{line}:")),
            "{bad}: not at line {line}:\n{}",
            out.stderr
        );
        assert!(out.stderr.contains("has 1 error"), "{bad}: one mistake, one error:\n{}", out.stderr);
        out.stderr_snapshot(&format!("mistake_in_hello_{}", i + 1));
    }
}

#[test]
fn an_undefined_variable_suggests_a_declared_one() {
    refused(
        "undefined_variable_near_a_declared_one",
        &["let leader = hosts()[0];", r#"leadr.file("f", #{ path: "/x", content: "" });"#],
    )
    .stderr_has("undefined variable `leadr`; did you mean `leader`?");
    refused("undefined_variable", &[r#"host("web0").file("f", #{ path: `/srv/${version}`, content: "" });"#])
        .stderr_has("undefined variable `version`: declare it first")
        .stderr_has("param(\"version\")");
}

/// In a map written over several lines, the error points at the faulty argument's line.
#[test]
fn an_argument_error_points_at_the_argument_line() {
    let t = Test::new();
    let pb = t.file(
        "multi.rhai",
        "host(\"web0\").file(\"motd\", #{\n    path: \"/etc/motd\",\n    contnet: \"hi\",\n});\n",
    );
    t.arg("graph")
        .arg(&pb)
        .arg("-i")
        .arg(fixture("inventory.yml"))
        .run()
        .failure()
        .stderr_snapshot("argument_line_in_a_multiline_map")
        .stderr_has(
            "multi.rhai:3:5: task \"motd\": invalid arguments for module file: unknown argument `contnet`",
        )
        .stderr_has("3 │     contnet: \"hi\",");
}

#[test]
fn a_misspelled_module_name_for_engine_modules_suggests_the_right_one() {
    Test::new()
        .args(["modules", "fiel"])
        .run()
        .failure()
        .stderr_snapshot("misspelled_module_for_engine_modules")
        .stderr_has("no module named \"fiel\"; did you mean `file`?");
    Test::new()
        .args(["modules", "zzz"])
        .run()
        .failure()
        .stderr_snapshot("unknown_module_for_engine_modules")
        .stderr_has("`engine modules` lists them");
}

#[test]
fn a_misspelled_limit_suggests_hosts_and_groups() {
    Test::new()
        .args(["graph", "playbooks/hello.rhai", "-i"])
        .arg(fixture("inventory.yml"))
        .args(["--limit", "etdc"])
        .run()
        .failure()
        .stderr_snapshot("misspelled_limit")
        .stderr_has("--limit \"etdc\" names no host or group of the inventory; did you mean `etcd`? (groups: all, etcd, web)");
}

#[test]
fn a_misspelled_inventory_key_suggests_the_right_one() {
    let t = Test::new();
    let inv = t.file("inv.yml", "all:\n  hosst:\n    a:\n");
    t.args(["graph", "playbooks/hello.rhai", "-i"])
        .arg(&inv)
        .run()
        .failure()
        .stderr_snapshot("misspelled_inventory_key")
        .stderr_has("inv.yml:2: group \"all\" has an unknown key \"hosst\"; did you mean `hosts`?");
}

/// The script's own function called with the wrong arguments: no misleading suggestion.
#[test]
fn a_script_function_called_wrongly_is_named_neutrally() {
    refused("script_function_called_wrongly", &["fn greet(h) { h.name }", "greet();"])
        .stderr_has("no function matches `greet()`: check the name and the arguments");
}
