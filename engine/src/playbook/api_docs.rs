//! The doc comments of the playbook API, one entry per registered Rhai function and type.
//!
//! `engine docs` takes each function's real signature from the configured Rhai engine and its
//! text from here; it fails (and so does a test) when a registered function has no entry here,
//! or an entry names no registered function. So a new function cannot land undocumented.
//!
//! The key is the function's Rhai name and parameter types as the generator prints them:
//! `after(Task, array)`; a property getter is `get$name(Host)`. `params` names every
//! parameter, the receiver first (`h` for a Host, `t` for a Task). Module calls
//! (`h.file(...)`, one per module) are documented from the module registry instead.

/// The documentation of one registered function.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FnDoc {
    /// `name(Type, Type)`, as `engine docs` prints registered signatures.
    pub(crate) key: &'static str,
    /// One name per parameter, the receiver first.
    pub(crate) params: &'static [&'static str],
    /// Markdown; the first sentence is the summary.
    pub(crate) doc: &'static str,
}

/// The documentation of one registered custom type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeDoc {
    pub(crate) name: &'static str,
    pub(crate) doc: &'static str,
}

/// Every custom type a playbook handles.
pub(crate) const TYPES: &[TypeDoc] = &[
    TypeDoc {
        name: "Host",
        doc: "A host from the inventory, from `host(name)`, `group(name)` or `hosts()`. Module calls on it \
              (`h.file(...)`, `h.command(...)`, ...) add tasks that run on that host, in the order written.",
    },
    TypeDoc {
        name: "Vars",
        doc: "A host's variables (`h.vars`), merged from the inventory, group_vars/ and host_vars/ in Ansible's \
              precedence. Reading one the host lacks is an error naming both; `get` reads an optional one.",
    },
    TypeDoc {
        name: "Task",
        doc: "A task in the plan, returned by every module call. Order it (`after`), tag it, make it notify \
              handlers, retry it, and read its outputs (`t.stdout`, `t.output(\"key\")`): reading an output \
              makes the reading task wait for this one.",
    },
];

