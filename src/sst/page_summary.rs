//! [`PageSummary`]: a search aid for a pinned index page, built in memory
//! when the page is pinned; nothing of it is stored in the file.
//!
//! An index page has a restart point at every entry, so a seek in it is a
//! binary search in which every probe reads a restart offset, decodes an
//! entry header and compares keys: about seven dependent probes for a page
//! of 100 entries, each a few cache lines apart. The summary keeps, for
//! every entry, 8 bytes of its user key packed in a `u64` (after the bytes
//! all keys of the page share), so the search runs over one small array of
//! integers and decodes a single entry, or a few when keys share those 8
//! bytes too.
//!
//! Invariants:
//! - Every user key of the page starts with `common`, because the page is
//!   sorted and `common` is the common prefix of its first and last user
//!   keys.
//! - `prefixes[i]` is the [`key_prefix`] of entry `i`'s user key after
//!   `common`, so `prefixes` is sorted, and `prefixes[i] < p` for the
//!   target's `p` proves entry `i` smaller than the target (see
//!   [`key_prefix`]); equal prefixes prove nothing and are settled by
//!   comparing whole keys.

use std::cmp::Ordering;

use crate::coding::DecodeError;
use crate::key::key_prefix;

/// The search summary of one index page (see the module documentation).
#[derive(Debug)]
pub(crate) struct PageSummary {
    common: Box<[u8]>,
    prefixes: Box<[u64]>,
}

impl PageSummary {
    /// The summary of a page whose entries have the user keys `keys`, in
    /// order; `None` for an empty page.
    pub(crate) fn build(keys: &[&[u8]]) -> Option<PageSummary> {
        let (first, last) = (keys.first()?, keys.last()?);
        let lcp = first
            .iter()
            .zip(last.iter())
            .take_while(|(a, b)| a == b)
            .count();
        let common: Box<[u8]> = first.get(..lcp)?.into();
        let prefixes = keys
            .iter()
            .map(|k| key_prefix(k.get(lcp..).unwrap_or_default()))
            .collect();
        Some(PageSummary { common, prefixes })
    }

    /// Heap bytes held, for the cache's pinned-memory charge.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.common.len() + self.prefixes.len() * 8
    }

    /// Requests every cache line of the packed prefixes (a hint; see
    /// [`crate::prefetch`]), before a search that will read some of them.
    pub(crate) fn prefetch(&self) {
        const PER_LINE: usize = 64 / std::mem::size_of::<u64>();
        for p in self.prefixes.iter().step_by(PER_LINE) {
            crate::prefetch::prefetch_read(p);
        }
        if let Some(last) = self.prefixes.last() {
            crate::prefetch::prefetch_read(last);
        }
    }

    /// Index of the first entry whose internal key is `>=` the target, an
    /// internal key with user key `uk`; the entry count when there is none.
    /// `cmp(i)` compares entry `i`'s key with the whole target; it is only
    /// called for entries whose packed prefix equals the target's.
    pub(crate) fn find(
        &self,
        uk: &[u8],
        mut cmp: impl FnMut(usize) -> Result<Ordering, DecodeError>,
    ) -> Result<usize, DecodeError> {
        let n = self.prefixes.len();
        let c = self.common.len();
        let head = uk.get(..c).unwrap_or(uk);
        match head.cmp(self.common.get(..head.len()).unwrap_or_default()) {
            Ordering::Less => return Ok(0),
            Ordering::Greater => return Ok(n),
            // A target that is a proper prefix of `common` is below every key.
            Ordering::Equal if head.len() < c => return Ok(0),
            Ordering::Equal => {}
        }
        let p = key_prefix(uk.get(c..).unwrap_or_default());
        let lo = self.prefixes.partition_point(|&q| q < p);
        let hi = lo
            + self
                .prefixes
                .get(lo..)
                .unwrap_or_default()
                .partition_point(|&q| q == p);
        // Entries in lo..hi share the target's packed prefix: binary search
        // them by whole key.
        let (mut l, mut h) = (lo, hi);
        while l < h {
            let mid = l + (h - l) / 2;
            if cmp(mid)? == Ordering::Less {
                l = mid + 1;
            } else {
                h = mid;
            }
        }
        Ok(l)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::key::{compare_internal, encode_internal_key, user_key, ValueKind};
    use crate::sst::block::{Block, BlockBuilder};

    fn page(keys: &[Vec<u8>]) -> Block {
        let mut b = BlockBuilder::new(1);
        for k in keys {
            b.add(k, b"handle");
        }
        Block::new(Bytes::copy_from_slice(b.finish()), 0, false).unwrap()
    }

    /// Sorted, distinct internal keys over user keys drawn from a tiny
    /// alphabet, so that long shared prefixes and equal packed prefixes
    /// are common.
    fn ikeys() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::btree_set((proptest::collection::vec(0u8..3, 0..14), 0u64..4), 1..60)
            .prop_map(|set| {
                let mut v: Vec<Vec<u8>> = set
                    .into_iter()
                    .map(|(uk, seq)| encode_internal_key(&uk, seq, ValueKind::Value))
                    .collect();
                v.sort_by(|a, b| compare_internal(a, b));
                v
            })
    }

    proptest! {
        #[test]
        fn finds_what_a_linear_scan_finds(
            keys in ikeys(),
            target_uk in proptest::collection::vec(0u8..4, 0..16),
            seq in 0u64..5,
        ) {
            let block = page(&keys).with_summary();
            let s = block.summary().unwrap();
            let uks: Vec<&[u8]> = keys.iter().map(|k| user_key(k)).collect();
            prop_assert_eq!(
                PageSummary::build(&uks).unwrap().prefixes.len(),
                s.prefixes.len()
            );
            let target = encode_internal_key(&target_uk, seq, ValueKind::Value);
            let want = keys
                .iter()
                .position(|k| compare_internal(k, &target) != Ordering::Less)
                .unwrap_or(keys.len());
            let got = s
                .find(&target_uk, |i| Ok(compare_internal(&keys[i], &target)))
                .unwrap();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_page_with_entries_between_restarts_gets_no_summary() {
        let mut b = BlockBuilder::new(2);
        for i in 0..4u8 {
            b.add(&encode_internal_key(&[i], 1, ValueKind::Value), b"v");
        }
        let block = Block::new(Bytes::copy_from_slice(b.finish()), 0, false)
            .unwrap()
            .with_summary();
        assert!(block.summary().is_none());
    }
}
