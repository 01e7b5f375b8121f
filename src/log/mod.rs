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
