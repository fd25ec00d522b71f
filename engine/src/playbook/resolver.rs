//! `import "etcd" as etcd;`: confined Rhai imports for playbooks and their libraries.
//!
//! An import path is relative, and is looked up, in this order:
//!
//! 1. in the folder of the file that imports it (the playbook's folder, or the library's);
//! 2. in `lib/` beside the playbook, when that folder exists;
//! 3. in each `--lib DIR`, in the order given.
//!
//! `.rhai` is added unless the path ends with it. A path may use `..` to reach a sibling
//! inside the same *root* (the playbook's folder, or the library folder the importer was found
//! in), but never to leave it; absolute paths are refused; a symlink leading out of the root
//! is refused too. Every library is evaluated once (later imports share it), with a scope of
//! its own (it cannot see the playbook's variables), and under the same sandbox limits.
//! An import cycle (`a` imports `b` imports `a`) is an error naming the whole chain.
//!
//! Rhai caches function look-ups by name and arity for a whole run, across files: a helper
//! `fn options(o)` in one library would silently call another library's `options(o)`. So two
//! loaded files (the playbook included) may not define a function with the same name and
//! arity: that is an error naming both files ([`Defined`]).
//!
//! The resolver also records each library's text (for error snippets) and its folder (for
//! `template_file` calls made from inside it) in the shared [`Folders`] map.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use crate::plan::PlanBuilder;

/// How deeply imports may nest (`a` imports `b` imports `c` ...), a guard for the Rust stack.
const MAX_IMPORT_DEPTH: usize = 32;

/// The folder a playbook file lives in, as a root (the tree it is confined to) and a path
/// inside that root (only normal components).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folder {
    /// The root as the user named it (`playbooks`, `playbooks/lib`, a `--lib` folder).
    pub(crate) root: PathBuf,
    /// The folder inside `root` (empty for the root itself).
    pub(crate) inside: PathBuf,
}

impl Folder {
    /// The root folder itself.
    pub(crate) fn root(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), inside: PathBuf::new() }
    }

    /// The folder as a path to open.
    pub(crate) fn path(&self) -> PathBuf {
        if self.inside.as_os_str().is_empty() { self.root.clone() } else { self.root.join(&self.inside) }
    }

    /// `relative` resolved inside this folder, or `None` if it is absolute or its `..` climb
    /// out of the root. Purely lexical: symlinks are checked once the file is found.
    pub(crate) fn join(&self, relative: &str) -> Option<PathBuf> {
        let mut inside = self.inside.clone();
        for component in Path::new(relative).components() {
            match component {
                Component::Normal(part) => inside.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !inside.pop() {
                        return None;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        Some(inside)
    }
}

/// Which folder each loaded file (by its source name) lives in: read by `template_file`,
/// which resolves paths from the calling file's own folder. Shared by the resolver and the API.
#[derive(Debug, Clone, Default)]
pub(crate) struct Folders(Rc<RefCell<HashMap<Arc<str>, Folder>>>);

impl Folders {
    pub(crate) fn insert(&self, file: Arc<str>, folder: Folder) {
        self.0.borrow_mut().insert(file, folder);
    }

    /// The folder of the file named `file`, if it was loaded.
    pub(crate) fn of(&self, file: &str) -> Option<Folder> {
        self.0.borrow().get(file).cloned()
    }
}

/// Which file defines each script function (by name and arity) among the files loaded so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Defined(Rc<RefCell<HashMap<FunctionKey, Arc<str>>>>);

/// A script function as Rhai looks it up: its name and how many parameters it takes.
type FunctionKey = (String, usize);

impl Defined {
    /// Records the functions `file` defines; an error if another file already defines one.
    pub(crate) fn claim(&self, file: &Arc<str>, ast: &rhai::AST) -> Result<(), ImportError> {
        let mut defined = self.0.borrow_mut();
        for function in ast.iter_functions() {
            if function.name.starts_with("anon$") {
                continue; // closures: named by their body's hash
            }
            let key = (function.name.to_owned(), function.params.len());
            match defined.get(&key) {
                Some(other) if other != file => {
                    return Err(ImportError::Clash {
                        function: format!("{}({})", function.name, function.params.join(", ")),
                        file: file.to_string(),
                        other: other.to_string(),
                    });
                }
                _ => {
                    defined.insert(key, file.clone());
                }
            }
        }
        Ok(())
    }
}

/// Why an import could not be resolved. The message is shown at the `import` statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ImportError {
    #[error("import {path:?}: absolute paths are not allowed; name a file relative to {}", searched.join(", "))]
    Absolute { path: String, searched: Vec<String> },
    #[error(
        "import {path:?} leaves its folder {root}: imports stay inside the playbook's folder or a library folder"
    )]
    Escapes { path: String, root: String },
    #[error("import {path:?}: no {file} in {}", searched.join(", "))]
    Missing { path: String, file: String, searched: Vec<String> },
    #[error("import cycle: {}", chain.join(" imports "))]
    Cycle { chain: Vec<String> },
    #[error("imports nest more than {MAX_IMPORT_DEPTH} deep: {}", chain.join(" imports "))]
    TooDeep { chain: Vec<String> },
    #[error(
        "{file} defines {function}, and so does {other}: Rhai resolves calls by name across files, \
         so one would run the other's; rename one (e.g. with the library's name as a prefix)"
    )]
    Clash { function: String, file: String, other: String },
    #[error("cannot read {file}: {message}")]
    Unreadable { file: String, message: String },
}

