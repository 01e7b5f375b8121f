//! The range-deletion block of an SST (format version 4): the file's range
//! tombstones, fragmented (`lightning_compaction::range_del`).
//!
//! Contents (stored with the usual block trailer, never compressed;
//! docs/format.md, "Range-deletion block"):
//!
//! ```text
//! fragment_count: varint
//! fragment_count × (start: lp-bytes, end: lp-bytes,
//!                   seq_count: varint, seq_count × seq: varint)
//! ```
//!
//! Fragments are in key order and disjoint, `start < end`, keys at most
//! `MAX_KEY_SIZE` bytes, sequence numbers strictly descending and at most
//! `MAX_SEQUENCE`. The decoder proves all of it or fails.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use lightning_compaction::{Fragment, FragmentedTombstones};

use crate::coding::{put_length_prefixed, put_varint64, Cursor, DecodeError};
use crate::key::MAX_SEQUENCE;
use crate::options::MAX_KEY_SIZE;

/// Appends the encoded block contents of `set`.
pub(crate) fn encode(set: &FragmentedTombstones, out: &mut Vec<u8>) {
    put_varint64(out, set.fragments().len() as u64);
    for f in set.fragments() {
        put_length_prefixed(out, &f.start);
        put_length_prefixed(out, &f.end);
        put_varint64(out, f.seqs.len() as u64);
        for &s in &f.seqs {
            put_varint64(out, s);
        }
    }
}

/// Decodes block contents; errors carry the offset inside `buf`.
pub(crate) fn decode(buf: &[u8]) -> Result<FragmentedTombstones, DecodeError> {
    let mut c = Cursor::new(buf);
    let n = c.varint64("bad range-deletion fragment count")?;
    // Each fragment takes at least 4 bytes: do not trust `n` for the
    // allocation.
    let mut fragments = Vec::with_capacity((n as usize).min(buf.len() / 4));
    for _ in 0..n {
        let at = c.position();
        let start = c.length_prefixed("range-deletion start runs past the block")?;
        let end = c.length_prefixed("range-deletion end runs past the block")?;
        if start.len() > MAX_KEY_SIZE || end.len() > MAX_KEY_SIZE {
            return Err(DecodeError {
                offset: at,
                reason: "range-deletion key longer than MAX_KEY_SIZE",
            });
        }
        let k = c.varint64("bad range-deletion sequence count")?;
        let mut seqs = Vec::with_capacity((k as usize).min(c.remaining()));
        for _ in 0..k {
            let s = c.varint64("bad range-deletion sequence number")?;
            if s > MAX_SEQUENCE {
                return Err(DecodeError {
                    offset: at,
                    reason: "range-deletion sequence number above the 56-bit range",
                });
            }
            seqs.push(s);
        }
        fragments.push((
            at,
            Fragment {
                start: start.to_vec(),
                end: end.to_vec(),
                seqs,
            },
        ));
    }
    if !c.is_empty() {
        return Err(c.error("bytes left over after the range-deletion fragments"));
    }
    let offsets: Vec<usize> = fragments.iter().map(|(at, _)| *at).collect();
    FragmentedTombstones::from_fragments(fragments.into_iter().map(|(_, f)| f).collect()).map_err(
        |e| DecodeError {
            offset: offsets.get(e.index).copied().unwrap_or(0),
            reason: e.reason,
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use lightning_compaction::RangeTombstone;

    fn sample() -> FragmentedTombstones {
        FragmentedTombstones::new([
            RangeTombstone {
                start: b"a".to_vec(),
                end: b"m".to_vec(),
                seq: 7,
            },
            RangeTombstone {
                start: b"f".to_vec(),
                end: b"z".to_vec(),
                seq: 300,
            },
        ])
    }

    #[test]
    fn round_trip_and_every_truncation_fails() {
        let set = sample();
        let mut b = Vec::new();
        encode(&set, &mut b);
        assert_eq!(decode(&b).unwrap(), set);
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_err(), "len {n}");
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        let mut empty = Vec::new();
        encode(&FragmentedTombstones::empty(), &mut empty);
        assert!(decode(&empty).unwrap().is_empty());
    }

    #[test]
    fn every_flipped_byte_fails_or_decodes_to_a_valid_set() {
        let mut b = Vec::new();
        encode(&sample(), &mut b);
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut d = b.clone();
                d[i] ^= 1 << bit;
                // The block checksum catches flips on disk; the decoder
                // alone must still never accept an invalid set.
                if let Ok(set) = decode(&d) {
                    assert!(FragmentedTombstones::from_fragments(set.fragments().to_vec()).is_ok());
                }
            }
        }
    }
}
