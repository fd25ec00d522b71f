//! `Arg<T>` read from arguments, and arguments resolved from one stage to the other.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::NoReferences;
use super::*;
use crate::args::from_value;
use crate::deferred::{CLOSE, open};
use crate::error::{ArgsError, ArgsErrorKind, Found};

/// A marker for output `key` of task 3, as the engine writes one.
fn marker(key: &str) -> String {
    format!("{}output|3|{key}{CLOSE}", open())
}

/// Arguments of a made-up module, with every kind of field.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "Args", bound = "")]
struct Args<S: Stage = Sealed> {
    path: S::Of<AbsolutePath>,
    port: Option<S::Of<u16>>,
    #[serde(default)]
    names: Vec<S::Of<String>>,
    ca: Option<Ca<S>>,
    text: Option<String>,
    json: Option<Value>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    flag: Option<bool>,
    list: Option<S::Of<Vec<String>>>,
    state: Option<S::Of<State>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum State {
    Present,
    Absent,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "Ca", bound = "")]
struct Ca<S: Stage = Sealed> {
    #[serde(rename = "Cert")]
    cert: S::Of<AbsolutePath>,
}

crate::resolve_struct!(Args<S> { path, port, names, ca, text, json, env, flag, list, state });
crate::resolve_struct!(Ca<S> { cert as "Cert" });

fn parse(value: Value) -> Result<Args, ArgsError> {
    from_value(value)
}

/// Fills in the markers of [`marker`]: `port` is 6443, `path` "/etc/x", `bad` "not-an-ip:xx",
/// `rc` 0; any other key has no value.
struct Outputs;

impl Resolver for Outputs {
    fn resolve(&mut self, path: &str, text: &str) -> Option<Value> {
        let values = [
            ("port", json!(6443)),
            ("path", json!("/etc/x")),
            ("bad", json!("not-an-ip:xx")),
            ("rc", json!(0)),
        ];
        if let Some((_, value)) = values.iter().find(|(key, _)| text == marker(key)) {
            return Some(value.clone());
        }
        let mut out = text.to_owned();
        for (key, value) in &values {
            let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            out = out.replace(&marker(key), &value);
        }
        NoReferences.resolve(path, &out)
    }
}

fn resolve(args: Args) -> Result<Args<Resolved>, ArgsError> {
    args.resolve(&mut Resolving::new(&mut Outputs))
}

#[test]
fn a_marker_is_later_and_anything_else_known() {
    let args = parse(json!({ "path": marker("path"), "port": 22, "names": ["a", marker("x")] })).unwrap();
    assert!(matches!(args.path, Arg::Later(ref later) if later.text() == marker("path")));
    assert_eq!(args.port, Some(Arg::Known(22)));
    assert_eq!(args.names[0], Arg::Known("a".to_owned()));
    assert!(matches!(args.names[1], Arg::Later(_)));
    let args = parse(json!({ "path": "/x" })).unwrap();
    assert_eq!(args.path, Arg::Known(AbsolutePath::new("/x").unwrap()));
    assert_eq!(Sealed::known(&args.path).map(AbsolutePath::as_str), Some("/x"));
    assert_eq!(Sealed::known(&parse(json!({ "path": marker("path") })).unwrap().path), None);
}

#[test]
fn a_wrong_known_value_keeps_its_kind_and_path() {
    let error = |value: Value| {
        let e = parse(value).unwrap_err();
        (e.path, e.kind)
    };
    assert_eq!(
        error(json!({ "path": "etc" })),
        (
            "path".to_owned(),
            ArgsErrorKind::InvalidValue {
                expected: "an absolute path".into(),
                found: Found::String("etc".into())
            }
        )
    );
    assert_eq!(
        error(json!({ "path": 42 })),
        (
            "path".to_owned(),
            ArgsErrorKind::InvalidType { expected: "a string".into(), found: Found::Integer("42".into()) }
        )
    );
    assert_eq!(
        error(json!({ "path": "/x", "port": 70000 })),
        (
            "port".to_owned(),
            ArgsErrorKind::InvalidValue {
                expected: "a whole number, 0 or more".into(),
                found: Found::Integer("70000".into())
            }
        )
    );
    assert_eq!(
        error(json!({ "path": "/x", "names": ["a", "b", 3] })),
        (
            "names[2]".to_owned(),
            ArgsErrorKind::InvalidType { expected: "a string".into(), found: Found::Integer("3".into()) }
        )
    );
    let (path, kind) = error(json!({ "path": "/x", "ca": { "Cert": "rel" } }));
    assert_eq!(path, "ca.Cert");
    assert!(matches!(kind, ArgsErrorKind::InvalidValue { .. }), "{kind:?}");
    let (path, kind) = error(json!({ "path": "/x", "ca": { "Crt": "/a" } }));
    assert_eq!(path, "ca.Crt");
    assert!(matches!(kind, ArgsErrorKind::UnknownField { .. }), "{kind:?}");
    // A known value that is itself a list or a choice: read through the same deserializer.
    assert_eq!(
        error(json!({ "path": "/x", "list": ["a", 2] })),
        (
            "list[1]".to_owned(),
            ArgsErrorKind::InvalidType { expected: "a string".into(), found: Found::Integer("2".into()) }
        )
    );
    assert_eq!(
        error(json!({ "path": "/x", "state": "gone" })),
        (
            "state".to_owned(),
            ArgsErrorKind::UnknownVariant {
                variant: "gone".into(),
                expected: vec!["present".into(), "absent".into()]
            }
        )
    );
    let known = parse(json!({ "path": "/x", "list": ["a"], "state": "absent" })).unwrap();
    assert_eq!(
        (known.list, known.state),
        (Some(Arg::Known(vec!["a".to_owned()])), Some(Arg::Known(State::Absent)))
    );
    assert_eq!(
        error(json!({ "path": "/x", "port": "22" })).1,
        ArgsErrorKind::InvalidType {
            expected: "a whole number, 0 or more".into(),
            found: Found::String("22".into())
        }
    );
}

