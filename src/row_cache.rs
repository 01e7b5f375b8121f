//! The row cache (`Options::row_cache_size`, RocksDB's `row_cache`): the
//! newest value of recently read keys, read without a lock, so a hot key
//! costs a hash, a load of its slot's lines and a key comparison instead
//! of a search of the memtables and the SST files.
//!
//! Layout: a power-of-two array of buckets of two 256-byte slots (four
//! cache lines each). A slot holds at most one entry; a key lives in one of
//! the two slots of the bucket its hash picks, first looked for in its
//! *home* slot (another bit of the hash), and a new entry replaces the
//! same key's, else fills an empty slot, else evicts one of the two at
//! random. (Direct-mapped slots missed twice as often in `readhot`: hot
//! keys that share a slot evict each other on every read.) An entry whose
//! key and value fit in [`INLINE_BYTES`] is stored in the slot itself, under a
//! *seqlock* (the slot's version is odd while a fill rewrites it; a reader
//! copies the entry out, then checks that the version did not change): a
//! hit reads the slot's lines, all known from the hash, and writes
//! nothing. A larger entry is a separate allocation behind the slot's
//! epoch-protected pointer (`crossbeam-epoch`: a reader pins the epoch, a
//! thread-local operation). Beside the slots, a smaller power-of-two table
//! of *stamps*: the largest sequence number written to any key whose hash
//! picks the stamp (at most 64 Ki stamps, 512 KiB, so that a write's stamp
//! update stays in the CPU's caches; keys sharing a stamp only invalidate
//! each other more often).
//!
//! Why inline: with every entry behind a pointer, a hot read paid two
//! dependent cache misses (the slot, then the entry) and the epoch pin's
//! locked instruction; they were three quarters of the lookup's time in
//! `readhot`.
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
//! Admission: a miss fills a slot only when the same key missed in its
//! bucket last (the bucket remembers the hash of its last miss), so a key
//! must be read twice before it displaces another: a uniform random read
//! load mostly costs a hash and a load per read, not a fill.
//!
//! Size: the slot array takes between a quarter and half of
//! `row_cache_size`, all of it charged at once; it is an anonymous map
//! (its pages are only allocated as slots fill) advised to use huge pages,
//! since hot keys are spread over all of it and a page-table walk per
//! read would cost as much as the read. Entries too large for a slot are
//! charged as allocated, a fill that would exceed the size is skipped, and
//! an entry larger than 1/16 of it is never cached.
//!
//! A range deletion raises one stamp shared by every key
//! ([`RowCache::note_range_write`]), so it kills every entry filled before
//! it; ingested files do the same at their sequence number.
//!
//! Changes with no sequence number of their own (a compaction filter
//! removing or rewriting values, FIFO compaction deleting whole files, a
//! TTL's expiry, new keyspace options with another merge operator, filter
//! or TTL) land inside [`RowCache::begin_change`]: it counts the change and
//! raises the cache's *generation*, and the end raises it again, then
//! uncounts. Each entry's stored hash is mixed with the generation its
//! read began in (loaded before the superversion it read), a lookup looks
//! for the current generation's, and a fill is kept only when no change is
//! counted and the generation is still the read's. So:
//! - an entry filled before a change began dies with its first raise;
//! - a read begun during a change (it may have seen the old files or the
//!   new) fills nothing, or an entry of a generation the end has left;
//! - while a change lands no entry of the current generation exists, so
//!   every read goes to the files, and no reader can see the change and
//!   another reader after it the old value.
//!
//! A sequence number cannot serve here: the old and the new files answer
//! differently at the same one.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_epoch as epoch;

use crate::key::{same_user_key, SeqNo};

/// Bytes of one slot: a header and [`INLINE_BYTES`] of key and value.
const SLOT_BYTES: usize = 256;
/// Slots per bucket.
const WAYS: usize = 2;
/// Bytes of row-cache size per bucket: the slot array is at most half of it.
const BYTES_PER_BUCKET: usize = 2 * WAYS * SLOT_BYTES;
/// Words of a slot's header (see [`Slot`]).
const HEAD_WORDS: usize = 6;
/// Words of a slot's inline entry.
const INLINE_WORDS: usize = SLOT_BYTES / 8 - HEAD_WORDS;
/// Bytes of key plus value stored in the slot itself.
const INLINE_BYTES: usize = INLINE_WORDS * 8;
/// Most buckets (4 GiB of slots).
const MAX_BUCKETS: usize = 1 << 23;
/// Most stamps (see the module documentation).
const MAX_STAMPS: usize = 1 << 16;

