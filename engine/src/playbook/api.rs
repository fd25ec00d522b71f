//! The Rhai functions and types a playbook can use. This is the playbook API:
//!
//! ```rhai
//! let web = host("web0");                  // a host from the inventory
//! for h in group("etcd") { ... }           // the hosts of a group, in inventory order
//! web.name; web.address; web.vars.private_ip; web.groups
//! param("version"); param("version", "3.4") // -e key=value, with an optional default
//! param("replicas")                     // typed when given as -e '{"replicas": 3}' or -e @vars.yml
//! let v = load_vars("vars/main.yml");   // a YAML/JSON map beside the playbook: v.replicas
//! secret(param("db_password"))          // the value, hidden in output, logs, diffs and DOT
//!
//! let a = web.file("greeting", #{ path: "/tmp/hi", content: "hi\n" });   // one task
//! let b = web.command("stamp", #{ cmd: "date" });
//! let c = db.task("file", "copy", #{ path: "/tmp/x", content: b.stdout }); // reads b: c waits for b
//! c.after(a);            // explicit, across hosts too; also .after([a, b])
//! c.tag("config");       // for --tags; also .tags(["a", "b"])
//! web.concurrent();      // tasks on web written after this do not wait for each other
//! web.fact("default_ipv4.address")       // a fact, gathered at run time when first used
//! let restart = web.handler("systemd", "restart web", #{ name: "web", state: "restarted" });
//! a.notify(restart);     // restart runs once, after a, and only if a (or another notifier) changed
//! b.retry(#{ retries: 5, delay: 2, "until": "'healthy' in stdout" });  // `until` is a Rhai keyword: quote it
//! template_file("web.conf.j2")            // a file from the playbook's folder (from a library: the library's), as text
//! serial(group("workers"), 1, |h| { ... })  // a rolling change: n hosts at a time, batch after batch
//! budget(group("workers"), #{ max_down: 1 }, |h| { ... })  // at most 1 host's tasks under way at once ("25%" too)
//! uncordon.always();     // runs once what it waits for has ended, even after a failure (a cleanup)
//! section("Install workers")              // the tasks written from here on form a group in `engine graph`
//! to_yaml(#{ kind: "Pod" }); to_json(...)  // serialise a value (manifests, configs)
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

use super::handles::{HostHandle, HostVars, TaskHandle};
use crate::ids::TaskId;
use crate::inventory::{Inventory, Vars};
use crate::plan::refs::{self, Ref};
use crate::plan::{Args, Limit, Location, PlanBuilder, Retry, Task, When};
use crate::redact::Redactor;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Everything the registered functions share.
#[derive(Debug, Clone)]
pub(super) struct Context {
    pub(super) plan: Rc<RefCell<PlanBuilder>>,
    pub(super) inventory: Rc<Inventory>,
    pub(super) extra_vars: Rc<Vars>,
    /// The playbook's file name, for positions without a source.
    pub(super) default_file: Arc<str>,
    /// The playbook's folder: `template_file` paths are relative to it.
    pub(super) base_dir: std::path::PathBuf,
    /// The folder of each imported library: `template_file` calls made from a library are
    /// relative to the library file's own folder.
    pub(super) folders: super::resolver::Folders,
    /// Where `secret(value)` registers its value.
    pub(super) redactor: Arc<Redactor>,
    /// What the plan holds so far, against the sandbox's plan limits.
    pub(super) budget: Budget,
}

/// The plan's size so far, against [`super::Limits::max_tasks`] and
/// [`super::Limits::max_plan_bytes`]. Shared by every function the script calls (one thread).
#[derive(Debug, Clone)]
pub(super) struct Budget {
    used: Rc<std::cell::Cell<(usize, usize)>>,
    max_tasks: usize,
    max_bytes: usize,
}

impl Budget {
    pub(super) fn new(limits: &super::Limits) -> Self {
        Self { used: Rc::default(), max_tasks: limits.max_tasks, max_bytes: limits.max_plan_bytes }
    }

