//! The inventory model end to end: INI and YAML giving the same hosts, groups and variables,
//! and the precedence of every variable source.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::json;

use super::*;

const INI: &str = "\
# a comment
; another
lone ansible_host=10.0.0.9

[web]
web[01:02].example.com http_port=80 tls=True
db-a:2222

[db]
db-[a:b] role='primary'   # trailing comment

[db:vars]
ntp = pool.example.com
retries=3

[prod:children]
web
db

[prod:vars]
env=prod
retries=1

[all:vars]
ansible_user=deploy
";

const YAML: &str = "
all:
  vars: {ansible_user: deploy}
  hosts:
    lone: {ansible_host: 10.0.0.9}
  children:
    prod:
      vars: {env: prod, retries: 1}
      children:
        web:
          hosts:
            web[01:02].example.com: {http_port: 80, tls: true}
            db-a: {ansible_port: 2222}
        db:
          vars: {ntp: pool.example.com, retries: 3}
          hosts:
            db-[a:b]: {role: primary}
";

fn vars(inventory: &Inventory, host: &str) -> serde_json::Value {
    serde_json::Value::Object(inventory.host(host).unwrap().vars.clone())
}

#[test]
fn ini_and_yaml_give_the_same_hosts_groups_and_variables() {
    let ini = Inventory::parse(INI, Path::new("hosts")).unwrap();
    let yaml = Inventory::parse(YAML, Path::new("hosts.yml")).unwrap();
    for inventory in [&ini, &yaml] {
        let mut names: Vec<&str> = inventory.hosts().iter().map(|h| h.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["db-a", "db-b", "lone", "web01.example.com", "web02.example.com"]);
        assert_eq!(inventory.group("ungrouped").unwrap(), ["lone"]);
        assert_eq!(inventory.group_names(), ["all", "db", "prod", "ungrouped", "web"]);
        assert_eq!(
            vars(inventory, "db-a"),
            json!({"ansible_user": "deploy", "env": "prod", "retries": 3, "ntp": "pool.example.com",
                   "ansible_port": 2222, "role": "primary"}),
            "db's retries (depth 2) win over prod's (depth 1)"
        );
        assert_eq!(
            vars(inventory, "web01.example.com"),
            json!({"ansible_user": "deploy", "env": "prod", "retries": 1, "http_port": 80, "tls": true})
        );
        assert_eq!(inventory.host("db-a").unwrap().groups, ["all", "prod", "db", "web"]);
    }
    assert_eq!(ini.group("prod").unwrap(), yaml.group("prod").unwrap());
}

#[test]
fn bad_ini_is_refused_with_its_line() {
    for (text, line, says) in [
        ("[web]\na\n[web:hosts2]\n", 3, "section [web:hosts2] has an unknown type \"hosts2\""),
        ("[web\n", 1, "a section header is [group]"),
        ("[my group]\n", 1, "no spaces inside"),
        ("[web]\na port=22 oops\n", 2, "expected key=value after the host \"a\", found \"oops\""),
        ("[web:vars]\n\nnovalue\n", 3, "[web:vars] holds key=value lines"),
        ("[web:children]\na b\n", 2, "one group name a line"),
        ("[web]\nweb[3:1]\n", 2, "begins after it ends"),
        ("[web]\na:99999\n", 2, "not a port number"),
        ("[web]\na x='open\n", 2, "is not closed"),
        ("[web]\na 1x=2\n", 2, "\"1x\" is not a variable name"),
        ("[web]\na b\\c\n", 2, "expected key=value"),
    ] {
        let Err(InventoryError::Invalid { line: got, message, .. }) =
            Inventory::parse(text, Path::new("hosts"))
        else {
            panic!("accepted {text:?}")
        };
        assert_eq!(got, Some(line), "{text:?}: {message}");
        assert!(message.contains(says), "{text:?}: {message}");
    }
}

