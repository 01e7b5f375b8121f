//! Read-only inspection of Lightning DB files, for tools such as
//! `sst-dump` and for operators.
//!
//! Nothing here writes, locks or renames: every function opens files
//! read-only, so it can be used while the database is open in another
//! process. Every decoder is the engine's own, so a file the engine would
//! refuse is refused here too, with the same [`Error::Corruption`] naming
//! the file and offset.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::filename::{parse_file_name, FileKind};
use crate::fs::{lock_shared_or_live, read_prefix, PosixFs};
use crate::iter::InternalIterator;
use crate::key::parse_internal_key;
use crate::log::{LogKind, LogReader};
use crate::sst::Table;

pub use crate::key::ValueKind;
pub use crate::sst::{
    BlockHandle, DataBlockLayout, FilterLayout, Footer, IndexLevelLayout, IndexPageLayout,
    TableLayout, TableProperties, VerifyCheck, VerifyOutcome, VerifyProblem, VerifyReport,
};
pub use crate::version::edit::{FileMetaData, VersionEdit};

/// One entry of an SST file: a version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The user key.
    pub key: Bytes,
    /// Sequence number of this version.
    pub seq: u64,
    /// Value or tombstone.
    pub kind: ValueKind,
    /// The value (empty for tombstones).
    pub value: Bytes,
}

pub use crate::iter::db_iter::prefix_successor;

/// A range tombstone of an SST file: every version below `seq` of every
/// key in `[start, end)` is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeDeletion {
    /// First key deleted (inclusive).
    pub start: Bytes,
    /// End of the range (exclusive).
    pub end: Bytes,
    /// Sequence number of the deletion.
    pub seq: u64,
}

/// An SST file opened read-only.
pub struct SstFile {
    table: Arc<Table>,
}

impl std::fmt::Debug for SstFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstFile")
            .field("path", &self.table.path())
            .finish()
    }
}

impl SstFile {
    /// Opens `path` read-only: checks the footer (magic, checksum, version),
    /// and reads and verifies the properties and filter blocks.
    pub fn open(path: impl AsRef<Path>) -> Result<SstFile> {
        let table = Table::open(&PosixFs, path.as_ref())?;
        Ok(SstFile {
            table: Arc::new(table),
        })
    }

    /// The file's properties block.
    pub fn properties(&self) -> &TableProperties {
        self.table.properties()
    }

