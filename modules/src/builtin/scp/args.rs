//! `scp`'s arguments, as playbooks write them, and the checks made before anything runs.

use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::ArgsError;
use contract::mode::Mode;
use schemars::JsonSchema;
use serde::Deserialize;

use super::CONTROLLER;
use crate::validate::Validate;

/// Copies files between machines; the controller relays the bytes, so hosts need no SSH
/// access to each other. Three directions:
/// host → this host (`from: "etcd0"`), controller → this host (`from: "controller"`), and
/// this host → controller (`to_controller: "/local/dir/"`, no `from`).
/// One `src` that is a file is copied to `dest` (into it when `dest` ends with `/`); one `src`
/// that is a directory is copied to `dest` as a tree (`src/a/b` → `dest/a/b`); several `src`
/// are each copied into the directory `dest` under their own name. Only regular files are
/// copied (symbolic links and empty directories are not); missing directories are created.
/// Checksums are compared first, so unchanged files are not sent. File content never
/// appears in reports: changes name files and sizes, and `--diff` shows only
/// "secret content differs" for files holding a private key. Outputs: `files` (every
/// destination path) and `sent` (how many were sent).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "ScpArgs", bound = "")]
pub struct ScpArgs<S: Stage = Sealed> {
    /// Where the files come from: another host's inventory name (read over its own
    /// connection), or "controller" for the machine engine runs on (relative paths are from
    /// engine's working directory). Omit it with `to_controller`. A task reading from another
    /// host does not wait for that host's tasks by itself: use `.after(task)`, or take `src`
    /// from the producing task's output.
    pub from: Option<String>,
    /// What to copy: a path, or a list of paths, on the source. Absolute on hosts. An earlier
    /// task's output works too (`src: ca.output("path")`), and makes this task wait for it.
    pub src: Paths<S>,
    /// Absolute destination on this task's host. A directory when `src` is a directory or a
    /// list, or when it ends with `/`.
    pub dest: Option<S::Of<AbsolutePath>>,
    /// Copy from this task's host to this path on the controller instead (relative to engine's
    /// working directory), with the same rules as `dest`. Excludes `from`, `dest`, `owner`, `group`.
    pub to_controller: Option<String>,
    /// Glob patterns of files to leave out, matched against paths relative to the copied
    /// directory: `*` and `?` stay within one path segment, `**` crosses them, `[a-z]` is a
    /// class. A pattern without `/` matches any segment, e.g. "apiserver.key", "*.key", "etcd"
    /// (that whole subdirectory).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Permission bits for every copied file, as an octal string like "0600". Default: each
    /// source file's own mode without its setuid, setgid and sticky bits and without write for
    /// others (a source host is not trusted to hand out such modes); give `mode` to set them.
    #[schemars(with = "Option<String>")]
    pub mode: Option<Mode>,
    /// Owning user of the copied files on this task's host.
    pub owner: Option<String>,
    /// Owning group of the copied files on this task's host.
    pub group: Option<String>,
}

contract::resolve_struct!(ScpArgs<S> { from, src, dest, to_controller, exclude, mode, owner, group });

/// One path or a list of paths.
///
/// Read by its own visitor rather than `#[serde(untagged)]`: a value of neither shape is then
/// a type mistake naming what was given ("a path or a list of paths, got the integer 1"), and
/// a bad list item is reported at its own place (`src[1]`).
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged, rename = "Paths", bound = "")]
pub enum Paths<S: Stage = Sealed> {
    One(S::Of<String>),
    Many(Vec<S::Of<String>>),
}

