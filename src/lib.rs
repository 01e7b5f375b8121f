//! Lightning DB: an embedded, LSM-first, write-optimized key-value store.
//!
//! Keys and values are byte strings (keys up to [`MAX_KEY_SIZE`], values up
//! to [`MAX_VALUE_SIZE`]), kept sorted by key. A [`Db`] is one directory,
//! opened by one process at a time; it is `Send + Sync`, so share it between
//! threads with an `Arc`.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use lightning_db::{Db, Options, WriteBatch, WriteOptions};
//!
//! let db = Db::open(dir.path(), Options::default())?;
//! db.put("user/1", "ann")?;
//!
//! let mut batch = WriteBatch::new(); // atomic: all or nothing
//! batch.put("user/2", "bob");
//! batch.delete("user/1");
//! db.write_opt(batch, &WriteOptions::synced())?; // durable on return
//!
//! let snap = db.snapshot(); // a consistent view, kept while it lives
//! db.put("user/3", "cy")?;
//! assert_eq!(snap.prefix("user/").count(), 1);
//! assert_eq!(db.prefix("user/").rev().next().unwrap()?.0, "user/3");
//!
//! db.transaction_with(|tx| {
//!     // optimistic, snapshot isolation; retried on a conflict
//!     let n = tx.get("visits")?.map_or(0, |v| v.len());
//!     tx.put("visits", vec![b'x'; n + 1]);
//!     Ok(())
//! })?;
//! db.close()?;
//! # Ok::<(), lightning_db::Error>(())
//! ```
//!
//! # How a write travels
//!
//! 1. [`Db::write_opt`] (and `put`, `delete`, a transaction's commit) joins
//!    the **write queue**; the writer at its head leads a **group**: it
//!    numbers the group's batches with consecutive sequence numbers, appends
//!    them to the **write-ahead log** (WAL) as one record each, and syncs
//!    the WAL once for the whole group when any of them asked for
//!    [`WriteOptions::sync`] (group commit).
//! 2. The leader inserts the batches into the **memtable**, a lock-free
//!    skiplist, then publishes the group's last sequence number: from then
//!    on reads see it, and every writer of the group returns.
//! 3. A full memtable (`write_buffer_size`) is frozen and a new WAL begun;
//!    a background thread **flushes** the frozen memtable to a sorted,
//!    immutable **SST file** at level 0 (data blocks, a B+Tree index of
//!    pages, a bloom filter; a checksum on every block), records it in the
//!    **manifest**, and deletes the WAL.
//! 4. **Compaction** (the `lightning-compaction` crate, on a rayon pool)
//!    merges SST files down the levels, dropping versions no snapshot can
//!    see; when it falls behind, writes slow down and then stop (stalls)
//!    rather than let reads degrade without bound.
//!
//! # How a read travels
//!
//! [`Db::get`] reads at the latest published sequence number (a
//! [`Snapshot`] at its own): the active memtable, the frozen ones, then the
//! level-0 files newest first and one file per deeper level, stopping at the
//! first version of the key. A bloom filter skips most files without the
//! key; an index descent finds the one data block that may hold it, read
//! from the OS page cache (memory-mapped) or the block cache. Iterators
//! ([`Iter`]) merge all these sources in key order, forwards or backwards,
//! and pin the files they read until dropped.
//!
//! # Durability and errors
//!
//! A write acknowledged without `sync` survives a crash of the process; with
//! `sync` it survives a power loss. Recovery replays the WALs, drops a torn
//! last record and reports any other damage as [`Error::Corruption`] naming
//! the file and offset. After a failed write or fsync the database stops
//! accepting writes ([`Error::Background`]) and keeps serving reads; reopen
//! it to go on. `docs/durability.md` states every promise and the test that
//! checks it; `docs/format.md` describes every file byte by byte.
//!
//! # Tuning and observing
//!
//! [`Options`] (also from a TOML file: [`Options::from_toml_file`]) with
//! RocksDB's names and defaults where they exist; [`Db::stats`],
//! [`Db::property`], `tracing` spans and events, and, with the default
//! `prometheus` feature, a Prometheus collector (`Db::metrics_text`).
//!
//! # Cargo features
//!
//! - `prometheus` (default): the Prometheus collector.
//! - `testing`: the module `testing` — the simulated file
//!   systems (`FaultFs`, `MemFs`), fuzzing entry points and benchmark hooks;
//!   not a stable API.
//!
//! # Platforms
//!
//! Linux is the supported platform: it is where the engine is built, tested
//! and measured (`fdatasync`, `fallocate`, `sync_file_range`, the mapped
//! WAL). Other Unix systems (macOS, the BSDs) have fallbacks for the
//! Linux-only calls (plain appends for the WAL, no writeback hints); CI
//! type-checks the crate for macOS (`cargo check --target
//! aarch64-apple-darwin`) but runs no test there. Windows is not
//! supported: the crate fails to compile there with a message saying so
//! (CI checks that it does). The minimum Rust version (`rust-version`,
//! 1.89) is checked in CI too.
#![deny(missing_docs)]

