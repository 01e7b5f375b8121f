//! Lightning DB: an embedded, LSM-first, write-optimized key-value store.
#![warn(missing_docs)]

mod batch;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals;
mod cache;
mod coding;
mod db;
mod error;
mod filename;
pub mod fs;
#[cfg(test)]
mod fuzz_tests;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod inspect;
mod iter;
mod key;
mod log;
mod memtable;
mod options;
mod options_file;
mod snapshot;
mod sst;
mod txn;
mod version;

pub use batch::WriteBatch;
pub use bytes::Bytes;
pub use cache::{
    thread_lookups as block_cache_thread_lookups, BlockCache, CachePolicy, CacheStats,
};
pub use db::{Db, IntegrityReport};
pub use error::{ConflictKind, Error, Result};
pub use iter::db_iter::Iter;
pub use options::{
    CompactionConfig, CompactionStyle, Compression, Options, TieredConfig, WalRecoveryMode,
    WriteOptions, MAX_KEY_SIZE, MAX_VALUE_SIZE,
};
pub use snapshot::Snapshot;
pub use txn::{IsolationLevel, Transaction, TransactionOptions, TxnIter};
