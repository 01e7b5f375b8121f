//! Range deletion (`delete_range`, `delete_prefix`, `WriteBatch::delete_range`):
//! what reads see in memtables, in SSTs, after reopen, under snapshots and
//! transactions, and what compaction does with the space.

mod common;

use std::collections::BTreeMap;

use common::{dump, fast_opts, Model};
use lightning_db::{Db, Error, Options, WriteBatch, MAX_KEY_SIZE};

fn key(i: u32) -> Vec<u8> {
    format!("k{i:06}").into_bytes()
}

fn fill(db: &Db, n: u32) -> Model {
    let mut m = Model::new();
    for i in 0..n {
        db.put(key(i), i.to_le_bytes()).unwrap();
        m.insert(key(i), i.to_le_bytes().to_vec());
    }
    m
}

/// Every read path agrees with `m`: forward and reverse scans, gets of
/// every key of `0..n`, and a bounded range both ways.
fn assert_reads(db: &Db, m: &Model, n: u32) {
    let fwd: Vec<Vec<u8>> = db.iter().map(|r| r.unwrap().0.to_vec()).collect();
    assert_same(&fwd, &m.keys().cloned().collect::<Vec<_>>(), "forward scan");
    assert_eq!(&dump(db).unwrap(), m);
    let rev: Vec<Vec<u8>> = db.iter().rev().map(|r| r.unwrap().0.to_vec()).collect();
    let want: Vec<Vec<u8>> = m.keys().rev().cloned().collect();
    assert_same(&rev, &want, "reverse scan");
    for i in 0..n {
        assert_eq!(
            db.get(key(i)).unwrap().map(|v| v.to_vec()),
            m.get(&key(i)).cloned(),
            "key {i}"
        );
    }
    let (lo, hi) = (key(n / 5), key(n - n / 5));
    let fwd: Vec<Vec<u8>> = db
        .range(lo.clone()..hi.clone())
        .map(|r| r.unwrap().0.to_vec())
        .collect();
    let want: Vec<Vec<u8>> = m
        .range(lo.clone()..hi.clone())
        .map(|(k, _)| k.clone())
        .collect();
    assert_same(&fwd, &want, "bounded forward scan");
    let back: Vec<Vec<u8>> = db
        .range(lo..hi)
        .rev()
        .map(|r| r.unwrap().0.to_vec())
        .collect();
    assert_same(
        &back,
        &want.into_iter().rev().collect::<Vec<_>>(),
        "bounded reverse scan",
    );
}

/// Asserts `got == want`, naming the first difference (not printing
/// thousands of keys).
fn assert_same(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    if got == want {
        return;
    }
    let i = got.iter().zip(want).position(|(a, b)| a != b);
    let show = |v: &[Vec<u8>], i: usize| v.get(i).map(|k| String::from_utf8_lossy(k).into_owned());
    let at = i.unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: {} keys, want {}; first difference at {at}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        show(got, at),
        show(want, at)
    );
}

fn remove_range(m: &mut Model, lo: &[u8], hi: &[u8]) {
    let doomed: Vec<Vec<u8>> = m
        .range(lo.to_vec()..hi.to_vec())
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        m.remove(&k);
    }
}

#[test]
fn reads_see_a_range_deletion_in_the_memtable_in_ssts_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2000;
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    let mut m = fill(&db, n);
    db.flush().unwrap();
    db.delete_range(key(100)..key(900)).unwrap();
    remove_range(&mut m, &key(100), &key(900));
    // Writes after the deletion are not deleted by it.
    db.put(key(500), b"new").unwrap();
    m.insert(key(500), b"new".to_vec());
    assert_reads(&db, &m, n);
    db.flush().unwrap();
    assert_reads(&db, &m, n);
    drop(db);
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_reads(&db, &m, n);
    // Replayed from the WAL.
    db.delete_range(key(1500)..key(1600)).unwrap();
    remove_range(&mut m, &key(1500), &key(1600));
    drop(db);
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_reads(&db, &m, n);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_reads(&db, &m, n);
}

#[test]
fn snapshots_before_a_range_deletion_still_see_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    let before = fill(&db, 300);
    let snap = db.snapshot();
    db.delete_range(key(0)..key(200)).unwrap();
    let check = |db: &Db| {
        let seen: Model = snap
            .iter()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        assert_eq!(seen, before);
        assert!(snap.get(key(10)).unwrap().is_some());
        assert!(db.get(key(10)).unwrap().is_none());
        assert_eq!(dump(db).unwrap().len(), 100);
    };
    check(&db);
    db.flush().unwrap();
    check(&db);
    db.compact_range::<&[u8], _>(..).unwrap();
    check(&db);
    drop(snap);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(dump(&db).unwrap().len(), 100);
}

