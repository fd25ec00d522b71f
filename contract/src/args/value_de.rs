//! A deserializer of `serde_json::Value` whose error type is [`ArgsError`], so that serde
//! hands over its findings as data. It follows `serde_json::Value`'s own deserializer call
//! for call: numbers visit as u64, else i64, else f64; `null` is `None` for an `Option` and
//! `()` otherwise; an enum is a string (a unit variant) or a map of one key (a variant with
//! content); lists and maps go through serde's own `SeqDeserializer` and `MapDeserializer`.
//! Untagged enums, defaults and `deny_unknown_fields` need nothing more: serde's derived
//! code drives them through [`Deserializer::deserialize_any`] and the visitors' own calls.

use serde::de::value::{MapDeserializer, SeqDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Error as _, IntoDeserializer, Unexpected, VariantAccess,
    Visitor,
};
use serde_json::{Map, Value};

use crate::error::ArgsError;

/// Deserializes one `serde_json::Value`, reporting mistakes as [`ArgsError`].
#[derive(Debug)]
pub struct ValueDeserializer(Value);

impl ValueDeserializer {
    pub fn new(value: Value) -> Self {
        Self(value)
    }
}

impl<'de> IntoDeserializer<'de, ArgsError> for ValueDeserializer {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// What `value` is, for a type mistake.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, f) => Unexpected::Float(f.unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, ArgsError> {
    let mut seq = SeqDeserializer::new(items.into_iter().map(ValueDeserializer));
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

fn visit_object<'de, V: Visitor<'de>>(
    entries: Map<String, Value>,
    visitor: V,
) -> Result<V::Value, ArgsError> {
    let mut map = MapDeserializer::new(entries.into_iter().map(|(k, v)| (k, ValueDeserializer(v))));
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = ArgsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgsError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(entries) => visit_object(entries, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgsError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(ValueDeserializer(other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ArgsError> {
        let (variant, content) = match self.0 {
            Value::String(variant) => (variant, None),
            Value::Object(entries) if entries.len() == 1 => {
                let Some((variant, content)) = entries.into_iter().next() else {
                    return Err(ArgsError::invalid_value(Unexpected::Map, &"map with a single key"));
                };
                (variant, Some(content))
            }
            Value::Object(_) => {
                return Err(ArgsError::invalid_value(Unexpected::Map, &"map with a single key"));
            }
            other => return Err(ArgsError::invalid_type(unexpected(&other), &"string or map")),
        };
        visitor.visit_enum(Variant { variant, content })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ArgsError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgsError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// An enum's variant name, and its content when it was written as `#{ variant: content }`.
struct Variant {
    variant: String,
    content: Option<Value>,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = ArgsError;
    type Variant = VariantContent;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, VariantContent), ArgsError> {
        let name: StringDeserializer<ArgsError> = self.variant.into_deserializer();
        Ok((seed.deserialize(name)?, VariantContent(self.content)))
    }
}

/// The content of an enum variant, if any was written.
struct VariantContent(Option<Value>);

impl<'de> VariantAccess<'de> for VariantContent {
    type Error = ArgsError;

    fn unit_variant(self) -> Result<(), ArgsError> {
        match self.0 {
            Some(value) => de::Deserialize::deserialize(ValueDeserializer(value)),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, ArgsError> {
        match self.0 {
            Some(value) => seed.deserialize(ValueDeserializer(value)),
            None => Err(ArgsError::invalid_type(Unexpected::UnitVariant, &"newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, ArgsError> {
        match self.0 {
            Some(Value::Array(items)) => visit_array(items, visitor),
            Some(other) => Err(ArgsError::invalid_type(unexpected(&other), &"tuple variant")),
            None => Err(ArgsError::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ArgsError> {
        match self.0 {
            Some(Value::Object(entries)) => visit_object(entries, visitor),
            Some(other) => Err(ArgsError::invalid_type(unexpected(&other), &"struct variant")),
            None => Err(ArgsError::invalid_type(Unexpected::UnitVariant, &"struct variant")),
        }
    }
}
