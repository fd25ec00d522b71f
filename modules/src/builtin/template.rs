//! `template`: a file rendered from a Jinja2 template (minijinja), then managed like `file`.
//!
//! Rendering happens while planning, so `check` and `--diff` show the rendered result; the
//! write itself is [`file::plan_content`]'s: SHA-256 compare, atomic write, mode and owner.
//! A rendering is bounded by [`FUEL`]: past it, the task fails and names the limit.

use std::collections::BTreeMap;

use async_trait::async_trait;
use minijinja::{Environment, UndefinedBehavior};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::builtin::file::{self, WantedAttrs};
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::facts::Facts;
use contract::mode::Mode;
use contract::module::{Context, Module, Plan};
use contract::remote;

/// The template's name in minijinja's messages. Not a file name: names ending in `.html`
/// would turn on HTML auto-escaping.
const NAME: &str = "template";

/// The variable that holds the host's facts.
const FACTS: &str = "facts";

/// The work one rendering may do, in minijinja's fuel: about one per instruction and one per
/// 64 bytes of data made (output included). A million is some thousand times what the largest
/// shipped template needs, and bounds a render to about a million steps and 64 MiB: a loop
/// without end, or one that multiplies its output, fails the task instead of holding the
/// controller.
pub const FUEL: u64 = 1_000_000;

/// Renders a Jinja2 template (minijinja: `{{ x }}`, `{% for %}`, `{% if %}`, filters) and writes
/// the result to `path` like `file` with `content`: only when it differs, atomically, with
/// mode and owner. Visible in the template: every `vars` entry at the top level, and `facts`
/// (the host's facts: `facts.hostname`, `facts.default_ipv4.address`, ...), gathered only when
/// the template mentions `facts`. Using an undefined variable fails the task, naming the
/// variable and the template line; `{{ x | default("y") }}` and `{% if x is defined %}` are
/// the ways to make one optional. Blocks eat the newline after them (Ansible's `trim_blocks`),
/// and a final newline is kept. As in Jinja2, booleans print as `True`/`False` (`| lower` for
/// `true`). Output: `path`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "TemplateArgs", bound = "")]
pub struct TemplateArgs<S: Stage = Sealed> {
    /// Absolute path of the rendered file on the host.
    pub path: S::Of<AbsolutePath>,
    /// The template text. To keep it in a file beside the playbook, pass
    /// `template: template_file("etcd.conf.j2")`, which reads it when the playbook is loaded.
    pub template: String,
    /// Variables for the template, visible at its top level (`{{ name }}`). Values may be
    /// strings, numbers, booleans, lists and maps, including other tasks' outputs.
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// Permission bits as an octal string, e.g. "0644". New files default to "0644".
    #[schemars(with = "Option<String>")]
    pub mode: Option<Mode>,
    /// Owning user name.
    pub owner: Option<String>,
    /// Owning group name.
    pub group: Option<String>,
}

contract::resolve_struct!(TemplateArgs<S> { path, template, vars, mode, owner, group });

impl<S: Stage> Validate for TemplateArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        if self.vars.contains_key(FACTS) {
            return Err(ArgsError::invalid(
                "vars",
                format!("vars must not define {FACTS:?}: that name holds the host's facts"),
            ));
        }
        let env = environment();
        env.template_from_named_str(NAME, &self.template)
            .map_err(|e| ArgsError::invalid("template", describe(&e, &[])))?;
        Ok(self)
    }
}

/// The environment every template renders in: strict about undefined values, Ansible's
/// whitespace defaults, debug info so errors name the undefined variable, and [`FUEL`].
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_debug(true);
    env.set_fuel(Some(FUEL));
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env
}

/// One line that says what went wrong and where: `template line 3: `port` is undefined`.
fn describe(error: &minijinja::Error, known: &[&str]) -> String {
    let what = match error.detail() {
        _ if error.kind() == minijinja::ErrorKind::OutOfFuel => format!(
            "rendering stopped: the template ran too long or made too much text (the limit is {FUEL} \
             fuel: about as many steps, or {} MiB of text); is there a loop without end?",
            (FUEL * 64) >> 20
        ),
        Some(detail) if error.kind() == minijinja::ErrorKind::UndefinedError => detail.to_owned(),
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    let mut message = match error.line() {
        Some(line) => format!("template line {line}: {what}"),
        None => format!("template: {what}"),
    };
    if error.kind() == minijinja::ErrorKind::UndefinedError {
        if known.is_empty() {
            message.push_str(" (the template has no variables: pass them in `vars`)");
        } else {
            message.push_str(&format!(" (defined: {})", known.join(", ")));
        }
    }
    message
}

/// A JSON value as a template value.
fn to_jinja(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                minijinja::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                minijinja::Value::from(u)
            } else {
                minijinja::Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(items) => minijinja::Value::from(items.iter().map(to_jinja).collect::<Vec<_>>()),
        Value::Object(map) => minijinja::Value::from(
            map.iter().map(|(k, v)| (k.clone(), to_jinja(v))).collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// The host's facts as a template value. A fact the host reported that did not parse is
/// undefined, so a template that uses it fails (the strict environment refuses undefined
/// values) and never renders it.
fn facts_to_jinja(facts: &Facts, path: &str, value: &Value) -> minijinja::Value {
    if facts.invalid_at(path).is_some() {
        return minijinja::Value::UNDEFINED;
    }
    let inner = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::Array(items) => minijinja::Value::from(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| facts_to_jinja(facts, &inner(&i.to_string()), v))
                .collect::<Vec<_>>(),
        ),
        Value::Object(map) => minijinja::Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), facts_to_jinja(facts, &inner(k), v)))
                .collect::<BTreeMap<_, _>>(),
        ),
        other => to_jinja(other),
    }
}