#[test]
fn bounds_of_every_shape_and_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    let mut m = fill(&db, 100);
    db.delete_range(key(10)..=key(20)).unwrap();
    remove_range(&mut m, &key(10), &key(21));
    db.delete_range(..key(3)).unwrap();
    remove_range(&mut m, &key(0), &key(3));
    db.delete_range(key(90)..).unwrap();
    remove_range(&mut m, &key(90), &key(100));
    // Empty and reversed ranges delete nothing.
    db.delete_range(key(50)..key(50)).unwrap();
    #[allow(clippy::reversed_empty_ranges)]
    db.delete_range(key(60)..key(55)).unwrap();
    assert_reads(&db, &m, 100);
    db.put(b"tenant/1/a", b"x").unwrap();
    db.put(b"tenant/1/b", b"x").unwrap();
    db.put(b"tenant/10", b"x").unwrap();
    db.put(b"tenant/2/a", b"x").unwrap();
    db.delete_prefix(b"tenant/1/").unwrap();
    let tenants: Vec<Vec<u8>> = db
        .prefix(b"tenant/")
        .map(|r| r.unwrap().0.to_vec())
        .collect();
    assert_eq!(tenants, vec![b"tenant/10".to_vec(), b"tenant/2/a".to_vec()]);
    // A prefix of 0xff bytes has no successor: the deletion runs to the
    // end of the key space, the largest possible key included.
    let top = vec![0xffu8; MAX_KEY_SIZE];
    db.put(&top, b"top").unwrap();
    db.put([0xff, 0xff, 1], b"x").unwrap();
    db.put([0xfe], b"stays").unwrap();
    db.delete_prefix([0xff, 0xff]).unwrap();
    assert_eq!(db.get(&top).unwrap(), None);
    assert_eq!(db.get([0xff, 0xff, 1]).unwrap(), None);
    assert!(db.get([0xfe]).unwrap().is_some());
    db.flush().unwrap();
    assert_eq!(db.get(&top).unwrap(), None);
    // Everything.
    db.delete_prefix(b"").unwrap();
    assert!(dump(&db).unwrap().is_empty());
    db.put(b"after", b"1").unwrap();
    assert_eq!(dump(&db).unwrap().len(), 1);
}

#[test]
fn an_excluded_start_of_the_largest_key_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    let long = vec![b'a'; MAX_KEY_SIZE];
    let r = db.delete_range((
        std::ops::Bound::Excluded(long.clone()),
        std::ops::Bound::Excluded(vec![b'b']),
    ));
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    let too_long = vec![b'a'; MAX_KEY_SIZE + 1];
    let r = db.delete_range(too_long.as_slice()..&b"b"[..]);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
}

#[test]
fn a_batch_applies_its_range_deletion_in_order_with_its_other_operations() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    db.put(b"a1", b"old").unwrap();
    db.put(b"a3", b"old").unwrap();
    let mut b = WriteBatch::new();
    b.put(b"a2", b"before");
    b.delete_range(&b"a"[..]..&b"b"[..]);
    b.put(b"a3", b"after");
    db.write(b).unwrap();
    let got: BTreeMap<Vec<u8>, Vec<u8>> = dump(&db).unwrap();
    assert_eq!(
        got,
        BTreeMap::from([(b"a3".to_vec(), b"after".to_vec())]),
        "a put before the deletion in the same batch is deleted, one after is not"
    );
}

#[test]
fn a_memtable_holding_only_a_range_deletion_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    let mut m = fill(&db, 500);
    db.flush().unwrap();
    db.delete_range(key(100)..key(200)).unwrap();
    remove_range(&mut m, &key(100), &key(200));
    db.flush().unwrap();
    assert_reads(&db, &m, 500);
    drop(db);
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_reads(&db, &m, 500);
    let report = db.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn a_transaction_that_read_a_range_deleted_key_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k5", b"v").unwrap();
    let mut tx = db.transaction();
    assert!(tx.get_for_update(b"k5").unwrap().is_some());
    tx.put(b"other", b"x");
    db.delete_range(&b"k"[..]..&b"l"[..]).unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict { .. })));
    // A transaction that wrote a key the deletion covers conflicts too,
    // also once the tombstone is in an SST.
    db.put(b"k6", b"v").unwrap();
    let mut tx = db.transaction();
    tx.put(b"k6", b"mine");
    db.delete_range(&b"k6"[..]..&b"k7"[..]).unwrap();
    db.flush().unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict { .. })));
    // One that touched nothing in the range commits.
    let mut tx = db.transaction();
    tx.put(b"z", b"1");
    db.delete_range(&b"k"[..]..&b"l"[..]).unwrap();
    tx.commit().unwrap();
}

