//! The memtable: recent writes, in a lock-free skiplist, until they are
//! flushed to an SST file.
//!
//! Entries are keyed by the encoded internal key (user key ascending,
//! sequence number descending), so the newest version of a key comes first
//! and a lookup for `(key, seq)` is one `lower_bound` search.
//!
//! Invariants:
//! - Writers insert concurrently (each writer of a write group inserts
//!   its own batch, and the next group's can overlap it: `db::write`);
//!   the skiplist is lock-free, the arena takes a short lock per entry,
//!   the filter and the counters use atomic read-modify-writes. Any number
//!   of readers search and iterate concurrently without locks. A reader
//!   only looks for sequence numbers that were published, and publication
//!   follows the inserts (release/acquire on the visible sequence).
//! - Every internal key is inserted at most once: sequence numbers are
//!   unique, so entries are never overwritten.
//! - A memtable is frozen (no more inserts) before it is flushed; the flush
//!   sees a stable snapshot of it.
//!
//! Layout: the skiplist key is a [`MemKey`] holding the first 8 bytes of
//! the user key inline and a pointer to the encoded internal key in the
//! memtable's [`Arena`]; values are `Bytes` slices of
//! arena chunks. Most comparisons during a search are decided by the
//! inline prefix without following the pointer, and an insert makes no
//! heap allocation of its own beyond the skiplist node.

mod arena;
mod bloom;

use std::cmp::Ordering as CmpOrdering;

use arena::Arena;
use bloom::MemBloom;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use crossbeam_skiplist::map::Entry;
use crossbeam_skiplist::SkipMap;
use lightning_compaction::{FragmentedTombstones, RangeTombstone};
use parking_lot::Mutex;

use crate::blob::LiveBlobFile;
use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::{
    compare_internal, key_prefix, pack_trailer, parse_internal_key, SeqNo, ValueKind, TRAILER_LEN,
};
use crate::sst::filter_hash;

/// Bytes counted per entry on top of key and value: the skiplist node (its
/// 8-byte header, the 24-byte [`MemKey`] and a tower of `h` pointers, where
/// `h` is `k` with probability `2^-k`), as the allocator rounds it: 58.7
/// bytes on average with glibc's 16-byte chunks.
const ENTRY_OVERHEAD: usize = 59;

/// A skiplist key: an encoded internal key in the arena, followed there by
/// its value, with the first 8 bytes of its user key (big-endian,
/// zero-padded) copied inline. The skiplist's values are `()`: keeping the
/// value's length here makes a node 32 bytes smaller than a `Bytes` handle
/// would. Ordered like [`crate::key::compare_internal`]: user key
/// ascending, then trailer (sequence, kind) descending.
///
/// Prefix order agrees with user-key order ([`key_prefix`]); equal
/// prefixes fall back to comparing the whole user keys, and equal user
/// keys to the trailers, read from the arena next to the user key (the
/// comparison has just read those bytes). 24 bytes: a trailer copy would
/// make every node 8 bytes larger, about 10 bytes with the allocator's
/// rounding.
///
/// Invariant: `ptr` points at a whole encoded internal key of `len` bytes
/// (stored keys and lookup keys alike).
pub(crate) struct MemKey {
    prefix: u64,
    /// The encoded internal key (user key then 8-byte trailer), then the
    /// value.
    ptr: *const u8,
    /// Length of the encoded internal key.
    len: u32,
    /// Length of the value after it (0 for lookup keys).
    vlen: u32,
}

// SAFETY: a `MemKey` in the skiplist points into its memtable's arena,
// immutable bytes that live as long as the memtable (and the skiplist,
// which the memtable drops first); a lookup key points at the caller's
// encoded internal key for the duration of one search call. Neither is
// written through.
unsafe impl Send for MemKey {}
unsafe impl Sync for MemKey {}

