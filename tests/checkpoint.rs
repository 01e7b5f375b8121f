//! Online checkpoints (issue 21): `Db::checkpoint` while writes, flushes
//! and compactions go on opens to exactly a prefix of the acknowledged
//! writes, every keyspace at the same point; files are hard links; a
//! stale half-made checkpoint is replaced; a read-only handle can make one.

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{churn_opts, fast_opts};
use lightning_db::{Db, Options, WriteBatch};

fn key(i: u64) -> String {
    format!("k{i:08}")
}

#[test]
fn a_checkpoint_holds_the_state_when_it_was_made_and_links_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db"), fast_opts()).unwrap();
    for i in 0..2000 {
        db.put(key(i), "old").unwrap();
    }
    db.flush().unwrap();
    for i in 0..10 {
        db.put(key(i), "in-wal").unwrap();
    }
    let cp = dir.path().join("cp");
    db.checkpoint(&cp).unwrap();
    db.put(key(0), "after").unwrap();
    db.delete(key(1)).unwrap();
    // The directory exists now: a second checkpoint there is refused.
    let e = db.checkpoint(&cp).unwrap_err();
    assert!(e.to_string().contains("exists"), "{e}");
    // SSTs are hard links of the live ones.
    let sst = std::fs::read_dir(&cp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .expect("no SST in the checkpoint");
    let live = dir.path().join("db").join(sst.file_name().unwrap());
    assert_eq!(
        std::fs::metadata(&sst).unwrap().ino(),
        std::fs::metadata(&live).unwrap().ino(),
        "not a hard link"
    );
    assert!(!dir.path().join("cp.tmp").exists());
    let copy = Db::open(&cp, fast_opts()).unwrap();
    assert_eq!(copy.get(key(0)).unwrap().as_deref(), Some(&b"in-wal"[..]));
    assert_eq!(copy.get(key(1)).unwrap().as_deref(), Some(&b"in-wal"[..]));
    assert_eq!(copy.get(key(1999)).unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(copy.iter().count(), 2000);
    assert!(copy.verify().unwrap().is_ok());
    // The copy is a database of its own: writing it leaves the original.
    copy.put(key(5), "copy").unwrap();
    assert_eq!(db.get(key(5)).unwrap().as_deref(), Some(&b"in-wal"[..]));
    assert_eq!(db.get(key(0)).unwrap().as_deref(), Some(&b"after"[..]));
}

/// Batches span two keyspaces and a counter; checkpoints taken while
/// they are written (with memtable switches, flushes and compactions all
/// along) each hold batches `0..=c` exactly, in both keyspaces, for a `c`
/// at least the last batch acknowledged before the call.
#[test]
fn checkpoints_under_concurrent_writes_are_prefixes_of_the_history() {
    // Constant flushes, compactions and manifest rewrites; then larger
    // memtables, so that most of a checkpoint comes from its WAL copy.
    prefixes_under_writes(churn_opts);
    prefixes_under_writes(|| fast_opts().write_buffer_size(1 << 20));
    // Values in live blob files (put time): the copied WALs name them,
    // so the checkpoint copies those files too.
    prefixes_under_writes(|| churn_opts().enable_blob_files(true).min_blob_size(16));
    prefixes_under_writes(|| {
        fast_opts()
            .write_buffer_size(1 << 20)
            .enable_blob_files(true)
            .min_blob_size(16)
    });
}

fn prefixes_under_writes(opts: fn() -> Options) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path().join("db"), opts()).unwrap());
    let other = db.keyspace("other").unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acked, stop) = (Arc::clone(&db), Arc::clone(&acked), Arc::clone(&stop));
        let other = other.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || i < 3000 {
                i += 1;
                let mut b = WriteBatch::new();
                b.put(key(i), format!("v{i}").repeat(8));
                b.put_in(&other, key(i), format!("o{i}"));
                b.put("counter", i.to_be_bytes());
                db.write(b).unwrap();
                acked.store(i, Ordering::SeqCst);
            }
        })
    };
    let mut checked = Vec::new();
    for n in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        let floor = acked.load(Ordering::SeqCst);
        let cp = dir.path().join(format!("cp{n}"));
        db.checkpoint(&cp).unwrap();
        checked.push((cp, floor));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    drop(other);
    for (cp, floor) in checked {
        let copy = Db::open(&cp, opts()).unwrap();
        let c = copy
            .get("counter")
            .unwrap()
            .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()));
        assert!(
            c >= floor,
            "{}: counter {c} below the acknowledged {floor}",
            cp.display()
        );
        let ks = copy.keyspace("other").unwrap();
        let main: Vec<_> = copy
            .range(key(0)..key(u64::MAX))
            .map(|r| r.unwrap())
            .collect();
        let side: Vec<_> = ks.iter().map(|r| r.unwrap()).collect();
        assert_eq!(
            main.len() as u64,
            c,
            "{}: not batches 1..={c}",
            cp.display()
        );
        assert_eq!(
            side.len() as u64,
            c,
            "{}: keyspaces at different points",
            cp.display()
        );
        for (i, ((k, v), (k2, v2))) in main.iter().zip(&side).enumerate() {
            let i = i as u64 + 1;
            assert_eq!(&k[..], key(i).as_bytes());
            assert_eq!(&k2[..], key(i).as_bytes());
            assert_eq!(&v[..], format!("v{i}").repeat(8).as_bytes());
            assert_eq!(&v2[..], format!("o{i}").as_bytes());
        }
        assert!(copy.verify().unwrap().is_ok());
    }
}

#[test]
fn a_stale_half_made_checkpoint_is_replaced_and_read_only_handles_make_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Db::open(&path, fast_opts()).unwrap();
        db.put("a", "1").unwrap();
        db.flush().unwrap();
        db.put("b", "2").unwrap();
        // What a crash during a checkpoint leaves.
        let tmp = dir.path().join("cp.tmp");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("000009.sst"), b"half").unwrap();
        db.checkpoint(dir.path().join("cp")).unwrap();
        assert!(!tmp.exists());
    }
    let ro = Db::open_read_only(&path, fast_opts()).unwrap();
    ro.checkpoint(dir.path().join("cp-ro")).unwrap();
    for cp in ["cp", "cp-ro"] {
        let copy = Db::open(dir.path().join(cp), fast_opts()).unwrap();
        assert_eq!(copy.get("a").unwrap().as_deref(), Some(&b"1"[..]), "{cp}");
        assert_eq!(copy.get("b").unwrap().as_deref(), Some(&b"2"[..]), "{cp}");
    }
}

#[test]
fn blob_files_are_part_of_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || -> Options { fast_opts().enable_blob_files(true).min_blob_size(100) };
    let db = Db::open(dir.path().join("db"), opts()).unwrap();
    let big = vec![9u8; 5000];
    for i in 0..50 {
        db.put(key(i), &big).unwrap();
    }
    db.flush().unwrap();
    db.checkpoint(dir.path().join("cp")).unwrap();
    drop(db);
    assert!(!common::files_with_suffix(&dir.path().join("cp"), ".blob").is_empty());
    // The original goes; the checkpoint still reads every value.
    std::fs::remove_dir_all(dir.path().join("db")).unwrap();
    let copy = Db::open(dir.path().join("cp"), opts()).unwrap();
    for i in 0..50 {
        assert_eq!(copy.get(key(i)).unwrap().as_deref(), Some(&big[..]));
    }
    assert!(copy.verify().unwrap().is_ok());
}
