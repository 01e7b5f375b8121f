//! The block format shared by data blocks and index pages, and the stored
//! form of every block (contents ‖ compression type ‖ checksum).
//!
//! Uncompressed contents: `entry* ‖ restart: u32 × n ‖ n: u32`. Each entry
//! is `shared: varint32, non_shared: varint32, value_len: varint32,
//! key_delta, value`. Every key is an encoded internal key.
//!
//! Invariants a [`Block`] guarantees once constructed: at least one restart,
//! the first restart at offset 0, restart offsets strictly increasing and
//! inside the entry area. A [`BlockIter`] checks every entry as it decodes
//! it (lengths inside the entry area, `shared` not longer than the previous
//! key, `shared == 0` at restart points, keys at least a trailer long with a
//! known kind, every restart point it passes, up to the end of the
//! entries, at an entry start) and stops with a [`DecodeError`] instead of
//! returning bad data. Key order is checked by `Table::verify`, not on
//! every read (the checksum already vouches for the bytes).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::coding::{
    checksum, checksum_matches, checksum_parts, put_u32, put_varint32, Cursor, DecodeError,
};
use crate::error::{Error, Result};
use crate::key::{compare_internal, compare_with_parts, split_internal_key, user_key, TRAILER_LEN};
use crate::options::Compression;

use super::handle::{BlockHandle, BLOCK_TRAILER_LEN};
use super::page_summary::PageSummary;
use super::table_data::TableData;

/// Compression type byte of a stored block: none.
pub(crate) const COMPRESSION_NONE: u8 = 0;
/// Compression type byte of a stored block: one zstd frame.
pub(crate) const COMPRESSION_ZSTD: u8 = 1;
/// Largest decompressed block a reader accepts: the largest block the
/// builder can write. A block holds entries up to `block_size` (at most
/// 64 MiB), or one entry alone, at most a key of `MAX_KEY_SIZE` with its
/// 8-byte trailer, a value of `MAX_VALUE_SIZE`, three varint32 lengths (15
/// bytes) and a one-point restart array (8 bytes); 64 bytes of slack cover
/// those. (It was 256 MiB + 64 KiB, less than that entry: the largest key
/// with the largest value read back as corruption when compressed.)
pub(crate) const MAX_DECOMPRESSED_LEN: u64 =
    (crate::options::MAX_VALUE_SIZE + crate::options::MAX_KEY_SIZE + 64) as u64;

/// Builds the uncompressed contents of one block.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    counter: usize,
    last_key: Vec<u8>,
    num_entries: usize,
}

impl BlockBuilder {
    /// An empty builder making a restart point every `restart_interval`
    /// entries (at least 1).
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            counter: 0,
            last_key: Vec::new(),
            num_entries: 0,
        }
    }

    /// Clears the builder for the next block, keeping its buffers.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.last_key.clear();
        self.num_entries = 0;
    }

    /// True when no entry was added since the last reset.
    pub fn is_empty(&self) -> bool {
        self.num_entries == 0
    }

    /// Entries added since the last reset.
    pub fn num_entries(&self) -> usize {
        self.num_entries
    }

    /// The last key added.
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Size of the contents if the block were finished now.
    pub fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// Upper bound of the bytes `add(key, value)` would append.
    pub fn entry_size_estimate(key_len: usize, value_len: usize) -> usize {
        15 + key_len + value_len + 4
    }

    /// Appends an entry; `key` must sort after every key added before (the
    /// caller checks). Key and value lengths must fit in `u32`.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut shared = 0;
        if self.counter < self.restart_interval {
            shared = crate::key::common_prefix_len(&self.last_key, key);
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
        }
        let non_shared = key.get(shared..).unwrap_or_default();
        self.buf.reserve(15 + non_shared.len() + value.len());
        put_varint32(&mut self.buf, shared as u32);
        put_varint32(&mut self.buf, non_shared.len() as u32);
        put_varint32(&mut self.buf, value.len() as u32);
        self.buf.extend_from_slice(non_shared);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(non_shared);
        self.counter += 1;
        self.num_entries += 1;
    }

    /// Appends the restart array and returns the finished contents. Call
    /// [`reset`](Self::reset) before adding again.
    pub fn finish(&mut self) -> &[u8] {
        for &r in &self.restarts {
            put_u32(&mut self.buf, r);
        }
        put_u32(&mut self.buf, self.restarts.len() as u32);
        &self.buf
    }
}

