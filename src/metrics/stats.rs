//! [`DbStats`]: a database's statistics at one moment, as `Db::stats`
//! returns them, and their human-readable form (`lightning.dbstats`).

use std::fmt;
use std::time::Duration;

use lightning_compaction::config::units::human_size as human_bytes;
use lightning_compaction::stats::CompactionStats;

use super::histogram::HistogramSnapshot;
use super::{Stall, StatsLevel};
use crate::cache::CacheStats;

/// Counters of user operations since open (all zero with
/// [`StatsLevel::Off`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpStats {
    /// Point reads: `Db::get`, `Snapshot::get` and the snapshot reads of
    /// `Transaction::get` (a key found in the transaction's own writes is
    /// not a read of the database).
    pub gets: u64,
    /// Point reads that found a value.
    pub gets_found: u64,
    /// Bytes of the values they returned.
    pub get_value_bytes: u64,
    /// Put operations written, in any batch.
    pub puts: u64,
    /// Delete operations written, in any batch.
    pub deletes: u64,
    /// Batches written: each successful `put`, `delete`, `write` and
    /// `write_opt` call and each transaction commit that wrote.
    pub writes: u64,
    /// Iterators created (`iter`, `range`, `prefix` on the database, its
    /// snapshots and transactions).
    pub iterators: u64,
}

/// Bloom filter outcomes of point reads (zero with [`StatsLevel::Off`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterStats {
    /// SST files a point read consulted whose filter was checked.
    pub checks: u64,
    /// Of those, files the filter ruled out: no block was read.
    pub useful: u64,
    /// Files the filter let through that held no visible entry of the key.
    pub false_positives: u64,
}

impl FilterStats {
    /// `useful / checks`: the share of file probes the filter saved (0
    /// without checks).
    pub fn useful_ratio(&self) -> f64 {
        ratio(self.useful, self.checks)
    }

    /// `false_positives / (false_positives + useful)`: how often the filter
    /// let through a key the file did not hold, among the files without
    /// the key (0 when there were none).
    pub fn false_positive_ratio(&self) -> f64 {
        ratio(self.false_positives, self.false_positives + self.useful)
    }
}

/// The row cache (`Options::row_cache_size`; zero when it is off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RowCacheStats {
    /// Point reads the cache answered.
    pub hits: u64,
    /// Point reads it could not answer (counted only with the cache on).
    pub misses: u64,
    /// Keys cached now.
    pub entries: u64,
    /// Bytes charged now (entries and the slot array).
    pub usage_bytes: u64,
    /// Configured size (`row_cache_size`).
    pub capacity_bytes: u64,
}

impl RowCacheStats {
    /// `hits / (hits + misses)` (0 without reads).
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits, self.hits + self.misses)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Transactions since open (zero with [`StatsLevel::Off`], `open` too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TxnStats {
    /// Transactions begun.
    pub begun: u64,
    /// Transactions committed (including read-only ones).
    pub commits: u64,
    /// Commits refused with `Error::Conflict`.
    pub conflicts: u64,
    /// Transactions begun and not yet committed, rolled back or dropped.
    pub open: u64,
}

/// Blob files (key-value separation, `Options::enable_blob_files`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobStats {
    /// Live blob files now.
    pub files: u64,
    /// Bytes of the live blob files now.
    pub file_bytes: u64,
    /// Bytes of their records no table references any more (reclaimed
    /// when a file holds only garbage, or by garbage collection).
    pub garbage_bytes: u64,
    /// Bytes of blob files written since open (large values as they are
    /// put, and flushes and compactions that separated or relocated
    /// values).
    pub bytes_written: u64,
    /// Bytes of values read from blob files since open.
    pub bytes_read: u64,
    /// Compactions since open that relocated values out of old blob files.
    pub gc_runs: u64,
    /// Bytes of values they relocated.
    pub gc_bytes_relocated: u64,
}

/// The write-ahead log.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct WalStats {
    /// Bytes of WAL records written since open.
    pub bytes_written: u64,
    /// Durations of WAL syncs (fdatasync) since open: by synced writes,
    /// `wal_bytes_per_sync`, `wal_sync_interval_ms`, memtable switches and
    /// close. Its count is the number of syncs.
    pub sync_latency: HistogramSnapshot,
    /// Bytes appended to the current WAL since its last sync (what a power
    /// loss could take now).
    pub unsynced_bytes: u64,
}

/// One keyspace's statistics (see [`DbStats::keyspaces`]).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct KeyspaceStats {
    /// The keyspace's name.
    pub name: String,
    /// Its tree, as [`DbStats::compaction`] (the user, WAL and stall
    /// totals are the database's).
    pub compaction: CompactionStats,
    /// Its memtables now.
    pub memtables: MemtableStats,
}

