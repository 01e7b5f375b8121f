//! The Prometheus view of [`DbStats`]: one [`Collector`] per database,
//! registered in the database's registry, turning a fresh `DbStats` into
//! metric families at each scrape.
//!
//! [`FAMILIES`] lists every family (name, type, help, labels): the
//! collector's descriptors and its samples both come from it, and
//! docs/observability.md documents it. Every sample carries the constant
//! label `db`; names follow Prometheus conventions (`lightning_` prefix,
//! units in the name, `_total` on counters).

use std::collections::HashMap;
use std::sync::Weak;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::DbInner;
use crate::metrics::{DbStats, HistogramSnapshot, KeyspaceStats, Stall};

/// One metric family.
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) kind: MetricType,
    pub(crate) help: &'static str,
    /// Variable labels (the constant label `db` is on every family).
    pub(crate) labels: &'static [&'static str],
}

const fn family(
    name: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        kind,
        help,
        labels,
    }
}

use MetricType::{COUNTER, GAUGE, HISTOGRAM};

/// Every metric family a database exports.
pub(crate) const FAMILIES: &[Family] = &[
    family("lightning_operations_total", COUNTER, &["op"],
        "User operations: op=get (point reads), put and delete (operations written, in any batch), write (batches written), iterator (iterators created)."),
    family("lightning_get_found_total", COUNTER, &[],
        "Point reads that found a value."),
    family("lightning_get_value_bytes_total", COUNTER, &[],
        "Bytes of the values point reads returned."),
    family("lightning_operation_duration_seconds", HISTOGRAM, &["op"],
        "Latency of user operations (statistics = all only): op=get, write (queueing, group commit and WAL sync included), commit (transactions), iterator_seek (first positioning of an iterator)."),
    family("lightning_user_written_bytes_total", COUNTER, &[],
        "Key and value bytes written by users."),
    family("lightning_wal_written_bytes_total", COUNTER, &[],
        "Bytes of records written to the write-ahead log."),
    family("lightning_wal_unsynced_bytes", GAUGE, &[],
        "Bytes appended to the current WAL since its last sync."),
    family("lightning_wal_sync_duration_seconds", HISTOGRAM, &[],
        "Durations of WAL syncs (fdatasync); the count is the number of syncs."),
    family("lightning_flush_written_bytes_total", COUNTER, &["keyspace"],
        "Bytes of level-0 files written by flushes."),
    family("lightning_flush_duration_seconds", HISTOGRAM, &[],
        "Durations of memtable flushes that wrote a file; the count is the number of flushes."),
    family("lightning_compactions_total", COUNTER, &["keyspace", "level"],
        "Compactions (trivial moves included) by output level."),
    family("lightning_compaction_seconds_total", COUNTER, &["keyspace", "level"],
        "Time spent in compactions, by output level."),
    family("lightning_compaction_read_bytes_total", COUNTER, &["keyspace", "level"],
        "Bytes read by compactions, by output level (inputs from the level above and from the output level itself)."),
    family("lightning_compaction_written_bytes_total", COUNTER, &["keyspace", "level"],
        "Bytes of files written by compactions, by output level (flushes not included)."),
    family("lightning_compaction_moved_bytes_total", COUNTER, &["keyspace", "level"],
        "Bytes moved into a level by trivial moves (no rewrite)."),
    family("lightning_compaction_input_entries_total", COUNTER, &["keyspace", "level"],
        "Entries read by compactions, by output level."),
    family("lightning_compaction_dropped_entries_total", COUNTER, &["keyspace", "level"],
        "Entries compactions dropped (overwritten versions and tombstones no snapshot needs), by output level."),
    family("lightning_compaction_duration_seconds", HISTOGRAM, &[],
        "Durations of compactions (trivial moves included)."),
    family("lightning_compactions_running", GAUGE, &[],
        "Compactions running now."),
    family("lightning_compaction_pending_bytes", GAUGE, &[],
        "Estimated bytes compaction must rewrite to bring every level within its target."),
    family("lightning_write_amplification", GAUGE, &[],
        "(Bytes written by flushes and compactions) / (bytes written by users) since open."),
    family("lightning_memtables", GAUGE, &["keyspace", "state"],
        "Memtables now: state=active (always 1) or immutable (frozen, waiting for flush)."),
    family("lightning_memtable_bytes", GAUGE, &["keyspace", "state"],
        "Approximate bytes of the memtables, by state."),
    family("lightning_memtable_entries", GAUGE, &["keyspace", "state"],
        "Entries in the memtables, by state."),
    family("lightning_level_files", GAUGE, &["keyspace", "level"],
        "SST files per level now."),
    family("lightning_level_bytes", GAUGE, &["keyspace", "level"],
        "Bytes of SST files per level now."),
    family("lightning_level_compaction_score", GAUGE, &["keyspace", "level"],
        "Compaction score per level (a level at or above 1 wants compaction)."),
    family("lightning_write_stalls_total", COUNTER, &["cause", "kind"],
        "Write stalls: cause=level0_files, pending_compaction_bytes or memtables; kind=slowdown (each write group delayed 1 ms) or stop (each wait until writes may go on)."),
    family("lightning_write_stall_seconds_total", COUNTER, &["cause", "kind"],
        "Time writes were held back, by cause and kind."),
    family("lightning_write_stall_active", GAUGE, &["kind"],
        "1 while the compaction backlog slows down (kind=slowdown) or stops (kind=stop) writes."),
    family("lightning_block_cache_hits_total", COUNTER, &[],
        "Block cache lookups that found their block (a shared cache counts every sharing database)."),
    family("lightning_block_cache_misses_total", COUNTER, &[],
        "Block cache lookups that did not."),
    family("lightning_block_cache_inserts_total", COUNTER, &[],
        "Blocks added to the block cache."),
    family("lightning_block_cache_evictions_total", COUNTER, &[],
        "Blocks evicted from the block cache to make room."),
    family("lightning_block_cache_bytes", GAUGE, &["kind"],
        "Block cache bytes now: kind=blocks (cached blocks) or pinned (open tables' filters and index roots)."),
    family("lightning_block_cache_capacity_bytes", GAUGE, &[],
        "Configured block cache size (cached plus pinned bytes stay below it)."),
    family("lightning_block_cache_entries", GAUGE, &[],
        "Blocks in the block cache now."),
    family("lightning_bloom_filter_checks_total", COUNTER, &[],
        "SST files whose bloom filter a point read checked."),
    family("lightning_bloom_filter_useful_total", COUNTER, &[],
        "Checks where the filter ruled the file out (no block read)."),
    family("lightning_bloom_filter_false_positives_total", COUNTER, &[],
        "Checks the filter let through where the file held no visible entry of the key."),
    family("lightning_row_cache_hits_total", COUNTER, &[],
        "Point reads the row cache answered."),
    family("lightning_row_cache_misses_total", COUNTER, &[],
        "Point reads the row cache could not answer (only with the cache on)."),
    family("lightning_row_cache_entries", GAUGE, &[],
        "Keys in the row cache now."),
    family("lightning_row_cache_bytes", GAUGE, &[],
        "Bytes the row cache holds now (entries and its slot array)."),
    family("lightning_blob_files", GAUGE, &[],
        "Live blob files now (key-value separation)."),
    family("lightning_blob_file_bytes", GAUGE, &[],
        "Bytes of the live blob files now."),
    family("lightning_blob_garbage_bytes", GAUGE, &[],
        "Bytes of live blob files' records no table references any more."),
    family("lightning_blob_bytes_written_total", COUNTER, &[],
        "Bytes of blob files written by flushes and compactions."),
    family("lightning_blob_bytes_read_total", COUNTER, &[],
        "Bytes of values read from blob files."),
    family("lightning_blob_gc_runs_total", COUNTER, &[],
        "Compactions that relocated values out of old blob files."),
    family("lightning_blob_gc_relocated_bytes_total", COUNTER, &[],
        "Bytes of values garbage collection relocated."),
    family("lightning_snapshots", GAUGE, &[],
        "Snapshots open now (each transaction holds one)."),
    family("lightning_transactions_open", GAUGE, &[],
        "Transactions begun and not yet committed, rolled back or dropped."),
    family("lightning_transactions_begun_total", COUNTER, &[],
        "Transactions begun."),
    family("lightning_transaction_commits_total", COUNTER, &[],
        "Transactions committed."),
    family("lightning_transaction_conflicts_total", COUNTER, &[],
        "Transaction commits refused with a conflict."),
    family("lightning_background_errors_total", COUNTER, &[],
        "Background errors (failed flush, compaction, WAL write or sync); the first one stops writes."),
    family("lightning_writes_stopped", GAUGE, &[],
        "1 once a background error has stopped writes (reopen the database)."),
    family("lightning_last_sequence", GAUGE, &[],
        "Sequence number of the newest visible write."),
];