/// The head of an entry too large for a slot, followed by the key's bytes
/// and then the value's: one allocation, aligned to and padded to whole
/// cache lines, so that no other allocation (a value copied out for a
/// reader, say, written on every hit) shares a line with it.
#[repr(C)]
struct EntryHead {
    /// The key's hash tagged with `generation` ([`tag`]).
    hash: u64,
    /// The generation its read began in: an entry of another one is dead
    /// ([`RowCache::sweep_dead_entries`] frees it).
    generation: u64,
    /// The read's sequence number: the value is the newest as of it.
    filled_at: SeqNo,
    key_len: u32,
    /// [`NO_VALUE`]: the key has no value (absent or deleted).
    value_len: u32,
    /// Bytes allocated (what the cache is charged).
    size: usize,
}

/// [`EntryHead::value_len`] (and a slot's value length) of a key with no
/// value.
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
    generation: u64,
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
            generation,
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

/// One slot: a header and an inline entry, all atomics so that a reader
/// racing a fill reads stale or mixed words, never undefined behaviour (the
/// version check then throws them away).
///
/// Invariants, kept by [`RowCache::fill`] (the only writer, holding the
/// slot's version odd): `lens == 0` means empty; otherwise `hash`,
/// `filled_at` and `lens` describe the entry, which is inline when
/// `outline` is null (key then value in `inline`, zero-padded) and the
/// allocation at `outline` otherwise. All-zero is a valid empty slot.
#[repr(C, align(64))]
struct Slot {
    /// Even: stable; odd: a fill is rewriting the slot.
    version: AtomicU64,
    hash: AtomicU64,
    /// The entry's read sequence number (its value is the newest as of it).
    filled_at: AtomicU64,
    /// `(key_len + 1) << 32 | value_len` ([`NO_VALUE`]: no value); 0: empty.
    lens: AtomicU64,
    /// An entry too large for `inline`, made by [`new_entry`] and freed
    /// through the epoch once unlinked (see [`RowCache::retire`]).
    outline: AtomicPtr<EntryHead>,
    /// In a bucket's first slot: the hash of the last key that missed in
    /// the bucket (admission). Not under the version: a heuristic.
    last_miss: AtomicU64,
    inline: [AtomicU64; INLINE_WORDS],
}

const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_BYTES);

impl Slot {
    /// Takes the seqlock's write side: makes the version odd and returns
    /// the even version it had (release it by storing that plus 2, or
    /// itself when nothing changed); `None` when another writer holds it.
    #[inline]
    fn lock(&self) -> Option<u64> {
        let version = self.version.load(Ordering::Relaxed);
        (version & 1 == 0
            && self
                .version
                .compare_exchange(version, version + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok())
        .then_some(version)
    }
}

/// Encodes a slot's `lens`.
fn pack_lens(key_len: usize, value: Option<usize>) -> u64 {
    ((key_len as u64 + 1) << 32) | u64::from(value.map_or(NO_VALUE, |v| v as u32))
}

/// Decodes a slot's non-zero `lens`: the key's length and the value's.
fn unpack_lens(lens: u64) -> (usize, Option<usize>) {
    let v = lens as u32;
    (
        ((lens >> 32) as usize).wrapping_sub(1),
        (v != NO_VALUE).then_some(v as usize),
    )
}

/// A bucket: the slots a key may live in.
type Bucket = [Slot; WAYS];

/// The row cache: see the module documentation.
pub(crate) struct RowCache {
    /// `mask + 1` buckets, zeroed at first (empty slots).
    buckets: memmap2::MmapRaw,
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
    /// Raised at both ends of a [`RowCache::begin_change`]: an entry holds the
    /// generation its read began in (mixed into its stored hash, see
    /// [`tag`]), and only entries of the current one are served.
    generation: crossbeam_utils::CachePadded<AtomicU64>,
    /// Changes landing now ([`RowCache::begin_change`]): no fill is kept
    /// while any is.
    changing: AtomicUsize,
    /// Separate entries linked now (entries too large for their slot).
    separate: AtomicUsize,
}

/// A change of what keys read, landing while this lives
/// ([`RowCache::begin_change`]).
pub(crate) struct CacheChange<'a>(&'a RowCache);

impl Drop for CacheChange<'_> {
    fn drop(&mut self) {
        // Raised first: a fill that no longer sees this change counted
        // sees the generation raised past every read begun during it.
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.changing.fetch_sub(1, Ordering::SeqCst);
        if self.0.separate.load(Ordering::Relaxed) > 0 {
            self.0.sweep_dead_entries();
        }
    }
}

