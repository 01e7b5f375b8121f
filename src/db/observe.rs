//! The engine side of observability: gathering [`DbStats`] from the
//! database's state, the properties (`Db::property`), the Prometheus
//! registration, and the timed WAL sync.
//!
//! Locks: `stats` takes `compaction` then `snapshots` (the documented
//! order), each briefly; the block cache's shard locks one by one. Nothing
//! here runs on a user operation's path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use lightning_compaction::planner;

use super::compact::decode_stall;
#[cfg(feature = "prometheus")]
use super::prom::{self, DbCollector};
use super::tree::Tree;
use super::{Db, DbInner};
use crate::error::Result;
use crate::key::user_key;
use crate::metrics::event_log::{EventLog, EventLogConfig};
use crate::metrics::local::{Counter, Op};
use crate::metrics::{
    BlobStats, DbStats, FilterStats, KeyspaceStats, MemtableStats, Metrics, OpLatency, OpStats,
    RowCacheStats, Stall, StallStats, StatsLevel, TxnStats, WalStats,
};
use crate::options::Options;
use crate::version::version::Version;

impl DbInner {
    /// Write stalls since open, and the condition now.
    pub(crate) fn stall_stats(&self) -> StallStats {
        let mut s = StallStats::default();
        for stall in Stall::ALL {
            let (count, micros) = self.metrics.bg.stall(stall);
            let c = s.get_mut(stall);
            c.count = count;
            c.micros = micros;
        }
        match Stall::from_condition(decode_stall(
            self.compaction.stall_condition.load(Ordering::Acquire),
        )) {
            Some(Stall::Level0Stop | Stall::PendingStop) => s.stopped_now = true,
            Some(_) => s.slowed_now = true,
            None => {}
        }
        s
    }