/// The `db`-labelled descriptors of every family.
fn descs(label: &str) -> Vec<Desc> {
    FAMILIES
        .iter()
        .filter_map(|f| {
            let mut consts = HashMap::new();
            consts.insert("db".to_string(), label.to_string());
            Desc::new(
                f.name.to_string(),
                f.help.to_string(),
                f.labels.iter().map(|l| l.to_string()).collect(),
                consts,
            )
            .ok()
        })
        .collect()
}

/// A database's collector. Holds the database weakly: once it is gone,
/// a scrape yields nothing from it.
pub(crate) struct DbCollector {
    inner: Weak<DbInner>,
    descs: Vec<Desc>,
}

impl DbCollector {
    pub(crate) fn new(inner: Weak<DbInner>, label: &str) -> Self {
        DbCollector {
            inner,
            descs: descs(label),
        }
    }
}

impl Collector for DbCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        match self.inner.upgrade() {
            Some(inner) => families(&inner.stats()),
            None => Vec::new(),
        }
    }
}

/// Builds the families of one [`DbStats`].
struct Out<'a> {
    db: &'a str,
    families: Vec<MetricFamily>,
}

impl Out<'_> {
    fn metric(
        &mut self,
        name: &str,
        labels: &[&str],
    ) -> Option<(&mut MetricFamily, proto::Metric)> {
        let i = FAMILIES.iter().position(|f| f.name == name)?;
        let spec = &FAMILIES[i];
        debug_assert_eq!(spec.labels.len(), labels.len(), "{name}");
        let mut pairs: Vec<proto::LabelPair> = std::iter::once(("db", self.db))
            .chain(spec.labels.iter().copied().zip(labels.iter().copied()))
            .map(|(n, v)| {
                let mut p = proto::LabelPair::default();
                p.set_name(n.to_string());
                p.set_value(v.to_string());
                p
            })
            .collect();
        pairs.sort_by(|a, b| a.name().cmp(b.name()));
        Some((&mut self.families[i], proto::Metric::from_label(pairs)))
    }

    /// A counter or gauge sample (the family's type decides which).
    fn value(&mut self, name: &str, labels: &[&str], v: f64) {
        let Some((fam, mut m)) = self.metric(name, labels) else {
            return;
        };
        if fam.get_field_type() == COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(v);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        }
        fam.mut_metric().push(m);
    }

    fn int(&mut self, name: &str, labels: &[&str], v: u64) {
        self.value(name, labels, v as f64);
    }

    fn histogram(&mut self, name: &str, labels: &[&str], h: &HistogramSnapshot) {
        let Some((fam, mut m)) = self.metric(name, labels) else {
            return;
        };
        let mut ph = proto::Histogram::default();
        let mut cumulative = 0;
        let buckets = h
            .bounds
            .iter()
            .zip(&h.counts)
            .map(|(&le, &c)| {
                cumulative += c;
                let mut b = proto::Bucket::default();
                b.set_upper_bound(le);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        ph.set_bucket(buckets);
        ph.set_sample_count(h.count());
        ph.set_sample_sum(h.sum_seconds);
        m.set_histogram(ph);
        fam.mut_metric().push(m);
    }
}

/// The families of one keyspace's tree and memtables (label `keyspace`).
fn keyspace_families(o: &mut Out<'_>, ks: &KeyspaceStats) {
    let name = ks.name.as_str();
    let c = &ks.compaction;
    o.int(
        "lightning_flush_written_bytes_total",
        &[name],
        c.flush_bytes,
    );
    for (level, l) in c.levels.iter().enumerate() {
        let lv = level.to_string();
        let lv = &[name, lv.as_str()][..];
        o.int("lightning_compactions_total", lv, c.compactions_into(level));
        o.value(
            "lightning_compaction_seconds_total",
            lv,
            c.compaction_micros_into(level) as f64 / 1e6,
        );
        o.int(
            "lightning_compaction_read_bytes_total",
            lv,
            l.read_bytes + l.read_output_level_bytes,
        );
        o.int(
            "lightning_compaction_written_bytes_total",
            lv,
            c.compaction_written_into(level),
        );
        o.int("lightning_compaction_moved_bytes_total", lv, l.moved_bytes);
        o.int(
            "lightning_compaction_input_entries_total",
            lv,
            l.input_entries,
        );
        o.int(
            "lightning_compaction_dropped_entries_total",
            lv,
            l.dropped_entries,
        );
        o.int("lightning_level_files", lv, l.files as u64);
        o.int("lightning_level_bytes", lv, l.bytes);
        o.value("lightning_level_compaction_score", lv, l.score);
    }
    let m = &ks.memtables;
    o.int("lightning_memtables", &[name, "active"], 1);
    o.int(
        "lightning_memtables",
        &[name, "immutable"],
        m.immutable_count,
    );
    o.int(
        "lightning_memtable_bytes",
        &[name, "active"],
        m.active_bytes,
    );
    o.int(
        "lightning_memtable_bytes",
        &[name, "immutable"],
        m.immutable_bytes,
    );
    o.int(
        "lightning_memtable_entries",
        &[name, "active"],
        m.active_entries,
    );
    o.int(
        "lightning_memtable_entries",
        &[name, "immutable"],
        m.immutable_entries,
    );
}

/// The metric families of `s` (families without samples left out).
pub(crate) fn families(s: &DbStats) -> Vec<MetricFamily> {
    let mut out = Out {
        db: &s.label,
        families: FAMILIES
            .iter()
            .map(|f| {
                let mut mf = MetricFamily::default();
                mf.set_name(f.name.to_string());
                mf.set_help(f.help.to_string());
                mf.set_field_type(f.kind);
                mf
            })
            .collect(),
    };
    let o = &mut out;
    let ops = &s.ops;
    for (op, v) in [
        ("get", ops.gets),
        ("put", ops.puts),
        ("delete", ops.deletes),
        ("write", ops.writes),
        ("iterator", ops.iterators),
    ] {
        o.int("lightning_operations_total", &[op], v);
    }
    o.int("lightning_get_found_total", &[], ops.gets_found);
    o.int("lightning_get_value_bytes_total", &[], ops.get_value_bytes);
    if let Some(l) = &s.latency {
        for (op, h) in [
            ("get", &l.get),
            ("write", &l.write),
            ("commit", &l.commit),
            ("iterator_seek", &l.iterator_seek),
        ] {
            o.histogram("lightning_operation_duration_seconds", &[op], h);
        }
    }

    let c = &s.compaction;
    o.int(
        "lightning_user_written_bytes_total",
        &[],
        c.user_bytes_written,
    );
    o.int(
        "lightning_wal_written_bytes_total",
        &[],
        s.wal.bytes_written,
    );
    o.int("lightning_wal_unsynced_bytes", &[], s.wal.unsynced_bytes);
    o.histogram(
        "lightning_wal_sync_duration_seconds",
        &[],
        &s.wal.sync_latency,
    );
    o.histogram("lightning_flush_duration_seconds", &[], &s.flush_latency);
    for ks in &s.keyspaces {
        keyspace_families(o, ks);
    }
    o.histogram(
        "lightning_compaction_duration_seconds",
        &[],
        &s.compaction_latency,
    );
    o.int("lightning_compactions_running", &[], s.running_compactions);
    o.int(
        "lightning_compaction_pending_bytes",
        &[],
        s.pending_compaction_bytes,
    );
    o.value(
        "lightning_write_amplification",
        &[],
        c.write_amplification(),
    );

    for stall in Stall::ALL {
        let sc = s.stalls.get(stall);
        let labels = &[stall.cause(), stall.kind()];
        o.int("lightning_write_stalls_total", labels, sc.count);
        o.value(
            "lightning_write_stall_seconds_total",
            labels,
            sc.micros as f64 / 1e6,
        );
    }
    o.int(
        "lightning_write_stall_active",
        &["slowdown"],
        u64::from(s.stalls.slowed_now),
    );
    o.int(
        "lightning_write_stall_active",
        &["stop"],
        u64::from(s.stalls.stopped_now),
    );

    let b = &s.block_cache;
    o.int("lightning_block_cache_hits_total", &[], b.hits);
    o.int("lightning_block_cache_misses_total", &[], b.misses);
    o.int("lightning_block_cache_inserts_total", &[], b.inserts);
    o.int("lightning_block_cache_evictions_total", &[], b.evictions);
    o.int("lightning_block_cache_bytes", &["blocks"], b.usage_bytes);
    o.int("lightning_block_cache_bytes", &["pinned"], b.pinned_bytes);
    o.int(
        "lightning_block_cache_capacity_bytes",
        &[],
        b.capacity_bytes,
    );
    o.int("lightning_block_cache_entries", &[], b.entries);

    let f = &s.filter;
    o.int("lightning_bloom_filter_checks_total", &[], f.checks);
    o.int("lightning_bloom_filter_useful_total", &[], f.useful);
    o.int(
        "lightning_bloom_filter_false_positives_total",
        &[],
        f.false_positives,
    );

    let rc = &s.row_cache;
    o.int("lightning_row_cache_hits_total", &[], rc.hits);
    o.int("lightning_row_cache_misses_total", &[], rc.misses);
    o.int("lightning_row_cache_entries", &[], rc.entries);
    o.int("lightning_row_cache_bytes", &[], rc.usage_bytes);

    let bl = &s.blobs;
    o.int("lightning_blob_files", &[], bl.files);
    o.int("lightning_blob_file_bytes", &[], bl.file_bytes);
    o.int("lightning_blob_garbage_bytes", &[], bl.garbage_bytes);
    o.int("lightning_blob_bytes_written_total", &[], bl.bytes_written);
    o.int("lightning_blob_bytes_read_total", &[], bl.bytes_read);
    o.int("lightning_blob_gc_runs_total", &[], bl.gc_runs);
    o.int(
        "lightning_blob_gc_relocated_bytes_total",
        &[],
        bl.gc_bytes_relocated,
    );

    let t = &s.transactions;
    o.int("lightning_snapshots", &[], s.snapshots);
    o.int("lightning_transactions_open", &[], t.open);
    o.int("lightning_transactions_begun_total", &[], t.begun);
    o.int("lightning_transaction_commits_total", &[], t.commits);
    o.int("lightning_transaction_conflicts_total", &[], t.conflicts);
    o.int(
        "lightning_background_errors_total",
        &[],
        s.background_errors,
    );
    o.int(
        "lightning_writes_stopped",
        &[],
        u64::from(s.writes_stopped_by_error),
    );
    o.int("lightning_last_sequence", &[], s.last_sequence);

    out.families
        .into_iter()
        .filter(|f| !f.get_metric().is_empty())
        .collect()
}

/// The text exposition (format 0.0.4) of `families`.
pub(crate) fn text(families: &[MetricFamily]) -> String {
    let mut s = String::new();
    // Encoding fails only on a family without samples or name, which
    // `families` never yields.
    let _ = prometheus::TextEncoder::new().encode_utf8(families, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::stats::OpLatency;
    use std::collections::BTreeSet;

    #[test]
    fn every_family_is_documented() {
        let doc = include_str!("../../docs/observability.md");
        for f in FAMILIES {
            assert!(
                doc.contains(&format!(
                    "| `{}` | {} |",
                    f.name,
                    format!("{:?}", f.kind).to_lowercase()
                )),
                "{} is not in docs/observability.md's tables",
                f.name
            );
        }
    }

    #[test]
    fn every_family_is_emitted_and_nothing_else() {
        let mut s = DbStats {
            label: "x".into(),
            latency: Some(OpLatency::default()),
            ..DbStats::default()
        };
        s.compaction = lightning_compaction::stats::CompactionStats::new(3);
        s.keyspaces = vec![KeyspaceStats {
            name: "default".into(),
            compaction: s.compaction.clone(),
            ..KeyspaceStats::default()
        }];
        let fams = families(&s);
        let got: BTreeSet<&str> = fams.iter().map(|f| f.name()).collect();
        let want: BTreeSet<&str> = FAMILIES.iter().map(|f| f.name).collect();
        assert_eq!(got, want);
        // Names follow the conventions.
        for f in FAMILIES {
            assert!(f.name.starts_with("lightning_"), "{}", f.name);
            assert_eq!(f.kind == COUNTER, f.name.ends_with("_total"), "{}", f.name);
            if f.kind == HISTOGRAM {
                assert!(f.name.ends_with("_seconds"), "{}", f.name);
            }
        }
        assert_eq!(descs("x").len(), FAMILIES.len());
        let text = text(&fams);
        assert!(
            text.contains("lightning_operations_total{db=\"x\",op=\"get\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("lightning_level_files{db=\"x\",keyspace=\"default\",level=\"2\"} 0\n"),
            "{text}"
        );
    }
}
