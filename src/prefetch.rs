//! Software prefetch hints.
//!
//! A prefetch asks the CPU to start loading a cache line early, so that
//! independent loads (the filter lines of several files, say) wait for
//! memory together instead of one after another. It is only a hint: it
//! never faults, even on an address that is not mapped, and changes no
//! result.

/// Hints that the cache line holding `*p` will be read soon.
#[inline(always)]
pub(crate) fn prefetch_read<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint that never faults and writes nothing;
    // SSE is part of the x86_64 baseline, and `p` is a valid reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Hints that the `len` bytes at `start` will be written soon: the CPU
/// fetches their lines for ownership now (`prefetchw`; a no-op where the
/// CPU lacks it), so the stores that come later do not wait for memory.
/// Appenders (the WAL's map, the memtable arena) call it on the bytes a
/// few hundred bytes past what they just wrote: those lines are in the
/// page cache or populated, but not in the CPU's caches, and every store
/// to a new line otherwise waited for memory (the wait showed up at the
/// next locked instruction: half the write-group leader's profile).
/// `start` is only a hint, never dereferenced: any address is fine.
#[inline]
pub(crate) fn prefetch_write_lines(start: *const u8, len: usize) {
    let end = (start as usize).saturating_add(len);
    let mut line = (start as usize).next_multiple_of(CACHE_LINE);
    while line < end {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults, whatever the
        // address, and writes nothing.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
            _mm_prefetch::<_MM_HINT_ET0>(line as *const i8);
        }
        line += CACHE_LINE;
    }
}

/// How far past an append [`prefetch_write_lines`] is asked to fetch.
pub(crate) const WRITE_AHEAD: usize = 512;

/// Bytes in a cache line on the machines we tune for.
const CACHE_LINE: usize = 64;

/// Hints that all of `bytes` will be read soon: one prefetch per cache
/// line. Streaming a cold 4 KiB block through a checksum measured 790 ns
/// on the 2-core machine, and 610 ns when every line was requested first,
/// because the loads then wait for memory together.
#[inline]
pub(crate) fn prefetch_range(bytes: &[u8]) {
    let mut i = 0;
    while let Some(b) = bytes.get(i) {
        prefetch_read(b);
        i += CACHE_LINE;
    }
    if let Some(last) = bytes.last() {
        prefetch_read(last);
    }
}