    /// Every statistic of the database now.
    pub(crate) fn stats(&self) -> DbStats {
        let m = &self.metrics;
        let local = m.local_totals();
        let trees = self.all_trees();
        let (running, pending) = {
            let st = self.compaction.state.lock();
            let pending = trees
                .iter()
                .map(|t| {
                    let state = self.current_level_state(t, &st.being_compacted);
                    planner::pending_compaction_bytes(&state, &t.opts().compaction)
                })
                .sum();
            (st.running as u64, pending)
        };
        let svs: Vec<_> = trees.iter().map(|t| t.sv.load_full()).collect();
        let per_keyspace: Vec<MemtableStats> = svs
            .iter()
            .map(|sv| MemtableStats {
                active_bytes: sv.mem.approximate_size() as u64,
                active_entries: sv.mem.num_entries(),
                immutable_count: sv.imms.len() as u64,
                immutable_bytes: sv.imms.iter().map(|i| i.approximate_size() as u64).sum(),
                immutable_entries: sv.imms.iter().map(|i| i.num_entries()).sum(),
            })
            .collect();
        let memtables = MemtableStats {
            active_bytes: per_keyspace.iter().map(|m| m.active_bytes).sum(),
            active_entries: per_keyspace.iter().map(|m| m.active_entries).sum(),
            immutable_count: per_keyspace.iter().map(|m| m.immutable_count).sum(),
            immutable_bytes: per_keyspace.iter().map(|m| m.immutable_bytes).sum(),
            immutable_entries: per_keyspace.iter().map(|m| m.immutable_entries).sum(),
        };
        let blob_files = || svs.iter().flat_map(|sv| sv.version.blob_files().values());
        let blobs = BlobStats {
            files: blob_files().count() as u64,
            file_bytes: blob_files().map(|b| b.meta.file_size).sum(),
            garbage_bytes: blob_files().map(|b| b.meta.garbage_bytes).sum(),
            bytes_written: self.io.blob_bytes_written.load(Ordering::Relaxed),
            bytes_read: self.versions.lock().blob_bytes_read(),
            gc_runs: self.io.blob_gc_runs.load(Ordering::Relaxed),
            gc_bytes_relocated: self.io.blob_gc_relocated.load(Ordering::Relaxed),
        };
        drop(svs);
        // Taken alone: a guard in the struct expression below would live
        // until its end, across `compaction_stats` (compaction → snapshots).
        let snapshots = self.snapshots.lock().values().map(|&n| n as u64).sum();
        let begun = local.get(Counter::TxnBegun);
        DbStats {
            label: m.label.clone(),
            level: m.level,
            uptime: m.opened.elapsed(),
            last_sequence: self.visible_seq.load(Ordering::Acquire),
            ops: OpStats {
                gets: local.get(Counter::Gets),
                gets_found: local.get(Counter::GetsFound),
                get_value_bytes: local.get(Counter::GetValueBytes),
                puts: m.writes.puts.load(Ordering::Relaxed),
                deletes: m.writes.deletes.load(Ordering::Relaxed),
                writes: m.writes.batches.load(Ordering::Relaxed),
                iterators: local.get(Counter::Iterators),
            },
            filter: FilterStats {
                checks: local.get(Counter::FilterChecks),
                useful: local.get(Counter::FilterUseful),
                false_positives: local.get(Counter::FilterFalsePositives),
            },
            blobs,
            row_cache: RowCacheStats {
                hits: local.get(Counter::RowCacheHits),
                misses: local.get(Counter::RowCacheMisses),
                entries: self.row_cache.as_ref().map_or(0, |c| c.len() as u64),
                usage_bytes: self.row_cache.as_ref().map_or(0, |c| c.charged() as u64),
                capacity_bytes: self.opts.row_cache_size as u64,
            },
            transactions: TxnStats {
                begun,
                commits: local.get(Counter::TxnCommits),
                conflicts: local.get(Counter::TxnConflicts),
                open: begun.saturating_sub(local.get(Counter::TxnEnded)),
            },
            snapshots,
            wal: WalStats {
                bytes_written: self.io.wal_bytes.load(Ordering::Relaxed),
                sync_latency: m.bg.wal_sync_duration.snapshot(),
                unsynced_bytes: self.io.wal_unsynced.load(Ordering::Relaxed),
            },
            memtables,
            compaction: self.total_compaction_stats(),
            keyspaces: trees
                .iter()
                .zip(per_keyspace)
                .map(|(t, memtables)| KeyspaceStats {
                    name: t.name.clone(),
                    compaction: self.compaction_stats(t),
                    memtables,
                })
                .collect(),
            flush_latency: m.bg.flush_duration.snapshot(),
            compaction_latency: m.bg.compaction_duration.snapshot(),
            running_compactions: running,
            pending_compaction_bytes: pending,
            stalls: self.stall_stats(),
            block_cache: self
                .block_cache
                .as_ref()
                .map(|c| c.stats())
                .unwrap_or_default(),
            background_errors: m.bg.errors.load(Ordering::Relaxed),
            writes_stopped_by_error: self.bg_error.set.load(Ordering::Acquire),
            latency: (m.level == StatsLevel::All).then(|| {
                let [get, write, commit, iterator_seek] = local.latency;
                OpLatency {
                    get,
                    write,
                    commit,
                    iterator_seek,
                }
            }),
        }
    }

    /// Syncs `wal` and counts the sync and its duration.
    pub(crate) fn sync_wal(&self, wal: &mut super::wal::Wal) -> Result<()> {
        self.timed_wal_sync(|| wal.sync())
    }

    /// Runs `sync` (a WAL's sync, or its `finish` before rotation or
    /// close) and counts it and its duration as a WAL sync.
    pub(crate) fn timed_wal_sync(&self, sync: impl FnOnce() -> Result<()>) -> Result<()> {
        let t = Instant::now();
        sync()?;
        self.metrics.record_wal_sync(t.elapsed());
        Ok(())
    }

    /// Counts a finished transaction and its commit's outcome (`None` for
    /// one rolled back or dropped).
    pub(crate) fn record_txn_end(&self, outcome: Option<&Result<()>>) {
        let m = &self.metrics;
        m.add(Counter::TxnEnded, 1);
        match outcome {
            Some(Ok(())) => m.add(Counter::TxnCommits, 1),
            Some(Err(e)) if e.is_conflict() => m.add(Counter::TxnConflicts, 1),
            _ => {}
        }
    }

    /// Counts a transaction begun.
    pub(crate) fn record_txn_begin(&self) {
        self.metrics.add(Counter::TxnBegun, 1);
    }

