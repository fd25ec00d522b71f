//! Loading a playbook: evaluate the Rhai script in a sandbox; it only records tasks into a
//! [`PlanBuilder`], and [`load`] seals that into a [`Plan`]. Nothing connects to any host here.

mod api;
pub(crate) mod api_docs;
mod handles;
mod hints;
mod resolver;
pub(crate) mod signature;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

pub use handles::{HostHandle, TaskHandle};
use rhai::{Engine, EvalAltResult, Position};

use crate::error::Error;
use crate::inventory::{Inventory, Vars};
use crate::plan::{Plan, PlanBuilder};
use crate::redact::Redactor;

/// Sandbox limits for playbook evaluation. A runaway script stops with an error, at the line
/// that crossed the limit.
///
/// Rhai's own limits bound one value and the work done; the plan's limits bound what the script
/// leaves behind, which the engine copies into every task it makes: a script can hand the same
/// 8 MiB string to ten thousand tasks within every other limit. They are checked before a task's
/// arguments are copied, so the script stops before the controller's memory fills.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// `import` statements evaluated in one run (each library is loaded once, then shared).
    pub max_imports: usize,
    /// Tasks (and handlers) in the plan: 100,000 (a thousand hosts with a hundred tasks each).
    pub max_tasks: usize,
    /// The bytes of every task's name and arguments together (strings and keys by their length,
    /// other values as 8 bytes): 256 MiB (a 1 MiB file to 250 hosts).
    pub max_plan_bytes: usize,
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
            max_imports: 1_000,
            max_tasks: 100_000,
            max_plan_bytes: 256 << 20,
        }
    }
}

/// How to load a playbook.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-e` variables (see [`crate::inventory::parse_extra_vars`]), read with `param("key")`.
    pub extra_vars: Vars,
    pub limits: Limits,
    /// Library folders (`--lib DIR`) searched by `import`, after the importing file's own
    /// folder and `lib/` beside the playbook.
    pub lib_dirs: Vec<PathBuf>,
    /// Where `secret(value)` registers its value: the caller hides what it holds in
    /// everything it shows (events, logs, DOT, errors). See [`crate::redact`].
    pub redactor: Arc<Redactor>,
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
    let base_dir = playbook_dir(path);
    let folders = resolver::Folders::default();
    let cx = api::Context {
        plan: plan.clone(),
        inventory: Rc::new(inventory.clone()),
        extra_vars: Rc::new(options.extra_vars.clone()),
        default_file: file.clone(),
        base_dir: base_dir.clone(),
        folders: folders.clone(),
        redactor: options.redactor.clone(),
        budget: api::Budget::new(&options.limits),
    };
    let defined = resolver::Defined::default();
    let resolver = resolver::ImportResolver::new(
        file.clone(),
        path,
        resolver::Folder::root(&base_dir),
        library_dirs(&base_dir, &options.lib_dirs)?,
        folders,
        defined.clone(),
        plan.clone(),
    );

    let mut engine = sandboxed_engine(&options.limits);
    engine.set_module_resolver(resolver);
    api::register(&mut engine, &cx);

    let result = engine
        .compile(text)
        .map_err(|e| ScriptError::at(hints::parse_error(&e.0, text), e.position()))
        .and_then(|mut ast| {
            ast.set_source(file.to_string());
            // The playbook's own functions are claimed first; a library repeating one is refused.
            defined.claim(&file, &ast).map_err(|e| ScriptError::at(e.to_string(), Position::NONE))?;
            engine.run_ast(&ast).map_err(|e| ScriptError::from_eval(&e, &file))
        });
    drop(engine);
    if let Err(error) = result {
        let location = cx.location_at(error.file.as_deref(), error.position);
        let help = (!error.trail.is_empty()).then(|| error.trail.join("\n"));
        plan.borrow_mut().error(error.message, location, help);
    }
    // Handles the script kept (in closures it returned, say) still point at the cell; take the
    // builder out rather than requiring that every handle is gone.
    let builder = plan.replace(PlanBuilder::new(path.to_owned()));
    Ok(builder.seal(inventory)?)
}

/// The engine [`load`] evaluates playbooks in (same sandbox, same API), over an empty
/// inventory: `engine docs` documents the functions registered on it.
pub(crate) fn reference_engine() -> Engine {
    let path = Path::new("playbook.rhai");
    let cx = api::Context {
        plan: Rc::new(RefCell::new(PlanBuilder::new(path.to_owned()))),
        inventory: Rc::new(Inventory::default()),
        extra_vars: Rc::new(Vars::new()),
        default_file: Arc::from("playbook.rhai"),
        base_dir: playbook_dir(path),
        folders: resolver::Folders::default(),
        redactor: Arc::default(),
        budget: api::Budget::new(&Limits::default()),
    };
    let mut engine = sandboxed_engine(&Limits::default());
    api::register(&mut engine, &cx);
    engine
}

