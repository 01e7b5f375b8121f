//! The database's statistics and Prometheus metrics after known workloads:
//! operation counts exact (also from several threads), bytes equal to the
//! real amounts (batch encodings, files on disk), stalls caused on purpose
//! and counted by cause, bloom filter outcomes, transactions, background
//! errors; the text exposition parsed with a real parser
//! (`prometheus-parse`) and checked against Prometheus conventions; shared
//! registries; `StatsLevel::Off` and `All`; the properties; the event log.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{memtable_stall, wait_until, GateFs};
use lightning_db::fs::FileSystem;
use lightning_db::prometheus;
use lightning_db::testing::{FaultFs, FaultRule, MemFs, OpKind};
use lightning_db::{
    Compression, Db, Error, Options, StatsLevel, WriteBatch, WriteOptions, PROPERTY_NAMES,
};
use prometheus_parse::{Scrape, Value};

fn mem_opts() -> Options {
    Options::default().fs(Arc::new(MemFs::new()))
}

/// The samples of a text exposition, parsed.
fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("exposition parses")
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<_> = s
        .samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels:?}: {matching:?}");
    match &matching[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{name} is not a scalar: {other:?}"),
    }
}

fn sst_bytes_on_disk(fs: &dyn FileSystem, dir: &Path) -> (u64, usize) {
    let names: Vec<String> = fs
        .list_dir(dir)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    let bytes = names
        .iter()
        .map(|n| fs.file_size(&dir.join(n)).unwrap())
        .sum();
    (bytes, names.len())
}

#[test]
fn operation_counts_and_user_and_wal_bytes_are_exact() {
    let db = Db::open("/db", mem_opts()).unwrap();
    // WAL bytes are what the log file grows by: each batch is one record
    // with a 7-byte header (docs/format.md; no block padding this small),
    // whose payload starts with the sequence and count as varints: one
    // byte each here (every sequence is below 128), 10 bytes fewer than
    // the batch's in-memory 12-byte header that approximate_size counts.
    const RECORD_HEADER: u64 = 7;
    const SHORT_HEADER_SAVING: u64 = 10;
    let (mut user, mut wal) = (0u64, 0u64);
    let value = [7u8; 10];
    for i in 0..100 {
        let k = format!("k{i:03}");
        let mut b = WriteBatch::new();
        b.put(&k, value);
        user += (k.len() + value.len()) as u64;
        wal += b.approximate_size() as u64 - SHORT_HEADER_SAVING + RECORD_HEADER;
        db.put(&k, value).unwrap();
    }
    for i in 0..10 {
        let k = format!("k{i:03}");
        let mut b = WriteBatch::new();
        b.delete(&k);
        user += k.len() as u64;
        wal += b.approximate_size() as u64 - SHORT_HEADER_SAVING + RECORD_HEADER;
        db.delete(&k).unwrap();
    }
    let mut b = WriteBatch::new();
    for i in 200..205 {
        b.put(format!("k{i:03}"), value);
    }
    for i in 10..13 {
        b.delete(format!("k{i:03}"));
    }
    user += 5 * (4 + 10) + 3 * 4;
    wal += b.approximate_size() as u64 - SHORT_HEADER_SAVING + RECORD_HEADER;
    db.write(b).unwrap();
    // An empty batch writes nothing and is not counted.
    db.write(WriteBatch::new()).unwrap();

    // 50 reads of present keys, 20 of deleted or absent ones.
    let mut found = 0;
    for i in 13..63 {
        found += db.get(format!("k{i:03}")).unwrap().is_some() as u64;
    }
    for i in 0..20 {
        assert!(db
            .get(format!("k{:03}", if i < 13 { i } else { 900 + i }))
            .unwrap()
            .is_none());
    }
    assert_eq!(found, 50);
    let snap = db.snapshot();
    assert_eq!(snap.get("k050").unwrap().as_deref(), Some(&value[..]));
    assert_eq!(db.iter().count(), 100 - 13 + 5);
    let _ = db.prefix("k2").count();
    let _ = snap.range(&b"k1"[..]..).next();

    let s = db.stats();
    assert_eq!(s.ops.puts, 105);
    assert_eq!(s.ops.deletes, 13);
    assert_eq!(s.ops.writes, 111);
    assert_eq!(s.ops.gets, 71);
    assert_eq!(s.ops.gets_found, 51);
    assert_eq!(s.ops.get_value_bytes, 51 * 10);
    assert_eq!(s.ops.iterators, 3);
    assert_eq!(s.compaction.user_bytes_written, user);
    assert_eq!(s.wal.bytes_written, wal);
    assert_eq!(s.snapshots, 1);
    assert_eq!(s.last_sequence, 100 + 10 + 8);
    assert_eq!(s.memtables.active_entries, 118);
    assert_eq!(s.memtables.immutable_count, 0);
    assert!(s.latency.is_none());

    let m = parse(&db.metrics_text());
    for (op, v) in [
        ("get", 71.0),
        ("put", 105.0),
        ("delete", 13.0),
        ("write", 111.0),
        ("iterator", 3.0),
    ] {
        assert_eq!(
            sample(&m, "lightning_operations_total", &[("op", op)]),
            v,
            "{op}"
        );
    }
    assert_eq!(sample(&m, "lightning_get_found_total", &[]), 51.0);
    assert_eq!(
        sample(&m, "lightning_user_written_bytes_total", &[]),
        user as f64
    );
    assert_eq!(
        sample(&m, "lightning_wal_written_bytes_total", &[]),
        wal as f64
    );
    assert_eq!(sample(&m, "lightning_snapshots", &[]), 1.0);
    assert_eq!(
        sample(&m, "lightning_memtable_entries", &[("state", "active")]),
        118.0
    );
    assert_eq!(sample(&m, "lightning_last_sequence", &[]), 118.0);
    drop(snap);
    assert_eq!(db.stats().snapshots, 0);
}