#[cfg(not(unix))]
compile_error!(
    "Lightning DB supports Unix systems (Linux, macOS, the BSDs) only: it relies on \
     POSIX file locking, pread and mmap. Windows is not supported."
);

mod backup;
mod batch;
mod blob;
mod cache;
mod coding;
mod compaction_filter;
mod db;
mod error;
mod filename;
pub mod fs;
pub mod inspect;
mod iter;
mod key;
mod keyspace;
mod log;
mod memtable;
mod merge_operator;
mod metrics;
mod options;
mod options_file;
mod prefetch;
mod prefix;
mod read_api;
mod read_options;
mod row_cache;
mod snapshot;
mod sst;
mod sst_writer;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod ttl;
mod txn;
mod version;

pub use backup::{BackupEngine, BackupId, BackupInfo};
pub use batch::WriteBatch;
pub use bytes::Bytes;
pub use cache::{
    thread_lookups as block_cache_thread_lookups, BlockCache, CachePolicy, CacheStats,
};
pub use compaction_filter::{CompactionFilter, Decision};
pub use db::{Db, IngestOptions, IntegrityReport, SecondaryDb, PROPERTY_NAMES};
pub use error::{ConflictKind, Error, Result};
pub use iter::db_iter::Iter;
pub use keyspace::{Keyspace, DEFAULT_KEYSPACE_NAME, MAX_KEYSPACE_NAME_LEN};
pub use lightning_compaction::stats::{CompactionStats, LevelStats};
pub use merge_operator::{AppendOperator, MergeError, MergeOperator, U64AddOperator};
pub use metrics::{
    BlobStats, DbStats, FilterStats, HistogramSnapshot, KeyspaceStats, MemtableStats, OpLatency,
    OpStats, RowCacheStats, StallCounter, StallStats, StatsLevel, TxnStats, WalStats,
};
pub use options::{
    CompactionConfig, CompactionStyle, Compression, FifoConfig, KeyspaceOptions, Options,
    TieredConfig, WalRecoveryMode, WriteOptions, MAX_KEY_SIZE, MAX_VALUE_SIZE,
};
pub use prefix::{FixedPrefix, PrefixExtractor};
/// The `prometheus` crate this version of Lightning DB registers its
/// metrics with: use its `Registry` for [`Options::metrics_registry`] to
/// be sure the versions match (feature `prometheus`, on by default).
#[cfg(feature = "prometheus")]
pub use prometheus;
pub use read_api::CompareAndSwapError;
pub use read_options::ReadOptions;
pub use snapshot::Snapshot;
pub use sst_writer::{ExternalSstInfo, SstWriter};
pub use ttl::{Clock, ManualClock, SystemClock};
pub use txn::{IsolationLevel, Transaction, TransactionOptions, TxnIter};
