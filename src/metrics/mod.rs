//! Observability: the database's statistics, its Prometheus metrics and its
//! event log (docs/observability.md).
//!
//! Where the numbers come from, and what each costs:
//! - **User operations** (gets, iterators, bloom filter probes,
//!   transactions) are counted in per-thread slots ([`local`]): a plain
//!   load and store on a cache line no other thread writes. Writes are
//!   counted by the write-group leader, once per group, in counters only
//!   leaders write ([`WriteCounters`]). With
//!   [`StatsLevel::Off`] none of this runs; only [`StatsLevel::All`] reads
//!   the clock per operation (latency histograms).
//! - **Background events** (flushes, compactions, WAL syncs, stalls,
//!   background errors) are rare; they go to shared atomics and
//!   histograms ([`BackgroundMetrics`]) at every level, since the
//!   properties and `lightning.stats` report them too.
//! - **State** (levels, memtables, block cache, snapshots, pending
//!   compaction bytes) is read from the engine when someone asks.
//!
//! [`DbStats`] is the one snapshot every consumer reads: `Db::stats`, the
//! Prometheus collector ([`prom`]) and the properties.
//!
//! Events: [`db_event!`] emits a `tracing` event carrying the database's
//! label and, when the event log is on, writes the same line to the `LOG`
//! file ([`event_log`]). The library installs no `tracing` subscriber.

pub(crate) mod event_log;
pub(crate) mod histogram;
pub(crate) mod local;
pub(crate) mod stats;
mod timed_seek;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use histogram::HistogramSnapshot;
pub use stats::{
    BlobStats, DbStats, FilterStats, KeyspaceStats, MemtableStats, OpLatency, OpStats,
    RowCacheStats, StallCounter, StallStats, TxnStats, WalStats,
};

pub(crate) use timed_seek::TimedSeek;

use event_log::EventLog;
use histogram::{Histogram, JOB_BOUNDS_NS, SYNC_BOUNDS_NS};
use local::{Counter, LocalCounters, LocalTotals, Op};

/// How much a database counts (`Options::statistics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StatsLevel {
    /// No per-operation counting and no Prometheus metrics:
    /// [`Db::metrics_text`](crate::Db::metrics_text) is empty and no
    /// collector is registered. Background statistics (flushes,
    /// compactions, stalls, WAL syncs) and the properties still work.
    Off,
    /// Every metric except the per-operation latency histograms (the
    /// default). Operations are counted in per-thread counters; nothing
    /// reads the clock per operation.
    #[default]
    Counters,
    /// Everything in `Counters`, plus latency histograms of gets, writes,
    /// transaction commits and iterator seeks: two clock reads per
    /// operation.
    All,
}

impl StatsLevel {
    /// The name used in the config file: `off`, `counters` or `all`.
    pub fn name(self) -> &'static str {
        match self {
            StatsLevel::Off => "off",
            StatsLevel::Counters => "counters",
            StatsLevel::All => "all",
        }
    }
}

/// Why writes were held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// Level-0 files at `level0_slowdown_writes_trigger`: each write
    /// group waits 1 ms.
    Level0Slowdown,
    /// Level-0 files at `level0_stop_writes_trigger`: writes wait.
    Level0Stop,
    /// Pending compaction bytes above the soft limit.
    PendingSlowdown,
    /// Pending compaction bytes above the hard limit.
    PendingStop,
    /// Every memtable full, waiting for a flush.
    MemtableStop,
}

impl Stall {
    pub(crate) const ALL: [Stall; 5] = [
        Stall::Level0Slowdown,
        Stall::Level0Stop,
        Stall::PendingSlowdown,
        Stall::PendingStop,
        Stall::MemtableStop,
    ];

