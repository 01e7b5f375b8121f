//! The row cache (`Options::row_cache_size`, RocksDB's `row_cache`): the
//! newest value of recently read keys, read without a lock, so a hot key
//! costs a hash, one pointer load and a key comparison instead of a search
//! of the memtables and the SST files.
//!
//! Layout: a power-of-two array of slots. A slot holds at most one entry
//! (direct-mapped: a key lives in the slot its hash picks, and a new entry
//! replaces the old one) behind an epoch-protected pointer
//! (`crossbeam-epoch`: a reader pins the epoch, a thread-local operation,
//! and no reader ever writes a shared cache line). Beside it, a smaller
//! power-of-two table of *stamps*: the largest sequence number written to
//! any key whose hash picks the stamp (at most 64 Ki stamps, 512 KiB, so
//! that a write's stamp update stays in the CPU's caches; keys sharing a
//! stamp only invalidate each other more often).
//!
//! Why a hit is never stale (a read never returns a value older than a
//! write that returned before the read began):
//! - Every write raises the stamps of its keys to its last sequence
//!   number before it is published ([`RowCache::note_write`], called by the
//!   inserting writer before `mark_inserted`), so a reader that sees a
//!   write's sequence number as visible also sees its stamp.
//! - An entry filled by a read at sequence number `F` holds the newest
//!   version of its key as of `F` (`filled_at`). The caller must pass an
//!   `F` its read could not have missed a write at or below: a latest
//!   read reads at the sequence number loaded after its superversion,
//!   but a memtable switch between the two loads can hide newer writes
//!   from it, so it fills at the sequence number loaded *before* the
//!   superversion (`DbInner::get_in`).
//! - A read at `S` takes the entry only when the key's stamp is at most
//!   `min(S, F)`: then no key sharing the stamp was written after `F` nor
//!   after `S`, so the key's newest version as of `S` is the one of `F`. Any
//!   write to the key after the fill raises the stamp above `F` and the
//!   entry is dead from then on, whatever order the fill and the write ran
//!   in.
//!
//! Admission: a miss fills the slot only when the same key missed there
//! last (the slot remembers the hash of its last miss), so a key must be
//! read twice before it displaces another: a uniform random read load
//! mostly costs a hash and a load per read, not an allocation.
//!
//! Size: entries (key, value, bookkeeping) and the slot array are charged
//! against `row_cache_size`; a fill that would exceed it is skipped, and an
//! entry larger than 1/16 of it is never cached.
//!
//! A range deletion raises one stamp shared by every key
//! ([`RowCache::note_range_write`]), so it kills every entry filled before
//! it. Ingested files or anything else that changes what a key reads
//! without a write of that key must do the same.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_epoch::{self as epoch, Atomic, Owned};

use crate::key::SeqNo;

/// Bytes of cache per slot: slots are sized for entries of about this much.
const BYTES_PER_SLOT: usize = 256;
/// Most stamps (see the module documentation).
const MAX_STAMPS: usize = 1 << 16;
/// Bookkeeping charged per entry on top of its key and value.
const ENTRY_OVERHEAD: usize = 64;

/// One cached key.
struct Entry {
    hash: u64,
    key: Box<[u8]>,
    /// The newest value as of `filled_at`; `None`: no value (absent or
    /// deleted).
    value: Option<Bytes>,
    filled_at: SeqNo,
    charge: usize,
}

struct Slot {
    /// Hash of the last key that missed here (admission).
    last_miss: AtomicU64,
    entry: Atomic<Entry>,
}

/// The row cache: see the module documentation.
pub(crate) struct RowCache {
    slots: Box<[Slot]>,
    mask: usize,
    /// Largest sequence number written to a key whose hash picks the
    /// stamp (`hash >> 32`, masked).
    stamps: Box<[AtomicU64]>,
    stamp_mask: usize,
    /// The stamp of every key at once: the sequence number of the last
    /// range deletion ([`RowCache::note_range_write`]).
    range_stamp: AtomicU64,
    capacity: usize,
    charged: AtomicUsize,
    /// Entries cached now.
    entries: AtomicUsize,
}

/// What a lookup found.
pub(crate) enum RowLookup {
    /// A valid entry: the key's value (`None`: no value) as of the read.
    Hit(Option<Bytes>),
    /// Nothing usable: read the tables, then [`RowCache::fill`].
    Miss,
}

