//! The test harness: simulated file systems, fuzzing entry points and
//! benchmark hooks. Behind the `testing` cargo feature (the engine's own
//! integration tests, benchmarks and fuzz targets enable it); **not part of
//! the stable API**: it changes with the engine's internals.
//!
//! - [`FaultFs`]: an in-memory file system that keeps synced data apart
//!   from written data, simulates power loss ([`FaultFs::crash`]) and
//!   injects I/O errors ([`FaultRule`]).
//! - [`MemFs`]: an in-memory file system (a `FaultFs` that never fails).
//! - [`fuzzing`]: one entry point per on-disk decoder, for `fuzz/`.
//! - [`bench_internals`]: handles on the innermost hot paths, for
//!   `benches/internals.rs`.

#[doc(hidden)]
pub mod bench_internals;
pub(crate) mod fault;
#[cfg(test)]
mod fuzz_tests;
pub mod fuzzing;
mod mem;

pub use fault::{CrashMode, FaultFs, FaultRule, FaultStats, OpKind, OpRecord, PAGE_SIZE};
pub use mem::MemFs;

/// Chooses how `multi_get` reads the calling thread's batches:
/// `Some(true)` in stages (every key's data block located and requested
/// from the OS before any is read), `Some(false)` one key after another,
/// `None` (the default) each batch by whether its thread has been waiting
/// for the disk. Both return the same results; tests run each.
pub fn set_multi_get_reads_ahead(mode: Option<bool>) {
    crate::db::multi_get::set_multi_get_reads_ahead(mode);
}