/// The trailer (compression type, checksum) of stored block contents.
pub(crate) fn block_trailer(contents: &[u8], ctype: u8) -> [u8; BLOCK_TRAILER_LEN] {
    let sum = checksum_parts(&[contents, &[ctype]]);
    let s = sum.to_le_bytes();
    [ctype, s[0], s[1], s[2], s[3]]
}

/// Compresses `raw` according to `compression` into `out` when that saves at
/// least 1/8 of its size; returns the compression type byte to store (and
/// `out` holds the stored contents only when it is not `COMPRESSION_NONE`).
pub(crate) fn maybe_compress(
    compressor: &mut Option<zstd::bulk::Compressor<'static>>,
    compression: Compression,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> u8 {
    let Compression::Zstd { level } = compression else {
        return COMPRESSION_NONE;
    };
    if raw.len() < 64 {
        return COMPRESSION_NONE;
    }
    if compressor.is_none() {
        *compressor = zstd::bulk::Compressor::new(level).ok();
    }
    let Some(c) = compressor.as_mut() else {
        return COMPRESSION_NONE;
    };
    out.clear();
    let limit = raw.len() - raw.len() / 8;
    out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
    match c.compress_to_buffer(raw, out) {
        Ok(n) if n <= limit => COMPRESSION_ZSTD,
        _ => COMPRESSION_NONE,
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses one zstd frame, refusing frames without a content size or
/// larger than [`MAX_DECOMPRESSED_LEN`] before allocating.
pub(crate) fn decompress_zstd(contents: &[u8]) -> std::result::Result<Vec<u8>, &'static str> {
    let size = match zstd::zstd_safe::get_frame_content_size(contents) {
        Ok(Some(n)) => n,
        Ok(None) => return Err("zstd frame without content size"),
        Err(_) => return Err("invalid zstd frame header"),
    };
    if size > MAX_DECOMPRESSED_LEN {
        return Err("zstd block decompresses beyond the largest block (256 MiB + 64 KiB + 64 B)");
    }
    let mut out = Vec::with_capacity(size as usize);
    let n = DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = zstd::bulk::Decompressor::new().ok();
        }
        match d.as_mut() {
            Some(d) => d.decompress_to_buffer(contents, &mut out).ok(),
            None => None,
        }
    });
    match n {
        Some(n) if n as u64 == size && out.len() == n => Ok(out),
        Some(_) => Err("zstd block size differs from its frame header"),
        None => Err("zstd block does not decompress"),
    }
}

/// Locates the stored block `handle` in `file` (whose blocks must all end
/// at or before `limit`), verifies its checksum and returns its stored
/// contents and compression type byte.
pub(crate) fn read_raw_block(
    path: &Path,
    file: &TableData,
    limit: u64,
    handle: BlockHandle,
    what: &str,
) -> Result<(Bytes, u8)> {
    let end = handle
        .end_with_trailer()
        .filter(|&e| e <= limit && e <= file.len())
        .ok_or_else(|| {
            Error::corruption(
                path,
                handle.offset,
                format!(
                    "{what} handle (offset {}, size {}) runs past the end of the block area ({limit})",
                    handle.offset, handle.size
                ),
            )
        })?;
    // Contents, then the trailer: the type byte and the checksum.
    let raw = file.read(path, handle.offset, end - handle.offset, what)?;
    let ctype = verify_stored_block(path, &raw, handle, what)?;
    Ok((raw.slice(..handle.size as usize), ctype))
}

