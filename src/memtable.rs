//! The memtable: recent writes, in a lock-free skiplist, until they are
//! flushed to an SST file.
//!
//! Entries are keyed by the encoded internal key (user key ascending,
//! sequence number descending), so the newest version of a key comes first
//! and a lookup for `(key, seq)` is one `lower_bound` search.
//!
//! Invariants:
//! - Only the write-group leader inserts (one thread at a time); any number
//!   of readers search and iterate concurrently without locks
//!   (crossbeam-skiplist is lock-free for readers).
//! - Every internal key is inserted at most once: sequence numbers are
//!   unique, so entries are never overwritten.
//! - A memtable is frozen (no more inserts) before it is flushed; the flush
//!   sees a stable snapshot of it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::map::Entry;
use crossbeam_skiplist::SkipMap;

use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::{append_internal_key, parse_internal_key, InternalKey, SeqNo, ValueKind};

/// Bytes counted per entry on top of key and value: the skiplist node,
/// its tower and the two boxes.
const ENTRY_OVERHEAD: usize = 80;

/// Lookup keys shorter than this are built on the stack.
const STACK_KEY: usize = 128;

/// An in-memory sorted buffer of recent writes.
pub(crate) struct MemTable {
    map: SkipMap<Box<InternalKey>, Bytes>,
    approximate_size: AtomicUsize,
    num_entries: AtomicU64,
    num_deletions: AtomicU64,
    /// Number of the WAL file holding this memtable's writes.
    log_number: u64,
}

/// The newest version of a key that a read may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The key holds this value.
    Value(Bytes),
    /// The key was deleted.
    Deleted,
}

impl MemTable {
    /// An empty memtable whose writes go to WAL `log_number`.
    pub(crate) fn new(log_number: u64) -> Self {
        MemTable {
            map: SkipMap::new(),
            approximate_size: AtomicUsize::new(0),
            num_entries: AtomicU64::new(0),
            num_deletions: AtomicU64::new(0),
            log_number,
        }
    }

    /// WAL file number of this memtable.
    pub(crate) fn log_number(&self) -> u64 {
        self.log_number
    }

    /// Inserts one version. Called only by the write-group leader.
    pub(crate) fn insert(&self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: &[u8]) {
        let mut k = Vec::with_capacity(user_key.len() + crate::key::TRAILER_LEN);
        append_internal_key(&mut k, user_key, seq, kind);
        let size = k.len() + value.len() + ENTRY_OVERHEAD;
        let v = if value.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(value)
        };
        self.map
            .insert(InternalKey::from_boxed(k.into_boxed_slice()), v);
        self.approximate_size.fetch_add(size, Ordering::Relaxed);
        self.num_entries.fetch_add(1, Ordering::Relaxed);
        if kind == ValueKind::Delete {
            self.num_deletions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Inserts every operation of `batch`, operation `i` at sequence number
    /// `batch.sequence() + i`; returns the last sequence number used (the
    /// batch's sequence minus one for an empty batch). Called only by the
    /// write-group leader or by recovery.
    pub(crate) fn insert_batch(&self, batch: &crate::batch::WriteBatch) -> SeqNo {
        let mut last = batch.sequence().saturating_sub(1);
        for (op, seq) in batch.iter().zip(batch.sequence()..) {
            self.insert(op.key, seq, op.kind, op.value);
            last = seq;
        }
        last
    }

    /// The newest version of `user_key` with sequence number `<= seq`, or
    /// `None` when this memtable has none.
    pub(crate) fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<Lookup> {
        let n = user_key.len() + crate::key::TRAILER_LEN;
        let mut stack = [0u8; STACK_KEY];
        let heap;
        let lookup: &[u8] = if n <= STACK_KEY {
            stack[..user_key.len()].copy_from_slice(user_key);
            stack[user_key.len()..n]
                .copy_from_slice(&crate::key::pack_trailer(seq, ValueKind::FOR_SEEK).to_le_bytes());
            &stack[..n]
        } else {
            heap = crate::key::encode_internal_key(user_key, seq, ValueKind::FOR_SEEK);
            &heap
        };
        let entry = self
            .map
            .lower_bound(std::ops::Bound::Included(InternalKey::from_bytes(lookup)))?;
        let parsed = parse_internal_key(entry.key().as_bytes())?;
        if parsed.user_key != user_key {
            return None;
        }
        Some(match parsed.kind {
            ValueKind::Value => Lookup::Value(entry.value().clone()),
            ValueKind::Delete => Lookup::Deleted,
        })
    }

    /// Approximate memory used by the entries, in bytes.
    pub(crate) fn approximate_size(&self) -> usize {
        self.approximate_size.load(Ordering::Relaxed)
    }

    /// Number of entries (versions).
    pub(crate) fn num_entries(&self) -> u64 {
        self.num_entries.load(Ordering::Relaxed)
    }

    /// Number of tombstones.
    #[allow(dead_code)]
    pub(crate) fn num_deletions(&self) -> u64 {
        self.num_deletions.load(Ordering::Relaxed)
    }

    /// True when nothing was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A cursor over the entries; it keeps the memtable alive.
    pub(crate) fn iter(self: &Arc<Self>) -> MemTableIterator {
        MemTableIterator {
            current: None,
            mem: Arc::clone(self),
        }
    }
}

/// A bidirectional cursor over a memtable.
pub(crate) struct MemTableIterator {
    // Declared before `mem` so it is dropped first.
    // SAFETY (lifetime): the entry borrows `mem.map`, which lives in the
    // heap allocation of the `Arc` this struct holds; that allocation does
    // not move and outlives the entry (fields drop in declaration order),
    // so extending the borrow to 'static is sound as long as the entry
    // never escapes this struct.
    current: Option<Entry<'static, Box<InternalKey>, Bytes>>,
    mem: Arc<MemTable>,
}

type MemEntry<'a> = Entry<'a, Box<InternalKey>, Bytes>;

/// Extends an entry's borrow of its memtable to `'static`.
///
/// SAFETY (for callers): the entry must be stored only in the `current`
/// field of a [`MemTableIterator`] that holds the `Arc` of the memtable it
/// borrows (see the comment on that field).
unsafe fn extend(e: Option<MemEntry<'_>>) -> Option<MemEntry<'static>> {
    // SAFETY: only the lifetime changes; the caller upholds it.
    e.map(|e| unsafe { std::mem::transmute::<MemEntry<'_>, MemEntry<'static>>(e) })
}

impl InternalIterator for MemTableIterator {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn seek_to_first(&mut self) {
        // SAFETY: stored in `current` of the iterator holding the Arc.
        self.current = unsafe { extend(self.mem.map.front()) };
    }

    fn seek_to_last(&mut self) {
        // SAFETY: stored in `current` of the iterator holding the Arc.
        self.current = unsafe { extend(self.mem.map.back()) };
    }

    fn seek(&mut self, target: &[u8]) {
        // SAFETY: stored in `current` of the iterator holding the Arc.
        self.current = unsafe {
            extend(
                self.mem
                    .map
                    .lower_bound(std::ops::Bound::Included(InternalKey::from_bytes(target))),
            )
        };
    }

    fn seek_for_prev(&mut self, target: &[u8]) {
        // SAFETY: stored in `current` of the iterator holding the Arc.
        self.current = unsafe {
            extend(
                self.mem
                    .map
                    .upper_bound(std::ops::Bound::Included(InternalKey::from_bytes(target))),
            )
        };
    }

    fn next(&mut self) {
        let e = self.current.as_ref().and_then(|e| e.next());
        // SAFETY: the successor borrows the same memtable.
        self.current = unsafe { extend(e) };
    }

    fn prev(&mut self) {
        let e = self.current.as_ref().and_then(|e| e.prev());
        // SAFETY: the predecessor borrows the same memtable.
        self.current = unsafe { extend(e) };
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |e| e.key().as_bytes())
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |e| e.value())
    }

