//! An archive's listing, as the host's `tar` or `unzip` prints it, read as hostile input.

/// What a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
}

/// One member of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub(super) name: String,
    pub(super) kind: Kind,
}

/// Reads a C-quoted string (`"a\"b\n"`) at the start of `text`; the string and what follows.
pub(super) fn c_unquote(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix('"')?;
    let mut out: Vec<u8> = Vec::new();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((String::from_utf8(out).ok()?, &rest[i + 1..])),
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                i += 2;
                out.push(match next {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'a' => 7,
                    b'b' => 8,
                    b'f' => 12,
                    b'v' => 11,
                    b'0'..=b'7' => {
                        let mut value = u32::from(next - b'0');
                        for _ in 0..2 {
                            match bytes.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    value = value * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        u8::try_from(value).ok()?
                    }
                    other => other,
                });
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    None
}

/// Splits `count` blank-separated fields off the start of `line`; the fields and the rest
/// (starting with the blank after the last field).
fn fields(line: &str, count: usize) -> Option<(Vec<&str>, &str)> {
    let mut rest = line;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ')?;
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    Some((out, rest))
}

/// `tar -tv --quoting-style=c` lines: `MODE OWNER/GROUP SIZE DATE TIME "NAME"`, then
/// ` -> "TARGET"` (symbolic link) or ` link to "TARGET"` (hard link).
pub(super) fn parse_tar(text: &str) -> Result<Vec<Member>, String> {
    let mut members = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || format!("unexpected listing line {line:?}");
        let (fields, rest) = fields(line, 5).ok_or_else(bad)?;
        let (name, after) = c_unquote(rest.trim_start()).ok_or_else(bad)?;
        let kind = match fields[0].chars().next() {
            Some('-') => Kind::File,
            Some('d') => Kind::Dir,
            Some('l') => {
                Kind::Symlink(c_unquote(after.strip_prefix(" -> ").ok_or_else(bad)?).ok_or_else(bad)?.0)
            }
            Some('h') => {
                Kind::Hardlink(c_unquote(after.strip_prefix(" link to ").ok_or_else(bad)?).ok_or_else(bad)?.0)
            }
            _ => {
                return Err(format!(
                    "member {name:?} is not a file, directory or link (devices and fifos are refused)"
                ));
            }
        };
        members.push(Member { name, kind });
    }
    Ok(members)
}

/// `unzip -Z -s` (zipinfo's short format): a header of two lines (`Archive:  PATH`, then
/// `Zip file size: N bytes, number of entries: COUNT`), one line per member
/// (`MODE VERSION OS SIZE TYPE METHOD DATE TIME NAME`), and a summary line (`COUNT files, ...`).
/// A symbolic link's target is not in the listing: its member comes back as
/// `Kind::Symlink("")`, for [`symlink_targets`] to fill in.
///
/// zipinfo shows a control character in a name as `^` and a letter (`a^Jb`), so a name
/// holding `^` cannot be told from another: such a member is refused.
pub(super) fn parse_zip(text: &str) -> Result<Vec<Member>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let bad = |line: &str| format!("unexpected listing line {line:?}");
    let (first, second, rest) = match &lines[..] {
        [first, second, rest @ ..] => (*first, *second, rest),
        _ => return Err("the listing has no header".to_owned()),
    };
    if !first.starts_with("Archive:") {
        return Err(bad(first));
    }
    let count: usize = second
        .strip_prefix("Zip file size: ")
        .and_then(|r| r.split_once(" bytes, number of entries: "))
        .and_then(|(_, n)| n.trim().parse().ok())
        .ok_or_else(|| bad(second))?;
    let body = match rest.split_last() {
        Some((_, body)) if count > 0 => body,
        _ if count == 0 && rest.len() <= 1 => return Ok(Vec::new()),
        _ => return Err(bad(rest.first().copied().unwrap_or(second))),
    };
    let summary = rest[rest.len() - 1];
    let summary_count = summary.split_once(' ').and_then(|(n, _)| n.parse::<usize>().ok());
    if body.len() != count || summary_count != Some(count) {
        return Err(format!("the listing has {} member lines, its header says {count}", body.len()));
    }
    let mut members = Vec::with_capacity(count);
    for line in body {
        let (fields, rest) = fields(line, 8).ok_or_else(|| bad(line))?;
        let name = rest.strip_prefix(' ').filter(|n| !n.is_empty()).ok_or_else(|| bad(line))?;
        if name.contains('^') {
            return Err(format!(
                "member {name:?} holds a ^, which unzip also shows for control characters: its name is not known"
            ));
        }
        let kind = match fields[0].chars().next() {
            Some('d') => Kind::Dir,
            Some('l') => Kind::Symlink(String::new()),
            Some('-' | '?') if name.ends_with('/') => Kind::Dir,
            Some('-' | '?') => Kind::File,
            _ => {
                return Err(format!(
                    "member {name:?} is not a file, directory or link (devices and fifos are refused)"
                ));
            }
        };
        members.push(Member { name: name.to_owned(), kind });
    }
    Ok(members)
}

