//! The row cache against changes that are not writes: a compaction filter
//! that removes or rewrites values, and FIFO compaction deleting whole
//! files. A read after the change must see it, as it would with the cache
//! off (RocksDB's row cache is keyed by file, so a rewritten or deleted
//! file's entries are unreachable there).

mod common;

use std::sync::Arc;

use common::{fast_opts, no_compaction};
use lightning_db::{CompactionConfig, CompactionFilter, CompactionStyle, Db, Decision, FifoConfig};

/// Rows of each test.
const N: u32 = 64;

fn key(i: u32) -> String {
    format!("k{i:05}")
}

/// Reads every key until the cache serves them all (a key is admitted on
/// its second miss); fails if it never does.
fn warm(db: &Db, want: impl Fn(u32) -> Option<Vec<u8>>) {
    let before = db.stats().row_cache.hits;
    for _ in 0..4 {
        for i in 0..N {
            assert_eq!(db.get(key(i)).unwrap().map(|v| v.to_vec()), want(i));
        }
    }
    let served = db.stats().row_cache.hits - before;
    assert!(
        served >= u64::from(N),
        "the cache served {served} reads: the test would not test it"
    );
}

/// Removes odd keys, doubles the value of the others.
struct OddOut;

impl CompactionFilter for OddOut {
    fn name(&self) -> &str {
        "odd-out"
    }
    fn filter(&self, _level: usize, key: &[u8], value: &[u8]) -> Decision {
        let n: u32 = std::str::from_utf8(&key[1..]).unwrap().parse().unwrap();
        if n % 2 == 1 {
            Decision::Remove
        } else {
            Decision::ChangeValue([value, value].concat())
        }
    }
}

#[test]
fn a_compaction_filters_removals_and_changes_are_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let opts = no_compaction(fast_opts())
        .row_cache_size(1 << 20)
        .compaction_filter(Some(Arc::new(OddOut) as Arc<dyn CompactionFilter>));
    let db = Db::open(dir.path(), opts).unwrap();
    for i in 0..N {
        db.put(key(i), "v").unwrap();
    }
    db.flush().unwrap();
    warm(&db, |_| Some(b"v".to_vec()));
    db.compact_range::<&[u8], _>(..).unwrap();
    let want = |i: u32| i.is_multiple_of(2).then(|| b"vv".to_vec());
    for _ in 0..4 {
        for i in 0..N {
            assert_eq!(
                db.get(key(i)).unwrap().map(|v| v.to_vec()),
                want(i),
                "key {i} after the filter ran"
            );
        }
    }
    // The cache serves the new values again.
    warm(&db, want);
    let got: Vec<Vec<u8>> = db
        .multi_get((0..N).map(key).collect::<Vec<_>>())
        .into_iter()
        .map(|r| r.unwrap().map(|v| v.to_vec()).unwrap_or_default())
        .collect();
    let expect: Vec<Vec<u8>> = (0..N).map(|i| want(i).unwrap_or_default()).collect();
    assert_eq!(got, expect);
}

#[test]
fn a_file_fifo_deleted_is_not_read_back_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = fast_opts().row_cache_size(1 << 20);
    // Room for about two files of 64 x 4 KiB values.
    opts.compaction = CompactionConfig::default()
        .style(CompactionStyle::Fifo)
        .fifo(FifoConfig::default().max_table_files_size(600 << 10));
    let db = Db::open(dir.path(), opts).unwrap();
    let value = vec![7u8; 4096];
    for i in 0..N {
        db.put(key(i), &value).unwrap();
    }
    db.flush().unwrap();
    warm(&db, |_| Some(value.clone()));
    // Newer files push the first one out.
    for round in 0..4u32 {
        for i in 0..N {
            db.put(format!("later{round}/{i:05}"), &value).unwrap();
        }
        db.flush().unwrap();
    }
    db.wait_for_compactions().unwrap();
    // A scan does not use the row cache: it shows the oldest file gone.
    let first_left = db
        .iter()
        .map(|r| r.unwrap().0)
        .filter(|k| k.starts_with(b"k"))
        .count();
    assert_eq!(first_left, 0, "FIFO kept the oldest file: nothing tested");
    for i in 0..N {
        let got = db.get(key(i)).unwrap();
        assert!(
            got.is_none(),
            "key {i}: its file was deleted by FIFO, yet a read returned {} bytes",
            got.map_or(0, |v| v.len())
        );
    }
}