/// Every registered function, sorted by key.
pub(crate) const FUNCTIONS: &[FnDoc] = &[
    FnDoc {
        key: "when(Task, Task, string)",
        params: &["t", "source", "condition"],
        doc: "Runs `t` only if `condition`, a Jinja expression over the outputs of `source` (`rc`, `stdout`, \
              a module's own outputs), holds when `t` is about to run (Ansible's `when:`); `t` waits for \
              `source`. Otherwise `t` reports ok, saying it did not run and why, and the tasks after it go \
              on. It does not run either when `source` did not run by its own condition. In check mode the \
              condition is evaluated when `source` runs in check mode too (a `read_only` command, a `get`), \
              else `t` is unknown. An undefined name in it fails `t`. Example: `drain.when(version, \
              \"stdout != 'v1.31.1'\")`. Returns `t`.",
    },
    FnDoc {
        key: "always(Task)",
        params: &["t"],
        doc: "Runs `t` once every task it waits for has ended, also when one of them failed or was skipped, \
              provided one of them ran: a cleanup, such as the uncordon after a drain that failed (Ansible's \
              `always:`); make `t` wait for the drain itself. When none of them ran (all skipped after an \
              earlier failure), `t` is skipped too: nothing was attempted. A run stopped by Ctrl-C or \
              `--fail-fast` does not start it. The tasks after `t` wait for `t`'s own outcome. Returns `t`.",
    },
    FnDoc {
        key: "budget(array, map, Fn)",
        params: &["hosts", "options", "add"],
        doc: "A disruption budget: calls `add(h)` for each host; the tasks it creates for `h` (on `h` or on \
              any other host, such as a drain run from the first master) are `h`'s window, and at most \
              `max_down` windows are under way at once: `#{ max_down: 1 }`, or a percentage of the hosts, \
              `#{ max_down: \"25%\" }` (rounded down, at least 1; counted over all the hosts given, whatever \
              `--limit` or `--resume` leave out). A window opens when its first task is ready to start and \
              closes when all its tasks have ended. Unlike `serial`, the next host starts as soon as any \
              window closes. A window with a failed task that no `always` task of the window waiting for it \
              directly repaired (the uncordon after a refused drain) leaves its host down: it keeps its place \
              for the rest of the run, and the hosts still waiting are not started, each task saying why. \
              Budgets hold in `run`, not in `check` (nothing goes down). Budgets do not nest. \
              Returns every task `add` created. Example: `budget(group(\"workers\"), #{ max_down: 1 }, |h| \
              { let d = m.command(\"drain \" + h.name, ...); ... })`.",
    },
    FnDoc {
        key: "after(Task, Task)",
        params: &["t", "dependency"],
        doc: "Runs `t` only after `dependency` succeeded, on any host. Returns `t`, so calls chain.",
    },
    FnDoc {
        key: "after(Task, array)",
        params: &["t", "dependencies"],
        doc: "Runs `t` only after every task of `dependencies` succeeded. Anything but tasks in the array is \
              an error.",
    },
    FnDoc {
        key: "concurrent(Host)",
        params: &["h"],
        doc: "Lets the tasks written for `h` from now on run without waiting for each other (by default a \
              host's tasks run in the order written). Edges from `after` and data still hold.",
    },
    FnDoc {
        key: "contains(Vars, string)",
        params: &["vars", "name"],
        doc: "Whether the host has the variable `name`; also `\"name\" in h.vars`.",
    },
    FnDoc {
        key: "fact(Host, string)",
        params: &["h", "path"],
        doc: "A fact of `h` by dotted path, e.g. `\"default_ipv4.address\"` or `\"interfaces.eth1.ipv4.0\"`. \
              Facts are gathered at run time, once per host, only when something reads them; the value \
              can be used in task arguments. They are typed as they are gathered (a host's word is not \
              trusted): addresses must parse as IP addresses, names as RFC 1123 host names, interface \
              names and numbers as such; a value that does not fails the task that reads it, naming \
              the host and the fact.",
    },
    FnDoc {
        key: "get$address(Host)",
        params: &["h"],
        doc: "The address engine connects to: `ansible_host`, or the inventory name.",
    },
    FnDoc {
        key: "get$groups(Host)",
        params: &["h"],
        doc: "The names of every group the host belongs to, `all` included.",
    },
    FnDoc { key: "get$host(Task)", params: &["t"], doc: "The name of the host the task runs on." },
    FnDoc {
        key: "get$id(Task)",
        params: &["t"],
        doc: "The task's number in the plan (stable for a given playbook and inventory).",
    },
    FnDoc { key: "get$name(Host)", params: &["h"], doc: "The host's inventory name." },
    FnDoc { key: "get$name(Task)", params: &["t"], doc: "The task's name, as given to the module call." },
    FnDoc {
        key: "get$rc(Task)",
        params: &["t"],
        doc: "The task's exit status (`command`), as a value for later tasks' arguments: reading it makes \
              them wait for `t`.",
    },
    FnDoc {
        key: "get$stderr(Task)",
        params: &["t"],
        doc: "The task's standard error (`command`); reading it makes the reader wait for `t`.",
    },
    FnDoc {
        key: "get$stdout(Task)",
        params: &["t"],
        doc: "The task's standard output (`command`); reading it makes the reader wait for `t`.",
    },
    FnDoc {
        key: "get$vars(Host)",
        params: &["h"],
        doc: "The host's variables (a `Vars`): the inventory's, its group_vars/ and host_vars/, in Ansible's \
              precedence.",
    },
    FnDoc {
        key: "get(Vars, string)",
        params: &["vars", "name"],
        doc: "The variable `name`, or `()` when the host has none: `h.vars.get(\"vip\") ?? \"10.0.0.10\"` for an \
              optional one.",
    },
    FnDoc {
        key: "group(string)",
        params: &["name"],
        doc: "The hosts of a group, in inventory order. An unknown group is an error that lists the \
              inventory's groups.",
    },
    FnDoc {
        key: "handler(Host, string, string, map)",
        params: &["h", "module", "name", "args"],
        doc: "Adds a handler: a task of module `module` that runs once, after the tasks that `notify` it, \
              and only if one of them changed something. Example: \
              `h.handler(\"systemd\", \"restart etcd\", #{ name: \"etcd\", state: \"restarted\" })`.",
    },
    FnDoc {
        key: "has_group(string)",
        params: &["name"],
        doc: "Whether the inventory has a group of that name (for playbooks that adapt to the inventory).",
    },
    FnDoc {
        key: "host(string)",
        params: &["name"],
        doc: "A host of the inventory by name. An unknown host is an error that suggests the nearest name \
              and lists the inventory's groups.",
    },
    FnDoc { key: "hosts()", params: &[], doc: "Every host of the inventory, in inventory order." },
    FnDoc {
        key: "notify(Task, Task)",
        params: &["t", "handler"],
        doc: "Makes `handler` (made with `h.handler(...)`) run after `t`, if `t` changed something. Returns `t`.",
    },
    FnDoc {
        key: "index$get$(Vars, string)",
        params: &["vars", "name"],
        doc: "The variable `name` (`h.vars.name`, `h.vars[\"name\"]`). A host without it stops the playbook with an \
              error naming the host, the variable and the nearest names it has; use `get` for an optional one.",
    },
    FnDoc { key: "keys(Vars)", params: &["vars"], doc: "The names of the host's variables." },
    FnDoc {
        key: "load_vars(string)",
        params: &["path"],
        doc: "The variables of a YAML or JSON file (a map), typed, relative to the calling file's folder \
              (Ansible's `vars_files`): `let v = load_vars(\"vars/main.yml\"); v.replicas`. Read when the \
              playbook is loaded; the values become part of the tasks that use them. Files outside that \
              folder are refused.",
    },
    FnDoc {
        key: "notify(Task, array)",
        params: &["t", "handlers"],
        doc: "Notifies each handler of the array, as `notify(handler)` does.",
    },
    FnDoc {
        key: "output(Task, string)",
        params: &["t", "key"],
        doc: "One output of the task by name (see each module's outputs), as a value for later tasks' \
              arguments; reading it makes the reader wait for `t`.",
    },
    FnDoc {
        key: "param(string)",
        params: &["name"],
        doc: "The value of `-e name=value` (a string), or of `name` in `-e '{\"name\": 3}'` or `-e @vars.yml` \
              (typed: int, float, bool, array, map). Without it the playbook is refused, with a message \
              saying how to pass it.",
    },
    FnDoc {
        key: "param(string, any)",
        params: &["name", "default"],
        doc: "The value of `-e name=...` (as `param(name)` reads it), or `default` when it is not given.",
    },
    FnDoc {
        key: "retry(Task, map)",
        params: &["t", "policy"],
        doc: "Retries `t`: `#{ retries: 5, delay: 2 }` retries failures; with `\"until\": \"'healthy' in \
              stdout\"` it also retries until that Jinja expression over the task's outputs holds (`until` \
              is a Rhai keyword, hence the quotes). At most 1000 retries, 3600 s apart.",
    },
    FnDoc {
        key: "secret(any)",
        params: &["value"],
        doc: "Marks `value` (a string or a number) as secret and returns it unchanged: engine hides its \
              text wherever it shows text (events, hence the console, the JSON stream and the run journal; \
              logs; errors; DOT). Example: `let token = secret(param(\"token\"));`.",
    },
    FnDoc {
        key: "section(string)",
        params: &["name"],
        doc: "Names the section of the playbook the tasks written after it belong to, until the next \
              `section(...)` call: `engine graph` draws each section's tasks as a box inside their host's, \
              labelled `name` (a guide's heading, say). Tasks written before the first call belong to no \
              section. The tasks a library function adds belong to the section in force where the \
              playbook calls it; a library cannot call `section` itself. Sections change only the \
              drawing, never the order tasks run in.",
    },
    FnDoc {
        key: "serial(array, int, Fn)",
        params: &["hosts", "n", "add"],
        doc: "A rolling change: calls `add(h)` for each host, `n` hosts per batch, and makes every task of \
              a batch wait for every task of the batch before (Ansible's `serial:`). The later batches are \
              skipped when every host of a batch failed (Ansible's default; see `serial(array, map, Fn)` for \
              `max_fail_percentage`). Returns every task `add` created. Example: `serial(group(\"web\"), 1, |h| { h.systemd(\"restart\", #{ name: \
              \"nginx\", state: \"restarted\" }) })`.",
    },
    FnDoc {
        key: "serial(array, map, Fn)",
        params: &["hosts", "options", "add"],
        doc: "A rolling change with options: `#{ size: 2, max_fail_percentage: 30 }`. `size` is the hosts per \
              batch, or a list of sizes whose last repeats (`[1, 5]`: one host, then five at a time). \
              `max_fail_percentage` (0 to 100, Ansible's): when MORE than that percentage of a batch's hosts \
              failed, the later batches are skipped, each task saying which batch stopped them and how many \
              hosts failed; 0 stops them on any failure. Without it, as in Ansible, they are skipped only when \
              every host of a batch failed. A failed host's own later tasks are skipped as always.",
    },
    FnDoc {
        key: "tag(Task, string)",
        params: &["t", "tag"],
        doc: "Tags the task, for `--tags`. Returns `t`.",
    },
    FnDoc { key: "tags(Task, array)", params: &["t", "tags"], doc: "Adds several tags (strings) at once." },
    FnDoc {
        key: "task(Host, string, string, map)",
        params: &["h", "module", "name", "args"],
        doc: "Adds a task of the module named `module`: the same as `h.MODULE(name, args)`, for a module \
              chosen at run time. An unknown module is an error that suggests the nearest name.",
    },
    FnDoc {
        key: "template_file(string)",
        params: &["path"],
        doc: "The text of a file, relative to the calling file's folder (the playbook's, or a library's), \
              read when the playbook is loaded; typically a template for the `template` module. Files \
              outside that folder are refused.",
    },
    FnDoc { key: "to_debug(Host)", params: &["h"], doc: "`host(\"NAME\")`, what `debug(h)` prints." },
    FnDoc { key: "to_debug(Task)", params: &["t"], doc: "`task(HOST: NAME)`, what `debug(t)` prints." },
    FnDoc {
        key: "to_json(any)",
        params: &["value"],
        doc: "`value` (a map, an array, a string, ...) as pretty-printed JSON.",
    },
    FnDoc {
        key: "to_map(Vars)",
        params: &["vars"],
        doc: "The variables as a map (to pass them whole to a template or a module).",
    },
    FnDoc { key: "to_debug(Vars)", params: &["vars"], doc: "The variables, for debugging." },
    FnDoc {
        key: "to_string(Host)",
        params: &["h"],
        doc: "The host's name, as `print` and string interpolation show it.",
    },
    FnDoc {
        key: "to_string(Task)",
        params: &["t"],
        doc: "`HOST: NAME`, as `print` and string interpolation show it.",
    },
    FnDoc { key: "to_string(Vars)", params: &["vars"], doc: "The variables, as text." },
    FnDoc {
        key: "to_yaml(any)",
        params: &["value"],
        doc: "`value` as YAML: Kubernetes manifests and configuration files.",
    },
];

/// The doc entry for a function key, if any.
pub(crate) fn function(key: &str) -> Option<&'static FnDoc> {
    FUNCTIONS.iter().find(|doc| doc.key == key)
}

/// The doc entry for a custom type, if any.
pub(crate) fn type_doc(name: &str) -> Option<&'static TypeDoc> {
    TYPES.iter().find(|doc| doc.name == name)
}