thread_local! {
    /// The encoded lookup key of [`MemTable::get_hashed`], reused.
    static LOOKUP_KEY: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl MemKey {
    /// A key over `ikey`, an encoded internal key that must outlive every
    /// use of the returned value (arena bytes, or a lookup target used for
    /// one search call only).
    #[inline]
    fn over(ikey: &[u8]) -> MemKey {
        let split = ikey.len().saturating_sub(TRAILER_LEN);
        MemKey {
            prefix: key_prefix(&ikey[..split]),
            ptr: ikey.as_ptr(),
            len: ikey.len() as u32,
            vlen: 0,
        }
    }

    /// The encoded internal key.
    #[inline]
    fn bytes(&self) -> &[u8] {
        // SAFETY: see the `Send`/`Sync` comment: the bytes outlive `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
    }

    /// The value stored after the key (stored keys only).
    #[inline]
    fn value(&self) -> &[u8] {
        // SAFETY: a stored key's arena copy holds `len + vlen` bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.add(self.len as usize), self.vlen as usize) }
    }

    /// Requests the cache lines of the stored key and value (at most
    /// [`PREFETCH_MAX`] bytes; a hint, see [`crate::prefetch`]).
    #[inline]
    fn prefetch(&self) {
        let n = (self.len as usize + self.vlen as usize).min(PREFETCH_MAX);
        // SAFETY: a stored key's arena copy holds `len + vlen >= n` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, n) };
        crate::prefetch::prefetch_range(bytes);
    }
}

/// Most bytes of an entry [`MemKey::prefetch`] requests.
const PREFETCH_MAX: usize = 256;

impl Ord for MemKey {
    #[inline]
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // Equal prefixes: the whole internal keys decide (user key, then
        // trailer descending), read from the arena.
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| compare_internal(self.bytes(), other.bytes()))
    }
}

impl PartialOrd for MemKey {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for MemKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for MemKey {}

/// An in-memory sorted buffer of recent writes.
pub(crate) struct MemTable {
    // Declared before `arena`: the keys point into it.
    map: SkipMap<MemKey, ()>,
    arena: Arena,
    approximate_size: AtomicUsize,
    num_entries: AtomicU64,
    num_deletions: AtomicU64,
    /// Number of the oldest WAL that may hold this memtable's writes
    /// (its writes span that WAL and the later ones). Advanced only while
    /// the memtable is empty ([`MemTable::advance_empty_log_number`]).
    log_number: AtomicU64,
    /// Filter over the user keys, checked before a point read searches
    /// the skiplist (`Options::memtable_bloom`).
    bloom: Option<MemBloom>,
    /// With a filter: each key's prefix goes into it too, so a scan
    /// within one prefix can skip this memtable (`Options::prefix_extractor`).
    prefix: Option<Arc<dyn crate::PrefixExtractor>>,
    /// Range tombstones, in insertion order (appended under the lock).
    range_dels: Mutex<Vec<RangeTombstone>>,
    /// Number of range tombstones inserted so far, raised (release) after
    /// each is in `range_dels`: a reader that sees a sequence number as
    /// published also sees the count including every tombstone at or
    /// below it.
    range_del_count: AtomicUsize,
    /// The tombstones fragmented, as of some count: rebuilt by the first
    /// reader that finds it behind `range_del_count`.
    range_del_cache: ArcSwap<(usize, Arc<FragmentedTombstones>)>,
    /// Key-value separation at put time: puts of values of at least this
    /// many bytes go to `live_blob` (`Options::enable_blob_files`, no
    /// TTL), compressed so; `None`: off.
    separation: Option<(usize, crate::options::Compression)>,
    /// The blob file the write path appends this memtable's large values
    /// to, created by the write-group leader on the first one
    /// (`crate::db::separate`); finished by this memtable's flush.
    live_blob: std::sync::OnceLock<Arc<LiveBlobFile>>,
}

/// The newest version of a key that a read may see, with its sequence
/// number (which a range tombstone may still delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The key holds this value.
    Value(Bytes, SeqNo),
    /// The key was deleted.
    Deleted(SeqNo),
    /// The newest version is a merge operand: the reader must fold it
    /// with the older versions ([`crate::version::superversion::SuperVersion::get_hashed`]).
    Merge(SeqNo),
    /// The key holds this timed value: the user's value followed by its
    /// write time ([`crate::ttl`]); expired, it reads as deleted.
    Timed(Bytes, SeqNo),
    /// The key holds the value this encoded blob reference names (in the
    /// memtable's live blob file, or one of a version).
    Blob(Bytes, SeqNo),
}