    /// The start of an operation whose latency is measured (`Some` only
    /// with `StatsLevel::All`).
    pub(crate) fn op_timer(&self) -> Option<Instant> {
        self.metrics.op_timer()
    }

    /// Counts a commit's latency (from [`crate::metrics::Metrics::op_timer`]).
    pub(crate) fn record_commit_latency(&self, timer: Option<Instant>) {
        self.metrics.latency(Op::Commit, timer);
    }

    /// Property `name` of `tree`'s keyspace as text (see
    /// [`Db::property`]).
    pub(crate) fn property_string(&self, tree: &Tree, name: &str) -> Option<String> {
        Some(match self.property(tree, name)? {
            Prop::Int(n) => n.to_string(),
            Prop::Text(t) => t,
        })
    }

    /// An integer property of `tree`'s keyspace (see [`Db::property_u64`]).
    pub(crate) fn property_int(&self, tree: &Tree, name: &str) -> Option<u64> {
        match self.property(tree, name)? {
            Prop::Int(n) => Some(n),
            Prop::Text(_) => None,
        }
    }

    /// The value of property `name` (see [`Db::property`]): the
    /// per-tree ones (files, levels, memtables, compaction statistics)
    /// are `tree`'s, the others the database's.
    fn property(&self, tree: &Tree, name: &str) -> Option<Prop> {
        let name = name.strip_prefix("lightning.")?;
        if let Some(n) = name.strip_prefix("num-files-at-level") {
            let level: usize = n.parse().ok().filter(|_| n == n.trim())?;
            if level >= tree.opts().compaction.num_levels {
                return None;
            }
            return Some(Prop::Int(tree.sv.load().version.files(level).len() as u64));
        }
        let version = || Arc::clone(&tree.sv.load().version);
        let cache = || {
            self.block_cache
                .as_ref()
                .map(|c| c.stats())
                .unwrap_or_default()
        };
        Some(match name {
            "stats" => {
                let s = self.stats();
                Prop::Text(format!("{s}\n{}", s.compaction))
            }
            "dbstats" => Prop::Text(self.stats().to_string()),
            "compaction-stats" => Prop::Text(self.compaction_stats(tree).to_string()),
            "levelstats" => Prop::Text(level_stats(&version(), tree.opts().compaction.num_levels)),
            "total-sst-files-size" => {
                Prop::Int(version().all_files().map(|(_, f)| f.meta.file_size).sum())
            }
            "estimate-live-data-size" => Prop::Int(estimate_live_data_size(
                &version(),
                tree.opts().compaction.num_levels,
            )),
            "estimate-num-keys" => {
                let sv = tree.sv.load();
                let mem: u64 = std::iter::once(&sv.mem)
                    .chain(&sv.imms)
                    .map(|m| m.num_entries())
                    .sum();
                let files: u64 = sv
                    .version
                    .all_files()
                    .map(|(_, f)| f.meta.num_entries.saturating_sub(f.meta.num_deletions))
                    .sum();
                Prop::Int(mem + files)
            }
            "num-immutable-mem-table" => Prop::Int(tree.sv.load().imms.len() as u64),
            "cur-size-active-mem-table" => Prop::Int(tree.sv.load().mem.approximate_size() as u64),
            "cur-size-all-mem-tables" => {
                let sv = tree.sv.load();
                Prop::Int(
                    std::iter::once(&sv.mem)
                        .chain(&sv.imms)
                        .map(|m| m.approximate_size() as u64)
                        .sum(),
                )
            }
            "num-entries-active-mem-table" => Prop::Int(tree.sv.load().mem.num_entries()),
            "num-entries-imm-mem-tables" => {
                Prop::Int(tree.sv.load().imms.iter().map(|m| m.num_entries()).sum())
            }
            "num-range-deletions" => {
                let sv = tree.sv.load();
                let mems: usize = std::iter::once(&sv.mem)
                    .chain(&sv.imms)
                    .map(|m| m.num_range_deletions())
                    .sum();
                let files: u64 = sv
                    .version
                    .all_files()
                    .map(|(_, f)| f.range_tombstones().map_or(0, |t| t.len() as u64))
                    .sum();
                Prop::Int(mems as u64 + files)
            }
            "num-snapshots" => Prop::Int(self.snapshots.lock().values().map(|&n| n as u64).sum()),
            "oldest-snapshot-sequence" => {
                Prop::Int(self.snapshots.lock().keys().next().copied().unwrap_or(0))
            }
            "num-running-compactions" => Prop::Int(self.compaction.state.lock().running as u64),
            "compaction-pending" => {
                let st = self.compaction.state.lock();
                let state = self.current_level_state(tree, &st.being_compacted);
                let topts = tree.opts();
                let cfg = &topts.compaction;
                let pending = self.write.is_some()
                    && !cfg.disable_auto_compactions
                    && planner::pick(&state, cfg).is_some();
                Prop::Int(u64::from(pending))
            }
            "estimate-pending-compaction-bytes" => {
                let st = self.compaction.state.lock();
                let state = self.current_level_state(tree, &st.being_compacted);
                Prop::Int(planner::pending_compaction_bytes(
                    &state,
                    &tree.opts().compaction,
                ))
            }
            "is-write-stopped" => Prop::Int(u64::from(
                self.stall_stats().stopped_now || self.bg_error.set.load(Ordering::Acquire),
            )),
            "background-errors" => Prop::Int(self.metrics.bg.errors.load(Ordering::Relaxed)),
            "block-cache-capacity" => Prop::Int(cache().capacity_bytes),
            "block-cache-usage" => Prop::Int(cache().usage_bytes + cache().pinned_bytes),
            "block-cache-pinned-usage" => Prop::Int(cache().pinned_bytes),
            "latest-sequence-number" => Prop::Int(self.visible_seq.load(Ordering::Acquire)),
            "num-open-tables" => Prop::Int(self.versions.lock().table_cache().open_tables() as u64),
            "max-open-tables" => Prop::Int(self.versions.lock().table_cache().capacity() as u64),
            _ => return None,
        })
    }
}

