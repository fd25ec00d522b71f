//! The planned copy, applied: exactly these directories, files and attribute fixes.

use async_trait::async_trait;
use contract::diff::sha256_hex;
use contract::error::ModuleError;
use contract::host::Host;
use contract::module::{Action, Outputs};
use contract::remote::Attrs;
use serde_json::Value;

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
        if !mkdirs.is_empty() {
            dest.mkdirs(host, &mkdirs).await?;
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
            dest.write(host, &write.dest, &content, &write.attrs).await?;
        }
        for (path, attrs) in set_attrs {
            dest.set_attrs(host, &path, &attrs).await?;
        }
        let mut outputs = Outputs::new();
        outputs.insert("sent".into(), Value::from(sent));
        Ok(outputs)
    }
}
