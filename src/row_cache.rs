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

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_epoch as epoch;

use crate::key::{same_user_key, SeqNo};

/// Bytes of cache per slot: slots are sized for entries of about this much.
const BYTES_PER_SLOT: usize = 256;
/// Most stamps (see the module documentation).
const MAX_STAMPS: usize = 1 << 16;

/// The head of one cached key's allocation, followed by the key's bytes
/// and then the value's: one allocation, aligned to and padded to whole
/// cache lines, so a hit reads one run of lines, and no other allocation
/// (a value copied out for a reader, say, written on every hit) shares a
/// line with it. With a separate `Entry`, key box and value buffer, two
/// threads reading hot keys spent a quarter of their time in the key
/// comparison, on lines that malloc had put beside such buffers.
#[repr(C)]
struct EntryHead {
    hash: u64,
    /// The read's sequence number: the value is the newest as of it.
    filled_at: SeqNo,
    key_len: u32,
    /// [`NO_VALUE`]: the key has no value (absent or deleted).
    value_len: u32,
    /// Bytes allocated (what the cache is charged).
    size: usize,
}

/// [`EntryHead::value_len`] of a key with no value.
const NO_VALUE: u32 = u32::MAX;
/// Bytes of [`EntryHead`]: the key starts there.
const HEAD: usize = std::mem::size_of::<EntryHead>();
/// Alignment of an entry's allocation: a cache line.
const ENTRY_ALIGN: usize = 64;

/// Bytes allocated for an entry holding `key_len` + `value_len` bytes.
fn entry_size(key_len: usize, value_len: usize) -> usize {
    (HEAD + key_len + value_len).next_multiple_of(ENTRY_ALIGN)
}

/// A new entry for `key` = `value` as of `filled_at`; `None` when it
/// cannot be allocated (nothing is cached then).
fn new_entry(
    hash: u64,
    key: &[u8],
    value: Option<&[u8]>,
    filled_at: SeqNo,
) -> Option<*mut EntryHead> {
    let value_len = match value {
        Some(v) => u32::try_from(v.len()).ok().filter(|&n| n != NO_VALUE)?,
        None => NO_VALUE,
    };
    let key_len = u32::try_from(key.len()).ok()?;
    let size = entry_size(key.len(), value.map_or(0, <[u8]>::len));
    let layout = std::alloc::Layout::from_size_align(size, ENTRY_ALIGN).ok()?;
    // SAFETY: `layout` has a non-zero size (at least HEAD).
    let p = unsafe { std::alloc::alloc(layout) };
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is a fresh allocation of `size` bytes, aligned for
    // `EntryHead`; the head, key and value fit in it (`size` counts them)
    // and do not overlap the caller's slices.
    unsafe {
        p.cast::<EntryHead>().write(EntryHead {
            hash,
            filled_at,
            key_len,
            value_len,
            size,
        });
        std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(HEAD), key.len());
        if let Some(v) = value {
            std::ptr::copy_nonoverlapping(v.as_ptr(), p.add(HEAD + key.len()), v.len());
        }
    }
    Some(p.cast())
}

/// The key and the value (`None`: no value) of the entry at `e`.
///
/// # Safety
///
/// `e` was made by [`new_entry`] and is not freed while the slices live.
unsafe fn entry_parts<'a>(e: *const EntryHead) -> (&'a [u8], Option<&'a [u8]>) {
    // SAFETY: the caller's contract; the head is followed by `key_len`
    // key bytes and `value_len` value bytes, all initialized.
    unsafe {
        let h = &*e;
        let base = e.cast::<u8>().add(HEAD);
        let key = std::slice::from_raw_parts(base, h.key_len as usize);
        let value = (h.value_len != NO_VALUE).then(|| {
            std::slice::from_raw_parts(base.add(h.key_len as usize), h.value_len as usize)
        });
        (key, value)
    }
}

/// Frees the entry at `e`.
///
/// # Safety
///
/// `e` was made by [`new_entry`], is unreachable, and nobody reads it.
unsafe fn free_entry(e: *mut EntryHead) {
    // SAFETY: the caller's contract: `size` and the alignment are the
    // allocation's, which `new_entry` checked as a layout.
    unsafe {
        let size = (*e).size;
        std::alloc::dealloc(
            e.cast(),
            std::alloc::Layout::from_size_align_unchecked(size, ENTRY_ALIGN),
        );
    }
}

