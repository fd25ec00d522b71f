//! Every module the engine knows, with the one schema that both parses and documents its arguments.

use schemars::{JsonSchema, Schema, schema_for};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::builtin::certgen::{Certgen, CertgenArgs};
use crate::builtin::command::{Command, CommandArgs};
use crate::builtin::file::{File, FileArgs};
use crate::builtin::kubeadm::{Kubeadm, KubeadmArgs};
use crate::builtin::kubectl::{Kubectl, KubectlArgs};
use crate::builtin::package::{Package, PackageArgs};
use crate::builtin::replace_line::{ReplaceLine, ReplaceLineArgs};
use crate::builtin::scp::{Scp, ScpArgs};
use crate::builtin::systemd::{Systemd, SystemdArgs};
use crate::builtin::template::{Template, TemplateArgs};
use crate::builtin::wait::{Wait, WaitArgs};
use crate::error::ArgsError;
use crate::module::Module;

/// A module as the registry knows it.
#[derive(Debug, Clone, Copy)]
pub struct ModuleSpec {
    /// The name playbooks use.
    pub name: &'static str,
    parse: fn(Value) -> Result<Box<dyn Module>, ArgsError>,
    schema: fn() -> Schema,
}

impl ModuleSpec {
    /// Parses arguments strictly: unknown fields, wrong types and invalid values are errors.
    pub fn parse(&self, args: Value) -> Result<Box<dyn Module>, ArgsError> {
        (self.parse)(args)
    }

    /// The JSON Schema of the arguments, generated from the same type that parses them.
    pub fn schema(&self) -> Schema {
        (self.schema)()
    }

    /// The module's one-paragraph description (the doc comment of its argument type).
    pub fn summary(&self) -> String {
        self.schema().get("description").and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    /// The names of the arguments the module accepts.
    pub fn argument_names(&self) -> Vec<String> {
        self.schema()
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn parse_with<A, M>(
    validate: fn(A) -> Result<A, String>,
    build: fn(A) -> M,
) -> impl Fn(Value) -> Result<Box<dyn Module>, ArgsError>
where
    A: DeserializeOwned,
    M: Module + 'static,
{
    move |value| {
        let args: A = serde_json::from_value(value).map_err(|e| ArgsError::new(e.to_string()))?;
        let args = validate(args).map_err(ArgsError::new)?;
        Ok(Box::new(build(args)) as Box<dyn Module>)
    }
}

fn schema<A: JsonSchema>() -> Schema {
    schema_for!(A)
}

/// All modules, sorted by name.
pub fn all() -> &'static [ModuleSpec] {
    const SPECS: &[ModuleSpec] = &[
        ModuleSpec {
            name: "apt",
            parse: |v| parse_with(PackageArgs::validate, Package::new)(v),
            schema: schema::<PackageArgs>,
        },
        ModuleSpec {
            name: "certgen",
            parse: |v| parse_with(CertgenArgs::validate, Certgen::new)(v),
            schema: schema::<CertgenArgs>,
        },
        ModuleSpec {
            name: "command",
            parse: |v| parse_with(CommandArgs::validate, Command::new)(v),
            schema: schema::<CommandArgs>,
        },
        ModuleSpec {
            name: "file",
            parse: |v| parse_with(FileArgs::validate, File::new)(v),
            schema: schema::<FileArgs>,
        },
        ModuleSpec {
            name: "kubeadm",
            parse: |v| parse_with(KubeadmArgs::validate, Kubeadm::new)(v),
            schema: schema::<KubeadmArgs>,
        },
        ModuleSpec {
            name: "kubectl",
            parse: |v| parse_with(KubectlArgs::validate, Kubectl::new)(v),
            schema: schema::<KubectlArgs>,
        },
        ModuleSpec {
            name: "replace_line",
            parse: |v| parse_with(ReplaceLineArgs::validate, ReplaceLine::new)(v),
            schema: schema::<ReplaceLineArgs>,
        },
        ModuleSpec {
            name: "scp",
            parse: |v| parse_with(ScpArgs::validate, Scp::new)(v),
            schema: schema::<ScpArgs>,
        },
        ModuleSpec {
            name: "systemd",
            parse: |v| parse_with(SystemdArgs::validate, Systemd::new)(v),
            schema: schema::<SystemdArgs>,
        },
        ModuleSpec {
            name: "template",
            parse: |v| parse_with(TemplateArgs::validate, Template::new)(v),
            schema: schema::<TemplateArgs>,
        },
        ModuleSpec {
            name: "wait",
            parse: |v| parse_with(WaitArgs::validate, Wait::new)(v),
            schema: schema::<WaitArgs>,
        },
    ];
    SPECS
}

/// Finds a module by name.
pub fn find(name: &str) -> Option<&'static ModuleSpec> {
    all().iter().find(|spec| spec.name == name)
}