/// The memtables now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemtableStats {
    /// Approximate bytes of the active memtable.
    pub active_bytes: u64,
    /// Entries in the active memtable.
    pub active_entries: u64,
    /// Frozen memtables waiting for flush.
    pub immutable_count: u64,
    /// Their approximate bytes.
    pub immutable_bytes: u64,
    /// Their entries.
    pub immutable_entries: u64,
}

/// One cause of write stalls: how often and how long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StallCounter {
    /// Stalls: for a slowdown, each write group delayed (by 1 ms); for a
    /// stop, each wait of a write-group leader until writes may go on.
    pub count: u64,
    /// Time writes were held back, in microseconds.
    pub micros: u64,
}

/// Write stalls since open, by cause, and the condition now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StallStats {
    /// Level-0 files at `level0_slowdown_writes_trigger`.
    pub level0_slowdown: StallCounter,
    /// Level-0 files at `level0_stop_writes_trigger`.
    pub level0_stop: StallCounter,
    /// Pending compaction bytes above `soft_pending_compaction_bytes_limit`.
    pub pending_compaction_slowdown: StallCounter,
    /// Pending compaction bytes above `hard_pending_compaction_bytes_limit`.
    pub pending_compaction_stop: StallCounter,
    /// Every memtable full (`max_write_buffer_number`), waiting for a flush.
    pub memtable_stop: StallCounter,
    /// Writes are slowed down by the compaction backlog now.
    pub slowed_now: bool,
    /// Writes are stopped by the compaction backlog now.
    pub stopped_now: bool,
}

impl StallStats {
    /// The counter of `s`.
    #[cfg(feature = "prometheus")]
    pub(crate) fn get(&self, s: Stall) -> &StallCounter {
        match s {
            Stall::Level0Slowdown => &self.level0_slowdown,
            Stall::Level0Stop => &self.level0_stop,
            Stall::PendingSlowdown => &self.pending_compaction_slowdown,
            Stall::PendingStop => &self.pending_compaction_stop,
            Stall::MemtableStop => &self.memtable_stop,
        }
    }

    pub(crate) fn get_mut(&mut self, s: Stall) -> &mut StallCounter {
        match s {
            Stall::Level0Slowdown => &mut self.level0_slowdown,
            Stall::Level0Stop => &mut self.level0_stop,
            Stall::PendingSlowdown => &mut self.pending_compaction_slowdown,
            Stall::PendingStop => &mut self.pending_compaction_stop,
            Stall::MemtableStop => &mut self.memtable_stop,
        }
    }

    /// Total time writes were held back, in microseconds.
    pub fn total_micros(&self) -> u64 {
        self.level0_slowdown.micros
            + self.level0_stop.micros
            + self.pending_compaction_slowdown.micros
            + self.pending_compaction_stop.micros
            + self.memtable_stop.micros
    }

    /// Total number of stalls.
    pub fn total_count(&self) -> u64 {
        self.level0_slowdown.count
            + self.level0_stop.count
            + self.pending_compaction_slowdown.count
            + self.pending_compaction_stop.count
            + self.memtable_stop.count
    }
}

/// Latencies of user operations (only with [`StatsLevel::All`]).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct OpLatency {
    /// Point reads.
    pub get: HistogramSnapshot,
    /// Write calls, from queueing to return (group commit and WAL sync
    /// included).
    pub write: HistogramSnapshot,
    /// Transaction commits (validation and write; a read-only commit is
    /// counted too, and costs next to nothing).
    pub commit: HistogramSnapshot,
    /// First positioning of an iterator in each direction (the seek that
    /// builds its merged view).
    pub iterator_seek: HistogramSnapshot,
}

