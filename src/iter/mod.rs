//! Iteration over internal entries.
//!
//! Every source of entries (a memtable, an SST block, a whole SST file, a
//! merge of several sources) is an [`InternalIterator`]: a cursor over
//! `(internal key, value)` pairs in internal-key order (see
//! [`crate::key`]), able to move both ways. The public iterators of the
//! database are built on top and apply MVCC visibility.

pub(crate) mod db_iter;
pub(crate) mod level;
pub(crate) mod merge;

use bytes::Bytes;

use crate::error::Result;

/// A positioned cursor over internal entries in internal-key order.
///
/// Contract:
/// - After any positioning call, [`valid`](Self::valid) says whether the
///   cursor stands on an entry; [`key`](Self::key) and
///   [`value`](Self::value) may only be called while it is valid.
/// - When the cursor becomes invalid because of an error (corruption, I/O),
///   [`status`](Self::status) returns that error; at a plain end it is `Ok`.
/// - `next` and `prev` may be mixed freely.
pub trait InternalIterator: Send {
    /// True when the cursor stands on an entry.
    fn valid(&self) -> bool;
    /// Moves to the first entry.
    fn seek_to_first(&mut self);
    /// Moves to the last entry.
    fn seek_to_last(&mut self);
    /// Moves to the first entry whose internal key is `>= target`.
    fn seek(&mut self, target: &[u8]);
    /// Moves to the last entry whose internal key is `<= target`.
    fn seek_for_prev(&mut self, target: &[u8]);
    /// Moves to the next entry. Requires `valid()`.
    fn next(&mut self);
    /// Moves to the previous entry. Requires `valid()`.
    fn prev(&mut self);
    /// The encoded internal key of the current entry.
    fn key(&self) -> &[u8];
    /// The value of the current entry (empty for tombstones).
    fn value(&self) -> &[u8];
    /// The value as shared bytes, without copying where the source allows
    /// (memory-mapped or cached blocks, memtable entries).
    fn value_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.value())
    }
    /// The error that stopped the cursor, if any.
    fn status(&self) -> Result<()>;
}

/// A cursor over nothing that reports an error: for a source that could
/// not be opened (a table the table cache closed and that fails to open
/// again), so the merge above it stops with that error.
pub(crate) struct ErrorIterator(crate::error::Error);

impl ErrorIterator {
    pub(crate) fn new(e: crate::error::Error) -> Self {
        ErrorIterator(e)
    }
}

impl InternalIterator for ErrorIterator {
    fn valid(&self) -> bool {
        false
    }
    fn seek_to_first(&mut self) {}
    fn seek_to_last(&mut self) {}
    fn seek(&mut self, _target: &[u8]) {}
    fn seek_for_prev(&mut self, _target: &[u8]) {}
    fn next(&mut self) {}
    fn prev(&mut self) {}
    fn key(&self) -> &[u8] {
        &[]
    }
    fn value(&self) -> &[u8] {
        &[]
    }
    fn status(&self) -> Result<()> {
        Err(self.0.clone())
    }
}