#[test]
fn resolving_fills_in_every_reference_at_its_type() {
    let args = parse(json!({
        "path": marker("path"),
        "port": marker("port"),
        "names": ["a", format!("rc={}", marker("rc"))],
        "ca": { "Cert": "/ca.pem" },
        "text": format!("listen {}:{}", marker("path"), marker("port")),
        "json": { "n": marker("port"), "list": [marker("rc"), "x"] },
        "env": { "RC": marker("rc") },
        "flag": true,
    }))
    .unwrap();
    let resolved = resolve(args).unwrap();
    assert_eq!(resolved.path.as_str(), "/etc/x");
    assert_eq!(resolved.port, Some(6443));
    assert_eq!(resolved.names, ["a", "rc=0"]);
    assert_eq!(resolved.ca.unwrap().cert.as_str(), "/ca.pem");
    assert_eq!(resolved.text.as_deref(), Some("listen /etc/x:6443"));
    assert_eq!(resolved.json, Some(json!({ "n": 6443, "list": [0, "x"] })));
    assert_eq!(resolved.env["RC"], "0");
    assert_eq!(resolved.flag, Some(true));
}

#[test]
fn a_resolved_value_of_the_wrong_shape_names_its_argument() {
    let failure = |value: Value| resolve(parse(value).unwrap()).unwrap_err();
    let error = failure(json!({ "path": marker("bad") }));
    assert_eq!(
        (error.path.as_str(), error.kind),
        (
            "path",
            ArgsErrorKind::InvalidValue {
                expected: "an absolute path".into(),
                found: Found::String("not-an-ip:xx".into())
            }
        )
    );
    let error = failure(json!({ "path": "/x", "ca": { "Cert": marker("bad") } }));
    assert_eq!(error.path, "ca.Cert");
    assert_eq!(
        error.to_string(),
        "argument `ca.Cert` must be an absolute path, got the string \"not-an-ip:xx\""
    );
    let error = failure(json!({ "path": "/x", "port": marker("path") }));
    assert_eq!(
        error.to_string(),
        "argument `port` must be a whole number, 0 or more, got the string \"/etc/x\""
    );
    let error = failure(json!({ "path": "/x", "names": ["a", marker("missing")] }));
    assert_eq!(
        (error.path.as_str(), error.to_string().as_str()),
        ("names[1]", "argument `names[1]`: a run-time value is missing")
    );
    let error = failure(json!({ "path": "/x", "json": { "a": [1, marker("missing")] } }));
    assert_eq!(error.path, "json.a[1]");
}

#[test]
fn arguments_without_references_resolve_to_themselves() {
    let args = parse(json!({ "path": "/x", "text": "plain", "json": { "a": "b" } })).unwrap();
    let resolved = args.resolve(&mut Resolving::new(&mut NoReferences)).unwrap();
    assert_eq!((resolved.path.as_str(), resolved.text.as_deref()), ("/x", Some("plain")));
    let error = parse(json!({ "path": marker("path") }))
        .unwrap()
        .resolve(&mut Resolving::new(&mut NoReferences))
        .unwrap_err();
    assert_eq!(error.path, "path");
}

#[test]
fn an_argument_is_documented_as_its_value() {
    let sealed = serde_json::to_value(schemars::schema_for!(Args)).unwrap();
    let plain = serde_json::to_value(schemars::schema_for!(String)).unwrap();
    assert_eq!(sealed["properties"]["path"], json!({ "type": "string" }));
    assert_eq!(sealed["properties"]["names"]["items"], json!({ "type": "string" }));
    assert_eq!(sealed["properties"]["port"]["type"], json!(["integer", "null"]));
    assert_eq!(sealed["title"], "Args");
    assert_eq!(sealed["$defs"]["Ca"]["properties"]["Cert"], json!({ "type": "string" }));
    assert_eq!(plain["type"], "string");
}