    /// Counts one more task of `bytes`, or says which limit it would cross.
    fn take(&self, bytes: usize) -> Result<(), String> {
        let (tasks, used) = self.used.get();
        if tasks >= self.max_tasks {
            return Err(format!(
                "the plan would hold more than {} tasks (the sandbox's limit on tasks): is a loop adding tasks without end?",
                self.max_tasks
            ));
        }
        let total = used.saturating_add(bytes);
        if total > self.max_bytes {
            return Err(format!(
                "the plan's task names and arguments would exceed {} MiB (the sandbox's limit on a plan's size; \
                 this task adds {} KiB to {} MiB): is a large value copied into many tasks?",
                self.max_bytes >> 20,
                bytes.div_ceil(1024),
                used >> 20
            ));
        }
        self.used.set((tasks + 1, total));
        Ok(())
    }
}

/// The bytes a value will take in a task: strings and map keys by their length, every other
/// value as 8. Measured on the script's own value, before anything is copied.
fn size_of(value: &Dynamic) -> usize {
    if let Ok(text) = value.as_immutable_string_ref() {
        text.len()
    } else if let Ok(map) = value.as_map_ref() {
        map.iter().map(|(k, v)| k.len().saturating_add(size_of(v))).fold(0, usize::saturating_add)
    } else if let Ok(items) = value.as_array_ref() {
        items.iter().map(size_of).fold(0, usize::saturating_add)
    } else {
        8
    }
}

impl Context {
    fn location(&self, ctx: &NativeCallContext) -> Location {
        self.location_at(ctx.call_source(), ctx.call_position())
    }

    pub(super) fn location_at(&self, source: Option<&str>, position: Position) -> Location {
        Location {
            file: source.map_or_else(|| self.default_file.clone(), Arc::from),
            line: position.line().unwrap_or(0),
            col: position.position().unwrap_or(0),
        }
    }

    /// `path` relative to the calling file's own folder (the playbook's, or a library's), and
    /// confined to that file's root (the playbook's folder, or its library folder): playbooks
    /// read files from their own folder tree, never from elsewhere on the controller.
    fn local_file(&self, ctx: &NativeCallContext, path: &str, what: &str) -> RhaiResult<std::path::PathBuf> {
        let fail = |message: String| runtime(message, ctx.call_position());
        let source = ctx.call_source().unwrap_or(&self.default_file);
        let (folder, whose) = match self.folders.of(source) {
            Some(folder) if source != &*self.default_file => (folder, "library"),
            _ => (super::resolver::Folder::root(&self.base_dir), "playbook"),
        };
        let full = folder.path().join(path);
        let (Ok(base), Ok(real)) = (folder.root.canonicalize(), full.canonicalize()) else {
            return Err(fail(format!("cannot read {what} {}: no such file", full.display())));
        };
        if !real.starts_with(&base) {
            return Err(fail(format!("{what} {path:?} is outside the {whose}'s folder {}", base.display())));
        }
        Ok(real)
    }

    fn host_handle(&self, name: &str) -> Option<HostHandle> {
        let host = self.inventory.host(name)?;
        let address = host.connection().map(|c| c.address).unwrap_or_else(|_| name.to_owned());
        let map =
            rhai::serde::to_dynamic(&host.vars).ok().and_then(|d| d.try_cast::<Map>()).unwrap_or_default();
        Some(HostHandle {
            name: host.name.clone(),
            address,
            vars: HostVars { host: host.name.clone(), map, known: true },
            groups: host.groups.iter().map(|g| Dynamic::from(g.clone())).collect(),
        })
    }

    fn groups_help(&self) -> String {
        format!("the inventory's groups are: {}", self.inventory.group_names().join(", "))
    }

    fn add_task(
        &self,
        ctx: &NativeCallContext,
        host: &HostHandle,
        module: &'static str,
        name: &str,
        args: Map,
        handler: bool,
    ) -> RhaiResult<TaskHandle> {
        let location = self.location(ctx);
        if name.trim().is_empty() {
            return Err(runtime(
                "a task needs a name, e.g. h.file(\"write config\", #{...})",
                ctx.call_position(),
            ));
        }
        let bytes = args
            .iter()
            .map(|(k, v)| k.len().saturating_add(size_of(v)))
            .fold(name.len(), usize::saturating_add);
        self.budget.take(bytes).map_err(|why| runtime(why, ctx.call_position()))?;
        let args: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(args)).map_err(|e| {
            runtime(
                format!(
                    "task {name:?}: arguments must be plain values (strings, numbers, maps, arrays): {e}"
                ),
                ctx.call_position(),
            )
        })?;
        let task = Task {
            id: TaskId(0), // assigned by the builder
            name: name.to_owned(),
            host: host.name.clone(),
            module,
            args: Args::new(args),
            tags: Vec::new(),
            location,
            section: None,
            handler,
            always: false,
            when: None,
            retry: None,
            parsed: None,
            sealed: None,
        };
        let id = self.plan.borrow_mut().add_task(task);
        Ok(TaskHandle { id, name: name.to_owned(), host: host.name.clone(), plan: self.plan.clone() })
    }
}

