//! Lightning DB: an embedded, LSM-first, write-optimized key-value store.
#![warn(missing_docs)]

mod batch;
mod coding;
mod error;
mod filename;
pub mod fs;
mod iter;
mod key;
mod log;
mod memtable;
mod options;
mod sst;
mod version;

pub use batch::WriteBatch;
pub use error::{Error, Result};
pub use options::{Compression, Options, WriteOptions, MAX_KEY_SIZE, MAX_VALUE_SIZE};
