//! [`LiveBlobFile`]: the blob file the write path appends large values to
//! at put time (WiscKey's value log), one per active memtable of a
//! keyspace with blob files.
//!
//! Life of a live blob file (`docs/format.md`, "Blob files written at put
//! time"):
//! 1. The write-group leader creates it on the first large value for its
//!    memtable, and appends each large value of its group to it **before**
//!    the group's WAL record, which holds only the reference
//!    ([`crate::batch`]'s `PutBlob` operations), with the WAL lock held.
//!    The appended records are handed to the OS ([`LiveBlobFile::publish`])
//!    before the batch is inserted, so readers find them.
//! 2. Every WAL sync syncs the live blob files written since the last one
//!    first (`db::wal::Wal`): a durable WAL record never names a value
//!    that is not durable.
//! 3. The flush of the memtable, once frozen (no more appends), writes the
//!    footer ([`LiveBlobFile::finish`]) and records the file in the same
//!    manifest edit as the SST that references it; from then on it is an
//!    ordinary blob file of the version.
//! 4. After a crash, recovery reads the values the replayed WAL records
//!    name back from the unfinished file and flushes them like any value;
//!    the file itself, which no manifest lists, is then deleted.
//!
//! Invariants: only the leader appends, and only while the memtable is
//! active; `readable` only grows, and every record below it was written
//! to the OS whole.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::format::BlobRef;
use super::reader::read_value;
use super::writer::{BlobFileInfo, BlobFileWriter};
use crate::error::{Error, Result};
use crate::filename::blob_file_name;
use crate::fs::{FileSystem, RandomAccessFile};
use crate::options::Compression;

use crate::fs::WRITEBACK_BYTES;

/// A blob file being appended to by the write path (see the module
/// documentation).
pub(crate) struct LiveBlobFile {
    number: u64,
    path: PathBuf,
    /// Readers' handle, opened right after the file was created: it
    /// reads what was handed to the OS, and keeps the file readable after
    /// its name is removed.
    reader: Box<dyn RandomAccessFile>,
    /// `None` once finished.
    writer: Mutex<Option<BlobFileWriter>>,
    /// Bytes handed to the OS whole: every reference below it reads.
    readable: AtomicU64,
    /// Records were appended since the last [`LiveBlobFile::sync`].
    unsynced: AtomicBool,
    /// `readable` when writeback was last started.
    writeback_at: AtomicU64,
    /// The database's count of bytes read from blob files.
    bytes_read: Arc<AtomicU64>,
    /// The totals once finished.
    finished: Mutex<Option<BlobFileInfo>>,
}

impl std::fmt::Debug for LiveBlobFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveBlobFile")
            .field("path", &self.path)
            .field("readable", &self.readable)
            .finish_non_exhaustive()
    }
}