#[test]
fn counts_from_many_threads_add_up_exactly() {
    let db = Arc::new(Db::open("/db", mem_opts()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    db.put(format!("{t}-{i}"), "v").unwrap();
                    let _ = db.get(format!("{t}-{}", i / 2)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = db.stats();
    assert_eq!(s.ops.puts, 8_000);
    assert_eq!(s.ops.writes, 8_000);
    assert_eq!(s.ops.gets, 8_000);
    assert_eq!(s.ops.gets_found, 8_000);
    // Threads that are gone keep their counts; new threads add to them.
    let db2 = Arc::clone(&db);
    std::thread::spawn(move || db2.put("late", "v").unwrap())
        .join()
        .unwrap();
    assert_eq!(db.stats().ops.puts, 8_001);
}

#[test]
fn flush_and_compaction_bytes_match_the_files() {
    let fs = Arc::new(MemFs::new());
    let mut o = Options::default()
        .fs(fs.clone())
        .write_buffer_size(64 << 10);
    o.compaction.disable_auto_compactions = true;
    let dir = Path::new("/db");
    let db = Db::open(dir, o).unwrap();
    for round in 0..3 {
        for i in 0..3_000 {
            db.put(format!("key{i:05}"), format!("{round}-{}", "x".repeat(90)))
                .unwrap();
        }
        db.flush().unwrap();
    }
    let s = db.stats();
    let (bytes, files) = sst_bytes_on_disk(fs.as_ref(), dir);
    assert_eq!(s.compaction.flush_bytes, bytes);
    assert_eq!(s.flush_latency.count() as usize, files);
    assert_eq!(s.compaction.flushes as usize, files);
    assert!(files >= 3, "{files}");
    assert_eq!(s.compactions_into(0), 0);
    assert_eq!(
        db.property_u64("lightning.num-files-at-level0"),
        Some(files as u64)
    );
    assert_eq!(
        db.property_u64("lightning.total-sst-files-size"),
        Some(bytes)
    );
    // Overlapping level-0 files: the estimate counts only non-overlapping ones.
    let live = db
        .property_u64("lightning.estimate-live-data-size")
        .unwrap();
    assert!(live < bytes, "{live} {bytes}");

    db.compact_range::<&[u8], _>(..).unwrap();
    let s = db.stats();
    let (after, after_files) = sst_bytes_on_disk(fs.as_ref(), dir);
    let last = s.compaction.levels.len() - 1;
    assert_eq!(s.compaction_written_into(last), after);
    assert_eq!(s.compaction.levels[last].files, after_files);
    assert_eq!(s.compaction.levels[last].bytes, after);
    assert!(s.compactions_into(last) >= 1);
    assert_eq!(
        s.compaction_latency.count(),
        (0..=last).map(|l| s.compactions_into(l)).sum::<u64>()
    );
    // Two of the three versions of every key were dropped.
    assert_eq!(s.compaction.levels[last].dropped_entries, 6_000);
    assert_eq!(
        db.property_u64("lightning.total-sst-files-size"),
        Some(after)
    );
    assert_eq!(
        db.property_u64("lightning.estimate-live-data-size"),
        Some(after)
    );
    let wa = (s.compaction.flush_bytes + after) as f64 / s.compaction.user_bytes_written as f64;
    assert!((s.compaction.write_amplification() - wa).abs() < 1e-9);

    let m = parse(&db.metrics_text());
    let lv = last.to_string();
    assert_eq!(
        sample(
            &m,
            "lightning_compaction_written_bytes_total",
            &[("level", &lv)]
        ),
        after as f64
    );
    assert_eq!(
        sample(&m, "lightning_flush_written_bytes_total", &[]),
        bytes as f64
    );
    assert_eq!(
        sample(&m, "lightning_level_bytes", &[("level", &lv)]),
        after as f64
    );
    assert_eq!(sample(&m, "lightning_level_files", &[("level", "0")]), 0.0);
    assert_eq!(
        sample(&m, "lightning_compactions_total", &[("level", "0")]),
        0.0
    );
    assert!((sample(&m, "lightning_write_amplification", &[]) - wa).abs() < 1e-9);
    assert_eq!(
        sample(
            &m,
            "lightning_compaction_dropped_entries_total",
            &[("level", &lv)]
        ),
        6_000.0
    );
}

#[test]
fn bloom_filter_outcomes_are_counted() {
    let mut o = mem_opts();
    o.compaction.disable_auto_compactions = true;
    let db = Db::open("/db", o).unwrap();
    for i in (0..=2_000).step_by(2) {
        db.put(format!("k{i:05}"), "v").unwrap();
    }
    db.flush().unwrap();
    // Absent keys inside the file's range: the filter decides.
    for i in (1..2_000).step_by(2) {
        assert!(db.get(format!("k{i:05}")).unwrap().is_none());
    }
    let f = db.stats().filter;
    assert_eq!(f.checks, 1_000);
    assert_eq!(f.useful + f.false_positives, 1_000);
    // 10 bits per key: about 1 % false positives.
    assert!(f.false_positives < 50, "{f:?}");
    for i in (0..200).step_by(2) {
        assert!(db.get(format!("k{i:05}")).unwrap().is_some());
    }
    let g = db.stats().filter;
    assert_eq!(g.checks, 1_100);
    assert_eq!(g.useful, f.useful);
    assert_eq!(g.false_positives, f.false_positives);
    let m = parse(&db.metrics_text());
    assert_eq!(
        sample(&m, "lightning_bloom_filter_checks_total", &[]),
        1_100.0
    );
    assert_eq!(
        sample(&m, "lightning_bloom_filter_useful_total", &[]),
        g.useful as f64
    );
}

#[test]
fn memtable_stall_is_counted_and_timed() {
    let db = memtable_stall(Options::default(), Duration::from_millis(100));
    // (Later freezes may stall again, briefly, behind the released flush.)
    let s = db.stats().stalls;
    assert!(s.memtable_stop.count >= 1, "{s:?}");
    assert!(s.memtable_stop.micros >= 100_000, "{s:?}");
    assert_eq!(s.total_count(), s.memtable_stop.count);
    assert_eq!(s.total_micros(), s.memtable_stop.micros);
    let m = parse(&db.metrics_text());
    let labels = [("cause", "memtables"), ("kind", "stop")];
    assert_eq!(
        sample(&m, "lightning_write_stalls_total", &labels),
        s.memtable_stop.count as f64
    );
    assert!(sample(&m, "lightning_write_stall_seconds_total", &labels) >= 0.1);
}

/// Options where the second overlapping level-0 file starts a compaction
/// (held at the gate: flushes pass, its output file waits) and reaches
/// `slowdown`/`stop` level-0 files.
fn level0_stall_opts(fs: Arc<GateFs>, slowdown: usize, stop: usize) -> Options {
    let mut o = Options::default().fs(fs);
    o.compaction.level0_file_num_compaction_trigger = 2;
    o.compaction.level0_slowdown_writes_trigger = slowdown;
    o.compaction.level0_stop_writes_trigger = stop;
    o
}

fn two_overlapping_level0_files(db: &Db) {
    for round in 0..2 {
        for i in 0..100 {
            db.put(format!("k{i:03}"), format!("v{round}")).unwrap();
        }
        db.flush().unwrap();
    }
}

#[test]
fn level0_slowdown_counts_each_delayed_write_group() {
    let fs = GateFs::new(2);
    let db = Db::open("/db", level0_stall_opts(fs.clone(), 2, 100)).unwrap();
    let _gate = fs.open_on_drop();
    two_overlapping_level0_files(&db);
    assert!(db.stats().stalls.slowed_now);
    // (The flush request itself may have been delayed once, when the
    // second file landed before its write group ended.)
    let before = db.stats().stalls.level0_slowdown;
    for i in 0..20 {
        db.put(format!("s{i}"), "v").unwrap();
    }
    let s = db.stats().stalls;
    // One writer: every put is its own write group, delayed once by 1 ms.
    assert_eq!(s.level0_slowdown.count - before.count, 20, "{s:?}");
    assert!(s.level0_slowdown.micros - before.micros >= 20_000, "{s:?}");
    assert_eq!(db.property_u64("lightning.is-write-stopped"), Some(0));
    let m = parse(&db.metrics_text());
    assert_eq!(
        sample(&m, "lightning_write_stall_active", &[("kind", "slowdown")]),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "lightning_write_stalls_total",
            &[("cause", "level0_files"), ("kind", "slowdown")]
        ),
        s.level0_slowdown.count as f64
    );
    // The compaction stats table reports the same time.
    assert_eq!(
        db.compaction_stats().stall_micros.l0_slowdown,
        s.level0_slowdown.micros
    );
    fs.open();
    db.wait_for_compactions().unwrap();
    assert!(!db.stats().stalls.slowed_now);
}

#[test]
fn level0_stop_holds_writes_until_compaction_catches_up() {
    let fs = GateFs::new(2);
    let db = Arc::new(Db::open("/db", level0_stall_opts(fs.clone(), 2, 2)).unwrap());
    let _gate = fs.open_on_drop();
    // On a thread: the flush request's own write group may already be
    // stopped by the file it flushed.
    let flusher = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || two_overlapping_level0_files(&db))
    };
    wait_until("writes to stop", || db.stats().stalls.stopped_now);
    assert_eq!(db.property_u64("lightning.is-write-stopped"), Some(1));
    let writer = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || db.put("blocked", "v").unwrap())
    };
    wait_until("the writer to stop", || {
        db.stats().stalls.level0_stop.count >= 1
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!writer.is_finished());
    fs.open();
    writer.join().unwrap();
    flusher.join().unwrap();
    let s = db.stats().stalls;
    // One wait per stopped write group (the writer's; perhaps the flush
    // request's).
    assert!((1..=2).contains(&s.level0_stop.count), "{s:?}");
    assert!(s.level0_stop.micros >= 100_000, "{s:?}");
    assert!(!s.stopped_now);
}