/// A file an import resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The source name, for messages, snippets and task locations (`playbooks/lib/etcd.rhai`).
    pub(crate) name: Arc<str>,
    /// The canonical path: the cache and cycle key.
    pub(crate) real: PathBuf,
    /// The folder the file is in, for its own imports and templates.
    pub(crate) folder: Folder,
}

/// The module resolver installed on a playbook's engine. See the module documentation.
#[derive(Debug)]
pub(crate) struct ImportResolver {
    /// Library roots, searched after the importer's own folder.
    libraries: Vec<PathBuf>,
    /// The source name and folder of every file loaded so far, the playbook's included.
    folders: Folders,
    /// The canonical paths of the files being evaluated, outermost first (the playbook).
    loading: RefCell<Vec<(PathBuf, Arc<str>)>>,
    /// Libraries already evaluated, by canonical path.
    cache: RefCell<HashMap<PathBuf, Shared<Module>>>,
    /// Receives each library's text, so errors inside it show a snippet.
    plan: Rc<RefCell<PlanBuilder>>,
    /// The functions of every file loaded so far.
    defined: Defined,
}

impl ImportResolver {
    /// A resolver for the playbook named `file` (its source name) at `path`, in `folder`,
    /// with the given library roots.
    pub(crate) fn new(
        file: Arc<str>,
        path: &Path,
        folder: Folder,
        libraries: Vec<PathBuf>,
        folders: Folders,
        defined: Defined,
        plan: Rc<RefCell<PlanBuilder>>,
    ) -> Self {
        folders.insert(file.clone(), folder);
        let real = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        Self {
            libraries,
            folders,
            loading: RefCell::new(vec![(real, file)]),
            cache: RefCell::new(HashMap::new()),
            plan,
            defined,
        }
    }

    /// Finds the file `path` names, imported from the file named `importer`.
    pub(crate) fn locate(&self, importer: Option<&str>, path: &str) -> Result<Found, ImportError> {
        let own = importer.and_then(|f| self.folders.of(f));
        let mut places: Vec<Folder> = own.into_iter().collect();
        places.extend(self.libraries.iter().map(Folder::root));
        let searched = || places.iter().map(|f| f.path().display().to_string()).collect::<Vec<_>>();
        let relative = Path::new(path);
        if relative.has_root() || relative.is_absolute() {
            return Err(ImportError::Absolute { path: path.to_owned(), searched: searched() });
        }
        let file = if path.ends_with(".rhai") { path.to_owned() } else { format!("{path}.rhai") };
        for place in &places {
            let Some(inside) = place.join(&file) else {
                return Err(ImportError::Escapes {
                    path: path.to_owned(),
                    root: place.root.display().to_string(),
                });
            };
            let candidate = place.root.join(&inside);
            if !candidate.is_file() {
                continue;
            }
            let unreadable = |e: std::io::Error| ImportError::Unreadable {
                file: candidate.display().to_string(),
                message: e.to_string(),
            };
            let real = candidate.canonicalize().map_err(unreadable)?;
            let root = place.root.canonicalize().map_err(unreadable)?;
            if !real.starts_with(&root) {
                return Err(ImportError::Escapes {
                    path: path.to_owned(),
                    root: place.root.display().to_string(),
                });
            }
            let folder = Folder {
                root: place.root.clone(),
                inside: inside.parent().map(Path::to_path_buf).unwrap_or_default(),
            };
            return Ok(Found { name: Arc::from(shown(&candidate)), real, folder });
        }
        Err(ImportError::Missing { path: path.to_owned(), file, searched: searched() })
    }

