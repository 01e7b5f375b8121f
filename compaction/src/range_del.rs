//! Range tombstones, fragmented.
//!
//! A range tombstone `[start, end) @ seq` deletes every version of every
//! user key `k` with `start <= k < end` whose sequence number is below
//! `seq`; it hides nothing from a reader at a sequence number below `seq`.
//! So a version `(k, s)` is deleted for a reader at `r` exactly when some
//! tombstone covering `k` has a sequence number in `(s, r]`. That is the
//! whole rule: reads and compaction both apply it, whatever file or
//! memtable the tombstone and the version live in.
//!
//! Overlapping tombstones are kept **fragmented** (RocksDB's
//! `FragmentedRangeTombstoneList`): the key space is cut at every start and
//! end, and each piece that any tombstone covers becomes one [`Fragment`]
//! holding the sequence numbers of all tombstones covering it. Fragments
//! are disjoint and sorted, so "which tombstones cover `k`" is one binary
//! search, and the answer for a reader is the first of the fragment's
//! sequence numbers (newest first) that the reader may see.
//!
//! Invariants of a [`FragmentedTombstones`] (checked by
//! [`FragmentedTombstones::from_fragments`], kept by every constructor):
//! every fragment has `start < end` and at least one sequence number, its
//! sequence numbers are strictly descending, and each fragment ends at or
//! before the start of the next.

use std::cmp::Ordering;

/// One range deletion: every version below `seq` of every key in
/// `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeTombstone {
    /// First user key deleted (inclusive).
    pub start: Vec<u8>,
    /// End of the range (exclusive).
    pub end: Vec<u8>,
    /// Sequence number of the deletion.
    pub seq: u64,
}

/// A piece of the key space covered by one or more tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// First user key of the piece (inclusive).
    pub start: Vec<u8>,
    /// End of the piece (exclusive).
    pub end: Vec<u8>,
    /// Sequence numbers of the tombstones covering the piece, strictly
    /// descending (newest first), never empty.
    pub seqs: Vec<u64>,
}

impl Fragment {
    /// True when `key` lies in `[start, end)`.
    #[inline]
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && key < self.end.as_slice()
    }

    /// The newest sequence number a reader at `read_seq` may see, if any.
    #[inline]
    pub fn visible_seq(&self, read_seq: u64) -> Option<u64> {
        let i = self.seqs.partition_point(|&s| s > read_seq);
        self.seqs.get(i).copied()
    }

    /// The oldest sequence number above `seq`: the tombstone that deletes a
    /// version at `seq` with the least reason, if any.
    #[inline]
    pub fn oldest_above(&self, seq: u64) -> Option<u64> {
        let i = self.seqs.partition_point(|&s| s > seq);
        i.checked_sub(1).and_then(|i| self.seqs.get(i)).copied()
    }
}

/// Why a list of fragments is not a valid [`FragmentedTombstones`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentError {
    /// Index of the offending fragment.
    pub index: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl std::fmt::Display for FragmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "range tombstone fragment {}: {}",
            self.index, self.reason
        )
    }
}

impl std::error::Error for FragmentError {}

/// Disjoint, sorted fragments of a set of range tombstones (see the
/// module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragmentedTombstones {
    fragments: Vec<Fragment>,
    /// The first 8 bytes of each fragment's end (big-endian, zero-padded):
    /// a lookup's binary search compares these, in one array, and reads a
    /// fragment's key only when they tie.
    end_prefixes: Vec<u64>,
    /// Which parts of the key space the fragments touch, for sets large
    /// enough to be worth it: most lookups of keys no tombstone covers
    /// end at one bit.
    cover: Option<CoverFilter>,
}

/// A bitmap over the key prefixes from the first fragment's start to the
/// last one's end, cut into `2^COVER_BITS_LOG2` buckets of `2^shift`
/// prefixes: a bucket's bit is set when some fragment's prefixes reach
/// into it. A key whose bucket is clear lies in no fragment (if `key` is
/// in `[start, end)` then `prefix(start) <= prefix(key) <= prefix(end)`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CoverFilter {
    lo: u64,
    hi: u64,
    shift: u32,
    bits: Vec<u64>,
}

/// Buckets of a [`CoverFilter`]: 32 Ki bits, 4 KiB.
const COVER_BITS_LOG2: u32 = 15;
/// Sets with fewer fragments are searched without a filter.
const COVER_MIN_FRAGMENTS: usize = 16;

