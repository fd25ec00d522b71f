//! A run-time reference as a typed value: an argument is [`Arg::Known`] (checked when the
//! plan is sealed) or [`Arg::Later`] (another task's output, a host's fact: checked when it
//! is known, just before the task runs).
//!
//! ```text
//!   playbook JSON ──args::from_value──► FooArgs<Sealed>   fields Arg<T> = Known(T) | Later
//!        (at seal: every Known value is checked by its type, e.g. AbsolutePath)
//!   FooArgs<Sealed> ──Resolve (the engine's Resolver)──► FooArgs<Resolved>   fields T
//!        (at run: each Later is filled in and deserialized as T; free text is filled in)
//!   FooArgs<Resolved> ──► the module, which never sees a reference
//! ```
//!
//! The design, and why:
//! - **One struct, two stages.** A module's arguments are one struct generic over a
//!   [`Stage`]: a field that may hold a reference is `S::Of<T>`, which is [`Arg<T>`] for
//!   [`Sealed`] and `T` itself for [`Resolved`]. serde and schemars derive on the generic
//!   struct (with `bound = ""`: the stage's own bounds suffice), so one definition parses,
//!   documents (an `Arg<T>` has `T`'s schema) and runs.
//! - **Types check values, not validators.** A newtype that checks itself when deserialized
//!   ([`AbsolutePath`], a kubeadm endpoint, ...) makes `Arg<AbsolutePath>` check the value
//!   when it is known, at seal or at run, with no special case for references anywhere but in
//!   [`Arg`]'s own deserializer. Rules across fields see values through [`Stage::known`]:
//!   all of them once resolved, the known ones at seal.
//! - **Resolving is typed.** [`Resolve`] turns `FooArgs<Sealed>` into `FooArgs<Resolved>`
//!   field by field ([`resolve_struct!`](crate::resolve_struct) writes it, and names every field, so none is
//!   forgotten): a `Later` is filled in by the engine's [`Resolver`] (which alone knows what a
//!   reference is) and deserialized as `T`, so a resolved value of the wrong shape fails with
//!   an [`ArgsError`](crate::ArgsError) at that argument's path; free text (`String`, JSON `Value`) has the
//!   references inside it filled in. Types that hold no text resolve to themselves
//!   ([`resolve_as_is!`](crate::resolve_as_is)).
//!
//! The parts: [`Arg`] and its deserializer (this file), [`stage`], [`resolve`], and the
//! newtypes every module shares ([`AbsolutePath`], [`Operand`]).

mod operand;
mod path;
pub mod resolve;
pub mod stage;

use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::value::{
    BoolDeserializer, BorrowedStrDeserializer, F64Deserializer, I64Deserializer, MapAccessDeserializer,
    SeqAccessDeserializer, StrDeserializer, StringDeserializer, U64Deserializer, UnitDeserializer,
};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

pub use operand::Operand;
pub use path::AbsolutePath;
pub use resolve::{NoReferences, Resolve, Resolver, Resolving};
pub use stage::{ArgValue, Resolved, Sealed, Stage};

/// An argument's value: known when the plan is sealed, or only when the task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg<T> {
    /// Written in the playbook, and checked as a `T` when it was read.
    Known(T),
    /// Holds a run-time reference: checked as a `T` once the engine has filled it in.
    Later(Later),
}

/// Text holding at least one run-time reference, as the playbook wrote it (a reference alone,
/// or references inside longer text). Opaque: only the engine's [`Resolver`] reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct Later(String);

impl Later {
    /// The text, references included, for the engine to fill in.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Later {
    /// Shows the reference the way the journal compares them (without this process's token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Later({:?})", crate::deferred::canonical(&self.0))
    }
}

/// A string that holds a reference is [`Arg::Later`]; any other value is a `T`, read through
/// the same deserializer (same error type), so a wrong value keeps its structured kind and
/// the path serde_path_to_error tracks (`names[2]`, `ca.cert`).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Arg<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ArgVisitor(PhantomData))
    }
}

/// The one place arguments ask whether a text holds a run-time reference.
fn holds_reference(text: &str) -> bool {
    crate::deferred::is_deferred(text)
}

struct ArgVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ArgVisitor<T> {
    type Value = Arg<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Arg<T>, E> {
        T::deserialize(BoolDeserializer::new(v)).map(Arg::Known)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Arg<T>, E> {
        T::deserialize(I64Deserializer::new(v)).map(Arg::Known)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Arg<T>, E> {
        T::deserialize(U64Deserializer::new(v)).map(Arg::Known)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Arg<T>, E> {
        T::deserialize(F64Deserializer::new(v)).map(Arg::Known)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Arg<T>, E> {
        if holds_reference(v) {
            return Ok(Arg::Later(Later(v.to_owned())));
        }
        T::deserialize(StrDeserializer::new(v)).map(Arg::Known)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Arg<T>, E> {
        if holds_reference(v) {
            return Ok(Arg::Later(Later(v.to_owned())));
        }
        T::deserialize(BorrowedStrDeserializer::new(v)).map(Arg::Known)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Arg<T>, E> {
        if holds_reference(&v) {
            return Ok(Arg::Later(Later(v)));
        }
        T::deserialize(StringDeserializer::new(v)).map(Arg::Known)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Arg<T>, E> {
        T::deserialize(UnitDeserializer::new()).map(Arg::Known)
    }

    fn visit_none<E: de::Error>(self) -> Result<Arg<T>, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Arg<T>, D::Error> {
        T::deserialize(deserializer).map(Arg::Known)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Arg<T>, A::Error> {
        T::deserialize(SeqAccessDeserializer::new(seq)).map(Arg::Known)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Arg<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Arg::Known)
    }
}

/// An argument is documented as the value it holds: references are not a type of their own.
impl<T: JsonSchema> JsonSchema for Arg<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A newtype of `String` documents itself as a string: `string_schema!(AbsolutePath);`.
#[macro_export]
macro_rules! string_schema {
    ($($type:ty),* $(,)?) => {$(
        impl $crate::arg::__schemars::JsonSchema for $type {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                <String as $crate::arg::__schemars::JsonSchema>::schema_name()
            }

            fn schema_id() -> ::std::borrow::Cow<'static, str> {
                <String as $crate::arg::__schemars::JsonSchema>::schema_id()
            }

            fn json_schema(generator: &mut $crate::arg::__schemars::SchemaGenerator) -> $crate::arg::__schemars::Schema {
                <String as $crate::arg::__schemars::JsonSchema>::json_schema(generator)
            }
        }
    )*};
}

#[doc(hidden)]
pub use schemars as __schemars;

#[cfg(test)]
mod tests;
