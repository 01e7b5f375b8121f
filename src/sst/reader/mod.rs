//! Reading an SST file: [`Table`] (open, point lookups, block reads and
//! the caches), with verification in `verify`, layout inspection in
//! `layout` and the cursor, [`TableIterator`], in `iter`.
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

use super::block::{
    read_block, read_raw_block, verify_stored_block, Block, BlockIter, BlockView, COMPRESSION_NONE,
};
use super::filter::{filter_hash, FilterFormat, FilterReader};
use super::footer::Footer;
use super::handle::{BlockHandle, BLOCK_TRAILER_LEN};
use super::page_summary::PageSummary;
use super::properties::TableProperties;
use super::table_data::TableData;
use lightning_compaction::FragmentedTombstones;

mod iter;
mod layout;
mod verify;

pub use iter::TableIterator;
pub use layout::{DataBlockLayout, FilterLayout, IndexLevelLayout, IndexPageLayout, TableLayout};
pub use verify::{VerifyCheck, VerifyOutcome, VerifyProblem, VerifyReport};

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

/// What a block at index `level` of the tree is, for error messages.
fn block_kind(level: u32) -> &'static str {
    if level == 0 {
        "data block"
    } else {
        "index page"
    }
}

/// A block of a point lookup ([`Table::read_block_point`]).
enum PointBlock<'a> {
    /// Borrowed from the table.
    View(BlockView<'a>),
    /// Read from the file or the block cache.
    Owned(Block),
}

/// What one level of a point lookup found ([`Table::probe`]).
enum Probe {
    /// Descend to this block.
    Child(BlockHandle),
    /// The lookup's answer.
    Found(Option<(SeqNo, ValueKind, Bytes)>),
}

