//! Listings: what is on each side, in one round trip per side.
//!
//! The source side answers [`source_command`]: what each root is, then every regular file
//! under the roots with its mode, size, owner, group and SHA-256. The destination side answers
//! [`dest_command`] for the directories the copy needs and the files it would replace, whose
//! paths travel on stdin ([`dest_stdin`]). Both answers parse with [`parse_listing`].

use std::collections::{BTreeMap, BTreeSet};

use contract::remote::is_account_name;
use contract::shell::{join, quote};
use contract::untrusted::{Malformed, printable_bytes};

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File,
    Other,
    Missing,
}

/// One regular file, as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) mode: u32,
    pub(super) size: u64,
    pub(super) owner: String,
    pub(super) group: String,
    pub(super) sha256: String,
}

/// The answer of one listing round trip.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Listing {
    /// What each asked-about root or directory is.
    pub(super) kinds: BTreeMap<String, Kind>,
    /// Every regular file found, by full path.
    pub(super) files: BTreeMap<String, Entry>,
}

impl Listing {
    /// The listing of roots passed through [`find_root`], named as the roots were written.
    pub(super) fn named_as_given(self) -> Self {
        let strip = |path: String| match path.strip_prefix("./") {
            Some(rest) => rest.to_owned(),
            None => path,
        };
        Listing {
            kinds: self.kinds.into_iter().map(|(path, kind)| (strip(path), kind)).collect(),
            files: self.files.into_iter().map(|(path, entry)| (strip(path), entry)).collect(),
        }
    }
}

/// `root` as [`source_command`] takes it. `find` reads an argument starting with `-` as part
/// of its expression, not as a root (`-delete` would run): a relative root (only the
/// controller's paths can be relative) is given as `./ROOT`, and [`Listing::named_as_given`]
/// names what was found as the root was written.
pub(super) fn find_root(root: &str) -> String {
    if root.starts_with('/') { root.to_owned() } else { format!("./{root}") }
}

/// Given file paths as arguments, prints `F\tRAW\tsize\towner\tgroup\tpath\0` for each (RAW:
/// the raw mode in hex, file type bits included), then `sha256  path\0` for each (GNU stat and
/// sha256sum; `-z` turns off name escaping).
const DESCRIBE: &str = r#"stat --printf "F\t%f\t%s\t%U\t%G\t%n\0" -- "$@" && sha256sum -z -- "$@""#;

/// The source listing: what each root is (`D`/`R`/`O`/`M` records), then every regular file
/// under the roots, described.
pub(super) fn source_command(roots: &[String]) -> String {
    format!(
        "set -- {roots}; \
         for s do if [ -d \"$s\" ]; then printf 'D\\t%s\\0' \"$s\"; \
         elif [ -f \"$s\" ]; then printf 'R\\t%s\\0' \"$s\"; \
         elif [ -e \"$s\" ] || [ -L \"$s\" ]; then printf 'O\\t%s\\0' \"$s\"; \
         else printf 'M\\t%s\\0' \"$s\"; fi; done; \
         n=$#; for s do if [ -d \"$s\" ] || [ -f \"$s\" ]; then set -- \"$@\" \"$s\"; fi; done; shift $n; \
         [ $# -eq 0 ] || find -H \"$@\" -type f -exec sh -c {describe} sh {{}} +",
        roots = join(roots),
        describe = quote(DESCRIBE),
    )
}

/// The destination listing. Reads `d:PATH` (a directory that must exist) and `f:PATH` (a file
/// to compare), NUL-separated, on stdin: paths never touch the command line, however many.
pub(super) fn dest_command() -> String {
    let script = r#"n=$#
for a do
  p=${a#??}
  case $a in
    d:*) if [ -d "$p" ]; then printf "D\t%s\0" "$p"; elif [ -e "$p" ] || [ -L "$p" ]; then printf "O\t%s\0" "$p"; fi ;;
    *) if [ -f "$p" ] && [ ! -L "$p" ]; then set -- "$@" "$p"; elif [ -e "$p" ] || [ -L "$p" ]; then printf "O\t%s\0" "$p"; fi ;;
  esac
done
shift $n
[ $# -eq 0 ] || { "#
        .to_owned()
        + DESCRIBE
        + "; }";
    format!("xargs -0 -r sh -c {} sh", quote(&script))
}

pub(super) fn dest_stdin(dirs: &BTreeSet<String>, files: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in dirs {
        out.extend_from_slice(format!("d:{d}\0").as_bytes());
    }
    for f in files {
        out.extend_from_slice(format!("f:{f}\0").as_bytes());
    }
    out
}

/// What a listing answers, as refusals name it: "the listing of /etc/kubernetes/pki".
pub(super) fn listing_of(paths: &str) -> String {
    format!("the listing of {paths}")
}

