//! Log files: the record framing shared by the write-ahead log and the
//! manifest (see `docs/format.md`, "Log files (WAL and manifest): record
//! framing").
//!
//! A log file is a sequence of 32 KiB blocks holding checksummed fragments;
//! a logical record is one `FULL` fragment or `FIRST`, `MIDDLE`*, `LAST`.
//! The first record of every file is a header naming the kind of log
//! (magic), the format version and the file number.
//!
//! Invariants:
//! - [`writer::LogWriter`] never lets a fragment cross a block boundary and pads a
//!   block tail shorter than a fragment header with zeros.
//! - After any failed write the writer refuses further writes: the file may
//!   end in a partial fragment, and a record appended after it would turn a
//!   torn tail into mid-file corruption.
//! - [`reader::LogReader`] returns only records whose every fragment passed its
//!   checksum, in file order; it stops at the first damage and reports
//!   either a torn tail (nothing valid after the damage) or
//!   [`crate::Error::Corruption`] (a valid fragment anywhere after the
//!   damage, or a valid fragment that breaks the FIRST/MIDDLE/LAST
//!   sequence).

pub(crate) mod format;
pub(crate) mod reader;
pub(crate) mod writer;

pub(crate) use format::LogKind;
pub(crate) use reader::LogReader;
pub(crate) use writer::LogWriter;

/// Reads of a live WAL ([`reread_live_wal`]).
pub(crate) const LIVE_WAL_READS: u32 = 5;

/// Runs `read` (a read and decode of a WAL) once, or, when `live` (a
/// writer has the database open and may be appending to this WAL), again
/// while it fails with [`crate::Error::Corruption`], up to
/// [`LIVE_WAL_READS`] times 2 ms apart. A reader of a live WAL can catch a
/// record half-copied by the writer (say its header without its type
/// byte, while later bytes are already there), which decodes like damage
/// in the middle of the log; a write in progress is complete when the file
/// is read again a moment later, real damage stays where it is. The last
/// read's outcome is returned.
pub(crate) fn reread_live_wal<T>(
    live: bool,
    mut read: impl FnMut() -> crate::Result<T>,
) -> crate::Result<T> {
    let attempts = if live { LIVE_WAL_READS } else { 1 };
    let mut attempt = 1;
    loop {
        match read() {
            Err(crate::Error::Corruption { .. }) if attempt < attempts => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            r => return r,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! A [`WritableFile`] that captures appended bytes in memory.
    use std::sync::Arc;

    use parking_lot::Mutex;

    use crate::error::Result;
    use crate::fs::WritableFile;

    /// Appends into a shared vector; `flushed`/`synced` count calls.
    #[derive(Clone, Default)]
    pub(crate) struct VecFile {
        pub data: Arc<Mutex<Vec<u8>>>,
        pub flushes: Arc<Mutex<usize>>,
        pub syncs: Arc<Mutex<usize>>,
        pub appends: Arc<Mutex<usize>>,
    }

    impl WritableFile for VecFile {
        fn append(&mut self, data: &[u8]) -> Result<()> {
            *self.appends.lock() += 1;
            self.data.lock().extend_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> Result<()> {
            *self.flushes.lock() += 1;
            Ok(())
        }
        fn sync_data(&mut self) -> Result<()> {
            *self.syncs.lock() += 1;
            Ok(())
        }
        fn len(&self) -> u64 {
            self.data.lock().len() as u64
        }
    }
}
