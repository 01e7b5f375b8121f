//! Lightning DB: an embedded, LSM-first, write-optimized key-value store.
#![warn(missing_docs)]

mod batch;
mod cache;
mod coding;
mod db;
mod error;
mod filename;
pub mod fs;
pub mod inspect;
mod iter;
mod key;
mod log;
mod memtable;
mod metrics;
mod options;
mod options_file;
mod prefetch;
mod snapshot;
mod sst;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod txn;
mod version;

pub use batch::WriteBatch;
pub use bytes::Bytes;
pub use cache::{
    thread_lookups as block_cache_thread_lookups, BlockCache, CachePolicy, CacheStats,
};
pub use db::{Db, IntegrityReport, PROPERTY_NAMES};
pub use error::{ConflictKind, Error, Result};
pub use iter::db_iter::Iter;
pub use metrics::{
    DbStats, FilterStats, HistogramSnapshot, MemtableStats, OpLatency, OpStats, StallCounter,
    StallStats, StatsLevel, TxnStats, WalStats,
};
pub use options::{
    CompactionConfig, CompactionStyle, Compression, Options, TieredConfig, WalRecoveryMode,
    WriteOptions, MAX_KEY_SIZE, MAX_VALUE_SIZE,
};
/// The `prometheus` crate this version of Lightning DB registers its
/// metrics with: use its `Registry` for [`Options::metrics_registry`] to
/// be sure the versions match (feature `prometheus`, on by default).
#[cfg(feature = "prometheus")]
pub use prometheus;
pub use snapshot::Snapshot;
pub use txn::{IsolationLevel, Transaction, TransactionOptions, TxnIter};
