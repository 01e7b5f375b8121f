//! The block cache: verified, decompressed SST blocks, shared by every
//! table of a database (or several databases), bounded in bytes.
//!
//! A block read from an SST file is checked (checksum, restart array) and,
//! if compressed, decompressed before use. The cache keeps the result, so a
//! block read again costs a hash lookup instead of a checksum over its
//! bytes and a decompression. Entries are keyed by `(table id, block
//! offset)`; table ids come from [`Cache::new_table_id`] and are never
//! reused, so a deleted file's blocks can never be confused with a new
//! file's and simply age out.
//!
//! The cache is split into shards by key hash, each behind its own mutex
//! and with its own share of the capacity, so concurrent readers seldom
//! contend. Each shard runs ARC (see [`shard`]) or, for comparison, LRU.
//!
//! Lookups say whether they come from a point read or a scan
//! ([`Access`]): under ARC a scan neither promotes what it hits nor adapts
//! the policy on a ghost hit, so scans (several at once included, which
//! re-read each other's blocks) stay in T1 and cannot pass for a hot set.
//!
//! The bound covers pinned blocks too: each open table's filter and root
//! index page stay in memory for the table's life, and their bytes are
//! reserved out of the capacity ([`Cache::pin`]), so `capacity` bounds
//! filters + index roots + cached blocks together (the cached share
//! shrinks as pinned bytes grow, down to nothing).

mod shard;
mod slab_list;

pub(crate) use shard::Access;
pub use shard::CachePolicy;

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use shard::Shard;

/// Identifies one block: the table it belongs to and its file offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) table: u64,
    pub(crate) offset: u64,
}

impl CacheKey {
    fn hash64(&self) -> u64 {
        // A multiply-xorshift mix of both words: cheap, and spreads the
        // block offsets (multiples of ~4 KiB) over shards and buckets.
        let mut h = self.table.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.offset;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 31)
    }
}

/// Hasher for [`CacheKey`] maps: the key's own mix, computed once.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        self.0 ^= self.0 >> 32;
    }
}

/// Counters of a cache, summed over its shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Blocks added.
    pub inserts: u64,
    /// Blocks evicted to make room.
    pub evictions: u64,
    /// Bytes of cached blocks now.
    pub usage_bytes: u64,
    /// Bytes pinned by open tables (filters and index roots).
    pub pinned_bytes: u64,
    /// Number of cached blocks now.
    pub entries: u64,
    /// The configured bound in bytes (pinned + cached stay below it).
    pub capacity_bytes: u64,
}

impl CacheStats {
    /// Hits over lookups, 0 when there were none.
    pub fn hit_rate(&self) -> f64 {
        let n = self.hits + self.misses;
        if n == 0 {
            0.0
        } else {
            self.hits as f64 / n as f64
        }
    }
}

thread_local! {
    static THREAD_LOOKUPS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Block cache `(hits, misses)` of lookups made by the calling thread so
/// far, over every cache: lets a benchmark tell one workload's hit rate
/// from another's running beside it.
pub fn thread_lookups() -> (u64, u64) {
    THREAD_LOOKUPS.with(|c| c.get())
}

/// Smallest share of the capacity a shard gets; smaller caches use fewer
/// shards, so one large block still fits.
const MIN_SHARD_BYTES: usize = 512 << 10;
const MAX_SHARDS: usize = 16;

/// A sharded, byte-bounded cache of `V` values (the engine's is
/// [`BlockCache`]). `Send + Sync`.
pub struct Cache<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    shard_bits: u32,
    capacity: usize,
    policy: CachePolicy,
    pinned: AtomicUsize,
    next_table_id: AtomicU64,
}

impl<V: Clone> Cache<V> {
    /// A cache of `capacity` bytes with the given replacement policy.
    pub fn new(capacity: usize, policy: CachePolicy) -> Self {
        let mut n = 1usize;
        while n < MAX_SHARDS && capacity / (n * 2) >= MIN_SHARD_BYTES {
            n *= 2;
        }
        let shards = (0..n)
            .map(|_| Mutex::new(Shard::new(policy, capacity / n)))
            .collect();
        Cache {
            shards,
            shard_bits: n.trailing_zeros(),
            capacity,
            policy,
            pinned: AtomicUsize::new(0),
            next_table_id: AtomicU64::new(1),
        }
    }

    /// The configured capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The replacement policy.
    pub fn policy(&self) -> CachePolicy {
        self.policy
    }

