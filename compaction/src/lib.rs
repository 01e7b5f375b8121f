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
#![warn(missing_docs)]

pub mod config;
pub mod types;

pub use config::ConfigError;

pub use config::{CompactionConfig, CompactionStyle, TieredConfig};
pub use types::{
    CompactionJob, CompactionReason, EntryCursor, EntryKind, EntryRef, FileInfo, LevelInputs,
    LevelState, RunSink, RunWriter,
};
