//! Key-value separation (`enable_blob_files`): large values go to blob
//! files at flush, the SSTs hold references, and every read path (get,
//! snapshots, iterators both ways, reopen) sees the same values as a
//! database without separation.

use std::collections::BTreeMap;
use std::path::Path;

use lightning_db::{Db, Options};

fn opts() -> Options {
    let mut o = Options::default()
        .write_buffer_size(1 << 20)
        .enable_blob_files(true)
        .min_blob_size(1000)
        .blob_file_size(1 << 20);
    o.compaction.disable_auto_compactions = true;
    o
}

fn files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

/// Value `i` of round `r`: large for even `i` (separated), small for odd.
fn value(i: usize, r: usize) -> Vec<u8> {
    let len = if i.is_multiple_of(2) {
        3000 + i * 7
    } else {
        50 + i
    };
    (0..len).map(|j| (i * 31 + j * 7 + r) as u8).collect()
}

fn check(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(&v[..]), "key {k:?}");
    }
    let fwd: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(fwd, want);
    let mut back: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .rev()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect();
    back.reverse();
    assert_eq!(back, want);
    let mut it = db.iter();
    let mut borrowed = Vec::new();
    while let Some(r) = it.next_ref() {
        let (k, v) = r.unwrap();
        borrowed.push((k.to_vec(), v.to_vec()));
    }
    assert_eq!(borrowed, want);
}

#[test]
fn large_values_go_to_blob_files_and_read_back_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..400 {
        let k = format!("key{i:04}").into_bytes();
        db.put(&k, value(i, 0)).unwrap();
        model.insert(k, value(i, 0));
    }
    let snap = db.snapshot();
    let before = model.clone();
    db.flush().unwrap();
    assert!(files(dir.path(), ".blob") >= 1, "no blob file written");
    check(&db, &model);
    // Overwrite half and delete some; a snapshot still sees the old values.
    for i in (0..400usize).step_by(3) {
        let k = format!("key{i:04}").into_bytes();
        if i.is_multiple_of(5) {
            db.delete(&k).unwrap();
            model.remove(&k);
        } else {
            db.put(&k, value(i, 1)).unwrap();
            model.insert(k, value(i, 1));
        }
    }
    db.flush().unwrap();
    check(&db, &model);
    for (k, v) in &before {
        assert_eq!(snap.get(k).unwrap().as_deref(), Some(&v[..]));
    }
    drop(snap);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model);
    // The same database opened without separation still reads every
    // value (the references live in its SSTs).
    drop(db);
    let plain = Options::default().write_buffer_size(1 << 20);
    let db = Db::open(dir.path(), plain).unwrap();
    check(&db, &model);
    let ro = {
        drop(db);
        Db::open_read_only(dir.path(), opts()).unwrap()
    };
    check(&ro, &model);
}

/// Large values go to a live blob file when they are put, and the WAL
/// holds references; after a crash before any flush, recovery reads them
/// back, flushes them into a new blob file, and deletes the live one
/// (which no manifest lists).
#[test]
fn values_put_since_the_last_flush_are_recovered_from_the_live_blob_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        for i in 0..50 {
            let k = format!("k{i:03}").into_bytes();
            db.put(&k, value(i, 2)).unwrap();
            model.insert(k, value(i, 2));
        }
        check(&db, &model);
        // Dropped without a flush: the values are in the live blob file,
        // which the WAL's records name.
    }
    let live = blob_file_names(dir.path());
    assert_eq!(live.len(), 1, "{live:?}");
    let wal_bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let live_bytes = std::fs::metadata(dir.path().join(&live[0])).unwrap().len();
    assert!(
        wal_bytes < live_bytes / 10,
        "the WAL holds references, not values: {wal_bytes} bytes of WAL, {live_bytes} of blob"
    );
    let db = Db::open(dir.path(), opts()).unwrap();
    let after = blob_file_names(dir.path());
    assert!(!after.is_empty());
    assert!(!after.contains(&live[0]), "{after:?}");
    check(&db, &model);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model);
}

fn blob_file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".blob"))
        .collect();
    v.sort();
    v
}

