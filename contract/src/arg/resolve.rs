//! Resolving: `FooArgs<Sealed>` into `FooArgs<Resolved>`, every run-time reference filled in
//! by the engine's [`Resolver`], every mistake an [`ArgsError`] at the argument's path.
//!
//! [`Resolve`] is implemented for [`Arg<T>`] (fill in, then read as `T`), for free text
//! (`String`, whose references are written into it, and JSON `Value`, whose strings are
//! filled in one by one), for `Option`, `Vec` and maps of those, for types that hold no text
//! ([`resolve_as_is!`](crate::resolve_as_is)), and for each module's argument struct ([`resolve_struct!`](crate::resolve_struct)).
//! [`Resolving`] carries the resolver and the path of the value being resolved.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Arg;
use crate::error::ArgsError;

/// Fills in run-time references; given by the engine, which alone knows what they are.
pub trait Resolver {
    /// `text`, the value of the argument at `path`, with each run-time reference in it
    /// replaced by its value: a text that is one reference and nothing else becomes that
    /// value with its own JSON type, references inside longer text are written into it.
    /// Text without references comes back as it is. `None` when a reference has no value.
    fn resolve(&mut self, path: &str, text: &str) -> Option<Value>;
}

/// The resolver, and where in the arguments resolving is.
pub struct Resolving<'a> {
    resolver: &'a mut dyn Resolver,
    /// As serde_path_to_error spells it: `ca.cert`, `hosts[1]`.
    path: String,
}

impl std::fmt::Debug for Resolving<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolving").field("path", &self.path).finish_non_exhaustive()
    }
}

impl<'a> Resolving<'a> {
    pub fn new(resolver: &'a mut dyn Resolver) -> Self {
        Self { resolver, path: String::new() }
    }

    /// The path of the value being resolved ("" for the arguments as a whole).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Resolves field `name` of the current value.
    pub fn field<R: Resolve>(&mut self, name: &str, value: R) -> Result<R::Resolved, ArgsError> {
        let separator = if self.path.is_empty() { "" } else { "." };
        self.nested(&format!("{separator}{name}"), value)
    }

    /// Resolves item `index` of the current list.
    pub fn item<R: Resolve>(&mut self, index: usize, value: R) -> Result<R::Resolved, ArgsError> {
        self.nested(&format!("[{index}]"), value)
    }

    fn nested<R: Resolve>(&mut self, segment: &str, value: R) -> Result<R::Resolved, ArgsError> {
        let len = self.path.len();
        self.path.push_str(segment);
        let resolved = value.resolve(self);
        self.path.truncate(len);
        resolved
    }

    /// `text` with its references filled in.
    pub fn fill_in(&mut self, text: &str) -> Result<Value, ArgsError> {
        self.resolver.resolve(&self.path, text).ok_or_else(|| {
            ArgsError::invalid(
                self.path.clone(),
                format!("argument `{}`: a run-time value is missing", self.path),
            )
        })
    }
}

/// A value at the sealed stage that becomes its resolved form once references are filled in.
pub trait Resolve: Sized {
    type Resolved;

    fn resolve(self, cx: &mut Resolving<'_>) -> Result<Self::Resolved, ArgsError>;
}

/// A known value is kept; a later one is filled in and read as a `T`, so a value of the wrong
/// shape is refused as it would have been had the playbook written it.
impl<T: DeserializeOwned> Resolve for Arg<T> {
    type Resolved = T;

    fn resolve(self, cx: &mut Resolving<'_>) -> Result<T, ArgsError> {
        match self {
            Arg::Known(value) => Ok(value),
            Arg::Later(later) => {
                let value = cx.fill_in(later.text())?;
                crate::args::from_value(value).map_err(|e| e.within(cx.path()))
            }
        }
    }
}

/// Free text: references are written into it (a number or a map as its JSON text).
impl Resolve for String {
    type Resolved = String;

    fn resolve(self, cx: &mut Resolving<'_>) -> Result<String, ArgsError> {
        Ok(match cx.fill_in(&self)? {
            Value::String(text) => text,
            other => other.to_string(),
        })
    }
}

/// Free JSON: every string in it is filled in (one that is a reference alone takes the
/// value's own type), at its own path.
impl Resolve for Value {
    type Resolved = Value;

