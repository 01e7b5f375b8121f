//! [`BlobFile`]: reads values by reference, and walks a whole file for
//! `verify` and garbage collection. Every byte read is checked against its
//! checksum; anything that is not provably valid is `Error::Corruption`
//! naming the blob file and the offset.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::format::{
    decode_footer, decode_header, decode_record_header, record_key_len, BlobFooter, BlobRef,
    HeaderError, FOOTER_LEN, HEADER_LEN, RECORD_HEADER_LEN,
};
use crate::coding::{checksum, checksum_matches};
use crate::error::{Error, Result};
use crate::filename::blob_file_name;
use crate::fs::{FileSystem, RandomAccessFile};
use crate::options::MAX_KEY_SIZE;
use crate::sst::block::decompress_zstd;

/// An open, finished blob file. Values are read with positional reads
/// (not a memory map), so reading large values does not grow the resident
/// set by the file.
pub(crate) struct BlobFile {
    path: PathBuf,
    number: u64,
    file: Box<dyn RandomAccessFile>,
    size: u64,
    footer: BlobFooter,
}

/// One record met by [`BlobFile::walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalkedRecord {
    /// Where the record starts.
    pub(crate) offset: u64,
    /// The reference to its value.
    pub(crate) blob: BlobRef,
    /// Bytes of the whole record.
    pub(crate) record_len: u64,
}

impl std::fmt::Debug for BlobFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobFile")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("footer", &self.footer)
            .finish_non_exhaustive()
    }
}

impl BlobFile {
    /// Opens blob file `number` of `dir`: checks its header and footer.
    pub(crate) fn open(fs: &dyn FileSystem, dir: &Path, number: u64) -> Result<BlobFile> {
        let path = blob_file_name(dir, number);
        let file = fs.open_random(&path)?;
        let size = file.size()?;
        let corrupt = |offset: u64, reason: &str| Error::corruption(&path, offset, reason);
        if size < (HEADER_LEN + FOOTER_LEN) as u64 {
            return Err(corrupt(0, "blob file shorter than a header and a footer"));
        }
        let mut head = [0u8; HEADER_LEN];
        read_exact(file.as_ref(), &path, 0, &mut head)?;
        check_header(&path, &head)?;
        let at = size - FOOTER_LEN as u64;
        let mut foot = [0u8; FOOTER_LEN];
        read_exact(file.as_ref(), &path, at, &mut foot)?;
        let footer =
            decode_footer(&foot, 0).map_err(|e| corrupt(at + e.offset as u64, e.reason))?;
        if footer.blob_bytes != at - HEADER_LEN as u64 {
            return Err(corrupt(
                at,
                "blob file footer's byte count differs from the records' space",
            ));
        }
        Ok(BlobFile {
            path,
            number,
            file,
            size,
            footer,
        })
    }

    /// Bytes of the whole file.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The decoded footer.
    pub(crate) fn footer(&self) -> BlobFooter {
        self.footer
    }

    /// The value `r` refers to: its stored bytes, checked against the
    /// reference's checksum, decompressed when stored compressed.
    pub(crate) fn read(&self, r: &BlobRef) -> Result<Bytes> {
        read_value(
            self.file.as_ref(),
            &self.path,
            self.number,
            r,
            self.size - FOOTER_LEN as u64,
        )
    }

    /// Reads every record front to back and checks each header, key and
    /// value checksum, and that the records fill the file up to the footer
    /// and match its counts. Calls `f` with each record's key and place.
    /// With `values`, each value is also decompressed when stored
    /// compressed (a full check).
    pub(crate) fn walk(
        &self,
        values: bool,
        f: impl FnMut(&[u8], &WalkedRecord) -> Result<()>,
    ) -> Result<()> {
        let end = self.size - FOOTER_LEN as u64;
        let walked = walk_records(self.file.as_ref(), &self.path, self.number, end, values, f)?;
        if walked.count != self.footer.blob_count {
            return Err(Error::corruption(
                &self.path,
                end,
                format!(
                    "blob file footer says {} records, the file holds {}",
                    self.footer.blob_count, walked.count
                ),
            ));
        }
        Ok(())
    }
}

