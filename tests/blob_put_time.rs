//! Blob files written at put time (issue 18): a large value goes to the
//! live blob file of its memtable when it is put, the WAL and the memtable
//! hold a reference, the flush adds the same file to the manifest (no
//! value is written twice), and recovery reads values back from it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::gate::{GateFs, GateOp};
use lightning_db::{Db, Options, WalRecoveryMode, WriteBatch};

fn opts() -> Options {
    let mut o = Options::default()
        .write_buffer_size(1 << 20)
        .enable_blob_files(true)
        .min_blob_size(1000);
    o.compaction.disable_auto_compactions = true;
    o
}

fn key(i: usize) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// Value `i`: 5000 bytes for even `i` (separated), 100 for odd ones.
fn value(i: usize, round: u8) -> Vec<u8> {
    let len = if i.is_multiple_of(2) { 5000 } else { 100 };
    (0..len).map(|j| (i * 7 + j) as u8 ^ round).collect()
}

fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "blob"))
        .collect();
    v.sort();
    v
}

fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.iter()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Every read path sees values still in the live blob file, and the flush
/// adds that very file to the manifest: its name and bytes stay, and no
/// other blob file is written.
#[test]
fn values_are_written_once_and_read_from_the_live_blob_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..40 {
        db.put(key(i), value(i, 0)).unwrap();
        model.insert(key(i), value(i, 0));
    }
    let live = blob_files(dir.path());
    assert_eq!(live.len(), 1, "{live:?}");
    let live_len = std::fs::metadata(&live[0]).unwrap().len();
    // 20 large values, each written once (a record header and the key on
    // top); the WAL holds references only.
    assert!((20 * 5000..20 * 5100).contains(&live_len), "{live_len}");
    assert_eq!(db.stats().blobs.bytes_written, live_len - 20);
    let snap = db.snapshot();
    for i in 0..40 {
        db.put(key(i), value(i, 1)).unwrap();
    }
    // Reads of the newer values, of the snapshot's older ones, by
    // iterator both ways, by multi_get and in a transaction.
    let read_before = db.stats().blobs.bytes_read;
    for i in 0..40 {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 1));
        assert_eq!(snap.get(key(i)).unwrap().unwrap(), value(i, 0));
    }
    // 2 x 20 values of 5000 bytes read from the live file, counted.
    assert_eq!(db.stats().blobs.bytes_read - read_before, 2 * 20 * 5000);
    let keys: Vec<Vec<u8>> = (0..40).map(key).collect();
    for (i, v) in db.multi_get(&keys).into_iter().enumerate() {
        assert_eq!(v.unwrap().unwrap(), value(i, 1));
    }
    let snap_view: BTreeMap<Vec<u8>, Vec<u8>> = snap
        .iter()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    assert_eq!(snap_view, model);
    let back: Vec<Vec<u8>> = db.iter().rev().map(|r| r.unwrap().1.to_vec()).collect();
    assert_eq!(back, (0..40).rev().map(|i| value(i, 1)).collect::<Vec<_>>());
    let tx = db.transaction();
    assert_eq!(tx.get(key(2)).unwrap().unwrap(), value(2, 1));
    drop(tx);
    // The flush keeps both versions (the snapshot needs the older), and
    // adds the live file itself: nothing is rewritten.
    db.flush().unwrap();
    assert_eq!(blob_files(dir.path()), live);
    assert_eq!(db.stats().blobs.files, 1);
    // Every byte of the finished file is counted as written once: its
    // records as they were appended, its header and footer at the flush.
    let finished_len = std::fs::metadata(&live[0]).unwrap().len();
    assert_eq!(db.stats().blobs.bytes_written, finished_len);
    for i in 0..40 {
        assert_eq!(snap.get(key(i)).unwrap().unwrap(), value(i, 0));
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 1));
    }
    drop(snap);
    assert!(db.verify().unwrap().is_ok());
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..40 {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 1));
    }
    assert!(db.verify().unwrap().is_ok());
}