/// A database's statistics at one moment ([`crate::Db::stats`]). Counters
/// are cumulative since the database was opened; "now" fields are read
/// when the statistics are taken. Not every field is read at the same
/// instant: sums of fields may be off by operations in flight.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DbStats {
    /// The `db` label of the database's metrics and events.
    pub label: String,
    /// What the database counts.
    pub level: StatsLevel,
    /// Time since open.
    pub uptime: Duration,
    /// The sequence number of the newest visible write.
    pub last_sequence: u64,
    /// User operations.
    pub ops: OpStats,
    /// Bloom filter outcomes of point reads.
    pub filter: FilterStats,
    /// The row cache.
    pub row_cache: RowCacheStats,
    /// Blob files.
    pub blobs: BlobStats,
    /// Transactions.
    pub transactions: TxnStats,
    /// Snapshots open now (transactions hold one each).
    pub snapshots: u64,
    /// The write-ahead log.
    pub wal: WalStats,
    /// The memtables now.
    pub memtables: MemtableStats,
    /// The trees of every keyspace summed: per level files, bytes and
    /// score (the highest) now, and the bytes read and written by flushes
    /// and compactions into each level; user, WAL and flush bytes; write
    /// amplification. `Display` prints RocksDB's compaction-stats table.
    pub compaction: CompactionStats,
    /// Each keyspace's own tree and memtables, `default` first.
    pub keyspaces: Vec<KeyspaceStats>,
    /// Durations of flushes that wrote a file.
    pub flush_latency: HistogramSnapshot,
    /// Durations of compactions (trivial moves included).
    pub compaction_latency: HistogramSnapshot,
    /// Compactions running now.
    pub running_compactions: u64,
    /// Bytes the planner estimates compaction must rewrite to bring every
    /// level within its target (what the pending-bytes stall limits
    /// compare).
    pub pending_compaction_bytes: u64,
    /// Write stalls.
    pub stalls: StallStats,
    /// The block cache (shared caches: every sharing database's lookups).
    pub block_cache: CacheStats,
    /// Background errors reported (flush, compaction, WAL write or sync
    /// failures); the first one stops writes.
    pub background_errors: u64,
    /// The database refuses writes after a background error.
    pub writes_stopped_by_error: bool,
    /// Operation latencies; `Some` only with [`StatsLevel::All`].
    pub latency: Option<OpLatency>,
}

impl DbStats {
    /// Compactions (trivial moves included) that wrote `level`, flushes
    /// not counted (every keyspace's).
    pub fn compactions_into(&self, level: usize) -> u64 {
        self.compaction.compactions_into(level)
    }

    /// Microseconds spent in compactions that wrote `level`, flushes not
    /// counted (every keyspace's).
    pub fn compaction_micros_into(&self, level: usize) -> u64 {
        self.compaction.compaction_micros_into(level)
    }

    /// Bytes written into `level` by compactions, flushes not counted
    /// (every keyspace's).
    pub fn compaction_written_into(&self, level: usize) -> u64 {
        self.compaction.compaction_written_into(level)
    }

    /// Bytes of SST files now, over all levels.
    pub fn sst_bytes(&self) -> u64 {
        self.compaction.levels.iter().map(|l| l.bytes).sum()
    }

    /// SST files now, over all levels.
    pub fn sst_files(&self) -> u64 {
        self.compaction.levels.iter().map(|l| l.files as u64).sum()
    }
}