/// What [`walk_unfinished`] found in a blob file that has no footer.
#[derive(Debug)]
pub(crate) struct UnfinishedWalk {
    /// Bytes of the file when it was read.
    pub(crate) size: u64,
    /// Whole, sound records read from the front.
    pub(crate) count: u64,
    /// Where the last of them ends.
    pub(crate) end: u64,
    /// Why the walk stopped before the file's end (a record cut short or
    /// not sound): what a write in progress or a crash leaves.
    pub(crate) tail: Option<Error>,
}

/// Whether blob file `number` of `dir` has been finished (ends in a
/// footer's magic). The write path appends to a blob file without a
/// footer until its memtable is flushed (`super::LiveBlobFile`); a crash
/// leaves such a file behind, never named by the manifest.
pub(crate) fn is_finished(fs: &dyn FileSystem, dir: &Path, number: u64) -> Result<bool> {
    let path = blob_file_name(dir, number);
    let file = fs.open_random(&path)?;
    let size = file.size()?;
    if size < (HEADER_LEN + FOOTER_LEN) as u64 {
        return Ok(false);
    }
    let mut magic = [0u8; 8];
    read_exact(file.as_ref(), &path, size - 8, &mut magic)?;
    Ok(&magic == super::format::FOOTER_MAGIC)
}

/// Walks blob file `number` of `dir`, which has no footer (see
/// [`is_finished`]), from its header for as long as its records are whole
/// and sound, calling `f` with each. An unsound header is an error;
/// anything after the last sound record is reported in
/// [`UnfinishedWalk::tail`].
pub(crate) fn walk_unfinished(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    values: bool,
    mut f: impl FnMut(&[u8], &WalkedRecord) -> Result<()>,
) -> Result<UnfinishedWalk> {
    let path = blob_file_name(dir, number);
    let file = fs.open_random(&path)?;
    let size = file.size()?;
    if size < HEADER_LEN as u64 {
        return Ok(UnfinishedWalk {
            size,
            count: 0,
            end: 0,
            tail: Some(Error::corruption(
                &path,
                0,
                "blob file shorter than its header",
            )),
        });
    }
    let mut head = [0u8; HEADER_LEN];
    read_exact(file.as_ref(), &path, 0, &mut head)?;
    check_header(&path, &head)?;
    let mut count = 0;
    let mut end = HEADER_LEN as u64;
    let walked = walk_records(file.as_ref(), &path, number, size, values, |k, rec| {
        f(k, rec)?;
        count += 1;
        end = rec.offset + rec.record_len;
        Ok(())
    });
    Ok(UnfinishedWalk {
        size,
        count,
        end,
        tail: walked.err(),
    })
}

/// Checks a blob file header: a typed error naming `path` when it is not
/// one this build reads.
fn check_header(path: &Path, head: &[u8; HEADER_LEN]) -> Result<()> {
    match decode_header(head) {
        Ok(_) => Ok(()),
        Err(HeaderError::Corrupt(e)) => Err(Error::corruption(path, e.offset as u64, e.reason)),
        Err(HeaderError::Version(found)) => Err(Error::UnsupportedVersion {
            file: path.to_path_buf(),
            found,
            supported: super::format::BLOB_FORMAT_VERSION,
        }),
    }
}

/// Records walked by [`walk_records`].
struct Walked {
    count: u64,
}

