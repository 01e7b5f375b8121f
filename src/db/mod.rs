//! The database façade: open, write, read, snapshots, iterators, flush,
//! close.
//!
//! Concurrency model:
//! - Writers queue up in the write group ([`mod@write`]); the first in line
//!   becomes the leader and writes the WAL records of the whole group with
//!   one write and at most one fsync; then the group's writers insert
//!   their batches into the memtable in parallel, while the next group is
//!   logged, and batches become visible in sequence order.
//! - Readers never lock: they load the visible sequence number and then the
//!   current [`SuperVersion`] through an `ArcSwap`.
//! - One background thread flushes frozen memtables to level-0 SST files
//!   ([`flush`]).
//!
//! - Compaction jobs run on a rayon pool ([`compact`]); the planner lives
//!   in the `lightning-compaction` crate.
//!
//! Lock order (never take an earlier one while holding a later one):
//! `queue` → `wal` → `versions` → `compaction` → `snapshots`; `flush_state`,
//! `publishing` and `bg_error` are only ever held alone or innermost, and the event
//! log's lock (`metrics::event_log`) below everything. Background
//! threads take `queue` only to wake stalled writers, holding nothing else.
//!
//! Observability ([`observe`], `crate::metrics`): user operations are
//! counted in per-thread slots, writes once per group by the leader;
//! background events in shared atomics; the rest is read on demand.

mod checkpoint;
#[cfg(test)]
mod close_tests;
mod compact;
mod flush;
mod ingest;
mod keyspaces;
pub(crate) mod multi_get;
mod observe;
mod open;
#[cfg(feature = "prometheus")]
mod prom;
#[cfg(test)]
mod read_order_tests;
mod replay;
mod run_io;
mod secondary;
mod separate;
mod tree;
mod verify;
mod wal;
mod write;
#[cfg(test)]
mod write_race_tests;

pub use observe::PROPERTY_NAMES;
pub(crate) use tree::Tree;
pub use verify::IntegrityReport;
pub(crate) use write::take_spare_batch;

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::batch::OpKind;
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::fs::{FileLock, FileSystem};
use crate::iter::db_iter::{prefix_successor, BlobResolver, Iter};
use crate::key::SeqNo;
use crate::log::LogWriter;
use crate::metrics::local::{Counter, Op};
use crate::metrics::{db_event, Metrics};
use crate::options::{Options, WriteOptions};
use crate::row_cache::RowLookup;
use crate::snapshot::Snapshot;
use crate::ttl::Expiry;
use crate::version::set::VersionSet;
use crate::version::superversion::SuperVersion;
pub use ingest::IngestOptions;
pub use secondary::SecondaryDb;

/// An open database. `Send + Sync`: share it between threads with `Arc`.
///
/// Every method is safe to call from any thread at the same time. Writes
/// are atomic per call (a [`WriteBatch`] is all or nothing, also after a
/// crash); reads see the latest acknowledged writes, or the state of a
/// [`Snapshot`].
pub struct Db {
    inner: Arc<DbInner>,
    /// The flush thread and, with `wal_sync_interval_ms`, the WAL sync
    /// thread.
    threads: Mutex<Vec<JoinHandle<()>>>,
    lock: Mutex<Option<Box<dyn FileLock>>>,
    /// Where the database's Prometheus collector is registered (`None`
    /// with `StatsLevel::Off`); unregistered at close.
    #[cfg(feature = "prometheus")]
    registry: Option<prometheus::Registry>,
}

/// State shared by the façade, the write group, the flush thread,
/// snapshots and iterators.
///
/// Grouped by what guards it: each sub-struct is one mutex with the
/// condition variables that wait on it and the atomics read beside it, so
/// a field's lock is the struct it sits in. Locks are taken in this order
/// (never the reverse): `write.queue`, `write.wal`, `versions`,
/// `flush.state`, `compaction.state`, `snapshots`, `bg_error.first`;
/// `write.publishing` is a leaf.
pub(crate) struct DbInner {
    dir: PathBuf,
    opts: Options,
    fs: Arc<dyn FileSystem>,
    /// The default keyspace's tree (also in `trees`): the one `Db::get`
    /// and `Db::put` use, without a map lookup.
    default: Arc<Tree>,
    /// Every keyspace's tree by id, the default one included. Changed
    /// only by creating and dropping keyspaces, under the write queue
    /// and versions locks.
    trees: RwLock<BTreeMap<u32, Arc<Tree>>>,
    /// Names of the keyspaces dropped since open, by id (for errors).
    dropped_keyspaces: Mutex<BTreeMap<u32, String>>,
    /// Largest sequence number whose write is fully in the memtable;
    /// reads see exactly the writes up to it.
    visible_seq: AtomicU64,
    next_file_number: AtomicU64,
    /// Bytes of values read from blob files, finished or live (shared with
    /// the version set's table opener).
    blob_bytes_read: Arc<AtomicU64>,
    /// Checkpoints being made: while any is, obsolete WALs are kept
    /// (`checkpoint.rs`).
    checkpoints: std::sync::atomic::AtomicUsize,
    /// Set once any keyspace has had a TTL (never cleared): until then a
    /// write skips looking for keyspaces to stamp (`stamp_times`).
    ttl_seen: std::sync::atomic::AtomicBool,
    /// The write group, the WAL and the compaction threads: `None` on a
    /// handle from [`Db::open_read_only`], which refuses every write and
    /// never starts background work.
    write: Option<WriteSide>,
    versions: Mutex<VersionSet>,
    /// The flush thread's work and the waits on it.
    flush: FlushCtl,
    /// Running compactions and the waits on them.
    compaction: CompactionCtl,
    /// First background error (failed fsync, failed flush): writes stop.
    bg_error: BgError,
    /// Live snapshots: sequence number → count.
    snapshots: Mutex<BTreeMap<SeqNo, usize>>,
    /// Byte counters of the write path.
    io: IoCounters,
    closed: AtomicBool,
    /// The block cache of every open table (shared with other databases
    /// when `Options::block_cache` was set).
    block_cache: Option<Arc<crate::cache::BlockCache>>,
    /// The row cache (`Options::row_cache_size`), if on.
    row_cache: Option<crate::row_cache::RowCache>,
    /// Counters, label and event log (`crate::metrics`).
    metrics: Arc<Metrics>,
}

