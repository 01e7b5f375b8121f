//! The user-facing iterator: MVCC visibility over a merged internal stream.
//!
//! [`Iter`] yields the newest version of each user key visible at its
//! sequence number, skipping tombstones and shadowed versions, within a key
//! range, forwards ([`Iterator`]) and backwards ([`DoubleEndedIterator`]).
//!
//! Each direction has its own cursor over its own merged internal iterator,
//! created on first use, so neither ever switches direction. The two ends
//! stop when they meet: the front yields only keys below the last key the
//! back yielded, and the other way round, so every key is yielded once.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use lightning_compaction::FragmentedTombstones;

use super::InternalIterator;
use crate::error::{Error, Result};
use crate::key::{encode_internal_key, parse_internal_key, SeqNo, ValueKind, MAX_SEQUENCE};
use crate::merge_operator::{fold, MergeOperator};
use crate::ttl::Expiry;

/// Creates a fresh merged internal iterator over the pinned sources.
pub(crate) type SourceFactory = Box<dyn Fn() -> Box<dyn InternalIterator> + Send + Sync>;

/// Reads the value an encoded blob reference points to (from the pinned
/// version's blob files).
pub(crate) type BlobResolver = Box<dyn Fn(&[u8]) -> Result<Bytes> + Send + Sync>;

/// An iterator over `(key, value)` pairs of a consistent view of the
/// database, in key order (or reverse order with `.rev()` / `next_back`).
///
/// It pins the memtables and files it reads: they stay readable, and their
/// files on disk, until the iterator is dropped. An error (corruption, I/O)
/// is yielded once as `Err` and ends the iteration.
pub struct Iter {
    make: SourceFactory,
    read_seq: SeqNo,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    front: Option<Box<dyn InternalIterator>>,
    back: Option<Box<dyn InternalIterator>>,
    /// Last key yielded from the front (the back must stay above it).
    /// A reused buffer: `front_has_last` says whether it holds a key.
    front_last: Vec<u8>,
    front_has_last: bool,
    /// Last key yielded from the back (the front must stay below it).
    back_last: Vec<u8>,
    back_has_last: bool,
    /// User key whose older versions the front cursor is skipping.
    front_skip: Vec<u8>,
    front_skipping: bool,
    /// The front cursor stands on the entry last yielded (so borrowed
    /// views of it stay valid); it steps past it at the next call.
    front_pending_step: bool,
    /// Resolves blob references; `None` when the pinned version has no
    /// blob file (a reference is then a dangling one).
    blobs: Option<BlobResolver>,
    /// The value last yielded by `next_ref` when it was read from a blob
    /// file or folded from merge operands (the borrowed view points here).
    front_blob: Bytes,
    /// The front's current key was folded from merge operands: its value
    /// is `front_blob`, its key `front_last`, and the cursor no longer
    /// stands on it.
    front_merged: bool,
    /// Folds merge operands (the keyspace's operator; `None`: a key with
    /// operands is an [`Error::Merge`]).
    merge: Option<Arc<dyn MergeOperator>>,
    /// `ReadOptions` flags its block reads run with (0: the defaults).
    read_flags: u8,
    /// Which timed values have expired for this iterator (read once, when
    /// it was made): an expired one is skipped like a tombstone.
    expiry: Expiry,
    /// The range tombstones of the pinned memtables and files (empty:
    /// none). A visible version they delete is skipped like a tombstone.
    range_dels: Vec<Arc<FragmentedTombstones>>,
    /// An error to yield before anything else (an iterator that could not
    /// be opened, see [`Iter::failed`]).
    pending: Option<Error>,
    done: bool,
}

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("read_seq", &self.read_seq)
            .field("lower", &self.lower)
            .field("upper", &self.upper)
            .finish_non_exhaustive()
    }
}