/// Checks the checksum of `raw`, the stored block `handle` followed by its
/// trailer (`handle.size + BLOCK_TRAILER_LEN` bytes), and returns its
/// compression type byte.
pub(crate) fn verify_stored_block(
    path: &Path,
    raw: &[u8],
    handle: BlockHandle,
    what: &str,
) -> Result<u8> {
    let cend = handle.size as usize;
    let trailer = raw.get(cend..).unwrap_or_default();
    let mut c = Cursor::new(trailer);
    let (ctype, stored) = match (c.u8("trailer"), c.u32("trailer")) {
        (Ok(t), Ok(s)) => (t, s),
        _ => {
            return Err(Error::corruption(
                path,
                handle.offset + handle.size,
                "short block trailer",
            ))
        }
    };
    // Contents and type byte are adjacent in the file: hash them in one
    // pass (the one-shot hash is much faster than the streaming one).
    let covered = raw.get(..cend + 1).unwrap_or_default();
    // A read with `verify_checksums` off skips the hash (`ReadOptions`);
    // such blocks are never cached.
    let unverified = crate::read_options::flags() & crate::read_options::NO_VERIFY != 0;
    if !unverified && !checksum_matches(checksum(covered), stored) {
        return Err(Error::corruption(
            path,
            handle.offset,
            format!("{what} checksum mismatch"),
        ));
    }
    Ok(ctype)
}

pub(crate) fn read_block(
    path: &Path,
    file: &TableData,
    limit: u64,
    handle: BlockHandle,
    what: &str,
) -> Result<Block> {
    let (contents, ctype) = read_raw_block(path, file, limit, handle, what)?;
    let (data, compressed) = match ctype {
        COMPRESSION_NONE => (contents, false),
        COMPRESSION_ZSTD => match decompress_zstd(&contents) {
            Ok(v) => (Bytes::from(v), true),
            Err(reason) => return Err(Error::corruption(path, handle.offset, reason)),
        },
        _ => {
            return Err(Error::corruption(
                path,
                handle.offset + handle.size,
                format!("{what} has unknown compression type {ctype}"),
            ))
        }
    };
    Block::new(data, handle.offset, compressed).map_err(|e| {
        let off = if compressed {
            handle.offset
        } else {
            handle.offset + e.offset as u64
        };
        Error::corruption(path, off, format!("{what}: {}", e.reason))
    })
}

/// Uncompressed block contents with a validated restart array.
///
/// Generic over how the bytes are held: `Bytes` (the default: a block that
/// owns a share of its buffer, for caches and iterators that outlive the
/// call) or a borrowed `&[u8]` ([`BlockView`], for a point lookup that
/// reads a block of a table it already holds: no reference count is
/// touched, so concurrent lookups write no shared cache line).
#[derive(Debug, Clone)]
pub(crate) struct Block<D = Bytes, S = Arc<PageSummary>> {
    data: D,
    restarts_off: usize,
    num_restarts: usize,
    base: u64,
    compressed: bool,
    /// Set on pinned index pages ([`Block::with_summary`]): seeks search
    /// it instead of the restart array.
    summary: Option<S>,
}

/// A borrowed [`Block`]: see there.
pub(crate) type BlockView<'a> = Block<&'a [u8], &'a PageSummary>;

impl<'a> BlockView<'a> {
    /// Validates the restart array of the borrowed `data` (see
    /// [`Block::new`]).
    pub fn new_view(data: &'a [u8], base: u64, compressed: bool) -> Result<Self, DecodeError> {
        Self::parse(data, base, compressed)
    }
}

/// Checks the restart array at the end of `data`; returns its offset and
/// the number of restart points.
fn validate_restarts(data: &[u8]) -> Result<(usize, usize), DecodeError> {
    let len = data.len();
    let err = |offset, reason| DecodeError { offset, reason };
    if len < 4 {
        return Err(err(0, "block shorter than its restart count"));
    }
    let mut c = Cursor::new(data.get(len - 4..).unwrap_or_default());
    let n = c.u32("restart count")? as usize;
    if n == 0 {
        return Err(err(len - 4, "block has no restart point"));
    }
    let arr = n
        .checked_mul(4)
        .filter(|&a| a <= len - 4)
        .ok_or_else(|| err(len - 4, "restart array larger than the block"))?;
    let restarts_off = len - 4 - arr;
    let mut c = Cursor::new(data.get(restarts_off..len - 4).unwrap_or_default());
    let mut prev = 0usize;
    for i in 0..n {
        let r = c.u32("restart offset")? as usize;
        let at = restarts_off + 4 * i;
        if i == 0 {
            if r != 0 {
                return Err(err(at, "first restart point is not at offset 0"));
            }
        } else if r <= prev || r >= restarts_off {
            return Err(err(at, "restart offsets not increasing inside the entries"));
        }
        prev = r;
    }
    Ok((restarts_off, n))
}

