//! Thin handles on the engine's innermost hot paths, for the criterion
//! micro-benchmarks in `benches/internals.rs` (cargo feature
//! `testing`; not a stable API). Each wraps one step a point
//! lookup or a write takes, so a regression shows in the step it is in:
//! the seek inside one data block, a bloom filter probe, the descent of an
//! SST's B+Tree index to a data block, and one WAL record append.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::fs::FileSystem;
use crate::key::{encode_internal_key, ValueKind, MAX_SEQUENCE};
use crate::log::{LogKind, LogWriter};
use crate::sst::block::{Block, BlockBuilder, BlockIter};
use crate::sst::filter::{FilterBuilder, FilterFormat, FilterReader};
use crate::sst::{Table, TableBuildOptions, TableBuilder};
use crate::testing::MemFs;

/// One data block of `n` entries and a cursor to seek in it.
pub struct BlockSeek {
    iter: BlockIter,
}

impl BlockSeek {
    /// A block holding `keys` (sorted, distinct) with 100-byte values, as
    /// the table builder writes them (restart interval 16).
    pub fn new(keys: &[Vec<u8>]) -> BlockSeek {
        let mut b = BlockBuilder::new(16);
        for k in keys {
            b.add(&encode_internal_key(k, 1, ValueKind::Value), &[7u8; 100]);
        }
        let block = Block::new(Bytes::copy_from_slice(b.finish()), 0, false)
            .expect("a built block is well formed");
        BlockSeek {
            iter: BlockIter::new(block, Vec::new()),
        }
    }

    /// Seeks the first entry at or after `key`; true when it is `key`.
    pub fn seek(&mut self, key: &[u8]) -> bool {
        let target = encode_internal_key(key, MAX_SEQUENCE, ValueKind::FOR_SEEK);
        self.iter.seek(&target);
        self.iter.valid() && self.iter.key().starts_with(key)
    }
}

/// A bloom filter over a set of keys.
pub struct Bloom {
    reader: FilterReader,
}

impl Bloom {
    /// A filter of `bits_per_key` over `keys`.
    pub fn new(keys: &[Vec<u8>], bits_per_key: u32) -> Bloom {
        let mut b = FilterBuilder::new(bits_per_key);
        for k in keys {
            b.add(k);
        }
        Bloom {
            reader: FilterReader::new(Bytes::from(b.finish(0)), FilterFormat::CacheLocal)
                .expect("a built filter is valid"),
        }
    }

    /// False only when `key` is certainly not in the set.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.reader.may_contain(key)
    }
}

/// An SST (in memory, without a bloom filter) for point lookups: each
/// lookup descends the B+Tree index and seeks in one data block.
pub struct IndexDescent {
    table: Arc<Table>,
}

impl IndexDescent {
    /// A table of `keys` (sorted, distinct) with 100-byte values.
    pub fn new(keys: &[Vec<u8>]) -> IndexDescent {
        let fs = MemFs::new();
        let path = PathBuf::from("/bench/000001.sst");
        fs.create_dir_all(std::path::Path::new("/bench"))
            .expect("mem fs");
        let file = fs.create(&path).expect("mem fs");
        let opts = TableBuildOptions {
            bloom_bits_per_key: 0,
            ..TableBuildOptions::default()
        };
        let mut b = TableBuilder::new(file, path.clone(), opts);
        for k in keys {
            b.add(&encode_internal_key(k, 1, ValueKind::Value), &[7u8; 100])
                .expect("mem fs");
        }
        b.finish().expect("mem fs");
        IndexDescent {
            table: Arc::new(Table::open(&fs, &path).expect("a built table opens")),
        }
    }

    /// Index depth (pages read per lookup, root included, before the data
    /// block).
    pub fn depth(&self) -> u32 {
        self.table.footer().index_depth
    }

    /// Looks `key` up; true when found.
    pub fn get(&self, key: &[u8]) -> bool {
        matches!(self.table.get(key, MAX_SEQUENCE), Ok(Some(_)))
    }
}

/// A WAL writer on an in-memory file: measures record framing, checksum
/// and buffering, not the disk.
pub struct WalAppend {
    writer: LogWriter,
    fs: MemFs,
    n: u64,
}

impl WalAppend {
    /// A fresh in-memory WAL.
    pub fn new() -> WalAppend {
        let fs = MemFs::new();
        fs.create_dir_all(std::path::Path::new("/bench"))
            .expect("mem fs");
        WalAppend {
            writer: Self::open(&fs, 1),
            fs,
            n: 1,
        }
    }

    fn open(fs: &MemFs, n: u64) -> LogWriter {
        let path = PathBuf::from(format!("/bench/{n:06}.log"));
        let file = fs.create(&path).expect("mem fs");
        LogWriter::new(file, path, LogKind::Wal, n).expect("mem fs")
    }

    /// Appends one record and hands it to the (in-memory) OS; starts a new
    /// file every 64 MiB so memory stays bounded.
    pub fn append(&mut self, record: &[u8]) {
        self.writer.add_record(record).expect("mem fs");
        self.writer.flush().expect("mem fs");
        if self.writer.len() > 64 << 20 {
            self.n += 1;
            let old = PathBuf::from(format!("/bench/{:06}.log", self.n - 1));
            self.writer = Self::open(&self.fs, self.n);
            let _ = self.fs.remove_file(&old);
        }
    }
}

impl Default for WalAppend {
    fn default() -> Self {
        Self::new()
    }
}