fn find_module(ctx: &NativeCallContext, module: &str) -> RhaiResult<&'static str> {
    match modules::registry::find(module) {
        Some(spec) => Ok(spec.name),
        None => {
            let known: Vec<&str> = modules::registry::all().iter().map(|s| s.name).collect();
            Err(runtime(
                match contract::suggest::did_you_mean(module, known.iter().copied()) {
                    suggestion if suggestion.is_empty() => {
                        format!("unknown module {module:?}; modules are: {}", known.join(", "))
                    }
                    suggestion => format!("unknown module {module:?}{suggestion}"),
                },
                ctx.call_position(),
            ))
        }
    }
}

fn runtime(message: impl Into<String>, position: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(message.into()), position))
}

/// Registers the playbook API on `engine`.
pub(super) fn register(engine: &mut Engine, cx: &Context) {
    engine.register_type_with_name::<HostHandle>("Host");
    engine.register_type_with_name::<HostVars>("Vars");
    engine.register_type_with_name::<TaskHandle>("Task");

    // ---- hosts and groups
    let c = cx.clone();
    engine.register_fn("host", move |ctx: NativeCallContext, name: &str| -> HostHandle {
        c.host_handle(name).unwrap_or_else(|| {
            let hosts = c.inventory.hosts().iter().map(|h| h.name.as_str());
            c.plan.borrow_mut().error(
                format!("unknown host {name:?}{}", contract::suggest::did_you_mean(name, hosts)),
                c.location(&ctx),
                Some(c.groups_help()),
            );
            HostHandle {
                name: name.to_owned(),
                address: String::new(),
                vars: HostVars { host: name.to_owned(), map: Map::new(), known: false },
                groups: Array::new(),
            }
        })
    });
    let c = cx.clone();
    engine.register_fn("group", move |ctx: NativeCallContext, name: &str| -> Array {
        match c.inventory.group(name) {
            Some(members) => members.iter().filter_map(|h| c.host_handle(h)).map(Dynamic::from).collect(),
            None => {
                let groups = c.inventory.group_names();
                c.plan.borrow_mut().error(
                    format!("unknown group {name:?}{}", contract::suggest::did_you_mean(name, groups)),
                    c.location(&ctx),
                    Some(c.groups_help()),
                );
                Array::new()
            }
        }
    });
    let c = cx.clone();
    engine.register_fn("has_group", move |name: &str| -> bool { c.inventory.group(name).is_some() });
    let c = cx.clone();
    engine.register_fn("hosts", move || -> Array {
        c.inventory.hosts().iter().filter_map(|h| c.host_handle(&h.name)).map(Dynamic::from).collect()
    });
    engine.register_get("name", |h: &mut HostHandle| h.name.clone());
    engine.register_get("address", |h: &mut HostHandle| h.address.clone());
    engine.register_get("vars", |h: &mut HostHandle| h.vars.clone());
    // `h.vars.x` falls back to this indexer (Rhai does so for a property a type lacks). A
    // missing variable stops the script here: carrying on with `()` would add confusing
    // errors wherever the value goes next.
    engine.register_indexer_get(
        |ctx: NativeCallContext, v: &mut HostVars, name: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            match v.map.get(name) {
                Some(value) => Ok(value.clone()),
                None if !v.known => Ok(Dynamic::UNIT),
                None => {
                    let names = v.map.keys().map(|k| k.as_str());
                    Err(runtime(
                        format!(
                            "host {:?} has no variable {name:?}{} (a host's variables come from the inventory \
                             files and the group_vars/ and host_vars/ beside the inventory and the playbook; \
                             for an optional one write h.vars.get({name:?}) ?? default)",
                            v.host,
                            contract::suggest::did_you_mean(name, names)
                        ),
                        ctx.call_position(),
                    ))
                }
            }
        },
    );
    engine.register_fn("get", |v: &mut HostVars, name: &str| -> Dynamic {
        v.map.get(name).cloned().unwrap_or(Dynamic::UNIT)
    });
    engine.register_fn("contains", |v: &mut HostVars, name: &str| -> bool { v.map.contains_key(name) });
    engine.register_fn("keys", |v: &mut HostVars| -> Array {
        v.map.keys().map(|k| Dynamic::from(k.to_string())).collect()
    });
    engine.register_fn("to_map", |v: &mut HostVars| -> Map { v.map.clone() });
    engine.register_fn("to_string", |v: &mut HostVars| format!("{:?}", v.map));
    engine.register_fn("to_debug", |v: &mut HostVars| format!("{:?}", v.map));
    engine.register_get("groups", |h: &mut HostHandle| h.groups.clone());
    engine.register_fn("to_string", |h: &mut HostHandle| h.name.clone());
    engine.register_fn("to_debug", |h: &mut HostHandle| format!("host({:?})", h.name));
    let c = cx.clone();
    engine.register_fn("concurrent", move |h: &mut HostHandle| c.plan.borrow_mut().set_concurrent(&h.name));

    // ---- extra vars (-e key=value)
    let c = cx.clone();
    engine.register_fn("param", move |ctx: NativeCallContext, name: &str| -> RhaiResult<Dynamic> {
        match c.extra_vars.get(name) {
            Some(v) => rhai::serde::to_dynamic(v),
            None => Err(runtime(
                format!("variable {name:?} is not set; pass it with -e {name}=VALUE or give a default: param({name:?}, ...)"),
                ctx.call_position(),
            )),
        }
    });
    let c = cx.clone();
    engine.register_fn("param", move |name: &str, default: Dynamic| -> RhaiResult<Dynamic> {
        match c.extra_vars.get(name) {
            Some(v) => rhai::serde::to_dynamic(v),
            None => Ok(default),
        }
    });

    // ---- secrets: secret(value) is value, hidden wherever engine shows text (see crate::redact)
    let c = cx.clone();
    engine.register_fn("secret", move |ctx: NativeCallContext, value: Dynamic| -> RhaiResult<Dynamic> {
        let text = if value.is_string() {
            value.clone().into_string().unwrap_or_default()
        } else if value.is_int() || value.is_float() || value.is_bool() {
            value.to_string()
        } else {
            return Err(runtime(
                format!("secret(...) takes a string or a number, found {}", value.type_name()),
                ctx.call_position(),
            ));
        };
        c.redactor.add(&text);
        Ok(value)
    });

    // ---- module calls: h.file(name, #{...}), h.command(...), and h.task(module, name, #{...})
    for spec in modules::registry::all() {
        let module = spec.name;
        let c = cx.clone();
        engine.register_fn(
            module,
            move |ctx: NativeCallContext,
                  h: &mut HostHandle,
                  name: &str,
                  args: Map|
                  -> RhaiResult<TaskHandle> { c.add_task(&ctx, h, module, name, args, false) },
        );
    }
    for (function, handler) in [("task", false), ("handler", true)] {
        let c = cx.clone();
        engine.register_fn(
            function,
            move |ctx: NativeCallContext, h: &mut HostHandle, module: &str, name: &str, args: Map| {
                c.add_task(&ctx, h, find_module(&ctx, module)?, name, args, handler)
            },
        );
    }

    // ---- rolling changes: serial(hosts, n, |h| { ... }), serial(hosts, #{ size, max_fail_percentage }, ...)
    let c = cx.clone();
    engine.register_fn(
        "serial",
        move |ctx: NativeCallContext, hosts: Array, n: i64, add: FnPtr| -> RhaiResult<Array> {
            serial(
                &c,
                &ctx,
                hosts,
                SerialOptions { size: BatchSize::One(n), max_fail_percentage: None },
                &add,
            )
        },
    );
    let c = cx.clone();
    engine.register_fn(
        "serial",
        move |ctx: NativeCallContext, hosts: Array, options: Map, add: FnPtr| -> RhaiResult<Array> {
            const CALL: &str = "serial(hosts, #{ size, max_fail_percentage }, |h| { ... })";
            let options: serde_json::Value =
                rhai::serde::from_dynamic(&Dynamic::from_map(options)).map_err(|e| {
                    runtime(format!("{CALL}: its values must be numbers: {e}"), ctx.call_position())
                })?;
            let options: SerialOptions = contract::args::from_value(options)
                .map_err(|e| runtime(format!("{CALL}: {e}"), ctx.call_position()))?;
            serial(&c, &ctx, hosts, options, &add)
        },
    );

    // ---- disruption budgets: budget(hosts, #{ max_down: 1 | "25%" }, |h| { ... })
    let c = cx.clone();
    engine.register_fn(
        "budget",
        move |ctx: NativeCallContext, hosts: Array, options: Map, add: FnPtr| -> RhaiResult<Array> {
            budget(&c, &ctx, hosts, options, &add)
        },
    );

    // ---- sections: section("Run kubeadm init on master0") groups the tasks after it in the graph
    let c = cx.clone();
    engine.register_fn("section", move |ctx: NativeCallContext, name: &str| -> RhaiResult<()> {
        if name.trim().is_empty() {
            return Err(runtime(
                "a section needs a name, e.g. section(\"Install workers\")",
                ctx.call_position(),
            ));
        }
        if ctx.call_source().is_some_and(|source| source != &*c.default_file) {
            return Err(runtime(
                "section(...) is for the playbook, not a library: a library's tasks belong to the \
                 section in force where the playbook calls it",
                ctx.call_position(),
            ));
        }
        c.plan.borrow_mut().set_section(name);
        Ok(())
    });

    // ---- serialising values (manifests, configs)
    engine.register_fn("to_yaml", |ctx: NativeCallContext, value: Dynamic| -> RhaiResult<String> {
        let json: serde_json::Value = rhai::serde::from_dynamic(&value)
            .map_err(|e| runtime(format!("to_yaml: {e}"), ctx.call_position()))?;
        serde_yaml_ng::to_string(&json).map_err(|e| runtime(format!("to_yaml: {e}"), ctx.call_position()))
    });
    engine.register_fn("to_json", |ctx: NativeCallContext, value: Dynamic| -> RhaiResult<String> {
        let json: serde_json::Value = rhai::serde::from_dynamic(&value)
            .map_err(|e| runtime(format!("to_json: {e}"), ctx.call_position()))?;
        serde_json::to_string_pretty(&json).map_err(|e| runtime(format!("to_json: {e}"), ctx.call_position()))
    });

    // ---- facts and files
    engine.register_fn("fact", |h: &mut HostHandle, path: &str| {
        Ref::Fact { host: h.name.clone(), path: path.to_owned() }.marker()
    });
    let c = cx.clone();
    engine.register_fn("template_file", move |ctx: NativeCallContext, path: &str| -> RhaiResult<String> {
        let real = c.local_file(&ctx, path, "template")?;
        std::fs::read_to_string(&real).map_err(|e| {
            runtime(format!("cannot read template {}: {e}", real.display()), ctx.call_position())
        })
    });
    // vars_files-style: a YAML or JSON map of variables beside the calling file. Its values are
    // copied into the tasks that use them, so a task's journal fingerprint covers them.
    let c = cx.clone();
    engine.register_fn("load_vars", move |ctx: NativeCallContext, path: &str| -> RhaiResult<Map> {
        let real = c.local_file(&ctx, path, "variables file")?;
        let vars = crate::inventory::read_vars_file(&real)
            .map_err(|e| runtime(e.to_string(), ctx.call_position()))?;
        rhai::serde::to_dynamic(vars)?
            .try_cast::<Map>()
            .ok_or_else(|| runtime("load_vars: not a map", ctx.call_position()))
    });

    // ---- tasks
    engine.register_get("name", |t: &mut TaskHandle| t.name.clone());
    engine.register_get("host", |t: &mut TaskHandle| t.host.clone());
    engine.register_get("id", |t: &mut TaskHandle| t.id.0 as i64);
    engine.register_fn("to_string", |t: &mut TaskHandle| format!("{}: {}", t.host, t.name));
    engine.register_fn("to_debug", |t: &mut TaskHandle| format!("task({}: {})", t.host, t.name));
    engine.register_get("stdout", |t: &mut TaskHandle| refs::marker(t.id, "stdout"));
    engine.register_get("stderr", |t: &mut TaskHandle| refs::marker(t.id, "stderr"));
    engine.register_get("rc", |t: &mut TaskHandle| refs::marker(t.id, "rc"));
    engine.register_fn("output", |t: &mut TaskHandle, key: &str| refs::marker(t.id, key));
    engine.register_fn("after", |t: &mut TaskHandle, dependency: TaskHandle| -> TaskHandle {
        t.plan.borrow_mut().add_after(dependency.id, t.id);
        t.clone()
    });
    engine.register_fn(
        "after",
        |ctx: NativeCallContext, t: &mut TaskHandle, dependencies: Array| -> RhaiResult<TaskHandle> {
            for d in dependencies {
                let type_name = d.type_name();
                let Some(d) = d.try_cast::<TaskHandle>() else {
                    return Err(runtime(
                        format!("after([...]) takes tasks, found {type_name}"),
                        ctx.call_position(),
                    ));
                };
                t.plan.borrow_mut().add_after(d.id, t.id);
            }
            Ok(t.clone())
        },
    );
    let c = cx.clone();
    engine.register_fn(
        "when",
        move |ctx: NativeCallContext,
              t: &mut TaskHandle,
              source: TaskHandle,
              expression: &str|
              -> TaskHandle {
            match crate::plan::until::names(expression) {
                Ok(reads) => {
                    let when = When { task: source.id, expression: expression.to_owned(), reads };
                    t.plan.borrow_mut().set_when(t.id, when);
                }
                Err(e) => {
                    let (message, location) =
                        (format!("when(task, \"{expression}\"): {e}"), c.location(&ctx));
                    t.plan.borrow_mut().error(message, location, None);
                }
            }
            t.clone()
        },
    );
    engine.register_fn("always", |t: &mut TaskHandle| -> TaskHandle {
        t.plan.borrow_mut().set_always(t.id);
        t.clone()
    });
    engine.register_fn("notify", |t: &mut TaskHandle, handler: TaskHandle| -> TaskHandle {
        t.plan.borrow_mut().add_notify(t.id, handler.id);
        t.clone()
    });
    engine.register_fn(
        "notify",
        |ctx: NativeCallContext, t: &mut TaskHandle, handlers: Array| -> RhaiResult<TaskHandle> {
            for h in handlers {
                let type_name = h.type_name();
                let h = h.try_cast::<TaskHandle>().ok_or_else(|| {
                    runtime(
                        format!("notify([...]) takes handler tasks, found {type_name}"),
                        ctx.call_position(),
                    )
                })?;
                t.plan.borrow_mut().add_notify(t.id, h.id);
            }
            Ok(t.clone())
        },
    );
    let c = cx.clone();
    engine.register_fn(
        "retry",
        move |ctx: NativeCallContext, t: &mut TaskHandle, policy: Map| -> RhaiResult<TaskHandle> {
            const CALL: &str = "retry(#{ retries, delay, until })";
            let policy: serde_json::Value =
                rhai::serde::from_dynamic(&Dynamic::from_map(policy)).map_err(|e| {
                    runtime(
                        format!("{CALL}: its values must be plain values (numbers, strings): {e}"),
                        ctx.call_position(),
                    )
                })?;
            let policy: Retry = match contract::args::from_value(policy) {
                Ok(policy) => policy,
                Err(e) => {
                    // Recorded like any argument mistake, pointing at the key; the task keeps
                    // no retry policy and evaluation goes on.
                    let (message, location) = (format!("{CALL}: {e}"), c.location(&ctx));
                    let mut plan = t.plan.borrow_mut();
                    match e.written_at() {
                        Some(path) => plan.argument_error(message, location, None, path),
                        None => plan.error(message, location, None),
                    }
                    return Ok(t.clone());
                }
            };
            // A retry loop must end, and in reasonable time.
            if policy.retries > Retry::MAX_RETRIES || policy.delay > Retry::MAX_DELAY {
                let limits =
                    format!("at most {} retries and {} s between them", Retry::MAX_RETRIES, Retry::MAX_DELAY);
                return Err(runtime(format!("retry: {limits}"), ctx.call_position()));
            }
            if let Some(task) = t.plan.borrow_mut().task_mut(t.id) {
                task.retry = Some(policy);
            }
            Ok(t.clone())
        },
    );
    engine.register_fn("tag", |t: &mut TaskHandle, tag: &str| -> TaskHandle {
        if let Some(task) = t.plan.borrow_mut().task_mut(t.id) {
            task.tags.push(tag.to_owned());
        }
        t.clone()
    });
    engine.register_fn(
        "tags",
        |ctx: NativeCallContext, t: &mut TaskHandle, tags: Array| -> RhaiResult<TaskHandle> {
            for tag in tags {
                let tag = tag
                    .into_string()
                    .map_err(|ty| runtime(format!("tags are strings, found {ty}"), ctx.call_position()))?;
                if let Some(task) = t.plan.borrow_mut().task_mut(t.id) {
                    task.tags.push(tag);
                }
            }
            Ok(t.clone())
        },
    );
}

