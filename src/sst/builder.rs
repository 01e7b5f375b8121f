//! Writing an SST file: [`TableBuilder`].

use std::cmp::Ordering;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::fs::WritableFile;
use crate::key::{compare_internal, parse_internal_key, ValueKind};
use crate::options::Compression;

use super::block::BlockBuilder;
use super::block_writer::BlockWriter;
use super::filter::FilterBuilder;
use super::footer::{
    Footer, BLOB_FORMAT_VERSION, MERGE_FORMAT_VERSION, PLAIN_FORMAT_VERSION,
    RANGE_DEL_FORMAT_VERSION, TTL_FORMAT_VERSION,
};
use super::handle::{BlockHandle, BLOCK_TRAILER_LEN};
use super::index::IndexBuilder;
use super::properties::TableProperties;
use super::range_del_block;
use crate::key::{range_end_bound, range_start_bound};
use crate::key::{short_successor, shortest_separator};
use lightning_compaction::FragmentedTombstones;

/// Settings of one table build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableBuildOptions {
    /// Target uncompressed size of a data block; a block is closed when it
    /// reaches it, and an entry that would push a non-empty block past it
    /// starts a new block (so an entry larger than this gets its own block).
    pub block_size: usize,
    /// Entries between restart points in data blocks.
    pub block_restart_interval: usize,
    /// Target size of an index page.
    pub index_page_size: usize,
    /// Bloom filter bits per distinct user key; 0 writes no filter.
    pub bloom_bits_per_key: u32,
    /// Compression of data blocks and index pages.
    pub compression: Compression,
}

impl Default for TableBuildOptions {
    fn default() -> Self {
        TableBuildOptions {
            block_size: 4096,
            block_restart_interval: 8,
            index_page_size: 4096,
            bloom_bits_per_key: 10,
            compression: Compression::None,
        }
    }
}

impl TableBuildOptions {
    /// The table settings of database options for files written to `level`.
    pub fn for_level(o: &crate::options::Options, level: usize) -> Self {
        TableBuildOptions {
            block_size: o.block_size_for_level(level),
            block_restart_interval: o.block_restart_interval,
            index_page_size: o.index_page_size,
            bloom_bits_per_key: o.bloom_bits_per_key,
            compression: o.compression_for_level(level),
        }
    }
}

/// Writes one SST file from entries added in strictly increasing
/// internal-key order. Nothing is durable until [`finish`](Self::finish)
/// returns; a dropped builder leaves a partial file for the caller to
/// delete. After any error the file is incomplete: drop the builder and
/// delete the file.
pub struct TableBuilder {
    w: BlockWriter,
    opts: TableBuildOptions,
    data: BlockBuilder,
    index: IndexBuilder,
    filter: Option<FilterBuilder>,
    /// Adds each distinct key prefix to the filter too.
    prefix_extractor: Option<std::sync::Arc<dyn crate::PrefixExtractor>>,
    /// The `creation_time` property, seconds since the Unix epoch, from
    /// the database's clock (`None`: the system clock at finish).
    creation_time: Option<u64>,
    /// The last prefix added to the filter.
    last_prefix: Option<Vec<u8>>,
    /// Data block written whose index entry waits for the next key.
    pending_block: Option<BlockHandle>,
    last_key: Vec<u8>,
    sep_buf: Vec<u8>,
    props: TableProperties,
    /// Format version written: [`PLAIN_FORMAT_VERSION`], raised to
    /// [`BLOB_FORMAT_VERSION`] by the first blob reference, to
    /// [`RANGE_DEL_FORMAT_VERSION`] by range tombstones and to
    /// [`MERGE_FORMAT_VERSION`] by the first merge operand (tests write
    /// older ones).
    format_version: u32,
    /// Range tombstones to store ([`add_range_tombstones`](Self::add_range_tombstones)).
    range_dels: FragmentedTombstones,
}

impl TableBuilder {
    /// A builder writing to `file` (named `path` in errors).
    pub fn new(file: Box<dyn WritableFile>, path: PathBuf, opts: TableBuildOptions) -> Self {
        let offset = file.len();
        TableBuilder {
            w: BlockWriter::new(file, path, offset, opts.compression),
            opts,
            data: BlockBuilder::new(opts.block_restart_interval),
            index: IndexBuilder::new(opts.index_page_size),
            filter: (opts.bloom_bits_per_key > 0)
                .then(|| FilterBuilder::new(opts.bloom_bits_per_key)),
            prefix_extractor: None,
            creation_time: None,
            last_prefix: None,
            pending_block: None,
            last_key: Vec::new(),
            sep_buf: Vec::new(),
            props: TableProperties::default(),
            format_version: PLAIN_FORMAT_VERSION,
            range_dels: FragmentedTombstones::empty(),
        }
    }

