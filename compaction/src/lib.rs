//! Compaction for Lightning DB: what to merge, and how.
//!
//! This crate knows nothing of files or bytes on disk, so it can be
//! understood, simulated and property-tested alone. The engine describes
//! its tree as a [`LevelState`] (per level, each file's size, user-key
//! range, sequence range and tombstone count) and implements three small
//! traits: [`EntryCursor`] (a sorted run of internal entries),
//! [`RunWriter`] and [`RunSink`] (a way to write new runs).
//!
//! - [`config`]: every knob, with RocksDB's names and defaults.
//! - [`planner`]: picks the next job by score (leveled with dynamic level
//!   targets, or tiered/universal), trivial moves, write-stall decisions.
//! - [`merge`]: the k-way, MVCC-aware merge that drops what no reader can
//!   see.
//! - [`executor`]: runs a job, split into key-range subcompactions, on a
//!   rayon pool.
//! - [`stats`]: per-level compaction statistics and write amplification.
#![deny(missing_docs)]

pub mod config;
pub mod executor;
pub mod merge;
pub mod planner;
pub mod range_del;
pub mod stats;
pub mod types;

#[cfg(test)]
mod test_util;

pub use config::ConfigError;

pub use config::{CompactionConfig, CompactionStyle, FifoConfig, TieredConfig};
pub use executor::{run_job, subcompaction_ranges, JobInputs, JobResult};
pub use merge::{merge_runs, write_outputs, GcPolicy, MergeStats, OutputCutter};
pub use planner::{
    level_scores, level_targets, manual, pending_compaction_bytes, pick, write_stall, ManualStep,
    StallCause, WriteStall,
};
pub use range_del::{Fragment, FragmentError, FragmentedTombstones, RangeTombstone};
pub use stats::{CompactionStats, LevelStats, StallMicros};
pub use types::{
    CompactionJob, CompactionReason, EntryCursor, EntryFilter, EntryKind, EntryRef, FileInfo,
    FilterDecision, FilterFn, KeyRange, LevelInputs, LevelState, MergeFn, OperandMerge, RunSink,
    RunWriter, Shared, UserHooks,
};
