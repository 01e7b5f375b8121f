//! What flush and compaction share to read and write runs: the cursor
//! that feeds an internal iterator to the merge, and the manifest record
//! of a finished SST file. (Its own module so that neither `flush` nor
//! `compact` imports the other.)

use lightning_compaction::{EntryCursor, EntryKind, EntryRef};

use std::sync::Arc;

use crate::blob::BlobTally;
use crate::error::{Error, Result};
use crate::iter::InternalIterator;
use crate::key::{parse_internal_key, ValueKind};
use crate::version::edit::FileMetaData;

/// An internal iterator seen as a compaction input cursor, stopping at a
/// range end.
pub(crate) struct TableCursor {
    it: Box<dyn InternalIterator>,
    end: Option<Vec<u8>>,
    /// Counts the blob references the cursor moves past (a compaction's
    /// inputs, for garbage accounting).
    tally: Option<Arc<BlobTally>>,
}

impl TableCursor {
    /// A cursor over `it`, which must already be positioned on its first
    /// entry; it runs to the end of `it`.
    pub(crate) fn new(it: Box<dyn InternalIterator>) -> Result<Self> {
        TableCursor::bounded(it, None)
    }

    /// A cursor over `it` (positioned on its first entry) that ends before
    /// the user key `end` (at the end of `it` for `None`).
    pub(crate) fn bounded(it: Box<dyn InternalIterator>, end: Option<Vec<u8>>) -> Result<Self> {
        let c = TableCursor {
            it,
            end,
            tally: None,
        };
        c.check()?;
        Ok(c)
    }

    /// Counts every blob reference this cursor moves past in `tally`.
    pub(crate) fn with_tally(mut self, tally: Option<Arc<BlobTally>>) -> Self {
        self.tally = tally;
        self
    }

    /// Reports an iterator error or a malformed key at the position.
    fn check(&self) -> Result<()> {
        if !self.it.valid() {
            return self.it.status();
        }
        if parse_internal_key(self.it.key()).is_none() {
            // Every source checks its keys (a block decoder reports
            // `Corruption` with the file and offset): a broken invariant.
            return Err(Error::Internal(
                "malformed internal key in a flush or compaction input".into(),
            ));
        }
        Ok(())
    }
}

impl EntryCursor for TableCursor {
    type Error = Error;

    fn current(&self) -> Option<EntryRef<'_>> {
        if !self.it.valid() {
            return None;
        }
        let p = parse_internal_key(self.it.key())?;
        if let Some(end) = &self.end {
            if p.user_key >= end.as_slice() {
                return None;
            }
        }
        Some(EntryRef {
            user_key: p.user_key,
            seq: p.seq,
            kind: entry_kind(p.kind),
            value: self.it.value(),
        })
    }

    fn advance(&mut self) -> Result<()> {
        if self.it.valid() {
            if let Some(t) = &self.tally {
                if let Some(p) = parse_internal_key(self.it.key()) {
                    if p.kind == ValueKind::BlobIndex {
                        t.note(p.user_key.len(), self.it.value())?;
                    }
                }
            }
            self.it.next();
        }
        self.check()
    }
}

/// The manifest's record of a finished SST file.
pub(crate) fn file_meta(
    number: u64,
    file_size: u64,
    props: &crate::sst::TableProperties,
) -> FileMetaData {
    FileMetaData {
        number,
        file_size,
        smallest: props.smallest_key.clone(),
        largest: props.largest_key.clone(),
        smallest_seq: props.smallest_seq,
        largest_seq: props.largest_seq,
        num_entries: props.num_entries,
        num_deletions: props.num_deletions,
    }
}

/// The compaction crate's kind of an engine entry.
pub(crate) fn entry_kind(k: ValueKind) -> EntryKind {
    match k {
        ValueKind::Delete => EntryKind::Delete,
        ValueKind::Value => EntryKind::Value,
        ValueKind::BlobIndex => EntryKind::Indirect,
        ValueKind::Merge => EntryKind::Merge,
        ValueKind::TimedValue => EntryKind::TimedValue,
    }
}

/// The engine's kind of a compaction entry ([`entry_kind`] reversed).
pub(crate) fn value_kind(k: EntryKind) -> ValueKind {
    match k {
        EntryKind::Delete => ValueKind::Delete,
        EntryKind::Indirect => ValueKind::BlobIndex,
        EntryKind::Merge => ValueKind::Merge,
        EntryKind::TimedValue => ValueKind::TimedValue,
        _ => ValueKind::Value,
    }
}
