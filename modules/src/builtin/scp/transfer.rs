//! Pairing every source file with its destination path.

use std::collections::BTreeSet;
use std::path::Path;

use super::glob::excluded;
use super::listing::{Entry, Kind, Listing};

/// One file to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transfer {
    pub(super) src: String,
    pub(super) dest: String,
    pub(super) entry: Entry,
}

fn join_path(dir: &str, rel: &str) -> String {
    format!("{}/{rel}", dir.trim_end_matches('/'))
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A path without trailing slashes (except `/` itself), as `find` prints its roots.
pub(super) fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() && path.starts_with('/') { "/".to_owned() } else { trimmed.to_owned() }
}

/// Pairs every source file with its destination, leaving out excluded ones. `source` names
/// the source side in messages.
pub(super) fn pair_up(
    roots: &[String],
    dest: &str,
    listing: &Listing,
    exclude: &[String],
    source: &str,
) -> Result<Vec<Transfer>, String> {
    let many = roots.len() > 1;
    let mut copies: Vec<Transfer> = Vec::new();
    for root in roots {
        match listing.kinds.get(root).copied().unwrap_or(Kind::Missing) {
            Kind::Missing => return Err(format!("{source}:{root} does not exist")),
            Kind::Other => return Err(format!("{source}:{root} is neither a regular file nor a directory")),
            Kind::File => {
                let entry = listing
                    .files
                    .get(root)
                    .ok_or_else(|| format!("{source}:{root} vanished while it was listed"))?;
                if excluded(exclude, base_name(root)) {
                    continue;
                }
                let to = if many || dest.ends_with('/') {
                    join_path(dest, base_name(root))
                } else {
                    dest.to_owned()
                };
                copies.push(Transfer { src: root.clone(), dest: to, entry: entry.clone() });
            }
            Kind::Dir => {
                let prefix = if root == "/" { "/".to_owned() } else { format!("{root}/") };
                let base = if many { join_path(dest, base_name(root)) } else { dest.to_owned() };
                for (path, entry) in listing.files.range(prefix.clone()..) {
                    let Some(rel) = path.strip_prefix(&prefix) else { break };
                    if excluded(exclude, rel) {
                        continue;
                    }
                    copies.push(Transfer {
                        src: path.clone(),
                        dest: join_path(&base, rel),
                        entry: entry.clone(),
                    });
                }
            }
        }
    }
    copies.sort_by(|a, b| a.dest.cmp(&b.dest));
    if let Some(pair) = copies.windows(2).find(|w| w[0].dest == w[1].dest) {
        return Err(format!("both {} and {} would be copied to {}", pair[0].src, pair[1].src, pair[0].dest));
    }
    Ok(copies)
}

/// Every directory above the copies' destinations (not `/`), which must exist or be created.
pub(super) fn needed_dirs(copies: &[Transfer]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for copy in copies {
        for dir in Path::new(&copy.dest).ancestors().skip(1) {
            let dir = dir.to_string_lossy();
            if dir.is_empty() || dir == "/" || dir == "." {
                break;
            }
            dirs.insert(dir.into_owned());
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sha: &str) -> Entry {
        Entry { mode: 0o600, size: 3, owner: "root".into(), group: "root".into(), sha256: sha.into() }
    }

    fn listing(kinds: &[(&str, Kind)], files: &[&str]) -> Listing {
        Listing {
            kinds: kinds.iter().map(|(p, k)| ((*p).to_owned(), *k)).collect(),
            files: files.iter().map(|f| ((*f).to_owned(), entry(f))).collect(),
        }
    }

    #[test]
    fn pairs_files_trees_and_lists_with_their_destinations() {
        let l = listing(
            &[("/pki", Kind::Dir), ("/one.crt", Kind::File), ("/gone", Kind::Missing)],
            &["/pki/ca.crt", "/pki/apiserver.key", "/pki/etcd/ca.key", "/pkix/not-under", "/one.crt"],
        );
        let dests = |roots: &[&str], dest: &str, ex: &[&str]| -> Result<Vec<String>, String> {
            let roots: Vec<String> = roots.iter().map(|r| (*r).to_owned()).collect();
            let ex: Vec<String> = ex.iter().map(|r| (*r).to_owned()).collect();
            Ok(pair_up(&roots, dest, &l, &ex, "etcd0")?.into_iter().map(|c| c.dest).collect())
        };
        assert_eq!(dests(&["/one.crt"], "/d/x.crt", &[]).unwrap(), ["/d/x.crt"]);
        assert_eq!(dests(&["/one.crt"], "/d/", &[]).unwrap(), ["/d/one.crt"]);
        assert_eq!(dests(&["/pki"], "/k", &["apiserver.key"]).unwrap(), ["/k/ca.crt", "/k/etcd/ca.key"]);
        assert_eq!(
            dests(&["/pki", "/one.crt"], "/k", &["etcd"]).unwrap(),
            ["/k/one.crt", "/k/pki/apiserver.key", "/k/pki/ca.crt"]
        );
        assert_eq!(dests(&["/gone"], "/k", &[]).unwrap_err(), "etcd0:/gone does not exist");
        assert!(dests(&["/one.crt", "/one.crt"], "/k", &[]).unwrap_err().contains("both"));
    }

    #[test]
    fn needed_dirs_are_every_ancestor_but_the_root() {
        let copy = |dest: &str| Transfer { src: "/s".into(), dest: dest.into(), entry: entry("x") };
        let dirs = needed_dirs(&[copy("/a/b/c"), copy("/a/d"), copy("rel/x")]);
        assert_eq!(dirs.into_iter().collect::<Vec<_>>(), ["/a", "/a/b", "rel"]);
    }
}