/// True when one of `sets` deletes the version of `key` at `seq` for a
/// reader at `read_seq`.
#[inline]
fn range_deleted(
    sets: &[Arc<FragmentedTombstones>],
    key: &[u8],
    seq: SeqNo,
    read_seq: SeqNo,
) -> bool {
    sets.iter().any(|t| t.deletes(key, seq, read_seq))
}

fn above_upper(upper: &Bound<Vec<u8>>, k: &[u8]) -> bool {
    match upper {
        Bound::Unbounded => false,
        Bound::Included(u) => k > u.as_slice(),
        Bound::Excluded(u) => k >= u.as_slice(),
    }
}

fn below_lower(lower: &Bound<Vec<u8>>, k: &[u8]) -> bool {
    match lower {
        Bound::Unbounded => false,
        Bound::Included(l) => k < l.as_slice(),
        Bound::Excluded(l) => k <= l.as_slice(),
    }
}

/// True when `kind` is a timed value that has expired under `expiry` (a
/// timed value too short to hold its time is not: reading it fails).
#[inline]
fn expired(kind: ValueKind, value: &[u8], expiry: Expiry) -> bool {
    kind == ValueKind::TimedValue
        && crate::ttl::split(value).is_some_and(|(_, at)| expiry.expired(at))
}

/// A timed value too short to hold its write time.
fn timed_too_short() -> Error {
    Error::Internal("timed value shorter than its write time in a merged stream".into())
}

/// A key of the merged stream without a valid trailer. Every source
/// checks its keys (block decoders report `Corruption` with the file and
/// offset), so this is a broken invariant, not damaged data.
fn corrupt_key() -> Error {
    Error::Internal("malformed internal key in a merged stream".into())
}

