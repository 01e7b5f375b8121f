//! K-way merge of internal iterators.
//!
//! [`MergingIterator`] presents several sorted sources (memtables, SST
//! files) as one sorted stream, in internal-key order, in both directions.
//! A binary heap over the children keeps each step `O(log k)`, so reads stay
//! fast with dozens of level-0 files.
//!
//! Invariants:
//! - Moving forward, every valid child stands on its smallest key that is
//!   `>` the last key returned (`>=` right after a seek); the heap is a
//!   min-heap of the valid children and the current entry is its top.
//! - Moving backward, mirror image: every valid child stands on its largest
//!   key `<` the last key returned; the heap is a max-heap.
//! - Switching direction re-seeks every child except the current one
//!   around the current key (as LevelDB's merger does).
//! - Sources hold distinct internal keys (sequence numbers are unique), so
//!   there are no ties between children.

use std::cmp::Ordering;

use bytes::Bytes;

use super::InternalIterator;
use crate::error::Result;
use crate::key::{compare_internal, key_prefix, user_key};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

/// A sorted merge of several internal iterators.
pub(crate) struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    /// The valid children, heap-ordered for `direction`, each with the
    /// [`key_prefix`] of its current user key (refreshed whenever the child
    /// moves): most heap comparisons are decided by the prefixes, side by
    /// side in this one array, without calling into the children.
    heap: Vec<Slot>,
    direction: Direction,
}

/// A heap entry: a child and the prefix of its current key.
#[derive(Debug, Clone, Copy)]
struct Slot {
    prefix: u64,
    child: usize,
}

impl MergingIterator {
    /// Merges `children`; the result is unpositioned until a seek.
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>) -> Self {
        MergingIterator {
            heap: Vec::with_capacity(children.len()),
            children,
            direction: Direction::Forward,
        }
    }

    /// The heap entry of child `i` (which must be valid) at its current key.
    #[inline]
    fn slot(&self, i: usize) -> Slot {
        let k = self.children[i].key();
        Slot {
            prefix: key_prefix(user_key(k)),
            child: i,
        }
    }

    /// True when entry `a` should be above entry `b` in the heap.
    #[inline]
    fn before(&self, a: Slot, b: Slot) -> bool {
        let o = match a.prefix.cmp(&b.prefix) {
            Ordering::Equal => {
                compare_internal(self.children[a.child].key(), self.children[b.child].key())
            }
            o => o,
        };
        match self.direction {
            Direction::Forward => o == Ordering::Less,
            Direction::Backward => o == Ordering::Greater,
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                return;
            }
            let mut best = l;
            let r = l + 1;
            if r < n && self.before(self.heap[r], self.heap[l]) {
                best = r;
            }
            if self.before(self.heap[best], self.heap[i]) {
                self.heap.swap(best, i);
                i = best;
            } else {
                return;
            }
        }
    }

    fn rebuild(&mut self, direction: Direction) {
        self.direction = direction;
        self.heap.clear();
        for i in 0..self.children.len() {
            if self.children[i].valid() {
                let slot = self.slot(i);
                self.heap.push(slot);
            } else if self.children[i].status().is_err() {
                // A failed child would silently drop its entries (and show
                // older versions from other sources): stop the whole merge.
                self.heap.clear();
                return;
            }
        }
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }

    /// After the top child moved: keep it in the heap if still valid.
    fn fix_top(&mut self) {
        let Some(top) = self.heap.first().map(|s| s.child) else {
            return;
        };
        if self.children[top].valid() {
            self.heap[0] = self.slot(top);
            self.sift_down(0);
        } else if self.children[top].status().is_err() {
            // See `rebuild`: an error ends the merge; `status` reports it.
            self.heap.clear();
        } else {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
            self.sift_down(0);
        }
    }

    fn current(&self) -> Option<&dyn InternalIterator> {
        self.heap.first().map(|s| self.children[s.child].as_ref())
    }
}

impl InternalIterator for MergingIterator {
    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn seek_to_first(&mut self) {
        for c in &mut self.children {
            c.seek_to_first();
        }
        self.rebuild(Direction::Forward);
    }

    fn seek_to_last(&mut self) {
        for c in &mut self.children {
            c.seek_to_last();
        }
        self.rebuild(Direction::Backward);
    }

    fn seek(&mut self, target: &[u8]) {
        for c in &mut self.children {
            c.seek(target);
        }
        self.rebuild(Direction::Forward);
    }

    fn seek_for_prev(&mut self, target: &[u8]) {
        for c in &mut self.children {
            c.seek_for_prev(target);
        }
        self.rebuild(Direction::Backward);
    }