/// Renders `source` with `vars` and, when given, `facts`.
pub(crate) fn render(
    source: &str,
    vars: &BTreeMap<String, Value>,
    facts: Option<&Facts>,
) -> Result<String, String> {
    let env = environment();
    let mut known: Vec<&str> = vars.keys().map(String::as_str).collect();
    let mut context: BTreeMap<String, minijinja::Value> =
        vars.iter().map(|(k, v)| (k.clone(), to_jinja(v))).collect();
    if let Some(facts) = facts {
        context.insert(FACTS.to_owned(), facts_to_jinja(facts, "", facts.value()));
        known.push(FACTS);
    }
    let template = env.template_from_named_str(NAME, source).map_err(|e| describe(&e, &known))?;
    template.render(minijinja::Value::from(context)).map_err(|e| {
        let mut message = describe(&e, &known);
        // Undefined because the host's value did not parse: say which, and what it was.
        let refused: Vec<String> =
            facts.map(Facts::invalid).unwrap_or_default().iter().map(ToString::to_string).collect();
        if e.kind() == minijinja::ErrorKind::UndefinedError && !refused.is_empty() {
            message.push_str(&format!("; refused: {}", refused.join("; ")));
        }
        message
    })
}

/// Whether `source` reads the `facts` variable (and so needs them gathered).
fn mentions_facts(source: &str) -> bool {
    let env = environment();
    env.template_from_named_str(NAME, source).is_ok_and(|t| t.undeclared_variables(false).contains(FACTS))
}

/// The `template` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct Template {
    args: TemplateArgs<Resolved>,
    wants_facts: bool,
}

impl Template {
    pub fn new(args: TemplateArgs<Resolved>) -> Self {
        let wants_facts = mentions_facts(&args.template);
        Self { args, wants_facts }
    }
}