impl<'de, S: Stage> Deserialize<'de> for Paths<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::value::{StrDeserializer, StringDeserializer};
        struct Visitor<S>(std::marker::PhantomData<S>);
        impl<'de, S: Stage> serde::de::Visitor<'de> for Visitor<S> {
            type Value = Paths<S>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Paths<S>, E> {
                Deserialize::deserialize(StrDeserializer::new(v)).map(Paths::One)
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Paths<S>, E> {
                Deserialize::deserialize(StringDeserializer::new(v)).map(Paths::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Paths<S>, A::Error> {
                let mut paths = Vec::new();
                while let Some(path) = seq.next_element()? {
                    paths.push(path);
                }
                Ok(Paths::Many(paths))
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

impl contract::arg::Resolve for Paths<Sealed> {
    type Resolved = Paths<Resolved>;

    fn resolve(self, cx: &mut contract::arg::Resolving<'_>) -> Result<Paths<Resolved>, ArgsError> {
        Ok(match self {
            Paths::One(path) => Paths::One(contract::arg::Resolve::resolve(path, cx)?),
            Paths::Many(paths) => Paths::Many(contract::arg::Resolve::resolve(paths, cx)?),
        })
    }
}

impl<S: Stage> Paths<S> {
    /// Every path, as written.
    fn items(&self) -> Vec<&S::Of<String>> {
        match self {
            Paths::One(p) => vec![p],
            Paths::Many(ps) => ps.iter().collect(),
        }
    }
}

impl Paths<Resolved> {
    pub(super) fn list(&self) -> Vec<String> {
        self.items().into_iter().cloned().collect()
    }
}

/// `path`, given as argument `what`, is absolute (when it is known: a source path is often
/// another task's output).
fn check_absolute(what: &str, path: Option<&String>) -> Result<(), ArgsError> {
    match path {
        Some(path) if !path.starts_with('/') => Err(ArgsError::invalid(
            what,
            format!("{what} must be an absolute path on the host, got {path:?}"),
        )),
        _ => Ok(()),
    }
}

impl<S: Stage> Validate for ScpArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        let srcs: Vec<Option<&String>> = self.src.items().into_iter().map(S::known).collect();
        if srcs.is_empty() {
            return Err(ArgsError::invalid("src", "src must name at least one path"));
        }
        if srcs.iter().flatten().any(|s| s.trim().is_empty()) {
            return Err(ArgsError::invalid("src", "src paths must not be empty"));
        }
        if let Some(local) = &self.to_controller {
            if self.from.is_some() || self.dest.is_some() {
                return Err(ArgsError::invalid(
                    "to_controller",
                    "to_controller copies from this task's host: give no `from` or `dest` with it",
                ));
            }
            if self.owner.is_some() || self.group.is_some() {
                let owner = if self.owner.is_some() { "owner" } else { "group" };
                return Err(ArgsError::invalid(
                    owner,
                    "owner and group cannot be set on the controller (to_controller)",
                ));
            }
            if local.trim().is_empty() {
                return Err(ArgsError::invalid("to_controller", "to_controller must not be empty"));
            }
            srcs.iter().try_for_each(|s| check_absolute("src", *s))?;
        } else {
            let Some(from) = &self.from else {
                return Err(ArgsError::invalid(
                    "",
                    format!(
                        "missing `from`: the source host's name, or {CONTROLLER:?} (or use `to_controller` to copy to the controller)"
                    ),
                ));
            };
            if from.trim().is_empty() {
                return Err(ArgsError::invalid("from", "from must name a host or \"controller\""));
            }
            if self.dest.is_none() {
                return Err(ArgsError::invalid(
                    "",
                    "missing `dest`: where to put the files on this task's host",
                ));
            }
            if from != CONTROLLER {
                srcs.iter().try_for_each(|s| check_absolute("src", *s))?;
            }
        }
        if let Some(p) = self.exclude.iter().find(|p| p.trim_matches('/').is_empty()) {
            return Err(ArgsError::invalid("exclude", format!("exclude pattern {p:?} matches nothing")));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn args(value: Value) -> Result<ScpArgs, String> {
        contract::args::from_value::<ScpArgs>(value).and_then(Validate::validate).map_err(|e| e.to_string())
    }

    #[test]
    fn arguments_name_what_is_wrong() {
        assert!(args(json!({"from": "etcd0", "src": "/a", "dest": "/b"})).is_ok());
        assert!(args(json!({"from": "controller", "src": "rel/x", "dest": "/b"})).is_ok());
        assert!(args(json!({"src": ["/a", "/b"], "to_controller": "out/"})).is_ok());
        let marker = format!("{}output|3|path{}", contract::deferred::open(), contract::deferred::CLOSE);
        assert!(args(json!({"from": "etcd0", "src": marker, "dest": "/b"})).is_ok());

        let err = |v: Value| args(v).unwrap_err();
        assert!(err(json!({"src": "/a", "dest": "/b"})).contains("missing `from`"));
        assert!(err(json!({"from": "etcd0", "src": "/a"})).contains("missing `dest`"));
        assert!(err(json!({"from": "etcd0", "src": "a", "dest": "/b"})).contains("src must be an absolute"));
        assert!(
            err(json!({"from": "etcd0", "src": "/a", "dest": "b"}))
                .contains("argument `dest` must be an absolute path, got the string \"b\"")
        );
        assert!(err(json!({"from": "etcd0", "src": [], "dest": "/b"})).contains("at least one"));
        assert!(err(json!({"from": "x", "src": "/a", "to_controller": "o"})).contains("no `from` or `dest`"));
        assert!(err(json!({"src": "/a", "to_controller": "o", "owner": "root"})).contains("owner and group"));
        assert!(err(json!({"from": "e", "src": 3, "dest": "/b"})).contains("a path or a list of paths"));
        assert!(
            err(json!({"from": "e", "src": "/a", "dest": "/b", "excludes": []})).contains("unknown argument")
        );
        assert!(err(json!({"from": "e", "src": "/a", "dest": "/b", "mode": "999"})).contains("invalid mode"));
    }
}
