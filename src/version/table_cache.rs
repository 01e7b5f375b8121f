//! The table cache: a bound on how many SST files are open at once
//! (`Options::max_open_files`, RocksDB's name).
//!
//! An open table holds a memory map (`allow_mmap_reads`) or a file
//! descriptor, plus its pinned filter and index pages. Both are limited by
//! the system — `vm.max_map_count` (65,530 maps by default on Linux) and
//! the open-file limit (`RLIMIT_NOFILE`) — and a database with small files
//! can have more tables than either allows. So a [`TableFile`] of a
//! version may be *closed*: its table is dropped and opened again (footer,
//! properties, filter and index pages read and verified anew) by the next
//! read that needs it.
//!
//! Policy: CLOCK (second chance). Every open table is in a ring; a read
//! marks its table referenced (one relaxed load, and a store only when
//! the mark was clear, so a hot table costs no shared write). When more
//! tables than the capacity are open, the ring's head is examined: a
//! referenced table loses its mark and goes to the back; an unreferenced
//! one is closed.
//!
//! Invariants:
//! - `open` counts the tables loaded in some [`TableFile`] of this cache;
//!   a file that is dropped while loaded gives its count back
//!   ([`TableCache::forget`]).
//! - A table is closed by replacing the file's slot with `None`; readers
//!   that loaded it before keep their `Arc` until they finish, so closing
//!   never invalidates a read in progress.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::edit::FileMetaData;
use super::version::TableFile;
use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::sst::Table;
use crate::version::blob_files::BlobFileHandle;
use crate::version::edit::BlobFileMeta;

/// The tables of one database that are open, and how many may be.
#[derive(Debug)]
pub(crate) struct TableCache {
    /// Most tables open at once.
    capacity: usize,
    /// Tables open now.
    open: AtomicUsize,
    /// The CLOCK ring: every open table once, oldest first.
    ring: Mutex<VecDeque<Weak<TableFile>>>,
}

impl TableCache {
    /// A cache keeping at most `capacity` (at least 1) tables open.
    pub(crate) fn new(capacity: usize) -> TableCache {
        TableCache {
            capacity: capacity.max(1),
            open: AtomicUsize::new(0),
            ring: Mutex::new(VecDeque::new()),
        }
    }

    /// Most tables open at once.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Tables open now.
    pub(crate) fn open_tables(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// `file` has just loaded its table: count it, and close others while
    /// more than the capacity are open.
    pub(crate) fn loaded(&self, file: Weak<TableFile>) {
        let mut ring = self.ring.lock();
        ring.push_back(file);
        self.open.fetch_add(1, Ordering::AcqRel);
        // Each table gets at most one second chance per round, so this
        // ends after two passes over the ring at most.
        let mut budget = 2 * ring.len() + 1;
        while self.open.load(Ordering::Acquire) > self.capacity && budget > 0 {
            budget -= 1;
            let Some(head) = ring.pop_front() else { break };
            let Some(f) = head.upgrade() else {
                // Dropped: `forget` gave its count back.
                continue;
            };
            if f.take_referenced() {
                ring.push_back(head);
            } else if f.close_table() {
                self.open.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// A file that is dropped while its table is loaded gives its count
    /// back (its ring entry dies with it).
    pub(crate) fn forget(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Opens the live SST files of a database: where they are, the block
/// cache they read through, how they are read, and the table cache that
/// bounds how many are open. Cheap to clone.
#[derive(Clone)]
pub(crate) struct TableOpener {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) dir: PathBuf,
    pub(crate) cache: Option<Arc<BlockCache>>,
    /// `Options::allow_mmap_reads`: map files, or read them with `pread`.
    pub(crate) mmap_reads: bool,
    pub(crate) tables: Arc<TableCache>,
    /// Bytes of values read from this database's blob files.
    pub(crate) blob_bytes_read: Arc<std::sync::atomic::AtomicU64>,
}

impl TableOpener {
    /// The version's handle of the SST file described by `meta`, with its
    /// table open (so that a file the manifest names but that cannot be
    /// opened is found now, not at the first read).
    pub(crate) fn open(&self, meta: &FileMetaData) -> Result<Arc<TableFile>> {
        let table = self.open_table(meta)?;
        Ok(TableFile::new(meta.clone(), table, self.clone()))
    }

    /// The version's handle of the blob file described by `meta` (opened
    /// at its first read).
    pub(crate) fn blob_handle(&self, meta: &BlobFileMeta) -> Arc<BlobFileHandle> {
        BlobFileHandle::new(
            Arc::clone(&self.fs),
            &self.dir,
            meta.number,
            Arc::clone(&self.blob_bytes_read),
        )
    }

    /// Opens the table of `meta` and checks it against the manifest's view
    /// of it (present, same size).
    pub(crate) fn open_table(&self, meta: &FileMetaData) -> Result<Arc<Table>> {
        let fs = &self.fs;
        let path = crate::filename::table_file_name(&self.dir, meta.number);
        if !fs.exists(&path)? {
            return Err(Error::corruption(
                &path,
                0,
                "the manifest lists this table file but it is missing",
            ));
        }
        let table = Table::open_cached(fs, &path, self.cache.as_ref(), self.mmap_reads)?;
        let actual = table.file_size();
        if actual != meta.file_size {
            return Err(Error::corruption(
                &path,
                0,
                format!(
                    "file is {actual} bytes but the manifest recorded {} bytes",
                    meta.file_size
                ),
            ));
        }
        Ok(Arc::new(table))
    }
}

/// Tables kept open at once for `max_open_files` (`-1`: no bound of its
/// own) when tables are read through maps (`mmap`) or with `pread`: never
/// more than the system allows — half of what `vm.max_map_count` leaves
/// after 8,192 maps (the process's other maps: memtable chunks, WAL
/// windows, libraries), or half of the open-file limit after 256 — and at
/// least 64. Where the limit cannot be read, 10,000.
pub(crate) fn capacity_for(max_open_files: i64, mmap: bool) -> usize {
    let system = if mmap {
        max_map_count().map(|n| n.saturating_sub(8192) / 2)
    } else {
        open_file_limit().map(|n| n.saturating_sub(256) / 2)
    }
    .unwrap_or(10_000)
    .max(64);
    match usize::try_from(max_open_files) {
        Ok(n) => n.min(system),
        Err(_) => system,
    }
}

/// `vm.max_map_count` (Linux).
fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The soft limit on open files (`RLIMIT_NOFILE`).
#[cfg(unix)]
fn open_file_limit() -> Option<usize> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into `r`, a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return None;
    }
    usize::try_from(r.rlim_cur).ok()
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<usize> {
    None
}
