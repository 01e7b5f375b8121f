//! The bloom filter over the distinct user keys of a file.
//!
//! Contents: `bits: m bytes (m >= 8) ‖ num_probes: u8 (1..=30)`. Probe `j`
//! of a key sets bit `h % (8m)` where `h` starts at `xxh3_64(user_key)` and
//! advances by `h.rotate_right(17)` (wrapping). A reader answers "maybe"
//! for every key the builder was given (no false negatives).
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64;

use crate::coding::DecodeError;

/// Collects user-key hashes and builds the filter block contents.
#[derive(Debug)]
pub(crate) struct FilterBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

/// Probe count for `bits_per_key`: `clamp(round(bpk · ln 2), 1, 30)`.
pub(crate) fn num_probes_for(bits_per_key: u32) -> u8 {
    (f64::from(bits_per_key) * std::f64::consts::LN_2)
        .round()
        .clamp(1.0, 30.0) as u8
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
        self.hashes.push(xxh3_64(user_key));
    }

    /// Number of keys added.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// The filter block contents.
    pub fn finish(&self) -> Vec<u8> {
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

/// A decoded filter block.
#[derive(Debug, Clone)]
pub(crate) struct FilterReader {
    bits: Bytes,
    num_probes: u8,
}

impl FilterReader {
    /// Bytes the filter occupies.
    pub(crate) fn size(&self) -> usize {
        self.bits.len()
    }

    /// Validates filter contents: at least 8 bytes of bits, 1..=30 probes.
    pub fn new(contents: Bytes) -> Result<Self, DecodeError> {
        let n = contents.len();
        if n < 9 {
            return Err(DecodeError {
                offset: 0,
                reason: "filter block shorter than 9 bytes",
            });
        }
        let num_probes = contents.get(n - 1).copied().unwrap_or(0);
        if !(1..=30).contains(&num_probes) {
            return Err(DecodeError {
                offset: n - 1,
                reason: "filter probe count outside 1..=30",
            });
        }
        Ok(FilterReader {
            bits: contents.slice(..n - 1),
            num_probes,
        })
    }

    /// Size of the bit array in bytes.
    pub fn num_bytes(&self) -> usize {
        self.bits.len()
    }

    /// Number of probes per key.
    pub fn num_probes(&self) -> u8 {
        self.num_probes
    }

    /// False only when `user_key` was certainly not added.
    #[inline]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        let nbits = 8 * self.bits.len() as u64;
        let mut h = xxh3_64(user_key);
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_low_fp_rate() {
        let mut b = FilterBuilder::new(10);
        let n = 20_000u32;
        for i in 0..n {
            b.add(format!("key-{i}").as_bytes());
        }
        assert_eq!(b.len(), n as usize);
        let contents = b.finish();
        assert_eq!(contents.len(), 25_000 + 1);
        assert_eq!(*contents.last().unwrap(), 7);
        let f = FilterReader::new(Bytes::from(contents)).unwrap();
        for i in 0..n {
            assert!(f.may_contain(format!("key-{i}").as_bytes()));
        }
        let fp = (0..100_000u32)
            .filter(|i| f.may_contain(format!("absent-{i}").as_bytes()))
            .count();
        let rate = fp as f64 / 100_000.0;
        assert!(rate < 0.02, "false-positive rate {rate}");
    }

    #[test]
    fn round_trip_small_and_bad_contents() {
        let mut b = FilterBuilder::new(1);
        b.add(b"");
        let c = b.finish();
        assert_eq!(c.len(), 9);
        let f = FilterReader::new(Bytes::from(c)).unwrap();
        assert_eq!(f.num_probes(), 1);
        assert_eq!(f.num_bytes(), 8);
        assert!(f.may_contain(b""));
        assert!(FilterReader::new(Bytes::from_static(&[0; 8])).is_err());
        assert!(FilterReader::new(Bytes::from_static(&[0; 9])).is_err());
        assert!(FilterReader::new(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 31])).is_err());
        assert_eq!(num_probes_for(64), 30);
        assert_eq!(num_probes_for(10), 7);
    }
}
