//! `Db::open_read_only`: opens an existing database without changing a
//! byte of its directory, reads what a normal open would recover (WAL
//! contents included), refuses every write, and shares the `LOCK` with
//! other readers but never with a writer.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::snapshot_dir;

use lightning_db::{Db, Error, Options, WriteBatch, WriteOptions};

fn opts() -> Options {
    let mut o = Options::default().write_buffer_size(64 * 1024);
    o.compaction.level0_file_num_compaction_trigger = 2;
    o
}

/// A closed database with SSTs (compacted and not) and unflushed WAL
/// records; returns the expected contents.
fn build(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = Db::open(dir, opts()).unwrap();
    let mut model = BTreeMap::new();
    for round in 0..4u32 {
        for i in 0..800u32 {
            let k = format!("key{:05}", (i * 7 + round * 13) % 2000).into_bytes();
            let v = format!("v{round}-{i}").into_bytes();
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        for i in (0..2000u32).step_by(37 + round as usize) {
            let k = format!("key{i:05}").into_bytes();
            db.delete(&k).unwrap();
            model.remove(&k);
        }
    }
    db.wait_for_compactions().unwrap();
    // These stay in the WAL only.
    for i in 0..50u32 {
        let k = format!("wal{i:03}").into_bytes();
        db.put(&k, b"in the wal").unwrap();
        model.insert(k, b"in the wal".to_vec());
    }
    db.delete(b"key00001").unwrap();
    model.remove(&b"key00001"[..]);
    db.close().unwrap();
    model
}

fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.iter()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

#[test]
fn read_only_open_changes_nothing_and_reads_everything() {
    let dir = tempfile::tempdir().unwrap();
    let model = build(dir.path());
    let before = snapshot_dir(dir.path());
    assert!(before.keys().any(|n| n.ends_with(".log")));

    let db = Db::open_read_only(dir.path(), opts()).unwrap();
    assert!(db.is_read_only());
    assert_eq!(contents(&db), model);
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(&v[..]));
    }
    assert_eq!(db.get(b"key00001").unwrap(), None);
    let rev: Vec<_> = db.iter().rev().map(|r| r.unwrap().0.to_vec()).collect();
    assert_eq!(rev, model.keys().rev().cloned().collect::<Vec<_>>());
    let snap = db.snapshot();
    assert_eq!(
        snap.get(b"wal000").unwrap().as_deref(),
        Some(&b"in the wal"[..])
    );

    // Every write method is refused.
    let ro = |r: lightning_db::Result<()>| {
        assert!(matches!(r, Err(Error::ReadOnly(_))), "{r:?}");
    };
    ro(db.put(b"a", b"b"));
    ro(db.delete(b"key00002"));
    let mut b = WriteBatch::new();
    b.put(b"x", b"y");
    ro(db.write(b));
    ro(db.write_opt(WriteBatch::new(), &WriteOptions::default().sync(true)));
    ro(db.flush());
    ro(db.compact_range::<&[u8], _>(..));
    db.wait_for_compactions().unwrap();
    // Still readable after the refusals, and verifiable.
    assert_eq!(contents(&db), model);
    let report = db.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    drop(snap);
    db.close().unwrap();

    assert_eq!(
        snapshot_dir(dir.path()),
        before,
        "a read-only open changed the directory"
    );
    // A normal open afterwards recovers the same state.
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(contents(&db), model);
}

#[test]
fn readers_share_the_lock_and_exclude_writers() {
    let dir = tempfile::tempdir().unwrap();
    let model = build(dir.path());

    // A writer holds the lock: no reader.
    let w = Db::open(dir.path(), opts()).unwrap();
    assert!(matches!(
        Db::open_read_only(dir.path(), opts()),
        Err(Error::Locked(_))
    ));
    w.close().unwrap();

    // Readers coexist; a writer is refused while any is open.
    let r1 = Db::open_read_only(dir.path(), opts()).unwrap();
    let r2 = Db::open_read_only(dir.path(), opts()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), opts()),
        Err(Error::Locked(_))
    ));
    assert_eq!(contents(&r2), model);
    drop(r1);
    assert!(matches!(
        Db::open(dir.path(), opts()),
        Err(Error::Locked(_))
    ));
    drop(r2);
    let w = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(contents(&w), model);
}

#[test]
fn read_only_open_never_creates() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert!(matches!(
        Db::open_read_only(&missing, opts()),
        Err(Error::NotADatabase { .. })
    ));
    assert!(!missing.exists());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        Db::open_read_only(&empty, opts()),
        Err(Error::NotADatabase { .. })
    ));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    // Without a LOCK file (removed by hand) it opens and creates none.
    let db_dir = dir.path().join("db");
    let model = build(&db_dir);
    std::fs::remove_file(db_dir.join("LOCK")).unwrap();
    let before = snapshot_dir(&db_dir);
    let db = Db::open_read_only(&db_dir, opts()).unwrap();
    assert_eq!(contents(&db), model);
    drop(db);
    assert_eq!(snapshot_dir(&db_dir), before);
}
