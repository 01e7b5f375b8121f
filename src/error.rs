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
///
/// Errors are `Clone`: every writer of a failed write group, and every
/// call on an iterator that failed, gets the same error with its kind
/// (an I/O error's source is shared behind an [`Arc`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed on `path`.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the operating system said (shared: the error is `Clone`).
        #[source]
        source: Arc<std::io::Error>,
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

    /// An invariant of the engine did not hold: a bug, not bad input or
    /// bad data. The message says which invariant; please report it. The
    /// call failed without writing anything it could not account for; a
    /// failure in background work stops writes like an I/O error.
    #[error("internal error (a bug in Lightning DB; please report it): {0}")]
    Internal(String),

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

    /// The keyspace was dropped ([`crate::Db::drop_keyspace`]): its handles
    /// refuse every call, and a batch writing to it is refused whole.
    #[error("keyspace `{0}` was dropped")]
    KeyspaceDropped(String),

    /// A read met merge operands of `key` that could not be folded: the
    /// keyspace's merge operator `operator` failed with `reason`, or the
    /// keyspace has no merge operator (`operator` is empty) although it
    /// holds operands. Nothing was changed; compaction keeps the operands.
    #[error(
        "merge of key {} failed: {}",
        escape_key(key),
        if operator.is_empty() { format!("the keyspace has no merge operator ({reason})") } else { format!("merge operator `{operator}`: {reason}") }
    )]
    Merge {
        /// The key being read.
        key: bytes::Bytes,
        /// The operator's name; empty when none is set.
        operator: String,
        /// What went wrong.
        reason: String,
    },

    /// A transaction could not commit: another commit wrote `key` after
    /// the transaction's snapshot (sequence number `snapshot`), and `kind`
    /// says why the transaction cared about that key. Nothing of the
    /// transaction was written. Run it again from the start — re-read, then
    /// re-write — on a new snapshot; [`crate::Db::transaction_with`] does
    /// that for you.
    #[error(
        "transaction conflict on key {} ({kind}): another commit wrote it after this transaction's snapshot at sequence {snapshot}; nothing was written, retry the transaction from the start (Db::transaction_with retries automatically)",
        escape_key(key)
    )]
    Conflict {
        /// The key written by the other commit (for [`ConflictKind::Range`],
        /// the first such key found in the scanned range).
        key: bytes::Bytes,
        /// The sequence number of the transaction's snapshot.
        snapshot: u64,
        /// Which set of the transaction the key was in.
        kind: ConflictKind,
    },
}

/// Why a transaction's commit checked the key of an [`Error::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConflictKind {
    /// The transaction wrote (put or deleted) the key: a write-write
    /// conflict, checked at every isolation level.
    Write,
    /// The transaction read the key with `get_for_update`.
    ForUpdate,
    /// The transaction read the key (serializable isolation only).
    Read,
    /// The key lies in a range the transaction scanned (serializable
    /// isolation only).
    Range,
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConflictKind::Write => "written by this transaction",
            ConflictKind::ForUpdate => "read for update by this transaction",
            ConflictKind::Read => "read by this serializable transaction",
            ConflictKind::Range => "in a range scanned by this serializable transaction",
        })
    }
}

/// A key for a message: printable ASCII as is, other bytes escaped, cut
/// after 64 bytes.
pub(crate) fn escape_key(key: &[u8]) -> String {
    const SHOWN: usize = 64;
    let shown = key.get(..SHOWN).unwrap_or(key);
    let mut s = format!("\"{}\"", shown.escape_ascii());
    if key.len() > SHOWN {
        s.push_str(&format!("… ({} bytes)", key.len()));
    }
    s
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// The operating system's error kind of an [`Error::Io`] (also inside
    /// an [`Error::Background`]); `None` for other errors.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            Error::Background(e) => e.io_kind(),
            _ => None,
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

    /// True for [`Error::Conflict`]: the transaction may succeed when run
    /// again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}