/// `name` as a pattern unzip matches only against itself: its wildcard characters (`*`, `?`,
/// `[`, `]`) and `\` escaped with `\`, and a leading `-` too (unzip would take it for an option).
pub(super) fn zip_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    for (i, c) in name.chars().enumerate() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']') || (i == 0 && c == '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Fills in the targets of the symbolic links of `members` (in order) from `out`: what
/// `unzip -p` printed for each, each followed by a NUL.
pub(super) fn symlink_targets(members: &mut [Member], out: &[u8]) -> Result<(), String> {
    let mut targets = out.split(|&b| b == 0);
    for member in members.iter_mut() {
        if let Kind::Symlink(target) = &mut member.kind {
            let raw = targets
                .next()
                .ok_or_else(|| format!("no target was read for the symbolic link {:?}", member.name))?;
            let text = std::str::from_utf8(raw)
                .ok()
                .filter(|t| !t.is_empty() && !t.contains('\n'))
                .ok_or_else(|| format!("the symbolic link {:?} has no readable target", member.name))?;
            text.clone_into(target);
        }
    }
    match (targets.next(), targets.next()) {
        (Some([]), None) => Ok(()),
        _ => Err("more symbolic link targets were read than the listing has links".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, kind: Kind) -> Member {
        Member { name: name.into(), kind }
    }

    #[test]
    fn c_quoted_names_are_read_exactly() {
        assert_eq!(c_unquote(r#""a b\"c\\d\n\303\251" -> x"#), Some(("a b\"c\\d\né".into(), " -> x")));
        assert_eq!(c_unquote(r#""unterminated"#), None);
        assert_eq!(c_unquote("plain"), None);
    }

    #[test]
    fn the_tar_listing_is_parsed_as_hostile_input() {
        let text = "drwxr-xr-x 0/0               0 2024-05-01 10:00 \"etcd-v3/\"\n\
                    -rwxr-xr-x 0/0        22000000 2024-05-01 10:00 \"etcd-v3/etcd\"\n\
                    lrwxrwxrwx 0/0               0 2024-05-01 10:00 \"etcd-v3/a -> b\" -> \"etcd\"\n\
                    hrwxr-xr-x 0/0               0 2024-05-01 10:00 \"etcd-v3/e2\" link to \"etcd-v3/etcd\"\n";
        assert_eq!(
            parse_tar(text).unwrap(),
            [
                member("etcd-v3/", Kind::Dir),
                member("etcd-v3/etcd", Kind::File),
                member("etcd-v3/a -> b", Kind::Symlink("etcd".into())),
                member("etcd-v3/e2", Kind::Hardlink("etcd-v3/etcd".into())),
            ]
        );
        assert!(parse_tar("crw-r--r-- 0/0 1,3 2024-05-01 10:00 \"dev/null\"\n").is_err());
        assert!(parse_tar("garbage\n").is_err());
    }

    /// What `unzip -Z -s` printed for a real archive (zip 3.0 and Python's zipfile).
    #[test]
    fn the_zip_listing_is_parsed_as_hostile_input() {
        let text = "Archive:  /tmp/a.zip\n\
                    Zip file size: 1073 bytes, number of entries: 5\n\
                    drwxr-xr-x  3.0 unx        0 bx stor 26-Dec-07 02:53 pkg-1/\n\
                    lrwxrwxrwx  3.0 unx        4 bx stor 26-Dec-07 02:53 pkg-1/abs\n\
                    -rw-r--r--  3.0 unx        6 tx stor 26-Dec-07 02:53 pkg-1/RE AD[1]*\n\
                    ?rw-------  2.0 unx        2 b- stor 26-Dec-07 02:53  lead\n\
                    -rw-a--     2.0 fat        0 b- stor 26-Dec-07 02:53 dir/\n\
                    5 files, 23 bytes uncompressed, 23 bytes compressed:  0.0%\n";
        assert_eq!(
            parse_zip(text).unwrap(),
            [
                member("pkg-1/", Kind::Dir),
                member("pkg-1/abs", Kind::Symlink(String::new())),
                member("pkg-1/RE AD[1]*", Kind::File),
                member(" lead", Kind::File),
                member("dir/", Kind::Dir),
            ]
        );
        let one = |line: &str| {
            parse_zip(&format!(
                "Archive:  a\nZip file size: 1 bytes, number of entries: 1\n{line}\n1 file, x\n"
            ))
        };
        assert!(
            one("?rw-------  2.0 unx  2 b- stor 26-Dec-07 02:53 a^Jb").unwrap_err().contains("holds a ^")
        );
        assert!(one("crw-------  2.0 unx  2 b- stor 26-Dec-07 02:53 dev").unwrap_err().contains("devices"));
        assert!(one("garbage").is_err());
        assert!(parse_zip("Archive:  a\nZip file size: 1 bytes, number of entries: 2\n").is_err());
        let short = "Archive:  a\nZip file size: 1 bytes, number of entries: 2\n\
                     -rw-r--r--  3.0 unx 6 tx stor 26-Dec-07 02:53 a\n1 file, x\n";
        assert!(parse_zip(short).unwrap_err().contains("its header says 2"));
        assert_eq!(
            parse_zip("Archive:  a\nZip file size: 22 bytes, number of entries: 0\nEmpty zipfile.\n"),
            Ok(vec![])
        );
    }

    #[test]
    fn zip_patterns_match_only_the_name_itself() {
        assert_eq!(zip_pattern("a/RE AD[1]*?"), r"a/RE AD\[1\]\*\?");
        assert_eq!(zip_pattern(r"-x\y"), r"\-x\\y");
        assert_eq!(zip_pattern("a-b"), "a-b");
    }

    #[test]
    fn symlink_targets_are_filled_in_order_and_counted() {
        let mut members = vec![
            member("a", Kind::Symlink(String::new())),
            member("f", Kind::File),
            member("b", Kind::Symlink(String::new())),
        ];
        symlink_targets(&mut members, b"x/y\0../z\0").unwrap();
        assert_eq!(members[0].kind, Kind::Symlink("x/y".into()));
        assert_eq!(members[2].kind, Kind::Symlink("../z".into()));
        let mut again = vec![member("a", Kind::Symlink(String::new()))];
        assert!(symlink_targets(&mut again, b"x\0y\0").is_err());
        assert!(symlink_targets(&mut again, b"").is_err());
        assert!(symlink_targets(&mut again, b"\xff\0").is_err());
    }
}