impl Iter {
    pub(crate) fn new(
        make: SourceFactory,
        read_seq: SeqNo,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        blobs: Option<BlobResolver>,
        range_dels: Vec<Arc<FragmentedTombstones>>,
    ) -> Self {
        let empty = match (&lower, &upper) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b))
            | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
            _ => false,
        };
        Iter {
            make,
            read_seq,
            lower,
            upper,
            front: None,
            back: None,
            front_last: Vec::new(),
            front_has_last: false,
            back_last: Vec::new(),
            back_has_last: false,
            front_skip: Vec::new(),
            front_skipping: false,
            front_pending_step: false,
            blobs,
            front_blob: Bytes::new(),
            front_merged: false,
            merge: None,
            read_flags: 0,
            expiry: Expiry::NEVER,
            range_dels,
            pending: None,
            done: empty,
        }
    }

    /// Sets the `ReadOptions` flags of this iterator's block reads.
    pub(crate) fn with_read_flags(mut self, flags: u8) -> Self {
        self.read_flags = flags;
        self
    }

    /// Sets which timed values this iterator treats as expired.
    pub(crate) fn with_expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// Sets the merge operator that folds the operands this iterator
    /// meets.
    pub(crate) fn with_merge_operator(mut self, op: Option<Arc<dyn MergeOperator>>) -> Self {
        self.merge = op;
        self
    }

    /// An iterator that yields `e` once and ends (for a read that fails
    /// before it starts, such as one on a dropped keyspace).
    pub(crate) fn failed(e: Error) -> Self {
        let mut it = Iter::new(
            Box::new(|| Box::new(crate::iter::merge::MergingIterator::new(Vec::new()))),
            0,
            Bound::Unbounded,
            Bound::Unbounded,
            None,
            Vec::new(),
        );
        it.pending = Some(e);
        it
    }

    /// The pending error, once (see [`Iter::failed`]).
    #[cold]
    fn take_pending(&mut self) -> Option<Error> {
        let e = self.pending.take()?;
        self.done = true;
        Some(e)
    }

    /// True when a range tombstone deletes the version of `key` at `seq`
    /// for this iterator's reader.
    #[inline]
    fn range_deleted(&self, key: &[u8], seq: SeqNo) -> bool {
        range_deleted(&self.range_dels, key, seq, self.read_seq)
    }

    /// The value of the entry `it` stands on: its own bytes, or for a blob
    /// reference the value read from the blob file.
    fn resolve(&self, kind: ValueKind, value: Bytes) -> Result<Bytes> {
        if kind == ValueKind::TimedValue {
            return match crate::ttl::split(&value) {
                Some((v, _)) => Ok(value.slice(..v.len())),
                None => Err(timed_too_short()),
            };
        }
        if kind != ValueKind::BlobIndex {
            return Ok(value);
        }
        match &self.blobs {
            Some(read) => read(&value),
            None => Err(Error::corruption(
                std::path::PathBuf::from("<blob reference>"),
                0,
                "blob reference in a version without blob files (a dangling reference)",
            )),
        }
    }

    /// The kind of the entry the front cursor stands on.
    fn front_kind(&self) -> ValueKind {
        self.front
            .as_ref()
            .and_then(|it| parse_internal_key(it.key()))
            .map_or(ValueKind::Value, |p| p.kind)
    }

    fn fail<T>(&mut self, e: Error) -> Option<Result<T>> {
        self.done = true;
        Some(Err(e))
    }

    /// Positions the front cursor on the next entry to yield and leaves it
    /// there; `None` at the end.
    fn advance_front(&mut self) -> Option<Result<()>> {
        if self.front.is_none() {
            let mut it = (self.make)();
            match &self.lower {
                Bound::Unbounded => it.seek_to_first(),
                Bound::Included(k) => {
                    it.seek(&encode_internal_key(k, MAX_SEQUENCE, ValueKind::FOR_SEEK))
                }
                Bound::Excluded(k) => {
                    it.seek(&encode_internal_key(k, MAX_SEQUENCE, ValueKind::FOR_SEEK));
                    self.front_skip.clear();
                    self.front_skip.extend_from_slice(k);
                    self.front_skipping = true;
                }
            }
            self.front = Some(it);
        }
        self.front_merged = false;
        let it = self.front.as_mut()?;
        if std::mem::take(&mut self.front_pending_step) {
            it.next();
        }
        loop {
            if !it.valid() {
                let st = it.status();
                self.done = true;
                return st.err().map(Err);
            }
            let Some(p) = parse_internal_key(it.key()) else {
                self.done = true;
                return Some(Err(corrupt_key()));
            };
            if self.front_skipping && p.user_key == self.front_skip.as_slice() {
                it.next();
                continue;
            }
            self.front_skipping = false;
            if above_upper(&self.upper, p.user_key)
                || (self.back_has_last && p.user_key >= self.back_last.as_slice())
            {
                self.done = true;
                return None;
            }
            if p.seq > self.read_seq {
                it.next();
                continue;
            }
            // The newest version visible to this read.
            self.front_skip.clear();
            self.front_skip.extend_from_slice(p.user_key);
            self.front_skipping = true;
            if p.kind == ValueKind::Delete
                || range_deleted(&self.range_dels, p.user_key, p.seq, self.read_seq)
                || expired(p.kind, it.value(), self.expiry)
            {
                it.next();
            } else if p.kind == ValueKind::Merge {
                self.front_last.clear();
                self.front_last.extend_from_slice(p.user_key);
                self.front_has_last = true;
                return Some(match self.fold_front() {
                    Ok(v) => {
                        self.front_blob = v;
                        self.front_merged = true;
                        Ok(())
                    }
                    Err(e) => {
                        self.done = true;
                        Err(e)
                    }
                });
            } else {
                self.front_last.clear();
                self.front_last.extend_from_slice(p.user_key);
                self.front_has_last = true;
                self.front_pending_step = true;
                return Some(Ok(()));
            }
        }
    }

    /// Folds the merge operands of the key in `front_last`, from the front
    /// cursor's entry (its newest visible version, an operand) down to the
    /// first version that is not one or that a range tombstone deletes.
    /// Leaves the cursor past what it read (the caller skips the key's
    /// remaining versions).
    fn fold_front(&mut self) -> Result<Bytes> {
        let mut operands: Vec<Bytes> = Vec::new();
        let mut base: Option<(ValueKind, Bytes)> = None;
        let Some(it) = self.front.as_mut() else {
            return Err(Error::Internal("merge fold without a cursor".into()));
        };
        while it.valid() {
            let p = parse_internal_key(it.key()).ok_or_else(corrupt_key)?;
            if p.user_key != self.front_last.as_slice()
                || range_deleted(&self.range_dels, p.user_key, p.seq, self.read_seq)
            {
                break;
            }
            match p.kind {
                ValueKind::Merge => operands.push(it.value_bytes()),
                ValueKind::Delete => break,
                kind if expired(kind, it.value(), self.expiry) => break,
                kind => {
                    base = Some((kind, it.value_bytes()));
                    break;
                }
            }
            it.next();
        }
        it.status()?;
        let base = match base {
            Some((kind, v)) => Some(self.resolve(kind, v)?),
            None => None,
        };
        fold(
            self.merge.as_ref(),
            &self.front_last,
            base.as_deref(),
            &operands,
        )
    }

    /// The next `(key, value)` from the front, borrowed from the iterator:
    /// valid until its next call. Unlike [`Iterator::next`] this copies and
    /// allocates nothing per entry (the key is the iterator's, the value
    /// the block's or memtable's bytes). Mixes freely with `next` and
    /// `next_back`.
    pub fn next_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if self.done {
            return None;
        }
        let _flags =
            (self.read_flags != 0).then(|| crate::read_options::FlagScope::enter(self.read_flags));
        if self.pending.is_some() {
            return self.take_pending().map(Err);
        }
        match self.advance_front()? {
            Err(e) => Some(Err(e)),
            Ok(()) if self.front_merged => Some(Ok((&self.front_last[..], &self.front_blob[..]))),
            Ok(()) if self.front_kind() == ValueKind::TimedValue => {
                let short = self
                    .front
                    .as_ref()
                    .is_some_and(|it| crate::ttl::split(it.value()).is_none());
                if short {
                    return self.fail(timed_too_short());
                }
                let it = self.front.as_ref()?;
                let v = it.value();
                let user = v.get(..v.len() - crate::ttl::TIME_LEN)?;
                Some(Ok((crate::key::user_key(it.key()), user)))
            }
            Ok(()) if self.front_kind() == ValueKind::BlobIndex => {
                let r = self.front.as_ref().map(|it| it.value_bytes())?;
                match self.resolve(ValueKind::BlobIndex, r) {
                    Ok(v) => self.front_blob = v,
                    Err(e) => return self.fail(e),
                }
                let it = self.front.as_ref()?;
                Some(Ok((crate::key::user_key(it.key()), &self.front_blob[..])))
            }
            Ok(()) => {
                let it = self.front.as_ref()?;
                Some(Ok((crate::key::user_key(it.key()), it.value())))
            }
        }
    }

    fn next_front(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        match self.advance_front()? {
            Err(e) => Some(Err(e)),
            Ok(()) if self.front_merged => Some(Ok((
                Bytes::copy_from_slice(&self.front_last),
                self.front_blob.clone(),
            ))),
            Ok(()) => {
                let kind = self.front_kind();
                let it = self.front.as_ref()?;
                let k = Bytes::copy_from_slice(crate::key::user_key(it.key()));
                match self.resolve(kind, it.value_bytes()) {
                    Ok(v) => Some(Ok((k, v))),
                    Err(e) => self.fail(e),
                }
            }
        }
    }

    fn next_back_inner(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        if self.back.is_none() {
            let mut it = (self.make)();
            match &self.upper {
                Bound::Unbounded => it.seek_to_last(),
                Bound::Included(k) => {
                    it.seek_for_prev(&encode_internal_key(k, 0, ValueKind::Delete))
                }
                Bound::Excluded(k) => {
                    it.seek_for_prev(&encode_internal_key(k, 0, ValueKind::Delete))
                }
            }
            self.back = Some(it);
        }
        let mut cur_key: Vec<u8> = Vec::new();
        loop {
            let it = self.back.as_mut()?;
            if !it.valid() {
                let st = it.status();
                self.done = true;
                return st.err().map(Err);
            }
            let Some(p) = parse_internal_key(it.key()) else {
                return self.fail(corrupt_key());
            };
            if above_upper(&self.upper, p.user_key) {
                // Only versions of an excluded upper bound can be here.
                it.prev();
                continue;
            }
            if below_lower(&self.lower, p.user_key)
                || (self.front_has_last && p.user_key <= self.front_last.as_slice())
            {
                self.done = true;
                return None;
            }
            cur_key.clear();
            cur_key.extend_from_slice(p.user_key);
            // Versions of one key come oldest first going backwards: the last
            // one with seq <= read_seq is the visible one, unless merge
            // operands (`ops`, oldest first) lie on top of it.
            let mut best: Option<(ValueKind, Bytes, SeqNo)> = None;
            let mut ops: Vec<Bytes> = Vec::new();
            loop {
                let Some(p) = parse_internal_key(it.key()) else {
                    return self.fail(corrupt_key());
                };
                if p.user_key != cur_key.as_slice() {
                    break;
                }
                if p.seq <= self.read_seq && p.kind == ValueKind::Merge {
                    if range_deleted(&self.range_dels, &cur_key, p.seq, self.read_seq) {
                        // Deleted with everything older.
                        best = None;
                        ops.clear();
                    } else {
                        ops.push(it.value_bytes());
                    }
                } else if p.seq <= self.read_seq {
                    let v = if p.kind == ValueKind::Delete {
                        Bytes::new()
                    } else {
                        it.value_bytes()
                    };
                    best = Some((p.kind, v, p.seq));
                    ops.clear();
                } else {
                    // Newer versions only from here on; none visible.
                    // Keep stepping to leave this key.
                }
                it.prev();
                if !it.valid() {
                    if let Err(e) = it.status() {
                        return self.fail(e);
                    }
                    break;
                }
            }
            let live = |(k, v, seq): &(ValueKind, Bytes, SeqNo)| {
                *k != ValueKind::Delete
                    && !self.range_deleted(&cur_key, *seq)
                    && !expired(*k, v, self.expiry)
            };
            if !ops.is_empty() {
                let base = match best.filter(live) {
                    Some((kind, v, _)) => match self.resolve(kind, v) {
                        Ok(v) => Some(v),
                        Err(e) => return self.fail(e),
                    },
                    None => None,
                };
                ops.reverse();
                let v = match fold(self.merge.as_ref(), &cur_key, base.as_deref(), &ops) {
                    Ok(v) => v,
                    Err(e) => return self.fail(e),
                };
                self.back_last.clear();
                self.back_last.extend_from_slice(&cur_key);
                self.back_has_last = true;
                return Some(Ok((Bytes::from(cur_key), v)));
            }
            if let Some((kind, v, _)) = best.filter(live) {
                let v = match self.resolve(kind, v) {
                    Ok(v) => v,
                    Err(e) => return self.fail(e),
                };
                self.back_last.clear();
                self.back_last.extend_from_slice(&cur_key);
                self.back_has_last = true;
                return Some(Ok((Bytes::from(cur_key), v)));
            }
        }
    }
}

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.pending.is_some() {
            return self.take_pending().map(Err);
        }
        let _flags =
            (self.read_flags != 0).then(|| crate::read_options::FlagScope::enter(self.read_flags));
        self.next_front()
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.pending.is_some() {
            return self.take_pending().map(Err);
        }
        let _flags =
            (self.read_flags != 0).then(|| crate::read_options::FlagScope::enter(self.read_flags));
        self.next_back_inner()
    }
}