    fn value_bytes(&self) -> Bytes {
        self.current
            .as_ref()
            .map_or_else(Bytes::new, |e| e.value().clone())
    }

    fn status(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::encode_internal_key;

    #[test]
    fn get_sees_newest_visible_version() {
        let m = MemTable::new(1);
        m.insert(b"k", 1, ValueKind::Value, b"v1");
        m.insert(b"k", 3, ValueKind::Value, b"v3");
        m.insert(b"k", 5, ValueKind::Delete, b"");
        m.insert(b"l", 2, ValueKind::Value, b"lv");
        assert_eq!(m.get(b"k", 0), None);
        assert_eq!(
            m.get(b"k", 1),
            Some(Lookup::Value(Bytes::from_static(b"v1")))
        );
        assert_eq!(
            m.get(b"k", 4),
            Some(Lookup::Value(Bytes::from_static(b"v3")))
        );
        assert_eq!(m.get(b"k", 9), Some(Lookup::Deleted));
        assert_eq!(m.get(b"j", 9), None);
        assert_eq!(
            m.get(b"l", 9),
            Some(Lookup::Value(Bytes::from_static(b"lv")))
        );
        let long = vec![7u8; 1000];
        m.insert(&long, 6, ValueKind::Value, b"x");
        assert_eq!(
            m.get(&long, 6),
            Some(Lookup::Value(Bytes::from_static(b"x")))
        );
    }

    #[test]
    fn iterator_both_directions() {
        let m = Arc::new(MemTable::new(1));
        for (i, k) in [b"a", b"b", b"c"].iter().enumerate() {
            m.insert(*k, i as u64 + 1, ValueKind::Value, *k);
        }
        let mut it = m.iter();
        it.seek_to_first();
        let mut fwd = vec![];
        while it.valid() {
            fwd.push(crate::key::user_key(it.key()).to_vec());
            it.next();
        }
        assert_eq!(fwd, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        it.seek_for_prev(&encode_internal_key(b"bb", 0, ValueKind::Delete));
        assert_eq!(crate::key::user_key(it.key()), b"b");
        it.prev();
        assert_eq!(crate::key::user_key(it.key()), b"a");
        it.next();
        it.next();
        assert_eq!(crate::key::user_key(it.key()), b"c");
        it.next();
        assert!(!it.valid());
        drop(m);
        it.seek_to_last();
        assert_eq!(it.value(), b"c");
    }
}