    /// Checks that loading `found` now would neither close a cycle nor nest too deeply.
    fn check_nesting(&self, found: &Found) -> Result<(), ImportError> {
        let loading = self.loading.borrow();
        let mut chain: Vec<String> = loading.iter().map(|(_, name)| name.to_string()).collect();
        chain.push(found.name.to_string());
        if let Some(start) = loading.iter().position(|(real, _)| *real == found.real) {
            return Err(ImportError::Cycle { chain: chain.split_off(start) });
        }
        if loading.len() > MAX_IMPORT_DEPTH {
            return Err(ImportError::TooDeep { chain });
        }
        Ok(())
    }

    /// Reads, compiles and evaluates the library `found` into a module.
    fn load(
        &self,
        engine: &Engine,
        found: &Found,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let in_module = |error: Box<EvalAltResult>| {
            Box::new(EvalAltResult::ErrorInModule(found.name.to_string(), error, pos))
        };
        let text = std::fs::read_to_string(&found.real).map_err(|e| {
            let error = ImportError::Unreadable { file: found.name.to_string(), message: e.to_string() };
            runtime(error.to_string(), pos)
        })?;
        self.plan.borrow_mut().add_source(found.name.clone(), Arc::from(text.as_str()));
        self.folders.insert(found.name.clone(), found.folder.clone());
        let mut ast = engine.compile(&text).map_err(|e| match *e.0 {
            // Suggests the nearest name the library declares.
            rhai::ParseErrorType::VariableUndefined(_) => {
                in_module(runtime(super::hints::parse_error(&e.0, &text), e.position()))
            }
            _ => in_module(e.into()),
        })?;
        ast.set_source(found.name.to_string());
        self.defined.claim(&found.name, &ast).map_err(|e| runtime(e.to_string(), pos))?;
        self.loading.borrow_mut().push((found.real.clone(), found.name.clone()));
        // A scope of its own: a library sees only what it is given.
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        self.loading.borrow_mut().pop();
        Ok(Shared::new(module.map_err(in_module)?))
    }
}

impl ModuleResolver for ImportResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let found = self.locate(source, path).map_err(|e| runtime(e.to_string(), pos))?;
        if let Some(module) = self.cache.borrow().get(&found.real) {
            return Ok(module.clone());
        }
        self.check_nesting(&found).map_err(|e| runtime(e.to_string(), pos))?;
        let module = self.load(engine, &found, pos)?;
        self.cache.borrow_mut().insert(found.real, module.clone());
        Ok(module)
    }
}

fn runtime(message: String, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(message), pos))
}