impl std::iter::FusedIterator for Iter {}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when there is none (the prefix is empty or all `0xff`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.pop() {
        if last != 0xff {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::merge::tests::VecIter;
    use crate::iter::merge::MergingIterator;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Entries = Vec<(Vec<u8>, Vec<u8>)>;

    fn make(entries: Entries) -> SourceFactory {
        let entries = Arc::new(entries);
        Box::new(move || {
            Box::new(MergingIterator::new(vec![Box::new(VecIter::new(
                entries.as_ref().clone(),
            ))]))
        })
    }

    #[test]
    fn prefix_successor_cases() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    proptest! {
        #[test]
        fn visibility_and_bounds_match_model(
            ops in proptest::collection::vec((0u8..12, any::<bool>()), 0..80),
            read_seq in 0u64..90,
            lo in proptest::option::of((0u8..13, any::<bool>())),
            hi in proptest::option::of((0u8..13, any::<bool>())),
            pattern in proptest::collection::vec(0u8..3, 0..30),
        ) {
            let mut entries = Vec::new();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for (i, (k, put)) in ops.iter().enumerate() {
                let seq = i as u64 + 1;
                let key = vec![*k];
                if *put {
                    let v = vec![*k, seq as u8];
                    entries.push((encode_internal_key(&key, seq, ValueKind::Value), v.clone()));
                    if seq <= read_seq { model.insert(key, v); }
                } else {
                    entries.push((encode_internal_key(&key, seq, ValueKind::Delete), vec![]));
                    if seq <= read_seq { model.remove(&key); }
                }
            }
            let b = |x: Option<(u8, bool)>| match x {
                None => Bound::Unbounded,
                Some((k, true)) => Bound::Included(vec![k]),
                Some((k, false)) => Bound::Excluded(vec![k]),
            };
            let (lower, upper) = (b(lo), b(hi));
            let valid_range = !matches!((&lower, &upper),
                (Bound::Included(a), Bound::Included(b2)) if a > b2)
                && !matches!((&lower, &upper),
                (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b2) | Bound::Included(b2)) if a >= b2 && !matches!((&lower, &upper), (Bound::Included(_), Bound::Included(_))));
            let expect: Vec<(Vec<u8>, Vec<u8>)> = if valid_range {
                model.range((lower.clone(), upper.clone())).map(|(k, v)| (k.clone(), v.clone())).collect()
            } else { vec![] };
            // Forward, backward, and interleaved from both ends.
            let fwd: Vec<_> = Iter::new(make(entries.clone()), read_seq, lower.clone(), upper.clone(), None, Vec::new())
                .map(|r| { let (k, v) = r.unwrap(); (k.to_vec(), v.to_vec()) }).collect();
            prop_assert_eq!(&fwd, &expect);
            let mut back: Vec<_> = Iter::new(make(entries.clone()), read_seq, lower.clone(), upper.clone(), None, Vec::new())
                .rev().map(|r| { let (k, v) = r.unwrap(); (k.to_vec(), v.to_vec()) }).collect();
            back.reverse();
            prop_assert_eq!(&back, &expect);
            let mut it = Iter::new(make(entries), read_seq, lower, upper, None, Vec::new());
            let (mut front, mut tail) = (vec![], vec![]);
            let mut p = pattern.into_iter();
            loop {
                // 0: next, 1: next_back, 2: next_ref (borrowed).
                let how = p.next().unwrap_or(0);
                let item = match how {
                    0 => it.next(),
                    1 => it.next_back(),
                    _ => it.next_ref().map(|r| r.map(|(k, v)| (Bytes::copy_from_slice(k), Bytes::copy_from_slice(v)))),
                };
                match item {
                    None => break,
                    Some(r) => { let (k, v) = r.unwrap(); if how != 1 { front.push((k.to_vec(), v.to_vec())) } else { tail.push((k.to_vec(), v.to_vec())) } }
                }
            }
            tail.reverse();
            front.extend(tail);
            prop_assert_eq!(&front, &expect);
        }
    }
}
