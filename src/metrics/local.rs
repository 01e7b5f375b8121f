//! Per-thread slots for the counters of user operations.
//!
//! Every thread that works on a database gets its own [`ThreadSlot`]
//! (through `thread_local::ThreadLocal`, one set of slots per database).
//! A thread adds to its slot with a plain load and store of a relaxed
//! atomic: no locked instruction, no cache line shared with another
//! writer (slots are 128-byte aligned). Readers sum every slot.
//!
//! Invariants:
//! - Only the owning thread writes a slot. `ThreadLocal` hands a thread's
//!   slot to a new thread only after the owner exited, and then the
//!   counts carry on (nothing is lost when a thread exits).
//! - A reader may see a count a few operations old while a writer runs;
//!   once the writing threads' operations happen-before the read (they
//!   returned, and the reader synchronized with them), the sum is exact.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thread_local::ThreadLocal;

use super::histogram::{Histogram, HistogramSnapshot, OP_BOUNDS_NS};

/// The per-operation counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    /// Point reads (`Db::get`, snapshot and transaction reads).
    Gets,
    /// Point reads that found a value.
    GetsFound,
    /// Bytes of the values those returned.
    GetValueBytes,
    /// Iterators created.
    Iterators,
    /// SST files whose bloom filter a point read consulted.
    FilterChecks,
    /// Of those, files the filter ruled out (read skipped).
    FilterUseful,
    /// Files the filter let through that did not hold the key.
    FilterFalsePositives,
    /// Transactions begun.
    TxnBegun,
    /// Transactions ended (committed, failed, rolled back or dropped).
    TxnEnded,
    /// Transactions committed.
    TxnCommits,
    /// Commits refused with `Error::Conflict`.
    TxnConflicts,
    /// Point reads answered by the row cache.
    RowCacheHits,
    /// Point reads the row cache could not answer (with the cache on).
    RowCacheMisses,
}

/// Number of [`Counter`]s.
pub(crate) const COUNTERS: usize = Counter::RowCacheMisses as usize + 1;

/// Operations whose latency is measured at `StatsLevel::All`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// A point read.
    Get,
    /// A write call, from queueing to its return (group commit included).
    Write,
    /// A transaction commit (validation and write).
    Commit,
    /// The first positioning of an iterator (in each direction).
    IteratorSeek,
}

/// Number of [`Op`]s.
pub(crate) const OPS: usize = Op::IteratorSeek as usize + 1;

/// One thread's counters (and latencies, when measured).
#[repr(align(128))]
pub(crate) struct ThreadSlot {
    counters: [AtomicU64; COUNTERS],
    latency: Option<Box<[Histogram; OPS]>>,
}

impl ThreadSlot {
    fn new(with_latency: bool) -> Self {
        ThreadSlot {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: with_latency
                .then(|| Box::new(std::array::from_fn(|_| Histogram::new(OP_BOUNDS_NS)))),
        }
    }

    /// Adds `n` to counter `c` (owning thread only).
    #[inline]
    pub(crate) fn add(&self, c: Counter, n: u64) {
        let a = &self.counters[c as usize];
        a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Counts a latency of `op` (owning thread only; a no-op without
    /// latency histograms).
    #[inline]
    pub(crate) fn latency(&self, op: Op, d: Duration) {
        if let Some(h) = &self.latency {
            h[op as usize].record_single_writer(d);
        }
    }
}

/// The per-thread slots of one database.
pub(crate) struct LocalCounters {
    slots: ThreadLocal<ThreadSlot>,
    with_latency: bool,
}

/// Sums of every thread's slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalTotals {
    pub(crate) counters: [u64; COUNTERS],
    /// Per [`Op`]; empty snapshots without latency histograms.
    pub(crate) latency: [HistogramSnapshot; OPS],
}

impl LocalTotals {
    pub(crate) fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }
}

impl LocalCounters {
    pub(crate) fn new(with_latency: bool) -> Self {
        LocalCounters {
            slots: ThreadLocal::new(),
            with_latency,
        }
    }

    /// The calling thread's slot (allocated on its first use).
    #[inline]
    pub(crate) fn slot(&self) -> &ThreadSlot {
        self.slots.get_or(|| ThreadSlot::new(self.with_latency))
    }

    /// The sums over every thread now.
    pub(crate) fn totals(&self) -> LocalTotals {
        let mut t = LocalTotals::default();
        for s in self.slots.iter() {
            for (sum, c) in t.counters.iter_mut().zip(&s.counters) {
                *sum += c.load(Ordering::Relaxed);
            }
            if let Some(h) = &s.latency {
                for (sum, h) in t.latency.iter_mut().zip(h.iter()) {
                    h.add_to(sum);
                }
            }
        }
        if self.with_latency && t.latency[0].counts.is_empty() {
            // No thread has a slot yet: empty histograms with their bounds.
            let empty = Histogram::new(OP_BOUNDS_NS).snapshot();
            t.latency = std::array::from_fn(|_| empty.clone());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sums_every_threads_slot_exactly() {
        let c = Arc::new(LocalCounters::new(true));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.slot().add(Counter::Gets, 1);
                        c.slot().add(Counter::GetValueBytes, 3);
                    }
                    c.slot().latency(Op::Get, Duration::from_micros(3));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Threads that exited keep their counts.
        let t = c.totals();
        assert_eq!(t.get(Counter::Gets), 40_000);
        assert_eq!(t.get(Counter::GetValueBytes), 120_000);
        assert_eq!(t.latency[Op::Get as usize].count(), 4);
        assert_eq!(t.latency[Op::Write as usize].count(), 0);
        assert!(!t.latency[Op::Write as usize].bounds.is_empty());
    }

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<ThreadSlot>(), 128);
    }
}
