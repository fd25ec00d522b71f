//! `sysctl`: kernel settings persisted in `/etc/sysctl.d/FILE.conf` and applied to the
//! running kernel.
//!
//! Planning is two reads: the file (through `file`'s content planning: hash, diff, atomic
//! write) and the live value of each key from `/proc/sys` in one round trip. Applying writes
//! the file, then runs `sysctl -w` for exactly the keys whose live value differs.

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};

use crate::builtin::file;
use crate::validate::Validate;
use contract::arg::{Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Effect, Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::run_checked;
use contract::shell::{join, quote};

/// Sets kernel parameters now and at every boot: writes `/etc/sysctl.d/FILE.conf` holding
/// exactly `settings` (one `key = value` line each, sorted), and sets each key whose live value
/// (read from `/proc/sys`) differs with `sysctl -w`. Keys are dotted names
/// (`net.ipv4.ip_forward`); a key the running kernel does not have is an error (`net.bridge.*`
/// needs the `br_netfilter` module: see `modprobe`). Values are compared with their
/// whitespace collapsed (`4096 16384` matches `4096\t16384`). A kernel that refuses a value
/// (in a container, most keys outside the network namespace are read-only) fails the task,
/// naming the key, after the file was written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "SysctlArgs", bound = "")]
pub struct SysctlArgs<S: Stage = Sealed> {
    /// The file's name in /etc/sysctl.d, without `.conf`: letters, digits and `_-.`, e.g. "k8s" or "99-engine".
    pub file: String,
    /// Each key (a dotted name) and its value, a string or a whole number, e.g. #{ "net.ipv4.ip_forward": 1 }.
    pub settings: BTreeMap<String, S::Of<SysctlValue>>,
}

/// A setting's value: a string or a number, kept as the text sysctl reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlValue(String);

impl<'de> Deserialize<'de> for SysctlValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
        }
        let text = match Raw::deserialize(deserializer)
            .map_err(|_| D::Error::custom("a sysctl value is a string or a whole number"))?
        {
            Raw::Text(text) => text,
            Raw::Int(n) => n.to_string(),
        };
        if text.trim().is_empty() || text.contains(['\n', '\r', '\0']) {
            return Err(D::Error::custom(format!("a sysctl value is one non-empty line, got {text:?}")));
        }
        Ok(SysctlValue(text.trim().to_owned()))
    }
}

contract::string_schema!(SysctlValue);

contract::resolve_struct!(SysctlArgs<S> { file, settings });

/// A name for a file in a `*.d` folder: letters, digits and `_-.`, not starting with `.` or `-`.
pub(crate) fn is_conf_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// A dotted kernel parameter name: segments of letters, digits, `_` and `-`, so that it maps
/// to one path under /proc/sys and can be nothing else (no `/`, no `..`, no option).
pub(crate) fn is_sysctl_key(key: &str) -> bool {
    key.len() <= 200
        && key.contains('.')
        && key.split('.').all(|s| {
            !s.is_empty()
                && !s.starts_with('-')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        })
}

impl<S: Stage> Validate for SysctlArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if !is_conf_name(&self.file) || self.file.ends_with(".conf") {
            return Err(ArgsError::invalid(
                "file",
                format!(
                    "file {:?} must be a bare name for /etc/sysctl.d/NAME.conf: letters, digits and _-., without .conf",
                    self.file
                ),
            ));
        }
        if self.settings.is_empty() {
            return Err(ArgsError::invalid("settings", "settings must not be empty"));
        }
        if let Some(key) = self.settings.keys().find(|k| !is_sysctl_key(k)) {
            return Err(ArgsError::invalid(
                "settings",
                format!(
                    "{key:?} is not a kernel parameter name: dotted words like net.ipv4.ip_forward (no slashes)"
                ),
            ));
        }
        Ok(self)
    }
}

impl SysctlArgs<Resolved> {
    fn path(&self) -> String {
        format!("/etc/sysctl.d/{}.conf", self.file)
    }

    fn content(&self) -> String {
        self.settings.iter().map(|(k, v)| format!("{k} = {}\n", v.0)).collect()
    }
}

/// Collapses runs of whitespace, as /proc/sys prints vectors with tabs.
fn normal(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads the live value of each key: `#key KEY` then the value, or `#missing`, or
/// `#unreadable`. One round trip; the keys are checked names, each quoted.
fn live_script(keys: &[&String]) -> String {
    format!(
        "for k in {}; do p=/proc/sys/$(printf '%s' \"$k\" | tr . /); echo \"#key $k\"; \
         if [ ! -e \"$p\" ]; then echo '#missing'; elif v=$(cat -- \"$p\" 2>/dev/null); then \
         printf '%s\\n' \"$v\" | head -n 1; else echo '#unreadable'; fi; done",
        join(keys.iter().map(|k| k.as_str()))
    )
}

/// What the host said of each key: `Some(value)`, or why it has none. Hostile output: only
/// lines after a `#key` for a key that was asked count.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Live {
    Value(String),
    Missing,
    Unreadable,
}

fn parse_live(text: &str, keys: &[&String]) -> BTreeMap<String, Live> {
    let mut found = BTreeMap::new();
    let mut current: Option<&String> = None;
    for line in text.lines() {
        if let Some(key) = line.strip_prefix("#key ") {
            current = keys.iter().copied().find(|k| k.as_str() == key);
            continue;
        }
        let Some(key) = current.take() else { continue };
        let live = match line {
            "#missing" => Live::Missing,
            "#unreadable" => Live::Unreadable,
            value => Live::Value(normal(value)),
        };
        found.insert(key.clone(), live);
    }
    found
}

