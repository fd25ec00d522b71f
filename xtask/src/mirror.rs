//! Finds the Debian mirror this machine already uses, from its own apt sources,
//! so no mirror host name is ever written into the code.

use std::fs;
use std::path::Path;

use anyhow::{Result, bail};

const SOURCES_DIR: &str = "/etc/apt/sources.list.d";

/// The first mirror URI that serves `suite`, from `debian.sources`, then
/// `/etc/apt/sources.list`, then the other files in `sources.list.d`.
pub(crate) fn find(suite: &str) -> Result<String> {
    let mut files =
        vec![Path::new(SOURCES_DIR).join("debian.sources"), Path::new("/etc/apt/sources.list").to_path_buf()];
    if let Ok(dir) = fs::read_dir(SOURCES_DIR) {
        let mut rest: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        rest.sort();
        files.extend(rest);
    }
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let name = file.to_string_lossy();
        let found = if name.ends_with(".sources") {
            from_deb822(&text, suite)
        } else if name.ends_with(".list") {
            from_one_line(&text, suite)
        } else {
            None
        };
        if let Some(uri) = found {
            return Ok(uri);
        }
    }
    bail!("no apt source for suite `{suite}` in {files:?}; cannot pick a Debian mirror")
}

/// deb822 stanzas (`Types:`, `URIs:`, `Suites:`); the first enabled `deb` stanza for `suite`.
pub(crate) fn from_deb822(text: &str, suite: &str) -> Option<String> {
    let stanzas = text.split("\n\n").flat_map(|s| s.split("\r\n\r\n"));
    for stanza in stanzas {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let has = |key: &str, word: &str| get(key).is_some_and(|v| v.split_whitespace().any(|w| w == word));
        if get("enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            continue;
        }
        if has("types", "deb")
            && has("suites", suite)
            && let Some(uri) = get("uris").and_then(|v| v.split_whitespace().next())
        {
            return Some(uri.to_owned());
        }
    }
    None
}

/// One-line format: `deb [options] URI suite components...`.
pub(crate) fn from_one_line(text: &str, suite: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut words = words.peekable();
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            for w in words.by_ref() {
                if w.ends_with(']') {
                    break;
                }
            }
        }
        if let (Some(uri), Some(s)) = (words.next(), words.next())
            && s == suite
        {
            return Some(uri.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
# a comment
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://mirror.example/debian
 http://second.example/debian
Suites: bookworm bookworm-updates
Components: main
";

    #[test]
    fn deb822_picks_the_plain_suite() {
        assert_eq!(from_deb822(DEB822, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(
            from_deb822(DEB822, "bookworm-security").as_deref(),
            Some("http://mirror.example/debian-security")
        );
        assert_eq!(from_deb822(DEB822, "trixie"), None);
    }

    #[test]
    fn deb822_skips_disabled() {
        let text = "Enabled: no\nTypes: deb\nURIs: http://off/\nSuites: bookworm\n";
        assert_eq!(from_deb822(text, "bookworm"), None);
    }

    #[test]
    fn one_line_format() {
        let text = "\
# deb http://commented/ bookworm main
deb-src http://src/ bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://sec/ bookworm-security main
deb http://plain/debian bookworm main contrib
";
        assert_eq!(from_one_line(text, "bookworm").as_deref(), Some("http://plain/debian"));
        assert_eq!(from_one_line(text, "bookworm-security").as_deref(), Some("http://sec/"));
        assert_eq!(from_one_line("", "bookworm"), None);
    }
}