/// Where a point lookup's descent ended ([`Table::get_inner`]).
enum Descent {
    /// The lookup's answer.
    Found(Option<(SeqNo, ValueKind, Bytes)>),
    /// The data block it reads next (asked to stop there).
    DataBlock(BlockHandle),
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
    /// The range tombstones of the range-deletion block (format 4), read
    /// and checked at open.
    pub(super) range_dels: Option<Arc<FragmentedTombstones>>,
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
        // What opening reads (footer, properties, filter, root) is kept
        // for the table's life: always verified, whatever read opened it.
        let _verified = crate::read_options::FlagScope::enter(0);
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
        let range_dels = Self::read_range_dels(&path, &data, limit, &footer, &props)?;
        if props.num_entries == 0 && range_dels.is_none() {
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
            range_dels,
        })
    }

    /// Reads and checks the range-deletion block the properties name, if
    /// any (only in format 4 and later).
    fn read_range_dels(
        path: &Path,
        data: &TableData,
        limit: u64,
        footer: &Footer,
        props: &TableProperties,
    ) -> Result<Option<Arc<FragmentedTombstones>>> {
        if props.num_range_deletions == 0 {
            return Ok(None);
        }
        let at = footer.properties.offset;
        if footer.version < 4 {
            return Err(Error::corruption(
                path,
                at,
                format!(
                    "properties name a range-deletion block, which format version {} does not have",
                    footer.version
                ),
            ));
        }
        let h = BlockHandle {
            offset: props.range_deletions_offset,
            size: props.range_deletions_size,
        };
        if h.end_with_trailer().is_none_or(|e| e > limit) {
            return Err(Error::corruption(
                path,
                at,
                format!(
                    "range-deletion block (offset {}, size {}) lies outside the block area (0..{limit})",
                    h.offset, h.size
                ),
            ));
        }
        let (b, ty) = read_raw_block(path, data, limit, h, "range-deletion block")?;
        if ty != COMPRESSION_NONE {
            return Err(Error::corruption(
                path,
                h.offset,
                "range-deletion block is compressed",
            ));
        }
        let set = super::range_del_block::decode(&b).map_err(|e| e.into_error(path, h.offset))?;
        if set.len() as u64 != props.num_range_deletions {
            return Err(Error::corruption(
                path,
                h.offset,
                format!(
                    "range-deletion block holds {} tombstones, properties say {}",
                    set.len(),
                    props.num_range_deletions
                ),
            ));
        }
        Ok(Some(Arc::new(set)))
    }

    /// The file's range tombstones, if it has any.
    pub(crate) fn range_tombstones(&self) -> Option<&Arc<FragmentedTombstones>> {
        self.range_dels.as_ref()
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
        // The pinned index pages are kept too: verified (see `from_data`).
        let _verified = crate::read_options::FlagScope::enter(0);
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

    /// False only when the file certainly holds no key with prefix
    /// `prefix` as extractor `extractor` (by name) cuts it: the file's
    /// filter holds that extractor's prefixes. Always true for a file
    /// written without a filter or with another extractor.
    pub(crate) fn may_hold_prefix(&self, extractor: &str, prefix: &[u8]) -> bool {
        self.props.prefix_extractor != extractor || self.may_contain(prefix)
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
        if let Some(b) = self.pinned_page(handle) {
            return Ok(b.clone());
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
        // A read with `fill_cache` off, or that skipped the checksum,
        // leaves the cache alone (`ReadOptions`).
        if crate::read_options::flags() == 0 {
            tc.cache.insert(
                key,
                CachedBlock(b.clone()),
                b.data().len() + BLOCK_TRAILER_LEN,
                access,
            );
        }
        Ok(b)
    }

    fn block_error<D: AsRef<[u8]>, S: std::ops::Deref<Target = PageSummary>>(
        &self,
        block: &Block<D, S>,
        e: DecodeError,
        what: &str,
    ) -> Error {
        Error::corruption(
            &self.path,
            block.error_offset(&e),
            format!("{what}: {}", e.reason),
        )
    }

    /// The child handle stored as the current value of index cursor `it`.
    fn child_handle<D: AsRef<[u8]>, S: std::ops::Deref<Target = PageSummary>>(
        &self,
        it: &BlockIter<D, S>,
    ) -> Result<BlockHandle> {
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
        self.get_from(user_key, seq, None)
    }

    /// The first half of a point lookup, for a batch whose blocks are not
    /// in memory (`Db::multi_get`): the data block that
    /// [`get`](Self::get) of `user_key` (whose [`filter_hash`] is `hash`)
    /// at `seq` reads, found by the same index descent, and a request to
    /// the OS to read it in ahead ([`FileSystem::will_need`]), so that
    /// the batch's block reads overlap. The caller has probed the filter
    /// ([`may_contain_hash`](Self::may_contain_hash)). `None` when the
    /// root is the data block, or when the key is past the file's last
    /// entry. Counts no filter outcome: the lookup proper
    /// ([`get_in_block`](Self::get_in_block)) does.
    pub(crate) fn locate_data_block(
        &self,
        user_key: &[u8],
        seq: SeqNo,
    ) -> Result<Option<BlockHandle>> {
        if self.footer.index_depth == 0 {
            return Ok(None);
        }
        Ok(match self.descend::<true>(user_key, seq, None)? {
            Descent::DataBlock(h) => {
                self.will_need(h);
                Some(h)
            }
            Descent::Found(_) => None,
        })
    }

    /// The second half of a batched point lookup: exactly
    /// [`get_hashed`](Self::get_hashed)'s answer, given `block`, the data
    /// block [`locate_data_block`](Self::locate_data_block) returned for
    /// the same key and sequence number (the index descent is not
    /// repeated).
    pub(crate) fn get_in_block(
        &self,
        user_key: &[u8],
        seq: SeqNo,
        block: BlockHandle,
    ) -> Result<Option<(SeqNo, ValueKind, Bytes)>> {
        self.get_from(user_key, seq, Some(block))
    }

    /// A point lookup with this thread's key buffer, from the root or
    /// from data block `from`, counting its filter outcome.
    #[inline]
    fn get_from(
        &self,
        user_key: &[u8],
        seq: SeqNo,
        from: Option<BlockHandle>,
    ) -> Result<Option<(SeqNo, ValueKind, Bytes)>> {
        let r = self.descend::<false>(user_key, seq, from).map(|d| match d {
            Descent::Found(r) => r,
            // Only a descent asked to stop at its data block stops there.
            Descent::DataBlock(_) => None,
        });
        if self.filter.is_some() {
            note_filter(false, matches!(r, Ok(None)));
        }
        r
    }

    /// [`get_inner`](Self::get_inner) for `user_key` at `seq` with this
    /// thread's key buffer.
    #[inline]
    fn descend<const STOP_AT_DATA: bool>(
        &self,
        user_key: &[u8],
        seq: SeqNo,
        from: Option<BlockHandle>,
    ) -> Result<Descent> {
        let trailer = pack_trailer(seq.min(MAX_SEQUENCE), ValueKind::FOR_SEEK);
        GET_KEY_BUF.with(|cell| {
            let mut buf = cell.take();
            let r = self.get_inner::<STOP_AT_DATA>(user_key, trailer, &mut buf, from);
            cell.replace(buf);
            r
        })
    }

    /// Asks the OS to read the block at `h` (and its trailer) into memory
    /// in the background, when the table is a map of a file.
    fn will_need(&self, h: BlockHandle) {
        let (Some(fs), Some(whole)) = (&self.fs, self.data.whole()) else {
            return;
        };
        let span = h.end_with_trailer().and_then(|end| {
            let start = usize::try_from(h.offset).ok()?;
            whole.get(start..usize::try_from(end).ok()?)
        });
        if let Some(bytes) = span {
            // SAFETY: `data` is what `fs.read_file` returned for this file
            // (`open_cached`), alive as long as `self`.
            unsafe { fs.will_need(bytes) };
        }
    }

    /// The lookup proper: from the root index page down to a data block.
    /// Every block it can borrow from the table (the root, pinned index
    /// pages, uncompressed blocks of a mapped file) it reads as a
    /// [`BlockView`], touching no reference count: concurrent lookups then
    /// write no shared cache line until the value is returned.
    ///
    /// With `from`, the descent starts at that data block (found by an
    /// earlier descent for the same key and sequence number); with
    /// `STOP_AT_DATA`, it returns the data block it would read instead of
    /// reading it.
    #[inline]
    fn get_inner<const STOP_AT_DATA: bool>(
        &self,
        uk: &[u8],
        trailer: u64,
        buf: &mut Vec<u8>,
        from: Option<BlockHandle>,
    ) -> Result<Descent> {
        let mut level = self.footer.index_depth;
        // A root that is the data block itself (a one-block file) is a
        // private copy: its values are slices of it, not of the map.
        let mut block = match from {
            Some(h) if level > 0 => {
                level = 0;
                self.read_block_point(h, 0)?
            }
            _ if level == 0 => PointBlock::Owned(self.root.clone()),
            _ => PointBlock::View(self.root.view()),
        };
        loop {
            let step = match block {
                PointBlock::View(b) => self.probe(b, uk, trailer, buf, level, |it| {
                    self.value_of_view(it.value())
                }),
                PointBlock::Owned(b) => {
                    self.probe(b, uk, trailer, buf, level, BlockIter::value_bytes)
                }
            }?;
            match step {
                Probe::Child(h) if STOP_AT_DATA && level == 1 => return Ok(Descent::DataBlock(h)),
                Probe::Child(h) => {
                    level -= 1;
                    block = self.read_block_point(h, level)?;
                }
                Probe::Found(r) => return Ok(Descent::Found(r)),
            }
        }
    }

    /// Seeks `block` (at index `level`, 0 for a data block) for the
    /// lookup: the child to descend to, or the lookup's answer, whose
    /// value `value` takes from the cursor.
    fn probe<D: AsRef<[u8]>, S: std::ops::Deref<Target = PageSummary>>(
        &self,
        block: Block<D, S>,
        uk: &[u8],
        trailer: u64,
        buf: &mut Vec<u8>,
        level: u32,
        value: impl FnOnce(&BlockIter<D, S>) -> Bytes,
    ) -> Result<Probe> {
        let what = block_kind(level);
        let mut it = BlockIter::new(block, std::mem::take(buf));
        it.seek_parts(uk, trailer);
        let result = if let Some(e) = it.error() {
            Err(self.block_error(it.block(), e, what))
        } else if !it.valid() {
            Ok(Probe::Found(None))
        } else if level > 0 {
            self.child_handle(&it).map(Probe::Child)
        } else {
            match parse_internal_key(it.key()) {
                Some(p) if p.user_key == uk => Ok(Probe::Found(Some((p.seq, p.kind, value(&it))))),
                Some(_) => Ok(Probe::Found(None)),
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
        result
    }

    /// The pinned index page at `handle`, if it is one, with what a search
    /// of it reads first requested from memory (pinned pages are not
    /// re-verified, so nothing else would touch it ahead): the summary's
    /// packed keys and the restart array (which locates the one entry
    /// decoded), or else every line of the page. Without it each probe
    /// waited for memory in turn (whole page: readrandom at 10M keys
    /// +28 %, at 1M +10 %; the restart array with the summary: 10M
    /// +5-11 %).
    fn pinned_page(&self, handle: BlockHandle) -> Option<&Block> {
        let (size, b) = self.pinned_pages.get(&handle.offset)?;
        if *size != handle.size {
            return None;
        }
        match b.summary() {
            Some(summary) => {
                summary.prefetch();
                crate::prefetch::prefetch_range(b.restart_array());
            }
            None => crate::prefetch::prefetch_range(b.data()),
        }
        Some(b)
    }

    /// Block `handle` (at index `level`) for a point lookup: borrowed from
    /// the table when it can be (root, pinned page, uncompressed block of
    /// a mapped file, its checksum verified as [`read_block`] does), else
    /// read or taken from the cache.
    fn read_block_point(&self, handle: BlockHandle, level: u32) -> Result<PointBlock<'_>> {
        let what = block_kind(level);
        if handle == self.footer.index_root {
            return Ok(PointBlock::View(self.root.view()));
        }
        if let Some(b) = self.pinned_page(handle) {
            return Ok(PointBlock::View(b.view()));
        }
        let span = handle
            .end_with_trailer()
            .filter(|&end| end <= self.limit)
            .and_then(|end| {
                let start = usize::try_from(handle.offset).ok()?;
                self.data.whole()?.get(start..usize::try_from(end).ok()?)
            });
        if let Some(raw) = span {
            let stored_type = raw
                .len()
                .checked_sub(BLOCK_TRAILER_LEN)
                .and_then(|at| raw.get(at));
            if stored_type == Some(&COMPRESSION_NONE) {
                crate::prefetch::prefetch_range(raw);
                verify_stored_block(&self.path, raw, handle, what)?;
                let contents = raw.get(..handle.size as usize).unwrap_or_default();
                return BlockView::new_view(contents, handle.offset, false)
                    .map(PointBlock::View)
                    .map_err(|e| {
                        Error::corruption(
                            &self.path,
                            handle.offset + e.offset as u64,
                            format!("{what}: {}", e.reason),
                        )
                    });
            }
        }
        self.read_block(handle, what, Access::Point)
            .map(PointBlock::Owned)
    }

    /// A value found in a borrowed block, as returned to the caller: a
    /// zero-copy slice of the file's map (one reference count increment,
    /// the lookup's only write to a shared line; `get` allocates nothing).
    /// Copying values out instead measured no faster with two readers of
    /// the same hot keys (readhot, 2 threads: 3.28M ops/s either way), and
    /// allocates. (Values are never in the root page here: a root that
    /// is a data block is searched as an owned block.)
    fn value_of_view(&self, v: &[u8]) -> Bytes {
        if let Some(whole) = self.data.whole() {
            let (base, p) = (whole.as_ptr() as usize, v.as_ptr() as usize);
            if p >= base && p + v.len() <= base + whole.len() {
                return whole.slice(p - base..p - base + v.len());
            }
        }
        Bytes::copy_from_slice(v)
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
}