/// The options of `budget(hosts, #{ max_down: 1 }, ...)`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetOptions {
    /// A count of hosts, or a percentage of them as `"25%"`.
    max_down: MaxDown,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum MaxDown {
    Hosts(i64),
    Percent(String),
}

/// `budget(hosts, #{ max_down: 1 }, |h| { ... })`: calls the closure once per host; the tasks it
/// creates for a host (on that host or another) are the host's window of disruption, and the
/// walker keeps at most `max_down` windows under way at once. Returns every task created.
fn budget(
    c: &Context,
    ctx: &NativeCallContext,
    hosts: Array,
    options: Map,
    add: &FnPtr,
) -> RhaiResult<Array> {
    const CALL: &str = "budget(hosts, #{ max_down }, |h| { ... })";
    let options: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(options))
        .map_err(|e| runtime(format!("{CALL}: its values must be plain values: {e}"), ctx.call_position()))?;
    let options: BudgetOptions = contract::args::from_value(options).map_err(|e| {
        runtime(
            format!("{CALL}: {e} (max_down is a number of hosts, or a percentage of them as \"25%\")"),
            ctx.call_position(),
        )
    })?;
    let limit = match options.max_down {
        MaxDown::Hosts(n) => Limit::Hosts(usize::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            runtime(
                format!("{CALL}: max_down is how many hosts may be down at once, at least 1, not {n}"),
                ctx.call_position(),
            )
        })?),
        MaxDown::Percent(text) => {
            let percent = text
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<u8>().ok())
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| {
                    runtime(
                        format!("{CALL}: max_down {text:?} is not a percentage from \"1%\" to \"100%\""),
                        ctx.call_position(),
                    )
                })?;
            Limit::Percent(percent)
        }
    };
    let handles = host_handles(CALL, ctx, hosts)?;
    let mut windows = Vec::with_capacity(handles.len());
    for host in &handles {
        let start = c.plan.borrow().next_id();
        call_for_host(ctx, add, host)?;
        windows.push((host.name.clone(), start..c.plan.borrow().next_id()));
    }
    let created = windows.first().map_or(0, |w| w.1.start.0)..windows.last().map_or(0, |w| w.1.end.0);
    let tasks = task_handles(c, created);
    let names = handles.iter().map(|h| h.name.clone()).collect();
    c.plan
        .borrow_mut()
        .add_budget(c.location(ctx), limit, names, windows)
        .map_err(|e| runtime(format!("{CALL}: {e}"), ctx.call_position()))?;
    Ok(tasks)
}