impl RowCache {
    /// A cache of about `capacity` bytes (slot array included).
    pub(crate) fn new(capacity: usize) -> RowCache {
        let n = (capacity / BYTES_PER_SLOT)
            .next_power_of_two()
            .clamp(64, 1 << 26);
        let slots: Box<[Slot]> = (0..n)
            .map(|_| Slot {
                last_miss: AtomicU64::new(0),
                entry: Atomic::null(),
            })
            .collect();
        let ns = n.min(MAX_STAMPS);
        let stamps: Box<[AtomicU64]> = (0..ns).map(|_| AtomicU64::new(0)).collect();
        let array = n * std::mem::size_of::<Slot>() + ns * 8;
        RowCache {
            slots,
            mask: n - 1,
            stamps,
            stamp_mask: ns - 1,
            range_stamp: AtomicU64::new(0),
            capacity,
            charged: AtomicUsize::new(array),
            entries: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn slot(&self, hash: u64) -> &Slot {
        // Masked: always in range (`slots.len() == mask + 1`).
        &self.slots[(hash as usize) & self.mask]
    }

    #[inline]
    fn stamp(&self, hash: u64) -> &AtomicU64 {
        // Masked: always in range (`stamps.len() == stamp_mask + 1`).
        &self.stamps[((hash >> 32) as usize) & self.stamp_mask]
    }

    /// The largest sequence number written to a key hashing to `hash`, a
    /// range deletion counting as a write of every key.
    #[inline]
    fn written_at(&self, hash: u64) -> SeqNo {
        let key = self.stamp(hash).load(Ordering::Acquire);
        key.max(self.range_stamp.load(Ordering::Acquire))
    }

    /// The cached value of `key` (whose `filter_hash` is `hash`) for a read
    /// at sequence number `seq`, if the cache holds a valid one.
    #[inline]
    pub(crate) fn get(&self, key: &[u8], hash: u64, seq: SeqNo) -> RowLookup {
        let slot = self.slot(hash);
        // An empty slot needs no pin (the pin is a full fence): the
        // pointer is only compared with null, never followed.
        // SAFETY: `unprotected` is sound for a load whose result is not
        // dereferenced.
        if slot
            .entry
            .load(Ordering::Relaxed, unsafe { epoch::unprotected() })
            .is_null()
        {
            return RowLookup::Miss;
        }
        let guard = epoch::pin();
        let e = slot.entry.load(Ordering::Acquire, &guard);
        // SAFETY: entries are only freed through `defer_destroy` after
        // being unlinked, and this thread is pinned.
        if let Some(e) = unsafe { e.as_ref() } {
            if e.hash == hash && *e.key == *key {
                let stamp = self.written_at(hash);
                if stamp <= seq && stamp <= e.filled_at {
                    // A copy: readers of one hot key would otherwise all
                    // bump the entry buffer's reference count (readhot,
                    // 2 threads: 18.3M ops/s copying, 17.7M sharing).
                    return RowLookup::Hit(e.value.as_deref().map(Bytes::copy_from_slice));
                }
            }
        }
        RowLookup::Miss
    }

    /// Offers the result of a read of `key` at `seq` (its newest value as
    /// of `seq`, `None` for none) after a [`RowLookup::Miss`]; kept when
    /// the same key missed in its slot last, it fits, and no write to the
    /// slot came after `seq`.
    pub(crate) fn fill(&self, key: &[u8], hash: u64, seq: SeqNo, value: Option<&Bytes>) {
        let slot = self.slot(hash);
        // A plain load and store, no locked instruction: admission is a
        // heuristic, and a lost update only delays a fill.
        if slot.last_miss.load(Ordering::Relaxed) != hash {
            slot.last_miss.store(hash, Ordering::Relaxed);
            return;
        }
        if self.written_at(hash) > seq {
            return;
        }
        let charge = key.len() + value.map_or(0, |v| v.len()) + ENTRY_OVERHEAD;
        if charge > self.capacity / 16
            || self.charged.load(Ordering::Relaxed) + charge > self.capacity
        {
            return;
        }
        let entry = Owned::new(Entry {
            hash,
            key: key.into(),
            // A private copy: a slice of a table's map would keep the
            // file's pages (and a deleted file) alive.
            value: value.map(|v| Bytes::copy_from_slice(v)),
            filled_at: seq,
            charge,
        });
        self.charged.fetch_add(charge, Ordering::Relaxed);
        self.entries.fetch_add(1, Ordering::Relaxed);
        let guard = epoch::pin();
        let old = slot.entry.swap(entry, Ordering::AcqRel, &guard);
        self.retire(old, &guard);
    }

    /// Records a write of a key hashing to `hash` at sequence number `seq`
    /// (before the write is published): the key's entry, if any, is dead
    /// for every read from then on.
    #[inline]
    pub(crate) fn note_write(&self, hash: u64, seq: SeqNo) {
        let stamp = self.stamp(hash);
        if stamp.load(Ordering::Relaxed) < seq {
            stamp.fetch_max(seq, Ordering::Release);
        }
    }

    /// Records a range deletion at sequence number `seq` (before it is
    /// published): every entry filled before it is dead from then on, as
    /// if each key had been written.
    pub(crate) fn note_range_write(&self, seq: SeqNo) {
        self.range_stamp.fetch_max(seq, Ordering::Release);
    }

    /// Drops every entry (tests).
    #[cfg(test)]
    pub(crate) fn clear(&self) {
        let guard = epoch::pin();
        for slot in self.slots.iter() {
            let old = slot
                .entry
                .swap(epoch::Shared::null(), Ordering::AcqRel, &guard);
            self.retire(old, &guard);
        }
    }

    /// Uncharges an unlinked entry and frees it once no reader can hold it.
    fn retire(&self, old: epoch::Shared<'_, Entry>, guard: &epoch::Guard) {
        // SAFETY: `old` was just unlinked by a swap; readers that loaded it
        // are pinned, so it is freed only after they unpin.
        if let Some(e) = unsafe { old.as_ref() } {
            self.charged.fetch_sub(e.charge, Ordering::Relaxed);
            self.entries.fetch_sub(1, Ordering::Relaxed);
            unsafe { guard.defer_destroy(old) };
        }
    }

    /// Entries cached now.
    pub(crate) fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Bytes charged now (slot array included).
    pub(crate) fn charged(&self) -> usize {
        self.charged.load(Ordering::Relaxed)
    }
}

impl Drop for RowCache {
    fn drop(&mut self) {
        // No reader is left (`&mut self`): free the entries at once.
        let guard = unsafe { epoch::unprotected() };
        for slot in self.slots.iter() {
            let e = slot
                .entry
                .swap(epoch::Shared::null(), Ordering::Relaxed, guard);
            if !e.is_null() {
                // SAFETY: unlinked and unreachable by anyone else.
                drop(unsafe { e.into_owned() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sst::filter_hash;

    fn lookup(c: &RowCache, k: &[u8], seq: SeqNo) -> Option<Option<Bytes>> {
        match c.get(k, filter_hash(k), seq) {
            RowLookup::Hit(v) => Some(v),
            RowLookup::Miss => None,
        }
    }

    #[test]
    fn second_miss_fills_and_a_write_kills_the_entry() {
        let c = RowCache::new(1 << 20);
        let (k, h) = (b"key".as_slice(), filter_hash(b"key"));
        let v = Bytes::from_static(b"value");
        assert!(lookup(&c, k, 10).is_none());
        c.fill(k, h, 10, Some(&v));
        // First miss: not admitted yet.
        assert!(lookup(&c, k, 10).is_none());
        c.fill(k, h, 10, Some(&v));
        assert_eq!(lookup(&c, k, 10), Some(Some(v.clone())));
        // A later read (no write since) hits too.
        assert_eq!(lookup(&c, k, 50), Some(Some(v.clone())));
        // A write at 60: dead for reads at 60 and after, and for reads at
        // 55 too (conservative).
        c.note_write(h, 60);
        assert!(lookup(&c, k, 55).is_none());
        assert!(lookup(&c, k, 60).is_none());
        // A fill from a read older than the write is refused.
        c.fill(k, h, 55, Some(&v));
        assert!(lookup(&c, k, 70).is_none());
        // A fill from a read after the write serves later reads.
        c.fill(k, h, 60, None);
        assert_eq!(lookup(&c, k, 70), Some(None));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn an_entry_filled_later_serves_an_older_read_only_without_writes_between() {
        let c = RowCache::new(1 << 20);
        let (k, h) = (b"k".as_slice(), filter_hash(b"k"));
        let v = Bytes::from_static(b"v");
        c.note_write(h, 5);
        c.fill(k, h, 20, Some(&v));
        c.fill(k, h, 20, Some(&v));
        // Read at 10: the last write (5) is at or before 10: same value.
        assert_eq!(lookup(&c, k, 10), Some(Some(v.clone())));
        // Read at 4: a write at 5 came after it: not served.
        assert!(lookup(&c, k, 4).is_none());
    }

    #[test]
    fn bounded_by_its_capacity_and_large_values_are_not_cached() {
        let c = RowCache::new(64 << 10);
        let big = Bytes::from(vec![1u8; 8 << 10]);
        c.fill(b"big", filter_hash(b"big"), 1, Some(&big));
        c.fill(b"big", filter_hash(b"big"), 1, Some(&big));
        assert!(lookup(&c, b"big", 1).is_none(), "over 1/16 of the capacity");
        let v = Bytes::from(vec![2u8; 1000]);
        for i in 0..10_000u32 {
            let k = format!("key{i}");
            for _ in 0..2 {
                c.fill(k.as_bytes(), filter_hash(k.as_bytes()), 1, Some(&v));
            }
        }
        assert!(c.charged() <= 64 << 10, "charged {}", c.charged());
        assert!(c.len() > 0);
        c.clear();
        assert_eq!(c.len(), 0);
    }
}
