//! The bloom filter over the distinct user keys of a file.
//!
//! Two layouts, chosen by the table's format version (`docs/format.md`):
//!
//! - **Cache-local** (format version 2, written by this build): the bits are
//!   cut into 512-bit lines and every probe of a key falls in one line, so a
//!   lookup touches one cache line of the filter. Contents:
//!   `zero padding: p bytes ‖ bits: 64·L bytes ‖ num_probes: u8 (1..=30) ‖
//!   p: u8 (0..=63)`. The writer picks `p` so that the bits start at a file
//!   offset that is a multiple of 64 (a memory-mapped line is then one
//!   hardware cache line). For `h = xxh3_64(user_key)`: line
//!   `(h >> 32) · L >> 32`; then, starting from `g = h as u32`, each probe
//!   sets bit `g >> 23` of the line and advances `g = g · 0x9E3779B9`
//!   (wrapping).
//! - **Probed** (format version 1): `bits: m bytes (m >= 8) ‖ num_probes: u8
//!   (1..=30)`. Probe `j` sets bit `h % (8m)` where `h` starts at
//!   `xxh3_64(user_key)` and advances by `h.rotate_right(17)` (wrapping).
//!   Read only; each probe may touch a different cache line.
//!
//! Bits are numbered least significant first within a byte. A reader
//! answers "maybe" for every key the builder was given (no false
//! negatives).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64;

use crate::coding::DecodeError;

/// Bytes in one cache-local line.
const LINE_BYTES: usize = 64;
/// Multiplier that derives the next probe of a cache-local filter.
const PROBE_MULTIPLIER: u32 = 0x9E37_79B9;

/// The hash a filter is probed with; compute it once per lookup and probe
/// every file's filter with it.
#[inline]
pub(crate) fn filter_hash(user_key: &[u8]) -> u64 {
    xxh3_64(user_key)
}

/// How the bits of a filter block are addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterFormat {
    /// Format version 1: probes anywhere in the bit array.
    Probed,
    /// Format version 2: every probe in one 64-byte line.
    CacheLocal,
}

impl FilterFormat {
    /// The layout tables of format `version` use.
    pub(crate) fn for_format_version(version: u32) -> Self {
        if version >= 2 {
            FilterFormat::CacheLocal
        } else {
            FilterFormat::Probed
        }
    }
}

/// Probe count of a format-1 filter: `clamp(round(bpk · ln 2), 1, 30)`.
#[cfg(test)]
pub(crate) fn num_probes_for(bits_per_key: u32) -> u8 {
    (f64::from(bits_per_key) * std::f64::consts::LN_2)
        .round()
        .clamp(1.0, 30.0) as u8
}

/// Probe count of a cache-local filter with `bits_per_key` bits per key:
/// the count with the lowest false-positive rate when keys fall in lines
/// as a Poisson process (slightly fewer probes than a classic bloom filter
/// wants, because crowded lines punish extra probes). At 10 bits per key:
/// 7 probes, 0.96 % false positives in theory.
pub(crate) fn cache_local_probes_for(bits_per_key: u32) -> u8 {
    const BEST: [u8; 31] = [
        1, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7, 8, 8, 9, 9, 10, 10, 10, 11, 11, 12, 12, 12, 13, 13, 13,
        14, 14, 14, 14,
    ];
    BEST.get(bits_per_key as usize).copied().unwrap_or(14)
}

/// Collects user-key hashes and builds the (cache-local) filter block
/// contents.
#[derive(Debug)]
pub(crate) struct FilterBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl FilterBuilder {
    /// A builder for `bits_per_key` (> 0) bits per key.
    pub fn new(bits_per_key: u32) -> Self {
        FilterBuilder {
            bits_per_key,
            hashes: Vec::new(),
        }
    }

    /// Adds one distinct user key (the caller skips repeats).
    pub fn add(&mut self, user_key: &[u8]) {
        self.hashes.push(filter_hash(user_key));
    }

