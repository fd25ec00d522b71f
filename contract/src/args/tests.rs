//! The deserializer against serde's derives: each kind of mistake, with its path.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::from_value;
use crate::error::{ArgsError, ArgsErrorKind, Found};
use crate::mode::Mode;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    #[serde(default)]
    state: State,
    mode: Option<Mode>,
    #[serde(default)]
    names: Vec<String>,
    ca: Option<Ca>,
    count: Option<u32>,
    src: Option<OneOrMany>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    shape: Option<Shape>,
    ratio: Option<f64>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    File,
    Directory,
    Absent,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Ca {
    cert: String,
    key: String,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Shape {
    Dot,
    Circle(u32),
    Line { from: u32, to: u32 },
}

fn parse(value: Value) -> Result<Args, ArgsError> {
    from_value(value)
}

fn error(value: Value) -> (String, ArgsErrorKind) {
    let e = parse(value).unwrap_err();
    (e.path, e.kind)
}

#[test]
fn accepts_what_serde_json_accepts() {
    let value = json!({
        "path": "/x", "state": "directory", "mode": "0644", "names": ["a", "b"],
        "ca": { "cert": "/c", "key": "/k" }, "count": 3, "src": ["/a"], "env": { "K": "v" },
        "shape": { "line": { "from": 1, "to": 2 } }, "ratio": 1,
    });
    let ours = parse(value.clone()).unwrap();
    assert_eq!(ours.state, State::Directory);
    assert_eq!(ours.mode, Some(Mode(0o644)));
    assert_eq!(ours.ca, Some(Ca { cert: "/c".into(), key: "/k".into() }));
    assert_eq!(ours.src, Some(OneOrMany::Many(vec!["/a".into()])));
    assert_eq!(ours.shape, Some(Shape::Line { from: 1, to: 2 }));
    assert_eq!(ours.ratio, Some(1.0));
    assert_eq!(ours, serde_json::from_value::<Args>(value).unwrap());

    let minimal = parse(json!({ "path": "/x", "mode": null, "src": "/a", "shape": "dot" })).unwrap();
    assert_eq!((minimal.state, minimal.mode, minimal.names), (State::File, None, vec![]));
    assert_eq!(minimal.src, Some(OneOrMany::One("/a".into())));
    assert_eq!(minimal.shape, Some(Shape::Dot));
    assert_eq!(
        parse(json!({ "path": "/x", "shape": { "circle": 2 } })).unwrap().shape,
        Some(Shape::Circle(2))
    );
}

#[test]
fn each_mistake_is_a_kind_at_a_path() {
    let names = |n: &[&str]| n.iter().map(|&s| s.to_owned()).collect::<Vec<_>>();
    let (path, kind) = error(json!({ "path": "/x", "contnet": "" }));
    assert_eq!(path, "contnet");
    assert!(matches!(kind, ArgsErrorKind::UnknownField { ref field, .. } if field == "contnet"), "{kind:?}");

    assert_eq!(error(json!({})), (String::new(), ArgsErrorKind::MissingField { field: "path".into() }));

    let (path, kind) = error(json!({ "path": "/x", "mode": 644 }));
    assert_eq!(path, "mode");
    assert_eq!(
        kind,
        ArgsErrorKind::InvalidType {
            expected: "an octal mode string like \"0644\"".into(),
            found: Found::Integer("644".into())
        }
    );

    let (path, kind) = error(json!({ "path": "/x", "count": -1 }));
    assert_eq!(path, "count");
    assert_eq!(
        kind,
        ArgsErrorKind::InvalidValue {
            expected: "a whole number, 0 or more".into(),
            found: Found::Integer("-1".into())
        }
    );

    let (path, kind) = error(json!({ "path": "/x", "state": "dir" }));
    assert_eq!(path, "state");
    assert_eq!(
        kind,
        ArgsErrorKind::UnknownVariant {
            variant: "dir".into(),
            expected: names(&["file", "directory", "absent"])
        }
    );

    let (path, kind) = error(json!({ "path": "/x", "mode": "0999" }));
    assert_eq!(path, "mode");
    assert!(
        matches!(kind, ArgsErrorKind::Custom { ref message } if message.starts_with("invalid mode \"0999\""))
    );

    let (path, kind) = error(json!({ "path": "/x", "ratio": "half" }));
    assert_eq!(path, "ratio");
    assert_eq!(
        kind,
        ArgsErrorKind::InvalidType { expected: "a number".into(), found: Found::String("half".into()) }
    );
}

#[test]
fn nested_mistakes_carry_the_whole_path() {
    let (path, kind) = error(json!({ "path": "/x", "ca": { "crt": "/a", "key": "/b" } }));
    assert_eq!(path, "ca.crt");
    assert!(matches!(kind, ArgsErrorKind::UnknownField { .. }));
    assert_eq!(
        parse(json!({ "path": "/x", "ca": { "crt": "/a", "key": "/b" } })).unwrap_err().to_string(),
        "unknown key `crt` in argument `ca`; did you mean `cert`?"
    );

    let (path, kind) = error(json!({ "path": "/x", "ca": { "cert": "/a" } }));
    assert_eq!((path.as_str(), kind), ("ca", ArgsErrorKind::MissingField { field: "key".into() }));

    let (path, kind) = error(json!({ "path": "/x", "names": ["a", "b", 3] }));
    assert_eq!(path, "names[2]");
    assert_eq!(
        kind,
        ArgsErrorKind::InvalidType { expected: "a string".into(), found: Found::Integer("3".into()) }
    );

    let (path, _) = error(json!({ "path": "/x", "env": { "K": true } }));
    assert_eq!(path, "env.K");
}

#[test]
fn wrong_shapes_are_type_mistakes() {
    let message = |value: Value| parse(value).unwrap_err().to_string();
    assert_eq!(
        message(json!({ "path": "/x", "names": "hello" })),
        "argument `names` must be a list (an array), got the string \"hello\""
    );
    assert_eq!(
        message(json!({ "path": "/x", "ca": 1.5 })),
        "argument `ca` must be a map #{ ... }, got the number 1.5"
    );
    assert_eq!(message(json!({ "path": null })), "argument `path` must be a string, got nothing (`()`)");
    assert_eq!(message(json!("/x")), "the arguments must be a map #{ ... }, got the string \"/x\"");
    // A list fills a struct's fields in order, as with serde_json.
    assert_eq!(message(json!(["/x"])), "invalid length 2, expected struct Args with 10 elements");
    assert_eq!(
        message(json!({ "path": "/x", "ca": [] })),
        "argument `ca`: invalid length 0, expected struct Ca with 2 elements"
    );
    // An untagged enum that matches no variant: serde reports its own text.
    assert_eq!(
        message(json!({ "path": "/x", "src": 1 })),
        "argument `src`: data did not match any variant of untagged enum OneOrMany"
    );
    assert_eq!(
        message(json!({ "path": "/x", "shape": { "dot": null, "line": null } })),
        "argument `shape` must be a map #{ ... }, got a map"
    );
    assert_eq!(
        message(json!({ "path": "/x", "shape": 1 })),
        "argument `shape` must be string or map, got the integer 1"
    );
    assert_eq!(
        message(json!({ "path": "/x", "shape": "circle" })),
        "argument `shape.circle` must be newtype variant, got unit variant"
    );
}

/// Every message matches the one made from serde_json's own error text before this module
/// existed; a few spot checks against serde_json itself keep the two deserializers in step.
#[test]
fn serde_json_agrees_on_what_fails() {
    for value in [
        json!({ "path": "/x", "contnet": "" }),
        json!({}),
        json!({ "path": "/x", "mode": 644 }),
        json!({ "path": "/x", "count": 1e3 }),
        json!({ "path": "/x", "names": [1] }),
        json!({ "path": "/x", "shape": { "circle": "a" } }),
        json!({ "path": "/x", "src": [1] }),
    ] {
        assert!(parse(value.clone()).is_err(), "{value}");
        assert!(serde_json::from_value::<Args>(value.clone()).is_err(), "{value}");
    }
}