fn pct(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

fn latency_line(f: &mut fmt::Formatter<'_>, name: &str, h: &HistogramSnapshot) -> fmt::Result {
    let us = |s: f64| s * 1e6;
    writeln!(
        f,
        "  {name:<14} count {:>10}  avg {:>9.1}  p50 {:>9.1}  p99 {:>9.1}  p99.9 {:>9.1}",
        h.count(),
        us(h.mean_seconds()),
        us(h.percentile(50.0)),
        us(h.percentile(99.0)),
        us(h.percentile(99.9)),
    )
}

/// `lightning.dbstats`: operations, bytes, WAL, memtables, flushes and
/// compactions, stalls, cache, filter, snapshots, transactions, errors.
impl fmt::Display for DbStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.compaction;
        writeln!(f, "** DB Stats **")?;
        writeln!(
            f,
            "Uptime(secs): {:.1}   db: {}   statistics: {}   last sequence: {}",
            self.uptime.as_secs_f64(),
            self.label,
            self.level.name(),
            self.last_sequence
        )?;
        let o = &self.ops;
        writeln!(
            f,
            "Operations: {} gets ({} found, {}), {} puts, {} deletes in {} writes, {} iterators",
            o.gets,
            o.gets_found,
            human_bytes(o.get_value_bytes),
            o.puts,
            o.deletes,
            o.writes,
            o.iterators
        )?;
        let compaction_written: u64 = (0..c.levels.len())
            .map(|l| self.compaction_written_into(l))
            .sum();
        writeln!(
            f,
            "Writes: {} user, {} WAL, {} flushed, {} compacted; write amplification {:.2}",
            human_bytes(c.user_bytes_written),
            human_bytes(self.wal.bytes_written),
            human_bytes(c.flush_bytes),
            human_bytes(compaction_written),
            c.write_amplification()
        )?;
        let s = &self.wal.sync_latency;
        writeln!(
            f,
            "WAL: {} syncs (avg {:.3} ms), {} unsynced now",
            s.count(),
            s.mean_seconds() * 1e3,
            human_bytes(self.wal.unsynced_bytes)
        )?;
        let m = &self.memtables;
        writeln!(
            f,
            "Memtables: active {} ({} entries), {} immutable {} ({} entries)",
            human_bytes(m.active_bytes),
            m.active_entries,
            m.immutable_count,
            human_bytes(m.immutable_bytes),
            m.immutable_entries
        )?;
        let compactions: u64 = (0..c.levels.len()).map(|l| self.compactions_into(l)).sum();
        writeln!(
            f,
            "Flushes: {} ({:.3} s); compactions: {} ({:.3} s), {} running, {} pending",
            self.flush_latency.count(),
            self.flush_latency.sum_seconds,
            compactions,
            self.compaction_latency.sum_seconds,
            self.running_compactions,
            human_bytes(self.pending_compaction_bytes)
        )?;
        let st = &self.stalls;
        let stall = |sc: &StallCounter| format!("{} ({:.3} s)", sc.count, sc.micros as f64 / 1e6);
        writeln!(
            f,
            "Stalls: level0-slowdown {}, level0-stop {}, pending-slowdown {}, pending-stop {}, memtable-stop {}; now: {}",
            stall(&st.level0_slowdown),
            stall(&st.level0_stop),
            stall(&st.pending_compaction_slowdown),
            stall(&st.pending_compaction_stop),
            stall(&st.memtable_stop),
            if st.stopped_now {
                "stopped"
            } else if st.slowed_now {
                "slowed down"
            } else {
                "none"
            }
        )?;
        let b = &self.block_cache;
        writeln!(
            f,
            "Block cache: {} hits ({} hits, {} misses), {} inserts, {} evictions, {} cached + {} pinned of {}",
            pct(b.hit_rate()),
            b.hits,
            b.misses,
            b.inserts,
            b.evictions,
            human_bytes(b.usage_bytes),
            human_bytes(b.pinned_bytes),
            human_bytes(b.capacity_bytes)
        )?;
        let rc = &self.row_cache;
        if rc.capacity_bytes > 0 {
            writeln!(
                f,
                "Row cache: {} hits ({} hits, {} misses), {} keys, {} of {}",
                pct(rc.hit_rate()),
                rc.hits,
                rc.misses,
                rc.entries,
                human_bytes(rc.usage_bytes),
                human_bytes(rc.capacity_bytes)
            )?;
        }
        let bl = &self.blobs;
        if bl.files > 0 || bl.bytes_written > 0 {
            writeln!(
                f,
                "Blob files: {} files, {} ({} garbage); written {}, read {}; GC: {} runs, {} relocated",
                bl.files,
                human_bytes(bl.file_bytes),
                human_bytes(bl.garbage_bytes),
                human_bytes(bl.bytes_written),
                human_bytes(bl.bytes_read),
                bl.gc_runs,
                human_bytes(bl.gc_bytes_relocated)
            )?;
        }
        let fl = &self.filter;
        writeln!(
            f,
            "Bloom filter: {} checks, {} useful ({}), {} false positives ({})",
            fl.checks,
            fl.useful,
            pct(fl.useful_ratio()),
            fl.false_positives,
            pct(fl.false_positive_ratio())
        )?;
        let t = &self.transactions;
        writeln!(
            f,
            "Snapshots: {} open; transactions: {} open, {} begun, {} committed, {} conflicts",
            self.snapshots, t.open, t.begun, t.commits, t.conflicts
        )?;
        writeln!(
            f,
            "Background errors: {}{}",
            self.background_errors,
            if self.writes_stopped_by_error {
                " (writes stopped)"
            } else {
                ""
            }
        )?;
        if let Some(l) = &self.latency {
            writeln!(f, "Latency (micros):")?;
            latency_line(f, "get", &l.get)?;
            latency_line(f, "write", &l.write)?;
            latency_line(f, "commit", &l.commit)?;
            latency_line(f, "iterator-seek", &l.iterator_seek)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_are_not_compactions() {
        let mut s = DbStats::default();
        s.compaction.record_flush(100, 10);
        s.compaction.record_compaction(0, &[(0, 100)], 90, 5);
        s.compaction.record_compaction(1, &[(0, 90)], 80, 7);
        assert_eq!(s.compactions_into(0), 1);
        assert_eq!(s.compaction_micros_into(0), 5);
        assert_eq!(s.compaction_written_into(0), 90);
        assert_eq!(s.compactions_into(1), 1);
        assert_eq!(s.compaction_written_into(1), 80);
        let text = s.to_string();
        assert!(text.starts_with("** DB Stats **\n"), "{text}");
        assert!(text.contains("Stalls: "), "{text}");
    }
}
