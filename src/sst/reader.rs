//! Reading an SST file: [`Table`] (open, point lookups, verification,
//! layout inspection) and [`TableIterator`].
//!
//! A table is an immutable memory map. Opening checks the footer, that
//! every footer handle lies inside the block area, the properties and
//! filter blocks (checksums and decoding) and the root index page. Every
//! other block is checked (checksum, restart array, entry bounds) each time
//! it is read; nothing read from disk is used unchecked, and a failed check
//! is `Error::Corruption` naming the file and the absolute offset.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::{Access, BlockCache, CacheKey, PinnedCharge};
use crate::coding::DecodeError;
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::iter::InternalIterator;
use crate::key::{
    compare_internal, pack_trailer, parse_internal_key, user_key, SeqNo, ValueKind, MAX_SEQUENCE,
};

use super::block::{read_block, read_raw_block, Block, BlockIter, COMPRESSION_NONE};
use super::filter::{filter_hash, FilterFormat, FilterReader};
use super::footer::Footer;
use super::handle::{BlockHandle, BLOCK_TRAILER_LEN};
use super::properties::TableProperties;
use super::table_data::TableData;

thread_local! {
    /// Key buffer reused by point lookups on this thread.
    static GET_KEY_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Bloom filter outcomes of this thread's point lookups, until taken.
    static FILTER_COUNTS: Cell<FilterCounts> = const { Cell::new(FilterCounts::ZERO) };
}

/// Bloom filter outcomes of point lookups ([`Table::get`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FilterCounts {
    /// Lookups in files with a filter.
    pub(crate) checks: u64,
    /// Of those, the filter said the key is absent (no block read).
    pub(crate) useful: u64,
    /// The filter let the lookup through and the file had no entry of the
    /// key visible to it.
    pub(crate) false_positives: u64,
}

impl FilterCounts {
    const ZERO: FilterCounts = FilterCounts {
        checks: 0,
        useful: 0,
        false_positives: 0,
    };
}

/// The filter outcomes of this thread's lookups since the last call
/// (the database folds them into its counters after each read).
#[inline]
pub(crate) fn take_filter_counts() -> FilterCounts {
    FILTER_COUNTS.with(Cell::take)
}

fn note_filter(useful: bool, false_positive: bool) {
    FILTER_COUNTS.with(|c| {
        let mut f = c.get();
        f.checks += 1;
        f.useful += u64::from(useful);
        f.false_positives += u64::from(false_positive);
        c.set(f);
    });
}

/// A verified, decompressed block as kept in the block cache. Opaque.
#[derive(Clone, Debug)]
pub struct CachedBlock(Block);

/// A table's link to the block cache: the cache, the table's key space in
/// it, and the reservation for its pinned filter and root page.
#[derive(Debug)]
struct TableCache {
    cache: Arc<BlockCache>,
    id: u64,
    _pinned: PinnedCharge<CachedBlock>,
}

/// An open, immutable SST file. `Send + Sync`; share it in an `Arc`.
#[derive(Debug)]
pub struct Table {
    path: PathBuf,
    pub(super) data: TableData,
    footer: Footer,
    props: TableProperties,
    filter: Option<FilterReader>,
    root: Block,
    /// Offset of the footer: every block ends at or before it.
    limit: u64,
    cache: Option<TableCache>,
    /// The file system that mapped `data`, for
    /// [`FileSystem::release_read_pages`] (set when opened by the engine).
    fs: Option<Arc<dyn FileSystem>>,
    /// Verified index pages below the root, by file offset (set when
    /// opened by the engine): a lookup then verifies only its data block.
    pinned_pages: PinnedPages,
}

/// Index pages kept verified for the table's life, by block offset.
type PinnedPages =
    std::collections::HashMap<u64, (u64, Block), std::hash::BuildHasherDefault<OffsetHasher>>;

/// Hasher for block offsets: one multiply.
#[derive(Default)]
struct OffsetHasher(u64);

impl std::hash::Hasher for OffsetHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Table {
    /// Maps and opens the SST file at `path`.
    pub fn open(fs: &dyn FileSystem, path: &Path) -> Result<Table> {
        let data = crate::fs::read_file_retrying(fs, path)?;
        Self::from_bytes(path.to_path_buf(), data)
    }

    /// Opens the SST file at `path` for reads with `pread`, one per block:
    /// nothing of it is mapped.
    pub(crate) fn open_pread(fs: &dyn FileSystem, path: &Path) -> Result<Table> {
        let file = fs.open_random(path)?;
        let len = file.size()?;
        Self::from_data(path.to_path_buf(), TableData::Pread { file, len })
    }

    /// Opens an SST held in `data` (named `path` in errors). Validates the
    /// footer (magic, checksum, version, depth), that every footer handle
    /// lies before the footer, and reads and checks the properties, filter
    /// and root index page.
    pub fn from_bytes(path: PathBuf, data: Bytes) -> Result<Table> {
        Self::from_data(path, TableData::Whole(data))
    }

