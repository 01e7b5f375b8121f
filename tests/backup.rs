//! Incremental backups (issue 21): `BackupEngine` shares files between
//! backups, restores exactly what it backed up (a prefix of the writes
//! acknowledged before the backup, under concurrent writes), finds damage
//! with `verify` and refuses to restore it, purges old backups, and keeps
//! earlier backups whole when a backup is killed part-way.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{fast_opts, files_with_suffix, run_child_then_kill};
use lightning_db::{BackupEngine, Db, Error, WriteBatch};

fn key(i: u64) -> String {
    format!("k{i:08}")
}

fn counter(db: &Db) -> u64 {
    db.get("counter")
        .unwrap()
        .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()))
}

/// Keys `1..=counter` with their values, nothing else: a prefix.
fn assert_prefix(db: &Db, what: &str) -> u64 {
    let c = counter(db);
    let keys: Vec<_> = db
        .range(key(0)..key(u64::MAX))
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(keys.len() as u64, c, "{what}: not the batches 1..={c}");
    for (i, (k, v)) in keys.iter().enumerate() {
        let i = i as u64 + 1;
        assert_eq!(&k[..], key(i).as_bytes(), "{what}");
        assert_eq!(&v[..], format!("v{i}").as_bytes(), "{what}");
    }
    c
}

fn write_batch(db: &Db, i: u64) {
    let mut b = WriteBatch::new();
    b.put(key(i), format!("v{i}"));
    b.put("counter", i.to_be_bytes());
    db.write(b).unwrap();
}

#[test]
fn backups_share_files_restore_exactly_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    // No compaction: the second backup's files are the first's plus the
    // new flush's.
    let db = Db::open(dir.path().join("db"), common::no_compaction(fast_opts())).unwrap();
    for i in 1..=3000 {
        write_batch(&db, i);
    }
    db.flush().unwrap();
    let engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    let first = engine.create_backup(&db).unwrap();
    let shared = || files_with_suffix(&dir.path().join("backups/shared"), "");
    let after_first = shared().len();
    assert!(after_first > 0);
    for i in 3001..=3100 {
        write_batch(&db, i);
    }
    db.flush().unwrap();
    let second = engine.create_backup(&db).unwrap();
    assert_eq!((first, second), (1, 2));
    // Only the file the new flush wrote was stored.
    let added = shared().len() - after_first;
    assert_eq!(added, 1, "{added} new shared files besides {after_first}");
    let list = engine.list().unwrap();
    assert_eq!(list.iter().map(|b| b.id).collect::<Vec<_>>(), [1, 2]);
    assert!(list.iter().all(|b| b.num_files > 0 && b.size > 0));
    for (id, want) in [(first, 3000), (second, 3100)] {
        engine.verify(id).unwrap();
        let target = dir.path().join(format!("restore{id}"));
        engine.restore(id, &target).unwrap();
        let r = Db::open(&target, fast_opts()).unwrap();
        assert_eq!(assert_prefix(&r, "restore"), want);
        assert!(r.verify().unwrap().is_ok());
    }
    // A restore never writes into a directory that holds something.
    let e = engine
        .restore(first, dir.path().join("restore1"))
        .unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
    // Keep the newest: the first's files that the second does not use go.
    engine.purge_old(1).unwrap();
    assert_eq!(
        engine
            .list()
            .unwrap()
            .iter()
            .map(|b| b.id)
            .collect::<Vec<_>>(),
        [2]
    );
    engine.verify(second).unwrap();
    assert!(shared().len() <= after_first + added);
    engine.delete_backup(second).unwrap();
    assert!(engine.list().unwrap().is_empty());
    assert!(shared().is_empty(), "shared files outlived every backup");
    // One engine per directory.
    assert!(matches!(
        BackupEngine::open(dir.path().join("backups")),
        Err(Error::Locked(_))
    ));
}

