//! Building the index B+Tree bottom-up (its separators are chosen by
//! [`crate::key::shortest_separator`]).
//!
//! Level 1 pages map a separator to a data block handle; level `L >= 2`
//! pages map a separator to a page of level `L - 1`. A page is written as
//! soon as it reaches `index_page_size` bytes (and holds at least 2
//! entries); its last separator then becomes its entry in the level above.
//! To guarantee that every page of a level with several pages holds at
//! least 2 entries, each level keeps its newest entry pending until the
//! next one arrives (or `finish`): a page is only closed when an entry is
//! known to follow it, so the last page of a level always gets at least the
//! carried-over entry plus the final one.
//!
//! Separator invariant (see docs/format.md): for entry `i` with separator
//! `s_i` and child `c_i`, every key of `c_i` is `<= s_i` and every key of
//! `c_{i+1}` is `> s_i`.

use crate::error::{Error, Result};

use super::block::BlockBuilder;
use super::block_writer::BlockWriter;
use super::footer::MAX_INDEX_DEPTH;
use super::handle::BlockHandle;

#[derive(Debug)]
struct IndexLevel {
    page: BlockBuilder,
    pending_key: Vec<u8>,
    pending: Option<BlockHandle>,
    pages_written: u64,
}

/// Accumulates index entries and writes index pages as they fill.
#[derive(Debug)]
pub(crate) struct IndexBuilder {
    levels: Vec<IndexLevel>,
    page_size: usize,
    value_buf: Vec<u8>,
    /// Index pages written so far.
    pub num_pages: u64,
    /// Stored bytes (with trailers) of index pages written so far.
    pub index_size: u64,
}

impl IndexBuilder {
    /// A builder closing pages at `page_size` bytes.
    pub fn new(page_size: usize) -> Self {
        IndexBuilder {
            levels: Vec::new(),
            page_size: page_size.max(1),
            value_buf: Vec::with_capacity(BlockHandle::MAX_ENCODED_LEN),
            num_pages: 0,
            index_size: 0,
        }
    }

    /// Bytes buffered in unwritten pages.
    pub fn pending_size(&self) -> usize {
        self.levels
            .iter()
            .map(|l| l.page.size_estimate() + l.pending_key.len())
            .sum()
    }

    /// Adds the leaf entry `separator → data block`.
    pub fn add(
        &mut self,
        w: &mut BlockWriter,
        separator: &[u8],
        handle: BlockHandle,
    ) -> Result<()> {
        self.add_at(w, 0, separator, handle)
    }

    fn add_at(
        &mut self,
        w: &mut BlockWriter,
        level: usize,
        separator: &[u8],
        handle: BlockHandle,
    ) -> Result<()> {
        if level == self.levels.len() {
            if level >= MAX_INDEX_DEPTH as usize {
                return Err(Error::Internal(format!(
                    "index of {} would be deeper than {MAX_INDEX_DEPTH} levels (keys too large for index_page_size)",
                    w.path().display()
                )));
            }
            self.levels.push(IndexLevel {
                page: BlockBuilder::new(1),
                pending_key: Vec::new(),
                pending: None,
                pages_written: 0,
            });
        }
        let page_size = self.page_size;
        let full = {
            let lv = &self.levels[level];
            lv.pending.is_some()
                && lv.page.num_entries() >= 2
                && lv.page.size_estimate() >= page_size
        };
        if full {
            let (h, last) = self.write_page(w, level)?;
            self.add_at(w, level + 1, &last, h)?;
        }
        let lv = &mut self.levels[level];
        if let Some(ph) = lv.pending.take() {
            self.value_buf.clear();
            ph.encode_to(&mut self.value_buf);
            lv.page.add(&lv.pending_key, &self.value_buf);
        }
        lv.pending_key.clear();
        lv.pending_key.extend_from_slice(separator);
        lv.pending = Some(handle);
        Ok(())
    }

    /// Writes the page of `level`, returning its handle and last separator.
    fn write_page(&mut self, w: &mut BlockWriter, level: usize) -> Result<(BlockHandle, Vec<u8>)> {
        let lv = &mut self.levels[level];
        let last = lv.page.last_key().to_vec();
        let h = w.write_block(lv.page.finish(), true)?;
        lv.page.reset();
        lv.pages_written += 1;
        self.num_pages += 1;
        self.index_size += h.size + super::handle::BLOCK_TRAILER_LEN as u64;
        Ok((h, last))
    }

    /// Writes every unwritten page bottom-up; returns the root handle and
    /// the depth. Without any `add` (a table holding only range
    /// tombstones) the root is one empty leaf page: a block of no entry
    /// and its one restart point.
    pub fn finish(&mut self, w: &mut BlockWriter) -> Result<(BlockHandle, u32)> {
        if self.levels.is_empty() {
            let mut page = BlockBuilder::new(1);
            let h = w.write_block(page.finish(), true)?;
            self.num_pages += 1;
            self.index_size += h.size + super::handle::BLOCK_TRAILER_LEN as u64;
            return Ok((h, 1));
        }
        let mut level = 0;
        loop {
            let nlevels = self.levels.len();
            let Some(lv) = self.levels.get_mut(level) else {
                return Err(Error::Internal("finishing an empty index".into()));
            };
            if let Some(ph) = lv.pending.take() {
                self.value_buf.clear();
                ph.encode_to(&mut self.value_buf);
                lv.page.add(&lv.pending_key, &self.value_buf);
            }
            let is_root = level + 1 == nlevels && lv.pages_written == 0;
            let (h, last) = self.write_page(w, level)?;
            if is_root {
                return Ok((h, level as u32 + 1));
            }
            self.add_at(w, level + 1, &last, h)?;
            level += 1;
        }
    }
}