#[test]
fn transactions_snapshots_and_conflicts() {
    let db = Db::open("/db", mem_opts()).unwrap();
    db.put("x", "0").unwrap();
    let mut a = db.transaction();
    let mut b = db.transaction();
    let snap = db.snapshot();
    let s = db.stats();
    assert_eq!(s.transactions.open, 2);
    assert_eq!(s.transactions.begun, 2);
    assert_eq!(s.snapshots, 3);
    assert_eq!(db.property_u64("lightning.num-snapshots"), Some(3));
    assert_eq!(
        db.property_u64("lightning.oldest-snapshot-sequence"),
        Some(1)
    );
    a.put("x", "a");
    b.put("x", "b");
    a.commit().unwrap();
    assert!(matches!(b.commit(), Err(Error::Conflict { .. })));
    drop(db.transaction()); // rolled back
    let ro = db.transaction();
    assert!(ro.get("x").unwrap().is_some()); // a snapshot read: a get
    ro.commit().unwrap(); // read-only: commits without validation
    drop(snap);
    let s = db.stats();
    assert_eq!(s.transactions.begun, 4);
    assert_eq!(s.transactions.commits, 2);
    assert_eq!(s.transactions.conflicts, 1);
    assert_eq!(s.transactions.open, 0);
    assert_eq!(s.snapshots, 0);
    assert_eq!(s.ops.gets, 1);
    // The committed transaction is one write of one put.
    assert_eq!(s.ops.writes, 2);
    let m = parse(&db.metrics_text());
    assert_eq!(
        sample(&m, "lightning_transaction_conflicts_total", &[]),
        1.0
    );
    assert_eq!(sample(&m, "lightning_transactions_begun_total", &[]), 4.0);
    assert_eq!(sample(&m, "lightning_transactions_open", &[]), 0.0);
}

