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
//! - Several writers allocate at once; the state mutex orders them (held
//!   for one copy of one entry).
//! - The bytes behind a returned pointer or slice never move and are never
//!   written again. The arena keeps every chunk until it is dropped, so a
//!   pointer from [`Arena::copy_raw`] is valid for the arena's life; a
//!   `Bytes` from [`Arena::bytes_of`] keeps its chunk alive on its own.
//!
//! Trade-off: a value handed to a reader keeps its whole chunk alive.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::Mutex;

/// Size of an ordinary chunk.
const CHUNK: usize = 1 << 20;
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
        off
    }
}

/// A bump allocator of immutable byte strings.
pub(crate) struct Arena {
    state: Mutex<State>,
    /// Every chunk, sorted by address, for [`Arena::bytes_of`]: replaced
    /// (copy on write) when a chunk is added, read without a lock.
    directory: ArcSwap<Vec<Bytes>>,
}

struct State {
    current: Option<Chunk>,
    /// Every chunk handed out from, kept so raw pointers stay valid.
    retired: Vec<Bytes>,
}

impl Arena {
    pub(crate) fn new() -> Arena {
        Arena {
            state: Mutex::new(State {
                current: None,
                retired: Vec::new(),
            }),
            directory: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// Adds a chunk to the directory (called with the state locked, so
    /// adds never race each other).
    fn publish(&self, chunk: &Bytes) {
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
        let mut st = self.state.lock();
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