#[test]
fn a_group_that_contains_itself_through_ini_children_is_refused() {
    let text = "[a:children]\nb\n[b:children]\na\n";
    let err = Inventory::parse(text, Path::new("hosts")).unwrap_err().to_string();
    assert!(err.contains("contains itself (a -> b -> a)"), "{err}");
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Every source of a variable, each overriding the one above (Ansible's documented order):
/// ```text
///  [all:vars] < [g:vars] < inv group_vars/all < playbook group_vars/all
///    < inv group_vars/g < playbook group_vars/g < host line < inv host_vars/h < playbook host_vars/h
/// ```
#[test]
fn variable_sources_override_in_ansibles_precedence() {
    let tmp = tempfile::tempdir().unwrap();
    let (inv, play) = (tmp.path().join("inv"), tmp.path().join("play"));
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    // Source n sets keys[n..]: the value each key ends with names the last source that set it.
    let line = |n: usize, sep: &str| keys[n..].iter().map(|k| format!("{k}{sep}s{n}")).collect::<Vec<_>>();
    let inventory = format!(
        "[all:vars]\n{}\n[g]\nh {}\n[g:vars]\n{}\n",
        line(0, "=").join("\n"),
        line(6, "=").join(" "),
        line(1, "=").join("\n"),
    );
    write(&inv, "hosts", &inventory);
    write(&inv, "group_vars/all.yml", &line(2, ": ").join("\n"));
    write(&play, "group_vars/all/10.yml", &line(3, ": ").join("\n"));
    write(&inv, "group_vars/g", &line(4, ": ").join("\n"));
    write(
        &play,
        "group_vars/g.json",
        &format!(
            "{{{}}}",
            line(5, ": ")
                .iter()
                .map(|kv| {
                    let (k, v) = kv.split_once(": ").unwrap();
                    format!("\"{k}\": \"{v}\"")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    write(&inv, "host_vars/h.yaml", &line(7, ": ").join("\n"));
    write(&play, "host_vars/h/a.yml", &line(8, ": ").join("\n"));
    let inventory = Inventory::load_all(&[inv.join("hosts")], Some(&play)).unwrap();
    let expected: serde_json::Map<String, serde_json::Value> =
        keys.iter().enumerate().map(|(n, k)| ((*k).to_owned(), json!(format!("s{n}")))).collect();
    assert_eq!(inventory.host("h").unwrap().vars, expected);
}

#[test]
fn a_vars_folder_merges_its_files_in_name_order_and_skips_others() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "hosts.yml", "all:\n  hosts:\n    h:\n");
    write(tmp.path(), "group_vars/all/b.yml", "x: b\ny: b\n");
    write(tmp.path(), "group_vars/all/a.yml", "x: a\nz: a\n");
    write(tmp.path(), "group_vars/all/c.txt", "x: c\n");
    write(tmp.path(), "group_vars/all/.hidden.yml", "x: hidden\n");
    write(tmp.path(), "group_vars/nosuchgroup.yml", "x: other\n");
    let inventory = Inventory::load(&tmp.path().join("hosts.yml")).unwrap();
    assert_eq!(vars(&inventory, "h"), json!({"x": "b", "y": "b", "z": "a"}));
}

#[test]
fn a_vars_file_that_is_not_a_map_is_refused_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "hosts", "h\n");
    write(tmp.path(), "host_vars/h.yml", "- a\n- b\n");
    let err = Inventory::load(&tmp.path().join("hosts")).unwrap_err().to_string();
    assert!(err.contains("host_vars/h.yml") && err.contains("holds a map of variables"), "{err}");
    write(tmp.path(), "host_vars/h.yml", "a: [\n");
    let err = Inventory::load(&tmp.path().join("hosts")).unwrap_err().to_string();
    assert!(err.contains("host_vars/h.yml:") && err.contains("not valid YAML"), "{err}");
}

#[test]
fn several_sources_and_a_folder_merge_with_the_later_value_winning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("inventory");
    write(&dir, "01-base.yml", "all:\n  children:\n    web:\n      hosts:\n        a: {x: 1, y: 1}\n");
    write(&dir, "02-more", "[web]\na x=2\n[db]\nb\n");
    write(&dir, "03-notes.md", "not an inventory\n");
    write(&dir, "04-old.retry", "a\n");
    write(&dir, "group_vars/db.yml", "from_dir: true\n");
    write(tmp.path(), "extra.ini", "[db]\nb y=3\nc\n");
    let inventory = Inventory::load_all(&[dir, tmp.path().join("extra.ini")], None).unwrap();
    assert_eq!(inventory.hosts().iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(vars(&inventory, "a"), json!({"x": 2, "y": 1}));
    assert_eq!(vars(&inventory, "b"), json!({"from_dir": true, "y": 3}));
    assert_eq!(inventory.group("db").unwrap(), ["b", "c"]);
}

#[test]
fn yaml_without_a_yaml_extension_is_still_read() {
    let inventory = Inventory::parse("all:\n  hosts:\n    a:\n", Path::new("hosts")).unwrap();
    assert_eq!(inventory.hosts()[0].name, "a");
}

#[test]
fn a_large_range_and_deep_or_shared_nesting_stay_fast() {
    let started = std::time::Instant::now();
    let mut text = String::from("[big]\nn[00001:50000]\n");
    // Diamonds: each level's two groups both hold the next level's two (2^30 paths if walked naively).
    for level in 0..30 {
        for side in ["a", "b"] {
            text.push_str(&format!("[l{level}{side}:children]\nl{}a\nl{}b\n", level + 1, level + 1));
        }
    }
    text.push_str("[l30a]\nn00001\n");
    let inventory = Inventory::parse(&text, Path::new("hosts")).unwrap();
    assert_eq!(inventory.hosts().len(), 50_000);
    assert_eq!(inventory.group("l0a").unwrap(), ["n00001"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    let deep: String = (0..300).map(|i| format!("[g{i}:children]\ng{}\n", i + 1)).collect();
    let err = Inventory::parse(&deep, Path::new("hosts")).unwrap_err().to_string();
    assert!(err.contains("nest deeper than 256"), "{err}");
}

/// A poor man's fuzz run, always on: the sample inventories with each special character put
/// at each position, and cut at each position, parse or fail without a panic.
#[test]
fn mangled_inventories_give_an_error_never_a_panic() {
    let specials = ["[", "]", ":", "=", "'", "\"", "\\", "#", ";", "(", "{", ",", "é", "\u{2063}", "\n", " "];
    for (text, path) in [(INI, "hosts"), (YAML, "hosts.yml")] {
        let cuts: Vec<usize> = (0..=text.len()).filter(|i| text.is_char_boundary(*i)).collect();
        for &at in &cuts {
            let _ = Inventory::parse(&text[..at], Path::new(path));
            for special in specials {
                let mangled = format!("{}{special}{}", &text[..at], &text[at..]);
                if let Ok(inventory) = Inventory::parse(&mangled, Path::new(path)) {
                    let _ = inventory.resolve_patterns(&["all:!web*:&~d".to_owned()]);
                    let _ = inventory.graph_text();
                }
            }
        }
    }
}

/// Patterns against an INI inventory, each with the hosts `ansible PATTERN --list-hosts`
/// printed for the same file (ansible-core 2.19.14), in its order.
#[test]
fn limit_patterns_select_what_ansible_selects() {
    const HOSTS: &str = r#"lone ansible_host=10.0.0.9 n=01 t=true T=True l="[1, 'a']" q="'5'" f=1.5
[web]
web[01:03] http_port=80
db-a:2222

[db]
db-[a:b] role='primary'   # trailing comment

[db:vars]
ntp = pool.example.com
retries=3
s="quoted text"

[prod:children]
web
db

[prod:vars]
env=prod
retries=1

[all:vars]
ansible_user=deploy
"#;
    let inventory = Inventory::parse(HOSTS, Path::new("hosts")).unwrap();
    for (pattern, ansible) in [
        ("web*:!web02", "web01 web03 db-a"),
        ("prod:&db", "db-a db-b"),
        ("~db-[a]", "db-a"),
        ("web01,db-b", "web01 db-b"),
        ("!prod", "lone"),
        ("web[1:]", "web02 web03 db-a"),
        ("web[-1]", "db-a"),
        ("db:web", "db-a db-b web01 web02 web03"),
        ("~web0[12]", "web01 web02"),
        ("d*", "db-a db-b"),
    ] {
        let ours = inventory.resolve_patterns(&[pattern.to_owned()]).unwrap();
        assert_eq!(ours.join(" "), ansible, "{pattern}");
    }
}

fn connection(yaml_host: &str) -> Result<Connection, String> {
    let text = format!("all:\n  hosts:\n    h: {yaml_host}\n");
    Inventory::parse(&text, Path::new("inv.yml")).unwrap().host("h").unwrap().connection()
}

#[test]
fn ansible_connection_local_runs_on_the_controller_and_ssh_names_are_ssh() {
    assert_eq!(connection("{ansible_connection: local}").unwrap().transport, Transport::Local);
    for ssh in
        ["{}", "{ansible_connection: ssh}", "{ansible_connection: smart}", "{ansible_connection: paramiko}"]
    {
        assert_eq!(connection(ssh).unwrap().transport, Transport::Ssh, "{ssh}");
    }
}

#[test]
fn an_unsupported_ansible_connection_is_refused_at_load_naming_file_host_and_value() {
    let err = Inventory::parse(
        "all:\n  hosts:\n    w: {ansible_connection: winrm}\n    d:\n",
        Path::new("inv.yml"),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "inventory inv.yml: host w: ansible_connection \"winrm\" is not supported; engine connects \
         with \"ssh\" (also \"smart\" or \"paramiko\") or \"local\""
    );
}

#[test]
fn legacy_ssh_names_are_read_and_the_new_name_wins() {
    let legacy =
        connection("{ansible_ssh_host: 10.0.0.1, ansible_ssh_port: 2222, ansible_ssh_user: ops}").unwrap();
    assert_eq!(
        (legacy.address.as_str(), legacy.port, legacy.user.as_deref()),
        ("10.0.0.1", Some(2222), Some("ops"))
    );
    let both = connection(
        "{ansible_host: 10.0.0.2, ansible_ssh_host: 10.0.0.1, ansible_port: 22, ansible_ssh_port: 2222, \
         ansible_user: deploy, ansible_ssh_user: ops}",
    )
    .unwrap();
    assert_eq!(
        (both.address.as_str(), both.port, both.user.as_deref()),
        ("10.0.0.2", Some(22), Some("deploy"))
    );
    let err = connection("{ansible_ssh_port: 0}").unwrap_err();
    assert_eq!(err, "host h: ansible_ssh_port \"0\" is not a port number (1-65535)");
}

#[test]
fn become_methods_and_passwords_are_read_and_what_cannot_work_is_refused() {
    use crate::elevate::Method;
    let sudo = connection("{ansible_become: true, ansible_become_password: s3cret}").unwrap();
    assert_eq!((sudo.become_user.as_deref(), sudo.become_method), (Some("root"), Method::Sudo));
    assert_eq!(sudo.become_password.unwrap().expose(), "s3cret");
    let su = connection(
        "{ansible_become: true, ansible_become_method: su, ansible_become_user: postgres, ansible_su_pass: pw}",
    )
    .unwrap();
    assert_eq!((su.become_user.as_deref(), su.become_method), (Some("postgres"), Method::Su));
    assert_eq!(su.become_password.unwrap().expose(), "pw");
    // The generic name wins over the method's own, as in Ansible.
    let both = connection("{ansible_become_pass: a1, ansible_sudo_pass: b2}").unwrap();
    assert_eq!(both.become_password.unwrap().expose(), "a1");
    assert_eq!(
        connection("{ansible_become: true, ansible_become_method: runas}").unwrap_err(),
        "host h: ansible_become_method \"runas\" is not supported; engine becomes with sudo, su, doas"
    );
    assert!(
        connection("{ansible_become_method: doas, ansible_become_password: x}")
            .unwrap_err()
            .contains("doas takes no password")
    );
    assert_eq!(
        connection("{ansible_connection: local, ansible_become: true}").unwrap().become_user.as_deref(),
        Some("root")
    );
    assert_eq!(
        connection("{ansible_connection: local, ansible_become: true, ansible_become_method: doas}")
            .unwrap_err(),
        "host h: ansible_become_method doas with ansible_connection \"local\" is not supported; on the \
         controller engine becomes with sudo only"
    );
}

#[test]
fn unread_ansible_keys_are_reported_once_per_name_with_their_host_count() {
    let ini = "[web]\nw[1:3] ansible_ssh_pipelining=true\nlone\n[all:vars]\nansible_python_interpreter=/usr/bin/python3\n\
               ansible_user=deploy\nmy_var=1\n";
    let inventory = Inventory::parse(ini, Path::new("hosts")).unwrap();
    let lines: Vec<String> = inventory.unused_keys().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "inventory: ansible_python_interpreter is not used by engine (set on 4 hosts)",
            "inventory: ansible_ssh_pipelining is not used by engine (set on 3 hosts)",
        ]
    );
    let one = Inventory::parse("h ansible_shell_type=sh\n", Path::new("hosts")).unwrap();
    assert_eq!(
        one.unused_keys()[0].to_string(),
        "inventory: ansible_shell_type is not used by engine (set on 1 host)"
    );
    assert!(Inventory::parse("h ansible_ssh_host=x\n", Path::new("hosts")).unwrap().unused_keys().is_empty());
}
