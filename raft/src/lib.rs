//! [openraft](https://docs.rs/openraft/0.9) storage on Lightning DB: the
//! Raft log ([`LogStore`], openraft's `RaftLogStorage`) and a replicated
//! key-value state machine ([`StateMachineStore`], `RaftStateMachine`),
//! both in one database, each in keyspaces of its own.
//!
//! Layout (keyspace: key → value):
//! - `raft_log`: the entry's index, 8 bytes big-endian → the entry, JSON.
//! - `raft_meta`: `vote`, `committed`, `last_purged` → JSON.
//! - `sm_data`: the application's keys → values.
//! - `sm_meta`: `last_applied`, `last_membership`, `snapshot_seq` → JSON.
//!
//! What is durable when: an append, a vote, a truncation and a purge are
//! written with `sync` before openraft is told they are done (openraft
//! requires that of votes and logs). The state machine is written without
//! `sync`: one batch per `apply` holds the data and the last applied log
//! id, so they are never torn apart, and the next synced log write makes
//! it durable with everything before it (one WAL, written in order).
//!
//! Snapshots are SST files ([`lightning_db::SstWriter`]) of the data
//! keyspace at one database snapshot, with the metadata beside them; a
//! follower installs one by clearing its data keyspace and ingesting the
//! file ([`lightning_db::Keyspace::ingest`]). Such a file is a checkpoint
//! of the data keyspace alone: a checkpoint of the whole database
//! ([`lightning_db::Db::checkpoint`]) would carry the leader's Raft log
//! and vote too, which a follower must never take over.

#![warn(missing_docs)]
// openraft's traits return its `StorageError` (224 bytes); the helpers
// here return what the traits do.
#![allow(clippy::result_large_err)]

mod log_store;
mod state_machine;

use std::io::Cursor;

use openraft::{AnyError, StorageError, StorageIOError};
use serde::{Deserialize, Serialize};

pub use log_store::LogStore;
pub use state_machine::StateMachineStore;

/// Node ids of a cluster whose storage is Lightning DB.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's type configuration for a Lightning DB state machine: a
    /// replicated map of byte strings.
    pub TypeConfig:
        D = Request,
        R = Response,
);

/// A write to the replicated map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: Vec<u8>,
        /// Its new value.
        value: Vec<u8>,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// What applying a [`Request`] answers: the key's value before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The value the key had before the request (`None`: absent).
    pub previous: Option<Vec<u8>>,
}

/// Opens (creating if needed) the Raft storage of one node in the
/// database directory `path`, with the default options: its log store and
/// its state machine.
pub fn open(
    path: impl AsRef<std::path::Path>,
) -> Result<(LogStore, StateMachineStore), lightning_db::Error> {
    open_with_options(path, lightning_db::Options::default())
}

/// [`open`] with the database's `options` (memtable sizes, caches,
/// compaction, the file system...). Whatever they say, the log's writes
/// are synced: openraft requires a vote and an appended entry to be
/// durable before it is told they are written.
pub fn open_with_options(
    path: impl AsRef<std::path::Path>,
    options: lightning_db::Options,
) -> Result<(LogStore, StateMachineStore), lightning_db::Error> {
    let path = path.as_ref();
    let db = std::sync::Arc::new(lightning_db::Db::open(path, options)?);
    let log = LogStore::new(std::sync::Arc::clone(&db))?;
    let sm = StateMachineStore::new(db, path.join("snapshots"))?;
    Ok((log, sm))
}

/// Encodes `v` as JSON.
fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(v)
}

/// Decodes JSON `bytes`.
fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// An error of the database or of an encoding, as openraft's error source.
fn any<E: std::error::Error + 'static>(e: E) -> AnyError {
    AnyError::new(&e)
}

/// A read of the log that failed.
fn read_logs_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(any(e)).into()
}

/// A write of the log that failed.
fn write_logs_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(any(e)).into()
}

/// The snapshot data type openraft moves between nodes.
pub type SnapshotData = Cursor<Vec<u8>>;
