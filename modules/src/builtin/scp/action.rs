//! The planned copy, applied: exactly these directories, files and attribute fixes.

use async_trait::async_trait;
use contract::diff::sha256_hex;
use contract::error::ModuleError;
use contract::host::{Exec, Host};
use contract::module::{Action, Outputs};
use contract::remote::{self, Attrs, run_checked};
use contract::shell::join;
use serde_json::Value;

use super::controller::{blocking, write_local_atomic};
use super::side::Side;

/// One file to send. Its content is kept only when `--diff` already read it, and never shown.
pub(super) struct Write {
    pub(super) src: String,
    pub(super) dest: String,
    /// The SHA-256 planned on; the relayed bytes must still match it.
    pub(super) sha256: String,
    pub(super) attrs: Attrs,
    pub(super) content: Option<Vec<u8>>,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write")
            .field("src", &self.src)
            .field("dest", &self.dest)
            .field("sha256", &self.sha256)
            .field("attrs", &self.attrs)
            .finish_non_exhaustive()
    }
}

/// Exactly the planned copy: these directories, these files, these attribute fixes.
#[derive(Debug)]
pub(super) struct ScpAction {
    pub(super) source: Side,
    pub(super) dest: Side,
    pub(super) mkdirs: Vec<String>,
    pub(super) writes: Vec<Write>,
    pub(super) set_attrs: Vec<(String, Attrs)>,
}

#[async_trait]
impl Action for ScpAction {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let ScpAction { source, dest, mkdirs, writes, set_attrs } = *self;
        let dest_host = dest.host(host);
        if !mkdirs.is_empty() {
            match dest_host {
                Some(h) => {
                    let command = format!("mkdir -p -- {}", join(&mkdirs));
                    run_checked(h, Exec::new(command)).await?;
                }
                None => {
                    blocking(move || {
                        mkdirs.iter().try_for_each(|d| {
                            std::fs::create_dir_all(d)
                                .map_err(|e| format!("cannot create {d} on the controller: {e}"))
                        })
                    })
                    .await?
                }
            }
        }
        let sent = writes.len();
        for write in writes {
            let content = match write.content {
                Some(content) => content,
                None => source.read(host, &write.src).await?,
            };
            if sha256_hex(&content) != write.sha256 {
                return Err(ModuleError::Refused(format!(
                    "{}:{} changed since it was planned; run again",
                    source.label(host),
                    write.src
                )));
            }
            match dest_host {
                Some(h) => remote::write_atomic(h, &write.dest, &content, &write.attrs).await?,
                None => {
                    let (path, mode) = (write.dest.clone(), write.attrs.mode);
                    blocking(move || {
                        write_local_atomic(&path, &content, mode)
                            .map_err(|e| format!("cannot write {path} on the controller: {e}"))
                    })
                    .await?
                }
            }
        }
        for (path, attrs) in set_attrs {
            match dest_host {
                Some(h) => remote::set_attrs(h, &path, &attrs).await?,
                None => {
                    if let Some(mode) = attrs.mode {
                        blocking(move || {
                            use std::os::unix::fs::PermissionsExt;
                            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                                .map_err(|e| format!("cannot chmod {path} on the controller: {e}"))
                        })
                        .await?
                    }
                }
            }
        }
        let mut outputs = Outputs::new();
        outputs.insert("sent".into(), Value::from(sent));
        Ok(outputs)
    }
}