    /// [`Table::from_bytes`] for the file's bytes however they are read.
    fn from_data(path: PathBuf, data: TableData) -> Result<Table> {
        let len = data.len();
        let flen = Footer::ENCODED_LEN as u64;
        let tail = data.read(&path, len - flen.min(len), flen.min(len), "footer")?;
        let footer = Footer::decode_from(&tail, &path, len)?;
        let limit = len - flen;
        let in_range = |h: BlockHandle| h.end_with_trailer().is_some_and(|e| e <= limit);
        let check = |h: BlockHandle, what: &str| {
            if in_range(h) {
                Ok(())
            } else {
                Err(Error::corruption(
                    &path,
                    limit,
                    format!(
                        "footer {what} handle (offset {}, size {}) lies outside the block area (0..{limit})",
                        h.offset, h.size
                    ),
                ))
            }
        };
        check(footer.index_root, "index root")?;
        check(footer.properties, "properties")?;
        if footer.has_filter() {
            check(footer.filter, "filter")?;
        }

        let (pb, ptype) =
            read_raw_block(&path, &data, limit, footer.properties, "properties block")?;
        if ptype != COMPRESSION_NONE {
            return Err(Error::corruption(
                &path,
                footer.properties.offset,
                "properties block is compressed",
            ));
        }
        let props = TableProperties::decode(&pb)
            .map_err(|e| e.into_error(&path, footer.properties.offset))?;
        if props.index_depth != u64::from(footer.index_depth) {
            return Err(Error::corruption(
                &path,
                footer.properties.offset,
                format!(
                    "properties say index depth {}, footer says {}",
                    props.index_depth, footer.index_depth
                ),
            ));
        }
        if props.num_entries == 0 {
            return Err(Error::corruption(
                &path,
                footer.properties.offset,
                "table without entries",
            ));
        }

        let filter = if footer.has_filter() {
            let (fb, ftype) = read_raw_block(&path, &data, limit, footer.filter, "filter block")?;
            if ftype != COMPRESSION_NONE {
                return Err(Error::corruption(
                    &path,
                    footer.filter.offset,
                    "filter block is compressed",
                ));
            }
            let layout = FilterFormat::for_format_version(footer.version);
            Some(
                FilterReader::new(fb, layout)
                    .map_err(|e| e.into_error(&path, footer.filter.offset))?,
            )
        } else {
            None
        };
        let root = read_block(&path, &data, limit, footer.index_root, "index root page")?;
        Ok(Table {
            path,
            data,
            footer,
            props,
            filter,
            root,
            limit,
            cache: None,
            fs: None,
            pinned_pages: PinnedPages::default(),
        })
    }

    /// Opens the SST file at `path`, reading its blocks through `cache`:
    /// through a read-only memory map with `mmap`, else with one `pread`
    /// per block (`Options::allow_mmap_reads`). The filter, the root index
    /// page and the pinned index pages are charged to the cache for the
    /// table's life.
    pub fn open_cached(
        fs: &Arc<dyn FileSystem>,
        path: &Path,
        cache: Option<&Arc<BlockCache>>,
        mmap: bool,
    ) -> Result<Table> {
        let mut t = if mmap {
            Self::open(fs.as_ref(), path)?
        } else {
            Self::open_pread(fs.as_ref(), path)?
        };
        t.fs = Some(Arc::clone(fs));
        t.pinned_pages = t.load_index_pages();
        t.root = t.root.detached().with_summary();
        // Opening touched the footer, properties, filter and every index
        // page; the kernel maps up to 64 KiB around each touched page
        // (fault-around), which for index pages interleaved with data
        // blocks is about 13 % of the file. The pinned pages are heap
        // copies now: give the mapping's pages back (reads fault in what
        // they need). Peak RSS of a 10M-key fillrandom + compaction went
        // from 263 to 159 MiB.
        t.release_below(0, t.data.len());
        if let Some(cache) = cache {
            let held = |b: &Block| b.data().len() + b.summary().map_or(0, |s| s.heap_bytes());
            let pinned = held(&t.root)
                + t.filter.as_ref().map_or(0, |f| f.size())
                + t.pinned_pages.values().map(|(_, b)| held(b)).sum::<usize>();
            t.cache = Some(TableCache {
                cache: Arc::clone(cache),
                id: cache.new_table_id(),
                _pinned: cache.pin(pinned),
            });
        }
        Ok(t)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's properties.
    pub fn properties(&self) -> &TableProperties {
        &self.props
    }

    /// The decoded footer.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    #[cfg(test)]
    /// The whole file (the memory map); values handed out are slices of it.
    pub fn file_bytes(&self) -> &Bytes {
        self.data.whole().expect("a table read whole")
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.data.len()
    }

    /// False only when the file certainly holds no entry of `user_key`
    /// (bloom filter); always true without a filter.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(filter_hash(user_key))
    }

