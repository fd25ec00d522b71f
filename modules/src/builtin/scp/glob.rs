//! `exclude` patterns: shell-like globs matched against paths relative to the copied directory.

/// Matches `text` against a glob: `*` and `?` within one segment, `**` across segments,
/// `[abc]`, `[a-z]`, `[!x]` classes; everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob(&p, &t)
}

fn glob(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') if p.get(1) == Some(&'*') => {
            let rest = &p[2..];
            // `**/` also matches no directory at all.
            (rest.first() == Some(&'/') && glob(&rest[1..], t)) || (0..=t.len()).any(|i| glob(rest, &t[i..]))
        }
        Some('*') => (0..=t.len()).take_while(|&i| i == 0 || t[i - 1] != '/').any(|i| glob(&p[1..], &t[i..])),
        Some('?') => t.first().is_some_and(|&c| c != '/') && glob(&p[1..], &t[1..]),
        Some('[') => match class(&p[1..]) {
            Some((matches, len)) => {
                t.first().is_some_and(|&c| c != '/' && matches(c)) && glob(&p[1 + len..], &t[1..])
            }
            None => t.first() == Some(&'[') && glob(&p[1..], &t[1..]),
        },
        Some(c) => t.first() == Some(c) && glob(&p[1..], &t[1..]),
    }
}

/// Parses a class after its `[`: a predicate and how many pattern chars it used (through `]`).
fn class(p: &[char]) -> Option<(impl Fn(char) -> bool, usize)> {
    let negated = matches!(p.first(), Some('!' | '^'));
    let start = usize::from(negated);
    // A `]` right after `[` or `[!` is a member, not the end.
    let end = start + 1 + p.get(start + 1..)?.iter().position(|&c| c == ']')?;
    let members: Vec<char> = p[start..end].to_vec();
    let matches = move |c: char| {
        let mut i = 0;
        let mut hit = false;
        while i < members.len() {
            if i + 2 < members.len() && members[i + 1] == '-' {
                hit |= (members[i]..=members[i + 2]).contains(&c);
                i += 3;
            } else {
                hit |= members[i] == c;
                i += 1;
            }
        }
        hit != negated
    };
    Some((matches, end + 1))
}

/// Whether the file at `rel` (relative to the copied directory) is excluded by `patterns`.
/// A pattern without `/` matches any segment (the file's name or a directory's); one with
/// `/` matches the relative path of the file or of a directory above it; a trailing `/`
/// matches directories only.
pub(super) fn excluded(patterns: &[String], rel: &str) -> bool {
    let segments: Vec<&str> = rel.split('/').collect();
    patterns.iter().any(|pattern| {
        let dirs_only = pattern.ends_with('/');
        let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
        let candidates = if dirs_only { segments.len() - 1 } else { segments.len() };
        if pattern.contains('/') {
            (1..=candidates).any(|n| glob_match(pattern, &segments[..n].join("/")))
        } else {
            segments[..candidates].iter().any(|s| glob_match(pattern, s))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match("*.key", "apiserver.key"));
        assert!(!glob_match("*.key", "etcd/ca.key"));
        assert!(glob_match("**/*.key", "etcd/ca.key"));
        assert!(glob_match("**/*.key", "ca.key"));
        assert!(glob_match("etcd/**", "etcd/a/b"));
        assert!(glob_match("api?erver.crt", "apiserver.crt"));
        assert!(glob_match("[ab]*.crt", "b.crt") && !glob_match("[!ab]*.crt", "b.crt"));
        assert!(glob_match("[a-c].crt", "b.crt") && !glob_match("[a-c].crt", "d.crt"));
        assert!(glob_match("[]x]", "]") && glob_match("[]x", "[]x") && glob_match("a[", "a["));
        assert!(!glob_match("a?b", "a/b"));
    }

    #[test]
    fn excludes_match_names_anywhere_and_paths_from_the_root() {
        let ex = |patterns: &[&str], rel: &str| {
            excluded(&patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>(), rel)
        };
        assert!(ex(&["apiserver.crt", "apiserver.key"], "apiserver.key"));
        assert!(!ex(&["apiserver.crt", "apiserver.key"], "apiserver-kubelet-client.key"));
        assert!(ex(&["*.key"], "etcd/ca.key"));
        assert!(ex(&["etcd"], "etcd/ca.key"), "a directory name leaves out its subtree");
        assert!(ex(&["etcd/"], "etcd/ca.key") && !ex(&["etcd/"], "etcd"), "trailing / is directories only");
        assert!(ex(&["etcd/ca.*"], "etcd/ca.key") && !ex(&["etcd/ca.*"], "ca.key"));
        assert!(ex(&["/ca.key"], "ca.key"));
    }
}
