//! Compaction filters (issue 20): what `compact_range` and automatic
//! compactions do with a filter's decisions, and what they must leave
//! alone (snapshots, flushes, tombstones, operands, other keyspaces).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{fast_opts, no_compaction};
use lightning_db::{CompactionFilter, Db, Decision, KeyspaceOptions, Options};

fn key(i: u32) -> String {
    format!("k{i:05}")
}

/// Removes keys whose number is odd; doubles the value of keys that are
/// multiples of 10; counts its calls and the levels it ran at.
#[derive(Default)]
struct OddOut {
    calls: AtomicUsize,
    levels: Mutex<BTreeSet<usize>>,
}

impl CompactionFilter for OddOut {
    fn name(&self) -> &str {
        "odd-out"
    }
    fn filter(&self, level: usize, key: &[u8], value: &[u8]) -> Decision {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.levels.lock().unwrap().insert(level);
        let n: u32 = std::str::from_utf8(&key[1..]).unwrap().parse().unwrap();
        if n % 2 == 1 {
            Decision::Remove
        } else if n.is_multiple_of(10) {
            let mut v = value.to_vec();
            v.extend_from_slice(value);
            Decision::ChangeValue(v)
        } else {
            Decision::Keep
        }
    }
}

fn opts(f: &Arc<OddOut>) -> Options {
    fast_opts().compaction_filter(Some(f.clone() as Arc<dyn CompactionFilter>))
}

#[test]
fn odd_keys_go_at_compaction_while_an_older_snapshot_still_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let f = Arc::new(OddOut::default());
    let db = Db::open(dir.path(), no_compaction(opts(&f))).unwrap();
    for i in 0..200 {
        db.put(key(i), "old").unwrap();
    }
    let snap = db.snapshot();
    for i in 0..200 {
        db.put(key(i), "new").unwrap();
    }
    db.flush().unwrap();
    // Flushes do not filter.
    assert_eq!(f.calls.load(Ordering::Relaxed), 0);
    assert_eq!(db.iter().count(), 200);
    db.compact_range::<&[u8], _>(..).unwrap();
    let latest: Vec<(String, String)> = db
        .iter()
        .map(|r| {
            let (k, v) = r.unwrap();
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = (0..200)
        .filter(|i| i % 2 == 0)
        .map(|i| {
            (
                key(i),
                if i % 10 == 0 { "newnew" } else { "new" }.to_string(),
            )
        })
        .collect();
    assert_eq!(latest, want);
    assert_eq!(db.get(key(3)).unwrap(), None);
    // The snapshot reads every key, at its old value.
    let seen: Vec<_> = snap.iter().map(|r| r.unwrap().1).collect();
    assert_eq!(seen.len(), 200);
    assert!(seen.iter().all(|v| v == "old"));
    assert_eq!(snap.get(key(3)).unwrap().as_deref(), Some(&b"old"[..]));
    // Only the 200 newest values (above the snapshot) were filtered.
    assert_eq!(f.calls.load(Ordering::Relaxed), 200);
    drop(snap);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts(&f)).unwrap();
    assert_eq!(db.iter().count(), 100);
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn a_lone_file_is_rewritten_not_moved_and_the_last_level_is_filtered_too() {
    let dir = tempfile::tempdir().unwrap();
    let f = Arc::new(OddOut::default());
    let db = Db::open(dir.path(), opts(&f)).unwrap();
    for i in 0..50 {
        db.put(key(i), "v").unwrap();
    }
    // One flushed file: without a filter, compact_range would move it
    // down without reading it.
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.iter().count(), 25);
    let levels = f.levels.lock().unwrap().clone();
    assert!(!levels.contains(&0), "{levels:?}");
    // Data already on the last level is rewritten in place by the next
    // compact_range, and filtered again (values of multiples of 10 double
    // each time).
    let calls = f.calls.load(Ordering::Relaxed);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(f.calls.load(Ordering::Relaxed) > calls);
    assert_eq!(db.get(key(10)).unwrap().unwrap().len(), 4);
    assert_eq!(db.iter().count(), 25);
}

#[test]
fn tombstones_and_merge_operands_are_not_filtered_and_blob_values_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let f = Arc::new(OddOut::default());
    let o = opts(&f)
        .merge_operator(Some(Arc::new(lightning_db::AppendOperator::new("+"))))
        .enable_blob_files(true)
        .min_blob_size(100);
    let db = Db::open(dir.path(), no_compaction(o)).unwrap();
    db.put(key(10), "x".repeat(200)).unwrap(); // a blob value, doubled
    db.put(key(4), "a").unwrap();
    db.delete(key(4)).unwrap(); // a tombstone: never shown to the filter
    db.merge(key(7), "m").unwrap(); // an operand: folded first, then filtered
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.get(key(10)).unwrap().unwrap().len(), 400);
    assert_eq!(db.get(key(4)).unwrap(), None);
    // The operand of key 7 folded into a value on the last level, which
    // the filter then saw on the next pass.
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.get(key(7)).unwrap(), None);
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn automatic_compactions_filter_and_keyspaces_have_their_own_filters() {
    let dir = tempfile::tempdir().unwrap();
    let f = Arc::new(OddOut::default());
    let mut o =
        common::churn_opts().compaction_filter(Some(f.clone() as Arc<dyn CompactionFilter>));
    o.fs = Arc::new(common::NoSyncFs);
    let db = Db::open(dir.path(), o).unwrap();
    let plain = db
        .keyspace_with("plain", &KeyspaceOptions::from_options(&fast_opts()))
        .unwrap();
    for round in 0..20 {
        for i in 0..500 {
            db.put(key(i), format!("{round:04}").repeat(8)).unwrap();
            plain.put(key(i), "p").unwrap();
        }
    }
    db.wait_for_compactions().unwrap();
    assert!(
        f.calls.load(Ordering::Relaxed) > 0,
        "no automatic compaction filtered"
    );
    // Every odd key compaction reached is gone; the other keyspace is
    // untouched.
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.iter().count(), 250);
    assert_eq!(plain.iter().count(), 500);
}