/// Calls a `serial`/`budget` closure for one host. The closure adds tasks through the same
/// plan: no borrow may be held across it. An error inside the closure points at its own line,
/// not at the call's.
fn call_for_host(ctx: &NativeCallContext, add: &FnPtr, host: &HostHandle) -> RhaiResult<()> {
    let _returned: Dynamic = add.call_within_context(ctx, (host.clone(),)).map_err(|e| match *e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) if add.is_anonymous() => inner,
        other => Box::new(other),
    })?;
    Ok(())
}

/// The tasks of ids `created`, as the handles a `serial`/`budget` call returns.
fn task_handles(c: &Context, created: std::ops::Range<usize>) -> Array {
    let plan = c.plan.borrow();
    created
        .map(TaskId)
        .filter_map(|id| plan.task(id).map(|t| (id, t.name.clone(), t.host.clone())))
        .map(|(id, name, host)| Dynamic::from(TaskHandle { id, name, host, plan: c.plan.clone() }))
        .collect()
}

/// The hosts of a `serial`/`budget` call, each checked to be a host.
fn host_handles(call: &str, ctx: &NativeCallContext, hosts: Array) -> RhaiResult<Vec<HostHandle>> {
    let mut handles = Vec::with_capacity(hosts.len());
    for (i, item) in hosts.into_iter().enumerate() {
        let type_name = item.type_name();
        let host = item.try_cast::<HostHandle>().ok_or_else(|| {
            runtime(
                format!("{call} takes hosts (host(..), group(..), hosts()); item {i} is {type_name}"),
                ctx.call_position(),
            )
        })?;
        handles.push(host);
    }
    Ok(handles)
}

