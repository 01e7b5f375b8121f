//! [`Wal`]: the write-ahead log of a writable database, with the live blob
//! files its records point into.
//!
//! Invariant (kept here, for every way a WAL becomes durable: a synced
//! write, `wal_bytes_per_sync`, the periodic sync thread, rotation, close):
//! the live blob files appended to since the last sync are synced
//! **before** the log, so a durable WAL record never names a value that is
//! not durable. A failed blob write or sync fails the log too (fail-stop:
//! the log's records may name values whose state is unknown).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::blob::LiveBlobFile;
use crate::error::Result;
use crate::log::LogWriter;

/// The WAL being written, and the live blob files its unsynced records
/// may point into. Dereferences to the [`LogWriter`] for appends and
/// everything that makes nothing durable.
pub(crate) struct Wal {
    log: LogWriter,
    /// Live blob files appended to since the last sync (a few; each at
    /// most once).
    unsynced_blobs: Vec<Arc<LiveBlobFile>>,
}

impl Wal {
    /// Wraps the log `log`.
    pub(crate) fn new(log: LogWriter) -> Wal {
        Wal {
            log,
            unsynced_blobs: Vec::new(),
        }
    }

    /// Notes that records about to be appended point into `blob` (its
    /// sync must come before the log's).
    pub(crate) fn note_blob(&mut self, blob: &Arc<LiveBlobFile>) {
        if !self.unsynced_blobs.iter().any(|b| Arc::ptr_eq(b, blob)) {
            self.unsynced_blobs.push(Arc::clone(blob));
        }
    }

    /// Hands the records appended to the live blob files to the OS (see
    /// `super::separate`): before the records that name them are appended
    /// to the log. On failure the log fails too.
    pub(crate) fn publish_blobs(&mut self) -> Result<()> {
        for b in &self.unsynced_blobs {
            if let Err(e) = b.publish() {
                self.log.fail();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Fails the log after a failed write to a live blob file: `e` is
    /// returned, and the log accepts nothing more.
    pub(crate) fn fail_with<T>(&mut self, e: crate::error::Error) -> Result<T> {
        self.log.fail();
        Err(e)
    }

    /// Syncs the live blob files written since the last sync; on failure
    /// the log fails too.
    fn sync_blobs(&mut self) -> Result<()> {
        self.log.check_failed()?;
        for b in &self.unsynced_blobs {
            if let Err(e) = b.sync() {
                self.log.fail();
                return Err(e);
            }
        }
        self.unsynced_blobs.clear();
        Ok(())
    }

    /// Makes every appended record durable: the live blob files first,
    /// then the log ([`LogWriter::sync`]).
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.sync_blobs()?;
        self.log.sync()
    }

    /// [`LogWriter::finish`], the live blob files synced first.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.sync_blobs()?;
        self.log.finish()
    }

    /// Replaces the log with `log` (a rotation, after [`Wal::finish`]).
    pub(crate) fn replace(&mut self, log: LogWriter) {
        debug_assert!(self.unsynced_blobs.is_empty());
        self.log = log;
    }
}

impl Deref for Wal {
    type Target = LogWriter;
    fn deref(&self) -> &LogWriter {
        &self.log
    }
}

impl DerefMut for Wal {
    fn deref_mut(&mut self) -> &mut LogWriter {
        &mut self.log
    }
}