impl CoverFilter {
    fn build(fragments: &[Fragment]) -> Option<CoverFilter> {
        if fragments.len() < COVER_MIN_FRAGMENTS {
            return None;
        }
        let lo = key_prefix(&fragments.first()?.start);
        let hi = key_prefix(&fragments.last()?.end);
        let span = hi.saturating_sub(lo);
        let shift = (64 - span.leading_zeros()).saturating_sub(COVER_BITS_LOG2);
        let nbits = ((span >> shift) + 1) as usize;
        let mut bits = vec![0u64; nbits.div_ceil(64)];
        // Fragments are sorted, so every prefix lies in `lo..=hi` and every
        // bucket in the array; the saturating and checked forms only make
        // that impossible to get wrong into a panic.
        for f in fragments {
            let a = (key_prefix(&f.start).saturating_sub(lo) >> shift) as usize;
            let b = (key_prefix(&f.end).saturating_sub(lo) >> shift) as usize;
            for bucket in a..=b {
                if let Some(w) = bits.get_mut(bucket / 64) {
                    *w |= 1 << (bucket % 64);
                }
            }
        }
        Some(CoverFilter {
            lo,
            hi,
            shift,
            bits,
        })
    }

    /// False when no fragment can hold a key of prefix `p`.
    #[inline]
    fn may_cover(&self, p: u64) -> bool {
        if p < self.lo || p > self.hi {
            return false;
        }
        let bucket = ((p - self.lo) >> self.shift) as usize;
        self.bits
            .get(bucket / 64)
            .is_some_and(|w| w >> (bucket % 64) & 1 == 1)
    }
}

/// The first 8 bytes of `key` as a big-endian number, zero-padded: prefix
/// order agrees with key order (equal prefixes decide nothing).
#[inline]
fn key_prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

