//! Listings: what is on each side, in one round trip per side.
//!
//! The source side answers [`source_command`]: what each root is, then every regular file
//! under the roots with its mode, size, owner, group and SHA-256. The destination side answers
//! [`dest_command`] for the directories the copy needs and the files it would replace, whose
//! paths travel on stdin ([`dest_stdin`]). Both answers parse with [`parse_listing`].

use std::collections::{BTreeMap, BTreeSet};

use contract::shell::{join, quote};

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

/// Given file paths as arguments, prints `F\tmode\tsize\towner\tgroup\tpath\0` for each, then
/// `sha256  path\0` for each (GNU stat and sha256sum; `-z` turns off name escaping).
const DESCRIBE: &str = r#"stat --printf "F\t%a\t%s\t%U\t%G\t%n\0" -- "$@" && sha256sum -z -- "$@""#;

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

/// Parses a listing. `place` follows a refused name in the message: where it is, when its
/// path does not say (" on the controller").
pub(super) fn parse_listing(bytes: &[u8], place: &str) -> Result<Listing, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| not_utf8(bytes, e.valid_up_to(), place))?;
    let mut listing = Listing::default();
    let mut described: BTreeMap<String, (u32, u64, String, String)> = BTreeMap::new();
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    for record in text.split('\0').filter(|r| !r.is_empty()) {
        let kind = match record.get(..2) {
            Some("D\t") => Some(Kind::Dir),
            Some("R\t") => Some(Kind::File),
            Some("O\t") => Some(Kind::Other),
            Some("M\t") => Some(Kind::Missing),
            _ => None,
        };
        if let Some(kind) = kind {
            listing.kinds.insert(record[2..].to_owned(), kind);
        } else if let Some(rest) = record.strip_prefix("F\t") {
            let fields: Vec<&str> = rest.splitn(5, '\t').collect();
            let [mode, size, owner, group, path] = fields[..] else {
                return Err(format!("unexpected stat record {record:?}"));
            };
            let mode = u32::from_str_radix(mode, 8).map_err(|e| format!("mode {mode:?}: {e}"))?;
            let size = size.parse().map_err(|e| format!("size {size:?}: {e}"))?;
            described.insert(path.to_owned(), (mode, size, owner.to_owned(), group.to_owned()));
        } else if record.len() > 66 && record.as_bytes()[..64].iter().all(u8::is_ascii_hexdigit) {
            hashes.insert(record[66..].to_owned(), record[..64].to_owned());
        } else {
            return Err(format!("unexpected record {record:?}"));
        }
    }
    for (path, (mode, size, owner, group)) in described {
        let sha256 = hashes
            .remove(&path)
            .ok_or_else(|| format!("no checksum for {path} (did it change while it was listed?)"))?;
        listing.files.insert(path, Entry { mode, size, owner, group, sha256 });
    }
    Ok(listing)
}

/// The error for a listing whose record around byte `bad` is not UTF-8: a file name that could
/// only be copied mangled (read back under a lossy name, it is not there), so it is refused,
/// named with its bytes escaped.
fn not_utf8(bytes: &[u8], bad: usize, place: &str) -> String {
    let start = bytes[..bad].iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
    let end = bytes[bad..].iter().position(|&b| b == 0).map_or(bytes.len(), |i| bad + i);
    let record = &bytes[start..end];
    // `F\tmode\tsize\towner\tgroup\tpath`, or `K\tpath` for the other kinds.
    let fields = if record.starts_with(b"F\t") { 6 } else { 2 };
    let name = record.splitn(fields, |&b| b == b'\t').last().unwrap_or(record);
    format!("file name {}{place} is not UTF-8; engine copies only UTF-8 names", name.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listings() {
        let sha = "a".repeat(64);
        let raw = format!(
            "D\t/pki\0M\t/gone\0O\t/dev/null\0F\t600\t3\troot\tadm\t/pki/a b\0F\t4755\t0\tx\ty\t/pki/s\0\
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
        assert!(parse_listing(b"F\t600\t3\troot\troot\t/x\0", "").unwrap_err().contains("no checksum"));
        assert!(parse_listing(b"garbage\0", "").is_err());
        assert_eq!(parse_listing(b"", "").unwrap(), Listing::default());
    }

    /// A non-UTF-8 name used to be read back under its lossy spelling (`cat` of a path that is
    /// not there): it is refused, named with its bytes.
    #[test]
    fn refuses_names_that_are_not_utf8() {
        let error = parse_listing(b"D\t/d\0F\t644\t1\troot\troot\t/d/bad\xffname\0", "").unwrap_err();
        assert_eq!(error, r"file name /d/bad\xffname is not UTF-8; engine copies only UTF-8 names");
        let error = parse_listing(b"M\t/gone\xfe\0", "").unwrap_err();
        assert!(error.contains(r"/gone\xfe is not UTF-8"), "{error}");
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
