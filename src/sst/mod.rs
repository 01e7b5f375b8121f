//! Sorted string tables (SSTs): immutable files holding one sorted run of
//! internal entries. See `docs/format.md`, section "SST files", for the
//! byte layout.
//!
//! Layout: data blocks (prefix-compressed entries with restart points),
//! index pages forming a B+Tree built bottom-up and interleaved with the
//! data blocks, a bloom filter over user keys, a properties block, and a
//! fixed 68-byte footer locating the index root, filter and properties.
//!
//! Invariants:
//! - Entries are in strictly increasing internal-key order, each internal
//!   key at most once; a file holds at least one entry.
//! - Separator invariant: in every index page, every key of child `i` is
//!   `<= s_i` and every key of child `i + 1` is `> s_i`; a page's entry in
//!   its parent is its last separator. A point lookup reads `depth` index
//!   pages and one data block.
//! - Every block carries a checksum over its stored bytes and compression
//!   type; readers verify it on every read and check every length and
//!   offset before use. Damage is reported as `Error::Corruption` with the
//!   file and absolute offset, never as a panic or wrong data.
//! - A table reads its file through a read-only memory map
//!   (`Options::allow_mmap_reads`: values of uncompressed blocks are then
//!   zero-copy slices of the map) or with one positional read per block
//!   into a buffer that the block cache keeps ([`table_data`]).
//!   Decompressed blocks own their buffer and are kept in the block cache
//!   either way (`Table::read_block` is the one place blocks are loaded).

pub(crate) mod block;
mod block_writer;
mod builder;
pub(crate) mod filter;
pub(crate) mod footer;
pub(crate) mod handle;
mod index;
mod page_summary;
pub(crate) mod properties;
pub(crate) mod range_del_block;
mod reader;
pub(crate) mod table_data;
#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "testing"))]
pub(crate) use builder::TableBuildOptions;
pub(crate) use builder::TableBuilder;
pub(crate) use filter::filter_hash;
pub use footer::Footer;
pub use handle::BlockHandle;
pub use properties::TableProperties;
pub use reader::CachedBlock;
pub(crate) use reader::{take_filter_counts, FilterCounts, Table};
pub use reader::{
    DataBlockLayout, FilterLayout, IndexLevelLayout, IndexPageLayout, TableLayout, VerifyCheck,
    VerifyOutcome, VerifyProblem, VerifyReport,
};