    /// The file's range tombstones as stored: one per (fragment, sequence
    /// number), in key order (empty without a range-deletion block).
    pub fn range_deletions(&self) -> Vec<RangeDeletion> {
        self.table
            .range_tombstones()
            .map(|set| {
                set.tombstones()
                    .map(|t| RangeDeletion {
                        start: Bytes::from(t.start),
                        end: Bytes::from(t.end),
                        seq: t.seq,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The decoded footer.
    pub fn footer(&self) -> &Footer {
        self.table.footer()
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.table.file_size()
    }

    /// The whole layout: footer, properties, every index level and page,
    /// the filter and every data block. Reads every index page and data
    /// block header (checksums verified).
    pub fn layout(&self) -> Result<TableLayout> {
        self.table.layout()
    }

    /// Reads every block, verifies every checksum, key order within and
    /// across blocks, the index separators, the filter, and the
    /// properties. Returns the first problem as [`Error::Corruption`].
    pub fn verify(&self) -> Result<VerifyReport> {
        self.table.verify()
    }

    /// The checks of [`SstFile::verify`], going on past each problem: an
    /// unreadable block is skipped, and at most `max_per_check` problems of
    /// each [`VerifyCheck`] are listed. `sst-dump --command=verify` runs
    /// this.
    pub fn verify_all(&self, max_per_check: usize) -> VerifyOutcome {
        self.table.verify_all(max_per_check)
    }

    /// False only when the bloom filter proves `key` is absent.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.table.may_contain(key)
    }

    /// The newest version of `key` with sequence number `<= seq`.
    pub fn get(&self, key: &[u8], seq: u64) -> Result<Option<(u64, ValueKind, Bytes)>> {
        self.table.get(key, seq)
    }

    /// Every entry (all versions, tombstones included) in key order;
    /// `seek` to start elsewhere.
    pub fn entries(&self) -> SstEntries {
        let mut it = self.table.iter();
        it.seek_to_first();
        SstEntries {
            it: Box::new(it),
            path: self.table.path().to_path_buf(),
            done: false,
        }
    }

    /// Entries from the first version of `key` (or the first key after it).
    pub fn entries_from(&self, key: &[u8]) -> SstEntries {
        let mut it = self.table.iter();
        it.seek(&crate::key::encode_internal_key(
            key,
            crate::key::MAX_SEQUENCE,
            ValueKind::FOR_SEEK,
        ));
        SstEntries {
            it: Box::new(it),
            path: self.table.path().to_path_buf(),
            done: false,
        }
    }
}

/// A data block as the index reaches it: see [`SstFile::data_block_refs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlockRef {
    /// The leaf index separator (an internal key) pointing at the block.
    pub separator: Bytes,
    /// Where the block is stored.
    pub handle: BlockHandle,
}

/// One data block, read and decoded: see [`SstFile::data_block`].
#[derive(Debug, Clone)]
pub struct DataBlock {
    /// Where the block is stored.
    pub handle: BlockHandle,
    /// `"none"` or `"zstd"`: how the block is stored.
    pub compression: &'static str,
    /// The uncompressed block contents (entries and restart array).
    pub contents: Bytes,
    /// Number of restart points.
    pub restarts: usize,
    /// The block's entries in order.
    pub entries: Vec<Entry>,
}

/// A blob reference: the value of a [`ValueKind::BlobIndex`] entry
/// (`docs/format.md`, "Blob reference").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobReference {
    /// The blob file (`NNNNNN.blob`).
    pub file_number: u64,
    /// Where the stored value starts in it.
    pub offset: u64,
    /// Bytes of the stored value (compressed when below `value_len`).
    pub stored_len: u32,
    /// Bytes of the value.
    pub value_len: u32,
    /// Checksum of the stored value.
    pub value_checksum: u32,
}

/// Decodes the value of a [`ValueKind::BlobIndex`] entry; `None` when it
/// is not a valid blob reference.
pub fn decode_blob_reference(value: &[u8]) -> Option<BlobReference> {
    let r = crate::blob::BlobRef::decode(value).ok()?;
    Some(BlobReference {
        file_number: r.file_number,
        offset: r.offset,
        stored_len: r.stored_len,
        value_len: r.value_len,
        value_checksum: r.value_checksum,
    })
}

/// Splits an internal key (`user_key ‖ trailer`, see docs/format.md) into
/// `(user_key, seq, kind)`; `None` when it is too short or its kind is
/// unknown. Separators, properties key ranges and manifest key ranges are
/// internal keys.
pub fn split_internal_key(ikey: &[u8]) -> Option<(&[u8], u64, ValueKind)> {
    parse_internal_key(ikey).map(|p| (p.user_key, p.seq, p.kind))
}

/// Encodes an internal key: `user_key` followed by the 8-byte trailer
/// `(seq << 8) | kind`, little-endian (docs/format.md, "Internal keys").
pub fn encode_internal_key(user_key: &[u8], seq: u64, kind: ValueKind) -> Vec<u8> {
    crate::key::encode_internal_key(user_key, seq, kind)
}

/// The order of internal keys in every file: user keys ascending (bytewise),
/// then sequence numbers descending (newest first), then kind descending.
pub fn compare_internal_keys(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    crate::key::compare_internal(a, b)
}

impl SstFile {
    /// Every data block's handle and leaf separator, in order. Reads (and
    /// verifies) only the index pages, so each data block can then be read
    /// on its own with [`SstFile::data_block`] and a damaged one does not
    /// hide the others.
    pub fn data_block_refs(&self) -> Result<Vec<DataBlockRef>> {
        Ok(self
            .table
            .data_block_refs()?
            .into_iter()
            .map(|(sep, handle)| DataBlockRef {
                separator: Bytes::from(sep),
                handle,
            })
            .collect())
    }

    /// Reads the data block at `handle` (from [`SstFile::data_block_refs`]
    /// or [`TableLayout::data_blocks`]): verifies its checksum,
    /// decompresses it and decodes every entry.
    pub fn data_block(&self, handle: BlockHandle) -> Result<DataBlock> {
        let path = self.table.path();
        let (contents, compressed, restarts, raw) = self.table.read_data_block(handle)?;
        let mut entries = Vec::with_capacity(raw.len());
        for (k, value) in raw {
            let Some(p) = parse_internal_key(&k) else {
                return Err(Error::corruption(
                    path,
                    handle.offset,
                    "data block: malformed internal key",
                ));
            };
            entries.push(Entry {
                key: Bytes::copy_from_slice(p.user_key),
                seq: p.seq,
                kind: p.kind,
                value,
            });
        }
        Ok(DataBlock {
            handle,
            compression: if compressed { "zstd" } else { "none" },
            contents,
            restarts,
            entries,
        })
    }
}

/// Iterator over the entries of an [`SstFile`]; an error ends it.
pub struct SstEntries {
    it: Box<dyn InternalIterator>,
    path: std::path::PathBuf,
    done: bool,
}

impl Iterator for SstEntries {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.done {
            return None;
        }
        if !self.it.valid() {
            self.done = true;
            return self.it.status().err().map(Err);
        }
        let Some(p) = parse_internal_key(self.it.key()) else {
            self.done = true;
            return Some(Err(Error::corruption(
                &self.path,
                0,
                "malformed internal key",
            )));
        };
        let e = Entry {
            key: Bytes::copy_from_slice(p.user_key),
            seq: p.seq,
            kind: p.kind,
            value: self.it.value_bytes(),
        };
        self.it.next();
        Some(Ok(e))
    }
}

/// One write batch read from a WAL.
#[derive(Debug, Clone)]
pub struct WalBatch {
    /// File offset of the record.
    pub offset: u64,
    /// Sequence number of the first operation.
    pub sequence: u64,
    /// The operations, in order: `(kind, key, value)`; for a range
    /// deletion the key is the range's start and the value its end.
    pub ops: Vec<(WalOpKind, Bytes, Bytes)>,
    /// The keyspace of each operation, in the same order as
    /// [`ops`](Self::ops) (the same length): 0 is the `default` keyspace,
    /// the only one of a WAL before format version 4.
    pub keyspaces: Vec<u32>,
}

/// What one operation of a WAL batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WalOpKind {
    /// Sets the key to the value.
    Put,
    /// Deletes the key.
    Delete,
    /// Deletes every key in `[key, value)`.
    DeleteRange,
    /// Merges the operand `value` into the key.
    Merge,
    /// Sets the key to a value with a write time (a keyspace with a
    /// TTL): `value` is the user's value followed by the time, 8
    /// little-endian bytes of milliseconds since the Unix epoch.
    PutTimed,
    /// Sets the key to a value the write path put in a blob file at put
    /// time: `value` is the encoded blob reference (docs/format.md, "Blob
    /// files written at put time"; [`decode_blob_reference`] reads it).
    PutBlob,
}

