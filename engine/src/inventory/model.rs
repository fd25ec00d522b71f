//! The inventory as its sources say it, before variables are merged: groups with their own
//! vars, direct hosts and children; hosts with their own vars. The YAML and INI readers fill
//! the same [`Raw`], source after source (a later source's value for the same variable wins),
//! and [`Raw::resolve`] turns it into hosts with merged variables, in Ansible's order:
//!
//! ```text
//!  lowest   all's vars (inventory files)
//!           other groups' vars (inventory files), by depth then name
//!           group_vars/all beside the inventory, then beside the playbook
//!           group_vars/GROUP beside the inventory, then beside the playbook (same group order)
//!           the host's vars (inventory files)
//!  highest  host_vars/HOST beside the inventory, then beside the playbook
//! ```
//!
//! A group's depth is its distance from `all` (the longest, when it has several parents), so a
//! child group's vars win over its parent's, and groups at the same depth go by name.

use std::collections::{BTreeMap, BTreeSet};

use super::{InventoryHost, Vars};

/// How deep groups may nest (`a:children` holding `b`, ...), so walking them stays shallow.
const MAX_NESTING: usize = 256;

#[derive(Debug, Default, Clone)]
pub(super) struct RawGroup {
    pub(super) vars: Vars,
    pub(super) hosts: Vec<String>,
    /// The same names as `hosts`, to find one quickly.
    host_set: BTreeSet<String>,
    pub(super) children: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Raw {
    /// Host names in the order they first appear.
    pub(super) order: Vec<String>,
    pub(super) host_vars: BTreeMap<String, Vars>,
    pub(super) groups: BTreeMap<String, RawGroup>,
    /// Group names in the order they first appear (`all`'s children are listed so).
    group_order: Vec<String>,
}

/// `group_vars/` and `host_vars/` from one side (beside the inventory, or beside the playbook).
#[derive(Debug, Default)]
pub(super) struct SideVars {
    pub(super) groups: BTreeMap<String, Vars>,
    pub(super) hosts: BTreeMap<String, Vars>,
}

/// Group name -> member host names, in file order (children's members included).
pub(super) type Groups = BTreeMap<String, Vec<String>>;

/// Group name -> (its direct hosts, its child groups), in file order.
pub(super) type Tree = BTreeMap<String, (Vec<String>, Vec<String>)>;

impl Raw {
    pub(super) fn group(&mut self, name: &str) -> &mut RawGroup {
        if !self.groups.contains_key(name) {
            self.group_order.push(name.to_owned());
        }
        self.groups.entry(name.to_owned()).or_default()
    }

    /// Puts `host` in `group` (created when new) with these vars over any it had.
    pub(super) fn add_host(&mut self, group: &str, host: &str, vars: Vars) {
        if !self.host_vars.contains_key(host) {
            self.order.push(host.to_owned());
        }
        self.host_vars.entry(host.to_owned()).or_default().extend(vars);
        let group = self.group(group);
        if group.host_set.insert(host.to_owned()) {
            group.hosts.push(host.to_owned());
        }
    }

    pub(super) fn add_child(&mut self, parent: &str, child: &str) {
        self.group(child);
        let parent = self.group(parent);
        if !parent.children.iter().any(|c| c == child) {
            parent.children.push(child.to_owned());
        }
    }