#[test]
fn damage_is_found_by_verify_and_never_restored() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), fast_opts()).unwrap();
    for i in 1..=500 {
        write_batch(&db, i);
    }
    db.flush().unwrap();
    let engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    let id = engine.create_backup(&db).unwrap();
    let victim = files_with_suffix(&dir.path().join("backups/shared"), "")
        .into_iter()
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&victim, &bytes).unwrap();
    let e = engine.verify(id).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(
        e.to_string()
            .contains(victim.file_name().unwrap().to_str().unwrap()),
        "{e}"
    );
    let target = dir.path().join("restored");
    assert!(engine.restore(id, &target).unwrap_err().is_corruption());
    assert!(!target.exists(), "a damaged backup wrote a restore");
    // Damaged metadata is named too.
    let meta = dir.path().join("backups/meta/1");
    let mut m = std::fs::read(&meta).unwrap();
    m[3] ^= 1;
    std::fs::write(&meta, &m).unwrap();
    let e = engine.list().unwrap_err();
    assert!(e.is_corruption() && e.to_string().contains("meta"), "{e}");
}

/// Backups made while a writer runs restore to prefixes holding every
/// batch acknowledged before the backup began.
#[test]
fn backups_under_concurrent_writes_restore_to_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path().join("db"), common::churn_opts()).unwrap());
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acked, stop) = (Arc::clone(&db), Arc::clone(&acked), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) || i < 2000 {
                i += 1;
                write_batch(&db, i);
                acked.store(i, Ordering::SeqCst);
            }
        })
    };
    let engine = BackupEngine::open(dir.path().join("backups")).unwrap();
    let mut floors = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(40));
        let floor = acked.load(Ordering::SeqCst);
        floors.push((engine.create_backup(&db).unwrap(), floor));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    for (id, floor) in floors {
        let target = dir.path().join(format!("r{id}"));
        engine.restore(id, &target).unwrap();
        let r = Db::open(&target, common::churn_opts()).unwrap();
        let c = assert_prefix(&r, &format!("backup {id}"));
        assert!(
            c >= floor,
            "backup {id}: {c} batches, {floor} acknowledged before it"
        );
    }
}

/// The child of `a_killed_backup_leaves_the_earlier_ones_whole`: backs up
/// a database under writes, over and over, printing each finished id.
#[test]
#[ignore]
fn backup_child() {
    let dir = std::path::PathBuf::from(std::env::var("BACKUP_TEST_DIR").unwrap());
    let db = Db::open(dir.join("db"), fast_opts()).unwrap();
    let engine = BackupEngine::open(dir.join("backups")).unwrap();
    let mut i = counter(&db);
    loop {
        for _ in 0..300 {
            i += 1;
            write_batch(&db, i);
        }
        let id = engine.create_backup(&db).unwrap();
        println!("backup {id} {i}");
    }
}

#[test]
fn a_killed_backup_leaves_the_earlier_ones_whole() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("BACKUP_TEST_DIR", dir.path().display().to_string())];
    let mut seen = 0;
    for round in 0..3 {
        let lines = run_child_then_kill(
            "backup_child",
            &env,
            Duration::from_millis(700 + 300 * round),
        );
        let done: Vec<u64> = lines
            .iter()
            .filter_map(|l| l.split("backup ").nth(1))
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        let engine = BackupEngine::open(dir.path().join("backups")).unwrap();
        assert!(!dir.path().join("backups/tmp").exists(), "leftovers kept");
        let ids: Vec<u64> = engine.list().unwrap().iter().map(|b| b.id).collect();
        for id in &done {
            assert!(
                ids.contains(id),
                "round {round}: backup {id} finished but is gone"
            );
        }
        seen += done.len();
        for &id in &ids {
            engine.verify(id).unwrap();
        }
        // The newest restores to an openable prefix.
        if let Some(&last) = ids.last() {
            let target = dir.path().join(format!("restore-{round}"));
            engine.restore(last, &target).unwrap();
            let r = Db::open(&target, fast_opts()).unwrap();
            assert_prefix(&r, "restore after a kill");
        }
    }
    assert!(seen > 0, "no backup finished before the kills");
}
