//! [`TableData`]: how the reader gets at the bytes of an SST file — the
//! whole file in memory (a read-only map, `Options::allow_mmap_reads`), or
//! one positional read per block.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::fs::RandomAccessFile;

/// The bytes of an SST file, as the reader gets at them.
pub(crate) enum TableData {
    /// The whole file in memory: a read-only map of it
    /// (`allow_mmap_reads`), or bytes given to `Table::from_bytes`. A block
    /// is a zero-copy slice. A file shortened under the map would kill the
    /// process with `SIGBUS` when the lost pages are touched.
    Whole(Bytes),
    /// The file read with positional reads, one `pread` per block into a
    /// buffer of its own. A device error or a file shortened by anyone is
    /// an error of that read only.
    Pread {
        /// The open file.
        file: Box<dyn RandomAccessFile>,
        /// Its size when opened.
        len: u64,
    },
}

impl std::fmt::Debug for TableData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableData::Whole(b) => write!(f, "Whole({} bytes)", b.len()),
            TableData::Pread { len, .. } => write!(f, "Pread({len} bytes)"),
        }
    }
}

impl TableData {
    /// Size of the file.
    pub(crate) fn len(&self) -> u64 {
        match self {
            TableData::Whole(b) => b.len() as u64,
            TableData::Pread { len, .. } => *len,
        }
    }

    /// The whole file, when it is in memory.
    pub(crate) fn whole(&self) -> Option<&Bytes> {
        match self {
            TableData::Whole(b) => Some(b),
            TableData::Pread { .. } => None,
        }
    }

    /// The `len` bytes at `offset` of `path` (for error messages, `what`
    /// is being read); the range must lie inside [`TableData::len`]. A
    /// short read (the file was shortened since it was opened) is
    /// [`Error::Corruption`]; a failed one [`Error::Io`].
    pub(crate) fn read(&self, path: &Path, offset: u64, len: u64, what: &str) -> Result<Bytes> {
        let short = || {
            Error::corruption(
                path,
                offset,
                format!("{what}: the file ends before the {len} bytes at this offset (was it shortened?)"),
            )
        };
        match self {
            TableData::Whole(b) => {
                let start = usize::try_from(offset).map_err(|_| short())?;
                let end = usize::try_from(offset + len).map_err(|_| short())?;
                if end > b.len() {
                    return Err(short());
                }
                Ok(b.slice(start..end))
            }
            TableData::Pread { file, .. } => {
                let n = usize::try_from(len).map_err(|_| short())?;
                let mut buf = vec![0u8; n];
                let got = file.read_at(offset, &mut buf)?;
                if got < n {
                    return Err(short());
                }
                Ok(Bytes::from(buf))
            }
        }
    }
}