impl MemTable {
    /// An empty memtable whose writes go to WAL `log_number`, with a key
    /// filter of `bloom_bytes` bytes (0: none).
    pub(crate) fn new(log_number: u64, bloom_bytes: usize) -> Self {
        MemTable {
            map: SkipMap::new(),
            arena: Arena::new(),
            approximate_size: AtomicUsize::new(0),
            num_entries: AtomicU64::new(0),
            num_deletions: AtomicU64::new(0),
            log_number: AtomicU64::new(log_number),
            bloom: (bloom_bytes > 0).then(|| MemBloom::with_bytes(bloom_bytes)),
            prefix: None,
            range_dels: Mutex::new(Vec::new()),
            range_del_count: AtomicUsize::new(0),
            range_del_cache: ArcSwap::from_pointee((0, Arc::new(FragmentedTombstones::empty()))),
            separation: None,
            live_blob: std::sync::OnceLock::new(),
        }
    }

    /// An empty memtable of a tree with options `o`: its filter
    /// (`memtable_bloom`), holding key prefixes too when `o` has a prefix
    /// extractor.
    pub(crate) fn for_tree(log_number: u64, o: &crate::options::Options) -> Self {
        let mut m = MemTable::new(log_number, o.memtable_bloom_bytes());
        if m.bloom.is_some() {
            m.prefix = o.prefix_extractor.clone();
        }
        if o.enable_blob_files && o.ttl.is_none() {
            m.separation = Some((o.min_blob_size, o.blob_compression_type));
        }
        m
    }

    /// Key-value separation at put time: the smallest value that goes to
    /// the live blob file, and its compression (`None`: off).
    pub(crate) fn separation(&self) -> Option<(usize, crate::options::Compression)> {
        self.separation
    }

    /// The live blob file, creating it with `create` on the first call
    /// (the write-group leader's, WAL lock held: one at a time).
    pub(crate) fn live_blob_or_create(
        &self,
        create: impl FnOnce() -> Result<LiveBlobFile>,
    ) -> Result<&Arc<LiveBlobFile>> {
        if let Some(f) = self.live_blob.get() {
            return Ok(f);
        }
        let f = Arc::new(create()?);
        Ok(self.live_blob.get_or_init(|| f))
    }

    /// The live blob file, if the write path made one.
    pub(crate) fn live_blob(&self) -> Option<&Arc<LiveBlobFile>> {
        self.live_blob.get()
    }

    /// False only when this memtable certainly holds no key with prefix
    /// `prefix` as extractor `extractor` (by name) cuts it. A key made
    /// visible to a reader (published) before the call is never missed:
    /// its filter bits were set before it was published.
    pub(crate) fn may_hold_prefix(&self, extractor: &str, prefix: &[u8]) -> bool {
        match (&self.bloom, &self.prefix) {
            (Some(b), Some(x)) if x.name() == extractor => b.may_contain(filter_hash(prefix)),
            _ => true,
        }
    }

    /// Number of the oldest WAL that may hold this memtable's writes.
    pub(crate) fn log_number(&self) -> u64 {
        self.log_number.load(Ordering::Acquire)
    }

    /// Moves the log number of an empty memtable to `log_number` (a new
    /// WAL was started and this memtable has nothing in the older ones),
    /// so that an idle keyspace does not keep old WALs alive. The caller
    /// guarantees no insert into it is in flight (the write-group leader,
    /// after every logged group is inserted). A no-op on a memtable that
    /// holds anything.
    pub(crate) fn advance_empty_log_number(&self, log_number: u64) {
        if self.is_empty() {
            self.log_number.fetch_max(log_number, Ordering::AcqRel);
        }
    }

