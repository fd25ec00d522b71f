//! The controller's own files, read and written through the local filesystem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use contract::diff::sha256_hex;
use contract::error::ModuleError;

use super::listing::{Entry, Kind, Listing};

/// Lists `roots` on the controller, like [`source_command`] does on a host.
pub(super) fn list_local_sources(roots: &[String]) -> Result<Listing, String> {
    let mut listing = Listing::default();
    for root in roots {
        let kind = match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(m) if m.is_file() => Kind::File,
            Ok(_) => Kind::Other,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Kind::Missing,
            Err(e) => return Err(format!("cannot read {root} on the controller: {e}")),
        };
        listing.kinds.insert(root.clone(), kind);
        match kind {
            Kind::File => {
                listing.files.insert(root.clone(), local_entry(Path::new(root))?);
            }
            Kind::Dir => walk_local(Path::new(root), &mut listing.files)?,
            Kind::Other | Kind::Missing => {}
        }
    }
    Ok(listing)
}

/// Every regular file under `dir` (symbolic links are not followed, as `find` does).
fn walk_local(dir: &Path, files: &mut BTreeMap<String, Entry>) -> Result<(), String> {
    let read = |e: std::io::Error| format!("cannot read {} on the controller: {e}", dir.display());
    for item in std::fs::read_dir(dir).map_err(read)? {
        let item = item.map_err(read)?;
        let path = item.path();
        let file_type = item.file_type().map_err(read)?;
        if file_type.is_dir() {
            walk_local(&path, files)?;
        } else if file_type.is_file() {
            let name = path.to_str().ok_or_else(|| {
                format!(
                    "file name {} on the controller is not UTF-8; engine copies only UTF-8 names",
                    path.as_os_str().as_encoded_bytes().escape_ascii()
                )
            })?;
            files.insert(name.to_owned(), local_entry(&path)?);
        }
    }
    Ok(())
}

fn local_entry(path: &Path) -> Result<Entry, String> {
    use std::os::unix::fs::PermissionsExt;
    let read = |e: std::io::Error| format!("cannot read {} on the controller: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(read)?;
    let content = std::fs::read(path).map_err(read)?;
    Ok(Entry {
        mode: meta.permissions().mode() & 0o7777,
        size: content.len() as u64,
        owner: String::new(),
        group: String::new(),
        sha256: sha256_hex(&content),
    })
}

/// Lists destination `dirs` and `files` on the controller, like [`dest_command`] on a host.
pub(super) fn list_local_dest(dirs: &BTreeSet<String>, files: &[String]) -> Result<Listing, String> {
    let mut listing = Listing::default();
    for dir in dirs {
        match std::fs::symlink_metadata(dir) {
            Ok(_) if Path::new(dir).is_dir() => listing.kinds.insert(dir.clone(), Kind::Dir),
            Ok(_) => listing.kinds.insert(dir.clone(), Kind::Other),
            Err(_) => None,
        };
    }
    for file in files {
        match std::fs::symlink_metadata(file) {
            Ok(m) if m.is_file() => {
                listing.files.insert(file.clone(), local_entry(Path::new(file))?);
            }
            Ok(_) => {
                listing.kinds.insert(file.clone(), Kind::Other);
            }
            Err(_) => {}
        }
    }
    Ok(listing)
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ModuleError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ModuleError::Refused(format!("controller file access failed: {e}")))?
        .map_err(ModuleError::Refused)
}

/// Writes `content` to a controller path atomically: a temporary file in the same directory,
/// mode set, fsynced, renamed over `path`.
pub(super) fn write_local_atomic(path: &str, content: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let target = Path::new(path);
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.engine-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(content)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode.unwrap_or(0o644)))?;
        file.sync_all()?;
        std::fs::rename(&temp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_listing_and_atomic_write() {
        let dir = std::env::temp_dir().join(format!("engine-scp-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
        let root = dir.join("tree").to_string_lossy().into_owned();
        write_local_atomic(&format!("{root}/a"), b"abc", Some(0o600)).unwrap();
        write_local_atomic(&format!("{root}/sub/b"), b"b", None).unwrap();
        let l = list_local_sources(&[root.clone(), format!("{root}/none")]).unwrap();
        assert_eq!(l.kinds[&root], Kind::Dir);
        assert_eq!(l.kinds[&format!("{root}/none")], Kind::Missing);
        assert_eq!(l.files[&format!("{root}/a")].mode, 0o600);
        assert_eq!(l.files[&format!("{root}/a")].sha256, sha256_hex(b"abc"));
        assert_eq!(l.files[&format!("{root}/sub/b")].mode, 0o644);
        assert_eq!(l.files.len(), 2, "no temporary files left behind: {:?}", l.files.keys());
        let d = list_local_dest(
            &[root.clone()].into_iter().collect(),
            &[format!("{root}/a"), format!("{root}/sub")],
        )
        .unwrap();
        assert_eq!(d.kinds[&root], Kind::Dir);
        assert_eq!(d.kinds[&format!("{root}/sub")], Kind::Other);
        assert!(d.files.contains_key(&format!("{root}/a")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
