//! A version: the set of live SST files, level by level, at one moment.
//!
//! Versions are immutable and shared (`Arc`); a new one is built from the
//! previous one plus a [`VersionEdit`] each time a flush or compaction
//! finishes. Readers hold the version they started with, which keeps its
//! files readable and on disk until they finish.
//!
//! Invariants:
//! - Level 0 files may overlap; they are kept newest first (by largest
//!   sequence number, then file number), and a read checks them in that order.
//! - In levels 1 and deeper, files do not overlap and are sorted by key.
//! - A file removed from the live version is marked obsolete; its file on
//!   disk is deleted when the last version or iterator holding it drops it.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use crate::blob::BlobRef;
use crate::error::{Error, Result};
use crate::key::{ends_before, user_key, SeqNo, ValueKind};
use crate::memtable::Lookup;
use crate::sst::Table;
use crate::version::blob_files::{apply_blob_edit, BlobFileHandle, BlobFiles};
use crate::version::edit::{BlobFileMeta, FileMetaData, VersionEdit};
use crate::version::table_cache::TableOpener;
use bytes::Bytes;
use lightning_compaction::FragmentedTombstones;

/// An SST file of a version: its metadata, and its table while open.
///
/// The table is opened when the file joins a version, and may be closed
/// by the table cache ([`crate::version::table_cache`]) when too many are
/// open; [`TableFile::table`] opens it again for the next read.
pub(crate) struct TableFile {
    /// What the manifest says about the file.
    pub(crate) meta: FileMetaData,
    /// The open table (mapped or read with `pread`), `None` while closed.
    table: ArcSwapOption<Table>,
    /// Read since the table cache last looked (CLOCK's reference bit).
    referenced: AtomicBool,
    /// Held while the table is being opened again (one opener at a time).
    reopening: Mutex<()>,
    /// How to open it again, and the cache counting open tables.
    opener: TableOpener,
    /// This file, for the table cache's ring.
    this: Weak<TableFile>,
    path: PathBuf,
    obsolete: AtomicBool,
    /// The table's range tombstones (read at open, kept while the table
    /// cache closes and reopens the table).
    range_dels: Option<Arc<FragmentedTombstones>>,
}

/// A table borrowed from a [`TableFile`] for one read: it stays open
/// while the borrow lives, even if the table cache closes it meanwhile.
pub(crate) enum TableRef {
    /// Loaded from the file's slot (no reference count touched).
    Slot(arc_swap::Guard<Option<Arc<Table>>>),
    /// Just opened again.
    Opened(Arc<Table>),
}

impl std::ops::Deref for TableRef {
    type Target = Arc<Table>;
    fn deref(&self) -> &Arc<Table> {
        match self {
            TableRef::Slot(g) => match g.as_ref() {
                Some(t) => t,
                // A `Slot` is only made from a loaded slot.
                None => unreachable!("TableRef::Slot of a closed table"),
            },
            TableRef::Opened(t) => t,
        }
    }
}

impl TableFile {
    /// The file described by `meta`, whose table `table` is open.
    pub(crate) fn new(meta: FileMetaData, table: Arc<Table>, opener: TableOpener) -> Arc<Self> {
        let path = crate::filename::table_file_name(&opener.dir, meta.number);
        let range_dels = table.range_tombstones().cloned();
        let f = Arc::new_cyclic(|this| TableFile {
            meta,
            table: ArcSwapOption::new(Some(table)),
            referenced: AtomicBool::new(true),
            reopening: Mutex::new(()),
            opener,
            this: this.clone(),
            path,
            obsolete: AtomicBool::new(false),
            range_dels,
        });
        f.opener.tables.loaded(Weak::clone(&f.this));
        f
    }

    /// The file's table, opened again if the table cache closed it.
    #[inline]
    pub(crate) fn table(&self) -> Result<TableRef> {
        let g = self.table.load();
        if g.is_some() {
            // A shared write only when the mark was clear.
            if !self.referenced.load(AtomicOrdering::Relaxed) {
                self.referenced.store(true, AtomicOrdering::Relaxed);
            }
            return Ok(TableRef::Slot(g));
        }
        drop(g);
        self.reopen()
    }

