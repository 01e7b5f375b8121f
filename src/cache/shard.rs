//! One cache shard: a byte-bounded ARC (adaptive replacement cache,
//! Megiddo and Modha, FAST 2003), or plain LRU for comparison.
//!
//! ARC keeps two resident lists, T1 (seen once recently) and T2 (seen at
//! least twice), and two ghost lists, B1 and B2, that remember only the
//! keys (and charges) of entries recently evicted from T1 and T2. A miss
//! that hits a ghost list tells which side was cut too short, and moves the
//! target size `p` of T1 toward it. A scan touches every block once: its
//! blocks enter T1 and leave from T1, while the blocks re-read by a skewed
//! workload live in T2 and stay; plain LRU lets the scan flush them.
//!
//! Hits are cheap, as in CAR (Clock with Adaptive Replacement, Bansal
//! and Modha, FAST 2004): a hit only sets the entry's reference bit, and
//! the lists are reordered when room is needed. At the LRU end of T1 a
//! referenced entry moves to T2 instead of being evicted; at the LRU end
//! of T2 a referenced entry gets a second chance at T2's head. So a hit
//! touches one entry, not its list neighbours.
//!
//! Sizes are in bytes (each entry has a charge), so the bookkeeping of the
//! paper, stated in pages, is applied to bytes:
//! - resident bytes: `T1 + T2 <= capacity` after every insert;
//! - ghosts: `T1 + B1 <= capacity` and `T1 + T2 + B1 + B2 <= 2 * capacity`;
//! - `0 <= p <= capacity`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::slab_list::SlabLists;
use super::{CacheKey, KeyHasher};

const T1: u8 = 0;
const T2: u8 = 1;
const B1: u8 = 2;
const B2: u8 = 3;

/// Replacement policy of a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CachePolicy {
    /// Adaptive replacement (ARC): resists scans. The default.
    #[default]
    Arc,
    /// Least recently used, for comparison.
    Lru,
}

/// Who asks: a point read, or a scan (an iterator walking blocks in
/// order). ARC treats scan accesses as first references: they neither
/// promote an entry to T2 nor adapt `p`, so a scan, or several scans
/// re-reading each other's blocks, cannot look like a hot set. LRU, the
/// baseline, treats both alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Point,
    Scan,
}

struct Entry<V> {
    key: CacheKey,
    charge: usize,
    /// Set by a hit, cleared when the entry is moved (ARC only).
    referenced: bool,
    /// `None` on the ghost lists.
    value: Option<V>,
}

/// Counters of one shard (summed over shards by the cache).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ShardCounters {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) inserts: u64,
    pub(crate) evictions: u64,
}

/// One shard. Not synchronized: the cache wraps each in a mutex.
pub(crate) struct Shard<V> {
    policy: CachePolicy,
    capacity: usize,
    /// ARC's target size of T1, in bytes.
    p: usize,
    map: HashMap<CacheKey, u32, BuildHasherDefault<KeyHasher>>,
    lists: SlabLists<Entry<V>, 4>,
    pub(crate) counters: ShardCounters,
}

impl<V: Clone> Shard<V> {
    pub(crate) fn new(policy: CachePolicy, capacity: usize) -> Self {
        Shard {
            policy,
            capacity,
            p: 0,
            map: HashMap::default(),
            lists: SlabLists::new(),
            counters: ShardCounters::default(),
        }
    }

