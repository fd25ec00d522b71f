//! Names the commit the binary was built from, for `engine --version`:
//! `engine 0.1.0 (abc1234 2026-12-07)`, `abc1234-dirty` when the sources that go into the binary
//! differ from that commit.
//!
//! From git when the workspace is a git checkout (CI builds from a fresh clone); else from the
//! `ENGINE_COMMIT` environment variable (a source archive's builder sets it, e.g.
//! `ENGINE_COMMIT="abc1234 2026-12-07"`); else `unknown`. Sets `ENGINE_BUILD_COMMIT`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What goes into the binary, relative to the workspace root: a change here marks it dirty.
const SOURCES: &[&str] = &["Cargo.toml", "Cargo.lock", "contract", "engine", "modules"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.parent().map_or_else(|| manifest.clone(), Path::to_path_buf);
    println!("cargo::rerun-if-env-changed=ENGINE_COMMIT");
    let commit = match from_git(&root) {
        Some(commit) => commit,
        None => std::env::var("ENGINE_COMMIT").ok().map_or_else(|| "unknown".to_owned(), |c| printable(&c)),
    };
    println!("cargo::rustc-env=ENGINE_BUILD_COMMIT={commit}");
}

/// `abc1234 2026-12-07` (the short hash and the commit's date), with `-dirty` after the hash when
/// the sources differ from it. Tells cargo to run this again when HEAD moves or a source changes.
fn from_git(root: &Path) -> Option<String> {
    // Only this workspace's own checkout: an unpacked source archive inside another repository
    // (a home directory kept in git) must not take that repository's commit.
    if !root.join(".git").exists() {
        return None;
    }
    let git_dir = PathBuf::from(git(root, &["rev-parse", "--path-format=absolute", "--git-dir"])?);
    let common = PathBuf::from(git(root, &["rev-parse", "--path-format=absolute", "--git-common-dir"])?);
    // HEAD names the branch; the branch's file (or packed-refs) moves with each commit. Only
    // files that exist: cargo reruns the script every build for a missing one.
    let mut watched = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(branch));
    }
    for file in watched.iter().filter(|f| f.is_file()) {
        println!("cargo::rerun-if-changed={}", file.display());
    }
    for source in SOURCES {
        println!("cargo::rerun-if-changed={}", root.join(source).display());
    }
    let hash = git(root, &["rev-parse", "--short=7", "HEAD"])?;
    let date = git(root, &["log", "-1", "--format=%cs", "HEAD"])?;
    let mut status = vec!["status", "--porcelain", "--"];
    status.extend(SOURCES);
    let dirty = git(root, &status).is_some_and(|changes| !changes.is_empty());
    Some(format!("{hash}{} {date}", if dirty { "-dirty" } else { "" }))
}

/// A git command's trimmed stdout; None when git is missing, fails, or prints no UTF-8.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("--no-optional-locks").arg("-C").arg(root).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok().map(|s| s.trim().to_owned())
}

/// The builder's value, reduced to what belongs in a version line.
fn printable(value: &str) -> String {
    let kept: String =
        value.chars().filter(|c| c.is_ascii_alphanumeric() || " -_.:+".contains(*c)).take(64).collect();
    if kept.trim().is_empty() { "unknown".to_owned() } else { kept.trim().to_owned() }
}