impl WalOpKind {
    /// The operation's name, as `sst-dump` and `ldb` print it.
    pub fn name(self) -> &'static str {
        match self {
            WalOpKind::Put => "put",
            WalOpKind::PutTimed => "put_timed",
            WalOpKind::PutBlob => "put_blob",
            WalOpKind::Delete => "delete",
            WalOpKind::DeleteRange => "delete_range",
            WalOpKind::Merge => "merge",
        }
    }
}

impl From<crate::batch::OpKind> for WalOpKind {
    fn from(k: crate::batch::OpKind) -> Self {
        match k {
            crate::batch::OpKind::Put => WalOpKind::Put,
            crate::batch::OpKind::PutTimed => WalOpKind::PutTimed,
            crate::batch::OpKind::PutBlob => WalOpKind::PutBlob,
            crate::batch::OpKind::Delete => WalOpKind::Delete,
            crate::batch::OpKind::DeleteRange => WalOpKind::DeleteRange,
            crate::batch::OpKind::Merge => WalOpKind::Merge,
        }
    }
}

/// The contents of a WAL file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WalContents {
    /// File number from the header.
    pub file_number: u64,
    /// The batches, in order.
    pub batches: Vec<WalBatch>,
    /// Where a torn last record starts, and why it was dropped.
    pub torn_tail: Option<(u64, &'static str)>,
    /// The database in the WAL's directory was open by a writer: the WAL
    /// was read as it was at that moment, and a torn last record may be a
    /// write in progress rather than the trace of a crash.
    pub live: bool,
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_number(path: &Path, want: fn(FileKind) -> Option<u64>) -> Result<u64> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_file_name)
        .and_then(want)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{}: the file name does not say which WAL or manifest this is (expected NNNNNN.log or MANIFEST-NNNNNN)",
                path.display()
            ))
        })
}