impl Block {
    /// Validates the restart array of `data`. `base` is the block's file
    /// offset and `compressed` says whether `data` was decompressed (then
    /// errors point at the block start, not inside it).
    pub fn new(data: Bytes, base: u64, compressed: bool) -> Result<Block, DecodeError> {
        Self::parse(data, base, compressed)
    }

    /// The block borrowed: a [`BlockView`] over the same bytes and
    /// summary, made without touching a reference count.
    #[inline]
    pub fn view(&self) -> BlockView<'_> {
        Block {
            data: &self.data,
            restarts_off: self.restarts_off,
            num_restarts: self.num_restarts,
            base: self.base,
            compressed: self.compressed,
            summary: self.summary.as_deref(),
        }
    }

    /// The block with a [`PageSummary`] for its seeks, when it is a page
    /// with a restart at every entry (index pages); unchanged otherwise.
    /// For blocks kept for long and searched often: building one decodes
    /// every entry.
    pub fn with_summary(mut self) -> Block {
        // A summary needs a restart point at every entry and every entry
        // decoding; otherwise the page is searched as any block is, which
        // reports the damage.
        let keys: Option<Vec<&[u8]>> = (0..self.num_restarts())
            .map(|i| self.sole_restart_key(i).map(user_key))
            .collect();
        let summary = keys.and_then(|k| PageSummary::build(&k)).map(Arc::new);
        self.summary = summary;
        self
    }

    /// The uncompressed contents.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The same block over a private heap copy of its bytes, so holding it
    /// keeps no page of the file's memory map resident.
    pub fn detached(&self) -> Block {
        Block {
            data: Bytes::copy_from_slice(&self.data),
            ..self.clone()
        }
    }
}

impl<D: AsRef<[u8]>, S: std::ops::Deref<Target = PageSummary>> Block<D, S> {
    /// A block over `data` once its restart array is validated (without a
    /// summary): what [`Block::new`] and [`BlockView::new_view`] build.
    fn parse(data: D, base: u64, compressed: bool) -> Result<Self, DecodeError> {
        let (restarts_off, num_restarts) = validate_restarts(data.as_ref())?;
        Ok(Block {
            data,
            restarts_off,
            num_restarts,
            base,
            compressed,
            summary: None,
        })
    }

    /// The block's bytes.
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.data.as_ref()
    }

    /// The search summary, if [`Block::with_summary`] built one.
    pub fn summary(&self) -> Option<&PageSummary> {
        self.summary.as_deref()
    }

    /// The key of the entry at restart `i` when that entry is the only one
    /// before the next restart (or the restart array) and shares no bytes;
    /// `None` otherwise or if it does not decode.
    pub fn sole_restart_key(&self, i: usize) -> Option<&[u8]> {
        let off = self.restart(i);
        let end = if i + 1 < self.num_restarts {
            self.restart(i + 1)
        } else {
            self.restarts_off
        };
        let (shared, non_shared, value_len, delta) = self.decode_entry(off).ok()?;
        (shared == 0 && delta + non_shared + value_len == end)
            .then(|| self.bytes().get(delta..delta + non_shared))
            .flatten()
    }

    /// The restart array's bytes (offsets of the restart points).
    pub fn restart_array(&self) -> &[u8] {
        self.bytes().get(self.restarts_off..).unwrap_or_default()
    }

    /// Number of restart points.
    pub fn num_restarts(&self) -> usize {
        self.num_restarts
    }

    /// True when the block was stored compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// Offsets of the restart points, in order.
    #[cfg(any(test, feature = "testing"))]
    pub fn restart_offsets(&self) -> Vec<usize> {
        (0..self.num_restarts).map(|i| self.restart(i)).collect()
    }

    /// Absolute file offset to report for a decoding error in this block.
    pub fn error_offset(&self, e: &DecodeError) -> u64 {
        if self.compressed {
            self.base
        } else {
            self.base + e.offset as u64
        }
    }

    #[inline]
    fn restart(&self, i: usize) -> usize {
        let at = self.restarts_off + 4 * i;
        match self
            .bytes()
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        {
            Some(b) => u32::from_le_bytes(b) as usize,
            None => self.restarts_off,
        }
    }

    /// Decodes the entry header at `off`: (shared, non_shared, value_len,
    /// offset of the key delta).
    #[inline]
    fn decode_entry(&self, off: usize) -> Result<(usize, usize, usize, usize), DecodeError> {
        let area = self.bytes().get(..self.restarts_off).unwrap_or_default();
        let hdr = area.get(off..).unwrap_or_default();
        let (shared, non_shared, value_len, hlen) = match hdr {
            [a, b, c, ..] if (a | b | c) < 0x80 => (*a as usize, *b as usize, *c as usize, 3usize),
            _ => {
                let mut c = Cursor::new(hdr);
                let s = c.varint32("bad entry shared length")?;
                let n = c.varint32("bad entry key length")?;
                let v = c.varint32("bad entry value length")?;
                (s as usize, n as usize, v as usize, c.position())
            }
        };
        let delta = off + hlen;
        if (non_shared as u64 + value_len as u64) > (self.restarts_off - delta) as u64 {
            return Err(DecodeError {
                offset: off,
                reason: "entry runs past the entry area",
            });
        }
        Ok((shared, non_shared, value_len, delta))
    }
}