    /// [`may_contain`](Self::may_contain) for a key whose
    /// [`filter_hash`] is `h`.
    #[inline]
    pub(crate) fn may_contain_hash(&self, h: u64) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain_hash(h))
    }

    /// Starts loading the filter line a lookup of hash `h` probes (a hint;
    /// see [`crate::prefetch`]).
    #[inline]
    pub(crate) fn prefetch_filter(&self, h: u64) {
        if let Some(f) = &self.filter {
            f.prefetch_hash(h);
        }
    }

    /// Reads and verifies every index page below the root (the pages an
    /// index descent reads before its data block), to keep them for the
    /// table's life: about 1 % of the file. A page that fails its checks is
    /// left out, so the lookups that need it report the damage as before.
    fn load_index_pages(&self) -> PinnedPages {
        let mut pinned = PinnedPages::default();
        let mut current = vec![self.root.clone()];
        // Levels of pages under the root whose children are still pages.
        for _ in 1..self.footer.index_depth {
            let mut next = Vec::new();
            for page in current {
                let mut it = BlockIter::new(page, Vec::new());
                it.seek_to_first();
                while it.valid() {
                    if let Ok(h) = self.child_handle(&it) {
                        if let Ok(b) =
                            read_block(&self.path, &self.data, self.limit, h, "index page")
                        {
                            // A heap copy: see `open_cached`.
                            let b = b.detached().with_summary();
                            pinned.insert(h.offset, (h.size, b.clone()));
                            next.push(b);
                        }
                    }
                    it.next();
                }
            }
            current = next;
        }
        pinned
    }

    /// The block at `handle`: the root or a pinned index page, from the
    /// block cache, or read, verified, decompressed (and then cached). The
    /// one place blocks are loaded.
    pub(super) fn read_block(
        &self,
        handle: BlockHandle,
        what: &str,
        access: Access,
    ) -> Result<Block> {
        if handle == self.footer.index_root {
            return Ok(self.root.clone());
        }
        if let Some((size, b)) = self.pinned_pages.get(&handle.offset) {
            if *size == handle.size {
                // Request what the search reads before it probes it (pinned
                // pages are not re-verified, so nothing else would): the
                // summary's packed keys and the restart array (which
                // locates the one entry decoded), or else every line of the
                // page. Without it each probe waited for memory in turn
                // (whole page: readrandom at 10M keys +28 %, at 1M +10 %;
                // the restart array with the summary: 10M +5-11 %).
                match b.summary() {
                    Some(summary) => {
                        summary.prefetch();
                        crate::prefetch::prefetch_range(b.restart_array());
                    }
                    None => crate::prefetch::prefetch_range(b.data()),
                }
                return Ok(b.clone());
            }
        }
        // Every line of the block and its trailer is about to be read
        // (checksum, search): request them all before the first one stalls.
        let span = handle.end_with_trailer().and_then(|end| {
            let start = usize::try_from(handle.offset).ok()?;
            self.data.whole()?.get(start..usize::try_from(end).ok()?)
        });
        if let Some(bytes) = span {
            crate::prefetch::prefetch_range(bytes);
        }
        // From a map, only blocks that need decompressing are cached. An
        // uncompressed block is a zero-copy slice of the map, and
        // re-verifying its checksum (one pass over bytes the lookup reads
        // next anyway) measured cheaper than a cache hit: readrandom, 1M
        // keys, every block cached: 1.47 µs/get without the cache, 1.87 µs
        // with it. The type byte (the trailer's first) peeked here only
        // picks the path; `read_block` verifies it with the rest, and
        // reports a handle outside the file. Read with `pread`, every block
        // is cached: a miss costs a system call.
        let stored_type = span.and_then(|b| {
            b.len()
                .checked_sub(BLOCK_TRAILER_LEN)
                .and_then(|at| b.get(at))
        });
        let cacheable =
            self.data.whole().is_none() || stored_type.is_some_and(|&t| t != COMPRESSION_NONE);
        let Some(tc) = self.cache.as_ref().filter(|_| cacheable) else {
            return read_block(&self.path, &self.data, self.limit, handle, what);
        };
        let key = CacheKey {
            table: tc.id,
            offset: handle.offset,
        };
        if let Some(CachedBlock(b)) = tc.cache.get(&key, access) {
            return Ok(b);
        }
        let b = read_block(&self.path, &self.data, self.limit, handle, what)?;
        tc.cache.insert(
            key,
            CachedBlock(b.clone()),
            b.data().len() + BLOCK_TRAILER_LEN,
            access,
        );
        Ok(b)
    }

    fn block_error(&self, block: &Block, e: DecodeError, what: &str) -> Error {
        Error::corruption(
            &self.path,
            block.error_offset(&e),
            format!("{what}: {}", e.reason),
        )
    }

    /// The child handle stored as the current value of index cursor `it`.
    fn child_handle(&self, it: &BlockIter) -> Result<BlockHandle> {
        BlockHandle::decode_exact(it.value()).map_err(|e| {
            let e = DecodeError {
                offset: it.value_offset() + e.offset,
                reason: e.reason,
            };
            self.block_error(it.block(), e, "index page")
        })
    }

    /// The newest entry of `user_key` with sequence number `<= seq` in this
    /// file, as `(seq, kind, value)`; `None` when the file has none. Reads
    /// the filter, then `depth` index pages and one data block. The value
    /// is a zero-copy slice of the file when its block is uncompressed.
    pub fn get(&self, user_key: &[u8], seq: SeqNo) -> Result<Option<(SeqNo, ValueKind, Bytes)>> {
        self.get_hashed(user_key, filter_hash(user_key), seq)
    }

    /// [`get`](Self::get) for a key whose [`filter_hash`] is `hash`.
    pub(crate) fn get_hashed(
        &self,
        user_key: &[u8],
        hash: u64,
        seq: SeqNo,
    ) -> Result<Option<(SeqNo, ValueKind, Bytes)>> {
        if !self.may_contain_hash(hash) {
            note_filter(true, false);
            return Ok(None);
        }
        let trailer = pack_trailer(seq.min(MAX_SEQUENCE), ValueKind::FOR_SEEK);
        let r = GET_KEY_BUF.with(|cell| {
            let mut buf = cell.take();
            let r = self.get_inner(user_key, trailer, &mut buf);
            cell.replace(buf);
            r
        });
        if self.filter.is_some() {
            note_filter(false, matches!(r, Ok(None)));
        }
        r
    }

    fn get_inner(
        &self,
        uk: &[u8],
        trailer: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Option<(SeqNo, ValueKind, Bytes)>> {
        let mut block = self.root.clone();
        let mut level = self.footer.index_depth;
        loop {
            let what = if level == 0 {
                "data block"
            } else {
                "index page"
            };
            let mut it = BlockIter::new(block, std::mem::take(buf));
            it.seek_parts(uk, trailer);
            let result = if let Some(e) = it.error() {
                Err(self.block_error(it.block(), e, what))
            } else if !it.valid() {
                Ok(None)
            } else if level > 0 {
                match self.child_handle(&it) {
                    Ok(h) => {
                        let w = if level == 1 {
                            "data block"
                        } else {
                            "index page"
                        };
                        match self.read_block(h, w, Access::Point) {
                            Ok(b) => {
                                *buf = it.into_key_buf();
                                block = b;
                                level -= 1;
                                continue;
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            } else {
                match parse_internal_key(it.key()) {
                    Some(p) if p.user_key == uk => Ok(Some((p.seq, p.kind, it.value_bytes()))),
                    Some(_) => Ok(None),
                    None => Err(Error::corruption(
                        &self.path,
                        it.block().error_offset(&DecodeError {
                            offset: 0,
                            reason: "",
                        }),
                        "data block: invalid internal key",
                    )),
                }
            };
            *buf = it.into_key_buf();
            return result;
        }
    }

    /// A cursor over every entry of the file; keeps the table alive.
    pub fn iter(self: &Arc<Self>) -> TableIterator {
        TableIterator::new(Arc::clone(self))
    }

    /// A cursor for one pass forward over the file, as a compaction reads
    /// its inputs: every ~1 MiB it hands the pages it has passed back to
    /// the OS ([`FileSystem::release_read_pages`]), so reading the file does
    /// not keep all of it resident in this process.
    pub fn iter_releasing(self: &Arc<Self>) -> TableIterator {
        let mut it = TableIterator::new(Arc::clone(self));
        it.release_behind = self.fs.is_some();
        it
    }

    /// Releases the mapped pages of the file below `offset`.
    fn release_below(&self, from: u64, to: u64) {
        let (Some(fs), Ok(from), Ok(to)) = (&self.fs, usize::try_from(from), usize::try_from(to))
        else {
            return;
        };
        if let Some(range) = self.data.whole().and_then(|d| d.get(from..to)) {
            // SAFETY: `data` is what `fs.read_file` returned for this file
            // (`open_cached`), alive as long as `self`.
            unsafe { fs.release_read_pages(range) };
        }
    }

    /// Walks every index page and data block: verifies every checksum and
    /// decoding, that keys are strictly increasing within and across
    /// blocks, the separator invariant (every key of child `i` is `<= s_i`
    /// and `> s_{i-1}`, a page's last separator equals its entry in the
    /// parent), that the filter knows every user key, and that the counts,
    /// sizes, key range and sequence range in the properties match. Returns
    /// the first problem as `Error::Corruption`.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut v = Verifier {
            t: self,
            r: VerifyReport::default(),
            first_key: None,
            last_key: Vec::new(),
            smallest_seq: u64::MAX,
            largest_seq: 0,
        };
        v.r.num_index_pages = 1;
        v.r.index_size = self.footer.index_root.size + BLOCK_TRAILER_LEN as u64;
        v.page(self.root.clone(), self.footer.index_depth, None, None)?;
        let p = &self.props;
        let r = &v.r;
        let checks: [(&str, u64, u64); 10] = [
            ("num_entries", p.num_entries, r.num_entries),
            ("num_deletions", p.num_deletions, r.num_deletions),
            ("num_data_blocks", p.num_data_blocks, r.num_data_blocks),
            ("num_index_pages", p.num_index_pages, r.num_index_pages),
            ("data_size", p.data_size, r.data_size),
            ("index_size", p.index_size, r.index_size),
            ("raw_key_size", p.raw_key_size, r.raw_key_size),
            ("raw_value_size", p.raw_value_size, r.raw_value_size),
            ("smallest_seq", p.smallest_seq, v.smallest_seq),
            ("largest_seq", p.largest_seq, v.largest_seq),
        ];
        let perr =
            |reason: String| Error::corruption(&self.path, self.footer.properties.offset, reason);
        for (name, said, found) in checks {
            if said != found {
                return Err(perr(format!(
                    "properties say {name} = {said}, the blocks hold {found}"
                )));
            }
        }
        if v.first_key.as_deref() != Some(&p.smallest_key[..]) || v.last_key != p.largest_key {
            return Err(perr("properties key range differs from the blocks".into()));
        }
        Ok(v.r)
    }

    /// Read-only description of the file's structure (for inspection
    /// tools): footer, properties, every index level from the root down
    /// with its pages and separators, the filter, and every data block.
    pub fn layout(&self) -> Result<TableLayout> {
        let mut levels = Vec::new();
        let mut data_blocks = Vec::new();
        let mut current = vec![self.footer.index_root];
        let mut level = self.footer.index_depth;
        while level > 0 {
            let mut pages = Vec::with_capacity(current.len());
            let mut children = Vec::new();
            for &h in &current {
                let block = self.read_block(h, "index page", Access::Scan)?;
                let uncompressed_size = block.data().len() as u64;
                let compressed = block.is_compressed();
                let mut it = BlockIter::new(block, Vec::new());
                it.seek_to_first();
                let mut separators = Vec::new();
                while it.valid() {
                    separators.push(it.key().to_vec());
                    children.push(self.child_handle(&it)?);
                    it.next();
                }
                if let Some(e) = it.error() {
                    return Err(self.block_error(it.block(), e, "index page"));
                }
                pages.push(IndexPageLayout {
                    handle: h,
                    uncompressed_size,
                    compression: compression_name(compressed),
                    entries: separators.len(),
                    separators,
                });
            }
            levels.push(IndexLevelLayout { level, pages });
            current = children;
            level -= 1;
        }
        for h in current {
            let block = self.read_block(h, "data block", Access::Scan)?;
            let uncompressed_size = block.data().len() as u64;
            let compressed = block.is_compressed();
            let restarts = block.num_restarts();
            let mut it = BlockIter::new(block, Vec::new());
            it.seek_to_first();
            let mut entries = 0;
            while it.valid() {
                entries += 1;
                it.next();
            }
            if let Some(e) = it.error() {
                return Err(self.block_error(it.block(), e, "data block"));
            }
            data_blocks.push(DataBlockLayout {
                handle: h,
                stored_size: h.size + BLOCK_TRAILER_LEN as u64,
                uncompressed_size,
                compression: compression_name(compressed),
                entries,
                restarts,
            });
        }
        let filter = self.filter.as_ref().map(|f| FilterLayout {
            handle: self.footer.filter,
            num_bytes: f.num_bytes(),
            num_probes: f.num_probes(),
            bits_per_key: self.props.bloom_bits_per_key,
            cache_local: f.format() == FilterFormat::CacheLocal,
        });
        Ok(TableLayout {
            file_size: self.file_size(),
            footer: self.footer,
            properties: self.props.clone(),
            index_levels: levels,
            filter,
            data_blocks,
        })
    }
}

impl Table {
    /// Walks the index pages only (checksums verified) and returns, in
    /// order, each data block's leaf separator and handle. Does not read
    /// any data block, so a damaged data block does not hide the others.
    pub fn data_block_refs(&self) -> Result<Vec<(Vec<u8>, BlockHandle)>> {
        let mut current = vec![(Vec::new(), self.footer.index_root)];
        let mut level = self.footer.index_depth;
        while level > 0 {
            let mut children = Vec::new();
            for (_, h) in &current {
                let block = self.read_block(*h, "index page", Access::Scan)?;
                let mut it = BlockIter::new(block, Vec::new());
                it.seek_to_first();
                while it.valid() {
                    children.push((it.key().to_vec(), self.child_handle(&it)?));
                    it.next();
                }
                if let Some(e) = it.error() {
                    return Err(self.block_error(it.block(), e, "index page"));
                }
            }
            current = children;
            level -= 1;
        }
        Ok(current)
    }

    /// Reads the data block at `handle` (checksum verified, decompressed)
    /// and decodes every entry: `(uncompressed contents, compressed?,
    /// restart count, entries as (internal key, value))`.
    #[allow(clippy::type_complexity)]
    pub fn read_data_block(
        &self,
        handle: BlockHandle,
    ) -> Result<(Bytes, bool, usize, Vec<(Vec<u8>, Bytes)>)> {
        let block = read_block(&self.path, &self.data, self.limit, handle, "data block")?;
        let contents = block.data().clone();
        let compressed = block.is_compressed();
        let restarts = block.num_restarts();
        let mut it = BlockIter::new(block, Vec::new());
        it.seek_to_first();
        let mut entries = Vec::new();
        while it.valid() {
            entries.push((it.key().to_vec(), it.value_bytes()));
            it.next();
        }
        if let Some(e) = it.error() {
            return Err(self.block_error(it.block(), e, "data block"));
        }
        Ok((contents, compressed, restarts, entries))
    }
}

fn compression_name(compressed: bool) -> &'static str {
    if compressed {
        "zstd"
    } else {
        "none"
    }
}

/// What [`crate::inspect::SstFile::verify`] walked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries in data blocks.
    pub num_entries: u64,
    /// Tombstones in data blocks.
    pub num_deletions: u64,
    /// Data blocks.
    pub num_data_blocks: u64,
    /// Index pages, root included.
    pub num_index_pages: u64,
    /// Stored bytes of data blocks with trailers.
    pub data_size: u64,
    /// Stored bytes of index pages with trailers.
    pub index_size: u64,
    /// Sum of internal key lengths.
    pub raw_key_size: u64,
    /// Sum of value lengths.
    pub raw_value_size: u64,
}