    /// Inserts one version. Safe from several threads at once (the
    /// writers of concurrent write groups each insert their own batch);
    /// every internal key must be new (sequence numbers are unique).
    #[cfg(test)]
    pub(crate) fn insert(&self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: &[u8]) {
        let size = self.insert_entry(user_key, seq, kind, value);
        self.approximate_size.fetch_add(size, Ordering::Relaxed);
        self.num_entries.fetch_add(1, Ordering::Relaxed);
        if kind == ValueKind::Delete {
            self.num_deletions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds the entry to the arena, the filter and the skiplist; returns
    /// its charge for `approximate_size` (the counters are the caller's).
    #[inline]
    fn insert_entry(&self, user_key: &[u8], seq: SeqNo, kind: ValueKind, value: &[u8]) -> usize {
        let trailer = pack_trailer(seq, kind).to_le_bytes();
        let klen = user_key.len() + TRAILER_LEN;
        let ptr = self.arena.copy_raw(&[user_key, &trailer, value]);
        let key = MemKey {
            prefix: key_prefix(user_key),
            ptr,
            len: klen as u32,
            vlen: value.len() as u32,
        };
        if let Some(b) = &self.bloom {
            b.add(filter_hash(user_key));
            if let Some(p) = self.prefix.as_ref().and_then(|x| x.prefix(user_key)) {
                b.add(filter_hash(p));
            }
        }
        self.map.insert(key, ());
        klen + value.len() + ENTRY_OVERHEAD
    }

    /// Inserts every operation of `batch`, operation `i` at sequence number
    /// `batch.sequence() + i`; returns the last sequence number used (the
    /// batch's sequence minus one for an empty batch). Safe from several
    /// threads at once, like [`insert`](Self::insert); the counters are
    /// bumped once per batch (three locked instructions, not three per
    /// entry).
    pub(crate) fn insert_batch(&self, batch: &crate::batch::WriteBatch) -> SeqNo {
        self.insert_ops(batch, None)
    }

    /// [`insert_batch`](Self::insert_batch) for the operations of keyspace
    /// `keyspace` only (the others keep their sequence numbers but go to
    /// other memtables). Returns the batch's last sequence number.
    pub(crate) fn insert_batch_in(&self, batch: &crate::batch::WriteBatch, keyspace: u32) -> SeqNo {
        self.insert_ops(batch, Some(keyspace))
    }

    fn insert_ops(&self, batch: &crate::batch::WriteBatch, keyspace: Option<u32>) -> SeqNo {
        let mut last = batch.sequence().saturating_sub(1);
        let (mut size, mut entries, mut deletes) = (0usize, 0u64, 0u64);
        for (op, seq) in batch.iter().zip(batch.sequence()..) {
            last = seq;
            if keyspace.is_some_and(|k| k != op.keyspace) {
                continue;
            }
            match op.kind.value_kind() {
                Some(kind) => {
                    size += self.insert_entry(op.key, seq, kind, op.value);
                    if kind == ValueKind::BlobIndex {
                        // The value in the live blob file counts too, so
                        // the memtable (and its blob file) is flushed
                        // after about `write_buffer_size` bytes.
                        size += crate::blob::BlobRef::decode(op.value)
                            .map_or(0, |r| r.stored_len as usize);
                    }
                    entries += 1;
                    deletes += u64::from(kind == ValueKind::Delete);
                }
                None => size += self.insert_range_tombstone(op.key, op.value, seq),
            }
        }
        self.approximate_size.fetch_add(size, Ordering::Relaxed);
        self.num_entries.fetch_add(entries, Ordering::Relaxed);
        if deletes > 0 {
            self.num_deletions.fetch_add(deletes, Ordering::Relaxed);
        }
        last
    }

    /// Adds the range tombstone `[start, end) @ seq`; returns its charge.
    fn insert_range_tombstone(&self, start: &[u8], end: &[u8], seq: SeqNo) -> usize {
        let mut all = self.range_dels.lock();
        all.push(RangeTombstone {
            start: start.to_vec(),
            end: end.to_vec(),
            seq,
        });
        self.range_del_count.store(all.len(), Ordering::Release);
        start.len() + end.len() + ENTRY_OVERHEAD
    }

    /// Number of range tombstones inserted.
    pub(crate) fn num_range_deletions(&self) -> usize {
        self.range_del_count.load(Ordering::Acquire)
    }

    /// The range tombstones, fragmented, including every one whose
    /// sequence number was published before the call; `None` when there
    /// are none (the common case: one atomic load).
    #[inline]
    pub(crate) fn range_tombstones(&self) -> Option<Arc<FragmentedTombstones>> {
        let n = self.range_del_count.load(Ordering::Acquire);
        if n == 0 {
            return None;
        }
        let cached = self.range_del_cache.load();
        if cached.0 >= n {
            return Some(Arc::clone(&cached.1));
        }
        drop(cached);
        Some(self.refragment())
    }

    /// The newest sequence number, at most `seq`, of a range tombstone in
    /// this memtable covering `key` (0: none); one atomic load when there
    /// are none, and no reference count touched when there are.
    #[inline]
    pub(crate) fn max_covering_seq(&self, key: &[u8], seq: SeqNo) -> SeqNo {
        let n = self.range_del_count.load(Ordering::Acquire);
        if n == 0 {
            return 0;
        }
        let cached = self.range_del_cache.load();
        if cached.0 >= n {
            return cached.1.max_covering_seq(key, seq);
        }
        drop(cached);
        self.refragment().max_covering_seq(key, seq)
    }

    #[cold]
    fn refragment(&self) -> Arc<FragmentedTombstones> {
        let all = self.range_dels.lock();
        let cached = self.range_del_cache.load();
        if cached.0 >= all.len() {
            return Arc::clone(&cached.1);
        }
        let set = Arc::new(FragmentedTombstones::new(all.iter().cloned()));
        self.range_del_cache
            .store(Arc::new((all.len(), Arc::clone(&set))));
        set
    }

    /// The newest version of `user_key` with sequence number `<= seq`, or
    /// `None` when this memtable has none.
    #[cfg(test)]
    pub(crate) fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<Lookup> {
        self.get_hashed(user_key, filter_hash(user_key), seq)
    }

    /// The newest version of `user_key` (whose [`filter_hash`] is `hash`)
    /// with sequence number `<= seq`, or `None` when this memtable has none.
    pub(crate) fn get_hashed(&self, user_key: &[u8], hash: u64, seq: SeqNo) -> Option<Lookup> {
        if self.bloom.as_ref().is_some_and(|b| !b.may_contain(hash)) {
            return None;
        }
        // The lookup key is the encoded internal key (user key, then the
        // trailer), built in this thread's buffer.
        let entry = LOOKUP_KEY.with(|cell| {
            let mut buf = cell.take();
            buf.clear();
            buf.extend_from_slice(user_key);
            buf.extend_from_slice(&pack_trailer(seq, ValueKind::FOR_SEEK).to_le_bytes());
            let entry = self
                .map
                .lower_bound(std::ops::Bound::Included(&MemKey::over(&buf)));
            cell.replace(buf);
            entry
        })?;
        let parsed = parse_internal_key(entry.key().bytes())?;
        if parsed.user_key != user_key {
            return None;
        }
        // The skiplist holds puts, deletes and merges (range tombstones
        // are kept apart: `insert_range_tombstone`).
        Some(match parsed.kind {
            ValueKind::Delete => Lookup::Deleted(parsed.seq),
            ValueKind::Merge => Lookup::Merge(parsed.seq),
            ValueKind::TimedValue => Lookup::Timed(self.value_bytes(entry.key()), parsed.seq),
            ValueKind::BlobIndex => Lookup::Blob(self.value_bytes(entry.key()), parsed.seq),
            _ => Lookup::Value(self.value_bytes(entry.key()), parsed.seq),
        })
    }

    /// False only when this memtable certainly holds no version of the
    /// key whose [`filter_hash`] is `hash` (no filter: true).
    #[inline]
    pub(crate) fn may_contain_hash(&self, hash: u64) -> bool {
        self.bloom.as_ref().is_none_or(|b| b.may_contain(hash))
    }

    /// The value of a stored key as a shared slice of its arena chunk.
    fn value_bytes(&self, k: &MemKey) -> Bytes {
        let v = k.value();
        // The arena always finds its own bytes; copying is only a fallback.
        self.arena
            .bytes_of(v.as_ptr(), v.len())
            .unwrap_or_else(|| Bytes::copy_from_slice(v))
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

    /// True when nothing was inserted (no entry and no range tombstone).
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty() && self.num_range_deletions() == 0
    }

    /// A cursor over the entries; it keeps the memtable alive.
    pub(crate) fn iter(self: &Arc<Self>) -> MemTableIterator {
        MemTableIterator {
            current: None,
            ahead: None,
            lookahead: false,
            mem: Arc::clone(self),
        }
    }

    /// A cursor for one forward pass over a memtable that no longer takes
    /// writes (a flush). It keeps the next entry in hand and requests its
    /// key and value from memory while the caller works on the current
    /// one: the arena holds entries in insertion order, so in key order
    /// each one is a cache miss of its own, and the flush waited for them
    /// one by one. (On a memtable still taking writes an entry inserted
    /// between the two could be skipped, hence the separate constructor.)
    pub(crate) fn iter_frozen(self: &Arc<Self>) -> MemTableIterator {
        MemTableIterator {
            lookahead: true,
            ..self.iter()
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
    current: Option<Entry<'static, MemKey, ()>>,
    /// With `lookahead`, after a forward move: the successor of `current`
    /// (`None` at the end); `None` after any other move. Same lifetime rule
    /// as `current`.
    ahead: Option<Option<Entry<'static, MemKey, ()>>>,
    lookahead: bool,
    mem: Arc<MemTable>,
}

impl MemTableIterator {
    /// With `lookahead`: takes the successor of `current` in hand and
    /// requests its bytes.
    fn fill_ahead(&mut self) {
        if self.lookahead {
            let e = self.current.as_ref().and_then(|e| e.next());
            if let Some(e) = &e {
                e.key().prefetch();
            }
            // SAFETY: the successor borrows the same memtable.
            self.ahead = Some(unsafe { extend(e) });
        }
    }
}

type MemEntry<'a> = Entry<'a, MemKey, ()>;

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
        self.fill_ahead();
    }

    fn seek_to_last(&mut self) {
        self.ahead = None;
        // SAFETY: stored in `current` of the iterator holding the Arc.
        self.current = unsafe { extend(self.mem.map.back()) };
    }

    fn seek(&mut self, target: &[u8]) {
        // SAFETY: stored in `current` of the iterator holding the Arc.
        self.current = unsafe {
            extend(
                self.mem
                    .map
                    .lower_bound(std::ops::Bound::Included(&MemKey::over(target))),
            )
        };
        self.fill_ahead();
    }

    fn seek_for_prev(&mut self, target: &[u8]) {
        self.ahead = None;
        // SAFETY: stored in `current` of the iterator holding the Arc.
        self.current = unsafe {
            extend(
                self.mem
                    .map
                    .upper_bound(std::ops::Bound::Included(&MemKey::over(target))),
            )
        };
    }

    fn next(&mut self) {
        if let Some(e) = self.ahead.take() {
            self.current = e;
            self.fill_ahead();
            return;
        }
        let e = self.current.as_ref().and_then(|e| e.next());
        // SAFETY: the successor borrows the same memtable.
        self.current = unsafe { extend(e) };
        self.fill_ahead();
    }

    fn prev(&mut self) {
        self.ahead = None;
        let e = self.current.as_ref().and_then(|e| e.prev());
        // SAFETY: the predecessor borrows the same memtable.
        self.current = unsafe { extend(e) };
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |e| e.key().bytes())
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |e| e.key().value())
    }

