//! The bytes of a blob file and of a blob reference (`docs/format.md`,
//! "Blob files"): encoders and decoders, nothing else. Decoders refuse
//! anything they cannot prove valid with a [`DecodeError`] at the offset
//! concerned.

use crate::coding::{checksum, checksum_matches, put_u32, put_u64, put_varint32, put_varint64};
use crate::coding::{Cursor, DecodeError};
use crate::options::{MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// Version of the blob file format this build writes and reads.
pub(crate) const BLOB_FORMAT_VERSION: u32 = 1;
/// First bytes of every blob file.
pub(crate) const HEADER_MAGIC: &[u8; 8] = b"LDB-BLOB";
/// Last bytes of every finished blob file.
pub(crate) const FOOTER_MAGIC: &[u8; 8] = b"LDB-BLBF";
/// Bytes of the file header.
pub(crate) const HEADER_LEN: usize = 20;
/// Bytes of a record header (before the key).
pub(crate) const RECORD_HEADER_LEN: usize = 20;
/// Bytes of the footer.
pub(crate) const FOOTER_LEN: usize = 28;

/// The compression byte of the file header: what the writer was asked to
/// do (each record says what it did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileCompression {
    None = 0,
    Zstd = 1,
}

/// A decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobHeader {
    pub(crate) version: u32,
    pub(crate) compression: FileCompression,
}

/// Encodes the file header.
pub(crate) fn encode_header(compression: FileCompression) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(HEADER_MAGIC);
    h[8..12].copy_from_slice(&BLOB_FORMAT_VERSION.to_le_bytes());
    h[12] = compression as u8;
    let sum = checksum(&h[..16]);
    h[16..20].copy_from_slice(&sum.to_le_bytes());
    h
}

/// Why a header is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not a blob file, or a damaged header.
    Corrupt(DecodeError),
    /// A well-formed header of a newer version.
    Version(u32),
}

/// Decodes the file header (the first [`HEADER_LEN`] bytes of `b`).
pub(crate) fn decode_header(b: &[u8]) -> Result<BlobHeader, HeaderError> {
    let bad =
        |offset: usize, reason: &'static str| HeaderError::Corrupt(DecodeError { offset, reason });
    if b.len() < HEADER_LEN {
        return Err(bad(0, "blob file shorter than its header"));
    }
    if &b[..8] != HEADER_MAGIC {
        return Err(bad(0, "not a blob file (bad magic)"));
    }
    let stored = u32::from_le_bytes(b[16..20].try_into().unwrap_or_default());
    if !checksum_matches(checksum(&b[..16]), stored) {
        return Err(bad(16, "blob file header checksum mismatch"));
    }
    let version = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
    if version > BLOB_FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    if version == 0 {
        return Err(bad(8, "blob file format version 0"));
    }
    let compression = match b[12] {
        0 => FileCompression::None,
        1 => FileCompression::Zstd,
        _ => return Err(bad(12, "unknown blob file compression")),
    };
    if b[13..16] != [0, 0, 0] {
        return Err(bad(13, "reserved blob header bytes are not zero"));
    }
    Ok(BlobHeader {
        version,
        compression,
    })
}

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) key_len: u32,
    pub(crate) stored_len: u32,
    pub(crate) value_len: u32,
    pub(crate) value_checksum: u32,
}

impl RecordHeader {
    /// Bytes of the whole record: header, key and stored value.
    pub(crate) fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.key_len) + u64::from(self.stored_len)
    }
}

/// Appends a record header for `key` to `out` (the key and the stored
/// value follow it in the file).
pub(crate) fn encode_record_header(out: &mut Vec<u8>, key: &[u8], h: &RecordHeader) {
    let start = out.len();
    put_u32(out, h.key_len);
    put_u32(out, h.stored_len);
    put_u32(out, h.value_len);
    put_u32(out, h.value_checksum);
    let sum = crate::coding::checksum_parts(&[&out[start..start + 16], key]);
    put_u32(out, sum);
}

