//! Appending records to a log file.
//!
//! The writer cuts each record into fragments that fit the current block
//! (see [`super::format`]) and hands header and payload slices straight to
//! the [`WritableFile`]: a record is never copied into an intermediate
//! buffer, so records of hundreds of MiB cost one pass. Nothing reaches the
//! operating system until [`LogWriter::flush`] or [`LogWriter::sync`]
//! (beyond what the file's own buffer spills), so group commit can add many
//! records and pay for one system call. A WAL written through a memory map
//! ([`FileSystem::create_mapped`]) is in the page cache as soon as a record
//! is added, and its flush costs nothing.
//!
//! Invariant: `block_offset == file.len() % BLOCK_SIZE`. After any error
//! the writer is failed and refuses further work.

use std::fmt;
use std::path::PathBuf;

use super::format::{
    encode_file_header_payload, encode_fragment_header, FragmentType, LogKind, BLOCK_SIZE,
    HEADER_LEN,
};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, WritableFile};

/// Zero bytes used to pad a block tail shorter than a fragment header.
const PADDING: [u8; HEADER_LEN - 1] = [0; HEADER_LEN - 1];

/// Writes records to one log file (a WAL or a manifest).
pub(crate) struct LogWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    kind: LogKind,
    file_number: u64,
    /// Offset inside the current block where the next fragment starts.
    block_offset: usize,
    /// Set after any failed write: the file may end in a partial fragment.
    failed: bool,
    /// WALs only: the file is kept preallocated up to here (a zero tail
    /// that appends overwrite, see [`WAL_PREALLOCATE`]); 0 for manifests.
    preallocated: u64,
}

/// WALs are preallocated this far ahead of their data. A synced append
/// inside the preallocated tail does not change the file size, so its
/// `fdatasync` writes no size metadata: on ext4 a 140-byte append + sync
/// measured about 120 µs inside the tail against 150-220 µs at the end of
/// the file. The tail is sparse (no zeros are written, so it costs no
/// write amplification) and reads as zeros, which the reader takes for the
/// end of the log (a torn tail: docs/format.md); [`LogWriter::finish`]
/// cuts it off before a WAL is closed.
pub(crate) const WAL_PREALLOCATE: u64 = 4 << 20;

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("file_number", &self.file_number)
            .field("len", &self.file.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl LogWriter {
    /// Starts a log in `file` (which must be empty) at `path` and appends
    /// the header record (magic of `kind`, version 1, `file_number`). The
    /// header is not flushed or synced: a crash before the first sync may
    /// leave an empty file or a partial header, which the reader treats as
    /// an empty log with a torn tail.
    pub(crate) fn new(
        file: Box<dyn WritableFile>,
        path: PathBuf,
        kind: LogKind,
        file_number: u64,
    ) -> Result<Self> {
        Self::with_version(file, path, kind, file_number, kind.format_version())
    }

    /// [`new`](Self::new) writing format `version` in the header (tests
    /// write older versions; the records must then be in that format).
    pub(crate) fn with_version(
        file: Box<dyn WritableFile>,
        path: PathBuf,
        kind: LogKind,
        file_number: u64,
        version: u32,
    ) -> Result<Self> {
        if !file.is_empty() {
            return Err(Error::Internal(format!(
                "log file {} is not empty ({} bytes); logs are only written from the start",
                path.display(),
                file.len()
            )));
        }
        let mut w = LogWriter {
            file,
            path,
            kind,
            file_number,
            block_offset: 0,
            failed: false,
            preallocated: 0,
        };
        w.add_record(&encode_file_header_payload(kind, file_number, version))?;
        Ok(w)
    }

    /// Creates the WAL file `path` in `fs` and starts it (see
    /// [`new`](Self::new)): through a shared memory map when `mmap`
    /// ([`FileSystem::create_mapped`]), else with buffered appends.
    pub(crate) fn create_wal(
        fs: &dyn FileSystem,
        path: PathBuf,
        file_number: u64,
        mmap: bool,
    ) -> Result<Self> {
        let file = if mmap {
            fs.create_mapped(&path)?
        } else {
            fs.create(&path)?
        };
        LogWriter::new(file, path, LogKind::Wal, file_number)
    }

    pub(crate) fn check_failed(&self) -> Result<()> {
        if self.failed {
            Err(Error::io(
                &self.path,
                std::io::Error::other("an earlier write to this log failed; it accepts no more"),
            ))
        } else {
            Ok(())
        }
    }

    /// Marks the writer failed, as after a failed write or sync of its
    /// own: a write this log's records depend on (a live blob file's)
    /// failed, so nothing more may be appended or synced.
    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }

    /// Appends one record (any length, including 0). The bytes go to the
    /// file's buffer; call [`flush`](Self::flush) or [`sync`](Self::sync)
    /// to make them reach the operating system or the disk.
    pub(crate) fn add_record(&mut self, payload: &[u8]) -> Result<()> {
        self.check_failed()?;
        let r = self.add_record_inner(payload);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn add_record_inner(&mut self, payload: &[u8]) -> Result<()> {
        if self.kind == LogKind::Wal {
            // Headers: one per block the record touches, and padding.
            let need = self.file.len()
                + (payload.len() + 2 * HEADER_LEN) as u64
                + (payload.len() / (BLOCK_SIZE - HEADER_LEN)) as u64 * HEADER_LEN as u64;
            if need > self.preallocated {
                self.preallocated = need.next_multiple_of(WAL_PREALLOCATE) + WAL_PREALLOCATE;
                self.file.preallocate(self.preallocated)?;
            }
        }
        let mut rest = payload;
        let mut begin = true;
        loop {
            let leftover = BLOCK_SIZE - self.block_offset;
            if leftover < HEADER_LEN {
                // `PADDING` holds HEADER_LEN - 1 zeros, enough for any tail.
                if let Some(pad) = PADDING.get(..leftover) {
                    if !pad.is_empty() {
                        self.file.append(pad)?;
                    }
                }
                self.block_offset = 0;
            }
            let avail = BLOCK_SIZE - self.block_offset - HEADER_LEN;
            let n = rest.len().min(avail);
            let (frag, tail) = rest.split_at(n);
            let end = tail.is_empty();
            let ty = match (begin, end) {
                (true, true) => FragmentType::Full,
                (true, false) => FragmentType::First,
                (false, false) => FragmentType::Middle,
                (false, true) => FragmentType::Last,
            };
            self.file.append(&encode_fragment_header(ty, frag))?;
            if !frag.is_empty() {
                self.file.append(frag)?;
            }
            self.block_offset += HEADER_LEN + n;
            rest = tail;
            begin = false;
            if end {
                return Ok(());
            }
        }
    }

    /// Hands everything added so far to the operating system (survives a
    /// process crash, not a power loss).
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.check_failed()?;
        let r = self.file.flush();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Cuts the preallocated tail off and syncs: the last call on a WAL
    /// before it is closed or rotated away, so that a closed log file ends
    /// exactly at its last record.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.check_failed()?;
        let r = self.file.trim().and_then(|()| self.file.sync_data());
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Flushes, then makes the file's data durable (`fdatasync`). After an
    /// error the writer is failed: the state of the data is unknown.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.check_failed()?;
        let r = self.file.sync_data();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Bytes written to the file so far, header and padding included.
    pub(crate) fn len(&self) -> u64 {
        self.file.len()
    }

    #[cfg(test)]
    /// The file's path.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The file number written in the header.
    pub(crate) fn file_number(&self) -> u64 {
        self.file_number
    }

    #[cfg(test)]
    /// The kind of log.
    pub(crate) fn kind(&self) -> LogKind {
        self.kind
    }
}
