//! [`Operand`]: a value that becomes a command's operand (a name, a kind, a directory),
//! refused when a command would read it as an option.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, Unexpected};

/// A value given to a command as an operand: it does not start with `-`, so no command reads
/// it as an option (`--field-selector=...` as a kubectl name, `-P` as a directory for `cd`).
/// Refused when the arguments are read, with the playbook line. Command lines still put `--`
/// before operands where the command allows it; this makes the refusal visible at seal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operand(String);

impl Operand {
    /// `text`, when it is no option.
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        (!text.starts_with('-')).then_some(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Operand {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Operand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(text.clone()).ok_or_else(|| {
            D::Error::invalid_value(
                Unexpected::Str(&text),
                &"a value that does not start with '-' (a command would read it as an option)",
            )
        })
    }
}

crate::string_schema!(Operand);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::args::from_value;
    use crate::error::{ArgsErrorKind, Found};

    #[test]
    fn an_operand_never_starts_with_a_dash() {
        assert_eq!(from_value::<Operand>(json!("kube-proxy")).unwrap().as_str(), "kube-proxy");
        assert_eq!(from_value::<Operand>(json!("a-b")).unwrap().as_str(), "a-b");
        for option in ["--field-selector=metadata.name!=x", "-P", "-"] {
            let error = from_value::<Operand>(json!(option)).unwrap_err();
            assert_eq!(
                error.kind,
                ArgsErrorKind::InvalidValue {
                    expected: "a value that does not start with '-' (a command would read it as an option)"
                        .into(),
                    found: Found::String(option.into())
                }
            );
        }
        assert_eq!(Operand::new("-x"), None);
    }
}
