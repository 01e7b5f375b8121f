//! Block handles: where a block lives in an SST file.
//!
//! Encoding: `offset: varint`, `size: varint`, where `size` counts the
//! stored contents without the [`BLOCK_TRAILER_LEN`]-byte trailer.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::coding::{put_varint64, Cursor, DecodeError, MAX_VARINT64_LEN};

/// Bytes after every block's contents: compression type `u8`, checksum `u32`.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;

/// Position and stored size (without trailer) of one block in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct BlockHandle {
    /// Offset of the block's first byte in the file.
    pub offset: u64,
    /// Stored contents size, not counting the 5-byte trailer.
    pub size: u64,
}

impl BlockHandle {
    /// Largest encoded handle: two 64-bit varints.
    pub const MAX_ENCODED_LEN: usize = 2 * MAX_VARINT64_LEN;

    /// A handle at `offset` with `size` stored bytes.
    pub fn new(offset: u64, size: u64) -> Self {
        BlockHandle { offset, size }
    }

    /// Appends the varint encoding.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint64(out, self.offset);
        put_varint64(out, self.size);
    }

    /// Decodes a handle from the cursor's position.
    pub fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        let offset = c.varint64("bad block handle offset")?;
        let size = c.varint64("bad block handle size")?;
        Ok(BlockHandle { offset, size })
    }

    /// Decodes a handle that must fill `buf` exactly (index entry values).
    pub fn decode_exact(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(buf);
        let h = Self::decode(&mut c)?;
        if !c.is_empty() {
            return Err(c.error("trailing bytes after block handle"));
        }
        Ok(h)
    }

    /// Offset one past the block's trailer, or `None` on overflow.
    pub fn end_with_trailer(&self) -> Option<u64> {
        self.offset
            .checked_add(self.size)?
            .checked_add(BLOCK_TRAILER_LEN as u64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (o, s) in [(0, 0), (1, 2), (u64::MAX, u64::MAX), (1 << 40, 4096)] {
            let h = BlockHandle::new(o, s);
            let mut b = Vec::new();
            h.encode_to(&mut b);
            assert!(b.len() <= BlockHandle::MAX_ENCODED_LEN);
            assert_eq!(BlockHandle::decode_exact(&b).unwrap(), h);
            b.push(0);
            assert!(BlockHandle::decode_exact(&b).is_err());
            b.truncate(b.len() - 2);
            assert!(BlockHandle::decode_exact(&b).is_err());
        }
        assert_eq!(BlockHandle::new(u64::MAX, 1).end_with_trailer(), None);
    }
}
