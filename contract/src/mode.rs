//! File permission bits as playbooks write them ([`Mode`]), and why a text is not one
//! ([`InvalidMode`]).

use serde::{Deserialize, Deserializer};

/// Permission bits, written in playbooks as an octal string: `"0644"`, `"600"`, `"2750"`.
///
/// Integers are refused on purpose: `644` and `0o644` are easy to confuse, and a wrong
/// guess silently produces a world-writable file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl Mode {
    /// Parses an octal mode string.
    pub fn parse(text: &str) -> Result<Self, InvalidMode> {
        let invalid = |reason: String| InvalidMode { text: text.to_owned(), reason };
        let digits = text.strip_prefix("0o").unwrap_or(text);
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(invalid("expected an octal string like \"0644\"".to_owned()));
        }
        u32::from_str_radix(digits, 8).map(Mode).map_err(|e| invalid(e.to_string()))
    }
}

/// Text that is not an octal mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mode {text:?}: {reason}")]
pub struct InvalidMode {
    /// The text as written.
    pub text: String,
    reason: String,
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Mode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an octal mode string like \"0644\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Mode, E> {
                Mode::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_octal_strings_only() {
        assert_eq!(Mode::parse("0644"), Ok(Mode(0o644)));
        assert_eq!(Mode::parse("600"), Ok(Mode(0o600)));
        assert_eq!(Mode::parse("0o2750"), Ok(Mode(0o2750)));
        assert!(Mode::parse("0x644").is_err());
        assert!(Mode::parse("0999").is_err());
        assert!(Mode::parse("").is_err());
        assert!(serde_json::from_value::<Mode>(serde_json::json!(644)).is_err());
    }
}