/// Structure of an SST file, from [`crate::inspect::SstFile::layout`].
#[derive(Debug, Clone)]
pub struct TableLayout {
    /// File size in bytes.
    pub file_size: u64,
    /// The footer.
    pub footer: Footer,
    /// The properties block.
    pub properties: TableProperties,
    /// Index levels, root level first.
    pub index_levels: Vec<IndexLevelLayout>,
    /// The filter, if any.
    pub filter: Option<FilterLayout>,
    /// Data blocks in key order.
    pub data_blocks: Vec<DataBlockLayout>,
}

/// One level of the index B+Tree.
#[derive(Debug, Clone)]
pub struct IndexLevelLayout {
    /// Level number: the depth for the root, 1 for leaf pages.
    pub level: u32,
    /// Pages in key order.
    pub pages: Vec<IndexPageLayout>,
}

/// One index page.
#[derive(Debug, Clone)]
pub struct IndexPageLayout {
    /// Where it is stored.
    pub handle: BlockHandle,
    /// Size of its uncompressed contents.
    pub uncompressed_size: u64,
    /// `"none"` or `"zstd"`.
    pub compression: &'static str,
    /// Number of entries.
    pub entries: usize,
    /// Its separator keys (encoded internal keys), in order.
    pub separators: Vec<Vec<u8>>,
}

