//! Prefix extractors and prefix bloom filters (issue 20): scans within one
//! prefix read only the files that may hold it, and read exactly what a
//! scan without the extractor reads, whatever files the extractor wrote.

mod common;

use std::sync::Arc;

use common::{fast_opts, no_compaction};
use lightning_db::{block_cache_thread_lookups, Compression, Db, FixedPrefix, Options};

fn opts(prefix: Option<usize>) -> Options {
    // Compressed blocks go through the block cache, whose per-thread
    // lookups count the blocks a read touched.
    no_compaction(fast_opts())
        .compression(Compression::Zstd { level: 1 })
        .prefix_extractor(prefix.map(|n| Arc::new(FixedPrefix::new(n)) as _))
}

/// 20 flushed files, file `f` holding the keys `pNN/...` of prefix
/// `NN = f` only, plus short keys without a prefix.
fn fill(db: &Db) {
    for f in 0..20u32 {
        for i in 0..200u32 {
            db.put(format!("p{f:02}/{i:04}"), "v".repeat(50)).unwrap();
        }
        db.put(format!("{f}"), "short").unwrap();
        db.flush().unwrap();
    }
}

fn lookups() -> u64 {
    let (hits, misses) = block_cache_thread_lookups();
    hits + misses
}

/// Key-value pairs read.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn scan(db: &Db, prefix: &str) -> (Pairs, u64) {
    let before = lookups();
    let got: Vec<_> = db
        .prefix(prefix)
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    (got, lookups() - before)
}

#[test]
fn a_prefix_scan_reads_only_the_files_that_hold_the_prefix() {
    let (with, without) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Db::open(with.path(), opts(Some(3))).unwrap();
    let b = Db::open(without.path(), opts(None)).unwrap();
    fill(&a);
    fill(&b);
    for p in ["p07", "p07/", "p07/01", "p19/0199", "p20", "p", "", "1"] {
        let (got_a, blocks_a) = scan(&a, p);
        let (got_b, blocks_b) = scan(&b, p);
        assert_eq!(got_a, got_b, "prefix {p:?}");
        if p.len() >= 3 {
            // One file (or none: `p20`) instead of all 20, whose key
            // ranges all span the prefix.
            assert!(blocks_a <= 6, "prefix {p:?}: {blocks_a} blocks read");
            assert!(blocks_b >= 20, "prefix {p:?}: {blocks_b} blocks read");
        }
        assert!(
            blocks_a <= blocks_b,
            "prefix {p:?}: {blocks_a} > {blocks_b}"
        );
    }
    // Ranges inside one prefix are filtered too, in both directions.
    let inside = |db: &Db| {
        let before = lookups();
        let got: Vec<_> = db
            .range("p03/0100".."p03/0150")
            .rev()
            .map(|r| r.unwrap().0)
            .collect();
        (got, lookups() - before)
    };
    let ((ka, na), (kb, _)) = (inside(&a), inside(&b));
    assert_eq!(ka, kb);
    assert_eq!(ka.len(), 50);
    assert!(na <= 6, "{na}");
}

#[test]
fn files_written_with_another_extractor_are_read_in_full() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts(Some(3))).unwrap();
        fill(&db);
        db.close().unwrap();
    }
    // A longer prefix: the filters hold 3-byte prefixes, which say nothing
    // of 5-byte ones; the files must not be skipped.
    let db = Db::open(dir.path(), opts(Some(5))).unwrap();
    let (got, _) = scan(&db, "p07/01");
    assert_eq!(got.len(), 100);
    let db2 = {
        drop(db);
        Db::open(dir.path(), opts(None)).unwrap()
    };
    assert_eq!(scan(&db2, "p07/01").0.len(), 100);
    // Compaction rewrites the files with the new extractor's prefixes.
    drop(db2);
    let db = Db::open(dir.path(), opts(Some(5))).unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let (got, blocks) = scan(&db, "p07/01");
    assert_eq!(got.len(), 100);
    assert!(blocks <= 6, "{blocks}");
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn prefix_scans_see_memtables_deletes_and_range_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(Some(3))).unwrap();
    fill(&db);
    db.put("p07/zzzz", "mem").unwrap();
    db.delete("p07/0000").unwrap();
    db.delete_range("p07/0100".."p07/0200").unwrap();
    let (got, _) = scan(&db, "p07");
    assert_eq!(got.len(), 100);
    assert_eq!(got.last().unwrap().1, b"mem");
    assert_eq!(got[0].0, b"p07/0001");
    db.flush().unwrap();
    assert_eq!(scan(&db, "p07").0, got);
    let snap = db.snapshot();
    db.delete_prefix("p07").unwrap();
    assert_eq!(scan(&db, "p07").0.len(), 0);
    assert_eq!(snap.prefix("p07").count(), 100);
}

/// The memtables' filters hold prefixes too: a scan right after a write,
/// from the writing thread or from one that saw the write acknowledged,
/// finds it.
#[test]
fn memtable_prefixes_never_hide_an_acknowledged_write() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::open(
            dir.path(),
            fast_opts().prefix_extractor(Some(Arc::new(FixedPrefix::new(5)))),
        )
        .unwrap(),
    );
    for i in 0..500u64 {
        db.put(format!("q{i:04}/a"), "v").unwrap();
        assert_eq!(db.prefix(format!("q{i:04}")).count(), 1, "key {i}");
    }
    let acked = Arc::new(AtomicU64::new(0));
    let checked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, acked, checked) = (Arc::clone(&db), Arc::clone(&acked), Arc::clone(&checked));
        std::thread::spawn(move || {
            for i in 1..=3000u64 {
                db.put(format!("w{i:04}/a"), "v").unwrap();
                acked.store(i, Ordering::Release);
                // Every 100 writes, until the reader has checked once more:
                // on a loaded machine it would otherwise never run while
                // the writes go on (CI saw no check at all).
                if i % 100 == 0 && i < 3000 {
                    while checked.load(Ordering::Acquire) < i / 100 {
                        std::thread::yield_now();
                    }
                }
            }
        })
    };
    while acked.load(Ordering::Acquire) < 3000 {
        let i = acked.load(Ordering::Acquire);
        if i > 0 {
            assert_eq!(db.prefix(format!("w{i:04}")).count(), 1, "key {i}");
            checked.fetch_add(1, Ordering::Release);
        }
    }
    writer.join().unwrap();
    assert!(checked.load(Ordering::Relaxed) >= 29);
}
