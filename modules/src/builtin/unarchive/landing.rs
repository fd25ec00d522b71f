//! Where each member lands under the destination, and whether it stays inside it.

use super::listing::{Kind, Member};

/// The components of a member name, without empty ones and `.`.
pub(super) fn components(name: &str) -> Vec<&str> {
    name.split('/').filter(|c| !c.is_empty() && *c != ".").collect()
}

/// A member as it lands under the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Landing {
    /// The member's name in the archive, normalized (see [`components`]).
    pub(super) member: String,
    /// Relative to the destination.
    pub(super) path: String,
    pub(super) kind: Kind,
}

/// Which members are extracted, where, and whether each stays inside the destination.
pub(super) fn landings(
    members: &[Member],
    strip: usize,
    include: Option<&[String]>,
) -> Result<Vec<Landing>, String> {
    if let Some(include) = include {
        // A directory counts as a member when something lies under it: zip archives (and some
        // tar archives) hold no entries for their directories.
        for wanted in include {
            let w = components(wanted);
            let under = |name: &str| {
                let parts = components(name);
                !w.is_empty() && parts.len() >= w.len() && parts[..w.len()] == w[..]
            };
            if !members.iter().any(|m| under(&m.name)) {
                return Err(format!("the archive has no member {wanted:?}"));
            }
        }
    }
    let included = |name: &str| {
        include.is_none_or(|inc| {
            let parts = components(name);
            inc.iter().any(|w| {
                let w = components(w);
                parts.len() >= w.len() && parts[..w.len()] == w[..]
            })
        })
    };
    let mut out: Vec<Landing> = Vec::new();
    for member in members.iter().filter(|m| included(&m.name)) {
        if member.name.starts_with('/') {
            return Err(format!("member {:?} has an absolute name", member.name));
        }
        let all = components(&member.name);
        if all.contains(&"..") {
            return Err(format!("member {:?} climbs out with ..", member.name));
        }
        if all.len() <= strip {
            continue;
        }
        let parts = &all[strip..];
        let path = parts.join("/");
        if let Some(link) = out
            .iter()
            .find(|l| matches!(l.kind, Kind::Symlink(_)) && path.starts_with(&format!("{}/", l.path)))
        {
            return Err(format!("member {:?} lies under the symbolic link {:?}", member.name, link.path));
        }
        let kind = match &member.kind {
            Kind::Symlink(target) => {
                if target.starts_with('/') {
                    return Err(format!(
                        "symbolic link {:?} points to the absolute path {target:?}",
                        member.name
                    ));
                }
                let mut depth = parts.len() as i64 - 1;
                for c in components(target) {
                    depth += if c == ".." { -1 } else { 1 };
                    if depth < 0 {
                        return Err(format!(
                            "symbolic link {:?} points outside the destination ({target:?})",
                            member.name
                        ));
                    }
                }
                member.kind.clone()
            }
            Kind::Hardlink(target) => {
                let t = components(target);
                if target.starts_with('/') || t.contains(&"..") || t.len() <= strip {
                    return Err(format!(
                        "hard link {:?} points outside the destination ({target:?})",
                        member.name
                    ));
                }
                Kind::Hardlink(t[strip..].join("/"))
            }
            other => other.clone(),
        };
        out.push(Landing { member: all.join("/"), path, kind });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, kind: Kind) -> Member {
        Member { name: name.into(), kind }
    }

    #[test]
    fn members_escaping_the_destination_are_refused() {
        let refused = |m: Member| landings(&[m], 0, None).unwrap_err();
        assert_eq!(refused(member("../evil", Kind::File)), "member \"../evil\" climbs out with ..");
        assert_eq!(refused(member("a/../../evil", Kind::File)), "member \"a/../../evil\" climbs out with ..");
        assert_eq!(refused(member("/etc/passwd", Kind::File)), "member \"/etc/passwd\" has an absolute name");
        assert_eq!(
            refused(member("a/link", Kind::Symlink("../../etc".into()))),
            "symbolic link \"a/link\" points outside the destination (\"../../etc\")"
        );
        assert!(refused(member("link", Kind::Symlink("/etc".into()))).contains("absolute path"));
        let through = landings(&[member("l", Kind::Symlink("d".into())), member("l/x", Kind::File)], 0, None);
        assert_eq!(through.unwrap_err(), "member \"l/x\" lies under the symbolic link \"l\"");
        assert!(landings(&[member("a/b/link", Kind::Symlink("../c".into()))], 0, None).is_ok());
    }

    #[test]
    fn strip_and_include_pick_and_place_members() {
        let members = [
            member("pkg-1/", Kind::Dir),
            member("pkg-1/bin/", Kind::Dir),
            member("pkg-1/bin/tool", Kind::File),
            member("./pkg-1/README", Kind::File),
        ];
        let placed = landings(&members, 1, None).unwrap();
        assert_eq!(placed.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["bin", "bin/tool", "README"]);
        assert_eq!(placed[2].member, "pkg-1/README");
        let include = ["pkg-1/bin".to_owned()];
        let placed = landings(&members, 1, Some(&include)).unwrap();
        assert_eq!(placed.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["bin", "bin/tool"]);
        let implicit = [member("pkg-1/bin/tool", Kind::File), member("pkg-1/README", Kind::File)];
        let placed = landings(&implicit, 1, Some(&include)).unwrap();
        assert_eq!(
            placed.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
            ["bin/tool"],
            "a directory without its own entry"
        );
        let missing = ["pkg-1/nope".to_owned()];
        assert_eq!(
            landings(&members, 0, Some(&missing)).unwrap_err(),
            "the archive has no member \"pkg-1/nope\""
        );
    }
}