    fn next(&mut self) {
        let Some(top) = self.heap.first().map(|s| s.child) else {
            return;
        };
        if self.direction != Direction::Forward {
            // Put every other child on its first key after the current one.
            let key = self.children[top].key().to_vec();
            for (i, c) in self.children.iter_mut().enumerate() {
                if i == top {
                    continue;
                }
                c.seek(&key);
                if c.valid() && compare_internal(c.key(), &key) == Ordering::Equal {
                    c.next();
                }
            }
            self.rebuild(Direction::Forward);
            // `top` is still the smallest valid child: everything else is now > key.
            debug_assert_eq!(self.heap.first().map(|s| s.child), Some(top));
        }
        self.children[top].next();
        self.fix_top();
    }

    fn prev(&mut self) {
        let Some(top) = self.heap.first().map(|s| s.child) else {
            return;
        };
        if self.direction != Direction::Backward {
            let key = self.children[top].key().to_vec();
            for (i, c) in self.children.iter_mut().enumerate() {
                if i == top {
                    continue;
                }
                c.seek_for_prev(&key);
                if c.valid() && compare_internal(c.key(), &key) == Ordering::Equal {
                    c.prev();
                }
            }
            self.rebuild(Direction::Backward);
            debug_assert_eq!(self.heap.first().map(|s| s.child), Some(top));
        }
        self.children[top].prev();
        self.fix_top();
    }

    fn key(&self) -> &[u8] {
        self.current().map_or(&[], |c| c.key())
    }

    fn value(&self) -> &[u8] {
        self.current().map_or(&[], |c| c.value())
    }

    fn value_bytes(&self) -> Bytes {
        self.current().map_or_else(Bytes::new, |c| c.value_bytes())
    }

    fn status(&self) -> Result<()> {
        for c in &self.children {
            c.status()?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::key::{encode_internal_key, ValueKind};
    use proptest::prelude::*;

    /// A sorted vector as an internal iterator, for tests.
    pub(crate) struct VecIter {
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        pos: Option<usize>,
    }

    impl VecIter {
        pub(crate) fn new(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
            entries.sort_by(|a, b| compare_internal(&a.0, &b.0));
            VecIter { entries, pos: None }
        }
    }

    impl InternalIterator for VecIter {
        fn valid(&self) -> bool {
            self.pos.is_some()
        }
        fn seek_to_first(&mut self) {
            self.pos = if self.entries.is_empty() {
                None
            } else {
                Some(0)
            };
        }
        fn seek_to_last(&mut self) {
            self.pos = self.entries.len().checked_sub(1);
        }
        fn seek(&mut self, t: &[u8]) {
            let i = self
                .entries
                .partition_point(|e| compare_internal(&e.0, t) == Ordering::Less);
            self.pos = (i < self.entries.len()).then_some(i);
        }
        fn seek_for_prev(&mut self, t: &[u8]) {
            let i = self
                .entries
                .partition_point(|e| compare_internal(&e.0, t) != Ordering::Greater);
            self.pos = i.checked_sub(1);
        }
        fn next(&mut self) {
            self.pos = self.pos.map(|p| p + 1).filter(|&p| p < self.entries.len());
        }
        fn prev(&mut self) {
            self.pos = self.pos.and_then(|p| p.checked_sub(1));
        }
        fn key(&self) -> &[u8] {
            &self.entries[self.pos.unwrap()].0
        }
        fn value(&self) -> &[u8] {
            &self.entries[self.pos.unwrap()].1
        }
        fn status(&self) -> Result<()> {
            Ok(())
        }
    }

    proptest! {
        #[test]
        fn merge_matches_sorted_union(
            keys in proptest::collection::vec((0u8..20, 0usize..4), 0..60),
            moves in proptest::collection::vec(any::<bool>(), 0..80),
            target in 0u8..22,
        ) {
            // Distribute distinct internal keys over 4 children.
            let mut all = Vec::new();
            let mut children: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![vec![]; 4];
            for (seq, (k, child)) in keys.iter().enumerate() {
                let ik = encode_internal_key(&[*k], seq as u64 + 1, ValueKind::Value);
                all.push((ik.clone(), vec![*k]));
                children[*child].push((ik, vec![*k]));
            }
            all.sort_by(|a, b| compare_internal(&a.0, &b.0));
            let mut m = MergingIterator::new(
                children.into_iter().map(|c| Box::new(VecIter::new(c)) as Box<dyn InternalIterator>).collect(),
            );
            let mut model = VecIter::new(all.clone());
            let t = encode_internal_key(&[target], 1000, ValueKind::Value);
            m.seek(&t);
            model.seek(&t);
            for fwd in moves {
                prop_assert_eq!(m.valid(), model.valid());
                if !m.valid() { break; }
                prop_assert_eq!(m.key(), model.key());
                if fwd { m.next(); model.next(); } else { m.prev(); model.prev(); }
            }
            m.seek_to_last();
            let mut back = vec![];
            while m.valid() { back.push(m.key().to_vec()); m.prev(); }
            back.reverse();
            prop_assert_eq!(back, all.iter().map(|e| e.0.clone()).collect::<Vec<_>>());
        }
    }
}