/// Values overwritten in the memtable are counted as garbage of the live
/// file when it is flushed; a live file none of whose values survive the
/// flush is deleted after it.
#[test]
fn values_overwritten_before_the_flush_are_garbage_or_the_file_goes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for round in 0..4u8 {
        for i in (0..20).step_by(2) {
            db.put(key(i), value(i, round)).unwrap();
        }
    }
    db.flush().unwrap();
    let s = db.stats().blobs;
    assert_eq!(s.files, 1);
    // 40 records, 30 overwritten: three quarters of the file is garbage.
    let quarter = (s.file_bytes - 48) / 4;
    assert!(
        s.garbage_bytes >= 3 * quarter - 100 && s.garbage_bytes <= 3 * quarter + 100,
        "{s:?}"
    );
    let flushed = blob_files(dir.path());
    // A memtable whose large values are all deleted again: its live file
    // is not added, and goes once the flush is recorded.
    for i in (0..20).step_by(2) {
        db.put(format!("gone{i}"), value(i, 9)).unwrap();
        db.delete(format!("gone{i}")).unwrap();
    }
    assert_eq!(blob_files(dir.path()).len(), 2);
    db.flush().unwrap();
    assert_eq!(blob_files(dir.path()), flushed);
    assert!(db.verify().unwrap().is_ok());
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in (0..20).step_by(2) {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i, 3));
        assert_eq!(db.get(format!("gone{i}")).unwrap(), None);
    }
}

/// After a power loss the WAL may keep records whose values the live blob
/// file lost (their unsynced tails survive independently): recovery ends
/// the log at the first such record, in either recovery mode, and the
/// database opens at that prefix of its history.
#[test]
fn a_value_missing_from_the_live_blob_file_ends_the_log() {
    for mode in [
        WalRecoveryMode::PointInTime,
        WalRecoveryMode::TolerateTornTail,
    ] {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Db::open(dir.path(), opts()).unwrap();
            for i in 0..30 {
                db.put(key(i), value(i, 0)).unwrap();
            }
            // Dropped without a flush: the values are in the live file.
        }
        let live = blob_files(dir.path());
        assert_eq!(live.len(), 1);
        // Records are 20 + 4 + 5000 bytes after a 20-byte header: cut the
        // file in the middle of the 11th (key 20's value).
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&live[0])
            .unwrap();
        f.set_len(20 + 10 * 5024 + 2000).unwrap();
        drop(f);
        let db = Db::open(dir.path(), opts().wal_recovery_mode(mode)).unwrap();
        let want: BTreeMap<Vec<u8>, Vec<u8>> = (0..20).map(|i| (key(i), value(i, 0))).collect();
        assert_eq!(contents(&db), want, "{mode:?}");
        assert!(!blob_files(dir.path()).contains(&live[0]));
        assert!(db.verify().unwrap().is_ok());
        // The database goes on from there.
        db.put(key(99), value(0, 5)).unwrap();
        drop(db);
        let db = Db::open(dir.path(), opts()).unwrap();
        assert_eq!(db.get(key(99)).unwrap().unwrap(), value(0, 5));
        assert_eq!(db.get(key(25)).unwrap(), None);
    }
}

/// A missing live blob file (its directory entry lost) ends the log at the
/// first record naming it too.
#[test]
fn a_missing_live_blob_file_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        for i in 0..9 {
            db.put(key(i), value(1, 0)).unwrap();
        }
        db.put(key(9), value(0, 0)).unwrap();
        db.put(key(10), value(1, 0)).unwrap();
    }
    for f in blob_files(dir.path()) {
        std::fs::remove_file(f).unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let want: BTreeMap<Vec<u8>, Vec<u8>> = (0..9).map(|i| (key(i), value(1, 0))).collect();
    assert_eq!(contents(&db), want);
}

