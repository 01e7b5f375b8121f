//! [`Table::layout`] and the block-by-block reads of inspection tools.

use super::*;

impl Table {
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
