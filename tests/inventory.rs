//! Ansible inventories as users have them, through the real binary and offline: an INI file
//! with ranges, `:children` and `:vars`, `group_vars/` and `host_vars/` beside it and beside
//! the playbook, several `-i`, `--limit` patterns and `engine inventory`.
#![allow(clippy::unwrap_used)]

use crate::support::Test;

const HOSTS: &str = "\
# An Ansible INI inventory; addresses that cannot be reached.
[web]
web[01:03] ansible_host=127.0.0.1 ansible_port=1

[db]
db-[a:b] ansible_host=127.0.0.1 ansible_port=1

[prod:children]
web
db

[prod:vars]
greeting=hello
";

/// The task names carry each host's variables, so the DOT shows what the playbook read.
const PLAYBOOK: &str = r#"
for h in hosts() {
    h.file(`greet ${h.vars.greeting} ${h.vars.role} ${h.vars.size}`, #{ path: "/tmp/greet", content: "x" });
}
"#;

/// A project laid out as Ansible's: `inventory/hosts` with `group_vars/` and `host_vars/`
/// beside it, and the playbook with its own `group_vars/` beside it.
fn project() -> Test {
    let t = Test::new();
    t.file("inventory/hosts", HOSTS);
    t.file("inventory/group_vars/all.yml", "role: none\nsize: 1\n");
    t.file("inventory/group_vars/db/10-role.yml", "role: database\n");
    t.file("inventory/group_vars/db/20-size.yml", "size: 2\n");
    t.file("inventory/host_vars/web02.json", r#"{"greeting": "hi from host_vars", "size": 3}"#);
    t.file("play/group_vars/web.yml", "role: frontend\n");
    t.file("play/site.rhai", PLAYBOOK);
    t
}

fn labels(dot: &str) -> Vec<&str> {
    let mut labels: Vec<&str> = dot
        .lines()
        .filter_map(|l| l.split("label=\"").nth(1))
        .filter_map(|l| l.split("\\n").next())
        .filter(|l| l.starts_with("greet"))
        .collect();
    labels.sort_unstable();
    labels
}

#[test]
fn an_ini_inventory_with_vars_folders_beside_it_and_the_playbook_drives_the_graph() {
    let t = project();
    let (hosts, playbook) = (t.path().join("inventory/hosts"), t.path().join("play/site.rhai"));
    let out = t.arg("graph").arg(&playbook).arg("-i").arg(&hosts).run().success();
    assert_eq!(
        labels(&out.stdout),
        [
            "greet hello database 2",
            "greet hello database 2",
            "greet hello frontend 1",
            "greet hello frontend 1",
            "greet hi from host_vars frontend 3",
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn limit_patterns_select_as_ansible_and_a_term_matching_nothing_is_named() {
    let t = project();
    let (hosts, playbook) = (t.path().join("inventory/hosts"), t.path().join("play/site.rhai"));
    let graph = |limit: &str| {
        Test::new().arg("graph").arg(&playbook).arg("-i").arg(&hosts).args(["--limit", limit]).run()
    };
    let hosts_in = |dot: &str| {
        let mut found: Vec<String> = ["web01", "web02", "web03", "db-a", "db-b"]
            .iter()
            .filter(|h| dot.contains(&format!("cluster_{h}")) || dot.contains(&format!("\"{h}\"")))
            .map(|h| (*h).to_owned())
            .collect();
        found.sort();
        found
    };
    let all = graph("all").success().stdout;
    assert_eq!(hosts_in(&all).len(), 5, "the DOT names each host: {all}");
    assert_eq!(hosts_in(&graph("web*:!web02").success().stdout), ["web01", "web03"]);
    assert_eq!(hosts_in(&graph("prod:&db").success().stdout), ["db-a", "db-b"]);
    assert_eq!(hosts_in(&graph("~db-[a]").success().stdout), ["db-a"]);
    assert_eq!(hosts_in(&graph("web01,db-b").success().stdout), ["db-b", "web01"]);
    graph("web*:!wbe02")
        .failure()
        .stderr_has("--limit \"wbe02\" names no host or group of the inventory; did you mean `web02`?");
    drop(t);
}

#[test]
fn several_inventories_merge_later_values_winning() {
    let t = project();
    let more = t.file(
        "more.yml",
        "all:\n  hosts:\n    extra: {ansible_host: 127.0.0.1, ansible_port: 1, greeting: hey}\n",
    );
    let (hosts, playbook) = (t.path().join("inventory/hosts"), t.path().join("play/site.rhai"));
    let out =
        Test::new().arg("graph").arg(&playbook).arg("-i").arg(&hosts).arg("-i").arg(&more).run().success();
    assert!(labels(&out.stdout).contains(&"greet hey none 1"), "{}", out.stdout);
    drop(t);
}

#[test]
fn engine_inventory_shows_the_tree_and_the_merged_variables() {
    let t = project();
    let (hosts, play) = (t.path().join("inventory/hosts"), t.path().join("play"));
    let out = Test::new().args(["inventory", "--graph", "-i"]).arg(&hosts).run().success();
    assert_eq!(
        out.stdout,
        "@all:\n  |--@ungrouped:\n  |--@prod:\n  |  |--@web:\n  |  |  |--web01\n  |  |  |--web02\n  |  |  |--web03\n  |  |--@db:\n  |  |  |--db-a\n  |  |  |--db-b\n"
    );
    let out = Test::new()
        .args(["inventory", "--host", "web02", "-i"])
        .arg(&hosts)
        .arg("--playbook-dir")
        .arg(&play)
        .run()
        .success();
    let vars: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        vars,
        serde_json::json!({"ansible_host": "127.0.0.1", "ansible_port": 1, "greeting": "hi from host_vars",
                           "role": "frontend", "size": 3})
    );
    let out = Test::new().args(["inventory", "--list", "-i"]).arg(&hosts).run().success();
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list["prod"], serde_json::json!({"children": ["web", "db"]}));
    assert_eq!(list["db"]["hosts"], serde_json::json!(["db-a", "db-b"]));
    assert_eq!(list["_meta"]["hostvars"]["db-b"]["role"], "database");
    Test::new()
        .args(["inventory", "--host", "web2", "-i"])
        .arg(&hosts)
        .run()
        .failure()
        .stderr_has("no host named \"web2\" in the inventory; did you mean `web02`?");
    drop(t);
}

/// `h.vars.greting` (a typo, or a variable no source defines) is an error naming the host, the
/// variable and the nearest name, for every host at once; `get` and `in` read optional ones.
#[test]
fn reading_a_variable_no_source_defines_is_an_error_naming_host_and_variable() {
    let t = project();
    let hosts = t.path().join("inventory/hosts");
    let typo = t.file(
        "play/typo.rhai",
        "let h = host(\"web01\");\nh.file(h.vars.greting, #{ path: \"/tmp/x\", content: \"x\" });\n",
    );
    let optional = t.file(
        "play/optional.rhai",
        r#"let h = host("web01");
let name = `${h.vars.get("nosuch") ?? "fallback"} ${"greeting" in h.vars} ${"nosuch" in h.vars} ${h.vars["size"]}`;
h.file(name, #{ path: "/tmp/x", content: "x" });
"#,
    );
    Test::new()
        .arg("graph")
        .arg(&typo)
        .arg("-i")
        .arg(&hosts)
        .run()
        .failure()
        .stderr_has("typo.rhai:2:")
        .stderr_has("host \"web01\" has no variable \"greting\"; did you mean `greeting`?")
        .stderr_snapshot("missing_host_variable");
    let out = Test::new().arg("graph").arg(&optional).arg("-i").arg(&hosts).run().success();
    assert!(out.stdout.contains("\"fallback true false 1\\n[file]\""), "{}", out.stdout);
    drop(t);
}

/// The same project through `ansible-inventory --list` (ansible-core from the bench venv,
/// `target/bench/venv`, or the one `ENGINE_ANSIBLE_INVENTORY` names) and `engine inventory
/// --list`: the same groups, hosts and merged variables. `cargo xtask test` installs it (and
/// sets `ENGINE_LAB_REQUIRED`, so that it cannot be missed); a plain `cargo test` without it
/// skips, saying so.
#[test]
fn engine_inventory_lists_what_ansible_inventory_lists() {
    let ansible = std::env::var_os("ENGINE_ANSIBLE_INVENTORY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::support::root().join("target/bench/venv/bin/ansible-inventory"));
    if !ansible.exists() {
        assert!(
            std::env::var_os("ENGINE_LAB_REQUIRED").is_none(),
            "ansible-inventory must be installed for the full suite (at {})",
            ansible.display()
        );
        eprintln!("skipped: no ansible-inventory at {} (cargo xtask bench makes one)", ansible.display());
        return;
    }
    let t = project();
    t.file("inventory/more.ini", "lone n=01 t=true T=True l=\"[1, 'a']\" f=1.5\n[extra]\nweb02 size=9\n");
    let (inv, play) = (t.path().join("inventory"), t.path().join("play"));
    let out = std::process::Command::new(&ansible)
        .arg("-i")
        .arg(&inv)
        .arg("--playbook-dir")
        .arg(&play)
        .arg("--list")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // ansible-core 2.19 names its output profile; nothing to compare.
    theirs["_meta"].as_object_mut().unwrap().remove("profile");
    let ours = Test::new()
        .args(["inventory", "--list", "-i"])
        .arg(&inv)
        .arg("--playbook-dir")
        .arg(&play)
        .run()
        .success();
    let ours: serde_json::Value = serde_json::from_str(&ours.stdout).unwrap();
    assert_eq!(ours, theirs);
    drop(t);
}

/// Two hosts with `ansible_connection: local`: their tasks run on the controller (no SSH: there
/// is no server to reach), the re-run changes nothing, and an `ansible_*` variable engine does
/// not read is reported once, with the number of hosts that have it.
#[test]
fn ansible_connection_local_runs_tasks_on_the_controller_and_unread_keys_warn_once() {
    let t = Test::new();
    let out_dir = t.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let hosts = t.file(
        "hosts",
        "[box]\nctl-a ansible_connection=local\nctl-b ansible_connection=local\n\n[all:vars]\n\
         ansible_python_interpreter=/usr/bin/python3\n",
    );
    let playbook = t.file(
        "local.rhai",
        &format!(
            "for h in hosts() {{ h.file(\"mark\", #{{ path: `{}/${{h.name}}`, content: \"hi\\n\" }}); }}",
            out_dir.display()
        ),
    );
    let run = || Test::new().arg("run").arg(&playbook).arg("-i").arg(&hosts).arg("--json").run().success();
    let first = run();
    assert_eq!(first.count("changed"), 2, "{}", first.stdout);
    for host in ["ctl-a", "ctl-b"] {
        assert_eq!(std::fs::read_to_string(out_dir.join(host)).unwrap(), "hi\n");
    }
    let warning = "warning: inventory: ansible_python_interpreter is not used by engine (set on 2 hosts)\n";
    assert_eq!(first.stderr.matches(warning).count(), 1, "{}", first.stderr);
    let second = run();
    assert_eq!(second.count("changed"), 0, "{}", second.stdout);
    assert_eq!(second.count("ok"), 2, "{}", second.stdout);
}