    /// A fresh id for a table's keys; never returned twice.
    pub(crate) fn new_table_id(&self) -> u64 {
        self.next_table_id.fetch_add(1, Ordering::Relaxed)
    }

    fn shard(&self, key: &CacheKey) -> &Mutex<Shard<V>> {
        let h = key.hash64();
        let i = if self.shard_bits == 0 {
            0
        } else {
            (h >> (64 - self.shard_bits)) as usize
        };
        &self.shards[i]
    }

    /// The cached value of `key`, counting a hit or a miss (also in the
    /// calling thread's [`thread_lookups`]).
    pub(crate) fn get(&self, key: &CacheKey, access: Access) -> Option<V> {
        let v = self.shard(key).lock().get(key, access);
        THREAD_LOOKUPS.with(|c| {
            let (h, m) = c.get();
            c.set(if v.is_some() { (h + 1, m) } else { (h, m + 1) });
        });
        v
    }

    /// Caches `value` under `key`, charged `charge` bytes.
    pub(crate) fn insert(&self, key: CacheKey, value: V, charge: usize, access: Access) {
        let per_shard = self.capacity.saturating_sub(self.pinned()) >> self.shard_bits;
        let mut s = self.shard(&key).lock();
        s.set_capacity(per_shard);
        s.insert(key, value, charge, access);
    }

    /// Reserves `bytes` of the capacity for as long as the returned guard
    /// lives (a table's filter and index root).
    pub(crate) fn pin(self: &Arc<Self>, bytes: usize) -> PinnedCharge<V> {
        self.pinned.fetch_add(bytes, Ordering::Relaxed);
        PinnedCharge {
            cache: Arc::clone(self),
            bytes,
        }
    }

    fn pinned(&self) -> usize {
        self.pinned.load(Ordering::Relaxed)
    }

    /// The cache's counters now.
    pub fn stats(&self) -> CacheStats {
        let mut st = CacheStats {
            pinned_bytes: self.pinned() as u64,
            capacity_bytes: self.capacity as u64,
            ..CacheStats::default()
        };
        for s in self.shards.iter() {
            let s = s.lock();
            st.hits += s.counters.hits;
            st.misses += s.counters.misses;
            st.inserts += s.counters.inserts;
            st.evictions += s.counters.evictions;
            st.usage_bytes += s.usage() as u64;
            st.entries += s.len() as u64;
        }
        st
    }
}

impl<V> std::fmt::Debug for Cache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("capacity", &self.capacity)
            .field("policy", &self.policy)
            .field("shards", &self.shards.len())
            .finish()
    }
}

/// Bytes reserved out of a cache's capacity; released on drop.
pub(crate) struct PinnedCharge<V> {
    cache: Arc<Cache<V>>,
    bytes: usize,
}

impl<V> Drop for PinnedCharge<V> {
    fn drop(&mut self) {
        self.cache.pinned.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl<V> std::fmt::Debug for PinnedCharge<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinnedCharge({} bytes)", self.bytes)
    }
}

/// The engine's block cache: verified, decompressed SST blocks.
pub type BlockCache = Cache<crate::sst::CachedBlock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_cache_bounds_usage_and_counts() {
        let c: Arc<Cache<u64>> = Arc::new(Cache::new(4 << 20, CachePolicy::Arc));
        assert!(c.shards.len() > 1);
        for n in 0..10_000u64 {
            let k = CacheKey {
                table: 7,
                offset: n * 4096,
            };
            if c.get(&k, Access::Point).is_none() {
                c.insert(k, n, 4096, Access::Point);
            }
        }
        let st = c.stats();
        assert!(st.usage_bytes <= 4 << 20, "{st:?}");
        assert_eq!(st.misses, 10_000);
        assert_eq!(st.inserts, 10_000);
        assert!(st.evictions > 0);
        // Pinning shrinks what blocks may use.
        let pin = c.pin(3 << 20);
        for n in 20_000..30_000u64 {
            c.insert(
                CacheKey {
                    table: 8,
                    offset: n * 4096,
                },
                n,
                4096,
                Access::Point,
            );
        }
        let st = c.stats();
        assert!(st.usage_bytes + st.pinned_bytes <= 4 << 20, "{st:?}");
        drop(pin);
        assert_eq!(c.stats().pinned_bytes, 0);
    }

    #[test]
    fn table_ids_are_unique() {
        let c: Cache<u8> = Cache::new(1 << 20, CachePolicy::Lru);
        let a = c.new_table_id();
        let b = c.new_table_id();
        assert_ne!(a, b);
    }
}