#[async_trait]
impl Module for Template {
    fn name(&self) -> &'static str {
        "template"
    }

    fn wants_facts(&self) -> bool {
        self.wants_facts
    }

    fn probes(&self) -> Vec<String> {
        vec![self.args.path.to_string()]
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let args = &self.args;
        let rendered = render(&args.template, &args.vars, cx.facts).map_err(|why| {
            if self.wants_facts && cx.facts.is_none() {
                ModuleError::Refused(format!("{why}; the host's facts were not gathered for this run"))
            } else {
                ModuleError::Refused(why)
            }
        })?;
        let current = remote::stat(cx.host, &args.path).await?;
        let wanted = WantedAttrs {
            mode: args.mode.map(|m| m.0),
            owner: args.owner.clone(),
            group: args.group.clone(),
        };
        let mut plan =
            file::plan_content(cx.host, &args.path, current, rendered.as_bytes(), &wanted, cx.options)
                .await?;
        plan.outputs.insert("path".into(), Value::String(args.path.to_string()));
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(value: Value) -> Result<TemplateArgs<Resolved>, String> {
        crate::validate::resolved::<TemplateArgs>(value).map_err(|e| e.to_string())
    }

    fn vars(value: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn renders_vars_loops_and_keeps_the_final_newline() {
        let source = "name={{ name }}\n{% for p in peers %}\npeer {{ p.host }}:{{ p.port }}\n{% endfor %}\n";
        let out = render(
            source,
            &vars(
                json!({"name": "etcd0", "peers": [{"host": "a", "port": 2380}, {"host": "b", "port": 2380}]}),
            ),
            None,
        )
        .unwrap();
        assert_eq!(out, "name=etcd0\npeer a:2380\npeer b:2380\n");
    }

    #[test]
    fn an_undefined_variable_is_an_error_naming_it_and_its_line() {
        let source = "a={{ a }}\nb={{ b }}\nport={{ port }}\n";
        let err = render(source, &vars(json!({"a": 1, "b": 2})), None).unwrap_err();
        assert!(err.contains("template line 3"), "{err}");
        assert!(err.contains("`port` is undefined"), "{err}");
        assert!(err.contains("defined: a, b"), "{err}");

        let err = render("x\n{{ peer.addr }}\n", &vars(json!({"peer": {"name": "p"}})), None).unwrap_err();
        assert!(err.contains("template line 2") && err.contains("`peer.addr` is undefined"), "{err}");

        let err = render("{% if missing %}x{% endif %}", &BTreeMap::new(), None).unwrap_err();
        assert!(err.contains("`missing` is undefined") && err.contains("no variables"), "{err}");
    }

    #[test]
    fn defaults_and_defined_tests_make_variables_optional() {
        let source = "{{ x | default('d') }}{% if y is defined %}{{ y }}{% endif %}";
        assert_eq!(render(source, &BTreeMap::new(), None).unwrap(), "d");
    }

    #[test]
    fn facts_are_visible_when_given() {
        let facts =
            Facts::new("etcd0", json!({"hostname": "etcd0", "default_ipv4": {"address": "10.0.0.1"}}));
        let out =
            render("{{ facts.hostname }} {{ facts.default_ipv4.address }}", &BTreeMap::new(), Some(&facts));
        assert_eq!(out.unwrap(), "etcd0 10.0.0.1");
        let err = render("{{ facts.hostname }}", &BTreeMap::new(), None).unwrap_err();
        assert!(err.contains("`facts` is undefined"), "{err}");
    }

    /// A forged address never reaches a rendered file: the template that uses it fails, naming
    /// the host and the fact; one that uses only sound facts renders.
    #[test]
    fn a_fact_that_did_not_parse_fails_the_template_that_uses_it() {
        let output = "@@hostname\netcd1\n@@addr\n[{\"ifname\":\"host0\",\"addr_info\":\
                      [{\"family\":\"inet\",\"local\":\"10.0.0.2:2380\\nExecStartPost=/bin/sh\"}]}]\n\
                      @@route\n[{\"dev\":\"host0\"}]\n";
        let facts = contract::facts::parse("etcd1", output);
        let vars = BTreeMap::new();
        assert_eq!(render("name={{ facts.hostname }}", &vars, Some(&facts)).unwrap(), "name=etcd1");
        for source in ["ip={{ facts.interfaces.host0.ipv4[0] }}", "ip={{ facts.default_ipv4.address }}"] {
            let err = render(source, &vars, Some(&facts)).unwrap_err();
            assert!(err.starts_with("template line 1: "), "{err}");
            assert!(
                err.contains(r#"fact "interfaces.host0.ipv4.0" of etcd1 is not an IPv4 address: the host reported "10.0.0.2:2380\nExecStartPost=/bin/sh""#),
                "{err}"
            );
        }
    }

    #[test]
    fn wants_facts_only_when_the_template_reads_them() {
        let module = |t: &str| Template::new(args(json!({"path": "/x", "template": t})).unwrap());
        assert!(module("ip={{ facts.default_ipv4.address }}").wants_facts());
        assert!(module("{% for i in facts.interfaces %}{{ i }}{% endfor %}").wants_facts());
        assert!(!module("{{ name }} says facts").wants_facts());
        assert!(!module("{% set facts = 1 %}{{ facts }}").wants_facts());
    }

    #[test]
    fn arguments_are_checked_strictly() {
        assert!(args(json!({"path": "/x", "template": "hi"})).is_ok());
        let err = args(json!({"path": "x", "template": "hi"})).unwrap_err();
        assert!(err.contains("absolute"), "{err}");
        let err = args(json!({"path": "/x", "template": "hi", "src": "a.j2"})).unwrap_err();
        assert!(err.contains("unknown argument `src`"), "{err}");
        let err = args(json!({"path": "/x", "template": "a\n{{ x }\n"})).unwrap_err();
        assert!(err.contains("template line 2: syntax error"), "{err}");
        let err = args(json!({"path": "/x", "template": "hi", "vars": {"facts": 1}})).unwrap_err();
        assert!(err.contains("facts"), "{err}");
        assert!(args(json!({"path": "/x", "template": "hi", "mode": 644})).is_err());
    }

    /// Loops nested ten billion steps deep, and a loop that doubles its text: both stop on the
    /// fuel limit with a message naming it, instead of holding the controller.
    #[test]
    fn a_template_that_loops_without_end_is_stopped_by_its_fuel() {
        let endless =
            "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}";
        let err = render(endless, &BTreeMap::new(), None).unwrap_err();
        assert!(err.contains("rendering stopped") && err.contains("the limit is 1000000 fuel"), "{err}");
        let growing = "{% set s = namespace(t='x') %}{% for i in range(64) %}{% set s.t = s.t ~ s.t %}{% endfor %}{{ s.t }}";
        let err = render(growing, &BTreeMap::new(), None).unwrap_err();
        assert!(err.contains("rendering stopped"), "{err}");
        assert!(render("{% for i in range(1000) %}{{ i }}{% endfor %}", &BTreeMap::new(), None).is_ok());
    }

    #[test]
    fn json_values_keep_their_types() {
        let out = render(
            "{{ n + 1 }} {{ f }} {{ b }} {{ s | upper }} {{ l | length }} {{ none is none }}",
            &vars(json!({"n": 41, "f": 1.5, "b": true, "s": "x", "l": [1, 2], "none": null})),
            None,
        );
        // Booleans print the way Jinja2 prints them; `| lower` gives `true`.
        assert_eq!(out.unwrap(), "42 1.5 True X 2 True");
    }
}
