//! Reading several small files of one host in one round trip.

use contract::error::ModuleError;
use contract::host::{Exec, Host};
use contract::remote::{parse_mode, run_checked};
use contract::shell::quote;
use contract::untrusted::Malformed;

/// One file as read: its permission bits and content; `None` when it is not there.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Read {
    pub(crate) mode: u32,
    pub(crate) content: Vec<u8>,
}

impl std::fmt::Debug for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Content may be a private key.
        write!(f, "Read {{ mode: {:04o}, {} bytes }}", self.mode, self.content.len())
    }
}

/// What [`read_files`] found.
#[derive(Debug)]
pub(crate) struct Found {
    /// One per path asked for, in order.
    pub(crate) files: Vec<Option<Read>>,
    /// Whether the directory asked about exists.
    pub(crate) dir_exists: bool,
}

/// Reads `paths` (regular files; anything else counts as absent) and checks whether `dir`
/// is a directory, in one command. The content travels on stdout, never in messages.
pub(crate) async fn read_files(host: &dyn Host, paths: &[&str], dir: &str) -> Result<Found, ModuleError> {
    let script = format!(
        "set -e; for p in {}; do if [ -f \"$p\" ]; then echo \"$(stat -c %a -- \"$p\") $(wc -c < \"$p\")\"; \
         cat -- \"$p\"; else echo -; fi; done; if [ -d {} ]; then echo d; else echo -; fi",
        paths.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" "),
        quote(dir),
    );
    let out = run_checked(host, Exec::new(script)).await?;
    parse(&out.stdout, paths.len())
        .map_err(|m| m.on(host.name(), format!("the read of {}", paths.join(", "))).into())
}

/// Reads the answer: per file a `MODE SIZE` line and exactly SIZE bytes, or `-`; then `d` or
/// `-`. The host may be hostile: a mode must be 1 to 4 octal digits, a size digits that the
/// answer holds; nothing is indexed past what arrived.
pub(crate) fn parse(mut rest: &[u8], count: usize) -> Result<Found, Malformed> {
    let line = |rest: &mut &[u8]| -> Result<String, Malformed> {
        let end =
            rest.iter().position(|b| *b == b'\n').ok_or_else(|| Malformed::whole("output ended early"))?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        *rest = &rest[end + 1..];
        Ok(text)
    };
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        let header = line(&mut rest)?;
        if header == "-" {
            files.push(None);
            continue;
        }
        let bad = || Malformed::new(&header, "not a file's mode and size");
        let (mode, size) = header.split_once(' ').ok_or_else(bad)?;
        let mode = parse_mode(mode).ok_or_else(bad)?;
        let size: usize =
            size.parse().ok().filter(|_| size.bytes().all(|b| b.is_ascii_digit())).ok_or_else(bad)?;
        if rest.len() < size {
            return Err(Malformed::whole("output ended early"));
        }
        files.push(Some(Read { mode, content: rest[..size].to_vec() }));
        rest = &rest[size..];
    }
    let dir_exists = match line(&mut rest)?.as_str() {
        "d" => true,
        "-" => false,
        other => return Err(Malformed::new(other, "not `d` or `-`")),
    };
    Ok(Found { files, dir_exists })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_modes_and_absent_files() {
        let found = parse(b"644 3\nab\n-\n600 0\nd\n", 3).unwrap();
        assert_eq!(found.files[0], Some(Read { mode: 0o644, content: b"ab\n".to_vec() }));
        assert_eq!(found.files[1], None);
        assert_eq!(found.files[2], Some(Read { mode: 0o600, content: Vec::new() }));
        assert!(found.dir_exists);
        assert!(parse(b"644 10\nab\n", 1).is_err());
        assert!(!parse(b"-\n-\n", 1).unwrap().dir_exists);
    }

    /// What a hostile host may print: refused, never a panic, never a read past the answer.
    #[test]
    fn refuses_answers_the_script_never_prints() {
        let refused = |raw: &[u8]| parse(raw, 1).unwrap_err().to_string();
        assert_eq!(refused(b"17777777 1\nx\n-\n"), r#"not a file's mode and size: "17777777 1""#);
        assert_eq!(refused(b"644 +1\nx\n-\n"), r#"not a file's mode and size: "644 +1""#);
        assert_eq!(
            refused(b"644 99999999999999999999999\nx\n"),
            r#"not a file's mode and size: "644 99999999999999999999999""#
        );
        assert_eq!(refused(b"644 18446744073709551615\nx\n"), "output ended early");
        assert_eq!(refused(b"644 1\nx\x1b[2J\n"), r#"not `d` or `-`: "\u{1b}[2J""#);
    }
}