/// What only a writable handle has: the write group, the WAL and the
/// compaction threads.
pub(crate) struct WriteSide {
    /// The write group: queued writers, and the last sequence assigned.
    queue: Mutex<write::WriteQueue>,
    /// Waits on `queue`: writers stalled on a full set of memtables, and
    /// close draining the queue.
    stall_cv: Condvar,
    /// Unsynced writers queued behind a leader right now (`write`).
    spinners: AtomicUsize,
    /// How many of them may wait actively (yield, not park): the CPUs
    /// but one.
    max_spinners: usize,
    /// Logged batches not yet visible, in sequence order (`write`).
    publishing: Mutex<VecDeque<write::Pending>>,
    /// The WAL, and the live blob files its records point into; only the
    /// write-group leader appends to them.
    wal: Mutex<wal::Wal>,
    /// Threads for compaction jobs and their subcompactions.
    pool: rayon::ThreadPool,
}

impl WriteSide {
    fn new(
        last_seq: SeqNo,
        active: tree::ActiveMems,
        wal: LogWriter,
        wal_number: u64,
        pool: rayon::ThreadPool,
    ) -> Self {
        WriteSide {
            queue: Mutex::new(write::WriteQueue::new(last_seq, active, wal_number)),
            stall_cv: Condvar::new(),
            spinners: AtomicUsize::new(0),
            max_spinners: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1),
            publishing: Mutex::new(VecDeque::new()),
            wal: Mutex::new(wal::Wal::new(wal)),
            pool,
        }
    }
}

/// The flush thread's state and the condition variables that wait on it.
#[derive(Default)]
pub(crate) struct FlushCtl {
    state: Mutex<flush::FlushState>,
    /// Wakes the flush thread (work or shutdown).
    work_cv: Condvar,
    /// Wakes the WAL sync thread for shutdown.
    wal_sync_cv: Condvar,
    /// Wakes callers of `flush()` when a flush finished.
    done_cv: Condvar,
}

/// Running compactions, their statistics, and the write-stall condition
/// computed from the file set.
#[derive(Default)]
pub(crate) struct CompactionCtl {
    state: Mutex<compact::CompactionState>,
    /// Wakes waiters for a compaction to end (manual compaction, close).
    done_cv: Condvar,
    /// `compact::encode_stall`: whether writers slow down or wait for
    /// compaction, recomputed after every change of the file set.
    stall_condition: AtomicU8,
}

/// The first background error, and a flag the write path reads without
/// the lock.
#[derive(Default)]
pub(crate) struct BgError {
    first: Mutex<Option<Arc<Error>>>,
    set: AtomicBool,
}

/// Byte counters of the write path.
#[derive(Default)]
pub(crate) struct IoCounters {
    /// Key and value bytes written by users (for write amplification).
    /// Written only with the WAL locked (`append_group`), read anywhere.
    user_bytes: AtomicU64,
    /// Bytes of WAL records written. Written only with the WAL locked.
    wal_bytes: AtomicU64,
    /// Bytes appended to the current WAL since its last sync. Written
    /// only with the WAL locked.
    wal_unsynced: AtomicU64,
    /// Bytes of blob files written (flushes and compactions).
    blob_bytes_written: AtomicU64,
    /// Compactions that relocated values out of old blob files.
    blob_gc_runs: AtomicU64,
    /// Bytes of values they relocated.
    blob_gc_relocated: AtomicU64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

pub(crate) fn to_bound(b: Bound<&impl AsRef<[u8]>>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Db {
    /// Opens the database in `path`, creating it when the directory is
    /// empty or missing (unless `create_if_missing` is off).
    ///
    /// An existing database is recovered: the manifest is replayed, the
    /// WALs not yet in SST files are replayed (a torn last record from a
    /// crash is dropped; damage followed by valid records is
    /// [`Error::Corruption`]), and their contents are flushed to a new
    /// level-0 file. Errors: [`Error::Locked`] when another open holds the
    /// directory, [`Error::NotADatabase`] for a directory with foreign
    /// files, [`Error::InvalidArgument`] for bad options, and
    /// [`Error::Corruption`] / [`Error::Io`] naming the file.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use lightning_db::{Db, Options};
    ///
    /// let db = Db::open(dir.path(), Options::new().write_buffer_size(8 << 20))?;
    /// db.put("k", "v")?;
    /// db.close()?;
    /// // Everything acknowledged is there after a reopen.
    /// let db = Db::open(dir.path(), Options::default())?;
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        open::open(path.as_ref(), options)
    }

    /// Opens the existing database in `path` read-only.
    ///
    /// Nothing in the directory is created, written, renamed or deleted:
    /// the manifest and the live WALs are replayed into memory (the WALs'
    /// contents are not flushed) by the same rules as [`Db::open`],
    /// `wal_recovery_mode` included, so reads, iterators and snapshots see
    /// the state a normal open would recover, and a directory that
    /// [`Db::open`] recovers opens read-only too. Every write method (`put`,
    /// `delete`, `write`, `write_opt`, `flush`, `compact_range`) fails with
    /// [`Error::ReadOnly`]; no background thread runs.
    ///
    /// Locking: a read-only handle takes a **shared** lock on the `LOCK`
    /// file (when it exists; it is never created). Any number of read-only
    /// handles coexist, in this process or others, but not with a writer:
    /// while a [`Db::open`] handle is open, `open_read_only` fails with
    /// [`Error::Locked`], and while a read-only handle is open,
    /// [`Db::open`] fails with [`Error::Locked`]. A writer would otherwise
    /// delete the WALs and SSTs the reader is reading.
    ///
    /// Errors: [`Error::NotADatabase`] for a missing directory or one
    /// without `CURRENT`, [`Error::Locked`], and [`Error::Corruption`] /
    /// [`Error::Io`] naming the file, as [`Db::open`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use lightning_db::{Db, Error, Options};
    ///
    /// Db::open(dir.path(), Options::default())?.put("k", "v")?;
    /// let ro = Db::open_read_only(dir.path(), Options::default())?;
    /// assert_eq!(ro.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(matches!(ro.put("k", "w"), Err(Error::ReadOnly(_))));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        open::open_read_only(path.as_ref(), options)
    }