impl LiveBlobFile {
    /// Creates blob file `number` in `dir`, writes its header and syncs
    /// the directory (so a synced write's value can always be found by its
    /// name after a crash).
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        number: u64,
        compression: Compression,
        bytes_read: Arc<AtomicU64>,
    ) -> Result<LiveBlobFile> {
        let mut writer = BlobFileWriter::create(fs, dir, number, compression)?;
        writer.flush()?;
        writer.sync()?;
        fs.sync_dir(dir)?;
        let path = blob_file_name(dir, number);
        let reader = fs.open_random(&path)?;
        Ok(LiveBlobFile {
            number,
            path,
            reader,
            readable: AtomicU64::new(writer.file_size()),
            writer: Mutex::new(Some(writer)),
            unsynced: AtomicBool::new(false),
            writeback_at: AtomicU64::new(0),
            bytes_read,
            finished: Mutex::new(None),
        })
    }

    /// The file's number.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Appends a record of `key` and `value`; returns its reference. It is
    /// readable once [`publish`](Self::publish)ed.
    pub(crate) fn append(&self, key: &[u8], value: &[u8]) -> Result<BlobRef> {
        let mut w = self.writer.lock();
        let Some(w) = w.as_mut() else {
            return Err(Error::Internal(format!(
                "append to the finished blob file {}",
                self.path.display()
            )));
        };
        let r = w.add(key, value)?;
        self.unsynced.store(true, Ordering::Release);
        Ok(r)
    }

    /// Hands the appended records to the OS and makes them readable.
    /// Every [`WRITEBACK_BYTES`] it also asks the OS to start writing
    /// them back, so the sync that finishes the file (or a synced write)
    /// finds most of them on storage already, rather than the whole
    /// memtable's worth of values to wait for.
    pub(crate) fn publish(&self) -> Result<()> {
        let mut w = self.writer.lock();
        if let Some(w) = w.as_mut() {
            let size = w.file_size();
            if size - self.writeback_at.load(Ordering::Relaxed) >= WRITEBACK_BYTES {
                w.start_writeback()?;
                self.writeback_at.store(size, Ordering::Relaxed);
            } else {
                w.flush()?;
            }
            self.readable.store(size, Ordering::Release);
        }
        Ok(())
    }

    /// Makes the appended records durable (a no-op when nothing was
    /// appended since the last sync, or once finished: finishing syncs).
    pub(crate) fn sync(&self) -> Result<()> {
        if !self.unsynced.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let mut w = self.writer.lock();
        match w.as_mut() {
            Some(w) => w.sync().inspect_err(|_| {
                // Fail-stop is the caller's; the flag says it is unknown.
                self.unsynced.store(true, Ordering::Release);
            }),
            None => Ok(()),
        }
    }

    /// Writes the footer and syncs the file (once; later calls return the
    /// same totals). Called when no more appends can come: the memtable
    /// is frozen and every group logged into it is inserted.
    pub(crate) fn finish(&self) -> Result<BlobFileInfo> {
        let mut done = self.finished.lock();
        if let Some(info) = *done {
            return Ok(info);
        }
        let Some(w) = self.writer.lock().take() else {
            return Err(Error::Internal(format!(
                "blob file {} was finished without its totals",
                self.path.display()
            )));
        };
        let info = w.finish()?;
        self.unsynced.store(false, Ordering::Release);
        *done = Some(info);
        Ok(info)
    }

    /// The value `r` refers to (checksummed).
    pub(crate) fn read(&self, r: &BlobRef) -> Result<Bytes> {
        let end = self.readable.load(Ordering::Acquire);
        let v = read_value(self.reader.as_ref(), &self.path, self.number, r, end)?;
        self.bytes_read
            .fetch_add(u64::from(r.stored_len), Ordering::Relaxed);
        Ok(v)
    }

    /// Bytes readable now: a prefix of whole records (a checkpoint copies
    /// this much).
    pub(crate) fn readable_len(&self) -> u64 {
        self.readable.load(Ordering::Acquire)
    }

    /// The readers' handle (a checkpoint copies the file through it, so a
    /// name removed meanwhile does not matter).
    pub(crate) fn reader(&self) -> &dyn RandomAccessFile {
        self.reader.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemFs;

    #[test]
    fn appended_values_read_after_publish_and_finish_counts_them() {
        let fs = MemFs::new();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let read = Arc::new(AtomicU64::new(0));
        let f = LiveBlobFile::create(&fs, dir, 9, Compression::None, Arc::clone(&read)).unwrap();
        let a = f.append(b"a", &[1u8; 5000]).unwrap();
        // Not handed to the OS yet: out of the readable records.
        assert!(f.read(&a).unwrap_err().is_corruption());
        f.publish().unwrap();
        assert_eq!(&f.read(&a).unwrap()[..], &[1u8; 5000][..]);
        let b = f.append(b"b", &[2u8; 7000]).unwrap();
        f.publish().unwrap();
        f.sync().unwrap();
        assert_eq!(&f.read(&b).unwrap()[..], &[2u8; 7000][..]);
        // Reads that returned a value are counted, the refused one not.
        assert_eq!(read.load(Ordering::Relaxed), 12_000);
        let info = f.finish().unwrap();
        assert_eq!(info.blob_count, 2);
        assert_eq!(f.finish().unwrap(), info);
        assert!(f.append(b"c", b"x").is_err());
        // Finished, it is an ordinary blob file.
        let done = super::super::BlobFile::open(&fs, dir, 9).unwrap();
        assert_eq!(&done.read(&a).unwrap()[..], &[1u8; 5000][..]);
        assert_eq!(done.footer().blob_count, 2);
    }
}
