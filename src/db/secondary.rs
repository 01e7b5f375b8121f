//! A secondary instance (`Db::open_secondary`, RocksDB's secondary mode):
//! a read-only follower of a database another handle (in this process or
//! another) is writing, brought up to date by
//! [`SecondaryDb::try_catch_up_with_primary`].
//!
//! Each catch-up is a read-only recovery (the manifest, then the live
//! WALs replayed into memory, exactly as [`Db::open_read_only`] recovers)
//! that takes no lock, so it coexists with the primary's exclusive one.
//! What the primary may do meanwhile, and why the follower stays sound:
//! - **Delete files** (after compactions, flushes, manifest rewrites): the
//!   follower's recovery opens every SST of its view, and then every blob
//!   file (`open_every_table`), and keeps them open
//!   (`max_open_files = -1`); a deleted file that is open stays readable.
//!   A file deleted between reading the manifest and opening it fails that
//!   recovery, which is retried.
//! - **Append to and truncate logs** (a WAL's preallocated tail is cut when
//!   it is closed): the follower reads manifests and WALs with `pread`
//!   into memory ([`CopyingFs`]), never through a memory map, so a
//!   truncation can never fault it (SIGBUS). A record still being appended
//!   reads as a torn tail and ends that WAL's replay: the view is a prefix
//!   of the history.
//!
//! Readers keep the view they took ([`SecondaryDb::db`]); a catch-up
//! swaps in a new one for later readers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::Db;
use crate::error::{Error, Result};
use crate::filename::{parse_file_name, FileKind};
use crate::fs::{FileLock, FileSystem, RandomAccessFile, WritableFile};
use crate::options::Options;

/// Recoveries a catch-up tries before it gives up (files deleted, or a
/// manifest rewritten, under it).
const ATTEMPTS: u32 = 5;

/// A read-only follower of a live database: see the module
/// documentation and [`Db::open_secondary`].
#[derive(Debug)]
pub struct SecondaryDb {
    dir: PathBuf,
    opts: Options,
    current: RwLock<Arc<Db>>,
}

impl SecondaryDb {
    /// Opens the follower of the database in `dir` (see
    /// [`Db::open_secondary`]).
    pub(crate) fn open(dir: &Path, mut opts: Options) -> Result<SecondaryDb> {
        // Every file of a view stays open (deleted files stay readable).
        opts.max_open_files = -1;
        // Each catch-up makes a new view: none registers Prometheus
        // families (they would collide with the previous view's).
        #[cfg(feature = "prometheus")]
        {
            opts.metrics_registry = None;
        }
        let db = recover(dir, &opts)?;
        Ok(SecondaryDb {
            dir: dir.to_path_buf(),
            opts,
            current: RwLock::new(Arc::new(db)),
        })
    }

    /// The current view: a read-only [`Db`] (gets, scans, snapshots,
    /// `multi_get`, properties; writes fail with [`Error::ReadOnly`]).
    /// It does not move: call [`try_catch_up_with_primary`] and take the
    /// view again to see newer writes.
    ///
    /// [`try_catch_up_with_primary`]: Self::try_catch_up_with_primary
    pub fn db(&self) -> Arc<Db> {
        Arc::clone(&self.current.read())
    }

    /// Replays what the primary wrote since the last catch-up (its
    /// manifest and WALs) into a new view, which later calls of
    /// [`db`](Self::db) return. The new view holds a prefix of the
    /// primary's history that includes every write the primary had
    /// acknowledged before this call. Fails (keeping the old view) when
    /// recovery fails 5 times in a row.
    pub fn try_catch_up_with_primary(&self) -> Result<()> {
        let db = recover(&self.dir, &self.opts)?;
        *self.current.write() = Arc::new(db);
        Ok(())
    }
}

/// A read-only recovery of `dir` without a lock, retried while the
/// primary changes files under it.
fn recover(dir: &Path, opts: &Options) -> Result<Db> {
    let mut opts = opts.clone();
    opts.fs = Arc::new(CopyingFs(Arc::clone(&opts.fs)));
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(5 << attempt));
        }
        match super::open::open_read_only_unlocked(dir, opts.clone()).and_then(|db| {
            db.inner.open_every_table()?;
            Ok(db)
        }) {
            Ok(db) => return Ok(db),
            Err(e @ (Error::NotADatabase { .. } | Error::InvalidArgument(_))) => return Err(e),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), attempt, error = %e, "secondary recovery retried");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Internal("secondary recovery made no attempt".into())))
}

/// The follower's file system: the primary's, except that logs (WALs,
/// manifests, `CURRENT`) are read by position into memory, never mapped:
/// the primary truncates them, and a mapping past the new end faults.
#[derive(Debug)]
struct CopyingFs(Arc<dyn FileSystem>);

impl FileSystem for CopyingFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.0.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.0.create(path)
    }
    fn read_file(&self, path: &Path) -> Result<Bytes> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if matches!(
            parse_file_name(name),
            Some(FileKind::Table(_) | FileKind::Blob(_))
        ) {
            // Immutable; deleted, never truncated: mapping is safe.
            return self.0.read_file(path);
        }
        let f = self.0.open_random(path)?;
        let len = f.size()?;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
        let mut at = 0usize;
        while at < buf.len() {
            let n = f.read_at(at as u64, buf.get_mut(at..).unwrap_or_default())?;
            if n == 0 {
                // Truncated meanwhile: what was read is what there is.
                buf.truncate(at);
                break;
            }
            at += n;
        }
        Ok(Bytes::from(buf))
    }
    fn open_random(&self, path: &Path) -> Result<Box<dyn RandomAccessFile>> {
        self.0.open_random(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.0.remove_file(path)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        self.0.link(from, to)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.0.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.0.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.0.exists(path)
    }
    fn file_size(&self, path: &Path) -> Result<u64> {
        self.0.file_size(path)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.0.lock(path)
    }
}