    /// Opens a read-only follower of the database in `path` while another
    /// handle, in this process or another, writes it (RocksDB's
    /// `OpenAsSecondary`; unlike [`Db::open_read_only`] it takes no lock,
    /// so a live primary does not refuse it). Its view is the primary's
    /// state when it was opened; [`SecondaryDb::try_catch_up_with_primary`]
    /// moves it to the primary's current state. Files the primary deletes
    /// stay readable by the views that use them, and nothing the primary
    /// does to its files can crash the follower (see `SecondaryDb`). The
    /// follower writes nothing (RocksDB's secondary path holds its info
    /// logs; this one keeps none, so it takes no second directory).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use lightning_db::{Db, Options};
    ///
    /// let primary = Db::open(dir.path(), Options::default())?;
    /// primary.put("k", "v1")?;
    /// let follower = Db::open_secondary(dir.path(), Options::default())?;
    /// assert_eq!(follower.db().get("k")?.as_deref(), Some(&b"v1"[..]));
    /// primary.put("k", "v2")?;
    /// follower.try_catch_up_with_primary()?;
    /// assert_eq!(follower.db().get("k")?.as_deref(), Some(&b"v2"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn open_secondary(path: impl AsRef<Path>, options: Options) -> Result<SecondaryDb> {
        SecondaryDb::open(path.as_ref(), options)
    }

    /// True for a handle from [`Db::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.write.is_none()
    }

    /// Sets `key` to `value` (default write options: see
    /// [`Options::sync_writes`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("fruit/apple", "red")?;
    /// db.put(b"\x00binary key", vec![1u8, 2, 3])?;
    /// assert_eq!(db.get("fruit/apple")?.as_deref(), Some(&b"red"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.put(key, value);
        self.write(b)
    }

    /// Sets `key` to `value` with `opts` (with `opts.sync` it survives power
    /// loss once this returns). A one-operation [`write_opt`](Self::write_opt)
    /// that reuses this thread's last batch buffer: no allocation in steady
    /// state.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::WriteOptions;
    ///
    /// // Durable when this returns: it survives a power loss.
    /// db.put_opt("order/42", "paid", &WriteOptions::synced())?;
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn put_opt(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.put(key, value);
        self.write_opt(b, opts)
    }

    /// Merges `operand` into `key` (RocksDB's `Merge`): the key's value
    /// becomes [`Options::merge_operator`] applied to its current value and
    /// the operand, folded by reads and compaction (docs/merge.md). A blind
    /// write: nothing is read, so it costs what a put costs. Fails with
    /// `InvalidArgument` when no merge operator is set.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::sync::Arc;
    /// use lightning_db::{AppendOperator, Db, Options};
    ///
    /// let opts = Options::new().merge_operator(Some(Arc::new(AppendOperator::new("\n"))));
    /// let db = Db::open(dir.path(), opts)?;
    /// db.merge("log", "started")?;
    /// db.merge("log", "ready")?;
    /// assert_eq!(db.get("log")?.as_deref(), Some(&b"started\nready"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn merge(&self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.merge(key, operand);
        self.write(b)
    }

    /// [`merge`](Self::merge) with `opts`.
    pub fn merge_opt(
        &self,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.merge(key, operand);
        self.write_opt(b, opts)
    }

    /// Deletes `key` (a no-op for an absent key, but still a write).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// db.delete("k")?;
    /// assert_eq!(db.get("k")?, None);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.delete(key);
        self.write(b)
    }

    /// Deletes `key` with `opts` (see [`put_opt`](Self::put_opt)).
    pub fn delete_opt(&self, key: impl AsRef<[u8]>, opts: &WriteOptions) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.delete(key);
        self.write_opt(b, opts)
    }

    /// Deletes every key in `range` with one range tombstone: a single
    /// WAL record, whatever the number of keys (RocksDB's `DeleteRange`).
    /// Gets, iterators in both directions, snapshots taken later and
    /// transactions see it at once; compaction drops the keys it covers.
    ///
    /// Any bounds work: `a..b`, `a..=b`, `a..`, `..b`, `..` (see
    /// [`WriteBatch::delete_range`] for how they are written).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k, "v")?;
    /// }
    /// db.delete_range("b".."d")?;
    /// let keys: Vec<_> = db.iter().map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, ["a", "d"]);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn delete_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.delete_range(range);
        self.write(b)
    }

    /// [`delete_range`](Self::delete_range) with `opts`.
    pub fn delete_range_opt<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
        opts: &WriteOptions,
    ) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.delete_range(range);
        self.write_opt(b, opts)
    }

    /// Deletes every key starting with `prefix` (one range tombstone; see
    /// [`delete_range`](Self::delete_range)). An empty prefix deletes
    /// everything.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("tenant/1/a", "x")?;
    /// db.put("tenant/2/a", "y")?;
    /// db.delete_prefix("tenant/1/")?;
    /// assert_eq!(db.get("tenant/1/a")?, None);
    /// assert!(db.get("tenant/2/a")?.is_some());
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        let mut b = write::take_spare_batch();
        b.delete_prefix(prefix);
        self.write(b)
    }

    /// Applies `batch` atomically with the default write options.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::WriteBatch;
    ///
    /// let mut batch = WriteBatch::new();
    /// batch.put("a", "1");
    /// batch.put("b", "2");
    /// batch.delete("c");
    /// db.write(batch)?; // all three, or none after a crash
    /// assert_eq!(db.get("b")?.as_deref(), Some(&b"2"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        let opts = WriteOptions {
            sync: self.inner.opts.sync_writes,
        };
        self.write_opt(batch, &opts)
    }

    /// Applies `batch` atomically: after the call returns `Ok`, all of it is
    /// visible to reads, and after a crash either all of it or none of it is
    /// recovered. With `opts.sync` the WAL is fsynced before returning (the
    /// batch survives power loss); without, it survives a process crash.
    ///
    /// Keys above [`crate::MAX_KEY_SIZE`] or values above
    /// [`crate::MAX_VALUE_SIZE`] give [`Error::InvalidArgument`] and write
    /// nothing. After a failed WAL write or fsync the database stops
    /// accepting writes ([`Error::Background`]); reopen it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::{WriteBatch, WriteOptions};
    ///
    /// let mut batch = WriteBatch::new();
    /// batch.put("from", "90");
    /// batch.put("to", "110");
    /// db.write_opt(batch, &WriteOptions::synced())?;
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn write_opt(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.inner.write_user(batch, opts.sync)
    }

    /// The current value of `key`, or `None`. The value is a cheap shared
    /// slice (no copy when it lies in a memory-mapped uncompressed block).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert_eq!(db.get("absent")?, None);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.inner.check_open()?;
        self.inner.get_latest(&self.inner.default, key.as_ref())
    }

    /// [`get`](Self::get) into `value`: the value of `key` is copied into
    /// it (cleared first, its allocation reused; left empty when `key` has
    /// none), and the result says whether `key` has a value (RocksDB's
    /// `Get` into a `std::string`). A loop of reads with one buffer makes
    /// no allocation per read when the value comes from the row cache
    /// ([`Options::row_cache_size`]); otherwise it costs one copy more
    /// than `get`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// let mut value = Vec::new();
    /// assert!(db.get_into("k", &mut value)?);
    /// assert_eq!(value, b"v");
    /// assert!(!db.get_into("absent", &mut value)?);
    /// assert!(value.is_empty());
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get_into(&self, key: impl AsRef<[u8]>, value: &mut Vec<u8>) -> Result<bool> {
        self.inner.check_open()?;
        self.inner
            .get_latest_into(&self.inner.default, key.as_ref(), value)
    }

    /// A consistent read-only view of the database as of now. Reads
    /// through it see exactly the writes acknowledged before this call,
    /// whatever happens later; the versions it can see are kept until it is
    /// dropped.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "old")?;
    /// let snap = db.snapshot();
    /// db.put("k", "new")?;
    /// assert_eq!(snap.get("k")?.as_deref(), Some(&b"old"[..]));
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"new"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(Arc::clone(&self.inner))
    }

    /// The pairs whose keys lie in `range`, in key order; `.rev()` for
    /// reverse order. The iterator reads a consistent view as of this call.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k, "v")?;
    /// }
    /// let keys: Vec<_> = db
    ///     .range("b".."d")
    ///     .map(|r| r.map(|(k, _)| k))
    ///     .collect::<lightning_db::Result<_>>()?;
    /// assert_eq!(keys, ["b", "c"]);
    /// // Backwards, from the end of the range.
    /// let (last, _) = db.range("a"..="c").next_back().unwrap()?;
    /// assert_eq!(last, "c");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.inner.iter_at(
            &self.inner.default,
            None,
            to_bound(range.start_bound()),
            to_bound(range.end_bound()),
        )
    }

    /// Every pair, in key order.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("b", "2")?;
    /// db.put("a", "1")?;
    /// let all: Vec<_> = db.iter().collect::<lightning_db::Result<_>>()?;
    /// assert_eq!(all.len(), 2);
    /// assert_eq!(all[0].0, "a");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The pairs whose keys start with `prefix`, in key order.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("user/1", "ann")?;
    /// db.put("user/2", "bob")?;
    /// db.put("order/1", "book")?;
    /// assert_eq!(db.prefix("user/").count(), 2);
    /// let newest_first: Vec<_> = db.prefix("user/").rev().collect::<lightning_db::Result<_>>()?;
    /// assert_eq!(newest_first[0].0, "user/2");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        self.inner.iter_at(&self.inner.default, None, lo, hi)
    }

    /// Writes the memtables of every keyspace to SST files. On return
    /// everything written before the call is in synced SST files recorded
    /// in the manifest.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// db.flush()?; // now in an SST file; the WAL that held it can go
    /// assert_eq!(db.property_u64("lightning.num-files-at-level0"), Some(1));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn flush(&self) -> Result<()> {
        self.inner.writable()?;
        self.inner.flush_and_wait()
    }

    /// Flushes, then compacts every file of the default keyspace holding
    /// keys in `range` down to the last level, dropping overwritten versions and tombstones no
    /// snapshot needs. Waits for running compactions first and blocks
    /// automatic ones while it runs. `compact_range(..)` compacts
    /// everything.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// for i in 0..1000 {
    ///     db.put(format!("k{i:04}"), "v")?;
    /// }
    /// for i in 0..1000 {
    ///     db.delete(format!("k{i:04}"))?;
    /// }
    /// db.compact_range::<&str, _>(..)?; // the deleted keys' space is reclaimed
    /// assert_eq!(db.iter().count(), 0);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        self.inner.check_open()?;
        self.inner.writable()?;
        self.inner.compact_range(
            &self.inner.default,
            to_bound(range.start_bound()),
            to_bound(range.end_bound()),
        )
    }

    /// Waits until background work has settled: no memtable waiting for
    /// flush, no compaction running and none the planner would start.
    /// Useful after a bulk load and in benchmarks and tests.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// for i in 0..10_000 {
    ///     db.put(format!("k{i:05}"), "v")?;
    /// }
    /// db.wait_for_compactions()?;
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn wait_for_compactions(&self) -> Result<()> {
        self.inner.wait_for_compactions()
    }

    /// Makes an openable copy of the database in the new directory `dir`,
    /// while writes go on (RocksDB's `Checkpoint::CreateCheckpoint`): SST
    /// and blob files are hard-linked (copied on a file system without
    /// links), the manifest is written afresh and the WALs are copied.
    /// The copy opens to a prefix of the write history, every keyspace
    /// at the same point, holding every write acknowledged before the
    /// call; it is made in `<dir>.tmp` and renamed, so `dir` appears
    /// whole or not at all. `dir` must not exist (`InvalidArgument`), and
    /// should be on the same file system for links to work. Open the copy
    /// with [`Db::open`] like any database.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path().join("db"), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// db.checkpoint(dir.path().join("backup-1"))?;
    /// db.put("k", "after")?;
    /// let copy = lightning_db::Db::open(dir.path().join("backup-1"), lightning_db::Options::default())?;
    /// assert_eq!(copy.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.inner.checkpoint(dir.as_ref())
    }

    /// Loads the SST files `files`, made by [`crate::SstWriter`], into the
    /// default keyspace, all or nothing (RocksDB's `IngestExternalFile`):
    /// bulk loading without the WAL, the memtable or compaction. Each
    /// file is verified, must not overlap the others, and is copied (or
    /// with [`IngestOptions::move_files`](crate::IngestOptions) linked)
    /// into the database. Memtable data in their key ranges is flushed
    /// first. Into a keyspace with no snapshot and nothing in the files'
    /// ranges (a bulk load) they go to the last level as they are;
    /// otherwise they are rewritten as the newest data, above whatever
    /// they overlap. A snapshot taken before the call never sees them.
    /// See docs/ingest.md.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use lightning_db::{Db, IngestOptions, Options, SstWriter};
    ///
    /// let db = Db::open(dir.path().join("db"), Options::default())?;
    /// db.put("b", "old")?;
    /// let path = dir.path().join("batch.sst");
    /// let mut w = SstWriter::create(&path, &Options::default())?;
    /// w.put("a", "1")?;
    /// w.put("b", "new")?;
    /// w.finish()?;
    /// db.ingest(&[&path], &IngestOptions::default())?;
    /// assert_eq!(db.get("b")?.as_deref(), Some(&b"new"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn ingest<P: AsRef<Path>>(&self, files: &[P], opts: &IngestOptions) -> Result<()> {
        let files: Vec<std::path::PathBuf> =
            files.iter().map(|p| p.as_ref().to_path_buf()).collect();
        self.inner.ingest(&self.inner.default, &files, opts)?;
        self.inner.maybe_schedule_compaction();
        Ok(())
    }

    /// The database clock's time (`Options::clock`), milliseconds since
    /// the Unix epoch.
    pub(crate) fn clock_millis(&self) -> u64 {
        self.inner.opts.clock.now_millis()
    }

    /// Compaction statistics: per level files, bytes, score, bytes read
    /// and written by compaction, and the write amplification. Its
    /// `Display` is a table in the style of RocksDB's compaction stats.
    /// These are every keyspace's summed (a level's score is the highest
    /// of any keyspace's); see
    /// [`Keyspace::compaction_stats`](crate::Keyspace::compaction_stats)
    /// for one keyspace.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// db.flush()?;
    /// println!("{}", db.compaction_stats()); // per-level table, as RocksDB prints
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn compaction_stats(&self) -> lightning_compaction::stats::CompactionStats {
        self.inner.total_compaction_stats()
    }

    /// Counters of the block cache (all zero when it is off).
    pub fn block_cache_stats(&self) -> crate::cache::CacheStats {
        self.inner
            .block_cache
            .as_ref()
            .map(|c| c.stats())
            .unwrap_or_default()
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The shared state (for transactions, `crate::txn`).
    pub(crate) fn inner(&self) -> &Arc<DbInner> {
        &self.inner
    }

    /// Closes the database: stops the background thread, syncs the WAL and
    /// releases the directory lock. The memtable is not flushed (the WAL
    /// holds it). Dropping a `Db` does the same but cannot report errors.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// db.close()?; // reports a failed WAL sync, which drop cannot
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    /// Closing, in order: `closed` is set, so new writes fail with
    /// [`Error::Closed`]; writers stalled for a flush or a compaction are
    /// woken (they fail too: no flush runs after this); the write queue is
    /// drained, so every group in flight ends, acknowledged or failed,
    /// before anything else; the background threads and compactions stop;
    /// the WAL is synced. After that nothing touches the directory, so a
    /// write can never be acknowledged that the final sync missed.
    fn shutdown(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(ws) = &self.inner.write {
            let mut q = ws.queue.lock();
            ws.stall_cv.notify_all();
            while !q.writers.is_empty() {
                ws.stall_cv.wait(&mut q);
            }
        }
        {
            let mut st = self.inner.flush.state.lock();
            st.shutdown = true;
            self.inner.flush.work_cv.notify_all();
            self.inner.flush.wal_sync_cv.notify_all();
        }
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
        {
            let mut st = self.inner.compaction.state.lock();
            while st.running > 0 {
                self.inner.compaction.done_cv.wait(&mut st);
            }
        }
        // Sync what the WAL holds (the queue is drained and stays empty).
        // Also after a background error: a failed flush or compaction
        // leaves the WAL sound, and its acknowledged writes must become
        // durable. After a failed WAL write or sync the WAL refuses
        // (`LogWriter` is failed) and the error is returned: an fsync is
        // never retried as if the data were safe.
        let res = match &self.inner.write {
            None => Ok(()),
            Some(ws) => {
                let _q = ws.queue.lock();
                let mut wal = ws.wal.lock();
                match (wal.check_failed(), self.inner.bg_error()) {
                    // The WAL failed earlier: report the error every write
                    // got since, and do not touch the file again.
                    (Err(_), Some(recorded)) => Err(recorded),
                    _ => self.inner.timed_wal_sync(|| wal.finish()),
                }
            }
        };
        self.lock.lock().take();
        #[cfg(feature = "prometheus")]
        if let Some(r) = &self.registry {
            observe::unregister(&self.inner, r);
        }
        if self.inner.write.is_some() {
            db_event!(self.inner.metrics, INFO, "closed database");
        }
        res
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "closing the database on drop failed");
        }
    }
}