/// `path` for messages: without `./` segments.
fn shown(path: &Path) -> String {
    let parts: PathBuf = path.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    parts.display().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::error::Error;
    use crate::inventory::Inventory;
    use crate::playbook::{LoadOptions, load};

    /// A scratch tree: `play/` (the playbook's folder, with `lib/`), `shared/` (a `--lib`
    /// folder) and `outside/` (neither).
    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new() -> Self {
            let tree = Self(tempfile::tempdir().unwrap());
            for dir in ["play/lib/sub", "shared", "outside"] {
                std::fs::create_dir_all(tree.path(dir)).unwrap();
            }
            tree
        }

        fn path(&self, relative: &str) -> PathBuf {
            self.0.path().join(relative)
        }

        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.path(relative);
            std::fs::write(&path, text).unwrap();
            path
        }

        fn resolver(&self) -> ImportResolver {
            let playbook = self.path("play/site.rhai");
            ImportResolver::new(
                Arc::from("site.rhai"),
                &playbook,
                Folder::root(self.path("play")),
                vec![self.path("play/lib"), self.path("shared")],
                Folders::default(),
                Defined::default(),
                Rc::new(RefCell::new(PlanBuilder::new(playbook.clone()))),
            )
        }

        /// Loads `play/site.rhai` over a one-host inventory; the messages of every error.
        fn load(&self, text: &str) -> Result<crate::plan::Plan, Vec<String>> {
            let playbook = self.write("play/site.rhai", text);
            let inventory =
                Inventory::parse("all:\n  hosts:\n    web0: {}\n    web1: {}\n", Path::new("inv.yml"))
                    .unwrap();
            let options = LoadOptions { lib_dirs: vec![self.path("shared")], ..LoadOptions::default() };
            load(&playbook, &inventory, &options).map_err(|e| match e {
                Error::Plan(crate::plan::PlanErrors { errors, .. }) => errors
                    .iter()
                    .map(|e| {
                        format!("{}: {} [{}]", e.location, e.message, e.help.clone().unwrap_or_default())
                    })
                    .collect(),
                other => vec![other.to_string()],
            })
        }
    }

    #[test]
    fn folder_paths_stay_inside_their_root() {
        let folder = Folder { root: PathBuf::from("lib"), inside: PathBuf::from("k8s") };
        assert_eq!(folder.join("etcd.rhai"), Some(PathBuf::from("k8s/etcd.rhai")));
        assert_eq!(folder.join("../etcd.rhai"), Some(PathBuf::from("etcd.rhai")));
        assert_eq!(folder.join("./a/../b.rhai"), Some(PathBuf::from("k8s/b.rhai")));
        assert_eq!(folder.join("../../etcd.rhai"), None);
        assert_eq!(folder.join("/etc/passwd"), None);
    }

    #[test]
    fn own_folder_first_then_libraries_in_order() {
        let tree = Tree::new();
        tree.write("play/lib/etcd.rhai", "");
        tree.write("shared/etcd.rhai", "");
        tree.write("shared/haproxy.rhai", "");
        tree.write("play/local.rhai", "");
        let resolver = tree.resolver();
        let found = resolver.locate(Some("site.rhai"), "local").unwrap();
        assert_eq!(found.folder, Folder::root(tree.path("play")));
        let found = resolver.locate(Some("site.rhai"), "etcd").unwrap();
        assert_eq!(&*found.name, tree.path("play/lib/etcd.rhai").display().to_string());
        assert_eq!(found.folder, Folder::root(tree.path("play/lib")));
        let found = resolver.locate(Some("site.rhai"), "haproxy.rhai").unwrap();
        assert_eq!(found.real, tree.path("shared/haproxy.rhai").canonicalize().unwrap());
    }

    #[test]
    fn absolute_and_escaping_paths_are_refused() {
        let tree = Tree::new();
        let secret = tree.write("outside/secret.rhai", "");
        let resolver = tree.resolver();
        let absolute = secret.with_extension("").display().to_string();
        assert!(matches!(resolver.locate(Some("site.rhai"), &absolute), Err(ImportError::Absolute { .. })));
        let climbing = resolver.locate(Some("site.rhai"), "../outside/secret");
        assert!(matches!(climbing, Err(ImportError::Escapes { .. })), "{climbing:?}");
        // A symlink inside the playbook's folder that leads out of it.
        std::os::unix::fs::symlink(&secret, tree.path("play/link.rhai")).unwrap();
        let linked = resolver.locate(Some("site.rhai"), "link");
        assert!(matches!(linked, Err(ImportError::Escapes { .. })), "{linked:?}");
    }

    #[test]
    fn a_missing_import_names_every_folder_searched() {
        let tree = Tree::new();
        let error = tree.resolver().locate(Some("site.rhai"), "nope").unwrap_err();
        let ImportError::Missing { file, searched, .. } = &error else { panic!("{error:?}") };
        assert_eq!(file, "nope.rhai");
        assert_eq!(searched.len(), 3, "{searched:?}");
        let message = error.to_string();
        assert!(message.contains("play/lib") && message.contains("shared"), "{message}");
    }

    #[test]
    fn libraries_add_tasks_located_in_the_library() {
        let tree = Tree::new();
        tree.write(
            "play/lib/web.rhai",
            "// a library\nfn site(hosts, dir) {\n    let tasks = #{};\n    for h in hosts {\n        \
             tasks[h.name] = h.file(\"site dir\", #{ path: dir, state: \"directory\" });\n    }\n    tasks\n}\n",
        );
        let plan = tree
            .load("import \"web\" as web;\nlet t = web::site([host(\"web0\"), host(\"web1\")], \"/srv\");\nhost(\"web0\").file(\"after\", #{ path: \"/x\", content: \"\" }).after(t.web1);\n")
            .unwrap();
        let locations: Vec<String> =
            plan.tasks().map(|(_, t)| t).map(|t| format!("{} {} {}", t.host, t.name, t.location)).collect();
        let lib = tree.path("play/lib/web.rhai").display().to_string();
        let site = tree.path("play/site.rhai").display().to_string();
        assert!(locations.contains(&format!("web0 site dir {lib}:5:27")), "{locations:?}");
        assert!(locations.contains(&format!("web1 site dir {lib}:5:27")), "{locations:?}");
        assert!(locations.contains(&format!("web0 after {site}:3:14")), "{locations:?}");
        assert_eq!(plan.edges().len(), 2, "web0's order and the after() edge");
    }

    #[test]
    fn an_import_cycle_is_located_at_the_import_closing_it() {
        let tree = Tree::new();
        tree.write("play/lib/a.rhai", "import \"b\" as b;\nfn x() {}\n");
        tree.write("play/lib/b.rhai", "// b\nimport \"a\" as a;\n");
        let errors = tree.load("import \"a\" as a;\n").unwrap_err();
        let a = tree.path("play/lib/a.rhai").display().to_string();
        let b = tree.path("play/lib/b.rhai").display().to_string();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!("{b}:2:8: import cycle: {a} imports {b} imports {a}")),
            "{errors:?}"
        );
        assert!(errors[0].contains("imported at"), "{errors:?}");
    }

    #[test]
    fn importing_the_playbook_itself_is_a_cycle() {
        let tree = Tree::new();
        let errors = tree.load("import \"site\" as me;\n").unwrap_err();
        assert!(errors[0].contains("import cycle"), "{errors:?}");
    }

    #[test]
    fn a_library_is_evaluated_once() {
        let tree = Tree::new();
        tree.write(
            "shared/once.rhai",
            "host(\"web0\").file(\"once\", #{ path: \"/once\", content: \"\" });\n",
        );
        tree.write("play/lib/other.rhai", "import \"once\" as once;\n");
        let plan =
            tree.load("import \"once\" as a;\nimport \"other\" as b;\nimport \"once\" as c;\n").unwrap();
        assert_eq!(plan.len(), 1);
    }

    #[test]
    fn libraries_see_only_what_they_are_given() {
        let tree = Tree::new();
        tree.write("play/lib/peek.rhai", "fn peek() { secret }\n");
        let errors = tree.load("let secret = 1;\nimport \"peek\" as p;\np::peek();\n").unwrap_err();
        let lib = tree.path("play/lib/peek.rhai").display().to_string();
        assert!(errors[0].starts_with(&format!("{lib}:1:13:")), "{errors:?}");
    }

    #[test]
    fn errors_inside_a_library_function_point_into_it_and_name_the_call() {
        let tree = Tree::new();
        tree.write(
            "play/lib/bad.rhai",
            "fn make(h) {\n    h.file(\"x\", #{ path: param(\"missing\") });\n}\n",
        );
        let errors = tree.load("import \"bad\" as bad;\n\nbad::make(host(\"web0\"));\n").unwrap_err();
        let lib = tree.path("play/lib/bad.rhai").display().to_string();
        let site = tree.path("play/site.rhai").display().to_string();
        assert!(errors[0].starts_with(&format!("{lib}:2:")), "{errors:?}");
        assert!(errors[0].contains("\"missing\" is not set"), "{errors:?}");
        assert!(errors[0].contains(&format!("in make(), called at {site}:3")), "{errors:?}");
    }

    #[test]
    fn the_sandbox_holds_inside_libraries() {
        let tree = Tree::new();
        tree.write("play/lib/spin.rhai", "fn spin() { loop {} }\n");
        let errors = tree.load("import \"spin\" as s;\ns::spin();\n").unwrap_err();
        assert!(errors[0].contains("operation limit"), "{errors:?}");
        tree.write("play/lib/top.rhai", "let x = 0;\nloop { x += 1; }\n");
        let errors = tree.load("import \"top\" as t;\n").unwrap_err();
        let lib = tree.path("play/lib/top.rhai").display().to_string();
        assert!(errors[0].starts_with(&lib) && errors[0].contains("operation limit"), "{errors:?}");
    }

    #[test]
    fn templates_from_a_library_come_from_its_own_folder() {
        let tree = Tree::new();
        std::fs::create_dir_all(tree.path("play/lib/templates")).unwrap();
        tree.write("play/lib/templates/a.j2", "from the library\n");
        std::fs::create_dir_all(tree.path("play/templates")).unwrap();
        tree.write("play/templates/a.j2", "from the playbook\n");
        tree.write("play/lib/t.rhai", "fn text() { template_file(\"templates/a.j2\") }\nfn escape() { template_file(\"../templates/a.j2\") }\n");
        let plan = tree
            .load("import \"t\" as t;\nhost(\"web0\").file(\"a\", #{ path: \"/a\", content: t::text() });\nhost(\"web0\").file(\"b\", #{ path: \"/b\", content: template_file(\"templates/a.j2\") });\n")
            .unwrap();
        let contents: Vec<String> =
            plan.tasks().map(|(_, t)| t).map(|t| t.args.value()["content"].to_string()).collect();
        assert_eq!(contents, ["\"from the library\\n\"", "\"from the playbook\\n\""]);
        let errors = tree.load("import \"t\" as t;\nt::escape();\n").unwrap_err();
        assert!(errors[0].contains("outside the library's folder"), "{errors:?}");
        // A library imported from a subfolder of the playbook's folder: its own folder too.
        std::fs::create_dir_all(tree.path("play/roles/templates")).unwrap();
        tree.write("play/roles/templates/a.j2", "from the role\n");
        tree.write("play/roles/r.rhai", "fn text() { template_file(\"templates/a.j2\") }\n");
        let plan = tree
            .load("import \"roles/r\" as r;\nhost(\"web0\").file(\"a\", #{ path: \"/a\", content: r::text() });\n")
            .unwrap();
        let content =
            plan.tasks().map(|(_, t)| t).map(|t| t.args.value()["content"].to_string()).collect::<Vec<_>>();
        assert_eq!(content, ["\"from the role\\n\""]);
    }

    #[test]
    fn two_files_defining_the_same_function_are_refused() {
        let tree = Tree::new();
        tree.write("play/lib/a.rhai", "fn options(o) { \"a\" }\nfn run() { options(1) }\n");
        tree.write("play/lib/b.rhai", "fn options(o) { \"b\" }\nfn run(x) { options(x) }\n");
        let errors =
            tree.load("import \"a\" as a;\nimport \"b\" as b;\na::run();\nb::run(2);\n").unwrap_err();
        let a = tree.path("play/lib/a.rhai").display().to_string();
        let b = tree.path("play/lib/b.rhai").display().to_string();
        let site = tree.path("play/site.rhai").display().to_string();
        assert!(
            errors[0].starts_with(&format!("{site}:2:8: {b} defines options(o), and so does {a}")),
            "{errors:?}"
        );
        // The playbook's own functions count too; the same name with another arity is fine.
        let errors = tree.load("fn options(o) { 1 }\nimport \"a\" as a;\n").unwrap_err();
        assert!(errors[0].contains("and so does"), "{errors:?}");
        tree.load("fn options() { 1 }\nimport \"a\" as a;\n").unwrap();
    }
}
