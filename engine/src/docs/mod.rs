//! `engine docs`: the reference, generated from the code so that it cannot drift.
//!
//! - [`module_page`]: one page per module, from the registry and its argument schema.
//! - [`api_page`]: the playbook API, with signatures read from the configured Rhai engine
//!   (`playbook/signature.rs`) and text from `playbook/api_docs.rs`; generation fails when the
//!   two disagree.
//! - [`index_page`]: the index linking them.
//!
//! Output is deterministic (sorted), so the committed `docs/reference` can be compared with it.

pub mod api_page;
pub mod index_page;
pub mod module_page;

use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::playbook::signature;

/// One generated file: its path relative to the output folder, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub path: PathBuf,
    pub text: String,
}

/// Every page of the reference, sorted by path. Fails when a registered playbook function or
/// type has no doc entry, or a doc entry names nothing registered.
pub fn pages() -> Result<Vec<Page>, Error> {
    let registered =
        signature::registered(&crate::playbook::reference_engine()).map_err(|e| Error::Docs(vec![e]))?;
    let problems = api_page::problems(&registered);
    if !problems.is_empty() {
        return Err(Error::Docs(problems));
    }
    let mut pages = vec![
        Page { path: PathBuf::from("README.md"), text: index_page::render() },
        Page { path: PathBuf::from("playbook-api.md"), text: api_page::render(&registered) },
    ];
    for spec in modules::registry::all() {
        pages.push(Page {
            path: Path::new("modules").join(format!("{}.md", spec.name)),
            text: module_page::render(spec),
        });
    }
    pages.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(pages)
}

/// Writes every page under `out` (created when missing) and returns the paths written.
/// Nothing is written outside `out`: page paths must be plain relative paths, and a folder
/// that resolves elsewhere (a symbolic link) is refused.
pub fn write(out: &Path) -> Result<Vec<PathBuf>, Error> {
    let pages = pages()?;
    let io = |what: String| move |source| Error::Io { what, source };
    std::fs::create_dir_all(out).map_err(io(format!("cannot create {}", out.display())))?;
    let root = out.canonicalize().map_err(io(format!("cannot resolve {}", out.display())))?;
    let mut written = Vec::new();
    for page in pages {
        let target = inside(&root, &page.path)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
            let real = parent.canonicalize().map_err(io(format!("cannot resolve {}", parent.display())))?;
            if !real.starts_with(&root) {
                return Err(Error::Usage(format!("{} leads outside {}", parent.display(), root.display())));
            }
        }
        std::fs::write(&target, &page.text).map_err(io(format!("cannot write {}", target.display())))?;
        written.push(target);
    }
    Ok(written)
}

/// `root/relative`, refusing a `relative` that is absolute or climbs out with `..`.
fn inside(root: &Path, relative: &Path) -> Result<PathBuf, Error> {
    let plain = relative.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain || relative.as_os_str().is_empty() {
        return Err(Error::Usage(format!(
            "refusing to write {} outside {}",
            relative.display(),
            root.display()
        )));
    }
    Ok(root.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::playbook::{self, LoadOptions};

    #[test]
    fn the_api_table_matches_the_registered_functions() {
        let registered = signature::registered(&crate::playbook::reference_engine()).unwrap();
        let problems = api_page::problems(&registered);
        assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    }

    #[test]
    fn pages_are_deterministic_and_cover_every_module() {
        let first = pages().unwrap();
        assert_eq!(first, pages().unwrap());
        let paths: Vec<String> = first.iter().map(|p| p.path.display().to_string()).collect();
        for spec in modules::registry::all() {
            assert!(paths.contains(&format!("modules/{}.md", spec.name)), "{paths:?}");
        }
        assert!(paths.contains(&"playbook-api.md".to_owned()) && paths.contains(&"README.md".to_owned()));
        let index = &first.iter().find(|p| p.path == Path::new("README.md")).unwrap().text;
        for page in &first {
            if page.path != Path::new("README.md") {
                assert!(
                    index.contains(&format!("({})", page.path.display())),
                    "index lacks {}",
                    page.path.display()
                );
            }
        }
    }

    /// Every module's example is a valid playbook fragment: it loads and seals.
    #[test]
    fn module_examples_load() {
        let inventory = Inventory::parse(
            "all:\n  hosts:\n    web0: {ansible_host: 192.0.2.1}\n    web1: {ansible_host: 192.0.2.2}\n",
            Path::new("inventory.yml"),
        )
        .unwrap();
        for spec in modules::registry::all() {
            let text = format!("let h = host(\"web0\");\nlet peer = host(\"web1\");\n{}\n", spec.example);
            let path = PathBuf::from(format!("{}_example.rhai", spec.name));
            if let Err(e) = playbook::load_source(&path, &text, &inventory, &LoadOptions::default()) {
                panic!("the example of {} does not load: {:?}", spec.name, miette::Report::new(e));
            }
        }
    }

    #[test]
    fn pages_stay_inside_the_output_folder() {
        let root = Path::new("/tmp/out");
        assert_eq!(
            inside(root, Path::new("modules/file.md")).unwrap(),
            Path::new("/tmp/out/modules/file.md")
        );
        for bad in ["../x.md", "/etc/passwd", "modules/../../x.md", ""] {
            assert!(inside(root, Path::new(bad)).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_symlinked_folder_leading_out_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("modules")).unwrap();
        assert!(write(&out).is_err());
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none(), "wrote through the link");
    }
}