/// One record of a blob file ([`read_blob_file`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobRecord {
    /// Where the record starts.
    pub offset: u64,
    /// The user key it was written for.
    pub key: Bytes,
    /// Where its stored value starts (a reference's `offset`).
    pub value_offset: u64,
    /// Bytes of the stored value (compressed when below `value_len`).
    pub stored_len: u32,
    /// Bytes of the value.
    pub value_len: u32,
}

/// A blob file read front to back ([`read_blob_file`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BlobFileContents {
    /// The number in its name (`NNNNNN.blob`).
    pub file_number: u64,
    /// Bytes of the file.
    pub file_size: u64,
    /// Records the footer counts (of an unfinished file: the whole, sound
    /// records read).
    pub blob_count: u64,
    /// Bytes of records the footer counts (of an unfinished file: of the
    /// whole, sound records read).
    pub blob_bytes: u64,
    /// The records read, in file order (up to the damage, if any).
    pub records: Vec<BlobRecord>,
    /// The first damage met walking the records (`Corruption` with the
    /// offset), or `None` when every record and checksum is sound.
    pub problem: Option<Error>,
    /// The file ends in a footer. An unfinished file is one the write
    /// path is still appending to (values are written at put time; the
    /// flush of their memtable finishes the file), or one a crash left
    /// behind, which the manifest never names: recovery reads its values
    /// back through the WAL records that name them, then deletes it.
    pub finished: bool,
    /// Of an unfinished file: why the records read stop before the file's
    /// end (a record cut short or not sound, as a write in progress or a
    /// crash leaves), with the offset. Not damage: no finished file and no
    /// synced write depends on those bytes.
    pub torn_tail: Option<Error>,
}

/// Reads a blob file (`NNNNNN.blob`, key-value separation): checks its
/// header and footer (an error when they are damaged), then walks every
/// record, checking its header, key and value checksums and decompressing
/// compressed values. A file without a footer is read as unfinished
/// ([`BlobFileContents::finished`]): its records up to the first that is
/// not whole and sound. Finished blob files are immutable and unfinished
/// ones are only appended to: this is safe on a database that is open.
pub fn read_blob_file(path: impl AsRef<Path>) -> Result<BlobFileContents> {
    let path = path.as_ref();
    let number = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_file_name)
        .and_then(|k| match k {
            FileKind::Blob(n) => Some(n),
            _ => None,
        })
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{}: the file name does not say which blob file this is (expected NNNNNN.blob)",
                path.display()
            ))
        })?;
    let dir = parent_dir(path);
    let mut records = Vec::new();
    let mut record = |key: &[u8], rec: &crate::blob::reader::WalkedRecord| {
        records.push(BlobRecord {
            offset: rec.offset,
            key: Bytes::copy_from_slice(key),
            value_offset: rec.blob.offset,
            stored_len: rec.blob.stored_len,
            value_len: rec.blob.value_len,
        });
        Ok(())
    };
    if !crate::blob::is_finished(&PosixFs, dir, number)? {
        let walked = crate::blob::walk_unfinished(&PosixFs, dir, number, true, &mut record)?;
        return Ok(BlobFileContents {
            file_number: number,
            file_size: walked.size,
            blob_count: walked.count,
            blob_bytes: walked
                .end
                .saturating_sub(crate::blob::format::HEADER_LEN as u64),
            records,
            problem: None,
            finished: false,
            torn_tail: walked.tail,
        });
    }
    let file = crate::blob::BlobFile::open(&PosixFs, dir, number)?;
    let problem = file.walk(true, &mut record).err();
    let footer = file.footer();
    Ok(BlobFileContents {
        file_number: number,
        file_size: file.size(),
        blob_count: footer.blob_count,
        blob_bytes: footer.blob_bytes,
        records,
        problem,
        finished: true,
        torn_tail: None,
    })
}

