//! Versions: the set of live SST files, persisted as version edits in the
//! manifest and found through `CURRENT`.
//!
//! - [`edit`]: the manifest record payload ([`edit::VersionEdit`]).
//! - [`current`]: reading and atomically replacing `CURRENT`.
// Used by the Db (not yet written).
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod current;
pub(crate) mod edit;
