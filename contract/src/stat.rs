//! What a host says about a path: the answer of [`crate::remote::stat`], and what a transport
//! may hold ahead of time ([`crate::host::Host::cached_stat`]).

/// What kind of filesystem object a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// The state of a path on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub kind: FileKind,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// Hex SHA-256 of the content, for regular files.
    pub sha256: Option<String>,
}