/// Why a listing is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ListingError {
    /// A file name that is not UTF-8 (an honest host may have one): it could only be copied
    /// mangled (read back under a lossy name, it is not there), so it is refused, named with
    /// its bytes escaped. `place` says where it is when its path does not.
    NotUtf8 { name: String, place: &'static str },
    /// A record the listing command never prints: the host is broken or hostile.
    Malformed(Malformed),
}

impl std::fmt::Display for ListingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListingError::NotUtf8 { name, place } => {
                write!(f, "file name {name}{place} is not UTF-8; engine copies only UTF-8 names")
            }
            ListingError::Malformed(malformed) => malformed.fmt(f),
        }
    }
}

/// The file type bits of a raw mode, and the type of a regular file (`S_IFMT`, `S_IFREG`).
const TYPE_BITS: u32 = 0o170_000;
const REGULAR_FILE: u32 = 0o100_000;

/// Parses a listing. Every field is checked (the host may be hostile): a record of any other
/// shape, a described file that is not a regular file, a mode, size, owner or checksum that
/// is not one, a path listed twice, is refused. Paths are checked against what was asked by
/// the caller (see [`super::transfer::pair_up`]). `place` follows a refused name in the
/// message: where it is, when its path does not say (" on the controller").
pub(super) fn parse_listing(bytes: &[u8], place: &'static str) -> Result<Listing, ListingError> {
    let text = std::str::from_utf8(bytes).map_err(|e| not_utf8(bytes, e.valid_up_to(), place))?;
    let malformed = |record: &str, why: &str| ListingError::Malformed(Malformed::new(record, why));
    let mut listing = Listing::default();
    let mut described: BTreeMap<&str, (u32, u64, &str, &str)> = BTreeMap::new();
    let mut hashes: BTreeMap<&str, String> = BTreeMap::new();
    for record in text.split('\0').filter(|r| !r.is_empty()) {
        let kind = match record.get(..2) {
            Some("D\t") => Some(Kind::Dir),
            Some("R\t") => Some(Kind::File),
            Some("O\t") => Some(Kind::Other),
            Some("M\t") => Some(Kind::Missing),
            _ => None,
        };
        if let Some(kind) = kind {
            let path = &record[2..];
            if path.is_empty() {
                return Err(malformed(record, "a record without its path"));
            }
            listing.kinds.insert(path.to_owned(), kind);
        } else if let Some(rest) = record.strip_prefix("F\t") {
            let fields: Vec<&str> = rest.splitn(5, '\t').collect();
            let [raw, size, owner, group, path] = fields[..] else {
                return Err(malformed(record, "a stat record without its five fields"));
            };
            let raw = (1..=8)
                .contains(&raw.len())
                .then(|| u32::from_str_radix(raw, 16).ok())
                .flatten()
                .filter(|_| raw.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| malformed(record, "a mode that is not one"))?;
            if raw & TYPE_BITS != REGULAR_FILE {
                return Err(malformed(record, "an entry that is not a regular file"));
            }
            let size = (1..=20)
                .contains(&size.len())
                .then(|| size.parse::<u64>().ok())
                .flatten()
                .filter(|_| size.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| malformed(record, "a size that is not one"))?;
            if !is_account_name(owner) || !is_account_name(group) {
                return Err(malformed(record, "an owner or group that is not a name"));
            }
            let file = (raw & 0o7777, size, owner, group);
            // The same root given twice lists its files twice, alike.
            if path.is_empty() || described.insert(path, file).is_some_and(|before| before != file) {
                return Err(malformed(record, "a path listed twice, differently, or none"));
            }
        } else if let (Some(hash), Some(b"  "), Some(path)) =
            (record.get(..64), record.as_bytes().get(64..66), record.get(66..))
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let hash = hash.to_ascii_lowercase();
            if path.is_empty() || hashes.insert(path, hash.clone()).is_some_and(|before| before != hash) {
                return Err(malformed(record, "a path listed twice, differently, or none"));
            }
        } else {
            return Err(malformed(record, "a record the listing command never prints"));
        }
    }
    for (path, (mode, size, owner, group)) in described {
        let sha256 = hashes.remove(path).ok_or_else(|| {
            malformed(path, "a file without its checksum (did it change while it was listed?)")
        })?;
        let entry = Entry { mode, size, owner: owner.to_owned(), group: group.to_owned(), sha256 };
        listing.files.insert(path.to_owned(), entry);
    }
    Ok(listing)
}