/// Decodes a WAL file (`NNNNNN.log`): every batch, as recovery would read
/// it. Damage in the middle of the log is an error; a torn last record is
/// reported in [`WalContents::torn_tail`].
///
/// Safe on a database that is open: the file is read with positional
/// reads (a live WAL is shortened when it is rotated; nothing is mapped).
/// While it reads, it holds a shared lock on the directory's `LOCK`, so no
/// writer opens the database meanwhile; when a writer has it open already,
/// the result says so ([`WalContents::live`]).
pub fn read_wal(path: impl AsRef<Path>) -> Result<WalContents> {
    let path = path.as_ref();
    let number = file_number(path, |k| match k {
        FileKind::Log(n) => Some(n),
        _ => None,
    })?;
    let (_lock, live) = lock_shared_or_live(&PosixFs, parent_dir(path))?;
    let (batches, torn_tail) = crate::log::reread_live_wal(live, || {
        let data = read_prefix(&PosixFs, path, None)?;
        let mut reader = LogReader::new(path.to_path_buf(), data, LogKind::Wal, number)?;
        let mut batches = Vec::new();
        while let Some(rec) = reader.next_record()? {
            let b = WriteBatch::from_wal_record(&rec.payload, reader.version())
                .map_err(|e| e.into_error(path, rec.offset))?;
            let (ops, keyspaces) = b
                .iter()
                .map(|op| {
                    let kind = WalOpKind::from(op.kind);
                    let key = Bytes::copy_from_slice(op.key);
                    ((kind, key, Bytes::copy_from_slice(op.value)), op.keyspace)
                })
                .unzip();
            batches.push(WalBatch {
                offset: rec.offset,
                sequence: b.sequence(),
                ops,
                keyspaces,
            });
        }
        Ok((batches, reader.torn_tail().map(|t| (t.offset, t.reason))))
    })?;
    Ok(WalContents {
        file_number: number,
        batches,
        torn_tail,
        live,
    })
}

/// Decodes a manifest file (`MANIFEST-NNNNNN`): every version edit with
/// its file offset, in order. Safe on a database that is open (positional
/// reads; a record being appended is left out as a torn tail).
pub fn read_manifest(path: impl AsRef<Path>) -> Result<Vec<(u64, VersionEdit)>> {
    let path = path.as_ref();
    let number = file_number(path, |k| match k {
        FileKind::Manifest(n) => Some(n),
        _ => None,
    })?;
    let data = read_prefix(&PosixFs, path, None)?;
    let mut reader = LogReader::new(path.to_path_buf(), data, LogKind::Manifest, number)?;
    let mut edits = Vec::new();
    while let Some(rec) = reader.next_record()? {
        let e = VersionEdit::decode_versioned(&rec.payload, reader.version())
            .map_err(|e| e.into_error(path, rec.offset))?;
        edits.push((rec.offset, e));
    }
    Ok(edits)
}

/// The manifest number `CURRENT` in `dir` names.
pub fn read_current(dir: impl AsRef<Path>) -> Result<u64> {
    crate::version::current::read_current(&PosixFs, dir.as_ref())
}

/// Reads an `OPTIONS-NNNNNN` file (or any Lightning DB TOML config): the
/// options a database was opened with. The file is plain TOML (see
/// [`crate::Options::from_toml_str`]); errors name the path, the line and
/// the key.
pub fn read_options_file(path: impl AsRef<Path>) -> Result<crate::Options> {
    let path = path.as_ref();
    let data = read_prefix(&PosixFs, path, None)?;
    let text = std::str::from_utf8(&data).map_err(|e| {
        Error::InvalidArgument(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.valid_up_to()
        ))
    })?;
    crate::options_file::parse(text, &path.display().to_string())
}
