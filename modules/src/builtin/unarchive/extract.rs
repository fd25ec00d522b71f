//! The planned extraction, applied: upload first when the archive is on the controller, then
//! `tar` (straight into the destination) or `unzip` (into a temporary directory inside it,
//! whose wanted members are then moved into place, `strip_components` applied), then the
//! manifest of what was extracted.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::landing::Landing;
use super::listing::Kind;
use super::{Format, Manifest, UnarchiveArgs};
use contract::arg::Resolved;
use contract::error::ModuleError;
use contract::host::{Exec, Host};
use contract::local::LocalHost;
use contract::module::{Action, Outputs};
use contract::remote::{self, Attrs, run_checked};
use contract::shell::{join, quote};

/// Extracts the archive as planned, then records what it extracted.
#[derive(Debug)]
pub(super) struct Extract {
    pub(super) args: UnarchiveArgs<Resolved>,
    pub(super) format: Format,
    pub(super) archive_sha: String,
    /// Where every wanted member lands (a zip's are moved there one by one).
    pub(super) landings: Vec<Landing>,
    /// The regular files the extraction makes, relative to the destination.
    pub(super) files: Vec<String>,
    /// The controller to read the archive from, when it is there.
    pub(super) upload: Option<LocalHost>,
}

impl Extract {
    /// The shell commands that set `$a` to the archive on the host: its path, or a 0600
    /// temporary file in the destination (`$t`, removed on exit) holding the uploaded bytes,
    /// checked for their count ([`remote::receive_commands`], as [`remote::write_atomic`]
    /// does) and SHA-256 before anything is extracted.
    fn archive_commands(&self, uploaded: Option<usize>) -> String {
        match uploaded {
            None => format!("a={}; ", quote(&self.args.src)),
            Some(len) => format!(
                "t=$(mktemp -- \"$d/.engine-upload-XXXXXX\"); {receive}\
                 got=$(sha256sum <\"$t\"); if [ \"${{got%% *}}\" != {sha} ]; then \
                 echo \"engine: the upload arrived with another SHA-256, nothing was extracted\" >&2; exit 1; fi; \
                 a=$t; ",
                sha = quote(&self.archive_sha),
                receive = remote::receive_commands(
                    "t",
                    len,
                    None,
                    &format!("the upload was cut short ({len} bytes were sent), nothing was extracted")
                ),
            ),
        }
    }

    /// The shell commands that extract `$a` into `$d`.
    fn extract_commands(&self) -> String {
        let args = &self.args;
        match self.format {
            Format::Tar(_) => {
                let include: Vec<String> = args.include.iter().flatten().cloned().collect();
                format!(
                    "tar --extract --no-same-owner --no-overwrite-dir --strip-components={} -f \"$a\" -C \"$d\" -- {}",
                    args.strip_components,
                    join(&include)
                )
            }
            Format::Zip => {
                let mut script = "x=$(mktemp -d -- \"$d/.engine-unzip-XXXXXX\"); \
                                  LC_ALL=C unzip -q -o -- \"$a\" -d \"$x\"; "
                    .to_owned();
                for landing in &self.landings {
                    let to = quote(&landing.path);
                    match landing.kind {
                        Kind::Dir => script.push_str(&format!("mkdir -p -- \"$d\"/{to}; ")),
                        _ => {
                            if let Some((parent, _)) = landing.path.rsplit_once('/') {
                                script.push_str(&format!("mkdir -p -- \"$d\"/{}; ", quote(parent)));
                            }
                            script.push_str(&format!(
                                "mv -f -T -- \"$x\"/{} \"$d\"/{to}; ",
                                quote(&landing.member)
                            ));
                        }
                    }
                }
                script
            }
        }
    }
}

#[async_trait]
impl Action for Extract {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let args = &self.args;
        let mut stdin = None;
        if let Some(controller) = &self.upload {
            let bytes = remote::read(controller, &args.src_operand()).await.map_err(|e| {
                ModuleError::Refused(format!("cannot read {} on the controller: {}", args.src, e.reason()))
            })?;
            if contract::diff::sha256_hex(&bytes) != self.archive_sha {
                return Err(ModuleError::Refused(format!(
                    "{} changed on the controller since it was planned; nothing was extracted",
                    args.src_label()
                )));
            }
            stdin = Some(bytes);
        }
        let script = format!(
            "set -e; d={}; t=''; x=''; trap 'rm -rf -- \"$x\"; rm -f -- \"$t\"' EXIT; mkdir -p -- \"$d\"; {}{}",
            quote(&args.dest),
            self.archive_commands(stdin.as_ref().map(Vec::len)),
            self.extract_commands(),
        );
        let mut exec = Exec::new(script);
        if let Some(bytes) = stdin {
            exec = exec.stdin(remote::with_end_of_content(bytes));
        }
        run_checked(host, exec).await?;
        let paths: Vec<String> = self.files.iter().map(|f| args.under_dest(f)).collect();
        let probes = remote::stat_many(host, &paths).await?;
        let mut files = BTreeMap::new();
        for (relative, path) in self.files.iter().zip(&paths) {
            let sha = probes
                .iter()
                .find(|p| &p.path == path)
                .and_then(|p| p.stat.as_ref())
                .and_then(|s| s.sha256.clone())
                .ok_or_else(|| {
                    ModuleError::Refused(format!("{path} is missing after extracting {}", args.src_label()))
                })?;
            files.insert(relative.clone(), sha);
        }
        let manifest = Manifest {
            archive_sha256: self.archive_sha,
            strip_components: args.strip_components,
            include: args.include.clone(),
            files,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ModuleError::Refused(format!("cannot write the manifest: {e}")))?;
        remote::write_atomic(
            host,
            &args.manifest_path(),
            &text,
            &Attrs { mode: Some(0o644), ..Attrs::default() },
        )
        .await?;
        Ok(Outputs::new())
    }
}
