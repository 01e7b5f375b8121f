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

use bytes::Bytes;

use super::InternalIterator;
use crate::error::{Error, Result};
use crate::key::{encode_internal_key, parse_internal_key, SeqNo, ValueKind, MAX_SEQUENCE};

/// Creates a fresh merged internal iterator over the pinned sources.
pub(crate) type SourceFactory = Box<dyn Fn() -> Box<dyn InternalIterator> + Send + Sync>;

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
    front_last: Option<Bytes>,
    /// Last key yielded from the back (the front must stay below it).
    back_last: Option<Bytes>,
    /// User key whose older versions the front cursor is skipping.
    front_skip: Vec<u8>,
    front_skipping: bool,
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

fn corrupt_key() -> Error {
    Error::corruption("<iterator>", 0, "malformed internal key in a merged stream")
}

impl Iter {
    pub(crate) fn new(
        make: SourceFactory,
        read_seq: SeqNo,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
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
            front_last: None,
            back_last: None,
            front_skip: Vec::new(),
            front_skipping: false,
            done: empty,
        }
    }

    fn fail(&mut self, e: Error) -> Option<Result<(Bytes, Bytes)>> {
        self.done = true;
        Some(Err(e))
    }

    fn next_front(&mut self) -> Option<Result<(Bytes, Bytes)>> {
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
        loop {
            let it = self.front.as_mut()?;
            if !it.valid() {
                let st = it.status();
                self.done = true;
                return st.err().map(Err);
            }
            let Some(p) = parse_internal_key(it.key()) else {
                return self.fail(corrupt_key());
            };
            if self.front_skipping && p.user_key == self.front_skip.as_slice() {
                it.next();
                continue;
            }
            self.front_skipping = false;
            if above_upper(&self.upper, p.user_key)
                || self
                    .back_last
                    .as_ref()
                    .is_some_and(|b| p.user_key >= b.as_ref())
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
            let item = match p.kind {
                ValueKind::Value => Some((Bytes::copy_from_slice(p.user_key), it.value_bytes())),
                ValueKind::Delete => None,
            };
            it.next();
            if let Some((k, v)) = item {
                self.front_last = Some(k.clone());
                return Some(Ok((k, v)));
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
                || self
                    .front_last
                    .as_ref()
                    .is_some_and(|f| p.user_key <= f.as_ref())
            {
                self.done = true;
                return None;
            }
            cur_key.clear();
            cur_key.extend_from_slice(p.user_key);
            // Versions of one key come oldest first going backwards: the last
            // one with seq <= read_seq is the visible one.
            let mut best: Option<(ValueKind, Bytes)> = None;
            loop {
                let Some(p) = parse_internal_key(it.key()) else {
                    return self.fail(corrupt_key());
                };
                if p.user_key != cur_key.as_slice() {
                    break;
                }
                if p.seq <= self.read_seq {
                    let v = match p.kind {
                        ValueKind::Value => it.value_bytes(),
                        ValueKind::Delete => Bytes::new(),
                    };
                    best = Some((p.kind, v));
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
            if let Some((ValueKind::Value, v)) = best {
                let k = Bytes::from(cur_key);
                self.back_last = Some(k.clone());
                return Some(Ok((k, v)));
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
        self.next_front()
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.next_back_inner()
    }
}

impl std::iter::FusedIterator for Iter {}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when there is none (the prefix is empty or all `0xff`).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
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
    use std::sync::Arc;

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
            pattern in proptest::collection::vec(any::<bool>(), 0..30),
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
            let fwd: Vec<_> = Iter::new(make(entries.clone()), read_seq, lower.clone(), upper.clone())
                .map(|r| { let (k, v) = r.unwrap(); (k.to_vec(), v.to_vec()) }).collect();
            prop_assert_eq!(&fwd, &expect);
            let mut back: Vec<_> = Iter::new(make(entries.clone()), read_seq, lower.clone(), upper.clone())
                .rev().map(|r| { let (k, v) = r.unwrap(); (k.to_vec(), v.to_vec()) }).collect();
            back.reverse();
            prop_assert_eq!(&back, &expect);
            let mut it = Iter::new(make(entries), read_seq, lower, upper);
            let (mut front, mut tail) = (vec![], vec![]);
            let mut p = pattern.into_iter();
            loop {
                let from_front = p.next().unwrap_or(true);
                let item = if from_front { it.next() } else { it.next_back() };
                match item {
                    None => break,
                    Some(r) => { let (k, v) = r.unwrap(); if from_front { front.push((k.to_vec(), v.to_vec())) } else { tail.push((k.to_vec(), v.to_vec())) } }
                }
            }
            tail.reverse();
            front.extend(tail);
            prop_assert_eq!(&front, &expect);
        }
    }
}