impl FragmentedTombstones {
    /// No tombstones.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Fragments `tombstones` (any order, overlapping or not; empty ranges
    /// `start >= end` are ignored). Fragments next to each other with the
    /// same sequence numbers are joined. Costs `O(n log n)` plus the size
    /// of the result, which is quadratic at worst (nested ranges).
    pub fn new(tombstones: impl IntoIterator<Item = RangeTombstone>) -> Self {
        let mut ts: Vec<RangeTombstone> =
            tombstones.into_iter().filter(|t| t.start < t.end).collect();
        if ts.is_empty() {
            return Self::default();
        }
        ts.sort_unstable_by(|a, b| a.start.cmp(&b.start));
        let mut bounds: Vec<&[u8]> = ts
            .iter()
            .flat_map(|t| [t.start.as_slice(), t.end.as_slice()])
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut fragments: Vec<Fragment> = Vec::new();
        // The tombstones covering the current piece: (end, seq).
        let mut active: Vec<(&[u8], u64)> = Vec::new();
        let mut next = 0;
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            while let Some(t) = ts.get(next).filter(|t| t.start.as_slice() <= lo) {
                active.push((t.end.as_slice(), t.seq));
                next += 1;
            }
            active.retain(|&(end, _)| end > lo);
            if active.is_empty() {
                continue;
            }
            let mut seqs: Vec<u64> = active.iter().map(|&(_, s)| s).collect();
            seqs.sort_unstable_by(|a, b| b.cmp(a));
            seqs.dedup();
            match fragments.last_mut() {
                Some(f) if f.end.as_slice() == lo && f.seqs == seqs => f.end = hi.to_vec(),
                _ => fragments.push(Fragment {
                    start: lo.to_vec(),
                    end: hi.to_vec(),
                    seqs,
                }),
            }
        }
        Self::from_sorted(fragments)
    }

    /// The set of `fragments`, which keep the invariants.
    fn from_sorted(fragments: Vec<Fragment>) -> Self {
        let end_prefixes = fragments.iter().map(|f| key_prefix(&f.end)).collect();
        let cover = CoverFilter::build(&fragments);
        FragmentedTombstones {
            fragments,
            end_prefixes,
            cover,
        }
    }

    /// Fragments as read from a file: checked against the invariants, not
    /// changed.
    pub fn from_fragments(fragments: Vec<Fragment>) -> Result<Self, FragmentError> {
        for (index, f) in fragments.iter().enumerate() {
            let bad = |reason| Err(FragmentError { index, reason });
            if f.start >= f.end {
                return bad("start is not below end");
            }
            if f.seqs.is_empty() {
                return bad("no sequence number");
            }
            if f.seqs.windows(2).any(|w| w[0] <= w[1]) {
                return bad("sequence numbers are not strictly descending");
            }
            if index > 0 && fragments[index - 1].end > f.start {
                return bad("overlaps or precedes the fragment before it");
            }
        }
        Ok(Self::from_sorted(fragments))
    }

    /// All the tombstones of several sets, fragmented together.
    pub fn merge<'a>(sets: impl IntoIterator<Item = &'a FragmentedTombstones>) -> Self {
        Self::new(sets.into_iter().flat_map(|s| s.tombstones()))
    }

    /// True when there are no tombstones.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.fragments.is_empty()
    }

    /// The fragments, in key order.
    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    /// Number of (fragment, sequence number) pairs: what a file stores.
    pub fn len(&self) -> usize {
        self.fragments.iter().map(|f| f.seqs.len()).sum()
    }

    /// The fragments as tombstones, one per (fragment, sequence number),
    /// in key order. Fragmenting them again gives the same set.
    pub fn tombstones(&self) -> impl Iterator<Item = RangeTombstone> + '_ {
        self.fragments.iter().flat_map(|f| {
            f.seqs.iter().map(move |&seq| RangeTombstone {
                start: f.start.clone(),
                end: f.end.clone(),
                seq,
            })
        })
    }

    /// The fragment holding `key`, if any: the cover filter first, then a
    /// binary search for the first fragment ending after `key`, on the end
    /// prefixes.
    #[inline]
    pub fn fragment_at(&self, key: &[u8]) -> Option<&Fragment> {
        self.index_at(key).and_then(|i| self.fragments.get(i))
    }

    /// The index of the fragment holding `key`, if any.
    #[inline]
    fn index_at(&self, key: &[u8]) -> Option<usize> {
        let kp = key_prefix(key);
        if self.cover.as_ref().is_some_and(|c| !c.may_cover(kp)) {
            return None;
        }
        let ends_by = |i: usize| match self.end_prefixes[i].cmp(&kp) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.fragments[i].end.as_slice() <= key,
        };
        let (mut lo, mut hi) = (0, self.end_prefixes.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ends_by(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.fragments
            .get(lo)
            .is_some_and(|f| f.start.as_slice() <= key)
            .then_some(lo)
    }

    /// The newest sequence number, at most `read_seq`, of a tombstone
    /// covering `key`; 0 when none does (sequence number 0 deletes
    /// nothing: no version is older).
    #[inline]
    pub fn max_covering_seq(&self, key: &[u8], read_seq: u64) -> u64 {
        self.fragment_at(key)
            .and_then(|f| f.visible_seq(read_seq))
            .unwrap_or(0)
    }

    /// True when the version `(key, seq)` is deleted for a reader at
    /// `read_seq`: a tombstone covering `key` has a sequence number in
    /// `(seq, read_seq]`.
    #[inline]
    pub fn deletes(&self, key: &[u8], seq: u64, read_seq: u64) -> bool {
        self.max_covering_seq(key, read_seq) > seq
    }

    /// The part of the set inside `[lo, hi)` (`None`: unbounded on that
    /// side).
    pub fn clip(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Self {
        let mut fragments = Vec::new();
        for f in &self.fragments {
            let start = match lo {
                Some(lo) if lo > f.start.as_slice() => lo,
                _ => f.start.as_slice(),
            };
            let end = match hi {
                Some(hi) if hi < f.end.as_slice() => hi,
                _ => f.end.as_slice(),
            };
            if start < end {
                fragments.push(Fragment {
                    start: start.to_vec(),
                    end: end.to_vec(),
                    seqs: f.seqs.clone(),
                });
            }
        }
        Self::from_sorted(fragments)
    }

    /// What compaction keeps: per fragment, the newest sequence number of
    /// each snapshot stripe (an older one in the same stripe deletes
    /// nothing the newer one does not, for every reader); on the
    /// bottommost level also none of the earliest stripe (every version it
    /// deletes is dropped by the same compaction, and none is older).
    /// `snapshots` must be ascending (see [`crate::merge::GcPolicy`]).
    pub fn collect_garbage(&self, snapshots: &[u64], bottommost: bool) -> Self {
        let stripe = |s: u64| snapshots.partition_point(|&x| x < s);
        let mut fragments: Vec<Fragment> = Vec::new();
        for f in &self.fragments {
            let mut seqs: Vec<u64> = Vec::with_capacity(f.seqs.len());
            let mut last: Option<usize> = None;
            for &s in &f.seqs {
                let st = stripe(s);
                if last == Some(st) || (bottommost && st == 0) {
                    continue;
                }
                last = Some(st);
                seqs.push(s);
            }
            if seqs.is_empty() {
                continue;
            }
            match fragments.last_mut() {
                Some(p) if p.end == f.start && p.seqs == seqs => p.end = f.end.clone(),
                _ => fragments.push(Fragment {
                    start: f.start.clone(),
                    end: f.end.clone(),
                    seqs,
                }),
            }
        }
        Self::from_sorted(fragments)
    }

    /// True when compaction would drop every version a file holds: each
    /// version of each key from `first` to `last` (inclusive, or
    /// exclusive with `!last_inclusive`) with a sequence number in
    /// `[min_seq, max_seq]` is deleted by a tombstone of the same snapshot
    /// stripe. Then the file need not be read at all (RocksDB drops such
    /// files too). `snapshots` ascending, as [`crate::merge::GcPolicy`].
    pub fn deletes_all(
        &self,
        first: &[u8],
        last: &[u8],
        last_inclusive: bool,
        min_seq: u64,
        max_seq: u64,
        snapshots: &[u64],
    ) -> bool {
        let stripe = |s: u64| snapshots.partition_point(|&x| x < s);
        let st = stripe(min_seq);
        if stripe(max_seq) != st {
            return false;
        }
        let Some(mut i) = self.index_at(first) else {
            return false;
        };
        let mut at: &[u8] = first;
        while let Some(f) = self.fragments.get(i) {
            let qualifies = f.seqs.iter().any(|&t| t > max_seq && stripe(t) == st);
            if f.start.as_slice() > at || !qualifies {
                return false;
            }
            let end = f.end.as_slice();
            if last < end || (!last_inclusive && last == end) {
                return true;
            }
            at = end;
            i += 1;
        }
        false
    }

    /// The smallest start and largest end of the set, if any.
    pub fn bounds(&self) -> Option<(&[u8], &[u8])> {
        let first = self.fragments.first()?;
        let last = self.fragments.last()?;
        Some((first.start.as_slice(), last.end.as_slice()))
    }

    /// The largest sequence number in the set (0 when empty).
    pub fn max_seq(&self) -> u64 {
        self.fragments
            .iter()
            .filter_map(|f| f.seqs.first())
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// The smallest sequence number in the set (0 when empty).
    pub fn min_seq(&self) -> u64 {
        self.fragments
            .iter()
            .filter_map(|f| f.seqs.last())
            .copied()
            .min()
            .unwrap_or(0)
    }

    /// A cursor for keys visited in ascending order (a merge): each lookup
    /// moves forward from the previous one instead of searching again.
    pub fn cursor(&self) -> ForwardCursor<'_> {
        ForwardCursor { set: self, at: 0 }
    }
}

/// Looks up fragments for ascending keys (see
/// [`FragmentedTombstones::cursor`]).
#[derive(Debug, Clone)]
pub struct ForwardCursor<'a> {
    set: &'a FragmentedTombstones,
    at: usize,
}

impl<'a> ForwardCursor<'a> {
    /// The fragment holding `key`, which must not be below the key of the
    /// previous call (then the answer may be wrong; debug builds check).
    #[inline]
    pub fn fragment_at(&mut self, key: &[u8]) -> Option<&'a Fragment> {
        let frags = &self.set.fragments;
        while let Some(f) = frags.get(self.at) {
            match f.end.as_slice().cmp(key) {
                Ordering::Greater => break,
                _ => self.at += 1,
            }
        }
        debug_assert!(
            self.at == 0
                || frags
                    .get(self.at - 1)
                    .is_none_or(|f| f.end.as_slice() <= key),
            "ForwardCursor keys must ascend"
        );
        frags.get(self.at).filter(|f| f.start.as_slice() <= key)
    }
}

#[cfg(test)]
mod tests;