#[test]
fn the_row_cache_never_serves_a_range_deleted_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts().row_cache_size(1 << 20)).unwrap();
    db.put(b"hot", b"v").unwrap();
    for _ in 0..4 {
        assert!(db.get(b"hot").unwrap().is_some());
    }
    db.delete_range(&b"h"[..]..&b"i"[..]).unwrap();
    assert_eq!(db.get(b"hot").unwrap(), None);
    db.put(b"hot", b"again").unwrap();
    for _ in 0..4 {
        assert_eq!(db.get(b"hot").unwrap().as_deref(), Some(&b"again"[..]));
    }
}

/// Bytes of the live SST files in `dir`.
fn sst_bytes(dir: &std::path::Path) -> u64 {
    common::files_with_suffix(dir, ".sst")
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// A compaction statistic summed over the levels.
fn levels_sum(db: &Db, f: impl Fn(&lightning_db::LevelStats) -> u64) -> u64 {
    db.compaction_stats().levels.iter().map(f).sum()
}

/// Issue 19's space target: after a range deletion of 90 % of the keys and
/// a compaction, the files take at most 15 % of the space they took.
#[test]
fn compaction_gives_back_the_space_of_range_deleted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts().write_buffer_size(1 << 20)).unwrap();
    let n = 100_000u32;
    let mut b = WriteBatch::new();
    for i in 0..n {
        b.put(key(i), [i as u8; 100]);
        if b.len() == 1000 {
            db.write(std::mem::take(&mut b)).unwrap();
        }
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let before = sst_bytes(dir.path());
    let dropped = |db: &Db| levels_sum(db, |l| l.dropped_entries);
    let dropped_before = dropped(&db);
    db.delete_range(key(0)..key(n / 10 * 9)).unwrap();
    assert_eq!(db.property_u64("lightning.num-range-deletions"), Some(1));
    db.compact_range::<&[u8], _>(..).unwrap();
    let after = sst_bytes(dir.path());
    assert!(
        after * 100 <= before * 15,
        "{after} bytes of SSTs after, {before} before"
    );
    // The compaction statistics count the entries the tombstone removed.
    assert!(dropped(&db) - dropped_before >= u64::from(n / 10 * 9));
    // On the last level with no snapshot, the tombstone itself is gone too.
    assert_eq!(db.property_u64("lightning.num-range-deletions"), Some(0));
    assert_eq!(dump(&db).unwrap().len(), (n / 10) as usize);
}

/// Files that a newer range tombstone deletes entirely are dropped by
/// compaction without being read; a snapshot that still sees them keeps
/// them.
#[test]
fn compaction_drops_entirely_deleted_files_without_reading_them() {
    let entries_read = |db: &Db| levels_sum(db, |l| l.input_entries);
    for with_snapshot in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), fast_opts().write_buffer_size(1 << 20)).unwrap();
        let n = 50_000u32;
        let mut b = WriteBatch::new();
        for i in 0..n {
            b.put(key(i), [1u8; 100]);
            if b.len() == 1000 {
                db.write(std::mem::take(&mut b)).unwrap();
            }
        }
        db.compact_range::<&[u8], _>(..).unwrap();
        let snap = with_snapshot.then(|| db.snapshot());
        db.delete_range(key(0)..key(n)).unwrap();
        db.put(key(n + 1), b"after").unwrap();
        let read_before = entries_read(&db);
        db.compact_range::<&[u8], _>(..).unwrap();
        let read = entries_read(&db) - read_before;
        let left = dump(&db).unwrap();
        assert_eq!(left.len(), 1, "only the key written after the deletion");
        if with_snapshot {
            assert!(
                read >= u64::from(n),
                "a snapshot needs them: {read} entries read"
            );
            assert_eq!(snap.as_ref().unwrap().iter().count(), n as usize);
        } else {
            assert!(read < 100, "{read} entries read, of {n} deleted");
        }
    }
}
