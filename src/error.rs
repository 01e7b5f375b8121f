//! The one error type of the engine.
//!
//! Every error says what it is about: the file and offset of a corruption,
//! the path of a failed I/O call, the option that was out of range. Errors
//! are returned, never panicked; decoders of on-disk bytes report
//! [`Error::Corruption`] for anything they cannot prove valid.

use std::path::PathBuf;
use std::sync::Arc;

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Lightning DB.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed on `path`.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// Bytes on disk failed a checksum or could not be decoded.
    #[error("corruption in {} at offset {offset}: {reason}", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset in `file` of the damaged piece (start of the block,
        /// record or field that failed).
        offset: u64,
        /// What was wrong.
        reason: String,
    },

    /// A file was written by a newer (or unknown) format version.
    #[error("{} has format version {found}; this build reads versions up to {supported}", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Highest version this build understands.
        supported: u32,
    },

    /// An argument or option was out of range; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The directory holds something that is not a Lightning DB database.
    #[error("{} is not a Lightning DB directory: {reason}", path.display())]
    NotADatabase {
        /// The directory.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },

    /// Another open handle (in this or another process) holds the
    /// directory's `LOCK` file.
    #[error("database directory {} is locked by another open", .0.display())]
    Locked(PathBuf),

    /// An earlier I/O failure (a failed fsync, a failed background flush)
    /// stopped the database from accepting writes. Reads still work; reopen
    /// the database to recover from the last durable state.
    #[error("database stopped accepting writes after a background error: {0}")]
    Background(Arc<Error>),

    /// The database was closed.
    #[error("database is closed")]
    Closed,

    /// A write (`put`, `delete`, `write`, `flush`, `compact_range`) on a
    /// database opened with [`crate::Db::open_read_only`].
    #[error("database {} is open read-only", .0.display())]
    ReadOnly(PathBuf),
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Corruption`].
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}
