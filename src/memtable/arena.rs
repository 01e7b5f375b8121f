//! The memtable's arena: keys and values are copied into large chunks
//! instead of one heap allocation each, and freed all at once when the
//! memtable (and every value handed out from it) is dropped.
//!
//! A chunk is a `Bytes` over a zeroed buffer of `CHUNK` bytes (an
//! anonymous memory mapping of its own, or a heap buffer if mapping
//! fails), so bytes
//! stored here can be handed out as a `Bytes` slice of their chunk
//! ([`Arena::bytes_of`]): a reference count increment, no allocation and no
//! copy. The arena writes each byte
//! once, before the slice or pointer covering it is published (by the
//! skiplist insert, which has release semantics), and never again.
//!
//! Invariants:
//! - Several writers allocate at once. Each thread copies into one of
//!   [`LANES`] lanes (its own, picked once per thread), each with a chunk
//!   and a mutex of its own, on a cache line of its own: writers on
//!   different lanes share no lock and write no common cache line, as
//!   their entries sit in different chunks. A lane's mutex orders the
//!   copies into its chunk (held for one copy of one entry).
//! - The directory of chunks is replaced under its own mutex, so lanes
//!   adding chunks at once never lose one.
//! - The bytes behind a returned pointer or slice never move and are never
//!   written again. The arena keeps every chunk until it is dropped, so a
//!   pointer from [`Arena::copy_raw`] is valid for the arena's life; a
//!   `Bytes` from [`Arena::bytes_of`] keeps its chunk alive on its own.
//!
//! Trade-off: a value handed to a reader keeps its whole chunk alive.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

/// Size of an ordinary chunk.
const CHUNK: usize = 1 << 20;
/// Lanes of an arena (see the module invariants). With one lane, two
/// writer threads copied into one chunk under one mutex, moving its line
/// and the chunk's tail between the cores on every entry. Measured on the
/// 2-core machine, fillrandom with 2 threads went from 796K to 810K ops/s
/// (interleaved, 1M keys each): a small gain; the write group's hand-offs
/// cost far more (docs/benchmarks.md, issue 17).
const LANES: usize = 4;

thread_local! {
    /// This thread's lane in every arena.
    static LANE: usize = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % LANES
    };
}
/// Allocations larger than this get a chunk of their own.
const LARGE: usize = CHUNK / 4;

struct Chunk {
    bytes: Bytes,
    /// Base of `bytes`' buffer, writable for the bytes not yet handed out.
    base: *mut u8,
    used: usize,
}

// SAFETY: `base` points into the buffer `bytes` owns; it is only written
// through while holding the arena's mutex, at offsets no reader can see
// yet (see the module invariants).
unsafe impl Send for Chunk {}

impl Chunk {
    fn new(size: usize) -> Chunk {
        // A private anonymous mapping rather than the malloc heap: when the
        // memtable is dropped the chunk goes straight back to the OS. From
        // the heap, freed chunks stayed resident as holes between the
        // skiplist nodes of the next memtable. The mapping's address does
        // not move when it is handed to `Bytes`, so `base` stays valid.
        // Populated at once: one system call instead of a page fault per
        // 4 KiB as the chunk fills.
        if let Ok(mut m) = memmap2::MmapOptions::new().len(size).populate().map_anon() {
            let base = m.as_mut_ptr();
            return Chunk {
                bytes: Bytes::from_owner(m),
                base,
                used: 0,
            };
        }
        // `vec![0; n]` has len == capacity, so `Bytes::from` keeps the
        // buffer where it is (no shrink, no copy).
        let mut v = vec![0u8; size];
        let base = v.as_mut_ptr();
        Chunk {
            bytes: Bytes::from(v),
            base,
            used: 0,
        }
    }

    fn room(&self) -> usize {
        self.bytes.len() - self.used
    }

    /// Copies `parts` back to back; returns their offset.
    fn put(&mut self, parts: &[&[u8]]) -> usize {
        let off = self.used;
        for p in parts {
            debug_assert!(p.len() <= self.room());
            // SAFETY: `used + p.len() <= len` (callers check the room), the
            // range is inside the buffer and not yet visible to anyone, and
            // `p` cannot overlap it (it was never handed out).
            unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), self.base.add(self.used), p.len()) };
            self.used += p.len();
        }
        // The next entries' lines, fetched for writing now (a hint; see
        // `prefetch_write_lines`): the chunk is populated but cold.
        let ahead = (self.used + crate::prefetch::WRITE_AHEAD).min(self.bytes.len());
        let n = (self.used - off).min(self.bytes.len() - ahead);
        crate::prefetch::prefetch_write_lines(self.base.wrapping_add(ahead), n);
        off
    }
}

/// A bump allocator of immutable byte strings.
pub(crate) struct Arena {
    lanes: [CachePadded<Mutex<State>>; LANES],
    /// Every chunk, sorted by address, for [`Arena::bytes_of`]: replaced
    /// (copy on write, under `directory_lock`) when a chunk is added,
    /// read without a lock.
    directory: ArcSwap<Vec<Bytes>>,
    directory_lock: Mutex<()>,
}

struct State {
    current: Option<Chunk>,
    /// Every chunk handed out from, kept so raw pointers stay valid.
    retired: Vec<Bytes>,
}

impl Arena {
    pub(crate) fn new() -> Arena {
        Arena {
            lanes: std::array::from_fn(|_| {
                CachePadded::new(Mutex::new(State {
                    current: None,
                    retired: Vec::new(),
                }))
            }),
            directory: ArcSwap::from_pointee(Vec::new()),
            directory_lock: Mutex::new(()),
        }
    }