/// Decodes the record header in `head` (at least [`RECORD_HEADER_LEN`]
/// bytes) and checks it against its `key`; `offset` is where the record
/// starts in the file (for errors).
pub(crate) fn decode_record_header(
    head: &[u8],
    key: &[u8],
    offset: usize,
) -> Result<RecordHeader, DecodeError> {
    let bad = |at: usize, reason: &'static str| DecodeError {
        offset: offset + at,
        reason,
    };
    if head.len() < RECORD_HEADER_LEN {
        return Err(bad(0, "blob record header cut short"));
    }
    let u = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap_or_default());
    let h = RecordHeader {
        key_len: u(0),
        stored_len: u(4),
        value_len: u(8),
        value_checksum: u(12),
    };
    if h.key_len as usize != key.len() {
        return Err(bad(0, "blob record key length differs from the key given"));
    }
    let sum = crate::coding::checksum_parts(&[&head[..16], key]);
    if !checksum_matches(sum, u(16)) {
        return Err(bad(16, "blob record header checksum mismatch"));
    }
    check_lengths(h.key_len, h.stored_len, h.value_len).map_err(|r| bad(0, r))?;
    Ok(h)
}

/// The length rules of a record (and of a reference).
fn check_lengths(key_len: u32, stored_len: u32, value_len: u32) -> Result<(), &'static str> {
    if key_len as usize > MAX_KEY_SIZE {
        return Err("blob record key longer than the largest key");
    }
    if value_len as usize > MAX_VALUE_SIZE {
        return Err("blob value longer than the largest value");
    }
    if stored_len > value_len {
        return Err("blob value stored in more bytes than it has");
    }
    Ok(())
}

/// Reads the key length of a record header without checking it (to know
/// how many key bytes to read before [`decode_record_header`]).
pub(crate) fn record_key_len(head: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(head.get(..4)?.try_into().ok()?))
}

/// A decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlobFooter {
    /// Records in the file.
    pub(crate) blob_count: u64,
    /// Sum of the records' sizes (header, key and stored value).
    pub(crate) blob_bytes: u64,
}

/// Encodes the footer.
pub(crate) fn encode_footer(f: &BlobFooter) -> [u8; FOOTER_LEN] {
    let mut out = Vec::with_capacity(FOOTER_LEN);
    put_u64(&mut out, f.blob_count);
    put_u64(&mut out, f.blob_bytes);
    let sum = checksum(&out);
    put_u32(&mut out, sum);
    out.extend_from_slice(FOOTER_MAGIC);
    let mut b = [0u8; FOOTER_LEN];
    b.copy_from_slice(&out);
    b
}

/// Decodes the footer (the last [`FOOTER_LEN`] bytes of the file, which
/// start at `offset`).
pub(crate) fn decode_footer(b: &[u8], offset: usize) -> Result<BlobFooter, DecodeError> {
    let bad = |at: usize, reason: &'static str| DecodeError {
        offset: offset + at,
        reason,
    };
    if b.len() != FOOTER_LEN {
        return Err(bad(0, "blob file footer cut short"));
    }
    if &b[20..28] != FOOTER_MAGIC {
        return Err(bad(20, "blob file has no footer (never finished)"));
    }
    let stored = u32::from_le_bytes(b[16..20].try_into().unwrap_or_default());
    if !checksum_matches(checksum(&b[..16]), stored) {
        return Err(bad(16, "blob file footer checksum mismatch"));
    }
    Ok(BlobFooter {
        blob_count: u64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
        blob_bytes: u64::from_le_bytes(b[8..16].try_into().unwrap_or_default()),
    })
}

/// Where a separated value lives: the value of a kind-2 SST entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BlobRef {
    /// The blob file.
    pub(crate) file_number: u64,
    /// Offset of the stored value in it.
    pub(crate) offset: u64,
    /// Bytes of the stored value.
    pub(crate) stored_len: u32,
    /// Bytes of the value.
    pub(crate) value_len: u32,
    /// Checksum of the stored value.
    pub(crate) value_checksum: u32,
}