    /// Number of keys added.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// The cache-local filter block contents for a block whose contents
    /// start at file offset `offset`: padded so that the bits start at a
    /// multiple of 64.
    pub fn finish(&self, offset: u64) -> Vec<u8> {
        let n = self.hashes.len() as u64;
        let bits = n * u64::from(self.bits_per_key);
        // Lines are addressed with a 32-bit multiply: at most 2^32 - 1
        // lines (256 GiB of filter), far beyond any table.
        let lines = bits
            .div_ceil(8 * LINE_BYTES as u64)
            .clamp(1, u64::from(u32::MAX));
        let pad = ((LINE_BYTES as u64 - offset % LINE_BYTES as u64) % LINE_BYTES as u64) as usize;
        let probes = cache_local_probes_for(self.bits_per_key);
        let len = lines as usize * LINE_BYTES;
        let mut out = vec![0u8; pad + len + 2];
        if let Some(area) = out.get_mut(pad..pad + len) {
            for &h in &self.hashes {
                let start = line_of(h, lines as u32) * LINE_BYTES;
                if let Some(line) = area.get_mut(start..start + LINE_BYTES) {
                    for b in line_bits(h, probes) {
                        if let Some(byte) = line.get_mut(b / 8) {
                            *byte |= 1 << (b % 8);
                        }
                    }
                }
            }
        }
        if let Some(tail) = out.get_mut(pad + len..) {
            tail.copy_from_slice(&[probes, pad as u8]);
        }
        out
    }

    /// Format-1 (probed) contents, kept to test that old files still read.
    #[cfg(test)]
    pub fn finish_probed(&self) -> Vec<u8> {
        let n = self.hashes.len() as u64;
        let m = (n * u64::from(self.bits_per_key)).div_ceil(8).max(8) as usize;
        let probes = num_probes_for(self.bits_per_key);
        let mut out = vec![0u8; m + 1];
        let nbits = 8 * m as u64;
        for &h0 in &self.hashes {
            let mut h = h0;
            let delta = h.rotate_right(17);
            for _ in 0..probes {
                let b = h % nbits;
                if let Some(byte) = out.get_mut((b / 8) as usize) {
                    *byte |= 1 << (b % 8);
                }
                h = h.wrapping_add(delta);
            }
        }
        if let Some(last) = out.last_mut() {
            *last = probes;
        }
        out
    }
}

/// The line of a cache-local filter with `lines` lines that hash `h` uses.
#[inline]
pub(crate) fn line_of(h: u64, lines: u32) -> usize {
    (((h >> 32) * u64::from(lines)) >> 32) as usize
}

/// The bits (0..512) within its line that hash `h` sets with `probes`
/// probes, in probe order.
#[inline]
pub(crate) fn line_bits(h: u64, probes: u8) -> impl Iterator<Item = usize> {
    let mut g = h as u32;
    (0..probes).map(move |_| {
        let b = (g >> 23) as usize;
        g = g.wrapping_mul(PROBE_MULTIPLIER);
        b
    })
}

/// A decoded filter block.
#[derive(Debug, Clone)]
pub(crate) struct FilterReader {
    /// The bit array (without padding and trailing bytes).
    bits: Bytes,
    num_probes: u8,
    format: FilterFormat,
}

impl FilterReader {
    /// Bytes the filter occupies.
    pub(crate) fn size(&self) -> usize {
        self.bits.len()
    }