/// Overwriting every separated value makes the old blob files garbage:
/// compaction counts it, and once a file holds only garbage it is deleted
/// (after the snapshot that still reads it is released).
#[test]
fn compaction_counts_garbage_and_deletes_dead_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts().enable_blob_garbage_collection(false);
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let mut model = BTreeMap::new();
    for i in (0..200).step_by(2) {
        let k = format!("key{i:04}").into_bytes();
        db.put(&k, value(i, 0)).unwrap();
        model.insert(k, value(i, 0));
    }
    db.flush().unwrap();
    let first = blob_file_names(dir.path());
    assert!(!first.is_empty());
    let snap = db.snapshot();
    for i in (0..200).step_by(2) {
        let k = format!("key{i:04}").into_bytes();
        db.put(&k, value(i, 1)).unwrap();
        model.insert(k, value(i, 1));
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    check(&db, &model);
    // The snapshot still reads the first values: their file stays.
    for i in (0..200).step_by(2) {
        let k = format!("key{i:04}").into_bytes();
        assert_eq!(snap.get(&k).unwrap().unwrap(), value(i, 0));
    }
    drop(snap);
    // New writes at both ends make the next compaction rewrite the
    // bottom file, now without the versions only the snapshot needed.
    for i in [0, 198] {
        let k = format!("key{i:04}").into_bytes();
        db.put(&k, value(i, 2)).unwrap();
        model.insert(k, value(i, 2));
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let now = blob_file_names(dir.path());
    for f in &first {
        assert!(
            !now.contains(f),
            "{f} holds only garbage but was kept: {now:?}"
        );
    }
    check(&db, &model);
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    check(&db, &model);
}

/// Garbage collection moves the live values of the oldest blob files that
/// hold enough garbage into new ones, so such a file goes away; a file
/// without garbage is not copied.
#[test]
fn garbage_collection_relocates_live_values_of_old_files() {
    let dir = tempfile::tempdir().unwrap();
    // A force threshold of 0 lowers the bar to any garbage (by default a
    // file must be half garbage to be collected); no compaction runs by
    // itself here (auto compactions off), so none is forced.
    let o = opts()
        .enable_blob_garbage_collection(true)
        .blob_garbage_collection_age_cutoff(1.0)
        .blob_garbage_collection_force_threshold(0.0);
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let mut model = BTreeMap::new();
    for i in (0..100).step_by(2) {
        let k = format!("key{i:04}").into_bytes();
        db.put(&k, value(i, 0)).unwrap();
        model.insert(k, value(i, 0));
    }
    db.flush().unwrap();
    let first = blob_file_names(dir.path());
    // A compaction of files without garbage copies no value.
    db.put("key0001", value(1, 0)).unwrap();
    model.insert(b"key0001".to_vec(), value(1, 0));
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.stats().blobs.gc_runs, 0);
    assert_eq!(blob_file_names(dir.path()), first);
    // One value overwritten: the compaction that drops its old version
    // counts the first file's garbage; the next one collects the file.
    db.put("key0000", value(0, 9)).unwrap();
    model.insert(b"key0000".to_vec(), value(0, 9));
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(db.stats().blobs.garbage_bytes > 0);
    db.put("key0098", value(98, 9)).unwrap();
    model.insert(b"key0098".to_vec(), value(98, 9));
    db.compact_range::<&[u8], _>(..).unwrap();
    let now = blob_file_names(dir.path());
    for f in &first {
        assert!(!now.contains(f), "{f} was not collected: {now:?}");
    }
    check(&db, &model);
    // The statistics say what happened.
    let st = db.stats().blobs;
    assert_eq!(st.files as usize, now.len(), "{st:?}");
    let on_disk: u64 = now
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    assert_eq!(st.file_bytes, on_disk, "{st:?}");
    assert!(st.gc_runs >= 1 && st.gc_bytes_relocated > 0, "{st:?}");
    assert!(st.bytes_written >= on_disk, "{st:?}");
    assert!(st.bytes_read >= st.gc_bytes_relocated, "{st:?}");
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    check(&db, &model);
}