fn sandboxed_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_modules(limits.max_imports);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
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

/// The library folders `import` searches after the importer's own folder: `lib/` beside the
/// playbook when it exists, then `extra` (each must be a folder).
fn library_dirs(base_dir: &Path, extra: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let beside = base_dir.join("lib");
    let mut dirs: Vec<PathBuf> = beside.is_dir().then_some(beside).into_iter().collect();
    for dir in extra {
        if !dir.is_dir() {
            return Err(Error::Usage(format!("library folder {} (--lib) is not a folder", dir.display())));
        }
        dirs.push(dir.clone());
    }
    Ok(dirs)
}

/// A script error reduced to what a user needs: a readable message, the file and position to
/// point at (inside a library when it happened there), and the chain of calls and imports
/// that led there, outermost last.
#[derive(Debug)]
struct ScriptError {
    message: String,
    /// The source name of the file the position is in; `None` for the playbook.
    file: Option<String>,
    position: Position,
    trail: Vec<String>,
}

impl ScriptError {
    fn at(message: String, position: Position) -> Self {
        Self { message, file: None, position, trail: Vec::new() }
    }

    /// Follows function calls and imports down to the error that started it all.
    fn from_eval(error: &EvalAltResult, playbook: &str) -> Self {
        let mut trail = Vec::new();
        let mut file: Option<String> = None;
        let mut error = error;
        loop {
            let here = |pos: Position| {
                format!("{}:{}", file.as_deref().unwrap_or(playbook), pos.line().unwrap_or(0))
            };
            match error {
                EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
                    let what =
                        if name.starts_with("anon$") { "a closure".to_owned() } else { format!("{name}()") };
                    trail.push(format!("in {what}, called at {}", here(*pos)));
                    if !source.is_empty() {
                        file = Some(source.clone());
                    }
                    error = inner;
                }
                EvalAltResult::ErrorInModule(name, inner, pos) => {
                    trail.push(format!("in {name}, imported at {}", here(*pos)));
                    file = Some(name.clone());
                    error = inner;
                }
                _ => break,
            }
        }
        trail.reverse();
        let (message, position) = script_error(error);
        Self { message, file: file.filter(|f| f != playbook), position, trail }
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
        EvalAltResult::ErrorFunctionNotFound(signature, _) => hints::function_not_found(signature),
        EvalAltResult::ErrorDotExpr(message, _) => hints::dot_error(message),
        EvalAltResult::ErrorTooManyModules(_) => "too many imports (the sandbox's limit)".to_owned(),
        other => {
            let text = other.to_string();
            // Rhai appends " (line L, position P)"; the location is reported separately.
            text.split(" (line ").next().unwrap_or(&text).to_owned()
        }
    };
    (message, error.position())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(playbook: &str, limits: Limits) -> crate::plan::PlanError {
        let inventory = Inventory::parse("all:\n  hosts:\n    h0: {}\n", Path::new("inv.yml")).unwrap();
        let options = LoadOptions { limits, ..LoadOptions::default() };
        match load_source(Path::new("p.rhai"), playbook, &inventory, &options) {
            Err(Error::Plan(mut e)) => e.errors.remove(0),
            other => panic!("not refused: {other:?}"),
        }
    }

    /// The task limit stops a loop that adds tasks without end, at the task that crossed it.
    #[test]
    fn the_task_limit_stops_the_script_at_the_task_past_it() {
        let e = refused(
            "let h = host(\"h0\");\nfor i in 0..1000 {\n  h.command(`t${i}`, #{ argv: [\"true\"] });\n}\n",
            Limits { max_tasks: 3, ..Limits::default() },
        );
        assert_eq!(
            e.message,
            "the plan would hold more than 3 tasks (the sandbox's limit on tasks): is a loop adding tasks without end?"
        );
        assert_eq!((e.location.line, e.location.col), (3, 5));
    }

    /// The size limit counts names, keys and strings across tasks, before they are copied.
    #[test]
    fn the_size_limit_counts_every_tasks_names_and_arguments() {
        let playbook = "let h = host(\"h0\");\nlet big = \"\";\nbig.pad(1024 * 1024, 'x');\n\
                        for i in 0..10 {\n  h.file(`f${i}`, #{ path: \"/x\", content: [big, #{ k: big }] });\n}\n";
        let e = refused(playbook, Limits { max_plan_bytes: 5 << 20, ..Limits::default() });
        assert!(
            e.message.starts_with("the plan's task names and arguments would exceed 5 MiB"),
            "{}",
            e.message
        );
        assert!(e.message.contains("this task adds 2049 KiB to 4 MiB"), "{}", e.message);
        assert_eq!(e.location.line, 5);
    }
}