    /// Validates filter contents of `layout`.
    ///
    /// Probed: at least 8 bytes of bits and 1..=30 probes. Cache-local: a
    /// padding length of at most 63 whose bytes are zero, a whole number
    /// (at least 1, below 2^32) of 64-byte lines and 1..=30 probes.
    pub fn new(contents: Bytes, layout: FilterFormat) -> Result<Self, DecodeError> {
        let n = contents.len();
        let err = |offset, reason| Err(DecodeError { offset, reason });
        match layout {
            FilterFormat::Probed => {
                if n < 9 {
                    return err(0, "filter block shorter than 9 bytes");
                }
                let num_probes = contents.get(n - 1).copied().unwrap_or(0);
                if !(1..=30).contains(&num_probes) {
                    return err(n - 1, "filter probe count outside 1..=30");
                }
                Ok(FilterReader {
                    bits: contents.slice(..n - 1),
                    num_probes,
                    format: layout,
                })
            }
            FilterFormat::CacheLocal => {
                if n < LINE_BYTES + 2 {
                    return err(0, "filter block shorter than one line and its 2 tail bytes");
                }
                let (num_probes, pad) = match contents.get(n - 2..) {
                    Some(&[p, pad]) => (p, usize::from(pad)),
                    _ => return err(n - 2, "filter block tail missing"),
                };
                if pad >= LINE_BYTES {
                    return err(n - 1, "filter padding of 64 bytes or more");
                }
                if !(1..=30).contains(&num_probes) {
                    return err(n - 2, "filter probe count outside 1..=30");
                }
                let Some(len) = (n - 2).checked_sub(pad) else {
                    return err(n - 1, "filter padding longer than the block");
                };
                if len == 0 || len % LINE_BYTES != 0 {
                    return err(pad, "filter bits are not a whole number of 64-byte lines");
                }
                if len / LINE_BYTES > u32::MAX as usize {
                    return err(pad, "filter has 2^32 lines or more");
                }
                if contents
                    .get(..pad)
                    .is_none_or(|p| p.iter().any(|&b| b != 0))
                {
                    return err(0, "filter padding is not zero");
                }
                Ok(FilterReader {
                    bits: contents.slice(pad..pad + len),
                    num_probes,
                    format: layout,
                })
            }
        }
    }

    /// Size of the bit array in bytes.
    pub fn num_bytes(&self) -> usize {
        self.bits.len()
    }

    /// Number of probes per key.
    pub fn num_probes(&self) -> u8 {
        self.num_probes
    }

    /// The layout of the bits.
    pub fn format(&self) -> FilterFormat {
        self.format
    }

