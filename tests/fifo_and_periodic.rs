//! Decisions by age and size (issue 20): FIFO compaction (oldest files
//! deleted whole, by size and by TTL) and periodic compaction (cold files
//! rewritten so their expired values go), driven by a `ManualClock`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::fast_opts;
use lightning_db::{CompactionConfig, CompactionStyle, Db, FifoConfig, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn key(i: u32) -> String {
    format!("key{i:06}")
}

fn fifo(limit: u64) -> Options {
    let mut o = fast_opts();
    o.compaction = CompactionConfig::default()
        .style(CompactionStyle::Fifo)
        .fifo(FifoConfig::default().max_table_files_size(limit));
    o
}

fn sst_bytes(db: &Db) -> u64 {
    db.property_u64("lightning.total-sst-files-size").unwrap()
}

#[test]
fn fifo_keeps_the_newest_files_within_the_size_limit_while_readers_read() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 512 << 10;
    let db = Arc::new(Db::open(dir.path(), fifo(limit)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // A reader scanning all along: files deleted under it stay readable
    // while its iterator pins them, and nothing fails.
    let reader = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut scans = 0u32;
            // At least one scan even when the writes finish before this
            // thread first runs (a loaded machine).
            loop {
                let done = stop.load(Ordering::Relaxed);
                let mut last: Option<Vec<u8>> = None;
                for r in db.iter() {
                    let (k, v) = r.unwrap();
                    assert_eq!(v.len(), 200);
                    assert!(last.as_deref() < Some(&k[..]), "keys out of order");
                    last = Some(k.to_vec());
                }
                scans += 1;
                if done {
                    break;
                }
            }
            scans
        })
    };
    let n = 20_000u32;
    for i in 0..n {
        db.put(key(i), [b'v'; 200]).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    // Everything is in level 0, within the limit; the newest keys are
    // there, the oldest gone, and what is there is a suffix of the writes.
    assert_eq!(db.property_u64("lightning.num-files-at-level1"), Some(0));
    let total = sst_bytes(&db);
    assert!(
        total <= limit,
        "{total} bytes of SSTs over the {limit} limit"
    );
    assert!(total > limit / 2, "deleted far more than needed: {total}");
    assert!(db.get(key(n - 1)).unwrap().is_some());
    assert!(db.get(key(0)).unwrap().is_none());
    let first = db.iter().next().unwrap().unwrap().0;
    let first: u32 = std::str::from_utf8(&first[3..]).unwrap().parse().unwrap();
    assert_eq!(db.iter().count() as u32, n - first, "not a suffix");
    let stats = db.compaction_stats();
    let read: u64 = stats.levels.iter().map(|l| l.read_bytes).sum();
    assert_eq!(read, 0, "FIFO read files to rewrite them");
}

#[test]
fn fifo_deletes_files_as_old_as_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let opts = || {
        fifo(1 << 30)
            .ttl(Some(Duration::from_secs(60)))
            .clock(clock.clone() as Arc<dyn lightning_db::Clock>)
    };
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        db.put("first", "1").unwrap();
        db.flush().unwrap();
        clock.advance(Duration::from_secs(30));
        db.put("second", "2").unwrap();
        db.flush().unwrap();
        assert_eq!(db.property_u64("lightning.num-files-at-level0"), Some(2));
        clock.advance(Duration::from_secs(30));
        // Reads hide "first" at once; its file goes at the next check.
        assert_eq!(db.get("first").unwrap(), None);
        db.wait_for_compactions().unwrap();
        assert_eq!(db.property_u64("lightning.num-files-at-level0"), Some(1));
        // A manual compaction applies what is due too.
        clock.advance(Duration::from_secs(30));
        db.compact_range::<&[u8], _>(..).unwrap();
        assert_eq!(db.property_u64("lightning.num-files-at-level0"), Some(0));
    }
    // The files are gone, not only hidden: without the TTL nothing
    // comes back.
    let mut o = opts();
    o.ttl = None;
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(db.iter().count(), 0);
}

#[test]
fn periodic_compaction_rewrites_cold_files_so_expired_values_go() {
    for periodic in [0, 100] {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let opts = |ttl: Option<Duration>| {
            let mut o = fast_opts()
                .ttl(ttl)
                .clock(clock.clone() as Arc<dyn lightning_db::Clock>);
            o.compaction = o.compaction.periodic_compaction_seconds(periodic);
            o
        };
        {
            let db = Db::open(dir.path(), opts(Some(Duration::from_secs(60)))).unwrap();
            for i in 0..1000 {
                db.put(key(i), "x").unwrap();
            }
            db.compact_range::<&[u8], _>(..).unwrap();
            // Cold from here on: nothing is written, no score asks for a
            // compaction.
            clock.advance(Duration::from_secs(200));
            assert_eq!(db.iter().count(), 0, "expired for reads at once");
            db.wait_for_compactions().unwrap();
        }
        let db = Db::open(dir.path(), opts(None)).unwrap();
        let left = db.iter().count();
        if periodic == 0 {
            assert_eq!(left, 1000, "without periodic compaction the file stays");
        } else {
            assert_eq!(left, 0, "periodic compaction dropped the expired values");
        }
    }
}

#[test]
fn fifo_with_blob_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Db::open(dir.path(), fifo(1 << 30).enable_blob_files(true)).unwrap_err();
    assert!(e.to_string().contains("fifo"), "{e}");
}

/// Nothing written, nothing asked: the background thread still looks for
/// files that aged out (every tenth of the TTL, at least every second).
#[test]
fn aged_files_go_without_writes_or_calls() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = Db::open(
        dir.path(),
        fifo(1 << 30)
            .ttl(Some(Duration::from_secs(10)))
            .clock(clock.clone() as Arc<dyn lightning_db::Clock>),
    )
    .unwrap();
    db.put("k", "v").unwrap();
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    assert_eq!(db.property_u64("lightning.num-files-at-level0"), Some(1));
    clock.advance(Duration::from_secs(10));
    let start = std::time::Instant::now();
    while db.property_u64("lightning.num-files-at-level0") != Some(0) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the aged file was not deleted within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