struct Slot {
    /// Hash of the last key that missed here (admission).
    last_miss: AtomicU64,
    /// The entry, made by [`new_entry`]; freed through the epoch once
    /// unlinked (see [`RowCache::retire`]).
    entry: AtomicPtr<EntryHead>,
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
                entry: AtomicPtr::new(std::ptr::null_mut()),
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
        if slot.entry.load(Ordering::Relaxed).is_null() {
            return RowLookup::Miss;
        }
        let _guard = epoch::pin();
        let e = slot.entry.load(Ordering::Acquire);
        if e.is_null() {
            return RowLookup::Miss;
        }
        // SAFETY: entries are only freed through the epoch after being
        // unlinked (`retire`), and this thread is pinned.
        let (h, (k, v)) = unsafe { (&*e, entry_parts(e)) };
        if h.hash == hash && same_user_key(k, key) {
            let stamp = self.written_at(hash);
            if stamp <= seq && stamp <= h.filled_at {
                // A copy: readers of one hot key would otherwise all
                // bump one buffer's reference count (readhot, 2 threads:
                // 18.3M ops/s copying, 17.7M sharing).
                return RowLookup::Hit(v.map(Bytes::copy_from_slice));
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
        let charge = entry_size(key.len(), value.map_or(0, |v| v.len()));
        if charge > self.capacity / 16
            || self.charged.load(Ordering::Relaxed) + charge > self.capacity
        {
            return;
        }
        // A private copy: a slice of a table's map would keep the file's
        // pages (and a deleted file) alive.
        let Some(entry) = new_entry(hash, key, value.map(|v| &v[..]), seq) else {
            return;
        };
        self.charged.fetch_add(charge, Ordering::Relaxed);
        self.entries.fetch_add(1, Ordering::Relaxed);
        let guard = epoch::pin();
        let old = slot.entry.swap(entry, Ordering::AcqRel);
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
            let old = slot.entry.swap(std::ptr::null_mut(), Ordering::AcqRel);
            self.retire(old, &guard);
        }
    }

    /// Uncharges an unlinked entry and frees it once no reader can hold it.
    fn retire(&self, old: *mut EntryHead, guard: &epoch::Guard) {
        if old.is_null() {
            return;
        }
        // SAFETY: `old` was just unlinked by a swap and is still allocated.
        let size = unsafe { (*old).size };
        self.charged.fetch_sub(size, Ordering::Relaxed);
        self.entries.fetch_sub(1, Ordering::Relaxed);
        let addr = old as usize;
        // SAFETY: readers that loaded `old` are pinned; it is freed only
        // after they unpin, and nothing can reach it any more.
        unsafe { guard.defer_unchecked(move || free_entry(addr as *mut EntryHead)) };
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
        for slot in self.slots.iter() {
            let e = slot.entry.swap(std::ptr::null_mut(), Ordering::Relaxed);
            if !e.is_null() {
                // SAFETY: unlinked and unreachable by anyone else.
                unsafe { free_entry(e) };
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

    /// Entries are one raw allocation (head, key, value): empty keys and
    /// values, no value, and keys that are prefixes of each other in one
    /// slot (the smallest cache: 64 slots) come back exactly.
    #[test]
    fn entry_layout_keeps_keys_and_values_apart() {
        let c = RowCache::new(64 * BYTES_PER_SLOT);
        assert_eq!(c.slots.len(), 64);
        let cases: [(&[u8], Option<&[u8]>); 5] = [
            (b"", Some(b"empty key")),
            (b"k", Some(b"")),
            (b"kk", None),
            (b"kkk", Some(&[7u8; 300])),
            (&[0u8; 100], Some(b"v")),
        ];
        // Every key in slot 5, one after another: each fill replaces the
        // last entry, and a lookup with another key of the slot misses.
        let mut prev: Option<&[u8]> = None;
        for (k, v) in cases {
            let h = 5 | (1 << 40);
            let v = v.map(Bytes::copy_from_slice);
            c.fill(k, h, 1, v.as_ref());
            c.fill(k, h, 1, v.as_ref());
            match c.get(k, h, 1) {
                RowLookup::Hit(got) => assert_eq!(got, v, "key {k:?}"),
                RowLookup::Miss => panic!("key {k:?} not cached"),
            }
            if let Some(p) = prev {
                assert!(
                    matches!(c.get(p, h, 1), RowLookup::Miss),
                    "{p:?} after {k:?}"
                );
            }
            prev = Some(k);
        }
        assert_eq!(c.len(), 1);
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