#[test]
fn block_cache_counters_are_the_caches() {
    let mut o = mem_opts();
    o.compression = Compression::Zstd { level: 1 };
    let db = Db::open("/db", o).unwrap();
    for i in 0..2_000 {
        db.put(format!("k{i:05}"), "v".repeat(100)).unwrap();
    }
    db.flush().unwrap();
    for _ in 0..2 {
        for i in (0..2_000).step_by(7) {
            db.get(format!("k{i:05}")).unwrap().unwrap();
        }
    }
    let c = db.block_cache_stats();
    assert!(c.hits > 0 && c.misses > 0, "{c:?}");
    assert_eq!(db.stats().block_cache, c);
    let m = parse(&db.metrics_text());
    assert_eq!(
        sample(&m, "lightning_block_cache_hits_total", &[]),
        c.hits as f64
    );
    assert_eq!(
        sample(&m, "lightning_block_cache_misses_total", &[]),
        c.misses as f64
    );
    assert_eq!(
        sample(&m, "lightning_block_cache_bytes", &[("kind", "pinned")]),
        c.pinned_bytes as f64
    );
    assert_eq!(
        db.property_u64("lightning.block-cache-capacity"),
        Some(c.capacity_bytes)
    );
}

#[test]
fn background_errors_are_counted_and_stop_writes() {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open("/db", Options::default().fs(fs.clone())).unwrap();
    db.put("a", "1").unwrap();
    fs.inject(FaultRule::new(OpKind::Sync, 0, std::io::ErrorKind::Other).on(".log"));
    let mut b = WriteBatch::new();
    b.put("b", "2");
    assert!(db
        .write_opt(b, &WriteOptions::default().sync(true))
        .is_err());
    let s = db.stats();
    assert_eq!(s.background_errors, 1);
    assert!(s.writes_stopped_by_error);
    assert_eq!(db.property_u64("lightning.background-errors"), Some(1));
    assert_eq!(db.property_u64("lightning.is-write-stopped"), Some(1));
    let m = parse(&db.metrics_text());
    assert_eq!(sample(&m, "lightning_background_errors_total", &[]), 1.0);
    assert_eq!(sample(&m, "lightning_writes_stopped", &[]), 1.0);
}