/// A bidirectional cursor over one block.
#[derive(Debug)]
pub(crate) struct BlockIter<D = Bytes, S = Arc<PageSummary>> {
    block: Block<D, S>,
    key: Vec<u8>,
    /// Offset of the current entry (== restarts_off when not valid).
    cur: usize,
    /// Offset just after the current entry.
    next: usize,
    val_start: usize,
    val_end: usize,
    restart_idx: usize,
    valid: bool,
    err: Option<DecodeError>,
}

impl<D: AsRef<[u8]>, S: std::ops::Deref<Target = PageSummary>> BlockIter<D, S> {
    /// A cursor over `block`, reusing `key_buf` as its key buffer.
    pub fn new(block: Block<D, S>, key_buf: Vec<u8>) -> Self {
        let end = block.restarts_off;
        BlockIter {
            block,
            key: key_buf,
            cur: end,
            next: end,
            val_start: 0,
            val_end: 0,
            restart_idx: 0,
            valid: false,
            err: None,
        }
    }

    /// Points the cursor at another block, keeping the key buffer.
    pub fn reset(&mut self, block: Block<D, S>) {
        self.cur = block.restarts_off;
        self.next = block.restarts_off;
        self.block = block;
        self.valid = false;
        self.err = None;
        self.restart_idx = 0;
        self.key.clear();
    }

    /// Gives back the key buffer.
    pub fn into_key_buf(self) -> Vec<u8> {
        self.key
    }

