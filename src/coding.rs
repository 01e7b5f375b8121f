//! Byte-level encoding shared by every on-disk format: little-endian fixed
//! integers, LEB128 varints, the xxh3 checksum, and a bounds-checked
//! decoding cursor.
//!
//! Decoders never index a slice directly: they go through [`Cursor`], whose
//! every read checks what is left first and reports a [`DecodeError`] with
//! the offset where decoding failed. Callers turn that into
//! [`crate::Error::Corruption`] with the file and absolute offset.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

/// Maximum encoded length of a `u64` varint.
pub const MAX_VARINT64_LEN: usize = 10;

/// The checksum used on every on-disk byte: the low 32 bits of xxh3-64.
/// Computed with `twox-hash`, which uses AVX2 when the CPU has it (whole
/// 4 KiB blocks hash about 1.6x faster than with `xxhash-rust`'s
/// compile-time SSE2 path); the value is the same xxh3-64 either way.
#[inline]
pub fn checksum(data: &[u8]) -> u32 {
    twox_hash::XxHash3_64::oneshot(data) as u32
}

/// True when `stored` (read from disk) equals `computed`.
///
/// Builds made by `cargo fuzz` (`--cfg fuzzing`) accept any stored value
/// for the checksums of log fragments, SST blocks and SST footers, so the
/// fuzzer's mutations reach the decoders behind them instead of stopping
/// at the checksum. Every other build compares.
#[inline]
pub fn checksum_matches(computed: u32, stored: u32) -> bool {
    cfg!(fuzzing) || computed == stored
}

/// Checksum of the concatenation of `parts`, without copying them.
pub fn checksum_parts(parts: &[&[u8]]) -> u32 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(p);
    }
    h.digest() as u32
}

/// Writes `v` as a LEB128 varint at the start of `out`; returns its
/// length. For callers that build a header in place, without a `Vec`.
#[inline]
pub fn encode_varint64(out: &mut [u8; MAX_VARINT64_LEN], mut v: u64) -> usize {
    let mut n = 0;
    for b in out.iter_mut() {
        n += 1;
        if v < 0x80 {
            *b = v as u8;
            break;
        }
        *b = (v as u8) | 0x80;
        v >>= 7;
    }
    n
}

/// Appends `v` as a LEB128 varint.
#[inline]
pub fn put_varint64(out: &mut Vec<u8>, v: u64) {
    let mut b = [0u8; MAX_VARINT64_LEN];
    let n = encode_varint64(&mut b, v);
    out.extend_from_slice(b.get(..n).unwrap_or_default());
}

/// Appends `v` as a LEB128 varint.
#[inline]
pub fn put_varint32(out: &mut Vec<u8>, v: u32) {
    put_varint64(out, u64::from(v));
}

#[cfg(test)]
/// Encoded length of `v` as a varint.
#[inline]
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends `v` as 4 little-endian bytes.
#[inline]
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as 8 little-endian bytes.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a varint length followed by the bytes.
#[inline]
pub fn put_length_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    put_varint64(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A decoding failure inside one buffer: where and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset inside the decoded buffer where the failing item starts.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl DecodeError {
    /// Converts to [`crate::Error::Corruption`], `base` being the offset of
    /// the decoded buffer in `file`.
    pub fn into_error(self, file: &std::path::Path, base: u64) -> crate::Error {
        crate::Error::corruption(file, base + self.offset as u64, self.reason)
    }
}

/// A bounds-checked reader over a byte slice.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    /// Current offset from the start of the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// True when everything was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// An error at the current position.
    pub fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason,
        }
    }

    /// Reads `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.error(what))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| self.error(what))?;
        self.pos = end;
        Ok(s)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.error(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.bytes(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a LEB128 varint of at most 64 bits, in its minimal encoding
    /// (the one [`put_varint64`] writes): overlong encodings are refused.
    pub fn varint64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut result: u64 = 0;
        for i in 0..MAX_VARINT64_LEN {
            let Some(&b) = self.data.get(self.pos) else {
                self.pos = start;
                return Err(self.error(what));
            };
            self.pos += 1;
            let shift = 7 * i as u32;
            if i == MAX_VARINT64_LEN - 1 && b > 1 {
                self.pos = start;
                return Err(self.error(what));
            }
            result |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // Minimal encodings only: a last byte of 0 after others
                // (`0x80 0x00` for 0) is never written, so it is damage.
                if b == 0 && i > 0 {
                    self.pos = start;
                    return Err(self.error(what));
                }
                return Ok(result);
            }
        }
        self.pos = start;
        Err(self.error(what))
    }

    /// Reads a varint that must fit in `u32`.
    pub fn varint32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let start = self.pos;
        let v = self.varint64(what)?;
        u32::try_from(v).map_err(|_| DecodeError {
            offset: start,
            reason: what,
        })
    }

    /// Reads a varint length and checks it against what is left, then
    /// returns that many bytes. Nothing is allocated from an unchecked length.
    pub fn length_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let n = self.varint64(what)?;
        if n > self.remaining() as u64 {
            self.pos = start;
            return Err(self.error(what));
        }
        self.bytes(n as usize, what)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Both xxh3-64 implementations give the same value at every length
    /// class (short, medium, long, several blocks of the long loop).
    #[test]
    fn checksum_is_xxh3_64_of_both_crates() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in (0..300).chain([1000, 1023, 1024, 1025, 4095, 4096, 4097, 5000]) {
            for start in [0, 1, 7] {
                let d = data
                    .get(start..(start + len).min(data.len()))
                    .unwrap_or_default();
                assert_eq!(
                    checksum(d),
                    xxhash_rust::xxh3::xxh3_64(d) as u32,
                    "len {len} start {start}"
                );
                assert_eq!(checksum(d), checksum_parts(&[d]), "len {len}");
            }
        }
    }

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 32, u64::MAX] {
            let mut b = Vec::new();
            put_varint64(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut c = Cursor::new(&b);
            assert_eq!(c.varint64("v").unwrap(), v);
            assert!(c.is_empty());
        }
    }

    #[test]
    fn varint_rejects_overlong_and_truncated() {
        let mut c = Cursor::new(&[0xff; 11]);
        assert!(c.varint64("v").is_err());
        let mut c = Cursor::new(&[0x80, 0x80]);
        assert!(c.varint64("v").is_err());
        // Overlong (non-minimal) encodings.
        for b in [&[0x80u8, 0x00][..], &[0x81, 0x80, 0x00], &[0xff, 0x00]] {
            let mut c = Cursor::new(b);
            assert!(c.varint64("v").is_err(), "{b:?}");
            assert_eq!(c.position(), 0);
        }
        let mut c = Cursor::new(&[0x00]);
        assert_eq!(c.varint64("v").unwrap(), 0);
        // 10th byte may only carry one bit.
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(c.varint64("v").is_err());
    }

    #[test]
    fn length_prefixed_checks_length_before_use() {
        let mut b = Vec::new();
        put_varint64(&mut b, 1 << 40);
        b.extend_from_slice(b"abc");
        let mut c = Cursor::new(&b);
        let e = c.length_prefixed("len").unwrap_err();
        assert_eq!(e.offset, 0);
    }
}
