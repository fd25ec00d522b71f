//! What a host prints is hostile input. The helpers every parser of a host's answers shares.
//!
//! Any managed host may be compromised, so its answers (listings, stats, facts, `systemctl
//! show`, package queries, kubeadm's output) are read as an attacker's: parsers never panic
//! (no slicing inside a UTF-8 character, no unwrap, no indexing past a length the host gave),
//! never trust a path, a name or a size, and refuse what does not fit. A refusal is an
//! [`OutputError`]: which host, what it was answering, the offending entry and why, as data.
//! The entry is shown [`printable`] and cut short: a hostile answer can neither rewrite the
//! operator's terminal with escape sequences nor flood it. A fact that does not parse is kept
//! as a [`FactError`] (see `crate::facts`).
//!
//! ```text
//!   parser (knows the text)          caller (knows the host and the question)
//!   Err(Malformed { entry, why }) ──► OutputError { host, what, entry, why } ──► ModuleError::Output
//! ```

use std::fmt;

/// At most this many characters of a host's text are shown in a message.
pub const SHOWN_CHARS: usize = 120;

/// `text` as a message can show it: control characters (newlines, escapes, bidirectional
/// overrides and every other non-printing character) are escaped as `\n`, `\u{1b}`, ...,
/// backslashes doubled, and anything past [`SHOWN_CHARS`] characters cut off with `...`.
pub fn printable(text: &str) -> String {
    printable_bytes(text.as_bytes())
}

/// [`printable`] for bytes that may not be UTF-8: bytes that are not are shown as `\xNN`.
pub fn printable_bytes(bytes: &[u8]) -> String {
    let mut shown = String::new();
    let mut count = 0;
    let mut room = |shown: &mut String| {
        count += 1;
        if count > SHOWN_CHARS {
            shown.push_str("...");
            false
        } else {
            true
        }
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if !room(&mut shown) {
                return shown;
            }
            match c {
                '\\' => shown.push_str("\\\\"),
                '\n' => shown.push_str("\\n"),
                '\t' => shown.push_str("\\t"),
                '\r' => shown.push_str("\\r"),
                c if is_invisible(c) => shown.extend(c.escape_unicode()),
                c => shown.push(c),
            }
        }
        for byte in chunk.invalid() {
            if !room(&mut shown) {
                return shown;
            }
            shown.push_str(&format!("\\x{byte:02x}"));
        }
    }
    shown
}

/// Characters that print nothing or move the cursor: control characters, and the format
/// characters that reorder or hide text (bidirectional overrides, zero-width joiners).
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// True when `text` holds a character [`printable`] would escape (a name with one is not
/// a name any honest tool prints).
pub fn has_invisible(text: &str) -> bool {
    text.chars().any(is_invisible)
}

/// A part of a host's answer that a parser refuses, before the caller says whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The offending record or field, [`printable`]; empty when the answer as a whole is
    /// wrong (missing, cut short).
    pub entry: String,
    /// Why it is refused, in the engine's words (never the host's).
    pub why: String,
}

impl Malformed {
    /// `entry` (the host's text, made printable here) refused because of `why`.
    pub fn new(entry: &str, why: impl Into<String>) -> Self {
        Self { entry: printable(entry), why: why.into() }
    }

    /// The answer as a whole refused because of `why`.
    pub fn whole(why: impl Into<String>) -> Self {
        Self { entry: String::new(), why: why.into() }
    }

    /// The refusal, said of `host`'s answer to `what` ("the listing of /etc/pki").
    pub fn on(self, host: &str, what: impl Into<String>) -> OutputError {
        OutputError { host: host.to_owned(), what: what.into(), entry: self.entry, why: self.why }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)?;
        if !self.entry.is_empty() {
            write!(f, ": \"{}\"", self.entry)?;
        }
        Ok(())
    }
}

/// A host's answer that the engine refuses to use: malformed, or naming something outside
/// what was asked. Says which host, answering what, the offending entry and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} from {host} is refused: {}", Malformed { entry: self.entry.clone(), why: self.why.clone() })]
pub struct OutputError {
    /// The host that printed it (its inventory name, or "controller").
    pub host: String,
    /// What it was answering: "the listing of /etc/kubernetes/pki", "`systemctl show etcd`".
    pub what: String,
    /// The offending record or field, [`printable`]; empty for the answer as a whole.
    pub entry: String,
    /// Why it is refused, in the engine's words.
    pub why: String,
}

/// A fact the host reported that did not parse as what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fact {path:?} of {host} is not {expected}: the host reported \"{reported}\"")]
pub struct FactError {
    /// The host whose fact it is.
    pub host: String,
    /// The fact's dotted path (`interfaces.host0.ipv4.0`).
    pub path: String,
    /// What it should have been.
    pub expected: FactKind,
    /// What the host reported, [`printable`] and cut short.
    pub reported: String,
}

/// What a fact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    /// An RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
    Hostname,
    Ipv4Address,
    Ipv6Address,
    /// A link-layer address: colon-separated hex octets (a tunnel's may be an IP address).
    LinkAddress,
    /// A network interface name as Linux allows it (1 to 15 bytes, no `/`, `:` or space).
    InterfaceName,
    /// A whole number, 0 or more.
    Number,
    /// `yes` or `no`.
    YesNo,
    /// An os-release word (`debian`, `12`, `bookworm`).
    OsWord,
    /// One line of printable text.
    Text,
    /// iproute2's JSON output.
    IpJson,
}

impl fmt::Display for FactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FactKind::Hostname => "a host name (RFC 1123)",
            FactKind::Ipv4Address => "an IPv4 address",
            FactKind::Ipv6Address => "an IPv6 address",
            FactKind::LinkAddress => "a link-layer address",
            FactKind::InterfaceName => "a network interface name",
            FactKind::Number => "a whole number",
            FactKind::YesNo => "yes or no",
            FactKind::OsWord => "an os-release word",
            FactKind::Text => "one line of printable text",
            FactKind::IpJson => "iproute2's JSON output",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_a_terminal_would_obey() {
        assert_eq!(printable("a\nb\tc\\d"), "a\\nb\\tc\\\\d");
        assert_eq!(printable("\u{1b}]0;pwned\u{7}"), "\\u{1b}]0;pwned\\u{7}");
        assert_eq!(printable("abc\u{202e}txt.exe"), "abc\\u{202e}txt.exe");
        assert_eq!(printable("é ok"), "é ok");
        assert_eq!(printable(&"x".repeat(500)), format!("{}...", "x".repeat(SHOWN_CHARS)));
        assert_eq!(printable_bytes(b"bad\xffname\\"), "bad\\xffname\\\\");
        assert!(has_invisible("a\u{0}b") && has_invisible("\u{200b}") && !has_invisible("a b-é"));
    }

    #[test]
    fn an_output_error_names_the_host_the_question_and_the_entry() {
        let error = Malformed::new("/pki/../x\n", "it leaves /pki").on("etcd0", "the listing of /pki");
        assert_eq!(
            error.to_string(),
            r#"the listing of /pki from etcd0 is refused: it leaves /pki: "/pki/../x\n""#
        );
        let whole = Malformed::whole("it ended early").on("m0", "`systemctl show etcd`");
        assert_eq!(whole.to_string(), "`systemctl show etcd` from m0 is refused: it ended early");
    }
}