    /// Adds range tombstones to store in the file's range-deletion block
    /// (several calls add up). The file's key range and sequence range
    /// grow to cover them: its smallest key is at most each fragment's
    /// start, and its largest key at least each fragment's end, as an
    /// exclusive bound ([`crate::key::range_end_bound`]) unless an entry
    /// at that key is larger.
    pub fn add_range_tombstones(&mut self, set: &FragmentedTombstones) {
        if set.is_empty() {
            return;
        }
        self.range_dels = if self.range_dels.is_empty() {
            set.clone()
        } else {
            FragmentedTombstones::merge([&self.range_dels, set])
        };
    }

    /// A builder for a file of `level` of a tree with options `o`: its
    /// table settings, and its prefix extractor for the filter.
    pub(crate) fn for_tree(
        file: Box<dyn WritableFile>,
        path: PathBuf,
        o: &crate::options::Options,
        level: usize,
    ) -> Self {
        let mut b = TableBuilder::new(file, path, TableBuildOptions::for_level(o, level));
        b.set_prefix_extractor(o.prefix_extractor.clone());
        b.creation_time = Some(o.clock.now_millis() / 1000);
        b
    }

    /// Adds each distinct prefix `x` extracts from the keys to the filter
    /// too, and records `x`'s name in the properties (call before the
    /// first [`add`](Self::add); nothing happens without a filter).
    pub fn set_prefix_extractor(&mut self, x: Option<std::sync::Arc<dyn crate::PrefixExtractor>>) {
        if self.filter.is_none() {
            return;
        }
        self.props.prefix_extractor = x.as_ref().map(|x| x.name().to_string()).unwrap_or_default();
        self.prefix_extractor = x;
    }