    #[cold]
    fn reopen(&self) -> Result<TableRef> {
        let _one = self.reopening.lock();
        if let Some(t) = self.table.load_full() {
            return Ok(TableRef::Opened(t));
        }
        let t = self.opener.open_table(&self.meta)?;
        self.table.store(Some(Arc::clone(&t)));
        self.referenced.store(true, AtomicOrdering::Relaxed);
        self.opener.tables.loaded(Weak::clone(&self.this));
        Ok(TableRef::Opened(t))
    }

    /// For the table cache: whether the table was read since the last
    /// call (and clears the mark).
    pub(crate) fn take_referenced(&self) -> bool {
        self.referenced.swap(false, AtomicOrdering::Relaxed)
    }

    /// For the table cache: closes the table (reads in progress keep
    /// theirs); true when it was open.
    pub(crate) fn close_table(&self) -> bool {
        self.table.swap(None).is_some()
    }

    /// Marks the file for deletion once nothing refers to it.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, AtomicOrdering::Release);
    }

    /// Path of the file.
    #[allow(dead_code)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// True when the file's key range holds user key `k` (its largest key
    /// may be an exclusive bound: [`crate::key::range_end_bound`]).
    fn contains_user_key(&self, k: &[u8]) -> bool {
        user_key(&self.meta.smallest) <= k && !ends_before(&self.meta.largest, k)
    }

    /// The file's range tombstones, if any.
    pub(crate) fn range_tombstones(&self) -> Option<&Arc<FragmentedTombstones>> {
        self.range_dels.as_ref()
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        if self.table.swap(None).is_some() {
            self.opener.tables.forget();
        }
        if self.obsolete.load(AtomicOrdering::Acquire) {
            if let Err(e) = self.opener.fs.remove_file(&self.path) {
                tracing::warn!(file = %self.path.display(), error = %e, "could not delete obsolete table file");
            }
        }
    }
}

impl std::fmt::Debug for TableFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableFile")
            .field("number", &self.meta.number)
            .field("size", &self.meta.file_size)
            .finish()
    }
}

/// A key's data block in one file, found ahead of its lookup
/// ([`Version::locate`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    /// The file's number.
    file: u64,
    /// The data block the lookup reads in it.
    block: crate::sst::BlockHandle,
}

/// The live files, by level, and the live blob files.
#[derive(Debug, Clone, Default)]
pub(crate) struct Version {
    levels: Vec<Vec<Arc<TableFile>>>,
    /// Blob files the SSTs' blob references point into.
    blob_files: BlobFiles,
    /// The range tombstones of all its files, fragmented together (`None`
    /// when no file has one): a read checks one set, not one per file.
    range_dels: Option<Arc<FragmentedTombstones>>,
}

fn l0_order(a: &Arc<TableFile>, b: &Arc<TableFile>) -> Ordering {
    b.meta
        .largest_seq
        .cmp(&a.meta.largest_seq)
        .then(b.meta.number.cmp(&a.meta.number))
}

impl Version {
    /// A version without files, with `num_levels` levels.
    pub(crate) fn empty(num_levels: usize) -> Self {
        Version {
            levels: vec![Vec::new(); num_levels],
            blob_files: BlobFiles::new(),
            range_dels: None,
        }
    }

    /// The range tombstones of all the files, if any.
    #[inline]
    pub(crate) fn range_tombstones(&self) -> Option<&Arc<FragmentedTombstones>> {
        self.range_dels.as_ref()
    }

    /// The live blob files, by number.
    pub(crate) fn blob_files(&self) -> &BlobFiles {
        &self.blob_files
    }

    /// Levels of this version, level 0 included.
    pub(crate) fn num_levels(&self) -> usize {
        self.levels.len()
    }

    /// Files of `level` (level 0 newest first; deeper levels by key).
    pub(crate) fn files(&self, level: usize) -> &[Arc<TableFile>] {
        self.levels.get(level).map_or(&[], |v| v.as_slice())
    }