    fn resolve(self, cx: &mut Resolving<'_>) -> Result<Value, ArgsError> {
        Ok(match self {
            Value::String(text) => cx.fill_in(&text)?,
            Value::Array(items) => Value::Array(
                items.into_iter().enumerate().map(|(i, v)| cx.item(i, v)).collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((k.clone(), cx.field(&k, v)?)))
                    .collect::<Result<_, ArgsError>>()?,
            ),
            other => other,
        })
    }
}

impl<R: Resolve> Resolve for Option<R> {
    type Resolved = Option<R::Resolved>;

    fn resolve(self, cx: &mut Resolving<'_>) -> Result<Self::Resolved, ArgsError> {
        self.map(|value| value.resolve(cx)).transpose()
    }
}

impl<R: Resolve> Resolve for Vec<R> {
    type Resolved = Vec<R::Resolved>;

    fn resolve(self, cx: &mut Resolving<'_>) -> Result<Self::Resolved, ArgsError> {
        self.into_iter().enumerate().map(|(i, value)| cx.item(i, value)).collect()
    }
}

/// Keys are names the playbook wrote (environment variables, template variables): kept as
/// they are; values are resolved.
impl<R: Resolve> Resolve for BTreeMap<String, R> {
    type Resolved = BTreeMap<String, R::Resolved>;

    fn resolve(self, cx: &mut Resolving<'_>) -> Result<Self::Resolved, ArgsError> {
        self.into_iter().map(|(key, value)| Ok((key.clone(), cx.field(&key, value)?))).collect()
    }
}

/// Types that hold no text, and so no reference, resolve to themselves:
/// `resolve_as_is!(FileState, Mode);`. Never use it for a type with a `String` inside.
#[macro_export]
macro_rules! resolve_as_is {
    ($($type:ty),* $(,)?) => {$(
        impl $crate::arg::Resolve for $type {
            type Resolved = $type;

            fn resolve(
                self,
                _: &mut $crate::arg::Resolving<'_>,
            ) -> ::std::result::Result<$type, $crate::ArgsError> {
                Ok(self)
            }
        }
    )*};
}

resolve_as_is!(bool, u8, u16, u32, u64, i64, f64, crate::mode::Mode);

/// Resolves an argument struct field by field, each at its own path. Every field must be
/// named (the struct is destructured whole), each as its key in the arguments
/// (`field as "KEY"` when serde renames it).
///
/// - `resolve_struct!(FileArgs<S> { path, state, ... })`: a struct generic over the stage
///   becomes its [`Resolved`](super::Resolved) form.
/// - `resolve_struct!(WaitArgs { port, host, ... })`: one without `Arg` fields stays itself,
///   its free text filled in.
#[macro_export]
macro_rules! resolve_struct {
    ($name:ident<S> { $($field:ident $(as $key:literal)?),* $(,)? }) => {
        impl $crate::arg::Resolve for $name<$crate::arg::Sealed> {
            type Resolved = $name<$crate::arg::Resolved>;

            fn resolve(
                self,
                cx: &mut $crate::arg::Resolving<'_>,
            ) -> ::std::result::Result<Self::Resolved, $crate::ArgsError> {
                let $name { $($field),* } = self;
                Ok($name { $($field: cx.field($crate::resolve_struct!(@key $field $($key)?), $field)?),* })
            }
        }
    };
    ($name:ident { $($field:ident $(as $key:literal)?),* $(,)? }) => {
        impl $crate::arg::Resolve for $name {
            type Resolved = $name;

            fn resolve(
                self,
                cx: &mut $crate::arg::Resolving<'_>,
            ) -> ::std::result::Result<Self::Resolved, $crate::ArgsError> {
                let $name { $($field),* } = self;
                Ok($name { $($field: cx.field($crate::resolve_struct!(@key $field $($key)?), $field)?),* })
            }
        }
    };
    (@key $field:ident) => {
        stringify!($field)
    };
    (@key $field:ident $key:literal) => {
        $key
    };
}

/// A [`Resolver`] for arguments that hold no run-time reference (a
/// task whose arguments the playbook wrote in full, a test): text comes back as it is, and a
/// reference is refused (it has no value).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReferences;

impl Resolver for NoReferences {
    fn resolve(&mut self, _path: &str, text: &str) -> Option<serde_json::Value> {
        (!crate::deferred::is_deferred(text)).then(|| serde_json::Value::String(text.to_owned()))
    }
}