/// The hash stored with an entry of the key hashing to `hash` filled in
/// generation `generation`: the hash itself in generation 0, and for the
/// same key a different value in every generation (the multiplier is odd,
/// so `generation -> generation * K` is a bijection), so a lookup in
/// another generation never matches the entry. Different keys whose tags
/// collide are still told apart by their key bytes.
#[inline]
fn tag(hash: u64, generation: u64) -> u64 {
    hash ^ generation.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A lookup of `key` (hashing to `hash`, tagged `tag` in the current
/// generation) for a read at `seq`.
#[derive(Clone, Copy)]
struct Probe<'k> {
    key: &'k [u8],
    hash: u64,
    tag: u64,
    seq: SeqNo,
}

/// What a lookup found; `T` is the value as the lookup hands it out (a
/// new [`Bytes`], or `()` once copied into the caller's buffer).
pub(crate) enum RowLookup<T = Bytes> {
    /// A valid entry: the key's value (`None`: no value) as of the read.
    Hit(Option<T>),
    /// Nothing usable: read the tables, then [`RowCache::fill`].
    Miss,
}

/// An anonymous map for `n` buckets: zero pages, allocated as they are
/// first written, advised to be huge pages where the OS has them.
fn map_buckets(n: usize) -> std::io::Result<memmap2::MmapRaw> {
    let map = memmap2::MmapMut::map_anon(n * std::mem::size_of::<Bucket>())?;
    // Best effort: without huge pages the cache works, only slower.
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok(map.into())
}

impl RowCache {
    /// A cache of about `capacity` bytes (slot array included); an error
    /// when the slot array cannot be mapped.
    pub(crate) fn new(capacity: usize) -> std::io::Result<RowCache> {
        let per = (capacity / BYTES_PER_BUCKET).max(1);
        // The largest power of two not above `per`: the array is between a
        // quarter and half of the capacity.
        let n = (1usize << (usize::BITS - 1 - per.leading_zeros())).clamp(32, MAX_BUCKETS);
        let buckets = map_buckets(n)?;
        let ns = (n * WAYS).min(MAX_STAMPS);
        let stamps: Box<[AtomicU64]> = (0..ns).map(|_| AtomicU64::new(0)).collect();
        let array = n * std::mem::size_of::<Bucket>() + ns * 8;
        Ok(RowCache {
            buckets,
            mask: n - 1,
            stamps,
            stamp_mask: ns - 1,
            range_stamp: AtomicU64::new(0),
            capacity,
            charged: AtomicUsize::new(array),
            entries: AtomicUsize::new(0),
            generation: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            changing: AtomicUsize::new(0),
            separate: AtomicUsize::new(0),
        })
    }

    /// Every bucket.
    #[inline]
    fn all_buckets(&self) -> &[Bucket] {
        // SAFETY: the map holds `mask + 1` buckets, is page-aligned (more
        // than a `Slot` needs), lives as long as `self`, starts zeroed (a
        // valid empty `Slot`), and is only ever accessed through these
        // atomics.
        unsafe { std::slice::from_raw_parts(self.buckets.as_ptr().cast::<Bucket>(), self.mask + 1) }
    }

    /// The bucket of a key hashing to `hash`, and the key's home slot in it.
    #[inline]
    fn bucket(&self, hash: u64) -> (&Bucket, usize) {
        // Masked: always in range.
        (
            &self.all_buckets()[(hash as usize) & self.mask],
            (hash >> 63) as usize,
        )
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
        self.lookup(key, hash, seq, &mut Bytes::copy_from_slice)
    }

    /// [`Self::get`] with a hit's value copied into `buf` (cleared first,
    /// its allocation reused) instead of a new buffer: `Hit(Some(()))`
    /// when the key has a value, `Hit(None)` (and `buf` empty) when it has
    /// none.
    #[inline]
    pub(crate) fn get_into(
        &self,
        key: &[u8],
        hash: u64,
        seq: SeqNo,
        buf: &mut Vec<u8>,
    ) -> RowLookup<()> {
        buf.clear();
        self.lookup(key, hash, seq, &mut |v: &[u8]| buf.extend_from_slice(v))
    }

    /// The lookup of [`Self::get`], a hit's value handed to `copy` (the
    /// slot may be rewritten by a fill once the lookup returns).
    #[inline]
    fn lookup<T>(
        &self,
        key: &[u8],
        hash: u64,
        seq: SeqNo,
        copy: &mut impl FnMut(&[u8]) -> T,
    ) -> RowLookup<T> {
        let (bucket, home) = self.bucket(hash);
        let p = Probe {
            key,
            hash,
            tag: tag(hash, self.generation()),
            seq,
        };
        match self.get_in(&bucket[home], &p, copy) {
            Some(found) => found,
            None => self
                .get_in(&bucket[home ^ 1], &p, copy)
                .unwrap_or(RowLookup::Miss),
        }
    }

    /// [`Self::get`] in one slot, for the entry tagged `tag` (the key's
    /// hash in this generation): `None` when the slot holds another tag
    /// (look in the other slot).
    #[inline]
    fn get_in<T>(
        &self,
        slot: &Slot,
        p: &Probe<'_>,
        copy: &mut impl FnMut(&[u8]) -> T,
    ) -> Option<RowLookup<T>> {
        let version = slot.version.load(Ordering::Acquire);
        if slot.hash.load(Ordering::Relaxed) != p.tag {
            return None;
        }
        let lens = slot.lens.load(Ordering::Relaxed);
        if version & 1 == 1 || lens == 0 {
            return Some(RowLookup::Miss);
        }
        if !slot.outline.load(Ordering::Relaxed).is_null() {
            return Some(self.get_outline(slot, p, copy));
        }
        let filled_at = slot.filled_at.load(Ordering::Relaxed);
        let (key_len, value_len) = unpack_lens(lens);
        let total = key_len.wrapping_add(value_len.unwrap_or(0));
        if key_len != p.key.len() || total > INLINE_BYTES {
            // Another key, or words torn by a fill (checked below if not).
            return Some(RowLookup::Miss);
        }
        let mut words = [0u64; INLINE_WORDS];
        let n = total.div_ceil(8);
        for (w, a) in words[..n].iter_mut().zip(&slot.inline) {
            *w = a.load(Ordering::Relaxed);
        }
        // The seqlock's read side: the loads above happen before the
        // version is read again; unchanged, no fill overlapped them.
        std::sync::atomic::fence(Ordering::Acquire);
        if slot.version.load(Ordering::Relaxed) != version {
            return Some(RowLookup::Miss);
        }
        let bytes = words_as_bytes(&words);
        if !same_user_key(&bytes[..key_len], p.key) {
            return Some(RowLookup::Miss);
        }
        if self.fresh(p, filled_at) {
            // A copy: the slot is rewritten in place by later fills.
            let value = value_len.map(|n| copy(&bytes[key_len..][..n]));
            return Some(RowLookup::Hit(value));
        }
        Some(RowLookup::Miss)
    }

    /// [`Self::get`] for a slot whose entry is a separate allocation.
    #[cold]
    fn get_outline<T>(
        &self,
        slot: &Slot,
        p: &Probe<'_>,
        copy: &mut impl FnMut(&[u8]) -> T,
    ) -> RowLookup<T> {
        let _guard = epoch::pin();
        let e = slot.outline.load(Ordering::Acquire);
        if e.is_null() {
            return RowLookup::Miss;
        }
        // SAFETY: entries are only freed through the epoch after being
        // unlinked (`retire`), and this thread is pinned; an entry is
        // never written after it is linked.
        let (h, (k, v)) = unsafe { (&*e, entry_parts(e)) };
        if h.hash == p.tag && same_user_key(k, p.key) && self.fresh(p, h.filled_at) {
            // A copy: readers of one hot key would otherwise all bump one
            // buffer's reference count.
            return RowLookup::Hit(v.map(copy));
        }
        RowLookup::Miss
    }

    /// Whether an entry of `p`'s key filled at `filled_at` holds its
    /// newest value for a read at `p.seq`: no key sharing its stamp was
    /// written after the fill nor after `p.seq` (module documentation).
    #[inline]
    fn fresh(&self, p: &Probe<'_>, filled_at: SeqNo) -> bool {
        let stamp = self.written_at(p.hash);
        stamp <= p.seq && stamp <= filled_at
    }

    /// Offers the result of a read of `key` at `seq` (its newest value as
    /// of `seq`, `None` for none) after a [`RowLookup::Miss`]; kept when
    /// the same key missed in its slot last, it fits, no write to the
    /// slot came after `seq`, no other fill is rewriting the slot, and the
    /// cache is still in `generation`, the [`Self::generation`] the
    /// caller loaded before the superversion it read.
    pub(crate) fn fill(
        &self,
        key: &[u8],
        hash: u64,
        seq: SeqNo,
        value: Option<&Bytes>,
        generation: u64,
    ) {
        // While a change lands, or once one has landed since `generation`
        // was loaded, the read may have seen either side of it: kept, the
        // entry could be served after the change (or, tagged with the
        // generation of a change still landing, while it lands).
        if self.changing.load(Ordering::SeqCst) != 0 || self.generation() != generation {
            return;
        }
        let (bucket, home) = self.bucket(hash);
        // A plain load and store, no locked instruction: admission is a
        // heuristic, and a lost update only delays a fill.
        let last_miss = &bucket[0].last_miss;
        if last_miss.load(Ordering::Relaxed) != hash {
            last_miss.store(hash, Ordering::Relaxed);
            return;
        }
        if self.written_at(hash) > seq {
            return;
        }
        let value_len = value.map(|v| v.len());
        if value_len.is_some_and(|n| n >= NO_VALUE as usize) || key.len() >= u32::MAX as usize {
            return;
        }
        let total = key.len() + value_len.unwrap_or(0);
        let tag = tag(hash, generation);
        let outline = if total <= INLINE_BYTES {
            std::ptr::null_mut()
        } else {
            if entry_size(key.len(), value_len.unwrap_or(0)) > self.capacity / 16 {
                return;
            }
            // A private copy: a slice of a table's map would keep the
            // file's pages (and a deleted file) alive. Charged once the
            // slot it replaces is known (below).
            let Some(entry) = new_entry(tag, generation, key, value.map(|v| &v[..]), seq) else {
                return;
            };
            entry
        };
        let mut words = [0u64; INLINE_WORDS];
        if outline.is_null() {
            let bytes = words_as_bytes_mut(&mut words);
            bytes[..key.len()].copy_from_slice(key);
            if let Some(v) = value {
                bytes[key.len()..total].copy_from_slice(v);
            }
        }
        let slot = &bucket[fill_way(bucket, home, tag)];
        // Another fill holding the slot wins; this one is dropped.
        let Some(version) = slot.lock() else {
            if !outline.is_null() {
                // SAFETY: never linked nor charged: nobody else can reach it.
                unsafe { free_entry(outline) };
            }
            return;
        };
        if !outline.is_null() && !self.charge_replacing(slot, outline) {
            // Over the size even with the slot's entry gone: the slot
            // stays as it was (the same even version again).
            slot.version.store(version, Ordering::Release);
            // SAFETY: never linked nor charged: nobody else can reach it.
            unsafe { free_entry(outline) };
            return;
        }
        // Readers that see any store below also see the odd version.
        std::sync::atomic::fence(Ordering::Release);
        let was_empty = slot.lens.load(Ordering::Relaxed) == 0;
        slot.hash.store(tag, Ordering::Relaxed);
        slot.filled_at.store(seq, Ordering::Relaxed);
        slot.lens
            .store(pack_lens(key.len(), value_len), Ordering::Relaxed);
        for (a, w) in slot
            .inline
            .iter()
            .zip(&words[..total.min(INLINE_BYTES).div_ceil(8)])
        {
            a.store(*w, Ordering::Relaxed);
        }
        let old = slot.outline.swap(outline, Ordering::AcqRel);
        slot.version.store(version + 2, Ordering::Release);
        if was_empty {
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
        if !outline.is_null() {
            self.separate.fetch_add(1, Ordering::Relaxed);
        }
        if !old.is_null() {
            self.retire(old, &epoch::pin());
        }
    }

    /// Unlinks and retires every separate entry of a generation before
    /// the current one. Such an entry is never served again, but its bytes
    /// stay charged until a fill takes its slot, and after a change every
    /// key's entry is of an old generation, so no fill recognizes its own
    /// slot: a full cache of them would refuse every new separate entry.
    /// Slots a fill holds are skipped (that fill replaces the entry).
    /// Reads every slot: run once a change has ended, when there are
    /// separate entries at all.
    fn sweep_dead_entries(&self) {
        let current = self.generation();
        let guard = epoch::pin();
        for slot in self.all_buckets().iter().flatten() {
            if slot.outline.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let Some(version) = slot.lock() else {
                continue;
            };
            let e = slot.outline.load(Ordering::Acquire);
            // SAFETY: only a fill of this slot retires its entry, and this
            // thread holds the slot's write side.
            if e.is_null() || unsafe { (*e).generation } == current {
                // Unchanged: the same even version again.
                slot.version.store(version, Ordering::Release);
                continue;
            }
            std::sync::atomic::fence(Ordering::Release);
            slot.lens.store(0, Ordering::Relaxed);
            slot.hash.store(0, Ordering::Relaxed);
            let old = slot.outline.swap(std::ptr::null_mut(), Ordering::AcqRel);
            slot.version.store(version + 2, Ordering::Release);
            self.entries.fetch_sub(1, Ordering::Relaxed);
            self.retire(old, &guard);
        }
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

    /// The current generation: load it before the superversion whose
    /// answer is offered to [`Self::fill`].
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Starts a change of what keys read that is not a write with a
    /// sequence number (a compaction filter's decisions, files deleted
    /// whole by FIFO compaction), to be published while the returned
    /// guard lives. Every entry dies at once, no fill is kept until the
    /// guard is dropped, and entries from reads begun before the drop are
    /// never served (see the module documentation).
    pub(crate) fn begin_change(&self) -> CacheChange<'_> {
        // Counted first: a fill that sees the new generation also sees the
        // count (both sequentially consistent).
        self.changing.fetch_add(1, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        CacheChange(self)
    }

    /// Records a range deletion at sequence number `seq` (before it is
    /// published): every entry filled before it is dead from then on, as
    /// if each key had been written.
    pub(crate) fn note_range_write(&self, seq: SeqNo) {
        self.range_stamp.fetch_max(seq, Ordering::Release);
    }

    /// Drops every entry (tests; no fill may run at the same time).
    #[cfg(test)]
    pub(crate) fn clear(&self) {
        let guard = epoch::pin();
        for slot in self.all_buckets().iter().flatten() {
            let version = slot.version.load(Ordering::Relaxed);
            assert_eq!(version & 1, 0, "clear during a fill");
            slot.version.store(version + 1, Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Release);
            let was_full = slot.lens.swap(0, Ordering::Relaxed) != 0;
            let old = slot.outline.swap(std::ptr::null_mut(), Ordering::AcqRel);
            slot.version.store(version + 2, Ordering::Release);
            if was_full {
                self.entries.fetch_sub(1, Ordering::Relaxed);
            }
            if !old.is_null() {
                self.retire(old, &guard);
            }
        }
    }

    /// Uncharges an unlinked entry and frees it once no reader can hold it.
    fn retire(&self, old: *mut EntryHead, guard: &epoch::Guard) {
        // SAFETY: `old` was just unlinked by a swap and is still allocated.
        let size = unsafe { (*old).size };
        self.charged.fetch_sub(size, Ordering::Relaxed);
        self.separate.fetch_sub(1, Ordering::Relaxed);
        let addr = old as usize;
        // SAFETY: readers that loaded `old` are pinned; it is freed only
        // after they unpin, and nothing can reach it any more.
        unsafe { guard.defer_unchecked(move || free_entry(addr as *mut EntryHead)) };
    }

    /// Charges `entry` (made by [`new_entry`], not linked) for `slot`,
    /// whose write side the caller holds: `false`, charging nothing, when
    /// the cache would exceed its size even once the slot's own separate
    /// entry (which the fill is about to retire, uncharging it) is gone.
    /// Counting that entry lets a full cache replace its entries, dead
    /// ones included (a key written since, a change of the cache).
    fn charge_replacing(&self, slot: &Slot, entry: *mut EntryHead) -> bool {
        let old = slot.outline.load(Ordering::Acquire);
        // SAFETY: `entry` is private to the caller; `old`, if any, is only
        // retired by a fill of this slot, whose write side the caller
        // holds, so it is still allocated.
        let (charge, freed) = unsafe { ((*entry).size, old.as_ref().map_or(0, |o| o.size)) };
        if self.charged.load(Ordering::Relaxed) + charge > self.capacity + freed {
            return false;
        }
        self.charged.fetch_add(charge, Ordering::Relaxed);
        true
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

/// The slot of `bucket` a fill of the key tagged `tag` (its hash in this
/// generation, see [`tag`]; home slot `home`) takes: the key's own, else
/// an empty one (home first), else one at random.
fn fill_way(bucket: &Bucket, home: usize, tag: u64) -> usize {
    let holds = |w: usize, h: u64| {
        let s = &bucket[w];
        s.lens.load(Ordering::Relaxed) != 0 && s.hash.load(Ordering::Relaxed) == h
    };
    let empty = |w: usize| bucket[w].lens.load(Ordering::Relaxed) == 0;
    let other = home ^ 1;
    if holds(home, tag) {
        home
    } else if holds(other, tag) {
        other
    } else if empty(home) {
        home
    } else if empty(other) {
        other
    } else {
        thread_local!(static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9e37_79b9_7f4a_7c15) });
        // xorshift: a victim independent of the keys, so that three hot
        // keys of one bucket do not evict the same one for ever.
        NEXT.with(|n| {
            let mut x = n.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            n.set(x);
            (x & 1) as usize
        })
    }
}

/// The bytes of `words` (an inline entry as copied out of a slot).
fn words_as_bytes(words: &[u64; INLINE_WORDS]) -> &[u8; INLINE_BYTES] {
    // SAFETY: same size, `u8` has no alignment, every byte is initialized.
    unsafe { &*(words as *const [u64; INLINE_WORDS]).cast::<[u8; INLINE_BYTES]>() }
}

/// The bytes of `words`, to build an inline entry in.
fn words_as_bytes_mut(words: &mut [u64; INLINE_WORDS]) -> &mut [u8; INLINE_BYTES] {
    // SAFETY: as in `words_as_bytes`; every byte pattern is a valid `u64`.
    unsafe { &mut *(words as *mut [u64; INLINE_WORDS]).cast::<[u8; INLINE_BYTES]>() }
}

impl Drop for RowCache {
    fn drop(&mut self) {
        // No reader is left (`&mut self`): free the entries at once.
        for slot in self.all_buckets().iter().flatten() {
            let e = slot.outline.swap(std::ptr::null_mut(), Ordering::Relaxed);
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
        let c = RowCache::new(1 << 20).unwrap();
        let (k, h) = (b"key".as_slice(), filter_hash(b"key"));
        let v = Bytes::from_static(b"value");
        assert!(lookup(&c, k, 10).is_none());
        c.fill(k, h, 10, Some(&v), c.generation());
        // First miss: not admitted yet.
        assert!(lookup(&c, k, 10).is_none());
        c.fill(k, h, 10, Some(&v), c.generation());
        assert_eq!(lookup(&c, k, 10), Some(Some(v.clone())));
        // A later read (no write since) hits too.
        assert_eq!(lookup(&c, k, 50), Some(Some(v.clone())));
        // A write at 60: dead for reads at 60 and after, and for reads at
        // 55 too (conservative).
        c.note_write(h, 60);
        assert!(lookup(&c, k, 55).is_none());
        assert!(lookup(&c, k, 60).is_none());
        // A fill from a read older than the write is refused.
        c.fill(k, h, 55, Some(&v), c.generation());
        assert!(lookup(&c, k, 70).is_none());
        // A fill from a read after the write serves later reads.
        c.fill(k, h, 60, None, c.generation());
        assert_eq!(lookup(&c, k, 70), Some(None));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn an_entry_filled_later_serves_an_older_read_only_without_writes_between() {
        let c = RowCache::new(1 << 20).unwrap();
        let (k, h) = (b"k".as_slice(), filter_hash(b"k"));
        let v = Bytes::from_static(b"v");
        c.note_write(h, 5);
        c.fill(k, h, 20, Some(&v), c.generation());
        c.fill(k, h, 20, Some(&v), c.generation());
        // Read at 10: the last write (5) is at or before 10: same value.
        assert_eq!(lookup(&c, k, 10), Some(Some(v.clone())));
        // Read at 4: a write at 5 came after it: not served.
        assert!(lookup(&c, k, 4).is_none());
    }

    /// Entries are one raw allocation (head, key, value): empty keys and
    /// values, no value, and keys that are prefixes of each other in one
    /// slot (the smallest cache: 32 buckets) come back exactly.
    #[test]
    fn entry_layout_keeps_keys_and_values_apart() {
        let c = RowCache::new(32 * BYTES_PER_BUCKET).unwrap();
        assert_eq!(c.all_buckets().len(), 32);
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
            c.fill(k, h, 1, v.as_ref(), c.generation());
            c.fill(k, h, 1, v.as_ref(), c.generation());
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

    /// Fills racing reads in one bucket: a reader gets a key's own value
    /// or a miss, never bytes of another entry (the seqlock), whatever the
    /// mix of inline and separately allocated entries in the slots.
    #[test]
    fn readers_racing_fills_never_see_a_torn_entry() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let c = Arc::new(RowCache::new(1 << 20).unwrap());
        // Keys of different lengths, all in bucket 3, homes 0 and 1;
        // values a function of the key, some inline, some not.
        let keys: Vec<(Vec<u8>, u64)> = (0..6u8)
            .map(|i| {
                (
                    vec![b'a' + i; 1 + 7 * i as usize],
                    3 | (u64::from(i & 1) << 63) | (u64::from(i) << 40),
                )
            })
            .collect();
        let value_of = |k: &[u8]| -> Bytes {
            let n = [0, 5, 100, 190, 300, 40][(k[0] - b'a') as usize];
            Bytes::from(
                (0..n)
                    .map(|j| k[0].wrapping_add(j as u8))
                    .collect::<Vec<u8>>(),
            )
        };
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (c, keys, stop) = (Arc::clone(&c), keys.clone(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let (mut hits, mut i) = (0u64, 0usize);
                    while !stop.load(Ordering::Relaxed) {
                        let (k, h) = &keys[i % keys.len()];
                        i += 1;
                        if let RowLookup::Hit(v) = c.get(k, *h, 10) {
                            assert_eq!(v, Some(value_of(k)), "key {:?}", k[0] as char);
                            hits += 1;
                        }
                    }
                    hits
                })
            })
            .collect();
        let fillers: Vec<_> = (0..2)
            .map(|t| {
                let (c, keys) = (Arc::clone(&c), keys.clone());
                std::thread::spawn(move || {
                    for n in 0..200_000usize {
                        let (k, h) = &keys[(n * 5 + t) % keys.len()];
                        let v = value_of(k);
                        c.fill(k, *h, 10, Some(&v), c.generation());
                        c.fill(k, *h, 10, Some(&v), c.generation());
                    }
                })
            })
            .collect();
        for f in fillers {
            f.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let hits: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(hits > 0, "the race was never exercised");
        assert!(c.len() <= WAYS);
        // Every separately allocated entry still linked is charged; the
        // rest were uncharged when replaced.
        let linked: usize = c.all_buckets()[3]
            .iter()
            .map(|s| s.outline.load(Ordering::Relaxed))
            .filter(|p| !p.is_null())
            .map(|p| unsafe { (*p).size })
            .sum();
        let array = std::mem::size_of_val(c.all_buckets()) + c.stamps.len() * 8;
        assert_eq!(c.charged(), array + linked);
    }

    /// Two keys whose homes differ share a bucket without evicting each
    /// other; a third evicts one of them; the same key refills its slot.
    #[test]
    fn a_bucket_holds_two_keys() {
        let c = RowCache::new(1 << 20).unwrap();
        let v = Bytes::from_static(b"v");
        let (a, b, x) = (7, 7 | (1 << 63), 7 | (1 << 40));
        for (k, h) in [(b"a", a), (b"b", b), (b"a", a), (b"b", b)] {
            c.fill(k, h, 1, Some(&v), c.generation());
            c.fill(k, h, 1, Some(&v), c.generation());
        }
        assert_eq!(c.len(), 2);
        assert!(matches!(c.get(b"a", a, 1), RowLookup::Hit(_)));
        assert!(matches!(c.get(b"b", b, 1), RowLookup::Hit(_)));
        c.fill(b"x", x, 1, Some(&v), c.generation());
        c.fill(b"x", x, 1, Some(&v), c.generation());
        assert!(matches!(c.get(b"x", x, 1), RowLookup::Hit(_)));
        let left = [(b"a", a), (b"b", b)]
            .iter()
            .filter(|(k, h)| matches!(c.get(*k, *h, 1), RowLookup::Hit(_)))
            .count();
        assert_eq!(left, 1, "one of the two was evicted");
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn bounded_by_its_capacity_and_large_values_are_not_cached() {
        let c = RowCache::new(64 << 10).unwrap();
        let big = Bytes::from(vec![1u8; 8 << 10]);
        c.fill(b"big", filter_hash(b"big"), 1, Some(&big), c.generation());
        c.fill(b"big", filter_hash(b"big"), 1, Some(&big), c.generation());
        assert!(lookup(&c, b"big", 1).is_none(), "over 1/16 of the capacity");
        let v = Bytes::from(vec![2u8; 1000]);
        for i in 0..10_000u32 {
            let k = format!("key{i}");
            for _ in 0..2 {
                c.fill(
                    k.as_bytes(),
                    filter_hash(k.as_bytes()),
                    1,
                    Some(&v),
                    c.generation(),
                );
            }
        }
        assert!(c.charged() <= 64 << 10, "charged {}", c.charged());
        assert!(c.len() > 0);
        c.clear();
        assert_eq!(c.len(), 0);
    }
}
