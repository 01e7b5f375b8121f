//! End-to-end compaction: a sustained random-overwrite load over a bounded
//! key space, with small sizes so the tree has several levels.
//!
//! Why it matters: compaction is what keeps space and read cost bounded
//! under write-heavy work; it must do so without losing or resurrecting
//! anything, and without dropping versions that snapshots still see.

use std::collections::BTreeMap;

mod common;

use common::Rng;
use lightning_db::{CompactionStyle, Db, Options, WriteBatch};

const KEYS: u64 = 50_000;
const VALUE: usize = 100;

fn options(style: CompactionStyle) -> Options {
    // Small sizes so the tree is deep relative to the data: about 5.5 MB
    // live over a 128 KiB level base gives three levels.
    let mut o = Options::default().write_buffer_size(128 * 1024);
    o.compaction.style = style;
    o.compaction.max_bytes_for_level_base = 128 * 1024;
    o.compaction.target_file_size_base = 128 * 1024;
    o.compaction.max_subcompactions = 2;
    o
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

fn value(i: u64, round: u64) -> Vec<u8> {
    let mut v = format!("{i}:{round}:").into_bytes();
    v.resize(VALUE, b'.');
    v
}

fn sst_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sst"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn dump(it: lightning_db::Iter) -> BTreeMap<Vec<u8>, Vec<u8>> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

/// Runs the load, returning the database, the model and figures.
fn sustained_overwrites(style: CompactionStyle, writes: u64, snapshots: bool) -> (f64, f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(style);
    let stop = opts.compaction.level0_stop_writes_trigger;
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut model = BTreeMap::new();
    let mut snaps = Vec::new();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut max_l0 = 0usize;
    for round in 0..writes / 100 {
        let mut b = WriteBatch::new();
        for _ in 0..100 {
            let i = rng.next() % KEYS;
            if rng.next().is_multiple_of(10) {
                b.delete(key(i));
                model.remove(&key(i));
            } else {
                b.put(key(i), value(i, round));
                model.insert(key(i), value(i, round));
            }
        }
        db.write(b).unwrap();
        if snapshots && round % 500 == 250 {
            snaps.push((db.snapshot(), model.clone()));
        }
        if round % 50 == 0 {
            max_l0 = max_l0.max(db.compaction_stats().levels[0].files);
        }
    }
    assert!(
        max_l0 < stop,
        "level 0 reached {max_l0} files (stop trigger {stop})"
    );
    db.wait_for_compactions().unwrap();
    // Snapshots taken mid-load still read their state.
    for (s, m) in &snaps {
        assert_eq!(&dump(s.iter()), m, "snapshot {} changed", s.sequence());
    }
    drop(snaps);
    assert_eq!(dump(db.iter()), model);
    let stats = db.compaction_stats();
    let levels_used = stats.levels.iter().filter(|l| l.files > 0).count();
    let settled = sst_bytes(dir.path());
    // Live data: the same data fully compacted into one run.
    db.compact_range::<&[u8], _>(..).unwrap();
    db.wait_for_compactions().unwrap();
    let live = sst_bytes(dir.path());
    assert_eq!(dump(db.iter()), model);
    let wamp = db.compaction_stats().write_amplification();
    println!("{stats}");
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    assert_eq!(dump(db.iter()), model);
    for (k, v) in model.iter().step_by(97) {
        assert_eq!(db.get(k).unwrap().unwrap().as_ref(), v.as_slice());
    }
    (settled as f64 / live as f64, wamp, levels_used)
}

#[test]
fn leveled_keeps_space_amplification_low_and_data_intact() {
    let (space_amp, wamp, levels) = sustained_overwrites(CompactionStyle::Leveled, 500_000, false);
    println!("leveled: space amplification {space_amp:.3}, write amplification {wamp:.2}, levels used {levels}");
    assert!(levels >= 2, "the load should build more than one level");
    assert!(space_amp < 1.3, "space amplification {space_amp:.3} >= 1.3");
    assert!(
        wamp > 1.0,
        "compaction rewrote nothing? write amplification {wamp:.2}"
    );
}

#[test]
fn tiered_keeps_space_bounded_and_data_intact() {
    let (space_amp, wamp, _) = sustained_overwrites(CompactionStyle::Tiered, 300_000, false);
    println!("tiered: space amplification {space_amp:.3}, write amplification {wamp:.2}");
    // max_size_amplification_percent = 200: at most 3x the oldest run.
    assert!(
        space_amp < 3.0,
        "tiered space amplification {space_amp:.3} is past its bound"
    );
}

#[test]
fn snapshots_taken_mid_load_keep_their_state_through_compactions() {
    // Snapshots pin old versions, so space is not checked here.
    for style in [CompactionStyle::Leveled, CompactionStyle::Tiered] {
        sustained_overwrites(style, 200_000, true);
    }
}

#[test]
fn compact_range_drops_tombstones_and_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(CompactionStyle::Leveled)).unwrap();
    for round in 0..5 {
        let mut b = WriteBatch::new();
        for i in 0..5000 {
            b.put(key(i), value(i, round));
        }
        db.write(b).unwrap();
        db.flush().unwrap();
    }
    let mut b = WriteBatch::new();
    for i in 0..5000 {
        b.delete(key(i));
    }
    db.write(b).unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.iter().count(), 0);
    let stats = db.compaction_stats();
    let files: usize = stats.levels.iter().map(|l| l.files).sum();
    assert_eq!(
        files, 0,
        "everything was deleted, nothing should remain:\n{stats}"
    );
}

#[test]
fn disabled_auto_compaction_keeps_level0_until_compact_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(CompactionStyle::Leveled);
    o.compaction.disable_auto_compactions = true;
    let db = Db::open(dir.path(), o).unwrap();
    for round in 0..30 {
        db.put(key(round), value(round, round)).unwrap();
        db.flush().unwrap();
    }
    assert_eq!(db.compaction_stats().levels[0].files, 30);
    db.compact_range(key(0)..=key(29)).unwrap();
    let stats = db.compaction_stats();
    assert_eq!(stats.levels[0].files, 0, "{stats}");
    for round in 0..30 {
        assert_eq!(
            db.get(key(round)).unwrap().unwrap().as_ref(),
            value(round, round)
        );
    }
}

/// Regression (found by the metamorphic test): tiered compaction merged the
/// two newest level-0 runs into level 0 above an older level-0 run that
/// overlapped them, took the merge for the bottommost one, and dropped the
/// tombstone that shadowed the older run's value: the deleted key came back.
#[test]
fn tiered_merge_keeps_tombstones_over_an_older_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Options::default().write_buffer_size(1 << 20);
    o.compaction.style = CompactionStyle::Tiered;
    o.compaction.level0_file_num_compaction_trigger = 2;
    let db = Db::open(dir.path(), o).unwrap();
    // The oldest run: big, holding "b".
    db.put("b", "old value").unwrap();
    for i in 0..50 {
        db.put(format!("filler{i:03}"), vec![7u8; 4000]).unwrap();
    }
    db.flush().unwrap();
    // Two small runs: the tombstone, then another key.
    db.delete("b").unwrap();
    db.flush().unwrap();
    db.put("c", "new").unwrap();
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    assert!(db.get("b").unwrap().is_none(), "the deleted key came back");
    assert!(db.iter().all(|r| r.unwrap().0.as_ref() != b"b"));
}
