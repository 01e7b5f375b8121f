//! Lightning DB: an embedded, LSM-first, write-optimized key-value store.
#![warn(missing_docs)]

mod coding;
mod error;
pub mod fs;
mod iter;
mod key;
mod options;
mod sst;

pub use error::{Error, Result};
pub use options::{Compression, Options, WriteOptions, MAX_KEY_SIZE, MAX_VALUE_SIZE};