/// A property's value.
enum Prop {
    Int(u64),
    Text(String),
}

/// Every property name `Db::property` answers (`num-files-at-level<N>`
/// for each level); docs/observability.md explains each.
pub const PROPERTY_NAMES: &[&str] = &[
    "lightning.stats",
    "lightning.dbstats",
    "lightning.compaction-stats",
    "lightning.levelstats",
    "lightning.num-files-at-level<N>",
    "lightning.total-sst-files-size",
    "lightning.estimate-live-data-size",
    "lightning.estimate-num-keys",
    "lightning.num-immutable-mem-table",
    "lightning.cur-size-active-mem-table",
    "lightning.cur-size-all-mem-tables",
    "lightning.num-entries-active-mem-table",
    "lightning.num-entries-imm-mem-tables",
    "lightning.num-range-deletions",
    "lightning.num-snapshots",
    "lightning.oldest-snapshot-sequence",
    "lightning.num-running-compactions",
    "lightning.compaction-pending",
    "lightning.estimate-pending-compaction-bytes",
    "lightning.is-write-stopped",
    "lightning.background-errors",
    "lightning.block-cache-capacity",
    "lightning.block-cache-usage",
    "lightning.block-cache-pinned-usage",
    "lightning.latest-sequence-number",
    "lightning.num-open-tables",
    "lightning.max-open-tables",
];

/// `lightning.levelstats`: files and megabytes per level, as RocksDB's
/// `rocksdb.levelstats`.
fn level_stats(version: &Version, num_levels: usize) -> String {
    let mut s = String::from("Level Files Size(MB)\n--------------------\n");
    for level in 0..num_levels {
        let files = version.files(level);
        let bytes: u64 = files.iter().map(|f| f.meta.file_size).sum();
        let _ = writeln!(
            s,
            "{level:>5} {:>5} {:>8.0}",
            files.len(),
            bytes as f64 / 1048576.0
        );
    }
    s
}