    /// Takes the key buffer out, leaving an empty one (for a cursor about
    /// to be dropped).
    pub fn take_key_buf(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.key)
    }

    /// The block under the cursor.
    pub fn block(&self) -> &Block<D, S> {
        &self.block
    }

    /// True when the cursor stands on an entry.
    #[inline]
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The decoding error that stopped the cursor, if any.
    pub fn error(&self) -> Option<DecodeError> {
        self.err
    }

    /// Current key (valid only when `valid()`).
    #[inline]
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Current value (valid only when `valid()`).
    #[inline]
    pub fn value(&self) -> &[u8] {
        self.block
            .bytes()
            .get(self.val_start..self.val_end)
            .unwrap_or_default()
    }

    /// Offset inside the block of the current entry.
    #[cfg(any(test, feature = "testing"))]
    pub fn entry_offset(&self) -> usize {
        self.cur
    }

    /// Offset of the current value inside the block.
    pub fn value_offset(&self) -> usize {
        self.val_start
    }

    fn fail(&mut self, e: DecodeError) {
        self.err = Some(e);
        self.valid = false;
        self.cur = self.block.restarts_off;
        self.next = self.block.restarts_off;
    }

    /// Leaves the cursor past the last entry, without an error.
    fn invalidate(&mut self) {
        self.valid = false;
        self.cur = self.block.restarts_off;
        self.next = self.block.restarts_off;
    }

    fn seek_to_restart(&mut self, i: usize) {
        self.key.clear();
        self.restart_idx = i;
        self.next = self.block.restart(i);
    }

    /// Decodes the entry at `self.next`; returns false at the end or on error.
    #[inline]
    fn parse_next(&mut self) -> bool {
        let off = self.next;
        // Pass the restart points up to `off`. Entries are decoded in order
        // from a restart point, so each is reached exactly at an entry
        // start, or at the end of the entries (`off == restarts_off`) none
        // is left; one passed inside an entry (the last entry included)
        // would make backward iteration and seeks decode from its middle.
        while self.restart_idx + 1 < self.block.num_restarts
            && self.block.restart(self.restart_idx + 1) <= off
        {
            self.restart_idx += 1;
            if self.block.restart(self.restart_idx) != off {
                self.fail(DecodeError {
                    offset: self.block.restarts_off + 4 * self.restart_idx,
                    reason: "restart point inside an entry",
                });
                return false;
            }
        }
        if off >= self.block.restarts_off {
            self.valid = false;
            self.cur = self.block.restarts_off;
            return false;
        }
        let (shared, non_shared, value_len, delta) = match self.block.decode_entry(off) {
            Ok(x) => x,
            Err(e) => {
                self.fail(e);
                return false;
            }
        };
        let at_restart = self.block.restart(self.restart_idx) == off;
        if shared > self.key.len() || (at_restart && shared != 0) {
            self.fail(DecodeError {
                offset: off,
                reason: "entry shares more key bytes than allowed",
            });
            return false;
        }
        self.key.truncate(shared);
        self.key.extend_from_slice(
            self.block
                .bytes()
                .get(delta..delta + non_shared)
                .unwrap_or_default(),
        );
        if !valid_ikey(&self.key) {
            self.fail(DecodeError {
                offset: off,
                reason: "entry key is not a valid internal key",
            });
            return false;
        }
        self.cur = off;
        self.val_start = delta + non_shared;
        self.val_end = self.val_start + value_len;
        self.next = self.val_end;
        self.valid = true;
        true
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self) {
        self.err = None;
        self.seek_to_restart(0);
        self.parse_next();
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) {
        self.err = None;
        self.seek_to_restart(self.block.num_restarts - 1);
        while self.parse_next() && self.next < self.block.restarts_off {}
    }

    /// Moves to the next entry.
    pub fn next(&mut self) {
        debug_assert!(self.valid);
        self.parse_next();
    }

    /// Moves to the previous entry (invalid before the first).
    pub fn prev(&mut self) {
        debug_assert!(self.valid);
        let original = self.cur;
        while self.block.restart(self.restart_idx) >= original {
            if self.restart_idx == 0 {
                self.valid = false;
                self.cur = self.block.restarts_off;
                self.next = self.block.restarts_off;
                return;
            }
            self.restart_idx -= 1;
        }
        let r = self.restart_idx;
        self.seek_to_restart(r);
        while self.parse_next() && self.next < original {}
    }

    /// Moves to the first entry whose key is `>= target` (internal order).
    pub fn seek(&mut self, target: &[u8]) {
        if self.block.summary.is_some() {
            let (uk, trailer) = split_internal_key(target);
            self.seek_parts(uk, trailer);
        } else {
            self.seek_by(|k| compare_internal(k, target));
        }
    }

    /// [`seek`](Self::seek) to the internal key given as its user key and
    /// packed trailer. Uses the block's [`PageSummary`] when it has one.
    pub fn seek_parts(&mut self, uk: &[u8], trailer: u64) {
        let block = &self.block;
        let found = match block.summary.as_deref() {
            None => return self.seek_by(|k| compare_with_parts(k, uk, trailer)),
            Some(summary) => summary.find(uk, |i| {
                let off = block.restart(i);
                let (_, non_shared, _, delta) = block.decode_entry(off)?;
                let k = block
                    .bytes()
                    .get(delta..delta + non_shared)
                    .unwrap_or_default();
                Ok(compare_with_parts(k, uk, trailer))
            }),
        };
        self.err = None;
        match found {
            Ok(i) if i < self.block.num_restarts => {
                self.seek_to_restart(i);
                self.parse_next();
            }
            Ok(_) => self.invalidate(),
            Err(e) => self.fail(e),
        }
    }

    /// Moves to the first entry for which `cmp(key)` is not `Less`
    /// (`cmp` compares an entry key with the target, monotone over the
    /// block).
    pub fn seek_by<F: FnMut(&[u8]) -> Ordering>(&mut self, mut cmp: F) {
        self.err = None;
        // Binary search for the last restart point whose key is < target.
        let mut left = 0usize;
        let mut right = self.block.num_restarts - 1;
        while left < right {
            let mid = left + (right - left).div_ceil(2);
            let off = self.block.restart(mid);
            let (shared, non_shared, _, delta) = match self.block.decode_entry(off) {
                Ok(x) => x,
                Err(e) => return self.fail(e),
            };
            if shared != 0 {
                return self.fail(DecodeError {
                    offset: off,
                    reason: "restart entry shares key bytes",
                });
            }
            let k = self
                .block
                .bytes()
                .get(delta..delta + non_shared)
                .unwrap_or_default();
            if cmp(k) == Ordering::Less {
                left = mid;
            } else {
                right = mid - 1;
            }
        }
        self.seek_to_restart(left);
        while self.parse_next() {
            if cmp(&self.key) != Ordering::Less {
                return;
            }
        }
    }
}