/// Reads blob references of `sv` for an iterator (`None` when it holds
/// none: no blob file in its version, no live one in its memtables).
fn blob_resolver(sv: &Arc<SuperVersion>) -> Option<BlobResolver> {
    if !sv.has_blobs() {
        return None;
    }
    let sv = Arc::clone(sv);
    Some(Box::new(move |r: &[u8]| sv.read_blob(r)))
}

/// Range bounds that select the keys starting with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let hi = match prefix_successor(prefix) {
        Some(s) => Bound::Excluded(s),
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix.to_vec()), hi)
}

impl DbInner {
    /// A user's write of `batch` (checked, timed; an empty batch is a
    /// no-op), as [`Db::write_opt`].
    pub(crate) fn write_user(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        self.writable()?;
        batch.check_limits()?;
        self.check_merges(&batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let batch = self.stamp_times(batch);
        let timer = self.metrics.op_timer();
        let r = self.write(batch, sync, false);
        self.metrics.latency(Op::Write, timer);
        r
    }

    /// Refuses a batch that merges into a keyspace without a merge
    /// operator. O(1) for a batch without merges.
    pub(crate) fn check_merges(&self, batch: &WriteBatch) -> Result<()> {
        if !batch.has_merges() {
            return Ok(());
        }
        let mut checked: Vec<u32> = Vec::new();
        for op in batch.iter() {
            if op.kind != OpKind::Merge || checked.contains(&op.keyspace) {
                continue;
            }
            checked.push(op.keyspace);
            let tree = match op.keyspace {
                tree::DEFAULT_KEYSPACE => Some(Arc::clone(&self.default)),
                id => self.trees.read().get(&id).cloned(),
            };
            // A dropped keyspace is refused later, as for any write.
            if tree.as_ref().is_some_and(|t| t.merge_operator().is_none()) {
                return Err(Error::InvalidArgument(format!(
                    "merge into keyspace `{}`, which has no merge operator (set Options::merge_operator)",
                    self.keyspace_name_of(op.keyspace)
                )));
            }
            if tree.is_some_and(|t| t.has_ttl()) {
                return Err(Error::InvalidArgument(format!(
                    "merge into keyspace `{}`, which has a TTL (Options::ttl): merge operands \
                     carry no write time, so TTL keyspaces do not take merges",
                    self.keyspace_name_of(op.keyspace)
                )));
            }
        }
        Ok(())
    }

    /// Opens every SST and blob file of every keyspace's current version,
    /// so they stay readable if deleted (a secondary instance's view).
    pub(crate) fn open_every_table(&self) -> Result<()> {
        for tree in self.all_trees() {
            let version = Arc::clone(&tree.sv.load().version);
            for (_, f) in version.all_files() {
                f.table()?;
            }
            for b in version.blob_files().values() {
                b.handle.file()?;
            }
        }
        Ok(())
    }

    /// Records that `tree` has a TTL, if it has one (after its options
    /// changed or it was created).
    pub(crate) fn note_ttl(&self, tree: &Tree) {
        if tree.has_ttl() {
            self.ttl_seen.store(true, Ordering::Release);
        }
    }

    /// `batch` with each put into a keyspace that has a TTL turned into a
    /// timed put stamped with the clock's time now ([`crate::ttl`]); the
    /// batch itself when there is none (the common case, checked in O(1)
    /// for a batch of the default keyspace only). The WAL logs the stamped
    /// batch, so a replay restores the same times.
    pub(crate) fn stamp_times(&self, batch: WriteBatch) -> WriteBatch {
        if !self.ttl_seen.load(Ordering::Acquire) {
            return batch;
        }
        let mut timed: Vec<u32> = Vec::new();
        if batch.has_keyspace_ops() {
            let trees = self.trees.read();
            for op in batch.iter() {
                if op.kind == OpKind::Put && !timed.contains(&op.keyspace) {
                    let ttl = match op.keyspace {
                        tree::DEFAULT_KEYSPACE => self.default.has_ttl(),
                        id => trees.get(&id).is_some_and(|t| t.has_ttl()),
                    };
                    if ttl {
                        timed.push(op.keyspace);
                    }
                }
            }
        } else if self.default.has_ttl() {
            timed.push(tree::DEFAULT_KEYSPACE);
        }
        if timed.is_empty() {
            return batch;
        }
        let now = self.opts.clock.now_millis();
        let mut out = WriteBatch::new();
        for op in batch.iter() {
            if op.kind == OpKind::Put && timed.contains(&op.keyspace) {
                out.put_timed_in_id(op.keyspace, op.key, op.value, now);
            } else {
                out.push_copy(&op);
            }
        }
        out
    }

    /// The write side, or [`Error::ReadOnly`] for a read-only handle.
    #[inline]
    pub(crate) fn writable(&self) -> Result<&WriteSide> {
        self.write
            .as_ref()
            .ok_or_else(|| Error::ReadOnly(self.dir.clone()))
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The name of keyspace `id`, live or dropped (for errors).
    pub(crate) fn keyspace_name_of(&self, id: u32) -> String {
        if let Some(t) = self.trees.read().get(&id) {
            return t.name.clone();
        }
        self.dropped_keyspaces
            .lock()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// Every keyspace's tree (a copy of the list: keyspaces may be
    /// created and dropped meanwhile), the default one first.
    pub(crate) fn all_trees(&self) -> Vec<Arc<Tree>> {
        self.trees.read().values().cloned().collect()
    }

    /// The default keyspace's tree.
    pub(crate) fn default_tree(&self) -> &Arc<Tree> {
        &self.default
    }

    /// The current superversion of keyspace `id` (for transaction
    /// validation); [`Error::KeyspaceDropped`] when it is gone.
    pub(crate) fn superversion_of(&self, id: u32) -> Result<Arc<SuperVersion>> {
        if id == tree::DEFAULT_KEYSPACE {
            return Ok(self.default.sv.load_full());
        }
        match self.trees.read().get(&id) {
            Some(t) => Ok(t.sv.load_full()),
            None => Err(Error::KeyspaceDropped(self.keyspace_name_of(id))),
        }
    }

    /// Whether writes sync by default ([`Options::sync_writes`]).
    pub(crate) fn default_sync(&self) -> bool {
        self.opts.sync_writes
    }

    /// An iterator over the pinned current superversion at `seq` (a
    /// registered snapshot's), or with `None` at the latest sequence
    /// number, read **after** the superversion (see
    /// [`get_latest`](Self::get_latest)).
    pub(crate) fn iter_at(
        &self,
        tree: &Tree,
        seq: Option<SeqNo>,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
    ) -> Iter {
        self.metrics.add(Counter::Iterators, 1);
        let sv = tree.sv.load_full();
        #[cfg(test)]
        tests_hooks::between_superversion_and_sequence();
        let seq = seq.unwrap_or_else(|| self.latest_seq_after_sv());
        let blobs = blob_resolver(&sv);
        let range_dels = sv.range_tombstone_sets();
        let merge = tree.merge_operator();
        let expiry = tree.expiry(&*self.opts.clock);
        // A range within one extractor prefix reads only the files whose
        // filter may hold it.
        let scope: Option<(String, Vec<u8>)> = tree.prefix_extractor().and_then(|x| {
            crate::prefix::shared_prefix(x.as_ref(), &lo, &hi)
                .map(|p| (x.name().to_string(), p.to_vec()))
        });
        let merged = move || match &scope {
            Some((name, prefix)) => sv.merged_iter_in_prefix(name, prefix),
            None => sv.merged_iter(),
        };
        if self.metrics.op_timer().is_some() {
            let m = Arc::clone(&self.metrics);
            return Iter::new(
                Box::new(move || {
                    Box::new(crate::metrics::TimedSeek::new(
                        Box::new(merged()),
                        Arc::clone(&m),
                    ))
                }),
                seq,
                lo,
                hi,
                blobs,
                range_dels,
            )
            .with_merge_operator(merge)
            .with_expiry(expiry);
        }
        Iter::new(
            Box::new(move || Box::new(merged())),
            seq,
            lo,
            hi,
            blobs,
            range_dels,
        )
        .with_merge_operator(merge)
        .with_expiry(expiry)
    }

    /// The latest visible sequence number, for a read whose superversion
    /// was just loaded.
    ///
    /// Why after: a read at sequence number `r` must find, in the files of
    /// its superversion, the newest version at or below `r`. A compaction
    /// keeps only the newest version of each snapshot stripe, so a version
    /// at or below `r` is dropped when its inputs also hold a newer one
    /// above `r` and no registered snapshot lies between. Every version in
    /// a superversion's files was visible when it was installed, so a
    /// sequence number read after the superversion is at least all of
    /// them, and the newest version at or below it is always kept. Read
    /// before (as this code once did), a reader delayed between the two
    /// loads could see a superversion whose compaction had dropped the
    /// version it needed and read an older one, or none (found by
    /// `tests/linearizable_reads.rs` under load). RocksDB's `GetImpl`
    /// orders them the same way. Snapshot reads are safe either way: a
    /// registered snapshot is a stripe boundary for every later compaction.
    #[inline]
    fn latest_seq_after_sv(&self) -> SeqNo {
        self.visible_seq.load(Ordering::Acquire)
    }

    /// The value of `key` as of now (see
    /// [`latest_seq_after_sv`](Self::latest_seq_after_sv) for the order
    /// of the loads), counted as a point read.
    ///
    /// A row-cache hit needs no superversion: it is answered from the
    /// visible sequence number and the cache's generation alone (an entry
    /// is valid for a read at `S` when no write to its stamp came after
    /// its fill nor after `S`, and no change without a sequence number,
    /// such as a compaction filter's, came after its read began: see
    /// `row_cache`), so the hit path loads no superversion and
    /// writes no shared line (readhot, 2 threads: the superversion load
    /// was 15 % of the profile).
    pub(crate) fn get_latest(&self, tree: &Tree, key: &[u8]) -> Result<Option<Bytes>> {
        let mut cache_missed = false;
        if let Some(rc) = self.row_cache_for(tree) {
            let timer = self.metrics.op_timer();
            let seq = self.visible_seq.load(Ordering::Acquire);
            if let RowLookup::Hit(v) = rc.get(key, crate::sst::filter_hash(key), seq) {
                // A hit probes no filter: no filter counts to take.
                self.metrics
                    .record_row_cache_hit(v.as_ref().map(|v| v.len()), timer);
                return Ok(v);
            }
            cache_missed = true;
        }
        self.get_latest_uncached(tree, key, cache_missed)
    }

    /// [`get_latest`](Self::get_latest) with the value copied into `buf`
    /// (cleared first, its allocation reused): whether `key` has a value.
    /// A row-cache hit copies straight from its slot, with no allocation.
    pub(crate) fn get_latest_into(
        &self,
        tree: &Tree,
        key: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<bool> {
        let mut cache_missed = false;
        if let Some(rc) = self.row_cache_for(tree) {
            let timer = self.metrics.op_timer();
            let seq = self.visible_seq.load(Ordering::Acquire);
            if let RowLookup::Hit(v) = rc.get_into(key, crate::sst::filter_hash(key), seq, buf) {
                self.metrics
                    .record_row_cache_hit(v.map(|()| buf.len()), timer);
                return Ok(v.is_some());
            }
            cache_missed = true;
        }
        let got = self.get_latest_uncached(tree, key, cache_missed)?;
        Ok(copy_value_into(got, buf))
    }

    /// The part of [`get_latest`](Self::get_latest) after the row cache
    /// (`cache_missed`: it was looked up, and missed).
    fn get_latest_uncached(
        &self,
        tree: &Tree,
        key: &[u8],
        cache_missed: bool,
    ) -> Result<Option<Bytes>> {
        let start = self.read_start();
        let sv = tree.sv.load();
        #[cfg(test)]
        tests_hooks::between_superversion_and_sequence();
        let seq = self.latest_seq_after_sv();
        self.get_in(tree, &sv, key, seq, start, cache_missed)
    }

    /// What a point read loads before its superversion (see
    /// [`ReadStart`]).
    #[inline]
    fn read_start(&self) -> ReadStart {
        ReadStart {
            generation: self
                .row_cache
                .as_ref()
                .map_or(0, crate::row_cache::RowCache::generation),
            complete: self.visible_seq.load(Ordering::Acquire),
        }
    }

    /// The row cache, when there is one and it serves `tree`: the default
    /// keyspace only, and not with a TTL (a cached value could outlive its
    /// expiry).
    #[inline]
    fn row_cache_for(&self, tree: &Tree) -> Option<&crate::row_cache::RowCache> {
        self.row_cache_of(tree).filter(|_| !tree.has_ttl())
    }

    /// The row cache that may hold entries of `tree` (the default
    /// keyspace's), served or not: what a change of what its keys read
    /// must invalidate. With a TTL the cache is not served, but its
    /// entries from before the TTL stay, and are served again once the
    /// TTL is switched off.
    #[inline]
    fn row_cache_of(&self, tree: &Tree) -> Option<&crate::row_cache::RowCache> {
        self.row_cache
            .as_ref()
            .filter(|_| tree.id == tree::DEFAULT_KEYSPACE)
    }

    /// The value of `key` at `seq` (a registered snapshot's), counted as a
    /// point read.
    pub(crate) fn get_at(&self, tree: &Tree, key: &[u8], seq: SeqNo) -> Result<Option<Bytes>> {
        let start = self.read_start();
        self.get_in(tree, &tree.sv.load(), key, seq, start, false)
    }

    /// The value of `key` at `seq` in `sv` (of `tree`), through the row
    /// cache when there is one (it caches the default keyspace only),
    /// counted as a point read.
    ///
    /// `start` was loaded *before* `sv` ([`ReadStart`]): the result is
    /// the key's newest version as of `min(seq, start.complete)` only, and
    /// that is what a row-cache fill may claim, in `start.generation`.
    /// `cache_missed`: the caller looked `key` up in the row cache
    /// already, and missed.
    fn get_in(
        &self,
        tree: &Tree,
        sv: &SuperVersion,
        key: &[u8],
        seq: SeqNo,
        start: ReadStart,
        cache_missed: bool,
    ) -> Result<Option<Bytes>> {
        let timer = self.metrics.op_timer();
        let r = match self.row_cache_for(tree) {
            Some(rc) => {
                let hash = crate::sst::filter_hash(key);
                let lookup = if cache_missed {
                    RowLookup::Miss
                } else {
                    rc.get(key, hash, seq)
                };
                match lookup {
                    RowLookup::Hit(v) => {
                        self.metrics.add(Counter::RowCacheHits, 1);
                        Ok(v)
                    }
                    RowLookup::Miss => {
                        self.metrics.add(Counter::RowCacheMisses, 1);
                        let r =
                            sv.get_hashed(key, hash, seq, Expiry::NEVER, &|| tree.merge_operator());
                        if let Ok(v) = &r {
                            rc.fill(
                                key,
                                hash,
                                seq.min(start.complete),
                                v.as_ref(),
                                start.generation,
                            );
                        }
                        r
                    }
                }
            }
            _ => sv.get(key, seq, tree.expiry(&*self.opts.clock), &|| {
                tree.merge_operator()
            }),
        };
        let found = match &r {
            Ok(Some(v)) => Some(v.len()),
            _ => None,
        };
        self.metrics
            .record_get(found, crate::sst::take_filter_counts(), timer);
        r
    }

    /// Marks the keys of `batch` (inserted, not yet published) as written
    /// in the row cache, if there is one.
    pub(crate) fn note_row_writes(&self, batch: &WriteBatch) {
        if let Some(rc) = &self.row_cache {
            let last = batch.sequence() + u64::from(batch.count()).saturating_sub(1);
            for op in batch.iter() {
                match op.kind {
                    OpKind::DeleteRange => rc.note_range_write(last),
                    _ => rc.note_write(crate::sst::filter_hash(op.key), last),
                }
            }
        }
    }

    /// Registers a snapshot at the current visible sequence number.
    pub(crate) fn acquire_snapshot(&self) -> SeqNo {
        let mut s = self.snapshots.lock();
        let seq = self.visible_seq.load(Ordering::Acquire);
        *s.entry(seq).or_insert(0) += 1;
        seq
    }

    pub(crate) fn release_snapshot(&self, seq: SeqNo) {
        let mut s = self.snapshots.lock();
        if let Some(n) = s.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                s.remove(&seq);
            }
        }
    }

    /// Records the first background error; from then on writes fail.
    /// Must not be called with the write queue locked (see
    /// [`DbInner::set_bg_error_queue_locked`]).
    pub(crate) fn set_bg_error(&self, e: Error) -> Arc<Error> {
        let (e, first) = self.record_bg_error(e);
        if first {
            // Wake everyone who might wait for progress that will not come.
            self.wake_stalled_writers();
        }
        self.wake_flush_waiters(first);
        e
    }

    /// Wakes writers stalled on a full set of memtables or on compaction
    /// (and `close` draining the queue): the state they wait for may have
    /// changed. Must not be called with the write queue locked.
    pub(crate) fn wake_stalled_writers(&self) {
        if let Some(ws) = &self.write {
            let _q = ws.queue.lock();
            ws.stall_cv.notify_all();
        }
    }

    /// [`DbInner::set_bg_error`] for a caller that holds the write queue
    /// (the write-group leader): the queue mutex is not reentrant.
    pub(crate) fn set_bg_error_queue_locked(
        &self,
        e: Error,
        _queue: &mut parking_lot::MutexGuard<'_, write::WriteQueue>,
    ) -> Arc<Error> {
        let (e, first) = self.record_bg_error(e);
        if first {
            if let Some(ws) = &self.write {
                ws.stall_cv.notify_all();
            }
        }
        self.wake_flush_waiters(first);
        e
    }

    /// Stores `e` unless an error is already recorded; returns the
    /// recorded error and whether it is `e`.
    fn record_bg_error(&self, e: Error) -> (Arc<Error>, bool) {
        self.metrics.bg.errors.fetch_add(1, Ordering::Relaxed);
        let mut g = self.bg_error.first.lock();
        if let Some(existing) = g.as_ref() {
            tracing::debug!(db = self.metrics.label.as_str(), error = %e, "background error after the first one");
            return (Arc::clone(existing), false);
        }
        db_event!(
            self.metrics,
            ERROR,
            "background error: the database stops accepting writes",
            error = e.to_string()
        );
        let e = Arc::new(e);
        *g = Some(Arc::clone(&e));
        self.bg_error.set.store(true, Ordering::Release);
        (e, true)
    }

    fn wake_flush_waiters(&self, first: bool) {
        if first {
            let _f = self.flush.state.lock();
            self.flush.done_cv.notify_all();
        }
    }

    pub(crate) fn bg_error(&self) -> Option<Error> {
        if !self.bg_error.set.load(Ordering::Acquire) {
            return None;
        }
        self.bg_error
            .first
            .lock()
            .as_ref()
            .map(|e| Error::Background(Arc::clone(e)))
    }
}

/// Copies `value` into `buf` (cleared first): whether there was one.
pub(crate) fn copy_value_into(value: Option<Bytes>, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    match value {
        Some(v) => {
            buf.extend_from_slice(&v);
            true
        }
        None => false,
    }
}

/// What a point read loads before its superversion, for a row-cache fill
/// of its answer.
#[derive(Debug, Clone, Copy)]
struct ReadStart {
    /// The visible sequence number: every write at or below it was
    /// published before the superversion was loaded, so its memtable is
    /// in it. A write above it may have gone to a memtable installed after
    /// (a switch between the loads), so the read's answer is only known
    /// to be the newest as of this
    /// (`a_delayed_read_does_not_fill_the_row_cache_with_a_value_it_could_not_see_past`).
    complete: SeqNo,
    /// The row cache's generation (0 without one): a change without a
    /// sequence number published after it may be missing from the
    /// superversion ([`crate::row_cache::RowCache::begin_change`]).
    generation: u64,
}

/// Queue entries of the write group.
pub(crate) type WriterQueue = VecDeque<Arc<write::Writer>>;

/// Test hooks in the read path (compiled in tests only).
#[cfg(test)]
pub(crate) mod tests_hooks {
    use std::cell::{Cell, RefCell};

    /// Where a hook runs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Point {
        /// A latest read, between loading its superversion and its
        /// sequence number.
        BetweenSuperversionAndSequence,
        /// A write, after its caller's checks (a keyspace handle's "not
        /// dropped"), before it takes the write queue.
        BeforeWriteQueue,
        /// A compaction that changes what keys read with no write (a
        /// filter's decisions), once its row-cache change has begun and
        /// before it installs its version.
        RowCacheChangeBegun,
        /// The same compaction, its version installed, before its
        /// row-cache change ends.
        RowCacheChangeInstalled,
        /// An ingestion's leader, its files installed, before it
        /// publishes their sequence number.
        IngestInstalled,
    }

    type Hook = (Point, Box<dyn FnOnce()>);

    thread_local! {
        static HOOKS: RefCell<Vec<Hook>> = const { RefCell::new(Vec::new()) };
        static RAN: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f` once, on this thread, at the next
    /// [`Point::BetweenSuperversionAndSequence`].
    pub(crate) fn set_once(f: impl FnOnce() + 'static) {
        set_once_at(Point::BetweenSuperversionAndSequence, f);
    }

    /// Runs `f` once, on this thread, the next time it reaches `point`.
    pub(crate) fn set_once_at(point: Point, f: impl FnOnce() + 'static) {
        RAN.with(|r| r.set(false));
        HOOKS.with(|h| h.borrow_mut().push((point, Box::new(f))));
    }

    /// Whether the hook set last has run.
    pub(crate) fn ran() -> bool {
        RAN.with(Cell::get)
    }

    /// Runs this thread's hook for `point`, if one is set.
    pub(crate) fn reached(point: Point) {
        let hook = HOOKS.with(|h| {
            let mut h = h.borrow_mut();
            let i = h.iter().position(|(p, _)| *p == point)?;
            Some(h.remove(i).1)
        });
        if let Some(f) = hook {
            RAN.with(|r| r.set(true));
            f();
        }
    }

    /// [`reached`] for [`Point::BetweenSuperversionAndSequence`].
    pub(crate) fn between_superversion_and_sequence() {
        reached(Point::BetweenSuperversionAndSequence);
    }
}
