//! `--limit` patterns, as Ansible's "Patterns: targeting hosts and groups" describes them:
//! terms apart at `,` or `:` (`web,db`, `web:db`), each a group or host name, a glob
//! (`worker*`, `db-[ab]?`), a regular expression (`~web\d+`) or any of them with a subscript
//! (`web[0]`, `web[1:3]`, `web[-1]`). A term after `&` keeps only hosts also in it, one after `!`
//! drops its hosts; plain terms are added first, then the `&` terms, then the `!` terms, whatever
//! their order (with no plain term, `all` is the start). A term that matches nothing is an error
//! naming it, and so is a pattern that leaves no host.

use super::Inventory;

/// The host names `patterns` select in `inventory`, in the order the terms find them.
pub(super) fn resolve(inventory: &Inventory, patterns: &[String]) -> Result<Vec<String>, String> {
    let terms: Vec<&str> = patterns.iter().flat_map(|p| split(p)).filter(|t| !t.is_empty()).collect();
    let plain: Vec<&str> = terms.iter().copied().filter(|t| !t.starts_with(['&', '!'])).collect();
    let and: Vec<&str> = terms.iter().filter_map(|t| t.strip_prefix('&')).collect();
    let not: Vec<&str> = terms.iter().filter_map(|t| t.strip_prefix('!')).collect();
    let mut hosts: Vec<String> = Vec::new();
    for term in if plain.is_empty() { vec!["all"] } else { plain } {
        for host in matching(inventory, term)? {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }
    for term in and {
        let keep = matching(inventory, term)?;
        hosts.retain(|h| keep.contains(h));
    }
    for term in not {
        let drop = matching(inventory, term)?;
        hosts.retain(|h| !drop.contains(h));
    }
    if hosts.is_empty() {
        return Err(format!("--limit {:?} leaves no host to target", patterns.join(",")));
    }
    Ok(hosts)
}

/// `a,b` or `a:b`, where a `:` inside a subscript's or glob's brackets does not split.
fn split(pattern: &str) -> Vec<&str> {
    if pattern.contains(',') {
        return pattern.split(',').map(str::trim).collect();
    }
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                out.push(pattern[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(pattern[start..].trim());
    out
}

/// The hosts one term (without its `&`/`!`) stands for.
fn matching(inventory: &Inventory, term: &str) -> Result<Vec<String>, String> {
    let (base, subscript) = split_subscript(term);
    let regex = match base.strip_prefix('~') {
        Some(re) => Some(
            regex::Regex::new(&format!("^(?:{re})"))
                .map_err(|e| format!("--limit {term:?} is not a valid regular expression: {e}"))?,
        ),
        None => None,
    };
    let matches = |name: &str| match &regex {
        Some(re) => re.is_match(name),
        None => glob(base, name),
    };
    let mut found: Vec<String> = Vec::new();
    let mut groups_matched = false;
    for (group, members) in inventory.groups() {
        if matches(group) {
            groups_matched = true;
            found.extend(members.iter().filter(|m| !found.contains(m)).cloned().collect::<Vec<_>>());
        }
    }
    let special = regex.is_some() || base.contains(['.', '?', '*', '[']);
    if !groups_matched || special {
        for host in inventory.hosts() {
            if matches(&host.name) && !found.contains(&host.name) {
                found.push(host.name.clone());
            }
        }
    }
    if found.is_empty() {
        let names = inventory.hosts().iter().map(|h| h.name.as_str()).chain(inventory.group_names());
        let near = if special { String::new() } else { contract::suggest::did_you_mean(base, names) };
        return Err(format!(
            "--limit {base:?} names no host or group of the inventory{near} (groups: {})",
            inventory.group_names().join(", ")
        ));
    }
    match subscript {
        None => Ok(found),
        Some((start, end)) => {
            let len = found.len() as i64;
            let at = |i: i64| if i < 0 { len + i } else { i };
            let (first, last) = (at(start), end.map(at).unwrap_or(len - 1));
            if first < 0 || first >= len || last < first {
                return Err(format!(
                    "--limit {term:?}: the subscript is outside the {len} hosts {base:?} matches"
                ));
            }
            Ok(found[first as usize..=(last.min(len - 1)) as usize].to_vec())
        }
    }
}

/// `web[1]` -> (`web`, (1, Some(1))); `web[1:]` -> (`web`, (1, None)); a bracket that is not a
/// number or a `from:to` pair is a glob's, and a regular expression's are its own: left as is.
fn split_subscript(term: &str) -> (&str, Option<(i64, Option<i64>)>) {
    if term.starts_with('~') {
        // A regular expression's brackets are its own, as Ansible reads them.
        return (term, None);
    }
    let Some(body) = term.strip_suffix(']') else { return (term, None) };
    let Some(open) = body.rfind('[') else { return (term, None) };
    let (base, inside) = (&body[..open], &body[open + 1..]);
    if base.is_empty() {
        return (term, None);
    }
    let number = |s: &str| s.parse::<i64>().ok();
    match inside.split_once(':') {
        None => number(inside).map_or((term, None), |i| (base, Some((i, Some(i))))),
        Some((a, b)) => {
            let a = if a.is_empty() { Some(0) } else { number(a) };
            let b = if b.is_empty() { Some(None) } else { number(b).map(Some) };
            match (a, b) {
                (Some(a), Some(b)) => (base, Some((a, b))),
                _ => (term, None),
            }
        }
    }
}

/// Shell-style matching of the whole name, as Python's fnmatch: `*`, `?`, `[seq]`, `[!seq]`.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point for the last `*`: linear in practice.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class(&p, pi, n[ni]),
            Some(c) if *c == n[ni] => Some(pi + 1),
            _ => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `c` is in the class opening at `p[at]`: the index after it when it is; a `[` with no
/// closing `]` is a plain character.
fn class(p: &[char], at: usize, c: char) -> Option<usize> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut hit = false;
    while let Some(&x) = p.get(i) {
        if x == ']' && i > start {
            return (hit != negate).then_some(i + 1);
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            hit |= x <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= x == c;
            i += 1;
        }
    }
    (c == '[').then_some(at + 1)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const INVENTORY: &str = "\
[workers]
worker[1:3]

[db]
db-a
db-b

[web]
web0
worker1

[prod:children]
workers
db
";

    fn select(pattern: &str) -> Result<Vec<String>, String> {
        let inventory = Inventory::parse(INVENTORY, Path::new("inv.ini")).unwrap();
        resolve(&inventory, &[pattern.to_owned()])
    }

    #[test]
    fn globs_unions_intersections_and_exclusions_follow_ansible() {
        assert_eq!(select("worker*").unwrap(), ["worker1", "worker2", "worker3"]);
        assert_eq!(select("db:web").unwrap(), ["db-a", "db-b", "web0", "worker1"]);
        assert_eq!(select("db,web0").unwrap(), ["db-a", "db-b", "web0"]);
        assert_eq!(select("workers:&web").unwrap(), ["worker1"]);
        assert_eq!(select("all:!worker1").unwrap(), ["worker2", "worker3", "db-a", "db-b", "web0"]);
        assert_eq!(select("!prod").unwrap(), ["web0"], "no plain term starts from all");
        assert_eq!(select("!workers:web").unwrap(), ["web0"], "exclusions apply after the union");
        assert_eq!(select("~db-[ab]").unwrap(), ["db-a", "db-b"]);
        assert_eq!(select("~work").unwrap(), ["worker1", "worker2", "worker3"], "the group and its hosts");
        assert_eq!(select("db-[!a]").unwrap(), ["db-b"]);
        assert_eq!(select("workers[0]").unwrap(), ["worker1"]);
        assert_eq!(select("workers[1:]").unwrap(), ["worker2", "worker3"]);
        assert_eq!(select("workers[-1]").unwrap(), ["worker3"]);
    }

    #[test]
    fn a_term_matching_nothing_is_named_and_so_is_an_empty_selection() {
        let err = select("all:!wroker1").unwrap_err();
        assert!(
            err.starts_with("--limit \"wroker1\" names no host or group") && err.contains("worker1"),
            "{err}"
        );
        assert!(select("nosuch*").unwrap_err().contains("\"nosuch*\" names no host or group"));
        assert_eq!(select("db:&web").unwrap_err(), "--limit \"db:&web\" leaves no host to target");
        assert!(select("~(").unwrap_err().contains("not a valid regular expression"));
        assert!(select("workers[5]").unwrap_err().contains("outside the 3 hosts"));
    }

    #[test]
    fn glob_matches_whole_names() {
        assert!(glob("w*r?", "work") && glob("*", "") && glob("a[0-9]b", "a5b"));
        assert!(!glob("w*", "aw") && !glob("a[!0-9]", "a1") && !glob("web", "web0"));
    }
}
