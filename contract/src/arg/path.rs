//! [`AbsolutePath`]: a path that starts with `/`, checked when it is read.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, Unexpected};

/// An absolute path (it starts with `/`). Refused otherwise when the arguments are read:
/// "argument `dir` must be an absolute path, got the string \"etc\"".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AbsolutePath(String);

impl AbsolutePath {
    /// `path`, when it is absolute.
    pub fn new(path: impl Into<String>) -> Option<Self> {
        let path = path.into();
        path.starts_with('/').then_some(Self(path))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AbsolutePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for AbsolutePath {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AbsolutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<AbsolutePath> for String {
    fn from(path: AbsolutePath) -> String {
        path.0
    }
}

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !text.starts_with('/') {
            return Err(D::Error::invalid_value(Unexpected::Str(&text), &"an absolute path"));
        }
        Ok(Self(text))
    }
}

crate::string_schema!(AbsolutePath);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::args::from_value;
    use crate::error::{ArgsErrorKind, Found};

    #[test]
    fn an_absolute_path_starts_with_a_slash() {
        assert_eq!(from_value::<AbsolutePath>(json!("/etc/x")).unwrap().as_str(), "/etc/x");
        let error = from_value::<AbsolutePath>(json!("etc/x")).unwrap_err();
        assert_eq!(
            error.kind,
            ArgsErrorKind::InvalidValue {
                expected: "an absolute path".into(),
                found: Found::String("etc/x".into())
            }
        );
        assert_eq!(error.to_string(), "the arguments must be an absolute path, got the string \"etc/x\"");
        let error = from_value::<AbsolutePath>(json!(42)).unwrap_err();
        assert_eq!(error.to_string(), "the arguments must be a string, got the integer 42");
        assert_eq!(AbsolutePath::new("rel"), None);
    }
}