/// `verify` walks every blob file and checks the references: a sound
/// database verifies; a flipped byte in a blob file is found by `verify`
/// and by the read of the damaged value (`Corruption` naming the blob
/// file), and never returns wrong bytes; a missing blob file is found.
#[test]
fn verify_checks_blob_files_and_reads_report_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        for i in (0..60).step_by(2) {
            let k = format!("key{i:04}").into_bytes();
            db.put(&k, value(i, 0)).unwrap();
            model.insert(k, value(i, 0));
        }
        db.flush().unwrap();
        let r = db.verify().unwrap();
        assert!(r.is_ok(), "{:?}", r.problems);
    }
    let r = Db::verify_dir(dir.path()).unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    let blob = dir.path().join(&blob_file_names(dir.path())[0]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&blob, &bytes).unwrap();
    let r = Db::verify_dir(dir.path()).unwrap();
    assert!(!r.is_ok());
    assert!(
        r.problems
            .iter()
            .any(|e| e.is_corruption() && e.to_string().contains(".blob")),
        "{:?}",
        r.problems
    );
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut damaged = 0;
    for (k, v) in &model {
        match db.get(k) {
            Ok(got) => assert_eq!(got.as_deref(), Some(&v[..])),
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                assert!(e.to_string().contains(".blob"), "{e}");
                damaged += 1;
            }
        }
    }
    assert_eq!(damaged, 1, "one value holds the flipped byte");
    assert!(!db.verify().unwrap().is_ok());
    drop(db);
    std::fs::remove_file(&blob).unwrap();
    let r = Db::verify_dir(dir.path()).unwrap();
    assert!(
        r.problems.iter().any(|e| e.to_string().contains(".blob")),
        "{:?}",
        r.problems
    );
    // Opening refuses it too, naming the file, as for a missing table.
    let e = Db::open(dir.path(), opts()).unwrap_err();
    assert!(e.is_corruption() && e.to_string().contains(".blob"), "{e}");
    let e = Db::open_read_only(dir.path(), opts()).unwrap_err();
    assert!(e.is_corruption() && e.to_string().contains(".blob"), "{e}");
}

/// Forced garbage collection (`blob_garbage_collection_force_threshold`):
/// random overwrites leave every blob file partly garbage, which ordinary
/// compactions of a small tree never reach; with a threshold, the tables
/// referencing the oldest files are rewritten and their live values move,
/// so the space the blob files take stays bounded. Without it (GC on, no
/// force) the same workload keeps far more.
#[test]
fn forced_garbage_collection_bounds_the_space_of_random_overwrites() {
    let run = |force: f64| -> (u64, u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Options::default()
            .write_buffer_size(256 << 10)
            .enable_blob_files(true)
            .min_blob_size(1000)
            .enable_blob_garbage_collection(true)
            .blob_garbage_collection_age_cutoff(0.25)
            .blob_garbage_collection_force_threshold(force);
        o.compaction.level0_file_num_compaction_trigger = 4;
        let db = Db::open(dir.path(), o.clone()).unwrap();
        let mut model = BTreeMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..8usize {
            for _ in 0..300 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x % 200) as usize;
                let k = format!("key{i:04}").into_bytes();
                let v = vec![(i + round) as u8; 3000];
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
            db.flush().unwrap();
            db.wait_for_compactions().unwrap();
        }
        check(&db, &model);
        assert!(db.verify().unwrap().is_ok());
        let live: u64 = model.values().map(|v| v.len() as u64).sum();
        let st = db.stats().blobs;
        drop(db);
        // Everything reads the same after a reopen.
        let db = Db::open(dir.path(), o).unwrap();
        check(&db, &model);
        (st.file_bytes, live, st.gc_runs)
    };
    let (forced, live, runs) = run(0.5);
    let (unforced, _, _) = run(1.0);
    assert!(runs > 0, "no garbage collection ran");
    // At most about 1 / (1 - 0.5) of the live bytes in the oldest files,
    // plus the newer files not yet judged.
    assert!(
        forced < live * 5 / 2,
        "forced: {forced} bytes for {live} live"
    );
    assert!(forced < unforced, "forced {forced} >= unforced {unforced}");
}