/// The filter block.
#[derive(Debug, Clone)]
pub struct FilterLayout {
    /// Where it is stored.
    pub handle: BlockHandle,
    /// Size of the bit array in bytes.
    pub num_bytes: usize,
    /// Probes per key.
    pub num_probes: u8,
    /// Bits per key the writer was configured with (from the properties).
    pub bits_per_key: u64,
    /// True for the cache-local layout (every probe of a key in one
    /// 64-byte line; format version 2), false for format 1's probes
    /// across the whole array.
    pub cache_local: bool,
}

/// One data block.
#[derive(Debug, Clone)]
pub struct DataBlockLayout {
    /// Where it is stored.
    pub handle: BlockHandle,
    /// Stored bytes including the 5-byte trailer.
    pub stored_size: u64,
    /// Size of the uncompressed contents.
    pub uncompressed_size: u64,
    /// `"none"` or `"zstd"`.
    pub compression: &'static str,
    /// Number of entries.
    pub entries: usize,
    /// Number of restart points.
    pub restarts: usize,
}

struct Verifier<'a> {
    t: &'a Table,
    r: VerifyReport,
    first_key: Option<Vec<u8>>,
    last_key: Vec<u8>,
    smallest_seq: u64,
    largest_seq: u64,
}

impl Verifier<'_> {
    fn err(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::corruption(&self.t.path, offset, reason)
    }

    /// Checks the page `block` at `level` whose keys must lie in
    /// `(lower, upper]`, with its last key equal to `upper` when given.
    fn page(
        &mut self,
        block: Block,
        level: u32,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Result<()> {
        let at = block.error_offset(&DecodeError {
            offset: 0,
            reason: "",
        });
        let mut it = BlockIter::new(block, Vec::new());
        it.seek_to_first();
        let mut prev: Option<Vec<u8>> = lower.map(<[u8]>::to_vec);
        let mut n = 0;
        while it.valid() {
            let sep = it.key().to_vec();
            if let Some(p) = &prev {
                if compare_internal(p, &sep) != Ordering::Less {
                    return Err(self.err(at, "index separators out of order"));
                }
            }
            if let Some(u) = upper {
                if compare_internal(&sep, u) == Ordering::Greater {
                    return Err(self.err(at, "index separator above its parent's separator"));
                }
            }
            let h = self.t.child_handle(&it)?;
            if level > 1 {
                let child = self.t.read_block(h, "index page", Access::Scan)?;
                self.r.num_index_pages += 1;
                self.r.index_size += h.size + BLOCK_TRAILER_LEN as u64;
                self.page(child, level - 1, prev.as_deref(), Some(&sep))?;
            } else {
                let child = self.t.read_block(h, "data block", Access::Scan)?;
                self.r.num_data_blocks += 1;
                self.r.data_size += h.size + BLOCK_TRAILER_LEN as u64;
                self.data_block(child, h, prev.as_deref(), &sep)?;
            }
            prev = Some(sep);
            n += 1;
            it.next();
        }
        if let Some(e) = it.error() {
            return Err(self.t.block_error(it.block(), e, "index page"));
        }
        if n == 0 {
            return Err(self.err(at, "empty index page"));
        }
        if let (Some(u), Some(p)) = (upper, &prev) {
            if u != &p[..] {
                return Err(self.err(at, "page's last separator differs from its parent's entry"));
            }
        }
        Ok(())
    }

    fn data_block(
        &mut self,
        block: Block,
        h: BlockHandle,
        lower: Option<&[u8]>,
        upper: &[u8],
    ) -> Result<()> {
        let mut it = BlockIter::new(block, Vec::new());
        it.seek_to_first();
        let mut n = 0;
        while it.valid() {
            let k = it.key();
            let ordered =
                self.first_key.is_none() || compare_internal(&self.last_key, k) == Ordering::Less;
            if !ordered {
                return Err(self.err(h.offset, "data block keys out of order"));
            }
            if lower.is_some_and(|l| compare_internal(k, l) != Ordering::Greater)
                || compare_internal(k, upper) == Ordering::Greater
            {
                return Err(self.err(h.offset, "data block key outside its index separators"));
            }
            let Some(p) = parse_internal_key(k) else {
                return Err(self.err(h.offset, "invalid internal key"));
            };
            if (self.first_key.is_none() || user_key(&self.last_key) != p.user_key)
                && !self.t.may_contain(p.user_key)
            {
                return Err(self.err(
                    self.t.footer.filter.offset,
                    "filter misses a key of the file",
                ));
            }
            self.r.num_entries += 1;
            if p.kind == ValueKind::Delete {
                self.r.num_deletions += 1;
            }
            self.r.raw_key_size += k.len() as u64;
            self.r.raw_value_size += it.value().len() as u64;
            self.smallest_seq = self.smallest_seq.min(p.seq);
            self.largest_seq = self.largest_seq.max(p.seq);
            if self.first_key.is_none() {
                self.first_key = Some(k.to_vec());
            }
            self.last_key.clear();
            self.last_key.extend_from_slice(k);
            n += 1;
            it.next();
        }
        if let Some(e) = it.error() {
            return Err(self.t.block_error(it.block(), e, "data block"));
        }
        if n == 0 {
            return Err(self.err(h.offset, "empty data block"));
        }
        Ok(())
    }
}