    fn value_bytes(&self) -> Bytes {
        self.current
            .as_ref()
            .map_or_else(Bytes::new, |e| self.mem.value_bytes(e.key()))
    }

    fn status(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{encode_internal_key, MAX_SEQUENCE};

    #[test]
    fn mem_key_is_24_bytes() {
        // ENTRY_OVERHEAD's arithmetic assumes it.
        assert_eq!(std::mem::size_of::<MemKey>(), 24);
    }

    #[test]
    fn get_sees_newest_visible_version() {
        // No filter, a one-line filter (every lookup a false positive
        // soon) and a roomy one.
        for bloom in [0, 64, 4096] {
            get_sees_newest_visible_version_with(bloom);
        }
    }

    fn get_sees_newest_visible_version_with(bloom: usize) {
        let m = MemTable::new(1, bloom);
        m.insert(b"k", 1, ValueKind::Value, b"v1");
        m.insert(b"k", 3, ValueKind::Value, b"v3");
        m.insert(b"k", 5, ValueKind::Delete, b"");
        m.insert(b"l", 2, ValueKind::Value, b"lv");
        assert_eq!(m.get(b"k", 0), None);
        assert_eq!(
            m.get(b"k", 1),
            Some(Lookup::Value(Bytes::from_static(b"v1"), 1))
        );
        assert_eq!(
            m.get(b"k", 4),
            Some(Lookup::Value(Bytes::from_static(b"v3"), 3))
        );
        assert_eq!(m.get(b"k", 9), Some(Lookup::Deleted(5)));
        assert_eq!(m.get(b"j", 9), None);
        assert_eq!(
            m.get(b"l", 9),
            Some(Lookup::Value(Bytes::from_static(b"lv"), 2))
        );
        let long = vec![7u8; 1000];
        m.insert(&long, 6, ValueKind::Value, b"x");
        assert_eq!(
            m.get(&long, 6),
            Some(Lookup::Value(Bytes::from_static(b"x"), 6))
        );
    }

    /// Readers racing one writer find every key whose sequence number was
    /// published before they looked (the key filter never hides one), and
    /// the filter turns most absent keys away.
    #[test]
    fn filter_never_hides_a_published_key() {
        use std::sync::atomic::AtomicBool;
        let m = Arc::new(MemTable::new(1, 64 * 1024));
        let published = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let n = 50_000u64;
        let readers: Vec<_> = (0..2u64)
            .map(|r| {
                let (m, published, done) = (m.clone(), published.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut x = r + 1;
                    let mut checked = 0u64;
                    // At least one check after the writer is done: on a
                    // busy machine it may finish before a reader runs.
                    while !done.load(Ordering::Acquire) || checked == 0 {
                        let seq = published.load(Ordering::Acquire);
                        if seq == 0 {
                            continue;
                        }
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let i = x % seq + 1;
                        let k = i.to_be_bytes();
                        let h = filter_hash(&k);
                        assert_eq!(
                            m.get_hashed(&k, h, seq),
                            Some(Lookup::Value(Bytes::copy_from_slice(&k), i)),
                            "key {i} published at {seq}"
                        );
                        checked += 1;
                    }
                    checked
                })
            })
            .collect();
        for i in 1..=n {
            let k = i.to_be_bytes();
            m.insert(&k, i, ValueKind::Value, &k);
            published.store(i, Ordering::Release);
        }
        done.store(true, Ordering::Release);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        let absent_passed = (n + 1..n + 10_001)
            .filter(|i| m.get(&i.to_be_bytes(), n).is_some())
            .count();
        assert_eq!(absent_passed, 0);
        let filtered = m.bloom.as_ref().unwrap();
        let maybe = (n + 1..n + 10_001)
            .filter(|i| filtered.may_contain(filter_hash(&i.to_be_bytes())))
            .count();
        // 64 KiB for 50,000 keys: about 10 bits per key.
        assert!(maybe < 300, "{maybe} of 10,000 absent keys pass the filter");
    }