    /// Adds an entry. `ikey` is an encoded internal key strictly greater
    /// (in `compare_internal` order) than every key added before; otherwise
    /// (or when it is not a valid internal key) the call fails with
    /// `InvalidArgument` (and panics in debug builds) and adds nothing.
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let Some(parsed) = parse_internal_key(ikey) else {
            return Err(Error::InvalidArgument(
                "TableBuilder::add: not an internal key".into(),
            ));
        };
        self.note_kind(parsed.kind);
        let first = self.props.num_entries == 0;
        if !first && compare_internal(&self.last_key, ikey) != Ordering::Less {
            debug_assert!(false, "TableBuilder::add: keys out of order");
            return Err(Error::InvalidArgument(
                "TableBuilder::add: keys not strictly increasing".into(),
            ));
        }
        self.add_parsed(ikey, parsed, value)
    }

    /// [`add`](Self::add) for a caller that has already checked that
    /// `ikey` is a well-formed internal key greater than every key added
    /// before (`SstWriter`, whose keys are checked as user keys, all at
    /// sequence number 0): the order is not compared again.
    pub(crate) fn add_ordered(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let Some(parsed) = parse_internal_key(ikey) else {
            return Err(Error::InvalidArgument(
                "TableBuilder::add: not an internal key".into(),
            ));
        };
        self.note_kind(parsed.kind);
        self.add_parsed(ikey, parsed, value)
    }

    fn add_parsed(
        &mut self,
        ikey: &[u8],
        parsed: crate::key::ParsedKey<'_>,
        value: &[u8],
    ) -> Result<()> {
        let first = self.props.num_entries == 0;
        if ikey.len() > u32::MAX as usize / 2 || value.len() > u32::MAX as usize / 2 {
            return Err(Error::InvalidArgument(
                "TableBuilder::add: key or value too large".into(),
            ));
        }
        // An entry that would push a non-empty block past block_size starts
        // a new block.
        if !self.data.is_empty()
            && self.data.size_estimate()
                + BlockBuilder::entry_size_estimate(ikey.len(), value.len())
                > self.opts.block_size
        {
            self.flush_data_block()?;
        }
        if let Some(h) = self.pending_block.take() {
            shortest_separator(&self.last_key, ikey, &mut self.sep_buf);
            self.index.add(&mut self.w, &self.sep_buf, h)?;
        }
        if let Some(f) = &mut self.filter {
            if first
                || !crate::key::same_user_key(crate::key::user_key(&self.last_key), parsed.user_key)
            {
                f.add(parsed.user_key);
                if let Some(p) = self
                    .prefix_extractor
                    .as_ref()
                    .and_then(|x| x.prefix(parsed.user_key))
                {
                    if self.last_prefix.as_deref() != Some(p) {
                        f.add(p);
                        self.last_prefix = Some(p.to_vec());
                    }
                }
            }
        }
        self.data.add(ikey, value);

        let p = &mut self.props;
        if first {
            p.smallest_key = ikey.to_vec();
            p.smallest_seq = parsed.seq;
            p.largest_seq = parsed.seq;
        }
        p.num_entries += 1;
        if parsed.kind == ValueKind::Delete {
            p.num_deletions += 1;
        }
        p.smallest_seq = p.smallest_seq.min(parsed.seq);
        p.largest_seq = p.largest_seq.max(parsed.seq);
        p.raw_key_size += ikey.len() as u64;
        p.raw_value_size += value.len() as u64;
        self.last_key.clear();
        self.last_key.extend_from_slice(ikey);

        if self.data.size_estimate() >= self.opts.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Raises the table's format version to what an entry of `kind` needs.
    fn note_kind(&mut self, kind: ValueKind) {
        match kind {
            ValueKind::BlobIndex if self.format_version == PLAIN_FORMAT_VERSION => {
                self.format_version = BLOB_FORMAT_VERSION;
            }
            ValueKind::Merge => self.format_version = self.format_version.max(MERGE_FORMAT_VERSION),
            ValueKind::TimedValue => self.format_version = TTL_FORMAT_VERSION,
            _ => {}
        }
    }

    /// Widens the key and sequence ranges of the properties to the range
    /// tombstones (`points`: entries were added, so the ranges are set).
    fn note_range_bounds(&mut self, points: bool) {
        let Some((start, end)) = self.range_dels.bounds() else {
            return;
        };
        let (lo, hi) = (range_start_bound(start), range_end_bound(end));
        let (min_seq, max_seq) = (self.range_dels.min_seq(), self.range_dels.max_seq());
        let p = &mut self.props;
        if !points {
            p.smallest_key = lo;
            p.largest_key = hi;
            p.smallest_seq = min_seq;
            p.largest_seq = max_seq;
            return;
        }
        if compare_internal(&lo, &p.smallest_key) == Ordering::Less {
            p.smallest_key = lo;
        }
        if compare_internal(&hi, &p.largest_key) == Ordering::Greater {
            p.largest_key = hi;
        }
        p.smallest_seq = p.smallest_seq.min(min_seq);
        p.largest_seq = p.largest_seq.max(max_seq);
    }

    fn flush_data_block(&mut self) -> Result<()> {
        debug_assert!(self.pending_block.is_none());
        let h = self.w.write_block(self.data.finish(), true)?;
        self.data.reset();
        self.props.num_data_blocks += 1;
        self.props.data_size += h.size + BLOCK_TRAILER_LEN as u64;
        self.pending_block = Some(h);
        Ok(())
    }

    #[cfg(test)]
    /// Entries added so far.
    pub fn num_entries(&self) -> u64 {
        self.props.num_entries
    }

    /// Writes format version `version` (1 or 2) instead of the current
    /// one, to test that files of older builds still read.
    #[cfg(test)]
    pub(crate) fn with_format_version(mut self, version: u32) -> Self {
        self.format_version = version;
        self
    }

    /// Bytes written so far plus the buffered data block and index pages.
    pub fn estimated_file_size(&self) -> u64 {
        self.w.offset() + self.data.size_estimate() as u64 + self.index.pending_size() as u64
    }

    /// Writes the last data block, the remaining index pages, the filter,
    /// the range-deletion block, the properties and the footer, then syncs
    /// the file's data. Returns the properties and the file size. Fails
    /// with `InvalidArgument` when no entry and no range tombstone was
    /// added (an empty SST is never written).
    pub fn finish(mut self) -> Result<(TableProperties, u64)> {
        let points = self.props.num_entries > 0;
        if !points && self.range_dels.is_empty() {
            return Err(Error::InvalidArgument(
                "TableBuilder::finish: a table needs at least one entry".into(),
            ));
        }
        if !self.data.is_empty() {
            self.flush_data_block()?;
        }
        if let Some(h) = self.pending_block.take() {
            short_successor(&self.last_key, &mut self.sep_buf);
            self.index.add(&mut self.w, &self.sep_buf, h)?;
        }
        let (root, depth) = self.index.finish(&mut self.w)?;
        let filter = match &self.filter {
            Some(f) => {
                let contents = match self.format_version {
                    #[cfg(test)]
                    1 => f.finish_probed(),
                    _ => f.finish(self.w.offset()),
                };
                self.w.write_block(&contents, false)?
            }
            None => BlockHandle::default(),
        };
        if points {
            self.props.largest_key = self.last_key.clone();
        }
        if !self.range_dels.is_empty() {
            let mut buf = Vec::new();
            range_del_block::encode(&self.range_dels, &mut buf);
            let h = self.w.write_block(&buf, false)?;
            self.format_version = self.format_version.max(RANGE_DEL_FORMAT_VERSION);
            self.note_range_bounds(points);
            let p = &mut self.props;
            p.num_range_deletions = self.range_dels.len() as u64;
            p.range_deletions_offset = h.offset;
            p.range_deletions_size = h.size;
        }
        let p = &mut self.props;
        p.index_size = self.index.index_size;
        p.num_index_pages = self.index.num_pages;
        p.index_depth = u64::from(depth);
        if self.filter.is_some() {
            p.filter_size = filter.size + BLOCK_TRAILER_LEN as u64;
            p.bloom_bits_per_key = u64::from(self.opts.bloom_bits_per_key);
        }
        p.compression = self.opts.compression.to_string();
        p.creation_time = self.creation_time.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let mut buf = Vec::new();
        p.encode_to(&mut buf);
        let properties = self.w.write_block(&buf, false)?;
        buf.clear();
        Footer {
            index_root: root,
            filter,
            properties,
            index_depth: depth,
            version: self.format_version,
        }
        .encode_into(&mut buf);
        self.w.append_raw(&buf)?;
        let file_size = self.w.sync()?;
        Ok((self.props, file_size))
    }
}