/// Where to stand in a freshly loaded block.
#[derive(Clone, Copy)]
enum Pos<'a> {
    First,
    Last,
    Seek(&'a [u8]),
}

/// A bidirectional cursor over all entries of one table, in internal-key
/// order. Holds a stack of index-page cursors (root first) and one
/// data-block cursor; key and value borrow from the current block (no copy
/// for uncompressed blocks except the reused key buffer).
pub struct TableIterator {
    table: Arc<Table>,
    /// Release pages behind a forward pass ([`Table::iter_releasing`]).
    release_behind: bool,
    /// Pages below this offset were released.
    released_upto: u64,
    /// `pages[0]` is the root; `pages[depth - 1]` a leaf page.
    pages: Vec<BlockIter>,
    data: BlockIter,
    err: Option<Error>,
}

fn empty_block() -> Block {
    static EMPTY: [u8; 8] = [0, 0, 0, 0, 1, 0, 0, 0];
    match Block::new(Bytes::from_static(&EMPTY), 0, false) {
        Ok(b) => b,
        Err(_) => unreachable!("the empty block is well formed"),
    }
}

impl TableIterator {
    fn new(table: Arc<Table>) -> Self {
        let depth = table.footer.index_depth as usize;
        let pages = (0..depth)
            .map(|_| BlockIter::new(empty_block(), take_key_buf()))
            .collect();
        TableIterator {
            table,
            release_behind: false,
            released_upto: 0,
            pages,
            data: BlockIter::new(empty_block(), take_key_buf()),
            err: None,
        }
    }

