//! Pairing every source file with its destination path.

use std::collections::BTreeSet;
use std::path::Path;

use super::glob::excluded;
use contract::error::ModuleError;
use contract::untrusted::Malformed;

use super::listing::{Entry, Kind, Listing, listing_of};

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

/// Whether `rel` is a plain relative path: non-empty components, none of them `.` or `..`,
/// no leading or trailing `/`. Joined under a directory, it stays under that directory.
pub(super) fn is_plain_relative(rel: &str) -> bool {
    rel.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The prefix of the paths under directory `root`, as `find` prints them.
fn dir_prefix(root: &str) -> String {
    if root == "/" { "/".to_owned() } else { format!("{root}/") }
}

/// Checks that every path of the source listing is one the copy asked for: a root that is a
/// file, or a plain relative path (see [`is_plain_relative`]) under a root that is a directory.
/// The source host prints the listing, and may be hostile: `/pki/../../root/.bashrc` would be
/// written outside the destination.
fn confine(roots: &[String], listing: &Listing, source: &str) -> Result<(), ModuleError> {
    let refuse = |path: &str, why: String| -> ModuleError {
        Malformed::new(path, why).on(source, listing_of(&roots.join(" "))).into()
    };
    for path in listing.files.keys() {
        let mut asked = false;
        for root in roots {
            match listing.kinds.get(root) {
                Some(Kind::File) => asked |= path == root,
                Some(Kind::Dir) => {
                    if let Some(rel) = path.strip_prefix(&dir_prefix(root)) {
                        if !is_plain_relative(rel) {
                            let why = format!("a path that leaves {root} (an empty, `.` or `..` component)");
                            return Err(refuse(path, why));
                        }
                        asked = true;
                    }
                }
                _ => {}
            }
        }
        if !asked {
            return Err(refuse(path, format!("a path outside what was asked for ({})", roots.join(" "))));
        }
    }
    Ok(())
}

/// Pairs every source file with its destination, leaving out excluded ones. `source` names
/// the source side in messages. A listing that names anything but the roots and plain paths
/// under them is refused (see [`confine`]).
pub(super) fn pair_up(
    roots: &[String],
    dest: &str,
    listing: &Listing,
    exclude: &[String],
    source: &str,
) -> Result<Vec<Transfer>, ModuleError> {
    confine(roots, listing, source)?;
    let refused = |why: String| ModuleError::Refused(why);
    let many = roots.len() > 1;
    let mut copies: Vec<Transfer> = Vec::new();
    for root in roots {
        match listing.kinds.get(root).copied().unwrap_or(Kind::Missing) {
            Kind::Missing => return Err(refused(format!("{source}:{root} does not exist"))),
            Kind::Other => {
                return Err(refused(format!("{source}:{root} is neither a regular file nor a directory")));
            }
            Kind::File => {
                let entry = listing
                    .files
                    .get(root)
                    .ok_or_else(|| refused(format!("{source}:{root} vanished while it was listed")))?;
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
                let prefix = dir_prefix(root);
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
        return Err(refused(format!(
            "both {} and {} would be copied to {}",
            pair[0].src, pair[1].src, pair[0].dest
        )));
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
            // What `find` lists for these roots: the roots' own files only.
            let mut found = Listing { kinds: l.kinds.clone(), files: l.files.clone() };
            found.files.retain(|p, _| roots.iter().any(|r| p == r || p.starts_with(&dir_prefix(r))));
            let copies = pair_up(&roots, dest, &found, &ex, "etcd0").map_err(|e| e.to_string())?;
            Ok(copies.into_iter().map(|c| c.dest).collect())
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

    /// Issue 15: a host that lists `/etc/kubernetes/pki/../../../../root/.bashrc` had that file
    /// written outside the destination. Every listed path must be a root that is a file, or a
    /// plain relative path under a root that is a directory; anything else fails the copy,
    /// naming the host and the entry (printable).
    #[test]
    fn a_listed_path_outside_the_source_is_refused_naming_the_host_and_the_entry() {
        let pki = "/etc/kubernetes/pki";
        let refused = |files: &[&str]| {
            let l = listing(&[(pki, Kind::Dir), ("/one.crt", Kind::File)], files);
            let roots = [pki.to_owned(), "/one.crt".to_owned()];
            match pair_up(&roots, "/dest", &l, &[], "master0") {
                Err(ModuleError::Output(error)) => error,
                other => panic!("{files:?}: {other:?}"),
            }
        };
        let error = refused(&["/etc/kubernetes/pki/../../../../root/.bashrc"]);
        assert_eq!(
            error.to_string(),
            "the listing of /etc/kubernetes/pki /one.crt from master0 is refused: a path that leaves \
             /etc/kubernetes/pki (an empty, `.` or `..` component): \"/etc/kubernetes/pki/../../../../root/.bashrc\""
        );
        assert_eq!(error.host, "master0");
        for escape in [
            "/etc/kubernetes/pki/..",
            "/etc/kubernetes/pki/a/../../x",
            "/etc/kubernetes/pki//root/.bashrc",
            "/etc/kubernetes/pki/./x",
            "/etc/kubernetes/pki/",
            "/etc/kubernetes/pki/a/",
        ] {
            assert!(error_of(refused(&[escape])).contains("leaves /etc/kubernetes/pki"), "{escape}");
        }
        for outside in ["/root/.bashrc", "/etc/kubernetes/pkix/x", "/etc/kubernetes/pki", "/one.crt/x", "x"] {
            assert!(error_of(refused(&[outside])).contains("outside what was asked for"), "{outside}");
        }
        let shown = refused(&["/etc/kubernetes/pki/../\u{1b}[2J\n"]).entry;
        assert_eq!(shown, "/etc/kubernetes/pki/../\\u{1b}[2J\\n", "printable");
        let sound =
            listing(&[(pki, Kind::Dir)], &["/etc/kubernetes/pki/..a/b.", "/etc/kubernetes/pki/ca.crt"]);
        assert_eq!(pair_up(&[pki.to_owned()], "/d", &sound, &[], "m").unwrap().len(), 2);
    }

    fn error_of(error: contract::untrusted::OutputError) -> String {
        error.why
    }

    #[test]
    fn needed_dirs_are_every_ancestor_but_the_root() {
        let copy = |dest: &str| Transfer { src: "/s".into(), dest: dest.into(), entry: entry("x") };
        let dirs = needed_dirs(&[copy("/a/b/c"), copy("/a/d"), copy("rel/x")]);
        assert_eq!(dirs.into_iter().collect::<Vec<_>>(), ["/a", "/a/b", "rel"]);
    }
}
