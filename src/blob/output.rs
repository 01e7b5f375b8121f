//! [`BlobOutput`]: the blob files one flush or compaction writes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::format::BlobRef;
use super::writer::{BlobFileInfo, BlobFileWriter};
use crate::error::Result;
use crate::fs::FileSystem;
use crate::options::{Compression, Options};

/// Writes the separated values of one flush or compaction: a new blob file
/// whenever the current one reached `blob_file_size`, each numbered from
/// the database's file counter. [`BlobOutput::finish`] syncs them; until
/// then (and until a manifest edit lists them) they are not part of the
/// database, and a crash leaves them to be deleted at the next open.
pub(crate) struct BlobOutput<'a> {
    fs: &'a dyn FileSystem,
    dir: PathBuf,
    numbers: &'a AtomicU64,
    min_blob_size: usize,
    blob_file_size: u64,
    compression: Compression,
    current: Option<BlobFileWriter>,
    finished: Vec<BlobFileInfo>,
    /// The encoded reference of the last separated value.
    encoded: Vec<u8>,
}

impl<'a> BlobOutput<'a> {
    /// The blob output of a flush or compaction with `opts`, or `None` when
    /// blob files are off. New files take their numbers from `numbers`.
    pub(crate) fn new(
        fs: &'a dyn FileSystem,
        dir: &Path,
        numbers: &'a AtomicU64,
        opts: &Options,
    ) -> Option<BlobOutput<'a>> {
        opts.enable_blob_files.then(|| BlobOutput {
            fs,
            dir: dir.to_path_buf(),
            numbers,
            min_blob_size: opts.min_blob_size,
            blob_file_size: opts.blob_file_size,
            compression: opts.blob_compression_type,
            current: None,
            finished: Vec::new(),
            encoded: Vec::new(),
        })
    }

    /// Whether a value of `len` bytes goes to a blob file.
    #[inline]
    pub(crate) fn separates(&self, len: usize) -> bool {
        len >= self.min_blob_size
    }

    /// Writes `value` of `key` to the current blob file (starting one when
    /// needed) and returns the encoded reference to store instead.
    pub(crate) fn write(&mut self, key: &[u8], value: &[u8]) -> Result<&[u8]> {
        let r = self.write_ref(key, value)?;
        self.encoded.clear();
        r.encode_into(&mut self.encoded);
        Ok(&self.encoded)
    }

    /// [`BlobOutput::write`], returning the reference itself.
    pub(crate) fn write_ref(&mut self, key: &[u8], value: &[u8]) -> Result<BlobRef> {
        if self
            .current
            .as_ref()
            .is_some_and(|w| w.file_size() >= self.blob_file_size)
        {
            self.close_current()?;
        }
        let w = match &mut self.current {
            Some(w) => w,
            None => {
                let n = self.numbers.fetch_add(1, Ordering::AcqRel);
                self.current.insert(BlobFileWriter::create(
                    self.fs,
                    &self.dir,
                    n,
                    self.compression,
                )?)
            }
        };
        w.add(key, value)
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(w) = self.current.take() {
            self.finished.push(w.finish()?);
        }
        Ok(())
    }

    /// Finishes and syncs every file written; returns what each holds,
    /// for the manifest edit. The caller syncs the directory.
    pub(crate) fn finish(mut self) -> Result<Vec<BlobFileInfo>> {
        self.close_current()?;
        Ok(self.finished)
    }
}
