//! Integration tests of `import`: playbooks using Rhai libraries (from their own folder, from
//! `lib/` beside them, from `--lib DIR`), run through the real `engine` binary. No host is
//! contacted: the inventory points at 127.0.0.1 port 1.
#![allow(clippy::unwrap_used)]

use crate::support;

use support::{Test, fixture, root};

/// Two hosts nobody listens for (port 1 on loopback): `check` reports them unreachable.
const UNREACHABLE: &str = "all:\n  hosts:\n    web0: {ansible_host: 127.0.0.1, ansible_port: 1}\n    \
                           web1: {ansible_host: 127.0.0.1, ansible_port: 1}\n";

/// A library that adds one task per host and returns them by host name.
const WEB_LIB: &str = r#"// web.rhai: a site directory on every host given.
fn site(hosts, dir) {
    let tasks = #{};
    for h in hosts {
        tasks[h.name] = h.file("site dir", #{ path: dir, state: "directory" });
    }
    tasks
}
"#;

/// The JSON events of `engine check --json` report every task with the file:line:col it was
/// written at: for a task made inside a library function, the library's own line.
#[test]
fn tasks_made_by_a_library_carry_the_librarys_location() {
    let t = Test::new();
    std::fs::create_dir(t.path().join("lib")).unwrap();
    let lib = t.file("lib/web.rhai", WEB_LIB);
    let playbook = t.file(
        "site.rhai",
        "import \"web\" as web;\n\
         let sites = web::site(hosts(), \"/srv/site\");\n\
         host(\"web0\").file(\"index\", #{ path: \"/srv/site/index.html\", content: \"hi\" }).after(sites.web1);\n",
    );
    let inventory = t.file("inventory.yml", UNREACHABLE);
    let out = t
        .arg("check")
        .arg(&playbook)
        .arg("-i")
        .arg(&inventory)
        .args(["--json", "--connect-timeout", "2"])
        .run()
        .code(2);
    let lib = lib.display().to_string();
    for host in ["web0", "web1"] {
        let location = out.task(host, "site dir")["location"].as_str().unwrap().to_owned();
        assert_eq!(location, format!("{lib}:5:27"), "{host}");
    }
    let index = out.task("web0", "index")["location"].as_str().unwrap().to_owned();
    assert_eq!(index, format!("{}:3:14", playbook.display()));
}

/// The tasks a library function adds belong to the section in force where the playbook calls
/// it; a library cannot open a section of its own.
#[test]
fn a_librarys_tasks_belong_to_the_callers_section() {
    let t = Test::new();
    std::fs::create_dir(t.path().join("lib")).unwrap();
    t.file("lib/web.rhai", WEB_LIB);
    let playbook = t.file(
        "site.rhai",
        "import \"web\" as web;\nsection(\"Sites\");\nweb::site(hosts(), \"/srv/site\");\n",
    );
    let dot = Test::new()
        .arg("graph")
        .arg(&playbook)
        .arg("-i")
        .arg(fixture("inventory.yml"))
        .run()
        .success()
        .stdout;
    let sections: Vec<&str> =
        dot.split("subgraph cluster_").skip(1).filter(|c| c.contains("label=\"Sites\";")).collect();
    assert!(!sections.is_empty(), "{dot}");
    assert!(sections.iter().all(|c| c.contains("site dir")), "{dot}");
    t.file("lib/sections.rhai", "fn open() { section(\"Mine\"); }\n");
    let bad = t.file("bad.rhai", "import \"sections\" as s;\ns::open();\n");
    Test::new()
        .arg("graph")
        .arg(&bad)
        .arg("-i")
        .arg(fixture("inventory.yml"))
        .run()
        .failure()
        .stderr_has("section(...) is for the playbook, not a library");
    let empty = t.file("empty.rhai", "section(\" \");\n");
    Test::new()
        .arg("graph")
        .arg(&empty)
        .arg("-i")
        .arg(fixture("inventory.yml"))
        .run()
        .failure()
        .stderr_has("empty.rhai:1:")
        .stderr_has("a section needs a name");
}

/// `--lib DIR` adds a library folder (repeatable); without it the import is not found, and the
/// message names every folder searched.
#[test]
fn lib_flag_adds_library_folders() {
    let t = Test::new();
    let shared = t.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    t.file("shared/web.rhai", WEB_LIB);
    let playbook = t.file("site.rhai", "import \"web\" as web;\nweb::site(hosts(), \"/srv\");\n");
    let graph = || Test::new().arg("graph").arg(&playbook).arg("-i").arg(fixture("inventory.yml"));
    graph().arg("--lib").arg(t.path()).arg("--lib").arg(&shared).run().success().stdout_has("site dir");
    graph()
        .run()
        .failure()
        .stderr_has("site.rhai:1:8")
        .stderr_has("import \"web\": no web.rhai in")
        .stderr_has(&t.path().display().to_string());
    graph().arg("--lib").arg(t.path().join("missing")).run().failure().stderr_has("is not a folder");
}

/// The libraries of playbooks/lib work from any playbook given `--lib playbooks/lib`: the etcd
/// cluster and the keepalived pair, whose template comes from the library's own folder (the
/// playbook's folder has none).
#[test]
fn the_shipped_libraries_work_from_another_playbook() {
    let t = Test::new();
    let playbook = t.file(
        "cluster.rhai",
        r#"import "etcd" as etcd;
import "keepalived" as keepalived;
let cluster = etcd::cluster(group("etcd"), #{ interface: "eth0" });
let lb = keepalived::vip(group("web"), #{ virtual_ip: "192.0.2.100", password: "s3cret", interface: "eth0" });
host("web0").command("use etcd", #{ argv: ["true"] }).after(cluster.healthy).after(lb.running);
"#,
    );
    let out = Test::new()
        .arg("graph")
        .arg(&playbook)
        .arg("-i")
        .arg(fixture("inventory.yml"))
        .arg("--lib")
        .arg(root().join("playbooks/lib"))
        .run()
        .success();
    for task in
        ["etcd CA", "etcd CA and client cert from etcd0", "etcd on etcd2 healthy", "keepalived config"]
    {
        assert!(out.stdout.contains(&format!("label=\"{task}\\n")), "no {task:?} in\n{}", out.stdout);
    }

    // A misspelled option: the library's message, pointing into the library, with the call site.
    let typo = t.file(
        "typo.rhai",
        "import \"etcd\" as etcd;\n\netcd::cluster(group(\"etcd\"), #{ interfase: \"eth0\" });\n",
    );
    Test::new()
        .arg("graph")
        .arg(&typo)
        .arg("-i")
        .arg(fixture("inventory.yml"))
        .arg("--lib")
        .arg(root().join("playbooks/lib"))
        .run()
        .failure()
        .stderr_has("playbooks/lib/etcd.rhai:")
        .stderr_has("etcd: unknown option \"interfase\"")
        .stderr_has(&format!("in cluster(), called at {}:3", typo.display()));
}

/// playbooks/ha.rhai imports its libraries from playbooks/lib without any flag.
#[test]
fn ha_finds_its_libraries_beside_it() {
    Test::new()
        .args(["graph", "playbooks/ha.rhai", "-i", "playbooks/inventory.example.yml"])
        .run()
        .success()
        .stdout_has("etcd server cert")
        .stdout_has("keepalived running");
}
