//! Duration histograms with fixed buckets, in the shape Prometheus
//! exports them (a count per bucket upper bound, a sum and a count).
//!
//! A [`Histogram`] is a row of atomic counters. [`Histogram::record`]
//! uses `fetch_add` and may be called from any thread (background events:
//! flushes, compactions, WAL syncs). [`Histogram::record_single_writer`]
//! is a plain load and store: only for a histogram one thread writes (the
//! per-thread operation latencies of [`super::local`]). Readers take a
//! [`HistogramSnapshot`] and may merge several.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds of per-operation latencies (get, write, commit,
/// iterator seek), in nanoseconds: 1 µs to 1 s.
pub(crate) const OP_BOUNDS_NS: &[u64] = &[
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    1_000_000_000,
];

/// Bucket upper bounds of WAL syncs, in nanoseconds: 50 µs to 10 s.
pub(crate) const SYNC_BOUNDS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Bucket upper bounds of flushes and compactions, in nanoseconds: 1 ms
/// to 10 minutes.
pub(crate) const JOB_BOUNDS_NS: &[u64] = &[
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    120_000_000_000,
    300_000_000_000,
    600_000_000_000,
];

/// Counts of durations per bucket.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [u64],
    /// One counter per bound, then one for values above the last bound.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

fn add_single_writer(a: &AtomicU64, n: u64) {
    // Only one thread writes: a load and a store, no locked instruction.
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Histogram {
    /// An empty histogram over `bounds` (nanoseconds, increasing).
    pub(crate) fn new(bounds: &'static [u64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    fn bucket(&self, ns: u64) -> &AtomicU64 {
        // `le` buckets: the first bound at or above the value.
        let i = self.bounds.partition_point(|&b| b < ns);
        &self.buckets[i.min(self.buckets.len() - 1)]
    }

    /// Counts `d`; any thread may call it.
    pub(crate) fn record(&self, d: Duration) {
        let ns = duration_ns(d);
        self.bucket(ns).fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Counts `d`, for a histogram that only the calling thread writes.
    pub(crate) fn record_single_writer(&self, d: Duration) {
        let ns = duration_ns(d);
        add_single_writer(self.bucket(ns), 1);
        add_single_writer(&self.sum_ns, ns);
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds.iter().map(|&b| b as f64 / 1e9).collect(),
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    /// Adds the counts now to `into` (which must have the same bounds, or
    /// be empty).
    pub(crate) fn add_to(&self, into: &mut HistogramSnapshot) {
        if into.counts.is_empty() {
            *into = self.snapshot();
            return;
        }
        for (c, b) in into.counts.iter_mut().zip(self.buckets.iter()) {
            *c += b.load(Ordering::Relaxed);
        }
        into.sum_seconds += self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The counts of a duration histogram at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds of the buckets in seconds, increasing.
    pub bounds: Vec<f64>,
    /// Durations per bucket (not cumulative): `counts[i]` counts the
    /// durations above `bounds[i - 1]` and at most `bounds[i]`; the last
    /// entry (one past `bounds`) counts those above the last bound.
    pub counts: Vec<u64>,
    /// Sum of every duration counted, in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// Number of durations counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Mean duration in seconds (0 when empty).
    pub fn mean_seconds(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum_seconds / n as f64,
        }
    }

    /// An estimate of the `p`-th percentile (`p` in 0..=100) in seconds,
    /// by linear interpolation inside its bucket, as Prometheus's
    /// `histogram_quantile` does; values above the last bound are reported
    /// as the last bound. 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        let n = self.count();
        if n == 0 {
            return 0.0;
        }
        let rank = (p.clamp(0.0, 100.0) / 100.0) * n as f64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0 && (seen + c) as f64 >= rank {
                let Some(&hi) = self.bounds.get(i) else {
                    return self.bounds.last().copied().unwrap_or(0.0);
                };
                let lo = if i == 0 { 0.0 } else { self.bounds[i - 1] };
                let within = ((rank - seen as f64) / c as f64).clamp(0.0, 1.0);
                return lo + (hi - lo) * within;
            }
            seen += c;
        }
        self.bounds.last().copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_le_and_sum_counts() {
        let h = Histogram::new(OP_BOUNDS_NS);
        h.record(Duration::from_nanos(500)); // <= 1 µs
        h.record(Duration::from_nanos(1_000)); // exactly on the bound
        h.record(Duration::from_nanos(1_001)); // <= 2 µs
        h.record_single_writer(Duration::from_secs(5)); // above 1 s
        let s = h.snapshot();
        assert_eq!(s.counts[0], 2);
        assert_eq!(s.counts[1], 1);
        assert_eq!(*s.counts.last().unwrap(), 1);
        assert_eq!(s.count(), 4);
        assert!((s.sum_seconds - (5.0 + 2501e-9)).abs() < 1e-9);
        assert_eq!(s.bounds.len() + 1, s.counts.len());
        let mut merged = HistogramSnapshot::default();
        h.add_to(&mut merged);
        h.add_to(&mut merged);
        assert_eq!(merged.count(), 8);
    }

    #[test]
    fn percentiles_interpolate_within_a_bucket() {
        let h = Histogram::new(OP_BOUNDS_NS);
        for _ in 0..100 {
            h.record(Duration::from_nanos(1_500)); // the (1 µs, 2 µs] bucket
        }
        let s = h.snapshot();
        let p50 = s.percentile(50.0);
        assert!(p50 > 1e-6 && p50 <= 2e-6, "{p50}");
        assert!((s.percentile(100.0) - 2e-6).abs() < 1e-12);
        assert_eq!(HistogramSnapshot::default().percentile(50.0), 0.0);
    }
}