/// The options of `serial(hosts, #{ size: 2, max_fail_percentage: 30 }, ...)`; `serial(hosts,
/// n, ...)` is `#{ size: n }`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SerialOptions {
    /// Hosts per batch (Ansible's `serial:`).
    size: BatchSize,
    /// Ansible's `max_fail_percentage`, 0 to 100.
    max_fail_percentage: Option<i64>,
}

/// Ansible's `serial: 2` or `serial: [1, 3]` (a list of batch sizes, the last repeated).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum BatchSize {
    One(i64),
    Each(Vec<i64>),
}

/// `serial(hosts, n, |h| { ... })`: calls the closure once per host, `n` hosts per batch, and
/// records the batches in the plan, where sealing makes every task of a batch wait for every
/// task of the batch before (Ansible's `serial:`), and the walker skips the later batches when
/// too many hosts of a batch failed. Returns every task the closure created.
fn serial(
    c: &Context,
    ctx: &NativeCallContext,
    hosts: Array,
    options: SerialOptions,
    add: &FnPtr,
) -> RhaiResult<Array> {
    let usage = "serial(hosts, n, |h| { ... })";
    let sizes = match options.size {
        BatchSize::One(n) => vec![n],
        BatchSize::Each(sizes) if sizes.is_empty() => {
            return Err(runtime(format!("{usage}: the list of batch sizes is empty"), ctx.call_position()));
        }
        BatchSize::Each(sizes) => sizes,
    };
    let sizes = sizes
        .into_iter()
        .map(|n| {
            usize::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                runtime(
                    format!("{usage}: n is how many hosts change at a time, at least 1, not {n}"),
                    ctx.call_position(),
                )
            })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let max_fail_percentage = match options.max_fail_percentage {
        None => None,
        Some(p) => Some(u8::try_from(p).ok().filter(|p| *p <= 100).ok_or_else(|| {
            runtime(
                format!("{usage}: max_fail_percentage is a percentage of a batch's hosts, 0 to 100, not {p}"),
                ctx.call_position(),
            )
        })?),
    };
    let handles = host_handles(usage, ctx, hosts)?;
    let mut batches = Vec::new();
    let mut chunks = Vec::new();
    let mut rest = handles.as_slice();
    for k in 0.. {
        if rest.is_empty() {
            break;
        }
        // The last size repeats (Ansible's `serial: [1, 3]`: 1 host, then 3 at a time).
        let size = sizes[k.min(sizes.len() - 1)].min(rest.len());
        let (batch, later) = rest.split_at(size);
        chunks.push(batch);
        rest = later;
    }
    for batch in chunks {
        let start = c.plan.borrow().next_id();
        for host in batch {
            call_for_host(ctx, add, host)?;
        }
        let names = batch.iter().map(|h| h.name.clone()).collect();
        batches.push((names, start..c.plan.borrow().next_id()));
    }
    let created = batches.first().map_or(0, |b| b.1.start.0)..batches.last().map_or(0, |b| b.1.end.0);
    let tasks = task_handles(c, created);
    c.plan.borrow_mut().add_serial(c.location(ctx), batches, max_fail_percentage);
    Ok(tasks)
}