    /// False only when `user_key` was certainly not added.
    #[cfg(any(test, feature = "testing"))]
    #[inline]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(filter_hash(user_key))
    }

    /// False only when no key whose [`filter_hash`] is `h` was added.
    #[inline]
    pub fn may_contain_hash(&self, h: u64) -> bool {
        match self.format {
            FilterFormat::CacheLocal => {
                let lines = (self.bits.len() / LINE_BYTES) as u32;
                let start = line_of(h, lines) * LINE_BYTES;
                let Some(line) = self.bits.get(start..start + LINE_BYTES) else {
                    return true;
                };
                line_bits(h, self.num_probes).all(|b| {
                    line.get(b / 8)
                        .is_some_and(|byte| byte & (1 << (b % 8)) != 0)
                })
            }
            FilterFormat::Probed => {
                let nbits = 8 * self.bits.len() as u64;
                let mut h = h;
                let delta = h.rotate_right(17);
                for _ in 0..self.num_probes {
                    let b = h % nbits;
                    match self.bits.get((b / 8) as usize) {
                        Some(byte) if byte & (1 << (b % 8)) != 0 => {}
                        _ => return false,
                    }
                    h = h.wrapping_add(delta);
                }
                true
            }
        }
    }

    /// Asks the CPU to start loading the line a probe for hash `h` reads,
    /// so that probing several files' filters overlaps their cache misses.
    /// A hint only: it never faults and changes no result.
    #[inline]
    pub fn prefetch_hash(&self, h: u64) {
        if self.format == FilterFormat::CacheLocal {
            let lines = (self.bits.len() / LINE_BYTES) as u32;
            if let Some(byte) = self.bits.get(line_of(h, lines) * LINE_BYTES) {
                crate::prefetch::prefetch_read(byte);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn fp_rate(f: &FilterReader) -> f64 {
        let fp = (0..100_000u32)
            .filter(|i| f.may_contain(format!("absent-{i}").as_bytes()))
            .count();
        fp as f64 / 100_000.0
    }

    #[test]
    fn cache_local_no_false_negatives_and_low_fp_rate() {
        let mut b = FilterBuilder::new(10);
        let n = 20_000u32;
        for i in 0..n {
            b.add(format!("key-{i}").as_bytes());
        }
        assert_eq!(b.len(), n as usize);
        for offset in [0u64, 1, 63, 64, 4097] {
            let contents = b.finish(offset);
            let pad = contents[contents.len() - 1] as usize;
            assert_eq!(
                (offset + pad as u64) % 64,
                0,
                "bits aligned at offset {offset}"
            );
            assert_eq!(contents.len(), pad + 391 * 64 + 2);
            assert_eq!(contents[contents.len() - 2], 7);
            let f = FilterReader::new(Bytes::from(contents), FilterFormat::CacheLocal).unwrap();
            assert_eq!(f.num_bytes(), 391 * 64);
            for i in 0..n {
                assert!(f.may_contain(format!("key-{i}").as_bytes()));
            }
            let rate = fp_rate(&f);
            // Theory: 0.96 %; a classic bloom filter: 0.82 %.
            assert!(rate < 0.0125, "false-positive rate {rate}");
            assert!(
                rate > 0.0,
                "a filter that rejects everything absent is suspicious"
            );
        }
    }

    #[test]
    fn probed_layout_still_reads() {
        let mut b = FilterBuilder::new(10);
        let n = 20_000u32;
        for i in 0..n {
            b.add(format!("key-{i}").as_bytes());
        }
        let contents = b.finish_probed();
        assert_eq!(contents.len(), 25_000 + 1);
        assert_eq!(*contents.last().unwrap(), 7);
        let f = FilterReader::new(Bytes::from(contents), FilterFormat::Probed).unwrap();
        for i in 0..n {
            assert!(f.may_contain(format!("key-{i}").as_bytes()));
        }
        assert!(fp_rate(&f) < 0.02);
    }

    #[test]
    fn round_trip_small_and_bad_contents() {
        let mut b = FilterBuilder::new(1);
        b.add(b"");
        let c = b.finish_probed();
        assert_eq!(c.len(), 9);
        let f = FilterReader::new(Bytes::from(c), FilterFormat::Probed).unwrap();
        assert_eq!(f.num_probes(), 1);
        assert_eq!(f.num_bytes(), 8);
        assert!(f.may_contain(b""));
        let probed =
            |c: &'static [u8]| FilterReader::new(Bytes::from_static(c), FilterFormat::Probed);
        assert!(probed(&[0; 8]).is_err());
        assert!(probed(&[0; 9]).is_err());
        assert!(probed(&[0, 0, 0, 0, 0, 0, 0, 0, 31]).is_err());
        assert_eq!(num_probes_for(64), 30);
        assert_eq!(num_probes_for(10), 7);

        let c = b.finish(0);
        assert_eq!(c.len(), 66);
        let f = FilterReader::new(Bytes::from(c.clone()), FilterFormat::CacheLocal).unwrap();
        assert!(f.may_contain(b""));
        assert_eq!(f.format(), FilterFormat::CacheLocal);
        let local = |c: Vec<u8>| FilterReader::new(Bytes::from(c), FilterFormat::CacheLocal);
        // Too short, bad probe count, padding too long, not whole lines,
        // padding not zero.
        assert!(local(vec![0; 65]).is_err());
        let mut bad = c.clone();
        bad[64] = 0;
        assert!(local(bad).is_err());
        let mut bad = c.clone();
        bad[65] = 64;
        assert!(local(bad).is_err());
        let mut bad = c.clone();
        bad[65] = 1;
        assert!(
            local(bad).is_err(),
            "63 bytes of bits after one byte of padding"
        );
        let mut bad = vec![1u8];
        bad.extend_from_slice(&c);
        let n = bad.len();
        bad[n - 1] = 1;
        assert!(local(bad.clone()).is_err(), "padding byte not zero");
        bad[0] = 0;
        assert!(local(bad).is_ok());
    }

    #[test]
    fn cache_local_probe_counts() {
        assert_eq!(cache_local_probes_for(0), 1);
        assert_eq!(cache_local_probes_for(1), 1);
        assert_eq!(cache_local_probes_for(10), 7);
        assert_eq!(cache_local_probes_for(30), 14);
        assert_eq!(cache_local_probes_for(64), 14);
    }

    #[test]
    fn every_line_is_used() {
        let mut b = FilterBuilder::new(10);
        for i in 0..10_000u32 {
            b.add(&i.to_le_bytes());
        }
        let c = b.finish(0);
        let lines = (c.len() - 2) / 64;
        let empty = c[..c.len() - 2]
            .chunks(64)
            .filter(|l| l.iter().all(|&x| x == 0))
            .count();
        assert!(empty * 100 < lines, "{empty} of {lines} lines unused");
    }
}