    /// All files of all levels.
    pub(crate) fn all_files(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(l, fs)| fs.iter().map(move |f| (l, f)))
    }

    /// Number of files in all levels.
    #[allow(dead_code)]
    pub(crate) fn num_files(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// The newest version of `key` (whose [`crate::sst::filter_hash`] is `hash`) with
    /// sequence number `<= seq` in the files, or `None` when no file has
    /// one.
    pub(crate) fn get_hashed(&self, key: &[u8], hash: u64, seq: SeqNo) -> Result<Option<Lookup>> {
        // The files a lookup may read, newest first: pass one starts
        // loading each one's filter line, so their cache misses overlap;
        // pass two probes them in order and stops at the first hit.
        self.prefetch_filters(key, hash, seq)?;
        self.get_located(key, hash, seq, None)
    }

    /// The first half of a batched lookup whose blocks are not in memory
    /// (`Db::multi_get`): the data block that [`get_hashed`](Self::get_hashed)
    /// of `key` at `seq` reads in the first file whose filter lets the key
    /// through, found by that file's index descent, with a request to the
    /// OS to read it in ahead. `None` when no file's filter does (or that
    /// file has no block for the key). An error here is left for the
    /// lookup proper, which meets it again and reports it.
    pub(crate) fn locate(&self, key: &[u8], hash: u64, seq: SeqNo) -> Option<Located> {
        self.for_each_candidate(key, seq, |f| {
            let t = f.table()?;
            if !t.may_contain_hash(hash) {
                return Ok(None);
            }
            // The first file the lookup reads a block of: this one.
            Ok(Some(t.locate_data_block(key, seq)?.map(|block| Located {
                file: f.meta.number,
                block,
            })))
        })
        .ok()
        .flatten()
        .flatten()
    }

    /// [`get_hashed`](Self::get_hashed) without its filter prefetch, and
    /// with `located` (from [`locate`](Self::locate) for the same key and
    /// sequence number, on this version): in its file the lookup starts at
    /// the data block instead of descending the index again.
    #[inline]
    pub(crate) fn get_located(
        &self,
        key: &[u8],
        hash: u64,
        seq: SeqNo,
        located: Option<Located>,
    ) -> Result<Option<Lookup>> {
        self.for_each_candidate(key, seq, |f| {
            let t = f.table()?;
            let got = match located {
                Some(l) if l.file == f.meta.number => t.get_in_block(key, seq, l.block)?,
                _ => t.get_hashed(key, hash, seq)?,
            };
            let Some((seq, kind, v)) = got else {
                return Ok(None);
            };
            Ok(Some(match kind {
                ValueKind::Delete => Lookup::Deleted(seq),
                ValueKind::BlobIndex => Lookup::Value(self.read_blob(&v, Some(&f.path))?, seq),
                ValueKind::Merge => Lookup::Merge(seq),
                ValueKind::Value => Lookup::Value(v, seq),
                ValueKind::TimedValue => Lookup::Timed(v, seq),
            }))
        })
    }

    /// Starts loading the filter line of `key` (whose filter hash is
    /// `hash`) in every file a lookup at `seq` may probe (a hint: see
    /// [`crate::prefetch`]).
    #[inline]
    pub(crate) fn prefetch_filters(&self, key: &[u8], hash: u64, seq: SeqNo) -> Result<()> {
        self.for_each_candidate(key, seq, |f| {
            if let Ok(t) = f.table() {
                t.prefetch_filter(hash);
            }
            Ok(None::<()>)
        })?;
        Ok(())
    }

    /// The value the encoded blob reference `r` points to, read from this
    /// version's blob files. A reference that does not decode, or names a
    /// blob file this version does not list (a dangling reference), is
    /// `Corruption` naming `sst` (the table holding it), when known.
    pub(crate) fn read_blob(&self, r: &[u8], sst: Option<&Path>) -> Result<Bytes> {
        let at = |reason: String| match sst {
            Some(p) => Error::corruption(p, 0, reason),
            None => Error::corruption(PathBuf::from("<blob reference>"), 0, reason),
        };
        let blob =
            BlobRef::decode(r).map_err(|e| at(format!("bad blob reference: {}", e.reason)))?;
        match self.blob_files.get(&blob.file_number) {
            Some(f) => f.handle.read(&blob),
            None => Err(at(format!(
                "blob reference to blob file {}, which is not live (a dangling reference)",
                blob.file_number
            ))),
        }
    }

    /// Calls `visit` on every file that may hold `key` at `seq`, newest
    /// first (level-0 files whose range holds it, then at most one file per
    /// deeper level), until `visit` returns `Some`.
    #[inline]
    pub(crate) fn for_each_candidate<T>(
        &self,
        key: &[u8],
        seq: SeqNo,
        mut visit: impl FnMut(&TableFile) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        for f in self.files(0) {
            if f.meta.smallest_seq > seq || !f.contains_user_key(key) {
                continue;
            }
            if let Some(found) = visit(f)? {
                return Ok(Some(found));
            }
        }
        for level in 1..self.levels.len() {
            let files = self.files(level);
            let i = files.partition_point(|f| ends_before(&f.meta.largest, key));
            if let Some(f) = files.get(i) {
                if f.contains_user_key(key) {
                    if let Some(found) = visit(f)? {
                        return Ok(Some(found));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The version after `edit`; `open_table` opens each new file and
    /// `open_blob` makes the handle of each new blob file. Deleted files
    /// must exist at the named level, deleted blob files must be live.
    pub(crate) fn apply(
        &self,
        edit: &VersionEdit,
        mut open_table: impl FnMut(&FileMetaData) -> Result<Arc<TableFile>>,
        open_blob: impl FnMut(&BlobFileMeta) -> Arc<BlobFileHandle>,
    ) -> Result<Version> {
        let blob_files = apply_blob_edit(&self.blob_files, edit, open_blob)?;
        let mut levels = self.levels.clone();
        // Files removed by the edit, by number: a file that is removed from
        // one level and added to another (a trivial move) keeps its open
        // table and is not reopened.
        let mut removed: Vec<Arc<TableFile>> = Vec::new();
        for &(level, number) in &edit.deleted_files {
            let files = levels
                .get_mut(level as usize)
                .ok_or_else(|| Error::InvalidArgument(format!("level {level} out of range")))?;
            let Some(pos) = files.iter().position(|f| f.meta.number == number) else {
                return Err(Error::Internal(format!(
                    "version edit deletes file {number} which is not in level {level}"
                )));
            };
            removed.push(files.remove(pos));
        }
        for (level, meta) in &edit.new_files {
            let num_levels = levels.len();
            let files = levels.get_mut(*level as usize).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "file {} is at level {level} but compaction.num_levels is {num_levels}",
                    meta.number
                ))
            })?;
            match removed.iter().find(|f| f.meta.number == meta.number) {
                Some(f) => files.push(Arc::clone(f)),
                None => files.push(open_table(meta)?),
            }
        }
        for (level, files) in levels.iter_mut().enumerate() {
            if level == 0 {
                files.sort_by(l0_order);
            } else {
                files.sort_by(|a, b| {
                    crate::key::compare_internal(&a.meta.smallest, &b.meta.smallest)
                });
            }
        }
        let range_dels = fragment_all(&levels);
        Ok(Version {
            levels,
            blob_files,
            range_dels,
        })
    }
}

/// The range tombstones of every file in `levels`, fragmented together;
/// `None` when no file has one.
fn fragment_all(levels: &[Vec<Arc<TableFile>>]) -> Option<Arc<FragmentedTombstones>> {
    let sets: Vec<&Arc<FragmentedTombstones>> = levels
        .iter()
        .flatten()
        .filter_map(|f| f.range_tombstones())
        .collect();
    match sets.as_slice() {
        [] => None,
        [one] => Some(Arc::clone(one)),
        many => Some(Arc::new(FragmentedTombstones::merge(
            many.iter().map(|s| s.as_ref()),
        ))),
    }
}
