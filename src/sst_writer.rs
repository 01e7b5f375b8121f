//! [`SstWriter`] (RocksDB's `SstFileWriter`): sorted data written straight
//! into an SST file of this engine's format, outside any database, for
//! [`crate::Db::ingest`].

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{escape_key, Error, Result};
use crate::key::{append_internal_key, compare_user_keys, ValueKind};
use crate::options::{Options, MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::sst::TableBuilder;

/// What [`SstWriter::finish`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExternalSstInfo {
    /// The file.
    pub path: PathBuf,
    /// Its smallest user key.
    pub smallest_key: Bytes,
    /// Its largest user key.
    pub largest_key: Bytes,
    /// Entries (puts and deletes).
    pub num_entries: u64,
    /// Bytes of the file.
    pub file_size: u64,
}

/// Writes a sorted run of puts and deletes into a new SST file, to be
/// loaded into a database with [`crate::Db::ingest`] (bulk loading:
/// RocksDB's `SstFileWriter` + `IngestExternalFile`). Keys must come in
/// strictly increasing order; the file's format settings (block size,
/// compression, bloom filter, prefix extractor) come from `options`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use lightning_db::{Db, IngestOptions, Options, SstWriter};
///
/// let path = dir.path().join("load-1.sst");
/// let mut w = SstWriter::create(&path, &Options::default())?;
/// for i in 0..1000u32 {
///     w.put(format!("key{i:05}"), "value")?;
/// }
/// w.finish()?;
/// let db = Db::open(dir.path().join("db"), Options::default())?;
/// db.ingest(&[&path], &IngestOptions::default())?;
/// assert_eq!(db.get("key00042")?.as_deref(), Some(&b"value"[..]));
/// # Ok::<(), lightning_db::Error>(())
/// ```
pub struct SstWriter {
    builder: TableBuilder,
    path: PathBuf,
    first: Option<Bytes>,
    last: Vec<u8>,
    entries: u64,
    key_buf: Vec<u8>,
}

impl std::fmt::Debug for SstWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstWriter")
            .field("path", &self.path)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl SstWriter {
    /// Creates the file `path` (replacing one that exists) on
    /// `options.fs`, for a table of the format `options` says.
    pub fn create(path: impl AsRef<Path>, options: &Options) -> Result<SstWriter> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let file = options.fs.create(&path)?;
        // Ingested files usually land on the last level: its settings.
        let level = options.compaction.num_levels.saturating_sub(1);
        Ok(SstWriter {
            builder: TableBuilder::for_tree(file, path.clone(), options, level),
            path,
            first: None,
            last: Vec::new(),
            entries: 0,
            key_buf: Vec::new(),
        })
    }

    /// Adds "`key` = `value`". `key` must be greater than every key added
    /// before; keys and values have the database's limits.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), ValueKind::Value, value.as_ref())
    }

    /// Adds "delete `key`": ingested, it deletes the key's older values.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), ValueKind::Delete, &[])
    }

    fn add(&mut self, key: &[u8], kind: ValueKind, value: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_SIZE {
            return Err(Error::InvalidArgument(format!(
                "SstWriter: key of {} bytes; keys are at most MAX_KEY_SIZE = {MAX_KEY_SIZE}",
                key.len()
            )));
        }
        if value.len() > MAX_VALUE_SIZE {
            return Err(Error::InvalidArgument(format!(
                "SstWriter: value of {} bytes for key {}; values are at most MAX_VALUE_SIZE = {MAX_VALUE_SIZE}",
                value.len(),
                escape_key(key)
            )));
        }
        if self.first.is_some() && compare_user_keys(key, &self.last).is_le() {
            return Err(Error::InvalidArgument(format!(
                "SstWriter: key {} does not come after the previous key {}: keys must be added in \
                 strictly increasing order",
                escape_key(key),
                escape_key(&self.last)
            )));
        }
        // Sequence number 0: ingestion gives the file its place in the
        // history (`Db::ingest`).
        self.key_buf.clear();
        append_internal_key(&mut self.key_buf, key, 0, kind);
        // Checked above: strictly increasing user keys, one sequence number.
        self.builder.add_ordered(&self.key_buf, value)?;
        if self.first.is_none() {
            self.first = Some(Bytes::copy_from_slice(key));
        }
        self.last.clear();
        self.last.extend_from_slice(key);
        self.entries += 1;
        Ok(())
    }

    /// Writes the file's index, filter and footer and syncs it. A writer
    /// with no entry fails (`InvalidArgument`: an empty SST is never
    /// written).
    pub fn finish(self) -> Result<ExternalSstInfo> {
        let Some(first) = self.first else {
            return Err(Error::InvalidArgument(format!(
                "SstWriter: {} holds no entry",
                self.path.display()
            )));
        };
        let (_, file_size) = self.builder.finish()?;
        Ok(ExternalSstInfo {
            path: self.path,
            smallest_key: first,
            largest_key: Bytes::from(self.last),
            num_entries: self.entries,
            file_size,
        })
    }
}