#[test]
fn exposition_follows_prometheus_conventions() {
    let mut o = mem_opts();
    o.statistics = StatsLevel::All;
    o.metrics_label = "orders".into();
    let db = Db::open("/db", o).unwrap();
    for i in 0..500 {
        db.put(format!("k{i}"), "v").unwrap();
        let _ = db.get(format!("k{}", i / 2)).unwrap();
    }
    db.flush().unwrap();
    let _ = db.iter().next();
    let text = db.metrics_text();
    let m = parse(&text);
    assert!(!m.samples.is_empty());
    let mut types: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            assert!(types.insert(name, ty).is_none(), "{name} typed twice");
        }
    }
    for (name, ty) in &types {
        assert!(name.starts_with("lightning_"), "{name}");
        assert!(m.docs.contains_key(*name), "{name} has no HELP");
        match *ty {
            "counter" => assert!(name.ends_with("_total"), "{name}"),
            "gauge" => assert!(!name.ends_with("_total"), "{name}"),
            "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
            other => panic!("{name}: unexpected type {other}"),
        }
    }
    for s in &m.samples {
        assert_eq!(s.labels.get("db"), Some("orders"), "{}", s.metric);
        if let Value::Histogram(buckets) = &s.value {
            let mut prev = 0.0;
            for b in buckets {
                assert!(b.count >= prev, "{}: buckets not cumulative", s.metric);
                prev = b.count;
            }
            assert!(buckets.last().unwrap().less_than.is_infinite());
        }
    }
    // Latency histograms count every operation.
    let hist = |op: &str| {
        m.samples
            .iter()
            .find(|s| {
                s.metric == "lightning_operation_duration_seconds" && s.labels.get("op") == Some(op)
            })
            .map(|s| match &s.value {
                Value::Histogram(b) => b.last().unwrap().count,
                _ => panic!(),
            })
            .unwrap()
    };
    assert_eq!(hist("get"), 500.0);
    assert_eq!(hist("write"), 500.0);
    assert_eq!(hist("iterator_seek"), 1.0);
    assert_eq!(
        sample(
            &m,
            "lightning_operation_duration_seconds_count",
            &[("op", "get")]
        ),
        500.0
    );
    let l = db.stats().latency.unwrap();
    assert_eq!(l.get.count(), 500);
    assert_eq!(l.write.count(), 500);
    assert!(db
        .property("lightning.stats")
        .unwrap()
        .contains("Latency (micros):"));
}