impl BlockIter {
    /// Current value as a zero-copy slice of the block's bytes.
    #[inline]
    pub fn value_bytes(&self) -> Bytes {
        self.block.data.slice(self.val_start..self.val_end)
    }
}

/// True when `k` can be an internal key: long enough for a trailer, with a
/// known kind byte.
#[inline]
pub(crate) fn valid_ikey(k: &[u8]) -> bool {
    k.len() >= TRAILER_LEN
        && k.get(k.len() - TRAILER_LEN)
            .is_some_and(|&b| crate::key::ValueKind::from_u8(b).is_some())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::key::{encode_internal_key, ValueKind};

    fn ik(i: u32) -> Vec<u8> {
        encode_internal_key(format!("key{i:05}").as_bytes(), 7, ValueKind::Value)
    }

    fn build(n: u32, interval: usize) -> Block {
        let mut b = BlockBuilder::new(interval);
        for i in 0..n {
            b.add(&ik(i), format!("v{i}").as_bytes());
        }
        Block::new(Bytes::copy_from_slice(b.finish()), 0, false).unwrap()
    }

    #[test]
    fn round_trip_both_directions_and_seek() {
        for interval in [1, 2, 16] {
            for n in [1u32, 2, 17, 100] {
                let block = build(n, interval);
                let mut it = BlockIter::new(block, Vec::new());
                it.seek_to_first();
                for i in 0..n {
                    assert!(it.valid());
                    assert_eq!(it.key(), &ik(i)[..]);
                    assert_eq!(it.value(), format!("v{i}").as_bytes());
                    it.next();
                }
                assert!(!it.valid());
                it.seek_to_last();
                for i in (0..n).rev() {
                    assert_eq!(it.key(), &ik(i)[..]);
                    it.prev();
                }
                assert!(!it.valid() && it.error().is_none());
                for i in 0..n {
                    it.seek(&ik(i));
                    assert_eq!(it.key(), &ik(i)[..]);
                    if i > 0 {
                        it.prev();
                        assert_eq!(it.key(), &ik(i - 1)[..]);
                        it.next();
                        assert_eq!(it.key(), &ik(i)[..]);
                    }
                }
                it.seek(&ik(n));
                assert!(!it.valid());
            }
        }
    }

    #[test]
    fn rejects_bad_restart_arrays() {
        assert!(Block::new(Bytes::from_static(&[0, 0]), 0, false).is_err());
        assert!(Block::new(Bytes::from_static(&[0, 0, 0, 0]), 0, false).is_err());
        assert!(Block::new(Bytes::from_static(&[1, 0, 0, 0, 1, 0, 0, 0]), 0, false).is_err());
        assert!(Block::new(Bytes::from_static(&[0, 0, 0, 0, 1, 0, 0, 0]), 0, false).is_ok());
        assert!(Block::new(Bytes::from_static(&[0xff, 0, 0, 0, 1, 0, 0, 0]), 0, false).is_err());
    }

    /// `good` with restart point `i` moved one byte forward (inside the
    /// entry it started), and the offset of that restart's slot.
    fn with_restart_shifted(good: &Block, i: usize) -> (Block, usize) {
        let mut b = good.data().to_vec();
        let at = b.len() - 4 - 4 * good.num_restarts() + 4 * i;
        let r = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        b[at..at + 4].copy_from_slice(&(r + 1).to_le_bytes());
        (Block::new(Bytes::from(b), 0, false).unwrap(), at)
    }

    /// Entries a forward pass from the first yields, and the error that
    /// ended it.
    fn forward_pass(block: Block) -> (usize, Option<DecodeError>) {
        let mut it = BlockIter::new(block, Vec::new());
        it.seek_to_first();
        let mut seen = 0;
        while it.valid() {
            seen += 1;
            it.next();
        }
        (seen, it.error())
    }

    #[test]
    fn restart_point_inside_an_entry_is_refused() {
        // Found by the misaligned-restart table test (src/testing/fuzz_tests.rs):
        // forward iteration used to step over such a restart point, so
        // Table::verify passed a block that backward iteration misreads.
        let (block, r1_at) = with_restart_shifted(&build(8, 2), 1);
        let (seen, e) = forward_pass(block);
        assert_eq!(
            seen, 3,
            "the entries up to the one holding the bad restart point"
        );
        let e = e.expect("misaligned restart point accepted");
        assert_eq!(e.reason, "restart point inside an entry");
        assert_eq!(e.offset, r1_at);
    }

    #[test]
    fn restart_point_inside_the_last_entry_is_refused() {
        // Found by the table fuzz test (src/testing/fuzz_tests.rs, an index page
        // of two entries): a restart point inside the last entry is never
        // passed by a following entry, so forward iteration ended cleanly
        // and Table::verify accepted a page that backward iteration and
        // seeks decode from the middle of an entry.
        let good = build(7, 2);
        assert_eq!(good.num_restarts(), 4, "the last entry starts a restart");
        let (block, last_at) = with_restart_shifted(&good, 3);
        let (seen, e) = forward_pass(block);
        assert_eq!(seen, 7, "every entry decodes before the end is checked");
        let e = e.expect("restart point inside the last entry accepted");
        assert_eq!(e.reason, "restart point inside an entry");
        assert_eq!(e.offset, last_at);
    }

    #[test]
    fn corrupt_entries_never_panic() {
        let good = build(40, 4);
        let bytes = good.data().to_vec();
        for i in 0..bytes.len() {
            for x in [1u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= x;
                let Ok(block) = Block::new(Bytes::from(b), 0, false) else {
                    continue;
                };
                let mut it = BlockIter::new(block, Vec::new());
                it.seek_to_first();
                let mut n = 0;
                while it.valid() && n < 100 {
                    it.next();
                    n += 1;
                }
                it.seek_to_last();
                while it.valid() && n < 200 {
                    it.prev();
                    n += 1;
                }
                it.seek(&ik(20));
            }
        }
    }

    #[test]
    fn compression_round_trip() {
        let mut c = None;
        let raw = vec![b'a'; 10_000];
        let mut out = Vec::new();
        let t = maybe_compress(&mut c, Compression::Zstd { level: 3 }, &raw, &mut out);
        assert_eq!(t, COMPRESSION_ZSTD);
        assert!(out.len() < 1000);
        assert_eq!(decompress_zstd(&out).unwrap(), raw);
        // Incompressible data is stored raw.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let t = maybe_compress(&mut c, Compression::Zstd { level: 3 }, &noise, &mut out);
        assert_eq!(t, COMPRESSION_NONE);
        assert!(decompress_zstd(b"not a frame at all").is_err());
    }
}