/// A follower catching up beside a primary that writes large values,
/// flushes and deletes live blob files (values all deleted) sees
/// prefixes holding every acknowledged write: a live file deleted under
/// its replay makes the catch-up retry, never end the log early.
#[test]
fn a_follower_reads_values_from_live_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    let popts = || {
        opts()
            .write_buffer_size(1 << 20)
            .fs(Arc::new(common::NoSyncFs))
    };
    let primary = Arc::new(Db::open(dir.path(), popts()).unwrap());
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acked, stop) = (Arc::clone(&primary), Arc::clone(&acked), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || i < 2000 {
                i += 1;
                let mut b = WriteBatch::new();
                b.put(format!("k{i:06}"), vec![i as u8; 300]);
                // The only large value, deleted every other batch: about
                // every other flushed memtable keeps none of its live
                // file's values, and that file is deleted at once.
                if i.is_multiple_of(2) {
                    b.delete("big");
                } else {
                    b.put("big", vec![i as u8; 3000]);
                }
                b.put("counter", i.to_be_bytes());
                db.write(b).unwrap();
                acked.store(i, Ordering::SeqCst);
                // A flush every few tens of milliseconds: a catch-up (a
                // whole read-only recovery) must be able to finish
                // between two.
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        })
    };
    let follower = Db::open_secondary(dir.path(), popts()).unwrap();
    for round in 0..200 {
        std::thread::sleep(std::time::Duration::from_millis(1));
        let floor = acked.load(Ordering::SeqCst);
        follower.try_catch_up_with_primary().unwrap();
        let view = follower.db();
        let c = view
            .get("counter")
            .unwrap()
            .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()));
        assert!(c >= floor, "round {round}: {c} < acknowledged {floor}");
        let n = view.range("k000000".."k999999").count() as u64;
        assert_eq!(n, c, "round {round}: not a prefix");
        if c > 0 {
            assert_eq!(
                view.get(format!("k{c:06}")).unwrap().unwrap(),
                vec![c as u8; 300]
            );
            let big = (c % 2 == 1).then(|| vec![c as u8; 3000]);
            assert_eq!(view.get("big").unwrap().map(|v| v.to_vec()), big);
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

/// Deterministic: a follower has read the manifest and the WAL, and is
/// about to read a value from a live blob file, when the primary flushes
/// that memtable, whose values were all deleted, and so deletes the file.
/// The catch-up must retry with the newer manifest (which no longer needs
/// the WAL records), not take the missing value for the log's end and
/// lose every write after it.
#[test]
fn a_live_blob_file_deleted_under_a_catch_up_makes_it_retry() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Db::open(dir.path(), opts()).unwrap();
    primary.put("before", "0").unwrap();
    let (fs, gate) = GateFs::new(Arc::new(lightning_db::fs::PosixFs));
    let follower = Arc::new(Db::open_secondary(dir.path(), opts().fs(fs)).unwrap());
    primary.put("big", vec![1u8; 3000]).unwrap();
    primary.delete("big").unwrap();
    primary.put("after", "1").unwrap();
    gate.arm(GateOp::Open, ".blob");
    let catch_up = {
        let f = Arc::clone(&follower);
        std::thread::spawn(move || f.try_catch_up_with_primary())
    };
    assert!(gate.wait_holding(std::time::Duration::from_secs(10)));
    // The memtable keeps none of its live file's values: the flush does
    // not add the file, and deletes it.
    let live = blob_files(dir.path());
    assert_eq!(live.len(), 1);
    primary.flush().unwrap();
    assert!(blob_files(dir.path()).is_empty());
    gate.release();
    catch_up.join().unwrap().unwrap();
    let view = follower.db();
    assert_eq!(view.get("after").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(view.get("big").unwrap(), None);
    assert_eq!(view.get("before").unwrap().as_deref(), Some(&b"0"[..]));
}

/// `verify` reads back the values WAL records name in live blob files: a
/// record whose value is not there whole is what recovery takes for the
/// log's end (a torn tail) offline, and damage in a live database.
#[test]
fn verify_checks_the_values_wal_records_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..30 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let r = db.verify().unwrap();
    assert!(r.is_ok() && r.torn_tails.is_empty(), "{r:?}");
    drop(db);
    let r = Db::verify_dir(dir.path()).unwrap();
    assert!(r.is_ok() && r.torn_tails.is_empty(), "{r:?}");

    // A value cut short: offline, a torn tail at its record.
    let live = blob_files(dir.path());
    assert_eq!(live.len(), 1);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&live[0])
        .unwrap();
    f.set_len(20 + 10 * 5024 + 2000).unwrap();
    drop(f);
    let r = Db::verify_dir(dir.path()).unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(r.torn_tails.len(), 1, "{r:?}");
    assert!(r.torn_tails[0].2.contains("blob file"), "{r:?}");

    // Live: the file deleted under an open database is damage, naming
    // the WAL.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..30 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    for f in blob_files(dir.path()) {
        std::fs::remove_file(f).unwrap();
    }
    let r = db.verify().unwrap();
    assert_eq!(r.problems.len(), 1, "{r:?}");
    let msg = r.problems[0].to_string();
    assert!(msg.contains(".log") && msg.contains("blob file"), "{msg}");
    let r = Db::verify_dir(dir.path()).unwrap();
    assert!(r.live);
    assert_eq!(r.problems.len(), 1, "{r:?}");
}

