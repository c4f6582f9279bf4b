//! [`StoreError`]: every variant names the path it is about and the cause.

use std::io;
use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "rename", "fsync", ...).
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An app name or job id that cannot be a file name in the store.
    #[error("invalid name {name:?} (for {}): {reason}", path.display())]
    InvalidName {
        name: String,
        /// Where it would have been stored.
        path: PathBuf,
        reason: &'static str,
    },
    /// A package archive that could not be read.
    #[error("reading the package archive for {}: {source}", path.display())]
    Archive {
        /// The package directory being unpacked.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An archive entry refused because it could write outside the package, or is not a
    /// plain file, directory or link.
    #[error("refused archive entry {} (unpacking into {}): {reason}", entry.display(), path.display())]
    UnsafeEntry {
        /// The package directory being unpacked.
        path: PathBuf,
        /// The entry's path as written in the archive.
        entry: PathBuf,
        reason: String,
    },
    /// A revision an operation needs is not on disk.
    #[error("revision {revision} ({}) is not stored: {reason}", path.display())]
    MissingRevision {
        /// Where it would be.
        path: PathBuf,
        revision: u64,
        reason: &'static str,
    },
    /// A stored file (or a manifest being stored) whose content is not what it must be.
    #[error("corrupt {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }
}
