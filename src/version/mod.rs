//! Versions: the set of live SST files, persisted as version edits in the
//! manifest and found through `CURRENT`.
//!
//! - [`edit`]: the manifest record payload ([`edit::VersionEdit`]).
//! - [`current`]: reading and atomically replacing `CURRENT`.
//! - [`version`]: an immutable file set, level by level.
//! - [`blob_files`]: the blob files of a version, and their handles.
//! - [`set`]: the current version and the manifest that records its changes.
//! - [`superversion`]: memtables plus version, published to readers.
//! - [`table_cache`]: opening tables, and the bound on how many are open.

pub(crate) mod blob_files;
pub(crate) mod current;
pub(crate) mod edit;
pub(crate) mod set;
pub(crate) mod superversion;
pub(crate) mod table_cache;
#[allow(clippy::module_inception)]
pub(crate) mod version;