/// Reads the records of blob file `number` (`file` at `path`) from its
/// header up to `end`, checking each header, key and value checksum, and
/// calls `f` with each record's key and place; the first record that is
/// not whole and sound is an error. With `values`, each value is also
/// decompressed when stored compressed (a full check).
fn walk_records(
    file: &dyn RandomAccessFile,
    path: &Path,
    number: u64,
    end: u64,
    values: bool,
    mut f: impl FnMut(&[u8], &WalkedRecord) -> Result<()>,
) -> Result<Walked> {
    let mut offset = HEADER_LEN as u64;
    let mut count = 0u64;
    let mut head = [0u8; RECORD_HEADER_LEN];
    let mut key = Vec::new();
    while offset < end {
        let corrupt = |at: u64, reason: &str| Error::corruption(path, at, reason);
        if end - offset < RECORD_HEADER_LEN as u64 {
            return Err(corrupt(offset, "blob record header runs past the records"));
        }
        read_exact(file, path, offset, &mut head)?;
        let key_len = record_key_len(&head).unwrap_or(u32::MAX) as u64;
        let key_at = offset + RECORD_HEADER_LEN as u64;
        if key_len > MAX_KEY_SIZE as u64 || key_len > end - key_at {
            return Err(corrupt(offset, "blob record key runs past the records"));
        }
        key.resize(key_len as usize, 0);
        read_exact(file, path, key_at, &mut key)?;
        let h = decode_record_header(&head, &key, 0)
            .map_err(|e| corrupt(offset + e.offset as u64, e.reason))?;
        let value_at = key_at + key_len;
        if u64::from(h.stored_len) > end - value_at {
            return Err(corrupt(offset, "blob record value runs past the records"));
        }
        let rec = WalkedRecord {
            offset,
            blob: BlobRef {
                file_number: number,
                offset: value_at,
                stored_len: h.stored_len,
                value_len: h.value_len,
                value_checksum: h.value_checksum,
            },
            record_len: h.record_len(),
        };
        if values {
            // Checks the value checksum and decompresses it.
            read_value(file, path, number, &rec.blob, end)?;
        } else {
            let mut stored = vec![0u8; h.stored_len as usize];
            read_exact(file, path, value_at, &mut stored)?;
            if !checksum_matches(checksum(&stored), h.value_checksum) {
                return Err(corrupt(value_at, "blob value checksum mismatch"));
            }
        }
        f(&key, &rec)?;
        count += 1;
        offset += h.record_len();
    }
    Ok(Walked { count })
}

/// The value `r` refers to, read from `file` (blob file `number` at
/// `path`, whose records end at `records_end`): its stored bytes, checked
/// against the reference's checksum, decompressed when stored compressed.
/// Shared by finished files ([`BlobFile::read`]) and the files the write
/// path is still appending to ([`super::LiveBlobFile`]).
pub(crate) fn read_value(
    file: &dyn RandomAccessFile,
    path: &Path,
    number: u64,
    r: &BlobRef,
    records_end: u64,
) -> Result<Bytes> {
    let corrupt = |reason: &str| Error::corruption(path, r.offset, reason);
    if r.file_number != number {
        return Err(Error::Internal(format!(
            "blob reference to file {} read from {}",
            r.file_number,
            path.display()
        )));
    }
    let end = r.offset.checked_add(u64::from(r.stored_len));
    if r.offset < HEADER_LEN as u64 || end.is_none_or(|e| e > records_end) {
        return Err(corrupt("blob reference points outside the file's records"));
    }
    // Not zero-filled first: a large value's bytes are touched once by the
    // read and once by the checksum (+12% readrandom of 100 KB values).
    let stored = file.read_vec_at(r.offset, r.stored_len as usize)?;
    if stored.len() != r.stored_len as usize {
        return Err(Error::corruption(
            path,
            r.offset + stored.len() as u64,
            "blob file ends before the bytes it should hold",
        ));
    }
    if !checksum_matches(checksum(&stored), r.value_checksum) {
        return Err(corrupt("blob value checksum mismatch"));
    }
    if !r.is_compressed() {
        return Ok(Bytes::from(stored));
    }
    let value = decompress_zstd(&stored).map_err(corrupt)?;
    if value.len() != r.value_len as usize {
        return Err(corrupt("blob value decompresses to another length"));
    }
    Ok(Bytes::from(value))
}

/// Reads exactly `buf.len()` bytes at `offset`; a short read is corruption
/// (the file is shorter than its structures say).
fn read_exact(file: &dyn RandomAccessFile, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            return Err(Error::corruption(
                path,
                offset + done as u64,
                "blob file ends before the bytes it should hold",
            ));
        }
        done += n;
    }
    Ok(())
}
