//! The inventory as it was understood, in `ansible-inventory`'s shapes: `--list` (groups with
//! their hosts and children, every host's merged variables under `_meta.hostvars`), `--host`
//! (one host's variables) and `--graph` (the group tree). Values of variables whose names say
//! they are secrets (`password`, `passwd`, `_pass`, `secret`, `token`) are shown as `<hidden>`.

use serde_json::{Value, json};

use super::{Inventory, Vars};

const HIDDEN: &str = "<hidden>";

fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "passwd", "_pass", "secret", "token"].iter().any(|s| name.contains(s))
}

fn shown(vars: &Vars) -> Value {
    Value::Object(
        vars.iter()
            .map(|(k, v)| (k.clone(), if is_secret(k) { Value::String(HIDDEN.into()) } else { v.clone() }))
            .collect(),
    )
}

impl Inventory {
    /// One host's merged variables (secrets hidden), as `ansible-inventory --host NAME`.
    pub fn host_json(&self, name: &str) -> Option<Value> {
        self.host(name).map(|h| shown(&h.vars))
    }

    /// Every group and host, as `ansible-inventory --list`.
    pub fn list_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        let hostvars: serde_json::Map<String, Value> =
            self.hosts.iter().map(|h| (h.name.clone(), shown(&h.vars))).collect();
        out.insert("_meta".into(), json!({ "hostvars": hostvars }));
        for (name, (hosts, _)) in &self.tree {
            let children = self.children_of(name);
            let mut group = serde_json::Map::new();
            if !hosts.is_empty() && name != "all" {
                group.insert("hosts".into(), json!(hosts));
            }
            if !children.is_empty() {
                group.insert("children".into(), json!(children));
            }
            if !group.is_empty() || name == "all" {
                out.insert(name.clone(), Value::Object(group));
            }
        }
        Value::Object(out)
    }

    /// A group's children as Ansible lists them: in the order they were met, `all`'s starting
    /// with `ungrouped` (which Ansible always has, empty or not).
    fn children_of(&self, name: &str) -> Vec<String> {
        let mut children = self.tree.get(name).map(|(_, c)| c.clone()).unwrap_or_default();
        if name == "all" && !children.iter().any(|c| c == "ungrouped") {
            children.insert(0, "ungrouped".to_owned());
        }
        children
    }

    /// The group tree, as `ansible-inventory --graph`: children then hosts, in the order met.
    pub fn graph_text(&self) -> String {
        let mut out = String::new();
        self.graph_group("all", 0, &mut out);
        out
    }

    fn graph_group(&self, name: &str, depth: usize, out: &mut String) {
        let prefix = |depth: usize| {
            if depth == 0 { String::new() } else { format!("{}  |--", "  |".repeat(depth - 1)) }
        };
        out.push_str(&format!("{}@{name}:\n", prefix(depth)));
        for child in &self.children_of(name) {
            self.graph_group(child, depth + 1, out);
        }
        let hosts = match self.tree.get(name) {
            Some((hosts, _)) if name != "all" => hosts.clone(),
            _ => Vec::new(),
        };
        for host in hosts {
            out.push_str(&format!("{}{host}\n", prefix(depth + 1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const INI: &str = "lone\n[web]\nw1 ansible_become_password=s3cret\n[db]\nd1\n[prod:children]\nweb\ndb\n";

    #[test]
    fn the_graph_is_ansibles_tree() {
        let inventory = Inventory::parse(INI, Path::new("hosts")).unwrap();
        assert_eq!(
            inventory.graph_text(),
            "@all:\n  |--@ungrouped:\n  |  |--lone\n  |--@prod:\n  |  |--@web:\n  |  |  |--w1\n  |  |--@db:\n  |  |  |--d1\n"
        );
    }

    #[test]
    fn the_list_holds_groups_and_hostvars_with_secrets_hidden() {
        let inventory = Inventory::parse(INI, Path::new("hosts")).unwrap();
        assert_eq!(
            inventory.list_json(),
            json!({
                "_meta": {"hostvars": {"lone": {}, "w1": {"ansible_become_password": "<hidden>"}, "d1": {}}},
                "all": {"children": ["ungrouped", "prod"]},
                "prod": {"children": ["web", "db"]},
                "web": {"hosts": ["w1"]},
                "db": {"hosts": ["d1"]},
                "ungrouped": {"hosts": ["lone"]},
            })
        );
        assert_eq!(inventory.host_json("w1").unwrap(), json!({"ansible_become_password": "<hidden>"}));
        assert!(inventory.host_json("nosuch").is_none());
    }
}