    /// The `cause` label: what the stall waits for.
    pub(crate) fn cause(self) -> &'static str {
        match self {
            Stall::Level0Slowdown | Stall::Level0Stop => "level0_files",
            Stall::PendingSlowdown | Stall::PendingStop => "pending_compaction_bytes",
            Stall::MemtableStop => "memtables",
        }
    }

    /// The `kind` label: `slowdown` or `stop`.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Stall::Level0Slowdown | Stall::PendingSlowdown => "slowdown",
            _ => "stop",
        }
    }

    /// The stall of the compaction planner's write-stall condition.
    pub(crate) fn from_condition(s: lightning_compaction::planner::WriteStall) -> Option<Stall> {
        use lightning_compaction::planner::{StallCause, WriteStall};
        match s {
            WriteStall::None => None,
            WriteStall::Slowdown {
                cause: StallCause::L0FileCount,
            } => Some(Stall::Level0Slowdown),
            WriteStall::Stop {
                cause: StallCause::L0FileCount,
            } => Some(Stall::Level0Stop),
            WriteStall::Slowdown {
                cause: StallCause::PendingCompactionBytes,
            } => Some(Stall::PendingSlowdown),
            WriteStall::Stop {
                cause: StallCause::PendingCompactionBytes,
            } => Some(Stall::PendingStop),
        }
    }
}

/// Counters of background events: shared atomics, written at flush,
/// compaction, WAL sync and stall granularity.
pub(crate) struct BackgroundMetrics {
    pub(crate) flush_duration: Histogram,
    pub(crate) compaction_duration: Histogram,
    pub(crate) wal_sync_duration: Histogram,
    /// Per [`Stall`]: stalls begun, and microseconds stalled.
    stall_count: [AtomicU64; 5],
    stall_micros: [AtomicU64; 5],
    /// Background errors reported (the first stops writes).
    pub(crate) errors: AtomicU64,
}

impl BackgroundMetrics {
    fn new() -> Self {
        BackgroundMetrics {
            flush_duration: Histogram::new(JOB_BOUNDS_NS),
            compaction_duration: Histogram::new(JOB_BOUNDS_NS),
            wal_sync_duration: Histogram::new(SYNC_BOUNDS_NS),
            stall_count: Default::default(),
            stall_micros: Default::default(),
            errors: AtomicU64::new(0),
        }
    }

    /// `(stalls begun, microseconds stalled)` of `s`.
    pub(crate) fn stall(&self, s: Stall) -> (u64, u64) {
        let i = s as usize;
        (
            self.stall_count[i].load(Ordering::Relaxed),
            self.stall_micros[i].load(Ordering::Relaxed),
        )
    }
}

/// Counters of the write group, written only by the group's leader: one
/// leader at a time, each after the previous one (the write queue's mutex
/// orders them), so a plain load and store suffices, with no per-thread
/// slot to look up.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct WriteCounters {
    pub(crate) batches: AtomicU64,
    pub(crate) puts: AtomicU64,
    pub(crate) deletes: AtomicU64,
}