/// A live `verify` beside a writer whose flushes delete live blob files
/// (every value of the memtable deleted before the flush) reports
/// nothing: a WAL whose keyspace was flushed since the check read its log
/// number no longer needs those values.
#[test]
fn a_live_verify_beside_flushes_that_delete_live_blob_files_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::open(
            dir.path(),
            opts()
                .write_buffer_size(64 << 10)
                .fs(Arc::new(common::NoSyncFs)),
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mut b = WriteBatch::new();
                b.put(format!("k{}", i % 50), vec![i as u8; 300]);
                if i.is_multiple_of(2) {
                    b.delete("big");
                } else {
                    b.put("big", vec![i as u8; 3000]);
                }
                db.write(b).unwrap();
            }
            i
        })
    };
    // Until the writer has flushed (and so deleted live files) often.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut rounds = 0;
    while db.stats().flush_latency.count() < 150 {
        assert!(std::time::Instant::now() < deadline, "the writer stalled");
        let r = db.verify().unwrap();
        assert!(r.is_ok(), "round {rounds}: {r:?}");
        let r = Db::verify_dir(dir.path()).unwrap();
        assert!(r.is_ok(), "round {rounds} (verify_dir): {r:?}");
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(rounds >= 10, "only {rounds} checks ran");
}

/// Deterministic: a live `verify` has read the log numbers and the WAL
/// and is about to read a value from a live blob file when a flush, whose
/// memtable keeps none of that file's values, deletes the file. The WAL
/// no longer replays into the keyspace: nothing is wrong.
#[test]
fn a_live_blob_file_deleted_under_verify_is_no_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, gate) = GateFs::new(Arc::new(lightning_db::fs::PosixFs));
    let db = Arc::new(Db::open(dir.path(), opts().fs(fs)).unwrap());
    db.put("before", "0").unwrap();
    db.put("big", vec![1u8; 3000]).unwrap();
    db.delete("big").unwrap();
    db.put("after", "1").unwrap();
    gate.arm(GateOp::Open, ".blob");
    let check = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || db.verify())
    };
    assert!(gate.wait_holding(std::time::Duration::from_secs(10)));
    assert_eq!(blob_files(dir.path()).len(), 1);
    db.flush().unwrap();
    assert!(blob_files(dir.path()).is_empty());
    gate.release();
    let r = check.join().unwrap().unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert!(r.wal_batches >= 4, "{r:?}");
}

/// Deterministic: a checkpoint has taken its file set (and the live blob
/// files of that moment) when a flush starts a new memtable and a large
/// value goes to that memtable's new live blob file. The WAL prefix the
/// checkpoint copies names that value, so it must copy that file too (the
/// live blob files are taken again under the WAL lock).
#[test]
fn a_checkpoint_copies_live_blob_files_started_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, gate) = GateFs::new(Arc::new(lightning_db::fs::PosixFs));
    let db = Arc::new(Db::open(dir.path(), opts().fs(fs)).unwrap());
    for i in 0..10 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let dest = dir.path().join("checkpoint");
    gate.arm(GateOp::Create, "CURRENT");
    let cp = {
        let (db, dest) = (Arc::clone(&db), dest.clone());
        std::thread::spawn(move || db.checkpoint(&dest))
    };
    assert!(gate.wait_holding(std::time::Duration::from_secs(10)));
    db.flush().unwrap();
    db.put("late", value(0, 9)).unwrap();
    gate.release();
    cp.join().unwrap().unwrap();
    drop(db);
    let c = Db::open(&dest, opts()).unwrap();
    assert_eq!(c.get("late").unwrap().unwrap(), value(0, 9));
    for i in 0..10 {
        assert_eq!(c.get(key(i)).unwrap().unwrap(), value(i, 0));
    }
}