/// The error for a listing whose record around byte `bad` is not UTF-8.
fn not_utf8(bytes: &[u8], bad: usize, place: &'static str) -> ListingError {
    let start = bytes[..bad].iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
    let end = bytes[bad..].iter().position(|&b| b == 0).map_or(bytes.len(), |i| bad + i);
    let record = &bytes[start..end];
    // `F\tmode\tsize\towner\tgroup\tpath`, or `K\tpath` for the other kinds.
    let fields = if record.starts_with(b"F\t") { 6 } else { 2 };
    let name = record.splitn(fields, |&b| b == b'\t').last().unwrap_or(record);
    ListingError::NotUtf8 { name: printable_bytes(name), place }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listings() {
        let sha = "a".repeat(64);
        // Raw modes: 8180 is a regular file 0600, 89ed one 4755.
        let raw = format!(
            "D\t/pki\0M\t/gone\0O\t/dev/null\0F\t8180\t3\troot\tadm\t/pki/a b\0F\t89ed\t0\tx\ty\t/pki/s\0\
             {sha}  /pki/a b\0{sha}  /pki/s\0"
        );
        let l = parse_listing(raw.as_bytes(), "").unwrap();
        assert_eq!(l.kinds["/pki"], Kind::Dir);
        assert_eq!(l.kinds["/gone"], Kind::Missing);
        assert_eq!(l.kinds["/dev/null"], Kind::Other);
        assert_eq!(
            l.files["/pki/a b"],
            Entry { mode: 0o600, size: 3, owner: "root".into(), group: "adm".into(), sha256: sha.clone() }
        );
        assert_eq!(l.files["/pki/s"].mode, 0o4755);
        let error = parse_listing(b"F\t8180\t3\troot\troot\t/x\0", "").unwrap_err().to_string();
        assert_eq!(error, r#"a file without its checksum (did it change while it was listed?): "/x""#);
        assert!(parse_listing(b"garbage\0", "").is_err());
        assert_eq!(parse_listing(b"", "").unwrap(), Listing::default());
    }

    /// A non-UTF-8 name used to be read back under its lossy spelling (`cat` of a path that is
    /// not there): it is refused, named with its bytes.
    #[test]
    fn refuses_names_that_are_not_utf8() {
        let error = parse_listing(b"D\t/d\0F\t81a4\t1\troot\troot\t/d/bad\xffname\0", "").unwrap_err();
        assert_eq!(
            error.to_string(),
            r"file name /d/bad\xffname is not UTF-8; engine copies only UTF-8 names"
        );
        let error = parse_listing(b"M\t/gone\xfe\0", "").unwrap_err().to_string();
        assert!(error.contains(r"/gone\xfe is not UTF-8"), "{error}");
    }

    /// What a hostile host may print instead of a listing: each is refused with the offending
    /// record shown printable, never a panic (issue 15: a checksum line with a multi-byte
    /// character where the two spaces belong used to slice inside it).
    #[test]
    fn refuses_records_a_listing_never_holds() {
        let sha = "b".repeat(64);
        let refused = |raw: &[u8]| match parse_listing(raw, "") {
            Err(ListingError::Malformed(m)) => m.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(format!("{sha} é/pki/x\0").as_bytes()),
            format!(r#"a record the listing command never prints: "{sha} é/pki/x""#)
        );
        assert_eq!(
            refused(b"F\t2180\t0\troot\troot\t/pki/fifo\0"),
            r#"an entry that is not a regular file: "F\t2180\t0\troot\troot\t/pki/fifo""#
        );
        assert_eq!(
            refused(b"F\ta1ff\t0\troot\troot\t/pki/link\0"),
            r#"an entry that is not a regular file: "F\ta1ff\t0\troot\troot\t/pki/link""#
        );
        for bad in [
            &b"F\t+81a4\t1\troot\troot\t/p\0"[..],
            b"F\t81a4\t-1\troot\troot\t/p\0",
            b"F\t81a4\t99999999999999999999999\troot\troot\t/p\0",
            b"F\t81a4\t1\tro\x1b[2Jot\troot\t/p\0",
            b"F\t81a4\t1\t\troot\t/p\0",
            b"F\t81a4\t1\troot\0",
            b"F\t81a4\t1\troot\troot\t\0",
            b"D\t\0",
        ] {
            assert!(
                matches!(parse_listing(bad, ""), Err(ListingError::Malformed(_))),
                "{}",
                bad.escape_ascii()
            );
        }
        let twice = format!("F\t81a4\t1\troot\troot\t/p\0F\t81ed\t1\troot\troot\t/p\0{sha}  /p\0");
        assert!(refused(twice.as_bytes()).starts_with("a path listed twice"));
        let alike = format!("F\t81a4\t1\troot\troot\t/p\0F\t81a4\t1\troot\troot\t/p\0{sha}  /p\0{sha}  /p\0");
        assert_eq!(parse_listing(alike.as_bytes(), "").unwrap().files.len(), 1, "a root given twice");
    }

    #[test]
    fn commands_quote_every_path() {
        let cmd = source_command(&["/a b".into(), "/it's".into()]);
        assert!(cmd.starts_with("set -- '/a b' '/it'\\''s'; "), "{cmd}");
        assert!(dest_command().starts_with("xargs -0 -r sh -c '"));
        let stdin = dest_stdin(&["/d".into()].into_iter().collect(), &["/d/f"]);
        assert_eq!(stdin, b"d:/d\0f:/d/f\0");
    }
}