/// RocksDB's estimate of the live data size: the bytes of a maximal set
/// of files whose key ranges do not overlap, taken from the last level up
/// (a file is counted unless a file already counted, from its level or a
/// deeper one, overlaps it). Exact for a fully compacted tree; the less
/// compacted, the lower the estimate.
fn estimate_live_data_size(version: &Version, num_levels: usize) -> u64 {
    // Counted files by (largest user key, file number) → smallest user key.
    let mut counted: BTreeMap<(Vec<u8>, u64), Vec<u8>> = BTreeMap::new();
    let mut size = 0;
    for level in (0..num_levels).rev() {
        for f in version.files(level) {
            let (lo, hi) = (user_key(&f.meta.smallest), user_key(&f.meta.largest));
            let overlaps = counted
                .range((lo.to_vec(), 0)..)
                .next()
                .is_some_and(|(_, smallest)| smallest.as_slice() <= hi);
            if !overlaps {
                counted.insert((hi.to_vec(), f.meta.number), lo.to_vec());
                size += f.meta.file_size;
            }
        }
    }
    size
}

impl Db {
    /// The database's statistics now: operation counters, bytes written
    /// by users, WAL, flushes and compactions, WAL syncs, memtables,
    /// levels, stalls, block cache, bloom filter, snapshots, transactions,
    /// background errors (see [`DbStats`]). Counters are cumulative since
    /// open; with [`StatsLevel::Off`] the per-operation ones stay zero.
    /// Takes a few internal locks briefly; meant for monitoring, not for
    /// every operation.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// let stats = db.stats();
    /// println!("{stats:?}");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn stats(&self) -> DbStats {
        self.inner.stats()
    }

    /// A named property, RocksDB style: `None` for a name it does not
    /// know. The properties of one tree (files, levels, memtables,
    /// compaction statistics, pending compaction) are the default
    /// keyspace's, as RocksDB's are the default column family's; see
    /// [`Keyspace::property`](crate::Keyspace::property) for another
    /// keyspace's. Integer properties come as decimal text (see
    /// [`Db::property_u64`]). The names (all under `lightning.`):
    ///
    /// - `stats`: the human-readable report: `dbstats` followed by
    ///   `compaction-stats`.
    /// - `dbstats`: operations, bytes and write amplification, WAL syncs,
    ///   memtables, flushes and compactions, stalls by cause, block cache,
    ///   bloom filter, snapshots, transactions, background errors.
    /// - `compaction-stats`: the per-level table of
    ///   [`Db::compaction_stats`].
    /// - `levelstats`: files and MB per level.
    /// - `num-files-at-level<N>`: files in level `N`.
    /// - `total-sst-files-size`: bytes of the live SST files.
    /// - `estimate-live-data-size`: RocksDB's estimate of the live data
    ///   (a maximal set of non-overlapping files, from the last level up).
    /// - `estimate-num-keys`: entries in memtables and files minus file
    ///   tombstones (overwritten keys count once per version).
    /// - `num-immutable-mem-table`, `cur-size-active-mem-table`,
    ///   `cur-size-all-mem-tables`, `num-entries-active-mem-table`,
    ///   `num-entries-imm-mem-tables`.
    /// - `num-range-deletions`: range tombstones in the memtables (as
    ///   written) and the live files (per fragment and sequence number).
    /// - `num-snapshots`, `oldest-snapshot-sequence` (0 without one).
    /// - `num-running-compactions`, `compaction-pending` (1 when the
    ///   planner would start a job), `estimate-pending-compaction-bytes`.
    /// - `is-write-stopped` (1 while writes stop for compaction or after a
    ///   background error), `background-errors`.
    /// - `block-cache-capacity`, `block-cache-usage` (cached plus pinned
    ///   bytes), `block-cache-pinned-usage`.
    /// - `latest-sequence-number`.
    /// - `num-open-tables`, `max-open-tables`: SST files open now, and the
    ///   most kept open (`max_open_files`, bounded by the system).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// let text = db.property("lightning.stats").unwrap(); // RocksDB-style report
    /// assert!(!text.is_empty());
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn property(&self, name: &str) -> Option<String> {
        self.inner.property_string(&self.inner.default, name)
    }

    /// An integer property (see [`Db::property`]); `None` for an unknown
    /// name or a text property.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// assert_eq!(db.property_u64("lightning.num-entries-active-mem-table"), Some(1));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn property_u64(&self, name: &str) -> Option<u64> {
        self.inner.property_int(&self.inner.default, name)
    }

    /// This database's metrics in the Prometheus text exposition format
    /// (version 0.0.4), every sample labelled `db` (see
    /// `docs/observability.md` for the list). Empty with
    /// [`StatsLevel::Off`]. To serve several databases, or other metrics
    /// beside them, gather their shared registry instead
    /// ([`Options::metrics_registry`](crate::Options::metrics_registry)).
    #[cfg(feature = "prometheus")]
    pub fn metrics_text(&self) -> String {
        if self.registry.is_none() {
            return String::new();
        }
        prom::text(&prom::families(&self.inner.stats()))
    }

    /// The registry this database's collector is registered in: the one
    /// given in [`Options::metrics_registry`](crate::Options::metrics_registry),
    /// else one the database made for itself. `None` with
    /// [`StatsLevel::Off`]. The collector is unregistered when the
    /// database closes.
    #[cfg(feature = "prometheus")]
    pub fn metrics_registry(&self) -> Option<&prometheus::Registry> {
        self.registry.as_ref()
    }
}