/// The `sysctl` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Sysctl {
    args: SysctlArgs<Resolved>,
}

impl Sysctl {
    pub fn new(args: SysctlArgs<Resolved>) -> Self {
        Self { args }
    }
}

#[async_trait]
impl Module for Sysctl {
    fn name(&self) -> &'static str {
        "sysctl"
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.path()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let path = args.path();
        let keys: Vec<&String> = args.settings.keys().collect();
        let out = run_checked(cx.host, Exec::new(live_script(&keys)).effect(Effect::ReadOnly)).await?;
        let live = parse_live(&out.stdout_text(), &keys);
        let mut set = Vec::new();
        let mut changes = Vec::new();
        for (key, value) in &args.settings {
            match live.get(key) {
                Some(Live::Value(now)) if *now == normal(&value.0) => {}
                Some(Live::Value(now)) => {
                    changes.push(format!("{key}: {now} -> {} (running kernel)", value.0));
                    set.push((key.clone(), value.0.clone()));
                }
                Some(Live::Missing) => {
                    let hint = if key.starts_with("net.bridge.") {
                        " (net.bridge.* appear once the br_netfilter module is loaded: see `modprobe`)"
                    } else {
                        ""
                    };
                    return Err(ModuleError::Refused(format!(
                        "the running kernel has no parameter {key} (/proc/sys/{} is absent){hint}",
                        key.replace('.', "/")
                    )));
                }
                Some(Live::Unreadable) | None => {
                    return Err(ModuleError::Refused(format!(
                        "cannot read the live value of {key} from /proc/sys on {}",
                        cx.host.name()
                    )));
                }
            }
        }
        let content = args.content();
        let file_plan = file::plan_owned_file(cx.host, &path, content.as_bytes(), cx.options).await?;
        if !file_plan.is_change() && set.is_empty() {
            return Ok(Plan::unchanged());
        }
        let mut all = file_plan.changes;
        all.extend(changes);
        Ok(Plan {
            changes: all,
            diff: file_plan.diff,
            action: Some(Box::new(SysctlAction { write: file_plan.action, file: path, set })),
            ..Plan::default()
        })
    }
}

/// The planned file write (if any), then `sysctl -w` of exactly the keys planned.
#[derive(Debug)]
struct SysctlAction {
    write: Option<Box<dyn Action>>,
    file: String,
    set: Vec<(String, String)>,
}

#[async_trait]
impl Action for SysctlAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        if let Some(write) = self.write {
            write.apply(host).await?;
        }
        for (key, value) in &self.set {
            let command = format!("sysctl -q -w -- {}", quote(&format!("{key}={value}")));
            let out = host.exec(Exec::new(command)).await?;
            if !out.success() {
                return Err(ModuleError::Refused(format!(
                    "the running kernel refused {key} = {value}: {}; {} holds it for the next boot",
                    out.stderr_tail(3).trim(),
                    self.file
                )));
            }
        }
        Ok(Outputs::new())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::resolved;

    #[test]
    fn keys_are_dotted_names_and_nothing_else() {
        for good in ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "vm.swappiness"] {
            assert!(is_sysctl_key(good), "{good}");
        }
        for bad in
            ["net/ipv4/ip_forward", "net..x", "../../etc", "-a", "net.-w", "swappiness", "a.b c", "a.b=1"]
        {
            assert!(!is_sysctl_key(bad), "{bad}");
        }
        let error = resolved::<SysctlArgs>(json!({ "file": "k8s", "settings": { "net/ipv4/x": 1 } }));
        assert_eq!(
            error.unwrap_err().to_string(),
            "\"net/ipv4/x\" is not a kernel parameter name: dotted words like net.ipv4.ip_forward (no slashes)"
        );
        assert!(resolved::<SysctlArgs>(json!({ "file": "../x", "settings": { "a.b": 1 } })).is_err());
        assert!(resolved::<SysctlArgs>(json!({ "file": "k8s.conf", "settings": { "a.b": 1 } })).is_err());
    }

    #[test]
    fn the_file_holds_sorted_settings_with_numbers_as_text() {
        let args = resolved::<SysctlArgs>(
            json!({ "file": "k8s", "settings": { "net.ipv4.ip_forward": 1, "net.bridge.x": " 1 " } }),
        )
        .unwrap();
        assert_eq!(args.path(), "/etc/sysctl.d/k8s.conf");
        assert_eq!(args.content(), "net.bridge.x = 1\nnet.ipv4.ip_forward = 1\n");
    }

    #[test]
    fn live_values_are_read_from_hostile_output() {
        let (a, b, c) = ("a.b".to_owned(), "c.d".to_owned(), "e.f".to_owned());
        let keys = [&a, &b, &c];
        let text =
            "junk\n#key a.b\n4096\t16384 \n#key c.d\n#missing\n#key zz.top\n1\n#key e.f\n#unreadable\n";
        let live = parse_live(text, &keys);
        assert_eq!(live["a.b"], Live::Value("4096 16384".into()));
        assert_eq!(live["c.d"], Live::Missing);
        assert_eq!(live["e.f"], Live::Unreadable);
        assert_eq!(live.len(), 3, "a key that was not asked is ignored");
    }
}