#[test]
fn shared_registry_holds_several_databases() {
    let registry = prometheus::Registry::new();
    let opts = |label: &str| {
        mem_opts()
            .metrics_label(label.into())
            .metrics_registry(Some(registry.clone()))
    };
    let a = Db::open("/a", opts("a")).unwrap();
    let b = Db::open("/b", opts("b")).unwrap();
    a.put("k", "v").unwrap();
    for _ in 0..3 {
        b.put("k", "v").unwrap();
    }
    let gathered = || {
        let mut s = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut s)
            .unwrap();
        parse(&s)
    };
    let m = gathered();
    assert_eq!(
        sample(
            &m,
            "lightning_operations_total",
            &[("db", "a"), ("op", "put")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "lightning_operations_total",
            &[("db", "b"), ("op", "put")]
        ),
        3.0
    );
    // A second database with a label already registered is refused.
    match Db::open("/c", opts("a")) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("metrics_label"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(std::ptr::eq(
        a.metrics_registry().unwrap(),
        a.metrics_registry().unwrap()
    ));
    a.close().unwrap();
    let m = gathered();
    assert!(m.samples.iter().all(|s| s.labels.get("db") != Some("a")));
    // Closed, its label is free again.
    let a2 = Db::open("/a", opts("a")).unwrap();
    assert_eq!(a2.stats().ops.puts, 0);
    // Own registries never collide: the default label is the path.
    let x = Db::open("/x", mem_opts()).unwrap();
    assert_eq!(x.stats().label, "/x");
    assert!(x.metrics_text().contains("db=\"/x\""));
}

#[test]
fn statistics_off_counts_no_operation_and_registers_nothing() {
    let mut o = mem_opts();
    o.statistics = StatsLevel::Off;
    o.write_buffer_size = 64 << 10;
    let db = Db::open("/db", o).unwrap();
    for i in 0..2_000 {
        db.put(format!("k{i:05}"), [0u8; 100]).unwrap();
        let _ = db.get(format!("k{i:05}")).unwrap();
    }
    db.flush().unwrap();
    let _ = db.iter().count();
    assert_eq!(db.metrics_text(), "");
    assert!(db.metrics_registry().is_none());
    let s = db.stats();
    assert_eq!(s.ops, Default::default());
    assert_eq!(s.filter, Default::default());
    // Background statistics and properties still work.
    assert!(s.flush_latency.count() >= 1);
    assert_eq!(s.compaction.user_bytes_written, 2_000 * 106);
    assert!(db.property_u64("lightning.total-sst-files-size").unwrap() > 0);
    assert!(db
        .property("lightning.stats")
        .unwrap()
        .contains("statistics: off"));
}

#[test]
fn properties_describe_the_tree() {
    let mut o = mem_opts();
    o.compaction.disable_auto_compactions = true;
    let db = Db::open("/db", o).unwrap();
    for name in PROPERTY_NAMES {
        let name = name.replace("<N>", "0");
        assert!(db.property(&name).is_some(), "{name}");
    }
    for i in 0..1_000 {
        db.put(format!("k{i:05}"), [0u8; 100]).unwrap();
    }
    assert_eq!(
        db.property_u64("lightning.num-entries-active-mem-table"),
        Some(1_000)
    );
    assert_eq!(db.property_u64("lightning.estimate-num-keys"), Some(1_000));
    let active = db
        .property_u64("lightning.cur-size-active-mem-table")
        .unwrap();
    assert!(active >= 1_000 * 106, "{active}");
    assert_eq!(
        db.property_u64("lightning.cur-size-all-mem-tables"),
        Some(active)
    );
    db.flush().unwrap();
    assert_eq!(
        db.property_u64("lightning.num-immutable-mem-table"),
        Some(0)
    );
    assert_eq!(
        db.property_u64("lightning.num-entries-active-mem-table"),
        Some(0)
    );
    assert_eq!(db.property_u64("lightning.estimate-num-keys"), Some(1_000));
    let l0 = db.property_u64("lightning.num-files-at-level0").unwrap();
    assert!(l0 >= 1);
    assert_eq!(db.property_u64("lightning.num-files-at-level1"), Some(0));
    assert_eq!(db.property_u64("lightning.num-files-at-level7"), None);
    assert_eq!(
        db.property_u64("lightning.latest-sequence-number"),
        Some(1_000)
    );
    assert_eq!(
        db.property_u64("lightning.num-running-compactions"),
        Some(0)
    );
    // Automatic compactions are off: nothing is pending to run.
    assert_eq!(db.property_u64("lightning.compaction-pending"), Some(0));
    let stats = db.property("lightning.stats").unwrap();
    assert!(stats.starts_with("** DB Stats **\n"), "{stats}");
    assert!(stats.contains("** Compaction Stats **"), "{stats}");
    assert!(stats.contains("Operations: 0 gets"), "{stats}");
    assert!(stats.contains("1000 puts"), "{stats}");
    let levels = db.property("lightning.levelstats").unwrap();
    assert!(levels.starts_with("Level Files Size(MB)\n"), "{levels}");
    assert_eq!(levels.lines().count(), 2 + 7);
    assert_eq!(db.property("lightning.nope"), None);
}

fn log_lines(fs: &dyn FileSystem, dir: &Path) -> Vec<String> {
    String::from_utf8(fs.read_file(&dir.join("LOG")).unwrap().to_vec())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn old_logs(fs: &dyn FileSystem, dir: &Path) -> usize {
    fs.list_dir(dir)
        .unwrap()
        .iter()
        .filter(|n| n.starts_with("LOG.old."))
        .count()
}

#[test]
fn event_log_records_opens_flushes_and_compactions() {
    let fs = Arc::new(MemFs::new());
    let dir = Path::new("/db");
    let opts = || {
        Options::default()
            .fs(fs.clone())
            .event_log(true)
            .metrics_label("ev".into())
    };
    let db = Db::open(dir, opts()).unwrap();
    db.put("a", "1").unwrap();
    db.flush().unwrap();
    db.put("a", "2").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    db.close().unwrap();
    let lines = log_lines(fs.as_ref(), dir);
    for msg in [
        "event log started",
        "opened database",
        "flushed memtable",
        "compaction finished",
        "closed database",
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(msg))
            .unwrap_or_else(|| panic!("no `{msg}` in {lines:#?}"));
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains(" db=ev"), "{line}");
    }
    let flush = lines
        .iter()
        .find(|l| l.contains("flushed memtable"))
        .unwrap();
    assert!(flush.contains(" entries=1 "), "{flush}");
    assert!(flush.contains(" file_bytes="), "{flush}");
    let compaction = lines
        .iter()
        .find(|l| l.contains("compaction finished"))
        .unwrap();
    assert!(compaction.contains(" output_files=1 "), "{compaction}");
    assert!(compaction.contains(" dropped_versions=1 "), "{compaction}");
    // Nothing per user operation.
    assert!(lines.len() < 12, "{lines:#?}");

    // Each open starts a new LOG; the old one is kept.
    let db = Db::open(dir, opts()).unwrap();
    assert_eq!(old_logs(fs.as_ref(), dir), 1);
    assert!(log_lines(fs.as_ref(), dir)[0].contains("event log started"));
    db.close().unwrap();
    // A read-only open writes nothing.
    let before = fs.list_dir(dir).unwrap();
    let ro = Db::open_read_only(dir, opts()).unwrap();
    drop(ro);
    let mut after = fs.list_dir(dir).unwrap();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after);
    // The files do not trouble verification.
    let db = Db::open(dir, opts()).unwrap();
    let report = db.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn event_log_rotates_by_size_and_keeps_the_newest() {
    let fs = Arc::new(MemFs::new());
    let dir = Path::new("/db");
    let o = Options::default()
        .fs(fs.clone())
        .event_log(true)
        .event_log_max_file_size(1024)
        .event_log_keep_files(2)
        .write_buffer_size(64 << 10);
    let db = Db::open(dir, o).unwrap();
    for round in 0..20 {
        db.put(format!("k{round}"), "v").unwrap();
        db.flush().unwrap();
    }
    db.close().unwrap();
    assert_eq!(old_logs(fs.as_ref(), dir), 2);
    assert!(fs.file_size(&dir.join("LOG")).unwrap() <= 1024);
}