/// The observability state of a database opening in `dir`: its label
/// (`Options::metrics_label`, else the path), and its event log when
/// `Options::event_log` is on and the open may write (a log that cannot
/// be started is reported and left off: it never fails an open).
pub(super) fn make_metrics(dir: &Path, opts: &Options, writable: bool) -> Arc<Metrics> {
    let label = if opts.metrics_label.is_empty() {
        dir.display().to_string()
    } else {
        opts.metrics_label.clone()
    };
    let log = if opts.event_log && writable {
        let cfg = EventLogConfig {
            max_file_size: opts.event_log_max_file_size,
            keep_files: opts.event_log_keep_files,
        };
        match EventLog::open(Arc::clone(&opts.fs), dir, cfg) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(db = label.as_str(), error = %e, "cannot start the event log; going on without it");
                None
            }
        }
    } else {
        None
    };
    let m = Metrics::new(opts.statistics, label, log);
    if let Some(log) = m.event_log() {
        log.write(
            tracing::Level::INFO,
            module_path!(),
            "event log started",
            &[
                ("db", &m.label as &dyn std::fmt::Display),
                ("version", &env!("CARGO_PKG_VERSION")),
                ("dir", &dir.display()),
            ],
        );
    }
    Arc::new(m)
}

/// Registers the collector of `inner` in the registry the options name
/// (or a new one), unless statistics are off. An error names the label
/// already taken.
#[cfg(feature = "prometheus")]
pub(super) fn register(
    inner: &Arc<DbInner>,
    opts: &Options,
) -> Result<Option<prometheus::Registry>> {
    if opts.statistics == StatsLevel::Off {
        return Ok(None);
    }
    let registry = opts.metrics_registry.clone().unwrap_or_default();
    let label = &inner.metrics.label;
    registry
        .register(Box::new(DbCollector::new(Arc::downgrade(inner), label)))
        .map_err(|e| {
            crate::Error::InvalidArgument(format!(
                "cannot register the metrics of database `{label}` in the Prometheus registry \
                 ({e}): another database with this label is registered there; set \
                 Options::metrics_label"
            ))
        })?;
    Ok(Some(registry))
}

/// Removes the collector of `inner` from `registry`.
#[cfg(feature = "prometheus")]
pub(super) fn unregister(inner: &Arc<DbInner>, registry: &prometheus::Registry) {
    // A collector with the same descriptors identifies the registered one.
    let _ = registry.unregister(Box::new(DbCollector::new(
        Arc::downgrade(inner),
        &inner.metrics.label,
    )));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_is_documented() {
        let doc = include_str!("../../docs/observability.md");
        for p in PROPERTY_NAMES {
            assert!(
                doc.contains(&format!("| `{p}` |")),
                "{p} is not in docs/observability.md"
            );
        }
    }

    #[test]
    fn every_listed_property_answers() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        db.put("k", "v").unwrap();
        for name in PROPERTY_NAMES {
            let name = name.replace("<N>", "0");
            assert!(db.property(&name).is_some(), "{name}");
        }
        assert_eq!(db.property("lightning.num-files-at-level7"), None);
        assert_eq!(db.property("lightning.num-files-at-level 0"), None);
        assert_eq!(db.property("rocksdb.stats"), None);
        assert_eq!(db.property("lightning.nope"), None);
        assert_eq!(db.property_u64("lightning.stats"), None);
        assert_eq!(db.property_u64("lightning.latest-sequence-number"), Some(1));
    }
}