    fn depth(&self) -> usize {
        self.pages.len()
    }

    fn level_mut(&mut self, l: usize) -> Option<&mut BlockIter> {
        if l == self.pages.len() {
            Some(&mut self.data)
        } else {
            self.pages.get_mut(l)
        }
    }

    fn fail(&mut self, e: Error) {
        self.err = Some(e);
        self.data.reset(empty_block());
    }

    /// Loads the block of level `l` (0: root; `depth`: data) from the
    /// current entry of level `l - 1`.
    fn load(&mut self, l: usize) -> bool {
        let block = if l == 0 {
            Ok(self.table.root.clone())
        } else {
            let depth = self.depth();
            let what = if l == depth {
                "data block"
            } else {
                "index page"
            };
            match self.pages.get(l - 1) {
                Some(parent) => self.table.child_handle(parent).and_then(|h| {
                    if self.release_behind && l == depth {
                        self.release_before(h.offset);
                    }
                    self.table.read_block(h, what, Access::Scan)
                }),
                None => Err(Error::corruption(&self.table.path, 0, "iterator level")),
            }
        };
        match block {
            Ok(b) => {
                if let Some(it) = self.level_mut(l) {
                    it.reset(b);
                }
                true
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// With `release_behind`, releases the file's pages below `offset` once
    /// at least 1 MiB accumulated since the last release.
    fn release_before(&mut self, offset: u64) {
        const STEP: u64 = 1 << 20;
        if offset >= self.released_upto + STEP {
            self.table.release_below(self.released_upto, offset);
            self.released_upto = offset;
        }
    }

    /// Converts a decoding error of level `l` into the iterator's status.
    fn check(&mut self, l: usize) -> bool {
        let depth = self.depth();
        let Some(it) = self.level_mut(l) else {
            return false;
        };
        match it.error() {
            None => true,
            Some(e) => {
                let what = if l == depth {
                    "data block"
                } else {
                    "index page"
                };
                let err = self.table.block_error(
                    if l == depth {
                        self.data.block()
                    } else {
                        match self.pages.get(l) {
                            Some(p) => p.block(),
                            None => self.data.block(),
                        }
                    },
                    e,
                    what,
                );
                self.fail(err);
                false
            }
        }
    }

    /// Positions levels `l..=depth`. With `climb`, level `l` is exhausted
    /// and the walk first steps an ancestor in the direction of travel.
    fn walk(&mut self, mut l: usize, mut pos: Pos<'_>, forward: bool, mut climb: bool) {
        let depth = self.depth();
        loop {
            if climb {
                loop {
                    if l == 0 {
                        self.data.reset(empty_block());
                        return;
                    }
                    l -= 1;
                    let Some(it) = self.level_mut(l) else { return };
                    if forward {
                        it.next()
                    } else {
                        it.prev()
                    }
                    if !self.check(l) {
                        return;
                    }
                    if self.level_mut(l).is_some_and(|it| it.valid()) {
                        break;
                    }
                }
                l += 1;
                pos = if forward { Pos::First } else { Pos::Last };
                climb = false;
            }
            if !self.load(l) {
                return;
            }
            let Some(it) = self.level_mut(l) else { return };
            match pos {
                Pos::First => it.seek_to_first(),
                Pos::Last => it.seek_to_last(),
                Pos::Seek(t) => it.seek(t),
            }
            if !self.check(l) {
                return;
            }
            if self.level_mut(l).is_some_and(|it| it.valid()) {
                if l == depth {
                    return;
                }
                l += 1;
            } else {
                climb = true;
            }
        }
    }
}

impl Drop for TableIterator {
    fn drop(&mut self) {
        give_key_buf(self.data.take_key_buf());
        for p in &mut self.pages {
            give_key_buf(p.take_key_buf());
        }
    }
}

thread_local! {
    /// Key buffers of dropped table cursors, for the next ones: a seek
    /// opens a cursor per file, each with a key buffer per index level and
    /// one for its data block, which would otherwise allocate anew.
    static SPARE_KEY_BUFS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers kept per thread, and the largest one kept.
const SPARE_KEY_BUFS_MAX: usize = 64;
const SPARE_KEY_BUF_BYTES: usize = 4096;

/// A key buffer from this thread's spares, or a new empty one.
fn take_key_buf() -> Vec<u8> {
    SPARE_KEY_BUFS
        .try_with(|c| c.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Keeps `buf` for a later cursor unless it is empty, large, or the
/// thread already keeps enough.
fn give_key_buf(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > SPARE_KEY_BUF_BYTES {
        return;
    }
    buf.clear();
    let _ = SPARE_KEY_BUFS.try_with(|c| {
        let mut spares = c.borrow_mut();
        if spares.len() < SPARE_KEY_BUFS_MAX {
            spares.push(buf);
        }
    });
}

impl InternalIterator for TableIterator {
    fn valid(&self) -> bool {
        self.err.is_none() && self.data.valid()
    }

    fn seek_to_first(&mut self) {
        self.err = None;
        self.walk(0, Pos::First, true, false);
    }

    fn seek_to_last(&mut self) {
        self.err = None;
        self.walk(0, Pos::Last, false, false);
    }

    fn seek(&mut self, target: &[u8]) {
        self.err = None;
        self.walk(0, Pos::Seek(target), true, false);
    }

    fn seek_for_prev(&mut self, target: &[u8]) {
        self.seek(target);
        if self.valid() {
            if compare_internal(self.data.key(), target) == Ordering::Greater {
                self.prev();
            }
        } else if self.err.is_none() {
            self.seek_to_last();
        }
    }

    fn next(&mut self) {
        debug_assert!(self.valid());
        let depth = self.depth();
        self.data.next();
        if self.check(depth) && !self.data.valid() {
            self.walk(depth, Pos::First, true, true);
        }
    }

    fn prev(&mut self) {
        debug_assert!(self.valid());
        let depth = self.depth();
        self.data.prev();
        if self.check(depth) && !self.data.valid() {
            self.walk(depth, Pos::Last, false, true);
        }
    }

    fn key(&self) -> &[u8] {
        self.data.key()
    }

    fn value(&self) -> &[u8] {
        self.data.value()
    }

    fn value_bytes(&self) -> Bytes {
        self.data.value_bytes()
    }

    fn status(&self) -> Result<()> {
        match &self.err {
            None => Ok(()),
            // Of the same kind: a failed read stays `Error::Io`.
            Some(e) => Err(e.clone()),
        }
    }
}