#[test]
fn a_directory_holding_only_event_logs_can_become_a_database() {
    let fs = Arc::new(MemFs::new());
    let dir = Path::new("/db");
    fs.create_dir_all(dir).unwrap();
    for name in ["LOG", "LOG.old.1700000000000000"] {
        let mut f = fs.create(&dir.join(name)).unwrap();
        f.append(b"left by a failed create\n").unwrap();
    }
    let db = Db::open(dir, Options::default().fs(fs.clone())).unwrap();
    db.put("k", "v").unwrap();
    db.close().unwrap();
    // Without the event log on, its files are left alone.
    assert!(fs.exists(&dir.join("LOG")).unwrap());
}

#[test]
fn a_foreign_directory_gets_no_event_log() {
    let fs = Arc::new(MemFs::new());
    let dir = Path::new("/home");
    fs.create_dir_all(dir).unwrap();
    for (name, text) in [("notes.txt", "mine"), ("LOG", "my own log")] {
        let mut f = fs.create(&dir.join(name)).unwrap();
        f.append(text.as_bytes()).unwrap();
    }
    let o = Options::default().fs(fs.clone()).event_log(true);
    assert!(matches!(Db::open(dir, o), Err(Error::NotADatabase { .. })));
    assert_eq!(&fs.read_file(&dir.join("LOG")).unwrap()[..], b"my own log");
    assert_eq!(old_logs(fs.as_ref(), dir), 0);
}