    proptest::proptest! {
        /// `MemKey`'s order (inline prefix first) is exactly the internal
        /// key order, including short keys, zero bytes and long shared
        /// prefixes.
        #[test]
        fn mem_key_order_is_internal_key_order(
            a in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0x61, 0xff]), 0..12),
            b in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0x61, 0xff]), 0..12),
            sa in 0u64..4, sb in 0u64..4,
        ) {
            let ka = encode_internal_key(&a, sa, ValueKind::Value);
            let kb = encode_internal_key(&b, sb, ValueKind::Delete);
            proptest::prop_assert_eq!(
                MemKey::over(&ka).cmp(&MemKey::over(&kb)),
                crate::key::compare_internal(&ka, &kb)
            );
        }
    }

    proptest::proptest! {
        /// The look-ahead cursor of a flush moves exactly as the plain one
        /// through any mix of seeks and steps both ways.
        #[test]
        fn frozen_cursor_moves_as_the_plain_one(
            keys in proptest::collection::btree_set(proptest::collection::vec(0u8..4, 0..5), 0..40),
            moves in proptest::collection::vec((0u8..6, proptest::collection::vec(0u8..4, 0..5)), 0..60),
        ) {
            let m = Arc::new(MemTable::new(1, 0));
            for (i, k) in keys.iter().enumerate() {
                m.insert(k, i as u64 + 1, ValueKind::Value, &[i as u8; 3]);
            }
            let (mut a, mut b) = (m.iter(), m.iter_frozen());
            for (op, k) in moves {
                let target = encode_internal_key(&k, MAX_SEQUENCE, ValueKind::FOR_SEEK);
                for it in [&mut a, &mut b] {
                    match op {
                        0 => it.seek_to_first(),
                        1 => it.seek_to_last(),
                        2 => it.seek(&target),
                        3 => it.seek_for_prev(&target),
                        4 => if it.valid() { it.next() },
                        _ => if it.valid() { it.prev() },
                    }
                }
                proptest::prop_assert_eq!(a.valid(), b.valid());
                if a.valid() {
                    proptest::prop_assert_eq!(a.key(), b.key());
                    proptest::prop_assert_eq!(a.value(), b.value());
                }
            }
        }
    }

    #[test]
    fn iterator_both_directions() {
        let m = Arc::new(MemTable::new(1, 0));
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
