//! The framing of an SST file's blocks: each stored block is its contents
//! (compressed when that pays off), a type byte and a checksum
//! (docs/format.md, "Block trailer and handles"), appended at the end of
//! the file.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fs::{WritableFile, WRITEBACK_BYTES};
use crate::options::Compression;

use super::block::{block_trailer, maybe_compress, COMPRESSION_NONE};
use super::handle::{BlockHandle, BLOCK_TRAILER_LEN};

/// Appends stored blocks (contents ‖ type ‖ checksum) to the file and
/// tracks the write offset.
pub(crate) struct BlockWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    offset: u64,
    compression: Compression,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    cbuf: Vec<u8>,
    /// Writeback was last requested up to this offset.
    writeback_at: u64,
}

impl BlockWriter {
    /// A writer appending to `file` (named `path` in errors), whose length
    /// is `offset`, compressing as `compression` says.
    pub fn new(
        file: Box<dyn WritableFile>,
        path: PathBuf,
        offset: u64,
        compression: Compression,
    ) -> Self {
        BlockWriter {
            file,
            path,
            offset,
            compression,
            compressor: None,
            cbuf: Vec::new(),
            writeback_at: offset,
        }
    }

    /// Bytes written so far: the offset of the next block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends `bytes` as they are (the footer), not as a block.
    pub fn append_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.append(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Makes everything written durable; returns the file's size.
    pub fn sync(&mut self) -> Result<u64> {
        self.file.sync_data()?;
        Ok(self.offset)
    }

    /// The file's path (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `raw` as one block, compressed when `compress` and the table's
    /// compression say so and it pays off; returns its handle.
    pub fn write_block(&mut self, raw: &[u8], compress: bool) -> Result<BlockHandle> {
        let ctype = if compress {
            maybe_compress(&mut self.compressor, self.compression, raw, &mut self.cbuf)
        } else {
            COMPRESSION_NONE
        };
        let contents: &[u8] = if ctype == COMPRESSION_NONE {
            raw
        } else {
            &self.cbuf
        };
        let handle = BlockHandle::new(self.offset, contents.len() as u64);
        let trailer = block_trailer(contents, ctype);
        self.file.append(contents)?;
        self.file.append(&trailer)?;
        self.offset += contents.len() as u64 + BLOCK_TRAILER_LEN as u64;
        // Every WRITEBACK_BYTES, the OS starts writing the file back, so
        // the sync that finishes it waits for the last MiB, not the whole
        // file: SstWriter + ingest of 10M pairs spent a quarter of its
        // time in that wait.
        if self.offset - self.writeback_at >= WRITEBACK_BYTES {
            self.file.start_writeback()?;
            self.writeback_at = self.offset;
        }
        Ok(handle)
    }
}
