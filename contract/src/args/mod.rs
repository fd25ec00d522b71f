//! Module arguments from JSON into a module's argument type, with every mistake reported as
//! an [`ArgsError`] (a path and a kind), never as text to parse back.
//!
//! [`from_value`] runs serde over [`value_de::ValueDeserializer`], a deserializer of
//! `serde_json::Value` whose error type is [`ArgsError`]: serde's own calls
//! (`unknown_field`, `missing_field`, `invalid_type`, ...) become an [`ArgsErrorKind`].
//! serde_path_to_error wraps it and supplies the path (`mode`, `ca.cert`, `names[2]`).
//!
//! [`ArgsErrorKind`]: crate::error::ArgsErrorKind

mod value_de;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ArgsError;
pub use value_de::ValueDeserializer;

/// Deserializes `value` into `T` strictly, as serde_json would, reporting where and what.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ArgsError> {
    serde_path_to_error::deserialize(ValueDeserializer::new(value)).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let mut error = e.into_inner();
        error.path = path;
        error
    })
}

#[cfg(test)]
mod tests;