    /// Adds a chunk to the directory.
    fn publish(&self, chunk: &Bytes) {
        let _one = self.directory_lock.lock();
        let mut v = Vec::clone(&self.directory.load());
        let at = v.partition_point(|c| (c.as_ptr() as usize) < chunk.as_ptr() as usize);
        v.insert(at, chunk.clone());
        self.directory.store(Arc::new(v));
    }

    /// The `len` bytes at `ptr`, which [`copy_raw`](Self::copy_raw) of
    /// this arena returned (or points inside), as a `Bytes` slice of their
    /// chunk: no copy, no allocation. `None` if `ptr` is not in the arena.
    pub(crate) fn bytes_of(&self, ptr: *const u8, len: usize) -> Option<Bytes> {
        if len == 0 {
            return Some(Bytes::new());
        }
        let dir = self.directory.load();
        let addr = ptr as usize;
        let i = dir.partition_point(|c| c.as_ptr() as usize <= addr);
        let chunk = dir.get(i.checked_sub(1)?)?;
        let off = addr - chunk.as_ptr() as usize;
        (off + len <= chunk.len()).then(|| chunk.slice(off..off + len))
    }

    /// Copies the concatenation of `parts` into the arena and returns a
    /// pointer to it, valid (and immutable) for as long as the arena lives.
    pub(crate) fn copy_raw(&self, parts: &[&[u8]]) -> *const u8 {
        let n: usize = parts.iter().map(|p| p.len()).sum();
        // SAFETY (of the pointer arithmetic): `off` is inside the chunk.
        self.place(parts, n.max(1), |c, off| unsafe {
            c.base.add(off) as *const u8
        })
    }

    fn place<R>(&self, parts: &[&[u8]], n: usize, out: impl FnOnce(&Chunk, usize) -> R) -> R {
        // `try_with`: from a thread-local destructor, lane 0.
        let lane = LANE.try_with(|l| *l).unwrap_or(0);
        // Always in range: `LANE` is reduced modulo `LANES`.
        let mut st = self.lanes[lane % LANES].lock();
        if n > LARGE {
            let mut c = Chunk::new(n);
            let off = c.put(parts);
            let r = out(&c, off);
            self.publish(&c.bytes);
            st.retired.push(c.bytes);
            return r;
        }
        if st.current.as_ref().is_none_or(|c| c.room() < n) {
            let fresh = Chunk::new(CHUNK);
            self.publish(&fresh.bytes);
            if let Some(old) = st.current.replace(fresh) {
                st.retired.push(old.bytes);
            }
        }
        let Some(c) = st.current.as_mut() else {
            unreachable!("a chunk was just installed")
        };
        let off = c.put(parts);
        out(c, off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads on different lanes copy at once: every copy keeps its
    /// bytes and is found through the directory, whichever lane's chunk
    /// holds it.
    #[test]
    fn concurrent_copies_from_several_lanes() {
        let a = Arena::new();
        let kept: Vec<Vec<(String, usize, usize)>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|t| {
                    let a = &a;
                    s.spawn(move || {
                        (0..30_000u32)
                            .map(|i| {
                                let v = format!("t{t}-{i}-").repeat((i % 5) as usize + 1);
                                let p = a.copy_raw(&[v.as_bytes()]);
                                (v.clone(), p as usize, v.len())
                            })
                            .collect()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (v, p, n) in kept.iter().flatten() {
            let b = a.bytes_of(*p as *const u8, *n).expect("in the directory");
            assert_eq!(b.as_ref(), v.as_bytes());
        }
    }

    #[test]
    fn copies_are_stable_and_independent() {
        let a = Arena::new();
        let copy = |parts: &[&[u8]]| {
            let n = parts.iter().map(|p| p.len()).sum();
            a.bytes_of(a.copy_raw(parts), n).unwrap()
        };
        let mut kept = Vec::new();
        for i in 0..20_000u32 {
            let s = format!("entry-{i}-").repeat((i % 7) as usize + 1);
            kept.push((s.clone(), copy(&[s.as_bytes(), b"|"])));
        }
        let big = vec![9u8; LARGE + 1];
        let b = copy(&[&big]);
        assert_eq!(b.as_ref(), big.as_slice());
        for (s, b) in &kept {
            assert_eq!(&b[..s.len()], s.as_bytes());
            assert_eq!(b[s.len()], b'|');
        }
        let p = a.copy_raw(&[b"raw", b"!"]);
        for i in 0..10_000u32 {
            a.copy_raw(&[format!("{i}").as_bytes()]);
        }
        // SAFETY: the arena is alive and the pointer covers 4 bytes.
        assert_eq!(unsafe { std::slice::from_raw_parts(p, 4) }, b"raw!");
        // The same bytes as a shared slice, found through the directory.
        assert_eq!(a.bytes_of(p, 4).unwrap().as_ref(), b"raw!");
        // SAFETY: one byte further is inside the same copy.
        assert_eq!(a.bytes_of(unsafe { p.add(1) }, 3).unwrap().as_ref(), b"aw!");
        let big = a.copy_raw(&[&vec![3u8; LARGE + 10]]);
        assert_eq!(a.bytes_of(big, LARGE + 10).unwrap().len(), LARGE + 10);
        let outside = [0u8; 4];
        assert!(a.bytes_of(outside.as_ptr(), 4).is_none());
        drop(a);
        // Slices outlive the arena.
        assert_eq!(&kept[5].1[..kept[5].0.len()], kept[5].0.as_bytes());
    }
}