    /// Changes the bound; a smaller bound takes effect at the next insert.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.p = self.p.min(capacity);
    }

    /// Bytes of resident entries.
    pub(crate) fn usage(&self) -> usize {
        self.lists.lists[T1 as usize].bytes + self.lists.lists[T2 as usize].bytes
    }

    /// Number of resident entries.
    pub(crate) fn len(&self) -> usize {
        self.lists.lists[T1 as usize].len + self.lists.lists[T2 as usize].len
    }

    /// The cached value of `key`; a hit promotes it (ARC: to T2's head;
    /// LRU: to the head).
    pub(crate) fn get(&mut self, key: &CacheKey, access: Access) -> Option<V> {
        let found = self.map.get(key).copied().and_then(|i| {
            let n = self.lists.node(i);
            n.item.value.as_ref().map(|_| (i, n.item.charge))
        });
        let Some((i, charge)) = found else {
            self.counters.misses += 1;
            return None;
        };
        self.counters.hits += 1;
        match self.policy {
            CachePolicy::Arc => {
                if access == Access::Point {
                    self.lists.node_mut(i).item.referenced = true;
                }
            }
            CachePolicy::Lru => self.lists.move_front(i, T1, charge),
        }
        self.lists.node(i).item.value.clone()
    }

    /// Caches `value` under `key` with `charge` bytes, evicting as needed.
    /// An entry larger than the shard is not cached.
    pub(crate) fn insert(&mut self, key: CacheKey, value: V, charge: usize, access: Access) {
        if charge > self.capacity {
            return;
        }
        self.counters.inserts += 1;
        match self.policy {
            CachePolicy::Lru => self.insert_lru(key, value, charge),
            CachePolicy::Arc => self.insert_arc(key, value, charge, access),
        }
    }

    fn insert_lru(&mut self, key: CacheKey, value: V, charge: usize) {
        if let Some(i) = self.map.get(&key).copied() {
            // Another reader cached it first: keep one copy.
            let old = self.lists.node(i).item.charge;
            self.lists.remove(i, old);
            self.map.remove(&key);
        }
        while self.usage() + charge > self.capacity {
            let Some(t) = self.lists.tail(T1) else { break };
            self.drop_node(t);
            self.counters.evictions += 1;
        }
        self.push(T1, key, Some(value), charge);
    }

    fn insert_arc(&mut self, key: CacheKey, value: V, charge: usize, access: Access) {
        let c = self.capacity;
        let known = self.map.get(&key).copied();
        // A scan's ghost hit is no evidence about the workload: forget the
        // ghost and insert afresh.
        let known = match known {
            Some(i) if access == Access::Scan => {
                self.drop_node(i);
                None
            }
            k => k,
        };
        match known {
            Some(i) => {
                let (list, old) = {
                    let n = self.lists.node(i);
                    (n.list, n.item.charge)
                };
                let b1 = self.lists.lists[B1 as usize].bytes;
                let b2 = self.lists.lists[B2 as usize].bytes;
                match list {
                    B1 => {
                        // T1 was too small: grow its target.
                        let delta = if b1 >= b2 {
                            old
                        } else {
                            old.saturating_mul(b2 / b1.max(1))
                        };
                        self.p = (self.p + delta.max(charge)).min(c);
                    }
                    B2 => {
                        let delta = if b2 >= b1 {
                            old
                        } else {
                            old.saturating_mul(b1 / b2.max(1))
                        };
                        self.p = self.p.saturating_sub(delta.max(charge));
                    }
                    // Resident (a concurrent miss cached it first).
                    _ => {}
                }
                self.drop_node(i);
                self.replace(charge, list == B2);
                self.push(T2, key, Some(value), charge);
            }
            None => {
                self.replace(charge, false);
                self.push(T1, key, Some(value), charge);
            }
        }
        self.trim_ghosts_to_bounds();
    }

    /// Drops the oldest ghosts until `T1 + B1 <= c` and
    /// `T1 + T2 + B1 + B2 <= 2c`.
    fn trim_ghosts_to_bounds(&mut self) {
        let c = self.capacity;
        let t1 = self.lists.lists[T1 as usize].bytes;
        self.trim_ghosts(B1, c.saturating_sub(t1));
        let l = self.lists.lists;
        let others = l[T1 as usize].bytes + l[T2 as usize].bytes + l[B1 as usize].bytes;
        self.trim_ghosts(B2, (2 * c).saturating_sub(others));
    }

    /// Evicts resident entries into the ghost lists until `charge` more
    /// bytes fit: from T1 when it is over its target `p`, else from T2.
    /// Referenced entries are not evicted but moved to T2's head (with
    /// their bit cleared).
    fn replace(&mut self, charge: usize, hit_in_b2: bool) {
        while self.usage() + charge > self.capacity {
            let t1 = self.lists.lists[T1 as usize].bytes;
            let from_t1 = t1 > 0 && (t1 > self.p || (hit_in_b2 && t1 >= self.p));
            let (from, ghost) = if from_t1 || self.lists.tail(T2).is_none() {
                (T1, B1)
            } else {
                (T2, B2)
            };
            let Some(t) = self.lists.tail(from) else {
                break;
            };
            let e = &mut self.lists.node_mut(t).item;
            let charge = e.charge;
            if e.referenced {
                e.referenced = false;
                self.lists.move_front(t, T2, charge);
                continue;
            }
            e.value = None;
            self.lists.move_front(t, ghost, charge);
            self.counters.evictions += 1;
        }
    }

    /// Drops least recently used ghosts of `list` until it holds at most
    /// `keep` bytes.
    fn trim_ghosts(&mut self, list: u8, keep: usize) {
        while self.lists.lists[list as usize].bytes > keep {
            let Some(t) = self.lists.tail(list) else {
                break;
            };
            self.drop_node(t);
        }
    }

    fn push(&mut self, list: u8, key: CacheKey, value: Option<V>, charge: usize) {
        let entry = Entry {
            key,
            charge,
            referenced: false,
            value,
        };
        let i = self.lists.push_front(list, entry, charge);
        self.map.insert(key, i);
    }

    fn drop_node(&mut self, i: u32) {
        let (key, charge) = {
            let n = &mut self.lists.node_mut(i).item;
            n.value = None;
            (n.key, n.charge)
        };
        self.lists.remove(i, charge);
        self.map.remove(&key);
    }

    /// Checks the size invariants (tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let l = self.lists.lists;
        let b = |x: u8| l[x as usize].bytes;
        assert!(b(T1) + b(T2) <= self.capacity, "resident over capacity");
        assert!(self.p <= self.capacity);
        if self.policy == CachePolicy::Arc {
            assert!(b(T1) + b(B1) <= self.capacity, "T1 + B1 over capacity");
            assert!(b(T1) + b(T2) + b(B1) + b(B2) <= 2 * self.capacity);
        }
        let n: usize = l.iter().map(|h| h.len).sum();
        assert_eq!(n, self.map.len(), "every listed node is in the map");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    impl<V: Clone> Shard<V> {
        fn get_p(&mut self, k: &CacheKey) -> Option<V> {
            self.get(k, Access::Point)
        }
        fn insert_p(&mut self, k: CacheKey, v: V, charge: usize) {
            self.insert(k, v, charge, Access::Point)
        }
    }

    fn key(n: u64) -> CacheKey {
        CacheKey {
            table: 1,
            offset: n,
        }
    }

    #[test]
    fn hit_after_insert_and_eviction_at_capacity() {
        for policy in [CachePolicy::Arc, CachePolicy::Lru] {
            let mut s: Shard<u64> = Shard::new(policy, 100);
            for n in 0..10 {
                s.insert_p(key(n), n, 10);
            }
            assert_eq!(s.usage(), 100);
            assert_eq!(s.get_p(&key(3)), Some(3));
            s.insert_p(key(10), 10, 10);
            assert_eq!(s.usage(), 100);
            assert_eq!(s.get_p(&key(10)), Some(10));
            assert!(s.len() == 10);
            s.check_invariants();
            // Too large for the shard: not cached.
            s.insert_p(key(99), 99, 101);
            assert_eq!(s.get_p(&key(99)), None);
        }
    }

    #[test]
    fn arc_keeps_the_hot_set_through_a_scan_and_lru_does_not() {
        let run = |policy| {
            let mut s: Shard<u64> = Shard::new(policy, 1000);
            // A hot set of 50 entries (half the capacity), read twice.
            for _ in 0..2 {
                for n in 0..50 {
                    if s.get_p(&key(n)).is_none() {
                        s.insert_p(key(n), n, 10);
                    }
                }
            }
            // A scan of 1000 distinct entries, interleaved with hot reads.
            for n in 1000..2000 {
                if s.get_p(&key(n)).is_none() {
                    s.insert_p(key(n), n, 10);
                }
                if n % 10 == 0 {
                    let h = (n / 10) % 50;
                    if s.get_p(&key(h)).is_none() {
                        s.insert_p(key(h), h, 10);
                    }
                }
                s.check_invariants();
            }
            (0..50).filter(|&n| s.get_p(&key(n)).is_some()).count()
        };
        let arc = run(CachePolicy::Arc);
        let lru = run(CachePolicy::Lru);
        assert_eq!(arc, 50, "ARC keeps every hot entry");
        assert!(lru < 50, "LRU lets the scan evict hot entries ({lru} kept)");
    }

    #[test]
    fn arc_keeps_the_hot_set_through_two_scans_reading_each_others_blocks() {
        let mut s: Shard<u64> = Shard::new(CachePolicy::Arc, 1000);
        for _ in 0..2 {
            for n in 0..50 {
                if s.get_p(&key(n)).is_none() {
                    s.insert_p(key(n), n, 10);
                }
            }
        }
        for n in 1000..3000 {
            // Scan A reads block n, scan B trails it by five blocks, and
            // every scanned block is also re-inserted after a ghost hit.
            for b in [n, n - 5] {
                if s.get(&key(b), Access::Scan).is_none() {
                    s.insert(key(b), b, 10, Access::Scan);
                }
            }
            if n % 10 == 0 {
                let h = (n / 10) % 50;
                if s.get_p(&key(h)).is_none() {
                    s.insert_p(key(h), h, 10);
                }
            }
            s.check_invariants();
        }
        let kept = (0..50).filter(|&n| s.get_p(&key(n)).is_some()).count();
        assert_eq!(kept, 50, "scans evicted {} hot entries", 50 - kept);
    }

    #[test]
    fn ghost_hits_adapt_the_target_and_keep_invariants() {
        let mut s: Shard<u64> = Shard::new(CachePolicy::Arc, 500);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Skewed keys with varying charges.
            let n = (rng % 64) * (rng % 3 + 1);
            let charge = 5 + (n % 30) as usize;
            if s.get_p(&key(n)).is_none() {
                s.insert_p(key(n), n, charge);
            }
            seen.insert(n);
            s.check_invariants();
        }
        assert!(s.counters.hits > 0 && s.counters.evictions > 0);
        for n in seen {
            if let Some(v) = s.get_p(&key(n)) {
                assert_eq!(v, n, "a cached value belongs to its key");
            }
        }
    }
}
