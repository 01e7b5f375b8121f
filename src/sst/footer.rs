//! The fixed 68-byte footer at the end of every SST file.
//!
//! Layout: root offset, root size, filter offset, filter size, properties
//! offset, properties size (`u64` each), index depth `u32` (1..=64),
//! format version `u32`, checksum `u32` of bytes 0..56, magic `"LIGHTSST"`.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use crate::coding::{checksum, put_u32, put_u64, Cursor};
use crate::error::{Error, Result};

use super::handle::BlockHandle;

/// Magic bytes ending every SST file.
pub(crate) const MAGIC: &[u8; 8] = b"LIGHTSST";
/// The highest SST format version this build reads: 6, the version of
/// tables holding timed values (kind 4).
pub(crate) const FORMAT_VERSION: u32 = 6;
/// The version of tables holding timed values (kind 4).
pub(crate) const TTL_FORMAT_VERSION: u32 = 6;
/// The version of tables holding merge operands (kind 3) and no timed
/// value.
pub(crate) const MERGE_FORMAT_VERSION: u32 = 5;
/// The version of tables holding range tombstones (a range-deletion
/// block) and no merge operand.
pub(crate) const RANGE_DEL_FORMAT_VERSION: u32 = 4;
/// The version of tables holding blob references (kind 2) and no range
/// tombstone.
pub(crate) const BLOB_FORMAT_VERSION: u32 = 3;
/// The version this build writes for a table without blob references
/// (older builds read it).
pub(crate) const PLAIN_FORMAT_VERSION: u32 = 2;
/// Deepest index B+Tree accepted, by writers and readers. Every index page
/// of a level with several pages holds at least 2 entries (`index.rs`), so
/// each level has at most half the pages of the one below, and a file of
/// `n` data blocks has an index at most `floor(log2 n) + 1` deep. A block
/// takes at least its 5-byte trailer, so `n < 2^61` and 62 levels always
/// suffice: any key the API accepts flushes with any page size. (It was
/// 16, which keys that cannot be shortened into short separators reached
/// with the smallest pages: about 300,000 keys of 208 bytes sharing a
/// 200-byte prefix with 256-byte blocks and pages.)
pub(crate) const MAX_INDEX_DEPTH: u32 = 64;

/// Where the index root, filter and properties blocks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Root page of the index B+Tree.
    pub index_root: BlockHandle,
    /// Filter block; offset 0 and size 0 when the file has no filter.
    pub filter: BlockHandle,
    /// Properties block.
    pub properties: BlockHandle,
    /// Levels of the index (1: the root is a leaf page).
    pub index_depth: u32,
    /// Format version of the file.
    pub version: u32,
}

impl Footer {
    /// Exact encoded size.
    pub const ENCODED_LEN: usize = 68;

    /// True when the footer records a filter block.
    pub fn has_filter(&self) -> bool {
        self.filter != BlockHandle::default()
    }

    /// Appends the 68 encoded bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        for h in [self.index_root, self.filter, self.properties] {
            put_u64(out, h.offset);
            put_u64(out, h.size);
        }
        put_u32(out, self.index_depth);
        put_u32(out, self.version);
        let sum = checksum(out.get(start..).unwrap_or_default());
        put_u32(out, sum);
        out.extend_from_slice(MAGIC);
    }

    /// Decodes the footer from the last [`Self::ENCODED_LEN`] bytes of a file
    /// of `file_len` bytes. Checks, in order: length, magic, checksum,
    /// version, depth. Handle ranges are checked by the table reader.
    pub fn decode_from(buf: &[u8], path: &Path, file_len: u64) -> Result<Footer> {
        let base = file_len.saturating_sub(Self::ENCODED_LEN as u64);
        if buf.len() != Self::ENCODED_LEN {
            return Err(Error::corruption(
                path,
                0,
                format!(
                    "not an SST file: {file_len} bytes is shorter than the {}-byte footer",
                    Self::ENCODED_LEN
                ),
            ));
        }
        let magic = buf.get(60..68).unwrap_or_default();
        if magic != MAGIC {
            return Err(Error::corruption(
                path,
                base + 60,
                "not an SST file: bad footer magic",
            ));
        }
        let body = buf.get(..56).unwrap_or_default();
        let mut c = Cursor::new(buf);
        let err = |e: crate::coding::DecodeError| e.into_error(path, base);
        let mut hs = [BlockHandle::default(); 3];
        for h in &mut hs {
            h.offset = c.u64("footer handle").map_err(err)?;
            h.size = c.u64("footer handle").map_err(err)?;
        }
        let index_depth = c.u32("footer depth").map_err(err)?;
        let version = c.u32("footer version").map_err(err)?;
        let stored = c.u32("footer checksum").map_err(err)?;
        if !crate::coding::checksum_matches(checksum(body), stored) {
            return Err(Error::corruption(path, base, "footer checksum mismatch"));
        }
        if version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version == 0 {
            return Err(Error::corruption(path, base + 52, "footer version 0"));
        }
        if !(1..=MAX_INDEX_DEPTH).contains(&index_depth) {
            return Err(Error::corruption(
                path,
                base + 48,
                format!("index depth {index_depth} outside 1..={MAX_INDEX_DEPTH}"),
            ));
        }
        let [index_root, filter, properties] = hs;
        Ok(Footer {
            index_root,
            filter,
            properties,
            index_depth,
            version,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        Footer {
            index_root: BlockHandle::new(1000, 200),
            filter: BlockHandle::new(1205, 30),
            properties: BlockHandle::new(1240, 90),
            index_depth: 2,
            version: FORMAT_VERSION,
        }
    }

    #[test]
    fn round_trip_and_checks() {
        let p = Path::new("x.sst");
        let f = sample();
        let mut b = Vec::new();
        f.encode_into(&mut b);
        assert_eq!(b.len(), Footer::ENCODED_LEN);
        assert_eq!(Footer::decode_from(&b, p, 5000).unwrap(), f);
        for i in 0..b.len() {
            let mut x = b.clone();
            x[i] ^= 0x10;
            let e = Footer::decode_from(&x, p, 5000).unwrap_err();
            assert!(e.is_corruption(), "{e}");
        }
        assert!(Footer::decode_from(&b[..10], p, 10)
            .unwrap_err()
            .is_corruption());
        let newer = Footer {
            version: FORMAT_VERSION + 1,
            ..sample()
        };
        let mut b = Vec::new();
        newer.encode_into(&mut b);
        assert!(matches!(
            Footer::decode_from(&b, p, 5000),
            Err(Error::UnsupportedVersion {
                found,
                supported: FORMAT_VERSION,
                ..
            }) if found == FORMAT_VERSION + 1
        ));
        // Every older version still reads.
        for version in 1..=FORMAT_VERSION {
            let old = Footer {
                version,
                ..sample()
            };
            let mut b = Vec::new();
            old.encode_into(&mut b);
            assert_eq!(Footer::decode_from(&b, p, 5000).unwrap(), old);
        }
        let deep = Footer {
            index_depth: MAX_INDEX_DEPTH + 1,
            ..sample()
        };
        let mut b = Vec::new();
        deep.encode_into(&mut b);
        assert!(Footer::decode_from(&b, p, 5000)
            .unwrap_err()
            .is_corruption());
    }
}