    /// Hosts with their merged variables and groups, and every group's members.
    /// Fails on a group that contains itself through its children.
    pub(super) fn resolve(
        mut self,
        beside_inventory: &SideVars,
        beside_playbook: &SideVars,
    ) -> Result<(Vec<InventoryHost>, Groups, Tree), String> {
        self.group("all");
        // Every group that is nobody's child hangs under `all`, as in Ansible.
        let children: Vec<String> = self.groups.values().flat_map(|g| g.children.clone()).collect();
        let tops: Vec<String> =
            self.group_order.iter().filter(|g| *g != "all" && !children.contains(g)).cloned().collect();
        for top in &tops {
            self.add_child("all", top);
        }
        let names: Vec<String> = self.groups.keys().cloned().collect();
        let mut checked = BTreeSet::new();
        for name in &names {
            self.check_cycles(name, &mut Vec::new(), &mut checked)?;
        }
        // Hosts in no group but `all` are `ungrouped` (listed only when it has members).
        let mut members: Groups = BTreeMap::new();
        for name in self.groups.keys() {
            self.members(name, &mut members);
        }
        let grouped: BTreeSet<&String> =
            members.iter().filter(|(g, _)| *g != "all" && *g != "ungrouped").flat_map(|(_, m)| m).collect();
        let lone: Vec<String> = self.order.iter().filter(|h| !grouped.contains(h)).cloned().collect();
        if let Some(ungrouped) = self.groups.get_mut("ungrouped") {
            let keep: BTreeSet<&String> = lone.iter().collect();
            ungrouped.hosts.retain(|h| keep.contains(h));
            ungrouped.host_set.retain(|h| keep.contains(h));
        }
        for host in &lone {
            self.add_host("ungrouped", host, Vars::new());
        }
        match self.groups.get("ungrouped") {
            Some(g) if g.hosts.is_empty() && g.vars.is_empty() => {
                self.groups.remove("ungrouped");
                for group in self.groups.values_mut() {
                    group.children.retain(|c| c != "ungrouped");
                }
            }
            Some(_) => {
                // First among `all`'s children, as Ansible lists them.
                self.add_child("all", "ungrouped");
                if let Some(all) = self.groups.get_mut("all") {
                    all.children.retain(|c| c != "ungrouped");
                    all.children.insert(0, "ungrouped".to_owned());
                }
            }
            None => {}
        }
        members.clear();
        for name in self.groups.keys() {
            self.members(name, &mut members);
        }
        let mut depth = BTreeMap::new();
        for name in self.groups.keys() {
            self.depth(name, &mut depth);
        }
        let mut by_depth: Vec<&String> = self.groups.keys().filter(|g| *g != "all").collect();
        by_depth.sort_by_key(|g| (depth[*g], *g));

        let sets: BTreeMap<&String, BTreeSet<&String>> =
            members.iter().map(|(g, m)| (g, m.iter().collect())).collect();
        let hosts = self
            .order
            .iter()
            .map(|host| {
                let in_group = |g: &&String| sets[*g].contains(host);
                let groups: Vec<&String> = by_depth.iter().copied().filter(in_group).collect();
                let mut vars = self.groups["all"].vars.clone();
                for g in &groups {
                    vars.extend(self.groups[*g].vars.clone());
                }
                for side in [beside_inventory, beside_playbook] {
                    vars.extend(side.groups.get("all").cloned().unwrap_or_default());
                }
                for side in [beside_inventory, beside_playbook] {
                    for g in &groups {
                        vars.extend(side.groups.get(*g).cloned().unwrap_or_default());
                    }
                }
                vars.extend(self.host_vars.get(host).cloned().unwrap_or_default());
                for side in [beside_inventory, beside_playbook] {
                    vars.extend(side.hosts.get(host).cloned().unwrap_or_default());
                }
                let groups = std::iter::once("all".to_owned()).chain(groups.into_iter().cloned()).collect();
                InventoryHost { name: host.clone(), vars, groups }
            })
            .collect();
        let tree = self
            .groups
            .iter()
            .map(|(name, g)| (name.clone(), (g.hosts.clone(), g.children.clone())))
            .collect();
        Ok((hosts, members, tree))
    }

    /// Depth-first from `name`; `checked` holds groups already known to be free of cycles, so
    /// shared subgroups are walked once (no blow-up on diamonds).
    fn check_cycles(
        &self,
        name: &str,
        lineage: &mut Vec<String>,
        checked: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        if lineage.iter().any(|g| g == name) {
            return Err(format!("group {name:?} contains itself ({} -> {name})", lineage.join(" -> ")));
        }
        if checked.contains(name) {
            return Ok(());
        }
        if lineage.len() >= MAX_NESTING {
            return Err(format!("groups nest deeper than {MAX_NESTING} levels ({} -> ...)", lineage[0]));
        }
        lineage.push(name.to_owned());
        for child in self.groups.get(name).map(|g| g.children.as_slice()).unwrap_or_default() {
            self.check_cycles(child, lineage, checked)?;
        }
        lineage.pop();
        checked.insert(name.to_owned());
        Ok(())
    }

    /// A group's members into `memo`: direct hosts first, then each child's, without repeats.
    fn members(&self, name: &str, memo: &mut Groups) -> Vec<String> {
        if let Some(found) = memo.get(name) {
            return found.clone();
        }
        let mut out = Vec::new();
        if name == "all" {
            // `all` holds every host, in the order they first appear.
            out = self.order.clone();
        } else if let Some(group) = self.groups.get(name) {
            out = group.hosts.clone();
            let mut seen: BTreeSet<String> = group.host_set.clone();
            for child in &group.children {
                for host in self.members(child, memo) {
                    if seen.insert(host.clone()) {
                        out.push(host);
                    }
                }
            }
        }
        memo.insert(name.to_owned(), out.clone());
        out
    }

    fn depth(&self, name: &str, memo: &mut BTreeMap<String, usize>) -> usize {
        if let Some(d) = memo.get(name) {
            return *d;
        }
        let parents: Vec<&String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.children.iter().any(|c| c == name))
            .map(|(p, _)| p)
            .collect();
        let d = parents.iter().map(|p| self.depth(p, memo) + 1).max().unwrap_or(0);
        memo.insert(name.to_owned(), d);
        d
    }
}