/// Adds `n` to `a`, which only one thread writes at a time (in an order
/// its writers synchronize on).
#[inline]
fn add_exclusive(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// The observability state of one database: its label, per-thread
/// counters, background metrics and event log. Shared (`Arc`) by the
/// database, its iterators and its Prometheus collector.
pub(crate) struct Metrics {
    pub(crate) level: StatsLevel,
    /// The `db` label of metrics and events.
    pub(crate) label: String,
    local: LocalCounters,
    pub(crate) writes: WriteCounters,
    pub(crate) bg: BackgroundMetrics,
    event_log: Option<EventLog>,
    /// When the database was opened.
    pub(crate) opened: Instant,
}

impl Metrics {
    pub(crate) fn new(level: StatsLevel, label: String, event_log: Option<EventLog>) -> Self {
        Metrics {
            level,
            label,
            local: LocalCounters::new(level == StatsLevel::All),
            writes: WriteCounters::default(),
            bg: BackgroundMetrics::new(),
            event_log,
            opened: Instant::now(),
        }
    }

    /// The event log, when it is on.
    pub(crate) fn event_log(&self) -> Option<&EventLog> {
        self.event_log.as_ref()
    }

    /// Whether user operations are counted.
    #[inline]
    pub(crate) fn counting(&self) -> bool {
        self.level != StatsLevel::Off
    }

    /// The start of an operation whose latency is measured: `Some` only at
    /// [`StatsLevel::All`].
    #[inline]
    pub(crate) fn op_timer(&self) -> Option<Instant> {
        (self.level == StatsLevel::All).then(Instant::now)
    }

    /// Adds `n` to counter `c` in the calling thread's slot.
    #[inline]
    pub(crate) fn add(&self, c: Counter, n: u64) {
        if self.counting() {
            self.local.slot().add(c, n);
        }
    }

    /// Counts the latency of `op` begun at `timer` (from [`Self::op_timer`]).
    #[inline]
    pub(crate) fn latency(&self, op: Op, timer: Option<Instant>) {
        if let Some(t) = timer {
            self.local.slot().latency(op, t.elapsed());
        }
    }

    /// Counts a point read: its value (if found), the bloom filter probes
    /// it made, and its latency.
    #[inline]
    pub(crate) fn record_get(
        &self,
        found: Option<usize>,
        filter: crate::sst::FilterCounts,
        timer: Option<Instant>,
    ) {
        self.record_get_with(found, filter, timer, None);
    }

    /// Counts a point read the row cache answered (a hit, and a read as
    /// [`Self::record_get`] counts it), with one visit of the thread's slot.
    #[inline]
    pub(crate) fn record_row_cache_hit(&self, found: Option<usize>, timer: Option<Instant>) {
        let no_probes = crate::sst::FilterCounts::default();
        self.record_get_with(found, no_probes, timer, Some(Counter::RowCacheHits));
    }

    /// [`Self::record_get`], also adding one to `also`.
    #[inline]
    fn record_get_with(
        &self,
        found: Option<usize>,
        filter: crate::sst::FilterCounts,
        timer: Option<Instant>,
        also: Option<Counter>,
    ) {
        if !self.counting() {
            return;
        }
        let s = self.local.slot();
        if let Some(c) = also {
            s.add(c, 1);
        }
        s.add(Counter::Gets, 1);
        if let Some(len) = found {
            s.add(Counter::GetsFound, 1);
            s.add(Counter::GetValueBytes, len as u64);
        }
        if filter.checks > 0 {
            s.add(Counter::FilterChecks, filter.checks);
            s.add(Counter::FilterUseful, filter.useful);
            s.add(Counter::FilterFalsePositives, filter.false_positives);
        }
        if let Some(t) = timer {
            s.latency(Op::Get, t.elapsed());
        }
    }

    /// Counts a write group's members: `batches` batches holding `ops`
    /// operations, `deletes` of them deletes. Only the write-group leader
    /// calls it (see [`WriteCounters`]).
    #[inline]
    pub(crate) fn record_writes(&self, batches: u64, ops: u64, deletes: u64) {
        if !self.counting() {
            return;
        }
        let w = &self.writes;
        add_exclusive(&w.batches, batches);
        add_exclusive(&w.puts, ops - deletes);
        add_exclusive(&w.deletes, deletes);
    }

    /// Counts one WAL sync that took `d`.
    pub(crate) fn record_wal_sync(&self, d: Duration) {
        self.bg.wal_sync_duration.record(d);
    }

    /// Counts the start of a stall `s` (each delayed write group for a
    /// slowdown, each wait for a stop).
    pub(crate) fn stall_begun(&self, s: Stall) {
        self.bg.stall_count[s as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `d` to the time writes were held back by `s`.
    pub(crate) fn stalled_for(&self, s: Stall, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.bg.stall_micros[s as usize].fetch_add(micros, Ordering::Relaxed);
    }

    /// The per-thread counters summed now.
    pub(crate) fn local_totals(&self) -> LocalTotals {
        self.local.totals()
    }
}

/// Emits a `tracing` event at level `$lvl` (`INFO`, `WARN`, ...) with the
/// database's label as field `db` and the given `name = value` fields
/// (each value `Display` and a `tracing::Value`, evaluated once), and
/// writes the same line to the database's event log when it is on.
///
/// `$m` is the database's [`Metrics`].
macro_rules! db_event {
    ($m:expr, $lvl:ident, $msg:literal $(, $k:ident = $v:expr)* $(,)?) => {{
        let __m: &$crate::metrics::Metrics = &$m;
        match ($($v,)*) {
            #[allow(unused_parens)]
            ($($k,)*) => {
                ::tracing::event!(
                    ::tracing::Level::$lvl,
                    db = __m.label.as_str(),
                    $($k,)*
                    $msg
                );
                if let Some(__log) = __m.event_log() {
                    __log.write(
                        ::tracing::Level::$lvl,
                        module_path!(),
                        $msg,
                        &[
                            ("db", &__m.label as &dyn ::std::fmt::Display),
                            $((stringify!($k), &$k as &dyn ::std::fmt::Display),)*
                        ],
                    );
                }
            }
        }
    }};
}
pub(crate) use db_event;
