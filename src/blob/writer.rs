//! [`BlobFileWriter`]: writes one blob file front to back.

use std::path::Path;

use super::format::{
    encode_footer, encode_header, encode_record_header, BlobFooter, BlobRef, FileCompression,
    RecordHeader, HEADER_LEN, RECORD_HEADER_LEN,
};
use crate::coding::checksum;
use crate::error::{Error, Result};
use crate::filename::blob_file_name;
use crate::fs::{FileSystem, WritableFile};
use crate::options::{Compression, MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::sst::block::{maybe_compress, COMPRESSION_NONE};

/// What a finished blob file holds (the manifest records it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobFileInfo {
    /// The file number.
    pub(crate) number: u64,
    /// Bytes of the whole file.
    pub(crate) file_size: u64,
    /// Records in it.
    pub(crate) blob_count: u64,
    /// Sum of the records' sizes.
    pub(crate) blob_bytes: u64,
}

/// Writes blob file `number`: header, one record per [`BlobFileWriter::add`],
/// and at [`BlobFileWriter::finish`] the footer, then a sync. A file that
/// was not finished has no footer and is never added to a version.
pub(crate) struct BlobFileWriter {
    file: Box<dyn WritableFile>,
    number: u64,
    compression: Compression,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    /// Record header and key of the record being added.
    head: Vec<u8>,
    /// Compressed value of the record being added.
    packed: Vec<u8>,
    /// Bytes written so far (the offset of the next record).
    offset: u64,
    footer: BlobFooter,
}

impl BlobFileWriter {
    /// Creates blob file `number` in `dir` and writes its header; values
    /// are compressed with `compression` when that saves at least 1/8.
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        number: u64,
        compression: Compression,
    ) -> Result<BlobFileWriter> {
        let path = blob_file_name(dir, number);
        let mut file = fs.create(&path)?;
        let kind = match compression {
            Compression::None => FileCompression::None,
            Compression::Zstd { .. } => FileCompression::Zstd,
        };
        file.append(&encode_header(kind))?;
        Ok(BlobFileWriter {
            file,
            number,
            compression,
            compressor: None,
            head: Vec::new(),
            packed: Vec::new(),
            offset: HEADER_LEN as u64,
            footer: BlobFooter::default(),
        })
    }

    /// Bytes written so far.
    pub(crate) fn file_size(&self) -> u64 {
        self.offset
    }

    /// Appends a record for `key` and `value`; returns the reference to
    /// store in the SST. Keys and values beyond the engine's limits are
    /// refused (they never reach a blob file through the write path).
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) -> Result<BlobRef> {
        if key.len() > MAX_KEY_SIZE || value.len() > MAX_VALUE_SIZE {
            return Err(Error::Internal(format!(
                "blob record of a {}-byte key and a {}-byte value is beyond the limits",
                key.len(),
                value.len()
            )));
        }
        let compressed = maybe_compress(
            &mut self.compressor,
            self.compression,
            value,
            &mut self.packed,
        ) != COMPRESSION_NONE;
        let stored: &[u8] = if compressed { &self.packed } else { value };
        let h = RecordHeader {
            key_len: key.len() as u32,
            stored_len: stored.len() as u32,
            value_len: value.len() as u32,
            value_checksum: checksum(stored),
        };
        self.head.clear();
        encode_record_header(&mut self.head, key, &h);
        self.head.extend_from_slice(key);
        self.file.append(&self.head)?;
        self.file.append(stored)?;
        let r = BlobRef {
            file_number: self.number,
            offset: self.offset + (RECORD_HEADER_LEN + key.len()) as u64,
            stored_len: h.stored_len,
            value_len: h.value_len,
            value_checksum: h.value_checksum,
        };
        self.offset += h.record_len();
        self.footer.blob_count += 1;
        self.footer.blob_bytes += h.record_len();
        Ok(r)
    }

    /// Hands the records added so far to the OS, so that other handles
    /// read them.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.file.flush()
    }

    /// Hands the records added so far to the OS and asks it to start
    /// writing them back (a hint: see `WritableFile::start_writeback`).
    pub(crate) fn start_writeback(&mut self) -> Result<()> {
        self.file.start_writeback()
    }

    /// Makes the records added so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.file.sync_data()
    }

    /// Writes the footer and syncs the file.
    pub(crate) fn finish(mut self) -> Result<BlobFileInfo> {
        self.file.append(&encode_footer(&self.footer))?;
        self.file.flush()?;
        self.file.sync_data()?;
        let file_size = self.offset + super::format::FOOTER_LEN as u64;
        debug_assert_eq!(file_size, self.file.len());
        Ok(BlobFileInfo {
            number: self.number,
            file_size,
            blob_count: self.footer.blob_count,
            blob_bytes: self.footer.blob_bytes,
        })
    }
}
