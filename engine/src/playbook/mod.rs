//! Loading a playbook: evaluate the Rhai script in a sandbox; it only records tasks into a
//! [`PlanBuilder`], and [`load`] seals that into a [`Plan`]. Nothing connects to any host here.

mod api;
mod handles;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

pub use handles::{HostHandle, TaskHandle};
use rhai::{Engine, EvalAltResult, Position};

use crate::error::Error;
use crate::inventory::{Inventory, Vars};
use crate::plan::{Plan, PlanBuilder};

/// Sandbox limits for playbook evaluation. A runaway script stops with an error.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 10_000_000,
            max_call_levels: 64,
            max_expr_depth: 128,
            max_string_size: 16 << 20,
            max_array_size: 20_000,
            max_map_size: 20_000,
        }
    }
}

/// How to load a playbook.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-e key=value` variables, read with `param("key")`.
    pub extra_vars: Vars,
    pub limits: Limits,
}

/// Evaluates the playbook at `path` against `inventory` and seals the resulting plan.
/// Every problem found (script errors, unknown hosts, bad arguments, cycles) is returned at once.
pub fn load(path: &Path, inventory: &Inventory, options: &LoadOptions) -> Result<Plan, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Io { what: format!("cannot read playbook {}", path.display()), source: e })?;
    load_source(path, &text, inventory, options)
}

/// [`load`] for playbook text already in memory; `path` names it in messages and anchors imports.
pub fn load_source(
    path: &Path,
    text: &str,
    inventory: &Inventory,
    options: &LoadOptions,
) -> Result<Plan, Error> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let mut builder = PlanBuilder::new(path.to_owned());
    builder.add_source(file.clone(), Arc::from(text));
    let plan = Rc::new(RefCell::new(builder));
    let cx = api::Context {
        plan: plan.clone(),
        inventory: Rc::new(inventory.clone()),
        extra_vars: Rc::new(options.extra_vars.clone()),
        default_file: file.clone(),
        base_dir: playbook_dir(path),
    };

    let mut engine = sandboxed_engine(&options.limits, path);
    api::register(&mut engine, &cx);

    let result = engine.compile(text).map_err(|e| (e.0.to_string(), e.position())).and_then(|mut ast| {
        ast.set_source(file.to_string());
        engine.run_ast(&ast).map_err(|e| script_error(&e))
    });
    drop(engine);
    if let Err((message, position)) = result {
        let location = cx.location_at(None, position);
        plan.borrow_mut().error(message, location, None);
    }
    // Handles the script kept (in closures it returned, say) still point at the cell; take the
    // builder out rather than requiring that every handle is gone.
    let builder = plan.replace(PlanBuilder::new(path.to_owned()));
    builder.seal(inventory)
}

fn sandboxed_engine(limits: &Limits, path: &Path) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
    let base = playbook_dir(path);
    engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new_with_path(base));
    engine.on_print(|text| tracing::info!(target: "playbook", "{text}"));
    engine.on_debug(
        |text, source, pos| tracing::debug!(target: "playbook", "{}:{pos}: {text}", source.unwrap_or("")),
    );
    engine
}

/// The folder a playbook's imports and templates are relative to (`.` for a bare file name).
fn playbook_dir(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// A readable message and the position to point at, for a runtime error.
fn script_error(error: &EvalAltResult) -> (String, Position) {
    let message = match error {
        EvalAltResult::ErrorRuntime(value, _) => value.to_string(),
        EvalAltResult::ErrorTooManyOperations(_) => {
            "the playbook ran too long (operation limit reached): is there an endless loop?".to_owned()
        }
        EvalAltResult::ErrorStackOverflow(_) => "the playbook recursed too deeply".to_owned(),
        other => {
            let text = other.to_string();
            // Rhai appends " (line L, position P)"; the location is reported separately.
            text.split(" (line ").next().unwrap_or(&text).to_owned()
        }
    };
    (message, error.position())
}