impl BlobRef {
    /// Appends the encoded reference to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        put_varint64(out, self.file_number);
        put_varint64(out, self.offset);
        put_varint32(out, self.stored_len);
        put_varint32(out, self.value_len);
        put_u32(out, self.value_checksum);
    }

    /// The encoded reference.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        self.encode_into(&mut v);
        v
    }

    /// Decodes a reference; it must use every byte of `b`.
    pub(crate) fn decode(b: &[u8]) -> Result<BlobRef, DecodeError> {
        let mut c = Cursor::new(b);
        let r = BlobRef {
            file_number: c.varint64("blob reference: file number")?,
            offset: c.varint64("blob reference: offset")?,
            stored_len: c.varint32("blob reference: stored length")?,
            value_len: c.varint32("blob reference: value length")?,
            value_checksum: c.u32("blob reference: checksum")?,
        };
        if !c.is_empty() {
            return Err(c.error("blob reference: trailing bytes"));
        }
        check_lengths(0, r.stored_len, r.value_len)
            .map_err(|reason| DecodeError { offset: 0, reason })?;
        Ok(r)
    }

    /// True when the stored bytes are a zstd frame (they are shorter than
    /// the value; see `docs/format.md`).
    pub(crate) fn is_compressed(&self) -> bool {
        self.stored_len < self.value_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_refuses_damage() {
        for c in [FileCompression::None, FileCompression::Zstd] {
            let h = encode_header(c);
            assert_eq!(
                decode_header(&h),
                Ok(BlobHeader {
                    version: 1,
                    compression: c
                })
            );
            for i in 0..HEADER_LEN {
                let mut bad = h;
                bad[i] ^= 0x10;
                assert!(decode_header(&bad).is_err(), "byte {i}");
            }
            assert!(decode_header(&h[..HEADER_LEN - 1]).is_err());
        }
        // A newer version with a valid checksum is a version error.
        let mut h = encode_header(FileCompression::None);
        h[8..12].copy_from_slice(&2u32.to_le_bytes());
        let sum = checksum(&h[..16]);
        h[16..20].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(decode_header(&h), Err(HeaderError::Version(2)));
    }

    #[test]
    fn record_header_round_trips_and_refuses_damage() {
        let key = b"some key";
        let h = RecordHeader {
            key_len: key.len() as u32,
            stored_len: 90,
            value_len: 100,
            value_checksum: 0xdead_beef,
        };
        let mut out = Vec::new();
        encode_record_header(&mut out, key, &h);
        assert_eq!(out.len(), RECORD_HEADER_LEN);
        assert_eq!(record_key_len(&out), Some(key.len() as u32));
        assert_eq!(decode_record_header(&out, key, 0), Ok(h));
        assert_eq!(h.record_len(), 20 + 8 + 90);
        for i in 0..RECORD_HEADER_LEN {
            let mut bad = out.clone();
            bad[i] ^= 0x01;
            assert!(decode_record_header(&bad, key, 0).is_err(), "byte {i}");
        }
        assert!(decode_record_header(&out, b"other ke", 0).is_err());
        let e = decode_record_header(&out[..10], key, 100).unwrap_err();
        assert_eq!(e.offset, 100);
        // Stored longer than the value: refused even with a valid checksum.
        let mut out = Vec::new();
        let long = RecordHeader {
            stored_len: 101,
            ..h
        };
        encode_record_header(&mut out, key, &long);
        assert!(decode_record_header(&out, key, 0).is_err());
    }

    #[test]
    fn footer_round_trips_and_refuses_damage() {
        let f = BlobFooter {
            blob_count: 7,
            blob_bytes: 12345,
        };
        let b = encode_footer(&f);
        assert_eq!(decode_footer(&b, 0), Ok(f));
        for i in 0..FOOTER_LEN {
            let mut bad = b;
            bad[i] ^= 0x04;
            assert!(decode_footer(&bad, 0).is_err(), "byte {i}");
        }
        assert!(decode_footer(&b[1..], 0).is_err());
    }

    #[test]
    fn reference_round_trips_exactly() {
        let r = BlobRef {
            file_number: 123_456,
            offset: 1 << 40,
            stored_len: 99_000,
            value_len: 100_000,
            value_checksum: 42,
        };
        let e = r.encode();
        assert_eq!(BlobRef::decode(&e), Ok(r));
        assert!(r.is_compressed());
        for n in 0..e.len() {
            assert!(BlobRef::decode(&e[..n]).is_err(), "prefix {n}");
        }
        let mut long = e.clone();
        long.push(0);
        assert!(BlobRef::decode(&long).is_err());
        let bad = BlobRef {
            stored_len: 100_001,
            ..r
        }
        .encode();
        assert!(BlobRef::decode(&bad).is_err());
    }
}
